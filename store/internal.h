/* internal.h: what store.c shares with the other store/ sources (failed.c,
 * control.c, unique.c, lend.c): its error helpers, record copies, index and
 * counter upkeep, and accessors to the environment behind a transaction.
 * Nothing outside store/ includes this; the module's front header is
 * store/store.h.
 *
 * Threads: as store.h (the store's thread only). */
#ifndef STORE_INTERNAL_H
#define STORE_INTERNAL_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/record.h"
#include "store/queues.h"
#include "store/store.h"

/* The store a transaction belongs to, its LMDB txn, whether it is read-only,
 * and the handle of named database db (enum keys_db). */
store   *store_txn_owner(store_txn *t);
MDB_txn *store_txn_mdb(store_txn *t);
int      store_txn_is_rdonly(const store_txn *t);
MDB_dbi  store_dbi(const store *s, int db);
/* Unique-job keys (unique.c). claim: if a pending job other than id holds
 * key (and it has not lapsed), *held = 1 and *holder its id; else id takes
 * the key until until_ms (0: until released). release: drops key if id
 * holds it. Write txn. */
int store_unique_claim(store_txn *t, const char *key, const cadre_job_id *id,
                       uint64_t until_ms, uint64_t now_ms, int *held,
                       cadre_job_id *holder, cd_err *err);
int store_unique_release(store_txn *t, const char *key, const cadre_job_id *id,
                         cd_err *err);
/* The in-memory per-queue counters (store/queues.h). */
struct queues *store_queues(store *s);

/* Sets err from an LMDB return code: "<fn>[ <db>]: <mdb_strerror text>"
 * (db -1: none). Returns the CADRE_E* code. */
int store_mdb_err(const store *s, cd_err *err, int rc, const char *fn, int db);
/* Marks write txn t as failed with code (see store_txn_commit); not for
 * CADRE_ENOTFOUND / CADRE_EINVAL. Returns code. */
int store_fail(store_txn *t, cd_err *err, int code);
/* CADRE_OK if t may write (a write txn that has not failed), else the code
 * (CADRE_EINVAL for a read-only txn). */
int store_writable(store_txn *t, cd_err *err);
/* Wrap err with "store: <what>" (and " <uuid>"); return code. err may be
 * NULL. */
int store_wrap(cd_err *err, int code, const char *what);
int store_wrap_id(cd_err *err, int code, const char *what,
                  const cadre_job_id *id);

/* Copies a decoded record into *out (owned copies; empty strings and bytes
 * become NULL). Returns CADRE_ENOMEM (out zeroed). */
int store_from_record(const struct record_job *r, struct store_job *out,
                      cd_err *err);
/* The stored name of queue: "default" for NULL or "". Returns CADRE_EINVAL
 * if it is longer than STORE_QUEUE_MAX. */
int store_queue_name(const char *queue, const char **name, size_t *len,
                     cd_err *err);

/* The txn's shared cursor on db (opened on first use; closed with the txn).
 * Every user positions it afresh. */
int store_cursor(store_txn *t, int db, MDB_cursor **out, cd_err *err);
/* Reads and decodes the record of id in db. Returns CADRE_ENOTFOUND,
 * CADRE_ECORRUPT, CADRE_ENOMEM, CADRE_EIO; on success free *r with
 * record_job_free. */
int store_read(store_txn *t, int db, const cadre_job_id *id,
               struct record_job *r, cd_err *err);
/* Whether id has a record in db (*found). */
int store_has(store_txn *t, int db, const cadre_job_id *id, int *found,
              cd_err *err);
/* Deletes key from db; a missing key is logged, not an error. */
int store_del(store_txn *t, int db, const void *key, size_t key_len,
              cd_err *err);
/* Counts a job of queue q entering (delta 1) or leaving (delta -1) state,
 * keeping the ready head (see store.c); refresh re-reads the head when the
 * head leaves. */
int store_count(store_txn *t, const char *q, size_t qlen, int state, int delta,
                uint64_t seq, uint64_t created_at_ms, int refresh, cd_err *err);
/* Re-reads the ready head of queue q into c. */
int store_head_refresh(store_txn *t, const char *q, size_t qlen,
                       struct queues_counts *c, cd_err *err);

/* ---- for lend.c: the job-record steps store.c's operations are made of */

/* Fills r to describe job stored in queue (borrows job's pointers). */
void store_to_record(const struct store_job *job, const char *queue,
                     struct record_job *r);
/* Hands out the next seq or lease number (persisted at commit). */
uint64_t store_next(store *s);
/* Encodes r under r->id in db. With MDB_NOOVERWRITE in flags, *exists (if
 * not NULL) reports a record already there, which is then left alone. */
int store_write(store_txn *t, int db, const struct record_job *r,
                unsigned flags, int *exists, cd_err *err);
/* Puts a [time][id] -> val entry into db (delayed, reserved). */
int store_time_put(store_txn *t, int db, uint64_t time, const cadre_job_id *id,
                   const void *val, size_t val_len, cd_err *err);
/* store_job_add, but the new job's origin is origin (borrowed; NULL or "":
 * none) instead of none (store_adopt). */
int store_job_add_origin(store_txn *t, struct store_job *job, uint64_t now_ms,
                         const char *origin, int *duplicate, cd_err *err);
/* Writes result record r (results DB) and its results_time entry at
 * kept_from_ms, from which store_prune_results counts result_ttl_ms. */
int store_result_write(store_txn *t, const struct record_job *r,
                       uint64_t kept_from_ms, cd_err *err);
/* Reads the pending record of id with its queue's length. Returns
 * CADRE_ENOTFOUND, CADRE_ECORRUPT (not a pending state, bad queue),
 * CADRE_ENOMEM, CADRE_EIO; on success free *r with record_job_free. */
int store_read_pending(store_txn *t, const cadre_job_id *id,
                       struct record_job *r, size_t *qlen, cd_err *err);
/* Takes the pending job described by its stored record old out of its
 * index entry and its counters (lent included). */
int store_unindex(store_txn *t, const struct record_job *old, size_t oqlen,
                  cd_err *err);
/* Counts a job entering (delta > 0) or leaving the lent set (store_lent):
 * only state RESERVED with lent_to set counts; undone with the txn. */
void store_lent_count(store_txn *t, int state, const char *lent_to, int delta);

/* Reads the paused queues from meta into the counters (store_open; store/
 * control.c). txn is the open's write txn. */
int store_paused_load(store *s, MDB_txn *txn, cd_err *err);

#endif
