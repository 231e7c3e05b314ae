/* schedstate.c: a local schedule's state kept across restarts (store.h,
 * "schedule state"): meta key "sched/NAME" -> last slot (i64, big endian)
 * | paused (u8). node/scheduler.c reads it when it arms a schedule and
 * writes it in the turn that fires or skips slots, so a restarted node
 * applies the schedule's catchup policy from where it stopped. The
 * on_one_server schedules keep theirs in the leader's log instead. */
#include "store/store.h"

#include <lmdb.h>
#include <string.h>

#include "common/bytes.h"
#include "store/internal.h"
#include "store/keys.h"

#define SCHEDSTATE_PREFIX "sched/"
#define SCHEDSTATE_PREFIX_LEN (sizeof(SCHEDSTATE_PREFIX) - 1)
#define SCHEDSTATE_VAL_LEN 9

/* The meta key of schedule name into k; 0 if the name does not fit. */
static size_t
schedstate_key(uint8_t *k, size_t cap, const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || SCHEDSTATE_PREFIX_LEN + len > cap)
        return 0;
    memcpy(k, SCHEDSTATE_PREFIX, SCHEDSTATE_PREFIX_LEN);
    memcpy(k + SCHEDSTATE_PREFIX_LEN, name, len);
    return SCHEDSTATE_PREFIX_LEN + len;
}

int
store_sched_get(store_txn *t, const char *name, int64_t *last_s, int *paused,
                int *found, cd_err *err)
{
    store  *s = store_txn_owner(t);
    uint8_t kb[KEYS_META_MAX];
    MDB_val k = {schedstate_key(kb, sizeof(kb), name), kb}, v;
    int     rc;

    *found = 0;
    if (k.mv_size == 0)
        return cd_err_set(err, CADRE_EINVAL, "schedule name '%s' too long",
                          name);
    rc = mdb_get(store_txn_mdb(t), store_dbi(s, KEYS_DB_META), &k, &v);
    if (rc == MDB_NOTFOUND)
        return CADRE_OK;
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_get", KEYS_DB_META);
    if (v.mv_size != SCHEDSTATE_VAL_LEN)
        return cd_err_set(err, CADRE_ECORRUPT, "meta: bad schedule entry %s",
                          name);
    *last_s = (int64_t)cd_get_u64be(v.mv_data);
    *paused = ((const uint8_t *)v.mv_data)[8] != 0;
    *found = 1;
    return CADRE_OK;
}

int
store_sched_put(store_txn *t, const char *name, int64_t last_s, int paused,
                cd_err *err)
{
    store  *s = store_txn_owner(t);
    uint8_t kb[KEYS_META_MAX], vb[SCHEDSTATE_VAL_LEN];
    MDB_val k = {schedstate_key(kb, sizeof(kb), name), kb};
    MDB_val v = {sizeof(vb), vb};
    int     rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "schedule state");
    if (k.mv_size == 0)
        return cd_err_set(err, CADRE_EINVAL, "schedule name '%s' too long",
                          name);
    cd_put_u64be(vb, (uint64_t)last_s);
    vb[8] = paused != 0;
    rc = mdb_put(store_txn_mdb(t), store_dbi(s, KEYS_DB_META), &k, &v, 0);
    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, "mdb_put", KEYS_DB_META);
        store_fail(t, err, rc);
        return store_wrap(err, rc, "schedule state");
    }
    return CADRE_OK;
}
