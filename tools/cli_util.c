/*
 * cli_util.c: see cli_util.h.
 */
#include "tools/cli_util.h"

#include "index/index_internal.h"
#include "loaders/request_log.h"
#include "storage/error_detail.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "lsim: %s: '%s' is not an integer in [%lld, %lld]\n", opt, s, (long long)lo,
                (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "lsim: %s: '%s' is not a number in [%g, %g]\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_json_events(FILE *f, const lsim_event *ev, size_t n, int with_category, int reversed)
{
    fputc('[', f);
    for (size_t j = 0; j < n; j++) {
        const lsim_event *e = &ev[reversed ? n - 1 - j : j];
        fputs(j ? ", {\"item\": " : "{\"item\": ", f);
        cli_json_string(f, e->item);
        if (with_category) {
            fputs(", \"category\": ", f);
            cli_json_string(f, e->category);
        }
        fprintf(f, ", \"ts\": %lld, \"type\": ", (long long)e->ts);
        cli_json_string(f, e->type);
        fputc('}', f);
    }
    fputc(']', f);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lsim %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry `lsim %s --help`\n", cmd);
    return EXIT_USAGE;
}

void cli_progress_init(cli_progress *p)
{
    p->tty = isatty(2);
    p->printed = 0;
}

void cli_progress_line(cli_progress *p, const char *fmt, ...)
{
    if (!p->tty) return;
    va_list ap;
    fputs("\r\033[K", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
    p->printed = 1;
}

void cli_progress_done(cli_progress *p)
{
    if (p->tty && p->printed) fputs("\r\033[K", stderr);
    p->printed = 0;
}

void cli_on_bad_line(void *ctx, const char *msg)
{
    cli_bad_lines *b = ctx;
    b->seen++;
    if (b->seen > b->show + 1) return;
    if (b->progress) cli_progress_done(b->progress);
    /* the note comes with the first line not shown, so that exactly `show` bad lines get no note */
    if (b->seen <= b->show) fprintf(stderr, "%s\n", msg);
    else fprintf(stderr, "(further bad lines are counted, not shown)\n");
}

const char *cli_bytes(char *buf, size_t cap, double bytes)
{
    const char *unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000 && u < 4) {
        bytes /= 1000;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

int cli_default_split(lsim_index *ix, const char *cmd, const char *dir, int64_t *out)
{
    lsim_index_reader *rd;
    int64_t first, last;
    int rc = lsim_index_reader_new(ix, &rd);
    if (rc) {
        fprintf(stderr, "lsim %s: %s: cannot open a reader\n", cmd, dir);
        return rc;
    }
    if ((rc = index_time_range(rd, &first, &last))) fprintf(stderr, "lsim %s: %s: %s\n", cmd, dir,
                                                            lsim_index_reader_errmsg(rd));
    lsim_index_reader_free(rd);
    if (!rc && last == INT64_MIN) {
        fprintf(stderr, "lsim %s: %s: the index holds no events\n", cmd, dir);
        rc = LSIM_E_NOTFOUND;
    }
    if (!rc) *out = (last >= 0 ? last / 86400 : (last - 86399) / 86400) * 86400;
    return rc;
}

int cli_load_requests(const char *cmd, const cli_request_opts *o, size_t max_candidates, request_set **out,
                      int *usage)
{
    *out = NULL;
    *usage = 0;
    request_log_spec sp;
    request_log_spec_default(&sp);
    char err[LSIM_ERRLEN];
    if (!o->format || !strcmp(o->format, "jsonl")) {
        if (o->columns || o->delimiter || o->header) {
            *usage = 1;
            return cli_usage_error(cmd, "--columns, --delimiter and --header are for --format csv");
        }
    } else if (!strcmp(o->format, "csv")) {
        sp.delimited = 1;
        if (!o->columns) {
            *usage = 1;
            return cli_usage_error(cmd, "--format csv needs --columns (with request=N and label=N)");
        }
        if (log_spec_parse_columns(&sp.log, o->columns, err, sizeof err)) {
            *usage = 1;
            return cli_usage_error(cmd, "--columns: %s", err);
        }
        if (o->delimiter && cli_parse_delimiter(cmd, o->delimiter, &sp.log.delimiter)) {
            *usage = 1;
            return EXIT_USAGE;
        }
        sp.log.header = o->header;
    } else {
        *usage = 1;
        return cli_usage_error(cmd, "unknown --format '%s' (jsonl, csv)", o->format);
    }
    cli_bad_lines bad = {0, 10, NULL};
    sp.on_bad = cli_on_bad_line;
    sp.ctx = &bad;
    sp.strict = o->strict;
    sp.max_candidates = max_candidates;
    int rc = request_log_read(out, o->path, &sp, err, sizeof err);
    if (rc) {
        fprintf(stderr, "lsim %s: %s\n", cmd, err);
        return rc;
    }
    if (!request_set_size(*out)) {
        fprintf(stderr, "lsim %s: %s: no requests%s\n", cmd, o->path, bad.seen ? " (every one was bad)" : "");
        request_set_free(*out);
        *out = NULL;
        return LSIM_E_NOTFOUND;
    }
    if (bad.seen)
        fprintf(stderr, "lsim %s: %s: %llu bad requests or rows dropped, %zu requests kept\n", cmd, o->path,
                (unsigned long long)bad.seen, request_set_size(*out));
    return 0;
}

int cli_parse_delimiter(const char *cmd, const char *arg, char *out)
{
    if (!strcmp(arg, "\\t") || !strcmp(arg, "tab")) *out = '\t';
    else if (strlen(arg) == 1) *out = arg[0];
    else return cli_usage_error(cmd, "--delimiter wants one character, '\\t' or 'tab'");
    return 0;
}
