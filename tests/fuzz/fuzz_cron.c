/* fuzz_cron.c: libFuzzer target for cron_parse on arbitrary text (schedule
 * files and `cadre schedule` arguments), then cron_next from fixed times in
 * UTC (tz NULL: the fuzzer never switches the process's time zone). Also
 * cron_duration_parse on the same text. Oracle for a slot found: it is after
 * the start and within CRON_SEARCH_YEARS, it matches the expression's fields,
 * cron_next from the second before it finds it again, cron_latest and
 * cron_slots agree, and for short gaps no second in between matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/cron.h"

#define FUZZ_CRON_MAX_LEN 512 /* longer text only tests the length check */
#define FUZZ_CRON_SCAN_S 4000 /* gaps scanned second by second */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2025-12-31 23:59:59, 2000-02-28 23:59:59 (a leap day next), and
 * 1970-01-01 00:00:00 UTC. */
static const int64_t fuzz_cron_starts[] = {1767225599, 951782399, 0};

/* Whether instant t matches c's fields in UTC (the brute-force definition). */
static int
fuzz_cron_matches(const struct cron *c, int64_t t)
{
    struct tm tm;
    time_t    tt = (time_t)t;
    int       dom, dow;

    if (c->every_s > 0)
        return t % (int64_t)c->every_s == 0;
    if (gmtime_r(&tt, &tm) == NULL)
        abort();
    dom = (c->dom_mask >> tm.tm_mday) & 1;
    dow = (c->dow_mask >> tm.tm_wday) & 1;
    return ((c->sec_mask >> tm.tm_sec) & 1) &&
           ((c->min_mask >> tm.tm_min) & 1) &&
           ((c->hour_mask >> tm.tm_hour) & 1) &&
           ((c->mon_mask >> (tm.tm_mon + 1)) & 1) &&
           (c->day_or ? dom || dow : dom && dow);
}

static void
fuzz_cron_check(const struct cron *c, int64_t start_s)
{
    const int64_t horizon_s = (int64_t)CRON_SEARCH_YEARS * 366 * 86400;
    int64_t       next_s, again_s, latest_s, slots[3];
    size_t        n;
    int           rc;

    rc = cron_next(c, NULL, start_s, &next_s);
    if (rc == CADRE_ENOTFOUND)
        return;
    if (rc != CADRE_OK)
        abort(); /* UTC allocates nothing: ENOMEM cannot happen */
    if (next_s <= start_s || next_s - start_s > horizon_s)
        abort(); /* not strictly after, or beyond the search horizon */
    if (!fuzz_cron_matches(c, next_s))
        abort(); /* the slot does not match the expression */
    if (cron_next(c, NULL, next_s - 1, &again_s) != CADRE_OK ||
        again_s != next_s)
        abort();
    if (cron_latest(c, NULL, start_s, next_s, &latest_s) != CADRE_OK ||
        latest_s != next_s)
        abort(); /* the only slot in (start, next] is next */
    if (cron_slots(c, NULL, start_s, next_s, slots, 3, &n) != CADRE_OK ||
        n != 1 || slots[0] != next_s)
        abort();
    if (next_s - start_s <= FUZZ_CRON_SCAN_S) {
        for (int64_t t = start_s + 1; t < next_s; t++)
            if (fuzz_cron_matches(c, t))
                abort(); /* cron_next skipped a matching second */
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cron c;
    cd_err      err;
    uint64_t    dur_s;
    char       *text;

    if (size > FUZZ_CRON_MAX_LEN)
        return 0;
    text = malloc(size + 1); /* exactly sized: ASan sees any overread */
    if (text == NULL)
        return 0;
    if (size > 0)
        memcpy(text, data, size);
    text[size] = '\0';

    if (cron_duration_parse(text, &dur_s, &err) == CADRE_OK) {
        if (dur_s == 0)
            abort(); /* cron.h: more than 0 */
    } else if (err.code != CADRE_EINVAL) {
        abort();
    }

    if (cron_parse(text, &c, &err) == CADRE_OK) {
        for (size_t i = 0;
             i < sizeof(fuzz_cron_starts) / sizeof(fuzz_cron_starts[0]); i++)
            fuzz_cron_check(&c, fuzz_cron_starts[i]);
    } else if (err.code != CADRE_EINVAL ||
               memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
        abort(); /* cron.h: EINVAL with a message */
    }
    free(text);
    return 0;
}
