/* admin.c: operator requests (see admin.h): failed jobs (list, show, retry,
 * forget, flush, prune) and queues (clear, pause, resume, the paused list).
 * Only the client key may ask; workers get CADRE_EAUTH. Every request does a
 * bounded amount of work in its turn and says whether more is left: the
 * client repeats it with the cursor it was given (client/admin.c). */
#include "node/admin.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/id.h"
#include "common/log.h"
#include "store/store.h"

#define ADMIN_LIST_DEFAULT 100 /* failed jobs per page when limit is 0 */
#define ADMIN_LIST_MAX 1000    /* failed jobs per page at most */
#define ADMIN_SHOW_MAX 100     /* ids per show request */
#define ADMIN_SCAN_MAX 10000   /* records read per request */
#define ADMIN_BATCH_MAX 10000  /* jobs acted on per request */

struct admin {
    uint64_t requests;
};

int
admin_new(struct admin **out)
{
    *out = cd_calloc(1, sizeof(**out));
    return *out == NULL ? CADRE_ENOMEM : CADRE_OK;
}

void
admin_free(struct admin *a)
{
    cd_free(a);
}

/* Seals m as the reply to r and defers it until the commit (or drops r if
 * not even an error reply could be made). */
static void
admin_reply(struct turn *t, struct turn_sealer *s, struct api_req *r, int role,
            const struct msg *m)
{
    if (turn_seal(s, r, role, m) != CADRE_OK) {
        api_drop(r);
        return;
    }
    turn_defer(t, r, role, m->request_id);
}

static void
admin_error(struct turn *t, struct turn_sealer *s, struct api_req *r, int role,
            uint64_t request_id, int code, const char *message)
{
    if (turn_seal_error(s, r, role, request_id, code, message) != CADRE_OK) {
        api_drop(r);
        return;
    }
    turn_defer(t, r, role, request_id);
}

/* A failed-job cursor: empty (from the start) or one id. */
static int
admin_id_cursor(const msg_bytes *b, cadre_job_id *id, const cadre_job_id **out)
{
    *out = NULL;
    if (b->len == 0)
        return CADRE_OK;
    if (b->len != sizeof(id->b))
        return CADRE_EINVAL;
    memcpy(id->b, b->data, sizeof(id->b));
    *out = id;
    return CADRE_OK;
}

/* A view of a failed store job for the wire (borrows job's strings). */
static void
admin_job_view(const struct store_job *job, struct msg_failed_job *v)
{
    memset(v, 0, sizeof(*v));
    v->id = job->id;
    v->queue = job->queue;
    v->task = job->task;
    v->attempts = job->attempts;
    v->tries = job->opts.tries;
    v->error_type = job->error_type;
    v->error = job->error;
    v->failed_at_ms = job->finished_at_ms;
    v->created_at_ms = job->created_at_ms;
    v->payload = (msg_bytes){job->payload, job->payload ? job->payload_len : 0};
    v->payload_len = job->payload_len;
}

/* About what one listed job costs in the reply frame. */
static size_t
admin_job_size(const struct store_job *job)
{
    return 96 + strlen(job->queue ? job->queue : "") +
           strlen(job->task ? job->task : "") +
           strlen(job->error_type ? job->error_type : "") +
           strlen(job->error ? job->error : "");
}

/* `failed show ID...`: the jobs with their payloads. */
static void
admin_failed_show(struct turn *t, struct turn_sealer *s, struct api_req *r,
                  int role, const struct msg *m)
{
    const struct msg_failed_query *q = &m->u.failed_query;
    struct msg reply = {.request_id = m->request_id, .kind = MSG_FAILED_JOBS};
    struct store_job      *jobs = NULL;
    struct msg_failed_job *views = NULL;
    size_t                 n = 0;
    char                   why[CD_ERR_MSG_MAX];
    cd_err                 err;
    int                    rc = CADRE_OK;

    if (q->ids_n > ADMIN_SHOW_MAX) {
        rc = CADRE_EINVAL;
        snprintf(why, sizeof(why), "show takes at most %d ids, not %zu",
                 ADMIN_SHOW_MAX, q->ids_n);
        goto out;
    }
    jobs = cd_calloc(q->ids_n, sizeof(*jobs));
    views = cd_calloc(q->ids_n, sizeof(*views));
    if (jobs == NULL || views == NULL) {
        rc = CADRE_ENOMEM;
        snprintf(why, sizeof(why), "node out of memory");
        goto out;
    }
    for (; n < q->ids_n; n++) {
        rc = store_failed_get(t->txn, &q->ids[n], &jobs[n], &err);
        if (rc != CADRE_OK) {
            char text[CD_ID_TEXT_LEN + 1];

            cadre_job_id_format(&q->ids[n], text);
            if (rc == CADRE_ENOTFOUND)
                snprintf(why, sizeof(why), "no failed job %s", text);
            else
                snprintf(why, sizeof(why), "%s", err.msg);
            goto out;
        }
        admin_job_view(&jobs[n], &views[n]);
    }
    reply.u.failed_jobs.jobs = views;
    reply.u.failed_jobs.jobs_n = n;
out:
    if (rc == CADRE_OK)
        admin_reply(t, s, r, role, &reply);
    else
        admin_error(t, s, r, role, m->request_id, rc, why);
    for (size_t i = 0; i < n; i++)
        store_job_fini(&jobs[i]);
    cd_free(jobs);
    cd_free(views);
}

/* `failed list`: one bounded page, without payloads. */
static void
admin_failed_list(struct turn *t, struct turn_sealer *s, struct api_req *r,
                  int role, const struct msg *m)
{
    const struct msg_failed_query *q = &m->u.failed_query;
    struct msg reply = {.request_id = m->request_id, .kind = MSG_FAILED_JOBS};
    struct store_failed_scan sc = {.queue = q->queue,
                                   .scan_max = ADMIN_SCAN_MAX};
    struct store_job        *jobs = NULL;
    struct msg_failed_job   *views = NULL;
    cadre_job_id             after, last;
    size_t                   n = 0, bytes = 0, budget = s->max_frame / 2;
    int                      more = 0, rc;
    cd_err                   err;

    sc.max = q->limit == 0               ? ADMIN_LIST_DEFAULT
             : q->limit > ADMIN_LIST_MAX ? ADMIN_LIST_MAX
                                         : q->limit;
    if (admin_id_cursor(&q->after, &after, &sc.after) != CADRE_OK) {
        admin_error(t, s, r, role, m->request_id, CADRE_EINVAL,
                    "list: the cursor is not a job id");
        return;
    }
    jobs = cd_calloc(sc.max, sizeof(*jobs));
    views = cd_calloc(sc.max, sizeof(*views));
    if (jobs == NULL || views == NULL) {
        admin_error(t, s, r, role, m->request_id, CADRE_ENOMEM,
                    "node out of memory");
        goto out;
    }
    rc = store_failed_list(t->txn, &sc, 0, jobs, &n, &last, &more, &err);
    if (rc != CADRE_OK) {
        admin_error(t, s, r, role, m->request_id, rc, err.msg);
        n = 0;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        /* Long error messages could outgrow the frame: end the page early
         * and let the client ask for the rest. */
        bytes += admin_job_size(&jobs[i]);
        if (i > 0 && bytes > budget) {
            for (size_t j = i; j < n; j++)
                store_job_fini(&jobs[j]);
            n = i;
            last = jobs[i - 1].id;
            more = 1;
            break;
        }
        admin_job_view(&jobs[i], &views[i]);
    }
    reply.u.failed_jobs.jobs = views;
    reply.u.failed_jobs.jobs_n = n;
    reply.u.failed_jobs.more = more;
    if (more)
        reply.u.failed_jobs.next = (msg_bytes){last.b, sizeof(last.b)};
    admin_reply(t, s, r, role, &reply);
out:
    for (size_t i = 0; i < n; i++)
        store_job_fini(&jobs[i]);
    cd_free(jobs);
    cd_free(views);
}

/* Retry or forget each of a->ids; ids not failed go back in *missing (an
 * array of a->ids_n the caller frees). Returns the first store error that
 * is not a per-id answer. */
static int
admin_by_ids(struct turn *t, const struct msg_admin *a, uint64_t *count,
             cadre_job_id **missing, size_t *missing_n, cd_err *err)
{
    int rc = CADRE_OK;

    *count = 0;
    *missing_n = 0;
    *missing = cd_calloc(a->ids_n, sizeof(**missing));
    if (*missing == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "node out of memory");
    for (size_t i = 0; i < a->ids_n; i++) {
        if (a->op == MSG_ADMIN_FAILED_RETRY)
            rc = store_failed_retry(t->txn, &a->ids[i], t->now_ms, err);
        else
            rc = store_failed_forget(t->txn, &a->ids[i], err);
        if (rc == CADRE_OK) {
            (*count)++;
            t->dirty = 1;
        } else if (rc == CADRE_ENOTFOUND || rc == CADRE_EEXISTS) {
            /* Not (or no longer) a failed job, or its id is taken. */
            (*missing)[(*missing_n)++] = a->ids[i];
            rc = CADRE_OK;
        } else {
            break;
        }
    }
    return rc;
}

static const char *
admin_op_name(int op)
{
    switch (op) {
    case MSG_ADMIN_FAILED_RETRY:
        return "retry";
    case MSG_ADMIN_FAILED_FORGET:
        return "forget";
    case MSG_ADMIN_FAILED_FLUSH:
        return "flush";
    case MSG_ADMIN_FAILED_PRUNE:
        return "prune";
    case MSG_ADMIN_QUEUE_CLEAR:
        return "clear";
    case MSG_ADMIN_QUEUE_PAUSE:
        return "pause";
    case MSG_ADMIN_QUEUE_RESUME:
        return "resume";
    case MSG_ADMIN_QUEUE_PAUSED:
        return "paused";
    default:
        return "unknown";
    }
}

/* Retry all / flush / prune: one bounded sweep from the request's cursor. */
static int
admin_sweep(struct turn *t, const struct msg_admin *a,
            struct msg_admin_reply *rep, cadre_job_id *last, cd_err *err)
{
    struct store_failed_scan sc = {
        .queue = a->queue, .max = ADMIN_BATCH_MAX, .scan_max = ADMIN_SCAN_MAX};
    cadre_job_id after;
    size_t       done = 0;
    int          action = a->op == MSG_ADMIN_FAILED_RETRY ? STORE_FAILED_RETRY
                                                          : STORE_FAILED_FORGET;
    int          more = 0, rc;

    if (admin_id_cursor(&a->after, &after, &sc.after) != CADRE_OK)
        return cd_err_set(err, CADRE_EINVAL, "the cursor is not a job id");
    if (a->op == MSG_ADMIN_FAILED_PRUNE) {
        /* Failed older_than_ms ago or earlier; nothing is that old yet when
         * older_than_ms reaches back past the epoch. */
        if (a->older_than_ms >= t->now_ms)
            return CADRE_OK;
        sc.failed_before_ms = t->now_ms - a->older_than_ms + 1;
    }
    rc = store_failed_sweep(t->txn, action, &sc, t->now_ms, &done, last, &more,
                            err);
    if (rc != CADRE_OK)
        return rc;
    t->dirty |= done > 0;
    rep->count = done;
    rep->more = more;
    if (more)
        rep->next = (msg_bytes){last->b, sizeof(last->b)};
    return CADRE_OK;
}

static void
admin_op(struct turn *t, struct turn_sealer *s, struct api_req *r, int role,
         const struct msg *m)
{
    const struct msg_admin *a = &m->u.admin;
    struct msg reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};
    struct msg_admin_reply *rep = &reply.u.admin_reply;
    cadre_job_id           *missing = NULL;
    char                  **names = NULL;
    cadre_job_id            last;
    uint8_t                 next[STORE_CLEAR_CURSOR_LEN];
    size_t                  cleared = 0, next_len = 0, names_n = 0;
    int                     changed = 0, more = 0, rc = CADRE_OK;
    cd_err                  err;

    cd_err_clear(&err);
    if (a->ids_n > ADMIN_BATCH_MAX) {
        rc = cd_err_set(&err, CADRE_EINVAL,
                        "%s takes at most %d ids per request, not %zu",
                        admin_op_name(a->op), ADMIN_BATCH_MAX, a->ids_n);
        goto out;
    }
    switch (a->op) {
    case MSG_ADMIN_FAILED_RETRY:
    case MSG_ADMIN_FAILED_FORGET:
        if (a->ids_n > 0) {
            rc = admin_by_ids(t, a, &rep->count, &missing, &rep->missing_n,
                              &err);
            rep->missing = missing;
        } else if (a->op == MSG_ADMIN_FAILED_RETRY && a->all) {
            rc = admin_sweep(t, a, rep, &last, &err);
        } else {
            rc = cd_err_set(&err, CADRE_EINVAL, "%s needs job ids%s",
                            admin_op_name(a->op),
                            a->op == MSG_ADMIN_FAILED_RETRY ? " or all" : "");
        }
        break;
    case MSG_ADMIN_FAILED_FLUSH:
    case MSG_ADMIN_FAILED_PRUNE:
        rc = admin_sweep(t, a, rep, &last, &err);
        break;
    case MSG_ADMIN_QUEUE_CLEAR:
        rc = store_queue_clear(t->txn, a->queue, a->after.data, a->after.len,
                               ADMIN_BATCH_MAX, &cleared, next, &next_len,
                               &more, &err);
        if (rc != CADRE_OK)
            break;
        t->dirty |= cleared > 0;
        rep->count = cleared;
        rep->more = more;
        rep->next = (msg_bytes){next, next_len};
        break;
    case MSG_ADMIN_QUEUE_PAUSE:
    case MSG_ADMIN_QUEUE_RESUME:
        rc = store_queue_pause(t->txn, a->queue, a->op == MSG_ADMIN_QUEUE_PAUSE,
                               &changed, &err);
        t->dirty |= changed;
        rep->count = (uint64_t)changed;
        break;
    case MSG_ADMIN_QUEUE_PAUSED:
        rc = store_paused_queues(t->store, &names, &names_n, &err);
        rep->queues = (const char **)names;
        rep->queues_n = names_n;
        break;
    default: /* an op node.c handles itself, or a newer one */
        rc = cd_err_set(&err, CADRE_EPROTO, "admin op %d is not handled here",
                        a->op);
        break;
    }
out:
    if (rc != CADRE_OK) {
        admin_error(t, s, r, role, m->request_id, rc, err.msg);
    } else {
        if (rep->count > 0 || changed)
            CD_LOG_NOTICE("admin", "ADMIN-ACTION",
                          "op=%s queue=\"%s\" count=%llu more=%d",
                          admin_op_name(a->op), a->queue ? a->queue : "",
                          (unsigned long long)rep->count, rep->more);
        admin_reply(t, s, r, role, &reply);
    }
    cd_free(missing);
    cd_free(names);
}

int
admin_handle(struct admin *a, struct turn *t, struct turn_sealer *s,
             struct api_req *r, int role, const struct msg *m)
{
    if (m->kind != MSG_FAILED_QUERY && m->kind != MSG_ADMIN)
        return 0;
    a->requests++;
    if (role != KEYS_ROLE_CLIENT) {
        admin_error(t, s, r, role, m->request_id, CADRE_EAUTH,
                    "operator requests need a client key");
        return 1;
    }
    if (m->kind == MSG_ADMIN)
        admin_op(t, s, r, role, m);
    else if (m->u.failed_query.ids_n > 0)
        admin_failed_show(t, s, r, role, m);
    else
        admin_failed_list(t, s, r, role, m);
    return 1;
}
