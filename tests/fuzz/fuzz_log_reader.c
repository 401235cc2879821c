/*
 * fuzz_log_reader.c: libFuzzer target for the behavior-log readers
 * (loaders/log_reader.h): the input read to its end as a Taobao log and as
 * a CSV log with a column mapping (two mappings, one with a header and a
 * tab delimiter, and one the input's first line gives), every event checked for its NUL-terminated fields.
 */
#include "fuzz_util.h"
#include "loaders/log_reader.h"

static void field(const char *s, uint32_t len)
{
    if (!s || strlen(s) != len) abort();
}

static void read_all(const char *path, const log_spec *spec)
{
    log_reader *r = NULL;
    char err[512];
    int rc = log_reader_open(&r, path, spec, err, sizeof err);
    fuzz_check_rc(rc, "log_reader_open");
    if (rc) return;
    log_event ev;
    uint64_t last_line = 0;
    for (;;) {
        rc = log_reader_next(r, &ev);
        if (rc == LOG_READ_EOF) break;
        if (rc == LOG_READ_BAD) {
            if (!log_reader_errmsg(r)) abort();
            continue;
        }
        fuzz_check_rc(rc == LOG_READ_EVENT ? 0 : rc, "log_reader_next");
        if (rc < 0) break;
        field(ev.user, ev.user_len);
        field(ev.item, ev.item_len);
        field(ev.cat, ev.cat_len);
        field(ev.type, ev.type_len);
        if (ev.request) field(ev.request, ev.request_len);
        if (ev.ts < spec->ts_min || ev.ts > spec->ts_max) abort();
        if (ev.line <= last_line) abort();
        last_line = ev.line;
    }
    if (log_reader_bytes_read(r) > log_reader_bytes_total(r)) abort();
    log_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_temp_file(data, size);
    if (!path) return 0;
    char err[256];
    log_spec spec;

    log_spec_default(&spec, LOG_FORMAT_TAOBAO);
    read_all(path, &spec);

    log_spec_default(&spec, LOG_FORMAT_CSV);
    if (log_spec_parse_columns(&spec, "user=1,item=2,category=3,type=4,ts=5", err, sizeof err)) abort();
    read_all(path, &spec);

    log_spec_default(&spec, LOG_FORMAT_CSV);
    spec.delimiter = '\t';
    spec.header = 1;
    spec.ts_min = 1000;
    if (log_spec_parse_columns(&spec, "ts=1,item=3,user=2,request=4,label=5", err, sizeof err)) abort();
    read_all(path, &spec);

    /* The input's first line as a column mapping; when it parses, the rest is read with it. */
    char mapping[256];
    size_t m = 0;
    while (m < size && m < sizeof mapping - 1 && data[m] != '\n') {
        mapping[m] = (char)data[m];
        m++;
    }
    mapping[m] = 0;
    log_spec_default(&spec, LOG_FORMAT_CSV);
    spec.header = 1;
    int rc = log_spec_parse_columns(&spec, mapping, err, sizeof err);
    fuzz_check_rc(rc, "log_spec_parse_columns");
    if (rc == 0) read_all(path, &spec);

    unlink(path);
    return 0;
}
