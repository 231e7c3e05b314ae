/* bench_redis.c: the peer figures for bench_coord. What Laravel's
 * Redis-backed Cache::lock and Redis::throttle send, through hiredis,
 * against one running redis-server (bench/coord_vs_redis.sh starts one).
 * Prints the same lines as bench_coord, "redis" first and the server's
 * configuration as via=LABEL:
 *
 *   redis lock1 via=LABEL n=2000 acquire_p50_us=.. acquire_p99_us=..
 *       release_p50_us=.. pairs_per_s=.. pair_p50_us=.. pair_p99_us=..
 *   redis lock8 via=LABEL clients=8 secs=5 pairs=.. acquire_p50_us=..
 *       acquire_p99_us=.. pairs_per_s=..
 *   redis throttle8 via=LABEL clients=8 secs=5 decisions=.. allowed=..
 *       per_s=..
 *
 * Usage: bench_redis HOST PORT LABEL PAIRS SECS
 *   lock1      PAIRS acquire+release pairs of one uncontended lock by one
 *              client. Acquire is Illuminate\Cache\RedisLock::acquire,
 *              SET key owner PX 10000 NX (cadre's ttl in bench_coord), with
 *              a new random 16-character owner per lock as Str::random();
 *              release is LuaScripts::releaseLock() by EVALSHA after one
 *              SCRIPT LOAD.
 *   lock8      8 clients, one thread and connection each, each with its own
 *              lock, acquire+release pairs for SECS seconds.
 *   throttle8  8 clients likewise on one shared key for SECS seconds:
 *              Redis::throttle(key)->allow(1000)->every(1), i.e.
 *              DurationLimiter::acquire(), which sends its Lua script with
 *              EVAL on every call (as Laravel does) with ARGV microtime(true),
 *              time(), decay 1, maxLocks 1000. Decisions (allowed or not)
 *              per second; cadre's bench uses 1000 per 1000 ms.
 * Every reply is checked; an unexpected one stops the bench with it. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define BR_CLIENTS 8
#define BR_LAT_MAX 2000000
#define BR_TTL_MS "10000"
#define BR_OWNER_LEN 16

/* Illuminate\Cache\LuaScripts::releaseLock(). */
static const char br_release_lua[] =
    "if redis.call(\"get\",KEYS[1]) == ARGV[1] then\n"
    "    return redis.call(\"del\",KEYS[1])\n"
    "else\n"
    "    return 0\n"
    "end";

/* Illuminate\Redis\Limiters\DurationLimiter::luaScript(). */
static const char br_throttle_lua[] =
    "local function reset()\n"
    "    redis.call('HMSET', KEYS[1], 'start', ARGV[2], 'end', ARGV[2] + "
    "ARGV[3], 'count', 1)\n"
    "    return redis.call('EXPIRE', KEYS[1], ARGV[3] * 2)\n"
    "end\n"
    "\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "    return {reset(), ARGV[2] + ARGV[3], ARGV[4] - 1}\n"
    "end\n"
    "\n"
    "if ARGV[1] >= redis.call('HGET', KEYS[1], 'start') and ARGV[1] <= "
    "redis.call('HGET', KEYS[1], 'end') then\n"
    "    return {\n"
    "        tonumber(redis.call('HINCRBY', KEYS[1], 'count', 1)) <= "
    "tonumber(ARGV[4]),\n"
    "        redis.call('HGET', KEYS[1], 'end'),\n"
    "        ARGV[4] - redis.call('HGET', KEYS[1], 'count')\n"
    "    }\n"
    "end\n"
    "\n"
    "return {reset(), ARGV[2] + ARGV[3], ARGV[4] - 1}";

static const char *br_host, *br_label;
static int         br_port;
static char        br_release_sha[41];

static double
br_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static redisContext *
br_open(void)
{
    struct timeval tv = {5, 0};
    redisContext  *c = redisConnectWithTimeout(br_host, br_port, tv);

    if (c == NULL || c->err) {
        fprintf(stderr, "bench_redis: connect %s:%d: %s\n", br_host, br_port,
                c != NULL ? c->errstr : "out of memory");
        exit(1);
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        fprintf(stderr, "bench_redis: set timeout: %s\n", c->errstr);
        exit(1);
    }
    return c;
}

/* Stops the bench: what failed, and the reply (or the connection's error
 * when r is NULL). */
static void
br_die(redisContext *c, redisReply *r, const char *what)
{
    if (r == NULL)
        fprintf(stderr, "bench_redis: %s: %s\n", what, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS ||
             r->type == REDIS_REPLY_STRING)
        fprintf(stderr, "bench_redis: %s: unexpected reply '%s'\n", what,
                r->str);
    else
        fprintf(stderr, "bench_redis: %s: unexpected reply type %d\n", what,
                r->type);
    exit(1);
}

static int
br_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The value at percentile p of sorted v[n] (nearest rank), as bench_coord. */
static double
br_pct(const double *v, long n, double p)
{
    long i = (long)(p / 100.0 * (double)n + 0.5) - 1;

    return n == 0 ? 0 : v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Str::random(16): 16 alphanumerics (the bench's own PRNG state *seed). */
static void
br_owner(unsigned *seed, char *owner)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "abcdefghijklmnopqrstuvwxyz0123456789";

    for (int i = 0; i < BR_OWNER_LEN; i++)
        owner[i] = abc[rand_r(seed) % (sizeof(abc) - 1)];
    owner[BR_OWNER_LEN] = '\0';
}

/* SCRIPT LOAD of the release script; its SHA goes to br_release_sha. */
static void
br_load(redisContext *c)
{
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", br_release_lua);

    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 40)
        br_die(c, r, "script load");
    memcpy(br_release_sha, r->str, 41);
    freeReplyObject(r);
}

/* One acquire+release pair of key (Cache::lock(key, 10)->get(), then
 * ->release()); the acquire and release times go to acq and rel (may be
 * NULL). */
static void
br_pair(redisContext *c, unsigned *seed, const char *key, double *acq,
        double *rel)
{
    char        owner[BR_OWNER_LEN + 1];
    redisReply *r;
    double      t0, t1;

    br_owner(seed, owner);
    t0 = br_now_us();
    r = redisCommand(c, "SET %s %s PX " BR_TTL_MS " NX", key, owner);
    if (r == NULL || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK"))
        br_die(c, r, "lock acquire (SET NX)");
    freeReplyObject(r);
    t1 = br_now_us();
    r = redisCommand(c, "EVALSHA %s 1 %s %s", br_release_sha, key, owner);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer != 1)
        br_die(c, r, "lock release (EVALSHA)");
    freeReplyObject(r);
    if (acq != NULL)
        *acq = t1 - t0;
    if (rel != NULL)
        *rel = br_now_us() - t1;
}

static void
br_lock1(long pairs)
{
    double       *acq = calloc((size_t)pairs, sizeof(double));
    double       *rel = calloc((size_t)pairs, sizeof(double));
    double       *pair = calloc((size_t)pairs, sizeof(double));
    redisContext *c = br_open();
    unsigned      seed = 1;
    double        t0;

    if (acq == NULL || rel == NULL || pair == NULL) {
        fprintf(stderr, "bench_redis: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < 50; i++) /* warm-up, as bench_coord */
        br_pair(c, &seed, "laravel_cache:bench-lock1", NULL, NULL);
    t0 = br_now_us();
    for (long i = 0; i < pairs; i++) {
        br_pair(c, &seed, "laravel_cache:bench-lock1", &acq[i], &rel[i]);
        pair[i] = acq[i] + rel[i];
    }
    t0 = br_now_us() - t0;
    qsort(acq, (size_t)pairs, sizeof(double), br_cmp_double);
    qsort(rel, (size_t)pairs, sizeof(double), br_cmp_double);
    qsort(pair, (size_t)pairs, sizeof(double), br_cmp_double);
    printf("redis lock1 via=%s n=%ld acquire_p50_us=%.0f acquire_p99_us=%.0f "
           "release_p50_us=%.0f pairs_per_s=%.0f pair_p50_us=%.0f "
           "pair_p99_us=%.0f\n",
           br_label, pairs, br_pct(acq, pairs, 50), br_pct(acq, pairs, 99),
           br_pct(rel, pairs, 50), (double)pairs / (t0 / 1e6),
           br_pct(pair, pairs, 50), br_pct(pair, pairs, 99));
    fflush(stdout);
    redisFree(c);
    free(acq);
    free(rel);
    free(pair);
}

struct br_thread {
    int       idx;
    double    end_us;
    double   *lat; /* acquire latencies */
    long      n, cap;
    long      allowed, decisions;
    pthread_t tid;
};

static void *
br_lock8_main(void *arg)
{
    struct br_thread *t = arg;
    redisContext     *c = br_open();
    unsigned          seed = (unsigned)t->idx + 2;
    char              key[48];

    snprintf(key, sizeof(key), "laravel_cache:bench-lock8-%d", t->idx);
    while (br_now_us() < t->end_us && t->n < t->cap)
        br_pair(c, &seed, key, &t->lat[t->n++], NULL);
    redisFree(c);
    return NULL;
}

/* One DurationLimiter::acquire() on key: 1 if allowed, 0 if not. */
static int
br_throttle(redisContext *c, const char *key)
{
    struct timeval tv;
    char           micro[32], sec[24];
    const char    *argv[] = {"EVAL", br_throttle_lua, "1", key, micro, sec,
                             "1",    "1000"};
    redisReply    *r;
    int            allowed;

    gettimeofday(&tv, NULL);
    snprintf(micro, sizeof(micro), "%ld.%06ld", (long)tv.tv_sec,
             (long)tv.tv_usec);
    snprintf(sec, sizeof(sec), "%ld", (long)tv.tv_sec);
    r = redisCommandArgv(c, 8, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        br_die(c, r, "throttle (EVAL)");
    /* Lua true is integer 1, false is nil. */
    allowed = r->element[0]->type == REDIS_REPLY_INTEGER &&
              r->element[0]->integer == 1;
    if (!allowed && r->element[0]->type != REDIS_REPLY_NIL)
        br_die(c, r->element[0], "throttle (EVAL) acquired");
    freeReplyObject(r);
    return allowed;
}

static void *
br_throttle8_main(void *arg)
{
    struct br_thread *t = arg;
    redisContext     *c = br_open();

    while (br_now_us() < t->end_us) {
        t->allowed += br_throttle(c, "laravel_database_bench-throttle");
        t->decisions++;
    }
    redisFree(c);
    return NULL;
}

/* Runs fn on BR_CLIENTS threads for secs; returns the wall seconds. */
static double
br_threads(struct br_thread *ts, void *(*fn)(void *), double secs)
{
    double t0 = br_now_us();

    for (int i = 0; i < BR_CLIENTS; i++) {
        ts[i].idx = i;
        ts[i].end_us = t0 + secs * 1e6;
        if (pthread_create(&ts[i].tid, NULL, fn, &ts[i]) != 0) {
            fprintf(stderr, "bench_redis: pthread_create\n");
            exit(1);
        }
    }
    for (int i = 0; i < BR_CLIENTS; i++)
        pthread_join(ts[i].tid, NULL);
    return (br_now_us() - t0) / 1e6;
}

static void
br_lock8(double secs)
{
    struct br_thread ts[BR_CLIENTS];
    double          *all, wall;
    long             n = 0;

    memset(ts, 0, sizeof(ts));
    for (int i = 0; i < BR_CLIENTS; i++) {
        ts[i].cap = BR_LAT_MAX / BR_CLIENTS;
        ts[i].lat = calloc((size_t)ts[i].cap, sizeof(double));
        if (ts[i].lat == NULL) {
            fprintf(stderr, "bench_redis: out of memory\n");
            exit(1);
        }
    }
    wall = br_threads(ts, br_lock8_main, secs);
    all = calloc(BR_LAT_MAX, sizeof(double));
    if (all == NULL) {
        fprintf(stderr, "bench_redis: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < BR_CLIENTS; i++) {
        memcpy(all + n, ts[i].lat, (size_t)ts[i].n * sizeof(double));
        n += ts[i].n;
        free(ts[i].lat);
    }
    qsort(all, (size_t)n, sizeof(double), br_cmp_double);
    printf("redis lock8 via=%s clients=%d secs=%.2f pairs=%ld "
           "acquire_p50_us=%.0f acquire_p99_us=%.0f pairs_per_s=%.0f\n",
           br_label, BR_CLIENTS, wall, n, br_pct(all, n, 50),
           br_pct(all, n, 99), (double)n / wall);
    fflush(stdout);
    free(all);
}

static void
br_throttle8(double secs)
{
    struct br_thread ts[BR_CLIENTS];
    long             decisions = 0, allowed = 0;
    double           wall;

    memset(ts, 0, sizeof(ts));
    wall = br_threads(ts, br_throttle8_main, secs);
    for (int i = 0; i < BR_CLIENTS; i++) {
        decisions += ts[i].decisions;
        allowed += ts[i].allowed;
    }
    printf("redis throttle8 via=%s clients=%d secs=%.2f decisions=%ld "
           "allowed=%ld per_s=%.0f\n",
           br_label, BR_CLIENTS, wall, decisions, allowed,
           (double)decisions / wall);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    redisContext *c;
    long          pairs;
    double        secs;

    if (argc != 6) {
        fprintf(stderr, "usage: bench_redis HOST PORT LABEL PAIRS SECS\n");
        return 2;
    }
    br_host = argv[1];
    br_port = atoi(argv[2]);
    br_label = argv[3];
    pairs = atol(argv[4]);
    secs = atof(argv[5]);
    if (br_port <= 0 || br_port > 65535 || pairs <= 0 || pairs > BR_LAT_MAX ||
        secs <= 0) {
        fprintf(stderr, "bench_redis: bad PORT, PAIRS or SECS\n");
        return 2;
    }
    c = br_open(); /* the script cache is the server's: load it once */
    br_load(c);
    redisFree(c);
    br_lock1(pairs);
    br_lock8(secs);
    br_throttle8(secs);
    return 0;
}
