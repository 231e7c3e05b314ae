/* test_leader.c: the raft leader across real `cadre node` processes on
 * loopback (election 300 ms, heartbeat 30 ms, pre-vote): three voters agree
 * on one ready leader that commits (its barrier and its EXPIRE proposal
 * reach every node); a SIGKILLed leader is replaced within 2 s and, once
 * restarted, follows the new one; a node holding another cluster key with
 * the same --voters never leads nor moves the term; and a loop of SIGKILL
 * failovers prints the median and max failover time. Raft ports are chosen
 * up front (free_tcp_port): every voter must know the others' addresses. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
static const char *base;

static int
start(struct node_proc *n, int i)
{
    char  dir[PATH_MAX + 32];
    char *args[] = {
        "--node-id", (char *)ids[i],  "--key-file", key_path, "--voters",
        voters,      "--raft-listen", addrs[i],     FAST,     RAFT,
        NULL};

    snprintf(dir, sizeof(dir), "%s/%s", base, ids[i]);
    memset(n, 0, sizeof(*n));
    return node_startv(n, dir, NULL, args);
}

static cadre_client *
client_of(const struct node_proc *n, const char *key)
{
    return node_client(n, key, 2000);
}

/* The leader every live node agrees on, with the leader itself ready:
 * its index, or -1. live[i] = 0 skips node i. */
static int
agreed(cadre_client *const *cs, const int *live, cadre_leader_info *li)
{
    int who = -1;

    for (int i = 0; i < N; i++) {
        if (!live[i])
            continue;
        if (cadre_cluster_leader(cs[i], &li[i]) != CADRE_OK ||
            li[i].leader[0] == '\0')
            return -1;
        if (who >= 0 && strcmp(li[i].leader, ids[who]) != 0)
            return -1;
        for (int k = 0; k < N; k++)
            if (strcmp(li[i].leader, ids[k]) == 0)
                who = k;
    }
    if (who < 0 || !live[who] || !li[who].ready ||
        li[who].role != CADRE_RAFT_LEADER)
        return -1;
    for (int i = 0; i < N; i++) /* one term, as all of them see it */
        if (live[i] && li[i].term != li[who].term)
            return -1;
    return who;
}

static int
wait_agreed(cadre_client *const *cs, const int *live, cadre_leader_info *li,
            unsigned within_ms)
{
    uint64_t end = cd_mono_ms() + within_ms;
    int      who;

    while ((who = agreed(cs, live, li)) < 0 && cd_mono_ms() < end)
        cd_sleep_ms(5);
    return who;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* SIGKILLs the leader, times the next ready leader the survivors agree on,
 * restarts the victim and waits until it follows. Returns the failover ms,
 * or UINT64_MAX. */
static uint64_t
failover(struct node_proc *ns, cadre_client **cs, int *who)
{
    int               live[N] = {1, 1, 1};
    cadre_leader_info li[N];
    int               old = *who, now;
    uint64_t          t0, ms;

    live[old] = 0;
    t0 = cd_mono_ms();
    proc_kill(&ns[old].p, SIGKILL);
    now = wait_agreed(cs, live, li, 5000);
    ms = cd_mono_ms() - t0;
    proc_wait_exit(&ns[old].p, 5000, NULL);
    proc_fini(&ns[old].p);
    cadre_client_close(cs[old]);
    cs[old] = NULL;
    if (now < 0 || now == old)
        return UINT64_MAX;
    if (start(&ns[old], old) != CADRE_OK ||
        (cs[old] = client_of(&ns[old], key_path)) == NULL)
        return UINT64_MAX;
    live[old] = 1;
    if (wait_agreed(cs, live, li, 5000) != now ||
        li[old].role != CADRE_RAFT_FOLLOWER)
        return UINT64_MAX;
    *who = now;
    return ms;
}

TEST(three_voters_elect_fail_over_and_refuse_a_wrong_key)
{
    struct node_proc  ns[N], x;
    cadre_client     *cs[N], *cx;
    cadre_leader_info li[N], lx;
    cadre_member     *ms = NULL;
    size_t            ms_n = 0;
    int               live[N] = {1, 1, 1};
    char              xkey[PATH_MAX + 16], xaddr[64], xdir[PATH_MAX + 16];
    uint64_t          t0, ms_fo, term, times[16];
    int               who, loops, k = 0;
    const char       *env = getenv("CADRE_TEST_FAILOVERS");

    base = tap_tmpdir();
    snprintf(key_path, sizeof(key_path), "%s/cluster.key", base);
    REQUIRE_EQ(node_keygen(key_path), CADRE_OK);
    for (int i = 0; i < N; i++) {
        int port = free_tcp_port();

        REQUIRE(port > 0);
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", port);
        snprintf(voters + strlen(voters), sizeof(voters) - strlen(voters),
                 "%s%s=%s", i ? "," : "", ids[i], addrs[i]);
    }
    t0 = cd_mono_ms();
    for (int i = 0; i < N; i++)
        REQUIRE_EQ(start(&ns[i], i), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE((cs[i] = client_of(&ns[i], key_path)) != NULL);

    /* (a) one ready leader, the same on all three, within 3 s. */
    who = wait_agreed(cs, live, li, 3000);
    REQUIRE(who >= 0);
    printf("# leader %s ready and agreed %llu ms after the starts, term %llu\n",
           ids[who], (unsigned long long)(cd_mono_ms() - t0),
           (unsigned long long)li[who].term);
    /* It commits: index 1 the configuration, 2 its barrier, 3 its EXPIRE,
     * applied on every node. */
    t0 = cd_mono_ms();
    for (int ok = 0; !ok && cd_mono_ms() - t0 < 3000;) {
        ok = 1;
        for (int i = 0; i < N; i++)
            ok &= cadre_cluster_leader(cs[i], &li[i]) == CADRE_OK &&
                  li[i].last_applied >= 3;
        if (!ok)
            cd_sleep_ms(10);
    }
    for (int i = 0; i < N; i++) {
        CHECK(li[i].last_applied >= 3);
        CHECK(!li[i].not_committing);
        CHECK_EQ(li[i].raft_id, (uint64_t)i + 1);
    }
    /* Status says the same. */
    {
        cadre_status st;

        REQUIRE_EQ(cadre_status_get(cs[who], &st), CADRE_OK);
        CHECK_STR(st.leader, ids[who]);
        CHECK_EQ(st.raft_role, CADRE_RAFT_LEADER);
        CHECK(st.leader_ready);
        CHECK(!st.not_committing);
        CHECK_EQ(st.raft_term, li[who].term);
        cadre_status_fini(&st);
    }
    /* Heartbeats carry the leader: the node's own member entry. */
    REQUIRE_EQ(cadre_cluster_members(cs[0], &ms, &ms_n), CADRE_OK);
    REQUIRE(ms_n >= 1);
    CHECK_STR(ms[0].leader, ids[who]);
    cadre_members_free(ms, ms_n);

    /* (b) the leader SIGKILLed: a new one within 2 s; the victim,
     * restarted, follows it. */
    ms_fo = failover(ns, cs, &who);
    REQUIRE(ms_fo != UINT64_MAX);
    printf("# failover: %llu ms (new leader %s)\n", (unsigned long long)ms_fo,
           ids[who]);
    CHECK(ms_fo < 2000);

    /* (c) another key, the same voters (posing as a voter, on another
     * port): its handshakes are refused; it never leads and the term
     * stays. */
    REQUIRE(wait_agreed(cs, live, li, 3000) == who);
    term = li[who].term;
    snprintf(xkey, sizeof(xkey), "%s/other.key", base);
    REQUIRE_EQ(node_keygen(xkey), CADRE_OK);
    snprintf(xaddr, sizeof(xaddr), "127.0.0.1:%d", free_tcp_port());
    snprintf(xdir, sizeof(xdir), "%s/x", base);
    {
        int   pose = (who + 1) % N;
        char *args[] = {
            "--node-id", (char *)ids[pose], "--key-file", xkey, "--voters",
            voters,      "--raft-listen",   xaddr,        RAFT, NULL};

        memset(&x, 0, sizeof(x));
        REQUIRE_EQ(node_startv(&x, xdir, NULL, args), CADRE_OK);
    }
    REQUIRE((cx = client_of(&x, xkey)) != NULL);
    cd_sleep_ms(2000); /* several election timeouts */
    REQUIRE_EQ(cadre_cluster_leader(cx, &lx), CADRE_OK);
    CHECK(lx.role != CADRE_RAFT_LEADER);
    CHECK_STR(lx.leader, "");
    CHECK_EQ(wait_agreed(cs, live, li, 1000), who);
    CHECK_EQ(li[who].term, term);
    cadre_client_close(cx);
    node_stop(&x);

    /* (d) a loop of failovers. */
    loops = env != NULL ? atoi(env) : 10;
    loops = loops < 1 ? 1 : loops > 16 ? 16 : loops;
    t0 = cd_mono_ms();
    for (k = 0; k < loops; k++) {
        times[k] = failover(ns, cs, &who);
        if (times[k] == UINT64_MAX)
            break;
    }
    CHECK_EQ(k, loops);
    if (k > 0) {
        qsort(times, (size_t)k, sizeof(times[0]), cmp_u64);
        printf("# %d SIGKILL failovers in %llu ms: median %llu ms, max %llu "
               "ms (election 300 ms, heartbeat 30 ms, pre-vote)\n",
               k, (unsigned long long)(cd_mono_ms() - t0),
               (unsigned long long)times[k / 2],
               (unsigned long long)times[k - 1]);
        CHECK(times[k - 1] < 2000);
    }

    /* (e) a graceful stop (SIGTERM) of the leader hands the leadership
     * over (raft_transfer) instead of leaving the others to wait out the
     * election timeout, and a follower publishes a leader event. */
    {
        int               f = (who + 1) % N, old = who;
        cadre_client_opts o;
        cadre_events     *sub = NULL;
        cadre_event       ev;
        char              err[256];
        int               seen = 0;

        node_client_opts(&ns[f], &o);
        o.key_file = key_path;
        REQUIRE_EQ(
            cadre_events_open(&o, ns[f].events_url, &sub, err, sizeof(err)),
            CADRE_OK);
        cd_sleep_ms(300); /* the subscription's dial completes */
        live[old] = 0;
        t0 = cd_mono_ms();
        proc_kill(&ns[old].p, SIGTERM);
        who = wait_agreed(cs, live, li, 3000);
        ms_fo = cd_mono_ms() - t0;
        printf("# graceful stop of leader %s: %s ready after %llu ms\n",
               ids[old], who >= 0 ? ids[who] : "none",
               (unsigned long long)ms_fo);
        CHECK(who >= 0 && who != old);
        CHECK(ms_fo < 1000);
        for (uint64_t end = cd_mono_ms() + 3000;
             !seen && who >= 0 && cd_mono_ms() < end;)
            seen = cadre_events_next(sub, &ev, 100) == CADRE_OK &&
                   ev.kind == CADRE_EVENT_LEADER &&
                   strcmp(ev.leader, ids[who]) == 0 && ev.term > 0;
        CHECK(seen);
        cadre_events_close(sub);
        CHECK_EQ(proc_wait_exit(&ns[old].p, 10000, NULL), CADRE_OK);
        cadre_client_close(cs[old]);
        cs[old] = NULL;
    }
    for (int i = 0; i < N; i++) {
        cadre_client_close(cs[i]);
        if (live[i])
            CHECK_EQ(node_stop(&ns[i]), 0);
        else
            proc_fini(&ns[i].p);
    }
}

int
main(void)
{
    TAP_RUN(T(three_voters_elect_fail_over_and_refuse_a_wrong_key));
}
