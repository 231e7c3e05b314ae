/* intake.h: the node's intake of work: Dispatch (durable jobs) and Run
 * (fan-outs whose caller waits). Checks what the node's limits allow
 * (task and queue names, payload size, timeouts below retry_after, unique
 * ids) and refuses a whole request with a clear error if one part is bad.
 *
 * Threads: loop thread only. */
#ifndef NODE_INTAKE_H
#define NODE_INTAKE_H

#include "node/api.h"
#include "node/config.h"
#include "node/runs.h"
#include "node/turn.h"
#include "node/uniq.h"
#include "proto/msg.h"

/* What intake needs of the node, borrowed for one call. */
struct intake {
    const struct node_config *cfg;
    struct turn_sealer       *sealer;
    struct runs              *runs;
    int                       stopping;
};

/* Stores the jobs of a Dispatch in t (unique duplicates answered with the
 * holder's id) and defers the reply to t's commit. m stays the caller's. */
void intake_dispatch(const struct intake *in, struct turn *t, struct api_req *r,
                     int role, const struct msg *m);
/* intake_dispatch with the leader's verdicts on unique jobs' keys (one per
 * job; node/uniq.h): a job whose key another job holds is answered as a
 * duplicate of that job and not stored. v NULL: none asked. */
void intake_dispatch_v(const struct intake *in, struct turn *t,
                       struct api_req *r, int role, const struct msg *m,
                       const struct uniq_verdict *v);
/* 1 if the dispatch m passes intake's checks (nothing is stored): only
 * then are its unique keys worth asking the leader for. */
int intake_dispatch_ok(const struct intake *in, const struct msg *m);

/* Checks a Run and hands it (and m: ownership moves) to runs. from_peer: a
 * sub-run another node spread here, never spread again. */
void intake_run(const struct intake *in, struct api_req *r, int role,
                struct msg *m, int from_peer);

#endif
