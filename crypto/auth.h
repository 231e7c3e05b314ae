/* auth.h: keyed MACs for challenge-response handshakes (keyed BLAKE2b-256,
 * libsodium). A MAC key is derived from a role key per purpose, so a key
 * used to prove membership on one port never MACs anything else. It knows
 * nothing of any wire format: callers pass the transcript bytes. */
#ifndef CRYPTO_AUTH_H
#define CRYPTO_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keys.h"

#define AUTH_MAC_LEN 32
/* A purpose is exactly this many characters (a crypto_kdf context). */
#define AUTH_PURPOSE_LEN 8

/* Derives the MAC key for purpose (AUTH_PURPOSE_LEN characters, e.g.
 * "cdraftv1") from k into out. out may alias k. Never fails. */
void auth_derive(const keys_key *k, const char *purpose, keys_key *out);
/* Fills buf with len random bytes (handshake nonces). Never fails. */
void auth_random(uint8_t *buf, size_t len);
/* out = BLAKE2b-256 keyed with k over label (with its NUL) then msg, so the
 * same transcript MACed under two labels ("server", "client") gives
 * unrelated tags and one side's tag cannot be replayed as the other's. */
void auth_mac(const keys_key *k, const char *label, const uint8_t *msg,
              size_t len, uint8_t out[AUTH_MAC_LEN]);
/* Recomputes the MAC and compares in constant time. Returns CADRE_EAUTH if
 * mac does not match. */
int auth_verify(const keys_key *k, const char *label, const uint8_t *msg,
                size_t len, const uint8_t mac[AUTH_MAC_LEN]);

#endif
