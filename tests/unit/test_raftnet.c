/* test_raftnet.c: cadre's raft transport (node/raftnet.c) on one loop over
 * loopback: a good handshake hands both streams over and bytes flow; a
 * wrong key, a wrong server id, garbage, a huge length, a truncated or
 * silent client never reach accept_cb and the listener keeps serving;
 * close with handshakes in flight calls every callback. Last, three libraft
 * instances elect a leader and commit an entry through it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/bytes.h"
#include "crypto/auth.h"
#include "crypto/keys.h"
#include "node/raftnet.h"
#include "tests/lib/tap.h"

/* ---- a loop with deadlines ---- */

static void
test_tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs loop until *flag is non-zero or ms pass; returns *flag. */
static int
test_run_until(uv_loop_t *loop, const int *flag, unsigned ms)
{
    uv_timer_t tick;
    uint64_t   end = uv_hrtime() + (uint64_t)ms * 1000000u;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, test_tick_cb, 5, 5);
    while (!*flag && uv_hrtime() < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static void
test_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "  open handle type %d\n", (int)h->type);
}

/* Closes the loop; a handle left open is a leak in the transport. */
static int
test_loop_close(uv_loop_t *loop)
{
    for (int i = 0; i < 100 && uv_loop_alive(loop); i++)
        uv_run(loop, UV_RUN_NOWAIT);
    if (uv_loop_close(loop) != 0) {
        uv_walk(loop, test_walk_cb, NULL);
        return -1;
    }
    return 0;
}

/* ---- a transport under test, outside libraft ---- */

struct test_net {
    struct raft_uv_transport t;
    uv_loop_t               *loop;
    int                      accepts;
    raft_id                  accept_id;
    char                     accept_address[300];
    uv_stream_t             *accepted;
    int                      closed;
};

static void
test_stream_free_cb(uv_handle_t *h)
{
    raft_free(h);
}

static void
test_accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
               uv_stream_t *stream)
{
    struct test_net *n = t->data;

    n->accepts++;
    n->accept_id = id;
    snprintf(n->accept_address, sizeof(n->accept_address), "%s", address);
    if (n->accepted != NULL)
        uv_close((uv_handle_t *)n->accepted, test_stream_free_cb);
    n->accepted = stream;
}

static void
test_net_closed_cb(struct raft_uv_transport *t)
{
    struct test_net *n = t->data;

    n->closed = 1;
    raftnet_close(t);
}

static void
test_net_open(struct test_net *n, uv_loop_t *loop, const keys_key *k,
              raft_id id, const char *address, const char *bind)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    if (raftnet_init(&n->t, loop, k, bind) != CADRE_OK) {
        fprintf(stderr, "raftnet_init failed\n");
        exit(1);
    }
    n->t.data = n;
    if (n->t.init(&n->t, id, address) != 0) {
        fprintf(stderr, "init failed\n");
        exit(1);
    }
}

static int
test_net_listen(struct test_net *n)
{
    if (n->t.listen(&n->t, test_accept_cb) != 0)
        return -1;
    return raftnet_port(&n->t);
}

static void
test_net_close(struct test_net *n)
{
    if (n->accepted != NULL)
        uv_close((uv_handle_t *)n->accepted, test_stream_free_cb);
    n->accepted = NULL;
    n->t.close(&n->t, test_net_closed_cb);
    test_run_until(n->loop, &n->closed, 2000);
}

struct test_conn {
    struct raft_uv_connect req;
    int                    done;
    int                    status;
    uv_stream_t           *stream;
};

static void
test_connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct test_conn *c = req->data;

    c->done++;
    c->status = status;
    c->stream = stream;
}

static int
test_connect(struct test_net *n, struct test_conn *c, raft_id id, int port)
{
    char address[64];

    memset(c, 0, sizeof(*c));
    c->req.data = c;
    snprintf(address, sizeof(address), "127.0.0.1:%d", port);
    return n->t.connect(&n->t, &c->req, id, address, test_connect_cb);
}

static void
test_conn_drop(struct test_conn *c)
{
    if (c->stream != NULL)
        uv_close((uv_handle_t *)c->stream, test_stream_free_cb);
    c->stream = NULL;
}

/* ---- bytes over the handed-over streams ---- */

struct test_read {
    char buf[64];
    int  n;
    int  full;
};

static void
test_read_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct test_read *r = h->data;

    (void)suggested;
    buf->base = r->buf + r->n;
    buf->len = sizeof(r->buf) - 1 - (size_t)r->n;
}

static void
test_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct test_read *r = s->data;

    (void)buf;
    if (nread > 0)
        r->n += (int)nread;
    if (r->n >= 5)
        r->full = 1;
}

static int
test_pass_bytes(uv_loop_t *loop, uv_stream_t *from, uv_stream_t *to)
{
    static char      hello[] = "hello";
    uv_write_t       w;
    uv_buf_t         b = uv_buf_init(hello, 5);
    struct test_read r = {0};

    to->data = &r;
    uv_read_start(to, test_read_alloc, test_read_cb);
    if (uv_write(&w, from, &b, 1, NULL) != 0)
        return -1;
    test_run_until(loop, &r.full, 2000);
    uv_read_stop(to);
    return r.full && memcmp(r.buf, "hello", 5) == 0 ? 0 : -1;
}

/* ---- raw peers (blocking sockets: the kernel finishes the TCP
 * handshake from the backlog, small writes fit in its buffers) ---- */

static int
test_raw_connect(int port)
{
    struct sockaddr_in sa = {0};
    int                fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static void
test_raw_send(int fd, const void *p, size_t n)
{
    if (send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n) {
        perror("send");
        exit(1);
    }
}

/* 1 if the server closed fd (EOF or reset), after running the loop. */
static int
test_raw_closed(uv_loop_t *loop, int fd)
{
    char buf[256];

    for (int i = 0; i < 200; i++) {
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return 1;
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    return 0;
}

static size_t
test_hello(uint8_t *p, uint64_t id, const char *address)
{
    size_t n = strlen(address);

    memcpy(p, "CDRF", 4);
    p[4] = RAFTNET_VERSION;
    memset(p + 5, 0xab, 32);
    cd_put_u64be(p + 37, id);
    cd_put_u16be(p + 45, (uint16_t)n);
    memcpy(p + 47, address, n);
    return 47 + n;
}

/* ---- fixtures ---- */

static keys_key test_key, test_other_key;

static void
test_keys(void)
{
    keys_key master;

    keys_init();
    keys_generate(&master);
    keys_derive(&master, KEYS_ROLE_NODE, &test_key);
    keys_generate(&master);
    keys_derive(&master, KEYS_ROLE_NODE, &test_other_key);
}

/* A good connection from a fresh client (id 2) to srv (id 1) works. */
static int
test_good_connection(uv_loop_t *loop, struct test_net *srv, int port)
{
    struct test_net  cli;
    struct test_conn c;
    int              before = srv->accepts, ok;

    test_net_open(&cli, loop, &test_key, 2, "127.0.0.1:7702", NULL);
    if (test_connect(&cli, &c, 1, port) != 0)
        return 0;
    test_run_until(loop, &c.done, 3000);
    ok = c.done == 1 && c.status == 0 && srv->accepts == before + 1 &&
         srv->accept_id == 2;
    test_conn_drop(&c);
    test_net_close(&cli);
    return ok;
}

/* ---- tests ---- */

TEST(auth_mac_binds_key_label_and_bytes)
{
    uint8_t  msg[40], mac[AUTH_MAC_LEN], mac2[AUTH_MAC_LEN];
    keys_key k1, k2, k3;

    memset(msg, 7, sizeof(msg));
    auth_derive(&test_key, "cdraftv1", &k1);
    auth_derive(&test_key, "cdotherx", &k2);
    auth_derive(&test_other_key, "cdraftv1", &k3);
    CHECK(memcmp(k1.b, test_key.b, KEYS_LEN) != 0);
    CHECK(memcmp(k1.b, k2.b, KEYS_LEN) != 0);
    auth_mac(&k1, "server", msg, sizeof(msg), mac);
    CHECK_EQ(auth_verify(&k1, "server", msg, sizeof(msg), mac), CADRE_OK);
    CHECK_EQ(auth_verify(&k1, "client", msg, sizeof(msg), mac), CADRE_EAUTH);
    CHECK_EQ(auth_verify(&k3, "server", msg, sizeof(msg), mac), CADRE_EAUTH);
    CHECK_EQ(auth_verify(&k1, "server", msg, sizeof(msg) - 1, mac),
             CADRE_EAUTH);
    msg[39] ^= 1;
    CHECK_EQ(auth_verify(&k1, "server", msg, sizeof(msg), mac), CADRE_EAUTH);
    auth_mac(&k1, "client", msg, sizeof(msg), mac2);
    CHECK(memcmp(mac, mac2, AUTH_MAC_LEN) != 0);
}

TEST(handshake_hands_both_streams_over)
{
    uv_loop_t            loop;
    struct test_net      srv, cli;
    struct test_conn     c;
    struct raftnet_stats st;
    int                  port;

    uv_loop_init(&loop);
    test_net_open(&srv, &loop, &test_key, 1, "127.0.0.1:7701", "127.0.0.1:0");
    port = test_net_listen(&srv);
    REQUIRE(port > 0);
    test_net_open(&cli, &loop, &test_key, 2, "10.1.2.3:7702", NULL);
    REQUIRE_EQ(test_connect(&cli, &c, 1, port), 0);
    test_run_until(&loop, &c.done, 3000);
    REQUIRE_EQ(c.done, 1);
    CHECK_EQ(c.status, 0);
    REQUIRE(c.stream != NULL);
    REQUIRE_EQ(srv.accepts, 1);
    CHECK_EQ(srv.accept_id, 2);
    CHECK_STR(srv.accept_address, "10.1.2.3:7702");
    CHECK_EQ(test_pass_bytes(&loop, c.stream, srv.accepted), 0);
    CHECK_EQ(test_pass_bytes(&loop, srv.accepted, c.stream), 0);
    raftnet_stats(&srv.t, &st);
    CHECK_EQ(st.accepted, 1);
    raftnet_stats(&cli.t, &st);
    CHECK_EQ(st.connected, 1);
    test_conn_drop(&c);
    test_net_close(&cli);
    test_net_close(&srv);
    CHECK(cli.closed && srv.closed);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(wrong_key_either_side_is_refused)
{
    uv_loop_t            loop;
    struct test_net      srv, cli;
    struct test_conn     c;
    struct raftnet_stats st;
    int                  port;

    uv_loop_init(&loop);
    test_net_open(&srv, &loop, &test_key, 1, "127.0.0.1:7701", "127.0.0.1:0");
    port = test_net_listen(&srv);
    REQUIRE(port > 0);
    /* The client holds another cluster's key: it cannot verify the server
     * and never proves itself. */
    test_net_open(&cli, &loop, &test_other_key, 2, "127.0.0.1:7702", NULL);
    REQUIRE_EQ(test_connect(&cli, &c, 1, port), 0);
    test_run_until(&loop, &c.done, 3000);
    CHECK_EQ(c.done, 1);
    CHECK_EQ(c.status, RAFT_NOCONNECTION);
    CHECK(c.stream == NULL);
    raftnet_stats(&cli.t, &st);
    CHECK_EQ(st.bad_auth, 1);
    test_net_close(&cli);
    CHECK_EQ(srv.accepts, 0);
    test_net_close(&srv);

    /* The server holds the wrong key. */
    test_net_open(&srv, &loop, &test_other_key, 1, "127.0.0.1:7701",
                  "127.0.0.1:0");
    port = test_net_listen(&srv);
    test_net_open(&cli, &loop, &test_key, 2, "127.0.0.1:7702", NULL);
    REQUIRE_EQ(test_connect(&cli, &c, 1, port), 0);
    test_run_until(&loop, &c.done, 3000);
    CHECK_EQ(c.status, RAFT_NOCONNECTION);
    test_net_close(&cli);
    CHECK_EQ(srv.accepts, 0);
    test_net_close(&srv);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(forged_client_mac_is_refused)
{
    uv_loop_t            loop;
    struct test_net      srv;
    struct raftnet_stats st;
    uint8_t              msg[400], reply[72], junk[32];
    size_t               got = 0;
    int                  port, fd;

    uv_loop_init(&loop);
    test_net_open(&srv, &loop, &test_key, 1, "127.0.0.1:7701", "127.0.0.1:0");
    port = test_net_listen(&srv);
    REQUIRE(port > 0);
    /* A well-formed message 1 from someone without the key. */
    fd = test_raw_connect(port);
    test_raw_send(fd, msg, test_hello(msg, 3, "127.0.0.1:7703"));
    for (int i = 0; i < 400 && got < sizeof(reply); i++) {
        ssize_t r = recv(fd, reply + got, sizeof(reply) - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    REQUIRE_EQ(got, sizeof(reply));
    CHECK_EQ(cd_get_u64be(reply + 32), 1);
    memset(junk, 0x5a, sizeof(junk));
    test_raw_send(fd, junk, sizeof(junk));
    CHECK(test_raw_closed(&loop, fd));
    close(fd);
    raftnet_stats(&srv.t, &st);
    CHECK_EQ(st.bad_auth, 1);
    CHECK_EQ(srv.accepts, 0);
    CHECK(test_good_connection(&loop, &srv, port));
    test_net_close(&srv);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(server_with_another_id_is_refused)
{
    uv_loop_t            loop;
    struct test_net      srv, cli;
    struct test_conn     c;
    struct raftnet_stats st;
    int                  port;

    uv_loop_init(&loop);
    /* The key is right, but the address now belongs to raft id 4. */
    test_net_open(&srv, &loop, &test_key, 4, "127.0.0.1:7704", "127.0.0.1:0");
    port = test_net_listen(&srv);
    REQUIRE(port > 0);
    test_net_open(&cli, &loop, &test_key, 2, "127.0.0.1:7702", NULL);
    REQUIRE_EQ(test_connect(&cli, &c, 1, port), 0);
    test_run_until(&loop, &c.done, 3000);
    CHECK_EQ(c.done, 1);
    CHECK_EQ(c.status, RAFT_NOCONNECTION);
    raftnet_stats(&cli.t, &st);
    CHECK_EQ(st.bad_id, 1);
    test_net_close(&cli);
    CHECK_EQ(srv.accepts, 0);
    test_net_close(&srv);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(bad_clients_never_reach_accept)
{
    uv_loop_t            loop;
    struct test_net      srv;
    struct raftnet_stats st;
    uint8_t              msg[400];
    size_t               n;
    int                  port, fd;

    uv_loop_init(&loop);
    test_net_open(&srv, &loop, &test_key, 1, "127.0.0.1:7701", "127.0.0.1:0");
    raftnet_set_handshake_ms(&srv.t, 150);
    port = test_net_listen(&srv);
    REQUIRE(port > 0);

    /* Garbage: an HTTP request. */
    fd = test_raw_connect(port);
    test_raw_send(fd,
                  "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                  "0123456789012345678901234567890123456789",
                  67);
    CHECK(test_raw_closed(&loop, fd));
    close(fd);

    /* A huge address length, and one just over the limit. */
    fd = test_raw_connect(port);
    n = test_hello(msg, 3, "x");
    cd_put_u16be(msg + 45, 0xffff);
    test_raw_send(fd, msg, n);
    CHECK(test_raw_closed(&loop, fd));
    close(fd);
    fd = test_raw_connect(port);
    cd_put_u16be(msg + 45, RAFTNET_ADDRESS_MAX + 1);
    test_raw_send(fd, msg, n);
    CHECK(test_raw_closed(&loop, fd));
    close(fd);

    /* Wrong version. */
    fd = test_raw_connect(port);
    n = test_hello(msg, 3, "127.0.0.1:7703");
    msg[4] = RAFTNET_VERSION + 1;
    test_raw_send(fd, msg, n);
    CHECK(test_raw_closed(&loop, fd));
    close(fd);

    /* Truncated: half of message 1, then the peer goes away. */
    fd = test_raw_connect(port);
    n = test_hello(msg, 3, "127.0.0.1:7703");
    test_raw_send(fd, msg, 20);
    close(fd);

    raftnet_stats(&srv.t, &st);
    for (int i = 0; i < 100 && st.bad_proto < 5; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(5000);
        raftnet_stats(&srv.t, &st);
    }
    CHECK_EQ(st.bad_proto, 5);

    /* Silent: connects and says nothing until the time limit. */
    fd = test_raw_connect(port);
    CHECK(test_raw_closed(&loop, fd));
    close(fd);
    raftnet_stats(&srv.t, &st);
    CHECK_EQ(st.timeouts, 1);

    CHECK_EQ(srv.accepts, 0);
    CHECK(test_good_connection(&loop, &srv, port));
    test_net_close(&srv);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(silent_flood_cannot_lock_out_a_peer)
{
    uv_loop_t            loop;
    struct test_net      srv;
    struct raftnet_stats st;
    int                  fds[RAFTNET_PENDING_MAX + 6];
    int                  n = (int)(sizeof(fds) / sizeof(fds[0])), port;

    uv_loop_init(&loop);
    test_net_open(&srv, &loop, &test_key, 1, "127.0.0.1:7701", "127.0.0.1:0");
    port = test_net_listen(&srv);
    REQUIRE(port > 0);
    for (int i = 0; i < n; i++) {
        fds[i] = test_raw_connect(port);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    raftnet_stats(&srv.t, &st);
    CHECK_EQ(st.busy, 6);
    /* Every pending slot is taken by a silent peer; a real one still gets
     * through well before the silent ones time out. */
    CHECK(test_good_connection(&loop, &srv, port));
    raftnet_stats(&srv.t, &st);
    CHECK_EQ(st.timeouts, 0);
    /* Close with the flood still pending: every handle goes. */
    test_net_close(&srv);
    CHECK(srv.closed);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(close_with_handshakes_in_flight)
{
    uv_loop_t          loop;
    struct test_net    srv, cli;
    struct test_conn   c1, c2, c3;
    struct sockaddr_in sa = {0};
    socklen_t          sa_len = sizeof(sa);
    uint8_t            msg[400];
    int                port, mute_fd, mute_port, fd, never = 0;

    uv_loop_init(&loop);
    test_net_open(&srv, &loop, &test_key, 1, "127.0.0.1:7701", "127.0.0.1:0");
    port = test_net_listen(&srv);
    REQUIRE(port > 0);
    /* A listener that never answers: TCP connects, the handshake hangs. */
    mute_fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(mute_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    REQUIRE(listen(mute_fd, 8) == 0);
    getsockname(mute_fd, (struct sockaddr *)&sa, &sa_len);
    mute_port = ntohs(sa.sin_port);

    test_net_open(&cli, &loop, &test_key, 2, "127.0.0.1:7702", NULL);
    REQUIRE_EQ(test_connect(&cli, &c1, 5, mute_port), 0);
    REQUIRE_EQ(test_connect(&cli, &c2, 1, port), 0);
    /* A half-finished incoming handshake on the server. */
    fd = test_raw_connect(port);
    test_raw_send(fd, msg, 10);
    test_run_until(&loop, &never, 30);
    /* c1 is mid-handshake (connected, waiting for message 2), c2 is done,
     * c3 has not connected yet. Closing cancels what did not finish. */
    REQUIRE_EQ(test_connect(&cli, &c3, 1, port), 0);
    cli.t.close(&cli.t, test_net_closed_cb);
    CHECK_EQ(c1.done + c3.done, 0); /* callbacks come from close callbacks */
    test_run_until(&loop, &cli.closed, 2000);
    CHECK(cli.closed);
    CHECK_EQ(c1.done, 1);
    CHECK_EQ(c1.status, RAFT_CANCELED);
    CHECK_EQ(c3.done, 1);
    CHECK_EQ(c3.status, RAFT_CANCELED);
    CHECK_EQ(c2.done, 1);
    CHECK_EQ(c2.status, 0);
    test_conn_drop(&c2);

    test_net_close(&srv);
    CHECK(srv.closed);
    CHECK(test_raw_closed(&loop, fd));
    close(fd);
    close(mute_fd);
    CHECK_EQ(test_loop_close(&loop), 0);
}

TEST(connect_errors)
{
    uv_loop_t        loop;
    struct test_net  cli;
    struct test_conn c;
    int              rv;

    uv_loop_init(&loop);
    test_net_open(&cli, &loop, &test_key, 2, "127.0.0.1:7702", NULL);
    memset(&c, 0, sizeof(c));
    c.req.data = &c;
    rv = cli.t.connect(&cli.t, &c.req, 1, "not-an-address", test_connect_cb);
    CHECK_EQ(rv, RAFT_NOCONNECTION);
    /* Nobody listens on port 1: the callback says so. */
    REQUIRE_EQ(test_connect(&cli, &c, 1, 1), 0);
    test_run_until(&loop, &c.done, 2000);
    CHECK_EQ(c.done, 1);
    CHECK_EQ(c.status, RAFT_NOCONNECTION);
    test_net_close(&cli);
    CHECK_EQ(test_loop_close(&loop), 0);
}

/* ---- three libraft instances over raftnet ---- */

#define TEST_N 3

struct test_raft {
    struct raft_uv_transport t;
    struct raft_io           io;
    struct raft_fsm          fsm;
    struct raft              raft;
    char                     dir[300];
    char                     address[64];
    int                      applied;
    int                      closed;
};

static int
test_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
               void **result)
{
    struct test_raft *r = fsm->data;

    (void)buf;
    r->applied++;
    *result = NULL;
    return 0;
}

static int
test_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                  unsigned *n_bufs)
{
    (void)fsm;
    *bufs = raft_malloc(sizeof(**bufs));
    (*bufs)[0].len = 8;
    (*bufs)[0].base = raft_calloc(1, 8);
    *n_bufs = 1;
    return 0;
}

static int
test_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

static void
test_raft_closed_cb(struct raft *raft)
{
    struct test_raft *r = raft->data;

    raft_uv_close(&r->io);
    raftnet_close(&r->t);
    r->closed = 1;
}

static int
test_free_port(void)
{
    struct sockaddr_in sa = {0};
    socklen_t          len = sizeof(sa);
    int                fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

struct test_apply {
    struct raft_apply req;
    int               done;
    int               status;
};

static void
test_apply_cb(struct raft_apply *req, int status, void *result)
{
    struct test_apply *a = req->data;

    (void)result;
    a->done = 1;
    a->status = status;
}

static int
test_raft_start(struct test_raft *r, uv_loop_t *loop, unsigned id,
                const struct raft_configuration *conf, char *why, size_t len)
{
    int rv;

    if (raftnet_init(&r->t, loop, &test_key, NULL) != CADRE_OK)
        return snprintf(why, len, "raftnet_init"), -1;
    rv = raft_uv_init(&r->io, loop, r->dir, &r->t);
    if (rv != 0)
        return snprintf(why, len, "raft_uv_init: %s", r->io.errmsg), -1;
    raft_uv_set_connect_retry_delay(&r->io, 50);
    r->fsm.version = 1;
    r->fsm.data = r;
    r->fsm.apply = test_fsm_apply;
    r->fsm.snapshot = test_fsm_snapshot;
    r->fsm.restore = test_fsm_restore;
    r->raft.data = r;
    rv = raft_init(&r->raft, &r->io, &r->fsm, id, r->address);
    if (rv != 0) {
        snprintf(why, len, "raft_init: %s", raft_errmsg(&r->raft));
        raft_uv_close(&r->io);
        raftnet_close(&r->t);
        return -2;
    }
    r->raft.data = r;
    raft_set_election_timeout(&r->raft, 300);
    raft_set_heartbeat_timeout(&r->raft, 30);
    raft_set_pre_vote(&r->raft, true);
    rv = raft_bootstrap(&r->raft, conf);
    if (rv == 0)
        rv = raft_start(&r->raft);
    if (rv != 0)
        return snprintf(why, len, "start: %s", raft_errmsg(&r->raft)), -3;
    return 0;
}

TEST(libraft_elects_and_commits_over_raftnet)
{
    static struct test_raft   rs[TEST_N];
    struct raft_configuration conf;
    struct test_apply         a = {0};
    struct raft_buffer        buf;
    uv_loop_t                 loop;
    char                      why[512] = "";
    struct test_raft         *leader = NULL;
    uint64_t                  t0, end, streams = 0;
    int                       started = 0, rv = 0;
    const char               *base = tap_tmpdir();

    signal(SIGPIPE, SIG_IGN); /* the node's job; a dead peer must not kill */
    uv_loop_init(&loop);
    memset(rs, 0, sizeof(rs));
    raft_configuration_init(&conf);
    for (int i = 0; i < TEST_N; i++) {
        snprintf(rs[i].dir, sizeof(rs[i].dir), "%s/n%d", base, i + 1);
        mkdir(rs[i].dir, 0700);
        snprintf(rs[i].address, sizeof(rs[i].address), "127.0.0.1:%d",
                 test_free_port());
        raft_configuration_add(&conf, (raft_id)i + 1, rs[i].address,
                               RAFT_VOTER);
    }
    for (int i = 0; i < TEST_N && rv == 0; i++) {
        rv = test_raft_start(&rs[i], &loop, (unsigned)i + 1, &conf, why,
                             sizeof(why));
        if (rv == 0 || rv == -3)
            started++;
    }
    raft_configuration_close(&conf);
    if (rv == -2 && started == 0) {
        printf("# SKIP libraft refused the data directory: %s\n", why);
        CHECK_EQ(test_loop_close(&loop), 0);
        return;
    }
    if (rv != 0)
        tap_fail(__FILE__, __LINE__, "%s", why);

    t0 = uv_hrtime();
    end = t0 + 3000000000ull;
    while (rv == 0 && uv_hrtime() < end && (leader == NULL || !a.done)) {
        uv_run(&loop, UV_RUN_ONCE);
        for (int i = 0; leader == NULL && i < TEST_N; i++)
            if (raft_state(&rs[i].raft) == RAFT_LEADER) {
                leader = &rs[i];
                printf("# leader %u after %llu ms\n", (unsigned)i + 1,
                       (unsigned long long)(uv_hrtime() - t0) / 1000000u);
            }
        if (leader != NULL && a.req.data == NULL) {
            a.req.data = &a;
            buf.len = 8;
            buf.base = raft_calloc(1, 8);
            if (raft_apply(&leader->raft, &a.req, &buf, 1, test_apply_cb) !=
                0) {
                raft_free(buf.base);
                a.req.data = NULL;
            }
        }
    }
    if (a.done)
        printf("# committed after %llu ms\n",
               (unsigned long long)(uv_hrtime() - t0) / 1000000u);
    CHECK(leader != NULL);
    CHECK(a.done);
    CHECK_EQ(a.status, 0);
    if (leader != NULL)
        CHECK(leader->applied >= 1);
    for (int i = 0; i < started; i++) {
        struct raftnet_stats st;
        raftnet_stats(&rs[i].t, &st);
        streams += st.accepted + st.connected;
        CHECK_EQ(st.bad_auth + st.bad_id + st.bad_proto, 0);
    }
    CHECK(streams >= 4); /* raft traffic did go through raftnet */

    for (int i = 0; i < started; i++)
        raft_close(&rs[i].raft, test_raft_closed_cb);
    end = uv_hrtime() + 3000000000ull;
    for (int i = 0; i < started; i++)
        while (!rs[i].closed && uv_hrtime() < end)
            uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < started; i++)
        CHECK(rs[i].closed);
    CHECK_EQ(test_loop_close(&loop), 0);
}

int
main(void)
{
    test_keys();
    TAP_RUN(
        T(auth_mac_binds_key_label_and_bytes),
        T(handshake_hands_both_streams_over),
        T(wrong_key_either_side_is_refused), T(forged_client_mac_is_refused),
        T(server_with_another_id_is_refused), T(bad_clients_never_reach_accept),
        T(silent_flood_cannot_lock_out_a_peer),
        T(close_with_handshakes_in_flight), T(connect_errors),
        T(libraft_elects_and_commits_over_raftnet));
}
