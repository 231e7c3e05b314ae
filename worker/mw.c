/* mw.c: job middleware around a handler (mw.h): coord requests on the
 * worker's socket and what their answers mean for an attempt. */
#include "worker/mw.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"

#define MW_EXC_PREFIX "exc:"
#define MW_CIRCUIT_TRIES 5 /* opening the circuit past a probe's 1 ms */

/* A coord answer, copied out of the reply. */
struct mw_answer {
    int      code; /* enum msg_coord_code */
    uint64_t retry_after_ms;
    char     holder[72];
};

void
mw_link_init(struct mw_link *l, nng_socket sock, struct wire_sender *sender,
             const struct wire_keyring *ring)
{
    memset(l, 0, sizeof(*l));
    l->sock = sock;
    l->sender = sender;
    l->ring = ring;
}

void
mw_link_fini(struct mw_link *l)
{
    if (l->aio == NULL)
        return;
    nng_aio_stop(l->aio);
    nng_ctx_close(l->ctx);
    nng_aio_free(l->aio);
    l->aio = NULL;
}

static int
mw_set(const char *key)
{
    return key != NULL && key[0] != '\0';
}

int
mw_any(const struct msg_job *job)
{
    return mw_set(job->mw.rate_key) || mw_set(job->mw.overlap_key) ||
           mw_set(job->mw.exc_key);
}

uint64_t
mw_overlap_ttl_ms(const struct msg_job *job)
{
    if (job->mw.overlap_ttl_ms != 0)
        return job->mw.overlap_ttl_ms;
    if (job->timeout_ms != 0)
        return job->timeout_ms + MW_OVERLAP_TTL_MARGIN_MS;
    return MW_OVERLAP_TTL_DEFAULT_MS;
}

/* ---- one coord request ------------------------------------------------- */

static nng_msg *
mw_seal(struct mw_link *l, const struct msg_coord *c)
{
    struct msg m = {.request_id = ++l->request_id, .kind = MSG_COORD};
    size_t     size, len = 0;
    nng_msg   *nm;

    m.u.coord = *c;
    size = wire_frame_size(&m);
    if (size == 0 || nng_msg_alloc(&nm, size) != 0)
        return NULL;
    if (wire_seal(l->sender, &m, nng_msg_body(nm), size, WIRE_MAX_DEFAULT,
                  &len) != CADRE_OK) {
        nng_msg_free(nm);
        return NULL;
    }
    nng_msg_chop(nm, size - len);
    return nm;
}

/* Sends nm (consumed) and waits for the reply; NULL on failure. */
static nng_msg *
mw_exchange(struct mw_link *l, nng_msg *nm)
{
    if (l->aio == NULL && (nng_aio_alloc(&l->aio, NULL, NULL) != 0 ||
                           nng_ctx_open(&l->ctx, l->sock) != 0)) {
        nng_aio_free(l->aio);
        l->aio = NULL;
        nng_msg_free(nm);
        return NULL;
    }
    nng_aio_set_timeout(l->aio, MW_CALL_TIMEOUT_MS);
    nng_aio_set_msg(l->aio, nm);
    nng_ctx_send(l->ctx, l->aio);
    nng_aio_wait(l->aio);
    if (nng_aio_result(l->aio) != 0) {
        nng_msg_free(nng_aio_get_msg(l->aio));
        return NULL;
    }
    nng_ctx_recv(l->ctx, l->aio);
    nng_aio_wait(l->aio);
    return nng_aio_result(l->aio) == 0 ? nng_aio_get_msg(l->aio) : NULL;
}

/* One request. Returns CADRE_OK with *out filled, or the error (why has
 * the node's message). */
static int
mw_call(struct mw_link *l, const struct msg_coord *c, struct mw_answer *out,
        char *why, size_t why_len)
{
    nng_msg   *nm = mw_seal(l, c), *rep;
    struct msg m;
    cd_err     err;
    int        rc;

    memset(out, 0, sizeof(*out));
    if (nm == NULL || (rep = mw_exchange(l, nm)) == NULL) {
        snprintf(why, why_len, "no answer from the node");
        return CADRE_ETIMEDOUT;
    }
    rc = wire_open(l->ring, nng_msg_body(rep), nng_msg_len(rep),
                   WIRE_MAX_DEFAULT, NULL, &m, &err);
    nng_msg_free(rep);
    if (rc != CADRE_OK) {
        snprintf(why, why_len, "%.100s", err.msg);
        return rc;
    }
    if (m.kind == MSG_COORD_REPLY) {
        out->code = m.u.coord_reply.code;
        out->retry_after_ms = m.u.coord_reply.retry_after_ms;
        snprintf(out->holder, sizeof(out->holder), "%s",
                 m.u.coord_reply.holder ? m.u.coord_reply.holder : "");
    } else {
        rc = m.kind == MSG_ERROR ? m.u.error.code : CADRE_EPROTO;
        snprintf(why, why_len, "%.100s",
                 m.kind == MSG_ERROR && m.u.error.message ? m.u.error.message
                                                          : "unexpected reply");
    }
    msg_free(&m);
    return rc;
}

/* ---- the middleware ----------------------------------------------------- */

/* Holds the attempt back: a release after delay_ms, and why. */
static int
mw_hold_back(struct mw_attempt *a, uint64_t delay_ms, const char *fmt,
             const char *key, const char *detail)
{
    a->delay_ms = delay_ms;
    snprintf(a->why, sizeof(a->why), fmt, key, detail);
    return 0;
}

/* The node could not answer: release and try again later, or, when waiting
 * cannot help (no --voters, a key the leader refuses), fail the job. */
static int
mw_unreached(struct mw_attempt *a, int rc, const char *fmt, const char *key,
             const char *why)
{
    a->fail = rc == CADRE_ECONFIG || rc == CADRE_EINVAL || rc == CADRE_EAUTH;
    return mw_hold_back(a, MW_UNAVAILABLE_DELAY_MS, fmt, key, why);
}

/* The circuit of the exception throttle: open while the lock "exc:"+key is
 * held by MW_CIRCUIT_OWNER. Probing takes it for 1 ms when free. */
static int
mw_circuit(struct mw_link *l, struct mw_attempt *a, const char *key)
{
    char             k[MSG_MW_KEY_MAX + 8], why[128];
    struct msg_coord c = {.kind = MSG_COORD_LOCK_ACQUIRE,
                          .key = k,
                          .owner = a->owner,
                          .ttl_ms = 1};
    struct mw_answer ans;
    int              rc;

    snprintf(k, sizeof(k), MW_EXC_PREFIX "%s", key);
    if ((rc = mw_call(l, &c, &ans, why, sizeof(why))) != CADRE_OK)
        return mw_unreached(a, rc, "exceptions %s: %s", key, why);
    if (ans.code == MSG_COORD_HELD && strcmp(ans.holder, MW_CIRCUIT_OWNER) == 0)
        return mw_hold_back(a, ans.retry_after_ms ? ans.retry_after_ms : 1,
                            "exceptions %s: %s", key, "too many errors");
    return 1;
}

static int
mw_rate(struct mw_link *l, struct mw_attempt *a,
        const struct msg_middleware *mw)
{
    struct msg_coord c = {.kind = MSG_COORD_THROTTLE,
                          .key = mw->rate_key,
                          .limit = mw->rate_limit,
                          .per_ms = mw->rate_per_ms};
    struct mw_answer ans;
    char             why[128];
    int              rc;

    if ((rc = mw_call(l, &c, &ans, why, sizeof(why))) != CADRE_OK)
        return mw_unreached(a, rc, "rate %s: %s", mw->rate_key, why);
    if (ans.code == MSG_COORD_LIMITED)
        return mw_hold_back(a, ans.retry_after_ms ? ans.retry_after_ms : 1,
                            "rate %s: %s", mw->rate_key, "limited");
    return 1;
}

static int
mw_overlap(struct mw_link *l, struct mw_attempt *a,
           const struct msg_middleware *mw)
{
    struct msg_coord c = {.kind = MSG_COORD_LOCK_ACQUIRE,
                          .key = mw->overlap_key,
                          .owner = a->owner,
                          .ttl_ms = mw_overlap_ttl_ms(a->job)};
    struct mw_answer ans;
    char             why[128];
    uint64_t         d;
    int              rc;

    if ((rc = mw_call(l, &c, &ans, why, sizeof(why))) != CADRE_OK)
        return mw_unreached(a, rc, "overlap %s: %s", mw->overlap_key, why);
    if (ans.code == MSG_COORD_HELD) {
        d = ans.retry_after_ms < MW_OVERLAP_DELAY_MAX_MS
                ? ans.retry_after_ms
                : MW_OVERLAP_DELAY_MAX_MS;
        return mw_hold_back(a, d ? d : 1, "overlap %s: held by %s",
                            mw->overlap_key, ans.holder);
    }
    a->holds = ans.code == MSG_COORD_OK;
    return a->holds ? 1
                    : mw_hold_back(a, MW_UNAVAILABLE_DELAY_MS, "overlap %s: %s",
                                   mw->overlap_key, "refused");
}

int
mw_before(struct mw_link *l, struct mw_attempt *a)
{
    const struct msg_middleware *mw = &a->job->mw;

    a->holds = 0;
    a->fail = 0;
    a->delay_ms = 0;
    a->why[0] = '\0';
    /* The lock last: a held-back attempt must not keep it. */
    if (mw_set(mw->exc_key) && !mw_circuit(l, a, mw->exc_key))
        return 0;
    if (mw_set(mw->rate_key) && !mw_rate(l, a, mw))
        return 0;
    if (mw_set(mw->overlap_key) && !mw_overlap(l, a, mw))
        return 0;
    return 1;
}

/* Counts an error; past the limit opens the circuit until the window ends
 * and returns 1 (the attempt is released). */
static int
mw_count_error(struct mw_link *l, struct mw_attempt *a,
               const struct msg_middleware *mw)
{
    char             k[MSG_MW_KEY_MAX + 8], why[128];
    struct msg_coord c = {.kind = MSG_COORD_THROTTLE,
                          .key = k,
                          .limit = mw->exc_limit,
                          .per_ms = mw->exc_per_ms};
    struct mw_answer ans, open;

    snprintf(k, sizeof(k), MW_EXC_PREFIX "%s", mw->exc_key);
    if (mw_call(l, &c, &ans, why, sizeof(why)) != CADRE_OK ||
        ans.code != MSG_COORD_LIMITED)
        return 0; /* not counted: the error stands as it is */
    c = (struct msg_coord){.kind = MSG_COORD_LOCK_ACQUIRE,
                           .key = k,
                           .owner = MW_CIRCUIT_OWNER,
                           .ttl_ms =
                               ans.retry_after_ms ? ans.retry_after_ms : 1};
    /* A probe (mw_circuit) may hold the key for its 1 ms: try again. */
    for (int i = 0; i < MW_CIRCUIT_TRIES; i++) {
        if (mw_call(l, &c, &open, why, sizeof(why)) != CADRE_OK) {
            CD_LOG_WARN("worker", "WORKER-MW-CIRCUIT", "key=%s error=\"%s\"",
                        mw->exc_key, why);
            break;
        }
        if (open.code != MSG_COORD_HELD)
            break;
        cd_sleep_ms(open.retry_after_ms < 5 ? open.retry_after_ms + 1 : 5);
    }
    a->delay_ms = c.ttl_ms;
    snprintf(a->why, sizeof(a->why),
             "exceptions %s: over %" PRIu32 " per %" PRIu64 " ms", mw->exc_key,
             mw->exc_limit, mw->exc_per_ms);
    return 1;
}

int
mw_after(struct mw_link *l, struct mw_attempt *a, int errored)
{
    const struct msg_middleware *mw = &a->job->mw;
    struct msg_coord             c = {.kind = MSG_COORD_LOCK_RELEASE,
                                      .key = mw->overlap_key,
                                      .owner = a->owner};
    struct mw_answer             ans;
    char                         why[128];

    if (a->holds) {
        a->holds = 0;
        /* Not ours any more means its ttl ran out during the attempt:
         * another may have overlapped it. Worth a warning, not a retry. */
        if (mw_call(l, &c, &ans, why, sizeof(why)) != CADRE_OK ||
            ans.code != MSG_COORD_OK)
            CD_LOG_WARN("worker", "WORKER-MW-UNLOCK", "key=%s owner=%s code=%d",
                        mw->overlap_key, a->owner, ans.code);
    }
    if (errored && mw_set(mw->exc_key))
        return mw_count_error(l, a, mw);
    return 0;
}
