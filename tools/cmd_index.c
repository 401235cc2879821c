/*
 * cmd_index.c: `lsim index build|append|stats|verify|dump`. Thin: options in,
 * library calls, output out.
 */
#include "index/index_internal.h"
#include "index/index_verify.h"
#include "index/index_write.h"
#include "engine/uic_mimn.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char build_help[] =
    "usage: lsim index build  --index DIR --input FILE [--input FILE...] [options]\n"
    "       lsim index append --index DIR --input FILE [--input FILE...] [options]\n"
    "\n"
    "build: reads behavior logs and writes a new index (User Behavior Tree) in DIR.\n"
    "append: adds the events of new logs to an existing index, atomically.\n"
    "\n"
    "  --index DIR         the index directory (an LMDB environment)\n"
    "  --input FILE        a log file, '-' for stdin; repeat for several (also positional)\n"
    "  --format F          taobao (default): user,item,category,type,timestamp\n"
    "                      amazon: reviews-info (user\\titem\\trating\\tts) + --item-info\n"
    "                      csv: any delimited log, with --columns\n"
    "  --item-info FILE    amazon: the item\\tcategory file\n"
    "  --columns MAP       csv: e.g. user=1,item=2,category=3,ts=5,type=4 (1-based;\n"
    "                      category and type optional)\n"
    "  --delimiter C       csv: field delimiter (',' default; '\\t' or 'tab' for tab)\n"
    "  --header            csv: skip the first line\n"
    "  --ts-min TS, --ts-max TS  valid timestamp range (default 0 .. 4102444799)\n"
    "  --strict            fail (exit 1, index untouched) at the first bad line;\n"
    "                      otherwise bad lines are skipped, counted, the first 10 shown\n"
    "  --shard I/N         keep only users of shard I of N (FNV-1a 64 of the raw user id mod N)\n"
    "  --force             build: replace an existing index\n"
    "  --mem-limit MB      memory for buffered events before they are written (default 1024)\n"
    "  --no-dict           build: no zstd dictionary for the event blocks\n"
    "  --map-size GB       the LMDB map: the most the index may grow to, in GiB (default 1024).\n"
    "                      Address space only, not memory or disk; readers map as much. Give\n"
    "                      a small one where address space is scarce (ThreadSanitizer, valgrind)\n"
    "  --uic CKPT          a MIMN checkpoint: build writes its User Interest Center (each\n"
    "                      user's MIMN state, so that a request reads it instead of folding the\n"
    "                      whole sequence; docs/FORMATS.md); append brings it up to date and\n"
    "                      needs it when the index has one (the same checkpoint's bytes)\n"
    "  --uic-every N       build: a state snapshot about every N events of a user (default 1024):\n"
    "                      a request for a time in the past folds at most about N events\n"
    "  --json              print the summary as JSON on stdout\n";

static const char uic_help[] =
    "usage: lsim index uic --index DIR --uic CKPT [--uic-every N] [--json]\n"
    "\n"
    "Writes the User Interest Center of a MIMN checkpoint for every user of the index,\n"
    "replacing the one it has (another checkpoint's, after training a new model), in one\n"
    "transaction. --uic-every N: a state snapshot about every N events of a user (default:\n"
    "the index's interval, or 1024).\n";

static int parse_shard(const char *s, ubt_write_opts *o)
{
    unsigned i, n;
    char c;
    if (sscanf(s, "%u/%u%c", &i, &n, &c) != 2 || n == 0 || i >= n) return -1;
    o->shard_index = i;
    o->shard_count = n;
    return 0;
}

static void on_progress(void *ctx, const ubt_progress *p)
{
    cli_progress *pr = ((cli_bad_lines *)ctx)->progress;
    if (p->done) {
        cli_progress_done(pr);
        return;
    }
    char b1[32], b2[32];
    double rate = p->seconds > 0 ? (double)p->events / p->seconds : 0;
    double eta = (p->bytes_total && p->bytes_read && p->bytes_read < p->bytes_total)
                     ? p->seconds * (double)(p->bytes_total - p->bytes_read) / (double)p->bytes_read
                     : 0;
    cli_progress_line(pr, "read %s of %s, %" PRIu64 " events, %.0f events/s, ETA %.0f s",
                      cli_bytes(b1, sizeof b1, (double)p->bytes_read),
                      cli_bytes(b2, sizeof b2, (double)p->bytes_total), p->events, rate, eta);
}

static int run_write(int argc, char **argv, int append)
{
    const char *cmd = append ? "index append" : "index build";
    static const struct option opts[] = {
        {"index", required_argument, 0, 'i'},   {"input", required_argument, 0, 'I'},
        {"format", required_argument, 0, 'f'},  {"item-info", required_argument, 0, 'n'},
        {"columns", required_argument, 0, 'c'}, {"delimiter", required_argument, 0, 'd'},
        {"header", no_argument, 0, 'H'},        {"strict", no_argument, 0, 's'},
        {"shard", required_argument, 0, 'S'},   {"force", no_argument, 0, 'F'},
        {"mem-limit", required_argument, 0, 'm'}, {"no-dict", no_argument, 0, 'D'},
        {"ts-min", required_argument, 0, 'a'},  {"ts-max", required_argument, 0, 'b'},
        {"json", no_argument, 0, 'j'},          {"help", no_argument, 0, 'h'},
        {"map-size", required_argument, 0, 'M'},
        {"uic", required_argument, 0, 'u'},     {"uic-every", required_argument, 0, 'e'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *columns = NULL, *item_info = NULL, *format = "taobao", *delim = NULL, *uic = NULL;
    int header = 0, json = 0;
    int64_t ts_min = LOG_TS_MIN_DEFAULT, ts_max = LOG_TS_MAX_DEFAULT, mem = 1024;
    ubt_write_opts o;
    ubt_write_opts_default(&o);
    const char **inputs = calloc((size_t)argc + 1, sizeof *inputs);
    size_t n_inputs = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': dir = optarg; break;
        case 'I': inputs[n_inputs++] = optarg; break;
        case 'f': format = optarg; break;
        case 'n': item_info = optarg; break;
        case 'c': columns = optarg; break;
        case 'd': delim = optarg; break;
        case 'H': header = 1; break;
        case 's': o.strict = 1; break;
        case 'S':
            if (parse_shard(optarg, &o)) {
                free(inputs);
                return cli_usage_error(cmd, "--shard wants I/N with 0 <= I < N, got '%s'", optarg);
            }
            break;
        case 'F': o.force = 1; break;
        case 'D': o.no_dict = 1; break;
        case 'M': {
            int64_t gb;
            if (cli_parse_i64("--map-size", optarg, 1, 1 << 20, &gb)) {
                free(inputs);
                return EXIT_USAGE;
            }
            o.mapsize = (uint64_t)gb << 30;
            break;
        }
        case 'j': json = 1; break;
        case 'u': uic = optarg; break;
        case 'e': {
            int64_t every;
            if (cli_parse_i64("--uic-every", optarg, 1, UIC_EVERY_MAX, &every)) {
                free(inputs);
                return EXIT_USAGE;
            }
            o.uic_every = (uint32_t)every;
            break;
        }
        case 'm':
        case 'a':
        case 'b': {
            int64_t *dst = c == 'm' ? &mem : c == 'a' ? &ts_min : &ts_max;
            if (cli_parse_i64(c == 'm' ? "--mem-limit" : c == 'a' ? "--ts-min" : "--ts-max", optarg,
                              c == 'm' ? 1 : INT64_MIN / 2, c == 'm' ? 1 << 20 : INT64_MAX / 2, dst)) {
                free(inputs);
                return EXIT_USAGE;
            }
            break;
        }
        case 'h': fputs(build_help, stdout); free(inputs); return EXIT_OK;
        default: free(inputs); return cli_usage_error(cmd, "unknown option");
        }
    }
    while (optind < argc) inputs[n_inputs++] = argv[optind++];
    int rc = EXIT_USAGE;
    log_format fmt;
    char err[LSIM_ERRLEN];
    if (!dir) rc = cli_usage_error(cmd, "--index DIR is required");
    else if (!n_inputs) rc = cli_usage_error(cmd, "at least one --input FILE is required");
    else if (log_format_parse(format, &fmt)) rc = cli_usage_error(cmd, "unknown --format '%s' (taobao, amazon, csv)", format);
    else {
        log_spec_default(&o.spec, fmt);
        o.spec.ts_min = ts_min;
        o.spec.ts_max = ts_max;
        o.spec.item_info_path = item_info;
        o.mem_limit = (size_t)mem << 20;
        rc = 0;
        if (fmt == LOG_FORMAT_AMAZON && !item_info) rc = cli_usage_error(cmd, "--format amazon needs --item-info FILE");
        if (!rc && fmt == LOG_FORMAT_CSV) {
            o.spec.header = header;
            if (delim) rc = cli_parse_delimiter(cmd, delim, &o.spec.delimiter);
            if (!rc && !columns) rc = cli_usage_error(cmd, "--format csv needs --columns");
            if (!rc && log_spec_parse_columns(&o.spec, columns, err, sizeof err))
                rc = cli_usage_error(cmd, "--columns: %s", err);
            if (!rc && (o.spec.col_request || o.spec.col_label))
                rc = cli_usage_error(cmd, "--columns: request and label are columns of request logs (lsim replay)");
        } else if (!rc && (columns || delim || header))
            rc = cli_usage_error(cmd, "--columns, --delimiter and --header are for --format csv");
        if (!rc && o.uic_every && (append || !uic))
            rc = cli_usage_error(cmd, "--uic-every is for build with --uic (an index keeps its interval)");
    }
    if (rc) {
        free(inputs);
        return rc;
    }
    uic_mimn um;
    model *um_model = NULL;
    if (uic) {
        if (uic_mimn_open(&um, &um_model, uic, err, sizeof err)) {
            fprintf(stderr, "lsim %s: %s\n", cmd, err);
            free(inputs);
            return EXIT_FAIL;
        }
        o.uic = &um.model;
    }
    cli_progress pr;
    cli_progress_init(&pr);
    cli_bad_lines bad = {0, 10, &pr};
    o.inputs = inputs;
    o.n_inputs = n_inputs;
    o.on_bad_line = cli_on_bad_line;
    o.on_progress = on_progress;
    o.cb_ctx = &bad;
    ubt_write_result res;
    rc = append ? ubt_append(dir, &o, &res, err, sizeof err) : ubt_build(dir, &o, &res, err, sizeof err);
    cli_progress_done(&pr);
    free(inputs);
    if (uic) uic_mimn_close(&um, um_model);
    if (rc) {
        fprintf(stderr, "lsim %s: %s\n", cmd, err);
        if (!append) fprintf(stderr, "lsim %s: no index was written\n", cmd);
        else fprintf(stderr, "lsim %s: the index is unchanged\n", cmd);
        return EXIT_FAIL;
    }
    double rate = res.seconds > 0 ? (double)res.events / res.seconds : 0;
    if (json) {
        printf("{\"lines\": %" PRIu64 ", \"events\": %" PRIu64 ", \"bad_lines\": %" PRIu64
               ", \"other_shard\": %" PRIu64 ", \"users_added\": %" PRIu64 ", \"items_added\": %" PRIu64
               ", \"total_events\": %" PRIu64 ", \"seconds\": %.3f, \"events_per_s\": %.0f, \"peak_batch_bytes\": %zu"
               ", \"uic_users\": %" PRIu64 ", \"uic_records\": %" PRIu64 ", \"uic_bytes\": %" PRIu64 "}\n",
               res.lines, res.events, res.bad_lines, res.other_shard, res.users_added, res.items_added,
               res.total_events, res.seconds, rate, res.peak_batch_bytes, res.uic_users, res.uic_records,
               res.uic_bytes);
    }
    if (uic)
        fprintf(stderr, "lsim %s: User Interest Center: %" PRIu64 " users' states brought up to date (%" PRIu64
                " records, %" PRIu64 " bytes)\n", cmd, res.uic_users, res.uic_records, res.uic_bytes);
    fprintf(stderr,
            "lsim %s: %" PRIu64 " events from %" PRIu64 " lines (%" PRIu64 " bad lines skipped%s) in %.2f s, "
            "%.0f events/s; +%" PRIu64 " users, +%" PRIu64 " items; the index holds %" PRIu64 " events\n",
            cmd, res.events, res.lines, res.bad_lines, o.shard_count ? ", other shards left out" : "", res.seconds,
            rate, res.users_added, res.items_added, res.total_events);
    return EXIT_OK;
}

static const char stats_help[] =
    "usage: lsim index stats --index DIR [--json]\n"
    "Counts of the index: users, items, categories, types, events, blocks, bytes on disk\n"
    "(data.mdb + lock.mdb) and bytes per event.\n";
static const char verify_help[] =
    "usage: lsim index verify --index DIR\n"
    "Reads every block and record and checks checksums, structure, time order, counts\n"
    "and summaries. Exit 0 if sound, 1 with the problems listed otherwise.\n";
static const char dump_help[] =
    "usage: lsim index dump --index DIR --user U [--json]\n"
    "       lsim index dump --index DIR --all [--json]\n"
    "Prints a user's summary and all their events in time order.\n"
    "--all: every event of every user in one snapshot, a line USER\\tTS\\tITEM\\tCATEGORY\\tTYPE each\n"
    "(--json: a line {\"user\": .., \"events\": [..]} per user); users in the order the logs\n"
    "first named them, each user's events oldest first, equal times in log order. Indexes made\n"
    "from the same logs print the same bytes, whatever their blocks, batches and item ids.\n"
    "With a User Interest Center, --all (not --json) then prints its records in the same\n"
    "snapshot, a line uic\\tUSER\\tTS\\tCOUNT\\tHEAD\\tCRC each (CRC: CRC-32C of the record's bytes).\n";

static int open_index(const char *cmd, const char *dir, lsim_index **ix)
{
    char err[LSIM_ERRLEN];
    if (lsim_index_open(ix, dir, err, sizeof err)) {
        fprintf(stderr, "lsim %s: %s\n", cmd, err);
        return EXIT_FAIL;
    }
    return 0;
}

/* --index DIR, --user U (or --all, where `all` is given), --json, --help */
static int simple_opts(int argc, char **argv, const char *cmd, const char *help, const char **dir,
                       const char **user, int *json, int *all)
{
    static const struct option opts[] = {{"index", required_argument, 0, 'i'}, {"user", required_argument, 0, 'u'},
                                         {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
                                         {"all", no_argument, 0, 'a'},         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'i') *dir = optarg;
        else if (c == 'u' && user) *user = optarg;
        else if (c == 'j') *json = 1;
        else if (c == 'a' && all) *all = 1;
        else if (c == 'h') {
            fputs(help, stdout);
            return -1;
        } else
            return cli_usage_error(cmd, "unknown option");
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!*dir) return cli_usage_error(cmd, "--index DIR is required");
    if (all && *all && user && *user) return cli_usage_error(cmd, "--user and --all exclude each other");
    if (user && !*user && !(all && *all)) return cli_usage_error(cmd, "--user U or --all is required");
    return 0;
}

static int run_stats(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    int rc = simple_opts(argc, argv, "index stats", stats_help, &dir, NULL, &json, NULL);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    lsim_index *ix;
    if ((rc = open_index("index stats", dir, &ix))) return rc;
    lsim_index_stats s;
    index_space sp;
    rc = lsim_index_stats_get(ix, &s);
    if (!rc) rc = index_space_get(ix, &sp);
    int has_uic = ix->has_uic;
    uic_info ui = ix->uic;
    lsim_index_close(ix);
    if (rc) {
        fprintf(stderr, "lsim index stats: %s\n", lsim_strerror(rc));
        return EXIT_FAIL;
    }
    double bpe = s.events ? (double)s.bytes / (double)s.events : 0;
    double per_user = s.users ? 1.0 / (double)s.users : 0;
    if (json) {
        printf("{\"users\": %" PRIu64 ", \"items\": %" PRIu64 ", \"categories\": %" PRIu64 ", \"types\": %" PRIu64
               ", \"events\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"used_bytes\": %" PRIu64
               ", \"bytes_per_event\": %.4f, \"schema_version\": %u, \"tree_bytes\": %" PRIu64
               ", \"tree_bytes_per_user\": %.1f",
               s.users, s.items, s.categories, s.types, s.events, s.blocks, s.bytes, s.used_bytes, bpe,
               s.schema_version, sp.tree_bytes, (double)sp.tree_bytes * per_user);
        if (has_uic)
            printf(", \"uic\": {\"checkpoint\": \"%s\", \"state_bytes\": %u, \"every\": %u, \"records\": %" PRIu64
                   ", \"bytes\": %" PRIu64 ", \"bytes_per_user\": %.1f}",
                   ui.name, 4 * ui.state_floats, ui.every, sp.uic_records, sp.uic_bytes,
                   (double)sp.uic_bytes * per_user);
        printf("}\n");
    } else {
        printf("users           %" PRIu64 "\nitems           %" PRIu64 "\ncategories      %" PRIu64
               "\ntypes           %" PRIu64 "\nevents          %" PRIu64 "\nblocks          %" PRIu64
               "\nbytes           %" PRIu64 "\nused bytes      %" PRIu64 "\nbytes/event     %.3f\nschema          %u\n"
               "tree bytes/user %.1f\n",
               s.users, s.items, s.categories, s.types, s.events, s.blocks, s.bytes, s.used_bytes, bpe,
               s.schema_version, (double)sp.tree_bytes * per_user);
        if (has_uic)
            printf("uic             %s: %" PRIu64 " states of %u bytes (one per %u events), %.1f bytes/user\n",
                   ui.name, sp.uic_records, 4 * ui.state_floats, ui.every, (double)sp.uic_bytes * per_user);
    }
    return EXIT_OK;
}

static void print_problem(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "problem: %s\n", msg);
}

static int run_verify(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    int rc = simple_opts(argc, argv, "index verify", verify_help, &dir, NULL, &json, NULL);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    lsim_index *ix;
    if ((rc = open_index("index verify", dir, &ix))) return rc;
    index_verify_report rep;
    rc = index_verify(ix, &rep, print_problem, NULL, 100);
    lsim_index_close(ix);
    if (rc && rc != LSIM_E_CORRUPT) {
        fprintf(stderr, "lsim index verify: %s\n", lsim_strerror(rc));
        return EXIT_FAIL;
    }
    printf("%s: %" PRIu64 " users, %" PRIu64 " chains, %" PRIu64 " blocks, %" PRIu64 " events checked, %" PRIu64
           " problems\n",
           rc ? "CORRUPT" : "ok", rep.users, rep.chains, rep.blocks, rep.events, rep.problems);
    if (rc) fprintf(stderr, "lsim index verify: %s: corrupt: %" PRIu64 " problems (listed above)\n", dir, rep.problems);
    return rc ? EXIT_FAIL : EXIT_OK;
}

/* The User Interest Center's records, in rd's snapshot. */
static int dump_uic(lsim_index *ix, lsim_index_reader *rd, char *err, size_t errlen)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(rd->txn, ix->db_uic, &cur);
    if (rc) return err_set(err, errlen, LSIM_E_STORAGE, "%s: %s", ix->dir, mdb_strerror(rc));
    MDB_val k, d;
    for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        uic_record r;
        uint32_t u = k.mv_size == UIC_KEY_LEN ? ubt_get_u32be(k.mv_data) : UINT32_MAX;
        if (u >= vocab_size(ix->voc[IX_USER]) ||
            uic_record_decode(&r, k.mv_data, d.mv_data, d.mv_size, ix->uic.state_floats)) {
            mdb_cursor_close(cur);
            return err_set(err, errlen, LSIM_E_CORRUPT, "%s: corrupt User Interest Center record: run `lsim index "
                           "verify`", ix->dir);
        }
        printf("uic\t%s\t%lld\t%llu\t%d\t%08x\n", vocab_str(ix->voc[IX_USER], u), (long long)uic_key_ts(k.mv_data),
               (unsigned long long)r.count, r.head, crc32c(0, d.mv_data, d.mv_size));
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : err_set(err, errlen, LSIM_E_STORAGE, "%s: %s", ix->dir, mdb_strerror(rc));
}

/* `dump --all`: every user's events, in one snapshot (the reader's transaction stays open throughout). */
static int dump_all(lsim_index *ix, lsim_index_reader *rd, int json, char *err, size_t errlen)
{
    ubt_event *buf = NULL;
    lsim_event *ev = NULL;
    size_t cap = 0, ev_cap = 0, n = 0;
    int rc = index_reader_begin(rd);
    if (rc) return err_set(err, errlen, rc, "%s", lsim_index_reader_errmsg(rd));
    pthread_rwlock_rdlock(&ix->lock);
    const vocab *vu = ix->voc[IX_USER], *vi = ix->voc[IX_ITEM], *vc = ix->voc[IX_CAT], *vt = ix->voc[IX_TYPE];
    for (uint32_t u = 0; u < vocab_size(vu) && !rc; u++) {
        if ((rc = index_user_events_in(rd, u, INT64_MAX, &buf, &cap, &n)))
            err_set(err, errlen, rc, "%s", lsim_index_reader_errmsg(rd));
        if (rc || !n) continue;
        const char *user = vocab_str(vu, u);
        if (json && n > ev_cap) {
            lsim_event *e = realloc(ev, n * sizeof *e);
            if (!e) {
                rc = err_set(err, errlen, LSIM_E_NOMEM, "out of memory");
                break;
            }
            ev = e;
            ev_cap = n;
        }
        for (size_t i = 0; i < n; i++) {
            const ubt_event *e = &buf[i];
            if (e->item >= vocab_size(vi) || e->cat >= vocab_size(vc) || e->type >= vocab_size(vt)) {
                snprintf(err, errlen, "user %s: an event names an id outside the vocabulary", user);
                rc = LSIM_E_CORRUPT;
                break;
            }
            if (json)
                ev[i] = (lsim_event){vocab_str(vi, e->item), vocab_str(vc, e->cat), vocab_str(vt, e->type), e->ts};
            else
                printf("%s\t%lld\t%s\t%s\t%s\n", user, (long long)e->ts, vocab_str(vi, e->item),
                       vocab_str(vc, e->cat), vocab_str(vt, e->type));
        }
        if (json && !rc) {
            printf("{\"user\": ");
            cli_json_string(stdout, user);
            printf(", \"events\": ");
            cli_json_events(stdout, ev, n, 1, 0);
            printf("}\n");
        }
    }
    if (!rc && !json && ix->has_uic) rc = dump_uic(ix, rd, err, errlen);
    pthread_rwlock_unlock(&ix->lock);
    index_reader_end(rd);
    free(buf);
    free(ev);
    if (!rc && (fflush(stdout) || ferror(stdout))) rc = err_set(err, errlen, LSIM_E_IO, "writing to stdout failed");
    return rc;
}

static int run_dump(int argc, char **argv)
{
    const char *dir = NULL, *user = NULL;
    int json = 0, all = 0;
    int rc = simple_opts(argc, argv, "index dump", dump_help, &dir, &user, &json, &all);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    lsim_index *ix;
    if ((rc = open_index("index dump", dir, &ix))) return rc;
    if (all) {
        lsim_index_reader *rd = NULL;
        char err[LSIM_ERRLEN] = "out of memory";
        rc = lsim_index_reader_new(ix, &rd);
        if (!rc) rc = dump_all(ix, rd, json, err, sizeof err);
        if (rc) fprintf(stderr, "lsim index dump: %s: %s (%s)\n", dir, err, lsim_strerror(rc));
        lsim_index_reader_free(rd);
        lsim_index_close(ix);
        return rc ? EXIT_FAIL : EXIT_OK;
    }
    lsim_index_reader *rd = NULL;
    lsim_event *ev = NULL;
    size_t n = 0;
    ubt_user_summary sum = {0};
    rc = lsim_index_reader_new(ix, &rd);
    if (!rc) rc = index_user_summary(rd, user, strlen(user), &sum);
    if (rc == LSIM_E_NOTFOUND) {
        fprintf(stderr, "lsim index dump: user '%s' is not in the index\n", user);
        lsim_index_reader_free(rd);
        lsim_index_close(ix);
        return EXIT_FAIL;
    }
    size_t cap = sum.events ? (size_t)sum.events : 1;
    if (!rc && !(ev = malloc(cap * sizeof *ev))) rc = LSIM_E_NOMEM;
    if (!rc) rc = lsim_index_hard_search(rd, user, strlen(user), NULL, 0, INT64_MAX, cap, ev, &n);
    if (rc) fprintf(stderr, "lsim index dump: %s: %s\n", lsim_strerror(rc), rd ? lsim_index_reader_errmsg(rd) : "");
    else if (json) {
        printf("{\"user\": ");
        cli_json_string(stdout, user);
        printf(", \"events\": ");
        cli_json_events(stdout, ev, n, 1, 1);
        printf("}\n");
    } else {
        printf("user %s: %zu events\n", user, n);
        for (size_t i = n; i-- > 0;) printf("%lld\t%s\t%s\t%s\n", (long long)ev[i].ts, ev[i].item, ev[i].category, ev[i].type);
    }
    free(ev);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return rc ? EXIT_FAIL : EXIT_OK;
}

static int run_uic(int argc, char **argv)
{
    static const struct option opts[] = {{"index", required_argument, 0, 'i'}, {"uic", required_argument, 0, 'u'},
                                         {"uic-every", required_argument, 0, 'e'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *dir = NULL, *ckpt = NULL;
    int json = 0, c;
    ubt_write_opts o;
    ubt_write_opts_default(&o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': dir = optarg; break;
        case 'u': ckpt = optarg; break;
        case 'j': json = 1; break;
        case 'e': {
            int64_t every;
            if (cli_parse_i64("--uic-every", optarg, 1, UIC_EVERY_MAX, &every)) return EXIT_USAGE;
            o.uic_every = (uint32_t)every;
            break;
        }
        case 'h': fputs(uic_help, stdout); return EXIT_OK;
        default: return cli_usage_error("index uic", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("index uic", "unexpected argument '%s'", argv[optind]);
    if (!dir) return cli_usage_error("index uic", "--index DIR is required");
    if (!ckpt) return cli_usage_error("index uic", "--uic CKPT is required");
    char err[LSIM_ERRLEN];
    uic_mimn um;
    model *m;
    if (uic_mimn_open(&um, &m, ckpt, err, sizeof err)) {
        fprintf(stderr, "lsim index uic: %s\n", err);
        return EXIT_FAIL;
    }
    o.uic = &um.model;
    ubt_write_result res;
    int rc = ubt_uic_rebuild(dir, &o, &res, err, sizeof err);
    uic_mimn_close(&um, m);
    if (rc) {
        fprintf(stderr, "lsim index uic: %s\nlsim index uic: the index is unchanged\n", err);
        return EXIT_FAIL;
    }
    if (json)
        printf("{\"users\": %" PRIu64 ", \"records\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": %.3f}\n",
               res.uic_users, res.uic_records, res.uic_bytes, res.seconds);
    fprintf(stderr, "lsim index uic: %" PRIu64 " users' states written (%" PRIu64 " records, %" PRIu64
            " bytes) in %.2f s\n", res.uic_users, res.uic_records, res.uic_bytes, res.seconds);
    return EXIT_OK;
}

static const char index_help[] =
    "usage: lsim index <build|append|uic|stats|verify|dump> [options]\n"
    "  build    build an index from behavior logs\n"
    "  append   add new logs to an index, atomically\n"
    "  uic      write a MIMN checkpoint's User Interest Center for every user\n"
    "  stats    counts and size of an index\n"
    "  verify   check every block and count\n"
    "  dump     print one user's events\n"
    "Each takes --help.\n";

int cmd_index(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(index_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    if (!strcmp(sub, "build")) return run_write(argc, argv, 0);
    if (!strcmp(sub, "append")) return run_write(argc, argv, 1);
    if (!strcmp(sub, "uic")) return run_uic(argc, argv);
    if (!strcmp(sub, "stats")) return run_stats(argc, argv);
    if (!strcmp(sub, "verify")) return run_verify(argc, argv);
    if (!strcmp(sub, "dump")) return run_dump(argc, argv);
    fputs(index_help, stderr);
    return EXIT_USAGE;
}
