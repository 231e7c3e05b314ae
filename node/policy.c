/* policy.c: retry, backoff and failure decisions. Pure: see policy.h. */
#include "node/policy.h"

#include <stddef.h>

uint64_t
policy_backoff_ms(const struct store_job_opts *opts, uint32_t attempt)
{
    size_t i;

    if (opts->backoff_n == 0 || attempt == 0)
        return 0;
    i = attempt - 1;
    if (i >= opts->backoff_n)
        i = opts->backoff_n - 1;
    return (uint64_t)opts->backoff_s[i] * 1000u;
}

/* Out of tries: tries = 0 means unlimited (only allowed with retry_until). */
static int
policy_out_of_tries(const struct store_job *job)
{
    return job->opts.tries != 0 && job->attempts >= job->opts.tries;
}

static int
policy_past_deadline(const struct store_job *job, uint64_t at_ms)
{
    return job->opts.retry_until_ms != 0 && at_ms >= job->opts.retry_until_ms;
}

static void
policy_retry_or_fail(const struct store_job *job, uint64_t at_ms,
                     const char *fail_type, struct policy_decision *d)
{
    d->available_at_ms = at_ms;
    d->error_type = NULL;
    if (policy_out_of_tries(job)) {
        d->action = POLICY_FAIL;
        d->error_type = fail_type;
    } else if (policy_past_deadline(job, at_ms)) {
        d->action = POLICY_FAIL;
        d->error_type = "RetryUntilExpired";
    } else {
        d->action = POLICY_RETRY;
    }
}

void
policy_after_error(const struct store_job *job, uint64_t now_ms,
                   struct policy_decision *d)
{
    uint64_t at = now_ms + policy_backoff_ms(&job->opts, job->attempts);

    if (job->opts.max_exceptions != 0 &&
        job->exceptions >= job->opts.max_exceptions) {
        d->action = POLICY_FAIL;
        d->available_at_ms = now_ms;
        d->error_type = "MaxExceptionsExceeded";
        return;
    }
    /* The handler's own error is the failure reason when tries run out. */
    policy_retry_or_fail(job, at, NULL, d);
}

void
policy_after_release(const struct store_job *job, uint64_t delay_ms,
                     uint64_t now_ms, struct policy_decision *d)
{
    policy_retry_or_fail(job, now_ms + delay_ms, "MaxAttemptsExceeded", d);
}

void
policy_after_expiry(const struct store_job *job, uint64_t now_ms,
                    struct policy_decision *d)
{
    policy_retry_or_fail(job, now_ms, "MaxAttemptsExceeded", d);
}
