/* scheduler.h: fires the config file's schedules (node/sched.h) as jobs.
 *
 * Two kinds of schedule:
 * - local (on_one_server = false, or a lone node without --voters): every
 *   node fires it into its own store, READY, with the job id derived from
 *   "NAME@SLOT", so a slot stored twice on one node is one job.
 * - on_one_server, with --voters: only the ready leader fires it, and each
 *   slot runs exactly once however leaders crash or freeze
 *   (notes/libraft.md §1.4, with one step more):
 *     1. claim: the leader commits CLAIM(name, slot); WON goes on.
 *     2. hold: it stores the slot's job HELD (store/held.c), durably, with
 *        the same derived id.
 *     3. done: it commits DONE(name, slot, by = its raft id).
 *     4. release: the held job becomes READY and runs.
 *   A new leader, after its barrier, redoes every claimed-not-done slot
 *   from step 2. Every node sweeps its held jobs against its replica of the
 *   log: a slot done by itself is released, a slot done by another node
 *   (a redo won) is dropped, a slot not done yet waits. So a leader killed
 *   between 2 and 3 leaves a held job that never runs twice, and one killed
 *   between 3 and 4 releases it when it comes back.
 *
 * Missed slots follow the schedule's catchup policy; a slot whose previous
 * run is still pending here follows its overlap policy (the previous run is
 * known only to the node that stored it: after a failover the new leader
 * does not see the old leader's running job).
 *
 * A local schedule's latest slot and pause are saved in the node's store
 * (store_sched_put), so after a restart its missed slots follow its
 * catchup policy.
 *
 * Pausing: `cadre schedule pause NAME` on a local schedule pauses it on the
 * node asked; on an on_one_server schedule it holds the unique key
 * "cadre.schedule.paused:NAME" in the leader's FSM (scheduler_pause_key),
 * which every leader reads. Slots that pass while paused are skipped.
 *
 * Threads: the node's loop thread. */
#ifndef NODE_SCHEDULER_H
#define NODE_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"
#include "common/err.h"
#include "node/leader.h"
#include "node/turn.h"
#include "proto/msg.h"

#define SCHEDULER_PAUSE_PREFIX MSG_SCHEDULE_PAUSE_PREFIX

struct scheduler_config {
    const char    *config_file; /* "" or NULL: no schedules */
    struct leader *leader;      /* NULL: no raft */
    int            has_peers;   /* other nodes are configured */
    /* Asks the node for a turn soon (a proposal was answered). */
    void (*kick_cb)(void *arg);
    void *arg;
};

/* What `cadre schedule list` shows of one schedule. */
struct scheduler_info {
    const char *name, *cron, *task, *queue, *tz;
    int         on_one_server;
    int         paused;
    int64_t     next_s; /* 0: never again */
    int64_t     last_s; /* the latest slot fired: on_one_server, done in the
                         * log; else stored by this node since it started
                         * (0: none) */
    uint64_t    fired;  /* jobs this node stored for it since it started */
    const char *where;  /* "every node", "leader", "leader (this node)" */
};

struct scheduler;

/* Loads the schedules of cfg->config_file (sched_load). Returns
 * CADRE_ECONFIG for a bad schedule, or for on_one_server schedules in a
 * cluster without --voters (nothing could fire them only once). */
int  scheduler_open(struct scheduler **out, const struct scheduler_config *cfg,
                    uint64_t now_ms, cd_err *err);
void scheduler_close(struct scheduler *s); /* accepts NULL */

/* The work of one node turn, inside its write txn: fires due slots, moves
 * on_one_server slots along, sweeps held jobs. stopping: fire nothing new,
 * but still release the slots done by this node (held jobs become ready,
 * for peers to steal while the node drains: node.c). */
void scheduler_turn(struct scheduler *s, struct turn *t, int stopping);
/* After the turn's commit (ok = committed): the slots held in it go on to
 * their DONE. */
void scheduler_committed(struct scheduler *s, int ok);
/* 1 if a turn is wanted at now_ms (a slot is due, a proposal answered, a
 * sweep is due). */
int scheduler_wants_turn(const struct scheduler *s, uint64_t now_ms);

size_t scheduler_count(const struct scheduler *s);
/* Fills *out for schedule i < scheduler_count (strings borrowed). */
void scheduler_info(const struct scheduler *s, size_t i, uint64_t now_ms,
                    struct scheduler_info *out);
/* Stores a job for schedule name now, on this node (slot = now, a fresh
 * id), whatever its policies: `cadre schedule run`. Returns
 * CADRE_ENOTFOUND for an unknown name, or the store's error. */
int scheduler_run_now(struct scheduler *s, struct turn *t, const char *name,
                      cadre_job_id *id, cd_err *err);
/* Pauses or resumes a local schedule on this node. Returns CADRE_ENOTFOUND;
 * CADRE_EINVAL (err says so) for an on_one_server schedule with raft: the
 * caller proposes the pause key instead (scheduler_pause_key). */
int scheduler_pause(struct scheduler *s, struct turn *t, const char *name,
                    int paused, cd_err *err);
/* 1 if name is an on_one_server schedule fired through the leader. */
int scheduler_is_leader_led(const struct scheduler *s, const char *name);
/* Writes the FSM unique key that pauses name into out (cap bytes). */
void scheduler_pause_key(const char *name, char *out, size_t cap);

#endif
