/*
 * cmd_query.c: `lsim query`: hard search from the command line.
 */
#include "lsim.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char query_help[] =
    "usage: lsim query --index DIR --user U [--cat C] [--before TS] [-k K] [--json]\n"
    "Hard search: the user's K most recent events in category C with timestamp strictly\n"
    "before TS, most recent first (equal timestamps: the later log line first).\n"
    "Without --cat, the user's K most recent events of any category.\n"
    "  --before TS   unix seconds (default: no bound)\n"
    "  -k K          how many (default 50, at most 1000000)\n"
    "  --json        {\"user\": .., \"category\": .., \"events\": [{\"item\", \"ts\", \"type\"}, ..]}\n"
    "An unknown user or category gives no events (exit 0).\n";

int cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {{"index", required_argument, 0, 'i'}, {"user", required_argument, 0, 'u'},
                                         {"cat", required_argument, 0, 'c'},   {"category", required_argument, 0, 'c'},
                                         {"before", required_argument, 0, 'b'}, {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *dir = NULL, *user = NULL, *cat = NULL;
    int64_t before = INT64_MAX, k = 50;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:", opts, NULL)) != -1) {
        switch (c) {
        case 'i': dir = optarg; break;
        case 'u': user = optarg; break;
        case 'c': cat = optarg; break;
        case 'b':
            if (cli_parse_i64("--before", optarg, INT64_MIN, INT64_MAX, &before)) return EXIT_USAGE;
            break;
        case 'k':
            if (cli_parse_i64("-k", optarg, 0, 1000000, &k)) return EXIT_USAGE;
            break;
        case 'j': json = 1; break;
        case 'h': fputs(query_help, stdout); return EXIT_OK;
        default: return cli_usage_error("query", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("query", "unexpected argument '%s'", argv[optind]);
    if (!dir || !user) return cli_usage_error("query", "--index DIR and --user U are required");
    char err[512];
    lsim_index *ix;
    if (lsim_index_open(&ix, dir, err, sizeof err)) {
        fprintf(stderr, "lsim query: %s\n", err);
        return EXIT_FAIL;
    }
    lsim_index_reader *rd = NULL;
    lsim_event *ev = malloc(((size_t)k ? (size_t)k : 1) * sizeof *ev);
    size_t n = 0;
    int rc = ev ? lsim_index_reader_new(ix, &rd) : LSIM_E_NOMEM;
    if (!rc) rc = lsim_index_hard_search(rd, user, strlen(user), cat, cat ? strlen(cat) : 0, before, (size_t)k, ev, &n);
    if (rc) {
        fprintf(stderr, "lsim query: %s: %s\n", lsim_strerror(rc), rd ? lsim_index_reader_errmsg(rd) : "");
    } else if (json) {
        printf("{\"user\": ");
        cli_json_string(stdout, user);
        printf(", \"category\": ");
        if (cat) cli_json_string(stdout, cat);
        else printf("null");
        printf(", \"events\": ");
        cli_json_events(stdout, ev, n, !cat, 0);
        printf("}\n");
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%lld\t%s\t%s\t%s\n", (long long)ev[i].ts, ev[i].item, ev[i].category, ev[i].type);
    }
    free(ev);
    lsim_index_reader_free(rd);
    lsim_index_close(ix);
    return rc ? EXIT_FAIL : EXIT_OK;
}
