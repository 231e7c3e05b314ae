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
/* mkdir -p with mode; returns 0 or an errno value. */
int cd_mkdirs(const char *path, unsigned mode);

#endif
