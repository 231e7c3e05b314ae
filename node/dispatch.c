/* dispatch.c: parked fetches, the worker table and outcome handling. */
#include "node/dispatch.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/policy.h"

#define DISPATCH_MAX_BATCH 1024
#define DISPATCH_WORKER_TTL_MS 30000
/* A live worker always has a fetch pending or sends one within its wait
 * (1 s by default): one silent for longer than this holds nothing we wait
 * for at shutdown. */
#define DISPATCH_LIVE_MS 5000

struct parked {
    struct api_req *req;
    int             role;
    struct msg      m;
    uint64_t        deadline_mono_ms;
    struct parked  *next;
};

struct dworker {
    uint64_t id;
    uint64_t seen_mono_ms;
    uint64_t held;
};

struct dispatch {
    struct dispatch_config cfg;
    struct parked         *head, *tail;
    size_t                 parked_n;
    struct dworker        *workers;
    size_t                 workers_n, workers_cap;
    uint64_t               stale, expired, touched;
    struct dispatch_source src; /* in-memory jobs first (runs); may be unset */
};

int
dispatch_new(const struct dispatch_config *cfg, struct dispatch **out)
{
    struct dispatch *d = cd_calloc(1, sizeof(*d));

    if (d == NULL)
        return CADRE_ENOMEM;
    d->cfg = *cfg;
    *out = d;
    return CADRE_OK;
}

void
dispatch_free(struct dispatch *d)
{
    if (d == NULL)
        return;
    while (d->head != NULL) {
        struct parked *p = d->head;

        d->head = p->next;
        api_drop(p->req);
        msg_free(&p->m);
        cd_free(p);
    }
    cd_free(d->workers);
    cd_free(d);
}

void
dispatch_set_source(struct dispatch *d, const struct dispatch_source *src)
{
    memset(&d->src, 0, sizeof(d->src));
    if (src != NULL)
        d->src = *src;
}

/* Jobs the source has waiting for the queues of f (0 without a source). */
static uint64_t
dispatch_src_pending(const struct dispatch *d, const struct msg_fetch *f)
{
    if (d->src.pending_cb == NULL)
        return 0;
    return d->src.pending_cb(d->src.arg, (const char *const *)f->queues,
                             f->queues_n);
}

static struct dworker *
dispatch_worker(struct dispatch *d, uint64_t id, uint64_t now_mono_ms)
{
    for (size_t i = 0; i < d->workers_n; i++) {
        if (d->workers[i].id == id) {
            d->workers[i].seen_mono_ms = now_mono_ms;
            return &d->workers[i];
        }
    }
    if (d->workers_n == d->workers_cap) {
        size_t          cap = d->workers_cap ? d->workers_cap * 2 : 16;
        struct dworker *w = cd_realloc(d->workers, cap * sizeof(*w));

        if (w == NULL)
            return NULL;
        d->workers = w;
        d->workers_cap = cap;
    }
    d->workers[d->workers_n] = (struct dworker){id, now_mono_ms, 0};
    return &d->workers[d->workers_n++];
}

static void
dispatch_forget_worker(struct dispatch *d, uint64_t id)
{
    for (size_t i = 0; i < d->workers_n; i++) {
        if (d->workers[i].id == id) {
            d->workers[i] = d->workers[--d->workers_n];
            return;
        }
    }
}

static int
dispatch_set_error(struct store_job *job, const char *type, const char *msg)
{
    cd_free(job->error_type);
    cd_free(job->error);
    job->error_type = cd_strdup(type ? type : "Error");
    job->error = cd_strdup(msg ? msg : "");
    return job->error_type && job->error ? CADRE_OK : CADRE_ENOMEM;
}

/* Puts job back per decision d: retried (delayed or ready, at the back of
 * its queue) or failed. why_type: the error type a released event carries
 * (NULL: released on request). */
static int
dispatch_decide(struct turn *t, struct store_job *job,
                const struct policy_decision *d, const char *why_type,
                cd_err *err)
{
    int rc;

    if (d->action == POLICY_FAIL) {
        if (d->error_type != NULL) {
            char msg[160];

            snprintf(msg, sizeof(msg), "%s after %u attempt(s)%s%s",
                     d->error_type, job->attempts,
                     job->error ? "; last error: " : "",
                     job->error ? job->error : "");
            dispatch_set_error(job, d->error_type, msg);
        }
        job->state = STORE_FAILED;
        if (store_job_finish(t->txn, job, t->now_ms, err) != CADRE_OK)
            return err->code;
        turn_event(t, MSG_EVENT_FAILED, &job->id, job->task, job->queue,
                   job->attempts, job->error_type);
        turn_finished(t, job);
        return CADRE_OK;
    }
    job->available_at_ms = d->available_at_ms;
    job->state = d->available_at_ms > t->now_ms ? STORE_DELAYED : STORE_READY;
    job->seq = 0;
    rc = store_job_save(t->txn, job, err);
    if (rc == CADRE_OK)
        turn_event(t, MSG_EVENT_RELEASED, &job->id, job->task, job->queue,
                   job->attempts, why_type);
    return rc;
}

/* Applies one outcome. A job no longer reserved under this lease is a stale
 * report (a retried request, or a lease that expired): counted, ignored. */
/* A job that set no tries (and no retry_until, which makes 0 unlimited)
 * gets the reporting worker's --tries, else the node's, when an attempt
 * ends. */
static void
dispatch_default_tries(const struct dispatch *d, struct store_job *job,
                       uint32_t worker_tries)
{
    if (job->opts.tries == 0 && job->opts.retry_until_ms == 0)
        job->opts.tries = worker_tries ? worker_tries : d->cfg.default_tries;
}

static int
dispatch_apply(struct dispatch *d, struct turn *t, const struct msg_outcome *o,
               uint32_t worker_tries, cd_err *err)
{
    struct store_job       job = {0};
    struct policy_decision dec;
    int                    rc;

    rc = store_job_get(t->txn, &o->id, &job, err);
    if (rc == CADRE_ENOTFOUND ||
        (rc == CADRE_OK &&
         (job.state != STORE_RESERVED || job.lease != o->lease))) {
        d->stale++;
        store_job_fini(&job);
        return CADRE_OK;
    }
    if (rc != CADRE_OK)
        return rc;
    t->dirty = 1;
    dispatch_default_tries(d, &job, worker_tries);
    switch (o->kind) {
    case MSG_OUTCOME_DONE:
        job.state = STORE_DONE;
        job.result =
            o->result.len ? cd_memdup(o->result.data, o->result.len) : NULL;
        job.result_len = job.result ? o->result.len : 0;
        rc = store_job_finish(t->txn, &job, t->now_ms, err);
        if (rc == CADRE_OK) {
            turn_event(t, MSG_EVENT_DONE, &job.id, job.task, job.queue,
                       job.attempts, NULL);
            turn_finished(t, &job);
        }
        break;
    case MSG_OUTCOME_FAIL:
        dispatch_set_error(&job, o->error_type, o->error);
        job.state = STORE_FAILED;
        rc = store_job_finish(t->txn, &job, t->now_ms, err);
        if (rc == CADRE_OK) {
            turn_event(t, MSG_EVENT_FAILED, &job.id, job.task, job.queue,
                       job.attempts, job.error_type);
            turn_finished(t, &job);
        }
        break;
    case MSG_OUTCOME_RELEASE:
        policy_after_release(&job, o->release_delay_ms, t->now_ms, &dec);
        rc = dispatch_decide(t, &job, &dec, NULL, err);
        break;
    case MSG_OUTCOME_RETURN:
        job.attempts = job.attempts > 0 ? job.attempts - 1 : 0;
        job.state = STORE_READY; /* keeps its seq: back at its place */
        rc = store_job_save(t->txn, &job, err);
        if (rc == CADRE_OK) /* a stopping worker gave it back unrun */
            turn_event(t, MSG_EVENT_RELEASED, &job.id, job.task, job.queue,
                       job.attempts, NULL);
        break;
    default: /* MSG_OUTCOME_ERROR and unknown kinds */
        job.exceptions++;
        dispatch_set_error(&job, o->error_type, o->error);
        policy_after_error(&job, t->now_ms, &dec);
        rc = dispatch_decide(t, &job, &dec, job.error_type, err);
        break;
    }
    store_job_fini(&job);
    return rc;
}

/* A job's middleware as the worker receives it (borrows job's keys). */
static struct msg_middleware
dispatch_mw_view(const struct store_mw *mw)
{
    struct msg_middleware v = {.rate_key = mw->rate_key,
                               .rate_limit = mw->rate_limit,
                               .rate_per_ms = mw->rate_per_ms,
                               .overlap_key = mw->overlap_key,
                               .overlap_ttl_ms = mw->overlap_ttl_ms,
                               .exc_key = mw->exc_key,
                               .exc_limit = mw->exc_limit,
                               .exc_per_ms = mw->exc_per_ms};

    return v;
}

/* How long a reservation of job lasts without a heartbeat. */
static uint64_t
dispatch_lease_ms(const struct dispatch *d, const struct store_job *job)
{
    return job->opts.retry_after_ms ? job->opts.retry_after_ms
                                    : d->cfg.retry_after_ms;
}

/* A worker's heartbeat for a job it is still running: the lease runs for
 * another lease time from now, so a long job is never handed to a second
 * worker while the first is alive. A touch under a superseded lease is stale
 * (counted, ignored). */
static int
dispatch_touch(struct dispatch *d, struct turn *t, const struct msg_touch *tc,
               cd_err *err)
{
    struct store_job job = {0};
    int              rc = store_job_get(t->txn, &tc->id, &job, err);

    if (rc == CADRE_ENOTFOUND ||
        (rc == CADRE_OK &&
         (job.state != STORE_RESERVED || job.lease != tc->lease))) {
        d->stale++;
        store_job_fini(&job);
        return CADRE_OK;
    }
    if (rc == CADRE_OK) {
        job.reserved_until_ms = t->now_ms + dispatch_lease_ms(d, &job);
        rc = store_job_save(t->txn, &job, err);
        t->dirty = 1;
        d->touched++;
    }
    store_job_fini(&job);
    return rc;
}

/* Reserves up to max jobs for the fetch in p and seals the reply. Jobs of
 * the source come first (a caller waits for them), at most a 1/peers share
 * of those pending so that idle workers split a run; stored jobs fill the
 * rest. Returns the number handed out (0: nothing ready, nothing sealed). */
static size_t
dispatch_serve(struct dispatch *d, struct turn *t, struct turn_sealer *s,
               struct api_req *r, int role, const struct msg *m, size_t max,
               size_t peers)
{
    const struct msg_fetch *f = &m->u.fetch;
    struct store_job       *jobs;
    struct msg_job         *mj;
    struct msg      reply = {.request_id = m->request_id, .kind = MSG_JOBS};
    size_t          n = 0, src_n = 0;
    uint64_t        src_pending = dispatch_src_pending(d, f);
    cd_err          err;
    struct dworker *w;

    if (max > DISPATCH_MAX_BATCH)
        max = DISPATCH_MAX_BATCH;
    jobs = cd_calloc(max, sizeof(*jobs));
    mj = cd_calloc(max, sizeof(*mj));
    if (jobs == NULL || mj == NULL)
        goto out;
    if (src_pending > 0) {
        uint64_t share = (src_pending + peers - 1) / (peers ? peers : 1);

        /* In-memory jobs need no commit: t->dirty is left alone. */
        src_n = d->src.take_cb(d->src.arg, (const char *const *)f->queues,
                               f->queues_n, f->worker_id, mj,
                               share < max ? (size_t)share : max, cd_mono_ms());
    }
    if (src_n < max &&
        store_reserve(t->txn, f->queues, f->queues_n, max - src_n, t->now_ms,
                      d->cfg.retry_after_ms, jobs, &n, &err) != CADRE_OK) {
        CD_LOG_WARN("dispatch", "DISPATCH-RESERVE", "error=\"%s\"", err.msg);
        n = 0;
    }
    if (n + src_n == 0)
        goto out;
    if (n > 0)
        t->dirty = 1;
    for (size_t i = 0; i < n; i++)
        turn_event(t, MSG_EVENT_STARTED, &jobs[i].id, jobs[i].task,
                   jobs[i].queue, jobs[i].attempts, NULL);
    for (size_t i = 0; i < n; i++)
        mj[src_n + i] =
            (struct msg_job){.id = jobs[i].id,
                             .task = jobs[i].task,
                             .payload = {jobs[i].payload, jobs[i].payload_len},
                             .queue = jobs[i].queue,
                             .attempt = jobs[i].attempts,
                             .timeout_ms = jobs[i].opts.timeout_ms,
                             .lease = jobs[i].lease,
                             .lease_ms = dispatch_lease_ms(d, &jobs[i]),
                             .schedule = jobs[i].schedule,
                             .slot_s = jobs[i].slot_s,
                             .mw = dispatch_mw_view(&jobs[i].opts.mw)};
    reply.u.jobs.jobs = mj;
    reply.u.jobs.jobs_n = src_n + n;
    if (turn_seal(s, r, role, &reply) != CADRE_OK) {
        /* The reservations stay; their leases expire after retry_after. */
        CD_LOG_WARN("dispatch", "DISPATCH-SEAL", "jobs=%zu", n);
        api_drop(r);
    } else {
        turn_defer(t, r, role, m->request_id);
    }
    w = dispatch_worker(d, f->worker_id, cd_mono_ms());
    if (w != NULL)
        w->held += src_n + n;
out:
    for (size_t i = 0; i < n; i++)
        store_job_fini(&jobs[i]);
    cd_free(jobs);
    cd_free(mj);
    return src_n + n;
}

static int
dispatch_reply_empty(struct turn *t, struct turn_sealer *s, struct api_req *r,
                     int role, uint64_t request_id)
{
    struct msg reply = {.request_id = request_id, .kind = MSG_JOBS};

    if (turn_seal(s, r, role, &reply) != CADRE_OK) {
        api_drop(r);
        return CADRE_ENOMEM;
    }
    return turn_defer(t, r, role, request_id);
}

static int
dispatch_park(struct dispatch *d, struct api_req *r, int role, struct msg *m,
              uint64_t now_mono_ms)
{
    struct parked *p = cd_calloc(1, sizeof(*p));

    if (p == NULL)
        return CADRE_ENOMEM;
    p->req = r;
    p->role = role;
    p->m = *m;
    memset(m, 0, sizeof(*m));
    p->deadline_mono_ms = now_mono_ms + p->m.u.fetch.wait_ms;
    if (d->tail != NULL)
        d->tail->next = p;
    else
        d->head = p;
    d->tail = p;
    d->parked_n++;
    return CADRE_OK;
}

int
dispatch_fetch(struct dispatch *d, struct turn *t, struct turn_sealer *s,
               struct api_req *r, int role, struct msg *m, uint64_t now_mono_ms,
               int stopping)
{
    const struct msg_fetch *f = &m->u.fetch;
    struct dworker         *w = dispatch_worker(d, f->worker_id, now_mono_ms);
    cd_err                  err;
    int                     rc = CADRE_OK;

    for (size_t i = 0; i < f->touch_n && rc == CADRE_OK; i++)
        if ((f->touch[i].lease & DISPATCH_LEASE_SOURCE) == 0)
            rc = dispatch_touch(d, t, &f->touch[i], &err);
    for (size_t i = 0; i < f->outcomes_n && rc == CADRE_OK; i++) {
        /* Outcomes of the source's jobs (runs) never touch the store. */
        if ((f->outcomes[i].lease & DISPATCH_LEASE_SOURCE) != 0) {
            if (d->src.outcome_cb != NULL)
                d->src.outcome_cb(d->src.arg, f->worker_id, &f->outcomes[i],
                                  now_mono_ms);
            continue;
        }
        rc = dispatch_apply(d, t, &f->outcomes[i], f->default_tries, &err);
    }
    if (rc != CADRE_OK) {
        /* The turn's commit is still attempted for what was applied; the
         * worker resends these outcomes (they are idempotent by lease). */
        CD_LOG_WARN("dispatch", "DISPATCH-OUTCOME", "error=\"%s\"", err.msg);
    }
    if (w != NULL)
        w->held = w->held > f->outcomes_n ? w->held - f->outcomes_n : 0;
    if (f->stopping)
        dispatch_forget_worker(d, f->worker_id);
    if (f->max > 0 && !stopping && !f->stopping &&
        dispatch_serve(d, t, s, r, role, m, f->max, d->parked_n + 1) > 0) {
        msg_free(m);
        return CADRE_OK;
    }
    if (f->max > 0 && f->wait_ms > 0 && !stopping && !f->stopping &&
        dispatch_park(d, r, role, m, now_mono_ms) == CADRE_OK)
        return CADRE_OK;
    rc = dispatch_reply_empty(t, s, r, role, m->request_id);
    msg_free(m);
    return rc;
}

static void
dispatch_unlink(struct dispatch *d, struct parked *prev, struct parked *p)
{
    if (prev != NULL)
        prev->next = p->next;
    else
        d->head = p->next;
    if (d->tail == p)
        d->tail = prev;
    d->parked_n--;
}

void
dispatch_pump(struct dispatch *d, struct turn *t, struct turn_sealer *s)
{
    struct parked *prev = NULL, *p = d->head, *next;

    for (; p != NULL; p = next) {
        const struct msg_fetch *f = &p->m.u.fetch;
        uint64_t ready = store_ready_in(t->store, f->queues, f->queues_n) +
                         dispatch_src_pending(d, f);
        size_t share;

        next = p->next;
        if (ready == 0) {
            prev = p;
            continue;
        }
        /* A fair share of what is ready, so one worker's prefetch does not
         * starve the others. */
        share = (size_t)((ready + d->parked_n - 1) / d->parked_n);
        if (share > f->max)
            share = f->max;
        if (dispatch_serve(d, t, s, p->req, p->role, &p->m, share, 1) == 0) {
            prev = p;
            continue;
        }
        dispatch_unlink(d, prev, p);
        msg_free(&p->m);
        cd_free(p);
    }
}

uint64_t
dispatch_expire_fetches(struct dispatch *d, struct turn *t,
                        struct turn_sealer *s, uint64_t now_mono_ms, int all)
{
    struct parked *prev = NULL, *p = d->head, *next;
    uint64_t       earliest = UINT64_MAX;

    for (; p != NULL; p = next) {
        next = p->next;
        if (!all && p->deadline_mono_ms > now_mono_ms) {
            if (p->deadline_mono_ms < earliest)
                earliest = p->deadline_mono_ms;
            prev = p;
            continue;
        }
        dispatch_unlink(d, prev, p);
        dispatch_reply_empty(t, s, p->req, p->role, p->m.request_id);
        msg_free(&p->m);
        cd_free(p);
    }
    return earliest;
}

int
dispatch_expire_leases(struct dispatch *d, struct turn *t, cd_err *err)
{
    struct store_job jobs[64];
    size_t           n = 0;
    int              rc;

    rc = store_expired(t->txn, t->now_ms, jobs, 64, &n, err);
    for (size_t i = 0; i < n; i++) {
        struct policy_decision dec;

        if (rc == CADRE_OK && jobs[i].lent_to != NULL) {
            /* A loan the thief never settled: the job is ours again, at its
             * old place, and no attempt was spent on it. */
            t->dirty = 1;
            CD_LOG_NOTICE("dispatch", "DISPATCH-LOAN-EXPIRED", "task=%s to=%s",
                          jobs[i].task, jobs[i].lent_to);
            cd_free(jobs[i].lent_to);
            jobs[i].lent_to = NULL;
            jobs[i].state = STORE_READY;
            rc = store_job_save(t->txn, &jobs[i], err);
        } else if (rc == CADRE_OK) {
            t->dirty = 1;
            d->expired++;
            CD_LOG_NOTICE("dispatch", "DISPATCH-LEASE-EXPIRED",
                          "task=%s attempts=%u", jobs[i].task,
                          jobs[i].attempts);
            dispatch_default_tries(d, &jobs[i], 0);
            policy_after_expiry(&jobs[i], t->now_ms, &dec);
            rc = dispatch_decide(t, &jobs[i], &dec, "LeaseExpired", err);
        }
        store_job_fini(&jobs[i]);
    }
    return rc;
}

size_t
dispatch_idle(const struct dispatch *d, const char *const **queues,
              size_t *queues_n)
{
    if (queues != NULL && queues_n != NULL) {
        *queues = NULL;
        *queues_n = 0;
        if (d->head != NULL) {
            *queues = (const char *const *)d->head->m.u.fetch.queues;
            *queues_n = d->head->m.u.fetch.queues_n;
        }
    }
    return d->parked_n;
}

size_t
dispatch_idle_queues(const struct dispatch *d, const char **out, size_t cap)
{
    size_t k = 0;

    for (const struct parked *p = d->head; p != NULL; p = p->next) {
        const struct msg_fetch *f = &p->m.u.fetch;

        for (size_t i = 0; i < f->queues_n && k < cap; i++) {
            size_t j = 0;

            while (j < k && strcmp(out[j], f->queues[i]) != 0)
                j++;
            if (j == k)
                out[k++] = f->queues[i];
        }
    }
    return k;
}

void
dispatch_get_stats(struct dispatch *d, uint64_t now_mono_ms,
                   struct dispatch_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < d->workers_n;) {
        struct dworker *w = &d->workers[i];

        /* A worker silent this long is gone; the leases of what it held
         * expire on their own. */
        if (w->seen_mono_ms + DISPATCH_WORKER_TTL_MS < now_mono_ms) {
            *w = d->workers[--d->workers_n];
            continue;
        }
        st->workers++;
        st->workers_busy += w->held > 0;
        st->held += w->held;
        i++;
    }
    st->stale_outcomes = d->stale;
    st->expired = d->expired;
}

uint64_t
dispatch_held(const struct dispatch *d, uint64_t now_mono_ms)
{
    uint64_t held = 0;

    for (size_t i = 0; i < d->workers_n; i++)
        if (d->workers[i].seen_mono_ms + DISPATCH_LIVE_MS >= now_mono_ms)
            held += d->workers[i].held;
    return held;
}
