/* test_exec_jobs.c: exec handlers on a real node: the job's metadata in the
 * environment, errors with the stderr tail and retries, the exit code
 * convention (75 release after the ms on stdout, 76 fail now), and a handler
 * killed at its timeout counting as a failed attempt. */
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;
static cadre_client    *client;

static int
setup(void)
{
    char *args[] = {
        "--workers",
        "1",
        "--retry-after",
        "5000",
        "--exec",
        "env=echo $CADRE_TASK $CADRE_QUEUE $CADRE_ATTEMPT",
        "--exec",
        "again=if [ \"$CADRE_ATTEMPT\" -lt 2 ]; then echo 300; exit "
        "75; fi; echo done",
        "--exec",
        "decline=echo 'card declined' >&2; exit 76",
        "--exec",
        "boom=echo \"nope $CADRE_ATTEMPT\" >&2; exit 3",
        "--exec",
        "slow=sleep 5; echo late",
        NULL};
    cadre_client_opts o;
    char              err[256];

    memset(&node, 0, sizeof(node));
    if (node_startv(&node, tap_tmpdir(), NULL, args) != CADRE_OK)
        return -1;
    node_client_opts(&node, &o);
    return cadre_client_open(&o, &client, err, sizeof(err)) == CADRE_OK ? 0
                                                                        : -1;
}

static void
teardown(void)
{
    cadre_client_close(client);
    CHECK_EQ(node_stop(&node), 0);
}

static int
run1(const char *task, uint32_t tries, uint64_t timeout_ms, cadre_outcome *o)
{
    cadre_job_opts opts = {.tries = tries, .timeout_ms = timeout_ms};
    cadre_job_id   id;

    if (cadre_dispatch(client, task, "", 0, &opts, &id) != CADRE_OK)
        return -1;
    return cadre_wait(client, &id, 1, 20000, o);
}

TEST(exec_conventions)
{
    cadre_outcome o;
    uint64_t      t0;

    REQUIRE(setup() == 0);
    REQUIRE_EQ(run1("env", 1, 0, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK(o.result_len >= 13 && memcmp(o.result, "env default 1", 13) == 0);
    cadre_outcome_fini(&o);

    t0 = cd_mono_ms();
    REQUIRE_EQ(run1("again", 3, 0, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 2);
    CHECK(o.result_len >= 4 && memcmp(o.result, "done", 4) == 0);
    CHECK(cd_mono_ms() - t0 >= 300); /* released for 300 ms */
    cadre_outcome_fini(&o);

    REQUIRE_EQ(run1("decline", 5, 0, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 1); /* 76: no more tries */
    CHECK_STR(o.error, "card declined");
    cadre_outcome_fini(&o);

    REQUIRE_EQ(run1("boom", 2, 0, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 2);
    CHECK_STR(o.error_type, "ExecError");
    CHECK_STR(o.error, "nope 2"); /* the last attempt's stderr */
    cadre_outcome_fini(&o);
    teardown();
}

TEST(exec_timeout_kills_and_counts_as_failed)
{
    cadre_outcome o;
    uint64_t      t0;

    REQUIRE(setup() == 0);
    t0 = cd_mono_ms();
    REQUIRE_EQ(run1("slow", 1, 300, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_STR(o.error_type, "TimedOut");
    CHECK(cd_mono_ms() - t0 < 3000); /* not the 5 s of the command */
    cadre_outcome_fini(&o);
    teardown();
}

int
main(void)
{
    TAP_RUN(T(exec_conventions), T(exec_timeout_kills_and_counts_as_failed));
}
