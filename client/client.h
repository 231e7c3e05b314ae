/* client.h: libcadre internals shared by the client/ sources (not
 * installed): the client struct, one request/reply call, and the thread-local
 * error message behind cadre_client_errmsg(). Public entry points are in
 * cadre/cadre.h. */
#ifndef CLIENT_CLIENT_H
#define CLIENT_CLIENT_H

#include <nng/nng.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cadre/cadre.h"
#include "common/err.h"
#include "proto/msg.h"
#include "proto/wire.h"

struct cadre_client {
    nng_socket           sock;
    nng_dialer           dialer;
    char                 url[512];
    struct wire_sender   sender;
    struct wire_keyring  ring;
    uint32_t             timeout_ms;
    size_t               max_frame;
    atomic_uint_fast64_t next_request;
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

#endif
