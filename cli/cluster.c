/* cluster.c: `cadre cluster ...`: the members a node knows and how its
 * membership sees them, and its view of the raft leader, through
 * libcadre. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"

struct cluster_args {
    struct cli_conn conn;
    const char     *sub;
    int             json;
};

static void
cluster_usage(FILE *f)
{
    fprintf(f,
            "usage: cadre cluster members [--json] [FLAGS]\n"
            "       cadre cluster leader [--json] [FLAGS]\n\n"
            "members lists the nodes the node knows, itself first, as its "
            "membership sees\nthem: state (self, alive, suspect, dead), when "
            "it last heard from each, its\nworkers, free worker slots and "
            "ready jobs.\nleader prints the node's view of the raft leader: "
            "its id, the term, the\nnode's own role, whether the leader is "
            "ready (its barrier committed) and\nwhether commits stall; it "
            "exits 1 while no leader is known.\n\nflags:\n"
            "  --json             print JSON\n" CLI_CONN_HELP);
}

/* Returns CLI_OK, or CLI_USAGE after printing why. */
static int
cluster_parse(struct cluster_args *a, int argc, char **argv)
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
        else if (argv[i][0] == '-' || a->sub != NULL)
            bad = argv[i];
        else
            a->sub = argv[i];
    }
    if (bad != NULL) {
        fprintf(stderr, "cadre cluster: bad or incomplete argument '%s'\n\n",
                bad);
        return CLI_USAGE;
    }
    if (a->sub == NULL) {
        fprintf(stderr, "cadre cluster: missing a command\n\n");
        return CLI_USAGE;
    }
    if (strcmp(a->sub, "members") != 0 && strcmp(a->sub, "leader") != 0) {
        fprintf(stderr, "cadre cluster: unknown command '%s'\n\n", a->sub);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Time since a member was last heard from, as people read it: 0.3s, 42.0s,
 * 4m05s, 2h10m, 3d04h; "-" for the node itself. */
static void
cluster_ago(const cadre_member *m, char *buf, size_t len)
{
    unsigned long long ms = m->last_heard_ms;

    if (m->state == CADRE_MEMBER_SELF)
        snprintf(buf, len, "-");
    else if (ms < 60000)
        snprintf(buf, len, "%llu.%llus", ms / 1000, ms % 1000 / 100);
    else if (ms < 3600000)
        snprintf(buf, len, "%llum%02llus", ms / 60000, ms / 1000 % 60);
    else if (ms < 86400000)
        snprintf(buf, len, "%lluh%02llum", ms / 3600000, ms / 60000 % 60);
    else
        snprintf(buf, len, "%llud%02lluh", ms / 86400000, ms / 3600000 % 24);
}

static void
cluster_print_table(const cadre_member *ms, size_t n)
{
    int id_w = (int)strlen("ID"), addr_w = (int)strlen("ADDRESS");

    for (size_t i = 0; i < n; i++) {
        int id = (int)strlen(ms[i].node_id), addr = (int)strlen(ms[i].peer_url);

        id_w = id > id_w ? id : id_w;
        addr_w = addr > addr_w ? addr : addr_w;
    }
    printf("%-*s  %-7s  %-*s  %10s  %7s  %7s  %10s\n", id_w, "ID", "STATE",
           addr_w, "ADDRESS", "LAST HEARD", "WORKERS", "FREE", "READY");
    for (size_t i = 0; i < n; i++) {
        const cadre_member *m = &ms[i];
        char                ago[32];

        cluster_ago(m, ago, sizeof(ago));
        printf("%-*s  %-7s  %-*s  %10s  %7u  %7u  %10llu\n", id_w,
               m->node_id[0] ? m->node_id : "-",
               cadre_member_state_name(m->state), addr_w,
               m->peer_url[0] ? m->peer_url : "-", ago, m->workers,
               m->free_slots, (unsigned long long)m->ready);
    }
}

static void
cluster_json_field(const char *name, const char *value)
{
    printf(",\"%s\":", name);
    cli_json_str(stdout, value, strlen(value));
}

static void
cluster_print_json(const cadre_member *ms, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        const cadre_member *m = &ms[i];

        printf("%s{\"node_id\":", i ? "," : "");
        cli_json_str(stdout, m->node_id, strlen(m->node_id));
        cluster_json_field("state", cadre_member_state_name(m->state));
        cluster_json_field("peer_url", m->peer_url);
        cluster_json_field("api_url", m->api_url);
        cluster_json_field("events_url", m->events_url);
        printf(",\"last_heard_ms\":%llu,\"workers\":%u,\"free_slots\":%u,"
               "\"ready\":%llu,\"queues\":{",
               (unsigned long long)m->last_heard_ms, m->workers, m->free_slots,
               (unsigned long long)m->ready);
        for (size_t k = 0; k < m->queues_n; k++) {
            printf("%s", k ? "," : "");
            cli_json_str(stdout, m->queues[k].name, strlen(m->queues[k].name));
            printf(":%llu", (unsigned long long)m->queues[k].ready);
        }
        printf("}");
        cluster_json_field("version", m->version);
        cluster_json_field("leader", m->leader);
        /* A random 64-bit id: a string, as JSON numbers are doubles to many
         * readers. */
        printf(",\"boot_id\":\"%016llx\"}", (unsigned long long)m->boot_id);
    }
    printf("]\n");
}

static int
cluster_members(const struct cluster_args *a)
{
    cadre_client *c;
    cadre_member *ms = NULL;
    size_t        n = 0;

    c = cli_open(&a->conn, "cluster members");
    if (c == NULL)
        return CLI_FAIL;
    if (cadre_cluster_members(c, &ms, &n) != CADRE_OK) {
        fprintf(stderr, "cadre cluster members: %s\n", cadre_client_errmsg(c));
        cadre_client_close(c);
        return CLI_FAIL;
    }
    if (a->json)
        cluster_print_json(ms, n);
    else
        cluster_print_table(ms, n);
    cadre_members_free(ms, n);
    cadre_client_close(c);
    return CLI_OK;
}

static int
cluster_leader(const struct cluster_args *a)
{
    cadre_client     *c;
    cadre_leader_info li;

    c = cli_open(&a->conn, "cluster leader");
    if (c == NULL)
        return CLI_FAIL;
    if (cadre_cluster_leader(c, &li) != CADRE_OK) {
        fprintf(stderr, "cadre cluster leader: %s\n", cadre_client_errmsg(c));
        cadre_client_close(c);
        return CLI_FAIL;
    }
    cadre_client_close(c);
    if (a->json) {
        printf("{\"leader\":");
        cli_json_str(stdout, li.leader, strlen(li.leader));
        printf(",\"leader_raft_id\":%llu,\"raft_id\":%llu,\"term\":%llu",
               (unsigned long long)li.leader_raft_id,
               (unsigned long long)li.raft_id, (unsigned long long)li.term);
        cluster_json_field("role", cadre_raft_role_name(li.role));
        printf(",\"ready\":%s,\"not_committing\":%s,\"oldest_wait_ms\":%llu,"
               "\"commit_index\":%llu,\"last_applied\":%llu}\n",
               li.ready ? "true" : "false",
               li.not_committing ? "true" : "false",
               (unsigned long long)li.oldest_wait_ms,
               (unsigned long long)li.commit_index,
               (unsigned long long)li.last_applied);
    } else if (li.role == CADRE_RAFT_OFF) {
        fprintf(stderr, "cadre cluster leader: no leader: the node runs "
                        "without --voters\n");
    } else {
        printf("leader=%s term=%llu role=%s raft_id=%llu%s%s\n",
               li.leader[0] ? li.leader : "-", (unsigned long long)li.term,
               cadre_raft_role_name(li.role), (unsigned long long)li.raft_id,
               li.role == CADRE_RAFT_LEADER
                   ? (li.ready ? " ready" : " not-ready")
                   : "",
               li.not_committing ? " NOT-COMMITTING" : "");
    }
    return li.leader[0] != '\0' ? CLI_OK : CLI_FAIL;
}

int
cli_cluster(int argc, char **argv)
{
    struct cluster_args a;
    int                 rc;

    memset(&a, 0, sizeof(a));
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cluster_usage(stdout);
            return CLI_OK;
        }
    rc = cluster_parse(&a, argc, argv);
    if (rc != CLI_OK) {
        cluster_usage(stderr);
        return rc;
    }
    if (strcmp(a.sub, "leader") == 0)
        return cluster_leader(&a);
    return cluster_members(&a);
}
