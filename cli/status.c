/* status.c: `cadre status`: a node's queues and workers. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"

static void
status_usage(FILE *f)
{
    fprintf(f, "usage: cadre status [--json] [FLAGS]\n\n"
               "Per queue: ready, delayed, reserved, done, failed, and the "
               "wait of the oldest\nready job; the node's workers.\n\nflags:\n"
               "  --json             print JSON\n" CLI_CONN_HELP);
}

/* The replay, cluster and leader fields, then the start of "queues". */
static void
status_print_cluster_json(const cadre_status *s)
{
    printf("\"replayed\":%llu,\"cluster\":{\"members\":%u,\"alive\":%u,"
           "\"heartbeat_bytes_out\":%llu,\"heartbeat_bytes_in\":%llu,"
           "\"jobs_stolen\":%llu,\"jobs_lent\":%llu,\"jobs_settled\":%llu,"
           "\"subruns\":%llu,\"subrun_tasks\":%llu},\"leader\":{\"leader\":",
           (unsigned long long)s->replayed, s->members, s->members_alive,
           (unsigned long long)s->heartbeat_bytes_out,
           (unsigned long long)s->heartbeat_bytes_in,
           (unsigned long long)s->jobs_stolen, (unsigned long long)s->jobs_lent,
           (unsigned long long)s->jobs_settled, (unsigned long long)s->subruns,
           (unsigned long long)s->subrun_tasks);
    cli_json_str(stdout, s->leader, strlen(s->leader));
    printf(",\"term\":%llu,\"role\":\"%s\",\"ready\":%s,"
           "\"not_committing\":%s},\"queues\":[",
           (unsigned long long)s->raft_term, cadre_raft_role_name(s->raft_role),
           s->leader_ready ? "true" : "false",
           s->not_committing ? "true" : "false");
}

static void
status_print_json(const cadre_status *s)
{
    printf("{\"node_id\":");
    cli_json_str(stdout, s->node_id, strlen(s->node_id));
    printf(",\"version\":\"%s\",\"uptime_ms\":%llu,\"workers\":%u,"
           "\"workers_busy\":%u,\"bad_frames\":%llu,\"commits\":%llu,",
           s->version, (unsigned long long)s->uptime_ms, s->workers,
           s->workers_busy, (unsigned long long)s->bad_frames,
           (unsigned long long)s->commits);
    status_print_cluster_json(s);
    for (size_t i = 0; i < s->queues_n; i++) {
        const cadre_queue_stats *q = &s->queues[i];

        printf("%s{\"name\":", i ? "," : "");
        cli_json_str(stdout, q->name, strlen(q->name));
        printf(",\"ready\":%llu,\"delayed\":%llu,\"reserved\":%llu,"
               "\"done\":%llu,\"failed\":%llu,\"oldest_ready_age_ms\":%llu}",
               (unsigned long long)q->ready, (unsigned long long)q->delayed,
               (unsigned long long)q->reserved, (unsigned long long)q->done,
               (unsigned long long)q->failed,
               (unsigned long long)q->oldest_ready_age_ms);
    }
    printf("]}\n");
}

static void
status_print_table(const cadre_status *s)
{
    printf("node %s  cadre %s  up %llus  workers %u (%u busy)  bad frames "
           "%llu  replayed %llu\n",
           s->node_id[0] ? s->node_id : "-", s->version,
           (unsigned long long)(s->uptime_ms / 1000), s->workers,
           s->workers_busy, (unsigned long long)s->bad_frames,
           (unsigned long long)s->replayed);
    printf("cluster: %u members (%u alive)  stolen %llu  lent %llu  sub-run "
           "tasks %llu\n\n",
           s->members, s->members_alive, (unsigned long long)s->jobs_stolen,
           (unsigned long long)s->jobs_lent,
           (unsigned long long)s->subrun_tasks);
    printf("%-20s %10s %10s %10s %10s %10s %10s\n", "QUEUE", "READY", "DELAYED",
           "RESERVED", "DONE", "FAILED", "WAIT_MS");
    for (size_t i = 0; i < s->queues_n; i++) {
        const cadre_queue_stats *q = &s->queues[i];

        printf("%-20s %10llu %10llu %10llu %10llu %10llu %10llu\n", q->name,
               (unsigned long long)q->ready, (unsigned long long)q->delayed,
               (unsigned long long)q->reserved, (unsigned long long)q->done,
               (unsigned long long)q->failed,
               (unsigned long long)q->oldest_ready_age_ms);
    }
}

int
cli_status(int argc, char **argv)
{
    struct cli_conn conn = {0};
    cadre_status    st;
    cadre_client   *c;
    int             json = 0;

    for (int i = 1; i < argc; i++) {
        int k;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            status_usage(stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        k = cli_conn_flag(&conn, argc, argv, &i);
        if (k == 1)
            continue;
        fprintf(stderr, "cadre status: bad argument '%s'\n\n", argv[i]);
        status_usage(stderr);
        return CLI_USAGE;
    }
    c = cli_open(&conn, "status");
    if (c == NULL)
        return CLI_FAIL;
    if (cadre_status_get(c, &st) != CADRE_OK) {
        fprintf(stderr, "cadre status: %s\n", cadre_client_errmsg(c));
        cadre_client_close(c);
        return CLI_FAIL;
    }
    if (json)
        status_print_json(&st);
    else
        status_print_table(&st);
    cadre_status_fini(&st);
    cadre_client_close(c);
    return CLI_OK;
}
