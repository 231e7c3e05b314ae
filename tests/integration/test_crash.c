/* test_crash.c: crash safety. 2,000 jobs whose handler appends the job id to
 * a ledger file; the node is killed with SIGKILL in the middle and restarted
 * on the same data dir. Every job the client saw acknowledged ends done; none
 * is missing; duplicates only among jobs that were reserved at the kill. A
 * batch whose reply was lost is dispatched again with the same ids, which
 * must store nothing twice. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define JOBS 2000
#define BATCH 20
#define WORKERS 2
#define PREFETCH 8

static struct node_proc node;
static char             data[PATH_MAX];

static cadre_client *
crash_start(void)
{
    char *args[] = {
        "--workers",  "2", "--plugin",      (char *)proc_demo_plugin(),
        "--prefetch", "8", "--retry-after", "1000",
        NULL};
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    memset(&node, 0, sizeof(node));
    if (node_startv(&node, data, NULL, args) != CADRE_OK)
        return NULL;
    node_client_opts(&node, &o);
    o.timeout_ms = 3000;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* Dispatches batch b with fixed ids (idempotent when repeated). */
static int
crash_batch(cadre_client *c, const char *ledger, cadre_job_id *ids, int b)
{
    cadre_job_spec spec[BATCH];
    cadre_job_opts opts[BATCH];
    cadre_job_id   got[BATCH];

    for (int i = 0; i < BATCH; i++) {
        opts[i] = (cadre_job_opts){.tries = 5, .id = &ids[b * BATCH + i]};
        spec[i] = (cadre_job_spec){"ledger", ledger, strlen(ledger), &opts[i]};
    }
    return cadre_dispatch_bulk(c, spec, BATCH, got);
}

TEST(kill_9_mid_stream_loses_nothing)
{
    static cadre_job_id  ids[JOBS];
    static cadre_outcome out[JOBS];
    char                 ledger_path[PATH_MAX + 16];
    cadre_client        *c;
    struct ledger       *l = NULL;
    struct ledger_check  chk;
    int                  acked_batches = 0, status = 0, done = 0;
    uint64_t             t0;

    snprintf(data, sizeof(data), "%s", tap_tmpdir());
    snprintf(ledger_path, sizeof(ledger_path), "%s/ledger", data);
    for (int i = 0; i < JOBS; i++) {
        /* ids made up front so a lost reply can be retried with them */
        ids[i].b[0] = (uint8_t)(i >> 8);
        ids[i].b[1] = (uint8_t)i;
        for (int k = 2; k < 16; k++)
            ids[i].b[k] = (uint8_t)rand();
    }
    c = crash_start();
    REQUIRE(c != NULL);
    for (int b = 0; b < JOBS / BATCH; b++) {
        if (b == JOBS / BATCH / 2) {
            /* Mid-stream: jobs are ready, reserved and running. */
            REQUIRE_EQ(proc_kill(&node.p, SIGKILL), CADRE_OK);
            proc_wait_exit(&node.p, 5000, &status);
            CHECK_EQ(status, -9);
            /* This batch meets a dead node: indeterminate, then retried. */
            CHECK(crash_batch(c, ledger_path, ids, b) != CADRE_OK);
            cadre_client_close(c);
            proc_kill_all(); /* the dead node's orphaned workers */
            c = crash_start();
            REQUIRE(c != NULL);
        }
        if (crash_batch(c, ledger_path, ids, b) == CADRE_OK)
            acked_batches++;
    }
    CHECK_EQ(acked_batches, JOBS / BATCH);
    /* Retrying acknowledged batches stores nothing twice. */
    CHECK_EQ(crash_batch(c, ledger_path, ids, 0), CADRE_OK);

    t0 = cd_mono_ms();
    for (int i = 0; i < JOBS; i += 500) {
        int rc = cadre_wait(c, ids + i, 500, 60000, out + i);

        CHECK(rc == CADRE_OK);
    }
    for (int i = 0; i < JOBS; i++) {
        done += out[i].status == CADRE_DONE;
        cadre_outcome_fini(&out[i]);
    }
    CHECK_EQ(done, JOBS);
    REQUIRE_EQ(ledger_read(ledger_path, &l), CADRE_OK);
    ledger_check(l, ids, JOBS, &chk);
    ledger_check_print("crash", &chk);
    printf("# waited %llu ms after the restart; duplicates=%zu (jobs run "
           "again because they were reserved at the kill)\n",
           (unsigned long long)(cd_mono_ms() - t0), chk.duplicates);
    CHECK_EQ(chk.missing, 0);
    CHECK_EQ(chk.unexpected, 0);
    /* Only jobs reserved at the kill may run twice: at most what the
     * workers held (prefetch each) plus one running job each. */
    CHECK(chk.duplicates <= WORKERS * (PREFETCH + 1));
    ledger_free(l);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

int
main(void)
{
    TAP_RUN(T(kill_9_mid_stream_loses_nothing));
}
