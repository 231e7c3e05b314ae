/* pool.h: the node's own worker processes. Starts N `cadre worker`
 * processes (uv_spawn of this executable), restarts one that exits with a
 * growing delay (100 ms doubling to 10 s; reset after 10 s of good running),
 * and stops them gracefully (SIGTERM: finish the current job) or hard.
 *
 * Threads: loop thread only. */
#ifndef NODE_POOL_H
#define NODE_POOL_H

#include <stddef.h>
#include <uv.h>

#include "common/err.h"

struct pool;

/* argv is the worker command line (argv[0] = executable), copied. */
int pool_start(struct pool **out, uv_loop_t *loop, char *const *argv,
               size_t workers, cd_err *err);
/* SIGTERM to every worker; none is restarted after this. */
void pool_stop(struct pool *p);
/* Replaces every running worker gracefully: SIGTERM (it finishes its
 * current job and gives back what it held), then a fresh process at once,
 * which loads the plugins again. Returns the number signalled. */
size_t pool_restart(struct pool *p);
/* SIGKILL to every worker still running. */
void     pool_kill(struct pool *p);
size_t   pool_alive(const struct pool *p);
uint64_t pool_restarts(const struct pool *p);
/* Frees the pool once no worker runs (closes handles). Accepts NULL. */
void pool_close(struct pool *p);

#endif
