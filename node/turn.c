/* turn.c: deferred replies, finished jobs and job events of one group
 * commit. */
#include "node/turn.h"

#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

int
turn_seal(struct turn_sealer *s, struct api_req *r, int role,
          const struct msg *m)
{
    size_t size = wire_frame_size(m);
    size_t len = 0;
    int    rc;

    if (size == 0 || size > s->max_frame)
        return turn_seal_error(s, r, role, m->request_id, CADRE_ETOOBIG,
                               "reply larger than the frame limit");
    if (r->msg == NULL) {
        if (nng_msg_alloc(&r->msg, size) != 0)
            return CADRE_ENOMEM;
    } else if (nng_msg_realloc(r->msg, size) != 0) {
        return CADRE_ENOMEM;
    }
    rc = wire_seal(&s->senders[role], m, nng_msg_body(r->msg), size,
                   s->max_frame, &len);
    if (rc != CADRE_OK)
        return turn_seal_error(s, r, role, m->request_id, rc,
                               "cannot encode reply");
    nng_msg_chop(r->msg, size - len);
    return CADRE_OK;
}

int
turn_seal_error(struct turn_sealer *s, struct api_req *r, int role,
                uint64_t request_id, int code, const char *message)
{
    struct msg m = {.request_id = request_id, .kind = MSG_ERROR};

    m.u.error.code = code;
    m.u.error.message = message;
    return turn_seal(s, r, role, &m);
}

void
turn_init(struct turn *t, store *st, store_txn *txn, uint64_t now_ms)
{
    memset(t, 0, sizeof(*t));
    t->store = st;
    t->txn = txn;
    t->now_ms = now_ms;
}

int
turn_defer(struct turn *t, struct api_req *r, int role, uint64_t request_id)
{
    if (t->replies_n == t->replies_cap) {
        size_t             cap = t->replies_cap ? t->replies_cap * 2 : 64;
        struct turn_reply *p = cd_realloc(t->replies, cap * sizeof(*p));

        if (p == NULL) {
            api_reply(r);
            return CADRE_ENOMEM;
        }
        t->replies = p;
        t->replies_cap = cap;
    }
    t->replies[t->replies_n++] = (struct turn_reply){r, role, request_id};
    return CADRE_OK;
}

void
turn_finished(struct turn *t, struct store_job *job)
{
    if (!t->keep_finished) {
        store_job_fini(job);
        return;
    }
    if (t->finished_n == t->finished_cap) {
        size_t            cap = t->finished_cap ? t->finished_cap * 2 : 64;
        struct store_job *p = cd_realloc(t->finished, cap * sizeof(*p));

        if (p == NULL) {
            /* Waiters will see the outcome from the store at their timeout. */
            CD_LOG_WARN("node", "NODE-NOMEM", "finished list");
            store_job_fini(job);
            return;
        }
        t->finished = p;
        t->finished_cap = cap;
    }
    t->finished[t->finished_n++] = *job;
    memset(job, 0, sizeof(*job));
}

void
turn_event(struct turn *t, int kind, const cadre_job_id *id, const char *task,
           const char *queue, uint32_t attempt, const char *error_type)
{
    struct turn_event *ev;
    size_t             task_len, queue_len, type_len;

    if (!t->keep_events)
        return;
    task = task ? task : "";
    queue = queue ? queue : "";
    error_type = error_type ? error_type : "";
    if (t->events_n == t->events_cap) {
        size_t             cap = t->events_cap ? t->events_cap * 2 : 64;
        struct turn_event *p = cd_realloc(t->events, cap * sizeof(*p));

        if (p == NULL)
            goto nomem;
        t->events = p;
        t->events_cap = cap;
    }
    ev = &t->events[t->events_n];
    task_len = strlen(task) + 1;
    queue_len = strlen(queue) + 1;
    type_len = strlen(error_type) + 1;
    ev->strs = cd_malloc(task_len + queue_len + type_len);
    if (ev->strs == NULL)
        goto nomem;
    memcpy(ev->strs, task, task_len);
    memcpy(ev->strs + task_len, queue, queue_len);
    memcpy(ev->strs + task_len + queue_len, error_type, type_len);
    ev->kind = kind;
    ev->id = *id;
    ev->attempt = attempt;
    ev->task = ev->strs;
    ev->queue = ev->strs + task_len;
    ev->error_type = ev->strs + task_len + queue_len;
    t->events_n++;
    return;
nomem:
    CD_LOG_WARN("node", "NODE-NOMEM", "event list");
}

void
turn_flush(struct turn *t, struct turn_sealer *s, int ok, int code,
           const char *message)
{
    for (size_t i = 0; i < t->replies_n; i++) {
        struct turn_reply *p = &t->replies[i];

        if (!ok && turn_seal_error(s, p->req, p->role, p->request_id, code,
                                   message) != CADRE_OK) {
            api_drop(p->req);
            continue;
        }
        api_reply(p->req);
    }
    t->replies_n = 0;
}

void
turn_fini(struct turn *t)
{
    for (size_t i = 0; i < t->finished_n; i++)
        store_job_fini(&t->finished[i]);
    cd_free(t->finished);
    for (size_t i = 0; i < t->events_n; i++)
        cd_free(t->events[i].strs);
    cd_free(t->events);
    cd_free(t->replies);
    memset(t, 0, sizeof(*t));
}
