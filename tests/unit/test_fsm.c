/* test_fsm.c: the leader's state machine (node/fsm.c): the command codec and
 * every malformed input, claims, locks with fencing tokens, throttle windows,
 * funnels, unique keys, the expire sweep, the item cap, determinism across
 * replicas and snapshot/restore, garbage snapshots and allocation faults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "node/fsm.h"
#include "tests/lib/tap.h"

#define T0 1700000000000ull /* a plausible Unix ms */

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

static struct fsm *
test_new(size_t max_items)
{
    struct fsm_opts opts = {max_items};
    struct fsm     *f = NULL;

    if (fsm_new(&opts, &f) != CADRE_OK)
        return NULL;
    return f;
}

static struct fsm_cmd
test_cmd(int kind, uint64_t now_ms, const char *key, const char *owner)
{
    struct fsm_cmd c;

    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.now_ms = now_ms;
    c.key = key;
    c.key_len = key ? (uint16_t)strlen(key) : 0;
    c.owner = owner;
    c.owner_len = owner ? (uint16_t)strlen(owner) : 0;
    return c;
}

/* Encodes c into an exactly sized heap buffer (so ASan sees any read past
 * it) and applies it. */
static struct fsm_result
test_apply(struct fsm *f, const struct fsm_cmd *c)
{
    struct fsm_result res;
    uint8_t           tmp[FSM_CMD_MAX];
    size_t            len = 0;
    uint8_t          *buf;

    memset(&res, 0, sizeof(res));
    if (fsm_cmd_encode(c, tmp, sizeof(tmp), &len) != CADRE_OK) {
        res.code = -1;
        return res;
    }
    buf = cd_memdup(tmp, len);
    fsm_apply(f, buf, len, &res);
    cd_free(buf);
    return res;
}

static struct fsm_result
test_claim(struct fsm *f, int kind, uint64_t now, const char *sched,
           int64_t slot)
{
    struct fsm_cmd c = test_cmd(kind, now, sched, NULL);

    c.slot_s = slot;
    return test_apply(f, &c);
}

static struct fsm_result
test_owned(struct fsm *f, int kind, uint64_t now, const char *key,
           const char *owner, uint64_t ttl_ms)
{
    struct fsm_cmd c = test_cmd(kind, now, key, owner);

    c.ttl_ms = ttl_ms;
    return test_apply(f, &c);
}

static struct fsm_result
test_throttle(struct fsm *f, uint64_t now, const char *key, uint32_t limit,
              uint64_t per_ms)
{
    struct fsm_cmd c = test_cmd(FSM_THROTTLE, now, key, NULL);

    c.limit = limit;
    c.per_ms = per_ms;
    return test_apply(f, &c);
}

static struct fsm_result
test_funnel(struct fsm *f, uint64_t now, const char *key, const char *owner,
            uint32_t limit, uint64_t ttl_ms)
{
    struct fsm_cmd c = test_cmd(FSM_FUNNEL_ACQUIRE, now, key, owner);

    c.limit = limit;
    c.ttl_ms = ttl_ms;
    return test_apply(f, &c);
}

static struct fsm_result
test_expire(struct fsm *f, uint64_t now)
{
    struct fsm_cmd c = test_cmd(FSM_EXPIRE, now, NULL, NULL);

    return test_apply(f, &c);
}

/* Snapshot bytes compare equal; frees both. */
static int
test_snap_eq(const struct fsm *a, const struct fsm *b)
{
    uint8_t *sa = NULL, *sb = NULL;
    size_t   la = 0, lb = 0;
    int      eq;

    if (fsm_snapshot(a, &sa, &la) != CADRE_OK ||
        fsm_snapshot(b, &sb, &lb) != CADRE_OK)
        return 0;
    eq = la == lb && memcmp(sa, sb, la) == 0;
    cd_free(sa);
    cd_free(sb);
    return eq;
}

/* One valid command of each kind, with every field set (unused ones too). */
static struct fsm_cmd
test_sample(int kind)
{
    struct fsm_cmd c = test_cmd(kind, T0 + 123, "reports:nightly", "job-42");

    c.slot_s = -5;
    c.ttl_ms = 30000;
    c.limit = 7;
    c.per_ms = 1000;
    return c;
}

TEST(codec_round_trip)
{
    for (int k = FSM_CLAIM; k < FSM_KIND_END; k++) {
        struct fsm_cmd in = test_sample(k), out;
        uint8_t        buf[FSM_CMD_MAX];
        size_t         len = 0;

        REQUIRE_EQ(fsm_cmd_encode(&in, buf, sizeof(buf), &len), CADRE_OK);
        CHECK_EQ(len, fsm_cmd_size(&in));
        CHECK(len <= FSM_CMD_MAX);
        CHECK_EQ(buf[0], FSM_CMD_VERSION);
        REQUIRE_EQ(fsm_cmd_decode(buf, len, &out), CADRE_OK);
        CHECK_EQ(out.kind, k);
        CHECK_EQ(out.now_ms, in.now_ms);
        if (k == FSM_EXPIRE) {
            CHECK(out.key == NULL && out.owner == NULL);
            CHECK_EQ(len, 10);
            continue;
        }
        REQUIRE_EQ(out.key_len, in.key_len);
        CHECK(memcmp(out.key, in.key, in.key_len) == 0);
        /* Strings borrow from the buffer. */
        CHECK(out.key >= (const char *)buf &&
              out.key < (const char *)buf + len);
        if (k == FSM_CLAIM || k == FSM_DONE)
            CHECK_EQ(out.slot_s, -5);
        if (k == FSM_THROTTLE)
            CHECK(out.limit == 7 && out.per_ms == 1000 && out.ttl_ms == 0);
        if (k == FSM_FUNNEL_ACQUIRE)
            CHECK(out.limit == 7 && out.ttl_ms == 30000);
        if (out.owner != NULL)
            CHECK(out.owner_len == 6 && memcmp(out.owner, "job-42", 6) == 0);
        CHECK_EQ(fsm_cmd_encode(&in, buf, len - 1, &len), CADRE_ETOOBIG);
    }
    CHECK_STR(fsm_kind_name(FSM_THROTTLE), "throttle");
    CHECK_STR(fsm_kind_name(0), "?");
    CHECK_STR(fsm_code_name(FSM_R_NOT_HOLDER), "not_holder");
    CHECK_STR(fsm_code_name(99), "?");
}

TEST(codec_limits)
{
    char           key[FSM_KEY_MAX + 2], owner[FSM_OWNER_MAX + 2];
    uint8_t        buf[FSM_CMD_MAX];
    size_t         len;
    struct fsm_cmd c, out;

    memset(key, 'k', sizeof(key));
    memset(owner, 'o', sizeof(owner));
    c = test_sample(FSM_FUNNEL_ACQUIRE);
    c.key = key;
    c.key_len = FSM_KEY_MAX;
    c.owner = owner;
    c.owner_len = FSM_OWNER_MAX;
    c.limit = FSM_FUNNEL_MAX;
    REQUIRE_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_OK);
    CHECK_EQ(fsm_cmd_decode(buf, len, &out), CADRE_OK);
    c.key_len = FSM_KEY_MAX + 1;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    CHECK_EQ(fsm_cmd_size(&c), 0);
    c.key_len = 0;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c.key_len = 3;
    c.owner_len = FSM_OWNER_MAX + 1;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c.owner_len = 3;
    c.limit = FSM_FUNNEL_MAX + 1;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c.limit = 0;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c.limit = 1;
    c.ttl_ms = 0;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c = test_sample(FSM_LOCK_ACQUIRE);
    c.ttl_ms = 0; /* a lock must expire: owner death = expiry */
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c = test_sample(FSM_UNIQUE_TAKE);
    c.ttl_ms = 0; /* until released */
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_OK);
    c = test_sample(FSM_THROTTLE);
    c.per_ms = 0;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c = test_sample(FSM_LOCK_RELEASE);
    c.owner = NULL;
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c = test_sample(0);
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    c = test_sample(FSM_KIND_END);
    CHECK_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_EINVAL);
    CHECK_EQ(fsm_cmd_size(NULL), 0);
}

/* Decodes buf[0..len) from an exactly sized copy; returns the code. */
static int
test_decode_copy(const uint8_t *buf, size_t len)
{
    uint8_t       *copy = cd_malloc(len ? len : 1);
    struct fsm_cmd out;
    int            rc;

    memcpy(copy, buf, len);
    rc = fsm_cmd_decode(len ? copy : NULL, len, &out);
    if (len > 0) { /* and apply agrees, touching nothing */
        struct fsm       *f = test_new(0);
        struct fsm_result res;

        fsm_apply(f, copy, len, &res);
        if ((rc == CADRE_OK) != (res.code != FSM_R_INVALID))
            tap_fail(__FILE__, __LINE__, "apply and decode disagree");
        fsm_free(f);
    }
    cd_free(copy);
    return rc;
}

TEST(codec_malformed)
{
    for (int k = FSM_CLAIM; k < FSM_KIND_END; k++) {
        struct fsm_cmd c = test_sample(k);
        uint8_t        buf[FSM_CMD_MAX + 1];
        size_t         len = 0;

        REQUIRE_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_OK);
        for (size_t cut = 0; cut < len; cut++)
            CHECK(test_decode_copy(buf, cut) != CADRE_OK);
        buf[len] = 0; /* a trailing byte */
        CHECK_EQ(test_decode_copy(buf, len + 1), CADRE_EPROTO);
        buf[0] = FSM_CMD_VERSION + 1;
        CHECK_EQ(test_decode_copy(buf, len), CADRE_EVERSION);
        buf[0] = 0;
        CHECK_EQ(test_decode_copy(buf, len), CADRE_EVERSION);
        buf[0] = FSM_CMD_VERSION;
        if (k == FSM_EXPIRE)
            continue;
        /* The key's length field: zero, over the limit, past the end. */
        buf[10] = 0, buf[11] = 0;
        CHECK_EQ(test_decode_copy(buf, len), CADRE_EPROTO);
        buf[10] = 0, buf[11] = FSM_KEY_MAX + 1;
        CHECK_EQ(test_decode_copy(buf, len), CADRE_EPROTO);
        buf[10] = 0xff, buf[11] = 0xff;
        CHECK_EQ(test_decode_copy(buf, len), CADRE_EPROTO);
        buf[10] = 0, buf[11] = (uint8_t)(c.key_len + 1); /* shifts fields */
        CHECK_EQ(test_decode_copy(buf, len), CADRE_EPROTO);
    }
    {
        uint8_t b[10] = {FSM_CMD_VERSION, FSM_KIND_END};

        CHECK_EQ(test_decode_copy(b, sizeof(b)), CADRE_EPROTO);
        b[1] = 0;
        CHECK_EQ(test_decode_copy(b, sizeof(b)), CADRE_EPROTO);
        b[1] = FSM_EXPIRE;
        CHECK_EQ(test_decode_copy(b, sizeof(b)), CADRE_OK);
    }
    {
        /* An owner over FSM_OWNER_MAX with the bytes present. */
        uint8_t b[10 + 2 + 1 + 2 + FSM_OWNER_MAX + 1];

        memset(b, 'x', sizeof(b));
        b[0] = FSM_CMD_VERSION;
        b[1] = FSM_LOCK_RELEASE;
        b[10] = 0, b[11] = 1;
        b[13] = 0, b[14] = FSM_OWNER_MAX + 1;
        CHECK_EQ(test_decode_copy(b, sizeof(b)), CADRE_EPROTO);
        b[14] = FSM_OWNER_MAX; /* now one byte trails */
        CHECK_EQ(test_decode_copy(b, sizeof(b)), CADRE_EPROTO);
        CHECK_EQ(test_decode_copy(b, sizeof(b) - 1), CADRE_OK);
    }
}

/* Random mutations of valid commands: never a crash or an over-read, and
 * whatever decodes re-encodes to the same bytes (one encoding per command). */
TEST(codec_mutations_are_canonical)
{
    for (int i = 0; i < 20000; i++) {
        struct fsm_cmd c = test_sample(FSM_CLAIM + (int)(test_rand() % 10)),
                       out;
        uint8_t  buf[FSM_CMD_MAX + 4], again[FSM_CMD_MAX];
        size_t   len = 0, len2 = 0;
        uint8_t *copy;

        REQUIRE_EQ(fsm_cmd_encode(&c, buf, sizeof(buf), &len), CADRE_OK);
        for (int m = (int)(test_rand() % 3); m >= 0; m--)
            buf[test_rand() % len] = (uint8_t)test_rand();
        len -= test_rand() % 4 == 0 ? test_rand() % len : 0;
        copy = cd_memdup(buf, len ? len : 1);
        if (fsm_cmd_decode(copy, len, &out) == CADRE_OK) {
            CHECK_EQ(fsm_cmd_encode(&out, again, sizeof(again), &len2),
                     CADRE_OK);
            CHECK(len2 == len && memcmp(again, copy, len) == 0);
        }
        cd_free(copy);
    }
}

TEST(claims_won_exists_done)
{
    struct fsm *f = test_new(0);
    int64_t     slots[8];
    int64_t     last = 0;

    REQUIRE(f != NULL);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 100).code, FSM_R_WON);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 100).code, FSM_R_EXISTS);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "other", 100).code, FSM_R_WON);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 101).code, FSM_R_WON);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 99).code, FSM_R_WON);
    CHECK_EQ(fsm_claimed_not_done(f, "s", 1, slots, 8), 3);
    CHECK(slots[0] == 99 && slots[1] == 100 && slots[2] == 101);
    CHECK_EQ(fsm_claimed_not_done(f, "s", 1, slots, 1), 3); /* the total */
    CHECK_EQ(fsm_last_done(f, "s", 1, &last), 0);
    CHECK_EQ(test_claim(f, FSM_DONE, T0, "s", 100).count, 2);
    CHECK_EQ(test_claim(f, FSM_DONE, T0, "s", 100).code, FSM_R_OK);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 100).code, FSM_R_EXISTS);
    CHECK_EQ(test_claim(f, FSM_DONE, T0, "s", 5).code, FSM_R_NOT_HOLDER);
    CHECK_EQ(test_claim(f, FSM_DONE, T0, "nope", 5).code, FSM_R_NOT_HOLDER);
    CHECK_EQ(fsm_claimed_not_done(f, "s", 1, slots, 8), 2);
    CHECK(slots[0] == 99 && slots[1] == 101);
    CHECK_EQ(fsm_last_done(f, "s", 1, &last), 1);
    CHECK_EQ(last, 100);
    CHECK_EQ(fsm_claimed_not_done(f, "nope", 4, slots, 8), 0);
    CHECK_EQ(fsm_claimed_not_done(f, "", 0, slots, 8), 0);
    fsm_free(f);
}

/* DONE records who holds the slot's job: the first DONE wins, a later DONE
 * by another node changes nothing, and the record survives a snapshot. */
TEST(slot_state_done_by)
{
    struct fsm    *f = test_new(0), *g = test_new(0);
    struct fsm_cmd c = test_cmd(FSM_DONE, T0, "s", NULL);
    uint32_t       by = 99;
    uint8_t       *snap = NULL;
    size_t         n = 0;

    REQUIRE(f != NULL && g != NULL);
    CHECK_EQ(fsm_slot_state(f, "s", 1, 7, &by), FSM_SLOT_UNKNOWN);
    CHECK_EQ(by, 0);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 7).code, FSM_R_WON);
    CHECK_EQ(fsm_slot_state(f, "s", 1, 7, &by), FSM_SLOT_CLAIMED);
    c.slot_s = 7;
    c.by = 3;
    CHECK_EQ(test_apply(f, &c).code, FSM_R_OK);
    c.by = 2; /* a second dispatcher's DONE is answered OK, but not recorded */
    CHECK_EQ(test_apply(f, &c).code, FSM_R_OK);
    CHECK_EQ(fsm_slot_state(f, "s", 1, 7, &by), FSM_SLOT_DONE);
    CHECK_EQ(by, 3);
    REQUIRE(fsm_snapshot(f, &snap, &n) == CADRE_OK);
    REQUIRE(fsm_restore(g, snap, n) == CADRE_OK);
    CHECK_EQ(fsm_slot_state(g, "s", 1, 7, &by), FSM_SLOT_DONE);
    CHECK_EQ(by, 3);
    CHECK_EQ(fsm_slot_state(g, "s", 1, 8, &by), FSM_SLOT_UNKNOWN);
    CHECK_EQ(fsm_slot_state(g, "t", 1, 7, &by), FSM_SLOT_UNKNOWN);
    cd_free(snap);
    fsm_free(f);
    fsm_free(g);
}

/* Done slots are pruned to the last FSM_DONE_KEEP; an old pending slot is
 * never forgotten; a pruned slot still answers EXISTS. */
TEST(claims_pruned_but_bounded)
{
    struct fsm      *f = test_new(0);
    struct fsm_stats st;
    int64_t          slots[4];
    const int64_t    n = FSM_DONE_KEEP + 500;

    REQUIRE(f != NULL);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 0).code, FSM_R_WON);
    for (int64_t s = 1; s <= n; s++) {
        CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", s).code, FSM_R_WON);
        CHECK_EQ(test_claim(f, FSM_DONE, T0, "s", s).code, FSM_R_OK);
    }
    fsm_get_stats(f, &st);
    CHECK_EQ(st.items, 1 + 1 + FSM_DONE_KEEP); /* entry, slot 0, done */
    CHECK_EQ(fsm_claimed_not_done(f, "s", 1, slots, 4), 1);
    CHECK_EQ(slots[0], 0);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 1).code, FSM_R_EXISTS);
    {
        uint32_t by = 1;

        CHECK_EQ(fsm_slot_state(f, "s", 1, 1, &by), FSM_SLOT_PRUNED);
        CHECK_EQ(by, 0);
    }
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", n - FSM_DONE_KEEP).code,
             FSM_R_EXISTS);
    CHECK_EQ(test_claim(f, FSM_DONE, T0, "s", 1).code, FSM_R_OK);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", n + 1).code, FSM_R_WON);
    CHECK_EQ(test_claim(f, FSM_DONE, T0, "s", 0).code, FSM_R_OK);
    CHECK_EQ(fsm_claimed_not_done(f, "s", 1, slots, 4), 1);
    CHECK_EQ(slots[0], n + 1);
    fsm_free(f);
}

TEST(lock_mutual_exclusion_and_tokens)
{
    struct fsm       *f = test_new(0);
    struct fsm_result a, b, c;
    uint64_t          last = 0;

    REQUIRE(f != NULL);
    a = test_owned(f, FSM_LOCK_ACQUIRE, T0, "L", "alice", 1000);
    CHECK_EQ(a.code, FSM_R_OK);
    CHECK(a.token >= 1);
    b = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 100, "L", "bob", 1000);
    CHECK_EQ(b.code, FSM_R_HELD);
    CHECK_EQ(b.retry_after_ms, 900);
    CHECK_EQ(b.token, a.token);
    CHECK_STR(b.holder, "alice");
    CHECK_EQ(b.holder_len, 5);
    /* The holder again: a refresh, same token, new expiry. */
    c = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 500, "L", "alice", 1000);
    CHECK(c.code == FSM_R_OK && c.token == a.token);
    b = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 1200, "L", "bob", 1000);
    CHECK(b.code == FSM_R_HELD && b.retry_after_ms == 300);
    /* Release by a non-holder is refused; by the holder it frees. */
    CHECK_EQ(test_owned(f, FSM_LOCK_RELEASE, T0 + 1300, "L", "bob", 0).code,
             FSM_R_NOT_HOLDER);
    CHECK_EQ(test_owned(f, FSM_LOCK_RELEASE, T0 + 1300, "M", "bob", 0).code,
             FSM_R_NOT_HOLDER);
    CHECK_EQ(test_owned(f, FSM_LOCK_RELEASE, T0 + 1300, "L", "alice", 0).code,
             FSM_R_OK);
    b = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 1300, "L", "bob", 1000);
    CHECK(b.code == FSM_R_OK && b.token > a.token);
    /* Owner death: bob never releases; at his expiry (by the command's
     * time) carol gets it with a larger token, and bob's release fails. */
    c = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 2299, "L", "carol", 1000);
    CHECK(c.code == FSM_R_HELD && c.retry_after_ms == 1);
    c = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 2300, "L", "carol", 1000);
    CHECK(c.code == FSM_R_OK && c.token > b.token);
    CHECK_EQ(test_owned(f, FSM_LOCK_RELEASE, T0 + 2300, "L", "bob", 0).code,
             FSM_R_NOT_HOLDER);
    /* Tokens are one counter over all keys, strictly increasing. */
    last = c.token;
    for (int i = 0; i < 200; i++) {
        char key[16];

        snprintf(key, sizeof(key), "k%d", i % 7);
        a = test_owned(f, FSM_LOCK_ACQUIRE, T0 + 10000 + (uint64_t)i * 50, key,
                       i % 2 ? "x" : "y", 60);
        if (a.code == FSM_R_OK && a.token != last) {
            CHECK(a.token > last);
            last = a.token;
        }
    }
    fsm_free(f);
}

/* Many contending owners over simulated time: at any time at most one live
 * holder per lock, and tokens handed out only increase. */
TEST(lock_contention_model)
{
    struct fsm *f = test_new(0);
    int         holder = -1;
    uint64_t    until = 0, last = 0, now = T0;

    REQUIRE(f != NULL);
    for (int i = 0; i < 5000; i++) {
        int               who = (int)(test_rand() % 8);
        char              owner[8];
        struct fsm_result r;

        snprintf(owner, sizeof(owner), "w%d", who);
        now += test_rand() % 40;
        if (test_rand() % 3 == 0) {
            r = test_owned(f, FSM_LOCK_RELEASE, now, "L", owner, 0);
            int mine = holder == who && now < until;

            CHECK_EQ(r.code, mine ? FSM_R_OK : FSM_R_NOT_HOLDER);
            if (mine || now >= until)
                holder = -1;
            continue;
        }
        r = test_owned(f, FSM_LOCK_ACQUIRE, now, "L", owner, 100);
        if (holder != -1 && now < until && holder != who) {
            CHECK_EQ(r.code, FSM_R_HELD);
            continue;
        }
        REQUIRE_EQ(r.code, FSM_R_OK);
        if (holder != who || now >= until) {
            CHECK(r.token > last);
            last = r.token;
        }
        CHECK_EQ(r.token, last);
        holder = who;
        until = now + 100;
    }
    fsm_free(f);
}

/* 5 s of simulated commands from 4 clients: at most limit x windows pass. */
TEST(throttle_at_most_limit_per_window)
{
    struct fsm *f = test_new(0);
    uint64_t    start = T0 + 437; /* not aligned to a window */
    int         ok = 0, limited = 0;
    int         per_window[8] = {0};

    REQUIRE(f != NULL);
    for (uint64_t now = start; now < start + 5000; now += 3) {
        for (int c = 0; c < 4; c++) {
            struct fsm_result r = test_throttle(f, now, "api", 10, 1000);

            if (r.code == FSM_R_OK) {
                ok++;
                per_window[(now / 1000) - (start / 1000)]++;
                CHECK(r.count >= 1 && r.count <= 10);
            } else {
                CHECK_EQ(r.code, FSM_R_LIMITED);
                CHECK_EQ(r.retry_after_ms, 1000 - now % 1000);
                limited++;
            }
        }
    }
    /* [start, start + 5 s) touches 6 aligned windows. */
    CHECK(ok <= 10 * 6);
    CHECK_EQ(ok, 60);
    CHECK(limited > 0);
    for (int w = 0; w < 6; w++)
        CHECK_EQ(per_window[w], 10);
    /* A clock stepped back counts in the current window. */
    CHECK_EQ(test_throttle(f, start - 3000, "api", 10, 1000).code,
             FSM_R_LIMITED);
    /* Other keys are independent; a new period restarts the key. */
    CHECK_EQ(test_throttle(f, start + 5000, "other", 1, 1000).code, FSM_R_OK);
    CHECK_EQ(test_throttle(f, start + 5000, "other", 1, 1000).code,
             FSM_R_LIMITED);
    CHECK_EQ(test_throttle(f, start + 5000, "other", 1, 60000).code, FSM_R_OK);
    fsm_free(f);
}

TEST(funnel_caps_holders)
{
    struct fsm       *f = test_new(0);
    struct fsm_result r;

    REQUIRE(f != NULL);
    CHECK_EQ(test_funnel(f, T0, "F", "a", 2, 1000).count, 1);
    CHECK_EQ(test_funnel(f, T0 + 10, "F", "b", 2, 1000).count, 2);
    r = test_funnel(f, T0 + 100, "F", "c", 2, 1000);
    CHECK(r.code == FSM_R_LIMITED && r.retry_after_ms == 900 && r.count == 2);
    /* A holder again refreshes, taking no second place. */
    r = test_funnel(f, T0 + 100, "F", "a", 2, 1000);
    CHECK(r.code == FSM_R_OK && r.count == 2);
    r = test_funnel(f, T0 + 200, "F", "c", 2, 1000);
    CHECK(r.code == FSM_R_LIMITED && r.retry_after_ms == 810);
    CHECK_EQ(test_owned(f, FSM_FUNNEL_RELEASE, T0 + 300, "F", "c", 0).code,
             FSM_R_NOT_HOLDER);
    CHECK_EQ(test_owned(f, FSM_FUNNEL_RELEASE, T0 + 300, "F", "b", 0).code,
             FSM_R_OK);
    CHECK_EQ(test_funnel(f, T0 + 300, "F", "c", 2, 1000).code, FSM_R_OK);
    /* a's refresh ran to T0 + 1100, c's to T0 + 1300. */
    CHECK_EQ(test_funnel(f, T0 + 1100, "F", "d", 2, 1000).code, FSM_R_OK);
    CHECK_EQ(test_funnel(f, T0 + 1100, "F", "e", 2, 1000).code, FSM_R_LIMITED);
    CHECK_EQ(test_owned(f, FSM_FUNNEL_RELEASE, T0 + 1100, "F", "a", 0).code,
             FSM_R_NOT_HOLDER);
    /* A lower limit in a later command applies at once. */
    CHECK_EQ(test_funnel(f, T0 + 1100, "F", "e", 1, 1000).code, FSM_R_LIMITED);
    CHECK_EQ(test_owned(f, FSM_FUNNEL_RELEASE, T0 + 1, "G", "a", 0).code,
             FSM_R_NOT_HOLDER);
    fsm_free(f);
}

TEST(unique_take_release)
{
    struct fsm       *f = test_new(0);
    struct fsm_result r;

    REQUIRE(f != NULL);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0, "U", "job-1", 0).code,
             FSM_R_OK);
    r = test_owned(f, FSM_UNIQUE_TAKE, T0 + 1000000, "U", "job-2", 0);
    CHECK(r.code == FSM_R_EXISTS && r.retry_after_ms == 0);
    CHECK_STR(r.holder, "job-1");
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0, "U", "job-1", 0).code,
             FSM_R_OK);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_RELEASE, T0, "U", "job-2", 0).code,
             FSM_R_NOT_HOLDER);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_RELEASE, T0, "U", "job-1", 0).code,
             FSM_R_OK);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_RELEASE, T0, "U", "job-1", 0).code,
             FSM_R_NOT_HOLDER);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0, "U", "job-2", 500).code,
             FSM_R_OK);
    r = test_owned(f, FSM_UNIQUE_TAKE, T0 + 200, "U", "job-3", 0);
    CHECK(r.code == FSM_R_EXISTS && r.retry_after_ms == 300);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0 + 500, "U", "job-3", 0).code,
             FSM_R_OK);
    /* Unique keys and locks of the same name are different things. */
    CHECK_EQ(test_owned(f, FSM_LOCK_ACQUIRE, T0, "U", "job-9", 10).code,
             FSM_R_OK);
    CHECK_EQ(fsm_unique_held(f, "nope", 4, T0), 0);
    CHECK_EQ(fsm_unique_held(f, "U", 1, T0 + 500), 1); /* job-3, no ttl */
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0, "V", "job-4", 100).code,
             FSM_R_OK);
    CHECK_EQ(fsm_unique_held(f, "V", 1, T0 + 99), 1);
    CHECK_EQ(fsm_unique_held(f, "V", 1, T0 + 100), 0); /* its ttl passed */
    fsm_free(f);
}

TEST(expire_sweeps_by_command_time)
{
    struct fsm      *f = test_new(0);
    struct fsm_stats st;

    REQUIRE(f != NULL);
    for (int i = 0; i < 300; i++) {
        char key[16];

        snprintf(key, sizeof(key), "k%d", i);
        test_owned(f, FSM_LOCK_ACQUIRE, T0, key, "o", 100 + (uint64_t)i);
        test_owned(f, FSM_UNIQUE_TAKE, T0, key, "o", i % 2 ? 0 : 100);
        test_funnel(f, T0, key, "o", 3, 100);
        test_funnel(f, T0, key, "p", 3, 10000);
        test_throttle(f, T0, key, 5, 1000);
    }
    test_claim(f, FSM_CLAIM, T0, "s", 1);
    fsm_get_stats(f, &st);
    CHECK_EQ(st.items, 300 * 6 + 2);
    /* Nothing yet. */
    CHECK_EQ(test_expire(f, T0 + 99).count, 0);
    /* Locks k0..k100 (expiry at or before now: a lock expires at
     * now_ms >= its expiry), even uniques, every o holder. */
    CHECK_EQ(test_expire(f, T0 + 200).count, 101 + 150 + 300);
    /* Then the throttle windows (T0 is 1700000000000, a window edge)... */
    CHECK_EQ(test_expire(f, T0 + 1000).count, 199 + 300);
    /* ...and the funnels with their last holders. */
    CHECK_EQ(test_expire(f, T0 + 10000).count, 600);
    fsm_get_stats(f, &st);
    CHECK_EQ(st.items, 150 + 2); /* uniques until released, the schedule */
    CHECK_EQ(st.entries, 151);
    fsm_free(f);
}

TEST(cap_gives_full_and_changes_nothing)
{
    struct fsm      *f = test_new(4);
    struct fsm      *g = test_new(4);
    struct fsm_stats st;

    REQUIRE(f != NULL && g != NULL);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 1).code, FSM_R_WON);
    CHECK_EQ(test_owned(f, FSM_LOCK_ACQUIRE, T0, "L", "a", 100).code, FSM_R_OK);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0, "U", "a", 0).code, FSM_R_OK);
    fsm_get_stats(f, &st);
    CHECK_EQ(st.items, 4);
    REQUIRE(fsm_restore(g, NULL, 0) == CADRE_ECORRUPT);
    {
        uint8_t *s = NULL;
        size_t   n = 0;

        REQUIRE_EQ(fsm_snapshot(f, &s, &n), CADRE_OK);
        REQUIRE_EQ(fsm_restore(g, s, n), CADRE_OK);
        cd_free(s);
    }
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 2).code, FSM_R_FULL);
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "t", 1).code, FSM_R_FULL);
    CHECK_EQ(test_owned(f, FSM_LOCK_ACQUIRE, T0, "M", "a", 100).code,
             FSM_R_FULL);
    CHECK_EQ(test_owned(f, FSM_UNIQUE_TAKE, T0, "V", "a", 0).code, FSM_R_FULL);
    CHECK_EQ(test_throttle(f, T0, "T", 1, 1000).code, FSM_R_FULL);
    CHECK_EQ(test_funnel(f, T0, "F", "a", 1, 1000).code, FSM_R_FULL);
    /* What needs no new item still works. */
    CHECK_EQ(test_claim(f, FSM_CLAIM, T0, "s", 1).code, FSM_R_EXISTS);
    CHECK_EQ(test_owned(f, FSM_LOCK_ACQUIRE, T0, "L", "a", 100).code, FSM_R_OK);
    CHECK_EQ(test_owned(f, FSM_LOCK_ACQUIRE, T0 + 100, "L", "b", 100).code,
             FSM_R_OK); /* an expired lock's entry is reused */
    CHECK(test_snap_eq(f, g) == 0);
    /* A release makes room. */
    CHECK_EQ(test_owned(f, FSM_UNIQUE_RELEASE, T0, "U", "a", 0).code, FSM_R_OK);
    CHECK_EQ(test_throttle(f, T0, "T", 1, 1000).code, FSM_R_OK);
    fsm_free(f);
    fsm_free(g);
}

/* A random command over a small key space, so that keys collide. */
static struct fsm_cmd
test_random_cmd(uint64_t *now, char *key, char *owner)
{
    uint64_t       x = test_rand();
    int            kind = FSM_CLAIM + (int)(x % 10);
    struct fsm_cmd c;

    if (kind == FSM_EXPIRE && x % 7 != 0)
        kind = FSM_THROTTLE; /* sweeps are O(items): keep them rare */
    *now += (x >> 8) % 50;
    /* A leader change now and then brings a clock a little behind. */
    if ((x >> 16) % 500 == 0)
        *now -= 300;
    snprintf(key, 8, "k%u", (unsigned)((x >> 24) % 40));
    snprintf(owner, 8, "o%u", (unsigned)((x >> 32) % 6));
    c = test_cmd(kind, *now, key, owner);
    c.slot_s = (int64_t)((x >> 40) % 3000) - 100;
    c.ttl_ms =
        kind == FSM_UNIQUE_TAKE && (x >> 52) % 3 == 0 ? 0 : 1 + (x >> 44) % 400;
    c.limit = 1 + (uint32_t)((x >> 56) % 4);
    c.per_ms = (x >> 60) % 2 ? 100 : 250;
    return c;
}

/* Two replicas fed the same 100k commands answer the same and end with
 * byte-identical snapshots; a third restored from a snapshot midway (another
 * table layout) goes on answering exactly like them. */
TEST(determinism_and_restore_midway)
{
    struct fsm *a = test_new(0), *b = test_new(0), *c = test_new(0);
    uint64_t    now = T0;
    int         diff = 0, restored = 0;
    int         codes[FSM_R_FULL + 1] = {0};

    REQUIRE(a != NULL && b != NULL && c != NULL);
    test_rng = 12345;
    for (int i = 0; i < 100000; i++) {
        char              key[8], owner[8];
        struct fsm_cmd    cmd = test_random_cmd(&now, key, owner);
        struct fsm_result ra = test_apply(a, &cmd), rb = test_apply(b, &cmd);

        diff += memcmp(&ra, &rb, sizeof(ra)) != 0;
        if (ra.code >= 0 && ra.code <= FSM_R_FULL)
            codes[ra.code]++;
        if (restored) {
            struct fsm_result rc = test_apply(c, &cmd);

            diff += memcmp(&ra, &rc, sizeof(ra)) != 0;
        }
        if (i == 50000) {
            uint8_t *s = NULL;
            size_t   n = 0;

            REQUIRE_EQ(fsm_snapshot(a, &s, &n), CADRE_OK);
            REQUIRE_EQ(fsm_restore(c, s, n), CADRE_OK);
            cd_free(s);
            restored = 1;
            CHECK(test_snap_eq(a, c));
        }
    }
    CHECK_EQ(diff, 0);
    /* The sequence exercises every answer but INVALID and FULL. */
    for (int k = FSM_R_OK; k <= FSM_R_NOT_HOLDER; k++)
        if (codes[k] <= 20)
            tap_fail(__FILE__, __LINE__, "%s: %d", fsm_code_name(k), codes[k]);
    CHECK(test_snap_eq(a, b));
    CHECK(test_snap_eq(a, c));
    fsm_free(a);
    fsm_free(b);
    fsm_free(c);
}

/* A state with every kind of entry, for the snapshot tests. */
static struct fsm *
test_busy_fsm(void)
{
    struct fsm *f = test_new(0);
    uint64_t    now = T0;

    if (f == NULL)
        return NULL;
    test_rng = 777;
    for (int i = 0; i < 400; i++) {
        char           key[8], owner[8];
        struct fsm_cmd cmd = test_random_cmd(&now, key, owner);

        test_apply(f, &cmd);
    }
    for (int64_t s = 0; s < 30; s++) {
        test_claim(f, FSM_CLAIM, now, "sched", s);
        if (s % 3)
            test_claim(f, FSM_DONE, now, "sched", s);
    }
    return f;
}

TEST(snapshot_restore_round_trip)
{
    struct fsm      *f = test_busy_fsm(), *g = test_new(0);
    uint8_t         *s = NULL, *s2 = NULL;
    size_t           n = 0, n2 = 0;
    struct fsm_stats sf, sg;
    int64_t          slots[16];

    REQUIRE(f != NULL && g != NULL);
    REQUIRE_EQ(fsm_snapshot(f, &s, &n), CADRE_OK);
    /* Restoring replaces whatever g held. */
    test_owned(g, FSM_LOCK_ACQUIRE, T0, "stale", "x", 10);
    REQUIRE_EQ(fsm_restore(g, s, n), CADRE_OK);
    REQUIRE_EQ(fsm_snapshot(g, &s2, &n2), CADRE_OK);
    CHECK(n == n2 && memcmp(s, s2, n) == 0);
    fsm_get_stats(f, &sf);
    fsm_get_stats(g, &sg);
    CHECK(sf.items == sg.items && sf.entries == sg.entries &&
          sf.last_token == sg.last_token);
    CHECK_EQ(fsm_claimed_not_done(g, "sched", 5, slots, 16), 10);
    /* Tokens keep increasing after a restore. */
    CHECK(test_owned(g, FSM_LOCK_ACQUIRE, T0 * 2, "fresh", "x", 10).token >
          sf.last_token);
    cd_free(s);
    cd_free(s2);
    fsm_free(f);
    fsm_free(g);
}

/* Restores buf[0..len) from an exact copy into g; returns the code. */
static int
test_restore_copy(struct fsm *g, const uint8_t *buf, size_t len)
{
    uint8_t *copy = cd_malloc(len ? len : 1);
    int      rc;

    memcpy(copy, buf, len);
    rc = fsm_restore(g, copy, len);
    cd_free(copy);
    return rc;
}

TEST(restore_rejects_garbage)
{
    struct fsm *f = test_busy_fsm(), *g = test_new(0), *empty = test_new(0);
    uint8_t    *s = NULL, *m;
    size_t      n = 0;
    int         ok_mut = 0;

    REQUIRE(f != NULL && g != NULL && empty != NULL);
    REQUIRE_EQ(fsm_snapshot(f, &s, &n), CADRE_OK);
    /* Every truncation; g stays as it was (empty). */
    for (size_t cut = 0; cut < n; cut++)
        CHECK_EQ(test_restore_copy(g, s, cut), CADRE_ECORRUPT);
    CHECK(test_snap_eq(g, empty));
    m = cd_memdup(s, n);
    m[4] = FSM_SNAP_VERSION + 1;
    CHECK_EQ(test_restore_copy(g, m, n), CADRE_EVERSION);
    m[4] = FSM_SNAP_VERSION;
    m[0] = 'X';
    CHECK_EQ(test_restore_copy(g, m, n), CADRE_ECORRUPT);
    cd_free(m);
    m = cd_malloc(n + 1);
    memcpy(m, s, n);
    m[n] = 0;
    CHECK_EQ(test_restore_copy(g, m, n + 1), CADRE_ECORRUPT);
    cd_free(m);
    /* Random byte flips: rejected, or a valid state that snapshots back to
     * exactly those bytes (one encoding per state). */
    for (int i = 0; i < 1500; i++) {
        struct fsm *h = test_new(0);
        uint8_t    *back = NULL;
        size_t      blen = 0;

        m = cd_memdup(s, n);
        for (int k = (int)(test_rand() % 3); k >= 0; k--)
            m[test_rand() % n] ^= (uint8_t)(1u << (test_rand() % 8));
        if (fsm_restore(h, m, n) == CADRE_OK) {
            ok_mut++;
            REQUIRE_EQ(fsm_snapshot(h, &back, &blen), CADRE_OK);
            CHECK(blen == n && memcmp(back, m, n) == 0);
            cd_free(back);
        }
        cd_free(m);
        fsm_free(h);
    }
    CHECK(ok_mut < 1500);
    for (int i = 0; i < 200; i++) {
        uint8_t junk[64];

        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (uint8_t)test_rand();
        if (i % 2)
            memcpy(junk, s, 5);
        CHECK(test_restore_copy(g, junk, (size_t)i % 64) != CADRE_OK);
    }
    CHECK(test_snap_eq(g, empty));
    cd_free(s);
    fsm_free(f);
    fsm_free(g);
    fsm_free(empty);
}

/* Hand-made snapshots that break a rule the code relies on. */
TEST(restore_rejects_broken_rules)
{
    /* "CDFS" v1, last_token 1, 2 entries: lock "a" held by "o", token T. */
    static const uint8_t hdr[] = {'C', 'D', 'F', 'S', 1, 0, 0, 0, 0,
                                  0,   0,   0,   1,   0, 0, 0, 2};
    static const uint8_t lock_a[] = {2, 0, 1, 'a', 0, 1, 'o', 0, 0, 0, 0, 0,
                                     0, 0, 1, 0,   0, 0, 0,   0, 0, 0, 9};
    struct fsm          *g = test_new(0);
    uint8_t              b[sizeof(hdr) + 2 * sizeof(lock_a)];

    REQUIRE(g != NULL);
    memcpy(b, hdr, sizeof(hdr));
    memcpy(b + sizeof(hdr), lock_a, sizeof(lock_a));
    b[16] = 1;
    CHECK_EQ(test_restore_copy(g, b, sizeof(hdr) + sizeof(lock_a)), CADRE_OK);
    /* The same key twice (not strictly ascending). */
    b[16] = 2;
    memcpy(b + sizeof(hdr) + sizeof(lock_a), lock_a, sizeof(lock_a));
    CHECK_EQ(test_restore_copy(g, b, sizeof(b)), CADRE_ECORRUPT);
    /* Second key "b": accepted; then a token above the counter. */
    b[sizeof(hdr) + sizeof(lock_a) + 3] = 'b';
    CHECK_EQ(test_restore_copy(g, b, sizeof(b)), CADRE_OK);
    b[sizeof(hdr) + 14] = 2;
    CHECK_EQ(test_restore_copy(g, b, sizeof(b)), CADRE_ECORRUPT);
    b[sizeof(hdr) + 14] = 1;
    /* An unknown entry type, and an entry count that does not match. */
    b[sizeof(hdr)] = 9;
    CHECK_EQ(test_restore_copy(g, b, sizeof(b)), CADRE_ECORRUPT);
    b[sizeof(hdr)] = 2;
    b[16] = 3;
    CHECK_EQ(test_restore_copy(g, b, sizeof(b)), CADRE_ECORRUPT);
    fsm_free(g);
}

TEST(alloc_faults)
{
    struct fsm *f = test_busy_fsm(), *g = NULL;
    uint8_t    *s = NULL, *s2 = NULL;
    size_t      n = 0, n2 = 0;
    int         rc = CADRE_ENOMEM, tries;

    REQUIRE(f != NULL);
    for (tries = 0; tries < 10 && rc != CADRE_OK; tries++) {
        cd_alloc_fail_after(tries);
        rc = fsm_new(NULL, &g);
        cd_alloc_fail_after(-1);
        CHECK(rc == CADRE_OK || rc == CADRE_ENOMEM);
    }
    REQUIRE_EQ(rc, CADRE_OK);
    CHECK(tries > 1);
    cd_alloc_fail_after(0);
    CHECK_EQ(fsm_snapshot(f, &s, &n), CADRE_ENOMEM);
    cd_alloc_fail_after(1);
    CHECK_EQ(fsm_snapshot(f, &s, &n), CADRE_ENOMEM);
    cd_alloc_fail_after(-1);
    REQUIRE_EQ(fsm_snapshot(f, &s, &n), CADRE_OK);
    /* Restore: each failure point leaves g untouched (empty), then it
     * works. */
    rc = CADRE_ENOMEM;
    for (tries = 0; rc == CADRE_ENOMEM && tries < 100000; tries++) {
        struct fsm_stats st;

        cd_alloc_fail_after(tries);
        rc = fsm_restore(g, s, n);
        cd_alloc_fail_after(-1);
        fsm_get_stats(g, &st);
        if (rc == CADRE_ENOMEM)
            CHECK_EQ(st.items, 0);
    }
    CHECK_EQ(rc, CADRE_OK);
    REQUIRE_EQ(fsm_snapshot(g, &s2, &n2), CADRE_OK);
    CHECK(n == n2 && memcmp(s, s2, n) == 0);
    cd_free(s);
    cd_free(s2);
    fsm_free(f);
    fsm_free(g);
    fsm_free(NULL);
}

/* For the leader's note: decisions per second of the bare state machine
 * (under ASan in CI, so a floor, not the figure). */
TEST(perf_throttle_decisions_per_second)
{
    struct fsm    *f = test_new(0);
    struct fsm_cmd c = test_cmd(FSM_THROTTLE, T0, "api", NULL);
    uint8_t        buf[FSM_CMD_MAX];
    size_t         len = 0;
    uint64_t       t0, t1;
    int            ok = 0;
    const int      n = 200000;

    REQUIRE(f != NULL);
    c.limit = 100;
    c.per_ms = 1000;
    t0 = cd_mono_us();
    for (int i = 0; i < n; i++) {
        struct fsm_result res;

        c.now_ms = T0 + (uint64_t)i / 10;
        fsm_cmd_encode(&c, buf, sizeof(buf), &len);
        fsm_apply(f, buf, len, &res);
        ok += res.code == FSM_R_OK;
    }
    t1 = cd_mono_us();
    CHECK_EQ(ok, 100 * 20); /* 20 s of windows */
    printf("# fsm throttle: %.2f M decisions/s (encode + apply)\n",
           (double)n / (double)(t1 - t0 + 1));
    fsm_free(f);
}

int
main(void)
{
    TAP_RUN(T(codec_round_trip), T(codec_limits), T(codec_malformed),
            T(codec_mutations_are_canonical), T(claims_won_exists_done),
            T(slot_state_done_by), T(claims_pruned_but_bounded),
            T(lock_mutual_exclusion_and_tokens), T(lock_contention_model),
            T(throttle_at_most_limit_per_window), T(funnel_caps_holders),
            T(unique_take_release), T(expire_sweeps_by_command_time),
            T(cap_gives_full_and_changes_nothing),
            T(determinism_and_restore_midway), T(snapshot_restore_round_trip),
            T(restore_rejects_garbage), T(restore_rejects_broken_rules),
            T(alloc_faults), T(perf_throttle_decisions_per_second));
}
