/* coord.c: Coord requests to the leader's FSM: validation, proposal or
 * forward, and the deferred reply (coord.h). */
#include "node/coord.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/fsm.h"

/* msg.h repeats the FSM's numbers for clients: they must not drift. */
_Static_assert((int)MSG_COORD_LOCK_ACQUIRE == (int)FSM_LOCK_ACQUIRE &&
                   (int)MSG_COORD_LOCK_RELEASE == (int)FSM_LOCK_RELEASE &&
                   (int)MSG_COORD_THROTTLE == (int)FSM_THROTTLE &&
                   (int)MSG_COORD_FUNNEL_ACQUIRE == (int)FSM_FUNNEL_ACQUIRE &&
                   (int)MSG_COORD_FUNNEL_RELEASE == (int)FSM_FUNNEL_RELEASE &&
                   (int)MSG_COORD_UNIQUE_TAKE == (int)FSM_UNIQUE_TAKE &&
                   (int)MSG_COORD_UNIQUE_RELEASE == (int)FSM_UNIQUE_RELEASE,
               "coord kinds match node/fsm.h");
_Static_assert((int)MSG_COORD_OK == (int)FSM_R_OK &&
                   (int)MSG_COORD_HELD == (int)FSM_R_HELD &&
                   (int)MSG_COORD_LIMITED == (int)FSM_R_LIMITED &&
                   (int)MSG_COORD_NOT_HOLDER == (int)FSM_R_NOT_HOLDER &&
                   (int)MSG_COORD_INVALID == (int)FSM_R_INVALID &&
                   (int)MSG_COORD_FULL == (int)FSM_R_FULL,
               "coord codes match node/fsm.h");

/* One request held until its proposal or forward comes back. req is NULL
 * once coord_close answered it: the callback then only frees it. */
struct coord_req {
    struct coord     *co;
    struct api_req   *req;
    int               role;
    uint64_t          request_id;
    char              leader[LEADER_ID_MAX]; /* a forward's target */
    coord_done_cb     done; /* coord_submit's: no api request */
    void             *done_arg;
    struct coord_req *prev, *next;
};

struct coord {
    struct coord_config cfg;
    struct coord_req   *held;
    size_t              held_n;
    int                 closed;
};

int
coord_new(const struct coord_config *cfg, struct coord **out)
{
    struct coord *co = cd_calloc(1, sizeof(*co));

    if (co == NULL)
        return CADRE_ENOMEM;
    co->cfg = *cfg;
    if (co->cfg.inflight_max == 0)
        co->cfg.inflight_max = COORD_INFLIGHT_MAX;
    if (co->cfg.forward_ms == 0)
        co->cfg.forward_ms = COORD_FORWARD_MS_DEFAULT;
    *out = co;
    return CADRE_OK;
}

size_t
coord_inflight(const struct coord *co)
{
    return co == NULL ? 0 : co->held_n;
}

/* ---- replies ------------------------------------------------------------ */

static void
coord_send_error(struct coord *co, struct api_req *r, int role,
                 uint64_t request_id, int code, const char *message)
{
    if (turn_seal_error(co->cfg.sealer, r, role, request_id, code, message) ==
        CADRE_OK)
        api_reply(r);
    else
        api_drop(r);
}

static void
coord_send(struct coord *co, struct api_req *r, int role, const struct msg *m)
{
    if (turn_seal(co->cfg.sealer, r, role, m) == CADRE_OK)
        api_reply(r);
    else
        api_drop(r);
}

/* Fails q: an api request gets an error reply, a submission its callback.
 * The caller releases q. */
static void
coord_fail(struct coord *co, struct coord_req *q, int code, const char *why)
{
    if (q->done != NULL)
        q->done(q->done_arg, code, NULL);
    else if (q->req != NULL)
        coord_send_error(co, q->req, q->role, q->request_id, code, why);
    q->done = NULL;
    q->req = NULL;
}

static struct coord_req *
coord_hold(struct coord *co, struct api_req *r, int role, const struct msg *m)
{
    struct coord_req *q = cd_calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->co = co;
    q->req = r;
    q->role = role;
    q->request_id = m->request_id;
    q->next = co->held;
    if (co->held != NULL)
        co->held->prev = q;
    co->held = q;
    co->held_n++;
    return q;
}

static void
coord_release(struct coord *co, struct coord_req *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else if (co->held == q)
        co->held = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    co->held_n--;
    cd_free(q);
}

/* ---- validation --------------------------------------------------------- */

/* Fills c from m, checking what the FSM would refuse as INVALID, so the
 * requester learns which field is wrong. Returns CADRE_EINVAL with why. */
static int
coord_check(const struct msg_coord *m, int from_peer, struct fsm_cmd *c,
            char *why, size_t why_len)
{
    const char *key = m->key != NULL ? m->key : "";
    const char *owner = m->owner != NULL ? m->owner : "";
    size_t      key_len = strlen(key), owner_len = strlen(owner);
    int         needs_owner = m->kind != MSG_COORD_THROTTLE;

    memset(c, 0, sizeof(*c));
    if (key_len == 0 || key_len > FSM_KEY_MAX) {
        snprintf(why, why_len, "key must be 1 to %d bytes (got %zu)",
                 FSM_KEY_MAX, key_len);
        return CADRE_EINVAL;
    }
    if (needs_owner && (owner_len == 0 || owner_len > FSM_OWNER_MAX)) {
        snprintf(why, why_len, "owner must be 1 to %d bytes (got %zu)",
                 FSM_OWNER_MAX, owner_len);
        return CADRE_EINVAL;
    }
    if ((m->kind == MSG_COORD_LOCK_ACQUIRE ||
         m->kind == MSG_COORD_FUNNEL_ACQUIRE) &&
        m->ttl_ms == 0) {
        snprintf(why, why_len, "ttl must be at least 1 ms");
        return CADRE_EINVAL;
    }
    if ((m->kind == MSG_COORD_UNIQUE_TAKE ||
         m->kind == MSG_COORD_UNIQUE_RELEASE) &&
        !from_peer && /* nodes forward unique jobs' keys */
        strncmp(key, MSG_SCHEDULE_PAUSE_PREFIX,
                strlen(MSG_SCHEDULE_PAUSE_PREFIX)) != 0) {
        snprintf(why, why_len,
                 "unique keys here are schedule pauses only (%s...)",
                 MSG_SCHEDULE_PAUSE_PREFIX);
        return CADRE_EINVAL;
    }
    if (m->kind == MSG_COORD_THROTTLE && (m->limit == 0 || m->per_ms == 0)) {
        snprintf(why, why_len, "a throttle needs a limit and a window >= 1");
        return CADRE_EINVAL;
    }
    if (m->kind == MSG_COORD_FUNNEL_ACQUIRE &&
        (m->limit == 0 || m->limit > FSM_FUNNEL_MAX)) {
        snprintf(why, why_len, "a funnel limit must be 1 to %d (got %u)",
                 FSM_FUNNEL_MAX, m->limit);
        return CADRE_EINVAL;
    }
    c->kind = m->kind;
    c->key = key;
    c->key_len = (uint16_t)key_len;
    if (needs_owner) {
        c->owner = owner;
        c->owner_len = (uint16_t)owner_len;
    }
    c->ttl_ms = m->ttl_ms;
    c->limit = m->limit;
    c->per_ms = m->per_ms;
    return CADRE_OK;
}

/* ---- proposing (this node leads) ---------------------------------------- */

static void
coord_propose_cb(void *arg, int rc, const struct fsm_result *res)
{
    struct coord_req *q = arg;
    struct coord     *co = q->co;
    struct msg m = {.request_id = q->request_id, .kind = MSG_COORD_REPLY};

    if (q->done != NULL) { /* coord_submit's */
        q->done(q->done_arg, rc, rc == CADRE_OK ? res : NULL);
        coord_release(co, q);
        return;
    }
    if (q->req == NULL) { /* answered by coord_close */
        coord_release(co, q);
        return;
    }
    if (rc != CADRE_OK) {
        /* Unknown outcome: a retry is safe for locks and funnels (the same
         * owner refreshes) and counts twice for a throttle (the safe
         * side). */
        coord_send_error(co, q->req, q->role, q->request_id, CADRE_EBUSY,
                         "no leader: leadership lost while proposing (the "
                         "command may still apply); retry");
    } else {
        m.u.coord_reply.code = res->code;
        m.u.coord_reply.token = res->token;
        m.u.coord_reply.retry_after_ms = res->retry_after_ms;
        m.u.coord_reply.count = res->count;
        m.u.coord_reply.holder = res->holder; /* owners are text here */
        coord_send(co, q->req, q->role, &m);
    }
    coord_release(co, q);
}

static void
coord_propose(struct coord *co, struct coord_req *q, struct fsm_cmd *c)
{
    int rc;

    c->now_ms = cd_now_ms(); /* the proposer's clock (fsm.h) */
    rc = leader_propose(co->cfg.leader, c, coord_propose_cb, q);
    if (rc == CADRE_OK)
        return;
    coord_fail(co, q, rc,
               rc == CADRE_EBUSY
                   ? "no leader: this node lost the leadership; retry"
                   : "leader: the proposal was refused");
    coord_release(co, q);
}

/* ---- forwarding (another node leads) ------------------------------------ */

/* A submission's forward came back: the leader's answer as an fsm_result
 * (holders are text on the wire), or EBUSY / the leader's error. */
static void
coord_forwarded(struct coord_req *q, int rc, const struct msg *reply)
{
    struct fsm_result res;

    if (rc != CADRE_OK || reply->kind != MSG_COORD_REPLY) {
        q->done(q->done_arg,
                rc == CADRE_OK && reply->kind == MSG_ERROR
                    ? (int)reply->u.error.code
                    : CADRE_EBUSY,
                NULL);
        return;
    }
    memset(&res, 0, sizeof(res));
    res.code = reply->u.coord_reply.code;
    res.token = reply->u.coord_reply.token;
    res.retry_after_ms = reply->u.coord_reply.retry_after_ms;
    res.count = reply->u.coord_reply.count;
    if (reply->u.coord_reply.holder != NULL) {
        snprintf(res.holder, sizeof(res.holder), "%s",
                 reply->u.coord_reply.holder);
        res.holder_len = (uint16_t)strlen(res.holder);
    }
    q->done(q->done_arg, CADRE_OK, &res);
}

static void
coord_forward_cb(void *arg, void *turn, const char *node_id, int rc,
                 const struct msg *reply)
{
    struct coord_req *q = arg;
    struct coord     *co = q->co;
    struct msg        m;
    char              why[512];

    (void)turn;
    if (q->done != NULL) {
        coord_forwarded(q, rc, reply);
        coord_release(co, q);
        return;
    }
    if (q->req == NULL) {
        coord_release(co, q);
        return;
    }
    if (rc == CADRE_OK && reply->kind == MSG_COORD_REPLY) {
        m = *reply; /* borrowed during this call: sealed at once */
        m.request_id = q->request_id;
        m.owner_ = NULL;
        coord_send(co, q->req, q->role, &m);
    } else if (rc == CADRE_OK && reply->kind == MSG_ERROR) {
        snprintf(why, sizeof(why), "leader %s: %s", node_id,
                 reply->u.error.message ? reply->u.error.message : "");
        coord_send_error(co, q->req, q->role, q->request_id,
                         reply->u.error.code, why);
    } else {
        snprintf(why, sizeof(why), "no leader: forward to leader %s: %s",
                 node_id,
                 rc == CADRE_OK ? "unexpected reply" : cadre_strerror(rc));
        coord_send_error(co, q->req, q->role, q->request_id, CADRE_EBUSY, why);
    }
    coord_release(co, q);
}

/* Why a forward to leader cannot start, as the requester reads it. */
static void
coord_forward_why(int rc, const char *leader, char *why, size_t len)
{
    if (rc == CADRE_ENOTFOUND)
        snprintf(why, len,
                 "no leader: leader %s is not a member this node knows "
                 "(list it in --peers)",
                 leader);
    else if (rc == CADRE_ECLOSED)
        snprintf(why, len, "no leader: leader %s is dead to this node", leader);
    else
        snprintf(why, len, "no leader: forward to leader %s: %s", leader,
                 cadre_strerror(rc));
}

static void
coord_forward(struct coord *co, struct coord_req *q, const struct msg *m)
{
    char why[256];
    int  rc = CADRE_ENOTFOUND;

    if (co->cfg.cluster != NULL)
        rc = cluster_request(co->cfg.cluster, q->leader, m, co->cfg.forward_ms,
                             coord_forward_cb, q);
    if (rc == CADRE_OK)
        return;
    coord_forward_why(rc, q->leader, why, sizeof(why));
    coord_fail(co, q, CADRE_EBUSY, why);
    coord_release(co, q);
}

/* ---- requests ----------------------------------------------------------- */

/* Where the request goes: 1 propose here, 2 forward to *leader; 0 after
 * answering it (no leader to reach). */
static int
coord_route(struct coord *co, int from_peer, char *leader, char *why,
            size_t why_len)
{
    leader_current(co->cfg.leader, leader);
    if (leader_is_ready(co->cfg.leader))
        return 1;
    if (leader[0] == '\0') {
        snprintf(why, why_len,
                 "no leader: none elected yet (an election is running or "
                 "the voters lack a quorum)");
        return 0;
    }
    if (strcmp(leader, co->cfg.node_id) == 0) {
        snprintf(why, why_len,
                 "no leader: this node was just elected and its barrier has "
                 "not committed yet; retry");
        return 0;
    }
    if (from_peer) { /* never forwarded twice: no loops between nodes */
        snprintf(why, why_len,
                 "no leader: node %s does not lead (leader now %s); retry",
                 co->cfg.node_id, leader);
        return 0;
    }
    return 2;
}

void
coord_handle(struct coord *co, struct api_req *r, int role, const struct msg *m,
             int from_peer)
{
    struct fsm_cmd    c;
    struct coord_req *q;
    char              why[256], leader[LEADER_ID_MAX];
    int               route;

    if (coord_check(&m->u.coord, from_peer, &c, why, sizeof(why)) != CADRE_OK) {
        coord_send_error(co, r, role, m->request_id, CADRE_EINVAL, why);
        return;
    }
    if (co->cfg.leader == NULL) {
        coord_send_error(co, r, role, m->request_id, CADRE_ECONFIG,
                         "cluster primitives (locks, throttles, funnels) "
                         "need --voters: this node runs no raft");
        return;
    }
    if (co->closed || co->held_n >= co->cfg.inflight_max) {
        snprintf(why, sizeof(why), "%s",
                 co->closed ? "node is stopping"
                            : "too many lock/throttle/funnel requests in "
                              "flight on this node; retry");
        coord_send_error(co, r, role, m->request_id,
                         co->closed ? CADRE_ESTOPPING : CADRE_EBUSY, why);
        return;
    }
    route = coord_route(co, from_peer, leader, why, sizeof(why));
    if (route == 0) {
        coord_send_error(co, r, role, m->request_id, CADRE_EBUSY, why);
        return;
    }
    if ((q = coord_hold(co, r, role, m)) == NULL) {
        coord_send_error(co, r, role, m->request_id, CADRE_ENOMEM,
                         "out of memory");
        return;
    }
    if (route == 1) {
        coord_propose(co, q, &c);
    } else {
        snprintf(q->leader, sizeof(q->leader), "%s", leader);
        coord_forward(co, q, m);
    }
}

int
coord_submit(struct coord *co, const struct fsm_cmd *c, coord_done_cb done,
             void *arg)
{
    struct msg        m = {.kind = MSG_COORD};
    struct fsm_cmd    cmd = *c;
    struct coord_req *q;
    char              why[256], leader[LEADER_ID_MAX];
    int               route;

    if (co->cfg.leader == NULL)
        return CADRE_ECONFIG;
    if (co->closed)
        return CADRE_ESTOPPING;
    if (co->held_n >= co->cfg.inflight_max)
        return CADRE_EBUSY;
    route = coord_route(co, 0, leader, why, sizeof(why));
    if (route == 0)
        return CADRE_EBUSY;
    m.u.coord = (struct msg_coord){.kind = c->kind,
                                   .key = c->key,
                                   .owner = c->owner,
                                   .ttl_ms = c->ttl_ms,
                                   .limit = c->limit,
                                   .per_ms = c->per_ms};
    if ((q = coord_hold(co, NULL, 0, &m)) == NULL)
        return CADRE_ENOMEM;
    q->done = done;
    q->done_arg = arg;
    if (route == 1) {
        coord_propose(co, q, &cmd);
    } else {
        snprintf(q->leader, sizeof(q->leader), "%s", leader);
        coord_forward(co, q, &m);
    }
    return CADRE_OK;
}

/* ---- life cycle --------------------------------------------------------- */

void
coord_close(struct coord *co)
{
    if (co == NULL || co->closed)
        return;
    co->closed = 1;
    for (struct coord_req *q = co->held; q != NULL; q = q->next) {
        if (q->done != NULL) {
            q->done(q->done_arg, CADRE_ESTOPPING, NULL);
            q->done = NULL;
        }
        if (q->req == NULL)
            continue;
        coord_send_error(co, q->req, q->role, q->request_id, CADRE_ESTOPPING,
                         "node is stopping");
        q->req = NULL;
    }
}

void
coord_free(struct coord *co)
{
    if (co == NULL)
        return;
    coord_close(co);
    while (co->held != NULL)
        coord_release(co, co->held);
    cd_free(co);
}
