/* coord.h: the cluster primitives (locks with fencing tokens, throttles,
 * funnels) as a node serves them: a Coord request (cadre.proto) arriving on
 * the api socket (client or worker key) or forwarded on the peer socket
 * (node key) is proposed to the raft leader's FSM (node/fsm.h) if this node
 * is the ready leader, stamped with this node's clock; otherwise it is
 * forwarded to the leader's peer socket and the leader's answer relayed.
 * The requester's reply is deferred until the proposal commits or the
 * forward comes back. It keeps no state of its own beyond the requests in
 * flight: the FSM is the record.
 *
 * Errors a requester gets: CADRE_EINVAL (a bad key, owner, ttl, limit or
 * window), CADRE_ECONFIG (the node runs without --voters), CADRE_EBUSY
 * ("no leader: ...": none elected or ready, the forward failed, the
 * leadership was lost while proposing, or too many requests in flight).
 *
 * Threads: every function here is for the node's loop thread. */
#ifndef NODE_COORD_H
#define NODE_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "node/api.h"
#include "node/cluster.h"
#include "node/leader.h"
#include "node/turn.h"
#include "proto/msg.h"

#define COORD_INFLIGHT_MAX 4096       /* requests held at once, by default */
#define COORD_FORWARD_MS_DEFAULT 2000 /* a forward to the leader gives up */

struct coord_config {
    const char         *node_id;
    struct leader      *leader;  /* NULL: the node runs without --voters */
    struct cluster     *cluster; /* the leader's peer socket; may be NULL */
    struct turn_sealer *sealer;  /* seals replies; borrowed */
    size_t              inflight_max; /* 0: COORD_INFLIGHT_MAX */
    uint64_t            forward_ms;   /* 0: COORD_FORWARD_MS_DEFAULT */
};

struct coord;

/* Returns CADRE_ENOMEM. cfg's pointers are borrowed for coord's life. */
int coord_new(const struct coord_config *cfg, struct coord **out);

/* Serves a Coord (m->kind == MSG_COORD, borrowed for the call only) that
 * arrived as r with a frame of role; from_peer: on the peer socket (a
 * forward, never forwarded again). r is answered exactly once: at once for
 * an invalid request or when no leader can be reached, else when the
 * proposal commits or the leader answers. */
void coord_handle(struct coord *co, struct api_req *r, int role,
                  const struct msg *m, int from_peer);

/* The answer to a coord_submit: rc CADRE_OK and res the FSM's result
 * (valid during the call); or rc an error (CADRE_EBUSY: no leader, the
 * leadership lost while proposing, the forward failed: the command may or
 * may not have applied; CADRE_ESTOPPING: the node closes) and res NULL. */
typedef void (*coord_done_cb)(void *arg, int rc, const struct fsm_result *res);

/* Submits a command of this node's own (unique jobs' keys): proposed here
 * if this node is the ready leader, else forwarded to the leader like a
 * Coord. c's strings must be NUL-terminated (a forward sends them as
 * text); c is read during the call only. Returns CADRE_ECONFIG (no
 * --voters), CADRE_EBUSY (no leader reachable now, too many in flight),
 * CADRE_ESTOPPING, CADRE_ENOMEM, and then never calls done; or CADRE_OK
 * and calls done exactly once, later (also from coord_close). */
int coord_submit(struct coord *co, const struct fsm_cmd *c, coord_done_cb done,
                 void *arg);

/* Answers every request still held with CADRE_ESTOPPING; callbacks that
 * come later (proposals failing as the leader closes) find nothing to
 * answer. Call before the api and peer sockets close. Idempotent. */
void coord_close(struct coord *co);

/* Frees co once neither the leader nor the cluster can call back (both
 * closed and the loop run); accepts NULL. */
void coord_free(struct coord *co);

/* How many requests are held now. */
size_t coord_inflight(const struct coord *co);

#endif
