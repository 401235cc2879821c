/*
 * cmd_eval.c: `lsim eval`: AUC, GAUC and logloss of a checkpoint on the
 * index's test samples. Thin: options in, eval_score + metrics_compute, a
 * table or JSON out.
 */
#include "loaders/request_log.h"
#include "storage/error_detail.h"
#include "tools/cli_util.h"
#include "tools/commands.h"
#include "train/evaluate.h"
#include "train/metrics.h"

#include <cblas.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char eval_help[] =
    "usage: lsim eval --index DIR --model CKPT [--json] [options]\n"
    "Scores the test samples (time >= the checkpoint's test_from) with a checkpoint and\n"
    "prints AUC, GAUC (impression-weighted per-user AUC, as DIN defines it), logloss and\n"
    "the number of samples. The samples are drawn as the checkpoint's training samples\n"
    "were (negatives, sampling, lengths), from --seed: models evaluated with the same\n"
    "seed on the same index see the same samples.\n"
    "\n"
    "  --test-from TS   override the checkpoint's split time\n"
    "  --seed N         the test samples' seed (default 1)\n"
    "  --batch B        samples per forward (default 256)\n"
    "  --threads N      BLAS threads (default 1)\n"
    "  --truth FILE     the truth file of `lsim gen log --truth` that made the index's log:\n"
    "                   also the Bayes-optimal AUC, GAUC and logloss on the same samples\n"
    "  --json           {\"auc\": .., \"gauc\": .., \"logloss\": .., \"samples\": ..}, with --truth\n"
    "                   also \"truth\": {\"auc\": .., \"gauc\": .., \"logloss\": ..}\n"
    "\n"
    "  --requests FILE  instead of drawn samples, the candidates of a request log\n"
    "                   (`lsim gen requests`; docs/FORMATS.md): the same samples `lsim replay`\n"
    "                   scores through the engine, here through the training code's batches;\n"
    "                   GAUC groups them by the requests' users\n"
    CLI_REQUEST_OPTS_HELP;

static void json_num(double v)
{
    if (isnan(v)) printf("null");
    else printf("%.9f", v);
}

int cmd_eval(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, 0, 'i'}, {"model", required_argument, 0, 'm'},
        {"test-from", required_argument, 0, 't'}, {"seed", required_argument, 0, 'S'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 'j'},
        {"truth", required_argument, 0, 'T'}, {"json", no_argument, 0, 'J'},
        {"requests", required_argument, 0, 'R'}, {"format", required_argument, 0, 'F'},
        {"columns", required_argument, 0, 'C'}, {"delimiter", required_argument, 0, 'D'},
        {"header", no_argument, 0, 'H'}, {"strict", no_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *ckpt = NULL, *truth_path = NULL;
    int64_t v, test_from = INT64_MIN, threads = 1, seed = 1, batch = 256;
    int json = 0, ch;
    cli_request_opts ro = {0};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': dir = optarg; break;
        case 'm': ckpt = optarg; break;
        case 't':
            if (cli_parse_i64("--test-from", optarg, INT64_MIN + 1, INT64_MAX, &test_from)) return EXIT_USAGE;
            break;
        case 'S':
            if (cli_parse_i64("--seed", optarg, 0, INT64_MAX, &seed)) return EXIT_USAGE;
            break;
        case 'b':
            if (cli_parse_i64("--batch", optarg, 1, 65536, &batch)) return EXIT_USAGE;
            break;
        case 'j':
            if (cli_parse_i64("--threads", optarg, 1, 256, &threads)) return EXIT_USAGE;
            break;
        case 'T': truth_path = optarg; break;
        case 'J': json = 1; break;
        case 'R': ro.path = optarg; break;
        case 'F': ro.format = optarg; break;
        case 'C': ro.columns = optarg; break;
        case 'D': ro.delimiter = optarg; break;
        case 'H': ro.header = 1; break;
        case 's': ro.strict = 1; break;
        case 'h': fputs(eval_help, stdout); return EXIT_OK;
        default: return cli_usage_error("eval", "unknown option");
        }
    }
    (void)v;
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!dir || !ckpt) return cli_usage_error("eval", "--index DIR and --model CKPT are required");
    if (ro.path && truth_path) return cli_usage_error("eval", "--truth is for drawn samples, not --requests");
    if (!ro.path && (ro.format || ro.columns || ro.delimiter || ro.header || ro.strict))
        return cli_usage_error("eval", "--format, --columns, --delimiter, --header and --strict go with --requests");
    request_set *rs = NULL;
    if (ro.path) {
        int usage, lrc = cli_load_requests("eval", &ro, 0, &rs, &usage);
        if (lrc) return usage ? EXIT_USAGE : EXIT_FAIL;
    }
    openblas_set_num_threads((int)threads);
    char err[LSIM_ERRLEN] = "";
    sample_config sc;
    sample_config_default(&sc);
    sc.batch = (uint32_t)batch;
    sc.seed = (uint64_t)seed;
    sc.test_from = INT64_MIN;
    model *m = NULL;
    lsim_index *ix = NULL;
    metric_row *rows = NULL, *trows = NULL;
    truth_ctx *truth = NULL;
    size_t n = 0;
    /* the sampling first (it sizes the model's batches), then the model */
    model_spec spec;
    int rc = eval_samples_from_checkpoint(&sc, ckpt, &spec, err, sizeof err);
    if (!rc && test_from != INT64_MIN) sc.test_from = test_from;
    if (!rc && sc.test_from == INT64_MIN && !rs)
        rc = err_set(err, sizeof err, LSIM_E_FORMAT,
                     "%s: no metadata lsim.test_from (not written by lsim train): give --test-from TS", ckpt);
    size_t K = sample_config_long_width(&sc);
    if (!rc) rc = model_load(&m, ckpt, sc.batch, sc.short_len, K, err, sizeof err);
    if (!rc) rc = lsim_index_open(&ix, dir, err, sizeof err);
    if (!rc && truth_path) rc = truth_open(&truth, ix, truth_path, err, sizeof err);
    if (!rc && rs) rc = eval_requests(ix, m, &sc, rs, &rows, &n, err, sizeof err);
    else if (!rc) rc = eval_score(ix, m, &sc, truth, &rows, &trows, &n, err, sizeof err);
    if (rc) {
        fprintf(stderr, "lsim eval: %s\n", err);
    } else {
        metrics mt, tt;
        metrics_compute(rows, n, &mt);
        if (trows) metrics_compute(trows, n, &tt);
        if (json) {
            printf("{\"auc\": ");
            json_num(mt.auc);
            printf(", \"gauc\": ");
            json_num(mt.gauc);
            printf(", \"logloss\": ");
            json_num(mt.logloss);
            printf(", \"samples\": %zu, \"positives\": %zu, \"gauc_users\": %zu, \"test_from\": %" PRId64,
                   mt.samples, mt.positives, mt.gauc_users, sc.test_from);
            if (trows) {
                printf(", \"truth\": {\"auc\": ");
                json_num(tt.auc);
                printf(", \"gauc\": ");
                json_num(tt.gauc);
                printf(", \"logloss\": ");
                json_num(tt.logloss);
                printf("}");
            }
            printf("}\n");
        } else {
            printf("model      %s (%s)\n", ckpt, model_kind_name(spec.kind));
            if (rs) printf("samples    %zu (%zu positive), the candidates of %zu requests in %s\n", mt.samples,
                           mt.positives, request_set_size(rs), ro.path);
            else printf("samples    %zu (%zu positive), test from %" PRId64 "\n", mt.samples, mt.positives, sc.test_from);
            if (trows) printf("           model     Bayes-optimal\n");
            printf("AUC        %.4f", mt.auc);
            if (trows) printf("    %.4f", tt.auc);
            printf("\nGAUC       %.4f", mt.gauc);
            if (trows) printf("    %.4f", tt.gauc);
            printf("\nlogloss    %.4f", mt.logloss);
            if (trows) printf("    %.4f", tt.logloss);
            printf("\n(GAUC over %zu users with both labels)\n", mt.gauc_users);
        }
    }
    free(rows);
    free(trows);
    request_set_free(rs);
    truth_free(truth);
    model_free(m);
    lsim_index_close(ix);
    return rc ? EXIT_FAIL : EXIT_OK;
}
