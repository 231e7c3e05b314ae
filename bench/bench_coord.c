/* bench_coord.c: the cluster primitives through libcadre against a running
 * cluster of voters (bench/coord.sh starts one). Prints one
 * machine-readable line per figure:
 *
 *   coord lock1 via=a n=2000 acquire_p50_us=.. acquire_p99_us=..
 *       release_p50_us=.. pairs_per_s=.. pair_p50_us=.. pair_p99_us=..
 *   coord lock8 clients=8 secs=5 pairs=.. acquire_p50_us=.. acquire_p99_us=..
 *       pairs_per_s=..
 *   coord throttle8 clients=8 secs=5 decisions=.. allowed=.. per_s=..
 *
 * Usage: bench_coord KEY_FILE PAIRS SECS NAME=URL [NAME=URL...]
 *   lock1      PAIRS acquire+release pairs of one uncontended lock by one
 *              client, once through each node given (the first named is
 *              the leader when coord.sh starts it, so its figure has no
 *              forward hop).
 *   lock8      8 clients, one per thread, round-robin over the nodes, each
 *              with its own lock, acquire+release pairs for SECS seconds.
 *   throttle8  8 clients likewise on one shared throttle key (1000 per
 *              second) for SECS seconds: decisions (allowed or limited)
 *              per second.
 * Every call's answer is checked; a failure stops the bench with its
 * message. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cadre/cadre.h"

#define BC_CLIENTS 8
#define BC_NODES_MAX 8
#define BC_LAT_MAX 2000000

struct bc_node {
    const char *name, *url;
};

static const char    *bc_key_file;
static struct bc_node bc_nodes[BC_NODES_MAX];
static int            bc_nodes_n;

static double
bc_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static cadre_client *
bc_open(const char *url)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    memset(&o, 0, sizeof(o));
    o.url = url;
    o.key_file = bc_key_file;
    o.timeout_ms = 5000;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "bench_coord: %s: %s\n", url, err);
        exit(1);
    }
    return c;
}

static void
bc_die(cadre_client *c, const char *what)
{
    fprintf(stderr, "bench_coord: %s: %s\n", what, cadre_client_errmsg(c));
    exit(1);
}

static int
bc_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The value at percentile p of sorted v[n] (nearest rank). */
static double
bc_pct(const double *v, long n, double p)
{
    long i = (long)(p / 100.0 * (double)n + 0.5) - 1;

    return n == 0 ? 0 : v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* One acquire+release pair of key; the acquire and release times go to
 * acq and rel (may be NULL). */
static void
bc_pair(cadre_client *c, const char *key, double *acq, double *rel)
{
    char     owner[CADRE_OWNER_LEN];
    uint64_t token;
    double   t0 = bc_now_us(), t1;

    if (cadre_lock_acquire(c, key, NULL, 10000, 0, &token, owner) != CADRE_OK)
        bc_die(c, "lock acquire");
    t1 = bc_now_us();
    if (cadre_lock_release(c, key, owner) != CADRE_OK)
        bc_die(c, "lock release");
    if (acq != NULL)
        *acq = t1 - t0;
    if (rel != NULL)
        *rel = bc_now_us() - t1;
}

static void
bc_lock1(long pairs)
{
    double *acq = calloc((size_t)pairs, sizeof(double));
    double *rel = calloc((size_t)pairs, sizeof(double));
    double *pair = calloc((size_t)pairs, sizeof(double));

    for (int k = 0; k < bc_nodes_n; k++) {
        cadre_client *c = bc_open(bc_nodes[k].url);
        double        t0;

        for (int i = 0; i < 50; i++) /* warm-up: connection, leader route */
            bc_pair(c, "bench-lock1", NULL, NULL);
        t0 = bc_now_us();
        for (long i = 0; i < pairs; i++) {
            bc_pair(c, "bench-lock1", &acq[i], &rel[i]);
            pair[i] = acq[i] + rel[i];
        }
        t0 = bc_now_us() - t0;
        qsort(acq, (size_t)pairs, sizeof(double), bc_cmp_double);
        qsort(rel, (size_t)pairs, sizeof(double), bc_cmp_double);
        qsort(pair, (size_t)pairs, sizeof(double), bc_cmp_double);
        printf("coord lock1 via=%s n=%ld acquire_p50_us=%.0f "
               "acquire_p99_us=%.0f release_p50_us=%.0f pairs_per_s=%.0f "
               "pair_p50_us=%.0f pair_p99_us=%.0f\n",
               bc_nodes[k].name, pairs, bc_pct(acq, pairs, 50),
               bc_pct(acq, pairs, 99), bc_pct(rel, pairs, 50),
               (double)pairs / (t0 / 1e6), bc_pct(pair, pairs, 50),
               bc_pct(pair, pairs, 99));
        fflush(stdout);
        cadre_client_close(c);
    }
    free(acq);
    free(rel);
    free(pair);
}

struct bc_thread {
    int       idx;
    double    end_us;
    double   *lat; /* acquire latencies */
    long      n, cap;
    long      allowed, decisions;
    pthread_t tid;
};

static void *
bc_lock8_main(void *arg)
{
    struct bc_thread *t = arg;
    cadre_client     *c = bc_open(bc_nodes[t->idx % bc_nodes_n].url);
    char              key[32];

    snprintf(key, sizeof(key), "bench-lock8-%d", t->idx);
    while (bc_now_us() < t->end_us && t->n < t->cap)
        bc_pair(c, key, &t->lat[t->n++], NULL);
    cadre_client_close(c);
    return NULL;
}

static void *
bc_throttle8_main(void *arg)
{
    struct bc_thread *t = arg;
    cadre_client     *c = bc_open(bc_nodes[t->idx % bc_nodes_n].url);
    uint64_t          retry;

    while (bc_now_us() < t->end_us) {
        int rc = cadre_throttle(c, "bench-throttle", 1000, 1000, &retry);

        if (rc != CADRE_OK && rc != CADRE_ELIMITED)
            bc_die(c, "throttle");
        t->allowed += rc == CADRE_OK;
        t->decisions++;
    }
    cadre_client_close(c);
    return NULL;
}

/* Runs fn on BC_CLIENTS threads for secs; returns the wall seconds. */
static double
bc_threads(struct bc_thread *ts, void *(*fn)(void *), double secs)
{
    double t0 = bc_now_us();

    for (int i = 0; i < BC_CLIENTS; i++) {
        ts[i].idx = i;
        ts[i].end_us = t0 + secs * 1e6;
        if (pthread_create(&ts[i].tid, NULL, fn, &ts[i]) != 0) {
            fprintf(stderr, "bench_coord: pthread_create\n");
            exit(1);
        }
    }
    for (int i = 0; i < BC_CLIENTS; i++)
        pthread_join(ts[i].tid, NULL);
    return (bc_now_us() - t0) / 1e6;
}

static void
bc_lock8(double secs)
{
    struct bc_thread ts[BC_CLIENTS];
    double          *all, wall;
    long             n = 0;

    memset(ts, 0, sizeof(ts));
    for (int i = 0; i < BC_CLIENTS; i++) {
        ts[i].cap = BC_LAT_MAX / BC_CLIENTS;
        ts[i].lat = calloc((size_t)ts[i].cap, sizeof(double));
    }
    wall = bc_threads(ts, bc_lock8_main, secs);
    all = calloc(BC_LAT_MAX, sizeof(double));
    for (int i = 0; i < BC_CLIENTS; i++) {
        memcpy(all + n, ts[i].lat, (size_t)ts[i].n * sizeof(double));
        n += ts[i].n;
        free(ts[i].lat);
    }
    qsort(all, (size_t)n, sizeof(double), bc_cmp_double);
    printf("coord lock8 clients=%d secs=%.2f pairs=%ld acquire_p50_us=%.0f "
           "acquire_p99_us=%.0f pairs_per_s=%.0f\n",
           BC_CLIENTS, wall, n, bc_pct(all, n, 50), bc_pct(all, n, 99),
           (double)n / wall);
    fflush(stdout);
    free(all);
}

static void
bc_throttle8(double secs)
{
    struct bc_thread ts[BC_CLIENTS];
    long             decisions = 0, allowed = 0;
    double           wall;

    memset(ts, 0, sizeof(ts));
    wall = bc_threads(ts, bc_throttle8_main, secs);
    for (int i = 0; i < BC_CLIENTS; i++) {
        decisions += ts[i].decisions;
        allowed += ts[i].allowed;
    }
    printf("coord throttle8 clients=%d secs=%.2f decisions=%ld allowed=%ld "
           "per_s=%.0f\n",
           BC_CLIENTS, wall, decisions, allowed, (double)decisions / wall);
}

int
main(int argc, char **argv)
{
    long   pairs;
    double secs;

    if (argc < 5) {
        fprintf(stderr, "usage: bench_coord KEY_FILE PAIRS SECS NAME=URL "
                        "[NAME=URL...]\n");
        return 2;
    }
    bc_key_file = argv[1];
    pairs = atol(argv[2]);
    secs = atof(argv[3]);
    if (pairs <= 0 || pairs > BC_LAT_MAX || secs <= 0) {
        fprintf(stderr, "bench_coord: bad PAIRS or SECS\n");
        return 2;
    }
    for (int i = 4; i < argc && bc_nodes_n < BC_NODES_MAX; i++) {
        char *eq = strchr(argv[i], '=');

        if (eq == NULL) {
            fprintf(stderr, "bench_coord: '%s' is not NAME=URL\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        bc_nodes[bc_nodes_n].name = argv[i];
        bc_nodes[bc_nodes_n++].url = eq + 1;
    }
    bc_lock1(pairs);
    bc_lock8(secs);
    bc_throttle8(secs);
    return 0;
}
