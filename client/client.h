/* client.h: libcadre internals shared by the client/ sources (not
 * installed): the client struct, one request/reply call, and the thread-local
 * error message behind cadre_client_errmsg(). Public entry points are in
 * cadre/cadre.h. */
#ifndef CLIENT_CLIENT_H
#define CLIENT_CLIENT_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"
#include "common/err.h"
#include "crypto/keys.h"
#include "proto/msg.h"
#include "proto/wire.h"

/* A reusable nng context and aio: opening them per call costs about as much
 * as the round trip itself. */
struct client_slot {
    nng_ctx             ctx;
    nng_aio            *aio;
    struct client_slot *next;
};

struct client_batcher; /* client/batch.c: cadre_dispatch_async */

struct cadre_client {
    nng_socket             sock;
    nng_dialer             dialer;
    char                   url[512];
    struct wire_sender     sender;
    struct wire_keyring    ring;
    uint32_t               timeout_ms;
    size_t                 max_frame;
    atomic_uint_fast64_t   next_request;
    pthread_mutex_t        slots_mu;
    struct client_slot    *slots;   /* free list */
    struct client_batcher *batcher; /* NULL until the first async dispatch */
    keys_key               app_key; /* encrypted jobs, if has_app_key */
    int                    has_app_key;
};

/* Stores err's message as this thread's cadre_client_errmsg() and returns
 * err->code. Any thread. */
int client_fail(cd_err *err);

/* One request and its reply within timeout_ms. On success the caller frees
 * *rep with msg_free; on failure *rep holds nothing. A MSG_ERROR reply becomes
 * its code with "node: <message>" in err. req is borrowed (its request_id is
 * set). Returns the CADRE_E... of sealing, transport or the node's error.
 * Any thread (each call uses its own nng context). */
int client_call(cadre_client *c, struct msg *req, uint32_t timeout_ms,
                struct msg *rep, cd_err *err);

/* Dials url from sock without waiting (nng redials until the node is up).
 * A tls+tcp:// url gets the TLS files of opts (else $CADRE_TLS_CERT,
 * $CADRE_TLS_CA; see cadre_client_opts). *out receives the dialer.
 * Returns CADRE_EINVAL (bad url, a TLS file nng refuses; with nng's text)
 * or CADRE_EIO. Any thread. */
int client_dial_url(nng_socket sock, const char *url,
                    const cadre_client_opts *opts, nng_dialer *out,
                    cd_err *err);

/* Stops the async batcher after flushing it (up to the client timeout); jobs
 * still queued then get CADRE_ECLOSED. Called by cadre_client_close. */
void client_batch_close(cadre_client *c);
/* nng_close(s), given up on after a few seconds: nng 1.5.2 can deadlock in
 * it (common/bounded.h), and a library must not hang its caller's close. */
void client_close_socket(nng_socket s);

#endif
