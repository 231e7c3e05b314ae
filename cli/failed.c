/* failed.c: `cadre failed ...`: list, show, retry, forget, flush and prune
 * the node's failed jobs (Laravel's queue:failed, queue:retry,
 * queue:forget, queue:flush, queue:prune-failed) through libcadre. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/alloc.h"

#define FAILED_PAGE 1000     /* jobs per listing request */
#define FAILED_ERROR_COLS 60 /* error text shown per row of `list` */

struct failed_args {
    struct cli_conn conn;
    const char     *sub;
    const char     *queue;
    const char     *hours;
    char          **ids; /* the positional arguments after sub */
    int             ids_n;
    int             json;
};

static void
failed_usage(FILE *f)
{
    fprintf(f,
            "usage: cadre failed list [--queue Q] [--json] [FLAGS]\n"
            "       cadre failed show ID [--json] [FLAGS]\n"
            "       cadre failed retry ID... | all | --queue Q [FLAGS]\n"
            "       cadre failed forget ID [FLAGS]\n"
            "       cadre failed flush [FLAGS]\n"
            "       cadre failed prune --hours H [FLAGS]\n\n"
            "Jobs that ran out of tries (or failed for good) are kept with "
            "their payload\nand last error until retried, forgotten, flushed "
            "or pruned. retry puts a\njob back at the end of its queue as a "
            "fresh job (attempts 0).\n\nflags:\n"
            "  --queue Q          list / retry: only this queue\n"
            "  --hours H          prune: failed at least H hours ago\n"
            "  --json             list / show: print JSON (times in Unix "
            "ms)\n" CLI_CONN_HELP);
}

/* Writes ms (Unix ms) as ISO-8601 UTC with milliseconds into buf. */
static void
failed_iso(uint64_t ms, char *buf, size_t len)
{
    time_t    sec = (time_t)(ms / 1000);
    struct tm tm;
    char      day[32];

    if (ms == 0 || gmtime_r(&sec, &tm) == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", day, (unsigned)(ms % 1000));
}

/* Whether the payload reads as text: valid UTF-8 without control
 * characters other than tab, newline and carriage return. */
static int
failed_is_text(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t  k;

        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        k = (c & 0xe0) == 0xc0   ? 1
            : (c & 0xf0) == 0xe0 ? 2
            : (c & 0xf8) == 0xf0 ? 3
                                 : 0;
        /* Lead bytes of overlong forms and beyond U+10FFFF are not text. */
        if (k == 0 || c == 0xc0 || c == 0xc1 || c > 0xf4 || n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
        i += k + 1;
    }
    return 1;
}

/* Writes n bytes as base64 (RFC 4648, padded) to f. */
static void
failed_base64(FILE *f, const uint8_t *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t   left = n - i;

        if (left > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            v |= p[i + 2];
        fputc(tab[v >> 18 & 63], f);
        fputc(tab[v >> 12 & 63], f);
        fputc(left > 1 ? tab[v >> 6 & 63] : '=', f);
        fputc(left > 2 ? tab[v & 63] : '=', f);
    }
}

static void
failed_json_str(const char *s)
{
    cli_json_str(stdout, s, strlen(s));
}

/* One job as a JSON object; with the payload when it has one. */
static void
failed_print_json(const cadre_failed_job *j, int with_payload)
{
    char text[40];

    cadre_job_id_format(cadre_failed_job_id(j), text);
    printf("{\"id\":\"%s\",\"queue\":", text);
    failed_json_str(cadre_failed_job_queue(j));
    printf(",\"task\":");
    failed_json_str(cadre_failed_job_task(j));
    printf(",\"attempts\":%u,\"tries\":%u,\"error_type\":",
           cadre_failed_job_attempts(j), cadre_failed_job_tries(j));
    failed_json_str(cadre_failed_job_error_type(j));
    printf(",\"error\":");
    failed_json_str(cadre_failed_job_error(j));
    printf(
        ",\"failed_at_ms\":%llu,\"created_at_ms\":%llu,\"payload_size\":%llu",
        (unsigned long long)cadre_failed_job_failed_at_ms(j),
        (unsigned long long)cadre_failed_job_created_at_ms(j),
        (unsigned long long)cadre_failed_job_payload_size(j));
    if (with_payload) {
        size_t         len = 0;
        const uint8_t *p = cadre_failed_job_payload(j, &len);

        if (failed_is_text(p, len)) {
            printf(",\"payload_encoding\":\"text\",\"payload\":");
            cli_json_str(stdout, (const char *)p, len);
        } else {
            printf(",\"payload_encoding\":\"base64\",\"payload\":\"");
            failed_base64(stdout, p, len);
            printf("\"");
        }
    }
    printf("}");
}

/* One row of the `list` table: the error on one line, cut to fit. */
static void
failed_print_row(const cadre_failed_job *j)
{
    char        text[40], when[40], err[FAILED_ERROR_COLS + 4];
    const char *type = cadre_failed_job_error_type(j);
    size_t      n;

    cadre_job_id_format(cadre_failed_job_id(j), text);
    failed_iso(cadre_failed_job_failed_at_ms(j), when, sizeof(when));
    n = (size_t)snprintf(err, sizeof(err), "%s%s%s", type, type[0] ? ": " : "",
                         cadre_failed_job_error(j));
    if (n >= sizeof(err))
        memcpy(err + sizeof(err) - 4, "...", 4);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    printf("%-36s  %-12s  %-16s  %8u  %-24s  %s\n", text,
           cadre_failed_job_queue(j), cadre_failed_job_task(j),
           cadre_failed_job_attempts(j), when, err);
}

static int
failed_list(cadre_client *c, const struct failed_args *a)
{
    cadre_failed_list_opts o = {.queue = a->queue, .limit = FAILED_PAGE};
    cadre_job_id           after;
    size_t                 total = 0;
    int                    more = 1;

    if (a->json)
        printf("[");
    while (more) {
        cadre_failed_page *p = NULL;

        if (cadre_failed_list(c, &o, &p) != CADRE_OK) {
            if (a->json)
                printf("]\n");
            fprintf(stderr, "cadre failed list: %s\n", cadre_client_errmsg(c));
            return CLI_FAIL;
        }
        for (size_t i = 0; i < cadre_failed_page_count(p); i++) {
            const cadre_failed_job *j = cadre_failed_page_job(p, i);

            if (a->json) {
                printf("%s", total ? "," : "");
                failed_print_json(j, 0);
            } else {
                if (total == 0)
                    printf("%-36s  %-12s  %-16s  %8s  %-24s  %s\n", "ID",
                           "QUEUE", "TASK", "ATTEMPTS", "FAILED_AT", "ERROR");
                failed_print_row(j);
            }
            total++;
        }
        more = cadre_failed_page_next(p, &after);
        o.after = &after;
        cadre_failed_page_free(p);
    }
    if (a->json)
        printf("]\n");
    else if (total == 0)
        printf("no failed jobs\n");
    return CLI_OK;
}

/* Parses the uuid in s or prints why not. */
static int
failed_parse_id(const char *s, cadre_job_id *id)
{
    if (cadre_job_id_parse(s, id) == CADRE_OK)
        return 0;
    fprintf(stderr, "cadre failed: '%s' is not a job id (a uuid)\n", s);
    return -1;
}

static int
failed_show(cadre_client *c, const struct failed_args *a)
{
    cadre_failed_job *j = NULL;
    cadre_job_id      id;
    char              text[40], when[40];
    const uint8_t    *p;
    size_t            len = 0;

    if (failed_parse_id(a->ids[0], &id) != 0)
        return CLI_USAGE;
    if (cadre_failed_get(c, &id, &j) != CADRE_OK) {
        fprintf(stderr, "cadre failed show: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    if (a->json) {
        failed_print_json(j, 1);
        printf("\n");
        cadre_failed_job_free(j);
        return CLI_OK;
    }
    cadre_job_id_format(cadre_failed_job_id(j), text);
    printf("id:          %s\n", text);
    printf("queue:       %s\n", cadre_failed_job_queue(j));
    printf("task:        %s\n", cadre_failed_job_task(j));
    if (cadre_failed_job_tries(j) > 0)
        printf("attempts:    %u (of %u tries)\n", cadre_failed_job_attempts(j),
               cadre_failed_job_tries(j));
    else
        printf("attempts:    %u\n", cadre_failed_job_attempts(j));
    failed_iso(cadre_failed_job_failed_at_ms(j), when, sizeof(when));
    printf("failed_at:   %s\n", when);
    failed_iso(cadre_failed_job_created_at_ms(j), when, sizeof(when));
    printf("created_at:  %s\n", when);
    printf("error_type:  %s\n", cadre_failed_job_error_type(j));
    printf("error:       %s\n", cadre_failed_job_error(j));
    p = cadre_failed_job_payload(j, &len);
    if (len == 0) {
        printf("payload:     (empty)\n");
    } else if (failed_is_text(p, len)) {
        printf("payload:     %zu bytes, text:\n", len);
        fwrite(p, 1, len, stdout);
        if (p[len - 1] != '\n')
            printf("\n");
    } else {
        printf("payload:     %zu bytes, binary, shown as base64:\n", len);
        failed_base64(stdout, p, len);
        printf("\n");
    }
    cadre_failed_job_free(j);
    return CLI_OK;
}

static int
failed_retry(cadre_client *c, const struct failed_args *a)
{
    cadre_job_id *ids;
    size_t        retried = 0;
    uint64_t      all = 0;
    int           rc;

    if (a->ids_n == 0 || (a->ids_n == 1 && strcmp(a->ids[0], "all") == 0)) {
        rc = cadre_failed_retry_all(c, a->queue, &all);
        if (rc != CADRE_OK) {
            fprintf(stderr, "cadre failed retry: %s\n", cadre_client_errmsg(c));
            return CLI_FAIL;
        }
        printf("retried %llu failed job(s)%s%s\n", (unsigned long long)all,
               a->queue ? " of queue " : "", a->queue ? a->queue : "");
        return CLI_OK;
    }
    ids = cd_calloc((size_t)a->ids_n, sizeof(*ids));
    if (ids == NULL) {
        fprintf(stderr, "cadre failed retry: out of memory\n");
        return CLI_FAIL;
    }
    for (int i = 0; i < a->ids_n; i++) {
        if (failed_parse_id(a->ids[i], &ids[i]) != 0) {
            cd_free(ids);
            return CLI_USAGE;
        }
    }
    rc = cadre_failed_retry(c, ids, (size_t)a->ids_n, &retried);
    cd_free(ids);
    if (rc != CADRE_OK && rc != CADRE_ENOTFOUND) {
        fprintf(stderr, "cadre failed retry: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    printf("retried %zu failed job(s)\n", retried);
    if (rc == CADRE_ENOTFOUND) {
        fprintf(stderr, "cadre failed retry: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int
failed_forget(cadre_client *c, const struct failed_args *a)
{
    cadre_job_id id;

    if (failed_parse_id(a->ids[0], &id) != 0)
        return CLI_USAGE;
    if (cadre_failed_forget(c, &id) != CADRE_OK) {
        fprintf(stderr, "cadre failed forget: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    printf("forgot failed job %s\n", a->ids[0]);
    return CLI_OK;
}

static int
failed_flush(cadre_client *c)
{
    uint64_t n = 0;

    if (cadre_failed_flush(c, &n) != CADRE_OK) {
        fprintf(stderr, "cadre failed flush: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    printf("flushed %llu failed job(s)\n", (unsigned long long)n);
    return CLI_OK;
}

static int
failed_prune(cadre_client *c, unsigned long long hours)
{
    uint64_t n = 0;

    if (cadre_failed_prune(c, hours * 3600000ull, &n) != CADRE_OK) {
        fprintf(stderr, "cadre failed prune: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    printf("pruned %llu failed job(s) older than %llu hour(s)\n",
           (unsigned long long)n, hours);
    return CLI_OK;
}

/* Returns CLI_OK, or CLI_USAGE after printing why. */
static int
failed_parse(struct failed_args *a, int argc, char **argv)
{
    const char *bad = NULL;

    a->ids = cd_calloc((size_t)argc, sizeof(*a->ids));
    if (a->ids == NULL)
        return CLI_USAGE;
    for (int i = 1; i < argc && bad == NULL; i++) {
        const char *v;
        int         missing = 0, c = cli_conn_flag(&a->conn, argc, argv, &i);

        if (c != 0) {
            if (c < 0)
                bad = argv[i];
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else if ((v = cli_flag_value("--queue", argc, argv, &i, &missing))) {
            a->queue = v;
        } else if ((v = cli_flag_value("--hours", argc, argv, &i, &missing))) {
            a->hours = v;
        } else if (missing || (argv[i][0] == '-' && argv[i][1] != '\0')) {
            bad = argv[i];
        } else if (a->sub == NULL) {
            a->sub = argv[i];
        } else {
            a->ids[a->ids_n++] = argv[i];
        }
    }
    if (bad != NULL) {
        fprintf(stderr, "cadre failed: bad or incomplete argument '%s'\n\n",
                bad);
        return CLI_USAGE;
    }
    if (a->sub == NULL) {
        fprintf(stderr, "cadre failed: missing a command\n\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Checks what each command takes; prints why not. */
static int
failed_check(const struct failed_args *a)
{
    const char *s = a->sub;
    const char *why = NULL;

    if (strcmp(s, "list") == 0) {
        if (a->ids_n > 0 || a->hours)
            why = "list takes only --queue and --json";
    } else if (strcmp(s, "show") == 0 || strcmp(s, "forget") == 0) {
        if (a->ids_n != 1 || a->queue || a->hours || (a->json && s[0] == 'f'))
            why = "show and forget take one job id";
    } else if (strcmp(s, "retry") == 0) {
        int all = a->ids_n == 1 && strcmp(a->ids[0], "all") == 0;

        if (a->hours || a->json || (a->ids_n == 0 && a->queue == NULL) ||
            (a->ids_n > 0 && a->queue != NULL && !all))
            why = "retry takes job ids, all, or --queue Q";
    } else if (strcmp(s, "flush") == 0) {
        if (a->ids_n > 0 || a->queue || a->hours || a->json)
            why = "flush takes no arguments";
    } else if (strcmp(s, "prune") == 0) {
        if (a->ids_n > 0 || a->queue || a->json || a->hours == NULL)
            why = "prune takes --hours H";
    } else {
        fprintf(stderr, "cadre failed: unknown command '%s'\n\n", s);
        return CLI_USAGE;
    }
    if (why != NULL) {
        fprintf(stderr, "cadre failed %s: %s\n\n", s, why);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int
cli_failed(int argc, char **argv)
{
    struct failed_args a = {0};
    unsigned long long hours = 0;
    cadre_client      *c;
    int                rc;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            failed_usage(stdout);
            return CLI_OK;
        }
    rc = failed_parse(&a, argc, argv);
    if (rc == CLI_OK)
        rc = failed_check(&a);
    if (rc == CLI_OK && a.hours != NULL &&
        (cli_parse_u64(a.hours, &hours) != 0 || hours > 24ull * 365 * 1000)) {
        fprintf(stderr, "cadre failed prune: --hours wants a whole number of "
                        "hours\n\n");
        rc = CLI_USAGE;
    }
    if (rc != CLI_OK) {
        failed_usage(stderr);
        cd_free(a.ids);
        return rc;
    }
    c = cli_open(&a.conn, "failed");
    if (c == NULL) {
        cd_free(a.ids);
        return CLI_FAIL;
    }
    if (strcmp(a.sub, "list") == 0)
        rc = failed_list(c, &a);
    else if (strcmp(a.sub, "show") == 0)
        rc = failed_show(c, &a);
    else if (strcmp(a.sub, "retry") == 0)
        rc = failed_retry(c, &a);
    else if (strcmp(a.sub, "forget") == 0)
        rc = failed_forget(c, &a);
    else if (strcmp(a.sub, "flush") == 0)
        rc = failed_flush(c);
    else
        rc = failed_prune(c, hours);
    cadre_client_close(c);
    cd_free(a.ids);
    return rc;
}
