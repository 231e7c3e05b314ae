/* test_sched.c: [schedule "NAME"] sections (keys, defaults, each error with
 * file:line, schedule and key), the catchup and overlap policies in every
 * combination, and slot keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "node/sched.h"
#include "tests/lib/tap.h"

static char conf_path[600];

/* Writes text to a fresh config file and returns its path. */
static const char *
conf(const char *text)
{
    FILE *f;

    snprintf(conf_path, sizeof(conf_path), "%s/sched.conf", tap_tmpdir());
    f = fopen(conf_path, "w");
    if (f == NULL)
        abort();
    fputs(text, f);
    fclose(f);
    return conf_path;
}

/* Loads text; expects failure with code ECONFIG and returns the message. */
static const char *
load_fails(const char *text)
{
    static cd_err     err;
    struct sched_def *defs = (struct sched_def *)1;
    size_t            n = 99;

    cd_err_clear(&err);
    if (sched_load(conf(text), &defs, &n, &err) != CADRE_ECONFIG ||
        err.code != CADRE_ECONFIG || n != 99)
        return "(did not fail as expected)";
    return err.msg;
}

TEST(loads_every_key)
{
    struct sched_def *d = NULL;
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE_EQ(sched_load(conf("[node]\nworkers = 2\n"
                               "; a comment\n"
                               "[schedule \"nightly-report\"]\n"
                               "cron = 30 2 * * mon-fri\n"
                               "task = reports.build\n"
                               "payload = {\"full\": true}\n"
                               "queue = reports\n"
                               "timezone = Europe/Paris\n"
                               "on_one_server = yes\n"
                               "without_overlapping = true\n"
                               "run_in_background = 1\n"
                               "overlap = buffer\n"
                               "catchup = all\n"
                               "catchup_window = 6h\n"
                               "\n[queue \"reports\"]\nsomething = else\n"
                               "[schedule tick]\n"
                               "every = 10s\n"
                               "task = tick\n"),
                          &d, &n, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_STR(d[0].name, "nightly-report");
    CHECK_STR(d[0].cron, "30 2 * * mon-fri");
    CHECK_EQ(d[0].c.min_mask, 1ULL << 30);
    CHECK_STR(d[0].task, "reports.build");
    REQUIRE(d[0].payload != NULL);
    CHECK_STR(d[0].payload, "{\"full\": true}");
    CHECK_EQ(d[0].payload_len, strlen("{\"full\": true}"));
    CHECK_STR(d[0].queue, "reports");
    CHECK_STR(d[0].tz, "Europe/Paris");
    CHECK_EQ(d[0].on_one_server, 1);
    CHECK_EQ(d[0].without_overlapping, 1);
    CHECK_EQ(d[0].run_in_background, 1);
    CHECK_EQ(d[0].overlap, SCHED_OVERLAP_BUFFER);
    CHECK_EQ(d[0].catchup, SCHED_CATCHUP_ALL);
    CHECK_EQ(d[0].catchup_window_s, 6 * 3600);
    CHECK_EQ(d[0].line, 4);
    CHECK_STR(d[1].name, "tick");
    CHECK_STR(d[1].cron, "@every 10s");
    CHECK_EQ(d[1].c.every_s, 10);
    CHECK_EQ(d[1].line, 19);
    sched_defs_free(d, n);
}

TEST(defaults)
{
    struct sched_def *d = NULL;
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE_EQ(sched_load(conf("[schedule a]\ncron = @hourly\ntask = t\n"
                               "[schedule \"b\"]\ncron = @daily\ntask = t\n"
                               "without_overlapping = on\n"
                               "[schedule \"c\"]\ncron = @daily\ntask = t\n"
                               "overlap = skip\n"),
                          &d, &n, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 3);
    CHECK(d[0].payload == NULL);
    CHECK_STR(d[0].queue, "default");
    CHECK_STR(d[0].tz, "");
    CHECK_EQ(d[0].on_one_server, 0);
    CHECK_EQ(d[0].run_in_background, 0);
    CHECK_EQ(d[0].without_overlapping, 0);
    CHECK_EQ(d[0].overlap, SCHED_OVERLAP_ALLOW);
    CHECK_EQ(d[0].catchup, SCHED_CATCHUP_LAST);
    CHECK_EQ(d[0].catchup_window_s, 3600);
    CHECK_EQ(d[1].overlap, SCHED_OVERLAP_SKIP); /* from without_overlapping */
    CHECK_EQ(d[2].without_overlapping, 1);      /* from overlap */
    sched_defs_free(d, n);
}

TEST(payload_continues_on_indented_lines)
{
    struct sched_def *d = NULL;
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE_EQ(sched_load(conf("[schedule p]\ntask = t\npayload = line one\n"
                               "  line two\n\tline three\ncron = @daily\n"),
                          &d, &n, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 1);
    CHECK_STR(d[0].payload, "line one\nline two\nline three");
    CHECK_EQ(d[0].payload_len, strlen(d[0].payload));
    sched_defs_free(d, n);
}

TEST(no_schedules)
{
    struct sched_def *d = (struct sched_def *)1;
    size_t            n = 7;
    cd_err            err = {0};

    REQUIRE_EQ(sched_load(conf("[node]\nworkers = 1\n"), &d, &n, &err),
               CADRE_OK);
    CHECK(d == NULL);
    CHECK_EQ(n, 0);
    REQUIRE_EQ(sched_load(conf(""), &d, &n, &err), CADRE_OK);
    CHECK_EQ(n, 0);
    sched_defs_free(NULL, 0);
}

/* Each error names the file and line, the schedule and the key. */
TEST(errors_name_file_line_schedule_and_key)
{
    const char *m;

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\ncolour = blue\n");
    CHECK_CONTAINS(m, "sched.conf:4");
    CHECK_CONTAINS(m, "schedule 'x'");
    CHECK_CONTAINS(m, "unknown key 'colour'");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\n"
                   "overlap = sometimes\n");
    CHECK_CONTAINS(m, "sched.conf:4: schedule 'x': overlap: 'sometimes' is "
                      "not one of skip, buffer, allow");

    m = load_fails("[schedule x]\ntask = t\ncatchup = never\ncron = @daily\n");
    CHECK_CONTAINS(m, "sched.conf:3");
    CHECK_CONTAINS(m, "catchup: 'never'");

    m = load_fails("[schedule x]\ntask = t\non_one_server = maybe\n");
    CHECK_CONTAINS(m, "sched.conf:3");
    CHECK_CONTAINS(m, "on_one_server: 'maybe' is not a boolean");

    m = load_fails("[schedule x]\ntask = t\ncron = 61 * * * *\n");
    CHECK_CONTAINS(m, "sched.conf:3: schedule 'x': cron");
    CHECK_CONTAINS(m, "minute: '61'");

    m = load_fails("[schedule x]\ntask = t\nevery = 10\n");
    CHECK_CONTAINS(m, "sched.conf:3: schedule 'x': every");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\n"
                   "catchup_window = soon\n");
    CHECK_CONTAINS(m, "sched.conf:4: schedule 'x': catchup_window");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\n"
                   "timezone = Mars/Olympus_Mons\n");
    CHECK_CONTAINS(m, "sched.conf:4: schedule 'x': timezone");
    CHECK_CONTAINS(m, "unknown time zone 'Mars/Olympus_Mons'");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\n"
                   "timezone = ../../etc/passwd\n");
    CHECK_CONTAINS(m, "not a time zone name");

    m = load_fails("[schedule x]\ntask = \ncron = @daily\n");
    CHECK_CONTAINS(m, "sched.conf:2: schedule 'x': task: must not be empty");
}

TEST(errors_of_whole_sections)
{
    const char *m;

    m = load_fails("[node]\nworkers = 1\n\n[schedule \"x\"]\ncron = @daily\n");
    CHECK_CONTAINS(m, "sched.conf:4: schedule 'x': needs a task");

    m = load_fails("[schedule \"empty\"]\n[schedule y]\ntask = t\n"
                   "cron = @daily\n");
    CHECK_CONTAINS(m, "sched.conf:1: schedule 'empty': needs a task");

    m = load_fails("[schedule x]\ntask = t\n");
    CHECK_CONTAINS(m, "sched.conf:1: schedule 'x': needs cron or every");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\nevery = 10s\n");
    CHECK_CONTAINS(m, "sched.conf:4: schedule 'x': every: cron and every");

    /* checked on the calendar, in UTC: no Feb 30 anywhere */
    m = load_fails("[schedule x]\ntask = t\ncron = 0 0 30 2 *\n");
    CHECK_CONTAINS(m, "sched.conf:1: schedule 'x': cron '0 0 30 2 *' never "
                      "fires");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\ncron = @hourly\n");
    CHECK_CONTAINS(m, "sched.conf:4: schedule 'x': cron: is set twice");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\n"
                   "[schedule \"x\"]\ntask = u\ncron = @daily\n");
    CHECK_CONTAINS(m, "sched.conf:4");
    CHECK_CONTAINS(m, "schedule 'x' is already defined at line 1");

    m = load_fails("[schedule x]\ntask = t\ncron = @daily\n"
                   "without_overlapping = true\noverlap = allow\n");
    CHECK_CONTAINS(m, "sched.conf:1: schedule 'x': without_overlapping = "
                      "true contradicts overlap");

    m = load_fails("[schedule]\ntask = t\n");
    CHECK_CONTAINS(m, "sched.conf:1");
    CHECK_CONTAINS(m, "schedule name must be");

    m = load_fails("[schedule \"a@b\"]\ntask = t\n");
    CHECK_CONTAINS(m, "only letters, digits");

    m = load_fails("[schedule x]\ntask = t\n  cron = @daily\n");
    CHECK_CONTAINS(m, "sched.conf:3: schedule 'x': task: only payload may "
                      "continue");

    m = load_fails("[schedule x]\nthis is not ini\n");
    CHECK_CONTAINS(m, "sched.conf:2: syntax error");
}

TEST(long_lines_fail_instead_of_splitting)
{
    static char text[30000];
    const char *m;
    size_t      len;

    len = (size_t)snprintf(text, sizeof(text),
                           "[schedule x]\ntask = t\ncron = @daily\npayload = ");
    memset(text + len, 'a', 25000);
    strcpy(text + len + 25000, "\n");
    m = load_fails(text);
    CHECK_CONTAINS(m, "sched.conf:4");
    CHECK_CONTAINS(m, "line too long");

    /* the longest line that fits, last in the file without a newline */
    {
        struct sched_def *d = NULL;
        size_t            n = 0;
        cd_err            err = {0};
        size_t            max;

        REQUIRE(sscanf(strstr(m, "(max "), "(max %zu", &max) == 1);
        len = (size_t)snprintf(text, sizeof(text),
                               "[schedule x]\ntask = t\ncron = @daily\n");
        memcpy(text + len, "payload = ", 10);
        memset(text + len + 10, 'a', max - 10);
        text[len + max] = '\0';
        REQUIRE_EQ(sched_load(conf(text), &d, &n, &err), CADRE_OK);
        REQUIRE_EQ(n, 1);
        CHECK_EQ(d[0].payload_len, max - 10);
        sched_defs_free(d, n);
    }
}

TEST(missing_file)
{
    struct sched_def *d = NULL;
    size_t            n = 0;
    cd_err            err = {0};

    CHECK_EQ(sched_load("/nonexistent/cadre.conf", &d, &n, &err),
             CADRE_ECONFIG);
    CHECK_CONTAINS(err.msg, "/nonexistent/cadre.conf: cannot open");
    CHECK_EQ(sched_load("/nonexistent/cadre.conf", &d, &n, NULL),
             CADRE_ECONFIG);
}

/* Failing each allocation in turn loses nothing (ASan checks the leaks). */
TEST(allocation_failures)
{
    const char *path = conf("[schedule a]\ncron = @daily\ntask = t\n"
                            "payload = x\n  y\n[schedule b]\nevery = 1m\n"
                            "task = u\npayload = z\n");
    int         ok = 0;

    for (long i = 0; i < 40 && !ok; i++) {
        struct sched_def *d = NULL;
        size_t            n = 0;
        cd_err            err = {0};
        int               rc;

        cd_alloc_fail_after(i);
        rc = sched_load(path, &d, &n, &err);
        cd_alloc_fail_after(-1);
        if (rc == CADRE_OK) {
            CHECK_EQ(n, 2);
            sched_defs_free(d, n);
            ok = 1;
        } else {
            CHECK_EQ(rc, CADRE_ENOMEM);
        }
    }
    CHECK(ok);
}

static struct sched_def
def(const char *cron, int catchup, uint64_t window_s)
{
    struct sched_def d;
    cd_err           err = {0};

    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "s");
    if (cron_parse(cron, &d.c, &err) != CADRE_OK)
        abort();
    d.catchup = catchup;
    d.catchup_window_s = window_s;
    return d;
}

/* A schedule never fired (0) only fires a slot at now itself. */
TEST(due_never_fired)
{
    int64_t s[8];

    for (int p = SCHED_CATCHUP_SKIP; p <= SCHED_CATCHUP_ALL; p++) {
        struct sched_def d = def("@every 10s", p, 3600);

        REQUIRE_EQ(sched_due(&d, 0, 100, s, 8), 1);
        CHECK_EQ(s[0], 100);
        CHECK_EQ(sched_due(&d, 0, 105, s, 8), 0);
    }
}

TEST(due_on_time)
{
    int64_t s[8];

    for (int p = SCHED_CATCHUP_SKIP; p <= SCHED_CATCHUP_ALL; p++) {
        struct sched_def d = def("@every 10s", p, 3600);

        CHECK_EQ(sched_due(&d, 100, 100, s, 8), 0); /* already fired */
        CHECK_EQ(sched_due(&d, 100, 105, s, 8), 0); /* next one not due */
        CHECK_EQ(sched_due(&d, 200, 150, s, 8), 0); /* clock stepped back */
        CHECK_EQ(sched_due(&d, 100, 112, s, 0), 0); /* no room */
        REQUIRE_EQ(sched_due(&d, 100, 112, s, 8), 1);
        CHECK_EQ(s[0], 110);
    }
}

/* Four slots missed (110..140): skip fires the latest as it is only 5 s
 * late, last fires the latest, all fires the four. */
TEST(due_missed_slots_each_policy)
{
    struct sched_def skip = def("@every 10s", SCHED_CATCHUP_SKIP, 3600);
    struct sched_def last = def("@every 10s", SCHED_CATCHUP_LAST, 3600);
    struct sched_def all = def("@every 10s", SCHED_CATCHUP_ALL, 3600);
    int64_t          s[8];

    REQUIRE_EQ(sched_due(&skip, 100, 145, s, 8), 1);
    CHECK_EQ(s[0], 140);
    REQUIRE_EQ(sched_due(&last, 100, 145, s, 8), 1);
    CHECK_EQ(s[0], 140);
    REQUIRE_EQ(sched_due(&all, 100, 145, s, 8), 4);
    CHECK_EQ(s[0], 110);
    CHECK_EQ(s[3], 140);
}

/* A daily slot missed by an outage, found 2 minutes late. */
TEST(due_after_an_outage)
{
    int64_t          day = 86400, s[8];
    int64_t          now = 3 * day + 120;
    struct sched_def skip = def("0 0 * * *", SCHED_CATCHUP_SKIP, 3600);
    struct sched_def last = def("0 0 * * *", SCHED_CATCHUP_LAST, 3600);
    struct sched_def all1 = def("0 0 * * *", SCHED_CATCHUP_ALL, 3600);
    struct sched_def all3 = def("0 0 * * *", SCHED_CATCHUP_ALL, 3 * day);

    CHECK_EQ(sched_due(&skip, day, now, s, 8), 0);
    REQUIRE_EQ(sched_due(&last, day, now, s, 8), 1);
    CHECK_EQ(s[0], 3 * day);
    REQUIRE_EQ(sched_due(&all1, day, now, s, 8), 1);
    CHECK_EQ(s[0], 3 * day);
    REQUIRE_EQ(sched_due(&all3, day, now, s, 8), 2);
    CHECK_EQ(s[0], 2 * day);
    CHECK_EQ(s[1], 3 * day);
    /* a year down: last still finds yesterday's slot quickly */
    REQUIRE_EQ(sched_due(&last, day, 366 * day + 5, s, 8), 1);
    CHECK_EQ(s[0], 366 * day);
}

/* skip's grace: 59 s late fires, 60 s late does not. */
TEST(due_skip_grace)
{
    struct sched_def d = def("@every 10m", SCHED_CATCHUP_SKIP, 3600);
    int64_t          s[8];

    REQUIRE_EQ(sched_due(&d, 600, 1200 + SCHED_SKIP_GRACE_S - 1, s, 8), 1);
    CHECK_EQ(s[0], 1200);
    CHECK_EQ(sched_due(&d, 600, 1200 + SCHED_SKIP_GRACE_S, s, 8), 0);
}

/* all: at most cap at a time, oldest first; the caller advances
 * last_fired and gets the rest. The window bound is inclusive. */
TEST(due_all_pages_and_window)
{
    struct sched_def d = def("@every 10s", SCHED_CATCHUP_ALL, 3600);
    int64_t          s[1000];
    int64_t          last = 100, fired = 0;
    size_t           n;

    while ((n = sched_due(&d, last, 200, s, 4)) > 0) {
        CHECK_EQ(s[0], last + 10);
        fired += (int64_t)n;
        last = s[n - 1];
    }
    CHECK_EQ(fired, 10);
    CHECK_EQ(last, 200);

    n = sched_due(&d, 100, 100 + 7200, s, 1000);
    REQUIRE_EQ(n, 361);
    CHECK_EQ(s[0], 100 + 7200 - 3600);
    CHECK_EQ(s[360], 100 + 7200);
}

TEST(overlap_every_combination)
{
    static const struct {
        int overlap, running, buffered, want;
    } cases[] = {
        {SCHED_OVERLAP_SKIP, 0, 0, SCHED_FIRE},
        {SCHED_OVERLAP_SKIP, 0, 1, SCHED_FIRE},
        {SCHED_OVERLAP_SKIP, 1, 0, SCHED_SKIP},
        {SCHED_OVERLAP_SKIP, 1, 1, SCHED_SKIP},
        {SCHED_OVERLAP_BUFFER, 0, 0, SCHED_FIRE},
        {SCHED_OVERLAP_BUFFER, 0, 1, SCHED_FIRE},
        {SCHED_OVERLAP_BUFFER, 1, 0, SCHED_BUFFER},
        {SCHED_OVERLAP_BUFFER, 1, 1, SCHED_SKIP},
        {SCHED_OVERLAP_ALLOW, 0, 0, SCHED_FIRE},
        {SCHED_OVERLAP_ALLOW, 0, 1, SCHED_FIRE},
        {SCHED_OVERLAP_ALLOW, 1, 0, SCHED_FIRE},
        {SCHED_OVERLAP_ALLOW, 1, 1, SCHED_FIRE},
    };
    struct sched_def d;

    memset(&d, 0, sizeof(d));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        d.overlap = cases[i].overlap;
        CHECK_EQ(sched_overlap_decide(&d, cases[i].running, cases[i].buffered),
                 cases[i].want);
    }
}

TEST(slot_keys)
{
    char key[SCHED_SLOT_KEY_MAX];
    char name[64];

    sched_slot_key("nightly-report", 1700000000, key, sizeof(key));
    CHECK_STR(key, "nightly-report@1700000000");
    sched_slot_key("x", -10, key, sizeof(key));
    CHECK_STR(key, "x@-10");
    memset(name, 'n', 63);
    name[63] = '\0';
    sched_slot_key(name, INT64_MIN, key, sizeof(key));
    CHECK_EQ(strlen(key), 63 + 1 + 20); /* the longest fits */
}

TEST(next_in_the_schedule_zone)
{
    struct sched_def d = def("0 9 * * *", SCHED_CATCHUP_LAST, 3600);
    int64_t          t = 0;

    if (access("/usr/share/zoneinfo/Europe/Paris", R_OK) != 0) {
        printf("# skipped: no Europe/Paris zone (install tzdata)\n");
        return;
    }
    snprintf(d.tz, sizeof(d.tz), "Europe/Paris");
    CHECK_EQ(sched_next(&d, 1705276800, &t), CADRE_OK); /* 2024-01-15 */
    CHECK_EQ(t, 1705276800 + 8 * 3600);                 /* 09:00 CET */
}

int
main(void)
{
    TAP_RUN(
        T(loads_every_key), T(defaults), T(payload_continues_on_indented_lines),
        T(no_schedules), T(errors_name_file_line_schedule_and_key),
        T(errors_of_whole_sections), T(long_lines_fail_instead_of_splitting),
        T(missing_file), T(allocation_failures), T(due_never_fired),
        T(due_on_time), T(due_missed_slots_each_policy), T(due_after_an_outage),
        T(due_skip_grace), T(due_all_pages_and_window),
        T(overlap_every_combination), T(slot_keys),
        T(next_in_the_schedule_zone));
}
