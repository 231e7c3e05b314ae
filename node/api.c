/* api.c: rep0 contexts on nng threads, handed to the libuv loop.
 *
 * Each api_req cycles RECV -> HELD (the loop owns it) -> SEND -> RECV. The
 * pool grows when few contexts are left receiving, so parked long-polls and
 * waits cannot starve new requests. */
#include "node/api.h"

#include <arpa/inet.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/bounded.h"
#include "common/clock.h"
#include "common/log.h"
#include "node/tls.h"

#define API_INITIAL 64
#define API_IDLE_MIN 16
#define API_GROW 32
#define API_MAX 16384

enum api_state { API_RECV = 1, API_HELD = 2, API_SEND = 3, API_DEAD = 4 };

struct api {
    nng_socket       sock;
    nng_listener     listener;
    uv_async_t       async;
    api_ready_cb     cb;
    void            *cb_arg;
    pthread_mutex_t  mu;
    struct api_req  *head, *tail; /* inbound, under mu */
    uint32_t        *closed;      /* pipe ids closed, under mu */
    size_t           closed_n, closed_cap;
    struct api_req **all;
    size_t           all_n, all_cap;
    atomic_size_t    receiving;
    atomic_int       closing;
};

static void api_aio_cb(void *arg);

static void
api_push(struct api *a, struct api_req *r)
{
    pthread_mutex_lock(&a->mu);
    r->next = NULL;
    if (a->tail != NULL)
        a->tail->next = r;
    else
        a->head = r;
    a->tail = r;
    pthread_mutex_unlock(&a->mu);
    uv_async_send(&a->async);
}

static void
api_arm(struct api_req *r)
{
    r->state = API_RECV;
    atomic_fetch_add(&r->api->receiving, 1);
    nng_ctx_recv(r->ctx, r->aio);
}

/* nng thread. */
static void
api_aio_cb(void *arg)
{
    struct api_req *r = arg;
    struct api     *a = r->api;
    int             rv = nng_aio_result(r->aio);

    if (r->state == API_SEND) {
        if (rv != 0)
            nng_msg_free(nng_aio_get_msg(r->aio));
        if (!atomic_load(&a->closing))
            api_arm(r);
        return;
    }
    atomic_fetch_sub(&a->receiving, 1);
    if (rv != 0) {
        if (rv != NNG_ECLOSED && rv != NNG_ECANCELED &&
            !atomic_load(&a->closing))
            api_arm(r);
        else
            r->state = API_DEAD;
        return;
    }
    r->msg = nng_aio_get_msg(r->aio);
    r->state = API_HELD;
    r->recv_mono_us = cd_mono_us();
    api_push(a, r);
}

/* nng thread: a connection closed. Queued for the loop (node/runs.c re-queues
 * the run tasks of a worker that vanished). */
static void
api_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct api *a = arg;

    (void)ev;
    if (atomic_load(&a->closing))
        return;
    pthread_mutex_lock(&a->mu);
    if (a->closed_n == a->closed_cap) {
        size_t    cap = a->closed_cap ? a->closed_cap * 2 : 64;
        uint32_t *v = cd_realloc(a->closed, cap * sizeof(*v));

        if (v == NULL) { /* the tasks' leases expire instead */
            pthread_mutex_unlock(&a->mu);
            return;
        }
        a->closed = v;
        a->closed_cap = cap;
    }
    a->closed[a->closed_n++] = nng_pipe_id(p);
    pthread_mutex_unlock(&a->mu);
    uv_async_send(&a->async);
}

size_t
api_take_closed(struct api *a, uint32_t *out, size_t cap)
{
    size_t n;

    pthread_mutex_lock(&a->mu);
    n = a->closed_n < cap ? a->closed_n : cap;
    if (n > 0) {
        memcpy(out, a->closed, n * sizeof(*out));
        memmove(a->closed, a->closed + n, (a->closed_n - n) * sizeof(*out));
        a->closed_n -= n;
    }
    pthread_mutex_unlock(&a->mu);
    return n;
}

uint32_t
api_req_pipe(const struct api_req *r)
{
    if (r->msg == NULL)
        return 0;
    return nng_pipe_id(nng_msg_get_pipe(r->msg));
}

static int
api_add(struct api *a)
{
    struct api_req *r;

    if (a->all_n == a->all_cap) {
        size_t           cap = a->all_cap ? a->all_cap * 2 : API_INITIAL;
        struct api_req **all = cd_realloc(a->all, cap * sizeof(*all));

        if (all == NULL)
            return CADRE_ENOMEM;
        a->all = all;
        a->all_cap = cap;
    }
    r = cd_calloc(1, sizeof(*r));
    if (r == NULL)
        return CADRE_ENOMEM;
    r->api = a;
    if (nng_aio_alloc(&r->aio, api_aio_cb, r) != 0) {
        cd_free(r);
        return CADRE_ENOMEM;
    }
    if (nng_ctx_open(&r->ctx, a->sock) != 0) {
        nng_aio_free(r->aio);
        cd_free(r);
        return CADRE_ENOMEM;
    }
    a->all[a->all_n++] = r;
    api_arm(r);
    return CADRE_OK;
}

static void
api_async_cb(uv_async_t *h)
{
    struct api *a = h->data;

    if (atomic_load(&a->closing))
        return;
    /* Grow while few contexts are left to receive new requests. */
    while (atomic_load(&a->receiving) < API_IDLE_MIN && a->all_n < API_MAX) {
        for (int i = 0; i < API_GROW; i++)
            if (api_add(a) != CADRE_OK)
                break;
        if (a->all_n >= API_MAX)
            CD_LOG_WARN("api", "API-POOL-MAX", "contexts=%zu", a->all_n);
    }
    a->cb(a->cb_arg);
}

struct api_req *
api_take(struct api *a)
{
    struct api_req *list;

    pthread_mutex_lock(&a->mu);
    list = a->head;
    a->head = a->tail = NULL;
    pthread_mutex_unlock(&a->mu);
    return list;
}

void
api_reply(struct api_req *r)
{
    nng_msg *m = r->msg;

    r->msg = NULL;
    r->state = API_SEND;
    nng_aio_set_msg(r->aio, m);
    nng_ctx_send(r->ctx, r->aio);
}

void
api_drop(struct api_req *r)
{
    nng_msg_free(r->msg);
    r->msg = NULL;
    api_arm(r);
}

static int
api_listen(struct api *a, const char *url, size_t max_frame,
           const struct tls_files *tls, char *bound, size_t bound_len,
           cd_err *err)
{
    nng_sockaddr sa;
    int          rv;

    if ((rv = nng_rep0_open(&a->sock)) != 0)
        return cd_err_set(err, CADRE_EIO, "nng_rep0_open: %s",
                          nng_strerror(rv));
    nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, max_frame);
    nng_pipe_notify(a->sock, NNG_PIPE_EV_REM_POST, api_pipe_cb, a);
    if ((rv = nng_listener_create(&a->listener, a->sock, url)) != 0 ||
        (rv = nng_listener_set_size(a->listener, NNG_OPT_RECVMAXSZ,
                                    max_frame)) != 0)
        return cd_err_set(err, CADRE_EIO, "listen %s: %s", url,
                          nng_strerror(rv));
    if (tls_listener_config(a->listener, url, tls, err) != CADRE_OK)
        return err->code;
    if ((rv = nng_listener_start(a->listener, 0)) != 0)
        return cd_err_set(err, rv == NNG_EADDRINUSE ? CADRE_EBUSY : CADRE_EIO,
                          "listen %s: %s", url, nng_strerror(rv));
    snprintf(bound, bound_len, "%s", url);
    if (nng_listener_get_addr(a->listener, NNG_OPT_LOCADDR, &sa) == 0 &&
        sa.s_family == NNG_AF_INET) {
        const uint8_t *ip = (const uint8_t *)&sa.s_in.sa_addr;

        /* The scheme stays: tls+tcp:// is dialed as tls+tcp://. */
        snprintf(bound, bound_len, "%.*s://%u.%u.%u.%u:%u",
                 (int)strcspn(url, ":"), url, ip[0], ip[1], ip[2], ip[3],
                 (unsigned)ntohs(sa.s_in.sa_port));
    }
    return CADRE_OK;
}

int
api_open(struct api **out, uv_loop_t *loop, const char *url, size_t max_frame,
         const struct tls_files *tls, api_ready_cb cb, void *arg, char *bound,
         size_t bound_len, cd_err *err)
{
    struct api *a = cd_calloc(1, sizeof(*a));
    int         rc;

    if (a == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "api: out of memory");
    a->cb = cb;
    a->cb_arg = arg;
    pthread_mutex_init(&a->mu, NULL);
    uv_async_init(loop, &a->async, api_async_cb);
    a->async.data = a;
    rc = api_listen(a, url, max_frame, tls, bound, bound_len, err);
    for (int i = 0; rc == CADRE_OK && i < API_INITIAL; i++)
        rc = api_add(a);
    if (rc != CADRE_OK) {
        if (rc == CADRE_ENOMEM)
            cd_err_set(err, rc, "api: out of memory");
        api_close(a);
        return rc;
    }
    *out = a;
    return CADRE_OK;
}

static void
api_free_cb(uv_handle_t *h)
{
    struct api *a = h->data;

    pthread_mutex_destroy(&a->mu);
    cd_free(a->closed);
    cd_free(a);
}

#define API_CLOSE_WAIT_MS 3000

static atomic_int api_stuck; /* closes given up on, in this process */

static void
api_close_now(void *arg)
{
    nng_close(*(nng_socket *)arg);
}

void
api_close_socket(nng_socket s)
{
    if (!cd_run_bounded(api_close_now, &s, sizeof(s), API_CLOSE_WAIT_MS)) {
        atomic_fetch_add(&api_stuck, 1);
        CD_LOG_WARN("api", "API-CLOSE-STUCK",
                    "socket=%d: nng_close did not "
                    "return (nanomsg/nng#1543); going on without it",
                    nng_socket_id(s));
    }
}

static void
api_fini_now(void *arg)
{
    (void)arg;
    nng_fini();
}

void
api_nng_fini(void)
{
    int none = 0;

    /* nng_fini must not run beside another nng call: not after a close
     * that never returned. */
    if (atomic_load(&api_stuck) == 0)
        cd_run_bounded(api_fini_now, &none, sizeof(none), API_CLOSE_WAIT_MS);
}

void
api_close(struct api *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->closing, 1);
    api_close_socket(a->sock);
    for (size_t i = 0; i < a->all_n; i++) {
        struct api_req *r = a->all[i];

        nng_aio_stop(r->aio);
        if (r->msg != NULL)
            nng_msg_free(r->msg);
        nng_aio_free(r->aio);
        cd_free(r);
    }
    cd_free(a->all);
    uv_close((uv_handle_t *)&a->async, api_free_cb);
}
