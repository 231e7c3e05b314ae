/* leader.c: libraft on the node's loop (notes/libraft.md §1.2): the voters'
 * configuration bootstrapped the same on every node, pre-vote, leadership
 * tracked by polling (0.15 has no state callback), a barrier before a new
 * leader says it is ready, proposals of fsm commands and a watchdog over
 * commits that never come. It does not act on the state: callers do. */
#include "node/leader.h"

#include <ctype.h>
#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/path.h"
#include "node/raftfsm.h"
#include "node/raftguard.h"
#include "node/raftnet.h"

#define LEADER_POLL_MS 5
#define LEADER_STALL_LOG_MS 3000
#define LEADER_SNAPSHOT_THRESHOLD 1024
#define LEADER_SNAPSHOT_TRAILING 256
#define LEADER_CONNECT_RETRY_MS 100
/* A ready leader proposes EXPIRE (fsm.h) this often, and once at once. */
#define LEADER_EXPIRE_EVERY_MS 10000

/* A barrier or a proposal in flight: on the watchdog's list until its
 * callback. */
struct leader_req {
    union {
        struct raft_apply   apply;
        struct raft_barrier barrier;
    } u;
    struct leader     *l;
    struct leader_req *prev, *next;
    uint64_t           started_mono_ms;
    uint64_t           term;
    leader_propose_cb  cb; /* NULL: the barrier */
    void              *arg;
};

struct leader {
    uv_loop_t          *loop;
    struct leader_voter voters[LEADER_VOTERS_MAX];
    size_t              voters_n;
    char                node_id[LEADER_ID_MAX];
    uint64_t            raft_id;
    uint64_t            watchdog_ms;
    void (*fail_cb)(void *arg, const char *why);
    void                    *arg;
    struct raft_uv_transport net;
    struct raft_io           io;
    struct raftguard         guard;
    struct raftfsm           rfsm; /* its answers are read by apply_cb */
    struct raft              raft;
    struct fsm              *fsm;
    uv_timer_t               poll;
    int                      poll_open, raft_open, started, closing, failed;
    int                      role; /* enum leader_role, as polled */
    uint64_t                 term; /* as polled */
    uint64_t                 leader_raft_id;
    int                      ready;
    int                      barrier_busy;
    uint64_t                 barrier_term;
    struct leader_req       *reqs; /* in flight, oldest last */
    int                      not_committing;
    uint64_t                 stall_logged_mono_ms;
    int                      expire_busy;
    uint64_t                 next_expire_mono_ms;
    uint64_t                 proposed, committed, unknown;
    struct raft_transfer     xfer; /* a graceful stop's hand-over */
    int                      xfer_busy;
    uint64_t                 xfer_mono_ms;
};

/* ---- voters ------------------------------------------------------------ */

int
leader_parse_voters(const char *spec, struct leader_voter *out, size_t cap,
                    size_t *n, cd_err *err)
{
    size_t k = 0;

    *n = 0;
    while (spec != NULL && *spec != '\0') {
        size_t      len, id_len, addr_len;
        const char *eq, *colon;

        spec += strspn(spec, ", \t"); /* "a=h:p, b=h:p" as in config files */
        len = strcspn(spec, ", \t");
        if (len == 0)
            continue;
        eq = memchr(spec, '=', len);
        id_len = eq != NULL ? (size_t)(eq - spec) : 0;
        addr_len = eq != NULL ? len - id_len - 1 : 0;
        if (eq == NULL || id_len == 0 || id_len >= LEADER_ID_MAX ||
            addr_len == 0 || addr_len >= LEADER_ADDR_MAX)
            return cd_err_set(err, CADRE_EINVAL,
                              "voters: '%.*s' is not id=host:port", (int)len,
                              spec);
        if (k == cap)
            return cd_err_set(err, CADRE_EINVAL, "voters: more than %zu voters",
                              cap);
        memcpy(out[k].node_id, spec, id_len);
        out[k].node_id[id_len] = '\0';
        memcpy(out[k].address, eq + 1, addr_len);
        out[k].address[addr_len] = '\0';
        colon = strrchr(out[k].address, ':');
        if (colon == NULL || colon == out[k].address || colon[1] == '\0' ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
            return cd_err_set(err, CADRE_EINVAL,
                              "voters: '%s' is not host:port with a port "
                              "in 1..65535",
                              out[k].address);
        for (size_t i = 0; i < k; i++)
            if (strcmp(out[i].node_id, out[k].node_id) == 0 ||
                strcmp(out[i].address, out[k].address) == 0)
                return cd_err_set(err, CADRE_EINVAL,
                                  "voters: '%s' or '%s' twice", out[k].node_id,
                                  out[k].address);
        out[k].raft_id = k + 1;
        k++;
        spec += len;
    }
    if (k != 1 && k != 3 && k != 5)
        return cd_err_set(err, CADRE_EINVAL,
                          "voters: %zu voters; give 3 or 5 (or 1 for a "
                          "single node)",
                          k);
    *n = k;
    return CADRE_OK;
}

const char *
leader_role_name(int role)
{
    switch (role) {
    case LEADER_ROLE_OFF:
        return "off";
    case LEADER_ROLE_FOLLOWER:
        return "follower";
    case LEADER_ROLE_CANDIDATE:
        return "candidate";
    case LEADER_ROLE_LEADER:
        return "leader";
    case LEADER_ROLE_UNAVAILABLE:
        return "unavailable";
    default:
        return "?";
    }
}

static const char *
leader_node_of(const struct leader *l, uint64_t raft_id)
{
    for (size_t i = 0; i < l->voters_n; i++)
        if (l->voters[i].raft_id == raft_id)
            return l->voters[i].node_id;
    return "";
}

/* ---- requests and the watchdog ----------------------------------------- */

static struct leader_req *
leader_req_new(struct leader *l, leader_propose_cb cb, void *arg)
{
    struct leader_req *q = cd_calloc(1, sizeof(*q));

    if (q == NULL)
        return NULL;
    q->l = l;
    q->cb = cb;
    q->arg = arg;
    q->term = l->raft.current_term;
    q->started_mono_ms = cd_mono_ms();
    q->next = l->reqs;
    if (l->reqs != NULL)
        l->reqs->prev = q;
    l->reqs = q;
    return q;
}

static void
leader_req_free(struct leader_req *q)
{
    struct leader *l = q->l;

    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        l->reqs = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    cd_free(q);
}

static uint64_t
leader_oldest_wait_ms(const struct leader *l, uint64_t mono)
{
    uint64_t oldest = 0;

    for (const struct leader_req *q = l->reqs; q != NULL; q = q->next)
        if (mono - q->started_mono_ms > oldest)
            oldest = mono - q->started_mono_ms;
    return oldest;
}

/* A leader whose barrier or proposals never commit (no quorum, a full
 * disk: notes §1.5 #9) says so, loudly and again every few seconds. */
static void
leader_watchdog(struct leader *l, uint64_t mono)
{
    uint64_t oldest = leader_oldest_wait_ms(l, mono);
    int      stalled = l->reqs != NULL && oldest >= l->watchdog_ms;

    if (stalled && (!l->not_committing ||
                    mono - l->stall_logged_mono_ms >= LEADER_STALL_LOG_MS)) {
        l->stall_logged_mono_ms = mono;
        CD_LOG_ERR("leader", "LEADER-NOT-COMMITTING",
                   "waited_ms=%llu term=%llu commit_index=%llu role=%s",
                   (unsigned long long)oldest,
                   (unsigned long long)l->raft.current_term,
                   (unsigned long long)l->raft.commit_index,
                   leader_role_name(l->role));
    } else if (!stalled && l->not_committing) {
        CD_LOG_NOTICE("leader", "LEADER-COMMITTING-AGAIN", "term=%llu",
                      (unsigned long long)l->raft.current_term);
    }
    l->not_committing = stalled;
}

static void
leader_barrier_cb(struct raft_barrier *req, int status)
{
    struct leader_req *q = req->data;
    struct leader     *l = q->l;
    uint64_t           term = q->term;
    uint64_t           waited = cd_mono_ms() - q->started_mono_ms;

    leader_req_free(q);
    l->barrier_busy = 0;
    if (status != 0) {
        CD_LOG_WARN("leader", "LEADER-BARRIER-FAILED", "term=%llu error=%s",
                    (unsigned long long)term, raft_strerror(status));
        return;
    }
    if (l->closing || raft_state(&l->raft) != RAFT_LEADER ||
        l->raft.current_term != term)
        return; /* lost it meanwhile: the poll sees the rest */
    l->ready = 1;
    l->barrier_term = term;
    l->next_expire_mono_ms = 0; /* sweep what expired while nobody led */
    CD_LOG_NOTICE("leader", "LEADER-READY",
                  "id=%s raft_id=%llu term=%llu barrier_ms=%llu "
                  "last_applied=%llu",
                  l->node_id, (unsigned long long)l->raft_id,
                  (unsigned long long)term, (unsigned long long)waited,
                  (unsigned long long)raft_last_applied(&l->raft));
}

static void
leader_start_barrier(struct leader *l)
{
    struct leader_req *q = leader_req_new(l, NULL, NULL);
    int                rv;

    if (q == NULL)
        return; /* tried again at the next poll */
    q->u.barrier.data = q;
    rv = raft_barrier(&l->raft, &q->u.barrier, leader_barrier_cb);
    if (rv != 0) {
        CD_LOG_WARN("leader", "LEADER-BARRIER-FAILED", "term=%llu error=%s",
                    (unsigned long long)q->term, raft_strerror(rv));
        leader_req_free(q);
        return;
    }
    l->barrier_busy = 1;
}

static void leader_expire(struct leader *l, uint64_t mono);

static int
leader_role_of(int state)
{
    switch (state) {
    case RAFT_FOLLOWER:
        return LEADER_ROLE_FOLLOWER;
    case RAFT_CANDIDATE:
        return LEADER_ROLE_CANDIDATE;
    case RAFT_LEADER:
        return LEADER_ROLE_LEADER;
    default:
        return LEADER_ROLE_UNAVAILABLE;
    }
}

/* 0.15 has no state callback (notes §1.5 #3): poll. */
static void
leader_poll_cb(uv_timer_t *h)
{
    struct leader *l = h->data;
    int            role = leader_role_of(raft_state(&l->raft));
    raft_id        id = 0;
    const char    *addr = NULL;
    uint64_t       term = l->raft.current_term;

    if (l->closing)
        return;
    if (role == LEADER_ROLE_UNAVAILABLE) {
        /* A disk error: libraft stays unavailable for good (§1.5 #7). */
        if (!l->failed) {
            l->failed = 1;
            l->role = role;
            l->ready = 0;
            CD_LOG_ERR("leader", "LEADER-UNAVAILABLE", "term=%llu error=\"%s\"",
                       (unsigned long long)term, raft_errmsg(&l->raft));
            uv_timer_stop(&l->poll);
            if (l->fail_cb != NULL)
                l->fail_cb(l->arg, "raft is unavailable (I/O error)");
        }
        return;
    }
    raft_leader(&l->raft, &id, &addr);
    if (role == LEADER_ROLE_LEADER && l->role != LEADER_ROLE_LEADER)
        CD_LOG_NOTICE("leader", "LEADER-ELECTED",
                      "id=%s raft_id=%llu term=%llu", l->node_id,
                      (unsigned long long)l->raft_id, (unsigned long long)term);
    if (role != LEADER_ROLE_LEADER && l->role == LEADER_ROLE_LEADER)
        CD_LOG_WARN("leader", "LEADER-LOST", "id=%s term=%llu role=%s",
                    l->node_id, (unsigned long long)term,
                    leader_role_name(role));
    if (id != l->leader_raft_id && id != 0)
        CD_LOG_INFO("leader", "LEADER-KNOWN",
                    "leader=%s raft_id=%llu term=%llu", leader_node_of(l, id),
                    (unsigned long long)id, (unsigned long long)term);
    if (role != LEADER_ROLE_LEADER || term != l->barrier_term)
        l->ready = 0;
    l->role = role;
    l->term = term;
    l->leader_raft_id = id;
    if (role == LEADER_ROLE_LEADER && !l->ready && !l->barrier_busy)
        leader_start_barrier(l);
    if (l->ready && !l->expire_busy)
        leader_expire(l, cd_mono_ms());
    leader_watchdog(l, cd_mono_ms());
}

/* ---- open and close ---------------------------------------------------- */

static void
leader_free(struct leader *l)
{
    fsm_free(l->fsm);
    cd_free(l);
}

static void
leader_maybe_free(struct leader *l)
{
    if (!l->poll_open && !l->raft_open)
        leader_free(l);
}

static void
leader_poll_closed_cb(uv_handle_t *h)
{
    struct leader *l = h->data;

    l->poll_open = 0;
    leader_maybe_free(l);
}

static void
leader_raft_closed_cb(struct raft *r)
{
    struct leader *l = r->data;

    raft_uv_close(&l->io);
    raftnet_close(&l->net);
    l->raft_open = 0;
    while (l->reqs != NULL) { /* if libraft did not fail them itself */
        struct leader_req *q = l->reqs;
        leader_propose_cb  cb = q->cb;
        void              *arg = q->arg;

        leader_req_free(q);
        if (cb != NULL)
            cb(arg, CADRE_ECLOSED, NULL);
    }
    CD_LOG_INFO("leader", "LEADER-CLOSED", "id=%s", l->node_id);
    leader_maybe_free(l);
}

void
leader_close(struct leader *l)
{
    if (l == NULL || l->closing)
        return;
    l->closing = 1;
    l->ready = 0;
    if (l->poll_open) {
        uv_timer_stop(&l->poll);
        uv_close((uv_handle_t *)&l->poll, leader_poll_closed_cb);
    }
    if (l->raft_open)
        raft_close(&l->raft, leader_raft_closed_cb); /* fails what waits */
    else
        leader_maybe_free(l);
}

static int
leader_raft_error(int rv)
{
    return rv == RAFT_NOMEM     ? CADRE_ENOMEM
           : rv == RAFT_INVALID ? CADRE_EINVAL
                                : CADRE_EIO;
}

/* Bootstrap with the voters (the same on every node) and start. */
static int
leader_bootstrap_start(struct leader *l, cd_err *err)
{
    struct raft_configuration conf;
    int                       rv = 0;

    raft_configuration_init(&conf);
    for (size_t i = 0; i < l->voters_n && rv == 0; i++)
        rv = raft_configuration_add(&conf, l->voters[i].raft_id,
                                    l->voters[i].address, RAFT_VOTER);
    if (rv == 0) {
        rv = raft_bootstrap(&l->raft, &conf);
        if (rv == RAFT_CANTBOOTSTRAP) /* the dir holds state: keep it */
            rv = 0;
    }
    raft_configuration_close(&conf);
    if (rv != 0)
        return cd_err_set(err, leader_raft_error(rv), "raft_bootstrap: %s",
                          raft_errmsg(&l->raft));
    rv = raft_start(&l->raft);
    if (rv != 0) /* 0.15 leaves raft_errmsg empty when the listen fails */
        return cd_err_set(
            err, leader_raft_error(rv), "raft_start: %s: %s", raft_strerror(rv),
            raft_errmsg(&l->raft)[0] != '\0' ? raft_errmsg(&l->raft)
            : l->io.errmsg[0] != '\0'        ? l->io.errmsg
                                             : l->net.errmsg);
    l->started = 1;
    return CADRE_OK;
}

static void
leader_transfer_cb(struct raft_transfer *req)
{
    struct leader *l = req->data;
    raft_id        id = 0;
    const char    *addr = NULL;

    l->xfer_busy = 0;
    raft_leader(&l->raft, &id, &addr);
    CD_LOG_NOTICE("leader", "LEADER-TRANSFERRED", "id=%s to=%s ms=%llu",
                  l->node_id,
                  id != 0 && id != l->raft_id ? leader_node_of(l, id) : "-",
                  (unsigned long long)(cd_mono_ms() - l->xfer_mono_ms));
}

int
leader_transfer(struct leader *l)
{
    int rv;

    /* One voter: nobody to hand over to (and libraft 0.15 crashed at close
     * after a refused transfer of a single voter). */
    if (l == NULL || l->voters_n < 2 || !l->raft_open || l->closing ||
        l->xfer_busy || raft_state(&l->raft) != RAFT_LEADER)
        return CADRE_EBUSY;
    memset(&l->xfer, 0, sizeof(l->xfer));
    l->xfer.data = l;
    l->xfer_mono_ms = cd_mono_ms();
    rv = raft_transfer(&l->raft, &l->xfer, 0, leader_transfer_cb);
    if (rv != 0) {
        CD_LOG_WARN("leader", "LEADER-TRANSFER", "id=%s error=\"%s\"",
                    l->node_id, raft_strerror(rv));
        return leader_raft_error(rv);
    }
    l->xfer_busy = 1;
    CD_LOG_NOTICE("leader", "LEADER-TRANSFER", "id=%s term=%llu", l->node_id,
                  (unsigned long long)l->term);
    return CADRE_OK;
}

int
leader_open(struct leader **out, uv_loop_t *loop,
            const struct leader_config *cfg, cd_err *err)
{
    struct leader *l;
    const char    *address;
    int            rc, rv;

    *out = NULL;
    if (cfg->voters_n == 0 || cfg->voters_n > LEADER_VOTERS_MAX ||
        cfg->raft_id == 0 || cfg->raft_id > cfg->voters_n)
        return cd_err_set(err, CADRE_EINVAL,
                          "raft id %llu not among %zu voters",
                          (unsigned long long)cfg->raft_id, cfg->voters_n);
    if ((rc = cd_mkdirs(cfg->dir, 0700)) != 0)
        return cd_err_set(err, CADRE_EIO, "raft dir %s: cannot create: %s",
                          cfg->dir, strerror(rc));
    l = cd_calloc(1, sizeof(*l));
    if (l == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    l->loop = loop;
    memcpy(l->voters, cfg->voters, cfg->voters_n * sizeof(*cfg->voters));
    l->voters_n = cfg->voters_n;
    snprintf(l->node_id, sizeof(l->node_id), "%s", cfg->node_id);
    l->raft_id = cfg->raft_id;
    l->watchdog_ms = cfg->watchdog_ms > 0 ? cfg->watchdog_ms : 5000;
    l->fail_cb = cfg->fail_cb;
    l->arg = cfg->arg;
    address = l->voters[cfg->raft_id - 1].address;
    if (fsm_new(NULL, &l->fsm) != CADRE_OK) {
        leader_free(l);
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    }
    rc = raftnet_init(&l->net, loop, cfg->node_key,
                      cfg->bind != NULL && cfg->bind[0] != '\0' ? cfg->bind
                                                                : NULL);
    if (rc != CADRE_OK) {
        leader_free(l);
        return cd_err_set(err, rc, "raft transport: %s", cadre_strerror(rc));
    }
    rv = raft_uv_init(&l->io, loop, cfg->dir, &l->net);
    if (rv != 0) {
        cd_err_set(err, leader_raft_error(rv), "raft_uv_init %s: %s", cfg->dir,
                   l->io.errmsg);
        raftnet_close(&l->net);
        leader_free(l);
        return err->code;
    }
    raft_uv_set_connect_retry_delay(&l->io, LEADER_CONNECT_RETRY_MS);
    /* 8 MiB segments preallocate ~24 MiB before the first entry (§1.5 #9). */
    raft_uv_set_segment_size(
        &l->io, (size_t)(cfg->segment_kb > 0 ? cfg->segment_kb : 1024) * 1024);
    raftfsm_init(&l->rfsm, l->fsm);
    /* An AppendEntries result counts only for what was sent and checked:
     * 0.15 otherwise commits entries a minority holds (raftguard.h). */
    raftguard_init(&l->guard, &l->io);
    rv = raft_init(&l->raft, &l->guard.io, &l->rfsm.rf, cfg->raft_id, address);
    if (rv != 0) {
        cd_err_set(err, leader_raft_error(rv), "raft_init: %s",
                   raft_errmsg(&l->raft));
        raft_uv_close(&l->io);
        raftnet_close(&l->net);
        leader_free(l);
        return err->code;
    }
    l->raft.data = l;
    l->raft_open = 1;
    raft_set_election_timeout(&l->raft, cfg->election_ms);
    raft_set_heartbeat_timeout(&l->raft, cfg->heartbeat_ms);
    raft_set_pre_vote(&l->raft, true);
    raft_set_snapshot_threshold(&l->raft, LEADER_SNAPSHOT_THRESHOLD);
    raft_set_snapshot_trailing(&l->raft, LEADER_SNAPSHOT_TRAILING);
    uv_timer_init(loop, &l->poll);
    l->poll.data = l;
    l->poll_open = 1;
    rc = leader_bootstrap_start(l, err);
    if (rc != CADRE_OK) {
        leader_close(l); /* frees l once the loop has run */
        return rc;
    }
    uv_timer_start(&l->poll, leader_poll_cb, LEADER_POLL_MS, LEADER_POLL_MS);
    CD_LOG_NOTICE("leader", "LEADER-STARTED",
                  "id=%s raft_id=%llu address=%s port=%d voters=%zu dir=%s "
                  "election_ms=%u heartbeat_ms=%u",
                  l->node_id, (unsigned long long)l->raft_id, address,
                  raftnet_port(&l->net), l->voters_n, cfg->dir,
                  cfg->election_ms, cfg->heartbeat_ms);
    *out = l;
    return CADRE_OK;
}

/* ---- queries and proposals --------------------------------------------- */

int
leader_is_ready(const struct leader *l)
{
    return l != NULL && l->ready && !l->closing;
}

void
leader_current(const struct leader *l, char *id_out)
{
    id_out[0] = '\0';
    if (l == NULL || l->closing || l->leader_raft_id == 0)
        return;
    snprintf(id_out, LEADER_ID_MAX, "%s", leader_node_of(l, l->leader_raft_id));
}

void
leader_get_info(const struct leader *l, struct leader_info *out)
{
    memset(out, 0, sizeof(*out));
    if (l == NULL)
        return;
    leader_current(l, out->leader);
    out->leader_raft_id = l->leader_raft_id;
    out->raft_id = l->raft_id;
    out->term = l->term;
    out->role = l->role;
    out->ready = leader_is_ready(l);
    out->not_committing = l->not_committing;
    out->oldest_wait_ms = leader_oldest_wait_ms(l, cd_mono_ms());
    out->commit_index = l->raft.commit_index;
    out->last_applied = raft_last_applied((struct raft *)&l->raft);
    out->raft_port = raftnet_port(&l->net);
}

const struct fsm *
leader_fsm(const struct leader *l)
{
    return l->fsm;
}

static void
leader_apply_cb(struct raft_apply *req, int status, void *result)
{
    struct leader_req *q = req->data;
    leader_propose_cb  cb = q->cb;
    void              *arg = q->arg;
    struct fsm_result  res = {0};

    if (status == 0 && result != NULL)
        res = *(const struct fsm_result *)result;
    q->l->committed += status == 0;
    q->l->unknown += status != 0;
    leader_req_free(q);
    if (status == 0 && result != NULL)
        cb(arg, CADRE_OK, &res);
    else
        cb(arg, status == RAFT_SHUTDOWN ? CADRE_ECLOSED : CADRE_EIO, NULL);
}

/* The leader's own EXPIRE proposals: the FSM drops expired locks, unique
 * keys and windows only when told, with the proposer's clock. */
static void
leader_expire_cb(void *arg, int rc, const struct fsm_result *res)
{
    struct leader *l = arg;

    l->expire_busy = 0;
    if (rc != CADRE_OK)
        CD_LOG_INFO("leader", "LEADER-EXPIRE-UNKNOWN", "error=%s",
                    cadre_strerror(rc));
    else if (res->count > 0)
        CD_LOG_DEBUG("leader", "LEADER-EXPIRED", "items=%u", res->count);
}

static void
leader_expire(struct leader *l, uint64_t mono)
{
    struct fsm_cmd c = {.kind = FSM_EXPIRE, .now_ms = cd_now_ms()};

    if (mono < l->next_expire_mono_ms)
        return;
    l->next_expire_mono_ms = mono + LEADER_EXPIRE_EVERY_MS;
    if (leader_propose(l, &c, leader_expire_cb, l) == CADRE_OK)
        l->expire_busy = 1;
}

int
leader_propose(struct leader *l, const struct fsm_cmd *c, leader_propose_cb cb,
               void *arg)
{
    struct raft_buffer buf;
    struct leader_req *q;
    int                rc, rv;

    if (!leader_is_ready(l))
        return CADRE_EBUSY;
    if ((rc = raftfsm_encode(c, &buf)) != CADRE_OK)
        return rc;
    q = leader_req_new(l, cb, arg);
    if (q == NULL) {
        raft_free(buf.base);
        return CADRE_ENOMEM;
    }
    q->u.apply.data = q;
    rv = raft_apply(&l->raft, &q->u.apply, &buf, 1, leader_apply_cb);
    if (rv != 0) {
        raft_free(buf.base); /* still ours when raft_apply fails */
        leader_req_free(q);
        return rv == RAFT_NOMEM ? CADRE_ENOMEM : CADRE_EIO;
    }
    l->proposed++;
    return CADRE_OK;
}
