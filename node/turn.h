/* turn.h: one group commit. Everything the loop handles in one turn (the
 * requests queued since the last turn, due timers) shares one store write
 * transaction; replies are sealed as they are made but sent only after the
 * commit, and turned into error replies if it fails. Jobs that finished in
 * the turn are kept so waiters hear of them after the commit, and job events
 * are kept so that only committed ones are published.
 *
 * Threads: loop thread only. */
#ifndef NODE_TURN_H
#define NODE_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "node/api.h"
#include "proto/wire.h"
#include "store/store.h"

/* Seals replies for each role that may speak on the api socket. */
struct turn_sealer {
    struct wire_sender senders[KEYS_ROLE_COUNT];
    size_t             max_frame;
};

struct turn_reply {
    struct api_req *req;
    int             role;
    uint64_t        request_id;
};

/* A job event of this turn (node/events.h). The strings point into strs,
 * one owned block. */
struct turn_event {
    int          kind; /* enum msg_event_kind */
    cadre_job_id id;
    uint32_t     attempt;
    const char  *task, *queue, *error_type;
    char        *strs;
};

struct turn {
    store             *store;
    store_txn         *txn;
    uint64_t           now_ms;
    int                dirty; /* something was written: commit, else abort */
    struct turn_reply *replies;
    size_t             replies_n, replies_cap;
    struct store_job  *finished; /* owned copies, for waiters */
    size_t             finished_n, finished_cap;
    int                keep_finished;
    int                keep_events; /* someone may listen: collect events */
    struct turn_event *events;
    size_t             events_n, events_cap;
};

/* Seals m into r->msg (resized). If m does not fit the frame limit, seals an
 * error reply instead. Returns CADRE_ENOMEM if no message could be made (r is
 * then dropped by the caller). */
int turn_seal(struct turn_sealer *s, struct api_req *r, int role,
              const struct msg *m);
/* Seals an error reply for request_id. */
int turn_seal_error(struct turn_sealer *s, struct api_req *r, int role,
                    uint64_t request_id, int code, const char *message);

void turn_init(struct turn *t, store *st, store_txn *txn, uint64_t now_ms);
/* Queues an already sealed reply to go out after the commit. Returns
 * CADRE_ENOMEM (the reply is then sent at once). */
int turn_defer(struct turn *t, struct api_req *r, int role,
               uint64_t request_id);
/* Records a finished job (moves *job into the turn; *job is zeroed). */
void turn_finished(struct turn *t, struct store_job *job);
/* Records a job event if t->keep_events is set, copying the strings (NULL
 * reads as ""). Out of memory, the event is dropped (and logged): events
 * are a notification, never the record. */
void turn_event(struct turn *t, int kind, const cadre_job_id *id,
                const char *task, const char *queue, uint32_t attempt,
                const char *error_type);
/* Sends queued replies; if ok is 0, replaces each with an error reply made
 * from code and message first. */
void turn_flush(struct turn *t, struct turn_sealer *s, int ok, int code,
                const char *message);
void turn_fini(struct turn *t);

#endif
