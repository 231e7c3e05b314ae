/* events.c: `cadre events`: tails a node's job events (dispatched, started,
 * done, released, failed), one line each. It only watches: events missed
 * while it lagged or was not running are not replayed. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/common.h"

#define EVENTS_POLL_MS 200 /* how often a signal is noticed */

/* Set by SIGINT/SIGTERM (the one signal-related global). */
static volatile sig_atomic_t events_signalled;

static void
events_on_signal(int sig)
{
    (void)sig;
    events_signalled = 1;
}

static void
events_usage(FILE *f)
{
    fprintf(f, "usage: cadre events [--events-url URL] [--json] [--count N] "
               "[FLAGS]\n\n"
               "Prints the node's job events as they happen, one a line:\n"
               "  TIME KIND ID task=T queue=Q attempt=N[ error=TYPE]\n"
               "KIND is dispatched, started, done, released (to be retried) or "
               "failed.\nA subscriber that lags loses events; nothing is "
               "replayed.\n\nflags:\n"
               "  --events-url URL   events url (default $CADRE_EVENTS_URL, "
               "else the api url\n"
               "                     with its port + 2)\n"
               "  --json             print JSON lines\n"
               "  --count N          exit after N events\n" CLI_CONN_HELP);
}

/* Writes ms (Unix ms) as ISO-8601 UTC with milliseconds into buf. */
static void
events_iso(uint64_t ms, char *buf, size_t len)
{
    time_t    sec = (time_t)(ms / 1000);
    struct tm tm;
    char      day[32];

    if (gmtime_r(&sec, &tm) == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", day, (unsigned)(ms % 1000));
}

static void
events_print(const cadre_event *ev, int json)
{
    char id[37], at[64];

    cadre_job_id_format(&ev->id, id);
    events_iso(ev->at_ms, at, sizeof(at));
    if (ev->kind == CADRE_EVENT_LEADER) {
        if (json) {
            printf("{\"at\":\"%s\",\"at_ms\":%llu,\"kind\":\"leader\","
                   "\"leader\":",
                   at, (unsigned long long)ev->at_ms);
            cli_json_str(stdout, ev->leader, strlen(ev->leader));
            printf(",\"term\":%llu}\n", (unsigned long long)ev->term);
        } else {
            printf("%s leader %s term=%llu\n", at,
                   ev->leader[0] ? ev->leader : "-",
                   (unsigned long long)ev->term);
        }
        return;
    }
    if (!json) {
        printf("%s %s %s task=%s queue=%s attempt=%u", at,
               cadre_event_kind_name(ev->kind), id, ev->task, ev->queue,
               ev->attempt);
        if (ev->error_type[0] != '\0')
            printf(" error=%s", ev->error_type);
        putchar('\n');
        return;
    }
    printf("{\"at\":\"%s\",\"at_ms\":%llu,\"kind\":\"%s\",\"id\":\"%s\","
           "\"task\":",
           at, (unsigned long long)ev->at_ms, cadre_event_kind_name(ev->kind),
           id);
    cli_json_str(stdout, ev->task, strlen(ev->task));
    printf(",\"queue\":");
    cli_json_str(stdout, ev->queue, strlen(ev->queue));
    printf(",\"attempt\":%u", ev->attempt);
    if (ev->error_type[0] != '\0') {
        printf(",\"error_type\":");
        cli_json_str(stdout, ev->error_type, strlen(ev->error_type));
    }
    printf("}\n");
}

int
cli_events(int argc, char **argv)
{
    struct cli_conn    conn = {0};
    cadre_client_opts  opts;
    cadre_events      *sub = NULL;
    cadre_event        ev;
    struct sigaction   sa;
    const char        *url = NULL;
    unsigned long long count = 0, seen = 0;
    char               errbuf[1024];
    int                json = 0, rc;

    for (int i = 1; i < argc; i++) {
        const char *v;
        int         missing, k;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            events_usage(stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        v = cli_flag_value("--events-url", argc, argv, &i, &missing);
        if (v != NULL && v[0] != '\0') {
            url = v;
            continue;
        }
        if (v == NULL && !missing) {
            v = cli_flag_value("--count", argc, argv, &i, &missing);
            if (v != NULL && cli_parse_u64(v, &count) == 0 && count > 0)
                continue;
        }
        if (v == NULL && !missing) {
            k = cli_conn_flag(&conn, argc, argv, &i);
            if (k == 1)
                continue;
        }
        fprintf(stderr, "cadre events: bad argument '%s'\n\n", argv[i]);
        events_usage(stderr);
        return CLI_USAGE;
    }
    memset(&opts, 0, sizeof(opts));
    opts.url = conn.url;
    opts.key_file = conn.key_file;
    opts.data_dir = conn.data_dir;
    opts.tls_cert_file = conn.tls_cert_file;
    opts.tls_ca_file = conn.tls_ca_file;
    if (cadre_events_open(&opts, url, &sub, errbuf, sizeof(errbuf)) !=
        CADRE_OK) {
        fprintf(stderr, "cadre events: %s\n", errbuf);
        return CLI_FAIL;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = events_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = CADRE_OK;
    while (!events_signalled && (count == 0 || seen < count)) {
        rc = cadre_events_next(sub, &ev, EVENTS_POLL_MS);
        if (rc == CADRE_ETIMEDOUT) {
            rc = CADRE_OK;
            continue;
        }
        if (rc != CADRE_OK)
            break;
        events_print(&ev, json);
        fflush(stdout);
        seen++;
    }
    if (rc != CADRE_OK)
        fprintf(stderr, "cadre events: %s\n", cadre_client_errmsg(NULL));
    /* nng 1.5.2's nng_close can deadlock closing a socket that has
     * received messages (nanomsg/nng#1543, fixed after 1.5.2); seen here
     * about once in ten runs. The process is done: leave the socket to the
     * kernel instead of cadre_events_close. */
    fflush(stdout);
    fflush(stderr);
    (void)sub;
    _exit(rc == CADRE_OK ? CLI_OK : CLI_FAIL);
}
