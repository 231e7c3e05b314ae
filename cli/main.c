/* main.c: the `cadre` command: picks the subcommand and hands it argv. */
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "cli/cli.h"
#include "common/log.h"

struct main_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct main_cmd main_cmds[] = {
    {"node", cli_node, "run a node (stores jobs, supervises workers)"},
    {"worker", cli_worker, "run a worker that fetches and runs jobs"},
    {"dispatch", cli_dispatch, "dispatch a job (optionally wait for it)"},
    {"run", cli_run, "run tasks concurrently and print their outcomes"},
    {"defer", cli_defer, "store tasks as jobs without waiting for them"},
    {"status", cli_status, "show a node's queues and workers"},
    {"events", cli_events, "tail a node's job events"},
    {"failed", cli_failed, "list, show, retry, forget failed jobs"},
    {"queue", cli_queue, "clear, pause, resume, monitor queues"},
    {"restart", cli_restart, "replace the node's workers gracefully"},
    {"cluster", cli_cluster, "list the cluster's members"},
    {"lock", cli_lock, "acquire or release a cluster-wide lock"},
    {"throttle", cli_throttle, "count a use against a cluster-wide rate limit"},
    {"funnel", cli_funnel, "acquire or release a cluster-wide funnel slot"},
    {"schedule", cli_schedule, "list, run, pause or resume schedules"},
    {"keygen", cli_keygen, "write a new cluster key"},
};

static void
main_usage(FILE *f)
{
    fprintf(f, "usage: cadre COMMAND [ARGS...]   (cadre COMMAND --help)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
        fprintf(f, "  %-10s %s\n", main_cmds[i].name, main_cmds[i].help);
    fprintf(f, "\ncadre %s\n", CADRE_VERSION);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        main_usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("cadre %s\n", CADRE_VERSION);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++) {
        if (strcmp(argv[1], main_cmds[i].name) == 0) {
            cd_log_init(main_cmds[i].name);
            return main_cmds[i].fn(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "cadre: unknown command '%s'\n", argv[1]);
    main_usage(stderr);
    return CLI_USAGE;
}
