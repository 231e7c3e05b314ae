/* common.h: what the client subcommands share: connection flags, opening a
 * client, and JSON string output. */
#ifndef CLI_COMMON_H
#define CLI_COMMON_H

#include <stddef.h>
#include <stdio.h>

#include "cadre/cadre.h"

struct cli_conn {
    const char *url;
    const char *key_file;
    const char *data_dir;
    unsigned    timeout_ms;
    const char *app_key_file;
    const char *tls_cert_file;
    const char *tls_ca_file;
};

/* If argv[*i] is --url/--key-file/--data/--request-timeout/--app-key-file/
 * --tls-cert/--tls-ca (with its value,
 * "--flag value" or "--flag=value"), consumes it and returns 1; returns -1
 * if its value is missing or bad, 0 if it is not a connection flag. */
int cli_conn_flag(struct cli_conn *c, int argc, char **argv, int *i);
/* Opens a client or prints "cadre CMD: <error>" and returns NULL. */
cadre_client *cli_open(const struct cli_conn *c, const char *cmd);
/* Writes s (len bytes) as a JSON string literal. */
void cli_json_str(FILE *f, const char *s, size_t len);
/* Parses a decimal unsigned number; returns 0 on success. */
int cli_parse_u64(const char *s, unsigned long long *out);
/* The value of a flag "--name value" or "--name=value" at argv[*i], or NULL
 * (not this flag). *missing is set when the flag has no value. */
const char *cli_flag_value(const char *name, int argc, char **argv, int *i,
                           int *missing);

#define CLI_CONN_HELP                                                          \
    "  --url URL          node api url (default $CADRE_URL or "                \
    "tcp://127.0.0.1:7700)\n"                                                  \
    "  --key-file FILE    key file (default $CADRE_KEY_FILE or "               \
    "<data>/cluster.key)\n"                                                    \
    "  --data DIR         data dir holding the default key\n"                  \
    "  --request-timeout MS  per request (default 10000)\n"                    \
    "  --app-key-file F   application key for encrypted jobs (default "        \
    "$CADRE_APP_KEY_FILE)\n"                                                   \
    "  --tls-cert F       PEM certificate and key for a tls+tcp:// node "      \
    "(default $CADRE_TLS_CERT)\n"                                              \
    "  --tls-ca F         PEM CA the node's certificate must chain to "        \
    "(default $CADRE_TLS_CA)\n"

#endif
