/* queues.h: the store's in-memory per-queue counters (ready, delayed,
 * reserved, done and failed totals, the ready head's seq and age), keyed by
 * queue name, with an undo log so that an aborted or failed write transaction
 * puts them back as they were. Pure memory: no LMDB, no clock.
 *
 * Threads: the store's thread only. */
#ifndef STORE_QUEUES_H
#define STORE_QUEUES_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct queues_counts {
    uint64_t ready, delayed, reserved; /* jobs in each state now */
    uint64_t done, failed;             /* totals since the store was made */
    uint64_t head_seq;           /* ready > 0: seq of the first ready job */
    uint64_t head_created_at_ms; /* ready > 0: its created_at_ms */
    uint8_t  paused; /* workers take nothing from it (store/control.c) */
};

struct queues_entry {
    struct queues_counts c;
    uint64_t             gen; /* txn generation that logged it for undo */
    uint8_t              name_len;
    char                 name[STORE_QUEUE_MAX + 1]; /* NUL-terminated */
};

/* The state of a queue at the start of the write txn, for rollback. */
struct queues_undo {
    size_t               idx;
    struct queues_counts before;
};

/* Queues are never removed but by a rollback of the txn that made them, so
 * an index into v stays valid; entry pointers do not (v grows). */
struct queues {
    struct queues_entry *v;
    size_t               n, cap;
    uint32_t            *slots;   /* open addressing: index + 1, 0 = empty */
    size_t               slots_n; /* a power of two, > 2 * n */
    struct queues_undo  *undo;    /* queues edited in the open txn */
    size_t               undo_n, undo_cap;
    size_t               n_at_begin;
    uint64_t             gen; /* generation of the open txn */
    int                  in_txn;
};

void queues_init(struct queues *q);
void queues_fini(struct queues *q); /* accepts NULL */

/* The queue named (name, len), or NULL. len <= STORE_QUEUE_MAX. */
struct queues_entry *queues_find(const struct queues *q, const char *name,
                                 size_t len);

/* The counters of the queue named (name, len), created (all zero) if new,
 * for the caller to change now; inside a txn their current values are logged
 * first so that queues_rollback restores them. The pointer is valid until the
 * next queues_edit. Returns CADRE_ENOMEM (nothing changed then). */
int queues_edit(struct queues *q, const char *name, size_t len,
                struct queues_counts **out);

/* Starts logging edits (the store's write txn begins). */
void queues_begin(struct queues *q);
/* Forgets the log: the edits stay (the txn committed). */
void queues_commit(struct queues *q);
/* Restores every queue edited since queues_begin and drops queues made
 * since then (the txn was aborted or its commit failed). */
void queues_rollback(struct queues *q);

#endif
