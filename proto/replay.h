/* replay.h: the receiver's anti-replay window over opened frame headers
 * (DESIGN.md, Security, "Replays"). Pure logic: no I/O, no clock, no locks;
 * the caller passes now_ms and owns the table from one thread (a node's loop
 * thread).
 *
 * Per sender key (role, sender_id, boot_id) it keeps the highest counter
 * accepted and a bitmap of the REPLAY_WINDOW counters below it (IPsec /
 * WireGuard style), so gaps and reordering (a client with hundreds of
 * requests in flight over many connections) are accepted exactly once each.
 * A key it does not know is accepted only if the frame's ts_ms is within
 * skew_ms of the receiver's clock; a known key gets no timestamp check.
 *
 * Protects against: a captured frame sent again to a node that accepted it
 * (SEEN, or TOO_OLD once it is below the window), and an old frame of a
 * sender the node has forgotten or never saw (SKEW once its ts_ms is outside
 * the skew window).
 *
 * Does not protect against:
 * - Cross-node replay: frames carry no recipient, so a frame sent to node A
 *   and replayed to node B, which has not seen that sender, is accepted by B
 *   while its ts_ms is within the skew window.
 * - Replays after the table forgot a key. An entry idle for more than
 *   2 x skew_ms may be reclaimed at any time: safe while clocks agree within
 *   skew_ms, since its frames are then older than the skew window. When the
 *   table is full of active keys, the least recently seen one is evicted
 *   (counted in replay_stats.evicted): its frames younger than skew_ms can
 *   be accepted once more. Size max_senders above the live senders.
 *
 * nng REQ's own resend of an identical frame after a reconnect is SEEN, like
 * any replay: this module cannot tell them apart. The caller drops it (the
 * requester's own retry re-seals with a new counter) or answers it from its
 * request-id cache; by itself it is no evidence of an attack. */
#ifndef PROTO_REPLAY_H
#define PROTO_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

/* Counters tracked below the highest accepted one, per key. A multiple of
 * 64. Frames further below are TOO_OLD. */
#define REPLAY_WINDOW 1024
/* Largest max_senders replay_new accepts (indices are 32-bit). */
#define REPLAY_MAX_SENDERS (1u << 24)

enum replay_verdict {
    REPLAY_FRESH = 0, /* accepted and recorded */
    REPLAY_SEEN,      /* this counter was already accepted: a replay */
    REPLAY_TOO_OLD,   /* below the window: cannot tell, dropped */
    REPLAY_SKEW,      /* unknown key, ts_ms too far from now_ms: not recorded */
};

struct replay_stats {
    uint64_t fresh, seen, too_old, skew; /* verdicts so far */
    uint64_t evicted; /* active keys dropped because the table was full */
    size_t   senders; /* keys in the table now */
};

struct replay;

/* Creates a table for at most max_senders keys (e.g. 16384; memory is about
 * 200 bytes per key, allocated here) with a clock-skew window of skew_ms.
 * Returns CADRE_EINVAL if max_senders is 0 or over REPLAY_MAX_SENDERS,
 * CADRE_ENOMEM if allocation fails. On success the caller frees *out with
 * replay_free. Any thread; the table then belongs to one thread. */
int replay_new(size_t max_senders, uint64_t skew_ms, struct replay **out);
/* Frees r. Accepts NULL. */
void replay_free(struct replay *r);
/* Checks one opened frame's header (from wire_open: only authenticated
 * headers, or any key could fill the table) and records it if fresh. now_ms
 * is the receiver's wall clock (cd_now_ms()). Drop the frame unless the
 * verdict is REPLAY_FRESH. Any frame of a known key, even a rejected one,
 * counts as activity for idle reclaim and LRU eviction. h is only read during
 * the call. */
enum replay_verdict replay_check(struct replay *r, const struct wire_header *h,
                                 uint64_t now_ms);
/* Copies the counters into *out. */
void replay_get_stats(const struct replay *r, struct replay_stats *out);
/* "fresh", "seen", "too_old", "skew" (for logs); "unknown" otherwise. */
const char *replay_verdict_name(enum replay_verdict v);

#endif
