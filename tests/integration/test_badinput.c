/* test_badinput.c: hostile frames on the api socket. Garbage, a truncated
 * frame, a frame over the limit, a frame sealed with the wrong key, and one
 * sealed with a worker key asking as a client: the node counts them, stores
 * nothing, answers the intruder nothing useful, and keeps serving. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/id.h"
#include "crypto/keys.h"
#include "proto/wire.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;

/* Sends one raw frame on a fresh req socket; returns 1 if any reply came
 * within timeout_ms (reply bytes into *reply_len). */
static int
raw_send(const char *url, const void *frame, size_t len, int timeout_ms,
         size_t *reply_len)
{
    nng_socket s;
    nng_msg   *m = NULL;
    int        got = 0;

    if (nng_req0_open(&s) != 0)
        return -1;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    if (nng_dial(s, url, NULL, 0) != 0) {
        nng_close(s);
        return -1;
    }
    if (nng_msg_alloc(&m, len) == 0) {
        memcpy(nng_msg_body(m), frame, len);
        if (nng_sendmsg(s, m, 0) != 0)
            nng_msg_free(m);
        else if (nng_recvmsg(s, &m, 0) == 0) {
            got = 1;
            *reply_len = nng_msg_len(m);
            nng_msg_free(m);
        }
    }
    nng_close(s);
    return got;
}

/* A valid-looking Dispatch of one echo job sealed with key as role. */
static size_t
sealed_dispatch(const keys_key *key, int role, uint8_t *buf, size_t cap)
{
    struct wire_sender sender;
    struct msg_new_job job = {.task = "echo",
                              .payload = {(const uint8_t *)"x", 1}};
    struct msg         m = {.request_id = 7, .kind = MSG_DISPATCH};
    size_t             len = 0;

    cd_id_new(&job.id, 1);
    m.u.dispatch.jobs = &job;
    m.u.dispatch.jobs_n = 1;
    wire_sender_init(&sender, role, key, 0);
    if (wire_seal(&sender, &m, buf, cap, WIRE_MAX_DEFAULT, &len) != CADRE_OK)
        return 0;
    return len;
}

static uint64_t
total_jobs(cadre_client *c, uint64_t *bad_frames)
{
    cadre_status st;
    uint64_t     n = 0;

    if (cadre_status_get(c, &st) != CADRE_OK)
        return UINT64_MAX;
    for (size_t i = 0; i < st.queues_n; i++)
        n += st.queues[i].ready + st.queues[i].delayed + st.queues[i].reserved +
             st.queues[i].done + st.queues[i].failed;
    *bad_frames = st.bad_frames;
    cadre_status_fini(&st);
    return n;
}

TEST(hostile_frames_are_dropped_and_counted)
{
    cadre_client_opts o;
    cadre_client     *c;
    char              err[256];
    uint8_t           frame[4096];
    size_t            len, rlen = 0;
    keys_key          wrong, master, worker;
    int               role;
    uint64_t          bad0 = 0, bad1 = 0;
    cadre_job_id      id;
    uint8_t          *huge;

    REQUIRE_EQ(keys_init(), CADRE_OK);
    memset(&node, 0, sizeof(node));
    REQUIRE_EQ(node_start(&node, tap_tmpdir(), "--max-frame", "65536", NULL),
               CADRE_OK);
    node_client_opts(&node, &o);
    REQUIRE_EQ(cadre_client_open(&o, &c, err, sizeof(err)), CADRE_OK);
    REQUIRE_EQ(total_jobs(c, &bad0), 0);
    CHECK_EQ(bad0, 0);

    /* 1. garbage bytes */
    memset(frame, 0xA5, 300);
    CHECK_EQ(raw_send(node.url, frame, 300, 500, &rlen), 0);
    /* 2. a truncated frame (a real one, cut short) */
    REQUIRE_EQ(keys_load(node.key_file, &role, &master, NULL), CADRE_OK);
    keys_derive(&master, KEYS_ROLE_CLIENT, &worker);
    len = sealed_dispatch(&worker, KEYS_ROLE_CLIENT, frame, sizeof(frame));
    REQUIRE(len > 60);
    CHECK_EQ(raw_send(node.url, frame, len - 10, 500, &rlen), 0);
    /* 3. a well-formed frame sealed with the wrong key */
    keys_generate(&wrong);
    len = sealed_dispatch(&wrong, KEYS_ROLE_CLIENT, frame, sizeof(frame));
    CHECK_EQ(raw_send(node.url, frame, len, 500, &rlen), 0);
    /* 4. a frame over the limit (nng drops it at the socket, or the node
     * counts it: either way nothing is stored and nothing answers) */
    huge = calloc(1, 200000);
    REQUIRE(huge != NULL);
    CHECK_EQ(raw_send(node.url, huge, 200000, 500, &rlen), 0);
    free(huge);
    /* 5. a header claiming a role the node has no key for (node role) */
    keys_derive(&master, KEYS_ROLE_NODE, &worker);
    len = sealed_dispatch(&worker, KEYS_ROLE_NODE, frame, sizeof(frame));
    CHECK_EQ(raw_send(node.url, frame, len, 500, &rlen), 0);

    /* Counted, nothing stored, and the node still serves clients. */
    CHECK_EQ(total_jobs(c, &bad1), 0);
    CHECK(bad1 >= 4);
    REQUIRE_EQ(cadre_dispatch(c, "echo", "ok", 2, NULL, &id), CADRE_OK);
    CHECK_EQ(total_jobs(c, &bad1), 1);

    /* The genuine frame, resent raw, is accepted (the key, not the
     * socket, is what is checked). */
    keys_derive(&master, KEYS_ROLE_CLIENT, &worker);
    len = sealed_dispatch(&worker, KEYS_ROLE_CLIENT, frame, sizeof(frame));
    CHECK_EQ(raw_send(node.url, frame, len, 2000, &rlen), 1);
    CHECK(rlen > WIRE_OVERHEAD);
    CHECK_EQ(total_jobs(c, &bad1), 2);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

TEST(a_client_key_cannot_fetch_jobs)
{
    cadre_client_opts  o;
    cadre_client      *c;
    char               err[256];
    uint8_t            frame[4096];
    keys_key           master, ck;
    int                role;
    size_t             len = 0, rlen = 0;
    struct wire_sender sender;
    const char        *queues[] = {"default"};
    struct msg         m = {.request_id = 9, .kind = MSG_FETCH};
    cadre_job_id       id;
    cadre_status       st;

    memset(&node, 0, sizeof(node));
    REQUIRE_EQ(node_start(&node, tap_tmpdir(), NULL), CADRE_OK);
    node_client_opts(&node, &o);
    REQUIRE_EQ(cadre_client_open(&o, &c, err, sizeof(err)), CADRE_OK);
    REQUIRE_EQ(cadre_dispatch(c, "echo", "secret", 6, NULL, &id), CADRE_OK);
    REQUIRE_EQ(keys_load(node.key_file, &role, &master, NULL), CADRE_OK);
    keys_derive(&master, KEYS_ROLE_CLIENT, &ck);
    wire_sender_init(&sender, KEYS_ROLE_CLIENT, &ck, 0);
    m.u.fetch.queues = queues;
    m.u.fetch.queues_n = 1;
    m.u.fetch.max = 10;
    REQUIRE_EQ(
        wire_seal(&sender, &m, frame, sizeof(frame), WIRE_MAX_DEFAULT, &len),
        CADRE_OK);
    /* It gets an error reply (a legitimate client may ask), not the job. */
    CHECK_EQ(raw_send(node.url, frame, len, 2000, &rlen), 1);
    REQUIRE_EQ(cadre_status_get(c, &st), CADRE_OK);
    REQUIRE_EQ(st.queues_n, 1);
    CHECK_EQ(st.queues[0].ready, 1);
    CHECK_EQ(st.queues[0].reserved, 0);
    cadre_status_fini(&st);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

int
main(void)
{
    TAP_RUN(T(hostile_frames_are_dropped_and_counted),
            T(a_client_key_cannot_fetch_jobs));
}
