/* runs.c: the run table (by run id and by serial), the per-queue lists of
 * pending run tasks, the list of tasks out with workers (by hand-out time),
 * and the connection -> worker map. It neither touches the store nor talks
 * to workers itself: dispatch asks it for tasks and hands it outcomes.
 *
 * A task's id, as workers see it: bytes 0-7 the run's serial (big-endian),
 * 8-11 the task's index, 12-15 a per-process salt, so an outcome finds its
 * task with one hash lookup and ids from an earlier node process never match.
 * Its lease: DISPATCH_LEASE_SOURCE | a counter, new for each hand-out. */
#include "node/runs.h"

#include <string.h>

#include "common/alloc.h"
#include "common/id.h"
#include "common/log.h"
#include "node/dispatch.h"

#define RUNS_BUCKETS_MIN 256

enum runs_state { RUNS_PENDING = 1, RUNS_RUNNING = 2, RUNS_FINAL = 3 };

struct runs_queue {
    char              *name;
    int                local;       /* tasks of runs that must not be spread */
    struct runs_task  *head, *tail; /* pending, oldest first */
    uint64_t           n;
    struct runs_queue *next;
};

struct runs_task {
    struct runs_run   *run;
    struct runs_queue *q;           /* RUNS_PENDING: the queue it waits in */
    struct runs_task  *prev, *next; /* pending: in q; running: rs->out */
    uint64_t           lease, prev_lease; /* outcomes of either are taken */
    uint64_t           worker_id;
    uint64_t           lease_until_mono_ms;
    uint32_t           idx;
    uint32_t           attempts;
    uint8_t            state;  /* enum runs_state */
    uint8_t            status; /* RUNS_FINAL: enum cadre_run_status */
    uint8_t            capped; /* its timeout was the time to the deadline */
    uint8_t           *result;
    size_t             result_len;
    char              *error_type, *error;
};

struct runs_waiter {
    struct api_req     *req;
    int                 role;
    uint64_t            request_id;
    uint64_t            deadline_mono_ms;
    struct runs_waiter *next;
};

struct runs_run {
    cadre_job_id      id;
    uint64_t          serial;
    struct msg        m; /* the Run: task names and payloads, until answered */
    struct runs_task *tasks;
    size_t            n, left; /* tasks, and those not final */
    uint64_t          deadline_mono_ms;
    int               fail_fast;
    int               local_only; /* a peer's sub-run: never spread again */
    int               answered;
    uint64_t          answered_mono_ms;
    struct runs_waiter *waiters;
    struct runs_run    *id_next, *serial_next; /* hash chains */
    struct runs_run    *prev, *next;           /* active or kept list */
};

struct runs_list {
    struct runs_run *head, *tail;
};

struct runs_pipe {
    uint32_t pipe_id;
    uint64_t worker_id;
};

struct runs {
    struct turn_sealer *sealer;
    struct runs_run   **by_id, **by_serial;
    size_t              buckets_n, runs_n;
    struct runs_list    active;
    struct runs_list    kept; /* answered, oldest first */
    size_t              kept_tasks;
    size_t              active_tasks; /* of the active runs */
    struct runs_queue  *queues;
    struct runs_task   *out_head, *out_tail; /* with workers, by hand-out */
    struct runs_pipe   *pipes;
    size_t              pipes_n, pipes_cap;
    uint64_t            next_serial, next_lease;
    uint8_t             salt[4];
    uint64_t            next_mono_ms;
};

/* ---- small helpers ------------------------------------------------------- */

static uint64_t
runs_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t
runs_get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void
runs_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static size_t
runs_hash_id(const struct runs *rs, const cadre_job_id *id)
{
    return (
        size_t)(runs_mix(runs_get64(id->b) ^ runs_mix(runs_get64(id->b + 8))) %
                rs->buckets_n);
}

static size_t
runs_hash_serial(const struct runs *rs, uint64_t serial)
{
    return (size_t)(runs_mix(serial) % rs->buckets_n);
}

static void
runs_list_add(struct runs_list *l, struct runs_run *run)
{
    run->next = NULL;
    run->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = run;
    else
        l->head = run;
    l->tail = run;
}

static void
runs_list_del(struct runs_list *l, struct runs_run *run)
{
    if (run->prev != NULL)
        run->prev->next = run->next;
    else
        l->head = run->next;
    if (run->next != NULL)
        run->next->prev = run->prev;
    else
        l->tail = run->prev;
    run->prev = run->next = NULL;
}

static void
runs_wake(struct runs *rs, uint64_t at_mono_ms)
{
    if (at_mono_ms < rs->next_mono_ms)
        rs->next_mono_ms = at_mono_ms;
}

/* ---- the run table --------------------------------------------------------
 */

static void
runs_grow(struct runs *rs)
{
    size_t            n = rs->buckets_n * 4, old_n = rs->buckets_n;
    struct runs_run **by_id = cd_calloc(n, sizeof(*by_id));
    struct runs_run **by_serial = cd_calloc(n, sizeof(*by_serial));

    if (by_id == NULL || by_serial == NULL) {
        cd_free(by_id); /* longer chains, still correct */
        cd_free(by_serial);
        return;
    }
    rs->buckets_n = n;
    for (size_t i = 0; i < old_n; i++) {
        for (struct runs_run *r = rs->by_id[i], *next; r != NULL; r = next) {
            size_t h = runs_hash_id(rs, &r->id);

            next = r->id_next;
            r->id_next = by_id[h];
            by_id[h] = r;
        }
        for (struct runs_run *r = rs->by_serial[i], *next; r != NULL;
             r = next) {
            size_t h = runs_hash_serial(rs, r->serial);

            next = r->serial_next;
            r->serial_next = by_serial[h];
            by_serial[h] = r;
        }
    }
    cd_free(rs->by_id);
    cd_free(rs->by_serial);
    rs->by_id = by_id;
    rs->by_serial = by_serial;
}

static void
runs_index(struct runs *rs, struct runs_run *run)
{
    size_t h;

    if (rs->runs_n >= rs->buckets_n * 2)
        runs_grow(rs);
    h = runs_hash_id(rs, &run->id);
    run->id_next = rs->by_id[h];
    rs->by_id[h] = run;
    h = runs_hash_serial(rs, run->serial);
    run->serial_next = rs->by_serial[h];
    rs->by_serial[h] = run;
    rs->runs_n++;
}

static void
runs_unindex(struct runs *rs, struct runs_run *run)
{
    struct runs_run **pp = &rs->by_id[runs_hash_id(rs, &run->id)];

    while (*pp != NULL && *pp != run)
        pp = &(*pp)->id_next;
    if (*pp != NULL)
        *pp = run->id_next;
    pp = &rs->by_serial[runs_hash_serial(rs, run->serial)];
    while (*pp != NULL && *pp != run)
        pp = &(*pp)->serial_next;
    if (*pp != NULL)
        *pp = run->serial_next;
    rs->runs_n--;
}

static struct runs_run *
runs_find_id(const struct runs *rs, const cadre_job_id *id)
{
    struct runs_run *r = rs->by_id[runs_hash_id(rs, id)];

    while (r != NULL && memcmp(&r->id, id, sizeof(*id)) != 0)
        r = r->id_next;
    return r;
}

static struct runs_run *
runs_find_serial(const struct runs *rs, uint64_t serial)
{
    struct runs_run *r = rs->by_serial[runs_hash_serial(rs, serial)];

    while (r != NULL && r->serial != serial)
        r = r->serial_next;
    return r;
}

/* ---- queues of pending tasks and the hand-out list ------------------------
 */

static const char *
runs_queue_name(const struct runs_task *t)
{
    const char *q = t->run->m.u.run.tasks[t->idx].queue;

    return q != NULL && q[0] != '\0' ? q : "default";
}

static struct runs_queue *
runs_queue_find(const struct runs *rs, const char *name, int local)
{
    struct runs_queue *q = rs->queues;

    while (q != NULL && (q->local != local || strcmp(q->name, name) != 0))
        q = q->next;
    return q;
}

/* Appends t (or puts it first) to the queue named by its task. */
static int
runs_queue_push(struct runs *rs, struct runs_task *t, int front)
{
    const char        *name = runs_queue_name(t);
    int                local = t->run->local_only;
    struct runs_queue *q = runs_queue_find(rs, name, local);

    if (q == NULL) {
        q = cd_calloc(1, sizeof(*q));
        if (q == NULL || (q->name = cd_strdup(name)) == NULL) {
            cd_free(q);
            return CADRE_ENOMEM;
        }
        q->local = local;
        q->next = rs->queues;
        rs->queues = q;
    }
    t->q = q;
    if (front) {
        t->prev = NULL;
        t->next = q->head;
        if (q->head != NULL)
            q->head->prev = t;
        else
            q->tail = t;
        q->head = t;
    } else {
        t->next = NULL;
        t->prev = q->tail;
        if (q->tail != NULL)
            q->tail->next = t;
        else
            q->head = t;
        q->tail = t;
    }
    q->n++;
    t->state = RUNS_PENDING;
    return CADRE_OK;
}

/* Takes t off its queue; an emptied queue is freed. */
static void
runs_queue_del(struct runs *rs, struct runs_task *t)
{
    struct runs_queue *q = t->q;

    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        q->head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        q->tail = t->prev;
    t->prev = t->next = NULL;
    t->q = NULL;
    if (--q->n == 0) {
        struct runs_queue **pp = &rs->queues;

        while (*pp != q)
            pp = &(*pp)->next;
        *pp = q->next;
        cd_free(q->name);
        cd_free(q);
    }
}

static void
runs_out_add(struct runs *rs, struct runs_task *t)
{
    t->next = NULL;
    t->prev = rs->out_tail;
    if (rs->out_tail != NULL)
        rs->out_tail->next = t;
    else
        rs->out_head = t;
    rs->out_tail = t;
    t->state = RUNS_RUNNING;
}

static void
runs_out_del(struct runs *rs, struct runs_task *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        rs->out_head = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        rs->out_tail = t->prev;
    t->prev = t->next = NULL;
}

/* Takes t off whatever list holds it. */
static void
runs_detach(struct runs *rs, struct runs_task *t)
{
    if (t->state == RUNS_PENDING)
        runs_queue_del(rs, t);
    else if (t->state == RUNS_RUNNING)
        runs_out_del(rs, t);
}

/* A task out with a worker goes back to the front of its queue (its caller
 * has waited longest). On ENOMEM it stays out until the deadline. */
static void
runs_requeue(struct runs *rs, struct runs_task *t)
{
    runs_out_del(rs, t);
    if (runs_queue_push(rs, t, 1) != CADRE_OK)
        runs_out_add(rs, t);
}

static void
runs_final(struct runs *rs, struct runs_task *t, int status)
{
    runs_detach(rs, t);
    t->state = RUNS_FINAL;
    t->status = (uint8_t)status;
    t->run->left--;
}

/* ---- replies --------------------------------------------------------------
 */

/* Seals the results of run into w's request and sends it; tasks not final
 * read as TIMED_OUT (a waiter whose own deadline came first). */
static void
runs_reply(struct runs *rs, struct runs_run *run, struct runs_waiter *w)
{
    struct msg m = {.request_id = w->request_id, .kind = MSG_RUN_REPLY};
    struct msg_run_result *res = cd_calloc(run->n, sizeof(*res));

    if (res == NULL) {
        if (turn_seal_error(rs->sealer, w->req, w->role, w->request_id,
                            CADRE_ENOMEM, "node out of memory") == CADRE_OK)
            api_reply(w->req);
        else
            api_drop(w->req);
        return;
    }
    for (size_t i = 0; i < run->n; i++) {
        const struct runs_task *t = &run->tasks[i];

        res[i].status =
            t->state == RUNS_FINAL ? t->status : CADRE_RUN_TIMED_OUT;
        res[i].attempts = t->attempts;
        if (t->state == RUNS_FINAL) {
            res[i].result = (msg_bytes){t->result, t->result_len};
            res[i].error_type = t->error_type;
            res[i].error = t->error;
        }
    }
    m.u.run_reply.results = res;
    m.u.run_reply.results_n = run->n;
    if (turn_seal(rs->sealer, w->req, w->role, &m) == CADRE_OK)
        api_reply(w->req);
    else
        api_drop(w->req);
    cd_free(res);
}

static void
runs_destroy(struct runs_run *run)
{
    for (size_t i = 0; run->tasks != NULL && i < run->n; i++) {
        cd_free(run->tasks[i].result);
        cd_free(run->tasks[i].error_type);
        cd_free(run->tasks[i].error);
    }
    cd_free(run->tasks);
    msg_free(&run->m);
    while (run->waiters != NULL) {
        struct runs_waiter *w = run->waiters;

        run->waiters = w->next;
        api_drop(w->req);
        cd_free(w);
    }
    cd_free(run);
}

/* Answers run: tasks not final get status; every waiter gets the results;
 * the run is kept for attaches. */
static void
runs_answer(struct runs *rs, struct runs_run *run, int status,
            uint64_t now_mono_ms)
{
    for (size_t i = 0; i < run->n; i++)
        if (run->tasks[i].state != RUNS_FINAL)
            runs_final(rs, &run->tasks[i], status);
    while (run->waiters != NULL) {
        struct runs_waiter *w = run->waiters;

        run->waiters = w->next;
        runs_reply(rs, run, w);
        cd_free(w);
    }
    CD_LOG_DEBUG("runs", "RUNS-ANSWERED", "serial=%llu tasks=%zu status=%d",
                 (unsigned long long)run->serial, run->n, status);
    msg_free(&run->m); /* names and payloads are not needed any more */
    run->answered = 1;
    run->answered_mono_ms = now_mono_ms;
    runs_list_del(&rs->active, run);
    runs_list_add(&rs->kept, run);
    rs->active_tasks -= run->n;
    rs->kept_tasks += run->n;
    runs_wake(rs, now_mono_ms + RUNS_KEEP_MS);
}

static void
runs_forget(struct runs *rs, struct runs_run *run)
{
    runs_list_del(run->answered ? &rs->kept : &rs->active, run);
    if (run->answered)
        rs->kept_tasks -= run->n;
    else
        rs->active_tasks -= run->n;
    runs_unindex(rs, run);
    runs_destroy(run);
}

static void
runs_error(struct runs *rs, struct api_req *r, int role, uint64_t request_id,
           int code, const char *message)
{
    if (turn_seal_error(rs->sealer, r, role, request_id, code, message) ==
        CADRE_OK)
        api_reply(r);
    else
        api_drop(r);
}

/* ---- life cycle -----------------------------------------------------------
 */

int
runs_new(struct turn_sealer *s, struct runs **out)
{
    struct runs *rs = cd_calloc(1, sizeof(*rs));

    if (rs == NULL)
        return CADRE_ENOMEM;
    rs->sealer = s;
    rs->buckets_n = RUNS_BUCKETS_MIN;
    rs->by_id = cd_calloc(rs->buckets_n, sizeof(*rs->by_id));
    rs->by_serial = cd_calloc(rs->buckets_n, sizeof(*rs->by_serial));
    if (rs->by_id == NULL || rs->by_serial == NULL) {
        runs_free(rs);
        return CADRE_ENOMEM;
    }
    cd_random(rs->salt, sizeof(rs->salt));
    rs->next_mono_ms = UINT64_MAX;
    *out = rs;
    return CADRE_OK;
}

void
runs_free(struct runs *rs)
{
    if (rs == NULL)
        return;
    while (rs->active.head != NULL)
        runs_forget(rs, rs->active.head);
    while (rs->kept.head != NULL)
        runs_forget(rs, rs->kept.head);
    while (rs->queues != NULL) { /* empty by now; for a run that failed */
        struct runs_queue *q = rs->queues;

        rs->queues = q->next;
        cd_free(q->name);
        cd_free(q);
    }
    cd_free(rs->pipes);
    cd_free(rs->by_id);
    cd_free(rs->by_serial);
    cd_free(rs);
}

/* ---- requests -------------------------------------------------------------
 */

static int
runs_wait_add(struct runs_run *run, struct api_req *r, int role,
              uint64_t request_id, uint64_t deadline_mono_ms)
{
    struct runs_waiter *w = cd_calloc(1, sizeof(*w));

    if (w == NULL)
        return CADRE_ENOMEM;
    w->req = r;
    w->role = role;
    w->request_id = request_id;
    w->deadline_mono_ms = deadline_mono_ms < run->deadline_mono_ms
                              ? deadline_mono_ms
                              : run->deadline_mono_ms;
    w->next = run->waiters;
    run->waiters = w;
    return CADRE_OK;
}

static uint64_t
runs_deadline_ms(const struct msg_run *mr)
{
    if (mr->deadline_ms == 0)
        return RUNS_DEADLINE_DEFAULT_MS;
    return mr->deadline_ms < RUNS_DEADLINE_MAX_MS ? mr->deadline_ms
                                                  : RUNS_DEADLINE_MAX_MS;
}

/* Parks r on the run already known under its id, or answers it at once. */
static void
runs_attach(struct runs *rs, struct runs_run *run, struct api_req *r, int role,
            struct msg *m, uint64_t now_mono_ms)
{
    uint64_t deadline = now_mono_ms + runs_deadline_ms(&m->u.run);

    if (run->n != m->u.run.tasks_n) {
        runs_error(rs, r, role, m->request_id, CADRE_EEXISTS,
                   "run id in use by a run with another number of tasks");
    } else if (run->answered) {
        struct runs_waiter w = {
            .req = r, .role = role, .request_id = m->request_id};

        runs_reply(rs, run, &w);
    } else if (runs_wait_add(run, r, role, m->request_id, deadline) !=
               CADRE_OK) {
        runs_error(rs, r, role, m->request_id, CADRE_ENOMEM,
                   "node out of memory");
    } else {
        runs_wake(rs, run->waiters->deadline_mono_ms);
    }
    msg_free(m);
}

void
runs_submit(struct runs *rs, struct api_req *r, int role, struct msg *m,
            int local_only, uint64_t now_mono_ms)
{
    struct runs_run *run = runs_find_id(rs, &m->u.run.run_id);
    size_t           n = m->u.run.tasks_n;

    if (run != NULL) {
        runs_attach(rs, run, r, role, m, now_mono_ms);
        return;
    }
    if (rs->active_tasks + n > RUNS_ACTIVE_TASKS_MAX) {
        runs_error(rs, r, role, m->request_id, CADRE_EBUSY,
                   "node has too many run tasks in flight; try later");
        msg_free(m);
        return;
    }
    run = cd_calloc(1, sizeof(*run));
    if (run == NULL ||
        (run->tasks = cd_calloc(n, sizeof(*run->tasks))) == NULL) {
        cd_free(run);
        runs_error(rs, r, role, m->request_id, CADRE_ENOMEM,
                   "node out of memory");
        msg_free(m);
        return;
    }
    run->id = m->u.run.run_id;
    run->serial = ++rs->next_serial;
    run->n = run->left = n;
    run->deadline_mono_ms = now_mono_ms + runs_deadline_ms(&m->u.run);
    run->fail_fast = m->u.run.fail_fast;
    run->local_only = local_only;
    run->m = *m;
    memset(m, 0, sizeof(*m));
    runs_list_add(&rs->active, run);
    rs->active_tasks += n;
    runs_index(rs, run);
    if (runs_wait_add(run, r, role, run->m.request_id, run->deadline_mono_ms) !=
        CADRE_OK) {
        runs_error(rs, r, role, run->m.request_id, CADRE_ENOMEM,
                   "node out of memory");
        runs_forget(rs, run);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        run->tasks[i].run = run;
        run->tasks[i].idx = (uint32_t)i;
        if (runs_queue_push(rs, &run->tasks[i], 0) != CADRE_OK) {
            /* Tasks queued so far are taken off again by runs_final. */
            for (size_t k = 0; k < i; k++)
                runs_final(rs, &run->tasks[k], CADRE_RUN_CANCELLED);
            while (run->waiters != NULL) {
                struct runs_waiter *w = run->waiters;

                run->waiters = w->next;
                runs_error(rs, w->req, w->role, w->request_id, CADRE_ENOMEM,
                           "node out of memory");
                cd_free(w);
            }
            runs_forget(rs, run);
            return;
        }
    }
    runs_wake(rs, run->deadline_mono_ms);
    CD_LOG_DEBUG("runs", "RUNS-START", "serial=%llu tasks=%zu deadline_ms=%llu",
                 (unsigned long long)run->serial, n,
                 (unsigned long long)runs_deadline_ms(&run->m.u.run));
}

/* ---- the dispatch source --------------------------------------------------
 */

uint64_t
runs_pending(void *arg, const char *const *queues, size_t queues_n)
{
    const struct runs *rs = arg;
    uint64_t           n = 0;

    if (rs->queues == NULL)
        return 0;
    for (size_t i = 0; i < queues_n; i++) {
        for (int local = 1; local >= 0; local--) {
            const struct runs_queue *q = runs_queue_find(rs, queues[i], local);

            if (q != NULL)
                n += q->n;
        }
    }
    return n;
}

uint64_t
runs_spreadable(const struct runs *rs)
{
    uint64_t n = 0;

    for (const struct runs_queue *q = rs->queues; q != NULL; q = q->next)
        n += q->local ? 0 : q->n;
    return n;
}

/* Hands tasks of q out to worker_id into out[k..max): returns the new k. q
 * may be freed (emptied). left_ms (may be NULL) receives each task's time to
 * its run's deadline. */
static size_t
runs_take_queue(struct runs *rs, struct runs_queue *q, uint64_t worker_id,
                struct msg_job *out, uint64_t *left_ms, size_t k, size_t max,
                uint64_t now_mono_ms)
{
    while (q != NULL && k < max) {
        struct runs_task          *t = q->head;
        struct runs_run           *run = t->run;
        const struct msg_run_task *mt = &run->m.u.run.tasks[t->idx];
        uint64_t                   left = 1;

        if (q->n == 1)
            q = NULL; /* runs_queue_del frees an emptied queue */
        if (run->deadline_mono_ms <= now_mono_ms) {
            /* Past its deadline: never started. The run is answered
             * at the next tick (not here: out[] borrows from runs). */
            runs_final(rs, t, CADRE_RUN_TIMED_OUT);
            runs_wake(rs, now_mono_ms);
            continue;
        }
        runs_queue_del(rs, t);
        t->prev_lease = t->lease;
        t->lease = DISPATCH_LEASE_SOURCE | ++rs->next_lease;
        t->worker_id = worker_id;
        t->attempts++;
        t->lease_until_mono_ms = now_mono_ms + RUNS_LEASE_MS;
        runs_out_add(rs, t);
        /* The worker kills a handler still running at the deadline. */
        if (run->deadline_mono_ms > now_mono_ms)
            left = run->deadline_mono_ms - now_mono_ms;
        if (left_ms != NULL)
            left_ms[k] = left;
        memset(&out[k], 0, sizeof(out[k]));
        runs_put64(out[k].id.b, run->serial);
        out[k].id.b[8] = (uint8_t)(t->idx >> 24);
        out[k].id.b[9] = (uint8_t)(t->idx >> 16);
        out[k].id.b[10] = (uint8_t)(t->idx >> 8);
        out[k].id.b[11] = (uint8_t)t->idx;
        memcpy(out[k].id.b + 12, rs->salt, 4);
        out[k].task = mt->task;
        out[k].payload = mt->payload;
        out[k].queue = runs_queue_name(t);
        out[k].attempt = t->attempts;
        t->capped = mt->timeout_ms == 0 || mt->timeout_ms >= left;
        out[k].timeout_ms = t->capped ? left : mt->timeout_ms;
        out[k].lease = t->lease;
        k++;
    }
    return k;
}

size_t
runs_take(void *arg, const char *const *queues, size_t queues_n,
          uint64_t worker_id, struct msg_job *out, size_t max,
          uint64_t now_mono_ms)
{
    struct runs *rs = arg;
    size_t       k = 0;

    /* A peer's sub-run first: its tasks were spread here because this node
     * had room, and their caller is waiting too. */
    for (size_t i = 0; i < queues_n && k < max; i++)
        for (int local = 1; local >= 0; local--)
            k = runs_take_queue(rs, runs_queue_find(rs, queues[i], local),
                                worker_id, out, NULL, k, max, now_mono_ms);
    if (k > 0)
        runs_wake(rs, now_mono_ms + RUNS_LEASE_MS);
    return k;
}

size_t
runs_take_spread(struct runs *rs, uint64_t peer_id, const char *const *queues,
                 size_t queues_n, struct msg_job *out, uint64_t *left_ms,
                 size_t max, uint64_t now_mono_ms)
{
    size_t k = 0;

    for (size_t i = 0; i < queues_n && k < max; i++)
        k = runs_take_queue(rs, runs_queue_find(rs, queues[i], 0), peer_id, out,
                            left_ms, k, max, now_mono_ms);
    if (k > 0)
        runs_wake(rs, now_mono_ms + RUNS_LEASE_MS);
    return k;
}

/* Every task out with worker_id goes back to its queue. */
size_t
runs_requeue_worker(struct runs *rs, uint64_t worker_id)
{
    size_t requeued = 0;

    for (struct runs_task *t = rs->out_head, *next; t != NULL; t = next) {
        next = t->next;
        if (t->worker_id == worker_id) {
            runs_requeue(rs, t);
            requeued++;
        }
    }
    return requeued;
}

/* The task an outcome names, if it is this process's and not final. */
static struct runs_task *
runs_task_of(struct runs *rs, const cadre_job_id *id)
{
    struct runs_run *run;
    uint32_t         idx;

    if (memcmp(id->b + 12, rs->salt, 4) != 0)
        return NULL;
    run = runs_find_serial(rs, runs_get64(id->b));
    idx = (uint32_t)id->b[8] << 24 | (uint32_t)id->b[9] << 16 |
          (uint32_t)id->b[10] << 8 | id->b[11];
    if (run == NULL || run->answered || idx >= run->n ||
        run->tasks[idx].state == RUNS_FINAL)
        return NULL;
    return &run->tasks[idx];
}

static int
runs_set_error(struct runs_task *t, const char *type, const char *msg)
{
    t->error_type = cd_strdup(type != NULL && type[0] ? type : "Error");
    t->error = cd_strdup(msg != NULL ? msg : "");
    return t->error_type && t->error ? CADRE_OK : CADRE_ENOMEM;
}

void
runs_outcome(void *arg, uint64_t worker_id, const struct msg_outcome *o,
             uint64_t now_mono_ms)
{
    struct runs      *rs = arg;
    struct runs_task *t = runs_task_of(rs, &o->id);
    struct runs_run  *run;

    (void)worker_id;
    if (t == NULL || o->lease == 0 ||
        (o->lease != t->lease && o->lease != t->prev_lease))
        return; /* late (deadline, fail_fast, re-queued twice) or unknown */
    run = t->run;
    switch (o->kind) {
    case MSG_OUTCOME_DONE:
        if (o->result.len > 0) {
            t->result = cd_memdup(o->result.data, o->result.len);
            if (t->result == NULL) {
                runs_set_error(t, "NoMemory", "node out of memory for result");
                runs_final(rs, t, CADRE_RUN_ERROR);
                break;
            }
            t->result_len = o->result.len;
        }
        runs_final(rs, t, CADRE_RUN_OK);
        break;
    case MSG_OUTCOME_RELEASE:
    case MSG_OUTCOME_RETURN:
        /* Back to the queue, now: the caller is waiting. Only the current
         * hand-out can give it back. */
        if (t->state == RUNS_RUNNING && o->lease == t->lease) {
            if (o->kind == MSG_OUTCOME_RETURN && t->attempts > 0)
                t->attempts--;
            runs_requeue(rs, t);
        }
        return;
    default: /* ERROR, FAIL: no retries within a run */
        if (t->capped && o->error_type != NULL &&
            strcmp(o->error_type, "TimedOut") == 0) {
            /* The worker killed it at the run's deadline, maybe a tick
             * before the node got there: the deadline's outcome. */
            runs_final(rs, t, CADRE_RUN_TIMED_OUT);
            break;
        }
        runs_set_error(t, o->error_type, o->error);
        runs_final(rs, t, CADRE_RUN_ERROR);
        if (run->fail_fast) {
            runs_answer(rs, run, CADRE_RUN_CANCELLED, now_mono_ms);
            return;
        }
        break;
    }
    if (run->left == 0)
        runs_answer(rs, run, CADRE_RUN_TIMED_OUT, now_mono_ms);
}

/* ---- workers and connections ----------------------------------------------
 */

void
runs_worker_seen(struct runs *rs, uint32_t pipe_id, uint64_t worker_id)
{
    for (size_t i = 0; i < rs->pipes_n; i++) {
        if (rs->pipes[i].pipe_id == pipe_id) {
            rs->pipes[i].worker_id = worker_id;
            return;
        }
    }
    if (rs->pipes_n == rs->pipes_cap) {
        size_t            cap = rs->pipes_cap ? rs->pipes_cap * 2 : 16;
        struct runs_pipe *v = cd_realloc(rs->pipes, cap * sizeof(*v));

        if (v == NULL)
            return; /* its tasks are re-queued when their lease expires */
        rs->pipes = v;
        rs->pipes_cap = cap;
    }
    rs->pipes[rs->pipes_n++] = (struct runs_pipe){pipe_id, worker_id};
}

void
runs_pipe_closed(struct runs *rs, uint32_t pipe_id)
{
    uint64_t worker_id = 0;
    int      found = 0;
    size_t   requeued = 0;

    for (size_t i = 0; i < rs->pipes_n; i++) {
        if (rs->pipes[i].pipe_id == pipe_id) {
            worker_id = rs->pipes[i].worker_id;
            rs->pipes[i] = rs->pipes[--rs->pipes_n];
            found = 1;
            break;
        }
    }
    if (!found)
        return; /* a client's connection */
    for (size_t i = 0; i < rs->pipes_n; i++)
        if (rs->pipes[i].worker_id == worker_id)
            return; /* the same worker is still connected another way */
    requeued = runs_requeue_worker(rs, worker_id);
    if (requeued > 0)
        CD_LOG_NOTICE("runs", "RUNS-WORKER-GONE",
                      "worker_id=%016llx requeued=%zu",
                      (unsigned long long)worker_id, requeued);
}

/* ---- time -----------------------------------------------------------------
 */

uint64_t
runs_tick(struct runs *rs, uint64_t now_mono_ms)
{
    uint64_t next = UINT64_MAX;

    for (struct runs_run *run = rs->active.head, *nx; run != NULL; run = nx) {
        nx = run->next;
        if (run->deadline_mono_ms <= now_mono_ms) {
            runs_answer(rs, run, CADRE_RUN_TIMED_OUT, now_mono_ms);
            continue;
        }
        /* Attached callers whose own deadline came first. */
        for (struct runs_waiter **pp = &run->waiters; *pp != NULL;) {
            struct runs_waiter *w = *pp;

            if (w->deadline_mono_ms <= now_mono_ms) {
                *pp = w->next;
                runs_reply(rs, run, w);
                cd_free(w);
                continue;
            }
            if (w->deadline_mono_ms < next)
                next = w->deadline_mono_ms;
            pp = &w->next;
        }
        if (run->deadline_mono_ms < next)
            next = run->deadline_mono_ms;
    }
    /* Hand-outs without news for RUNS_LEASE_MS go back to their queue. */
    while (rs->out_head != NULL &&
           rs->out_head->lease_until_mono_ms <= now_mono_ms) {
        CD_LOG_NOTICE("runs", "RUNS-LEASE-EXPIRED", "serial=%llu task=%u",
                      (unsigned long long)rs->out_head->run->serial,
                      rs->out_head->idx);
        runs_requeue(rs, rs->out_head);
    }
    if (rs->out_head != NULL && rs->out_head->lease_until_mono_ms < next)
        next = rs->out_head->lease_until_mono_ms;
    while (rs->kept.head != NULL &&
           (rs->kept.head->answered_mono_ms + RUNS_KEEP_MS <= now_mono_ms ||
            rs->kept_tasks > RUNS_KEEP_TASKS_MAX))
        runs_forget(rs, rs->kept.head);
    if (rs->kept.head != NULL &&
        rs->kept.head->answered_mono_ms + RUNS_KEEP_MS < next)
        next = rs->kept.head->answered_mono_ms + RUNS_KEEP_MS;
    rs->next_mono_ms = next;
    return next;
}

uint64_t
runs_next_mono_ms(const struct runs *rs)
{
    /* Too many kept tasks: forget the oldest at the next tick. */
    return rs->kept_tasks > RUNS_KEEP_TASKS_MAX ? 0 : rs->next_mono_ms;
}

void
runs_answer_all(struct runs *rs, uint64_t now_mono_ms)
{
    while (rs->active.head != NULL)
        runs_answer(rs, rs->active.head, CADRE_RUN_TIMED_OUT, now_mono_ms);
}
