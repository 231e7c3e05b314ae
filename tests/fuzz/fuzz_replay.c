/* fuzz_replay.c: libFuzzer target for the anti-replay table (replay_check).
 * The input is a table size and then a sequence of 4-byte frames (role,
 * sender, boot, counter, ts, clock step) drawn from small ranges, so keys
 * collide, counters repeat, the window slides and the table fills and
 * evicts. Oracle, from replay.h's contract, against a shadow of the table:
 * a counter accepted for a key is never accepted again while the key is
 * surely still in the table, and a key surely in the table never gets SKEW.
 * "Surely" is conservative: a key idle for more than 2 x skew_ms may be
 * reclaimed, and an eviction may drop any key seen no later than the least
 * recently seen key the shadow is sure of; such keys lose their shadow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/replay.h"

#define FUZZ_SKEW_MS 1000
#define FUZZ_KEYS 32     /* role 0..3 x sender 0..3 x boot 0..1 */
#define FUZZ_ACCEPTED 64 /* shadow counters kept per key */
#define FUZZ_MAX_FRAMES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_key {
    int      sure;     /* surely in the table */
    uint64_t seen_ms;  /* now_ms at its last frame (the table's seen_ms) */
    uint64_t seen_seq; /* LRU order: the frame number of its last frame */
    size_t   n;        /* accepted counters kept, a ring when full */
    size_t   next;
    uint64_t accepted[FUZZ_ACCEPTED];
};

static void
fuzz_key_forget(struct fuzz_key *k)
{
    k->sure = 0;
    k->n = 0;
    k->next = 0;
}

static int
fuzz_key_accepted(const struct fuzz_key *k, uint64_t counter)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->accepted[i] == counter)
            return 1;
    return 0;
}

static void
fuzz_key_accept(struct fuzz_key *k, uint64_t counter)
{
    k->accepted[k->next] = counter;
    k->next = (k->next + 1) % FUZZ_ACCEPTED;
    if (k->n < FUZZ_ACCEPTED)
        k->n++;
}

/* Counters: small ones collide, the others jump past the window or sit at
 * the ends of the range. */
static uint64_t
fuzz_counter(unsigned cls, uint8_t low)
{
    switch (cls) {
    case 0:
    case 1:
    case 2:
        return low % 16;
    case 3:
        return low;
    case 4:
        return REPLAY_WINDOW - 8 + (uint64_t)low;
    case 5:
        return 2 * REPLAY_WINDOW + (uint64_t)low * 64;
    case 6:
        return ((uint64_t)1 << 40) + low;
    default:
        return UINT64_MAX - low;
    }
}

/* Clock steps, in ms: mostly small, sometimes past the idle time (2 x
 * skew), sometimes back. */
static uint64_t
fuzz_step(uint64_t now_ms, uint8_t b)
{
    switch (b >> 5) {
    case 0:
    case 1:
        return now_ms;
    case 2:
        return now_ms + (b & 31);
    case 3:
        return now_ms + (uint64_t)(b & 31) * 100;
    case 4:
        return now_ms + 2 * FUZZ_SKEW_MS + (b & 31) - 16;
    case 5:
        return now_ms + (uint64_t)(b & 31) * 1000;
    case 6:
        return now_ms > (uint64_t)(b & 31) * 100
                   ? now_ms - (uint64_t)(b & 31) * 100
                   : 0;
    default:
        return now_ms + ((uint64_t)1 << 32);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_key keys[FUZZ_KEYS];
    struct replay         *r;
    struct replay_stats    st;
    uint64_t               now_ms = (uint64_t)1 << 40, evicted = 0, fresh = 0;
    size_t                 cap;

    if (size < 1)
        return 0;
    cap = 1 + data[0] % 12; /* 1..12 keys: fewer than FUZZ_KEYS, so evicts */
    if (replay_new(cap, FUZZ_SKEW_MS, &r) != CADRE_OK)
        abort();
    memset(keys, 0, sizeof(keys));
    data++;
    size--;
    for (uint64_t seq = 1; size >= 4 && seq <= FUZZ_MAX_FRAMES; seq++) {
        struct wire_header  h;
        struct fuzz_key    *k;
        enum replay_verdict v;
        unsigned            ki = data[0] & 31;
        uint64_t            min_sure = UINT64_MAX;
        int                 sure;

        memset(&h, 0, sizeof(h));
        h.role = (uint8_t)(ki >> 3);
        h.sender_id = (ki >> 1) & 3;
        h.boot_id = ki & 1;
        h.counter = fuzz_counter(data[0] >> 5, data[1]);
        now_ms = fuzz_step(now_ms, data[3]);
        /* ts within the skew most of the time, just outside it sometimes. */
        h.ts_ms = now_ms - FUZZ_SKEW_MS - 8 + (uint64_t)data[2] * 8;
        data += 4;
        size -= 4;

        /* Keys idle at this now_ms may be reclaimed during this check. */
        for (unsigned i = 0; i < FUZZ_KEYS; i++) {
            if (keys[i].sure && now_ms > keys[i].seen_ms &&
                now_ms - keys[i].seen_ms > 2 * FUZZ_SKEW_MS)
                fuzz_key_forget(&keys[i]);
            if (keys[i].sure && i != ki && keys[i].seen_seq < min_sure)
                min_sure = keys[i].seen_seq;
        }
        k = &keys[ki];
        sure = k->sure;

        v = replay_check(r, &h, now_ms);
        replay_get_stats(r, &st);

        if (sure && v == REPLAY_FRESH && fuzz_key_accepted(k, h.counter))
            abort(); /* a replay accepted: the counter was accepted before */
        if (sure && v == REPLAY_SKEW)
            abort(); /* a known key gets no timestamp check */
        if (st.senders > cap || (v != REPLAY_SKEW && st.senders == 0))
            abort();
        if (st.evicted != evicted) {
            /* The least recently seen key went, and only when a new key
             * came in: some key seen no later than the least recently seen
             * key we are sure of (the table may hold older ones). */
            if (st.evicted != evicted + 1 || v != REPLAY_FRESH || sure)
                abort();
            evicted = st.evicted;
            for (unsigned i = 0; i < FUZZ_KEYS; i++)
                if (i != ki && keys[i].seen_seq <= min_sure)
                    fuzz_key_forget(&keys[i]);
        }
        if (v == REPLAY_FRESH)
            fresh++;
        if (st.fresh != fresh)
            abort();
        if (v == REPLAY_SKEW) {
            fuzz_key_forget(k); /* only unknown keys get SKEW */
            continue;
        }
        /* FRESH, SEEN, TOO_OLD: the key is in the table now, just seen. */
        if (v != REPLAY_FRESH && v != REPLAY_SEEN && v != REPLAY_TOO_OLD)
            abort();
        if (!k->sure) {
            k->n = 0;
            k->next = 0;
        }
        k->sure = 1;
        k->seen_ms = now_ms;
        k->seen_seq = seq;
        if (v == REPLAY_FRESH)
            fuzz_key_accept(k, h.counter);
    }
    replay_free(r);
    return 0;
}
