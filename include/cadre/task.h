/* task.h: the plugin ABI. A plugin is a shared object that exports
 *
 *     const unsigned cadre_plugin_abi = CADRE_TASK_ABI_VERSION;
 *     int cadre_plugin_init(cadre_registry *reg);
 *
 * and registers its handlers with cadre_registry_add. Handlers run on the
 * worker's thread, one job at a time; they receive a cadre_task context that
 * is valid only during the call.
 */
#ifndef CADRE_TASK_H
#define CADRE_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CADRE_TASK_ABI_VERSION 1

typedef struct cadre_registry cadre_registry;
typedef struct cadre_task     cadre_task;

/* What a plugin defines (declared here so that they are exported even when
 * the plugin is built with -fvisibility=hidden). cadre_plugin_init returns
 * CADRE_OK, or an error that makes loading the plugin fail. */
CADRE_API extern const unsigned cadre_plugin_abi;
CADRE_API int                   cadre_plugin_init(cadre_registry *reg);

/* Registers fn under name. Returns CADRE_EEXISTS if name is taken. name is
 * copied; arg is borrowed for the worker's lifetime. */
CADRE_API int cadre_registry_add(cadre_registry *reg, const char *name,
                                 cadre_handler_fn fn, void *arg);

/* Hooks: code a plugin runs around every job it handles (Laravel's
 * Queue::before / after / failing). BEFORE runs before the handler, AFTER
 * after a handler that succeeded, FAILING after an attempt that ended in an
 * error or a fail (not a release; whether the job is then retried is the
 * node's decision). Hooks run in registration order on the worker thread and
 * cannot change the outcome. */
enum cadre_hook_point {
    CADRE_HOOK_BEFORE = 0,
    CADRE_HOOK_AFTER = 1,
    CADRE_HOOK_FAILING = 2,
};
typedef void (*cadre_hook_fn)(const cadre_task *t, void *arg);

/* Registers fn at point. Returns CADRE_EINVAL (bad point, NULL fn),
 * CADRE_ENOMEM (at most 16 hooks per point). */
CADRE_API int cadre_registry_hook(cadre_registry *reg, int point,
                                  cadre_hook_fn fn, void *arg);

/* The job being run. Pointers are valid until the handler returns. */
CADRE_API const void *cadre_task_payload(const cadre_task *t, size_t *len);
CADRE_API const char *cadre_task_name(const cadre_task *t);
CADRE_API const char *cadre_task_queue(const cadre_task *t);
CADRE_API const char *cadre_task_id(const cadre_task *t);      /* uuid text */
CADRE_API uint32_t    cadre_task_attempt(const cadre_task *t); /* from 1 */
/* A job fired by a schedule: the schedule's name, and its slot (the fire
 * time, Unix seconds) in *slot_s if slot_s is not NULL. NULL (and *slot_s
 * 0) for a job that no schedule fired. Exec handlers see the same as
 * CADRE_SCHEDULE and CADRE_SLOT. */
CADRE_API const char *cadre_task_schedule(const cadre_task *t, int64_t *slot_s);

/* Sets the result (copied). Returns CADRE_ENOMEM or CADRE_ETOOBIG. */
CADRE_API int cadre_task_result(cadre_task *t, const void *data, size_t len);

/* Marks the attempt failed with an error type and message; the job is
 * retried if its tries allow. Returns CADRE_EHANDLER for the handler to
 * return. */
CADRE_API int cadre_task_error(cadre_task *t, const char *type, const char *fmt,
                               ...) __attribute__((format(printf, 3, 4)));

/* Fails the job now, whatever its tries allow (Laravel's $this->fail()); the
 * error type is "Failed". Returns CADRE_EHANDLER for the handler to return. */
CADRE_API int cadre_task_fail(cadre_task *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Puts the job back on its queue, visible again after delay_ms; counts as an
 * attempt (Laravel's $this->release($delay)). Returns CADRE_EHANDLER for the
 * handler to return. */
CADRE_API int cadre_task_release(cadre_task *t, uint64_t delay_ms);

/* The outcome of an attempt is the last of cadre_task_error, cadre_task_fail
 * and cadre_task_release the handler called, whatever it returns. If it
 * called none of them, CADRE_OK means success (with the result set by
 * cadre_task_result, if any) and any other value an error of type
 * "HandlerError" whose message is cadre_strerror() of the value. */

/* In an AFTER or FAILING hook: the attempt's error type and message (NULL
 * when it has none). */
CADRE_API const char *cadre_task_error_type(const cadre_task *t);
CADRE_API const char *cadre_task_error_message(const cadre_task *t);

#ifdef __cplusplus
}
#endif
#endif /* CADRE_TASK_H */
