/* test_hooks.c: plugin hooks run before every job, after a success, and
 * after a failing attempt, in registration order, and see the outcome. */
#include <string.h>

#include "tests/lib/tap.h"
#include "worker/handler.h"
#include "worker/task.h"

static char trail[256];

static void
hook_note(const cadre_task *t, void *arg)
{
    const char *type = cadre_task_error_type(t);

    strcat(trail, (const char *)arg);
    if (type != NULL) {
        strcat(trail, "(");
        strcat(trail, type);
        strcat(trail, ")");
    }
    strcat(trail, " ");
}

static int
h_ok(cadre_task *t, void *arg)
{
    (void)arg;
    strcat(trail, "run ");
    return cadre_task_result(t, "x", 1);
}

static int
h_bad(cadre_task *t, void *arg)
{
    (void)arg;
    strcat(trail, "run ");
    return cadre_task_error(t, "Boom", "it broke");
}

static int
h_later(cadre_task *t, void *arg)
{
    (void)arg;
    strcat(trail, "run ");
    return cadre_task_release(t, 10);
}

static void
run(cadre_registry *reg, const char *task)
{
    struct msg_job job = {.task = task, .attempt = 1};
    cadre_task     t;

    trail[0] = '\0';
    task_init(&t, &job, 0);
    handler_run(reg, handler_find(reg, task), &t);
    task_fini(&t);
}

TEST(hooks_wrap_each_job_in_order)
{
    cadre_registry reg;

    handler_registry_init(&reg);
    REQUIRE_EQ(cadre_registry_add(&reg, "ok", h_ok, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "bad", h_bad, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_add(&reg, "later", h_later, NULL), CADRE_OK);
    REQUIRE_EQ(cadre_registry_hook(&reg, CADRE_HOOK_BEFORE, hook_note, "b1"),
               CADRE_OK);
    REQUIRE_EQ(cadre_registry_hook(&reg, CADRE_HOOK_BEFORE, hook_note, "b2"),
               CADRE_OK);
    REQUIRE_EQ(cadre_registry_hook(&reg, CADRE_HOOK_AFTER, hook_note, "a"),
               CADRE_OK);
    REQUIRE_EQ(cadre_registry_hook(&reg, CADRE_HOOK_FAILING, hook_note, "f"),
               CADRE_OK);
    run(&reg, "ok");
    CHECK_STR(trail, "b1 b2 run a ");
    run(&reg, "bad");
    CHECK_STR(trail, "b1 b2 run f(Boom) ");
    run(&reg, "later"); /* a release is neither success nor failure */
    CHECK_STR(trail, "b1 b2 run ");
    CHECK_EQ(cadre_registry_hook(&reg, 7, hook_note, "x"), CADRE_EINVAL);
    CHECK_EQ(cadre_registry_hook(&reg, CADRE_HOOK_AFTER, NULL, NULL),
             CADRE_EINVAL);
    for (int i = 1; i < HANDLER_HOOKS_MAX; i++)
        CHECK_EQ(cadre_registry_hook(&reg, CADRE_HOOK_AFTER, hook_note, "a"),
                 CADRE_OK);
    CHECK_EQ(cadre_registry_hook(&reg, CADRE_HOOK_AFTER, hook_note, "a"),
             CADRE_ENOMEM);
    handler_registry_fini(&reg);
}

int
main(void)
{
    TAP_RUN(T(hooks_wrap_each_job_in_order));
}
