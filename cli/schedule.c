/* schedule.c: `cadre schedule list|run|pause|resume`: the schedules of the
 * node's config file ([schedule "NAME"]), through libcadre. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/common.h"

struct schedule_args {
    struct cli_conn conn;
    const char     *sub, *name;
    int             json;
};

static void
schedule_usage(FILE *f)
{
    fprintf(f,
            "usage: cadre schedule list [--json] [FLAGS]\n"
            "       cadre schedule run NAME [FLAGS]\n"
            "       cadre schedule pause NAME [FLAGS]\n"
            "       cadre schedule resume NAME [FLAGS]\n\n"
            "list shows each schedule as the node sees it: its cron, task, "
            "where it fires\n(every node, or the leader for on_one_server), "
            "its next and last slot, and\nwhether it is paused.\n"
            "run stores one job of the schedule now, on the node asked "
            "(prints its id).\npause skips the schedule's slots until resume: "
            "a local schedule on the node\nasked, an on_one_server one for "
            "the whole cluster (in the leader's log).\n\nflags:\n"
            "  --json             print JSON (list)\n" CLI_CONN_HELP);
}

static int
schedule_parse(struct schedule_args *a, int argc, char **argv)
{
    const char *bad = NULL;

    for (int i = 1; i < argc && bad == NULL; i++) {
        int c = cli_conn_flag(&a->conn, argc, argv, &i);

        if (c != 0) {
            if (c < 0)
                bad = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--json") == 0)
            a->json = 1;
        else if (argv[i][0] == '-')
            bad = argv[i];
        else if (a->sub == NULL)
            a->sub = argv[i];
        else if (a->name == NULL)
            a->name = argv[i];
        else
            bad = argv[i];
    }
    if (bad != NULL) {
        fprintf(stderr, "cadre schedule: bad or incomplete argument '%s'\n\n",
                bad);
        return CLI_USAGE;
    }
    if (a->sub == NULL ||
        (strcmp(a->sub, "list") != 0 && strcmp(a->sub, "run") != 0 &&
         strcmp(a->sub, "pause") != 0 && strcmp(a->sub, "resume") != 0)) {
        fprintf(stderr, "cadre schedule: %s '%s'\n\n",
                a->sub ? "unknown command" : "missing a command",
                a->sub ? a->sub : "");
        return CLI_USAGE;
    }
    if ((strcmp(a->sub, "list") == 0) != (a->name == NULL)) {
        fprintf(stderr, "cadre schedule %s: %s\n\n", a->sub,
                a->name ? "takes no name" : "needs a schedule NAME");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* A slot as UTC text; "-" for none. */
static void
schedule_time(int64_t s, char *buf, size_t len)
{
    time_t    t = (time_t)s;
    struct tm tm;

    if (s <= 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(buf, len, "-");
    else
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
schedule_print_table(const cadre_schedule_info *v, size_t n)
{
    printf("%-20s  %-18s  %-16s  %-20s  %-20s  %-20s  %s\n", "NAME", "CRON",
           "TASK", "WHERE", "NEXT", "LAST", "STATE");
    for (size_t i = 0; i < n; i++) {
        char next[32], last[32];

        schedule_time(v[i].next_s, next, sizeof(next));
        schedule_time(v[i].last_s, last, sizeof(last));
        printf("%-20s  %-18s  %-16s  %-20s  %-20s  %-20s  %s\n", v[i].name,
               v[i].cron, v[i].task, v[i].where, next, last,
               v[i].paused ? "paused" : "active");
    }
}

static void
schedule_json_str(const char *name, const char *value, int first)
{
    printf("%s\"%s\":", first ? "" : ",", name);
    cli_json_str(stdout, value, strlen(value));
}

static void
schedule_print_json(const cadre_schedule_info *v, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        printf("%s{", i ? "," : "");
        schedule_json_str("name", v[i].name, 1);
        schedule_json_str("cron", v[i].cron, 0);
        schedule_json_str("task", v[i].task, 0);
        schedule_json_str("queue", v[i].queue, 0);
        schedule_json_str("timezone", v[i].timezone, 0);
        schedule_json_str("where", v[i].where, 0);
        printf(",\"on_one_server\":%s,\"paused\":%s,\"next_s\":%" PRId64
               ",\"last_s\":%" PRId64 ",\"fired\":%" PRIu64 "}",
               v[i].on_one_server ? "true" : "false",
               v[i].paused ? "true" : "false", v[i].next_s, v[i].last_s,
               v[i].fired);
    }
    printf("]\n");
}

static int
schedule_do(const struct schedule_args *a, cadre_client *c)
{
    cadre_schedule_info *v = NULL;
    cadre_job_id         id;
    char                 text[64];
    size_t               n = 0;

    if (strcmp(a->sub, "list") == 0) {
        if (cadre_schedule_list(c, &v, &n) != CADRE_OK)
            return CLI_FAIL;
        if (a->json)
            schedule_print_json(v, n);
        else
            schedule_print_table(v, n);
        cadre_free(v);
        return CLI_OK;
    }
    if (strcmp(a->sub, "run") == 0) {
        if (cadre_schedule_run(c, a->name, &id) != CADRE_OK)
            return CLI_FAIL;
        cadre_job_id_format(&id, text);
        printf("%s\n", text);
        return CLI_OK;
    }
    if (cadre_schedule_pause(c, a->name, strcmp(a->sub, "pause") == 0) !=
        CADRE_OK)
        return CLI_FAIL;
    printf("%s %s\n", a->name,
           strcmp(a->sub, "pause") == 0 ? "paused" : "resumed");
    return CLI_OK;
}

int
cli_schedule(int argc, char **argv)
{
    struct schedule_args a;
    cadre_client        *c;
    int                  rc;

    memset(&a, 0, sizeof(a));
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            schedule_usage(stdout);
            return CLI_OK;
        }
    rc = schedule_parse(&a, argc, argv);
    if (rc != CLI_OK) {
        schedule_usage(stderr);
        return rc;
    }
    c = cli_open(&a.conn, "schedule");
    if (c == NULL)
        return CLI_FAIL;
    rc = schedule_do(&a, c);
    if (rc != CLI_OK)
        fprintf(stderr, "cadre schedule %s: %s\n", a.sub,
                cadre_client_errmsg(c));
    cadre_client_close(c);
    return rc;
}
