/* test_plugin.c: the demo plugin through the registry (loading, its tasks,
 * clear errors for bad plugins), the task outcome rules of cadre/task.h, and
 * the worker loop against a fake node (a rep socket on inproc:// or ipc://
 * speaking sealed frames): fetch and report, stop, max_jobs, a node that is
 * not up yet, a node that refuses, and the `cadre worker` process itself
 * (signals, plugin timeout). */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "crypto/keys.h"
#include "proto/msg.h"
#include "proto/wire.h"
#include "tests/lib/tap.h"
#include "worker/handler.h"
#include "worker/task.h"
#include "worker/worker.h"

extern char **environ;

static const char *
demo_path(void)
{
    const char *p = getenv("CADRE_DEMO_PLUGIN");

    if (p == NULL || p[0] == '\0')
        tap_fail(__FILE__, __LINE__, "CADRE_DEMO_PLUGIN is not set");
    return p != NULL && p[0] != '\0' ? p : NULL;
}

/* ---- the registry and the demo plugin ------------------------------------ */

struct one {
    cadre_task     t;
    struct msg_job job;
    char           result[512];
};

static void
one_run(const cadre_registry *reg, struct one *o, const char *task,
        const char *payload)
{
    const struct handler *h;

    memset(o, 0, sizeof(*o));
    o->job.id.b[0] = 0x01;
    o->job.task = task;
    o->job.queue = "default";
    o->job.attempt = 2;
    o->job.lease = 7;
    o->job.payload.data = (const uint8_t *)payload;
    o->job.payload.len = payload != NULL ? strlen(payload) : 0;
    task_init(&o->t, &o->job, 0);
    h = handler_find(reg, task);
    if (h == NULL) {
        tap_fail(__FILE__, __LINE__, "no handler %s", task);
        return;
    }
    handler_run(reg, h, &o->t);
    if (o->t.result != NULL && o->t.result_len < sizeof(o->result))
        memcpy(o->result, o->t.result, o->t.result_len);
}

TEST(plugin_demo_tasks)
{
    cadre_registry reg;
    cd_err         err;
    struct one     o;
    const char    *path = demo_path();
    char           ledger[512], line[256];
    FILE          *f;

    REQUIRE(path != NULL);
    handler_registry_init(&reg);
    cd_err_clear(&err);
    if (handler_load_plugin(&reg, path, &err) != CADRE_OK) {
        tap_fail(__FILE__, __LINE__, "%s", err.msg);
        handler_registry_fini(&reg);
        return;
    }
    CHECK_EQ(reg.n, 6);
    CHECK(handler_find(&reg, "noop") != NULL);

    one_run(&reg, &o, "echo", "hello");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(o.result, "hello");
    task_fini(&o.t);

    one_run(&reg, &o, "sha256", "hello");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(
        o.result,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    task_fini(&o.t);

    one_run(&reg, &o, "sha256", NULL);
    CHECK_STR(
        o.result,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    task_fini(&o.t);

    one_run(&reg, &o, "fail", "card declined");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o.t.error_type, "DemoError");
    CHECK_STR(o.t.error, "card declined");
    task_fini(&o.t);

    one_run(&reg, &o, "noop", "x");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_DONE);
    CHECK_EQ(o.t.result_len, 0);
    task_fini(&o.t);

    one_run(&reg, &o, "sleep", "20");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(o.result, "slept 20");
    task_fini(&o.t);
    one_run(&reg, &o, "sleep", "soon");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o.t.error_type, "DemoError");
    task_fini(&o.t);

    snprintf(ledger, sizeof(ledger), "%s/ledger.txt", tap_tmpdir());
    one_run(&reg, &o, "ledger", ledger);
    CHECK_EQ(o.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(o.result, "ok");
    task_fini(&o.t);
    f = fopen(ledger, "r");
    REQUIRE(f != NULL);
    CHECK(fgets(line, sizeof(line), f) != NULL);
    fclose(f);
    snprintf(ledger, sizeof(ledger),
             "01000000-0000-0000-0000-000000000000 2 %ld ", (long)getpid());
    CHECK(strncmp(line, ledger, strlen(ledger)) == 0);
    CHECK(line[strlen(line) - 1] == '\n');

    handler_registry_fini(&reg);
}

TEST(plugin_bad_plugins_have_clear_errors)
{
    cadre_registry reg;
    cd_err         err;
    const char    *path = demo_path();

    REQUIRE(path != NULL);
    handler_registry_init(&reg);
    CHECK_EQ(handler_load_plugin(&reg, "/nonexistent/plugin.so", &err),
             CADRE_EIO);
    CHECK_CONTAINS(err.msg, "load plugin /nonexistent/plugin.so: ");
    CHECK_CONTAINS(err.msg, "No such file");

    /* A shared object that is not a cadre plugin. */
    CHECK_EQ(handler_load_plugin(&reg, "libm.so.6", &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "not a cadre plugin");

    /* Loading twice: the second registration collides, nothing half-added
     * stays. */
    REQUIRE_EQ(handler_load_plugin(&reg, path, &err), CADRE_OK);
    CHECK_EQ(handler_load_plugin(&reg, path, &err), CADRE_EEXISTS);
    CHECK_CONTAINS(err.msg, "cadre_plugin_init: register task 'echo': "
                            "already registered");
    CHECK_EQ(reg.n, 6);
    CHECK_EQ(reg.dl_n, 1);
    handler_registry_fini(&reg);
}

/* ---- outcome rules ------------------------------------------------------- */

static int
h_release(cadre_task *t, void *arg)
{
    return cadre_task_release(t, 1500);
}

static int
h_fail(cadre_task *t, void *arg)
{
    return cadre_task_fail(t, "nope %d", 42);
}

static int
h_bare_error(cadre_task *t, void *arg)
{
    return CADRE_EIO;
}

static int
h_error_then_ok(cadre_task *t, void *arg)
{
    cadre_task_result(t, "ignored", 7);
    cadre_task_error(t, "Custom", "explicit wins");
    return CADRE_OK;
}

static int
h_too_big(cadre_task *t, void *arg)
{
    static const char big[64];

    t->result_max = 10; /* as if the frame limit were tiny */
    if (cadre_task_result(t, big, sizeof(big)) != CADRE_ETOOBIG)
        return CADRE_EINTERNAL;
    return CADRE_OK;
}

static int
h_accessors(cadre_task *t, void *arg)
{
    size_t      len = 99;
    const void *p = cadre_task_payload(t, &len);
    char        buf[200];

    snprintf(buf, sizeof(buf), "%s|%s|%s|%u|%zu|%d", cadre_task_name(t),
             cadre_task_queue(t), cadre_task_id(t), cadre_task_attempt(t), len,
             p != NULL);
    return cadre_task_result(t, buf, strlen(buf));
}

TEST(task_outcome_rules)
{
    cadre_registry reg;
    struct one     o;

    handler_registry_init(&reg);
    REQUIRE_EQ(cadre_registry_add(&reg, "release", h_release, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "fail", h_fail, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "bare", h_bare_error, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "explicit", h_error_then_ok, NULL),
               CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "big", h_too_big, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "acc", h_accessors, NULL), CADRE_OK);
    CHECK_EQ(cadre_registry_add(&reg, "acc", h_accessors, NULL), CADRE_EEXISTS);
    CHECK_EQ(cadre_registry_add(&reg, "", h_accessors, NULL), CADRE_EINVAL);
    CHECK_EQ(cadre_registry_add(&reg, "null", NULL, NULL), CADRE_EINVAL);

    one_run(&reg, &o, "release", "");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_RELEASE);
    CHECK_EQ(o.t.release_delay_ms, 1500);
    {
        struct msg_outcome out;
        struct task_own    own;

        task_take_outcome(&o.t, &out, &own);
        CHECK_EQ(out.kind, MSG_OUTCOME_RELEASE);
        CHECK_EQ(out.release_delay_ms, 1500);
        CHECK_EQ(out.lease, 7);
        CHECK_STR(out.error, "");
        task_own_free(&own);
    }

    one_run(&reg, &o, "fail", "");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_FAIL);
    CHECK_STR(o.t.error_type, "Failed");
    CHECK_STR(o.t.error, "nope 42");
    task_fini(&o.t);

    one_run(&reg, &o, "bare", "");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o.t.error_type, "HandlerError");
    CHECK_CONTAINS(o.t.error, "input/output error");
    task_fini(&o.t);

    one_run(&reg, &o, "explicit", "");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o.t.error_type, "Custom");
    CHECK_STR(o.t.error, "explicit wins");
    task_fini(&o.t);

    one_run(&reg, &o, "big", "");
    CHECK_EQ(o.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o.t.error_type, "ResultTooBig");
    task_fini(&o.t);

    one_run(&reg, &o, "acc", NULL);
    CHECK_EQ(o.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(o.result,
              "acc|default|01000000-0000-0000-0000-000000000000|2|0|1");
    task_fini(&o.t);
    handler_registry_fini(&reg);
}

/* ---- a fake node --------------------------------------------------------- */

#define FAKE_MAX 64

struct fake_req {
    uint32_t max, wait_ms;
    int      stopping;
    size_t   outcomes_n;
    uint64_t worker_id;
    char     queues[128];
};

struct fake_out {
    cadre_job_id id;
    int          kind;
    uint64_t     lease;
    uint64_t     release_delay_ms;
    char         type[64];
    char         error[256];
    char         result[256];
};

struct fake {
    char                url[300];
    struct wire_sender  sender;
    struct wire_keyring ring;
    pthread_t           thread;
    uint32_t            listen_delay_ms;
    cadre_worker       *stop_w;     /* stopped once ... */
    size_t              stop_after; /* ... this many outcomes arrived */
    int                 error_code; /* reply MSG_ERROR to everything */
    size_t              max_result; /* refuse bigger results (0: any) */
    struct msg_job      jobs[FAKE_MAX];
    size_t              jobs_n;
    _Atomic size_t      handed;
    struct fake_req     reqs[512];
    size_t              reqs_n;
    struct fake_out     outs[FAKE_MAX];
    size_t              outs_n;
    _Atomic int         done, quit;
    int                 failed; /* a frame did not open, or nng failed */
};

static keys_key fake_master;
static char     fake_dir[300]; /* this test's temp dir */
static char     fake_key_path[512];

/* Writes a fresh master key into the test's temp dir. */
static int
fake_keys(void)
{
    cd_err err;

    if (keys_init() != CADRE_OK)
        return -1;
    keys_generate(&fake_master);
    snprintf(fake_dir, sizeof(fake_dir), "%s", tap_tmpdir());
    snprintf(fake_key_path, sizeof(fake_key_path), "%s/cluster.key", fake_dir);
    return keys_save(fake_key_path, KEYS_ROLE_MASTER, &fake_master, &err);
}

static void
fake_add_job(struct fake *f, const char *task, const char *payload)
{
    struct msg_job *j = &f->jobs[f->jobs_n];

    memset(j, 0, sizeof(*j));
    j->id.b[0] = 0xab;
    j->id.b[15] = (uint8_t)f->jobs_n;
    j->task = task;
    j->queue = "default";
    j->attempt = 1;
    j->lease = 1000 + f->jobs_n;
    j->payload.data = (const uint8_t *)payload;
    j->payload.len = strlen(payload);
    f->jobs_n++;
}

static void
fake_copy(char *dst, size_t cap, const void *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    if (len > 0)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

static void
fake_record(struct fake *f, const struct msg_fetch *fe)
{
    struct fake_req *r = &f->reqs[f->reqs_n < 511 ? f->reqs_n++ : 511];

    memset(r, 0, sizeof(*r));
    r->max = fe->max;
    r->wait_ms = fe->wait_ms;
    r->stopping = fe->stopping;
    r->outcomes_n = fe->outcomes_n;
    r->worker_id = fe->worker_id;
    for (size_t i = 0; i < fe->queues_n; i++) {
        size_t n = strlen(r->queues);

        snprintf(r->queues + n, sizeof(r->queues) - n, "%s%s", i ? "," : "",
                 fe->queues[i]);
    }
    for (size_t i = 0; i < fe->outcomes_n && f->outs_n < FAKE_MAX; i++) {
        const struct msg_outcome *o = &fe->outcomes[i];
        struct fake_out          *d = &f->outs[f->outs_n++];

        d->id = o->id;
        d->kind = o->kind;
        d->lease = o->lease;
        d->release_delay_ms = o->release_delay_ms;
        fake_copy(d->type, sizeof(d->type), o->error_type,
                  o->error_type ? strlen(o->error_type) : 0);
        fake_copy(d->error, sizeof(d->error), o->error,
                  o->error ? strlen(o->error) : 0);
        fake_copy(d->result, sizeof(d->result), o->result.data, o->result.len);
    }
}

/* A frame the fake refuses as too big: one with a result over max_result. */
static int
fake_too_big(const struct fake *f, const struct msg_fetch *fe)
{
    for (size_t i = 0; f->max_result != 0 && i < fe->outcomes_n; i++)
        if (fe->outcomes[i].result.len > f->max_result)
            return 1;
    return 0;
}

static void *
fake_main(void *arg)
{
    struct fake *f = arg;
    nng_socket   sock;

    if (f->listen_delay_ms)
        cd_sleep_ms(f->listen_delay_ms);
    if (nng_rep0_open(&sock) != 0) {
        f->failed = 1;
        return NULL;
    }
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 50);
    if (nng_listen(sock, f->url, NULL, 0) != 0) {
        f->failed = 1;
        nng_close(sock);
        return NULL;
    }
    while (!f->quit && !f->done) {
        nng_msg   *req, *rep;
        struct msg m, r;
        cd_err     err;
        size_t     size, len;
        int        stopping, rv;

        rv = nng_recvmsg(sock, &req, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0) {
            f->failed = 1;
            break;
        }
        if (wire_open(&f->ring, nng_msg_body(req), nng_msg_len(req),
                      WIRE_MAX_DEFAULT, NULL, &m, &err) != CADRE_OK ||
            m.kind != MSG_FETCH) {
            f->failed = 1;
            nng_msg_free(req);
            break;
        }
        nng_msg_free(req);
        memset(&r, 0, sizeof(r));
        r.request_id = m.request_id;
        if (fake_too_big(f, &m.u.fetch)) {
            r.kind = MSG_ERROR;
            r.u.error.code = CADRE_ETOOBIG;
            r.u.error.message = "frame too large";
            m.u.fetch.stopping = 0; /* refused, so not the last one */
        } else {
            fake_record(f, &m.u.fetch);
        }
        stopping = m.u.fetch.stopping;

        if (r.kind == MSG_ERROR) {
            /* refused above */
        } else if (f->error_code != 0) {
            r.kind = MSG_ERROR;
            r.u.error.code = f->error_code;
            r.u.error.message = "worker not welcome";
        } else {
            size_t n = f->jobs_n - f->handed;

            if (n > m.u.fetch.max)
                n = m.u.fetch.max;
            if (n == 0 && m.u.fetch.max > 0 && m.u.fetch.wait_ms > 0)
                cd_sleep_ms(m.u.fetch.wait_ms < 20 ? m.u.fetch.wait_ms : 20);
            r.kind = MSG_JOBS;
            r.u.jobs.jobs = &f->jobs[f->handed];
            r.u.jobs.jobs_n = n;
            f->handed += n;
        }
        if (f->stop_w != NULL && f->stop_after != 0 &&
            f->outs_n >= f->stop_after)
            cadre_worker_stop(f->stop_w);
        msg_free(&m);
        size = wire_frame_size(&r);
        if (size == 0 || nng_msg_alloc(&rep, size) != 0) {
            f->failed = 1;
            break;
        }
        if (wire_seal(&f->sender, &r, nng_msg_body(rep), size, WIRE_MAX_DEFAULT,
                      &len) != CADRE_OK) {
            f->failed = 1;
            nng_msg_free(rep);
            break;
        }
        nng_msg_chop(rep, size - len);
        if (nng_sendmsg(sock, rep, 0) != 0) {
            nng_msg_free(rep);
            f->failed = 1;
            break;
        }
        if (stopping)
            f->done = 1;
    }
    cd_sleep_ms(20); /* let the last reply leave before closing */
    nng_close(sock);
    return NULL;
}

static struct fake *
fake_new(const char *url)
{
    struct fake *f = cd_calloc(1, sizeof(*f));
    keys_key     wk;

    if (f == NULL)
        return NULL;
    snprintf(f->url, sizeof(f->url), "%s", url);
    keys_derive(&fake_master, KEYS_ROLE_WORKER, &wk);
    wire_sender_init(&f->sender, KEYS_ROLE_WORKER, &wk, 0);
    f->ring.has[KEYS_ROLE_WORKER] = 1;
    f->ring.key[KEYS_ROLE_WORKER] = wk;
    return f;
}

static int
fake_start(struct fake *f)
{
    return pthread_create(&f->thread, NULL, fake_main, f);
}

/* Ends the fake's thread; its record stays readable until cd_free(f). */
static void
fake_stop(struct fake *f)
{
    f->quit = 1;
    pthread_join(f->thread, NULL);
}

static const struct fake_out *
fake_out_for(const struct fake *f, size_t job)
{
    for (size_t i = 0; i < f->outs_n; i++)
        if (memcmp(&f->outs[i].id, &f->jobs[job].id, sizeof(cadre_job_id)) == 0)
            return &f->outs[i];
    return NULL;
}

static cadre_worker *
worker_for(const char *url, uint32_t prefetch, uint32_t max_jobs,
           const char **queues, size_t queues_n)
{
    cadre_worker_opts opts;
    cadre_worker     *w = NULL;
    char              errbuf[512];

    memset(&opts, 0, sizeof(opts));
    opts.url = url;
    opts.key_file = fake_key_path;
    opts.prefetch = prefetch;
    opts.max_jobs = max_jobs;
    opts.queues = queues;
    opts.queues_n = queues_n;
    if (cadre_worker_open(&opts, &w, errbuf, sizeof(errbuf)) != CADRE_OK) {
        tap_fail(__FILE__, __LINE__, "cadre_worker_open: %s", errbuf);
        return NULL;
    }
    worker_set_sleep_ms(w, 100);
    return w;
}

/* ---- the worker loop ----------------------------------------------------- */

TEST(worker_runs_jobs_and_reports_outcomes)
{
    const char            *queues[] = {"high", "default"};
    const char            *path = demo_path();
    struct fake           *f;
    cadre_worker          *w;
    const struct fake_out *o;
    char                   errbuf[256];

    REQUIRE(path != NULL);
    REQUIRE(fake_keys() == CADRE_OK);
    f = fake_new("inproc://worker-runs");
    REQUIRE(f != NULL);
    fake_add_job(f, "echo", "a");
    fake_add_job(f, "sha256", "hello");
    fake_add_job(f, "fail", "boom");
    fake_add_job(f, "nosuch", "y");
    fake_add_job(f, "sleep", "5");
    fake_add_job(f, "noop", "");
    w = worker_for(f->url, 0, 0, queues, 2);
    REQUIRE(w != NULL);
    CHECK_EQ(cadre_worker_load_plugin(w, path, errbuf, sizeof(errbuf)),
             CADRE_OK);
    f->stop_w = w;
    f->stop_after = 6;
    REQUIRE(fake_start(f) == 0);

    CHECK_EQ(cadre_worker_run(w), CADRE_OK);
    cadre_worker_close(w);
    fake_stop(f);

    CHECK(!f->failed);
    REQUIRE(f->reqs_n >= 2);
    CHECK_EQ(f->reqs[0].max, WORKER_PREFETCH_DEFAULT);
    CHECK_EQ(f->reqs[0].wait_ms, 100);
    CHECK_EQ(f->reqs[0].outcomes_n, 0);
    CHECK_STR(f->reqs[0].queues, "high,default");
    CHECK(f->reqs[0].worker_id != 0);
    for (size_t i = 0; i < f->reqs_n; i++) {
        CHECK_EQ(f->reqs[i].worker_id, f->reqs[0].worker_id);
        CHECK_EQ(f->reqs[i].stopping, i + 1 == f->reqs_n);
    }
    CHECK_EQ(f->outs_n, 6);

    REQUIRE((o = fake_out_for(f, 0)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_DONE);
    CHECK_STR(o->result, "a");
    CHECK_EQ(o->lease, 1000);
    REQUIRE((o = fake_out_for(f, 1)) != NULL);
    CHECK_STR(
        o->result,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    CHECK_EQ(o->lease, 1001);
    REQUIRE((o = fake_out_for(f, 2)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o->type, "DemoError");
    CHECK_STR(o->error, "boom");
    REQUIRE((o = fake_out_for(f, 3)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_FAIL);
    CHECK_STR(o->type, "NoHandler");
    CHECK_STR(o->error, "no handler for task 'nosuch'");
    REQUIRE((o = fake_out_for(f, 4)) != NULL);
    CHECK_STR(o->result, "slept 5");
    REQUIRE((o = fake_out_for(f, 5)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_DONE);
    CHECK_STR(o->result, "");
    cd_free(f);
}

TEST(worker_stop_returns_unstarted_jobs)
{
    const char   *path = demo_path();
    struct fake  *f;
    cadre_worker *w;
    size_t        done_n = 0, returned_n = 0;

    REQUIRE(path != NULL);
    REQUIRE(fake_keys() == CADRE_OK);
    f = fake_new("inproc://worker-stop");
    REQUIRE(f != NULL);
    for (int i = 0; i < 4; i++)
        fake_add_job(f, "sleep", "30");
    w = worker_for(f->url, 4, 0, NULL, 0);
    REQUIRE(w != NULL);
    REQUIRE_EQ(cadre_worker_load_plugin(w, path, NULL, 0), CADRE_OK);
    f->stop_w = w;
    f->stop_after = 1; /* on the first report that carries an outcome */
    REQUIRE(fake_start(f) == 0);
    CHECK_EQ(cadre_worker_run(w), CADRE_OK);
    cadre_worker_close(w);
    fake_stop(f);

    CHECK(!f->failed);
    CHECK(f->done);
    CHECK_EQ(f->reqs[0].max, 4);
    CHECK_EQ(f->outs_n, 4);
    for (size_t i = 0; i < f->outs_n; i++) {
        done_n += f->outs[i].kind == MSG_OUTCOME_DONE;
        returned_n += f->outs[i].kind == MSG_OUTCOME_RETURN;
    }
    /* Job 1 waits with its outcome (< 2 ms old); after job 2 both go out
     * with max 0; the stop then returns jobs 3 and 4. */
    CHECK_EQ(done_n, 2);
    CHECK_EQ(returned_n, 2);
    REQUIRE(f->reqs_n == 3);
    CHECK_EQ(f->reqs[1].max, 0);
    CHECK_EQ(f->reqs[1].outcomes_n, 2);
    CHECK_EQ(f->reqs[2].stopping, 1);
    CHECK_EQ(f->reqs[2].outcomes_n, 2);
    cd_free(f);
}

TEST(worker_max_jobs)
{
    const char   *path = demo_path();
    struct fake  *f;
    cadre_worker *w;

    REQUIRE(path != NULL);
    REQUIRE(fake_keys() == CADRE_OK);
    f = fake_new("inproc://worker-max");
    REQUIRE(f != NULL);
    for (int i = 0; i < 10; i++)
        fake_add_job(f, "echo", "x");
    w = worker_for(f->url, 8, 3, NULL, 0);
    REQUIRE(w != NULL);
    REQUIRE_EQ(cadre_worker_load_plugin(w, path, NULL, 0), CADRE_OK);
    REQUIRE(fake_start(f) == 0);
    CHECK_EQ(cadre_worker_run(w), CADRE_OK);
    cadre_worker_close(w);
    fake_stop(f);

    CHECK(f->done);
    CHECK_EQ(f->reqs[0].max, 3);
    CHECK_EQ(f->handed, 3);
    CHECK_EQ(f->outs_n, 3);
    for (size_t i = 0; i < f->outs_n; i++)
        CHECK_EQ(f->outs[i].kind, MSG_OUTCOME_DONE);
    CHECK_EQ(f->reqs[f->reqs_n - 1].stopping, 1);
    cd_free(f);
}

static int
h_release_later(cadre_task *t, void *arg)
{
    return cadre_task_release(t, 2500);
}

TEST(worker_waits_for_its_node)
{
    struct fake           *f;
    cadre_worker          *w;
    const struct fake_out *o;
    uint64_t               start = cd_mono_ms();

    REQUIRE(fake_keys() == CADRE_OK);
    f = fake_new("inproc://worker-late-node");
    REQUIRE(f != NULL);
    fake_add_job(f, "later", "");
    f->listen_delay_ms = 1200; /* past the first send timeout */
    w = worker_for(f->url, 2, 0, NULL, 0);
    REQUIRE(w != NULL);
    REQUIRE_EQ(cadre_worker_handle(w, "later", h_release_later, NULL),
               CADRE_OK);
    CHECK_EQ(cadre_worker_handle(w, "later", h_release_later, NULL),
             CADRE_EEXISTS);
    CHECK_CONTAINS(worker_errmsg(w), "already registered");
    f->stop_w = w;
    f->stop_after = 1;
    REQUIRE(fake_start(f) == 0);
    CHECK_EQ(cadre_worker_run(w), CADRE_OK);
    cadre_worker_close(w);
    fake_stop(f);

    CHECK(f->done);
    CHECK(cd_mono_ms() - start >= 1200);
    CHECK(cd_mono_ms() - start < 5000);
    REQUIRE((o = fake_out_for(f, 0)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_RELEASE);
    CHECK_EQ(o->release_delay_ms, 2500);
    cd_free(f);
}

TEST(worker_refused_by_node)
{
    struct fake  *f;
    cadre_worker *w;

    REQUIRE(fake_keys() == CADRE_OK);
    f = fake_new("inproc://worker-refused");
    REQUIRE(f != NULL);
    f->error_code = CADRE_EAUTH;
    w = worker_for(f->url, 2, 0, NULL, 0);
    REQUIRE(w != NULL);
    REQUIRE(fake_start(f) == 0);
    CHECK_EQ(cadre_worker_run(w), CADRE_EAUTH);
    CHECK_CONTAINS(worker_errmsg(w), "worker not welcome");
    cadre_worker_close(w);
    fake_stop(f);
    cd_free(f);
}

TEST(worker_shrinks_what_the_node_refuses_as_too_big)
{
    const char            *path = demo_path();
    static char            big[301];
    struct fake           *f;
    cadre_worker          *w;
    const struct fake_out *o;

    REQUIRE(path != NULL);
    REQUIRE(fake_keys() == CADRE_OK);
    memset(big, 'b', sizeof(big) - 1);
    f = fake_new("inproc://worker-toobig");
    REQUIRE(f != NULL);
    fake_add_job(f, "echo", "small");
    fake_add_job(f, "echo", big);
    fake_add_job(f, "echo", "tiny");
    f->max_result = 100;
    w = worker_for(f->url, 8, 0, NULL, 0);
    REQUIRE(w != NULL);
    REQUIRE_EQ(cadre_worker_load_plugin(w, path, NULL, 0), CADRE_OK);
    f->stop_w = w;
    f->stop_after = 3;
    REQUIRE(fake_start(f) == 0);
    CHECK_EQ(cadre_worker_run(w), CADRE_OK);
    cadre_worker_close(w);
    fake_stop(f);

    CHECK(f->done);
    CHECK_EQ(f->outs_n, 3);
    REQUIRE((o = fake_out_for(f, 0)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_DONE);
    CHECK_STR(o->result, "small");
    REQUIRE((o = fake_out_for(f, 1)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o->type, "ResultTooBig");
    CHECK_CONTAINS(o->error, "300 bytes");
    CHECK_EQ(o->lease, 1001);
    REQUIRE((o = fake_out_for(f, 2)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_DONE);
    CHECK_STR(o->result, "tiny");
    cd_free(f);
}

TEST(worker_open_errors)
{
    cadre_worker_opts opts;
    cadre_worker     *w = NULL;
    char              errbuf[512], missing[600];

    REQUIRE(fake_keys() == CADRE_OK);
    memset(&opts, 0, sizeof(opts));
    snprintf(missing, sizeof(missing), "%s/none.key", fake_dir);
    opts.key_file = missing;
    CHECK_EQ(cadre_worker_open(&opts, &w, errbuf, sizeof(errbuf)),
             CADRE_ENOTFOUND);
    CHECK_CONTAINS(errbuf, "load worker key: ");
    CHECK_CONTAINS(errbuf, "none.key");
    CHECK(w == NULL);

    opts.key_file = fake_key_path;
    opts.url = "nosuchscheme://x";
    CHECK(cadre_worker_open(&opts, &w, errbuf, sizeof(errbuf)) != CADRE_OK);
    CHECK_CONTAINS(errbuf, "dial nosuchscheme://x");
}

TEST(worker_pure_policies)
{
    CHECK_EQ(worker_backoff_next(0), 100);
    CHECK_EQ(worker_backoff_next(100), 200);
    CHECK_EQ(worker_backoff_next(800), 1600);
    CHECK_EQ(worker_backoff_next(1600), 2000);
    CHECK_EQ(worker_backoff_next(2000), 2000);
    CHECK_EQ(worker_fetch_max(8, 0, 100, 0), 8);
    CHECK_EQ(worker_fetch_max(8, 0, 0, 3), 5);
    CHECK_EQ(worker_fetch_max(8, 10, 7, 0), 3);
    CHECK_EQ(worker_fetch_max(8, 10, 7, 3), 0);
    CHECK_EQ(worker_fetch_max(8, 10, 12, 0), 0);
    CHECK_EQ(worker_batch_cap(64, 0, 0), 64);
    CHECK_EQ(worker_batch_cap(64, 5, 10), 64);     /* fast: full batch */
    CHECK_EQ(worker_batch_cap(64, 1000, 10), 10);  /* 10 ms of work */
    CHECK_EQ(worker_batch_cap(64, 150000, 10), 1); /* slow: one at a time */
    CHECK_EQ(worker_avg_next(0, 800, 0), 800);
    CHECK_EQ(worker_avg_next(800, 0, 1), 700);
    CHECK(!worker_should_report(0, 0, 0, 100));
    CHECK(worker_should_report(0, 1, 100, 100));
    CHECK(!worker_should_report(3, 1, 100, 101));
    CHECK(worker_should_report(3, 1, 100, 102));
}

/* ---- the `cadre worker` process ------------------------------------------ */

/* $CADRE_BIN, or NULL (then the test is skipped: unit tests do not build the
 * command). */
static const char *
cli_bin(void)
{
    const char *b = getenv("CADRE_BIN");

    if (b == NULL || access(b, X_OK) != 0) {
        printf("# skip: CADRE_BIN not set or not built\n");
        return NULL;
    }
    return b;
}

static pid_t
cli_spawn(char *const argv[])
{
    pid_t pid;

    return posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0 ? pid
                                                                      : -1;
}

static int
cli_wait(pid_t pid, uint64_t timeout_ms)
{
    uint64_t end = cd_mono_ms() + timeout_ms;
    int      st;

    while (cd_mono_ms() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        cd_sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

TEST(cli_worker_usage_errors)
{
    const char *bin = cli_bin();
    const char *bad[][4] = {
        {"worker", "--exec", "noequals", NULL},
        {"worker", "--prefetch", "0", NULL},
        {"worker", "--sleep", "-1", NULL},
        {"worker", "--queue", "a,,b", NULL},
        {"worker", "--bogus", NULL, NULL},
        {"worker", "--plugin", NULL, NULL},
        {"worker", NULL, NULL, NULL}, /* no handlers */
    };

    if (bin == NULL)
        return;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *argv[6] = {(char *)bin};
        int   st;

        for (int k = 0; k < 4 && bad[i][k] != NULL; k++)
            argv[k + 1] = (char *)bad[i][k];
        {
            char *a[8] = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>/dev/null"};
            int   n = 3;

            for (int k = 0; argv[k] != NULL; k++)
                a[n++] = argv[k];
            a[n] = NULL;
            st = cli_wait(cli_spawn(a), 5000);
        }
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    }
    {
        char *a[] = {"/bin/sh", "-c", "exec \"$0\" worker --help >/dev/null",
                     (char *)bin, NULL};
        int   st = cli_wait(cli_spawn(a), 5000);

        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
}

TEST(cli_worker_sigterm_finishes_the_current_job)
{
    const char            *bin = cli_bin();
    const char            *path = demo_path();
    struct fake           *f;
    const struct fake_out *o;
    char                   url[400];
    pid_t                  pid;
    int                    st;

    if (bin == NULL || path == NULL)
        return;
    REQUIRE(fake_keys() == CADRE_OK);
    snprintf(url, sizeof(url), "ipc://%s/api.sock", fake_dir);
    f = fake_new(url);
    REQUIRE(f != NULL);
    fake_add_job(f, "sleep", "300");
    fake_add_job(f, "echo", "1");
    fake_add_job(f, "echo", "2");
    REQUIRE(fake_start(f) == 0);
    {
        char *argv[] = {(char *)bin,  "worker",      "--connect", url,
                        "--key-file", fake_key_path, "--plugin",  (char *)path,
                        "--sleep",    "100",         NULL};

        pid = cli_spawn(argv);
    }
    REQUIRE(pid > 0);
    for (int i = 0; i < 500 && f->handed == 0; i++)
        cd_sleep_ms(10);
    CHECK_EQ(f->handed, 3);
    cd_sleep_ms(100); /* into the sleep job */
    kill(pid, SIGTERM);
    st = cli_wait(pid, 5000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < 100 && !f->done; i++)
        cd_sleep_ms(10);
    fake_stop(f);

    CHECK(f->done);
    REQUIRE((o = fake_out_for(f, 0)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_DONE);
    CHECK_STR(o->result, "slept 300");
    REQUIRE((o = fake_out_for(f, 1)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_RETURN);
    REQUIRE((o = fake_out_for(f, 2)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_RETURN);
    cd_free(f);
}

TEST(cli_worker_plugin_timeout_reports_and_exits)
{
    const char            *bin = cli_bin();
    const char            *path = demo_path();
    struct fake           *f;
    const struct fake_out *o;
    char                   url[400];
    pid_t                  pid;
    int                    st;
    uint64_t               start;

    if (bin == NULL || path == NULL)
        return;
    REQUIRE(fake_keys() == CADRE_OK);
    snprintf(url, sizeof(url), "ipc://%s/api.sock", fake_dir);
    f = fake_new(url);
    REQUIRE(f != NULL);
    fake_add_job(f, "echo", "first");
    fake_add_job(f, "sleep", "10000");
    fake_add_job(f, "echo", "never");
    REQUIRE(fake_start(f) == 0);
    start = cd_mono_ms();
    {
        char *argv[] = {(char *)bin,  "worker",      "--connect", url,
                        "--key-file", fake_key_path, "--plugin",  (char *)path,
                        "--timeout",  "200",         NULL};

        pid = cli_spawn(argv);
    }
    REQUIRE(pid > 0);
    st = cli_wait(pid, 5000);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == WORKER_EXIT_TIMEOUT);
    CHECK(cd_mono_ms() - start < 3000);
    for (int i = 0; i < 100 && !f->done; i++)
        cd_sleep_ms(10);
    fake_stop(f);

    CHECK(f->done);
    REQUIRE((o = fake_out_for(f, 0)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_DONE);
    REQUIRE((o = fake_out_for(f, 1)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_ERROR);
    CHECK_STR(o->type, "TimedOut");
    REQUIRE((o = fake_out_for(f, 2)) != NULL);
    CHECK_EQ(o->kind, MSG_OUTCOME_RETURN);
    cd_free(f);
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    TAP_RUN(T(plugin_demo_tasks), T(plugin_bad_plugins_have_clear_errors),
            T(task_outcome_rules), T(worker_runs_jobs_and_reports_outcomes),
            T(worker_stop_returns_unstarted_jobs), T(worker_max_jobs),
            T(worker_waits_for_its_node), T(worker_refused_by_node),
            T(worker_shrinks_what_the_node_refuses_as_too_big),
            T(worker_open_errors), T(worker_pure_policies),
            T(cli_worker_usage_errors),
            T(cli_worker_sigterm_finishes_the_current_job),
            T(cli_worker_plugin_timeout_reports_and_exits));
}
