/* cadre.h: the public C API of libcadre: errors, the client (dispatch, wait,
 * status) and the embeddable worker. Plugin handlers use cadre/task.h.
 *
 * Threads: a cadre_client may be used from many threads at once; each call
 * uses its own nng context. A cadre_worker belongs to the thread that runs it.
 */
#ifndef CADRE_CADRE_H
#define CADRE_CADRE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CADRE_VERSION_MAJOR 0
#define CADRE_VERSION_MINOR 1
#define CADRE_VERSION_PATCH 0
#define CADRE_VERSION "0.1.0"

#ifndef CADRE_API
#define CADRE_API __attribute__((visibility("default")))
#endif

/* Error codes: one table, defined once (X-macro). CADRE_OK is 0, errors are
 * positive. */
#define CADRE_ERRORS(X)                                                        \
    X(OK, "success")                                                           \
    X(NOMEM, "out of memory")                                                  \
    X(INVAL, "invalid argument")                                               \
    X(IO, "input/output error")                                                \
    X(NOTFOUND, "not found")                                                   \
    X(EXISTS, "already exists")                                                \
    X(BUSY, "resource busy")                                                   \
    X(FULL, "storage full")                                                    \
    X(CORRUPT, "corrupt data")                                                 \
    X(PROTO, "protocol error")                                                 \
    X(AUTH, "authentication failed")                                           \
    X(TOOBIG, "message too large")                                             \
    X(TIMEDOUT, "timed out")                                                   \
    X(CLOSED, "closed")                                                        \
    X(CONNREFUSED, "connection refused")                                       \
    X(STOPPING, "node is stopping")                                            \
    X(NOHANDLER, "no handler for task")                                        \
    X(HANDLER, "handler error")                                                \
    X(USAGE, "usage error")                                                    \
    X(CONFIG, "configuration error")                                           \
    X(VERSION, "version mismatch")                                             \
    X(INTERNAL, "internal error")                                              \
    X(LIMITED, "over the limit")                                               \
    X(HELD, "held by another owner")

#define CADRE_ERR_ENUM_(name, text) CADRE_E##name,
enum cadre_error { CADRE_ERRORS(CADRE_ERR_ENUM_) CADRE_E_COUNT };
#undef CADRE_ERR_ENUM_
#define CADRE_OK CADRE_EOK

/* Returns a static description of code; never NULL. */
CADRE_API const char *cadre_strerror(int code);

/* ---- client ---------------------------------------------------------- */

typedef struct cadre_client cadre_client;

/* Options of cadre_client_open; zero means defaults. */
typedef struct cadre_client_opts {
    const char *url;        /* NULL: $CADRE_URL, else tcp://127.0.0.1:7700 */
    const char *key_file;   /* NULL: $CADRE_KEY_FILE, else <data>/cluster.key */
    const char *data_dir;   /* NULL: $CADRE_DATA, else ~/.local/share/cadre */
    uint32_t    timeout_ms; /* per request; 0: 10,000 */
    /* Seals the payloads of encrypted jobs and opens their results. NULL:
     * $CADRE_APP_KEY_FILE, else none (an encrypted dispatch is refused). */
    const char *app_key_file;
    /* Mutual TLS, an optional outer layer (frames stay sealed inside); used
     * only when the url is tls+tcp://. tls_cert_file: a PEM file with this
     * client's certificate and private key (NULL: $CADRE_TLS_CERT, else
     * none: a node that requires one refuses the connection). tls_ca_file:
     * the PEM CA bundle the node's certificate must chain to, for the url's
     * host (NULL: $CADRE_TLS_CA, else the node is not verified). */
    const char *tls_cert_file;
    const char *tls_ca_file;
} cadre_client_opts;

/* Opens a client and dials the node (the dial completes in the background).
 * Returns CADRE_ENOTFOUND if no key file is found, CADRE_EINVAL for a bad URL,
 * key or TLS file. On error, if errbuf is not NULL, a message with its context
 * goes there. The caller owns *out and frees it with cadre_client_close. */
CADRE_API int cadre_client_open(const cadre_client_opts *opts,
                                cadre_client **out, char *errbuf,
                                size_t errbuf_len);

/* Closes the client; NULL is accepted. */
CADRE_API void cadre_client_close(cadre_client *c);

/* The message of the last failed call made on this thread with this client,
 * with its context chain ("dispatch: node: payload too large"). Valid until
 * the next call on the same thread. */
CADRE_API const char *cadre_client_errmsg(cadre_client *c);

/* A job id: 16 bytes, time-ordered (UUIDv7 layout). */
typedef struct cadre_job_id {
    uint8_t b[16];
} cadre_job_id;

/* Options of one job; zero means defaults. */
typedef struct cadre_job_opts {
    const char     *queue;     /* NULL: "default" */
    uint64_t        delay_ms;  /* not visible to workers before */
    uint64_t        run_at_ms; /* Unix ms; overrides delay_ms */
    uint32_t        tries;     /* 0: 1 attempt (node default) */
    const uint32_t *backoff_s; /* seconds; the last value repeats */
    size_t          backoff_n;
    uint64_t        retry_until_ms; /* Unix ms; 0: none */
    uint32_t        max_exceptions;
    uint64_t        timeout_ms;     /* 0: the worker's default */
    uint64_t        retry_after_ms; /* 0: the node's default */
    /* NULL: a new id. Else the id of an earlier dispatch whose reply was
     * lost (CADRE_ETIMEDOUT): dispatching it again stores nothing twice. */
    const cadre_job_id *id;
    /* Seal the payload with the application key before it leaves this
     * process: nodes store and move ciphertext only; the result comes back
     * sealed and cadre_wait opens it. */
    int encrypted;
    /* Unique jobs (Laravel's ShouldBeUnique): while a job of the same task
     * with this unique_id is pending (until it finishes, or only until it
     * starts with unique_until_processing; at most unique_for_ms if not 0),
     * another is not queued: the dispatch succeeds, *id receives the pending
     * job's id and *duplicate (if set) 1. Not an error; nothing is lost. */
    const char *unique_id; /* at most 200 bytes */
    uint64_t    unique_for_ms;
    int         unique_until_processing;
    int        *duplicate; /* out: 1 if nothing new was queued, else 0 */
    /* Job middleware (Laravel's): the worker runs it around the handler,
     * through the leader's locks and throttles (the nodes need --voters;
     * while no leader answers, attempts are released and tried again 1 s
     * later). Keys are at most 190 bytes; NULL or "" turns a part off.
     * A released attempt counts against tries, as in Laravel.
     * RateLimited: at most rate_limit attempts of jobs naming this key
     * start per window of rate_per_ms; the others are released until the
     * next window. */
    const char *rate_limited;
    uint32_t    rate_limit;
    uint64_t    rate_per_ms;
    /* WithoutOverlapping: attempts of jobs naming this key never run at
     * once: each holds a lock owned by its job id for overlap_ttl_ms (0:
     * timeout_ms + 5 s, or 10 minutes without a timeout; a worker that
     * dies loses it then), released after the attempt; while another holds
     * it the attempt is released for up to 1 s. */
    const char *without_overlapping;
    uint64_t    overlap_ttl_ms;
    /* ThrottlesExceptions: once more than exc_limit attempts of jobs naming
     * this key failed with an error within a window of exc_per_ms, that
     * attempt and every later one are released until the window ends. */
    const char *throttles_exceptions;
    uint32_t    exc_limit;
    uint64_t    exc_per_ms;
} cadre_job_opts;

/* Formats id as a 36-character uuid plus NUL into buf (>= 37 bytes). */
CADRE_API void cadre_job_id_format(const cadre_job_id *id, char *buf);
/* Parses a uuid string. Returns CADRE_EINVAL if it is not one. */
CADRE_API int cadre_job_id_parse(const char *s, cadre_job_id *id);

/* Dispatches one job: stored durably by the node before this returns.
 * payload is copied. Returns CADRE_ETOOBIG if the payload is over the limit,
 * CADRE_ETIMEDOUT if the node did not answer in time (the job may or may not
 * exist: dispatch again with opts->id = the id of that attempt), CADRE_EINVAL
 * for a job the node refuses (cadre_client_errmsg says why), CADRE_ESTOPPING
 * if the node is shutting down. *id receives the job's id. */
CADRE_API int cadre_dispatch(cadre_client *c, const char *task,
                             const void *payload, size_t payload_len,
                             const cadre_job_opts *opts, cadre_job_id *id);

/* One job of a bulk dispatch. */
typedef struct cadre_job_spec {
    const char           *task;
    const void           *payload;
    size_t                payload_len;
    const cadre_job_opts *opts; /* NULL: defaults */
} cadre_job_spec;

/* Dispatches n jobs in one request, stored in one transaction (Laravel's
 * Queue::bulk). ids[i] receives the id of jobs[i]. Same errors as
 * cadre_dispatch; on error none of the jobs was acknowledged. */
CADRE_API int cadre_dispatch_bulk(cadre_client *c, const cadre_job_spec *jobs,
                                  size_t n, cadre_job_id *ids);

/* Called once per job queued with cadre_dispatch_async, on the client's
 * sender thread, when the node has stored it (rc = CADRE_OK) or refused it
 * (rc and cadre_client_errmsg on that thread say why). id is valid during the
 * call. Keep it short: the next batch waits for it. */
typedef void (*cadre_dispatch_cb)(void *arg, int rc, const cadre_job_id *id);

/* Queues a job and returns at once. A background thread sends queued jobs in
 * bulk requests (one durable commit per batch), so a producer that does not
 * wait for each acknowledgement gets many times the rate of cadre_dispatch.
 * task, payload and opts are copied. A lost reply is retried with the same
 * ids (stored once). Blocks while 65,536 jobs are queued (back-pressure).
 * Returns CADRE_EINVAL (no task), CADRE_ENOMEM, CADRE_ECLOSED; cb is called
 * only when CADRE_OK is returned. */
CADRE_API int cadre_dispatch_async(cadre_client *c, const char *task,
                                   const void *payload, size_t payload_len,
                                   const cadre_job_opts *opts,
                                   cadre_dispatch_cb cb, void *arg);

/* Waits until every job queued with cadre_dispatch_async has been
 * acknowledged or refused. Returns CADRE_ETIMEDOUT after timeout_ms.
 * cadre_client_close flushes too (up to the client timeout); jobs still
 * queued then get CADRE_ECLOSED in their callback. */
CADRE_API int cadre_flush(cadre_client *c, uint64_t timeout_ms);

enum cadre_outcome_status {
    CADRE_PENDING = 0, /* not finished when the wait ended */
    CADRE_DONE = 1,
    CADRE_FAILED = 2,
    CADRE_UNKNOWN = 3, /* no such job, or its outcome has expired */
};

/* The outcome of a job. Owned by the caller; free with cadre_outcome_fini. */
typedef struct cadre_outcome {
    int      status; /* enum cadre_outcome_status */
    uint32_t attempts;
    uint8_t *result; /* CADRE_DONE: the handler's result bytes */
    size_t   result_len;
    char    *error_type; /* CADRE_FAILED: e.g. "NoHandler", "HandlerError" */
    char    *error;      /* CADRE_FAILED: the message */
} cadre_outcome;

CADRE_API void cadre_outcome_fini(cadre_outcome *o);

/* Waits until each of the n jobs is done or failed, or timeout_ms passes.
 * out[i] receives the outcome of ids[i] (CADRE_PENDING if still running).
 * Returns CADRE_OK when every outcome is final, CADRE_ETIMEDOUT otherwise
 * (out is filled in both cases); other errors leave out zeroed. */
CADRE_API int cadre_wait(cadre_client *c, const cadre_job_id *ids, size_t n,
                         uint64_t timeout_ms, cadre_outcome *out);

/* Counters of one queue on one node. */
typedef struct cadre_queue_stats {
    char     name[128];
    uint64_t ready, delayed, reserved; /* jobs in each state now */
    uint64_t done;                     /* total since the store was made */
    uint64_t failed;                   /* jobs in the failed store now */
    uint64_t oldest_ready_age_ms;      /* wait time of the oldest ready job */
} cadre_queue_stats;

/* A node's status. Owned by the caller; free with cadre_status_fini. */
typedef struct cadre_status {
    char               node_id[64];
    char               version[16];
    uint64_t           uptime_ms;
    uint32_t           workers;      /* connected worker processes */
    uint32_t           workers_busy; /* of those, running a job now */
    uint64_t           bad_frames;   /* dropped: unopenable, oversized... */
    uint64_t           commits;      /* store transactions committed */
    size_t             queues_n;
    cadre_queue_stats *queues;
    uint64_t           replayed; /* frames dropped as replays (or too old) */
    /* cluster */
    uint32_t members; /* members known, not counting this node */
    uint32_t members_alive;
    uint64_t heartbeat_bytes_out; /* sealed heartbeat frames published */
    uint64_t heartbeat_bytes_in;  /* ... and received */
    uint64_t jobs_stolen;         /* ready jobs adopted from peers */
    uint64_t jobs_lent;           /* ready jobs lent to peers */
    uint64_t jobs_settled;        /* lent, committed by the thief, deleted */
    uint64_t subruns;             /* run tasks sent to peers: sub-runs */
    uint64_t subrun_tasks;        /* ... and the tasks in them */
    /* leader (cadre_cluster_leader has more) */
    char     leader[64]; /* the leader's node id as known; "" none */
    uint64_t raft_term;
    int      raft_role;      /* enum cadre_raft_role */
    int      leader_ready;   /* this node leads, its barrier committed */
    int      not_committing; /* its commits stall (LEADER-NOT-COMMITTING) */
} cadre_status;

/* Fetches the node's status. Returns CADRE_ETIMEDOUT if it did not answer. */
CADRE_API int  cadre_status_get(cadre_client *c, cadre_status *out);
CADRE_API void cadre_status_fini(cadre_status *s);

CADRE_API void cadre_free(void *p);

/* ---- cluster: members -------------------------------------------------- */

/* How a node sees a member of its cluster (its heartbeats). */
enum cadre_member_state {
    CADRE_MEMBER_ALIVE = 1,   /* heard from recently */
    CADRE_MEMBER_SUSPECT = 2, /* silent for the node's suspect_ms */
    CADRE_MEMBER_DEAD = 3,    /* silent for its dead_ms */
    CADRE_MEMBER_SELF = 4,    /* the node that answered */
};

/* The ready jobs of one queue of a member. */
typedef struct cadre_queue_depth {
    char     name[128];
    uint64_t ready;
} cadre_queue_depth;

/* One member as the node that answered sees it: what it last heard from it
 * (for itself, what it is now). Strings are NUL-terminated (truncated if
 * longer; "" when unknown). */
typedef struct cadre_member {
    char               node_id[64];
    char               peer_url[256];   /* its peer socket */
    char               api_url[256];    /* for clients and workers */
    char               events_url[256]; /* its job events */
    int                state;           /* enum cadre_member_state */
    uint64_t           last_heard_ms;   /* ms since its last heartbeat */
    uint32_t           workers;         /* connected worker processes */
    uint32_t           free_slots;      /* idle worker fetches parked there */
    uint64_t           ready;           /* ready jobs in every queue */
    char               version[32];     /* its cadre version */
    char               leader[64];      /* the node it believes leads; "" */
    uint64_t           boot_id;         /* random, new at each node start */
    size_t             queues_n;        /* queues with ready jobs */
    cadre_queue_depth *queues; /* owned by the array: see cadre_members_free */
} cadre_member;

/* The members the node knows, itself first (CADRE_MEMBER_SELF), as its
 * membership sees them now. *out is one allocation (the array and every
 * member's queues), NULL when *out_n is 0; the caller frees it with
 * cadre_members_free. Returns CADRE_EINVAL for a NULL argument, CADRE_ENOMEM,
 * CADRE_EPROTO for a node that does not know the request, or any request's
 * error (CADRE_ETIMEDOUT...); cadre_client_errmsg says why. Any thread. */
CADRE_API int cadre_cluster_members(cadre_client *c, cadre_member **out,
                                    size_t *out_n);
/* Frees the n members from cadre_cluster_members; NULL is accepted. */
CADRE_API void cadre_members_free(cadre_member *m, size_t n);
/* "alive", "suspect", "dead", "self"; "unknown". */
CADRE_API const char *cadre_member_state_name(int state);

/* ---- cluster: leader --------------------------------------------------- */

/* The answering node's raft role. */
enum cadre_raft_role {
    CADRE_RAFT_OFF = 0, /* the node runs without --voters */
    CADRE_RAFT_FOLLOWER = 1,
    CADRE_RAFT_CANDIDATE = 2,
    CADRE_RAFT_LEADER = 3,
    CADRE_RAFT_UNAVAILABLE = 4, /* a disk error: the node is stopping */
};

/* The leadership as the node that answered sees it. */
typedef struct cadre_leader_info {
    char     leader[64];     /* the leader's node id; "" none known */
    uint64_t leader_raft_id; /* 0: none known */
    uint64_t raft_id;        /* the answering node's */
    uint64_t term;
    int      role;           /* enum cadre_raft_role, the answering node's */
    int      ready;          /* it leads and its barrier committed */
    int      not_committing; /* a barrier or proposal of it waits too long */
    uint64_t oldest_wait_ms; /* its oldest barrier or proposal in flight */
    uint64_t commit_index, last_applied;
} cadre_leader_info;

/* Fills *out with the node's view of the leader. Returns CADRE_EINVAL for a
 * NULL argument, CADRE_EPROTO for a node that does not know the request, or
 * any request's error; cadre_client_errmsg says why. Any thread. */
CADRE_API int cadre_cluster_leader(cadre_client *c, cadre_leader_info *out);
/* "off", "follower", "candidate", "leader", "unavailable"; "unknown". */
CADRE_API const char *cadre_raft_role_name(int role);

/* ---- schedules ([schedule "NAME"] in the node's config file) ----------- */

/* One schedule as the answering node sees it. */
typedef struct cadre_schedule_info {
    char    name[64];
    char    cron[128]; /* as written; `every = 10s` reads "@every 10s" */
    char    task[256];
    char    queue[128];
    char    timezone[64];
    int     on_one_server;
    int     paused;
    int64_t next_s;     /* the next slot, Unix s; 0: never again */
    int64_t last_s;     /* the latest slot fired (on_one_server: done in the
                         * leader's log); 0: none yet */
    uint64_t fired;     /* jobs the answering node stored for it */
    char     where[32]; /* "every node", "leader", "leader (this node)" */
} cadre_schedule_info;

/* Lists the node's schedules into *out (cadre_free it), *n of them.
 * Returns CADRE_EINVAL for a NULL argument, CADRE_ENOMEM, or any request's
 * error. Any thread. */
CADRE_API int cadre_schedule_list(cadre_client *c, cadre_schedule_info **out,
                                  size_t *n);
/* Stores a job of schedule name now, on the node asked, whatever its
 * policies (a manual run; exec handlers see CADRE_SCHEDULE and CADRE_SLOT =
 * now). *id (may be NULL) receives the job's id. Returns CADRE_ENOTFOUND
 * for an unknown schedule, or any request's error. */
CADRE_API int cadre_schedule_run(cadre_client *c, const char *name,
                                 cadre_job_id *id);
/* Pauses (paused = 1) or resumes a schedule: slots that pass while it is
 * paused are skipped. A local schedule is paused on the node asked only;
 * an on_one_server one in the leader's log, for the whole cluster
 * (CADRE_EBUSY while no leader is ready). Pausing twice or resuming a
 * running schedule is not an error. Returns CADRE_ENOTFOUND, or any
 * request's error. */
CADRE_API int cadre_schedule_pause(cadre_client *c, const char *name,
                                   int paused);

/* ---- cluster primitives: locks, throttles, funnels ------------------- */

/* Served by the raft leader's replicated state (nodes run with --voters):
 * any node takes the request and forwards it to the leader, so they hold
 * across the cluster and survive the loss of a minority of voters. Time is
 * the leader's clock. While no leader is ready (an election, a minority)
 * calls fail with CADRE_EBUSY and a "no leader: ..." message; a node
 * without --voters answers CADRE_ECONFIG. Keys are 1 to CADRE_COORD_KEY_MAX
 * bytes, owners 1 to CADRE_OWNER_MAX bytes of text; the key spaces of
 * locks, throttles and funnels are separate. Every call: any thread. */
#define CADRE_COORD_KEY_MAX 200
#define CADRE_OWNER_MAX 64
#define CADRE_OWNER_LEN (CADRE_OWNER_MAX + 1) /* an owner buffer, NUL incl. */

/* Acquires the lock key for owner until ttl_ms from now (Laravel's
 * Cache::lock(key, ttl)->block(block_ms)). owner NULL: a new random owner
 * (a uuid) is used. The owner holding the lock acquiring it again extends
 * it to ttl_ms from now and keeps its token. On success *token (may be
 * NULL) receives the lock's fencing token: tokens only increase, across
 * every lock of the cluster and across leaders, so a resource can refuse a
 * write carrying a token lower than one it has seen; and owner_out (NULL,
 * or CADRE_OWNER_LEN bytes) receives the owner, which cadre_lock_release
 * needs. A holder that dies loses the lock when its ttl runs out.
 * block_ms 0: one try; else tries again (at most every 50 ms, sooner when
 * the lock expires sooner) until acquired or block_ms passed, also across
 * a leader failover. Returns CADRE_EHELD while another owner holds it
 * (cadre_client_errmsg names the holder and when it expires), CADRE_EBUSY
 * while no leader is ready, CADRE_EINVAL for a bad key, owner or ttl_ms 0,
 * CADRE_EFULL when the leader's state is full, CADRE_ECONFIG, or a request's
 * error. */
CADRE_API int cadre_lock_acquire(cadre_client *c, const char *key,
                                 const char *owner, uint64_t ttl_ms,
                                 uint64_t block_ms, uint64_t *token,
                                 char *owner_out);
/* Releases the lock key held by owner. Returns CADRE_ENOTFOUND if owner
 * does not hold it (never did, another owner took it, or it expired: the
 * work done under it may have overlapped another holder's), CADRE_EBUSY
 * (no leader), CADRE_EINVAL, or a request's error. */
CADRE_API int cadre_lock_release(cadre_client *c, const char *key,
                                 const char *owner);

/* Counts one use of key against limit uses per window of per_ms (windows
 * aligned to multiples of per_ms on the leader's clock; Laravel's
 * Redis::throttle(key)->allow(limit)->every(per_ms)). Returns CADRE_OK (use
 * allowed; *retry_after_ms = 0) or CADRE_ELIMITED with *retry_after_ms
 * (may be NULL) = the time to the next window. Like Redis::throttle a
 * burst can straddle a window edge (2 x limit within per_ms); over any
 * span at most limit uses per window touched pass. A retried call whose
 * reply was lost may count twice. Returns CADRE_EINVAL for limit or per_ms
 * 0, CADRE_EBUSY (no leader), or a request's error. */
CADRE_API int cadre_throttle(cadre_client *c, const char *key, uint32_t limit,
                             uint64_t per_ms, uint64_t *retry_after_ms);

/* Takes one of limit slots of the funnel key for owner until ttl_ms from
 * now (Laravel's Redis::funnel(key)->limit(limit)): at most limit owners
 * hold a slot at once; the same owner again extends its slot. owner NULL
 * and owner_out as cadre_lock_acquire; block_ms as there. Returns
 * CADRE_ELIMITED while limit owners hold slots, CADRE_EINVAL (limit 0 or
 * over 1024, ttl_ms 0, bad key or owner), CADRE_EBUSY (no leader), or a
 * request's error. */
CADRE_API int cadre_funnel_acquire(cadre_client *c, const char *key,
                                   const char *owner, uint32_t limit,
                                   uint64_t ttl_ms, uint64_t block_ms,
                                   char *owner_out);
/* Gives back owner's slot of the funnel key. Returns CADRE_ENOTFOUND if
 * owner holds none (or it expired), else as cadre_lock_release. */
CADRE_API int cadre_funnel_release(cadre_client *c, const char *key,
                                   const char *owner);

/* ---- run and defer: fan-outs ------------------------------------------ */

/* One task of a run or defer. */
typedef struct cadre_task_spec {
    const char *task;
    const void *payload;
    size_t      payload_len;
    const char *queue;      /* NULL: "default" */
    uint64_t    timeout_ms; /* handler limit; 0: up to the run's deadline */
} cadre_task_spec;

/* Options of a run; zero means defaults. */
typedef struct cadre_run_opts {
    uint64_t deadline_ms; /* from now; 0: 30,000 */
    int      fail_fast;   /* the first error cancels the rest */
    /* NULL: a new run. Else a run id the caller chose (or got from
     * cadre_run_id_new): submitting the same id again attaches to the run
     * already on the node instead of starting it twice. */
    const cadre_job_id *run_id;
} cadre_run_opts;

enum cadre_run_status {
    CADRE_RUN_OK = 0,        /* result holds the handler's result */
    CADRE_RUN_ERROR = 1,     /* error_type / error hold the handler's error */
    CADRE_RUN_TIMED_OUT = 2, /* not finished by the deadline */
    CADRE_RUN_CANCELLED = 3, /* fail_fast: a sibling failed first */
};

/* The outcome of one task of a run. The pointers inside are the caller's:
 * free them with cadre_run_results_free (the array itself is caller storage;
 * freeing zeroes the entries, so freeing twice is safe). */
typedef struct cadre_run_result {
    int      status; /* enum cadre_run_status */
    uint8_t *result; /* OK: result_len bytes plus a NUL; NULL if empty */
    size_t   result_len;
    char    *error_type; /* ERROR only, else NULL ("TimedOut": the task's */
    char    *error;      /* own timeout_ms, "NoHandler": no worker has it) */
    uint32_t attempts;   /* hand-outs to workers (2+: a worker died) */
} cadre_run_result;

/* Runs n tasks concurrently on the cluster's free workers and returns when
 * each has an outcome or the deadline passed. results (caller storage, n
 * entries) receive the outcomes in the order of tasks, whatever order they
 * finished in. Returns CADRE_OK when every task succeeded, CADRE_EHANDLER
 * when some did not (see results), CADRE_ETIMEDOUT / CADRE_ECLOSED when the
 * node did not answer by the deadline (plus 1 s) or its connection broke
 * (results are then TIMED_OUT), or an error refusing the run (results
 * untouched): CADRE_EINVAL (no tasks, more than 100,000, a bad name),
 * CADRE_ETOOBIG (a payload over the node's limit, or a reply over the frame
 * limit), CADRE_EEXISTS (opts->run_id names a run with another number of
 * tasks), CADRE_EBUSY (the node holds too many run tasks), CADRE_ESTOPPING.
 * A handler error is final (no retries within a run); a task whose worker
 * died runs again within the deadline (at least once). At the deadline
 * tasks not started are never started and running ones are killed by their
 * worker. Run tasks live in the node's memory, not in its store: a node that
 * dies takes its runs with it (the caller gets CADRE_ECLOSED/ETIMEDOUT).
 * Thread-safe: many threads may run at once on one client. */
CADRE_API int cadre_run(cadre_client *c, const cadre_task_spec *tasks, size_t n,
                        const cadre_run_opts *opts, cadre_run_result *results);
CADRE_API void cadre_run_results_free(cadre_run_result *results, size_t n);
/* Makes a fresh run id (for retries that must attach, not restart). */
CADRE_API void cadre_run_id_new(cadre_job_id *id);

/* Submits n tasks as ordinary durable jobs and returns once they are stored
 * (Laravel's Concurrency::defer). ids (may be NULL) receive their job ids. */
CADRE_API int cadre_defer(cadre_client *c, const cadre_task_spec *tasks,
                          size_t n, cadre_job_id *ids);

/* ---- worker ---------------------------------------------------------- */

typedef struct cadre_worker cadre_worker;
struct cadre_task;

/* Options of cadre_worker_open; zero means defaults. */
typedef struct cadre_worker_opts {
    const char  *url;      /* as cadre_client_opts */
    const char  *key_file; /* as cadre_client_opts */
    const char  *data_dir; /* as cadre_client_opts */
    const char **queues;   /* served in this order; NULL: {"default"} */
    size_t       queues_n;
    uint32_t     prefetch;        /* jobs held at once; 0: 8 */
    uint32_t     max_jobs;        /* exit after this many; 0: no limit */
    uint64_t     timeout_ms;      /* default handler timeout; 0: none */
    uint32_t     sleep_ms;        /* long-poll of a fetch; 0: 1,000 */
    uint64_t     max_time_ms;     /* exit after this long; 0: no limit */
    uint32_t     memory_mb;       /* exit once RSS is over; 0: no limit */
    int          stop_when_empty; /* exit when a fetch finds no job */
    uint32_t     tries; /* attempts of jobs that set none; 0: the node's */
    /* Opens encrypted jobs. NULL: $CADRE_APP_KEY_FILE, else none (encrypted
     * jobs then fail with "cannot open encrypted payload: no application
     * key"). */
    const char *app_key_file;
    const char *tls_cert_file; /* as cadre_client_opts */
    const char *tls_ca_file;   /* as cadre_client_opts */
} cadre_worker_opts;

/* A handler: returns CADRE_OK on success (after cadre_task_result, if it has
 * a result), or the value of cadre_task_error / cadre_task_fail /
 * cadre_task_release. See cadre/task.h. */
typedef int (*cadre_handler_fn)(struct cadre_task *t, void *arg);

CADRE_API int cadre_worker_open(const cadre_worker_opts *opts,
                                cadre_worker **out, char *errbuf,
                                size_t errbuf_len);
/* Registers fn for task name. Returns CADRE_EEXISTS if name is taken. */
CADRE_API int cadre_worker_handle(cadre_worker *w, const char *name,
                                  cadre_handler_fn fn, void *arg);
/* Loads a plugin (.so exporting cadre_plugin_init) and registers its tasks.
 * Returns CADRE_EVERSION if its ABI version differs. */
CADRE_API int cadre_worker_load_plugin(cadre_worker *w, const char *path,
                                       char *errbuf, size_t errbuf_len);
/* Registers an exec handler: cmd runs once per job through /bin/sh -c. */
CADRE_API int cadre_worker_exec(cadre_worker *w, const char *name,
                                const char *cmd);
/* Fetches and runs jobs until cadre_worker_stop or a limit (max_jobs,
 * max_time_ms, memory_mb, stop_when_empty), each checked between jobs: the
 * current job always finishes and the jobs held but not started go back.
 * Returns CADRE_OK after a clean stop. */
CADRE_API int cadre_worker_run(cadre_worker *w);
/* Asks run to return after the current job (async-signal-safe). */
CADRE_API void cadre_worker_stop(cadre_worker *w);
CADRE_API void cadre_worker_close(cadre_worker *w);

/* ---- operator: failed jobs and queues --------------------------------- */
/* What `cadre failed ...` and `cadre queue ...` are built on. The node
 * accepts these only from a client key (a worker key gets CADRE_EAUTH).
 * Work on many jobs is done in bounded steps of at most 10,000 jobs per
 * request; the functions below repeat the request until it is all done, so
 * one call may take several round trips (each within the client timeout).
 * Errors: as any request (CADRE_ETIMEDOUT, CADRE_ECONNREFUSED...), plus what
 * each function lists; cadre_client_errmsg says why. */

/* A failed job: what it was (id, queue, task, payload), how it ended
 * (attempts, error type and message, failed_at_ms). Opaque: read it with the
 * accessors, whose pointers are valid until the job, or the page holding
 * it, is freed. Strings are never NULL ("" when empty). */
typedef struct cadre_failed_job cadre_failed_job;

CADRE_API const cadre_job_id *cadre_failed_job_id(const cadre_failed_job *j);
CADRE_API const char         *cadre_failed_job_queue(const cadre_failed_job *j);
CADRE_API const char         *cadre_failed_job_task(const cadre_failed_job *j);
/* Attempts started, and the tries it was allowed (0: until retry_until). */
CADRE_API uint32_t    cadre_failed_job_attempts(const cadre_failed_job *j);
CADRE_API uint32_t    cadre_failed_job_tries(const cadre_failed_job *j);
CADRE_API const char *cadre_failed_job_error_type(const cadre_failed_job *j);
CADRE_API const char *cadre_failed_job_error(const cadre_failed_job *j);
/* Unix ms: when it failed, and when it was dispatched. */
CADRE_API uint64_t cadre_failed_job_failed_at_ms(const cadre_failed_job *j);
CADRE_API uint64_t cadre_failed_job_created_at_ms(const cadre_failed_job *j);
/* The payload's size in bytes (also for jobs of a listing). */
CADRE_API uint64_t cadre_failed_job_payload_size(const cadre_failed_job *j);
/* The payload (*len its length): jobs from cadre_failed_get have it; jobs
 * of a listing do not (NULL, *len 0). */
CADRE_API const void *cadre_failed_job_payload(const cadre_failed_job *j,
                                               size_t                 *len);
/* Frees a job from cadre_failed_get; NULL is accepted. */
CADRE_API void cadre_failed_job_free(cadre_failed_job *j);

/* Options of cadre_failed_list; zero means defaults. */
typedef struct cadre_failed_list_opts {
    const char         *queue; /* NULL: every queue */
    const cadre_job_id *after; /* NULL: from the first; else the jobs after
                                  it (from cadre_failed_page_next) */
    uint32_t limit;            /* jobs per page; 0: 100; the node caps 1,000 */
} cadre_failed_list_opts;

/* One page of a failed-job listing. Opaque; owned by the caller. */
typedef struct cadre_failed_page cadre_failed_page;

/* Lists failed jobs one page at a time, in id order (ids are time-ordered,
 * so the oldest dispatch comes first), without payloads. Continue with
 * opts->after set by cadre_failed_page_next until it returns 0; a page may
 * hold fewer than limit jobs, even none, and still have a next one. The
 * caller frees *out with cadre_failed_page_free.
 * Returns CADRE_EINVAL for a queue name over 120 bytes, CADRE_ENOMEM. */
CADRE_API int    cadre_failed_list(cadre_client                 *c,
                                   const cadre_failed_list_opts *opts,
                                   cadre_failed_page           **out);
CADRE_API size_t cadre_failed_page_count(const cadre_failed_page *p);
/* The i-th job (i < count), owned by the page. */
CADRE_API const cadre_failed_job *
cadre_failed_page_job(const cadre_failed_page *p, size_t i);
/* Returns 1 and sets *after if failed jobs follow this page, else 0. */
CADRE_API int  cadre_failed_page_next(const cadre_failed_page *p,
                                      cadre_job_id            *after);
CADRE_API void cadre_failed_page_free(cadre_failed_page *p); /* NULL ok */

/* The failed job id with its payload. The caller frees *out with
 * cadre_failed_job_free. Returns CADRE_ENOTFOUND if no failed job has this
 * id (it never failed, was retried, forgotten or pruned). */
CADRE_API int cadre_failed_get(cadre_client *c, const cadre_job_id *id,
                               cadre_failed_job **out);

/* Puts the n failed jobs back on their queues as fresh jobs: READY at the
 * back of the queue, attempts 0, error cleared, same id, payload and
 * options; they leave the failed store. *retried (may be NULL) receives how
 * many were. Returns CADRE_ENOTFOUND if some ids were not failed jobs (the
 * others are retried; cadre_client_errmsg names the first missing). */
CADRE_API int cadre_failed_retry(cadre_client *c, const cadre_job_id *ids,
                                 size_t n, size_t *retried);
/* Retries every failed job, or those of queue (NULL: every queue). */
CADRE_API int cadre_failed_retry_all(cadre_client *c, const char *queue,
                                     uint64_t *retried);
/* Deletes one failed job. Returns CADRE_ENOTFOUND if there is none with
 * this id. */
CADRE_API int cadre_failed_forget(cadre_client *c, const cadre_job_id *id);
/* Deletes every failed job; *forgotten (may be NULL) receives how many. */
CADRE_API int cadre_failed_flush(cadre_client *c, uint64_t *forgotten);
/* Deletes the failed jobs that failed older_than_ms ago or earlier (0:
 * all of them); *pruned (may be NULL) receives how many. */
CADRE_API int cadre_failed_prune(cadre_client *c, uint64_t older_than_ms,
                                 uint64_t *pruned);

/* Deletes the ready and delayed jobs of queue (NULL: of every queue); jobs
 * running now (reserved) are left alone. *cleared (may be NULL) receives
 * how many. Returns CADRE_EINVAL for a queue name over 120 bytes. */
CADRE_API int cadre_queue_clear(cadre_client *c, const char *queue,
                                uint64_t *cleared);
/* Pauses queue (NULL: "default"): workers take nothing from it until it is
 * resumed, while dispatch still stores jobs in it. Durable across node
 * restarts; pausing a paused queue (or resuming a running one) is no error.
 * Returns CADRE_EINVAL for a queue name over 120 bytes. */
CADRE_API int cadre_queue_pause(cadre_client *c, const char *queue);
/* Replaces every worker the node supervises, gracefully: each finishes its
 * current job, gives back what it held, and a fresh process (which loads
 * the plugins again) takes its place. *restarted (may be NULL) receives how
 * many. Workers started by hand are not touched. */
CADRE_API int cadre_workers_restart(cadre_client *c, uint64_t *restarted);
CADRE_API int cadre_queue_resume(cadre_client *c, const char *queue);
/* The names of the paused queues, sorted: *names is one allocation (the
 * array and its strings) the caller frees with cadre_free; NULL when *n is
 * 0. */
CADRE_API int cadre_queue_paused(cadre_client *c, char ***names, size_t *n);

/* ---- events ---------------------------------------------------------- */

/* A node publishes job events on its events socket (config events-listen;
 * by default the api port + 2) after they are committed. A subscriber
 * reads them with a client key; one that lags loses events (nothing is
 * replayed), so events are for watching and hooks, not for bookkeeping. */
typedef struct cadre_events cadre_events;

enum cadre_event_kind {
    CADRE_EVENT_DISPATCHED = 1, /* stored by a dispatch */
    CADRE_EVENT_STARTED = 2,    /* handed to a worker */
    CADRE_EVENT_DONE = 3,
    CADRE_EVENT_RELEASED = 4, /* back in its queue to be retried later:
                                 released, errored or its lease expired */
    CADRE_EVENT_FAILED = 5,
    CADRE_EVENT_LEADER = 6, /* the raft leader this node sees changed (a
                               node with --voters): leader, term; no job */
};

/* One event. Strings are NUL-terminated (truncated if longer). */
typedef struct cadre_event {
    int          kind; /* enum cadre_event_kind */
    cadre_job_id id;
    char         task[256];
    char         queue[128];
    uint32_t     attempt;        /* attempts started so far (0: dispatched) */
    uint64_t     at_ms;          /* Unix ms of the node's turn */
    char         error_type[64]; /* failed, or released after an error */
    char         leader[64];     /* CADRE_EVENT_LEADER: its node id, "" none */
    uint64_t     term;           /* CADRE_EVENT_LEADER: the raft term */
} cadre_event;

/* "dispatched", "started", "done", "released", "failed", "leader";
 * "unknown". */
CADRE_API const char *cadre_event_kind_name(int kind);

/* Subscribes to every event of the node at events_url (NULL:
 * $CADRE_EVENTS_URL, else the api url of opts (see cadre_client_opts) with
 * its port + 2). Events are opened with the client key found as
 * cadre_client_open finds it; opts->timeout_ms and app_key_file are unused.
 * The dial completes in the background (and reconnects): events published
 * before it completes are missed. Returns CADRE_ENOTFOUND if no key file is
 * found, CADRE_EINVAL for a bad url or key; a message goes to errbuf (if
 * not NULL). The caller owns *out and frees it with cadre_events_close. */
CADRE_API int cadre_events_open(const cadre_client_opts *opts,
                                const char *events_url, cadre_events **out,
                                char *errbuf, size_t errbuf_len);
/* Waits up to timeout_ms (0: does not wait) for the next event. Frames that
 * do not open with the client key are skipped. Returns CADRE_ETIMEDOUT when
 * none came, CADRE_ECLOSED, CADRE_EIO. One thread at a time per
 * subscription. */
CADRE_API int cadre_events_next(cadre_events *e, cadre_event *out,
                                uint32_t timeout_ms);
/* Closes the subscription; NULL is accepted. */
CADRE_API void cadre_events_close(cadre_events *e);

#ifdef __cplusplus
}
#endif
#endif /* CADRE_CADRE_H */
