/* test_events.c: a real `cadre node` with one demo worker publishes job
 * events; libcadre's subscriber and `cadre events` read them. Checks the
 * sequence per job (done, failed, released then failed) and that a
 * subscriber with another cluster's key reads nothing. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "common/err.h"
#include "crypto/keys.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define EVENTS_MAX 64

static struct node_proc node;
static cadre_client    *client;

static int
start(void)
{
    char *args[] = {
        "--workers",     "1",    "--plugin", (char *)proc_demo_plugin(),
        "--retry-after", "2000", NULL};
    cadre_client_opts o;
    char              err[256];

    memset(&node, 0, sizeof(node));
    if (node_startv(&node, tap_tmpdir(), NULL, args) != CADRE_OK)
        return -1;
    node_client_opts(&node, &o);
    if (cadre_client_open(&o, &client, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    return 0;
}

static void
stop(void)
{
    cadre_client_close(client);
    client = NULL;
    CHECK_EQ(node_stop(&node), 0);
}

static int
dispatch(const char *task, const cadre_job_opts *opts, cadre_job_id *id)
{
    int rc = cadre_dispatch(client, task, "x", 1, opts, id);

    if (rc != CADRE_OK)
        fprintf(stderr, "dispatch: %s\n", cadre_client_errmsg(client));
    return rc;
}

/* The subscription dials in the background: dispatches warm-up jobs until
 * one of their events arrives, then drains what is left of them. */
static int
warm_up(cadre_events *sub)
{
    cadre_event  ev;
    cadre_job_id id;

    for (int i = 0; i < 50; i++) {
        if (dispatch("echo", NULL, &id) != CADRE_OK)
            return -1;
        if (cadre_events_next(sub, &ev, 200) == CADRE_OK) {
            while (cadre_events_next(sub, &ev, 300) == CADRE_OK)
                ;
            return 0;
        }
    }
    return -1;
}

/* The kinds of the events of id, in order, as a string ("dsD" ...). */
static void
kinds_of(const cadre_event *evs, size_t n, const cadre_job_id *id, char *out)
{
    static const char letters[] = "?dsDrF";
    size_t            k = 0;

    for (size_t i = 0; i < n; i++)
        if (memcmp(&evs[i].id, id, sizeof(*id)) == 0 && k < 15)
            out[k++] = evs[i].kind >= 1 && evs[i].kind <= 5
                           ? letters[evs[i].kind]
                           : '?';
    out[k] = '\0';
}

/* The i-th event (from 0) of id, or NULL. */
static const cadre_event *
nth_of(const cadre_event *evs, size_t n, const cadre_job_id *id, int nth)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&evs[i].id, id, sizeof(*id)) == 0 && nth-- == 0)
            return &evs[i];
    return NULL;
}

TEST(job_events_in_order)
{
    uint32_t       backoff[] = {0};
    cadre_job_opts once = {.tries = 1};
    cadre_job_opts twice = {.tries = 2, .backoff_s = backoff, .backoff_n = 1};
    cadre_client_opts  o;
    cadre_events      *sub = NULL, *wrong = NULL;
    cadre_event        evs[EVENTS_MAX], ev;
    cadre_job_id       echo_id, fail1_id, fail2_id;
    char               err[256], kinds[16], wrong_key[PATH_MAX + 32];
    size_t             n = 0;
    uint64_t           deadline;
    const cadre_event *e;
    keys_key           k;
    cd_err             kerr;

    REQUIRE(start() == 0);
    REQUIRE(node.events_url[0] != '\0');
    CHECK(strncmp(node.events_url, "tcp://127.0.0.1:", 16) == 0);
    CHECK(strcmp(node.events_url, node.url) != 0);

    /* Subscribe first; a second subscriber holds another cluster's key. */
    node_client_opts(&node, &o);
    REQUIRE_EQ(cadre_events_open(&o, node.events_url, &sub, err, sizeof(err)),
               CADRE_OK);
    snprintf(wrong_key, sizeof(wrong_key), "%s/other.key", node.data_dir);
    keys_generate(&k);
    REQUIRE_EQ(keys_save(wrong_key, KEYS_ROLE_MASTER, &k, &kerr), CADRE_OK);
    o.key_file = wrong_key;
    REQUIRE_EQ(cadre_events_open(&o, node.events_url, &wrong, err, sizeof(err)),
               CADRE_OK);
    REQUIRE(warm_up(sub) == 0);
    while (cadre_events_next(wrong, &ev, 0) == CADRE_OK)
        CHECK(0); /* the warm-up's events must not open either */

    REQUIRE_EQ(dispatch("echo", NULL, &echo_id), CADRE_OK);
    REQUIRE_EQ(dispatch("fail", &once, &fail1_id), CADRE_OK);
    REQUIRE_EQ(dispatch("fail", &twice, &fail2_id), CADRE_OK);
    /* 3 + 3 + 5 events. */
    deadline = cd_mono_ms() + 20000;
    while (n < 11 && cd_mono_ms() < deadline) {
        cadre_event *x = &evs[n];

        if (cadre_events_next(sub, x, 500) != CADRE_OK)
            continue;
        if (memcmp(&x->id, &echo_id, 16) == 0 ||
            memcmp(&x->id, &fail1_id, 16) == 0 ||
            memcmp(&x->id, &fail2_id, 16) == 0)
            n++;
    }
    CHECK_EQ(n, 11);

    kinds_of(evs, n, &echo_id, kinds);
    CHECK_STR(kinds, "dsD");
    kinds_of(evs, n, &fail1_id, kinds);
    CHECK_STR(kinds, "dsF");
    kinds_of(evs, n, &fail2_id, kinds);
    CHECK_STR(kinds, "dsrsF");

    /* Fields: the task, queue and attempt of each, the error type. */
    e = nth_of(evs, n, &echo_id, 0);
    REQUIRE(e != NULL);
    CHECK_STR(e->task, "echo");
    CHECK_STR(e->queue, "default");
    CHECK_EQ(e->attempt, 0);
    CHECK_STR(e->error_type, "");
    CHECK(e->at_ms > 1600000000000ULL);
    e = nth_of(evs, n, &echo_id, 2);
    REQUIRE(e != NULL);
    CHECK_EQ(e->kind, CADRE_EVENT_DONE);
    CHECK_EQ(e->attempt, 1);
    CHECK_STR(cadre_event_kind_name(e->kind), "done");
    e = nth_of(evs, n, &fail1_id, 2);
    REQUIRE(e != NULL);
    CHECK_EQ(e->kind, CADRE_EVENT_FAILED);
    CHECK_STR(e->task, "fail");
    CHECK_STR(e->error_type, "DemoError");
    e = nth_of(evs, n, &fail2_id, 2);
    REQUIRE(e != NULL);
    CHECK_EQ(e->kind, CADRE_EVENT_RELEASED);
    CHECK_EQ(e->attempt, 1);
    CHECK_STR(e->error_type, "DemoError");
    e = nth_of(evs, n, &fail2_id, 3);
    REQUIRE(e != NULL);
    CHECK_EQ(e->kind, CADRE_EVENT_STARTED);
    CHECK_EQ(e->attempt, 2);
    e = nth_of(evs, n, &fail2_id, 4);
    REQUIRE(e != NULL);
    CHECK_EQ(e->kind, CADRE_EVENT_FAILED);
    CHECK_EQ(e->attempt, 2);
    CHECK_STR(e->error_type, "DemoError");

    /* The wrong key: nothing opens. */
    CHECK_EQ(cadre_events_next(wrong, &ev, 500), CADRE_ETIMEDOUT);
    CHECK_EQ(cadre_events_next(sub, &ev, 0), CADRE_ETIMEDOUT);
    cadre_events_close(wrong);
    cadre_events_close(sub);
    cadre_events_close(NULL);
    stop();
}

TEST(cli_events_prints_json_lines)
{
    struct proc  p;
    char         log[PATH_MAX + 32], line[1024];
    cadre_job_id id;
    int          status = -1, got = 0;

    REQUIRE(start() == 0);
    snprintf(log, sizeof(log), "%s/events-cli.log", node.data_dir);
    memset(&p, 0, sizeof(p));
    REQUIRE_EQ(proc_start_cadre(&p, log, "events", "--events-url",
                                node.events_url, "--data", node.data_dir,
                                "--json", "--count", "1", NULL),
               CADRE_OK);
    for (int i = 0; i < 50 && !got; i++) {
        REQUIRE_EQ(dispatch("echo", NULL, &id), CADRE_OK);
        got = proc_wait_line(&p, "{\"at\":\"", 200, line, sizeof(line)) ==
              CADRE_OK;
    }
    REQUIRE(got);
    /* The subscription may connect in the middle of a job's events. */
    CHECK(strstr(line, "\"kind\":\"dispatched\"") != NULL ||
          strstr(line, "\"kind\":\"started\"") != NULL ||
          strstr(line, "\"kind\":\"done\"") != NULL);
    CHECK_CONTAINS(line, "\"attempt\":");
    CHECK_CONTAINS(line, "\"task\":\"echo\"");
    CHECK_CONTAINS(line, "\"queue\":\"default\"");
    /* It exits after --count events. (Once, in a loaded CI run under ASan,
     * it was still running 10 s later: a wider margin, and its log if it
     * happens again.) */
    if (proc_wait_exit(&p, 30000, &status) != CADRE_OK) {
        tap_fail(__FILE__, __LINE__, "cadre events --count 1 did not exit");
        proc_dump_log(&p, 20);
    }
    CHECK_EQ(status, 0);
    proc_fini(&p);

    /* Bad flags are usage errors. */
    {
        char out[256];
        int  code = -1;

        CHECK_EQ(proc_run_cli(out, sizeof(out), &code, "events", "--count", "0",
                              NULL),
                 CADRE_OK);
        CHECK_EQ(code, 2);
        CHECK_EQ(
            proc_run_cli(out, sizeof(out), &code, "events", "--bogus", NULL),
            CADRE_OK);
        CHECK_EQ(code, 2);
    }
    stop();
}

int
main(void)
{
    TAP_RUN(T(job_events_in_order), T(cli_events_prints_json_lines));
}
