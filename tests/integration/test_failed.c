/* test_failed.c: failed jobs and queue control against a real `cadre node`
 * with supervised workers running the demo plugin, through libcadre and the
 * CLI: failed list/show with the handler's error, retry (one, all, --queue)
 * that runs the job again, forget/flush/prune, queue pause/resume (durable
 * across a restart), clear, monitor exit codes, usage errors, and a worker
 * key refused. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "crypto/keys.h"
#include "proto/wire.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;
static cadre_client    *client;
static char             data_dir[PATH_MAX];

/* Starts a node on data_dir (a fresh temp dir if fresh) with the demo plugin
 * on `workers` workers serving `queues`. */
static int
start_on(int fresh, const char *workers, const char *queues, char *const more[])
{
    char             *args[32];
    int               a = 0;
    cadre_client_opts o;
    char              err[256];

    if (fresh)
        snprintf(data_dir, sizeof(data_dir), "%s", tap_tmpdir());
    memset(&node, 0, sizeof(node));
    args[a++] = "--workers";
    args[a++] = (char *)workers;
    args[a++] = "--plugin";
    args[a++] = (char *)proc_demo_plugin();
    args[a++] = "--queue";
    args[a++] = (char *)queues;
    for (int i = 0; more != NULL && more[i] != NULL; i++)
        args[a++] = more[i];
    args[a] = NULL;
    if (node_startv(&node, data_dir, NULL, args) != CADRE_OK)
        return -1;
    node_client_opts(&node, &o);
    if (cadre_client_open(&o, &client, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    return 0;
}

static int
start(const char *workers, const char *queues, char *const more[])
{
    return start_on(1, workers, queues, more);
}

static void
stop(void)
{
    cadre_client_close(client);
    client = NULL;
    CHECK_EQ(node_stop(&node), 0);
}

/* Output of the last run_cli. */
static char cli_out[8 << 20], cli_err[1 << 16];

/* Runs `cadre ARGS... --url URL --key-file KEY` (ARGS NULL-terminated) with
 * stdout and stderr captured; returns the exit code (-100 if it did not
 * run). */
static int
run_cli(const char *arg, ...)
{
    char          *argv[40];
    int            a = 0, code = -100;
    va_list        ap;
    struct proc_io io = {.out = cli_out,
                         .out_len = sizeof(cli_out),
                         .err = cli_err,
                         .err_len = sizeof(cli_err),
                         .timeout_ms = 30000};

    argv[a++] = (char *)proc_cadre_bin();
    va_start(ap, arg);
    for (const char *s = arg; s != NULL && a < 32; s = va_arg(ap, const char *))
        argv[a++] = (char *)s;
    va_end(ap);
    argv[a++] = "--url";
    argv[a++] = node.url;
    argv[a++] = "--key-file";
    argv[a++] = node.key_file;
    argv[a] = NULL;
    cli_out[0] = cli_err[0] = '\0';
    if (proc_run(argv, &io, &code) != CADRE_OK)
        return -100;
    return code;
}

/* Dispatches task(payload) with opts and waits for its outcome. */
static int
run1(const char *task, const char *payload, const cadre_job_opts *opts,
     cadre_job_id *id, cadre_outcome *out)
{
    int rc = cadre_dispatch(client, task, payload, strlen(payload), opts, id);

    if (rc != CADRE_OK) {
        fprintf(stderr, "dispatch: %s\n", cadre_client_errmsg(client));
        return rc;
    }
    return cadre_wait(client, id, 1, 15000, out);
}

/* Dispatches task(payload) and waits until it has failed. */
static int
fail1(const char *task, const char *payload, const cadre_job_opts *opts,
      cadre_job_id *id)
{
    cadre_outcome o = {0};
    int           rc = run1(task, payload, opts, id, &o);

    if (rc == CADRE_OK && o.status != CADRE_FAILED)
        rc = CADRE_EINTERNAL;
    cadre_outcome_fini(&o);
    return rc;
}

/* Every failed job, through all pages (limit per page); *n their count.
 * Free with free_jobs. */
static cadre_failed_job **
all_failed(const char *queue, uint32_t limit, size_t *n, size_t *pages)
{
    cadre_failed_list_opts o = {.queue = queue, .limit = limit};
    cadre_failed_job     **v = NULL;
    cadre_job_id           after;
    int                    more = 1;

    *n = 0;
    *pages = 0;
    while (more) {
        cadre_failed_page *p = NULL;

        if (cadre_failed_list(client, &o, &p) != CADRE_OK) {
            fprintf(stderr, "list: %s\n", cadre_client_errmsg(client));
            return v;
        }
        (*pages)++;
        for (size_t i = 0; i < cadre_failed_page_count(p); i++) {
            const cadre_job_id *id =
                cadre_failed_job_id(cadre_failed_page_job(p, i));

            v = realloc(v, (*n + 1) * sizeof(*v));
            /* Keep a full copy (with payload) for the checks. */
            v[*n] = NULL;
            cadre_failed_get(client, id, &v[*n]);
            (*n)++;
        }
        more = cadre_failed_page_next(p, &after);
        o.after = &after;
        cadre_failed_page_free(p);
    }
    return v;
}

static void
free_jobs(cadre_failed_job **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cadre_failed_job_free(v[i]);
    free(v);
}

/* The queue's counters (all zero if the node does not know it). */
static cadre_queue_stats
qstats(const char *name)
{
    cadre_queue_stats out;
    cadre_status      st;

    memset(&out, 0, sizeof(out));
    if (cadre_status_get(client, &st) != CADRE_OK)
        return out;
    for (size_t i = 0; i < st.queues_n; i++)
        if (strcmp(st.queues[i].name, name) == 0)
            out = st.queues[i];
    cadre_status_fini(&st);
    return out;
}

TEST(failed_list_and_show_carry_the_handlers_error)
{
    uint32_t          backoff[] = {0};
    cadre_job_opts    opts = {.tries = 3, .backoff_s = backoff, .backoff_n = 1};
    cadre_job_opts    other = {.queue = "other"};
    cadre_job_id      id, id2;
    cadre_failed_job *j = NULL;
    size_t            len = 0;
    const char       *payload;
    uint64_t          t0 = cd_now_ms();
    char              text[40];

    REQUIRE(start("1", "default,other", NULL) == 0);
    REQUIRE_EQ(fail1("fail", "card declined", &opts, &id), CADRE_OK);
    REQUIRE_EQ(fail1("fail", "nope", &other, &id2), CADRE_OK);
    CHECK_EQ(qstats("default").failed, 1);
    CHECK_EQ(qstats("other").failed, 1);

    /* The library: one page of two, in id order, no payloads. */
    {
        cadre_failed_page      *p = NULL;
        cadre_failed_list_opts  o = {0};
        const cadre_failed_job *f;
        cadre_job_id            after;

        REQUIRE_EQ(cadre_failed_list(client, &o, &p), CADRE_OK);
        REQUIRE_EQ(cadre_failed_page_count(p), 2);
        CHECK_EQ(cadre_failed_page_next(p, &after), 0);
        f = cadre_failed_page_job(p, 0);
        CHECK(memcmp(cadre_failed_job_id(f), &id, sizeof(id)) == 0);
        CHECK_STR(cadre_failed_job_queue(f), "default");
        CHECK_STR(cadre_failed_job_task(f), "fail");
        CHECK_EQ(cadre_failed_job_attempts(f), 3);
        CHECK_EQ(cadre_failed_job_tries(f), 3);
        CHECK_STR(cadre_failed_job_error_type(f), "DemoError");
        CHECK_STR(cadre_failed_job_error(f), "card declined");
        CHECK(cadre_failed_job_failed_at_ms(f) >= t0);
        CHECK(cadre_failed_job_failed_at_ms(f) <= cd_now_ms());
        CHECK(cadre_failed_job_created_at_ms(f) >= t0);
        CHECK_EQ(cadre_failed_job_payload_size(f), 13);
        CHECK(cadre_failed_job_payload(f, &len) == NULL);
        CHECK_EQ(len, 0);
        CHECK(cadre_failed_page_job(p, 2) == NULL);
        cadre_failed_page_free(p);

        o.queue = "other";
        REQUIRE_EQ(cadre_failed_list(client, &o, &p), CADRE_OK);
        REQUIRE_EQ(cadre_failed_page_count(p), 1);
        CHECK(memcmp(cadre_failed_job_id(cadre_failed_page_job(p, 0)), &id2,
                     sizeof(id2)) == 0);
        cadre_failed_page_free(p);
    }
    REQUIRE_EQ(cadre_failed_get(client, &id, &j), CADRE_OK);
    payload = cadre_failed_job_payload(j, &len);
    CHECK_EQ(len, 13);
    CHECK(payload != NULL && memcmp(payload, "card declined", 13) == 0);
    cadre_failed_job_free(j);
    {
        cadre_job_id none = id;

        none.b[15] ^= 1;
        CHECK_EQ(cadre_failed_get(client, &none, &j), CADRE_ENOTFOUND);
        CHECK_CONTAINS(cadre_client_errmsg(client), "no failed job");
    }

    /* The CLI: a table, JSON, and show with the payload. */
    cadre_job_id_format(&id, text);
    CHECK_EQ(run_cli("failed", "list", NULL), 0);
    CHECK_CONTAINS(cli_out, "FAILED_AT");
    CHECK_CONTAINS(cli_out, text);
    CHECK_CONTAINS(cli_out, "DemoError: card declined");
    CHECK_CONTAINS(cli_out, "Z "); /* ISO-8601 UTC */
    CHECK_EQ(run_cli("failed", "list", "--json", NULL), 0);
    CHECK(cli_out[0] == '[');
    CHECK_CONTAINS(cli_out, "\"failed_at_ms\":");
    CHECK_CONTAINS(cli_out, "\"attempts\":3");
    CHECK_EQ(run_cli("failed", "list", "--queue", "other", "--json", NULL), 0);
    CHECK(strstr(cli_out, text) == NULL);
    CHECK_EQ(run_cli("failed", "show", text, NULL), 0);
    CHECK_CONTAINS(cli_out, "attempts:    3 (of 3 tries)");
    CHECK_CONTAINS(cli_out, "error:       card declined");
    CHECK_CONTAINS(cli_out, "13 bytes, text");
    CHECK_EQ(run_cli("failed", "show", text, "--json", NULL), 0);
    CHECK(cli_out[0] == '{');
    CHECK_CONTAINS(cli_out, "\"payload\":\"card declined\"");
    CHECK_EQ(
        run_cli("failed", "show", "01a2087a-0000-7000-8000-000000000000", NULL),
        1);
    CHECK_CONTAINS(cli_err, "no failed job");
    stop();
}

TEST(binary_payloads_show_as_base64)
{
    cadre_job_id  id;
    cadre_outcome o;
    char          text[40];

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "fail", "\x00\x01\xff", 3, NULL, &id),
               CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 15000, &o), CADRE_OK);
    cadre_outcome_fini(&o);
    cadre_job_id_format(&id, text);
    CHECK_EQ(run_cli("failed", "show", text, NULL), 0);
    CHECK_CONTAINS(cli_out, "3 bytes, binary, shown as base64");
    CHECK_CONTAINS(cli_out, "AAH/");
    CHECK_EQ(run_cli("failed", "show", text, "--json", NULL), 0);
    CHECK_CONTAINS(cli_out, "\"payload_encoding\":\"base64\",\"payload\":"
                            "\"AAH/\"");
    stop();
}

/* A ledger job whose file's directory does not exist fails; once the
 * directory is there, a retry runs it again, as a fresh job. */
TEST(retry_runs_the_job_again)
{
    char           dir[PATH_MAX + 32], path[PATH_MAX + 64], text[40];
    cadre_job_id   id, ids[5];
    cadre_outcome  o, outs[5];
    size_t         retried = 0;
    uint64_t       n = 0;
    struct ledger *l = NULL;

    REQUIRE(start("1", "default,q2", NULL) == 0);
    snprintf(dir, sizeof(dir), "%s/ledger", data_dir);
    snprintf(path, sizeof(path), "%s/runs", dir);
    REQUIRE_EQ(fail1("ledger", path, NULL, &id), CADRE_OK);
    {
        cadre_failed_job *j = NULL;

        REQUIRE_EQ(cadre_failed_get(client, &id, &j), CADRE_OK);
        CHECK_CONTAINS(cadre_failed_job_error(j), "No such file");
        CHECK_EQ(cadre_failed_job_attempts(j), 1);
        cadre_failed_job_free(j);
    }
    REQUIRE(mkdir(dir, 0700) == 0);
    REQUIRE_EQ(cadre_failed_retry(client, &id, 1, &retried), CADRE_OK);
    CHECK_EQ(retried, 1);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 1); /* attempts start again from 0 */
    cadre_outcome_fini(&o);
    CHECK_EQ(qstats("default").failed, 0);
    CHECK_EQ(qstats("default").done, 1);
    CHECK_EQ(cadre_failed_retry(client, &id, 1, &retried), CADRE_ENOTFOUND);
    CHECK_EQ(retried, 0);

    /* Retry --queue, then all, through the CLI. */
    REQUIRE(rmdir(dir) == 0 || (unlink(path) == 0 && rmdir(dir) == 0));
    for (int i = 0; i < 5; i++) {
        cadre_job_opts q = {.queue = i < 2 ? "q2" : "default"};

        REQUIRE_EQ(fail1("ledger", path, &q, &ids[i]), CADRE_OK);
    }
    CHECK_EQ(qstats("q2").failed, 2);
    CHECK_EQ(qstats("default").failed, 3);
    REQUIRE(mkdir(dir, 0700) == 0);
    CHECK_EQ(run_cli("failed", "retry", "--queue", "q2", NULL), 0);
    CHECK_CONTAINS(cli_out, "retried 2 failed job(s)");
    REQUIRE_EQ(cadre_wait(client, ids, 2, 15000, outs), CADRE_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(outs[i].status, CADRE_DONE);
        cadre_outcome_fini(&outs[i]);
    }
    CHECK_EQ(qstats("default").failed, 3);
    CHECK_EQ(run_cli("failed", "retry", "all", NULL), 0);
    CHECK_CONTAINS(cli_out, "retried 3 failed job(s)");
    REQUIRE_EQ(cadre_wait(client, ids, 5, 15000, outs), CADRE_OK);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(outs[i].status, CADRE_DONE);
        cadre_outcome_fini(&outs[i]);
    }
    CHECK_EQ(cadre_failed_retry_all(client, NULL, &n), CADRE_OK);
    CHECK_EQ(n, 0);
    /* Each ran exactly once where it could (the ledger is in a fresh dir
     * for the five). */
    REQUIRE_EQ(ledger_read(path, &l), CADRE_OK);
    CHECK_EQ(ledger_lines(l), 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(ledger_count(l, &ids[i]), 1);
    ledger_free(l);

    /* Unknown and malformed ids. */
    cadre_job_id_format(&id, text);
    CHECK_EQ(run_cli("failed", "retry", text, NULL), 1);
    CHECK_CONTAINS(cli_err, "no failed job");
    CHECK_EQ(run_cli("failed", "retry", "not-a-uuid", NULL), 2);
    stop();
}

TEST(forget_flush_and_prune)
{
    cadre_job_id id[3];
    uint64_t     n = 0;
    char         text[40];
    size_t       count = 0, pages = 0;

    REQUIRE(start("1", "default", NULL) == 0);
    REQUIRE_EQ(fail1("fail", "old", NULL, &id[0]), CADRE_OK);
    cd_sleep_ms(1200);
    REQUIRE_EQ(fail1("fail", "new", NULL, &id[1]), CADRE_OK);
    REQUIRE_EQ(fail1("fail", "newer", NULL, &id[2]), CADRE_OK);
    CHECK_EQ(qstats("default").failed, 3);

    /* Prune: only what failed a second or more ago. */
    REQUIRE_EQ(cadre_failed_prune(client, 1000, &n), CADRE_OK);
    CHECK_EQ(n, 1);
    {
        cadre_failed_job **v = all_failed(NULL, 0, &count, &pages);

        REQUIRE_EQ(count, 2);
        CHECK(memcmp(cadre_failed_job_id(v[0]), &id[1], sizeof(id[1])) == 0);
        free_jobs(v, count);
    }
    CHECK_EQ(run_cli("failed", "prune", "--hours", "1", NULL), 0);
    CHECK_CONTAINS(cli_out, "pruned 0 failed job(s)");

    /* Forget one; a second forget of it fails. */
    cadre_job_id_format(&id[1], text);
    CHECK_EQ(run_cli("failed", "forget", text, NULL), 0);
    CHECK_EQ(run_cli("failed", "forget", text, NULL), 1);
    CHECK_CONTAINS(cli_err, "no failed job");
    CHECK_EQ(cadre_failed_forget(client, &id[1]), CADRE_ENOTFOUND);
    CHECK_EQ(qstats("default").failed, 1);

    /* Flush the rest. */
    CHECK_EQ(run_cli("failed", "flush", NULL), 0);
    CHECK_CONTAINS(cli_out, "flushed 1 failed job(s)");
    CHECK_EQ(run_cli("failed", "list", NULL), 0);
    CHECK_CONTAINS(cli_out, "no failed jobs");
    CHECK_EQ(run_cli("failed", "list", "--json", NULL), 0);
    CHECK_STR(cli_out, "[]\n");
    CHECK_EQ(qstats("default").failed, 0);
    {
        cadre_outcome o;

        /* Forgotten jobs are unknown to waiters. */
        REQUIRE_EQ(cadre_wait(client, &id[2], 1, 100, &o), CADRE_OK);
        CHECK_EQ(o.status, CADRE_UNKNOWN);
        cadre_outcome_fini(&o);
    }
    stop();
}

/* More failed jobs than a listing page or a request's batch: listing pages
 * through, and retry all / flush repeat their requests until done. */
TEST(many_failed_jobs_page_and_batch)
{
    enum { N = 10050 };
    static cadre_job_spec  specs[N];
    static cadre_job_id    ids[N];
    static cadre_outcome   outs[N];
    size_t                 failed = 0;
    uint64_t               n = 0;
    cadre_failed_page     *p = NULL;
    cadre_failed_list_opts o = {.limit = 5000};

    /* `nope` has no handler: each job fails at its first attempt. */
    REQUIRE(start("2", "default", NULL) == 0);
    for (int i = 0; i < N; i++)
        specs[i] = (cadre_job_spec){"nope", "", 0, NULL};
    REQUIRE_EQ(cadre_dispatch_bulk(client, specs, N, ids), CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, ids, N, 60000, outs), CADRE_OK);
    for (int i = 0; i < N; i++) {
        failed += outs[i].status == CADRE_FAILED;
        cadre_outcome_fini(&outs[i]);
    }
    CHECK_EQ(failed, N);
    CHECK_EQ(qstats("default").failed, N);

    /* The node caps a page at 1,000. */
    REQUIRE_EQ(cadre_failed_list(client, &o, &p), CADRE_OK);
    CHECK_EQ(cadre_failed_page_count(p), 1000);
    cadre_failed_page_free(p);
    CHECK_EQ(run_cli("failed", "list", "--json", NULL), 0);
    {
        size_t k = 0;

        for (const char *s = cli_out; (s = strstr(s, "\"id\":")); s++)
            k++;
        CHECK_EQ(k, N);
    }

    /* Retry all: over the 10,000 a request takes; each fails again. */
    REQUIRE_EQ(cadre_failed_retry_all(client, NULL, &n), CADRE_OK);
    CHECK_EQ(n, N);
    REQUIRE_EQ(cadre_wait(client, ids, N, 60000, outs), CADRE_OK);
    failed = 0;
    for (int i = 0; i < N; i++) {
        failed += outs[i].status == CADRE_FAILED && outs[i].attempts == 1;
        cadre_outcome_fini(&outs[i]);
    }
    CHECK_EQ(failed, N);

    REQUIRE_EQ(cadre_failed_flush(client, &n), CADRE_OK);
    CHECK_EQ(n, N);
    CHECK_EQ(qstats("default").failed, 0);
    stop();
}

TEST(paused_queue_keeps_jobs_until_resumed)
{
    cadre_job_opts pq = {.queue = "pq"};
    cadre_job_id   held[3], other;
    cadre_outcome  o, outs[3];
    char         **names = NULL;
    size_t         n = 0;

    REQUIRE(start("1", "pq,default", NULL) == 0);
    REQUIRE_EQ(cadre_queue_pause(client, "pq"), CADRE_OK);
    REQUIRE_EQ(cadre_queue_pause(client, "pq"), CADRE_OK); /* no error */
    for (int i = 0; i < 3; i++)
        REQUIRE_EQ(cadre_dispatch(client, "echo", "held", 4, &pq, &held[i]),
                   CADRE_OK);
    /* The worker is alive and serves the queue after it. */
    REQUIRE_EQ(run1("echo", "free", NULL, &other, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    cadre_outcome_fini(&o);
    CHECK_EQ(cadre_wait(client, held, 3, 500, outs), CADRE_ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(outs[i].status, CADRE_PENDING);
        cadre_outcome_fini(&outs[i]);
    }
    CHECK_EQ(qstats("pq").ready, 3);
    CHECK_EQ(qstats("pq").reserved, 0);
    REQUIRE_EQ(cadre_queue_paused(client, &names, &n), CADRE_OK);
    REQUIRE_EQ(n, 1);
    CHECK_STR(names[0], "pq");
    cadre_free(names);

    /* Monitor: size, paused, exit codes for cron. */
    CHECK_EQ(run_cli("queue", "monitor", NULL), 0);
    CHECK_CONTAINS(cli_out, "paused");
    CHECK_EQ(run_cli("queue", "monitor", "--max", "3", NULL), 0);
    CHECK_EQ(run_cli("queue", "monitor", "--max", "2", NULL), 1);
    CHECK_CONTAINS(cli_err, "queue pq holds 3 job(s), over --max 2");
    CHECK_EQ(run_cli("queue", "monitor", "--max", "2", "--json", NULL), 1);
    CHECK(cli_out[0] == '{');
    CHECK_CONTAINS(cli_out, "\"name\":\"pq\",\"size\":3");
    CHECK_CONTAINS(cli_out, "\"paused\":true");
    CHECK_CONTAINS(cli_out, "\"over\":[\"pq\"]");
    CHECK_EQ(run_cli("queue", "monitor", "default", "--max", "2", NULL), 0);
    CHECK_EQ(run_cli("queue", "monitor", "--max", "lots", NULL), 2);

    /* The pause survives a restart. */
    stop();
    REQUIRE(start_on(0, "1", "pq,default", NULL) == 0);
    CHECK_EQ(cadre_wait(client, held, 3, 500, outs), CADRE_ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        cadre_outcome_fini(&outs[i]);
    CHECK_EQ(qstats("pq").ready, 3);

    /* Resumed: the jobs run. */
    CHECK_EQ(run_cli("queue", "resume", "pq", NULL), 0);
    CHECK_CONTAINS(cli_out, "resumed queue pq");
    REQUIRE_EQ(cadre_wait(client, held, 3, 15000, outs), CADRE_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(outs[i].status, CADRE_DONE);
        cadre_outcome_fini(&outs[i]);
    }
    REQUIRE_EQ(cadre_queue_paused(client, &names, &n), CADRE_OK);
    CHECK_EQ(n, 0);
    CHECK(names == NULL);
    CHECK_EQ(run_cli("queue", "pause", "pq", NULL), 0);
    CHECK_CONTAINS(cli_out, "paused queue pq");
    CHECK_EQ(run_cli("queue", "monitor", "--max", "0", NULL), 0);
    stop();
}

/* Clear takes the ready and delayed jobs, never the one running. */
TEST(queue_clear_leaves_running_jobs)
{
    char          *more[] = {"--prefetch", "1", NULL};
    cadre_job_opts later = {.delay_ms = 60000};
    cadre_job_opts other = {.queue = "other"};
    cadre_job_id   running, id;
    cadre_outcome  o;
    uint64_t       n = 0;

    REQUIRE(start("1", "default", more) == 0);
    REQUIRE_EQ(cadre_dispatch(client, "sleep", "3000", 4, NULL, &running),
               CADRE_OK);
    for (int i = 0; i < 50 && qstats("default").reserved == 0; i++)
        cd_sleep_ms(20);
    REQUIRE_EQ(qstats("default").reserved, 1);
    for (int i = 0; i < 4; i++)
        REQUIRE_EQ(cadre_dispatch(client, "echo", "x", 1, NULL, &id), CADRE_OK);
    for (int i = 0; i < 2; i++)
        REQUIRE_EQ(cadre_dispatch(client, "echo", "x", 1, &later, &id),
                   CADRE_OK);
    for (int i = 0; i < 2; i++)
        REQUIRE_EQ(cadre_dispatch(client, "echo", "x", 1, &other, &id),
                   CADRE_OK);
    CHECK_EQ(run_cli("queue", "clear", "--queue", "default", NULL), 0);
    CHECK_CONTAINS(cli_out, "cleared 6 job(s) from queue default");
    CHECK_EQ(qstats("default").ready, 0);
    CHECK_EQ(qstats("default").delayed, 0);
    CHECK_EQ(qstats("default").reserved, 1);
    CHECK_EQ(qstats("other").ready, 2);
    REQUIRE_EQ(cadre_wait(client, &running, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    cadre_outcome_fini(&o);
    CHECK_EQ(cadre_wait(client, &id, 1, 0, &o), CADRE_ETIMEDOUT);
    CHECK_EQ(o.status, CADRE_PENDING); /* other's: nobody serves it */
    cadre_outcome_fini(&o);
    REQUIRE_EQ(cadre_queue_clear(client, NULL, &n), CADRE_OK);
    CHECK_EQ(n, 2);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 0, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_UNKNOWN);
    cadre_outcome_fini(&o);
    CHECK_EQ(run_cli("queue", "clear", NULL), 0);
    CHECK_CONTAINS(cli_out, "cleared 0 job(s) from every queue");
    stop();
}

TEST(cli_usage_and_exit_codes)
{
    REQUIRE(start("0", "default", NULL) == 0);
    CHECK_EQ(run_cli("failed", "--help", NULL), 0);
    CHECK_CONTAINS(cli_out, "usage: cadre failed list");
    CHECK_EQ(run_cli("queue", "--help", NULL), 0);
    CHECK_CONTAINS(cli_out, "usage: cadre queue clear");
    CHECK_EQ(run_cli("--help", NULL), 0);
    CHECK_CONTAINS(cli_out, "failed");
    CHECK_EQ(run_cli("failed", NULL), 2);
    CHECK_CONTAINS(cli_err, "missing a command");
    CHECK_EQ(run_cli("failed", "bogus", NULL), 2);
    CHECK_CONTAINS(cli_err, "unknown command 'bogus'");
    CHECK_EQ(run_cli("failed", "prune", NULL), 2);
    CHECK_EQ(run_cli("failed", "prune", "--hours", "x", NULL), 2);
    CHECK_EQ(run_cli("failed", "show", NULL), 2);
    CHECK_EQ(run_cli("failed", "forget", "a", "b", NULL), 2);
    CHECK_EQ(run_cli("failed", "retry", NULL), 2);
    CHECK_EQ(run_cli("failed", "list", "--bogus", NULL), 2);
    CHECK_EQ(run_cli("queue", NULL), 2);
    CHECK_EQ(run_cli("queue", "pause", NULL), 2);
    CHECK_EQ(run_cli("queue", "clear", "extra", NULL), 2);
    CHECK_EQ(run_cli("queue", "frob", NULL), 2);
    /* Long queue names are refused by the node, clearly. */
    {
        char longq[200];

        memset(longq, 'q', sizeof(longq) - 1);
        longq[sizeof(longq) - 1] = '\0';
        CHECK_EQ(run_cli("queue", "pause", longq, NULL), 1);
        CHECK_CONTAINS(cli_err, "longer than");
    }
    stop();
    /* No node: exit 1 with the reason. */
    CHECK_EQ(run_cli("failed", "list", "--request-timeout", "300", NULL), 1);
    CHECK(cli_err[0] != '\0');
    CHECK_EQ(run_cli("queue", "monitor", "--request-timeout", "300", NULL), 1);
}

/* An admin request sealed with the worker key gets CADRE_EAUTH and changes
 * nothing. */
TEST(a_worker_key_cannot_administer)
{
    keys_key            master, wk;
    int                 role;
    struct wire_sender  sender;
    struct wire_keyring ring;
    struct msg          m = {.request_id = 5, .kind = MSG_ADMIN}, rep;
    uint8_t             frame[4096];
    size_t              len = 0;
    nng_socket          s;
    nng_msg            *r = NULL;
    char              **names = NULL;
    size_t              n = 0;
    cd_err              err;

    REQUIRE_EQ(keys_init(), CADRE_OK);
    REQUIRE(start("0", "default", NULL) == 0);
    REQUIRE_EQ(keys_load(node.key_file, &role, &master, NULL), CADRE_OK);
    keys_derive(&master, KEYS_ROLE_WORKER, &wk);
    wire_sender_init(&sender, KEYS_ROLE_WORKER, &wk, 0);
    memset(&ring, 0, sizeof(ring));
    ring.has[KEYS_ROLE_WORKER] = 1;
    ring.key[KEYS_ROLE_WORKER] = wk;
    m.u.admin.op = MSG_ADMIN_QUEUE_PAUSE;
    m.u.admin.queue = "default";
    REQUIRE_EQ(
        wire_seal(&sender, &m, frame, sizeof(frame), WIRE_MAX_DEFAULT, &len),
        CADRE_OK);
    REQUIRE_EQ(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    REQUIRE_EQ(nng_dial(s, node.url, NULL, 0), 0);
    REQUIRE_EQ(nng_send(s, frame, len, 0), 0);
    REQUIRE_EQ(nng_recvmsg(s, &r, 0), 0);
    REQUIRE_EQ(wire_open(&ring, nng_msg_body(r), nng_msg_len(r),
                         WIRE_MAX_DEFAULT, NULL, &rep, &err),
               CADRE_OK);
    nng_msg_free(r);
    nng_close(s);
    CHECK_EQ(rep.kind, MSG_ERROR);
    CHECK_EQ(rep.u.error.code, CADRE_EAUTH);
    CHECK_CONTAINS(rep.u.error.message, "client key");
    msg_free(&rep);
    REQUIRE_EQ(cadre_queue_paused(client, &names, &n), CADRE_OK);
    CHECK_EQ(n, 0);
    cadre_free(names);
    stop();
}

int
main(void)
{
    TAP_RUN(T(failed_list_and_show_carry_the_handlers_error),
            T(binary_payloads_show_as_base64), T(retry_runs_the_job_again),
            T(forget_flush_and_prune), T(many_failed_jobs_page_and_batch),
            T(paused_queue_keeps_jobs_until_resumed),
            T(queue_clear_leaves_running_jobs), T(cli_usage_and_exit_codes),
            T(a_worker_key_cannot_administer));
}
