/* task.h (worker/): the cadre_task context behind include/cadre/task.h. The
 * worker fills one per job, the handler records its outcome in it through
 * the cadre_task_* calls, and the worker moves that outcome into its next
 * report. It does not run handlers (handler.h) or talk to the node
 * (worker.h). Worker thread only. */
#ifndef WORKER_TASK_H
#define WORKER_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/task.h"
#include "common/id.h"
#include "proto/msg.h"
#include "proto/wire.h"

/* The largest result a handler may set: one frame less room for the rest of
 * the report (envelope, error strings of other outcomes). */
#define TASK_RESULT_MAX ((size_t)WIRE_MAX_DEFAULT - (64u << 10))
/* Error messages are cut to this many bytes. */
#define TASK_ERROR_MAX 4096

struct cadre_task {
    const struct msg_job *job; /* borrowed from the worker for the call */
    char                  id_text[CD_ID_TEXT_LEN + 1];
    uint64_t              timeout_ms; /* the job's, else the default; 0 none */
    size_t                result_max;
    /* The outcome so far. */
    int      kind; /* enum msg_outcome_kind; MSG_OUTCOME_NONE until decided */
    uint8_t *result;
    size_t   result_len;
    int      result_too_big; /* a cadre_task_result call was refused */
    char    *error_type;
    char    *error;
    uint64_t release_delay_ms;
    /* An encrypted job: the opened payload the handler sees, and the result
     * is sealed again before it leaves the worker. */
    uint8_t *plain;
    size_t   plain_len;
    int      sealed;
};

/* What an outcome owns once taken from its task: cd_malloc'd, NULL when
 * absent. */
struct task_own {
    uint8_t *result;
    char    *error_type;
    char    *error;
};

/* Prepares t for job (borrowed until task_fini). default_timeout_ms applies
 * when the job has none. */
void task_init(cadre_task *t, const struct msg_job *job,
               uint64_t default_timeout_ms);
/* Releases what t still owns; accepts NULL. */
void task_fini(cadre_task *t);

/* Records an outcome of kind MSG_OUTCOME_ERROR or MSG_OUTCOME_FAIL with a copy
 * of type and msg (cut to TASK_ERROR_MAX). Replaces an earlier one. If a copy
 * cannot be allocated the outcome keeps its kind with an empty string. */
void task_set_error(cadre_task *t, int kind, const char *type, const char *msg);

/* Decides the outcome once the handler returned rc (see cadre/task.h): keeps
 * an explicit error/fail/release, else DONE for CADRE_OK (an ERROR of type
 * "ResultTooBig" if a result was refused) or an ERROR of type "HandlerError".
 */
void task_finish(cadre_task *t, int rc);

/* Moves t's decided outcome into o (id and lease from the job) and own. The
 * pointers in o point into own, or at static empty strings; o is valid until
 * task_own_free(own). t is left with nothing to free. */
void task_take_outcome(cadre_task *t, struct msg_outcome *o,
                       struct task_own *own);
/* Frees what own holds and zeroes it; accepts NULL. */
void task_own_free(struct task_own *own);

/* A plain outcome without a task (RETURN of an unstarted job, or an error the
 * worker decides itself); type and msg may be NULL and are copied. */
void task_outcome_make(const struct msg_job *job, int kind, const char *type,
                       const char *msg, struct msg_outcome *o,
                       struct task_own *own);

#endif
