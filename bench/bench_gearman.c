/* bench_gearman.c: the gearmand side of the run() rows of bench/compare.sh.
 * Gearman's foreground tasks (gearman_client_add_task, then one
 * gearman_client_run_tasks) against workers whose function "echo" returns
 * the payload, measuring the workloads of bench_cadre's run modes and
 * printing one machine-readable line per figure:
 *
 *   gearman run1 n=10000 p50_us=280 p99_us=900 mean_us=300 max_us=2000
 *   gearman runN tasks=1000 reps=5 wall_ms=45.1 best_ms=44.0
 *   gearman runs8 threads=8 tasks=100 runs=1234 secs=5.00 runs_per_s=246.8
 *       tasks_per_s=24680
 *
 * Usage: bench_gearman HOST PORT N MODE [CLIENTS [WORKERS]]
 *   workers  N threads, each with its own gearman_worker_st registering
 *            "echo"; runs until killed (compare.sh starts and stops it).
 *   run1     N sequential one-task runs on one client: latency of each,
 *            from add_task to run_tasks returning (p50, p99).
 *   runN     one run of N tasks (add all, then run_tasks once), BENCH_REPS
 *            times (default 5): wall time, median and best.
 *   runs8    CLIENTS threads (default 8), each with its own client, each
 *            issuing runs of N tasks for BENCH_SECONDS (default 5) or until
 *            BENCH_MAX_RUNS runs in all (default: no limit): runs/s.
 * The run modes first wait (up to 15 s) until gearmand reports WORKERS
 * (default 2) workers for "echo", then do an untimed warm-up run. Payloads
 * are 16 bytes, as in the other benches; each result is checked to be the
 * payload. It does not start gearmand: compare.sh does. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgearman/gearman.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PAYLOAD "0123456789abcdef"
#define BENCH_PAYLOAD_LEN (sizeof(BENCH_PAYLOAD) - 1)
#define BENCH_FUNCTION "echo"
#define BENCH_MAX_CLIENTS 64
#define BENCH_MAX_WORKERS 64
#define BENCH_WORKERS_WAIT_S 15.0
#define BENCH_TIMEOUT_MS 120000
#define BENCH_WARMUP 100

static const char *gm_host;
static in_port_t   gm_port;
static const char *gm_port_s;

static void
gm_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench_gearman: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double
gm_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
gm_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static long
gm_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    char       *end;
    long        n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0)
        gm_die("%s=%s: not a count", name, v);
    return n;
}

/* ---- workers ---------------------------------------------------------- */

/* echo: the result is the payload (libgearman frees it). */
static void *
gm_echo(gearman_job_st *job, void *context, size_t *result_size,
        gearman_return_t *ret_ptr)
{
    size_t n = gearman_job_workload_size(job);
    void  *r = malloc(n > 0 ? n : 1);

    (void)context;
    if (r == NULL) {
        *ret_ptr = GEARMAN_WORK_FAIL;
        return NULL;
    }
    memcpy(r, gearman_job_workload(job), n);
    *result_size = n;
    *ret_ptr = GEARMAN_SUCCESS;
    return r;
}

static void *
gm_worker_main(void *arg)
{
    gearman_worker_st *w = gearman_worker_create(NULL);
    int                failures = 0;

    (void)arg;
    if (w == NULL)
        gm_die("gearman_worker_create failed");
    if (gearman_worker_add_server(w, gm_host, gm_port) != GEARMAN_SUCCESS)
        gm_die("worker add_server: %s", gearman_worker_error(w));
    if (gearman_worker_add_function(w, BENCH_FUNCTION, 0, gm_echo, NULL) !=
        GEARMAN_SUCCESS)
        gm_die("worker add_function: %s", gearman_worker_error(w));
    /* gearmand gone for ~10 s: give up rather than spin. */
    while (failures < 100) {
        gearman_return_t rc = gearman_worker_work(w);
        if (rc == GEARMAN_SUCCESS) {
            failures = 0;
            continue;
        }
        if (++failures == 1)
            fprintf(stderr, "bench_gearman: worker: %s\n",
                    gearman_worker_error(w));
        gm_sleep_ms(100);
    }
    gm_die("worker: gearmand unreachable: %s", gearman_worker_error(w));
    return NULL;
}

static void
gm_workers(long n)
{
    pthread_t t[BENCH_MAX_WORKERS];

    if (n > BENCH_MAX_WORKERS)
        gm_die("at most %d workers", BENCH_MAX_WORKERS);
    for (long i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, gm_worker_main, NULL) != 0)
            gm_die("pthread_create failed");
    printf("gearman workers n=%ld ready pid=%d\n", n, (int)getpid());
    for (long i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

/* ---- admin: wait for the workers -------------------------------------- */

static int
gm_admin_connect(void)
{
    struct addrinfo hints = {0}, *res, *ai;
    int             fd = -1, rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(gm_host, gm_port_s, &hints, &res);
    if (rc != 0)
        gm_die("resolve %s:%s: %s", gm_host, gm_port_s, gai_strerror(rc));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Workers gearmand reports for "echo" (admin "status": one line per
 * function, FUNCTION\tQUEUED\tRUNNING\tWORKERS, then "."), -1 if it does not
 * answer. */
static long
gm_admin_workers(void)
{
    char    buf[8192], *line, *save = NULL;
    size_t  len = 0;
    long    workers = 0;
    int     fd = gm_admin_connect();
    ssize_t n;

    if (fd < 0)
        return -1;
    if (send(fd, "status\n", 7, MSG_NOSIGNAL) != 7) {
        close(fd);
        return -1;
    }
    for (;;) {
        n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strcmp(buf, ".\n") == 0 || strstr(buf, "\n.\n") != NULL ||
            len == sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    for (line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[256];
        long queued, running, avail;
        if (sscanf(line, "%255[^\t]\t%ld\t%ld\t%ld", name, &queued, &running,
                   &avail) == 4 &&
            strcmp(name, BENCH_FUNCTION) == 0)
            workers = avail;
    }
    return workers;
}

static void
gm_wait_workers(long want)
{
    double deadline = gm_now_s() + BENCH_WORKERS_WAIT_S;
    long   have;

    for (;;) {
        have = gm_admin_workers();
        if (have >= want)
            return;
        if (gm_now_s() > deadline)
            gm_die("%ld of %ld workers for \"%s\" after %.0f s", have, want,
                   BENCH_FUNCTION, BENCH_WORKERS_WAIT_S);
        gm_sleep_ms(50);
    }
}

/* ---- clients ---------------------------------------------------------- */

/* The tasks of one run and, per task, whether its result was the payload
 * (set by gm_complete: libgearman hands a foreground task's result only to
 * the complete callback). */
struct gm_batch {
    gearman_task_st **tasks;
    unsigned char    *ok;
    size_t            n;
};

static gearman_return_t
gm_complete(gearman_task_st *task)
{
    unsigned char *ok = gearman_task_context(task);

    *ok =
        gearman_task_data_size(task) == BENCH_PAYLOAD_LEN &&
        memcmp(gearman_task_data(task), BENCH_PAYLOAD, BENCH_PAYLOAD_LEN) == 0;
    return GEARMAN_SUCCESS;
}

static gearman_client_st *
gm_client(void)
{
    gearman_client_st *c = gearman_client_create(NULL);

    if (c == NULL)
        gm_die("gearman_client_create failed");
    if (gearman_client_add_server(c, gm_host, gm_port) != GEARMAN_SUCCESS)
        gm_die("client add_server: %s", gearman_client_error(c));
    gearman_client_set_timeout(c, BENCH_TIMEOUT_MS);
    gearman_client_set_complete_fn(c, gm_complete);
    return c;
}

static void
gm_batch_init(struct gm_batch *b, size_t n)
{
    b->n = n;
    b->tasks = calloc(n, sizeof(*b->tasks));
    b->ok = calloc(n, 1);
    if (b->tasks == NULL || b->ok == NULL)
        gm_die("out of memory");
}

static void
gm_batch_fini(struct gm_batch *b)
{
    free(b->tasks);
    free(b->ok);
}

/* One foreground run of b->n echo tasks: add them all, run_tasks once,
 * check every result is the payload, free the tasks. Returns the seconds
 * from the first add to run_tasks returning. */
static double
gm_run(gearman_client_st *c, struct gm_batch *b)
{
    gearman_return_t rc;
    double           t0 = gm_now_s(), t1;

    memset(b->ok, 0, b->n);
    for (size_t i = 0; i < b->n; i++) {
        b->tasks[i] =
            gearman_client_add_task(c, NULL, &b->ok[i], BENCH_FUNCTION, NULL,
                                    BENCH_PAYLOAD, BENCH_PAYLOAD_LEN, &rc);
        if (b->tasks[i] == NULL || rc != GEARMAN_SUCCESS)
            gm_die("add_task: %s", gearman_client_error(c));
    }
    rc = gearman_client_run_tasks(c);
    t1 = gm_now_s();
    if (rc != GEARMAN_SUCCESS)
        gm_die("run_tasks: %s", gearman_client_error(c));
    for (size_t i = 0; i < b->n; i++) {
        if (gearman_task_return(b->tasks[i]) != GEARMAN_SUCCESS || !b->ok[i])
            gm_die("task %zu of %zu: %s%s", i, b->n,
                   gearman_strerror(gearman_task_return(b->tasks[i])),
                   b->ok[i] ? "" : ", result is not the payload");
        gearman_task_free(b->tasks[i]);
    }
    return t1 - t0;
}

static int
gm_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The value at percentile p of sorted v[n] (nearest rank). */
static double
gm_pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);

    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

static void
gm_bench_run1(long n)
{
    gearman_client_st *c = gm_client();
    struct gm_batch    b;
    double            *lat = calloc((size_t)n, sizeof(double)), sum = 0;

    if (lat == NULL)
        gm_die("out of memory");
    gm_batch_init(&b, 1);
    for (int i = 0; i < BENCH_WARMUP; i++)
        gm_run(c, &b);
    for (long i = 0; i < n; i++) {
        lat[i] = gm_run(c, &b);
        sum += lat[i];
    }
    qsort(lat, (size_t)n, sizeof(double), gm_cmp_double);
    printf("gearman run1 n=%ld p50_us=%.0f p99_us=%.0f mean_us=%.0f "
           "max_us=%.0f\n",
           n, gm_pct(lat, (size_t)n, 50) * 1e6,
           gm_pct(lat, (size_t)n, 99) * 1e6, sum / (double)n * 1e6,
           lat[n - 1] * 1e6);
    free(lat);
    gm_batch_fini(&b);
    gearman_client_free(c);
}

static void
gm_bench_runN(long n)
{
    gearman_client_st *c = gm_client();
    struct gm_batch    b;
    long               reps = gm_env_long("BENCH_REPS", 5);
    double            *wall;

    if (reps < 1)
        reps = 1;
    wall = calloc((size_t)reps, sizeof(double));
    if (wall == NULL)
        gm_die("out of memory");
    gm_batch_init(&b, (size_t)n);
    gm_run(c, &b); /* warm-up */
    for (long r = 0; r < reps; r++)
        wall[r] = gm_run(c, &b);
    qsort(wall, (size_t)reps, sizeof(double), gm_cmp_double);
    printf("gearman runN tasks=%ld reps=%ld wall_ms=%.1f best_ms=%.1f\n", n,
           reps, gm_pct(wall, (size_t)reps, 50) * 1e3, wall[0] * 1e3);
    free(wall);
    gm_batch_fini(&b);
    gearman_client_free(c);
}

struct gm_runner {
    pthread_t          thread;
    long               tasks, runs;
    pthread_barrier_t *start;
};

static atomic_bool gm_stop;
static atomic_long gm_runs_left;

static void *
gm_runner_main(void *arg)
{
    struct gm_runner  *r = arg;
    gearman_client_st *c = gm_client();
    struct gm_batch    b;

    gm_batch_init(&b, (size_t)r->tasks);
    gm_run(c, &b); /* warm-up: connects; not timed */
    pthread_barrier_wait(r->start);
    while (!atomic_load(&gm_stop) && atomic_fetch_sub(&gm_runs_left, 1) > 0) {
        gm_run(c, &b);
        r->runs++;
    }
    gm_batch_fini(&b);
    gearman_client_free(c);
    return NULL;
}

static void
gm_bench_runs(long n, int threads)
{
    struct gm_runner  r[BENCH_MAX_CLIENTS];
    pthread_barrier_t start;
    long              secs = gm_env_long("BENCH_SECONDS", 5);
    long              max_runs = gm_env_long("BENCH_MAX_RUNS", 0);
    long              runs = 0;
    double            t0, t1, deadline;

    atomic_store(&gm_runs_left, max_runs > 0 ? max_runs : LONG_MAX);
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        r[i] = (struct gm_runner){.tasks = n, .start = &start};
        if (pthread_create(&r[i].thread, NULL, gm_runner_main, &r[i]) != 0)
            gm_die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    t0 = gm_now_s();
    deadline = t0 + (double)secs;
    while (gm_now_s() < deadline && atomic_load(&gm_runs_left) > 0)
        gm_sleep_ms(5);
    atomic_store(&gm_stop, true);
    for (int i = 0; i < threads; i++) {
        pthread_join(r[i].thread, NULL);
        runs += r[i].runs;
    }
    t1 = gm_now_s();
    pthread_barrier_destroy(&start);
    printf("gearman runs8 threads=%d tasks=%ld runs=%ld secs=%.2f "
           "runs_per_s=%.1f tasks_per_s=%.0f\n",
           threads, n, runs, t1 - t0, (double)runs / (t1 - t0),
           (double)(runs * n) / (t1 - t0));
}

static void
gm_usage(void)
{
    fprintf(stderr, "usage: bench_gearman HOST PORT N "
                    "workers|run1|runN|runs8 [CLIENTS [WORKERS]]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    long        n, port;
    int         clients, workers;
    const char *mode;
    char       *end;

    if (argc < 5 || argc > 7)
        gm_usage();
    gm_host = argv[1];
    gm_port_s = argv[2];
    port = strtol(argv[2], &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        gm_usage();
    gm_port = (in_port_t)port;
    n = strtol(argv[3], &end, 10);
    if (*end != '\0' || n <= 0)
        gm_usage();
    mode = argv[4];
    clients = argc >= 6 ? atoi(argv[5]) : 8;
    workers = argc >= 7 ? atoi(argv[6]) : 2;
    if (clients < 1 || clients > BENCH_MAX_CLIENTS || workers < 1)
        gm_usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "workers") == 0) {
        gm_workers(n);
        return 0;
    }
    if (strcmp(mode, "run1") != 0 && strcmp(mode, "runN") != 0 &&
        strcmp(mode, "runs8") != 0)
        gm_usage();
    gm_wait_workers(workers);
    if (strcmp(mode, "run1") == 0)
        gm_bench_run1(n);
    else if (strcmp(mode, "runN") == 0)
        gm_bench_runN(n);
    else
        gm_bench_runs(n, clients);
    return 0;
}
