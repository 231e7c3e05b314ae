/* test_schedule.c: an on_one_server schedule firing every second on three
 * real `cadre node` voters (election 300 ms, heartbeat 30 ms) for about 36 s
 * while the leader is SIGKILLed (and restarted) twice, frozen with SIGSTOP
 * past the election timeout once, and left alone as a minority once (both
 * followers frozen). Each execution appends "SLOT NODE MS" to one ledger
 * file from an exec handler (CADRE_SCHEDULE, CADRE_SLOT). With catchup =
 * all, every slot of the window must run exactly once: none lost to a
 * failover, none twice. The frozen leader must run nothing after it lost
 * the leadership, and the minority leader nothing while it had no quorum.
 * Faults land half-way between two slots, so that no job is mid-run when a
 * node dies (a job killed mid-run is retried: at least once, by design).
 * Also: a local schedule runs on every node, `cadre schedule list` shows
 * both schedules, and the handler sees CADRE_SCHEDULE. */
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
#define SLOTS_MAX 4096

static const char *ids[N] = {"a", "b", "c"};
static char        key_path[PATH_MAX + 16];
static char        ledger[PATH_MAX + 16];
static char        conf[PATH_MAX + 16];
static char        voters[512];
static char        addrs[N][64];
static char        peer_urls[N][160]; /* as last started */
static const char *base;

/* Starts node i; fault: a CADRE_FAULT value, or NULL. */
static int
start_fault(struct node_proc *n, int i, const char *fault)
{
    char   dir[PATH_MAX + 32];
    char   exec[PATH_MAX * 2 + 256];
    char   env[128];
    char  *envs[] = {env, NULL};
    char  *args[] = {"--node-id",
                     (char *)ids[i],
                     "--key-file",
                     key_path,
                     "--voters",
                     voters,
                     "--raft-listen",
                     addrs[i],
                     "--config",
                     conf,
                     "--workers",
                     "1",
                     "--exec",
                     exec,
                     FAST,
                     RAFT,
                     NULL,
                     NULL,
                     NULL,
                     NULL,
                     NULL};
    size_t a = sizeof(args) / sizeof(args[0]) - 5;
    int    rc;

    /* The others' peer sockets as seeds (one may be stale: a restarted
     * node has new ports), so the nodes are members of one cluster too:
     * followers forward to the leader, idle workers steal. */
    for (int k = 0; k < N; k++)
        if (k != i && peer_urls[k][0] != '\0') {
            args[a++] = "--peer";
            args[a++] = peer_urls[k];
        }
    /* One line per run; O_APPEND writes of a short line do not interleave. */
    snprintf(exec, sizeof(exec),
             "tick=echo \"$CADRE_SCHEDULE $CADRE_SLOT %s $(date +%%s%%3N)\" "
             ">> %s",
             ids[i], ledger);
    snprintf(dir, sizeof(dir), "%s/%s", base, ids[i]);
    snprintf(env, sizeof(env), "CADRE_FAULT=%s", fault ? fault : "");
    memset(n, 0, sizeof(*n));
    rc = node_startv(n, dir, envs, args);
    snprintf(peer_urls[i], sizeof(peer_urls[i]), "%s",
             rc == CADRE_OK ? n->peer_url : "");
    return rc;
}

static int
start(struct node_proc *n, int i)
{
    return start_fault(n, i, NULL);
}

static cadre_client *
client_of(const struct node_proc *n)
{
    return node_client(n, key_path, 2000);
}

/* The ready leader the live nodes agree on, or -1. */
static int
agreed(cadre_client *const *cs, const int *live)
{
    cadre_leader_info li;
    int               who = -1;

    for (int i = 0; i < N; i++) {
        if (!live[i])
            continue;
        if (cs[i] == NULL || cadre_cluster_leader(cs[i], &li) != CADRE_OK ||
            li.leader[0] == '\0')
            return -1;
        for (int k = 0; k < N; k++)
            if (strcmp(li.leader, ids[k]) == 0) {
                if (who >= 0 && who != k)
                    return -1;
                who = k;
            }
    }
    if (who < 0 || !live[who] ||
        cadre_cluster_leader(cs[who], &li) != CADRE_OK || !li.ready)
        return -1;
    return who;
}

static int
wait_agreed(cadre_client *const *cs, const int *live, unsigned within_ms)
{
    uint64_t end = cd_mono_ms() + within_ms;
    int      who;

    while ((who = agreed(cs, live)) < 0 && cd_mono_ms() < end)
        cd_sleep_ms(10);
    for (int i = 0; who < 0 && i < N; i++) { /* why not, for the log */
        cadre_leader_info li;
        int               rc =
            live[i] && cs[i] != NULL ? cadre_cluster_leader(cs[i], &li) : -1;

        printf("# no agreed leader: %s live=%d rc=%d leader=%s ready=%d\n",
               ids[i], live[i], rc, rc == 0 ? li.leader : "?",
               rc == 0 ? li.ready : -1);
    }
    return who;
}

/* Sleeps until the wall clock is half-way into a second, at least ms from
 * now: faults between slots. */
static void
sleep_to_half(uint64_t ms)
{
    uint64_t at = cd_now_ms() + ms;

    at = at - at % 1000 + 500 + (at % 1000 > 500 ? 1000 : 0);
    while (cd_now_ms() < at)
        cd_sleep_ms(5);
}

struct run {
    int64_t  slot;
    int      node;
    uint64_t at_ms;
};

/* Reads the ledger lines of schedule name into runs. */
static size_t
read_runs(const char *name, struct run *runs, size_t cap)
{
    FILE  *f = fopen(ledger, "r");
    char   line[256], sched[64], node[16];
    size_t n = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL && n < cap) {
        long long          slot;
        unsigned long long at;

        if (sscanf(line, "%63s %lld %15s %llu", sched, &slot, node, &at) != 4 ||
            strcmp(sched, name) != 0)
            continue;
        runs[n].slot = slot;
        runs[n].at_ms = at;
        runs[n].node = -1;
        for (int i = 0; i < N; i++)
            if (strcmp(node, ids[i]) == 0)
                runs[n].node = i;
        n++;
    }
    if (f != NULL)
        fclose(f);
    return n;
}

static void
kill_restart(struct node_proc *ns, cadre_client **cs, int *live, int who)
{
    proc_kill(&ns[who].p, SIGKILL);
    proc_wait_exit(&ns[who].p, 5000, NULL);
    proc_fini(&ns[who].p);
    cadre_client_close(cs[who]);
    cs[who] = NULL;
    live[who] = 0;
    if (start(&ns[who], who) == CADRE_OK)
        cs[who] = client_of(&ns[who]);
    live[who] = cs[who] != NULL;
}

static void
write_conf(void)
{
    FILE *f = fopen(conf, "w");

    if (f == NULL)
        return;
    fprintf(f, "[node]\n"
               "[schedule \"one\"]\n"
               "every = 1s\n"
               "task = tick\n"
               "on_one_server = true\n"
               "catchup = all\n"
               "[schedule \"local\"]\n"
               "every = 2s\n"
               "task = tick\n");
    fclose(f);
}

/* A fresh dir, key, config, ledger and raft addresses for one test. */
static int
setup(void)
{
    base = tap_tmpdir();
    snprintf(key_path, sizeof(key_path), "%s/cluster.key", base);
    snprintf(ledger, sizeof(ledger), "%s/ledger.txt", base);
    snprintf(conf, sizeof(conf), "%s/cadre.conf", base);
    write_conf();
    voters[0] = '\0';
    memset(peer_urls, 0, sizeof(peer_urls));
    if (node_keygen(key_path) != CADRE_OK)
        return CADRE_EIO;
    for (int i = 0; i < N; i++) {
        int port = free_tcp_port();

        if (port <= 0)
            return CADRE_EIO;
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%d", port);
        snprintf(voters + strlen(voters), sizeof(voters) - strlen(voters),
                 "%s%s=%s", i ? "," : "", ids[i], addrs[i]);
    }
    return CADRE_OK;
}

/* Counts the runs of schedule "one" per slot, from its first slot to
 * end_s: *missing slots with none, *twice slots with more than one. */
static size_t
slot_counts(int64_t end_s, int *missing, int *twice)
{
    static struct run runs[SLOTS_MAX];
    static int        count[SLOTS_MAX];
    size_t            n = read_runs("one", runs, SLOTS_MAX);
    int64_t           first = INT64_MAX;

    *missing = *twice = 0;
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < n; i++)
        first = runs[i].slot < first ? runs[i].slot : first;
    for (size_t i = 0; i < n; i++)
        if (runs[i].slot - first < SLOTS_MAX)
            count[runs[i].slot - first]++;
    for (int64_t s = first; n > 0 && s <= end_s && s - first < SLOTS_MAX; s++) {
        *missing += count[s - first] == 0;
        *twice += count[s - first] > 1;
        if (count[s - first] != 1)
            printf("# slot %lld ran %d times\n", (long long)s,
                   count[s - first]);
    }
    printf("# slots %lld..%lld: %zu runs, %d missing, %d twice\n",
           (long long)first, (long long)end_s, n, *missing, *twice);
    return n > 0 ? (size_t)(end_s - first + 1) : 0;
}

/* 1 if the node's log has line. */
static int
log_has(const struct node_proc *n, const char *text)
{
    char  path[PATH_MAX + 32], line[1024];
    FILE *f;
    int   found = 0;

    snprintf(path, sizeof(path), "%s/node.log", n->data_dir);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* Each node crashes itself (CADRE_FAULT) at its third slot as leader, at
 * a different step: a after a claim committed, b after the held job
 * committed, c after DONE committed. A crashed node comes back without the
 * fault; a leader without a fault left is SIGKILLed (between slots) so
 * that every armed node gets to lead. Every slot must still run once: the
 * redo covers a and b; b's held job is dropped when it comes back (its
 * slot was done by the next leader; or b, back first, leads and redoes
 * it), c's held job runs when it comes back (its slot is done by c). */
TEST(crash_between_claim_hold_done_and_release)
{
    static const char *faults[N] = {"sched_after_claim:3", "sched_after_hold:3",
                                    "sched_after_done:3"};
    struct node_proc   ns[N];
    cadre_client      *cs[N] = {0};
    int                live[N] = {1, 1, 1}, crashed[N] = {0};
    int                missing, twice, who;
    uint64_t           end = cd_mono_ms() + 40000;
    size_t             slots;

    REQUIRE_EQ(setup(), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE_EQ(start_fault(&ns[i], i, faults[i]), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE((cs[i] = client_of(&ns[i])) != NULL);
    while ((crashed[0] + crashed[1] + crashed[2]) < N && cd_mono_ms() < end) {
        for (int i = 0; i < N; i++) {
            if (proc_wait_exit(&ns[i].p, 0, NULL) != CADRE_OK)
                continue;
            printf("# %s crashed at %s\n", ids[i], faults[i]);
            crashed[i] = 1;
            proc_fini(&ns[i].p);
            cadre_client_close(cs[i]);
            cs[i] = NULL;
            if (start(&ns[i], i) == CADRE_OK)
                cs[i] = client_of(&ns[i]);
        }
        who = agreed(cs, live);
        if (who >= 0 && crashed[who]) { /* let an armed node lead */
            sleep_to_half(0);
            kill_restart(ns, cs, live, who);
        }
        cd_sleep_ms(50);
    }
    CHECK_EQ(crashed[0] + crashed[1] + crashed[2], N);
    REQUIRE(wait_agreed(cs, live, 5000) >= 0);
    sleep_to_half(3000);
    slots = slot_counts((int64_t)(cd_now_ms() / 1000) - 1, &missing, &twice);
    CHECK(slots >= 10);
    CHECK_EQ(missing, 0);
    CHECK_EQ(twice, 0);
    CHECK(log_has(&ns[0], "point=sched_after_claim"));
    /* b's held job: dropped when b came back, as the next leader redid the
     * slot; or b led again first and redid it itself. */
    CHECK(log_has(&ns[1], "SCHED-DROP") || log_has(&ns[1], "SCHED-REDO"));
    CHECK(log_has(&ns[2], "SCHED-RUN") && log_has(&ns[2], "late=1"));
    for (int i = 0; i < N; i++) {
        cadre_client_close(cs[i]);
        proc_stop(&ns[i].p);
        proc_fini(&ns[i].p);
    }
}

/* A graceful stop of the leader right after a slot's DONE committed and
 * before its job ran (CADRE_FAULT=sched_after_done:2:term: each voter
 * SIGTERMs itself there, at its second slot as leader). The stopping node
 * hands the leadership over, still releases the slot's held job, and stays
 * up while a peer steals it (NODE-DRAIN): so while it is down, no slot is
 * missing, none ran twice; it is restarted without the fault each time. */
TEST(graceful_stop_of_the_leader_strands_no_slot)
{
    struct node_proc ns[N];
    cadre_client    *cs[N] = {0};
    int              live[N] = {1, 1, 1}, stopped[N] = {0};
    int              missing, twice, stops = 0, drained = 0;
    uint64_t         end = cd_mono_ms() + 30000;

    REQUIRE_EQ(setup(), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE_EQ(start_fault(&ns[i], i, "sched_after_done:2:term"), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE((cs[i] = client_of(&ns[i])) != NULL);
    REQUIRE(wait_agreed(cs, live, 5000) >= 0);
    while (stops < 2 && cd_mono_ms() < end) {
        for (int i = 0; i < N; i++) {
            int status = -1;

            if (stopped[i] || proc_wait_exit(&ns[i].p, 0, &status) != CADRE_OK)
                continue;
            stopped[i] = 1;
            stops++;
            CHECK_EQ(status, 0); /* a graceful stop */
            cadre_client_close(cs[i]);
            cs[i] = NULL;
            live[i] = 0;
            /* While it is down: every slot so far ran, once. */
            cd_sleep_ms(1500);
            slot_counts((int64_t)(cd_now_ms() / 1000) - 1, &missing, &twice);
            printf("# %s stopped itself after a DONE; while it is down: %d "
                   "missing, %d twice\n",
                   ids[i], missing, twice);
            CHECK_EQ(missing, 0);
            CHECK_EQ(twice, 0);
            drained += log_has(&ns[i], "NODE-DRAIN");
            proc_fini(&ns[i].p);
            REQUIRE_EQ(start(&ns[i], i), CADRE_OK);
            REQUIRE((cs[i] = client_of(&ns[i])) != NULL);
            live[i] = 1;
        }
        cd_sleep_ms(50);
    }
    CHECK_EQ(stops, 2);
    printf("# %d of the stopped nodes logged NODE-DRAIN\n", drained);
    REQUIRE(wait_agreed(cs, live, 5000) >= 0);
    sleep_to_half(2000);
    CHECK(slot_counts((int64_t)(cd_now_ms() / 1000) - 1, &missing, &twice) >=
          5);
    CHECK_EQ(missing, 0);
    CHECK_EQ(twice, 0);
    for (int i = 0; i < N; i++) {
        cadre_client_close(cs[i]);
        proc_stop(&ns[i].p);
        proc_fini(&ns[i].p);
    }
}

TEST(on_one_server_exactly_once_through_failovers)
{
    struct node_proc  ns[N];
    cadre_client     *cs[N] = {0};
    int               live[N] = {1, 1, 1};
    static struct run runs[SLOTS_MAX];
    static int        count[SLOTS_MAX];
    int               who, frozen, minority;
    uint64_t          t_start, stop_at, stop_cont, part_at, part_cont, t_end;
    size_t            n;
    int64_t           first = INT64_MAX, last = 0;

    REQUIRE_EQ(setup(), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE_EQ(start(&ns[i], i), CADRE_OK);
    for (int i = 0; i < N; i++)
        REQUIRE((cs[i] = client_of(&ns[i])) != NULL);
    who = wait_agreed(cs, live, 5000);
    REQUIRE(who >= 0);
    t_start = cd_now_ms();

    /* ~8 s: SIGKILL the leader, restart it. */
    sleep_to_half(7000);
    printf("# %llu ms: SIGKILL leader %s\n",
           (unsigned long long)(cd_now_ms() - t_start), ids[who]);
    kill_restart(ns, cs, live, who);
    who = wait_agreed(cs, live, 5000);
    REQUIRE(who >= 0);

    /* ~16 s: freeze the leader past the election timeout. */
    sleep_to_half(6000);
    frozen = who;
    stop_at = cd_now_ms();
    printf("# %llu ms: SIGSTOP leader %s for 2 s\n",
           (unsigned long long)(stop_at - t_start), ids[frozen]);
    proc_kill(&ns[frozen].p, SIGSTOP);
    live[frozen] = 0;
    who = wait_agreed(cs, live, 5000);
    CHECK(who >= 0 && who != frozen);
    cd_sleep_ms(2000 - (cd_now_ms() - stop_at) % 2000);
    proc_kill(&ns[frozen].p, SIGCONT);
    stop_cont = cd_now_ms();
    live[frozen] = 1;
    who = wait_agreed(cs, live, 5000);
    REQUIRE(who >= 0);
    CHECK(who != frozen); /* pre-vote: the returning node does not depose */

    /* ~24 s: the leader alone, both followers frozen for 3 s. */
    sleep_to_half(5000);
    minority = who;
    part_at = cd_now_ms();
    printf("# %llu ms: SIGSTOP both followers of %s for 3 s\n",
           (unsigned long long)(part_at - t_start), ids[minority]);
    for (int i = 0; i < N; i++)
        if (i != minority)
            proc_kill(&ns[i].p, SIGSTOP);
    cd_sleep_ms(3000);
    for (int i = 0; i < N; i++)
        if (i != minority)
            proc_kill(&ns[i].p, SIGCONT);
    part_cont = cd_now_ms();
    who = wait_agreed(cs, live, 5000);
    REQUIRE(who >= 0);

    /* ~32 s: SIGKILL the leader again. */
    sleep_to_half(4000);
    printf("# %llu ms: SIGKILL leader %s\n",
           (unsigned long long)(cd_now_ms() - t_start), ids[who]);
    kill_restart(ns, cs, live, who);
    who = wait_agreed(cs, live, 5000);
    REQUIRE(who >= 0);
    sleep_to_half(3000);
    t_end = cd_now_ms();

    /* `cadre schedule list` at a follower names both schedules. */
    {
        char out[4096];
        int  code = -1;

        proc_run_cli(out, sizeof(out), &code, "schedule", "list", "--url",
                     ns[(who + 1) % N].url, "--key-file", key_path, NULL);
        CHECK_EQ(code, 0);
        CHECK(strstr(out, "one") != NULL && strstr(out, "local") != NULL);
        CHECK(strstr(out, "every node") != NULL);
        printf("%s", out);
    }
    cd_sleep_ms(1500); /* the last slots' runs land */
    for (int i = 0; i < N; i++) {
        cadre_client_close(cs[i]);
        proc_stop(&ns[i].p);
        proc_fini(&ns[i].p);
    }

    n = read_runs("one", runs, SLOTS_MAX);
    REQUIRE(n > 20);
    for (size_t i = 0; i < n; i++) {
        first = runs[i].slot < first ? runs[i].slot : first;
        last = runs[i].slot > last ? runs[i].slot : last;
    }
    REQUIRE(last - first < SLOTS_MAX);
    for (size_t i = 0; i < n; i++)
        count[runs[i].slot - first]++;
    {
        int missing = 0, twice = 0;
        /* Slots up to the end of the window, not the ones after t_end. */
        int64_t end_s = (int64_t)(t_end / 1000) - 1;

        for (int64_t s = first; s <= end_s && s <= last; s++) {
            missing += count[s - first] == 0;
            twice += count[s - first] > 1;
            if (count[s - first] != 1)
                printf("# slot %lld ran %d times\n", (long long)s,
                       count[s - first]);
        }
        printf("# slots %lld..%lld: %zu runs, %d missing, %d twice\n",
               (long long)first, (long long)end_s, n, missing, twice);
        CHECK_EQ(missing, 0);
        CHECK_EQ(twice, 0);
        CHECK(end_s - first >= 30);
    }
    /* The frozen leader ran nothing of the slots after its freeze (it lost
     * the leadership and did not get it back before the partition step). */
    {
        int bad = 0;

        for (size_t i = 0; i < n; i++)
            bad += runs[i].node == frozen &&
                   runs[i].slot >= (int64_t)(stop_at / 1000) + 1 &&
                   runs[i].slot < (int64_t)(part_at / 1000);
        CHECK_EQ(bad, 0);
    }
    /* Nothing ran while the leader had no quorum (its last slot before the
     * freeze may finish within the first half second). */
    {
        int during = 0, after = 0;

        for (size_t i = 0; i < n; i++) {
            during +=
                runs[i].at_ms > part_at + 500 && runs[i].at_ms < part_cont;
            after += runs[i].slot > (int64_t)(part_at / 1000) &&
                     runs[i].slot < (int64_t)(part_cont / 1000);
        }
        CHECK_EQ(during, 0);
        CHECK(after >= 2); /* its slots ran after, caught up (catchup = all) */
    }
    /* The local schedule ran on every node. */
    {
        int per[N] = {0};

        n = read_runs("local", runs, SLOTS_MAX);
        for (size_t i = 0; i < n; i++)
            if (runs[i].node >= 0)
                per[runs[i].node]++;
        for (int i = 0; i < N; i++)
            CHECK(per[i] >= 5);
    }
    (void)stop_cont;
}

int
main(void)
{
    TAP_RUN(T(on_one_server_exactly_once_through_failovers),
            T(crash_between_claim_hold_done_and_release),
            T(graceful_stop_of_the_leader_strands_no_slot));
}
