/* seal.c: XChaCha20-Poly1305 (IETF) in place, detached tag written right
 * after the text, so a frame is nonce | ciphertext | tag with no copy. It
 * knows nothing of frames or headers: the caller passes those as additional
 * data. */
#include "crypto/seal.h"

#include <sodium.h>

#include "common/err.h"

_Static_assert(SEAL_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
               "nonce size");
_Static_assert(SEAL_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "tag size");
_Static_assert(KEYS_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "key size");

void
seal_close(const keys_key *k, const uint8_t *ad, size_t ad_len, uint8_t *nonce,
           uint8_t *text, size_t len)
{
    /* A random 192-bit nonce per message: no counter to keep or to lose on
     * restart, and collisions are negligible at any realistic volume. */
    randombytes_buf(nonce, SEAL_NONCE_LEN);
    /* libsodium supports c == m; encrypting in place cannot fail. */
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        text, text + len, NULL, text, len, ad, ad_len, NULL, nonce, k->b);
}

int
seal_open(const keys_key *k, const uint8_t *ad, size_t ad_len,
          const uint8_t *nonce, uint8_t *text, size_t len, size_t *plain_len)
{
    size_t n;

    if (len < SEAL_TAG_LEN)
        return CADRE_EAUTH;
    n = len - SEAL_TAG_LEN;
    /* The tag is checked before anything is decrypted; on failure libsodium
     * zeroes text[0..n), so nothing unauthenticated is ever left readable. */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            text, NULL, text, n, text + n, ad, ad_len, nonce, k->b) != 0)
        return CADRE_EAUTH;
    *plain_len = n;
    return CADRE_OK;
}
