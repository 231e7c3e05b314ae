/* test_wire.c: sealed frames and the Envelope codec (proto/wire.c,
 * proto/msg.c, crypto/seal.c): round trips of every message kind, and every
 * way a frame can be wrong: wrong key, flipped bytes, truncation, oversize,
 * garbage behind a valid tag, ids of the wrong length, allocation faults. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "common/clock.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "proto/cadre.pb-c.h"
#include "proto/msg.h"
#include "proto/wire.h"
#include "tests/lib/tap.h"

#define FRAME_MAX (1u << 20)

static keys_key            test_master;
static struct wire_keyring test_ring; /* accepts the worker and client keys */
static struct wire_sender  test_client;

static void
test_setup(void)
{
    keys_key k;

    if (keys_init() != CADRE_OK) {
        fprintf(stderr, "keys_init failed\n");
        exit(1);
    }
    keys_generate(&test_master);
    memset(&test_ring, 0, sizeof(test_ring));
    for (int r = KEYS_ROLE_WORKER; r <= KEYS_ROLE_CLIENT; r++) {
        keys_derive(&test_master, r, &test_ring.key[r]);
        test_ring.has[r] = 1;
    }
    keys_derive(&test_master, KEYS_ROLE_CLIENT, &k);
    wire_sender_init(&test_client, KEYS_ROLE_CLIENT, &k, 0);
}

static void
test_id(cadre_job_id *id, int seed)
{
    for (int i = 0; i < 16; i++)
        id->b[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

static int
test_id_is(const cadre_job_id *id, int seed)
{
    cadre_job_id want;

    test_id(&want, seed);
    return memcmp(id, &want, sizeof(want)) == 0;
}

static int
test_bytes_is(msg_bytes b, const void *p, size_t n)
{
    return b.len == n && (n == 0 || memcmp(b.data, p, n) == 0);
}

/* Seals m with the client sender and opens it again into *out. The frame is
 * left in *buf (caller frees) with its length in *len. */
static int
test_roundtrip(const struct msg *m, struct msg *out, uint8_t **buf, size_t *len)
{
    size_t   size = wire_frame_size(m);
    size_t   flen = 0;
    cd_err   err;
    uint8_t *b;
    int      rc;

    if (size == 0)
        return CADRE_EINVAL;
    b = malloc(size);
    rc = wire_seal(&test_client, m, b, size, FRAME_MAX, &flen);
    if (rc != CADRE_OK) {
        free(b);
        return rc;
    }
    if (flen != size) {
        free(b);
        return CADRE_EINTERNAL;
    }
    if (msg_packed_size(m) + WIRE_OVERHEAD != size) {
        free(b);
        return CADRE_EINTERNAL;
    }
    cd_err_clear(&err);
    rc = wire_open(&test_ring, b, flen, FRAME_MAX, NULL, out, &err);
    if (buf != NULL) {
        *buf = b;
        *len = flen;
    } else {
        free(b);
    }
    return rc;
}

/* Builds a frame around an arbitrary payload, sealed with a valid key, as
 * if a legitimate sender had sealed garbage. */
static size_t
test_frame_from_payload(const keys_key *k, int role, const uint8_t *payload,
                        size_t n, uint8_t *buf)
{
    memset(buf, 0, WIRE_HEADER_LEN);
    buf[0] = WIRE_VERSION;
    buf[1] = (uint8_t)role;
    cd_put_u64be(buf + 4, 42);
    cd_put_u64be(buf + 12, 43);
    cd_put_u64be(buf + 20, 1);
    cd_put_u64be(buf + 28, cd_now_ms());
    cd_put_u32be(buf + 36, (uint32_t)n);
    if (n > 0)
        memcpy(buf + WIRE_HEADER_LEN + SEAL_NONCE_LEN, payload, n);
    seal_close(k, buf, WIRE_HEADER_LEN, buf + WIRE_HEADER_LEN,
               buf + WIRE_HEADER_LEN + SEAL_NONCE_LEN, n);
    return WIRE_OVERHEAD + n;
}

/* Opens a frame whose payload is the given bytes. */
static int
test_open_payload(const uint8_t *payload, size_t n)
{
    uint8_t   *buf = malloc(WIRE_OVERHEAD + n);
    size_t     len;
    struct msg m;
    cd_err     err;
    int        rc;

    len = test_frame_from_payload(&test_ring.key[KEYS_ROLE_CLIENT],
                                  KEYS_ROLE_CLIENT, payload, n, buf);
    cd_err_clear(&err);
    rc = wire_open(&test_ring, buf, len, FRAME_MAX, NULL, &m, &err);
    if (rc == CADRE_OK)
        msg_free(&m);
    else if (strncmp(err.msg, "frame: ", 7) != 0)
        rc = CADRE_EINTERNAL; /* every message says where it comes from */
    free(buf);
    return rc;
}

/* Packs a protobuf-c Envelope built by hand (to forge what msg_pack never
 * would) and opens it behind a valid tag. */
static int
test_open_envelope(const Cadre__Envelope *e)
{
    size_t   n = cadre__envelope__get_packed_size(e);
    uint8_t *p = malloc(n + 1);
    int      rc;

    cadre__envelope__pack(e, p);
    rc = test_open_payload(p, n);
    free(p);
    return rc;
}

/* ---- round trips --------------------------------------------------------- */

TEST(roundtrip_dispatch)
{
    static const uint32_t backoff[] = {1, 5, 30};
    static const uint8_t  payload[] = {0, 1, 2, 0, 255};
    struct msg_new_job    jobs[2];
    struct msg            m, out;

    memset(jobs, 0, sizeof(jobs));
    test_id(&jobs[0].id, 1);
    jobs[0].task = "echo";
    jobs[0].payload.data = payload;
    jobs[0].payload.len = sizeof(payload);
    jobs[0].opts.queue = "emails";
    jobs[0].opts.delay_ms = 1500;
    jobs[0].opts.run_at_ms = 1700000000123ull;
    jobs[0].opts.tries = 3;
    jobs[0].opts.backoff_s = backoff;
    jobs[0].opts.backoff_n = 3;
    jobs[0].opts.retry_until_ms = UINT64_MAX;
    jobs[0].opts.max_exceptions = 2;
    jobs[0].opts.timeout_ms = 60000;
    jobs[0].opts.retry_after_ms = 90000;
    test_id(&jobs[1].id, 2);
    jobs[1].task = NULL; /* encodes as "" */
    memset(&m, 0, sizeof(m));
    m.request_id = 77;
    m.kind = MSG_DISPATCH;
    m.u.dispatch.jobs = jobs;
    m.u.dispatch.jobs_n = 2;

    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    CHECK_EQ(out.request_id, 77);
    REQUIRE_EQ(out.kind, MSG_DISPATCH);
    REQUIRE_EQ(out.u.dispatch.jobs_n, 2);
    {
        const struct msg_new_job *j = &out.u.dispatch.jobs[0];

        CHECK(test_id_is(&j->id, 1));
        CHECK_STR(j->task, "echo");
        CHECK(test_bytes_is(j->payload, payload, sizeof(payload)));
        CHECK_STR(j->opts.queue, "emails");
        CHECK_EQ(j->opts.delay_ms, 1500);
        CHECK_EQ(j->opts.run_at_ms, 1700000000123ull);
        CHECK_EQ(j->opts.tries, 3);
        REQUIRE_EQ(j->opts.backoff_n, 3);
        CHECK_EQ(j->opts.backoff_s[0], 1);
        CHECK_EQ(j->opts.backoff_s[1], 5);
        CHECK_EQ(j->opts.backoff_s[2], 30);
        CHECK(j->opts.retry_until_ms == UINT64_MAX);
        CHECK_EQ(j->opts.max_exceptions, 2);
        CHECK_EQ(j->opts.timeout_ms, 60000);
        CHECK_EQ(j->opts.retry_after_ms, 90000);
    }
    {
        const struct msg_new_job *j = &out.u.dispatch.jobs[1];

        CHECK(test_id_is(&j->id, 2));
        CHECK_STR(j->task, "");
        CHECK_EQ(j->payload.len, 0);
        CHECK(j->opts.queue == NULL || j->opts.queue[0] == '\0');
        CHECK_EQ(j->opts.backoff_n, 0);
        CHECK_EQ(j->opts.tries, 0);
    }
    msg_free(&out);
    CHECK_EQ(out.kind, MSG_NONE);
    msg_free(&out); /* twice is harmless: it was zeroed */
}

TEST(roundtrip_dispatch_reply)
{
    cadre_job_id ids[3];
    uint8_t      dup[3] = {0, 1, 0};
    struct msg   m, out;

    for (int i = 0; i < 3; i++)
        test_id(&ids[i], 10 + i);
    memset(&m, 0, sizeof(m));
    m.kind = MSG_DISPATCH_REPLY;
    m.u.dispatch_reply.ids = ids;
    m.u.dispatch_reply.ids_n = 3;
    m.u.dispatch_reply.duplicate = dup;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_DISPATCH_REPLY);
    REQUIRE_EQ(out.u.dispatch_reply.ids_n, 3);
    REQUIRE(out.u.dispatch_reply.duplicate != NULL);
    for (int i = 0; i < 3; i++) {
        CHECK(test_id_is(&out.u.dispatch_reply.ids[i], 10 + i));
        CHECK_EQ(out.u.dispatch_reply.duplicate[i], dup[i]);
    }
    msg_free(&out);

    m.u.dispatch_reply.duplicate = NULL; /* none duplicate */
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.u.dispatch_reply.ids_n, 3);
    CHECK(out.u.dispatch_reply.duplicate == NULL);
    CHECK(test_id_is(&out.u.dispatch_reply.ids[2], 12));
    msg_free(&out);
}

TEST(roundtrip_fetch)
{
    static const char *queues[] = {"high", "default", ""};
    static const char  result[] = "result bytes";
    struct msg_outcome oc[MSG_OUTCOME_RETURN + 1];
    struct msg         m, out;

    memset(oc, 0, sizeof(oc));
    for (int k = 0; k <= MSG_OUTCOME_RETURN; k++) {
        test_id(&oc[k].id, 20 + k);
        oc[k].kind = k;
        oc[k].lease = 1000 + (uint64_t)k;
    }
    oc[MSG_OUTCOME_DONE].result.data = (const uint8_t *)result;
    oc[MSG_OUTCOME_DONE].result.len = sizeof(result);
    oc[MSG_OUTCOME_ERROR].error_type = "HandlerError";
    oc[MSG_OUTCOME_ERROR].error = "boom";
    oc[MSG_OUTCOME_RELEASE].release_delay_ms = 2500;
    memset(&m, 0, sizeof(m));
    m.request_id = UINT64_MAX;
    m.kind = MSG_FETCH;
    m.u.fetch.queues = queues;
    m.u.fetch.queues_n = 3;
    m.u.fetch.max = 8;
    m.u.fetch.wait_ms = 30000;
    m.u.fetch.outcomes = oc;
    m.u.fetch.outcomes_n = MSG_OUTCOME_RETURN + 1;
    m.u.fetch.worker_id = 0x0123456789abcdefull;
    m.u.fetch.stopping = 1;

    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    CHECK(out.request_id == UINT64_MAX);
    REQUIRE_EQ(out.kind, MSG_FETCH);
    REQUIRE_EQ(out.u.fetch.queues_n, 3);
    CHECK_STR(out.u.fetch.queues[0], "high");
    CHECK_STR(out.u.fetch.queues[1], "default");
    CHECK_STR(out.u.fetch.queues[2], "");
    CHECK_EQ(out.u.fetch.max, 8);
    CHECK_EQ(out.u.fetch.wait_ms, 30000);
    CHECK(out.u.fetch.worker_id == 0x0123456789abcdefull);
    CHECK_EQ(out.u.fetch.stopping, 1);
    REQUIRE_EQ(out.u.fetch.outcomes_n, MSG_OUTCOME_RETURN + 1);
    for (int k = 0; k <= MSG_OUTCOME_RETURN; k++) {
        const struct msg_outcome *o = &out.u.fetch.outcomes[k];

        CHECK(test_id_is(&o->id, 20 + k));
        CHECK_EQ(o->kind, k);
        CHECK_EQ(o->lease, 1000 + k);
    }
    CHECK(test_bytes_is(out.u.fetch.outcomes[MSG_OUTCOME_DONE].result, result,
                        sizeof(result)));
    CHECK_STR(out.u.fetch.outcomes[MSG_OUTCOME_ERROR].error_type,
              "HandlerError");
    CHECK_STR(out.u.fetch.outcomes[MSG_OUTCOME_ERROR].error, "boom");
    CHECK_EQ(out.u.fetch.outcomes[MSG_OUTCOME_RELEASE].release_delay_ms, 2500);
    CHECK_STR(out.u.fetch.outcomes[MSG_OUTCOME_FAIL].error, "");
    msg_free(&out);

    /* A bare long poll: no queues, no outcomes. */
    memset(&m, 0, sizeof(m));
    m.kind = MSG_FETCH;
    m.u.fetch.max = 1;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_FETCH);
    CHECK_EQ(out.u.fetch.queues_n, 0);
    CHECK_EQ(out.u.fetch.outcomes_n, 0);
    CHECK_EQ(out.u.fetch.max, 1);
    CHECK_EQ(out.u.fetch.stopping, 0);
    msg_free(&out);
}

TEST(roundtrip_jobs)
{
    static const uint8_t payload[] = "{\"to\":\"a@b\"}";
    struct msg_job       jobs[2];
    struct msg           m, out;

    memset(jobs, 0, sizeof(jobs));
    test_id(&jobs[0].id, 30);
    jobs[0].task = "mail";
    jobs[0].payload.data = payload;
    jobs[0].payload.len = sizeof(payload) - 1;
    jobs[0].queue = "emails";
    jobs[0].attempt = 2;
    jobs[0].timeout_ms = 5000;
    jobs[0].lease = 99;
    test_id(&jobs[1].id, 31);
    jobs[1].task = "noop";
    memset(&m, 0, sizeof(m));
    m.kind = MSG_JOBS;
    m.u.jobs.jobs = jobs;
    m.u.jobs.jobs_n = 2;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_JOBS);
    REQUIRE_EQ(out.u.jobs.jobs_n, 2);
    CHECK(test_id_is(&out.u.jobs.jobs[0].id, 30));
    CHECK_STR(out.u.jobs.jobs[0].task, "mail");
    CHECK(test_bytes_is(out.u.jobs.jobs[0].payload, payload,
                        sizeof(payload) - 1));
    CHECK_STR(out.u.jobs.jobs[0].queue, "emails");
    CHECK_EQ(out.u.jobs.jobs[0].attempt, 2);
    CHECK_EQ(out.u.jobs.jobs[0].timeout_ms, 5000);
    CHECK_EQ(out.u.jobs.jobs[0].lease, 99);
    CHECK(test_id_is(&out.u.jobs.jobs[1].id, 31));
    CHECK_STR(out.u.jobs.jobs[1].task, "noop");
    CHECK_EQ(out.u.jobs.jobs[1].payload.len, 0);
    msg_free(&out);
}

TEST(roundtrip_wait)
{
    cadre_job_id ids[2];
    struct msg   m, out;

    test_id(&ids[0], 40);
    test_id(&ids[1], 41);
    memset(&m, 0, sizeof(m));
    m.kind = MSG_WAIT;
    m.u.wait.ids = ids;
    m.u.wait.ids_n = 2;
    m.u.wait.timeout_ms = 1234;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_WAIT);
    REQUIRE_EQ(out.u.wait.ids_n, 2);
    CHECK(test_id_is(&out.u.wait.ids[0], 40));
    CHECK(test_id_is(&out.u.wait.ids[1], 41));
    CHECK_EQ(out.u.wait.timeout_ms, 1234);
    msg_free(&out);
}

TEST(roundtrip_wait_reply)
{
    static const uint8_t  res[] = {9, 8, 7};
    struct msg_job_result rs[3];
    struct msg            m, out;

    memset(rs, 0, sizeof(rs));
    test_id(&rs[0].id, 50);
    rs[0].status = CADRE_DONE;
    rs[0].attempts = 1;
    rs[0].result.data = res;
    rs[0].result.len = sizeof(res);
    test_id(&rs[1].id, 51);
    rs[1].status = CADRE_FAILED;
    rs[1].attempts = 3;
    rs[1].error_type = "NoHandler";
    rs[1].error = "no handler for task 'x'";
    test_id(&rs[2].id, 52);
    rs[2].status = CADRE_PENDING;
    memset(&m, 0, sizeof(m));
    m.kind = MSG_WAIT_REPLY;
    m.u.wait_reply.results = rs;
    m.u.wait_reply.results_n = 3;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_WAIT_REPLY);
    REQUIRE_EQ(out.u.wait_reply.results_n, 3);
    CHECK(test_id_is(&out.u.wait_reply.results[0].id, 50));
    CHECK_EQ(out.u.wait_reply.results[0].status, CADRE_DONE);
    CHECK_EQ(out.u.wait_reply.results[0].attempts, 1);
    CHECK(test_bytes_is(out.u.wait_reply.results[0].result, res, sizeof(res)));
    CHECK_EQ(out.u.wait_reply.results[1].status, CADRE_FAILED);
    CHECK_EQ(out.u.wait_reply.results[1].attempts, 3);
    CHECK_STR(out.u.wait_reply.results[1].error_type, "NoHandler");
    CHECK_STR(out.u.wait_reply.results[1].error, "no handler for task 'x'");
    CHECK_EQ(out.u.wait_reply.results[2].status, CADRE_PENDING);
    CHECK(test_id_is(&out.u.wait_reply.results[2].id, 52));
    msg_free(&out);
}

TEST(roundtrip_status_request)
{
    struct msg m, out;

    memset(&m, 0, sizeof(m));
    m.request_id = 5;
    m.kind = MSG_STATUS_REQUEST;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    CHECK_EQ(out.kind, MSG_STATUS_REQUEST);
    CHECK_EQ(out.request_id, 5);
    msg_free(&out);

    m.request_id = 0; /* an Envelope of nothing but an empty body */
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    CHECK_EQ(out.kind, MSG_STATUS_REQUEST);
    msg_free(&out);
}

TEST(roundtrip_status)
{
    cadre_queue_stats qs[2];
    struct msg        m, out;

    memset(qs, 0, sizeof(qs));
    snprintf(qs[0].name, sizeof(qs[0].name), "default");
    qs[0].ready = 1;
    qs[0].delayed = 2;
    qs[0].reserved = 3;
    qs[0].done = 4;
    qs[0].failed = 5;
    qs[0].oldest_ready_age_ms = 6;
    memset(qs[1].name, 'q', sizeof(qs[1].name) - 1); /* longest name */
    memset(&m, 0, sizeof(m));
    m.kind = MSG_STATUS;
    snprintf(m.u.status.node_id, sizeof(m.u.status.node_id), "node-a");
    snprintf(m.u.status.version, sizeof(m.u.status.version), "0.1.0");
    m.u.status.uptime_ms = 123456;
    m.u.status.workers = 4;
    m.u.status.workers_busy = 2;
    m.u.status.bad_frames = 7;
    m.u.status.commits = 99;
    m.u.status.queues = qs;
    m.u.status.queues_n = 2;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_STATUS);
    CHECK_STR(out.u.status.node_id, "node-a");
    CHECK_STR(out.u.status.version, "0.1.0");
    CHECK_EQ(out.u.status.uptime_ms, 123456);
    CHECK_EQ(out.u.status.workers, 4);
    CHECK_EQ(out.u.status.workers_busy, 2);
    CHECK_EQ(out.u.status.bad_frames, 7);
    CHECK_EQ(out.u.status.commits, 99);
    REQUIRE_EQ(out.u.status.queues_n, 2);
    CHECK_STR(out.u.status.queues[0].name, "default");
    CHECK_EQ(out.u.status.queues[0].ready, 1);
    CHECK_EQ(out.u.status.queues[0].delayed, 2);
    CHECK_EQ(out.u.status.queues[0].reserved, 3);
    CHECK_EQ(out.u.status.queues[0].done, 4);
    CHECK_EQ(out.u.status.queues[0].failed, 5);
    CHECK_EQ(out.u.status.queues[0].oldest_ready_age_ms, 6);
    CHECK_STR(out.u.status.queues[1].name, qs[1].name);
    msg_free(&out);

    /* A name that fills its array with no NUL is refused, not overread. */
    memset(qs[1].name, 'q', sizeof(qs[1].name));
    CHECK_EQ(msg_packed_size(&m), 0);
    CHECK_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_EINVAL);
}

TEST(status_strings_truncate)
{
    Cadre__Envelope    e = CADRE__ENVELOPE__INIT;
    Cadre__Status      s = CADRE__STATUS__INIT;
    Cadre__QueueStats  q = CADRE__QUEUE_STATS__INIT;
    Cadre__QueueStats *qp = &q;
    char               longs[300];
    uint8_t            buf[1024], frame[2048];
    size_t             n, len;
    struct msg         m;
    cd_err             err;

    memset(longs, 'x', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    s.node_id = longs;
    s.version = longs;
    q.name = longs;
    s.n_queues = 1;
    s.queues = &qp;
    e.body_case = CADRE__ENVELOPE__BODY_STATUS;
    e.status = &s;
    n = cadre__envelope__pack(&e, buf);
    len = test_frame_from_payload(&test_ring.key[KEYS_ROLE_CLIENT],
                                  KEYS_ROLE_CLIENT, buf, n, frame);
    REQUIRE_EQ(wire_open(&test_ring, frame, len, FRAME_MAX, NULL, &m, &err),
               CADRE_OK);
    CHECK_EQ(strlen(m.u.status.node_id), sizeof(m.u.status.node_id) - 1);
    CHECK_EQ(strlen(m.u.status.version), sizeof(m.u.status.version) - 1);
    REQUIRE_EQ(m.u.status.queues_n, 1);
    CHECK_EQ(strlen(m.u.status.queues[0].name),
             sizeof(m.u.status.queues[0].name) - 1);
    msg_free(&m);
}

TEST(roundtrip_error)
{
    struct msg m, out;

    memset(&m, 0, sizeof(m));
    m.request_id = 3;
    m.kind = MSG_ERROR;
    m.u.error.code = CADRE_ETOOBIG;
    m.u.error.message = "payload too large";
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_ERROR);
    CHECK_EQ(out.u.error.code, CADRE_ETOOBIG);
    CHECK_STR(out.u.error.message, "payload too large");
    msg_free(&out);

    m.u.error.code = CADRE_OK; /* would read as success on the other side */
    CHECK_EQ(msg_packed_size(&m), 0);
    m.u.error.code = CADRE_E_COUNT;
    CHECK_EQ(msg_packed_size(&m), 0);
}

TEST(roundtrip_event)
{
    struct msg m, out;

    memset(&m, 0, sizeof(m));
    m.kind = MSG_EVENT;
    m.u.event.kind = MSG_EVENT_FAILED;
    test_id(&m.u.event.id, 9);
    m.u.event.task = "fail";
    m.u.event.queue = "mail";
    m.u.event.attempt = 2;
    m.u.event.at_ms = UINT64_C(1700000000123);
    m.u.event.error_type = "DemoError";
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_EVENT);
    CHECK_EQ(out.u.event.kind, MSG_EVENT_FAILED);
    CHECK(test_id_is(&out.u.event.id, 9));
    CHECK_STR(out.u.event.task, "fail");
    CHECK_STR(out.u.event.queue, "mail");
    CHECK_EQ(out.u.event.attempt, 2);
    CHECK_EQ(out.u.event.at_ms, UINT64_C(1700000000123));
    CHECK_STR(out.u.event.error_type, "DemoError");
    msg_free(&out);

    m.u.event.kind = MSG_EVENT_DISPATCHED;
    m.u.event.error_type = NULL;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    CHECK_EQ(out.u.event.kind, MSG_EVENT_DISPATCHED);
    CHECK_STR(out.u.event.error_type, "");
    msg_free(&out);

    m.u.event.kind = MSG_EVENT_NONE;
    CHECK_EQ(msg_packed_size(&m), 0);
    m.u.event.kind = MSG_EVENT_LAST + 1;
    CHECK_EQ(msg_packed_size(&m), 0);
}

TEST(bad_events_are_eproto)
{
    uint8_t         idb[16] = {1};
    Cadre__Envelope e = CADRE__ENVELOPE__INIT;
    Cadre__Event    ev = CADRE__EVENT__INIT;

    e.body_case = CADRE__ENVELOPE__BODY_EVENT;
    e.event = &ev;
    ev.id.data = idb;
    ev.id.len = 16;
    ev.kind = MSG_EVENT_DONE;
    CHECK_EQ(test_open_envelope(&e), CADRE_OK);
    ev.kind = 0;
    CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    ev.kind = MSG_EVENT_LAST + 1;
    CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    ev.kind = MSG_EVENT_STARTED;
    ev.id.len = 15;
    CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    ev.id.len = 0;
    CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
}

/* Bodies larger than one encoding chunk (msg.c packs MSG_CHUNK elements at a
 * time): sizes, order and the fields of the first chunk must survive. */
TEST(roundtrip_many_elements)
{
    enum { N = 100 };
    static const char    *queues[] = {"a", "b"};
    struct msg_new_job    jobs[N];
    cadre_job_id          ids[N];
    uint8_t               dup[N];
    struct msg_outcome    oc[N];
    struct msg_job        js[N];
    struct msg_job_result rs[N];
    cadre_queue_stats     qs[N];
    struct msg            m, out;
    const size_t          counts[] = {0, 1, 15, 16, 17, 32, 33, N};

    memset(jobs, 0, sizeof(jobs));
    memset(oc, 0, sizeof(oc));
    memset(js, 0, sizeof(js));
    memset(rs, 0, sizeof(rs));
    memset(qs, 0, sizeof(qs));
    for (int i = 0; i < N; i++) {
        test_id(&ids[i], i);
        dup[i] = (uint8_t)(i % 3 == 0);
        jobs[i].id = ids[i];
        jobs[i].task = "t";
        jobs[i].opts.tries = (uint32_t)i;
        oc[i].id = ids[i];
        oc[i].kind = MSG_OUTCOME_DONE;
        oc[i].lease = (uint64_t)i;
        js[i].id = ids[i];
        js[i].attempt = (uint32_t)i;
        rs[i].id = ids[i];
        rs[i].status = CADRE_DONE;
        rs[i].attempts = (uint32_t)i;
        snprintf(qs[i].name, sizeof(qs[i].name), "q%d", i);
        qs[i].ready = (uint64_t)i;
    }
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        size_t n = counts[c];

        memset(&m, 0, sizeof(m));
        m.request_id = n;
        m.kind = MSG_DISPATCH;
        m.u.dispatch.jobs = jobs;
        m.u.dispatch.jobs_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.dispatch.jobs_n, n);
        for (size_t i = 0; i < n; i++) {
            CHECK(test_id_is(&out.u.dispatch.jobs[i].id, (int)i));
            CHECK_EQ(out.u.dispatch.jobs[i].opts.tries, i);
        }
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_DISPATCH_REPLY;
        m.u.dispatch_reply.ids = ids;
        m.u.dispatch_reply.ids_n = n;
        m.u.dispatch_reply.duplicate = dup;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.dispatch_reply.ids_n, n);
        for (size_t i = 0; i < n; i++) {
            CHECK(test_id_is(&out.u.dispatch_reply.ids[i], (int)i));
            CHECK_EQ(out.u.dispatch_reply.duplicate[i], dup[i]);
        }
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_FETCH;
        m.u.fetch.queues = queues;
        m.u.fetch.queues_n = 2;
        m.u.fetch.max = 9;
        m.u.fetch.worker_id = 4;
        m.u.fetch.outcomes = oc;
        m.u.fetch.outcomes_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.fetch.outcomes_n, n);
        REQUIRE_EQ(out.u.fetch.queues_n, 2);
        CHECK_STR(out.u.fetch.queues[1], "b");
        CHECK_EQ(out.u.fetch.max, 9);
        CHECK_EQ(out.u.fetch.worker_id, 4);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(out.u.fetch.outcomes[i].lease, i);
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_JOBS;
        m.u.jobs.jobs = js;
        m.u.jobs.jobs_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.jobs.jobs_n, n);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(out.u.jobs.jobs[i].attempt, i);
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_WAIT;
        m.u.wait.ids = ids;
        m.u.wait.ids_n = n;
        m.u.wait.timeout_ms = 10;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.wait.ids_n, n);
        CHECK_EQ(out.u.wait.timeout_ms, 10);
        for (size_t i = 0; i < n; i++)
            CHECK(test_id_is(&out.u.wait.ids[i], (int)i));
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_WAIT_REPLY;
        m.u.wait_reply.results = rs;
        m.u.wait_reply.results_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.wait_reply.results_n, n);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(out.u.wait_reply.results[i].attempts, i);
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_STATUS;
        snprintf(m.u.status.node_id, sizeof(m.u.status.node_id), "n1");
        m.u.status.commits = 5;
        m.u.status.queues = qs;
        m.u.status.queues_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.status.queues_n, n);
        CHECK_STR(out.u.status.node_id, "n1");
        CHECK_EQ(out.u.status.commits, 5);
        for (size_t i = 0; i < n; i++) {
            CHECK_STR(out.u.status.queues[i].name, qs[i].name);
            CHECK_EQ(out.u.status.queues[i].ready, i);
        }
        msg_free(&out);
    }
}

TEST(header_fields)
{
    struct msg         m, out;
    struct wire_header h;
    uint8_t            buf[256];
    size_t             len;
    uint64_t           before = cd_now_ms();
    cd_err             err;
    struct wire_sender s;
    keys_key           k;

    keys_derive(&test_master, KEYS_ROLE_WORKER, &k);
    wire_sender_init(&s, KEYS_ROLE_WORKER, &k, 0x1122334455667788ull);
    CHECK(s.boot_id != 0);
    memset(&m, 0, sizeof(m));
    m.kind = MSG_STATUS_REQUEST;
    for (uint64_t i = 1; i <= 3; i++) {
        REQUIRE_EQ(wire_seal(&s, &m, buf, sizeof(buf), FRAME_MAX, &len),
                   CADRE_OK);
        REQUIRE_EQ(wire_open(&test_ring, buf, len, FRAME_MAX, &h, &out, &err),
                   CADRE_OK);
        CHECK_EQ(h.version, WIRE_VERSION);
        CHECK_EQ(h.role, KEYS_ROLE_WORKER);
        CHECK_EQ(h.flags, 0);
        CHECK(h.sender_id == 0x1122334455667788ull);
        CHECK(h.boot_id == s.boot_id);
        CHECK_EQ(h.counter, i);
        CHECK(h.ts_ms >= before && h.ts_ms <= cd_now_ms());
        CHECK_EQ(h.length, len - WIRE_OVERHEAD);
        CHECK_EQ(out.kind, MSG_STATUS_REQUEST);
        msg_free(&out);
    }
    /* sender_id 0 picks a random one; boot ids differ per init. */
    wire_sender_init(&s, KEYS_ROLE_WORKER, &k, 0);
    CHECK(s.sender_id != 0);
    {
        struct wire_sender s2;

        wire_sender_init(&s2, KEYS_ROLE_WORKER, &k, 0);
        CHECK(s2.boot_id != s.boot_id);
    }
}

/* ---- bad frames ---------------------------------------------------------- */

static void
test_status_request(struct msg *m)
{
    memset(m, 0, sizeof(*m));
    m->request_id = 11;
    m->kind = MSG_STATUS_REQUEST;
}

/* A frame with some body worth tampering with. */
static size_t
test_sample_frame(uint8_t *buf, size_t cap)
{
    static const uint8_t payload[] = "some payload bytes";
    struct msg_new_job   j;
    struct msg           m;
    size_t               len = 0;

    memset(&j, 0, sizeof(j));
    test_id(&j.id, 60);
    j.task = "echo";
    j.payload.data = payload;
    j.payload.len = sizeof(payload);
    j.opts.queue = "default";
    memset(&m, 0, sizeof(m));
    m.request_id = 12;
    m.kind = MSG_DISPATCH;
    m.u.dispatch.jobs = &j;
    m.u.dispatch.jobs_n = 1;
    if (wire_seal(&test_client, &m, buf, cap, FRAME_MAX, &len) != CADRE_OK)
        return 0;
    return len;
}

TEST(wrong_key_is_eauth)
{
    struct wire_keyring ring;
    struct msg          m, out;
    uint8_t             buf[256];
    size_t              len;
    cd_err              err;

    test_status_request(&m);
    /* Another cluster's client key. */
    memset(&ring, 0, sizeof(ring));
    keys_generate(&ring.key[KEYS_ROLE_CLIENT]);
    ring.has[KEYS_ROLE_CLIENT] = 1;
    REQUIRE_EQ(wire_seal(&test_client, &m, buf, sizeof(buf), FRAME_MAX, &len),
               CADRE_OK);
    CHECK_EQ(wire_open(&ring, buf, len, FRAME_MAX, NULL, &out, &err),
             CADRE_EAUTH);
    CHECK_CONTAINS(err.msg, "frame: ");
    CHECK_CONTAINS(err.msg, "client key");

    /* The master key itself does not open a client frame either. */
    memset(&ring, 0, sizeof(ring));
    ring.key[KEYS_ROLE_CLIENT] = test_master;
    ring.has[KEYS_ROLE_CLIENT] = 1;
    REQUIRE_EQ(wire_seal(&test_client, &m, buf, sizeof(buf), FRAME_MAX, &len),
               CADRE_OK);
    CHECK_EQ(wire_open(&ring, buf, len, FRAME_MAX, NULL, &out, &err),
             CADRE_EAUTH);

    /* A role this socket does not accept (a node-only ring). */
    memset(&ring, 0, sizeof(ring));
    keys_derive(&test_master, KEYS_ROLE_NODE, &ring.key[KEYS_ROLE_NODE]);
    ring.has[KEYS_ROLE_NODE] = 1;
    REQUIRE_EQ(wire_seal(&test_client, &m, buf, sizeof(buf), FRAME_MAX, &len),
               CADRE_OK);
    CHECK_EQ(wire_open(&ring, buf, len, FRAME_MAX, NULL, &out, &err),
             CADRE_EAUTH);
    CHECK_CONTAINS(err.msg, "does not accept");

    /* A worker key claiming to be a node: the role byte is authenticated. */
    {
        struct wire_sender w;
        keys_key           wk;

        keys_derive(&test_master, KEYS_ROLE_WORKER, &wk);
        wire_sender_init(&w, KEYS_ROLE_NODE, &wk, 0);
        REQUIRE_EQ(wire_seal(&w, &m, buf, sizeof(buf), FRAME_MAX, &len),
                   CADRE_OK);
        CHECK_EQ(wire_open(&ring, buf, len, FRAME_MAX, NULL, &out, &err),
                 CADRE_EAUTH);
    }

    /* Role out of range. */
    REQUIRE_EQ(wire_seal(&test_client, &m, buf, sizeof(buf), FRAME_MAX, &len),
               CADRE_OK);
    buf[1] = KEYS_ROLE_COUNT;
    CHECK_EQ(wire_open(&test_ring, buf, len, FRAME_MAX, NULL, &out, &err),
             CADRE_EAUTH);
    buf[1] = 0xff;
    CHECK_EQ(wire_open(&test_ring, buf, len, FRAME_MAX, NULL, &out, &err),
             CADRE_EAUTH);
}

TEST(flipped_bytes_never_open)
{
    uint8_t    frame[512], copy[512];
    size_t     len = test_sample_frame(frame, sizeof(frame));
    struct msg out;
    cd_err     err;

    REQUIRE(len > WIRE_OVERHEAD);
    /* The untouched frame opens. */
    memcpy(copy, frame, len);
    REQUIRE_EQ(wire_open(&test_ring, copy, len, FRAME_MAX, NULL, &out, &err),
               CADRE_OK);
    msg_free(&out);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int rc;

            memcpy(copy, frame, len);
            copy[i] ^= (uint8_t)(1u << bit);
            cd_err_clear(&err);
            rc = wire_open(&test_ring, copy, len, FRAME_MAX, NULL, &out, &err);
            if (rc != CADRE_EAUTH && rc != CADRE_EPROTO) {
                tap_fail(__FILE__, __LINE__, "byte %zu bit %d: rc %d", i, bit,
                         rc);
                if (rc == CADRE_OK)
                    msg_free(&out);
            }
            CHECK(strncmp(err.msg, "frame: ", 7) == 0);
        }
    }
}

TEST(truncated_frames_fail)
{
    uint8_t    frame[512], copy[512];
    size_t     len = test_sample_frame(frame, sizeof(frame));
    struct msg out;
    cd_err     err;

    REQUIRE(len > WIRE_OVERHEAD);
    for (size_t n = 0; n < len; n++) {
        int rc;

        memcpy(copy, frame, len);
        rc = wire_open(&test_ring, copy, n, FRAME_MAX, NULL, &out, &err);
        if (rc != CADRE_EPROTO && rc != CADRE_EAUTH) {
            tap_fail(__FILE__, __LINE__, "length %zu: rc %d", n, rc);
            if (rc == CADRE_OK)
                msg_free(&out);
        }
    }
    /* Truncated with the length field fixed up to match: the tag fails. */
    for (size_t n = WIRE_OVERHEAD; n < len; n++) {
        memcpy(copy, frame, len);
        cd_put_u32be(copy + 36, (uint32_t)(n - WIRE_OVERHEAD));
        CHECK_EQ(wire_open(&test_ring, copy, n, FRAME_MAX, NULL, &out, &err),
                 CADRE_EAUTH);
    }
    /* One byte too many. */
    memcpy(copy, frame, len);
    copy[len] = 0;
    CHECK_EQ(wire_open(&test_ring, copy, len + 1, FRAME_MAX, NULL, &out, &err),
             CADRE_EPROTO);
    /* A NULL err is fine. */
    CHECK_EQ(wire_open(&test_ring, copy, 3, FRAME_MAX, NULL, &out, NULL),
             CADRE_EPROTO);
}

TEST(oversized_before_decryption)
{
    uint8_t    frame[512], copy[512];
    size_t     len = test_sample_frame(frame, sizeof(frame));
    struct msg out;
    cd_err     err;

    REQUIRE(len > WIRE_OVERHEAD);
    memcpy(copy, frame, len);
    CHECK_EQ(wire_open(&test_ring, copy, len, len - 1, NULL, &out, &err),
             CADRE_ETOOBIG);
    CHECK_CONTAINS(err.msg, "over the limit");
    /* Nothing was decrypted: opening in place would have changed the text. */
    CHECK(memcmp(copy, frame, len) == 0);
    /* Oversized beats every other check, even a garbage header. */
    memset(copy, 0xee, sizeof(copy));
    CHECK_EQ(wire_open(&test_ring, copy, sizeof(copy), 100, NULL, &out, &err),
             CADRE_ETOOBIG);
    /* At the limit exactly it opens. */
    memcpy(copy, frame, len);
    REQUIRE_EQ(wire_open(&test_ring, copy, len, len, NULL, &out, &err),
               CADRE_OK);
    msg_free(&out);
}

TEST(seal_limits)
{
    struct msg m;
    uint8_t    buf[256];
    size_t     size, len;

    test_status_request(&m);
    size = wire_frame_size(&m);
    REQUIRE(size > WIRE_OVERHEAD);
    for (size_t cap = 0; cap < size; cap++)
        CHECK_EQ(wire_seal(&test_client, &m, buf, cap, FRAME_MAX, &len),
                 CADRE_ETOOBIG);
    CHECK_EQ(wire_seal(&test_client, &m, buf, sizeof(buf), size - 1, &len),
             CADRE_ETOOBIG);
    CHECK_EQ(wire_seal(&test_client, &m, buf, size, size, &len), CADRE_OK);
    CHECK_EQ(len, size);

    /* Invalid messages. */
    m.kind = MSG_NONE;
    CHECK_EQ(wire_frame_size(&m), 0);
    CHECK_EQ(wire_seal(&test_client, &m, buf, sizeof(buf), FRAME_MAX, &len),
             CADRE_EINVAL);
    m.kind = (enum msg_kind)99;
    CHECK_EQ(msg_packed_size(&m), 0);
    CHECK_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_EINVAL);
    CHECK_EQ(msg_pack(NULL, buf, sizeof(buf), &len), CADRE_EINVAL);
    {
        struct msg_new_job j;

        memset(&j, 0, sizeof(j));
        j.payload.len = 5; /* and no data */
        memset(&m, 0, sizeof(m));
        m.kind = MSG_DISPATCH;
        m.u.dispatch.jobs = &j;
        m.u.dispatch.jobs_n = 1;
        CHECK_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_EINVAL);
        m.u.dispatch.jobs = NULL;
        CHECK_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_EINVAL);
    }
    {
        struct msg_outcome o;

        memset(&o, 0, sizeof(o));
        o.kind = MSG_OUTCOME_RETURN + 1;
        memset(&m, 0, sizeof(m));
        m.kind = MSG_FETCH;
        m.u.fetch.outcomes = &o;
        m.u.fetch.outcomes_n = 1;
        CHECK_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_EINVAL);
    }
    {
        const char *qs[] = {"a", NULL};

        memset(&m, 0, sizeof(m));
        m.kind = MSG_FETCH;
        m.u.fetch.queues = qs;
        m.u.fetch.queues_n = 2;
        CHECK_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_EINVAL);
    }
    {
        struct msg_job_result r;

        memset(&r, 0, sizeof(r));
        r.status = CADRE_UNKNOWN + 1;
        memset(&m, 0, sizeof(m));
        m.kind = MSG_WAIT_REPLY;
        m.u.wait_reply.results = &r;
        m.u.wait_reply.results_n = 1;
        CHECK_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_EINVAL);
    }
}

TEST(msg_pack_exact_capacity)
{
    static const uint8_t payload[300] = {1};
    struct msg_new_job   jobs[40];
    struct msg           m;
    uint8_t             *buf;
    size_t               size, len;

    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 40; i++) {
        test_id(&jobs[i].id, i);
        jobs[i].task = "t";
        jobs[i].payload.data = payload;
        jobs[i].payload.len = sizeof(payload);
    }
    memset(&m, 0, sizeof(m));
    m.request_id = 300; /* a two-byte varint */
    m.kind = MSG_DISPATCH;
    m.u.dispatch.jobs = jobs;
    m.u.dispatch.jobs_n = 40;
    size = msg_packed_size(&m);
    REQUIRE(size > 40 * 300);
    buf = malloc(size);
    /* A few caps below the size: ETOOBIG, and nothing written past cap
     * (ASan would see it: buf is exactly size bytes). */
    for (size_t cap = size - 3; cap < size; cap++)
        CHECK_EQ(msg_pack(&m, buf, cap, &len), CADRE_ETOOBIG);
    CHECK_EQ(msg_pack(&m, buf, size, &len), CADRE_OK);
    CHECK_EQ(len, size);
    free(buf);
}

TEST(garbage_behind_valid_tag_is_eproto)
{
    static const uint8_t ff[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t just_request_id[] = {0x08, 0x05};  /* no body */
    static const uint8_t unknown_field[] = {0xa2, 0x06, 0}; /* field 100 */
    static const uint8_t short_body[] = {0x52, 0x05, 0x0a}; /* len 5, 1 byte */
    static const uint8_t bad_wire_type[] = {0x53};          /* group start */
    static const uint8_t long_varint[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80,
                                          0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    uint8_t              rnd[200];
    uint64_t             x = 0x9e3779b97f4a7c15ull;
    int                  ok = 0, proto = 0;

    CHECK_EQ(test_open_payload(NULL, 0), CADRE_EPROTO); /* empty Envelope */
    CHECK_EQ(test_open_payload(ff, sizeof(ff)), CADRE_EPROTO);
    CHECK_EQ(test_open_payload(just_request_id, sizeof(just_request_id)),
             CADRE_EPROTO);
    CHECK_EQ(test_open_payload(unknown_field, sizeof(unknown_field)),
             CADRE_EPROTO);
    CHECK_EQ(test_open_payload(short_body, sizeof(short_body)), CADRE_EPROTO);
    CHECK_EQ(test_open_payload(bad_wire_type, sizeof(bad_wire_type)),
             CADRE_EPROTO);
    CHECK_EQ(test_open_payload(long_varint, sizeof(long_varint)), CADRE_EPROTO);
    /* Random payloads (fixed seed): never a crash, never anything but OK
     * (random bytes can be a valid Envelope) or EPROTO. */
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % (int)sizeof(rnd));
        int    rc;

        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rnd[i] = (uint8_t)x;
        }
        rc = test_open_payload(rnd, n);
        if (rc == CADRE_OK)
            ok++;
        else if (rc == CADRE_EPROTO)
            proto++;
        else
            tap_fail(__FILE__, __LINE__, "round %d: rc %d", round, rc);
    }
    CHECK(proto > 1900);
    printf("# random payloads: %d EPROTO, %d decoded\n", proto, ok);
}

TEST(wrong_id_lengths_are_eproto)
{
    static const size_t bad[] = {0, 1, 15, 17, 32};
    uint8_t             idb[32] = {0};

    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        ProtobufCBinaryData id = {bad[b], idb};
        Cadre__Envelope     e = CADRE__ENVELOPE__INIT;

        { /* NewJob */
            Cadre__Dispatch d = CADRE__DISPATCH__INIT;
            Cadre__NewJob   j = CADRE__NEW_JOB__INIT, *jp = &j;

            j.id = id;
            d.n_jobs = 1;
            d.jobs = &jp;
            e.body_case = CADRE__ENVELOPE__BODY_DISPATCH;
            e.dispatch = &d;
            CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        }
        { /* DispatchReply: one good id, one bad */
            Cadre__DispatchReply r = CADRE__DISPATCH_REPLY__INIT;
            ProtobufCBinaryData  ids[2] = {{16, idb}, id};

            r.n_ids = 2;
            r.ids = ids;
            e.body_case = CADRE__ENVELOPE__BODY_DISPATCH_REPLY;
            e.dispatch_reply = &r;
            CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        }
        { /* Job */
            Cadre__Jobs js = CADRE__JOBS__INIT;
            Cadre__Job  j = CADRE__JOB__INIT, *jp = &j;

            j.id = id;
            js.n_jobs = 1;
            js.jobs = &jp;
            e.body_case = CADRE__ENVELOPE__BODY_JOBS;
            e.jobs = &js;
            CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        }
        { /* Outcome */
            Cadre__Fetch   f = CADRE__FETCH__INIT;
            Cadre__Outcome o = CADRE__OUTCOME__INIT, *op = &o;

            o.id = id;
            f.n_outcomes = 1;
            f.outcomes = &op;
            e.body_case = CADRE__ENVELOPE__BODY_FETCH;
            e.fetch = &f;
            CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        }
        { /* Wait */
            Cadre__Wait w = CADRE__WAIT__INIT;

            w.n_ids = 1;
            w.ids = &id;
            e.body_case = CADRE__ENVELOPE__BODY_WAIT;
            e.wait = &w;
            CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        }
        { /* JobResult */
            Cadre__WaitReply w = CADRE__WAIT_REPLY__INIT;
            Cadre__JobResult r = CADRE__JOB_RESULT__INIT, *rp = &r;

            r.id = id;
            w.n_results = 1;
            w.results = &rp;
            e.body_case = CADRE__ENVELOPE__BODY_WAIT_REPLY;
            e.wait_reply = &w;
            CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        }
    }
}

TEST(out_of_range_values_are_eproto)
{
    uint8_t             idb[16] = {1};
    ProtobufCBinaryData id = {16, idb};
    Cadre__Envelope     e = CADRE__ENVELOPE__INIT;

    { /* duplicate flags that do not match the ids */
        Cadre__DispatchReply r = CADRE__DISPATCH_REPLY__INIT;
        ProtobufCBinaryData  ids[2] = {id, id};
        protobuf_c_boolean   dup[1] = {1};

        r.n_ids = 2;
        r.ids = ids;
        r.n_duplicate = 1;
        r.duplicate = dup;
        e.body_case = CADRE__ENVELOPE__BODY_DISPATCH_REPLY;
        e.dispatch_reply = &r;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    }
    { /* outcome kind */
        Cadre__Fetch   f = CADRE__FETCH__INIT;
        Cadre__Outcome o = CADRE__OUTCOME__INIT, *op = &o;

        o.id = id;
        o.kind = (Cadre__OutcomeKind)6;
        f.n_outcomes = 1;
        f.outcomes = &op;
        e.body_case = CADRE__ENVELOPE__BODY_FETCH;
        e.fetch = &f;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        o.kind = (Cadre__OutcomeKind)-1;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        o.kind = CADRE__OUTCOME_KIND__OUTCOME_RETURN;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
    }
    { /* job result status */
        Cadre__WaitReply w = CADRE__WAIT_REPLY__INIT;
        Cadre__JobResult r = CADRE__JOB_RESULT__INIT, *rp = &r;

        r.id = id;
        r.status = CADRE_UNKNOWN + 1;
        w.n_results = 1;
        w.results = &rp;
        e.body_case = CADRE__ENVELOPE__BODY_WAIT_REPLY;
        e.wait_reply = &w;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    }
    { /* error codes: 0 would read as success */
        Cadre__Error er = CADRE__ERROR__INIT;

        e.body_case = CADRE__ENVELOPE__BODY_ERROR;
        e.error = &er;
        er.code = CADRE_OK;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        er.code = CADRE_E_COUNT;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        er.code = CADRE_EINTERNAL;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
    }
}

TEST(alloc_faults_are_enomem)
{
    uint8_t    frame[512], copy[512];
    size_t     len = test_sample_frame(frame, sizeof(frame));
    struct msg out;
    cd_err     err;
    int        rc = -1;
    long       i;

    REQUIRE(len > WIRE_OVERHEAD);
    for (i = 0; i < 100; i++) {
        memcpy(copy, frame, len);
        cd_alloc_fail_after(i);
        rc = wire_open(&test_ring, copy, len, FRAME_MAX, NULL, &out, &err);
        cd_alloc_fail_after(-1);
        if (rc == CADRE_OK)
            break;
        CHECK_EQ(rc, CADRE_ENOMEM);
        CHECK_CONTAINS(err.msg, "out of memory");
        CHECK_EQ(out.kind, MSG_NONE);
    }
    REQUIRE_EQ(rc, CADRE_OK);
    CHECK(i > 0); /* at least one allocation was failed */
    CHECK_EQ(out.kind, MSG_DISPATCH);
    msg_free(&out);
}

TEST(msg_kind_names)
{
    CHECK_STR(msg_kind_name(MSG_DISPATCH), "dispatch");
    CHECK_STR(msg_kind_name(MSG_WAIT_REPLY), "wait_reply");
    CHECK_STR(msg_kind_name(MSG_ERROR), "error");
    CHECK_STR(msg_kind_name(MSG_ADMIN_REPLY), "admin_reply");
    CHECK_STR(msg_kind_name(MSG_EVENT), "event");
    CHECK_STR(msg_kind_name((enum msg_kind)42), "unknown");
    msg_free(NULL);
}

/* ---- operator messages (failed jobs, queues) ----------------------------- */

TEST(roundtrip_failed_query)
{
    static const uint8_t cursor[16] = {7, 7, 7};
    cadre_job_id         ids[2];
    struct msg           m, out;

    test_id(&ids[0], 1);
    test_id(&ids[1], 2);
    memset(&m, 0, sizeof(m));
    m.request_id = 11;
    m.kind = MSG_FAILED_QUERY;
    m.u.failed_query.queue = "emails";
    m.u.failed_query.after = (msg_bytes){cursor, sizeof(cursor)};
    m.u.failed_query.limit = 500;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_FAILED_QUERY);
    CHECK_EQ(out.request_id, 11);
    CHECK_STR(out.u.failed_query.queue, "emails");
    CHECK(test_bytes_is(out.u.failed_query.after, cursor, sizeof(cursor)));
    CHECK_EQ(out.u.failed_query.limit, 500);
    CHECK_EQ(out.u.failed_query.ids_n, 0);
    msg_free(&out);

    memset(&m.u.failed_query, 0, sizeof(m.u.failed_query));
    m.u.failed_query.ids = ids;
    m.u.failed_query.ids_n = 2;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.u.failed_query.ids_n, 2);
    CHECK(test_id_is(&out.u.failed_query.ids[1], 2));
    CHECK_STR(out.u.failed_query.queue, "");
    CHECK_EQ(out.u.failed_query.after.len, 0);
    msg_free(&out);
}

TEST(roundtrip_failed_jobs)
{
    static const uint8_t  payload[] = {0, 'x', 255};
    static const uint8_t  next[16] = {9};
    struct msg_failed_job js[2];
    struct msg            m, out;

    memset(js, 0, sizeof(js));
    test_id(&js[0].id, 3);
    js[0].queue = "default";
    js[0].task = "fail";
    js[0].attempts = 3;
    js[0].tries = 3;
    js[0].error_type = "DemoError";
    js[0].error = "card declined";
    js[0].failed_at_ms = 1700000000123ull;
    js[0].created_at_ms = 1700000000000ull;
    js[0].payload = (msg_bytes){payload, sizeof(payload)};
    js[0].payload_len = sizeof(payload);
    test_id(&js[1].id, 4);
    js[1].payload_len = 1u << 20; /* a listing: size only */
    memset(&m, 0, sizeof(m));
    m.kind = MSG_FAILED_JOBS;
    m.u.failed_jobs.jobs = js;
    m.u.failed_jobs.jobs_n = 2;
    m.u.failed_jobs.next = (msg_bytes){next, sizeof(next)};
    m.u.failed_jobs.more = 1;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_FAILED_JOBS);
    REQUIRE_EQ(out.u.failed_jobs.jobs_n, 2);
    CHECK(out.u.failed_jobs.more);
    CHECK(test_bytes_is(out.u.failed_jobs.next, next, sizeof(next)));
    {
        const struct msg_failed_job *j = &out.u.failed_jobs.jobs[0];

        CHECK(test_id_is(&j->id, 3));
        CHECK_STR(j->queue, "default");
        CHECK_STR(j->task, "fail");
        CHECK_EQ(j->attempts, 3);
        CHECK_EQ(j->tries, 3);
        CHECK_STR(j->error_type, "DemoError");
        CHECK_STR(j->error, "card declined");
        CHECK_EQ(j->failed_at_ms, 1700000000123ull);
        CHECK_EQ(j->created_at_ms, 1700000000000ull);
        CHECK(test_bytes_is(j->payload, payload, sizeof(payload)));
        CHECK_EQ(j->payload_len, sizeof(payload));
    }
    CHECK(test_id_is(&out.u.failed_jobs.jobs[1].id, 4));
    CHECK_EQ(out.u.failed_jobs.jobs[1].payload.len, 0);
    CHECK_EQ(out.u.failed_jobs.jobs[1].payload_len, 1u << 20);
    msg_free(&out);

    /* A cursor over MSG_CURSOR_MAX is not encoded. */
    {
        static const uint8_t big[MSG_CURSOR_MAX + 1];

        m.u.failed_jobs.next = (msg_bytes){big, sizeof(big)};
        CHECK_EQ(msg_packed_size(&m), 0);
    }
}

TEST(roundtrip_admin)
{
    static const uint8_t after[24] = {1, 2, 3};
    cadre_job_id         ids[3];
    struct msg           m, out;

    for (int i = 0; i < 3; i++)
        test_id(&ids[i], 10 + i);
    memset(&m, 0, sizeof(m));
    m.request_id = 77;
    m.kind = MSG_ADMIN;
    m.u.admin.op = MSG_ADMIN_FAILED_RETRY;
    m.u.admin.ids = ids;
    m.u.admin.ids_n = 3;
    m.u.admin.queue = "payments";
    m.u.admin.older_than_ms = 3600000;
    m.u.admin.after = (msg_bytes){after, sizeof(after)};
    m.u.admin.all = 1;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_ADMIN);
    CHECK_EQ(out.request_id, 77);
    CHECK_EQ(out.u.admin.op, MSG_ADMIN_FAILED_RETRY);
    REQUIRE_EQ(out.u.admin.ids_n, 3);
    CHECK(test_id_is(&out.u.admin.ids[2], 12));
    CHECK_STR(out.u.admin.queue, "payments");
    CHECK_EQ(out.u.admin.older_than_ms, 3600000);
    CHECK(test_bytes_is(out.u.admin.after, after, sizeof(after)));
    CHECK(out.u.admin.all);
    msg_free(&out);

    /* Every op survives; NONE and unknown ops are not encoded. */
    memset(&m.u.admin, 0, sizeof(m.u.admin));
    for (int op = MSG_ADMIN_FAILED_RETRY; op <= MSG_ADMIN_QUEUE_PAUSED; op++) {
        m.u.admin.op = op;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        CHECK_EQ(out.u.admin.op, op);
        CHECK(!out.u.admin.all);
        msg_free(&out);
    }
    m.u.admin.op = MSG_ADMIN_NONE;
    CHECK_EQ(msg_packed_size(&m), 0);
    m.u.admin.op = MSG_ADMIN_OP_LAST + 1;
    CHECK_EQ(msg_packed_size(&m), 0);
}

TEST(roundtrip_admin_reply)
{
    static const char   *queues[] = {"emails", "payments"};
    static const uint8_t next[16] = {5};
    cadre_job_id         missing[1];
    struct msg           m, out;

    test_id(&missing[0], 20);
    memset(&m, 0, sizeof(m));
    m.kind = MSG_ADMIN_REPLY;
    m.u.admin_reply.count = 10000;
    m.u.admin_reply.next = (msg_bytes){next, sizeof(next)};
    m.u.admin_reply.more = 1;
    m.u.admin_reply.missing = missing;
    m.u.admin_reply.missing_n = 1;
    m.u.admin_reply.queues = queues;
    m.u.admin_reply.queues_n = 2;
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    REQUIRE_EQ(out.kind, MSG_ADMIN_REPLY);
    CHECK_EQ(out.u.admin_reply.count, 10000);
    CHECK(test_bytes_is(out.u.admin_reply.next, next, sizeof(next)));
    CHECK(out.u.admin_reply.more);
    REQUIRE_EQ(out.u.admin_reply.missing_n, 1);
    CHECK(test_id_is(&out.u.admin_reply.missing[0], 20));
    REQUIRE_EQ(out.u.admin_reply.queues_n, 2);
    CHECK_STR(out.u.admin_reply.queues[0], "emails");
    CHECK_STR(out.u.admin_reply.queues[1], "payments");
    msg_free(&out);

    /* An empty reply: count 0, nothing more. */
    memset(&m.u.admin_reply, 0, sizeof(m.u.admin_reply));
    REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
    CHECK_EQ(out.u.admin_reply.count, 0);
    CHECK(!out.u.admin_reply.more);
    CHECK_EQ(out.u.admin_reply.missing_n, 0);
    CHECK_EQ(out.u.admin_reply.queues_n, 0);
    msg_free(&out);
}

/* More elements than one encoding chunk, for each operator message. */
TEST(roundtrip_admin_many_elements)
{
    enum { N = 40 };
    static const uint8_t  cursor[16] = {3};
    cadre_job_id          ids[N];
    struct msg_failed_job js[N];
    struct msg            m, out;
    const size_t          counts[] = {0, 1, 16, 17, N};

    memset(js, 0, sizeof(js));
    for (int i = 0; i < N; i++) {
        test_id(&ids[i], i);
        js[i].id = ids[i];
        js[i].attempts = (uint32_t)i;
    }
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        size_t n = counts[c];

        memset(&m, 0, sizeof(m));
        m.kind = MSG_FAILED_QUERY;
        m.u.failed_query.ids = ids;
        m.u.failed_query.ids_n = n;
        m.u.failed_query.limit = 9;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.failed_query.ids_n, n);
        CHECK_EQ(out.u.failed_query.limit, 9);
        for (size_t i = 0; i < n; i++)
            CHECK(test_id_is(&out.u.failed_query.ids[i], (int)i));
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_FAILED_JOBS;
        m.u.failed_jobs.jobs = js;
        m.u.failed_jobs.jobs_n = n;
        m.u.failed_jobs.next = (msg_bytes){cursor, sizeof(cursor)};
        m.u.failed_jobs.more = 1;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        REQUIRE_EQ(out.u.failed_jobs.jobs_n, n);
        CHECK(out.u.failed_jobs.more);
        CHECK(test_bytes_is(out.u.failed_jobs.next, cursor, sizeof(cursor)));
        for (size_t i = 0; i < n; i++)
            CHECK_EQ(out.u.failed_jobs.jobs[i].attempts, i);
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_ADMIN;
        m.u.admin.op = MSG_ADMIN_FAILED_FORGET;
        m.u.admin.ids = ids;
        m.u.admin.ids_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        CHECK_EQ(out.u.admin.op, MSG_ADMIN_FAILED_FORGET);
        REQUIRE_EQ(out.u.admin.ids_n, n);
        for (size_t i = 0; i < n; i++)
            CHECK(test_id_is(&out.u.admin.ids[i], (int)i));
        msg_free(&out);

        memset(&m, 0, sizeof(m));
        m.kind = MSG_ADMIN_REPLY;
        m.u.admin_reply.count = 5;
        m.u.admin_reply.missing = ids;
        m.u.admin_reply.missing_n = n;
        REQUIRE_EQ(test_roundtrip(&m, &out, NULL, NULL), CADRE_OK);
        CHECK_EQ(out.u.admin_reply.count, 5);
        REQUIRE_EQ(out.u.admin_reply.missing_n, n);
        for (size_t i = 0; i < n; i++)
            CHECK(test_id_is(&out.u.admin_reply.missing[i], (int)i));
        msg_free(&out);
    }
}

/* Decoding validates the operator messages like every other: ops in range,
 * ids of 16 bytes, cursors of at most MSG_CURSOR_MAX bytes. */
TEST(bad_admin_messages_are_eproto)
{
    uint8_t             idb[17] = {1};
    uint8_t             big[MSG_CURSOR_MAX + 1] = {0};
    ProtobufCBinaryData id = {16, idb}, badid = {17, idb};
    ProtobufCBinaryData bigc = {sizeof(big), big};
    Cadre__Envelope     e = CADRE__ENVELOPE__INIT;

    { /* Admin: op */
        Cadre__Admin a = CADRE__ADMIN__INIT;

        e.body_case = CADRE__ENVELOPE__BODY_ADMIN;
        e.admin = &a;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO); /* ADMIN_NONE */
        a.op = (Cadre__AdminOp)(MSG_ADMIN_OP_LAST + 1);
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        a.op = (Cadre__AdminOp)-1;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        a.op = CADRE__ADMIN_OP__ADMIN_QUEUE_PAUSED;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
        a.after = bigc;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        a.after = (ProtobufCBinaryData){0, NULL};
        a.n_ids = 1;
        a.ids = &badid;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        a.ids = &id;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
    }
    { /* FailedQuery: ids, cursor */
        Cadre__FailedQuery q = CADRE__FAILED_QUERY__INIT;

        e.body_case = CADRE__ENVELOPE__BODY_FAILED_QUERY;
        e.failed_query = &q;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
        q.n_ids = 1;
        q.ids = &badid;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        q.n_ids = 0;
        q.after = bigc;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    }
    { /* FailedJobs: job ids, cursor */
        Cadre__FailedJobs js = CADRE__FAILED_JOBS__INIT;
        Cadre__FailedJob  j = CADRE__FAILED_JOB__INIT, *jp = &j;

        j.id = badid;
        js.n_jobs = 1;
        js.jobs = &jp;
        e.body_case = CADRE__ENVELOPE__BODY_FAILED_JOBS;
        e.failed_jobs = &js;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        j.id = id;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
        js.next = bigc;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    }
    { /* AdminReply: missing ids, cursor */
        Cadre__AdminReply r = CADRE__ADMIN_REPLY__INIT;

        r.n_missing = 1;
        r.missing = &badid;
        e.body_case = CADRE__ENVELOPE__BODY_ADMIN_REPLY;
        e.admin_reply = &r;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
        r.missing = &id;
        CHECK_EQ(test_open_envelope(&e), CADRE_OK);
        r.next = bigc;
        CHECK_EQ(test_open_envelope(&e), CADRE_EPROTO);
    }
}

/* Not a check: the cost of one seal + open of a 100-byte message, for the
 * latency budget (DESIGN.md, Performance design). */
TEST(timing_seal_open_100b)
{
    static uint8_t     payload[100];
    struct msg_new_job j;
    struct msg         m, out;
    uint8_t            buf[512];
    size_t             len;
    cd_err             err;
    enum { ROUNDS = 20000 };
    uint64_t t0, t1;

    memset(&j, 0, sizeof(j));
    test_id(&j.id, 1);
    j.task = "echo";
    memset(&m, 0, sizeof(m));
    m.kind = MSG_DISPATCH;
    m.u.dispatch.jobs = &j;
    m.u.dispatch.jobs_n = 1;
    /* Make the whole packed Envelope 100 bytes. */
    j.payload.data = payload;
    for (j.payload.len = 0; j.payload.len < sizeof(payload); j.payload.len++)
        if (msg_packed_size(&m) == 100)
            break;
    REQUIRE_EQ(msg_packed_size(&m), 100);
    t0 = cd_mono_us();
    for (int i = 0; i < ROUNDS; i++) {
        REQUIRE_EQ(
            wire_seal(&test_client, &m, buf, sizeof(buf), FRAME_MAX, &len),
            CADRE_OK);
        REQUIRE_EQ(wire_open(&test_ring, buf, len, FRAME_MAX, NULL, &out, &err),
                   CADRE_OK);
        msg_free(&out);
    }
    t1 = cd_mono_us();
    printf("# seal+open of a 100-byte Envelope: %.0f ns\n",
           (double)(t1 - t0) * 1000.0 / ROUNDS);
}

/* Empty sub-messages cost two bytes on the wire and a struct each when
 * decoded: the decode budget refuses such a frame instead of allocating
 * gigabytes. */
TEST(wire_many_empty_submessages_are_refused)
{
    size_t     k = 500000, len = 0;
    uint8_t   *buf = malloc(k * 2 + 16);
    struct msg m;
    size_t     body = k * 2;

    REQUIRE(buf != NULL);
    buf[len++] = 0x8a; /* Envelope.status (field 17, length-delimited) */
    buf[len++] = 0x01;
    while (body >= 0x80) { /* varint length */
        buf[len++] = (uint8_t)(body | 0x80);
        body >>= 7;
    }
    buf[len++] = (uint8_t)body;
    for (size_t i = 0; i < k; i++) {
        buf[len++] = (8 << 3) | 2; /* Status.queues, an empty QueueStats */
        buf[len++] = 0;
    }
    CHECK_EQ(msg_unpack(buf, len, &m), CADRE_EPROTO);
    msg_free(&m);
    /* The same shape at a sane size decodes. */
    k = 100;
    len = 0;
    body = k * 2;
    buf[len++] = 0x8a;
    buf[len++] = 0x01;
    while (body >= 0x80) {
        buf[len++] = (uint8_t)(body | 0x80);
        body >>= 7;
    }
    buf[len++] = (uint8_t)body;
    for (size_t i = 0; i < k; i++) {
        buf[len++] = (8 << 3) | 2;
        buf[len++] = 0;
    }
    REQUIRE_EQ(msg_unpack(buf, len, &m), CADRE_OK);
    CHECK_EQ(m.u.status.queues_n, 100);
    msg_free(&m);
    free(buf);
}

/* Heartbeats: a Fetch carries touches (id + lease), a Job its lease time. */
TEST(roundtrip_touch_and_lease_ms)
{
    struct msg_touch touch[2];
    struct msg_job   job = {.task = "t", .lease = 9, .lease_ms = 90000};
    struct msg       m = {.request_id = 3, .kind = MSG_FETCH}, out;
    uint8_t          buf[4096];
    size_t           len = 0;

    memset(touch, 0, sizeof(touch));
    touch[0].id.b[0] = 1;
    touch[0].lease = 77;
    touch[1].id.b[15] = 2;
    touch[1].lease = 78;
    m.u.fetch.touch = touch;
    m.u.fetch.touch_n = 2;
    REQUIRE_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_OK);
    REQUIRE_EQ(msg_unpack(buf, len, &out), CADRE_OK);
    REQUIRE_EQ(out.u.fetch.touch_n, 2);
    CHECK_EQ(out.u.fetch.touch[0].lease, 77);
    CHECK_EQ(out.u.fetch.touch[0].id.b[0], 1);
    CHECK_EQ(out.u.fetch.touch[1].id.b[15], 2);
    msg_free(&out);
    m.u.fetch.touch_n = MSG_TOUCH_MAX + 1; /* more than one Fetch carries */
    CHECK(msg_pack(&m, buf, sizeof(buf), &len) != CADRE_OK);

    m = (struct msg){.request_id = 4, .kind = MSG_JOBS};
    m.u.jobs.jobs = &job;
    m.u.jobs.jobs_n = 1;
    REQUIRE_EQ(msg_pack(&m, buf, sizeof(buf), &len), CADRE_OK);
    REQUIRE_EQ(msg_unpack(buf, len, &out), CADRE_OK);
    REQUIRE_EQ(out.u.jobs.jobs_n, 1);
    CHECK_EQ(out.u.jobs.jobs[0].lease_ms, 90000);
    msg_free(&out);
}

int
main(void)
{
    test_setup();
    TAP_RUN(
        T(roundtrip_touch_and_lease_ms),
        T(wire_many_empty_submessages_are_refused), T(roundtrip_dispatch),
        T(roundtrip_dispatch_reply), T(roundtrip_fetch), T(roundtrip_jobs),
        T(roundtrip_wait), T(roundtrip_wait_reply), T(roundtrip_status_request),
        T(roundtrip_status), T(status_strings_truncate), T(roundtrip_error),
        T(roundtrip_event), T(bad_events_are_eproto),
        T(roundtrip_many_elements), T(header_fields), T(wrong_key_is_eauth),
        T(flipped_bytes_never_open), T(truncated_frames_fail),
        T(oversized_before_decryption), T(seal_limits),
        T(msg_pack_exact_capacity), T(garbage_behind_valid_tag_is_eproto),
        T(wrong_id_lengths_are_eproto), T(out_of_range_values_are_eproto),
        T(alloc_faults_are_enomem), T(msg_kind_names),
        T(roundtrip_failed_query), T(roundtrip_failed_jobs), T(roundtrip_admin),
        T(roundtrip_admin_reply), T(roundtrip_admin_many_elements),
        T(bad_admin_messages_are_eproto), T(timing_seal_open_100b));
}
