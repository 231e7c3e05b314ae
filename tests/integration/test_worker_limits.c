/* test_worker_limits.c: a `cadre worker` started by hand against a real
 * node stops cleanly at its limits (--stop-when-empty, --max-jobs,
 * --max-time, --memory), after finishing its current job, and what it did
 * not run stays queued. */
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;
static cadre_client    *client;

static int
setup(int jobs)
{
    cadre_client_opts o;
    char              err[256];
    cadre_job_id      id;

    memset(&node, 0, sizeof(node));
    if (node_start(&node, tap_tmpdir(), NULL) != CADRE_OK)
        return -1;
    node_client_opts(&node, &o);
    if (cadre_client_open(&o, &client, err, sizeof(err)) != CADRE_OK)
        return -1;
    for (int i = 0; i < jobs; i++)
        if (cadre_dispatch(client, "echo", "x", 1, NULL, &id) != CADRE_OK)
            return -1;
    return 0;
}

static void
teardown(void)
{
    cadre_client_close(client);
    client = NULL;
    CHECK_EQ(node_stop(&node), 0);
}

/* Runs `cadre worker` with the node's key and the demo plugin plus flags;
 * returns its exit code. */
static int
run_worker(const char *f1, const char *v1, const char *f2, const char *v2)
{
    char          *argv[16];
    int            a = 0, code = -1;
    char           err[4096] = "";
    struct proc_io io = {
        .err = err, .err_len = sizeof(err), .timeout_ms = 20000};

    argv[a++] = (char *)proc_cadre_bin();
    argv[a++] = "worker";
    argv[a++] = "--connect";
    argv[a++] = node.url;
    argv[a++] = "--key-file";
    argv[a++] = node.key_file;
    argv[a++] = "--plugin";
    argv[a++] = (char *)proc_demo_plugin();
    argv[a++] = "--sleep";
    argv[a++] = "200";
    if (f1 != NULL)
        argv[a++] = (char *)f1;
    if (v1 != NULL)
        argv[a++] = (char *)v1;
    if (f2 != NULL)
        argv[a++] = (char *)f2;
    if (v2 != NULL)
        argv[a++] = (char *)v2;
    argv[a] = NULL;
    if (proc_run(argv, &io, &code) != CADRE_OK)
        return -100;
    return code;
}

static void
counts(uint64_t *ready, uint64_t *done)
{
    cadre_status st;

    *ready = *done = 0;
    if (cadre_status_get(client, &st) != CADRE_OK)
        return;
    for (size_t i = 0; i < st.queues_n; i++) {
        *ready += st.queues[i].ready;
        *done += st.queues[i].done;
    }
    cadre_status_fini(&st);
}

TEST(stop_when_empty_runs_everything_then_exits)
{
    uint64_t ready, done;

    REQUIRE(setup(5) == 0);
    CHECK_EQ(run_worker("--stop-when-empty", NULL, NULL, NULL), 0);
    counts(&ready, &done);
    CHECK_EQ(done, 5);
    CHECK_EQ(ready, 0);
    teardown();
}

TEST(max_jobs_leaves_the_rest_queued)
{
    uint64_t ready, done;

    REQUIRE(setup(5) == 0);
    CHECK_EQ(run_worker("--max-jobs", "2", "--prefetch", "8"), 0);
    counts(&ready, &done);
    CHECK_EQ(done, 2);
    CHECK_EQ(ready, 3); /* prefetched but not started: given back */
    teardown();
}

TEST(max_time_stops_an_idle_worker)
{
    uint64_t t0;

    REQUIRE(setup(0) == 0);
    t0 = cd_mono_ms();
    CHECK_EQ(run_worker("--max-time", "1", NULL, NULL), 0);
    CHECK(cd_mono_ms() - t0 >= 1000);
    CHECK(cd_mono_ms() - t0 < 5000);
    teardown();
}

TEST(memory_limit_stops_the_worker)
{
    uint64_t ready, done;

    REQUIRE(setup(3) == 0);
    /* 1 MiB is below any process's RSS: it stops at its first check. */
    CHECK_EQ(run_worker("--memory", "1", NULL, NULL), 0);
    counts(&ready, &done);
    CHECK(done <= 1);
    CHECK_EQ(ready + done, 3);
    teardown();
}

TEST(bad_limit_values_are_usage_errors)
{
    REQUIRE(setup(0) == 0);
    CHECK_EQ(run_worker("--max-time", "soon", NULL, NULL), 2);
    CHECK_EQ(run_worker("--memory", "-5", NULL, NULL), 2);
    teardown();
}

/* --tries: jobs that set no tries of their own get the worker's. */
TEST(worker_tries_apply_to_jobs_without_their_own)
{
    cadre_job_opts own = {.tries = 2};
    cadre_job_id   a, b;
    cadre_outcome  o;

    REQUIRE(setup(0) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "fail", "x", 1, NULL, &a), CADRE_OK);
    REQUIRE_EQ(cadre_dispatch(client, "fail", "y", 1, &own, &b), CADRE_OK);
    CHECK_EQ(run_worker("--tries", "3", "--stop-when-empty", NULL), 0);
    REQUIRE_EQ(cadre_wait(client, &a, 1, 5000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 3);
    cadre_outcome_fini(&o);
    REQUIRE_EQ(cadre_wait(client, &b, 1, 5000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 2); /* the job's own tries win */
    cadre_outcome_fini(&o);
    teardown();
}

int
main(void)
{
    TAP_RUN(T(stop_when_empty_runs_everything_then_exits),
            T(max_jobs_leaves_the_rest_queued),
            T(max_time_stops_an_idle_worker), T(memory_limit_stops_the_worker),
            T(bad_limit_values_are_usage_errors),
            T(worker_tries_apply_to_jobs_without_their_own));
}
