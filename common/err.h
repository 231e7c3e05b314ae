/* err.h: errors with a context chain. A cd_err holds a cadre error code and a
 * message that each layer prefixes with what it was doing:
 * "open store /var/lib/cadre: mdb_env_open: No space left on device".
 * Does not log; callers decide what to do with the message. */
#ifndef CD_ERR_H
#define CD_ERR_H

#include <stddef.h>

#include "cadre/cadre.h"

#define CD_ERR_MSG_MAX 512

typedef struct cd_err {
    int  code; /* enum cadre_error */
    char msg[CD_ERR_MSG_MAX];
} cd_err;

/* Sets err (if not NULL) to code with a formatted message; returns code, so
 * `return cd_err_set(err, CADRE_EIO, "read %s", path);` reads naturally. */
int cd_err_set(cd_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with "<context>: "; returns err->code (or CADRE_OK
 * when err is NULL). */
int cd_err_wrap(cd_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Resets err to CADRE_OK with an empty message. */
void cd_err_clear(cd_err *err);

/* Copies err's message (or cadre_strerror(code)) into buf of len bytes. */
void cd_err_copy(const cd_err *err, char *buf, size_t len);

#endif
