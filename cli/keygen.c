/* keygen.c: `cadre keygen`: prints a new cluster master key, or the key of
 * one role derived from an existing master key file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "crypto/keys.h"

static void
keygen_usage(FILE *f)
{
    fprintf(f,
            "usage: cadre keygen [--app | --role ROLE --from MASTER_FILE]\n\n"
            "Prints a new cluster master key (save it mode 0600, pass it "
            "with --key-file).\nWith --role worker|client|node and --from, "
            "prints that role's key derived from\nthe master key, for "
            "hosts that must not hold the master key.\n");
}

int
cli_keygen(int argc, char **argv)
{
    const char *role_name = NULL, *from = NULL;
    keys_key    master, k;
    char        line[128];
    cd_err      err = {0};
    int         role = KEYS_ROLE_MASTER, missing = 0, app = 0;

    for (int i = 1; i < argc; i++) {
        const char *v;

        if (strcmp(argv[i], "--help") == 0) {
            keygen_usage(stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--app") == 0) {
            app = 1;
        } else if ((v = cli_flag_value("--role", argc, argv, &i, &missing))) {
            role_name = v;
        } else if ((v = cli_flag_value("--from", argc, argv, &i, &missing))) {
            from = v;
        } else {
            fprintf(stderr, "cadre keygen: %s '%s'\n",
                    missing ? "missing value for" : "unknown argument",
                    argv[i]);
            keygen_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (app && (role_name != NULL || from != NULL)) {
        fprintf(stderr, "cadre keygen: --app makes a new key; it takes no "
                        "--role or --from\n");
        return CLI_USAGE;
    }
    if (app)
        role = KEYS_ROLE_APP;
    if (role_name != NULL && (role = keys_role_parse(role_name)) < 0) {
        fprintf(stderr, "cadre keygen: unknown role '%s'\n", role_name);
        return CLI_USAGE;
    }
    if (keys_init() != CADRE_OK)
        return CLI_FAIL;
    if (role != KEYS_ROLE_MASTER && role != KEYS_ROLE_APP && from == NULL) {
        fprintf(stderr, "cadre keygen: --role needs --from MASTER_FILE\n");
        return CLI_USAGE;
    }
    if (from != NULL) {
        if (keys_load_for(from, role, &k, &err) != CADRE_OK) {
            fprintf(stderr, "cadre keygen: %s\n", err.msg);
            return CLI_FAIL;
        }
    } else {
        keys_generate(&master);
        k = master;
        keys_wipe(&master);
    }
    keys_format(role, &k, line, sizeof(line));
    keys_wipe(&k);
    fputs(line, stdout);
    return CLI_OK;
}
