/* spread.h: run() across the cluster. The coordinating node (the one the
 * client called) hands the run tasks its own workers cannot take now to
 * peers advertising free worker slots, as sub-runs: a Run request on the
 * peer's socket carrying some tasks, answered with their results. To
 * node/runs.c a peer is one more worker (runs_take_spread), so ordering,
 * deadlines, fail_fast and at-least-once re-queueing stay in one place.
 *
 * A sub-run whose peer dies (its link closes, or it goes dead), or whose
 * request fails, gives its tasks back to their queues at once: they run
 * again here or elsewhere within the run's deadline. A late answer from the
 * first peer is still taken if it comes first (runs.c accepts the outcome
 * of either of a task's last two hand-outs).
 *
 * Threads: loop thread only. */
#ifndef NODE_SPREAD_H
#define NODE_SPREAD_H

#include <stdint.h>

#include "node/cluster.h"
#include "node/runs.h"

struct spread_stats {
    uint64_t subruns; /* sent */
    uint64_t tasks;   /* sent in them */
    uint64_t failed;  /* sub-runs whose tasks came back unfinished */
};

struct spread;

int  spread_new(struct runs *rs, struct cluster *c, struct spread **out);
void spread_free(struct spread *sp); /* accepts NULL */

/* After the pump: run tasks still waiting, peers with free slots: send. */
void spread_pump(struct spread *sp, uint64_t now_mono_ms);

/* node_id died or its link closed: its sub-runs' tasks go back. */
void spread_peer_down(struct spread *sp, const char *node_id);

void spread_get_stats(const struct spread *sp, struct spread_stats *st);

#endif
