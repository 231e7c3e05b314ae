/* intake.c: what clients hand the node: Dispatch requests (checked against
 * the node's limits, stored in the turn's transaction, answered after its
 * commit) and Run requests (checked, then owned by node/runs.c). */
#include "node/intake.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"

#define INTAKE_MAX_JOBS_PER_REQUEST 100000
#define INTAKE_TASK_MAX 255
#define INTAKE_UNIQUE_MAX 200 /* with the task, a key fits LMDB's 511 bytes */

static int
intake_mw_key_set(const char *key)
{
    return key != NULL && key[0] != '\0';
}

/* The middleware's parts are whole: a key with its limits. 1 if so, else
 * 0 with why. The worker runs it (worker/mw.h). */
static int
intake_check_mw(const struct msg_middleware *mw, size_t i, char *why,
                size_t why_len)
{
    const char *keys[] = {mw->rate_key, mw->overlap_key, mw->exc_key};

    for (size_t k = 0; k < 3; k++)
        if (intake_mw_key_set(keys[k]) && strlen(keys[k]) > MSG_MW_KEY_MAX) {
            snprintf(why, why_len,
                     "job %zu: a middleware key is longer than %d bytes", i,
                     MSG_MW_KEY_MAX);
            return 0;
        }
    if (intake_mw_key_set(mw->rate_key) &&
        (mw->rate_limit == 0 || mw->rate_per_ms == 0)) {
        snprintf(why, why_len,
                 "job %zu: rate_limited needs a limit and a window", i);
        return 0;
    }
    if (intake_mw_key_set(mw->exc_key) &&
        (mw->exc_limit == 0 || mw->exc_per_ms == 0)) {
        snprintf(why, why_len,
                 "job %zu: throttles_exceptions needs a limit and a window", i);
        return 0;
    }
    return 1;
}

static int
intake_check_job(const struct intake *n, const struct msg_new_job *j, size_t i,
                 char *why, size_t why_len)
{
    const struct msg_job_opts *o = &j->opts;
    uint64_t                   retry_after =
        o->retry_after_ms ? o->retry_after_ms : n->cfg->retry_after_ms;

    if (j->task == NULL || j->task[0] == '\0')
        snprintf(why, why_len, "job %zu: task name is empty", i);
    else if (strlen(j->task) > INTAKE_TASK_MAX)
        snprintf(why, why_len, "job %zu: task name longer than %d bytes", i,
                 INTAKE_TASK_MAX);
    else if (o->queue != NULL && strlen(o->queue) > STORE_QUEUE_MAX)
        snprintf(why, why_len, "job %zu: queue name longer than %d bytes", i,
                 STORE_QUEUE_MAX);
    else if (j->payload.len > n->cfg->max_payload)
        snprintf(why, why_len,
                 "job %zu: payload is %zu bytes; the limit is %llu "
                 "(max-payload)",
                 i, j->payload.len, (unsigned long long)n->cfg->max_payload);
    else if (o->unique_id != NULL && strlen(o->unique_id) > INTAKE_UNIQUE_MAX)
        snprintf(why, why_len, "job %zu: unique id longer than %d bytes", i,
                 INTAKE_UNIQUE_MAX);
    else if (o->timeout_ms != 0 && o->timeout_ms >= retry_after)
        snprintf(why, why_len,
                 "job %zu: timeout_ms (%llu) must be below retry_after_ms "
                 "(%llu), or a running job would be handed out twice",
                 i, (unsigned long long)o->timeout_ms,
                 (unsigned long long)retry_after);
    else if (intake_check_mw(&o->mw, i, why, why_len))
        return CADRE_OK;
    return j->payload.len > n->cfg->max_payload ? CADRE_ETOOBIG : CADRE_EINVAL;
}

/* A borrowed view of a dispatched job as a store record (the store copies). */
static void
intake_job_view(const struct intake *n, const struct msg_new_job *j,
                uint64_t now_ms, char *unique_key, size_t unique_key_len,
                struct store_job *job)
{
    const struct msg_job_opts *o = &j->opts;

    memset(job, 0, sizeof(*job));
    job->id = j->id;
    job->task = (char *)j->task;
    job->queue = (char *)(o->queue && o->queue[0] ? o->queue : "default");
    job->payload = (uint8_t *)j->payload.data;
    job->payload_len = j->payload.len;
    /* 0 stays 0: the default (a worker's --tries, else the node's) is
     * decided when an attempt ends, as Laravel's worker --tries does. */
    job->opts.tries = o->tries;
    job->opts.backoff_s = (uint32_t *)o->backoff_s;
    job->opts.backoff_n = o->backoff_n;
    job->opts.retry_until_ms = o->retry_until_ms;
    job->opts.max_exceptions = o->max_exceptions;
    job->opts.timeout_ms = o->timeout_ms;
    job->opts.retry_after_ms = o->retry_after_ms;
    job->opts.mw = (struct store_mw){.rate_key = (char *)o->mw.rate_key,
                                     .rate_limit = o->mw.rate_limit,
                                     .rate_per_ms = o->mw.rate_per_ms,
                                     .overlap_key = (char *)o->mw.overlap_key,
                                     .overlap_ttl_ms = o->mw.overlap_ttl_ms,
                                     .exc_key = (char *)o->mw.exc_key,
                                     .exc_limit = o->mw.exc_limit,
                                     .exc_per_ms = o->mw.exc_per_ms};
    job->created_at_ms = now_ms;
    job->available_at_ms = o->run_at_ms ? o->run_at_ms : now_ms + o->delay_ms;
    if (o->unique_id != NULL && o->unique_id[0] != '\0') {
        /* Unique per task, as Laravel keys a job class and its uniqueId. */
        snprintf(unique_key, unique_key_len, "%s\x1f%s", j->task, o->unique_id);
        job->unique_key = unique_key;
        job->unique_until_ms = o->unique_for_ms ? now_ms + o->unique_for_ms : 0;
        job->unique_until_processing = o->unique_until_processing;
    }
}

/* The checks a whole dispatch must pass before anything is stored. */
static int
intake_precheck(const struct intake *n, const struct msg_dispatch *d, char *why,
                size_t why_len)
{
    int rc = CADRE_OK;

    if (n->stopping) {
        rc = CADRE_ESTOPPING;
        snprintf(why, why_len, "node is stopping; dispatch elsewhere");
    } else if (d->jobs_n == 0 || d->jobs_n > INTAKE_MAX_JOBS_PER_REQUEST) {
        rc = CADRE_EINVAL;
        snprintf(why, why_len, "a dispatch carries 1 to %d jobs, not %zu",
                 INTAKE_MAX_JOBS_PER_REQUEST, d->jobs_n);
    }
    for (size_t i = 0; rc == CADRE_OK && i < d->jobs_n; i++)
        rc = intake_check_job(n, &d->jobs[i], i, why, why_len);
    return rc;
}

int
intake_dispatch_ok(const struct intake *n, const struct msg *m)
{
    char why[CD_ERR_MSG_MAX];

    return intake_precheck(n, &m->u.dispatch, why, sizeof(why)) == CADRE_OK;
}

void
intake_dispatch(const struct intake *n, struct turn *t, struct api_req *r,
                int role, const struct msg *m)
{
    intake_dispatch_v(n, t, r, role, m, NULL);
}

void
intake_dispatch_v(const struct intake *n, struct turn *t, struct api_req *r,
                  int role, const struct msg *m, const struct uniq_verdict *v)
{
    const struct msg_dispatch *d = &m->u.dispatch;
    struct msg                 reply = {.request_id = m->request_id,
                                        .kind = MSG_DISPATCH_REPLY};
    cadre_job_id              *ids = NULL;
    uint8_t                   *dup = NULL;
    char                       why[CD_ERR_MSG_MAX];
    cd_err                     err;
    int                        rc = intake_precheck(n, d, why, sizeof(why));

    if (rc == CADRE_OK) {
        ids = cd_calloc(d->jobs_n, sizeof(*ids));
        dup = cd_calloc(d->jobs_n, 1);
        if (ids == NULL || dup == NULL) {
            rc = CADRE_ENOMEM;
            snprintf(why, sizeof(why), "node out of memory");
        }
    }
    for (size_t i = 0; rc == CADRE_OK && i < d->jobs_n; i++) {
        struct store_job job;
        char             unique_key[INTAKE_TASK_MAX + INTAKE_UNIQUE_MAX + 2];
        int              is_dup = 0;

        if (v != NULL && v[i].held) { /* the key is another job's, anywhere */
            ids[i] = v[i].holder;
            dup[i] = 1;
            continue;
        }
        intake_job_view(n, &d->jobs[i], t->now_ms, unique_key,
                        sizeof(unique_key), &job);
        rc = store_job_add(t->txn, &job, t->now_ms, &is_dup, &err);
        if (rc != CADRE_OK)
            snprintf(why, sizeof(why), "%s", err.msg);
        else if (!is_dup)
            turn_event(t, MSG_EVENT_DISPATCHED, &job.id, job.task, job.queue, 0,
                       NULL);
        ids[i] = job.id; /* a unique job's duplicate: the holder's id */
        dup[i] = (uint8_t)(is_dup != 0);
        t->dirty = 1;
    }
    if (rc == CADRE_OK) {
        reply.u.dispatch_reply.ids = ids;
        reply.u.dispatch_reply.duplicate = dup;
        reply.u.dispatch_reply.ids_n = d->jobs_n;
        rc = turn_seal(n->sealer, r, role, &reply);
    } else {
        /* One bad job refuses the whole request; a store error fails the
         * whole turn at commit anyway. */
        turn_seal_error(n->sealer, r, role, m->request_id, rc, why);
    }
    cd_free(ids);
    cd_free(dup);
    turn_defer(t, r, role, m->request_id);
}

/* A Run: validated here (the node's limits), then runs.c owns m. */
void
intake_run(const struct intake *n, struct api_req *r, int role, struct msg *m,
           int from_peer)
{
    const struct msg_run *run = &m->u.run;
    char                  why[CD_ERR_MSG_MAX] = "";
    int                   rc = CADRE_OK;

    if (n->stopping) {
        rc = CADRE_ESTOPPING;
        snprintf(why, sizeof(why), "node is stopping; run elsewhere");
    } else if (run->tasks_n == 0 || run->tasks_n > RUNS_TASKS_MAX) {
        rc = CADRE_EINVAL;
        snprintf(why, sizeof(why), "a run has 1 to %d tasks, not %zu",
                 RUNS_TASKS_MAX, run->tasks_n);
    }
    for (size_t i = 0; rc == CADRE_OK && i < run->tasks_n; i++) {
        const struct msg_run_task *t = &run->tasks[i];

        if (t->task == NULL || t->task[0] == '\0' ||
            strlen(t->task) > INTAKE_TASK_MAX) {
            rc = CADRE_EINVAL;
            snprintf(why, sizeof(why),
                     "task %zu: task name is empty or longer than %d bytes", i,
                     INTAKE_TASK_MAX);
        } else if (t->queue != NULL && strlen(t->queue) > STORE_QUEUE_MAX) {
            rc = CADRE_EINVAL;
            snprintf(why, sizeof(why),
                     "task %zu: queue name longer than %d bytes", i,
                     STORE_QUEUE_MAX);
        } else if (t->payload.len > n->cfg->max_payload) {
            rc = CADRE_ETOOBIG;
            snprintf(why, sizeof(why),
                     "task %zu: payload is %zu bytes; the limit is %llu "
                     "(max-payload)",
                     i, t->payload.len,
                     (unsigned long long)n->cfg->max_payload);
        }
    }
    if (rc != CADRE_OK) {
        if (turn_seal_error(n->sealer, r, role, m->request_id, rc, why) ==
            CADRE_OK)
            api_reply(r);
        else
            api_drop(r);
        msg_free(m);
        return;
    }
    /* A peer's sub-run runs here: spreading it again could loop. */
    runs_submit(n->runs, r, role, m, from_peer, cd_mono_ms());
}
