/* bench_cadre.c: the cadre side of bench/compare.sh. Runs the workloads of
 * bench_beanstalk.c through libcadre against a running node and prints one
 * machine-readable line per figure:
 *
 *   cadre dispatch c=8 jobs=20000 rate=12345 jobs_per_commit=7.9
 *   cadre bulk c=1 batch=100 jobs=20000 rate=12345 jobs_per_commit=100.0
 *   cadre e2e producers=1 workers=2 jobs=20000 rate=12345
 *
 * Usage: bench_cadre URL KEY_FILE N MODE [CLIENTS [WORKERS]]
 *   dispatch  CLIENTS threads (default 1), each with its own cadre_client,
 *             each dispatching N/CLIENTS jobs with cadre_dispatch (each call
 *             returns once the job is durable).
 *   bulk      likewise with cadre_dispatch_bulk, batches of 100.
 *   async     likewise with cadre_dispatch_async (the client batches what
 *             is queued while a request is in flight), then cadre_flush:
 *             the rate counts jobs acknowledged durable.
 *   e2e       CLIENTS producers dispatching N jobs as in dispatch while the
 *             node's WORKERS (default 2) supervised workers run them; rate
 *             from the first dispatch until the node's done counter shows
 *             them all (polled with cadre_status_get every 2 ms).
 *   e2e-async e2e with producers using cadre_dispatch_async.
 *   run1      N sequential one-task cadre_run calls of $BENCH_RUN_TASK
 *             (default "echo") on one client: latency of each (p50, p99).
 *   runN      one cadre_run of N tasks, BENCH_REPS times (default 5): wall
 *             time, median and best.
 *   runs8     CLIENTS threads (default 8) sharing one client, each issuing
 *             runs of N tasks for BENCH_SECONDS (default 5) or until
 *             BENCH_MAX_RUNS runs in all (default: no limit): runs/s.
 *             BENCH_CLIENT_PER_THREAD=1: one client per thread instead.
 *   The run modes first wait for WORKERS (default 2) workers on the node,
 *   then do an untimed warm-up run; every result is checked to be the
 *   payload. They print, like bench_gearman:
 *     cadre run1 n=10000 p50_us=120 p99_us=400 mean_us=130 max_us=900
 *     cadre runN tasks=1000 reps=5 wall_ms=20.1 best_ms=19.5
 *     cadre runs8 threads=8 clients=1 tasks=100 runs=1234 secs=5.00
 *         runs_per_s=246.8 tasks_per_s=24680
 * Jobs run the task $BENCH_TASK (default "noop", from the demo plugin) with
 * a 16-byte payload, as in bench_beanstalk. It does not start the node:
 * compare.sh does. With $BENCH_CLUSTER_URLS (the api urls of the other
 * nodes of URL's cluster), done counts and workers are summed over them all
 * (bench/cluster.sh). */
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cadre/cadre.h"

#define BENCH_BATCH 100
#define BENCH_PAYLOAD "0123456789abcdef"
#define BENCH_MAX_CLIENTS 64
#define BENCH_WORKERS_WAIT_S 15.0
#define BENCH_E2E_TIMEOUT_S 120.0
#define BENCH_RUN_DEADLINE_MS 120000
#define BENCH_RUN_WARMUP 100

static const char *bc_url, *bc_key_file, *bc_task;

static void
bc_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench_cadre: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double
bc_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static cadre_client *
bc_open(void)
{
    cadre_client_opts o = {0};
    cadre_client     *c = NULL;
    char              err[512] = "";
    int               rc;

    o.url = bc_url;
    o.key_file = bc_key_file;
    rc = cadre_client_open(&o, &c, err, sizeof(err));
    if (rc != CADRE_OK)
        bc_die("open %s: %s (%s)", bc_url, err, cadre_strerror(rc));
    return c;
}

static void
bc_dispatch_one(cadre_client *c)
{
    cadre_job_id id;
    int          rc;

    rc = cadre_dispatch(c, bc_task, BENCH_PAYLOAD, sizeof(BENCH_PAYLOAD) - 1,
                        NULL, &id);
    if (rc != CADRE_OK)
        bc_die("dispatch: %s (%s)", cadre_client_errmsg(c), cadre_strerror(rc));
}

static void
bc_dispatch_batch(cadre_client *c, size_t n)
{
    cadre_job_spec specs[BENCH_BATCH];
    cadre_job_id   ids[BENCH_BATCH];
    int            rc;

    for (size_t i = 0; i < n; i++) {
        specs[i] = (cadre_job_spec){.task = bc_task,
                                    .payload = BENCH_PAYLOAD,
                                    .payload_len = sizeof(BENCH_PAYLOAD) - 1};
    }
    rc = cadre_dispatch_bulk(c, specs, n, ids);
    if (rc != CADRE_OK)
        bc_die("dispatch_bulk: %s (%s)", cadre_client_errmsg(c),
               cadre_strerror(rc));
}

/* Adds one node's done and failed totals over all queues, and workers. */
static void
bc_node_totals(cadre_client *c, uint64_t *done, uint64_t *failed,
               uint32_t *workers)
{
    cadre_status s;
    int          rc;

    memset(&s, 0, sizeof(s));
    rc = cadre_status_get(c, &s);
    if (rc != CADRE_OK)
        bc_die("status: %s (%s)", cadre_client_errmsg(c), cadre_strerror(rc));
    for (size_t i = 0; i < s.queues_n; i++) {
        *done += s.queues[i].done;
        *failed += s.queues[i].failed;
    }
    *workers += s.workers;
    cadre_status_fini(&s);
}

/* The other nodes of a cluster ($BENCH_CLUSTER_URLS, space-separated, same
 * key): jobs dispatched to one node may run on any (work stealing), so
 * totals and workers are summed over all of them. Opened once. */
static cadre_client *bc_others[BENCH_MAX_CLIENTS];
static size_t        bc_others_n = (size_t)-1;

static void
bc_open_others(void)
{
    static char urls[4096];
    const char *env = getenv("BENCH_CLUSTER_URLS");
    const char *main_url = bc_url;
    char       *save = NULL;

    bc_others_n = 0;
    if (env == NULL)
        return;
    snprintf(urls, sizeof(urls), "%s", env);
    for (char *u = strtok_r(urls, " ", &save);
         u != NULL && bc_others_n < BENCH_MAX_CLIENTS;
         u = strtok_r(NULL, " ", &save)) {
        bc_url = u;
        bc_others[bc_others_n++] = bc_open();
    }
    bc_url = main_url;
}

/* Sums the done and failed totals (and workers) over the node and, if set,
 * the rest of its cluster. */
static void
bc_totals(cadre_client *c, uint64_t *done, uint64_t *failed, uint32_t *workers)
{
    uint32_t w = 0;

    if (bc_others_n == (size_t)-1)
        bc_open_others();
    *done = *failed = 0;
    bc_node_totals(c, done, failed, &w);
    for (size_t i = 0; i < bc_others_n; i++)
        bc_node_totals(bc_others[i], done, failed, &w);
    if (workers != NULL)
        *workers = w;
}

/* ---- producers -------------------------------------------------------- */

enum bc_mode { BC_SYNC, BC_BULK, BC_ASYNC };

static const char *const bc_mode_names[] = {"dispatch", "bulk", "async"};

struct bc_producer {
    pthread_t          thread;
    long               jobs;
    enum bc_mode       mode;
    pthread_barrier_t *start;
};

static atomic_long bc_async_errors;

static void
bc_async_cb(void *arg, int rc, const cadre_job_id *id)
{
    (void)arg;
    (void)id;
    if (rc != CADRE_OK)
        atomic_fetch_add(&bc_async_errors, 1);
}

static void
bc_dispatch_async(cadre_client *c, long n)
{
    for (long i = 0; i < n; i++)
        if (cadre_dispatch_async(c, bc_task, BENCH_PAYLOAD,
                                 sizeof(BENCH_PAYLOAD) - 1, NULL, bc_async_cb,
                                 NULL) != CADRE_OK)
            bc_die("dispatch_async: %s", cadre_client_errmsg(c));
    if (cadre_flush(c, 120000) != CADRE_OK)
        bc_die("flush: %s", cadre_client_errmsg(c));
    if (atomic_load(&bc_async_errors) != 0)
        bc_die("dispatch_async: %ld jobs refused",
               atomic_load(&bc_async_errors));
}

static void *
bc_producer_main(void *arg)
{
    struct bc_producer *p = arg;
    cadre_client       *c = bc_open();

    bc_dispatch_one(c); /* warm-up: connects; not timed */
    pthread_barrier_wait(p->start);
    if (p->mode == BC_ASYNC) {
        bc_dispatch_async(c, p->jobs);
    } else if (p->mode == BC_BULK) {
        for (long done = 0; done < p->jobs;) {
            long k =
                p->jobs - done < BENCH_BATCH ? p->jobs - done : BENCH_BATCH;
            bc_dispatch_batch(c, (size_t)k);
            done += k;
        }
    } else {
        for (long i = 0; i < p->jobs; i++)
            bc_dispatch_one(c);
    }
    cadre_client_close(c);
    return NULL;
}

static void
bc_producers_start(struct bc_producer *p, int clients, long n,
                   enum bc_mode mode, pthread_barrier_t *start)
{
    for (int i = 0; i < clients; i++) {
        p[i].jobs = n / clients + (i < n % clients ? 1 : 0);
        p[i].mode = mode;
        p[i].start = start;
        if (pthread_create(&p[i].thread, NULL, bc_producer_main, &p[i]) != 0)
            bc_die("pthread_create failed");
    }
}

/* The node's store commit counter (for jobs per commit: group commit). */
static uint64_t
bc_commits(cadre_client *c)
{
    cadre_status s;
    uint64_t     commits;
    int          rc;

    memset(&s, 0, sizeof(s));
    rc = cadre_status_get(c, &s);
    if (rc != CADRE_OK)
        bc_die("status: %s (%s)", cadre_client_errmsg(c), cadre_strerror(rc));
    commits = s.commits;
    cadre_status_fini(&s);
    return commits;
}

static void
bc_bench_dispatch(long n, int clients, enum bc_mode mode)
{
    struct bc_producer p[BENCH_MAX_CLIENTS];
    pthread_barrier_t  start;
    cadre_client      *c = bc_open();
    uint64_t           commits0, commits;
    double             t0, t1, per_commit;

    pthread_barrier_init(&start, NULL, (unsigned)clients + 1);
    bc_producers_start(p, clients, n, mode, &start);
    pthread_barrier_wait(&start);
    t0 = bc_now_s();
    commits0 = bc_commits(c);
    for (int i = 0; i < clients; i++)
        pthread_join(p[i].thread, NULL);
    t1 = bc_now_s();
    commits = bc_commits(c) - commits0;
    per_commit = commits > 0 ? (double)n / (double)commits : 0.0;
    pthread_barrier_destroy(&start);
    cadre_client_close(c);
    printf("cadre %s c=%d jobs=%ld rate=%.0f jobs_per_commit=%.1f\n",
           bc_mode_names[mode], clients, n, (double)n / (t1 - t0), per_commit);
}

static void
bc_bench_e2e(long n, int producers, int workers, enum bc_mode mode)
{
    struct bc_producer p[BENCH_MAX_CLIENTS];
    pthread_barrier_t  start;
    cadre_client      *c = bc_open();
    uint64_t           done0, failed0, done, failed;
    uint32_t           connected = 0;
    double             t0, t_end, deadline = bc_now_s() + BENCH_WORKERS_WAIT_S;

    /* Workers first: the run measures processing, not their start-up. */
    for (;;) {
        bc_totals(c, &done0, &failed0, &connected);
        if (connected >= (uint32_t)workers)
            break;
        if (bc_now_s() > deadline)
            bc_die("e2e: %u of %d workers connected after %.0f s", connected,
                   workers, BENCH_WORKERS_WAIT_S);
        bc_sleep_ms(50);
    }
    pthread_barrier_init(&start, NULL, (unsigned)producers + 1);
    bc_producers_start(p, producers, n, mode, &start);
    pthread_barrier_wait(&start);
    t0 = bc_now_s();
    deadline = t0 + BENCH_E2E_TIMEOUT_S;
    /* The producers' warm-up jobs count too. */
    for (;;) {
        bc_totals(c, &done, &failed, NULL);
        t_end = bc_now_s();
        if (failed > failed0)
            bc_die("e2e: %llu jobs failed (is task \"%s\" loaded?)",
                   (unsigned long long)(failed - failed0), bc_task);
        if (done - done0 >= (uint64_t)(n + producers))
            break;
        if (t_end > deadline)
            bc_die("e2e: %llu of %ld jobs done after %.0f s",
                   (unsigned long long)(done - done0), n + producers,
                   BENCH_E2E_TIMEOUT_S);
        bc_sleep_ms(2);
    }
    for (int i = 0; i < producers; i++)
        pthread_join(p[i].thread, NULL);
    pthread_barrier_destroy(&start);
    cadre_client_close(c);
    printf("cadre %s producers=%d workers=%d jobs=%ld rate=%.0f\n",
           mode == BC_ASYNC ? "e2e-async" : "e2e", producers, workers, n,
           (double)n / (t_end - t0));
}

/* ---- run(): fan-outs ------------------------------------------------- */

static const char *bc_run_task;

static long
bc_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    char       *end;
    long        n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0)
        bc_die("%s=%s: not a count", name, v);
    return n;
}

static void
bc_wait_workers(cadre_client *c, int workers)
{
    uint64_t done, failed;
    uint32_t connected = 0;
    double   deadline = bc_now_s() + BENCH_WORKERS_WAIT_S;

    for (;;) {
        bc_totals(c, &done, &failed, &connected);
        if (connected >= (uint32_t)workers)
            return;
        if (bc_now_s() > deadline)
            bc_die("run: %u of %d workers connected after %.0f s", connected,
                   workers, BENCH_WORKERS_WAIT_S);
        bc_sleep_ms(50);
    }
}

/* The tasks of one run and their outcomes. */
struct bc_run {
    cadre_task_spec  *tasks;
    cadre_run_result *results;
    size_t            n;
};

static void
bc_run_init(struct bc_run *r, size_t n)
{
    r->n = n;
    r->tasks = calloc(n, sizeof(*r->tasks));
    r->results = calloc(n, sizeof(*r->results));
    if (r->tasks == NULL || r->results == NULL)
        bc_die("out of memory");
    for (size_t i = 0; i < n; i++)
        r->tasks[i] =
            (cadre_task_spec){.task = bc_run_task,
                              .payload = BENCH_PAYLOAD,
                              .payload_len = sizeof(BENCH_PAYLOAD) - 1};
}

static void
bc_run_fini(struct bc_run *r)
{
    free(r->tasks);
    free(r->results);
}

/* One cadre_run of r->n tasks; checks every result is the payload. Returns
 * the seconds cadre_run took. */
static double
bc_run(cadre_client *c, struct bc_run *r)
{
    cadre_run_opts o = {.deadline_ms = BENCH_RUN_DEADLINE_MS};
    double         t0, t1;
    int            rc;

    t0 = bc_now_s();
    rc = cadre_run(c, r->tasks, r->n, &o, r->results);
    t1 = bc_now_s();
    if (rc != CADRE_OK && rc != CADRE_EHANDLER)
        bc_die("run of %zu: %s (%s)", r->n, cadre_client_errmsg(c),
               cadre_strerror(rc));
    for (size_t i = 0; i < r->n; i++) {
        const cadre_run_result *x = &r->results[i];
        if (x->status != CADRE_RUN_OK)
            bc_die("run of %zu: task %zu: status %d: %s%s%s", r->n, i,
                   x->status, x->error_type ? x->error_type : "",
                   x->error ? ": " : "", x->error ? x->error : "");
        if (x->result_len != sizeof(BENCH_PAYLOAD) - 1 ||
            memcmp(x->result, BENCH_PAYLOAD, x->result_len) != 0)
            bc_die("run of %zu: task %zu: result is not the payload "
                   "(is task \"%s\" an echo?)",
                   r->n, i, bc_run_task);
    }
    cadre_run_results_free(r->results, r->n);
    return t1 - t0;
}

static int
bc_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The value at percentile p of sorted v[n] (nearest rank). */
static double
bc_pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);

    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

static void
bc_bench_run1(long n, int workers)
{
    cadre_client *c = bc_open();
    struct bc_run r;
    double       *lat = calloc((size_t)n, sizeof(double)), sum = 0;

    if (lat == NULL)
        bc_die("out of memory");
    bc_wait_workers(c, workers);
    bc_run_init(&r, 1);
    for (int i = 0; i < BENCH_RUN_WARMUP; i++)
        bc_run(c, &r);
    for (long i = 0; i < n; i++) {
        lat[i] = bc_run(c, &r);
        sum += lat[i];
    }
    qsort(lat, (size_t)n, sizeof(double), bc_cmp_double);
    printf("cadre run1 n=%ld p50_us=%.0f p99_us=%.0f mean_us=%.0f "
           "max_us=%.0f\n",
           n, bc_pct(lat, (size_t)n, 50) * 1e6,
           bc_pct(lat, (size_t)n, 99) * 1e6, sum / (double)n * 1e6,
           lat[n - 1] * 1e6);
    free(lat);
    bc_run_fini(&r);
    cadre_client_close(c);
}

static void
bc_bench_runN(long n, int workers)
{
    cadre_client *c = bc_open();
    struct bc_run r;
    long          reps = bc_env_long("BENCH_REPS", 5);
    double       *wall;

    if (reps < 1)
        reps = 1;
    wall = calloc((size_t)reps, sizeof(double));
    if (wall == NULL)
        bc_die("out of memory");
    bc_wait_workers(c, workers);
    bc_run_init(&r, (size_t)n);
    bc_run(c, &r); /* warm-up */
    for (long i = 0; i < reps; i++)
        wall[i] = bc_run(c, &r);
    qsort(wall, (size_t)reps, sizeof(double), bc_cmp_double);
    printf("cadre runN tasks=%ld reps=%ld wall_ms=%.1f best_ms=%.1f\n", n, reps,
           bc_pct(wall, (size_t)reps, 50) * 1e3, wall[0] * 1e3);
    free(wall);
    bc_run_fini(&r);
    cadre_client_close(c);
}

struct bc_runner {
    pthread_t          thread;
    cadre_client      *shared; /* NULL: open its own */
    long               tasks, runs;
    pthread_barrier_t *start;
};

static atomic_bool bc_runs_stop;
static atomic_long bc_runs_left;

static void *
bc_runner_main(void *arg)
{
    struct bc_runner *p = arg;
    cadre_client     *c = p->shared != NULL ? p->shared : bc_open();
    struct bc_run     r;

    bc_run_init(&r, (size_t)p->tasks);
    bc_run(c, &r); /* warm-up: connects; not timed */
    pthread_barrier_wait(p->start);
    while (!atomic_load(&bc_runs_stop) &&
           atomic_fetch_sub(&bc_runs_left, 1) > 0) {
        bc_run(c, &r);
        p->runs++;
    }
    bc_run_fini(&r);
    if (p->shared == NULL)
        cadre_client_close(c);
    return NULL;
}

static void
bc_bench_runs(long n, int threads, int workers)
{
    struct bc_runner  p[BENCH_MAX_CLIENTS];
    pthread_barrier_t start;
    cadre_client     *c = bc_open();
    long              secs = bc_env_long("BENCH_SECONDS", 5);
    long              max_runs = bc_env_long("BENCH_MAX_RUNS", 0);
    bool              per_thread = bc_env_long("BENCH_CLIENT_PER_THREAD", 0);
    long              runs = 0;
    double            t0, t1, deadline;

    bc_wait_workers(c, workers);
    atomic_store(&bc_runs_left, max_runs > 0 ? max_runs : LONG_MAX);
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        p[i] = (struct bc_runner){
            .shared = per_thread ? NULL : c, .tasks = n, .start = &start};
        if (pthread_create(&p[i].thread, NULL, bc_runner_main, &p[i]) != 0)
            bc_die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    t0 = bc_now_s();
    deadline = t0 + (double)secs;
    while (bc_now_s() < deadline && atomic_load(&bc_runs_left) > 0)
        bc_sleep_ms(5);
    atomic_store(&bc_runs_stop, true);
    for (int i = 0; i < threads; i++) {
        pthread_join(p[i].thread, NULL);
        runs += p[i].runs;
    }
    t1 = bc_now_s();
    pthread_barrier_destroy(&start);
    cadre_client_close(c);
    printf("cadre runs8 threads=%d clients=%d tasks=%ld runs=%ld secs=%.2f "
           "runs_per_s=%.1f tasks_per_s=%.0f\n",
           threads, per_thread ? threads : 1, n, runs, t1 - t0,
           (double)runs / (t1 - t0), (double)(runs * n) / (t1 - t0));
}

static void
bc_usage(void)
{
    fprintf(stderr, "usage: bench_cadre URL KEY_FILE N "
                    "dispatch|bulk|async|e2e|e2e-async|run1|runN|runs8 "
                    "[CLIENTS [WORKERS]]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    long        n;
    int         clients, workers;
    const char *mode;
    char       *end;

    if (argc < 5 || argc > 7)
        bc_usage();
    bc_url = argv[1];
    bc_key_file = argv[2];
    n = strtol(argv[3], &end, 10);
    if (*end != '\0' || n <= 0)
        bc_usage();
    mode = argv[4];
    clients = argc >= 6 ? atoi(argv[5]) : strcmp(mode, "runs8") == 0 ? 8 : 1;
    workers = argc >= 7 ? atoi(argv[6]) : 2;
    if (clients < 1 || clients > BENCH_MAX_CLIENTS || workers < 1)
        bc_usage();
    bc_task = getenv("BENCH_TASK");
    if (bc_task == NULL || bc_task[0] == '\0')
        bc_task = "noop";
    bc_run_task = getenv("BENCH_RUN_TASK");
    if (bc_run_task == NULL || bc_run_task[0] == '\0')
        bc_run_task = "echo";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "dispatch") == 0)
        bc_bench_dispatch(n, clients, BC_SYNC);
    else if (strcmp(mode, "bulk") == 0)
        bc_bench_dispatch(n, clients, BC_BULK);
    else if (strcmp(mode, "async") == 0)
        bc_bench_dispatch(n, clients, BC_ASYNC);
    else if (strcmp(mode, "e2e") == 0)
        bc_bench_e2e(n, clients, workers, BC_SYNC);
    else if (strcmp(mode, "e2e-async") == 0)
        bc_bench_e2e(n, clients, workers, BC_ASYNC);
    else if (strcmp(mode, "run1") == 0)
        bc_bench_run1(n, workers);
    else if (strcmp(mode, "runN") == 0)
        bc_bench_runN(n, workers);
    else if (strcmp(mode, "runs8") == 0)
        bc_bench_runs(n, clients, workers);
    else
        bc_usage();
    return 0;
}
