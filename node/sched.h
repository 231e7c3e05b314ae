/* sched.h: schedule definitions (the config file's [schedule "NAME"]
 * sections) and the pure policies that decide which slots fire now and what
 * to do with a slot whose previous run is still going. Reads the config file
 * and nothing else; no clock reads: times are Unix seconds passed in. The
 * loop, the leader's claims and dispatching live elsewhere. */
#ifndef NODE_SCHED_H
#define NODE_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "node/cron.h"

enum sched_overlap {
    SCHED_OVERLAP_SKIP,   /* previous run still going: drop this slot */
    SCHED_OVERLAP_BUFFER, /* keep one slot waiting, drop the rest */
    SCHED_OVERLAP_ALLOW,  /* run side by side */
};

enum sched_catchup {
    SCHED_CATCHUP_SKIP, /* missed slots never fire */
    SCHED_CATCHUP_LAST, /* the latest missed slot fires, once */
    SCHED_CATCHUP_ALL,  /* every slot within catchup_window_s fires */
};

enum sched_decision { SCHED_FIRE, SCHED_SKIP, SCHED_BUFFER };

/* How late a slot may be and still fire under catchup = skip: covers a slow
 * loop turn or a leader failover, not an outage. */
#define SCHED_SKIP_GRACE_S 60
#define SCHED_WINDOW_DEFAULT_S 3600
/* Room for "NAME@SLOT": a 63-byte name, '@', an int64 and the NUL. */
#define SCHED_SLOT_KEY_MAX 96

struct sched_def {
    char        name[64];  /* [A-Za-z0-9_.:-], unique in the file */
    char        cron[128]; /* as written; `every = 10s` is "@every 10s" */
    struct cron c;
    char        task[256];
    char       *payload; /* NUL-terminated, owned; NULL: none */
    size_t      payload_len;
    char        queue[128]; /* default "default" */
    char        tz[64];     /* "": UTC */
    int         on_one_server;
    int         without_overlapping; /* 1 iff overlap != ALLOW */
    int         run_in_background;
    int         overlap; /* enum sched_overlap */
    int         catchup; /* enum sched_catchup */
    uint64_t    catchup_window_s;
    int         line; /* of its section header, for messages */
};

/* Reads every [schedule "NAME"] (or [schedule NAME]) section of the INI file
 * at config_path; other sections are left to their owners. Keys: cron or
 * every (one of them), task (required), payload (indented continuation
 * lines append "\n" + line), queue, timezone (an IANA name present under
 * /usr/share/zoneinfo or $TZDIR), on_one_server, without_overlapping,
 * run_in_background (true/false/yes/no/on/off/1/0), overlap
 * (skip|buffer|allow; default skip with without_overlapping, else allow;
 * allow with without_overlapping is a contradiction), catchup
 * (skip|last|all, default last), catchup_window (a duration, default 1h).
 * On success *out is a cd_malloc'd array of *n definitions in file order
 * (NULL and 0 when there are none), freed with sched_defs_free.
 * Returns CADRE_ECONFIG with "config FILE:LINE: schedule 'NAME': ..." for an
 * unknown key, a bad value, a missing task or cron, a cron that never fires
 * (Feb 30), a duplicate name, a line longer than inih's buffer (198 bytes in
 * Debian's build: continue a long payload on indented lines); CADRE_ECONFIG if
 * the file cannot be read; CADRE_ENOMEM. Nothing is written to *out on failure.
 * Any thread. */
int sched_load(const char *config_path, struct sched_def **out, size_t *n,
               cd_err *err);

/* Frees n definitions and their array. Accepts NULL. */
void sched_defs_free(struct sched_def *defs, size_t n);

/* The first slot strictly after after_s (cron_next in the schedule's zone).
 * Returns CADRE_ENOTFOUND if it never fires again. Loop thread (cron_next's
 * rule). */
int sched_next(const struct sched_def *d, int64_t after_s, int64_t *next_s);

/* The slots to fire at now_s. Let base = last_fired_slot_s, or now_s - 1
 * when it is 0 (never fired: only a slot at now_s itself is due; pass the
 * time the schedule was first armed instead of 0 if the loop may wake
 * late). The due slots D are those in (base, now_s]; their latest is L.
 *   skip: L alone, if now_s - L < SCHED_SKIP_GRACE_S; else nothing.
 *   last: L alone, however old.
 *   all:  every slot of D with now_s - slot <= catchup_window_s, oldest
 *         first, at most cap; the caller fires them, sets last_fired_slot_s
 *         to the last one and calls again for the rest.
 * Writes the slots into slots and returns their number (0 when nothing is
 * due or now_s <= base, e.g. a clock that stepped back). Loop thread
 * (cron_next's rule). */
size_t sched_due(const struct sched_def *d, int64_t last_fired_slot_s,
                 int64_t now_s, int64_t *slots, size_t cap);

/* What to do with a due slot: running = a previous run of this schedule is
 * still going, buffered = a slot is already waiting for it to end.
 *   not running: FIRE.  allow: FIRE.  skip: SKIP.
 *   buffer: BUFFER if none is waiting yet, else SKIP.
 * Returns an enum sched_decision. Any thread. */
int sched_overlap_decide(const struct sched_def *d, int running, int buffered);

/* Writes "NAME@SLOT" (SLOT in decimal Unix seconds) into out: the job's
 * idempotency key, the same on every node. cap should be at least
 * SCHED_SLOT_KEY_MAX; a shorter buffer gets a truncated key. Any thread. */
void sched_slot_key(const char *name, int64_t slot_s, char *out, size_t cap);

#endif
