/* dispatch.c: `cadre dispatch`: one job (or --count copies), optionally
 * waiting for the outcome. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"

#define DISPATCH_BATCH 1000

struct dispatch_args {
    struct cli_conn    conn;
    const char        *task;
    const char        *payload;
    const char        *queue;
    const char        *unique_id;
    unsigned long long delay_ms, tries, timeout_ms, count, wait_ms,
        unique_for_ms;
    int      until_processing;
    uint32_t backoff[32];
    size_t   backoff_n;
    int      wait, json, encrypted;
    /* Job middleware: KEY:N/MS for the limits, KEY for the lock. */
    char               rate_key[CADRE_COORD_KEY_MAX + 1];
    char               exc_key[CADRE_COORD_KEY_MAX + 1];
    unsigned long long rate_limit, rate_per_ms, exc_limit, exc_per_ms;
    const char        *overlap_key;
};

static void
dispatch_usage(FILE *f)
{
    fprintf(
        f,
        "usage: cadre dispatch TASK [PAYLOAD|-] [FLAGS]\n\n"
        "Dispatches a job; prints its id, or with --wait its result.\n"
        "PAYLOAD - reads the payload from stdin.\n\nflags:\n"
        "  --queue Q          queue (default \"default\")\n"
        "  --delay MS         not before MS from now\n"
        "  --tries N          attempts before the job fails\n"
        "  --backoff S[,S..]  seconds between attempts; last repeats\n"
        "  --timeout MS       handler time limit\n"
        "  --count N          dispatch N copies (bulk) and print a summary\n"
        "  --wait             wait for the outcome(s); exit 1 if any failed\n"
        "  --wait-timeout MS  how long --wait waits (default 60000)\n"
        "  --unique ID        not queued while a job of this task with this "
        "unique id\n"
        "                     is pending: prints that job's id instead\n"
        "  --unique-for MS    ... for at most MS\n"
        "  --until-processing ... only until that job starts\n"
        "  --encrypted        seal the payload with the application key "
        "(nodes see\n"
        "                     only ciphertext; --wait opens the result)\n"
        "  --rate-limited KEY:N/MS  middleware: at most N attempts of jobs "
        "naming KEY\n"
        "                     start per MS (others are released)\n"
        "  --without-overlapping KEY  middleware: attempts naming KEY never "
        "run at once\n"
        "  --throttles-exceptions KEY:N/MS  middleware: after more than N "
        "errors per MS,\n"
        "                     jobs naming KEY are released until the window "
        "ends\n"
        "  --json             print JSON\n" CLI_CONN_HELP);
}

static int
dispatch_parse_backoff(struct dispatch_args *a, const char *v)
{
    char *copy = strdup(v), *save = NULL;
    int   rc = 0;

    a->backoff_n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        unsigned long long s;

        if (a->backoff_n == 32 || cli_parse_u64(tok, &s) != 0 ||
            s > 86400 * 365) {
            rc = -1;
            break;
        }
        a->backoff[a->backoff_n++] = (uint32_t)s;
    }
    free(copy);
    return a->backoff_n == 0 ? -1 : rc;
}

/* "KEY:N/MS" (the last ':' splits) into key (CADRE_COORD_KEY_MAX + 1
 * bytes), *n and *ms, all set. Returns 0, or -1 if malformed. */
static int
dispatch_parse_limit(const char *v, char *key, unsigned long long *n,
                     unsigned long long *ms)
{
    const char *colon = strrchr(v, ':'), *slash;
    char        num[32];
    size_t      key_len = colon != NULL ? (size_t)(colon - v) : 0;

    if (colon == NULL || key_len == 0 || key_len > CADRE_COORD_KEY_MAX ||
        (slash = strchr(colon, '/')) == NULL ||
        (size_t)(slash - colon - 1) >= sizeof(num))
        return -1;
    memcpy(key, v, key_len);
    key[key_len] = '\0';
    memcpy(num, colon + 1, (size_t)(slash - colon - 1));
    num[slash - colon - 1] = '\0';
    return cli_parse_u64(num, n) == 0 && cli_parse_u64(slash + 1, ms) == 0 &&
                   *n > 0 && *n <= UINT32_MAX && *ms > 0
               ? 0
               : -1;
}

/* The middleware flags at argv[*i]: 1 consumed, 0 not one, -1 bad. */
static int
dispatch_mw_flag(struct dispatch_args *a, int argc, char **argv, int *i)
{
    const char *v;
    int         missing = 0;

    if ((v = cli_flag_value("--rate-limited", argc, argv, i, &missing)))
        return dispatch_parse_limit(v, a->rate_key, &a->rate_limit,
                                    &a->rate_per_ms) == 0
                   ? 1
                   : -1;
    if (!missing &&
        (v = cli_flag_value("--throttles-exceptions", argc, argv, i, &missing)))
        return dispatch_parse_limit(v, a->exc_key, &a->exc_limit,
                                    &a->exc_per_ms) == 0
                   ? 1
                   : -1;
    if (!missing && (v = cli_flag_value("--without-overlapping", argc, argv, i,
                                        &missing))) {
        a->overlap_key = v;
        return v[0] != '\0' ? 1 : -1;
    }
    return missing ? -1 : 0;
}

/* Returns CLI_OK, or CLI_USAGE after printing why. */
static int
dispatch_parse(struct dispatch_args *a, int argc, char **argv)
{
    static const char *const nums[] = {"--delay",        "--tries",
                                       "--timeout",      "--count",
                                       "--wait-timeout", "--unique-for"};
    unsigned long long      *dst[] = {&a->delay_ms, &a->tries,   &a->timeout_ms,
                                      &a->count,    &a->wait_ms, &a->unique_for_ms};

    for (int i = 1; i < argc; i++) {
        const char *v;
        int         missing = 0, k, c = cli_conn_flag(&a->conn, argc, argv, &i);

        if (c == 0)
            c = dispatch_mw_flag(a, argc, argv, &i);
        if (c != 0) {
            if (c < 0)
                goto bad;
            continue;
        }
        if (strcmp(argv[i], "--wait") == 0) {
            a->wait = 1;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (strcmp(argv[i], "--encrypted") == 0) {
            a->encrypted = 1;
            continue;
        }
        if (strcmp(argv[i], "--until-processing") == 0) {
            a->until_processing = 1;
            continue;
        }
        if ((v = cli_flag_value("--unique", argc, argv, &i, &missing))) {
            a->unique_id = v;
            continue;
        }
        if ((v = cli_flag_value("--queue", argc, argv, &i, &missing))) {
            a->queue = v;
            continue;
        }
        if ((v = cli_flag_value("--backoff", argc, argv, &i, &missing))) {
            if (dispatch_parse_backoff(a, v) != 0)
                goto bad;
            continue;
        }
        for (k = 0; k < 6 && !missing; k++) {
            v = cli_flag_value(nums[k], argc, argv, &i, &missing);
            if (v != NULL)
                break;
        }
        if (v != NULL && k < 6) {
            if (cli_parse_u64(v, dst[k]) != 0)
                goto bad;
            continue;
        }
        if (missing || (argv[i][0] == '-' && argv[i][1] != '\0'))
            goto bad;
        if (a->task == NULL)
            a->task = argv[i];
        else if (a->payload == NULL)
            a->payload = argv[i];
        else
            goto bad;
        continue;
    bad:
        fprintf(stderr, "cadre dispatch: bad or incomplete argument '%s'\n\n",
                argv[i]);
        dispatch_usage(stderr);
        return CLI_USAGE;
    }
    if (a->task == NULL) {
        fprintf(stderr, "cadre dispatch: missing TASK\n\n");
        dispatch_usage(stderr);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int
dispatch_read_stdin(cd_buf *b)
{
    char   chunk[65536];
    size_t n;

    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (cd_buf_append(b, chunk, n) != CADRE_OK)
            return -1;
    return ferror(stdin) ? -1 : 0;
}

static void
dispatch_print_outcome(const struct dispatch_args *a, const cadre_job_id *id,
                       const cadre_outcome *o)
{
    static const char *const names[] = {"pending", "done", "failed", "unknown"};
    char                     text[40];

    cadre_job_id_format(id, text);
    if (!a->json) {
        if (o->status == CADRE_DONE)
            fwrite(o->result, 1, o->result_len, stdout);
        else
            fprintf(stderr, "cadre dispatch: job %s %s%s%s%s%s\n", text,
                    names[o->status & 3], o->error_type ? ": " : "",
                    o->error_type ? o->error_type : "", o->error ? ": " : "",
                    o->error ? o->error : "");
        return;
    }
    printf("{\"id\":\"%s\",\"status\":\"%s\",\"attempts\":%u,\"result\":", text,
           names[o->status & 3], o->attempts);
    cli_json_str(stdout, (const char *)o->result, o->result_len);
    printf(",\"error_type\":");
    cli_json_str(stdout, o->error_type ? o->error_type : "",
                 o->error_type ? strlen(o->error_type) : 0);
    printf(",\"error\":");
    cli_json_str(stdout, o->error ? o->error : "",
                 o->error ? strlen(o->error) : 0);
    printf("}\n");
}

static int
dispatch_one(cadre_client *c, const struct dispatch_args *a,
             const cadre_job_spec *spec)
{
    cadre_job_id  id;
    cadre_outcome o;
    char          text[40];
    int           rc;

    if (cadre_dispatch_bulk(c, spec, 1, &id) != CADRE_OK) {
        fprintf(stderr, "cadre dispatch: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    if (!a->wait) {
        int dup = spec->opts->duplicate != NULL && *spec->opts->duplicate;

        cadre_job_id_format(&id, text);
        if (a->json)
            printf("{\"id\":\"%s\",\"duplicate\":%s}\n", text,
                   dup ? "true" : "false");
        else
            printf("%s\n", text);
        if (dup && !a->json)
            fprintf(stderr,
                    "cadre dispatch: not queued: job %s with this "
                    "unique id is pending\n",
                    text);
        return CLI_OK;
    }
    rc = cadre_wait(c, &id, 1, a->wait_ms, &o);
    if (rc != CADRE_OK && rc != CADRE_ETIMEDOUT) {
        fprintf(stderr, "cadre dispatch: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    dispatch_print_outcome(a, &id, &o);
    rc = o.status == CADRE_DONE ? CLI_OK : CLI_FAIL;
    cadre_outcome_fini(&o);
    return rc;
}

/* --count N: bulk dispatch in batches, optional wait, one summary. */
static int
dispatch_many(cadre_client *c, const struct dispatch_args *a,
              const cadre_job_spec *spec)
{
    size_t          n = (size_t)a->count;
    cadre_job_id   *ids = cd_calloc(n, sizeof(*ids));
    cadre_job_spec *specs = cd_calloc(DISPATCH_BATCH, sizeof(*specs));
    cadre_outcome  *out = cd_calloc(DISPATCH_BATCH, sizeof(*out));
    size_t          done = 0, failed = 0, pending = 0;
    uint64_t        t0 = cd_mono_us(), t1, t2;
    int             rc = CLI_OK;

    if (ids == NULL || specs == NULL || out == NULL) {
        fprintf(stderr, "cadre dispatch: out of memory\n");
        rc = CLI_FAIL;
        goto out;
    }
    for (size_t i = 0; i < DISPATCH_BATCH; i++)
        specs[i] = *spec;
    for (size_t i = 0; i < n && rc == CLI_OK; i += DISPATCH_BATCH) {
        size_t k = n - i < DISPATCH_BATCH ? n - i : DISPATCH_BATCH;

        if (cadre_dispatch_bulk(c, specs, k, ids + i) != CADRE_OK) {
            fprintf(stderr, "cadre dispatch: %s\n", cadre_client_errmsg(c));
            rc = CLI_FAIL;
        }
    }
    t1 = cd_mono_us();
    for (size_t i = 0; a->wait && i < n && rc == CLI_OK; i += DISPATCH_BATCH) {
        size_t k = n - i < DISPATCH_BATCH ? n - i : DISPATCH_BATCH;
        int    w = cadre_wait(c, ids + i, k, a->wait_ms, out);

        if (w != CADRE_OK && w != CADRE_ETIMEDOUT) {
            fprintf(stderr, "cadre dispatch: %s\n", cadre_client_errmsg(c));
            rc = CLI_FAIL;
            break;
        }
        for (size_t j = 0; j < k; j++) {
            done += out[j].status == CADRE_DONE;
            failed += out[j].status == CADRE_FAILED;
            pending += out[j].status == CADRE_PENDING ||
                       out[j].status == CADRE_UNKNOWN;
            cadre_outcome_fini(&out[j]);
        }
    }
    t2 = cd_mono_us();
    if (rc == CLI_OK && a->json)
        printf("{\"dispatched\":%zu,\"dispatch_s\":%.3f,\"done\":%zu,"
               "\"failed\":%zu,\"pending\":%zu,\"total_s\":%.3f,"
               "\"jobs_per_s\":%.0f}\n",
               n, (t1 - t0) / 1e6, done, failed, pending, (t2 - t0) / 1e6,
               n / ((t2 - t0) / 1e6));
    else if (rc == CLI_OK)
        printf("dispatched %zu jobs in %.3f s (%.0f jobs/s)\n", n,
               (t1 - t0) / 1e6, n / ((t1 - t0) / 1e6));
    if (rc == CLI_OK && a->wait && !a->json)
        printf("done %zu, failed %zu, pending %zu: %.3f s end to end "
               "(%.0f jobs/s)\n",
               done, failed, pending, (t2 - t0) / 1e6, n / ((t2 - t0) / 1e6));
    if (a->wait && (failed > 0 || pending > 0))
        rc = CLI_FAIL;
out:
    cd_free(ids);
    cd_free(specs);
    cd_free(out);
    return rc;
}

int
cli_dispatch(int argc, char **argv)
{
    struct dispatch_args a = {.wait_ms = 60000, .count = 1};
    cadre_job_opts       opts = {0};
    int                  duplicate = 0;
    cadre_job_spec       spec;
    cadre_client        *c;
    cd_buf               payload;
    int                  rc;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            dispatch_usage(stdout);
            return CLI_OK;
        }
    if ((rc = dispatch_parse(&a, argc, argv)) != CLI_OK)
        return rc;
    cd_buf_init(&payload);
    if (a.payload != NULL && strcmp(a.payload, "-") == 0) {
        if (dispatch_read_stdin(&payload) != 0) {
            fprintf(stderr, "cadre dispatch: cannot read stdin\n");
            cd_buf_fini(&payload);
            return CLI_FAIL;
        }
    } else if (a.payload != NULL) {
        cd_buf_append(&payload, a.payload, strlen(a.payload));
    }
    opts.queue = a.queue;
    opts.delay_ms = a.delay_ms;
    opts.tries = (uint32_t)a.tries;
    opts.timeout_ms = a.timeout_ms;
    opts.backoff_s = a.backoff_n ? a.backoff : NULL;
    opts.backoff_n = a.backoff_n;
    opts.encrypted = a.encrypted;
    opts.unique_id = a.unique_id;
    opts.unique_for_ms = a.unique_for_ms;
    opts.unique_until_processing = a.until_processing;
    opts.rate_limited = a.rate_key;
    opts.rate_limit = (uint32_t)a.rate_limit;
    opts.rate_per_ms = a.rate_per_ms;
    opts.without_overlapping = a.overlap_key;
    opts.throttles_exceptions = a.exc_key;
    opts.exc_limit = (uint32_t)a.exc_limit;
    opts.exc_per_ms = a.exc_per_ms;
    opts.duplicate = &duplicate;
    spec = (cadre_job_spec){a.task, payload.data, payload.len, &opts};
    c = cli_open(&a.conn, "dispatch");
    if (c == NULL) {
        cd_buf_fini(&payload);
        return CLI_FAIL;
    }
    rc = a.count > 1 ? dispatch_many(c, &a, &spec) : dispatch_one(c, &a, &spec);
    cadre_client_close(c);
    cd_buf_fini(&payload);
    return rc;
}
