/* cron.c: parsing cron expressions into bit masks and finding their slots.
 * The search walks wall-clock time ("local seconds", the local calendar
 * counted as if it were UTC) field by field with pure calendar arithmetic;
 * only the mapping between instants and wall times asks the C library, and
 * only when a time zone other than UTC is given. */
#include "node/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/alloc.h"

#define CRON_DAY_S 86400
/* Inputs outside years 1..9999 are refused: the calendar code and the C
 * library agree only inside that range. */
#define CRON_MIN_S (-62135596800LL)
#define CRON_MAX_S 253402300799LL
#define CRON_EVERY_MAX_S (10ULL * 366 * CRON_DAY_S)
#define CRON_EXPR_MAX 256

/* One field of the expression: its name in error messages, its range, the
 * range `*` stands for, and optional 3-letter names for values. */
struct cron_field {
    const char        *name;
    int                min, max, star_max;
    const char *const *names; /* names[i] is value min + i */
};

static const char *const cron_mon_names[] = {"jan", "feb", "mar", "apr", "may",
                                             "jun", "jul", "aug", "sep", "oct",
                                             "nov", "dec", NULL};
static const char *const cron_dow_names[] = {"sun", "mon", "tue", "wed",
                                             "thu", "fri", "sat", NULL};

enum { CRON_SEC, CRON_MIN, CRON_HOUR, CRON_DOM, CRON_MON, CRON_DOW };

static const struct cron_field cron_fields[] = {
    [CRON_SEC] = {"second", 0, 59, 59, NULL},
    [CRON_MIN] = {"minute", 0, 59, 59, NULL},
    [CRON_HOUR] = {"hour", 0, 23, 23, NULL},
    [CRON_DOM] = {"day-of-month", 1, 31, 31, NULL},
    [CRON_MON] = {"month", 1, 12, 12, cron_mon_names},
    /* 7 is accepted as Sunday, but `*` must not count Sunday twice */
    [CRON_DOW] = {"day-of-week", 0, 7, 6, cron_dow_names},
};

static const struct {
    const char *name;
    const char *expr;
} cron_macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* ---- calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t
cron_floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t
cron_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t  era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* A wall time broken down. */
struct cron_tm {
    int64_t  days; /* since 1970-01-01 */
    int64_t  year;
    unsigned mon, mday, hour, min, sec, wday;
};

static void
cron_split(int64_t w, struct cron_tm *tm)
{
    int64_t  z, era, secs;
    unsigned doe, yoe, doy, mp;

    tm->days = cron_floordiv(w, CRON_DAY_S);
    secs = w - tm->days * CRON_DAY_S;
    tm->hour = (unsigned)(secs / 3600);
    tm->min = (unsigned)(secs / 60 % 60);
    tm->sec = (unsigned)(secs % 60);
    /* 1970-01-01 was a Thursday (4) */
    tm->wday = (unsigned)(tm->days + 4 - cron_floordiv(tm->days + 4, 7) * 7);
    z = tm->days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    tm->mday = doy - (153 * mp + 2) / 5 + 1;
    tm->mon = mp < 10 ? mp + 3 : mp - 9;
    tm->year = (int64_t)yoe + era * 400 + (tm->mon <= 2);
}

/* ---- parsing ---- */

static int
cron_fail(cd_err *err, const char *expr, int field, const char *tok,
          const char *why)
{
    return cd_err_set(err, CADRE_EINVAL, "cron '%s': %s: '%s' %s", expr,
                      cron_fields[field].name, tok, why);
}

/* A number or a name of field f, exactly the len bytes at s. */
static int
cron_value(const struct cron_field *f, const char *s, size_t len, int *v)
{
    int n = 0;

    if (len == 0)
        return -1;
    if (isdigit((unsigned char)s[0])) {
        for (size_t i = 0; i < len; i++) {
            if (!isdigit((unsigned char)s[i]) || n > 1000)
                return -1;
            n = n * 10 + (s[i] - '0');
        }
        *v = n;
        return 0;
    }
    for (int i = 0; f->names != NULL && f->names[i] != NULL; i++) {
        if (len == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *v = f->min + i;
            return 0;
        }
    }
    return -1;
}

/* One list item: `*`, `N`, `N-M`, each with an optional `/STEP`. */
static int
cron_item(const char *expr, int fi, const char *tok, uint64_t *mask,
          cd_err *err)
{
    const struct cron_field *f = &cron_fields[fi];
    const char              *slash = strchr(tok, '/');
    const char              *dash;
    size_t                   len = slash ? (size_t)(slash - tok) : strlen(tok);
    int                      lo, hi, step = 1;

    if (slash != NULL && (cron_value(&cron_fields[CRON_SEC], slash + 1,
                                     strlen(slash + 1), &step) != 0 ||
                          step == 0))
        return cron_fail(err, expr, fi, tok, "has a bad step");
    if (len == 1 && tok[0] == '*') {
        lo = f->min;
        hi = f->star_max;
    } else {
        dash = memchr(tok, '-', len);
        if (cron_value(f, tok, dash ? (size_t)(dash - tok) : len, &lo) != 0 ||
            (dash != NULL &&
             cron_value(f, dash + 1, len - (size_t)(dash + 1 - tok), &hi) != 0))
            return cron_fail(err, expr, fi, tok, "is not a value, range or *");
        if (dash == NULL)
            hi = slash != NULL ? f->star_max : lo; /* N/STEP: N-max/STEP */
    }
    if (lo < f->min || hi > f->max || lo > f->max)
        return cd_err_set(err, CADRE_EINVAL,
                          "cron '%s': %s: '%s' is out of range %d-%d", expr,
                          f->name, tok, f->min, f->max);
    if (lo > hi)
        return cron_fail(err, expr, fi, tok, "is a backwards range");
    for (int v = lo; v <= hi; v += step)
        *mask |= 1ULL << (fi == CRON_DOW && v == 7 ? 0 : v);
    return CADRE_OK;
}

/* A comma-separated list; field is modified in place (split on commas). */
static int
cron_field_parse(const char *expr, int fi, char *field, uint64_t *mask,
                 cd_err *err)
{
    char *save = NULL;
    int   rc;

    *mask = 0;
    if (field[0] == ',' || field[strlen(field) - 1] == ',' ||
        strstr(field, ",,") != NULL)
        return cron_fail(err, expr, fi, field, "has an empty list item");
    for (char *tok = strtok_r(field, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        rc = cron_item(expr, fi, tok, mask, err);
        if (rc != CADRE_OK)
            return rc;
    }
    return CADRE_OK;
}

/* Splits buf on blanks into at most 7 fields; returns their number. */
static int
cron_split_fields(char *buf, char **fields)
{
    char *save = NULL;
    int   n = 0;

    for (char *tok = strtok_r(buf, " \t", &save); tok != NULL;
         tok = strtok_r(NULL, " \t", &save)) {
        if (n < 7)
            fields[n] = tok;
        n++;
    }
    return n;
}

static int
cron_parse_fields(const char *expr, const char *text, struct cron *out,
                  cd_err *err)
{
    char     buf[CRON_EXPR_MAX];
    char    *fields[7];
    uint64_t masks[6];
    int      n, first;

    snprintf(buf, sizeof(buf), "%s", text);
    n = cron_split_fields(buf, fields);
    if (n != 5 && n != 6)
        return cd_err_set(err, CADRE_EINVAL,
                          "cron '%s': expected 5 fields (minute hour "
                          "day-of-month month day-of-week) or 6 (seconds "
                          "first), got %d",
                          expr, n);
    first = n == 5 ? CRON_MIN : CRON_SEC;
    masks[CRON_SEC] = 1; /* 5 fields: at second 0 */
    for (int i = first; i <= CRON_DOW; i++) {
        int rc = cron_field_parse(expr, i, fields[i - first], &masks[i], err);

        if (rc != CADRE_OK)
            return rc;
    }
    memset(out, 0, sizeof(*out));
    out->sec_mask = masks[CRON_SEC];
    out->min_mask = masks[CRON_MIN];
    out->hour_mask = (uint32_t)masks[CRON_HOUR];
    out->dom_mask = (uint32_t)masks[CRON_DOM];
    out->mon_mask = (uint16_t)masks[CRON_MON];
    out->dow_mask = (uint8_t)masks[CRON_DOW];
    /* Vixie: a day field starting with `*`, even with a step, is not a
     * restriction. */
    out->day_or = fields[CRON_DOM - first][0] != '*' &&
                  fields[CRON_DOW - first][0] != '*';
    return CADRE_OK;
}

int
cron_duration_parse(const char *s, uint64_t *out_s, cd_err *err)
{
    const char *p = s;
    uint64_t    total = 0;

    while (*p != '\0') {
        uint64_t v = 0, unit;
        int      big = 0;

        if (!isdigit((unsigned char)*p))
            return cd_err_set(err, CADRE_EINVAL,
                              "duration '%s': expected a number at '%s' "
                              "(like 10s, 5m, 1h30m)",
                              s, p);
        for (; isdigit((unsigned char)*p); p++) {
            big |= v > CRON_EVERY_MAX_S;
            v = big ? v : v * 10 + (uint64_t)(*p - '0');
        }
        switch (*p++) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = CRON_DAY_S;
            break;
        default:
            return cd_err_set(err, CADRE_EINVAL,
                              "duration '%s': each number needs a unit: s, "
                              "m, h or d",
                              s);
        }
        if (big || v > CRON_EVERY_MAX_S ||
            (total += v * unit) > CRON_EVERY_MAX_S)
            return cd_err_set(err, CADRE_EINVAL, "duration '%s': too long", s);
    }
    if (total == 0)
        return cd_err_set(err, CADRE_EINVAL, "duration '%s': must be > 0", s);
    *out_s = total;
    return CADRE_OK;
}

static int
cron_parse_macro(const char *expr, const char *text, struct cron *out,
                 cd_err *err)
{
    size_t name_len = strcspn(text, " \t");

    if (name_len == 6 && strncasecmp(text, "@every", 6) == 0) {
        const char *d = text + name_len + strspn(text + name_len, " \t");
        uint64_t    every_s;
        int         rc = cron_duration_parse(d, &every_s, err);

        if (rc != CADRE_OK) {
            cd_err_wrap(err, "cron '%s': @every", expr);
            return rc; /* cd_err_wrap returns OK when err is NULL */
        }
        memset(out, 0, sizeof(*out));
        out->every_s = every_s;
        return CADRE_OK;
    }
    for (size_t i = 0; i < sizeof(cron_macros) / sizeof(cron_macros[0]); i++)
        if (strcasecmp(text, cron_macros[i].name) == 0)
            return cron_parse_fields(expr, cron_macros[i].expr, out, err);
    return cd_err_set(err, CADRE_EINVAL,
                      "cron '%s': unknown macro '%.*s' (@yearly, @annually, "
                      "@monthly, @weekly, @daily, @midnight, @hourly, @every)",
                      expr, (int)name_len, text);
}

int
cron_parse(const char *expr, struct cron *out, cd_err *err)
{
    char   text[CRON_EXPR_MAX];
    size_t len;

    if (expr == NULL)
        return cd_err_set(err, CADRE_EINVAL, "cron: no expression");
    expr += strspn(expr, " \t");
    len = strlen(expr);
    while (len > 0 && (expr[len - 1] == ' ' || expr[len - 1] == '\t'))
        len--;
    if (len >= sizeof(text))
        return cd_err_set(err, CADRE_EINVAL, "cron: expression too long");
    memcpy(text, expr, len);
    text[len] = '\0';
    if (text[0] == '@')
        return cron_parse_macro(text, text, out, err);
    return cron_parse_fields(text, text, out, err);
}

/* ---- time zones ---- */

/* The zone a search runs in; TZ is switched for its duration. */
struct cron_zone {
    int   utc;
    int   switched;
    int   had_tz;
    char *old_tz;
};

static int
cron_zone_enter(struct cron_zone *z, const char *tz)
{
    const char *cur;

    memset(z, 0, sizeof(*z));
    z->utc = tz == NULL || tz[0] == '\0' || strcmp(tz, "UTC") == 0;
    if (z->utc)
        return CADRE_OK;
    cur = getenv("TZ");
    if (cur != NULL) {
        z->old_tz = cd_strdup(cur);
        if (z->old_tz == NULL)
            return CADRE_ENOMEM;
        z->had_tz = 1;
    }
    if (setenv("TZ", tz, 1) != 0) {
        cd_free(z->old_tz);
        return CADRE_ENOMEM;
    }
    z->switched = 1;
    /* localtime_r need not re-read TZ by itself; tzset makes it. */
    tzset();
    return CADRE_OK;
}

static void
cron_zone_leave(struct cron_zone *z)
{
    if (!z->switched)
        return;
    if (z->had_tz)
        setenv("TZ", z->old_tz, 1);
    else
        unsetenv("TZ");
    cd_free(z->old_tz);
    tzset();
}

/* The zone's UTC offset at instant t, in seconds east. */
static int64_t
cron_offset(const struct cron_zone *z, int64_t t)
{
    struct tm tm;
    time_t    tt = (time_t)t;

    if (z->utc || localtime_r(&tt, &tm) == NULL)
        return 0;
    return tm.tm_gmtoff;
}

/* The earliest instant whose wall time is w; 0 if w does not exist (a
 * spring-forward gap). The offset in effect is one of those a day around w:
 * zones do not change twice within a day. */
static int
cron_instant(const struct cron_zone *z, int64_t w, int64_t *t)
{
    int64_t offs[3], best = INT64_MAX;

    if (z->utc) {
        *t = w;
        return 1;
    }
    offs[0] = cron_offset(z, w - CRON_DAY_S);
    offs[1] = cron_offset(z, w);
    offs[2] = cron_offset(z, w + CRON_DAY_S);
    for (int i = 0; i < 3; i++) {
        int64_t cand = w - offs[i];

        if (cron_offset(z, cand) == offs[i] && cand < best)
            best = cand;
    }
    if (best == INT64_MAX)
        return 0;
    *t = best;
    return 1;
}

/* ---- search ---- */

/* The smallest value >= from with its bit set in mask, or -1. */
static int
cron_next_bit(uint64_t mask, unsigned from)
{
    uint64_t m = from >= 64 ? 0 : mask >> from << from;

    return m == 0 ? -1 : __builtin_ctzll(m);
}

static int
cron_day_match(const struct cron *c, const struct cron_tm *tm)
{
    int dom = (c->dom_mask >> tm->mday) & 1;
    int dow = (c->dow_mask >> tm->wday) & 1;

    return c->day_or ? dom || dow : dom && dow;
}

static int64_t
cron_next_month(const struct cron_tm *tm)
{
    if (tm->mon == 12)
        return cron_days_from_civil(tm->year + 1, 1, 1) * CRON_DAY_S;
    return cron_days_from_civil(tm->year, tm->mon + 1, 1) * CRON_DAY_S;
}

/* The first wall time >= w, and <= limit_w, matching every field. Each miss
 * jumps to the start of the next month, day, hour or minute, so a search
 * costs a few steps per day at most. */
static int
cron_match_from(const struct cron *c, int64_t w, int64_t limit_w, int64_t *out)
{
    struct cron_tm tm;
    int            h, m, s;
    int64_t        day0;

    while (w <= limit_w) {
        cron_split(w, &tm);
        day0 = tm.days * CRON_DAY_S;
        if (!((c->mon_mask >> tm.mon) & 1)) {
            w = cron_next_month(&tm);
        } else if (!cron_day_match(c, &tm) ||
                   (h = cron_next_bit(c->hour_mask, tm.hour)) < 0) {
            w = day0 + CRON_DAY_S;
        } else if ((unsigned)h != tm.hour) {
            w = day0 + h * 3600;
        } else if ((m = cron_next_bit(c->min_mask, tm.min)) < 0) {
            w = day0 + (h + 1) * 3600;
        } else if ((unsigned)m != tm.min) {
            w = day0 + h * 3600 + m * 60;
        } else if ((s = cron_next_bit(c->sec_mask, tm.sec)) < 0) {
            w = day0 + h * 3600 + (m + 1) * 60;
        } else {
            *out = day0 + h * 3600 + m * 60 + s;
            return 1;
        }
    }
    return 0;
}

/* The first slot in (after_s, limit_s], in zone z. Earliest instants rise
 * with wall time, so the first wall match whose earliest instant is after
 * after_s is the answer; a match whose earliest instant is not (a repeated
 * hour already fired) is passed over. */
static int
cron_next_in(const struct cron *c, const struct cron_zone *z, int64_t after_s,
             int64_t limit_s, int64_t *next_s)
{
    int64_t w, limit_w, cand, t;

    if (after_s < CRON_MIN_S || after_s >= CRON_MAX_S)
        return CADRE_ENOTFOUND;
    if (limit_s > CRON_MAX_S)
        limit_s = CRON_MAX_S;
    if (c->every_s > 0) {
        t = (cron_floordiv(after_s, (int64_t)c->every_s) + 1) *
            (int64_t)c->every_s;
        if (t > limit_s)
            return CADRE_ENOTFOUND;
        *next_s = t;
        return CADRE_OK;
    }
    w = after_s + cron_offset(z, after_s) + 1;
    limit_w = limit_s + cron_offset(z, limit_s) + CRON_DAY_S;
    while (cron_match_from(c, w, limit_w, &cand)) {
        if (cron_instant(z, cand, &t) && t > after_s) {
            if (t > limit_s)
                return CADRE_ENOTFOUND;
            *next_s = t;
            return CADRE_OK;
        }
        w = cand + 1;
    }
    return CADRE_ENOTFOUND;
}

int
cron_next(const struct cron *c, const char *tz, int64_t after_s,
          int64_t *next_s)
{
    struct cron_zone z;
    int              rc = cron_zone_enter(&z, tz);

    if (rc != CADRE_OK)
        return rc;
    rc = cron_next_in(c, &z, after_s,
                      after_s + (int64_t)CRON_SEARCH_YEARS * 366 * CRON_DAY_S,
                      next_s);
    cron_zone_leave(&z);
    return rc;
}

/* Bisection for the largest lo with a slot in (lo, at_s]: that slot is the
 * latest. About log2(at_s - after_s) searches, each bounded by at_s. */
static int
cron_latest_in(const struct cron *c, const struct cron_zone *z, int64_t after_s,
               int64_t at_s, int64_t *slot_s)
{
    int64_t lo = after_s, hi, best, t;

    if (at_s > CRON_MAX_S)
        at_s = CRON_MAX_S; /* keeps hi - lo from overflowing */
    hi = at_s;
    if (at_s <= after_s || cron_next_in(c, z, lo, at_s, &best) != CADRE_OK)
        return CADRE_ENOTFOUND;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;

        if (cron_next_in(c, z, mid, at_s, &t) == CADRE_OK) {
            lo = mid;
            best = t;
        } else {
            hi = mid;
        }
    }
    *slot_s = best;
    return CADRE_OK;
}

int
cron_latest(const struct cron *c, const char *tz, int64_t after_s, int64_t at_s,
            int64_t *slot_s)
{
    struct cron_zone z;
    int              rc = cron_zone_enter(&z, tz);

    if (rc != CADRE_OK)
        return rc;
    rc = cron_latest_in(c, &z, after_s, at_s, slot_s);
    cron_zone_leave(&z);
    return rc;
}

int
cron_slots(const struct cron *c, const char *tz, int64_t after_s,
           int64_t until_s, int64_t *slots, size_t cap, size_t *n)
{
    struct cron_zone z;
    int64_t          t = after_s;
    size_t           k = 0;
    int              rc = cron_zone_enter(&z, tz);

    if (rc != CADRE_OK)
        return rc;
    while (k < cap && cron_next_in(c, &z, t, until_s, &t) == CADRE_OK)
        slots[k++] = t;
    cron_zone_leave(&z);
    *n = k;
    return CADRE_OK;
}
