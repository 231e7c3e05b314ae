/* fsm.h: the leader's replicated state machine (DESIGN.md, "Cluster, leader,
 * schedules"): schedule slot claims, locks with fencing tokens, rate-limiter
 * windows, concurrency funnels and cluster-wide unique keys; the binary
 * encoding of its commands; and its snapshots.
 *
 * Pure and deterministic: no I/O, no clock, no randomness, no libraft. Every
 * replica that applies the same commands in the same order reaches the same
 * state and returns the same results. Time comes inside each command: the
 * leader stamps now_ms when it proposes, and every expiry is evaluated
 * against that stamp, so replaying the log gives the same answers. The
 * caller (node/leader.c) owns an fsm from one thread, the node's loop thread;
 * the codec functions touch no state and may run on any thread.
 *
 * Semantics, per command kind (results in enum fsm_code):
 * - CLAIM(key = schedule, slot_s): WON the first time, EXISTS after (also
 *   after DONE, and for any unknown slot at or below the schedule's prune
 *   floor). DONE(schedule, slot_s, by): OK (also when repeated, or for a
 *   slot already pruned); NOT_HOLDER if that slot was never claimed. The
 *   first DONE of a slot records by (the raft id of the node whose store
 *   holds the slot's job), so that node, and only it, runs it. Per schedule
 *   the last FSM_DONE_KEEP done slots are kept; older done slots are pruned
 *   and the floor rises to the highest pruned slot. A claimed-not-done slot
 *   is never pruned. count = claimed-not-done slots of that schedule.
 * - LOCK_ACQUIRE(key, owner, ttl_ms >= 1): OK with a fencing token from one
 *   counter for the whole state, so tokens are totally ordered and only ever
 *   increase; HELD (token, holder, retry_after_ms = time to its expiry) while
 *   another owner holds it. The holder acquiring again refreshes the expiry
 *   to now_ms + ttl_ms and keeps its token: a proposal retried after a lost
 *   leadership must not take a second token. A lock past its expiry at the
 *   command's now_ms is free (owner death = expiry after the TTL).
 *   LOCK_RELEASE(key, owner): OK, or NOT_HOLDER if owner does not hold it
 *   now (also when its lock already expired: it may have overlapped).
 * - THROTTLE(key, limit >= 1, per_ms >= 1): fixed windows aligned to
 *   multiples of per_ms (window = now_ms / per_ms), at most limit OKs per
 *   window; count = used in this window. LIMITED with retry_after_ms = time
 *   to the next window. Like Redis::throttle a burst can straddle a window
 *   edge (2 x limit within per_ms), but over any span at most limit x windows
 *   touched pass. A command stamped in an earlier window than the key's
 *   current one (a new leader's clock behind) counts in the current window,
 *   so a clock step back never resets a window. Not idempotent: a retried
 *   proposal counts twice (the safe side).
 * - FUNNEL_ACQUIRE(key, owner, 1 <= limit <= FSM_FUNNEL_MAX, ttl_ms >= 1): at
 *   most limit live holders per key: OK (count = holders), the same owner
 *   again refreshes its expiry; LIMITED with retry_after_ms = time to the
 *   earliest holder's expiry. FUNNEL_RELEASE(key, owner): OK or NOT_HOLDER.
 * - UNIQUE_TAKE(key, owner = job id text, ttl_ms; 0 = until released): OK,
 *   the same owner again is OK (refresh); EXISTS with the holder (and
 *   retry_after_ms when it has a ttl). UNIQUE_RELEASE(key, owner): OK or
 *   NOT_HOLDER.
 * - EXPIRE(now_ms): removes everything expired at now_ms (locks, unique keys
 *   with a ttl, funnel holders, throttle windows that ended); count = items
 *   removed. O(items): the leader proposes it now and then. Expired entries
 *   are also dropped lazily when a command touches their key.
 * A command that does not decode gives INVALID; a command that would grow
 * the state past max_items gives FULL. Neither changes the state.
 *
 * Bounded memory: an item is a table entry (a schedule, lock, throttle key,
 * funnel or unique key), a slot record or a funnel holder; the state holds
 * at most fsm_opts.max_items items. That cap must be the same on every voter
 * (like the voter list): replicas with different caps can answer FULL
 * differently. An allocation failure inside fsm_apply aborts the process:
 * answering differently from the other replicas would be worse (fail-stop;
 * the restarted node rebuilds from snapshot and log). */
#ifndef NODE_FSM_H
#define NODE_FSM_H

#include <stddef.h>
#include <stdint.h>

/* Command layout version. Bump procedure: decoding accepts every version it
 * knows; a leader proposes a new version only once every voter runs a build
 * that decodes it, since an old replica would answer INVALID where the new
 * ones apply it. */
#define FSM_CMD_VERSION 1
/* Snapshot layout version (its own, so the two can move apart). */
#define FSM_SNAP_VERSION 1

#define FSM_KEY_MAX 200     /* bytes of a key or schedule name, at least 1 */
#define FSM_OWNER_MAX 64    /* bytes of an owner, at least 1 */
#define FSM_FUNNEL_MAX 1024 /* largest funnel limit */
#define FSM_DONE_KEEP 1024  /* done slots kept per schedule */
#define FSM_MAX_ITEMS_DEFAULT 1000000
/* The largest encoded command: header, two strings and the numbers. */
#define FSM_CMD_MAX (10 + 2 + FSM_KEY_MAX + 2 + FSM_OWNER_MAX + 32)

enum fsm_kind {
    FSM_CLAIM = 1,      /* key = schedule, slot_s */
    FSM_DONE,           /* key = schedule, slot_s, by */
    FSM_LOCK_ACQUIRE,   /* key, owner, ttl_ms */
    FSM_LOCK_RELEASE,   /* key, owner */
    FSM_THROTTLE,       /* key, limit, per_ms */
    FSM_FUNNEL_ACQUIRE, /* key, owner, limit, ttl_ms */
    FSM_FUNNEL_RELEASE, /* key, owner */
    FSM_UNIQUE_TAKE,    /* key, owner, ttl_ms (0 = until released) */
    FSM_UNIQUE_RELEASE, /* key, owner */
    FSM_EXPIRE,         /* nothing but now_ms */
    FSM_KIND_END
};

enum fsm_code {
    FSM_R_OK = 0,
    FSM_R_WON,        /* CLAIM: this command claimed the slot */
    FSM_R_EXISTS,     /* CLAIM: claimed before; UNIQUE_TAKE: taken */
    FSM_R_HELD,       /* LOCK_ACQUIRE: another owner holds it */
    FSM_R_LIMITED,    /* THROTTLE, FUNNEL_ACQUIRE: over the limit */
    FSM_R_NOT_HOLDER, /* releases, DONE of a slot never claimed */
    FSM_R_INVALID,    /* the command did not decode */
    FSM_R_FULL,       /* the state is at max_items */
};

/* One command. Strings are bytes with a length, not NUL-terminated; after
 * fsm_cmd_decode they point into the decoded buffer. Fields a kind does not
 * use are ignored by the encoder and zero after decoding. */
struct fsm_cmd {
    int         kind;    /* enum fsm_kind */
    uint64_t    now_ms;  /* the proposer's Unix ms */
    const char *key;     /* the schedule name for CLAIM / DONE */
    uint16_t    key_len; /* 1..FSM_KEY_MAX */
    const char *owner;
    uint16_t    owner_len; /* 1..FSM_OWNER_MAX */
    int64_t     slot_s;    /* a schedule slot (its fire time, Unix s) */
    uint64_t    ttl_ms;
    uint32_t    limit;
    uint64_t    per_ms;
    uint32_t    by; /* DONE: the dispatcher's raft id (0: none, skipped) */
};

/* What one command did. Plain data, no pointers: safe to copy anywhere. */
struct fsm_result {
    int      code;  /* enum fsm_code */
    uint64_t token; /* LOCK_ACQUIRE OK: the token; HELD: the holder's */
    uint64_t retry_after_ms; /* HELD, LIMITED, EXISTS (unique with a ttl) */
    uint32_t count;          /* see fsm.h's top comment, per kind */
    uint16_t holder_len;     /* HELD, EXISTS (unique): the holder */
    /* A copy of the holder's bytes plus a NUL; owners may hold any byte, so
     * holder_len is the authority. */
    char holder[FSM_OWNER_MAX + 1];
};

/* Options; the zero value means defaults. */
struct fsm_opts {
    size_t max_items; /* 0 = FSM_MAX_ITEMS_DEFAULT; the same on every voter */
};

struct fsm_stats {
    size_t   items;      /* as counted against max_items */
    size_t   entries;    /* keys and schedules in the table */
    uint64_t last_token; /* the last fencing token handed out (0 = none) */
};

struct fsm;

/* Makes an empty state (opts may be NULL). Returns CADRE_ENOMEM. The caller
 * frees *out with fsm_free. */
int fsm_new(const struct fsm_opts *opts, struct fsm **out);
/* Frees f and everything in it; accepts NULL. */
void fsm_free(struct fsm *f);

/* The encoded size of c, or 0 if c is not a valid command. */
size_t fsm_cmd_size(const struct fsm_cmd *c);
/* Encodes c into out[0..cap) and sets *len. Returns CADRE_EINVAL if c is
 * not a valid command (bad kind, a string empty or too long, a limit, ttl
 * or per_ms out of range), CADRE_ETOOBIG if cap is too small. */
int fsm_cmd_encode(const struct fsm_cmd *c, uint8_t *out, size_t cap,
                   size_t *len);
/* Decodes and validates buf[0..len); never reads outside it. out's strings
 * borrow from buf. Returns CADRE_EVERSION for an unknown layout version,
 * CADRE_EPROTO for anything else that is not exactly one valid command
 * (truncated, trailing bytes, unknown kind, bad lengths or ranges). */
int fsm_cmd_decode(const uint8_t *buf, size_t len, struct fsm_cmd *out);

/* Applies one encoded command (the raft log entry) to f and fills *res.
 * Never fails: a command that does not decode gives FSM_R_INVALID and
 * changes nothing. buf is only read during the call. */
void fsm_apply(struct fsm *f, const uint8_t *buf, size_t len,
               struct fsm_result *res);

/* Serializes the whole state, sorted, so equal states give equal bytes.
 * Sets *buf (the caller frees it with cd_free) and *len. Returns
 * CADRE_ENOMEM. */
int fsm_snapshot(const struct fsm *f, uint8_t **buf, size_t *len);
/* Replaces f's state with the one in buf[0..len) (buf is only read). On
 * failure f is unchanged. Returns CADRE_ECORRUPT if buf is not exactly one
 * valid snapshot, CADRE_EVERSION for an unknown snapshot version,
 * CADRE_ENOMEM. */
int fsm_restore(struct fsm *f, const uint8_t *buf, size_t len);

/* The leader's query after its barrier: the claimed-not-done slots of the
 * schedule (name[0..name_len)), ascending. Writes the first min(total, cap)
 * of them to slots and returns the total. */
size_t fsm_claimed_not_done(const struct fsm *f, const char *name,
                            size_t name_len, int64_t *slots, size_t cap);
/* Sets *slot_s to the schedule's highest done slot. Returns 1, or 0 if no
 * slot of it was ever done. */
/* What the FSM knows of one slot (fsm_slot_state). */
enum fsm_slot_state {
    FSM_SLOT_UNKNOWN = 0, /* never claimed (or the schedule is unknown) */
    FSM_SLOT_CLAIMED,     /* claimed, not done */
    FSM_SLOT_DONE,        /* done; *by = DONE's by */
    FSM_SLOT_PRUNED,      /* at or below the floor: done long ago, by whom
                           * is forgotten */
};
/* The state of slot_s of schedule name[0..name_len) (enum fsm_slot_state);
 * *by receives DONE's by for a done slot, else 0. A node holding a job it
 * dispatched for a slot releases it only when the slot is done by itself. */
int fsm_slot_state(const struct fsm *f, const char *name, size_t name_len,
                   int64_t slot_s, uint32_t *by);
/* 1 if the unique key key[0..key_len) is held (not expired at now_ms). */
int  fsm_unique_held(const struct fsm *f, const char *key, size_t key_len,
                     uint64_t now_ms);
int  fsm_last_done(const struct fsm *f, const char *name, size_t name_len,
                   int64_t *slot_s);
void fsm_get_stats(const struct fsm *f, struct fsm_stats *st);

/* Names for logs: "claim", "won", ... ("?" for an unknown value). */
const char *fsm_kind_name(int kind);
const char *fsm_code_name(int code);

#endif
