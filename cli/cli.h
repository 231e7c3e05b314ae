/* cli.h: the `cadre` command's subcommands, one file per group. Each returns
 * the process exit code: 0 success, 1 failure, 2 usage. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

int cli_node(int argc, char **argv);     /* cli/node.c */
int cli_worker(int argc, char **argv);   /* cli/worker.c */
int cli_dispatch(int argc, char **argv); /* cli/dispatch.c */
int cli_status(int argc, char **argv);   /* cli/status.c */
int cli_keygen(int argc, char **argv);   /* cli/keygen.c */
int cli_run(int argc, char **argv);      /* cli/run.c */
int cli_defer(int argc, char **argv);    /* cli/run.c */
int cli_failed(int argc, char **argv);   /* cli/failed.c */
int cli_queue(int argc, char **argv);    /* cli/queue.c */
int cli_restart(int argc, char **argv);  /* cli/restart.c */
int cli_events(int argc, char **argv);   /* cli/events.c */
int cli_cluster(int argc, char **argv);  /* cli/cluster.c */
int cli_lock(int argc, char **argv);     /* cli/coord.c */
int cli_throttle(int argc, char **argv); /* cli/coord.c */
int cli_funnel(int argc, char **argv);   /* cli/coord.c */
int cli_schedule(int argc, char **argv); /* cli/schedule.c */

#endif
