/* restart.c: `cadre restart`: replace a node's supervised workers
 * gracefully (after a deploy: the fresh processes load the new plugins). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"

static void
restart_usage(FILE *f)
{
    fprintf(f, "usage: cadre restart [FLAGS]\n\n"
               "Every worker the node supervises finishes its current job, "
               "gives back the\njobs it held, and is replaced by a fresh "
               "process (which loads the plugins\nagain). No job is lost or "
               "run twice.\n\nflags:\n" CLI_CONN_HELP);
}

int
cli_restart(int argc, char **argv)
{
    struct cli_conn conn = {0};
    cadre_client   *c;
    uint64_t        n = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            restart_usage(stdout);
            return CLI_OK;
        }
        if (cli_conn_flag(&conn, argc, argv, &i) == 1)
            continue;
        fprintf(stderr, "cadre restart: bad argument '%s'\n\n", argv[i]);
        restart_usage(stderr);
        return CLI_USAGE;
    }
    c = cli_open(&conn, "restart");
    if (c == NULL)
        return CLI_FAIL;
    if (cadre_workers_restart(c, &n) != CADRE_OK) {
        fprintf(stderr, "cadre restart: %s\n", cadre_client_errmsg(c));
        cadre_client_close(c);
        return CLI_FAIL;
    }
    printf("restarting %" PRIu64 " worker%s\n", n, n == 1 ? "" : "s");
    cadre_client_close(c);
    return CLI_OK;
}
