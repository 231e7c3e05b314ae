/* path.c: default locations and mkdir -p. */
#include "common/path.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"

static const char *
path_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

void
cd_data_dir(const char *explicit_dir, char *buf, size_t len)
{
    const char *env = path_env("CADRE_DATA");
    const char *home = path_env("HOME");

    if (explicit_dir != NULL && explicit_dir[0] != '\0')
        snprintf(buf, len, "%s", explicit_dir);
    else if (env != NULL)
        snprintf(buf, len, "%s", env);
    else
        snprintf(buf, len, "%s/.local/share/cadre", home ? home : "/tmp");
}

void
cd_key_path(const char *explicit_file, const char *data_dir, char *buf,
            size_t len)
{
    const char *env = path_env("CADRE_KEY_FILE");
    char        dir[4096];

    if (explicit_file != NULL && explicit_file[0] != '\0') {
        snprintf(buf, len, "%s", explicit_file);
        return;
    }
    if (env != NULL) {
        snprintf(buf, len, "%s", env);
        return;
    }
    cd_data_dir(data_dir, dir, sizeof(dir));
    snprintf(buf, len, "%s/%s", dir, CD_KEY_FILE_NAME);
}

void
cd_url(const char *explicit_url, char *buf, size_t len)
{
    const char *env = path_env("CADRE_URL");

    if (explicit_url != NULL && explicit_url[0] != '\0')
        snprintf(buf, len, "%s", explicit_url);
    else if (env != NULL)
        snprintf(buf, len, "%s", env);
    else
        snprintf(buf, len, "%s", CD_DEFAULT_URL);
}

/* A sibling url of api_url: same host, port + offset (0 stays 0), or the
 * ipc path with suffix appended. */
static int
path_sibling_url(const char *api_url, unsigned offset, const char *suffix,
                 char *buf, size_t len)
{
    const char   *scheme = strstr(api_url, "://");
    const char   *colon = strrchr(api_url, ':');
    char         *end;
    unsigned long port;
    int           n;

    if (strncmp(api_url, "ipc://", 6) == 0 ||
        strncmp(api_url, "inproc://", 9) == 0) {
        n = snprintf(buf, len, "%s%s", api_url, suffix);
        return n < 0 || (size_t)n >= len ? CADRE_ETOOBIG : CADRE_OK;
    }
    if (scheme == NULL || colon == NULL || colon < scheme + 3 ||
        colon[1] < '0' || colon[1] > '9')
        return CADRE_EINVAL;
    port = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || port > 65535 - offset)
        return CADRE_EINVAL;
    n = snprintf(buf, len, "%.*s:%lu", (int)(colon - api_url), api_url,
                 port == 0 ? 0 : port + offset);
    return n < 0 || (size_t)n >= len ? CADRE_ETOOBIG : CADRE_OK;
}

int
cd_events_url_from(const char *api_url, char *buf, size_t len)
{
    return path_sibling_url(api_url, 2, ".events", buf, len);
}

int
cd_peer_url_from(const char *api_url, char *buf, size_t len)
{
    return path_sibling_url(api_url, 1, ".peer", buf, len);
}

int
cd_events_url(const char *explicit_url, const char *explicit_api_url, char *buf,
              size_t len)
{
    const char *env = path_env("CADRE_EVENTS_URL");
    char        api[1024];
    int         n;

    if (explicit_url != NULL && explicit_url[0] != '\0')
        n = snprintf(buf, len, "%s", explicit_url);
    else if (env != NULL)
        n = snprintf(buf, len, "%s", env);
    else {
        cd_url(explicit_api_url, api, sizeof(api));
        return cd_events_url_from(api, buf, len);
    }
    return n < 0 || (size_t)n >= len ? CADRE_ETOOBIG : CADRE_OK;
}

int
cd_mkdirs(const char *path, unsigned mode)
{
    char   tmp[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(tmp))
        return EINVAL;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return errno;
    return 0;
}
