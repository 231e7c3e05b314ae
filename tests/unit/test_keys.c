/* test_keys.c: key derivation, key files (format, atomic 0600 save, every
 * way a file can be wrong) and role checks of crypto/keys.c, plus the seal
 * primitive of crypto/seal.c. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "crypto/seal.h"
#include "tests/lib/tap.h"

static void
test_path(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void
test_write(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL) {
        perror(path);
        exit(1);
    }
    if (n > 0 && fwrite(text, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static int
test_key_eq(const keys_key *a, const keys_key *b)
{
    return memcmp(a->b, b->b, KEYS_LEN) == 0;
}

TEST(roles)
{
    CHECK_STR(keys_role_name(KEYS_ROLE_MASTER), "master");
    CHECK_STR(keys_role_name(KEYS_ROLE_NODE), "node");
    CHECK_STR(keys_role_name(KEYS_ROLE_WORKER), "worker");
    CHECK_STR(keys_role_name(KEYS_ROLE_CLIENT), "client");
    CHECK_STR(keys_role_name(KEYS_ROLE_COUNT), "unknown");
    CHECK_STR(keys_role_name(-1), "unknown");
    for (int r = 0; r < KEYS_ROLE_COUNT; r++)
        CHECK_EQ(keys_role_parse(keys_role_name(r)), r);
    CHECK_EQ(keys_role_parse("Node"), -1);
    CHECK_EQ(keys_role_parse(""), -1);
    CHECK_EQ(keys_role_parse(NULL), -1);
}

TEST(generate_is_random)
{
    keys_key a, b, zero;

    memset(&zero, 0, sizeof(zero));
    keys_generate(&a);
    keys_generate(&b);
    CHECK(!test_key_eq(&a, &b));
    CHECK(!test_key_eq(&a, &zero));
    keys_wipe(&a);
    CHECK(test_key_eq(&a, &zero));
    keys_wipe(NULL);
}

TEST(derive_by_role)
{
    keys_key master, other, d[KEYS_ROLE_COUNT], again;

    keys_generate(&master);
    keys_generate(&other);
    for (int r = 0; r < KEYS_ROLE_COUNT; r++) {
        keys_derive(&master, r, &d[r]);
        CHECK(!test_key_eq(&d[r], &master));
        /* Deterministic. */
        keys_derive(&master, r, &again);
        CHECK(test_key_eq(&d[r], &again));
        /* Depends on the master. */
        keys_derive(&other, r, &again);
        CHECK(!test_key_eq(&d[r], &again));
    }
    for (int a = 0; a < KEYS_ROLE_COUNT; a++)
        for (int b = a + 1; b < KEYS_ROLE_COUNT; b++)
            CHECK(!test_key_eq(&d[a], &d[b]));
    /* In place (out aliasing master) gives the same key. */
    again = master;
    keys_derive(&again, KEYS_ROLE_NODE, &again);
    CHECK(test_key_eq(&again, &d[KEYS_ROLE_NODE]));
}

/* A known answer, so that a change of context or subkey ids (which would
 * split a cluster across versions) cannot pass unnoticed. Computed apart from
 * libsodium: BLAKE2b-256, key = master, salt = role as u64 LE padded to 16,
 * personal = "cadre-v1" padded to 16 (Python's hashlib.blake2b). */
TEST(derive_known_answer)
{
    keys_key master, k;
    char     line[128];

    for (int i = 0; i < KEYS_LEN; i++)
        master.b[i] = (uint8_t)i;
    keys_derive(&master, KEYS_ROLE_NODE, &k);
    keys_format(KEYS_ROLE_NODE, &k, line, sizeof(line));
    CHECK_STR(line, "cadre-key v1 node "
                    "0d7d01a36e76f1241226a1c781e46faebed1dd401c07c1695279840e"
                    "9897e87b\n");
    keys_derive(&master, KEYS_ROLE_CLIENT, &k);
    keys_format(KEYS_ROLE_CLIENT, &k, line, sizeof(line));
    CHECK_STR(line, "cadre-key v1 client "
                    "706cc5b8f1b906c10a2e21bf36a33beb9bc036f3f5b5f150e3ffa4b0"
                    "b2341854\n");
}

TEST(format_line)
{
    keys_key k;
    char     line[128];

    for (int i = 0; i < KEYS_LEN; i++)
        k.b[i] = (uint8_t)(0xa0 + i);
    keys_format(KEYS_ROLE_WORKER, &k, line, sizeof(line));
    CHECK_STR(line, "cadre-key v1 worker "
                    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babb"
                    "bcbdbebf\n");
    /* Too small a buffer: truncated, never overrun. */
    memset(line, 'Z', sizeof(line));
    keys_format(KEYS_ROLE_WORKER, &k, line, 30);
    CHECK(strlen(line) < 30);
    CHECK_EQ(line[31], 'Z');
}

TEST(save_load_roundtrip)
{
    const char *dir = tap_tmpdir();
    char        path[512];
    keys_key    k, got;
    int         role = -1;
    cd_err      err;
    struct stat st;

    test_path(path, sizeof(path), dir, "cluster.key");
    for (int r = 0; r < KEYS_ROLE_COUNT; r++) {
        keys_generate(&k);
        REQUIRE_EQ(keys_save(path, r, &k, &err), CADRE_OK);
        REQUIRE_EQ(keys_load(path, &role, &got, &err), CADRE_OK);
        CHECK_EQ(role, r);
        CHECK(test_key_eq(&k, &got));
        REQUIRE(stat(path, &st) == 0);
        CHECK_EQ(st.st_mode & 0777, 0600);
        CHECK_EQ(st.st_size, (long long)(strlen("cadre-key v1  \n") +
                                         strlen(keys_role_name(r)) + 64));
    }
    /* Nothing else left in the directory (no temp files). */
    {
        char  cmd[600];
        FILE *p;
        int   n = 0;
        char  line[256];

        snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
        p = popen(cmd, "r");
        REQUIRE(p != NULL);
        while (fgets(line, sizeof(line), p) != NULL)
            n++;
        pclose(p);
        CHECK_EQ(n, 1);
    }
}

TEST(save_is_0600_whatever_the_umask)
{
    const char *dir = tap_tmpdir();
    char        path[512];
    keys_key    k;
    cd_err      err;
    struct stat st;
    mode_t      old = umask(0);

    test_path(path, sizeof(path), dir, "k");
    keys_generate(&k);
    /* Replacing a world-readable file leaves a 0600 one. */
    test_write(path, "old", 3);
    chmod(path, 0644);
    CHECK_EQ(keys_save(path, KEYS_ROLE_MASTER, &k, &err), CADRE_OK);
    umask(old);
    REQUIRE(stat(path, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
}

TEST(save_errors)
{
    const char *dir = tap_tmpdir();
    char        path[512];
    keys_key    k;
    cd_err      err;

    keys_generate(&k);
    test_path(path, sizeof(path), dir, "missing/dir/k");
    cd_err_clear(&err);
    CHECK_EQ(keys_save(path, KEYS_ROLE_MASTER, &k, &err), CADRE_EIO);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "No such file or directory");
    test_path(path, sizeof(path), dir, "k");
    CHECK_EQ(keys_save(path, KEYS_ROLE_COUNT, &k, &err), CADRE_EINVAL);
    CHECK_EQ(access(path, F_OK), -1);
}

TEST(load_missing_is_enotfound)
{
    const char *dir = tap_tmpdir();
    char        path[512];
    keys_key    k;
    int         role;
    cd_err      err;

    test_path(path, sizeof(path), dir, "nope.key");
    cd_err_clear(&err);
    CHECK_EQ(keys_load(path, &role, &k, &err), CADRE_ENOTFOUND);
    CHECK_CONTAINS(err.msg, path);
    CHECK_EQ(keys_load_for(path, KEYS_ROLE_CLIENT, &k, &err), CADRE_ENOTFOUND);
    /* A directory is not a key file. */
    CHECK_EQ(keys_load(dir, &role, &k, &err), CADRE_EIO);
    CHECK_CONTAINS(err.msg, dir);
}

TEST(load_bad_files)
{
    static const char hex[] =
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"", "not a cadre key file (expected 'cadre-key v1"},
        {"hello world\n", "not a cadre key file (expected 'cadre-key v1"},
        {"-----BEGIN PRIVATE KEY-----\n", "not a cadre key file"},
        {"cadre-key", "not a cadre key file"},
        {"cadre-key v2 node %s\n", "unsupported key file version 'v2'"},
        {"cadre-key v1\n", "missing role"},
        {"cadre-key v1 admin %s\n", "unknown role 'admin'"},
        {"cadre-key v1 node\n", "missing key"},
        {"cadre-key v1 node 0011\n", "not 64 hex digits"},
        {"cadre-key v1 node %.62sxx\n", "not 64 hex digits"},
        {"cadre-key v1 node %s00\n", "unexpected text after the key"},
        {"cadre-key v1 node %s\ncadre-key v1 node %s\n",
         "unexpected text after the key"},
        {"cadre-key  v1 node %s\n", "unsupported key file version ''"},
    };
    const char *dir = tap_tmpdir();
    char        path[512], text[512];
    keys_key    k;
    int         role;
    cd_err      err;

    test_path(path, sizeof(path), dir, "bad.key");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), bad[i].text, hex, hex);
        test_write(path, text, strlen(text));
        cd_err_clear(&err);
        CHECK_EQ(keys_load(path, &role, &k, &err), CADRE_EINVAL);
        CHECK_CONTAINS(err.msg, "key file ");
        CHECK_CONTAINS(err.msg, path);
        CHECK_CONTAINS(err.msg, bad[i].why);
    }
    /* Binary and oversized files. */
    test_write(path, "cadre-key v1 node \0\0\0", 21);
    CHECK_EQ(keys_load(path, &role, &k, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "not a cadre key file");
    memset(text, 'a', sizeof(text));
    test_write(path, text, sizeof(text));
    CHECK_EQ(keys_load(path, &role, &k, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "not a cadre key file");

    /* Tolerated: no final newline, CRLF, upper-case hex. */
    snprintf(text, sizeof(text), "cadre-key v1 node %s", hex);
    test_write(path, text, strlen(text));
    REQUIRE_EQ(keys_load(path, &role, &k, &err), CADRE_OK);
    CHECK_EQ(role, KEYS_ROLE_NODE);
    CHECK_EQ(k.b[0], 0x00);
    CHECK_EQ(k.b[31], 0x1f);
    snprintf(text, sizeof(text),
             "cadre-key v1 client "
             "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E"
             "1F\r\n");
    test_write(path, text, strlen(text));
    REQUIRE_EQ(keys_load(path, &role, &k, &err), CADRE_OK);
    CHECK_EQ(role, KEYS_ROLE_CLIENT);
    CHECK_EQ(k.b[10], 0x0a);
}

TEST(load_for_roles)
{
    const char *dir = tap_tmpdir();
    char        master_path[512], node_path[512];
    keys_key    master, node, k, want;
    cd_err      err;

    test_path(master_path, sizeof(master_path), dir, "master.key");
    test_path(node_path, sizeof(node_path), dir, "node.key");
    keys_generate(&master);
    keys_derive(&master, KEYS_ROLE_NODE, &node);
    REQUIRE_EQ(keys_save(master_path, KEYS_ROLE_MASTER, &master, &err),
               CADRE_OK);
    REQUIRE_EQ(keys_save(node_path, KEYS_ROLE_NODE, &node, &err), CADRE_OK);

    /* The master file yields every role's derived key. */
    for (int r = KEYS_ROLE_NODE; r <= KEYS_ROLE_CLIENT; r++) {
        REQUIRE_EQ(keys_load_for(master_path, r, &k, &err), CADRE_OK);
        keys_derive(&master, r, &want);
        CHECK(test_key_eq(&k, &want));
    }
    REQUIRE_EQ(keys_load_for(master_path, KEYS_ROLE_MASTER, &k, &err),
               CADRE_OK);
    CHECK(test_key_eq(&k, &master));

    /* A role's own file yields its key as is. */
    REQUIRE_EQ(keys_load_for(node_path, KEYS_ROLE_NODE, &k, &err), CADRE_OK);
    CHECK(test_key_eq(&k, &node));

    /* Another role's file is refused: a worker host cannot pose as a node,
     * nor a node key stand in for the master. */
    memset(&k, 0x5a, sizeof(k));
    cd_err_clear(&err);
    CHECK_EQ(keys_load_for(node_path, KEYS_ROLE_WORKER, &k, &err), CADRE_EAUTH);
    CHECK_CONTAINS(err.msg, node_path);
    CHECK_CONTAINS(err.msg, "holds the node key");
    CHECK_EQ(k.b[0], 0x5a); /* out-param untouched on failure */
    CHECK_EQ(keys_load_for(node_path, KEYS_ROLE_MASTER, &k, &err), CADRE_EAUTH);
    CHECK_EQ(keys_load_for(node_path, KEYS_ROLE_COUNT, &k, &err), CADRE_EINVAL);
}

TEST(seal_in_place)
{
    keys_key k, other;
    uint8_t  ad[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t  nonce[SEAL_NONCE_LEN], nonce2[SEAL_NONCE_LEN];
    uint8_t  text[64 + SEAL_TAG_LEN], copy[sizeof(text)];
    size_t   n = 0;

    keys_generate(&k);
    keys_generate(&other);
    memset(text, '.', sizeof(text));
    memcpy(text, "attack at dawn", 14);
    seal_close(&k, ad, sizeof(ad), nonce, text, 64);
    CHECK(memcmp(text, "attack at dawn", 14) != 0);
    memcpy(copy, text, sizeof(text));
    REQUIRE_EQ(seal_open(&k, ad, sizeof(ad), nonce, text, sizeof(text), &n),
               CADRE_OK);
    CHECK_EQ(n, 64);
    CHECK(memcmp(text, "attack at dawn", 14) == 0);

    /* Wrong key, changed additional data, changed nonce, changed tag. */
    memcpy(text, copy, sizeof(text));
    CHECK_EQ(seal_open(&other, ad, sizeof(ad), nonce, text, sizeof(text), &n),
             CADRE_EAUTH);
    memcpy(text, copy, sizeof(text));
    ad[0] ^= 1;
    CHECK_EQ(seal_open(&k, ad, sizeof(ad), nonce, text, sizeof(text), &n),
             CADRE_EAUTH);
    ad[0] ^= 1;
    memcpy(text, copy, sizeof(text));
    memcpy(nonce2, nonce, sizeof(nonce));
    nonce2[23] ^= 0x80;
    CHECK_EQ(seal_open(&k, ad, sizeof(ad), nonce2, text, sizeof(text), &n),
             CADRE_EAUTH);
    memcpy(text, copy, sizeof(text));
    text[sizeof(text) - 1] ^= 1;
    CHECK_EQ(seal_open(&k, ad, sizeof(ad), nonce, text, sizeof(text), &n),
             CADRE_EAUTH);
    /* Shorter than a tag. */
    CHECK_EQ(seal_open(&k, ad, sizeof(ad), nonce, text, SEAL_TAG_LEN - 1, &n),
             CADRE_EAUTH);

    /* Empty text: just a tag. Nonces differ per seal. */
    seal_close(&k, NULL, 0, nonce, text, 0);
    seal_close(&k, NULL, 0, nonce2, copy, 0);
    CHECK(memcmp(nonce, nonce2, sizeof(nonce)) != 0);
    REQUIRE_EQ(seal_open(&k, NULL, 0, nonce, text, SEAL_TAG_LEN, &n), CADRE_OK);
    CHECK_EQ(n, 0);
}

int
main(void)
{
    if (keys_init() != CADRE_OK) {
        fprintf(stderr, "keys_init failed\n");
        return 1;
    }
    CHECK_EQ(keys_init(), CADRE_OK); /* twice is fine */
    TAP_RUN(T(roles), T(generate_is_random), T(derive_by_role),
            T(derive_known_answer), T(format_line), T(save_load_roundtrip),
            T(save_is_0600_whatever_the_umask), T(save_errors),
            T(load_missing_is_enotfound), T(load_bad_files), T(load_for_roles),
            T(seal_in_place));
}
