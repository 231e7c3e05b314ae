/* failed.c: the failed-job DB as operators see it (store.h, "failed jobs"):
 * bounded scans in id order, show, retry (back to the queue as a fresh
 * attempt), forget, and sweeps (retry all, flush, prune). Jobs get into the
 * failed DB through store_job_finish (store.c); no policy here. */
#include "store/store.h"

#include <lmdb.h>
#include <string.h>

#include "common/alloc.h"
#include "common/id.h"
#include "common/log.h"
#include "proto/record.h"
#include "store/internal.h"
#include "store/keys.h"

/* Positions cur on the first failed record whose id is after `after` (NULL:
 * the first record). Returns 0, MDB_NOTFOUND at the end, or an LMDB error.
 * The seek is repeated for every record, so writes between two records
 * (retries, deletes) never leave the scan on a stale position. */
static int
failed_seek(MDB_cursor *cur, const cadre_job_id *after, MDB_val *k, MDB_val *v)
{
    int rc;

    if (after == NULL)
        return mdb_cursor_get(cur, k, v, MDB_FIRST);
    k->mv_size = KEYS_ID_LEN;
    k->mv_data = (void *)after->b;
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0 && k->mv_size == KEYS_ID_LEN &&
        memcmp(k->mv_data, after->b, KEYS_ID_LEN) == 0)
        rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
    return rc;
}

/* Whether record r is one sc asks for. */
static int
failed_matches(const struct store_failed_scan *sc, const struct record_job *r)
{
    const char *q = NULL;
    size_t      qlen = 0;

    if (sc->failed_before_ms != 0 && r->finished_at_ms >= sc->failed_before_ms)
        return 0;
    if (sc->queue == NULL || sc->queue[0] == '\0')
        return 1;
    if (store_queue_name(sc->queue, &q, &qlen, NULL) != CADRE_OK)
        return 0;
    return strlen(r->queue) == qlen && memcmp(r->queue, q, qlen) == 0;
}

/* Copies r into out; without payloads, keeps only the payload's size. */
static int
failed_copy(const struct record_job *r, int payloads, struct store_job *out,
            cd_err *err)
{
    struct record_job view = *r;
    int               rc;

    if (!payloads) {
        view.payload = NULL;
        view.payload_len = 0;
    }
    rc = store_from_record(&view, out, err);
    if (rc == CADRE_OK && !payloads)
        out->payload_len = r->payload_len;
    return rc;
}

/* One bounded walk over the failed DB: calls visit_cb for each record sc
 * matches until it has been called sc->max times or sc->scan_max records
 * were read. The record passed is released after the call. */
typedef int (*failed_visit_cb)(store_txn *t, const struct record_job *r,
                               void *arg, cd_err *err);

static int
failed_walk(store_txn *t, const struct store_failed_scan *sc,
            failed_visit_cb visit_cb, void *arg, size_t *matched,
            cadre_job_id *last, int *more, cd_err *err)
{
    store              *s = store_txn_owner(t);
    MDB_cursor         *cur = NULL;
    MDB_val             k, v;
    cadre_job_id        pos;
    const cadre_job_id *after = sc->after;
    size_t              n = 0, read = 0;
    int                 rc;

    *more = 0;
    if (sc->max == 0 || sc->scan_max == 0)
        return cd_err_set(err, CADRE_EINVAL, "scan bounds of 0");
    rc = store_cursor(t, KEYS_DB_FAILED, &cur, err);
    while (rc == CADRE_OK) {
        struct record_job r;

        rc = failed_seek(cur, after, &k, &v);
        if (rc == MDB_NOTFOUND) {
            rc = CADRE_OK;
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_FAILED);
            break;
        }
        if (n == sc->max || read == sc->scan_max) {
            *more = 1; /* a record is left */
            break;
        }
        if (k.mv_size != KEYS_ID_LEN) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "failed: bad key");
            break;
        }
        memcpy(pos.b, k.mv_data, KEYS_ID_LEN);
        after = &pos;
        *last = pos;
        read++;
        rc = record_job_unpack(v.mv_data, v.mv_size, &r, err);
        if (rc == CADRE_ECORRUPT) {
            /* Skipped, not fatal: one bad record must not hide the rest. */
            char text[CD_ID_TEXT_LEN + 1];

            cadre_job_id_format(&pos, text);
            CD_LOG_ERR("store", "STORE-CORRUPT",
                       "skipped failed record id=%s error=\"%s\"", text,
                       err ? err->msg : "");
            rc = CADRE_OK;
            continue;
        }
        if (rc != CADRE_OK)
            break;
        if (failed_matches(sc, &r)) {
            rc = visit_cb(t, &r, arg, err);
            n++;
        }
        record_job_free(&r);
    }
    *matched = n;
    return rc;
}

struct failed_list_arg {
    int               payloads;
    struct store_job *out;
    size_t            n;
};

static int
failed_list_cb(store_txn *t, const struct record_job *r, void *arg, cd_err *err)
{
    struct failed_list_arg *a = arg;
    int                     rc;

    (void)t;
    rc = failed_copy(r, a->payloads, &a->out[a->n], err);
    if (rc == CADRE_OK)
        a->n++;
    return rc;
}

int
store_failed_list(store_txn *t, const struct store_failed_scan *sc,
                  int payloads, struct store_job *out, size_t *out_n,
                  cadre_job_id *last, int *more, cd_err *err)
{
    struct failed_list_arg a = {payloads, out, 0};
    size_t                 matched = 0;
    int                    rc;

    rc = failed_walk(t, sc, failed_list_cb, &a, &matched, last, more, err);
    if (rc != CADRE_OK) {
        for (size_t i = 0; i < a.n; i++)
            store_job_fini(&out[i]);
        return store_wrap(err, rc, "list failed jobs");
    }
    *out_n = a.n;
    return CADRE_OK;
}

int
store_failed_get(store_txn *t, const cadre_job_id *id, struct store_job *out,
                 cd_err *err)
{
    struct record_job r;
    int               rc = store_read(t, KEYS_DB_FAILED, id, &r, err);

    if (rc == CADRE_OK) {
        rc = store_from_record(&r, out, err);
        record_job_free(&r);
    }
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "failed job", id);
    return CADRE_OK;
}

/* Takes the failed record r out of the failed DB and its queue's count. */
static int
failed_remove(store_txn *t, const struct record_job *r, cd_err *err)
{
    size_t qlen = strlen(r->queue);
    int    rc;

    if (qlen == 0 || qlen > STORE_QUEUE_MAX)
        return cd_err_set(err, CADRE_ECORRUPT,
                          "failed record of queue %zu "
                          "bytes long",
                          qlen);
    rc = store_del(t, KEYS_DB_FAILED, r->id.b, KEYS_ID_LEN, err);
    if (rc == CADRE_OK)
        rc = store_count(t, r->queue, qlen, STORE_FAILED, -1, 0, 0, 0, err);
    return rc;
}

/* Checks that nothing but the failed record holds r's id, so that the retry
 * cannot be refused as a duplicate after the record is gone. Writes
 * nothing. */
static int
failed_id_free(store_txn *t, const cadre_job_id *id, cd_err *err)
{
    int found = 0;
    int rc = store_has(t, KEYS_DB_JOBS, id, &found, err);

    if (rc == CADRE_OK && !found)
        rc = store_has(t, KEYS_DB_RESULTS, id, &found, err);
    if (rc == CADRE_OK && found)
        rc = cd_err_set(err, CADRE_EEXISTS,
                        "a pending job or a result has this id");
    return rc;
}

/* Retries the failed record r (its id is known to be free). */
static int
failed_retry_record(store_txn *t, const struct record_job *r, uint64_t now_ms,
                    cd_err *err)
{
    struct store_job job;
    int              dup = 0;
    int              rc = store_from_record(r, &job, err);

    if (rc != CADRE_OK)
        return rc;
    /* A fresh attempt: nothing of the failed run is carried over but the
     * job itself (task, queue, payload, options). */
    cd_free(job.error_type);
    cd_free(job.error);
    cd_free(job.result);
    job.error_type = job.error = NULL;
    job.result = NULL;
    job.result_len = 0;
    job.state = 0;
    job.attempts = 0;
    job.exceptions = 0;
    job.seq = 0;
    job.lease = 0;
    job.reserved_until_ms = 0;
    job.finished_at_ms = 0;
    job.created_at_ms = now_ms;
    job.available_at_ms = now_ms;
    rc = failed_remove(t, r, err);
    if (rc == CADRE_OK)
        rc = store_job_add(t, &job, now_ms, &dup, err);
    if (rc == CADRE_OK && dup)
        rc = cd_err_set(err, CADRE_ECORRUPT, "id taken after the check");
    store_job_fini(&job);
    return rc;
}

int
store_failed_retry(store_txn *t, const cadre_job_id *id, uint64_t now_ms,
                   cd_err *err)
{
    struct record_job r;
    int               rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap_id(err, rc, "retry failed job", id);
    rc = store_read(t, KEYS_DB_FAILED, id, &r, err);
    if (rc == CADRE_ENOTFOUND)
        rc = cd_err_set(err, CADRE_ENOTFOUND, "no such failed job");
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "retry failed job", id);
    rc = failed_id_free(t, id, err);
    if (rc == CADRE_EEXISTS) {
        record_job_free(&r);
        return store_wrap_id(err, rc, "retry failed job", id);
    }
    if (rc == CADRE_OK)
        rc = failed_retry_record(t, &r, now_ms, err);
    record_job_free(&r);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap_id(err, rc, "retry failed job", id);
    }
    return CADRE_OK;
}

int
store_failed_forget(store_txn *t, const cadre_job_id *id, cd_err *err)
{
    struct record_job r;
    int               rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap_id(err, rc, "forget failed job", id);
    rc = store_read(t, KEYS_DB_FAILED, id, &r, err);
    if (rc == CADRE_ENOTFOUND)
        rc = cd_err_set(err, CADRE_ENOTFOUND, "no such failed job");
    if (rc != CADRE_OK)
        return store_wrap_id(err, rc, "forget failed job", id);
    rc = failed_remove(t, &r, err);
    record_job_free(&r);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap_id(err, rc, "forget failed job", id);
    }
    return CADRE_OK;
}

struct failed_sweep_arg {
    int      action;
    uint64_t now_ms;
    size_t   done;
};

static int
failed_sweep_cb(store_txn *t, const struct record_job *r, void *arg,
                cd_err *err)
{
    struct failed_sweep_arg *a = arg;
    int                      rc;

    if (a->action == STORE_FAILED_FORGET) {
        rc = failed_remove(t, r, err);
    } else {
        rc = failed_id_free(t, &r->id, err);
        if (rc == CADRE_EEXISTS) {
            char text[CD_ID_TEXT_LEN + 1];

            cadre_job_id_format(&r->id, text);
            CD_LOG_WARN("store", "STORE-RETRY-TAKEN",
                        "failed job left failed id=%s error=\"%s\"", text,
                        err ? err->msg : "");
            return CADRE_OK;
        }
        if (rc == CADRE_OK)
            rc = failed_retry_record(t, r, a->now_ms, err);
    }
    a->done += rc == CADRE_OK;
    return rc;
}

int
store_failed_sweep(store_txn *t, int action, const struct store_failed_scan *sc,
                   uint64_t now_ms, size_t *done, cadre_job_id *last, int *more,
                   cd_err *err)
{
    struct failed_sweep_arg a = {action, now_ms, 0};
    size_t                  matched = 0;
    const char *what = action == STORE_FAILED_RETRY ? "retry failed jobs"
                                                    : "forget failed jobs";
    int         rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, what);
    if (action != STORE_FAILED_RETRY && action != STORE_FAILED_FORGET) {
        rc = cd_err_set(err, CADRE_EINVAL, "bad action %d", action);
        return store_wrap(err, rc, "sweep failed jobs");
    }
    rc = failed_walk(t, sc, failed_sweep_cb, &a, &matched, last, more, err);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap(err, rc, what);
    }
    *done = a.done;
    return CADRE_OK;
}
