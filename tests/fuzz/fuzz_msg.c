/* fuzz_msg.c: libFuzzer target for msg_unpack on arbitrary bytes, without
 * the frame and tag around them (fuzz_wire_payload.c covers that path), so
 * every mutation reaches the protobuf decoder and cadre's validation of every
 * kind, the cluster messages included. Oracle: what msg_unpack accepts,
 * msg_packed_size and msg_pack encode (ETOOBIG one byte short), the encoding
 * decodes to the same kind and request id, and re-encoding that gives the
 * same bytes (decode-encode reaches a fixed point). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Packs m into a fresh exactly-sized buffer (so ASan sees any overrun) and
 * sets *len; aborts if a decoded message does not encode. Returns NULL only
 * when malloc fails. */
static uint8_t *
fuzz_msg_pack(const struct msg *m, size_t *len)
{
    size_t   size = msg_packed_size(m), short_len;
    uint8_t *buf;

    if (size == 0)
        abort(); /* a message msg_unpack accepted must encode */
    buf = malloc(size);
    if (buf == NULL)
        return NULL;
    if (msg_pack(m, buf, size - 1, &short_len) != CADRE_ETOOBIG)
        abort(); /* msg.h: ETOOBIG when cap is too small */
    if (msg_pack(m, buf, size, len) != CADRE_OK || *len != size)
        abort();
    return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg m, again, third;
    uint8_t   *copy, *packed = NULL, *repacked = NULL;
    size_t     packed_len, repacked_len;
    int        rc;

    /* An exactly-sized copy: libFuzzer's buffer may have slack after it. */
    copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    rc = msg_unpack(copy, size, &m);
    /* msg.h: a decoded message borrows from the decoder's allocation, not
     * from buf; freeing buf now lets ASan catch any pointer kept into it. */
    free(copy);
    if (rc != CADRE_OK) {
        if (rc != CADRE_EPROTO && rc != CADRE_ENOMEM)
            abort();  /* an error msg.h does not document */
        msg_free(&m); /* msg.h: safe after a failure */
        return 0;
    }
    (void)msg_kind_name(m.kind);
    packed = fuzz_msg_pack(&m, &packed_len);
    if (packed == NULL)
        goto done;
    if (msg_unpack(packed, packed_len, &again) != CADRE_OK)
        abort(); /* what we encode, we decode */
    if (again.kind != m.kind || again.request_id != m.request_id)
        abort();
    repacked = fuzz_msg_pack(&again, &repacked_len);
    if (repacked != NULL) {
        if (repacked_len != packed_len ||
            memcmp(repacked, packed, packed_len) != 0)
            abort(); /* decode then encode is not a fixed point */
        if (msg_unpack(repacked, repacked_len, &third) != CADRE_OK ||
            third.kind != m.kind)
            abort();
        msg_free(&third);
    }
    msg_free(&again);
done:
    free(repacked);
    free(packed);
    msg_free(&m);
    return 0;
}
