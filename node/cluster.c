/* cluster.c: the member table, heartbeats over pub/sub and requests to peers
 * over req/rep (cluster.h). nng's callbacks only queue (inbox, done) under
 * mu and wake the loop; everything else runs on the loop thread. */
#include "node/cluster.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/api.h"

#define CLUSTER_INBOX_MAX 4096 /* heartbeats queued for the loop */
#define CLUSTER_RECONNECT_MIN_MS 100
#define CLUSTER_RECONNECT_MAX_MS 1000
#define CLUSTER_HELLO_MIN_MS 1000

struct member {
    char       id[CLUSTER_ID_MAX]; /* "" until a seed answers its Hello */
    char       peer_url[CLUSTER_URL_MAX];
    char       events_url[CLUSTER_URL_MAX];
    char       api_url[CLUSTER_URL_MAX];
    char       version[32];
    char       leader[CLUSTER_ID_MAX];
    uint64_t   boot_id;
    uint64_t   heard_mono_ms; /* 0: never */
    int        state;         /* enum msg_member_state; NONE until heard */
    uint32_t   workers, free_slots;
    uint64_t   ready;
    char     **qnames; /* one block with qready */
    uint64_t  *qready;
    size_t     qn;
    char     **serves; /* one block */
    size_t     serves_n;
    int        knows_us; /* its last heartbeat listed this node */
    int        hello_inflight;
    uint64_t   next_hello_mono_ms;
    nng_socket req;
    int        req_open;
    nng_dialer sub;
    int        sub_open;
};

struct creq {
    struct cluster  *c;
    nng_ctx          ctx;
    nng_aio         *aio;
    int              sending;
    int              rv;
    nng_msg         *reply;
    cluster_reply_cb cb;
    void            *arg;
    char             node_id[CLUSTER_ID_MAX];
    struct member   *hello_to;    /* a Hello: the entry that sent it */
    struct creq     *next, *prev; /* in flight (loop thread) */
    struct creq     *done_next;   /* done queue (under mu) */
};

struct cluster {
    struct cluster_config cfg;
    uv_loop_t            *loop;
    uv_async_t            async;
    uv_timer_t            timer;
    nng_socket            sub;
    nng_aio              *sub_aio;
    pthread_mutex_t       mu;
    nng_msg             **inbox; /* under mu */
    size_t                inbox_n;
    struct creq          *done; /* under mu; LIFO, order does not matter */
    uint32_t             *down; /* under mu: req sockets whose link closed */
    size_t                down_n, down_cap;
    atomic_int            stopping;
    struct creq          *inflight;
    struct member       **m;
    size_t                n, cap;
    uint64_t              seq, next_request_id;
    int                   closing;
    struct cluster_stats  st;
    /* Scratch for heartbeats and member lists. */
    struct msg_member *view;
    size_t             view_cap;
    const char       **ids;
    size_t             ids_cap;
};

/* ---- nng threads ---------------------------------------------------------
 */

static void
cluster_sub_cb(void *arg)
{
    struct cluster *c = arg;
    int             rv = nng_aio_result(c->sub_aio);

    if (rv == 0) {
        nng_msg *nm = nng_aio_get_msg(c->sub_aio);

        pthread_mutex_lock(&c->mu);
        if (c->inbox_n < CLUSTER_INBOX_MAX)
            c->inbox[c->inbox_n++] = nm, nm = NULL;
        pthread_mutex_unlock(&c->mu);
        if (nm != NULL)
            nng_msg_free(nm); /* the loop is far behind: the next one will do */
        uv_async_send(&c->async);
    }
    if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
        nng_recv_aio(c->sub, c->sub_aio);
}

static void
cluster_creq_cb(void *arg)
{
    struct creq    *q = arg;
    struct cluster *c = q->c;
    int             rv = nng_aio_result(q->aio);

    if (q->sending && rv == 0) {
        q->sending = 0;
        nng_ctx_recv(q->ctx, q->aio);
        return;
    }
    if (q->sending)
        nng_msg_free(nng_aio_get_msg(q->aio));
    else if (rv == 0)
        q->reply = nng_aio_get_msg(q->aio);
    q->rv = rv;
    pthread_mutex_lock(&c->mu);
    q->done_next = c->done;
    c->done = q;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
}

/* A connection of a req socket closed. */
static void
cluster_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct cluster *c = arg;
    nng_socket      sock = nng_pipe_socket(p);

    (void)ev;
    if (atomic_load(&c->stopping))
        return;
    pthread_mutex_lock(&c->mu);
    if (c->down_n == c->down_cap) {
        size_t    cap = c->down_cap ? c->down_cap * 2 : 16;
        uint32_t *v = cd_realloc(c->down, cap * sizeof(*v));

        if (v == NULL) { /* the member goes dead in time anyway */
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->down = v;
        c->down_cap = cap;
    }
    c->down[c->down_n++] = (uint32_t)nng_socket_id(sock);
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
}

/* ---- members ------------------------------------------------------------- */

static struct member *
cluster_find(struct cluster *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i]->id[0] != '\0' && strcmp(c->m[i]->id, id) == 0)
            return c->m[i];
    return NULL;
}

static struct member *
cluster_find_seed(struct cluster *c, const char *peer_url)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i]->id[0] == '\0' && strcmp(c->m[i]->peer_url, peer_url) == 0)
            return c->m[i];
    return NULL;
}

static void
cluster_member_free(struct member *m)
{
    if (m->req_open)
        api_close_socket(m->req);
    if (m->sub_open)
        nng_dialer_close(m->sub);
    cd_free(m->qnames);
    cd_free(m->serves);
    cd_free(m);
}

/* Requests still in flight to m no longer point at it. */
static void
cluster_forget_hello(struct cluster *c, struct member *m)
{
    for (struct creq *q = c->inflight; q != NULL; q = q->next)
        if (q->hello_to == m)
            q->hello_to = NULL;
}

static void
cluster_remove(struct cluster *c, struct member *m)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->m[i] == m) {
            c->m[i] = c->m[--c->n];
            break;
        }
    }
    cluster_forget_hello(c, m);
    cluster_member_free(m);
}

/* Dials url from sock without waiting (nng redials), through TLS if url is
 * tls+tcp://. Returns nng's error. */
static int
cluster_dial(struct cluster *c, nng_socket sock, const char *url,
             nng_dialer *out)
{
    nng_dialer d;
    cd_err     err = {0};
    int        rv;

    if ((rv = nng_dialer_create(&d, sock, url)) != 0)
        return rv;
    if (tls_dialer_config(d, url, &c->cfg.tls, &err) != CADRE_OK) {
        CD_LOG_WARN("cluster", "CLUSTER-TLS", "url=%s error=\"%s\"", url,
                    err.msg);
        nng_dialer_close(d);
        return NNG_EINVAL;
    }
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        return rv;
    }
    if (out != NULL)
        *out = d;
    return 0;
}

static int
cluster_open_req(struct cluster *c, struct member *m)
{
    int rv;

    if (m->req_open) {
        api_close_socket(m->req);
        m->req_open = 0;
    }
    if ((rv = nng_req0_open(&m->req)) != 0)
        return rv;
    m->req_open = 1;
    nng_pipe_notify(m->req, NNG_PIPE_EV_REM_POST, cluster_pipe_cb, c);
    nng_socket_set_size(m->req, NNG_OPT_RECVMAXSZ, c->cfg.max_frame);
    nng_socket_set_ms(m->req, NNG_OPT_RECONNMINT, CLUSTER_RECONNECT_MIN_MS);
    nng_socket_set_ms(m->req, NNG_OPT_RECONNMAXT, CLUSTER_RECONNECT_MAX_MS);
    return cluster_dial(c, m->req, m->peer_url, NULL);
}

static void
cluster_dial_sub(struct cluster *c, struct member *m)
{
    int rv;

    if (m->sub_open) {
        nng_dialer_close(m->sub);
        m->sub_open = 0;
    }
    if (m->events_url[0] == '\0')
        return;
    rv = cluster_dial(c, c->sub, m->events_url, &m->sub);
    m->sub_open = rv == 0;
    if (rv != 0)
        CD_LOG_WARN("cluster", "CLUSTER-DIAL", "url=%s error=\"%s\"",
                    m->events_url, nng_strerror(rv));
}

static struct member *
cluster_add(struct cluster *c, const char *id, const char *peer_url)
{
    struct member *m;
    int            rv;

    if (c->n == c->cap) {
        size_t          cap = c->cap ? c->cap * 2 : 8;
        struct member **v = cd_realloc(c->m, cap * sizeof(*v));

        if (v == NULL)
            return NULL;
        c->m = v;
        c->cap = cap;
    }
    if ((m = cd_calloc(1, sizeof(*m))) == NULL)
        return NULL;
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->peer_url, sizeof(m->peer_url), "%s", peer_url);
    if ((rv = cluster_open_req(c, m)) != 0)
        CD_LOG_WARN("cluster", "CLUSTER-DIAL", "url=%s error=\"%s\"", peer_url,
                    nng_strerror(rv));
    c->m[c->n++] = m;
    return m;
}

/* New addresses for m (a restart on other ports): dial them. */
static void
cluster_set_urls(struct cluster *c, struct member *m,
                 const struct msg_member *s)
{
    if (s->peer_url[0] != '\0' && strcmp(m->peer_url, s->peer_url) != 0) {
        snprintf(m->peer_url, sizeof(m->peer_url), "%s", s->peer_url);
        cluster_open_req(c, m);
    }
    if (s->events_url[0] != '\0' && strcmp(m->events_url, s->events_url) != 0) {
        snprintf(m->events_url, sizeof(m->events_url), "%s", s->events_url);
        cluster_dial_sub(c, m);
    }
    snprintf(m->api_url, sizeof(m->api_url), "%s", s->api_url);
}

static void
cluster_set_state(struct cluster *c, struct member *m, int state)
{
    static const char *names[] = {"joining", "alive", "suspect", "dead"};

    if (m->state == state)
        return;
    m->state = state;
    if (state == MSG_MEMBER_ALIVE)
        CD_LOG_NOTICE("cluster", "CLUSTER-MEMBER-ALIVE", "node=%s url=%s",
                      m->id, m->peer_url);
    else
        CD_LOG_WARN("cluster", "CLUSTER-MEMBER-STATE", "node=%s state=%s",
                    m->id, names[state]);
    if (c->cfg.member_cb != NULL)
        c->cfg.member_cb(c->cfg.arg, m->id, state);
}

/* Copies the advertised queue depths into m (one block). */
static void
cluster_set_queues(struct member *m, const struct msg_member *s)
{
    size_t names = 0;
    char  *p;

    cd_free(m->qnames);
    m->qnames = NULL;
    m->qready = NULL;
    m->qn = 0;
    for (size_t i = 0; i < s->queues_n; i++)
        names += strlen(s->queue_names[i]) + 1;
    m->qnames = cd_malloc(s->queues_n * (sizeof(char *) + sizeof(uint64_t)) +
                          names + 1);
    if (m->qnames == NULL)
        return;
    m->qready = (uint64_t *)(m->qnames + s->queues_n);
    p = (char *)(m->qready + s->queues_n);
    for (size_t i = 0; i < s->queues_n; i++) {
        size_t len = strlen(s->queue_names[i]) + 1;

        memcpy(p, s->queue_names[i], len);
        m->qnames[i] = p;
        m->qready[i] = s->queue_ready[i];
        p += len;
    }
    m->qn = s->queues_n;
}

/* Copies the queues the member's idle workers wait on (one block). */
static void
cluster_set_serves(struct member *m, const struct msg_member *s)
{
    size_t bytes = 0;
    char  *p;

    cd_free(m->serves);
    m->serves = NULL;
    m->serves_n = 0;
    for (size_t i = 0; i < s->serves_n; i++)
        bytes += strlen(s->serves[i]) + 1;
    m->serves = cd_malloc(s->serves_n * sizeof(char *) + bytes + 1);
    if (m->serves == NULL)
        return;
    p = (char *)(m->serves + s->serves_n);
    for (size_t i = 0; i < s->serves_n; i++) {
        size_t len = strlen(s->serves[i]) + 1;

        memcpy(p, s->serves[i], len);
        m->serves[i] = p;
        p += len;
    }
    m->serves_n = s->serves_n;
}

/* What a member says of itself (a heartbeat or a Hello): authoritative. */
static struct member *
cluster_learn_self(struct cluster *c, const struct msg_member *s)
{
    struct member *m = cluster_find(c, s->node_id);
    struct member *seed = cluster_find_seed(c, s->peer_url);

    if (strcmp(s->node_id, c->cfg.node_id) == 0) {
        if (seed != NULL)
            cluster_remove(c, seed); /* a seed that is this node */
        if (s->boot_id != c->cfg.sender->boot_id)
            CD_LOG_WARN("cluster", "CLUSTER-DUPLICATE-ID",
                        "node=%s other=%s: two nodes share this id; give each "
                        "its own --node-id",
                        s->node_id, s->peer_url);
        return NULL;
    }
    if (m == NULL && seed != NULL) {
        m = seed;
        snprintf(m->id, sizeof(m->id), "%s", s->node_id);
    } else if (m != NULL && seed != NULL && seed != m) {
        cluster_remove(c, seed); /* learned by gossip before it answered */
    }
    if (m == NULL && (m = cluster_add(c, s->node_id, s->peer_url)) == NULL)
        return NULL;
    cluster_set_urls(c, m, s);
    if (m->boot_id != 0 && m->boot_id != s->boot_id)
        CD_LOG_NOTICE("cluster", "CLUSTER-MEMBER-RESTARTED", "node=%s", m->id);
    m->boot_id = s->boot_id;
    m->workers = s->workers;
    m->free_slots = s->free_slots;
    m->ready = s->ready;
    snprintf(m->version, sizeof(m->version), "%s", s->version);
    snprintf(m->leader, sizeof(m->leader), "%s", s->leader);
    cluster_set_queues(m, s);
    cluster_set_serves(m, s);
    m->heard_mono_ms = cd_mono_ms();
    cluster_set_state(c, m, MSG_MEMBER_ALIVE);
    return m;
}

/* What a member says of others: only new members, and new addresses of dead
 * ones, are taken from hearsay. */
static void
cluster_learn_gossip(struct cluster *c, struct member *from,
                     const struct msg_member *p, size_t n)
{
    from->knows_us = 0;
    for (size_t i = 0; i < n; i++) {
        struct member *m;

        if (strcmp(p[i].node_id, c->cfg.node_id) == 0) {
            from->knows_us = 1;
            continue;
        }
        if (p[i].node_id[0] == '\0' || p[i].peer_url[0] == '\0')
            continue;
        m = cluster_find(c, p[i].node_id);
        if (m == NULL) {
            m = cluster_add(c, p[i].node_id, p[i].peer_url);
            if (m != NULL) {
                CD_LOG_INFO("cluster", "CLUSTER-LEARNED", "node=%s from=%s",
                            m->id, from->id);
                cluster_set_urls(c, m, &p[i]);
            }
        } else if (m->state == MSG_MEMBER_DEAD) {
            cluster_set_urls(c, m, &p[i]);
        }
    }
}

/* ---- heartbeats ---------------------------------------------------------- */

static int
cluster_view_reserve(struct cluster *c, size_t n)
{
    struct msg_member *v;

    if (n <= c->view_cap)
        return 0;
    v = cd_realloc(c->view, n * sizeof(*v));
    if (v == NULL)
        return -1;
    c->view = v;
    c->view_cap = n;
    return 0;
}

static void
cluster_self_view(struct cluster *c, struct msg_member *s)
{
    struct cluster_self self = {0};

    if (c->cfg.self_cb != NULL)
        c->cfg.self_cb(c->cfg.arg, &self);
    memset(s, 0, sizeof(*s));
    s->node_id = c->cfg.node_id;
    s->peer_url = c->cfg.peer_url;
    s->events_url = c->cfg.events_url;
    s->api_url = c->cfg.api_url;
    s->state = MSG_MEMBER_SELF;
    s->workers = self.workers;
    s->free_slots = self.free_slots;
    s->ready = self.ready;
    s->queue_names = self.queue_names;
    s->queue_ready = self.queue_ready;
    s->queues_n = self.queues_n;
    s->serves = self.serves;
    s->serves_n = self.serves_n;
    s->version = CADRE_VERSION;
    s->leader = self.leader != NULL ? self.leader : "";
    s->boot_id = c->cfg.sender->boot_id;
}

/* Fills hb with this node's heartbeat (peers: id and addresses). */
static int
cluster_heartbeat(struct cluster *c, struct msg_heartbeat *hb)
{
    size_t k = 0;

    if (cluster_view_reserve(c, c->n + 1) != 0)
        return -1;
    memset(hb, 0, sizeof(*hb));
    cluster_self_view(c, &hb->self);
    for (size_t i = 0; i < c->n; i++) {
        const struct member *m = c->m[i];

        if (m->id[0] == '\0' || m->state == MSG_MEMBER_NONE)
            continue;
        memset(&c->view[k], 0, sizeof(c->view[k]));
        c->view[k].node_id = m->id;
        c->view[k].peer_url = m->peer_url;
        c->view[k].events_url = m->events_url;
        c->view[k].api_url = m->api_url;
        c->view[k].state = (uint32_t)m->state;
        k++;
    }
    hb->peers = c->view;
    hb->peers_n = k;
    hb->seq = ++c->seq;
    return 0;
}

static void
cluster_publish(struct cluster *c)
{
    struct msg m = {.kind = MSG_HEARTBEAT};

    if (c->cfg.events == NULL || cluster_heartbeat(c, &m.u.heartbeat) != 0)
        return;
    c->st.heartbeats_sent++;
    c->st.bytes_sent += wire_frame_size(&m);
    events_publish_msg(c->cfg.events, c->cfg.sender, &m);
}

static void cluster_hello_send(struct cluster *c, struct member *m);

static void
cluster_on_heartbeat(struct cluster *c, const struct msg_heartbeat *hb)
{
    struct member *m = cluster_learn_self(c, &hb->self);

    if (m == NULL)
        return;
    cluster_learn_gossip(c, m, hb->peers, hb->peers_n);
    if (!m->knows_us)
        cluster_hello_send(c, m);
}

/* Opens a frame from a peer: the node key only, and no replays. */
static int
cluster_open_frame(struct cluster *c, nng_msg *nm, struct msg *out)
{
    struct wire_header hdr;
    cd_err             err;
    int                rc;

    rc = wire_open(c->cfg.ring, nng_msg_body(nm), nng_msg_len(nm),
                   c->cfg.max_frame, &hdr, out, &err);
    if (rc != CADRE_OK || hdr.role != KEYS_ROLE_NODE) {
        if (rc == CADRE_OK)
            msg_free(out);
        if (++c->st.bad_frames <= 10 || c->st.bad_frames % 1000 == 0)
            CD_LOG_WARN("cluster", "CLUSTER-BAD-FRAME",
                        "count=%llu error=\"%s\"",
                        (unsigned long long)c->st.bad_frames,
                        rc != CADRE_OK ? err.msg : "not a node key");
        return CADRE_EAUTH;
    }
    if (c->cfg.replay != NULL &&
        replay_check(c->cfg.replay, &hdr, cd_now_ms()) != REPLAY_FRESH) {
        msg_free(out);
        c->st.replayed++;
        return CADRE_EAUTH;
    }
    return CADRE_OK;
}

static void
cluster_inbox(struct cluster *c)
{
    nng_msg **box;
    size_t    n;

    pthread_mutex_lock(&c->mu);
    n = c->inbox_n;
    box = cd_malloc((n ? n : 1) * sizeof(*box));
    if (box != NULL) {
        memcpy(box, c->inbox, n * sizeof(*box));
        c->inbox_n = 0;
    }
    pthread_mutex_unlock(&c->mu);
    if (box == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        struct msg m;

        memset(&m, 0, sizeof(m));
        c->st.bytes_received += nng_msg_len(box[i]);
        if (cluster_open_frame(c, box[i], &m) == CADRE_OK) {
            if (m.kind == MSG_HEARTBEAT) {
                c->st.heartbeats_received++;
                cluster_on_heartbeat(c, &m.u.heartbeat);
            }
            msg_free(&m);
        }
        nng_msg_free(box[i]);
    }
    cd_free(box);
}

/* ---- requests ------------------------------------------------------------ */

static void
cluster_creq_free(struct cluster *c, struct creq *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else if (c->inflight == q)
        c->inflight = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    if (q->reply != NULL)
        nng_msg_free(q->reply);
    nng_ctx_close(q->ctx);
    nng_aio_free(q->aio);
    cd_free(q);
}

static nng_msg *
cluster_seal(struct cluster *c, const struct msg *m)
{
    size_t   size = wire_frame_size(m), len = 0;
    nng_msg *nm;

    if (size == 0 || size > c->cfg.max_frame || nng_msg_alloc(&nm, size) != 0)
        return NULL;
    if (wire_seal(c->cfg.sender, m, nng_msg_body(nm), size, c->cfg.max_frame,
                  &len) != CADRE_OK) {
        nng_msg_free(nm);
        return NULL;
    }
    nng_msg_chop(nm, size - len);
    return nm;
}

static int
cluster_send(struct cluster *c, struct member *to, const struct msg *m,
             uint64_t timeout_ms, cluster_reply_cb cb, void *arg,
             struct creq **out)
{
    struct creq *q;
    struct msg   copy = *m;
    nng_msg     *nm;

    if (!to->req_open)
        return CADRE_ECLOSED;
    if ((q = cd_calloc(1, sizeof(*q))) == NULL)
        return CADRE_ENOMEM;
    copy.request_id = ++c->next_request_id;
    if ((nm = cluster_seal(c, &copy)) == NULL) {
        cd_free(q);
        return CADRE_ETOOBIG;
    }
    if (nng_aio_alloc(&q->aio, cluster_creq_cb, q) != 0 ||
        nng_ctx_open(&q->ctx, to->req) != 0) {
        nng_aio_free(q->aio);
        nng_msg_free(nm);
        cd_free(q);
        return CADRE_ENOMEM;
    }
    q->c = c;
    q->cb = cb;
    q->arg = arg;
    q->sending = 1;
    snprintf(q->node_id, sizeof(q->node_id), "%s", to->id);
    q->next = c->inflight;
    if (c->inflight != NULL)
        c->inflight->prev = q;
    c->inflight = q;
    c->st.requests++;
    nng_aio_set_timeout(q->aio, (nng_duration)timeout_ms);
    nng_aio_set_msg(q->aio, nm);
    nng_ctx_send(q->ctx, q->aio);
    if (out != NULL)
        *out = q;
    return CADRE_OK;
}

int
cluster_request(struct cluster *c, const char *node_id, const struct msg *m,
                uint64_t timeout_ms, cluster_reply_cb cb, void *arg)
{
    struct member *to = cluster_find(c, node_id);

    if (to == NULL)
        return CADRE_ENOTFOUND;
    if (to->state != MSG_MEMBER_ALIVE && to->state != MSG_MEMBER_SUSPECT)
        return CADRE_ECLOSED;
    return cluster_send(c, to, m, timeout_ms, cb, arg, NULL);
}

static void
cluster_hello_reply(void *arg, void *turn, const char *node_id, int rc,
                    const struct msg *reply)
{
    struct cluster *c = arg;

    (void)turn;
    (void)node_id;
    if (rc == CADRE_OK && reply->kind == MSG_HEARTBEAT)
        cluster_on_heartbeat(c, &reply->u.heartbeat);
}

static void
cluster_hello_send(struct cluster *c, struct member *m)
{
    struct msg   hello = {.kind = MSG_HELLO};
    struct creq *q;
    uint64_t     now = cd_mono_ms();
    uint64_t     wait = 2 * c->cfg.heartbeat_ms;

    if (m->hello_inflight || now < m->next_hello_mono_ms ||
        cluster_heartbeat(c, &hello.u.heartbeat) != 0)
        return;
    wait = wait > CLUSTER_HELLO_MIN_MS ? wait : CLUSTER_HELLO_MIN_MS;
    m->next_hello_mono_ms = now + wait;
    if (cluster_send(c, m, &hello, wait, cluster_hello_reply, c, &q) ==
        CADRE_OK) {
        q->hello_to = m;
        m->hello_inflight = 1;
    }
}

static int
cluster_rc(int rv)
{
    switch (rv) {
    case NNG_ETIMEDOUT:
        return CADRE_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return CADRE_ECLOSED;
    default:
        return CADRE_EIO;
    }
}

/* A seed answered its Hello: it is the node that answered, whatever url it
 * calls itself by (a seed may be given as localhost, a name...). */
static void
cluster_name_seed(struct cluster *c, struct member *seed, const char *id)
{
    if (seed->id[0] != '\0' || id[0] == '\0')
        return;
    if (strcmp(id, c->cfg.node_id) == 0 || cluster_find(c, id) != NULL)
        cluster_remove(c, seed); /* this node, or known already */
    else
        snprintf(seed->id, sizeof(seed->id), "%s", id);
}

static void
cluster_complete(struct cluster *c, struct creq *q, void *turn)
{
    struct msg m;
    int        rc = q->rv == 0 ? CADRE_OK : cluster_rc(q->rv);

    memset(&m, 0, sizeof(m));
    if (q->hello_to != NULL)
        q->hello_to->hello_inflight = 0;
    if (rc == CADRE_OK)
        rc = cluster_open_frame(c, q->reply, &m);
    if (rc == CADRE_OK && q->hello_to != NULL && m.kind == MSG_HEARTBEAT)
        cluster_name_seed(c, q->hello_to, m.u.heartbeat.self.node_id);
    if (rc != CADRE_OK)
        c->st.request_errors++;
    q->cb(q->arg, turn, q->node_id, rc, rc == CADRE_OK ? &m : NULL);
    msg_free(&m);
    cluster_creq_free(c, q);
}

/* Links that closed: the member's requests may hang until it is back. */
static void
cluster_links(struct cluster *c)
{
    uint32_t ids[64];
    size_t   n;

    pthread_mutex_lock(&c->mu);
    n = c->down_n < 64 ? c->down_n : 64;
    if (n == 0) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    memcpy(ids, c->down, n * sizeof(*ids));
    memmove(c->down, c->down + n, (c->down_n - n) * sizeof(*ids));
    c->down_n -= n;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < c->n; j++) {
            struct member *m = c->m[j];

            if (m->req_open && m->id[0] != '\0' &&
                (uint32_t)nng_socket_id(m->req) == ids[i]) {
                CD_LOG_NOTICE("cluster", "CLUSTER-LINK-DOWN", "node=%s", m->id);
                if (c->cfg.link_cb != NULL)
                    c->cfg.link_cb(c->cfg.arg, m->id);
                break;
            }
        }
    }
}

void
cluster_poll(struct cluster *c, void *turn)
{
    struct creq *done;

    if (c == NULL)
        return;
    cluster_inbox(c);
    cluster_links(c);
    pthread_mutex_lock(&c->mu);
    done = c->done;
    c->done = NULL;
    pthread_mutex_unlock(&c->mu);
    while (done != NULL) {
        struct creq *q = done;

        done = q->done_next;
        cluster_complete(c, q, turn);
    }
}

/* ---- timer ----------------------------------------------------------------
 */

static void
cluster_check(struct cluster *c)
{
    uint64_t now = cd_mono_ms();

    for (size_t i = 0; i < c->n; i++) {
        struct member *m = c->m[i];
        uint64_t       age = now - m->heard_mono_ms;

        if (m->id[0] == '\0' || m->heard_mono_ms == 0) {
            cluster_hello_send(c, m); /* a seed, or heard of only */
            continue;
        }
        if (age >= c->cfg.dead_ms)
            cluster_set_state(c, m, MSG_MEMBER_DEAD);
        else if (age >= c->cfg.suspect_ms)
            cluster_set_state(c, m, MSG_MEMBER_SUSPECT);
    }
}

static void
cluster_timer_cb(uv_timer_t *h)
{
    struct cluster *c = h->data;

    cluster_publish(c);
    cluster_check(c);
}

static void
cluster_async_cb(uv_async_t *h)
{
    struct cluster *c = h->data;

    if (c->cfg.ready_cb != NULL)
        c->cfg.ready_cb(c->cfg.arg);
}

/* ---- open and close ------------------------------------------------------ */

static int
cluster_open_sub(struct cluster *c, cd_err *err)
{
    const uint8_t prefix[2] = {WIRE_VERSION, KEYS_ROLE_NODE};
    int           rv;

    if ((rv = nng_sub0_open(&c->sub)) != 0 ||
        (rv = nng_socket_set(c->sub, NNG_OPT_SUB_SUBSCRIBE, prefix,
                             sizeof(prefix))) != 0 ||
        (rv = nng_aio_alloc(&c->sub_aio, cluster_sub_cb, c)) != 0)
        return cd_err_set(err, CADRE_EIO, "cluster: sub socket: %s",
                          nng_strerror(rv));
    nng_socket_set_size(c->sub, NNG_OPT_RECVMAXSZ, c->cfg.max_frame);
    nng_socket_set_ms(c->sub, NNG_OPT_RECONNMINT, CLUSTER_RECONNECT_MIN_MS);
    nng_socket_set_ms(c->sub, NNG_OPT_RECONNMAXT, CLUSTER_RECONNECT_MAX_MS);
    nng_recv_aio(c->sub, c->sub_aio);
    return CADRE_OK;
}

int
cluster_open(struct cluster **out, uv_loop_t *loop,
             const struct cluster_config *cfg, cd_err *err)
{
    struct cluster *c = cd_calloc(1, sizeof(*c));
    int             rc;

    if (c == NULL ||
        (c->inbox = cd_calloc(CLUSTER_INBOX_MAX, sizeof(nng_msg *))) == NULL) {
        cd_free(c);
        return cd_err_set(err, CADRE_ENOMEM, "cluster: out of memory");
    }
    c->cfg = *cfg;
    c->loop = loop;
    pthread_mutex_init(&c->mu, NULL);
    uv_async_init(loop, &c->async, cluster_async_cb);
    c->async.data = c;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    *out = c;
    if ((rc = cluster_open_sub(c, err)) != CADRE_OK)
        return rc;
    for (size_t i = 0; i < cfg->seeds_n; i++)
        if (strcmp(cfg->seeds[i], cfg->peer_url) != 0 &&
            cluster_find_seed(c, cfg->seeds[i]) == NULL)
            cluster_add(c, "", cfg->seeds[i]);
    uv_timer_start(&c->timer, cluster_timer_cb, 0, cfg->heartbeat_ms);
    CD_LOG_NOTICE("cluster", "CLUSTER-OPEN", "node=%s peer=%s seeds=%zu",
                  cfg->node_id, cfg->peer_url, cfg->seeds_n);
    return CADRE_OK;
}

static void
cluster_free_cb(uv_handle_t *h)
{
    struct cluster *c = h->data;

    if (++c->closing == 3) { /* async and timer closed */
        pthread_mutex_destroy(&c->mu);
        cd_free(c);
    }
}

void
cluster_close(struct cluster *c)
{
    if (c == NULL)
        return;
    c->closing = 1;
    atomic_store(&c->stopping, 1);
    uv_timer_stop(&c->timer);
    /* Requests in flight are dropped: their owners are closing too. */
    for (struct creq *q = c->inflight; q != NULL; q = q->next)
        nng_aio_stop(q->aio);
    nng_aio_stop(c->sub_aio);
    while (c->inflight != NULL)
        cluster_creq_free(c, c->inflight);
    for (size_t i = 0; i < c->n; i++)
        cluster_member_free(c->m[i]);
    api_close_socket(c->sub);
    nng_aio_free(c->sub_aio);
    for (size_t i = 0; i < c->inbox_n; i++)
        nng_msg_free(c->inbox[i]);
    cd_free(c->inbox);
    cd_free(c->down);
    cd_free(c->m);
    cd_free(c->view);
    cd_free(c->ids);
    uv_close((uv_handle_t *)&c->async, cluster_free_cb);
    uv_close((uv_handle_t *)&c->timer, cluster_free_cb);
}

/* ---- queries ------------------------------------------------------------- */

void
cluster_hello(struct cluster *c, const struct msg_heartbeat *h,
              struct msg *reply)
{
    struct member *m = cluster_learn_self(c, &h->self);

    if (m != NULL)
        cluster_learn_gossip(c, m, h->peers, h->peers_n);
    memset(reply, 0, sizeof(*reply));
    reply->kind = MSG_HEARTBEAT;
    if (cluster_heartbeat(c, &reply->u.heartbeat) != 0)
        reply->kind = MSG_NONE;
}

size_t
cluster_members(struct cluster *c, const struct msg_member **out)
{
    uint64_t now = cd_mono_ms();
    size_t   k = 1;

    if (cluster_view_reserve(c, c->n + 1) != 0)
        return 0;
    cluster_self_view(c, &c->view[0]);
    for (size_t i = 0; i < c->n; i++) {
        const struct member *m = c->m[i];
        struct msg_member   *v = &c->view[k++];

        memset(v, 0, sizeof(*v));
        v->node_id = m->id;
        v->peer_url = m->peer_url;
        v->events_url = m->events_url;
        v->api_url = m->api_url;
        v->state = (uint32_t)m->state;
        v->last_heard_ms = m->heard_mono_ms ? now - m->heard_mono_ms : 0;
        v->workers = m->workers;
        v->free_slots = m->free_slots;
        v->ready = m->ready;
        v->queue_names = (const char **)m->qnames;
        v->queue_ready = m->qready;
        v->queues_n = m->qn;
        v->version = m->version;
        v->leader = m->leader;
        v->boot_id = m->boot_id;
    }
    *out = c->view;
    return k;
}

static uint64_t
cluster_ready_in(const struct member *m, const char *const *queues, size_t n)
{
    uint64_t sum = 0;

    if (n == 0)
        return m->ready;
    for (size_t i = 0; i < m->qn; i++)
        for (size_t j = 0; j < n; j++)
            if (strcmp(m->qnames[i], queues[j]) == 0)
                sum += m->qready[i];
    return sum;
}

const char *
cluster_pick_victim(struct cluster *c, const char *const *queues,
                    size_t queues_n, uint64_t *ready)
{
    const struct member *best = NULL;
    uint64_t             most = 0;

    for (size_t i = 0; i < c->n; i++) {
        const struct member *m = c->m[i];
        uint64_t             r;

        if (m->state != MSG_MEMBER_ALIVE)
            continue;
        r = cluster_ready_in(m, queues, queues_n);
        if (r > most) {
            most = r;
            best = m;
        }
    }
    *ready = most;
    return best != NULL ? best->id : NULL;
}

size_t
cluster_free_peers(struct cluster *c, const char **ids, uint32_t *free,
                   size_t cap)
{
    size_t k = 0;

    for (size_t i = 0; i < c->n && k < cap; i++) {
        const struct member *m = c->m[i];
        size_t               j;

        if (m->state != MSG_MEMBER_ALIVE || m->free_slots == 0)
            continue;
        /* Insertion by free slots, most first: a handful of members. */
        for (j = k; j > 0 && free[j - 1] < m->free_slots; j--) {
            ids[j] = ids[j - 1];
            free[j] = free[j - 1];
        }
        ids[j] = m->id;
        free[j] = m->free_slots;
        k++;
    }
    return k;
}

size_t
cluster_peer_serves(const struct cluster *c, const char *node_id,
                    const char *const **names)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->m[i]->id, node_id) == 0) {
            *names = (const char *const *)c->m[i]->serves;
            return c->m[i]->serves_n;
        }
    }
    *names = NULL;
    return 0;
}

int
cluster_alive(const struct cluster *c, const char *node_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->m[i]->id, node_id) == 0)
            return c->m[i]->state == MSG_MEMBER_ALIVE ||
                   c->m[i]->state == MSG_MEMBER_SUSPECT;
    return 0;
}

void
cluster_get_stats(const struct cluster *c, struct cluster_stats *st)
{
    *st = c->st;
    st->members = c->n;
    st->alive = 0;
    for (size_t i = 0; i < c->n; i++)
        st->alive += c->m[i]->state == MSG_MEMBER_ALIVE;
}
