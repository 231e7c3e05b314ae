/* raftguard.h: a struct raft_io that wraps another (raft_uv in node/leader.c,
 * the fixture's in tests) so that an AppendEntries reply counts only for
 * log entries the leader actually sent and the follower actually checked.
 *
 * libraft 0.15 answers an AppendEntries that adds nothing new (a heartbeat,
 * or entries it already holds) with its last stored index, even past the
 * prefix the request's prev_log_index/prev_log_term checked. A follower
 * keeping an uncommitted tail of an older term thus makes the leader
 * record a match index over entries it does not hold, and commit them
 * without a majority (tests/unit/test_leader_fixture.c counts it). Later
 * canonical/raft versions limit the reply to what the request checked;
 * this wrapper does the same from outside, in two places:
 *
 * - as a follower, a successful reply sent while libraft handles an
 *   AppendEntries (its synchronous answer) claims at most that request's
 *   prev_log_index + n_entries; one sent later (once entries or a snapshot
 *   are stored) at most the highest index a request of the current leader
 *   reached without being refused, or its snapshot's last index;
 * - as a leader, a successful reply from server X counts at most up to the
 *   highest index this server sent X (prev_log_index + n_entries of an
 *   AppendEntries, last_index of an InstallSnapshot) in its current term:
 *   a backstop for a peer without this wrapper (a rolling upgrade). It is
 *   looser than the follower side: with several requests to X in flight, a
 *   reply to the first still counts up to the last one sent.
 *
 * Both only ever lower the index a leader learns, never raise it: safety
 * can only gain; the leader resends from the lower index and the follower's
 * next answer is exact. Every other method passes through. What is left:
 * the follower's bound trusts libraft to refuse what does not match, and
 * reads "not refused" from what it does inside the receive (answers with a
 * success, or stores entries to answer later); that is libraft 0.15's
 * behaviour as read and tested (tests/unit/test_leader_fixture.c), not a
 * proof.
 *
 * Threads: whatever thread runs the wrapped raft_io (the node's loop). */
#ifndef NODE_RAFTGUARD_H
#define NODE_RAFTGUARD_H

#include <raft.h>
#include <stdint.h>

/* Peers tracked per term: cadre has at most 5 voters, the fixture 8. A
 * peer past this many is not clamped on the leader side (as without the
 * wrapper); its own follower side still is. */
#define RAFTGUARD_PEERS_MAX 16

struct raftguard_peer {
    raft_id    id;
    raft_index sent; /* highest index sent to it in raftguard.term */
};

/* Caller storage, at a fixed address while libraft uses io. */
struct raftguard {
    struct raft_io   io;    /* what libraft gets (raft_init, or raft->io) */
    struct raft_io  *inner; /* borrowed: the wrapped implementation */
    raft_io_tick_cb  tick_cb;
    raft_io_recv_cb  recv_cb;
    raft_io_close_cb close_cb;
    /* Leader side: the term of the last AppendEntries or InstallSnapshot
     * this server sent, and what it sent to whom in that term. */
    raft_term             term;
    struct raftguard_peer peers[RAFTGUARD_PEERS_MAX];
    unsigned              peers_n;
    /* Follower side: the AppendEntries libraft is handling, if any, and
     * what the requests of the highest term received have vouched for. */
    int        in_append; /* inside recv_cb of an AppendEntries */
    raft_id    append_from;
    raft_term  append_term;
    raft_index append_end; /* its prev_log_index + n_entries */
    int        append_answered, append_refused, append_stored;
    raft_term  vouched_term;
    raft_index vouched;
    /* Counters, for tests and logs. */
    uint64_t leader_clamped_n;   /* replies lowered on receipt */
    uint64_t follower_clamped_n; /* own replies lowered on sending */
};

/* Makes g->io a pass-through of inner with the two clamps above. Sets
 * inner->data to g (the wrapped implementation calls its tick, recv and
 * close callbacks with inner; g forwards them with &g->io) and g->io.impl
 * to inner->impl, so code that reads raft->io->impl (the fixture's
 * helpers) still finds the implementation. Call before raft_init(...,
 * &g->io, ...), or after raft_init on inner and before raft_start, setting
 * raft->io = &g->io and g->io.data = raft. inner is borrowed and must
 * outlive g's use by libraft; nothing is allocated, there is no fini.
 * Cannot fail. */
void raftguard_init(struct raftguard *g, struct raft_io *inner);

#endif
