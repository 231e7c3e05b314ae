/* bounded.c: cd_run_bounded (bounded.h). The caller and the thread share
 * one block; whoever is done with it last frees it. */
#include "common/bounded.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"

struct bounded {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             done;
    atomic_int      refs; /* caller and thread */
    void (*fn)(void *arg);
    unsigned char arg[]; /* the caller's copy */
};

static void
bounded_unref(struct bounded *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
        cd_free(b);
    }
}

static void *
bounded_main(void *p)
{
    struct bounded *b = p;

    b->fn(b->arg);
    pthread_mutex_lock(&b->mu);
    b->done = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    bounded_unref(b);
    return NULL;
}

static int
bounded_wait(struct bounded *b, uint64_t timeout_ms)
{
    struct timespec ts;
    int             rc = 0, done;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    while (!b->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    done = b->done;
    pthread_mutex_unlock(&b->mu);
    return done;
}

int
cd_run_bounded(void (*fn)(void *arg), const void *arg, size_t arg_len,
               uint64_t timeout_ms)
{
    struct bounded    *b = cd_malloc(sizeof(*b) + arg_len);
    pthread_condattr_t ca;
    pthread_attr_t     ta;
    pthread_t          th;
    int                started, done;

    if (b == NULL) {
        fn((void *)arg);
        return 1;
    }
    memcpy(b->arg, arg, arg_len);
    b->fn = fn;
    b->done = 0;
    atomic_init(&b->refs, 2);
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&th, &ta, bounded_main, b) == 0;
    pthread_attr_destroy(&ta);
    if (!started) {
        fn(b->arg);
        atomic_store(&b->refs, 1);
        bounded_unref(b);
        return 1;
    }
    done = bounded_wait(b, timeout_ms);
    bounded_unref(b);
    return done;
}
