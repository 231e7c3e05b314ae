/* waits.c: parked waits and the job id -> waiter index (chained hash). */
#include "node/waits.h"

#include <string.h>

#include "common/alloc.h"
#include "common/log.h"

struct wait {
    struct api_req   *req;
    int               role;
    uint64_t          request_id;
    size_t            n, remaining;
    cadre_job_id     *ids;
    int              *status;
    struct store_job *jobs; /* final outcomes (owned copies) */
    uint64_t          deadline_mono_ms;
    struct wait      *prev, *next;
};

struct wait_ref {
    cadre_job_id     id;
    struct wait     *w;
    size_t           idx;
    struct wait_ref *next;
};

struct waits {
    struct wait      *head;
    struct wait_ref **buckets;
    size_t            buckets_n, refs_n;
};

static size_t
waits_hash(const struct waits *ws, const cadre_job_id *id)
{
    uint64_t h = 0;

    memcpy(&h, id->b + 8, sizeof(h)); /* the random half of a UUIDv7 */
    return (size_t)(h % ws->buckets_n);
}

int
waits_new(struct waits **out)
{
    struct waits *ws = cd_calloc(1, sizeof(*ws));

    if (ws == NULL)
        return CADRE_ENOMEM;
    ws->buckets_n = 1024;
    ws->buckets = cd_calloc(ws->buckets_n, sizeof(*ws->buckets));
    if (ws->buckets == NULL) {
        cd_free(ws);
        return CADRE_ENOMEM;
    }
    *out = ws;
    return CADRE_OK;
}

int
waits_empty(const struct waits *ws)
{
    return ws->head == NULL;
}

static void
waits_grow(struct waits *ws)
{
    size_t            n = ws->buckets_n * 4;
    struct wait_ref **b = cd_calloc(n, sizeof(*b));
    size_t            old_n = ws->buckets_n;

    if (b == NULL)
        return; /* longer chains, still correct */
    ws->buckets_n = n;
    for (size_t i = 0; i < old_n; i++) {
        struct wait_ref *ref = ws->buckets[i], *next;

        for (; ref != NULL; ref = next) {
            size_t h = waits_hash(ws, &ref->id);

            next = ref->next;
            ref->next = b[h];
            b[h] = ref;
        }
    }
    cd_free(ws->buckets);
    ws->buckets = b;
}

static int
waits_index(struct waits *ws, struct wait *w, size_t idx)
{
    struct wait_ref *ref = cd_malloc(sizeof(*ref));
    size_t           h;

    if (ref == NULL)
        return CADRE_ENOMEM;
    if (ws->refs_n >= ws->buckets_n * 2)
        waits_grow(ws);
    ref->id = w->ids[idx];
    ref->w = w;
    ref->idx = idx;
    h = waits_hash(ws, &ref->id);
    ref->next = ws->buckets[h];
    ws->buckets[h] = ref;
    ws->refs_n++;
    return CADRE_OK;
}

static void
waits_unindex(struct waits *ws, struct wait *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct wait_ref **pp;

        if (w->status[i] != CADRE_PENDING)
            continue;
        pp = &ws->buckets[waits_hash(ws, &w->ids[i])];
        while (*pp != NULL) {
            struct wait_ref *ref = *pp;

            if (ref->w == w && ref->idx == i) {
                *pp = ref->next;
                cd_free(ref);
                ws->refs_n--;
                break;
            }
            pp = &ref->next;
        }
    }
}

static void
waits_destroy(struct wait *w)
{
    for (size_t i = 0; i < w->n; i++)
        store_job_fini(&w->jobs[i]);
    cd_free(w->jobs);
    cd_free(w->status);
    cd_free(w->ids);
    cd_free(w);
}

static struct wait *
waits_alloc(size_t n)
{
    struct wait *w = cd_calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->n = n;
    w->ids = cd_calloc(n, sizeof(*w->ids));
    w->status = cd_calloc(n, sizeof(*w->status));
    w->jobs = cd_calloc(n, sizeof(*w->jobs));
    if (w->ids == NULL || w->status == NULL || w->jobs == NULL) {
        waits_destroy(w);
        return NULL;
    }
    return w;
}

/* Seals the WaitReply for w into its request. */
static int
waits_seal(struct wait *w, struct turn_sealer *s)
{
    struct msg m = {.request_id = w->request_id, .kind = MSG_WAIT_REPLY};
    struct msg_job_result *res = cd_calloc(w->n, sizeof(*res));
    int                    rc;

    if (res == NULL)
        return CADRE_ENOMEM;
    for (size_t i = 0; i < w->n; i++) {
        struct store_job *j = &w->jobs[i];

        res[i].id = w->ids[i];
        res[i].status = w->status[i];
        res[i].attempts = j->attempts;
        res[i].result = (msg_bytes){j->result, j->result_len};
        res[i].error_type = j->error_type;
        res[i].error = j->error;
    }
    m.u.wait_reply.results = res;
    m.u.wait_reply.results_n = w->n;
    rc = turn_seal(s, w->req, w->role, &m);
    cd_free(res);
    return rc;
}

static void
waits_answer(struct waits *ws, struct wait *w, struct turn_sealer *s)
{
    waits_unindex(ws, w);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else if (ws->head == w)
        ws->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    if (waits_seal(w, s) == CADRE_OK)
        api_reply(w->req);
    else
        api_drop(w->req);
    waits_destroy(w);
}

static int
waits_copy_job(struct store_job *dst, const struct store_job *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->state = src->state;
    dst->attempts = src->attempts;
    if (src->result_len > 0) {
        dst->result = cd_memdup(src->result, src->result_len);
        if (dst->result == NULL)
            return CADRE_ENOMEM;
        dst->result_len = src->result_len;
    }
    dst->error_type = cd_strdup(src->error_type);
    dst->error = cd_strdup(src->error);
    if ((src->error_type && !dst->error_type) || (src->error && !dst->error)) {
        store_job_fini(dst);
        return CADRE_ENOMEM;
    }
    return CADRE_OK;
}

static int
waits_status_of(int state)
{
    return state == STORE_FAILED ? CADRE_FAILED : CADRE_DONE;
}

int
waits_add(struct waits *ws, struct turn *t, struct turn_sealer *s,
          struct api_req *r, int role, uint64_t request_id,
          const struct msg_wait *mw, uint64_t now_mono_ms)
{
    struct wait *w = waits_alloc(mw->ids_n);
    cd_err       err;

    if (w == NULL)
        return CADRE_ENOMEM;
    w->req = r;
    w->role = role;
    w->request_id = request_id;
    w->deadline_mono_ms = now_mono_ms + mw->timeout_ms;
    for (size_t i = 0; i < mw->ids_n; i++) {
        int st = CADRE_UNKNOWN;

        w->ids[i] = mw->ids[i];
        if (store_outcome(t->txn, &w->ids[i], &st, &w->jobs[i], &err) !=
            CADRE_OK)
            st = CADRE_PENDING; /* unreadable now: report it pending */
        w->status[i] = st;
        if (st == CADRE_PENDING && mw->timeout_ms > 0) {
            if (waits_index(ws, w, i) != CADRE_OK) {
                waits_unindex(ws, w);
                waits_destroy(w);
                return CADRE_ENOMEM;
            }
            w->remaining++;
        }
    }
    if (w->remaining == 0) {
        int rc = waits_seal(w, s);

        waits_destroy(w);
        if (rc != CADRE_OK)
            return rc;
        turn_defer(t, r, role, request_id);
        return CADRE_OK;
    }
    w->next = ws->head;
    if (ws->head != NULL)
        ws->head->prev = w;
    ws->head = w;
    return CADRE_OK;
}

void
waits_notify(struct waits *ws, struct turn *t, struct turn_sealer *s)
{
    for (size_t k = 0; k < t->finished_n; k++) {
        struct store_job *job = &t->finished[k];
        struct wait_ref **pp = &ws->buckets[waits_hash(ws, &job->id)];

        while (*pp != NULL) {
            struct wait_ref *ref = *pp;
            struct wait     *w = ref->w;

            if (memcmp(&ref->id, &job->id, sizeof(job->id)) != 0) {
                pp = &ref->next;
                continue;
            }
            *pp = ref->next;
            ws->refs_n--;
            w->status[ref->idx] = waits_status_of(job->state);
            if (waits_copy_job(&w->jobs[ref->idx], job) != CADRE_OK)
                w->status[ref->idx] = CADRE_PENDING;
            cd_free(ref);
            if (--w->remaining == 0)
                waits_answer(ws, w, s);
        }
    }
}

uint64_t
waits_expire(struct waits *ws, struct turn_sealer *s, uint64_t now_mono_ms,
             int all)
{
    uint64_t     next = UINT64_MAX;
    struct wait *w = ws->head, *nx;

    for (; w != NULL; w = nx) {
        nx = w->next;
        if (all || w->deadline_mono_ms <= now_mono_ms)
            waits_answer(ws, w, s);
        else if (w->deadline_mono_ms < next)
            next = w->deadline_mono_ms;
    }
    return next;
}

void
waits_free(struct waits *ws)
{
    if (ws == NULL)
        return;
    while (ws->head != NULL) {
        struct wait *w = ws->head;

        ws->head = w->next;
        waits_unindex(ws, w);
        api_drop(w->req);
        waits_destroy(w);
    }
    cd_free(ws->buckets);
    cd_free(ws);
}
