/* events.c: libcadre's events subscriber (cadre.h, "events"): an nng sub0
 * socket subscribed to everything, whose frames are opened with the client
 * key. It never sends; what it missed is gone. */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "client/client.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/path.h"
#include "crypto/keys.h"
#include "proto/msg.h"
#include "proto/wire.h"

_Static_assert((int)CADRE_EVENT_DISPATCHED == (int)MSG_EVENT_DISPATCHED &&
                   (int)CADRE_EVENT_STARTED == (int)MSG_EVENT_STARTED &&
                   (int)CADRE_EVENT_DONE == (int)MSG_EVENT_DONE &&
                   (int)CADRE_EVENT_RELEASED == (int)MSG_EVENT_RELEASED &&
                   (int)CADRE_EVENT_FAILED == (int)MSG_EVENT_FAILED,
               "event kinds match proto/msg.h");

struct cadre_events {
    nng_socket          sock;
    nng_dialer          dialer;
    char                url[1024];
    struct wire_keyring ring;
    size_t              max_frame;
    uint64_t            skipped; /* frames that did not open */
};

const char *
cadre_event_kind_name(int kind)
{
    switch (kind) {
    case CADRE_EVENT_DISPATCHED:
        return "dispatched";
    case CADRE_EVENT_STARTED:
        return "started";
    case CADRE_EVENT_DONE:
        return "done";
    case CADRE_EVENT_RELEASED:
        return "released";
    case CADRE_EVENT_FAILED:
        return "failed";
    case CADRE_EVENT_LEADER:
        return "leader";
    default:
        return "unknown";
    }
}

static int
events_dial(cadre_events *e, const cadre_client_opts *opts, cd_err *err)
{
    const uint8_t prefix[2] = {WIRE_VERSION, KEYS_ROLE_CLIENT};
    int           rv;

    if ((rv = nng_sub0_open(&e->sock)) != 0)
        return cd_err_set(err, CADRE_EIO, "nng_sub0_open: %s",
                          nng_strerror(rv));
    /* Frames sealed with the client key only: the same socket carries the
     * nodes' heartbeats, sealed with the node key (wire.h: version, role). */
    if ((rv = nng_socket_set(e->sock, NNG_OPT_SUB_SUBSCRIBE, prefix,
                             sizeof(prefix))) != 0)
        return cd_err_set(err, CADRE_EIO, "subscribe: %s", nng_strerror(rv));
    nng_socket_set_size(e->sock, NNG_OPT_RECVMAXSZ, e->max_frame);
    nng_socket_set_ms(e->sock, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(e->sock, NNG_OPT_RECONNMAXT, 1000);
    return client_dial_url(e->sock, e->url, opts, &e->dialer, err);
}

int
cadre_events_open(const cadre_client_opts *opts, const char *events_url,
                  cadre_events **out, char *errbuf, size_t errbuf_len)
{
    static const cadre_client_opts defaults;
    cadre_events                  *e = NULL;
    char                           path[4096];
    keys_key                       key;
    cd_err                         err = {0};

    if (opts == NULL)
        opts = &defaults;
    if (out == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "events: no place for the result");
        goto fail;
    }
    if (keys_init() != CADRE_OK) {
        cd_err_set(&err, CADRE_EINTERNAL, "libsodium failed to start");
        goto fail;
    }
    cd_key_path(opts->key_file, opts->data_dir, path, sizeof(path));
    if (keys_load_for(path, KEYS_ROLE_CLIENT, &key, &err) != CADRE_OK) {
        cd_err_wrap(&err, "client key");
        goto fail;
    }
    e = cd_calloc(1, sizeof(*e));
    if (e == NULL) {
        keys_wipe(&key);
        cd_err_set(&err, CADRE_ENOMEM, "out of memory");
        goto fail;
    }
    e->ring.has[KEYS_ROLE_CLIENT] = 1;
    e->ring.key[KEYS_ROLE_CLIENT] = key;
    keys_wipe(&key);
    e->max_frame = WIRE_MAX_DEFAULT;
    if (cd_events_url(events_url, opts->url, e->url, sizeof(e->url)) !=
        CADRE_OK) {
        cd_err_set(&err, CADRE_EINVAL,
                   "events: no events url: cannot derive one from the api "
                   "url; pass one (--events-url, $CADRE_EVENTS_URL)");
        cadre_events_close(e);
        goto fail;
    }
    if (events_dial(e, opts, &err) != CADRE_OK) {
        cd_err_wrap(&err, "events");
        cadre_events_close(e);
        goto fail;
    }
    *out = e;
    return CADRE_OK;
fail:
    cd_err_copy(&err, errbuf, errbuf_len);
    client_fail(&err);
    return err.code;
}

static void
events_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

int
cadre_events_next(cadre_events *e, cadre_event *out, uint32_t timeout_ms)
{
    uint64_t deadline = cd_mono_ms() + timeout_ms;
    cd_err   err = {0};

    if (e == NULL || out == NULL) {
        cd_err_set(&err, CADRE_EINVAL, "events: no subscription");
        return client_fail(&err);
    }
    for (;;) {
        uint64_t   now = cd_mono_ms();
        uint64_t   left = deadline > now ? deadline - now : 0;
        nng_msg   *nm = NULL;
        struct msg m;
        int        rv, rc;

        nng_socket_set_ms(e->sock, NNG_OPT_RECVTIMEO,
                          left > 0 ? (nng_duration)left : 1);
        rv = nng_recvmsg(e->sock, &nm, left > 0 ? 0 : NNG_FLAG_NONBLOCK);
        if (rv == NNG_ETIMEDOUT || rv == NNG_EAGAIN) {
            cd_err_set(&err, CADRE_ETIMEDOUT, "events: none within %u ms",
                       (unsigned)timeout_ms);
            return client_fail(&err);
        }
        if (rv != 0) {
            cd_err_set(&err, rv == NNG_ECLOSED ? CADRE_ECLOSED : CADRE_EIO,
                       "events: receive: %s", nng_strerror(rv));
            return client_fail(&err);
        }
        memset(&m, 0, sizeof(m));
        rc = wire_open(&e->ring, nng_msg_body(nm), nng_msg_len(nm),
                       e->max_frame, NULL, &m, &err);
        nng_msg_free(nm);
        if (rc != CADRE_OK || m.kind != MSG_EVENT) {
            /* Another cluster's key, or a kind this build does not know. */
            e->skipped++;
            msg_free(&m);
            continue;
        }
        memset(out, 0, sizeof(*out));
        out->kind = m.u.event.kind;
        out->id = m.u.event.id;
        events_copy(out->task, sizeof(out->task), m.u.event.task);
        events_copy(out->queue, sizeof(out->queue), m.u.event.queue);
        out->attempt = m.u.event.attempt;
        out->at_ms = m.u.event.at_ms;
        events_copy(out->error_type, sizeof(out->error_type),
                    m.u.event.error_type);
        events_copy(out->leader, sizeof(out->leader), m.u.event.leader);
        out->term = m.u.event.term;
        msg_free(&m);
        return CADRE_OK;
    }
}

void
cadre_events_close(cadre_events *e)
{
    if (e == NULL)
        return;
    /* A socket never opened is id 0: NNG_ECLOSED. */
    client_close_socket(e->sock);
    keys_wipe(&e->ring.key[KEYS_ROLE_CLIENT]);
    cd_free(e);
}
