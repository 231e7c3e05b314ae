/* test_node.c: one real `cadre node` with supervised workers running the
 * demo plugin, driven through libcadre and the CLI: outcomes, errors,
 * queue order, delays, retries, limits, status, graceful stop. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;
static cadre_client    *client;

/* Starts a node in a fresh temp dir with the demo plugin on N workers. */
static int
start(const char *workers, const char *queues, char *const more[])
{
    char             *args[32];
    int               a = 0;
    cadre_client_opts o;
    char              err[256];

    memset(&node, 0, sizeof(node));
    args[a++] = "--workers";
    args[a++] = (char *)workers;
    args[a++] = "--plugin";
    args[a++] = (char *)proc_demo_plugin();
    args[a++] = "--queue";
    args[a++] = (char *)queues;
    args[a++] = "--retry-after";
    args[a++] = "2000";
    for (int i = 0; more != NULL && more[i] != NULL; i++)
        args[a++] = more[i];
    args[a] = NULL;
    if (node_startv(&node, tap_tmpdir(), NULL, args) != CADRE_OK)
        return -1;
    node_client_opts(&node, &o);
    if (cadre_client_open(&o, &client, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    return 0;
}

static void
stop(void)
{
    cadre_client_close(client);
    client = NULL;
    CHECK_EQ(node_stop(&node), 0); /* SIGTERM: a clean exit */
}

/* Dispatches task(payload) and waits for its outcome. */
static int
run1(const char *task, const char *payload, const cadre_job_opts *opts,
     cadre_outcome *out, uint64_t wait_ms)
{
    cadre_job_id id;
    int rc = cadre_dispatch(client, task, payload, strlen(payload), opts, &id);

    if (rc != CADRE_OK) {
        fprintf(stderr, "dispatch: %s\n", cadre_client_errmsg(client));
        return rc;
    }
    return cadre_wait(client, &id, 1, wait_ms, out);
}

TEST(outcomes_come_back)
{
    cadre_outcome o;

    REQUIRE(start("2", "default", NULL) == 0);
    REQUIRE_EQ(run1("echo", "hello", NULL, &o, 10000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 1);
    CHECK_EQ(o.result_len, 5);
    CHECK(o.result && memcmp(o.result, "hello", 5) == 0);
    cadre_outcome_fini(&o);

    REQUIRE_EQ(run1("sha256", "abc", NULL, &o, 10000), CADRE_OK);
    CHECK_EQ(o.result_len, 64);
    CHECK(o.result && memcmp(o.result,
                             "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad",
                             64) == 0);
    cadre_outcome_fini(&o);

    REQUIRE_EQ(run1("fail", "card declined", NULL, &o, 10000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_STR(o.error_type, "DemoError");
    CHECK_STR(o.error, "card declined");
    cadre_outcome_fini(&o);

    /* Unknown task: failed with a clear message, not retried forever. */
    REQUIRE_EQ(run1("nope", "x", NULL, &o, 10000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 1);
    CHECK_STR(o.error, "no handler for task 'nope'");
    cadre_outcome_fini(&o);
    stop();
}

TEST(retries_with_backoff_then_fail)
{
    uint32_t       backoff[] = {0, 1};
    cadre_job_opts opts = {.tries = 3, .backoff_s = backoff, .backoff_n = 2};
    cadre_outcome  o;
    uint64_t       t0 = cd_mono_ms();

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(run1("fail", "boom", &opts, &o, 15000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 3);
    CHECK_STR(o.error, "boom");
    /* Backoff 0 s then 1 s: at least one second between first and last. */
    CHECK(cd_mono_ms() - t0 >= 1000);
    cadre_outcome_fini(&o);
    stop();
}

/* max_exceptions ends a job before its tries; retry_until bounds a job with
 * unlimited tries (tries 0). */
TEST(max_exceptions_and_retry_until)
{
    cadre_job_opts a = {.tries = 10, .max_exceptions = 2};
    uint32_t       every_s[] = {1};
    cadre_job_opts b = {.tries = 0, .backoff_s = every_s, .backoff_n = 1};
    cadre_outcome  o;
    uint64_t       t0;

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(run1("fail", "boom", &a, &o, 15000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 2);
    CHECK_STR(o.error_type, "MaxExceptionsExceeded");
    cadre_outcome_fini(&o);

    t0 = cd_mono_ms();
    b.retry_until_ms = cd_now_ms() + 1500;
    REQUIRE_EQ(run1("fail", "again", &b, &o, 15000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_STR(o.error_type, "RetryUntilExpired");
    CHECK(o.attempts >= 2 && o.attempts <= 3); /* 1 s apart, 1.5 s window */
    CHECK(cd_mono_ms() - t0 < 5000);
    cadre_outcome_fini(&o);
    stop();
}

TEST(delayed_job_waits_its_time)
{
    cadre_job_opts opts = {.delay_ms = 700};
    cadre_job_id   id;
    cadre_outcome  o;
    uint64_t       t0 = cd_mono_ms();

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "echo", "later", 5, &opts, &id),
               CADRE_OK);
    CHECK_EQ(cadre_wait(client, &id, 1, 200, &o), CADRE_ETIMEDOUT);
    CHECK_EQ(o.status, CADRE_PENDING);
    cadre_outcome_fini(&o);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 10000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK(cd_mono_ms() - t0 >= 700);
    cadre_outcome_fini(&o);
    stop();
}

/* A worker listing "payments,default" takes a payments job dispatched after
 * a backlog in default before the rest of that backlog. */
TEST(queues_are_served_in_the_workers_order)
{
    char          *more[] = {"--prefetch", "1", NULL};
    cadre_job_opts pay = {.queue = "payments"};
    cadre_job_id   backlog[6], urgent;
    cadre_outcome  o, last;

    REQUIRE(start("1", "payments,default", more) == 0);
    for (int i = 0; i < 6; i++)
        REQUIRE_EQ(cadre_dispatch(client, "sleep", "150", 3, NULL, &backlog[i]),
                   CADRE_OK);
    REQUIRE_EQ(cadre_dispatch(client, "echo", "now", 3, &pay, &urgent),
               CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, &urgent, 1, 10000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    /* When the urgent job is done, the last backlog job is not. */
    cadre_wait(client, &backlog[5], 1, 0, &last);
    CHECK_EQ(last.status, CADRE_PENDING);
    cadre_outcome_fini(&o);
    cadre_outcome_fini(&last);
    REQUIRE_EQ(cadre_wait(client, backlog, 1, 10000, &o), CADRE_OK);
    cadre_outcome_fini(&o);
    stop();
}

TEST(payload_over_the_limit_is_refused_clearly)
{
    char         *more[] = {"--max-payload", "1000", NULL};
    char          big[2000];
    cadre_job_id  id;
    cadre_status  st;
    cadre_outcome o;

    REQUIRE(start("1", "default", more) == 0);
    memset(big, 'x', sizeof(big));
    CHECK_EQ(cadre_dispatch(client, "echo", big, sizeof(big), NULL, &id),
             CADRE_ETOOBIG);
    CHECK_CONTAINS(cadre_client_errmsg(client), "max-payload");
    /* Nothing was stored, and the node still serves. */
    REQUIRE_EQ(cadre_status_get(client, &st), CADRE_OK);
    for (size_t i = 0; i < st.queues_n; i++)
        CHECK_EQ(st.queues[i].ready + st.queues[i].done, 0);
    cadre_status_fini(&st);
    REQUIRE_EQ(run1("echo", "small", NULL, &o, 10000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    cadre_outcome_fini(&o);
    stop();
}

TEST(timeout_not_below_retry_after_is_refused)
{
    cadre_job_opts opts = {.timeout_ms = 5000, .retry_after_ms = 5000};
    cadre_job_id   id;

    REQUIRE(start("1", "default", NULL) == 0);
    CHECK_EQ(cadre_dispatch(client, "echo", "x", 1, &opts, &id), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(client), "retry_after");
    stop();
}

TEST(status_counts_and_bulk)
{
    cadre_job_spec specs[50];
    cadre_job_id   ids[50];
    cadre_outcome  out[50];
    cadre_status   st;
    int            done = 0;

    REQUIRE(start("2", "default", NULL) == 0);
    for (int i = 0; i < 50; i++)
        specs[i] = (cadre_job_spec){"noop", "", 0, NULL};
    REQUIRE_EQ(cadre_dispatch_bulk(client, specs, 50, ids), CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, ids, 50, 15000, out), CADRE_OK);
    for (int i = 0; i < 50; i++) {
        done += out[i].status == CADRE_DONE;
        cadre_outcome_fini(&out[i]);
    }
    CHECK_EQ(done, 50);
    /* Both supervised workers are connected (one may have run all 50
     * jobs, so give the other a moment to send its first fetch). */
    for (int i = 0; i < 100; i++) {
        REQUIRE_EQ(cadre_status_get(client, &st), CADRE_OK);
        if (st.workers == 2)
            break;
        cadre_status_fini(&st);
        cd_sleep_ms(50);
    }
    REQUIRE_EQ(st.queues_n, 1);
    CHECK_STR(st.queues[0].name, "default");
    CHECK_EQ(st.queues[0].done, 50);
    CHECK_EQ(st.queues[0].ready, 0);
    CHECK_EQ(st.queues[0].reserved, 0);
    CHECK_EQ(st.workers, 2);
    cadre_status_fini(&st);
    stop();
}

TEST(second_node_on_same_data_dir_is_refused)
{
    char           out[256], err[1024];
    struct proc_io io = {.out = out,
                         .out_len = sizeof(out),
                         .err = err,
                         .err_len = sizeof(err),
                         .timeout_ms = 10000};
    int            code = -1;
    cadre_outcome  o;

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--data", node.data_dir,
                               "--listen", "tcp://127.0.0.1:0", NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_CONTAINS(err, "in use by another node");
    /* The first node is unharmed. */
    REQUIRE_EQ(run1("echo", "still here", NULL, &o, 10000), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    cadre_outcome_fini(&o);
    stop();
}

TEST(bad_flags_and_unwritable_data_dir)
{
    char           out[4096], err[4096];
    struct proc_io io = {.out = out,
                         .out_len = sizeof(out),
                         .err = err,
                         .err_len = sizeof(err),
                         .timeout_ms = 10000};
    int            code = -1;
    char           path[600];
    FILE          *f;

    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--bogus", NULL), CADRE_OK);
    CHECK_EQ(code, 2);
    CHECK_CONTAINS(err, "unknown flag '--bogus'");
    CHECK_CONTAINS(err, "usage: cadre node");
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--workers", "lots", NULL),
               CADRE_OK);
    CHECK_EQ(code, 2);
    CHECK_CONTAINS(err, "workers");
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "dispatch", NULL), CADRE_OK);
    CHECK_EQ(code, 2);
    CHECK_CONTAINS(err, "missing TASK");
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "frobnicate", NULL), CADRE_OK);
    CHECK_EQ(code, 2);
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "status", "--help", NULL), CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_CONTAINS(out, "usage: cadre status");

    /* A data dir that cannot be made (a file is in the way; root ignores
     * permission bits, so that is the portable way to fail). */
    snprintf(path, sizeof(path), "%s/file", tap_tmpdir());
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fclose(f);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "/data");
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--data", path, "--listen",
                               "tcp://127.0.0.1:0", NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_CONTAINS(err, "cannot create");
}

TEST(sigterm_lets_running_jobs_finish)
{
    cadre_job_id      id;
    cadre_outcome     o;
    int               status = -1;
    char              err[256];
    cadre_client_opts opts;

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "sleep", "800", 3, NULL, &id), CADRE_OK);
    cd_sleep_ms(300); /* the worker has it now */
    REQUIRE_EQ(proc_kill(&node.p, SIGTERM), CADRE_OK);
    REQUIRE_EQ(proc_wait_exit(&node.p, 15000, &status), CADRE_OK);
    CHECK_EQ(status, 0);
    cadre_client_close(client);
    client = NULL;
    /* Restarted on the same data dir, the job is done, not pending. */
    {
        char data[PATH_MAX];

        snprintf(data, sizeof(data), "%s", node.data_dir);
        memset(&node, 0, sizeof(node));
        REQUIRE_EQ(node_start(&node, data, NULL), CADRE_OK);
    }
    node_client_opts(&node, &opts);
    REQUIRE_EQ(cadre_client_open(&opts, &client, err, sizeof(err)), CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 1000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    cadre_outcome_fini(&o);
    stop();
}

/* A full store (a 1 MiB LMDB map stands in for a full disk): dispatch gets
 * a clear error, the node stays up, what was acknowledged before is intact
 * and still runs. */
TEST(full_store_refuses_clearly_and_keeps_what_it_had)
{
    char          *more[] = {"--map-size", "1", NULL};
    static char    payload[4000];
    cadre_job_spec specs[20];
    cadre_job_id   ids[20];
    cadre_status   st;
    uint64_t       acked = 0;
    int            rc = CADRE_OK;

    /* No workers: jobs stay ready, so the store fills. */
    REQUIRE(start("0", "default", more) == 0);
    memset(payload, 'p', sizeof(payload));
    for (int i = 0; i < 20; i++)
        specs[i] = (cadre_job_spec){"echo", payload, sizeof(payload), NULL};
    for (int round = 0; round < 100 && rc == CADRE_OK; round++) {
        rc = cadre_dispatch_bulk(client, specs, 20, ids);
        acked += rc == CADRE_OK ? 20 : 0;
    }
    CHECK_EQ(rc, CADRE_EFULL);
    CHECK_CONTAINS(cadre_client_errmsg(client), "MDB_MAP_FULL");
    CHECK(acked > 0);
    REQUIRE_EQ(cadre_status_get(client, &st), CADRE_OK);
    REQUIRE_EQ(st.queues_n, 1);
    CHECK_EQ(st.queues[0].ready, acked);
    cadre_status_fini(&st);
    stop();

    /* Given room (a larger map) and workers, every acknowledged job runs. */
    {
        char             *args[] = {"--map-size", "64",       "--workers",
                                    "1",          "--plugin", (char *)proc_demo_plugin(),
                                    NULL};
        char              data[PATH_MAX];
        cadre_client_opts o;
        char              err[256];
        uint64_t          done = 0;

        snprintf(data, sizeof(data), "%s", node.data_dir);
        memset(&node, 0, sizeof(node));
        REQUIRE_EQ(node_startv(&node, data, NULL, args), CADRE_OK);
        node_client_opts(&node, &o);
        REQUIRE_EQ(cadre_client_open(&o, &client, err, sizeof(err)), CADRE_OK);
        for (int i = 0; i < 200 && done < acked; i++) {
            cd_sleep_ms(50);
            REQUIRE_EQ(cadre_status_get(client, &st), CADRE_OK);
            done = st.queues_n ? st.queues[0].done : 0;
            cadre_status_fini(&st);
        }
        CHECK_EQ(done, acked);
        stop();
    }
}

static cadre_job_id long_wait_id;

static void *
long_wait(void *arg)
{
    cadre_outcome o;

    (void)arg;
    cadre_wait(client, &long_wait_id, 1, 3000, &o);
    cadre_outcome_fini(&o);
    return NULL;
}

/* A short wait parked after a long one still ends at its own deadline. */
TEST(waits_end_at_their_own_deadlines)
{
    cadre_job_opts opts = {.delay_ms = 60000};
    cadre_outcome  o;
    pthread_t      th;
    uint64_t       t0, took;

    REQUIRE(start("0", "default", NULL) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "echo", "x", 1, &opts, &long_wait_id),
               CADRE_OK);
    REQUIRE(pthread_create(&th, NULL, long_wait, NULL) == 0);
    cd_sleep_ms(100);
    t0 = cd_mono_ms();
    CHECK_EQ(cadre_wait(client, &long_wait_id, 1, 300, &o), CADRE_ETIMEDOUT);
    took = cd_mono_ms() - t0;
    CHECK_EQ(o.status, CADRE_PENDING);
    CHECK(took >= 290 && took < 1500);
    cadre_outcome_fini(&o);
    pthread_join(th, NULL);
    stop();
}

/* A wait on more jobs than one request may name (10,000) is split by the
 * client and still reports every job. */
TEST(wait_on_twelve_thousand_jobs)
{
    enum { N = 12000 };
    static cadre_job_spec specs[N];
    static cadre_job_id   ids[N];
    static cadre_outcome  out[N];
    int                   done = 0;

    REQUIRE(start("2", "default", NULL) == 0);
    for (int i = 0; i < N; i++)
        specs[i] = (cadre_job_spec){"noop", "", 0, NULL};
    for (int i = 0; i < N; i += 1000)
        REQUIRE_EQ(cadre_dispatch_bulk(client, specs + i, 1000, ids + i),
                   CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, ids, N, 60000, out), CADRE_OK);
    for (int i = 0; i < N; i++) {
        done += out[i].status == CADRE_DONE;
        cadre_outcome_fini(&out[i]);
    }
    CHECK_EQ(done, N);
    stop();
}

#define ASYNC_JOBS 3000

static int          async_rc[ASYNC_JOBS + 1];
static cadre_job_id async_ids[ASYNC_JOBS + 1];
static int          async_calls;

static void
async_cb(void *arg, int rc, const cadre_job_id *id)
{
    size_t i = (size_t)(uintptr_t)arg;

    async_rc[i] = rc;
    async_ids[i] = *id;
    async_calls++; /* one sender thread: no race */
}

/* Async dispatch: every job acknowledged once, in few commits; a bad job in
 * the middle is refused alone, the others are stored. */
TEST(async_dispatch_acks_each_job_and_refuses_only_bad_ones)
{
    char        *more[] = {"--max-payload", "1000", NULL};
    static char  big[2000];
    cadre_status st;
    int          ok = 0;

    REQUIRE(start("0", "default", more) == 0);
    for (size_t i = 0; i <= ASYNC_JOBS; i++) {
        int bad = i == ASYNC_JOBS / 2;

        async_rc[i] = -1;
        REQUIRE_EQ(cadre_dispatch_async(client, "echo", bad ? big : "x",
                                        bad ? sizeof(big) : 1, NULL, async_cb,
                                        (void *)(uintptr_t)i),
                   CADRE_OK);
    }
    REQUIRE_EQ(cadre_flush(client, 30000), CADRE_OK);
    CHECK_EQ(async_calls, ASYNC_JOBS + 1);
    for (size_t i = 0; i <= ASYNC_JOBS; i++)
        ok += async_rc[i] == CADRE_OK;
    CHECK_EQ(ok, ASYNC_JOBS);
    CHECK_EQ(async_rc[ASYNC_JOBS / 2], CADRE_ETOOBIG);
    CHECK(memcmp(&async_ids[0], &async_ids[1], sizeof(cadre_job_id)) != 0);
    REQUIRE_EQ(cadre_status_get(client, &st), CADRE_OK);
    REQUIRE_EQ(st.queues_n, 1);
    CHECK_EQ(st.queues[0].ready, ASYNC_JOBS);
    /* Batched: far fewer commits than jobs. */
    CHECK(st.commits < ASYNC_JOBS / 10);
    cadre_status_fini(&st);
    stop();
}

/* A worker SIGKILLed mid-job: the pool replaces it and the job runs again
 * after retry_after (2 s here), on the new worker. Only the test's own
 * node's children are signalled. */
TEST(killed_worker_is_replaced_and_its_job_reruns)
{
    cadre_job_opts opts = {.tries = 3};
    cadre_job_id   id;
    cadre_outcome  o;
    pid_t          before[4], after[4];
    int            nb, na = 0;
    uint64_t       t0;

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "sleep", "1500", 4, &opts, &id),
               CADRE_OK);
    cd_sleep_ms(400);
    nb = proc_children(node.pid, before, 4);
    REQUIRE_EQ(nb, 1);
    t0 = cd_mono_ms();
    REQUIRE(kill(before[0], SIGKILL) == 0);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 2);
    CHECK(cd_mono_ms() - t0 >= 1500); /* retry_after, then the sleep */
    cadre_outcome_fini(&o);
    for (int i = 0; i < 50 && na != 1; i++) {
        na = proc_children(node.pid, after, 4);
        cd_sleep_ms(100);
    }
    CHECK_EQ(na, 1);
    CHECK(after[0] != before[0]);
    stop();
}

int
main(void)
{
    TAP_RUN(T(outcomes_come_back), T(retries_with_backoff_then_fail),
            T(max_exceptions_and_retry_until), T(delayed_job_waits_its_time),
            T(queues_are_served_in_the_workers_order),
            T(payload_over_the_limit_is_refused_clearly),
            T(timeout_not_below_retry_after_is_refused),
            T(status_counts_and_bulk),
            T(second_node_on_same_data_dir_is_refused),
            T(bad_flags_and_unwritable_data_dir),
            T(sigterm_lets_running_jobs_finish),
            T(killed_worker_is_replaced_and_its_job_reruns),
            T(full_store_refuses_clearly_and_keeps_what_it_had),
            T(waits_end_at_their_own_deadlines),
            T(async_dispatch_acks_each_job_and_refuses_only_bad_ones),
            T(wait_on_twelve_thousand_jobs));
}
