/* buf.h: a growable byte buffer (caller storage: cd_buf_init / cd_buf_fini). */
#ifndef CD_BUF_H
#define CD_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cd_buf {
    uint8_t *data;
    size_t   len;
    size_t   cap;
} cd_buf;

void cd_buf_init(cd_buf *b);
void cd_buf_fini(cd_buf *b);
/* Returns CADRE_ENOMEM if it cannot grow; b is unchanged then. */
int cd_buf_reserve(cd_buf *b, size_t extra);
int cd_buf_append(cd_buf *b, const void *p, size_t n);
int cd_buf_printf(cd_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Hands the bytes to the caller (NUL-terminated); b is left empty. */
char *cd_buf_take(cd_buf *b);

#endif
