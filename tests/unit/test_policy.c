/* test_policy.c: the retry decisions (node/policy), pure functions. */
#include "node/policy.h"
#include "tests/lib/tap.h"

static struct store_job
job_with(uint32_t tries, uint32_t attempts, uint32_t *backoff, size_t n)
{
    struct store_job j = {0};

    j.opts.tries = tries;
    j.attempts = attempts;
    j.opts.backoff_s = backoff;
    j.opts.backoff_n = n;
    return j;
}

TEST(backoff_list_last_value_repeats)
{
    uint32_t         b[] = {1, 5, 10};
    struct store_job j = job_with(10, 1, b, 3);

    CHECK_EQ(policy_backoff_ms(&j.opts, 1), 1000);
    CHECK_EQ(policy_backoff_ms(&j.opts, 2), 5000);
    CHECK_EQ(policy_backoff_ms(&j.opts, 3), 10000);
    CHECK_EQ(policy_backoff_ms(&j.opts, 9), 10000);
    j.opts.backoff_n = 0;
    CHECK_EQ(policy_backoff_ms(&j.opts, 1), 0);
}

TEST(error_retries_until_tries_run_out)
{
    uint32_t               b[] = {2};
    struct store_job       j = job_with(3, 1, b, 1);
    struct policy_decision d;

    policy_after_error(&j, 1000, &d);
    CHECK_EQ(d.action, POLICY_RETRY);
    CHECK_EQ(d.available_at_ms, 3000);
    j.attempts = 3;
    policy_after_error(&j, 1000, &d);
    CHECK_EQ(d.action, POLICY_FAIL);
    CHECK(d.error_type == NULL); /* the handler's own error stands */
}

TEST(max_exceptions_fails_early)
{
    struct store_job       j = job_with(10, 2, NULL, 0);
    struct policy_decision d;

    j.opts.max_exceptions = 2;
    j.exceptions = 2;
    policy_after_error(&j, 0, &d);
    CHECK_EQ(d.action, POLICY_FAIL);
    CHECK_STR(d.error_type, "MaxExceptionsExceeded");
}

TEST(retry_until_bounds_unlimited_tries)
{
    uint32_t               b[] = {10};
    struct store_job       j = job_with(0, 50, b, 1);
    struct policy_decision d;

    j.opts.retry_until_ms = 20000;
    policy_after_error(&j, 5000, &d); /* next attempt at 15 s: allowed */
    CHECK_EQ(d.action, POLICY_RETRY);
    policy_after_error(&j, 12000, &d); /* next at 22 s: past the deadline */
    CHECK_EQ(d.action, POLICY_FAIL);
    CHECK_STR(d.error_type, "RetryUntilExpired");
}

TEST(release_and_expiry_count_attempts)
{
    struct store_job       j = job_with(2, 1, NULL, 0);
    struct policy_decision d;

    policy_after_release(&j, 500, 100, &d);
    CHECK_EQ(d.action, POLICY_RETRY);
    CHECK_EQ(d.available_at_ms, 600);
    policy_after_expiry(&j, 100, &d);
    CHECK_EQ(d.action, POLICY_RETRY);
    CHECK_EQ(d.available_at_ms, 100);
    j.attempts = 2;
    policy_after_expiry(&j, 100, &d);
    CHECK_EQ(d.action, POLICY_FAIL);
    CHECK_STR(d.error_type, "MaxAttemptsExceeded");
    policy_after_release(&j, 0, 100, &d);
    CHECK_EQ(d.action, POLICY_FAIL);
}

int
main(void)
{
    TAP_RUN(T(backoff_list_last_value_repeats),
            T(error_retries_until_tries_run_out), T(max_exceptions_fails_early),
            T(retry_until_bounds_unlimited_tries),
            T(release_and_expiry_count_attempts));
}
