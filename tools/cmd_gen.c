/*
 * cmd_gen.c: `lsim gen log`: the synthetic log generator (loaders/gen_log.h);
 * `lsim gen requests` is in cmd_gen_requests.c.
 */
#include "loaders/gen_log.h"
#include "loaders/gen_truth_file.h"
#include "lsim.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char gen_help[] =
    "usage: lsim gen log --users N [--seed S] --out FILE [options]\n"
    "Writes a synthetic Taobao-format behavior log (user,item,category,type,timestamp) with\n"
    "the shape of real e-commerce logs; docs/GENERATOR.md gives the generative model.\n"
    "Deterministic: the same options give the same bytes.\n"
    "  --users N        number of users\n"
    "  --seed S         random seed (default 1)\n"
    "  --out FILE       output file ('-' for stdout)\n"
    "  --items N        catalog size (default: derived from users)\n"
    "  --categories N   number of categories (default: derived from items)\n"
    "  --min-len N      shortest sequence (default 100)\n"
    "  --max-len N      longest sequence; user 1 has exactly this many events (default 54000)\n"
    "  --alpha A        Pareto exponent of sequence lengths (default 1.1)\n"
    "  --days N         span of the log in days (default 180)\n"
    "  --end-ts TS      end of the log, unix seconds (default 1512345600, 2017-12-04)\n"
    "The behavior model (docs/GENERATOR.md gives each one's role):\n"
    "  --theme-size N   categories per theme; 1 = no themes (default 1)\n"
    "  --theme-conc A   concentration of a user's theme urn (default 5)\n"
    "  --cat-conc B     concentration of the category-within-theme urn (default 2)\n"
    "  --item-conc B    concentration of the item-within-category urn (default 20)\n"
    "  --sess-stay S    probability that a session's next event keeps the category (default 1)\n"
    "  --sess-mean M    mean session size (default 6)\n"
    "  --carry H        a session's first event keeps the previous category with probability\n"
    "                   H exp(-gap / carry-days) (default 0.3)\n"
    "  --carry-days D   time scale of the carry-over in days (default 1)\n"
    "  --truth FILE     also write the truth file: the parameters from which `lsim eval\n"
    "                   --truth FILE` gives each test sample its true probability\n";

int cmd_gen(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "requests") == 0) return cmd_gen_requests(argc - 1, argv + 1);
    if (argc < 2 || strcmp(argv[1], "log") != 0) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            fputs(gen_help, stdout);
            fputs("\nusage: lsim gen requests --index DIR --out FILE [options]  (see lsim gen requests --help)\n",
                  stdout);
            return EXIT_OK;
        }
        return cli_usage_error("gen", "want `lsim gen log` or `lsim gen requests`");
    }
    argc--;
    argv++;
    static const struct option opts[] = {
        {"users", required_argument, 0, 'u'},      {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},        {"items", required_argument, 0, 'i'},
        {"categories", required_argument, 0, 'c'}, {"min-len", required_argument, 0, 'm'},
        {"max-len", required_argument, 0, 'M'},    {"alpha", required_argument, 0, 'a'},
        {"days", required_argument, 0, 'd'},       {"end-ts", required_argument, 0, 'e'},
        {"truth", required_argument, 0, 't'},      {"theme-size", required_argument, 0, 'T'},
        {"theme-conc", required_argument, 0, 'A'}, {"cat-conc", required_argument, 0, 'B'},
        {"item-conc", required_argument, 0, 'I'},  {"sess-stay", required_argument, 0, 'S'},
        {"sess-mean", required_argument, 0, 'N'},  {"carry", required_argument, 0, 'C'},
        {"carry-days", required_argument, 0, 'D'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    gen_log_params p;
    gen_log_params_default(&p);
    const char *out = NULL, *truth = NULL;
    int have_users = 0, c;
    int64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u': if (cli_parse_i64("--users", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE; p.users = (uint32_t)v; have_users = 1; break;
        case 's': if (cli_parse_i64("--seed", optarg, 0, INT64_MAX, &v)) return EXIT_USAGE; p.seed = (uint64_t)v; break;
        case 'o': out = optarg; break;
        case 't': truth = optarg; break;
        case 'i': if (cli_parse_i64("--items", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE; p.items = (uint32_t)v; break;
        case 'c': if (cli_parse_i64("--categories", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE; p.categories = (uint32_t)v; break;
        case 'm': if (cli_parse_i64("--min-len", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE; p.min_len = (uint32_t)v; break;
        case 'M': if (cli_parse_i64("--max-len", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE; p.max_len = (uint32_t)v; break;
        case 'd': if (cli_parse_i64("--days", optarg, 1, 100000, &v)) return EXIT_USAGE; p.days = (uint32_t)v; break;
        case 'e': if (cli_parse_i64("--end-ts", optarg, 0, INT64_MAX / 2, &v)) return EXIT_USAGE; p.end_ts = v; break;
        case 'T':
            if (cli_parse_i64("--theme-size", optarg, 1, UINT32_MAX, &v)) return EXIT_USAGE;
            p.theme_size = (uint32_t)v;
            break;
        case 'a': case 'A': case 'B': case 'I': case 'S': case 'N': case 'C': case 'D': {
            static const char *const names[] = {"--alpha", "--theme-conc", "--cat-conc", "--item-conc", "--sess-stay",
                                                "--sess-mean", "--carry", "--carry-days"};
            static const char keys[] = "aABISNCD";
            const char *name = names[strchr(keys, c) - keys];
            char *end;
            errno = 0;
            double d = strtod(optarg, &end);
            if (!*optarg || *end || errno || !isfinite(d)) return cli_usage_error("gen log", "%s wants a number", name);
            if (c == 'a' && !(d > 0)) return cli_usage_error("gen log", "--alpha wants a positive number");
            switch (c) {
            case 'a': p.len_alpha = d; break;
            case 'A': p.theme_conc = d; break;
            case 'B': p.cat_conc = d; break;
            case 'I': p.item_conc = d; break;
            case 'S': p.sess_stay = d; break;
            case 'N': p.sess_mean = d; break;
            case 'C': p.carry = d; break;
            default: p.carry_days = d; break;
            }
            break;
        }
        case 'h': fputs(gen_help, stdout); return EXIT_OK;
        default: return cli_usage_error("gen log", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("gen log", "unexpected argument '%s'", argv[optind]);
    if (!have_users || !out) return cli_usage_error("gen log", "--users N and --out FILE are required");
    FILE *f = strcmp(out, "-") ? fopen(out, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "lsim gen log: %s: %s\n", out, strerror(errno));
        return EXIT_FAIL;
    }
    char err[512];
    gen_log_summary s;
    int rc = gen_log_write(f, &p, &s, err, sizeof err);
    if (f != stdout && fclose(f) != 0 && !rc) {
        snprintf(err, sizeof err, "%s: %s", out, strerror(errno));
        rc = LSIM_E_IO;
    }
    if (rc) {
        fprintf(stderr, "lsim gen log: %s\n", err);
        return rc == LSIM_E_INVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    if (truth && (rc = gen_truth_file_write(truth, &p, err, sizeof err))) {
        fprintf(stderr, "lsim gen log: %s\n", err);
        return EXIT_FAIL;
    }
    fprintf(stderr, "lsim gen log: %" PRIu64 " events, %" PRIu64 " users, %" PRIu64 " items, %" PRIu64
            " categories, longest sequence %u -> %s\n",
            s.events, s.users, s.items_used, s.categories_used, s.longest, out);
    return EXIT_OK;
}
