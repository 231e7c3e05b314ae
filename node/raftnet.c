/* raftnet.c: libraft's transport with a mutual challenge-response before a
 * stream is handed over (the handshake is in raftnet.h). One handshake
 * object per connection in either direction; it reads exactly the bytes the
 * handshake needs (the alloc callback never offers more), so libraft starts
 * reading at the first raft byte. It does not frame, seal or retry raft
 * traffic: libraft's uv backend does the retrying. */
#include "node/raftnet.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/err.h"
#include "common/log.h"
#include "crypto/auth.h"

#define RAFTNET_MAGIC "CDRF"
#define RAFTNET_MAGIC_LEN 4
#define RAFTNET_NONCE_LEN 32
/* Message 1 without the address: magic, version, nonce, id, length. */
#define RAFTNET_HELLO_LEN (RAFTNET_MAGIC_LEN + 1 + RAFTNET_NONCE_LEN + 8 + 2)
/* Message 2: nonce, id, MAC. */
#define RAFTNET_REPLY_LEN (RAFTNET_NONCE_LEN + 8 + AUTH_MAC_LEN)
#define RAFTNET_FINISH_LEN AUTH_MAC_LEN
#define RAFTNET_TRANSCRIPT_MAX                                                 \
    (RAFTNET_HELLO_LEN + RAFTNET_ADDRESS_MAX + RAFTNET_REPLY_LEN +             \
     RAFTNET_FINISH_LEN)
/* crypto_kdf context of the handshake key: a new handshake version that
 * changes what is MACed gets a new purpose. */
#define RAFTNET_PURPOSE "cdraftv1"
#define RAFTNET_BACKLOG 128

_Static_assert(sizeof(RAFTNET_PURPOSE) - 1 == AUTH_PURPOSE_LEN, "purpose");
_Static_assert(RAFTNET_ADDRESS_MAX <= UINT16_MAX, "address length field");

#define RAFTNET_ASSERT(c)                                                      \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,         \
                    __LINE__, #c);                                             \
            abort();                                                           \
        }                                                                      \
    } while (0)

enum raftnet_step {
    RAFTNET_HELLO = 1, /* server: reading message 1 without the address */
    RAFTNET_ADDRESS,   /* server: reading the claimed address */
    RAFTNET_FINISH,    /* server: message 2 sent, reading message 3 */
    RAFTNET_CONNECT,   /* client: TCP connect in flight */
    RAFTNET_REPLY,     /* client: message 1 sent, reading message 2 */
    RAFTNET_SENDING,   /* client: writing message 3 */
    RAFTNET_DONE,      /* the stream was handed over */
    RAFTNET_FAILED,    /* handles closing */
};

struct raftnet;

struct raftnet_hs {
    struct raftnet         *rn;
    struct raftnet_hs      *prev, *next; /* rn->pending while not DONE/FAILED */
    int                     outgoing;
    int                     step;
    int                     handles;  /* of tcp and timer, not yet closed */
    int                     wrote;    /* our first message's write completed */
    int                     verified; /* server: message 3 verified */
    int                     status;   /* client: for cb when the tcp closes */
    uv_tcp_t               *tcp;      /* raft_malloc: libraft raft_frees it */
    uv_timer_t              timer;
    uv_connect_t            connect;
    uv_write_t              write_first; /* message 1 or 2 */
    uv_write_t              write_finish;
    size_t                  hello_len; /* message 1 with its address */
    size_t                  have;      /* transcript bytes filled */
    size_t                  want; /* transcript bytes the current read needs */
    raft_id                 peer_id; /* claimed (server) or expected (client) */
    char                    peer_address[RAFTNET_ADDRESS_MAX + 1];
    struct raft_uv_connect *req;
    raft_uv_connect_cb      cb;
    uint8_t                 tx[RAFTNET_TRANSCRIPT_MAX];
};

struct raftnet {
    struct raft_uv_transport  *t;
    uv_loop_t                 *loop;
    keys_key                   mac_key;
    raft_id                    id;
    char                       address[RAFTNET_ADDRESS_MAX + 1];
    char                       bind[RAFTNET_ADDRESS_MAX + 1];
    uv_tcp_t                   listener;
    int                        listener_open; /* until its close cb */
    int                        port;
    int                        closing;
    raft_uv_accept_cb          accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct raftnet_hs         *pending;
    unsigned                   incoming_n; /* server handshakes pending */
    unsigned                   live_n;     /* handshake objects not freed */
    unsigned                   handshake_ms;
    struct raftnet_stats       stats;
};

/* ---- addresses ---- */

/* Parses "a.b.c.d:port" or "[v6]:port" (no names: resolving would block
 * the loop or need another async step; raft addresses are configured). */
static int
raftnet_parse(const char *s, struct sockaddr_storage *out)
{
    char        host[RAFTNET_ADDRESS_MAX + 1];
    const char *colon = strrchr(s, ':');
    char       *end;
    long        port;
    size_t      n;

    if (colon == NULL || colon == s || colon[1] == '\0')
        return RAFT_INVALID;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return RAFT_INVALID;
    n = (size_t)(colon - s);
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']')
            return RAFT_INVALID;
        s++;
        n -= 2;
    }
    if (n >= sizeof(host))
        return RAFT_INVALID;
    memcpy(host, s, n);
    host[n] = '\0';
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return RAFT_INVALID;
}

/* A claimed address goes into libraft's configuration lookups and logs:
 * printable ASCII without spaces only. */
static int
raftnet_address_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > RAFTNET_ADDRESS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
    return 1;
}

static void
raftnet_peer_name(struct raftnet_hs *hs, char *buf, size_t len)
{
    struct sockaddr_storage sa;
    int                     sa_len = (int)sizeof(sa);
    char                    ip[64] = "?";
    int                     port = 0;

    if (hs->outgoing || hs->tcp == NULL ||
        uv_tcp_getpeername(hs->tcp, (struct sockaddr *)&sa, &sa_len) != 0) {
        snprintf(buf, len, "%s%s", hs->outgoing ? "" : "claimed:",
                 hs->peer_address[0] ? hs->peer_address : "?");
        return;
    }
    if (sa.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&sa, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    } else if (sa.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&sa, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    }
    snprintf(buf, len, "%s:%d", ip, port);
}

/* ---- handshake object lifecycle ---- */

static void
raftnet_maybe_closed(struct raftnet *rn)
{
    raft_uv_transport_close_cb cb = rn->close_cb;

    if (!rn->closing || rn->live_n > 0 || rn->listener_open || cb == NULL)
        return;
    rn->close_cb = NULL;
    cb(rn->t); /* may free rn (raftnet_close) */
}

static void
raftnet_unlink(struct raftnet_hs *hs)
{
    struct raftnet *rn = hs->rn;

    if (hs->prev != NULL)
        hs->prev->next = hs->next;
    else
        rn->pending = hs->next;
    if (hs->next != NULL)
        hs->next->prev = hs->prev;
    hs->prev = hs->next = NULL;
    if (!hs->outgoing)
        rn->incoming_n--;
}

/* Drops one handle reference; the object goes with the last one, and the
 * transport's close callback may follow, so nothing is touched after. */
static void
raftnet_release(struct raftnet_hs *hs)
{
    struct raftnet *rn = hs->rn;

    if (--hs->handles > 0)
        return;
    cd_free(hs);
    rn->live_n--;
    raftnet_maybe_closed(rn);
}

static void
raftnet_timer_close_cb(uv_handle_t *h)
{
    raftnet_release(h->data);
}

static void
raftnet_tcp_close_cb(uv_handle_t *h)
{
    struct raftnet_hs *hs = h->data;

    raft_free(h);
    hs->tcp = NULL;
    /* libuv has run every connect and write callback of this handle by
     * now, so this is the one place the request completes. */
    if (hs->outgoing && hs->cb != NULL)
        hs->cb(hs->req, NULL, hs->status);
    raftnet_release(hs);
}

static void raftnet_timer_cb(uv_timer_t *timer);

static struct raftnet_hs *
raftnet_hs_new(struct raftnet *rn, int outgoing)
{
    struct raftnet_hs *hs = cd_calloc(1, sizeof(*hs));

    if (hs == NULL)
        return NULL;
    hs->tcp = raft_malloc(sizeof(*hs->tcp));
    if (hs->tcp == NULL) {
        cd_free(hs);
        return NULL;
    }
    hs->rn = rn;
    hs->outgoing = outgoing;
    uv_tcp_init(rn->loop, hs->tcp); /* cannot fail for AF_UNSPEC */
    uv_timer_init(rn->loop, &hs->timer);
    hs->tcp->data = hs;
    hs->timer.data = hs;
    hs->handles = 2;
    hs->next = rn->pending;
    if (rn->pending != NULL)
        rn->pending->prev = hs;
    rn->pending = hs;
    rn->live_n++;
    if (!outgoing)
        rn->incoming_n++;
    uv_timer_start(&hs->timer, raftnet_timer_cb, rn->handshake_ms, 0);
    return hs;
}

/* Ends a handshake that will not complete: both handles are closed, the
 * client's callback fires from the tcp close callback. counter may be NULL
 * (cancelled by close, not the peer's fault). */
static void
raftnet_fail(struct raftnet_hs *hs, uint64_t *counter, const char *why)
{
    struct raftnet *rn = hs->rn;
    char            peer[RAFTNET_ADDRESS_MAX + 64];

    if (hs->step == RAFTNET_FAILED || hs->step == RAFTNET_DONE)
        return;
    if (counter != NULL) {
        (*counter)++;
        raftnet_peer_name(hs, peer, sizeof(peer));
        CD_LOG_WARN("raftnet", "RAFTNET-REFUSED", "dir=%s peer=%s reason=%s",
                    hs->outgoing ? "out" : "in", peer, why);
    }
    raftnet_unlink(hs);
    hs->step = RAFTNET_FAILED;
    hs->status = rn->closing ? RAFT_CANCELED : RAFT_NOCONNECTION;
    uv_close((uv_handle_t *)hs->tcp, raftnet_tcp_close_cb);
    uv_close((uv_handle_t *)&hs->timer, raftnet_timer_close_cb);
}

/* Gives the stream away: from here on it is libraft's, and only the timer
 * keeps this object alive. Returns the stream. */
static uv_stream_t *
raftnet_hand_over(struct raftnet_hs *hs)
{
    uv_stream_t *stream = (uv_stream_t *)hs->tcp;

    uv_read_stop(stream);
    raftnet_unlink(hs);
    hs->step = RAFTNET_DONE;
    hs->tcp = NULL;
    hs->handles--; /* the tcp handle is no longer ours to close */
    stream->data = NULL;
    uv_close((uv_handle_t *)&hs->timer, raftnet_timer_close_cb);
    return stream;
}

static void
raftnet_timer_cb(uv_timer_t *timer)
{
    struct raftnet_hs *hs = timer->data;

    raftnet_fail(hs, &hs->rn->stats.timeouts, "timeout");
}

/* ---- reading exactly the handshake ---- */

static void raftnet_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void
raftnet_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct raftnet_hs *hs = h->data;

    (void)suggested;
    /* Never more than the current message: bytes past the handshake stay
     * in the socket for libraft. A zero length makes libuv report
     * UV_ENOBUFS, which fails the handshake. */
    buf->base = (char *)hs->tx + hs->have;
    buf->len = hs->want - hs->have;
}

static int
raftnet_read(struct raftnet_hs *hs, size_t want)
{
    hs->want = want;
    return uv_read_start((uv_stream_t *)hs->tcp, raftnet_alloc_cb,
                         raftnet_read_cb);
}

static void
raftnet_first_write_cb(uv_write_t *w, int status)
{
    struct raftnet_hs *hs = w->data;

    if (hs->step == RAFTNET_FAILED)
        return; /* closing; the close callbacks finish the job */
    if (status != 0) {
        raftnet_fail(hs, &hs->rn->stats.bad_proto, uv_strerror(status));
        return;
    }
    hs->wrote = 1;
    if (!hs->outgoing && hs->verified) {
        struct raftnet *rn = hs->rn;
        rn->stats.accepted++;
        rn->accept_cb(rn->t, hs->peer_id, hs->peer_address,
                      raftnet_hand_over(hs));
    }
}

static int
raftnet_write(struct raftnet_hs *hs, uv_write_t *w, size_t off, size_t len,
              uv_write_cb cb)
{
    uv_buf_t buf = uv_buf_init((char *)hs->tx + off, (unsigned)len);

    w->data = hs;
    return uv_write(w, (uv_stream_t *)hs->tcp, &buf, 1, cb);
}

/* ---- server side ---- */

static void
raftnet_server_hello(struct raftnet_hs *hs)
{
    const uint8_t *p = hs->tx;
    size_t         address_len;

    if (memcmp(p, RAFTNET_MAGIC, RAFTNET_MAGIC_LEN) != 0 ||
        p[RAFTNET_MAGIC_LEN] != RAFTNET_VERSION) {
        raftnet_fail(hs, &hs->rn->stats.bad_proto, "magic or version");
        return;
    }
    hs->peer_id = cd_get_u64be(p + RAFTNET_MAGIC_LEN + 1 + RAFTNET_NONCE_LEN);
    address_len = cd_get_u16be(p + RAFTNET_HELLO_LEN - 2);
    if (address_len == 0 || address_len > RAFTNET_ADDRESS_MAX) {
        raftnet_fail(hs, &hs->rn->stats.bad_proto, "address length");
        return;
    }
    hs->hello_len = RAFTNET_HELLO_LEN + address_len;
    hs->step = RAFTNET_ADDRESS;
    hs->want = hs->hello_len;
}

/* Message 1 is complete: answer with our nonce, id and MAC, then wait for
 * the client's MAC. The claimed id and address are only remembered here;
 * they count once message 3 proves the client holds the key. */
static void
raftnet_server_reply(struct raftnet_hs *hs)
{
    struct raftnet *rn = hs->rn;
    uint8_t        *r = hs->tx + hs->hello_len;
    size_t          address_len = hs->hello_len - RAFTNET_HELLO_LEN;
    int             rv;

    if (!raftnet_address_ok(hs->tx + RAFTNET_HELLO_LEN, address_len)) {
        raftnet_fail(hs, &rn->stats.bad_proto, "address bytes");
        return;
    }
    if (hs->peer_id == 0 || hs->peer_id == rn->id) {
        raftnet_fail(hs, &rn->stats.bad_id, "claimed id 0 or ours");
        return;
    }
    memcpy(hs->peer_address, hs->tx + RAFTNET_HELLO_LEN, address_len);
    hs->peer_address[address_len] = '\0';
    auth_random(r, RAFTNET_NONCE_LEN);
    cd_put_u64be(r + RAFTNET_NONCE_LEN, rn->id);
    auth_mac(&rn->mac_key, "server", hs->tx, hs->hello_len + 40, r + 40);
    hs->have = hs->hello_len + RAFTNET_REPLY_LEN;
    hs->want = hs->have + RAFTNET_FINISH_LEN;
    hs->step = RAFTNET_FINISH;
    rv = raftnet_write(hs, &hs->write_first, hs->hello_len, RAFTNET_REPLY_LEN,
                       raftnet_first_write_cb);
    if (rv != 0)
        raftnet_fail(hs, &rn->stats.bad_proto, uv_strerror(rv));
}

static void
raftnet_server_finish(struct raftnet_hs *hs)
{
    struct raftnet *rn = hs->rn;
    size_t          signed_len = hs->hello_len + RAFTNET_REPLY_LEN;

    uv_read_stop((uv_stream_t *)hs->tcp);
    if (auth_verify(&rn->mac_key, "client", hs->tx, signed_len,
                    hs->tx + signed_len) != CADRE_OK) {
        raftnet_fail(hs, &rn->stats.bad_auth, "client mac");
        return;
    }
    hs->verified = 1;
    if (!hs->wrote)
        return; /* raftnet_first_write_cb hands it over */
    rn->stats.accepted++;
    rn->accept_cb(rn->t, hs->peer_id, hs->peer_address, raftnet_hand_over(hs));
}

/* ---- client side ---- */

static void
raftnet_finish_write_cb(uv_write_t *w, int status)
{
    struct raftnet_hs *hs = w->data;
    struct raftnet    *rn = hs->rn;

    if (hs->step == RAFTNET_FAILED)
        return;
    if (status != 0) {
        raftnet_fail(hs, &rn->stats.bad_proto, uv_strerror(status));
        return;
    }
    rn->stats.connected++;
    hs->cb(hs->req, raftnet_hand_over(hs), 0);
}

/* Message 2 is complete: the server must prove the key and be the raft id
 * this connect was for; then we prove the key over the whole transcript. */
static void
raftnet_client_reply(struct raftnet_hs *hs)
{
    struct raftnet *rn = hs->rn;
    uint8_t        *r = hs->tx + hs->hello_len;
    int             rv;

    uv_read_stop((uv_stream_t *)hs->tcp);
    if (auth_verify(&rn->mac_key, "server", hs->tx, hs->hello_len + 40,
                    r + 40) != CADRE_OK) {
        raftnet_fail(hs, &rn->stats.bad_auth, "server mac");
        return;
    }
    if (cd_get_u64be(r + RAFTNET_NONCE_LEN) != hs->peer_id) {
        raftnet_fail(hs, &rn->stats.bad_id, "server id is not the one wanted");
        return;
    }
    auth_mac(&rn->mac_key, "client", hs->tx, hs->hello_len + RAFTNET_REPLY_LEN,
             r + RAFTNET_REPLY_LEN);
    hs->step = RAFTNET_SENDING;
    rv = raftnet_write(hs, &hs->write_finish, hs->hello_len + RAFTNET_REPLY_LEN,
                       RAFTNET_FINISH_LEN, raftnet_finish_write_cb);
    if (rv != 0)
        raftnet_fail(hs, &rn->stats.bad_proto, uv_strerror(rv));
}

static void
raftnet_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct raftnet_hs *hs = s->data;

    (void)b;
    if (nread == 0)
        return; /* EAGAIN */
    if (nread < 0) {
        raftnet_fail(hs, &hs->rn->stats.bad_proto,
                     nread == UV_EOF ? "eof" : uv_strerror((int)nread));
        return;
    }
    hs->have += (size_t)nread;
    if (hs->have < hs->want)
        return;
    switch (hs->step) {
    case RAFTNET_HELLO:
        raftnet_server_hello(hs);
        break;
    case RAFTNET_ADDRESS:
        raftnet_server_reply(hs);
        break;
    case RAFTNET_FINISH:
        raftnet_server_finish(hs);
        break;
    case RAFTNET_REPLY:
        raftnet_client_reply(hs);
        break;
    default:
        raftnet_fail(hs, &hs->rn->stats.bad_proto, "unexpected bytes");
        break;
    }
}

static void
raftnet_connect_cb(uv_connect_t *c, int status)
{
    struct raftnet_hs *hs = c->data;
    struct raftnet    *rn = hs->rn;
    int                rv;

    if (hs->step == RAFTNET_FAILED)
        return;
    if (status != 0) {
        rn->stats.connect_fail++;
        raftnet_fail(hs, NULL, uv_strerror(status));
        return;
    }
    hs->step = RAFTNET_REPLY;
    rv = raftnet_write(hs, &hs->write_first, 0, hs->hello_len,
                       raftnet_first_write_cb);
    if (rv == 0)
        rv = raftnet_read(hs, hs->hello_len + RAFTNET_REPLY_LEN);
    if (rv != 0)
        raftnet_fail(hs, &rn->stats.bad_proto, uv_strerror(rv));
}

static void
raftnet_compose_hello(struct raftnet_hs *hs)
{
    struct raftnet *rn = hs->rn;
    size_t          address_len = strlen(rn->address);
    uint8_t        *p = hs->tx;

    memcpy(p, RAFTNET_MAGIC, RAFTNET_MAGIC_LEN);
    p[RAFTNET_MAGIC_LEN] = RAFTNET_VERSION;
    auth_random(p + RAFTNET_MAGIC_LEN + 1, RAFTNET_NONCE_LEN);
    cd_put_u64be(p + RAFTNET_MAGIC_LEN + 1 + RAFTNET_NONCE_LEN, rn->id);
    cd_put_u16be(p + RAFTNET_HELLO_LEN - 2, (uint16_t)address_len);
    memcpy(p + RAFTNET_HELLO_LEN, rn->address, address_len);
    hs->hello_len = RAFTNET_HELLO_LEN + address_len;
    hs->have = hs->hello_len;
}

/* ---- the vtable ---- */

static int
raftnet_t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct raftnet *rn = t->impl;

    if (id == 0 || address == NULL || address[0] == '\0' ||
        strlen(address) > RAFTNET_ADDRESS_MAX ||
        !raftnet_address_ok((const uint8_t *)address, strlen(address))) {
        snprintf(t->errmsg, sizeof(t->errmsg), "raftnet: bad id or address");
        return RAFT_INVALID;
    }
    rn->id = id;
    snprintf(rn->address, sizeof(rn->address), "%s", address);
    /* The listener exists from here on, so close always has a handle to
     * close and always calls back asynchronously. */
    uv_tcp_init(rn->loop, &rn->listener);
    rn->listener.data = rn;
    rn->listener_open = 1;
    return 0;
}

/* The incoming handshake waiting longest (the list is newest first).
 * Dropping it rather than the newcomer means silent connections cannot
 * lock out a real peer, whose handshake takes a round trip. */
static struct raftnet_hs *
raftnet_oldest_incoming(struct raftnet *rn)
{
    struct raftnet_hs *oldest = NULL;

    for (struct raftnet_hs *hs = rn->pending; hs != NULL; hs = hs->next)
        if (!hs->outgoing)
            oldest = hs;
    return oldest;
}

static void
raftnet_listen_cb(uv_stream_t *server, int status)
{
    struct raftnet    *rn = server->data;
    struct raftnet_hs *hs;
    int                rv;

    if (status != 0) {
        CD_LOG_WARN("raftnet", "RAFTNET-ACCEPT", "error=%s",
                    uv_strerror(status));
        return;
    }
    hs = raftnet_hs_new(rn, 0);
    if (hs == NULL) {
        CD_LOG_ERR("raftnet", "RAFTNET-NOMEM", "handshake alloc failed");
        return;
    }
    rv = uv_accept(server, (uv_stream_t *)hs->tcp);
    if (rv != 0) {
        raftnet_fail(hs, &rn->stats.bad_proto, uv_strerror(rv));
        return;
    }
    if (rn->incoming_n > RAFTNET_PENDING_MAX)
        raftnet_fail(raftnet_oldest_incoming(rn), &rn->stats.busy,
                     "too many handshakes, oldest dropped");
    hs->step = RAFTNET_HELLO;
    rv = raftnet_read(hs, RAFTNET_HELLO_LEN);
    if (rv != 0)
        raftnet_fail(hs, &rn->stats.bad_proto, uv_strerror(rv));
}

static int
raftnet_t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct raftnet         *rn = t->impl;
    const char             *at = rn->bind[0] ? rn->bind : rn->address;
    struct sockaddr_storage sa;
    int                     sa_len = (int)sizeof(sa);
    int                     rv;

    rn->accept_cb = cb;
    if (raftnet_parse(at, &sa) != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg), "raftnet: bad address %.64s",
                 at);
        return RAFT_INVALID;
    }
    rv = uv_tcp_bind(&rn->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&rn->listener, RAFTNET_BACKLOG,
                       raftnet_listen_cb);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof(t->errmsg), "raftnet: listen %.64s: %s", at,
                 uv_strerror(rv));
        return RAFT_IOERR;
    }
    rv = uv_tcp_getsockname(&rn->listener, (struct sockaddr *)&sa, &sa_len);
    if (rv == 0)
        rn->port = ntohs(sa.ss_family == AF_INET
                             ? ((struct sockaddr_in *)&sa)->sin_port
                             : ((struct sockaddr_in6 *)&sa)->sin6_port);
    return 0;
}

static int
raftnet_t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                  raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct raftnet         *rn = t->impl;
    struct raftnet_hs      *hs;
    struct sockaddr_storage sa;
    int                     rv;

    if (rn->closing)
        return RAFT_CANCELED;
    if (id == 0 || raftnet_parse(address, &sa) != 0)
        return RAFT_NOCONNECTION;
    hs = raftnet_hs_new(rn, 1);
    if (hs == NULL)
        return RAFT_NOMEM;
    hs->peer_id = id;
    snprintf(hs->peer_address, sizeof(hs->peer_address), "%s", address);
    hs->step = RAFTNET_CONNECT;
    raftnet_compose_hello(hs);
    hs->connect.data = hs;
    rv = uv_tcp_connect(&hs->connect, hs->tcp, (struct sockaddr *)&sa,
                        raftnet_connect_cb);
    if (rv != 0) {
        /* The contract: an error return and no callback. */
        rn->stats.connect_fail++;
        raftnet_fail(hs, NULL, uv_strerror(rv));
        return RAFT_NOCONNECTION;
    }
    hs->req = req;
    hs->cb = cb;
    req->cb = cb;
    return 0;
}

static void
raftnet_listener_close_cb(uv_handle_t *h)
{
    struct raftnet *rn = h->data;

    rn->listener_open = 0;
    raftnet_maybe_closed(rn);
}

static void
raftnet_t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct raftnet *rn = t->impl;

    RAFTNET_ASSERT(!rn->closing);
    rn->closing = 1;
    rn->close_cb = cb;
    while (rn->pending != NULL)
        raftnet_fail(rn->pending, NULL, "transport closing");
    if (rn->listener_open)
        uv_close((uv_handle_t *)&rn->listener, raftnet_listener_close_cb);
    else if (rn->live_n == 0) {
        /* Never initialised: nothing to wait for. */
        rn->close_cb = NULL;
        cb(t);
    }
}

/* ---- public ---- */

int
raftnet_init(struct raft_uv_transport *t, uv_loop_t *loop,
             const keys_key *node_key, const char *bind_address)
{
    struct raftnet *rn;

    memset(t, 0, sizeof(*t));
    if (bind_address != NULL && strlen(bind_address) > RAFTNET_ADDRESS_MAX)
        return CADRE_EINVAL;
    rn = cd_calloc(1, sizeof(*rn));
    if (rn == NULL)
        return CADRE_ENOMEM;
    rn->t = t;
    rn->loop = loop;
    rn->handshake_ms = RAFTNET_HANDSHAKE_MS;
    auth_derive(node_key, RAFTNET_PURPOSE, &rn->mac_key);
    if (bind_address != NULL)
        snprintf(rn->bind, sizeof(rn->bind), "%s", bind_address);
    t->impl = rn;
    t->init = raftnet_t_init;
    t->listen = raftnet_t_listen;
    t->connect = raftnet_t_connect;
    t->close = raftnet_t_close;
    return CADRE_OK;
}

void
raftnet_close(struct raft_uv_transport *t)
{
    struct raftnet *rn = t->impl;

    if (rn == NULL)
        return;
    /* Freeing with handles open would leave libuv pointing at freed
     * memory: a caller bug, not a runtime condition. */
    RAFTNET_ASSERT(!rn->listener_open && rn->live_n == 0);
    keys_wipe(&rn->mac_key);
    cd_free(rn);
    t->impl = NULL;
}

int
raftnet_port(const struct raft_uv_transport *t)
{
    const struct raftnet *rn = t->impl;

    return rn != NULL ? rn->port : 0;
}

void
raftnet_stats(const struct raft_uv_transport *t, struct raftnet_stats *out)
{
    const struct raftnet *rn = t->impl;

    if (rn != NULL)
        *out = rn->stats;
    else
        memset(out, 0, sizeof(*out));
}

void
raftnet_set_handshake_ms(struct raft_uv_transport *t, unsigned handshake_ms)
{
    struct raftnet *rn = t->impl;

    rn->handshake_ms = handshake_ms;
}
