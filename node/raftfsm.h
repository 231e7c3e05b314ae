/* raftfsm.h: the bridge between libraft 0.15 and node/fsm.h: a struct
 * raft_fsm whose apply, snapshot and restore drive one struct fsm, and the
 * framing of a command as a raft log entry. It owns no raft instance and no
 * loop: node/leader.c gives it to raft_init, and the fixture tests
 * (tests/unit/test_leader_fixture.c) give one per in-memory server.
 *
 * Entry format: a 4-byte big-endian length, the fsm_cmd encoding, and zeros
 * up to a multiple of 8 bytes: libraft 0.15 reads the entries of an
 * AppendEntries message at 8-byte padded offsets, so a command of another
 * length made it read past its receive buffer (found by ASan on a
 * follower).
 *
 * Threads: the callbacks run wherever libraft runs the FSM (the node's loop
 * thread); raftfsm_encode touches no state and may run on any thread. */
#ifndef NODE_RAFTFSM_H
#define NODE_RAFTFSM_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#include "node/fsm.h"

#define RAFTFSM_ENTRY_HDR 4 /* the length in front of the command */

/* Caller storage. rf is what raft_init takes; the rest is the adapter's.
 * It must stay at the same address while libraft uses rf (rf.data points
 * back to it). */
struct raftfsm {
    struct raft_fsm   rf;
    struct fsm       *fsm;                   /* borrowed: the caller frees it */
    struct fsm_result applied;               /* the last command's answer */
    uint64_t          applied_n, restored_n; /* counters, for tests */
};

/* Points r->rf (fsm.version 1: libraft frees snapshot buffers) at f. f is
 * borrowed and must outlive the raft instance that uses r->rf. Cannot
 * fail: nothing is allocated, so there is no fini. */
void raftfsm_init(struct raftfsm *r, struct fsm *f);

/* The answer of the last entry applied (zeroed before the first). On the
 * leader, libraft passes the same pointer to the raft_apply callback right
 * after apply returns; read it there, before the next entry applies. */
const struct fsm_result *raftfsm_last(const struct raftfsm *r);

/* Frames c as one log entry: out->base comes from raft_calloc (ownership
 * passes to libraft when raft_apply returns 0; otherwise the caller frees
 * it with raft_free) and out->len is a multiple of 8. Returns CADRE_EINVAL
 * if c is not a valid command, CADRE_ENOMEM; out is only written on
 * success. */
int raftfsm_encode(const struct fsm_cmd *c, struct raft_buffer *out);

#endif
