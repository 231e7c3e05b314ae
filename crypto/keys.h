/* keys.h: cadre's keys. One 32-byte cluster master key (`cadre keygen`);
 * nodes, workers and clients use keys derived from it by role
 * (crypto_kdf_derive_from_key, context "cadre-v1"), so a worker host holds
 * no key that lets it pose as a node.
 *
 * Key file format, one line: "cadre-key v1 <role> <64 hex digits>\n" with
 * role one of master, node, worker, client; mode 0600. */
#ifndef CRYPTO_KEYS_H
#define CRYPTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define KEYS_LEN 32

enum keys_role {
    KEYS_ROLE_MASTER = 0,
    KEYS_ROLE_NODE = 1,
    KEYS_ROLE_WORKER = 2,
    KEYS_ROLE_CLIENT = 3,
    /* The application key of `encrypted` jobs: made apart from the cluster
     * key (never derived from it), held by clients and workers only. */
    KEYS_ROLE_APP = 4,
    KEYS_ROLE_COUNT = 5,
};

typedef struct keys_key {
    uint8_t b[KEYS_LEN];
} keys_key;

/* Initialises libsodium; call once per process before any other crypto call.
 * Returns CADRE_EINTERNAL if libsodium cannot start. Thread-safe. */
int         keys_init(void);
const char *keys_role_name(int role);
/* Returns the role for a name, or -1. */
int  keys_role_parse(const char *name);
void keys_generate(keys_key *out);
void keys_derive(const keys_key *master, int role, keys_key *out);
void keys_wipe(keys_key *k);

/* Formats a key file line into buf (>= 100 bytes). */
void keys_format(int role, const keys_key *k, char *buf, size_t len);
/* Writes a key file atomically (temp file + rename) with mode 0600.
 * Returns CADRE_EIO with the path and errno text. */
int keys_save(const char *path, int role, const keys_key *k, cd_err *err);
/* Reads a key file. Returns CADRE_ENOTFOUND if it does not exist, CADRE_EINVAL
 * if it is not a key file (message says why). */
int keys_load(const char *path, int *role, keys_key *k, cd_err *err);
/* Loads path and returns the key for want_role: derived when the file holds
 * the master key, as is when it holds want_role's key. Returns CADRE_EAUTH if
 * the file holds another role's key. The app key is never derived: only an
 * app key file gives it. */
int keys_load_for(const char *path, int want_role, keys_key *k, cd_err *err);

#endif
