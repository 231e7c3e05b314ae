/* cluster.h: membership and the links to peer nodes.
 *
 * Each node publishes a heartbeat every heartbeat_ms on its events socket
 * (sealed with the node key): its id, addresses, workers, free slots, ready
 * jobs per queue, version, leader view, and the peers it knows (id and
 * addresses: gossip, so a new node needs one seed). Every node subscribes to
 * every member's events socket and keeps a table: a member silent for
 * suspect_ms is suspect, after dead_ms dead. A node joins by sending a Hello
 * (its heartbeat as a request) to its seeds' peer sockets; the reply is the
 * seed's heartbeat. A node that hears a member whose heartbeat does not list
 * it says Hello too, so a restarted node with no seeds is found again.
 *
 * Requests to peers (steal, settle, sub-runs) go over one req0 socket per
 * member, one nng context per request. nng's threads only queue replies and
 * heartbeats and wake the loop (uv_async_send); cluster_poll handles them on
 * the loop thread, inside a turn.
 *
 * Threads: every function here is for the loop thread. */
#ifndef NODE_CLUSTER_H
#define NODE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "node/events.h"
#include "node/tls.h"
#include "proto/msg.h"
#include "proto/replay.h"
#include "proto/wire.h"

#define CLUSTER_ID_MAX 64
#define CLUSTER_URL_MAX 256

/* What the node reports about itself, filled by self_cb before each
 * heartbeat; the arrays stay valid until the next call. */
struct cluster_self {
    uint32_t        workers;
    uint32_t        free_slots;
    uint64_t        ready;
    const char    **queue_names;
    const uint64_t *queue_ready;
    size_t          queues_n;
    const char    **serves; /* queues the idle workers wait on */
    size_t          serves_n;
    const char     *leader; /* the leader's node id as known; NULL: "" */
};

struct cluster_config {
    const char                *node_id;
    const char                *peer_url; /* bound addresses */
    const char                *events_url;
    const char                *api_url;
    const char *const         *seeds; /* peer urls of nodes to join */
    size_t                     seeds_n;
    uint64_t                   heartbeat_ms, suspect_ms, dead_ms;
    size_t                     max_frame;
    struct wire_sender        *sender; /* node key; borrowed */
    const struct wire_keyring *ring;   /* the node key only; borrowed */
    struct replay             *replay; /* borrowed */
    struct events             *events; /* heartbeats go out here */
    struct tls_files           tls;    /* for tls+tcp:// peer urls */
    void (*self_cb)(void *arg, struct cluster_self *out);
    /* Replies or heartbeats are queued: run a turn that calls
     * cluster_poll. */
    void (*ready_cb)(void *arg);
    /* A member changed state (enum msg_member_state). */
    void (*member_cb)(void *arg, const char *node_id, int state);
    /* The connection to a member closed (it may have died: nng would resend
     * requests in flight to it once it is back, maybe never). */
    void (*link_cb)(void *arg, const char *node_id);
    void *arg;
};

struct cluster_stats {
    uint64_t heartbeats_sent, heartbeats_received;
    uint64_t bytes_sent, bytes_received; /* heartbeat frames */
    uint64_t requests, request_errors;
    uint64_t bad_frames, replayed;
    size_t   members, alive;
};

struct cluster;

int  cluster_open(struct cluster **out, uv_loop_t *loop,
                  const struct cluster_config *cfg, cd_err *err);
void cluster_close(struct cluster *c); /* accepts NULL */

/* A reply (rc CADRE_OK, reply set) or a failure (rc: CADRE_ETIMEDOUT,
 * CADRE_ECLOSED, CADRE_EAUTH, CADRE_EPROTO; reply NULL). turn is
 * cluster_poll's; node_id the peer asked. */
typedef void (*cluster_reply_cb)(void *arg, void *turn, const char *node_id,
                                 int rc, const struct msg *reply);

/* Sends m (borrowed; sealed here) to member node_id. Returns
 * CADRE_ENOTFOUND (no such member), CADRE_ECLOSED (dead), CADRE_ENOMEM
 * or CADRE_ETOOBIG; cb is called only if this returns CADRE_OK. */
int cluster_request(struct cluster *c, const char *node_id, const struct msg *m,
                    uint64_t timeout_ms, cluster_reply_cb cb, void *arg);

/* Handles what nng queued: heartbeats, then replies (their callbacks get
 * turn). */
void cluster_poll(struct cluster *c, void *turn);

/* A Hello from a joining node (peer socket): learns it and fills *reply
 * with this node's heartbeat, borrowed until the next call. */
void cluster_hello(struct cluster *c, const struct msg_heartbeat *h,
                   struct msg *reply);

/* The member table (this node first, as MSG_MEMBER_SELF), borrowed until the
 * next call. */
size_t cluster_members(struct cluster *c, const struct msg_member **out);

/* The alive member with the most ready jobs in queues (NULL if none has
 * any); *ready receives its count. */
const char *cluster_pick_victim(struct cluster *c, const char *const *queues,
                                size_t queues_n, uint64_t *ready);

/* Alive members with free worker slots: up to cap ids (borrowed until the
 * next call) and their free slots, most free first. */
size_t cluster_free_peers(struct cluster *c, const char **ids, uint32_t *free,
                          size_t cap);

/* The queues node_id's idle workers wait on (its last heartbeat), borrowed
 * until the next call; 0 if unknown. */
size_t cluster_peer_serves(const struct cluster *c, const char *node_id,
                           const char *const **names);

/* Whether node_id is a member heard from within dead_ms. */
int cluster_alive(const struct cluster *c, const char *node_id);

void cluster_get_stats(const struct cluster *c, struct cluster_stats *st);

#endif
