/* path.h: where things are by default (DESIGN.md, "Embedded default"). */
#ifndef CD_PATH_H
#define CD_PATH_H

#include <stddef.h>

#define CD_DEFAULT_URL "tcp://127.0.0.1:7700"
#define CD_KEY_FILE_NAME "cluster.key"

/* The data dir: explicit if not NULL, else $CADRE_DATA, else
 * $HOME/.local/share/cadre. Writes into buf (len bytes). */
void cd_data_dir(const char *explicit_dir, char *buf, size_t len);
/* The key file: explicit, else $CADRE_KEY_FILE, else <data>/cluster.key. */
void cd_key_path(const char *explicit_file, const char *data_dir, char *buf,
                 size_t len);
/* The node url: explicit, else $CADRE_URL, else CD_DEFAULT_URL. */
void cd_url(const char *explicit_url, char *buf, size_t len);
/* The events url derived from an api url: same host, the api port + 2 (port
 * 0 stays 0: the node picks a free one); ipc:// and inproc:// urls get
 * ".events" appended. Returns CADRE_EINVAL if api_url has no port it can
 * read, CADRE_ETOOBIG if buf is too small. */
int cd_events_url_from(const char *api_url, char *buf, size_t len);
/* The peer url derived from an api url: the api port + 1 (port 0 stays 0),
 * or ".peer" appended to an ipc path. Returns as cd_events_url_from. */
int cd_peer_url_from(const char *api_url, char *buf, size_t len);
/* The events url a client subscribes to: explicit, else $CADRE_EVENTS_URL,
 * else derived (cd_events_url_from) from the api url cd_url gives for
 * explicit_api_url. Returns as cd_events_url_from. */
int cd_events_url(const char *explicit_url, const char *explicit_api_url,
                  char *buf, size_t len);
/* mkdir -p with mode; returns 0 or an errno value. */
int cd_mkdirs(const char *path, unsigned mode);

#endif
