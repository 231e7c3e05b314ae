/* test_cron.c: cron expressions: parsing and its errors, next slots in UTC
 * (expected times checked with `date -d`), @every alignment, the latest and
 * the listed slots, and time zones across DST changes. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "node/cron.h"
#include "tests/lib/tap.h"

/* "YYYY-MM-DD HH:MM:SS" in UTC to Unix seconds. */
static int64_t
utc(const char *s)
{
    struct tm tm = {0};

    if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        abort();
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* The next slot of expr after `after` as a UTC string, or the error. */
static const char *
next_in(const char *expr, const char *tz, const char *after)
{
    static char buf[64];
    struct cron c;
    cd_err      err = {0};
    int64_t     t;
    time_t      tt;
    struct tm   tm;
    int         rc;

    if (cron_parse(expr, &c, &err) != CADRE_OK) {
        snprintf(buf, sizeof(buf), "parse error");
        return buf;
    }
    rc = cron_next(&c, tz, utc(after), &t);
    if (rc != CADRE_OK) {
        snprintf(buf, sizeof(buf), "%s", cadre_strerror(rc));
        return buf;
    }
    tt = (time_t)t;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

static const char *
next(const char *expr, const char *after)
{
    return next_in(expr, NULL, after);
}

/* Zone tests need tzdata; without it they are skipped with a note. */
static int
have_zone(const char *tz)
{
    char path[256];

    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    if (access(path, R_OK) == 0)
        return 1;
    printf("# skipped: no %s (install tzdata)\n", path);
    return 0;
}

/* ---- a naive scan to compare with: minute by minute, localtime_r ---- */

static uint32_t rng = 42;

static int
rnd(int n)
{
    rng = rng * 1103515245u + 12345u;
    return (int)((rng >> 16) % (uint32_t)n);
}

/* A random field over lo..hi: a star, a stepped star, a range, a list, a
 * stepped range or a value. */
static void
rnd_field(char *out, size_t size, int lo, int hi)
{
    int a = lo + rnd(hi - lo + 1), b = lo + rnd(hi - lo + 1), k = 1 + rnd(5);

    if (a > b) {
        int t = a;

        a = b;
        b = t;
    }
    switch (rnd(7)) {
    case 0:
    case 1:
        snprintf(out, size, "*");
        break;
    case 2:
        snprintf(out, size, "*/%d", k);
        break;
    case 3:
        snprintf(out, size, "%d-%d", a, b);
        break;
    case 4:
        snprintf(out, size, "%d,%d", a, b);
        break;
    case 5:
        snprintf(out, size, "%d-%d/%d", a, b, k);
        break;
    default:
        snprintf(out, size, "%d", a);
        break;
    }
}

static int
naive_match(const struct cron *c, const struct tm *tm)
{
    int dom = (c->dom_mask >> tm->tm_mday) & 1;
    int dow = (c->dow_mask >> tm->tm_wday) & 1;

    return ((c->min_mask >> tm->tm_min) & 1) &&
           ((c->hour_mask >> tm->tm_hour) & 1) &&
           ((c->mon_mask >> (tm->tm_mon + 1)) & 1) &&
           (c->day_or ? dom || dow : dom && dow);
}

/* Whether t's wall time already occurred 30 or 60 minutes before. */
static int
naive_repeat(time_t t, const struct tm *tm)
{
    for (time_t back = 1800; back <= 3600; back += 1800) {
        time_t    t2 = t - back;
        struct tm tm2;

        localtime_r(&t2, &tm2);
        if (tm2.tm_mday == tm->tm_mday && tm2.tm_hour == tm->tm_hour &&
            tm2.tm_min == tm->tm_min)
            return 1;
    }
    return 0;
}

/* The first firing after `after` within `minutes`, or -1. TZ must be set. */
static int64_t
naive_next(const struct cron *c, int64_t after, long minutes)
{
    time_t t = (time_t)((after / 60 + 1) * 60);

    for (long k = 0; k < minutes; k++, t += 60) {
        struct tm tm;

        localtime_r(&t, &tm);
        if (naive_match(c, &tm) && !naive_repeat(t, &tm))
            return (int64_t)t;
    }
    return -1;
}

/* Random expressions from random starting points (near a DST change when a
 * zone is given) agree with the naive scan over a week. */
static void
compare_with_naive(const char *tz, int64_t base, int64_t spread, int exprs)
{
    setenv("TZ", tz ? tz : "UTC", 1);
    tzset();
    for (int i = 0; i < exprs; i++) {
        char        f[5][32], expr[200];
        struct cron c;
        cd_err      err = {0};

        rnd_field(f[0], sizeof(f[0]), 0, 59);
        rnd_field(f[1], sizeof(f[1]), 0, 23);
        rnd_field(f[2], sizeof(f[2]), 1, 31);
        rnd_field(f[3], sizeof(f[3]), 1, 12);
        rnd_field(f[4], sizeof(f[4]), 0, 7);
        snprintf(expr, sizeof(expr), "%s %s %s %s %s", f[0], f[1], f[2], f[3],
                 f[4]);
        REQUIRE_EQ(cron_parse(expr, &c, &err), CADRE_OK);
        for (int j = 0; j < 2; j++) {
            int64_t after = base + rnd((int)spread) - spread / 2;
            int64_t want = naive_next(&c, after, 7 * 1440), got = -1;
            int     rc = cron_next(&c, tz, after, &got);

            if (want >= 0 ? rc != CADRE_OK || got != want
                          : rc == CADRE_OK && got <= after + 7 * 86400 - 60)
                tap_fail(__FILE__, __LINE__,
                         "'%s' tz %s after %lld: got %lld (rc %d), naive "
                         "%lld",
                         expr, tz ? tz : "UTC", (long long)after,
                         (long long)got, rc, (long long)want);
        }
    }
    unsetenv("TZ");
    tzset();
}

TEST(basic_fields)
{
    const char *mon = "2024-01-15 10:30:00"; /* a Monday */

    CHECK_STR(next("* * * * *", mon), "2024-01-15 10:31:00");
    CHECK_STR(next("*/5 * * * *", mon), "2024-01-15 10:35:00");
    CHECK_STR(next("*/5 * * * *", "2024-01-15 10:32:10"),
              "2024-01-15 10:35:00");
    CHECK_STR(next("0 * * * *", mon), "2024-01-15 11:00:00");
    /* strictly after: a slot at `after` itself is not returned */
    CHECK_STR(next("30 10 * * *", mon), "2024-01-16 10:30:00");
    CHECK_STR(next("30 10 * * *", "2024-01-15 10:29:59"),
              "2024-01-15 10:30:00");
    CHECK_STR(next("59 23 31 12 *", mon), "2024-12-31 23:59:00");
    CHECK_STR(next("0 0 1 1 *", "1969-12-31 23:59:59"), "1970-01-01 00:00:00");
    CHECK_STR(next("0 0 31 * *", "2024-01-31 00:00:00"), "2024-03-31 00:00:00");
    CHECK_STR(next("15,45 8-9 * * *", mon), "2024-01-16 08:15:00");
    CHECK_STR(next("15,45 8-9 * * *", "2024-01-16 08:15:00"),
              "2024-01-16 08:45:00");
    CHECK_STR(next("15,45 8-9 * * *", "2024-01-16 08:45:00"),
              "2024-01-16 09:15:00");
}

TEST(ranges_and_steps)
{
    CHECK_STR(next("1-10/2 * * * *", "2024-01-15 10:30:00"),
              "2024-01-15 11:01:00");
    CHECK_STR(next("1-10/2 * * * *", "2024-01-15 11:05:00"),
              "2024-01-15 11:07:00");
    CHECK_STR(next("1-10/2 * * * *", "2024-01-15 11:09:00"),
              "2024-01-15 12:01:00");
    CHECK_STR(next("0 */6 * * *", "2024-01-15 10:30:00"),
              "2024-01-15 12:00:00");
    CHECK_STR(next("0 0 */10 * *", "2024-01-15 10:30:00"),
              "2024-01-21 00:00:00"); /* 1, 11, 21, 31 */
    /* N/STEP is N-max/STEP */
    CHECK_STR(next("50/5 * * * *", "2024-01-15 10:56:00"),
              "2024-01-15 11:50:00");
}

TEST(seconds_field)
{
    CHECK_STR(next("*/15 * * * * *", "2024-01-15 10:30:00"),
              "2024-01-15 10:30:15");
    CHECK_STR(next("30 0 0 * * *", "2024-01-15 10:30:00"),
              "2024-01-16 00:00:30");
    CHECK_STR(next("0-10/5 * * * * *", "2024-01-15 10:30:07"),
              "2024-01-15 10:30:10");
    CHECK_STR(next("0-10/5 * * * * *", "2024-01-15 10:30:10"),
              "2024-01-15 10:31:00");
    CHECK_STR(next("* * * * * *", "2024-12-31 23:59:59"),
              "2025-01-01 00:00:00");
}

TEST(names_and_sunday_as_0_or_7)
{
    const char *mon = "2024-01-15 10:30:00";

    CHECK_STR(next("0 9 * * mon-fri", "2024-01-19 10:00:00"),
              "2024-01-22 09:00:00");
    CHECK_STR(next("0 12 * * 0", mon), "2024-01-21 12:00:00");
    CHECK_STR(next("0 12 * * 7", mon), "2024-01-21 12:00:00");
    CHECK_STR(next("0 12 * * SUN", mon), "2024-01-21 12:00:00");
    CHECK_STR(next("0 12 * * 5-7", mon), "2024-01-19 12:00:00");
    CHECK_STR(next("0 0 1 jan *", mon), "2025-01-01 00:00:00");
    CHECK_STR(next("0 0 * feb,MAR sat", mon), "2024-02-03 00:00:00");
}

/* Vixie: both day fields restricted: either matches; a `*`-led one (even
 * with a step) makes it "both". */
TEST(dom_dow_or_rule)
{
    CHECK_STR(next("0 0 13 * fri", "2024-01-15 00:00:00"),
              "2024-01-19 00:00:00");
    CHECK_STR(next("0 0 13 * fri", "2024-02-10 00:00:00"),
              "2024-02-13 00:00:00"); /* a Tuesday */
    CHECK_STR(next("0 0 13 * *", "2024-01-15 00:00:00"), "2024-02-13 00:00:00");
    CHECK_STR(next("0 0 * * fri", "2024-01-15 00:00:00"),
              "2024-01-19 00:00:00");
    /* odd days that are Fridays: Jan 19, then Feb 9 (Jan 26, Feb 2 even) */
    CHECK_STR(next("0 0 */2 * fri", "2024-01-15 00:00:00"),
              "2024-01-19 00:00:00");
    CHECK_STR(next("0 0 */2 * fri", "2024-01-20 00:00:00"),
              "2024-02-09 00:00:00");
}

TEST(feb_29_and_impossible)
{
    CHECK_STR(next("0 0 29 2 *", "2024-03-01 00:00:00"), "2028-02-29 00:00:00");
    CHECK_STR(next("0 0 29 2 *", "2096-03-01 00:00:00"),
              "2104-02-29 00:00:00"); /* 2100 is not a leap year */
    CHECK_STR(next("0 0 30 2 *", "2024-01-01 00:00:00"), "not found");
    CHECK_STR(next("0 0 31 4,6,9,11 *", "2024-01-01 00:00:00"), "not found");
    CHECK_STR(next("* * * * *", "9999-12-31 23:59:59"), "not found");
}

TEST(macros)
{
    const char *mon = "2024-01-15 10:30:00";

    CHECK_STR(next("@hourly", mon), "2024-01-15 11:00:00");
    CHECK_STR(next("@daily", mon), "2024-01-16 00:00:00");
    CHECK_STR(next("@midnight", mon), "2024-01-16 00:00:00");
    CHECK_STR(next("@weekly", mon), "2024-01-21 00:00:00");
    CHECK_STR(next("@monthly", mon), "2024-02-01 00:00:00");
    CHECK_STR(next("@yearly", mon), "2025-01-01 00:00:00");
    CHECK_STR(next("@annually", mon), "2025-01-01 00:00:00");
    CHECK_STR(next("  @DAILY ", mon), "2024-01-16 00:00:00");
}

/* @every slots are multiples of the period since the epoch, whatever the
 * starting point and the zone, so every node agrees on them. */
TEST(every_is_aligned_to_the_epoch)
{
    struct cron c;
    cd_err      err = {0};
    int64_t     t;

    REQUIRE_EQ(cron_parse("@every 10s", &c, &err), CADRE_OK);
    CHECK_EQ(c.every_s, 10);
    CHECK_EQ(cron_next(&c, NULL, 0, &t), CADRE_OK);
    CHECK_EQ(t, 10);
    CHECK_EQ(cron_next(&c, NULL, 1700000005, &t), CADRE_OK);
    CHECK_EQ(t, 1700000010);
    CHECK_EQ(cron_next(&c, NULL, 1700000010, &t), CADRE_OK);
    CHECK_EQ(t, 1700000020);
    CHECK_EQ(cron_next(&c, NULL, -5, &t), CADRE_OK);
    CHECK_EQ(t, 0);
    CHECK_EQ(cron_next(&c, "Europe/Paris", 1700000005, &t), CADRE_OK);
    CHECK_EQ(t, 1700000010);

    REQUIRE_EQ(cron_parse("@every 1h30m", &c, &err), CADRE_OK);
    CHECK_EQ(c.every_s, 5400);
    CHECK_EQ(cron_next(&c, NULL, 5399, &t), CADRE_OK);
    CHECK_EQ(t, 5400);
    CHECK_EQ(cron_next(&c, NULL, 5400, &t), CADRE_OK);
    CHECK_EQ(t, 10800);
    REQUIRE_EQ(cron_parse("@every 5m", &c, &err), CADRE_OK);
    CHECK_EQ(cron_next(&c, NULL, 1700000123, &t), CADRE_OK);
    CHECK_EQ(t % 300, 0);
    CHECK(t > 1700000123 && t - 1700000123 <= 300);
    REQUIRE_EQ(cron_parse("@every 2h", &c, &err), CADRE_OK);
    CHECK_EQ(c.every_s, 7200);
}

TEST(durations)
{
    uint64_t    s = 0;
    cd_err      err = {0};
    const char *bad[] = {"", "h", "10", "1.5h", "-1s", "0s", "10x", "3700d"};

    CHECK_EQ(cron_duration_parse("10s", &s, &err), CADRE_OK);
    CHECK_EQ(s, 10);
    CHECK_EQ(cron_duration_parse("5m", &s, &err), CADRE_OK);
    CHECK_EQ(s, 300);
    CHECK_EQ(cron_duration_parse("1h30m", &s, &err), CADRE_OK);
    CHECK_EQ(s, 5400);
    CHECK_EQ(cron_duration_parse("2h", &s, &err), CADRE_OK);
    CHECK_EQ(s, 7200);
    CHECK_EQ(cron_duration_parse("1d", &s, &err), CADRE_OK);
    CHECK_EQ(s, 86400);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = 42;
        CHECK_EQ(cron_duration_parse(bad[i], &s, &err), CADRE_EINVAL);
        CHECK_CONTAINS(err.msg, "duration");
        CHECK_EQ(s, 42); /* untouched on failure */
    }
    CHECK_EQ(cron_duration_parse("99999999999999999999999s", &s, &err),
             CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "too long");
}

TEST(masks)
{
    struct cron c;
    cd_err      err = {0};

    REQUIRE_EQ(cron_parse("0 0 * jan-mar mon,wed,7", &c, &err), CADRE_OK);
    CHECK_EQ(c.sec_mask, 1);
    CHECK_EQ(c.mon_mask, 0xe); /* 1, 2, 3 */
    CHECK_EQ(c.dow_mask, (1 << 0) | (1 << 1) | (1 << 3));
    CHECK_EQ(c.day_or, 0);
    REQUIRE_EQ(cron_parse("0 0 1 * 1", &c, &err), CADRE_OK);
    CHECK_EQ(c.day_or, 1);
    REQUIRE_EQ(cron_parse("* * * * *", &c, &err), CADRE_OK);
    CHECK_EQ(c.dow_mask, 0x7f); /* Sunday once */
    CHECK_EQ(c.dom_mask, 0xfffffffeu);
}

/* Each error names the field and the bad token. */
TEST(parse_errors_name_field_and_token)
{
    static const struct {
        const char *expr, *field, *token;
    } cases[] = {
        {"61 * * * *", "minute", "'61'"},
        {"* 24 * * *", "hour", "'24'"},
        {"* * 0 * *", "day-of-month", "'0'"},
        {"* * 32 * *", "day-of-month", "'32'"},
        {"* * * 13 *", "month", "'13'"},
        {"* * * foo *", "month", "'foo'"},
        {"* * * * 8", "day-of-week", "'8'"},
        {"* * * * mon-bogus", "day-of-week", "'mon-bogus'"},
        {"*/0 * * * *", "minute", "'*/0'"},
        {"*/x * * * *", "minute", "'*/x'"},
        {"5-1 * * * *", "minute", "'5-1'"},
        {"1,,2 * * * *", "minute", "'1,,2'"},
        {"1, * * * *", "minute", "'1,'"},
        {"60 * * * * *", "second", "'60'"},
        {"* -1 * * *", "hour", "'-1'"},
    };
    struct cron c;
    cd_err      err;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cd_err_clear(&err);
        CHECK_EQ(cron_parse(cases[i].expr, &c, &err), CADRE_EINVAL);
        CHECK_CONTAINS(err.msg, cases[i].field);
        CHECK_CONTAINS(err.msg, cases[i].token);
        CHECK_CONTAINS(err.msg, cases[i].expr);
    }
    CHECK_EQ(cron_parse("* * * *", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "got 4");
    CHECK_EQ(cron_parse("* * * * * * *", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "got 7");
    CHECK_EQ(cron_parse("", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "got 0");
    CHECK_EQ(cron_parse(NULL, &c, &err), CADRE_EINVAL);
    CHECK_EQ(cron_parse("@sometimes", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "unknown macro '@sometimes'");
    CHECK_EQ(cron_parse("@every", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "@every");
    CHECK_EQ(cron_parse("@every 10", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "unit");
    CHECK_EQ(cron_parse("@every 0s", &c, &err), CADRE_EINVAL);
    CHECK_CONTAINS(err.msg, "> 0");
    /* no message wanted: still the error */
    CHECK_EQ(cron_parse("@every x", &c, NULL), CADRE_EINVAL);
    CHECK_EQ(cron_parse("61 * * * *", &c, NULL), CADRE_EINVAL);
    CHECK_EQ(cron_duration_parse("x", &c.every_s, NULL), CADRE_EINVAL);
}

TEST(latest_and_listed_slots)
{
    struct cron c;
    cd_err      err = {0};
    int64_t     t = 0, slots[8];
    size_t      n = 0;
    int64_t     ten = utc("2024-01-15 10:00:00");

    REQUIRE_EQ(cron_parse("*/5 * * * *", &c, &err), CADRE_OK);
    CHECK_EQ(cron_latest(&c, NULL, ten, ten + 17 * 60, &t), CADRE_OK);
    CHECK_EQ(t, ten + 15 * 60);
    CHECK_EQ(cron_latest(&c, NULL, ten + 15 * 60, ten + 20 * 60 - 1, &t),
             CADRE_ENOTFOUND);
    CHECK_EQ(cron_latest(&c, NULL, ten + 15 * 60 - 1, ten + 15 * 60, &t),
             CADRE_OK);
    CHECK_EQ(t, ten + 15 * 60);
    CHECK_EQ(cron_latest(&c, NULL, ten, ten, &t), CADRE_ENOTFOUND);
    /* a year back: still a few dozen searches */
    CHECK_EQ(cron_latest(&c, NULL, ten - 366 * 86400, ten + 1, &t), CADRE_OK);
    CHECK_EQ(t, ten);

    REQUIRE_EQ(cron_parse("*/15 * * * *", &c, &err), CADRE_OK);
    CHECK_EQ(cron_slots(&c, NULL, ten, ten + 3600, slots, 8, &n), CADRE_OK);
    REQUIRE_EQ(n, 4);
    CHECK_EQ(slots[0], ten + 900);
    CHECK_EQ(slots[3], ten + 3600);
    CHECK_EQ(cron_slots(&c, NULL, ten, ten + 3600, slots, 2, &n), CADRE_OK);
    REQUIRE_EQ(n, 2);
    CHECK_EQ(slots[1], ten + 1800);
    CHECK_EQ(cron_slots(&c, NULL, ten, ten + 899, slots, 8, &n), CADRE_OK);
    CHECK_EQ(n, 0);

    REQUIRE_EQ(cron_parse("@every 10s", &c, &err), CADRE_OK);
    CHECK_EQ(cron_latest(&c, NULL, 100, 135, &t), CADRE_OK);
    CHECK_EQ(t, 130);
    CHECK_EQ(cron_latest(&c, NULL, 130, 139, &t), CADRE_ENOTFOUND);
    CHECK_EQ(cron_slots(&c, NULL, 100, 135, slots, 8, &n), CADRE_OK);
    REQUIRE_EQ(n, 3);
    CHECK_EQ(slots[0], 110);
    CHECK_EQ(slots[2], 130);
}

TEST(zone_plain)
{
    if (!have_zone("Europe/Paris") || !have_zone("America/New_York"))
        return;
    CHECK_STR(next_in("0 9 * * *", "Europe/Paris", "2024-01-15 00:00:00"),
              "2024-01-15 08:00:00"); /* CET, +1 */
    CHECK_STR(next_in("0 9 * * *", "Europe/Paris", "2024-07-01 00:00:00"),
              "2024-07-01 07:00:00"); /* CEST, +2 */
    CHECK_STR(
        next_in("0 9 * * mon-fri", "America/New_York", "2024-01-15 00:00:00"),
        "2024-01-15 14:00:00");
    /* the local date decides the day: 23:30 UTC Sunday is Monday in Paris */
    CHECK_STR(next_in("30 0 * * mon", "Europe/Paris", "2024-01-14 12:00:00"),
              "2024-01-14 23:30:00");
    CHECK_STR(next_in("0 9 * * *", "", "2024-01-15 00:00:00"),
              "2024-01-15 09:00:00");
    CHECK_STR(next_in("0 9 * * *", "UTC", "2024-01-15 00:00:00"),
              "2024-01-15 09:00:00");
}

/* Spring forward: 02:00-03:00 does not exist; such slots are skipped. */
TEST(zone_spring_forward)
{
    if (!have_zone("Europe/Paris") || !have_zone("America/New_York"))
        return;
    /* Paris 2024-03-31: 02:00 CET -> 03:00 CEST */
    CHECK_STR(next_in("30 2 * * *", "Europe/Paris", "2024-03-30 12:00:00"),
              "2024-04-01 00:30:00");
    CHECK_STR(next_in("0 * * * *", "Europe/Paris", "2024-03-31 00:30:00"),
              "2024-03-31 01:00:00"); /* 01:30 CET -> 03:00 CEST */
    CHECK_STR(next_in("0 3 * * *", "Europe/Paris", "2024-03-30 12:00:00"),
              "2024-03-31 01:00:00");
    /* New York 2024-03-10: 02:00 EST -> 03:00 EDT */
    CHECK_STR(next_in("30 2 * * *", "America/New_York", "2024-03-09 12:00:00"),
              "2024-03-11 06:30:00");
    CHECK_STR(
        next_in("*/20 * * * *", "America/New_York", "2024-03-10 06:50:00"),
        "2024-03-10 07:00:00"); /* 01:50 EST -> 03:00 EDT */
}

/* Fall back: 02:00-03:00 (Paris) or 01:00-02:00 (New York) happens twice;
 * a slot there fires once, at its first occurrence. */
TEST(zone_fall_back)
{
    if (!have_zone("Europe/Paris") || !have_zone("America/New_York"))
        return;
    /* Paris 2024-10-27: 03:00 CEST -> 02:00 CET */
    CHECK_STR(next_in("30 2 * * *", "Europe/Paris", "2024-10-26 12:00:00"),
              "2024-10-27 00:30:00");
    CHECK_STR(next_in("30 2 * * *", "Europe/Paris", "2024-10-27 00:30:00"),
              "2024-10-28 01:30:00"); /* not 01:30 UTC, the second 02:30 */
    CHECK_STR(next_in("0 * * * *", "Europe/Paris", "2024-10-27 00:00:00"),
              "2024-10-27 02:00:00"); /* 03:00 CET; 02:00 CET is a repeat */
    /* starting inside the repeated hour, at 02:15 CET */
    CHECK_STR(next_in("*/30 * * * *", "Europe/Paris", "2024-10-27 01:15:00"),
              "2024-10-27 02:00:00");
    /* New York 2024-11-03: 02:00 EDT -> 01:00 EST */
    CHECK_STR(next_in("30 1 * * *", "America/New_York", "2024-11-02 12:00:00"),
              "2024-11-03 05:30:00");
    CHECK_STR(next_in("30 1 * * *", "America/New_York", "2024-11-03 05:30:00"),
              "2024-11-04 06:30:00");
}

TEST(zone_latest_across_fall_back)
{
    struct cron c;
    cd_err      err = {0};
    int64_t     t = 0;

    if (!have_zone("Europe/Paris"))
        return;
    REQUIRE_EQ(cron_parse("30 2 * * *", &c, &err), CADRE_OK);
    /* during the second 02:30, the latest slot is still the first one */
    CHECK_EQ(cron_latest(&c, "Europe/Paris", utc("2024-10-26 12:00:00"),
                         utc("2024-10-27 01:45:00"), &t),
             CADRE_OK);
    CHECK_EQ(t, utc("2024-10-27 00:30:00"));
}

/* A zone search leaves TZ as it found it, set or unset. */
TEST(zone_restores_tz)
{
    if (!have_zone("Europe/Paris"))
        return;
    setenv("TZ", "Asia/Tokyo", 1);
    CHECK_STR(next_in("0 9 * * *", "Europe/Paris", "2024-01-15 00:00:00"),
              "2024-01-15 08:00:00");
    CHECK_STR(getenv("TZ"), "Asia/Tokyo");
    unsetenv("TZ");
    CHECK_STR(next_in("0 9 * * *", "Europe/Paris", "2024-01-15 00:00:00"),
              "2024-01-15 08:00:00");
    CHECK(getenv("TZ") == NULL);
}

TEST(matches_a_naive_scan)
{
    compare_with_naive(NULL, utc("2024-06-01 00:00:00"), 400 * 86400, 100);
    if (!have_zone("Europe/Paris") || !have_zone("America/New_York") ||
        !have_zone("Australia/Lord_Howe"))
        return;
    compare_with_naive("Europe/Paris", utc("2024-03-31 01:00:00"), 4 * 3600,
                       60);
    compare_with_naive("Europe/Paris", utc("2024-10-27 01:00:00"), 4 * 3600,
                       60);
    compare_with_naive("America/New_York", utc("2024-11-03 06:00:00"), 4 * 3600,
                       60);
    /* half-hour DST shifts */
    compare_with_naive("Australia/Lord_Howe", utc("2024-04-06 15:00:00"),
                       4 * 3600, 60);
}

/* cron_latest agrees with walking cron_next forward. */
TEST(latest_matches_walking_forward)
{
    for (int i = 0; i < 100; i++) {
        char        f[5][32], expr[200];
        struct cron c;
        cd_err      err = {0};
        int64_t     after = utc("2024-01-01 00:00:00") + rnd(86400 * 365);
        int64_t     at = after + rnd(86400 * 20), t = after, prev = -1, got;
        int         rc;

        rnd_field(f[0], sizeof(f[0]), 0, 59);
        rnd_field(f[1], sizeof(f[1]), 0, 23);
        rnd_field(f[2], sizeof(f[2]), 1, 31);
        rnd_field(f[3], sizeof(f[3]), 1, 12);
        rnd_field(f[4], sizeof(f[4]), 0, 7);
        snprintf(expr, sizeof(expr), "%s %s %s %s %s", f[0], f[1], f[2], f[3],
                 f[4]);
        REQUIRE_EQ(cron_parse(expr, &c, &err), CADRE_OK);
        while (cron_next(&c, NULL, t, &t) == CADRE_OK && t <= at)
            prev = t;
        rc = cron_latest(&c, NULL, after, at, &got);
        if (prev < 0 ? rc != CADRE_ENOTFOUND : rc != CADRE_OK || got != prev)
            tap_fail(__FILE__, __LINE__,
                     "'%s' (%lld, %lld]: %lld (rc %d) != "
                     "%lld",
                     expr, (long long)after, (long long)at, (long long)got, rc,
                     (long long)prev);
    }
}

int
main(void)
{
    TAP_RUN(T(basic_fields), T(ranges_and_steps), T(seconds_field),
            T(names_and_sunday_as_0_or_7), T(dom_dow_or_rule),
            T(feb_29_and_impossible), T(macros),
            T(every_is_aligned_to_the_epoch), T(durations), T(masks),
            T(parse_errors_name_field_and_token), T(latest_and_listed_slots),
            T(zone_plain), T(zone_spring_forward), T(zone_fall_back),
            T(zone_latest_across_fall_back), T(zone_restores_tz),
            T(matches_a_naive_scan), T(latest_matches_walking_forward));
}
