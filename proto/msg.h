/* msg.h: the api messages as plain C structs, so that no module above proto/
 * sees protobuf-c. Decoded messages borrow their strings and bytes from the
 * decoder's allocation and stay valid until msg_free. Messages built for
 * encoding borrow from the caller; encoding copies them into the frame. */
#ifndef PROTO_MSG_H
#define PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"

typedef struct msg_bytes {
    const uint8_t *data;
    size_t         len;
} msg_bytes;

/* Job middleware (cadre.proto JobMiddleware), run by the worker around the
 * handler (worker/mw.h). A NULL or "" key turns its part off. */
#define MSG_MW_KEY_MAX 190 /* a middleware key, leaving room for prefixes */
struct msg_middleware {
    const char *rate_key;
    uint32_t    rate_limit;
    uint64_t    rate_per_ms;
    const char *overlap_key;
    uint64_t    overlap_ttl_ms; /* 0: timeout + 5 s, or 10 min */
    const char *exc_key;
    uint32_t    exc_limit;
    uint64_t    exc_per_ms;
};

struct msg_job_opts {
    const char           *queue; /* NULL or "" means "default" */
    uint64_t              delay_ms;
    uint64_t              run_at_ms;
    uint32_t              tries;
    const uint32_t       *backoff_s;
    size_t                backoff_n;
    uint64_t              retry_until_ms;
    uint32_t              max_exceptions;
    uint64_t              timeout_ms;
    uint64_t              retry_after_ms;
    const char           *unique_id; /* NULL or "": not unique */
    uint64_t              unique_for_ms;
    int                   unique_until_processing;
    struct msg_middleware mw;
};

struct msg_new_job {
    cadre_job_id        id;
    const char         *task;
    msg_bytes           payload;
    struct msg_job_opts opts;
};

struct msg_dispatch {
    struct msg_new_job *jobs;
    size_t              jobs_n;
};

struct msg_dispatch_reply {
    cadre_job_id *ids;
    uint8_t      *duplicate; /* ids_n flags, may be NULL when none */
    size_t        ids_n;
};

struct msg_job {
    cadre_job_id id;
    const char  *task;
    msg_bytes    payload;
    const char  *queue;
    uint32_t     attempt;
    uint64_t     timeout_ms;
    uint64_t     lease;
    uint64_t     lease_ms; /* the lease lasts this long unless touched */
    const char  *schedule; /* NULL or "": not a scheduled job */
    int64_t      slot_s;
    struct msg_middleware mw;
};

/* A heartbeat for a running job: extend its lease (at most
 * MSG_TOUCH_MAX per Fetch). */
#define MSG_TOUCH_MAX 16
struct msg_touch {
    cadre_job_id id;
    uint64_t     lease;
};

enum msg_outcome_kind {
    MSG_OUTCOME_NONE = 0,
    MSG_OUTCOME_DONE = 1,
    MSG_OUTCOME_ERROR = 2,
    MSG_OUTCOME_RELEASE = 3,
    MSG_OUTCOME_FAIL = 4,
    MSG_OUTCOME_RETURN = 5,
};

struct msg_outcome {
    cadre_job_id id;
    int          kind; /* enum msg_outcome_kind */
    msg_bytes    result;
    const char  *error_type;
    const char  *error;
    uint64_t     release_delay_ms;
    uint64_t     lease;
};

struct msg_fetch {
    const char        **queues;
    size_t              queues_n;
    uint32_t            max;
    uint32_t            wait_ms;
    struct msg_outcome *outcomes;
    size_t              outcomes_n;
    uint64_t            worker_id;
    int                 stopping;
    struct msg_touch   *touch;
    size_t              touch_n;
    uint32_t            default_tries; /* worker's --tries; 0: the node's */
};

struct msg_jobs {
    struct msg_job *jobs;
    size_t          jobs_n;
};

struct msg_wait {
    cadre_job_id *ids;
    size_t        ids_n;
    uint32_t      timeout_ms;
};

struct msg_job_result {
    cadre_job_id id;
    int          status; /* enum cadre_outcome_status */
    uint32_t     attempts;
    msg_bytes    result;
    const char  *error_type;
    const char  *error;
    const char  *task; /* MSG_FINISHED; NULL elsewhere */
    const char  *queue;
};

struct msg_wait_reply {
    struct msg_job_result *results;
    size_t                 results_n;
};

struct msg_error {
    int         code; /* enum cadre_error */
    const char *message;
};

/* ---- operator requests (cadre.proto: FailedQuery ... AdminReply) ---- */

#define MSG_CURSOR_MAX 64 /* bytes of an after/next cursor */

struct msg_failed_query {
    const char   *queue; /* list: NULL or "" every queue */
    msg_bytes     after; /* list: an opaque cursor (len <= MSG_CURSOR_MAX) */
    uint32_t      limit;
    cadre_job_id *ids; /* show: these jobs */
    size_t        ids_n;
};

struct msg_failed_job {
    cadre_job_id id;
    const char  *queue;
    const char  *task;
    uint32_t     attempts;
    uint32_t     tries;
    const char  *error_type;
    const char  *error;
    uint64_t     failed_at_ms;
    uint64_t     created_at_ms;
    msg_bytes    payload;     /* show only */
    uint64_t     payload_len; /* also when payload is not sent */
};

struct msg_failed_jobs {
    struct msg_failed_job *jobs;
    size_t                 jobs_n;
    msg_bytes              next; /* len <= MSG_CURSOR_MAX */
    int                    more;
};

enum msg_admin_op {
    MSG_ADMIN_NONE = 0,
    MSG_ADMIN_FAILED_RETRY = 1,
    MSG_ADMIN_FAILED_FORGET = 2,
    MSG_ADMIN_FAILED_FLUSH = 3,
    MSG_ADMIN_FAILED_PRUNE = 4,
    MSG_ADMIN_QUEUE_CLEAR = 5,
    MSG_ADMIN_QUEUE_PAUSE = 6,
    MSG_ADMIN_QUEUE_RESUME = 7,
    MSG_ADMIN_QUEUE_PAUSED = 8,
    MSG_ADMIN_WORKERS_RESTART = 9,
    MSG_ADMIN_CLUSTER_MEMBERS = 10,
    MSG_ADMIN_CLUSTER_LEADER = 11, /* reply: admin_reply.leader */
    MSG_ADMIN_SCHEDULE_LIST = 12,  /* reply: admin_reply.schedules */
    MSG_ADMIN_SCHEDULE_RUN = 13,   /* queue = name; reply: admin_reply.id */
    MSG_ADMIN_SCHEDULE_PAUSE = 14, /* queue = name */
    MSG_ADMIN_SCHEDULE_RESUME = 15,
    MSG_ADMIN_OP_LAST = MSG_ADMIN_SCHEDULE_RESUME,
};

struct msg_admin {
    int           op; /* enum msg_admin_op, never NONE once decoded */
    cadre_job_id *ids;
    size_t        ids_n;
    const char   *queue;
    uint64_t      older_than_ms;
    msg_bytes     after; /* len <= MSG_CURSOR_MAX */
    int           all;
};

#define MSG_SCHEDULES_MAX 64

struct msg_admin_reply {
    uint64_t      count;
    msg_bytes     next; /* len <= MSG_CURSOR_MAX */
    int           more;
    cadre_job_id *missing;
    size_t        missing_n;
    const char  **queues;
    size_t        queues_n;
    /* MSG_ADMIN_CLUSTER_LEADER */
    struct msg_leader {
        int         raft; /* configured */
        const char *leader;
        uint64_t    leader_raft_id, raft_id, term;
        uint32_t    role; /* enum leader_role */
        int         ready, not_committing;
        uint64_t    oldest_wait_ms, commit_index, last_applied;
    } leader;
    /* MSG_ADMIN_SCHEDULE_LIST: at most MSG_SCHEDULES_MAX */
    struct msg_schedule {
        const char *name, *cron, *task, *queue, *tz, *where;
        int         on_one_server, paused;
        int64_t     next_s, last_s;
        uint64_t    fired;
    } * schedules;
    size_t       schedules_n;
    cadre_job_id id; /* MSG_ADMIN_SCHEDULE_RUN */
    int          has_id;
};

/* ---- run (cadre.proto: Run, RunReply; node/runs.c) ---- */

struct msg_run_task {
    const char *task;
    msg_bytes   payload;
    const char *queue; /* NULL or "" means "default" */
    uint64_t    timeout_ms;
};

struct msg_run {
    cadre_job_id         run_id;
    struct msg_run_task *tasks;
    size_t               tasks_n;
    uint64_t             deadline_ms; /* relative */
    int                  fail_fast;
};

struct msg_run_result {
    int         status; /* enum cadre_run_status */
    msg_bytes   result;
    const char *error_type;
    const char *error;
    uint32_t    attempts;
};

struct msg_run_reply {
    struct msg_run_result *results;
    size_t                 results_n;
};

/* ---- events (cadre.proto: Event; node/events.c) ---- */

enum msg_event_kind {
    MSG_EVENT_NONE = 0,
    MSG_EVENT_DISPATCHED = 1, /* stored */
    MSG_EVENT_STARTED = 2,    /* handed to a worker */
    MSG_EVENT_DONE = 3,
    MSG_EVENT_RELEASED = 4, /* back in its queue, to be retried later */
    MSG_EVENT_FAILED = 5,
    MSG_EVENT_LEADER = 6, /* the leader as this node sees it changed */
    MSG_EVENT_LAST = MSG_EVENT_LEADER,
};

struct msg_event {
    int          kind; /* enum msg_event_kind, never NONE once decoded */
    cadre_job_id id;
    const char  *task;
    const char  *queue;
    uint32_t     attempt;
    uint64_t     at_ms;
    const char  *error_type; /* NULL or "" when none */
    const char  *leader;     /* MSG_EVENT_LEADER: node id, "" none */
    uint64_t     term;       /* MSG_EVENT_LEADER */
};

/* ---- cluster (cadre.proto: Member, Heartbeat, Members, Steal, StealReply,
 * Settle; node/cluster.c) ---- */

enum msg_member_state {
    MSG_MEMBER_NONE = 0,
    MSG_MEMBER_ALIVE = 1,
    MSG_MEMBER_SUSPECT = 2,
    MSG_MEMBER_DEAD = 3,
    MSG_MEMBER_SELF = 4,
};

struct msg_member {
    const char     *node_id;
    const char     *peer_url;
    const char     *events_url;
    const char     *api_url;
    uint32_t        state; /* enum msg_member_state */
    uint64_t        last_heard_ms;
    uint32_t        workers;
    uint32_t        free_slots;
    uint64_t        ready;
    const char    **queue_names; /* queues_n each */
    const uint64_t *queue_ready;
    size_t          queues_n;
    const char     *version;
    const char     *leader;
    uint64_t        boot_id;
    const char    **serves; /* queues its idle workers wait on */
    size_t          serves_n;
};

struct msg_heartbeat {
    struct msg_member  self;
    struct msg_member *peers; /* id and addresses only */
    size_t             peers_n;
    uint64_t           seq;
};

struct msg_members {
    struct msg_member *members;
    size_t             members_n;
};

struct msg_steal {
    const char **queues;
    size_t       queues_n;
    uint32_t     max;
    const char  *thief;
};

struct msg_steal_reply {
    msg_bytes *records; /* record.proto JobRecords */
    size_t     records_n;
};

struct msg_settle {
    cadre_job_id *ids;
    size_t        ids_n;
    const char   *thief;
};

/* ---- cluster primitives (cadre.proto: Coord, CoordReply; node/coord.c) ----
 * The kinds and codes are node/fsm.h's numbers (node/coord.c checks that
 * they match); they are repeated here because proto/ sits below node/ and
 * clients never see the FSM. */

/* The unique key that pauses an on_one_server schedule NAME: the prefix,
 * then NAME. */
#define MSG_SCHEDULE_PAUSE_PREFIX "cadre.schedule.paused:"

enum msg_coord_kind {
    MSG_COORD_LOCK_ACQUIRE = 3,   /* key, owner, ttl_ms */
    MSG_COORD_LOCK_RELEASE = 4,   /* key, owner */
    MSG_COORD_THROTTLE = 5,       /* key, limit, per_ms */
    MSG_COORD_FUNNEL_ACQUIRE = 6, /* key, owner, limit, ttl_ms */
    MSG_COORD_FUNNEL_RELEASE = 7, /* key, owner */
    /* Unique keys: only the schedule pause keys
     * ("cadre.schedule.paused:NAME", node/scheduler.h) are accepted. */
    MSG_COORD_UNIQUE_TAKE = 8,    /* key, owner, ttl_ms (0: until released) */
    MSG_COORD_UNIQUE_RELEASE = 9, /* key, owner */
};

enum msg_coord_code {
    MSG_COORD_OK = 0,
    MSG_COORD_EXISTS = 2,     /* unique take: another owner holds it */
    MSG_COORD_HELD = 3,       /* lock acquire: another owner holds it */
    MSG_COORD_LIMITED = 4,    /* throttle, funnel acquire */
    MSG_COORD_NOT_HOLDER = 5, /* releases */
    MSG_COORD_INVALID = 6,
    MSG_COORD_FULL = 7,
    MSG_COORD_CODE_LAST = MSG_COORD_FULL,
};

struct msg_coord {
    int         kind; /* enum msg_coord_kind, in range once decoded */
    const char *key;  /* NULL reads as "" */
    const char *owner;
    uint64_t    ttl_ms;
    uint32_t    limit;
    uint64_t    per_ms;
};

struct msg_coord_reply {
    int         code; /* enum msg_coord_code (any fsm_code up to LAST) */
    uint64_t    token;
    uint64_t    retry_after_ms;
    uint32_t    count;
    const char *holder; /* NULL reads as "" */
};

enum msg_kind {
    MSG_NONE = 0,
    MSG_DISPATCH,
    MSG_DISPATCH_REPLY,
    MSG_FETCH,
    MSG_JOBS,
    MSG_WAIT,
    MSG_WAIT_REPLY,
    MSG_STATUS_REQUEST,
    MSG_STATUS,
    MSG_ERROR,
    MSG_FAILED_QUERY,
    MSG_FAILED_JOBS,
    MSG_ADMIN,
    MSG_ADMIN_REPLY,
    MSG_RUN,
    MSG_RUN_REPLY,
    MSG_EVENT,
    MSG_HEARTBEAT,
    MSG_HELLO, /* a Heartbeat sent as a request */
    MSG_MEMBERS,
    MSG_STEAL,
    MSG_STEAL_REPLY,
    MSG_SETTLE,
    MSG_FINISHED, /* outcomes of stolen jobs, home: u.wait_reply */
    MSG_COORD,
    MSG_COORD_REPLY,
};

/* One Envelope. For MSG_STATUS, status.queues (and status itself) follow the
 * public cadre_status layout. */
struct msg {
    uint64_t      request_id;
    enum msg_kind kind;
    union {
        struct msg_dispatch       dispatch;
        struct msg_dispatch_reply dispatch_reply;
        struct msg_fetch          fetch;
        struct msg_jobs           jobs;
        struct msg_wait           wait;
        struct msg_wait_reply     wait_reply; /* also MSG_FINISHED */
        cadre_status              status;
        struct msg_error          error;
        struct msg_failed_query   failed_query;
        struct msg_failed_jobs    failed_jobs;
        struct msg_admin          admin;
        struct msg_admin_reply    admin_reply;
        struct msg_run            run;
        struct msg_run_reply      run_reply;
        struct msg_event          event;
        struct msg_heartbeat      heartbeat; /* MSG_HEARTBEAT, MSG_HELLO */
        struct msg_members        members;
        struct msg_steal          steal;
        struct msg_steal_reply    steal_reply;
        struct msg_settle         settle;
        struct msg_coord          coord;
        struct msg_coord_reply    coord_reply;
    } u;
    void *owner_; /* decoder's allocation; private */
};

/* Packs m as a protobuf Envelope into buf (cap bytes); *len receives the size.
 * Returns CADRE_ETOOBIG if cap is too small, CADRE_EINVAL for an invalid
 * message (e.g. a kind out of range). */
int msg_pack(const struct msg *m, uint8_t *buf, size_t cap, size_t *len);
/* The packed size of m, or 0 if m is invalid. Allocates nothing. */
size_t msg_packed_size(const struct msg *m);
/* Unpacks an Envelope. Returns CADRE_EPROTO for bytes that are not a valid
 * Envelope (including ids that are not 16 bytes), CADRE_ENOMEM. On success the
 * caller owns *m's contents and releases them with msg_free. */
int msg_unpack(const uint8_t *buf, size_t len, struct msg *m);
/* Releases what msg_unpack allocated; accepts a zeroed or NULL msg. */
void msg_free(struct msg *m);

const char *msg_kind_name(enum msg_kind kind);

#endif
