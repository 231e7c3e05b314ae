/* record.c: cadre.JobRecord <-> struct record_job through protobuf-c. Encoding
 * builds the protobuf-c structs on the stack over the caller's pointers, so it
 * allocates nothing; decoding allocates through cd_malloc (fault hook). */
#include "proto/record.h"

#include <string.h>

#include "common/alloc.h"
#include "proto/record.pb-c.h"

/* A protobuf-c allocator over cd_malloc that remembers whether an allocation
 * failed, so that unpack's NULL can be told apart: out of memory or bad
 * bytes. */
struct record_alloc {
    ProtobufCAllocator base;
    int                failed;
};

static void *
record_alloc_cb(void *data, size_t size)
{
    struct record_alloc *a = data;
    void                *p = cd_malloc(size);

    if (p == NULL)
        a->failed = 1;
    return p;
}

static void
record_free_cb(void *data, void *p)
{
    (void)data;
    cd_free(p);
}

static void
record_alloc_init(struct record_alloc *a)
{
    a->base.alloc = record_alloc_cb;
    a->base.free = record_free_cb;
    a->base.allocator_data = a;
    a->failed = 0;
}

/* protobuf-c wants mutable pointers in messages it only reads when packing. */
static char *
record_str(const char *s)
{
    return (char *)(s != NULL ? s : "");
}

/* The middleware of r into mw (caller storage); NULL when it declares
 * none, so records without it are as before. */
static Cadre__JobMiddleware *
record_mw_to_pb(const struct record_job *r, Cadre__JobMiddleware *mw)
{
    const struct msg_middleware *in = &r->mw;

    if ((in->rate_key == NULL || in->rate_key[0] == '\0') &&
        (in->overlap_key == NULL || in->overlap_key[0] == '\0') &&
        (in->exc_key == NULL || in->exc_key[0] == '\0'))
        return NULL;
    cadre__job_middleware__init(mw);
    mw->rate_key = record_str(in->rate_key);
    mw->rate_limit = in->rate_limit;
    mw->rate_per_ms = in->rate_per_ms;
    mw->overlap_key = record_str(in->overlap_key);
    mw->overlap_ttl_ms = in->overlap_ttl_ms;
    mw->exc_key = record_str(in->exc_key);
    mw->exc_limit = in->exc_limit;
    mw->exc_per_ms = in->exc_per_ms;
    return mw;
}

static void
record_mw_get(const Cadre__JobOptions *o, struct msg_middleware *out)
{
    const Cadre__JobMiddleware *mw = o != NULL ? o->middleware : NULL;

    out->rate_key = out->overlap_key = out->exc_key = "";
    if (mw == NULL)
        return;
    out->rate_key = mw->rate_key;
    out->rate_limit = mw->rate_limit;
    out->rate_per_ms = mw->rate_per_ms;
    out->overlap_key = mw->overlap_key;
    out->overlap_ttl_ms = mw->overlap_ttl_ms;
    out->exc_key = mw->exc_key;
    out->exc_limit = mw->exc_limit;
    out->exc_per_ms = mw->exc_per_ms;
}

/* Fills m, o and mw (caller storage) so that m describes r; borrows r's
 * data. */
static void
record_to_pb(const struct record_job *r, Cadre__JobRecord *m,
             Cadre__JobOptions *o, Cadre__JobMiddleware *mw)
{
    cadre__job_options__init(o);
    o->queue = record_str(r->queue);
    o->tries = r->tries;
    o->n_backoff_s = r->backoff_n;
    o->backoff_s = (uint32_t *)r->backoff_s;
    o->retry_until_ms = r->retry_until_ms;
    o->max_exceptions = r->max_exceptions;
    o->timeout_ms = r->timeout_ms;
    o->retry_after_ms = r->retry_after_ms;
    o->middleware = record_mw_to_pb(r, mw);

    cadre__job_record__init(m);
    m->id.data = (uint8_t *)r->id.b;
    m->id.len = sizeof(r->id.b);
    m->task = record_str(r->task);
    m->payload.data = (uint8_t *)r->payload;
    m->payload.len = r->payload_len;
    m->opts = o;
    m->state = r->state;
    m->attempts = r->attempts;
    m->exceptions = r->exceptions;
    m->seq = r->seq;
    m->created_at_ms = r->created_at_ms;
    m->available_at_ms = r->available_at_ms;
    m->reserved_until_ms = r->reserved_until_ms;
    m->lease = r->lease;
    m->error_type = record_str(r->error_type);
    m->error = record_str(r->error);
    m->finished_at_ms = r->finished_at_ms;
    m->result.data = (uint8_t *)r->result;
    m->result.len = r->result_len;
    m->unique_key = record_str(r->unique_key);
    m->unique_until_ms = r->unique_until_ms;
    m->unique_until_processing = r->unique_until_processing != 0;
    m->lent_to = record_str(r->lent_to);
    m->origin = record_str(r->origin);
    m->schedule = record_str(r->schedule);
    m->slot = r->slot_s;
}

size_t
record_job_size(const struct record_job *r)
{
    Cadre__JobRecord     m;
    Cadre__JobOptions    o;
    Cadre__JobMiddleware mw;

    record_to_pb(r, &m, &o, &mw);
    return cadre__job_record__get_packed_size(&m);
}

size_t
record_job_pack(const struct record_job *r, uint8_t *out)
{
    Cadre__JobRecord     m;
    Cadre__JobOptions    o;
    Cadre__JobMiddleware mw;

    record_to_pb(r, &m, &o, &mw);
    return cadre__job_record__pack(&m, out);
}

int
record_job_unpack(const uint8_t *data, size_t len, struct record_job *out,
                  cd_err *err)
{
    struct record_alloc      a;
    Cadre__JobRecord        *m;
    const Cadre__JobOptions *o;

    memset(out, 0, sizeof(*out));
    record_alloc_init(&a);
    m = cadre__job_record__unpack(&a.base, len, data);
    if (m == NULL) {
        if (a.failed)
            return cd_err_set(err, CADRE_ENOMEM, "decode job record");
        return cd_err_set(err, CADRE_ECORRUPT,
                          "decode job record: not a JobRecord (%zu bytes)",
                          len);
    }
    if (m->id.len != sizeof(out->id.b)) {
        size_t id_len = m->id.len;

        cadre__job_record__free_unpacked(m, &a.base);
        return cd_err_set(err, CADRE_ECORRUPT,
                          "decode job record: id of %zu bytes", id_len);
    }
    memcpy(out->id.b, m->id.data, sizeof(out->id.b));
    out->task = m->task;
    out->payload = m->payload.data;
    out->payload_len = m->payload.len;
    o = m->opts;
    out->queue = "";
    if (o != NULL) {
        out->queue = o->queue;
        out->tries = o->tries;
        out->backoff_s = o->backoff_s;
        out->backoff_n = o->n_backoff_s;
        out->retry_until_ms = o->retry_until_ms;
        out->max_exceptions = o->max_exceptions;
        out->timeout_ms = o->timeout_ms;
        out->retry_after_ms = o->retry_after_ms;
    }
    out->state = m->state;
    out->attempts = m->attempts;
    out->exceptions = m->exceptions;
    out->seq = m->seq;
    out->created_at_ms = m->created_at_ms;
    out->available_at_ms = m->available_at_ms;
    out->reserved_until_ms = m->reserved_until_ms;
    out->lease = m->lease;
    out->finished_at_ms = m->finished_at_ms;
    out->error_type = m->error_type;
    out->error = m->error;
    out->result = m->result.data;
    out->result_len = m->result.len;
    out->unique_key = m->unique_key;
    out->unique_until_ms = m->unique_until_ms;
    out->unique_until_processing = m->unique_until_processing != 0;
    out->lent_to = m->lent_to;
    out->origin = m->origin;
    out->schedule = m->schedule;
    out->slot_s = m->slot;
    record_mw_get(o, &out->mw);
    out->owner_ = m;
    return CADRE_OK;
}

void
record_job_free(struct record_job *r)
{
    struct record_alloc a;

    if (r == NULL)
        return;
    if (r->owner_ != NULL) {
        record_alloc_init(&a);
        cadre__job_record__free_unpacked(r->owner_, &a.base);
    }
    memset(r, 0, sizeof(*r));
}
