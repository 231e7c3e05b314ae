/* unique.c: the unique-job keys (Laravel's ShouldBeUnique). A key names the
 * pending job holding it; it is released when that job's final state
 * commits (or, for until_processing, when it is reserved), and lapses at
 * unique_until_ms. A key whose holder is no longer pending (a cleared queue,
 * say) is stale and taken over, so a lost release can never block forever. */
#include <string.h>

#include "common/bytes.h"
#include "store/internal.h"
#include "store/keys.h"

#define UNIQUE_VAL_LEN (KEYS_ID_LEN + 8)

int
store_unique_claim(store_txn *t, const char *key, const cadre_job_id *id,
                   uint64_t until_ms, uint64_t now_ms, int *held,
                   cadre_job_id *holder, cd_err *err)
{
    store  *s = store_txn_owner(t);
    MDB_val k = {strlen(key), (void *)key}, v;
    uint8_t val[UNIQUE_VAL_LEN];
    int     rc;

    *held = 0;
    rc = mdb_get(store_txn_mdb(t), store_dbi(s, KEYS_DB_UNIQUE), &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return store_mdb_err(s, err, rc, "mdb_get", KEYS_DB_UNIQUE);
    if (rc == 0 && v.mv_size == UNIQUE_VAL_LEN) {
        cadre_job_id other;
        uint64_t until = cd_get_u64be((const uint8_t *)v.mv_data + KEYS_ID_LEN);
        int      pending = 0;

        memcpy(other.b, v.mv_data, KEYS_ID_LEN);
        rc = store_has(t, KEYS_DB_JOBS, &other, &pending, err);
        if (rc != CADRE_OK)
            return rc;
        if (pending && (until == 0 || until > now_ms)) {
            *held = 1;
            *holder = other;
            return CADRE_OK;
        }
    }
    memcpy(val, id->b, KEYS_ID_LEN);
    cd_put_u64be(val + KEYS_ID_LEN, until_ms);
    v = (MDB_val){sizeof(val), val};
    rc = mdb_put(store_txn_mdb(t), store_dbi(s, KEYS_DB_UNIQUE), &k, &v, 0);
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_put", KEYS_DB_UNIQUE);
    return CADRE_OK;
}

int
store_unique_release(store_txn *t, const char *key, const cadre_job_id *id,
                     cd_err *err)
{
    store  *s = store_txn_owner(t);
    MDB_val k, v;
    int     rc;

    if (key == NULL || key[0] == '\0')
        return CADRE_OK;
    k = (MDB_val){strlen(key), (void *)key};
    rc = mdb_get(store_txn_mdb(t), store_dbi(s, KEYS_DB_UNIQUE), &k, &v);
    if (rc == MDB_NOTFOUND)
        return CADRE_OK;
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_get", KEYS_DB_UNIQUE);
    /* Only the holder releases: a later job may hold the key by now. */
    if (v.mv_size != UNIQUE_VAL_LEN || memcmp(v.mv_data, id->b, KEYS_ID_LEN))
        return CADRE_OK;
    rc = mdb_del(store_txn_mdb(t), store_dbi(s, KEYS_DB_UNIQUE), &k, NULL);
    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_del", KEYS_DB_UNIQUE);
    return CADRE_OK;
}
