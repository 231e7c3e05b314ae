/* test_coord.c: the cluster primitives (cadre_lock_*, cadre_throttle,
 * cadre_funnel_*) across three real voters that also know each other as
 * peers (so followers can forward to the leader): 8 threads on 3 nodes
 * never hold one lock at once and see fencing tokens only increase; a
 * throttle across 3 nodes passes at most limit per window touched; a lock
 * whose holder's node (a follower, then the leader) is SIGKILLed stays held
 * until its ttl and its next token is greater; a node without --voters, a
 * voter without a quorum and bad inputs answer with clear errors. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

struct cluster {
    const char      *base;
    char             key_path[PATH_MAX + 16];
    char             voters[512];
    char             addrs[N][64];
    struct node_proc ns[N];
    int              live[N];
};

/* Starts voter i, joining through seed (a peer url; NULL: none). */
static int
start(struct cluster *cl, int i, const char *seed)
{
    char  dir[PATH_MAX + 32];
    char *args[] = {"--node-id",
                    (char *)ids[i],
                    "--key-file",
                    cl->key_path,
                    "--voters",
                    cl->voters,
                    "--raft-listen",
                    cl->addrs[i],
                    FAST,
                    RAFT,
                    "--workers",
                    "0",
                    seed ? "--peer" : NULL,
                    (char *)seed,
                    NULL};

    snprintf(dir, sizeof(dir), "%s/%s", cl->base, ids[i]);
    memset(&cl->ns[i], 0, sizeof(cl->ns[i]));
    if (node_startv(&cl->ns[i], dir, NULL, args) != CADRE_OK)
        return -1;
    cl->live[i] = 1;
    return 0;
}

static cadre_client *
client_of(const struct node_proc *n, const char *key)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    node_client_opts(n, &o);
    o.key_file = key;
    o.timeout_ms = 3000;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* The ready leader as live node i sees it: its index, or -1. */
static int
leader_of(struct cluster *cl, int i)
{
    cadre_client     *c = client_of(&cl->ns[i], cl->key_path);
    cadre_leader_info li;
    int               who = -1;

    if (c != NULL && cadre_cluster_leader(c, &li) == CADRE_OK)
        for (int k = 0; k < N; k++)
            if (strcmp(li.leader, ids[k]) == 0)
                who = k;
    cadre_client_close(c);
    return who;
}

/* Waits until every live node can take a lock (the leader is ready and
 * known as a member everywhere): the cluster serves. */
static int
wait_serving(struct cluster *cl, unsigned within_ms)
{
    uint64_t end = cd_mono_ms() + within_ms;

    for (int i = 0; i < N; i++) {
        cadre_client *c;
        int           ok = 0;

        if (!cl->live[i])
            continue;
        c = client_of(&cl->ns[i], cl->key_path);
        while (!ok && c != NULL && cd_mono_ms() < end) {
            ok = cadre_throttle(c, "probe", 1000000, 1000, NULL) == CADRE_OK;
            if (!ok)
                cd_sleep_ms(20);
        }
        cadre_client_close(c);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Three voters, each listing the first as a peer. */
static int
cluster_start(struct cluster *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->base = tap_tmpdir();
    snprintf(cl->key_path, sizeof(cl->key_path), "%s/cluster.key", cl->base);
    if (node_keygen(cl->key_path) != CADRE_OK)
        return -1;
    for (int i = 0; i < N; i++) {
        int port = free_tcp_port();

        if (port <= 0)
            return -1;
        snprintf(cl->addrs[i], sizeof(cl->addrs[i]), "127.0.0.1:%d", port);
        snprintf(cl->voters + strlen(cl->voters),
                 sizeof(cl->voters) - strlen(cl->voters), "%s%s=%s",
                 i ? "," : "", ids[i], cl->addrs[i]);
    }
    if (start(cl, 0, NULL) != 0)
        return -1;
    for (int i = 1; i < N; i++)
        if (start(cl, i, cl->ns[0].peer_url) != 0)
            return -1;
    return wait_serving(cl, 10000);
}

static void
cluster_stop(struct cluster *cl)
{
    for (int i = 0; i < N; i++)
        if (cl->live[i])
            node_stop(&cl->ns[i]);
}

/* ---- (a) mutual exclusion ------------------------------------------------ */

struct mutex_run {
    struct cluster *cl;
    atomic_int      inside; /* holders in the critical section */
    atomic_int      overlaps, bad_tokens, errors, releases_failed;
    pthread_mutex_t mu;
    uint64_t        last_token;
    uint64_t        end_mono_ms;
};

struct mutex_thread {
    struct mutex_run *run;
    int               idx;
    int               acquired;
    pthread_t         tid;
};

static void
mutex_critical(struct mutex_run *run, uint64_t token)
{
    if (atomic_fetch_add(&run->inside, 1) != 0)
        atomic_fetch_add(&run->overlaps, 1);
    pthread_mutex_lock(&run->mu);
    /* Holders take turns, so the tokens they see must rise. */
    if (token <= run->last_token)
        atomic_fetch_add(&run->bad_tokens, 1);
    run->last_token = token;
    pthread_mutex_unlock(&run->mu);
    cd_sleep_ms(2);
    atomic_fetch_sub(&run->inside, 1);
}

static void *
mutex_main(void *arg)
{
    struct mutex_thread *t = arg;
    struct mutex_run    *run = t->run;
    cadre_client *c = client_of(&run->cl->ns[t->idx % N], run->cl->key_path);
    char          owner[CADRE_OWNER_LEN];
    uint64_t      token;

    if (c == NULL) {
        atomic_fetch_add(&run->errors, 1);
        return NULL;
    }
    while (cd_mono_ms() < run->end_mono_ms) {
        if (cadre_lock_acquire(c, "cs", NULL, 5000, 5000, &token, owner) !=
            CADRE_OK) {
            fprintf(stderr, "thread %d: %s\n", t->idx, cadre_client_errmsg(c));
            atomic_fetch_add(&run->errors, 1);
            continue;
        }
        t->acquired++;
        mutex_critical(run, token);
        if (cadre_lock_release(c, "cs", owner) != CADRE_OK) {
            fprintf(stderr, "thread %d release: %s\n", t->idx,
                    cadre_client_errmsg(c));
            atomic_fetch_add(&run->releases_failed, 1);
        }
    }
    cadre_client_close(c);
    return NULL;
}

static void
check_mutual_exclusion(struct cluster *cl)
{
    enum { THREADS = 8 };
    struct mutex_run    run = {.cl = cl};
    struct mutex_thread ts[THREADS];
    int                 total = 0, min = -1;

    pthread_mutex_init(&run.mu, NULL);
    run.end_mono_ms = cd_mono_ms() + 3000;
    for (int i = 0; i < THREADS; i++) {
        ts[i] = (struct mutex_thread){.run = &run, .idx = i};
        REQUIRE_EQ(pthread_create(&ts[i].tid, NULL, mutex_main, &ts[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(ts[i].tid, NULL);
        total += ts[i].acquired;
        min = min < 0 || ts[i].acquired < min ? ts[i].acquired : min;
    }
    printf("# mutual exclusion: %d acquires by %d threads on %d nodes in 3 s "
           "(fewest by one thread: %d), last token %llu\n",
           total, THREADS, N, min, (unsigned long long)run.last_token);
    CHECK_EQ(atomic_load(&run.overlaps), 0);
    CHECK_EQ(atomic_load(&run.bad_tokens), 0);
    CHECK_EQ(atomic_load(&run.errors), 0);
    CHECK_EQ(atomic_load(&run.releases_failed), 0);
    CHECK(total >= THREADS);
    pthread_mutex_destroy(&run.mu);
}

/* ---- (c) throttle -------------------------------------------------------- */

struct throttle_run {
    struct cluster *cl;
    atomic_int      ok, limited, errors;
    uint64_t        end_mono_ms;
};

struct throttle_thread {
    struct throttle_run *run;
    int                  idx;
    pthread_t            tid;
};

static void *
throttle_main(void *arg)
{
    struct throttle_thread *t = arg;
    struct throttle_run    *run = t->run;
    cadre_client *c = client_of(&run->cl->ns[t->idx % N], run->cl->key_path);
    uint64_t      retry;

    if (c == NULL) {
        atomic_fetch_add(&run->errors, 1);
        return NULL;
    }
    while (cd_mono_ms() < run->end_mono_ms) {
        int rc = cadre_throttle(c, "api", 5, 1000, &retry);

        if (rc == CADRE_OK)
            atomic_fetch_add(&run->ok, 1);
        else if (rc == CADRE_ELIMITED && retry > 0 && retry <= 1000)
            atomic_fetch_add(&run->limited, 1);
        else
            atomic_fetch_add(&run->errors, 1);
        cd_sleep_ms(5);
    }
    cadre_client_close(c);
    return NULL;
}

static void
check_throttle(struct cluster *cl)
{
    enum { THREADS = 4 };
    struct throttle_run    run = {.cl = cl};
    struct throttle_thread ts[THREADS];
    uint64_t               t0 = cd_now_ms(), t1;
    long long              windows;

    run.end_mono_ms = cd_mono_ms() + 5000;
    for (int i = 0; i < THREADS; i++) {
        ts[i] = (struct throttle_thread){.run = &run, .idx = i};
        REQUIRE_EQ(pthread_create(&ts[i].tid, NULL, throttle_main, &ts[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(ts[i].tid, NULL);
    t1 = cd_now_ms();
    /* Windows are multiples of 1000 ms on the leader's clock (this
     * machine's); a request can be stamped a little after we stop. */
    windows = (long long)((t1 + 100) / 1000 - t0 / 1000 + 1);
    printf("# throttle 5/s from %d clients on %d nodes for 5 s: %d allowed, "
           "%d limited, %lld windows touched\n",
           THREADS, N, atomic_load(&run.ok), atomic_load(&run.limited),
           windows);
    CHECK(atomic_load(&run.ok) > 0);
    CHECK(atomic_load(&run.ok) <= 5 * windows);
    CHECK(atomic_load(&run.limited) > 0);
    CHECK_EQ(atomic_load(&run.errors), 0);
}

/* ---- funnels, briefly ---------------------------------------------------- */

static void
check_funnel(struct cluster *cl)
{
    cadre_client *c0 = client_of(&cl->ns[0], cl->key_path);
    cadre_client *c1 = client_of(&cl->ns[1], cl->key_path);
    char          o[CADRE_OWNER_LEN];

    REQUIRE(c0 != NULL && c1 != NULL);
    CHECK_EQ(cadre_funnel_acquire(c0, "imports", "x", 2, 5000, 0, NULL),
             CADRE_OK);
    CHECK_EQ(cadre_funnel_acquire(c1, "imports", NULL, 2, 5000, 0, o),
             CADRE_OK);
    CHECK_EQ(strlen(o), 36); /* a uuid made for us */
    CHECK_EQ(cadre_funnel_acquire(c1, "imports", "z", 2, 5000, 0, NULL),
             CADRE_ELIMITED);
    CHECK_CONTAINS(cadre_client_errmsg(c1), "limit 2");
    CHECK_EQ(cadre_funnel_release(c0, "imports", "x"), CADRE_OK);
    CHECK_EQ(cadre_funnel_acquire(c1, "imports", "z", 2, 5000, 100, NULL),
             CADRE_OK);
    CHECK_EQ(cadre_funnel_release(c1, "imports", "x"), CADRE_ENOTFOUND);
    CHECK_EQ(cadre_funnel_release(c1, "imports", o), CADRE_OK);
    CHECK_EQ(cadre_funnel_release(c1, "imports", "z"), CADRE_OK);
    cadre_client_close(c0);
    cadre_client_close(c1);
}

TEST(locks_exclude_and_throttles_limit_across_nodes)
{
    struct cluster cl;

    REQUIRE_EQ(cluster_start(&cl), 0);
    check_mutual_exclusion(&cl);
    check_throttle(&cl);
    check_funnel(&cl);
    cluster_stop(&cl);
}

/* ---- (b) a holder's node dies -------------------------------------------- */

/* Acquires key (ttl 2 s) through node x, SIGKILLs x, then from node y
 * checks the lock stays held until the ttl and is free after it, with a
 * greater token. */
static void
check_holder_node_killed(struct cluster *cl, int x, int y, const char *key)
{
    cadre_client *cx = client_of(&cl->ns[x], cl->key_path);
    cadre_client *cy = client_of(&cl->ns[y], cl->key_path);
    uint64_t      t0, tok1 = 0, tok2 = 0, early = 0, got_at;
    int           rc;

    REQUIRE(cx != NULL && cy != NULL);
    t0 = cd_now_ms();
    REQUIRE_EQ(cadre_lock_acquire(cx, key, "holder", 2000, 0, &tok1, NULL),
               CADRE_OK);
    cadre_client_close(cx);
    proc_kill(&cl->ns[x].p, SIGKILL);
    proc_wait_exit(&cl->ns[x].p, 5000, NULL);
    proc_fini(&cl->ns[x].p);
    cl->live[x] = 0;
    /* Before the ttl: held (or no leader during a failover), never ours. */
    while (cd_now_ms() < t0 + 1900) {
        rc = cadre_lock_acquire(cy, key, "next", 10000, 0, &tok2, NULL);
        if (rc == CADRE_OK)
            early++;
        else
            CHECK(rc == CADRE_EHELD || rc == CADRE_EBUSY ||
                  rc == CADRE_ETIMEDOUT);
        cd_sleep_ms(50);
    }
    CHECK_EQ(early, 0);
    rc = cadre_lock_acquire(cy, key, "next", 10000, 10000, &tok2, NULL);
    got_at = cd_now_ms();
    if (rc != CADRE_OK)
        fprintf(stderr, "after the ttl: %s\n", cadre_client_errmsg(cy));
    CHECK_EQ(rc, CADRE_OK);
    CHECK(got_at >= t0 + 2000);
    CHECK(tok2 > tok1);
    printf("# %s: held %llu ms after its holder's node died (ttl 2000), token "
           "%llu -> %llu\n",
           key, (unsigned long long)(got_at - t0), (unsigned long long)tok1,
           (unsigned long long)tok2);
    CHECK_EQ(cadre_lock_release(cy, key, "next"), CADRE_OK);
    cadre_client_close(cy);
}

TEST(a_lock_outlives_its_holders_node_until_the_ttl)
{
    struct cluster cl;
    int            leader, follower, other;

    REQUIRE_EQ(cluster_start(&cl), 0);
    leader = leader_of(&cl, 0);
    REQUIRE(leader >= 0);
    follower = (leader + 1) % N;
    other = (leader + 2) % N;
    /* Through a follower (it forwarded the acquire to the leader). */
    check_holder_node_killed(&cl, follower, other, "via-follower");
    REQUIRE_EQ(start(&cl, follower, cl.ns[leader].peer_url), 0);
    REQUIRE_EQ(wait_serving(&cl, 10000), 0);
    /* Through the leader: the survivors elect another, which knows. */
    leader = leader_of(&cl, other);
    REQUIRE(leader >= 0);
    check_holder_node_killed(&cl, leader, (leader + 1) % N, "via-leader");
    cluster_stop(&cl);
}

/* ---- (d) clear errors ---------------------------------------------------- */

static void
check_bad_inputs(cadre_client *c)
{
    char     big[CADRE_COORD_KEY_MAX + 2];
    uint64_t tok;

    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CHECK_EQ(cadre_lock_acquire(c, "", "o", 1000, 0, &tok, NULL), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "key must be 1 to 200 bytes");
    CHECK_EQ(cadre_lock_acquire(c, big, "o", 1000, 0, &tok, NULL),
             CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "got 201");
    CHECK_EQ(cadre_lock_acquire(c, "k", "o", 0, 0, &tok, NULL), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "ttl");
    CHECK_EQ(cadre_throttle(c, "k", 0, 1000, NULL), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "limit");
    CHECK_EQ(cadre_funnel_acquire(c, "k", "o", 5000, 1000, 0, NULL),
             CADRE_EINVAL);
    CHECK_EQ(cadre_lock_release(c, "k", NULL), CADRE_EINVAL);
    CHECK_EQ(cadre_lock_acquire(NULL, "k", "o", 1000, 0, &tok, NULL),
             CADRE_EINVAL);
}

TEST(clear_errors_without_voters_without_quorum_and_for_bad_input)
{
    const char      *base = tap_tmpdir();
    char             dir[PATH_MAX + 16], voters[256], one[64], key[PATH_MAX];
    struct node_proc plain, lonely, solo;
    cadre_client    *c;
    uint64_t         tok = 0;

    memset(&plain, 0, sizeof(plain));
    memset(&lonely, 0, sizeof(lonely));
    memset(&solo, 0, sizeof(solo));
    /* No --voters: the primitives say what they need. */
    snprintf(dir, sizeof(dir), "%s/plain", base);
    REQUIRE_EQ(node_start(&plain, dir, "--workers", "0", NULL), CADRE_OK);
    REQUIRE((c = client_of(&plain, plain.key_file)) != NULL);
    CHECK_EQ(cadre_lock_acquire(c, "k", "o", 1000, 0, &tok, NULL),
             CADRE_ECONFIG);
    CHECK_CONTAINS(cadre_client_errmsg(c), "need --voters");
    CHECK_EQ(cadre_throttle(c, "k", 1, 1000, NULL), CADRE_ECONFIG);
    check_bad_inputs(c); /* validated before anything else */
    cadre_client_close(c);
    node_stop(&plain);

    /* One voter of three, alone: no leader, and a blocked acquire gives up
     * after block_ms with that error. */
    snprintf(voters, sizeof(voters),
             "a=127.0.0.1:%d,b=127.0.0.1:%d,c=127.0.0.1:%d", free_tcp_port(),
             free_tcp_port(), free_tcp_port());
    snprintf(one, sizeof(one), "%s", strchr(voters, '=') + 1);
    one[strcspn(one, ",")] = '\0';
    snprintf(dir, sizeof(dir), "%s/lonely", base);
    REQUIRE_EQ(node_start(&lonely, dir, "--workers", "0", "--node-id", "a",
                          "--voters", voters, "--raft-listen", one, RAFT, NULL),
               CADRE_OK);
    REQUIRE((c = client_of(&lonely, lonely.key_file)) != NULL);
    {
        uint64_t t0 = cd_mono_ms();

        CHECK_EQ(cadre_lock_acquire(c, "k", "o", 1000, 300, &tok, NULL),
                 CADRE_EBUSY);
        CHECK(cd_mono_ms() - t0 >= 300);
    }
    CHECK_CONTAINS(cadre_client_errmsg(c), "no leader");
    CHECK_EQ(cadre_throttle(c, "k", 1, 1000, NULL), CADRE_EBUSY);
    cadre_client_close(c);
    node_stop(&lonely);

    /* A single voter leads alone: holders, releases, tokens. */
    snprintf(one, sizeof(one), "127.0.0.1:%d", free_tcp_port());
    snprintf(voters, sizeof(voters), "s=%s", one);
    snprintf(dir, sizeof(dir), "%s/solo", base);
    REQUIRE_EQ(node_start(&solo, dir, "--workers", "0", "--node-id", "s",
                          "--voters", voters, "--raft-listen", one, RAFT, NULL),
               CADRE_OK);
    snprintf(key, sizeof(key), "%s", solo.key_file);
    REQUIRE((c = client_of(&solo, key)) != NULL);
    {
        uint64_t t1 = 0, t2 = 0, end = cd_mono_ms() + 5000;
        int      rc;

        while ((rc = cadre_lock_acquire(c, "k", "o", 60000, 0, &t1, NULL)) ==
                   CADRE_EBUSY &&
               cd_mono_ms() < end)
            cd_sleep_ms(20);
        CHECK_EQ(rc, CADRE_OK);
        CHECK_EQ(cadre_lock_acquire(c, "k", "o", 60000, 0, &t2, NULL),
                 CADRE_OK);
        CHECK_EQ(t2, t1); /* the holder again: same token */
        CHECK_EQ(cadre_lock_acquire(c, "k", "p", 60000, 0, &t2, NULL),
                 CADRE_EHELD);
        CHECK_CONTAINS(cadre_client_errmsg(c), "held by o");
        CHECK_EQ(cadre_lock_release(c, "k", "p"), CADRE_ENOTFOUND);
        CHECK_EQ(cadre_lock_release(c, "k", "o"), CADRE_OK);
        CHECK_EQ(cadre_lock_acquire(c, "k", "p", 60000, 0, &t2, NULL),
                 CADRE_OK);
        CHECK(t2 > t1);
        check_bad_inputs(c);
    }
    cadre_client_close(c);
    node_stop(&solo);
}

int
main(void)
{
    TAP_RUN(T(locks_exclude_and_throttles_limit_across_nodes),
            T(a_lock_outlives_its_holders_node_until_the_ttl),
            T(clear_errors_without_voters_without_quorum_and_for_bad_input));
}
