/* store.h: the node's durable state in one LMDB environment: job records and
 * their indexes (ready per queue in FIFO order, delayed by due time, reserved
 * by deadline), results of finished jobs, failed jobs, per-queue counters.
 *
 * Every state change happens inside a write transaction the caller opens
 * (the node groups all writes of one loop turn into one). The store makes no
 * retry decisions (node/policy does) and opens no sockets.
 *
 * Threads: a store and its transactions belong to the thread that opened them
 * (the node's loop thread). At most one write transaction at a time.
 *
 * STORE_SCHEMA_VERSION bump procedure: bump it, add a migration step in
 * store_open for the previous version, keep old record fields readable. */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"
#include "common/err.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_QUEUE_MAX 120 /* bytes of a queue name */

enum store_sync {
    STORE_SYNC_FULL = 0, /* fsync data and meta on every commit */
    STORE_SYNC_NORMAL =
        1,              /* MDB_NOMETASYNC: a system crash may undo the last */
    STORE_SYNC_OFF = 2, /* MDB_NOSYNC + periodic store_sync */
};

struct store_config {
    const char *dir;           /* must exist */
    size_t      map_size_mb;   /* 0: 4096 */
    int         sync;          /* enum store_sync */
    uint64_t    result_ttl_ms; /* how long done results stay; 0: 1 hour */
};

enum store_job_state {
    STORE_DELAYED = 1,
    STORE_READY = 2,
    STORE_RESERVED = 3,
    STORE_DONE = 4,
    STORE_FAILED = 5,
};

/* Job middleware (proto/msg.h struct msg_middleware) with owned keys; a
 * NULL key turns its part off. The node only keeps and forwards it: the
 * worker runs it. */
struct store_mw {
    char    *rate_key;
    uint32_t rate_limit;
    uint64_t rate_per_ms;
    char    *overlap_key;
    uint64_t overlap_ttl_ms;
    char    *exc_key;
    uint32_t exc_limit;
    uint64_t exc_per_ms;
};

struct store_job_opts {
    uint32_t        tries;
    uint32_t       *backoff_s; /* owned */
    size_t          backoff_n;
    uint64_t        retry_until_ms;
    uint32_t        max_exceptions;
    uint64_t        timeout_ms;
    uint64_t        retry_after_ms;
    struct store_mw mw;
};

/* A job record. All pointers are owned by the struct (store_job_fini frees
 * them); records returned by the store are copies, valid after the txn. */
struct store_job {
    cadre_job_id          id;
    char                 *task;
    char                 *queue;
    uint8_t              *payload;
    size_t                payload_len;
    struct store_job_opts opts;
    int                   state;      /* enum store_job_state */
    uint32_t              attempts;   /* attempts started */
    uint32_t              exceptions; /* handler errors */
    uint64_t              seq;        /* FIFO order; assigned by the store */
    uint64_t              created_at_ms;
    uint64_t              available_at_ms;   /* delayed: due time */
    uint64_t              reserved_until_ms; /* reserved: lease deadline */
    uint64_t              lease; /* reserved: token; store-assigned */
    uint64_t              finished_at_ms;
    char                 *error_type; /* last error */
    char                 *error;
    uint8_t              *result; /* done */
    size_t                result_len;
    /* Unique jobs: while the job is pending (until it starts, with
     * unique_until_processing; at most until unique_until_ms if not 0), a
     * second job with the same key is not stored (store_job_add). */
    char    *unique_key;
    uint64_t unique_until_ms;
    int      unique_until_processing;
    /* RESERVED by store_lend: the node the job is lent to (store.h, "moving
     * jobs between nodes"); NULL when not lent. */
    char *lent_to;
    /* The node id of the node the job was dispatched to, where its waiters
     * are: set by store_adopt, kept through lends, saves, the result and the
     * failed record; NULL when it was dispatched here. The node sends the
     * outcome of a job with an origin home (store_result_put there). */
    char *origin;
    /* A job fired by a schedule (node/scheduler.h): its name and slot,
     * shown to the handler; NULL and 0 otherwise. */
    char   *schedule;
    int64_t slot_s;
};

void store_job_fini(struct store_job *job); /* accepts NULL; zeroes */

typedef struct store     store;
typedef struct store_txn store_txn;

/* Opens (creating if needed) the environment in cfg->dir, checks the schema
 * version and clears stale reader slots (mdb_reader_check).
 * Returns CADRE_EIO (cannot open/create; message has the path and the LMDB
 * or OS text), CADRE_EVERSION (schema from a newer cadre), CADRE_ECORRUPT. */
int  store_open(const struct store_config *cfg, store **out, cd_err *err);
void store_close(store *s); /* accepts NULL */
/* Flushes to disk (for sync=off's periodic flush). */
int store_sync(store *s, cd_err *err);

/* Begins a transaction. Returns CADRE_EBUSY if a write txn is already open. */
int store_txn_begin(store *s, int rdonly, store_txn **out, cd_err *err);
/* Commits and frees txn. Returns CADRE_EFULL (map or disk full), CADRE_EIO;
 * on error nothing of the txn is kept and the in-memory counters are as
 * before it. A write operation that failed with anything but
 * CADRE_ENOTFOUND or CADRE_EINVAL may have written part of its work: the txn
 * is then spent (later writes and the commit return that error); abort it.
 * CADRE_ENOTFOUND, CADRE_EINVAL and duplicates write nothing. */
int  store_txn_commit(store_txn *txn, cd_err *err);
void store_txn_abort(store_txn *txn); /* accepts NULL */

/* Adds a new job (write txn). job->state is set here: DELAYED if
 * available_at_ms > now_ms, else READY; seq is assigned. If a job, result or
 * failed record with this id exists, nothing is written and *duplicate = 1.
 * The store copies what it needs; job is not modified but for state/seq.
 * A unique job (unique_key set) whose key is held by another pending job is
 * not stored either: *duplicate = 2 and job->id receives the holder's id.
 * A NULL or empty queue is stored as "default"; created_at_ms 0 as now_ms;
 * lent_to is ignored (a new job is nobody's loan), and so is origin (a job
 * dispatched here is this node's; store_adopt stores one that is not).
 * Returns CADRE_EFULL, CADRE_EIO, CADRE_EINVAL (queue name too long). */
/* ---- held jobs (store/held.c) ----
 * A job added with available_at_ms = STORE_HELD_MS is held: DELAYED, due at
 * a time that never comes, so it is stored durably but never promoted (nor
 * lent) until store_held_release. */
#define STORE_HELD_MS UINT64_MAX

/* Writes the ids of up to max held jobs into ids and their number into *n.
 * Read or write txn. */
int store_held_list(store_txn *txn, cadre_job_id *ids, size_t max, size_t *n,
                    cd_err *err);
/* Makes the held job id READY, at the back of its queue (write txn).
 * Returns CADRE_ENOTFOUND if it is not pending, CADRE_EINVAL if it is not
 * held. */
int store_held_release(store_txn *txn, const cadre_job_id *id, cd_err *err);

/* ---- schedule state (store/schedstate.c) ----
 * A local schedule's latest slot fired or skipped and its pause, kept across
 * restarts. *found = 0 (and nothing else set) for a schedule never saved.
 * Returns CADRE_EINVAL (name too long), CADRE_ECORRUPT, CADRE_EIO; put:
 * CADRE_EFULL too. */
int store_sched_get(store_txn *txn, const char *name, int64_t *last_s,
                    int *paused, int *found, cd_err *err);
int store_sched_put(store_txn *txn, const char *name, int64_t last_s,
                    int paused, cd_err *err);

int store_job_add(store_txn *txn, struct store_job *job, uint64_t now_ms,
                  int *duplicate, cd_err *err);

/* Reads a pending (delayed, ready, reserved) job. Returns CADRE_ENOTFOUND. */
int store_job_get(store_txn *txn, const cadre_job_id *id, struct store_job *out,
                  cd_err *err);

/* Reserves up to max ready jobs, taking queues in the given order and each
 * queue in FIFO order (write txn); paused queues (store_queue_pause) are
 * skipped. Each becomes RESERVED with attempts + 1,
 * reserved_until_ms = now_ms + (opts.retry_after_ms or retry_after_ms) and a
 * fresh lease, and lent_to cleared (a worker here has it). out (max
 * entries, caller storage) receives copies; *out_n their count. On error out
 * holds nothing to free. */
int store_reserve(store_txn *txn, const char *const *queues, size_t queues_n,
                  size_t max, uint64_t now_ms, uint64_t retry_after_ms,
                  struct store_job *out, size_t *out_n, cd_err *err);

/* Writes job back in the state it carries (DELAYED, READY or RESERVED),
 * moving its index entries from the stored record's state (write txn). Used
 * for releases, retries and lease extensions. A READY job keeps its seq if
 * it has one, so a returned job keeps its place; pass seq = 0 to put it at
 * the back (job->seq receives the new one). job is written as a whole, so it
 * must be a full record (from store_job_get, store_reserve, store_expired);
 * lent_to and origin too, as given (an expired loan: set lent_to NULL with
 * state READY).
 * Returns CADRE_ENOTFOUND if the job is not pending, CADRE_EINVAL for
 * another state. */
int store_job_save(store_txn *txn, struct store_job *job, cd_err *err);

/* Finishes a pending job as DONE (result kept for result_ttl_ms, without the
 * payload) or FAILED (moved to the failed-job store with error_type/error and
 * the payload), according to job->state, and bumps the queue's done/failed
 * total. job->finished_at_ms is set to now_ms if 0. Both records keep
 * job->origin (the caller sends the outcome home when it is set and not
 * this node) and drop lent_to. Returns
 * CADRE_ENOTFOUND if the job is not pending, CADRE_EINVAL for another
 * state. */
int store_job_finish(store_txn *txn, struct store_job *job, uint64_t now_ms,
                     cd_err *err);

/* Moves delayed jobs due at or before now_ms to READY (at most max), each at
 * the back of its queue (a fresh seq); *moved receives the count. */
int store_promote_due(store_txn *txn, uint64_t now_ms, size_t max,
                      size_t *moved, cd_err *err);

/* Copies up to max reserved jobs whose deadline is at or before now_ms into
 * out (caller storage), earliest first; the caller decides (node/policy) and
 * saves them. Expired loans (store_lend) are among them, lent_to set. Read
 * or write txn. */
int store_expired(store_txn *txn, uint64_t now_ms, struct store_job *out,
                  size_t max, size_t *out_n, cd_err *err);

/* The earliest delayed due time and reserved deadline (UINT64_MAX if none). */
int store_next_times(store_txn *txn, uint64_t *next_due_ms,
                     uint64_t *next_deadline_ms, cd_err *err);

/* The outcome of a job: CADRE_PENDING (pending record), CADRE_DONE (result
 * record), CADRE_FAILED (failed store, or a FAILED outcome that ran on
 * another node: store_result_put), CADRE_UNKNOWN. out (may be NULL) is
 * filled for DONE/FAILED (result, error; state STORE_DONE or STORE_FAILED),
 * untouched otherwise; free with store_job_fini. */
int store_outcome(store_txn *txn, const cadre_job_id *id, int *status,
                  struct store_job *out, cd_err *err);

/* Deletes results (store_job_finish's, and the DONE or FAILED outcomes of
 * store_result_put) older than result_ttl_ms (at most max per call). */
int store_prune_results(store_txn *txn, uint64_t now_ms, size_t max,
                        size_t *pruned, cd_err *err);

/* Per-queue counts (in memory; no txn needed). Counts include the changes of
 * the open write txn; an abort or failed commit restores them. *out is
 * an array the caller frees with cd_free, sorted by name;
 * oldest_ready_age_ms is now_ms minus the created_at_ms of the job at the
 * head of the queue (the next to be reserved). */
int store_stats(store *s, uint64_t now_ms, cadre_queue_stats **out,
                size_t *out_n, cd_err *err);

/* Total jobs pending (delayed + ready + reserved), same rules as above. */
uint64_t store_pending(const store *s);
/* Number of ready jobs workers may take from the named queues (a paused
 * queue counts 0), same rules as above. */
uint64_t store_ready_in(const store *s, const char *const *queues,
                        size_t queues_n);

/* ---- failed jobs (store/failed.c) ---------------------------------------
 * The failed DB holds each failed job's whole record (payload included),
 * keyed by id, so scans go in id order (ids are time-ordered: dispatch
 * order). Every scan is bounded; a caller continues with after = *last. The
 * per-queue failed counter (store_stats) is the number of jobs in the
 * failed DB: whatever takes a job out decrements it. A job that failed on
 * another node is in that node's failed DB, not here (here: its outcome in
 * the results DB, store_result_put), and is listed and retried there. */

/* Which failed jobs a scan visits and how far it goes. */
struct store_failed_scan {
    const char         *queue; /* NULL or "": every queue */
    const cadre_job_id *after; /* NULL: from the first id; else after it */
    uint64_t failed_before_ms; /* 0: any; else finished_at_ms < this only */
    size_t   max;              /* at most this many matching jobs (> 0) */
    size_t   scan_max;         /* at most this many records read (> 0) */
};

/* Copies the failed jobs sc matches, in id order, into out (caller storage
 * of sc->max entries; free each with store_job_fini). payloads 0: payload is
 * NULL and payload_len still the stored size. *more is 1 if failed jobs are
 * left after *last, the id of the last record read (the cursor for the next
 * call; untouched if none was read). A record that does not decode is
 * logged and skipped. Read or write txn.
 * Returns CADRE_EINVAL (sc->max or scan_max 0), CADRE_ENOMEM, CADRE_EIO;
 * out then holds nothing. */
int store_failed_list(store_txn *txn, const struct store_failed_scan *sc,
                      int payloads, struct store_job *out, size_t *out_n,
                      cadre_job_id *last, int *more, cd_err *err);

/* Copies the failed job id (payload included) into *out (free with
 * store_job_fini). Returns CADRE_ENOTFOUND if it is not in the failed DB. */
int store_failed_get(store_txn *txn, const cadre_job_id *id,
                     struct store_job *out, cd_err *err);

/* Moves failed job id back to READY at the back of its queue (write txn),
 * as a fresh attempt: attempts and exceptions 0, error cleared,
 * created_at_ms and available_at_ms now_ms (its wait starts now); options
 * and payload as they were; origin cleared (store_job_add), so its new
 * outcome stays here, where the retry was asked for. It leaves the failed DB
 * (the queue's failed count drops). Returns CADRE_ENOTFOUND (not a failed job),
 * CADRE_EEXISTS (a pending job or a result holds the id; nothing written),
 * CADRE_EFULL, CADRE_EIO. */
int store_failed_retry(store_txn *txn, const cadre_job_id *id, uint64_t now_ms,
                       cd_err *err);

/* Deletes failed job id (write txn). Returns CADRE_ENOTFOUND. */
int store_failed_forget(store_txn *txn, const cadre_job_id *id, cd_err *err);

enum store_failed_action {
    STORE_FAILED_RETRY = 1, /* store_failed_retry */
    STORE_FAILED_FORGET = 2 /* store_failed_forget */
};

/* Applies action to the failed jobs sc matches, in id order (write txn):
 * retry all / --queue, flush, prune. *done receives how many; *last and
 * *more as store_failed_list. A job that cannot be retried because its id is
 * taken (CADRE_EEXISTS) is logged and left failed. Returns CADRE_EINVAL (bad
 * action, max or scan_max 0), CADRE_EFULL, CADRE_ENOMEM, CADRE_EIO; the txn
 * is then spent. */
int store_failed_sweep(store_txn *txn, int action,
                       const struct store_failed_scan *sc, uint64_t now_ms,
                       size_t *done, cadre_job_id *last, int *more,
                       cd_err *err);

/* ---- queue control (store/control.c) ---------------------------------- */

#define STORE_CLEAR_CURSOR_LEN 24 /* bytes of a store_queue_clear cursor */

/* Deletes READY and DELAYED jobs of queue (NULL or "": every queue), never
 * reserved ones (write txn): ready ones first, from each queue's head, then
 * delayed ones in due order. At most max index entries are read (each ready
 * one is deleted; delayed ones of other queues are skipped). The delayed
 * part resumes after the cursor after (after_len 0: from the start;
 * otherwise STORE_CLEAR_CURSOR_LEN bytes from an earlier *next). *cleared
 * receives the number deleted; *more is 1 when the bound was reached, and
 * *next_len (STORE_CLEAR_CURSOR_LEN or 0) with next (STORE_CLEAR_CURSOR_LEN
 * bytes of caller storage) says where to go on. Returns CADRE_EINVAL (long
 * queue name, a bad cursor, max 0), CADRE_ECORRUPT, CADRE_EFULL, CADRE_EIO. */
int store_queue_clear(store_txn *txn, const char *queue, const uint8_t *after,
                      size_t after_len, size_t max, size_t *cleared,
                      uint8_t *next, size_t *next_len, int *more, cd_err *err);

/* Pauses (paused 1) or resumes (0) queue: store_reserve takes nothing from a
 * paused queue and store_ready_in counts it 0; dispatch still stores jobs in
 * it. Durable (meta "paused/<queue>") and undone with the txn. *changed
 * (may be NULL) is 0 if it already was so. Returns CADRE_EINVAL (name too
 * long), CADRE_ENOMEM, CADRE_EFULL, CADRE_EIO. */
int store_queue_pause(store_txn *txn, const char *queue, int paused,
                      int *changed, cd_err *err);

/* Whether queue (NULL or "": "default") is paused (in memory; no txn). */
int store_queue_paused(const store *s, const char *queue);

/* The names of the paused queues, sorted: *out is one allocation (the
 * pointer array and the strings) the caller frees with cd_free; NULL with
 * *out_n 0 if none. Returns CADRE_ENOMEM. */
int store_paused_queues(const store *s, char ***out, size_t *out_n,
                        cd_err *err);

/* ---- moving jobs between nodes (store/lend.c) --------------------------
 * Work stealing, durably. The victim LENDS ready jobs: each stays in its
 * store, RESERVED with lent_to = the thief (so nothing here runs it), and
 * its transfer record goes to the thief. The thief ADOPTS the record (a
 * commit in its own store, idempotent by id) and then tells the victim,
 * which SETTLES the loan (deletes the job). A crash anywhere may duplicate a
 * job, never lose it. A loan never settled is a lease like any other:
 * store_expired returns the job with lent_to set at reserved_until_ms; the
 * caller sets state READY and lent_to NULL (cd_free) and saves it
 * (store_job_save), which puts it back at its old place (its seq is kept in
 * the stored record), attempts unchanged.
 *
 * Outcomes go home. A job keeps the node id of the node it was dispatched
 * to (origin; its waiters are there) across any number of loans: the first
 * adopter sets it to its lender's id, later ones keep it. The node that
 * finishes a job with an origin other than itself sends the outcome there,
 * where store_result_put stores it for store_outcome. No messages, no
 * policy here. */

/* An encoded record. data is owned: the receiver frees it with cd_free. */
struct store_blob {
    uint8_t *data;
    size_t   len;
};

/* Lends up to max READY jobs to node `to` (write txn): queues taken in the
 * given order, each FIFO, paused queues skipped; jobs with a unique key are
 * never lent (their key lives on this node) and stay where they are. At
 * most 4 * max + 64 ready entries are read per call, so a queue headed by
 * many unique jobs may lend fewer. Each lent job becomes RESERVED with
 * lent_to = to, reserved_until_ms = now_ms + lend_ms, a fresh lease,
 * attempts and seq unchanged. out (max entries, caller storage) receives
 * each job's transfer record, in lending order: the job encoded
 * (record_job_pack) as the thief should store it: state READY, seq 0,
 * lent_to "", lease 0, reserved_until_ms 0, unique fields empty; every other
 * field (attempts, exceptions, opts, created_at_ms, error, origin, ...)
 * kept: origin "" if the job was dispatched here (store_adopt fills in). *out_n
 * receives the count; the caller frees each out[i].data with cd_free. On
 * error out holds nothing to free.
 * Returns CADRE_EINVAL (to NULL or "", a queue name too long; nothing
 * written), CADRE_ENOMEM, CADRE_EFULL, CADRE_EIO (the txn is then spent). */
int store_lend(store_txn *txn, const char *const *queues, size_t queues_n,
               size_t max, uint64_t now_ms, uint64_t lend_ms, const char *to,
               struct store_blob *out, size_t *out_n, cd_err *err);

/* Settles loans to `to` (write txn): deletes each of the n jobs that is
 * RESERVED and lent to `to` (its record, index entry and counts; no result,
 * no failed record, no done/failed total). Jobs not found, or not lent to
 * `to`, are skipped. *settled receives how many were deleted. Idempotent.
 * Returns CADRE_EINVAL (to NULL or ""; nothing written), CADRE_ENOMEM,
 * CADRE_EFULL, CADRE_EIO (the txn is then spent). */
int store_lend_settle(store_txn *txn, const cadre_job_id *ids, size_t n,
                      const char *to, size_t *settled, cd_err *err);

/* Takes in a job that node `origin` lent, from its transfer record (rec, len:
 * borrowed for the call; write txn). It is stored READY at the back of its
 * queue (fresh seq), or DELAYED if available_at_ms > now_ms; attempts,
 * exceptions, options, created_at_ms and error kept. The record's state,
 * seq, lease, deadline, lent_to and unique fields are ignored: the thief
 * never holds a unique key. origin (borrowed; NULL or "": none) is the
 * lender's node id: the job's origin becomes it if the record has none (the
 * lender is where the job was dispatched); a record's own origin is kept (a
 * job lent on keeps its first). The store does not know its own node id: a
 * job that comes home by a loan after its loan there settled keeps origin =
 * this node's id, which the node recognises as its own. If a pending job,
 * result or failed record with this id exists, nothing is written and
 * *duplicate = 1 (the caller may still tell the lender it has the job), with
 * one exception: a pending job this node itself lent out (the job came back
 * before the loan settled) has its loan cancelled: it goes back to READY at
 * its old place, as on expiry, with the origin it had here, so that settling
 * that loan later cannot delete the only copy; *duplicate = 1 too.
 * Otherwise *duplicate = 0. *id receives the job's id.
 * Returns CADRE_ECORRUPT (rec is not a job record: undecodable, id not 16
 * bytes, empty task, queue name too long; nothing written, the txn stays
 * usable), CADRE_ENOMEM, CADRE_EFULL, CADRE_EIO (the txn is then spent). */
int store_adopt(store_txn *txn, const uint8_t *rec, size_t len, uint64_t now_ms,
                const char *origin, cadre_job_id *id, int *duplicate,
                cd_err *err);

/* Stores the final outcome of a job that ran on another node and whose
 * origin is this node (write txn): job (borrowed for the call) has state
 * STORE_DONE or STORE_FAILED, with id, task, queue, attempts, exceptions,
 * result (DONE; dropped for FAILED), error_type/error, finished_at_ms (0:
 * now_ms) and origin (kept as given, like store_job_finish's records); its
 * payload, seq, lease, deadline, lent_to and unique fields are not stored.
 * It goes to the results DB, FAILED too (the failed job itself stays in the
 * failed DB of the node that ran it, where it can be listed and retried),
 * indexed for pruning like any result but from now_ms, its arrival: it is
 * kept result_ttl_ms here whatever the other node's clock said. So
 * store_outcome reports it (CADRE_DONE or CADRE_FAILED). Queue done/failed
 * totals are not bumped (they count jobs run here) and no queue is created.
 * If a pending job (it came back after its loan expired, and will run
 * here), a result or a failed record already holds the id, nothing is
 * written and CADRE_EEXISTS is returned, the txn still usable: the first
 * outcome stays. A job this node lent out whose loan is not settled yet is
 * still pending here (RESERVED, lent_to set): the outcome proves a thief
 * adopted it, so settle that loan first (store_lend_settle to its lent_to,
 * same txn).
 * Returns CADRE_EINVAL (state not DONE or FAILED, no task, queue name too
 * long; nothing written), CADRE_EEXISTS, CADRE_EFULL, CADRE_EIO (the txn is
 * then spent). */
int store_result_put(store_txn *txn, const struct store_job *job,
                     uint64_t now_ms, cd_err *err);

/* Number of jobs lent out now (RESERVED with lent_to set; counted at
 * store_open from the reserved jobs' records), in memory like store_pending
 * and with the same txn rules. Lives in store.c with the other counters. */
uint64_t store_lent(const store *s);

#endif
