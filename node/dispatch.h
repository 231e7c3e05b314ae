/* dispatch.h: hands ready jobs to workers and applies what they report.
 * A worker always has a Fetch pending (long poll): when jobs become ready the
 * reply carries them, in the worker's queue order, within the same group
 * commit as the dispatch that made them ready. Outcomes are applied only if
 * the job is still reserved under the lease they echo, so a repeated or late
 * report is counted and ignored, never applied twice.
 *
 * Threads: loop thread only. */
#ifndef NODE_DISPATCH_H
#define NODE_DISPATCH_H

#include <stdint.h>

#include "node/api.h"
#include "node/turn.h"
#include "proto/msg.h"

struct dispatch_config {
    uint64_t retry_after_ms; /* default lease */
    uint32_t default_tries;  /* for jobs that set none (node --tries) */
};

struct dispatch_stats {
    uint32_t workers;      /* seen in the last 30 s */
    uint32_t workers_busy; /* of those, holding jobs */
    uint64_t held;         /* jobs handed out and not reported */
    uint64_t stale_outcomes;
    uint64_t expired;
};

struct dispatch;

int  dispatch_new(const struct dispatch_config *cfg, struct dispatch **out);
void dispatch_free(struct dispatch *d); /* drops parked requests */

/* In-memory jobs handed out ahead of stored ones (the tasks of runs, whose
 * callers are waiting: node/runs.c, wired in node.c). Their leases have
 * DISPATCH_LEASE_SOURCE set, which store leases never do, so outcomes
 * echoing such a lease go to outcome_cb instead of the store. Callbacks run
 * on the loop thread, inside a turn, and must not call back into dispatch.
 */
#define DISPATCH_LEASE_SOURCE (UINT64_C(1) << 63)

struct dispatch_source {
    /* Jobs waiting for these queues. */
    uint64_t (*pending_cb)(void *arg, const char *const *queues,
                           size_t queues_n);
    /* Hands up to max of them, in queue order, to worker_id: fills out[]
     * with views valid until the next call into the source. Returns how
     * many. */
    size_t (*take_cb)(void *arg, const char *const *queues, size_t queues_n,
                      uint64_t worker_id, struct msg_job *out, size_t max,
                      uint64_t now_mono_ms);
    /* An outcome whose lease has DISPATCH_LEASE_SOURCE (o is borrowed). */
    void (*outcome_cb)(void *arg, uint64_t worker_id,
                       const struct msg_outcome *o, uint64_t now_mono_ms);
    void *arg;
};

/* Sets (copies) the source; NULL removes it. */
void dispatch_set_source(struct dispatch *d, const struct dispatch_source *src);

/* Handles a Fetch inside t. m is owned by dispatch from here on (freed when
 * answered). stopping: apply outcomes, hand out nothing. */
int dispatch_fetch(struct dispatch *d, struct turn *t, struct turn_sealer *s,
                   struct api_req *r, int role, struct msg *m,
                   uint64_t now_mono_ms, int stopping);

/* Serves parked fetches from ready jobs (inside t). */
void dispatch_pump(struct dispatch *d, struct turn *t, struct turn_sealer *s);

/* Answers parked fetches whose wait passed with no jobs (or all of them).
 * Returns the earliest deadline left. */
uint64_t dispatch_expire_fetches(struct dispatch *d, struct turn *t,
                                 struct turn_sealer *s, uint64_t now_mono_ms,
                                 int all);

/* Reservations past their deadline (the worker vanished): back to the queue
 * or failed, per policy (inside t). */
int dispatch_expire_leases(struct dispatch *d, struct turn *t, cd_err *err);

/* Parked fetches (workers idle, waiting for jobs): the node's free slots in
 * its heartbeats. queues and queues_n (may be NULL) receive the queues of the
 * oldest parked fetch, borrowed until the next call into dispatch: what a
 * steal asks a peer for. */
size_t dispatch_idle(const struct dispatch *d, const char *const **queues,
                     size_t *queues_n);

/* The queues parked fetches wait on (each once): up to cap names, borrowed
 * until the next call into dispatch. What run tasks a peer may send here. */
size_t dispatch_idle_queues(const struct dispatch *d, const char **out,
                            size_t cap);

void dispatch_get_stats(struct dispatch *d, uint64_t now_mono_ms,
                        struct dispatch_stats *st);
/* Jobs handed out in this process and not yet reported by workers that are
 * still alive (heard from in the last few seconds). */
uint64_t dispatch_held(const struct dispatch *d, uint64_t now_mono_ms);

#endif
