/* policy.h: the decisions about a job's next attempt, as pure functions of
 * the job record, the outcome and now_ms (no clocks, no I/O), so they are
 * unit-tested directly. Laravel's queue semantics: tries, backoff list (the
 * last value repeats), retry_until, max_exceptions. */
#ifndef NODE_POLICY_H
#define NODE_POLICY_H

#include <stdint.h>

#include "store/store.h"

enum policy_action {
    POLICY_RETRY = 1, /* back to the queue at available_at_ms */
    POLICY_FAIL = 2,  /* to the failed-job store */
};

struct policy_decision {
    int      action; /* enum policy_action */
    uint64_t available_at_ms;
    const char
        *error_type; /* POLICY_FAIL when the policy (not the handler)
                        ended it, e.g. "MaxAttemptsExceeded"; else NULL */
};

/* The delay before retry number `attempt` (the attempt that just failed,
 * from 1): backoff_s[attempt-1], the last value repeating; 0 if none. */
uint64_t policy_backoff_ms(const struct store_job_opts *opts, uint32_t attempt);

/* After a handler error. job->attempts and job->exceptions already count
 * this attempt. */
void policy_after_error(const struct store_job *job, uint64_t now_ms,
                        struct policy_decision *d);

/* After a release(delay): the attempt counts; retried unless out of tries or
 * past retry_until. */
void policy_after_release(const struct store_job *job, uint64_t delay_ms,
                          uint64_t now_ms, struct policy_decision *d);

/* A reservation whose lease expired (the worker vanished): rerun at once
 * unless the attempt was the last one. */
void policy_after_expiry(const struct store_job *job, uint64_t now_ms,
                         struct policy_decision *d);

#endif
