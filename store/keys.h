/* keys.h: the on-disk layout of the store: named LMDB databases, their keys
 * and index values. Integers are big-endian so that LMDB's memcmp order is
 * numeric order. Changing anything here is a STORE_SCHEMA_VERSION bump.
 *
 *   jobs          id16                          -> JobRecord (pending jobs)
 *   ready         [qlen u8][queue][seq u64]     -> [id16][created_at_ms u64]
 *   delayed       [available_at_ms u64][id16]   -> queue name
 *   reserved      [reserved_until_ms u64][id16] -> queue name
 *   results       id16                          -> JobRecord (DONE, no payload;
 *                                                  or the DONE or FAILED
 *                                                  outcome of a job of this
 *                                                  node run elsewhere)
 *   results_time  [kept_from_ms u64][id16]      -> (empty)
 *   failed        id16                          -> JobRecord (FAILED)
 *   meta          "schema"                      -> u32 STORE_SCHEMA_VERSION
 *                 "next_seq"                    -> u64 (seq and lease counter)
 *                 "totals/" queue               -> [done u64][failed u64]
 *                 "paused/" queue               -> (empty): a paused queue
 *
 * kept_from_ms is a result's finished_at_ms, or for an outcome from another
 * node (store_result_put) when it arrived; store_prune_results counts the
 * TTL from it. failed totals count the jobs in the failed DB now (retry,
 * forget, flush and prune take them out); done totals only grow.
 *
 * No schema bump for later additions that older code reads well enough:
 * "paused/" keys (stores made before have none, older code skips them),
 * JobRecord.origin (older code ignores it) and FAILED outcomes in results
 * (older code reports them DONE until they are pruned).
 *
 * Index values carry the queue (and the ready head's age) so that store_open
 * rebuilds the counters from the indexes alone, without decoding records. */
#ifndef STORE_KEYS_H
#define STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/bytes.h"
#include "store/store.h"

enum keys_db {
    KEYS_DB_JOBS,
    KEYS_DB_READY,
    KEYS_DB_DELAYED,
    KEYS_DB_RESERVED,
    KEYS_DB_RESULTS,
    KEYS_DB_RESULTS_TIME,
    KEYS_DB_FAILED,
    KEYS_DB_META,
    KEYS_DB_UNIQUE, /* unique key -> holder id (16) | until_ms (8) */
    KEYS_DB_N,
};

#define KEYS_DB_NAMES                                                          \
    {                                                                          \
        "jobs", "ready", "delayed", "reserved", "results", "results_time",     \
            "failed", "meta", "unique"                                         \
    }

#define KEYS_ID_LEN 16
#define KEYS_TIME_LEN (8 + KEYS_ID_LEN)          /* delayed, reserved, ... */
#define KEYS_READY_MAX (1 + STORE_QUEUE_MAX + 8) /* ready key */
#define KEYS_READY_VAL_LEN (KEYS_ID_LEN + 8)     /* ready value */
#define KEYS_TOTALS_VAL_LEN 16
#define KEYS_META_SCHEMA "schema"
#define KEYS_META_NEXT_SEQ "next_seq"
#define KEYS_META_TOTALS "totals/"
#define KEYS_META_TOTALS_LEN (sizeof(KEYS_META_TOTALS) - 1)
#define KEYS_META_PAUSED "paused/"
#define KEYS_META_PAUSED_LEN (sizeof(KEYS_META_PAUSED) - 1)
#define KEYS_META_MAX (KEYS_META_TOTALS_LEN + STORE_QUEUE_MAX)
_Static_assert(KEYS_META_PAUSED_LEN <= KEYS_META_TOTALS_LEN,
               "paused keys fit KEYS_META_MAX");

_Static_assert(sizeof(cadre_job_id) == KEYS_ID_LEN, "ids are 16 bytes");
_Static_assert(STORE_QUEUE_MAX <= UINT8_MAX, "queue length fits a u8");
/* 511 is LMDB's default MDB_MAXKEYSIZE (mdb_env_get_maxkeysize). */
_Static_assert(KEYS_READY_MAX <= 511, "ready keys fit LMDB's key limit");
_Static_assert(KEYS_META_MAX <= 511, "meta keys fit LMDB's key limit");
_Static_assert(KEYS_TIME_LEN == 24, "time keys are [u64][id16]");

/* Writes the ready key of (queue, seq) into k (KEYS_READY_MAX bytes);
 * returns its length. qlen <= STORE_QUEUE_MAX. */
static inline size_t
keys_ready(uint8_t *k, const char *queue, size_t qlen, uint64_t seq)
{
    k[0] = (uint8_t)qlen;
    memcpy(k + 1, queue, qlen);
    cd_put_u64be(k + 1 + qlen, seq);
    return 1 + qlen + 8;
}

/* Writes the prefix of all ready keys of queue into k; returns its length. */
static inline size_t
keys_ready_prefix(uint8_t *k, const char *queue, size_t qlen)
{
    k[0] = (uint8_t)qlen;
    memcpy(k + 1, queue, qlen);
    return 1 + qlen;
}

/* Writes a [time][id] key into k (KEYS_TIME_LEN bytes). */
static inline void
keys_time(uint8_t *k, uint64_t t, const cadre_job_id *id)
{
    cd_put_u64be(k, t);
    memcpy(k + 8, id->b, KEYS_ID_LEN);
}

/* Writes a ready value into v (KEYS_READY_VAL_LEN bytes). */
static inline void
keys_ready_val(uint8_t *v, const cadre_job_id *id, uint64_t created_at_ms)
{
    memcpy(v, id->b, KEYS_ID_LEN);
    cd_put_u64be(v + KEYS_ID_LEN, created_at_ms);
}

/* Writes the meta key of queue's totals into k (KEYS_META_MAX bytes);
 * returns its length. */
static inline size_t
keys_totals(uint8_t *k, const char *queue, size_t qlen)
{
    memcpy(k, KEYS_META_TOTALS, KEYS_META_TOTALS_LEN);
    memcpy(k + KEYS_META_TOTALS_LEN, queue, qlen);
    return KEYS_META_TOTALS_LEN + qlen;
}

/* Writes the meta key marking queue paused into k (KEYS_META_MAX bytes);
 * returns its length. */
static inline size_t
keys_paused(uint8_t *k, const char *queue, size_t qlen)
{
    memcpy(k, KEYS_META_PAUSED, KEYS_META_PAUSED_LEN);
    memcpy(k + KEYS_META_PAUSED_LEN, queue, qlen);
    return KEYS_META_PAUSED_LEN + qlen;
}

#endif
