/* worker.h: the worker module's front header. The worker itself is the public
 * cadre_worker_* API (cadre/cadre.h); this adds what the `cadre worker`
 * command needs beyond it and the loop's pure policies (no clock, no I/O), so
 * they can be tested alone. A cadre_worker belongs to the thread that runs
 * it; only cadre_worker_stop may be called from elsewhere (a signal handler).
 */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"

#define WORKER_PREFETCH_DEFAULT 64
/* A fetch asks for about this much work (by the average job time so far),
 * so fast jobs come in batches and slow ones one at a time: a worker never
 * hoards slow jobs that an idle worker could run. */
#define WORKER_BATCH_BUDGET_US 10000
#define WORKER_SLEEP_DEFAULT_MS 1000 /* long-poll time of a fetch */
#define WORKER_REPORT_AFTER_MS 2     /* outcomes wait at most this long */
#define WORKER_REPLY_SLACK_MS 5000   /* receive timeout = wait_ms + this */
#define WORKER_SEND_TIMEOUT_MS 1000  /* waiting for a connection to the node */
#define WORKER_RECONNECT_MS 100      /* nng redials a lost node this often */
#define WORKER_BACKOFF_MIN_MS 100
#define WORKER_BACKOFF_MAX_MS 2000
#define WORKER_FINAL_TRIES 3 /* attempts at the last report when stopping */

/* Exit status of a worker process whose plugin handler overran its timeout:
 * a function cannot be killed apart from its process, so the watchdog
 * reports the job as TimedOut (and returns the others) and exits, as
 * timeout(1) does. Its supervisor restarts it. */
#define WORKER_EXIT_TIMEOUT 124

/* Sets the long-poll time of a fetch (`--sleep`); 0 polls without waiting.
 * Call before cadre_worker_run. */
void worker_set_sleep_ms(cadre_worker *w, uint32_t sleep_ms);

/* The message of the last failed call on w, with its context chain; "" if
 * none. Valid until the next call on w. */
const char *worker_errmsg(const cadre_worker *w);

/* The next backoff after a failed request: 100 ms, doubling, at most 2 s. */
uint32_t worker_backoff_next(uint32_t cur_ms);

/* How many jobs to ask for now: prefetch less what is held, and no more than
 * max_jobs (0: no limit) leaves to run. */
uint32_t worker_fetch_max(uint32_t prefetch, uint32_t max_jobs,
                          uint64_t jobs_started, size_t held_n);

/* The batch a fetch may ask for: prefetch, cut to WORKER_BATCH_BUDGET_US of
 * work at the average job time so far; prefetch before any job has run. */
uint32_t worker_batch_cap(uint32_t prefetch, uint64_t avg_job_us,
                          uint64_t jobs_run);

/* The running average of job times (an EWMA weighting the new one 1/8). */
uint64_t worker_avg_next(uint64_t avg_us, uint64_t job_us, uint64_t jobs_run);

/* Whether pending outcomes should be sent now: when nothing is held (the
 * next fetch carries them) or the oldest waited WORKER_REPORT_AFTER_MS. */
int worker_should_report(size_t held_n, size_t outcomes_n,
                         uint64_t oldest_mono_ms, uint64_t now_mono_ms);

#endif
