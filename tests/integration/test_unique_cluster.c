/* test_unique_cluster.c: unique jobs across three real voters (node/uniq.h). A
 * unique job dispatched at one node holds its key in the leader's log: the
 * same key dispatched at another node is a duplicate that names the first
 * job; another key is stored; once the first job finished the key is free
 * again anywhere; a key with unique_for lapses after it; and with the
 * leader's quorum gone a unique dispatch fails with CADRE_EBUSY ("no
 * leader") and stores nothing, while ordinary jobs are still taken. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define N 3
#define FAST "--heartbeat-ms", "100", "--suspect-ms", "300", "--dead-ms", "1000"
#define RAFT "--election-ms", "300", "--raft-heartbeat-ms", "30"

static const char *ids[N] = {"a", "b", "c"};
static char        key_path[PATH_MAX + 16];
static char        voters[512];
static char        addrs[N][64];
static char        peers[N][160];

static int
start(struct node_proc *n, int i, const char *base)
{
    char  dir[PATH_MAX + 32];
    char *args[] = {"--node-id",
                    (char *)ids[i],
                    "--key-file",
                    key_path,
                    "--voters",
                    voters,
                    "--raft-listen",
                    addrs[i],
                    "--workers",
                    "1",
                    "--exec",
                    "work=true",
                    FAST,
                    RAFT,
                    NULL,
                    NULL,
                    NULL};

    if (i > 0) { /* join through a */
        args[sizeof(args) / sizeof(args[0]) - 3] = "--peer";
        args[sizeof(args) / sizeof(args[0]) - 2] = peers[0];
    }
    snprintf(dir, sizeof(dir), "%s/%s", base, ids[i]);
    memset(n, 0, sizeof(*n));
    return node_startv(n, dir, NULL, args);
}

static cadre_client *
client_of(const struct node_proc *n)
{
    return node_client(n, key_path, 8000);
}

/* Waits until every node names one ready leader; its index or -1. */
static int
wait_leader(cadre_client *const *cs, unsigned within_ms)
{
    uint64_t end = cd_mono_ms() + within_ms;

    while (cd_mono_ms() < end) {
        cadre_leader_info li;
        int               who = -1, same = 1;

        for (int i = 0; i < N && same; i++) {
            same = cadre_cluster_leader(cs[i], &li) == CADRE_OK &&
                   li.leader[0] != '\0';
            for (int k = 0; same && k < N; k++)
                if (strcmp(li.leader, ids[k]) == 0) {
                    same = who < 0 || who == k;
                    who = k;
                }
        }
        if (same && who >= 0 && cadre_cluster_leader(cs[who], &li) == 0 &&
            li.ready)
            return who;
        cd_sleep_ms(20);
    }
    return -1;
}

static int
dispatch_unique(cadre_client *c, const char *uid, uint64_t delay_ms,
                uint64_t unique_for_ms, cadre_job_id *id, int *dup)
{
    cadre_job_opts o = {.unique_id = uid,
                        .delay_ms = delay_ms,
                        .unique_for_ms = unique_for_ms,
                        .duplicate = dup};

    *dup = -1;
    return cadre_dispatch(c, "work", "x", 1, &o, id);
}

TEST(unique_keys_hold_across_nodes)
{
    const char      *base = tap_tmpdir();
    struct node_proc ns[N];
    cadre_client    *cs[N];
    cadre_job_id     first, other, again, fresh, lapse;
    cadre_outcome    res;
    int              dup, who;

    snprintf(key_path, sizeof(key_path), "%s/cluster.key", base);
    REQUIRE_EQ(node_keygen(key_path), CADRE_OK);
    for (int i = 0; i < N; i++) {
        int port = free_tcp_port();

        REQUIRE(port > 0);
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", port);
        snprintf(voters + strlen(voters), sizeof(voters) - strlen(voters),
                 "%s%s=%s", i ? "," : "", ids[i], addrs[i]);
    }
    REQUIRE_EQ(start(&ns[0], 0, base), CADRE_OK);
    snprintf(peers[0], sizeof(peers[0]), "%s", ns[0].peer_url);
    for (int i = 1; i < N; i++)
        REQUIRE_EQ(start(&ns[i], i, base), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE((cs[i] = client_of(&ns[i])) != NULL);
    who = wait_leader(cs, 5000);
    REQUIRE(who >= 0);
    cd_sleep_ms(500); /* membership: followers know the leader's peer url */

    /* (a) a at a; the same key at b and c: duplicates naming a's job. */
    REQUIRE_EQ(dispatch_unique(cs[0], "report-1", 1500, 0, &first, &dup),
               CADRE_OK);
    CHECK_EQ(dup, 0);
    for (int i = 1; i < N; i++) {
        CHECK_EQ(dispatch_unique(cs[i], "report-1", 0, 0, &again, &dup),
                 CADRE_OK);
        CHECK_EQ(dup, 1);
        CHECK(memcmp(&again, &first, sizeof(first)) == 0);
    }
    /* Another key is its own job. */
    CHECK_EQ(dispatch_unique(cs[1], "report-2", 0, 0, &other, &dup), CADRE_OK);
    CHECK_EQ(dup, 0);
    CHECK(memcmp(&other, &first, sizeof(first)) != 0);

    /* (b) once the first job is done, the key is free at c. */
    REQUIRE_EQ(cadre_wait(cs[0], &first, 1, 10000, &res), CADRE_OK);
    CHECK_EQ(res.status, CADRE_DONE);
    cadre_outcome_fini(&res);
    {
        uint64_t end = cd_mono_ms() + 3000;

        do { /* the release commits just after the job's final state */
            CHECK_EQ(dispatch_unique(cs[2], "report-1", 60000, 0, &fresh, &dup),
                     CADRE_OK);
        } while (dup == 1 && cd_mono_ms() < end && (cd_sleep_ms(50), 1));
        CHECK_EQ(dup, 0);
        CHECK(memcmp(&fresh, &first, sizeof(first)) != 0);
    }

    /* (c) unique_for: the key lapses after it, job or no job. */
    CHECK_EQ(dispatch_unique(cs[0], "report-3", 60000, 800, &lapse, &dup),
             CADRE_OK);
    CHECK_EQ(dup, 0);
    CHECK_EQ(dispatch_unique(cs[1], "report-3", 60000, 800, &again, &dup),
             CADRE_OK);
    CHECK_EQ(dup, 1);
    cd_sleep_ms(1000);
    CHECK_EQ(dispatch_unique(cs[1], "report-3", 60000, 800, &again, &dup),
             CADRE_OK);
    CHECK_EQ(dup, 0);

    /* (d) no quorum: unique dispatches fail clearly, plain ones still go. */
    {
        int alone = (who + 1) % N, rc;

        for (int i = 0; i < N; i++)
            if (i != alone)
                proc_kill(&ns[i].p, SIGSTOP);
        cd_sleep_ms(1000); /* past the election timeout */
        rc = dispatch_unique(cs[alone], "report-4", 0, 0, &again, &dup);
        CHECK_EQ(rc, CADRE_EBUSY);
        CHECK(strstr(cadre_client_errmsg(cs[alone]), "no leader") != NULL);
        printf("# no quorum: %s\n", cadre_client_errmsg(cs[alone]));
        CHECK_EQ(cadre_dispatch(cs[alone], "work", "x", 1, NULL, &again),
                 CADRE_OK);
        for (int i = 0; i < N; i++)
            if (i != alone)
                proc_kill(&ns[i].p, SIGCONT);
        REQUIRE(wait_leader(cs, 10000) >= 0);
        cd_sleep_ms(300);
        CHECK_EQ(dispatch_unique(cs[alone], "report-4", 0, 0, &again, &dup),
                 CADRE_OK);
        CHECK_EQ(dup, 0);
    }
    for (int i = 0; i < N; i++) {
        cadre_client_close(cs[i]);
        CHECK_EQ(node_stop(&ns[i]), 0);
    }
}

int
main(void)
{
    TAP_RUN(T(unique_keys_hold_across_nodes));
}
