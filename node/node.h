/* node.h: the daemon. node_run wires config, keys, store, api, dispatch,
 * waits and the worker pool onto one libuv loop that owns all state, and
 * runs until SIGTERM/SIGINT (graceful: intake stops, running jobs finish
 * within shutdown_grace_ms, exit 0).
 *
 * On start it prints one line on stdout that tests and scripts wait for:
 *   cadre node ready api=<bound url> data=<dir> pid=<pid>
 *
 * Threads: call from the main thread; it becomes the loop thread. */
#ifndef NODE_NODE_H
#define NODE_NODE_H

#include "common/err.h"
#include "node/config.h"

/* Returns CADRE_OK after a clean stop. Errors at start: CADRE_EBUSY (data
 * dir locked by another node, address in use), CADRE_EIO (data dir not
 * writable), CADRE_ECONFIG (key missing or refused), store errors. */
int node_run(const struct node_config *cfg, cd_err *err);

#endif
