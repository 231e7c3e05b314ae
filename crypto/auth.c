/* auth.c: purpose-bound MAC keys and keyed BLAKE2b-256 tags for handshakes.
 * Deriving with crypto_kdf keeps handshake keys apart from the sealing keys
 * that use the same role key; tags are compared with sodium_memcmp only. */
#include "crypto/auth.h"

#include <sodium.h>
#include <string.h>

#include "common/err.h"

_Static_assert(AUTH_PURPOSE_LEN == crypto_kdf_CONTEXTBYTES, "purpose size");
_Static_assert(AUTH_MAC_LEN >= crypto_generichash_BYTES_MIN &&
                   AUTH_MAC_LEN <= crypto_generichash_BYTES_MAX,
               "mac size");
_Static_assert(KEYS_LEN >= crypto_generichash_KEYBYTES_MIN &&
                   KEYS_LEN <= crypto_generichash_KEYBYTES_MAX,
               "mac key size");

/* The subkey id within a purpose; a new scheme gets a new purpose. */
#define AUTH_SUBKEY_ID 1

void
auth_derive(const keys_key *k, const char *purpose, keys_key *out)
{
    keys_key tmp; /* out may alias k */

    crypto_kdf_derive_from_key(tmp.b, sizeof(tmp.b), AUTH_SUBKEY_ID, purpose,
                               k->b);
    memcpy(out->b, tmp.b, sizeof(tmp.b));
    sodium_memzero(&tmp, sizeof(tmp));
}

void
auth_random(uint8_t *buf, size_t len)
{
    randombytes_buf(buf, len);
}

void
auth_mac(const keys_key *k, const char *label, const uint8_t *msg, size_t len,
         uint8_t out[AUTH_MAC_LEN])
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, k->b, KEYS_LEN, AUTH_MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)label,
                              strlen(label) + 1);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, out, AUTH_MAC_LEN);
    sodium_memzero(&st, sizeof(st));
}

int
auth_verify(const keys_key *k, const char *label, const uint8_t *msg,
            size_t len, const uint8_t mac[AUTH_MAC_LEN])
{
    uint8_t want[AUTH_MAC_LEN];
    int     same;

    auth_mac(k, label, msg, len, want);
    same = sodium_memcmp(want, mac, AUTH_MAC_LEN) == 0;
    sodium_memzero(want, sizeof(want));
    return same ? CADRE_OK : CADRE_EAUTH;
}
