/* test_store_failed.c: store/failed.c and store/control.c against a real
 * LMDB environment: listing failed jobs in bounded pages, show, retry (back
 * to the queue as a fresh attempt), forget, sweeps (retry all, flush,
 * prune), queue clear in bounded steps, pause and resume; counters through
 * commit, abort and reopen. */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "store/store.h"
#include "tests/lib/tap.h"

#define T0 1000000u /* a "now" in ms */

static char test_dir[256]; /* this test's store; tap_tmpdir() makes a new one */

static const char *
fresh_dir(void)
{
    snprintf(test_dir, sizeof(test_dir), "%s", tap_tmpdir());
    return test_dir;
}

static store *
open_store(const char *dir)
{
    struct store_config cfg = {.dir = dir, .sync = STORE_SYNC_OFF};
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

#define IDP(n) ((cadre_job_id[1]){mkid(n)})

static unsigned
idnum(const cadre_job_id *id)
{
    return cd_get_u32be(id->b + 12);
}

/* Adds job n (ready, or delayed until available_at_ms) to queue. */
static int
add(store_txn *t, unsigned n, const char *queue, uint64_t available_at_ms)
{
    static uint8_t   payload[] = "payload";
    struct store_job j;
    int              dup = -1;
    cd_err           err = {0};
    uint32_t         backoff[] = {1, 5};
    int              rc;

    memset(&j, 0, sizeof(j));
    j.id = mkid(n);
    j.task = (char *)"echo";
    j.queue = (char *)queue;
    j.payload = payload;
    j.payload_len = sizeof(payload);
    j.opts.tries = 3;
    j.opts.backoff_s = backoff;
    j.opts.backoff_n = 2;
    j.created_at_ms = T0 + n;
    j.available_at_ms = available_at_ms;
    rc = store_job_add(t, &j, T0, &dup, &err);
    if (rc != CADRE_OK)
        fprintf(stderr, "add %u: %s\n", n, err.msg);
    return rc != CADRE_OK ? rc : dup ? -1 : CADRE_OK;
}

/* Adds job n to queue, reserves it and fails it at failed_at_ms with the
 * error "boom <n>". */
static int
add_failed(store_txn *t, unsigned n, const char *queue, uint64_t failed_at_ms)
{
    const char *const qs[] = {queue};
    struct store_job  out[1];
    size_t            got = 0;
    char              msg[32];
    cd_err            err = {0};
    int               rc = add(t, n, queue, 0);

    if (rc != CADRE_OK)
        return rc;
    rc = store_reserve(t, qs, 1, 1, T0, 1000, out, &got, &err);
    if (rc != CADRE_OK || got != 1 || idnum(&out[0].id) != n) {
        fprintf(stderr, "reserve %u: %s\n", n, err.msg);
        if (got == 1)
            store_job_fini(&out[0]);
        return CADRE_EINTERNAL;
    }
    snprintf(msg, sizeof(msg), "boom %u", n);
    out[0].error_type = cd_strdup("DemoError");
    out[0].error = cd_strdup(msg);
    out[0].state = STORE_FAILED;
    out[0].finished_at_ms = failed_at_ms;
    rc = store_job_finish(t, &out[0], failed_at_ms, &err);
    if (rc != CADRE_OK)
        fprintf(stderr, "finish %u: %s\n", n, err.msg);
    store_job_fini(&out[0]);
    return rc;
}

/* One queue's counters; absent queues read as all zero. */
static cadre_queue_stats
stats_of(store *s, const char *name)
{
    cadre_queue_stats *v = NULL, out;
    size_t             n = 0;

    memset(&out, 0, sizeof(out));
    if (store_stats(s, T0 + 100000, &v, &n, NULL) != CADRE_OK)
        return out;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            out = v[i];
    cd_free(v);
    return out;
}

static int
has_queue(store *s, const char *name)
{
    cadre_queue_stats *v = NULL;
    size_t             n = 0;
    int                found = 0;

    if (store_stats(s, T0, &v, &n, NULL) != CADRE_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(v[i].name, name) == 0;
    cd_free(v);
    return found;
}

static void
fini_all(struct store_job *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_job_fini(&v[i]);
}

/* Five failed jobs: 1, 3, 5 in "a", 2, 4 in "b", failed at T0 + 10 * n. */
static store *
five_failed(void)
{
    store     *s = open_store(fresh_dir());
    store_txn *t = NULL;
    cd_err     err = {0};

    if (s == NULL || store_txn_begin(s, 0, &t, &err) != CADRE_OK)
        return NULL;
    for (unsigned n = 1; n <= 5; n++) {
        if (add_failed(t, n, n % 2 ? "a" : "b", T0 + 10 * n) != CADRE_OK) {
            store_txn_abort(t);
            store_close(s);
            return NULL;
        }
    }
    if (store_txn_commit(t, &err) != CADRE_OK) {
        store_close(s);
        return NULL;
    }
    return s;
}

TEST(list_pages_in_id_order)
{
    store                   *s = five_failed();
    store_txn               *t = NULL;
    struct store_job         out[8];
    struct store_failed_scan sc = {.max = 8, .scan_max = 100};
    cadre_job_id             last;
    size_t                   n = 0;
    int                      more = -1;
    cd_err                   err = {0};

    REQUIRE(s != NULL);
    CHECK_EQ(stats_of(s, "a").failed, 3);
    CHECK_EQ(stats_of(s, "b").failed, 2);
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 5);
    CHECK_EQ(more, 0);
    for (size_t i = 0; i < n; i++) {
        char want[32];

        snprintf(want, sizeof(want), "boom %zu", i + 1);
        CHECK_EQ(idnum(&out[i].id), i + 1);
        CHECK_EQ(out[i].state, STORE_FAILED);
        CHECK_EQ(out[i].attempts, 1);
        CHECK_STR(out[i].error_type, "DemoError");
        CHECK_STR(out[i].error, want);
        CHECK_EQ(out[i].finished_at_ms, T0 + 10 * (i + 1));
        CHECK_STR(out[i].queue, (i + 1) % 2 ? "a" : "b");
        /* Listings carry the payload's size, not the payload. */
        CHECK(out[i].payload == NULL);
        CHECK_EQ(out[i].payload_len, sizeof("payload"));
    }
    fini_all(out, n);

    /* Pages of two, following the cursor. */
    sc.max = 2;
    REQUIRE_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
               CADRE_OK);
    CHECK_EQ(n, 2);
    CHECK_EQ(more, 1);
    CHECK_EQ(idnum(&last), 2);
    fini_all(out, n);
    sc.after = &last;
    REQUIRE_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
               CADRE_OK);
    CHECK_EQ(n, 2);
    CHECK_EQ(idnum(&out[0].id), 3);
    CHECK_EQ(more, 1);
    fini_all(out, n);
    REQUIRE_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
               CADRE_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(idnum(&out[0].id), 5);
    CHECK_EQ(more, 0); /* the last page says so, without an empty one */
    fini_all(out, n);

    /* A queue filter with a scan bound: a page may hold fewer than max (even
     * none) and still go on. */
    sc.after = NULL;
    sc.queue = "b";
    sc.max = 8;
    sc.scan_max = 1;
    REQUIRE_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
               CADRE_OK);
    CHECK_EQ(n, 0);
    CHECK_EQ(more, 1);
    CHECK_EQ(idnum(&last), 1);
    sc.after = &last;
    sc.scan_max = 100;
    REQUIRE_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_EQ(idnum(&out[0].id), 2);
    CHECK_EQ(idnum(&out[1].id), 4);
    CHECK_EQ(more, 0);
    fini_all(out, n);

    /* Payloads when asked; bad bounds are refused. */
    sc = (struct store_failed_scan){.max = 1, .scan_max = 1};
    REQUIRE_EQ(store_failed_list(t, &sc, 1, out, &n, &last, &more, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 1);
    CHECK(out[0].payload != NULL &&
          memcmp(out[0].payload, "payload", sizeof("payload")) == 0);
    fini_all(out, n);
    sc.max = 0;
    CHECK_EQ(store_failed_list(t, &sc, 0, out, &n, &last, &more, &err),
             CADRE_EINVAL);
    store_txn_abort(t);
    store_close(s);
}

TEST(get_shows_the_whole_job)
{
    store           *s = five_failed();
    store_txn       *t = NULL;
    struct store_job j;
    cd_err           err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_failed_get(t, IDP(3), &j, &err), CADRE_OK);
    CHECK_STR(j.task, "echo");
    CHECK_STR(j.queue, "a");
    CHECK_EQ(j.payload_len, sizeof("payload"));
    CHECK(j.payload && memcmp(j.payload, "payload", j.payload_len) == 0);
    CHECK_EQ(j.opts.tries, 3);
    CHECK_EQ(j.opts.backoff_n, 2);
    CHECK_STR(j.error, "boom 3");
    CHECK_EQ(j.finished_at_ms, T0 + 30);
    CHECK_EQ(j.created_at_ms, T0 + 3);
    store_job_fini(&j);
    CHECK_EQ(store_failed_get(t, IDP(42), &j, &err), CADRE_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "store: failed job");
    store_txn_abort(t);
    store_close(s);
}

TEST(retry_requeues_a_fresh_attempt)
{
    store            *s = five_failed();
    store_txn        *t = NULL;
    const char *const qa[] = {"a"};
    struct store_job  out[4], j;
    size_t            n = 0;
    int               status = -1;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 10, "a", 0) == CADRE_OK); /* already waiting in "a" */
    REQUIRE_EQ(store_failed_retry(t, IDP(3), T0 + 1000, &err), CADRE_OK);
    CHECK_EQ(store_failed_retry(t, IDP(3), T0 + 1000, &err), CADRE_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "no such failed job");
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(stats_of(s, "a").failed, 2);
    CHECK_EQ(stats_of(s, "a").ready, 2);
    CHECK_EQ(stats_of(s, "a").done, 0);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_outcome(t, IDP(3), &status, NULL, &err), CADRE_OK);
    CHECK_EQ(status, CADRE_PENDING);
    CHECK_EQ(store_failed_get(t, IDP(3), &j, &err), CADRE_ENOTFOUND);
    REQUIRE_EQ(store_job_get(t, IDP(3), &j, &err), CADRE_OK);
    CHECK_EQ(j.state, STORE_READY);
    CHECK_EQ(j.attempts, 0);
    CHECK_EQ(j.exceptions, 0);
    CHECK(j.error == NULL && j.error_type == NULL);
    CHECK_EQ(j.finished_at_ms, 0);
    CHECK_EQ(j.created_at_ms, T0 + 1000);
    CHECK_EQ(j.opts.tries, 3);
    CHECK_EQ(j.opts.backoff_n, 2);
    CHECK(j.payload && memcmp(j.payload, "payload", j.payload_len) == 0);
    store_job_fini(&j);
    /* At the back of its queue: after the job that was waiting. */
    REQUIRE_EQ(store_reserve(t, qa, 1, 4, T0 + 1000, 1000, out, &n, &err),
               CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_EQ(idnum(&out[0].id), 10);
    CHECK_EQ(idnum(&out[1].id), 3);
    CHECK_EQ(out[1].attempts, 1);
    fini_all(out, n);
    store_txn_abort(t);
    store_close(s);
}

/* Copies failed record n into the jobs DB with raw LMDB, as only a damaged
 * store would have it: a pending record holding a failed job's id. */
static int
poke_pending_copy(const char *dir, unsigned n)
{
    MDB_env     *env = NULL;
    MDB_txn     *txn = NULL;
    MDB_dbi      failed, jobs;
    cadre_job_id id = mkid(n);
    MDB_val      k = {sizeof(id.b), id.b}, v;
    int          rc;

    if (mdb_env_create(&env) != 0)
        return -1;
    mdb_env_set_maxdbs(env, 16);
    rc = mdb_env_open(env, dir, 0, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "failed", 0, &failed);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "jobs", 0, &jobs);
    if (rc == 0)
        rc = mdb_get(txn, failed, &k, &v);
    if (rc == 0)
        rc = mdb_put(txn, jobs, &k, &v, 0);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc == 0 ? 0 : -1;
}

/* A retry whose id another record holds is refused without spoiling the
 * txn (and skipped by a sweep); an aborted retry leaves the failed job where
 * it was; a read-only txn cannot retry. */
TEST(retry_refusals_and_abort)
{
    store                   *s = five_failed();
    store_txn               *t = NULL;
    struct store_failed_scan sc = {.max = 100, .scan_max = 100};
    struct store_job         j;
    cadre_job_id             last;
    size_t                   done = 0;
    int                      more = -1;
    cd_err                   err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_failed_retry(t, IDP(2), T0 + 5, &err), CADRE_OK);
    store_txn_abort(t);
    CHECK_EQ(stats_of(s, "b").failed, 2);
    CHECK_EQ(stats_of(s, "b").ready, 0);
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_failed_get(t, IDP(2), &j, &err), CADRE_OK);
    store_job_fini(&j);
    CHECK_EQ(store_job_get(t, IDP(2), &j, &err), CADRE_ENOTFOUND);
    CHECK_EQ(store_failed_retry(t, IDP(2), T0, &err), CADRE_EINVAL);
    store_txn_abort(t);
    store_close(s);

    REQUIRE(poke_pending_copy(test_dir, 1) == 0);
    s = open_store(test_dir);
    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_failed_retry(t, IDP(1), T0, &err), CADRE_EEXISTS);
    CHECK_CONTAINS(err.msg, "has this id");
    REQUIRE_EQ(store_failed_sweep(t, STORE_FAILED_RETRY, &sc, T0, &done, &last,
                                  &more, &err),
               CADRE_OK);
    CHECK_EQ(done, 4); /* all but job 1 */
    REQUIRE_EQ(store_txn_commit(t, &err), CADRE_OK);
    CHECK_EQ(stats_of(s, "a").failed, 1);
    CHECK_EQ(stats_of(s, "a").ready, 2);
    store_close(s);
}

TEST(forget_and_counters_survive_reopen)
{
    store           *s = five_failed();
    store_txn       *t = NULL;
    struct store_job j;
    int              status = -1;
    cd_err           err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_failed_forget(t, IDP(4), &err), CADRE_OK);
    CHECK_EQ(store_failed_forget(t, IDP(4), &err), CADRE_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "forget failed job");
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(stats_of(s, "b").failed, 1);
    store_close(s);

    s = open_store(test_dir);
    REQUIRE(s != NULL);
    CHECK_EQ(stats_of(s, "b").failed, 1);
    CHECK_EQ(stats_of(s, "a").failed, 3);
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    CHECK_EQ(store_failed_get(t, IDP(4), &j, &err), CADRE_ENOTFOUND);
    REQUIRE_EQ(store_outcome(t, IDP(4), &status, NULL, &err), CADRE_OK);
    CHECK_EQ(status, CADRE_UNKNOWN);
    store_txn_abort(t);
    store_close(s);
}

TEST(sweeps_retry_flush_prune)
{
    store                   *s = five_failed();
    store_txn               *t = NULL;
    struct store_failed_scan sc = {.max = 100, .scan_max = 100};
    cadre_job_id             last;
    size_t                   done = 0;
    int                      more = -1;
    cd_err                   err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    /* Prune: failed before T0 + 30 means jobs 1 and 2. */
    sc.failed_before_ms = T0 + 30;
    REQUIRE_EQ(store_failed_sweep(t, STORE_FAILED_FORGET, &sc, T0, &done, &last,
                                  &more, &err),
               CADRE_OK);
    CHECK_EQ(done, 2);
    CHECK_EQ(more, 0);
    CHECK_EQ(stats_of(s, "a").failed, 2);
    CHECK_EQ(stats_of(s, "b").failed, 1);
    /* Retry --queue a, one per call, following the cursor. */
    sc = (struct store_failed_scan){.queue = "a", .max = 1, .scan_max = 100};
    REQUIRE_EQ(store_failed_sweep(t, STORE_FAILED_RETRY, &sc, T0, &done, &last,
                                  &more, &err),
               CADRE_OK);
    CHECK_EQ(done, 1);
    CHECK_EQ(more, 1);
    CHECK_EQ(idnum(&last), 3);
    sc.after = &last;
    REQUIRE_EQ(store_failed_sweep(t, STORE_FAILED_RETRY, &sc, T0, &done, &last,
                                  &more, &err),
               CADRE_OK);
    CHECK_EQ(done, 1);
    CHECK_EQ(idnum(&last), 5);
    CHECK_EQ(more, 0);
    CHECK_EQ(stats_of(s, "a").failed, 0);
    CHECK_EQ(stats_of(s, "a").ready, 2);
    CHECK_EQ(stats_of(s, "b").failed, 1);
    /* Flush what is left. */
    sc = (struct store_failed_scan){.max = 100, .scan_max = 100};
    REQUIRE_EQ(store_failed_sweep(t, STORE_FAILED_FORGET, &sc, T0, &done, &last,
                                  &more, &err),
               CADRE_OK);
    CHECK_EQ(done, 1);
    CHECK_EQ(stats_of(s, "b").failed, 0);
    CHECK_EQ(store_failed_sweep(t, 99, &sc, T0, &done, &last, &more, &err),
             CADRE_EINVAL);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

/* Clearing deletes ready and delayed jobs of one queue (or all), never
 * reserved ones, in bounded steps. */
TEST(queue_clear_in_bounded_steps)
{
    store            *s = open_store(fresh_dir());
    store_txn        *t = NULL;
    const char *const qa[] = {"a"};
    struct store_job  out[2], j;
    uint8_t           next[STORE_CLEAR_CURSOR_LEN];
    size_t            n = 0, cleared = 0, next_len = 0, total = 0;
    uint64_t          due = 0, deadline = 0;
    int               more = -1, rounds = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "a", 0) == CADRE_OK);
    REQUIRE(store_reserve(t, qa, 1, 1, T0, 1000, out, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 1);
    store_job_fini(&out[0]);
    for (unsigned i = 2; i <= 5; i++)
        REQUIRE(add(t, i, "a", 0) == CADRE_OK);
    for (unsigned i = 6; i <= 13; i++) /* delayed, queues interleaved */
        REQUIRE(add(t, i, i % 2 ? "a" : "b", T0 + 1000 + i) == CADRE_OK);
    REQUIRE(add(t, 14, "b", 0) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(stats_of(s, "a").ready, 4);
    CHECK_EQ(stats_of(s, "a").delayed, 4);
    CHECK_EQ(stats_of(s, "a").reserved, 1);

    /* Three entries per call: ready ones first, then the delayed index
     * (where b's entries are read and skipped) resumed by the cursor. */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    do {
        REQUIRE_EQ(store_queue_clear(t, "a", next, next_len, 3, &cleared, next,
                                     &next_len, &more, &err),
                   CADRE_OK);
        CHECK(cleared <= 3);
        total += cleared;
    } while (more && ++rounds < 20);
    CHECK_EQ(more, 0);
    CHECK_EQ(total, 8);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(stats_of(s, "a").ready, 0);
    CHECK_EQ(stats_of(s, "a").delayed, 0);
    CHECK_EQ(stats_of(s, "a").reserved, 1);
    CHECK_EQ(stats_of(s, "a").oldest_ready_age_ms, 0);
    CHECK_EQ(stats_of(s, "b").ready, 1);
    CHECK_EQ(stats_of(s, "b").delayed, 4);
    CHECK_EQ(store_pending(s), 6);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_job_get(t, IDP(2), &j, &err), CADRE_ENOTFOUND);
    CHECK_EQ(store_job_get(t, IDP(7), &j, &err), CADRE_ENOTFOUND);
    REQUIRE_EQ(store_job_get(t, IDP(1), &j, &err), CADRE_OK); /* reserved */
    store_job_fini(&j);
    /* Every queue at once. */
    REQUIRE_EQ(store_queue_clear(t, NULL, NULL, 0, 100, &cleared, next,
                                 &next_len, &more, &err),
               CADRE_OK);
    CHECK_EQ(cleared, 5);
    CHECK_EQ(more, 0);
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK(due == UINT64_MAX);
    /* Bad arguments write nothing and leave the txn usable. */
    CHECK_EQ(store_queue_clear(t, "a", next, 5, 10, &cleared, next, &next_len,
                               &more, &err),
             CADRE_EINVAL);
    CHECK_EQ(store_queue_clear(t, "a", NULL, 0, 0, &cleared, next, &next_len,
                               &more, &err),
             CADRE_EINVAL);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(stats_of(s, "b").ready, 0);
    CHECK_EQ(stats_of(s, "b").delayed, 0);
    CHECK_EQ(store_pending(s), 1);
    store_close(s);

    /* The counters agree with the indexes after a reopen. */
    s = open_store(test_dir);
    REQUIRE(s != NULL);
    CHECK_EQ(store_pending(s), 1);
    CHECK_EQ(stats_of(s, "a").reserved, 1);
    store_close(s);
}

TEST(pause_stops_reservations_durably)
{
    store            *s = open_store(fresh_dir());
    store_txn        *t = NULL;
    const char *const qs[] = {"a", "b"};
    struct store_job  out[4];
    char            **names = NULL;
    size_t            n = 0;
    int               changed = -1;
    cd_err            err = {0};
    char              longq[STORE_QUEUE_MAX + 2];

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "a", 0) == CADRE_OK);
    REQUIRE(add(t, 2, "b", 0) == CADRE_OK);
    REQUIRE_EQ(store_queue_pause(t, "a", 1, &changed, &err), CADRE_OK);
    CHECK_EQ(changed, 1);
    REQUIRE_EQ(store_queue_pause(t, "a", 1, &changed, &err), CADRE_OK);
    CHECK_EQ(changed, 0);
    REQUIRE_EQ(store_queue_pause(t, "zz", 1, NULL, &err), CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK(store_queue_paused(s, "a"));
    CHECK(!store_queue_paused(s, "b"));
    CHECK(!store_queue_paused(s, NULL));
    CHECK_EQ(store_ready_in(s, qs, 2), 1);
    REQUIRE_EQ(store_paused_queues(s, &names, &n, &err), CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_STR(names[0], "a");
    CHECK_STR(names[1], "zz");
    cd_free(names);

    /* Workers get b's job only; a's stays ready (and still counts). */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 3, "a", 0) == CADRE_OK); /* dispatch still accepts */
    REQUIRE_EQ(store_reserve(t, qs, 2, 4, T0, 1000, out, &n, &err), CADRE_OK);
    REQUIRE_EQ(n, 1);
    CHECK_EQ(idnum(&out[0].id), 2);
    fini_all(out, n);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(stats_of(s, "a").ready, 2);
    store_close(s);

    /* Durable; a resume in an aborted txn changes nothing. */
    s = open_store(test_dir);
    REQUIRE(s != NULL);
    CHECK(store_queue_paused(s, "a"));
    CHECK(store_queue_paused(s, "zz"));
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_queue_pause(t, "a", 0, &changed, &err), CADRE_OK);
    CHECK_EQ(changed, 1);
    CHECK(!store_queue_paused(s, "a"));
    store_txn_abort(t);
    CHECK(store_queue_paused(s, "a"));

    /* Resumed for good: reservations take a's jobs again. A resume of a
     * queue never seen creates nothing; a too long name is refused. */
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE_EQ(store_queue_pause(t, "a", 0, NULL, &err), CADRE_OK);
    REQUIRE_EQ(store_queue_pause(t, "zz", 0, NULL, &err), CADRE_OK);
    REQUIRE_EQ(store_queue_pause(t, "never", 0, &changed, &err), CADRE_OK);
    CHECK_EQ(changed, 0);
    CHECK_EQ(has_queue(s, "never"), 0);
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    CHECK_EQ(store_queue_pause(t, longq, 1, NULL, &err), CADRE_EINVAL);
    REQUIRE_EQ(store_reserve(t, qs, 2, 4, T0, 1000, out, &n, &err), CADRE_OK);
    CHECK_EQ(n, 2);
    fini_all(out, n);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);

    s = open_store(test_dir);
    REQUIRE(s != NULL);
    CHECK(!store_queue_paused(s, "a"));
    REQUIRE_EQ(store_paused_queues(s, &names, &n, &err), CADRE_OK);
    CHECK_EQ(n, 0);
    CHECK(names == NULL);
    store_close(s);
}

/* Allocation failures in the middle of a retry sweep leave a txn that
 * cannot commit, and the store as it was. */
TEST(allocation_faults_in_sweeps)
{
    store                   *s = five_failed();
    store_txn               *t = NULL;
    struct store_failed_scan sc = {.max = 100, .scan_max = 100};
    cadre_job_id             last;
    size_t                   done = 0;
    int                      more = 0, rc = -1;
    cd_err                   err = {0};

    REQUIRE(s != NULL);
    for (long i = 0; i < 200 && rc != CADRE_OK; i++) {
        REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
        cd_alloc_fail_after(i);
        rc = store_failed_sweep(t, STORE_FAILED_RETRY, &sc, T0, &done, &last,
                                &more, &err);
        cd_alloc_fail_after(-1);
        if (rc != CADRE_OK) {
            CHECK_EQ(rc, CADRE_ENOMEM);
            CHECK(store_txn_commit(t, &err) != CADRE_OK);
            CHECK_EQ(stats_of(s, "a").failed, 3);
            CHECK_EQ(stats_of(s, "a").ready, 0);
            continue;
        }
        CHECK_EQ(done, 5);
        REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    }
    CHECK_EQ(rc, CADRE_OK);
    CHECK_EQ(stats_of(s, "a").failed, 0);
    CHECK_EQ(stats_of(s, "a").ready, 3);
    CHECK_EQ(stats_of(s, "b").ready, 2);
    store_close(s);
}

int
main(void)
{
    TAP_RUN(T(list_pages_in_id_order), T(get_shows_the_whole_job),
            T(retry_requeues_a_fresh_attempt), T(retry_refusals_and_abort),
            T(forget_and_counters_survive_reopen), T(sweeps_retry_flush_prune),
            T(queue_clear_in_bounded_steps),
            T(pause_stops_reservations_durably),
            T(allocation_faults_in_sweeps));
}
