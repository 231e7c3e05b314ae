/* wire.c: sealed frames (layout in wire.h). Sealing packs the Envelope
 * straight into its place in the frame and encrypts it there; opening checks
 * size, header and tag before protobuf-c ever sees a byte. Replay windows are
 * not kept here: the cluster keeps them from the header this returns. */
#include "proto/wire.h"

#include <string.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/id.h"

/* Header offsets (wire.h). */
#define WIRE_OFF_VERSION 0
#define WIRE_OFF_ROLE 1
#define WIRE_OFF_FLAGS 2
#define WIRE_OFF_SENDER 4
#define WIRE_OFF_BOOT 12
#define WIRE_OFF_COUNTER 20
#define WIRE_OFF_TS 28
#define WIRE_OFF_LENGTH 36
#define WIRE_OFF_NONCE WIRE_HEADER_LEN
#define WIRE_OFF_TEXT (WIRE_HEADER_LEN + SEAL_NONCE_LEN)

_Static_assert(WIRE_OFF_LENGTH + 4 == WIRE_HEADER_LEN, "header is 40 bytes");
_Static_assert(WIRE_OVERHEAD == 80, "frame overhead");

/* A random 64-bit value that is not 0 (0 means "unset" in headers). */
static uint64_t
wire_random_u64(void)
{
    uint8_t  b[8];
    uint64_t v;

    do {
        cd_random(b, sizeof(b));
        v = cd_get_u64be(b);
    } while (v == 0);
    return v;
}

void
wire_sender_init(struct wire_sender *s, int role, const keys_key *key,
                 uint64_t sender_id)
{
    memset(s, 0, sizeof(*s));
    s->role = role;
    memcpy(&s->key, key, sizeof(s->key));
    s->sender_id = sender_id != 0 ? sender_id : wire_random_u64();
    s->boot_id = wire_random_u64();
    atomic_init(&s->counter, 0);
}

size_t
wire_frame_size(const struct msg *m)
{
    size_t n = msg_packed_size(m);

    return n == 0 ? 0 : WIRE_OVERHEAD + n;
}

static void
wire_header_put(uint8_t *p, const struct wire_header *h)
{
    p[WIRE_OFF_VERSION] = h->version;
    p[WIRE_OFF_ROLE] = h->role;
    cd_put_u16be(p + WIRE_OFF_FLAGS, h->flags);
    cd_put_u64be(p + WIRE_OFF_SENDER, h->sender_id);
    cd_put_u64be(p + WIRE_OFF_BOOT, h->boot_id);
    cd_put_u64be(p + WIRE_OFF_COUNTER, h->counter);
    cd_put_u64be(p + WIRE_OFF_TS, h->ts_ms);
    cd_put_u32be(p + WIRE_OFF_LENGTH, h->length);
}

static void
wire_header_get(const uint8_t *p, struct wire_header *h)
{
    h->version = p[WIRE_OFF_VERSION];
    h->role = p[WIRE_OFF_ROLE];
    h->flags = cd_get_u16be(p + WIRE_OFF_FLAGS);
    h->sender_id = cd_get_u64be(p + WIRE_OFF_SENDER);
    h->boot_id = cd_get_u64be(p + WIRE_OFF_BOOT);
    h->counter = cd_get_u64be(p + WIRE_OFF_COUNTER);
    h->ts_ms = cd_get_u64be(p + WIRE_OFF_TS);
    h->length = cd_get_u32be(p + WIRE_OFF_LENGTH);
}

int
wire_seal(struct wire_sender *s, const struct msg *m, uint8_t *buf, size_t cap,
          size_t max_len, size_t *len)
{
    struct wire_header h;
    size_t             room, plen;
    int                rc;

    if (max_len < cap)
        cap = max_len;
    if (cap < WIRE_OVERHEAD)
        return msg_packed_size(m) == 0 ? CADRE_EINVAL : CADRE_ETOOBIG;
    room = cap - WIRE_OVERHEAD;
    if (room > UINT32_MAX)
        room = UINT32_MAX; /* the length field is 32 bits */
    /* msg_pack sizes the message once and refuses if it does not fit. */
    rc = msg_pack(m, buf + WIRE_OFF_TEXT, room, &plen);
    if (rc != CADRE_OK)
        return rc;
    h.version = WIRE_VERSION;
    h.role = (uint8_t)s->role;
    h.flags = 0;
    h.sender_id = s->sender_id;
    h.boot_id = s->boot_id;
    /* Counters start at 1 and rise per frame; receivers' replay windows
     * rely on it (DESIGN.md, Security). */
    h.counter = atomic_fetch_add(&s->counter, 1) + 1;
    h.ts_ms = cd_now_ms();
    h.length = (uint32_t)plen;
    wire_header_put(buf, &h);
    seal_close(&s->key, buf, WIRE_HEADER_LEN, buf + WIRE_OFF_NONCE,
               buf + WIRE_OFF_TEXT, plen);
    *len = WIRE_OVERHEAD + plen;
    return CADRE_OK;
}

int
wire_open(const struct wire_keyring *ring, uint8_t *buf, size_t len,
          size_t max_len, struct wire_header *hdr, struct msg *m, cd_err *err)
{
    struct wire_header h;
    size_t             plen;
    int                rc;

    /* Cheapest checks first: size, then header, then the tag, and only then
     * protobuf decoding. */
    if (len > max_len)
        return cd_err_set(err, CADRE_ETOOBIG,
                          "frame: %zu bytes, over the limit of %zu", len,
                          max_len);
    if (len < WIRE_OVERHEAD)
        return cd_err_set(err, CADRE_EPROTO,
                          "frame: truncated (%zu bytes, a frame has at "
                          "least %d)",
                          len, WIRE_OVERHEAD);
    wire_header_get(buf, &h);
    if (h.version != WIRE_VERSION)
        return cd_err_set(err, CADRE_EPROTO,
                          "frame: version %u, this build speaks %d",
                          (unsigned)h.version, WIRE_VERSION);
    if ((size_t)h.length != len - WIRE_OVERHEAD)
        return cd_err_set(err, CADRE_EPROTO,
                          "frame: length field says %u bytes, frame holds "
                          "%zu",
                          (unsigned)h.length, len - WIRE_OVERHEAD);
    if (h.role >= KEYS_ROLE_COUNT || !ring->has[h.role])
        return cd_err_set(err, CADRE_EAUTH,
                          "frame: sealed with the %s key (role %u), which "
                          "this socket does not accept",
                          keys_role_name(h.role), (unsigned)h.role);
    if (seal_open(&ring->key[h.role], buf, WIRE_HEADER_LEN,
                  buf + WIRE_OFF_NONCE, buf + WIRE_OFF_TEXT,
                  len - WIRE_OFF_TEXT, &plen) != CADRE_OK)
        return cd_err_set(err, CADRE_EAUTH,
                          "frame: does not open with the %s key (wrong key "
                          "or tampered)",
                          keys_role_name(h.role));
    rc = msg_unpack(buf + WIRE_OFF_TEXT, plen, m);
    if (rc != CADRE_OK)
        return cd_err_set(err, rc, "frame: %s",
                          rc == CADRE_ENOMEM
                              ? "out of memory decoding the message"
                              : "payload is not a valid cadre Envelope");
    if (hdr != NULL)
        *hdr = h;
    return CADRE_OK;
}
