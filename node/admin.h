/* admin.h: operator requests on the api socket: failed jobs (list, show,
 * retry, forget, flush, prune) and queues (clear, pause, resume, monitor).
 * Each request runs inside the current turn's store transaction and its
 * reply goes out after the commit, like every other reply.
 *
 * Threads: loop thread only. */
#ifndef NODE_ADMIN_H
#define NODE_ADMIN_H

#include "node/api.h"
#include "node/turn.h"
#include "proto/msg.h"

struct admin;

int  admin_new(struct admin **out);
void admin_free(struct admin *a); /* accepts NULL */

/* Handles m if it is an admin request: seals the reply (or an error) into r,
 * defers it in t, and returns 1. Returns 0, touching nothing, for any other
 * message kind. */
int admin_handle(struct admin *a, struct turn *t, struct turn_sealer *s,
                 struct api_req *r, int role, const struct msg *m);

#endif
