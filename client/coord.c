/* coord.c: cadre_lock_*, cadre_throttle, cadre_funnel_*: Coord requests to
 * any node (which forwards them to the raft leader, node/coord.c), the
 * FSM's answers turned into error codes, and the client-side blocking loop
 * of a lock or funnel acquire. No state is kept here. */
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "common/clock.h"
#include "common/id.h"

#define COORD_RETRY_MAX_MS                                                     \
    50 /* a blocked acquire polls at least this often                          \
        */

/* What the leader's FSM answered, when it answered. */
struct coord_answer {
    int      code; /* enum msg_coord_code */
    uint64_t token, retry_after_ms;
    uint32_t count;
    char     holder[CADRE_OWNER_LEN];
};

static const char *
coord_op_name(int kind)
{
    switch (kind) {
    case MSG_COORD_LOCK_ACQUIRE:
        return "lock acquire";
    case MSG_COORD_LOCK_RELEASE:
        return "lock release";
    case MSG_COORD_THROTTLE:
        return "throttle";
    case MSG_COORD_FUNNEL_ACQUIRE:
        return "funnel acquire";
    default:
        return "funnel release";
    }
}

/* The FSM's code as the caller's error, with a message naming the key. */
static int
coord_code_rc(const struct msg_coord *req, const struct coord_answer *a,
              cd_err *err)
{
    switch (a->code) {
    case MSG_COORD_OK:
        return CADRE_OK;
    case MSG_COORD_HELD:
        return cd_err_set(err, CADRE_EHELD,
                          "held by %s (token %llu), free in %llu ms", a->holder,
                          (unsigned long long)a->token,
                          (unsigned long long)a->retry_after_ms);
    case MSG_COORD_LIMITED:
        return cd_err_set(err, CADRE_ELIMITED,
                          "limit %u reached, retry in %llu ms", req->limit,
                          (unsigned long long)a->retry_after_ms);
    case MSG_COORD_NOT_HOLDER:
        return cd_err_set(err, CADRE_ENOTFOUND,
                          "not held by %s (never taken, expired or taken "
                          "by another owner)",
                          req->owner);
    case MSG_COORD_FULL:
        return cd_err_set(err, CADRE_EFULL,
                          "the leader's state is full (max items)");
    default:
        return cd_err_set(err, CADRE_EINVAL, "the leader refused the request");
    }
}

/* One round trip. Returns the transport's or the node's error, or
 * CADRE_OK with *a filled (whatever the FSM's code). */
static int
coord_call(cadre_client *c, const struct msg_coord *req, struct coord_answer *a,
           cd_err *err)
{
    struct msg m = {.kind = MSG_COORD}, rep;
    int        rc;

    m.u.coord = *req;
    rc = client_call(c, &m, c->timeout_ms, &rep, err);
    if (rc != CADRE_OK)
        return rc;
    if (rep.kind != MSG_COORD_REPLY) {
        msg_free(&rep);
        return cd_err_set(err, CADRE_EPROTO, "unexpected reply");
    }
    memset(a, 0, sizeof(*a));
    a->code = rep.u.coord_reply.code;
    a->token = rep.u.coord_reply.token;
    a->retry_after_ms = rep.u.coord_reply.retry_after_ms;
    a->count = rep.u.coord_reply.count;
    snprintf(a->holder, sizeof(a->holder), "%s",
             rep.u.coord_reply.holder ? rep.u.coord_reply.holder : "");
    msg_free(&rep);
    return CADRE_OK;
}

/* Whether a blocked acquire should try again after rc: the lock or funnel
 * is taken, or no leader is ready now (an election may end soon, also the
 * one a stopping leader hands over to). */
static int
coord_retryable(int rc)
{
    return rc == CADRE_EBUSY || rc == CADRE_EHELD || rc == CADRE_ELIMITED ||
           rc == CADRE_ETIMEDOUT || rc == CADRE_ESTOPPING;
}

/* Calls until the answer is OK, an error that waiting cannot fix, or
 * block_ms passed. */
static int
coord_call_block(cadre_client *c, const struct msg_coord *req,
                 uint64_t block_ms, struct coord_answer *a, cd_err *err)
{
    uint64_t end = cd_mono_ms() + block_ms, now, wait;
    int      rc;

    for (;;) {
        memset(a, 0, sizeof(*a));
        rc = coord_call(c, req, a, err);
        if (rc == CADRE_OK)
            rc = coord_code_rc(req, a, err);
        now = cd_mono_ms();
        if (!coord_retryable(rc) || block_ms == 0 || now >= end)
            return rc;
        wait = a->retry_after_ms > 0 && a->retry_after_ms < COORD_RETRY_MAX_MS
                   ? a->retry_after_ms
                   : COORD_RETRY_MAX_MS;
        cd_sleep_ms(wait < end - now ? wait : end - now);
    }
}

/* Checks the arguments every call shares; picks a random owner for NULL. */
static int
coord_args(cadre_client *c, const char *key, const char **owner, char *made,
           int kind, cd_err *err)
{
    cadre_job_id id;

    if (c == NULL || key == NULL)
        return cd_err_set(err, CADRE_EINVAL, "%s: no client or key",
                          coord_op_name(kind));
    if (owner == NULL || *owner != NULL)
        return CADRE_OK;
    if (kind == MSG_COORD_LOCK_RELEASE || kind == MSG_COORD_FUNNEL_RELEASE)
        return cd_err_set(err, CADRE_EINVAL, "%s: a release names its owner",
                          coord_op_name(kind));
    cd_id_new(&id, cd_now_ms()); /* 74 random bits: owners never collide */
    cadre_job_id_format(&id, made);
    *owner = made;
    return CADRE_OK;
}

static int
coord_fail(int kind, const char *key, cd_err *err)
{
    char what[64 + CADRE_COORD_KEY_MAX];

    snprintf(what, sizeof(what), "%s %s", coord_op_name(kind), key ? key : "");
    cd_err_wrap(err, what);
    return client_fail(err);
}

/* An acquire (lock or funnel): the answer and the owner used. */
static int
coord_acquire(cadre_client *c, struct msg_coord *req, uint64_t block_ms,
              struct coord_answer *a, char *owner_out)
{
    char   made[CADRE_OWNER_LEN];
    cd_err err = {0};
    int    rc;

    rc = coord_args(c, req->key, &req->owner, made, req->kind, &err);
    if (rc == CADRE_OK)
        rc = coord_call_block(c, req, block_ms, a, &err);
    if (rc != CADRE_OK)
        return coord_fail(req->kind, req->key, &err);
    if (owner_out != NULL)
        snprintf(owner_out, CADRE_OWNER_LEN, "%s", req->owner);
    return CADRE_OK;
}

int
cadre_lock_acquire(cadre_client *c, const char *key, const char *owner,
                   uint64_t ttl_ms, uint64_t block_ms, uint64_t *token,
                   char *owner_out)
{
    struct msg_coord    req = {.kind = MSG_COORD_LOCK_ACQUIRE,
                               .key = key,
                               .owner = owner,
                               .ttl_ms = ttl_ms};
    struct coord_answer a = {0};
    int                 rc = coord_acquire(c, &req, block_ms, &a, owner_out);

    if (rc == CADRE_OK && token != NULL)
        *token = a.token;
    return rc;
}

int
cadre_funnel_acquire(cadre_client *c, const char *key, const char *owner,
                     uint32_t limit, uint64_t ttl_ms, uint64_t block_ms,
                     char *owner_out)
{
    struct msg_coord    req = {.kind = MSG_COORD_FUNNEL_ACQUIRE,
                               .key = key,
                               .owner = owner,
                               .limit = limit,
                               .ttl_ms = ttl_ms};
    struct coord_answer a;

    return coord_acquire(c, &req, block_ms, &a, owner_out);
}

/* A release of a lock or funnel slot. */
static int
coord_release(cadre_client *c, int kind, const char *key, const char *owner)
{
    struct msg_coord    req = {.kind = kind, .key = key, .owner = owner};
    struct coord_answer a;
    cd_err              err = {0};
    int                 rc = coord_args(c, key, NULL, NULL, kind, &err);

    if (rc == CADRE_OK && owner == NULL)
        rc = cd_err_set(&err, CADRE_EINVAL, "a release names its owner");
    if (rc == CADRE_OK)
        rc = coord_call(c, &req, &a, &err);
    if (rc == CADRE_OK)
        rc = coord_code_rc(&req, &a, &err);
    return rc == CADRE_OK ? CADRE_OK : coord_fail(kind, key, &err);
}

int
cadre_lock_release(cadre_client *c, const char *key, const char *owner)
{
    return coord_release(c, MSG_COORD_LOCK_RELEASE, key, owner);
}

int
cadre_funnel_release(cadre_client *c, const char *key, const char *owner)
{
    return coord_release(c, MSG_COORD_FUNNEL_RELEASE, key, owner);
}

int
cadre_throttle(cadre_client *c, const char *key, uint32_t limit,
               uint64_t per_ms, uint64_t *retry_after_ms)
{
    struct msg_coord    req = {.kind = MSG_COORD_THROTTLE,
                               .key = key,
                               .limit = limit,
                               .per_ms = per_ms};
    struct coord_answer a = {0};
    cd_err              err = {0};
    int                 rc = coord_args(c, key, NULL, NULL, req.kind, &err);

    if (rc == CADRE_OK)
        rc = coord_call(c, &req, &a, &err);
    if (rc == CADRE_OK)
        rc = coord_code_rc(&req, &a, &err);
    if (retry_after_ms != NULL)
        *retry_after_ms = rc == CADRE_ELIMITED ? a.retry_after_ms : 0;
    return rc == CADRE_OK ? CADRE_OK : coord_fail(req.kind, key, &err);
}
