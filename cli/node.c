/* node.c: `cadre node`: parse the option table, run the node. */
#include <stdio.h>

#include "cli/cli.h"
#include "node/config.h"
#include "node/node.h"

int
cli_node(int argc, char **argv)
{
    static struct node_config cfg; /* large: keep it off the stack */
    cd_err                    err = {0};
    int                       help = 0;
    int                       rc;

    rc = config_load(&cfg, argc, argv, &help, &err);
    if (help) {
        config_usage(stdout);
        return CLI_OK;
    }
    if (rc == CADRE_EUSAGE) {
        fprintf(stderr, "cadre node: %s\n\n", err.msg);
        config_usage(stderr);
        return CLI_USAGE;
    }
    if (rc != CADRE_OK) {
        fprintf(stderr, "cadre node: %s\n", err.msg);
        return CLI_FAIL;
    }
    rc = node_run(&cfg, &err);
    if (rc != CADRE_OK) {
        fprintf(stderr, "cadre node: %s\n", err.msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}
