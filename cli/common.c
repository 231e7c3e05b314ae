/* common.c: shared pieces of the client subcommands. */
#include "cli/common.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *
cli_flag_value(const char *name, int argc, char **argv, int *i, int *missing)
{
    const char *arg = argv[*i];
    size_t      n = strlen(name);

    *missing = 0;
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int
cli_parse_u64(const char *s, unsigned long long *out)
{
    char *end;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

int
cli_conn_flag(struct cli_conn *c, int argc, char **argv, int *i)
{
    static const char *const names[] = {
        "--url",          "--key-file", "--data",  "--request-timeout",
        "--app-key-file", "--tls-cert", "--tls-ca"};
    int missing;

    for (int k = 0; k < 7; k++) {
        const char *v = cli_flag_value(names[k], argc, argv, i, &missing);
        unsigned long long ms;

        if (missing)
            return -1;
        if (v == NULL)
            continue;
        if (k == 0)
            c->url = v;
        else if (k == 1)
            c->key_file = v;
        else if (k == 2)
            c->data_dir = v;
        else if (k == 4)
            c->app_key_file = v;
        else if (k == 5)
            c->tls_cert_file = v;
        else if (k == 6)
            c->tls_ca_file = v;
        else if (cli_parse_u64(v, &ms) != 0 || ms == 0 || ms > 86400000)
            return -1;
        else
            c->timeout_ms = (unsigned)ms;
        return 1;
    }
    return 0;
}

cadre_client *
cli_open(const struct cli_conn *c, const char *cmd)
{
    cadre_client_opts opts = {.url = c->url,
                              .key_file = c->key_file,
                              .data_dir = c->data_dir,
                              .timeout_ms = c->timeout_ms,
                              .app_key_file = c->app_key_file,
                              .tls_cert_file = c->tls_cert_file,
                              .tls_ca_file = c->tls_ca_file};
    cadre_client     *client = NULL;
    char              msg[512];

    if (cadre_client_open(&opts, &client, msg, sizeof(msg)) != CADRE_OK) {
        fprintf(stderr, "cadre %s: %s\n", cmd, msg);
        return NULL;
    }
    return client;
}

void
cli_json_str(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}
