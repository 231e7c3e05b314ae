/* tls.c: TLS options of the node's listeners and dialers (tls.h). Only
 * nng's own options: the files are read by nng (mbedTLS) when set. */
#include "node/tls.h"

#include <nng/supplemental/tls/tls.h>
#include <string.h>

int
tls_is_url(const char *url)
{
    return strncmp(url, "tls+tcp", 7) == 0;
}

/* The files that are set (NULL if not) and the auth mode they give: with a
 * CA the other side must present a certificate it signed. */
static int
tls_files_get(const struct tls_files *tls, const char **cert, const char **ca)
{
    *cert = tls != NULL && tls->cert_file != NULL && tls->cert_file[0] != '\0'
                ? tls->cert_file
                : NULL;
    *ca = tls != NULL && tls->ca_file != NULL && tls->ca_file[0] != '\0'
              ? tls->ca_file
              : NULL;
    return *ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE;
}

int
tls_listener_config(nng_listener l, const char *url,
                    const struct tls_files *tls, cd_err *err)
{
    const char *cert, *ca;
    int         mode = tls_files_get(tls, &cert, &ca);
    int         rv;

    if (!tls_is_url(url))
        return CADRE_OK;
    if (cert == NULL)
        return cd_err_set(err, CADRE_ECONFIG,
                          "listen %s: a tls+tcp url needs tls-cert (a PEM "
                          "file with this node's certificate and key)",
                          url);
    if ((rv = nng_listener_set_string(l, NNG_OPT_TLS_CERT_KEY_FILE, cert)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "listen %s: tls-cert %s: %s", url,
                          cert, nng_strerror(rv));
    if (ca != NULL &&
        (rv = nng_listener_set_string(l, NNG_OPT_TLS_CA_FILE, ca)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "listen %s: tls-ca %s: %s", url,
                          ca, nng_strerror(rv));
    if ((rv = nng_listener_set_int(l, NNG_OPT_TLS_AUTH_MODE, mode)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "listen %s: tls auth mode: %s",
                          url, nng_strerror(rv));
    return CADRE_OK;
}

int
tls_dialer_config(nng_dialer d, const char *url, const struct tls_files *tls,
                  cd_err *err)
{
    const char *cert, *ca;
    int         mode = tls_files_get(tls, &cert, &ca);
    nng_url    *u = NULL;
    int         rv;

    if (!tls_is_url(url))
        return CADRE_OK;
    /* The server's certificate must name the host the url dials. */
    if ((rv = nng_url_parse(&u, url)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "dial %s: %s", url,
                          nng_strerror(rv));
    rv = u->u_hostname[0] == '\0'
             ? NNG_EADDRINVAL
             : nng_dialer_set_string(d, NNG_OPT_TLS_SERVER_NAME, u->u_hostname);
    nng_url_free(u);
    if (rv != 0)
        return cd_err_set(err, CADRE_ECONFIG, "dial %s: tls server name: %s",
                          url, nng_strerror(rv));
    if (cert != NULL &&
        (rv = nng_dialer_set_string(d, NNG_OPT_TLS_CERT_KEY_FILE, cert)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "dial %s: tls-cert %s: %s", url,
                          cert, nng_strerror(rv));
    if (ca != NULL &&
        (rv = nng_dialer_set_string(d, NNG_OPT_TLS_CA_FILE, ca)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "dial %s: tls-ca %s: %s", url, ca,
                          nng_strerror(rv));
    if ((rv = nng_dialer_set_int(d, NNG_OPT_TLS_AUTH_MODE, mode)) != 0)
        return cd_err_set(err, CADRE_ECONFIG, "dial %s: tls auth mode: %s", url,
                          nng_strerror(rv));
    return CADRE_OK;
}
