/* buf.c: growable byte buffer with doubling growth. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cadre/cadre.h"
#include "common/alloc.h"

void
cd_buf_init(cd_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
cd_buf_fini(cd_buf *b)
{
    if (b == NULL)
        return;
    cd_free(b->data);
    cd_buf_init(b);
}

int
cd_buf_reserve(cd_buf *b, size_t extra)
{
    size_t   want = b->len + extra + 1; /* room for a NUL */
    size_t   cap = b->cap ? b->cap : 64;
    uint8_t *p;

    if (want <= b->cap)
        return CADRE_OK;
    while (cap < want)
        cap *= 2;
    p = cd_realloc(b->data, cap);
    if (p == NULL)
        return CADRE_ENOMEM;
    b->data = p;
    b->cap = cap;
    return CADRE_OK;
}

int
cd_buf_append(cd_buf *b, const void *p, size_t n)
{
    if (cd_buf_reserve(b, n) != CADRE_OK)
        return CADRE_ENOMEM;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return CADRE_OK;
}

int
cd_buf_printf(cd_buf *b, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return CADRE_EINVAL;
    if (cd_buf_reserve(b, (size_t)n) != CADRE_OK)
        return CADRE_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CADRE_OK;
}

char *
cd_buf_take(cd_buf *b)
{
    char *s;

    if (cd_buf_reserve(b, 0) != CADRE_OK)
        return NULL;
    b->data[b->len] = 0;
    s = (char *)b->data;
    cd_buf_init(b);
    return s;
}
