/* api.h: the node's api socket: an nng rep0 listener with a pool of contexts
 * (one per request in flight, so a parked long-poll never blocks others).
 * nng's threads only queue received requests and wake the loop with
 * uv_async_send; everything else happens on the loop thread.
 *
 * Threads: every function here is for the loop thread. */
#ifndef NODE_API_H
#define NODE_API_H

#include <nng/nng.h>
#include <stddef.h>
#include <uv.h>

#include "common/err.h"
#include "node/tls.h"

struct api;

/* One request in flight. While the loop holds it (between api_take and
 * api_reply/api_drop) nobody else touches it; msg is the request frame and
 * may be reused for the reply. */
struct api_req {
    struct api     *api;
    nng_ctx         ctx;
    nng_aio        *aio;
    nng_msg        *msg;
    struct api_req *next; /* inbound queue link; free for the loop's use */
    int             state;
    uint64_t        recv_mono_us;
};

/* Called on the loop thread when requests are waiting in api_take. */
typedef void (*api_ready_cb)(void *arg);

/* Listens on url (tcp://host:0 picks a free port); bound receives the
 * actual url (same scheme). A tls+tcp:// url uses tls (borrowed; may be
 * NULL for other schemes). Returns CADRE_EIO (address in use, bad url; with
 * nng's text), CADRE_ECONFIG (tls+tcp:// without a usable certificate),
 * CADRE_ENOMEM. */
int api_open(struct api **out, uv_loop_t *loop, const char *url,
             size_t max_frame, const struct tls_files *tls, api_ready_cb cb,
             void *arg, char *bound, size_t bound_len, cd_err *err);
/* Takes every queued request (a list linked by next, oldest first). */
struct api_req *api_take(struct api *a);
/* Sends r->msg as the reply (ownership moves to nng) and re-arms r. */
void api_reply(struct api_req *r);
/* Answers nothing: the requester times out. Re-arms r. */
void api_drop(struct api_req *r);
/* The id of the connection r arrived on (0 if unknown). */
uint32_t api_req_pipe(const struct api_req *r);
/* Copies up to cap ids of connections closed since the last call (oldest
 * first) into out and returns how many; the ready callback fires when one
 * closes. nng reports closes on its threads; they are only queued there. */
size_t api_take_closed(struct api *a, uint32_t *out, size_t cap);
/* nng_close(s), given up on after a few seconds: nng 1.5.2 can deadlock in
 * it (common/bounded.h); a stuck close then parks one thread instead of the
 * loop. For every socket the node closes. */
void api_close_socket(nng_socket s);

/* At exit, once every socket is closed: lets nng finish tearing down its
 * connections (nng_close returns before its reaper has freed what the
 * connections still queued, which LeakSanitizer reports). Skipped if a
 * close got stuck. */
void api_nng_fini(void);

/* Stops receiving; requests still held get no reply. Frees everything;
 * close_cb runs when the uv handle is closed. */
void api_close(struct api *a);

#endif
