/* bounded.h: run a call that may never return, for at most a while.
 *
 * nng 1.5.2's nng_close can deadlock (nanomsg/nng#1543, not fixed in any
 * release Debian has): the caller would hang for good at shutdown. Library
 * and daemon code closes sockets through cd_run_bounded instead, so that a
 * stuck close costs one parked thread, not the process.
 *
 * Threads: any. */
#ifndef COMMON_BOUNDED_H
#define COMMON_BOUNDED_H

#include <stddef.h>
#include <stdint.h>

/* Copies arg_len bytes of arg, runs fn(copy) on a new detached thread and
 * waits up to timeout_ms for it. Returns 1 if it finished in time, 0 if it
 * is still running (it goes on alone; the copy is freed when it ends).
 * If no thread can be started, fn runs on the caller's thread (returns 1). */
int cd_run_bounded(void (*fn)(void *arg), const void *arg, size_t arg_len,
                   uint64_t timeout_ms);

#endif
