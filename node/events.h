/* events.h: the node's events socket: an nng pub0 listener on which job
 * events (dispatched, started, done, released, failed) are published after
 * the turn that made them committed. Frames are sealed with the client key,
 * so any holder of a client key can read them. Sends never block: a slow
 * subscriber loses events and never slows the node. It stores nothing and
 * never replays what a subscriber missed.
 *
 * Threads: loop thread only (nng's own threads do the sending). */
#ifndef NODE_EVENTS_H
#define NODE_EVENTS_H

#include <stddef.h>

#include "common/err.h"
#include "node/tls.h"
#include "proto/msg.h"
#include "proto/wire.h"

struct events;

/* Listens on url (tcp://host:0 picks a free port); bound receives the
 * actual url (same scheme). A tls+tcp:// url uses tls (borrowed; may be NULL
 * for other schemes). sender seals every event (borrowed: must outlive the
 * events socket; wire_sender is thread-safe). Returns CADRE_EBUSY (address
 * in use) or CADRE_EIO (bad url, other nng errors; with nng's text),
 * CADRE_ECONFIG (tls+tcp:// without a usable certificate), CADRE_ENOMEM. */
int events_open(struct events **out, const char *url,
                struct wire_sender *sender, size_t max_frame,
                const struct tls_files *tls, char *bound, size_t bound_len,
                cd_err *err);

/* Seals and publishes ev (borrowed) without blocking. An event that cannot
 * be sealed or sent is counted and dropped. */
void events_publish(struct events *e, const struct msg_event *ev);

/* Seals m with sender (borrowed) and publishes it the same way. The
 * cluster's heartbeats go out here, sealed with the node key: subscribers
 * choose by the frame's first two bytes (version, role), so job-event
 * readers never see them. */
void events_publish_msg(struct events *e, struct wire_sender *sender,
                        const struct msg *m);

/* Events dropped so far (could not be sealed or sent). */
uint64_t events_dropped(const struct events *e);

/* Closes the socket; accepts NULL. */
void events_close(struct events *e);

#endif
