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

struct store_job_opts {
    uint32_t  tries;
    uint32_t *backoff_s; /* owned */
    size_t    backoff_n;
    uint64_t  retry_until_ms;
    uint32_t  max_exceptions;
    uint64_t  timeout_ms;
    uint64_t  retry_after_ms;
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
 * A NULL or empty queue is stored as "default"; created_at_ms 0 as now_ms.
 * Returns CADRE_EFULL, CADRE_EIO, CADRE_EINVAL (queue name too long). */
int store_job_add(store_txn *txn, struct store_job *job, uint64_t now_ms,
                  int *duplicate, cd_err *err);

/* Reads a pending (delayed, ready, reserved) job. Returns CADRE_ENOTFOUND. */
int store_job_get(store_txn *txn, const cadre_job_id *id, struct store_job *out,
                  cd_err *err);

/* Reserves up to max ready jobs, taking queues in the given order and each
 * queue in FIFO order (write txn). Each becomes RESERVED with attempts + 1,
 * reserved_until_ms = now_ms + (opts.retry_after_ms or retry_after_ms) and a
 * fresh lease. out (max entries, caller storage) receives copies; *out_n
 * their count. On error out holds nothing to free. */
int store_reserve(store_txn *txn, const char *const *queues, size_t queues_n,
                  size_t max, uint64_t now_ms, uint64_t retry_after_ms,
                  struct store_job *out, size_t *out_n, cd_err *err);

/* Writes job back in the state it carries (DELAYED, READY or RESERVED),
 * moving its index entries from the stored record's state (write txn). Used
 * for releases, retries and lease extensions. A READY job keeps its seq if
 * it has one, so a returned job keeps its place; pass seq = 0 to put it at
 * the back (job->seq receives the new one). job is written as a whole, so it
 * must be a full record (from store_job_get, store_reserve, store_expired).
 * Returns CADRE_ENOTFOUND if the job is not pending, CADRE_EINVAL for
 * another state. */
int store_job_save(store_txn *txn, struct store_job *job, cd_err *err);

/* Finishes a pending job as DONE (result kept for result_ttl_ms, without the
 * payload) or FAILED (moved to the failed-job store with error_type/error and
 * the payload), according to job->state, and bumps the queue's done/failed
 * total. job->finished_at_ms is set to now_ms if 0. Returns
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
 * saves them. Read or write txn. */
int store_expired(store_txn *txn, uint64_t now_ms, struct store_job *out,
                  size_t max, size_t *out_n, cd_err *err);

/* The earliest delayed due time and reserved deadline (UINT64_MAX if none). */
int store_next_times(store_txn *txn, uint64_t *next_due_ms,
                     uint64_t *next_deadline_ms, cd_err *err);

/* The outcome of a job: CADRE_PENDING (pending record), CADRE_DONE (result
 * record), CADRE_FAILED (failed store), CADRE_UNKNOWN. out (may be NULL) is
 * filled for DONE/FAILED (result, error), untouched otherwise; free with
 * store_job_fini. */
int store_outcome(store_txn *txn, const cadre_job_id *id, int *status,
                  struct store_job *out, cd_err *err);

/* Deletes done results older than result_ttl_ms (at most max per call). */
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
/* Number of ready jobs in the named queues, same rules as above. */
uint64_t store_ready_in(const store *s, const char *const *queues,
                        size_t queues_n);

#endif
