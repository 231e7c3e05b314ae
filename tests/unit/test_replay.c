/* test_replay.c: the anti-replay window (proto/replay.c): fresh and seen
 * counters, reordering inside the window, frames below it, jumps, the skew
 * check for unknown keys, what makes a key, the bounded table (idle reclaim,
 * LRU eviction), a reference model, and allocation faults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "crypto/keys.h"
#include "proto/replay.h"
#include "tests/lib/tap.h"

#define T0 1700000000000ull /* a plausible Unix ms */
#define SKEW 30000ull

static uint64_t test_rng = 0x9e3779b97f4a7c15ull;

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t
test_rand(void)
{
    test_rng ^= test_rng >> 12;
    test_rng ^= test_rng << 25;
    test_rng ^= test_rng >> 27;
    return test_rng * 0x2545f4914f6cdd1dull;
}

static struct wire_header
test_hdr(int role, uint64_t sender, uint64_t boot, uint64_t counter,
         uint64_t ts_ms)
{
    struct wire_header h;

    memset(&h, 0, sizeof(h));
    h.version = WIRE_VERSION;
    h.role = (uint8_t)role;
    h.sender_id = sender;
    h.boot_id = boot;
    h.counter = counter;
    h.ts_ms = ts_ms;
    return h;
}

/* A client frame from sender (boot 1) stamped with the receiver's own now. */
static enum replay_verdict
test_check(struct replay *r, uint64_t sender, uint64_t counter, uint64_t now)
{
    struct wire_header h = test_hdr(KEYS_ROLE_CLIENT, sender, 1, counter, now);

    return replay_check(r, &h, now);
}

static struct replay *
test_new(size_t cap)
{
    struct replay *r = NULL;

    if (replay_new(cap, SKEW, &r) != CADRE_OK)
        return NULL;
    return r;
}

static size_t
test_senders(const struct replay *r)
{
    struct replay_stats st;

    replay_get_stats(r, &st);
    return st.senders;
}

TEST(fresh_then_seen)
{
    struct replay *r = test_new(16);

    REQUIRE(r != NULL);
    CHECK_EQ(test_check(r, 1, 1, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 1, T0), REPLAY_SEEN);
    CHECK_EQ(test_check(r, 1, 2, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 1, T0), REPLAY_SEEN);
    CHECK_EQ(test_check(r, 1, 2, T0), REPLAY_SEEN);
    /* Gaps are fine: other connections of the sender used 3..9. */
    CHECK_EQ(test_check(r, 1, 10, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 10, T0 + 1), REPLAY_SEEN);
    CHECK_EQ(test_senders(r), 1);
    replay_free(r);
}

/* Counters 1..3000 arrive shuffled within blocks of 300 (a client with a few
 * hundred requests in flight): each is accepted once, and a second pass sees
 * every counter still in the window as SEEN and the rest as TOO_OLD. */
TEST(reorder_within_window_accepted_once)
{
    enum { N = 3000, BLOCK = 300 };
    static uint64_t order[N];
    struct replay  *r = test_new(16);
    int             fresh = 0, seen = 0, too_old = 0;

    REQUIRE(r != NULL);
    for (int i = 0; i < N; i++)
        order[i] = (uint64_t)i + 1;
    for (int b = 0; b < N; b += BLOCK)
        for (int i = BLOCK - 1; i > 0; i--) {
            int      j = (int)(test_rand() % (uint64_t)(i + 1));
            uint64_t t = order[b + i];

            order[b + i] = order[b + j];
            order[b + j] = t;
        }
    for (int i = 0; i < N; i++)
        fresh += test_check(r, 7, order[i], T0) == REPLAY_FRESH;
    CHECK_EQ(fresh, N);
    for (int i = 0; i < N; i++) {
        enum replay_verdict v = test_check(r, 7, order[i], T0);

        seen += v == REPLAY_SEEN;
        too_old += v == REPLAY_TOO_OLD;
        /* top is N: N - REPLAY_WINDOW .. N are inside. */
        CHECK_EQ(v,
                 order[i] >= N - REPLAY_WINDOW ? REPLAY_SEEN : REPLAY_TOO_OLD);
    }
    CHECK_EQ(seen, REPLAY_WINDOW + 1);
    CHECK_EQ(too_old, N - REPLAY_WINDOW - 1);
    replay_free(r);
}

/* The window is the REPLAY_WINDOW counters below the highest, exactly. */
TEST(window_edges)
{
    struct replay *r = test_new(16);

    REQUIRE(r != NULL);
    CHECK_EQ(test_check(r, 1, 5000, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 5000 - REPLAY_WINDOW, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 5000 - REPLAY_WINDOW, T0), REPLAY_SEEN);
    CHECK_EQ(test_check(r, 1, 5000 - REPLAY_WINDOW - 1, T0), REPLAY_TOO_OLD);
    CHECK_EQ(test_check(r, 1, 4999, T0), REPLAY_FRESH);
    /* Counter 0 is never sealed; it is just another counter here. */
    CHECK_EQ(test_check(r, 2, 3, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 2, 0, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 2, 0, T0), REPLAY_SEEN);
    replay_free(r);
}

TEST(far_below_window_is_too_old)
{
    struct replay      *r = test_new(16);
    struct replay_stats st;

    REQUIRE(r != NULL);
    CHECK_EQ(test_check(r, 1, 100000, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 1, T0), REPLAY_TOO_OLD);
    CHECK_EQ(test_check(r, 1, 50000, T0), REPLAY_TOO_OLD);
    CHECK_EQ(test_check(r, 1, 100000 - 5000, T0), REPLAY_TOO_OLD);
    /* TOO_OLD records nothing: still TOO_OLD, not SEEN. */
    CHECK_EQ(test_check(r, 1, 1, T0), REPLAY_TOO_OLD);
    replay_get_stats(r, &st);
    CHECK_EQ(st.too_old, 4);
    CHECK_EQ(st.fresh, 1);
    replay_free(r);
}

TEST(jump_more_than_window)
{
    struct replay *r = test_new(16);

    REQUIRE(r != NULL);
    for (uint64_t c = 1; c <= 10; c++)
        CHECK_EQ(test_check(r, 1, c, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 10 + 3 * REPLAY_WINDOW, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 10, T0), REPLAY_TOO_OLD);
    /* Inside the new window nothing is marked, whatever the ring held. */
    for (uint64_t c = 10 + 2 * REPLAY_WINDOW; c < 10 + 3 * REPLAY_WINDOW; c++)
        CHECK_EQ(test_check(r, 1, c, T0), REPLAY_FRESH);
    for (uint64_t c = 10 + 2 * REPLAY_WINDOW; c <= 10 + 3 * REPLAY_WINDOW; c++)
        CHECK_EQ(test_check(r, 1, c, T0), REPLAY_SEEN);
    replay_free(r);
}

/* Smaller jumps reuse ring positions: the bits of counters that left the
 * window must not make the new counters look seen, and the old highest
 * counter must stay seen when it is still inside. */
TEST(jumps_inside_window_clear_stale_bits)
{
    static const uint64_t gaps[] = {1,   2,   63,   64,   65,
                                    500, 700, 1023, 1024, 1025};
    struct replay        *r = test_new(16);

    REQUIRE(r != NULL);
    for (size_t g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        uint64_t sender = 100 + g, top = 3000, next = top + gaps[g];

        /* Every counter of the window marked. */
        for (uint64_t c = 1; c <= top; c++)
            REQUIRE_EQ(test_check(r, sender, c, T0), REPLAY_FRESH);
        REQUIRE_EQ(test_check(r, sender, next, T0), REPLAY_FRESH);
        for (uint64_t c = top + 1; c < next; c++)
            CHECK_EQ(test_check(r, sender, c, T0), REPLAY_FRESH);
        for (uint64_t c = next - REPLAY_WINDOW; c <= top; c++)
            CHECK_EQ(test_check(r, sender, c, T0), REPLAY_SEEN);
        CHECK_EQ(test_check(r, sender, next - REPLAY_WINDOW - 1, T0),
                 REPLAY_TOO_OLD);
    }
    replay_free(r);
}

TEST(unknown_key_skew)
{
    struct replay     *r = test_new(16);
    struct wire_header h;

    REQUIRE(r != NULL);
    h = test_hdr(KEYS_ROLE_CLIENT, 1, 1, 1, T0 - 31000);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SKEW);
    h = test_hdr(KEYS_ROLE_CLIENT, 2, 1, 1, T0 + 31000);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SKEW);
    CHECK_EQ(test_senders(r), 0); /* SKEW records nothing */
    h = test_hdr(KEYS_ROLE_CLIENT, 3, 1, 1, T0 - 29000);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    h = test_hdr(KEYS_ROLE_CLIENT, 4, 1, 1, T0 + 29000);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    h = test_hdr(KEYS_ROLE_CLIENT, 5, 1, 1, T0 - SKEW); /* the edge is in */
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    h = test_hdr(KEYS_ROLE_CLIENT, 6, 1, 1, T0 + SKEW + 1);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SKEW);
    CHECK_EQ(test_senders(r), 3);
    /* Sender 1 with a sane clock is welcome afterwards. */
    h = test_hdr(KEYS_ROLE_CLIENT, 1, 1, 2, T0);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    /* A known key gets no timestamp check: its clock may drift. */
    h = test_hdr(KEYS_ROLE_CLIENT, 1, 1, 3, T0 - 3600000);
    CHECK_EQ(replay_check(r, &h, T0 + 1000), REPLAY_FRESH);
    /* A ts near 0 or UINT64_MAX does not wrap into the window. */
    h = test_hdr(KEYS_ROLE_CLIENT, 7, 1, 1, 0);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SKEW);
    h = test_hdr(KEYS_ROLE_CLIENT, 7, 1, 1, UINT64_MAX);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SKEW);
    replay_free(r);
}

TEST(new_boot_is_new_key)
{
    struct replay     *r = test_new(16);
    struct wire_header h;

    REQUIRE(r != NULL);
    h = test_hdr(KEYS_ROLE_WORKER, 9, 111, 5, T0);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SEEN);
    /* The sender restarted: counters begin again under a new boot id. */
    h = test_hdr(KEYS_ROLE_WORKER, 9, 222, 1, T0);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    h.counter = 5;
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SEEN);
    CHECK_EQ(test_senders(r), 2);
    /* A new boot is an unknown key: it must pass the skew check. */
    h = test_hdr(KEYS_ROLE_WORKER, 9, 333, 1, T0 - 60000);
    CHECK_EQ(replay_check(r, &h, T0), REPLAY_SKEW);
    replay_free(r);
}

TEST(roles_are_distinct_keys)
{
    struct replay     *r = test_new(16);
    struct wire_header h;

    REQUIRE(r != NULL);
    for (int role = KEYS_ROLE_NODE; role <= KEYS_ROLE_CLIENT; role++) {
        h = test_hdr(role, 42, 43, 1, T0);
        CHECK_EQ(replay_check(r, &h, T0), REPLAY_FRESH);
    }
    for (int role = KEYS_ROLE_NODE; role <= KEYS_ROLE_CLIENT; role++) {
        h = test_hdr(role, 42, 43, 1, T0);
        CHECK_EQ(replay_check(r, &h, T0), REPLAY_SEEN);
    }
    CHECK_EQ(test_senders(r), 3);
    replay_free(r);
}

TEST(capacity_idle_reclaim)
{
    struct replay      *r = test_new(8);
    struct replay_stats st;
    struct wire_header  h;

    REQUIRE(r != NULL);
    for (uint64_t s = 1; s <= 8; s++)
        CHECK_EQ(test_check(r, s, 1, T0), REPLAY_FRESH);
    CHECK_EQ(test_senders(r), 8);
    /* Idle for exactly 2 x skew: not yet reclaimable, so a new key costs an
     * eviction (of sender 1). */
    CHECK_EQ(test_check(r, 9, 1, T0 + 2 * SKEW), REPLAY_FRESH);
    replay_get_stats(r, &st);
    CHECK_EQ(st.evicted, 1);
    CHECK_EQ(st.senders, 8);
    /* Past 2 x skew, each frame of a known key reclaims one idle entry. */
    for (uint64_t i = 0; i < 7; i++) {
        CHECK_EQ(test_check(r, 9, 2 + i, T0 + 2 * SKEW + 1), REPLAY_FRESH);
        CHECK_EQ(test_senders(r), 7 - i);
    }
    /* A replay of a reclaimed key's frame fails the skew check: why
     * reclaiming is safe. */
    h = test_hdr(KEYS_ROLE_CLIENT, 3, 1, 1, T0);
    CHECK_EQ(replay_check(r, &h, T0 + 2 * SKEW + 1), REPLAY_SKEW);
    replay_get_stats(r, &st);
    CHECK_EQ(st.evicted, 1);
    replay_free(r);

    /* A new key reclaims idle entries in a batch, never evicting. */
    r = test_new(8);
    REQUIRE(r != NULL);
    for (uint64_t s = 1; s <= 8; s++)
        CHECK_EQ(test_check(r, s, 1, T0), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 20, 1, T0 + 2 * SKEW + 1), REPLAY_FRESH);
    replay_get_stats(r, &st);
    CHECK_EQ(st.evicted, 0);
    CHECK_EQ(st.senders, 1);
    replay_free(r);
}

TEST(capacity_lru_eviction)
{
    struct replay      *r = test_new(8);
    struct replay_stats st;

    REQUIRE(r != NULL);
    for (uint64_t s = 1; s <= 8; s++)
        CHECK_EQ(test_check(r, s, 1, T0 + s), REPLAY_FRESH);
    /* Sender 1 is active again, so sender 2 is the least recently seen. */
    CHECK_EQ(test_check(r, 1, 2, T0 + 9), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 9, 1, T0 + 10), REPLAY_FRESH);
    replay_get_stats(r, &st);
    CHECK_EQ(st.evicted, 1);
    CHECK_EQ(st.senders, 8);
    /* Sender 1 is remembered; a rejected frame counts as activity too. */
    CHECK_EQ(test_check(r, 1, 1, T0 + 11), REPLAY_SEEN);
    /* Sender 2 was forgotten: the documented trade-off, its old frame is
     * accepted once more (within skew), and that evicts sender 3. */
    CHECK_EQ(test_check(r, 2, 1, T0 + 12), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 2, 1, T0 + 12), REPLAY_SEEN);
    replay_get_stats(r, &st);
    CHECK_EQ(st.evicted, 2);
    CHECK_EQ(test_check(r, 3, 1, T0 + 13), REPLAY_FRESH);
    /* 4..9, 1 and 2 remain (3 came back evicting 4). */
    CHECK_EQ(test_check(r, 1, 2, T0 + 14), REPLAY_SEEN);
    CHECK_EQ(test_check(r, 9, 1, T0 + 14), REPLAY_SEEN);
    CHECK_EQ(test_check(r, 5, 1, T0 + 14), REPLAY_SEEN);
    replay_get_stats(r, &st);
    CHECK_EQ(st.evicted, 3);
    CHECK_EQ(st.senders, 8);
    replay_free(r);
}

TEST(stats_and_names)
{
    struct replay      *r = test_new(16);
    struct replay_stats st;
    struct wire_header  h;

    REQUIRE(r != NULL);
    replay_get_stats(r, &st);
    CHECK_EQ(st.fresh + st.seen + st.too_old + st.skew + st.evicted, 0);
    CHECK_EQ(st.senders, 0);
    test_check(r, 1, 5000, T0); /* fresh */
    test_check(r, 1, 4999, T0); /* fresh */
    test_check(r, 1, 4999, T0); /* seen */
    test_check(r, 1, 5000, T0); /* seen */
    test_check(r, 1, 5, T0);    /* too old */
    test_check(r, 2, 1, T0);    /* fresh */
    h = test_hdr(KEYS_ROLE_CLIENT, 3, 1, 1, T0 + 99999);
    replay_check(r, &h, T0); /* skew */
    replay_get_stats(r, &st);
    CHECK_EQ(st.fresh, 3);
    CHECK_EQ(st.seen, 2);
    CHECK_EQ(st.too_old, 1);
    CHECK_EQ(st.skew, 1);
    CHECK_EQ(st.evicted, 0);
    CHECK_EQ(st.senders, 2);
    CHECK_STR(replay_verdict_name(REPLAY_FRESH), "fresh");
    CHECK_STR(replay_verdict_name(REPLAY_SEEN), "seen");
    CHECK_STR(replay_verdict_name(REPLAY_TOO_OLD), "too_old");
    CHECK_STR(replay_verdict_name(REPLAY_SKEW), "skew");
    CHECK_STR(replay_verdict_name((enum replay_verdict)99), "unknown");
    replay_free(r);
}

/* Against a plain model (every accepted counter remembered in a flat array):
 * random walks around the top, with jumps, for several keys at once. */
TEST(matches_reference_model)
{
    enum { KEYS = 5, MAXC = 1 << 23, ROUNDS = 300000 };
    static uint8_t accepted[KEYS][MAXC / 8]; /* a bit per counter */
    uint64_t       top[KEYS] = {0};
    struct replay *r = test_new(64);
    int            i;

    REQUIRE(r != NULL);
    memset(accepted, 0, sizeof(accepted));
    for (i = 0; i < ROUNDS; i++) {
        int                 k = (int)(test_rand() % KEYS);
        uint64_t            x = test_rand() % 1000, c;
        enum replay_verdict want, got;

        if (x < 2)
            c = top[k] + 1 + test_rand() % 3000; /* a jump */
        else if (x < 500)
            c = top[k] + 1 + test_rand() % 40; /* ahead, with gaps */
        else
            c = top[k] > 1300 ? top[k] - test_rand() % 1300 : 1; /* behind */
        if (c >= MAXC)
            break;
        if (top[k] == 0 || c > top[k])
            want = REPLAY_FRESH;
        else if (top[k] - c > REPLAY_WINDOW)
            want = REPLAY_TOO_OLD;
        else
            want = (accepted[k][c / 8] >> (c % 8)) & 1 ? REPLAY_SEEN
                                                       : REPLAY_FRESH;
        got = test_check(r, 1000 + (uint64_t)k, c, T0);
        if (got != want) {
            tap_fail(__FILE__, __LINE__,
                     "round %d key %d counter %llu top "
                     "%llu: got %s, want %s",
                     i, k, (unsigned long long)c, (unsigned long long)top[k],
                     replay_verdict_name(got), replay_verdict_name(want));
            break;
        }
        if (got == REPLAY_FRESH) {
            accepted[k][c / 8] |= (uint8_t)(1u << (c % 8));
            if (c > top[k])
                top[k] = c;
        }
    }
    CHECK_EQ(i, ROUNDS); /* neither a mismatch nor out of counters */
    replay_free(r);
}

/* Churn through the index (many evictions, so many backward shifts): the
 * most recently seen keys are always the ones kept, and all are found. */
TEST(churn_keeps_most_recent_keys)
{
    enum { CAP = 32, KEYS = 200, ROUNDS = 200000 };
    uint64_t       counter[KEYS] = {0}, last[KEYS] = {0};
    uint64_t       order[KEYS]; /* keys by last check, most recent first */
    int            n = 0;
    struct replay *r = test_new(CAP);

    REQUIRE(r != NULL);
    for (int i = 0; i < ROUNDS; i++) {
        int k = (int)(test_rand() % KEYS), j;

        /* Uneven: low keys are much busier, so some stay resident. */
        if (test_rand() % 2)
            k %= 20;
        REQUIRE_EQ(test_check(r, (uint64_t)k + 1, ++counter[k], T0),
                   REPLAY_FRESH);
        last[k] = counter[k];
        for (j = 0; j < n && order[j] != (uint64_t)k; j++)
            ;
        if (j == n)
            n++;
        memmove(&order[1], &order[0], (size_t)j * sizeof(order[0]));
        order[0] = (uint64_t)k;
        REQUIRE(test_senders(r) <= CAP);
    }
    REQUIRE(n > CAP);
    CHECK_EQ(test_senders(r), CAP);
    /* Checked most recent last, so that these SEENs keep the LRU order. */
    for (int j = CAP - 1; j >= 0; j--)
        CHECK_EQ(test_check(r, order[j] + 1, last[order[j]], T0), REPLAY_SEEN);
    /* The next one was forgotten (trade-off: accepted again). */
    CHECK_EQ(test_check(r, order[CAP] + 1, last[order[CAP]], T0), REPLAY_FRESH);
    replay_free(r);
}

/* A million random frames (random keys, clocks, counters) never grow the
 * table beyond its capacity, and every frame gets exactly one verdict. */
TEST(million_random_checks_stay_bounded)
{
    enum { CAP = 64, ROUNDS = 1000000 };
    struct replay      *r = test_new(CAP);
    struct replay_stats st;
    uint64_t            now = T0;

    REQUIRE(r != NULL);
    for (int i = 0; i < ROUNDS; i++) {
        struct wire_header h;
        uint64_t           x = test_rand();

        now += x % 3; /* 1 ms per frame on average */
        h = test_hdr((int)((x >> 8) % KEYS_ROLE_COUNT), (x >> 16) % 500,
                     (x >> 32) % 3, test_rand() % 5000,
                     now - 45000 + test_rand() % 90000);
        replay_check(r, &h, now);
        if (i % 1000 == 0)
            REQUIRE(test_senders(r) <= CAP);
    }
    replay_get_stats(r, &st);
    CHECK(st.senders <= CAP);
    CHECK_EQ(st.fresh + st.seen + st.too_old + st.skew, ROUNDS);
    CHECK(st.fresh > 0 && st.seen > 0 && st.too_old > 0 && st.skew > 0);
    CHECK(st.evicted > 0);
    printf("# 1M random: fresh=%llu seen=%llu too_old=%llu skew=%llu "
           "evicted=%llu\n",
           (unsigned long long)st.fresh, (unsigned long long)st.seen,
           (unsigned long long)st.too_old, (unsigned long long)st.skew,
           (unsigned long long)st.evicted);
    replay_free(r);
}

TEST(new_bad_args_and_alloc_faults)
{
    struct replay *r = NULL;

    CHECK_EQ(replay_new(0, SKEW, &r), CADRE_EINVAL);
    CHECK_EQ(replay_new((size_t)REPLAY_MAX_SENDERS + 1, SKEW, &r),
             CADRE_EINVAL);
    CHECK(r == NULL);
    for (long n = 0; n < 3; n++) {
        cd_alloc_fail_after(n);
        CHECK_EQ(replay_new(16, SKEW, &r), CADRE_ENOMEM);
        cd_alloc_fail_after(-1);
        CHECK(r == NULL);
    }
    cd_alloc_fail_after(3);
    CHECK_EQ(replay_new(16, SKEW, &r), CADRE_OK);
    cd_alloc_fail_after(-1);
    REQUIRE(r != NULL);
    /* Checks never allocate. */
    cd_alloc_fail_after(0);
    for (uint64_t s = 1; s <= 100; s++)
        CHECK_EQ(test_check(r, s, 1, T0), REPLAY_FRESH);
    cd_alloc_fail_after(-1);
    replay_free(r);
    replay_free(NULL);
    /* A huge skew saturates instead of wrapping. */
    CHECK_EQ(replay_new(4, UINT64_MAX, &r), CADRE_OK);
    REQUIRE(r != NULL);
    CHECK_EQ(test_check(r, 1, 1, 1), REPLAY_FRESH);
    CHECK_EQ(test_check(r, 1, 1, UINT64_MAX), REPLAY_SEEN);
    replay_free(r);
}

/* Not a check: checks/s for 1000 senders with a few hundred frames in flight
 * each, the node's steady state. */
TEST(perf_checks_per_second)
{
    enum { SENDERS = 1000, ROUNDS = 10000000 };
    static uint64_t counter[SENDERS];
    struct replay  *r = test_new(16384);
    uint64_t        t0, t1, fresh = 0;

    REQUIRE(r != NULL);
    t0 = cd_mono_us();
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t x = test_rand();
        int      s = (int)(x % SENDERS);
        /* Mostly new counters, sometimes one a few hundred back. */
        uint64_t c = (x >> 32) % 8 != 0 || counter[s] < 300
                         ? ++counter[s]
                         : counter[s] - (x >> 40) % 300;

        fresh += test_check(r, (uint64_t)s + 1, c, T0) == REPLAY_FRESH;
    }
    t1 = cd_mono_us();
    CHECK(fresh > 0);
    printf("# replay_check: %.1f M checks/s (%.0f ns each, %d senders)\n",
           (double)ROUNDS / (double)(t1 - t0 + 1), /* per µs = M per s */
           (double)(t1 - t0) * 1000.0 / ROUNDS, SENDERS);
    replay_free(r);
}

int
main(void)
{
    TAP_RUN(T(fresh_then_seen), T(reorder_within_window_accepted_once),
            T(window_edges), T(far_below_window_is_too_old),
            T(jump_more_than_window), T(jumps_inside_window_clear_stale_bits),
            T(unknown_key_skew), T(new_boot_is_new_key),
            T(roles_are_distinct_keys), T(capacity_idle_reclaim),
            T(capacity_lru_eviction), T(stats_and_names),
            T(matches_reference_model), T(churn_keeps_most_recent_keys),
            T(million_random_checks_stay_bounded),
            T(new_bad_args_and_alloc_faults), T(perf_checks_per_second));
}
