/* test_raftguard.c: node/raftguard.c over a stub raft_io, with a fake
 * libraft that answers as 0.15 does (its last stored index). A follower's
 * own answer is held to what the request checked, inside the receive and
 * later; refusals and snapshot answers pass; a leader counts a reply only
 * up to what it sent in its term, and forgets on a new term; methods and
 * callbacks pass through, errors with their message. End to end (libraft
 * itself, faults, commits) is tests/unit/test_leader_fixture.c. */
#include <raft.h>
#include <stdio.h>
#include <string.h>

#include "node/raftguard.h"
#include "tests/lib/tap.h"

/* The wrapped implementation: what reached it, what it calls back. */
struct test_stub {
    struct raft_io      io;
    struct raft_message sent; /* the last message sent */
    unsigned            sent_n, appended_n, ticks, closed;
    int                 fail_send; /* RAFT_ error to return from send */
    raft_io_tick_cb     tick_cb;
    raft_io_recv_cb     recv_cb;
    struct raft_io     *seen_io; /* the io the last method was called on */
};

/* The fake libraft on top: how it answers an AppendEntries. */
struct test_raft {
    raft_term  term;
    raft_index last_stored; /* what 0.15 puts in its answer */
    int        answer;      /* 1: answer inside (refused if rejected) */
    raft_index rejected;
    int        store; /* 1: append the entries, answer later */
    unsigned   ticks, recv_n, closed;
    raft_index got_last; /* last_log_index of the last result received */
};

static struct test_stub *
test_stub_of(struct raft_io *io)
{
    return io->impl;
}

static int
test_stub_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                raft_io_recv_cb recv)
{
    struct test_stub *s = test_stub_of(io);

    (void)msecs;
    s->seen_io = io;
    s->tick_cb = tick;
    s->recv_cb = recv;
    return 0;
}

static int
test_stub_send(struct raft_io *io, struct raft_io_send *req,
               const struct raft_message *m, raft_io_send_cb cb)
{
    struct test_stub *s = test_stub_of(io);

    (void)req;
    (void)cb;
    s->seen_io = io;
    if (s->fail_send != 0) {
        snprintf(io->errmsg, sizeof(io->errmsg), "stub: send refused");
        return s->fail_send;
    }
    s->sent = *m;
    s->sent_n++;
    return 0;
}

static int
test_stub_append(struct raft_io *io, struct raft_io_append *req,
                 const struct raft_entry entries[], unsigned n,
                 raft_io_append_cb cb)
{
    struct test_stub *s = test_stub_of(io);

    (void)req;
    (void)entries;
    (void)n;
    (void)cb;
    s->seen_io = io;
    s->appended_n++;
    return 0;
}

static int
test_stub_truncate(struct raft_io *io, raft_index index)
{
    (void)index;
    snprintf(io->errmsg, sizeof(io->errmsg), "stub: cannot truncate");
    return RAFT_IOERR;
}

static raft_time
test_stub_time(struct raft_io *io)
{
    test_stub_of(io)->seen_io = io;
    return 1234;
}

static void
test_stub_close(struct raft_io *io, raft_io_close_cb cb)
{
    test_stub_of(io)->closed++;
    if (cb != NULL)
        cb(io);
}

static void
test_stub_init(struct test_stub *s)
{
    memset(s, 0, sizeof(*s));
    s->io.version = 1;
    s->io.impl = s;
    s->io.start = test_stub_start;
    s->io.send = test_stub_send;
    s->io.append = test_stub_append;
    s->io.truncate = test_stub_truncate;
    s->io.time = test_stub_time;
    s->io.close = test_stub_close;
}

/* ---- the fake libraft (io->data is it, as raft_init sets) ---- */

static struct raft_io_send test_req;

static void
test_raft_tick_cb(struct raft_io *io)
{
    ((struct test_raft *)io->data)->ticks++;
}

static void
test_raft_recv_cb(struct raft_io *io, struct raft_message *m)
{
    struct test_raft   *r = io->data;
    struct raft_message out;

    r->recv_n++;
    if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
        r->got_last = m->append_entries_result.last_log_index;
        return;
    }
    if (m->type != RAFT_IO_APPEND_ENTRIES)
        return;
    if (r->store)
        (void)io->append(io, NULL, NULL, m->append_entries.n_entries, NULL);
    if (!r->answer)
        return;
    memset(&out, 0, sizeof(out));
    out.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    out.server_id = m->server_id;
    out.append_entries_result.term = r->term;
    out.append_entries_result.rejected = r->rejected;
    out.append_entries_result.last_log_index = r->last_stored;
    (void)io->send(io, &test_req, &out, NULL);
}

static void
test_raft_close_cb(struct raft_io *io)
{
    ((struct test_raft *)io->data)->closed++;
}

/* g wraps s; r is the libraft on g, started. */
static void
test_setup(struct test_stub *s, struct raftguard *g, struct test_raft *r)
{
    test_stub_init(s);
    raftguard_init(g, &s->io);
    memset(r, 0, sizeof(*r));
    g->io.data = r;
    (void)g->io.start(&g->io, 100, test_raft_tick_cb, test_raft_recv_cb);
}

/* An AppendEntries from server `from` delivered to the follower. */
static void
test_deliver_append(struct test_stub *s, raft_id from, raft_term term,
                    raft_index prev, unsigned n)
{
    struct raft_message m;

    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES;
    m.server_id = from;
    m.append_entries.term = term;
    m.append_entries.prev_log_index = prev;
    m.append_entries.prev_log_term = term;
    m.append_entries.n_entries = n;
    s->recv_cb(&s->io, &m);
}

/* An answer the follower sends later, outside any receive. */
static void
test_answer_later(struct raftguard *g, raft_id to, raft_term term,
                  raft_index rejected, raft_index last)
{
    struct raft_message m;

    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = to;
    m.append_entries_result.term = term;
    m.append_entries_result.rejected = rejected;
    m.append_entries_result.last_log_index = last;
    (void)g->io.send(&g->io, &test_req, &m, NULL);
}

/* A result delivered to the leader. */
static raft_index
test_deliver_result(struct test_stub *s, struct test_raft *r, raft_id from,
                    raft_term term, raft_index rejected, raft_index last)
{
    struct raft_message m;

    memset(&m, 0, sizeof(m));
    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = from;
    m.append_entries_result.term = term;
    m.append_entries_result.rejected = rejected;
    m.append_entries_result.last_log_index = last;
    s->recv_cb(&s->io, &m);
    return r->got_last;
}

/* The leader sends an AppendEntries (or an InstallSnapshot if snap). */
static void
test_leader_sends(struct raftguard *g, raft_id to, raft_term term,
                  raft_index prev, unsigned n, raft_index snap)
{
    struct raft_message m;

    memset(&m, 0, sizeof(m));
    m.server_id = to;
    if (snap != 0) {
        m.type = RAFT_IO_INSTALL_SNAPSHOT;
        m.install_snapshot.term = term;
        m.install_snapshot.last_index = snap;
    } else {
        m.type = RAFT_IO_APPEND_ENTRIES;
        m.append_entries.term = term;
        m.append_entries.prev_log_index = prev;
        m.append_entries.n_entries = n;
    }
    (void)g->io.send(&g->io, &test_req, &m, NULL);
}

/* ---- follower side ---- */

TEST(heartbeat_answer_held_to_what_it_checked)
{
    struct test_stub s;
    struct raftguard g;
    struct test_raft r;

    test_setup(&s, &g, &r);
    /* A stale tail 8..12 of an older term; the heartbeat checked 7. */
    r.term = 5;
    r.last_stored = 12;
    r.answer = 1;
    test_deliver_append(&s, 2, 5, 7, 0);
    REQUIRE_EQ(s.sent_n, 1);
    CHECK_EQ(s.sent.type, RAFT_IO_APPEND_ENTRIES_RESULT);
    CHECK_EQ(s.sent.server_id, 2);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 7);
    CHECK_EQ(g.follower_clamped_n, 1);
    /* Entries it already holds: up to prev + n. */
    test_deliver_append(&s, 2, 5, 7, 3);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 10);
    /* Not stored yet (last_stored below): left alone. */
    r.last_stored = 9;
    test_deliver_append(&s, 2, 5, 7, 3);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 9);
    CHECK_EQ(g.follower_clamped_n, 2);
    /* A refusal's index is a hint: untouched, and it proves nothing. */
    r.last_stored = 12;
    r.rejected = 30;
    test_deliver_append(&s, 2, 5, 30, 0);
    CHECK_EQ(s.sent.append_entries_result.rejected, 30);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 12);
    CHECK_EQ(g.vouched_term, 5);
    CHECK_EQ(g.vouched, 10);
}

TEST(later_answer_held_to_what_the_term_vouched)
{
    struct test_stub s;
    struct raftguard g;
    struct test_raft r;

    test_setup(&s, &g, &r);
    /* Term 5: entries 8..10 taken for storing, answered later. */
    r.term = 5;
    r.store = 1;
    test_deliver_append(&s, 2, 5, 7, 3);
    CHECK_EQ(s.appended_n, 1);
    CHECK_EQ(s.sent_n, 0);
    test_answer_later(&g, 2, 5, 0, 10);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 10);
    CHECK_EQ(g.follower_clamped_n, 0);

    /* Term 6, a new leader 3 checked 7 only; an append of term 5 (8..12)
     * completes and libraft answers leader 3 with it: held to 7. */
    r.store = 0;
    r.answer = 1;
    r.term = 6;
    r.last_stored = 7;
    test_deliver_append(&s, 3, 6, 7, 0);
    CHECK_EQ(g.vouched_term, 6);
    CHECK_EQ(g.vouched, 7);
    test_answer_later(&g, 3, 6, 0, 12);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 7);
    CHECK_EQ(g.follower_clamped_n, 1);

    /* Dropped (no answer, nothing stored: 0.15 installing a snapshot):
     * vouches for nothing. */
    r.answer = 0;
    test_deliver_append(&s, 3, 6, 7, 5);
    CHECK_EQ(g.vouched, 7);

    /* An InstallSnapshot vouches for its last index before libraft sees
     * it, so its answer (sent from inside or later) passes. */
    {
        struct raft_message m;

        memset(&m, 0, sizeof(m));
        m.type = RAFT_IO_INSTALL_SNAPSHOT;
        m.server_id = 3;
        m.install_snapshot.term = 6;
        m.install_snapshot.last_index = 40;
        s.recv_cb(&s.io, &m);
    }
    CHECK_EQ(g.vouched, 40);
    test_answer_later(&g, 3, 6, 0, 40);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 40);
    /* An answer in a term no request came in: left alone. */
    test_answer_later(&g, 3, 7, 0, 99);
    CHECK_EQ(s.sent.append_entries_result.last_log_index, 99);
    CHECK_EQ(g.follower_clamped_n, 1);
}

/* ---- leader side ---- */

TEST(leader_counts_only_what_it_sent)
{
    struct test_stub s;
    struct raftguard g;
    struct test_raft r;

    test_setup(&s, &g, &r);
    test_leader_sends(&g, 2, 7, 10, 0, 0); /* heartbeat, prev 10 */
    test_leader_sends(&g, 3, 7, 8, 4, 0);  /* entries 9..12 */
    CHECK_EQ(s.sent_n, 2);
    CHECK_EQ(test_deliver_result(&s, &r, 2, 7, 0, 15), 10);
    CHECK_EQ(test_deliver_result(&s, &r, 3, 7, 0, 15), 12);
    CHECK_EQ(test_deliver_result(&s, &r, 3, 7, 0, 11), 11);
    CHECK_EQ(g.leader_clamped_n, 2);
    /* Refusals, other terms, servers sent nothing: untouched. */
    CHECK_EQ(test_deliver_result(&s, &r, 2, 7, 11, 15), 15);
    CHECK_EQ(test_deliver_result(&s, &r, 2, 8, 0, 15), 15);
    CHECK_EQ(test_deliver_result(&s, &r, 4, 7, 0, 15), 15);
    /* An InstallSnapshot's answer is at its last index. */
    test_leader_sends(&g, 4, 7, 0, 0, 50);
    CHECK_EQ(test_deliver_result(&s, &r, 4, 7, 0, 50), 50);
    CHECK_EQ(test_deliver_result(&s, &r, 4, 7, 0, 51), 50);
    /* A new term forgets what was sent before. */
    test_leader_sends(&g, 2, 9, 20, 1, 0);
    CHECK_EQ(g.term, 9);
    CHECK_EQ(test_deliver_result(&s, &r, 2, 9, 0, 30), 21);
    CHECK_EQ(test_deliver_result(&s, &r, 3, 9, 0, 30), 30);
    CHECK_EQ(g.leader_clamped_n, 4);
    CHECK_EQ(r.recv_n, 10);
}

/* ---- pass-through ---- */

TEST(methods_and_callbacks_pass_through)
{
    struct test_stub s;
    struct raftguard g;
    struct test_raft r;

    test_setup(&s, &g, &r);
    CHECK(s.io.data == &g);
    CHECK(g.io.impl == s.io.impl); /* what the fixture's helpers read */
    CHECK_EQ(g.io.version, 1);
    CHECK(g.io.load == NULL && g.io.recover == NULL); /* absent stay NULL */
    CHECK(g.io.async_work == NULL);
    CHECK_EQ(g.io.time(&g.io), 1234);
    CHECK(s.seen_io == &s.io);
    s.tick_cb(&s.io);
    CHECK_EQ(r.ticks, 1);
    /* Errors come back with the inner io's message, where libraft reads. */
    CHECK_EQ(g.io.truncate(&g.io, 3), RAFT_IOERR);
    CHECK(strcmp(g.io.errmsg, "stub: cannot truncate") == 0);
    s.fail_send = RAFT_NOCONNECTION;
    test_leader_sends(&g, 2, 3, 1, 1, 0);
    CHECK(strcmp(g.io.errmsg, "stub: send refused") == 0);
    g.io.close(&g.io, test_raft_close_cb);
    CHECK_EQ(s.closed, 1);
    CHECK_EQ(r.closed, 1);
}

int
main(void)
{
    TAP_RUN(T(heartbeat_answer_held_to_what_it_checked),
            T(later_answer_held_to_what_the_term_vouched),
            T(leader_counts_only_what_it_sent),
            T(methods_and_callbacks_pass_through));
}
