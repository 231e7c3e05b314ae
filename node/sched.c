/* sched.c: loading [schedule "NAME"] sections with inih, and the slot and
 * overlap policies. inih tells a handler neither line numbers nor where a
 * section starts, so the file goes through our own line reader, which counts
 * lines and sees section headers (an empty section still needs its errors).
 * It mirrors inih's rules for comments, headers and indented continuation
 * lines. */
#include "node/sched.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"

enum sched_key_id {
    SCHED_KEY_CRON,
    SCHED_KEY_EVERY,
    SCHED_KEY_TASK,
    SCHED_KEY_PAYLOAD,
    SCHED_KEY_QUEUE,
    SCHED_KEY_TIMEZONE,
    SCHED_KEY_ONE_SERVER,
    SCHED_KEY_WITHOUT_OVERLAPPING,
    SCHED_KEY_BACKGROUND,
    SCHED_KEY_OVERLAP,
    SCHED_KEY_CATCHUP,
    SCHED_KEY_WINDOW,
};

typedef int (*sched_set_fn)(struct sched_def *d, const char *value,
                            cd_err *err);

struct sched_key {
    const char  *name;
    sched_set_fn set;
};

struct sched_load_ctx {
    const char       *path;
    FILE             *f;
    cd_err           *err;
    int               failed;
    int               fail_line; /* ctx->line when the failure was found */
    int               line;
    int               cont;     /* the line is an indented continuation */
    int               has_prev; /* a key was set in this section (inih) */
    int               in_sched; /* the current section is a schedule */
    unsigned          seen;     /* keys set in it, 1 << enum sched_key_id */
    struct sched_def *defs;
    size_t            n, cap;
};

/* ---- values ---- */

static int
sched_copy(char *dst, size_t size, const char *value, int required, cd_err *err)
{
    if (required && value[0] == '\0')
        return cd_err_set(err, CADRE_EINVAL, "must not be empty");
    if (strlen(value) >= size)
        return cd_err_set(err, CADRE_EINVAL, "'%s' is too long (max %zu)",
                          value, size - 1);
    memcpy(dst, value, strlen(value) + 1);
    return CADRE_OK;
}

static int
sched_bool(const char *value, int *out, cd_err *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0 || strcasecmp(value, no[i]) == 0) {
            *out = strcasecmp(value, yes[i]) == 0;
            return CADRE_OK;
        }
    }
    return cd_err_set(err, CADRE_EINVAL,
                      "'%s' is not a boolean (true/false, yes/no, on/off, "
                      "1/0)",
                      value);
}

/* value must be one of names (NULL-terminated); *out is its index. */
static int
sched_enum(const char *value, const char *const *names, const char *list,
           int *out, cd_err *err)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcasecmp(value, names[i]) == 0) {
            *out = i;
            return CADRE_OK;
        }
    }
    return cd_err_set(err, CADRE_EINVAL, "'%s' is not one of %s", value, list);
}

/* An IANA name whose zone file exists: glibc silently treats an unknown TZ
 * as UTC, which would shift every slot without a word. */
static int
sched_tz_check(const char *tz, cd_err *err)
{
    const char *dir = getenv("TZDIR");
    char        path[1024];

    if (tz[0] == '\0' || strcmp(tz, "UTC") == 0)
        return CADRE_OK;
    if (tz[0] == '/' || tz[0] == ':' || strstr(tz, "..") != NULL ||
        strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_+-/") != strlen(tz))
        return cd_err_set(err, CADRE_EINVAL,
                          "'%s' is not a time zone name (like Europe/Paris)",
                          tz);
    snprintf(path, sizeof(path), "%s/%s",
             dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", tz);
    if (access(path, R_OK) != 0)
        return cd_err_set(err, CADRE_EINVAL,
                          "unknown time zone '%s' (no %s; is tzdata "
                          "installed?)",
                          tz, path);
    return CADRE_OK;
}

/* ---- key setters ---- */

static int
sched_set_cron(struct sched_def *d, const char *value, cd_err *err)
{
    int rc = sched_copy(d->cron, sizeof(d->cron), value, 1, err);

    return rc != CADRE_OK ? rc : cron_parse(value, &d->c, err);
}

static int
sched_set_every(struct sched_def *d, const char *value, cd_err *err)
{
    char expr[sizeof(d->cron)];

    if (strlen(value) + 8 > sizeof(expr))
        return cd_err_set(err, CADRE_EINVAL, "'%s' is too long", value);
    snprintf(expr, sizeof(expr), "@every %s", value);
    return sched_set_cron(d, expr, err);
}

static int
sched_set_task(struct sched_def *d, const char *value, cd_err *err)
{
    return sched_copy(d->task, sizeof(d->task), value, 1, err);
}

/* Indented lines after `payload =` arrive again as payload values: they
 * continue it on a new line. */
static int
sched_set_payload(struct sched_def *d, const char *value, cd_err *err)
{
    size_t len = strlen(value);
    size_t sep = d->payload != NULL ? 1 : 0;
    char  *p = cd_realloc(d->payload, d->payload_len + sep + len + 1);

    if (p == NULL)
        return cd_err_set(err, CADRE_ENOMEM, "out of memory");
    if (sep)
        p[d->payload_len] = '\n';
    memcpy(p + d->payload_len + sep, value, len + 1);
    d->payload = p;
    d->payload_len += sep + len;
    return CADRE_OK;
}

static int
sched_set_queue(struct sched_def *d, const char *value, cd_err *err)
{
    return sched_copy(d->queue, sizeof(d->queue), value, 1, err);
}

static int
sched_set_tz(struct sched_def *d, const char *value, cd_err *err)
{
    int rc = sched_tz_check(value, err);

    return rc != CADRE_OK ? rc
                          : sched_copy(d->tz, sizeof(d->tz), value, 0, err);
}

static int
sched_set_one_server(struct sched_def *d, const char *value, cd_err *err)
{
    return sched_bool(value, &d->on_one_server, err);
}

static int
sched_set_without_overlapping(struct sched_def *d, const char *value,
                              cd_err *err)
{
    return sched_bool(value, &d->without_overlapping, err);
}

static int
sched_set_background(struct sched_def *d, const char *value, cd_err *err)
{
    return sched_bool(value, &d->run_in_background, err);
}

static int
sched_set_overlap(struct sched_def *d, const char *value, cd_err *err)
{
    static const char *const names[] = {"skip", "buffer", "allow", NULL};

    return sched_enum(value, names, "skip, buffer, allow", &d->overlap, err);
}

static int
sched_set_catchup(struct sched_def *d, const char *value, cd_err *err)
{
    static const char *const names[] = {"skip", "last", "all", NULL};

    return sched_enum(value, names, "skip, last, all", &d->catchup, err);
}

static int
sched_set_window(struct sched_def *d, const char *value, cd_err *err)
{
    return cron_duration_parse(value, &d->catchup_window_s, err);
}

/* Indexed by enum sched_key_id. */
static const struct sched_key sched_keys[] = {
    [SCHED_KEY_CRON] = {"cron", sched_set_cron},
    [SCHED_KEY_EVERY] = {"every", sched_set_every},
    [SCHED_KEY_TASK] = {"task", sched_set_task},
    [SCHED_KEY_PAYLOAD] = {"payload", sched_set_payload},
    [SCHED_KEY_QUEUE] = {"queue", sched_set_queue},
    [SCHED_KEY_TIMEZONE] = {"timezone", sched_set_tz},
    [SCHED_KEY_ONE_SERVER] = {"on_one_server", sched_set_one_server},
    [SCHED_KEY_WITHOUT_OVERLAPPING] = {"without_overlapping",
                                       sched_set_without_overlapping},
    [SCHED_KEY_BACKGROUND] = {"run_in_background", sched_set_background},
    [SCHED_KEY_OVERLAP] = {"overlap", sched_set_overlap},
    [SCHED_KEY_CATCHUP] = {"catchup", sched_set_catchup},
    [SCHED_KEY_WINDOW] = {"catchup_window", sched_set_window},
};
#define SCHED_KEYS_N (sizeof(sched_keys) / sizeof(sched_keys[0]))

/* ---- sections ---- */

/* Fails the load with "config FILE:LINE: schedule 'NAME': " before the
 * message already in ctx->err. */
static int
sched_fail(struct sched_load_ctx *ctx, int line)
{
    ctx->failed = 1;
    ctx->fail_line = ctx->line; /* where found, to order it with inih's */
    if (ctx->err->code != CADRE_ENOMEM)
        ctx->err->code = CADRE_ECONFIG;
    if (ctx->in_sched)
        return cd_err_wrap(ctx->err, "config %s:%d: schedule '%s'", ctx->path,
                           line, ctx->defs[ctx->n - 1].name);
    return cd_err_wrap(ctx->err, "config %s:%d", ctx->path, line);
}

#define SCHED_SEEN(ctx, k) (((ctx)->seen >> (k)) & 1)

/* Checks the section just ended and resolves the defaults that depend on
 * several keys. */
static int
sched_section_end(struct sched_load_ctx *ctx)
{
    struct sched_def *d;
    int64_t           first_s;

    if (!ctx->in_sched)
        return CADRE_OK;
    d = &ctx->defs[ctx->n - 1];
    if (!SCHED_SEEN(ctx, SCHED_KEY_TASK))
        cd_err_set(ctx->err, CADRE_ECONFIG, "needs a task");
    else if (!SCHED_SEEN(ctx, SCHED_KEY_CRON) &&
             !SCHED_SEEN(ctx, SCHED_KEY_EVERY))
        cd_err_set(ctx->err, CADRE_ECONFIG, "needs cron or every");
    else if (cron_next(&d->c, NULL, 0, &first_s) == CADRE_ENOTFOUND)
        cd_err_set(ctx->err, CADRE_ECONFIG, "cron '%s' never fires", d->cron);
    else if (SCHED_SEEN(ctx, SCHED_KEY_OVERLAP) &&
             SCHED_SEEN(ctx, SCHED_KEY_WITHOUT_OVERLAPPING) &&
             d->without_overlapping != (d->overlap != SCHED_OVERLAP_ALLOW))
        cd_err_set(ctx->err, CADRE_ECONFIG,
                   "without_overlapping = %s contradicts overlap",
                   d->without_overlapping ? "true" : "false");
    else {
        if (!SCHED_SEEN(ctx, SCHED_KEY_OVERLAP))
            d->overlap = d->without_overlapping ? SCHED_OVERLAP_SKIP
                                                : SCHED_OVERLAP_ALLOW;
        d->without_overlapping = d->overlap != SCHED_OVERLAP_ALLOW;
        return CADRE_OK;
    }
    return sched_fail(ctx, d->line);
}

static int
sched_name_check(struct sched_load_ctx *ctx, const char *name, size_t len)
{
    if (len == 0 || len >= sizeof(ctx->defs->name))
        return cd_err_set(ctx->err, CADRE_ECONFIG,
                          "schedule name must be 1 to %zu characters",
                          sizeof(ctx->defs->name) - 1);
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("_.:-", name[i]))
            return cd_err_set(ctx->err, CADRE_ECONFIG,
                              "schedule name '%.*s': only letters, digits "
                              "and _ . : - are allowed",
                              (int)len, name);
    for (size_t i = 0; i < ctx->n; i++)
        if (strlen(ctx->defs[i].name) == len &&
            strncmp(ctx->defs[i].name, name, len) == 0)
            return cd_err_set(ctx->err, CADRE_ECONFIG,
                              "schedule '%.*s' is already defined at line %d",
                              (int)len, name, ctx->defs[i].line);
    return CADRE_OK;
}

static int
sched_push(struct sched_load_ctx *ctx, const char *name, size_t len)
{
    struct sched_def *d;

    if (ctx->n == ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap * 2 : 8;
        void  *p = cd_realloc(ctx->defs, cap * sizeof(*ctx->defs));

        if (p == NULL)
            return cd_err_set(ctx->err, CADRE_ENOMEM, "out of memory");
        ctx->defs = p;
        ctx->cap = cap;
    }
    d = &ctx->defs[ctx->n++];
    memset(d, 0, sizeof(*d));
    memcpy(d->name, name, len);
    snprintf(d->queue, sizeof(d->queue), "default");
    d->catchup = SCHED_CATCHUP_LAST;
    d->catchup_window_s = SCHED_WINDOW_DEFAULT_S;
    d->line = ctx->line;
    return CADRE_OK;
}

/* A header line "[...]": ends the previous section; a `schedule "NAME"` or
 * `schedule NAME` one starts a definition. */
static int
sched_section_start(struct sched_load_ctx *ctx, const char *header)
{
    const char *end = strchr(header, ']');
    const char *p = header, *name;
    size_t      len, name_len;
    int         rc = sched_section_end(ctx);

    ctx->in_sched = 0;
    ctx->seen = 0;
    ctx->has_prev = 0;
    if (rc != CADRE_OK || end == NULL)
        return rc; /* no ']': inih reports the syntax error */
    p += strspn(p, " \t");
    len = (size_t)(end - p);
    if (len < 8 || strncmp(p, "schedule", 8) != 0 ||
        (len > 8 && p[8] != ' ' && p[8] != '\t' && p[8] != '"'))
        return CADRE_OK; /* another module's section */
    name = p + 8 + strspn(p + 8, " \t");
    name_len = (size_t)(end - name);
    while (name_len > 0 &&
           (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
        name_len--;
    if (name_len >= 2 && name[0] == '"' && name[name_len - 1] == '"') {
        name++;
        name_len -= 2;
    }
    rc = sched_name_check(ctx, name, name_len);
    if (rc == CADRE_OK)
        rc = sched_push(ctx, name, name_len);
    if (rc != CADRE_OK)
        return sched_fail(ctx, ctx->line);
    ctx->in_sched = 1;
    return CADRE_OK;
}

/* ---- inih glue ---- */

/* Whether f has more to read (a line that filled the buffer exactly may
 * have been the last one). */
static int
sched_more(FILE *f)
{
    int c = getc(f);

    if (c == EOF)
        return 0;
    ungetc(c, f);
    return 1;
}

/* inih's line source: fgets, plus line counting, section starts and
 * continuation lines, which inih does not report. A line longer than inih's
 * buffer would be split in two silently: it fails instead. */
static char *
sched_reader(char *str, int num, void *stream)
{
    struct sched_load_ctx *ctx = stream;
    const char            *p;
    size_t                 len;

    if (ctx->failed)
        return NULL;
    if (fgets(str, num, ctx->f) == NULL) {
        ctx->line++; /* found after inih's errors on the last line */
        sched_section_end(ctx);
        return NULL;
    }
    ctx->line++;
    len = strlen(str);
    if (len > 0 && str[len - 1] != '\n' && sched_more(ctx->f)) {
        cd_err_set(ctx->err, CADRE_ECONFIG, "line too long (max %d bytes)",
                   num - 2);
        sched_fail(ctx, ctx->line);
        return NULL;
    }
    p = str;
    if (ctx->line == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    len = strspn(p, " \t\r\n");
    ctx->cont = 0;
    if (p[len] == '\0' || p[len] == ';' || p[len] == '#')
        return str;
    if (len > 0 && ctx->has_prev)
        ctx->cont = 1; /* inih: an indented line continues the last key */
    else if (p[len] == '[' && sched_section_start(ctx, p + len + 1) != 0)
        return NULL;
    return str;
}

static const struct sched_key *
sched_key_find(const char *name, int *id)
{
    for (size_t i = 0; i < SCHED_KEYS_N; i++) {
        if (strcmp(sched_keys[i].name, name) == 0) {
            *id = (int)i;
            return &sched_keys[i];
        }
    }
    return NULL;
}

/* Why a key may not be set here, or NULL. */
static const char *
sched_key_conflict(const struct sched_load_ctx *ctx, int id)
{
    if (ctx->cont && id != SCHED_KEY_PAYLOAD)
        return "only payload may continue on indented lines";
    if (!ctx->cont && SCHED_SEEN(ctx, id))
        return "is set twice";
    if ((id == SCHED_KEY_CRON && SCHED_SEEN(ctx, SCHED_KEY_EVERY)) ||
        (id == SCHED_KEY_EVERY && SCHED_SEEN(ctx, SCHED_KEY_CRON)))
        return "cron and every are alternatives: give one";
    return NULL;
}

static int
sched_ini_cb(void *user, const char *section, const char *name,
             const char *value)
{
    struct sched_load_ctx  *ctx = user;
    const struct sched_key *k;
    const char             *why;
    int                     id = 0;

    ctx->has_prev = 1;
    if (ctx->failed || !ctx->in_sched)
        return !ctx->failed;
    k = sched_key_find(name, &id);
    if (k == NULL) {
        cd_err_set(ctx->err, CADRE_ECONFIG,
                   "unknown key '%s' (cron, every, task, payload, queue, "
                   "timezone, on_one_server, without_overlapping, "
                   "run_in_background, overlap, catchup, catchup_window)",
                   name);
        sched_fail(ctx, ctx->line);
        return 0;
    }
    why = sched_key_conflict(ctx, id);
    if (why != NULL)
        cd_err_set(ctx->err, CADRE_ECONFIG, "%s", why);
    if (why != NULL ||
        k->set(&ctx->defs[ctx->n - 1], value, ctx->err) != CADRE_OK) {
        cd_err_wrap(ctx->err, "%s", name);
        sched_fail(ctx, ctx->line);
        return 0;
    }
    ctx->seen |= 1u << id;
    return 1;
}

int
sched_load(const char *config_path, struct sched_def **out, size_t *n,
           cd_err *err)
{
    struct sched_load_ctx ctx = {0};
    cd_err                local;
    int                   rc;

    if (err == NULL)
        err = &local; /* the reader and handler need somewhere to write */
    ctx.path = config_path;
    ctx.err = err;
    ctx.f = fopen(config_path, "r");
    if (ctx.f == NULL)
        return cd_err_set(err, CADRE_ECONFIG, "config %s: cannot open: %s",
                          config_path, strerror(errno));
    rc = ini_parse_stream(sched_reader, &ctx, sched_ini_cb, &ctx);
    if (!ctx.failed && ferror(ctx.f))
        rc = cd_err_set(err, CADRE_ECONFIG, "config %s: read error",
                        config_path);
    else if (rc < 0 && !ctx.failed) /* -2: inih could not allocate */
        rc = cd_err_set(err, CADRE_ENOMEM, "config %s: out of memory",
                        config_path);
    else if (rc > 0 && (!ctx.failed || rc < ctx.fail_line))
        rc = cd_err_set(err, CADRE_ECONFIG, "config %s:%d: syntax error",
                        config_path, rc);
    else
        rc = ctx.failed ? err->code : CADRE_OK;
    fclose(ctx.f);
    if (rc != CADRE_OK) {
        sched_defs_free(ctx.defs, ctx.n);
        return rc;
    }
    *out = ctx.defs;
    *n = ctx.n;
    return CADRE_OK;
}

void
sched_defs_free(struct sched_def *defs, size_t n)
{
    if (defs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cd_free(defs[i].payload);
    cd_free(defs);
}

/* ---- policies ---- */

#define SCHED_TIME_MAX_S (1LL << 40)

int
sched_next(const struct sched_def *d, int64_t after_s, int64_t *next_s)
{
    return cron_next(&d->c, d->tz, after_s, next_s);
}

size_t
sched_due(const struct sched_def *d, int64_t last_fired_slot_s, int64_t now_s,
          int64_t *slots, size_t cap)
{
    int64_t base, latest, from;
    size_t  n = 0;

    /* beyond years 1..9999 cron finds nothing; this keeps the sums below
     * from overflowing */
    if (cap == 0 || now_s < -SCHED_TIME_MAX_S || now_s > SCHED_TIME_MAX_S)
        return 0;
    base = last_fired_slot_s != 0 ? last_fired_slot_s : now_s - 1;
    if (now_s <= base)
        return 0;
    if (d->catchup == SCHED_CATCHUP_ALL) {
        /* slots >= now_s - window, and after base */
        from = now_s - 1 -
               (d->catchup_window_s > (uint64_t)SCHED_TIME_MAX_S
                    ? SCHED_TIME_MAX_S
                    : (int64_t)d->catchup_window_s);
        if (cron_slots(&d->c, d->tz, from > base ? from : base, now_s, slots,
                       cap, &n) != CADRE_OK)
            return 0;
        return n;
    }
    if (cron_latest(&d->c, d->tz, base, now_s, &latest) != CADRE_OK)
        return 0;
    if (d->catchup == SCHED_CATCHUP_SKIP &&
        now_s - latest >= SCHED_SKIP_GRACE_S)
        return 0; /* missed, not late: skip means it never fires */
    slots[0] = latest;
    return 1;
}

int
sched_overlap_decide(const struct sched_def *d, int running, int buffered)
{
    if (!running || d->overlap == SCHED_OVERLAP_ALLOW)
        return SCHED_FIRE;
    if (d->overlap == SCHED_OVERLAP_BUFFER && !buffered)
        return SCHED_BUFFER;
    return SCHED_SKIP;
}

void
sched_slot_key(const char *name, int64_t slot_s, char *out, size_t cap)
{
    snprintf(out, cap, "%s@%lld", name, (long long)slot_s);
}
