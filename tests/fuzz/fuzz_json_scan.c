/*
 * fuzz_json_scan.c: libFuzzer target for the JSON scanner
 * (loaders/json_scan.h): the input skipped as one value, and walked as a
 * request line ({"id", "user", "time", "candidates": [...]}) the way the
 * request-log reader walks it, with the scanner's typed readers.
 */
#include "fuzz_util.h"
#include "loaders/json_scan.h"

static int check(int rc)
{
    fuzz_check_rc(rc, "json_scan");
    return rc;
}

static int candidate(json_scan *j)
{
    char buf[64];
    size_t len;
    int64_t label;
    if (check(json_expect(j, '{', "a candidate"))) return -1;
    if (json_accept(j, '}')) return 0;
    do {
        if (check(json_string(j, buf, sizeof buf, &len, "key"))) return -1;
        if (check(json_expect(j, ':', "':'"))) return -1;
        if (!strcmp(buf, "item") || !strcmp(buf, "category")) {
            if (check(json_id(j, buf, sizeof buf, &len, "id"))) return -1;
            if (len >= sizeof buf || strlen(buf) != len) abort();
        } else if (!strcmp(buf, "label")) {
            if (check(json_int(j, 0, 1, &label, "label"))) return -1;
            if (label < 0 || label > 1) abort();
        } else if (check(json_skip(j))) {
            return -1;
        }
    } while (json_accept(j, ','));
    return check(json_expect(j, '}', "'}'"));
}

static void request_line(const uint8_t *data, size_t size)
{
    char err[256], key[64], id[64];
    size_t len;
    json_scan j;
    json_scan_init(&j, (const char *)data, size, "fuzz:1", err, sizeof err);
    if (check(json_expect(&j, '{', "a request"))) return;
    if (!json_accept(&j, '}')) {
        do {
            if (check(json_string(&j, key, sizeof key, &len, "key"))) return;
            if (check(json_expect(&j, ':', "':'"))) return;
            if (!strcmp(key, "id") || !strcmp(key, "user")) {
                if (check(json_id(&j, id, sizeof id, &len, key))) return;
            } else if (!strcmp(key, "time")) {
                int64_t t;
                if (check(json_int(&j, 1, 4102444799LL, &t, "time"))) return;
            } else if (!strcmp(key, "n")) {
                uint64_t u;
                if (check(json_uint(&j, &u, "n"))) return;
            } else if (!strcmp(key, "w")) {
                double d;
                if (check(json_number(&j, &d, "w"))) return;
            } else if (!strcmp(key, "candidates")) {
                if (check(json_expect(&j, '[', "'['"))) return;
                if (!json_accept(&j, ']')) {
                    do {
                        if (candidate(&j)) return;
                    } while (json_accept(&j, ','));
                    if (check(json_expect(&j, ']', "']'"))) return;
                }
            } else if (check(json_skip(&j))) {
                return;
            }
        } while (json_accept(&j, ','));
        if (check(json_expect(&j, '}', "'}'"))) return;
    }
    check(json_end(&j));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256], found[32];
    json_scan j;
    json_scan_init(&j, (const char *)data, size, "fuzz", err, sizeof err);
    if (check(json_skip(&j)) == 0) check(json_end(&j));
    json_found(&j, found, sizeof found);
    if (j.p < j.start || j.p > j.end) abort();

    request_line(data, size);
    return 0;
}
