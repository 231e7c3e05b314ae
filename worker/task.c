/* task.c: the task context handed to handlers (the public cadre_task_* calls
 * of the plugin ABI) and the move of its outcome into a report. Runs no
 * handler and does no I/O. */
#include "worker/task.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

void
task_init(cadre_task *t, const struct msg_job *job, uint64_t default_timeout_ms)
{
    memset(t, 0, sizeof(*t));
    t->job = job;
    cadre_job_id_format(&job->id, t->id_text);
    t->timeout_ms = job->timeout_ms != 0 ? job->timeout_ms : default_timeout_ms;
    t->result_max = TASK_RESULT_MAX;
    t->kind = MSG_OUTCOME_NONE;
}

static void
task_clear_error(cadre_task *t)
{
    cd_free(t->error_type);
    cd_free(t->error);
    t->error_type = NULL;
    t->error = NULL;
}

void
task_fini(cadre_task *t)
{
    if (t == NULL)
        return;
    cd_free(t->result);
    t->result = NULL;
    t->result_len = 0;
    task_clear_error(t);
    if (t->plain != NULL) {
        explicit_bzero(t->plain, t->plain_len); /* plaintext of a secret */
        cd_free(t->plain);
        t->plain = NULL;
    }
}

/* A copy of s cut to TASK_ERROR_MAX bytes (not inside a UTF-8 sequence);
 * NULL if out of memory. */
static char *
task_copy_msg(const char *s)
{
    size_t n = strlen(s);

    if (n > TASK_ERROR_MAX) {
        n = TASK_ERROR_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    return cd_strndup(s, n);
}

void
task_set_error(cadre_task *t, int kind, const char *type, const char *msg)
{
    task_clear_error(t);
    t->kind = kind;
    t->error_type = task_copy_msg(type != NULL ? type : "");
    t->error = task_copy_msg(msg != NULL ? msg : "");
}

/* Formats into a heap string for task_set_error; NULL if out of memory. */
static char *
task_vformat(const char *fmt, va_list ap)
{
    char    small[256];
    char   *big;
    va_list ap2;
    int     n;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return cd_strdup("");
    if ((size_t)n < sizeof(small))
        return cd_strdup(small);
    if ((size_t)n > TASK_ERROR_MAX)
        n = TASK_ERROR_MAX;
    big = cd_malloc((size_t)n + 1);
    if (big != NULL)
        vsnprintf(big, (size_t)n + 1, fmt, ap);
    return big;
}

void
task_finish(cadre_task *t, int rc)
{
    char msg[128];

    if (t->kind != MSG_OUTCOME_NONE)
        return; /* an explicit error, fail or release wins */
    if (rc == CADRE_OK && t->result_too_big) {
        snprintf(msg, sizeof(msg), "result exceeds %zu bytes", t->result_max);
        task_set_error(t, MSG_OUTCOME_ERROR, "ResultTooBig", msg);
    } else if (rc == CADRE_OK) {
        t->kind = MSG_OUTCOME_DONE;
    } else {
        snprintf(msg, sizeof(msg), "handler returned %d: %s", rc,
                 cadre_strerror(rc));
        task_set_error(t, MSG_OUTCOME_ERROR, "HandlerError", msg);
    }
}

void
task_take_outcome(cadre_task *t, struct msg_outcome *o, struct task_own *own)
{
    memset(o, 0, sizeof(*o));
    memset(own, 0, sizeof(*own));
    o->id = t->job->id;
    o->lease = t->job->lease;
    o->kind = t->kind;
    if (t->kind == MSG_OUTCOME_DONE) {
        own->result = t->result;
        o->result.data = t->result;
        o->result.len = t->result_len;
        t->result = NULL;
        t->result_len = 0;
    }
    if (t->kind == MSG_OUTCOME_RELEASE)
        o->release_delay_ms = t->release_delay_ms;
    own->error_type = t->error_type;
    own->error = t->error;
    t->error_type = NULL;
    t->error = NULL;
    o->error_type = own->error_type != NULL ? own->error_type : "";
    o->error = own->error != NULL ? own->error : "";
    task_fini(t);
}

void
task_own_free(struct task_own *own)
{
    if (own == NULL)
        return;
    cd_free(own->result);
    cd_free(own->error_type);
    cd_free(own->error);
    memset(own, 0, sizeof(*own));
}

void
task_outcome_make(const struct msg_job *job, int kind, const char *type,
                  const char *msg, struct msg_outcome *o, struct task_own *own)
{
    memset(o, 0, sizeof(*o));
    memset(own, 0, sizeof(*own));
    o->id = job->id;
    o->lease = job->lease;
    o->kind = kind;
    if (type != NULL)
        own->error_type = task_copy_msg(type);
    if (msg != NULL)
        own->error = task_copy_msg(msg);
    o->error_type = own->error_type != NULL ? own->error_type : "";
    o->error = own->error != NULL ? own->error : "";
}

/* ---- the plugin ABI ------------------------------------------------------ */

const void *
cadre_task_payload(const cadre_task *t, size_t *len)
{
    if (t->sealed) {
        if (len != NULL)
            *len = t->plain_len;
        return t->plain;
    }
    if (len != NULL)
        *len = t->job->payload.len;
    /* Never NULL, so that handlers may pass it to memcpy with len 0. */
    return t->job->payload.data != NULL ? (const void *)t->job->payload.data
                                        : (const void *)"";
}

const char *
cadre_task_name(const cadre_task *t)
{
    return t->job->task != NULL ? t->job->task : "";
}

const char *
cadre_task_queue(const cadre_task *t)
{
    const char *q = t->job->queue;

    return q != NULL && q[0] != '\0' ? q : "default";
}

const char *
cadre_task_id(const cadre_task *t)
{
    return t->id_text;
}

uint32_t
cadre_task_attempt(const cadre_task *t)
{
    return t->job->attempt;
}

const char *
cadre_task_schedule(const cadre_task *t, int64_t *slot_s)
{
    const char *name = t->job->schedule;

    if (name == NULL || name[0] == '\0')
        name = NULL;
    if (slot_s != NULL)
        *slot_s = name != NULL ? t->job->slot_s : 0;
    return name;
}

int
cadre_task_result(cadre_task *t, const void *data, size_t len)
{
    uint8_t *copy = NULL;

    if (len > t->result_max) {
        t->result_too_big = 1;
        return CADRE_ETOOBIG;
    }
    if (len > 0) {
        copy = cd_memdup(data, len);
        if (copy == NULL)
            return CADRE_ENOMEM;
    }
    cd_free(t->result);
    t->result = copy;
    t->result_len = len;
    t->result_too_big = 0;
    return CADRE_OK;
}

int
cadre_task_error(cadre_task *t, const char *type, const char *fmt, ...)
{
    va_list ap;
    char   *msg;

    va_start(ap, fmt);
    msg = task_vformat(fmt, ap);
    va_end(ap);
    task_set_error(t, MSG_OUTCOME_ERROR,
                   type != NULL && type[0] != '\0' ? type : "HandlerError",
                   msg != NULL ? msg : "");
    cd_free(msg);
    return CADRE_EHANDLER;
}

int
cadre_task_fail(cadre_task *t, const char *fmt, ...)
{
    va_list ap;
    char   *msg;

    va_start(ap, fmt);
    msg = task_vformat(fmt, ap);
    va_end(ap);
    task_set_error(t, MSG_OUTCOME_FAIL, "Failed", msg != NULL ? msg : "");
    cd_free(msg);
    return CADRE_EHANDLER;
}

int
cadre_task_release(cadre_task *t, uint64_t delay_ms)
{
    task_clear_error(t);
    t->kind = MSG_OUTCOME_RELEASE;
    t->release_delay_ms = delay_ms;
    return CADRE_EHANDLER;
}

const char *
cadre_task_error_type(const cadre_task *t)
{
    return t->error_type;
}

const char *
cadre_task_error_message(const cadre_task *t)
{
    return t->error;
}
