/* replay.c: the anti-replay table (contract in replay.h). Entries live in one
 * preallocated array, found through an open-addressing index (linear probing,
 * backward-shift deletion, load <= 1/2) and ordered on an LRU list, so a check
 * is O(1) expected and the table never allocates after replay_new. */
#include "proto/replay.h"

#include <string.h>

#include "common/alloc.h"
#include "common/id.h"

#define REPLAY_WORDS (REPLAY_WINDOW / 64)
#define REPLAY_NIL UINT32_MAX
/* Idle entries reclaimed per new key, at most: bounds the work of one check
 * while still draining idle entries faster than new keys arrive. */
#define REPLAY_SWEEP_N 8

_Static_assert(REPLAY_WINDOW % 64 == 0, "the window is whole words");
_Static_assert(REPLAY_MAX_SENDERS < REPLAY_NIL, "indices fit in 32 bits");

struct replay_entry {
    uint64_t sender_id;
    uint64_t boot_id;
    uint64_t hash;
    uint64_t top;     /* highest counter accepted */
    uint64_t seen_ms; /* receiver's clock at this key's last frame */
    uint32_t prev;    /* LRU list, head = most recently seen */
    uint32_t next;    /* LRU list, or the free list */
    uint8_t  role;
    /* Bit c % REPLAY_WINDOW is set iff counter c was accepted, for the
     * counters c in [top - REPLAY_WINDOW, top - 1]; top itself is implied. */
    uint64_t bits[REPLAY_WORDS];
};

struct replay_slot {
    uint32_t idx; /* entry index + 1; 0 = empty */
    uint32_t tag; /* hash >> 32: skips most mismatches without a cache miss */
};

struct replay {
    struct replay_entry *entries;
    struct replay_slot  *slots;
    uint64_t             mask; /* slots - 1 (a power of two) */
    uint64_t             seed; /* so senders cannot precompute collisions */
    uint64_t             skew_ms;
    uint64_t             idle_ms; /* 2 x skew_ms, saturated */
    uint32_t             cap, n;
    uint32_t             head, tail; /* LRU ends */
    uint32_t             free;       /* free list of entries */
    struct replay_stats  stats;
};

/* splitmix64's finaliser: every input bit affects every output bit. */
static uint64_t
replay_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t
replay_hash(const struct replay *r, const struct wire_header *h)
{
    uint64_t x = replay_mix(r->seed ^ h->sender_id);

    x = replay_mix(x ^ h->boot_id);
    return replay_mix(x ^ h->role);
}

static int
replay_key_eq(const struct replay_entry *e, const struct wire_header *h)
{
    return e->sender_id == h->sender_id && e->boot_id == h->boot_id &&
           e->role == h->role;
}

/* ---- the bitmap window ---- */

static int
replay_bit_test(const struct replay_entry *e, uint64_t c)
{
    unsigned p = (unsigned)(c % REPLAY_WINDOW);

    return (int)((e->bits[p / 64] >> (p % 64)) & 1);
}

static void
replay_bit_set(struct replay_entry *e, uint64_t c)
{
    unsigned p = (unsigned)(c % REPLAY_WINDOW);

    e->bits[p / 64] |= (uint64_t)1 << (p % 64);
}

/* Clears n (<= REPLAY_WINDOW) ring positions from counter c's onwards, a word
 * at a time: at most REPLAY_WORDS + 1 steps whatever the gap. */
static void
replay_bits_clear(struct replay_entry *e, uint64_t c, unsigned n)
{
    unsigned p = (unsigned)(c % REPLAY_WINDOW);

    while (n > 0) {
        unsigned off = p % 64;
        unsigned take = 64 - off < n ? 64 - off : n;
        uint64_t mask =
            take == 64 ? ~(uint64_t)0 : (((uint64_t)1 << take) - 1) << off;

        e->bits[p / 64] &= ~mask;
        p = (p + take) % REPLAY_WINDOW;
        n -= take;
    }
}

/* Moves top up to c (> top). The positions of top + 1 .. c - 1 held counters
 * that now fall below the window, so they are cleared; the old top becomes an
 * ordinary accepted counter if it is still inside. */
static void
replay_advance(struct replay_entry *e, uint64_t c)
{
    uint64_t gap = c - e->top;

    if (gap > REPLAY_WINDOW) {
        memset(e->bits, 0, sizeof(e->bits));
    } else {
        replay_bits_clear(e, e->top + 1, (unsigned)gap - 1);
        replay_bit_set(e, e->top);
    }
    e->top = c;
}

static enum replay_verdict
replay_window(struct replay_entry *e, uint64_t c)
{
    uint64_t below;

    if (c > e->top) {
        replay_advance(e, c);
        return REPLAY_FRESH;
    }
    below = e->top - c;
    if (below == 0)
        return REPLAY_SEEN;
    if (below > REPLAY_WINDOW)
        return REPLAY_TOO_OLD;
    if (replay_bit_test(e, c))
        return REPLAY_SEEN;
    replay_bit_set(e, c);
    return REPLAY_FRESH;
}

/* ---- the LRU list ---- */

static void
replay_lru_unlink(struct replay *r, uint32_t i)
{
    struct replay_entry *e = &r->entries[i];

    if (e->prev != REPLAY_NIL)
        r->entries[e->prev].next = e->next;
    else
        r->head = e->next;
    if (e->next != REPLAY_NIL)
        r->entries[e->next].prev = e->prev;
    else
        r->tail = e->prev;
}

static void
replay_lru_push(struct replay *r, uint32_t i)
{
    struct replay_entry *e = &r->entries[i];

    e->prev = REPLAY_NIL;
    e->next = r->head;
    if (r->head != REPLAY_NIL)
        r->entries[r->head].prev = i;
    else
        r->tail = i;
    r->head = i;
}

static void
replay_touch(struct replay *r, uint32_t i, uint64_t now_ms)
{
    r->entries[i].seen_ms = now_ms;
    if (r->head != i) {
        replay_lru_unlink(r, i);
        replay_lru_push(r, i);
    }
}

/* ---- the index ---- */

/* The entry for h's key, or REPLAY_NIL. Terminates: at most half the slots
 * are used. */
static uint32_t
replay_find(const struct replay *r, const struct wire_header *h, uint64_t hash)
{
    uint64_t i = hash & r->mask;
    uint32_t tag = (uint32_t)(hash >> 32);

    for (;; i = (i + 1) & r->mask) {
        const struct replay_slot *s = &r->slots[i];

        if (s->idx == 0)
            return REPLAY_NIL;
        if (s->tag == tag && replay_key_eq(&r->entries[s->idx - 1], h))
            return s->idx - 1;
    }
}

static uint64_t
replay_empty_slot(const struct replay *r, uint64_t hash)
{
    uint64_t i = hash & r->mask;

    while (r->slots[i].idx != 0)
        i = (i + 1) & r->mask;
    return i;
}

static uint64_t
replay_slot_of(const struct replay *r, uint32_t idx)
{
    uint64_t i = r->entries[idx].hash & r->mask;

    while (r->slots[i].idx != idx + 1)
        i = (i + 1) & r->mask;
    return i;
}

/* Empties slot i and shifts later members of its probe run back, so lookups
 * never need tombstones (which would make a busy table probe forever). */
static void
replay_slot_delete(struct replay *r, uint64_t i)
{
    uint64_t j = i;

    for (;;) {
        uint64_t home;

        j = (j + 1) & r->mask;
        if (r->slots[j].idx == 0)
            break;
        home = r->entries[r->slots[j].idx - 1].hash & r->mask;
        /* j's entry may move to i only if i lies between its home and j. */
        if (((j - home) & r->mask) >= ((j - i) & r->mask)) {
            r->slots[i] = r->slots[j];
            i = j;
        }
    }
    r->slots[i].idx = 0;
}

/* ---- entries ---- */

static void
replay_remove(struct replay *r, uint32_t idx)
{
    replay_slot_delete(r, replay_slot_of(r, idx));
    replay_lru_unlink(r, idx);
    r->entries[idx].next = r->free;
    r->free = idx;
    r->n--;
}

static int
replay_is_idle(const struct replay *r, uint32_t idx, uint64_t now_ms)
{
    uint64_t seen_ms = r->entries[idx].seen_ms;

    return now_ms > seen_ms && now_ms - seen_ms > r->idle_ms;
}

/* Reclaims up to max idle entries from the LRU tail. The tail is the least
 * recently seen, so when it is not idle no other entry is (short of the wall
 * clock stepping back, which only delays reclaiming). */
static void
replay_reclaim(struct replay *r, uint64_t now_ms, int max)
{
    while (max-- > 0 && r->tail != REPLAY_NIL &&
           replay_is_idle(r, r->tail, now_ms))
        replay_remove(r, r->tail);
}

static void
replay_insert(struct replay *r, const struct wire_header *h, uint64_t hash,
              uint64_t now_ms)
{
    struct replay_entry *e;
    uint32_t             idx;
    uint64_t             slot;

    replay_reclaim(r, now_ms, REPLAY_SWEEP_N);
    if (r->n == r->cap) {
        /* Full of active keys: forget the least recently seen one. Its
         * frames younger than skew_ms could then be accepted again; the
         * alternative, refusing new senders, is an easy denial of service. */
        replay_remove(r, r->tail);
        r->stats.evicted++;
    }
    idx = r->free;
    e = &r->entries[idx];
    r->free = e->next;
    e->sender_id = h->sender_id;
    e->boot_id = h->boot_id;
    e->role = h->role;
    e->hash = hash;
    e->top = h->counter;
    e->seen_ms = now_ms;
    /* Counters below the first one seen are unknown, not seen: reordered
     * frames of a key's first burst are still accepted once. */
    memset(e->bits, 0, sizeof(e->bits));
    slot = replay_empty_slot(r, hash);
    r->slots[slot].idx = idx + 1;
    r->slots[slot].tag = (uint32_t)(hash >> 32);
    replay_lru_push(r, idx);
    r->n++;
}

static int
replay_within_skew(const struct replay *r, uint64_t ts_ms, uint64_t now_ms)
{
    uint64_t d = ts_ms > now_ms ? ts_ms - now_ms : now_ms - ts_ms;

    return d <= r->skew_ms;
}

static void
replay_count(struct replay *r, enum replay_verdict v)
{
    switch (v) {
    case REPLAY_FRESH:
        r->stats.fresh++;
        break;
    case REPLAY_SEEN:
        r->stats.seen++;
        break;
    case REPLAY_TOO_OLD:
        r->stats.too_old++;
        break;
    case REPLAY_SKEW:
        r->stats.skew++;
        break;
    }
}

/* ---- API ---- */

int
replay_new(size_t max_senders, uint64_t skew_ms, struct replay **out)
{
    struct replay *r;
    size_t         nslots = 16;

    if (max_senders == 0 || max_senders > REPLAY_MAX_SENDERS)
        return CADRE_EINVAL;
    while (nslots < 2 * max_senders)
        nslots <<= 1;
    r = cd_calloc(1, sizeof(*r));
    if (r == NULL)
        return CADRE_ENOMEM;
    r->entries = cd_calloc(max_senders, sizeof(*r->entries));
    r->slots = cd_calloc(nslots, sizeof(*r->slots));
    if (r->entries == NULL || r->slots == NULL) {
        replay_free(r);
        return CADRE_ENOMEM;
    }
    r->mask = nslots - 1;
    cd_random(&r->seed, sizeof(r->seed));
    r->skew_ms = skew_ms;
    r->idle_ms = skew_ms > UINT64_MAX / 2 ? UINT64_MAX : 2 * skew_ms;
    r->cap = (uint32_t)max_senders;
    r->head = r->tail = REPLAY_NIL;
    for (uint32_t i = 0; i < r->cap; i++)
        r->entries[i].next = i + 1 < r->cap ? i + 1 : REPLAY_NIL;
    r->free = 0;
    *out = r;
    return CADRE_OK;
}

void
replay_free(struct replay *r)
{
    if (r == NULL)
        return;
    cd_free(r->entries);
    cd_free(r->slots);
    cd_free(r);
}

enum replay_verdict
replay_check(struct replay *r, const struct wire_header *h, uint64_t now_ms)
{
    uint64_t            hash = replay_hash(r, h);
    uint32_t            idx = replay_find(r, h, hash);
    enum replay_verdict v;

    if (idx != REPLAY_NIL) {
        /* Known key: no timestamp check, clocks may drift after start. Any
         * frame, even a replay, keeps the entry: forgetting it would help
         * the replayer. */
        replay_touch(r, idx, now_ms);
        v = replay_window(&r->entries[idx], h->counter);
    } else if (!replay_within_skew(r, h->ts_ms, now_ms)) {
        v = REPLAY_SKEW;
    } else {
        replay_insert(r, h, hash, now_ms);
        v = REPLAY_FRESH;
    }
    /* One step per frame keeps idle entries draining between new keys. */
    replay_reclaim(r, now_ms, 1);
    replay_count(r, v);
    return v;
}

void
replay_get_stats(const struct replay *r, struct replay_stats *out)
{
    *out = r->stats;
    out->senders = r->n;
}

const char *
replay_verdict_name(enum replay_verdict v)
{
    switch (v) {
    case REPLAY_FRESH:
        return "fresh";
    case REPLAY_SEEN:
        return "seen";
    case REPLAY_TOO_OLD:
        return "too_old";
    case REPLAY_SKEW:
        return "skew";
    }
    return "unknown";
}
