/* test_cluster_msg.c: the cluster's messages (Heartbeat, Hello, Members,
 * Steal, StealReply, Settle, Coord, CoordReply) through msg_pack/msg_unpack,
 * across chunk boundaries, and what a decoder must refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cadre.pb-c.h"
#include "proto/msg.h"
#include "tests/lib/tap.h"

static int
roundtrip(const struct msg *m, struct msg *out)
{
    size_t   n = msg_packed_size(m), len = 0;
    uint8_t *buf = malloc(n ? n : 1);
    int      rc;

    if (n == 0)
        return CADRE_EINVAL;
    rc = msg_pack(m, buf, n, &len);
    if (rc == CADRE_OK)
        rc = len == n ? msg_unpack(buf, len, out) : CADRE_EINTERNAL;
    free(buf);
    return rc;
}

static void
member_fill(struct msg_member *mm, int i, char (*names)[32])
{
    static const char    *queues[] = {"default", "mail"};
    static const uint64_t ready[] = {7, 0};

    memset(mm, 0, sizeof(*mm));
    snprintf(names[0], 32, "node-%d", i);
    snprintf(names[1], 32, "tcp://127.0.0.1:%d", 7701 + i);
    mm->node_id = names[0];
    mm->peer_url = names[1];
    mm->events_url = "tcp://127.0.0.1:7702";
    mm->api_url = "tcp://127.0.0.1:7700";
    mm->state = MSG_MEMBER_ALIVE;
    mm->last_heard_ms = 250;
    mm->workers = 4;
    mm->free_slots = 2;
    mm->ready = 7;
    mm->queue_names = queues;
    mm->queue_ready = ready;
    mm->queues_n = 2;
    mm->version = "0.1.0";
    mm->leader = "";
    mm->boot_id = UINT64_C(0x1122334455667788) + (uint64_t)i;
}

TEST(heartbeat_with_many_peers)
{
    enum { N = 40 }; /* several chunks of MSG_CHUNK */
    char              names[N + 1][2][32];
    struct msg_member peers[N];
    struct msg        m = {.kind = MSG_HEARTBEAT, .request_id = 5}, out;

    member_fill(&m.u.heartbeat.self, 0, names[N]);
    for (int i = 0; i < N; i++)
        member_fill(&peers[i], i + 1, names[i]);
    m.u.heartbeat.peers = peers;
    m.u.heartbeat.peers_n = N;
    m.u.heartbeat.seq = 99;
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_HEARTBEAT);
    CHECK_EQ(out.request_id, 5);
    CHECK_STR(out.u.heartbeat.self.node_id, "node-0");
    CHECK_EQ(out.u.heartbeat.self.queues_n, 2);
    CHECK_STR(out.u.heartbeat.self.queue_names[1], "mail");
    CHECK_EQ(out.u.heartbeat.self.queue_ready[0], 7);
    CHECK_EQ(out.u.heartbeat.self.boot_id, UINT64_C(0x1122334455667788));
    CHECK_EQ(out.u.heartbeat.seq, 99);
    REQUIRE_EQ(out.u.heartbeat.peers_n, N);
    CHECK_STR(out.u.heartbeat.peers[N - 1].node_id, "node-40");
    CHECK_STR(out.u.heartbeat.peers[17].peer_url, "tcp://127.0.0.1:7719");
    CHECK_EQ(out.u.heartbeat.peers[3].free_slots, 2);
    msg_free(&out);

    m.kind = MSG_HELLO; /* the same body under another field */
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    CHECK_EQ(out.kind, MSG_HELLO);
    CHECK_EQ(out.u.heartbeat.peers_n, N);
    msg_free(&out);
}

TEST(members_roundtrip)
{
    char              names[3][2][32];
    struct msg_member ms[3];
    struct msg        m = {.kind = MSG_MEMBERS}, out;

    for (int i = 0; i < 3; i++)
        member_fill(&ms[i], i, names[i]);
    ms[0].state = MSG_MEMBER_SELF;
    ms[2].state = MSG_MEMBER_DEAD;
    m.u.members.members = ms;
    m.u.members.members_n = 3;
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    REQUIRE_EQ(out.u.members.members_n, 3);
    CHECK_EQ(out.u.members.members[0].state, MSG_MEMBER_SELF);
    CHECK_EQ(out.u.members.members[2].state, MSG_MEMBER_DEAD);
    CHECK_EQ(out.u.members.members[1].last_heard_ms, 250);
    msg_free(&out);

    ms[1].state = MSG_MEMBER_SELF + 1; /* out of range: not encodable */
    CHECK_EQ(msg_packed_size(&m), 0);
}

TEST(steal_reply_and_settle)
{
    enum { N = 37 };
    static const char *queues[] = {"high", "default"};
    uint8_t            recs[N][8];
    msg_bytes          rb[N];
    cadre_job_id       ids[N];
    struct msg         m = {.kind = MSG_STEAL}, out;

    m.u.steal.queues = queues;
    m.u.steal.queues_n = 2;
    m.u.steal.max = 64;
    m.u.steal.thief = "b";
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    CHECK_EQ(out.u.steal.queues_n, 2);
    CHECK_STR(out.u.steal.queues[0], "high");
    CHECK_EQ(out.u.steal.max, 64);
    CHECK_STR(out.u.steal.thief, "b");
    msg_free(&out);

    for (int i = 0; i < N; i++) {
        memset(recs[i], i, sizeof(recs[i]));
        rb[i] = (msg_bytes){recs[i], sizeof(recs[i])};
        memset(ids[i].b, i + 1, sizeof(ids[i].b));
    }
    memset(&m, 0, sizeof(m));
    m.kind = MSG_STEAL_REPLY;
    m.u.steal_reply.records = rb;
    m.u.steal_reply.records_n = N;
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    REQUIRE_EQ(out.u.steal_reply.records_n, N);
    CHECK_EQ(out.u.steal_reply.records[N - 1].len, 8);
    CHECK_EQ(out.u.steal_reply.records[N - 1].data[7], N - 1);
    msg_free(&out);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_SETTLE;
    m.u.settle.ids = ids;
    m.u.settle.ids_n = N;
    m.u.settle.thief = "c";
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    REQUIRE_EQ(out.u.settle.ids_n, N);
    CHECK_EQ(out.u.settle.ids[20].b[15], 21);
    CHECK_STR(out.u.settle.thief, "c");
    msg_free(&out);
}

/* Bodies msg_pack never makes, as a peer might send them. */
static int
unpack_envelope(const Cadre__Envelope *e)
{
    size_t     n = cadre__envelope__get_packed_size(e);
    uint8_t   *p = malloc(n + 1);
    struct msg m;
    int        rc;

    cadre__envelope__pack(e, p);
    rc = msg_unpack(p, n, &m);
    if (rc == CADRE_OK)
        msg_free(&m);
    free(p);
    return rc;
}

TEST(bad_cluster_bodies_are_eproto)
{
    Cadre__Envelope  e = CADRE__ENVELOPE__INIT;
    Cadre__Heartbeat h = CADRE__HEARTBEAT__INIT;
    Cadre__Member    self = CADRE__MEMBER__INIT;
    Cadre__Settle    s = CADRE__SETTLE__INIT;
    char            *names[] = {"default"};
    uint64_t         ready[] = {1, 2};
    uint8_t          shortid[5] = {0};

    e.body_case = CADRE__ENVELOPE__BODY_HEARTBEAT;
    e.heartbeat = &h;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO); /* no self */
    h.self = &self;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO); /* self has no id */
    self.node_id = "a";
    CHECK_EQ(unpack_envelope(&e), CADRE_OK);
    self.n_queue_names = 1;
    self.queue_names = names;
    self.n_queue_ready = 2;
    self.queue_ready = ready;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO); /* 1 name, 2 counts */
    self.n_queue_ready = 1;
    self.state = 9;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO);

    e.body_case = CADRE__ENVELOPE__BODY_SETTLE;
    e.settle = &s;
    s.n_ids = 1;
    s.ids = &(ProtobufCBinaryData){sizeof(shortid), shortid};
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO); /* ids are 16 bytes */
}

TEST(coord_roundtrip)
{
    struct msg m = {.kind = MSG_COORD, .request_id = 9}, out;

    m.u.coord.kind = MSG_COORD_FUNNEL_ACQUIRE;
    m.u.coord.key = "imports";
    m.u.coord.owner = "job-1";
    m.u.coord.ttl_ms = 30000;
    m.u.coord.limit = 3;
    m.u.coord.per_ms = 17;
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    CHECK_EQ(out.kind, MSG_COORD);
    CHECK_EQ(out.request_id, 9);
    CHECK_EQ(out.u.coord.kind, MSG_COORD_FUNNEL_ACQUIRE);
    CHECK_STR(out.u.coord.key, "imports");
    CHECK_STR(out.u.coord.owner, "job-1");
    CHECK_EQ(out.u.coord.ttl_ms, 30000);
    CHECK_EQ(out.u.coord.limit, 3);
    CHECK_EQ(out.u.coord.per_ms, 17);
    msg_free(&out);
    m.u.coord.kind = 2; /* a schedule claim: never from a client */
    CHECK_EQ(msg_packed_size(&m), 0);
    m.u.coord.kind = 10; /* past every kind the FSM knows */
    CHECK_EQ(msg_packed_size(&m), 0);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_COORD_REPLY;
    m.u.coord_reply.code = MSG_COORD_HELD;
    m.u.coord_reply.token = UINT64_MAX;
    m.u.coord_reply.retry_after_ms = 1234;
    m.u.coord_reply.count = 2;
    m.u.coord_reply.holder = "w1";
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    CHECK_EQ(out.kind, MSG_COORD_REPLY);
    CHECK_EQ(out.u.coord_reply.code, MSG_COORD_HELD);
    CHECK_EQ(out.u.coord_reply.token, UINT64_MAX);
    CHECK_EQ(out.u.coord_reply.retry_after_ms, 1234);
    CHECK_EQ(out.u.coord_reply.count, 2);
    CHECK_STR(out.u.coord_reply.holder, "w1");
    msg_free(&out);
    m.u.coord_reply.code = MSG_COORD_CODE_LAST + 1;
    CHECK_EQ(msg_packed_size(&m), 0);
}

TEST(bad_coord_bodies_are_eproto)
{
    Cadre__Envelope   e = CADRE__ENVELOPE__INIT;
    Cadre__Coord      c = CADRE__COORD__INIT;
    Cadre__CoordReply r = CADRE__COORD_REPLY__INIT;

    e.body_case = CADRE__ENVELOPE__BODY_COORD;
    e.coord = &c;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO); /* kind 0 */
    c.kind = 1;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO); /* a claim */
    c.kind = 10; /* past every kind the FSM knows */
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO);
    c.kind = UINT32_MAX;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO);
    c.kind = MSG_COORD_THROTTLE;
    CHECK_EQ(unpack_envelope(&e), CADRE_OK); /* ranges: node/coord.c */
    e.body_case = CADRE__ENVELOPE__BODY_COORD_REPLY;
    e.coord_reply = &r;
    r.code = MSG_COORD_CODE_LAST + 1;
    CHECK_EQ(unpack_envelope(&e), CADRE_EPROTO);
    r.code = MSG_COORD_LIMITED;
    CHECK_EQ(unpack_envelope(&e), CADRE_OK);
}

TEST(kind_names)
{
    CHECK_STR(msg_kind_name(MSG_COORD), "coord");
    CHECK_STR(msg_kind_name(MSG_COORD_REPLY), "coord_reply");
    CHECK_STR(msg_kind_name(MSG_HEARTBEAT), "heartbeat");
    CHECK_STR(msg_kind_name(MSG_HELLO), "hello");
    CHECK_STR(msg_kind_name(MSG_STEAL_REPLY), "steal_reply");
    CHECK_STR(msg_kind_name(MSG_SETTLE), "settle");
}

int
main(void)
{
    TAP_RUN(T(heartbeat_with_many_peers), T(members_roundtrip),
            T(steal_reply_and_settle), T(bad_cluster_bodies_are_eproto),
            T(coord_roundtrip), T(bad_coord_bodies_are_eproto), T(kind_names));
}
