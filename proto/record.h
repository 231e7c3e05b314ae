/* record.h: job records as store/ keeps them in LMDB (cadre.JobRecord in
 * record.proto), seen as a plain C struct so that store/ never sees
 * protobuf-c. Only encoding and decoding here: no storage, no policy.
 *
 * Threads: any; no shared state. */
#ifndef PROTO_RECORD_H
#define PROTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"
#include "common/err.h"
#include "proto/msg.h"

/* One job record. For encoding, every pointer is borrowed from the caller
 * (NULL strings encode as empty, NULL arrays need a zero length). A decoded
 * record borrows its pointers from the decoder's allocation (owner_) and is
 * released with record_job_free; its strings are never NULL. */
struct record_job {
    cadre_job_id          id;
    const char           *task;
    const char           *queue;
    const uint8_t        *payload;
    size_t                payload_len;
    uint32_t              tries;
    const uint32_t       *backoff_s;
    size_t                backoff_n;
    uint64_t              retry_until_ms;
    uint32_t              max_exceptions;
    uint64_t              timeout_ms;
    uint64_t              retry_after_ms;
    uint32_t              state; /* enum store_job_state */
    uint32_t              attempts;
    uint32_t              exceptions;
    uint64_t              seq;
    uint64_t              created_at_ms;
    uint64_t              available_at_ms;
    uint64_t              reserved_until_ms;
    uint64_t              lease;
    uint64_t              finished_at_ms;
    const char           *error_type;
    const char           *error;
    const uint8_t        *result;
    size_t                result_len;
    const char           *unique_key; /* "" or NULL: not a unique job */
    uint64_t              unique_until_ms;
    int                   unique_until_processing;
    const char           *lent_to; /* "" or NULL: not lent to another node */
    const char           *origin; /* node dispatched to; "" or NULL: this one */
    const char           *schedule; /* "" or NULL: not fired by a schedule */
    int64_t               slot_s;
    struct msg_middleware mw;     /* strings never NULL once decoded */
    void                 *owner_; /* decoded: the allocation borrowed from */
};

/* The encoded size of r in bytes. Allocates nothing. */
size_t record_job_size(const struct record_job *r);

/* Encodes r into out, which has room for record_job_size(r) bytes (e.g. an
 * LMDB value reserved with MDB_RESERVE); returns the bytes written, always
 * record_job_size(r). Allocates nothing. */
size_t record_job_pack(const struct record_job *r, uint8_t *out);

/* Decodes len bytes at data (copied: data may go away afterwards) into *out.
 * Returns CADRE_ECORRUPT if the bytes are not a job record (including an id
 * that is not 16 bytes), CADRE_ENOMEM. On success the caller releases *out
 * with record_job_free; on error *out is zeroed. */
int record_job_unpack(const uint8_t *data, size_t len, struct record_job *out,
                      cd_err *err);

/* Releases what record_job_unpack allocated and zeroes r; accepts NULL and a
 * zeroed record. */
void record_job_free(struct record_job *r);

#endif
