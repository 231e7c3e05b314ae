/* worker.c: the worker loop. It keeps a long-poll fetch at its node (nng req0,
 * every frame sealed with the worker key), holds up to `prefetch` jobs, runs
 * them one at a time through the registry, and sends their outcomes with its
 * next request. It does not run processes or load plugins itself (exec.c,
 * handler.c). A watchdog thread enforces timeouts of in-process handlers.
 *
 * Threads: everything runs on the thread that calls cadre_worker_run, except
 * cadre_worker_stop (any thread, or a signal handler: it only sets a flag)
 * and the watchdog, which touches the worker's state only once the handler
 * overran, while it holds watch.mu and the run thread is still in the
 * handler; it then exits the process. */
#include "worker/worker.h"

#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/bounded.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/id.h"
#include "common/log.h"
#include "common/path.h"
#include "crypto/appseal.h"
#include "crypto/keys.h"
#include "proto/msg.h"
#include "proto/wire.h"
#include "worker/exec.h"
#include "worker/handler.h"
#include "worker/mw.h"
#include "worker/task.h"

/* cadre_worker_stop may run in a signal handler: only a lock-free atomic (or
 * a volatile sig_atomic_t, which is not safe across threads) will do. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "stop flag must be lock-free");

#define WORKER_URL_MAX 1024
#define WORKER_PATH_MAX 4096
/* Room a report needs besides its outcomes (envelope, queues, ids). */
#define WORKER_FRAME_SLACK (16u << 10)

/* One decoded MSG_JOBS reply; its jobs borrow from it until the last of them
 * has run. */
struct worker_batch {
    struct msg m;
    size_t     left;
};

struct worker_held {
    struct msg_job      *job;
    struct worker_batch *batch;
};

#define WORKER_WATCH_IDLE_MS 100

struct worker_watch {
    pthread_mutex_t       mu;
    pthread_cond_t        cv;
    pthread_t             thread;
    int                   started;
    int                   quit;
    int                   armed;
    uint64_t              deadline_mono_ms; /* UINT64_MAX: no timeout */
    uint64_t              timeout_ms;
    const struct msg_job *job;
    /* Heartbeats for the running job (its lease), on their own context. */
    uint64_t beat_ms, next_beat_mono_ms;
    nng_ctx  beat_ctx;
    nng_aio *beat_aio;
};

struct cadre_worker {
    atomic_int          stop; /* set by cadre_worker_stop */
    cadre_registry      reg;
    nng_socket          sock;
    int                 sock_open;
    struct wire_sender  sender;
    struct wire_keyring ring;
    char                url[WORKER_URL_MAX];
    char              **queues;
    size_t              queues_n;
    uint32_t            prefetch;
    uint32_t            max_jobs;
    uint64_t            max_time_ms, started_mono_ms;
    uint32_t            memory_mb;
    uint64_t            memory_checked_mono_ms;
    int                 stop_when_empty, empty;
    uint32_t            tries;   /* --tries: for jobs that set none */
    const char         *limit;   /* which limit ended the run, for the log */
    keys_key            app_key; /* opens encrypted jobs, if has_app_key */
    int                 has_app_key;
    uint32_t            sleep_ms;
    uint64_t            timeout_ms;
    uint64_t            worker_id;
    uint64_t            request_id;
    nng_duration        recv_timeout_ms; /* as last set on sock */
    int                 fatal;           /* the node refused us for good */
    int one_per_frame; /* the node found a report too big: send singly */
    /* Jobs received and not started: held[head .. head + held_n). */
    struct worker_held *held;
    size_t              held_head, held_n, held_cap;
    uint64_t            jobs_started;
    uint64_t            jobs_run;   /* finished, for the average */
    uint64_t            avg_job_us; /* running average of job times */
    /* Outcomes not yet acknowledged by the node. */
    struct msg_outcome *outs;
    struct task_own    *owns;
    size_t              outs_n, outs_cap;
    uint64_t            outs_oldest_mono_ms;
    struct worker_watch watch;
    struct mw_link      mw; /* job middleware's coord requests */
    cd_err              err;
};

/* ---- pure policies ------------------------------------------------------- */

uint32_t
worker_backoff_next(uint32_t cur_ms)
{
    if (cur_ms < WORKER_BACKOFF_MIN_MS)
        return WORKER_BACKOFF_MIN_MS;
    if (cur_ms >= WORKER_BACKOFF_MAX_MS / 2)
        return WORKER_BACKOFF_MAX_MS;
    return cur_ms * 2;
}

uint32_t
worker_fetch_max(uint32_t prefetch, uint32_t max_jobs, uint64_t jobs_started,
                 size_t held_n)
{
    uint64_t want = held_n < prefetch ? prefetch - held_n : 0;

    if (max_jobs != 0) {
        uint64_t planned = jobs_started + held_n;
        uint64_t left = planned < max_jobs ? max_jobs - planned : 0;

        if (want > left)
            want = left;
    }
    return (uint32_t)want;
}

uint32_t
worker_batch_cap(uint32_t prefetch, uint64_t avg_job_us, uint64_t jobs_run)
{
    uint64_t cap;

    if (jobs_run == 0)
        return prefetch; /* nothing known yet: the configured batch */
    cap = WORKER_BATCH_BUDGET_US / (avg_job_us ? avg_job_us : 1);
    if (cap < 1)
        cap = 1;
    return cap < prefetch ? (uint32_t)cap : prefetch;
}

uint64_t
worker_avg_next(uint64_t avg_us, uint64_t job_us, uint64_t jobs_run)
{
    return jobs_run == 0 ? job_us : (avg_us * 7 + job_us) / 8;
}

int
worker_should_report(size_t held_n, size_t outcomes_n, uint64_t oldest_mono_ms,
                     uint64_t now_mono_ms)
{
    if (outcomes_n == 0)
        return 0;
    return held_n == 0 ||
           now_mono_ms >= oldest_mono_ms + WORKER_REPORT_AFTER_MS;
}

/* ---- outcomes and held jobs ---------------------------------------------- */

/* Makes room for n more outcomes. */
static int
worker_outs_reserve(cadre_worker *w, size_t n)
{
    size_t              cap = w->outs_cap ? w->outs_cap : 16;
    struct msg_outcome *outs;
    struct task_own    *owns;

    if (w->outs_n + n <= w->outs_cap)
        return CADRE_OK;
    while (cap < w->outs_n + n)
        cap *= 2;
    outs = cd_realloc(w->outs, cap * sizeof(*outs));
    if (outs == NULL)
        return CADRE_ENOMEM;
    w->outs = outs;
    owns = cd_realloc(w->owns, cap * sizeof(*owns));
    if (owns == NULL)
        return CADRE_ENOMEM;
    w->owns = owns;
    w->outs_cap = cap;
    return CADRE_OK;
}

/* The next free outcome slot; room was reserved when the job arrived (every
 * held or running job has one), so this cannot fail. */
static size_t
worker_outs_slot(cadre_worker *w)
{
    if (w->outs_n == 0)
        w->outs_oldest_mono_ms = cd_mono_ms();
    return w->outs_n++;
}

/* Drops the first n outcomes: the node has them. */
static void
worker_outs_drop(cadre_worker *w, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++)
        task_own_free(&w->owns[i]);
    memmove(w->outs, w->outs + n, (w->outs_n - n) * sizeof(*w->outs));
    memmove(w->owns, w->owns + n, (w->outs_n - n) * sizeof(*w->owns));
    w->outs_n -= n;
    if (w->outs_n > 0)
        w->outs_oldest_mono_ms = cd_mono_ms();
}

static void
worker_batch_rele(struct worker_batch *b)
{
    if (--b->left == 0) {
        msg_free(&b->m);
        cd_free(b);
    }
}

/* Takes the jobs of b (which the worker then owns). If there is no room for
 * them they are dropped: the node releases them after retry_after. */
static void
worker_hold(cadre_worker *w, struct worker_batch *b)
{
    size_t n = b->m.u.jobs.jobs_n;

    if (n == 0)
        goto drop;
    if (worker_outs_reserve(w, w->held_n + n + 1) != CADRE_OK)
        goto nomem;
    if (w->held_head > 0) {
        memmove(w->held, w->held + w->held_head, w->held_n * sizeof(*w->held));
        w->held_head = 0;
    }
    if (w->held_n + n > w->held_cap) {
        size_t cap =
            w->held_cap * 2 > w->held_n + n ? w->held_cap * 2 : w->held_n + n;
        struct worker_held *v = cd_realloc(w->held, cap * sizeof(*v));

        if (v == NULL)
            goto nomem;
        w->held = v;
        w->held_cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        w->held[w->held_n++] =
            (struct worker_held){.job = &b->m.u.jobs.jobs[i], .batch = b};
    b->left = n;
    return;
nomem:
    CD_LOG_ERR("worker", "WORKER-NOMEM",
               "dropping received jobs=%zu (the node releases them after "
               "retry_after)",
               n);
drop:
    msg_free(&b->m);
    cd_free(b);
}

/* Turns every held, unstarted job into a RETURN outcome. */
static void
worker_return_held(cadre_worker *w)
{
    while (w->held_n > 0) {
        struct worker_held *h = &w->held[w->held_head++];
        size_t              i = worker_outs_slot(w);

        w->held_n--;
        task_outcome_make(h->job, MSG_OUTCOME_RETURN, NULL, NULL, &w->outs[i],
                          &w->owns[i]);
        worker_batch_rele(h->batch);
    }
    w->held_head = 0;
}

/* ---- talking to the node ------------------------------------------------- */

static int
worker_nng_err(cadre_worker *w, int rv, const char *what)
{
    int code;

    switch (rv) {
    case NNG_ETIMEDOUT:
        code = CADRE_ETIMEDOUT;
        break;
    case NNG_ECONNREFUSED:
        code = CADRE_ECONNREFUSED;
        break;
    case NNG_ECLOSED:
        code = CADRE_ECLOSED;
        break;
    case NNG_ENOMEM:
        code = CADRE_ENOMEM;
        break;
    case NNG_EADDRINVAL:
    case NNG_EINVAL:
    case NNG_ENOTSUP:
        code = CADRE_EINVAL;
        break;
    default:
        code = CADRE_EIO;
        break;
    }
    return cd_err_set(&w->err, code, "%s %s: %s", what, w->url,
                      nng_strerror(rv));
}

/* How many of the pending outcomes fit in one frame (at least one: a result
 * is at most TASK_RESULT_MAX and messages TASK_ERROR_MAX). */
static size_t
worker_outs_fitting(const cadre_worker *w)
{
    size_t room = (size_t)WIRE_MAX_DEFAULT - WIRE_OVERHEAD - WORKER_FRAME_SLACK;
    size_t used = 0, k;

    if (w->one_per_frame && w->outs_n > 0)
        return 1;
    for (k = 0; k < w->outs_n; k++) {
        const struct msg_outcome *o = &w->outs[k];
        size_t                    n =
            o->result.len + strlen(o->error_type) + strlen(o->error) + 128;

        if (k > 0 && used + n > room)
            break;
        used += n;
    }
    return k;
}

/* One request: a fetch for max jobs (long poll of wait_ms) carrying the first
 * outs_k pending outcomes. On CADRE_OK the node has them and the jobs of its
 * reply are held. On error the outcomes stay pending (the node treats them
 * idempotently by lease) and w->err says why. */
static int
worker_request(cadre_worker *w, uint32_t max, uint32_t wait_ms, int stopping,
               size_t outs_k)
{
    struct msg           m;
    struct worker_batch *b = NULL;
    nng_msg             *req = NULL, *rep = NULL;
    size_t               size, len = 0;
    nng_duration         recv_ms;
    int                  rv, rc;

    memset(&m, 0, sizeof(m));
    m.request_id = ++w->request_id;
    m.kind = MSG_FETCH;
    m.u.fetch = (struct msg_fetch){
        .queues = (const char **)w->queues,
        .queues_n = w->queues_n,
        .max = max,
        .wait_ms = wait_ms,
        .outcomes = w->outs,
        .outcomes_n = outs_k,
        .worker_id = w->worker_id,
        .stopping = stopping,
        .default_tries = w->tries,
    };
    size = wire_frame_size(&m);
    if (size == 0)
        return cd_err_set(&w->err, CADRE_EINTERNAL,
                          "fetch: message cannot be encoded");
    if ((rv = nng_msg_alloc(&req, size)) != 0)
        return worker_nng_err(w, rv, "fetch: allocate frame for");
    rc = wire_seal(&w->sender, &m, nng_msg_body(req), size, WIRE_MAX_DEFAULT,
                   &len);
    if (rc != CADRE_OK) {
        nng_msg_free(req);
        return cd_err_set(&w->err, rc, "fetch: seal %zu outcomes: %s", outs_k,
                          cadre_strerror(rc));
    }
    nng_msg_chop(req, size - len);

    /* The node holds the request up to wait_ms; beyond that plus slack the
     * node is gone (or cannot open our frames). */
    recv_ms = (uint64_t)wait_ms + WORKER_REPLY_SLACK_MS > INT32_MAX
                  ? INT32_MAX
                  : (nng_duration)(wait_ms + WORKER_REPLY_SLACK_MS);
    if (recv_ms != w->recv_timeout_ms &&
        nng_socket_set_ms(w->sock, NNG_OPT_RECVTIMEO, recv_ms) == 0)
        w->recv_timeout_ms = recv_ms;
    if ((rv = nng_sendmsg(w->sock, req, 0)) != 0) {
        nng_msg_free(req);
        return worker_nng_err(w, rv, "fetch: send to");
    }
    if ((rv = nng_recvmsg(w->sock, &rep, 0)) != 0)
        return worker_nng_err(w, rv, "fetch: no reply from");

    b = cd_calloc(1, sizeof(*b));
    if (b == NULL) {
        nng_msg_free(rep);
        return cd_err_set(&w->err, CADRE_ENOMEM, "fetch: out of memory");
    }
    rc = wire_open(&w->ring, nng_msg_body(rep), nng_msg_len(rep),
                   WIRE_MAX_DEFAULT, NULL, &b->m, &w->err);
    nng_msg_free(rep);
    if (rc != CADRE_OK) {
        cd_free(b);
        return cd_err_wrap(&w->err, "fetch: reply from %s", w->url);
    }
    if (b->m.kind == MSG_JOBS) {
        worker_hold(w, b);
        return CADRE_OK;
    }
    if (b->m.kind == MSG_ERROR) {
        const struct msg_error *e = &b->m.u.error;
        int                     code =
            e->code > 0 && e->code < CADRE_E_COUNT ? e->code : CADRE_EPROTO;

        cd_err_set(&w->err, code, "fetch: node %s: %s", w->url,
                   e->message != NULL && e->message[0] != '\0'
                       ? e->message
                       : cadre_strerror(code));
        if (code == CADRE_EAUTH || code == CADRE_EVERSION)
            w->fatal = 1; /* CADRE_ETOOBIG: worker_report shrinks */
    } else {
        cd_err_set(&w->err, CADRE_EPROTO, "fetch: node %s: unexpected reply %s",
                   w->url, msg_kind_name(b->m.kind));
    }
    msg_free(&b->m);
    cd_free(b);
    return w->err.code;
}

/* The node's frame limit is below ours (its --max-frame) and the first
 * outcome alone was refused: make it smaller, so that one outcome can never
 * block every later report. A result becomes a ResultTooBig error, a long
 * message is cut; an outcome that is already minimal is dropped (the node
 * re-runs its job after retry_after). */
static void
worker_outs_shrink(cadre_worker *w)
{
    struct msg_outcome *o = &w->outs[0];
    struct task_own    *own = &w->owns[0];
    struct msg_outcome  small;
    struct task_own     small_own;
    char                msg[192];
    size_t              result_len = o->result.len;

    if (result_len == 0 && strlen(o->error) <= 200) {
        CD_LOG_ERR("worker", "WORKER-OUTCOME-DROPPED",
                   "kind=%d lease=%" PRIu64 " (refused by the node as too big)",
                   o->kind, o->lease);
        worker_outs_drop(w, 1);
        return;
    }
    /* task_outcome_make only reads the job's id and lease. */
    {
        struct msg_job job = {.id = o->id, .lease = o->lease};

        if (result_len > 0) {
            snprintf(msg, sizeof(msg),
                     "result of %zu bytes exceeds the node's frame limit",
                     result_len);
            task_outcome_make(&job, MSG_OUTCOME_ERROR, "ResultTooBig", msg,
                              &small, &small_own);
        } else {
            snprintf(msg, sizeof(msg), "%.100s... (cut: too big for the node)",
                     o->error);
            task_outcome_make(&job, o->kind, o->error_type, msg, &small,
                              &small_own);
            small.release_delay_ms = o->release_delay_ms;
        }
    }
    CD_LOG_WARN("worker", "WORKER-OUTCOME-SHRUNK",
                "lease=%" PRIu64 " result_len=%zu (refused by the node as too "
                "big)",
                o->lease, result_len);
    task_own_free(own);
    *o = small;
    *own = small_own;
}

/* Sends every pending outcome, in as many frames as they need; the last frame
 * asks for max jobs with a long poll of wait_ms, and says stopping. Outcomes
 * are dropped only once the node acknowledged them. */
static int
worker_report(cadre_worker *w, uint32_t max, uint32_t wait_ms, int stopping)
{
    for (;;) {
        size_t k = worker_outs_fitting(w);
        int    last = k == w->outs_n;
        int    rc;

        rc = worker_request(w, last ? max : 0, last ? wait_ms : 0,
                            last && stopping, k);
        if (rc == CADRE_ETOOBIG && k > 0) {
            if (k > 1)
                w->one_per_frame = 1; /* find the outcome it chokes on */
            else
                worker_outs_shrink(w);
            continue;
        }
        if (rc != CADRE_OK)
            return rc;
        worker_outs_drop(w, k);
        if (w->outs_n == 0)
            w->one_per_frame = 0;
        if (last)
            return CADRE_OK;
    }
}

/* ---- the watchdog -------------------------------------------------------- */

static void
worker_watch_timed_out(cadre_worker *w)
{
    struct worker_watch *wd = &w->watch;
    char                 id[CD_ID_TEXT_LEN + 1];
    char                 msg[96];
    size_t               i;

    cadre_job_id_format(&wd->job->id, id);
    CD_LOG_ERR("worker", "WORKER-HANDLER-TIMEOUT",
               "id=%s task=%s timeout_ms=%" PRIu64
               " action=report-and-exit status=%d",
               id, wd->job->task != NULL ? wd->job->task : "", wd->timeout_ms,
               WORKER_EXIT_TIMEOUT);
    snprintf(msg, sizeof(msg), "handler still running after %" PRIu64 " ms",
             wd->timeout_ms);
    i = worker_outs_slot(w);
    task_outcome_make(wd->job, MSG_OUTCOME_ERROR, "TimedOut", msg, &w->outs[i],
                      &w->owns[i]);
    worker_return_held(w);
    for (int tries = 0; tries < WORKER_FINAL_TRIES; tries++)
        if (worker_report(w, 0, 0, 1) == CADRE_OK)
            break;
    _exit(WORKER_EXIT_TIMEOUT);
}

/* Sends one heartbeat for job (id, lease): a Fetch asking for nothing, on
 * the watchdog's own nng context, so the run thread's request is not
 * disturbed. A lost beat is harmless: the next one, or the outcome, follows. */
static void
worker_beat(cadre_worker *w, const cadre_job_id *id, uint64_t lease,
            uint64_t timeout_ms)
{
    struct worker_watch *wd = &w->watch;
    struct msg_touch     touch = {.id = *id, .lease = lease};
    struct msg           m = {.kind = MSG_FETCH};
    nng_msg             *req = NULL;
    size_t               size, len = 0;

    if (wd->beat_aio == NULL && (nng_ctx_open(&wd->beat_ctx, w->sock) != 0 ||
                                 nng_aio_alloc(&wd->beat_aio, NULL, NULL) != 0))
        return;
    m.u.fetch = (struct msg_fetch){
        .worker_id = w->worker_id, .touch = &touch, .touch_n = 1};
    size = wire_frame_size(&m);
    if (size == 0 || nng_msg_alloc(&req, size) != 0)
        return;
    if (wire_seal(&w->sender, &m, nng_msg_body(req), size, WIRE_MAX_DEFAULT,
                  &len) != CADRE_OK) {
        nng_msg_free(req);
        return;
    }
    nng_msg_chop(req, size - len);
    nng_aio_set_timeout(wd->beat_aio, (nng_duration)timeout_ms);
    nng_aio_set_msg(wd->beat_aio, req);
    nng_ctx_send(wd->beat_ctx, wd->beat_aio);
    nng_aio_wait(wd->beat_aio);
    if (nng_aio_result(wd->beat_aio) != 0) {
        nng_msg_free(nng_aio_get_msg(wd->beat_aio));
        CD_LOG_DEBUG("worker", "WORKER-BEAT-LOST", "url=%s", w->url);
        return;
    }
    nng_ctx_recv(wd->beat_ctx, wd->beat_aio);
    nng_aio_wait(wd->beat_aio);
    if (nng_aio_result(wd->beat_aio) == 0)
        nng_msg_free(nng_aio_get_msg(wd->beat_aio));
}

static void *
worker_watch_main(void *arg)
{
    cadre_worker        *w = arg;
    struct worker_watch *wd = &w->watch;

    pthread_mutex_lock(&wd->mu);
    while (!wd->quit) {
        uint64_t        now = cd_mono_ms(), wake;
        struct timespec ts;

        /* Idle, it looks every WORKER_WATCH_IDLE_MS: arming for heartbeats
         * alone does not wake it, which keeps fast jobs free of a thread
         * switch each. */
        wake = now + WORKER_WATCH_IDLE_MS;
        if (!wd->armed)
            goto sleep;
        if (now >= wd->deadline_mono_ms)
            worker_watch_timed_out(w); /* keeps mu: the run thread waits */
        if (wd->beat_ms != 0 && now >= wd->next_beat_mono_ms) {
            cadre_job_id id = wd->job->id;
            uint64_t     lease = wd->job->lease, every = wd->beat_ms;

            wd->next_beat_mono_ms = now + every;
            pthread_mutex_unlock(&wd->mu);
            worker_beat(w, &id, lease, every);
            pthread_mutex_lock(&wd->mu);
            continue;
        }
        if (wd->deadline_mono_ms < wake)
            wake = wd->deadline_mono_ms;
        if (wd->beat_ms != 0 && wd->next_beat_mono_ms < wake)
            wake = wd->next_beat_mono_ms;
    sleep:
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)((wake - now) / 1000);
        ts.tv_nsec += (long)((wake - now) % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
    }
    pthread_mutex_unlock(&wd->mu);
    return NULL;
}
static int
worker_watch_init(struct worker_watch *wd)
{
    pthread_condattr_t ca;

    memset(wd, 0, sizeof(*wd));
    if (pthread_mutex_init(&wd->mu, NULL) != 0)
        return CADRE_ENOMEM;
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&wd->mu);
        return CADRE_ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&wd->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&wd->mu);
        return CADRE_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    return CADRE_OK;
}

static void
worker_watch_fini(struct worker_watch *wd)
{
    if (wd->started) {
        pthread_mutex_lock(&wd->mu);
        wd->quit = 1;
        pthread_cond_signal(&wd->cv);
        pthread_mutex_unlock(&wd->mu);
        pthread_join(wd->thread, NULL);
    }
    if (wd->beat_aio != NULL)
        nng_aio_free(wd->beat_aio);
    pthread_cond_destroy(&wd->cv);
    pthread_mutex_destroy(&wd->mu);
}

/* Arms the watchdog for a handler that cannot enforce timeout_ms itself. */
/* Heartbeats go out three times per lease, so one lost beat is not an
 * expired lease; none for leases too short to matter (0: unknown). */
static uint64_t
worker_beat_every_ms(uint64_t lease_ms)
{
    return lease_ms >= 3 * WORKER_WATCH_IDLE_MS ? lease_ms / 3 : 0;
}

/* Watches job while it runs: enforces timeout_ms (0: none; exec handlers
 * enforce their own) and sends lease heartbeats. */
static void
worker_watch_arm(cadre_worker *w, const struct msg_job *job,
                 uint64_t timeout_ms)
{
    struct worker_watch *wd = &w->watch;

    if (!wd->started) {
        int rv = pthread_create(&wd->thread, NULL, worker_watch_main, w);

        if (rv != 0) {
            CD_LOG_WARN("worker", "WORKER-NO-WATCHDOG",
                        "cannot start the timeout watchdog: %s", strerror(rv));
            return;
        }
        wd->started = 1;
    }
    pthread_mutex_lock(&wd->mu);
    wd->armed = 1;
    wd->job = job;
    wd->timeout_ms = timeout_ms;
    wd->deadline_mono_ms =
        timeout_ms != 0 ? cd_mono_ms() + timeout_ms : UINT64_MAX;
    wd->beat_ms = worker_beat_every_ms(job->lease_ms);
    wd->next_beat_mono_ms = cd_mono_ms() + wd->beat_ms;
    if (timeout_ms != 0) /* a deadline may be nearer than its next look */
        pthread_cond_signal(&wd->cv);
    pthread_mutex_unlock(&wd->mu);
}

static void
worker_watch_disarm(cadre_worker *w)
{
    struct worker_watch *wd = &w->watch;

    if (!wd->started)
        return;
    pthread_mutex_lock(&wd->mu);
    wd->armed = 0;
    wd->job = NULL;
    pthread_mutex_unlock(&wd->mu);
}

/* ---- running jobs -------------------------------------------------------- */

/* An encrypted job (its payload sealed by the client with the application
 * key): opens it for the handler, or fails the job for good when this
 * worker cannot (no key, another key, tampered): retrying would not help.
 * Returns 1 if the handler may run. */
static int
worker_open_sealed(cadre_worker *w, cadre_task *t)
{
    const struct msg_job *job = t->job;
    char                  msg[CD_ERR_MSG_MAX + 64];
    cd_err                err = {0};

    if (!appseal_is_sealed(job->payload.data, job->payload.len))
        return 1;
    if (!w->has_app_key) {
        task_set_error(t, MSG_OUTCOME_FAIL, "EncryptionError",
                       "cannot open encrypted payload: no application key "
                       "(--app-key-file or CADRE_APP_KEY_FILE)");
        return 0;
    }
    if (appseal_open(&w->app_key, job->payload.data, job->payload.len,
                     &t->plain, &t->plain_len, &err) != CADRE_OK) {
        snprintf(msg, sizeof(msg), "cannot open encrypted payload: %s",
                 err.msg);
        task_set_error(t, MSG_OUTCOME_FAIL, "EncryptionError", msg);
        return 0;
    }
    t->sealed = 1;
    return 1;
}

/* The error message of an encrypted job leaves the worker sealed: it may
 * quote the payload. The type stays readable for policies and operators. */
static void
worker_seal_error(cadre_worker *w, cadre_task *t)
{
    char *sealed = NULL;

    if (t->error == NULL || t->error[0] == '\0')
        return;
    if (appseal_seal_text(&w->app_key, t->error, &sealed) != CADRE_OK)
        return; /* out of memory: the error below replaces it */
    cd_free(t->error);
    t->error = sealed;
}

/* The result (and error text) of an encrypted job leaves the worker sealed
 * too. */
static void
worker_seal_result(cadre_worker *w, cadre_task *t)
{
    uint8_t *sealed = NULL;
    size_t   len = 0;

    if (!t->sealed)
        return;
    if (t->kind != MSG_OUTCOME_DONE) {
        worker_seal_error(w, t);
        return;
    }
    if (appseal_seal(&w->app_key, t->result ? t->result : (uint8_t *)"",
                     t->result_len, &sealed, &len) != CADRE_OK) {
        task_set_error(t, MSG_OUTCOME_ERROR, "EncryptionError",
                       "cannot seal the result: out of memory");
        return;
    }
    cd_free(t->result);
    t->result = sealed;
    t->result_len = len;
}

/* Job middleware before the handler: 1 to run it; 0 when it released the
 * attempt (the outcome is set). */
static int
worker_mw_before(cadre_worker *w, cadre_task *t, struct mw_attempt *a)
{
    a->job = t->job;
    a->owner = t->id_text;
    if (mw_before(&w->mw, a))
        return 1;
    if (a->fail)
        task_set_error(t, MSG_OUTCOME_FAIL, "MiddlewareError", a->why);
    else
        cadre_task_release(t, a->delay_ms);
    CD_LOG_INFO("worker", "WORKER-MW-RELEASE",
                "id=%s delay_ms=%" PRIu64 " why=\"%s\"", t->id_text,
                a->delay_ms, a->why);
    a->job = NULL; /* nothing to undo after */
    return 0;
}

/* Job middleware after the handler: unlocks, counts an error, and may turn
 * the outcome into a release (an open exception circuit). */
static void
worker_mw_after(cadre_worker *w, cadre_task *t, struct mw_attempt *a)
{
    if (a->job == NULL)
        return;
    if (mw_after(&w->mw, a, t->kind == MSG_OUTCOME_ERROR)) {
        cadre_task_release(t, a->delay_ms);
        CD_LOG_INFO("worker", "WORKER-MW-RELEASE",
                    "id=%s delay_ms=%" PRIu64 " why=\"%s\"", t->id_text,
                    a->delay_ms, a->why);
    }
}

static void
worker_run_next(cadre_worker *w)
{
    struct worker_held    h = w->held[w->held_head++];
    const struct msg_job *job = h.job;
    const char           *name = job->task != NULL ? job->task : "";
    const struct handler *hd;
    cadre_task            t;
    struct mw_attempt     mwa = {0};
    size_t                i;
    uint64_t              start_us = cd_mono_us();

    if (--w->held_n == 0)
        w->held_head = 0;
    w->jobs_started++;
    task_init(&t, job, w->timeout_ms);
    hd = handler_find(&w->reg, name);
    if (!worker_open_sealed(w, &t)) {
        /* failed: the outcome is set */
    } else if (hd == NULL) {
        char msg[TASK_ERROR_MAX + 64];

        snprintf(msg, sizeof(msg), "no handler for task '%s'", name);
        task_set_error(&t, MSG_OUTCOME_FAIL, "NoHandler", msg);
    } else if (mw_any(job) && !worker_mw_before(w, &t, &mwa)) {
        /* held back by its middleware: released */
    } else {
        uint64_t enforce = hd->ops->own_timeout ? 0 : t.timeout_ms;

        if (enforce != 0 || worker_beat_every_ms(job->lease_ms) != 0) {
            worker_watch_arm(w, job, enforce);
            handler_run(&w->reg, hd, &t);
            worker_watch_disarm(w);
        } else {
            handler_run(&w->reg, hd, &t);
        }
        worker_mw_after(w, &t, &mwa);
    }
    w->avg_job_us =
        worker_avg_next(w->avg_job_us, cd_mono_us() - start_us, w->jobs_run);
    w->jobs_run++;
    CD_LOG_DEBUG("worker", "WORKER-JOB",
                 "id=%s task=%s attempt=%" PRIu32 " outcome=%d us=%" PRIu64,
                 t.id_text, name, job->attempt, t.kind,
                 cd_mono_us() - start_us);
    worker_seal_result(w, &t);
    i = worker_outs_slot(w);
    task_take_outcome(&t, &w->outs[i], &w->owns[i]);
    worker_batch_rele(h.batch);
}

/* Resident memory of this process in MiB (0 if /proc is unreadable). */
static uint64_t
worker_rss_mb(void)
{
    unsigned long pages = 0, resident = 0;
    FILE         *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) >> 20;
}

/* Whether a limit says the worker should stop after the current job
 * (Laravel's --max-jobs, --max-time, --memory, --stop-when-empty). The
 * memory is read at most every 100 ms: /proc costs a few microseconds. */
static int
worker_limit_reached(cadre_worker *w)
{
    uint64_t now;

    if (w->limit != NULL)
        return 1;
    if (w->max_jobs != 0 && w->jobs_started >= w->max_jobs)
        w->limit = "max-jobs";
    else if (w->empty)
        w->limit = "empty";
    if (w->limit != NULL || (w->max_time_ms == 0 && w->memory_mb == 0))
        return w->limit != NULL;
    now = cd_mono_ms();
    if (w->max_time_ms != 0 && now >= w->started_mono_ms + w->max_time_ms)
        w->limit = "max-time";
    else if (w->memory_mb != 0 && now >= w->memory_checked_mono_ms + 100) {
        w->memory_checked_mono_ms = now;
        if (worker_rss_mb() >= w->memory_mb)
            w->limit = "memory";
    }
    return w->limit != NULL;
}

/* Sleeps ms, waking early when asked to stop. */
static void
worker_pause(cadre_worker *w, uint32_t ms)
{
    uint64_t until = cd_mono_ms() + ms;

    while (!w->stop) {
        uint64_t now = cd_mono_ms();

        if (now >= until)
            break;
        cd_sleep_ms(until - now < 20 ? until - now : 20);
    }
}

/* Logs a failed request (loudly once per streak) and returns the backoff. */
static uint32_t
worker_failed(cadre_worker *w, uint32_t backoff_ms, uint64_t *down_since_ms)
{
    uint32_t next = worker_backoff_next(backoff_ms);

    if (*down_since_ms == 0) {
        *down_since_ms = cd_mono_ms();
        CD_LOG_WARN("worker", "WORKER-FETCH-FAILED",
                    "url=%s backoff_ms=%u err=\"%s\"", w->url, next,
                    w->err.msg);
    } else {
        CD_LOG_DEBUG("worker", "WORKER-FETCH-FAILED",
                     "url=%s backoff_ms=%u err=\"%s\"", w->url, next,
                     w->err.msg);
    }
    return next;
}

static void
worker_succeeded(cadre_worker *w, uint64_t *down_since_ms)
{
    if (*down_since_ms != 0)
        CD_LOG_NOTICE("worker", "WORKER-FETCH-RECOVERED",
                      "url=%s after_ms=%" PRIu64, w->url,
                      cd_mono_ms() - *down_since_ms);
    *down_since_ms = 0;
}

int
cadre_worker_run(cadre_worker *w)
{
    uint32_t backoff_ms = 0;
    uint64_t retry_at_ms = 0, down_since_ms = 0;
    int      rc;

    cd_err_clear(&w->err);
    w->started_mono_ms = cd_mono_ms();
    w->limit = NULL;
    w->empty = 0;
    CD_LOG_INFO("worker", "WORKER-START",
                "url=%s worker_id=%016" PRIx64 " prefetch=%u sleep_ms=%u "
                "max_jobs=%u timeout_ms=%" PRIu64 " handlers=%zu",
                w->url, w->worker_id, w->prefetch, w->sleep_ms, w->max_jobs,
                w->timeout_ms, w->reg.n);
    while (!w->stop && !worker_limit_reached(w) && !w->fatal) {
        uint64_t now;

        if (w->held_n == 0) {
            uint32_t cap =
                worker_batch_cap(w->prefetch, w->avg_job_us, w->jobs_run);
            uint32_t max =
                worker_fetch_max(cap, w->max_jobs, w->jobs_started, w->held_n);

            if (worker_report(w, max, w->sleep_ms, 0) == CADRE_OK) {
                worker_succeeded(w, &down_since_ms);
                backoff_ms = 0;
                w->empty = w->stop_when_empty && max > 0 && w->held_n == 0;
            } else if (!w->fatal) {
                backoff_ms = worker_failed(w, backoff_ms, &down_since_ms);
                worker_pause(w, backoff_ms);
            }
            continue;
        }
        worker_run_next(w);
        if (w->stop || worker_limit_reached(w) || w->held_n == 0)
            continue; /* the fetch or the final report carries the outcome */
        now = cd_mono_ms();
        if (now >= retry_at_ms &&
            worker_should_report(w->held_n, w->outs_n, w->outs_oldest_mono_ms,
                                 now)) {
            if (worker_report(w, 0, 0, 0) == CADRE_OK) {
                worker_succeeded(w, &down_since_ms);
                backoff_ms = 0;
            } else if (!w->fatal) {
                /* Keep running what we hold; try again after the backoff. */
                backoff_ms = worker_failed(w, backoff_ms, &down_since_ms);
                retry_at_ms = cd_mono_ms() + backoff_ms;
            }
        }
    }
    if (w->fatal) {
        CD_LOG_ERR("worker", "WORKER-REFUSED", "url=%s err=\"%s\"", w->url,
                   w->err.msg);
        return w->err.code;
    }

    /* Stop: the unstarted jobs go back, then the last report. A reply that
     * still carries jobs (it asked for none) has them returned too. */
    backoff_ms = 0;
    for (int tries = 0;; tries++) {
        worker_return_held(w);
        rc = worker_report(w, 0, 0, 1);
        if ((rc == CADRE_OK && w->held_n == 0) || w->fatal ||
            tries + 1 >= WORKER_FINAL_TRIES)
            break;
        if (rc != CADRE_OK) {
            backoff_ms = worker_backoff_next(backoff_ms);
            cd_sleep_ms(backoff_ms);
        }
    }
    if (rc != CADRE_OK)
        CD_LOG_WARN("worker", "WORKER-REPORT-LOST",
                    "url=%s outcomes=%zu err=\"%s\" (the node re-runs or "
                    "releases those jobs after retry_after)",
                    w->url, w->outs_n, w->err.msg);
    CD_LOG_INFO("worker", "WORKER-STOP", "url=%s jobs=%" PRIu64 " limit=%s",
                w->url, w->jobs_started, w->limit ? w->limit : "none");
    worker_outs_drop(w, w->outs_n);
    cd_err_clear(&w->err);
    return CADRE_OK;
}

void
cadre_worker_stop(cadre_worker *w)
{
    if (w != NULL)
        atomic_store_explicit(&w->stop, 1, memory_order_relaxed);
}

/* ---- open, register, close ----------------------------------------------- */

/* Copies the queue list (default {"default"}). */
static int
worker_set_queues(cadre_worker *w, const char **queues, size_t n)
{
    static const char *dflt[] = {"default"};

    if (queues == NULL || n == 0) {
        queues = dflt;
        n = 1;
    }
    w->queues = cd_calloc(n, sizeof(char *));
    if (w->queues == NULL)
        return cd_err_set(&w->err, CADRE_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (queues[i] == NULL || queues[i][0] == '\0')
            return cd_err_set(&w->err, CADRE_EINVAL, "empty queue name");
        w->queues[i] = cd_strdup(queues[i]);
        if (w->queues[i] == NULL)
            return cd_err_set(&w->err, CADRE_ENOMEM, "out of memory");
        w->queues_n = i + 1;
    }
    return CADRE_OK;
}

/* A tls+tcp:// url (an optional outer layer; frames stay sealed inside):
 * the worker presents its certificate, and with a CA (mutual TLS) the
 * node's must chain to it and name the url's host, as nng checks by
 * default. Files from opts, else $CADRE_TLS_CERT / $CADRE_TLS_CA. */
static int
worker_tls(cadre_worker *w, nng_dialer d, const cadre_worker_opts *opts)
{
    static const char *const envs[2] = {"CADRE_TLS_CERT", "CADRE_TLS_CA"};
    static const char *const nng_opts[2] = {NNG_OPT_TLS_CERT_KEY_FILE,
                                            NNG_OPT_TLS_CA_FILE};
    const char *files[2] = {opts->tls_cert_file, opts->tls_ca_file};
    int         rv;

    for (int i = 0; i < 2; i++) {
        if (files[i] == NULL || files[i][0] == '\0')
            files[i] = getenv(envs[i]);
        if (files[i] == NULL || files[i][0] == '\0')
            files[i] = NULL;
        else if ((rv = nng_dialer_set_string(d, nng_opts[i], files[i])) != 0)
            return cd_err_set(&w->err, CADRE_EINVAL, "dial %s: tls %s: %s",
                              w->url, files[i], nng_strerror(rv));
    }
    rv = nng_dialer_set_int(d, NNG_OPT_TLS_AUTH_MODE,
                            files[1] != NULL ? NNG_TLS_AUTH_MODE_REQUIRED
                                             : NNG_TLS_AUTH_MODE_NONE);
    return rv == 0 ? CADRE_OK : worker_nng_err(w, rv, "tls auth mode for");
}

static int
worker_dial(cadre_worker *w, const cadre_worker_opts *opts)
{
    nng_dialer d;
    int        rv;

    if ((rv = nng_req0_open(&w->sock)) != 0)
        return worker_nng_err(w, rv, "open req socket for");
    w->sock_open = 1;
    mw_link_init(&w->mw, w->sock, &w->sender, &w->ring);
    /* A resent fetch would reserve jobs twice: never resend. Frames are
     * bounded before nng allocates them. nng's default redial (about 1 s,
     * randomised, or doubling with a maximum) would leave a restarted node
     * without workers for up to seconds: redial every ~100 ms instead. */
    if ((rv = nng_socket_set_ms(w->sock, NNG_OPT_REQ_RESENDTIME,
                                NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_size(w->sock, NNG_OPT_RECVMAXSZ,
                                  WIRE_MAX_DEFAULT)) != 0 ||
        (rv = nng_socket_set_ms(w->sock, NNG_OPT_SENDTIMEO,
                                WORKER_SEND_TIMEOUT_MS)) != 0 ||
        (rv = nng_socket_set_ms(w->sock, NNG_OPT_RECONNMINT,
                                WORKER_RECONNECT_MS)) != 0 ||
        (rv = nng_socket_set_ms(w->sock, NNG_OPT_RECONNMAXT, 0)) != 0)
        return worker_nng_err(w, rv, "set socket options for");
    if ((rv = nng_dialer_create(&d, w->sock, w->url)) != 0)
        return worker_nng_err(w, rv, "dial");
    if (strncmp(w->url, "tls+", 4) == 0 &&
        (rv = worker_tls(w, d, opts)) != CADRE_OK)
        return rv; /* closing the socket frees d */
    /* Non-blocking: the worker may start before its node and reconnects. */
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0)
        return worker_nng_err(w, rv, "dial");
    return CADRE_OK;
}

/* The application key: from path, else $CADRE_APP_KEY_FILE, else none
 * (encrypted jobs then fail with a clear error). */
static int
worker_load_app_key(cadre_worker *w, const char *path)
{
    if (path == NULL || path[0] == '\0')
        path = getenv("CADRE_APP_KEY_FILE");
    if (path == NULL || path[0] == '\0')
        return CADRE_OK;
    if (keys_load_for(path, KEYS_ROLE_APP, &w->app_key, &w->err) != CADRE_OK)
        return cd_err_wrap(&w->err, "application key");
    w->has_app_key = 1;
    return CADRE_OK;
}

int
cadre_worker_open(const cadre_worker_opts *opts, cadre_worker **out,
                  char *errbuf, size_t errbuf_len)
{
    static const cadre_worker_opts zero;
    cadre_worker                  *w;
    keys_key                       key;
    char                           path[WORKER_PATH_MAX];
    int                            rc;

    if (opts == NULL)
        opts = &zero;
    w = cd_calloc(1, sizeof(*w));
    if (w == NULL) {
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "open worker: out of memory");
        return CADRE_ENOMEM;
    }
    handler_registry_init(&w->reg);
    if ((rc = worker_watch_init(&w->watch)) != CADRE_OK) {
        cd_free(w);
        if (errbuf != NULL && errbuf_len > 0)
            snprintf(errbuf, errbuf_len, "open worker: out of memory");
        return rc;
    }
    w->prefetch =
        opts->prefetch != 0 ? opts->prefetch : WORKER_PREFETCH_DEFAULT;
    w->max_jobs = opts->max_jobs;
    w->timeout_ms = opts->timeout_ms;
    w->sleep_ms = opts->sleep_ms ? opts->sleep_ms : WORKER_SLEEP_DEFAULT_MS;
    w->max_time_ms = opts->max_time_ms;
    w->memory_mb = opts->memory_mb;
    w->stop_when_empty = opts->stop_when_empty;
    w->tries = opts->tries;
    w->recv_timeout_ms = -2; /* not set yet */
    cd_random(&w->worker_id, sizeof(w->worker_id));
    cd_url(opts->url, w->url, sizeof(w->url));
    if ((rc = worker_set_queues(w, opts->queues, opts->queues_n)) != CADRE_OK)
        goto fail;

    cd_key_path(opts->key_file, opts->data_dir, path, sizeof(path));
    if ((rc = keys_init()) != CADRE_OK) {
        cd_err_set(&w->err, rc, "libsodium: cannot initialise");
        goto fail;
    }
    if ((rc = keys_load_for(path, KEYS_ROLE_WORKER, &key, &w->err)) !=
        CADRE_OK) {
        cd_err_wrap(&w->err, "load worker key");
        goto fail;
    }
    if ((rc = worker_load_app_key(w, opts->app_key_file)) != CADRE_OK)
        goto fail;
    wire_sender_init(&w->sender, KEYS_ROLE_WORKER, &key, w->worker_id);
    w->ring.has[KEYS_ROLE_WORKER] = 1;
    w->ring.key[KEYS_ROLE_WORKER] = key;
    keys_wipe(&key);

    if ((rc = worker_dial(w, opts)) != CADRE_OK)
        goto fail;
    *out = w;
    return CADRE_OK;
fail:
    if (errbuf != NULL && errbuf_len > 0)
        cd_err_copy(&w->err, errbuf, errbuf_len);
    cadre_worker_close(w);
    return rc;
}

void
worker_set_sleep_ms(cadre_worker *w, uint32_t sleep_ms)
{
    w->sleep_ms = sleep_ms;
}

const char *
worker_errmsg(const cadre_worker *w)
{
    if (w->err.code != CADRE_OK)
        return w->err.msg[0] != '\0' ? w->err.msg : cadre_strerror(w->err.code);
    return "";
}

int
cadre_worker_handle(cadre_worker *w, const char *name, cadre_handler_fn fn,
                    void *arg)
{
    int rc = cadre_registry_add(&w->reg, name, fn, arg);

    if (rc != CADRE_OK)
        w->err = w->reg.err;
    return rc;
}

int
cadre_worker_load_plugin(cadre_worker *w, const char *path, char *errbuf,
                         size_t errbuf_len)
{
    int rc = handler_load_plugin(&w->reg, path, &w->err);

    if (rc != CADRE_OK && errbuf != NULL && errbuf_len > 0)
        cd_err_copy(&w->err, errbuf, errbuf_len);
    return rc;
}

int
cadre_worker_exec(cadre_worker *w, const char *name, const char *cmd)
{
    return exec_add(&w->reg, name, cmd, &w->err);
}

static void
worker_close_now(void *arg)
{
    nng_close(*(nng_socket *)arg);
}

/* nng 1.5.2 can deadlock in nng_close (common/bounded.h): a worker that
 * must exit does not wait for it forever. */
static void
worker_close_socket(nng_socket s)
{
    cd_run_bounded(worker_close_now, &s, sizeof(s), 3000);
}

void
cadre_worker_close(cadre_worker *w)
{
    if (w == NULL)
        return;
    worker_watch_fini(&w->watch);
    mw_link_fini(&w->mw);
    if (w->sock_open)
        worker_close_socket(w->sock);
    while (w->held_n > 0) {
        worker_batch_rele(w->held[w->held_head++].batch);
        w->held_n--;
    }
    cd_free(w->held);
    worker_outs_drop(w, w->outs_n);
    cd_free(w->outs);
    cd_free(w->owns);
    handler_registry_fini(&w->reg);
    for (size_t i = 0; i < w->queues_n; i++)
        cd_free(w->queues[i]);
    cd_free(w->queues);
    keys_wipe(&w->sender.key);
    keys_wipe(&w->ring.key[KEYS_ROLE_WORKER]);
    keys_wipe(&w->app_key);
    cd_free(w);
}
