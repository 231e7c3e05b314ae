/* coord.c: `cadre lock`, `cadre throttle`, `cadre funnel`: the cluster
 * primitives the raft leader serves (node/coord.c), through libcadre. Each
 * prints what the call answered; held or limited exits 1 with why on
 * stderr, bad flags exit 2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"

/* Everything the three commands parse; which flags apply depends on the
 * command. */
struct coord_args {
    struct cli_conn    conn;
    const char        *cmd; /* "lock", "throttle", "funnel" */
    const char        *sub; /* acquire, release; NULL for throttle */
    const char        *key;
    const char        *owner;
    unsigned long long ttl_ms, block_ms, limit, per_ms;
    int                json, help;
};

static void
coord_usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "lock") == 0)
        fprintf(f, "usage: cadre lock acquire KEY --ttl DUR [--owner O] "
                   "[--block DUR] [--json] [FLAGS]\n"
                   "       cadre lock release KEY --owner O [FLAGS]\n\n"
                   "acquire prints the fencing token and the owner (a new "
                   "random one without\n--owner); release needs that owner. "
                   "Held by another owner: exit 1.\n");
    else if (strcmp(cmd, "throttle") == 0)
        fprintf(f, "usage: cadre throttle KEY --allow N --every DUR [--json] "
                   "[FLAGS]\n\n"
                   "Counts one use of KEY: at most N per window of DUR across "
                   "the cluster.\nPrints \"allowed\", or \"limited\" with the "
                   "time to the next window (exit 1).\n");
    else
        fprintf(f, "usage: cadre funnel acquire KEY --limit N --ttl DUR "
                   "[--owner O] [--block DUR]\n"
                   "                   [--json] [FLAGS]\n"
                   "       cadre funnel release KEY --owner O [FLAGS]\n\n"
                   "At most N owners hold a slot of KEY at once; acquire "
                   "prints the owner.\nFull: exit 1.\n");
    fprintf(f, "\nDurations: 500ms, 10s, 2m, 1h or bare milliseconds. The "
               "node must run with\n--voters; any node forwards to the "
               "leader.\n\nflags:\n"
               "  --json             print JSON\n" CLI_CONN_HELP);
}

/* "500ms", "10s", "2m", "1h" or bare milliseconds, up to a day. */
static int
coord_parse_duration(const char *s, unsigned long long *ms)
{
    unsigned long long v;
    char              *end;

    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end == '\0' || strcmp(end, "ms") == 0)
        *ms = v;
    else if (strcmp(end, "s") == 0)
        *ms = v * 1000;
    else if (strcmp(end, "m") == 0)
        *ms = v * 60000;
    else if (strcmp(end, "h") == 0)
        *ms = v * 3600000;
    else
        return -1;
    return v <= 86400000ULL && *ms <= 86400000ULL ? 0 : -1;
}

/* One flag with a value at argv[*i]: 1 consumed, 0 not ours, -1 bad. */
static int
coord_flag(struct coord_args *a, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--owner", "--ttl",   "--block",
                                        "--limit", "--allow", "--every"};
    int                      missing;

    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const char *v = cli_flag_value(names[k], argc, argv, i, &missing);

        if (missing)
            return -1;
        if (v == NULL)
            continue;
        switch (k) {
        case 0:
            a->owner = v;
            return v[0] != '\0' ? 1 : -1;
        case 1:
            return coord_parse_duration(v, &a->ttl_ms) == 0 ? 1 : -1;
        case 2:
            return coord_parse_duration(v, &a->block_ms) == 0 ? 1 : -1;
        case 3:
        case 4:
            return cli_parse_u64(v, &a->limit) == 0 && a->limit <= UINT32_MAX
                       ? 1
                       : -1;
        default:
            return coord_parse_duration(v, &a->per_ms) == 0 ? 1 : -1;
        }
    }
    return 0;
}

/* Positional words: [SUB] KEY. */
static int
coord_word(struct coord_args *a, const char *w)
{
    int has_sub = strcmp(a->cmd, "throttle") != 0;

    if (has_sub && a->sub == NULL)
        a->sub = w;
    else if (a->key == NULL)
        a->key = w;
    else
        return -1;
    return 0;
}

/* What a command needs beyond parsing: NULL, or why it is unusable. */
static const char *
coord_missing(const struct coord_args *a)
{
    int acquire = a->sub != NULL && strcmp(a->sub, "acquire") == 0;

    if (strcmp(a->cmd, "throttle") != 0 && a->sub == NULL)
        return "missing acquire or release";
    if (a->sub != NULL && !acquire && strcmp(a->sub, "release") != 0)
        return "the command is acquire or release";
    if (a->key == NULL)
        return "missing KEY";
    if (strcmp(a->cmd, "throttle") == 0)
        return a->limit == 0 || a->per_ms == 0
                   ? "throttle needs --allow N and --every DUR"
                   : NULL;
    if (!acquire)
        return a->owner == NULL ? "release needs --owner" : NULL;
    if (a->ttl_ms == 0)
        return "acquire needs --ttl DUR";
    if (strcmp(a->cmd, "funnel") == 0 && a->limit == 0)
        return "funnel acquire needs --limit N";
    return NULL;
}

/* Returns CLI_OK, or CLI_USAGE after printing why. */
static int
coord_parse(struct coord_args *a, int argc, char **argv)
{
    const char *bad = NULL, *why;

    for (int i = 1; i < argc && bad == NULL; i++) {
        int c = cli_conn_flag(&a->conn, argc, argv, &i);

        if (c == 0)
            c = coord_flag(a, argc, argv, &i);
        if (c != 0) {
            if (c < 0)
                bad = argv[i];
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            a->help = 1;
            return CLI_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if (argv[i][0] == '-' || coord_word(a, argv[i]) != 0) {
            bad = argv[i];
        }
    }
    if (bad != NULL) {
        fprintf(stderr, "cadre %s: bad or incomplete argument '%s'\n\n", a->cmd,
                bad);
        return CLI_USAGE;
    }
    if ((why = coord_missing(a)) != NULL) {
        fprintf(stderr, "cadre %s: %s\n\n", a->cmd, why);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static void
coord_print_json(const struct coord_args *a, int rc, const char *owner,
                 uint64_t token, uint64_t retry_after_ms, cadre_client *c)
{
    printf("{\"key\":");
    cli_json_str(stdout, a->key, strlen(a->key));
    printf(",\"ok\":%s", rc == CADRE_OK ? "true" : "false");
    if (owner != NULL) {
        printf(",\"owner\":");
        cli_json_str(stdout, owner, strlen(owner));
    }
    if (token != 0)
        printf(",\"token\":%llu", (unsigned long long)token);
    if (strcmp(a->cmd, "throttle") == 0)
        printf(",\"retry_after_ms\":%llu", (unsigned long long)retry_after_ms);
    if (rc != CADRE_OK) {
        printf(",\"error\":");
        cli_json_str(stdout, cadre_strerror(rc), strlen(cadre_strerror(rc)));
        printf(",\"message\":");
        cli_json_str(stdout, cadre_client_errmsg(c),
                     strlen(cadre_client_errmsg(c)));
    }
    printf("}\n");
}

/* Runs the parsed command against c; prints its answer. */
static int
coord_exec(const struct coord_args *a, cadre_client *c)
{
    char     owner[CADRE_OWNER_LEN] = "";
    uint64_t token = 0, retry = 0;
    int      lock = strcmp(a->cmd, "lock") == 0, rc;
    int      acquire = a->sub != NULL && strcmp(a->sub, "acquire") == 0;

    if (a->sub == NULL)
        rc = cadre_throttle(c, a->key, (uint32_t)a->limit, a->per_ms, &retry);
    else if (lock && acquire)
        rc = cadre_lock_acquire(c, a->key, a->owner, a->ttl_ms, a->block_ms,
                                &token, owner);
    else if (acquire)
        rc = cadre_funnel_acquire(c, a->key, a->owner, (uint32_t)a->limit,
                                  a->ttl_ms, a->block_ms, owner);
    else if (lock)
        rc = cadre_lock_release(c, a->key, a->owner);
    else
        rc = cadre_funnel_release(c, a->key, a->owner);
    if (a->json)
        coord_print_json(a, rc, owner[0] != '\0' ? owner : a->owner, token,
                         retry, c);
    else if (rc != CADRE_OK)
        fprintf(stderr, "cadre %s: %s\n", a->cmd, cadre_client_errmsg(c));
    else if (a->sub == NULL)
        printf("allowed\n");
    else if (lock && acquire)
        printf("%llu %s\n", (unsigned long long)token, owner);
    else if (acquire)
        printf("%s\n", owner);
    else
        printf("released\n");
    return rc == CADRE_OK ? CLI_OK : CLI_FAIL;
}

static int
coord_main(const char *cmd, int argc, char **argv)
{
    struct coord_args a = {.cmd = cmd};
    cadre_client     *c;
    int               rc = coord_parse(&a, argc, argv);

    if (rc != CLI_OK || a.help) {
        coord_usage(rc == CLI_OK ? stdout : stderr, cmd);
        return rc;
    }
    if ((c = cli_open(&a.conn, cmd)) == NULL)
        return CLI_FAIL;
    rc = coord_exec(&a, c);
    cadre_client_close(c);
    return rc;
}

int
cli_lock(int argc, char **argv)
{
    return coord_main("lock", argc, argv);
}

int
cli_throttle(int argc, char **argv)
{
    return coord_main("throttle", argc, argv);
}

int
cli_funnel(int argc, char **argv)
{
    return coord_main("funnel", argc, argv);
}
