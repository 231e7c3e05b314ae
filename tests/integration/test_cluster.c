/* test_cluster.c: real clusters on loopback, every node with its own data
 * dir and one shared key. Jobs dispatched to one node run on the workers of
 * all three (work stealing); a run through one node is spread over its
 * peers; a node SIGKILLed while it holds stolen jobs loses none of them; so
 * do a thief and a victim killed mid-transfer; a node, client or worker with
 * another key cannot join, dispatch, fetch or steal; cluster requests with a
 * client or worker key are refused; a captured frame sent again is dropped.
 * Nothing lost is checked with the demo plugin's ledger
 * (../shared/notes/faults.md, section 1). */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "common/id.h"
#include "crypto/keys.h"
#include "proto/msg.h"
#include "proto/wire.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

/* Every node gets these, so the duplicate bounds below follow from them. */
#define WORKERS 2
#define PREFETCH 8
#define STEAL_MAX 32
#define LEND_MS 2000
#define RETRY_AFTER_MS 1000
#define S_(x) #x
#define S(x) S_(x)

#define BATCH 100
#define DRAIN_MS 60000
#define NODES_MAX 4

/* Jobs a node killed with SIGKILL may leave to run twice: what its workers
 * held (prefetch each, plus the one running), one steal it had adopted but
 * not settled (the loan comes back at the victim) and one loan of its own
 * not settled by its thief. */
#define DUP_BOUND_PER_KILL (2 * STEAL_MAX + WORKERS * (PREFETCH + 1))

struct member {
    struct node_proc n;
    cadre_client    *c;
    char             id[16];
    char             dir[PATH_MAX + 32];
    char             seed[128]; /* peer url it joined through; "" if none */
    char             key[PATH_MAX + 16];
    char             workers[8];
};

static struct member nodes[NODES_MAX];
static char          base[PATH_MAX];
static char          key_path[PATH_MAX + 16];

/* ---- nodes ----------------------------------------------------------- */

/* A fresh temp dir and one cluster key in it. */
static int
cluster_dir(void)
{
    snprintf(base, sizeof(base), "%s", tap_tmpdir());
    snprintf(key_path, sizeof(key_path), "%s/cluster.key", base);
    memset(nodes, 0, sizeof(nodes));
    return node_keygen(key_path) == CADRE_OK ? 0 : -1;
}

static int
member_client(struct member *m, const char *key_file, uint32_t timeout_ms)
{
    cadre_client_opts o;
    char              err[256];

    node_client_opts(&m->n, &o);
    o.key_file = key_file;
    o.timeout_ms = timeout_ms;
    if (cadre_client_open(&o, &m->c, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "client of %s: %s\n", m->id, err);
        return -1;
    }
    return 0;
}

/* (Re)starts m on its data dir base/id with its id, key, workers and seed
 * as set by member_start; opens its client. */
static int
member_boot(struct member *m)
{
    char *args[40];
    int   a = 0;

    args[a++] = "--node-id";
    args[a++] = m->id;
    args[a++] = "--key-file";
    args[a++] = m->key;
    args[a++] = "--workers";
    args[a++] = m->workers;
    args[a++] = "--plugin";
    args[a++] = (char *)proc_demo_plugin();
    args[a++] = "--prefetch";
    args[a++] = S(PREFETCH);
    args[a++] = "--retry-after";
    args[a++] = S(RETRY_AFTER_MS);
    args[a++] = "--lend-ms";
    args[a++] = S(LEND_MS);
    args[a++] = "--steal-max";
    args[a++] = S(STEAL_MAX);
    args[a++] = "--heartbeat-ms";
    args[a++] = "100";
    args[a++] = "--suspect-ms";
    args[a++] = "500";
    args[a++] = "--dead-ms";
    args[a++] = "2000";
    if (m->seed[0] != '\0') {
        args[a++] = "--peer";
        args[a++] = m->seed;
    }
    args[a] = NULL;
    memset(&m->n, 0, sizeof(m->n));
    if (node_startv(&m->n, m->dir, NULL, args) != CADRE_OK)
        return -1;
    if (m->n.peer_url[0] == '\0' || strcmp(m->n.node_id, m->id) != 0) {
        fprintf(stderr, "%s: readiness line without peer= or id=\n", m->id);
        return -1;
    }
    return member_client(m, m->key, 5000);
}

/* Starts node id with workers supervised workers, joining through seed (a
 * peer url, NULL: none), with the key in key_file. */
static int
member_start(struct member *m, const char *id, const char *workers,
             const char *seed, const char *key_file)
{
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->dir, sizeof(m->dir), "%s/%s", base, id);
    snprintf(m->seed, sizeof(m->seed), "%s", seed ? seed : "");
    snprintf(m->key, sizeof(m->key), "%s", key_file);
    snprintf(m->workers, sizeof(m->workers), "%s", workers);
    return member_boot(m);
}

/* SIGKILLs m and what is left of its process group (its workers); returns
 * the node's exit status (-9). */
static int
member_kill9(struct member *m)
{
    int status = 0;

    cadre_client_close(m->c);
    m->c = NULL;
    if (proc_kill(&m->n.p, SIGKILL) != CADRE_OK)
        return 0;
    proc_wait_exit(&m->n.p, 5000, &status);
    proc_stop(&m->n.p); /* reaped already: kills the orphaned workers */
    return status;
}

static int
member_stop(struct member *m)
{
    cadre_client_close(m->c);
    m->c = NULL;
    return node_stop(&m->n);
}

/* Queue totals of a status: ready + delayed + reserved, done, failed. */
static void
status_sums(const cadre_status *st, uint64_t *pending, uint64_t *done,
            uint64_t *failed)
{
    *pending = *done = *failed = 0;
    for (size_t i = 0; i < st->queues_n; i++) {
        *pending += st->queues[i].ready + st->queues[i].delayed +
                    st->queues[i].reserved;
        *done += st->queues[i].done;
        *failed += st->queues[i].failed;
    }
}

/* Waits until each of the first k nodes sees want members alive. */
static int
wait_alive(int k, uint32_t want, uint64_t timeout_ms)
{
    uint64_t until = cd_mono_ms() + timeout_ms;

    while (cd_mono_ms() < until) {
        int ok = 0;

        for (int i = 0; i < k; i++) {
            cadre_status st;

            if (cadre_status_get(nodes[i].c, &st) != CADRE_OK)
                continue;
            ok += st.members_alive >= want;
            cadre_status_fini(&st);
        }
        if (ok == k)
            return 0;
        cd_sleep_ms(50);
    }
    fprintf(stderr, "the cluster did not form: want %u alive\n", want);
    for (int i = 0; i < k; i++)
        proc_dump_log(&nodes[i].n.p, 10);
    return -1;
}

/* ---- the ledger ------------------------------------------------------ */

static size_t
ledger_lines_now(const char *path)
{
    struct ledger *l;
    size_t         n;

    if (ledger_read(path, &l) != CADRE_OK)
        return 0;
    n = ledger_lines(l);
    ledger_free(l);
    return n;
}

/* Dispatches n ledger jobs with the ids given, in bulk batches; a batch
 * that fails is sent again with the same ids (stored once), twice at most.
 * Returns the jobs acknowledged (it stops at a batch that never was). */
static size_t
dispatch_ledger(cadre_client *c, const char *ledger, const cadre_job_id *ids,
                size_t n)
{
    static cadre_job_spec spec[BATCH];
    static cadre_job_opts opts[BATCH];
    cadre_job_id          got[BATCH];
    size_t                acked = 0;

    for (size_t b = 0; b < n; b += BATCH) {
        size_t k = n - b < BATCH ? n - b : BATCH;

        for (size_t i = 0; i < k; i++) {
            opts[i] = (cadre_job_opts){.tries = 5, .id = &ids[b + i]};
            spec[i] =
                (cadre_job_spec){"ledger", ledger, strlen(ledger), &opts[i]};
        }
        for (int t = 0;; t++) {
            int rc = cadre_dispatch_bulk(c, spec, k, got);

            if (rc == CADRE_OK) {
                acked += k;
                break;
            }
            fprintf(stderr, "# batch %zu: %s (%s)\n", b / BATCH,
                    cadre_strerror(rc), cadre_client_errmsg(c));
            if (t == 2)
                return acked;
        }
    }
    return acked;
}

/* Acked ids not in the ledger yet (ledger_check without its messages). */
static size_t
ledger_missing(const char *path, const cadre_job_id *ids, size_t n)
{
    struct ledger *l;
    size_t         missing = 0;

    if (ledger_read(path, &l) != CADRE_OK)
        return n;
    for (size_t i = 0; i < n; i++)
        missing += ledger_count(l, &ids[i]) == 0;
    ledger_free(l);
    return missing;
}

/* Polls until every acked id is in the ledger and none of the k nodes
 * holds a pending job (ready, delayed or reserved). Returns 0 once drained,
 * -1 at the deadline (with what is left printed). */
static int
drain(const char *ledger, const cadre_job_id *ids, size_t n, int k,
      uint64_t timeout_ms)
{
    uint64_t until = cd_mono_ms() + timeout_ms;
    size_t   missing = n;
    uint64_t pending = 0;

    while (cd_mono_ms() < until) {
        int answered = 0;

        pending = 0;
        for (int i = 0; i < k; i++) {
            cadre_status st;
            uint64_t     p, d, f;

            if (cadre_status_get(nodes[i].c, &st) != CADRE_OK)
                continue;
            status_sums(&st, &p, &d, &f);
            pending += p;
            answered++;
            cadre_status_fini(&st);
        }
        missing = ledger_missing(ledger, ids, n);
        if (answered == k && pending == 0 && missing == 0)
            return 0;
        cd_sleep_ms(200);
    }
    fprintf(stderr, "# not drained: missing=%zu pending=%llu\n", missing,
            (unsigned long long)pending);
    for (int i = 0; i < k; i++)
        proc_dump_log(&nodes[i].n.p, 10);
    return -1;
}

/* What waiting at the jobs' home (the node they were dispatched to) says:
 * stolen jobs' outcomes are sent home by the node that ran them. */
struct home_view {
    size_t done, pending, other; /* other: failed or unknown */
    size_t late; /* pending, though they last ran after the kill */
};

/* Waits up to timeout_ms at c for the n jobs and counts their outcomes.
 * A pending job is "late" if its last ledger line was written at or after
 * killed_at_ms (Unix ms, when the killed node's processes were all gone):
 * a live node ran it, so its outcome should have come home. Only a notice
 * that died with the killed node may leave a job pending. */
static void
home_outcomes(cadre_client *c, const cadre_job_id *ids, size_t n,
              uint64_t timeout_ms, const char *ledger, uint64_t killed_at_ms,
              struct home_view *v)
{
    cadre_outcome     *out = calloc(n, sizeof(*out));
    char              *pend = calloc(n, 37); /* uuids of pending jobs */
    uint64_t          *last_ms = calloc(n, sizeof(*last_ms));
    char               uuid[64];
    unsigned           attempt;
    long               pid;
    unsigned long long ms;
    FILE              *f;

    memset(v, 0, sizeof(*v));
    v->other = n;
    if (out == NULL || pend == NULL || last_ms == NULL)
        goto done;
    v->other = 0;
    cadre_wait(c, ids, n, timeout_ms, out);
    for (size_t i = 0; i < n; i++) {
        if (out[i].status == CADRE_DONE)
            v->done++;
        else if (out[i].status == CADRE_PENDING)
            cadre_job_id_format(&ids[i], pend + 37 * v->pending++);
        else
            v->other++;
        cadre_outcome_fini(&out[i]);
    }
    if (v->pending == 0 || (f = fopen(ledger, "r")) == NULL)
        goto done;
    while (fscanf(f, "%63s %u %ld %llu", uuid, &attempt, &pid, &ms) == 4)
        for (size_t i = 0; i < v->pending; i++)
            if (strcmp(uuid, pend + 37 * i) == 0 && ms > last_ms[i])
                last_ms[i] = ms;
    fclose(f);
    for (size_t i = 0; i < v->pending; i++) {
        if (last_ms[i] < killed_at_ms)
            continue;
        if (v->late++ < 5)
            fprintf(stderr,
                    "# %s: pending at home, last ran %lld ms after the "
                    "kill\n",
                    pend + 37 * i, (long long)(last_ms[i] - killed_at_ms));
    }
done:
    free(out);
    free(pend);
    free(last_ms);
}

/* Prints and returns the done count of each of the k nodes; also sums
 * pending and failed jobs over them. */
static void
print_nodes(const char *label, int k, uint64_t *done, uint64_t *pending,
            uint64_t *failed)
{
    *pending = *failed = 0;
    for (int i = 0; i < k; i++) {
        cadre_status st;
        uint64_t     p = 0, f = 0;

        done[i] = 0;
        if (cadre_status_get(nodes[i].c, &st) != CADRE_OK) {
            printf("# %s: node %s did not answer\n", label, nodes[i].id);
            *pending = UINT64_MAX;
            continue;
        }
        status_sums(&st, &p, &done[i], &f);
        *pending += p;
        *failed += f;
        printf("# %s: node %s done=%llu stolen=%llu lent=%llu settled=%llu "
               "members_alive=%u replayed=%llu bad_frames=%llu\n",
               label, nodes[i].id, (unsigned long long)done[i],
               (unsigned long long)st.jobs_stolen,
               (unsigned long long)st.jobs_lent,
               (unsigned long long)st.jobs_settled, st.members_alive,
               (unsigned long long)st.replayed,
               (unsigned long long)st.bad_frames);
        cadre_status_fini(&st);
    }
}

/* ---- (a) + (c): 3,000 jobs over three nodes, one of them SIGKILLed -- */

TEST(three_nodes_share_jobs_and_a_killed_node_loses_none)
{
    enum { JOBS = 3000, KILL_AT = 500 };
    static cadre_job_id ids[JOBS];
    char                ledger[PATH_MAX + 16];
    struct member      *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    struct ledger      *l = NULL;
    struct ledger_check chk;
    uint64_t            t0, t_kill, until, done[3], pending, failed;
    uint64_t            c_stolen = 0, c_done = 0;
    uint64_t            c_killed_at_ms;
    size_t              acked, lines = 0;
    struct home_view    home;

    REQUIRE(cluster_dir() == 0);
    snprintf(ledger, sizeof(ledger), "%s/ledger", base);
    REQUIRE(member_start(a, "A", S(WORKERS), NULL, key_path) == 0);
    REQUIRE(member_start(b, "B", S(WORKERS), a->n.peer_url, key_path) == 0);
    REQUIRE(member_start(c, "C", S(WORKERS), a->n.peer_url, key_path) == 0);
    REQUIRE(wait_alive(3, 2, 15000) == 0);

    for (int i = 0; i < JOBS; i++)
        cd_id_new(&ids[i], cd_now_ms());
    t0 = cd_mono_ms();
    acked = dispatch_ledger(a->c, ledger, ids, JOBS);
    REQUIRE_EQ(acked, JOBS);
    printf("# dispatched %zu ledger jobs to A in %llu ms\n", acked,
           (unsigned long long)(cd_mono_ms() - t0));

    /* Kill C once jobs are running and C has stolen some: it holds adopted
     * jobs, reserved by its workers, and maybe loans not yet settled. */
    until = cd_mono_ms() + 30000;
    while (cd_mono_ms() < until) {
        cadre_status st;

        lines = ledger_lines_now(ledger);
        if (cadre_status_get(c->c, &st) == CADRE_OK) {
            uint64_t p, f;

            c_stolen = st.jobs_stolen;
            status_sums(&st, &p, &c_done, &f);
            cadre_status_fini(&st);
        }
        if (lines >= KILL_AT && c_stolen > 0)
            break;
        cd_sleep_ms(20);
    }
    printf("# killing C: ledger=%zu lines, C stolen=%llu done=%llu\n", lines,
           (unsigned long long)c_stolen, (unsigned long long)c_done);
    CHECK(lines >= KILL_AT);
    CHECK(lines < JOBS); /* mid-stream, not after */
    CHECK(c_stolen > 0);
    CHECK_EQ(member_kill9(c), -9);
    t_kill = cd_mono_ms();
    c_killed_at_ms = cd_now_ms(); /* C and its workers are gone */
    /* Same data dir, same id, same seed. */
    REQUIRE(member_boot(c) == 0);
    printf("# C back after %llu ms\n",
           (unsigned long long)(cd_mono_ms() - t_kill));

    CHECK(drain(ledger, ids, JOBS, 3, DRAIN_MS) == 0);
    printf("# drained %llu ms after the kill, %llu ms in all\n",
           (unsigned long long)(cd_mono_ms() - t_kill),
           (unsigned long long)(cd_mono_ms() - t0));
    /* Every node hears the restarted C again (B, which C did not seed,
     * takes C's new addresses from gossip once it holds C dead). */
    CHECK(wait_alive(3, 2, 15000) == 0);
    printf("# all members alive again %llu ms after the kill\n",
           (unsigned long long)(cd_mono_ms() - t_kill));
    print_nodes("after", 3, done, &pending, &failed);
    CHECK_EQ(pending, 0);
    CHECK_EQ(failed, 0);
    /* Workers of all three nodes ran jobs dispatched to A. */
    CHECK(done[0] > 0);
    CHECK(done[1] > 0);
    CHECK(done[2] > 0);
    CHECK(done[0] + done[1] + done[2] >= JOBS);
    REQUIRE_EQ(ledger_read(ledger, &l), CADRE_OK);
    ledger_check(l, ids, JOBS, &chk);
    ledger_check_print("cluster kill -9 C", &chk);
    printf("# duplicates=%zu (bound %d: C's workers' jobs, one steal and "
           "one loan of C's)\n",
           chk.duplicates, DUP_BOUND_PER_KILL);
    CHECK_EQ(chk.acked, JOBS);
    CHECK_EQ(chk.missing, 0);
    CHECK_EQ(chk.unexpected, 0);
    CHECK_EQ(ledger_bad_lines(l), 0);
    CHECK(chk.duplicates <= DUP_BOUND_PER_KILL);
    ledger_free(l);
    /* Waiting at A sees the outcomes of jobs that ran on B and C. A job C
     * finished just before its kill may stay pending there: its notice
     * home died with C (README, "Waiting works across nodes"); one that
     * ran after that must not. */
    home_outcomes(a->c, ids, JOBS, 5000, ledger, c_killed_at_ms, &home);
    printf("# outcomes at A: done=%zu pending=%zu (ran after the kill: %zu) "
           "other=%zu\n",
           home.done, home.pending, home.late, home.other);
    CHECK_EQ(home.other, 0);
    CHECK_EQ(home.late, 0);
    CHECK(home.pending <= (size_t)DUP_BOUND_PER_KILL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(member_stop(&nodes[i]), 0);
}

/* ---- (b): a run through B executes on other nodes too ---------------- */

/* Which of the k nodes has pid among its worker processes; -1 if none. */
static int
node_of_pid(int k, long pid)
{
    for (int i = 0; i < k; i++) {
        pid_t kids[64];
        int   n = proc_children(nodes[i].n.pid, kids, 64);

        for (int j = 0; j < n; j++)
            if (kids[j] == (pid_t)pid)
                return i;
    }
    return -1;
}

TEST(a_run_through_b_is_spread_over_the_cluster)
{
    enum { N = 300 };
    static cadre_task_spec  t[N];
    static cadre_run_result r[N];
    static char             pl[N][16];
    char                    ledger[PATH_MAX + 16], uuid[64];
    cadre_run_opts          o = {.deadline_ms = 30000};
    struct member          *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
    struct ledger          *l = NULL;
    cadre_status            st;
    FILE                   *f;
    int                     bad = 0, per_node[3] = {0}, unknown = 0, used = 0;
    unsigned                attempt;
    long                    pid;
    unsigned long long      ms;
    uint64_t                t0;

    REQUIRE(cluster_dir() == 0);
    snprintf(ledger, sizeof(ledger), "%s/run-ledger", base);
    REQUIRE(member_start(a, "A", S(WORKERS), NULL, key_path) == 0);
    REQUIRE(member_start(b, "B", S(WORKERS), a->n.peer_url, key_path) == 0);
    REQUIRE(member_start(c, "C", S(WORKERS), a->n.peer_url, key_path) == 0);
    REQUIRE(wait_alive(3, 2, 15000) == 0);

    /* Every third task writes the ledger (its worker's pid says which node
     * ran it); the others echo their index (the order check). */
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            t[i] = (cadre_task_spec){.task = "ledger",
                                     .payload = ledger,
                                     .payload_len = strlen(ledger)};
        } else {
            snprintf(pl[i], sizeof(pl[i]), "%d", i);
            t[i] = (cadre_task_spec){
                .task = "echo", .payload = pl[i], .payload_len = strlen(pl[i])};
        }
    }
    t0 = cd_mono_ms();
    REQUIRE_EQ(cadre_run(b->c, t, N, &o, r), CADRE_OK);
    printf("# run of %d tasks through B: %llu ms\n", N,
           (unsigned long long)(cd_mono_ms() - t0));
    for (int i = 0; i < N; i++) {
        const char *want = i % 3 == 0 ? "ok" : pl[i];
        size_t      len = strlen(want);

        if (r[i].status != CADRE_RUN_OK || r[i].result_len != len ||
            memcmp(r[i].result, want, len) != 0) {
            if (bad++ < 5)
                fprintf(stderr, "# task %d: status %d result %.*s\n", i,
                        r[i].status, (int)r[i].result_len,
                        r[i].result ? (const char *)r[i].result : "");
        }
    }
    CHECK_EQ(bad, 0);
    cadre_run_results_free(r, N);

    /* B handed tasks to its peers... */
    REQUIRE_EQ(cadre_status_get(b->c, &st), CADRE_OK);
    printf("# B: subruns=%llu subrun_tasks=%llu\n",
           (unsigned long long)st.subruns, (unsigned long long)st.subrun_tasks);
    CHECK(st.subruns > 0);
    CHECK(st.subrun_tasks > 0);
    cadre_status_fini(&st);
    /* ...and their workers ran them: each ledger line's pid is a worker of
     * one of the three nodes. */
    REQUIRE_EQ(ledger_read(ledger, &l), CADRE_OK);
    CHECK_EQ(ledger_jobs(l), (N + 2) / 3); /* each ledger task ran */
    ledger_free(l);
    f = fopen(ledger, "r");
    REQUIRE(f != NULL);
    while (fscanf(f, "%63s %u %ld %llu", uuid, &attempt, &pid, &ms) == 4) {
        int k = node_of_pid(3, pid);

        if (k < 0)
            unknown++;
        else
            per_node[k]++;
    }
    fclose(f);
    for (int i = 0; i < 3; i++)
        used += per_node[i] > 0;
    printf("# ledger tasks by node: A=%d B=%d C=%d unknown pid=%d\n",
           per_node[0], per_node[1], per_node[2], unknown);
    CHECK_EQ(unknown, 0);
    CHECK(used >= 2);
    CHECK(per_node[0] + per_node[2] > 0); /* not all on B */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(member_stop(&nodes[i]), 0);
}

/* ---- raw frames ------------------------------------------------------ */

/* Sends one frame on a fresh req socket and waits timeout_ms for a reply.
 * Returns 1 with the reply in reply[0..*reply_len) (truncated to cap), 0 if
 * none came, -1 if the socket could not be dialed. */
static int
raw_req(const char *url, const uint8_t *frame, size_t len, int timeout_ms,
        uint8_t *reply, size_t cap, size_t *reply_len)
{
    nng_socket s;
    nng_msg   *m = NULL;
    int        got = 0;

    *reply_len = 0;
    if (nng_req0_open(&s) != 0)
        return -1;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    if (nng_dial(s, url, NULL, 0) != 0) {
        nng_close(s);
        return -1;
    }
    if (nng_msg_alloc(&m, len) == 0) {
        memcpy(nng_msg_body(m), frame, len);
        if (nng_sendmsg(s, m, 0) != 0) {
            nng_msg_free(m);
        } else if (nng_recvmsg(s, &m, 0) == 0) {
            got = 1;
            *reply_len = nng_msg_len(m) < cap ? nng_msg_len(m) : cap;
            memcpy(reply, nng_msg_body(m), *reply_len);
            nng_msg_free(m);
        }
    }
    nng_close(s);
    return got;
}

/* Seals m with key as role (a fresh sender: a new sender id and boot id).
 * Returns the frame length, 0 on failure. */
static size_t
seal(const keys_key *key, int role, const struct msg *m, uint8_t *buf,
     size_t cap)
{
    struct wire_sender s;
    size_t             len = 0;

    wire_sender_init(&s, role, key, 0);
    if (wire_seal(&s, m, buf, cap, WIRE_MAX_DEFAULT, &len) != CADRE_OK)
        return 0;
    return len;
}

/* Opens a reply sealed with key as role into *m (msg_free it). */
static int
open_reply(const keys_key *key, int role, uint8_t *buf, size_t len,
           struct msg *m)
{
    struct wire_keyring ring;
    cd_err              err;

    memset(&ring, 0, sizeof(ring));
    ring.has[role] = 1;
    ring.key[role] = *key;
    return wire_open(&ring, buf, len, WIRE_MAX_DEFAULT, NULL, m, &err);
}

static const char *steal_queues[] = {"default"};

static struct msg
steal_msg(const char *thief)
{
    struct msg m = {.request_id = 11, .kind = MSG_STEAL};

    m.u.steal.queues = steal_queues;
    m.u.steal.queues_n = 1;
    m.u.steal.max = 8;
    m.u.steal.thief = thief;
    return m;
}

/* The master key in path, derived for role. */
static int
role_key(const char *path, int role, keys_key *out)
{
    keys_key master;
    int      file_role;

    if (keys_load(path, &file_role, &master, NULL) != CADRE_OK)
        return -1;
    keys_derive(&master, role, out);
    keys_wipe(&master);
    return 0;
}

/* A's jobs in any state, its bad frames, replays and loans. */
struct a_view {
    uint64_t total, ready, reserved, bad_frames, replayed, lent;
};

static int
a_view(cadre_client *c, struct a_view *v)
{
    cadre_status st;

    memset(v, 0, sizeof(*v));
    if (cadre_status_get(c, &st) != CADRE_OK)
        return -1;
    for (size_t i = 0; i < st.queues_n; i++) {
        v->total += st.queues[i].ready + st.queues[i].delayed +
                    st.queues[i].reserved + st.queues[i].done +
                    st.queues[i].failed;
        v->ready += st.queues[i].ready;
        v->reserved += st.queues[i].reserved;
    }
    v->bad_frames = st.bad_frames;
    v->replayed = st.replayed;
    v->lent = st.jobs_lent;
    cadre_status_fini(&st);
    return 0;
}

/* ---- (d): another key gets nowhere ----------------------------------- */

TEST(another_key_cannot_join_dispatch_fetch_or_steal)
{
    enum { READY = 10 };
    char              other_key[PATH_MAX + 16];
    struct member    *a = &nodes[0], *b = &nodes[1], *d = &nodes[2];
    cadre_client_opts o;
    cadre_client     *wrong = NULL;
    cadre_member     *ms = NULL;
    size_t            ms_n = 0, rlen = 0, len;
    struct a_view     v0, v1, v2;
    uint8_t           frame[4096], reply[4096];
    keys_key          k;
    struct msg        m, got;
    const char       *queues[] = {"default"};
    int               b_alive = 0, d_listed = 0, d_sees_alive = 0;
    int               roles[] = {KEYS_ROLE_CLIENT, KEYS_ROLE_WORKER};
    cadre_job_id      id;
    uint64_t          t0;

    REQUIRE_EQ(keys_init(), CADRE_OK);
    REQUIRE(cluster_dir() == 0);
    snprintf(other_key, sizeof(other_key), "%s/other.key", base);
    REQUIRE_EQ(node_keygen(other_key), CADRE_OK);
    /* No workers anywhere: A's jobs stay ready, so a steal would find
     * some. */
    REQUIRE(member_start(a, "A", "0", NULL, key_path) == 0);
    REQUIRE(member_start(b, "B", "0", a->n.peer_url, key_path) == 0);
    REQUIRE(wait_alive(2, 1, 15000) == 0);
    for (int i = 0; i < READY; i++)
        REQUIRE_EQ(cadre_dispatch(a->c, "echo", "x", 1, NULL, &id), CADRE_OK);
    REQUIRE(a_view(a->c, &v0) == 0);
    CHECK_EQ(v0.ready, READY);

    /* A node with another key asks A to let it join. */
    REQUIRE(member_start(d, "D", "0", a->n.peer_url, other_key) == 0);
    cd_sleep_ms(3000);
    REQUIRE_EQ(cadre_cluster_members(a->c, &ms, &ms_n), CADRE_OK);
    for (size_t i = 0; i < ms_n; i++) {
        d_listed += strcmp(ms[i].node_id, "D") == 0;
        b_alive += strcmp(ms[i].node_id, "B") == 0 &&
                   ms[i].state == CADRE_MEMBER_ALIVE;
    }
    cadre_members_free(ms, ms_n);
    CHECK_EQ(d_listed, 0);
    CHECK_EQ(b_alive, 1); /* the same key joins */
    REQUIRE_EQ(cadre_cluster_members(d->c, &ms, &ms_n), CADRE_OK);
    for (size_t i = 0; i < ms_n; i++)
        d_sees_alive += ms[i].state == CADRE_MEMBER_ALIVE;
    cadre_members_free(ms, ms_n);
    CHECK_EQ(d_sees_alive, 0);
    REQUIRE(a_view(a->c, &v1) == 0);
    printf("# A's bad frames: %llu before D, %llu 3 s after\n",
           (unsigned long long)v0.bad_frames,
           (unsigned long long)v1.bad_frames);
    CHECK(v1.bad_frames > v0.bad_frames); /* D's Hellos */
    /* D's Hellos stop, so each frame below counts alone. */
    CHECK_EQ(member_stop(d), 0);

    /* A client with the other key gets no answer and stores nothing. */
    node_client_opts(&a->n, &o);
    o.key_file = other_key;
    o.timeout_ms = 1000;
    REQUIRE_EQ(cadre_client_open(&o, &wrong, NULL, 0), CADRE_OK);
    t0 = cd_mono_ms();
    CHECK_EQ(cadre_dispatch(wrong, "echo", "x", 1, NULL, &id), CADRE_ETIMEDOUT);
    printf("# wrong-key dispatch gave up after %llu ms\n",
           (unsigned long long)(cd_mono_ms() - t0));
    cadre_client_close(wrong);
    REQUIRE(a_view(a->c, &v2) == 0);
    CHECK(v2.bad_frames > v1.bad_frames);
    CHECK_EQ(v2.total, READY);

    /* A worker with the other key fetches nothing: no answer. */
    REQUIRE(role_key(other_key, KEYS_ROLE_WORKER, &k) == 0);
    m = (struct msg){.request_id = 9, .kind = MSG_FETCH};
    m.u.fetch.queues = queues;
    m.u.fetch.queues_n = 1;
    m.u.fetch.max = 10;
    len = seal(&k, KEYS_ROLE_WORKER, &m, frame, sizeof(frame));
    REQUIRE(len > 0);
    CHECK_EQ(raw_req(a->n.url, frame, len, 1000, reply, sizeof(reply), &rlen),
             0);
    /* A node with the other key steals nothing, on either socket. */
    REQUIRE(role_key(other_key, KEYS_ROLE_NODE, &k) == 0);
    m = steal_msg("D");
    len = seal(&k, KEYS_ROLE_NODE, &m, frame, sizeof(frame));
    REQUIRE(len > 0);
    CHECK_EQ(
        raw_req(a->n.peer_url, frame, len, 1000, reply, sizeof(reply), &rlen),
        0);
    CHECK_EQ(raw_req(a->n.url, frame, len, 1000, reply, sizeof(reply), &rlen),
             0);
    REQUIRE(a_view(a->c, &v1) == 0);
    CHECK_EQ(v1.bad_frames, v2.bad_frames + 3); /* each one counted */

    /* The right key's client and worker roles: a Steal on the api socket
     * is refused with CADRE_EAUTH; on the peer socket it is dropped. */
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        struct a_view before, after;

        REQUIRE(role_key(key_path, roles[i], &k) == 0);
        m = steal_msg("B");
        len = seal(&k, roles[i], &m, frame, sizeof(frame));
        REQUIRE(len > 0);
        CHECK_EQ(
            raw_req(a->n.url, frame, len, 3000, reply, sizeof(reply), &rlen),
            1);
        memset(&got, 0, sizeof(got));
        if (rlen > 0 &&
            open_reply(&k, roles[i], reply, rlen, &got) == CADRE_OK) {
            CHECK_EQ(got.kind, MSG_ERROR);
            if (got.kind == MSG_ERROR) {
                CHECK_EQ(got.u.error.code, CADRE_EAUTH);
                CHECK_CONTAINS(got.u.error.message,
                               "cluster requests need the node key");
            }
            msg_free(&got);
        } else {
            tap_fail(__FILE__, __LINE__, "no readable reply for role %s",
                     keys_role_name(roles[i]));
        }
        /* The same bytes to the peer socket: no key there opens them
         * (before any replay check), so they count as a bad frame. */
        REQUIRE(a_view(a->c, &before) == 0);
        CHECK_EQ(raw_req(a->n.peer_url, frame, len, 1000, reply, sizeof(reply),
                         &rlen),
                 0);
        REQUIRE(a_view(a->c, &after) == 0);
        CHECK_EQ(after.bad_frames, before.bad_frames + 1);
    }

    /* Nothing was stored, reserved or lent. */
    REQUIRE(a_view(a->c, &v2) == 0);
    printf("# A at the end: jobs=%llu ready=%llu reserved=%llu lent=%llu "
           "bad_frames=%llu\n",
           (unsigned long long)v2.total, (unsigned long long)v2.ready,
           (unsigned long long)v2.reserved, (unsigned long long)v2.lent,
           (unsigned long long)v2.bad_frames);
    CHECK_EQ(v2.total, READY);
    CHECK_EQ(v2.ready, READY);
    CHECK_EQ(v2.reserved, 0);
    CHECK_EQ(v2.lent, 0);
    keys_wipe(&k);
    CHECK_EQ(member_stop(a), 0);
    CHECK_EQ(member_stop(b), 0);
}

/* ---- (e): a captured frame sent again -------------------------------- */

TEST(a_replayed_frame_is_dropped)
{
    struct member     *a = &nodes[0];
    struct a_view      v0, v1, v2, v3;
    struct msg_new_job job = {.task = "echo",
                              .payload = {(const uint8_t *)"x", 1}};
    struct msg         m = {.request_id = 7, .kind = MSG_DISPATCH}, got;
    uint8_t            frame[4096], reply[4096];
    size_t             len, rlen = 0;
    keys_key           k;

    REQUIRE_EQ(keys_init(), CADRE_OK);
    REQUIRE(cluster_dir() == 0);
    REQUIRE(member_start(a, "A", "0", NULL, key_path) == 0);
    REQUIRE(a_view(a->c, &v0) == 0);
    CHECK_EQ(v0.total, 0);

    /* A client's Dispatch, captured on its way. */
    REQUIRE(role_key(key_path, KEYS_ROLE_CLIENT, &k) == 0);
    cd_id_new(&job.id, cd_now_ms());
    m.u.dispatch.jobs = &job;
    m.u.dispatch.jobs_n = 1;
    len = seal(&k, KEYS_ROLE_CLIENT, &m, frame, sizeof(frame));
    REQUIRE(len > 0);
    CHECK_EQ(raw_req(a->n.url, frame, len, 3000, reply, sizeof(reply), &rlen),
             1);
    memset(&got, 0, sizeof(got));
    REQUIRE_EQ(open_reply(&k, KEYS_ROLE_CLIENT, reply, rlen, &got), CADRE_OK);
    CHECK_EQ(got.kind, MSG_DISPATCH_REPLY);
    if (got.kind == MSG_DISPATCH_REPLY)
        CHECK_EQ(got.u.dispatch_reply.ids_n, 1);
    msg_free(&got);
    REQUIRE(a_view(a->c, &v1) == 0);
    CHECK_EQ(v1.total, 1);

    /* The same bytes again: no answer, counted, no second job. */
    CHECK_EQ(raw_req(a->n.url, frame, len, 1000, reply, sizeof(reply), &rlen),
             0);
    REQUIRE(a_view(a->c, &v2) == 0);
    printf("# api socket: replayed %llu -> %llu, jobs %llu -> %llu\n",
           (unsigned long long)v1.replayed, (unsigned long long)v2.replayed,
           (unsigned long long)v1.total, (unsigned long long)v2.total);
    CHECK_EQ(v2.replayed, v1.replayed + 1);
    CHECK_EQ(v2.total, 1);

    /* A node's Steal on the peer socket (a queue with nothing ready, so
     * nothing is lent), then the same bytes again. */
    REQUIRE(role_key(key_path, KEYS_ROLE_NODE, &k) == 0);
    {
        static const char *none[] = {"nothing-here"};
        struct msg         s = steal_msg("replayer");

        s.u.steal.queues = none;
        len = seal(&k, KEYS_ROLE_NODE, &s, frame, sizeof(frame));
        REQUIRE(len > 0);
        CHECK_EQ(raw_req(a->n.peer_url, frame, len, 3000, reply, sizeof(reply),
                         &rlen),
                 1);
    }
    memset(&got, 0, sizeof(got));
    REQUIRE_EQ(open_reply(&k, KEYS_ROLE_NODE, reply, rlen, &got), CADRE_OK);
    CHECK_EQ(got.kind, MSG_STEAL_REPLY);
    if (got.kind == MSG_STEAL_REPLY)
        CHECK_EQ(got.u.steal_reply.records_n, 0);
    msg_free(&got);
    CHECK_EQ(
        raw_req(a->n.peer_url, frame, len, 1000, reply, sizeof(reply), &rlen),
        0);
    REQUIRE(a_view(a->c, &v3) == 0);
    printf("# peer socket: replayed %llu -> %llu\n",
           (unsigned long long)v2.replayed, (unsigned long long)v3.replayed);
    CHECK_EQ(v3.replayed, v2.replayed + 1);
    CHECK_EQ(v3.total, 1);
    CHECK_EQ(v3.lent, 0);
    keys_wipe(&k);
    CHECK_EQ(member_stop(a), 0);
}

/* ---- a thief and a victim killed mid-transfer ------------------------ */

TEST(thief_and_victim_killed_mid_transfer_lose_nothing)
{
    enum { JOBS = 1000, KILL_THIEF_AT = 100, KILL_VICTIM_AT = 400 };
    static cadre_job_id ids[JOBS];
    char                ledger[PATH_MAX + 16];
    struct member      *a = &nodes[0], *b = &nodes[1];
    struct ledger      *l = NULL;
    struct ledger_check chk;
    uint64_t            t0, until, done[2], pending, failed;
    uint64_t            b_killed_at_ms;
    size_t              lines = 0;
    struct home_view    home;

    REQUIRE(cluster_dir() == 0);
    snprintf(ledger, sizeof(ledger), "%s/ledger", base);
    /* A holds the jobs and has no workers: every job runs on B, stolen. */
    REQUIRE(member_start(a, "A", "0", NULL, key_path) == 0);
    for (int i = 0; i < JOBS; i++)
        cd_id_new(&ids[i], cd_now_ms());
    REQUIRE_EQ(dispatch_ledger(a->c, ledger, ids, JOBS), JOBS);
    t0 = cd_mono_ms();
    REQUIRE(member_start(b, "B", S(WORKERS), a->n.peer_url, key_path) == 0);

    /* The thief dies with adopted jobs reserved and maybe a steal or a
     * settle in flight. */
    until = cd_mono_ms() + 30000;
    while ((lines = ledger_lines_now(ledger)) < KILL_THIEF_AT &&
           cd_mono_ms() < until)
        cd_sleep_ms(10);
    printf("# killing the thief B at %zu ledger lines\n", lines);
    CHECK(lines >= KILL_THIEF_AT);
    CHECK_EQ(member_kill9(b), -9);
    b_killed_at_ms = cd_now_ms();
    REQUIRE(member_boot(b) == 0);

    /* The victim dies with loans on disk, some maybe not settled yet. */
    until = cd_mono_ms() + 30000;
    while ((lines = ledger_lines_now(ledger)) < KILL_VICTIM_AT &&
           cd_mono_ms() < until)
        cd_sleep_ms(10);
    printf("# killing the victim A at %zu ledger lines\n", lines);
    CHECK(lines >= KILL_VICTIM_AT);
    CHECK(lines < JOBS);
    CHECK_EQ(member_kill9(a), -9);
    /* Its ports change (port 0): it finds B through B's peer url. */
    snprintf(a->seed, sizeof(a->seed), "%s", b->n.peer_url);
    REQUIRE(member_boot(a) == 0);

    CHECK(drain(ledger, ids, JOBS, 2, DRAIN_MS) == 0);
    printf("# drained in %llu ms\n", (unsigned long long)(cd_mono_ms() - t0));
    CHECK(wait_alive(2, 1, 15000) == 0);
    print_nodes("after", 2, done, &pending, &failed);
    CHECK_EQ(pending, 0);
    CHECK_EQ(failed, 0);
    CHECK_EQ(done[0], 0); /* A has no workers */
    REQUIRE_EQ(ledger_read(ledger, &l), CADRE_OK);
    ledger_check(l, ids, JOBS, &chk);
    ledger_check_print("thief and victim kill -9", &chk);
    printf("# duplicates=%zu (bound %d: two kills)\n", chk.duplicates,
           2 * DUP_BOUND_PER_KILL);
    CHECK_EQ(chk.missing, 0);
    CHECK_EQ(chk.unexpected, 0);
    CHECK_EQ(ledger_bad_lines(l), 0);
    CHECK(chk.duplicates <= 2 * DUP_BOUND_PER_KILL);
    ledger_free(l);
    /* All ran on B; A (restarted) hears of them: pending only for notices
     * lost with the killed thief, none for jobs run after its restart. */
    home_outcomes(a->c, ids, JOBS, 5000, ledger, b_killed_at_ms, &home);
    printf("# outcomes at A: done=%zu pending=%zu (ran after the thief's "
           "kill: %zu) other=%zu\n",
           home.done, home.pending, home.late, home.other);
    CHECK_EQ(home.other, 0);
    CHECK_EQ(home.late, 0);
    CHECK(home.pending <= (size_t)DUP_BOUND_PER_KILL);
    CHECK_EQ(member_stop(a), 0);
    CHECK_EQ(member_stop(b), 0);
}

int
main(void)
{
    TAP_RUN(T(three_nodes_share_jobs_and_a_killed_node_loses_none),
            T(a_run_through_b_is_spread_over_the_cluster),
            T(another_key_cannot_join_dispatch_fetch_or_steal),
            T(a_replayed_frame_is_dropped),
            T(thief_and_victim_killed_mid_transfer_lose_nothing));
}
