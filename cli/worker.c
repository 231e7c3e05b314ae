/* worker.c (cli/): `cadre worker`: parses flags, opens a worker, registers its
 * plugins and exec handlers, and runs it until SIGTERM/SIGINT or --max-jobs.
 * The loop itself is worker/worker.c. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cadre/cadre.h"
#include "cli/cli.h"
#include "worker/worker.h"

#define CLI_WORKER_LIST_MAX 64 /* --plugin, --exec, queues */

/* The worker the signal handler stops (the one signal-related global). */
static cadre_worker *volatile cli_worker_target;
static volatile sig_atomic_t cli_worker_signalled;

static void
cli_worker_usage(FILE *f)
{
    fprintf(
        f,
        "usage: cadre worker [OPTIONS]\n"
        "\n"
        "Fetches jobs from a node and runs them with the given handlers.\n"
        "\n"
        "options:\n"
        "  --connect URL     node to fetch from (default $CADRE_URL, else "
        "tcp://127.0.0.1:7700)\n"
        "  --key-file F      worker or cluster key (default $CADRE_KEY_FILE, "
        "else DATA/cluster.key)\n"
        "  --data DIR        data dir where the default key is (default "
        "$CADRE_DATA, else\n"
        "                    ~/.local/share/cadre)\n"
        "  --plugin F.so     load a plugin's tasks (repeatable)\n"
        "  --exec NAME=CMD   run CMD through /bin/sh -c for task NAME: payload "
        "on stdin,\n"
        "                    result from stdout, exit 0 = success "
        "(repeatable)\n"
        "  --queue a,b       queues to serve, in priority order (default "
        "default)\n"
        "  --prefetch N      most jobs held at once; fewer when jobs are "
        "slow (default 64)\n"
        "  --sleep MS        long-poll time of a fetch when idle (default "
        "1000)\n"
        "  --max-jobs N      stop after N jobs (default 0: no limit)\n"
        "  --timeout MS      default handler timeout (default 0: none); a "
        "plugin handler\n"
        "                    that overruns it ends the worker (exit 124)\n"
        "  --tries N         attempts of jobs that set none (default: the "
        "node's --tries)\n"
        "  --max-time S      stop after S seconds (after the current job)\n"
        "  --memory MIB      stop once resident memory reaches MIB\n"
        "  --stop-when-empty stop when a fetch finds no job\n"
        "  --app-key-file F  application key that opens encrypted jobs "
        "(default\n"
        "                    $CADRE_APP_KEY_FILE)\n"
        "  --tls-cert F      PEM certificate and key to present to a "
        "tls+tcp:// node\n"
        "                    (default $CADRE_TLS_CERT)\n"
        "  --tls-ca F        PEM CA bundle the node's certificate must chain "
        "to (default\n"
        "                    $CADRE_TLS_CA; none: the node is not verified)\n"
        "  (a worker a node supervises is replaced when it stops)\n"
        "  --help            show this help\n"
        "\n"
        "SIGTERM or SIGINT: finish the current job, return the others, exit "
        "0;\n"
        "a second signal exits at once.\n");
}

static void
cli_worker_on_signal(int sig)
{
    if (cli_worker_signalled) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    cli_worker_signalled = 1;
    cadre_worker_stop(cli_worker_target);
}

/* A worker supervised by a node (CADRE_SUPERVISED=<node pid>) stops when
 * that node dies, even by SIGKILL: an orphan would hold jobs it can never
 * report and poll an address nobody serves. */
static void
cli_worker_follow_parent(void)
{
    const char *env = getenv("CADRE_SUPERVISED");

    if (env == NULL || env[0] == '\0')
        return;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != (pid_t)atol(env)) /* it died before prctl */
        cadre_worker_stop(cli_worker_target);
}

/* Strict decimal in [min, max]. */
static int
cli_worker_number(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char              *end;
    unsigned long long v;

    if (s == NULL || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits a,b,c in place into names; empty names are an error. */
static int
cli_worker_queues(char *s, const char **names, size_t *n)
{
    char *save = NULL, *tok;

    if (s[0] == '\0' || s[0] == ',' || s[strlen(s) - 1] == ',' ||
        strstr(s, ",,") != NULL)
        return -1;
    for (tok = strtok_r(s, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == CLI_WORKER_LIST_MAX)
            return -1;
        names[(*n)++] = tok;
    }
    return *n > 0 ? 0 : -1;
}

static int
cli_worker_bad(const char *fmt, const char *arg)
{
    fprintf(stderr, "cadre worker: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    cli_worker_usage(stderr);
    return CLI_USAGE;
}

int
cli_worker(int argc, char **argv)
{
    enum {
        OPT_CONNECT = 256,
        OPT_KEY_FILE,
        OPT_DATA,
        OPT_PLUGIN,
        OPT_EXEC,
        OPT_QUEUE,
        OPT_PREFETCH,
        OPT_SLEEP,
        OPT_MAX_JOBS,
        OPT_TIMEOUT,
        OPT_MAX_TIME,
        OPT_MEMORY,
        OPT_STOP_WHEN_EMPTY,
        OPT_APP_KEY_FILE,
        OPT_TRIES,
        OPT_TLS_CERT,
        OPT_TLS_CA,
        OPT_HELP,
    };
    static const struct option longopts[] = {
        {"connect", required_argument, NULL, OPT_CONNECT},
        {"key-file", required_argument, NULL, OPT_KEY_FILE},
        {"data", required_argument, NULL, OPT_DATA},
        {"plugin", required_argument, NULL, OPT_PLUGIN},
        {"exec", required_argument, NULL, OPT_EXEC},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"prefetch", required_argument, NULL, OPT_PREFETCH},
        {"sleep", required_argument, NULL, OPT_SLEEP},
        {"max-jobs", required_argument, NULL, OPT_MAX_JOBS},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"max-time", required_argument, NULL, OPT_MAX_TIME},
        {"memory", required_argument, NULL, OPT_MEMORY},
        {"stop-when-empty", no_argument, NULL, OPT_STOP_WHEN_EMPTY},
        {"app-key-file", required_argument, NULL, OPT_APP_KEY_FILE},
        {"tries", required_argument, NULL, OPT_TRIES},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-ca", required_argument, NULL, OPT_TLS_CA},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    cadre_worker_opts opts;
    cadre_worker     *w = NULL;
    const char       *plugins[CLI_WORKER_LIST_MAX];
    char             *execs[CLI_WORKER_LIST_MAX];
    const char       *queues[CLI_WORKER_LIST_MAX];
    size_t            plugins_n = 0, execs_n = 0, queues_n = 0;
    uint64_t          v, sleep_ms = WORKER_SLEEP_DEFAULT_MS;
    char              errbuf[1024];
    struct sigaction  sa;
    int               c, rc, ret = CLI_FAIL;

    memset(&opts, 0, sizeof(opts));
    optind = 0; /* glibc: full re-initialisation */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_CONNECT:
            opts.url = optarg;
            break;
        case OPT_KEY_FILE:
            opts.key_file = optarg;
            break;
        case OPT_DATA:
            opts.data_dir = optarg;
            break;
        case OPT_PLUGIN:
            if (plugins_n == CLI_WORKER_LIST_MAX)
                return cli_worker_bad("too many --plugin: %s", optarg);
            plugins[plugins_n++] = optarg;
            break;
        case OPT_EXEC: {
            char *eq = strchr(optarg, '=');

            if (eq == NULL || eq == optarg || eq[1] == '\0')
                return cli_worker_bad("--exec wants NAME=CMD, not '%s'",
                                      optarg);
            if (execs_n == CLI_WORKER_LIST_MAX)
                return cli_worker_bad("too many --exec: %s", optarg);
            execs[execs_n++] = optarg;
            break;
        }
        case OPT_QUEUE:
            queues_n = 0;
            if (cli_worker_queues(optarg, queues, &queues_n) != 0)
                return cli_worker_bad("--queue wants names like a,b, not "
                                      "'%s'",
                                      optarg);
            break;
        case OPT_PREFETCH:
            if (cli_worker_number(optarg, 1, 4096, &v) != 0)
                return cli_worker_bad("--prefetch wants 1..4096, not '%s'",
                                      optarg);
            opts.prefetch = (uint32_t)v;
            break;
        case OPT_SLEEP:
            if (cli_worker_number(optarg, 0, 600000, &sleep_ms) != 0)
                return cli_worker_bad("--sleep wants 0..600000 ms, not '%s'",
                                      optarg);
            break;
        case OPT_MAX_JOBS:
            if (cli_worker_number(optarg, 0, UINT32_MAX, &v) != 0)
                return cli_worker_bad("--max-jobs wants a count, not '%s'",
                                      optarg);
            opts.max_jobs = (uint32_t)v;
            break;
        case OPT_TIMEOUT:
            if (cli_worker_number(optarg, 0, UINT64_C(1) << 40, &v) != 0)
                return cli_worker_bad("--timeout wants ms, not '%s'", optarg);
            opts.timeout_ms = v;
            break;
        case OPT_MAX_TIME:
            if (cli_worker_number(optarg, 0, UINT64_C(1) << 32, &v) != 0)
                return cli_worker_bad("--max-time wants seconds, not '%s'",
                                      optarg);
            opts.max_time_ms = v * 1000;
            break;
        case OPT_MEMORY:
            if (cli_worker_number(optarg, 0, UINT32_MAX, &v) != 0)
                return cli_worker_bad("--memory wants MiB, not '%s'", optarg);
            opts.memory_mb = (uint32_t)v;
            break;
        case OPT_STOP_WHEN_EMPTY:
            opts.stop_when_empty = 1;
            break;
        case OPT_APP_KEY_FILE:
            opts.app_key_file = optarg;
            break;
        case OPT_TLS_CERT:
            opts.tls_cert_file = optarg;
            break;
        case OPT_TLS_CA:
            opts.tls_ca_file = optarg;
            break;
        case OPT_TRIES:
            if (cli_worker_number(optarg, 1, 1000000, &v) != 0)
                return cli_worker_bad("--tries wants 1..1000000, not '%s'",
                                      optarg);
            opts.tries = (uint32_t)v;
            break;
        case OPT_HELP:
            cli_worker_usage(stdout);
            return CLI_OK;
        case ':':
            return cli_worker_bad("%s needs a value", argv[optind - 1]);
        default:
            return cli_worker_bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_worker_bad("unexpected argument '%s'", argv[optind]);
    if (plugins_n == 0 && execs_n == 0)
        return cli_worker_bad("%s", "no handlers: give --plugin or --exec");
    opts.queues = queues_n > 0 ? queues : NULL;
    opts.queues_n = queues_n;

    rc = cadre_worker_open(&opts, &w, errbuf, sizeof(errbuf));
    if (rc != CADRE_OK) {
        fprintf(stderr, "cadre worker: %s\n", errbuf);
        return CLI_FAIL;
    }
    worker_set_sleep_ms(w, (uint32_t)sleep_ms);
    for (size_t i = 0; i < plugins_n; i++) {
        if (cadre_worker_load_plugin(w, plugins[i], errbuf, sizeof(errbuf)) !=
            CADRE_OK) {
            fprintf(stderr, "cadre worker: %s\n", errbuf);
            goto out;
        }
    }
    for (size_t i = 0; i < execs_n; i++) {
        char *eq = strchr(execs[i], '=');

        *eq = '\0'; /* argv is ours to split */
        rc = cadre_worker_exec(w, execs[i], eq + 1);
        *eq = '=';
        if (rc != CADRE_OK) {
            fprintf(stderr, "cadre worker: --exec %s: %s\n", execs[i],
                    worker_errmsg(w));
            goto out;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    cli_worker_target = w;
    cli_worker_signalled = 0;
    sa.sa_handler = cli_worker_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    cli_worker_follow_parent();

    rc = cadre_worker_run(w);
    if (rc != CADRE_OK)
        fprintf(stderr, "cadre worker: %s\n",
                worker_errmsg(w)[0] != '\0' ? worker_errmsg(w)
                                            : cadre_strerror(rc));
    else
        ret = CLI_OK;

    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    cli_worker_target = NULL;
out:
    cadre_worker_close(w);
    return ret;
}
