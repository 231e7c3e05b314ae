/* pool.c: supervision of worker processes with restart backoff. */
#include "node/pool.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#define POOL_BACKOFF_MIN_MS 100
#define POOL_BACKOFF_MAX_MS 10000
#define POOL_HEALTHY_MS 10000

struct pool_worker {
    struct pool *pool;
    uv_process_t proc;
    uv_timer_t   timer;
    int          running;
    uint64_t     started_mono_ms;
    uint64_t     backoff_ms;
    int          restarting; /* asked to stop by pool_restart: no backoff */
};

struct pool {
    uv_loop_t          *loop;
    char              **argv;
    char              **env; /* environ + CADRE_SUPERVISED=<pid> */
    size_t              n;
    struct pool_worker *w;
    int                 stopping;
    uint64_t            restarts;
    size_t              open_handles;
};

static void pool_spawn(struct pool_worker *w);

static void
pool_free_strv(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        cd_free(v[i]);
    cd_free(v);
}

static void
pool_free(struct pool *p)
{
    pool_free_strv(p->argv);
    pool_free_strv(p->env);
    cd_free(p->w);
    cd_free(p);
}

static void
pool_handle_closed_cb(uv_handle_t *h)
{
    struct pool_worker *w = h->data;

    if (--w->pool->open_handles == 0)
        pool_free(w->pool);
}

static void
pool_restart_cb(uv_timer_t *t)
{
    struct pool_worker *w = t->data;

    if (!w->pool->stopping)
        pool_spawn(w);
}

static void
pool_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
    struct pool_worker *w = proc->data;
    struct pool        *p = w->pool;
    uint64_t            ran = cd_mono_ms() - w->started_mono_ms;

    w->running = 0;
    uv_close((uv_handle_t *)proc, NULL);
    if (p->stopping) {
        CD_LOG_INFO("pool", "POOL-WORKER-STOPPED", "pid=%d status=%lld sig=%d",
                    proc->pid, (long long)status, sig);
        return;
    }
    if (w->restarting) {
        w->restarting = 0;
        w->backoff_ms = POOL_BACKOFF_MIN_MS;
        CD_LOG_NOTICE("pool", "POOL-WORKER-RESTARTED", "pid=%d status=%lld",
                      proc->pid, (long long)status);
        /* At once, but from the timer: the process handle closes first. */
        uv_timer_start(&w->timer, pool_restart_cb, 0, 0);
        return;
    }
    if (ran >= POOL_HEALTHY_MS)
        w->backoff_ms = POOL_BACKOFF_MIN_MS;
    CD_LOG_WARN("pool", "POOL-WORKER-EXIT",
                "pid=%d status=%lld sig=%d ran_ms=%llu restart_in_ms=%llu",
                proc->pid, (long long)status, sig, (unsigned long long)ran,
                (unsigned long long)w->backoff_ms);
    p->restarts++;
    uv_timer_start(&w->timer, pool_restart_cb, w->backoff_ms, 0);
    w->backoff_ms *= 2;
    if (w->backoff_ms > POOL_BACKOFF_MAX_MS)
        w->backoff_ms = POOL_BACKOFF_MAX_MS;
}

static void
pool_spawn(struct pool_worker *w)
{
    struct pool         *p = w->pool;
    uv_process_options_t opts;
    uv_stdio_container_t stdio[3];
    int                  rv;

    memset(&opts, 0, sizeof(opts));
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = 2; /* workers' output goes to the node's log */
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    opts.file = p->argv[0];
    opts.args = p->argv;
    opts.env = p->env;
    opts.exit_cb = pool_exit_cb;
    opts.stdio = stdio;
    opts.stdio_count = 3;
    w->proc.data = w;
    rv = uv_spawn(p->loop, &w->proc, &opts);
    if (rv != 0) {
        CD_LOG_ERR("pool", "POOL-SPAWN", "file=%s error=\"%s\"", p->argv[0],
                   uv_strerror(rv));
        uv_close((uv_handle_t *)&w->proc, NULL);
        uv_timer_start(&w->timer, pool_restart_cb, w->backoff_ms, 0);
        if (w->backoff_ms < POOL_BACKOFF_MAX_MS)
            w->backoff_ms *= 2;
        return;
    }
    w->running = 1;
    w->started_mono_ms = cd_mono_ms();
    CD_LOG_INFO("pool", "POOL-WORKER-START", "pid=%d", w->proc.pid);
}

/* Copies a NULL-terminated vector, with one more string if extra is set. */
static char **
pool_copy_strv(char *const *v, const char *extra)
{
    size_t n = 0, k = 0;
    char **copy;

    while (v[n] != NULL)
        n++;
    copy = cd_calloc(n + 2, sizeof(*copy));
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(v[i], "CADRE_SUPERVISED=", 17) != 0)
            if ((copy[k++] = cd_strdup(v[i])) == NULL)
                goto fail;
    if (extra != NULL && (copy[k++] = cd_strdup(extra)) == NULL)
        goto fail;
    return copy;
fail:
    pool_free_strv(copy);
    return NULL;
}

int
pool_start(struct pool **out, uv_loop_t *loop, char *const *argv,
           size_t workers, cd_err *err)
{
    struct pool *p = cd_calloc(1, sizeof(*p));
    char         supervised[48];

    snprintf(supervised, sizeof(supervised), "CADRE_SUPERVISED=%d",
             (int)getpid());
    if (p == NULL || (p->argv = pool_copy_strv(argv, NULL)) == NULL ||
        (p->env = pool_copy_strv(environ, supervised)) == NULL ||
        (p->w = cd_calloc(workers ? workers : 1, sizeof(*p->w))) == NULL) {
        if (p != NULL) {
            pool_free_strv(p->argv);
            pool_free_strv(p->env);
        }
        cd_free(p);
        return cd_err_set(err, CADRE_ENOMEM, "pool: out of memory");
    }
    p->loop = loop;
    p->n = workers;
    for (size_t i = 0; i < workers; i++) {
        struct pool_worker *w = &p->w[i];

        w->pool = p;
        w->backoff_ms = POOL_BACKOFF_MIN_MS;
        uv_timer_init(loop, &w->timer);
        w->timer.data = w;
        p->open_handles++;
        pool_spawn(w);
    }
    *out = p;
    return CADRE_OK;
}

void
pool_stop(struct pool *p)
{
    if (p == NULL)
        return;
    p->stopping = 1;
    for (size_t i = 0; i < p->n; i++) {
        uv_timer_stop(&p->w[i].timer);
        if (p->w[i].running)
            uv_process_kill(&p->w[i].proc, SIGTERM);
    }
}

size_t
pool_restart(struct pool *p)
{
    size_t n = 0;

    if (p == NULL || p->stopping)
        return 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->w[i].running || p->w[i].restarting)
            continue;
        p->w[i].restarting = 1;
        uv_process_kill(&p->w[i].proc, SIGTERM);
        n++;
    }
    return n;
}

void
pool_kill(struct pool *p)
{
    if (p == NULL)
        return;
    p->stopping = 1;
    for (size_t i = 0; i < p->n; i++)
        if (p->w[i].running)
            uv_process_kill(&p->w[i].proc, SIGKILL);
}

size_t
pool_alive(const struct pool *p)
{
    size_t n = 0;

    if (p == NULL)
        return 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->w[i].running;
    return n;
}

uint64_t
pool_restarts(const struct pool *p)
{
    return p == NULL ? 0 : p->restarts;
}

void
pool_close(struct pool *p)
{
    if (p == NULL)
        return;
    if (p->open_handles == 0) {
        pool_free(p);
        return;
    }
    for (size_t i = 0; i < p->n; i++)
        uv_close((uv_handle_t *)&p->w[i].timer, pool_handle_closed_cb);
}
