/* queues.c: the per-queue counter table: a growable array indexed by an
 * open-addressing hash of the name, plus the txn undo log. Queues are few
 * (tens), but lookups happen once per job, so they must not scan. */
#include "store/queues.h"

#include <string.h>

#include "common/alloc.h"

static uint64_t
queues_hash(const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 1099511628211ull;
    }
    return h;
}

void
queues_init(struct queues *q)
{
    memset(q, 0, sizeof(*q));
}

void
queues_fini(struct queues *q)
{
    if (q == NULL)
        return;
    cd_free(q->v);
    cd_free(q->slots);
    cd_free(q->undo);
    memset(q, 0, sizeof(*q));
}

/* The slot where (name, len) is or would go. slots_n > 0. */
static size_t
queues_slot(const struct queues *q, const char *name, size_t len)
{
    size_t mask = q->slots_n - 1;
    size_t i = (size_t)queues_hash(name, len) & mask;

    for (;;) {
        uint32_t s = q->slots[i];

        if (s == 0)
            return i;
        if (q->v[s - 1].name_len == len &&
            memcmp(q->v[s - 1].name, name, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

struct queues_entry *
queues_find(const struct queues *q, const char *name, size_t len)
{
    uint32_t s;

    if (q->slots_n == 0)
        return NULL;
    s = q->slots[queues_slot(q, name, len)];
    return s == 0 ? NULL : &q->v[s - 1];
}

/* Re-inserts the first q->n queues into the current slots. */
static void
queues_reindex(struct queues *q)
{
    memset(q->slots, 0, q->slots_n * sizeof(*q->slots));
    for (size_t i = 0; i < q->n; i++) {
        const struct queues_entry *e = &q->v[i];

        q->slots[queues_slot(q, e->name, e->name_len)] = (uint32_t)(i + 1);
    }
}

/* Grows the hash to slots_n slots (a power of two). */
static int
queues_rehash(struct queues *q, size_t slots_n)
{
    uint32_t *slots = cd_calloc(slots_n, sizeof(*slots));

    if (slots == NULL)
        return CADRE_ENOMEM;
    cd_free(q->slots);
    q->slots = slots;
    q->slots_n = slots_n;
    queues_reindex(q);
    return CADRE_OK;
}

/* Appends a zeroed queue; returns its index through *idx. */
static int
queues_add(struct queues *q, const char *name, size_t len, size_t *idx)
{
    struct queues_entry *e;

    if (q->n == q->cap) {
        size_t               cap = q->cap ? q->cap * 2 : 16;
        struct queues_entry *v = cd_realloc(q->v, cap * sizeof(*v));

        if (v == NULL)
            return CADRE_ENOMEM;
        q->v = v;
        q->cap = cap;
    }
    /* Keep the load factor under one half. */
    if (2 * (q->n + 1) >= q->slots_n &&
        queues_rehash(q, q->slots_n ? q->slots_n * 2 : 64) != CADRE_OK)
        return CADRE_ENOMEM;
    e = &q->v[q->n];
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->name_len = (uint8_t)len;
    q->slots[queues_slot(q, name, len)] = (uint32_t)(q->n + 1);
    *idx = q->n++;
    return CADRE_OK;
}

int
queues_edit(struct queues *q, const char *name, size_t len,
            struct queues_counts **out)
{
    struct queues_entry *e = queues_find(q, name, len);
    size_t               idx;

    if (e != NULL) {
        idx = (size_t)(e - q->v);
    } else if (queues_add(q, name, len, &idx) != CADRE_OK) {
        return CADRE_ENOMEM;
    }
    e = &q->v[idx];
    if (q->in_txn && e->gen != q->gen) {
        if (q->undo_n == q->undo_cap) {
            size_t              cap = q->undo_cap ? q->undo_cap * 2 : 16;
            struct queues_undo *u = cd_realloc(q->undo, cap * sizeof(*u));

            /* A queue just added stays, zeroed: rollback drops it anyway. */
            if (u == NULL)
                return CADRE_ENOMEM;
            q->undo = u;
            q->undo_cap = cap;
        }
        q->undo[q->undo_n++] = (struct queues_undo){idx, e->c};
        e->gen = q->gen;
    }
    *out = &e->c;
    return CADRE_OK;
}

void
queues_begin(struct queues *q)
{
    q->gen++;
    q->in_txn = 1;
    q->undo_n = 0;
    q->n_at_begin = q->n;
}

void
queues_commit(struct queues *q)
{
    q->in_txn = 0;
    q->undo_n = 0;
}

void
queues_rollback(struct queues *q)
{
    for (size_t i = q->undo_n; i-- > 0;) {
        if (q->undo[i].idx < q->n_at_begin)
            q->v[q->undo[i].idx].c = q->undo[i].before;
    }
    if (q->n != q->n_at_begin) {
        /* Linear probing has no tombstones: rebuild rather than delete. */
        q->n = q->n_at_begin;
        queues_reindex(q);
    }
    q->in_txn = 0;
    q->undo_n = 0;
}
