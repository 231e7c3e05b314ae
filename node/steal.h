/* steal.h: work stealing between nodes. A node whose workers are idle with
 * nothing ready for their queues asks the alive peer advertising the most
 * ready jobs for those queues (cluster_pick_victim) for some of them.
 *
 * Ownership moves durably, in three steps:
 *   1. the victim lends the jobs (store_lend: kept, RESERVED, lent_to the
 *      thief, until lend_ms) and replies with their records after its commit;
 *   2. the thief adopts them (store_adopt, idempotent by id) in a turn;
 *   3. after that turn commits, the thief sends Settle and the victim
 *      deletes its lent copies (store_lend_settle, idempotent).
 * A crash of the thief before 3 leaves the loan to expire at the victim: the
 * job runs there too (a duplicate). A crash of the victim after 1 keeps the
 * loan on disk; the thief retries Settle until lend_ms has passed. Nothing
 * is ever deleted before another node has committed it.
 *
 * The job keeps its origin (store job origin): when it finishes, the thief
 * sends the outcome home (Finished), where waiters for it are. The origin
 * stores it as a result, settling a lent copy it may still hold.
 *
 * Threads: loop thread only; the reply callbacks run inside turns
 * (cluster_poll). */
#ifndef NODE_STEAL_H
#define NODE_STEAL_H

#include <stddef.h>
#include <stdint.h>

#include "node/cluster.h"
#include "node/turn.h"

struct steal_config {
    const char *node_id;
    uint32_t    steal_max; /* jobs per steal; 0: never steal */
    uint64_t    lend_ms;
    uint64_t    backoff_ms; /* after a steal that brought nothing */
};

struct steal_stats {
    uint64_t asked;   /* steal requests sent */
    uint64_t stolen;  /* jobs adopted from peers */
    uint64_t lent;    /* jobs lent to peers */
    uint64_t settled; /* lent jobs deleted after the thief committed */
    uint64_t settle_retries;
    uint64_t came_home; /* outcomes of jobs dispatched here, run elsewhere */
};

struct steal;

int  steal_new(const struct steal_config *cfg, struct cluster *c,
               struct steal **out);
void steal_free(struct steal *s); /* accepts NULL */

/* Thief, once per turn after the pump: idle parked fetches, their queues,
 * and how many jobs are ready here for them. */
void steal_maybe(struct steal *s, size_t idle, const char *const *queues,
                 size_t queues_n, uint64_t local_ready);

/* Thief: the turn that adopted jobs committed (ok) or failed. */
void steal_committed(struct steal *s, int ok);

/* Retries of settles and of outcomes going home: once per turn. */
void steal_tick(struct steal *s);

/* Whether turns must keep their finished jobs (for steal_send_home): yes
 * for a node in a cluster, whose store may hold stolen jobs. */
int steal_wants_finished(const struct steal *s);

/* After a committed turn (and its waiters): the outcomes of finished jobs
 * dispatched to another node (stolen from it, store job origin) go home in
 * Finished messages; they are moved out of t. */
void steal_send_home(struct steal *s, struct turn *t);

/* Victim: a Steal or a Settle from the peer socket, answered in t. Origin:
 * a Finished (outcomes of its jobs that ran on the sender), stored as
 * results so that waiters here see them. */
void steal_serve(struct steal *s, struct turn *t, struct turn_sealer *ts,
                 struct api_req *r, const struct msg *m);

void steal_get_stats(const struct steal *s, struct steal_stats *st);

#endif
