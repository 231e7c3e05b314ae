/* log.h: the logger. syslog levels, a subsystem tag, a stable event id that
 * operators can alert on, key=value details; stderr only. The level is checked
 * before formatting. CADRE_LOG=debug|info|notice|warn|err overrides the level.
 * Thread-safe (one fprintf per line). */
#ifndef CD_LOG_H
#define CD_LOG_H

enum cd_log_level {
    CD_LOG_LEVEL_ERR = 3,
    CD_LOG_LEVEL_WARN = 4,
    CD_LOG_LEVEL_NOTICE = 5,
    CD_LOG_LEVEL_INFO = 6,
    CD_LOG_LEVEL_DEBUG = 7,
};

extern int cd_log_level; /* the one mutable global besides signal flags */

/* Reads CADRE_LOG; name is the process role printed on each line. */
void cd_log_init(const char *name);
void cd_log_write(int level, const char *tag, const char *id, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

#define CD_LOG_(lvl, tag, id, ...)                                             \
    do {                                                                       \
        if ((lvl) <= cd_log_level)                                             \
            cd_log_write((lvl), (tag), (id), __VA_ARGS__);                     \
    } while (0)
#define CD_LOG_ERR(tag, id, ...) CD_LOG_(CD_LOG_LEVEL_ERR, tag, id, __VA_ARGS__)
#define CD_LOG_WARN(tag, id, ...)                                              \
    CD_LOG_(CD_LOG_LEVEL_WARN, tag, id, __VA_ARGS__)
#define CD_LOG_NOTICE(tag, id, ...)                                            \
    CD_LOG_(CD_LOG_LEVEL_NOTICE, tag, id, __VA_ARGS__)
#define CD_LOG_INFO(tag, id, ...)                                              \
    CD_LOG_(CD_LOG_LEVEL_INFO, tag, id, __VA_ARGS__)
#define CD_LOG_DEBUG(tag, id, ...)                                             \
    CD_LOG_(CD_LOG_LEVEL_DEBUG, tag, id, __VA_ARGS__)

#endif
