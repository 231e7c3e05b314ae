/* queue.c: `cadre queue ...`: clear a queue's waiting jobs, pause and resume
 * queues, and monitor queue sizes for cron alerts (Laravel's queue:clear,
 * queue:pause, queue:resume, queue:monitor) through libcadre. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/alloc.h"

#define QUEUE_ARGS_MAX 64 /* queue names given to monitor */

struct queue_args {
    struct cli_conn    conn;
    const char        *sub;
    const char        *queue;
    const char        *names[QUEUE_ARGS_MAX];
    int                names_n;
    unsigned long long max;
    int                has_max, json;
};

static void
queue_usage(FILE *f)
{
    fprintf(f,
            "usage: cadre queue clear [--queue Q] [FLAGS]\n"
            "       cadre queue pause Q [FLAGS]\n"
            "       cadre queue resume Q [FLAGS]\n"
            "       cadre queue monitor [Q...] [--max N] [--json] [FLAGS]\n\n"
            "clear deletes the ready and delayed jobs of queue Q (of every "
            "queue without\n--queue); jobs running now are left alone. A "
            "paused queue keeps its jobs and\ntakes new ones, but workers "
            "get nothing from it until it is resumed.\nmonitor prints each "
            "queue's size (ready + delayed + reserved) and wait (age\nof "
            "its oldest ready job), and exits 1 if a queue holds more than "
            "--max jobs.\n\nflags:\n"
            "  --queue Q          clear: only this queue\n"
            "  --max N            monitor: exit 1 when a queue holds more "
            "than N jobs\n"
            "  --json             monitor: print JSON\n" CLI_CONN_HELP);
}

/* Returns CLI_OK, or CLI_USAGE after printing why. */
static int
queue_parse(struct queue_args *a, int argc, char **argv)
{
    const char *bad = NULL;

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
        } else if ((v = cli_flag_value("--max", argc, argv, &i, &missing))) {
            if (cli_parse_u64(v, &a->max) != 0)
                bad = argv[i];
            a->has_max = 1;
        } else if (missing || (argv[i][0] == '-' && argv[i][1] != '\0')) {
            bad = argv[i];
        } else if (a->sub == NULL) {
            a->sub = argv[i];
        } else if (a->names_n < QUEUE_ARGS_MAX) {
            a->names[a->names_n++] = argv[i];
        } else {
            bad = argv[i];
        }
    }
    if (bad != NULL) {
        fprintf(stderr, "cadre queue: bad or incomplete argument '%s'\n\n",
                bad);
        return CLI_USAGE;
    }
    if (a->sub == NULL) {
        fprintf(stderr, "cadre queue: missing a command\n\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Checks what each command takes; prints why not. */
static int
queue_check(const struct queue_args *a)
{
    const char *s = a->sub, *why = NULL;

    if (strcmp(s, "clear") == 0) {
        if (a->names_n > 0 || a->has_max || a->json)
            why = "clear takes only --queue Q";
    } else if (strcmp(s, "pause") == 0 || strcmp(s, "resume") == 0) {
        if (a->names_n != 1 || a->queue || a->has_max || a->json)
            why = "pause and resume take one queue name";
    } else if (strcmp(s, "monitor") == 0) {
        if (a->queue)
            why = "monitor takes queue names, --max N and --json";
    } else {
        fprintf(stderr, "cadre queue: unknown command '%s'\n\n", s);
        return CLI_USAGE;
    }
    if (why != NULL) {
        fprintf(stderr, "cadre queue %s: %s\n\n", s, why);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int
queue_clear(cadre_client *c, const struct queue_args *a)
{
    uint64_t n = 0;

    if (cadre_queue_clear(c, a->queue, &n) != CADRE_OK) {
        fprintf(stderr, "cadre queue clear: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    if (a->queue != NULL)
        printf("cleared %llu job(s) from queue %s\n", (unsigned long long)n,
               a->queue);
    else
        printf("cleared %llu job(s) from every queue\n", (unsigned long long)n);
    return CLI_OK;
}

static int
queue_pause(cadre_client *c, const struct queue_args *a, int pause)
{
    int rc = pause ? cadre_queue_pause(c, a->names[0])
                   : cadre_queue_resume(c, a->names[0]);

    if (rc != CADRE_OK) {
        fprintf(stderr, "cadre queue %s: %s\n", a->sub, cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    printf("%s queue %s\n", pause ? "paused" : "resumed", a->names[0]);
    return CLI_OK;
}

/* A wait as people read it: 850ms, 12.3s, 4m05s, 2h10m. */
static void
queue_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms < 1000)
        snprintf(buf, len, "%llums", (unsigned long long)ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs", ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, len, "%llum%02llus", (unsigned long long)(ms / 60000),
                 (unsigned long long)(ms / 1000 % 60));
    else
        snprintf(buf, len, "%lluh%02llum", (unsigned long long)(ms / 3600000),
                 (unsigned long long)(ms / 60000 % 60));
}

static int
queue_in(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* The rows monitor shows: the queues asked for (zeros if the node has not
 * seen them), or every queue the node knows. */
static size_t
queue_rows(const struct queue_args *a, const cadre_status *st,
           cadre_queue_stats *rows)
{
    size_t n = 0;

    if (a->names_n == 0) {
        memcpy(rows, st->queues, st->queues_n * sizeof(*rows));
        return st->queues_n;
    }
    for (int i = 0; i < a->names_n; i++) {
        memset(&rows[n], 0, sizeof(rows[n]));
        snprintf(rows[n].name, sizeof(rows[n].name), "%s", a->names[i]);
        for (size_t k = 0; k < st->queues_n; k++)
            if (strcmp(st->queues[k].name, a->names[i]) == 0)
                rows[n] = st->queues[k];
        n++;
    }
    return n;
}

static int
queue_monitor(cadre_client *c, const struct queue_args *a)
{
    cadre_status       st;
    cadre_queue_stats *rows;
    char             **paused = NULL;
    size_t             paused_n = 0, n, over = 0;

    if (cadre_status_get(c, &st) != CADRE_OK) {
        fprintf(stderr, "cadre queue monitor: %s\n", cadre_client_errmsg(c));
        return CLI_FAIL;
    }
    if (cadre_queue_paused(c, &paused, &paused_n) != CADRE_OK) {
        fprintf(stderr, "cadre queue monitor: %s\n", cadre_client_errmsg(c));
        cadre_status_fini(&st);
        return CLI_FAIL;
    }
    rows = cd_calloc(st.queues_n + (size_t)a->names_n + 1, sizeof(*rows));
    if (rows == NULL) {
        fprintf(stderr, "cadre queue monitor: out of memory\n");
        cadre_status_fini(&st);
        cadre_free(paused);
        return CLI_FAIL;
    }
    n = queue_rows(a, &st, rows);
    if (a->json)
        printf("{\"max\":");
    if (a->json && a->has_max)
        printf("%llu,\"queues\":[", a->max);
    else if (a->json)
        printf("null,\"queues\":[");
    else if (n > 0)
        printf("%-20s %10s %10s %10s %10s %10s  %s\n", "QUEUE", "SIZE", "READY",
               "DELAYED", "RESERVED", "WAIT", "STATE");
    for (size_t i = 0; i < n; i++) {
        const cadre_queue_stats *q = &rows[i];
        uint64_t                 size = q->ready + q->delayed + q->reserved;
        int                      is_paused =
            queue_in((const char *const *)paused, paused_n, q->name);
        int  is_over = a->has_max && size > a->max;
        char wait[32];

        over += is_over;
        if (a->json) {
            printf("%s{\"name\":", i ? "," : "");
            cli_json_str(stdout, q->name, strlen(q->name));
            printf(",\"size\":%llu,\"ready\":%llu,\"delayed\":%llu,"
                   "\"reserved\":%llu,\"wait_ms\":%llu,\"paused\":%s,"
                   "\"over\":%s}",
                   (unsigned long long)size, (unsigned long long)q->ready,
                   (unsigned long long)q->delayed,
                   (unsigned long long)q->reserved,
                   (unsigned long long)q->oldest_ready_age_ms,
                   is_paused ? "true" : "false", is_over ? "true" : "false");
            continue;
        }
        queue_duration(q->oldest_ready_age_ms, wait, sizeof(wait));
        printf("%-20s %10llu %10llu %10llu %10llu %10s  %s%s\n", q->name,
               (unsigned long long)size, (unsigned long long)q->ready,
               (unsigned long long)q->delayed, (unsigned long long)q->reserved,
               wait, is_paused ? "paused" : "running", is_over ? "  OVER" : "");
    }
    if (a->json)
        printf("],\"over\":[");
    else if (n == 0)
        printf("no queues\n");
    /* Which queues are over: in the JSON, and on stderr for cron mail. */
    for (size_t i = 0, k = 0; i < n; i++) {
        uint64_t size = rows[i].ready + rows[i].delayed + rows[i].reserved;

        if (!a->has_max || size <= a->max)
            continue;
        if (a->json) {
            printf("%s", k++ ? "," : "");
            cli_json_str(stdout, rows[i].name, strlen(rows[i].name));
        }
        fprintf(stderr,
                "cadre queue monitor: queue %s holds %llu job(s), over "
                "--max %llu\n",
                rows[i].name, (unsigned long long)size, a->max);
    }
    if (a->json)
        printf("]}\n");
    cd_free(rows);
    cadre_status_fini(&st);
    cadre_free(paused);
    return over > 0 ? CLI_FAIL : CLI_OK;
}

int
cli_queue(int argc, char **argv)
{
    struct queue_args a;
    cadre_client     *c;
    int               rc;

    memset(&a, 0, sizeof(a));
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            queue_usage(stdout);
            return CLI_OK;
        }
    rc = queue_parse(&a, argc, argv);
    if (rc == CLI_OK)
        rc = queue_check(&a);
    if (rc != CLI_OK) {
        queue_usage(stderr);
        return rc;
    }
    c = cli_open(&a.conn, "queue");
    if (c == NULL)
        return CLI_FAIL;
    if (strcmp(a.sub, "clear") == 0)
        rc = queue_clear(c, &a);
    else if (strcmp(a.sub, "pause") == 0)
        rc = queue_pause(c, &a, 1);
    else if (strcmp(a.sub, "resume") == 0)
        rc = queue_pause(c, &a, 0);
    else
        rc = queue_monitor(c, &a);
    cadre_client_close(c);
    return rc;
}
