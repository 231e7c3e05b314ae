/* raftnet.h: cadre's struct raft_uv_transport for libraft 0.15. Streams reach
 * libraft only after a mutual challenge-response with the node key, so
 * nobody without the key can speak raft to this node or pose as a peer.
 * It authenticates the handshake only; the raft bytes that follow are not
 * sealed (an on-path attacker could still tamper with an established TCP
 * stream).
 *
 * Handshake (all integers big-endian, RAFTNET_VERSION 1):
 *   1. client -> server: "CDRF" | version u8 | client nonce (32) |
 *      client raft id u64 | address len u16 (1..255) | address bytes
 *   2. server -> client: server nonce (32) | server raft id u64 |
 *      MAC(k, "server", message 1 | server nonce | server id)
 *   3. client -> server: MAC(k, "client", message 1 | message 2)
 * MAC is keyed BLAKE2b-256 (crypto/auth.h) with k derived from the node key
 * for this purpose only. The server hands libraft the id and address of
 * message 1 (covered by both MACs); the client hands its stream over only
 * if the server proved the raft id it meant to reach. Anything else (bad
 * magic, version or length, a bad MAC, a wrong or zero id, EOF, a timeout)
 * closes the connection without libraft ever seeing it, and is counted.
 *
 * Threads: everything here runs on the loop thread of the given loop. */
#ifndef NODE_RAFTNET_H
#define NODE_RAFTNET_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#include "crypto/keys.h"

#define RAFTNET_VERSION 1
#define RAFTNET_ADDRESS_MAX 255
/* Default time a handshake may take, either side. */
#define RAFTNET_HANDSHAKE_MS 2000
/* Handshakes in flight on the listening side; past it the oldest is
 * closed, so a flood of silent connections costs bounded memory and cannot
 * lock a real peer out for long. */
#define RAFTNET_PENDING_MAX 64

/* Counters since raftnet_init. */
struct raftnet_stats {
    uint64_t accepted;     /* streams handed to accept_cb */
    uint64_t connected;    /* streams handed to a connect callback */
    uint64_t bad_proto;    /* magic, version, length, EOF mid-handshake */
    uint64_t bad_auth;     /* a MAC that did not verify */
    uint64_t bad_id;       /* a raft id that is 0, ours, or not the one
                              the connect meant to reach */
    uint64_t timeouts;     /* handshakes over the time limit */
    uint64_t busy;         /* handshakes dropped: too many in flight */
    uint64_t connect_fail; /* outgoing TCP connects that failed */
};

/* Fills t (caller storage) with cadre's transport; pass it to raft_uv_init.
 * libraft then calls t->init(t, id, address): id is ours, and address is
 * what we claim when connecting and, unless bind_address is given, where
 * t->listen binds. bind_address ("host:port", IPv4 or [IPv6]; port 0 picks
 * a free port, see raftnet_port) may be NULL. node_key is copied; the MAC
 * key is derived from it here. t->data stays libraft's.
 * Returns CADRE_EINVAL if bind_address is too long, CADRE_ENOMEM.
 * On success call raftnet_close after t->close has called back. */
int raftnet_init(struct raft_uv_transport *t, uv_loop_t *loop,
                 const keys_key *node_key, const char *bind_address);
/* Frees what raftnet_init allocated and wipes the keys. Call it once
 * t->close's callback has fired (libraft: in raft_close's callback, like
 * raft_uv_tcp_close), or right away if t->init never succeeded (raft_init
 * failed before it). Accepts a t whose raftnet_init failed. */
void raftnet_close(struct raft_uv_transport *t);

/* The port the listener is bound to, or 0 before a successful listen. */
int raftnet_port(const struct raft_uv_transport *t);
/* Copies the counters into out. */
void raftnet_stats(const struct raft_uv_transport *t,
                   struct raftnet_stats           *out);
/* Sets the handshake time limit for handshakes started later (tests). */
void raftnet_set_handshake_ms(struct raft_uv_transport *t,
                              unsigned                  handshake_ms);

/* The vtable, as libraft calls it (also usable directly in tests):
 * - init(t, id, address): id > 0; address of 1..RAFTNET_ADDRESS_MAX
 *   printable bytes, else RAFT_INVALID.
 * - listen(t, accept_cb): binds and listens; returns RAFT_INVALID for an
 *   unparsable address, RAFT_IOERR (address in use; t->errmsg says). After
 *   each good handshake calls accept_cb(t, id, address, stream): stream was
 *   allocated with raft_malloc and is the callee's (uv_close, then
 *   raft_free); address lives only during the call.
 * - connect(t, req, id, address, cb): address is an IP literal with a
 *   port, like bind_address (names are not resolved). Returns
 *   RAFT_NOCONNECTION (bad address, socket error), RAFT_NOMEM or
 *   RAFT_CANCELED (closing) and never calls cb; or returns 0 and calls cb
 *   exactly once: cb(req, stream, 0) after a good handshake (stream as
 *   above), cb(req, NULL, RAFT_NOCONNECTION) on any failure, or
 *   cb(req, NULL, RAFT_CANCELED) when t->close interrupted it.
 * - close(t, cb): stops listening (accept_cb is not called again), aborts
 *   every handshake in flight (their connect callbacks fire with
 *   RAFT_CANCELED), then calls cb(t) once every handle is closed. */

#endif
