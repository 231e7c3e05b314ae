/* scheduler.c: schedules fired as jobs; the protocol is in scheduler.h. */
#include "node/scheduler.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/id.h"
#include "common/log.h"
#include "node/fsm.h"
#include "node/sched.h"
#include "store/store.h"

#define SCHEDULER_FLIGHT_MAX 64 /* on_one_server slots in progress, each */
#define SCHEDULER_DUE_MAX 16    /* slots fired per schedule per turn */
#define SCHEDULER_HELD_MAX 256  /* held jobs looked at per sweep */
#define SCHEDULER_SWEEP_MS 200

/* Where an on_one_server slot is on its way (scheduler.h, steps 1-4). */
enum scheduler_phase {
    SCHEDULER_CLAIMING, /* CLAIM proposed */
    SCHEDULER_HOLD,     /* won: store the held job in the next turn */
    SCHEDULER_HELD,     /* stored in this turn: DONE after the commit */
    SCHEDULER_DOING,    /* DONE proposed */
    SCHEDULER_RELEASE,  /* done by us: make the job READY next turn */
};

struct scheduler_slot {
    int64_t      slot_s;
    int          phase; /* enum scheduler_phase */
    cadre_job_id id;
};

struct scheduler_entry {
    struct sched_def     *def;
    int                   led; /* fired through the leader */
    int                   armed;
    int64_t               last_s; /* the latest slot fired or skipped */
    struct scheduler_slot fl[SCHEDULER_FLIGHT_MAX];
    size_t                fl_n;
    int                   has_prev; /* prev: the last job stored here */
    cadre_job_id          prev;
    int                   buffered; /* overlap = buffer: a slot waits */
    int64_t               buffered_s;
    int                   paused; /* local schedules */
    uint64_t              fired;
    int64_t               fired_s; /* the latest slot stored here; 0 none */
};

/* One proposal's context; the scheduler outlives every one of them. */
struct scheduler_prop {
    struct scheduler *s;
    size_t            entry;
    int64_t           slot_s;
    int               kind; /* FSM_CLAIM or FSM_DONE */
};

struct scheduler {
    struct scheduler_config cfg;
    struct sched_def       *defs;
    size_t                  n;
    struct scheduler_entry *e;
    int                     was_ready;
    uint32_t                raft_id;
    size_t                  props; /* proposals in flight */
    int                     closing;
    int                     kicked;
    uint64_t                next_sweep_mono;
    uint64_t                next_due_ms; /* the earliest next slot, ms */
};

/* ---- helpers ------------------------------------------------------------ */

/* The job id of a slot: the first 16 bytes of BLAKE2b("NAME@SLOT"), the
 * same on every node, so a slot stored twice in one store is one job. */
static void
scheduler_slot_id(const char *name, int64_t slot_s, cadre_job_id *id)
{
    char key[SCHED_SLOT_KEY_MAX];

    sched_slot_key(name, slot_s, key, sizeof(key));
    crypto_generichash(id->b, sizeof(id->b), (const uint8_t *)key, strlen(key),
                       NULL, 0);
}

void
scheduler_pause_key(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", SCHEDULER_PAUSE_PREFIX, name);
}

static int
scheduler_ready(const struct scheduler *s)
{
    return s->cfg.leader != NULL && leader_is_ready(s->cfg.leader);
}

static struct scheduler_entry *
scheduler_find(struct scheduler *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].def->name, name) == 0)
            return &s->e[i];
    return NULL;
}

static struct scheduler_slot *
scheduler_flight(struct scheduler_entry *e, int64_t slot_s)
{
    for (size_t i = 0; i < e->fl_n; i++)
        if (e->fl[i].slot_s == slot_s)
            return &e->fl[i];
    return NULL;
}

static void
scheduler_flight_drop(struct scheduler_entry *e, struct scheduler_slot *f)
{
    *f = e->fl[--e->fl_n];
}

static int
scheduler_paused(const struct scheduler *s, const struct scheduler_entry *e,
                 uint64_t now_ms)
{
    char key[FSM_KEY_MAX + 1];

    if (!e->led)
        return e->paused;
    scheduler_pause_key(e->def->name, key, sizeof(key));
    return fsm_unique_held(leader_fsm(s->cfg.leader), key, strlen(key), now_ms);
}

/* Whether the last job this node stored for e is still pending (ready,
 * held, running): the overlap policy's "previous run still going". */
static int
scheduler_running(struct scheduler_entry *e, struct turn *t)
{
    int    status = CADRE_UNKNOWN;
    cd_err err;

    if (e->fl_n > 0)
        return 1;
    if (!e->has_prev)
        return 0;
    if (store_outcome(t->txn, &e->prev, &status, NULL, &err) != CADRE_OK)
        return 0;
    return status == CADRE_PENDING;
}

/* Stores the job of slot_s (held or ready). *stored = 1 if it is in the
 * store now (also when it already was). */
static int
scheduler_store(struct scheduler_entry *e, struct turn *t, int64_t slot_s,
                const cadre_job_id *id, int held)
{
    const struct sched_def *d = e->def;
    struct store_job        job;
    cd_err                  err;
    int                     dup = 0;
    int                     rc;

    memset(&job, 0, sizeof(job));
    job.id = *id;
    job.task = (char *)d->task;
    job.queue = (char *)d->queue;
    job.payload = (uint8_t *)d->payload;
    job.payload_len = d->payload_len;
    job.schedule = (char *)d->name;
    job.slot_s = slot_s;
    job.available_at_ms = held ? STORE_HELD_MS : 0;
    rc = store_job_add(t->txn, &job, t->now_ms, &dup, &err);
    if (rc != CADRE_OK) {
        CD_LOG_ERR("scheduler", "SCHED-STORE",
                   "schedule=%s slot=%" PRId64 " error=\"%s\"", d->name, slot_s,
                   err.msg);
        return rc;
    }
    t->dirty = 1;
    if (slot_s > e->fired_s)
        e->fired_s = slot_s;
    if (!dup) {
        e->fired++;
        turn_event(t, MSG_EVENT_DISPATCHED, id, d->task, d->queue, 0, NULL);
    }
    e->has_prev = 1;
    e->prev = *id;
    CD_LOG_INFO("scheduler", held ? "SCHED-HOLD" : "SCHED-FIRE",
                "schedule=%s slot=%" PRId64 "%s", d->name, slot_s,
                dup ? " duplicate=1" : "");
    return CADRE_OK;
}

/* ---- proposals ---------------------------------------------------------- */

static void scheduler_maybe_free(struct scheduler *s);

static void
scheduler_claimed(struct scheduler_entry *e, struct scheduler_slot *f, int rc,
                  const struct fsm_result *res)
{
    if (rc == CADRE_OK && res->code == FSM_R_WON) {
        cd_fault("sched_after_claim");
        f->phase = SCHEDULER_HOLD;
        return;
    }
    /* EXISTS: an earlier leader claimed it; if it is not done, our redo
     * (or the next leader's) takes it. Anything else: not ours to do. */
    if (rc != CADRE_OK || res->code != FSM_R_EXISTS)
        CD_LOG_WARN("scheduler", "SCHED-CLAIM",
                    "schedule=%s slot=%" PRId64 " rc=%d result=%s",
                    e->def->name, f->slot_s, rc,
                    rc == CADRE_OK ? fsm_code_name(res->code) : "-");
    scheduler_flight_drop(e, f);
}

static void
scheduler_doned(struct scheduler_entry *e, struct scheduler_slot *f, int rc,
                const struct fsm_result *res)
{
    if (rc == CADRE_OK && res->code == FSM_R_OK) {
        cd_fault("sched_after_done");
        f->phase = SCHEDULER_RELEASE;
        return;
    }
    /* Unknown outcome: the held job stays; the sweep releases it if our
     * DONE committed after all, drops it if another node's did. */
    CD_LOG_WARN("scheduler", "SCHED-DONE",
                "schedule=%s slot=%" PRId64 " rc=%d result=%s", e->def->name,
                f->slot_s, rc, rc == CADRE_OK ? fsm_code_name(res->code) : "-");
    scheduler_flight_drop(e, f);
}

static void
scheduler_prop_cb(void *arg, int rc, const struct fsm_result *res)
{
    struct scheduler_prop *p = arg;
    struct scheduler      *s = p->s;
    struct scheduler_slot *f;

    s->props--;
    if (!s->closing) {
        f = scheduler_flight(&s->e[p->entry], p->slot_s);
        if (f != NULL && p->kind == FSM_CLAIM && f->phase == SCHEDULER_CLAIMING)
            scheduler_claimed(&s->e[p->entry], f, rc, res);
        else if (f != NULL && p->kind == FSM_DONE &&
                 f->phase == SCHEDULER_DOING)
            scheduler_doned(&s->e[p->entry], f, rc, res);
        s->kicked = 1;
        if (s->cfg.kick_cb != NULL)
            s->cfg.kick_cb(s->cfg.arg);
    }
    cd_free(p);
    scheduler_maybe_free(s);
}

static int
scheduler_propose(struct scheduler *s, size_t entry, int kind, int64_t slot_s)
{
    const struct sched_def *d = s->e[entry].def;
    struct scheduler_prop  *p = cd_malloc(sizeof(*p));
    struct fsm_cmd          c = {.kind = kind,
                                 .now_ms = cd_now_ms(),
                                 .key = d->name,
                                 .key_len = (uint16_t)strlen(d->name),
                                 .slot_s = slot_s,
                                 .by = kind == FSM_DONE ? s->raft_id : 0};
    int                     rc;

    if (p == NULL)
        return CADRE_ENOMEM;
    *p = (struct scheduler_prop){
        .s = s, .entry = entry, .slot_s = slot_s, .kind = kind};
    rc = leader_propose(s->cfg.leader, &c, scheduler_prop_cb, p);
    if (rc != CADRE_OK) {
        cd_free(p);
        return rc;
    }
    s->props++;
    return CADRE_OK;
}

/* ---- firing -------------------------------------------------------------- */

/* A due slot of a leader-led schedule: claim it (step 1). */
static void
scheduler_claim(struct scheduler *s, size_t i, int64_t slot_s)
{
    struct scheduler_entry *e = &s->e[i];
    struct scheduler_slot  *f;

    if (scheduler_flight(e, slot_s) != NULL)
        return;
    if (e->fl_n == SCHEDULER_FLIGHT_MAX) {
        CD_LOG_WARN("scheduler", "SCHED-BUSY", "schedule=%s slot=%" PRId64,
                    e->def->name, slot_s);
        return;
    }
    f = &e->fl[e->fl_n];
    *f = (struct scheduler_slot){.slot_s = slot_s, .phase = SCHEDULER_CLAIMING};
    scheduler_slot_id(e->def->name, slot_s, &f->id);
    if (scheduler_propose(s, i, FSM_CLAIM, slot_s) == CADRE_OK)
        e->fl_n++;
}

static void
scheduler_fire(struct scheduler *s, size_t i, struct turn *t, int64_t slot_s)
{
    struct scheduler_entry *e = &s->e[i];
    cadre_job_id            id;

    if (e->led) {
        scheduler_claim(s, i, slot_s);
        return;
    }
    scheduler_slot_id(e->def->name, slot_s, &id);
    (void)scheduler_store(e, t, slot_s, &id, 0);
}

/* A local schedule's state goes to the store with the turn, so a restarted
 * node applies the catchup policy from where it stopped (the leader's log
 * keeps an on_one_server schedule's). */
static void
scheduler_save(struct scheduler_entry *e, struct turn *t)
{
    cd_err err;

    if (e->led)
        return;
    if (store_sched_put(t->txn, e->def->name, e->last_s, e->paused, &err) !=
        CADRE_OK) {
        CD_LOG_WARN("scheduler", "SCHED-SAVE", "schedule=%s error=\"%s\"",
                    e->def->name, err.msg);
        return;
    }
    t->dirty = 1;
}

/* The first turn of a schedule: a local one goes on from its saved slot
 * (missed slots then follow its catchup policy) and keeps its pause; one
 * never saved starts with the next slot. */
static void
scheduler_arm(struct scheduler_entry *e, struct turn *t, int64_t now_s)
{
    int64_t last = 0;
    int     paused = 0, found = 0;
    cd_err  err;

    e->armed = 1;
    e->last_s = now_s - 1;
    if (e->led)
        return;
    if (store_sched_get(t->txn, e->def->name, &last, &paused, &found, &err) !=
        CADRE_OK)
        CD_LOG_WARN("scheduler", "SCHED-LOAD", "schedule=%s error=\"%s\"",
                    e->def->name, err.msg);
    if (!found)
        return;
    e->last_s = last < now_s ? last : now_s - 1; /* a clock stepped back */
    e->paused = paused;
}

/* The due slots of schedule i at now, through its catchup and overlap
 * policies. */
static void
scheduler_due(struct scheduler *s, size_t i, struct turn *t, int64_t now_s)
{
    struct scheduler_entry *e = &s->e[i];
    int64_t                 slots[SCHEDULER_DUE_MAX];
    size_t                  n;

    int64_t was;

    if (!e->armed)
        scheduler_arm(e, t, now_s);
    was = e->last_s;
    if (e->buffered && !scheduler_running(e, t)) {
        e->buffered = 0;
        scheduler_fire(s, i, t, e->buffered_s);
    }
    n = sched_due(e->def, e->last_s, now_s, slots, SCHEDULER_DUE_MAX);
    for (size_t k = 0; k < n; k++) {
        e->last_s = slots[k];
        if (scheduler_paused(s, e, t->now_ms))
            continue;
        switch (sched_overlap_decide(e->def, scheduler_running(e, t),
                                     e->buffered)) {
        case SCHED_FIRE:
            scheduler_fire(s, i, t, slots[k]);
            break;
        case SCHED_BUFFER:
            e->buffered = 1;
            e->buffered_s = slots[k];
            break;
        default:
            CD_LOG_INFO("scheduler", "SCHED-SKIP",
                        "schedule=%s slot=%" PRId64 " why=overlap",
                        e->def->name, slots[k]);
        }
    }
    if (n == 0 && now_s > e->last_s + SCHED_SKIP_GRACE_S &&
        e->def->catchup == SCHED_CATCHUP_SKIP)
        e->last_s =
            now_s - SCHED_SKIP_GRACE_S; /* keep sched_due's walk short */
    if (e->last_s != was)
        scheduler_save(e, t); /* in the txn that stored the slots' jobs */
}

/* A new leader's first turn after its barrier: its FSM has every slot
 * earlier leaders claimed. Redo the claimed-not-done ones (step 2 on), and
 * go on from the latest slot the log knows. */
static void
scheduler_take_over(struct scheduler *s, int64_t now_s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct scheduler_entry *e = &s->e[i];
        const struct fsm       *f = leader_fsm(s->cfg.leader);
        const char             *name = e->def->name;
        int64_t                 slots[SCHEDULER_FLIGHT_MAX], last = 0;
        size_t                  k;

        if (!e->led)
            continue;
        e->fl_n = 0; /* a previous tenure's leftovers: its callbacks came */
        k = fsm_claimed_not_done(f, name, strlen(name), slots,
                                 SCHEDULER_FLIGHT_MAX);
        k = k < SCHEDULER_FLIGHT_MAX ? k : SCHEDULER_FLIGHT_MAX;
        e->armed = 1;
        e->last_s = now_s - 1;
        if (fsm_last_done(f, name, strlen(name), &last))
            e->last_s = last;
        for (size_t j = 0; j < k; j++) {
            struct scheduler_slot *fl = &e->fl[e->fl_n++];

            *fl = (struct scheduler_slot){.slot_s = slots[j],
                                          .phase = SCHEDULER_HOLD};
            scheduler_slot_id(name, slots[j], &fl->id);
            if (slots[j] > e->last_s)
                e->last_s = slots[j];
            CD_LOG_NOTICE("scheduler", "SCHED-REDO",
                          "schedule=%s slot=%" PRId64, name, slots[j]);
        }
    }
}

/* Steps 2 and 4 of the slots in flight (leader or not: a slot done by us
 * is released even after we lost the leadership). */
static void
scheduler_advance(struct scheduler *s, size_t i, struct turn *t, int ready)
{
    struct scheduler_entry *e = &s->e[i];
    cd_err                  err;

    for (size_t k = 0; k < e->fl_n;) {
        struct scheduler_slot *f = &e->fl[k];

        if (f->phase == SCHEDULER_HOLD && !ready) {
            scheduler_flight_drop(e, f); /* the next leader redoes it */
            continue;
        }
        if (f->phase == SCHEDULER_HOLD) {
            if (scheduler_store(e, t, f->slot_s, &f->id, 1) == CADRE_OK)
                f->phase = SCHEDULER_HELD;
        } else if (f->phase == SCHEDULER_RELEASE) {
            int rc = store_held_release(t->txn, &f->id, &err);

            if (rc != CADRE_OK && rc != CADRE_ENOTFOUND && rc != CADRE_EINVAL)
                CD_LOG_ERR("scheduler", "SCHED-RELEASE",
                           "schedule=%s slot=%" PRId64 " error=\"%s\"",
                           e->def->name, f->slot_s, err.msg);
            else {
                t->dirty = 1;
                CD_LOG_INFO("scheduler", "SCHED-RUN",
                            "schedule=%s slot=%" PRId64, e->def->name,
                            f->slot_s);
                scheduler_flight_drop(e, f);
                continue;
            }
        }
        k++;
    }
}

/* A held job not in flight: release it if the log says its slot is done by
 * us, drop it if done by another node (or long ago), else let it wait. */
static void
scheduler_resolve(struct scheduler *s, struct turn *t, const cadre_job_id *id)
{
    struct store_job        job;
    struct scheduler_entry *e;
    cd_err                  err;
    uint32_t                by = 0;
    int                     st;

    if (store_job_get(t->txn, id, &job, &err) != CADRE_OK)
        return;
    e = job.schedule != NULL ? scheduler_find(s, job.schedule) : NULL;
    if (e != NULL && scheduler_flight(e, job.slot_s) != NULL) {
        store_job_fini(&job);
        return;
    }
    st = job.schedule == NULL
             ? FSM_SLOT_PRUNED
             : fsm_slot_state(leader_fsm(s->cfg.leader), job.schedule,
                              strlen(job.schedule), job.slot_s, &by);
    if (st == FSM_SLOT_DONE && by == s->raft_id) {
        if (store_held_release(t->txn, id, &err) == CADRE_OK) {
            t->dirty = 1;
            CD_LOG_NOTICE("scheduler", "SCHED-RUN",
                          "schedule=%s slot=%" PRId64 " late=1", job.schedule,
                          job.slot_s);
        }
    } else if (st == FSM_SLOT_DONE || st == FSM_SLOT_PRUNED) {
        job.state = STORE_DONE;
        job.finished_at_ms = t->now_ms;
        if (store_job_finish(t->txn, &job, t->now_ms, &err) == CADRE_OK) {
            t->dirty = 1;
            CD_LOG_NOTICE("scheduler", "SCHED-DROP",
                          "schedule=%s slot=%" PRId64 " ran_on=%" PRIu32,
                          job.schedule ? job.schedule : "?", job.slot_s, by);
        }
    }
    store_job_fini(&job);
}

static void
scheduler_sweep(struct scheduler *s, struct turn *t)
{
    cadre_job_id ids[SCHEDULER_HELD_MAX];
    size_t       n = 0;
    cd_err       err;
    uint64_t     mono = cd_mono_ms();

    if (s->cfg.leader == NULL || s->raft_id == 0 || mono < s->next_sweep_mono)
        return; /* without our raft id no held job can be judged */
    s->next_sweep_mono = mono + SCHEDULER_SWEEP_MS;
    if (store_held_list(t->txn, ids, SCHEDULER_HELD_MAX, &n, &err) != CADRE_OK)
        return;
    for (size_t i = 0; i < n; i++)
        scheduler_resolve(s, t, &ids[i]);
}

/* The earliest next slot over all schedules, for scheduler_wants_turn. */
static void
scheduler_plan(struct scheduler *s, int ready)
{
    uint64_t next = UINT64_MAX;

    for (size_t i = 0; i < s->n; i++) {
        struct scheduler_entry *e = &s->e[i];
        int64_t                 at = 0;

        if ((e->led && !ready) || !e->armed)
            continue;
        if (e->buffered)
            next = 0; /* check on the running job each turn */
        if (sched_next(e->def, e->last_s, &at) == CADRE_OK && at > 0 &&
            (uint64_t)at * 1000 < next)
            next = (uint64_t)at * 1000;
    }
    s->next_due_ms = next;
}

void
scheduler_turn(struct scheduler *s, struct turn *t, int stopping)
{
    int     ready;
    int64_t now_s = (int64_t)(t->now_ms / 1000);

    if (s == NULL || s->closing)
        return;
    s->kicked = 0;
    ready = !stopping && scheduler_ready(s);
    if (ready && !s->was_ready)
        scheduler_take_over(s, now_s);
    s->was_ready = ready;
    for (size_t i = 0; i < s->n; i++) {
        scheduler_advance(s, i, t, ready);
        if (!stopping && (!s->e[i].led || ready))
            scheduler_due(s, i, t, now_s);
    }
    scheduler_sweep(s, t);
    scheduler_plan(s, ready);
}

void
scheduler_committed(struct scheduler *s, int ok)
{
    if (s == NULL || s->closing)
        return;
    for (size_t i = 0; i < s->n; i++) {
        struct scheduler_entry *e = &s->e[i];

        for (size_t k = 0; k < e->fl_n;) {
            struct scheduler_slot *f = &e->fl[k];

            if (f->phase != SCHEDULER_HELD) {
                k++;
                continue;
            }
            if (ok)
                cd_fault("sched_after_hold");
            f->phase = ok ? SCHEDULER_DOING : SCHEDULER_HOLD;
            if (ok && scheduler_propose(s, i, FSM_DONE, f->slot_s) != CADRE_OK)
                scheduler_flight_drop(e, f); /* the sweep or a redo */
            else
                k++;
        }
    }
}

int
scheduler_wants_turn(const struct scheduler *s, uint64_t now_ms)
{
    if (s == NULL || s->closing)
        return 0;
    if (s->kicked || now_ms >= s->next_due_ms)
        return 1;
    if (scheduler_ready(s) != s->was_ready)
        return 1;
    return s->cfg.leader != NULL && cd_mono_ms() >= s->next_sweep_mono;
}

/* ---- admin --------------------------------------------------------------- */

size_t
scheduler_count(const struct scheduler *s)
{
    return s != NULL ? s->n : 0;
}

int
scheduler_is_leader_led(const struct scheduler *s, const char *name)
{
    struct scheduler_entry *e =
        s != NULL ? scheduler_find((struct scheduler *)s, name) : NULL;

    return e != NULL && e->led;
}

void
scheduler_info(const struct scheduler *s, size_t i, uint64_t now_ms,
               struct scheduler_info *out)
{
    const struct scheduler_entry *e = &s->e[i];
    const struct sched_def       *d = e->def;
    int64_t                       last = e->fired_s, next = 0;
    int                           ready = scheduler_ready(s);

    /* on_one_server: the latest slot done in the log, whoever fired it. */
    if (e->led && !fsm_last_done(leader_fsm(s->cfg.leader), d->name,
                                 strlen(d->name), &last))
        last = 0;
    if (sched_next(d, (int64_t)(now_ms / 1000), &next) != CADRE_OK)
        next = 0;
    *out = (struct scheduler_info){.name = d->name,
                                   .cron = d->cron,
                                   .task = d->task,
                                   .queue = d->queue,
                                   .tz = d->tz[0] ? d->tz : "UTC",
                                   .on_one_server = d->on_one_server,
                                   .paused = scheduler_paused(s, e, now_ms),
                                   .next_s = next,
                                   .last_s = last,
                                   .fired = e->fired,
                                   .where = !e->led ? "every node"
                                            : ready ? "leader (this node)"
                                                    : "leader"};
}

int
scheduler_run_now(struct scheduler *s, struct turn *t, const char *name,
                  cadre_job_id *id, cd_err *err)
{
    struct scheduler_entry *e = s != NULL ? scheduler_find(s, name) : NULL;
    int                     rc;

    if (e == NULL)
        return cd_err_set(err, CADRE_ENOTFOUND, "no schedule '%s'", name);
    cd_id_new(id, t->now_ms); /* a manual run is not a slot: a fresh id */
    rc = scheduler_store(e, t, (int64_t)(t->now_ms / 1000), id, 0);
    if (rc != CADRE_OK)
        return cd_err_set(err, rc, "schedule '%s': cannot store its job", name);
    return CADRE_OK;
}

int
scheduler_pause(struct scheduler *s, struct turn *t, const char *name,
                int paused, cd_err *err)
{
    struct scheduler_entry *e = s != NULL ? scheduler_find(s, name) : NULL;

    if (e == NULL)
        return cd_err_set(err, CADRE_ENOTFOUND, "no schedule '%s'", name);
    if (e->led)
        return cd_err_set(err, CADRE_EINVAL,
                          "schedule '%s' runs on one server: its pause "
                          "lives in the leader's log",
                          name);
    if (!e->armed)
        scheduler_arm(e, t, (int64_t)(t->now_ms / 1000));
    e->paused = paused;
    scheduler_save(e, t);
    CD_LOG_NOTICE("scheduler", paused ? "SCHED-PAUSE" : "SCHED-RESUME",
                  "schedule=%s", name);
    return CADRE_OK;
}

/* ---- open and close ------------------------------------------------------ */

int
scheduler_open(struct scheduler **out, const struct scheduler_config *cfg,
               uint64_t now_ms, cd_err *err)
{
    struct scheduler *s = cd_calloc(1, sizeof(*s));
    int               rc = CADRE_OK;

    (void)now_ms;
    if (s == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "scheduler");
    s->cfg = *cfg;
    s->next_sweep_mono = 0;
    if (cfg->config_file != NULL && cfg->config_file[0] != '\0')
        rc = sched_load(cfg->config_file, &s->defs, &s->n, err);
    if (rc == CADRE_OK && s->n > 0 &&
        (s->e = cd_calloc(s->n, sizeof(*s->e))) == NULL)
        rc = cd_err_set(err, CADRE_ENOMEM, "scheduler");
    for (size_t i = 0; rc == CADRE_OK && i < s->n; i++) {
        s->e[i].def = &s->defs[i];
        s->e[i].led = s->defs[i].on_one_server && cfg->leader != NULL;
        if (s->defs[i].on_one_server && cfg->leader == NULL && cfg->has_peers)
            rc = cd_err_set(err, CADRE_ECONFIG,
                            "schedule '%s' is on_one_server: a cluster "
                            "needs --voters to fire it on one server only",
                            s->defs[i].name);
    }
    if (rc != CADRE_OK) {
        sched_defs_free(s->defs, s->n);
        cd_free(s->e);
        cd_free(s);
        return rc;
    }
    if (cfg->leader != NULL) { /* DONE's by, and how held jobs are judged */
        struct leader_info li;

        leader_get_info(cfg->leader, &li);
        s->raft_id = (uint32_t)li.raft_id;
    }
    s->next_due_ms = 0;
    *out = s;
    return CADRE_OK;
}

static void
scheduler_maybe_free(struct scheduler *s)
{
    if (!s->closing || s->props > 0)
        return;
    sched_defs_free(s->defs, s->n);
    cd_free(s->e);
    cd_free(s);
}

void
scheduler_close(struct scheduler *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    scheduler_maybe_free(s); /* else the last proposal's callback frees it */
}
