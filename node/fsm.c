/* fsm.c: the leader's state machine (contract in fsm.h). Entries live in one
 * open-addressing hash table keyed by (type, key); its layout never reaches
 * an output: snapshots sort, sweeps visit everything, so a replica restored
 * from a snapshot (another layout) answers exactly like one that applied the
 * whole log. The hash has no random seed (no randomness in the state
 * machine): keys chosen to collide cost CPU, never a different answer.
 * Does not talk to libraft; node/leader.c does. */
#include "node/fsm.h"

#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"
#include "common/bytes.h"
#include "common/log.h"

#define FSM_NEVER UINT64_MAX /* an expiry that never comes */
#define FSM_TAB_MIN 16
#define FSM_HDR_LEN 10 /* version u8 | kind u8 | now_ms u64 */
_Static_assert(FSM_CMD_MAX >=
                   FSM_HDR_LEN + 2 + FSM_KEY_MAX + 2 + FSM_OWNER_MAX + 4 + 8,
               "the largest command (funnel acquire) fits FSM_CMD_MAX");
static const uint8_t fsm_magic[4] = {'C', 'D', 'F', 'S'};

/* Fields of each kind, in this order on the wire. */
enum {
    FSM_F_KEY = 0x01,
    FSM_F_OWNER = 0x02,
    FSM_F_SLOT = 0x04,
    FSM_F_TTL = 0x08,  /* ttl_ms >= 1 */
    FSM_F_TTL0 = 0x10, /* ttl_ms >= 0 */
    FSM_F_LIMIT = 0x20,
    FSM_F_PER = 0x40,
    FSM_F_BY = 0x80, /* u32, 0 allowed */
};

static const uint8_t fsm_fields[FSM_KIND_END] = {
    [FSM_CLAIM] = FSM_F_KEY | FSM_F_SLOT,
    [FSM_DONE] = FSM_F_KEY | FSM_F_SLOT | FSM_F_BY,
    [FSM_LOCK_ACQUIRE] = FSM_F_KEY | FSM_F_OWNER | FSM_F_TTL,
    [FSM_LOCK_RELEASE] = FSM_F_KEY | FSM_F_OWNER,
    [FSM_THROTTLE] = FSM_F_KEY | FSM_F_LIMIT | FSM_F_PER,
    [FSM_FUNNEL_ACQUIRE] = FSM_F_KEY | FSM_F_OWNER | FSM_F_LIMIT | FSM_F_TTL,
    [FSM_FUNNEL_RELEASE] = FSM_F_KEY | FSM_F_OWNER,
    [FSM_UNIQUE_TAKE] = FSM_F_KEY | FSM_F_OWNER | FSM_F_TTL0,
    [FSM_UNIQUE_RELEASE] = FSM_F_KEY | FSM_F_OWNER,
    [FSM_EXPIRE] = 0,
};

/* Entry types; also the first sort key of a snapshot. */
enum fsm_type {
    FSM_T_SCHED = 1,
    FSM_T_LOCK,
    FSM_T_THROTTLE,
    FSM_T_FUNNEL,
    FSM_T_UNIQUE,
    FSM_T_END
};

struct fsm_owner {
    uint16_t len;
    char     s[FSM_OWNER_MAX];
};

struct fsm_holder {
    struct fsm_owner owner;
    uint64_t         expires_at_ms;
};

struct fsm_slot {
    int64_t  slot_s;
    uint8_t  done;
    uint32_t by; /* done: who dispatched it (DONE's by) */
};

struct fsm_sched {
    struct fsm_slot *v; /* ascending by slot_s */
    uint32_t         n, cap, ndone;
    uint8_t          has_floor, has_done;
    int64_t          floor_s;     /* highest slot pruned */
    int64_t          last_done_s; /* highest slot done */
};

struct fsm_entry {
    uint64_t hash;
    uint8_t  type;
    uint16_t key_len;
    union {
        struct fsm_sched sched;
        struct {
            struct fsm_owner owner;
            uint64_t         token;
            uint64_t         expires_at_ms;
        } lock; /* also a unique key (token unused) */
        struct {
            uint64_t per_ms, window;
            uint32_t count;
        } thr;
        struct {
            struct fsm_holder *v; /* ascending by owner, n >= 1 */
            uint32_t           n, cap;
        } funnel;
    } u;
    char key[]; /* key_len bytes */
};

struct fsm {
    struct fsm_entry **tab; /* mask + 1 buckets, load <= 1/2 */
    size_t             mask;
    size_t             n;     /* entries */
    size_t             items; /* entries + slot records + funnel holders */
    size_t             max_items;
    uint64_t           last_token;
};

/* ---- helpers ---- */

/* Apply cannot fail and cannot answer differently from the other replicas:
 * out of memory there stops the process (fsm.h). */
static void
fsm_oom(void)
{
    CD_LOG_ERR("fsm", "FSM-OOM", "out of memory applying a raft entry");
    abort();
}

static void *
fsm_xrealloc(void *p, size_t n)
{
    void *q = cd_realloc(p, n);

    if (q == NULL)
        fsm_oom();
    return q;
}

static uint64_t
fsm_deadline(uint64_t now_ms, uint64_t ttl_ms)
{
    return now_ms > UINT64_MAX - ttl_ms ? FSM_NEVER : now_ms + ttl_ms;
}

static int
fsm_expired(uint64_t expires_at_ms, uint64_t now_ms)
{
    return expires_at_ms != FSM_NEVER && now_ms >= expires_at_ms;
}

static uint64_t
fsm_until(uint64_t at_ms, uint64_t now_ms)
{
    return at_ms > now_ms ? at_ms - now_ms : 0;
}

static int
fsm_bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);

    if (c != 0)
        return c;
    return an < bn ? -1 : an > bn;
}

static int
fsm_owner_is(const struct fsm_owner *o, const struct fsm_cmd *c)
{
    return o->len == c->owner_len && memcmp(o->s, c->owner, o->len) == 0;
}

static void
fsm_owner_set(struct fsm_owner *o, const char *s, uint16_t len)
{
    memcpy(o->s, s, len);
    o->len = len;
}

static void
fsm_res_holder(struct fsm_result *res, const struct fsm_owner *o)
{
    memcpy(res->holder, o->s, o->len);
    res->holder[o->len] = '\0';
    res->holder_len = o->len;
}

/* ---- the command encoding ---- */

static int
fsm_str_ok(const char *s, uint16_t len, size_t max)
{
    return s != NULL && len >= 1 && len <= max;
}

static int
fsm_cmd_valid(const struct fsm_cmd *c)
{
    unsigned fl;

    if (c->kind < FSM_CLAIM || c->kind >= FSM_KIND_END)
        return 0;
    fl = fsm_fields[c->kind];
    if ((fl & FSM_F_KEY) && !fsm_str_ok(c->key, c->key_len, FSM_KEY_MAX))
        return 0;
    if ((fl & FSM_F_OWNER) &&
        !fsm_str_ok(c->owner, c->owner_len, FSM_OWNER_MAX))
        return 0;
    if ((fl & FSM_F_TTL) && c->ttl_ms == 0)
        return 0;
    if ((fl & FSM_F_LIMIT) && c->limit == 0)
        return 0;
    if (c->kind == FSM_FUNNEL_ACQUIRE && c->limit > FSM_FUNNEL_MAX)
        return 0;
    return !(fl & FSM_F_PER) || c->per_ms != 0;
}

size_t
fsm_cmd_size(const struct fsm_cmd *c)
{
    size_t   n = FSM_HDR_LEN;
    unsigned fl;

    if (c == NULL || !fsm_cmd_valid(c))
        return 0;
    fl = fsm_fields[c->kind];
    n += (fl & FSM_F_KEY) ? 2u + c->key_len : 0;
    n += (fl & FSM_F_OWNER) ? 2u + c->owner_len : 0;
    n += (fl & FSM_F_SLOT) ? 8 : 0;
    n += (fl & (FSM_F_TTL | FSM_F_TTL0)) ? 8 : 0;
    n += (fl & FSM_F_LIMIT) ? 4 : 0;
    n += (fl & FSM_F_PER) ? 8 : 0;
    n += (fl & FSM_F_BY) ? 4 : 0;
    return n;
}

/* A cursor over a buffer whose size was computed first. */
static uint8_t *
fsm_put_str(uint8_t *p, const char *s, uint16_t len)
{
    cd_put_u16be(p, len);
    memcpy(p + 2, s, len);
    return p + 2 + len;
}

static uint8_t *
fsm_put_u64(uint8_t *p, uint64_t v)
{
    cd_put_u64be(p, v);
    return p + 8;
}

static uint8_t *
fsm_put_u32(uint8_t *p, uint32_t v)
{
    cd_put_u32be(p, v);
    return p + 4;
}

int
fsm_cmd_encode(const struct fsm_cmd *c, uint8_t *out, size_t cap, size_t *len)
{
    size_t   n = fsm_cmd_size(c);
    unsigned fl;
    uint8_t *p = out;

    if (n == 0)
        return CADRE_EINVAL;
    if (out == NULL || n > cap)
        return CADRE_ETOOBIG;
    fl = fsm_fields[c->kind];
    *p++ = FSM_CMD_VERSION;
    *p++ = (uint8_t)c->kind;
    p = fsm_put_u64(p, c->now_ms);
    if (fl & FSM_F_KEY)
        p = fsm_put_str(p, c->key, c->key_len);
    if (fl & FSM_F_OWNER)
        p = fsm_put_str(p, c->owner, c->owner_len);
    if (fl & FSM_F_SLOT)
        p = fsm_put_u64(p, (uint64_t)c->slot_s);
    if (fl & (FSM_F_TTL | FSM_F_TTL0))
        p = fsm_put_u64(p, c->ttl_ms);
    if (fl & FSM_F_LIMIT)
        p = fsm_put_u32(p, c->limit);
    if (fl & FSM_F_PER)
        p = fsm_put_u64(p, c->per_ms);
    if (fl & FSM_F_BY)
        p = fsm_put_u32(p, c->by);
    *len = (size_t)(p - out);
    return CADRE_OK;
}

/* A bounds-checked reader: any short read clears ok and yields zeros, so a
 * decoder checks ok once at the end instead of after every field. */
struct fsm_rd {
    const uint8_t *p;
    size_t         left;
    int            ok;
};

static const uint8_t *
fsm_rd_take(struct fsm_rd *r, size_t n)
{
    const uint8_t *p = r->p;

    if (!r->ok || r->left < n) {
        r->ok = 0;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint8_t
fsm_rd_u8(struct fsm_rd *r)
{
    const uint8_t *p = fsm_rd_take(r, 1);

    return p ? p[0] : 0;
}

static uint32_t
fsm_rd_u32(struct fsm_rd *r)
{
    const uint8_t *p = fsm_rd_take(r, 4);

    return p ? cd_get_u32be(p) : 0;
}

static uint64_t
fsm_rd_u64(struct fsm_rd *r)
{
    const uint8_t *p = fsm_rd_take(r, 8);

    return p ? cd_get_u64be(p) : 0;
}

/* A u16-length string of 1..max bytes. */
static const char *
fsm_rd_str(struct fsm_rd *r, size_t max, uint16_t *len)
{
    const uint8_t *lp = fsm_rd_take(r, 2);
    uint16_t       n = lp ? cd_get_u16be(lp) : 0;
    const uint8_t *s;

    *len = 0;
    if (lp != NULL && (n == 0 || n > max))
        r->ok = 0;
    s = fsm_rd_take(r, n);
    if (s != NULL)
        *len = n;
    return (const char *)s;
}

int
fsm_cmd_decode(const uint8_t *buf, size_t len, struct fsm_cmd *out)
{
    struct fsm_rd  r = {buf, len, buf != NULL};
    struct fsm_cmd c;
    unsigned       fl;

    memset(&c, 0, sizeof(c));
    memset(out, 0, sizeof(*out));
    if (len >= 1 && buf != NULL && buf[0] != FSM_CMD_VERSION)
        return CADRE_EVERSION;
    (void)fsm_rd_u8(&r);
    c.kind = fsm_rd_u8(&r);
    c.now_ms = fsm_rd_u64(&r);
    if (!r.ok || c.kind < FSM_CLAIM || c.kind >= FSM_KIND_END)
        return CADRE_EPROTO;
    fl = fsm_fields[c.kind];
    if (fl & FSM_F_KEY)
        c.key = fsm_rd_str(&r, FSM_KEY_MAX, &c.key_len);
    if (fl & FSM_F_OWNER)
        c.owner = fsm_rd_str(&r, FSM_OWNER_MAX, &c.owner_len);
    if (fl & FSM_F_SLOT)
        c.slot_s = (int64_t)fsm_rd_u64(&r);
    if (fl & (FSM_F_TTL | FSM_F_TTL0))
        c.ttl_ms = fsm_rd_u64(&r);
    if (fl & FSM_F_LIMIT)
        c.limit = fsm_rd_u32(&r);
    if (fl & FSM_F_PER)
        c.per_ms = fsm_rd_u64(&r);
    if (fl & FSM_F_BY)
        c.by = fsm_rd_u32(&r);
    if (!r.ok || r.left != 0 || !fsm_cmd_valid(&c))
        return CADRE_EPROTO;
    *out = c;
    return CADRE_OK;
}

/* ---- the table ---- */

static uint64_t
fsm_hash(int type, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)type; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)key[i]) * 0x100000001b3ull;
    h ^= h >> 31; /* FNV's low bits are weak; the index uses them */
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 29);
}

static size_t
fsm_find_at(const struct fsm *f, int type, const char *key, size_t len,
            uint64_t h)
{
    size_t i = (size_t)h & f->mask;

    for (;; i = (i + 1) & f->mask) {
        const struct fsm_entry *e = f->tab[i];

        if (e == NULL)
            return i;
        if (e->hash == h && e->type == type && e->key_len == len &&
            memcmp(e->key, key, len) == 0)
            return i;
    }
}

static struct fsm_entry *
fsm_find(const struct fsm *f, int type, const char *key, size_t len)
{
    return f->tab[fsm_find_at(f, type, key, len, fsm_hash(type, key, len))];
}

static size_t
fsm_entry_items(const struct fsm_entry *e)
{
    if (e->type == FSM_T_SCHED)
        return 1 + e->u.sched.n;
    if (e->type == FSM_T_FUNNEL)
        return 1 + e->u.funnel.n;
    return 1;
}

static void
fsm_entry_free(struct fsm_entry *e)
{
    if (e == NULL)
        return;
    if (e->type == FSM_T_SCHED)
        cd_free(e->u.sched.v);
    if (e->type == FSM_T_FUNNEL)
        cd_free(e->u.funnel.v);
    cd_free(e);
}

/* Doubles the table when the next entry would pass load 1/2. */
static int
fsm_tab_reserve(struct fsm *f)
{
    size_t             size = f->mask + 1, nsize = size * 2;
    struct fsm_entry **nt;

    if ((f->n + 1) * 2 <= size)
        return CADRE_OK;
    nt = cd_calloc(nsize, sizeof(*nt));
    if (nt == NULL)
        return CADRE_ENOMEM;
    for (size_t i = 0; i < size; i++) {
        size_t j;

        if (f->tab[i] == NULL)
            continue;
        for (j = f->tab[i]->hash & (nsize - 1); nt[j] != NULL;
             j = (j + 1) & (nsize - 1))
            ;
        nt[j] = f->tab[i];
    }
    cd_free(f->tab);
    f->tab = nt;
    f->mask = nsize - 1;
    return CADRE_OK;
}

/* Adds a new entry (its key must not be in the table). */
static int
fsm_tab_add(struct fsm *f, struct fsm_entry *e)
{
    size_t i;

    if (fsm_tab_reserve(f) != CADRE_OK)
        return CADRE_ENOMEM;
    i = fsm_find_at(f, e->type, e->key, e->key_len, e->hash);
    f->tab[i] = e;
    f->n++;
    f->items += fsm_entry_items(e);
    return CADRE_OK;
}

/* Removes and frees the entry at bucket i, then shifts the entries after it
 * back so that no probe sequence has a hole (no tombstones). */
static void
fsm_tab_del_at(struct fsm *f, size_t i)
{
    size_t j = i;

    f->items -= fsm_entry_items(f->tab[i]);
    fsm_entry_free(f->tab[i]);
    f->tab[i] = NULL;
    f->n--;
    for (;;) {
        size_t home;

        j = (j + 1) & f->mask;
        if (f->tab[j] == NULL)
            return;
        home = f->tab[j]->hash & f->mask;
        /* Move it into the hole unless its home lies in (i, j]. */
        if ((j > i && (home <= i || home > j)) ||
            (j < i && home <= i && home > j)) {
            f->tab[i] = f->tab[j];
            f->tab[j] = NULL;
            i = j;
        }
    }
}

static void
fsm_tab_del(struct fsm *f, struct fsm_entry *e)
{
    fsm_tab_del_at(f, fsm_find_at(f, e->type, e->key, e->key_len, e->hash));
}

static struct fsm_entry *
fsm_entry_alloc(int type, const char *key, uint16_t len)
{
    struct fsm_entry *e = cd_calloc(1, sizeof(*e) + len);

    if (e == NULL)
        return NULL;
    e->type = (uint8_t)type;
    e->key_len = len;
    memcpy(e->key, key, len);
    e->hash = fsm_hash(type, key, len);
    return e;
}

/* A new entry for the command's key, in apply (cannot fail). */
static struct fsm_entry *
fsm_entry_add(struct fsm *f, int type, const struct fsm_cmd *c)
{
    struct fsm_entry *e = fsm_entry_alloc(type, c->key, c->key_len);

    if (e == NULL || fsm_tab_add(f, e) != CADRE_OK)
        fsm_oom();
    return e;
}

static int
fsm_room(const struct fsm *f, size_t n)
{
    return f->items + n <= f->max_items;
}

/* ---- schedules ---- */

/* The index of the first slot >= slot_s. */
static uint32_t
fsm_slot_search(const struct fsm_sched *s, int64_t slot_s)
{
    uint32_t lo = 0, hi = s->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;

        if (s->v[mid].slot_s < slot_s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int
fsm_slot_found(const struct fsm_sched *s, uint32_t i, int64_t slot_s)
{
    return i < s->n && s->v[i].slot_s == slot_s;
}

static void
fsm_slot_insert(struct fsm *f, struct fsm_sched *s, uint32_t i, int64_t slot_s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = fsm_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
    s->v[i].slot_s = slot_s;
    s->v[i].done = 0;
    s->v[i].by = 0;
    s->n++;
    f->items++;
}

/* Keeps the last FSM_DONE_KEEP done slots: the oldest go, and the floor
 * remembers them so that a late claim of one is still EXISTS. */
static void
fsm_sched_prune(struct fsm *f, struct fsm_sched *s)
{
    uint32_t i = 0;

    while (s->ndone > FSM_DONE_KEEP) {
        while (!s->v[i].done)
            i++;
        if (!s->has_floor || s->v[i].slot_s > s->floor_s)
            s->floor_s = s->v[i].slot_s;
        s->has_floor = 1;
        memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
        s->n--;
        s->ndone--;
        f->items--;
    }
}

static void
fsm_claim(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *res)
{
    struct fsm_entry *e = fsm_find(f, FSM_T_SCHED, c->key, c->key_len);
    struct fsm_sched *s;
    uint32_t          i;

    if (e == NULL && !fsm_room(f, 2)) {
        res->code = FSM_R_FULL;
        return;
    }
    if (e == NULL)
        e = fsm_entry_add(f, FSM_T_SCHED, c);
    s = &e->u.sched;
    i = fsm_slot_search(s, c->slot_s);
    if (fsm_slot_found(s, i, c->slot_s) ||
        (s->has_floor && c->slot_s <= s->floor_s))
        res->code = FSM_R_EXISTS;
    else if (!fsm_room(f, 1))
        res->code = FSM_R_FULL;
    else {
        fsm_slot_insert(f, s, i, c->slot_s);
        res->code = FSM_R_WON;
    }
    res->count = s->n - s->ndone;
}

static void
fsm_done(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *res)
{
    struct fsm_entry *e = fsm_find(f, FSM_T_SCHED, c->key, c->key_len);
    struct fsm_sched *s;
    uint32_t          i;

    if (e == NULL) {
        res->code = FSM_R_NOT_HOLDER;
        return;
    }
    s = &e->u.sched;
    i = fsm_slot_search(s, c->slot_s);
    res->code = FSM_R_OK;
    if (fsm_slot_found(s, i, c->slot_s) && !s->v[i].done) {
        s->v[i].done = 1;
        s->v[i].by = c->by;
        s->ndone++;
        if (!s->has_done || c->slot_s > s->last_done_s)
            s->last_done_s = c->slot_s;
        s->has_done = 1;
        fsm_sched_prune(f, s);
    } else if (!fsm_slot_found(s, i, c->slot_s) &&
               !(s->has_floor && c->slot_s <= s->floor_s))
        res->code = FSM_R_NOT_HOLDER;
    res->count = s->n - s->ndone;
}

/* ---- locks and unique keys (one shape: an owner and an expiry) ---- */

static void
fsm_lock_acquire(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *res)
{
    struct fsm_entry *e = fsm_find(f, FSM_T_LOCK, c->key, c->key_len);

    if (e != NULL && !fsm_expired(e->u.lock.expires_at_ms, c->now_ms)) {
        res->token = e->u.lock.token;
        if (fsm_owner_is(&e->u.lock.owner, c)) {
            e->u.lock.expires_at_ms = fsm_deadline(c->now_ms, c->ttl_ms);
            res->code = FSM_R_OK; /* a refresh keeps the token */
            return;
        }
        res->code = FSM_R_HELD;
        res->retry_after_ms = fsm_until(e->u.lock.expires_at_ms, c->now_ms);
        fsm_res_holder(res, &e->u.lock.owner);
        return;
    }
    if (e == NULL && !fsm_room(f, 1)) {
        res->code = FSM_R_FULL;
        return;
    }
    if (e == NULL)
        e = fsm_entry_add(f, FSM_T_LOCK, c);
    fsm_owner_set(&e->u.lock.owner, c->owner, c->owner_len);
    e->u.lock.token = ++f->last_token;
    e->u.lock.expires_at_ms = fsm_deadline(c->now_ms, c->ttl_ms);
    res->code = FSM_R_OK;
    res->token = e->u.lock.token;
}

static void
fsm_unique_take(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *res)
{
    struct fsm_entry *e = fsm_find(f, FSM_T_UNIQUE, c->key, c->key_len);
    uint64_t          exp =
        c->ttl_ms == 0 ? FSM_NEVER : fsm_deadline(c->now_ms, c->ttl_ms);

    if (e != NULL && !fsm_expired(e->u.lock.expires_at_ms, c->now_ms) &&
        !fsm_owner_is(&e->u.lock.owner, c)) {
        res->code = FSM_R_EXISTS;
        if (e->u.lock.expires_at_ms != FSM_NEVER)
            res->retry_after_ms = fsm_until(e->u.lock.expires_at_ms, c->now_ms);
        fsm_res_holder(res, &e->u.lock.owner);
        return;
    }
    if (e == NULL && !fsm_room(f, 1)) {
        res->code = FSM_R_FULL;
        return;
    }
    if (e == NULL)
        e = fsm_entry_add(f, FSM_T_UNIQUE, c);
    fsm_owner_set(&e->u.lock.owner, c->owner, c->owner_len);
    e->u.lock.expires_at_ms = exp;
    res->code = FSM_R_OK;
}

/* LOCK_RELEASE and UNIQUE_RELEASE. An expired entry goes either way. */
static void
fsm_owned_release(struct fsm *f, int type, const struct fsm_cmd *c,
                  struct fsm_result *res)
{
    struct fsm_entry *e = fsm_find(f, type, c->key, c->key_len);

    res->code = FSM_R_NOT_HOLDER;
    if (e == NULL)
        return;
    if (!fsm_expired(e->u.lock.expires_at_ms, c->now_ms) &&
        fsm_owner_is(&e->u.lock.owner, c))
        res->code = FSM_R_OK;
    if (res->code == FSM_R_OK ||
        fsm_expired(e->u.lock.expires_at_ms, c->now_ms))
        fsm_tab_del(f, e);
}

/* ---- throttle ---- */

static void
fsm_throttle(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *res)
{
    struct fsm_entry *e = fsm_find(f, FSM_T_THROTTLE, c->key, c->key_len);
    uint64_t          w = c->now_ms / c->per_ms, end;

    if (e == NULL && !fsm_room(f, 1)) {
        res->code = FSM_R_FULL;
        return;
    }
    if (e == NULL)
        e = fsm_entry_add(f, FSM_T_THROTTLE, c);
    /* A new window, or a new period for this key, starts counting afresh;
     * an older window (the clock stepped back) counts in the current one. */
    if (e->u.thr.count == 0 || e->u.thr.per_ms != c->per_ms ||
        w > e->u.thr.window) {
        e->u.thr.per_ms = c->per_ms;
        e->u.thr.window = w;
        e->u.thr.count = 0;
    }
    if (e->u.thr.count >= c->limit) {
        end = fsm_deadline(e->u.thr.window * c->per_ms, c->per_ms);
        res->code = FSM_R_LIMITED;
        res->retry_after_ms = fsm_until(end, c->now_ms);
        res->count = e->u.thr.count;
        return;
    }
    res->code = FSM_R_OK;
    res->count = ++e->u.thr.count;
}

static int
fsm_throttle_ended(const struct fsm_entry *e, uint64_t now_ms)
{
    return now_ms / e->u.thr.per_ms > e->u.thr.window;
}

/* ---- funnels ---- */

/* Drops expired holders; returns how many went. */
static uint32_t
fsm_funnel_sweep(struct fsm *f, struct fsm_entry *e, uint64_t now_ms)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < e->u.funnel.n; i++) {
        if (!fsm_expired(e->u.funnel.v[i].expires_at_ms, now_ms))
            e->u.funnel.v[n++] = e->u.funnel.v[i];
    }
    n = e->u.funnel.n - n;
    e->u.funnel.n -= n;
    f->items -= n;
    return n;
}

/* The index of owner among the holders, or of where it would go. */
static uint32_t
fsm_funnel_search(const struct fsm_entry *e, const struct fsm_cmd *c,
                  int *found)
{
    uint32_t lo = 0, hi = e->u.funnel.n;

    *found = 0;
    while (lo < hi) {
        uint32_t                mid = lo + (hi - lo) / 2;
        const struct fsm_owner *o = &e->u.funnel.v[mid].owner;
        int cmp = fsm_bytes_cmp(o->s, o->len, c->owner, c->owner_len);

        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The live funnel of the command's key after dropping expired holders, or
 * NULL (an emptied funnel is removed: a funnel always has a holder). */
static struct fsm_entry *
fsm_funnel_get(struct fsm *f, const struct fsm_cmd *c)
{
    struct fsm_entry *e = fsm_find(f, FSM_T_FUNNEL, c->key, c->key_len);

    if (e == NULL)
        return NULL;
    fsm_funnel_sweep(f, e, c->now_ms);
    if (e->u.funnel.n > 0)
        return e;
    fsm_tab_del(f, e);
    return NULL;
}

static uint64_t
fsm_funnel_first_expiry(const struct fsm_entry *e)
{
    uint64_t m = FSM_NEVER;

    for (uint32_t i = 0; i < e->u.funnel.n; i++) {
        if (e->u.funnel.v[i].expires_at_ms < m)
            m = e->u.funnel.v[i].expires_at_ms;
    }
    return m;
}

static void
fsm_funnel_insert(struct fsm *f, struct fsm_entry *e, uint32_t i,
                  const struct fsm_cmd *c)
{
    struct fsm_holder *h;

    if (e->u.funnel.n == e->u.funnel.cap) {
        e->u.funnel.cap = e->u.funnel.cap ? e->u.funnel.cap * 2 : 4;
        e->u.funnel.v = fsm_xrealloc(e->u.funnel.v,
                                     e->u.funnel.cap * sizeof(*e->u.funnel.v));
    }
    h = &e->u.funnel.v[i];
    memmove(h + 1, h, (e->u.funnel.n - i) * sizeof(*h));
    fsm_owner_set(&h->owner, c->owner, c->owner_len);
    h->expires_at_ms = fsm_deadline(c->now_ms, c->ttl_ms);
    e->u.funnel.n++;
    f->items++;
}

static void
fsm_funnel_acquire(struct fsm *f, const struct fsm_cmd *c,
                   struct fsm_result *res)
{
    struct fsm_entry *e = fsm_funnel_get(f, c);
    uint32_t          i = 0;
    int               found = 0;

    if (e != NULL)
        i = fsm_funnel_search(e, c, &found);
    if (found) {
        e->u.funnel.v[i].expires_at_ms = fsm_deadline(c->now_ms, c->ttl_ms);
        res->code = FSM_R_OK;
        res->count = e->u.funnel.n;
        return;
    }
    if (e != NULL && e->u.funnel.n >= c->limit) {
        res->code = FSM_R_LIMITED;
        res->count = e->u.funnel.n;
        res->retry_after_ms = fsm_until(fsm_funnel_first_expiry(e), c->now_ms);
        return;
    }
    if (!fsm_room(f, e == NULL ? 2 : 1)) {
        res->code = FSM_R_FULL;
        return;
    }
    if (e == NULL)
        e = fsm_entry_add(f, FSM_T_FUNNEL, c);
    fsm_funnel_insert(f, e, i, c);
    res->code = FSM_R_OK;
    res->count = e->u.funnel.n;
}

static void
fsm_funnel_release(struct fsm *f, const struct fsm_cmd *c,
                   struct fsm_result *res)
{
    struct fsm_entry *e = fsm_funnel_get(f, c);
    uint32_t          i;
    int               found = 0;

    res->code = FSM_R_NOT_HOLDER;
    if (e == NULL)
        return;
    i = fsm_funnel_search(e, c, &found);
    if (!found)
        return;
    memmove(&e->u.funnel.v[i], &e->u.funnel.v[i + 1],
            (e->u.funnel.n - i - 1) * sizeof(*e->u.funnel.v));
    e->u.funnel.n--;
    f->items--;
    res->code = FSM_R_OK;
    res->count = e->u.funnel.n;
    if (e->u.funnel.n == 0)
        fsm_tab_del(f, e);
}

/* ---- expire ---- */

/* Whether the entry at i should go now (funnels lose expired holders). */
static int
fsm_entry_dead(struct fsm *f, struct fsm_entry *e, uint64_t now_ms)
{
    switch (e->type) {
    case FSM_T_LOCK:
    case FSM_T_UNIQUE:
        return fsm_expired(e->u.lock.expires_at_ms, now_ms);
    case FSM_T_THROTTLE:
        return fsm_throttle_ended(e, now_ms);
    case FSM_T_FUNNEL:
        fsm_funnel_sweep(f, e, now_ms);
        return e->u.funnel.n == 0;
    default:
        return 0;
    }
}

/* Visits every bucket; after a deletion the same bucket is looked at again,
 * since the backward shift may have moved an entry into it. The result does
 * not depend on the layout: everything expired goes. */
static void
fsm_expire(struct fsm *f, const struct fsm_cmd *c, struct fsm_result *res)
{
    size_t before = f->items;

    for (size_t i = 0; i <= f->mask;) {
        if (f->tab[i] != NULL && fsm_entry_dead(f, f->tab[i], c->now_ms))
            fsm_tab_del_at(f, i);
        else
            i++;
    }
    res->code = FSM_R_OK;
    res->count = (uint32_t)(before - f->items);
}

/* ---- apply ---- */

void
fsm_apply(struct fsm *f, const uint8_t *buf, size_t len, struct fsm_result *res)
{
    struct fsm_cmd c;

    memset(res, 0, sizeof(*res));
    if (fsm_cmd_decode(buf, len, &c) != CADRE_OK) {
        res->code = FSM_R_INVALID;
        return;
    }
    switch (c.kind) {
    case FSM_CLAIM:
        fsm_claim(f, &c, res);
        break;
    case FSM_DONE:
        fsm_done(f, &c, res);
        break;
    case FSM_LOCK_ACQUIRE:
        fsm_lock_acquire(f, &c, res);
        break;
    case FSM_LOCK_RELEASE:
        fsm_owned_release(f, FSM_T_LOCK, &c, res);
        break;
    case FSM_THROTTLE:
        fsm_throttle(f, &c, res);
        break;
    case FSM_FUNNEL_ACQUIRE:
        fsm_funnel_acquire(f, &c, res);
        break;
    case FSM_FUNNEL_RELEASE:
        fsm_funnel_release(f, &c, res);
        break;
    case FSM_UNIQUE_TAKE:
        fsm_unique_take(f, &c, res);
        break;
    case FSM_UNIQUE_RELEASE:
        fsm_owned_release(f, FSM_T_UNIQUE, &c, res);
        break;
    default: /* FSM_EXPIRE: decode admits nothing else */
        fsm_expire(f, &c, res);
        break;
    }
}

/* ---- lifecycle ---- */

static int
fsm_init(struct fsm *f, size_t max_items)
{
    memset(f, 0, sizeof(*f));
    f->tab = cd_calloc(FSM_TAB_MIN, sizeof(*f->tab));
    if (f->tab == NULL)
        return CADRE_ENOMEM;
    f->mask = FSM_TAB_MIN - 1;
    f->max_items = max_items ? max_items : FSM_MAX_ITEMS_DEFAULT;
    return CADRE_OK;
}

static void
fsm_fini(struct fsm *f)
{
    for (size_t i = 0; f->tab != NULL && i <= f->mask; i++)
        fsm_entry_free(f->tab[i]);
    cd_free(f->tab);
    f->tab = NULL;
}

int
fsm_new(const struct fsm_opts *opts, struct fsm **out)
{
    struct fsm *f = cd_malloc(sizeof(*f));

    if (f == NULL)
        return CADRE_ENOMEM;
    if (fsm_init(f, opts ? opts->max_items : 0) != CADRE_OK) {
        cd_free(f);
        return CADRE_ENOMEM;
    }
    *out = f;
    return CADRE_OK;
}

void
fsm_free(struct fsm *f)
{
    if (f == NULL)
        return;
    fsm_fini(f);
    cd_free(f);
}

/* ---- snapshots ----
 * "CDFS" | version u8 | last_token u64 | entries u32 | entries sorted by
 * (type, key bytes), each: type u8 | key str | body:
 *   sched:    flags u8 (1 floor, 2 done) | floor_s i64 | last_done_s i64 |
 *             n u32 | n x (slot_s i64 | done u8 | by u32), slots ascending
 *             (by 0 while not done)
 *   lock:     owner str | token u64 | expires_at_ms u64
 *   throttle: per_ms u64 | window u64 | count u32
 *   funnel:   n u32 | n x (owner str | expires_at_ms u64), owners ascending
 *   unique:   owner str | expires_at_ms u64 (UINT64_MAX = never)
 * Strings are u16 length + bytes. Unset floor / last done are written as 0,
 * so one state has exactly one encoding. */

#define FSM_SNAP_HDR_LEN 17

static size_t
fsm_snap_entry_size(const struct fsm_entry *e)
{
    size_t n = 1 + 2 + e->key_len;

    switch (e->type) {
    case FSM_T_SCHED:
        return n + 1 + 8 + 8 + 4 + (size_t)e->u.sched.n * 13;
    case FSM_T_LOCK:
        return n + 2 + e->u.lock.owner.len + 16;
    case FSM_T_THROTTLE:
        return n + 20;
    case FSM_T_UNIQUE:
        return n + 2 + e->u.lock.owner.len + 8;
    default: /* FSM_T_FUNNEL */
        n += 4;
        for (uint32_t i = 0; i < e->u.funnel.n; i++)
            n += 2 + e->u.funnel.v[i].owner.len + 8;
        return n;
    }
}

static uint8_t *
fsm_snap_put_sched(uint8_t *p, const struct fsm_sched *s)
{
    *p++ = (uint8_t)(s->has_floor | s->has_done << 1);
    p = fsm_put_u64(p, s->has_floor ? (uint64_t)s->floor_s : 0);
    p = fsm_put_u64(p, s->has_done ? (uint64_t)s->last_done_s : 0);
    p = fsm_put_u32(p, s->n);
    for (uint32_t i = 0; i < s->n; i++) {
        p = fsm_put_u64(p, (uint64_t)s->v[i].slot_s);
        *p++ = s->v[i].done;
        p = fsm_put_u32(p, s->v[i].by);
    }
    return p;
}

static uint8_t *
fsm_snap_put_entry(uint8_t *p, const struct fsm_entry *e)
{
    *p++ = e->type;
    p = fsm_put_str(p, e->key, e->key_len);
    switch (e->type) {
    case FSM_T_SCHED:
        return fsm_snap_put_sched(p, &e->u.sched);
    case FSM_T_LOCK:
        p = fsm_put_str(p, e->u.lock.owner.s, e->u.lock.owner.len);
        p = fsm_put_u64(p, e->u.lock.token);
        return fsm_put_u64(p, e->u.lock.expires_at_ms);
    case FSM_T_THROTTLE:
        p = fsm_put_u64(p, e->u.thr.per_ms);
        p = fsm_put_u64(p, e->u.thr.window);
        return fsm_put_u32(p, e->u.thr.count);
    case FSM_T_UNIQUE:
        p = fsm_put_str(p, e->u.lock.owner.s, e->u.lock.owner.len);
        return fsm_put_u64(p, e->u.lock.expires_at_ms);
    default: /* FSM_T_FUNNEL */
        p = fsm_put_u32(p, e->u.funnel.n);
        for (uint32_t i = 0; i < e->u.funnel.n; i++) {
            const struct fsm_holder *h = &e->u.funnel.v[i];

            p = fsm_put_str(p, h->owner.s, h->owner.len);
            p = fsm_put_u64(p, h->expires_at_ms);
        }
        return p;
    }
}

static int
fsm_entry_cmp(const struct fsm_entry *a, const struct fsm_entry *b)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    return fsm_bytes_cmp(a->key, a->key_len, b->key, b->key_len);
}

static int
fsm_entry_qcmp(const void *a, const void *b)
{
    return fsm_entry_cmp(*(struct fsm_entry *const *)a,
                         *(struct fsm_entry *const *)b);
}

int
fsm_snapshot(const struct fsm *f, uint8_t **buf, size_t *len)
{
    struct fsm_entry **v = cd_malloc((f->n ? f->n : 1) * sizeof(*v));
    size_t             n = 0, size = FSM_SNAP_HDR_LEN;
    uint8_t           *out, *p;

    if (v == NULL)
        return CADRE_ENOMEM;
    for (size_t i = 0; i <= f->mask; i++) {
        if (f->tab[i] != NULL) {
            v[n++] = f->tab[i];
            size += fsm_snap_entry_size(f->tab[i]);
        }
    }
    qsort(v, n, sizeof(*v), fsm_entry_qcmp);
    out = cd_malloc(size);
    if (out == NULL) {
        cd_free(v);
        return CADRE_ENOMEM;
    }
    memcpy(out, fsm_magic, 4);
    out[4] = FSM_SNAP_VERSION;
    p = fsm_put_u64(out + 5, f->last_token);
    p = fsm_put_u32(p, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        p = fsm_snap_put_entry(p, v[i]);
    cd_free(v);
    *buf = out;
    *len = size;
    return CADRE_OK;
}

/* Restore reads into a scratch fsm; each reader returns 0 on bad input (the
 * reader's ok cleared or a rule broken) and sets *nomem on allocation
 * failure. */
struct fsm_rs {
    struct fsm_rd rd;
    struct fsm   *f;
    uint64_t      last_token;
    int           nomem;
};

static int
fsm_rs_owner(struct fsm_rs *rs, struct fsm_owner *o)
{
    uint16_t    len;
    const char *s = fsm_rd_str(&rs->rd, FSM_OWNER_MAX, &len);

    if (s == NULL)
        return 0;
    fsm_owner_set(o, s, len);
    return 1;
}

static int
fsm_rs_sched(struct fsm_rs *rs, struct fsm_sched *s)
{
    uint8_t  flags = fsm_rd_u8(&rs->rd);
    uint64_t floor_s = fsm_rd_u64(&rs->rd), last_s = fsm_rd_u64(&rs->rd);
    uint32_t n = fsm_rd_u32(&rs->rd);

    if (!rs->rd.ok || flags > 3 || (!(flags & 1) && floor_s != 0) ||
        (!(flags & 2) && last_s != 0) || (size_t)n > rs->rd.left / 13)
        return 0;
    s->has_floor = flags & 1;
    s->has_done = (flags >> 1) & 1;
    s->floor_s = (int64_t)floor_s;
    s->last_done_s = (int64_t)last_s;
    s->v = cd_malloc((n ? n : 1) * sizeof(*s->v));
    if (s->v == NULL) {
        rs->nomem = 1;
        return 0;
    }
    s->cap = n;
    for (s->n = 0; s->n < n; s->n++) {
        struct fsm_slot *sl = &s->v[s->n];

        sl->slot_s = (int64_t)fsm_rd_u64(&rs->rd);
        sl->done = fsm_rd_u8(&rs->rd);
        sl->by = fsm_rd_u32(&rs->rd);
        if (sl->done > 1 || (!sl->done && sl->by != 0) ||
            (s->n > 0 && sl->slot_s <= sl[-1].slot_s) ||
            (sl->done && (!s->has_done || sl->slot_s > s->last_done_s)))
            return 0;
        s->ndone += sl->done;
    }
    return rs->rd.ok && s->ndone <= FSM_DONE_KEEP;
}

static int
fsm_rs_funnel(struct fsm_rs *rs, struct fsm_entry *e)
{
    uint32_t n = fsm_rd_u32(&rs->rd);

    if (!rs->rd.ok || n == 0 || n > FSM_FUNNEL_MAX)
        return 0;
    e->u.funnel.v = cd_calloc(n, sizeof(*e->u.funnel.v));
    if (e->u.funnel.v == NULL) {
        rs->nomem = 1;
        return 0;
    }
    e->u.funnel.cap = n;
    for (; e->u.funnel.n < n; e->u.funnel.n++) {
        struct fsm_holder *h = &e->u.funnel.v[e->u.funnel.n];

        if (!fsm_rs_owner(rs, &h->owner))
            return 0;
        h->expires_at_ms = fsm_rd_u64(&rs->rd);
        if (e->u.funnel.n > 0 && fsm_bytes_cmp(h[-1].owner.s, h[-1].owner.len,
                                               h->owner.s, h->owner.len) >= 0)
            return 0;
    }
    return rs->rd.ok;
}

static int
fsm_rs_body(struct fsm_rs *rs, struct fsm_entry *e)
{
    switch (e->type) {
    case FSM_T_SCHED:
        return fsm_rs_sched(rs, &e->u.sched);
    case FSM_T_LOCK:
        if (!fsm_rs_owner(rs, &e->u.lock.owner))
            return 0;
        e->u.lock.token = fsm_rd_u64(&rs->rd);
        e->u.lock.expires_at_ms = fsm_rd_u64(&rs->rd);
        /* Tokens only increase: none may be above the counter. */
        return rs->rd.ok && e->u.lock.token >= 1 &&
               e->u.lock.token <= rs->last_token;
    case FSM_T_THROTTLE:
        e->u.thr.per_ms = fsm_rd_u64(&rs->rd);
        e->u.thr.window = fsm_rd_u64(&rs->rd);
        e->u.thr.count = fsm_rd_u32(&rs->rd);
        return rs->rd.ok && e->u.thr.per_ms >= 1 && e->u.thr.count >= 1;
    case FSM_T_UNIQUE:
        if (!fsm_rs_owner(rs, &e->u.lock.owner))
            return 0;
        e->u.lock.expires_at_ms = fsm_rd_u64(&rs->rd);
        return rs->rd.ok;
    default:
        return fsm_rs_funnel(rs, e);
    }
}

/* Reads one entry, which must sort after prev, and adds it. */
static int
fsm_rs_entry(struct fsm_rs *rs, const struct fsm_entry **prev)
{
    uint8_t           type = fsm_rd_u8(&rs->rd);
    uint16_t          klen;
    const char       *key = fsm_rd_str(&rs->rd, FSM_KEY_MAX, &klen);
    struct fsm_entry *e;

    if (key == NULL || type < FSM_T_SCHED || type >= FSM_T_END)
        return 0;
    e = fsm_entry_alloc(type, key, klen);
    if (e == NULL) {
        rs->nomem = 1;
        return 0;
    }
    if (!fsm_rs_body(rs, e) ||
        (*prev != NULL && fsm_entry_cmp(*prev, e) >= 0)) {
        fsm_entry_free(e);
        return 0;
    }
    if (fsm_tab_add(rs->f, e) != CADRE_OK) {
        fsm_entry_free(e);
        rs->nomem = 1;
        return 0;
    }
    *prev = e;
    return 1;
}

int
fsm_restore(struct fsm *f, const uint8_t *buf, size_t len)
{
    struct fsm              tmp;
    struct fsm_rs           rs = {{buf, len, buf != NULL}, &tmp, 0, 0};
    const struct fsm_entry *prev = NULL;
    const uint8_t          *magic = fsm_rd_take(&rs.rd, 4);
    uint8_t                 version = fsm_rd_u8(&rs.rd);
    uint32_t                n;

    if (magic == NULL || memcmp(magic, fsm_magic, 4) != 0)
        return CADRE_ECORRUPT;
    if (version != FSM_SNAP_VERSION)
        return rs.rd.ok ? CADRE_EVERSION : CADRE_ECORRUPT;
    rs.last_token = fsm_rd_u64(&rs.rd);
    n = fsm_rd_u32(&rs.rd);
    if (!rs.rd.ok)
        return CADRE_ECORRUPT;
    if (fsm_init(&tmp, f->max_items) != CADRE_OK)
        return CADRE_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (!fsm_rs_entry(&rs, &prev))
            break;
    }
    if (rs.nomem || !rs.rd.ok || tmp.n != n || rs.rd.left != 0) {
        fsm_fini(&tmp);
        return rs.nomem ? CADRE_ENOMEM : CADRE_ECORRUPT;
    }
    tmp.last_token = rs.last_token;
    fsm_fini(f);
    *f = tmp;
    return CADRE_OK;
}

/* ---- queries ---- */

size_t
fsm_claimed_not_done(const struct fsm *f, const char *name, size_t name_len,
                     int64_t *slots, size_t cap)
{
    const struct fsm_entry *e;
    size_t                  n = 0;

    if (name_len == 0 || name_len > FSM_KEY_MAX)
        return 0;
    e = fsm_find(f, FSM_T_SCHED, name, name_len);
    for (uint32_t i = 0; e != NULL && i < e->u.sched.n; i++) {
        if (e->u.sched.v[i].done)
            continue;
        if (n < cap)
            slots[n] = e->u.sched.v[i].slot_s;
        n++;
    }
    return n;
}

int
fsm_slot_state(const struct fsm *f, const char *name, size_t name_len,
               int64_t slot_s, uint32_t *by)
{
    const struct fsm_entry *e;
    uint32_t                i;

    *by = 0;
    if (name_len == 0 || name_len > FSM_KEY_MAX)
        return FSM_SLOT_UNKNOWN;
    e = fsm_find(f, FSM_T_SCHED, name, name_len);
    if (e == NULL)
        return FSM_SLOT_UNKNOWN;
    i = fsm_slot_search(&e->u.sched, slot_s);
    if (fsm_slot_found(&e->u.sched, i, slot_s)) {
        *by = e->u.sched.v[i].by;
        return e->u.sched.v[i].done ? FSM_SLOT_DONE : FSM_SLOT_CLAIMED;
    }
    if (e->u.sched.has_floor && slot_s <= e->u.sched.floor_s)
        return FSM_SLOT_PRUNED;
    return FSM_SLOT_UNKNOWN;
}

int
fsm_unique_held(const struct fsm *f, const char *key, size_t key_len,
                uint64_t now_ms)
{
    const struct fsm_entry *e;

    if (key_len == 0 || key_len > FSM_KEY_MAX)
        return 0;
    e = fsm_find(f, FSM_T_UNIQUE, key, key_len);
    return e != NULL && !fsm_expired(e->u.lock.expires_at_ms, now_ms);
}

int
fsm_last_done(const struct fsm *f, const char *name, size_t name_len,
              int64_t *slot_s)
{
    const struct fsm_entry *e;

    if (name_len == 0 || name_len > FSM_KEY_MAX)
        return 0;
    e = fsm_find(f, FSM_T_SCHED, name, name_len);
    if (e == NULL || !e->u.sched.has_done)
        return 0;
    *slot_s = e->u.sched.last_done_s;
    return 1;
}

void
fsm_get_stats(const struct fsm *f, struct fsm_stats *st)
{
    st->items = f->items;
    st->entries = f->n;
    st->last_token = f->last_token;
}

const char *
fsm_kind_name(int kind)
{
    static const char *const names[FSM_KIND_END] = {
        [FSM_CLAIM] = "claim",
        [FSM_DONE] = "done",
        [FSM_LOCK_ACQUIRE] = "lock_acquire",
        [FSM_LOCK_RELEASE] = "lock_release",
        [FSM_THROTTLE] = "throttle",
        [FSM_FUNNEL_ACQUIRE] = "funnel_acquire",
        [FSM_FUNNEL_RELEASE] = "funnel_release",
        [FSM_UNIQUE_TAKE] = "unique_take",
        [FSM_UNIQUE_RELEASE] = "unique_release",
        [FSM_EXPIRE] = "expire",
    };

    return kind >= FSM_CLAIM && kind < FSM_KIND_END ? names[kind] : "?";
}

const char *
fsm_code_name(int code)
{
    static const char *const names[] = {
        [FSM_R_OK] = "ok",           [FSM_R_WON] = "won",
        [FSM_R_EXISTS] = "exists",   [FSM_R_HELD] = "held",
        [FSM_R_LIMITED] = "limited", [FSM_R_NOT_HOLDER] = "not_holder",
        [FSM_R_INVALID] = "invalid", [FSM_R_FULL] = "full",
    };

    return code >= FSM_R_OK && code <= FSM_R_FULL ? names[code] : "?";
}
