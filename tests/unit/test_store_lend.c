/* test_store_lend.c: store/lend.c against real LMDB environments (a victim
 * and a thief in one temp dir): lending in queue and FIFO order, transfer
 * records, adopt (duplicates, garbage, a job coming back), settle, expired
 * loans back at their old place, loans surviving a crash, counters through
 * all of it, allocation faults, the job's origin through loans and
 * outcomes, and outcomes from other nodes (store_result_put). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/alloc.h"
#include "common/bytes.h"
#include "proto/record.h"
#include "store/store.h"
#include "tests/lib/tap.h"

#define T0 1000000u /* a "now" in ms */
#define LEND_MS 500u
#define THIEF "node-b"
#define VICTIM "node-a"

static store *
open_store_mb(const char *dir, size_t map_mb)
{
    struct store_config cfg = {
        .dir = dir, .map_size_mb = map_mb, .sync = STORE_SYNC_OFF};
    store *s = NULL;
    cd_err err = {0};

    if (store_open(&cfg, &s, &err) != CADRE_OK) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return NULL;
    }
    return s;
}

static store *
open_store(const char *dir)
{
    return open_store_mb(dir, 0);
}

/* A store in subdirectory name (victim, thief) of base, this test's temp
 * dir: tap_tmpdir gives one per test. */
static store *
open_sub(const char *base, const char *name, char *dir, size_t dir_len)
{
    snprintf(dir, dir_len, "%s/%s", base, name);
    if (mkdir(dir, 0700) != 0)
        return NULL;
    return open_store(dir);
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

/* A job borrowing static strings: for store_job_add only (never fini'd). */
static struct store_job
mkjob(unsigned n, const char *queue)
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
    return j;
}

/* Adds job j; returns its seq (0 on error or duplicate). */
static uint64_t
add_job(store_txn *t, struct store_job *j)
{
    int    dup = -1;
    cd_err err = {0};

    if (store_job_add(t, j, T0, &dup, &err) != CADRE_OK || dup) {
        fprintf(stderr, "add %u: %s dup=%d\n", idnum(&j->id), err.msg, dup);
        return 0;
    }
    return j->seq;
}

static uint64_t
add(store_txn *t, unsigned n, const char *queue)
{
    struct store_job j = mkjob(n, queue);

    return add_job(t, &j);
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
blobs_free(struct store_blob *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cd_free(v[i].data);
}

static void
fini_all(struct store_job *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_job_fini(&v[i]);
}

/* The id in a transfer record (0 if it does not decode). */
static unsigned
blob_idnum(const struct store_blob *b)
{
    struct record_job r;
    unsigned          n;

    if (record_job_unpack(b->data, b->len, &r, NULL) != CADRE_OK)
        return 0;
    n = idnum(&r.id);
    record_job_free(&r);
    return n;
}

/* Lends up to max jobs of qs to THIEF at T0 and commits. */
static int
lend_commit(store *s, const char *const *qs, size_t qs_n, size_t max,
            struct store_blob *out, size_t *n)
{
    store_txn *t = NULL;
    cd_err     err = {0};
    int        rc = store_txn_begin(s, 0, &t, &err);

    if (rc == CADRE_OK)
        rc = store_lend(t, qs, qs_n, max, T0, LEND_MS, THIEF, out, n, &err);
    if (rc == CADRE_OK)
        return store_txn_commit(t, &err);
    fprintf(stderr, "lend: %s\n", err.msg);
    store_txn_abort(t);
    return rc;
}

TEST(lend_fifo_skips_paused_and_unique)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_blob out[8];
    struct store_job  res[8], got;
    const char *const order[] = {"high", "hold", "low"};
    size_t            n = 0;
    uint64_t          seq2;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "low") != 0);
    REQUIRE((seq2 = add(t, 2, "high")) != 0);
    {
        struct store_job j = mkjob(3, "high");

        j.unique_key = (char *)"echo\x1fu3";
        REQUIRE(add_job(t, &j) != 0);
    }
    REQUIRE(add(t, 4, "low") != 0);
    REQUIRE(add(t, 5, "hold") != 0);
    REQUIRE(add(t, 6, "high") != 0);
    REQUIRE(store_queue_pause(t, "hold", 1, NULL, &err) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    /* high first (2, 6; the unique 3 stays), hold is paused, then low. */
    REQUIRE(lend_commit(s, order, 3, 3, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 3);
    CHECK_EQ(blob_idnum(&out[0]), 2);
    CHECK_EQ(blob_idnum(&out[1]), 6);
    CHECK_EQ(blob_idnum(&out[2]), 1);
    blobs_free(out, n);
    CHECK_COUNTS(s, "high", 1, 0, 2, 0, 0);
    CHECK_COUNTS(s, "low", 1, 0, 1, 0, 0);
    CHECK_COUNTS(s, "hold", 1, 0, 0, 0, 0);
    CHECK_EQ(store_ready_in(s, order, 3), 2);
    CHECK_EQ(store_pending(s), 6);
    CHECK_EQ(store_lent(s), 3);
    {
        cadre_queue_stats       *v = NULL;
        size_t                   vn = 0;
        const cadre_queue_stats *low;

        /* The head of low moved on to job 4 (created T0 + 4). */
        REQUIRE(store_stats(s, T0 + 100, &v, &vn, &err) == CADRE_OK);
        low = find_stats(v, vn, "low");
        CHECK(low != NULL && low->oldest_ready_age_ms == 96);
        cd_free(v);
    }

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    /* The victim keeps the job, marked, at its seq, attempts untouched. */
    REQUIRE(store_job_get(t, IDP(2), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_RESERVED);
    CHECK_STR(got.lent_to, THIEF);
    CHECK_EQ(got.reserved_until_ms, T0 + LEND_MS);
    CHECK_EQ(got.seq, seq2);
    CHECK_EQ(got.attempts, 0);
    CHECK(got.lease != 0);
    store_job_fini(&got);
    /* Workers get neither lent jobs nor paused ones: 3 and 4 only. */
    REQUIRE(store_reserve(t, order, 3, 8, T0, 1000, res, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_EQ(idnum(&res[0].id), 3);
    CHECK_EQ(idnum(&res[1].id), 4);
    CHECK(res[0].lent_to == NULL && res[1].lent_to == NULL);
    fini_all(res, n);
    /* Nothing left to lend but the paused queue's job. */
    REQUIRE(store_lend(t, order, 3, 8, T0, LEND_MS, THIEF, out, &n, &err) ==
            CADRE_OK);
    CHECK_EQ(n, 0);
    CHECK_EQ(store_lend(t, order, 3, 8, T0, LEND_MS, "", out, &n, &err),
             CADRE_EINVAL);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_lent(s), 3);
    store_close(s);
}

TEST(transfer_record_is_the_thiefs_job)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_blob out[2];
    struct record_job r;
    const char *const qs[] = {"default"};
    uint32_t          backoff[] = {1, 5};
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    {
        struct store_job j = mkjob(7, "default");

        j.attempts = 2; /* a job that already ran and was released */
        j.exceptions = 1;
        j.error_type = (char *)"HandlerError";
        j.error = (char *)"boom";
        j.opts.tries = 5;
        j.opts.backoff_s = backoff;
        j.opts.backoff_n = 2;
        j.opts.timeout_ms = 30000;
        j.available_at_ms = T0 - 10;
        REQUIRE(add_job(t, &j) != 0);
    }
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(s, qs, 1, 2, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 1);

    REQUIRE(record_job_unpack(out[0].data, out[0].len, &r, &err) == CADRE_OK);
    CHECK_EQ(idnum(&r.id), 7);
    CHECK_EQ(r.state, STORE_READY);
    CHECK_EQ(r.seq, 0);
    CHECK_STR(r.lent_to, "");
    CHECK_EQ(r.lease, 0);
    CHECK_EQ(r.reserved_until_ms, 0);
    CHECK_STR(r.unique_key, "");
    CHECK_EQ(r.attempts, 2);
    CHECK_EQ(r.exceptions, 1);
    CHECK_STR(r.error_type, "HandlerError");
    CHECK_STR(r.error, "boom");
    CHECK_STR(r.task, "echo");
    CHECK_STR(r.queue, "default");
    CHECK_EQ(r.tries, 5);
    CHECK_EQ(r.backoff_n, 2);
    CHECK(r.backoff_n == 2 && r.backoff_s[1] == 5);
    CHECK_EQ(r.timeout_ms, 30000);
    CHECK_EQ(r.created_at_ms, T0 + 7);
    CHECK_EQ(r.available_at_ms, T0 - 10);
    CHECK(r.payload_len == 8 && memcmp(r.payload, "payload", 8) == 0);
    record_job_free(&r);
    blobs_free(out, n);
    store_close(s);
}

/* The whole protocol between two stores: lend, adopt, settle. */
TEST(lend_adopt_settle)
{
    const char       *base = tap_tmpdir();
    char              vdir[300], tdir[300];
    store            *v = open_sub(base, "victim", vdir, sizeof(vdir));
    store            *th = open_sub(base, "thief", tdir, sizeof(tdir));
    store_txn        *t = NULL;
    struct store_blob out[4];
    struct store_job  res[4], got;
    const char *const qs[] = {"default"};
    cadre_job_id      ids[4];
    size_t            n = 0, m = 0, settled = 9;
    int               dup = -1, st = -1;
    cd_err            err = {0};

    REQUIRE(v != NULL && th != NULL);
    REQUIRE(store_txn_begin(v, 0, &t, &err) == CADRE_OK);
    for (unsigned i = 1; i <= 3; i++)
        REQUIRE(add(t, i, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(store_txn_begin(th, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 50, "default") != 0); /* the thief's own, first in line */
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(lend_commit(v, qs, 1, 2, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_COUNTS(v, "default", 1, 0, 2, 0, 0);

    REQUIRE(store_txn_begin(th, 0, &t, &err) == CADRE_OK);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(store_adopt(t, out[i].data, out[i].len, T0 + 1, VICTIM, &ids[i],
                            &dup, &err) == CADRE_OK);
        CHECK_EQ(dup, 0);
        CHECK_EQ(idnum(&ids[i]), i + 1);
    }
    CHECK_COUNTS(th, "default", 3, 0, 0, 0, 0);
    /* Adopting again (a resent transfer) changes nothing. */
    REQUIRE(store_adopt(t, out[0].data, out[0].len, T0 + 2, VICTIM, &ids[3],
                        &dup, &err) == CADRE_OK);
    CHECK_EQ(dup, 1);
    CHECK_EQ(idnum(&ids[3]), 1);
    CHECK_COUNTS(th, "default", 3, 0, 0, 0, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_lent(th), 0);

    /* The thief runs them after its own, as its own jobs. */
    REQUIRE(store_txn_begin(th, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 4, T0 + 5, 1000, res, &m, &err) ==
            CADRE_OK);
    REQUIRE_EQ(m, 3);
    CHECK_EQ(idnum(&res[0].id), 50);
    CHECK_EQ(idnum(&res[1].id), 1);
    CHECK_EQ(idnum(&res[2].id), 2);
    CHECK_EQ(res[1].attempts, 1);
    CHECK(res[1].lent_to == NULL);
    /* Once done there, a resent transfer is still a duplicate. */
    res[1].state = STORE_DONE;
    REQUIRE(store_job_finish(t, &res[1], T0 + 6, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, out[0].data, out[0].len, T0 + 7, VICTIM, &ids[3],
                        &dup, &err) == CADRE_OK);
    CHECK_EQ(dup, 1);
    CHECK_COUNTS(th, "default", 0, 0, 2, 1, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    fini_all(res, m);

    /* Settle: only loans to the right node, once. */
    REQUIRE(store_txn_begin(v, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_lend_settle(t, ids, 2, "node-c", &settled, &err) == CADRE_OK);
    CHECK_EQ(settled, 0);
    CHECK_EQ(store_lend_settle(t, ids, 2, "", &settled, &err), CADRE_EINVAL);
    REQUIRE(store_lend_settle(t, ids, 2, THIEF, &settled, &err) == CADRE_OK);
    CHECK_EQ(settled, 2);
    REQUIRE(store_lend_settle(t, ids, 2, THIEF, &settled, &err) == CADRE_OK);
    CHECK_EQ(settled, 0);
    CHECK_EQ(store_job_get(t, IDP(1), &got, &err), CADRE_ENOTFOUND);
    REQUIRE(store_outcome(t, IDP(1), &st, NULL, &err) == CADRE_OK);
    /* Moved: a placeholder says pending until the outcome comes home. */
    CHECK_EQ(st, CADRE_PENDING);
    CHECK_COUNTS(v, "default", 1, 0, 0, 0, 0);
    CHECK_EQ(store_lent(v), 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    blobs_free(out, n);
    store_close(v);
    store_close(th);
}

/* Settle leaves alone what is not a loan to `to`: a job a worker holds, a
 * ready job, an unknown id. */
TEST(settle_only_loans)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_job  res[2];
    const char *const qs[] = {"default"};
    cadre_job_id      ids[3] = {mkid(1), mkid(2), mkid(99)};
    size_t            n = 0, settled = 9;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(add(t, 2, "default") != 0);
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, res, &n, &err) == CADRE_OK);
    REQUIRE_EQ(n, 1);
    fini_all(res, n);
    REQUIRE(store_lend_settle(t, ids, 3, THIEF, &settled, &err) == CADRE_OK);
    CHECK_EQ(settled, 0);
    CHECK_COUNTS(s, "default", 1, 0, 1, 0, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

TEST(adopt_rejects_garbage)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "thief", dir, sizeof(dir));
    store_txn        *t = NULL;
    static const char junk[] = "\xff\xff\xff\xff not a record";
    struct record_job r;
    cadre_job_id      id = mkid(77);
    uint8_t           buf[512];
    char              longq[STORE_QUEUE_MAX + 2];
    int               dup = -1;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_adopt(t, (const uint8_t *)junk, sizeof(junk), T0, VICTIM,
                         &id, &dup, &err),
             CADRE_ECORRUPT);
    CHECK_CONTAINS(err.msg, "adopt");
    CHECK_EQ(store_adopt(t, buf, 0, T0, VICTIM, &id, &dup, &err),
             CADRE_ECORRUPT);
    /* Records that decode but are no job: no task; a queue too long. */
    memset(&r, 0, sizeof(r));
    r.id = mkid(78);
    r.queue = "default";
    REQUIRE(record_job_size(&r) <= sizeof(buf));
    CHECK_EQ(store_adopt(t, buf, record_job_pack(&r, buf), T0, VICTIM, &id,
                         &dup, &err),
             CADRE_ECORRUPT);
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    r.task = "echo";
    r.queue = longq;
    REQUIRE(record_job_size(&r) <= sizeof(buf));
    CHECK_EQ(store_adopt(t, buf, record_job_pack(&r, buf), T0, VICTIM, &id,
                         &dup, &err),
             CADRE_ECORRUPT);
    CHECK_EQ(dup, -1);
    CHECK_EQ(idnum(&id), 77);
    CHECK_EQ(store_pending(s), 0);
    /* Nothing was written: the txn goes on. */
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_pending(s), 1);
    store_close(s);
}

/* A transfer record with a unique key (an older or careless lender) and one
 * due later: the thief never holds the key, and the delayed one waits. */
TEST(adopt_unique_and_delayed)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "thief", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct record_job r;
    struct store_job  got;
    cadre_job_id      id;
    uint8_t           buf[512];
    int               dup = -1;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    memset(&r, 0, sizeof(r));
    r.id = mkid(1);
    r.task = "echo";
    r.queue = "q";
    r.state = STORE_READY;
    r.attempts = 3;
    r.unique_key = "echo\x1fk";
    r.lent_to = "someone";
    r.lease = 42;
    r.created_at_ms = T0 - 5;
    REQUIRE(record_job_size(&r) <= sizeof(buf));
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, buf, record_job_pack(&r, buf), T0, VICTIM, &id, &dup,
                        &err) == CADRE_OK);
    CHECK_EQ(dup, 0);
    r.id = mkid(2);
    r.unique_key = NULL;
    r.available_at_ms = T0 + 100;
    REQUIRE(store_adopt(t, buf, record_job_pack(&r, buf), T0, VICTIM, &id, &dup,
                        &err) == CADRE_OK);
    CHECK_EQ(dup, 0);
    CHECK_COUNTS(s, "q", 1, 1, 0, 0, 0);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_READY);
    CHECK_EQ(got.attempts, 3);
    CHECK(got.unique_key == NULL);
    CHECK(got.lent_to == NULL);
    CHECK_STR(got.origin, VICTIM);
    CHECK_EQ(got.lease, 0);
    CHECK_EQ(got.created_at_ms, T0 - 5); /* kept as sent */
    store_job_fini(&got);
    REQUIRE(store_job_get(t, IDP(2), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_DELAYED);
    store_job_fini(&got);
    /* A job of the same key dispatched here is stored: no key was taken. */
    {
        struct store_job j = mkjob(3, "q");

        j.unique_key = (char *)"echo\x1fk";
        CHECK(add_job(t, &j) != 0);
    }
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

/* An unsettled loan expires like a lease; saved READY (as the node does),
 * the job is back at its old place, before newer jobs. */
TEST(expired_loan_back_in_place)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_blob out[4];
    struct store_job  exp[4], res[8];
    const char *const qs[] = {"default"};
    uint64_t          due = 0, deadline = 0;
    size_t            n = 0, m = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    for (unsigned i = 1; i <= 3; i++)
        REQUIRE(add(t, i, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(s, qs, 1, 2, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 2);
    blobs_free(out, n);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 4, "default") != 0); /* newer than the lent ones */
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK_EQ(deadline, T0 + LEND_MS);
    REQUIRE(store_expired(t, T0 + LEND_MS - 1, exp, 4, &m, &err) == CADRE_OK);
    CHECK_EQ(m, 0);
    REQUIRE(store_expired(t, T0 + LEND_MS, exp, 4, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 2);
    for (size_t i = 0; i < m; i++) {
        CHECK_EQ(idnum(&exp[i].id), i + 1);
        CHECK_EQ(exp[i].state, STORE_RESERVED);
        CHECK_STR(exp[i].lent_to, THIEF);
        CHECK_EQ(exp[i].attempts, 0);
        cd_free(exp[i].lent_to);
        exp[i].lent_to = NULL;
        exp[i].state = STORE_READY;
        REQUIRE(store_job_save(t, &exp[i], &err) == CADRE_OK);
    }
    fini_all(exp, m);
    CHECK_EQ(store_lent(s), 0);
    CHECK_COUNTS(s, "default", 4, 0, 0, 0, 0);
    /* A late settle finds no loan. */
    {
        cadre_job_id ids[1] = {mkid(1)};
        size_t       settled = 9;

        REQUIRE(store_lend_settle(t, ids, 1, THIEF, &settled, &err) ==
                CADRE_OK);
        CHECK_EQ(settled, 0);
    }
    REQUIRE(store_reserve(t, qs, 1, 8, T0 + LEND_MS, 1000, res, &m, &err) ==
            CADRE_OK);
    REQUIRE_EQ(m, 4);
    for (size_t i = 0; i < m; i++) {
        CHECK_EQ(idnum(&res[i].id), i + 1);
        CHECK_EQ(res[i].attempts, 1); /* the loan cost no attempt */
    }
    fini_all(res, m);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_COUNTS(s, "default", 0, 0, 4, 0, 0);
    store_close(s);
}

/* The victim crashes (no clean close matters to LMDB) after lending: the
 * loan is on disk, counted again at open, and expires normally. */
TEST(loan_survives_reopen)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_blob out[2];
    struct store_job  exp[2], got, res[4];
    const char *const qs[] = {"default"};
    uint64_t          due = 0, deadline = 0;
    size_t            n = 0, m = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(add(t, 2, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(s, qs, 1, 1, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 1);
    blobs_free(out, n);
    store_close(s);

    s = open_store(dir);
    REQUIRE(s != NULL);
    CHECK_EQ(store_lent(s), 1);
    CHECK_COUNTS(s, "default", 1, 0, 1, 0, 0);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_RESERVED);
    CHECK_STR(got.lent_to, THIEF);
    store_job_fini(&got);
    REQUIRE(store_next_times(t, &due, &deadline, &err) == CADRE_OK);
    CHECK_EQ(deadline, T0 + LEND_MS);
    REQUIRE(store_expired(t, T0 + LEND_MS, exp, 2, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    CHECK_STR(exp[0].lent_to, THIEF);
    cd_free(exp[0].lent_to);
    exp[0].lent_to = NULL;
    exp[0].state = STORE_READY;
    REQUIRE(store_job_save(t, &exp[0], &err) == CADRE_OK);
    fini_all(exp, m);
    REQUIRE(store_reserve(t, qs, 1, 4, T0 + LEND_MS, 1000, res, &m, &err) ==
            CADRE_OK);
    REQUIRE_EQ(m, 2);
    CHECK_EQ(idnum(&res[0].id), 1);
    CHECK_EQ(idnum(&res[1].id), 2);
    fini_all(res, m);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_lent(s), 0);
    store_close(s);
}

/* An aborted lend leaves the jobs READY, the counters as they were. */
TEST(abort_undoes_lend)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_blob out[2];
    struct store_job  got;
    const char *const qs[] = {"default"};
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_lend(t, qs, 1, 2, T0, LEND_MS, THIEF, out, &n, &err) ==
            CADRE_OK);
    REQUIRE_EQ(n, 1);
    blobs_free(out, n);
    CHECK_EQ(store_lent(s), 1);
    store_txn_abort(t);
    CHECK_EQ(store_lent(s), 0);
    CHECK_COUNTS(s, "default", 1, 0, 0, 0, 0);
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_READY);
    CHECK(got.lent_to == NULL);
    store_job_fini(&got);
    store_txn_abort(t);
    store_close(s);
}

/* A lent job that comes back (the thief lends it on to us before we
 * settled): adopt cancels our loan rather than keep a copy a late settle
 * would delete. */
TEST(adopt_of_own_loan_cancels_it)
{
    const char       *base = tap_tmpdir();
    char              vdir[300], tdir[300];
    store            *v = open_sub(base, "victim", vdir, sizeof(vdir));
    store            *th = open_sub(base, "thief", tdir, sizeof(tdir));
    store_txn        *t = NULL;
    struct store_blob out[2], back[2];
    struct store_job  got, res[2];
    const char *const qs[] = {"default"};
    cadre_job_id      id;
    size_t            n = 0, nb = 0, settled = 9;
    uint64_t          seq1;
    int               dup = -1;
    cd_err            err = {0};

    REQUIRE(v != NULL && th != NULL);
    REQUIRE(store_txn_begin(v, 0, &t, &err) == CADRE_OK);
    REQUIRE((seq1 = add(t, 1, "default")) != 0);
    REQUIRE(add(t, 2, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(v, qs, 1, 1, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 1);

    REQUIRE(store_txn_begin(th, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, out[0].data, out[0].len, T0, VICTIM, &id, &dup,
                        &err) == CADRE_OK);
    REQUIRE(store_lend(t, qs, 1, 1, T0, LEND_MS, "node-a", back, &nb, &err) ==
            CADRE_OK);
    REQUIRE_EQ(nb, 1);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(store_txn_begin(v, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, back[0].data, back[0].len, T0 + 1, THIEF, &id, &dup,
                        &err) == CADRE_OK);
    CHECK_EQ(dup, 1);
    CHECK_EQ(idnum(&id), 1);
    CHECK_EQ(store_lent(v), 0);
    CHECK_COUNTS(v, "default", 2, 0, 0, 0, 0);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_READY);
    CHECK_EQ(got.seq, seq1);
    CHECK(got.lent_to == NULL);
    CHECK(got.origin == NULL); /* still dispatched here */
    store_job_fini(&got);
    REQUIRE(store_lend_settle(t, &id, 1, THIEF, &settled, &err) == CADRE_OK);
    CHECK_EQ(settled, 0);
    REQUIRE(store_reserve(t, qs, 1, 2, T0 + 2, 1000, res, &n, &err) ==
            CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_EQ(idnum(&res[0].id), 1);
    fini_all(res, n);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    blobs_free(out, 1);
    blobs_free(back, nb);
    store_close(v);
    store_close(th);
}

/* A lent job the node fails on expiry (out of tries): the failed record is
 * nobody's loan, and the lent count drops. */
TEST(finish_of_lent_job)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct store_blob out[1];
    struct store_job  exp[1], got;
    const char *const qs[] = {"default"};
    size_t            n = 0, m = 0;
    int               st = -1;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(store_lend(t, qs, 1, 1, T0, LEND_MS, THIEF, out, &n, &err) ==
            CADRE_OK);
    REQUIRE_EQ(n, 1);
    blobs_free(out, n);
    REQUIRE(store_expired(t, T0 + LEND_MS, exp, 1, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    exp[0].state = STORE_FAILED;
    REQUIRE(store_job_finish(t, &exp[0], T0 + LEND_MS, &err) == CADRE_OK);
    store_job_fini(&exp[0]);
    CHECK_EQ(store_lent(s), 0);
    CHECK_COUNTS(s, "default", 0, 0, 0, 0, 1);
    REQUIRE(store_outcome(t, IDP(1), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    CHECK(got.lent_to == NULL);
    store_job_fini(&got);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

/* Lend, adopt and settle with the Nth allocation failing: each succeeds or
 * returns CADRE_ENOMEM with nothing to free (ASan), and an abort leaves
 * counters and lent count as they were. */
TEST(allocation_faults)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "victim", dir, sizeof(dir));
    store_txn        *t = NULL;
    const char *const qs[] = {"a"};
    int               passed = 0, faults = 0;

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, NULL) == CADRE_OK);
    REQUIRE(add(t, 1, "a") != 0);
    REQUIRE(add(t, 2, "a") != 0);
    REQUIRE(store_txn_commit(t, NULL) == CADRE_OK);
    for (long k = 0; k < 300 && !passed; k++) {
        struct store_blob out[2];
        cadre_job_id      id, ids[1] = {mkid(1)};
        size_t            n = 0, settled = 0;
        int               dup = 0, lent, rc;

        REQUIRE(store_txn_begin(s, 0, &t, NULL) == CADRE_OK);
        cd_alloc_fail_after(k);
        rc = store_lend(t, qs, 1, 2, T0, LEND_MS, THIEF, out, &n, NULL);
        lent = rc == CADRE_OK; /* else out holds nothing */
        if (rc == CADRE_OK)
            rc = store_lend_settle(t, ids, 1, THIEF, &settled, NULL);
        if (rc == CADRE_OK) /* job 2's loan is still ours: cancelled */
            rc = store_adopt(t, out[1].data, out[1].len, T0, VICTIM, &id, &dup,
                             NULL);
        cd_alloc_fail_after(-1);
        if (lent)
            blobs_free(out, n);
        if (rc == CADRE_OK) {
            passed = 1;
            CHECK_EQ(settled, 1);
            CHECK_EQ(dup, 1);
            CHECK_EQ(store_lent(s), 0);
            CHECK_COUNTS(s, "a", 1, 0, 0, 0, 0);
        } else {
            faults++;
        }
        CHECK(rc == CADRE_OK || rc == CADRE_ENOMEM);
        store_txn_abort(t);
        CHECK_COUNTS(s, "a", 2, 0, 0, 0, 0);
        CHECK_EQ(store_lent(s), 0);
    }
    CHECK(passed);
    CHECK(faults > 3);
    store_close(s);
}

/* The same faults, committed anyway: either the commit refuses (an
 * operation failed half-way) or what it keeps is consistent: counters and
 * the lent count equal those rebuilt from disk by a reopen. */
TEST(allocation_faults_commit)
{
    int passed = 0;

    for (long k = 0; k < 300 && !passed; k++) {
        const char        *dir = tap_tmpdir();
        store             *s = open_store(dir);
        store_txn         *t = NULL;
        const char *const  qs[] = {"a"};
        struct store_blob  out[2];
        cadre_queue_stats *v1 = NULL, *v2 = NULL;
        cadre_job_id       id;
        size_t             n = 0, n1 = 0, n2 = 0, settled = 0;
        uint64_t           lent;
        int                dup = 0, rc;

        REQUIRE(s != NULL);
        REQUIRE(store_txn_begin(s, 0, &t, NULL) == CADRE_OK);
        REQUIRE(add(t, 1, "a") != 0 && add(t, 2, "a") != 0);
        REQUIRE(store_txn_commit(t, NULL) == CADRE_OK);
        REQUIRE(store_txn_begin(s, 0, &t, NULL) == CADRE_OK);
        cd_alloc_fail_after(k);
        rc = store_lend(t, qs, 1, 2, T0, LEND_MS, THIEF, out, &n, NULL);
        if (rc == CADRE_OK) {
            cadre_job_id ids[1] = {mkid(1)};

            rc = store_lend_settle(t, ids, 1, THIEF, &settled, NULL);
            if (rc == CADRE_OK)
                rc = store_adopt(t, out[1].data, out[1].len, T0, VICTIM, &id,
                                 &dup, NULL);
            blobs_free(out, n);
        }
        cd_alloc_fail_after(-1);
        passed = rc == CADRE_OK;
        rc = store_txn_commit(t, NULL);
        CHECK(rc == CADRE_OK || rc == CADRE_ENOMEM);
        lent = store_lent(s);
        REQUIRE(store_stats(s, T0, &v1, &n1, NULL) == CADRE_OK);
        store_close(s);
        s = open_store(dir);
        REQUIRE(s != NULL);
        REQUIRE(store_stats(s, T0, &v2, &n2, NULL) == CADRE_OK);
        CHECK_EQ(n1, n2);
        CHECK(n1 == n2 && memcmp(v1, v2, n1 * sizeof(*v1)) == 0);
        CHECK_EQ(store_lent(s), lent);
        cd_free(v1);
        cd_free(v2);
        store_close(s);
    }
    CHECK(passed);
}

/* A map too small for the loans: lend fails with CADRE_EFULL, holding
 * nothing, the txn is spent, and nothing of it is kept. */
TEST(map_full_lend)
{
    const char       *dir = tap_tmpdir();
    store            *s = open_store_mb(dir, 1);
    store_txn        *t = NULL;
    static uint8_t    big[64 * 1024];
    struct store_blob out[16];
    struct store_job  got;
    const char *const qs[] = {"default"};
    size_t            n = 0;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    /* About half the map: lending them all at once rewrites every record
     * while the old pages are still in use. */
    for (unsigned i = 1; i <= 9; i++) {
        struct store_job j = mkjob(i, "default");

        j.payload = big;
        j.payload_len = sizeof(big);
        REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
        REQUIRE(add_job(t, &j) != 0);
        REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    }
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_lend(t, qs, 1, 16, T0, LEND_MS, THIEF, out, &n, &err),
             CADRE_EFULL);
    CHECK_CONTAINS(err.msg, "store: lend");
    CHECK_CONTAINS(err.msg, "MDB_MAP_FULL");
    CHECK_EQ(store_txn_commit(t, &err), CADRE_EFULL);
    CHECK_COUNTS(s, "default", 9, 0, 0, 0, 0);
    CHECK_EQ(store_lent(s), 0);
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_READY);
    store_job_fini(&got);
    store_txn_abort(t);
    /* A smaller lend fits. */
    CHECK_EQ(lend_commit(s, qs, 1, 1, out, &n), CADRE_OK);
    CHECK_EQ(n, 1);
    blobs_free(out, n);
    CHECK_EQ(store_lent(s), 1);
    CHECK_COUNTS(s, "default", 8, 0, 1, 0, 0);
    store_close(s);
}

/* Where a job was dispatched goes with it: the first adopter notes its
 * lender, later loans keep that, and so do the result and failed records.
 * Three stores: a (VICTIM) dispatches, b (THIEF) steals, c steals from b. */
TEST(origin_follows_the_job)
{
    const char       *base = tap_tmpdir();
    char              adir[300], bdir[300], cdir[300];
    store            *a = open_sub(base, "a", adir, sizeof(adir));
    store            *b = open_sub(base, "b", bdir, sizeof(bdir));
    store            *c = open_sub(base, "c", cdir, sizeof(cdir));
    store_txn        *t = NULL;
    struct store_blob out[2], on[1];
    struct store_job  res[2], got;
    struct record_job r;
    const char *const qs[] = {"default"};
    cadre_job_id      id;
    size_t            n = 0, m = 0;
    int               dup = -1, st = -1;
    cd_err            err = {0};

    REQUIRE(a != NULL && b != NULL && c != NULL);
    REQUIRE(store_txn_begin(a, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(add(t, 2, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(a, qs, 1, 2, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 2);
    /* Dispatched at a: its transfer records name no origin. */
    REQUIRE(record_job_unpack(out[0].data, out[0].len, &r, &err) == CADRE_OK);
    CHECK_STR(r.origin, "");
    record_job_free(&r);

    /* b adopts from a: the origin is a. */
    REQUIRE(store_txn_begin(b, 0, &t, &err) == CADRE_OK);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(store_adopt(t, out[i].data, out[i].len, T0, VICTIM, &id, &dup,
                            &err) == CADRE_OK);
        CHECK_EQ(dup, 0);
    }
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_STR(got.origin, VICTIM);
    store_job_fini(&got);
    /* b lends job 1 on to c: the transfer record and b's loan keep a. */
    REQUIRE(store_lend(t, qs, 1, 1, T0, LEND_MS, "node-c", on, &m, &err) ==
            CADRE_OK);
    REQUIRE_EQ(m, 1);
    REQUIRE(record_job_unpack(on[0].data, on[0].len, &r, &err) == CADRE_OK);
    CHECK_EQ(idnum(&r.id), 1);
    CHECK_STR(r.origin, VICTIM);
    record_job_free(&r);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_STR(got.lent_to, "node-c");
    CHECK_STR(got.origin, VICTIM);
    store_job_fini(&got);
    /* b runs job 2 and it fails: the failed record keeps the origin. */
    REQUIRE(store_reserve(t, qs, 1, 1, T0 + 1, 1000, res, &m, &err) ==
            CADRE_OK);
    REQUIRE_EQ(m, 1);
    CHECK_EQ(idnum(&res[0].id), 2);
    CHECK_STR(res[0].origin, VICTIM);
    res[0].state = STORE_FAILED;
    res[0].error = cd_strdup("boom");
    REQUIRE(store_job_finish(t, &res[0], T0 + 2, &err) == CADRE_OK);
    store_job_fini(&res[0]);
    REQUIRE(store_failed_get(t, IDP(2), &got, &err) == CADRE_OK);
    CHECK_STR(got.origin, VICTIM);
    CHECK(got.lent_to == NULL);
    store_job_fini(&got);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    /* c adopts from b: the record's origin (a) wins over the lender. */
    REQUIRE(store_txn_begin(c, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, on[0].data, on[0].len, T0, THIEF, &id, &dup, &err) ==
            CADRE_OK);
    CHECK_EQ(dup, 0);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_STR(got.origin, VICTIM);
    store_job_fini(&got);
    /* c runs it: the result keeps the origin, for the node to send home. */
    REQUIRE(store_reserve(t, qs, 1, 1, T0 + 1, 1000, res, &m, &err) ==
            CADRE_OK);
    REQUIRE_EQ(m, 1);
    res[0].state = STORE_DONE;
    REQUIRE(store_job_finish(t, &res[0], T0 + 3, &err) == CADRE_OK);
    store_job_fini(&res[0]);
    REQUIRE(store_outcome(t, IDP(1), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    CHECK_STR(got.origin, VICTIM);
    CHECK(got.lent_to == NULL);
    store_job_fini(&got);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    /* After a reopen too. */
    store_close(b);
    REQUIRE((b = open_store(bdir)) != NULL);
    REQUIRE(store_txn_begin(b, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(1), &got, &err) == CADRE_OK);
    CHECK_STR(got.origin, VICTIM);
    store_job_fini(&got);
    REQUIRE(store_outcome(t, IDP(2), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    CHECK_STR(got.origin, VICTIM);
    store_job_fini(&got);
    store_txn_abort(t);
    /* A retry asked for at b is b's: its new outcome stays there. */
    REQUIRE(store_txn_begin(b, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_failed_retry(t, IDP(2), T0 + 9, &err) == CADRE_OK);
    REQUIRE(store_job_get(t, IDP(2), &got, &err) == CADRE_OK);
    CHECK(got.origin == NULL);
    store_job_fini(&got);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    blobs_free(out, n);
    blobs_free(on, 1);
    store_close(a);
    store_close(b);
    store_close(c);
}

/* A transfer record adopted without a lender's id (NULL or ""): the job has
 * no origin, or keeps its own. */
TEST(adopt_without_origin)
{
    char              dir[300];
    store            *s = open_sub(tap_tmpdir(), "thief", dir, sizeof(dir));
    store_txn        *t = NULL;
    struct record_job r;
    struct store_job  got;
    cadre_job_id      id;
    uint8_t           buf[512];
    int               dup = -1;
    cd_err            err = {0};

    REQUIRE(s != NULL);
    memset(&r, 0, sizeof(r));
    r.task = "echo";
    r.queue = "q";
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    r.id = mkid(1);
    REQUIRE(store_adopt(t, buf, record_job_pack(&r, buf), T0, NULL, &id, &dup,
                        &err) == CADRE_OK);
    r.id = mkid(2);
    REQUIRE(store_adopt(t, buf, record_job_pack(&r, buf), T0, "", &id, &dup,
                        &err) == CADRE_OK);
    r.id = mkid(3);
    r.origin = "node-z";
    REQUIRE(store_adopt(t, buf, record_job_pack(&r, buf), T0, NULL, &id, &dup,
                        &err) == CADRE_OK);
    for (unsigned i = 1; i <= 2; i++) {
        REQUIRE(store_job_get(t, IDP(i), &got, &err) == CADRE_OK);
        CHECK(got.origin == NULL);
        store_job_fini(&got);
    }
    REQUIRE(store_job_get(t, IDP(3), &got, &err) == CADRE_OK);
    CHECK_STR(got.origin, "node-z");
    store_job_fini(&got);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

/* The final state of job n of queue "q" as the node that ran it sends it
 * home (borrows static strings; never fini'd). */
static struct store_job
mkoutcome(unsigned n, int state)
{
    static uint8_t   payload[] = "payload";
    static uint8_t   result[] = "r";
    struct store_job j;

    memset(&j, 0, sizeof(j));
    j.id = mkid(n);
    j.task = (char *)"echo";
    j.queue = (char *)"q";
    j.payload = payload; /* not stored: the node that ran it keeps it */
    j.payload_len = sizeof(payload);
    j.state = state;
    j.attempts = 2;
    j.exceptions = state == STORE_FAILED ? 2 : 1;
    j.created_at_ms = T0 - 100;
    j.finished_at_ms = T0 - 7;
    j.result = result;
    j.result_len = 1;
    j.origin = (char *)VICTIM;
    j.lent_to = (char *)THIEF;
    j.seq = 77;
    j.lease = 78;
    if (state == STORE_FAILED) {
        j.error_type = (char *)"HandlerError";
        j.error = (char *)"boom";
    }
    return j;
}

/* Outcomes of jobs that ran elsewhere: DONE and FAILED go to the results
 * DB for store_outcome; the first outcome stays; a pending job, a result or
 * a failed record here refuses it; queue totals do not move. */
TEST(result_put_outcomes)
{
    char                     dir[300];
    store                   *s = open_sub(tap_tmpdir(), "a", dir, sizeof(dir));
    store_txn               *t = NULL;
    struct store_job         j, got, res[1];
    struct store_failed_scan sc = {.max = 8, .scan_max = 100};
    const char *const        qs[] = {"q"};
    cadre_queue_stats       *v = NULL;
    cadre_job_id             last;
    char                     longq[STORE_QUEUE_MAX + 2];
    size_t                   n = 0, m = 0;
    int                      st = -1, more = -1, dup = -1;
    cd_err                   err = {0};

    REQUIRE(s != NULL);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    j = mkoutcome(1, STORE_DONE);
    REQUIRE(store_result_put(t, &j, T0, &err) == CADRE_OK);
    j = mkoutcome(2, STORE_FAILED);
    REQUIRE(store_result_put(t, &j, T0, &err) == CADRE_OK);
    j = mkoutcome(3, STORE_DONE);
    j.finished_at_ms = 0; /* now_ms */
    REQUIRE(store_result_put(t, &j, T0 + 1, &err) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    /* Queue totals count jobs run here: no queue at all. */
    REQUIRE(store_stats(s, T0, &v, &n, &err) == CADRE_OK);
    CHECK_EQ(n, 0);
    cd_free(v);
    CHECK_EQ(store_pending(s), 0);

    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_outcome(t, IDP(1), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    CHECK_EQ(got.state, STORE_DONE);
    CHECK(got.result_len == 1 && got.result != NULL && got.result[0] == 'r');
    CHECK(got.payload == NULL);
    CHECK_EQ(got.attempts, 2);
    CHECK_EQ(got.exceptions, 1);
    CHECK_EQ(got.finished_at_ms, T0 - 7);
    CHECK_EQ(got.created_at_ms, T0 - 100);
    CHECK_STR(got.task, "echo");
    CHECK_STR(got.queue, "q");
    CHECK_STR(got.origin, VICTIM);
    CHECK(got.lent_to == NULL);
    CHECK_EQ(got.seq, 0);
    CHECK_EQ(got.lease, 0);
    store_job_fini(&got);
    REQUIRE(store_outcome(t, IDP(2), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    CHECK_EQ(got.state, STORE_FAILED);
    CHECK_STR(got.error_type, "HandlerError");
    CHECK_STR(got.error, "boom");
    CHECK(got.result == NULL);
    CHECK(got.payload == NULL);
    CHECK_EQ(got.exceptions, 2);
    store_job_fini(&got);
    REQUIRE(store_outcome(t, IDP(3), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    CHECK_EQ(got.finished_at_ms, T0 + 1);
    store_job_fini(&got);
    REQUIRE(store_outcome(t, IDP(2), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    /* The failed job is listed where it failed, not here. */
    REQUIRE(store_failed_list(t, &sc, 0, res, &m, &last, &more, &err) ==
            CADRE_OK);
    CHECK_EQ(m, 0);
    CHECK_EQ(store_failed_get(t, IDP(2), &got, &err), CADRE_ENOTFOUND);
    store_txn_abort(t);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    /* The first outcome stays: a second one (a duplicate run) is refused,
     * writing nothing, and the txn goes on. */
    j = mkoutcome(1, STORE_FAILED);
    CHECK_EQ(store_result_put(t, &j, T0 + 2, &err), CADRE_EEXISTS);
    CHECK_CONTAINS(err.msg, "a result has this id");
    j = mkoutcome(2, STORE_DONE);
    CHECK_EQ(store_result_put(t, &j, T0 + 2, &err), CADRE_EEXISTS);
    REQUIRE(store_outcome(t, IDP(1), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    REQUIRE(store_outcome(t, IDP(2), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    /* The id stays taken, as for any outcome: no dispatch, no retry. */
    j = mkjob(2, "q");
    REQUIRE(store_job_add(t, &j, T0, &dup, &err) == CADRE_OK);
    CHECK_EQ(dup, 1);
    CHECK_EQ(store_failed_retry(t, IDP(2), T0, &err), CADRE_ENOTFOUND);

    /* A job pending here (back after its loan expired): refused, and the
     * job stays as it was. */
    REQUIRE(add(t, 10, "q") != 0);
    j = mkoutcome(10, STORE_DONE);
    CHECK_EQ(store_result_put(t, &j, T0 + 2, &err), CADRE_EEXISTS);
    CHECK_CONTAINS(err.msg, "a pending job has this id");
    REQUIRE(store_outcome(t, IDP(10), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_PENDING);
    REQUIRE(store_job_get(t, IDP(10), &got, &err) == CADRE_OK);
    CHECK_EQ(got.state, STORE_READY);
    store_job_fini(&got);
    /* A job that failed here: refused, the failed record stays. */
    REQUIRE(add(t, 11, "q") != 0);
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, res, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    CHECK_EQ(idnum(&res[0].id), 10);
    store_job_fini(&res[0]);
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, res, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    CHECK_EQ(idnum(&res[0].id), 11);
    res[0].state = STORE_FAILED;
    REQUIRE(store_job_finish(t, &res[0], T0 + 3, &err) == CADRE_OK);
    store_job_fini(&res[0]);
    j = mkoutcome(11, STORE_DONE);
    CHECK_EQ(store_result_put(t, &j, T0 + 4, &err), CADRE_EEXISTS);
    CHECK_CONTAINS(err.msg, "a failed job has this id");
    REQUIRE(store_outcome(t, IDP(11), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_FAILED);
    CHECK(got.payload != NULL); /* the local failed record */
    store_job_fini(&got);

    /* Bad input: nothing written, the txn goes on. */
    j = mkoutcome(20, STORE_READY);
    CHECK_EQ(store_result_put(t, &j, T0, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "put outcome of");
    j = mkoutcome(20, STORE_DONE);
    j.task = NULL;
    CHECK_EQ(store_result_put(t, &j, T0, &err), CADRE_EINVAL);
    memset(longq, 'q', sizeof(longq) - 1);
    longq[sizeof(longq) - 1] = '\0';
    j = mkoutcome(20, STORE_DONE);
    j.queue = longq;
    CHECK_EQ(store_result_put(t, &j, T0, &err), CADRE_EINVAL);
    REQUIRE(store_outcome(t, IDP(20), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_UNKNOWN);
    /* Totals count what ran here only: job 11. */
    CHECK_COUNTS(s, "q", 0, 0, 1, 0, 1);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_COUNTS(s, "q", 0, 0, 1, 0, 1);

    /* A read txn cannot put. */
    REQUIRE(store_txn_begin(s, 1, &t, &err) == CADRE_OK);
    j = mkoutcome(21, STORE_DONE);
    CHECK_EQ(store_result_put(t, &j, T0, &err), CADRE_EINVAL);
    store_txn_abort(t);
    store_close(s);
}

/* Outcomes from elsewhere are pruned after result_ttl_ms like local
 * results, counted from their arrival (the other node's clock may lag). */
TEST(result_put_pruned)
{
    struct store_config cfg = {
        .dir = tap_tmpdir(), .sync = STORE_SYNC_OFF, .result_ttl_ms = 1000};
    store            *s = NULL;
    store_txn        *t = NULL;
    struct store_job  j, res[1];
    const char *const qs[] = {"q"};
    size_t            m = 0, pruned = 9;
    int               st = -1;
    cd_err            err = {0};

    REQUIRE(store_open(&cfg, &s, &err) == CADRE_OK);
    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    j = mkoutcome(1, STORE_DONE);
    j.finished_at_ms = T0 - 5000; /* long before it got here */
    REQUIRE(store_result_put(t, &j, T0, &err) == CADRE_OK);
    j = mkoutcome(2, STORE_FAILED);
    REQUIRE(store_result_put(t, &j, T0, &err) == CADRE_OK);
    REQUIRE(add(t, 3, "q") != 0); /* a local one, finished at T0 */
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, res, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    res[0].state = STORE_DONE;
    REQUIRE(store_job_finish(t, &res[0], T0, &err) == CADRE_OK);
    store_job_fini(&res[0]);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    REQUIRE(store_txn_begin(s, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_prune_results(t, T0 + 999, 10, &pruned, &err) == CADRE_OK);
    CHECK_EQ(pruned, 0);
    REQUIRE(store_outcome(t, IDP(1), &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    REQUIRE(store_prune_results(t, T0 + 1000, 10, &pruned, &err) == CADRE_OK);
    CHECK_EQ(pruned, 3);
    for (unsigned i = 1; i <= 3; i++) {
        REQUIRE(store_outcome(t, IDP(i), &st, NULL, &err) == CADRE_OK);
        CHECK_EQ(st, CADRE_UNKNOWN);
    }
    CHECK_COUNTS(s, "q", 0, 0, 0, 1, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    store_close(s);
}

/* The outcome arrives before the loan to the node that ran it is settled:
 * the job is still pending (lent) here, so the put is refused; settling
 * first, as store.h tells the node to, lets it in. */
TEST(result_put_before_settle)
{
    const char       *base = tap_tmpdir();
    char              adir[300], bdir[300];
    store            *a = open_sub(base, "a", adir, sizeof(adir));
    store            *b = open_sub(base, "b", bdir, sizeof(bdir));
    store_txn        *t = NULL;
    struct store_blob out[1];
    struct store_job  res[1], got;
    const char *const qs[] = {"default"};
    cadre_job_id      id;
    size_t            n = 0, m = 0, settled = 0;
    int               dup = -1, st = -1;
    cd_err            err = {0};

    REQUIRE(a != NULL && b != NULL);
    REQUIRE(store_txn_begin(a, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(a, qs, 1, 1, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 1);

    REQUIRE(store_txn_begin(b, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, out[0].data, out[0].len, T0, VICTIM, &id, &dup,
                        &err) == CADRE_OK);
    REQUIRE(store_reserve(t, qs, 1, 1, T0, 1000, res, &m, &err) == CADRE_OK);
    REQUIRE_EQ(m, 1);
    res[0].state = STORE_DONE;
    res[0].result = cd_memdup("42", 2);
    res[0].result_len = 2;
    REQUIRE(store_job_finish(t, &res[0], T0 + 1, &err) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_STR(res[0].origin, VICTIM); /* b sends it home */

    REQUIRE(store_txn_begin(a, 0, &t, &err) == CADRE_OK);
    CHECK_EQ(store_result_put(t, &res[0], T0 + 2, &err), CADRE_EEXISTS);
    REQUIRE(store_lend_settle(t, &id, 1, THIEF, &settled, &err) == CADRE_OK);
    CHECK_EQ(settled, 1);
    REQUIRE(store_result_put(t, &res[0], T0 + 2, &err) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_lent(a), 0);
    CHECK_EQ(store_pending(a), 0);
    CHECK_COUNTS(a, "default", 0, 0, 0, 0, 0);

    REQUIRE(store_txn_begin(a, 1, &t, &err) == CADRE_OK);
    REQUIRE(store_outcome(t, IDP(1), &st, &got, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_DONE);
    CHECK(got.result_len == 2 && memcmp(got.result, "42", 2) == 0);
    CHECK_EQ(got.finished_at_ms, T0 + 1);
    store_job_fini(&got);
    store_txn_abort(t);
    store_job_fini(&res[0]);
    blobs_free(out, n);
    store_close(a);
    store_close(b);
}

/* A job that moved away (settled: a placeholder here) and is lent back
 * runs here again: adopted, not taken for a duplicate (that would settle
 * and delete the thief's only copy). */
TEST(moved_job_comes_back)
{
    const char       *base = tap_tmpdir();
    char              adir[300], bdir[300];
    store            *a = open_sub(base, "a", adir, sizeof(adir));
    store            *b = open_sub(base, "b", bdir, sizeof(bdir));
    store_txn        *t = NULL;
    struct store_blob out[1], back[1];
    const char *const qs[] = {"default"};
    cadre_job_id      id;
    size_t            n = 0, k = 0, settled = 0;
    int               dup = -1, st = -1;
    cd_err            err = {0};

    REQUIRE(a != NULL && b != NULL);
    REQUIRE(store_txn_begin(a, 0, &t, &err) == CADRE_OK);
    REQUIRE(add(t, 1, "default") != 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(lend_commit(a, qs, 1, 1, out, &n) == CADRE_OK);
    REQUIRE_EQ(n, 1);
    REQUIRE(store_txn_begin(b, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_adopt(t, out[0].data, out[0].len, T0, VICTIM, &id, &dup,
                        &err) == CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE(store_txn_begin(a, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_lend_settle(t, &id, 1, THIEF, &settled, &err) == CADRE_OK);
    REQUIRE_EQ(settled, 1);
    REQUIRE(store_outcome(t, &id, &st, NULL, &err) == CADRE_OK);
    CHECK_EQ(st, CADRE_PENDING); /* moved, not unknown */
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);

    /* b lends it back to a. */
    REQUIRE(store_txn_begin(b, 0, &t, &err) == CADRE_OK);
    REQUIRE(store_lend(t, qs, 1, 1, T0, 1000, VICTIM, back, &k, &err) ==
            CADRE_OK);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    REQUIRE_EQ(k, 1);
    REQUIRE(store_txn_begin(a, 0, &t, &err) == CADRE_OK);
    dup = -1;
    REQUIRE(store_adopt(t, back[0].data, back[0].len, T0, THIEF, &id, &dup,
                        &err) == CADRE_OK);
    CHECK_EQ(dup, 0);
    REQUIRE(store_txn_commit(t, &err) == CADRE_OK);
    CHECK_EQ(store_pending(a), 1);
    CHECK_COUNTS(a, "default", 1, 0, 0, 0, 0);
    blobs_free(out, n);
    blobs_free(back, k);
    store_close(a);
    store_close(b);
}

int
main(void)
{
    TAP_RUN(T(moved_job_comes_back), T(lend_fifo_skips_paused_and_unique),
            T(transfer_record_is_the_thiefs_job), T(lend_adopt_settle),
            T(settle_only_loans), T(adopt_rejects_garbage),
            T(adopt_unique_and_delayed), T(expired_loan_back_in_place),
            T(loan_survives_reopen), T(abort_undoes_lend),
            T(adopt_of_own_loan_cancels_it), T(finish_of_lent_job),
            T(allocation_faults), T(allocation_faults_commit), T(map_full_lend),
            T(origin_follows_the_job), T(adopt_without_origin),
            T(result_put_outcomes), T(result_put_pruned),
            T(result_put_before_settle));
}
