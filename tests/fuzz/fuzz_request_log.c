/*
 * fuzz_request_log.c: libFuzzer target for the request-log reader
 * (loaders/request_log.h): the input read as JSON Lines and as a delimited
 * log with a fixed column mapping; every request read is walked.
 */
#include "fuzz_util.h"
#include "loaders/request_log.h"

static void walk(const request_set *s)
{
    size_t max_n = request_set_max_n(s);
    lsim_candidate *c = malloc((max_n ? max_n : 1) * sizeof *c);
    if (!c) abort();
    size_t total = 0;
    for (size_t i = 0; i < request_set_size(s); i++) {
        request_view v;
        request_set_get(s, i, &v);
        if (v.n > max_n || strlen(v.id) != v.id_len || strlen(v.user) != v.user_len) abort();
        if (v.user_no >= request_set_users(s)) abort();
        request_set_fill(s, i, c);
        for (size_t k = 0; k < v.n; k++)
            if (v.label[k] != 0.0f && v.label[k] != 1.0f) abort();
        total += v.n;
    }
    if (total != request_set_candidates(s)) abort();
    free(c);
}

static void read_one(const char *path, const request_log_spec *spec)
{
    request_set *s = NULL;
    char err[512];
    int rc = request_log_read(&s, path, spec, err, sizeof err);
    fuzz_check_rc(rc, "request_log_read");
    if (rc == 0) {
        walk(s);
        request_set_free(s);
    } else if (s) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_temp_file(data, size);
    if (!path) return 0;

    request_log_spec spec;
    request_log_spec_default(&spec);
    read_one(path, &spec);
    spec.max_candidates = 3;
    spec.strict = 1;
    read_one(path, &spec);

    request_log_spec_default(&spec);
    spec.delimited = 1;
    log_spec_default(&spec.log, LOG_FORMAT_CSV);
    char err[256];
    if (log_spec_parse_columns(&spec.log, "request=1,user=2,item=3,category=4,ts=5,label=6", err, sizeof err) != 0)
        abort();
    read_one(path, &spec);

    unlink(path);
    return 0;
}
