/*
 * cli_util.h: what the lsim subcommands share: exit codes, number parsing,
 * JSON string output, the progress line and bad-line reporting (tools only).
 */
#ifndef LSIM_CLI_UTIL_H
#define LSIM_CLI_UTIL_H

#include "lsim.h"

#include <stdint.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Parses a whole decimal integer in [lo, hi]; 0 or -1 (and a message naming opt). */
int cli_parse_i64(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
/* The same for a finite number in [lo, hi]. */
int cli_parse_double(const char *opt, const char *s, double lo, double hi, double *out);

/* Writes s as a JSON string (quoted, escaped; bytes >= 0x80 pass through). */
void cli_json_string(FILE *f, const char *s);

/* Writes ev[0..n) as a JSON array of {"item", ["category",] "ts", "type"};
 * reversed = 1 writes them last to first. */
void cli_json_events(FILE *f, const lsim_event *ev, size_t n, int with_category, int reversed);

/* A usage error: prints "lsim CMD: msg" and "try `lsim CMD --help`"; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...);

/* Progress on stderr when it is a terminal: one line rewritten in place. */
typedef struct cli_progress {
    int tty;
    int printed;
} cli_progress;
void cli_progress_init(cli_progress *p);
void cli_progress_line(cli_progress *p, const char *fmt, ...);
void cli_progress_done(cli_progress *p);

/* Bad lines: the first `show` are printed as they come, all are counted. */
typedef struct cli_bad_lines {
    uint64_t seen;
    uint64_t show;
    cli_progress *progress;
} cli_bad_lines;
void cli_on_bad_line(void *ctx, const char *msg);

/* The default split time of an index: the start (00:00 UTC) of the day of
 * its last event. 0, or an error printed as "lsim CMD: DIR: reason". */
int cli_default_split(lsim_index *ix, const char *cmd, const char *dir, int64_t *out);

/* A field delimiter option: one character, or '\t' / "tab" for a tab. 0, or a usage
 * error printed (returns EXIT_USAGE). */
int cli_parse_delimiter(const char *cmd, const char *arg, char *out);

/* A request log as `lsim eval --requests` and `lsim replay` read it
 * (loaders/request_log.h): --format jsonl (default) or csv with --columns,
 * --delimiter, --header; --strict stops at the first bad request. */
typedef struct cli_request_opts {
    const char *path, *format, *columns, *delimiter;
    int header, strict;
} cli_request_opts;
#define CLI_REQUEST_OPTS_HELP                                                                                  \
    "  --format F        the request log's format: jsonl (default) or csv, with --columns MAP\n"               \
    "                    (index build's, plus request=N and label=N), --delimiter C, --header\n"              \
    "  --strict          stop at the first bad request (default: drop it, count it, show 10)\n"
struct request_set;
/* Reads o->path; bad requests are shown (the first 10) and counted. 0, or an
 * error printed as "lsim CMD: ..." (EXIT_USAGE for bad options: *usage set). */
int cli_load_requests(const char *cmd, const cli_request_opts *o, size_t max_candidates, struct request_set **out,
                      int *usage);

/* Formats a byte count ("12.3 MB") into buf. */
const char *cli_bytes(char *buf, size_t cap, double bytes);

#endif
