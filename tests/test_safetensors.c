/*
 * test_safetensors.c: the safetensors reader and writer (loaders/safetensors.h,
 * docs/CHECKPOINT_FORMAT.md).
 *
 * What it checks:
 *   - the PyTorch-written fixture (tests/golden/gen_safetensors.py): every
 *     value, stated here again from the script's formulas, every shape, the
 *     metadata, header order, aligned data pointers (the fixture has tensors
 *     at odd offsets, which the reader must copy);
 *   - st_get's messages, word for word as the header documents them;
 *   - round trips through the writer: every dtype, a scalar, empty tensors,
 *     names and metadata needing escapes, unicode, random cases; determinism
 *     (same inputs, same bytes); the writer's metadata escaping equals
 *     Python's json.dumps byte for byte (compared with the fixture's header);
 *     the writer's argument checks; atomic replacement;
 *   - corruption: every truncation of a valid file, every header byte
 *     changed to several values, random multi-byte mutations (never a crash;
 *     a file that still opens must be self-consistent), and hand-built
 *     headers breaking each rule, each asserting the code and that the
 *     message names the file and the offending tensor or field.
 * What it is not: a check of the Python reader on C-written files (that
 * direction was checked by hand: gen_safetensors.py --check FILE).
 */
#include "lsim.h"
#include "loaders/safetensors.h"
#include "storage/block_codec.h"
#include "storage/error_detail.h"
#include "tests/test_util.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir;

static void setup(void)
{
    g_dir = tu_tmpdir("safetensors");
    cr_assert_not_null(g_dir);
}

static void teardown(void)
{
    tu_rmrf(g_dir);
    free(g_dir);
}

TestSuite(safetensors, .init = setup, .fini = teardown);

/* A path in the test's scratch directory (a static buffer per slot). */
static const char *tpath(const char *name)
{
    static char buf[4][4096];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_dir, name);
    return buf[slot];
}

static const char *fixture_path(void)
{
    static char buf[4096];
    const char *root = getenv("LSIM_SOURCE_ROOT");
    snprintf(buf, sizeof buf, "%s/tests/golden/safetensors_fixture.safetensors", root && *root ? root : ".");
    return buf;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp, "cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void put_file(const char *path, const void *buf, size_t len)
{
    cr_assert_eq(tu_write_file(path, buf, len), 0, "cannot write %s", path);
}

/* [N LE][json][data], N = strlen(json) (no padding: the data may start
 * misaligned, which the reader accepts). */
static unsigned char *mkfile(const char *json, const void *data, size_t dlen, size_t *len)
{
    size_t n = strlen(json);
    unsigned char *b = malloc(8 + n + dlen + 1);
    cr_assert_not_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    if (dlen) memcpy(b + 8 + n, data, dlen);
    *len = 8 + n + dlen;
    return b;
}

/* Writes buf as a file and opens it; on failure *f is NULL. */
static int open_buf(const unsigned char *buf, size_t len, st_file **f, char *err, size_t errlen)
{
    const char *p = tpath("t.safetensors");
    put_file(p, buf, len);
    return st_open(f, p, err, errlen);
}

/* Opens json + data and expects `code` with a message starting with
 * "PATH: " and containing each of the NULL-terminated substrings. */
static void expect_bad_buf(const unsigned char *buf, size_t len, int code, ...)
{
    char err[LSIM_ERRLEN] = "";
    st_file *f = (st_file *)1;
    int rc = open_buf(buf, len, &f, err, sizeof err);
    cr_assert_eq(rc, code, "expected %d, got %d (%s)", code, rc, err);
    cr_assert_null(f);
    const char *p = tpath("t.safetensors");
    cr_assert(strncmp(err, p, strlen(p)) == 0 && strncmp(err + strlen(p), ": ", 2) == 0,
              "message does not begin with the path: %s", err);
    va_list ap;
    va_start(ap, code);
    const char *s;
    while ((s = va_arg(ap, const char *))) cr_assert(strstr(err, s), "message lacks \"%s\": %s", s, err);
    va_end(ap);
}

#define EXPECT_BAD(json, data, dlen, code, ...)                                   \
    do {                                                                          \
        size_t len_;                                                              \
        unsigned char *b_ = mkfile((json), (data), (dlen), &len_);                \
        expect_bad_buf(b_, len_, (code), __VA_ARGS__, (const char *)NULL);        \
        free(b_);                                                                 \
    } while (0)

static st_file *open_ok_buf(const unsigned char *buf, size_t len)
{
    char err[LSIM_ERRLEN] = "";
    st_file *f = NULL;
    int rc = open_buf(buf, len, &f, err, sizeof err);
    cr_assert_eq(rc, 0, "open failed: %d %s", rc, err);
    cr_assert_not_null(f);
    return f;
}

static st_file *open_ok_json(const char *json, const void *data, size_t dlen)
{
    size_t len;
    unsigned char *b = mkfile(json, data, dlen, &len);
    st_file *f = open_ok_buf(b, len);
    free(b);
    return f;
}

/* Checks what st_open promises of every tensor of an opened file. */
static void check_consistent(const st_file *f)
{
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        cr_assert_not_null(t);
        cr_assert_not_null(t->name);
        cr_assert(t->ndim <= ST_MAX_DIMS);
        uint64_t n = 1;
        for (size_t d = 0; d < t->ndim; d++) n *= t->shape[d];
        cr_assert_eq(n, t->numel, "tensor %s numel", t->name);
        size_t sz = st_dtype_size(t->dtype);
        cr_assert(sz > 0);
        cr_assert_eq(t->nbytes, t->numel * sz);
        cr_assert_not_null(t->data);
        cr_assert_eq((uintptr_t)t->data % sz, 0, "tensor %s misaligned", t->name);
        volatile unsigned char sink = 0; /* touch every byte (ASan checks the bounds) */
        for (size_t k = 0; k < t->nbytes; k++) sink ^= ((const unsigned char *)t->data)[k];
        (void)sink;
        cr_assert_eq(st_find(f, t->name), t, "st_find(%s)", t->name);
    }
}

/* ---- the PyTorch fixture --------------------------------------------------- */

/* The values tests/golden/gen_safetensors.py writes, stated again. */
static const char *const fixture_order[] = {
    "f32_matrix", "f64_vec", "i64_vals", "i32_vals", "u8_bytes", "f32_odd",  "i8_vals",
    "f16_vals",   "bool_vals", "scalar_f64", "empty_f32", "i64_3d", "f32_col",
};

static void check_fixture_values(const st_file *f)
{
    char err[LSIM_ERRLEN];
    const void *d;

    cr_assert_eq(st_count(f), 13);
    for (size_t i = 0; i < 13; i++) cr_assert_str_eq(st_at(f, i)->name, fixture_order[i]);
    check_consistent(f);

    cr_assert_eq(st_get(f, "f32_matrix", ST_F32, 2, (uint64_t[]){3, 4}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 12; i++) cr_assert_eq(((const float *)d)[i], -2.0f + 0.5f * (float)i);
    cr_assert_eq(st_get(f, "f64_vec", ST_F64, 1, (uint64_t[]){5}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 5; i++) cr_assert_eq(((const double *)d)[i], -1.0 + 0.25 * i);
    cr_assert_eq(st_get(f, "i64_vals", ST_I64, 2, (uint64_t[]){2, 3}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 6; i++) cr_assert_eq(((const int64_t *)d)[i], (int64_t)(i - 3) * 1000000000000LL);
    cr_assert_eq(st_get(f, "i32_vals", ST_I32, 1, (uint64_t[]){4}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 4; i++) cr_assert_eq(((const int32_t *)d)[i], 5 - 7 * i);
    cr_assert_eq(st_get(f, "u8_bytes", ST_U8, 1, (uint64_t[]){3}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 3; i++) cr_assert_eq(((const uint8_t *)d)[i], 55 + 100 * i);
    cr_assert_eq(st_get(f, "f32_odd", ST_F32, 1, (uint64_t[]){2}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 2; i++) cr_assert_eq(((const float *)d)[i], (float)i + 0.25f);
    cr_assert_eq(st_get(f, "i8_vals", ST_I8, 1, (uint64_t[]){4}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 4; i++) cr_assert_eq(((const int8_t *)d)[i], 85 * i - 128);
    /* 1.5 i - 1 = -1, 0.5, 2 in IEEE half precision */
    cr_assert_eq(st_get(f, "f16_vals", ST_F16, 1, (uint64_t[]){3}, &d, err, sizeof err), 0, "%s", err);
    const uint16_t h[3] = {0xBC00, 0x3800, 0x4000};
    for (int i = 0; i < 3; i++) cr_assert_eq(((const uint16_t *)d)[i], h[i], "f16 %d: %04x", i, ((const uint16_t *)d)[i]);
    cr_assert_eq(st_get(f, "bool_vals", ST_BOOL, 1, (uint64_t[]){5}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 5; i++) cr_assert_eq(((const uint8_t *)d)[i], i % 2);
    cr_assert_eq(st_get(f, "scalar_f64", ST_F64, 0, NULL, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(*(const double *)d, 3.5);
    cr_assert_eq(st_find(f, "scalar_f64")->numel, 1);
    cr_assert_eq(st_get(f, "empty_f32", ST_F32, 2, (uint64_t[]){2, 0}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_not_null(d);
    cr_assert_eq(st_find(f, "empty_f32")->numel, 0);
    cr_assert_eq(st_find(f, "empty_f32")->nbytes, 0);
    cr_assert_eq(st_get(f, "i64_3d", ST_I64, 3, (uint64_t[]){2, 3, 4}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 24; i++) cr_assert_eq(((const int64_t *)d)[i], -i);
    cr_assert_eq(st_get(f, "f32_col", ST_F32, 2, (uint64_t[]){4, 1}, &d, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 4; i++) cr_assert_eq(((const float *)d)[i], (float)i / 4.0f);

    static const char *const mk[] = {"model", "dim", "escapes", "unicode", "", "empty"};
    static const char *const mv[] = {
        "sim", "16", "quote \" backslash \\ slash / newline \n tab \t cr \r bell \x07 del \x7f",
        "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80", "empty key", ""};
    cr_assert_eq(st_meta_count(f), 6);
    for (size_t i = 0; i < 6; i++) {
        const char *k, *v;
        st_meta_at(f, i, &k, &v);
        cr_assert_str_eq(k, mk[i]);
        cr_assert_str_eq(v, mv[i]);
        cr_assert_str_eq(st_meta(f, mk[i]), mv[i]);
    }
    cr_assert_null(st_meta(f, "absent"));
}

Test(safetensors, pytorch_fixture)
{
    char err[LSIM_ERRLEN];
    st_file *f;
    int rc = st_open(&f, fixture_path(), err, sizeof err);
    cr_assert_eq(rc, 0, "%s (set LSIM_SOURCE_ROOT to the project root)", err);
    check_fixture_values(f);
    st_close(f);
}

Test(safetensors, get_messages)
{
    char err[LSIM_ERRLEN];
    st_file *f;
    const void *d = (const void *)1;
    const char *p = fixture_path();
    char want[8192];
    cr_assert_eq(st_open(&f, p, err, sizeof err), 0, "%s", err);

    cr_assert_eq(st_get(f, "nope", ST_F32, 0, NULL, &d, err, sizeof err), LSIM_E_NOTFOUND);
    cr_assert_null(d);
    snprintf(want, sizeof want, "%s: no tensor nope", p);
    cr_assert_str_eq(err, want);

    cr_assert_eq(st_get(f, "f32_matrix", ST_F32, 2, (uint64_t[]){4, 3}, &d, err, sizeof err), LSIM_E_FORMAT);
    snprintf(want, sizeof want, "%s: tensor f32_matrix: expected F32 [4, 3], found F32 [3, 4]", p);
    cr_assert_str_eq(err, want);

    cr_assert_eq(st_get(f, "f32_matrix", ST_F64, 2, (uint64_t[]){3, 4}, &d, err, sizeof err), LSIM_E_FORMAT);
    snprintf(want, sizeof want, "%s: tensor f32_matrix: expected F64 [3, 4], found F32 [3, 4]", p);
    cr_assert_str_eq(err, want);

    cr_assert_eq(st_get(f, "scalar_f64", ST_F64, 1, (uint64_t[]){1}, &d, err, sizeof err), LSIM_E_FORMAT);
    snprintf(want, sizeof want, "%s: tensor scalar_f64: expected F64 [1], found F64 []", p);
    cr_assert_str_eq(err, want);

    cr_assert_eq(st_get(f, "f32_matrix", ST_F32, 3, (uint64_t[]){3, 4, 1}, &d, err, sizeof err), LSIM_E_FORMAT);
    cr_assert_eq(st_get(f, "f32_matrix", ST_F32, ST_MAX_DIMS + 1, (uint64_t[9]){0}, &d, err, sizeof err),
                 LSIM_E_INVAL);
    cr_assert_eq(st_get(f, "f32_matrix", ST_F32, 2, NULL, &d, err, sizeof err), LSIM_E_INVAL);
    cr_assert_eq(st_get(NULL, "x", ST_F32, 0, NULL, &d, err, sizeof err), LSIM_E_INVAL);
    cr_assert_eq(st_get(f, "f32_matrix", ST_F32, 2, (uint64_t[]){3, 4}, NULL, err, sizeof err), LSIM_E_INVAL);
    /* err may be NULL */
    cr_assert_eq(st_get(f, "nope", ST_F32, 0, NULL, &d, NULL, 0), LSIM_E_NOTFOUND);

    cr_assert_null(st_find(f, "nope"));
    cr_assert_null(st_find(f, NULL));
    cr_assert_null(st_at(f, 13));
    const char *k = "x", *v = "y";
    st_meta_at(f, 6, &k, &v);
    cr_assert(k == NULL && v == NULL);
    st_close(f);
    st_close(NULL);
    cr_assert_eq(st_count(NULL), 0);
    cr_assert_eq(st_meta_count(NULL), 0);
}

Test(safetensors, dtype_names)
{
    static const char *const names[] = {"F32", "F64", "F16", "I64", "I32", "I8", "U8", "BOOL"};
    static const size_t sizes[] = {4, 8, 2, 8, 4, 1, 1, 1};
    for (int t = ST_F32; t <= ST_BOOL; t++) {
        cr_assert_str_eq(st_dtype_name((st_dtype)t), names[t]);
        cr_assert_eq(st_dtype_size((st_dtype)t), sizes[t]);
    }
    cr_assert_eq(st_dtype_size((st_dtype)99), 0);
    cr_assert_not_null(st_dtype_name((st_dtype)99));
}

/* ---- writing ---------------------------------------------------------------- */

/* Copies every tensor and metadata entry of f into a new writer, in order. */
static st_writer *writer_from(const st_file *f)
{
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        cr_assert_eq(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data), 0, "%s", t->name);
    }
    for (size_t i = 0; i < st_meta_count(f); i++) {
        const char *k, *v;
        st_meta_at(f, i, &k, &v);
        cr_assert_eq(st_writer_meta(w, k, v), 0);
    }
    return w;
}

static void assert_same_files(const st_file *a, const st_file *b)
{
    cr_assert_eq(st_count(a), st_count(b));
    for (size_t i = 0; i < st_count(a); i++) {
        const st_tensor *x = st_at(a, i), *y = st_at(b, i);
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->dtype, y->dtype, "%s", x->name);
        cr_assert_eq(x->ndim, y->ndim, "%s", x->name);
        for (size_t d = 0; d < x->ndim; d++) cr_assert_eq(x->shape[d], y->shape[d]);
        cr_assert_eq(x->nbytes, y->nbytes);
        cr_assert(x->nbytes == 0 || memcmp(x->data, y->data, x->nbytes) == 0, "%s data", x->name);
    }
    cr_assert_eq(st_meta_count(a), st_meta_count(b));
    for (size_t i = 0; i < st_meta_count(a); i++) {
        const char *k1, *v1, *k2, *v2;
        st_meta_at(a, i, &k1, &v1);
        st_meta_at(b, i, &k2, &v2);
        cr_assert_str_eq(k1, k2);
        cr_assert_str_eq(v1, v2);
    }
}

/* Header length of a written file, checking 8-byte alignment of the data. */
static uint64_t header_len(const char *path)
{
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    cr_assert_eq((8 + n) % 8, 0, "data section of %s starts at %" PRIu64, path, 8 + n);
    for (uint64_t i = 8 + n; i > 8 && b[i - 1] == ' '; i--) {
    } /* padding: spaces only (checked by the reader) */
    free(b);
    return n;
}

Test(safetensors, rewrite_fixture)
{
    char err[LSIM_ERRLEN];
    st_file *f, *g;
    cr_assert_eq(st_open(&f, fixture_path(), err, sizeof err), 0, "%s", err);
    st_writer *w = writer_from(f);
    const char *p1 = tpath("a.safetensors"), *p2 = tpath("b.safetensors");
    cr_assert_eq(st_writer_write(w, p1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_writer_write(w, p2, err, sizeof err), 0, "%s", err);
    st_writer_free(w);
    header_len(p1);
    cr_assert_eq(st_open(&g, p1, err, sizeof err), 0, "%s", err);
    check_fixture_values(g);
    assert_same_files(f, g);
    st_close(g);

    /* Deterministic: the same inputs give the same bytes. */
    size_t l1, l2;
    unsigned char *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    cr_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
    free(b1);
    free(b2);
    /* No temporary file left behind. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", p1, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0);
    st_close(f);
}

/* The writer escapes strings exactly as Python's json.dumps does: its
 * metadata object equals the fixture's, byte for byte. */
Test(safetensors, metadata_escaping_matches_python)
{
    char err[LSIM_ERRLEN];
    st_file *f;
    cr_assert_eq(st_open(&f, fixture_path(), err, sizeof err), 0, "%s", err);
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    for (size_t i = 0; i < st_meta_count(f); i++) {
        const char *k, *v;
        st_meta_at(f, i, &k, &v);
        cr_assert_eq(st_writer_meta(w, k, v), 0);
    }
    st_close(f);
    const char *p = tpath("meta.safetensors");
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    st_writer_free(w);

    size_t la, lb;
    unsigned char *a = slurp(fixture_path(), &la), *b = slurp(p, &lb);
    /* b = N, {"__metadata__":{"lsim.crc32c":"XXXXXXXX",...}} then spaces; a's header begins with the same object
     * without the checksum entry, then ','. */
    static const char crc_entry[] = "\"lsim.crc32c\":\"XXXXXXXX\",";
    const size_t open = strlen("{\"__metadata__\":{"), skip = sizeof crc_entry - 1;
    cr_assert(memcmp(b + 8, "{\"__metadata__\":{\"lsim.crc32c\":\"", open + 15) == 0);
    memmove(b + 8 + open, b + 8 + open + skip, lb - 8 - open - skip);
    size_t n = lb - 8 - skip;
    while (n && b[8 + n - 1] == ' ') n--;
    cr_assert(n >= 2 && b[8 + n - 1] == '}');
    n--; /* without the header's closing '}' */
    cr_assert(la > 8 + n && memcmp(a + 8, b + 8, n) == 0 && a[8 + n] == ',', "C: %.*s\nPython: %.*s", (int)n,
              (const char *)b + 8, (int)n, (const char *)a + 8);
    free(a);
    free(b);
}

Test(safetensors, roundtrip_all_dtypes)
{
    char err[LSIM_ERRLEN];
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    float f32[6] = {1.5f, -2.25f, 0.0f, -0.0f, 3e38f, 1e-38f};
    double f64[3] = {3.141592653589793, -1e300, 5e-324};
    uint16_t f16[2] = {0x3C00, 0x7C00};
    int64_t i64[2] = {INT64_MIN, INT64_MAX};
    int32_t i32[3] = {INT32_MIN, -1, INT32_MAX};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[5] = {0, 1, 127, 128, 255};
    uint8_t bl[3] = {1, 0, 1};
    double sc = -7.5;
    /* Insertion order mixes dtype sizes: the file is laid out by size, the
     * header keeps this order. */
    cr_assert_eq(st_writer_add(w, "u8", ST_U8, 1, (uint64_t[]){5}, u8), 0);
    cr_assert_eq(st_writer_add(w, "f32", ST_F32, 2, (uint64_t[]){2, 3}, f32), 0);
    cr_assert_eq(st_writer_add(w, "bool", ST_BOOL, 1, (uint64_t[]){3}, bl), 0);
    cr_assert_eq(st_writer_add(w, "f64", ST_F64, 1, (uint64_t[]){3}, f64), 0);
    cr_assert_eq(st_writer_add(w, "f16", ST_F16, 1, (uint64_t[]){2}, f16), 0);
    cr_assert_eq(st_writer_add(w, "i8", ST_I8, 3, (uint64_t[]){1, 3, 1}, i8), 0);
    cr_assert_eq(st_writer_add(w, "i64", ST_I64, 1, (uint64_t[]){2}, i64), 0);
    cr_assert_eq(st_writer_add(w, "i32", ST_I32, 1, (uint64_t[]){3}, i32), 0);
    cr_assert_eq(st_writer_add(w, "scalar", ST_F64, 0, NULL, &sc), 0);
    cr_assert_eq(st_writer_add(w, "empty", ST_F32, 1, (uint64_t[]){0}, NULL), 0);
    cr_assert_eq(st_writer_add(w, "empty2", ST_I64, 3, (uint64_t[]){4, 0, 7}, f32), 0);
    cr_assert_eq(st_writer_add(w, "eight_dims", ST_U8, 8, (uint64_t[]){1, 2, 1, 2, 1, 1, 1, 1}, u8), 0);
    const char *p = tpath("all.safetensors");
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    st_writer_free(w);
    header_len(p);

    st_file *f;
    cr_assert_eq(st_open(&f, p, err, sizeof err), 0, "%s", err);
    check_consistent(f);
    static const char *const order[] = {"u8", "f32", "bool", "f64", "f16", "i8", "i64", "i32", "scalar", "empty", "empty2", "eight_dims"};
    cr_assert_eq(st_count(f), 12);
    for (size_t i = 0; i < 12; i++) cr_assert_str_eq(st_at(f, i)->name, order[i]);
    const void *d;
    cr_assert_eq(st_get(f, "f32", ST_F32, 2, (uint64_t[]){2, 3}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, f32, sizeof f32), 0);
    cr_assert_eq(st_get(f, "f64", ST_F64, 1, (uint64_t[]){3}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, f64, sizeof f64), 0);
    cr_assert_eq(st_get(f, "f16", ST_F16, 1, (uint64_t[]){2}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, f16, sizeof f16), 0);
    cr_assert_eq(st_get(f, "i64", ST_I64, 1, (uint64_t[]){2}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, i64, sizeof i64), 0);
    cr_assert_eq(st_get(f, "i32", ST_I32, 1, (uint64_t[]){3}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, i32, sizeof i32), 0);
    cr_assert_eq(st_get(f, "i8", ST_I8, 3, (uint64_t[]){1, 3, 1}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, i8, sizeof i8), 0);
    cr_assert_eq(st_get(f, "u8", ST_U8, 1, (uint64_t[]){5}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, u8, sizeof u8), 0);
    cr_assert_eq(st_get(f, "bool", ST_BOOL, 1, (uint64_t[]){3}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(d, bl, sizeof bl), 0);
    cr_assert_eq(st_get(f, "scalar", ST_F64, 0, NULL, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(*(const double *)d, -7.5);
    cr_assert_eq(st_get(f, "empty", ST_F32, 1, (uint64_t[]){0}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_get(f, "empty2", ST_I64, 3, (uint64_t[]){4, 0, 7}, &d, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_get(f, "eight_dims", ST_U8, 8, (uint64_t[]){1, 2, 1, 2, 1, 1, 1, 1}, &d, err, sizeof err), 0);
    cr_assert_eq(memcmp(d, u8, 4), 0);
    cr_assert_eq(st_meta_count(f), 0);
    st_close(f);
}

Test(safetensors, roundtrip_escapes_and_unicode)
{
    static const char *const names[] = {
        "quote\"d", "back\\slash", "slash/", "new\nline", "tab\tcr\r", "ctl\x01\x1f\x7f", "caf\xc3\xa9",
        "\xe4\xb8\xad\xe6\x96\x87", "emoji\xf0\x9f\x98\x80", "\xef\xbf\xbf", "", " ", "__metadata", "a.b.c[0]",
    };
    size_t nn = sizeof names / sizeof names[0];
    char err[LSIM_ERRLEN];
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    for (size_t i = 0; i < nn; i++) {
        int32_t v = (int32_t)i;
        cr_assert_eq(st_writer_add(w, names[i], ST_I32, 1, (uint64_t[]){1}, &v), 0, "name %zu", i);
    }
    for (size_t i = 0; i < nn; i++) cr_assert_eq(st_writer_meta(w, names[i], names[nn - 1 - i]), 0);
    const char *p = tpath("esc.safetensors");
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    st_writer_free(w);

    /* The header is pure ASCII (non-ASCII written as \u escapes). */
    size_t len;
    unsigned char *b = slurp(p, &len);
    uint64_t n = header_len(p);
    for (uint64_t i = 8; i < 8 + n; i++) cr_assert(b[i] >= 0x20 && b[i] < 0x7f, "header byte %" PRIu64, i - 8);
    cr_assert(strstr((const char *)b + 8, "\\ud83d\\ude00"), "surrogate pair");
    free(b);

    st_file *f;
    cr_assert_eq(st_open(&f, p, err, sizeof err), 0, "%s", err);
    check_consistent(f);
    cr_assert_eq(st_count(f), nn);
    for (size_t i = 0; i < nn; i++) {
        cr_assert_str_eq(st_at(f, i)->name, names[i]);
        cr_assert_eq(*(const int32_t *)st_find(f, names[i])->data, (int32_t)i);
        cr_assert_str_eq(st_meta(f, names[i]), names[nn - 1 - i]);
    }
    st_close(f);
}

/* Random tensors, names and metadata: write, read, compare; write again,
 * same bytes. */
Test(safetensors, roundtrip_random)
{
    static const char *const pieces[] = {"a", "Z", "_", ".", "0", "\"", "\\", "/", "\n", "\x01", " ", "{", "}",
                                         ":", ",", "[", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\x7f"};
    uint64_t s = 7;
    char err[LSIM_ERRLEN];
    for (int it = 0; it < 200; it++) {
        st_writer *w;
        cr_assert_eq(st_writer_new(&w), 0);
        size_t nt = tu_rand(&s) % 12, nm = tu_rand(&s) % 5;
        for (size_t i = 0; i < nt; i++) {
            char name[256];
            int n = snprintf(name, sizeof name, "%zu#", i); /* unique: no piece is a '#' */
            for (size_t k = tu_rand(&s) % 8; k > 0; k--)
                n += snprintf(name + n, sizeof name - (size_t)n, "%s", pieces[tu_rand(&s) % 20]);
            st_dtype dt = (st_dtype)(tu_rand(&s) % 8);
            size_t nd = tu_rand(&s) % 5;
            uint64_t sh[ST_MAX_DIMS], numel = 1;
            for (size_t d = 0; d < nd; d++) {
                sh[d] = tu_rand(&s) % 5;
                numel *= sh[d];
            }
            size_t nb = numel * st_dtype_size(dt);
            unsigned char *data = malloc(nb + 1);
            for (size_t k = 0; k < nb; k++) data[k] = (unsigned char)(dt == ST_BOOL ? tu_rand(&s) % 2 : tu_rand(&s));
            cr_assert_eq(st_writer_add(w, name, dt, nd, sh, data), 0);
            free(data);
        }
        for (size_t i = 0; i < nm; i++) {
            char k[128], v[128];
            int n = snprintf(k, sizeof k, "k%zu#", i), m = 0;
            v[0] = 0;
            for (size_t j = tu_rand(&s) % 6; j > 0; j--) {
                n += snprintf(k + n, sizeof k - (size_t)n, "%s", pieces[tu_rand(&s) % 20]);
                m += snprintf(v + m, sizeof v - (size_t)m, "%s", pieces[tu_rand(&s) % 20]);
            }
            cr_assert_eq(st_writer_meta(w, k, v), 0);
        }
        const char *p1 = tpath("r1.safetensors"), *p2 = tpath("r2.safetensors");
        cr_assert_eq(st_writer_write(w, p1, err, sizeof err), 0, "%s", err);
        st_file *f;
        cr_assert_eq(st_open(&f, p1, err, sizeof err), 0, "it %d: %s", it, err);
        check_consistent(f);
        cr_assert_eq(st_count(f), nt);
        cr_assert_eq(st_meta_count(f), nm);
        st_writer *w2 = writer_from(f);
        cr_assert_eq(st_writer_write(w2, p2, err, sizeof err), 0, "%s", err);
        size_t l1, l2;
        unsigned char *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
        cr_assert(l1 == l2 && memcmp(b1, b2, l1) == 0, "it %d: rewrite differs", it);
        free(b1);
        free(b2);
        st_file *g;
        cr_assert_eq(st_open(&g, p2, err, sizeof err), 0, "%s", err);
        assert_same_files(f, g);
        st_close(g);
        st_close(f);
        st_writer_free(w);
        st_writer_free(w2);
    }
}

Test(safetensors, empty_file_and_replace)
{
    char err[LSIM_ERRLEN];
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    const char *p = tpath("e.safetensors");
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    size_t len;
    unsigned char *b = slurp(p, &len);
    /* nothing but the checksum entry: CRC-32C of the file with its 8 digits read as '0's */
    static const char want[] = "\x30\0\0\0\0\0\0\0{\"__metadata__\":{\"lsim.crc32c\":\"00000000\"}}     ";
    cr_assert_eq(len, sizeof want - 1);
    char digits[9];
    snprintf(digits, sizeof digits, "%08x", crc32c(0, want, sizeof want - 1));
    cr_assert(memcmp(b, want, 40) == 0 && memcmp(b + 40, digits, 8) == 0 && memcmp(b + 48, want + 48, 8) == 0,
              "%.*s", (int)len - 8, (const char *)b + 8);
    free(b);
    st_file *f;
    cr_assert_eq(st_open(&f, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_count(f), 0);
    st_close(f);

    /* Writing over an existing file replaces it. */
    int32_t v = 42;
    cr_assert_eq(st_writer_add(w, "x", ST_I32, 0, NULL, &v), 0);
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_open(&f, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_count(f), 1);
    cr_assert_eq(*(const int32_t *)st_find(f, "x")->data, 42);
    st_close(f);

    /* An unwritable destination: LSIM_E_IO naming the file; nothing left. */
    const char *bad = tpath("no/such/dir/x.safetensors");
    cr_assert_eq(st_writer_write(w, bad, err, sizeof err), LSIM_E_IO);
    cr_assert(strstr(err, "no/such/dir/x.safetensors.tmp-"), "%s", err);
    st_writer_free(w);
    st_writer_free(NULL);
}

Test(safetensors, writer_rejects)
{
    st_writer *w;
    float x[4] = {0};
    uint8_t b2 = 2;
    cr_assert_eq(st_writer_new(NULL), LSIM_E_INVAL);
    cr_assert_eq(st_writer_new(&w), 0);
    cr_assert_eq(st_writer_add(w, "a", ST_F32, 1, (uint64_t[]){4}, x), 0);
    cr_assert_eq(st_writer_add(w, "a", ST_F32, 1, (uint64_t[]){4}, x), LSIM_E_INVAL, "duplicate");
    cr_assert_eq(st_writer_add(w, "a", ST_F64, 0, NULL, x), LSIM_E_INVAL, "duplicate");
    cr_assert_eq(st_writer_add(w, "__metadata__", ST_F32, 0, NULL, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "bad\xff", ST_F32, 0, NULL, x), LSIM_E_INVAL, "invalid UTF-8");
    cr_assert_eq(st_writer_add(w, "bad\xed\xa0\x80", ST_F32, 0, NULL, x), LSIM_E_INVAL, "encoded surrogate");
    cr_assert_eq(st_writer_add(w, "bad\xc0\x80", ST_F32, 0, NULL, x), LSIM_E_INVAL, "overlong");
    cr_assert_eq(st_writer_add(w, NULL, ST_F32, 0, NULL, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(NULL, "b", ST_F32, 0, NULL, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", (st_dtype)99, 0, NULL, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", ST_F32, 9, (uint64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1}, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", ST_F32, 2, NULL, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", ST_F32, 1, (uint64_t[]){4}, NULL), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", ST_U8, 2, (uint64_t[]){1ull << 40, 1ull << 40}, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", ST_F64, 1, (uint64_t[]){1ull << 62}, x), LSIM_E_INVAL);
    cr_assert_eq(st_writer_add(w, "b", ST_BOOL, 0, NULL, &b2), LSIM_E_INVAL, "BOOL must be 0 or 1");
    cr_assert_eq(st_writer_meta(w, "k", "v"), 0);
    cr_assert_eq(st_writer_meta(w, "k", "w"), LSIM_E_INVAL, "duplicate key");
    cr_assert_eq(st_writer_meta(w, "k2", "\xff"), LSIM_E_INVAL);
    cr_assert_eq(st_writer_meta(w, NULL, "v"), LSIM_E_INVAL);
    cr_assert_eq(st_writer_meta(w, "k3", NULL), LSIM_E_INVAL);
    cr_assert_eq(st_writer_write(w, NULL, NULL, 0), LSIM_E_INVAL);
    /* The rejected calls left the writer as it was. */
    char err[LSIM_ERRLEN];
    const char *p = tpath("w.safetensors");
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    st_file *f;
    cr_assert_eq(st_open(&f, p, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_count(f), 1);
    cr_assert_eq(st_meta_count(f), 1);
    st_close(f);
    st_writer_free(w);
}

/* ---- reading hand-built files ----------------------------------------------- */

#define T(name, dt, shape, b, e) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const unsigned char zeros[256];

Test(safetensors, accepts_variants)
{
    /* Pretty-printed JSON, any field order, unaligned data start (copied),
     * raw UTF-8 and every escape in names, \u in upper case. */
    const char *json = "{\n  \"b\\/\\b\\f\\u00e9\\u00C9\\ud83d\\ude00\" : { \"data_offsets\" : [ 0 , 8 ] ,\r\n"
                       "\t\"shape\" : [ 2 ] , \"dtype\" : \"F32\" } ,\n"
                       "  \"__metadata__\" : { } ,\n  \"raw \xe4\xb8\xad\" : {\"shape\":[],\"dtype\":\"I64\","
                       "\"data_offsets\":[8,16]}\n}\n\t\r ";
    unsigned char data[16];
    float fv[2] = {1.5f, -3.0f};
    int64_t iv = -9;
    memcpy(data, fv, 8);
    memcpy(data + 8, &iv, 8);
    st_file *f = open_ok_json(json, data, 16);
    check_consistent(f);
    cr_assert_eq(st_count(f), 2);
    cr_assert_str_eq(st_at(f, 0)->name, "b/\b\f\xc3\xa9\xc3\x89\xf0\x9f\x98\x80");
    cr_assert_str_eq(st_at(f, 1)->name, "raw \xe4\xb8\xad");
    cr_assert_eq(((const float *)st_at(f, 0)->data)[1], -3.0f);
    cr_assert_eq(*(const int64_t *)st_at(f, 1)->data, -9);
    cr_assert_eq(st_meta_count(f), 0);
    st_close(f);

    /* Tensors in any order of offsets; an empty tensor between two, at the
     * start, at the end; "{}" alone. */
    f = open_ok_json("{" T("hi", "U8", "[2]", 2, 4) "," T("e0", "F64", "[0]", 0, 0) "," T("lo", "U8", "[2]", 0, 2)
                     "," T("mid", "I32", "[3,0]", 2, 2) "," T("end", "F32", "[0,5]", 4, 4) "}",
                     "\x01\x02\x03\x04", 4);
    check_consistent(f);
    cr_assert_eq(((const uint8_t *)st_find(f, "hi")->data)[0], 3);
    cr_assert_eq(((const uint8_t *)st_find(f, "lo")->data)[1], 2);
    st_close(f);
    f = open_ok_json("{}", NULL, 0);
    cr_assert_eq(st_count(f), 0);
    st_close(f);
    f = open_ok_json("{ }", NULL, 0);
    st_close(f);
    /* Every integer form that is valid JSON. */
    f = open_ok_json("{" T("z", "U8", "[0,18446744073709551615]", 0, 0) "}", NULL, 0);
    cr_assert_eq(st_find(f, "z")->shape[1], UINT64_MAX);
    st_close(f);
}

Test(safetensors, unaligned_data_is_copied)
{
    /* Header lengths 1..8 bytes off alignment: every tensor still aligned, values exact. */
    for (int pad = 0; pad < 8; pad++) {
        char json[256];
        snprintf(json, sizeof json, "{" T("u", "U8", "[1]", 0, 1) "," T("d", "F64", "[2]", 1, 17) "," T("i", "I32", "[1]", 17, 21) ","
                 T("h", "F16", "[1]", 21, 23) "}%*s", pad, "");
        unsigned char data[23];
        double dv[2] = {1.0 / 3.0, -2.5};
        int32_t iv = -123456;
        uint16_t hv = 0x1234;
        data[0] = 9;
        memcpy(data + 1, dv, 16);
        memcpy(data + 17, &iv, 4);
        memcpy(data + 21, &hv, 2);
        st_file *f = open_ok_json(json, data, sizeof data);
        check_consistent(f);
        cr_assert_eq(memcmp(st_find(f, "d")->data, dv, 16), 0);
        cr_assert_eq(*(const int32_t *)st_find(f, "i")->data, iv);
        cr_assert_eq(*(const uint16_t *)st_find(f, "h")->data, hv);
        cr_assert_eq(*(const uint8_t *)st_find(f, "u")->data, 9);
        st_close(f);
    }
}

Test(safetensors, bad_files)
{
    char err[LSIM_ERRLEN];
    st_file *f = (st_file *)1;
    cr_assert_eq(st_open(&f, tpath("absent.safetensors"), err, sizeof err), LSIM_E_IO);
    cr_assert_null(f);
    cr_assert(strstr(err, "absent.safetensors: open: "), "%s", err);
    cr_assert_eq(st_open(&f, g_dir, err, sizeof err), LSIM_E_IO);
    cr_assert(strstr(err, "not a regular file"), "%s", err);
    cr_assert_eq(st_open(&f, NULL, err, sizeof err), LSIM_E_INVAL);
    cr_assert_eq(st_open(NULL, g_dir, err, sizeof err), LSIM_E_INVAL);
    cr_assert_eq(st_open(&f, tpath("absent"), NULL, 0), LSIM_E_IO);
}

Test(safetensors, bad_header_length)
{
    unsigned char b[64];
    memset(b, ' ', sizeof b);
    for (size_t n = 0; n < 8; n++)
        expect_bad_buf(b, n, LSIM_E_CORRUPT, "corrupt checkpoint: file is", "shorter than the 8-byte header length",
                       NULL);

    memcpy(b, "\0\0\0\0\0\0\0\0{}", 10);
    expect_bad_buf(b, 10, LSIM_E_FORMAT, "header length is 0", NULL);
    expect_bad_buf(b, 8, LSIM_E_FORMAT, "header length is 0", NULL);
    /* huge */
    memcpy(b, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    expect_bad_buf(b, 10, LSIM_E_FORMAT, "header length 18446744073709551615 exceeds the limit", NULL);
    uint64_t n = ST_MAX_HEADER + 1ull;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    expect_bad_buf(b, 10, LSIM_E_FORMAT, "exceeds the limit of 104857600 bytes", NULL);
    /* past the end */
    memcpy(b, "\x03\0\0\0\0\0\0\0{}", 10);
    expect_bad_buf(b, 10, LSIM_E_CORRUPT,
                   "corrupt checkpoint: header length 3 runs past the end of the file (10 bytes)", NULL);
    /* one short: cuts the closing brace */
    const char *json = "{" T("a", "F32", "[2]", 0, 8) "}";
    size_t len;
    unsigned char *f = mkfile(json, zeros, 8, &len);
    f[0]--;
    expect_bad_buf(f, len, LSIM_E_FORMAT, "header byte", "expected ',' or '}', found the end of the header", NULL);
    /* one long, swallowing a space: the header parses, the data is a byte short */
    f[0] += 2;
    f[8 + strlen(json)] = ' ';
    expect_bad_buf(f, len, LSIM_E_CORRUPT,
                   "tensor a: data_offsets [0, 8] run past the end of the data section (7 bytes)", NULL);
    free(f);
    /* one long, swallowing a byte that is not a space */
    EXPECT_BAD("{" T("a", "F32", "[2]", 0, 8) "}x", zeros, 8, LSIM_E_FORMAT, "'x' after the header's closing '}'");
}

Test(safetensors, bad_offsets)
{
    EXPECT_BAD("{" T("a", "U8", "[4]", 0, 4) "," T("b", "U8", "[4]", 2, 6) "}", zeros, 6, LSIM_E_FORMAT,
               "tensor b: data_offsets [2, 6] overlap tensor a [0, 4]");
    EXPECT_BAD("{" T("a", "U8", "[4]", 0, 4) "," T("b", "U8", "[4]", 0, 4) "}", zeros, 4, LSIM_E_FORMAT,
               "tensor b: data_offsets [0, 4] overlap tensor a [0, 4]");
    EXPECT_BAD("{" T("a", "U8", "[4]", 0, 4) "," T("e", "U8", "[0]", 2, 2) "}", zeros, 4, LSIM_E_FORMAT,
               "tensor e: data_offsets [2, 2] overlap tensor a");
    EXPECT_BAD("{" T("a", "U8", "[4]", 0, 4) "," T("b", "U8", "[4]", 6, 10) "}", zeros, 10, LSIM_E_FORMAT,
               "tensor b: data_offsets [6, 10] leave a hole of 2 bytes after tensor a (which ends at 4)");
    EXPECT_BAD("{" T("a", "U8", "[4]", 3, 7) "}", zeros, 7, LSIM_E_FORMAT,
               "tensor a: data_offsets [3, 7] leave a hole of 3 bytes at the start of the data section");
    /* the file's size disagrees with its header: truncated or extended, LSIM_E_CORRUPT */
    EXPECT_BAD("{" T("a", "U8", "[4]", 0, 4) "}", zeros, 5, LSIM_E_CORRUPT,
               "the data section has 5 bytes but the tensors end at 4 (1 trailing bytes)");
    EXPECT_BAD("{}", zeros, 3, LSIM_E_CORRUPT, "the data section has 3 bytes but the tensors end at 0");
    EXPECT_BAD("{" T("a", "U8", "[4]", 0, 4) "}", zeros, 3, LSIM_E_CORRUPT,
               "tensor a: data_offsets [0, 4] run past the end of the data section (3 bytes)");
    EXPECT_BAD("{" T("a", "U8", "[0]", 18446744073709551615, 18446744073709551615) "}", zeros, 0, LSIM_E_CORRUPT,
               "tensor a: data_offsets [18446744073709551615, 18446744073709551615] run past the end");
    EXPECT_BAD("{" T("a", "U8", "[4]", 4, 0) "}", zeros, 4, LSIM_E_FORMAT,
               "tensor a: data_offsets [4, 0]: begin is after end");
    EXPECT_BAD("{" T("a", "F32", "[2,3]", 0, 20) "}", zeros, 20, LSIM_E_FORMAT,
               "tensor a: shape [2, 3] of F32 needs 24 bytes, but data_offsets [0, 20] hold 20");
    EXPECT_BAD("{" T("a", "F64", "[]", 0, 4) "}", zeros, 4, LSIM_E_FORMAT,
               "tensor a: shape [] of F64 needs 8 bytes, but data_offsets [0, 4] hold 4");
    EXPECT_BAD("{" T("a", "F32", "[0]", 0, 4) "}", zeros, 4, LSIM_E_FORMAT, "tensor a: shape [0] of F32 needs 0 bytes");
}

Test(safetensors, bad_shapes)
{
    EXPECT_BAD("{" T("big", "U8", "[1099511627776,1099511627776]", 0, 0) "}", zeros, 0, LSIM_E_FORMAT,
               "tensor big: shape [1099511627776, 1099511627776] overflows");
    EXPECT_BAD("{" T("big", "U8", "[1099511627776,1099511627776,0]", 0, 0) "}", zeros, 0, LSIM_E_FORMAT,
               "tensor big: shape [1099511627776, 1099511627776, 0] overflows");
    EXPECT_BAD("{" T("big", "F32", "[4611686018427387904]", 0, 0) "}", zeros, 0, LSIM_E_FORMAT,
               "tensor big: shape [4611686018427387904] of F32 overflows (its byte size exceeds 2^64)");
    EXPECT_BAD("{" T("big", "U8", "[18446744073709551616]", 0, 0) "}", zeros, 0, LSIM_E_FORMAT,
               "tensor big: header byte", "shape: number does not fit 64 bits");
    EXPECT_BAD("{" T("nine", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT,
               "tensor nine: header byte", "shape: more than 8 dimensions");
    EXPECT_BAD("{" T("neg", "U8", "[-1]", 0, 0) "}", zeros, 0, LSIM_E_FORMAT, "tensor neg:", "shape: negative number");
    EXPECT_BAD("{" T("flt", "U8", "[1.0]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor flt:", "shape: not an integer");
    EXPECT_BAD("{" T("exp", "U8", "[1e2]", 0, 100) "}", zeros, 100, LSIM_E_FORMAT, "tensor exp:", "shape: not an integer");
    EXPECT_BAD("{" T("lz", "U8", "[01]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor lz:", "shape: number with a leading zero");
    EXPECT_BAD("{" T("str", "U8", "[\"1\"]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor str:",
               "shape: expected a non-negative integer, found '\"'");
    EXPECT_BAD("{" T("obj", "U8", "{}", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor obj:", "shape: expected an array");
    EXPECT_BAD("{" T("nest", "U8", "[[1]]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor nest:",
               "shape: expected a non-negative integer, found '['");
    EXPECT_BAD("{" T("tc", "U8", "[1,]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor tc:",
               "shape: expected a non-negative integer, found ']'");
    EXPECT_BAD("{" T("sp", "U8", "[1 1]", 0, 1) "}", zeros, 1, LSIM_E_FORMAT, "tensor sp:",
               "shape: expected ',' or ']', found '1'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", zeros, 1, LSIM_E_FORMAT,
               "tensor a:", "data_offsets: expected [BEGIN, END], found 1 number");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", zeros, 1, LSIM_E_FORMAT,
               "tensor a:", "data_offsets: expected [BEGIN, END], found more than 2 numbers");
}

Test(safetensors, bad_fields)
{
    EXPECT_BAD("{" T("w", "BF16", "[1]", 0, 2) "}", zeros, 2, LSIM_E_FORMAT, "tensor w: unknown dtype \"BF16\"");
    EXPECT_BAD("{" T("w", "f32", "[1]", 0, 4) "}", zeros, 4, LSIM_E_FORMAT, "tensor w: unknown dtype \"f32\"");
    EXPECT_BAD("{" T("w", "", "[1]", 0, 4) "}", zeros, 4, LSIM_E_FORMAT, "tensor w: unknown dtype \"\"");
    EXPECT_BAD("{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4, LSIM_E_FORMAT,
               "tensor w: header byte 14: dtype: expected a string, found '4'");
    EXPECT_BAD("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4, LSIM_E_FORMAT, "tensor w: missing \"dtype\"");
    EXPECT_BAD("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", zeros, 4, LSIM_E_FORMAT, "tensor w: missing \"shape\"");
    EXPECT_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", zeros, 4, LSIM_E_FORMAT, "tensor w: missing \"data_offsets\"");
    EXPECT_BAD("{\"w\":{}}", zeros, 0, LSIM_E_FORMAT, "tensor w: missing \"dtype\"");
    EXPECT_BAD("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4,
               LSIM_E_FORMAT, "tensor w:", "a second \"dtype\"");
    EXPECT_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}", zeros, 4,
               LSIM_E_FORMAT, "tensor w:", "a second \"shape\"");
    EXPECT_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"data_offsets\":[0,4]}}", zeros, 4,
               LSIM_E_FORMAT, "tensor w:", "a second \"data_offsets\"");
    EXPECT_BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", zeros, 4,
               LSIM_E_FORMAT, "tensor w: unknown field \"extra\"");
    EXPECT_BAD("{\"w\":[1]}", zeros, 0, LSIM_E_FORMAT, "tensor w: header byte 5: expected an object, found '['");
    EXPECT_BAD("{\"w\":\"F32\"}", zeros, 0, LSIM_E_FORMAT, "tensor w:", "expected an object, found '\"'");
    EXPECT_BAD("{\"w\":null}", zeros, 0, LSIM_E_FORMAT, "tensor w:", "expected an object, found 'n'");
    EXPECT_BAD("{" T("dup", "U8", "[1]", 0, 1) "," T("dup", "U8", "[1]", 1, 2) "}", zeros, 2, LSIM_E_FORMAT,
               "duplicate tensor name dup");
    EXPECT_BAD("{" T("b", "BOOL", "[3]", 0, 3) "}", "\x01\x00\x02", 3, LSIM_E_FORMAT,
               "tensor b: BOOL element 2 is 2, not 0 or 1");
}

Test(safetensors, bad_metadata)
{
    EXPECT_BAD("{\"__metadata__\":{\"dim\":16}}", zeros, 0, LSIM_E_FORMAT,
               "__metadata__: header byte 23: the value of dim is not a string (found '1')");
    EXPECT_BAD("{\"__metadata__\":{\"a\":\"x\",\"nested\":{\"k\":\"v\"}}}", zeros, 0, LSIM_E_FORMAT,
               "__metadata__:", "the value of nested is not a string");
    EXPECT_BAD("{\"__metadata__\":{\"a\":null}}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "the value of a is not a string");
    EXPECT_BAD("{\"__metadata__\":{\"a\":[\"x\"]}}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "the value of a is not a string");
    /* A "tensor" named __metadata__ is the metadata, so it must be an object of strings. */
    EXPECT_BAD("{\"__metadata__\":[1,2]}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "__metadata__ is not an object");
    EXPECT_BAD("{\"__metadata__\":\"x\"}", zeros, 0, LSIM_E_FORMAT, "__metadata__ is not an object");
    EXPECT_BAD("{" T("__metadata__", "F32", "[1]", 0, 4) "}", zeros, 4, LSIM_E_FORMAT,
               "__metadata__:", "the value of shape is not a string");
    EXPECT_BAD("{\"__metadata__\":{},\"__metadata__\":{}}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "a second __metadata__");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", zeros, 0, LSIM_E_FORMAT, "__metadata__: duplicate key k");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"1\",}}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "expected a key (a string), found '}'");
    EXPECT_BAD("{\"__metadata__\":{\"k\" \"1\"}}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "expected ':', found '\"'");
    EXPECT_BAD("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", zeros, 0, LSIM_E_FORMAT, "__metadata__:", "NUL (\\u0000) in a string");
}

Test(safetensors, bad_json)
{
    const unsigned char *z = zeros;
    EXPECT_BAD(" {}", z, 0, LSIM_E_FORMAT, "header byte 0: the header must begin with '{', found byte 0x20");
    EXPECT_BAD("[]", z, 0, LSIM_E_FORMAT, "the header must begin with '{', found '['");
    EXPECT_BAD("{", z, 0, LSIM_E_FORMAT, "header byte 1: expected a tensor name (a string), found the end of the header");
    EXPECT_BAD("{}}", z, 0, LSIM_E_FORMAT, "header byte 2: '}' after the header's closing '}'");
    EXPECT_BAD("{},{}", z, 0, LSIM_E_FORMAT, "',' after the header's closing '}'");
    EXPECT_BAD("{\"a\"}", z, 0, LSIM_E_FORMAT, "header byte 4: expected ':', found '}'");
    EXPECT_BAD("{a:1}", z, 0, LSIM_E_FORMAT, "expected a tensor name (a string), found 'a'");
    EXPECT_BAD("{'a':{}}", z, 0, LSIM_E_FORMAT, "found '''");
    EXPECT_BAD("{" T("a", "U8", "[1]", 0, 1) "," "}", z, 1, LSIM_E_FORMAT, "expected a tensor name (a string), found '}'");
    EXPECT_BAD("{" T("a", "U8", "[1]", 0, 1) " " T("b", "U8", "[1]", 1, 2) "}", z, 2, LSIM_E_FORMAT,
               "expected ',' or '}', found '\"'");
    EXPECT_BAD("{\"a\":{\"dtype\":\"U8\" \"shape\":[1]}}", z, 0, LSIM_E_FORMAT, "tensor a:", "expected ',' or '}', found '\"'");
    /* strings */
    EXPECT_BAD("{\"abc", z, 0, LSIM_E_FORMAT, "header byte 1: unterminated string");
    EXPECT_BAD("{\"a\\", z, 0, LSIM_E_FORMAT, "truncated escape");
    EXPECT_BAD("{\"a\\x\":{}}", z, 0, LSIM_E_FORMAT, "header byte 3: bad escape \\x");
    EXPECT_BAD("{\"a\\u12\":{}}", z, 0, LSIM_E_FORMAT, "bad hex digit in a \\u escape");
    EXPECT_BAD("{\"a\\u12", z, 0, LSIM_E_FORMAT, "truncated \\u escape");
    EXPECT_BAD("{\"a\\u0000b\":{}}", z, 0, LSIM_E_FORMAT, "header byte 3: NUL (\\u0000) in a string");
    EXPECT_BAD("{\"a\\ud800\":{}}", z, 0, LSIM_E_FORMAT, "unpaired high surrogate \\ud800");
    EXPECT_BAD("{\"a\\ud800\\u0041\":{}}", z, 0, LSIM_E_FORMAT, "unpaired high surrogate \\ud800");
    EXPECT_BAD("{\"a\\udc00\":{}}", z, 0, LSIM_E_FORMAT, "unpaired low surrogate \\udc00");
    EXPECT_BAD("{\"a\tb\":{}}", z, 0, LSIM_E_FORMAT, "control byte 0x09 in a string");
    EXPECT_BAD("{\"a\xff\":{}}", z, 0, LSIM_E_FORMAT, "header byte 3: invalid UTF-8 in a string");
    EXPECT_BAD("{\"a\xc3\":{}}", z, 0, LSIM_E_FORMAT, "invalid UTF-8");
    EXPECT_BAD("{\"a\xc0\xaf\":{}}", z, 0, LSIM_E_FORMAT, "invalid UTF-8");         /* overlong '/' */
    EXPECT_BAD("{\"a\xed\xa0\x80\":{}}", z, 0, LSIM_E_FORMAT, "invalid UTF-8");     /* encoded surrogate */
    EXPECT_BAD("{\"a\xf4\x90\x80\x80\":{}}", z, 0, LSIM_E_FORMAT, "invalid UTF-8"); /* above U+10FFFF */
    /* A NUL byte in the header, inside and outside strings. */
    size_t len;
    unsigned char *b = mkfile("{\"a\":{}}", NULL, 0, &len);
    b[10] = 0;
    expect_bad_buf(b, len, LSIM_E_FORMAT, "control byte 0x00 in a string", NULL);
    b[10] = 'a';
    b[13] = 0;
    expect_bad_buf(b, len, LSIM_E_FORMAT, "tensor a:", "found byte 0x00", NULL);
    free(b);
}

Test(safetensors, deep_nesting)
{
    /* The grammar has depth 3; nesting anywhere deeper fails at its first
     * bracket, without recursion (so without a stack to exhaust). */
    size_t depth = 1000000;
    char *json = malloc(2 * depth + 64);
    cr_assert_not_null(json);
    size_t n = (size_t)sprintf(json, "{\"a\":");
    for (size_t i = 0; i < depth; i++) json[n++] = '[';
    for (size_t i = 0; i < depth; i++) json[n++] = ']';
    json[n++] = '}';
    json[n] = 0;
    EXPECT_BAD(json, zeros, 0, LSIM_E_FORMAT, "tensor a: header byte 5: expected an object, found '['");
    n = (size_t)sprintf(json, "{\"a\":{\"shape\":");
    for (size_t i = 0; i < depth; i++) json[n++] = '[';
    json[n] = 0;
    EXPECT_BAD(json, zeros, 0, LSIM_E_FORMAT, "tensor a:", "shape: expected a non-negative integer, found '['");
    n = (size_t)sprintf(json, "{\"__metadata__\":{\"k\":");
    for (size_t i = 0; i < depth; i++) json[n++] = '{';
    json[n] = 0;
    EXPECT_BAD(json, zeros, 0, LSIM_E_FORMAT, "__metadata__:", "the value of k is not a string");
    n = 0;
    for (size_t i = 0; i < depth; i++) json[n++] = '{';
    json[n] = 0;
    EXPECT_BAD(json, zeros, 0, LSIM_E_FORMAT, "header byte 1: expected a tensor name (a string), found '{'");
    free(json);
}

/* A long name is cut in messages, and control bytes are shown escaped. */
Test(safetensors, message_quoting)
{
    char json[2048], name[600];
    memset(name, 'n', 500);
    name[500] = 0;
    snprintf(json, sizeof json, "{\"%s\\n\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}", name);
    size_t len;
    unsigned char *b = mkfile(json, NULL, 0, &len);
    char err[LSIM_ERRLEN];
    st_file *f;
    cr_assert_eq(open_buf(b, len, &f, err, sizeof err), LSIM_E_FORMAT);
    cr_assert(strstr(err, "nnn...: unknown dtype \"X\""), "%s", err);
    free(b);
    b = mkfile("{\"a\\nb\\u0001\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}", NULL, 0, &len);
    cr_assert_eq(open_buf(b, len, &f, err, sizeof err), LSIM_E_FORMAT);
    cr_assert(strstr(err, "tensor a\\x0ab\\x01: unknown dtype"), "%s", err);
    free(b);
    /* A small err buffer: truncated, NUL-terminated. */
    char small[8];
    b = mkfile("[", NULL, 0, &len);
    cr_assert_eq(open_buf(b, len, &f, small, sizeof small), LSIM_E_FORMAT);
    cr_assert_eq(strlen(small), 7);
    free(b);
}

/* ---- systematic corruption -------------------------------------------------- */

/* A small valid file from the writer: a few tensors of several dtypes,
 * metadata, a scalar and an empty tensor. Without its checksum entry (blanked
 * out: JSON allows the spaces), so that changes reach the parser; with it,
 * every change is refused by the checksum first (checksum_* below). */
static unsigned char *small_file_crc(size_t *len, uint64_t *hlen, int keep_crc)
{
    char err[LSIM_ERRLEN];
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t b[2] = {-1, 1};
    uint8_t c[3] = {1, 0, 1};
    double s = 2.5;
    cr_assert_eq(st_writer_meta(w, "kind", "sim"), 0);
    cr_assert_eq(st_writer_add(w, "a", ST_F32, 2, (uint64_t[]){2, 3}, a), 0);
    cr_assert_eq(st_writer_add(w, "b", ST_I64, 1, (uint64_t[]){2}, b), 0);
    cr_assert_eq(st_writer_add(w, "c", ST_BOOL, 1, (uint64_t[]){3}, c), 0);
    cr_assert_eq(st_writer_add(w, "s", ST_F64, 0, NULL, &s), 0);
    cr_assert_eq(st_writer_add(w, "e", ST_I32, 2, (uint64_t[]){0, 3}, NULL), 0);
    const char *p = tpath("small.safetensors");
    cr_assert_eq(st_writer_write(w, p, err, sizeof err), 0, "%s", err);
    st_writer_free(w);
    unsigned char *buf = slurp(p, len);
    *hlen = 0;
    for (int i = 7; i >= 0; i--) *hlen = (*hlen << 8) | buf[i];
    static const char entry[] = "\"lsim.crc32c\":\"";
    cr_assert(memcmp(buf + 8 + 17, entry, sizeof entry - 1) == 0 && buf[8 + 17 + 24] == ',');
    if (!keep_crc) memset(buf + 8 + 17, ' ', 25); /* "lsim.crc32c":"XXXXXXXX", */
    return buf;
}

static unsigned char *small_file(size_t *len, uint64_t *hlen)
{
    return small_file_crc(len, hlen, 0);
}

/* Opens buf; returns the code. A success must be self-consistent; a failure
 * must name the file. */
static int try_open(const unsigned char *buf, size_t len)
{
    char err[LSIM_ERRLEN] = "";
    st_file *f = NULL;
    int rc = open_buf(buf, len, &f, err, sizeof err);
    if (rc == 0) {
        check_consistent(f);
        st_close(f);
    } else {
        const char *p = tpath("t.safetensors");
        cr_assert(rc == LSIM_E_FORMAT || rc == LSIM_E_CORRUPT, "code %d: %s", rc, err);
        cr_assert(rc == LSIM_E_FORMAT || strstr(err, ": corrupt checkpoint: "), "%s", err);
        cr_assert(strncmp(err, p, strlen(p)) == 0, "message does not name the file: %s", err);
        cr_assert_null(f);
    }
    return rc;
}

Test(safetensors, every_truncation)
{
    size_t len;
    uint64_t hlen;
    unsigned char *buf = small_file(&len, &hlen);
    cr_assert_eq(try_open(buf, len), 0);
    for (size_t n = 0; n < len; n++) cr_assert_neq(try_open(buf, n), 0, "truncated to %zu bytes: opened", n);
    /* and every extension by trailing garbage */
    unsigned char *ext = malloc(len + 16);
    memcpy(ext, buf, len);
    for (size_t k = 1; k <= 16; k++) {
        ext[len + k - 1] = (unsigned char)k;
        cr_assert_neq(try_open(ext, len + k), 0, "%zu trailing bytes accepted", k);
    }
    free(ext);
    free(buf);
}

Test(safetensors, every_header_byte_changed)
{
    size_t len;
    uint64_t hlen;
    unsigned char *buf = small_file(&len, &hlen);
    static const unsigned char vals[] = {0x00, 0xff, ' ', '"', '0', '9', '{', '}', '[', ']', ',', ':', '\\', 'x', 0x80};
    size_t tried = 0, failed = 0;
    for (size_t i = 0; i < 8 + hlen; i++) {
        unsigned char orig = buf[i];
        for (size_t v = 0; v < sizeof vals + 2; v++) {
            unsigned char nv = v < sizeof vals ? vals[v] : v == sizeof vals ? (unsigned char)(orig ^ 1) : (unsigned char)(orig ^ 0x80);
            if (nv == orig) continue;
            buf[i] = nv;
            tried++;
            failed += try_open(buf, len) != 0;
        }
        buf[i] = orig;
    }
    fprintf(stderr, "header byte changes: %zu tried, %zu refused, %zu still valid (names, padding, metadata text)\n",
            tried, failed, tried - failed);
    cr_assert(failed > tried * 8 / 10, "only %zu of %zu refused", failed, tried);
    free(buf);
}

Test(safetensors, random_mutations)
{
    size_t len;
    uint64_t hlen;
    unsigned char *buf = small_file(&len, &hlen);
    unsigned char *m = malloc(len + 64);
    uint64_t s = 12345;
    static const char tokens[] = " \"0123456789{}[],:\\-.eu";
    for (int it = 0; it < 20000; it++) {
        size_t n = len;
        memcpy(m, buf, len);
        for (int k = 1 + (int)(tu_rand(&s) % 4); k > 0; k--) {
            size_t lim = 8 + hlen + (it % 4 == 0 ? len - 8 - hlen : 0);
            if (lim > n) lim = n;
            size_t at = tu_rand(&s) % lim;
            uint64_t r = tu_rand(&s);
            switch (r % 4) {
            case 0: m[at] = (unsigned char)(r >> 8); break;
            case 1: m[at] = (unsigned char)tokens[(r >> 8) % (sizeof tokens - 1)]; break;
            case 2: /* delete a byte (the length prefix may then disagree) */
                memmove(m + at, m + at + 1, n - at - 1);
                n--;
                break;
            default: /* insert a byte */
                if (n < len + 60) {
                    memmove(m + at + 1, m + at, n - at);
                    m[at] = (unsigned char)tokens[(r >> 8) % (sizeof tokens - 1)];
                    n++;
                }
            }
        }
        if (it % 3 == 0) { /* keep the length prefix consistent with the edited header */
            uint64_t nh = hlen + n - len;
            for (int i = 0; i < 8; i++) m[i] = (unsigned char)(nh >> (8 * i));
        }
        try_open(m, n);
    }
    free(m);
    free(buf);
}

/* ---- the checksum entry (docs/CHECKPOINT_FORMAT.md, "Checksum") ---- */

static int open_code(const unsigned char *buf, size_t len, char *err, size_t errlen)
{
    st_file *f = NULL;
    int rc = open_buf(buf, len, &f, err, errlen);
    st_close(f);
    return rc;
}

/* Every change of one byte, anywhere in a file lsim wrote, and every
 * truncation and extension: LSIM_E_CORRUPT, "corrupt checkpoint". */
Test(safetensors, checksum_refuses_every_change)
{
    char err[LSIM_ERRLEN];
    size_t len;
    uint64_t hlen;
    unsigned char *buf = small_file_crc(&len, &hlen, 1);
    cr_assert_eq(open_code(buf, len, err, sizeof err), 0, "%s", err);
    for (size_t i = 0; i < len; i++) { /* one bit of each byte, bits in turn */
        buf[i] ^= (unsigned char)(1 << i % 8);
        int rc = open_code(buf, len, err, sizeof err);
        cr_assert(rc == LSIM_E_CORRUPT && strstr(err, "corrupt checkpoint"), "byte %zu: %d %s", i, rc, err);
        buf[i] ^= (unsigned char)(1 << i % 8);
    }
    for (size_t n = 0; n < len; n++) {
        int rc = open_code(buf, n, err, sizeof err);
        cr_assert(rc == LSIM_E_CORRUPT && strstr(err, "corrupt checkpoint"), "cut to %zu: %d %s", n, rc, err);
    }
    unsigned char *ext = malloc(len + 8);
    memcpy(ext, buf, len);
    memset(ext + len, ' ', 8);
    for (size_t k = 1; k <= 8; k++)
        cr_assert_eq(open_code(ext, len + k, err, sizeof err), LSIM_E_CORRUPT, "%zu more bytes: %s", k, err);
    free(ext);
    free(buf);
}

/* The entry is the file's, not metadata: st_meta does not list it, the
 * writer refuses it, and one anywhere but first (so never checked) is
 * refused. */
Test(safetensors, checksum_entry_is_not_metadata)
{
    char err[LSIM_ERRLEN];
    size_t len;
    uint64_t hlen;
    unsigned char *buf = small_file_crc(&len, &hlen, 1);
    st_file *f;
    cr_assert_eq(open_buf(buf, len, &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(st_meta_count(f), 1);
    cr_assert_null(st_meta(f, "lsim.crc32c"));
    cr_assert_str_eq(st_meta(f, "kind"), "sim");
    st_close(f);
    st_writer *w;
    cr_assert_eq(st_writer_new(&w), 0);
    cr_assert_eq(st_writer_meta(w, "lsim.crc32c", "00000000"), LSIM_E_INVAL);
    st_writer_free(w);
    EXPECT_BAD("{\"__metadata__\":{\"a\":\"b\",\"lsim.crc32c\":\"00000000\"}}", zeros, 0, LSIM_E_FORMAT,
               "__metadata__: an unchecked lsim.crc32c: it must be the first entry");
    /* a damaged entry (1 to 3 bytes of its key differ) is corruption, whatever the file says after it */
    EXPECT_BAD("{\"__metadata__\":{\"lsim.crc32C\":\"00000000\"}}", zeros, 0, LSIM_E_CORRUPT,
               "corrupt checkpoint: its checksum entry (lsim.crc32c, the header's first bytes) is damaged");
    EXPECT_BAD("{\"__metadata__\":{\"lsim.crc32c\":\"0000000g\"}}", zeros, 0, LSIM_E_CORRUPT,
               "corrupt checkpoint: its checksum lsim.crc32c is not 8 hex digits");
    free(buf);
}
