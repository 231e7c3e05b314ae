/* test_encrypted.c: encrypted jobs. The client seals the payload with the
 * application key; the node stores and moves ciphertext only (the raw LMDB
 * dump holds no plaintext); a worker with the key opens it and seals the
 * result, which the client opens; a worker without the key, or with another
 * one, or a tampered payload, fails the job for good with a clear error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "crypto/appseal.h"
#include "tests/lib/proc.h"
#include "tests/lib/tap.h"

#define SECRET "card 4242-4242-4242-4242"

static struct node_proc node;
static char             app_key[PATH_MAX + 16], other_key[PATH_MAX + 16];

static void
make_keys(const char *dir)
{
    keys_key k;
    cd_err   err = {0};

    keys_init();
    snprintf(app_key, sizeof(app_key), "%s/app.key", dir);
    snprintf(other_key, sizeof(other_key), "%s/other.key", dir);
    keys_generate(&k);
    keys_save(app_key, KEYS_ROLE_APP, &k, &err);
    keys_generate(&k);
    keys_save(other_key, KEYS_ROLE_APP, &k, &err);
}

/* A node whose one supervised worker has worker_key (NULL: none). */
static int
start_node(const char *dir, const char *worker_key)
{
    char *args[] = {"--workers", "1", "--plugin", (char *)proc_demo_plugin(),
                    NULL};

    if (worker_key != NULL)
        setenv("CADRE_APP_KEY_FILE", worker_key, 1); /* the pool's env */
    else
        unsetenv("CADRE_APP_KEY_FILE");
    memset(&node, 0, sizeof(node));
    return node_startv(&node, dir, NULL, args);
}

static cadre_client *
open_client(const char *key)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    unsetenv("CADRE_APP_KEY_FILE");
    node_client_opts(&node, &o);
    o.app_key_file = key;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK)
        fprintf(stderr, "client: %s\n", err);
    return c;
}

/* Runs echo(SECRET) encrypted and waits. */
static int
run_encrypted(cadre_client *c, cadre_outcome *o)
{
    cadre_job_opts opts = {.encrypted = 1};
    cadre_job_id   id;
    int rc = cadre_dispatch(c, "echo", SECRET, strlen(SECRET), &opts, &id);

    if (rc != CADRE_OK)
        return rc;
    return cadre_wait(c, &id, 1, 15000, o);
}

/* Whether the raw store (mdb_dump of every database) contains needle. */
static int
store_contains(const char *data_dir, const char *needle)
{
    char           path[PATH_MAX + 16];
    static char    out[1 << 20];
    char          *argv[] = {"mdb_dump", "-a", "-p", path, NULL};
    struct proc_io io = {.out = out, .out_len = sizeof(out)};
    int            code = -1;

    snprintf(path, sizeof(path), "%s/store", data_dir);
    if (proc_run(argv, &io, &code) != CADRE_OK || code != 0)
        return -1;
    if (strstr(out, "VERSION=") == NULL)
        return -1; /* not a dump */
    return strstr(out, needle) != NULL;
}

TEST(ciphertext_on_the_node_plaintext_at_both_ends)
{
    const char   *dir = tap_tmpdir();
    cadre_client *c;
    cadre_outcome o;

    make_keys(dir);
    REQUIRE_EQ(start_node(dir, app_key), CADRE_OK);
    c = open_client(app_key);
    REQUIRE(c != NULL);
    REQUIRE_EQ(run_encrypted(c, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_DONE);
    REQUIRE_EQ(o.result_len, strlen(SECRET));
    CHECK(memcmp(o.result, SECRET, o.result_len) == 0);
    cadre_outcome_fini(&o);
    /* The store has the job's result record, sealed: no plaintext. */
    CHECK_EQ(store_contains(node.data_dir, "4242"), 0);
    CHECK_EQ(store_contains(node.data_dir, APPSEAL_MAGIC), 1);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

TEST(no_key_other_key_and_tampering_fail_for_good)
{
    const char    *dir = tap_tmpdir();
    cadre_client  *c;
    cadre_outcome  o;
    cadre_job_opts opts = {.tries = 3};
    cadre_job_id   id;
    uint8_t        fake[80];

    make_keys(dir);
    REQUIRE_EQ(start_node(dir, NULL), CADRE_OK); /* worker without a key */
    c = open_client(app_key);
    REQUIRE(c != NULL);
    REQUIRE_EQ(run_encrypted(c, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 1); /* not retried: it cannot get better */
    CHECK_STR(o.error, "cannot open encrypted payload: no application key "
                       "(--app-key-file or CADRE_APP_KEY_FILE)");
    cadre_outcome_fini(&o);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);

    REQUIRE_EQ(start_node(dir, other_key), CADRE_OK); /* another key */
    c = open_client(app_key);
    REQUIRE(c != NULL);
    REQUIRE_EQ(run_encrypted(c, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_CONTAINS(o.error, "sealed with application key");
    cadre_outcome_fini(&o);

    /* Bytes that claim to be sealed with the worker's key but are not. */
    memset(fake, 0x41, sizeof(fake));
    memcpy(fake, APPSEAL_MAGIC, APPSEAL_MAGIC_LEN);
    {
        keys_key k;
        int      role;

        REQUIRE_EQ(keys_load(other_key, &role, &k, NULL), CADRE_OK);
        appseal_key_id(&k, fake + APPSEAL_MAGIC_LEN);
    }
    REQUIRE_EQ(cadre_dispatch(c, "echo", fake, sizeof(fake), &opts, &id),
               CADRE_OK);
    REQUIRE_EQ(cadre_wait(c, &id, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_EQ(o.attempts, 1);
    CHECK_CONTAINS(o.error, "tampered");
    cadre_outcome_fini(&o);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

TEST(encrypted_dispatch_without_a_key_is_refused)
{
    const char    *dir = tap_tmpdir();
    cadre_client  *c;
    cadre_job_opts opts = {.encrypted = 1};
    cadre_job_id   id;

    make_keys(dir);
    REQUIRE_EQ(start_node(dir, NULL), CADRE_OK);
    c = open_client(NULL);
    REQUIRE(c != NULL);
    CHECK_EQ(cadre_dispatch(c, "echo", "x", 1, &opts, &id), CADRE_EINVAL);
    CHECK_CONTAINS(cadre_client_errmsg(c), "no application key");
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

/* A handler's error text about an encrypted job comes back sealed to the
 * node and open to the client. */
TEST(error_text_of_encrypted_jobs_is_sealed)
{
    const char    *dir = tap_tmpdir();
    cadre_client  *c, *blind;
    cadre_outcome  o;
    cadre_job_opts opts = {.encrypted = 1};
    cadre_job_id   id;

    make_keys(dir);
    REQUIRE_EQ(start_node(dir, app_key), CADRE_OK);
    c = open_client(app_key);
    blind = open_client(NULL);
    REQUIRE(c != NULL && blind != NULL);
    REQUIRE_EQ(cadre_dispatch(c, "fail", SECRET, strlen(SECRET), &opts, &id),
               CADRE_OK);
    REQUIRE_EQ(cadre_wait(c, &id, 1, 15000, &o), CADRE_OK);
    CHECK_EQ(o.status, CADRE_FAILED);
    CHECK_STR(o.error_type, "DemoError");
    CHECK_STR(o.error, SECRET); /* the demo fail task's message: payload */
    cadre_outcome_fini(&o);
    REQUIRE_EQ(cadre_wait(blind, &id, 1, 15000, &o), CADRE_OK);
    CHECK_CONTAINS(o.error, APPSEAL_TEXT_PREFIX);
    CHECK(strstr(o.error, "4242") == NULL);
    cadre_outcome_fini(&o);
    CHECK_EQ(store_contains(node.data_dir, "4242"), 0);
    cadre_client_close(blind);
    cadre_client_close(c);
    CHECK_EQ(node_stop(&node), 0);
}

int
main(void)
{
    TAP_RUN(T(ciphertext_on_the_node_plaintext_at_both_ends),
            T(no_key_other_key_and_tampering_fail_for_good),
            T(encrypted_dispatch_without_a_key_is_refused),
            T(error_text_of_encrypted_jobs_is_sealed));
}
