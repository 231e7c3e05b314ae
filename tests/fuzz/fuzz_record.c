/* fuzz_record.c: libFuzzer target for record_job_unpack, the decoder of job
 * records as LMDB hands them back (a corrupt or foreign database). Checks the
 * error contract (ECORRUPT or ENOMEM, *out zeroed) and, for what decodes, a
 * round trip: record_job_size / record_job_pack give a record that decodes to
 * the same fields and packs again to the same bytes. store/ itself is not
 * fuzzed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_record_str_eq(const char *a, const char *b)
{
    /* record.h: NULL encodes as "", decoded strings are never NULL. */
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static int
fuzz_record_bytes_eq(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Every field but owner_. */
static int
fuzz_record_eq(const struct record_job *a, const struct record_job *b)
{
    return memcmp(&a->id, &b->id, sizeof(a->id)) == 0 &&
           fuzz_record_str_eq(a->task, b->task) &&
           fuzz_record_str_eq(a->queue, b->queue) &&
           fuzz_record_bytes_eq(a->payload, a->payload_len, b->payload,
                                b->payload_len) &&
           a->tries == b->tries && a->backoff_n == b->backoff_n &&
           (a->backoff_n == 0 ||
            memcmp(a->backoff_s, b->backoff_s,
                   a->backoff_n * sizeof(uint32_t)) == 0) &&
           a->retry_until_ms == b->retry_until_ms &&
           a->max_exceptions == b->max_exceptions &&
           a->timeout_ms == b->timeout_ms &&
           a->retry_after_ms == b->retry_after_ms && a->state == b->state &&
           a->attempts == b->attempts && a->exceptions == b->exceptions &&
           a->seq == b->seq && a->created_at_ms == b->created_at_ms &&
           a->available_at_ms == b->available_at_ms &&
           a->reserved_until_ms == b->reserved_until_ms &&
           a->lease == b->lease && a->finished_at_ms == b->finished_at_ms &&
           fuzz_record_str_eq(a->error_type, b->error_type) &&
           fuzz_record_str_eq(a->error, b->error) &&
           fuzz_record_bytes_eq(a->result, a->result_len, b->result,
                                b->result_len) &&
           fuzz_record_str_eq(a->unique_key, b->unique_key) &&
           a->unique_until_ms == b->unique_until_ms &&
           a->unique_until_processing == b->unique_until_processing &&
           fuzz_record_str_eq(a->lent_to, b->lent_to) &&
           fuzz_record_str_eq(a->origin, b->origin);
}

/* Packs r into a fresh exactly-sized buffer; NULL only if malloc fails. */
static uint8_t *
fuzz_record_pack(const struct record_job *r, size_t *len)
{
    size_t   size = record_job_size(r);
    uint8_t *buf = malloc(size > 0 ? size : 1);

    if (buf == NULL)
        return NULL;
    if (record_job_pack(r, buf) != size)
        abort(); /* record.h: always record_job_size(r) bytes */
    *len = size;
    return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct record_job zero;
    struct record_job              r, again, third;
    cd_err                         err;
    uint8_t                       *copy, *packed = NULL, *repacked = NULL;
    size_t                         packed_len, repacked_len;
    int                            rc;

    copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    rc = record_job_unpack(copy, size, &r, &err);
    /* record.h: data is copied and may go away afterwards. */
    memset(copy, 0xa5, size);
    free(copy);
    if (rc != CADRE_OK) {
        if (rc != CADRE_ECORRUPT && rc != CADRE_ENOMEM)
            abort(); /* an error record.h does not document */
        if (err.code != rc || memcmp(&r, &zero, sizeof(r)) != 0)
            abort(); /* record.h: on error *out is zeroed */
        record_job_free(&r);
        return 0;
    }
    packed = fuzz_record_pack(&r, &packed_len);
    if (packed == NULL)
        goto done;
    if (record_job_unpack(packed, packed_len, &again, &err) != CADRE_OK)
        abort(); /* what we encode, we decode */
    if (!fuzz_record_eq(&r, &again))
        abort(); /* a field changed on the round trip */
    repacked = fuzz_record_pack(&again, &repacked_len);
    if (repacked != NULL && (repacked_len != packed_len ||
                             memcmp(repacked, packed, packed_len) != 0))
        abort(); /* decode then encode is not a fixed point */
    if (repacked != NULL) {
        if (record_job_unpack(repacked, repacked_len, &third, &err) !=
                CADRE_OK ||
            !fuzz_record_eq(&r, &third))
            abort();
        record_job_free(&third);
    }
    record_job_free(&again);
done:
    free(repacked);
    free(packed);
    record_job_free(&r);
    if (memcmp(&r, &zero, sizeof(r)) != 0)
        abort(); /* record.h: record_job_free zeroes r */
    record_job_free(NULL);
    return 0;
}
