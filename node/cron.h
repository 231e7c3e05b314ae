/* cron.h: cron expressions and their next firing time. Pure: no clock reads
 * and no I/O; times are Unix seconds passed in. Time zones other than UTC are
 * evaluated with the C library (TZ + tzset + localtime_r), which reads zone
 * files and switches the process-wide TZ for the duration of a call.
 *
 * Syntax: 5 fields "min hour dom mon dow", or 6 with seconds first. A field
 * is a comma-separated list of `*`, `N`, `N-M`, each with an optional `/STEP`
 * (`N/STEP` means N-max/STEP). Months and weekdays take names (jan..dec,
 * sun..sat, any case); weekday 7 is Sunday like 0. When both the day of month
 * and the day of week are restricted (neither field starts with `*`), a day
 * matches if either does (Vixie cron); otherwise both must match. Macros:
 * @yearly @annually @monthly @weekly @daily @midnight @hourly, and
 * `@every DURATION` (10s, 5m, 1h30m, 2h, 1d), whose slots are multiples of
 * the duration since the Unix epoch, so every node computes the same slots.
 *
 * Time zones: a wall time that does not exist (spring forward) is skipped; a
 * wall time that occurs twice (fall back) fires once, at its first
 * occurrence, so `0 * * * *` does not fire during the repeated hour's second
 * pass. `@every` ignores the time zone. */
#ifndef NODE_CRON_H
#define NODE_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* How far ahead cron_next searches. Long enough for the rarest possible
 * expression ("Feb 29 that is a Sunday": gaps of up to 40 years). */
#define CRON_SEARCH_YEARS 50

/* A parsed expression. Bit i of a mask is set when value i matches. */
struct cron {
    uint64_t sec_mask;  /* 0-59 */
    uint64_t min_mask;  /* 0-59 */
    uint32_t hour_mask; /* 0-23 */
    uint32_t dom_mask;  /* 1-31 */
    uint16_t mon_mask;  /* 1-12 */
    uint8_t  dow_mask;  /* 0-6, Sunday = 0 */
    uint8_t  day_or;    /* both day fields restricted: either matches */
    uint64_t every_s;   /* > 0: `@every`, the masks are unused */
};

/* Parses expr into *out. Returns CADRE_EINVAL with a message naming the field
 * and the bad token ("cron '61 * * * *': minute: '61' is out of range 0-59").
 * *out is written only on success. Any thread. */
int cron_parse(const char *expr, struct cron *out, cd_err *err);

/* Parses a duration made of <number><unit> parts, units s, m, h, d
 * ("10s", "1h30m"), into seconds, more than 0 and at most about 10 years.
 * Returns CADRE_EINVAL otherwise; *out_s is written only on success. Any
 * thread. */
int cron_duration_parse(const char *s, uint64_t *out_s, cd_err *err);

/* Sets *next_s to the first slot strictly after after_s, in time zone tz
 * (NULL or "" or "UTC": UTC; else an IANA name like "Europe/Paris"; an
 * unknown name behaves as UTC, so validate names before, as sched_load does).
 * Returns CADRE_ENOTFOUND if no slot exists within CRON_SEARCH_YEARS
 * ("0 0 30 2 *"), CADRE_ENOMEM. Not thread-safe with a time zone: it switches
 * the process's TZ variable and restores it; call it from the loop thread
 * only, and nothing else in the process may rely on TZ meanwhile. */
int cron_next(const struct cron *c, const char *tz, int64_t after_s,
              int64_t *next_s);

/* Sets *slot_s to the latest slot in (after_s, at_s]. Returns
 * CADRE_ENOTFOUND if there is none, CADRE_ENOMEM. Same thread rule as
 * cron_next. */
int cron_latest(const struct cron *c, const char *tz, int64_t after_s,
                int64_t at_s, int64_t *slot_s);

/* Writes the slots in (after_s, until_s], oldest first, at most cap of them,
 * into slots and sets *n to their number. Returns CADRE_ENOMEM only. Same
 * thread rule as cron_next. */
int cron_slots(const struct cron *c, const char *tz, int64_t after_s,
               int64_t until_s, int64_t *slots, size_t cap, size_t *n);

#endif
