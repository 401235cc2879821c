/*
 * cmd_gen_requests.c: `lsim gen requests`: ranking requests from an index's
 * held-out window (train/request_gen.h), written as a request log
 * (loaders/request_log.h, docs/FORMATS.md).
 */
#include "storage/error_detail.h"
#include "tools/cli_util.h"
#include "tools/commands.h"
#include "train/request_gen.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
    "usage: lsim gen requests --index DIR --out FILE [options]\n"
    "Turns the events of a held-out time window into ranking requests, one JSON object a\n"
    "line (docs/FORMATS.md, \"Request logs\"): at each (user, time) with events in the window,\n"
    "the items taken (label 1) among sampled items the user did not take (label 0), shuffled.\n"
    "`lsim replay` and `lsim eval --requests` read them.\n"
    "  --index DIR       the behavior index\n"
    "  --out FILE        output ('-' for stdout)\n"
    "  --from TS         the window's start, unix seconds (default: the start of the UTC day\n"
    "                    of the index's last event, as `lsim train` splits)\n"
    "  --to TS           the window's end, exclusive (default: no end)\n"
    "  --negatives N     label-0 candidates per request (default 299: 300 candidates)\n"
    "  --neg-sampling S  popularity (default: each item's event count before --from) or uniform\n"
    "  --max-requests N  a uniform random subset of N requests (default: all)\n"
    "  --seed N          the draws' seed (default 1)\n";

static void write_request(FILE *f, uint64_t id, const gen_request *r)
{
    fprintf(f, "{\"id\": %" PRIu64 ", \"user\": ", id);
    cli_json_string(f, r->user);
    fprintf(f, ", \"time\": %" PRId64 ", \"candidates\": [", r->time);
    for (size_t i = 0; i < r->n; i++) {
        fputs(i ? ", {\"item\": " : "{\"item\": ", f);
        cli_json_string(f, r->item[i]);
        if (r->cat[i]) {
            fputs(", \"category\": ", f);
            cli_json_string(f, r->cat[i]);
        }
        fprintf(f, ", \"label\": %d}", r->label[i] > 0.5f);
    }
    fputs("]}\n", f);
}

int cmd_gen_requests(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, 0, 'x'},        {"out", required_argument, 0, 'o'},
        {"from", required_argument, 0, 'f'},         {"to", required_argument, 0, 't'},
        {"negatives", required_argument, 0, 'n'},    {"neg-sampling", required_argument, 0, 'N'},
        {"max-requests", required_argument, 0, 'm'}, {"seed", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0}};
    const char *cmd = "gen requests", *dir = NULL, *out = NULL;
    request_gen_config c;
    request_gen_config_default(&c);
    int have_from = 0, o;
    int64_t v;
    optind = 1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'x': dir = optarg; break;
        case 'o': out = optarg; break;
        case 'f': if (cli_parse_i64("--from", optarg, INT64_MIN + 1, INT64_MAX, &c.from)) return EXIT_USAGE; have_from = 1; break;
        case 't': if (cli_parse_i64("--to", optarg, INT64_MIN + 1, INT64_MAX, &c.to)) return EXIT_USAGE; break;
        case 'n': if (cli_parse_i64("--negatives", optarg, 0, 1000000, &v)) return EXIT_USAGE; c.negatives = (uint32_t)v; break;
        case 'm': if (cli_parse_i64("--max-requests", optarg, 1, INT64_MAX, &v)) return EXIT_USAGE; c.max_requests = (uint64_t)v; break;
        case 's': if (cli_parse_i64("--seed", optarg, 0, INT64_MAX, &v)) return EXIT_USAGE; c.seed = (uint64_t)v; break;
        case 'N':
            if (!strcmp(optarg, "popularity")) c.neg = NEG_POPULARITY;
            else if (!strcmp(optarg, "uniform")) c.neg = NEG_UNIFORM;
            else return cli_usage_error(cmd, "--neg-sampling wants popularity or uniform");
            break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!dir || !out) return cli_usage_error(cmd, "--index DIR and --out FILE are required");
    char err[LSIM_ERRLEN];
    lsim_index *ix;
    if (lsim_index_open(&ix, dir, err, sizeof err)) {
        fprintf(stderr, "lsim %s: %s\n", cmd, err);
        return EXIT_FAIL;
    }
    int rc = have_from ? 0 : cli_default_split(ix, cmd, dir, &c.from);
    request_gen *g = NULL;
    if (!rc && (rc = request_gen_open(&g, ix, &c, err, sizeof err))) fprintf(stderr, "lsim %s: %s\n", cmd, err);
    FILE *f = NULL;
    if (!rc && !(f = strcmp(out, "-") ? fopen(out, "wb") : stdout)) {
        fprintf(stderr, "lsim %s: %s: %s\n", cmd, out, strerror(errno));
        rc = LSIM_E_IO;
    }
    uint64_t n = 0, cands = 0;
    while (!rc) {
        gen_request r;
        int got = request_gen_next(g, &r, err, sizeof err);
        if (got < 0) {
            fprintf(stderr, "lsim %s: %s\n", cmd, err);
            rc = got;
        }
        if (got <= 0) break;
        write_request(f, ++n, &r);
        cands += r.n;
    }
    if (f) {
        int to_stdout = f == stdout, bad = to_stdout ? fflush(f) != 0 : fclose(f) != 0;
        if (bad && !rc) {
            fprintf(stderr, "lsim %s: %s: %s\n", cmd, to_stdout ? "stdout" : out, strerror(errno));
            rc = LSIM_E_IO;
        }
    }
    if (!rc)
        fprintf(stderr, "lsim %s: %" PRIu64 " requests (of %" PRIu64 " in the window from %" PRId64 "), %" PRIu64
                " candidates -> %s\n", cmd, n, request_gen_window(g), c.from, cands, out);
    request_gen_free(g);
    lsim_index_close(ix);
    return rc ? EXIT_FAIL : EXIT_OK;
}
