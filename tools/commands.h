/*
 * commands.h: the subcommands of the lsim binary, each `int cmd_X(argc, argv)`
 * with argv[0] the subcommand's name; they return the process exit code.
 */
#ifndef LSIM_COMMANDS_H
#define LSIM_COMMANDS_H

int cmd_gen(int argc, char **argv);
int cmd_gen_requests(int argc, char **argv); /* `lsim gen requests` (argv[0] "requests") */
int cmd_index(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_replay(int argc, char **argv);

#endif
