/* control.c: operator control of queues (store.h, "queue control"):
 * clearing ready and delayed jobs in bounded steps, and pausing queues (a
 * flag in the in-memory counters, so that it is undone with the txn, kept
 * durable as a meta key). Reserved jobs are never touched here. */
#include "store/store.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/log.h"
#include "store/internal.h"
#include "store/keys.h"

_Static_assert(STORE_CLEAR_CURSOR_LEN == KEYS_TIME_LEN,
               "a clear cursor is a delayed key");

/* Deletes the pending record of a job whose index entry was just deleted. */
static int
control_drop_record(store_txn *t, const uint8_t *id, cd_err *err)
{
    return store_del(t, KEYS_DB_JOBS, id, KEYS_ID_LEN, err);
}

/* The ready part of a clear: deletes ready jobs of queue (q, qlen; qlen 0:
 * every queue) from the head, while *read < max. Sets *left if some remain
 * when the bound is reached. */
static int
control_clear_ready(store_txn *t, const char *q, size_t qlen, size_t max,
                    size_t *read, size_t *n, int *left, cd_err *err)
{
    store      *s = store_txn_owner(t);
    uint8_t     pb[KEYS_READY_MAX];
    size_t      plen = qlen ? keys_ready_prefix(pb, q, qlen) : 0;
    MDB_cursor *cur = NULL;
    int         rc = store_cursor(t, KEYS_DB_READY, &cur, err);

    while (rc == CADRE_OK) {
        MDB_val        k = {plen, pb}, v;
        const uint8_t *kp;
        char           name[STORE_QUEUE_MAX];
        uint8_t        id[KEYS_ID_LEN];
        size_t         nlen;
        uint64_t       seq;

        /* Each round seeks afresh: the head refresh moves this cursor. */
        rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
        if (rc == MDB_NOTFOUND ||
            (rc == 0 && plen &&
             (k.mv_size < plen || memcmp(k.mv_data, pb, plen) != 0))) {
            rc = CADRE_OK;
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_READY);
            break;
        }
        if (*read == max) {
            *left = 1;
            break;
        }
        kp = k.mv_data;
        if (k.mv_size < 9 || kp[0] == 0 || kp[0] > STORE_QUEUE_MAX ||
            k.mv_size != 1u + kp[0] + 8 || v.mv_size != KEYS_READY_VAL_LEN) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "ready: bad entry");
            break;
        }
        /* Copied: the key and value go away with the entry. */
        nlen = kp[0];
        memcpy(name, kp + 1, nlen);
        seq = cd_get_u64be(kp + 1 + nlen);
        memcpy(id, v.mv_data, KEYS_ID_LEN);
        (*read)++;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_del", KEYS_DB_READY);
            break;
        }
        rc = control_drop_record(t, id, err);
        if (rc == CADRE_OK)
            rc = store_count(t, name, nlen, STORE_READY, -1, seq, 0, 1, err);
        if (rc == CADRE_OK)
            (*n)++;
    }
    return rc;
}

/* The delayed part of a clear: from after pos (pos_len 0: the first entry),
 * deletes delayed jobs of queue (q, qlen; qlen 0: every queue) while
 * *read < max; pos follows the last entry read. Sets *left if entries
 * remain when the bound is reached. */
static int
control_clear_delayed(store_txn *t, const char *q, size_t qlen, size_t max,
                      uint8_t *pos, size_t *pos_len, size_t *read, size_t *n,
                      int *left, cd_err *err)
{
    store      *s = store_txn_owner(t);
    MDB_cursor *cur = NULL;
    int         rc = store_cursor(t, KEYS_DB_DELAYED, &cur, err);

    while (rc == CADRE_OK) {
        MDB_val k = {*pos_len, pos}, v;
        char    name[STORE_QUEUE_MAX];
        size_t  nlen;

        rc = mdb_cursor_get(cur, &k, &v, *pos_len ? MDB_SET_RANGE : MDB_FIRST);
        if (rc == 0 && *pos_len && k.mv_size == *pos_len &&
            memcmp(k.mv_data, pos, *pos_len) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        if (rc == MDB_NOTFOUND) {
            rc = CADRE_OK;
            break;
        }
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_get", KEYS_DB_DELAYED);
            break;
        }
        if (*read == max) {
            *left = 1;
            break;
        }
        if (k.mv_size != KEYS_TIME_LEN || v.mv_size == 0 ||
            v.mv_size > STORE_QUEUE_MAX) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "delayed: bad entry");
            break;
        }
        memcpy(pos, k.mv_data, KEYS_TIME_LEN);
        *pos_len = KEYS_TIME_LEN;
        (*read)++;
        if (qlen && (v.mv_size != qlen || memcmp(v.mv_data, q, qlen) != 0))
            continue; /* another queue's */
        nlen = v.mv_size;
        memcpy(name, v.mv_data, nlen);
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            rc = store_mdb_err(s, err, rc, "mdb_cursor_del", KEYS_DB_DELAYED);
            break;
        }
        rc = control_drop_record(t, pos + 8, err);
        if (rc == CADRE_OK)
            rc = store_count(t, name, nlen, STORE_DELAYED, -1, 0, 0, 0, err);
        if (rc == CADRE_OK)
            (*n)++;
    }
    return rc;
}

int
store_queue_clear(store_txn *t, const char *queue, const uint8_t *after,
                  size_t after_len, size_t max, size_t *cleared, uint8_t *next,
                  size_t *next_len, int *more, cd_err *err)
{
    const char *q = NULL;
    size_t      qlen = 0, read = 0, n = 0, pos_len = 0;
    uint8_t     pos[KEYS_TIME_LEN];
    int         left = 0;
    int         rc;

    if ((rc = store_writable(t, err)) != CADRE_OK)
        return store_wrap(err, rc, "clear queue");
    if (queue != NULL && queue[0] != '\0' &&
        (rc = store_queue_name(queue, &q, &qlen, err)) != CADRE_OK)
        return store_wrap(err, rc, "clear queue");
    if (max == 0 || (after_len != 0 && after_len != KEYS_TIME_LEN) ||
        (after_len != 0 && after == NULL)) {
        rc = cd_err_set(err, CADRE_EINVAL, "bad bound or cursor");
        return store_wrap(err, rc, "clear queue");
    }
    if (after_len != 0) {
        memcpy(pos, after, KEYS_TIME_LEN);
        pos_len = KEYS_TIME_LEN;
    }
    rc = control_clear_ready(t, q, qlen, max, &read, &n, &left, err);
    if (rc == CADRE_OK && !left)
        rc = control_clear_delayed(t, q, qlen, max, pos, &pos_len, &read, &n,
                                   &left, err);
    if (rc != CADRE_OK) {
        store_fail(t, err, rc);
        return store_wrap(err, rc, "clear queue");
    }
    /* Ready jobs left: the next call starts over (the delayed part has not
     * moved); delayed ones left: it resumes after pos. */
    *next_len = 0;
    if (left && pos_len != 0) {
        memcpy(next, pos, KEYS_TIME_LEN);
        *next_len = KEYS_TIME_LEN;
    }
    *cleared = n;
    *more = left;
    return CADRE_OK;
}

int
store_queue_pause(store_txn *t, const char *queue, int paused, int *changed,
                  cd_err *err)
{
    store                *s = store_txn_owner(t);
    struct queues_counts *c = NULL;
    const char           *q = NULL;
    size_t                qlen = 0;
    uint8_t               kb[KEYS_META_MAX];
    MDB_val               k, v = {0, NULL};
    int                   rc;

    if (changed != NULL)
        *changed = 0;
    if ((rc = store_writable(t, err)) != CADRE_OK ||
        (rc = store_queue_name(queue, &q, &qlen, err)) != CADRE_OK)
        return store_wrap(err, rc, paused ? "pause queue" : "resume queue");
    paused = paused != 0;
    /* Resuming a queue never seen creates nothing. */
    if (store_queue_paused(s, q) == paused)
        return CADRE_OK;
    if (queues_edit(store_queues(s), q, qlen, &c) != CADRE_OK) {
        rc = cd_err_set(err, CADRE_ENOMEM, "queue counters");
        goto fail;
    }
    c->paused = (uint8_t)paused;
    k.mv_size = keys_paused(kb, q, qlen);
    k.mv_data = kb;
    if (paused)
        rc = mdb_put(store_txn_mdb(t), store_dbi(s, KEYS_DB_META), &k, &v, 0);
    else
        rc = mdb_del(store_txn_mdb(t), store_dbi(s, KEYS_DB_META), &k, NULL);
    if (rc == MDB_NOTFOUND) {
        CD_LOG_WARN("store", "STORE-INDEX", "paused queue without a key q=%s",
                    q);
        rc = 0;
    }
    if (rc != 0) {
        rc = store_mdb_err(s, err, rc, paused ? "mdb_put" : "mdb_del",
                           KEYS_DB_META);
        goto fail;
    }
    if (changed != NULL)
        *changed = 1;
    return CADRE_OK;
fail:
    store_fail(t, err, rc);
    return store_wrap(err, rc, paused ? "pause queue" : "resume queue");
}

int
store_queue_paused(const store *s, const char *queue)
{
    const struct queues_entry *e;
    const char                *q = NULL;
    size_t                     qlen = 0;

    if (store_queue_name(queue, &q, &qlen, NULL) != CADRE_OK)
        return 0;
    e = queues_find(store_queues((store *)s), q, qlen);
    return e != NULL && e->c.paused;
}

static int
control_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
store_paused_queues(const store *s, char ***out, size_t *out_n, cd_err *err)
{
    const struct queues *qs = store_queues((store *)s);
    size_t               n = 0, bytes = 0;
    char               **names;
    char                *p;

    for (size_t i = 0; i < qs->n; i++) {
        if (qs->v[i].c.paused) {
            n++;
            bytes += qs->v[i].name_len + 1u;
        }
    }
    *out = NULL;
    *out_n = 0;
    if (n == 0)
        return CADRE_OK;
    /* One block: the pointers, then the strings they point at. */
    names = cd_malloc(n * sizeof(*names) + bytes);
    if (names == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "store: paused queues");
    p = (char *)(names + n);
    n = 0;
    for (size_t i = 0; i < qs->n; i++) {
        const struct queues_entry *e = &qs->v[i];

        if (!e->c.paused)
            continue;
        memcpy(p, e->name, e->name_len + 1u);
        names[n++] = p;
        p += e->name_len + 1u;
    }
    qsort(names, n, sizeof(*names), control_name_cmp);
    *out = names;
    *out_n = n;
    return CADRE_OK;
}

int
store_paused_load(store *s, MDB_txn *txn, cd_err *err)
{
    MDB_cursor *cur = NULL;
    MDB_val     k = {KEYS_META_PAUSED_LEN, KEYS_META_PAUSED}, v;
    int         op = MDB_SET_RANGE;
    int         rc = mdb_cursor_open(txn, store_dbi(s, KEYS_DB_META), &cur);

    if (rc != 0)
        return store_mdb_err(s, err, rc, "mdb_cursor_open", KEYS_DB_META);
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        struct queues_counts *c;
        size_t                qlen = k.mv_size - KEYS_META_PAUSED_LEN;

        op = MDB_NEXT;
        if (k.mv_size < KEYS_META_PAUSED_LEN ||
            memcmp(k.mv_data, KEYS_META_PAUSED, KEYS_META_PAUSED_LEN) != 0)
            break;
        if (qlen == 0 || qlen > STORE_QUEUE_MAX) {
            rc = cd_err_set(err, CADRE_ECORRUPT, "meta: bad paused entry");
            goto out;
        }
        if (queues_edit(store_queues(s),
                        (const char *)k.mv_data + KEYS_META_PAUSED_LEN, qlen,
                        &c) != CADRE_OK) {
            rc = cd_err_set(err, CADRE_ENOMEM, "queue counters");
            goto out;
        }
        c->paused = 1;
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
