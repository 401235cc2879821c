/*
 * cmd_score.c: `lsim score` and `lsim explain`: one request through the
 * public API (include/lsim.h), on the command line. Thin: options in,
 * lsim_engine_open + lsim_score / lsim_explain, a table or JSON out.
 */
#include "lsim.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char score_help[] =
    "usage: lsim score --index DIR --model CKPT --user U --now TS --items A,B,C [options]\n"
    "Scores the candidate items for one user at time TS (unix seconds) through the request\n"
    "engine (include/lsim.h): the user's behaviors before TS, the model's search and\n"
    "attention, a click probability per item, in the order given.\n"
    "\n"
    "  --categories X,Y,Z  the items' categories, in the same order (default: the\n"
    "                      category the index has for each item)\n"
    "  --short-len N       short-term behaviors (default: the checkpoint's)\n"
    "  --long-max N        long-term behaviors searched (default: the checkpoint's)\n"
    "  --json              {\"scores\": [..]} in the items' order\n";

static const char explain_help[] =
    "usage: lsim explain --index DIR --model CKPT --user U --now TS --item I [options]\n"
    "For a SIM model (sim-hard, sim-soft): the item's score and the behaviors the General\n"
    "Search Unit picked for it, oldest first, with the Exact Search Unit's attention\n"
    "(averaged over its heads).\n"
    "\n"
    "  --category C        the item's category (default: the index's)\n"
    "  --short-len N, --long-max N   as for lsim score\n"
    "  --json              {\"score\": .., \"behaviors\": [{\"item\", \"category\", \"type\", \"ts\",\n"
    "                      \"weight\"}, ..]}\n";

/* The number of fields of a comma list (0 for an empty string). */
static size_t count_fields(const char *s)
{
    size_t n = *s ? 1 : 0;
    for (; *s; s++) n += *s == ',';
    return n;
}

/* Splits a comma list of n fields in place into out[0..n). */
static void split(char *s, char **out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = s;
        s = strchr(s, ',');
        if (!s) break;
        *s++ = 0;
    }
}

static int run(int argc, char **argv, int explain)
{
    const char *name = explain ? "explain" : "score";
    static const struct option opts[] = {
        {"index", required_argument, 0, 'i'},      {"model", required_argument, 0, 'm'},
        {"user", required_argument, 0, 'u'},       {"now", required_argument, 0, 'n'},
        {"items", required_argument, 0, 'I'},      {"item", required_argument, 0, 'I'},
        {"categories", required_argument, 0, 'C'}, {"category", required_argument, 0, 'C'},
        {"short-len", required_argument, 0, 's'},  {"long-max", required_argument, 0, 'L'},
        {"json", no_argument, 0, 'J'},             {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *ckpt = NULL, *user = NULL;
    char *items = NULL, *cats = NULL;
    int64_t now = 0, v;
    int json = 0, ch, have_now = 0;
    lsim_settings set;
    lsim_settings_default(&set);
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': dir = optarg; break;
        case 'm': ckpt = optarg; break;
        case 'u': user = optarg; break;
        case 'n':
            if (cli_parse_i64("--now", optarg, INT64_MIN, INT64_MAX, &now)) return EXIT_USAGE;
            have_now = 1;
            break;
        case 'I': items = optarg; break;
        case 'C': cats = optarg; break;
        case 's':
            if (cli_parse_i64("--short-len", optarg, 1, 100000, &v)) return EXIT_USAGE;
            set.short_len = (uint32_t)v;
            break;
        case 'L':
            if (cli_parse_i64("--long-max", optarg, 1, 10000000, &v)) return EXIT_USAGE;
            set.long_max = (uint32_t)v;
            break;
        case 'J': json = 1; break;
        case 'h': fputs(explain ? explain_help : score_help, stdout); return EXIT_OK;
        default: return cli_usage_error(name, "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error(name, "unexpected argument '%s'", argv[optind]);
    if (!dir || !ckpt || !user || !have_now || !items)
        return cli_usage_error(name, "--index, --model, --user, --now and --%s are required",
                               explain ? "item" : "items");
    size_t n = explain ? 1 : count_fields(items), nc = explain ? (cats ? 1 : 0) : (cats ? count_fields(cats) : 0);
    if (!n) return cli_usage_error(name, "--items: no item given");
    /* the engine's request memory for this one request, not for the default 1000 candidates */
    set.max_candidates = n < 100000 ? (uint32_t)n : 100000;
    char **it = calloc(n, sizeof *it), **ct = calloc(n, sizeof *ct);
    lsim_candidate *cand = calloc(n, sizeof *cand);
    float *scores = calloc(n, sizeof *scores);
    if (!it || !ct || !cand || !scores) {
        fprintf(stderr, "lsim %s: out of memory\n", name);
        free(it), free(ct), free(cand), free(scores);
        return EXIT_FAIL;
    }
    int rc = 0;
    if (cats && nc != n) rc = cli_usage_error(name, "--categories: %zu given for %zu items", nc, n);
    else if (explain) it[0] = items, ct[0] = cats;
    else split(items, it, n), split(cats ? cats : "", ct, nc);
    for (size_t i = 0; i < n && !rc; i++)
        cand[i] = (lsim_candidate){it[i], strlen(it[i]), cats ? ct[i] : NULL, cats ? strlen(ct[i]) : 0};
    if (rc) {
        free(it), free(ct), free(cand), free(scores);
        return rc;
    }
    char err[512] = "";
    lsim_engine *e = NULL;
    lsim_ctx *c = NULL;
    rc = lsim_engine_open(&e, dir, ckpt, &set, err, sizeof err);
    if (rc) fprintf(stderr, "lsim %s: %s\n", name, err);
    else if ((rc = lsim_ctx_new(e, &c))) fprintf(stderr, "lsim %s: %s\n", name, lsim_strerror(rc));
    lsim_explained *ex = NULL;
    size_t nex = 0;
    if (!rc && explain) {
        float score;
        ex = calloc(1024, sizeof *ex);
        rc = ex ? lsim_explain(c, user, strlen(user), now, cand, &score, ex, 1024, &nex) : LSIM_E_NOMEM;
        scores[0] = score;
        if (nex > 1024) nex = 1024;
    } else if (!rc) {
        rc = lsim_score(c, user, strlen(user), now, cand, n, scores);
    }
    if (rc && c) fprintf(stderr, "lsim %s: %s: %s\n", name, lsim_strerror(rc), lsim_ctx_errmsg(c));
    if (!rc && !explain) {
        if (json) {
            printf("{\"scores\": [");
            for (size_t i = 0; i < n; i++) printf("%s%.9g", i ? ", " : "", scores[i]);
            printf("]}\n");
        } else {
            printf("%-24s %s\n", "item", "score");
            for (size_t i = 0; i < n; i++) printf("%-24s %.6f\n", it[i], scores[i]);
        }
    } else if (!rc) {
        if (json) {
            printf("{\"score\": %.9g, \"behaviors\": [", scores[0]);
            for (size_t i = 0; i < nex; i++) {
                printf("%s{\"item\": ", i ? ", " : "");
                cli_json_string(stdout, ex[i].event.item);
                printf(", \"category\": ");
                cli_json_string(stdout, ex[i].event.category);
                printf(", \"type\": ");
                cli_json_string(stdout, ex[i].event.type);
                printf(", \"ts\": %" PRId64 ", \"weight\": %.6g}", ex[i].event.ts, ex[i].weight);
            }
            printf("]}\n");
        } else {
            printf("item %s: score %.6f; the GSU picked %zu behaviors:\n", it[0], scores[0], nex);
            printf("%-12s %-24s %-12s %-6s %s\n", "ts", "item", "category", "type", "attention");
            for (size_t i = 0; i < nex; i++)
                printf("%-12" PRId64 " %-24s %-12s %-6s %.4f\n", ex[i].event.ts, ex[i].event.item,
                       ex[i].event.category, ex[i].event.type, ex[i].weight);
        }
    }
    free(ex);
    lsim_ctx_free(c);
    lsim_engine_close(e);
    free(it), free(ct), free(cand), free(scores);
    return rc ? EXIT_FAIL : EXIT_OK;
}

int cmd_score(int argc, char **argv)
{
    return run(argc, argv, 0);
}

int cmd_explain(int argc, char **argv)
{
    return run(argc, argv, 1);
}
