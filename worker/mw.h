/* mw.h: job middleware run by the worker around a handler (Laravel's
 * RateLimited, WithoutOverlapping, ThrottlesExceptions), as the dispatcher
 * declared it (cadre.proto JobMiddleware, cadre_job_opts): throttles and
 * locks of the raft leader (node/coord.h) asked for over the worker's own
 * socket, each on a context of its own. An attempt the middleware holds
 * back becomes a RELEASE with a delay; nothing else changes.
 *
 * Keys: the rate limit is the throttle named by its key and the overlap
 * lock the lock named by its key (so `cadre throttle` and `cadre lock`
 * see the same ones); exception throttling uses the throttle and the lock
 * "exc:" + key (the lock, owned by MW_CIRCUIT_OWNER, is the open circuit).
 *
 * Threads: the worker's thread only (a link is not shared). */
#ifndef WORKER_MW_H
#define WORKER_MW_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"
#include "proto/wire.h"

#define MW_CALL_TIMEOUT_MS 5000
#define MW_UNAVAILABLE_DELAY_MS 1000 /* no leader answered: try again then */
#define MW_OVERLAP_DELAY_MAX_MS 1000 /* a held lock is polled this often */
#define MW_OVERLAP_TTL_DEFAULT_MS 600000 /* no job timeout: 10 minutes */
#define MW_OVERLAP_TTL_MARGIN_MS 5000
#define MW_CIRCUIT_OWNER "cadre.circuit-open"

/* The worker's link to its node for coord requests. Borrowed pointers live
 * as long as the link. */
struct mw_link {
    nng_socket                 sock;
    struct wire_sender        *sender;
    const struct wire_keyring *ring;
    nng_ctx                    ctx;
    nng_aio                   *aio; /* NULL until the first call */
    uint64_t                   request_id;
};

/* What the middleware decided for one attempt. */
struct mw_attempt {
    const struct msg_job *job;
    const char           *owner;    /* the job id as text: lock owner */
    int                   holds;    /* the overlap lock is ours: release it */
    int                   fail;     /* held back for good: fail the job (why) */
    uint64_t              delay_ms; /* a release's delay */
    char                  why[160]; /* why it was held back, for the log */
};

void mw_link_init(struct mw_link *l, nng_socket sock,
                  struct wire_sender *sender, const struct wire_keyring *ring);
/* Closes the link's context; accepts a link never used. */
void mw_link_fini(struct mw_link *l);

/* Whether job declares any middleware. */
int mw_any(const struct msg_job *job);

/* The overlap lock's ttl: overlap_ttl_ms, else the job's timeout plus a
 * margin, else MW_OVERLAP_TTL_DEFAULT_MS. Pure. */
uint64_t mw_overlap_ttl_ms(const struct msg_job *job);

/* Before the handler: 1 to run it, 0 to release the attempt after
 * a->delay_ms (a->why says why). A coord request that fails (no leader,
 * timeout) releases too: nothing runs unchecked; one that cannot succeed
 * by waiting (the node runs without --voters, the leader refuses the key)
 * sets a->fail: the job must fail with a->why. */
int mw_before(struct mw_link *l, struct mw_attempt *a);

/* After the handler, errored: its outcome was an error. Releases the
 * overlap lock it holds; counts the error against the exception throttle
 * and, past its limit, opens the circuit. Returns 1 if the outcome must
 * become a RELEASE after a->delay_ms, else 0. */
int mw_after(struct mw_link *l, struct mw_attempt *a, int errored);

#endif
