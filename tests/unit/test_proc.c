/* test_proc.c: the process harness itself (tests/lib/proc.c), driven with
 * /bin/sh commands and a fake $CADRE_BIN script, plus the ledger reader.
 * Unit tests are built from their own source only, so the harness is
 * compiled in here. */
#include "tests/lib/proc.c"

#include "tests/lib/tap.h"

static char *
test_proc_slurp(const char *path)
{
    static char buf[65536];
    FILE       *f = fopen(path, "r");
    size_t      n = 0;

    buf[0] = '\0';
    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static void
test_proc_write(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

/* true if pid is gone or a zombie (PID 1 may be slow to reap orphans). */
static bool
test_proc_gone(pid_t pid)
{
    char  path[64], stat[256];
    FILE *f;
    char *rp;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return true;
    stat[0] = '\0';
    if (fgets(stat, sizeof(stat), f) == NULL)
        stat[0] = '\0';
    fclose(f);
    rp = strrchr(stat, ')');
    return rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
}

TEST(wait_line_kill_status)
{
    char        log[PATH_MAX], line[64];
    struct proc p = {0};
    char *const argv[] = {
        "sh", "-c", "echo hello; echo world; echo err >&2; sleep 5", NULL};
    int status = 0;

    snprintf(log, sizeof(log), "%s/sh.log", tap_tmpdir());
    REQUIRE_EQ(proc_start(&p, argv, log), CADRE_OK);
    CHECK(p.pid > 0);
    CHECK_STR(p.name, "sh");
    CHECK_EQ(proc_wait_line(&p, "wor", 5000, line, sizeof(line)), CADRE_OK);
    CHECK_STR(line, "world");
    /* "hello" came before and was consumed. */
    CHECK_EQ(proc_wait_line(&p, "hello", 100, line, sizeof(line)),
             CADRE_ETIMEDOUT);
    CHECK_EQ(proc_wait_exit(&p, 50, &status), CADRE_ETIMEDOUT);
    CHECK_EQ(proc_kill(&p, SIGTERM), CADRE_OK);
    CHECK_EQ(proc_wait_exit(&p, 5000, &status), CADRE_OK);
    CHECK_EQ(status, -SIGTERM);
    CHECK(p.exited);
    CHECK_EQ(p.status, -SIGTERM);
    CHECK_EQ(proc_kill(&p, SIGTERM), CADRE_ECLOSED);
    CHECK_CONTAINS(test_proc_slurp(log), "hello\n");
    CHECK_CONTAINS(test_proc_slurp(log), "world\n");
    CHECK_CONTAINS(test_proc_slurp(log), "err\n");
    proc_fini(&p);
}

TEST(exit_code_and_closed)
{
    struct proc p = {0};
    char *const argv[] = {"sh", "-c", "printf 'a\\nlast'; exit 3", NULL};
    char        line[64];
    int         status = 0;

    REQUIRE_EQ(proc_start(&p, argv, NULL), CADRE_OK);
    /* A final line without a newline still counts once output ends. */
    CHECK_EQ(proc_wait_line(&p, "la", 5000, line, sizeof(line)), CADRE_OK);
    CHECK_STR(line, "last");
    CHECK_EQ(proc_wait_line(&p, "never", 5000, NULL, 0), CADRE_ECLOSED);
    CHECK_EQ(proc_wait_exit(&p, 5000, &status), CADRE_OK);
    CHECK_EQ(status, 3);
    /* Reuse of the same struct for a second process. */
    {
        char *const argv2[] = {"sh", "-c", "exit 0", NULL};
        REQUIRE_EQ(proc_start(&p, argv2, NULL), CADRE_OK);
        CHECK_EQ(proc_wait_exit(&p, 5000, &status), CADRE_OK);
        CHECK_EQ(status, 0);
    }
    proc_fini(&p);
    proc_fini(&p); /* twice is fine */
}

TEST(exec_failure_is_127)
{
    struct proc p = {0};
    char *const argv[] = {"/nonexistent/prog", NULL};
    int         status = 0;

    REQUIRE_EQ(proc_start(&p, argv, NULL), CADRE_OK);
    CHECK_EQ(proc_wait_exit(&p, 5000, &status), CADRE_OK);
    CHECK_EQ(status, 127);
    proc_fini(&p);
}

TEST(env_extra_overrides)
{
    struct proc p = {0};
    char *const argv[] = {"sh", "-c", "echo \"v=$PROC_T_A/$PROC_T_B\"", NULL};
    char *const env[] = {"PROC_T_A=new", "PROC_T_B=b", NULL};
    char        line[64];

    setenv("PROC_T_A", "old", 1);
    REQUIRE_EQ(proc_start_env(&p, argv, env, NULL), CADRE_OK);
    CHECK_EQ(proc_wait_line(&p, "v=", 5000, line, sizeof(line)), CADRE_OK);
    CHECK_STR(line, "v=new/b");
    unsetenv("PROC_T_A");
    proc_fini(&p);
}

TEST(stop_escalates_and_kills_group)
{
    struct proc p = {0};
    char *const argv[] = {
        "sh", "-c",
        "trap '' TERM; sleep 30 & echo child $!; while :; do sleep 0.05; done",
        NULL};
    char    line[64];
    pid_t   child;
    int64_t t0;

    REQUIRE_EQ(proc_start(&p, argv, NULL), CADRE_OK);
    REQUIRE_EQ(proc_wait_line(&p, "child ", 5000, line, sizeof(line)),
               CADRE_OK);
    child = (pid_t)atoi(line + 6);
    REQUIRE(child > 0);
    t0 = proc_now_ms();
    CHECK_EQ(proc_stop_grace(&p, 300), -SIGKILL);
    CHECK(proc_now_ms() - t0 >= 300);
    /* The orphaned `sleep 30` of its group is gone as well. */
    for (int i = 0; i < 100 && !test_proc_gone(child); i++)
        proc_sleep_ms(10);
    CHECK(test_proc_gone(child));
    CHECK_EQ(proc_stop(&p), -SIGKILL); /* stopping again: same status */
    proc_fini(&p);
}

TEST(stop_clean_exit_is_zero)
{
    struct proc p = {0};
    char *const argv[] = {"sh", "-c",
                          "trap 'exit 0' TERM; echo up; "
                          "while :; do sleep 0.05; done",
                          NULL};

    REQUIRE_EQ(proc_start(&p, argv, NULL), CADRE_OK);
    REQUIRE_EQ(proc_wait_line(&p, "up", 5000, NULL, 0), CADRE_OK);
    CHECK_EQ(proc_stop(&p), 0);
    proc_fini(&p);
}

TEST(grandchild_holding_stdout_does_not_hang)
{
    struct proc p = {0};
    char *const argv[] = {"sh", "-c", "sleep 30 & echo bg; exit 0", NULL};
    int         status = -1;
    int64_t     t0 = proc_now_ms();

    REQUIRE_EQ(proc_start(&p, argv, NULL), CADRE_OK);
    CHECK_EQ(proc_wait_line(&p, "bg", 5000, NULL, 0), CADRE_OK);
    /* stdout stays open in `sleep 30`, yet the exit is seen. */
    CHECK_EQ(proc_wait_line(&p, "nothing", 5000, NULL, 0), CADRE_ECLOSED);
    CHECK_EQ(proc_wait_exit(&p, 5000, &status), CADRE_OK);
    CHECK_EQ(status, 0);
    CHECK(proc_now_ms() - t0 < 3000);
    proc_fini(&p); /* kills the `sleep 30` left in the group */
}

TEST(kill_all)
{
    struct proc a = {0}, b = {0};
    char *const argv[] = {"sleep", "30", NULL};
    int         status = 0;

    REQUIRE_EQ(proc_start(&a, argv, NULL), CADRE_OK);
    REQUIRE_EQ(proc_start(&b, argv, NULL), CADRE_OK);
    proc_kill_all();
    CHECK_EQ(proc_wait_exit(&a, 0, &status), CADRE_OK);
    CHECK_EQ(status, -SIGKILL);
    CHECK_EQ(proc_wait_exit(&b, 0, &status), CADRE_OK);
    CHECK_EQ(status, -SIGKILL);
    proc_fini(&a);
    proc_fini(&b);
}

TEST(run_captures_output)
{
    char           out[64], err[64];
    struct proc_io io = {
        .out = out, .out_len = sizeof(out), .err = err, .err_len = sizeof(err)};
    char *const argv[] = {"sh", "-c", "echo out; echo err >&2; exit 4", NULL};
    int         code = -1;

    CHECK_EQ(proc_run(argv, &io, &code), CADRE_OK);
    CHECK_EQ(code, 4);
    CHECK_STR(out, "out\n");
    CHECK_STR(err, "err\n");
}

TEST(run_stdin_and_truncation)
{
    char           out[8];
    static char    big[300000];
    struct proc_io io = {.out = out, .out_len = sizeof(out)};
    char *const    cat[] = {"cat", NULL};
    int            code = -1;

    /* More input than a pipe holds, echoed back and truncated. */
    memset(big, 'x', sizeof(big));
    io.in = big;
    io.in_len = sizeof(big);
    CHECK_EQ(proc_run(cat, &io, &code), CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_STR(out, "xxxxxxx");
    /* A child that does not read its stdin does not stop the run. */
    {
        char *const argv[] = {"sh", "-c", "exec 0<&-; echo ok", NULL};
        CHECK_EQ(proc_run(argv, &io, &code), CADRE_OK);
        CHECK_EQ(code, 0);
        CHECK_STR(out, "ok\n");
    }
}

TEST(run_timeout)
{
    struct proc_io io = {.timeout_ms = 200};
    char *const    argv[] = {"sleep", "5", NULL};
    int            code = 0;
    int64_t        t0 = proc_now_ms();

    CHECK_EQ(proc_run(argv, &io, &code), CADRE_ETIMEDOUT);
    CHECK_EQ(code, -SIGKILL);
    CHECK(proc_now_ms() - t0 < 3000);
}

static const char test_proc_fake_cadre[] =
    "#!/bin/sh\n"
    "if [ \"$1\" = node ]; then\n"
    "  [ -n \"$FAKE_FAIL\" ] && { echo 'cannot open store' >&2; exit 1; }\n"
    "  echo \"starting\"\n"
    "  echo \"cadre node ready api=$5 data=$3 pid=$$ extra=$6\"\n"
    "  exec sleep 30\n"
    "fi\n"
    "echo \"args: $*\"\n"
    "echo \"to stderr\" >&2\n"
    "exit 5\n";

TEST(node_start_with_fake_cadre)
{
    const char       *tmp = tap_tmpdir();
    char              bin[PATH_MAX], data[PATH_MAX], out[128], err[128];
    struct node_proc  n = {0};
    cadre_client_opts o;
    int               code = -1;

    snprintf(bin, sizeof(bin), "%s/fake-cadre", tmp);
    snprintf(data, sizeof(data), "%s/data", tmp);
    test_proc_write(bin, test_proc_fake_cadre, 0755);
    setenv("CADRE_BIN", bin, 1);

    REQUIRE_EQ(node_start(&n, data, "--workers", NULL), CADRE_OK);
    CHECK_STR(n.url, "tcp://127.0.0.1:0");
    CHECK_EQ(n.pid, n.p.pid);
    CHECK_CONTAINS(n.key_file, "/data/cluster.key");
    node_client_opts(&n, &o);
    CHECK_STR(o.url, n.url);
    CHECK_STR(o.key_file, n.key_file);
    CHECK_EQ(o.timeout_ms, 0);
    CHECK_EQ(node_stop(&n), -SIGTERM); /* `sleep` dies of the TERM */
    CHECK_CONTAINS(test_proc_slurp(n.p.log_path), "extra=--workers");
    proc_fini(&n.p);

    /* A node that fails before readiness: ECLOSED, log shown. */
    {
        char *const env[] = {"FAKE_FAIL=1", NULL};
        CHECK_EQ(node_startv(&n, data, env, NULL), CADRE_ECLOSED);
        CHECK(n.p.exited);
        CHECK_EQ(n.p.status, 1);
        CHECK_CONTAINS(test_proc_slurp(n.p.log_path), "cannot open store");
        proc_fini(&n.p);
    }

    CHECK_EQ(proc_run_cli(out, sizeof(out), &code, "status", "--json", NULL),
             CADRE_OK);
    CHECK_EQ(code, 5);
    CHECK_STR(out, "args: status --json\n");
    {
        struct proc_io io = {.out = out,
                             .out_len = sizeof(out),
                             .err = err,
                             .err_len = sizeof(err)};
        CHECK_EQ(proc_run_cli_io(&io, &code, "dispatch", NULL), CADRE_OK);
        CHECK_STR(out, "args: dispatch\n");
        CHECK_STR(err, "to stderr\n");
    }
    unsetenv("CADRE_BIN");
    CHECK_EQ(proc_run_cli(out, sizeof(out), &code, "status", NULL),
             CADRE_EINVAL);
}

TEST(free_port)
{
    int port = free_tcp_port();

    CHECK(port > 0 && port < 65536);
}

TEST(uuid_roundtrip)
{
    cadre_job_id id;
    char         buf[37];
    const char  *u = "01890a5d-ac96-774b-bcce-b302099a8057";

    REQUIRE_EQ(proc_uuid_parse(u, &id), CADRE_OK);
    proc_uuid_format(&id, buf);
    CHECK_STR(buf, u);
    CHECK_EQ(id.b[0], 0x01);
    CHECK_EQ(id.b[15], 0x57);
    CHECK_EQ(proc_uuid_parse("01890a5d-ac96-774b-bcce-b302099a805", &id),
             CADRE_EINVAL);
    CHECK_EQ(proc_uuid_parse("01890a5d+ac96-774b-bcce-b302099a8057", &id),
             CADRE_EINVAL);
    CHECK_EQ(proc_uuid_parse("01890a5d-ac96-774b-bcce-b302099a805g", &id),
             CADRE_EINVAL);
}

TEST(ledger_counts)
{
    const char         *tmp = tap_tmpdir();
    char                path[PATH_MAX];
    struct ledger      *l = NULL;
    struct ledger_check c;
    cadre_job_id        acked[4];
    const char         *ids[4] = {"01890a5d-ac96-774b-bcce-b30209900001",
                                  "01890a5d-ac96-774b-bcce-b30209900002",
                                  "01890a5d-ac96-774b-bcce-b30209900003",
                                  "01890a5d-ac96-774b-bcce-b30209900002"};

    snprintf(path, sizeof(path), "%s/ledger", tmp);
    /* Missing file: an empty ledger. */
    REQUIRE_EQ(ledger_read(path, &l), CADRE_OK);
    CHECK_EQ(ledger_lines(l), 0);
    ledger_free(l);

    test_proc_write(path,
                    "01890a5d-ac96-774b-bcce-b30209900001 1 100 1700000000000\n"
                    "01890a5d-ac96-774b-bcce-b30209900002 1 100 1700000000001\n"
                    "01890a5d-ac96-774b-bcce-b30209900002 2 101 1700000000002\n"
                    "01890a5d-ac96-774b-bcce-b30209900002 3 n1 102 1700000003\n"
                    "01890a5d-ac96-774b-bcce-b30209999999 1 100 1700000000004\n"
                    "garbage line\n"
                    "01890a5d-ac96-774b-bcce-b30209900001 x 100 1700000000005\n"
                    "01890a5d-ac96-774b-bcce-b30209900003 1 1",
                    0644);
    REQUIRE_EQ(ledger_read(path, &l), CADRE_OK);
    CHECK_EQ(ledger_lines(l), 5);
    CHECK_EQ(ledger_jobs(l), 3);
    CHECK_EQ(ledger_bad_lines(l), 3);
    CHECK_EQ(ledger_count_str(l, ids[0]), 1);
    CHECK_EQ(ledger_count_str(l, ids[1]), 3);
    CHECK_EQ(ledger_count_str(l, ids[2]), 0); /* torn, not counted */
    CHECK_EQ(ledger_count_str(l, "nope"), 0);
    for (int i = 0; i < 4; i++)
        REQUIRE_EQ(proc_uuid_parse(ids[i], &acked[i]), CADRE_OK);
    CHECK_EQ(ledger_max_attempt(l, &acked[1]), 3);
    ledger_check(l, acked, 4, &c);
    CHECK_EQ(c.acked, 3);
    CHECK_EQ(c.done, 2);
    CHECK_EQ(c.missing, 1);
    CHECK_EQ(c.unexpected, 1);
    CHECK_EQ(c.duplicates, 2);
    CHECK_EQ(c.dup_jobs, 1);
    ledger_check_print("ledger_counts", &c);
    ledger_free(l);
    ledger_free(NULL);
}

TEST(ledger_many)
{
    const char         *tmp = tap_tmpdir();
    char                path[PATH_MAX];
    struct ledger      *l = NULL;
    struct ledger_check c;
    FILE               *f;
    enum { N = 50000 };
    static cadre_job_id acked[N];

    snprintf(path, sizeof(path), "%s/ledger", tmp);
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    for (int i = 0; i < N; i++) {
        char buf[37];
        memset(&acked[i], 0, sizeof(acked[i]));
        acked[i].b[0] = 0x01; /* time-ordered prefix, like UUIDv7 */
        acked[i].b[12] = (uint8_t)(i >> 24);
        acked[i].b[13] = (uint8_t)(i >> 16);
        acked[i].b[14] = (uint8_t)(i >> 8);
        acked[i].b[15] = (uint8_t)i;
        proc_uuid_format(&acked[i], buf);
        if (i % 10 != 0) /* every tenth missing */
            fprintf(f, "%s 1 42 1700000000000\n", buf);
        if (i % 100 == 1) /* and some twice */
            fprintf(f, "%s 2 43 1700000000001\n", buf);
    }
    fclose(f);
    REQUIRE_EQ(ledger_read(path, &l), CADRE_OK);
    ledger_check(l, acked, N, &c);
    CHECK_EQ(c.acked, N);
    CHECK_EQ(c.missing, N / 10);
    CHECK_EQ(c.done, N - N / 10);
    CHECK_EQ(c.duplicates, N / 100);
    CHECK_EQ(c.unexpected, 0);
    ledger_free(l);
}

int
main(void)
{
    TAP_RUN(T(wait_line_kill_status), T(exit_code_and_closed),
            T(exec_failure_is_127), T(env_extra_overrides),
            T(stop_escalates_and_kills_group), T(stop_clean_exit_is_zero),
            T(grandchild_holding_stdout_does_not_hang), T(kill_all),
            T(run_captures_output), T(run_stdin_and_truncation), T(run_timeout),
            T(node_start_with_fake_cadre), T(free_port), T(uuid_roundtrip),
            T(ledger_counts), T(ledger_many));
}
