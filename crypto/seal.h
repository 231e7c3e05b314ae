/* seal.h: authenticated encryption (XChaCha20-Poly1305 IETF, libsodium) in
 * place. The caller lays out nonce | text | room for the tag; additional data
 * (a frame header) is authenticated but not encrypted. */
#ifndef CRYPTO_SEAL_H
#define CRYPTO_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

#define SEAL_NONCE_LEN 24
#define SEAL_TAG_LEN 16

/* Encrypts text[0..len) in place, writes a random nonce to nonce and the tag
 * to text[len..len+16). Never fails. */
void seal_close(const keys_key *k, const uint8_t *ad, size_t ad_len,
                uint8_t *nonce, uint8_t *text, size_t len);
/* Decrypts text[0..len) (ciphertext + tag) in place. Returns CADRE_EAUTH if it
 * does not open (wrong key, tampered); *plain_len = len - 16 on success. */
int seal_open(const keys_key *k, const uint8_t *ad, size_t ad_len,
              const uint8_t *nonce, uint8_t *text, size_t len,
              size_t *plain_len);

#endif
