/*
 * cmd_train.c: `lsim train`: a model trained on the index's samples, written
 * as a checkpoint. Thin: options in, train_run, a summary out.
 */
#include "index/index_internal.h"
#include "tools/cli_util.h"
#include "tools/commands.h"
#include "train/trainer.h"

#include <cblas.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char train_help[] =
    "usage: lsim train --index DIR --model KIND --out CKPT [options]\n"
    "Trains a model on time-respecting samples from the index and writes a checkpoint\n"
    "(safetensors; docs/CHECKPOINT_FORMAT.md). A sample is a logged event (label 1) or a\n"
    "sampled item at the same user and time (label 0); it sees only the user's events\n"
    "strictly before its time. Samples before --test-from are for training; the rest are\n"
    "the test set of `lsim eval`.\n"
    "\n"
    "  --model KIND        din, avgpool-din, dien, dsin, sim-hard, sim-soft, bst, mimn\n"
    "  --time-info         sim-*: the time-interval embedding in the ESU (the paper's time info),\n"
    "                      and lsim's recency additions (docs/MODELS.md):\n"
    "                        last  the time since the user's newest behavior, an input of the head\n"
    "                        cat   beside it, the time since the newest one in the target's category\n"
    "                        gsu   sim-soft: a learned bias by the behavior's age in the search score\n"
    "  --recency LIST      with --time-info: the additions kept, comma-separated, or none\n"
    "                      (default last,cat; cat needs last)\n"
    "  --no-recency        --recency none: the paper's time info alone\n"
    "  --gsu-pool P        sim-soft: how the GSU's auxiliary task pools the behaviors by their\n"
    "                      scores r: softmax (default) or sum (the paper's sum of r_i e_i)\n"
    "  --alpha-aux X       dien: the weight of the auxiliary loss (default 1; 0: none)\n"
    "  --mem-slots M       mimn: memory slots (default 4)\n"
    "  --d-ctrl H          mimn: the controller GRU's width (default d_item + d_cat, 36)\n"
    "  --miu-k K           mimn: slots the memory induction unit updates per behavior (default 1)\n"
    "  --bptt N            mimn: truncated BPTT, the newest behaviors backward reaches per sample\n"
    "                      (default 30); the state is folded over the whole history before them\n"
    "  --util-reg X        mimn: weight of the memory utilization regularizer (default 0.1; 0 off)\n"
    "  --test-from TS      the split time (default: the start of the UTC day of the last event)\n"
    "  --train-days N      train on the positives of the N days before the split only (their\n"
    "                      histories still reach back to the start); default: all\n"
    "  --epochs N          passes over the training samples (default 1)\n"
    "  --batch B           samples per step (default 256)\n"
    "  --optimizer O       adam (default) or adagrad\n"
    "  --lr X              learning rate (default: adam 0.001, adagrad 0.01)\n"
    "  --lr-decay X        lr / (1 + X step) (default 0)\n"
    "  --lambda X          mini-batch aware L2 on the embeddings, DIN's (default 0.01)\n"
    "  --dense-embeddings  update every embedding row every step, as torch.optim does; by default\n"
    "                      only the rows a batch uses move (lazy Adam), so a step's cost does not\n"
    "                      grow with the catalog\n"
    "  --negatives N       sampled negatives per positive (default 1)\n"
    "  --neg-sampling S    popularity (default) or uniform\n"
    "  --short-len S       short-term behaviors (default 50)\n"
    "  --long-max L        sim-soft, avgpool-din: long-term behaviors searched (default 1000)\n"
    "  --user-cap N        positives per user and epoch, 0 = all (default 200)\n"
    "  --long-before-short the long-term list (SIM, avg-pooling DIN) from the events before the\n"
    "                      short-term window only, as SIM's Taobao split; default: all before t\n"
    "  --seed N            model initialization and sampling (default 1)\n"
    "  --threads N         threads, each training a model replica on its part of every\n"
    "                      batch (default: the machine's cores); deterministic for a seed\n"
    "                      and a thread count\n"
    "  --every N           also write the checkpoint every N steps\n"
    "  --steps N           stop after N steps (resumed ones included)\n"
    "  --resume CKPT       go on from a checkpoint of the same configuration\n"
    "  --json              print the summary as JSON on stdout\n"
    "A progress line (samples/s, loss, ETA) goes to stderr when it is a terminal.\n";

static void on_step(const train_progress *p, void *ud)
{
    cli_progress *pr = ud;
    if (p->step % 20) return;
    double eta = p->samples_per_s > 0 ? (double)(p->total_samples - p->samples) / p->samples_per_s : 0;
    cli_progress_line(pr, "epoch %u step %" PRIu64 ": %" PRIu64 " of %" PRIu64 " samples, %.0f samples/s, "
                      "loss %.4f, ETA %.0f s", p->epoch + 1, p->step, p->samples, p->total_samples,
                      p->samples_per_s, p->loss, eta);
}

/* --recency LIST: "none" or a comma-separated subset of last, cat, gsu. */
static int parse_recency(const char *s, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } parts[] = {
        {"last", MODEL_RECENCY_LAST}, {"cat", MODEL_RECENCY_CAT}, {"gsu", MODEL_RECENCY_GSU}};
    *out = 0;
    if (strcmp(s, "none") == 0) return 0;
    for (const char *p = s;;) {
        size_t n = strcspn(p, ","), i = 0;
        while (i < 3 && (strlen(parts[i].name) != n || strncmp(p, parts[i].name, n) != 0)) i++;
        if (i == 3) return cli_usage_error("train", "--recency: '%.*s' is not one of last, cat, gsu, none", (int)n, p);
        *out |= parts[i].bit;
        if (!p[n]) return 0;
        p += n + 1;
    }
}

int cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, 0, 'i'},     {"model", required_argument, 0, 'm'},
        {"out", required_argument, 0, 'o'},       {"time-info", no_argument, 0, 'T'},
        {"no-recency", no_argument, 0, 'R'},      {"gsu-pool", required_argument, 0, 'P'},
        {"recency", required_argument, 0, 'y'},  {"alpha-aux", required_argument, 0, 'X'},
        {"test-from", required_argument, 0, 't'}, {"epochs", required_argument, 0, 'e'},
        {"batch", required_argument, 0, 'b'},     {"optimizer", required_argument, 0, 'O'},
        {"lr", required_argument, 0, 'l'},        {"lr-decay", required_argument, 0, 'd'},
        {"lambda", required_argument, 0, 'L'},    {"negatives", required_argument, 0, 'n'},
        {"neg-sampling", required_argument, 0, 'N'}, {"short-len", required_argument, 0, 's'},
        {"long-max", required_argument, 0, 'k'},  {"user-cap", required_argument, 0, 'u'},
        {"seed", required_argument, 0, 'S'},      {"threads", required_argument, 0, 'j'},
        {"every", required_argument, 0, 'E'},     {"resume", required_argument, 0, 'r'},
        {"steps", required_argument, 0, 'x'},     {"train-days", required_argument, 0, 'D'},
        {"dense-embeddings", no_argument, 0, 'G'}, {"long-before-short", no_argument, 0, 'B'},
        {"json", no_argument, 0, 'J'},           {"mem-slots", required_argument, 0, 'M'},
        {"d-ctrl", required_argument, 0, 'C'},   {"miu-k", required_argument, 0, 'K'},
        {"bptt", required_argument, 0, 'W'},     {"util-reg", required_argument, 0, 'U'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *dir = NULL, *kind_s = NULL;
    train_config c;
    train_config_default(&c, MODEL_DIN);
    int64_t v, train_days = 0, test_from = INT64_MIN, threads = sysconf(_SC_NPROCESSORS_ONLN);
    double x, lr = -1;
    int json = 0, ch, mimn_opt = 0, recency_opt = 0;
    optim_kind ok = OPTIM_ADAM;
    double lr_decay = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'i': dir = optarg; break;
        case 'm': kind_s = optarg; break;
        case 'o': c.out = optarg; break;
        case 'T': c.time_info = 1; break;
        case 'R': c.recency = 0, recency_opt = 1; break;
        case 'y':
            if (parse_recency(optarg, &c.recency)) return EXIT_USAGE;
            recency_opt = 1;
            break;
        case 'P':
            if (strcmp(optarg, "sum") && strcmp(optarg, "softmax"))
                return cli_usage_error("train", "--gsu-pool: want softmax or sum, found '%s'", optarg);
            c.gsu_sum = strcmp(optarg, "sum") == 0;
            break;
        case 't':
            if (cli_parse_i64("--test-from", optarg, INT64_MIN + 1, INT64_MAX, &test_from)) return EXIT_USAGE;
            break;
        case 'e':
            if (cli_parse_i64("--epochs", optarg, 1, 1000, &v)) return EXIT_USAGE;
            c.epochs = (uint32_t)v;
            break;
        case 'b':
            if (cli_parse_i64("--batch", optarg, 1, 65536, &v)) return EXIT_USAGE;
            c.samples.batch = (uint32_t)v;
            break;
        case 'O':
            if (optim_kind_parse(optarg, &ok)) return cli_usage_error("train", "--optimizer: adam or adagrad");
            break;
        case 'l':
            if (cli_parse_double("--lr", optarg, 1e-12, 100, &lr)) return EXIT_USAGE;
            break;
        case 'd':
            if (cli_parse_double("--lr-decay", optarg, 0, 1e6, &lr_decay)) return EXIT_USAGE;
            break;
        case 'L':
            if (cli_parse_double("--lambda", optarg, 0, 1e6, &x)) return EXIT_USAGE;
            c.lambda = (float)x;
            break;
        case 'n':
            if (cli_parse_i64("--negatives", optarg, 0, 1000, &v)) return EXIT_USAGE;
            c.samples.negatives = (uint32_t)v;
            break;
        case 'N':
            if (!strcmp(optarg, "uniform")) c.samples.neg = NEG_UNIFORM;
            else if (!strcmp(optarg, "popularity")) c.samples.neg = NEG_POPULARITY;
            else return cli_usage_error("train", "--neg-sampling: popularity or uniform");
            break;
        case 's':
            if (cli_parse_i64("--short-len", optarg, 1, 100000, &v)) return EXIT_USAGE;
            c.samples.short_len = (uint32_t)v;
            break;
        case 'k':
            if (cli_parse_i64("--long-max", optarg, 1, 1000000, &v)) return EXIT_USAGE;
            c.samples.long_max = (uint32_t)v;
            break;
        case 'u':
            if (cli_parse_i64("--user-cap", optarg, 0, UINT32_MAX, &v)) return EXIT_USAGE;
            c.samples.user_cap = (uint32_t)v;
            break;
        case 'S':
            if (cli_parse_i64("--seed", optarg, 0, INT64_MAX, &v)) return EXIT_USAGE;
            c.seed = c.samples.seed = (uint64_t)v;
            break;
        case 'j':
            if (cli_parse_i64("--threads", optarg, 1, 256, &threads)) return EXIT_USAGE;
            break;
        case 'E':
            if (cli_parse_i64("--every", optarg, 0, INT64_MAX, &v)) return EXIT_USAGE;
            c.every = (uint64_t)v;
            break;
        case 'r': c.resume = optarg; break;
        case 'G': c.dense_embeddings = 1; break;
        case 'B': c.samples.long_before_short = 1; break;
        case 'D':
            if (cli_parse_i64("--train-days", optarg, 1, 100000, &train_days)) return EXIT_USAGE;
            break;
        case 'x':
            if (cli_parse_i64("--steps", optarg, 1, INT64_MAX, &v)) return EXIT_USAGE;
            c.max_steps = (uint64_t)v;
            break;
        case 'J': json = 1; break;
        case 'M':
            if (cli_parse_i64("--mem-slots", optarg, 1, 64, &v)) return EXIT_USAGE;
            c.mem_slots = (uint32_t)v, mimn_opt = 1;
            break;
        case 'C':
            if (cli_parse_i64("--d-ctrl", optarg, 1, 65536, &v)) return EXIT_USAGE;
            c.d_ctrl = (uint32_t)v, mimn_opt = 1;
            break;
        case 'K':
            if (cli_parse_i64("--miu-k", optarg, 1, 64, &v)) return EXIT_USAGE;
            c.miu_k = (uint32_t)v, mimn_opt = 1;
            break;
        case 'W':
            if (cli_parse_i64("--bptt", optarg, 1, 100000, &v)) return EXIT_USAGE;
            c.bptt = (uint32_t)v, mimn_opt = 1;
            break;
        case 'U':
            if (cli_parse_double("--util-reg", optarg, 0, 1e6, &x)) return EXIT_USAGE;
            c.util_reg = (float)x, mimn_opt = 1;
            break;
        case 'X':
            if (cli_parse_double("--alpha-aux", optarg, 0, 1e6, &x)) return EXIT_USAGE;
            c.alpha_aux = (float)x;
            break;
        case 'h': fputs(train_help, stdout); return EXIT_OK;
        default: return cli_usage_error("train", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!dir || !kind_s || !c.out)
        return cli_usage_error("train", "--index DIR, --model KIND and --out CKPT are required");
    if (model_kind_parse(kind_s, &c.kind))
        return cli_usage_error("train", "--model: '%s' is not one of din, avgpool-din, dien, dsin, sim-hard, sim-soft, "
                               "bst, mimn", kind_s);
    if (c.time_info && c.kind != MODEL_SIM_HARD && c.kind != MODEL_SIM_SOFT)
        return cli_usage_error("train", "--time-info is for sim-hard and sim-soft");
    if (recency_opt && !c.time_info) return cli_usage_error("train", "--recency / --no-recency go with --time-info");
    if ((c.recency & MODEL_RECENCY_CAT) && !(c.recency & MODEL_RECENCY_LAST))
        return cli_usage_error("train", "--recency: cat needs last");
    if (recency_opt && (c.recency & MODEL_RECENCY_GSU) && c.kind != MODEL_SIM_SOFT)
        return cli_usage_error("train", "--recency: gsu is for sim-soft");
    if (c.gsu_sum && c.kind != MODEL_SIM_SOFT) return cli_usage_error("train", "--gsu-pool is for sim-soft");
    if (c.alpha_aux >= 0 && c.kind != MODEL_DIEN) return cli_usage_error("train", "--alpha-aux is for dien");
    if (mimn_opt && c.kind != MODEL_MIMN)
        return cli_usage_error("train", "--mem-slots, --d-ctrl, --miu-k, --bptt and --util-reg are for mimn");
    if (c.kind == MODEL_MIMN && c.miu_k > (c.mem_slots ? c.mem_slots : 4))
        return cli_usage_error("train", "--miu-k: %u, more than the memory slots", c.miu_k);
    optim_config_default(&c.optim, ok);
    if (lr > 0) c.optim.lr = lr;
    c.optim.decay = lr_decay;
    if (threads < 1) threads = 1;
    c.threads = (uint32_t)threads; /* model replicas, one thread each, each calling BLAS single-threaded */
    openblas_set_num_threads(1);

    char err[LSIM_ERRLEN];
    lsim_index *ix;
    if (lsim_index_open(&ix, dir, err, sizeof err)) {
        fprintf(stderr, "lsim train: %s\n", err);
        return EXIT_FAIL;
    }
    int rc = 0;
    if (test_from == INT64_MIN) rc = cli_default_split(ix, "train", dir, &test_from);
    c.samples.test_from = test_from;
    if (train_days) c.samples.train_from = test_from - train_days * 86400;
    cli_progress pr;
    cli_progress_init(&pr);
    train_progress fin;
    if (!rc && (rc = train_run(ix, &c, on_step, &pr, &fin, err, sizeof err))) {
        cli_progress_done(&pr);
        fprintf(stderr, "lsim train: %s\n", err);
    } else if (!rc) {
        cli_progress_done(&pr);
        if (json) {
            printf("{\"model\": \"%s\", \"out\": ", model_kind_name(c.kind));
            cli_json_string(stdout, c.out);
            printf(", \"steps\": %" PRIu64 ", \"samples\": %" PRIu64 ", \"seconds\": %.3f, \"samples_per_s\": %.1f, "
                   "\"loss\": %.6f, \"test_from\": %" PRId64 "}\n",
                   fin.step, fin.samples, fin.seconds, fin.samples_per_s, fin.loss, test_from);
        } else {
            printf("trained %s: %" PRIu64 " steps, %" PRIu64 " samples in %.1f s (%.0f samples/s), final loss %.4f; "
                   "test from %" PRId64 "; wrote %s\n",
                   model_kind_name(c.kind), fin.step, fin.samples, fin.seconds, fin.samples_per_s, fin.loss, test_from,
                   c.out);
        }
    }
    lsim_index_close(ix);
    return rc ? EXIT_FAIL : EXIT_OK;
}
