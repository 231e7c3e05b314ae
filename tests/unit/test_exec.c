/* test_exec.c: the exec handler kind in isolation: results from stdout,
 * payload on stdin, errors from stderr's tail, job variables, the timeout
 * that kills the whole process group, and no deadlock, zombie or leaked
 * descriptor whatever the child does. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "tests/lib/tap.h"
#include "worker/exec.h"
#include "worker/handler.h"
#include "worker/task.h"

/* One run of cmd as task "t" through the registry, like the worker does. */
struct run {
    cadre_task     t;
    struct msg_job job;
    char           result[256]; /* NUL-terminated copy (cut) */
    uint64_t       ms;
};

/* A scheduled job's name and slot for run_cmd (NULL: not scheduled). */
static const char *run_schedule;
static int64_t     run_slot;

static void
run_cmd(struct run *r, const char *cmd, const void *payload, size_t len,
        uint64_t timeout_ms)
{
    cadre_registry        reg;
    const struct handler *h;
    cd_err                err;
    uint64_t              start;

    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 16; i++)
        r->job.id.b[i] = (uint8_t)(0x10 + i);
    r->job.task = "t";
    r->job.queue = "emails";
    r->job.attempt = 3;
    r->job.payload.data = payload;
    r->job.payload.len = len;
    r->job.lease = 42;
    r->job.timeout_ms = timeout_ms;
    r->job.schedule = run_schedule;
    r->job.slot_s = run_slot;
    handler_registry_init(&reg);
    cd_err_clear(&err);
    if (exec_add(&reg, "t", cmd, &err) != CADRE_OK) {
        tap_fail(__FILE__, __LINE__, "exec_add: %s", err.msg);
        handler_registry_fini(&reg);
        return;
    }
    h = handler_find(&reg, "t");
    task_init(&r->t, &r->job, 0);
    start = cd_mono_ms();
    handler_run(&reg, h, &r->t);
    r->ms = cd_mono_ms() - start;
    if (r->t.result != NULL) {
        size_t n = r->t.result_len < sizeof(r->result) - 1
                       ? r->t.result_len
                       : sizeof(r->result) - 1;

        memcpy(r->result, r->t.result, n);
    }
    handler_registry_fini(&reg);
}

static int
open_fds(void)
{
    DIR           *d = opendir("/proc/self/fd");
    struct dirent *e;
    int            n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* No child of ours is left, zombie or alive. */
static int
no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

TEST(exec_stdout_is_result)
{
    struct run r;

    run_cmd(&r, "printf 'hello world'", NULL, 0, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_EQ(r.t.result_len, 11);
    CHECK_STR(r.result, "hello world");
    task_fini(&r.t);
    CHECK(no_children());
}

TEST(exec_empty_stdout_is_empty_result)
{
    struct run r;

    run_cmd(&r, "true", "ignored", 7, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_EQ(r.t.result_len, 0);
    task_fini(&r.t);
}

TEST(exec_payload_on_stdin)
{
    struct run r;
    size_t     big_len = 3u << 20;
    char      *big = cd_malloc(big_len);

    run_cmd(&r, "tr a-z A-Z", "shout", 5, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(r.result, "SHOUT");
    task_fini(&r.t);

    /* More than any pipe buffer, both ways. */
    REQUIRE(big != NULL);
    memset(big, 'x', big_len);
    run_cmd(&r, "cat", big, big_len, 10000);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_EQ(r.t.result_len, big_len);
    CHECK(r.t.result != NULL && memcmp(r.t.result, big, big_len) == 0);
    task_fini(&r.t);
    run_cmd(&r, "wc -c", big, big_len, 10000);
    CHECK_EQ(atol(r.result), (long)big_len);
    task_fini(&r.t);
    cd_free(big);
}

TEST(exec_nonzero_exit_is_error_with_stderr_tail)
{
    struct run r;

    run_cmd(&r, "echo 'starting' >&2; echo 'card declined  ' >&2; exit 3", NULL,
            0, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(r.t.error_type, "ExecError");
    CHECK_STR(r.t.error, "starting\ncard declined");
    task_fini(&r.t);

    /* Without stderr, the exit status. */
    run_cmd(&r, "echo partial; exit 7", NULL, 0, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(r.t.error_type, "ExecError");
    CHECK_STR(r.t.error, "exit status 7");
    task_fini(&r.t);

    run_cmd(&r, "kill -9 $$", NULL, 0, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(r.t.error, "killed by signal 9");
    task_fini(&r.t);
}

TEST(exec_long_stderr_keeps_its_tail)
{
    struct run r;

    run_cmd(&r,
            "i=0; while [ $i -lt 3000 ]; do echo \"line $i\" >&2; "
            "i=$((i+1)); done; echo 'the real reason' >&2; exit 1",
            NULL, 0, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_ERROR);
    REQUIRE(r.t.error != NULL);
    CHECK(strlen(r.t.error) <= EXEC_TAIL_MAX);
    CHECK(strlen(r.t.error) > EXEC_TAIL_MAX / 2);
    CHECK_CONTAINS(r.t.error, "line 2999\nthe real reason");
    CHECK(strncmp(r.t.error, "line ", 5) == 0); /* starts at a line */
    CHECK(strstr(r.t.error, "line 100\n") == NULL);
    task_fini(&r.t);
}

TEST(exec_job_variables)
{
    struct run r;

    setenv("CADRE_TASK", "stale", 1);
    run_cmd(&r,
            "printf '%s|%s|%s|%s' \"$CADRE_JOB_ID\" \"$CADRE_TASK\" "
            "\"$CADRE_QUEUE\" \"$CADRE_ATTEMPT\"",
            NULL, 0, 0);
    unsetenv("CADRE_TASK");
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(r.result, "10111213-1415-1617-1819-1a1b1c1d1e1f|t|emails|3");
    task_fini(&r.t);
}

/* A scheduled job: CADRE_SCHEDULE and CADRE_SLOT, and the plugin view
 * (cadre_task_schedule); an unscheduled one sees neither, even when the
 * worker's own environment has stale values. */
TEST(exec_schedule_variables)
{
    struct run r;
    int64_t    slot = -1;

    run_schedule = "nightly";
    run_slot = 1700000000;
    run_cmd(&r, "printf '%s|%s' \"$CADRE_SCHEDULE\" \"$CADRE_SLOT\"", NULL, 0,
            0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(r.result, "nightly|1700000000");
    CHECK_STR(cadre_task_schedule(&r.t, &slot), "nightly");
    CHECK_EQ(slot, 1700000000);
    task_fini(&r.t);
    run_schedule = NULL;
    run_slot = 0;
    setenv("CADRE_SCHEDULE", "stale", 1);
    setenv("CADRE_SLOT", "1", 1);
    run_cmd(&r,
            "printf '%s|%s|%s' \"${CADRE_SCHEDULE-unset}\" "
            "\"${CADRE_SLOT-unset}\" \"$CADRE_TASK\"",
            NULL, 0, 0);
    unsetenv("CADRE_SCHEDULE");
    unsetenv("CADRE_SLOT");
    CHECK_STR(r.result, "unset|unset|t");
    slot = -1;
    CHECK(cadre_task_schedule(&r.t, &slot) == NULL);
    CHECK_EQ(slot, 0);
    task_fini(&r.t);
}

TEST(exec_timeout_kills_the_process_group)
{
    struct run r;
    char       path[512];
    FILE      *f;
    long       pid = 0;

    snprintf(path, sizeof(path), "%s/bg.pid", tap_tmpdir());
    {
        char cmd[700];

        /* A descendant in the same group, and a shell that waits. */
        snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > '%s'; wait", path);
        run_cmd(&r, cmd, NULL, 0, 300);
    }
    CHECK_EQ(r.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(r.t.error_type, "TimedOut");
    CHECK_CONTAINS(r.t.error, "300 ms");
    CHECK(r.ms >= 300);
    CHECK(r.ms < 400);
    task_fini(&r.t);
    CHECK(no_children());

    f = fopen(path, "r");
    REQUIRE(f != NULL);
    CHECK(fscanf(f, "%ld", &pid) == 1);
    fclose(f);
    if (pid > 0) {
        char stat_path[64], st[256] = "";
        int  gone = 0;

        /* Killed: gone, or a zombie waiting for init to reap it. */
        for (int i = 0; i < 100 && !gone; i++) {
            FILE *s;

            snprintf(stat_path, sizeof(stat_path), "/proc/%ld/stat", pid);
            s = fopen(stat_path, "r");
            if (s == NULL) {
                gone = 1;
                break;
            }
            if (fgets(st, sizeof(st), s) != NULL && strstr(st, ") Z ") != NULL)
                gone = 1;
            fclose(s);
            if (!gone)
                usleep(10000);
        }
        CHECK(gone);
    }
}

TEST(exec_child_ignoring_stdin_does_not_deadlock)
{
    struct run r;
    size_t     big_len = 8u << 20;
    char      *big = cd_malloc(big_len);

    REQUIRE(big != NULL);
    memset(big, 'y', big_len);
    /* Exits without reading. */
    run_cmd(&r, "echo done", big, big_len, 5000);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(r.result, "done\n");
    CHECK(r.ms < 2000);
    task_fini(&r.t);
    /* Never reads, runs a while, closes stdin first. */
    run_cmd(&r, "exec 0<&-; sleep 0.2; echo late", big, big_len, 5000);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(r.result, "late\n");
    task_fini(&r.t);
    /* Never reads and keeps stdin open: only the timeout ends it. */
    run_cmd(&r, "sleep 30", big, big_len, 200);
    CHECK_STR(r.t.error_type, "TimedOut");
    CHECK(r.ms < 300);
    task_fini(&r.t);
    cd_free(big);
    CHECK(no_children());
}

TEST(exec_background_child_holding_stdout_does_not_hang)
{
    struct run r;

    run_cmd(&r, "sleep 30 & echo hi", NULL, 0, 0);
    CHECK_EQ(r.t.kind, MSG_OUTCOME_DONE);
    CHECK_STR(r.result, "hi\n");
    CHECK(r.ms < 3 * EXEC_LINGER_MS + 200);
    task_fini(&r.t);
    CHECK(no_children());
}

TEST(exec_no_descriptor_leaks)
{
    struct run r;
    int        before = open_fds();

    /* The child sees only 0, 1 and 2. */
    run_cmd(&r, "ls /proc/self/fd | wc -l", NULL, 0, 0);
    /* ls's own directory descriptor makes 4. */
    CHECK_EQ(atoi(r.result), 4);
    task_fini(&r.t);
    for (int i = 0; i < 20; i++) {
        run_cmd(&r, "echo x; echo y >&2; exit 1", "p", 1, 1000);
        task_fini(&r.t);
    }
    run_cmd(&r, "sleep 5", NULL, 0, 50);
    task_fini(&r.t);
    CHECK_EQ(open_fds(), before);
    CHECK(no_children());
}

TEST(exec_stdout_over_the_limit_is_an_error)
{
    struct run r;

    memset(&r, 0, sizeof(r));
    {
        cadre_registry        reg;
        const struct handler *h;
        cd_err                err;

        r.job.task = "t";
        r.job.queue = "default";
        r.job.attempt = 1;
        handler_registry_init(&reg);
        REQUIRE(exec_add(&reg, "t", "head -c 100000 /dev/zero", &err) ==
                CADRE_OK);
        h = handler_find(&reg, "t");
        task_init(&r.t, &r.job, 0);
        r.t.result_max = 1000;
        handler_run(&reg, h, &r.t);
        handler_registry_fini(&reg);
    }
    CHECK_EQ(r.t.kind, MSG_OUTCOME_ERROR);
    CHECK_STR(r.t.error_type, "ResultTooBig");
    CHECK_CONTAINS(r.t.error, "1000 bytes");
    task_fini(&r.t);
}

TEST(exec_run_reports_how_it_ended)
{
    struct exec_result res;
    struct exec_job    job = {
           .id = "i", .task = "t", .queue = "q", .attempt = 1, .out_max = 100};
    cd_err err;

    REQUIRE(exec_run("echo out; echo err >&2; exit 4", &job, &res, &err) ==
            CADRE_OK);
    CHECK(res.exited);
    CHECK_EQ(res.exit_code, 4);
    CHECK_EQ(res.out_len, 4);
    CHECK(res.out != NULL && memcmp(res.out, "out\n", 4) == 0);
    CHECK_STR(res.err_tail, "err");
    CHECK(!res.timed_out);
    exec_result_fini(&res);
}

TEST(exec_bad_registrations)
{
    cadre_registry reg;
    cd_err         err;

    handler_registry_init(&reg);
    CHECK_EQ(exec_add(&reg, "t", "", &err), CADRE_EINVAL);
    CHECK_EQ(exec_add(&reg, "", "true", &err), CADRE_EINVAL);
    CHECK_EQ(exec_add(&reg, "t", "true", &err), CADRE_OK);
    CHECK_EQ(exec_add(&reg, "t", "false", &err), CADRE_EEXISTS);
    CHECK_CONTAINS(err.msg, "'t'");
    CHECK_EQ(reg.n, 1);
    handler_registry_fini(&reg);
}

int
main(void)
{
    TAP_RUN(T(exec_stdout_is_result), T(exec_empty_stdout_is_empty_result),
            T(exec_payload_on_stdin),
            T(exec_nonzero_exit_is_error_with_stderr_tail),
            T(exec_long_stderr_keeps_its_tail), T(exec_job_variables),
            T(exec_schedule_variables), T(exec_timeout_kills_the_process_group),
            T(exec_child_ignoring_stdin_does_not_deadlock),
            T(exec_background_child_holding_stdout_does_not_hang),
            T(exec_no_descriptor_leaks),
            T(exec_stdout_over_the_limit_is_an_error),
            T(exec_run_reports_how_it_ended), T(exec_bad_registrations));
}
