/* test_middleware.c: job middleware declared at dispatch and run by real
 * workers (4 supervised, prefetch 1) of a node that leads alone (--voters
 * with itself): WithoutOverlapping makes four 300 ms jobs on one key run
 * one after another (without it they run at once); RateLimited starts at
 * most 2 per 1 s window; ThrottlesExceptions stops retrying a failing job
 * after its limit (without it the job burns through its tries) and holds
 * back other jobs of the key while the circuit is open; a middleware with
 * a key but no limit is refused at dispatch; without --voters a job with
 * middleware fails with a MiddlewareError instead of waiting forever. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define JOBS 4

static int
start_leader(struct node_proc *n, const char *dir)
{
    char port[64], voters[96];
    int  p = free_tcp_port();

    snprintf(port, sizeof(port), "127.0.0.1:%d", p);
    snprintf(voters, sizeof(voters), "s=127.0.0.1:%d", p);
    memset(n, 0, sizeof(*n));
    return node_start(n, dir, "--node-id", "s", "--voters", voters,
                      "--raft-listen", port, "--election-ms", "300",
                      "--raft-heartbeat-ms", "30", "--workers", "4",
                      "--prefetch", "1", "--plugin", proc_demo_plugin(), NULL);
}

static cadre_client *
client_of(const struct node_proc *n)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    node_client_opts(n, &o);
    o.timeout_ms = 5000;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* Until the node leads and its workers are up. */
static int
wait_ready(cadre_client *c)
{
    uint64_t     end = cd_mono_ms() + 10000;
    cadre_status st;

    while (cd_mono_ms() < end) {
        if (cadre_throttle(c, "probe", 1000000, 1000, NULL) == CADRE_OK &&
            cadre_status_get(c, &st) == CADRE_OK) {
            uint32_t w = st.workers;

            cadre_status_fini(&st);
            if (w >= 4)
                return 0;
        }
        cd_sleep_ms(20);
    }
    return -1;
}

/* Dispatches n jobs of task with opts and waits for them; returns the ms
 * from dispatch to the last outcome, or UINT64_MAX. statuses (n) receive
 * the outcomes' status. */
static uint64_t
run_jobs(cadre_client *c, const char *task, const char *payload, size_t n,
         const cadre_job_opts *o, uint64_t wait_ms, int *statuses)
{
    cadre_job_spec specs[16];
    cadre_job_id   ids[16];
    cadre_outcome  outs[16];
    uint64_t       t0 = cd_mono_ms(), ms;

    for (size_t i = 0; i < n; i++)
        specs[i] = (cadre_job_spec){task, payload, strlen(payload), o};
    if (cadre_dispatch_bulk(c, specs, n, ids) != CADRE_OK) {
        fprintf(stderr, "dispatch: %s\n", cadre_client_errmsg(c));
        return UINT64_MAX;
    }
    cadre_wait(c, ids, n, (uint32_t)wait_ms, outs);
    ms = cd_mono_ms() - t0;
    for (size_t i = 0; i < n; i++) {
        statuses[i] = outs[i].status;
        cadre_outcome_fini(&outs[i]);
    }
    return ms;
}

static int
count(const int *statuses, size_t n, int status)
{
    int k = 0;

    for (size_t i = 0; i < n; i++)
        k += statuses[i] == status;
    return k;
}

static void
check_without_overlapping(cadre_client *c)
{
    cadre_job_opts o = {.tries = 100};
    int            st[JOBS];
    uint64_t       ms;

    ms = run_jobs(c, "sleep", "300", JOBS, &o, 10000, st);
    printf("# 4 x sleep 300 ms on 4 workers: %llu ms\n",
           (unsigned long long)ms);
    CHECK_EQ(count(st, JOBS, CADRE_DONE), JOBS);
    CHECK(ms < 1100); /* they did run at once */
    o.without_overlapping = "ov";
    ms = run_jobs(c, "sleep", "300", JOBS, &o, 15000, st);
    printf("# ... without_overlapping: %llu ms\n", (unsigned long long)ms);
    CHECK_EQ(count(st, JOBS, CADRE_DONE), JOBS);
    CHECK(ms >= JOBS * 300 - 20);
}

/* The unix ms of each line of the demo ledger at path; returns how many. */
static size_t
ledger_times(const char *path, uint64_t *out, size_t cap)
{
    FILE  *f = fopen(path, "r");
    char   line[256];
    size_t n = 0;

    while (f != NULL && n < cap && fgets(line, sizeof(line), f) != NULL) {
        char               id[64];
        unsigned long long at = 0;
        unsigned           attempt, pid;

        if (sscanf(line, "%63s %u %u %llu", id, &attempt, &pid, &at) == 4)
            out[n++] = at;
    }
    if (f != NULL)
        fclose(f);
    return n;
}

static void
check_rate_limited(cadre_client *c, const char *dir)
{
    enum { N = 6 };
    cadre_job_opts o = {.tries = 100,
                        .rate_limited = "rl",
                        .rate_limit = 2,
                        .rate_per_ms = 1000};
    char           path[PATH_MAX + 16];
    uint64_t       at[16], lo = UINT64_MAX, hi = 0;
    int            st[N], worst = 0;
    size_t         n;

    snprintf(path, sizeof(path), "%s/ledger", dir);
    run_jobs(c, "ledger", path, N, &o, 15000, st);
    CHECK_EQ(count(st, N, CADRE_DONE), N);
    n = ledger_times(path, at, 16);
    CHECK_EQ(n, N); /* a held-back attempt never ran its handler */
    for (size_t i = 0; i < n; i++) {
        int in_window = 0;

        lo = at[i] < lo ? at[i] : lo;
        hi = at[i] > hi ? at[i] : hi;
        for (size_t k = 0; k < n; k++)
            in_window += at[k] / 1000 == at[i] / 1000;
        worst = in_window > worst ? in_window : worst;
    }
    printf("# 6 jobs rate_limited 2 per 1 s: first to last start %llu ms, at "
           "most %d starts in one window\n",
           (unsigned long long)(hi - lo), worst);
    CHECK(hi - lo >= 1000); /* 3 windows at least */
    /* Windows are the leader's (stamped before the handler starts): one
     * start may cross into the next second. */
    CHECK(worst <= 3);
}

static void
check_throttles_exceptions(cadre_client *c)
{
    cadre_job_opts o = {.tries = 100};
    int            st[1];

    /* Without it a failing job burns its 100 tries within a few s. */
    run_jobs(c, "fail", "boom", 1, &o, 5000, st);
    CHECK_EQ(st[0], CADRE_FAILED);
    /* With it: after 3 errors per hour the 4th releases it for the rest
     * of the window; it is still pending. (Windows are aligned to the
     * epoch: with a minute, a run across a minute's edge saw the circuit
     * close under it; an hour's edge is 60 times rarer, and avoided.) */
    o.throttles_exceptions = "ex";
    o.exc_limit = 3;
    o.exc_per_ms = 3600000;
    while (cd_now_ms() % o.exc_per_ms > o.exc_per_ms - 15000)
        cd_sleep_ms(500);
    run_jobs(c, "fail", "boom", 1, &o, 3000, st);
    CHECK_EQ(st[0], CADRE_PENDING);
    /* The circuit is open: a job of the same key that would succeed is
     * held back too; one of another key runs. */
    run_jobs(c, "echo", "hi", 1, &o, 2000, st);
    CHECK_EQ(st[0], CADRE_PENDING);
    o.throttles_exceptions = "other";
    run_jobs(c, "echo", "hi", 1, &o, 5000, st);
    CHECK_EQ(st[0], CADRE_DONE);
}

static void
check_refused(cadre_client *c)
{
    cadre_job_opts o = {.rate_limited = "rl"};
    cadre_job_id   id;
    char           big[256];

    CHECK_EQ(cadre_dispatch(c, "echo", "x", 1, &o, &id), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "rate_limited needs");
    o = (cadre_job_opts){.throttles_exceptions = "ex", .exc_limit = 1};
    CHECK_EQ(cadre_dispatch(c, "echo", "x", 1, &o, &id), CADRE_EINVAL);
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    o = (cadre_job_opts){.without_overlapping = big};
    CHECK_EQ(cadre_dispatch(c, "echo", "x", 1, &o, &id), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "longer than 190");
}

TEST(middleware_runs_in_the_worker)
{
    const char      *base = tap_tmpdir();
    char             dir[PATH_MAX + 16];
    struct node_proc n;
    cadre_client    *c;

    snprintf(dir, sizeof(dir), "%s/node", base);
    REQUIRE_EQ(start_leader(&n, dir), CADRE_OK);
    REQUIRE((c = client_of(&n)) != NULL);
    REQUIRE_EQ(wait_ready(c), 0);
    check_refused(c);
    check_without_overlapping(c);
    check_rate_limited(c, base);
    check_throttles_exceptions(c);
    cadre_client_close(c);
    /* Not checked: a single voter's graceful stop currently crashes in
     * libraft after its leadership transfer fails (node/leader.c). */
    node_stop(&n);
}

/* Without --voters the middleware cannot work and waiting will not help:
 * the job fails with a MiddlewareError saying so (no endless releases). */
TEST(middleware_without_voters_fails_the_job)
{
    const char      *base = tap_tmpdir();
    char             dir[PATH_MAX + 16];
    struct node_proc n;
    cadre_client    *c;
    cadre_job_opts   o = {.tries = 5, .without_overlapping = "ov"};
    cadre_job_id     id;
    cadre_outcome    out;

    snprintf(dir, sizeof(dir), "%s/node", base);
    memset(&n, 0, sizeof(n));
    REQUIRE_EQ(node_start(&n, dir, "--workers", "1", "--plugin",
                          proc_demo_plugin(), NULL),
               CADRE_OK);
    REQUIRE((c = client_of(&n)) != NULL);
    REQUIRE_EQ(cadre_dispatch(c, "echo", "x", 1, &o, &id), CADRE_OK);
    CHECK_EQ(cadre_wait(c, &id, 1, 10000, &out), CADRE_OK);
    CHECK_EQ(out.status, CADRE_FAILED);
    CHECK_STR(out.error_type ? out.error_type : "", "MiddlewareError");
    CHECK_CONTAINS(out.error ? out.error : "", "--voters");
    CHECK_EQ(out.attempts, 1);
    cadre_outcome_fini(&out);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&n), 0);
}

int
main(void)
{
    TAP_RUN(T(middleware_runs_in_the_worker),
            T(middleware_without_voters_fails_the_job));
}
