/* held.c: jobs stored but not yet runnable (store.h, "held jobs"). A held
 * job is a DELAYED job due at STORE_HELD_MS, a time that never comes: it
 * is durable, counted, visible to `cadre queue` as delayed, never promoted,
 * never lent. node/scheduler.c holds the job of an on_one_server slot until
 * the leader's log says which node runs that slot, then releases or drops
 * it. The delayed index is ordered by due time, so every held job sits at
 * its end. */
#include "store/store.h"

#include <lmdb.h>
#include <string.h>

#include "common/bytes.h"
#include "proto/record.h"
#include "store/internal.h"
#include "store/keys.h"

int
store_held_list(store_txn *t, cadre_job_id *ids, size_t max, size_t *n,
                cd_err *err)
{
    MDB_cursor   *cur = NULL;
    MDB_val       k, v;
    int           rc = store_cursor(t, KEYS_DB_DELAYED, &cur, err);
    MDB_cursor_op op = MDB_LAST;

    *n = 0;
    if (rc != CADRE_OK)
        return store_wrap(err, rc, "held jobs");
    while (*n < max && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_PREV;
        if (k.mv_size != KEYS_TIME_LEN)
            return cd_err_set(err, CADRE_ECORRUPT, "held jobs: bad key");
        if (cd_get_u64be(k.mv_data) != STORE_HELD_MS)
            return CADRE_OK;
        memcpy(ids[(*n)++].b, (const uint8_t *)k.mv_data + 8, KEYS_ID_LEN);
    }
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_mdb_err(store_txn_owner(t), err, rc, "mdb_cursor_get",
                             KEYS_DB_DELAYED);
    return CADRE_OK;
}

int
store_held_release(store_txn *t, const cadre_job_id *id, cd_err *err)
{
    struct store_job job;
    int              rc = store_job_get(t, id, &job, err);

    if (rc != CADRE_OK)
        return rc;
    if (job.state != STORE_DELAYED || job.available_at_ms != STORE_HELD_MS) {
        store_job_fini(&job);
        cd_err_set(err, CADRE_EINVAL, "not held");
        return store_wrap_id(err, CADRE_EINVAL, "release held job", id);
    }
    job.state = STORE_READY;
    job.available_at_ms = 0;
    job.seq = 0; /* at the back of its queue, like a job just dispatched */
    rc = store_job_save(t, &job, err);
    store_job_fini(&job);
    return rc;
}
