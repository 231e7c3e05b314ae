/* raftguard.c: the raft_io wrapper of raftguard.h. Sends and receives are
 * looked at, and a successful AppendEntries result is lowered when it
 * claims more than what was sent or checked; nothing is delayed, dropped
 * or reordered, and no other method is changed. */
#include "node/raftguard.h"

#include <stddef.h>
#include <string.h>

static struct raftguard *
raftguard_of(struct raft_io *io)
{
    return (struct raftguard *)(void *)((char *)io -
                                        offsetof(struct raftguard, io));
}

/* libraft copies io->errmsg into its own message when a call fails, and
 * reads the io it was given: hand the inner one's text up. */
static int
raftguard_rv(struct raftguard *g, int rv)
{
    if (rv != 0)
        memcpy(g->io.errmsg, g->inner->errmsg, sizeof(g->io.errmsg));
    return rv;
}

/* ---- leader side ---------------------------------------------------------
 * What this server sent to each peer in the term it leads. Learnt from its
 * own AppendEntries and InstallSnapshot messages: only a leader sends them,
 * always in its current term, so a higher term there means a new
 * leadership and nothing sent before counts (a reply in the new term
 * answers a request of the new term: a follower rejects older ones). */

static struct raftguard_peer *
raftguard_peer(struct raftguard *g, raft_id id, int add)
{
    for (unsigned i = 0; i < g->peers_n; i++)
        if (g->peers[i].id == id)
            return &g->peers[i];
    if (!add || g->peers_n == RAFTGUARD_PEERS_MAX)
        return NULL;
    g->peers[g->peers_n].id = id;
    g->peers[g->peers_n].sent = 0;
    return &g->peers[g->peers_n++];
}

static void
raftguard_sent(struct raftguard *g, raft_id to, raft_term term, raft_index end)
{
    struct raftguard_peer *p;

    if (term < g->term)
        return; /* not a leader's current message: cannot happen */
    if (term > g->term) {
        g->term = term;
        g->peers_n = 0;
    }
    p = raftguard_peer(g, to, 1);
    if (p != NULL && end > p->sent)
        p->sent = end;
}

/* A successful result from X says X holds this leader's log up to
 * last_log_index. X can hold at most what it was sent in this term (the
 * entries of this term come only from here, and a request checks no
 * further than it reaches), so claim no more. The bound is loose while
 * several requests to X are in flight (a reply to the first may be counted
 * up to the last): the follower side is the exact one.
 * No record for X: nothing was sent to it in this term, so the result is
 * from an older term and libraft ignores it; left as it is. */
static void
raftguard_clamp_result(struct raftguard *g, struct raft_message *m)
{
    struct raft_append_entries_result *res = &m->append_entries_result;
    struct raftguard_peer             *p;

    if (res->rejected != 0 || res->term != g->term)
        return; /* a rejection's index is a hint; other terms are dropped */
    p = raftguard_peer(g, m->server_id, 0);
    if (p != NULL && res->last_log_index > p->sent) {
        res->last_log_index = p->sent;
        g->leader_clamped_n++;
    }
}

/* ---- follower side -------------------------------------------------------
 * An AppendEntries that libraft does not refuse proves this server holds
 * the leader's log up to its prev_log_index + n_entries (the prev entry
 * matched by term, and the entries are now there), an InstallSnapshot up
 * to its last index; nothing proves more. 0.15 answers with its last
 * stored index instead: synchronously, from inside the receive, when the
 * request adds nothing new (then a stale tail of an older term past the
 * request is claimed too), or later, once an append or a snapshot is
 * stored (then an append of an older leader completing after this term
 * began is claimed too). Each answer is held to the proof it has. */

/* The requests of term t vouch for index x. Only the highest term counts:
 * a lower one's leader is gone, and this server answers in its own term. */
static void
raftguard_vouch(struct raftguard *g, raft_term term, raft_index x)
{
    if (term < g->vouched_term)
        return;
    if (term > g->vouched_term) {
        g->vouched_term = term;
        g->vouched = 0;
    }
    if (x > g->vouched)
        g->vouched = x;
}

/* Lowers *m (a result this server sends) to what it may claim: see above.
 * A refusal's index is a hint, not a claim: left alone. Returns 1 if
 * lowered. */
static int
raftguard_clamp_own(struct raftguard *g, struct raft_message *m)
{
    struct raft_append_entries_result *res = &m->append_entries_result;
    raft_index                         bound;

    if (g->in_append && m->server_id == g->append_from) {
        /* The synchronous answer to the request being handled. */
        g->append_answered = 1;
        g->append_refused = res->rejected != 0 || res->term != g->append_term;
        bound = g->append_end;
    } else if (res->term == g->vouched_term) {
        bound = g->vouched;
    } else {
        /* No request of this term seen: then libraft knows no leader to
         * answer, so this is not reached; left as it is. */
        return 0;
    }
    if (res->rejected != 0 || res->last_log_index <= bound)
        return 0;
    res->last_log_index = bound;
    return 1;
}

/* ---- callbacks from the wrapped implementation -------------------------- */

static void
raftguard_tick_cb(struct raft_io *inner)
{
    struct raftguard *g = inner->data;

    g->tick_cb(&g->io);
}

static void
raftguard_recv_cb(struct raft_io *inner, struct raft_message *m)
{
    struct raftguard *g = inner->data;
    raft_term         term;

    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        raftguard_clamp_result(g, m);
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        /* Before libraft sees it: its answer may come from inside. One
         * refused for its term vouches in a term this server is past. */
        raftguard_vouch(g, m->install_snapshot.term,
                        m->install_snapshot.last_index);
        break;
    case RAFT_IO_APPEND_ENTRIES:
        /* Its end is proven once libraft has taken it: answered inside
         * with a success, or its entries being stored (answered later).
         * Neither: dropped (0.15 ignores entries while it installs a
         * snapshot) or failed, proving nothing. */
        term = m->append_entries.term;
        g->in_append = 1;
        g->append_from = m->server_id;
        g->append_term = term;
        g->append_end =
            m->append_entries.prev_log_index + m->append_entries.n_entries;
        g->append_answered = g->append_refused = g->append_stored = 0;
        g->recv_cb(&g->io, m); /* m is libraft's from here on */
        g->in_append = 0;
        if (g->append_answered ? !g->append_refused : g->append_stored)
            raftguard_vouch(g, term, g->append_end);
        return;
    default:
        break;
    }
    g->recv_cb(&g->io, m);
}

static void
raftguard_close_cb(struct raft_io *inner)
{
    struct raftguard *g = inner->data;

    g->close_cb(&g->io);
}

/* ---- methods ------------------------------------------------------------- */

static int
raftguard_init_m(struct raft_io *io, raft_id id, const char *address)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->init(g->inner, id, address));
}

static void
raftguard_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct raftguard *g = raftguard_of(io);

    g->close_cb = cb;
    g->inner->close(g->inner, cb != NULL ? raftguard_close_cb : NULL);
}

static int
raftguard_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
               struct raft_snapshot **snapshot, raft_index *start_index,
               struct raft_entry *entries[], size_t *n_entries)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->load(g->inner, term, voted_for, snapshot,
                                          start_index, entries, n_entries));
}

static int
raftguard_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                raft_io_recv_cb recv)
{
    struct raftguard *g = raftguard_of(io);

    g->tick_cb = tick;
    g->recv_cb = recv;
    return raftguard_rv(g, g->inner->start(g->inner, msecs, raftguard_tick_cb,
                                           raftguard_recv_cb));
}

static int
raftguard_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->bootstrap(g->inner, conf));
}

static int
raftguard_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->recover(g->inner, conf));
}

static int
raftguard_set_term(struct raft_io *io, raft_term term)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->set_term(g->inner, term));
}

static int
raftguard_set_vote(struct raft_io *io, raft_id server_id)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->set_vote(g->inner, server_id));
}

static int
raftguard_send(struct raft_io *io, struct raft_io_send *req,
               const struct raft_message *m, raft_io_send_cb cb)
{
    struct raftguard   *g = raftguard_of(io);
    struct raft_message lowered;

    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES:
        /* Recorded when handed over: one that never arrives only loosens
         * the bound. */
        raftguard_sent(g, m->server_id, m->append_entries.term,
                       m->append_entries.prev_log_index +
                           m->append_entries.n_entries);
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        /* Answered by a result at the snapshot's last index. */
        raftguard_sent(g, m->server_id, m->install_snapshot.term,
                       m->install_snapshot.last_index);
        break;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        /* A result has no pointers: a copy is the whole message, and both
         * implementations encode or copy it before returning. */
        lowered = *m;
        if (raftguard_clamp_own(g, &lowered)) {
            m = &lowered;
            g->follower_clamped_n++;
        }
        break;
    default:
        break;
    }
    return raftguard_rv(g, g->inner->send(g->inner, req, m, cb));
}

static int
raftguard_append(struct raft_io *io, struct raft_io_append *req,
                 const struct raft_entry entries[], unsigned n,
                 raft_io_append_cb cb)
{
    struct raftguard *g = raftguard_of(io);

    g->append_stored |= g->in_append; /* see raftguard_recv_cb */
    return raftguard_rv(g, g->inner->append(g->inner, req, entries, n, cb));
}

static int
raftguard_truncate(struct raft_io *io, raft_index index)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->truncate(g->inner, index));
}

static int
raftguard_snapshot_put(struct raft_io *io, unsigned trailing,
                       struct raft_io_snapshot_put *req,
                       const struct raft_snapshot  *snapshot,
                       raft_io_snapshot_put_cb      cb)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(
        g, g->inner->snapshot_put(g->inner, trailing, req, snapshot, cb));
}

static int
raftguard_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                       raft_io_snapshot_get_cb cb)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->snapshot_get(g->inner, req, cb));
}

static raft_time
raftguard_time(struct raft_io *io)
{
    struct raftguard *g = raftguard_of(io);

    return g->inner->time(g->inner);
}

static int
raftguard_random(struct raft_io *io, int min, int max)
{
    struct raftguard *g = raftguard_of(io);

    return g->inner->random(g->inner, min, max);
}

static int
raftguard_async_work(struct raft_io *io, struct raft_io_async_work *req,
                     raft_io_async_work_cb cb)
{
    struct raftguard *g = raftguard_of(io);

    return raftguard_rv(g, g->inner->async_work(g->inner, req, cb));
}

void
raftguard_init(struct raftguard *g, struct raft_io *inner)
{
    memset(g, 0, sizeof(*g));
    g->inner = inner;
    inner->data = g;
    g->io.version = inner->version;
    g->io.impl = inner->impl;
    /* A method the inner one lacks stays NULL: libraft checks some (recover,
     * async_work) before calling them. */
    g->io.init = inner->init != NULL ? raftguard_init_m : NULL;
    g->io.close = inner->close != NULL ? raftguard_close : NULL;
    g->io.load = inner->load != NULL ? raftguard_load : NULL;
    g->io.start = inner->start != NULL ? raftguard_start : NULL;
    g->io.bootstrap = inner->bootstrap != NULL ? raftguard_bootstrap : NULL;
    g->io.recover = inner->recover != NULL ? raftguard_recover : NULL;
    g->io.set_term = inner->set_term != NULL ? raftguard_set_term : NULL;
    g->io.set_vote = inner->set_vote != NULL ? raftguard_set_vote : NULL;
    g->io.send = inner->send != NULL ? raftguard_send : NULL;
    g->io.append = inner->append != NULL ? raftguard_append : NULL;
    g->io.truncate = inner->truncate != NULL ? raftguard_truncate : NULL;
    g->io.snapshot_put =
        inner->snapshot_put != NULL ? raftguard_snapshot_put : NULL;
    g->io.snapshot_get =
        inner->snapshot_get != NULL ? raftguard_snapshot_get : NULL;
    g->io.time = inner->time != NULL ? raftguard_time : NULL;
    g->io.random = inner->random != NULL ? raftguard_random : NULL;
    g->io.async_work = inner->version >= 2 && inner->async_work != NULL
                           ? raftguard_async_work
                           : NULL;
}
