/* tls.h: the optional outer layer (DESIGN.md, Security): nng's tls+tcp://
 * listeners and dialers get this node's certificate and the cluster's CA.
 * With a CA, the other side must present a certificate it signed (mutual
 * TLS). Frames inside stay sealed: TLS is never a substitute for that.
 * Urls of other schemes are left alone.
 *
 * Threads: any; call before the listener or dialer starts. */
#ifndef NODE_TLS_H
#define NODE_TLS_H

#include <nng/nng.h>

#include "common/err.h"

/* The node's tls-cert and tls-ca options; NULL or "" means not set.
 * Borrowed: the strings must outlive every listener and dialer. */
struct tls_files {
    const char *cert_file; /* PEM: this node's certificate and private key */
    const char *ca_file;   /* PEM: the CAs a peer's certificate must chain to */
};

/* Whether url is one of nng's TLS schemes (tls+tcp://, tls+tcp4/6://). */
int tls_is_url(const char *url);

/* Gives listener l (not started, listening on url) the certificate and, if
 * set, the CA with client certificates required. tls may be NULL.
 * Returns CADRE_ECONFIG if url is tls+tcp:// and no certificate is set, or
 * nng refuses a file (unreadable, not PEM, key missing; with nng's text). */
int tls_listener_config(nng_listener l, const char *url,
                        const struct tls_files *tls, cd_err *err);

/* Gives dialer d (not started, dialing url) the certificate (if set) to
 * present, and the CA (if set) that the server's certificate must chain to
 * for the host of url; with no CA the server is not verified. tls may be
 * NULL. Returns CADRE_ECONFIG if nng refuses a file or the url has no
 * host. */
int tls_dialer_config(nng_dialer d, const char *url,
                      const struct tls_files *tls, cd_err *err);

#endif
