/* lend.c: moving jobs between nodes (store.h, "moving jobs between nodes"):
 * the victim lends ready jobs (kept, RESERVED and marked lent_to) and hands
 * out their transfer records, the thief adopts a record (noting the job's
 * origin), the victim settles the loan; the outcome of a job that ran
 * elsewhere is stored at its origin. Expired loans go through store_expired
 * like any lease. No messages and no policy here: the node decides who
 * lends what to whom and where outcomes go. */
#include "store/store.h"

#include <lmdb.h>
#include <stdint.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/log.h"
#include "proto/record.h"
#include "store/internal.h"
#include "store/keys.h"

/* Ready entries read per job asked for, plus a floor: unique jobs are
 * skipped in place, and a queue headed by thousands of them must not turn
 * one lend into a walk over the whole queue. */
#define LEND_SCAN_PER_JOB 4
#define LEND_SCAN_MIN 64

/* ---- lend -------------------------------------------------------------- */

/* Encodes the transfer record of the stored READY record r into *out: the
 * job as the thief stores it, with nothing of this node's bookkeeping. Its
 * origin is the job's, not this node's: "" if it was dispatched here. */
static int
lend_transfer(const struct record_job *r, struct store_blob *out, cd_err *err)
{
    struct record_job view = *r;
    size_t            len;

    view.state = STORE_READY;
    view.seq = 0;
    view.lent_to = NULL;
    view.lease = 0;
    view.reserved_until_ms = 0;
    view.unique_key = NULL;
    view.unique_until_ms = 0;
    view.unique_until_processing = 0;
    len = record_job_size(&view);
    out->data = cd_malloc(len > 0 ? len : 1);
    if (out->data == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "transfer record");
    out->len = record_job_pack(&view, out->data);
    return CADRE_OK;
}

/* Lends the READY job r, whose ready entry is (q, seq): out receives its
 * transfer record, then the stored record becomes RESERVED and lent. The
 * seq stays in the stored record so that an expired loan comes back to the
 * same place. */
static int
lend_one(store_txn *t, const char *q, size_t qlen, uint64_t seq,
         struct record_job *r, uint64_t now_ms, uint64_t lend_ms,
         const char *to, struct store_blob *out, cd_err *err)
{
    uint8_t kb[KEYS_READY_MAX];
    int     rc = lend_transfer(r, out, err);

    if (rc != CADRE_OK)
        return rc;
    r->state = STORE_RESERVED;
    r->seq = seq; /* the index's word on its place */
    r->reserved_until_ms = now_ms + lend_ms;
    r->lease = store_next(store_txn_owner(t));
    r->lent_to = to;
    rc = store_del(t, KEYS_DB_READY, kb, keys_ready(kb, q, qlen, seq), err);
    if (rc == CADRE_OK)
        rc = store_write(t, KEYS_DB_JOBS, r, 0, NULL, err);
    if (rc == CADRE_OK)
        rc = store_time_put(t, KEYS_DB_RESERVED, r->reserved_until_ms, &r->id,
                            q, qlen, err);
    if (rc == CADRE_OK)
        rc = store_count(t, q, qlen, STORE_READY, -1, seq, 0, 0, err);
    if (rc == CADRE_OK)
        rc = store_count(t, q, qlen, STORE_RESERVED, 1, 0, 0, 0, err);
    if (rc != CADRE_OK) {
        cd_free(out->data);
        *out = (struct store_blob){0};
        return rc;
    }
    store_lent_count(t, STORE_RESERVED, to, 1);
    return CADRE_OK;
}

/* Reads the ready entry of queue q at or after seq *from into *seq and *id;
 * *found 0 when the queue has none left. */
static int
lend_next_entry(store_txn *t, const char *q, size_t qlen, uint64_t from,
                uint64_t *seq, cadre_job_id *id, int *found, cd_err *err)
{
    uint8_t     kb[KEYS_READY_MAX];
    size_t      plen = keys_ready_prefix(kb, q, qlen);
    MDB_val     k = {keys_ready(kb, q, qlen, from), kb}, v;
    MDB_cursor *cur = NULL;
    int         rc = store_cursor(t, KEYS_DB_READY, &cur, err);

    *found = 0;
    if (rc != CADRE_OK)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        return CADRE_OK;
    if (rc != 0)
        return store_mdb_err(store_txn_owner(t), err, rc, "mdb_cursor_get",
                             KEYS_DB_READY);
    if (k.mv_size != plen + 8 || memcmp(k.mv_data, kb, plen) != 0)
        return CADRE_OK; /* past the queue */
    if (v.mv_size != KEYS_READY_VAL_LEN)
        return cd_err_set(err, CADRE_ECORRUPT, "ready: bad entry");
    *seq = cd_get_u64be((const uint8_t *)k.mv_data + plen);
    memcpy(id->b, v.mv_data, KEYS_ID_LEN);
    *found = 1;
    return CADRE_OK;
}

/* The lend arguments that stay the same across queues. */
struct lend_req {
    size_t             max;
    uint64_t           now_ms, lend_ms;
    const char        *to;
    struct store_blob *out;
    size_t             n;         /* out entries filled */
    size_t             scan_left; /* ready entries we may still read */
};

/* Lends from one queue, from its head, into req->out. Every round seeks
 * past the last entry seen: unique jobs stay in the index, and the head
 * refresh moves the shared cursor. */
static int
lend_queue(store_txn *t, const char *q, size_t qlen, struct lend_req *req,
           cd_err *err)
{
    uint64_t from = 0, seq = 0;
    size_t   took = 0;
    int      rc = CADRE_OK;

    while (req->n < req->max && req->scan_left > 0) {
        struct record_job r;
        cadre_job_id      id;
        int               found = 0;

        rc = lend_next_entry(t, q, qlen, from, &seq, &id, &found, err);
        if (rc != CADRE_OK || !found)
            break;
        req->scan_left--;
        from = seq + 1;
        rc = store_read(t, KEYS_DB_JOBS, &id, &r, err);
        if (rc == CADRE_ENOTFOUND || rc == CADRE_ECORRUPT) {
            rc = CADRE_OK; /* store_reserve drops and logs such entries */
            continue;
        }
        if (rc != CADRE_OK)
            break;
        if (r.unique_key[0] == '\0') {
            rc = lend_one(t, q, qlen, seq, &r, req->now_ms, req->lend_ms,
                          req->to, &req->out[req->n], err);
            if (rc == CADRE_OK) {
                req->n++;
                took++;
            }
        }
        record_job_free(&r);
        if (rc != CADRE_OK)
            break;
    }
    if (rc == CADRE_OK && took > 0) {
        struct queues_counts *c;

        if (queues_edit(store_queues(store_txn_owner(t)), q, qlen, &c) !=
            CADRE_OK)
            return cd_err_set(err, CADRE_ENOMEM, "queue counters");
        rc = store_head_refresh(t, q, qlen, c, err);
    }
    return rc;
}

/* Checks the arguments shared by lend and settle. */
static int
lend_check(store_txn *t, const char *to, cd_err *err)
{
    int rc = store_writable(t, err);

    if (rc == CADRE_OK && (to == NULL || to[0] == '\0'))
        rc = cd_err_set(err, CADRE_EINVAL, "no node to lend to");
    return rc;
}

int
store_lend(store_txn *t, const char *const *queues, size_t queues_n, size_t max,
           uint64_t now_ms, uint64_t lend_ms, const char *to,
           struct store_blob *out, size_t *out_n, cd_err *err)
{
    struct lend_req req = {max, now_ms, lend_ms, to, out, 0, SIZE_MAX};
    const char     *q = NULL;
    size_t          qlen = 0;
    int             rc;

    if ((rc = lend_check(t, to, err)) != CADRE_OK)
        return store_wrap(err, rc, "lend");
    for (size_t i = 0; i < queues_n; i++) {
        if ((rc = store_queue_name(queues[i], &q, &qlen, err)) != CADRE_OK)
            return store_wrap(err, rc, "lend");
    }
    if (max <= (SIZE_MAX - LEND_SCAN_MIN) / LEND_SCAN_PER_JOB)
        req.scan_left = max * LEND_SCAN_PER_JOB + LEND_SCAN_MIN;
    for (size_t i = 0; i < queues_n && req.n < max && req.scan_left > 0; i++) {
        const struct queues_entry *e;

        store_queue_name(queues[i], &q, &qlen, NULL);
        /* As store_reserve: the counters answer "empty" and "paused". */
        e = queues_find(store_queues(store_txn_owner(t)), q, qlen);
        if (e == NULL || e->c.ready == 0 || e->c.paused)
            continue;
        if ((rc = lend_queue(t, q, qlen, &req, err)) != CADRE_OK)
            goto fail;
    }
    *out_n = req.n;
    return CADRE_OK;

fail:
    for (size_t i = 0; i < req.n; i++) {
        cd_free(out[i].data);
        out[i] = (struct store_blob){0};
    }
    store_fail(t, err, rc);
    return store_wrap(err, rc, "lend");
}

/* ---- settle ------------------------------------------------------------ */

/* A placeholder in the results DB for a job that moved to r->lent_to and
 * runs on there: store_outcome reports it pending, so that waiters here
 * wait for the outcome the thief sends home (store_result_put replaces it)
 * instead of hearing "unknown". Pruned like a result if that never comes. */
static int
lend_moved_write(store_txn *t, struct record_job *r, cd_err *err)
{
    r->payload = NULL;
    r->payload_len = 0;
    r->state = STORE_RESERVED;
    r->seq = 0;
    r->lease = 0;
    r->unique_key = NULL;
    r->finished_at_ms = cd_now_ms(); /* its key in results_time */
    return store_result_write(t, r, r->finished_at_ms, err);
}

/* Deletes job id if it is RESERVED and lent to `to` (*hit then 1), leaving
 * a "moved" placeholder (lend_moved_write). */
static int
lend_settle_one(store_txn *t, const cadre_job_id *id, const char *to, int *hit,
                cd_err *err)
{
    struct record_job r;
    size_t            qlen = 0;
    int               rc = store_read_pending(t, id, &r, &qlen, err);

    *hit = 0;
    if (rc == CADRE_ENOTFOUND)
        return CADRE_OK; /* settled before, or never lent here */
    if (rc == CADRE_ECORRUPT) {
        char text[CD_ID_TEXT_LEN + 1];

        /* Not a loan we can vouch for: keep it (a duplicate at worst). */
        cadre_job_id_format(id, text);
        CD_LOG_ERR("store", "STORE-CORRUPT",
                   "settle skipped id=%s error=\"%s\"", text,
                   err ? err->msg : "");
        return CADRE_OK;
    }
    if (rc != CADRE_OK)
        return rc;
    if (r.state == STORE_RESERVED && strcmp(r.lent_to, to) == 0) {
        rc = store_unindex(t, &r, qlen, err);
        if (rc == CADRE_OK)
            rc = store_del(t, KEYS_DB_JOBS, id->b, KEYS_ID_LEN, err);
        /* Lent jobs hold no key; a record written otherwise might. */
        if (rc == CADRE_OK)
            rc = store_unique_release(t, r.unique_key, id, err);
        if (rc == CADRE_OK)
            rc = lend_moved_write(t, &r, err);
        *hit = rc == CADRE_OK;
    }
    record_job_free(&r);
    return rc;
}

int
store_lend_settle(store_txn *t, const cadre_job_id *ids, size_t n,
                  const char *to, size_t *settled, cd_err *err)
{
    size_t done = 0;
    int    rc;

    if ((rc = lend_check(t, to, err)) != CADRE_OK)
        return store_wrap(err, rc, "settle loans");
    for (size_t i = 0; i < n; i++) {
        int hit = 0;

        rc = lend_settle_one(t, &ids[i], to, &hit, err);
        if (rc != CADRE_OK) {
            store_fail(t, err, rc);
            return store_wrap_id(err, rc, "settle loan of", &ids[i]);
        }
        done += (size_t)hit;
    }
    *settled = done;
    return CADRE_OK;
}

/* ---- adopt ------------------------------------------------------------- */

/* Decodes and checks a transfer record into *job (owned copies), keeping
 * only what the thief stores. Writes nothing. */
static int
lend_adopt_decode(const uint8_t *rec, size_t len, struct store_job *job,
                  cd_err *err)
{
    struct record_job r;
    const char       *q = NULL;
    size_t            qlen = 0;
    int               rc = record_job_unpack(rec, len, &r, err);

    if (rc != CADRE_OK)
        return rc;
    if (r.task[0] == '\0')
        rc = cd_err_set(err, CADRE_ECORRUPT, "job record without a task");
    else if (store_queue_name(r.queue, &q, &qlen, err) != CADRE_OK)
        rc = cd_err_set(err, CADRE_ECORRUPT, "queue name longer than %d bytes",
                        STORE_QUEUE_MAX);
    if (rc == CADRE_OK)
        rc = store_from_record(&r, job, err);
    record_job_free(&r);
    if (rc != CADRE_OK)
        return rc;
    /* The key of a unique job lives on the node it was dispatched to;
     * store_job_add_origin resets the rest (state, seq, lease, lent_to,
     * result). */
    cd_free(job->unique_key);
    job->unique_key = NULL;
    job->unique_until_ms = 0;
    job->unique_until_processing = 0;
    return CADRE_OK;
}

/* If job id is pending here and lent out, it came back before its loan
 * settled: the loan is cancelled (READY at its seq, as on expiry), so that
 * settling it later cannot delete the only copy. *cancelled says so. */
static int
lend_cancel_loan(store_txn *t, const cadre_job_id *id, int *cancelled,
                 cd_err *err)
{
    struct store_job job;
    int              rc = store_job_get(t, id, &job, err);

    *cancelled = 0;
    if (rc == CADRE_ENOTFOUND || rc == CADRE_ECORRUPT)
        return CADRE_OK; /* store_job_add tells a taken id */
    if (rc != CADRE_OK)
        return rc;
    if (job.state == STORE_RESERVED && job.lent_to != NULL) {
        cd_free(job.lent_to);
        job.lent_to = NULL;
        job.state = STORE_READY;
        job.reserved_until_ms = 0;
        job.lease = 0;
        rc = store_job_save(t, &job, err);
        *cancelled = rc == CADRE_OK;
    }
    store_job_fini(&job);
    return rc;
}

static int lend_unmove(store_txn *t, const cadre_job_id *id, cd_err *err);

int
store_adopt(store_txn *t, const uint8_t *rec, size_t len, uint64_t now_ms,
            const char *origin, cadre_job_id *id, int *duplicate, cd_err *err)
{
    struct store_job job;
    int              cancelled = 0, dup = 0;
    int              rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "adopt");
    rc = lend_adopt_decode(rec, len, &job, err);
    if (rc != CADRE_OK) /* nothing written: the txn goes on */
        return store_wrap(err, rc, "adopt");
    rc = lend_cancel_loan(t, &job.id, &cancelled, err);
    /* A job lent on keeps its first origin; one without was dispatched to
     * its lender. */
    if (job.origin != NULL)
        origin = job.origin;
    /* Back where it moved from: it runs here again. */
    if (rc == CADRE_OK && !cancelled && lend_unmove(t, &job.id, err) < 0)
        rc = err->code;
    if (rc == CADRE_OK && !cancelled)
        rc = store_job_add_origin(t, &job, now_ms, origin, &dup, err);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        rc = store_wrap_id(err, rc, "adopt", &job.id);
        store_job_fini(&job);
        return rc;
    }
    *id = job.id;
    *duplicate = cancelled || dup != 0;
    store_job_fini(&job);
    return CADRE_OK;
}

/* ---- outcomes from other nodes ----------------------------------------- */

/* Checks that no pending job, result or failed record holds id. Writes
 * nothing. Returns CADRE_EEXISTS saying which. */
/* If the results DB holds a "moved" placeholder for id, deletes it and its
 * results_time key and returns 1 (0 if there is none, -1 on error): its
 * outcome arrived, or the job itself came back. */
static int
lend_unmove(store_txn *t, const cadre_job_id *id, cd_err *err)
{
    struct record_job r;
    uint8_t           kb[KEYS_TIME_LEN];
    int               moved;

    if (store_read(t, KEYS_DB_RESULTS, id, &r, NULL) != CADRE_OK)
        return 0;
    moved = r.state == STORE_RESERVED;
    keys_time(kb, r.finished_at_ms, id);
    record_job_free(&r);
    if (moved &&
        (store_del(t, KEYS_DB_RESULTS_TIME, kb, sizeof(kb), err) != CADRE_OK ||
         store_del(t, KEYS_DB_RESULTS, id->b, KEYS_ID_LEN, err) != CADRE_OK))
        return -1;
    return moved;
}

static int
lend_outcome_id_free(store_txn *t, const cadre_job_id *id, cd_err *err)
{
    static const int dbs[3] = {KEYS_DB_JOBS, KEYS_DB_RESULTS, KEYS_DB_FAILED};
    static const char *const what[3] = {"a pending job", "a result",
                                        "a failed job"};
    int                      found = 0;

    for (int i = 0; i < 3; i++) {
        int rc = store_has(t, dbs[i], id, &found, err);

        if (rc != CADRE_OK)
            return rc;
        if (found && dbs[i] == KEYS_DB_RESULTS) {
            int moved = lend_unmove(t, id, err);

            if (moved < 0)
                return err->code;
            if (moved)
                return CADRE_OK; /* the outcome replaces the placeholder */
        }
        if (found)
            return cd_err_set(err, CADRE_EEXISTS, "%s has this id", what[i]);
    }
    return CADRE_OK;
}

int
store_result_put(store_txn *t, const struct store_job *job, uint64_t now_ms,
                 cd_err *err)
{
    struct record_job r;
    const char       *q = NULL;
    size_t            qlen = 0;
    int               rc;

    if ((rc = store_writable(t, err)) != CADRE_OK ||
        (rc = store_queue_name(job->queue, &q, &qlen, err)) != CADRE_OK)
        return store_wrap_id(err, rc, "put outcome of", &job->id);
    if (job->state != STORE_DONE && job->state != STORE_FAILED)
        rc = cd_err_set(err, CADRE_EINVAL, "state %d is not final", job->state);
    else if (job->task == NULL || job->task[0] == '\0')
        rc = cd_err_set(err, CADRE_EINVAL, "no task");
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "put outcome of", &job->id);
    rc = lend_outcome_id_free(t, &job->id, err);
    if (rc == CADRE_EEXISTS) /* the first outcome stays; txn usable */
        return store_wrap_id(err, rc, "put outcome of", &job->id);
    if (rc == CADRE_OK) {
        store_to_record(job, q, &r);
        /* An outcome, as store_job_finish keeps it: nothing to run again
         * here, and nothing of the other node's bookkeeping. */
        r.payload = NULL;
        r.payload_len = 0;
        if (r.state == STORE_FAILED) {
            r.result = NULL;
            r.result_len = 0;
        }
        r.seq = 0;
        r.lease = 0;
        r.reserved_until_ms = 0;
        r.lent_to = NULL;
        r.unique_key = NULL;
        r.unique_until_ms = 0;
        r.unique_until_processing = 0;
        if (r.finished_at_ms == 0)
            r.finished_at_ms = now_ms;
        /* Kept from its arrival: another node's clock may lag. */
        rc = store_result_write(t, &r, now_ms, err);
    }
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap_id(err, rc, "put outcome of", &job->id);
    }
    return CADRE_OK;
}
