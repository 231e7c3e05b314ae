/* run.c: `cadre run` (a fan-out whose outcomes are printed in submission
 * order) and `cadre defer` (the same tasks stored as ordinary jobs; prints
 * their ids). Tasks come from the command line (TASK[:PAYLOAD]) or from a
 * JSON-lines file, one {"task":..,"payload":..,"queue":..} per line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "common/alloc.h"
#include "common/buf.h"

#define RUN_LINE_MAX (16u << 20)

struct run_args {
    struct cli_conn    conn;
    const char        *cmd; /* "run" or "defer" */
    const char        *queue;
    const char        *file;
    unsigned long long timeout_ms;
    int                fail_fast, json;
    cadre_task_spec   *tasks;
    char             **owned; /* strings made from --file, freed at exit */
    size_t             tasks_n, tasks_cap, owned_n, owned_cap;
};

static void
run_usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "defer") == 0) {
        fprintf(f, "usage: cadre defer TASK[:PAYLOAD]... [FLAGS]\n"
                   "       cadre defer --file TASKS.jsonl [FLAGS]\n\n"
                   "Stores the tasks as ordinary durable jobs and prints their "
                   "ids, one per line,\nin order; does not wait for them.\n\n"
                   "flags:\n"
                   "  --queue Q          queue of tasks that name none\n"
                   "  --file F           one JSON object per line: "
                   "{\"task\":..,\"payload\":..,\"queue\":..}\n"
                   "                     (- reads standard input)\n"
                   "  --json             print JSON\n" CLI_CONN_HELP);
        return;
    }
    fprintf(
        f,
        "usage: cadre run TASK[:PAYLOAD]... [FLAGS]\n"
        "       cadre run --file TASKS.jsonl [FLAGS]\n\n"
        "Runs the tasks concurrently on the node's workers and prints one "
        "line per task,\nin the order given: \"ok RESULT\", \"error TYPE: "
        "MESSAGE\", \"timed out\" or\n\"cancelled\". Exit 1 if any task "
        "did not succeed.\n\n"
        "flags:\n"
        "  --timeout T        deadline of the run: MS, or with a unit "
        "(500ms, 5s, 2m);\n"
        "                     default 30s\n"
        "  --fail-fast        the first error cancels the tasks not "
        "finished\n"
        "  --queue Q          queue of tasks that name none\n"
        "  --file F           one JSON object per line: "
        "{\"task\":..,\"payload\":..,\"queue\":..}\n"
        "                     (- reads standard input)\n"
        "  --json             print a JSON array of outcomes\n" CLI_CONN_HELP);
}

/* "5s", "500ms", "2m", or bare milliseconds. */
static int
run_parse_duration(const char *s, unsigned long long *ms)
{
    char              *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end == '\0' || strcmp(end, "ms") == 0)
        *ms = v;
    else if (strcmp(end, "s") == 0)
        *ms = v * 1000;
    else if (strcmp(end, "m") == 0)
        *ms = v * 60000;
    else
        return -1;
    return *ms > 0 && *ms <= 86400000ULL ? 0 : -1;
}

static int
run_keep(struct run_args *a, char *s)
{
    if (a->owned_n == a->owned_cap) {
        size_t cap = a->owned_cap ? a->owned_cap * 2 : 64;
        char **v = cd_realloc(a->owned, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        a->owned = v;
        a->owned_cap = cap;
    }
    a->owned[a->owned_n++] = s;
    return 0;
}

static int
run_add(struct run_args *a, const char *task, const char *payload,
        size_t payload_len, const char *queue)
{
    if (a->tasks_n == a->tasks_cap) {
        size_t           cap = a->tasks_cap ? a->tasks_cap * 2 : 64;
        cadre_task_spec *v = cd_realloc(a->tasks, cap * sizeof(*v));

        if (v == NULL)
            return -1;
        a->tasks = v;
        a->tasks_cap = cap;
    }
    a->tasks[a->tasks_n++] = (cadre_task_spec){.task = task,
                                               .payload = payload,
                                               .payload_len = payload_len,
                                               .queue = queue};
    return 0;
}

/* TASK[:PAYLOAD]: the name ends at the first ':'. */
static int
run_add_arg(struct run_args *a, char *arg)
{
    char *colon = strchr(arg, ':');

    if (colon == arg || arg[0] == '\0')
        return -1;
    if (colon == NULL)
        return run_add(a, arg, "", 0, NULL);
    *colon = '\0';
    return run_add(a, arg, colon + 1, strlen(colon + 1), NULL);
}

/* ---- a minimal JSON reader for one flat object per line ---------------- */

static const char *
run_json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static void
run_utf8(cd_buf *b, unsigned long cp)
{
    char u[4];
    int  n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    cd_buf_append(b, u, (size_t)n);
}

static int
run_hex4(const char *p, unsigned long *out)
{
    char  h[5];
    char *end;

    memcpy(h, p, 4);
    h[4] = '\0';
    for (int i = 0; i < 4; i++)
        if (h[i] == '\0')
            return -1;
    *out = strtoul(h, &end, 16);
    return *end == '\0' ? 0 : -1;
}

/* Reads a JSON string at p (at its '"') into a new NUL-terminated string
 * (*len its length); returns the position after it, or NULL. */
static const char *
run_json_string(const char *p, char **out, size_t *len)
{
    cd_buf b;

    if (*p != '"')
        return NULL;
    cd_buf_init(&b);
    for (p++; *p != '"'; p++) {
        char c = *p;

        if (c == '\0')
            goto bad;
        if (c == '\\') {
            unsigned long cp, lo;

            switch (*++p) {
            case '"':
            case '\\':
            case '/':
                c = *p;
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u':
                if (run_hex4(p + 1, &cp) != 0)
                    goto bad;
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' &&
                    p[2] == 'u' && run_hex4(p + 3, &lo) == 0 && lo >= 0xdc00 &&
                    lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
                run_utf8(&b, cp);
                continue;
            default:
                goto bad;
            }
        }
        if (cd_buf_append(&b, &c, 1) != CADRE_OK)
            goto bad;
    }
    *len = b.len;
    if ((*out = cd_buf_take(&b)) == NULL)
        goto bad;
    return p + 1;
bad:
    cd_buf_fini(&b);
    return NULL;
}

/* A scalar that is not a string (number, true, false, null), as text. */
static const char *
run_json_scalar(const char *p, char **out, size_t *len)
{
    size_t n = strcspn(p, ",} \t\r\n");

    if (n == 0 || (*out = cd_malloc(n + 1)) == NULL)
        return NULL;
    memcpy(*out, p, n);
    (*out)[n] = '\0';
    *len = n;
    return p + n;
}

/* One line: {"task":"x","payload":"y","queue":"q"}; other keys ignored. */
static int
run_json_line(struct run_args *a, const char *line)
{
    const char *p = run_json_ws(line);
    char       *task = NULL, *payload = NULL, *queue = NULL;
    size_t      payload_len = 0;

    if (*p == '\0')
        return 0; /* a blank line */
    if (*p++ != '{')
        return -1;
    p = run_json_ws(p);
    while (*p != '}') {
        char  *key = NULL, *val = NULL;
        size_t klen, vlen;

        p = run_json_string(p, &key, &klen);
        if (p == NULL)
            goto bad;
        p = run_json_ws(p);
        if (*p++ != ':') {
            cd_free(key);
            goto bad;
        }
        p = run_json_ws(p);
        p = *p == '"' ? run_json_string(p, &val, &vlen)
                      : run_json_scalar(p, &val, &vlen);
        if (p == NULL) {
            cd_free(key);
            goto bad;
        }
        if (strcmp(key, "task") == 0 && task == NULL) {
            task = val;
        } else if (strcmp(key, "payload") == 0 && payload == NULL) {
            payload = val;
            payload_len = vlen;
        } else if (strcmp(key, "queue") == 0 && queue == NULL) {
            queue = val;
        } else {
            cd_free(val);
        }
        cd_free(key);
        p = run_json_ws(p);
        if (*p == ',')
            p = run_json_ws(p + 1);
        else if (*p != '}')
            goto bad;
    }
    if (*run_json_ws(p + 1) != '\0' || task == NULL || task[0] == '\0')
        goto bad;
    if (run_keep(a, task) != 0 || (payload && run_keep(a, payload) != 0) ||
        (queue && run_keep(a, queue) != 0))
        return -1; /* what was kept is freed at exit */
    return run_add(a, task, payload ? payload : "", payload_len, queue);
bad:
    cd_free(task);
    cd_free(payload);
    cd_free(queue);
    return -1;
}

static int
run_read_file(struct run_args *a)
{
    FILE  *f = strcmp(a->file, "-") == 0 ? stdin : fopen(a->file, "r");
    char  *line = NULL;
    size_t cap = 0, lineno = 0;
    int    rc = 0;

    if (f == NULL) {
        fprintf(stderr, "cadre %s: cannot open %s\n", a->cmd, a->file);
        return -1;
    }
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        if (run_json_line(a, line) != 0) {
            fprintf(stderr,
                    "cadre %s: %s line %zu: expected "
                    "{\"task\":..,\"payload\":..,\"queue\":..}\n",
                    a->cmd, a->file, lineno);
            rc = -1;
            break;
        }
    }
    free(line);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* ---- arguments ----------------------------------------------------------
 */

static int
run_parse(struct run_args *a, int argc, char **argv)
{
    int is_run = strcmp(a->cmd, "run") == 0;

    for (int i = 1; i < argc; i++) {
        const char *v;
        int         missing = 0, c = cli_conn_flag(&a->conn, argc, argv, &i);

        if (c != 0) {
            if (c < 0)
                goto bad;
            continue;
        }
        if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (is_run && strcmp(argv[i], "--fail-fast") == 0) {
            a->fail_fast = 1;
            continue;
        }
        if ((v = cli_flag_value("--queue", argc, argv, &i, &missing))) {
            a->queue = v;
            continue;
        }
        if (!missing &&
            (v = cli_flag_value("--file", argc, argv, &i, &missing))) {
            a->file = v;
            continue;
        }
        if (is_run && !missing &&
            (v = cli_flag_value("--timeout", argc, argv, &i, &missing))) {
            if (run_parse_duration(v, &a->timeout_ms) != 0)
                goto bad;
            continue;
        }
        if (missing || (argv[i][0] == '-' && argv[i][1] != '\0'))
            goto bad;
        if (run_add_arg(a, argv[i]) != 0)
            goto bad;
        continue;
    bad:
        fprintf(stderr, "cadre %s: bad or incomplete argument '%s'\n\n", a->cmd,
                argv[i]);
        run_usage(stderr, a->cmd);
        return CLI_USAGE;
    }
    if (a->file != NULL && run_read_file(a) != 0)
        return CLI_USAGE;
    if (a->tasks_n == 0) {
        fprintf(stderr, "cadre %s: no tasks\n\n", a->cmd);
        run_usage(stderr, a->cmd);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < a->tasks_n; i++)
        if (a->tasks[i].queue == NULL)
            a->tasks[i].queue = a->queue;
    return CLI_OK;
}

static void
run_args_fini(struct run_args *a)
{
    for (size_t i = 0; i < a->owned_n; i++)
        cd_free(a->owned[i]);
    cd_free(a->owned);
    cd_free(a->tasks);
}

static int
run_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* ---- output -------------------------------------------------------------
 */

static const char *
run_status_name(int status)
{
    switch (status) {
    case CADRE_RUN_OK:
        return "ok";
    case CADRE_RUN_ERROR:
        return "error";
    case CADRE_RUN_TIMED_OUT:
        return "timed out";
    default:
        return "cancelled";
    }
}

static void
run_print(const struct run_args *a, const cadre_run_result *r, size_t n)
{
    if (a->json)
        printf("[");
    for (size_t i = 0; i < n; i++) {
        const cadre_run_result *x = &r[i];

        if (a->json) {
            printf("%s{\"status\":\"%s\",\"attempts\":%u,\"result\":",
                   i ? "," : "", run_status_name(x->status), x->attempts);
            cli_json_str(stdout, (const char *)x->result, x->result_len);
            printf(",\"error_type\":");
            cli_json_str(stdout, x->error_type ? x->error_type : "",
                         x->error_type ? strlen(x->error_type) : 0);
            printf(",\"error\":");
            cli_json_str(stdout, x->error ? x->error : "",
                         x->error ? strlen(x->error) : 0);
            printf("}");
            continue;
        }
        if (x->status == CADRE_RUN_OK) {
            fputs("ok ", stdout);
            fwrite(x->result, 1, x->result_len, stdout);
            fputc('\n', stdout);
        } else if (x->status == CADRE_RUN_ERROR) {
            printf("error %s: %s\n", x->error_type ? x->error_type : "",
                   x->error ? x->error : "");
        } else {
            printf("%s\n", run_status_name(x->status));
        }
    }
    if (a->json)
        printf("]\n");
}

static int
run_do_run(cadre_client *c, struct run_args *a)
{
    cadre_run_opts    o = {.deadline_ms = a->timeout_ms,
                           .fail_fast = a->fail_fast};
    cadre_run_result *r = cd_calloc(a->tasks_n, sizeof(*r));
    int               rc;

    if (r == NULL) {
        fprintf(stderr, "cadre run: out of memory\n");
        return CLI_FAIL;
    }
    rc = cadre_run(c, a->tasks, a->tasks_n, &o, r);
    if (rc == CADRE_OK || rc == CADRE_EHANDLER || rc == CADRE_ETIMEDOUT ||
        rc == CADRE_ECLOSED)
        run_print(a, r, a->tasks_n);
    if (rc != CADRE_OK && rc != CADRE_EHANDLER)
        fprintf(stderr, "cadre run: %s\n", cadre_client_errmsg(c));
    cadre_run_results_free(r, a->tasks_n);
    cd_free(r);
    return rc == CADRE_OK ? CLI_OK : CLI_FAIL;
}

static int
run_do_defer(cadre_client *c, struct run_args *a)
{
    cadre_job_id *ids = cd_calloc(a->tasks_n, sizeof(*ids));
    char          text[40];

    if (ids == NULL) {
        fprintf(stderr, "cadre defer: out of memory\n");
        return CLI_FAIL;
    }
    if (cadre_defer(c, a->tasks, a->tasks_n, ids) != CADRE_OK) {
        fprintf(stderr, "cadre defer: %s\n", cadre_client_errmsg(c));
        cd_free(ids);
        return CLI_FAIL;
    }
    if (a->json)
        printf("[");
    for (size_t i = 0; i < a->tasks_n; i++) {
        cadre_job_id_format(&ids[i], text);
        if (a->json)
            printf("%s\"%s\"", i ? "," : "", text);
        else
            printf("%s\n", text);
    }
    if (a->json)
        printf("]\n");
    cd_free(ids);
    return CLI_OK;
}

static int
run_main(const char *cmd, int argc, char **argv)
{
    struct run_args a;
    cadre_client   *c;
    int             rc;

    memset(&a, 0, sizeof(a));
    a.cmd = cmd;
    if (run_wants_help(argc, argv)) {
        run_usage(stdout, cmd);
        return CLI_OK;
    }
    rc = run_parse(&a, argc, argv);
    if (rc != CLI_OK) {
        run_args_fini(&a);
        return rc;
    }
    c = cli_open(&a.conn, cmd);
    if (c == NULL) {
        run_args_fini(&a);
        return CLI_FAIL;
    }
    rc = strcmp(cmd, "run") == 0 ? run_do_run(c, &a) : run_do_defer(c, &a);
    fflush(stdout);
    cadre_client_close(c);
    run_args_fini(&a);
    return rc;
}

int
cli_run(int argc, char **argv)
{
    return run_main("run", argc, argv);
}

int
cli_defer(int argc, char **argv)
{
    return run_main("defer", argc, argv);
}
