/* wire.h: sealed frames. Every message is one Envelope (proto/msg.h) inside a
 * frame:
 *
 *   header (40 bytes, additional data, big-endian):
 *     version u8 | role u8 (whose key sealed it) | flags u16 |
 *     sender_id u64 | boot_id u64 | counter u64 | ts_ms u64 | length u32
 *   nonce (24) | ciphertext (length) | tag (16)
 *
 * Receivers check the size against their limit and the header before any
 * decryption, and decrypt before any protobuf decoding. Replay windows come
 * with the cluster (counter and boot_id are already on the wire).
 *
 * WIRE_VERSION bump procedure: add the new layout beside the old, accept both
 * for one release, then retire the old number. */
#ifndef PROTO_WIRE_H
#define PROTO_WIRE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "proto/msg.h"

#define WIRE_VERSION 1
#define WIRE_HEADER_LEN 40
#define WIRE_OVERHEAD (WIRE_HEADER_LEN + SEAL_NONCE_LEN + SEAL_TAG_LEN)
#define WIRE_MAX_DEFAULT (16u << 20) /* bytes per frame */

struct wire_header {
    uint8_t  version;
    uint8_t  role; /* enum keys_role */
    uint16_t flags;
    uint64_t sender_id;
    uint64_t boot_id;
    uint64_t counter;
    uint64_t ts_ms;
    uint32_t length;
};

/* One sending identity (per process and role). Thread-safe: the counter is
 * atomic. */
struct wire_sender {
    int              role;
    keys_key         key;
    uint64_t         sender_id;
    uint64_t         boot_id;
    _Atomic uint64_t counter;
};

/* Keys a receiver accepts, by role. */
struct wire_keyring {
    int      has[KEYS_ROLE_COUNT];
    keys_key key[KEYS_ROLE_COUNT];
};

/* sender_id 0 picks a random one; boot_id is always random. */
void wire_sender_init(struct wire_sender *s, int role, const keys_key *key,
                      uint64_t sender_id);
/* The frame size for m: WIRE_OVERHEAD + msg_packed_size(m). 0 if invalid. */
size_t wire_frame_size(const struct msg *m);
/* Packs and seals m into buf. Returns CADRE_ETOOBIG if cap is too small or the
 * frame would exceed max_len, CADRE_EINVAL for an invalid message. */
int wire_seal(struct wire_sender *s, const struct msg *m, uint8_t *buf,
              size_t cap, size_t max_len, size_t *len);
/* Opens a frame in place (buf is modified) and decodes it into *m.
 * Returns CADRE_ETOOBIG (len > max_len), CADRE_EPROTO (truncated, wrong
 * version, length mismatch, not an Envelope), CADRE_EAUTH (no key for the
 * role, or it does not open). On success the caller frees *m with msg_free;
 * hdr (if not NULL) receives the header. */
int wire_open(const struct wire_keyring *ring, uint8_t *buf, size_t len,
              size_t max_len, struct wire_header *hdr, struct msg *m,
              cd_err *err);

#endif
