/* appseal.h: payloads of `encrypted` jobs, sealed by the client with the
 * application key, which nodes never hold. Layout of a sealed payload:
 *
 *   magic "cadre-e1" (8) | key id (8) | nonce (24) | ciphertext | tag (16)
 *
 * magic and key id are additional data (authenticated, not secret). The key
 * id is a keyed hash of the key, so a worker holding another key says so
 * instead of reporting tampering. XChaCha20-Poly1305 (libsodium). */
#ifndef CRYPTO_APPSEAL_H
#define CRYPTO_APPSEAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keys.h"

#define APPSEAL_MAGIC "cadre-e1"
#define APPSEAL_MAGIC_LEN 8
#define APPSEAL_KEY_ID_LEN 8
#define APPSEAL_OVERHEAD (APPSEAL_MAGIC_LEN + APPSEAL_KEY_ID_LEN + 24 + 16)

/* The 8-byte id of k (BLAKE2b of the key with a fixed context). */
void appseal_key_id(const keys_key *k, uint8_t id[APPSEAL_KEY_ID_LEN]);
/* Whether buf starts like a sealed payload. */
int appseal_is_sealed(const void *buf, size_t len);
/* Seals plain into a new buffer (*out, freed with cd_free). Returns
 * CADRE_ENOMEM. */
int appseal_seal(const keys_key *k, const void *plain, size_t len,
                 uint8_t **out, size_t *out_len);
/* Opens a sealed payload into a new buffer (*out, freed with cd_free; NUL
 * terminated for convenience). Returns CADRE_EINVAL (not a sealed payload),
 * CADRE_EAUTH (sealed with another key: the message names both key ids; or
 * tampered), CADRE_ENOMEM. */
int appseal_open(const keys_key *k, const void *sealed, size_t len,
                 uint8_t **out, size_t *out_len, cd_err *err);

/* Text form for error messages of encrypted jobs (proto strings must stay
 * text): "cadre-e1:" and the sealed bytes in base64. */
#define APPSEAL_TEXT_PREFIX "cadre-e1:"

/* Seals text into a new NUL-terminated string (cd_free). CADRE_ENOMEM. */
int appseal_seal_text(const keys_key *k, const char *text, char **out);
/* Opens what appseal_seal_text made into a new string (cd_free). Returns
 * CADRE_EINVAL if text is not sealed text, else as appseal_open. */
int appseal_open_text(const keys_key *k, const char *text, char **out,
                      cd_err *err);

#endif
