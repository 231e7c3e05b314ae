/* leader.h: the node's libraft instance (libraft 0.15, notes/libraft.md):
 * the voters' configuration, election, the barrier a new leader commits
 * before it acts, proposals of node/fsm.h commands and a commit-progress
 * watchdog. With node/raftnet.c and node/raftfsm.c (its FSM adapter) it is
 * the only libraft caller. It does not fire schedules or serve locks
 * itself: callers propose commands.
 *
 * Threads: everything here runs on the loop thread of the loop given to
 * leader_open, except leader_parse_voters (pure, any thread). */
#ifndef NODE_LEADER_H
#define NODE_LEADER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "crypto/keys.h"
#include "node/fsm.h"

#define LEADER_VOTERS_MAX 5
#define LEADER_ID_MAX 64    /* a node id, NUL included */
#define LEADER_ADDR_MAX 256 /* "host:port", NUL included */

/* One voter of --voters: raft id = its 1-based position in the list. */
struct leader_voter {
    char     node_id[LEADER_ID_MAX];
    char     address[LEADER_ADDR_MAX]; /* what the others dial */
    uint64_t raft_id;
};

/* Parses "id=host:port,id=host:port,..." into out (cap entries) and sets
 * *n. Accepts 1, 3 or 5 voters (1: a single-node leader for development
 * and tests; 2 and 4 tolerate no more failures than 1 and 3). Returns
 * CADRE_EINVAL (message says why) for a bad entry, a duplicate id or
 * address, or another count. */
int leader_parse_voters(const char *spec, struct leader_voter *out, size_t cap,
                        size_t *n, cd_err *err);

struct leader_config {
    const char                *node_id;  /* ours; one of the voters */
    uint64_t                   raft_id;  /* ours: voters[raft_id - 1] */
    const struct leader_voter *voters;   /* copied */
    size_t                     voters_n; /* 1, 3 or 5 */
    const char                *bind;     /* "host:port"; NULL: our address */
    const char                *dir;      /* created if missing */
    unsigned                   election_ms, heartbeat_ms;
    uint64_t                   watchdog_ms; /* stalled commit after this */
    unsigned                   segment_kb;  /* 0: 1024 */
    const keys_key            *node_key;    /* copied */
    /* The raft instance is unavailable for good (a disk error): the node
     * must stop and exit non-zero. Called once, on the loop thread. */
    void (*fail_cb)(void *arg, const char *why);
    void *arg;
};

enum leader_role {
    LEADER_ROLE_OFF = 0, /* no raft configured */
    LEADER_ROLE_FOLLOWER,
    LEADER_ROLE_CANDIDATE,
    LEADER_ROLE_LEADER,
    LEADER_ROLE_UNAVAILABLE,
};

/* A node's view of the leadership, for status and `cluster leader`. */
struct leader_info {
    char     leader[LEADER_ID_MAX]; /* the leader's node id; "" unknown */
    uint64_t leader_raft_id;        /* 0 unknown */
    uint64_t raft_id;               /* ours */
    uint64_t term;
    int      role;           /* enum leader_role: ours */
    int      ready;          /* we are leader and our barrier committed */
    int      not_committing; /* a barrier or proposal waits > watchdog_ms */
    uint64_t oldest_wait_ms; /* the oldest barrier or proposal in flight */
    uint64_t commit_index, last_applied;
    int      raft_port; /* bound */
};

struct leader;

/* Opens raft on loop: transport, data dir, FSM, bootstrap (the same
 * configuration on every voter; a dir that holds state keeps it), start.
 * Returns CADRE_EINVAL for a bad config, CADRE_EIO (the dir, the port),
 * CADRE_ENOMEM; err says which step. On failure nothing is left open once
 * the loop has run (a started instance closes asynchronously). On success
 * close with leader_close. */
int leader_open(struct leader **out, uv_loop_t *loop,
                const struct leader_config *cfg, cd_err *err);
/* Starts closing: proposals in flight call back with CADRE_ECLOSED or an
 * unknown outcome; l frees itself once libraft and every handle closed, so
 * the loop must run on. Accepts NULL. */
void leader_close(struct leader *l);

/* 1 if we are the leader and our barrier committed: our FSM holds every
 * entry earlier leaders committed. */
int leader_is_ready(const struct leader *l);
/* Copies the leader's node id as this node knows it into id_out
 * (LEADER_ID_MAX bytes; "" if none is known). */
void leader_current(const struct leader *l, char *id_out);
void leader_get_info(const struct leader *l, struct leader_info *out);
/* The replicated state, read only (valid between loop turns). */
const struct fsm *leader_fsm(const struct leader *l);

/* Called once per proposal. rc CADRE_OK: committed and applied, *res is
 * the FSM's answer (valid during the call). rc CADRE_ECLOSED, or
 * CADRE_EIO when leadership was lost: the outcome is unknown, the entry
 * may still commit under the next leader. */
typedef void (*leader_propose_cb)(void *arg, int rc,
                                  const struct fsm_result *res);
/* Proposes c (encoded here; c is only read during the call). Returns
 * CADRE_EBUSY if we are not a ready leader, CADRE_EINVAL for an invalid
 * command, CADRE_ENOMEM, CADRE_EIO (libraft refused it), and then never
 * calls cb; or CADRE_OK and calls cb exactly once, later. */
int leader_propose(struct leader *l, const struct fsm_cmd *c,
                   leader_propose_cb cb, void *arg);

/* A graceful stop: if we lead, hands the leadership to the most
 * up-to-date voter (raft_transfer: it starts an election at once instead
 * of waiting out the election timeout), logged when it completes. Returns
 * CADRE_EBUSY if we do not lead (or a transfer runs), CADRE_EIO. */
int leader_transfer(struct leader *l);

const char *leader_role_name(int role);

#endif
