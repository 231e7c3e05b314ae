/* test_mw.c: job middleware's data path and pure parts: JobMiddleware in a
 * Dispatch's JobOptions and in a worker's Job survives msg_pack/unpack, and
 * in a JobRecord record_job_pack/unpack; a job without middleware encodes
 * exactly as before; the worker's overlap-lock ttl. */
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"
#include "proto/record.h"
#include "tests/lib/tap.h"
#include "worker/mw.h"

static int
roundtrip(const struct msg *m, struct msg *out)
{
    size_t   n = msg_packed_size(m), len = 0;
    uint8_t *buf = malloc(n ? n : 1);
    int      rc = n == 0 ? CADRE_EINVAL : msg_pack(m, buf, n, &len);

    if (rc == CADRE_OK)
        rc = msg_unpack(buf, len, out);
    free(buf);
    return rc;
}

static const struct msg_middleware full = {.rate_key = "api",
                                           .rate_limit = 5,
                                           .rate_per_ms = 1000,
                                           .overlap_key = "report-7",
                                           .overlap_ttl_ms = 30000,
                                           .exc_key = "mailer",
                                           .exc_limit = 10,
                                           .exc_per_ms = 600000};

static void
check_mw(const struct msg_middleware *mw)
{
    CHECK_STR(mw->rate_key, "api");
    CHECK_EQ(mw->rate_limit, 5);
    CHECK_EQ(mw->rate_per_ms, 1000);
    CHECK_STR(mw->overlap_key, "report-7");
    CHECK_EQ(mw->overlap_ttl_ms, 30000);
    CHECK_STR(mw->exc_key, "mailer");
    CHECK_EQ(mw->exc_limit, 10);
    CHECK_EQ(mw->exc_per_ms, 600000);
}

TEST(dispatch_and_job_carry_middleware)
{
    struct msg_new_job nj = {.task = "t"};
    struct msg_job     j = {.task = "t", .queue = "default"};
    struct msg         m = {.kind = MSG_DISPATCH}, out;
    size_t             plain;

    m.u.dispatch.jobs = &nj;
    m.u.dispatch.jobs_n = 1;
    plain = msg_packed_size(&m);
    nj.opts.mw = (struct msg_middleware){.rate_key = ""};
    CHECK_EQ(msg_packed_size(&m), plain); /* empty keys: nothing sent */
    nj.opts.mw = full;
    CHECK(msg_packed_size(&m) > plain);
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    check_mw(&out.u.dispatch.jobs[0].opts.mw);
    msg_free(&out);

    memset(&m, 0, sizeof(m));
    m.kind = MSG_JOBS;
    m.u.jobs.jobs = &j;
    m.u.jobs.jobs_n = 1;
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    CHECK(out.u.jobs.jobs[0].mw.rate_key == NULL);
    msg_free(&out);
    j.mw = full;
    REQUIRE_EQ(roundtrip(&m, &out), CADRE_OK);
    check_mw(&out.u.jobs.jobs[0].mw);
    msg_free(&out);
}

TEST(records_keep_middleware)
{
    struct record_job r = {.task = "t", .queue = "q"}, out;
    uint8_t           buf[512];
    size_t            plain = record_job_size(&r), len;
    cd_err            err;

    memset(r.id.b, 7, sizeof(r.id.b));
    r.mw = full;
    REQUIRE(record_job_size(&r) <= sizeof(buf));
    len = record_job_pack(&r, buf);
    CHECK(len > plain);
    REQUIRE_EQ(record_job_unpack(buf, len, &out, &err), CADRE_OK);
    check_mw(&out.mw);
    record_job_free(&out);

    memset(&r.mw, 0, sizeof(r.mw));
    CHECK_EQ(record_job_size(&r), plain);
    len = record_job_pack(&r, buf);
    REQUIRE_EQ(record_job_unpack(buf, len, &out, &err), CADRE_OK);
    CHECK_STR(out.mw.rate_key, ""); /* decoded strings are never NULL */
    CHECK_STR(out.mw.overlap_key, "");
    CHECK_STR(out.mw.exc_key, "");
    record_job_free(&out);
}

TEST(overlap_ttl)
{
    struct msg_job j = {0};

    CHECK(!mw_any(&j));
    CHECK_EQ(mw_overlap_ttl_ms(&j), MW_OVERLAP_TTL_DEFAULT_MS);
    j.timeout_ms = 2000;
    CHECK_EQ(mw_overlap_ttl_ms(&j), 2000 + MW_OVERLAP_TTL_MARGIN_MS);
    j.mw.overlap_ttl_ms = 700;
    CHECK_EQ(mw_overlap_ttl_ms(&j), 700);
    j.mw.exc_key = "";
    CHECK(!mw_any(&j));
    j.mw.overlap_key = "k";
    CHECK(mw_any(&j));
}

int
main(void)
{
    TAP_RUN(T(dispatch_and_job_carry_middleware), T(records_keep_middleware),
            T(overlap_ttl));
}
