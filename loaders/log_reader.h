/*
 * log_reader.h: streaming readers of behavior logs (private).
 *
 * One reader turns one log file into a stream of raw events. It is not the
 * index: it maps nothing to dense ids and keeps nothing of past lines, so its
 * memory does not depend on the log's length (the Amazon reader also holds
 * the item-info table, which is the size of the catalog, not of the log).
 *
 * Formats:
 *   LOG_FORMAT_TAOBAO  Tianchi UserBehavior CSV: user,item,category,type,timestamp;
 *                      type one of pv, buy, cart, fav.
 *   LOG_FORMAT_AMAZON  DIEN pipeline reviews-info: user \t item \t rating \t ts,
 *                      joined with item-info (item \t category); items absent
 *                      from item-info get category "unknown"; type is "review".
 *   LOG_FORMAT_CSV     any delimited file with a column mapping (1-based columns);
 *                      category absent -> "unknown"; type absent -> "event".
 * Lines end in \n or \r\n; a last line without a newline is read.
 *
 * Bad lines: log_reader_next returns LOG_READ_BAD, the reader has moved past
 * the line, and log_reader_errmsg() says "FILE:LINE: reason". The caller
 * decides to skip (and count) or to stop. Reasons: wrong field count, empty
 * id, field longer than LSIM_MAX_ID_LEN, NUL byte, non-numeric timestamp,
 * timestamp outside [ts_min, ts_max], unknown Taobao behavior type, line
 * longer than LOG_MAX_LINE. Bytes that are not UTF-8 are accepted as they are.
 */
#ifndef LSIM_LOG_READER_H
#define LSIM_LOG_READER_H

#include <stddef.h>
#include <stdint.h>

#define LOG_MAX_LINE 65536
#define LOG_TS_MIN_DEFAULT 0LL           /* 1970-01-01 */
#define LOG_TS_MAX_DEFAULT 4102444799LL  /* 2099-12-31 23:59:59 */

typedef enum log_format { LOG_FORMAT_TAOBAO, LOG_FORMAT_AMAZON, LOG_FORMAT_CSV } log_format;

typedef struct log_spec {
    log_format format;
    /* LOG_FORMAT_CSV only: */
    char delimiter;   /* default ',' */
    int header;       /* 1: the first line is a header and is skipped */
    int col_user, col_item, col_cat, col_type, col_ts; /* 1-based; 0 = absent (cat, type only) */
    int col_request, col_label; /* request logs (loaders/request_log.h): 0 = absent */
    /* LOG_FORMAT_AMAZON only: path of item-info (required). */
    const char *item_info_path;
    /* Valid timestamp range, inclusive, for every format. */
    int64_t ts_min, ts_max;
} log_spec;

/* Fills a spec for `format` with the defaults above (Taobao/Amazon columns,
 * ',' delimiter, no header, the default ts range). */
void log_spec_default(log_spec *spec, log_format format);

/* Parses a format name ("taobao", "amazon", "csv"); returns 0 or LSIM_E_INVAL. */
int log_format_parse(const char *name, log_format *out);

/* Parses a column mapping "user=1,item=2,category=3,ts=5,type=4" into spec.
 * Keys: user, item, category (or cat), type, ts (or timestamp), and for
 * request logs request and label. user, item and ts are required. Returns 0,
 * or LSIM_E_INVAL with a reason in err. */
int log_spec_parse_columns(log_spec *spec, const char *mapping, char *err, size_t errlen);

/* One event as read from the log. The pointers point into the reader's
 * buffer, are NUL-terminated, and are valid until the next log_reader_next
 * or log_reader_close. */
typedef struct log_event {
    const char *user, *item, *cat, *type;
    uint32_t user_len, item_len, cat_len, type_len;
    const char *request;  /* CSV with a request column (else NULL) */
    uint32_t request_len;
    int label;            /* CSV with a label column: 0 or 1 (a bad label is a bad line); else -1 */
    int64_t ts;
    uint64_t line; /* 1-based line number in the log */
} log_event;

typedef struct log_reader log_reader;

/* Opens `path` ("-" is stdin) for reading with `spec` (copied). On failure
 * returns LSIM_E_IO / LSIM_E_INVAL / LSIM_E_FORMAT / LSIM_E_NOMEM, *out is
 * NULL, and err holds "PATH: reason". For Amazon, the item-info file is read
 * here; its bad lines are reported by log_reader_next as LOG_READ_BAD (with
 * the item-info file's name and line) before the first review. */
int log_reader_open(log_reader **out, const char *path, const log_spec *spec, char *err,
                    size_t errlen);
void log_reader_close(log_reader *r);

enum { LOG_READ_EOF = 0, LOG_READ_EVENT = 1, LOG_READ_BAD = 2 };

/* Reads the next line. Returns LOG_READ_EVENT (and fills *ev), LOG_READ_BAD
 * (a bad line was skipped; see log_reader_errmsg), LOG_READ_EOF, or a
 * negative LSIM_E_IO on a read error (message in log_reader_errmsg). */
int log_reader_next(log_reader *r, log_event *ev);

/* "FILE:LINE: reason" for the last LOG_READ_BAD or error. Valid until the next call. */
const char *log_reader_errmsg(const log_reader *r);

/* Bytes consumed so far and the file's total size (0 when unknown, e.g. a pipe),
 * for progress reports. */
uint64_t log_reader_bytes_read(const log_reader *r);
uint64_t log_reader_bytes_total(const log_reader *r);

#endif
