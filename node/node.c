/* node.c: wires the node together and runs its turns. A turn takes every
 * request queued since the last one (plus due timers) through one store write
 * transaction: intake, outcomes, reservations; then commits once and only
 * then sends the replies (group commit). */
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/path.h"
#include "node/admin.h"
#include "node/api.h"
#include "node/cluster.h"
#include "node/coord.h"
#include "node/dispatch.h"
#include "node/events.h"
#include "node/intake.h"
#include "node/leader.h"
#include "node/pool.h"
#include "node/runs.h"
#include "node/scheduler.h"
#include "node/spread.h"
#include "node/steal.h"
#include "node/tls.h"
#include "node/turn.h"
#include "node/uniq.h"
#include "node/waits.h"
#include "proto/replay.h"
#include "proto/wire.h"
#include "store/store.h"

#define NODE_TICK_MS 10
#define NODE_PRUNE_EVERY_MS 60000
#define NODE_SYNC_EVERY_MS                                                     \
    50 /* sync=off: flushed as often as beanstalkd -f 50 */
#define NODE_WAIT_MAX_IDS 10000   /* per Wait request; the client splits */
#define NODE_REPLAY_SENDERS 16384 /* senders tracked for replays */
#define NODE_SERVES_MAX 64        /* queues advertised as served */

struct node {
    const struct node_config *cfg;
    uv_loop_t                 loop;
    uv_timer_t                tick;
    uv_signal_t               sigterm, sigint;
    int                       lock_fd;
    char                      url[CONFIG_STR_MAX];
    char                      events_url[CONFIG_STR_MAX];
    char                      peer_url[CONFIG_STR_MAX];
    char                      key_path[CONFIG_STR_MAX + 32];
    char                      worker_key_path[CONFIG_STR_MAX + 32];
    struct tls_files          tls;       /* borrowed from cfg */
    struct wire_keyring       ring;      /* api socket: worker, client */
    struct wire_keyring       peer_ring; /* peer socket: node key only */
    struct replay            *replay;    /* every socket's frames */
    struct turn_sealer        sealer;
    store                    *store;
    struct api               *api;
    struct api               *peer; /* requests from other nodes */
    struct cluster           *cluster;
    struct steal             *steal;
    struct spread            *spread;      /* run tasks over peers */
    cadre_queue_stats        *self_queues; /* last heartbeat's depths */
    const char              **self_qnames;
    uint64_t                 *self_qready;
    const char               *self_serves[NODE_SERVES_MAX];
    struct events            *events; /* job events, published after commit */
    struct dispatch          *dispatch;
    struct waits             *waits;
    struct runs              *runs; /* run(): in memory (node/runs.h) */
    struct admin             *admin;
    struct pool              *pool;
    struct leader            *leader;    /* NULL without --voters */
    struct scheduler         *scheduler; /* the config's schedules */
    struct uniq              *uniq;      /* unique jobs' keys at the leader */
    struct coord             *coord;     /* locks, throttles, funnels */
    char                      leader_id[LEADER_ID_MAX];   /* for heartbeats */
    char                      leader_seen[LEADER_ID_MAX]; /* last event */
    int                       failed; /* fail-stop: exit non-zero */
    char                      fail_why[256];
    uint64_t                  started_mono_ms;
    uint64_t                  next_due_ms, next_deadline_ms;
    uint64_t                  next_fetch_mono_ms;
    uint64_t                  last_prune_mono_ms, last_sync_mono_ms;
    uint64_t                  bad_frames, replayed, commits, commit_errors;
    int                       stopping;
    int                       drain_logged;
    uint64_t                  stop_deadline_mono_ms;
    int                       closed;
};

static int
node_is_loopback(const char *url)
{
    if (strncmp(url, "tls+", 4) == 0) /* tls+tcp:// on loopback too */
        url += 4;
    return strncmp(url, "tcp://127.", 10) == 0 ||
           strncmp(url, "tcp://localhost:", 16) == 0 ||
           strncmp(url, "tcp://[::1]:", 12) == 0 ||
           strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0;
}

/* The first listen address that is not loopback (NULL if all are): with no
 * key configured, a node must not listen there. */
static const char *
node_open_url(const struct node *n)
{
    const struct node_config *cfg = n->cfg;

    if (!node_is_loopback(cfg->listen))
        return cfg->listen;
    if (cfg->peer_listen[0] != '\0' && !node_is_loopback(cfg->peer_listen))
        return cfg->peer_listen;
    if (cfg->events_listen[0] != '\0' && !node_is_loopback(cfg->events_listen))
        return cfg->events_listen;
    return NULL;
}

/* One node per data dir: an flock held for the process's life. */
static int
node_lock(struct node *n, cd_err *err)
{
    char path[CONFIG_STR_MAX + 32];
    char pid[32];
    int  len;

    snprintf(path, sizeof(path), "%s/node.lock", n->cfg->data_dir);
    n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (n->lock_fd < 0)
        return cd_err_set(err, CADRE_EIO, "data dir %s: cannot write: %s",
                          n->cfg->data_dir, strerror(errno));
    if (flock(n->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char    other[32] = "?";
        ssize_t got = pread(n->lock_fd, other, sizeof(other) - 1, 0);

        other[got > 0 ? got : 1] = '\0';
        other[strcspn(other, "\n")] = '\0';
        return cd_err_set(err, CADRE_EBUSY,
                          "data dir %s is in use by another node (pid %s)",
                          n->cfg->data_dir, other);
    }
    len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(n->lock_fd, 0) != 0 ||
        pwrite(n->lock_fd, pid, (size_t)len, 0) != len)
        return cd_err_set(err, CADRE_EIO, "data dir %s: cannot write: %s",
                          n->cfg->data_dir, strerror(errno));
    return CADRE_OK;
}

/* The cluster key: loaded, or made on loopback (the embedded default). The
 * node also writes the derived worker key for its own workers. */
static int
node_keys(struct node *n, cd_err *err)
{
    const struct node_config *cfg = n->cfg;
    keys_key                  master, k;
    int                       role, rc;

    if (cfg->key_file[0] != '\0')
        snprintf(n->key_path, sizeof(n->key_path), "%s", cfg->key_file);
    else
        snprintf(n->key_path, sizeof(n->key_path), "%s/%s", cfg->data_dir,
                 CD_KEY_FILE_NAME);
    rc = keys_load(n->key_path, &role, &master, err);
    if (rc == CADRE_ENOTFOUND && cfg->key_file[0] == '\0') {
        const char *open_url = node_open_url(n);

        if (open_url != NULL)
            return cd_err_set(err, CADRE_ECONFIG,
                              "%s is not loopback and no key is "
                              "configured: run `cadre keygen > FILE` and pass "
                              "--key-file FILE",
                              open_url);
        keys_generate(&master);
        role = KEYS_ROLE_MASTER;
        rc = keys_save(n->key_path, KEYS_ROLE_MASTER, &master, err);
        if (rc == CADRE_OK)
            CD_LOG_NOTICE("node", "NODE-KEY-GENERATED", "file=%s", n->key_path);
    }
    if (rc != CADRE_OK)
        return cd_err_wrap(err, "key");
    if (role != KEYS_ROLE_MASTER)
        return cd_err_set(err, CADRE_ECONFIG,
                          "key %s holds a %s key; a node needs the master key",
                          n->key_path, keys_role_name(role));
    for (int r = KEYS_ROLE_WORKER; r <= KEYS_ROLE_CLIENT; r++) {
        keys_derive(&master, r, &k);
        n->ring.has[r] = 1;
        n->ring.key[r] = k;
        wire_sender_init(&n->sealer.senders[r], r, &k, 0);
    }
    /* Other nodes speak on the peer socket (and publish heartbeats) with the
     * node key, which workers and clients never get. */
    keys_derive(&master, KEYS_ROLE_NODE, &k);
    n->peer_ring.has[KEYS_ROLE_NODE] = 1;
    n->peer_ring.key[KEYS_ROLE_NODE] = k;
    wire_sender_init(&n->sealer.senders[KEYS_ROLE_NODE], KEYS_ROLE_NODE, &k, 0);
    snprintf(n->worker_key_path, sizeof(n->worker_key_path), "%s/worker.key",
             cfg->data_dir);
    rc = keys_save(n->worker_key_path, KEYS_ROLE_WORKER,
                   &n->ring.key[KEYS_ROLE_WORKER], err);
    keys_wipe(&master);
    keys_wipe(&k);
    return rc == CADRE_OK ? CADRE_OK : cd_err_wrap(err, "worker key");
}

static void
node_status_cluster(struct node *n, cadre_status *st)
{
    struct cluster_stats cs;
    struct steal_stats   ss;
    struct spread_stats  sp;

    struct leader_info li;

    st->replayed = n->replayed;
    leader_get_info(n->leader, &li);
    snprintf(st->leader, sizeof(st->leader), "%s", li.leader);
    st->raft_term = li.term;
    st->raft_role = li.role;
    st->leader_ready = li.ready;
    st->not_committing = li.not_committing;
    if (n->cluster == NULL)
        return;
    cluster_get_stats(n->cluster, &cs);
    steal_get_stats(n->steal, &ss);
    spread_get_stats(n->spread, &sp);
    st->replayed += cs.replayed;
    st->bad_frames += cs.bad_frames;
    st->members = (uint32_t)cs.members;
    st->members_alive = (uint32_t)cs.alive;
    st->heartbeat_bytes_out = cs.bytes_sent;
    st->heartbeat_bytes_in = cs.bytes_received;
    st->jobs_stolen = ss.stolen;
    st->jobs_lent = ss.lent;
    st->jobs_settled = ss.settled;
    st->subruns = sp.subruns;
    st->subrun_tasks = sp.tasks;
}

static void
node_status(struct node *n, struct turn *t, struct api_req *r, int role,
            const struct msg *m)
{
    struct msg    reply = {.request_id = m->request_id, .kind = MSG_STATUS};
    cadre_status *st = &reply.u.status;
    struct dispatch_stats ds;
    cd_err                err;
    uint64_t              mono = cd_mono_ms();

    snprintf(st->node_id, sizeof(st->node_id), "%s", n->cfg->node_id);
    snprintf(st->version, sizeof(st->version), "%s", CADRE_VERSION);
    st->uptime_ms = mono - n->started_mono_ms;
    dispatch_get_stats(n->dispatch, mono, &ds);
    st->workers = ds.workers;
    st->workers_busy = ds.workers_busy;
    st->bad_frames = n->bad_frames;
    st->commits = n->commits;
    node_status_cluster(n, st);
    if (store_stats(n->store, t->now_ms, &st->queues, &st->queues_n, &err) !=
        CADRE_OK) {
        turn_seal_error(&n->sealer, r, role, m->request_id, err.code, err.msg);
    } else {
        turn_seal(&n->sealer, r, role, &reply);
    }
    cd_free(st->queues);
    turn_defer(t, r, role, m->request_id);
}

/* `cadre restart`: every supervised worker finishes its current job and
 * is replaced by a fresh process (which loads the plugins again). */
static void
node_restart_workers(struct node *n, struct turn *t, struct api_req *r,
                     int role, const struct msg *m)
{
    struct msg reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};

    if (role != KEYS_ROLE_CLIENT) {
        turn_seal_error(&n->sealer, r, role, m->request_id, CADRE_EAUTH,
                        "restarting workers needs a client key");
    } else {
        reply.u.admin_reply.count = pool_restart(n->pool);
        CD_LOG_NOTICE("node", "NODE-RESTART-WORKERS", "workers=%llu",
                      (unsigned long long)reply.u.admin_reply.count);
        turn_seal(&n->sealer, r, role, &reply);
    }
    turn_defer(t, r, role, m->request_id);
}

static void
node_bad_frame(struct node *n, struct api_req *r, const cd_err *err)
{
    n->bad_frames++;
    /* Logged, but not once per frame: an attacker must not fill the disk. */
    if (n->bad_frames <= 10 || n->bad_frames % 1000 == 0)
        CD_LOG_WARN("node", "NODE-BAD-FRAME", "count=%llu error=\"%s\"",
                    (unsigned long long)n->bad_frames, err->msg);
    api_drop(r);
}

/* A frame already accepted (or too old to tell): dropped unanswered and
 * counted. nng's own resend of a request looks the same; its sender's retry
 * seals anew and gets through. */
static void
node_replayed(struct node *n, struct api_req *r, const struct wire_header *h,
              enum replay_verdict v)
{
    n->replayed++;
    if (n->replayed <= 10 || n->replayed % 1000 == 0)
        CD_LOG_WARN("node", "NODE-REPLAY",
                    "count=%llu verdict=%s role=%s sender=%016llx",
                    (unsigned long long)n->replayed, replay_verdict_name(v),
                    keys_role_name(h->role), (unsigned long long)h->sender_id);
    api_drop(r);
}

/* Opens r's frame with the keys its socket accepts and checks it is not a
 * replay. On failure r is dropped. */
static int
node_open_frame(struct node *n, struct api_req *r, struct wire_header *hdr,
                struct msg *m)
{
    const struct wire_keyring *ring =
        r->api == n->peer ? &n->peer_ring : &n->ring;
    enum replay_verdict v;
    cd_err              err;

    memset(m, 0, sizeof(*m));
    if (wire_open(ring, nng_msg_body(r->msg), nng_msg_len(r->msg),
                  n->cfg->max_frame, hdr, m, &err) != CADRE_OK) {
        node_bad_frame(n, r, &err);
        return CADRE_EAUTH;
    }
    v = replay_check(n->replay, hdr, cd_now_ms());
    if (v != REPLAY_FRESH) {
        msg_free(m);
        node_replayed(n, r, hdr, v);
        return CADRE_EAUTH;
    }
    return CADRE_OK;
}

/* `cadre cluster members`. */
static void
node_members(struct node *n, struct turn *t, struct api_req *r, int role,
             const struct msg *m)
{
    struct msg reply = {.request_id = m->request_id, .kind = MSG_MEMBERS};
    const struct msg_member *ms;

    reply.u.members.members_n = cluster_members(n->cluster, &ms);
    reply.u.members.members = (struct msg_member *)ms;
    turn_seal(&n->sealer, r, role, &reply);
    turn_defer(t, r, role, m->request_id);
}

/* `cadre cluster leader`: this node's view. */
static void
node_leader_info(struct node *n, struct turn *t, struct api_req *r, int role,
                 const struct msg *m)
{
    struct msg reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};
    struct msg_leader *ml = &reply.u.admin_reply.leader;
    struct leader_info li;

    leader_get_info(n->leader, &li);
    ml->raft = n->leader != NULL;
    ml->leader = li.leader;
    ml->leader_raft_id = li.leader_raft_id;
    ml->raft_id = li.raft_id;
    ml->term = li.term;
    ml->role = (uint32_t)li.role;
    ml->ready = li.ready;
    ml->not_committing = li.not_committing;
    ml->oldest_wait_ms = li.oldest_wait_ms;
    ml->commit_index = li.commit_index;
    ml->last_applied = li.last_applied;
    turn_seal(&n->sealer, r, role, &reply);
    turn_defer(t, r, role, m->request_id);
}

/* `cadre schedule list`: this node's view of every schedule. */
static void
node_schedule_list(struct node *n, struct turn *t, struct api_req *r, int role,
                   const struct msg *m)
{
    struct msg reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};
    struct msg_schedule v[MSG_SCHEDULES_MAX];
    size_t              k = scheduler_count(n->scheduler);

    k = k < MSG_SCHEDULES_MAX ? k : MSG_SCHEDULES_MAX;
    for (size_t i = 0; i < k; i++) {
        struct scheduler_info si;

        scheduler_info(n->scheduler, i, t->now_ms, &si);
        v[i] = (struct msg_schedule){.name = si.name,
                                     .cron = si.cron,
                                     .task = si.task,
                                     .queue = si.queue,
                                     .tz = si.tz,
                                     .where = si.where,
                                     .on_one_server = si.on_one_server,
                                     .paused = si.paused,
                                     .next_s = si.next_s,
                                     .last_s = si.last_s,
                                     .fired = si.fired};
    }
    reply.u.admin_reply.schedules = v;
    reply.u.admin_reply.schedules_n = k;
    turn_seal(&n->sealer, r, role, &reply);
    turn_defer(t, r, role, m->request_id);
}

/* `cadre schedule run|pause|resume NAME`. Pausing an on_one_server
 * schedule takes its pause key in the leader's FSM, through coord (the
 * reply is then coord's). */
static void
node_schedule_op(struct node *n, struct turn *t, struct api_req *r, int role,
                 const struct msg *m)
{
    const char *name = m->u.admin.queue != NULL ? m->u.admin.queue : "";
    int         op = m->u.admin.op, paused = op == MSG_ADMIN_SCHEDULE_PAUSE;
    struct msg  reply = {.request_id = m->request_id, .kind = MSG_ADMIN_REPLY};
    char        key[FSM_KEY_MAX + 1];
    cd_err      err;
    int         rc;

    cd_err_clear(&err);
    if (role != KEYS_ROLE_CLIENT) {
        turn_seal_error(&n->sealer, r, role, m->request_id, CADRE_EAUTH,
                        "schedule operations need a client key");
        turn_defer(t, r, role, m->request_id);
        return;
    }
    if (op != MSG_ADMIN_SCHEDULE_RUN &&
        scheduler_is_leader_led(n->scheduler, name)) {
        struct msg cm = {.request_id = m->request_id, .kind = MSG_COORD};

        scheduler_pause_key(name, key, sizeof(key));
        cm.u.coord = (struct msg_coord){
            .kind = paused ? MSG_COORD_UNIQUE_TAKE : MSG_COORD_UNIQUE_RELEASE,
            .key = key,
            .owner = "cadre schedule pause"};
        coord_handle(n->coord, r, role, &cm, 0);
        return;
    }
    if (op == MSG_ADMIN_SCHEDULE_RUN) {
        rc = scheduler_run_now(n->scheduler, t, name, &reply.u.admin_reply.id,
                               &err);
        reply.u.admin_reply.has_id = rc == CADRE_OK;
    } else {
        rc = scheduler_pause(n->scheduler, t, name, paused, &err);
    }
    if (rc != CADRE_OK)
        turn_seal_error(&n->sealer, r, role, m->request_id, rc, err.msg);
    else
        turn_seal(&n->sealer, r, role, &reply);
    turn_defer(t, r, role, m->request_id);
}

/* What intake borrows of the node for one request. */
static struct intake
node_intake(struct node *n)
{
    struct intake in = {.cfg = n->cfg,
                        .sealer = &n->sealer,
                        .runs = n->runs,
                        .stopping = n->stopping};

    return in;
}

/* A request on the peer socket: only nodes get here (node key). */
static void
node_handle_peer(struct node *n, struct turn *t, struct api_req *r,
                 struct msg *m)
{
    struct intake in = node_intake(n);
    struct msg    reply;

    switch (m->kind) {
    case MSG_HELLO:
        cluster_hello(n->cluster, &m->u.heartbeat, &reply);
        reply.request_id = m->request_id;
        if (reply.kind == MSG_NONE)
            turn_seal_error(&n->sealer, r, KEYS_ROLE_NODE, m->request_id,
                            CADRE_ENOMEM, "out of memory");
        else
            turn_seal(&n->sealer, r, KEYS_ROLE_NODE, &reply);
        turn_defer(t, r, KEYS_ROLE_NODE, m->request_id);
        break;
    case MSG_STEAL:
    case MSG_SETTLE:
    case MSG_FINISHED:
        steal_serve(n->steal, t, &n->sealer, r, m);
        break;
    case MSG_STATUS_REQUEST:
        node_status(n, t, r, KEYS_ROLE_NODE, m);
        break;
    case MSG_RUN:
        intake_run(&in, r, KEYS_ROLE_NODE, m, 1); /* runs owns m */
        return;
    case MSG_COORD: /* forwarded by a node that does not lead */
        coord_handle(n->coord, r, KEYS_ROLE_NODE, m, 1);
        break;
    default:
        turn_seal_error(&n->sealer, r, KEYS_ROLE_NODE, m->request_id,
                        CADRE_EPROTO,
                        "unexpected message kind on the peer "
                        "socket");
        turn_defer(t, r, KEYS_ROLE_NODE, m->request_id);
        break;
    }
    msg_free(m);
}

static void
node_handle(struct node *n, struct turn *t, struct api_req *r)
{
    struct intake      in = node_intake(n);
    struct wire_header hdr;
    struct msg         m;

    if (node_open_frame(n, r, &hdr, &m) != CADRE_OK)
        return;
    if (r->api == n->peer) {
        node_handle_peer(n, t, r, &m);
        return;
    }
    switch (m.kind) {
    case MSG_HELLO:
    case MSG_HEARTBEAT:
    case MSG_STEAL:
    case MSG_SETTLE:
    case MSG_FINISHED:
        turn_seal_error(&n->sealer, r, hdr.role, m.request_id, CADRE_EAUTH,
                        "cluster requests need the node key, on the peer "
                        "socket");
        turn_defer(t, r, hdr.role, m.request_id);
        break;
    case MSG_DISPATCH:
        if (uniq_wanted(n->uniq, &m) && intake_dispatch_ok(&in, &m)) {
            uniq_park(n->uniq, r, hdr.role, &m); /* m moves */
            return;
        }
        intake_dispatch(&in, t, r, hdr.role, &m);
        break;
    case MSG_FETCH:
        if (hdr.role != KEYS_ROLE_WORKER) {
            turn_seal_error(&n->sealer, r, hdr.role, m.request_id, CADRE_EAUTH,
                            "fetch needs a worker key");
            turn_defer(t, r, hdr.role, m.request_id);
            break;
        }
        /* Which connection is this worker's: its run tasks go back to
         * their queues when it closes. */
        runs_worker_seen(n->runs, api_req_pipe(r), m.u.fetch.worker_id);
        /* dispatch owns m from here. */
        dispatch_fetch(n->dispatch, t, &n->sealer, r, hdr.role, &m,
                       cd_mono_ms(), n->stopping);
        return;
    case MSG_WAIT:
        if (m.u.wait.ids_n == 0 || m.u.wait.ids_n > NODE_WAIT_MAX_IDS) {
            turn_seal_error(&n->sealer, r, hdr.role, m.request_id, CADRE_EINVAL,
                            "a wait names 1 to 10000 jobs");
            turn_defer(t, r, hdr.role, m.request_id);
            break;
        }
        if (waits_add(n->waits, t, &n->sealer, r, hdr.role, m.request_id,
                      &m.u.wait, cd_mono_ms()) != CADRE_OK)
            api_drop(r);
        t->keep_finished = 1;
        break;
    case MSG_STATUS_REQUEST:
        node_status(n, t, r, hdr.role, &m);
        break;
    case MSG_RUN:
        intake_run(&in, r, hdr.role, &m, 0); /* runs owns m from here */
        return;
    case MSG_COORD:
        coord_handle(n->coord, r, hdr.role, &m, 0);
        break;
    default:
        if (m.kind == MSG_ADMIN && m.u.admin.op == MSG_ADMIN_WORKERS_RESTART) {
            node_restart_workers(n, t, r, hdr.role, &m);
            break;
        }
        if (m.kind == MSG_ADMIN && m.u.admin.op == MSG_ADMIN_CLUSTER_MEMBERS) {
            node_members(n, t, r, hdr.role, &m);
            break;
        }
        if (m.kind == MSG_ADMIN && m.u.admin.op == MSG_ADMIN_CLUSTER_LEADER) {
            node_leader_info(n, t, r, hdr.role, &m);
            break;
        }
        if (m.kind == MSG_ADMIN && m.u.admin.op == MSG_ADMIN_SCHEDULE_LIST) {
            node_schedule_list(n, t, r, hdr.role, &m);
            break;
        }
        if (m.kind == MSG_ADMIN && m.u.admin.op >= MSG_ADMIN_SCHEDULE_RUN &&
            m.u.admin.op <= MSG_ADMIN_SCHEDULE_RESUME) {
            node_schedule_op(n, t, r, hdr.role, &m);
            break;
        }
        if (admin_handle(n->admin, t, &n->sealer, r, hdr.role, &m))
            break;
        turn_seal_error(&n->sealer, r, hdr.role, m.request_id, CADRE_EPROTO,
                        "unexpected message kind");
        turn_defer(t, r, hdr.role, m.request_id);
        break;
    }
    msg_free(&m);
}

/* ---- turns and timers -----------------------------------------------------
 */

static void
node_timed_work(struct node *n, struct turn *t)
{
    cd_err   err;
    size_t   moved = 0;
    uint64_t mono = cd_mono_ms();

    if (t->now_ms >= n->next_due_ms) {
        if (store_promote_due(t->txn, t->now_ms, 10000, &moved, &err) !=
            CADRE_OK)
            CD_LOG_WARN("node", "NODE-PROMOTE", "error=\"%s\"", err.msg);
        t->dirty |= moved > 0;
    }
    if (t->now_ms >= n->next_deadline_ms &&
        dispatch_expire_leases(n->dispatch, t, &err) != CADRE_OK)
        CD_LOG_WARN("node", "NODE-EXPIRE", "error=\"%s\"", err.msg);
    if (mono >= n->last_prune_mono_ms + NODE_PRUNE_EVERY_MS) {
        size_t pruned = 0;

        n->last_prune_mono_ms = mono;
        if (store_prune_results(t->txn, t->now_ms, 10000, &pruned, &err) ==
            CADRE_OK)
            t->dirty |= pruned > 0;
    }
}

/* Connections closed since the last turn: a worker's run tasks go back. */
static void
node_closed_pipes(struct node *n)
{
    uint32_t ids[64];
    size_t   k;

    while ((k = api_take_closed(n->api, ids, 64)) > 0)
        for (size_t i = 0; i < k; i++)
            runs_pipe_closed(n->runs, ids[i]);
}

/* The turn's job events, now that they are committed. */
static void
node_publish(struct node *n, const struct turn *t)
{
    for (size_t i = 0; i < t->events_n; i++) {
        const struct turn_event *te = &t->events[i];
        struct msg_event         ev = {.kind = te->kind,
                                       .id = te->id,
                                       .task = te->task,
                                       .queue = te->queue,
                                       .attempt = te->attempt,
                                       .at_ms = t->now_ms,
                                       .error_type = te->error_type};

        events_publish(n->events, &ev);
    }
}

/* Dispatches of unique jobs whose keys the leader answered: stored now,
 * or refused as a whole when no leader answered. */
static void
node_unique_ready(struct node *n, struct turn *t)
{
    struct intake       in = node_intake(n);
    struct uniq_parked *p;

    while ((p = uniq_take_ready(n->uniq)) != NULL) {
        if (p->rc != CADRE_OK) {
            turn_seal_error(&n->sealer, p->req, p->role, p->m.request_id, p->rc,
                            p->why);
            turn_defer(t, p->req, p->role, p->m.request_id);
        } else {
            intake_dispatch_v(&in, t, p->req, p->role, &p->m, p->verdict);
        }
        uniq_parked_free(p);
    }
}

/* After a committed turn: unique jobs that reached their final state, or
 * started with unique_until_processing, give their cluster-wide keys
 * back. */
static void
node_unique_release(struct node *n, const struct turn *t)
{
    store_txn *txn = NULL;
    cd_err     err;

    for (size_t i = 0; i < t->finished_n; i++)
        uniq_release(n->uniq, &t->finished[i]);
    for (size_t i = 0; i < t->events_n; i++) {
        struct store_job job;

        if (t->events[i].kind != MSG_EVENT_STARTED)
            continue;
        if (txn == NULL && store_txn_begin(n->store, 1, &txn, &err) != CADRE_OK)
            return;
        if (store_job_get(txn, &t->events[i].id, &job, &err) != CADRE_OK)
            continue;
        if (job.unique_until_processing)
            uniq_release(n->uniq, &job);
        store_job_fini(&job);
    }
    store_txn_abort(txn);
}

/* Idle workers and nothing ready here for them: ask a loaded peer. */
static void
node_maybe_steal(struct node *n)
{
    const char *const *queues = NULL;
    size_t             queues_n = 0;
    size_t             idle = dispatch_idle(n->dispatch, &queues, &queues_n);

    if (n->steal == NULL)
        return;
    steal_tick(n->steal);
    if (idle == 0)
        return;
    steal_maybe(n->steal, idle, queues, queues_n,
                store_ready_in(n->store, queues, queues_n));
}

static void
node_turn(struct node *n, struct api_req *list)
{
    store_txn  *txn = NULL;
    struct turn t;
    cd_err      err;
    int         ok;

    if (store_txn_begin(n->store, 0, &txn, &err) != CADRE_OK) {
        CD_LOG_ERR("node", "NODE-TXN", "error=\"%s\"", err.msg);
        for (struct api_req *r = list, *next; r != NULL; r = next) {
            next = r->next;
            api_drop(r);
        }
        return;
    }
    turn_init(&t, n->store, txn, cd_now_ms());
    t.keep_finished = !waits_empty(n->waits) ||
                      steal_wants_finished(n->steal) || n->uniq != NULL;
    t.keep_events = n->events != NULL || n->uniq != NULL;
    node_closed_pipes(n);
    cluster_poll(n->cluster, &t); /* heartbeats; replies of peers */
    for (struct api_req *r = list, *next; r != NULL; r = next) {
        next = r->next;
        node_handle(n, &t, r);
    }
    node_unique_ready(n, &t);
    node_timed_work(n, &t);
    scheduler_turn(n->scheduler, &t, n->stopping);
    if (cd_mono_ms() >= runs_next_mono_ms(n->runs))
        runs_tick(n->runs, cd_mono_ms()); /* re-queued tasks: pumped below */
    if (!n->stopping) {
        dispatch_pump(n->dispatch, &t, &n->sealer);
        spread_pump(n->spread, cd_mono_ms());
        node_maybe_steal(n);
    }
    n->next_fetch_mono_ms = dispatch_expire_fetches(n->dispatch, &t, &n->sealer,
                                                    cd_mono_ms(), n->stopping);
    store_next_times(txn, &n->next_due_ms, &n->next_deadline_ms, &err);
    if (t.dirty) {
        ok = store_txn_commit(txn, &err) == CADRE_OK;
        n->commits += ok;
        if (!ok) {
            n->commit_errors++;
            CD_LOG_ERR("node", "NODE-COMMIT", "error=\"%s\"", err.msg);
        }
    } else {
        store_txn_abort(txn);
        ok = 1;
    }
    turn_flush(&t, &n->sealer, ok, ok ? CADRE_OK : err.code,
               ok ? NULL : err.msg);
    steal_committed(n->steal, ok); /* settle what this turn adopted */
    scheduler_committed(n->scheduler, ok);
    if (ok && t.finished_n > 0)
        waits_notify(n->waits, &t, &n->sealer);
    if (ok && n->events != NULL)
        node_publish(n, &t);
    if (ok && n->uniq != NULL)
        node_unique_release(n, &t);
    if (ok && n->steal != NULL)
        steal_send_home(n->steal, &t); /* after the waiters: moves jobs */
    turn_fini(&t);
}

static void
node_api_cb(void *arg)
{
    struct node *n = arg;

    node_turn(n, api_take(n->api));
}

static void
node_peer_cb(void *arg)
{
    struct node *n = arg;

    node_turn(n, api_take(n->peer));
}

/* The cluster queued heartbeats or replies. */
static void
node_cluster_cb(void *arg)
{
    node_turn(arg, NULL);
}

static void
node_close_cluster(struct node *n)
{
    cluster_close(n->cluster); /* drops requests in flight: no callbacks */
    n->cluster = NULL;
    steal_free(n->steal);
    n->steal = NULL;
    spread_free(n->spread);
    n->spread = NULL;
    api_close(n->peer);
    n->peer = NULL;
}

static void
node_finish(struct node *n)
{
    if (n->closed)
        return;
    n->closed = 1;
    CD_LOG_NOTICE("node", "NODE-STOPPED", "commits=%llu",
                  (unsigned long long)n->commits);
    coord_close(n->coord); /* answers what it holds: sockets close below */
    waits_expire(n->waits, &n->sealer, cd_mono_ms(), 1);
    runs_answer_all(n->runs, cd_mono_ms());
    dispatch_free(n->dispatch); /* parked fetches were answered at SIGTERM */
    n->dispatch = NULL;
    waits_free(n->waits);
    n->waits = NULL;
    runs_free(n->runs);
    n->runs = NULL;
    cd_sleep_ms(50); /* let nng flush the last replies before closing */
    uv_timer_stop(&n->tick);
    uv_close((uv_handle_t *)&n->tick, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    api_close(n->api);
    n->api = NULL;
    leader_close(n->leader); /* closes as the loop runs on */
    n->leader = NULL;
    node_close_cluster(n);
    pool_close(n->pool);
    n->pool = NULL;
}

/* Whether an alive peer with free workers serves a queue this node has
 * ready jobs in: it will steal them (node/steal.h) if the node waits. */
static int
node_peers_would_steal(struct node *n)
{
    const char *ids[16];
    uint32_t    free_slots[16];
    size_t      k;

    if (n->cluster == NULL)
        return 0;
    k = cluster_free_peers(n->cluster, ids, free_slots, 16);
    for (size_t i = 0; i < k; i++) {
        const char *const *names = NULL;
        size_t             m = cluster_peer_serves(n->cluster, ids[i], &names);

        if (store_ready_in(n->store, names, m) > 0)
            return 1;
    }
    return 0;
}

/* A graceful stop drains: while peers would steal this node's ready jobs
 * (a schedule's slot released just before the stop among them), the node
 * stays up to lend them, until the grace deadline; what is left waits in
 * the store for its restart. */
static int
node_draining(struct node *n, uint64_t mono)
{
    if (mono >= n->stop_deadline_mono_ms || !node_peers_would_steal(n))
        return 0;
    if (!n->drain_logged) {
        n->drain_logged = 1;
        CD_LOG_NOTICE("node", "NODE-DRAIN",
                      "ready jobs left for peers to take before exiting");
    }
    return 1;
}

/* Shutdown waits for supervised workers to exit and for jobs handed out to
 * be reported, up to shutdown_grace_ms; then kills what is left. */
static void
node_check_stop(struct node *n, uint64_t mono)
{
    int held = dispatch_held(n->dispatch, mono) > 0;
    int alive = pool_alive(n->pool) > 0;

    if (!alive && !held) {
        if (!node_draining(n, mono))
            node_finish(n);
        return;
    }
    if (mono >= n->stop_deadline_mono_ms) {
        if (alive) {
            CD_LOG_WARN("node", "NODE-STOP-KILL", "workers=%zu",
                        pool_alive(n->pool));
            pool_kill(n->pool);
            n->stop_deadline_mono_ms = UINT64_MAX; /* wait for their exit */
            return;
        }
        node_finish(n);
    }
}

/* Logs nothing (leader.c does) but publishes a leader event when the
 * leader this node sees changes, "" included (an election under way). */
static void
node_leader_watch(struct node *n)
{
    struct leader_info li;
    struct msg_event   ev = {.kind = MSG_EVENT_LEADER};

    if (n->leader == NULL || n->events == NULL)
        return;
    leader_get_info(n->leader, &li);
    if (strcmp(li.leader, n->leader_seen) == 0)
        return;
    snprintf(n->leader_seen, sizeof(n->leader_seen), "%s", li.leader);
    ev.at_ms = cd_now_ms();
    ev.leader = li.leader;
    ev.term = li.term;
    events_publish(n->events, &ev);
}

static void
node_tick_cb(uv_timer_t *h)
{
    struct node *n = h->data;
    uint64_t     now = cd_now_ms();
    uint64_t     mono = cd_mono_ms();

    if (now >= n->next_due_ms || now >= n->next_deadline_ms ||
        mono >= n->next_fetch_mono_ms ||
        mono >= n->last_prune_mono_ms + NODE_PRUNE_EVERY_MS ||
        (n->runs != NULL && mono >= runs_next_mono_ms(n->runs)) ||
        scheduler_wants_turn(n->scheduler, now) ||
        uniq_wants_turn(n->uniq, mono))
        node_turn(n, NULL);
    uniq_tick(n->uniq, mono);
    waits_expire(n->waits, &n->sealer, mono, 0);
    node_leader_watch(n);
    if (n->cfg->sync == STORE_SYNC_OFF &&
        mono >= n->last_sync_mono_ms + NODE_SYNC_EVERY_MS) {
        cd_err err;

        n->last_sync_mono_ms = mono;
        if (store_sync(n->store, &err) != CADRE_OK)
            CD_LOG_ERR("node", "NODE-SYNC", "error=\"%s\"", err.msg);
    }
    if (n->stopping)
        node_check_stop(n, mono);
}

static void node_begin_stop(struct node *n);

static void
node_signal_cb(uv_signal_t *h, int signum)
{
    struct node *n = h->data;

    if (n->stopping) {
        CD_LOG_NOTICE("node", "NODE-STOP-AGAIN", "signal=%d", signum);
        return;
    }
    CD_LOG_NOTICE("node", "NODE-STOPPING", "signal=%d grace_ms=%llu", signum,
                  (unsigned long long)n->cfg->shutdown_grace_ms);
    node_begin_stop(n);
}

/* libraft is unavailable for good (a disk error): stop the way SIGTERM
 * does and exit non-zero, for the supervisor to restart the node. */
static void
node_leader_fail_cb(void *arg, const char *why)
{
    struct node *n = arg;

    n->failed = 1;
    snprintf(n->fail_why, sizeof(n->fail_why), "%s", why);
    CD_LOG_ERR("node", "NODE-FAIL-STOP", "why=\"%s\"", why);
    if (!n->stopping)
        node_begin_stop(n);
}

static void
node_begin_stop(struct node *n)
{
    n->stopping = 1;
    n->stop_deadline_mono_ms = cd_mono_ms() + n->cfg->shutdown_grace_ms;
    leader_transfer(n->leader); /* a new leader now, not after a timeout */
    pool_stop(n->pool);
    node_turn(n, NULL); /* answers parked fetches: nothing more to take */
}

/* ---- start and stop -------------------------------------------------------
 */

/* raft among --voters (node/leader.h); nothing at all without them. */
static int
node_open_leader(struct node *n, cd_err *err)
{
    const struct node_config *cfg = n->cfg;
    struct leader_voter       vs[LEADER_VOTERS_MAX];
    struct leader_config      lc = {0};
    char                      dir[CONFIG_STR_MAX + 16];
    size_t                    vn = 0;
    int                       rc;

    if (cfg->voters[0] == '\0')
        return CADRE_OK;
    if (leader_parse_voters(cfg->voters, vs, LEADER_VOTERS_MAX, &vn, err) !=
        CADRE_OK)
        return cd_err_wrap(err, "leader");
    if (cfg->raft_dir[0] != '\0')
        snprintf(dir, sizeof(dir), "%s", cfg->raft_dir);
    else
        snprintf(dir, sizeof(dir), "%s/raft", cfg->data_dir);
    lc.node_id = cfg->node_id;
    lc.raft_id = cfg->raft_id;
    lc.voters = vs;
    lc.voters_n = vn;
    lc.bind = cfg->raft_listen;
    lc.dir = dir;
    lc.election_ms = (unsigned)cfg->election_ms;
    lc.heartbeat_ms = (unsigned)cfg->raft_heartbeat_ms;
    lc.watchdog_ms = cfg->raft_watchdog_ms;
    lc.node_key = &n->peer_ring.key[KEYS_ROLE_NODE];
    lc.fail_cb = node_leader_fail_cb;
    if (vn > 1 && cfg->peers_n == 0) /* raft does not make them members */
        CD_LOG_WARN("node", "NODE-VOTERS-NO-PEERS",
                    "--voters without --peer: this node meets the others only "
                    "when they list it as a peer; until then it cannot "
                    "forward locks, unique jobs or schedule pauses to the "
                    "leader, nor lend or steal jobs");
    lc.arg = n;
    rc = leader_open(&n->leader, &n->loop, &lc, err);
    return rc == CADRE_OK ? CADRE_OK : cd_err_wrap(err, "leader");
}

static int
node_start_pool(struct node *n, cd_err *err)
{
    const struct node_config *cfg = n->cfg;
    char                      exe[4096];
    size_t                    exe_len = sizeof(exe);
    char                     *argv[20 + 2 * CONFIG_LIST_MAX * 2];
    char                      prefetch[16];
    size_t                    a = 0;

    if (cfg->workers == 0)
        return CADRE_OK;
    if (uv_exepath(exe, &exe_len) != 0)
        return cd_err_set(err, CADRE_EIO, "pool: cannot find own executable");
    snprintf(prefetch, sizeof(prefetch), "%u", cfg->prefetch);
    argv[a++] = exe;
    argv[a++] = "worker";
    argv[a++] = "--connect";
    argv[a++] = n->url;
    argv[a++] = "--key-file";
    argv[a++] = n->worker_key_path;
    argv[a++] = "--queue";
    argv[a++] = (char *)cfg->queues;
    argv[a++] = "--prefetch";
    argv[a++] = prefetch;
    if (cfg->tls_cert[0] != '\0') { /* for a tls+tcp:// api url */
        argv[a++] = "--tls-cert";
        argv[a++] = (char *)cfg->tls_cert;
    }
    if (cfg->tls_ca[0] != '\0') {
        argv[a++] = "--tls-ca";
        argv[a++] = (char *)cfg->tls_ca;
    }
    for (size_t i = 0; i < cfg->plugins_n; i++) {
        argv[a++] = "--plugin";
        argv[a++] = (char *)cfg->plugins[i];
    }
    for (size_t i = 0; i < cfg->execs_n; i++) {
        argv[a++] = "--exec";
        argv[a++] = (char *)cfg->execs[i];
    }
    argv[a] = NULL;
    return pool_start(&n->pool, &n->loop, argv, cfg->workers, err);
}

/* The events socket: events-listen, else derived from listen (7700 ->
 * 7702, port 0 -> port 0). */
static int
node_open_events(struct node *n, cd_err *err)
{
    char url[CONFIG_STR_MAX];

    if (n->cfg->events_listen[0] != '\0')
        snprintf(url, sizeof(url), "%s", n->cfg->events_listen);
    else if (cd_events_url_from(n->cfg->listen, url, sizeof(url)) != CADRE_OK)
        return cd_err_set(err, CADRE_ECONFIG,
                          "cannot derive an events url from listen %s: set "
                          "events-listen",
                          n->cfg->listen);
    return events_open(&n->events, url, &n->sealer.senders[KEYS_ROLE_CLIENT],
                       n->cfg->max_frame, &n->tls, n->events_url,
                       sizeof(n->events_url), err);
}

/* The node as its heartbeats describe it. */
static void
node_self(void *arg, struct cluster_self *out)
{
    struct node          *n = arg;
    struct dispatch_stats ds;
    size_t                qn = 0;
    cd_err                err;

    dispatch_get_stats(n->dispatch, cd_mono_ms(), &ds);
    out->workers = ds.workers;
    out->free_slots = (uint32_t)dispatch_idle(n->dispatch, NULL, NULL);
    cd_free(n->self_queues);
    cd_free(n->self_qnames);
    cd_free(n->self_qready);
    n->self_queues = NULL;
    n->self_qnames = NULL;
    n->self_qready = NULL;
    if (store_stats(n->store, cd_now_ms(), &n->self_queues, &qn, &err) !=
        CADRE_OK)
        return;
    n->self_qnames = cd_calloc(qn ? qn : 1, sizeof(*n->self_qnames));
    n->self_qready = cd_calloc(qn ? qn : 1, sizeof(*n->self_qready));
    if (n->self_qnames == NULL || n->self_qready == NULL)
        return;
    for (size_t i = 0; i < qn; i++) {
        n->self_qnames[i] = n->self_queues[i].name;
        n->self_qready[i] = store_queue_paused(n->store, n->self_queues[i].name)
                                ? 0
                                : n->self_queues[i].ready;
        out->ready += n->self_qready[i];
    }
    out->queue_names = n->self_qnames;
    out->queue_ready = n->self_qready;
    out->queues_n = qn;
    out->serves = n->self_serves;
    out->serves_n =
        dispatch_idle_queues(n->dispatch, n->self_serves, NODE_SERVES_MAX);
    leader_current(n->leader, n->leader_id);
    out->leader = n->leader_id;
}

/* A dead peer's sub-run tasks go back to their queues (and are handed out
 * by the next turn's pump). */
static void
node_member_cb(void *arg, const char *node_id, int state)
{
    struct node *n = arg;

    if (state == MSG_MEMBER_DEAD)
        spread_peer_down(n->spread, node_id);
}

static void
node_link_cb(void *arg, const char *node_id)
{
    struct node *n = arg;

    spread_peer_down(n->spread, node_id);
}

/* The peer socket (derived from listen unless set), the cluster and the
 * stealer. */
static int
node_open_cluster(struct node *n, cd_err *err)
{
    const struct node_config *cfg = n->cfg;
    const char               *seeds[CONFIG_LIST_MAX];
    char                      url[CONFIG_STR_MAX];
    struct cluster_config     cc = {0};
    struct steal_config       sc = {.node_id = cfg->node_id,
                                    .steal_max = cfg->steal_max,
                                    .lend_ms = cfg->lend_ms,
                                    .backoff_ms = cfg->heartbeat_ms};
    int                       rc;

    if (cfg->peer_listen[0] != '\0')
        snprintf(url, sizeof(url), "%s", cfg->peer_listen);
    else if (cd_peer_url_from(cfg->listen, url, sizeof(url)) != CADRE_OK)
        return cd_err_set(err, CADRE_ECONFIG,
                          "cannot derive a peer url from listen %s: set "
                          "peer-listen",
                          cfg->listen);
    rc = api_open(&n->peer, &n->loop, url, cfg->max_frame, &n->tls,
                  node_peer_cb, n, n->peer_url, sizeof(n->peer_url), err);
    if (rc != CADRE_OK)
        return cd_err_wrap(err, "peer socket");
    for (size_t i = 0; i < cfg->peers_n; i++)
        seeds[i] = cfg->peers[i];
    cc.node_id = cfg->node_id;
    cc.peer_url = n->peer_url;
    cc.events_url = n->events_url;
    cc.api_url = n->url;
    cc.seeds = seeds;
    cc.seeds_n = cfg->peers_n;
    cc.heartbeat_ms = cfg->heartbeat_ms;
    cc.suspect_ms = cfg->suspect_ms;
    cc.dead_ms = cfg->dead_ms;
    cc.max_frame = cfg->max_frame;
    cc.sender = &n->sealer.senders[KEYS_ROLE_NODE];
    cc.ring = &n->peer_ring;
    cc.replay = n->replay;
    cc.events = n->events;
    cc.tls = n->tls;
    cc.self_cb = node_self;
    cc.ready_cb = node_cluster_cb;
    cc.member_cb = node_member_cb;
    cc.link_cb = node_link_cb;
    cc.arg = n;
    if ((rc = cluster_open(&n->cluster, &n->loop, &cc, err)) != CADRE_OK)
        return rc;
    if (steal_new(&sc, n->cluster, &n->steal) != CADRE_OK ||
        spread_new(n->runs, n->cluster, &n->spread) != CADRE_OK)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    return CADRE_OK;
}

static int
node_open_scheduler(struct node *n, cd_err *err)
{
    struct scheduler_config sc = {.config_file = n->cfg->config_file,
                                  .leader = n->leader,
                                  .has_peers = n->cfg->peers_n > 0};

    return scheduler_open(&n->scheduler, &sc, cd_now_ms(), err);
}

static int
node_open(struct node *n, cd_err *err)
{
    struct store_config    sc = {0};
    struct dispatch_config dc = {.retry_after_ms = n->cfg->retry_after_ms,
                                 .default_tries = n->cfg->tries};
    struct dispatch_source src = {.pending_cb = runs_pending,
                                  .take_cb = runs_take,
                                  .outcome_cb = runs_outcome};
    char                   dir[CONFIG_STR_MAX + 16];
    int                    rc;

    if (keys_init() != CADRE_OK)
        return cd_err_set(err, CADRE_EINTERNAL, "libsodium failed to start");
    if ((rc = cd_mkdirs(n->cfg->data_dir, 0700)) != 0)
        return cd_err_set(err, CADRE_EIO, "data dir %s: cannot create: %s",
                          n->cfg->data_dir, strerror(rc));
    if ((rc = node_lock(n, err)) != CADRE_OK)
        return rc;
    snprintf(n->url, sizeof(n->url), "%s", n->cfg->listen);
    n->tls.cert_file = n->cfg->tls_cert;
    n->tls.ca_file = n->cfg->tls_ca;
    if ((rc = node_keys(n, err)) != CADRE_OK)
        return rc;
    snprintf(dir, sizeof(dir), "%s/store", n->cfg->data_dir);
    if ((rc = cd_mkdirs(dir, 0700)) != 0)
        return cd_err_set(err, CADRE_EIO, "store dir %s: cannot create: %s",
                          dir, strerror(rc));
    sc.dir = dir;
    sc.map_size_mb = n->cfg->map_size_mb;
    sc.sync = n->cfg->sync;
    sc.result_ttl_ms = n->cfg->result_ttl_ms;
    if ((rc = store_open(&sc, &n->store, err)) != CADRE_OK)
        return rc;
    n->sealer.max_frame = n->cfg->max_frame;
    if (dispatch_new(&dc, &n->dispatch) != CADRE_OK ||
        waits_new(&n->waits) != CADRE_OK || admin_new(&n->admin) != CADRE_OK ||
        runs_new(&n->sealer, &n->runs) != CADRE_OK)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    src.arg = n->runs;
    dispatch_set_source(n->dispatch, &src);
    rc = api_open(&n->api, &n->loop, n->cfg->listen, n->cfg->max_frame, &n->tls,
                  node_api_cb, n, n->url, sizeof(n->url), err);
    if (rc != CADRE_OK)
        return rc;
    if ((rc = node_open_events(n, err)) != CADRE_OK)
        return rc;
    if (replay_new(NODE_REPLAY_SENDERS, n->cfg->replay_skew_ms, &n->replay) !=
        CADRE_OK)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if ((rc = node_open_cluster(n, err)) != CADRE_OK)
        return rc;
    if ((rc = node_open_leader(n, err)) != CADRE_OK)
        return rc;
    if (coord_new(&(struct coord_config){.node_id = n->cfg->node_id,
                                         .leader = n->leader,
                                         .cluster = n->cluster,
                                         .sealer = &n->sealer},
                  &n->coord) != CADRE_OK)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if (n->leader != NULL && uniq_new(n->coord, &n->uniq) != CADRE_OK)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if ((rc = node_open_scheduler(n, err)) != CADRE_OK)
        return rc;
    return node_start_pool(n, err);
}

static void
node_handles_init(struct node *n)
{
    uv_timer_init(&n->loop, &n->tick);
    n->tick.data = n;
    uv_signal_init(&n->loop, &n->sigterm);
    n->sigterm.data = n;
    uv_signal_init(&n->loop, &n->sigint);
    n->sigint.data = n;
}

static void
node_close(struct node *n)
{
    if (!n->closed) {
        n->closed = 1;
        uv_close((uv_handle_t *)&n->tick, NULL);
        uv_close((uv_handle_t *)&n->sigterm, NULL);
        uv_close((uv_handle_t *)&n->sigint, NULL);
        coord_close(n->coord); /* answers uniq's asks: */
        uniq_close(n->uniq);   /* their requests go before the socket */
        api_close(n->api);
        leader_close(n->leader);
        n->leader = NULL;
        node_close_cluster(n);
        if (n->pool != NULL) {
            pool_kill(n->pool);
            while (pool_alive(n->pool) > 0 && uv_run(&n->loop, UV_RUN_ONCE))
                ;
        }
        pool_close(n->pool);
    }
    uv_run(&n->loop, UV_RUN_DEFAULT); /* close callbacks */
    uniq_free(n->uniq);   /* before coord: its last callbacks came */
    coord_free(n->coord); /* the leader and cluster call back no more */
    scheduler_close(n->scheduler);
    dispatch_free(n->dispatch);
    waits_free(n->waits);
    runs_free(n->runs);
    admin_free(n->admin);
    events_close(n->events);
    replay_free(n->replay);
    cd_free(n->self_queues);
    cd_free(n->self_qnames);
    cd_free(n->self_qready);
    store_close(n->store);
    uv_loop_close(&n->loop);
    if (n->lock_fd >= 0)
        close(n->lock_fd);
}

int
node_run(const struct node_config *cfg, cd_err *err)
{
    struct node n;
    int         rc;

    memset(&n, 0, sizeof(n));
    n.cfg = cfg;
    n.lock_fd = -1;
    n.started_mono_ms = cd_mono_ms();
    n.last_prune_mono_ms = n.started_mono_ms;
    n.next_due_ms = n.next_deadline_ms = 0;
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&n.loop);
    node_handles_init(&n);
    rc = node_open(&n, err);
    if (rc != CADRE_OK) {
        node_close(&n);
        return rc;
    }
    uv_signal_start(&n.sigterm, node_signal_cb, SIGTERM);
    uv_signal_start(&n.sigint, node_signal_cb, SIGINT);
    uv_timer_start(&n.tick, node_tick_cb, NODE_TICK_MS, NODE_TICK_MS);
    CD_LOG_NOTICE("node", "NODE-READY",
                  "id=%s api=%s data=%s workers=%u sync=%d events=%s peer=%s",
                  cfg->node_id, n.url, cfg->data_dir, cfg->workers, cfg->sync,
                  n.events_url, n.peer_url);
    printf("cadre node ready api=%s data=%s pid=%d events=%s peer=%s id=%s\n",
           n.url, cfg->data_dir, (int)getpid(), n.events_url, n.peer_url,
           cfg->node_id);
    fflush(stdout);
    uv_run(&n.loop, UV_RUN_DEFAULT);
    node_close(&n);
    api_nng_fini();
    if (n.failed)
        return cd_err_set(err, CADRE_EIO, "stopped: %s", n.fail_why);
    return CADRE_OK;
}
