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

struct steal {
    struct steal_config cfg;
    struct cluster     *cluster;
    int                 inflight; /* one steal at a time */
    uint64_t            next_try_mono_ms;
    struct settle      *uncommitted; /* adopted in the current turn */
    struct settle      *settles;     /* committed, settle not confirmed */
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

void
steal_free(struct steal *s)
{
    if (s == NULL)
        return;
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
                             t->now_ms, &se->ids[se->n], &dup, &err);

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

    steal_sweep(s, now);
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

void
steal_serve(struct steal *s, struct turn *t, struct turn_sealer *ts,
            struct api_req *r, const struct msg *m)
{
    char why[128];
    int  rc = steal_check(m, why, sizeof(why));

    if (rc != CADRE_OK)
        turn_seal_error(ts, r, KEYS_ROLE_NODE, m->request_id, rc, why);
    else if (m->kind == MSG_STEAL)
        steal_lend(s, t, ts, r, m);
    else
        steal_settle_serve(s, t, ts, r, m);
    turn_defer(t, r, KEYS_ROLE_NODE, m->request_id);
}

void
steal_get_stats(const struct steal *s, struct steal_stats *st)
{
    *st = s->st;
}
