/* fuzz_wire.c: libFuzzer target for wire_open on raw frames, as they arrive
 * from a socket. With a fixed keyring almost every input fails the size,
 * header or tag check; the target proves those checks never crash, never
 * read out of bounds and never leak, whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keys.h"
#include "proto/wire.h"

#define FUZZ_MAX_LEN (1u << 16)

static struct wire_keyring fuzz_ring;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_setup(void)
{
    keys_key master;

    if (keys_init() != CADRE_OK)
        abort();
    memset(&master, 0x42, sizeof(master)); /* fixed: runs are reproducible */
    for (int r = KEYS_ROLE_NODE; r < KEYS_ROLE_COUNT; r++) {
        keys_derive(&master, r, &fuzz_ring.key[r]);
        fuzz_ring.has[r] = 1;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int         ready;
    struct wire_header h;
    struct msg         m;
    cd_err             err;
    uint8_t           *buf;
    int                rc;

    if (!ready) {
        fuzz_setup();
        ready = 1;
    }
    /* wire_open works in place: give it its own exactly-sized copy so that
     * ASan sees any overread. */
    buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return 0;
    if (size > 0)
        memcpy(buf, data, size);
    rc = wire_open(&fuzz_ring, buf, size, FUZZ_MAX_LEN, &h, &m, &err);
    if (rc == CADRE_OK) {
        (void)msg_kind_name(m.kind);
        msg_free(&m);
    } else if (rc != CADRE_ETOOBIG && rc != CADRE_EPROTO && rc != CADRE_EAUTH &&
               rc != CADRE_ENOMEM) {
        abort(); /* an error wire.h does not document */
    }
    free(buf);
    return 0;
}
