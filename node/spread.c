/* spread.c: sub-runs to peers (spread.h). */
#include "node/spread.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/log.h"

#define SPREAD_PEERS_MAX 64   /* peers looked at per pump */
#define SPREAD_PER_SLOT 2     /* tasks per free slot the peer advertised */
#define SPREAD_TASKS_MAX 256  /* per sub-run */
#define SPREAD_INFLIGHT_MAX 2 /* sub-runs per peer at once */
#define SPREAD_MARGIN_MS                                                       \
    2000 /* the request outlives the sub-run's deadline                        \
          */

struct subrun {
    struct spread *sp;
    char           node_id[CLUSTER_ID_MAX];
    uint64_t       peer_id;
    size_t         n;
    cadre_job_id  *ids;
    uint64_t      *leases;
    int            down; /* the peer went away: its tasks were given back */
    struct subrun *prev, *next;
};

struct spread {
    struct runs        *runs;
    struct cluster     *cluster;
    struct subrun      *inflight;
    struct spread_stats st;
};

int
spread_new(struct runs *rs, struct cluster *c, struct spread **out)
{
    struct spread *sp = cd_calloc(1, sizeof(*sp));

    if (sp == NULL)
        return CADRE_ENOMEM;
    sp->runs = rs;
    sp->cluster = c;
    *out = sp;
    return CADRE_OK;
}

static void
spread_subrun_free(struct spread *sp, struct subrun *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else if (sp->inflight == s)
        sp->inflight = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    cd_free(s->ids);
    cd_free(s->leases);
    cd_free(s);
}

/* Requests in flight are dropped by cluster_close first: no callback comes
 * after this. */
void
spread_free(struct spread *sp)
{
    if (sp == NULL)
        return;
    while (sp->inflight != NULL)
        spread_subrun_free(sp, sp->inflight);
    cd_free(sp);
}

/* A worker id for a peer, stable per node id (FNV-1a). */
static uint64_t
spread_peer_id(const char *node_id)
{
    uint64_t h = UINT64_C(1469598103934665603);

    for (const char *p = node_id; *p; p++)
        h = (h ^ (uint8_t)*p) * UINT64_C(1099511628211);
    return h | UINT64_C(1) << 62;
}

/* Each task of s back to its queue (if it is still this hand-out's). */
static void
spread_give_back(struct spread *sp, struct subrun *s)
{
    uint64_t now = cd_mono_ms();

    for (size_t i = 0; i < s->n; i++) {
        struct msg_outcome o = {
            .id = s->ids[i], .kind = MSG_OUTCOME_RETURN, .lease = s->leases[i]};

        runs_outcome(sp->runs, s->peer_id, &o, now);
    }
}

static void
spread_result(struct spread *sp, struct subrun *s, size_t i,
              const struct msg_run_result *r, uint64_t now)
{
    struct msg_outcome o = {.id = s->ids[i], .lease = s->leases[i]};

    switch (r->status) {
    case CADRE_RUN_OK:
        o.kind = MSG_OUTCOME_DONE;
        o.result = r->result;
        break;
    case CADRE_RUN_ERROR:
        o.kind = MSG_OUTCOME_ERROR;
        o.error_type = r->error_type;
        o.error = r->error;
        break;
    case CADRE_RUN_TIMED_OUT:
        o.kind = MSG_OUTCOME_ERROR; /* the deadline's outcome (runs.c) */
        o.error_type = "TimedOut";
        o.error = "timed out on a peer";
        break;
    default: /* cancelled there: not run */
        o.kind = MSG_OUTCOME_RETURN;
        break;
    }
    runs_outcome(sp->runs, s->peer_id, &o, now);
}

static void
spread_reply(void *arg, void *turn, const char *node_id, int rc,
             const struct msg *reply)
{
    struct subrun *s = arg;
    struct spread *sp = s->sp;
    uint64_t       now = cd_mono_ms();

    (void)turn;
    if (rc == CADRE_OK && reply->kind == MSG_RUN_REPLY &&
        reply->u.run_reply.results_n == s->n) {
        for (size_t i = 0; i < s->n; i++)
            spread_result(sp, s, i, &reply->u.run_reply.results[i], now);
    } else if (!s->down) {
        sp->st.failed++;
        CD_LOG_WARN("spread", "SPREAD-SUBRUN-FAILED",
                    "node=%s tasks=%zu error=\"%s\"", node_id, s->n,
                    rc != CADRE_OK ? cadre_strerror(rc)
                    : reply->kind == MSG_ERROR && reply->u.error.message
                        ? reply->u.error.message
                        : "unexpected reply");
        spread_give_back(sp, s);
    }
    spread_subrun_free(sp, s);
}

static size_t
spread_inflight(const struct spread *sp, const char *node_id)
{
    size_t n = 0;

    for (const struct subrun *s = sp->inflight; s != NULL; s = s->next)
        n += !s->down && strcmp(s->node_id, node_id) == 0;
    return n;
}

/* Builds the Run for out[0..k) and sends it to node_id. */
static int
spread_send(struct spread *sp, struct subrun *s, const struct msg_job *out,
            const uint64_t *left_ms)
{
    struct msg           m = {.kind = MSG_RUN};
    struct msg_run_task *tasks = cd_calloc(s->n, sizeof(*tasks));
    uint64_t             deadline = 0;
    int                  rc;

    if (tasks == NULL)
        return CADRE_ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        tasks[i].task = out[i].task;
        tasks[i].payload = out[i].payload;
        tasks[i].queue = out[i].queue;
        tasks[i].timeout_ms = out[i].timeout_ms;
        deadline = left_ms[i] > deadline ? left_ms[i] : deadline;
        s->ids[i] = out[i].id;
        s->leases[i] = out[i].lease;
    }
    cd_random(m.u.run.run_id.b, sizeof(m.u.run.run_id.b));
    m.u.run.tasks = tasks;
    m.u.run.tasks_n = s->n;
    m.u.run.deadline_ms = deadline;
    rc = cluster_request(sp->cluster, s->node_id, &m,
                         deadline + SPREAD_MARGIN_MS, spread_reply, s);
    cd_free(tasks);
    return rc;
}

/* Hands up to want tasks to node_id in one sub-run. */
static void
spread_to(struct spread *sp, const char *node_id, size_t want, uint64_t now)
{
    const char *const *serves;
    size_t             serves_n;
    struct msg_job    *out = cd_calloc(want, sizeof(*out));
    uint64_t          *left = cd_calloc(want, sizeof(*left));
    struct subrun     *s = cd_calloc(1, sizeof(*s));

    if (out == NULL || left == NULL || s == NULL ||
        (s->ids = cd_calloc(want, sizeof(*s->ids))) == NULL ||
        (s->leases = cd_calloc(want, sizeof(*s->leases))) == NULL)
        goto done;
    s->sp = sp;
    snprintf(s->node_id, sizeof(s->node_id), "%s", node_id);
    s->peer_id = spread_peer_id(node_id);
    /* Only tasks of queues the peer's idle workers wait on. */
    serves_n = cluster_peer_serves(sp->cluster, node_id, &serves);
    s->n = runs_take_spread(sp->runs, s->peer_id, serves, serves_n, out, left,
                            want, now);
    if (s->n == 0)
        goto done;
    if (spread_send(sp, s, out, left) != CADRE_OK) {
        spread_give_back(sp, s);
        goto done;
    }
    sp->st.subruns++;
    sp->st.tasks += s->n;
    s->next = sp->inflight;
    if (sp->inflight != NULL)
        sp->inflight->prev = s;
    sp->inflight = s;
    s = NULL;
done:
    if (s != NULL) {
        cd_free(s->ids);
        cd_free(s->leases);
        cd_free(s);
    }
    cd_free(out);
    cd_free(left);
}

void
spread_pump(struct spread *sp, uint64_t now_mono_ms)
{
    const char *ids[SPREAD_PEERS_MAX];
    uint32_t    free[SPREAD_PEERS_MAX];
    size_t      n;

    if (sp == NULL || runs_spreadable(sp->runs) == 0)
        return;
    n = cluster_free_peers(sp->cluster, ids, free, SPREAD_PEERS_MAX);
    for (size_t i = 0; i < n && runs_spreadable(sp->runs) > 0; i++) {
        size_t want = (size_t)free[i] * SPREAD_PER_SLOT;

        if (spread_inflight(sp, ids[i]) >= SPREAD_INFLIGHT_MAX)
            continue;
        spread_to(sp, ids[i], want < SPREAD_TASKS_MAX ? want : SPREAD_TASKS_MAX,
                  now_mono_ms);
    }
}

void
spread_peer_down(struct spread *sp, const char *node_id)
{
    size_t given = 0;

    if (sp == NULL)
        return;
    for (struct subrun *s = sp->inflight; s != NULL; s = s->next) {
        if (s->down || strcmp(s->node_id, node_id) != 0)
            continue;
        s->down = 1; /* the request stays: a late answer is still taken */
        spread_give_back(sp, s);
        given += s->n;
        sp->st.failed++;
    }
    if (given > 0)
        CD_LOG_NOTICE("spread", "SPREAD-PEER-DOWN", "node=%s requeued=%zu",
                      node_id, given);
}

void
spread_get_stats(const struct spread *sp, struct spread_stats *st)
{
    *st = sp->st;
}
