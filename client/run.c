/* run.c: libcadre's fan-outs. cadre_run sends one Run request and waits for
 * its one reply (the node answers by the deadline); cadre_defer dispatches
 * ordinary durable jobs. No printing; errors go to cadre_client_errmsg. */
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "client/client.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/id.h"

#define RUN_DEADLINE_DEFAULT_MS 30000
/* The reply comes at the deadline at the latest; this covers the trip and
 * the node's tick. After it the caller gets CADRE_ETIMEDOUT, never a hang. */
#define RUN_SLACK_MS 1000
#define RUN_TASKS_MAX 100000  /* the node's limit per run */
#define RUN_DEFER_CHUNK 10000 /* jobs per dispatch request */

void
cadre_run_id_new(cadre_job_id *id)
{
    cd_id_new(id, cd_now_ms());
}

void
cadre_run_results_free(cadre_run_result *results, size_t n)
{
    if (results == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        cd_free(results[i].result);
        cd_free(results[i].error_type);
        cd_free(results[i].error);
        memset(&results[i], 0, sizeof(results[i]));
    }
}

static int
run_copy(const struct msg_run_result *in, cadre_run_result *out)
{
    memset(out, 0, sizeof(*out));
    out->status = in->status;
    out->attempts = in->attempts;
    if (in->result.len > 0) {
        /* One byte more: a NUL after the bytes, handy for text results. */
        out->result = cd_malloc(in->result.len + 1);
        if (out->result == NULL)
            return CADRE_ENOMEM;
        memcpy(out->result, in->result.data, in->result.len);
        out->result[in->result.len] = '\0';
        out->result_len = in->result.len;
    }
    if (in->status == CADRE_RUN_ERROR) {
        out->error_type = cd_strdup(in->error_type ? in->error_type : "");
        out->error = cd_strdup(in->error ? in->error : "");
        if (out->error_type == NULL || out->error == NULL)
            return CADRE_ENOMEM;
    }
    return CADRE_OK;
}

/* The node did not answer: every task reads as timed out. */
static void
run_all_timed_out(cadre_run_result *results, size_t n)
{
    memset(results, 0, n * sizeof(*results));
    for (size_t i = 0; i < n; i++)
        results[i].status = CADRE_RUN_TIMED_OUT;
}

int
cadre_run(cadre_client *c, const cadre_task_spec *tasks, size_t n,
          const cadre_run_opts *opts, cadre_run_result *results)
{
    static const cadre_run_opts defaults;
    struct msg                  req = {.kind = MSG_RUN}, rep;
    struct msg_run_task        *mt;
    uint64_t                    deadline_ms;
    cd_err                      err = {0};
    int                         rc, all_ok = 1;

    if (opts == NULL)
        opts = &defaults;
    if (c == NULL || tasks == NULL || n == 0 || results == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "run: no tasks");
        return client_fail(&err);
    }
    if (n > RUN_TASKS_MAX) {
        cd_err_set(&err, CADRE_EINVAL, "run: %zu tasks; a run has at most %d",
                   n, RUN_TASKS_MAX);
        return client_fail(&err);
    }
    deadline_ms =
        opts->deadline_ms ? opts->deadline_ms : RUN_DEADLINE_DEFAULT_MS;
    if (deadline_ms > UINT32_MAX - 2 * RUN_SLACK_MS)
        deadline_ms = UINT32_MAX - 2 * RUN_SLACK_MS;
    for (size_t i = 0; i < n; i++) {
        if (tasks[i].task == NULL || tasks[i].task[0] == '\0' ||
            (tasks[i].payload == NULL && tasks[i].payload_len > 0)) {
            cd_err_set(&err, CADRE_EINVAL, "run: task %zu has no name", i);
            return client_fail(&err);
        }
    }
    mt = cd_calloc(n, sizeof(*mt));
    if (mt == NULL) {
        cd_err_set(&err, CADRE_ENOMEM, "run: out of memory");
        return client_fail(&err);
    }
    for (size_t i = 0; i < n; i++)
        mt[i] = (struct msg_run_task){
            .task = tasks[i].task,
            .payload = {tasks[i].payload, tasks[i].payload_len},
            .queue = tasks[i].queue,
            .timeout_ms = tasks[i].timeout_ms};
    if (opts->run_id != NULL)
        req.u.run.run_id = *opts->run_id;
    else
        cadre_run_id_new(&req.u.run.run_id);
    req.u.run.tasks = mt;
    req.u.run.tasks_n = n;
    req.u.run.deadline_ms = deadline_ms;
    req.u.run.fail_fast = opts->fail_fast != 0;
    rc = client_call(c, &req, (uint32_t)(deadline_ms + RUN_SLACK_MS), &rep,
                     &err);
    cd_free(mt);
    if (rc == CADRE_OK &&
        (rep.kind != MSG_RUN_REPLY || rep.u.run_reply.results_n != n)) {
        msg_free(&rep);
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected run reply");
    }
    if (rc == CADRE_ETIMEDOUT || rc == CADRE_ECLOSED ||
        rc == CADRE_ECONNREFUSED || rc == CADRE_EIO) {
        /* No answer: the node died (its connection was reset: nng gives
         * no other code; a node never answers a Run with EIO) or is
         * unreachable. The tasks' fate is unknown: timed out. */
        if (rc != CADRE_ETIMEDOUT)
            err.code = rc = CADRE_ECLOSED;
        run_all_timed_out(results, n);
        cd_err_wrap(&err, "run");
        return client_fail(&err);
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "run");
        return client_fail(&err);
    }
    for (size_t i = 0; i < n; i++) {
        if (run_copy(&rep.u.run_reply.results[i], &results[i]) != CADRE_OK) {
            cadre_run_results_free(results, i + 1);
            msg_free(&rep);
            cd_err_set(&err, CADRE_ENOMEM, "run: out of memory");
            return client_fail(&err);
        }
        all_ok &= results[i].status == CADRE_RUN_OK;
    }
    msg_free(&rep);
    if (!all_ok) {
        cd_err_set(&err, CADRE_EHANDLER, "run: some tasks did not succeed");
        return client_fail(&err);
    }
    return CADRE_OK;
}

int
cadre_defer(cadre_client *c, const cadre_task_spec *tasks, size_t n,
            cadre_job_id *ids)
{
    cadre_job_spec *specs;
    cadre_job_opts *jopts;
    cadre_job_id   *tmp = NULL;
    cd_err          err = {0};
    int             rc = CADRE_OK;

    if (c == NULL || tasks == NULL || n == 0) {
        cd_err_set(&err, CADRE_EINVAL, "defer: no tasks");
        return client_fail(&err);
    }
    specs = cd_calloc(n, sizeof(*specs));
    jopts = cd_calloc(n, sizeof(*jopts));
    if (ids == NULL)
        ids = tmp = cd_calloc(n, sizeof(*tmp));
    if (specs == NULL || jopts == NULL || ids == NULL) {
        cd_free(specs);
        cd_free(jopts);
        cd_free(tmp);
        cd_err_set(&err, CADRE_ENOMEM, "defer: out of memory");
        return client_fail(&err);
    }
    for (size_t i = 0; i < n; i++) {
        jopts[i].queue = tasks[i].queue;
        jopts[i].timeout_ms = tasks[i].timeout_ms;
        specs[i] = (cadre_job_spec){tasks[i].task, tasks[i].payload,
                                    tasks[i].payload_len, &jopts[i]};
    }
    /* cadre_dispatch_bulk sets cadre_client_errmsg on failure. */
    for (size_t i = 0; i < n && rc == CADRE_OK; i += RUN_DEFER_CHUNK) {
        size_t k = n - i < RUN_DEFER_CHUNK ? n - i : RUN_DEFER_CHUNK;

        rc = cadre_dispatch_bulk(c, specs + i, k, ids + i);
    }
    cd_free(specs);
    cd_free(jopts);
    cd_free(tmp);
    return rc;
}
