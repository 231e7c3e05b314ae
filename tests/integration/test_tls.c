/* test_tls.c: tls+tcp:// as the optional outer layer. Certificates come from
 * a private CA made with the openssl command. A node listening on
 * tls+tcp:// with a CA requires a certificate it signed from clients, its
 * supervised workers and peers, and they verify its certificate; frames
 * inside stay sealed with the cluster keys as ever. Clients without a
 * certificate, with one from another CA, or that do not trust the node's
 * CA get nothing stored; two nodes join and steal over TLS; tls+tcp://
 * without a certificate refuses to start. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/clock.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define TLS_LISTEN "tls+tcp://127.0.0.1:0"

/* PEM files made by make_certs in the test's temp dir. */
static char ca_crt[PATH_MAX + 32];   /* the cluster's CA */
static char node_pem[PATH_MAX + 32]; /* nodes: cert + key, 127.0.0.1 */
static char client_pem[PATH_MAX + 32];
static char other_ca[PATH_MAX + 32];  /* another CA */
static char rogue_pem[PATH_MAX + 32]; /* signed by the other CA */

/* Makes both CAs and the certificates with openssl. The node's names
 * 127.0.0.1 as an IP and as a DNS name: Debian's nng verifies with mbedTLS
 * 2.28, which matches only DNS names (README, Security). */
static int
make_certs(const char *dir)
{
    static const char script[] =
        "set -e; cd \"$1\"\n"
        "ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'\n"
        "ca() { openssl req -x509 $ec -days 2 -subj \"/CN=$1\" "
        "-keyout $2.key -out $2.crt; }\n"
        "cert() { n=$1 by=$2; shift 2\n"
        "  openssl req $ec -subj \"/CN=$n\" \"$@\" -keyout $n.key -out $n.csr\n"
        "  openssl x509 -req -in $n.csr -CA $by.crt -CAkey $by.key "
        "-CAcreateserial -days 2 -copy_extensions copy -out $n.crt\n"
        "  cat $n.crt $n.key > $n.pem; }\n"
        "ca 'cadre test CA' ca; ca 'other CA' other\n"
        "cert node ca -addext subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\n"
        "cert client ca\n"
        "cert rogue other\n";
    char *argv[] = {"/bin/sh", "-c", (char *)script, "sh", (char *)dir, NULL};
    static char    err[8192];
    struct proc_io io = {.err = err, .err_len = sizeof(err)};
    int            code = -1;

    snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
    snprintf(node_pem, sizeof(node_pem), "%s/node.pem", dir);
    snprintf(client_pem, sizeof(client_pem), "%s/client.pem", dir);
    snprintf(other_ca, sizeof(other_ca), "%s/other.crt", dir);
    snprintf(rogue_pem, sizeof(rogue_pem), "%s/rogue.pem", dir);
    /* The defaults of clients and workers must not leak in. */
    unsetenv("CADRE_TLS_CERT");
    unsetenv("CADRE_TLS_CA");
    if (proc_run(argv, &io, &code) != CADRE_OK || code != 0) {
        fprintf(stderr, "openssl failed (%d):\n%s\n", code, err);
        return -1;
    }
    return 0;
}

/* A node on tls+tcp:// (api, and so peer and events) with the node
 * certificate and the CA, id, workers, fast heartbeats; key_file and seed
 * (a peer url) may be NULL. */
static int
start_node(struct node_proc *n, const char *dir, const char *id,
           const char *workers, const char *key_file, const char *seed)
{
    char *args[40];
    int   a = 0;

    args[a++] = "--listen";
    args[a++] = TLS_LISTEN;
    args[a++] = "--tls-cert";
    args[a++] = node_pem;
    args[a++] = "--tls-ca";
    args[a++] = ca_crt;
    args[a++] = "--node-id";
    args[a++] = (char *)id;
    args[a++] = "--workers";
    args[a++] = (char *)workers;
    args[a++] = "--plugin";
    args[a++] = (char *)proc_demo_plugin();
    args[a++] = "--heartbeat-ms"; /* join quickly */
    args[a++] = "100";
    if (key_file != NULL) {
        args[a++] = "--key-file";
        args[a++] = (char *)key_file;
    }
    if (seed != NULL) {
        args[a++] = "--peer";
        args[a++] = (char *)seed;
    }
    args[a] = NULL;
    memset(n, 0, sizeof(*n));
    return node_startv(n, dir, NULL, args);
}

/* A client of n presenting cert (NULL: none) and trusting ca (NULL: the
 * node is not verified). */
static cadre_client *
open_client(const struct node_proc *n, const char *cert, const char *ca,
            uint32_t timeout_ms)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[512];

    node_client_opts(n, &o);
    o.tls_cert_file = cert;
    o.tls_ca_file = ca;
    o.timeout_ms = timeout_ms;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* Jobs the node holds in any state. */
static int
stored_jobs(cadre_client *c, uint64_t *total)
{
    cadre_status st;
    int          rc = cadre_status_get(c, &st);

    *total = 0;
    if (rc != CADRE_OK)
        return rc;
    for (size_t i = 0; i < st.queues_n; i++)
        *total += st.queues[i].ready + st.queues[i].delayed +
                  st.queues[i].reserved + st.queues[i].done +
                  st.queues[i].failed;
    cadre_status_fini(&st);
    return CADRE_OK;
}

/* Dispatches echo(text) through c and waits for it: its status, with the
 * result copied into out (NUL-terminated). */
static int
echo(cadre_client *c, const char *text, char *out, size_t out_len)
{
    cadre_job_id  id;
    cadre_outcome o;
    int           rc = cadre_dispatch(c, "echo", text, strlen(text), NULL, &id);

    if (rc != CADRE_OK)
        return -rc;
    if (cadre_wait(c, &id, 1, 20000, &o) != CADRE_OK)
        return -CADRE_ETIMEDOUT;
    rc = o.status;
    snprintf(out, out_len, "%.*s", (int)o.result_len,
             o.result ? (const char *)o.result : "");
    cadre_outcome_fini(&o);
    return rc;
}

TEST(mutual_tls_client_workers_events_cli)
{
    const char       *dir = tap_tmpdir();
    struct node_proc  node;
    cadre_client     *c;
    cadre_client_opts o;
    cadre_events     *sub = NULL;
    cadre_event       ev;
    char              result[64], out[256], err[512];
    int               code = -1, got_event = 0;

    REQUIRE(make_certs(dir) == 0);
    REQUIRE_EQ(start_node(&node, dir, "a", "2", NULL, NULL), CADRE_OK);
    /* Every url the node reports keeps the scheme (port 0 resolved). */
    CHECK(strncmp(node.url, "tls+tcp://127.0.0.1:", 20) == 0);
    CHECK(strcmp(node.url, "tls+tcp://127.0.0.1:0") != 0);
    CHECK(strncmp(node.events_url, "tls+tcp://127.0.0.1:", 20) == 0);
    CHECK(strncmp(node.peer_url, "tls+tcp://127.0.0.1:", 20) == 0);

    /* The supervised workers (--tls-cert/--tls-ca from the node) run it. */
    c = open_client(&node, client_pem, ca_crt, 10000);
    REQUIRE(c != NULL);
    CHECK_EQ(echo(c, "over tls", result, sizeof(result)), CADRE_DONE);
    CHECK_STR(result, "over tls");

    /* Events over TLS: a subscriber with the same files hears a job. */
    node_client_opts(&node, &o);
    o.tls_cert_file = client_pem;
    o.tls_ca_file = ca_crt;
    REQUIRE_EQ(cadre_events_open(&o, node.events_url, &sub, err, sizeof(err)),
               CADRE_OK);
    for (int i = 0; i < 50 && !got_event; i++) {
        cadre_job_id id;

        REQUIRE_EQ(cadre_dispatch(c, "echo", "e", 1, NULL, &id), CADRE_OK);
        got_event = cadre_events_next(sub, &ev, 200) == CADRE_OK;
    }
    CHECK(got_event);

    /* The CLI's connection flags. */
    CHECK_EQ(proc_run_cli(out, sizeof(out), &code, "dispatch", "echo", "cli",
                          "--wait", "--url", node.url, "--key-file",
                          node.key_file, "--tls-cert", client_pem, "--tls-ca",
                          ca_crt, NULL),
             CADRE_OK);
    CHECK_EQ(code, 0);
    CHECK_CONTAINS(out, "cli");
    /* ... and the environment, as for every client and worker. */
    setenv("CADRE_TLS_CERT", client_pem, 1);
    setenv("CADRE_TLS_CA", ca_crt, 1);
    CHECK_EQ(proc_run_cli(out, sizeof(out), &code, "dispatch", "echo", "env",
                          "--wait", "--url", node.url, "--key-file",
                          node.key_file, NULL),
             CADRE_OK);
    unsetenv("CADRE_TLS_CERT");
    unsetenv("CADRE_TLS_CA");
    CHECK_EQ(code, 0);
    CHECK_CONTAINS(out, "env");

    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
    /* Closed once its publisher is gone: nng 1.5.2's nng_close can deadlock
     * on a subscription still receiving (nanomsg/nng#1543; cli/events.c). */
    cadre_events_close(sub);
}

TEST(no_certificate_or_another_ca_stores_nothing)
{
    const char      *dir = tap_tmpdir();
    struct node_proc node;
    cadre_client    *c, *good;
    cadre_job_id     id;
    uint64_t         total = 1;
    /* cert, ca of each client that must not get through */
    const char *bad[][2] = {
        {NULL, ca_crt},         /* no certificate */
        {rogue_pem, ca_crt},    /* a certificate from another CA */
        {client_pem, other_ca}, /* does not trust the node's CA */
        {NULL, NULL},           /* neither */
    };

    REQUIRE(make_certs(dir) == 0);
    REQUIRE_EQ(start_node(&node, dir, "a", "0", NULL, NULL), CADRE_OK);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = open_client(&node, bad[i][0], bad[i][1], 1500);
        REQUIRE(c != NULL); /* the dial is in the background */
        CHECK(cadre_dispatch(c, "echo", "x", 1, NULL, &id) != CADRE_OK);
        cadre_client_close(c);
    }
    /* A client with the right files sees that nothing was stored. */
    good = open_client(&node, client_pem, ca_crt, 10000);
    REQUIRE(good != NULL);
    REQUIRE_EQ(stored_jobs(good, &total), CADRE_OK);
    CHECK_EQ(total, 0);
    CHECK_EQ(cadre_dispatch(good, "echo", "x", 1, NULL, &id), CADRE_OK);
    REQUIRE_EQ(stored_jobs(good, &total), CADRE_OK);
    CHECK_EQ(total, 1);
    cadre_client_close(good);
    CHECK_EQ(node_stop(&node), 0);
}

/* Whether c's node lists member id as alive. */
static int
sees_alive(cadre_client *c, const char *id)
{
    cadre_member *ms = NULL;
    size_t        n = 0;
    int           alive = 0;

    if (cadre_cluster_members(c, &ms, &n) != CADRE_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        alive |=
            strcmp(ms[i].node_id, id) == 0 && ms[i].state == CADRE_MEMBER_ALIVE;
    cadre_members_free(ms, n);
    return alive;
}

TEST(two_nodes_join_and_steal_over_tls)
{
    const char      *dir = tap_tmpdir();
    struct node_proc a, b;
    cadre_client    *ca = NULL, *cb = NULL;
    cadre_status     st;
    char             key[PATH_MAX + 16], da[PATH_MAX + 16], db[PATH_MAX + 16];
    char             result[64];
    uint64_t         until;
    int              both = 0;

    REQUIRE(make_certs(dir) == 0);
    snprintf(key, sizeof(key), "%s/cluster.key", dir);
    snprintf(da, sizeof(da), "%s/a", dir);
    snprintf(db, sizeof(db), "%s/b", dir);
    REQUIRE_EQ(node_keygen(key), CADRE_OK);
    /* a has the workers; b has none and joins through a's peer url. */
    REQUIRE_EQ(start_node(&a, da, "a", "2", key, NULL), CADRE_OK);
    REQUIRE(strncmp(a.peer_url, "tls+tcp://", 10) == 0);
    REQUIRE_EQ(start_node(&b, db, "b", "0", key, a.peer_url), CADRE_OK);
    ca = open_client(&a, client_pem, ca_crt, 5000);
    cb = open_client(&b, client_pem, ca_crt, 5000);
    REQUIRE(ca != NULL && cb != NULL);

    until = cd_mono_ms() + 15000;
    while (!both && cd_mono_ms() < until) {
        both = sees_alive(ca, "b") && sees_alive(cb, "a");
        if (!both)
            cd_sleep_ms(100);
    }
    CHECK(both);

    /* Dispatched to b, run by a's workers, the outcome back at b. */
    CHECK_EQ(echo(cb, "stolen", result, sizeof(result)), CADRE_DONE);
    CHECK_STR(result, "stolen");
    REQUIRE_EQ(cadre_status_get(ca, &st), CADRE_OK);
    CHECK(st.jobs_stolen >= 1);
    CHECK_EQ(st.members_alive, 1);
    cadre_status_fini(&st);

    cadre_client_close(ca);
    cadre_client_close(cb);
    CHECK_EQ(node_stop(&b), 0);
    CHECK_EQ(node_stop(&a), 0);
}

TEST(tls_listen_without_certificate_refuses_to_start)
{
    const char    *dir = tap_tmpdir();
    char           out[1024], err[4096], missing[PATH_MAX + 16];
    struct proc_io io = {.out = out,
                         .out_len = sizeof(out),
                         .err = err,
                         .err_len = sizeof(err),
                         .timeout_ms = 15000};
    int            code = -1;

    REQUIRE(make_certs(dir) == 0);
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--data", dir, "--listen",
                               TLS_LISTEN, NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_CONTAINS(err, "a tls+tcp url needs tls-cert");
    CHECK(strstr(out, "ready") == NULL);

    /* Only the peer url on tls+tcp: the same. */
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--data", dir, "--listen",
                               "tcp://127.0.0.1:0", "--peer-listen", TLS_LISTEN,
                               NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_CONTAINS(err, "listen tls+tcp://127.0.0.1:0: a tls+tcp url needs "
                        "tls-cert");

    /* A certificate file that is not there is named. */
    snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
    REQUIRE_EQ(proc_run_cli_io(&io, &code, "node", "--data", dir, "--listen",
                               TLS_LISTEN, "--tls-cert", missing, NULL),
               CADRE_OK);
    CHECK_EQ(code, 1);
    CHECK_CONTAINS(err, "missing.pem");
}

int
main(void)
{
    TAP_RUN(T(mutual_tls_client_workers_events_cli),
            T(no_certificate_or_another_ca_stores_nothing),
            T(two_nodes_join_and_steal_over_tls),
            T(tls_listen_without_certificate_refuses_to_start));
}
