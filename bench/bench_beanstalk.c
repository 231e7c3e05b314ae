/* bench_beanstalk.c: the peer side of bench/compare.sh. A minimal client of
 * the beanstalkd text protocol (use, watch, put, reserve, delete) that
 * measures the same workloads as bench_cadre.c and prints one
 * machine-readable line per figure:
 *
 *   beanstalk put c=1 jobs=20000 rate=12345
 *   beanstalk pipeline c=1 batch=100 jobs=20000 rate=12345
 *   beanstalk e2e producers=1 workers=2 jobs=20000 rate=12345
 *
 * Usage: bench_beanstalk HOST PORT N MODE [CLIENTS [WORKERS]]
 *   put       CLIENTS threads (default 1), each on its own connection, each
 *             putting N/CLIENTS jobs synchronously (wait for INSERTED).
 *   pipeline  one connection writing batches of 100 puts, then reading the
 *             100 replies (the nearest thing beanstalkd has to a bulk put).
 *   e2e       CLIENTS producers (default 1) putting N jobs as in put, while
 *             WORKERS (default 2) connections reserve and delete them;
 *             rate from the first put to the last delete.
 * Each run uses its own tube, so leftovers of other runs do not interfere.
 * It does not start beanstalkd: compare.sh does. */
#include <arpa/inet.h>
#include <errno.h>
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

#define BENCH_BATCH 100
#define BENCH_PAYLOAD "0123456789abcdef" /* 16 bytes, as in bench_cadre */
#define BENCH_MAX_CLIENTS 64

/* One connection with a read buffer. */
struct bs_conn {
    int    fd;
    char   buf[65536];
    size_t start, end;
};

static const char *bs_host, *bs_port;
static char        bs_tube[64];

static void
bs_die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "bench_beanstalk: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double
bs_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bs_connect(struct bs_conn *c)
{
    struct addrinfo hints = {0}, *res, *ai;
    int             one = 1, rc;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(bs_host, bs_port, &hints, &res);
    if (rc != 0)
        bs_die("resolve %s:%s: %s", bs_host, bs_port, gai_strerror(rc));
    c->fd = -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            continue;
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        bs_die("connect %s:%s: %s", bs_host, bs_port, strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->start = c->end = 0;
}

static void
bs_send(struct bs_conn *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bs_die("send: %s", strerror(errno));
        data += n;
        len -= (size_t)n;
    }
}

/* Reads one "\r\n"-terminated line into line (NUL-terminated, without
 * the terminator). */
static void
bs_read_line(struct bs_conn *c, char *line, size_t line_len)
{
    for (;;) {
        char *crlf = NULL;
        for (size_t i = c->start; i + 1 < c->end; i++) {
            if (c->buf[i] == '\r' && c->buf[i + 1] == '\n') {
                crlf = c->buf + i;
                break;
            }
        }
        if (crlf != NULL) {
            size_t n = (size_t)(crlf - (c->buf + c->start));
            if (n >= line_len)
                bs_die("reply line too long");
            memcpy(line, c->buf + c->start, n);
            line[n] = '\0';
            c->start += n + 2;
            return;
        }
        if (c->start > 0) {
            memmove(c->buf, c->buf + c->start, c->end - c->start);
            c->end -= c->start;
            c->start = 0;
        }
        if (c->end == sizeof(c->buf))
            bs_die("reply line too long");
        ssize_t n = recv(c->fd, c->buf + c->end, sizeof(c->buf) - c->end, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bs_die("recv: %s", n == 0 ? "connection closed" : strerror(errno));
        c->end += (size_t)n;
    }
}

/* Skips len bytes of job body plus its "\r\n". */
static void
bs_skip_body(struct bs_conn *c, size_t len)
{
    len += 2;
    while (len > 0) {
        size_t have = c->end - c->start;
        if (have == 0) {
            ssize_t n;
            c->start = c->end = 0;
            n = recv(c->fd, c->buf, sizeof(c->buf), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                bs_die("recv body: %s",
                       n == 0 ? "connection closed" : strerror(errno));
            c->end = (size_t)n;
            continue;
        }
        have = have < len ? have : len;
        c->start += have;
        len -= have;
    }
}

static void
bs_command(struct bs_conn *c, const char *cmd, const char *expect)
{
    char line[256];

    bs_send(c, cmd, strlen(cmd));
    bs_read_line(c, line, sizeof(line));
    if (strncmp(line, expect, strlen(expect)) != 0)
        bs_die("%.*s: unexpected reply \"%s\"", (int)strcspn(cmd, "\r"), cmd,
               line);
}

static void
bs_use(struct bs_conn *c)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "use %s\r\n", bs_tube);
    bs_command(c, cmd, "USING ");
}

static void
bs_watch(struct bs_conn *c)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "watch %s\r\n", bs_tube);
    bs_command(c, cmd, "WATCHING ");
    bs_command(c, "ignore default\r\n", "WATCHING ");
}

static size_t
bs_put_cmd(char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "put 1024 0 60 %zu\r\n%s\r\n",
                     sizeof(BENCH_PAYLOAD) - 1, BENCH_PAYLOAD);
    return (size_t)n;
}

static void
bs_put(struct bs_conn *c)
{
    char   cmd[128], line[64];
    size_t n = bs_put_cmd(cmd, sizeof(cmd));

    bs_send(c, cmd, n);
    bs_read_line(c, line, sizeof(line));
    if (strncmp(line, "INSERTED ", 9) != 0)
        bs_die("put: unexpected reply \"%s\"", line);
}

/* ---- put: c synchronous clients ------------------------------------- */

struct bs_putter {
    pthread_t          thread;
    long               jobs;
    pthread_barrier_t *start;
};

static void *
bs_putter_main(void *arg)
{
    struct bs_putter *w = arg;
    struct bs_conn   *c = malloc(sizeof(*c));

    if (c == NULL)
        bs_die("out of memory");
    bs_connect(c);
    bs_use(c);
    bs_put(c); /* warm-up, not timed */
    pthread_barrier_wait(w->start);
    for (long i = 0; i < w->jobs; i++)
        bs_put(c);
    close(c->fd);
    free(c);
    return NULL;
}

static void
bs_bench_put(long n, int clients)
{
    struct bs_putter  w[BENCH_MAX_CLIENTS];
    pthread_barrier_t start;
    double            t0, t1;
    long              total = 0;

    pthread_barrier_init(&start, NULL, (unsigned)clients + 1);
    for (int i = 0; i < clients; i++) {
        w[i].jobs = n / clients + (i < n % clients ? 1 : 0);
        w[i].start = &start;
        total += w[i].jobs;
        if (pthread_create(&w[i].thread, NULL, bs_putter_main, &w[i]) != 0)
            bs_die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    t0 = bs_now_s();
    for (int i = 0; i < clients; i++)
        pthread_join(w[i].thread, NULL);
    t1 = bs_now_s();
    pthread_barrier_destroy(&start);
    printf("beanstalk put c=%d jobs=%ld rate=%.0f\n", clients, total,
           (double)total / (t1 - t0));
}

/* ---- pipeline: batches of puts on one connection --------------------- */

static void
bs_bench_pipeline(long n)
{
    struct bs_conn *c = malloc(sizeof(*c));
    char            one[128], *batch, line[64];
    size_t          one_len = bs_put_cmd(one, sizeof(one));
    double          t0, t1;

    batch = malloc(one_len * BENCH_BATCH);
    if (c == NULL || batch == NULL)
        bs_die("out of memory");
    for (int i = 0; i < BENCH_BATCH; i++)
        memcpy(batch + (size_t)i * one_len, one, one_len);
    bs_connect(c);
    bs_use(c);
    bs_put(c);
    t0 = bs_now_s();
    for (long done = 0; done < n;) {
        long k = n - done < BENCH_BATCH ? n - done : BENCH_BATCH;
        bs_send(c, batch, (size_t)k * one_len);
        for (long i = 0; i < k; i++) {
            bs_read_line(c, line, sizeof(line));
            if (strncmp(line, "INSERTED ", 9) != 0)
                bs_die("put: unexpected reply \"%s\"", line);
        }
        done += k;
    }
    t1 = bs_now_s();
    printf("beanstalk pipeline c=1 batch=%d jobs=%ld rate=%.0f\n", BENCH_BATCH,
           n, (double)n / (t1 - t0));
    close(c->fd);
    free(c);
    free(batch);
}

/* ---- e2e: one producer, `workers` reserve+delete loops --------------- */

struct bs_e2e {
    long               n;
    atomic_long        deleted;
    pthread_barrier_t *start;
    double             last_delete_s; /* guarded by mu */
    pthread_mutex_t    mu;
};

static void *
bs_worker_main(void *arg)
{
    struct bs_e2e  *e = arg;
    struct bs_conn *c = malloc(sizeof(*c));
    char            line[128], cmd[64];

    if (c == NULL)
        bs_die("out of memory");
    bs_connect(c);
    bs_watch(c);
    pthread_barrier_wait(e->start);
    while (atomic_load(&e->deleted) < e->n) {
        unsigned long long id;
        size_t             len;

        bs_send(c, "reserve-with-timeout 1\r\n", 24);
        bs_read_line(c, line, sizeof(line));
        if (strcmp(line, "TIMED_OUT") == 0)
            continue;
        if (sscanf(line, "RESERVED %llu %zu", &id, &len) != 2)
            bs_die("reserve: unexpected reply \"%s\"", line);
        bs_skip_body(c, len);
        snprintf(cmd, sizeof(cmd), "delete %llu\r\n", id);
        bs_command(c, cmd, "DELETED");
        if (atomic_fetch_add(&e->deleted, 1) + 1 == e->n) {
            pthread_mutex_lock(&e->mu);
            e->last_delete_s = bs_now_s();
            pthread_mutex_unlock(&e->mu);
        }
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void
bs_bench_e2e(long n, int producers, int workers)
{
    struct bs_e2e     e = {.n = n};
    pthread_t         w[BENCH_MAX_CLIENTS];
    struct bs_putter  p[BENCH_MAX_CLIENTS];
    pthread_barrier_t start;
    double            t0;

    atomic_init(&e.deleted, 0);
    pthread_mutex_init(&e.mu, NULL);
    pthread_barrier_init(&start, NULL, (unsigned)(workers + producers) + 1);
    e.start = &start;
    /* The producers' warm-up puts are jobs too. */
    e.n = n + producers;
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&w[i], NULL, bs_worker_main, &e) != 0)
            bs_die("pthread_create failed");
    }
    for (int i = 0; i < producers; i++) {
        p[i].jobs = n / producers + (i < n % producers ? 1 : 0);
        p[i].start = &start;
        if (pthread_create(&p[i].thread, NULL, bs_putter_main, &p[i]) != 0)
            bs_die("pthread_create failed");
    }
    pthread_barrier_wait(&start);
    t0 = bs_now_s();
    for (int i = 0; i < producers; i++)
        pthread_join(p[i].thread, NULL);
    for (int i = 0; i < workers; i++)
        pthread_join(w[i], NULL);
    printf("beanstalk e2e producers=%d workers=%d jobs=%ld rate=%.0f\n",
           producers, workers, n, (double)n / (e.last_delete_s - t0));
    pthread_barrier_destroy(&start);
    pthread_mutex_destroy(&e.mu);
}

/* Prints a TCP port on 127.0.0.1 that was free a moment ago. */
static int
bs_free_port(void)
{
    struct sockaddr_in sa = {0};
    socklen_t          len = sizeof(sa);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        bs_die("free port: %s", strerror(errno));
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}

static void
bs_usage(void)
{
    fprintf(stderr, "usage: bench_beanstalk HOST PORT N put|pipeline|e2e "
                    "[CLIENTS [WORKERS]]\n"
                    "       bench_beanstalk freeport\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    long        n;
    int         clients, workers;
    const char *mode;
    char       *end;

    if (argc == 2 && strcmp(argv[1], "freeport") == 0)
        return bs_free_port();
    if (argc < 5 || argc > 7)
        bs_usage();
    bs_host = argv[1];
    bs_port = argv[2];
    n = strtol(argv[3], &end, 10);
    if (*end != '\0' || n <= 0)
        bs_usage();
    mode = argv[4];
    clients = argc >= 6 ? atoi(argv[5]) : 1;
    workers = argc >= 7 ? atoi(argv[6]) : 2;
    if (clients < 1 || clients > BENCH_MAX_CLIENTS || workers < 1 ||
        workers > BENCH_MAX_CLIENTS)
        bs_usage();
    snprintf(bs_tube, sizeof(bs_tube), "bench-%d-%s", (int)getpid(), mode);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "put") == 0)
        bs_bench_put(n, clients);
    else if (strcmp(mode, "pipeline") == 0)
        bs_bench_pipeline(n);
    else if (strcmp(mode, "e2e") == 0)
        bs_bench_e2e(n, clients, workers);
    else
        bs_usage();
    return 0;
}
