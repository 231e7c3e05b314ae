/* admin.c: libcadre's operator calls (cadre.h, "operator: failed jobs and
 * queues"): failed-job pages and jobs as opaque copies of the node's reply,
 * and the bounded admin requests repeated with the node's cursor until the
 * work is done. No printing: errors go to the caller with their context. */
#include "client/client.h"

#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"
#include "common/id.h"

#define ADMIN_IDS_PER_REQUEST 10000 /* the node's limit (node/admin.c) */
#define ADMIN_ROUNDS_MAX 1000000    /* a node that never ends a loop */

struct cadre_failed_job {
    cadre_job_id id;
    char        *queue, *task, *error_type, *error;
    uint32_t     attempts, tries;
    uint64_t     failed_at_ms, created_at_ms, payload_size;
    uint8_t     *payload; /* NULL in listings */
    size_t       payload_len;
};

struct cadre_failed_page {
    cadre_failed_job *jobs;
    size_t            n;
    int               more;
    cadre_job_id      next;
};

/* ---- failed jobs: accessors -------------------------------------------- */

const cadre_job_id *
cadre_failed_job_id(const cadre_failed_job *j)
{
    return &j->id;
}

const char *
cadre_failed_job_queue(const cadre_failed_job *j)
{
    return j->queue;
}

const char *
cadre_failed_job_task(const cadre_failed_job *j)
{
    return j->task;
}

uint32_t
cadre_failed_job_attempts(const cadre_failed_job *j)
{
    return j->attempts;
}

uint32_t
cadre_failed_job_tries(const cadre_failed_job *j)
{
    return j->tries;
}

const char *
cadre_failed_job_error_type(const cadre_failed_job *j)
{
    return j->error_type;
}

const char *
cadre_failed_job_error(const cadre_failed_job *j)
{
    return j->error;
}

uint64_t
cadre_failed_job_failed_at_ms(const cadre_failed_job *j)
{
    return j->failed_at_ms;
}

uint64_t
cadre_failed_job_created_at_ms(const cadre_failed_job *j)
{
    return j->created_at_ms;
}

uint64_t
cadre_failed_job_payload_size(const cadre_failed_job *j)
{
    return j->payload_size;
}

const void *
cadre_failed_job_payload(const cadre_failed_job *j, size_t *len)
{
    if (len != NULL)
        *len = j->payload_len;
    return j->payload;
}

/* Frees what j owns (not j itself). */
static void
admin_job_fini(cadre_failed_job *j)
{
    cd_free(j->queue);
    cd_free(j->task);
    cd_free(j->error_type);
    cd_free(j->error);
    cd_free(j->payload);
    memset(j, 0, sizeof(*j));
}

void
cadre_failed_job_free(cadre_failed_job *j)
{
    if (j == NULL)
        return;
    admin_job_fini(j);
    cd_free(j);
}

/* Copies a decoded job out of the reply (which is freed afterwards). */
static int
admin_job_copy(const struct msg_failed_job *in, cadre_failed_job *out)
{
    memset(out, 0, sizeof(*out));
    out->id = in->id;
    out->attempts = in->attempts;
    out->tries = in->tries;
    out->failed_at_ms = in->failed_at_ms;
    out->created_at_ms = in->created_at_ms;
    out->payload_size = in->payload_len;
    out->queue = cd_strdup(in->queue ? in->queue : "");
    out->task = cd_strdup(in->task ? in->task : "");
    out->error_type = cd_strdup(in->error_type ? in->error_type : "");
    out->error = cd_strdup(in->error ? in->error : "");
    if (in->payload.len > 0) {
        out->payload = cd_memdup(in->payload.data, in->payload.len);
        out->payload_len = in->payload.len;
    }
    if (out->queue == NULL || out->task == NULL || out->error_type == NULL ||
        out->error == NULL || (in->payload.len > 0 && out->payload == NULL)) {
        admin_job_fini(out);
        return CADRE_ENOMEM;
    }
    return CADRE_OK;
}

/* ---- failed jobs: list and show ---------------------------------------- */

size_t
cadre_failed_page_count(const cadre_failed_page *p)
{
    return p->n;
}

const cadre_failed_job *
cadre_failed_page_job(const cadre_failed_page *p, size_t i)
{
    return i < p->n ? &p->jobs[i] : NULL;
}

int
cadre_failed_page_next(const cadre_failed_page *p, cadre_job_id *after)
{
    if (!p->more)
        return 0;
    *after = p->next;
    return 1;
}

void
cadre_failed_page_free(cadre_failed_page *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        admin_job_fini(&p->jobs[i]);
    cd_free(p->jobs);
    cd_free(p);
}

/* Sends a FailedQuery and checks that a FailedJobs reply came back. */
static int
admin_failed_query(cadre_client *c, struct msg *req, struct msg *rep,
                   cd_err *err)
{
    int rc = client_call(c, req, c->timeout_ms, rep, err);

    if (rc == CADRE_OK && rep->kind != MSG_FAILED_JOBS) {
        msg_free(rep);
        rc = cd_err_set(err, CADRE_EPROTO, "unexpected reply");
    }
    return rc;
}

int
cadre_failed_list(cadre_client *c, const cadre_failed_list_opts *opts,
                  cadre_failed_page **out)
{
    static const cadre_failed_list_opts defaults;
    struct msg                          req = {.kind = MSG_FAILED_QUERY}, rep;
    cadre_failed_page                  *p = NULL;
    cd_err                              err = {0};
    int                                 rc;

    if (c == NULL || out == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "failed list: no client");
        return client_fail(&err);
    }
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    req.u.failed_query.queue = opts->queue;
    req.u.failed_query.limit = opts->limit;
    if (opts->after != NULL)
        req.u.failed_query.after =
            (msg_bytes){opts->after->b, sizeof(opts->after->b)};
    rc = admin_failed_query(c, &req, &rep, &err);
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "failed list");
        return client_fail(&err);
    }
    p = cd_calloc(1, sizeof(*p));
    if (p != NULL && rep.u.failed_jobs.jobs_n > 0)
        p->jobs = cd_calloc(rep.u.failed_jobs.jobs_n, sizeof(*p->jobs));
    if (p == NULL || (rep.u.failed_jobs.jobs_n > 0 && p->jobs == NULL)) {
        rc = cd_err_set(&err, CADRE_ENOMEM, "failed list: out of memory");
        goto out;
    }
    for (size_t i = 0; i < rep.u.failed_jobs.jobs_n; i++) {
        if (admin_job_copy(&rep.u.failed_jobs.jobs[i], &p->jobs[i]) !=
            CADRE_OK) {
            rc = cd_err_set(&err, CADRE_ENOMEM, "failed list: out of memory");
            goto out;
        }
        p->n++;
    }
    if (rep.u.failed_jobs.more) {
        if (rep.u.failed_jobs.next.len != sizeof(p->next.b)) {
            rc = cd_err_set(&err, CADRE_EPROTO,
                            "failed list: the node's cursor is not an id");
            goto out;
        }
        memcpy(p->next.b, rep.u.failed_jobs.next.data, sizeof(p->next.b));
        p->more = 1;
    }
out:
    msg_free(&rep);
    if (rc != CADRE_OK) {
        cadre_failed_page_free(p);
        return client_fail(&err);
    }
    *out = p;
    return CADRE_OK;
}

int
cadre_failed_get(cadre_client *c, const cadre_job_id *id,
                 cadre_failed_job **out)
{
    struct msg        req = {.kind = MSG_FAILED_QUERY}, rep;
    cadre_failed_job *j = NULL;
    cd_err            err = {0};
    int               rc;

    if (c == NULL || id == NULL || out == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "failed show: no id");
        return client_fail(&err);
    }
    *out = NULL;
    req.u.failed_query.ids = (cadre_job_id *)id;
    req.u.failed_query.ids_n = 1;
    rc = admin_failed_query(c, &req, &rep, &err);
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "failed show");
        return client_fail(&err);
    }
    if (rep.u.failed_jobs.jobs_n != 1 ||
        memcmp(&rep.u.failed_jobs.jobs[0].id, id, sizeof(*id)) != 0) {
        rc = cd_err_set(&err, CADRE_EPROTO, "failed show: unexpected reply");
    } else if ((j = cd_calloc(1, sizeof(*j))) == NULL ||
               admin_job_copy(&rep.u.failed_jobs.jobs[0], j) != CADRE_OK) {
        cd_free(j);
        j = NULL;
        rc = cd_err_set(&err, CADRE_ENOMEM, "failed show: out of memory");
    }
    msg_free(&rep);
    if (rc != CADRE_OK)
        return client_fail(&err);
    *out = j;
    return CADRE_OK;
}

/* ---- admin requests ----------------------------------------------------- */

/* Sends an Admin request and checks that an AdminReply came back. */
static int
admin_call(cadre_client *c, struct msg *req, struct msg *rep, cd_err *err)
{
    int rc = client_call(c, req, c->timeout_ms, rep, err);

    if (rc == CADRE_OK && rep->kind != MSG_ADMIN_REPLY) {
        msg_free(rep);
        rc = cd_err_set(err, CADRE_EPROTO, "unexpected reply");
    }
    return rc;
}

/* Sends req (an Admin request without ids) again and again, each time from
 * the cursor of the last reply, until the node says it is all done; the
 * counts add up in *total. */
static int
admin_repeat(cadre_client *c, struct msg *req, uint64_t *total, cd_err *err)
{
    uint8_t cursor[MSG_CURSOR_MAX];
    size_t  cursor_len = 0;

    *total = 0;
    for (long round = 0;; round++) {
        struct msg rep;
        int        more, rc;

        if (round == ADMIN_ROUNDS_MAX)
            return cd_err_set(err, CADRE_EPROTO, "the node never finished");
        req->u.admin.after = (msg_bytes){cursor, cursor_len};
        rc = admin_call(c, req, &rep, err);
        if (rc != CADRE_OK)
            return rc;
        *total += rep.u.admin_reply.count;
        more = rep.u.admin_reply.more;
        /* More to do but neither progress nor a new place to start from
         * would repeat this request forever. */
        if (more && rep.u.admin_reply.count == 0 &&
            rep.u.admin_reply.next.len == cursor_len &&
            (cursor_len == 0 ||
             memcmp(rep.u.admin_reply.next.data, cursor, cursor_len) == 0)) {
            msg_free(&rep);
            return cd_err_set(err, CADRE_EPROTO, "the node made no progress");
        }
        cursor_len = rep.u.admin_reply.next.len; /* <= MSG_CURSOR_MAX */
        if (cursor_len > 0)
            memcpy(cursor, rep.u.admin_reply.next.data, cursor_len);
        msg_free(&rep);
        if (!more)
            return CADRE_OK;
    }
}

/* One repeated admin request; *out (may be NULL) receives the total. */
static int
admin_run(cadre_client *c, int op, const char *queue, uint64_t older_than_ms,
          int all, const char *what, uint64_t *out)
{
    struct msg req = {.kind = MSG_ADMIN};
    uint64_t   total = 0;
    cd_err     err = {0};
    int        rc;

    if (c == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "%s: no client", what);
        return client_fail(&err);
    }
    req.u.admin.op = op;
    req.u.admin.queue = queue;
    req.u.admin.older_than_ms = older_than_ms;
    req.u.admin.all = all;
    rc = admin_repeat(c, &req, &total, &err);
    if (out != NULL)
        *out = total;
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "%s", what);
        return client_fail(&err);
    }
    return CADRE_OK;
}

/* Retries or forgets ids, in requests of at most ADMIN_IDS_PER_REQUEST. */
static int
admin_by_ids(cadre_client *c, int op, const cadre_job_id *ids, size_t n,
             size_t *done, const char *what)
{
    size_t       total = 0, missing = 0;
    cadre_job_id first_missing = {{0}};
    cd_err       err = {0};
    int          rc = CADRE_OK;

    if (done != NULL)
        *done = 0;
    if (c == NULL || ids == NULL || n == 0) {
        cd_err_set(&err, CADRE_EINVAL, "%s: no job ids", what);
        return client_fail(&err);
    }
    for (size_t off = 0; off < n && rc == CADRE_OK;) {
        struct msg req = {.kind = MSG_ADMIN}, rep;
        size_t     k =
            n - off < ADMIN_IDS_PER_REQUEST ? n - off : ADMIN_IDS_PER_REQUEST;

        req.u.admin.op = op;
        req.u.admin.ids = (cadre_job_id *)ids + off;
        req.u.admin.ids_n = k;
        rc = admin_call(c, &req, &rep, &err);
        if (rc != CADRE_OK)
            break;
        total += rep.u.admin_reply.count;
        if (rep.u.admin_reply.missing_n > 0 && missing == 0)
            first_missing = rep.u.admin_reply.missing[0];
        missing += rep.u.admin_reply.missing_n;
        msg_free(&rep);
        off += k;
    }
    if (done != NULL)
        *done = total;
    if (rc == CADRE_OK && missing > 0) {
        char text[CD_ID_TEXT_LEN + 1];

        cadre_job_id_format(&first_missing, text);
        if (n == 1)
            rc = cd_err_set(&err, CADRE_ENOTFOUND, "no failed job %s", text);
        else
            rc = cd_err_set(&err, CADRE_ENOTFOUND,
                            "%zu of %zu ids are not failed jobs (first: %s)",
                            missing, n, text);
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "%s", what);
        return client_fail(&err);
    }
    return CADRE_OK;
}

int
cadre_failed_retry(cadre_client *c, const cadre_job_id *ids, size_t n,
                   size_t *retried)
{
    return admin_by_ids(c, MSG_ADMIN_FAILED_RETRY, ids, n, retried,
                        "failed retry");
}

int
cadre_failed_retry_all(cadre_client *c, const char *queue, uint64_t *retried)
{
    return admin_run(c, MSG_ADMIN_FAILED_RETRY, queue, 0, 1, "failed retry",
                     retried);
}

int
cadre_failed_forget(cadre_client *c, const cadre_job_id *id)
{
    return admin_by_ids(c, MSG_ADMIN_FAILED_FORGET, id, id ? 1 : 0, NULL,
                        "failed forget");
}

int
cadre_failed_flush(cadre_client *c, uint64_t *forgotten)
{
    return admin_run(c, MSG_ADMIN_FAILED_FLUSH, NULL, 0, 0, "failed flush",
                     forgotten);
}

int
cadre_failed_prune(cadre_client *c, uint64_t older_than_ms, uint64_t *pruned)
{
    return admin_run(c, MSG_ADMIN_FAILED_PRUNE, NULL, older_than_ms, 0,
                     "failed prune", pruned);
}

/* ---- queues ------------------------------------------------------------- */

int
cadre_queue_clear(cadre_client *c, const char *queue, uint64_t *cleared)
{
    return admin_run(c, MSG_ADMIN_QUEUE_CLEAR, queue, 0, 0, "queue clear",
                     cleared);
}

int
cadre_workers_restart(cadre_client *c, uint64_t *restarted)
{
    return admin_run(c, MSG_ADMIN_WORKERS_RESTART, NULL, 0, 0,
                     "restart workers", restarted);
}

int
cadre_queue_pause(cadre_client *c, const char *queue)
{
    return admin_run(c, MSG_ADMIN_QUEUE_PAUSE, queue, 0, 0, "queue pause",
                     NULL);
}

int
cadre_queue_resume(cadre_client *c, const char *queue)
{
    return admin_run(c, MSG_ADMIN_QUEUE_RESUME, queue, 0, 0, "queue resume",
                     NULL);
}

int
cadre_queue_paused(cadre_client *c, char ***names, size_t *n)
{
    struct msg req = {.kind = MSG_ADMIN}, rep;
    size_t     count, bytes = 0;
    char     **v = NULL;
    char      *p;
    cd_err     err = {0};
    int        rc;

    if (c == NULL || names == NULL || n == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "queue paused: no client");
        return client_fail(&err);
    }
    *names = NULL;
    *n = 0;
    req.u.admin.op = MSG_ADMIN_QUEUE_PAUSED;
    rc = admin_call(c, &req, &rep, &err);
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "queue paused");
        return client_fail(&err);
    }
    count = rep.u.admin_reply.queues_n;
    for (size_t i = 0; i < count; i++)
        bytes += strlen(rep.u.admin_reply.queues[i]) + 1;
    /* One block for cadre_free: the pointers, then the strings. */
    if (count > 0 && (v = cd_malloc(count * sizeof(*v) + bytes)) == NULL) {
        msg_free(&rep);
        cd_err_set(&err, CADRE_ENOMEM, "queue paused: out of memory");
        return client_fail(&err);
    }
    p = count > 0 ? (char *)(v + count) : NULL;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(rep.u.admin_reply.queues[i]) + 1;

        memcpy(p, rep.u.admin_reply.queues[i], len);
        v[i] = p;
        p += len;
    }
    msg_free(&rep);
    *names = v;
    *n = count;
    return CADRE_OK;
}
