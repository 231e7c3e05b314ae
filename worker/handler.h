/* handler.h: handler kinds and the registry that maps task names to handlers.
 * A kind is a const struct handler_ops (plugin/function, exec; pipe later);
 * the registry owns every handler and every loaded plugin. It does not talk to
 * the node (worker.h). Worker thread only. */
#ifndef WORKER_HANDLER_H
#define WORKER_HANDLER_H

#include <stddef.h>

#include "cadre/task.h"
#include "common/err.h"

/* One handler kind. */
struct handler_ops {
    const char *kind; /* "plugin", "exec" */
    /* Runs the task and returns what a cadre_handler_fn returns; the outcome
     * is decided by task_finish (worker/task.h). */
    int (*run)(void *impl, cadre_task *t);
    /* Frees impl; called once, at registry_fini or on a failed add. */
    void (*fini)(void *impl);
    /* The kind enforces the task's timeout itself (exec kills its process);
     * otherwise the worker's watchdog does (worker.c). */
    int own_timeout;
};

struct handler {
    char                     *name;
    const struct handler_ops *ops;
    void                     *impl;
};

#define HANDLER_HOOKS_MAX 16

struct handler_hook {
    cadre_hook_fn fn;
    void         *arg;
};

struct cadre_registry {
    struct handler     *v;
    struct handler_hook hooks[3][HANDLER_HOOKS_MAX]; /* by cadre_hook_point */
    size_t              hooks_n[3];
    size_t              n, cap;
    void **dl; /* dlopen handles, closed after every handler's fini */
    size_t dl_n, dl_cap;
    cd_err err; /* why the last add failed, for the plugin loader */
};

void handler_registry_init(cadre_registry *reg);
/* Finalises every handler, then closes the plugins; accepts NULL. */
void handler_registry_fini(cadre_registry *reg);

/* Registers impl of kind ops under name (copied). On success the registry
 * owns impl; on failure ops->fini(impl) has been called. Returns
 * CADRE_EEXISTS if name is taken, CADRE_EINVAL for an empty name,
 * CADRE_ENOMEM. */
int handler_add(cadre_registry *reg, const char *name,
                const struct handler_ops *ops, void *impl, cd_err *err);

/* The handler for name, or NULL. Borrowed from the registry. */
const struct handler *handler_find(const cadre_registry *reg, const char *name);

/* The function kind: a cadre_handler_fn with its arg, from a plugin or from
 * cadre_worker_handle (cadre_registry_add). */
extern const struct handler_ops handler_fn_ops;

/* Loads the plugin at path (dlopen RTLD_NOW | RTLD_LOCAL), checks
 * cadre_plugin_abi and calls cadre_plugin_init(reg). Returns CADRE_EIO if it
 * cannot be loaded (dlerror in the message), CADRE_EINVAL if it is not a
 * cadre plugin, CADRE_EVERSION if its ABI version differs, or the error of a
 * failed cadre_plugin_init; then nothing it registered stays registered. The
 * message starts with "load plugin PATH". */
int handler_load_plugin(cadre_registry *reg, const char *path, cd_err *err);

/* Runs reg's BEFORE hooks, h for t, decides t's outcome (task_finish), then
 * the AFTER or FAILING hooks. */
void handler_run(const cadre_registry *reg, const struct handler *h,
                 cadre_task *t);

#endif
