/* test_unique.c: unique jobs. While a job of a task with a unique id is
 * pending, another dispatch of it is not queued: the client is told it was
 * a duplicate and gets the pending job's id. The key is released when the
 * job's final state commits, when it starts (until_processing), or after
 * unique_for_ms; other tasks and other ids are independent. */
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
    char             *args[] = {"--workers", (char *)workers, "--plugin",
                                (char *)proc_demo_plugin(), NULL};
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

/* Dispatches task with unique id uid; returns the duplicate flag. */
static int
unique(const char *task, const char *payload, const char *uid, uint64_t for_ms,
       int until_processing, cadre_job_id *id)
{
    int            dup = -1;
    cadre_job_opts o = {.unique_id = uid,
                        .unique_for_ms = for_ms,
                        .unique_until_processing = until_processing,
                        .duplicate = &dup};

    if (cadre_dispatch(client, task, payload, strlen(payload), &o, id) !=
        CADRE_OK)
        return -1;
    return dup;
}

static uint64_t
ready(void)
{
    cadre_status st;
    uint64_t     n = 0;

    if (cadre_status_get(client, &st) != CADRE_OK)
        return UINT64_MAX;
    for (size_t i = 0; i < st.queues_n; i++)
        n += st.queues[i].ready;
    cadre_status_fini(&st);
    return n;
}

TEST(a_pending_unique_job_is_not_queued_twice)
{
    cadre_job_id a, b, c, d;

    REQUIRE(setup("0") == 0);
    CHECK_EQ(unique("echo", "1", "invoice-7", 0, 0, &a), 0);
    CHECK_EQ(unique("echo", "2", "invoice-7", 0, 0, &b), 1);
    CHECK(memcmp(&a, &b, sizeof(a)) == 0); /* the pending one's id */
    CHECK_EQ(unique("echo", "3", "invoice-8", 0, 0, &c), 0);
    CHECK_EQ(unique("noop", "4", "invoice-7", 0, 0, &d), 0); /* other task */
    CHECK_EQ(ready(), 3);
    teardown();
}

TEST(the_key_is_released_when_the_job_finishes)
{
    cadre_job_id  a, b, c;
    cadre_outcome o;

    REQUIRE(setup("1") == 0);
    CHECK_EQ(unique("sleep", "300", "report", 0, 0, &a), 0);
    CHECK_EQ(unique("sleep", "300", "report", 0, 0, &b), 1);
    REQUIRE_EQ(cadre_wait(client, &a, 1, 10000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    cadre_outcome_fini(&o);
    CHECK_EQ(unique("sleep", "10", "report", 0, 0, &c), 0);
    CHECK(memcmp(&a, &c, sizeof(a)) != 0);
    teardown();
}

TEST(until_processing_releases_when_the_job_starts)
{
    cadre_job_id a, b;

    REQUIRE(setup("1") == 0);
    CHECK_EQ(unique("sleep", "800", "sync", 0, 1, &a), 0);
    cd_sleep_ms(300); /* running now */
    CHECK_EQ(unique("sleep", "10", "sync", 0, 1, &b), 0);
    teardown();
}

TEST(unique_for_lapses)
{
    cadre_job_id a, b;

    REQUIRE(setup("0") == 0);
    CHECK_EQ(unique("echo", "x", "digest", 300, 0, &a), 0);
    CHECK_EQ(unique("echo", "x", "digest", 300, 0, &b), 1);
    cd_sleep_ms(400);
    CHECK_EQ(unique("echo", "x", "digest", 300, 0, &b), 0);
    CHECK_EQ(ready(), 2);
    teardown();
}

int
main(void)
{
    TAP_RUN(T(a_pending_unique_job_is_not_queued_twice),
            T(the_key_is_released_when_the_job_finishes),
            T(until_processing_releases_when_the_job_starts),
            T(unique_for_lapses));
}
