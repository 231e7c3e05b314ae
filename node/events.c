/* events.c: the pub0 socket of node/events.h. Events are sealed one per
 * frame; nng queues them per subscriber and drops for one that lags. */
#include "node/events.h"

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "node/api.h"
#include "node/tls.h"

struct events {
    nng_socket          sock;
    nng_listener        listener;
    struct wire_sender *sender;
    size_t              max_frame;
    uint64_t            dropped;
};

int
events_open(struct events **out, const char *url, struct wire_sender *sender,
            size_t max_frame, const struct tls_files *tls, char *bound,
            size_t bound_len, cd_err *err)
{
    struct events *e = cd_calloc(1, sizeof(*e));
    nng_sockaddr   sa;
    int            rv;

    if (e == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "events: out of memory");
    e->sender = sender;
    e->max_frame = max_frame;
    if ((rv = nng_pub0_open(&e->sock)) != 0) {
        cd_free(e);
        return cd_err_set(err, CADRE_EIO, "events: nng_pub0_open: %s",
                          nng_strerror(rv));
    }
    if ((rv = nng_listener_create(&e->listener, e->sock, url)) != 0 ||
        tls_listener_config(e->listener, url, tls, err) != CADRE_OK ||
        (rv = nng_listener_start(e->listener, 0)) != 0) {
        nng_close(e->sock);
        cd_free(e);
        if (rv == 0) /* tls: err says why */
            return cd_err_wrap(err, "events");
        return cd_err_set(err, rv == NNG_EADDRINUSE ? CADRE_EBUSY : CADRE_EIO,
                          "events: listen %s: %s", url, nng_strerror(rv));
    }
    snprintf(bound, bound_len, "%s", url);
    if (nng_listener_get_addr(e->listener, NNG_OPT_LOCADDR, &sa) == 0 &&
        sa.s_family == NNG_AF_INET) {
        const uint8_t *ip = (const uint8_t *)&sa.s_in.sa_addr;

        /* The scheme stays: tls+tcp:// is dialed as tls+tcp://. */
        snprintf(bound, bound_len, "%.*s://%u.%u.%u.%u:%u",
                 (int)strcspn(url, ":"), url, ip[0], ip[1], ip[2], ip[3],
                 (unsigned)ntohs(sa.s_in.sa_port));
    }
    *out = e;
    return CADRE_OK;
}

void
events_publish(struct events *e, const struct msg_event *ev)
{
    struct msg m = {.kind = MSG_EVENT};

    m.u.event = *ev;
    events_publish_msg(e, e->sender, &m);
}

void
events_publish_msg(struct events *e, struct wire_sender *sender,
                   const struct msg *m)
{
    size_t   size, len = 0;
    nng_msg *nm = NULL;

    size = wire_frame_size(m);
    if (size == 0 || size > e->max_frame || nng_msg_alloc(&nm, size) != 0)
        goto drop;
    if (wire_seal(sender, m, nng_msg_body(nm), size, e->max_frame, &len) !=
        CADRE_OK)
        goto drop;
    nng_msg_chop(nm, size - len);
    if (nng_sendmsg(e->sock, nm, NNG_FLAG_NONBLOCK) != 0)
        goto drop;
    return;
drop:
    if (nm != NULL)
        nng_msg_free(nm);
    /* Logged, but not once per event: a flood must not fill the disk. */
    if (++e->dropped <= 10 || e->dropped % 1000 == 0)
        CD_LOG_WARN("events", "EVENTS-DROPPED", "count=%llu",
                    (unsigned long long)e->dropped);
}

uint64_t
events_dropped(const struct events *e)
{
    return e->dropped;
}

void
events_close(struct events *e)
{
    if (e == NULL)
        return;
    api_close_socket(e->sock);
    cd_free(e);
}
