/* steal.c: the thief's and the victim's halves of a steal (steal.h). */
#include "node/steal.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "store/store.h"

#define STEAL_CAP 1024        /* jobs per steal, whatever is asked */
#define STEAL_PER_IDLE 32     /* jobs asked per idle worker */
#define STEAL_QUEUES_MAX 64   /* queues named in one steal */
#define STEAL_TIMEOUT_MS 5000 /* a steal or settle not answered by then */
#define HOME_BATCH_JOBS 256   /* outcomes per Finished message */
#define HOME_BATCH_BYTES (4u << 20)
#define HOME_PENDING_MAX 100000 /* outcomes waiting to go home, in all */
#define HOME_GIVE_UP_MS 120000  /* an origin unreachable this long: dropped */
#define HOME_ACKED ((size_t)1 << (sizeof(size_t) * 8 - 1)) /* in sending */

/* Jobs adopted from one victim, to be settled there. */
struct settle {
    char           victim[CLUSTER_ID_MAX];
    cadre_job_id  *ids;
    size_t         n;
    uint64_t       give_up_mono_ms; /* the loan has expired there by then */
    uint64_t       next_try_mono_ms;
    int            inflight;
    struct settle *next;
};

/* Outcomes of jobs that ran here but were dispatched to origin (stolen):
 * its waiters are there. */
struct home {
    char              origin[CLUSTER_ID_MAX];
    struct store_job *jobs; /* owned, final (DONE or FAILED) */
    size_t            n, cap;
    size_t            sending; /* jobs[0..sending) are in flight */
    uint64_t          next_try_mono_ms, give_up_mono_ms;
    struct home      *next;
};

struct steal {
    struct steal_config cfg;
    struct cluster     *cluster;
    int                 inflight; /* one steal at a time */
    uint64_t            next_try_mono_ms;
    struct settle      *uncommitted; /* adopted in the current turn */
    struct settle      *settles;     /* committed, settle not confirmed */
    struct home        *homes;
    size_t              home_pending;
    struct steal_stats  st;
};

int
steal_new(const struct steal_config *cfg, struct cluster *c, struct steal **out)
{
    struct steal *s = cd_calloc(1, sizeof(*s));

    if (s == NULL)
        return CADRE_ENOMEM;
    s->cfg = *cfg;
    s->cluster = c;
    *out = s;
    return CADRE_OK;
}

static void
steal_settle_free(struct settle *se)
{
    cd_free(se->ids);
    cd_free(se);
}

static void
steal_list_free(struct settle *se)
{
    while (se != NULL) {
        struct settle *next = se->next;

        steal_settle_free(se);
        se = next;
    }
}

static void
steal_home_free(struct home *h)
{
    for (size_t i = 0; i < h->n; i++)
        store_job_fini(&h->jobs[i]);
    cd_free(h->jobs);
    cd_free(h);
}

void
steal_free(struct steal *s)
{
    if (s == NULL)
        return;
    while (s->homes != NULL) {
        struct home *h = s->homes;

        s->homes = h->next;
        steal_home_free(h);
    }
    steal_list_free(s->uncommitted);
    steal_list_free(s->settles);
    cd_free(s);
}

/* ---- thief ---------------------------------------------------------------
 */

static void steal_send_settle(struct steal *s, struct settle *se);

static void
steal_settle_reply(void *arg, void *turn, const char *node_id, int rc,
                   const struct msg *reply)
{
    struct settle *se = arg;

    (void)turn;
    (void)node_id;
    se->inflight = 0;
    if (rc == CADRE_OK && reply->kind == MSG_ADMIN_REPLY)
        se->n = 0; /* done: freed by steal_sweep */
    else
        se->next_try_mono_ms = cd_mono_ms() + 200;
}

static void
steal_send_settle(struct steal *s, struct settle *se)
{
    struct msg m = {.kind = MSG_SETTLE};

    m.u.settle.ids = se->ids;
    m.u.settle.ids_n = se->n;
    m.u.settle.thief = s->cfg.node_id;
    if (cluster_request(s->cluster, se->victim, &m, STEAL_TIMEOUT_MS,
                        steal_settle_reply, se) == CADRE_OK)
        se->inflight = 1;
    else
        se->next_try_mono_ms = cd_mono_ms() + 500;
}

/* Settles not confirmed: retried until the loan has expired anyway. */
static void
steal_sweep(struct steal *s, uint64_t now)
{
    struct settle **p = &s->settles;

    while (*p != NULL) {
        struct settle *se = *p;

        if (!se->inflight && (se->n == 0 || now >= se->give_up_mono_ms)) {
            if (se->n > 0)
                CD_LOG_WARN("steal", "STEAL-SETTLE-GAVE-UP",
                            "victim=%s jobs=%zu: they may run there too",
                            se->victim, se->n);
            *p = se->next;
            steal_settle_free(se);
            continue;
        }
        if (!se->inflight && now >= se->next_try_mono_ms) {
            s->st.settle_retries++;
            steal_send_settle(s, se);
        }
        p = &se->next;
    }
}

static void
steal_adopt(struct steal *s, struct turn *t, const char *victim,
            const struct msg_steal_reply *r)
{
    struct settle *se = cd_calloc(1, sizeof(*se));
    cd_err         err;

    if (se == NULL ||
        (se->ids = cd_calloc(r->records_n, sizeof(*se->ids))) == NULL) {
        cd_free(se);
        return; /* not adopted, not settled: the loan comes back there */
    }
    for (size_t i = 0; i < r->records_n; i++) {
        int dup = 0;
        int rc = store_adopt(t->txn, r->records[i].data, r->records[i].len,
                             t->now_ms, victim, &se->ids[se->n], &dup, &err);

        if (rc != CADRE_OK) {
            CD_LOG_WARN("steal", "STEAL-ADOPT", "victim=%s error=\"%s\"",
                        victim, err.msg);
            continue;
        }
        se->n++; /* a duplicate is ours already: settle it too */
        s->st.stolen += dup == 0;
    }
    t->dirty = 1;
    snprintf(se->victim, sizeof(se->victim), "%s", victim);
    se->next = s->uncommitted;
    s->uncommitted = se;
}

static void
steal_reply(void *arg, void *turn, const char *node_id, int rc,
            const struct msg *reply)
{
    struct steal *s = arg;

    s->inflight = 0;
    if (rc != CADRE_OK || reply->kind != MSG_STEAL_REPLY ||
        reply->u.steal_reply.records_n == 0) {
        s->next_try_mono_ms = cd_mono_ms() + s->cfg.backoff_ms;
        return;
    }
    steal_adopt(s, turn, node_id, &reply->u.steal_reply);
}

void
steal_maybe(struct steal *s, size_t idle, const char *const *queues,
            size_t queues_n, uint64_t local_ready)
{
    uint64_t    now = cd_mono_ms(), ready = 0;
    const char *victim;
    struct msg  m = {.kind = MSG_STEAL};
    size_t      want = idle * STEAL_PER_IDLE;

    if (s->cfg.steal_max == 0 || s->inflight || idle == 0 || local_ready > 0 ||
        now < s->next_try_mono_ms)
        return;
    victim = cluster_pick_victim(s->cluster, queues, queues_n, &ready);
    if (victim == NULL)
        return;
    m.u.steal.queues = (const char **)queues;
    m.u.steal.queues_n =
        queues_n < STEAL_QUEUES_MAX ? queues_n : STEAL_QUEUES_MAX;
    m.u.steal.max =
        (uint32_t)(want < s->cfg.steal_max ? want : s->cfg.steal_max);
    m.u.steal.thief = s->cfg.node_id;
    if (cluster_request(s->cluster, victim, &m, STEAL_TIMEOUT_MS, steal_reply,
                        s) == CADRE_OK) {
        s->inflight = 1;
        s->st.asked++;
    } else {
        s->next_try_mono_ms = now + s->cfg.backoff_ms;
    }
}

void
steal_committed(struct steal *s, int ok)
{
    uint64_t now = cd_mono_ms();

    while (s->uncommitted != NULL) {
        struct settle *se = s->uncommitted;

        s->uncommitted = se->next;
        if (!ok || se->n == 0) { /* not ours after all: the loans expire */
            steal_settle_free(se);
            continue;
        }
        se->give_up_mono_ms = now + s->cfg.lend_ms;
        se->next = s->settles;
        s->settles = se;
        steal_send_settle(s, se);
    }
}

/* ---- outcomes home --------------------------------------------------------
 * A job stolen from its origin runs here, but whoever waits for it waits
 * there: its final outcome goes home in a Finished message. Kept in memory
 * and retried until HOME_GIVE_UP_MS: a crash here loses the notice (the
 * waiter there then sees the job pending, a "moved" placeholder, until its
 * timeout), never the job. */

/* Always: jobs adopted before a restart finish after it, before this
 * process has stolen anything (a counter would say no). Keeping the
 * finished jobs of a turn only moves them into an array. */
int
steal_wants_finished(const struct steal *s)
{
    return s != NULL;
}

static struct home *
steal_home_of(struct steal *s, const char *origin)
{
    struct home *h;

    for (h = s->homes; h != NULL; h = h->next)
        if (strcmp(h->origin, origin) == 0)
            return h;
    if ((h = cd_calloc(1, sizeof(*h))) == NULL)
        return NULL;
    snprintf(h->origin, sizeof(h->origin), "%s", origin);
    h->next = s->homes;
    s->homes = h;
    return h;
}

/* Moves *job (final, from another origin) into its home batch. */
static void
steal_home_add(struct steal *s, struct store_job *job)
{
    struct home *h = steal_home_of(s, job->origin);

    if (h == NULL || s->home_pending >= HOME_PENDING_MAX) {
        CD_LOG_WARN("steal", "STEAL-HOME-DROPPED", "origin=%s", job->origin);
        return;
    }
    if (h->n == h->cap) {
        size_t            cap = h->cap ? h->cap * 2 : 64;
        struct store_job *v = cd_realloc(h->jobs, cap * sizeof(*v));

        if (v == NULL)
            return;
        h->jobs = v;
        h->cap = cap;
    }
    if (h->n == 0)
        h->give_up_mono_ms = cd_mono_ms() + HOME_GIVE_UP_MS;
    h->jobs[h->n++] = *job;
    memset(job, 0, sizeof(*job));
    s->home_pending++;
}

static void
steal_home_sent(struct steal *s, struct home *h, size_t k)
{
    for (size_t i = 0; i < k; i++)
        store_job_fini(&h->jobs[i]);
    memmove(h->jobs, h->jobs + k, (h->n - k) * sizeof(*h->jobs));
    h->n -= k;
    s->home_pending -= k;
    h->give_up_mono_ms = cd_mono_ms() + HOME_GIVE_UP_MS;
}

static void
steal_home_reply(void *arg, void *turn, const char *node_id, int rc,
                 const struct msg *reply)
{
    struct home *h = arg;

    (void)turn;
    (void)node_id;
    if (rc == CADRE_OK && reply->kind == MSG_ADMIN_REPLY) {
        h->sending |= HOME_ACKED; /* dropped by the next sweep */
    } else {
        h->next_try_mono_ms = cd_mono_ms() + 500;
        h->sending = 0;
    }
}

static size_t
steal_home_batch(const struct home *h)
{
    size_t k = 0, bytes = 0;

    while (k < h->n && k < HOME_BATCH_JOBS && bytes < HOME_BATCH_BYTES) {
        const struct store_job *j = &h->jobs[k++];

        bytes += j->result_len + (j->error ? strlen(j->error) : 0) + 256;
    }
    return k;
}

static void
steal_home_send(struct steal *s, struct home *h)
{
    struct msg             m = {.kind = MSG_FINISHED};
    size_t                 k = steal_home_batch(h);
    struct msg_job_result *rs = cd_calloc(k ? k : 1, sizeof(*rs));

    if (rs == NULL)
        return;
    for (size_t i = 0; i < k; i++) {
        const struct store_job *j = &h->jobs[i];

        rs[i].id = j->id;
        rs[i].status = j->state == STORE_DONE ? CADRE_DONE : CADRE_FAILED;
        rs[i].attempts = j->attempts;
        rs[i].result = (msg_bytes){j->result, j->result_len};
        rs[i].error_type = j->error_type;
        rs[i].error = j->error;
        rs[i].task = j->task;
        rs[i].queue = j->queue;
    }
    m.u.wait_reply.results = rs;
    m.u.wait_reply.results_n = k;
    if (cluster_request(s->cluster, h->origin, &m, STEAL_TIMEOUT_MS,
                        steal_home_reply, h) == CADRE_OK)
        h->sending = k;
    else
        h->next_try_mono_ms = cd_mono_ms() + 500;
    cd_free(rs);
}

/* Confirmed batches are dropped, the rest (re)sent or given up. */
static void
steal_home_sweep(struct steal *s, uint64_t now)
{
    struct home **p = &s->homes;

    while (*p != NULL) {
        struct home *h = *p;

        if (h->sending & HOME_ACKED) {
            steal_home_sent(s, h, h->sending & ~HOME_ACKED);
            h->sending = 0;
        }
        if (h->sending == 0 && h->n > 0 && now >= h->give_up_mono_ms) {
            CD_LOG_WARN("steal", "STEAL-HOME-GAVE-UP",
                        "origin=%s outcomes=%zu: its waiters will not hear",
                        h->origin, h->n);
            steal_home_sent(s, h, h->n);
        }
        if (h->sending == 0 && h->n == 0) {
            *p = h->next;
            steal_home_free(h);
            continue;
        }
        if (h->sending == 0 && now >= h->next_try_mono_ms)
            steal_home_send(s, h);
        p = &h->next;
    }
}

void
steal_send_home(struct steal *s, struct turn *t)
{
    for (size_t i = 0; i < t->finished_n; i++) {
        struct store_job *j = &t->finished[i];

        if (j->origin != NULL && j->origin[0] != '\0' &&
            strcmp(j->origin, s->cfg.node_id) != 0)
            steal_home_add(s, j);
    }
    steal_home_sweep(s, cd_mono_ms());
}

void
steal_tick(struct steal *s)
{
    uint64_t now = cd_mono_ms();

    steal_sweep(s, now);
    steal_home_sweep(s, now);
}

/* ---- victim ---------------------------------------------------------------
 */

static int
steal_check(const struct msg *m, char *why, size_t why_len)
{
    const char *thief =
        m->kind == MSG_STEAL ? m->u.steal.thief : m->u.settle.thief;

    if (thief == NULL || thief[0] == '\0' || strlen(thief) >= CLUSTER_ID_MAX)
        snprintf(why, why_len, "a steal names its node (1 to %d bytes)",
                 CLUSTER_ID_MAX - 1);
    else if (m->kind == MSG_STEAL && (m->u.steal.queues_n == 0 ||
                                      m->u.steal.queues_n > STEAL_QUEUES_MAX))
        snprintf(why, why_len, "a steal names 1 to %d queues",
                 STEAL_QUEUES_MAX);
    else
        return CADRE_OK;
    return CADRE_EINVAL;
}

static void
steal_lend(struct steal *s, struct turn *t, struct turn_sealer *ts,
           struct api_req *r, const struct msg *m)
{
    const struct msg_steal *st = &m->u.steal;
    struct msg reply = {.request_id = m->request_id, .kind = MSG_STEAL_REPLY};
    uint64_t   ready = store_ready_in(t->store, st->queues, st->queues_n);
    size_t     n = (size_t)((ready + 1) / 2), k = 0;
    struct store_blob *blobs;
    msg_bytes         *recs;
    cd_err             err;

    n = n < st->max ? n : st->max;
    n = n < STEAL_CAP ? n : STEAL_CAP;
    blobs = cd_calloc(n ? n : 1, sizeof(*blobs));
    recs = cd_calloc(n ? n : 1, sizeof(*recs));
    if (blobs == NULL || recs == NULL) {
        turn_seal_error(ts, r, KEYS_ROLE_NODE, m->request_id, CADRE_ENOMEM,
                        "out of memory");
    } else if (n > 0 && store_lend(t->txn, st->queues, st->queues_n, n,
                                   t->now_ms, s->cfg.lend_ms, st->thief, blobs,
                                   &k, &err) != CADRE_OK) {
        turn_seal_error(ts, r, KEYS_ROLE_NODE, m->request_id, err.code,
                        err.msg);
    } else {
        for (size_t i = 0; i < k; i++)
            recs[i] = (msg_bytes){blobs[i].data, blobs[i].len};
        reply.u.steal_reply.records = recs;
        reply.u.steal_reply.records_n = k;
        turn_seal(ts, r, KEYS_ROLE_NODE, &reply);
        t->dirty |= k > 0;
        s->st.lent += k;
        if (k > 0)
            CD_LOG_DEBUG("steal", "STEAL-LENT", "thief=%s jobs=%zu", st->thief,
                         k);
    }
    for (size_t i = 0; i < k; i++)
        cd_free(blobs[i].data);
    cd_free(blobs);
    cd_free(recs);
}

static void
steal_settle_serve(struct steal *s, struct turn *t, struct turn_sealer *ts,
                   struct api_req *r, const struct msg *m)
{
    struct msg reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};
    size_t     settled = 0;
    cd_err     err;

    if (store_lend_settle(t->txn, m->u.settle.ids, m->u.settle.ids_n,
                          m->u.settle.thief, &settled, &err) != CADRE_OK) {
        turn_seal_error(ts, r, KEYS_ROLE_NODE, m->request_id, err.code,
                        err.msg);
        return;
    }
    t->dirty |= settled > 0;
    s->st.settled += settled;
    reply.u.admin_reply.count = settled;
    turn_seal(ts, r, KEYS_ROLE_NODE, &reply);
}

/* An owned store_job for the waiters (turn_finished) from r. */
static int
steal_job_of(const struct msg_job_result *r, struct store_job *j)
{
    memset(j, 0, sizeof(*j));
    j->id = r->id;
    j->state = r->status == CADRE_DONE ? STORE_DONE : STORE_FAILED;
    j->attempts = r->attempts;
    j->task = cd_strdup(r->task != NULL && r->task[0] ? r->task : "?");
    j->queue =
        cd_strdup(r->queue != NULL && r->queue[0] ? r->queue : "default");
    j->error_type = cd_strdup(r->error_type != NULL ? r->error_type : "");
    j->error = cd_strdup(r->error != NULL ? r->error : "");
    if (r->result.len > 0 &&
        (j->result = cd_memdup(r->result.data, r->result.len)) != NULL)
        j->result_len = r->result.len;
    if (j->task == NULL || j->queue == NULL || j->error_type == NULL ||
        j->error == NULL || (r->result.len > 0 && j->result == NULL)) {
        store_job_fini(j);
        return CADRE_ENOMEM;
    }
    return CADRE_OK;
}

/* One outcome of a job dispatched here that a peer ran. A lent copy still
 * here is settled by it (the Settle may come later: it then finds nothing);
 * a job that came back here after its loan expired keeps running here. */
static int
steal_take_home(struct turn *t, const struct msg_job_result *r)
{
    struct store_job cur, j;
    size_t           settled = 0;
    cd_err           err;
    int              rc;

    if (r->status != CADRE_DONE && r->status != CADRE_FAILED)
        return CADRE_EINVAL;
    if (store_job_get(t->txn, &r->id, &cur, &err) == CADRE_OK) {
        rc = cur.lent_to != NULL
                 ? store_lend_settle(t->txn, &r->id, 1, cur.lent_to, &settled,
                                     &err)
                 : CADRE_EEXISTS;
        store_job_fini(&cur);
        if (rc != CADRE_OK || settled == 0)
            return CADRE_EEXISTS;
    }
    if ((rc = steal_job_of(r, &j)) != CADRE_OK)
        return rc;
    rc = store_result_put(t->txn, &j, t->now_ms, &err);
    if (rc == CADRE_OK)
        turn_finished(t, &j); /* its waiters hear after the commit */
    store_job_fini(&j);
    return rc;
}

static void
steal_finished_serve(struct steal *s, struct turn *t, struct turn_sealer *ts,
                     struct api_req *r, const struct msg *m)
{
    struct msg reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};
    const struct msg_wait_reply *f = &m->u.wait_reply;

    t->keep_finished = 1;
    for (size_t i = 0; i < f->results_n; i++)
        if (steal_take_home(t, &f->results[i]) == CADRE_OK) {
            reply.u.admin_reply.count++;
            t->dirty = 1;
        }
    s->st.came_home += reply.u.admin_reply.count;
    turn_seal(ts, r, KEYS_ROLE_NODE, &reply);
}

void
steal_serve(struct steal *s, struct turn *t, struct turn_sealer *ts,
            struct api_req *r, const struct msg *m)
{
    char why[128];
    int  rc =
        m->kind == MSG_FINISHED ? CADRE_OK : steal_check(m, why, sizeof(why));

    if (rc != CADRE_OK)
        turn_seal_error(ts, r, KEYS_ROLE_NODE, m->request_id, rc, why);
    else if (m->kind == MSG_STEAL)
        steal_lend(s, t, ts, r, m);
    else if (m->kind == MSG_FINISHED)
        steal_finished_serve(s, t, ts, r, m);
    else
        steal_settle_serve(s, t, ts, r, m);
    turn_defer(t, r, KEYS_ROLE_NODE, m->request_id);
}

void
steal_get_stats(const struct steal *s, struct steal_stats *st)
{
    *st = s->st;
}
