/* test_leases.c: leases, not guesses. A worker alive and running a job
 * extends its lease with heartbeats, so a job longer than retry_after is
 * never handed to a second worker; a worker that stops beating (frozen)
 * loses the job to another after retry_after, and its late result is
 * refused. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

static struct node_proc node;
static cadre_client    *client;

static int
setup(const char *workers)
{
    char             *args[] = {"--workers",
                                (char *)workers,
                                "--plugin",
                                (char *)proc_demo_plugin(),
                                "--retry-after",
                                "1000",
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

/* 2.5 s of work under a 1 s lease, two workers idle beside it: one
 * attempt, never a second reservation. */
TEST(heartbeats_keep_a_long_job_on_its_worker)
{
    cadre_job_opts opts = {.tries = 1};
    cadre_job_id   id;
    cadre_outcome  o;

    REQUIRE(setup("2") == 0);
    REQUIRE_EQ(cadre_dispatch(client, "sleep", "2500", 4, &opts, &id),
               CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 1);
    if (o.status != CADRE_DONE)
        fprintf(stderr, "  error: %s: %s\n", o.error_type, o.error);
    cadre_outcome_fini(&o);
    cadre_client_close(client);
    CHECK_EQ(node_stop(&node), 0);
}

/* A frozen worker (SIGSTOP) sends no heartbeats: after retry_after the job
 * runs on another worker; the frozen one's late result changes nothing. */
TEST(a_frozen_worker_loses_its_job)
{
    cadre_job_opts opts = {.tries = 3};
    cadre_job_id   id;
    cadre_outcome  o;
    struct proc    extra;
    pid_t          frozen;

    REQUIRE(setup("1") == 0);
    REQUIRE_EQ(cadre_dispatch(client, "sleep", "1500", 4, &opts, &id),
               CADRE_OK);
    cd_sleep_ms(300);
    if (proc_children(node.pid, &frozen, 1) != 1)
        frozen = 0;
    REQUIRE(frozen > 0);
    REQUIRE(kill(frozen, SIGSTOP) == 0);
    memset(&extra, 0, sizeof(extra));
    REQUIRE_EQ(proc_start_cadre(&extra, NULL, "worker", "--connect", node.url,
                                "--key-file", node.key_file, "--plugin",
                                proc_demo_plugin(), NULL),
               CADRE_OK);
    REQUIRE_EQ(cadre_wait(client, &id, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 2);
    cadre_outcome_fini(&o);
    kill(frozen, SIGCONT);
    cd_sleep_ms(2000); /* its late result arrives and is refused */
    REQUIRE_EQ(cadre_wait(client, &id, 1, 1000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    CHECK_EQ(o.attempts, 2);
    cadre_outcome_fini(&o);
    proc_stop(&extra);
    cadre_client_close(client);
    CHECK_EQ(node_stop(&node), 0);
}

int
main(void)
{
    TAP_RUN(T(heartbeats_keep_a_long_job_on_its_worker),
            T(a_frozen_worker_loses_its_job));
}
