/* msg.c: converts between the plain structs of msg.h and the protobuf-c
 * Envelope of cadre.proto. It neither frames nor seals (wire.c does) and never
 * interprets what a message asks for.
 *
 * Encoding allocates nothing, whatever the message size: the body is built on
 * the stack MSG_CHUNK elements at a time, each chunk packed by protobuf-c
 * straight into the caller's buffer. Protobuf merges repeated occurrences of a
 * field, so consecutive chunks of one body decode as one message; only the
 * Envelope's body tag and length are written by hand.
 *
 * Decoding borrows strings and bytes from protobuf-c's unpacked tree (kept in
 * owner_) and allocates one array per message; everything from the network is
 * validated here (ids of 16 bytes, enums in range, a body present). */
#include "proto/msg.h"

#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "common/alloc.h"
#include "proto/cadre.pb-c.h"

#define MSG_CHUNK 16 /* elements per stack-built chunk (about 3 KiB) */
#define MSG_ID_LEN 16

_Static_assert(sizeof(cadre_job_id) == MSG_ID_LEN, "job ids are 16 bytes");
_Static_assert((int)MSG_OUTCOME_DONE ==
                       (int)CADRE__OUTCOME_KIND__OUTCOME_DONE &&
                   (int)MSG_OUTCOME_RETURN ==
                       (int)CADRE__OUTCOME_KIND__OUTCOME_RETURN,
               "outcome kinds match cadre.proto");
_Static_assert((int)MSG_ADMIN_FAILED_RETRY ==
                       (int)CADRE__ADMIN_OP__ADMIN_FAILED_RETRY &&
                   (int)MSG_ADMIN_QUEUE_PAUSED ==
                       (int)CADRE__ADMIN_OP__ADMIN_QUEUE_PAUSED &&
                   (int)MSG_ADMIN_WORKERS_RESTART ==
                       (int)CADRE__ADMIN_OP__ADMIN_WORKERS_RESTART,
               "admin ops match cadre.proto");
_Static_assert((int)MSG_ADMIN_CLUSTER_MEMBERS ==
                       (int)CADRE__ADMIN_OP__ADMIN_CLUSTER_MEMBERS &&
                   (int)MSG_ADMIN_CLUSTER_LEADER ==
                       (int)CADRE__ADMIN_OP__ADMIN_CLUSTER_LEADER,
               "admin ops match cadre.proto");

/* ---- allocator ---------------------------------------------------------- */

/* protobuf-c allocates through cd_malloc so that the fault hook reaches it;
 * the flag tells a failed allocation apart from bad bytes (both make unpack
 * return NULL). */
struct msg_alloc_state {
    int    failed;
    int    over;   /* the budget ran out: a hostile shape, not a real OOM */
    size_t budget; /* bytes protobuf-c may still allocate for this frame */
};

/* A frame of many empty sub-messages costs a few bytes each on the wire but
 * a struct each in memory: decoding a 16 MiB frame could take a gigabyte.
 * Each decode gets a budget proportional to its size instead. */
#define MSG_DECODE_BUDGET(len) ((len)*16 + (64u << 10))

static void *
msg_pb_alloc(void *data, size_t n)
{
    struct msg_alloc_state *st = data;
    void                   *p;

    if (st != NULL && n > st->budget) {
        st->failed = st->over = 1;
        return NULL;
    }
    p = cd_malloc(n);
    if (st != NULL) {
        if (p == NULL)
            st->failed = 1;
        else
            st->budget -= n;
    }
    return p;
}

static void
msg_pb_free(void *data, void *p)
{
    (void)data;
    cd_free(p);
}

static ProtobufCAllocator msg_pb_allocator = {msg_pb_alloc, msg_pb_free, NULL};

/* ---- encoding ------------------------------------------------------------ */

static size_t
msg_varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t
msg_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Storage for one chunk of a body, per kind. Element arrays hold at most
 * MSG_CHUNK entries; arrays of the caller's that need no conversion (queue
 * names, backoff seconds) are borrowed whole. */
union msg_chunk {
    struct {
        Cadre__Dispatch      d;
        Cadre__NewJob       *p[MSG_CHUNK];
        Cadre__NewJob        j[MSG_CHUNK];
        Cadre__JobOptions    o[MSG_CHUNK];
        Cadre__JobMiddleware mw[MSG_CHUNK];
    } dispatch;
    struct {
        Cadre__DispatchReply r;
        ProtobufCBinaryData  ids[MSG_CHUNK];
        protobuf_c_boolean   dup[MSG_CHUNK];
    } dispatch_reply;
    struct {
        Cadre__Fetch    f;
        Cadre__Outcome *p[MSG_CHUNK];
        Cadre__Outcome  o[MSG_CHUNK];
        Cadre__Touch   *tp[MSG_TOUCH_MAX];
        Cadre__Touch    t[MSG_TOUCH_MAX];
    } fetch;
    struct {
        Cadre__Jobs          js;
        Cadre__Job          *p[MSG_CHUNK];
        Cadre__Job           j[MSG_CHUNK];
        Cadre__JobMiddleware mw[MSG_CHUNK];
    } jobs;
    struct {
        Cadre__Wait         w;
        ProtobufCBinaryData ids[MSG_CHUNK];
    } wait;
    struct {
        Cadre__WaitReply  w;
        Cadre__JobResult *p[MSG_CHUNK];
        Cadre__JobResult  r[MSG_CHUNK];
    } wait_reply;
    Cadre__StatusRequest status_request;
    struct {
        Cadre__Status      s;
        Cadre__QueueStats *p[MSG_CHUNK];
        Cadre__QueueStats  q[MSG_CHUNK];
    } status;
    Cadre__Error error;
    Cadre__Event event;
    struct {
        Cadre__FailedQuery  q;
        ProtobufCBinaryData ids[MSG_CHUNK];
    } failed_query;
    struct {
        Cadre__FailedJobs js;
        Cadre__FailedJob *p[MSG_CHUNK];
        Cadre__FailedJob  j[MSG_CHUNK];
    } failed_jobs;
    struct {
        Cadre__Admin        a;
        ProtobufCBinaryData ids[MSG_CHUNK];
    } admin;
    struct {
        Cadre__AdminReply    r;
        ProtobufCBinaryData  missing[MSG_CHUNK];
        Cadre__ScheduleInfo *sp[MSG_SCHEDULES_MAX];
        Cadre__ScheduleInfo  s[MSG_SCHEDULES_MAX];
    } admin_reply;
    struct {
        Cadre__Run      r;
        Cadre__RunTask *p[MSG_CHUNK];
        Cadre__RunTask  t[MSG_CHUNK];
    } run;
    struct {
        Cadre__RunReply   r;
        Cadre__RunResult *p[MSG_CHUNK];
        Cadre__RunResult  res[MSG_CHUNK];
    } run_reply;
    struct {
        Cadre__Heartbeat h;
        Cadre__Member    self;
        Cadre__Member   *p[MSG_CHUNK];
        Cadre__Member    m[MSG_CHUNK];
    } heartbeat;
    struct {
        Cadre__Members ms;
        Cadre__Member *p[MSG_CHUNK];
        Cadre__Member  m[MSG_CHUNK];
    } members;
    Cadre__Steal steal;
    struct {
        Cadre__StealReply   r;
        ProtobufCBinaryData recs[MSG_CHUNK];
    } steal_reply;
    struct {
        Cadre__Settle       s;
        ProtobufCBinaryData ids[MSG_CHUNK];
    } settle;
    Cadre__Coord      coord;
    Cadre__CoordReply coord_reply;
};

/* protobuf-c takes non-const pointers but only reads them when packing. */
static char *
msg_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

static int
msg_bytes_ok(const msg_bytes *b)
{
    return b->len == 0 || b->data != NULL;
}

static ProtobufCBinaryData
msg_pb_bytes(const msg_bytes *b)
{
    ProtobufCBinaryData out = {b->len, (uint8_t *)b->data};

    return out;
}

static ProtobufCBinaryData
msg_pb_id(const cadre_job_id *id)
{
    ProtobufCBinaryData out = {MSG_ID_LEN, (uint8_t *)id->b};

    return out;
}

/* A fixed-size char array is a string only if it holds a NUL. */
static int
msg_fixed_str_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* The number of repeated elements the body of m is chunked over. */
static size_t
msg_body_count(const struct msg *m)
{
    switch (m->kind) {
    case MSG_DISPATCH:
        return m->u.dispatch.jobs_n;
    case MSG_DISPATCH_REPLY:
        return m->u.dispatch_reply.ids_n;
    case MSG_FETCH:
        return m->u.fetch.outcomes_n;
    case MSG_JOBS:
        return m->u.jobs.jobs_n;
    case MSG_WAIT:
        return m->u.wait.ids_n;
    case MSG_WAIT_REPLY:
    case MSG_FINISHED:
        return m->u.wait_reply.results_n;
    case MSG_STATUS:
        return m->u.status.queues_n;
    case MSG_FAILED_QUERY:
        return m->u.failed_query.ids_n;
    case MSG_FAILED_JOBS:
        return m->u.failed_jobs.jobs_n;
    case MSG_ADMIN:
        return m->u.admin.ids_n;
    case MSG_ADMIN_REPLY:
        return m->u.admin_reply.missing_n;
    case MSG_RUN:
        return m->u.run.tasks_n;
    case MSG_RUN_REPLY:
        return m->u.run_reply.results_n;
    case MSG_HEARTBEAT:
    case MSG_HELLO:
        return m->u.heartbeat.peers_n;
    case MSG_MEMBERS:
        return m->u.members.members_n;
    case MSG_STEAL_REPLY:
        return m->u.steal_reply.records_n;
    case MSG_SETTLE:
        return m->u.settle.ids_n;
    default:
        return 0;
    }
}

/* The Envelope field number of each kind's body (protobuf-c's oneof case
 * values are the field numbers). */
static uint32_t
msg_body_field(enum msg_kind kind)
{
    switch (kind) {
    case MSG_DISPATCH:
        return CADRE__ENVELOPE__BODY_DISPATCH;
    case MSG_DISPATCH_REPLY:
        return CADRE__ENVELOPE__BODY_DISPATCH_REPLY;
    case MSG_FETCH:
        return CADRE__ENVELOPE__BODY_FETCH;
    case MSG_JOBS:
        return CADRE__ENVELOPE__BODY_JOBS;
    case MSG_WAIT:
        return CADRE__ENVELOPE__BODY_WAIT;
    case MSG_WAIT_REPLY:
        return CADRE__ENVELOPE__BODY_WAIT_REPLY;
    case MSG_STATUS_REQUEST:
        return CADRE__ENVELOPE__BODY_STATUS_REQUEST;
    case MSG_STATUS:
        return CADRE__ENVELOPE__BODY_STATUS;
    case MSG_ERROR:
        return CADRE__ENVELOPE__BODY_ERROR;
    case MSG_FAILED_QUERY:
        return CADRE__ENVELOPE__BODY_FAILED_QUERY;
    case MSG_FAILED_JOBS:
        return CADRE__ENVELOPE__BODY_FAILED_JOBS;
    case MSG_ADMIN:
        return CADRE__ENVELOPE__BODY_ADMIN;
    case MSG_ADMIN_REPLY:
        return CADRE__ENVELOPE__BODY_ADMIN_REPLY;
    case MSG_RUN:
        return CADRE__ENVELOPE__BODY_RUN;
    case MSG_RUN_REPLY:
        return CADRE__ENVELOPE__BODY_RUN_REPLY;
    case MSG_EVENT:
        return CADRE__ENVELOPE__BODY_EVENT;
    case MSG_HEARTBEAT:
        return CADRE__ENVELOPE__BODY_HEARTBEAT;
    case MSG_HELLO:
        return CADRE__ENVELOPE__BODY_HELLO;
    case MSG_MEMBERS:
        return CADRE__ENVELOPE__BODY_MEMBERS;
    case MSG_STEAL:
        return CADRE__ENVELOPE__BODY_STEAL;
    case MSG_STEAL_REPLY:
        return CADRE__ENVELOPE__BODY_STEAL_REPLY;
    case MSG_SETTLE:
        return CADRE__ENVELOPE__BODY_SETTLE;
    case MSG_FINISHED:
        return CADRE__ENVELOPE__BODY_FINISHED;
    case MSG_COORD:
        return CADRE__ENVELOPE__BODY_COORD;
    case MSG_COORD_REPLY:
        return CADRE__ENVELOPE__BODY_COORD_REPLY;
    default:
        return 0;
    }
}

/* in as pb in caller storage, or NULL when it declares nothing (so a job
 * without middleware encodes as before). */
static Cadre__JobMiddleware *
msg_mw_build(Cadre__JobMiddleware *pb, const struct msg_middleware *in)
{
    if ((in->rate_key == NULL || in->rate_key[0] == '\0') &&
        (in->overlap_key == NULL || in->overlap_key[0] == '\0') &&
        (in->exc_key == NULL || in->exc_key[0] == '\0'))
        return NULL;
    cadre__job_middleware__init(pb);
    pb->rate_key = msg_str(in->rate_key);
    pb->rate_limit = in->rate_limit;
    pb->rate_per_ms = in->rate_per_ms;
    pb->overlap_key = msg_str(in->overlap_key);
    pb->overlap_ttl_ms = in->overlap_ttl_ms;
    pb->exc_key = msg_str(in->exc_key);
    pb->exc_limit = in->exc_limit;
    pb->exc_per_ms = in->exc_per_ms;
    return pb;
}

static void
msg_mw_get(const Cadre__JobMiddleware *pb, struct msg_middleware *out)
{
    if (pb == NULL)
        return;
    out->rate_key = pb->rate_key;
    out->rate_limit = pb->rate_limit;
    out->rate_per_ms = pb->rate_per_ms;
    out->overlap_key = pb->overlap_key;
    out->overlap_ttl_ms = pb->overlap_ttl_ms;
    out->exc_key = pb->exc_key;
    out->exc_limit = pb->exc_limit;
    out->exc_per_ms = pb->exc_per_ms;
}

static int
msg_new_job_build(Cadre__NewJob *j, Cadre__JobOptions *o,
                  Cadre__JobMiddleware *mw, const struct msg_new_job *in)
{
    const struct msg_job_opts *io = &in->opts;

    if (!msg_bytes_ok(&in->payload) ||
        (io->backoff_n > 0 && io->backoff_s == NULL))
        return -1;
    cadre__new_job__init(j);
    cadre__job_options__init(o);
    j->id = msg_pb_id(&in->id);
    j->task = msg_str(in->task);
    j->payload = msg_pb_bytes(&in->payload);
    o->queue = msg_str(io->queue);
    o->delay_ms = io->delay_ms;
    o->run_at_ms = io->run_at_ms;
    o->tries = io->tries;
    o->n_backoff_s = io->backoff_n;
    o->backoff_s = (uint32_t *)io->backoff_s;
    o->retry_until_ms = io->retry_until_ms;
    o->max_exceptions = io->max_exceptions;
    o->timeout_ms = io->timeout_ms;
    o->retry_after_ms = io->retry_after_ms;
    o->unique_id = msg_str(io->unique_id);
    o->unique_for_ms = io->unique_for_ms;
    o->unique_until_processing = io->unique_until_processing != 0;
    o->middleware = msg_mw_build(mw, &io->mw);
    j->opts = o;
    return 0;
}

static int
msg_outcome_build(Cadre__Outcome *o, const struct msg_outcome *in)
{
    if (in->kind < MSG_OUTCOME_NONE || in->kind > MSG_OUTCOME_RETURN ||
        !msg_bytes_ok(&in->result))
        return -1;
    cadre__outcome__init(o);
    o->id = msg_pb_id(&in->id);
    o->kind = (Cadre__OutcomeKind)in->kind;
    o->result = msg_pb_bytes(&in->result);
    o->error_type = msg_str(in->error_type);
    o->error = msg_str(in->error);
    o->release_delay_ms = in->release_delay_ms;
    o->lease = in->lease;
    return 0;
}

static int
msg_job_build(Cadre__Job *j, Cadre__JobMiddleware *mw, const struct msg_job *in)
{
    if (!msg_bytes_ok(&in->payload))
        return -1;
    cadre__job__init(j);
    j->id = msg_pb_id(&in->id);
    j->task = msg_str(in->task);
    j->payload = msg_pb_bytes(&in->payload);
    j->queue = msg_str(in->queue);
    j->attempt = in->attempt;
    j->timeout_ms = in->timeout_ms;
    j->lease = in->lease;
    j->lease_ms = in->lease_ms;
    j->schedule = msg_str(in->schedule);
    j->slot = in->slot_s;
    j->middleware = msg_mw_build(mw, &in->mw);
    return 0;
}

static int
msg_job_result_build(Cadre__JobResult *r, const struct msg_job_result *in)
{
    if (in->status < CADRE_PENDING || in->status > CADRE_UNKNOWN ||
        !msg_bytes_ok(&in->result))
        return -1;
    cadre__job_result__init(r);
    r->id = msg_pb_id(&in->id);
    r->status = (uint32_t)in->status;
    r->attempts = in->attempts;
    r->result = msg_pb_bytes(&in->result);
    r->error_type = msg_str(in->error_type);
    r->error = msg_str(in->error);
    r->task = msg_str(in->task);
    r->queue = msg_str(in->queue);
    return 0;
}

static int
msg_queue_stats_build(Cadre__QueueStats *q, const cadre_queue_stats *in)
{
    if (!msg_fixed_str_ok(in->name, sizeof(in->name)))
        return -1;
    cadre__queue_stats__init(q);
    q->name = (char *)in->name;
    q->ready = in->ready;
    q->delayed = in->delayed;
    q->reserved = in->reserved;
    q->done = in->done;
    q->failed = in->failed;
    q->oldest_ready_age_ms = in->oldest_ready_age_ms;
    return 0;
}

/* A cursor: opaque bytes of at most MSG_CURSOR_MAX. */
static int
msg_cursor_ok(const msg_bytes *b)
{
    return msg_bytes_ok(b) && b->len <= MSG_CURSOR_MAX;
}

static int
msg_failed_job_build(Cadre__FailedJob *j, const struct msg_failed_job *in)
{
    if (!msg_bytes_ok(&in->payload))
        return -1;
    cadre__failed_job__init(j);
    j->id = msg_pb_id(&in->id);
    j->queue = msg_str(in->queue);
    j->task = msg_str(in->task);
    j->attempts = in->attempts;
    j->tries = in->tries;
    j->error_type = msg_str(in->error_type);
    j->error = msg_str(in->error);
    j->failed_at_ms = in->failed_at_ms;
    j->created_at_ms = in->created_at_ms;
    j->payload = msg_pb_bytes(&in->payload);
    j->payload_len = in->payload_len;
    return 0;
}

/* AdminReply.schedules and id (the first chunk's); strings borrowed. */
static void
msg_schedules_build(const struct msg_admin_reply *r, union msg_chunk *c)
{
    for (size_t i = 0; i < r->schedules_n; i++) {
        const struct msg_schedule *s = &r->schedules[i];
        Cadre__ScheduleInfo       *o = &c->admin_reply.s[i];

        cadre__schedule_info__init(o);
        o->name = msg_str(s->name);
        o->cron = msg_str(s->cron);
        o->task = msg_str(s->task);
        o->queue = msg_str(s->queue);
        o->timezone = msg_str(s->tz);
        o->where = msg_str(s->where);
        o->on_one_server = s->on_one_server != 0;
        o->paused = s->paused != 0;
        o->next_s = s->next_s;
        o->last_s = s->last_s;
        o->fired = s->fired;
        c->admin_reply.sp[i] = o;
    }
    c->admin_reply.r.n_schedules = r->schedules_n;
    c->admin_reply.r.schedules = c->admin_reply.sp;
    if (r->has_id)
        c->admin_reply.r.id = msg_pb_id(&r->id);
}

/* The operator messages' chunks (see msg_chunk_build). */
static const ProtobufCMessage *
msg_admin_chunk_build(const struct msg *m, size_t start, size_t k, int first,
                      union msg_chunk *c)
{
    size_t n = msg_body_count(m);

    switch (m->kind) {
    case MSG_FAILED_QUERY: {
        const struct msg_failed_query *q = &m->u.failed_query;

        if ((n > 0 && q->ids == NULL) || !msg_cursor_ok(&q->after))
            return NULL;
        cadre__failed_query__init(&c->failed_query.q);
        if (first) {
            c->failed_query.q.queue = msg_str(q->queue);
            c->failed_query.q.after = msg_pb_bytes(&q->after);
            c->failed_query.q.limit = q->limit;
        }
        for (size_t i = 0; i < k; i++)
            c->failed_query.ids[i] = msg_pb_id(&q->ids[start + i]);
        c->failed_query.q.n_ids = k;
        c->failed_query.q.ids = c->failed_query.ids;
        return &c->failed_query.q.base;
    }
    case MSG_FAILED_JOBS: {
        const struct msg_failed_jobs *f = &m->u.failed_jobs;

        if ((n > 0 && f->jobs == NULL) || !msg_cursor_ok(&f->next))
            return NULL;
        cadre__failed_jobs__init(&c->failed_jobs.js);
        if (first) {
            c->failed_jobs.js.next = msg_pb_bytes(&f->next);
            c->failed_jobs.js.more = f->more != 0;
        }
        for (size_t i = 0; i < k; i++) {
            if (msg_failed_job_build(&c->failed_jobs.j[i],
                                     &f->jobs[start + i]) != 0)
                return NULL;
            c->failed_jobs.p[i] = &c->failed_jobs.j[i];
        }
        c->failed_jobs.js.n_jobs = k;
        c->failed_jobs.js.jobs = c->failed_jobs.p;
        return &c->failed_jobs.js.base;
    }
    case MSG_ADMIN: {
        const struct msg_admin *a = &m->u.admin;

        if ((n > 0 && a->ids == NULL) || !msg_cursor_ok(&a->after) ||
            a->op <= MSG_ADMIN_NONE || a->op > MSG_ADMIN_OP_LAST)
            return NULL;
        cadre__admin__init(&c->admin.a);
        if (first) {
            c->admin.a.op = (Cadre__AdminOp)a->op;
            c->admin.a.queue = msg_str(a->queue);
            c->admin.a.older_than_ms = a->older_than_ms;
            c->admin.a.after = msg_pb_bytes(&a->after);
            c->admin.a.all = a->all != 0;
        }
        for (size_t i = 0; i < k; i++)
            c->admin.ids[i] = msg_pb_id(&a->ids[start + i]);
        c->admin.a.n_ids = k;
        c->admin.a.ids = c->admin.ids;
        return &c->admin.a.base;
    }
    case MSG_ADMIN_REPLY: {
        const struct msg_admin_reply *r = &m->u.admin_reply;

        if ((n > 0 && r->missing == NULL) || !msg_cursor_ok(&r->next) ||
            (r->queues_n > 0 && r->queues == NULL) ||
            r->schedules_n > MSG_SCHEDULES_MAX ||
            (r->schedules_n > 0 && r->schedules == NULL))
            return NULL;
        cadre__admin_reply__init(&c->admin_reply.r);
        if (first) {
            for (size_t i = 0; i < r->queues_n; i++)
                if (r->queues[i] == NULL)
                    return NULL;
            c->admin_reply.r.count = r->count;
            c->admin_reply.r.next = msg_pb_bytes(&r->next);
            c->admin_reply.r.more = r->more != 0;
            c->admin_reply.r.n_queues = r->queues_n;
            c->admin_reply.r.queues = (char **)r->queues;
            c->admin_reply.r.raft = r->leader.raft != 0;
            c->admin_reply.r.leader =
                (char *)(r->leader.leader != NULL ? r->leader.leader : "");
            c->admin_reply.r.leader_raft_id = r->leader.leader_raft_id;
            c->admin_reply.r.raft_id = r->leader.raft_id;
            c->admin_reply.r.term = r->leader.term;
            c->admin_reply.r.raft_role = r->leader.role;
            c->admin_reply.r.leader_ready = r->leader.ready != 0;
            c->admin_reply.r.not_committing = r->leader.not_committing != 0;
            c->admin_reply.r.oldest_wait_ms = r->leader.oldest_wait_ms;
            c->admin_reply.r.commit_index = r->leader.commit_index;
            c->admin_reply.r.last_applied = r->leader.last_applied;
            msg_schedules_build(r, c);
        }
        for (size_t i = 0; i < k; i++)
            c->admin_reply.missing[i] = msg_pb_id(&r->missing[start + i]);
        c->admin_reply.r.n_missing = k;
        c->admin_reply.r.missing = c->admin_reply.missing;
        return &c->admin_reply.r.base;
    }
    default:
        return NULL;
    }
}

/* The run messages' chunks (see msg_chunk_build). */
static const ProtobufCMessage *
msg_run_chunk_build(const struct msg *m, size_t start, size_t k, int first,
                    union msg_chunk *c)
{
    size_t n = msg_body_count(m);

    if (m->kind == MSG_RUN) {
        const struct msg_run *r = &m->u.run;

        if (n > 0 && r->tasks == NULL)
            return NULL;
        cadre__run__init(&c->run.r);
        if (first) {
            c->run.r.run_id = msg_pb_id(&r->run_id);
            c->run.r.deadline_ms = r->deadline_ms;
            c->run.r.fail_fast = r->fail_fast != 0;
        }
        for (size_t i = 0; i < k; i++) {
            const struct msg_run_task *in = &r->tasks[start + i];
            Cadre__RunTask            *t = &c->run.t[i];

            if (!msg_bytes_ok(&in->payload))
                return NULL;
            cadre__run_task__init(t);
            t->task = msg_str(in->task);
            t->payload = msg_pb_bytes(&in->payload);
            t->queue = msg_str(in->queue);
            t->timeout_ms = in->timeout_ms;
            c->run.p[i] = t;
        }
        c->run.r.n_tasks = k;
        c->run.r.tasks = c->run.p;
        return &c->run.r.base;
    }
    if (m->kind == MSG_RUN_REPLY) {
        const struct msg_run_reply *r = &m->u.run_reply;

        if (n > 0 && r->results == NULL)
            return NULL;
        cadre__run_reply__init(&c->run_reply.r);
        for (size_t i = 0; i < k; i++) {
            const struct msg_run_result *in = &r->results[start + i];
            Cadre__RunResult            *o = &c->run_reply.res[i];

            if (in->status < CADRE_RUN_OK || in->status > CADRE_RUN_CANCELLED ||
                !msg_bytes_ok(&in->result))
                return NULL;
            cadre__run_result__init(o);
            o->status = (uint32_t)in->status;
            o->result = msg_pb_bytes(&in->result);
            o->error_type = msg_str(in->error_type);
            o->error = msg_str(in->error);
            o->attempts = in->attempts;
            c->run_reply.p[i] = o;
        }
        c->run_reply.r.n_results = k;
        c->run_reply.r.results = c->run_reply.p;
        return &c->run_reply.r.base;
    }
    return NULL;
}

/* ---- cluster messages ---- */

static int
msg_strs_ok(const char *const *v, size_t n)
{
    if (n > 0 && v == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] == NULL)
            return 0;
    return 1;
}

static int
msg_member_build(Cadre__Member *o, const struct msg_member *in)
{
    if (!msg_strs_ok(in->queue_names, in->queues_n) ||
        !msg_strs_ok(in->serves, in->serves_n) ||
        (in->queues_n > 0 && in->queue_ready == NULL) ||
        in->state > MSG_MEMBER_SELF)
        return -1;
    cadre__member__init(o);
    o->node_id = msg_str(in->node_id);
    o->peer_url = msg_str(in->peer_url);
    o->events_url = msg_str(in->events_url);
    o->api_url = msg_str(in->api_url);
    o->state = in->state;
    o->last_heard_ms = in->last_heard_ms;
    o->workers = in->workers;
    o->free_slots = in->free_slots;
    o->ready = in->ready;
    o->n_queue_names = in->queues_n;
    o->queue_names = (char **)in->queue_names;
    o->n_queue_ready = in->queues_n;
    o->queue_ready = (uint64_t *)in->queue_ready;
    o->version = msg_str(in->version);
    o->leader = msg_str(in->leader);
    o->boot_id = in->boot_id;
    o->n_serves = in->serves_n;
    o->serves = (char **)in->serves;
    return 0;
}

static const ProtobufCMessage *
msg_heartbeat_chunk_build(const struct msg *m, size_t start, size_t k,
                          int first, union msg_chunk *c)
{
    const struct msg_heartbeat *h = &m->u.heartbeat;

    if (h->peers_n > 0 && h->peers == NULL)
        return NULL;
    cadre__heartbeat__init(&c->heartbeat.h);
    if (first) {
        if (msg_member_build(&c->heartbeat.self, &h->self) != 0)
            return NULL;
        c->heartbeat.h.self = &c->heartbeat.self;
        c->heartbeat.h.seq = h->seq;
    }
    for (size_t i = 0; i < k; i++) {
        if (msg_member_build(&c->heartbeat.m[i], &h->peers[start + i]) != 0)
            return NULL;
        c->heartbeat.p[i] = &c->heartbeat.m[i];
    }
    c->heartbeat.h.n_peers = k;
    c->heartbeat.h.peers = c->heartbeat.p;
    return &c->heartbeat.h.base;
}

/* The cluster messages' chunks (see msg_chunk_build). */
static const ProtobufCMessage *
msg_cluster_chunk_build(const struct msg *m, size_t start, size_t k, int first,
                        union msg_chunk *c)
{
    switch (m->kind) {
    case MSG_HEARTBEAT:
    case MSG_HELLO:
        return msg_heartbeat_chunk_build(m, start, k, first, c);
    case MSG_MEMBERS: {
        const struct msg_members *ms = &m->u.members;

        if (ms->members_n > 0 && ms->members == NULL)
            return NULL;
        cadre__members__init(&c->members.ms);
        for (size_t i = 0; i < k; i++) {
            if (msg_member_build(&c->members.m[i], &ms->members[start + i]) !=
                0)
                return NULL;
            c->members.p[i] = &c->members.m[i];
        }
        c->members.ms.n_members = k;
        c->members.ms.members = c->members.p;
        return &c->members.ms.base;
    }
    case MSG_STEAL: {
        const struct msg_steal *st = &m->u.steal;

        if (!msg_strs_ok(st->queues, st->queues_n))
            return NULL;
        cadre__steal__init(&c->steal);
        c->steal.n_queues = st->queues_n;
        c->steal.queues = (char **)st->queues;
        c->steal.max = st->max;
        c->steal.thief = msg_str(st->thief);
        return &c->steal.base;
    }
    case MSG_STEAL_REPLY: {
        const struct msg_steal_reply *r = &m->u.steal_reply;

        if (r->records_n > 0 && r->records == NULL)
            return NULL;
        cadre__steal_reply__init(&c->steal_reply.r);
        for (size_t i = 0; i < k; i++) {
            if (!msg_bytes_ok(&r->records[start + i]))
                return NULL;
            c->steal_reply.recs[i] = msg_pb_bytes(&r->records[start + i]);
        }
        c->steal_reply.r.n_records = k;
        c->steal_reply.r.records = c->steal_reply.recs;
        return &c->steal_reply.r.base;
    }
    case MSG_SETTLE: {
        const struct msg_settle *se = &m->u.settle;

        if (se->ids_n > 0 && se->ids == NULL)
            return NULL;
        cadre__settle__init(&c->settle.s);
        if (first)
            c->settle.s.thief = msg_str(se->thief);
        for (size_t i = 0; i < k; i++)
            c->settle.ids[i] = msg_pb_id(&se->ids[start + i]);
        c->settle.s.n_ids = k;
        c->settle.s.ids = c->settle.ids;
        return &c->settle.s.base;
    }
    default:
        return NULL;
    }
}

static int
msg_coord_kind_ok(int kind)
{
    return kind >= MSG_COORD_LOCK_ACQUIRE && kind <= MSG_COORD_UNIQUE_RELEASE;
}

static int
msg_coord_code_ok(int code)
{
    return code >= MSG_COORD_OK && code <= MSG_COORD_CODE_LAST;
}

/* The cluster primitives' bodies (see msg_chunk_build): no repeated
 * fields, one chunk. */
static const ProtobufCMessage *
msg_coord_build(const struct msg *m, union msg_chunk *c)
{
    if (m->kind == MSG_COORD) {
        const struct msg_coord *in = &m->u.coord;

        if (!msg_coord_kind_ok(in->kind))
            return NULL;
        cadre__coord__init(&c->coord);
        c->coord.kind = (uint32_t)in->kind;
        c->coord.key = msg_str(in->key);
        c->coord.owner = msg_str(in->owner);
        c->coord.ttl_ms = in->ttl_ms;
        c->coord.limit = in->limit;
        c->coord.per_ms = in->per_ms;
        return &c->coord.base;
    }
    if (!msg_coord_code_ok(m->u.coord_reply.code))
        return NULL;
    cadre__coord_reply__init(&c->coord_reply);
    c->coord_reply.code = (uint32_t)m->u.coord_reply.code;
    c->coord_reply.token = m->u.coord_reply.token;
    c->coord_reply.retry_after_ms = m->u.coord_reply.retry_after_ms;
    c->coord_reply.count = m->u.coord_reply.count;
    c->coord_reply.holder = msg_str(m->u.coord_reply.holder);
    return &c->coord_reply.base;
}

/* Builds into c the chunk of m's body that starts at element *pos and moves
 * *pos past it. Scalars and borrowed arrays go into the first chunk only.
 * Returns the message to pack, or NULL if m is invalid. */
static const ProtobufCMessage *
msg_chunk_build(const struct msg *m, size_t *pos, union msg_chunk *c)
{
    size_t start = *pos;
    size_t n = msg_body_count(m);
    size_t k = n - start < MSG_CHUNK ? n - start : MSG_CHUNK;
    int    first = start == 0;

    *pos = start + k;
    switch (m->kind) {
    case MSG_DISPATCH: {
        const struct msg_dispatch *d = &m->u.dispatch;

        if (n > 0 && d->jobs == NULL)
            return NULL;
        cadre__dispatch__init(&c->dispatch.d);
        for (size_t i = 0; i < k; i++) {
            if (msg_new_job_build(&c->dispatch.j[i], &c->dispatch.o[i],
                                  &c->dispatch.mw[i], &d->jobs[start + i]) != 0)
                return NULL;
            c->dispatch.p[i] = &c->dispatch.j[i];
        }
        c->dispatch.d.n_jobs = k;
        c->dispatch.d.jobs = c->dispatch.p;
        return &c->dispatch.d.base;
    }
    case MSG_DISPATCH_REPLY: {
        const struct msg_dispatch_reply *d = &m->u.dispatch_reply;

        if (n > 0 && d->ids == NULL)
            return NULL;
        cadre__dispatch_reply__init(&c->dispatch_reply.r);
        for (size_t i = 0; i < k; i++) {
            c->dispatch_reply.ids[i] = msg_pb_id(&d->ids[start + i]);
            if (d->duplicate != NULL)
                c->dispatch_reply.dup[i] = d->duplicate[start + i] != 0;
        }
        c->dispatch_reply.r.n_ids = k;
        c->dispatch_reply.r.ids = c->dispatch_reply.ids;
        if (d->duplicate != NULL) {
            c->dispatch_reply.r.n_duplicate = k;
            c->dispatch_reply.r.duplicate = c->dispatch_reply.dup;
        }
        return &c->dispatch_reply.r.base;
    }
    case MSG_FETCH: {
        const struct msg_fetch *f = &m->u.fetch;

        if ((n > 0 && f->outcomes == NULL) ||
            (f->queues_n > 0 && f->queues == NULL))
            return NULL;
        cadre__fetch__init(&c->fetch.f);
        if (first) {
            for (size_t i = 0; i < f->queues_n; i++)
                if (f->queues[i] == NULL)
                    return NULL;
            c->fetch.f.n_queues = f->queues_n;
            c->fetch.f.queues = (char **)f->queues;
            c->fetch.f.max = f->max;
            c->fetch.f.wait_ms = f->wait_ms;
            c->fetch.f.worker_id = f->worker_id;
            c->fetch.f.stopping = f->stopping != 0;
            c->fetch.f.default_tries = f->default_tries;
            if (f->touch_n > MSG_TOUCH_MAX ||
                (f->touch_n > 0 && f->touch == NULL))
                return NULL;
            for (size_t i = 0; i < f->touch_n; i++) {
                cadre__touch__init(&c->fetch.t[i]);
                c->fetch.t[i].id = msg_pb_id(&f->touch[i].id);
                c->fetch.t[i].lease = f->touch[i].lease;
                c->fetch.tp[i] = &c->fetch.t[i];
            }
            c->fetch.f.n_touch = f->touch_n;
            c->fetch.f.touch = c->fetch.tp;
        }
        for (size_t i = 0; i < k; i++) {
            if (msg_outcome_build(&c->fetch.o[i], &f->outcomes[start + i]) != 0)
                return NULL;
            c->fetch.p[i] = &c->fetch.o[i];
        }
        c->fetch.f.n_outcomes = k;
        c->fetch.f.outcomes = c->fetch.p;
        return &c->fetch.f.base;
    }
    case MSG_JOBS: {
        const struct msg_jobs *j = &m->u.jobs;

        if (n > 0 && j->jobs == NULL)
            return NULL;
        cadre__jobs__init(&c->jobs.js);
        for (size_t i = 0; i < k; i++) {
            if (msg_job_build(&c->jobs.j[i], &c->jobs.mw[i],
                              &j->jobs[start + i]) != 0)
                return NULL;
            c->jobs.p[i] = &c->jobs.j[i];
        }
        c->jobs.js.n_jobs = k;
        c->jobs.js.jobs = c->jobs.p;
        return &c->jobs.js.base;
    }
    case MSG_WAIT: {
        const struct msg_wait *w = &m->u.wait;

        if (n > 0 && w->ids == NULL)
            return NULL;
        cadre__wait__init(&c->wait.w);
        if (first)
            c->wait.w.timeout_ms = w->timeout_ms;
        for (size_t i = 0; i < k; i++)
            c->wait.ids[i] = msg_pb_id(&w->ids[start + i]);
        c->wait.w.n_ids = k;
        c->wait.w.ids = c->wait.ids;
        return &c->wait.w.base;
    }
    case MSG_WAIT_REPLY:
    case MSG_FINISHED: {
        const struct msg_wait_reply *w = &m->u.wait_reply;

        if (n > 0 && w->results == NULL)
            return NULL;
        cadre__wait_reply__init(&c->wait_reply.w);
        for (size_t i = 0; i < k; i++) {
            if (msg_job_result_build(&c->wait_reply.r[i],
                                     &w->results[start + i]) != 0)
                return NULL;
            c->wait_reply.p[i] = &c->wait_reply.r[i];
        }
        c->wait_reply.w.n_results = k;
        c->wait_reply.w.results = c->wait_reply.p;
        return &c->wait_reply.w.base;
    }
    case MSG_STATUS_REQUEST:
        cadre__status_request__init(&c->status_request);
        return &c->status_request.base;
    case MSG_STATUS: {
        const cadre_status *s = &m->u.status;

        if (n > 0 && s->queues == NULL)
            return NULL;
        cadre__status__init(&c->status.s);
        if (first) {
            if (!msg_fixed_str_ok(s->node_id, sizeof(s->node_id)) ||
                !msg_fixed_str_ok(s->version, sizeof(s->version)) ||
                !msg_fixed_str_ok(s->leader, sizeof(s->leader)))
                return NULL;
            c->status.s.node_id = (char *)s->node_id;
            c->status.s.version = (char *)s->version;
            c->status.s.uptime_ms = s->uptime_ms;
            c->status.s.workers = s->workers;
            c->status.s.workers_busy = s->workers_busy;
            c->status.s.bad_frames = s->bad_frames;
            c->status.s.commits = s->commits;
            c->status.s.replayed = s->replayed;
            c->status.s.members = s->members;
            c->status.s.members_alive = s->members_alive;
            c->status.s.heartbeat_bytes_out = s->heartbeat_bytes_out;
            c->status.s.heartbeat_bytes_in = s->heartbeat_bytes_in;
            c->status.s.jobs_stolen = s->jobs_stolen;
            c->status.s.jobs_lent = s->jobs_lent;
            c->status.s.jobs_settled = s->jobs_settled;
            c->status.s.subruns = s->subruns;
            c->status.s.subrun_tasks = s->subrun_tasks;
            c->status.s.leader = (char *)s->leader;
            c->status.s.raft_term = s->raft_term;
            c->status.s.raft_role = (uint32_t)s->raft_role;
            c->status.s.leader_ready = s->leader_ready != 0;
            c->status.s.not_committing = s->not_committing != 0;
        }
        for (size_t i = 0; i < k; i++) {
            if (msg_queue_stats_build(&c->status.q[i], &s->queues[start + i]) !=
                0)
                return NULL;
            c->status.p[i] = &c->status.q[i];
        }
        c->status.s.n_queues = k;
        c->status.s.queues = c->status.p;
        return &c->status.s.base;
    }
    case MSG_ERROR:
        /* Code 0 would read as success on the other side. */
        if (m->u.error.code <= CADRE_OK || m->u.error.code >= CADRE_E_COUNT)
            return NULL;
        cadre__error__init(&c->error);
        c->error.code = (uint32_t)m->u.error.code;
        c->error.message = msg_str(m->u.error.message);
        return &c->error.base;
    case MSG_EVENT: {
        const struct msg_event *ev = &m->u.event;

        if (ev->kind <= MSG_EVENT_NONE || ev->kind > MSG_EVENT_LAST)
            return NULL;
        cadre__event__init(&c->event);
        c->event.kind = (uint32_t)ev->kind;
        c->event.id = msg_pb_id(&ev->id);
        c->event.task = msg_str(ev->task);
        c->event.queue = msg_str(ev->queue);
        c->event.attempt = ev->attempt;
        c->event.at_ms = ev->at_ms;
        c->event.error_type = msg_str(ev->error_type);
        c->event.leader = msg_str(ev->leader);
        c->event.term = ev->term;
        return &c->event.base;
    }
    case MSG_FAILED_QUERY:
    case MSG_FAILED_JOBS:
    case MSG_ADMIN:
    case MSG_ADMIN_REPLY:
        return msg_admin_chunk_build(m, start, k, first, c);
    case MSG_RUN:
    case MSG_RUN_REPLY:
        return msg_run_chunk_build(m, start, k, first, c);
    case MSG_HEARTBEAT:
    case MSG_HELLO:
    case MSG_MEMBERS:
    case MSG_STEAL:
    case MSG_STEAL_REPLY:
    case MSG_SETTLE:
        return msg_cluster_chunk_build(m, start, k, first, c);
    case MSG_COORD:
    case MSG_COORD_REPLY:
        return msg_coord_build(m, c);
    default:
        return NULL;
    }
}

/* The Envelope's fields before the body: request_id. */
static size_t
msg_head_len(const struct msg *m)
{
    Cadre__Envelope e;

    cadre__envelope__init(&e);
    e.request_id = m->request_id;
    return cadre__envelope__get_packed_size(&e);
}

static size_t
msg_head_put(const struct msg *m, uint8_t *out)
{
    Cadre__Envelope e;

    cadre__envelope__init(&e);
    e.request_id = m->request_id;
    return cadre__envelope__pack(&e, out);
}

/* Sums the packed size of every chunk of m's body into *len and returns the
 * first chunk's message, or NULL if m is invalid. c holds that first chunk on
 * return only when it is the only one (msg_body_count(m) <= MSG_CHUNK). */
static const ProtobufCMessage *
msg_body_len(const struct msg *m, union msg_chunk *c, size_t *len)
{
    const ProtobufCMessage *first, *pm;
    size_t                  pos = 0, total, n = msg_body_count(m);

    first = msg_chunk_build(m, &pos, c);
    if (first == NULL)
        return NULL;
    total = protobuf_c_message_get_packed_size(first);
    while (pos < n) {
        pm = msg_chunk_build(m, &pos, c);
        if (pm == NULL)
            return NULL;
        total += protobuf_c_message_get_packed_size(pm);
    }
    *len = total;
    return first;
}

/* The total packed size given the body's size. */
static size_t
msg_total_len(const struct msg *m, size_t body_len)
{
    uint64_t tag = (uint64_t)msg_body_field(m->kind) << 3 | 2;

    return msg_head_len(m) + msg_varint_len(tag) + msg_varint_len(body_len) +
           body_len;
}

size_t
msg_packed_size(const struct msg *m)
{
    union msg_chunk c;
    size_t          body_len;

    if (m == NULL || msg_body_field(m->kind) == 0 ||
        msg_body_len(m, &c, &body_len) == NULL)
        return 0;
    return msg_total_len(m, body_len);
}

int
msg_pack(const struct msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    union msg_chunk         c;
    const ProtobufCMessage *pm;
    size_t                  body_len, total, off, pos, n;

    if (m == NULL || msg_body_field(m->kind) == 0)
        return CADRE_EINVAL;
    pm = msg_body_len(m, &c, &body_len);
    if (pm == NULL)
        return CADRE_EINVAL;
    total = msg_total_len(m, body_len);
    if (total > cap)
        return CADRE_ETOOBIG;
    /* Sizes are known and checked: protobuf-c packs without bounds checks. */
    off = msg_head_put(m, buf);
    off +=
        msg_varint_put(buf + off, (uint64_t)msg_body_field(m->kind) << 3 | 2);
    off += msg_varint_put(buf + off, body_len);
    n = msg_body_count(m);
    if (n <= MSG_CHUNK) {
        off += protobuf_c_message_pack(pm, buf + off); /* still built */
    } else {
        for (pos = 0; pos < n;) { /* validated by the size pass */
            pm = msg_chunk_build(m, &pos, &c);
            off += protobuf_c_message_pack(pm, buf + off);
        }
    }
    if (off != total)
        return CADRE_EINTERNAL; /* a bug: sizes and packing disagree */
    *len = total;
    return CADRE_OK;
}

/* ---- decoding ------------------------------------------------------------ */

static int
msg_id_get(const ProtobufCBinaryData *b, cadre_job_id *out)
{
    if (b->len != MSG_ID_LEN)
        return CADRE_EPROTO;
    memcpy(out->b, b->data, MSG_ID_LEN);
    return CADRE_OK;
}

static msg_bytes
msg_bytes_get(const ProtobufCBinaryData *b)
{
    msg_bytes out = {b->data, b->len};

    return out;
}

/* Allocates n elements of size (none when n is 0). */
static int
msg_array_new(size_t n, size_t size, void **out)
{
    *out = NULL;
    if (n == 0)
        return CADRE_OK;
    if (n > SIZE_MAX / size)
        return CADRE_ENOMEM;
    *out = cd_calloc(n, size);
    return *out == NULL ? CADRE_ENOMEM : CADRE_OK;
}

/* Copies a display string into a fixed array, truncated if need be: the
 * status strings are informational and a longer one is not an error. */
static void
msg_fixed_str_set(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int
msg_dispatch_get(const Cadre__Dispatch *in, struct msg_dispatch *out)
{
    struct msg_new_job *jobs;
    int                 rc;

    /* Validate everything before allocating anything. */
    for (size_t i = 0; i < in->n_jobs; i++)
        if (in->jobs[i]->id.len != MSG_ID_LEN)
            return CADRE_EPROTO;
    rc = msg_array_new(in->n_jobs, sizeof(*jobs), (void **)&jobs);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_jobs; i++) {
        const Cadre__NewJob     *j = in->jobs[i];
        const Cadre__JobOptions *o = j->opts;

        msg_id_get(&j->id, &jobs[i].id);
        jobs[i].task = j->task;
        jobs[i].payload = msg_bytes_get(&j->payload);
        if (o != NULL) {
            jobs[i].opts.queue = o->queue;
            jobs[i].opts.delay_ms = o->delay_ms;
            jobs[i].opts.run_at_ms = o->run_at_ms;
            jobs[i].opts.tries = o->tries;
            jobs[i].opts.backoff_s = o->backoff_s;
            jobs[i].opts.backoff_n = o->n_backoff_s;
            jobs[i].opts.retry_until_ms = o->retry_until_ms;
            jobs[i].opts.max_exceptions = o->max_exceptions;
            jobs[i].opts.timeout_ms = o->timeout_ms;
            jobs[i].opts.retry_after_ms = o->retry_after_ms;
            jobs[i].opts.unique_id = o->unique_id;
            jobs[i].opts.unique_for_ms = o->unique_for_ms;
            jobs[i].opts.unique_until_processing =
                o->unique_until_processing != 0;
            msg_mw_get(o->middleware, &jobs[i].opts.mw);
        }
    }
    out->jobs = jobs;
    out->jobs_n = in->n_jobs;
    return CADRE_OK;
}

static int
msg_dispatch_reply_get(const Cadre__DispatchReply *in,
                       struct msg_dispatch_reply  *out)
{
    size_t        n = in->n_ids;
    cadre_job_id *ids;
    int           rc;

    if (in->n_duplicate != 0 && in->n_duplicate != n)
        return CADRE_EPROTO;
    for (size_t i = 0; i < n; i++)
        if (in->ids[i].len != MSG_ID_LEN)
            return CADRE_EPROTO;
    /* One block: the ids, then the flags (cadre_job_id is byte-aligned). */
    rc = msg_array_new(n, sizeof(*ids) + (in->n_duplicate ? 1 : 0),
                       (void **)&ids);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        msg_id_get(&in->ids[i], &ids[i]);
    out->duplicate = NULL;
    if (in->n_duplicate != 0) {
        out->duplicate = (uint8_t *)(ids + n);
        for (size_t i = 0; i < n; i++)
            out->duplicate[i] = in->duplicate[i] ? 1 : 0;
    }
    out->ids = ids;
    out->ids_n = n;
    return CADRE_OK;
}

static int
msg_fetch_get(const Cadre__Fetch *in, struct msg_fetch *out)
{
    struct msg_outcome *os;
    int                 rc;

    for (size_t i = 0; i < in->n_outcomes; i++) {
        const Cadre__Outcome *o = in->outcomes[i];

        if (o->id.len != MSG_ID_LEN || (int)o->kind < MSG_OUTCOME_NONE ||
            (int)o->kind > MSG_OUTCOME_RETURN)
            return CADRE_EPROTO;
    }
    if (in->n_touch > MSG_TOUCH_MAX)
        return CADRE_EPROTO;
    for (size_t i = 0; i < in->n_touch; i++)
        if (in->touch[i]->id.len != MSG_ID_LEN)
            return CADRE_EPROTO;
    rc = msg_array_new(in->n_outcomes, sizeof(*os), (void **)&os);
    if (rc != CADRE_OK)
        return rc;
    rc = msg_array_new(in->n_touch, sizeof(*out->touch), (void **)&out->touch);
    if (rc != CADRE_OK) {
        cd_free(os);
        return rc;
    }
    for (size_t i = 0; i < in->n_touch; i++) {
        msg_id_get(&in->touch[i]->id, &out->touch[i].id);
        out->touch[i].lease = in->touch[i]->lease;
    }
    out->touch_n = in->n_touch;
    for (size_t i = 0; i < in->n_outcomes; i++) {
        const Cadre__Outcome *o = in->outcomes[i];

        msg_id_get(&o->id, &os[i].id);
        os[i].kind = (int)o->kind;
        os[i].result = msg_bytes_get(&o->result);
        os[i].error_type = o->error_type;
        os[i].error = o->error;
        os[i].release_delay_ms = o->release_delay_ms;
        os[i].lease = o->lease;
    }
    out->queues = (const char **)in->queues; /* borrowed whole */
    out->queues_n = in->n_queues;
    out->max = in->max;
    out->wait_ms = in->wait_ms;
    out->outcomes = os;
    out->outcomes_n = in->n_outcomes;
    out->worker_id = in->worker_id;
    out->stopping = in->stopping != 0;
    out->default_tries = in->default_tries;
    return CADRE_OK;
}

static int
msg_jobs_get(const Cadre__Jobs *in, struct msg_jobs *out)
{
    struct msg_job *jobs;
    int             rc;

    for (size_t i = 0; i < in->n_jobs; i++)
        if (in->jobs[i]->id.len != MSG_ID_LEN)
            return CADRE_EPROTO;
    rc = msg_array_new(in->n_jobs, sizeof(*jobs), (void **)&jobs);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_jobs; i++) {
        const Cadre__Job *j = in->jobs[i];

        msg_id_get(&j->id, &jobs[i].id);
        jobs[i].task = j->task;
        jobs[i].payload = msg_bytes_get(&j->payload);
        jobs[i].queue = j->queue;
        jobs[i].attempt = j->attempt;
        jobs[i].timeout_ms = j->timeout_ms;
        jobs[i].lease = j->lease;
        jobs[i].lease_ms = j->lease_ms;
        jobs[i].schedule = j->schedule;
        jobs[i].slot_s = j->slot;
        msg_mw_get(j->middleware, &jobs[i].mw);
    }
    out->jobs = jobs;
    out->jobs_n = in->n_jobs;
    return CADRE_OK;
}

static int
msg_wait_get(const Cadre__Wait *in, struct msg_wait *out)
{
    cadre_job_id *ids;
    int           rc;

    for (size_t i = 0; i < in->n_ids; i++)
        if (in->ids[i].len != MSG_ID_LEN)
            return CADRE_EPROTO;
    rc = msg_array_new(in->n_ids, sizeof(*ids), (void **)&ids);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_ids; i++)
        msg_id_get(&in->ids[i], &ids[i]);
    out->ids = ids;
    out->ids_n = in->n_ids;
    out->timeout_ms = in->timeout_ms;
    return CADRE_OK;
}

static int
msg_wait_reply_get(const Cadre__WaitReply *in, struct msg_wait_reply *out)
{
    struct msg_job_result *rs;
    int                    rc;

    for (size_t i = 0; i < in->n_results; i++) {
        const Cadre__JobResult *r = in->results[i];

        if (r->id.len != MSG_ID_LEN || r->status > CADRE_UNKNOWN)
            return CADRE_EPROTO;
    }
    rc = msg_array_new(in->n_results, sizeof(*rs), (void **)&rs);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_results; i++) {
        const Cadre__JobResult *r = in->results[i];

        msg_id_get(&r->id, &rs[i].id);
        rs[i].status = (int)r->status;
        rs[i].attempts = r->attempts;
        rs[i].result = msg_bytes_get(&r->result);
        rs[i].error_type = r->error_type;
        rs[i].error = r->error;
        rs[i].task = r->task;
        rs[i].queue = r->queue;
    }
    out->results = rs;
    out->results_n = in->n_results;
    return CADRE_OK;
}

/* cadre_status has fixed arrays: strings are copied (truncated), and the
 * queues array is the one allocation (freed by msg_free). */
static int
msg_status_get(const Cadre__Status *in, cadre_status *out)
{
    cadre_queue_stats *qs;
    int                rc;

    rc = msg_array_new(in->n_queues, sizeof(*qs), (void **)&qs);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_queues; i++) {
        const Cadre__QueueStats *q = in->queues[i];

        msg_fixed_str_set(qs[i].name, sizeof(qs[i].name), q->name);
        qs[i].ready = q->ready;
        qs[i].delayed = q->delayed;
        qs[i].reserved = q->reserved;
        qs[i].done = q->done;
        qs[i].failed = q->failed;
        qs[i].oldest_ready_age_ms = q->oldest_ready_age_ms;
    }
    msg_fixed_str_set(out->node_id, sizeof(out->node_id), in->node_id);
    msg_fixed_str_set(out->version, sizeof(out->version), in->version);
    msg_fixed_str_set(out->leader, sizeof(out->leader), in->leader);
    out->uptime_ms = in->uptime_ms;
    out->workers = in->workers;
    out->workers_busy = in->workers_busy;
    out->bad_frames = in->bad_frames;
    out->commits = in->commits;
    out->replayed = in->replayed;
    out->members = in->members;
    out->members_alive = in->members_alive;
    out->heartbeat_bytes_out = in->heartbeat_bytes_out;
    out->heartbeat_bytes_in = in->heartbeat_bytes_in;
    out->jobs_stolen = in->jobs_stolen;
    out->jobs_lent = in->jobs_lent;
    out->jobs_settled = in->jobs_settled;
    out->subruns = in->subruns;
    out->subrun_tasks = in->subrun_tasks;
    out->raft_term = in->raft_term;
    out->raft_role = (int)in->raft_role;
    out->leader_ready = in->leader_ready != 0;
    out->not_committing = in->not_committing != 0;
    out->queues = qs;
    out->queues_n = in->n_queues;
    return CADRE_OK;
}

static int
msg_error_get(const Cadre__Error *in, struct msg_error *out)
{
    if (in->code == CADRE_OK || in->code >= CADRE_E_COUNT)
        return CADRE_EPROTO;
    out->code = (int)in->code;
    out->message = in->message;
    return CADRE_OK;
}

static int
msg_event_get(const Cadre__Event *in, struct msg_event *out)
{
    if (in->kind == MSG_EVENT_NONE || in->kind > MSG_EVENT_LAST ||
        in->id.len != MSG_ID_LEN)
        return CADRE_EPROTO;
    out->kind = (int)in->kind;
    msg_id_get(&in->id, &out->id);
    out->task = in->task;
    out->queue = in->queue;
    out->attempt = in->attempt;
    out->at_ms = in->at_ms;
    out->error_type = in->error_type;
    out->leader = in->leader;
    out->term = in->term;
    return CADRE_OK;
}

static int
msg_ids_get(ProtobufCBinaryData *in, size_t n, cadre_job_id **out)
{
    cadre_job_id *ids;
    int           rc;

    for (size_t i = 0; i < n; i++)
        if (in[i].len != MSG_ID_LEN)
            return CADRE_EPROTO;
    rc = msg_array_new(n, sizeof(*ids), (void **)&ids);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        msg_id_get(&in[i], &ids[i]);
    *out = ids;
    return CADRE_OK;
}

static int
msg_failed_query_get(const Cadre__FailedQuery *in, struct msg_failed_query *out)
{
    if (in->after.len > MSG_CURSOR_MAX)
        return CADRE_EPROTO;
    out->queue = in->queue;
    out->after = msg_bytes_get(&in->after);
    out->limit = in->limit;
    out->ids_n = in->n_ids;
    return msg_ids_get(in->ids, in->n_ids, &out->ids);
}

static int
msg_failed_jobs_get(const Cadre__FailedJobs *in, struct msg_failed_jobs *out)
{
    struct msg_failed_job *jobs;
    int                    rc;

    if (in->next.len > MSG_CURSOR_MAX)
        return CADRE_EPROTO;
    for (size_t i = 0; i < in->n_jobs; i++)
        if (in->jobs[i]->id.len != MSG_ID_LEN)
            return CADRE_EPROTO;
    rc = msg_array_new(in->n_jobs, sizeof(*jobs), (void **)&jobs);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_jobs; i++) {
        const Cadre__FailedJob *j = in->jobs[i];

        msg_id_get(&j->id, &jobs[i].id);
        jobs[i].queue = j->queue;
        jobs[i].task = j->task;
        jobs[i].attempts = j->attempts;
        jobs[i].tries = j->tries;
        jobs[i].error_type = j->error_type;
        jobs[i].error = j->error;
        jobs[i].failed_at_ms = j->failed_at_ms;
        jobs[i].created_at_ms = j->created_at_ms;
        jobs[i].payload = msg_bytes_get(&j->payload);
        jobs[i].payload_len = j->payload_len;
    }
    out->jobs = jobs;
    out->jobs_n = in->n_jobs;
    out->next = msg_bytes_get(&in->next);
    out->more = in->more != 0;
    return CADRE_OK;
}

static int
msg_admin_get(const Cadre__Admin *in, struct msg_admin *out)
{
    if ((int)in->op <= MSG_ADMIN_NONE || (int)in->op > MSG_ADMIN_OP_LAST ||
        in->after.len > MSG_CURSOR_MAX)
        return CADRE_EPROTO;
    out->op = (int)in->op;
    out->queue = in->queue;
    out->older_than_ms = in->older_than_ms;
    out->after = msg_bytes_get(&in->after);
    out->all = in->all != 0;
    out->ids_n = in->n_ids;
    return msg_ids_get(in->ids, in->n_ids, &out->ids);
}

/* AdminReply.schedules into a new array (strings borrowed). */
static int
msg_schedules_get(const Cadre__AdminReply *in, struct msg_admin_reply *out)
{
    struct msg_schedule *v;
    int                  rc;

    if (in->n_schedules == 0)
        return CADRE_OK;
    rc = msg_array_new(in->n_schedules, sizeof(*v), (void **)&v);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_schedules; i++) {
        const Cadre__ScheduleInfo *s = in->schedules[i];

        if (s == NULL) {
            cd_free(v);
            return CADRE_EPROTO;
        }
        v[i] = (struct msg_schedule){.name = s->name,
                                     .cron = s->cron,
                                     .task = s->task,
                                     .queue = s->queue,
                                     .tz = s->timezone,
                                     .where = s->where,
                                     .on_one_server = s->on_one_server != 0,
                                     .paused = s->paused != 0,
                                     .next_s = s->next_s,
                                     .last_s = s->last_s,
                                     .fired = s->fired};
    }
    out->schedules = v;
    out->schedules_n = in->n_schedules;
    return CADRE_OK;
}

static int
msg_admin_reply_get(const Cadre__AdminReply *in, struct msg_admin_reply *out)
{
    int rc;

    if (in->next.len > MSG_CURSOR_MAX || in->n_schedules > MSG_SCHEDULES_MAX ||
        (in->id.len != 0 && in->id.len != MSG_ID_LEN))
        return CADRE_EPROTO;
    out->count = in->count;
    out->next = msg_bytes_get(&in->next);
    out->more = in->more != 0;
    out->queues = (const char **)in->queues; /* borrowed whole */
    out->queues_n = in->n_queues;
    out->leader.raft = in->raft != 0;
    out->leader.leader = in->leader; /* borrowed */
    out->leader.leader_raft_id = in->leader_raft_id;
    out->leader.raft_id = in->raft_id;
    out->leader.term = in->term;
    out->leader.role = in->raft_role;
    out->leader.ready = in->leader_ready != 0;
    out->leader.not_committing = in->not_committing != 0;
    out->leader.oldest_wait_ms = in->oldest_wait_ms;
    out->leader.commit_index = in->commit_index;
    out->leader.last_applied = in->last_applied;
    out->missing_n = in->n_missing;
    if (in->id.len == MSG_ID_LEN) {
        msg_id_get(&in->id, &out->id);
        out->has_id = 1;
    }
    rc = msg_ids_get(in->missing, in->n_missing, &out->missing);
    if (rc == CADRE_OK && (rc = msg_schedules_get(in, out)) != CADRE_OK) {
        cd_free(out->missing);
        out->missing = NULL;
    }
    return rc;
}

static int
msg_run_get(const Cadre__Run *in, struct msg_run *out)
{
    struct msg_run_task *ts;
    int                  rc;

    if (in->run_id.len != MSG_ID_LEN)
        return CADRE_EPROTO;
    rc = msg_array_new(in->n_tasks, sizeof(*ts), (void **)&ts);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_tasks; i++) {
        const Cadre__RunTask *t = in->tasks[i];

        ts[i].task = t->task;
        ts[i].payload = msg_bytes_get(&t->payload);
        ts[i].queue = t->queue;
        ts[i].timeout_ms = t->timeout_ms;
    }
    msg_id_get(&in->run_id, &out->run_id);
    out->tasks = ts;
    out->tasks_n = in->n_tasks;
    out->deadline_ms = in->deadline_ms;
    out->fail_fast = in->fail_fast != 0;
    return CADRE_OK;
}

static int
msg_run_reply_get(const Cadre__RunReply *in, struct msg_run_reply *out)
{
    struct msg_run_result *rs;
    int                    rc;

    for (size_t i = 0; i < in->n_results; i++)
        if (in->results[i]->status > CADRE_RUN_CANCELLED)
            return CADRE_EPROTO;
    rc = msg_array_new(in->n_results, sizeof(*rs), (void **)&rs);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_results; i++) {
        const Cadre__RunResult *r = in->results[i];

        rs[i].status = (int)r->status;
        rs[i].result = msg_bytes_get(&r->result);
        rs[i].error_type = r->error_type;
        rs[i].error = r->error;
        rs[i].attempts = r->attempts;
    }
    out->results = rs;
    out->results_n = in->n_results;
    return CADRE_OK;
}

static void
msg_member_get(const Cadre__Member *in, struct msg_member *out)
{
    out->node_id = in->node_id;
    out->peer_url = in->peer_url;
    out->events_url = in->events_url;
    out->api_url = in->api_url;
    out->state = in->state;
    out->last_heard_ms = in->last_heard_ms;
    out->workers = in->workers;
    out->free_slots = in->free_slots;
    out->ready = in->ready;
    out->queue_names = (const char **)in->queue_names;
    out->queue_ready = in->queue_ready;
    out->queues_n = in->n_queue_names;
    out->version = in->version;
    out->leader = in->leader;
    out->boot_id = in->boot_id;
    out->serves = (const char **)in->serves;
    out->serves_n = in->n_serves;
}

static int
msg_member_ok(const Cadre__Member *in)
{
    return in->n_queue_names == in->n_queue_ready &&
           in->state <= MSG_MEMBER_SELF;
}

/* Members of a Heartbeat (peers) or Members (members) into one array. */
static int
msg_members_get(Cadre__Member **in, size_t n, struct msg_member **out)
{
    struct msg_member *ms;
    int                rc;

    for (size_t i = 0; i < n; i++)
        if (!msg_member_ok(in[i]))
            return CADRE_EPROTO;
    rc = msg_array_new(n, sizeof(*ms), (void **)&ms);
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        msg_member_get(in[i], &ms[i]);
    *out = ms;
    return CADRE_OK;
}

static int
msg_heartbeat_get(const Cadre__Heartbeat *in, struct msg_heartbeat *out)
{
    if (in->self == NULL || !msg_member_ok(in->self) ||
        in->self->node_id[0] == '\0')
        return CADRE_EPROTO;
    msg_member_get(in->self, &out->self);
    out->seq = in->seq;
    out->peers_n = in->n_peers;
    return msg_members_get(in->peers, in->n_peers, &out->peers);
}

static int
msg_steal_reply_get(const Cadre__StealReply *in, struct msg_steal_reply *out)
{
    msg_bytes *rs;
    int        rc = msg_array_new(in->n_records, sizeof(*rs), (void **)&rs);

    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < in->n_records; i++)
        rs[i] = msg_bytes_get(&in->records[i]);
    out->records = rs;
    out->records_n = in->n_records;
    return CADRE_OK;
}

static int
msg_coord_get(const Cadre__Envelope *e, struct msg *out)
{
    if (e->body_case == CADRE__ENVELOPE__BODY_COORD) {
        const Cadre__Coord *in = e->coord;

        out->kind = MSG_COORD;
        if (in == NULL || in->kind > MSG_COORD_UNIQUE_RELEASE ||
            !msg_coord_kind_ok((int)in->kind))
            return CADRE_EPROTO;
        out->u.coord.kind = (int)in->kind;
        out->u.coord.key = in->key;
        out->u.coord.owner = in->owner;
        out->u.coord.ttl_ms = in->ttl_ms;
        out->u.coord.limit = in->limit;
        out->u.coord.per_ms = in->per_ms;
        return CADRE_OK;
    }
    out->kind = MSG_COORD_REPLY;
    if (e->coord_reply == NULL || e->coord_reply->code > MSG_COORD_CODE_LAST)
        return CADRE_EPROTO;
    out->u.coord_reply.code = (int)e->coord_reply->code;
    out->u.coord_reply.token = e->coord_reply->token;
    out->u.coord_reply.retry_after_ms = e->coord_reply->retry_after_ms;
    out->u.coord_reply.count = e->coord_reply->count;
    out->u.coord_reply.holder = e->coord_reply->holder;
    return CADRE_OK;
}

static int
msg_cluster_get(const Cadre__Envelope *e, struct msg *out)
{
    switch (e->body_case) {
    case CADRE__ENVELOPE__BODY_HEARTBEAT:
    case CADRE__ENVELOPE__BODY_HELLO: {
        const Cadre__Heartbeat *h = e->body_case == CADRE__ENVELOPE__BODY_HELLO
                                        ? e->hello
                                        : e->heartbeat;

        out->kind = e->body_case == CADRE__ENVELOPE__BODY_HELLO ? MSG_HELLO
                                                                : MSG_HEARTBEAT;
        return h == NULL ? CADRE_EPROTO
                         : msg_heartbeat_get(h, &out->u.heartbeat);
    }
    case CADRE__ENVELOPE__BODY_MEMBERS:
        out->kind = MSG_MEMBERS;
        if (e->members == NULL)
            return CADRE_EPROTO;
        out->u.members.members_n = e->members->n_members;
        return msg_members_get(e->members->members, e->members->n_members,
                               &out->u.members.members);
    case CADRE__ENVELOPE__BODY_STEAL:
        out->kind = MSG_STEAL;
        if (e->steal == NULL)
            return CADRE_EPROTO;
        out->u.steal.queues = (const char **)e->steal->queues;
        out->u.steal.queues_n = e->steal->n_queues;
        out->u.steal.max = e->steal->max;
        out->u.steal.thief = e->steal->thief;
        return CADRE_OK;
    case CADRE__ENVELOPE__BODY_STEAL_REPLY:
        out->kind = MSG_STEAL_REPLY;
        return e->steal_reply == NULL
                   ? CADRE_EPROTO
                   : msg_steal_reply_get(e->steal_reply, &out->u.steal_reply);
    case CADRE__ENVELOPE__BODY_FINISHED:
        out->kind = MSG_FINISHED;
        return e->finished == NULL
                   ? CADRE_EPROTO
                   : msg_wait_reply_get(e->finished, &out->u.wait_reply);
    case CADRE__ENVELOPE__BODY_SETTLE:
        out->kind = MSG_SETTLE;
        if (e->settle == NULL)
            return CADRE_EPROTO;
        out->u.settle.thief = e->settle->thief;
        out->u.settle.ids_n = e->settle->n_ids;
        return msg_ids_get(e->settle->ids, e->settle->n_ids,
                           &out->u.settle.ids);
    case CADRE__ENVELOPE__BODY_COORD:
    case CADRE__ENVELOPE__BODY_COORD_REPLY:
        return msg_coord_get(e, out);
    default:
        return CADRE_EPROTO; /* no body, or one this build does not know */
    }
}

/* Fills out's body from e. Returns CADRE_EPROTO or CADRE_ENOMEM; nothing is
 * left allocated on failure. */
static int
msg_body_get(const Cadre__Envelope *e, struct msg *out)
{
    switch (e->body_case) {
    case CADRE__ENVELOPE__BODY_DISPATCH:
        out->kind = MSG_DISPATCH;
        return e->dispatch == NULL
                   ? CADRE_EPROTO
                   : msg_dispatch_get(e->dispatch, &out->u.dispatch);
    case CADRE__ENVELOPE__BODY_DISPATCH_REPLY:
        out->kind = MSG_DISPATCH_REPLY;
        return e->dispatch_reply == NULL
                   ? CADRE_EPROTO
                   : msg_dispatch_reply_get(e->dispatch_reply,
                                            &out->u.dispatch_reply);
    case CADRE__ENVELOPE__BODY_FETCH:
        out->kind = MSG_FETCH;
        return e->fetch == NULL ? CADRE_EPROTO
                                : msg_fetch_get(e->fetch, &out->u.fetch);
    case CADRE__ENVELOPE__BODY_JOBS:
        out->kind = MSG_JOBS;
        return e->jobs == NULL ? CADRE_EPROTO
                               : msg_jobs_get(e->jobs, &out->u.jobs);
    case CADRE__ENVELOPE__BODY_WAIT:
        out->kind = MSG_WAIT;
        return e->wait == NULL ? CADRE_EPROTO
                               : msg_wait_get(e->wait, &out->u.wait);
    case CADRE__ENVELOPE__BODY_WAIT_REPLY:
        out->kind = MSG_WAIT_REPLY;
        return e->wait_reply == NULL
                   ? CADRE_EPROTO
                   : msg_wait_reply_get(e->wait_reply, &out->u.wait_reply);
    case CADRE__ENVELOPE__BODY_STATUS_REQUEST:
        out->kind = MSG_STATUS_REQUEST;
        return e->status_request == NULL ? CADRE_EPROTO : CADRE_OK;
    case CADRE__ENVELOPE__BODY_STATUS:
        out->kind = MSG_STATUS;
        return e->status == NULL ? CADRE_EPROTO
                                 : msg_status_get(e->status, &out->u.status);
    case CADRE__ENVELOPE__BODY_ERROR:
        out->kind = MSG_ERROR;
        return e->error == NULL ? CADRE_EPROTO
                                : msg_error_get(e->error, &out->u.error);
    case CADRE__ENVELOPE__BODY_FAILED_QUERY:
        out->kind = MSG_FAILED_QUERY;
        return e->failed_query == NULL
                   ? CADRE_EPROTO
                   : msg_failed_query_get(e->failed_query,
                                          &out->u.failed_query);
    case CADRE__ENVELOPE__BODY_FAILED_JOBS:
        out->kind = MSG_FAILED_JOBS;
        return e->failed_jobs == NULL
                   ? CADRE_EPROTO
                   : msg_failed_jobs_get(e->failed_jobs, &out->u.failed_jobs);
    case CADRE__ENVELOPE__BODY_ADMIN:
        out->kind = MSG_ADMIN;
        return e->admin == NULL ? CADRE_EPROTO
                                : msg_admin_get(e->admin, &out->u.admin);
    case CADRE__ENVELOPE__BODY_ADMIN_REPLY:
        out->kind = MSG_ADMIN_REPLY;
        return e->admin_reply == NULL
                   ? CADRE_EPROTO
                   : msg_admin_reply_get(e->admin_reply, &out->u.admin_reply);
    case CADRE__ENVELOPE__BODY_RUN:
        out->kind = MSG_RUN;
        return e->run == NULL ? CADRE_EPROTO : msg_run_get(e->run, &out->u.run);
    case CADRE__ENVELOPE__BODY_RUN_REPLY:
        out->kind = MSG_RUN_REPLY;
        return e->run_reply == NULL
                   ? CADRE_EPROTO
                   : msg_run_reply_get(e->run_reply, &out->u.run_reply);
    case CADRE__ENVELOPE__BODY_EVENT:
        out->kind = MSG_EVENT;
        return e->event == NULL ? CADRE_EPROTO
                                : msg_event_get(e->event, &out->u.event);
    default:
        return msg_cluster_get(e, out);
    }
}

int
msg_unpack(const uint8_t *buf, size_t len, struct msg *m)
{
    struct msg_alloc_state st = {.budget = MSG_DECODE_BUDGET(len)};
    ProtobufCAllocator     a = {msg_pb_alloc, msg_pb_free, &st};
    Cadre__Envelope       *e;
    struct msg             out;
    int                    rc;

    memset(m, 0, sizeof(*m)); /* so that msg_free is safe after a failure */
    if (buf == NULL && len > 0)
        return CADRE_EPROTO;
    e = cadre__envelope__unpack(&a, len, buf);
    if (e == NULL)
        return st.over ? CADRE_EPROTO : st.failed ? CADRE_ENOMEM : CADRE_EPROTO;
    memset(&out, 0, sizeof(out));
    out.request_id = e->request_id;
    rc = msg_body_get(e, &out);
    if (rc != CADRE_OK) {
        cadre__envelope__free_unpacked(e, &msg_pb_allocator);
        return rc;
    }
    out.owner_ = e;
    *m = out;
    return CADRE_OK;
}

void
msg_free(struct msg *m)
{
    if (m == NULL)
        return;
    /* Only decoded messages own anything; one built for encoding borrows
     * from its caller and has no owner_. */
    if (m->owner_ != NULL) {
        switch (m->kind) {
        case MSG_DISPATCH:
            cd_free(m->u.dispatch.jobs);
            break;
        case MSG_DISPATCH_REPLY:
            cd_free(m->u.dispatch_reply.ids); /* duplicate shares the block */
            break;
        case MSG_FETCH:
            cd_free(m->u.fetch.outcomes);
            cd_free(m->u.fetch.touch);
            break;
        case MSG_JOBS:
            cd_free(m->u.jobs.jobs);
            break;
        case MSG_WAIT:
            cd_free(m->u.wait.ids);
            break;
        case MSG_WAIT_REPLY:
        case MSG_FINISHED:
            cd_free(m->u.wait_reply.results);
            break;
        case MSG_STATUS:
            cd_free(m->u.status.queues);
            break;
        case MSG_FAILED_QUERY:
            cd_free(m->u.failed_query.ids);
            break;
        case MSG_FAILED_JOBS:
            cd_free(m->u.failed_jobs.jobs);
            break;
        case MSG_ADMIN:
            cd_free(m->u.admin.ids);
            break;
        case MSG_ADMIN_REPLY:
            cd_free(m->u.admin_reply.missing);
            cd_free(m->u.admin_reply.schedules);
            break;
        case MSG_RUN:
            cd_free(m->u.run.tasks);
            break;
        case MSG_RUN_REPLY:
            cd_free(m->u.run_reply.results);
            break;
        case MSG_HEARTBEAT:
        case MSG_HELLO:
            cd_free(m->u.heartbeat.peers);
            break;
        case MSG_MEMBERS:
            cd_free(m->u.members.members);
            break;
        case MSG_STEAL_REPLY:
            cd_free(m->u.steal_reply.records);
            break;
        case MSG_SETTLE:
            cd_free(m->u.settle.ids);
            break;
        default:
            break;
        }
        cadre__envelope__free_unpacked(m->owner_, &msg_pb_allocator);
    }
    memset(m, 0, sizeof(*m));
}

const char *
msg_kind_name(enum msg_kind kind)
{
    switch (kind) {
    case MSG_NONE:
        return "none";
    case MSG_DISPATCH:
        return "dispatch";
    case MSG_DISPATCH_REPLY:
        return "dispatch_reply";
    case MSG_FETCH:
        return "fetch";
    case MSG_JOBS:
        return "jobs";
    case MSG_WAIT:
        return "wait";
    case MSG_WAIT_REPLY:
        return "wait_reply";
    case MSG_STATUS_REQUEST:
        return "status_request";
    case MSG_STATUS:
        return "status";
    case MSG_ERROR:
        return "error";
    case MSG_FAILED_QUERY:
        return "failed_query";
    case MSG_FAILED_JOBS:
        return "failed_jobs";
    case MSG_ADMIN:
        return "admin";
    case MSG_ADMIN_REPLY:
        return "admin_reply";
    case MSG_RUN:
        return "run";
    case MSG_RUN_REPLY:
        return "run_reply";
    case MSG_EVENT:
        return "event";
    case MSG_HEARTBEAT:
        return "heartbeat";
    case MSG_HELLO:
        return "hello";
    case MSG_MEMBERS:
        return "members";
    case MSG_STEAL:
        return "steal";
    case MSG_STEAL_REPLY:
        return "steal_reply";
    case MSG_SETTLE:
        return "settle";
    case MSG_FINISHED:
        return "finished";
    case MSG_COORD:
        return "coord";
    case MSG_COORD_REPLY:
        return "coord_reply";
    }
    return "unknown";
}
