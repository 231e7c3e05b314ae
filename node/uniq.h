/* uniq.h: unique jobs made cluster-wide (nodes with --voters). A node's
 * store keeps a unique key only for its own jobs (store/unique.c); with a
 * leader, a dispatch of unique jobs first takes each job's key in the
 * leader's FSM (UNIQUE_TAKE, owner = the job id, ttl = unique_for), so a
 * second dispatch of the same key at any node gets the holder's id back as
 * a duplicate. The key is released (UNIQUE_RELEASE) once the job's final
 * state commits (done, or failed for good), or once it starts for
 * unique_until_processing jobs; releases that find no leader are retried.
 *
 * The dispatch request is parked while the leader answers: uniq_park takes
 * it (decoded), and uniq_take_ready hands it back in a later turn with a
 * verdict per job, for intake to store or refuse. No leader: the request
 * fails with CADRE_EBUSY ("no leader"), nothing is stored.
 *
 * Threads: the node's loop thread. */
#ifndef NODE_UNIQ_H
#define NODE_UNIQ_H

#include <stddef.h>
#include <stdint.h>

#include "node/api.h"
#include "node/coord.h"
#include "proto/msg.h"
#include "store/store.h"

/* What the leader said of one job of a parked dispatch. */
struct uniq_verdict {
    int          held;   /* another job holds the key: don't store */
    cadre_job_id holder; /* that job */
    int          taken;  /* this job took the key (unwound if refused) */
};

/* A parked dispatch whose keys are all answered. */
struct uniq_parked {
    struct api_req      *req;
    int                  role;
    struct msg           m;       /* the decoded dispatch, owned */
    struct uniq_verdict *verdict; /* per job of m */
    int                  rc;      /* CADRE_OK, or why none can be stored */
    char                 why[160];
    size_t               pending; /* answers still to come */
    struct uniq_parked  *next;
};

struct uniq;

int uniq_new(struct coord *co, struct uniq **out); /* CADRE_ENOMEM */
/* Drops the parked requests whose answers came (coord_close answers the
 * others first): call after coord_close, before the api socket closes. */
void uniq_close(struct uniq *u);
void uniq_free(struct uniq *u); /* accepts NULL */

/* 1 if the dispatch m carries a unique job (and u is not NULL): the caller
 * parks it. */
int uniq_wanted(const struct uniq *u, const struct msg *m);
/* Takes r and m (moved: the caller must not free m) and asks the leader
 * for each unique job's key. Always answers later through uniq_take_ready
 * (an error verdict when nothing could be asked). */
void uniq_park(struct uniq *u, struct api_req *r, int role, struct msg *m);
/* The next parked dispatch whose answers are all in, or NULL. The caller
 * stores or refuses it and frees it with uniq_parked_free. */
struct uniq_parked *uniq_take_ready(struct uniq *u);
void                uniq_parked_free(struct uniq_parked *p);
/* 1 if a turn should run for uniq (answers in, releases to retry). */
int uniq_wants_turn(const struct uniq *u, uint64_t mono_ms);

/* After a committed turn: job reached its final state (or started, for
 * unique_until_processing): release its key in the leader's FSM. Jobs
 * without a unique key are ignored. */
void uniq_release(struct uniq *u, const struct store_job *job);
/* Retries releases that found no leader (call now and then). */
void uniq_tick(struct uniq *u, uint64_t mono_ms);

/* The FSM key of a unique key as the store spells it (task 0x1f id): "u:"
 * and 32 hex digits of its BLAKE2b-128, short enough for any task and id. */
void uniq_fsm_key(const char *unique_key, char *out, size_t cap);

#endif
