/* store.c: the node's durable state in one LMDB environment (layout in
 * store/keys.h): the environment and its transactions, job records and
 * their indexes, results and failed jobs, and the in-memory per-queue
 * counters (store/queues.h) kept in step with every write.
 *
 * Every LMDB error is translated here into a CADRE_E* code, with the LMDB
 * text kept in the message. No policy (retries, backoff) and no clock: times
 * come from the caller. */
#include "store/store.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/id.h"
#include "common/log.h"
#include "proto/record.h"
#include "store/internal.h"
#include "store/keys.h"
#include "store/queues.h"

#define STORE_MAP_MB_DEFAULT 4096
#define STORE_RESULT_TTL_MS_DEFAULT (3600u * 1000u)
#define STORE_MAXREADERS 126
#define STORE_QUEUE_DEFAULT "default"

struct store_txn {
    store      *s;
    MDB_txn    *txn;
    MDB_cursor *cur[KEYS_DB_N]; /* opened on first use, closed at the end */
    int         rdonly;
    /* Write txn: the first error that may have left an operation half
     * written. Later operations and commit return it; only abort is left. */
    int  failed_code;
    char failed_msg[CD_ERR_MSG_MAX];
};

struct store {
    MDB_env         *env;
    MDB_dbi          dbi[KEYS_DB_N];
    char            *dir;
    size_t           map_size_mb;
    uint64_t         result_ttl_ms;
    uint64_t         next_seq; /* next seq or lease to hand out; never 0 */
    uint64_t         next_seq_at_begin;
    uint64_t         lent; /* RESERVED jobs with lent_to set (store_lent) */
    uint64_t         lent_at_begin;
    struct queues    queues;
    struct store_txn wtxn; /* the write txn, while wtxn_open */
    int              wtxn_open;
};

static const char *const store_db_names[KEYS_DB_N] = KEYS_DB_NAMES;

/* ---- errors ------------------------------------------------------------ */

static int
store_mdb_code(int rc)
{
    switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
    case ENOSPC:
    case EDQUOT:
        return CADRE_EFULL;
    case ENOMEM:
        return CADRE_ENOMEM;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_PAGE_NOTFOUND:
    case MDB_INCOMPATIBLE:
        return CADRE_ECORRUPT;
    case MDB_READERS_FULL:
        return CADRE_EBUSY;
    default:
        return CADRE_EIO;
    }
}

/* Sets err from an LMDB return code (an MDB_* or errno value):
 * "<fn>[ <db>]: <mdb_strerror text>". Returns the CADRE_E* code. */
int
store_mdb_err(const store *s, cd_err *err, int rc, const char *fn, int db)
{
    int code = store_mdb_code(rc);

    if (code == CADRE_EFULL)
        CD_LOG_WARN("store", "STORE-FULL",
                    "dir=%s map_mb=%zu fn=%s error=\"%s\"", s->dir,
                    s->map_size_mb, fn, mdb_strerror(rc));
    return cd_err_set(err, code, "%s%s%s: %s", fn, db >= 0 ? " " : "",
                      db >= 0 ? store_db_names[db] : "", mdb_strerror(rc));
}

/* Records that the write txn t can no longer commit (see failed_code) and
 * returns code. Errors of read txns and "not found"/"invalid" answers, which
 * the operations give before writing anything, do not count. */
int
store_fail(store_txn *t, cd_err *err, int code)
{
    if (t->rdonly || code == CADRE_ENOTFOUND || code == CADRE_EINVAL ||
        t->failed_code != CADRE_OK)
        return code;
    t->failed_code = code;
    if (err != NULL)
        memcpy(t->failed_msg, err->msg, sizeof(t->failed_msg));
    else
        snprintf(t->failed_msg, sizeof(t->failed_msg), "%s",
                 cadre_strerror(code));
    return code;
}

/* Checks that t may write: a write txn that has not failed. */
int
store_writable(store_txn *t, cd_err *err)
{
    if (t->rdonly)
        return cd_err_set(err, CADRE_EINVAL, "read-only transaction");
    if (t->failed_code != CADRE_OK)
        return cd_err_set(err, t->failed_code, "transaction failed earlier: %s",
                          t->failed_msg);
    return CADRE_OK;
}

/* Wraps err with "store: <what>" and returns code (also when err is NULL). */
int
store_wrap(cd_err *err, int code, const char *what)
{
    if (err != NULL)
        cd_err_wrap(err, "store: %s", what);
    return code;
}

/* Wraps err with "store: <what> <uuid>" and returns its code. */
int
store_wrap_id(cd_err *err, int code, const char *what, const cadre_job_id *id)
{
    char text[CD_ID_TEXT_LEN + 1];

    if (err == NULL)
        return code;
    cadre_job_id_format(id, text);
    cd_err_wrap(err, "store: %s %s", what, text);
    return code;
}

/* ---- job records ------------------------------------------------------- */

void
store_job_fini(struct store_job *job)
{
    if (job == NULL)
        return;
    cd_free(job->task);
    cd_free(job->queue);
    cd_free(job->payload);
    cd_free(job->opts.backoff_s);
    cd_free(job->error_type);
    cd_free(job->error);
    cd_free(job->result);
    cd_free(job->unique_key);
    cd_free(job->lent_to);
    cd_free(job->origin);
    cd_free(job->schedule);
    cd_free(job->opts.mw.rate_key);
    cd_free(job->opts.mw.overlap_key);
    cd_free(job->opts.mw.exc_key);
    memset(job, 0, sizeof(*job));
}

/* Fills r to describe job in queue (borrows job's pointers). */
void
store_to_record(const struct store_job *job, const char *queue,
                struct record_job *r)
{
    memset(r, 0, sizeof(*r));
    r->id = job->id;
    r->task = job->task;
    r->queue = queue;
    r->payload = job->payload;
    r->payload_len = job->payload != NULL ? job->payload_len : 0;
    r->tries = job->opts.tries;
    r->backoff_s = job->opts.backoff_s;
    r->backoff_n = job->opts.backoff_s != NULL ? job->opts.backoff_n : 0;
    r->retry_until_ms = job->opts.retry_until_ms;
    r->max_exceptions = job->opts.max_exceptions;
    r->timeout_ms = job->opts.timeout_ms;
    r->retry_after_ms = job->opts.retry_after_ms;
    r->state = (uint32_t)job->state;
    r->attempts = job->attempts;
    r->exceptions = job->exceptions;
    r->seq = job->seq;
    r->created_at_ms = job->created_at_ms;
    r->available_at_ms = job->available_at_ms;
    r->reserved_until_ms = job->reserved_until_ms;
    r->lease = job->lease;
    r->finished_at_ms = job->finished_at_ms;
    r->error_type = job->error_type;
    r->error = job->error;
    r->result = job->result;
    r->result_len = job->result != NULL ? job->result_len : 0;
    r->unique_key = job->unique_key;
    r->unique_until_ms = job->unique_until_ms;
    r->unique_until_processing = job->unique_until_processing;
    r->lent_to = job->lent_to;
    r->origin = job->origin;
    r->schedule = job->schedule;
    r->slot_s = job->slot_s;
    r->mw =
        (struct msg_middleware){.rate_key = job->opts.mw.rate_key,
                                .rate_limit = job->opts.mw.rate_limit,
                                .rate_per_ms = job->opts.mw.rate_per_ms,
                                .overlap_key = job->opts.mw.overlap_key,
                                .overlap_ttl_ms = job->opts.mw.overlap_ttl_ms,
                                .exc_key = job->opts.mw.exc_key,
                                .exc_limit = job->opts.mw.exc_limit,
                                .exc_per_ms = job->opts.mw.exc_per_ms};
}

/* An owned copy of a middleware key: NULL for none. Returns -1 out of
 * memory. */
static int
store_mw_key(const char *in, char **out)
{
    *out = NULL;
    if (in == NULL || in[0] == '\0')
        return 0;
    *out = cd_strdup(in);
    return *out == NULL ? -1 : 0;
}

static int
store_mw_from_record(const struct msg_middleware *in, struct store_mw *out)
{
    out->rate_limit = in->rate_limit;
    out->rate_per_ms = in->rate_per_ms;
    out->overlap_ttl_ms = in->overlap_ttl_ms;
    out->exc_limit = in->exc_limit;
    out->exc_per_ms = in->exc_per_ms;
    return store_mw_key(in->rate_key, &out->rate_key) != 0 ||
                   store_mw_key(in->overlap_key, &out->overlap_key) != 0 ||
                   store_mw_key(in->exc_key, &out->exc_key) != 0
               ? -1
               : 0;
}

/* Copies the decoded record r into *out (owned copies; empty error strings
 * and empty byte fields become NULL). Returns CADRE_ENOMEM (out zeroed). */
int
store_from_record(const struct record_job *r, struct store_job *out,
                  cd_err *err)
{
    memset(out, 0, sizeof(*out));
    out->id = r->id;
    out->task = cd_strdup(r->task);
    out->queue = cd_strdup(r->queue);
    if (out->task == NULL || out->queue == NULL)
        goto nomem;
    if (r->payload_len > 0) {
        out->payload = cd_memdup(r->payload, r->payload_len);
        if (out->payload == NULL)
            goto nomem;
        out->payload_len = r->payload_len;
    }
    if (r->backoff_n > 0) {
        out->opts.backoff_s =
            cd_memdup(r->backoff_s, r->backoff_n * sizeof(*r->backoff_s));
        if (out->opts.backoff_s == NULL)
            goto nomem;
        out->opts.backoff_n = r->backoff_n;
    }
    if (r->error_type[0] != '\0' &&
        (out->error_type = cd_strdup(r->error_type)) == NULL)
        goto nomem;
    if (r->error[0] != '\0' && (out->error = cd_strdup(r->error)) == NULL)
        goto nomem;
    if (r->result_len > 0) {
        out->result = cd_memdup(r->result, r->result_len);
        if (out->result == NULL)
            goto nomem;
        out->result_len = r->result_len;
    }
    out->opts.tries = r->tries;
    out->opts.retry_until_ms = r->retry_until_ms;
    out->opts.max_exceptions = r->max_exceptions;
    out->opts.timeout_ms = r->timeout_ms;
    out->opts.retry_after_ms = r->retry_after_ms;
    out->state = (int)r->state;
    out->attempts = r->attempts;
    out->exceptions = r->exceptions;
    out->seq = r->seq;
    out->created_at_ms = r->created_at_ms;
    out->available_at_ms = r->available_at_ms;
    out->reserved_until_ms = r->reserved_until_ms;
    out->lease = r->lease;
    out->finished_at_ms = r->finished_at_ms;
    if (r->unique_key != NULL && r->unique_key[0] != '\0' &&
        (out->unique_key = cd_strdup(r->unique_key)) == NULL)
        goto nomem;
    out->unique_until_ms = r->unique_until_ms;
    out->unique_until_processing = r->unique_until_processing;
    if (r->lent_to != NULL && r->lent_to[0] != '\0' &&
        (out->lent_to = cd_strdup(r->lent_to)) == NULL)
        goto nomem;
    if (r->origin != NULL && r->origin[0] != '\0' &&
        (out->origin = cd_strdup(r->origin)) == NULL)
        goto nomem;
    if (r->schedule != NULL && r->schedule[0] != '\0' &&
        (out->schedule = cd_strdup(r->schedule)) == NULL)
        goto nomem;
    out->slot_s = r->slot_s;
    if (store_mw_from_record(&r->mw, &out->opts.mw) != 0)
        goto nomem;
    return CADRE_OK;

nomem:
    store_job_fini(out);
    return cd_err_set(err, CADRE_ENOMEM, "copy job record");
}

/* The queue name a job is stored under: "default" for NULL or "". Returns
 * CADRE_EINVAL if it is longer than STORE_QUEUE_MAX. */
int
store_queue_name(const char *queue, const char **name, size_t *len, cd_err *err)
{
    size_t n;

    if (queue == NULL || queue[0] == '\0')
        queue = STORE_QUEUE_DEFAULT;
    n = strnlen(queue, STORE_QUEUE_MAX + 1);
    if (n > STORE_QUEUE_MAX)
        return cd_err_set(err, CADRE_EINVAL, "queue name longer than %d bytes",
                          STORE_QUEUE_MAX);
    *name = queue;
    *len = n;
    return CADRE_OK;
}

/* ---- LMDB helpers ------------------------------------------------------ */

/* The txn's cursor on db, opened on first use. Every user positions it
 * afresh: helpers share it. */
int
store_cursor(store_txn *t, int db, MDB_cursor **out, cd_err *err)
{
    int rc;

    if (t->cur[db] == NULL) {
        rc = mdb_cursor_open(t->txn, t->s->dbi[db], &t->cur[db]);
        if (rc != 0) {
            t->cur[db] = NULL;
            return store_mdb_err(t->s, err, rc, "mdb_cursor_open", db);
        }
    }
    *out = t->cur[db];
    return CADRE_OK;
}

static void
store_cursors_close(store_txn *t)
{
    for (int i = 0; i < KEYS_DB_N; i++) {
        if (t->cur[i] != NULL)
            mdb_cursor_close(t->cur[i]);
        t->cur[i] = NULL;
    }
}

/* Hands out the next seq/lease number (persisted at commit). */
uint64_t
store_next(store *s)
{
    return s->next_seq++;
}

/* Reads and decodes the record of id in db. Returns CADRE_ENOTFOUND,
 * CADRE_ECORRUPT, CADRE_ENOMEM, CADRE_EIO. The caller frees *r with
 * record_job_free on success. */
int
store_read(store_txn *t, int db, const cadre_job_id *id, struct record_job *r,
           cd_err *err)
{
    MDB_val k = {KEYS_ID_LEN, (void *)id->b};
    MDB_val v;
    int     rc = mdb_get(t->txn, t->s->dbi[db], &k, &v);

    if (rc == MDB_NOTFOUND)
        return cd_err_set(err, CADRE_ENOTFOUND, "not in %s",
                          store_db_names[db]);
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_get", db);
    rc = record_job_unpack(v.mv_data, v.mv_size, r, err);
    if (rc == CADRE_ECORRUPT)
        cd_err_wrap(err, "%s", store_db_names[db]);
    return rc;
}

/* Returns whether id has a record in db (CADRE_OK: *found set). */
int
store_has(store_txn *t, int db, const cadre_job_id *id, int *found, cd_err *err)
{
    MDB_val k = {KEYS_ID_LEN, (void *)id->b};
    MDB_val v;
    int     rc = mdb_get(t->txn, t->s->dbi[db], &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_mdb_err(t->s, err, rc, "mdb_get", db);
    *found = rc == 0;
    return CADRE_OK;
}

/* Encodes r straight into the LMDB page (MDB_RESERVE) under r->id in db.
 * With MDB_NOOVERWRITE in flags, *exists (if not NULL) reports a record
 * already there, which is then left alone. */
int
store_write(store_txn *t, int db, const struct record_job *r, unsigned flags,
            int *exists, cd_err *err)
{
    MDB_val k = {KEYS_ID_LEN, (void *)r->id.b};
    MDB_val v = {record_job_size(r), NULL};
    int     rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, flags | MDB_RESERVE);

    if (exists != NULL)
        *exists = rc == MDB_KEYEXIST;
    if (rc == MDB_KEYEXIST && exists != NULL)
        return CADRE_OK;
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_put", db);
    record_job_pack(r, v.mv_data);
    return CADRE_OK;
}

/* Puts the ready entry of (queue, *seq) -> (id, created_at_ms). Should the
 * seq be taken (a caller-kept seq, or a damaged counter), a fresh one is
 * used and *seq changes. */
static int
store_ready_put(store_txn *t, const char *q, size_t qlen, uint64_t *seq,
                const cadre_job_id *id, uint64_t created_at_ms, cd_err *err)
{
    uint8_t kb[KEYS_READY_MAX];
    uint8_t vb[KEYS_READY_VAL_LEN];
    MDB_val k, v = {sizeof(vb), vb};
    int     rc;

    keys_ready_val(vb, id, created_at_ms);
    for (;;) {
        k.mv_size = keys_ready(kb, q, qlen, *seq);
        k.mv_data = kb;
        rc = mdb_put(t->txn, t->s->dbi[KEYS_DB_READY], &k, &v, MDB_NOOVERWRITE);
        if (rc != MDB_KEYEXIST)
            break;
        *seq = store_next(t->s);
    }
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_put", KEYS_DB_READY);
    return CADRE_OK;
}

/* Puts a [time][id] -> value entry into db. */
int
store_time_put(store_txn *t, int db, uint64_t time, const cadre_job_id *id,
               const void *val, size_t val_len, cd_err *err)
{
    uint8_t kb[KEYS_TIME_LEN];
    MDB_val k = {sizeof(kb), kb};
    MDB_val v = {val_len, (void *)val};
    int     rc;

    keys_time(kb, time, id);
    rc = mdb_put(t->txn, t->s->dbi[db], &k, &v, 0);
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_put", db);
    return CADRE_OK;
}

/* Deletes key from db; a missing key is logged (an index out of step with
 * its record) and not an error, so that one damaged entry cannot block the
 * jobs behind it. */
int
store_del(store_txn *t, int db, const void *key, size_t key_len, cd_err *err)
{
    MDB_val k = {key_len, (void *)key};
    int     rc = mdb_del(t->txn, t->s->dbi[db], &k, NULL);

    if (rc == MDB_NOTFOUND) {
        CD_LOG_WARN("store", "STORE-INDEX", "missing entry db=%s key_len=%zu",
                    store_db_names[db], key_len);
        return CADRE_OK;
    }
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_del", db);
    return CADRE_OK;
}

/* Deletes the index entry of a pending job described by r (its stored
 * state, queue, seq and times). */
static int
store_index_del(store_txn *t, const struct record_job *r, const char *q,
                size_t qlen, cd_err *err)
{
    uint8_t kb[KEYS_READY_MAX];

    switch (r->state) {
    case STORE_READY:
        return store_del(t, KEYS_DB_READY, kb, keys_ready(kb, q, qlen, r->seq),
                         err);
    case STORE_DELAYED:
        keys_time(kb, r->available_at_ms, &r->id);
        return store_del(t, KEYS_DB_DELAYED, kb, KEYS_TIME_LEN, err);
    case STORE_RESERVED:
        keys_time(kb, r->reserved_until_ms, &r->id);
        return store_del(t, KEYS_DB_RESERVED, kb, KEYS_TIME_LEN, err);
    default:
        return cd_err_set(err, CADRE_ECORRUPT, "pending record in state %u",
                          r->state);
    }
}

/* Re-reads the head (first ready entry) of a queue after it left. */
int
store_head_refresh(store_txn *t, const char *q, size_t qlen,
                   struct queues_counts *c, cd_err *err)
{
    uint8_t     pb[KEYS_READY_MAX];
    size_t      plen = keys_ready_prefix(pb, q, qlen);
    MDB_val     k = {plen, pb}, v;
    MDB_cursor *cur = NULL;
    int         rc;

    if (c->ready == 0)
        return CADRE_OK;
    rc = store_cursor(t, KEYS_DB_READY, &cur, err);
    if (rc != CADRE_OK)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_mdb_err(t->s, err, rc, "mdb_cursor_get", KEYS_DB_READY);
    if (rc == 0 && k.mv_size == plen + 8 && memcmp(k.mv_data, pb, plen) == 0 &&
        v.mv_size == KEYS_READY_VAL_LEN) {
        c->head_seq = cd_get_u64be((const uint8_t *)k.mv_data + plen);
        c->head_created_at_ms =
            cd_get_u64be((const uint8_t *)v.mv_data + KEYS_ID_LEN);
    }
    return CADRE_OK;
}

/* Counts a job of queue q entering (delta > 0) or leaving a state, keeping
 * the ready head: a job entering READY ahead of the head becomes the head;
 * the head leaving READY makes the next one the head (re-read now when
 * refresh, else the caller calls store_head_refresh). */
int
store_count(store_txn *t, const char *q, size_t qlen, int state, int delta,
            uint64_t seq, uint64_t created_at_ms, int refresh, cd_err *err)
{
    struct queues_counts *c;
    uint64_t             *n;

    if (queues_edit(&t->s->queues, q, qlen, &c) != CADRE_OK)
        return cd_err_set(err, CADRE_ENOMEM, "queue counters");
    switch (state) {
    case STORE_READY:
        n = &c->ready;
        break;
    case STORE_DELAYED:
        n = &c->delayed;
        break;
    case STORE_RESERVED:
        n = &c->reserved;
        break;
    case STORE_DONE:
        n = &c->done;
        break;
    default:
        n = &c->failed;
        break;
    }
    if (delta < 0) {
        if (*n > 0)
            (*n)--;
        if (state == STORE_READY && seq == c->head_seq && refresh)
            return store_head_refresh(t, q, qlen, c, err);
        return CADRE_OK;
    }
    if (state == STORE_READY && (c->ready == 0 || seq < c->head_seq)) {
        c->head_seq = seq;
        c->head_created_at_ms = created_at_ms;
    }
    (*n)++;
    return CADRE_OK;
}

/* Counts a job entering (delta > 0) or leaving the lent set: RESERVED
 * records with lent_to set. Saturates at 0, like store_count, so that a
 * damaged record cannot wrap the counter. */
void
store_lent_count(store_txn *t, int state, const char *lent_to, int delta)
{
    if (state != STORE_RESERVED || lent_to == NULL || lent_to[0] == '\0')
        return;
    if (delta > 0)
        t->s->lent++;
    else if (t->s->lent > 0)
        t->s->lent--;
}

/* ---- environment ------------------------------------------------------- */

/* Checks the schema version; writes it into a new environment. */
static int
store_schema(store *s, MDB_txn *txn, cd_err *err)
{
    MDB_val  k = {sizeof(KEYS_META_SCHEMA) - 1, KEYS_META_SCHEMA};
    MDB_val  v;
    MDB_stat st;
    uint8_t  vb[4];
    uint32_t version;
    int      rc = mdb_get(txn, s->dbi[KEYS_DB_META], &k, &v);

    if (rc == MDB_NOTFOUND) {
        rc = mdb_stat(txn, s->dbi[KEYS_DB_JOBS], &st);
        if (rc != 0)
            return store_mdb_err(s, err, rc, "mdb_stat", KEYS_DB_JOBS);
        if (st.ms_entries > 0)
            return cd_err_set(err, CADRE_ECORRUPT,
                              "jobs but no schema version");
        cd_put_u32be(vb, STORE_SCHEMA_VERSION);
        v.mv_size = sizeof(vb);
        v.mv_data = vb;
        rc = mdb_put(txn, s->dbi[KEYS_DB_META], &k, &v, 0);
        if (rc != 0)
            return store_mdb_err(s, err, rc, "mdb_put", KEYS_DB_META);
        return CADRE_OK;
    }
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_get", KEYS_DB_META);
    if (v.mv_size != sizeof(vb))
        return cd_err_set(err, CADRE_ECORRUPT, "schema version of %zu bytes",
                          v.mv_size);
    version = cd_get_u32be(v.mv_data);
    if (version > STORE_SCHEMA_VERSION)
        return cd_err_set(err, CADRE_EVERSION,
                          "schema version %u is newer than this cadre's %d",
                          version, STORE_SCHEMA_VERSION);
    /* Migrations from older versions go here (see store.h). */
    if (version < 1)
        return cd_err_set(err, CADRE_ECORRUPT, "schema version %u", version);
    return CADRE_OK;
}

/* Counts the entries of a [time][id] -> queue index into the queues. */
static int
store_load_times(store *s, MDB_txn *txn, int db, cd_err *err)
{
    MDB_cursor *cur = NULL;
    MDB_val     k, v;
    int         rc;
    int         op = MDB_FIRST;

    rc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_cursor_open", db);
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct queues_counts *c;

        op = MDB_NEXT;
        if (k.mv_size != KEYS_TIME_LEN || v.mv_size == 0 ||
            v.mv_size > STORE_QUEUE_MAX) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "%s: bad entry",
                            store_db_names[db]);
            goto out;
        }
        if (queues_edit(&s->queues, v.mv_data, v.mv_size, &c) != CADRE_OK) {
            rc = cd_err_set(err, CADRE_ENOMEM, "queue counters");
            goto out;
        }
        if (db == KEYS_DB_DELAYED)
            c->delayed++;
        else
            c->reserved++;
    }
    if (rc != MDB_NOTFOUND) {
        rc = store_mdb_err(s, err, rc, "mdb_cursor_get", db);
        goto out;
    }
    rc = CADRE_OK;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Whether the pending record of id is lent out (*lent). Unreadable
 * records count as not lent: store_expired drops their entries later. */
static int
store_load_is_lent(store *s, MDB_txn *txn, const uint8_t *id, int *lent,
                   cd_err *err)
{
    struct record_job r;
    MDB_val           k = {KEYS_ID_LEN, (void *)id}, v;
    int               rc = mdb_get(txn, s->dbi[KEYS_DB_JOBS], &k, &v);

    *lent = 0;
    if (rc == MDB_NOTFOUND)
        return CADRE_OK;
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_get", KEYS_DB_JOBS);
    rc = record_job_unpack(v.mv_data, v.mv_size, &r, err);
    if (rc == CADRE_ECORRUPT)
        return CADRE_OK;
    if (rc != CADRE_OK)
        return rc;
    *lent = r.state == STORE_RESERVED && r.lent_to[0] != '\0';
    record_job_free(&r);
    return CADRE_OK;
}

/* Counts the lent jobs (store_lent). Unlike the other counters this reads
 * records: the reserved index does not say whether a job is lent, and
 * saying so there would change the layout (keys.h). Reserved jobs are the
 * ones in flight, so there are few. */
static int
store_load_lent(store *s, MDB_txn *txn, cd_err *err)
{
    MDB_cursor *cur = NULL;
    MDB_val     k, v;
    int         op = MDB_FIRST;
    int         lent = 0;
    int         rc = mdb_cursor_open(txn, s->dbi[KEYS_DB_RESERVED], &cur);

    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_cursor_open", KEYS_DB_RESERVED);
    s->lent = 0;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != KEYS_TIME_LEN) /* store_load_times checked it */
            continue;
        rc = store_load_is_lent(s, txn, (const uint8_t *)k.mv_data + 8, &lent,
                                err);
        if (rc != CADRE_OK)
            goto out;
        s->lent += (uint64_t)lent;
    }
    if (rc != MDB_NOTFOUND) {
        rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_RESERVED);
        goto out;
    }
    rc = CADRE_OK;
out:
    mdb_cursor_close(cur);
    return rc;
}

/* Rebuilds the counters from the indexes and reads next_seq. */
static int
store_load(store *s, MDB_txn *txn, cd_err *err)
{
    MDB_cursor *cur = NULL;
    MDB_val     k = {sizeof(KEYS_META_NEXT_SEQ) - 1, KEYS_META_NEXT_SEQ};
    MDB_val     v;
    uint64_t    max_seq = 0;
    int         rc;
    int         op = MDB_FIRST;

    rc = mdb_get(txn, s->dbi[KEYS_DB_META], &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_mdb_err(s, err, rc, "mdb_get", KEYS_DB_META);
    s->next_seq = 1;
    if (rc == 0) {
        if (v.mv_size != 8)
            return cd_err_set(err, CADRE_ECORRUPT, "next_seq of %zu bytes",
                              v.mv_size);
        s->next_seq = cd_get_u64be(v.mv_data);
    }

    /* ready: keys sorted by queue then seq, so a queue's first is its
     * head. */
    rc = mdb_cursor_open(txn, s->dbi[KEYS_DB_READY], &cur);
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_cursor_open", KEYS_DB_READY);
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        const uint8_t        *kp = k.mv_data;
        struct queues_counts *c;
        uint64_t              seq;

        op = MDB_NEXT;
        if (k.mv_size < 9 || kp[0] > STORE_QUEUE_MAX ||
            k.mv_size != 1u + kp[0] + 8 || v.mv_size != KEYS_READY_VAL_LEN) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "ready: bad entry");
            goto out;
        }
        if (queues_edit(&s->queues, (const char *)kp + 1, kp[0], &c) !=
            CADRE_OK) {
            rc = cd_err_set(err, CADRE_ENOMEM, "queue counters");
            goto out;
        }
        seq = cd_get_u64be(kp + 1 + kp[0]);
        if (c->ready++ == 0) {
            c->head_seq = seq;
            c->head_created_at_ms =
                cd_get_u64be((const uint8_t *)v.mv_data + KEYS_ID_LEN);
        }
        if (seq > max_seq)
            max_seq = seq;
    }
    if (rc != MDB_NOTFOUND) {
        rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_READY);
        goto out;
    }
    mdb_cursor_close(cur);
    cur = NULL;
    /* Belt and braces: never hand out a seq already in the index. */
    if (s->next_seq <= max_seq)
        s->next_seq = max_seq + 1;
    if (s->next_seq == 0)
        s->next_seq = 1;

    rc = store_load_times(s, txn, KEYS_DB_DELAYED, err);
    if (rc == CADRE_OK)
        rc = store_load_times(s, txn, KEYS_DB_RESERVED, err);
    if (rc == CADRE_OK)
        rc = store_load_lent(s, txn, err);
    if (rc != CADRE_OK)
        return rc;

    /* Totals: meta "totals/<queue>". */
    rc = mdb_cursor_open(txn, s->dbi[KEYS_DB_META], &cur);
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_cursor_open", KEYS_DB_META);
    k.mv_size = KEYS_META_TOTALS_LEN;
    k.mv_data = KEYS_META_TOTALS;
    op = MDB_SET_RANGE;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct queues_counts *c;
        size_t                qlen = k.mv_size - KEYS_META_TOTALS_LEN;

        op = MDB_NEXT;
        if (k.mv_size < KEYS_META_TOTALS_LEN ||
            memcmp(k.mv_data, KEYS_META_TOTALS, KEYS_META_TOTALS_LEN) != 0)
            break;
        if (qlen == 0 || qlen > STORE_QUEUE_MAX ||
            v.mv_size != KEYS_TOTALS_VAL_LEN) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "meta: bad totals entry");
            goto out;
        }
        if (queues_edit(&s->queues,
                        (const char *)k.mv_data + KEYS_META_TOTALS_LEN, qlen,
                        &c) != CADRE_OK) {
            rc = cd_err_set(err, CADRE_ENOMEM, "queue counters");
            goto out;
        }
        c->done = cd_get_u64be(v.mv_data);
        c->failed = cd_get_u64be((const uint8_t *)v.mv_data + 8);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_META);
        goto out;
    }
    rc = CADRE_OK;
out:
    mdb_cursor_close(cur);
    return rc;
}

static const char *
store_sync_name(int sync)
{
    return sync == STORE_SYNC_FULL     ? "full"
           : sync == STORE_SYNC_NORMAL ? "normal"
                                       : "off";
}

int
store_open(const struct store_config *cfg, store **out, cd_err *err)
{
    store   *s = NULL;
    MDB_txn *txn = NULL;
    unsigned flags = MDB_NOTLS;
    uint64_t pending = 0;
    int      dead = 0;
    int      rc;

    if (cfg == NULL || cfg->dir == NULL)
        return cd_err_set(err, CADRE_EINVAL, "open store: no directory");
    switch (cfg->sync) {
    case STORE_SYNC_FULL:
        break;
    case STORE_SYNC_NORMAL:
        flags |= MDB_NOMETASYNC;
        break;
    case STORE_SYNC_OFF:
        flags |= MDB_NOSYNC;
        break;
    default:
        return cd_err_set(err, CADRE_EINVAL, "open store %s: bad sync %d",
                          cfg->dir, cfg->sync);
    }
    s = cd_calloc(1, sizeof(*s));
    if (s == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "open store %s", cfg->dir);
    queues_init(&s->queues);
    s->dir = cd_strdup(cfg->dir);
    if (s->dir == NULL) {
        rc = cd_err_set(err, CADRE_ENOMEM, "strdup");
        goto fail_free;
    }
    s->map_size_mb = cfg->map_size_mb ? cfg->map_size_mb : STORE_MAP_MB_DEFAULT;
    s->result_ttl_ms =
        cfg->result_ttl_ms ? cfg->result_ttl_ms : STORE_RESULT_TTL_MS_DEFAULT;
    if (s->map_size_mb > SIZE_MAX >> 20) {
        rc = cd_err_set(err, CADRE_EINVAL, "map size of %zu MiB",
                        s->map_size_mb);
        goto fail_free;
    }

    rc = mdb_env_create(&s->env);
    if (rc != 0) {
        s->env = NULL;
        rc = store_mdb_err(s, err, rc, "mdb_env_create", -1);
        goto fail_free;
    }
    if ((rc = mdb_env_set_maxdbs(s->env, KEYS_DB_N)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, STORE_MAXREADERS)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, s->map_size_mb << 20)) != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_env_set", -1);
        goto fail_env;
    }
    rc = mdb_env_open(s->env, s->dir, flags, 0600);
    if (rc != 0) {
        int code = store_mdb_code(rc);

        /* Not a full disk or busy slots here: the store cannot be opened. */
        if (code != CADRE_ECORRUPT && code != CADRE_ENOMEM)
            code = CADRE_EIO;
        rc = cd_err_set(err, code, "mdb_env_open: %s", mdb_strerror(rc));
        goto fail_env;
    }
    /* Slots of readers that died (kill -9) would pin old pages forever. */
    rc = mdb_reader_check(s->env, &dead);
    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_reader_check", -1);
        goto fail_env;
    }
    if (dead > 0)
        CD_LOG_NOTICE("store", "STORE-READERS",
                      "cleared stale reader slots dir=%s n=%d", s->dir, dead);

    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        txn = NULL;
        rc = store_mdb_err(s, err, rc, "mdb_txn_begin", -1);
        goto fail_env;
    }
    for (int i = 0; i < KEYS_DB_N; i++) {
        rc = mdb_dbi_open(txn, store_db_names[i], MDB_CREATE, &s->dbi[i]);
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_dbi_open", i);
            goto fail_txn;
        }
    }
    rc = store_schema(s, txn, err);
    if (rc == CADRE_OK)
        rc = store_load(s, txn, err);
    if (rc == CADRE_OK)
        rc = store_paused_load(s, txn, err); /* store/control.c */
    if (rc != CADRE_OK)
        goto fail_txn;
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_txn_commit", -1);
        goto fail_env;
    }

    for (size_t i = 0; i < s->queues.n; i++) {
        const struct queues_counts *c = &s->queues.v[i].c;

        pending += c->ready + c->delayed + c->reserved;
    }
    CD_LOG_INFO("store", "STORE-OPEN",
                "dir=%s map_mb=%zu sync=%s queues=%zu pending=%llu", s->dir,
                s->map_size_mb, store_sync_name(cfg->sync), s->queues.n,
                (unsigned long long)pending);
    *out = s;
    return CADRE_OK;

fail_txn:
    mdb_txn_abort(txn);
fail_env:
    mdb_env_close(s->env);
fail_free:
    cd_err_wrap(err, "open store %s", cfg->dir);
    queues_fini(&s->queues);
    cd_free(s->dir);
    cd_free(s);
    return rc;
}

void
store_close(store *s)
{
    if (s == NULL)
        return;
    if (s->wtxn_open)
        store_txn_abort(&s->wtxn);
    mdb_env_close(s->env);
    queues_fini(&s->queues);
    cd_free(s->dir);
    cd_free(s);
}

int
store_sync(store *s, cd_err *err)
{
    int rc = mdb_env_sync(s->env, 1);

    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_env_sync", -1);
        return store_wrap(err, rc, "sync");
    }
    return CADRE_OK;
}

/* ---- transactions ------------------------------------------------------ */

int
store_txn_begin(store *s, int rdonly, store_txn **out, cd_err *err)
{
    store_txn *t;
    int        rc;

    if (rdonly) {
        t = cd_calloc(1, sizeof(*t));
        if (t == NULL)
            return cd_err_set(err, CADRE_ENOMEM, "store: begin");
        t->s = s;
        t->rdonly = 1;
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->txn);
        if (rc != 0) {
            cd_free(t);
            rc = store_mdb_err(s, err, rc, "mdb_txn_begin", -1);
            return store_wrap(err, rc, "begin");
        }
        *out = t;
        return CADRE_OK;
    }
    if (s->wtxn_open)
        return cd_err_set(err, CADRE_EBUSY,
                          "store: begin: a write transaction is open");
    t = &s->wtxn;
    memset(t, 0, sizeof(*t));
    t->s = s;
    rc = mdb_txn_begin(s->env, NULL, 0, &t->txn);
    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_txn_begin", -1);
        return store_wrap(err, rc, "begin");
    }
    s->wtxn_open = 1;
    s->next_seq_at_begin = s->next_seq;
    s->lent_at_begin = s->lent;
    queues_begin(&s->queues);
    *out = t;
    return CADRE_OK;
}

/* Writes next_seq and the totals changed in the txn into meta. */
static int
store_meta_flush(store_txn *t, cd_err *err)
{
    store  *s = t->s;
    uint8_t kb[KEYS_META_MAX];
    uint8_t vb[KEYS_TOTALS_VAL_LEN];
    MDB_val k, v = {8, vb};
    int     rc;

    if (s->next_seq != s->next_seq_at_begin) {
        k.mv_size = sizeof(KEYS_META_NEXT_SEQ) - 1;
        k.mv_data = KEYS_META_NEXT_SEQ;
        cd_put_u64be(vb, s->next_seq);
        rc = mdb_put(t->txn, s->dbi[KEYS_DB_META], &k, &v, 0);
        if (rc != 0)
            return store_mdb_err(s, err, rc, "mdb_put", KEYS_DB_META);
    }
    for (size_t i = 0; i < s->queues.undo_n; i++) {
        const struct queues_undo  *u = &s->queues.undo[i];
        const struct queues_entry *e = &s->queues.v[u->idx];

        if (e->c.done == u->before.done && e->c.failed == u->before.failed)
            continue;
        k.mv_size = keys_totals(kb, e->name, e->name_len);
        k.mv_data = kb;
        cd_put_u64be(vb, e->c.done);
        cd_put_u64be(vb + 8, e->c.failed);
        v.mv_size = KEYS_TOTALS_VAL_LEN;
        rc = mdb_put(t->txn, s->dbi[KEYS_DB_META], &k, &v, 0);
        if (rc != 0)
            return store_mdb_err(s, err, rc, "mdb_put", KEYS_DB_META);
    }
    return CADRE_OK;
}

/* Ends the write txn's bookkeeping: keeps (committed) or restores the
 * counters. The MDB txn is already gone. */
static void
store_wtxn_end(store *s, int committed)
{
    if (committed) {
        queues_commit(&s->queues);
    } else {
        queues_rollback(&s->queues);
        s->next_seq = s->next_seq_at_begin;
        s->lent = s->lent_at_begin;
    }
    s->wtxn.txn = NULL;
    s->wtxn_open = 0;
}

int
store_txn_commit(store_txn *t, cd_err *err)
{
    store *s = t->s;
    int    rc;

    store_cursors_close(t);
    if (t->rdonly) {
        mdb_txn_abort(t->txn); /* a read txn has nothing to commit */
        cd_free(t);
        return CADRE_OK;
    }
    if (t->failed_code != CADRE_OK) {
        rc = cd_err_set(err, t->failed_code,
                        "store: commit: transaction failed earlier: %s",
                        t->failed_msg);
        mdb_txn_abort(t->txn);
        store_wtxn_end(s, 0);
        return rc;
    }
    rc = store_meta_flush(t, err);
    if (rc != CADRE_OK) {
        mdb_txn_abort(t->txn);
        store_wtxn_end(s, 0);
        return store_wrap(err, rc, "commit");
    }
    rc = mdb_txn_commit(t->txn); /* frees the txn, also on failure */
    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_txn_commit", -1);
        store_wtxn_end(s, 0);
        return store_wrap(err, rc, "commit");
    }
    store_wtxn_end(s, 1);
    return CADRE_OK;
}

void
store_txn_abort(store_txn *t)
{
    if (t == NULL)
        return;
    store_cursors_close(t);
    mdb_txn_abort(t->txn);
    if (t->rdonly)
        cd_free(t);
    else
        store_wtxn_end(t->s, 0);
}

/* ---- jobs -------------------------------------------------------------- */

int
store_job_add(store_txn *t, struct store_job *job, uint64_t now_ms,
              int *duplicate, cd_err *err)
{
    return store_job_add_origin(t, job, now_ms, NULL, duplicate, err);
}

int
store_job_add_origin(store_txn *t, struct store_job *job, uint64_t now_ms,
                     const char *origin, int *duplicate, cd_err *err)
{
    struct record_job r;
    const char       *q = NULL;
    size_t            qlen = 0;
    uint64_t          seq;
    int               found = 0;
    int               rc;

    *duplicate = 0;
    if ((rc = store_writable(t, err)) != CADRE_OK ||
        (rc = store_queue_name(job->queue, &q, &qlen, err)) != CADRE_OK)
        return store_wrap_id(err, rc, "add job", &job->id);
    /* A finished id stays taken while its outcome is kept. */
    if ((rc = store_has(t, KEYS_DB_RESULTS, &job->id, &found, err)) != 0 ||
        (!found &&
         (rc = store_has(t, KEYS_DB_FAILED, &job->id, &found, err)) != 0))
        goto fail;
    if (found) {
        *duplicate = 1;
        return CADRE_OK;
    }
    if (job->unique_key != NULL && job->unique_key[0] != '\0') {
        cadre_job_id holder;
        int          held = 0;

        rc = store_has(t, KEYS_DB_JOBS, &job->id, &found, err);
        if (rc == CADRE_OK && found) { /* a retried dispatch of this job */
            *duplicate = 1;
            return CADRE_OK;
        }
        if (rc == CADRE_OK)
            rc = store_unique_claim(t, job->unique_key, &job->id,
                                    job->unique_until_ms, now_ms, &held,
                                    &holder, err);
        if (rc != CADRE_OK)
            goto fail;
        if (held) {
            *duplicate = 2;
            job->id = holder;
            return CADRE_OK;
        }
    }

    seq = t->s->next_seq;
    store_to_record(job, q, &r);
    r.state = job->available_at_ms > now_ms ? STORE_DELAYED : STORE_READY;
    r.seq = seq;
    if (r.created_at_ms == 0)
        r.created_at_ms = now_ms;
    r.reserved_until_ms = 0;
    r.lease = 0;
    r.finished_at_ms = 0;
    r.result = NULL;
    r.result_len = 0;
    r.lent_to = NULL; /* a new job is here, not lent (store_lend) */
    r.origin = origin;
    rc = store_write(t, KEYS_DB_JOBS, &r, MDB_NOOVERWRITE, &found, err);
    if (rc != CADRE_OK)
        goto fail;
    if (found) {
        *duplicate = 1;
        return CADRE_OK;
    }
    t->s->next_seq++;
    if (r.state == STORE_READY) {
        rc = store_ready_put(t, q, qlen, &r.seq, &r.id, r.created_at_ms, err);
        /* The seq was taken (damaged counter): rewrite with the new one. */
        if (rc == CADRE_OK && r.seq != seq)
            rc = store_write(t, KEYS_DB_JOBS, &r, 0, NULL, err);
    } else {
        rc = store_time_put(t, KEYS_DB_DELAYED, r.available_at_ms, &r.id, q,
                            qlen, err);
    }
    if (rc == CADRE_OK)
        rc = store_count(t, q, qlen, (int)r.state, 1, r.seq, r.created_at_ms, 0,
                         err);
    if (rc != CADRE_OK)
        goto fail;
    job->state = (int)r.state;
    job->seq = r.seq;
    return CADRE_OK;

fail:
    store_fail(t, err, rc);
    return store_wrap_id(err, rc, "add job", &job->id);
}

int
store_job_get(store_txn *t, const cadre_job_id *id, struct store_job *out,
              cd_err *err)
{
    struct record_job r;
    int               rc = store_read(t, KEYS_DB_JOBS, id, &r, err);

    if (rc == CADRE_OK) {
        rc = store_from_record(&r, out, err);
        record_job_free(&r);
    }
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "get job", id);
    return CADRE_OK;
}

/* Takes up to max - *n ready jobs of one queue into out[*n...]. */
static int
store_reserve_queue(store_txn *t, const char *q, size_t qlen, size_t max,
                    uint64_t now_ms, uint64_t retry_after_ms,
                    struct store_job *out, size_t *n, cd_err *err)
{
    store      *s = t->s;
    uint8_t     pb[KEYS_READY_MAX];
    size_t      plen = keys_ready_prefix(pb, q, qlen);
    MDB_cursor *cur = NULL;
    size_t      took = 0;
    int         rc;

    rc = store_cursor(t, KEYS_DB_READY, &cur, err);
    while (rc == CADRE_OK && *n < max) {
        struct record_job r;
        struct store_job *j = &out[*n];
        MDB_val           k = {plen, pb}, v;
        cadre_job_id      id;
        uint64_t          seq, ra;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND || (rc == 0 && (k.mv_size != plen + 8 ||
                                               memcmp(k.mv_data, pb, plen)))) {
            rc = CADRE_OK; /* no more in this queue */
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_READY);
            break;
        }
        seq = cd_get_u64be((const uint8_t *)k.mv_data + plen);
        memcpy(id.b, v.mv_data, KEYS_ID_LEN); /* v.mv_size checked at put */
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_del", KEYS_DB_READY);
            break;
        }
        rc = store_count(t, q, qlen, STORE_READY, -1, seq, 0, 0, err);
        if (rc != CADRE_OK)
            break;
        took++;
        rc = store_read(t, KEYS_DB_JOBS, &id, &r, err);
        if (rc == CADRE_ENOTFOUND || rc == CADRE_ECORRUPT) {
            /* Drop the entry rather than block the queue behind it. */
            char text[CD_ID_TEXT_LEN + 1];

            cadre_job_id_format(&id, text);
            CD_LOG_ERR("store", "STORE-CORRUPT",
                       "dropped ready entry queue=%.*s id=%s error=\"%s\"",
                       (int)qlen, q, text, err ? err->msg : "");
            rc = CADRE_OK;
            continue;
        }
        if (rc != CADRE_OK)
            break;
        rc = store_from_record(&r, j, err);
        record_job_free(&r);
        if (rc != CADRE_OK)
            break;
        if (j->unique_until_processing &&
            (rc = store_unique_release(t, j->unique_key, &id, err)) !=
                CADRE_OK) {
            store_job_fini(j);
            break;
        }
        ra = j->opts.retry_after_ms ? j->opts.retry_after_ms : retry_after_ms;
        /* A worker here takes it: whatever loan a caller left on a READY
         * record is over, and store_lend_settle must not delete it. */
        cd_free(j->lent_to);
        j->lent_to = NULL;
        j->state = STORE_RESERVED;
        j->attempts++;
        j->reserved_until_ms = now_ms + ra;
        j->lease = store_next(s);
        store_to_record(j, q, &r);
        rc = store_write(t, KEYS_DB_JOBS, &r, 0, NULL, err);
        if (rc == CADRE_OK)
            rc = store_time_put(t, KEYS_DB_RESERVED, j->reserved_until_ms, &id,
                                q, qlen, err);
        if (rc == CADRE_OK)
            rc = store_count(t, q, qlen, STORE_RESERVED, 1, 0, 0, 0, err);
        if (rc != CADRE_OK) {
            store_job_fini(j);
            break;
        }
        (*n)++;
    }
    if (rc == CADRE_OK && took > 0) {
        struct queues_counts *c;

        if (queues_edit(&s->queues, q, qlen, &c) != CADRE_OK)
            return cd_err_set(err, CADRE_ENOMEM, "queue counters");
        rc = store_head_refresh(t, q, qlen, c, err);
    }
    return rc;
}

int
store_reserve(store_txn *t, const char *const *queues, size_t queues_n,
              size_t max, uint64_t now_ms, uint64_t retry_after_ms,
              struct store_job *out, size_t *out_n, cd_err *err)
{
    const char *q = NULL;
    size_t      qlen = 0;
    size_t      n = 0;
    int         rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "reserve");
    for (size_t i = 0; i < queues_n; i++) {
        if ((rc = store_queue_name(queues[i], &q, &qlen, err)) != CADRE_OK)
            return store_wrap(err, rc, "reserve");
    }
    for (size_t i = 0; i < queues_n && n < max; i++) {
        const struct queues_entry *e;

        store_queue_name(queues[i], &q, &qlen, NULL);
        /* The counters answer "empty" without touching the tree; a paused
         * queue (store/control.c) hands out nothing. */
        e = queues_find(&t->s->queues, q, qlen);
        if (e == NULL || e->c.ready == 0 || e->c.paused)
            continue;
        rc = store_reserve_queue(t, q, qlen, max, now_ms, retry_after_ms, out,
                                 &n, err);
        if (rc != CADRE_OK)
            goto fail;
    }
    *out_n = n;
    return CADRE_OK;

fail:
    for (size_t i = 0; i < n; i++)
        store_job_fini(&out[i]);
    store_fail(t, err, rc);
    return store_wrap(err, rc, "reserve");
}

/* Reads the stored record of a pending job for save or finish, with its
 * validated queue name. Nothing is written. */
int
store_read_pending(store_txn *t, const cadre_job_id *id, struct record_job *r,
                   size_t *qlen, cd_err *err)
{
    int rc = store_read(t, KEYS_DB_JOBS, id, r, err);

    if (rc == CADRE_ENOTFOUND)
        return cd_err_set(err, CADRE_ENOTFOUND, "not pending");
    if (rc != CADRE_OK)
        return rc;
    *qlen = strlen(r->queue);
    if (*qlen == 0 || *qlen > STORE_QUEUE_MAX ||
        (r->state != STORE_READY && r->state != STORE_DELAYED &&
         r->state != STORE_RESERVED)) {
        record_job_free(r);
        return cd_err_set(err, CADRE_ECORRUPT,
                          "pending record in state %u, queue of %zu bytes",
                          r->state, *qlen);
    }
    return CADRE_OK;
}

/* Takes the stored job described by old out of its index and counters. */
int
store_unindex(store_txn *t, const struct record_job *old, size_t oqlen,
              cd_err *err)
{
    int rc = store_index_del(t, old, old->queue, oqlen, err);

    if (rc != CADRE_OK)
        return rc;
    store_lent_count(t, (int)old->state, old->lent_to, -1);
    return store_count(t, old->queue, oqlen, (int)old->state, -1, old->seq, 0,
                       1, err);
}

int
store_job_save(store_txn *t, struct store_job *job, cd_err *err)
{
    struct record_job old, r;
    const char       *q = NULL;
    size_t            qlen = 0, oqlen = 0;
    uint64_t          seq = job->seq;
    int               rc;

    if ((rc = store_writable(t, err)) != CADRE_OK ||
        (rc = store_queue_name(job->queue, &q, &qlen, err)) != CADRE_OK)
        return store_wrap_id(err, rc, "save job", &job->id);
    if (job->state != STORE_DELAYED && job->state != STORE_READY &&
        job->state != STORE_RESERVED) {
        rc = cd_err_set(err, CADRE_EINVAL, "state %d is not pending",
                        job->state);
        return store_wrap_id(err, rc, "save job", &job->id);
    }
    rc = store_read_pending(t, &job->id, &old, &oqlen, err);
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "save job", &job->id);

    rc = store_unindex(t, &old, oqlen, err);
    if (rc != CADRE_OK)
        goto out;
    store_to_record(job, q, &r);
    if (r.created_at_ms == 0)
        r.created_at_ms = old.created_at_ms;
    switch (job->state) {
    case STORE_READY:
        if (seq == 0)
            seq = store_next(t->s);
        rc = store_ready_put(t, q, qlen, &seq, &job->id, r.created_at_ms, err);
        r.seq = seq;
        break;
    case STORE_DELAYED:
        rc = store_time_put(t, KEYS_DB_DELAYED, job->available_at_ms, &job->id,
                            q, qlen, err);
        break;
    default:
        rc = store_time_put(t, KEYS_DB_RESERVED, job->reserved_until_ms,
                            &job->id, q, qlen, err);
        break;
    }
    if (rc == CADRE_OK)
        rc = store_write(t, KEYS_DB_JOBS, &r, 0, NULL, err);
    if (rc == CADRE_OK)
        rc = store_count(t, q, qlen, job->state, 1, r.seq, r.created_at_ms, 1,
                         err);
    if (rc == CADRE_OK) {
        store_lent_count(t, job->state, job->lent_to, 1);
        job->seq = r.seq;
    }
out:
    record_job_free(&old);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap_id(err, rc, "save job", &job->id);
    }
    return CADRE_OK;
}

/* Writes the result record r and its results_time entry at kept_from_ms,
 * from which store_prune_results counts result_ttl_ms. */
int
store_result_write(store_txn *t, const struct record_job *r,
                   uint64_t kept_from_ms, cd_err *err)
{
    uint8_t kb[KEYS_TIME_LEN];
    MDB_val k = {sizeof(kb), kb}, v = {0, NULL};
    int     rc = store_write(t, KEYS_DB_RESULTS, r, 0, NULL, err);

    if (rc != CADRE_OK)
        return rc;
    keys_time(kb, kept_from_ms, &r->id);
    rc = mdb_put(t->txn, t->s->dbi[KEYS_DB_RESULTS_TIME], &k, &v, 0);
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_put", KEYS_DB_RESULTS_TIME);
    return CADRE_OK;
}

int
store_job_finish(store_txn *t, struct store_job *job, uint64_t now_ms,
                 cd_err *err)
{
    struct record_job old, r;
    const char       *q = NULL;
    size_t            qlen = 0, oqlen = 0;
    int               rc;

    if ((rc = store_writable(t, err)) != CADRE_OK ||
        (rc = store_queue_name(job->queue, &q, &qlen, err)) != CADRE_OK)
        return store_wrap_id(err, rc, "finish job", &job->id);
    if (job->state != STORE_DONE && job->state != STORE_FAILED) {
        rc = cd_err_set(err, CADRE_EINVAL, "state %d is not final", job->state);
        return store_wrap_id(err, rc, "finish job", &job->id);
    }
    rc = store_read_pending(t, &job->id, &old, &oqlen, err);
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "finish job", &job->id);

    rc = store_unindex(t, &old, oqlen, err);
    if (rc == CADRE_OK)
        rc = store_del(t, KEYS_DB_JOBS, job->id.b, KEYS_ID_LEN, err);
    if (rc == CADRE_OK) /* the final state commits with the key's release */
        rc = store_unique_release(t, old.unique_key, &job->id, err);
    if (rc != CADRE_OK)
        goto out;
    if (job->finished_at_ms == 0)
        job->finished_at_ms = now_ms;
    store_to_record(job, q, &r);
    if (r.created_at_ms == 0)
        r.created_at_ms = old.created_at_ms;
    r.reserved_until_ms = 0;
    r.lent_to = NULL; /* a finished job is nobody's loan; origin stays */
    if (job->state == STORE_DONE) {
        /* Results are looked up, never retried: the payload is not kept. */
        r.payload = NULL;
        r.payload_len = 0;
        rc = store_result_write(t, &r, r.finished_at_ms, err);
    } else {
        rc = store_write(t, KEYS_DB_FAILED, &r, 0, NULL, err);
    }
    if (rc == CADRE_OK)
        rc = store_count(t, q, qlen, job->state, 1, 0, 0, 0, err);
out:
    record_job_free(&old);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap_id(err, rc, "finish job", &job->id);
    }
    return CADRE_OK;
}

/* Logs and drops the [time][id] -> queue entry under cur (an index entry
 * whose record is missing or unreadable), uncounting it. */
static int
store_drop_time_entry(store_txn *t, MDB_cursor *cur, int db, int state,
                      const MDB_val *k, const MDB_val *v, cd_err *err)
{
    char         text[CD_ID_TEXT_LEN + 1];
    char         q[STORE_QUEUE_MAX];
    size_t       qlen = v->mv_size;
    cadre_job_id id;
    int          rc;

    memcpy(id.b, (const uint8_t *)k->mv_data + 8, KEYS_ID_LEN);
    memcpy(q, v->mv_data, qlen);
    cadre_job_id_format(&id, text);
    CD_LOG_ERR("store", "STORE-CORRUPT", "dropped %s entry queue=%.*s id=%s",
               store_db_names[db], (int)qlen, q, text);
    rc = mdb_cursor_del(cur, 0);
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_cursor_del", db);
    return store_count(t, q, qlen, state, -1, 0, 0, 0, err);
}

/* Checks a [time][id] -> queue entry's shape. */
static int
store_time_entry_ok(const MDB_val *k, const MDB_val *v)
{
    return k->mv_size == KEYS_TIME_LEN && v->mv_size > 0 &&
           v->mv_size <= STORE_QUEUE_MAX;
}

int
store_promote_due(store_txn *t, uint64_t now_ms, size_t max, size_t *moved,
                  cd_err *err)
{
    store      *s = t->s;
    MDB_cursor *cur = NULL;
    size_t      n = 0;
    int         rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "promote");
    rc = store_cursor(t, KEYS_DB_DELAYED, &cur, err);
    while (rc == CADRE_OK && n < max) {
        struct record_job r;
        MDB_val           k, v;
        cadre_job_id      id;
        char              q[STORE_QUEUE_MAX];
        size_t            qlen, rqlen;
        uint64_t          seq;

        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = CADRE_OK;
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_DELAYED);
            break;
        }
        if (!store_time_entry_ok(&k, &v)) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "delayed: bad entry");
            break;
        }
        if (cd_get_u64be(k.mv_data) > now_ms)
            break;
        memcpy(id.b, (const uint8_t *)k.mv_data + 8, KEYS_ID_LEN);
        qlen = v.mv_size;
        memcpy(q, v.mv_data, qlen);
        rc = store_read(t, KEYS_DB_JOBS, &id, &r, err);
        if (rc == CADRE_OK)
            rqlen = strlen(r.queue);
        if (rc == CADRE_OK && (rqlen == 0 || rqlen > STORE_QUEUE_MAX)) {
            record_job_free(&r);
            rc = CADRE_ECORRUPT;
        }
        if (rc == CADRE_ENOTFOUND || rc == CADRE_ECORRUPT) {
            rc = store_drop_time_entry(t, cur, KEYS_DB_DELAYED, STORE_DELAYED,
                                       &k, &v, err);
            continue;
        }
        if (rc != CADRE_OK)
            break;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            record_job_free(&r);
            rc = store_mdb_err(s, err, rc, "mdb_cursor_del", KEYS_DB_DELAYED);
            break;
        }
        /* Due now: it joins the back of its queue. */
        seq = store_next(s);
        rc =
            store_ready_put(t, r.queue, rqlen, &seq, &id, r.created_at_ms, err);
        r.state = STORE_READY;
        r.seq = seq;
        if (rc == CADRE_OK)
            rc = store_write(t, KEYS_DB_JOBS, &r, 0, NULL, err);
        if (rc == CADRE_OK)
            rc = store_count(t, q, qlen, STORE_DELAYED, -1, 0, 0, 0, err);
        if (rc == CADRE_OK)
            rc = store_count(t, r.queue, rqlen, STORE_READY, 1, seq,
                             r.created_at_ms, 0, err);
        record_job_free(&r);
        if (rc == CADRE_OK)
            n++;
    }
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap(err, rc, "promote");
    }
    *moved = n;
    return CADRE_OK;
}

int
store_expired(store_txn *t, uint64_t now_ms, struct store_job *out, size_t max,
              size_t *out_n, cd_err *err)
{
    store      *s = t->s;
    MDB_cursor *cur = NULL;
    MDB_val     k, v;
    uint8_t     kb[KEYS_TIME_LEN];
    size_t      n = 0;
    int         op = MDB_FIRST;
    int         rc;

    if (!t->rdonly && (rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "expired");
    rc = store_cursor(t, KEYS_DB_RESERVED, &cur, err);
    while (rc == CADRE_OK && n < max) {
        struct record_job r;
        cadre_job_id      id;

        rc = mdb_cursor_get(cur, &k, &v, op);
        op = MDB_NEXT;
        if (rc == MDB_NOTFOUND) {
            rc = CADRE_OK;
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_RESERVED);
            break;
        }
        if (!store_time_entry_ok(&k, &v)) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "reserved: bad entry");
            break;
        }
        if (cd_get_u64be(k.mv_data) > now_ms)
            break;
        memcpy(id.b, (const uint8_t *)k.mv_data + 8, KEYS_ID_LEN);
        rc = store_read(t, KEYS_DB_JOBS, &id, &r, err);
        if (rc == CADRE_ENOTFOUND || rc == CADRE_ECORRUPT) {
            /* A write txn drops the entry so that it does not come back,
             * then seeks past the deleted key. */
            if (t->rdonly) {
                rc = CADRE_OK;
                continue;
            }
            memcpy(kb, k.mv_data, KEYS_TIME_LEN);
            rc = store_drop_time_entry(t, cur, KEYS_DB_RESERVED, STORE_RESERVED,
                                       &k, &v, err);
            k.mv_size = KEYS_TIME_LEN;
            k.mv_data = kb;
            op = MDB_SET_RANGE;
            continue;
        }
        if (rc != CADRE_OK)
            break;
        rc = store_from_record(&r, &out[n], err);
        record_job_free(&r);
        if (rc == CADRE_OK)
            n++;
    }
    if (rc != CADRE_OK) {
        for (size_t i = 0; i < n; i++)
            store_job_fini(&out[i]);
        store_fail(t, err, rc);
        return store_wrap(err, rc, "expired");
    }
    *out_n = n;
    return CADRE_OK;
}

/* The time in the first key of a [time][id] index, or UINT64_MAX. */
static int
store_first_time(store_txn *t, int db, uint64_t *out, cd_err *err)
{
    MDB_cursor *cur = NULL;
    MDB_val     k, v;
    int         rc = store_cursor(t, db, &cur, err);

    if (rc != CADRE_OK)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (rc == MDB_NOTFOUND) {
        *out = UINT64_MAX;
        return CADRE_OK;
    }
    if (rc != 0)
        return store_mdb_err(t->s, err, rc, "mdb_cursor_get", db);
    if (k.mv_size != KEYS_TIME_LEN)
        return cd_err_set(err, CADRE_ECORRUPT, "%s: bad entry",
                          store_db_names[db]);
    *out = cd_get_u64be(k.mv_data);
    return CADRE_OK;
}

int
store_next_times(store_txn *t, uint64_t *next_due_ms,
                 uint64_t *next_deadline_ms, cd_err *err)
{
    uint64_t due, deadline;
    int      rc = store_first_time(t, KEYS_DB_DELAYED, &due, err);

    if (rc == CADRE_OK)
        rc = store_first_time(t, KEYS_DB_RESERVED, &deadline, err);
    if (rc != CADRE_OK)
        return store_wrap(err, rc, "next times");
    *next_due_ms = due;
    *next_deadline_ms = deadline;
    return CADRE_OK;
}

int
store_outcome(store_txn *t, const cadre_job_id *id, int *status,
              struct store_job *out, cd_err *err)
{
    static const int  dbs[2] = {KEYS_DB_RESULTS, KEYS_DB_FAILED};
    struct record_job r;
    int               found = 0;
    int               rc = store_has(t, KEYS_DB_JOBS, id, &found, err);

    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "outcome of", id);
    if (found) {
        *status = CADRE_PENDING;
        return CADRE_OK;
    }
    for (int i = 0; i < 2; i++) {
        int failed;

        rc = store_read(t, dbs[i], id, &r, err);
        if (rc == CADRE_ENOTFOUND)
            continue;
        if (rc != CADRE_OK)
            return store_wrap_id(err, rc, "outcome of", id);
        /* The results DB holds FAILED outcomes of jobs that failed on
         * another node too (store_result_put), and placeholders of jobs
         * that moved there and run on (store_lend_settle): pending. */
        failed = dbs[i] == KEYS_DB_FAILED || r.state == STORE_FAILED;
        if (dbs[i] == KEYS_DB_RESULTS && r.state == STORE_RESERVED) {
            record_job_free(&r);
            *status = CADRE_PENDING;
            return CADRE_OK;
        }
        if (out != NULL)
            rc = store_from_record(&r, out, err);
        record_job_free(&r);
        if (rc != CADRE_OK)
            return store_wrap_id(err, rc, "outcome of", id);
        *status = failed ? CADRE_FAILED : CADRE_DONE;
        return CADRE_OK;
    }
    *status = CADRE_UNKNOWN;
    return CADRE_OK;
}

int
store_prune_results(store_txn *t, uint64_t now_ms, size_t max, size_t *pruned,
                    cd_err *err)
{
    store      *s = t->s;
    MDB_cursor *cur = NULL;
    size_t      n = 0;
    int         rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "prune results");
    if (now_ms < s->result_ttl_ms) {
        *pruned = 0;
        return CADRE_OK;
    }
    rc = store_cursor(t, KEYS_DB_RESULTS_TIME, &cur, err);
    while (rc == CADRE_OK && n < max) {
        MDB_val k, v;
        uint8_t id[KEYS_ID_LEN];

        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = CADRE_OK;
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get",
                               KEYS_DB_RESULTS_TIME);
            break;
        }
        if (k.mv_size != KEYS_TIME_LEN) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "results_time: bad entry");
            break;
        }
        if (cd_get_u64be(k.mv_data) > now_ms - s->result_ttl_ms)
            break;
        memcpy(id, (const uint8_t *)k.mv_data + 8, KEYS_ID_LEN);
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_del",
                               KEYS_DB_RESULTS_TIME);
            break;
        }
        rc = store_del(t, KEYS_DB_RESULTS, id, sizeof(id), err);
        if (rc == CADRE_OK)
            n++;
    }
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap(err, rc, "prune results");
    }
    *pruned = n;
    return CADRE_OK;
}

/* ---- counters ---------------------------------------------------------- */

static int
store_stats_cmp(const void *a, const void *b)
{
    return strcmp(((const cadre_queue_stats *)a)->name,
                  ((const cadre_queue_stats *)b)->name);
}

int
store_stats(store *s, uint64_t now_ms, cadre_queue_stats **out, size_t *out_n,
            cd_err *err)
{
    size_t             n = s->queues.n;
    cadre_queue_stats *v = cd_calloc(n ? n : 1, sizeof(*v));

    if (v == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "store: stats");
    for (size_t i = 0; i < n; i++) {
        const struct queues_entry *e = &s->queues.v[i];

        _Static_assert(sizeof(v[i].name) > STORE_QUEUE_MAX, "name fits");
        memcpy(v[i].name, e->name, e->name_len + 1u);
        v[i].ready = e->c.ready;
        v[i].delayed = e->c.delayed;
        v[i].reserved = e->c.reserved;
        v[i].done = e->c.done;
        v[i].failed = e->c.failed;
        if (e->c.ready > 0 && now_ms > e->c.head_created_at_ms)
            v[i].oldest_ready_age_ms = now_ms - e->c.head_created_at_ms;
    }
    qsort(v, n, sizeof(*v), store_stats_cmp);
    *out = v;
    *out_n = n;
    return CADRE_OK;
}

uint64_t
store_pending(const store *s)
{
    uint64_t n = 0;

    for (size_t i = 0; i < s->queues.n; i++) {
        const struct queues_counts *c = &s->queues.v[i].c;

        n += c->ready + c->delayed + c->reserved;
    }
    return n;
}

uint64_t
store_lent(const store *s)
{
    return s->lent;
}

uint64_t
store_ready_in(const store *s, const char *const *queues, size_t queues_n)
{
    uint64_t n = 0;

    for (size_t i = 0; i < queues_n; i++) {
        const struct queues_entry *e;
        const char                *q = NULL;
        size_t                     qlen = 0;

        if (store_queue_name(queues[i], &q, &qlen, NULL) != CADRE_OK)
            continue;
        e = queues_find(&s->queues, q, qlen);
        if (e != NULL && !e->c.paused)
            n += e->c.ready;
    }
    return n;
}

/* ---- for the other store/ sources (store/internal.h) ------------------- */

store *
store_txn_owner(store_txn *t)
{
    return t->s;
}

MDB_txn *
store_txn_mdb(store_txn *t)
{
    return t->txn;
}

int
store_txn_is_rdonly(const store_txn *t)
{
    return t->rdonly;
}

MDB_dbi
store_dbi(const store *s, int db)
{
    return s->dbi[db];
}

struct queues *
store_queues(store *s)
{
    return &s->queues;
}
