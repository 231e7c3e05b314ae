/* err.c: the error table (cadre_strerror) and context-chained messages. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERR_TEXT_(name, text) text,
static const char *const err_texts[] = {CADRE_ERRORS(ERR_TEXT_)};
#undef ERR_TEXT_

const char *
cadre_strerror(int code)
{
    if (code < 0 || code >= CADRE_E_COUNT)
        return "unknown error";
    return err_texts[code];
}

int
cd_err_set(cd_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

int
cd_err_wrap(cd_err *err, const char *fmt, ...)
{
    char    prefix[CD_ERR_MSG_MAX];
    char    joined[2 * CD_ERR_MSG_MAX + 4]; /* truncated when copied back */
    va_list ap;

    if (err == NULL)
        return CADRE_OK;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (err->msg[0] == '\0')
        snprintf(joined, sizeof(joined), "%s: %s", prefix,
                 cadre_strerror(err->code));
    else
        snprintf(joined, sizeof(joined), "%s: %s", prefix, err->msg);
    memcpy(err->msg, joined, sizeof(err->msg) - 1);
    err->msg[sizeof(err->msg) - 1] = '\0';
    return err->code;
}

void
cd_err_clear(cd_err *err)
{
    if (err == NULL)
        return;
    err->code = CADRE_OK;
    err->msg[0] = '\0';
}

void
cd_err_copy(const cd_err *err, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    if (err->msg[0] != '\0')
        snprintf(buf, len, "%s", err->msg);
    else
        snprintf(buf, len, "%s", cadre_strerror(err->code));
}
