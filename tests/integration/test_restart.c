/* test_restart.c: `cadre restart` replaces every supervised worker with a
 * fresh process; a job running at that moment finishes once (not lost, not
 * run twice), and the new workers take the next jobs. */
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

TEST(restart_replaces_workers_and_loses_nothing)
{
    struct node_proc node;
    char *args[] = {"--workers", "2", "--plugin", (char *)proc_demo_plugin(),
                    NULL};
    cadre_client_opts o;
    cadre_client     *c;
    char              err[256], out[256];
    cadre_job_id      id, id2;
    cadre_outcome     res;
    pid_t             before[4], after[4];
    int               nb, na = 0, code = -1, fresh = 0;

    memset(&node, 0, sizeof(node));
    REQUIRE_EQ(node_startv(&node, tap_tmpdir(), NULL, args), CADRE_OK);
    node_client_opts(&node, &o);
    REQUIRE_EQ(cadre_client_open(&o, &c, err, sizeof(err)), CADRE_OK);
    REQUIRE_EQ(cadre_dispatch(c, "sleep", "1000", 4, NULL, &id), CADRE_OK);
    cd_sleep_ms(300); /* running now */
    nb = proc_children(node.pid, before, 4);
    REQUIRE_EQ(nb, 2);
    REQUIRE_EQ(proc_run_cli(out, sizeof(out), &code, "restart", "--url",
                            node.url, "--key-file", node.key_file, NULL),
               CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_CONTAINS(out, "restarting 2 workers");
    REQUIRE_EQ(cadre_wait(c, &id, 1, 15000, &res), CADRE_OK);
    CHECK_EQ(res.status, CADRE_DONE);
    CHECK_EQ(res.attempts, 1); /* finished by its worker, not rerun */
    cadre_outcome_fini(&res);
    for (int i = 0; i < 50 && fresh < 2; i++) {
        cd_sleep_ms(100);
        na = proc_children(node.pid, after, 4);
        fresh = 0;
        for (int a = 0; a < na; a++)
            fresh += after[a] != before[0] && after[a] != before[1];
    }
    CHECK_EQ(na, 2);
    CHECK_EQ(fresh, 2);
    REQUIRE_EQ(cadre_dispatch(c, "echo", "new", 3, NULL, &id2), CADRE_OK);
    REQUIRE_EQ(cadre_wait(c, &id2, 1, 15000, &res), CADRE_OK);
    CHECK_EQ(res.status, CADRE_DONE);
    cadre_outcome_fini(&res);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

int
main(void)
{
    TAP_RUN(T(restart_replaces_workers_and_loses_nothing));
}
