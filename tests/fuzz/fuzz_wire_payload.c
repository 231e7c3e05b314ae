/* fuzz_wire_payload.c: libFuzzer target for msg_unpack behind a valid tag.
 * The input is sealed as a frame's payload with a valid key, as a buggy or
 * hostile holder of a real key would, then opened: every input reaches the
 * protobuf decoder and cadre's validation. A decoded message is packed again
 * and must reopen to the same kind (encoding what we decode never fails). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "crypto/keys.h"
#include "crypto/seal.h"
#include "proto/wire.h"

#define FUZZ_MAX_LEN (1u << 20)

static struct wire_keyring fuzz_ring;
static struct wire_sender  fuzz_sender;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_setup(void)
{
    keys_key master;

    if (keys_init() != CADRE_OK)
        abort();
    memset(&master, 0x42, sizeof(master));
    keys_derive(&master, KEYS_ROLE_WORKER, &fuzz_ring.key[KEYS_ROLE_WORKER]);
    fuzz_ring.has[KEYS_ROLE_WORKER] = 1;
    wire_sender_init(&fuzz_sender, KEYS_ROLE_WORKER,
                     &fuzz_ring.key[KEYS_ROLE_WORKER], 7);
}

/* Reseals m and opens it again: what msg_unpack accepted, msg_pack must
 * encode, and the result must decode to the same kind and request id. */
static void
fuzz_repack(const struct msg *m)
{
    size_t     size = wire_frame_size(m), len;
    uint8_t   *buf;
    struct msg again;
    cd_err     err;

    if (size == 0)
        abort();
    buf = malloc(size);
    if (buf == NULL)
        return;
    if (wire_seal(&fuzz_sender, m, buf, size, FUZZ_MAX_LEN, &len) != CADRE_OK ||
        len != size)
        abort();
    if (wire_open(&fuzz_ring, buf, len, FUZZ_MAX_LEN, NULL, &again, &err) !=
        CADRE_OK)
        abort();
    if (again.kind != m->kind || again.request_id != m->request_id)
        abort();
    msg_free(&again);
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    uint8_t   *buf;
    size_t     len = WIRE_OVERHEAD + size;
    struct msg m;
    cd_err     err;
    int        rc;

    if (!ready) {
        fuzz_setup();
        ready = 1;
    }
    if (size > FUZZ_MAX_LEN - WIRE_OVERHEAD)
        return 0;
    buf = malloc(len);
    if (buf == NULL)
        return 0;
    memset(buf, 0, WIRE_HEADER_LEN);
    buf[0] = WIRE_VERSION;
    buf[1] = KEYS_ROLE_WORKER;
    cd_put_u64be(buf + 20, 1);
    cd_put_u32be(buf + 36, (uint32_t)size);
    if (size > 0)
        memcpy(buf + WIRE_HEADER_LEN + SEAL_NONCE_LEN, data, size);
    seal_close(&fuzz_ring.key[KEYS_ROLE_WORKER], buf, WIRE_HEADER_LEN,
               buf + WIRE_HEADER_LEN, buf + WIRE_HEADER_LEN + SEAL_NONCE_LEN,
               size);
    rc = wire_open(&fuzz_ring, buf, len, FUZZ_MAX_LEN, NULL, &m, &err);
    if (rc == CADRE_OK) {
        fuzz_repack(&m);
        msg_free(&m);
    } else if (rc != CADRE_EPROTO && rc != CADRE_ENOMEM) {
        abort(); /* the tag is valid: only decoding may fail */
    }
    free(buf);
    return 0;
}
