/* test_cluster_run.c: what a caller sees across a cluster. A run through a
 * node with no workers of its own is spread over its peers, and when one of
 * them is SIGKILLed mid-run its tasks are handed out again and every task
 * still succeeds before the deadline; jobs dispatched to a node with no
 * workers are stolen by a peer, and waiting for them at the node they were
 * dispatched to gets their results (outcomes come home). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define FAST "--heartbeat-ms", "100", "--suspect-ms", "300", "--dead-ms", "1000"

static char key_path[PATH_MAX + 16];

/* Starts node id in base/id with workers supervised workers; seed is a
 * peer url to join through (NULL: none). */
static int
start(struct node_proc *n, const char *base, const char *id,
      const char *workers, const char *seed)
{
    char        dir[PATH_MAX + 32];
    const char *plugin = proc_demo_plugin();
    char       *args[] = {"--node-id", (char *)id,      "--key-file", key_path,
                          "--workers", (char *)workers, "--plugin",   (char *)plugin,
                          FAST,        "--peer",        (char *)seed, NULL};

    if (seed == NULL)
        args[sizeof(args) / sizeof(args[0]) - 3] = NULL;
    snprintf(dir, sizeof(dir), "%s/%s", base, id);
    memset(n, 0, sizeof(*n));
    return node_startv(n, dir, NULL, args);
}

static cadre_client *
client_of(const struct node_proc *n)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    node_client_opts(n, &o);
    o.key_file = key_path;
    o.timeout_ms = 30000;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* Members node sees alive (not counting itself). */
static uint32_t
alive(cadre_client *c)
{
    cadre_status st;
    uint32_t     n;

    if (cadre_status_get(c, &st) != CADRE_OK)
        return 0;
    n = st.members_alive;
    cadre_status_fini(&st);
    return n;
}

static int
wait_alive(cadre_client *c, uint32_t want)
{
    for (int i = 0; i < 100; i++) {
        if (alive(c) >= want)
            return 0;
        cd_sleep_ms(50);
    }
    return -1;
}

struct killer {
    pid_t    pid;
    unsigned after_ms;
};

static void *
kill_later(void *arg)
{
    struct killer *k = arg;

    cd_sleep_ms(k->after_ms);
    kill(k->pid, SIGKILL);
    return NULL;
}

TEST(a_peer_killed_mid_run_loses_no_task)
{
    enum { N = 40 };
    const char      *base = tap_tmpdir();
    struct node_proc a, b, c;
    cadre_client    *cb;
    cadre_task_spec  t[N];
    cadre_run_result r[N];
    cadre_run_opts   o = {.deadline_ms = 20000};
    cadre_status     st;
    struct killer    k;
    pthread_t        th;
    uint64_t         t0;
    size_t           ok = 0;

    snprintf(key_path, sizeof(key_path), "%s/cluster.key", base);
    REQUIRE_EQ(node_keygen(key_path), CADRE_OK);
    REQUIRE_EQ(start(&b, base, "b", "0", NULL), CADRE_OK);
    REQUIRE_EQ(start(&a, base, "a", "2", b.peer_url), CADRE_OK);
    REQUIRE_EQ(start(&c, base, "c", "2", b.peer_url), CADRE_OK);
    REQUIRE((cb = client_of(&b)) != NULL);
    REQUIRE_EQ(wait_alive(cb, 2), 0);
    cd_sleep_ms(300); /* heartbeats with the peers' free slots */

    for (int i = 0; i < N; i++)
        t[i] = (cadre_task_spec){
            .task = "sleep", .payload = "150", .payload_len = 3};
    /* b has no workers: every task runs on a or c. c dies with tasks. */
    k = (struct killer){.pid = c.pid, .after_ms = 250};
    REQUIRE_EQ(pthread_create(&th, NULL, kill_later, &k), 0);
    t0 = cd_mono_ms();
    REQUIRE_EQ(cadre_run(cb, t, N, &o, r), CADRE_OK);
    pthread_join(th, NULL);
    for (int i = 0; i < N; i++)
        ok += r[i].status == CADRE_RUN_OK && r[i].result_len > 0 &&
              strstr((const char *)r[i].result, "slept") != NULL;
    CHECK_EQ(ok, N);
    CHECK(cd_mono_ms() - t0 < o.deadline_ms);
    REQUIRE_EQ(cadre_status_get(cb, &st), CADRE_OK);
    printf("# run of %d through b: %llu ms, %llu tasks sent to peers in %llu "
           "sub-runs (more than %d: c's were sent again)\n",
           N, (unsigned long long)(cd_mono_ms() - t0),
           (unsigned long long)st.subrun_tasks, (unsigned long long)st.subruns,
           N);
    CHECK(st.subrun_tasks > N); /* c's unfinished tasks went out again */
    cadre_status_fini(&st);
    cadre_run_results_free(r, N);
    cadre_client_close(cb);
    node_stop(&a);
    node_stop(&b);
    node_stop(&c);
}

TEST(waiting_at_the_origin_sees_stolen_jobs_finish)
{
    enum { N = 300 };
    const char      *base = tap_tmpdir();
    struct node_proc a, b;
    cadre_client    *ca, *cb;
    cadre_job_id     ids[N];
    cadre_outcome    out[N];
    cadre_status     st;
    size_t           done = 0, good = 0;

    snprintf(key_path, sizeof(key_path), "%s/cluster.key", base);
    REQUIRE_EQ(node_keygen(key_path), CADRE_OK);
    REQUIRE_EQ(start(&a, base, "a", "0", NULL), CADRE_OK);
    REQUIRE_EQ(start(&b, base, "b", "2", a.peer_url), CADRE_OK);
    REQUIRE((ca = client_of(&a)) != NULL);
    REQUIRE((cb = client_of(&b)) != NULL);
    REQUIRE_EQ(wait_alive(ca, 1), 0);

    for (int i = 0; i < N; i++)
        REQUIRE_EQ(cadre_dispatch(ca, "echo", "home", 4, NULL, &ids[i]),
                   CADRE_OK);
    /* a has no workers: b steals them all; the outcomes come home to a. */
    REQUIRE_EQ(cadre_wait(ca, ids, N, 30000, out), CADRE_OK);
    for (int i = 0; i < N; i++) {
        done += out[i].status == CADRE_DONE;
        good += out[i].result_len == 4 && memcmp(out[i].result, "home", 4) == 0;
        cadre_outcome_fini(&out[i]);
    }
    CHECK_EQ(done, N);
    CHECK_EQ(good, N);
    REQUIRE_EQ(cadre_status_get(cb, &st), CADRE_OK);
    CHECK_EQ(st.jobs_stolen, N);
    cadre_status_fini(&st);

    /* A failure comes home as a failure, with its error. */
    REQUIRE_EQ(cadre_dispatch(ca, "fail", "boom", 4, NULL, &ids[0]), CADRE_OK);
    REQUIRE_EQ(cadre_wait(ca, ids, 1, 30000, out), CADRE_OK);
    CHECK_EQ(out[0].status, CADRE_FAILED);
    CHECK(out[0].error != NULL && strstr(out[0].error, "boom") != NULL);
    cadre_outcome_fini(&out[0]);
    cadre_client_close(ca);
    cadre_client_close(cb);
    node_stop(&a);
    node_stop(&b);
}

int
main(void)
{
    TAP_RUN(T(a_peer_killed_mid_run_loses_no_task),
            T(waiting_at_the_origin_sees_stolen_jobs_finish));
}
