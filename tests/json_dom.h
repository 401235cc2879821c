/*
 * json_dom.h: a strict, minimal JSON parser for the tests: a document into a
 * tree of values, to check what the CLI prints (test_cli.c, test_replay.c).
 * Independent of the library's own JSON code (loaders/json_scan.h), so that
 * the two check each other.
 */
#ifndef LSIM_TEST_JSON_DOM_H
#define LSIM_TEST_JSON_DOM_H

#include <stddef.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jkind;

typedef struct jval jval;
struct jval {
    jkind kind;
    char *str;      /* J_STR: the decoded bytes; J_NUM: the literal */
    int is_int;     /* J_NUM: no fraction or exponent */
    long long i;    /* J_NUM when is_int */
    double d;       /* J_NUM */
    int b;          /* J_BOOL */
    size_t n;       /* J_ARR, J_OBJ: number of items */
    jval *items;    /* J_ARR, J_OBJ */
    char **keys;    /* J_OBJ */
};

/* Parses a whole document (surrounding whitespace allowed); 0 or -1. */
int jparse(const char *text, jval *v);
void jfree(jval *v);
/* The value of key in object o, or NULL. */
const jval *jget(const jval *o, const char *key);
/* The same, asserted to be a string / an integer (a Criterion failure otherwise). */
const char *jstr(const jval *o, const char *key);
long long jint(const jval *o, const char *key);
/* The same, asserted to be a number (an integer or not). */
double jnum(const jval *o, const char *key);

#endif
