/* appseal.c: sealing job payloads with the application key (appseal.h). */
#include "crypto/appseal.h"

#include <sodium.h>
#include <string.h>

#include "common/alloc.h"

_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24,
               "appseal nonce size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == 16,
               "appseal tag size");

#define APPSEAL_AD_LEN (APPSEAL_MAGIC_LEN + APPSEAL_KEY_ID_LEN)
#define APPSEAL_NONCE_AT APPSEAL_AD_LEN
#define APPSEAL_TEXT_AT (APPSEAL_AD_LEN + 24)

void
appseal_key_id(const keys_key *k, uint8_t id[APPSEAL_KEY_ID_LEN])
{
    static const uint8_t context[] = "cadre app key id";

    crypto_generichash(id, APPSEAL_KEY_ID_LEN, context, sizeof(context) - 1,
                       k->b, sizeof(k->b));
}

int
appseal_is_sealed(const void *buf, size_t len)
{
    return len >= APPSEAL_OVERHEAD &&
           memcmp(buf, APPSEAL_MAGIC, APPSEAL_MAGIC_LEN) == 0;
}

int
appseal_seal(const keys_key *k, const void *plain, size_t len, uint8_t **out,
             size_t *out_len)
{
    uint8_t           *p = cd_malloc(len + APPSEAL_OVERHEAD);
    unsigned long long clen = 0;

    if (p == NULL)
        return CADRE_ENOMEM;
    memcpy(p, APPSEAL_MAGIC, APPSEAL_MAGIC_LEN);
    appseal_key_id(k, p + APPSEAL_MAGIC_LEN);
    randombytes_buf(p + APPSEAL_NONCE_AT, 24);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        p + APPSEAL_TEXT_AT, &clen, plain, len, p, APPSEAL_AD_LEN, NULL,
        p + APPSEAL_NONCE_AT, k->b);
    *out = p;
    *out_len = APPSEAL_TEXT_AT + (size_t)clen;
    return CADRE_OK;
}

static void
appseal_hex(const uint8_t *id, char *buf)
{
    sodium_bin2hex(buf, 2 * APPSEAL_KEY_ID_LEN + 1, id, APPSEAL_KEY_ID_LEN);
}

int
appseal_open(const keys_key *k, const void *sealed, size_t len, uint8_t **out,
             size_t *out_len, cd_err *err)
{
    const uint8_t     *s = sealed;
    uint8_t            mine[APPSEAL_KEY_ID_LEN];
    uint8_t           *p;
    unsigned long long plen = 0;

    if (!appseal_is_sealed(sealed, len))
        return cd_err_set(err, CADRE_EINVAL, "not a sealed payload");
    appseal_key_id(k, mine);
    if (memcmp(mine, s + APPSEAL_MAGIC_LEN, APPSEAL_KEY_ID_LEN) != 0) {
        char theirs_hex[2 * APPSEAL_KEY_ID_LEN + 1];
        char mine_hex[2 * APPSEAL_KEY_ID_LEN + 1];

        appseal_hex(s + APPSEAL_MAGIC_LEN, theirs_hex);
        appseal_hex(mine, mine_hex);
        return cd_err_set(err, CADRE_EAUTH,
                          "sealed with application key %s, this key is %s",
                          theirs_hex, mine_hex);
    }
    p = cd_malloc(len - APPSEAL_OVERHEAD + 1);
    if (p == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            p, &plen, NULL, s + APPSEAL_TEXT_AT, len - APPSEAL_TEXT_AT, s,
            APPSEAL_AD_LEN, s + APPSEAL_NONCE_AT, k->b) != 0) {
        cd_free(p);
        return cd_err_set(err, CADRE_EAUTH, "payload was tampered with");
    }
    p[plen] = '\0';
    *out = p;
    *out_len = (size_t)plen;
    return CADRE_OK;
}

int
appseal_seal_text(const keys_key *k, const char *text, char **out)
{
    size_t   prefix = sizeof(APPSEAL_TEXT_PREFIX) - 1;
    uint8_t *sealed = NULL;
    size_t   len = 0, b64;
    char    *s;

    if (appseal_seal(k, text, strlen(text), &sealed, &len) != CADRE_OK)
        return CADRE_ENOMEM;
    b64 = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    s = cd_malloc(prefix + b64);
    if (s == NULL) {
        cd_free(sealed);
        return CADRE_ENOMEM;
    }
    memcpy(s, APPSEAL_TEXT_PREFIX, prefix);
    sodium_bin2base64(s + prefix, b64, sealed, len,
                      sodium_base64_VARIANT_ORIGINAL);
    cd_free(sealed);
    *out = s;
    return CADRE_OK;
}

int
appseal_open_text(const keys_key *k, const char *text, char **out, cd_err *err)
{
    size_t   prefix = sizeof(APPSEAL_TEXT_PREFIX) - 1;
    size_t   len, bin_len = 0;
    uint8_t *bin, *plain = NULL;
    size_t   plain_len = 0;
    int      rc;

    if (text == NULL || strncmp(text, APPSEAL_TEXT_PREFIX, prefix) != 0)
        return cd_err_set(err, CADRE_EINVAL, "not sealed text");
    len = strlen(text + prefix);
    bin = cd_malloc(len + 1);
    if (bin == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if (sodium_base642bin(bin, len + 1, text + prefix, len, NULL, &bin_len,
                          NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        cd_free(bin);
        return cd_err_set(err, CADRE_EINVAL, "not sealed text");
    }
    rc = appseal_open(k, bin, bin_len, &plain, &plain_len, err);
    cd_free(bin);
    if (rc != CADRE_OK)
        return rc;
    *out = (char *)plain; /* appseal_open NUL-terminates */
    return CADRE_OK;
}
