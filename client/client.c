/* client.c: libcadre's client. One nng req0 socket per client; each call
 * opens its own context, so many threads can call at once. Every frame is
 * sealed with the client key; replies must open with it and echo the
 * request id. No printing: errors go to the caller with their context. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cadre/cadre.h"
#include "client/client.h"
#include "common/alloc.h"
#include "common/bounded.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/id.h"
#include "common/path.h"
#include "crypto/appseal.h"
#include "crypto/keys.h"
#include "proto/wire.h"

#define CLIENT_TIMEOUT_DEFAULT_MS 10000
#define CLIENT_WAIT_SLACK_MS 5000
#define CLIENT_WAIT_CHUNK 10000 /* ids per Wait request (the node's limit) */

static _Thread_local char client_errmsg[CD_ERR_MSG_MAX];

int
client_fail(cd_err *err)
{
    snprintf(client_errmsg, sizeof(client_errmsg), "%s",
             err->msg[0] ? err->msg : cadre_strerror(err->code));
    return err->code;
}

const char *
cadre_client_errmsg(cadre_client *c)
{
    (void)c;
    return client_errmsg;
}

void
cadre_free(void *p)
{
    cd_free(p);
}

static int
client_nng_code(int rv)
{
    switch (rv) {
    case NNG_ETIMEDOUT:
        return CADRE_ETIMEDOUT;
    case NNG_ECONNREFUSED:
        return CADRE_ECONNREFUSED;
    case NNG_ECLOSED:
        return CADRE_ECLOSED;
    case NNG_ENOMEM:
        return CADRE_ENOMEM;
    case NNG_EMSGSIZE:
        return CADRE_ETOOBIG;
    case NNG_EADDRINVAL:
        return CADRE_EINVAL;
    default:
        return CADRE_EIO;
    }
}

static int
client_dial(cadre_client *c, const cadre_client_opts *opts, cd_err *err)
{
    int rv;

    if ((rv = nng_req0_open(&c->sock)) != 0)
        return cd_err_set(err, CADRE_EIO, "nng_req0_open: %s",
                          nng_strerror(rv));
    /* A resent request would be a second delivery; dispatch is idempotent
     * by job id, but fetches and waits need not be resent on a timer. */
    nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, c->max_frame);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
    return client_dial_url(c->sock, c->url, opts, &c->dialer, err);
}

/* The application key (encrypted jobs): from path, else
 * $CADRE_APP_KEY_FILE, else none. */
static int
client_load_app_key(cadre_client *c, const char *path, cd_err *err)
{
    if (path == NULL || path[0] == '\0')
        path = getenv("CADRE_APP_KEY_FILE");
    if (path == NULL || path[0] == '\0')
        return CADRE_OK;
    if (keys_load_for(path, KEYS_ROLE_APP, &c->app_key, err) != CADRE_OK)
        return cd_err_wrap(err, "application key");
    c->has_app_key = 1;
    return CADRE_OK;
}

int
cadre_client_open(const cadre_client_opts *opts, cadre_client **out,
                  char *errbuf, size_t errbuf_len)
{
    static const cadre_client_opts defaults;
    cadre_client                  *c;
    char                           path[4096];
    keys_key                       key;
    cd_err                         err = {0};
    int                            rc;

    if (opts == NULL)
        opts = &defaults;
    if (keys_init() != CADRE_OK) {
        cd_err_set(&err, CADRE_EINTERNAL, "libsodium failed to start");
        goto fail;
    }
    cd_key_path(opts->key_file, opts->data_dir, path, sizeof(path));
    rc = keys_load_for(path, KEYS_ROLE_CLIENT, &key, &err);
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "client key");
        goto fail;
    }
    c = cd_calloc(1, sizeof(*c));
    if (c == NULL) {
        cd_err_set(&err, CADRE_ENOMEM, "out of memory");
        goto fail;
    }
    cd_url(opts->url, c->url, sizeof(c->url));
    if (client_load_app_key(c, opts->app_key_file, &err) != CADRE_OK) {
        cd_free(c);
        goto fail;
    }
    c->timeout_ms =
        opts->timeout_ms ? opts->timeout_ms : CLIENT_TIMEOUT_DEFAULT_MS;
    c->max_frame = WIRE_MAX_DEFAULT;
    wire_sender_init(&c->sender, KEYS_ROLE_CLIENT, &key, 0);
    c->ring.has[KEYS_ROLE_CLIENT] = 1;
    c->ring.key[KEYS_ROLE_CLIENT] = key;
    keys_wipe(&key);
    atomic_init(&c->next_request, 1);
    pthread_mutex_init(&c->slots_mu, NULL);
    if (client_dial(c, opts, &err) != CADRE_OK) {
        cadre_client_close(c);
        goto fail;
    }
    *out = c;
    return CADRE_OK;
fail:
    cd_err_copy(&err, errbuf, errbuf_len);
    client_fail(&err);
    return err.code;
}

#define CLIENT_CLOSE_WAIT_MS 3000

static void
client_close_now(void *arg)
{
    nng_close(*(nng_socket *)arg);
}

void
client_close_socket(nng_socket s)
{
    cd_run_bounded(client_close_now, &s, sizeof(s), CLIENT_CLOSE_WAIT_MS);
}

void
cadre_client_close(cadre_client *c)
{
    if (c == NULL)
        return;
    client_batch_close(c);
    client_close_socket(c->sock);
    while (c->slots != NULL) {
        struct client_slot *slot = c->slots;

        c->slots = slot->next;
        nng_aio_free(slot->aio);
        cd_free(slot);
    }
    pthread_mutex_destroy(&c->slots_mu);
    keys_wipe(&c->ring.key[KEYS_ROLE_CLIENT]);
    keys_wipe(&c->sender.key);
    keys_wipe(&c->app_key);
    cd_free(c);
}

/* Seals req into a new nng message. */
static int
client_seal(cadre_client *c, const struct msg *req, nng_msg **out, cd_err *err)
{
    size_t   size = wire_frame_size(req);
    size_t   len = 0;
    nng_msg *m;
    int      rc;

    if (size == 0)
        return cd_err_set(err, CADRE_EINVAL, "invalid request");
    if (size > c->max_frame)
        return cd_err_set(err, CADRE_ETOOBIG,
                          "request of %zu bytes is over the frame limit of "
                          "%zu bytes",
                          size, c->max_frame);
    if (nng_msg_alloc(&m, size) != 0)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    rc = wire_seal(&c->sender, req, nng_msg_body(m), size, c->max_frame, &len);
    if (rc != CADRE_OK) {
        nng_msg_free(m);
        return cd_err_set(err, rc, "seal request: %s", cadre_strerror(rc));
    }
    nng_msg_chop(m, size - len);
    *out = m;
    return CADRE_OK;
}

static struct client_slot *
client_slot_get(cadre_client *c, cd_err *err)
{
    struct client_slot *slot;
    int                 rv;

    pthread_mutex_lock(&c->slots_mu);
    slot = c->slots;
    if (slot != NULL)
        c->slots = slot->next;
    pthread_mutex_unlock(&c->slots_mu);
    if (slot != NULL)
        return slot;
    slot = cd_calloc(1, sizeof(*slot));
    if (slot == NULL) {
        cd_err_set(err, CADRE_ENOMEM, "out of memory");
        return NULL;
    }
    if ((rv = nng_ctx_open(&slot->ctx, c->sock)) != 0 ||
        (rv = nng_aio_alloc(&slot->aio, NULL, NULL)) != 0) {
        if (rv != NNG_ENOMEM)
            nng_ctx_close(slot->ctx);
        cd_free(slot);
        cd_err_set(err, client_nng_code(rv), "nng context: %s",
                   nng_strerror(rv));
        return NULL;
    }
    return slot;
}

/* Returns slot to the pool; after a failed exchange it is closed instead,
 * so a late reply can never meet the next request. */
static void
client_slot_put(cadre_client *c, struct client_slot *slot, int ok)
{
    if (!ok) {
        nng_aio_free(slot->aio);
        nng_ctx_close(slot->ctx);
        cd_free(slot);
        return;
    }
    pthread_mutex_lock(&c->slots_mu);
    slot->next = c->slots;
    c->slots = slot;
    pthread_mutex_unlock(&c->slots_mu);
}

/* Sends m and receives the reply within timeout_ms on a pooled context. */
static int
client_roundtrip(cadre_client *c, nng_msg *m, uint32_t timeout_ms,
                 nng_msg **reply, cd_err *err)
{
    struct client_slot *slot = client_slot_get(c, err);
    int                 rv;

    if (slot == NULL) {
        nng_msg_free(m);
        return err->code;
    }
    nng_aio_set_timeout(slot->aio, (nng_duration)timeout_ms);
    nng_aio_set_msg(slot->aio, m);
    nng_ctx_send(slot->ctx, slot->aio);
    nng_aio_wait(slot->aio);
    if ((rv = nng_aio_result(slot->aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(slot->aio));
    } else {
        nng_ctx_recv(slot->ctx, slot->aio);
        nng_aio_wait(slot->aio);
        if ((rv = nng_aio_result(slot->aio)) == 0)
            *reply = nng_aio_get_msg(slot->aio);
    }
    client_slot_put(c, slot, rv == 0);
    if (rv == NNG_ETIMEDOUT)
        return cd_err_set(err, CADRE_ETIMEDOUT,
                          "node at %s did not answer within %u ms", c->url,
                          timeout_ms);
    if (rv != 0)
        return cd_err_set(err, client_nng_code(rv), "node at %s: %s", c->url,
                          nng_strerror(rv));
    return CADRE_OK;
}

/* One request and its reply. On success the caller frees *rep with msg_free.
 * A MSG_ERROR reply becomes its code with "node: <message>". */
int
client_call(cadre_client *c, struct msg *req, uint32_t timeout_ms,
            struct msg *rep, cd_err *err)
{
    nng_msg *m = NULL, *r = NULL;
    int      rc;

    memset(rep, 0, sizeof(*rep));
    req->request_id = atomic_fetch_add(&c->next_request, 1);
    if ((rc = client_seal(c, req, &m, err)) != CADRE_OK)
        return rc;
    if ((rc = client_roundtrip(c, m, timeout_ms, &r, err)) != CADRE_OK)
        return rc;
    rc = wire_open(&c->ring, nng_msg_body(r), nng_msg_len(r), c->max_frame,
                   NULL, rep, err);
    nng_msg_free(r);
    if (rc != CADRE_OK)
        return cd_err_wrap(err, "reply from %s", c->url);
    if (rep->request_id != req->request_id) {
        msg_free(rep);
        return cd_err_set(err, CADRE_EPROTO, "reply for another request");
    }
    if (rep->kind == MSG_ERROR) {
        rc = rep->u.error.code > 0 && rep->u.error.code < CADRE_E_COUNT
                 ? rep->u.error.code
                 : CADRE_EPROTO;
        cd_err_set(err, rc, "node: %s",
                   rep->u.error.message ? rep->u.error.message : "");
        msg_free(rep);
        return rc;
    }
    return CADRE_OK;
}

static void
client_opts_view(const cadre_job_opts *o, struct msg_job_opts *v)
{
    memset(v, 0, sizeof(*v));
    if (o == NULL)
        return;
    v->queue = o->queue;
    v->delay_ms = o->delay_ms;
    v->run_at_ms = o->run_at_ms;
    v->tries = o->tries;
    v->backoff_s = o->backoff_s;
    v->backoff_n = o->backoff_n;
    v->retry_until_ms = o->retry_until_ms;
    v->max_exceptions = o->max_exceptions;
    v->timeout_ms = o->timeout_ms;
    v->retry_after_ms = o->retry_after_ms;
    v->unique_id = o->unique_id;
    v->unique_for_ms = o->unique_for_ms;
    v->unique_until_processing = o->unique_until_processing;
    v->mw = (struct msg_middleware){.rate_key = o->rate_limited,
                                    .rate_limit = o->rate_limit,
                                    .rate_per_ms = o->rate_per_ms,
                                    .overlap_key = o->without_overlapping,
                                    .overlap_ttl_ms = o->overlap_ttl_ms,
                                    .exc_key = o->throttles_exceptions,
                                    .exc_limit = o->exc_limit,
                                    .exc_per_ms = o->exc_per_ms};
}

/* The ids the node reports (for a unique job already pending: that job's)
 * and the duplicate flags the caller asked for. */
static void
client_dispatch_results(const cadre_job_spec *jobs, size_t n,
                        const struct msg_dispatch_reply *r, cadre_job_id *ids)
{
    for (size_t i = 0; i < n; i++) {
        ids[i] = r->ids[i];
        if (jobs[i].opts != NULL && jobs[i].opts->duplicate != NULL)
            *jobs[i].opts->duplicate =
                r->duplicate != NULL && r->duplicate[i] != 0;
    }
}

/* Seals the payloads of encrypted jobs (into sealed[i], which nj[i] then
 * points at): only ciphertext leaves this process. */
static int
client_seal_payloads(cadre_client *c, const cadre_job_spec *jobs, size_t n,
                     struct msg_new_job *nj, uint8_t **sealed, cd_err *err)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;

        if (jobs[i].opts == NULL || !jobs[i].opts->encrypted)
            continue;
        if (!c->has_app_key)
            return cd_err_set(err, CADRE_EINVAL,
                              "job %zu is encrypted but no application key "
                              "is set (app_key_file, CADRE_APP_KEY_FILE)",
                              i);
        if (appseal_seal(&c->app_key, jobs[i].payload, jobs[i].payload_len,
                         &sealed[i], &len) != CADRE_OK)
            return cd_err_set(err, CADRE_ENOMEM, "out of memory");
        nj[i].payload = (msg_bytes){sealed[i], len};
    }
    return CADRE_OK;
}

int
cadre_dispatch_bulk(cadre_client *c, const cadre_job_spec *jobs, size_t n,
                    cadre_job_id *ids)
{
    struct msg          req = {.kind = MSG_DISPATCH}, rep = {0};
    struct msg_new_job *nj;
    uint8_t           **sealed;
    cd_err              err = {0};
    uint64_t            now = cd_now_ms();
    int                 rc;

    if (c == NULL || jobs == NULL || n == 0 || ids == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "dispatch: no jobs");
        return client_fail(&err);
    }
    nj = cd_calloc(n, sizeof(*nj));
    sealed = cd_calloc(n, sizeof(*sealed));
    if (nj == NULL || sealed == NULL) {
        cd_free(nj);
        cd_free(sealed);
        cd_err_set(&err, CADRE_ENOMEM, "dispatch: out of memory");
        return client_fail(&err);
    }
    for (size_t i = 0; i < n; i++) {
        const cadre_job_opts *o = jobs[i].opts;

        if (o != NULL && o->id != NULL)
            nj[i].id = *o->id; /* an idempotent retry of an earlier call */
        else
            cd_id_new(&nj[i].id, now);
        nj[i].task = jobs[i].task;
        nj[i].payload = (msg_bytes){jobs[i].payload, jobs[i].payload_len};
        client_opts_view(o, &nj[i].opts);
    }
    rc = client_seal_payloads(c, jobs, n, nj, sealed, &err);
    req.u.dispatch.jobs = nj;
    req.u.dispatch.jobs_n = n;
    if (rc == CADRE_OK)
        rc = client_call(c, &req, c->timeout_ms, &rep, &err);
    if (rc == CADRE_OK &&
        (rep.kind != MSG_DISPATCH_REPLY || rep.u.dispatch_reply.ids_n != n)) {
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected dispatch reply");
    }
    if (rc == CADRE_OK)
        client_dispatch_results(jobs, n, &rep.u.dispatch_reply, ids);
    if (rep.kind != MSG_NONE)
        msg_free(&rep);
    for (size_t i = 0; i < n; i++)
        cd_free(sealed[i]);
    cd_free(sealed);
    cd_free(nj);
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "dispatch");
        return client_fail(&err);
    }
    return CADRE_OK;
}

int
cadre_dispatch(cadre_client *c, const char *task, const void *payload,
               size_t payload_len, const cadre_job_opts *opts, cadre_job_id *id)
{
    cadre_job_spec spec = {task, payload, payload_len, opts};

    return cadre_dispatch_bulk(c, &spec, 1, id);
}

void
cadre_outcome_fini(cadre_outcome *o)
{
    if (o == NULL)
        return;
    cd_free(o->result);
    cd_free(o->error_type);
    cd_free(o->error);
    memset(o, 0, sizeof(*o));
}

static int
client_copy_outcome(cadre_client *c, const struct msg_job_result *r,
                    cadre_outcome *o)
{
    cd_err err = {0};

    memset(o, 0, sizeof(*o));
    o->status = r->status;
    o->attempts = r->attempts;
    if (c->has_app_key && appseal_is_sealed(r->result.data, r->result.len) &&
        appseal_open(&c->app_key, r->result.data, r->result.len, &o->result,
                     &o->result_len, &err) == CADRE_OK) {
        /* an encrypted job's result, opened here and nowhere else */
    } else if (r->result.len > 0) {
        o->result = cd_memdup(r->result.data, r->result.len);
        o->result_len = r->result.len;
    }
    o->error_type = cd_strdup(r->error_type);
    if (!c->has_app_key ||
        appseal_open_text(&c->app_key, r->error, &o->error, &err) != CADRE_OK)
        o->error = cd_strdup(r->error); /* not sealed, or not ours to open */
    if ((r->result.len && !o->result) || (r->error_type && !o->error_type) ||
        (r->error && !o->error)) {
        cadre_outcome_fini(o);
        return CADRE_ENOMEM;
    }
    return CADRE_OK;
}

/* One Wait request for at most CLIENT_WAIT_CHUNK ids. */
static int
client_wait_chunk(cadre_client *c, const cadre_job_id *ids, size_t n,
                  uint64_t timeout_ms, cadre_outcome *out, cd_err *err)
{
    struct msg req = {.kind = MSG_WAIT}, rep;
    int        rc;

    req.u.wait.ids = (cadre_job_id *)ids;
    req.u.wait.ids_n = n;
    req.u.wait.timeout_ms = (uint32_t)timeout_ms;
    rc = client_call(c, &req, (uint32_t)timeout_ms + CLIENT_WAIT_SLACK_MS, &rep,
                     err);
    if (rc == CADRE_OK &&
        (rep.kind != MSG_WAIT_REPLY || rep.u.wait_reply.results_n != n)) {
        msg_free(&rep);
        rc = cd_err_set(err, CADRE_EPROTO, "unexpected wait reply");
    }
    for (size_t i = 0; i < n && rc == CADRE_OK; i++)
        if (client_copy_outcome(c, &rep.u.wait_reply.results[i], &out[i]) !=
            CADRE_OK)
            rc = cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if (rep.kind == MSG_WAIT_REPLY)
        msg_free(&rep);
    return rc;
}

int
cadre_wait(cadre_client *c, const cadre_job_id *ids, size_t n,
           uint64_t timeout_ms, cadre_outcome *out)
{
    uint64_t deadline;
    cd_err   err = {0};
    int      rc = CADRE_OK, final = 1;

    memset(out, 0, n * sizeof(*out));
    if (timeout_ms > UINT32_MAX - CLIENT_WAIT_SLACK_MS)
        timeout_ms = UINT32_MAX - CLIENT_WAIT_SLACK_MS;
    deadline = cd_mono_ms() + timeout_ms;
    /* Large waits go in chunks sharing one deadline. */
    for (size_t i = 0; i < n && rc == CADRE_OK; i += CLIENT_WAIT_CHUNK) {
        size_t   k = n - i < CLIENT_WAIT_CHUNK ? n - i : CLIENT_WAIT_CHUNK;
        uint64_t now = cd_mono_ms();

        rc = client_wait_chunk(
            c, ids + i, k, deadline > now ? deadline - now : 0, out + i, &err);
    }
    if (rc != CADRE_OK) {
        for (size_t i = 0; i < n; i++)
            cadre_outcome_fini(&out[i]);
        cd_err_wrap(&err, "wait");
        return client_fail(&err);
    }
    for (size_t i = 0; i < n; i++)
        final &= out[i].status != CADRE_PENDING;
    if (!final) {
        cd_err_set(&err, CADRE_ETIMEDOUT,
                   "wait: jobs still pending after %llu ms",
                   (unsigned long long)timeout_ms);
        return client_fail(&err);
    }
    return CADRE_OK;
}

void
cadre_status_fini(cadre_status *s)
{
    if (s == NULL)
        return;
    cd_free(s->queues);
    memset(s, 0, sizeof(*s));
}

int
cadre_status_get(cadre_client *c, cadre_status *out)
{
    struct msg req = {.kind = MSG_STATUS_REQUEST}, rep;
    cd_err     err = {0};
    int        rc;

    memset(out, 0, sizeof(*out));
    rc = client_call(c, &req, c->timeout_ms, &rep, &err);
    if (rc == CADRE_OK && rep.kind != MSG_STATUS) {
        msg_free(&rep);
        rc = cd_err_set(&err, CADRE_EPROTO, "unexpected status reply");
    }
    if (rc != CADRE_OK) {
        cd_err_wrap(&err, "status");
        return client_fail(&err);
    }
    *out = rep.u.status;
    if (out->queues_n > 0) {
        out->queues = cd_memdup(rep.u.status.queues,
                                out->queues_n * sizeof(*out->queues));
        if (out->queues == NULL)
            out->queues_n = 0;
    }
    msg_free(&rep);
    return CADRE_OK;
}
