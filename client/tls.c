/* tls.c: how libcadre dials a node: straight, or through TLS when the url is
 * tls+tcp:// (an optional outer layer; frames stay sealed inside). */
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

/* opt if set, else the environment variable, else NULL. */
static const char *
client_tls_file(const char *opt, const char *env)
{
    if (opt == NULL || opt[0] == '\0')
        opt = getenv(env);
    return opt != NULL && opt[0] != '\0' ? opt : NULL;
}

/* Presents the client's certificate (if any) and, with a CA, verifies that
 * the node's certificate chains to it and names the url's host (nng takes
 * the host from the url). Returns nng's error. */
static int
client_tls_config(nng_dialer d, const cadre_client_opts *opts,
                  const char **file)
{
    const char *cert = client_tls_file(opts->tls_cert_file, "CADRE_TLS_CERT");
    const char *ca = client_tls_file(opts->tls_ca_file, "CADRE_TLS_CA");
    int         rv = 0;

    if (cert != NULL) {
        *file = cert;
        rv = nng_dialer_set_string(d, NNG_OPT_TLS_CERT_KEY_FILE, cert);
    }
    if (rv == 0 && ca != NULL) {
        *file = ca;
        rv = nng_dialer_set_string(d, NNG_OPT_TLS_CA_FILE, ca);
    }
    if (rv == 0) {
        *file = "auth mode";
        rv = nng_dialer_set_int(d, NNG_OPT_TLS_AUTH_MODE,
                                ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED
                                           : NNG_TLS_AUTH_MODE_NONE);
    }
    return rv;
}

int
client_dial_url(nng_socket sock, const char *url, const cadre_client_opts *opts,
                nng_dialer *out, cd_err *err)
{
    const char *file = NULL;
    nng_dialer  d;
    int         rv;

    if ((rv = nng_dialer_create(&d, sock, url)) != 0)
        return cd_err_set(err,
                          rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP
                              ? CADRE_EINVAL
                              : CADRE_EIO,
                          "dial %s: %s", url, nng_strerror(rv));
    if (strncmp(url, "tls+", 4) == 0 &&
        (rv = client_tls_config(d, opts, &file)) != 0) {
        nng_dialer_close(d);
        return cd_err_set(err, CADRE_EINVAL, "dial %s: tls %s: %s", url, file,
                          nng_strerror(rv));
    }
    /* Non-blocking: the node may start later; nng redials. */
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        return cd_err_set(err, CADRE_EIO, "dial %s: %s", url, nng_strerror(rv));
    }
    *out = d;
    return CADRE_OK;
}
