/* runs.h: runs (fan-outs whose caller waits) held in this node's memory, not
 * in the store. A Run request starts a run, or attaches to the run already
 * here with its id; its tasks wait per queue until dispatch hands them to
 * workers (as a dispatch_source: node.c wires it), and the request is
 * answered once, with one result per task in submission order, when the
 * last task has an outcome, at the deadline (unfinished tasks TIMED_OUT), or
 * at the first error of a fail_fast run (unfinished tasks CANCELLED).
 *
 * A task goes back to its queue when its worker's connection closes or its
 * lease (RUNS_LEASE_MS) runs out before the deadline: at-least-once within
 * the deadline; the first outcome of any of its last two hand-outs wins.
 * Answered runs are kept RUNS_KEEP_MS (bounded) so that a caller who lost
 * its connection can attach again and get the same results.
 *
 * Replies do not depend on the store, so they are sent at once (api_reply),
 * not deferred to a turn's commit.
 *
 * Threads: loop thread only. */
#ifndef NODE_RUNS_H
#define NODE_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "node/api.h"
#include "node/turn.h"
#include "proto/msg.h"

#define RUNS_TASKS_MAX 100000          /* per run */
#define RUNS_ACTIVE_TASKS_MAX 1000000  /* of all unanswered runs */
#define RUNS_DEADLINE_DEFAULT_MS 30000 /* a Run with deadline_ms 0 */
#define RUNS_DEADLINE_MAX_MS 86400000  /* one day */
#define RUNS_LEASE_MS 30000            /* a hand-out without news: re-queued */
#define RUNS_KEEP_MS 60000             /* answered runs kept for attaches */
#define RUNS_KEEP_TASKS_MAX 1000000    /* ...but at most this many tasks */

struct runs;

/* s is borrowed for the life of the runs (replies are sealed with it).
 * Returns CADRE_ENOMEM. */
int runs_new(struct turn_sealer *s, struct runs **out);
/* Drops parked requests (no reply) and frees everything; NULL is accepted. */
void runs_free(struct runs *rs);

/* Handles a Run request that node.c validated (task names, payload sizes,
 * 1..RUNS_TASKS_MAX tasks). Takes m: ownership moves here whatever happens.
 * Starts the run, or parks r on the run with the same id (answered at once
 * if that run is already answered). Errors are replied to r directly:
 * CADRE_EEXISTS if the id belongs to a run with another number of tasks,
 * CADRE_EBUSY if RUNS_ACTIVE_TASKS_MAX would be passed, CADRE_ENOMEM. */
void runs_submit(struct runs *rs, struct api_req *r, int role, struct msg *m,
                 int local_only, uint64_t now_mono_ms);

/* The dispatch_source callbacks (arg is the struct runs). */
uint64_t runs_pending(void *arg, const char *const *queues, size_t queues_n);
size_t   runs_take(void *arg, const char *const *queues, size_t queues_n,
                   uint64_t worker_id, struct msg_job *out, size_t max,
                   uint64_t now_mono_ms);
void runs_outcome(void *arg, uint64_t worker_id, const struct msg_outcome *o,
                  uint64_t now_mono_ms);

/* Spreading over the cluster (node/spread.h). A peer node is handed tasks
 * as if it were a worker with id peer_id (its outcomes go to runs_outcome,
 * and runs_requeue_worker gives its tasks back). Tasks of local_only runs
 * (sub-runs a peer spread here) are never spread again. */
uint64_t runs_spreadable(const struct runs *rs);
/* As runs_take over the named queues (the peer's idle workers wait on),
 * spreadable tasks only; left_ms[i] receives the time left to the deadline
 * of out[i]'s run. */
size_t runs_take_spread(struct runs *rs, uint64_t peer_id,
                        const char *const *queues, size_t queues_n,
                        struct msg_job *out, uint64_t *left_ms, size_t max,
                        uint64_t now_mono_ms);
/* Every task handed to worker_id goes back to the front of its queue.
 * Returns how many. */
size_t runs_requeue_worker(struct runs *rs, uint64_t worker_id);

/* A Fetch from worker_id arrived on connection pipe_id. */
void runs_worker_seen(struct runs *rs, uint32_t pipe_id, uint64_t worker_id);
/* Connection pipe_id closed: the tasks its worker held go back to their
 * queues (the next dispatch_pump hands them out). */
void runs_pipe_closed(struct runs *rs, uint32_t pipe_id);

/* Deadlines, expired leases, answered runs past RUNS_KEEP_MS. Returns the
 * time (monotonic ms) it should be called next; also runs_next_mono_ms. */
uint64_t runs_tick(struct runs *rs, uint64_t now_mono_ms);
uint64_t runs_next_mono_ms(const struct runs *rs);
/* Shutdown: answers every parked request now (unfinished tasks TIMED_OUT). */
void runs_answer_all(struct runs *rs, uint64_t now_mono_ms);

#endif
