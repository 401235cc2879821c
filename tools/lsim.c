/*
 * lsim.c: the lsim command: dispatches to the subcommands in tools/cmd_*.c.
 * Exit codes: 0 success, 1 runtime failure, 2 usage error.
 */
#include "lsim.h"
#include "tools/cli_util.h"
#include "tools/commands.h"

#include <stdio.h>
#include <string.h>

static const char help[] =
    "lsim: a serving engine for SIM (search-based interest model) over lifelong user behavior\n"
    "\n"
    "usage: lsim <command> [options]   (each command takes --help)\n"
    "\n"
    "  gen log        write a synthetic Taobao-format behavior log\n"
    "  gen requests   ranking requests from an index's held-out window (a request log)\n"
    "  index build    build the behavior index (User Behavior Tree) from logs\n"
    "  index append   add new logs to an index, atomically\n"
    "  index stats    counts and size of an index\n"
    "  index verify   check every block and count of an index\n"
    "  index dump     print one user's events\n"
    "  query          hard search: a user's most recent events of a category\n"
    "  train          train a model (DIN, DIEN, DSIN, SIM ...) on the index's samples\n"
    "  eval           AUC, GAUC and logloss of a checkpoint on the index's test samples\n"
    "  score          score one user's candidate items at a time (the request engine)\n"
    "  explain        the behaviors a SIM model's search picked for one item, with attention\n"
    "  replay         replay a request log through the engine: latency, QPS, AUC, GAUC, pictures\n"
    "  version        print the version\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(help, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("lsim %s\n", lsim_version());
        return EXIT_OK;
    }
    if (!strcmp(cmd, "gen")) return cmd_gen(argc - 1, argv + 1);
    if (!strcmp(cmd, "index")) return cmd_index(argc - 1, argv + 1);
    if (!strcmp(cmd, "query")) return cmd_query(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "score")) return cmd_score(argc - 1, argv + 1);
    if (!strcmp(cmd, "explain")) return cmd_explain(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay")) return cmd_replay(argc - 1, argv + 1);
    fprintf(stderr, "lsim: unknown command '%s'\n\n", cmd);
    fputs(help, stderr);
    return EXIT_USAGE;
}
