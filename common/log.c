/* log.c: one line per event on stderr:
 * "2026-11-23T11:50:59.123Z node[1234] WARN store STORE-FULL map full ..." */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int cd_log_level = CD_LOG_LEVEL_NOTICE;

static char log_name[32] = "cadre";

static const char *
log_level_name(int level)
{
    switch (level) {
    case CD_LOG_LEVEL_ERR:
        return "ERR";
    case CD_LOG_LEVEL_WARN:
        return "WARN";
    case CD_LOG_LEVEL_NOTICE:
        return "NOTICE";
    case CD_LOG_LEVEL_INFO:
        return "INFO";
    default:
        return "DEBUG";
    }
}

void
cd_log_init(const char *name)
{
    static const struct {
        const char *name;
        int         level;
    } levels[] = {{"err", CD_LOG_LEVEL_ERR},   {"error", CD_LOG_LEVEL_ERR},
                  {"warn", CD_LOG_LEVEL_WARN}, {"notice", CD_LOG_LEVEL_NOTICE},
                  {"info", CD_LOG_LEVEL_INFO}, {"debug", CD_LOG_LEVEL_DEBUG}};
    const char *env = getenv("CADRE_LOG");

    if (name != NULL)
        snprintf(log_name, sizeof(log_name), "%s", name);
    if (env == NULL)
        return;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcasecmp(env, levels[i].name) == 0)
            cd_log_level = levels[i].level;
}

void
cd_log_write(int level, const char *tag, const char *id, const char *fmt, ...)
{
    char           line[1024];
    struct timeval tv;
    struct tm      tm;
    va_list        ap;
    int            n;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s %s %s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000), log_name,
                 (int)getpid(), log_level_name(level), tag, id);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line);
}
