/* handler.c: the handler registry, the function kind and the plugin loader.
 * Exec handlers live in exec.c; running the loop and reporting live in
 * worker.c. */
#include "worker/handler.h"

#include <dlfcn.h>
#include <string.h>

#include "common/alloc.h"
#include "worker/task.h"

/* The function kind's impl. */
struct handler_fn {
    cadre_handler_fn fn;
    void            *arg;
};

static int
handler_fn_run(void *impl, cadre_task *t)
{
    struct handler_fn *f = impl;

    return f->fn(t, f->arg);
}

static void
handler_fn_fini(void *impl)
{
    cd_free(impl);
}

const struct handler_ops handler_fn_ops = {
    .kind = "plugin",
    .run = handler_fn_run,
    .fini = handler_fn_fini,
    .own_timeout = 0,
};

void
handler_registry_init(cadre_registry *reg)
{
    memset(reg, 0, sizeof(*reg));
}

/* Finalises the handlers from index keep on. */
static void
handler_truncate(cadre_registry *reg, size_t keep)
{
    while (reg->n > keep) {
        struct handler *h = &reg->v[--reg->n];

        h->ops->fini(h->impl);
        cd_free(h->name);
    }
}

void
handler_registry_fini(cadre_registry *reg)
{
    if (reg == NULL)
        return;
    handler_truncate(reg, 0);
    cd_free(reg->v);
    /* Plugins last: their handlers' fini may still run plugin code. */
    while (reg->dl_n > 0)
        dlclose(reg->dl[--reg->dl_n]);
    cd_free(reg->dl);
    memset(reg, 0, sizeof(*reg));
}

const struct handler *
handler_find(const cadre_registry *reg, const char *name)
{
    /* A worker has a handful of handlers: a scan beats hashing. */
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->v[i].name, name) == 0)
            return &reg->v[i];
    return NULL;
}

int
handler_add(cadre_registry *reg, const char *name,
            const struct handler_ops *ops, void *impl, cd_err *err)
{
    char *copy = NULL;

    if (name == NULL || name[0] == '\0') {
        ops->fini(impl);
        return cd_err_set(err, CADRE_EINVAL, "register task: empty name");
    }
    if (handler_find(reg, name) != NULL) {
        ops->fini(impl);
        return cd_err_set(err, CADRE_EEXISTS,
                          "register task '%s': already registered", name);
    }
    if (reg->n == reg->cap) {
        size_t          cap = reg->cap ? reg->cap * 2 : 8;
        struct handler *v = cd_realloc(reg->v, cap * sizeof(*v));

        if (v == NULL)
            goto nomem;
        reg->v = v;
        reg->cap = cap;
    }
    copy = cd_strdup(name);
    if (copy == NULL)
        goto nomem;
    reg->v[reg->n++] = (struct handler){.name = copy, .ops = ops, .impl = impl};
    return CADRE_OK;
nomem:
    ops->fini(impl);
    return cd_err_set(err, CADRE_ENOMEM, "register task '%s': out of memory",
                      name);
}

int
cadre_registry_add(cadre_registry *reg, const char *name, cadre_handler_fn fn,
                   void *arg)
{
    struct handler_fn *f;

    if (fn == NULL)
        return cd_err_set(&reg->err, CADRE_EINVAL,
                          "register task '%s': NULL function",
                          name != NULL ? name : "");
    f = cd_malloc(sizeof(*f));
    if (f == NULL)
        return cd_err_set(&reg->err, CADRE_ENOMEM,
                          "register task '%s': out of memory",
                          name != NULL ? name : "");
    f->fn = fn;
    f->arg = arg;
    return handler_add(reg, name, &handler_fn_ops, f, &reg->err);
}

int
cadre_registry_hook(cadre_registry *reg, int point, cadre_hook_fn fn, void *arg)
{
    if (point < CADRE_HOOK_BEFORE || point > CADRE_HOOK_FAILING || fn == NULL)
        return cd_err_set(&reg->err, CADRE_EINVAL, "register hook: bad %s",
                          fn == NULL ? "function" : "point");
    if (reg->hooks_n[point] == HANDLER_HOOKS_MAX)
        return cd_err_set(&reg->err, CADRE_ENOMEM,
                          "register hook: at most %d per point",
                          HANDLER_HOOKS_MAX);
    reg->hooks[point][reg->hooks_n[point]++] = (struct handler_hook){fn, arg};
    return CADRE_OK;
}

static void
handler_hooks(const cadre_registry *reg, int point, const cadre_task *t)
{
    for (size_t i = 0; i < reg->hooks_n[point]; i++)
        reg->hooks[point][i].fn(t, reg->hooks[point][i].arg);
}

void
handler_run(const cadre_registry *reg, const struct handler *h, cadre_task *t)
{
    handler_hooks(reg, CADRE_HOOK_BEFORE, t);
    task_finish(t, h->ops->run(h->impl, t));
    if (t->kind == MSG_OUTCOME_DONE)
        handler_hooks(reg, CADRE_HOOK_AFTER, t);
    else if (t->kind == MSG_OUTCOME_ERROR || t->kind == MSG_OUTCOME_FAIL)
        handler_hooks(reg, CADRE_HOOK_FAILING, t);
}

int
handler_load_plugin(cadre_registry *reg, const char *path, cd_err *err)
{
    void           *dl = NULL;
    const unsigned *abi;
    int (*init)(cadre_registry *);
    size_t keep = reg->n;
    int    rc;

    if (reg->dl_n == reg->dl_cap) {
        size_t cap = reg->dl_cap ? reg->dl_cap * 2 : 4;
        void **v = cd_realloc(reg->dl, cap * sizeof(*v));

        if (v == NULL)
            return cd_err_set(err, CADRE_ENOMEM,
                              "load plugin %s: out of memory", path);
        reg->dl = v;
        reg->dl_cap = cap;
    }
    dlerror();
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *why = dlerror();

        if (why != NULL && strstr(why, "undefined symbol: cadre_") != NULL)
            return cd_err_set(err, CADRE_EIO,
                              "load plugin %s: %s (the program must export "
                              "the cadre API to plugins: link it with "
                              "-rdynamic, or against libcadre.so)",
                              path, why);
        return cd_err_set(err, CADRE_EIO, "load plugin %s: %s", path,
                          why != NULL ? why : "dlopen failed");
    }
    abi = dlsym(dl, "cadre_plugin_abi");
    if (abi == NULL) {
        rc = cd_err_set(err, CADRE_EINVAL,
                        "load plugin %s: no cadre_plugin_abi symbol (not a "
                        "cadre plugin?)",
                        path);
        goto close;
    }
    if (*abi != CADRE_TASK_ABI_VERSION) {
        rc = cd_err_set(err, CADRE_EVERSION,
                        "load plugin %s: plugin ABI version %u, this worker "
                        "supports %u (rebuild it against this cadre/task.h)",
                        path, *abi, (unsigned)CADRE_TASK_ABI_VERSION);
        goto close;
    }
    /* POSIX allows the object-to-function pointer conversion for dlsym. */
    *(void **)&init = dlsym(dl, "cadre_plugin_init");
    if (init == NULL) {
        rc = cd_err_set(err, CADRE_EINVAL,
                        "load plugin %s: no cadre_plugin_init symbol", path);
        goto close;
    }
    cd_err_clear(&reg->err);
    rc = init(reg);
    if (rc != CADRE_OK) {
        int code = rc > 0 && rc < CADRE_E_COUNT ? rc : CADRE_EINTERNAL;

        if (reg->err.code != CADRE_OK && reg->err.msg[0] != '\0')
            rc = cd_err_set(err, code, "load plugin %s: cadre_plugin_init: %s",
                            path, reg->err.msg);
        else
            rc = cd_err_set(err, code,
                            "load plugin %s: cadre_plugin_init returned %d "
                            "(%s)",
                            path, rc, cadre_strerror(rc));
        goto unregister;
    }
    reg->dl[reg->dl_n++] = dl;
    return CADRE_OK;
unregister:
    handler_truncate(reg, keep);
close:
    dlclose(dl);
    return rc;
}
