/* seeds.c: writes seed inputs for the fuzz targets into DIR/<target>/, so
 * that runs start from valid messages, records, commands, snapshots and
 * expressions instead of having to discover protobuf framing blind
 * (protobuf-c itself is not instrumented). scripts/fuzz.sh runs it before
 * fuzzing; libFuzzer keeps what adds coverage. Not a fuzz target: the
 * CMake glob takes fuzz_*.c only. Each seed is checked to decode, so a
 * seed that stopped being valid (a format change) fails loudly here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cadre/cadre.h"
#include "common/alloc.h"
#include "node/fsm.h"
#include "proto/msg.h"
#include "proto/record.h"

static const char *seeds_dir;
static int         seeds_failed;

static void
seeds_write(const char *target, int n, const void *buf, size_t len)
{
    char  path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", seeds_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(2);
    }
    snprintf(path, sizeof(path), "%s/%s/seed-%03d", seeds_dir, target, n);
    f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(buf, 1, len, f) != len) ||
        fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

/* ---- msg ---- */

static void
seeds_msg(const struct msg *m)
{
    static int n;
    size_t     size = msg_packed_size(m), len;
    uint8_t   *buf = malloc(size ? size : 1);
    struct msg again;

    if (size == 0 || buf == NULL || msg_pack(m, buf, size, &len) != CADRE_OK ||
        msg_unpack(buf, len, &again) != CADRE_OK) {
        fprintf(stderr, "seeds: msg kind %d does not round-trip\n", m->kind);
        seeds_failed = 1;
        free(buf);
        return;
    }
    msg_free(&again);
    seeds_write("fuzz_msg", n, buf, len);
    seeds_write("fuzz_wire_payload", n, buf, len);
    n++;
    free(buf);
}

static void
seeds_member(struct msg_member *mm, const char *id)
{
    static const char    *queues[] = {"default", "mail"};
    static const uint64_t ready[] = {7, 0};
    static const char    *serves[] = {"default"};

    memset(mm, 0, sizeof(*mm));
    mm->node_id = id;
    mm->peer_url = "tcp://127.0.0.1:7701";
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
    mm->leader = "a";
    mm->boot_id = 0x1122334455667788ull;
    mm->serves = serves;
    mm->serves_n = 1;
}

static void
seeds_msgs(void)
{
    static const char    *queues[] = {"default", "high"};
    static const uint32_t backoff[] = {1, 5, 30};
    static const uint8_t  payload[] = "{\"x\":1}";
    cadre_job_id          ids[2];
    uint8_t               dup[2] = {0, 1};
    struct msg_new_job    nj;
    struct msg_job        job;
    struct msg_outcome    oc[2];
    struct msg_touch      touch;
    struct msg_job_result jr;
    struct msg_failed_job fj;
    struct msg_run_task   rt[2];
    struct msg_run_result rr;
    struct msg_member     mm[2];
    msg_bytes             recs[1];
    cadre_queue_stats     qs;
    struct msg            m;

    memset(ids, 0, sizeof(ids));
    memset(ids[0].b, 0x11, sizeof(ids[0].b));
    memset(ids[1].b, 0x22, sizeof(ids[1].b));

    memset(&nj, 0, sizeof(nj));
    nj.id = ids[0];
    nj.task = "echo";
    nj.payload = (msg_bytes){payload, sizeof(payload) - 1};
    nj.opts.queue = "high";
    nj.opts.tries = 3;
    nj.opts.backoff_s = backoff;
    nj.opts.backoff_n = 3;
    nj.opts.timeout_ms = 5000;
    nj.opts.unique_id = "u1";
    nj.opts.unique_for_ms = 60000;
    memset(&m, 0, sizeof(m));
    m.request_id = 1;
    m.kind = MSG_DISPATCH;
    m.u.dispatch.jobs = &nj;
    m.u.dispatch.jobs_n = 1;
    seeds_msg(&m);
    nj.opts.mw = (struct msg_middleware){.rate_key = "api",
                                         .rate_limit = 5,
                                         .rate_per_ms = 1000,
                                         .overlap_key = "report",
                                         .exc_key = "mail",
                                         .exc_limit = 3,
                                         .exc_per_ms = 60000};
    seeds_msg(&m); /* with job middleware */

    memset(&m, 0, sizeof(m));
    m.request_id = 2;
    m.kind = MSG_DISPATCH_REPLY;
    m.u.dispatch_reply.ids = ids;
    m.u.dispatch_reply.duplicate = dup;
    m.u.dispatch_reply.ids_n = 2;
    seeds_msg(&m);

    memset(oc, 0, sizeof(oc));
    oc[0].id = ids[0];
    oc[0].kind = MSG_OUTCOME_DONE;
    oc[0].result = (msg_bytes){payload, 3};
    oc[0].lease = 9;
    oc[1].id = ids[1];
    oc[1].kind = MSG_OUTCOME_ERROR;
    oc[1].error_type = "ValueError";
    oc[1].error = "bad";
    oc[1].release_delay_ms = 100;
    touch.id = ids[1];
    touch.lease = 4;
    memset(&m, 0, sizeof(m));
    m.request_id = 3;
    m.kind = MSG_FETCH;
    m.u.fetch.queues = queues;
    m.u.fetch.queues_n = 2;
    m.u.fetch.max = 4;
    m.u.fetch.wait_ms = 1000;
    m.u.fetch.outcomes = oc;
    m.u.fetch.outcomes_n = 2;
    m.u.fetch.worker_id = 77;
    m.u.fetch.touch = &touch;
    m.u.fetch.touch_n = 1;
    m.u.fetch.default_tries = 2;
    seeds_msg(&m);

    memset(&job, 0, sizeof(job));
    job.id = ids[0];
    job.task = "echo";
    job.payload = (msg_bytes){payload, sizeof(payload) - 1};
    job.queue = "default";
    job.attempt = 1;
    job.timeout_ms = 1000;
    job.lease = 5;
    job.lease_ms = 30000;
    memset(&m, 0, sizeof(m));
    m.kind = MSG_JOBS;
    m.u.jobs.jobs = &job;
    m.u.jobs.jobs_n = 1;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_WAIT;
    m.u.wait.ids = ids;
    m.u.wait.ids_n = 2;
    m.u.wait.timeout_ms = 100;
    seeds_msg(&m);

    memset(&jr, 0, sizeof(jr));
    jr.id = ids[0];
    jr.status = CADRE_DONE;
    jr.attempts = 1;
    jr.result = (msg_bytes){payload, 4};
    memset(&m, 0, sizeof(m));
    m.kind = MSG_WAIT_REPLY;
    m.u.wait_reply.results = &jr;
    m.u.wait_reply.results_n = 1;
    seeds_msg(&m);
    jr.task = "echo";
    jr.queue = "default";
    m.kind = MSG_FINISHED;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_STATUS_REQUEST;
    seeds_msg(&m);

    memset(&qs, 0, sizeof(qs));
    memset(&m, 0, sizeof(m));
    m.kind = MSG_STATUS;
    snprintf(m.u.status.node_id, sizeof(m.u.status.node_id), "a");
    snprintf(m.u.status.version, sizeof(m.u.status.version), "0.1.0");
    m.u.status.uptime_ms = 10;
    m.u.status.workers = 1;
    m.u.status.queues = &qs;
    m.u.status.queues_n = 1;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_ERROR;
    m.u.error.code = CADRE_EINVAL;
    m.u.error.message = "no";
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_FAILED_QUERY;
    m.u.failed_query.queue = "default";
    m.u.failed_query.after = (msg_bytes){payload, 4};
    m.u.failed_query.limit = 10;
    m.u.failed_query.ids = ids;
    m.u.failed_query.ids_n = 1;
    seeds_msg(&m);

    memset(&fj, 0, sizeof(fj));
    fj.id = ids[1];
    fj.queue = "default";
    fj.task = "echo";
    fj.attempts = 3;
    fj.tries = 3;
    fj.error_type = "E";
    fj.error = "boom";
    fj.failed_at_ms = 5;
    fj.created_at_ms = 1;
    fj.payload = (msg_bytes){payload, 2};
    fj.payload_len = 2;
    memset(&m, 0, sizeof(m));
    m.kind = MSG_FAILED_JOBS;
    m.u.failed_jobs.jobs = &fj;
    m.u.failed_jobs.jobs_n = 1;
    m.u.failed_jobs.next = (msg_bytes){payload, 3};
    m.u.failed_jobs.more = 1;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_ADMIN;
    m.u.admin.op = MSG_ADMIN_FAILED_RETRY;
    m.u.admin.ids = ids;
    m.u.admin.ids_n = 2;
    m.u.admin.queue = "default";
    m.u.admin.older_than_ms = 1000;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_ADMIN_REPLY;
    m.u.admin_reply.count = 2;
    m.u.admin_reply.missing = ids;
    m.u.admin_reply.missing_n = 1;
    m.u.admin_reply.queues = queues;
    m.u.admin_reply.queues_n = 2;
    seeds_msg(&m);

    {
        struct msg_schedule sc[2] = {
            {.name = "nightly",
             .cron = "30 2 * * *",
             .task = "report",
             .queue = "default",
             .tz = "Europe/Paris",
             .where = "leader",
             .on_one_server = 1,
             .next_s = 1700000000,
             .last_s = 1699990000,
             .fired = 3},
            {.name = "tick", .cron = "@every 1s", .task = "t", .paused = 1}};

        memset(&m, 0, sizeof(m));
        m.kind = MSG_ADMIN_REPLY;
        m.u.admin_reply.schedules = sc;
        m.u.admin_reply.schedules_n = 2;
        m.u.admin_reply.id = ids[0];
        m.u.admin_reply.has_id = 1;
        seeds_msg(&m);
    }
    memset(&m, 0, sizeof(m));
    m.kind = MSG_ADMIN;
    m.u.admin.op = MSG_ADMIN_SCHEDULE_PAUSE;
    m.u.admin.queue = "nightly";
    seeds_msg(&m);

    memset(rt, 0, sizeof(rt));
    rt[0].task = "echo";
    rt[0].payload = (msg_bytes){payload, 3};
    rt[1].task = "sleep";
    rt[1].queue = "high";
    rt[1].timeout_ms = 100;
    memset(&m, 0, sizeof(m));
    m.kind = MSG_RUN;
    m.u.run.run_id = ids[0];
    m.u.run.tasks = rt;
    m.u.run.tasks_n = 2;
    m.u.run.deadline_ms = 1000;
    m.u.run.fail_fast = 1;
    seeds_msg(&m);

    memset(&rr, 0, sizeof(rr));
    rr.status = CADRE_RUN_OK;
    rr.result = (msg_bytes){payload, 3};
    rr.attempts = 1;
    memset(&m, 0, sizeof(m));
    m.kind = MSG_RUN_REPLY;
    m.u.run_reply.results = &rr;
    m.u.run_reply.results_n = 1;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_EVENT;
    m.u.event.kind = MSG_EVENT_FAILED;
    m.u.event.id = ids[0];
    m.u.event.task = "echo";
    m.u.event.queue = "default";
    m.u.event.attempt = 2;
    m.u.event.at_ms = 1700000000000ull;
    m.u.event.error_type = "E";
    seeds_msg(&m);
    memset(&m, 0, sizeof(m));
    m.kind = MSG_EVENT;
    m.u.event.kind = MSG_EVENT_LEADER;
    m.u.event.leader = "b";
    m.u.event.term = 7;
    m.u.event.at_ms = 1700000000000ull;
    seeds_msg(&m);

    seeds_member(&mm[0], "a");
    seeds_member(&mm[1], "b");
    memset(&m, 0, sizeof(m));
    m.kind = MSG_HEARTBEAT;
    m.u.heartbeat.self = mm[0];
    m.u.heartbeat.peers = &mm[1];
    m.u.heartbeat.peers_n = 1;
    m.u.heartbeat.seq = 4;
    seeds_msg(&m);
    m.kind = MSG_HELLO;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_MEMBERS;
    m.u.members.members = mm;
    m.u.members.members_n = 2;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_STEAL;
    m.u.steal.queues = queues;
    m.u.steal.queues_n = 2;
    m.u.steal.max = 8;
    m.u.steal.thief = "b";
    seeds_msg(&m);

    recs[0] = (msg_bytes){payload, sizeof(payload) - 1};
    memset(&m, 0, sizeof(m));
    m.kind = MSG_STEAL_REPLY;
    m.u.steal_reply.records = recs;
    m.u.steal_reply.records_n = 1;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_SETTLE;
    m.u.settle.ids = ids;
    m.u.settle.ids_n = 2;
    m.u.settle.thief = "b";
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_COORD;
    m.u.coord.kind = MSG_COORD_LOCK_ACQUIRE;
    m.u.coord.key = "reports";
    m.u.coord.owner = "w1";
    m.u.coord.ttl_ms = 10000;
    seeds_msg(&m);
    m.u.coord.kind = MSG_COORD_THROTTLE;
    m.u.coord.owner = NULL;
    m.u.coord.limit = 5;
    m.u.coord.per_ms = 1000;
    seeds_msg(&m);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_COORD_REPLY;
    m.u.coord_reply.code = MSG_COORD_HELD;
    m.u.coord_reply.token = 7;
    m.u.coord_reply.retry_after_ms = 900;
    m.u.coord_reply.holder = "w1";
    seeds_msg(&m);
}

/* ---- record ---- */

static void
seeds_records(void)
{
    static const uint32_t backoff[] = {1, 5};
    struct record_job     r, again;
    uint8_t               buf[1024];
    size_t                len;
    cd_err                err;

    memset(&r, 0, sizeof(r));
    memset(r.id.b, 0x33, sizeof(r.id.b));
    r.task = "echo";
    r.queue = "default";
    r.payload = (const uint8_t *)"hello";
    r.payload_len = 5;
    r.tries = 3;
    r.backoff_s = backoff;
    r.backoff_n = 2;
    r.timeout_ms = 1000;
    r.state = 1;
    r.attempts = 1;
    r.seq = 42;
    r.created_at_ms = 1700000000000ull;
    r.available_at_ms = 1700000000001ull;
    r.error_type = "E";
    r.error = "boom";
    r.result = (const uint8_t *)"ok";
    r.result_len = 2;
    r.unique_key = "u";
    r.unique_until_ms = 5;
    r.unique_until_processing = 1;
    r.lent_to = "b";
    r.origin = "a";
    len = record_job_size(&r);
    if (len > sizeof(buf) || record_job_pack(&r, buf) != len ||
        record_job_unpack(buf, len, &again, &err) != CADRE_OK) {
        fprintf(stderr, "seeds: record does not round-trip\n");
        seeds_failed = 1;
        return;
    }
    record_job_free(&again);
    seeds_write("fuzz_record", 0, buf, len);
}

/* ---- fsm ---- */

/* A command in fuzz_fsm.c's raw form: 0x80 | len, then the encoding. */
static size_t
seeds_fsm_cmd(uint8_t *out, const struct fsm_cmd *c)
{
    size_t len;

    if (fsm_cmd_encode(c, out + 1, FSM_CMD_MAX, &len) != CADRE_OK ||
        len > 0x7f) {
        fprintf(stderr, "seeds: fsm command %d does not encode\n", c->kind);
        seeds_failed = 1;
        return 0;
    }
    out[0] = (uint8_t)(0x80 | len);
    return 1 + len;
}

static void
seeds_fsm(void)
{
    struct fsm_cmd cmds[10];
    uint8_t        in[2048];
    size_t         n = 0;
    struct fsm    *f;
    uint8_t       *snap;
    size_t         snap_len;

    memset(cmds, 0, sizeof(cmds));
    for (int i = 0; i < 10; i++) {
        cmds[i].kind = i + 1;
        cmds[i].now_ms = 1700000000000ull + (uint64_t)i * 1000;
        cmds[i].key = i < 2 ? "sched" : "k";
        cmds[i].key_len = i < 2 ? 5 : 1;
        cmds[i].owner = "o1";
        cmds[i].owner_len = 2;
        cmds[i].slot_s = 1700000000;
        cmds[i].ttl_ms = 60000;
        cmds[i].limit = 2;
        cmds[i].per_ms = 1000;
    }
    cmds[9].now_ms += 3600000; /* EXPIRE after everything */

    /* One input per kind, then all of them in order. */
    for (int i = 0; i < 10; i++) {
        in[0] = 3; /* max_items 2000, restore at command 0 */
        n = 1 + seeds_fsm_cmd(in + 1, &cmds[i]);
        seeds_write("fuzz_fsm", i, in, n);
    }
    in[0] = 3 | 4 << 2; /* restore after command 4 */
    n = 1;
    for (int i = 0; i < 10; i++) {
        n += seeds_fsm_cmd(in + n, &cmds[i]);
        if (i == 0) { /* a second claim and a done of it */
            n += seeds_fsm_cmd(in + n, &cmds[0]);
            n += seeds_fsm_cmd(in + n, &cmds[1]);
        }
    }
    seeds_write("fuzz_fsm", 10, in, n);

    /* A snapshot of a state with one entry of every type. */
    if (fsm_new(NULL, &f) != CADRE_OK)
        exit(2);
    for (int i = 0; i < 10; i++) {
        struct fsm_result res;
        uint8_t           enc[FSM_CMD_MAX];
        size_t            len;

        if (i == 3 || i == 6 || i == 8 || i == 9) /* keep them all */
            continue;
        if (fsm_cmd_encode(&cmds[i], enc, sizeof(enc), &len) != CADRE_OK)
            exit(2);
        fsm_apply(f, enc, len, &res);
    }
    if (fsm_snapshot(f, &snap, &snap_len) != CADRE_OK)
        exit(2);
    seeds_write("fuzz_fsm", 11, snap, snap_len);
    cd_free(snap);

    /* And one with a funnel of several holders and a schedule past
     * FSM_DONE_KEEP done slots (a prune floor). */
    for (int i = 0; i < 3; i++) {
        struct fsm_result res;
        struct fsm_cmd    c = cmds[5];
        char              owner[2] = {(char)('p' + i), 0};
        uint8_t           enc[FSM_CMD_MAX];
        size_t            len;

        c.owner = owner;
        c.owner_len = 1;
        c.limit = 5;
        if (fsm_cmd_encode(&c, enc, sizeof(enc), &len) != CADRE_OK)
            exit(2);
        fsm_apply(f, enc, len, &res);
    }
    for (int i = 0; i < FSM_DONE_KEEP + 4; i++) {
        struct fsm_result res;
        struct fsm_cmd    c = cmds[0];
        uint8_t           enc[FSM_CMD_MAX];
        size_t            len;

        c.key = "s2";
        c.key_len = 2;
        c.slot_s = 1700000000 + (int64_t)i * 60;
        for (int k = FSM_CLAIM; k <= FSM_DONE; k++) {
            c.kind = k;
            if (fsm_cmd_encode(&c, enc, sizeof(enc), &len) != CADRE_OK)
                exit(2);
            fsm_apply(f, enc, len, &res);
        }
    }
    if (fsm_snapshot(f, &snap, &snap_len) != CADRE_OK)
        exit(2);
    seeds_write("fuzz_fsm", 12, snap, snap_len);
    cd_free(snap);
    fsm_free(f);
}

/* ---- cron, replay ---- */

static void
seeds_cron(void)
{
    static const char *exprs[] = {"*/5 * * * *",
                                  "0 0 * * *",
                                  "30 4 1,15 * 5",
                                  "0 0 29 2 *",
                                  "0 0 30 2 *",
                                  "*/10 * * * * *",
                                  "0 9-17/2 * jan-mar mon-fri",
                                  "@hourly",
                                  "@every 1h30m",
                                  "@yearly",
                                  "59 23 31 12 sun",
                                  "0 0 1 * 7",
                                  "5 4 * * SUN",
                                  "0 12 * * 1-5/2",
                                  "1-59/7 0 1 1 *",
                                  "@every 10s"};

    for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++)
        seeds_write("fuzz_cron", (int)i, exprs[i], strlen(exprs[i]));
}

static void
seeds_replay(void)
{
    uint8_t in[1 + 4 * 64];
    size_t  n = 1;

    in[0] = 3; /* 4 keys */
    for (int i = 0; i < 64; i++) {
        in[n++] = (uint8_t)((i % 6) | (i % 8) << 5);   /* key, counter class */
        in[n++] = (uint8_t)(i * 7);                    /* counter */
        in[n++] = 126;                                 /* ts: in the window */
        in[n++] = (uint8_t)(i % 5 == 0 ? 0x60 : 0x41); /* clock step */
    }
    seeds_write("fuzz_replay", 0, in, n);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    seeds_dir = argv[1];
    if (mkdir(seeds_dir, 0755) != 0 && errno != EEXIST) {
        perror(seeds_dir);
        return 2;
    }
    seeds_msgs();
    seeds_records();
    seeds_fsm();
    seeds_cron();
    seeds_replay();
    return seeds_failed;
}
