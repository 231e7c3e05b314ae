/* test_appseal.c: payload sealing with the application key. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "crypto/appseal.h"
#include "tests/lib/tap.h"

TEST(round_trip_and_layout)
{
    keys_key k;
    uint8_t *sealed = NULL, *plain = NULL;
    size_t   slen = 0, plen = 0;
    cd_err   err = {0};

    REQUIRE_EQ(keys_init(), CADRE_OK);
    keys_generate(&k);
    REQUIRE_EQ(appseal_seal(&k, "card 4242", 9, &sealed, &slen), CADRE_OK);
    CHECK_EQ(slen, 9 + APPSEAL_OVERHEAD);
    CHECK(appseal_is_sealed(sealed, slen));
    CHECK(memmem(sealed, slen, "4242", 4) == NULL); /* no plaintext */
    REQUIRE_EQ(appseal_open(&k, sealed, slen, &plain, &plen, &err), CADRE_OK);
    CHECK_EQ(plen, 9);
    CHECK_STR((char *)plain, "card 4242");
    cd_free(sealed);
    cd_free(plain);
    /* An empty payload seals too. */
    REQUIRE_EQ(appseal_seal(&k, "", 0, &sealed, &slen), CADRE_OK);
    REQUIRE_EQ(appseal_open(&k, sealed, slen, &plain, &plen, &err), CADRE_OK);
    CHECK_EQ(plen, 0);
    cd_free(sealed);
    cd_free(plain);
}

TEST(wrong_key_and_tampering_are_told_apart)
{
    keys_key a, b;
    uint8_t *sealed = NULL, *plain = NULL;
    size_t   slen = 0, plen = 0;
    cd_err   err = {0};

    REQUIRE_EQ(keys_init(), CADRE_OK);
    keys_generate(&a);
    keys_generate(&b);
    REQUIRE_EQ(appseal_seal(&a, "secret", 6, &sealed, &slen), CADRE_OK);
    CHECK_EQ(appseal_open(&b, sealed, slen, &plain, &plen, &err), CADRE_EAUTH);
    CHECK_CONTAINS(err.msg, "sealed with application key");
    for (size_t i = APPSEAL_MAGIC_LEN + APPSEAL_KEY_ID_LEN; i < slen; i++) {
        sealed[i] ^= 1;
        CHECK_EQ(appseal_open(&a, sealed, slen, &plain, &plen, &err),
                 CADRE_EAUTH);
        sealed[i] ^= 1;
    }
    CHECK_CONTAINS(err.msg, "tampered");
    CHECK_EQ(appseal_open(&a,
                          "plain text payload, long enough to be "
                          "mistaken for a sealed one if it were",
                          70, &plain, &plen, &err),
             CADRE_EINVAL);
    CHECK_EQ(appseal_open(&a, sealed, 10, &plain, &plen, &err), CADRE_EINVAL);
    cd_free(sealed);
}

TEST(app_key_is_never_derived_from_the_cluster_key)
{
    char     path[600], app_path[640];
    keys_key master, app, got;
    cd_err   err = {0};

    REQUIRE_EQ(keys_init(), CADRE_OK);
    snprintf(path, sizeof(path), "%s/cluster.key", tap_tmpdir());
    snprintf(app_path, sizeof(app_path), "%s.app", path);
    keys_generate(&master);
    keys_generate(&app);
    REQUIRE_EQ(keys_save(path, KEYS_ROLE_MASTER, &master, &err), CADRE_OK);
    REQUIRE_EQ(keys_save(app_path, KEYS_ROLE_APP, &app, &err), CADRE_OK);
    CHECK_EQ(keys_load_for(path, KEYS_ROLE_APP, &got, &err), CADRE_EAUTH);
    REQUIRE_EQ(keys_load_for(app_path, KEYS_ROLE_APP, &got, &err), CADRE_OK);
    CHECK(memcmp(&got, &app, sizeof(app)) == 0);
    CHECK_EQ(keys_load_for(app_path, KEYS_ROLE_CLIENT, &got, &err),
             CADRE_EAUTH);
}

int
main(void)
{
    TAP_RUN(T(round_trip_and_layout), T(wrong_key_and_tampering_are_told_apart),
            T(app_key_is_never_derived_from_the_cluster_key));
}
