/* fuzz_fsm.c: libFuzzer target for the leader's state machine: the command
 * codec (fsm_cmd_decode), fsm_apply on command sequences and fsm_restore of
 * arbitrary snapshots.
 *
 * Input: one byte (max_items choice, restore point), then commands, each
 * either raw (a byte 0x80 | n, then n bytes given to decode and apply as
 * they are) or built (a byte < 0x80 and 4 more: kind, key, owner, clock
 * step, values from small tables so keys collide and expiries pass; encoded
 * with fsm_cmd_encode). The whole input is also given to fsm_restore.
 *
 * Oracles: decode of what encode made gives back the same bytes; a command
 * that does not decode answers INVALID and one that decodes never does; two
 * fsms fed the same commands answer the same and end with identical
 * snapshots; a third restored from the first's snapshot mid-way answers
 * like it from there on (fsm.c: a restored replica answers exactly like one
 * that applied the whole log); items never pass max_items; fencing tokens
 * never go down; a snapshot restores to a state that snapshots to the same
 * bytes (one state, one encoding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"
#include "node/fsm.h"

#define FUZZ_FSM_MAX_CMDS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_fsm_cmd {
    uint8_t *buf; /* exactly len bytes, so ASan sees any overread */
    size_t   len;
};

static const size_t fuzz_fsm_caps[4] = {3, 8, 40, 2000};

static char fuzz_fsm_long_key[FSM_KEY_MAX];
static char fuzz_fsm_long_owner[FSM_OWNER_MAX];

static void
fuzz_fsm_key(uint8_t b, struct fsm_cmd *c)
{
    static const struct {
        const char *s;
        uint16_t    len;
    } keys[8] = {{"a", 1},    {"b", 1}, {"sched:x", 7},      {"k\0y", 3},
                 {"\xff", 1}, {"A", 1}, {NULL, FSM_KEY_MAX}, {"a\0", 2}};

    c->key = keys[b & 7].s != NULL ? keys[b & 7].s : fuzz_fsm_long_key;
    c->key_len = keys[b & 7].len;
    if (b & 0x80) { /* out of range: encode must refuse */
        c->key_len = (b & 0x40) ? FSM_KEY_MAX + 1 : 0;
        c->key = fuzz_fsm_long_key;
    }
}

static void
fuzz_fsm_owner(uint8_t b, struct fsm_cmd *c)
{
    static const struct {
        const char *s;
        uint16_t    len;
    } owners[8] = {{"o1", 2},
                   {"o2", 2},
                   {"o3", 2},
                   {"job-0123456789abcdef", 20},
                   {"\0", 1},
                   {"o1\0", 3},
                   {NULL, FSM_OWNER_MAX},
                   {"\xfe", 1}};

    c->owner = owners[b & 7].s != NULL ? owners[b & 7].s : fuzz_fsm_long_owner;
    c->owner_len = owners[b & 7].len;
    if (b & 0x80) {
        c->owner_len = (b & 0x40) ? FSM_OWNER_MAX + 1 : 0;
        c->owner = fuzz_fsm_long_owner;
    }
}

/* Clock steps: mostly forward by ms to minutes, sometimes back, rarely to
 * the ends of the range (overflow of now + ttl). */
static uint64_t
fuzz_fsm_step(uint64_t now_ms, uint8_t b)
{
    uint64_t v = b & 31;

    switch (b >> 5) {
    case 0:
    case 1:
        return now_ms + v;
    case 2:
        return now_ms + v * 100;
    case 3:
        return now_ms + v * 1000;
    case 4:
        return now_ms + v * 60000;
    case 5:
        return now_ms > v * 1000 ? now_ms - v * 1000 : 0;
    case 6:
        return v < 16 ? UINT64_MAX - v * 1000 : v;
    default:
        return now_ms;
    }
}

static void
fuzz_fsm_values(uint8_t b, struct fsm_cmd *c)
{
    static const uint64_t ttls[8] = {1,     10, 100,        1000,
                                     60000, 0,  UINT64_MAX, UINT64_MAX / 2};
    static const uint32_t limits[8] = {
        1, 2, 3, 5, FSM_FUNNEL_MAX, FSM_FUNNEL_MAX + 1, 0, UINT32_MAX};
    static const uint64_t pers[8] = {1, 10,         1000, 60000,
                                     0, UINT64_MAX, 7,    3600000};

    c->ttl_ms = ttls[b & 7];
    c->limit = limits[(b >> 3) & 7];
    c->per_ms = pers[(b >> 5) & 7];
    if (b >= 0xfc)
        c->slot_s = b == 0xfc ? INT64_MIN : b == 0xfd ? INT64_MAX : -1;
    else
        c->slot_s = 1700000000 + (int64_t)(b % 24) * 60;
}

/* Reads one command from the input; returns 0 at its end. */
static int
fuzz_fsm_next(const uint8_t **data, size_t *size, uint64_t *now_ms,
              struct fuzz_fsm_cmd *out)
{
    const uint8_t *p = *data;
    uint8_t        tmp[FSM_CMD_MAX];
    struct fsm_cmd c;
    size_t         n, len;
    int            rc;

    if (*size < 1)
        return 0;
    if (p[0] & 0x80) { /* raw */
        n = p[0] & 0x7f;
        if (n > *size - 1)
            n = *size - 1;
        out->buf = malloc(n > 0 ? n : 1);
        if (out->buf == NULL)
            abort();
        if (n > 0)
            memcpy(out->buf, p + 1, n);
        out->len = n;
        *data += 1 + n;
        *size -= 1 + n;
        return 1;
    }
    if (*size < 5)
        return 0;
    memset(&c, 0, sizeof(c));
    c.kind = p[0] < 120 ? 1 + p[0] % 10 : (p[0] & 1 ? 0 : FSM_KIND_END);
    fuzz_fsm_key(p[1], &c);
    fuzz_fsm_owner(p[2], &c);
    *now_ms = fuzz_fsm_step(*now_ms, p[3]);
    c.now_ms = *now_ms;
    fuzz_fsm_values(p[4], &c);
    *data += 5;
    *size -= 5;
    rc = fsm_cmd_encode(&c, tmp, sizeof(tmp), &len);
    if (rc == CADRE_OK) {
        if (len != fsm_cmd_size(&c) || len > FSM_CMD_MAX)
            abort();
    } else {
        if (rc != CADRE_EINVAL || fsm_cmd_size(&c) != 0)
            abort(); /* FSM_CMD_MAX is enough for any valid command */
        len = 0;     /* an empty command: INVALID */
    }
    out->buf = malloc(len > 0 ? len : 1);
    if (out->buf == NULL)
        abort();
    if (len > 0)
        memcpy(out->buf, tmp, len);
    out->len = len;
    return 1;
}

/* The codec's own contract, before any state is involved. */
static int
fuzz_fsm_codec(const struct fuzz_fsm_cmd *k)
{
    struct fsm_cmd c;
    uint8_t        again[FSM_CMD_MAX];
    size_t         len;
    int            rc = fsm_cmd_decode(k->buf, k->len, &c);

    if (rc != CADRE_OK) {
        if (rc == CADRE_EVERSION) {
            if (k->len < 1 || k->buf[0] == FSM_CMD_VERSION)
                abort();
        } else if (rc != CADRE_EPROTO) {
            abort();
        }
        return 0;
    }
    if (c.key != NULL && (c.key < (const char *)k->buf ||
                          c.key + c.key_len > (const char *)k->buf + k->len))
        abort(); /* fsm.h: strings borrow from buf */
    if (fsm_cmd_size(&c) != k->len ||
        fsm_cmd_encode(&c, again, sizeof(again), &len) != CADRE_OK ||
        len != k->len || memcmp(again, k->buf, len) != 0)
        abort(); /* decode then encode gives back other bytes */
    (void)fsm_kind_name(c.kind);
    return 1;
}

static void
fuzz_fsm_same(const struct fsm_result *a, const struct fsm_result *b)
{
    if (a->code != b->code || a->token != b->token ||
        a->retry_after_ms != b->retry_after_ms || a->count != b->count ||
        a->holder_len != b->holder_len ||
        memcmp(a->holder, b->holder, a->holder_len) != 0)
        abort(); /* two replicas answered differently */
}

static void
fuzz_fsm_result_ok(const struct fsm_result *res)
{
    if (res->code < FSM_R_OK || res->code > FSM_R_FULL)
        abort();
    if (res->holder_len > FSM_OWNER_MAX || res->holder[res->holder_len] != 0)
        abort();
    (void)fsm_code_name(res->code);
}

static void
fuzz_fsm_snap_eq(struct fsm *a, struct fsm *b)
{
    uint8_t *sa, *sb;
    size_t   la, lb;

    if (fsm_snapshot(a, &sa, &la) != CADRE_OK ||
        fsm_snapshot(b, &sb, &lb) != CADRE_OK)
        abort();
    if (la != lb || memcmp(sa, sb, la) != 0)
        abort(); /* same commands, different states */
    cd_free(sa);
    cd_free(sb);
}

/* A fresh fsm restored from f's snapshot; checks it snapshots the same. */
static struct fsm *
fuzz_fsm_clone(struct fsm *f, size_t max_items)
{
    struct fsm_opts opts = {.max_items = max_items};
    struct fsm     *c;
    uint8_t        *snap;
    size_t          len;

    if (fsm_snapshot(f, &snap, &len) != CADRE_OK ||
        fsm_new(&opts, &c) != CADRE_OK)
        abort();
    if (fsm_restore(c, snap, len) != CADRE_OK)
        abort(); /* a snapshot we made does not restore */
    cd_free(snap);
    fuzz_fsm_snap_eq(f, c);
    return c;
}

/* Applies cmds to a and b (and, from command restore_at on, to a clone of
 * a); checks the answers agree. check_cap: a and b never passed max_items
 * before (a restored snapshot may hold more). */
static void
fuzz_fsm_run(struct fsm *a, struct fsm *b, const struct fuzz_fsm_cmd *cmds,
             size_t n, size_t restore_at, size_t max_items, int check_cap)
{
    struct fsm      *c = NULL;
    struct fsm_stats st;
    uint64_t         last_token;

    fsm_get_stats(a, &st);
    last_token = st.last_token;
    for (size_t i = 0; i < n; i++) {
        struct fsm_result ra, rb, rc;
        int               valid = fuzz_fsm_codec(&cmds[i]);

        if (i == restore_at)
            c = fuzz_fsm_clone(a, max_items);
        fsm_apply(a, cmds[i].buf, cmds[i].len, &ra);
        fsm_apply(b, cmds[i].buf, cmds[i].len, &rb);
        fuzz_fsm_result_ok(&ra);
        fuzz_fsm_same(&ra, &rb);
        if (c != NULL) {
            fsm_apply(c, cmds[i].buf, cmds[i].len, &rc);
            fuzz_fsm_same(&ra, &rc); /* restored answers like replayed */
        }
        if ((ra.code == FSM_R_INVALID) == valid)
            abort(); /* INVALID exactly when the command does not decode */
        fsm_get_stats(a, &st);
        if (check_cap && st.items > max_items)
            abort(); /* fsm.h: at most max_items items */
        if (st.last_token < last_token)
            abort(); /* fencing tokens only increase */
        if (cmds[i].len >= 2 && cmds[i].buf[1] == FSM_LOCK_ACQUIRE &&
            ra.code == FSM_R_OK &&
            (ra.token == 0 || ra.token > st.last_token ||
             (ra.token > last_token && ra.token != st.last_token)))
            abort(); /* a token from outside the counter */
        last_token = st.last_token;
    }
    fuzz_fsm_snap_eq(a, b);
    if (c != NULL) {
        fuzz_fsm_snap_eq(a, c);
        fsm_free(c);
    }
}

/* The whole input as a snapshot: the error contract, and a restored state
 * snapshots to the same bytes and survives the commands. */
static void
fuzz_fsm_restore_input(const uint8_t *data, size_t size,
                       const struct fuzz_fsm_cmd *cmds, size_t n,
                       size_t max_items)
{
    struct fsm_opts opts = {.max_items = max_items};
    struct fsm     *e, *e2, *empty;
    uint8_t        *copy, *snap;
    size_t          len;
    int             rc;

    if (fsm_new(&opts, &e) != CADRE_OK || fsm_new(&opts, &empty) != CADRE_OK)
        abort();
    copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        abort();
    if (size > 0)
        memcpy(copy, data, size);
    rc = fsm_restore(e, copy, size);
    memset(copy, 0x5a, size); /* fsm.h: buf is only read during the call */
    free(copy);
    if (rc != CADRE_OK) {
        if (rc != CADRE_ECORRUPT && rc != CADRE_EVERSION)
            abort();
        fuzz_fsm_snap_eq(e, empty); /* fsm.h: on failure f is unchanged */
        fsm_free(e);
        fsm_free(empty);
        return;
    }
    fsm_free(empty);
    if (fsm_snapshot(e, &snap, &len) != CADRE_OK)
        abort();
    if (len != size || memcmp(snap, data, size) != 0)
        abort(); /* restore accepted bytes that are not the state's encoding */
    cd_free(snap);
    e2 = fuzz_fsm_clone(e, max_items);
    fuzz_fsm_run(e, e2, cmds, n, n / 2, max_items, 0);
    fsm_free(e2);
    fsm_free(e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_fsm_cmd cmds[FUZZ_FSM_MAX_CMDS];
    struct fsm_opts            opts;
    struct fsm                *a, *b;
    const uint8_t             *p;
    size_t                     left, n = 0, restore_at;
    uint64_t                   now_ms = 1700000000000ull;

    if (size < 1)
        return 0;
    memset(fuzz_fsm_long_key, 'k', sizeof(fuzz_fsm_long_key));
    memset(fuzz_fsm_long_owner, 'o', sizeof(fuzz_fsm_long_owner));
    opts.max_items = fuzz_fsm_caps[data[0] & 3];
    restore_at = data[0] >> 2;
    p = data + 1;
    left = size - 1;
    while (n < FUZZ_FSM_MAX_CMDS && fuzz_fsm_next(&p, &left, &now_ms, &cmds[n]))
        n++;

    if (fsm_new(&opts, &a) != CADRE_OK || fsm_new(&opts, &b) != CADRE_OK)
        abort();
    fuzz_fsm_run(a, b, cmds, n, restore_at, opts.max_items, 1);
    fsm_free(a);
    fsm_free(b);

    fuzz_fsm_restore_input(data, size, cmds, n, opts.max_items);

    for (size_t i = 0; i < n; i++)
        free(cmds[i].buf);
    return 0;
}
