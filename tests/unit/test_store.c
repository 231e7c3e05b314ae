/* test_store.c: store/ against a real LMDB environment in a temp dir: job
 * states and indexes, FIFO across queues, counters through commit, abort and
 * reopen, disk full (a 1 MiB map), allocation faults, schema versions. */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "store/keys.h"
#include "store/store.h"
#include "tests/lib/tap.h"

#define T0 1000000u /* a "now" in ms */

static store *
open_store(const char *dir, size_t map_mb, uint64_t ttl_ms)
{
    struct store_config cfg = {.dir = dir,
                               .map_size_mb = map_mb,
                               .sync = STORE_SYNC_OFF,
                               .result_ttl_ms = ttl_ms};
    store              *s = NULL;
    cd_err              err = {0};

    if (store_open(&cfg, &s, &err) != CADRE_OK) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return NULL;
    }
    return s;
}

static cadre_job_id
mkid(unsigned n)
{
    cadre_job_id id;

    memset(&id, 0, sizeof(id));
    id.b[0] = 0x01;
    cd_put_u32be(id.b + 12, n);
    return id;
}

/* A job borrowing static strings: for store_job_add only (never fini'd). */
static struct store_job
mkjob(unsigned n, const char *queue, uint64_t available_at_ms)
{
    static uint8_t   payload[] = "payload";
    struct store_job j;

    memset(&j, 0, sizeof(j));
    j.id = mkid(n);
    j.task = (char *)"echo";
    j.queue = (char *)queue;
    j.payload = payload;
    j.payload_len = sizeof(payload);
    j.created_at_ms = T0 + n;
    j.available_at_ms = available_at_ms;
    return j;
}

/* A pointer to a temporary id n. */
#define IDP(n) ((cadre_job_id[1]){mkid(n)})

static unsigned
idnum(const struct store_job *j)
{
    return cd_get_u32be(j->id.b + 12);
}

static int
add(store_txn *t, unsigned n, const char *queue, uint64_t available_at_ms)
{
    struct store_job j = mkjob(n, queue, available_at_ms);
    int              dup = -1;
    cd_err           err = {0};
    int              rc = store_job_add(t, &j, T0, &dup, &err);

    if (rc != CADRE_OK)
        fprintf(stderr, "add %u: %s\n", n, err.msg);
    return rc != CADRE_OK ? rc : dup ? -1 : CADRE_OK;
}

static const cadre_queue_stats *
find_stats(const cadre_queue_stats *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0)
            return &v[i];
    }
    return NULL;
}

/* Checks one queue's counters (ready, delayed, reserved, done, failed). */
#define CHECK_COUNTS(s, name, r, d, res, dn, f)                                \
    do {                                                                       \
        cadre_queue_stats       *v_ = NULL;                                    \
        size_t                   n_ = 0;                                       \
        const cadre_queue_stats *q_;                                           \
        REQUIRE(store_stats((s), T0, &v_, &n_, NULL) == CADRE_OK);             \
        q_ = find_stats(v_, n_, (name));                                       \
        CHECK(q_ != NULL);                                                     \
        if (q_ != NULL) {                                                      \
            CHECK_EQ(q_->ready, (r));                                          \
            CHECK_EQ(q_->delayed, (d));                                        \
            CHECK_EQ(q_->reserved, (res));                                     \
            CHECK_EQ(q_->done, (dn));                                          \
            CHECK_EQ(q_->failed, (f));                                         \
        }                                                                      \
        cd_free(v_);                                                           \
    } while (0)

static void
fini_all(struct store_job *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_job_fini(&v[i]);
}

TEST(add_and_duplicate)
{
    store           *s = open_store(tap_tmpdir(), 0, 0);
    store_txn       *t = NULL;
    struct store_job j = mkjob(1, "default", 0), got;
    int              dup = -1;
    cd_err           err = {0};
    char             longq[STORE_QUEUE_MAX + 2];

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_txn_begin(s, 0, &t, &err), CADRE_EBUSY);
    j.origin = (char *)"node-z"; /* ignored: a job dispatched here */
    REQUIRE(store_job_add(t, &j, T0, &dup, &err) == CADRE_OK);
    CHECK_EQ(dup, 0);
    CHECK_EQ(j.state, STORE_READY);
    CHECK(j.seq > 0);
    j.seq = 0;
    CHECK_EQ(store_job_add(t, &j, T0, &dup, &err), CADRE_OK);
    CHECK_EQ(dup, 1);
    /* NULL queue means "default"; a too long name is refused without
     * spoiling the txn. */
    CHECK_EQ(add(t, 2, NULL, 0), CADRE_OK);
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    CHECK_EQ(add(t, 3, longq, 0), CADRE_EINVAL);
    CHECK_EQ(store_pending(s), 2);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, &j.id, &got, &err) == CADRE_OK);
    CHECK_STR(got.task, "echo");
    CHECK_STR(got.queue, "default");
    CHECK_EQ(got.payload_len, j.payload_len);
    CHECK(got.payload && memcmp(got.payload, j.payload, j.payload_len) == 0);
    CHECK_EQ(got.created_at_ms, j.created_at_ms);
    CHECK_EQ(got.state, STORE_READY);
    CHECK(got.origin == NULL);
    store_job_fini(&got);
    CHECK_EQ(got.task, NULL);
    store_job_fini(NULL);
    {
        cadre_job_id none = mkid(99);

        CHECK_EQ(store_job_get(t, &none, &got, &err), CADRE_ENOTFOUND);
        CHECK_CONTAINS(err.msg, "store: get job");
    }
    store_txn_abort(t);
    CHECK_COUNTS(s, "default", 2, 0, 0, 0, 0);
    store_close(s);
}

TEST(reserve_fifo_across_queues)
{
    store            *s = open_store(tap_tmpdir(), 0, 0);
    store_txn        *t = NULL;
    struct store_job  out[8];
    const char *const order[] = {"high", "low", "empty"};
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "low", 0) == CADRE_OK);
    REQUIRE(add(t, 2, "high", 0) == CADRE_OK);
    REQUIRE(add(t, 3, "low", 0) == CADRE_OK);
    REQUIRE(add(t, 4, "high", 0) == CADRE_OK);
    REQUIRE(add(t, 5, "low", 0) == CADRE_OK);
    {
        struct store_job j = mkjob(6, "low", 0);
        int              dup;

        j.opts.retry_after_ms = 777; /* the job's own overrides the node's */
        REQUIRE(store_job_add(t, &j, T0, &dup, &err) == CADRE_OK);
    }
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_ready_in(s, order, 3), 6);
    CHECK_EQ(store_ready_in(s, order, 1), 2);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_reserve(t, order, 3, 3, T0 + 10, 5000, out, &n, &err) ==
            CADRE_OK);
    REQUIRE_EQ(n, 3);
    CHECK_EQ(idnum(&out[0]), 2);
    CHECK_EQ(idnum(&out[1]), 4);
    CHECK_EQ(idnum(&out[2]), 1);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(out[i].state, STORE_RESERVED);
        CHECK_EQ(out[i].attempts, 1);
        CHECK_EQ(out[i].reserved_until_ms, T0 + 10 + 5000);
        CHECK(out[i].lease != 0);
        CHECK_STR(out[i].task, "echo");
    }
    CHECK(out[0].lease != out[1].lease && out[1].lease != out[2].lease);
    CHECK_COUNTS(s, "high", 0, 0, 2, 0, 0);
    CHECK_COUNTS(s, "low", 3, 0, 1, 0, 0);
    fini_all(out, n);
    REQUIRE(store_reserve(t, order, 3, 8, T0 + 20, 5000, out, &n, &err) ==
            CADRE_OK);
    REQUIRE_EQ(n, 3);
    CHECK_EQ(idnum(&out[0]), 3);
    CHECK_EQ(idnum(&out[1]), 5);
    CHECK_EQ(idnum(&out[2]), 6);
    CHECK_EQ(out[2].reserved_until_ms, T0 + 20 + 777);
    fini_all(out, n);
    REQUIRE(store_reserve(t, order, 3, 8, T0 + 20, 5000, out, &n, &err) ==
            CADRE_OK);
    CHECK_EQ(n, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_COUNTS(s, "low", 0, 0, 4, 0, 0);
    CHECK_EQ(store_pending(s), 6);
    store_close(s);
}

TEST(delayed_promotion)
{
    store            *s = open_store(tap_tmpdir(), 0, 0);
    store_txn        *t = NULL;
    struct store_job  out[4];
    const char *const qs[] = {"default"};
    uint64_t          due = 0, deadline = 0;
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default", T0 + 500) == CADRE_OK); /* delayed */
    REQUIRE(add(t, 2, "default", T0) == CADRE_OK);       /* due: ready */
    CHECK_COUNTS(s, "default", 1, 1, 0, 0, 0);
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK_EQ(due, T0 + 500);
    CHECK(deadline == UINT64_MAX);
    REQUIRE(store_promote_due(t, T0 + 499, 10, &n, &err) == CADRE_OK);
    CHECK_EQ(n, 0);
    REQUIRE(store_promote_due(t, T0 + 500, 10, &n, &err) == CADRE_OK);
    CHECK_EQ(n, 1);
    CHECK_COUNTS(s, "default", 2, 0, 0, 0, 0);
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK(due == UINT64_MAX);
    /* Promoted jobs join the back of the queue. */
    REQUIRE(store_reserve(t, qs, 1, 4, T0 + 500, 1000, out, &n, &err) ==
            CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_EQ(idnum(&out[0]), 2);
    CHECK_EQ(idnum(&out[1]), 1);
    fini_all(out, n);

    /* max bounds one call. */
    for (unsigned i = 10; i < 15; i++)
        REQUIRE(add(t, i, "default", T0 + 100 + i) == CADRE_OK);
    REQUIRE(store_promote_due(t, T0 + 1000, 3, &n, &err) == CADRE_OK);
    CHECK_EQ(n, 3);
    REQUIRE(store_promote_due(t, T0 + 1000, 3, &n, &err) == CADRE_OK);
    CHECK_EQ(n, 2);
    CHECK_COUNTS(s, "default", 5, 0, 2, 0, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

TEST(expired_reservations)
{
    store            *s = open_store(tap_tmpdir(), 0, 0);
    store_txn        *t = NULL;
    struct store_job  out[4], exp[4];
    const char *const qs[] = {"default"};
    uint64_t          due, deadline;
    size_t            n = 0, m = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default", 0) == CADRE_OK);
    REQUIRE(add(t, 2, "default", 0) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 100, out, &n, &err) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 1, T0 + 50, 100, out + 1, &n, &err) ==
            CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    fini_all(out, 2);

    /* Read txns may look too. */
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK(due == UINT64_MAX);
    CHECK_EQ(deadline, T0 + 100);
    REQUIRE(store_expired(t, T0 + 99, exp, 4, &m, &err) == CADRE_OK);
    CHECK_EQ(m, 0);
    REQUIRE(store_expired(t, T0 + 100, exp, 4, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    CHECK_EQ(idnum(&exp[0]), 1);
    CHECK_EQ(exp[0].state, STORE_RESERVED);
    fini_all(exp, m);
    REQUIRE(store_expired(t, T0 + 1000, exp, 1, &m, &err) == CADRE_OK);
    CHECK_EQ(m, 1);
    fini_all(exp, m);
    REQUIRE(store_expired(t, T0 + 1000, exp, 4, &m, &err) == CADRE_OK);
    CHECK_EQ(m, 2);
    CHECK_EQ(idnum(&exp[1]), 2);
    fini_all(exp, m);
    store_txn_abort(t);
    store_close(s);
}

TEST(save_moves_between_states)
{
    store            *s = open_store(tap_tmpdir(), 0, 0);
    store_txn        *t = NULL;
    struct store_job  out[4], more[4], exp[4];
    const char *const qs[] = {"default"};
    size_t            n = 0, m = 0;
    uint64_t          due, deadline;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    for (unsigned i = 1; i <= 4; i++)
        REQUIRE(add(t, i, "default", 0) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 2, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 2);

    /* Returned (never started): keeps its seq, so it is first again. */
    out[0].state = STORE_READY;
    out[0].attempts--;
    REQUIRE(store_job_save(t, &out[0], &err) == CADRE_OK);
    /* Retried at the back: seq = 0. */
    out[1].state = STORE_READY;
    out[1].seq = 0;
    REQUIRE(store_job_save(t, &out[1], &err) == CADRE_OK);
    CHECK(out[1].seq != 0);
    CHECK_COUNTS(s, "default", 4, 0, 0, 0, 0);
    REQUIRE(store_reserve(t, qs, 1, 4, T0, 1000, more, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 4);
    CHECK_EQ(idnum(&more[0]), 1);
    CHECK_EQ(idnum(&more[1]), 3);
    CHECK_EQ(idnum(&more[2]), 4);
    CHECK_EQ(idnum(&more[3]), 2);
    CHECK_EQ(more[0].attempts, 1);
    CHECK_EQ(more[3].attempts, 2);
    fini_all(out, n);

    /* Released with a delay, then a lease extension. */
    more[0].state = STORE_DELAYED;
    more[0].available_at_ms = T0 + 300;
    REQUIRE(store_job_save(t, &more[0], &err) == CADRE_OK);
    more[1].reserved_until_ms = T0 + 5000;
    REQUIRE(store_job_save(t, &more[1], &err) == CADRE_OK);
    CHECK_COUNTS(s, "default", 0, 1, 3, 0, 0);
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK_EQ(due, T0 + 300);
    CHECK_EQ(deadline, T0 + 1000);
    REQUIRE(store_expired(t, T0 + 1000, exp, 4, &n, &err) == CADRE_OK);
    CHECK_EQ(n, 2); /* 4 and 2; 3 was extended */
    fini_all(exp, n);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    /* Saving a job that is not pending, or in a final state. */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    {
        struct store_job ghost = mkjob(42, "default", 0);

        ghost.state = STORE_READY;
        CHECK_EQ(store_job_save(t, &ghost, &err), CADRE_ENOTFOUND);
        CHECK_CONTAINS(err.msg, "not pending");
        more[2].state = STORE_DONE;
        CHECK_EQ(store_job_save(t, &more[2], &err), CADRE_EINVAL);
    }
    /* Those errors leave the txn usable. */
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    fini_all(more, m);
    store_close(s);
}

TEST(finish_done_and_failed)
{
    store            *s = open_store(tap_tmpdir(), 0, 0);
    store_txn        *t = NULL;
    struct store_job  out[4], got;
    const char *const qs[] = {"default"};
    size_t            n = 0;
    int               st = -1;
    cd_err            err = {0};
    cadre_job_id      none = mkid(99);

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default", 0) == CADRE_OK);
    REQUIRE(add(t, 2, "default", 0) == CADRE_OK);
    REQUIRE(add(t, 3, "default", T0 + 50000) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 2, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 2);
    REQUIRE(store_outcome(t, &out[0].id, &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_PENDING);

    out[0].state = STORE_DONE;
    out[0].result = cd_memdup("42", 2);
    out[0].result_len = 2;
    REQUIRE(store_job_finish(t, &out[0], T0 + 5, &err) == CADRE_OK);
    CHECK_EQ(out[0].finished_at_ms, T0 + 5);
    out[1].state = STORE_FAILED;
    out[1].error_type = cd_strdup("HandlerError");
    out[1].error = cd_strdup("boom");
    REQUIRE(store_job_finish(t, &out[1], T0 + 6, &err) == CADRE_OK);
    /* A delayed job can be failed too (e.g. retry_until passed). */
    {
        struct store_job d;

        REQUIRE(store_job_get(t, IDP(3), &d, &err) == CADRE_OK);
        d.state = STORE_FAILED;
        REQUIRE(store_job_finish(t, &d, T0 + 7, &err) == CADRE_OK);
        store_job_fini(&d);
    }
    CHECK_EQ(store_job_finish(t, &out[0], T0 + 8, &err), CADRE_ENOTFOUND);
    CHECK_COUNTS(s, "default", 0, 0, 0, 1, 2);
    CHECK_EQ(store_pending(s), 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_outcome(t, &out[0].id, &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    CHECK_EQ(got.state, STORE_DONE);
    CHECK_EQ(got.attempts, 1);
    CHECK_EQ(got.result_len, 2);
    CHECK(got.result != NULL && memcmp(got.result, "42", 2) == 0);
    CHECK_EQ(got.payload, NULL); /* results do not keep the payload */
    store_job_fini(&got);
    REQUIRE(store_outcome(t, &out[1].id, &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    CHECK_STR(got.error_type, "HandlerError");
    CHECK_STR(got.error, "boom");
    CHECK_EQ(got.finished_at_ms, T0 + 6);
    CHECK(got.payload != NULL); /* failed jobs keep it, for retry */
    store_job_fini(&got);
    REQUIRE(store_outcome(t, &none, &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_UNKNOWN);
    CHECK_EQ(store_job_get(t, &out[0].id, &got, &err), CADRE_ENOTFOUND);
    store_txn_abort(t);

    /* Finished ids stay taken. */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(add(t, 1, "default", 0), -1);
    CHECK_EQ(add(t, 2, "default", 0), -1);
    store_txn_abort(t);
    fini_all(out, n);
    store_close(s);
}

TEST(abort_rolls_back_counters)
{
    store             *s = open_store(tap_tmpdir(), 0, 0);
    store_txn         *t = NULL;
    struct store_job   out[4];
    const char *const  qs[] = {"a"};
    cadre_queue_stats *v = NULL;
    size_t             n = 0, vn = 0;
    uint64_t           seq_before;
    cd_err             err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "a", 0) == CADRE_OK);
    REQUIRE(add(t, 2, "a", 0) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 3, "a", 0) == CADRE_OK);
    REQUIRE(add(t, 4, "new", T0 + 10) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, out, &n, &err) == CADRE_OK);
    out[0].state = STORE_DONE;
    REQUIRE(store_job_finish(t, &out[0], T0, &err) == CADRE_OK);
    fini_all(out, n);
    CHECK_COUNTS(s, "a", 2, 0, 0, 1, 0);
    CHECK_COUNTS(s, "new", 0, 1, 0, 0, 0);
    store_txn_abort(t);

    CHECK_COUNTS(s, "a", 2, 0, 0, 0, 0);
    REQUIRE(store_stats(s, T0 + 100, &v, &vn, &err) == CADRE_OK);
    CHECK_EQ(vn, 1); /* "new" is gone with its txn */
    CHECK(find_stats(v, vn, "new") == NULL);
    CHECK_EQ(v[0].oldest_ready_age_ms, 100 - 1); /* job 1, created T0+1 */
    cd_free(v);

    /* The head is job 1 again, and seqs were handed back. */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    {
        struct store_job j = mkjob(5, "a", 0);
        int              dup;

        REQUIRE(store_job_add(t, &j, T0, &dup, &err) == CADRE_OK);
        seq_before = j.seq;
        CHECK_EQ(seq_before, 3);
    }
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 1);
    CHECK_EQ(idnum(&out[0]), 1);
    fini_all(out, n);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_COUNTS(s, "a", 2, 0, 1, 0, 0);
    store_close(s);
}

TEST(reopen_keeps_state_and_counters)
{
    const char        *dir = tap_tmpdir();
    store             *s = open_store(dir, 0, 0);
    store_txn         *t = NULL;
    struct store_job   out[4], got;
    const char *const  qs[] = {"b", "a"};
    cadre_queue_stats *v1 = NULL, *v2 = NULL;
    size_t             n = 0, n1 = 0, n2 = 0;
    int                st;
    uint64_t           lease;
    cd_err             err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    for (unsigned i = 1; i <= 5; i++)
        REQUIRE(add(t, i, i % 2 ? "a" : "b", 0) == CADRE_OK);
    REQUIRE(add(t, 6, "a", T0 + 100) == CADRE_OK);
    REQUIRE(add(t, 7, "c", T0 + 200) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 2, 3, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 3); /* 2, 4 from b; 1 from a */
    lease = out[2].lease;
    out[0].state = STORE_DONE;
    REQUIRE(store_job_finish(t, &out[0], T0, &err) == CADRE_OK);
    out[1].state = STORE_FAILED;
    REQUIRE(store_job_finish(t, &out[1], T0, &err) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    fini_all(out, n);
    REQUIRE(store_stats(s, T0 + 50, &v1, &n1, &err) == CADRE_OK);
    store_close(s);

    s = open_store(dir, 0, 0);
    REQUIRE(s != NULL);
    REQUIRE(store_stats(s, T0 + 50, &v2, &n2, &err) == CADRE_OK);
    REQUIRE_EQ(n1, n2);
    CHECK_EQ(n2, 3);
    CHECK(memcmp(v1, v2, n1 * sizeof(*v1)) == 0);
    CHECK_COUNTS(s, "a", 2, 1, 1, 0, 0);
    CHECK_COUNTS(s, "b", 0, 0, 0, 1, 1);
    CHECK_COUNTS(s, "c", 0, 1, 0, 0, 0);
    CHECK_EQ(store_pending(s), 5);
    cd_free(v1);
    cd_free(v2);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_RESERVED);
    CHECK_EQ(got.lease, lease);
    store_job_fini(&got);
    REQUIRE(store_outcome(t, IDP(2), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    /* Seqs and leases continue after the persisted counter. */
    REQUIRE(store_reserve(t, qs, 2, 1, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 1);
    CHECK_EQ(idnum(&out[0]), 3);
    CHECK(out[0].lease > lease);
    fini_all(out, n);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_COUNTS(s, "b", 0, 0, 0, 1, 1);
    store_close(s);
}

TEST(map_full_is_clean)
{
    const char      *dir = tap_tmpdir();
    store           *s = open_store(dir, 1, 0);
    store_txn       *t = NULL;
    static uint8_t   big[64 * 1024];
    struct store_job got;
    int              rc = CADRE_OK, dup;
    unsigned         i;
    cd_err           err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    for (i = 1; i <= 3; i++)
        REQUIRE(add(t, i, "default", 0) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    for (i = 100; i < 200 && rc == CADRE_OK; i++) {
        struct store_job j = mkjob(i, "default", 0);

        j.payload = big;
        j.payload_len = sizeof(big);
        rc = store_job_add(t, &j, T0, &dup, &err);
    }
    CHECK_EQ(rc, CADRE_EFULL);
    CHECK_CONTAINS(err.msg, "store: add job");
    CHECK_CONTAINS(err.msg, "MDB_MAP_FULL");
    /* The txn is spent: further writes and the commit say so. */
    CHECK_EQ(add(t, 300, "default", 0), CADRE_EFULL);
    err.msg[0] = '\0';
    CHECK_EQ(store_txn_commit(t, &err), CADRE_EFULL);
    CHECK_CONTAINS(err.msg, "store: commit");
    CHECK_CONTAINS(err.msg, "MDB_MAP_FULL");
    CHECK_COUNTS(s, "default", 3, 0, 0, 0, 0);

    /* Earlier jobs intact; smaller writes still go in. */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(2), &got, &err) == CADRE_OK);
    store_job_fini(&got);
    CHECK_EQ(store_job_get(t, IDP(100), &got, &err), CADRE_ENOTFOUND);
    REQUIRE(add(t, 4, "default", 0) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);

    s = open_store(dir, 1, 0);
    REQUIRE(s != NULL);
    CHECK_COUNTS(s, "default", 4, 0, 0, 0, 0);
    store_close(s);
}

TEST(prune_results)
{
    store            *s = open_store(tap_tmpdir(), 0, 1000);
    store_txn        *t = NULL;
    struct store_job  out[4];
    const char *const qs[] = {"default"};
    size_t            n = 0, pruned = 9;
    int               st;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    for (unsigned i = 1; i <= 3; i++)
        REQUIRE(add(t, i, "default", 0) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 3, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 3);
    for (size_t i = 0; i < n; i++) {
        out[i].state = STORE_DONE;
        REQUIRE(store_job_finish(t, &out[i], T0 + i * 100, &err) == CADRE_OK);
    }
    REQUIRE(store_prune_results(t, T0 + 999, 10, &pruned, &err) == CADRE_OK);
    CHECK_EQ(pruned, 0);
    REQUIRE(store_prune_results(t, T0 + 1100, 10, &pruned, &err) == CADRE_OK);
    CHECK_EQ(pruned, 2);
    REQUIRE(store_outcome(t, &out[0].id, &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_UNKNOWN);
    REQUIRE(store_outcome(t, &out[2].id, &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    REQUIRE(store_prune_results(t, T0 + 5000, 10, &pruned, &err) == CADRE_OK);
    CHECK_EQ(pruned, 1);
    /* The totals stay. */
    CHECK_COUNTS(s, "default", 0, 0, 0, 3, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    fini_all(out, n);
    store_close(s);
}

/* Sets meta "schema" to version behind the store's back. */
static int
poke_schema(const char *dir, uint32_t version)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi  dbi;
    uint8_t  vb[4];
    MDB_val  k = {sizeof(KEYS_META_SCHEMA) - 1, KEYS_META_SCHEMA};
    MDB_val  v = {sizeof(vb), vb};
    int      rc;

    cd_put_u32be(vb, version);
    if ((rc = mdb_env_create(&env)) != 0)
        return rc;
    if ((rc = mdb_env_set_maxdbs(env, KEYS_DB_N)) == 0 &&
        (rc = mdb_env_open(env, dir, 0, 0600)) == 0 &&
        (rc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
        if ((rc = mdb_dbi_open(txn, "meta", 0, &dbi)) == 0 &&
            (rc = mdb_put(txn, dbi, &k, &v, 0)) == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
    }
    mdb_env_close(env);
    return rc;
}

TEST(schema_version)
{
    const char         *dir = tap_tmpdir();
    store              *s = open_store(dir, 0, 0);
    store_txn          *t = NULL;
    struct store_config cfg = {.dir = dir};
    cd_err              err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default", 0) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);

    REQUIRE(poke_schema(dir, STORE_SCHEMA_VERSION + 1) == 0);
    s = NULL;
    CHECK_EQ(store_open(&cfg, &s, &err), CADRE_EVERSION);
    CHECK(s == NULL);
    CHECK_CONTAINS(err.msg, "open store");
    CHECK_CONTAINS(err.msg, "newer");

    REQUIRE(poke_schema(dir, STORE_SCHEMA_VERSION) == 0);
    REQUIRE(store_open(&cfg, &s, &err) == CADRE_OK);
    CHECK_COUNTS(s, "default", 1, 0, 0, 0, 0);
    store_close(s);

    /* A directory that does not exist. */
    cfg.dir = "/nonexistent/cadre-store";
    CHECK_EQ(store_open(&cfg, &s, &err), CADRE_EIO);
    CHECK_CONTAINS(err.msg, "open store /nonexistent/cadre-store");
    CHECK_CONTAINS(err.msg, "mdb_env_open");
}

/* Adds job 3 to queue "b", reserves from "a" and "b", finishes the first:
 * what the fault tests run with the Nth allocation failing. */
static int
fault_ops(store_txn *t)
{
    struct store_job  out[4];
    const char *const qs[] = {"a", "b"};
    size_t            n = 0;
    cd_err            err = {0};
    int               rc = add(t, 3, "b", 0);

    if (rc == CADRE_OK)
        rc = store_reserve(t, qs, 2, 4, T0, 1000, out, &n, &err);
    if (rc == CADRE_OK) {
        out[0].state = STORE_DONE;
        rc = store_job_finish(t, &out[0], T0, &err);
        fini_all(out, n);
    }
    return rc;
}

static store *
fault_seed(const char *dir)
{
    store     *s = open_store(dir, 0, 0);
    store_txn *t = NULL;

    if (s == NULL || store_txn_begin(s, 0, &t, NULL) != CADRE_OK ||
        add(t, 1, "a", 0) != CADRE_OK || add(t, 2, "a", 0) != CADRE_OK ||
        store_txn_commit(t, NULL) != CADRE_OK) {
        store_close(s);
        return NULL;
    }
    return s;
}

/* Every allocation in add, reserve and finish fails in turn: each either
 * succeeds or returns CADRE_ENOMEM, and an abort leaves the counters as they
 * were. ASan checks that nothing leaks. */
TEST(allocation_faults_abort)
{
    store     *s = fault_seed(tap_tmpdir());
    store_txn *t = NULL;
    int        passed = 0, faults = 0;

    REQUIRE(s != NULL);
    for (long k = 0; k < 200 && !passed; k++) {
        int rc;

        REQUIRE(store_txn_begin(s, 0, &t, NULL) == CADRE_OK);
        cd_alloc_fail_after(k);
        rc = fault_ops(t);
        cd_alloc_fail_after(-1);
        if (rc == CADRE_OK)
            passed = 1;
        else
            faults++;
        CHECK(rc == CADRE_OK || rc == CADRE_ENOMEM);
        store_txn_abort(t);
        CHECK_COUNTS(s, "a", 2, 0, 0, 0, 0);
        CHECK_EQ(store_pending(s), 2);
    }
    CHECK(passed);
    CHECK(faults > 3);
    store_close(s);
}

/* The same faults, but the caller commits anyway: either the commit refuses
 * (an operation failed half-way) or what it keeps is consistent: the
 * counters equal those rebuilt from disk by a reopen. */
TEST(allocation_faults_commit)
{
    int passed = 0;

    for (long k = 0; k < 200 && !passed; k++) {
        const char        *dir = tap_tmpdir();
        store             *s = fault_seed(dir);
        store_txn         *t = NULL;
        cadre_queue_stats *v1 = NULL, *v2 = NULL;
        size_t             n1 = 0, n2 = 0;
        int                rc;

        REQUIRE(s != NULL);
        REQUIRE(store_txn_begin(s, 0, &t, NULL) == CADRE_OK);
        cd_alloc_fail_after(k);
        rc = fault_ops(t);
        cd_alloc_fail_after(-1);
        passed = rc == CADRE_OK;
        rc = store_txn_commit(t, NULL);
        CHECK(rc == CADRE_OK || rc == CADRE_ENOMEM);
        REQUIRE(store_stats(s, T0, &v1, &n1, NULL) == CADRE_OK);
        store_close(s);
        s = open_store(dir, 0, 0);
        REQUIRE(s != NULL);
        REQUIRE(store_stats(s, T0, &v2, &n2, NULL) == CADRE_OK);
        CHECK_EQ(n1, n2);
        CHECK(n1 == n2 && memcmp(v1, v2, n1 * sizeof(*v1)) == 0);
        cd_free(v1);
        cd_free(v2);
        store_close(s);
    }
    CHECK(passed);
}

int
main(void)
{
    TAP_RUN(T(add_and_duplicate), T(reserve_fifo_across_queues),
            T(delayed_promotion), T(expired_reservations),
            T(save_moves_between_states), T(finish_done_and_failed),
            T(abort_rolls_back_counters), T(reopen_keeps_state_and_counters),
            T(map_full_is_clean), T(prune_results), T(schema_version),
            T(allocation_faults_abort), T(allocation_faults_commit));
}
