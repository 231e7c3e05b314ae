/* test_store_held.c: held jobs (store/held.c) and schedule state
 * (store/schedstate.c) against a real LMDB environment: a job added with
 * available_at_ms = STORE_HELD_MS is stored but never promoted or reserved,
 * is listed, survives a reopen with its schedule and slot, and runs once
 * released; ordinary delayed jobs are not listed and cannot be released. A
 * schedule's saved slot and pause survive a reopen. */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "tests/lib/tap.h"

#define T0 1000000u

static store *
held_open(const char *dir)
{
    struct store_config cfg = {.dir = dir, .sync = STORE_SYNC_OFF};
    store              *s = NULL;
    cd_err              err = {0};

    if (store_open(&cfg, &s, &err) != CADRE_OK)
        fprintf(stderr, "store_open: %s\n", err.msg);
    return s;
}

static int
held_add(store *s, unsigned n, uint64_t at_ms)
{
    static uint8_t   payload[] = "p";
    store_txn       *t = NULL;
    cd_err           err = {0};
    int              dup = -1;
    struct store_job j;

    memset(&j, 0, sizeof(j));
    j.id.b[0] = 7;
    j.id.b[15] = (uint8_t)n;
    j.task = "tick";
    j.queue = "default";
    j.payload = payload;
    j.payload_len = 1;
    j.available_at_ms = at_ms;
    j.schedule = "nightly";
    j.slot_s = 1700000000 + n;
    if (store_txn_begin(s, 0, &t, &err) != CADRE_OK)
        return -1;
    if (store_job_add(t, &j, T0, &dup, &err) != CADRE_OK ||
        store_txn_commit(t, &err) != CADRE_OK) {
        store_txn_abort(t);
        return -1;
    }
    return dup;
}

TEST(held_is_listed_never_promoted_then_released)
{
    const char      *dir = tap_tmpdir();
    store           *s = held_open(dir);
    store_txn       *t = NULL;
    cd_err           err = {0};
    cadre_job_id     ids[8], want = {{0}};
    size_t           n = 99, moved = 99, got = 99;
    struct store_job out[2], job;

    REQUIRE(s != NULL);
    CHECK_EQ(held_add(s, 1, STORE_HELD_MS), 0);
    CHECK_EQ(held_add(s, 2, T0 + 10), 0);       /* an ordinary delayed job */
    CHECK_EQ(held_add(s, 1, STORE_HELD_MS), 1); /* the same id again */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_held_list(t, ids, 8, &n, &err), CADRE_OK);
    CHECK_EQ(n, 1);
    want.b[0] = 7;
    want.b[15] = 1;
    CHECK(memcmp(&ids[0], &want, sizeof(want)) == 0);
    CHECK_EQ(store_promote_due(t, UINT64_MAX - 1, 100, &moved, &err), CADRE_OK);
    CHECK_EQ(moved, 1); /* job 2 only */
    CHECK_EQ(store_reserve(t, (const char *[]){"default"}, 1, 2, T0 + 20, 1000,
                           out, &got, &err),
             CADRE_OK);
    CHECK_EQ(got, 1);
    CHECK_EQ(out[0].id.b[15], 2);
    for (size_t i = 0; i < got; i++)
        store_job_fini(&out[i]);
    /* Job 2 is reserved, not held: release refuses it. */
    want.b[15] = 2;
    CHECK_EQ(store_held_release(t, &want, &err), CADRE_EINVAL);
    CHECK_EQ(store_txn_commit(t, &err), CADRE_OK);
    store_close(s);

    s = held_open(dir); /* held across a reopen, schedule and slot kept */
    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_held_list(t, ids, 8, &n, &err), CADRE_OK);
    CHECK_EQ(n, 1);
    REQUIRE(store_job_get(t, &ids[0], &job, &err) == CADRE_OK);
    CHECK_STR(job.schedule, "nightly");
    CHECK_EQ(job.slot_s, 1700000001);
    CHECK_EQ(job.state, STORE_DELAYED);
    store_job_fini(&job);
    CHECK_EQ(store_held_release(t, &ids[0], &err), CADRE_OK);
    CHECK_EQ(store_held_list(t, ids, 8, &n, &err), CADRE_OK);
    CHECK_EQ(n, 0);
    CHECK_EQ(store_reserve(t, (const char *[]){"default"}, 1, 2, T0 + 30, 1000,
                           out, &got, &err),
             CADRE_OK);
    CHECK_EQ(got, 1);
    CHECK_EQ(out[0].id.b[15], 1);
    CHECK_STR(out[0].schedule, "nightly");
    for (size_t i = 0; i < got; i++)
        store_job_fini(&out[i]);
    want.b[15] = 9;
    CHECK_EQ(store_held_release(t, &want, &err), CADRE_ENOTFOUND);
    CHECK_EQ(store_txn_commit(t, &err), CADRE_OK);
    store_close(s);
}

/* A local schedule's state (store/schedstate.c): absent, written, read
 * back after a reopen, overwritten; a name too long is refused. */
TEST(schedule_state_survives_a_reopen)
{
    const char *dir = tap_tmpdir();
    store      *s = held_open(dir);
    store_txn  *t = NULL;
    cd_err      err = {0};
    int64_t     last = 0;
    int         paused = -1, found = -1;
    char        longname[300];

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_sched_get(t, "tick", &last, &paused, &found, &err),
             CADRE_OK);
    CHECK_EQ(found, 0);
    CHECK_EQ(store_sched_put(t, "tick", 1700000005, 1, &err), CADRE_OK);
    CHECK_EQ(store_sched_put(t, "other", -3, 0, &err), CADRE_OK);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_EQ(store_sched_put(t, longname, 1, 0, &err), CADRE_EINVAL);
    CHECK_EQ(store_txn_commit(t, &err), CADRE_OK);
    store_close(s);

    s = held_open(dir);
    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_sched_get(t, "tick", &last, &paused, &found, &err),
             CADRE_OK);
    CHECK(found == 1 && last == 1700000005 && paused == 1);
    CHECK_EQ(store_sched_get(t, "other", &last, &paused, &found, &err),
             CADRE_OK);
    CHECK(found == 1 && last == -3 && paused == 0);
    CHECK_EQ(store_sched_put(t, "tick", 1700000009, 0, &err), CADRE_OK);
    CHECK_EQ(store_sched_get(t, "tick", &last, &paused, &found, &err),
             CADRE_OK);
    CHECK(found == 1 && last == 1700000009 && paused == 0);
    CHECK_EQ(store_txn_commit(t, &err), CADRE_OK);
    store_close(s);
}

int
main(void)
{
    TAP_RUN(T(held_is_listed_never_promoted_then_released),
            T(schedule_state_survives_a_reopen));
}
