/* waits.h: clients parked on cadre_wait until their jobs finish. An index by
 * job id finds the waiters of a job that just finished; each wait replies
 * once, when its last job finishes or at its deadline.
 *
 * Threads: loop thread only. */
#ifndef NODE_WAITS_H
#define NODE_WAITS_H

#include <stdint.h>

#include "node/api.h"
#include "node/turn.h"
#include "proto/msg.h"
#include "store/store.h"

struct waits;

int  waits_new(struct waits **out);
void waits_free(struct waits *ws); /* drops parked requests */
int  waits_empty(const struct waits *ws);

/* Handles a Wait request inside turn t: answers at once (deferred to the
 * commit) if every job is final, else parks it until timeout. */
int waits_add(struct waits *ws, struct turn *t, struct turn_sealer *s,
              struct api_req *r, int role, uint64_t request_id,
              const struct msg_wait *w, uint64_t now_mono_ms);

/* After a commit: the jobs of t->finished are final; replies to waits that
 * are now complete. */
void waits_notify(struct waits *ws, struct turn *t, struct turn_sealer *s);

/* Replies to waits whose deadline passed (with their jobs still pending),
 * or to all if all is set (shutdown). Returns the earliest deadline left. */
uint64_t waits_expire(struct waits *ws, struct turn_sealer *s,
                      uint64_t now_mono_ms, int all);

#endif
