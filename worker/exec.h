/* exec.h: the exec handler kind. One `/bin/sh -c CMD` process per job, in its
 * own process group: the payload on its stdin, its stdout the result, exit 0
 * success, otherwise an error whose message is the tail of its stderr; the
 * whole group is killed at the task's timeout. exec_run is the process part
 * alone, for tests and for other kinds. Worker thread only. */
#ifndef WORKER_EXEC_H
#define WORKER_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "worker/handler.h"

/* Bytes of stderr kept for the error message. */
#define EXEC_TAIL_MAX 2048
/* The exec convention beyond exit 0 (done) and other codes (an error whose
 * message is the stderr tail): 75 (EX_TEMPFAIL) releases the job back to
 * its queue after the ms printed on stdout; 76 fails it now, no more tries,
 * with the stderr tail as the message. */
#define EXEC_EXIT_RELEASE 75
#define EXEC_EXIT_FAIL 76
/* After the command exits, how long descendants that keep its pipes open may
 * linger before the process group is killed. */
#define EXEC_LINGER_MS 100

/* One run. Strings and payload are borrowed for the call. */
struct exec_job {
    const char *id;       /* CADRE_JOB_ID */
    const char *task;     /* CADRE_TASK */
    const char *queue;    /* CADRE_QUEUE */
    uint32_t    attempt;  /* CADRE_ATTEMPT */
    const char *schedule; /* CADRE_SCHEDULE; NULL: not set */
    int64_t     slot_s;   /* CADRE_SLOT, with schedule */
    const void *payload;
    size_t      payload_len;
    uint64_t    timeout_ms; /* 0: none */
    size_t      out_max;    /* stdout bytes accepted; more sets out_too_big */
};

/* What happened. Owned by the caller; free with exec_result_fini. */
struct exec_result {
    int      exited; /* exit_code is valid */
    int      exit_code;
    int      signal;      /* killed by this signal (0: not) */
    int      timed_out;   /* killed by us at timeout_ms */
    int      out_too_big; /* stdout exceeded out_max (out is cut there) */
    uint8_t *out;         /* stdout (cd_malloc'd, NULL when empty) */
    size_t   out_len;
    char    *err_tail; /* the last ~EXEC_TAIL_MAX bytes of stderr, trimmed;
                          never NULL after exec_run returned CADRE_OK */
    uint64_t elapsed_ms;
};

/* Runs cmd through /bin/sh -c with job's payload on stdin and CADRE_JOB_ID,
 * CADRE_TASK, CADRE_QUEUE, CADRE_ATTEMPT in its environment, and waits until
 * it exits (or is killed at job->timeout_ms) and its pipes are drained. The
 * child is always reaped and no descriptor is left open. stdin is written
 * without blocking, so a child that never reads cannot stall the caller.
 * Returns CADRE_OK whatever the command did (see *res); CADRE_EIO if the
 * process could not be started, CADRE_ENOMEM. */
int  exec_run(const char *cmd, const struct exec_job *job,
              struct exec_result *res, cd_err *err);
void exec_result_fini(struct exec_result *res);

extern const struct handler_ops exec_handler_ops;

/* Registers cmd (copied) as the exec handler for task name. Errors as
 * handler_add. */
int exec_add(cadre_registry *reg, const char *name, const char *cmd,
             cd_err *err);

#endif
