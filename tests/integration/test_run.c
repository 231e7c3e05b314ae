/* test_run.c: cadre_run / cadre_defer and `cadre run` against a real node
 * with supervised workers (demo plugin, plus exec handlers): submission
 * order, failures kept apart, deadlines that kill handlers, many threads on
 * one client, a 10,000-task run in bounded memory, a worker and the node
 * SIGKILLed mid-run, fail_fast, attaching by run id, and the CLI. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;
static cadre_client    *client;
static const char      *tmp; /* this test's temp dir (see fresh_tmp) */

/* A fresh temp dir for the test; tap_tmpdir removes the previous one, so it
 * is called once per test, here. */
static const char *
fresh_tmp(void)
{
    tmp = tap_tmpdir();
    return tmp;
}

/* Starts a node in the test's temp dir (a fresh one unless fresh_tmp was
 * called): the demo plugin on N workers, plus the extra arguments in more
 * (NULL-terminated, may be NULL). */
static int
start_in(const char *dir, const char *workers, char *const more[])
{
    char             *args[32];
    int               a = 0;
    cadre_client_opts o;
    char              err[256];

    memset(&node, 0, sizeof(node));
    args[a++] = "--workers";
    args[a++] = (char *)workers;
    args[a++] = "--plugin";
    args[a++] = (char *)proc_demo_plugin();
    for (int i = 0; more != NULL && more[i] != NULL; i++)
        args[a++] = more[i];
    args[a] = NULL;
    if (node_startv(&node, dir, NULL, args) != CADRE_OK)
        return -1;
    node_client_opts(&node, &o);
    if (cadre_client_open(&o, &client, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    return 0;
}

static int
start(const char *workers, char *const more[])
{
    return start_in(fresh_tmp(), workers, more);
}

static void
stop(void)
{
    cadre_client_close(client);
    client = NULL;
    CHECK_EQ(node_stop(&node), 0);
}

/* Waits until the node's pool has n workers connected (status). */
static int
wait_workers(uint32_t n)
{
    uint64_t until = cd_mono_ms() + 15000;

    while (cd_mono_ms() < until) {
        cadre_status st;

        if (cadre_status_get(client, &st) == CADRE_OK) {
            uint32_t w = st.workers;

            cadre_status_fini(&st);
            if (w >= n)
                return 0;
        }
        cd_sleep_ms(50);
    }
    fprintf(stderr, "workers did not connect\n");
    return -1;
}

static cadre_task_spec
spec(const char *task, const char *payload)
{
    cadre_task_spec s = {.task = task,
                         .payload = payload,
                         .payload_len = payload ? strlen(payload) : 0};

    return s;
}

static int
result_is(const cadre_run_result *r, const char *text)
{
    return r->status == CADRE_RUN_OK && r->result_len == strlen(text) &&
           (r->result_len == 0 || memcmp(r->result, text, r->result_len) == 0);
}

/* A field of /proc/PID/status in kB (VmRSS, VmHWM); 0 if unreadable. */
static unsigned long
proc_status_kb(pid_t pid, const char *field)
{
    char          path[64], line[256];
    FILE         *f;
    unsigned long kb = 0;
    size_t        len = strlen(field);

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            kb = strtoul(line + len + 1, NULL, 10);
    fclose(f);
    return kb;
}

TEST(results_come_back_in_submission_order)
{
    /* Finishing order differs from submission order on purpose. */
    cadre_task_spec  t[] = {spec("sleep", "400"), spec("echo", "one"),
                            spec("sleep", "150"), spec("echo", "two"),
                            spec("sleep", "300"), spec("sha256", "abc")};
    cadre_run_result r[6];
    cadre_run_opts   o = {.deadline_ms = 10000};

    REQUIRE(start("4", NULL) == 0);
    REQUIRE(wait_workers(4) == 0);
    REQUIRE_EQ(cadre_run(client, t, 6, &o, r), CADRE_OK);
    CHECK(result_is(&r[0], "400") || r[0].status == CADRE_RUN_OK);
    CHECK(result_is(&r[1], "one"));
    CHECK_EQ(r[2].status, CADRE_RUN_OK);
    CHECK(result_is(&r[3], "two"));
    CHECK_EQ(r[4].status, CADRE_RUN_OK);
    CHECK(result_is(&r[5], "ba7816bf8f01cfea414140de5dae2223"
                           "b00361a396177a9cb410ff61f20015ad"));
    for (int i = 0; i < 6; i++)
        CHECK_EQ(r[i].attempts, 1);
    cadre_run_results_free(r, 6);

    /* A run is concurrent: 4 sleeps of 500 ms on 4 workers take about
     * 500 ms, not 2 s. */
    {
        cadre_task_spec  s[4] = {spec("sleep", "500"), spec("sleep", "500"),
                                 spec("sleep", "500"), spec("sleep", "500")};
        cadre_run_result rr[4];
        uint64_t         t0 = cd_mono_ms();

        REQUIRE_EQ(cadre_run(client, s, 4, &o, rr), CADRE_OK);
        CHECK(cd_mono_ms() - t0 < 1500);
        cadre_run_results_free(rr, 4);
    }
    stop();
}

TEST(a_failing_task_does_not_lose_the_others)
{
    cadre_task_spec  t[] = {spec("echo", "a"), spec("fail", "card declined"),
                            spec("echo", "b"), spec("nope", "x")};
    cadre_run_result r[4];

    REQUIRE(start("2", NULL) == 0);
    REQUIRE_EQ(cadre_run(client, t, 4, NULL, r), CADRE_EHANDLER);
    CHECK(result_is(&r[0], "a"));
    CHECK_EQ(r[1].status, CADRE_RUN_ERROR);
    CHECK_STR(r[1].error_type, "DemoError");
    CHECK_STR(r[1].error, "card declined");
    CHECK(result_is(&r[2], "b"));
    CHECK_EQ(r[3].status, CADRE_RUN_ERROR);
    CHECK_STR(r[3].error, "no handler for task 'nope'");
    cadre_run_results_free(r, 4);

    /* Refused runs leave results untouched and say why. */
    {
        cadre_task_spec bad = spec("", "x");

        CHECK_EQ(cadre_run(client, &bad, 1, NULL, r), CADRE_EINVAL);
        CHECK_EQ(cadre_run(client, t, 0, NULL, r), CADRE_EINVAL);
    }
    stop();
}

TEST(deadline_times_out_and_kills_the_handler)
{
    char             pidfile[512], exec_arg[1024], buf[32] = "";
    cadre_task_spec  t[3];
    cadre_run_result r[3];
    cadre_run_opts   o = {.deadline_ms = 1000};
    uint64_t         t0, took;
    FILE            *f;
    long             pid = 0;
    int              gone = 0;

    snprintf(pidfile, sizeof(pidfile), "%s/slow.pid", fresh_tmp());
    snprintf(exec_arg, sizeof(exec_arg),
             "slow=echo $$ > %s; sleep 10; echo done", pidfile);
    {
        char *more[] = {"--exec", exec_arg, NULL};

        REQUIRE(start_in(tmp, "3", more) == 0);
    }
    REQUIRE(wait_workers(3) == 0);
    t[0] = spec("slow", "");
    t[1] = spec("echo", "quick");
    t[2] = spec("sleep", "10000"); /* a plugin: the worker exits 124 */
    t0 = cd_mono_ms();
    CHECK_EQ(cadre_run(client, t, 3, &o, r), CADRE_EHANDLER);
    took = cd_mono_ms() - t0;
    CHECK(took >= 900 && took < 1800);
    CHECK_EQ(r[0].status, CADRE_RUN_TIMED_OUT);
    CHECK(result_is(&r[1], "quick"));
    CHECK_EQ(r[2].status, CADRE_RUN_TIMED_OUT);
    cadre_run_results_free(r, 3);

    /* The exec handler's process group is gone soon after the deadline. */
    f = fopen(pidfile, "r");
    REQUIRE(f != NULL);
    if (fgets(buf, sizeof(buf), f) != NULL)
        pid = strtol(buf, NULL, 10);
    fclose(f);
    REQUIRE(pid > 1);
    /* Within 5 s: on a loaded 2-CPU CI box the reaping of the killed group
     * (the sleep is re-parented when its shell dies) can lag. */
    for (int i = 0; i < 100 && !gone; i++) {
        gone = kill(-(pid_t)pid, 0) != 0 && errno == ESRCH;
        if (!gone)
            cd_sleep_ms(50);
    }
    CHECK(gone);
    stop();
}

struct many_arg {
    int id, runs, failures;
};

static void *
many_thread(void *p)
{
    struct many_arg *a = p;

    for (int k = 0; k < a->runs; k++) {
        char             pl[5][32];
        cadre_task_spec  t[5];
        cadre_run_result r[5];

        for (int i = 0; i < 5; i++) {
            snprintf(pl[i], sizeof(pl[i]), "t%d-r%d-%d", a->id, k, i);
            t[i] = spec("echo", pl[i]);
        }
        if (cadre_run(client, t, 5, NULL, r) != CADRE_OK) {
            a->failures++;
            continue;
        }
        for (int i = 0; i < 5; i++)
            a->failures += !result_is(&r[i], pl[i]);
        cadre_run_results_free(r, 5);
    }
    return NULL;
}

TEST(sixteen_threads_run_on_one_client)
{
    pthread_t       th[16];
    struct many_arg a[16];
    int             failures = 0;

    REQUIRE(start("2", NULL) == 0);
    for (int i = 0; i < 16; i++) {
        a[i] = (struct many_arg){.id = i, .runs = 25};
        REQUIRE(pthread_create(&th[i], NULL, many_thread, &a[i]) == 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(th[i], NULL);
        failures += a[i].failures;
    }
    CHECK_EQ(failures, 0);
    stop();
}

TEST(ten_thousand_tasks_in_bounded_memory)
{
    enum { N = 10000 };
    static cadre_task_spec  t[N];
    static cadre_run_result r[N];
    static char             pl[N][12];
    cadre_run_opts          o = {.deadline_ms = 60000};
    int                     bad = 0;
    unsigned long           hwm_kb;
    uint64_t                t0;

    REQUIRE(start("2", NULL) == 0);
    for (int i = 0; i < N; i++) {
        snprintf(pl[i], sizeof(pl[i]), "%d", i);
        t[i] = spec("echo", pl[i]);
    }
    t0 = cd_mono_ms();
    REQUIRE_EQ(cadre_run(client, t, N, &o, r), CADRE_OK);
    fprintf(stderr, "# 10,000 echo tasks: %llu ms\n",
            (unsigned long long)(cd_mono_ms() - t0));
    for (int i = 0; i < N; i++)
        bad += !result_is(&r[i], pl[i]);
    CHECK_EQ(bad, 0);
    cadre_run_results_free(r, N);
    /* Twice more: kept runs must not make memory grow without bound. */
    for (int k = 0; k < 2; k++) {
        REQUIRE_EQ(cadre_run(client, t, N, &o, r), CADRE_OK);
        cadre_run_results_free(r, N);
    }
    hwm_kb = proc_status_kb(node.pid, "VmHWM");
    fprintf(stderr, "# node peak RSS: %lu kB\n", hwm_kb);
    CHECK(hwm_kb > 0 && hwm_kb < 200 * 1024);
    stop();
}

struct bg_run {
    cadre_task_spec *tasks;
    size_t           n;
    cadre_run_opts   opts;
    cadre_run_result r[8];
    int              rc;
    uint64_t         took_ms;
    char             errmsg[256];
};

static void *
bg_run_thread(void *p)
{
    struct bg_run *b = p;
    uint64_t       t0 = cd_mono_ms();

    b->rc = cadre_run(client, b->tasks, b->n, &b->opts, b->r);
    b->took_ms = cd_mono_ms() - t0;
    snprintf(b->errmsg, sizeof(b->errmsg), "%s", cadre_client_errmsg(client));
    return NULL;
}

TEST(a_worker_killed_mid_run_is_replaced_by_another)
{
    cadre_task_spec t[2] = {spec("sleep", "1500"), spec("sleep", "1500")};
    struct bg_run   b = {.tasks = t, .n = 2, .opts = {.deadline_ms = 15000}};
    pthread_t       th;
    pid_t           pids[4];

    REQUIRE(start("2", NULL) == 0);
    REQUIRE(wait_workers(2) == 0);
    REQUIRE(pthread_create(&th, NULL, bg_run_thread, &b) == 0);
    cd_sleep_ms(500);
    REQUIRE(proc_children(node.pid, pids, 4) == 2);
    REQUIRE(kill(pids[0], SIGKILL) == 0);
    pthread_join(th, NULL);
    CHECK_EQ(b.rc, CADRE_OK);
    CHECK_EQ(b.r[0].status, CADRE_RUN_OK);
    CHECK_EQ(b.r[1].status, CADRE_RUN_OK);
    /* The killed worker's task ran again: well before any 30 s lease. */
    CHECK_EQ(b.r[0].attempts + b.r[1].attempts, 3);
    CHECK(b.took_ms < 5000);
    cadre_run_results_free(b.r, 2);
    stop();
}

TEST(the_node_killed_mid_run_gives_an_error_by_the_deadline)
{
    cadre_task_spec t[2] = {spec("sleep", "10000"), spec("echo", "x")};
    struct bg_run   b = {.tasks = t, .n = 2, .opts = {.deadline_ms = 2000}};
    pthread_t       th;

    REQUIRE(start("2", NULL) == 0);
    REQUIRE(wait_workers(2) == 0);
    REQUIRE(pthread_create(&th, NULL, bg_run_thread, &b) == 0);
    cd_sleep_ms(300);
    REQUIRE(proc_kill(&node.p, SIGKILL) == CADRE_OK);
    pthread_join(th, NULL);
    if (b.rc != CADRE_ETIMEDOUT && b.rc != CADRE_ECLOSED)
        fprintf(stderr, "# rc=%d %s\n", b.rc, b.errmsg);
    CHECK(b.rc == CADRE_ETIMEDOUT || b.rc == CADRE_ECLOSED);
    CHECK(b.took_ms < 2000 + 1500); /* deadline + the client's slack */
    CHECK_EQ(b.r[0].status, CADRE_RUN_TIMED_OUT);
    CHECK_EQ(b.r[1].status, CADRE_RUN_TIMED_OUT);
    cadre_client_close(client);
    client = NULL;
    proc_wait_exit(&node.p, 5000, NULL);
    proc_kill_all();
}

TEST(fail_fast_cancels_the_siblings)
{
    cadre_task_spec  t[] = {spec("sleep", "3000"), spec("fail", "boom"),
                            spec("sleep", "3000"), spec("sleep", "3000")};
    cadre_run_result r[4];
    cadre_run_opts   o = {.deadline_ms = 10000, .fail_fast = 1};
    uint64_t         t0;

    REQUIRE(start("4", NULL) == 0);
    REQUIRE(wait_workers(4) == 0);
    t0 = cd_mono_ms();
    CHECK_EQ(cadre_run(client, t, 4, &o, r), CADRE_EHANDLER);
    CHECK(cd_mono_ms() - t0 < 2500);
    CHECK_EQ(r[0].status, CADRE_RUN_CANCELLED);
    CHECK_EQ(r[1].status, CADRE_RUN_ERROR);
    CHECK_STR(r[1].error, "boom");
    CHECK_EQ(r[2].status, CADRE_RUN_CANCELLED);
    CHECK_EQ(r[3].status, CADRE_RUN_CANCELLED);
    cadre_run_results_free(r, 4);
    stop();
}

TEST(the_same_run_id_attaches_instead_of_running_twice)
{
    char             ledger_path[512];
    cadre_task_spec  t[2];
    cadre_job_id     id;
    struct bg_run    b1, b2;
    pthread_t        th1, th2;
    struct ledger   *l;
    cadre_run_result r3[2];
    cadre_run_opts   o3;

    snprintf(ledger_path, sizeof(ledger_path), "%s/ledger", fresh_tmp());
    t[0] = spec("ledger", ledger_path);
    t[1] = spec("sleep", "500");
    cadre_run_id_new(&id);
    REQUIRE(start_in(tmp, "2", NULL) == 0);
    REQUIRE(wait_workers(2) == 0);
    b1 = (struct bg_run){
        .tasks = t, .n = 2, .opts = {.deadline_ms = 10000, .run_id = &id}};
    b2 = b1;
    REQUIRE(pthread_create(&th1, NULL, bg_run_thread, &b1) == 0);
    REQUIRE(pthread_create(&th2, NULL, bg_run_thread, &b2) == 0);
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    CHECK_EQ(b1.rc, CADRE_OK);
    CHECK_EQ(b2.rc, CADRE_OK);
    CHECK_EQ(b1.r[0].status, CADRE_RUN_OK);
    CHECK_EQ(b2.r[0].status, CADRE_RUN_OK);
    /* Once more after the run was answered: the kept results. */
    o3 = b1.opts;
    CHECK_EQ(cadre_run(client, t, 2, &o3, r3), CADRE_OK);
    CHECK_EQ(r3[1].status, CADRE_RUN_OK);
    REQUIRE_EQ(ledger_read(ledger_path, &l), CADRE_OK);
    CHECK_EQ(ledger_lines(l), 1);
    ledger_free(l);
    /* The same id with another number of tasks is refused. */
    CHECK_EQ(cadre_run(client, t, 1, &o3, r3 + 1), CADRE_EEXISTS);
    cadre_run_results_free(b1.r, 2);
    cadre_run_results_free(b2.r, 2);
    cadre_run_results_free(r3, 2);
    stop();
}

TEST(defer_stores_ordinary_jobs)
{
    cadre_task_spec t[3] = {spec("echo", "d1"), spec("echo", "d2"),
                            spec("fail", "d3")};
    cadre_job_id    ids[3];
    cadre_outcome   out[3];

    REQUIRE(start("2", NULL) == 0);
    REQUIRE_EQ(cadre_defer(client, t, 3, ids), CADRE_OK);
    CHECK_EQ(cadre_wait(client, ids, 3, 10000, out), CADRE_OK);
    CHECK_EQ(out[0].status, CADRE_DONE);
    CHECK_EQ(out[1].status, CADRE_DONE);
    CHECK_EQ(out[2].status, CADRE_FAILED);
    for (int i = 0; i < 3; i++)
        cadre_outcome_fini(&out[i]);
    CHECK_EQ(cadre_defer(client, t, 3, NULL), CADRE_OK);
    stop();
}

TEST(cli_run_prints_outcomes_in_order_with_exit_codes)
{
    char  out[4096], path[512];
    int   code = -1;
    FILE *f;

    REQUIRE(start("3", NULL) == 0);
    REQUIRE(wait_workers(3) == 0);
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "run", "sleep:300",
                            "echo:hi", "fail:boom", "echo:a:b", "--url",
                            node.url, "--key-file", node.key_file, NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_STR(out, "ok slept 300\nok hi\nerror DemoError: boom\nok a:b\n");
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "run", "echo:x", "echo",
                            "--json", "--url", node.url, "--key-file",
                            node.key_file, NULL),
               CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_CONTAINS(out, "[{\"status\":\"ok\",\"attempts\":1,"
                        "\"result\":\"x\"");
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "run", "sleep:5000",
                            "echo:y", "--timeout", "500ms", "--url", node.url,
                            "--key-file", node.key_file, NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_STR(out, "timed out\nok y\n");
    snprintf(path, sizeof(path), "%s/tasks.jsonl", tmp);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("{\"task\":\"echo\",\"payload\":\"l1\"}\n"
          "{\"task\": \"sleep\", \"payload\": 100}\n"
          "{\"task\":\"echo\",\"payload\":\"tab\\there\",\"queue\":\"default\"}"
          "\n",
          f);
    fclose(f);
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "run", "--file", path,
                            "--url", node.url, "--key-file", node.key_file,
                            NULL),
               CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_STR(out, "ok l1\nok slept 100\nok tab\there\n");
    /* Usage errors exit 2. */
    REQUIRE_EQ(
        proc_run_cli(out, sizeof(out), &code, "run", "--url", node.url, NULL),
        CADRE_OK);
    CHECK_EQ(code, 2);
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "run", "echo:x",
                            "--timeout", "soon", NULL),
               CADRE_OK);
    CHECK_EQ(code, 2);
    /* defer prints one job id per task. */
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "defer", "echo:1",
                            "echo:2", "--url", node.url, "--key-file",
                            node.key_file, NULL),
               CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_EQ(strlen(out), 2 * 37);
    stop();
}

int
main(void)
{
    TAP_RUN(T(results_come_back_in_submission_order),
            T(a_failing_task_does_not_lose_the_others),
            T(deadline_times_out_and_kills_the_handler),
            T(sixteen_threads_run_on_one_client),
            T(ten_thousand_tasks_in_bounded_memory),
            T(a_worker_killed_mid_run_is_replaced_by_another),
            T(the_node_killed_mid_run_gives_an_error_by_the_deadline),
            T(fail_fast_cancels_the_siblings),
            T(the_same_run_id_attaches_instead_of_running_twice),
            T(defer_stores_ordinary_jobs),
            T(cli_run_prints_outcomes_in_order_with_exit_codes));
}
