/* config.c: the option table and its four sources (defaults, file, env,
 * flags). Adding an option is adding one row. */
#include "node/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/path.h"
#include "node/leader.h"
#include "store/store.h"

enum config_type {
    CONFIG_STR,
    CONFIG_U32,
    CONFIG_U64,
    CONFIG_SYNC,
    CONFIG_LIST
};

struct config_opt {
    const char      *name; /* flag and file key; env is CADRE_<NAME> */
    enum config_type type;
    size_t           off;
    size_t           size;  /* STR: buffer size; LIST: element size */
    size_t           count; /* LIST: offset of the count field */
    const char      *def;
    uint64_t         min, max;
    const char      *help;
};

#define OFF(f) offsetof(struct node_config, f)
#define STR(n, f, d, h)                                                        \
    {                                                                          \
        n, CONFIG_STR, OFF(f), sizeof(((struct node_config *)0)->f), 0, d, 0,  \
            0, h                                                               \
    }
#define NUM(n, t, f, d, lo, hi, h)                                             \
    {                                                                          \
        n, t, OFF(f), 0, 0, d, lo, hi, h                                       \
    }
#define LIST(n, f, h)                                                          \
    {                                                                          \
        n, CONFIG_LIST, OFF(f), CONFIG_STR_MAX, OFF(f##_n), NULL, 0, 0, h      \
    }

static const struct config_opt config_opts[] = {
    STR("data", data_dir, NULL,
        "data dir (default $CADRE_DATA or ~/.local/share/cadre)"),
    STR("node-id", node_id, NULL, "node id (default: the host name)"),
    STR("listen", listen, "tcp://127.0.0.1:7700",
        "api url for clients and workers (port 0: any free port)"),
    STR("events-listen", events_listen, NULL,
        "job events (pub/sub) url (default: the api host, api port + 2; "
        "port 0 if the api port is 0)"),
    STR("key-file", key_file, NULL,
        "cluster key file (default <data>/cluster.key, made on loopback)"),
    STR("tls-cert", tls_cert, NULL,
        "PEM file with this node's TLS certificate and key (needed by any "
        "tls+tcp:// listen url; also presented when dialing one)"),
    STR("tls-ca", tls_ca, NULL,
        "PEM CA bundle: with it, tls+tcp:// peers, workers and clients must "
        "present a certificate it signed (mutual TLS)"),
    NUM("sync", CONFIG_SYNC, sync, "full", 0, 2,
        "durability: full (fsync each commit), normal, off"),
    NUM("workers", CONFIG_U32, workers, "0", 0, 1024,
        "worker processes to supervise"),
    LIST("plugin", plugins, "plugin .so for supervised workers (repeatable)"),
    LIST("exec", execs, "NAME=CMD exec handler for workers (repeatable)"),
    STR("queue", queues, "default", "queues the supervised workers serve"),
    NUM("prefetch", CONFIG_U32, prefetch, "64", 1, 4096,
        "most jobs a supervised worker holds (fewer for slow jobs)"),
    NUM("retry-after", CONFIG_U64, retry_after_ms, "90000", 100,
        86400000ULL * 7,
        "ms before a reserved job of a vanished worker reruns"),
    NUM("tries", CONFIG_U32, tries, "1", 1, 1000000,
        "default attempts of a job that sets none"),
    NUM("max-payload", CONFIG_U64, max_payload, "1048576", 1, 1ULL << 30,
        "largest job payload in bytes"),
    NUM("max-frame", CONFIG_U64, max_frame, "16777216", 4096, 1ULL << 31,
        "largest frame in bytes"),
    NUM("map-size", CONFIG_U64, map_size_mb, "4096", 1, 1ULL << 24,
        "LMDB map size in MiB"),
    NUM("result-ttl", CONFIG_U64, result_ttl_ms, "3600000", 0,
        86400000ULL * 365, "ms a done job's result is kept for waiters"),
    NUM("shutdown-grace", CONFIG_U64, shutdown_grace_ms, "30000", 0,
        86400000ULL, "ms SIGTERM waits for running jobs"),
    STR("peer-listen", peer_listen, NULL,
        "url for other nodes (default: the api host, api port + 1; port 0 "
        "if the api port is 0)"),
    LIST("peer", peers,
         "peer url of a node to join (repeatable; one is enough)"),
    NUM("heartbeat-ms", CONFIG_U64, heartbeat_ms, "500", 10, 60000,
        "ms between heartbeats to peers"),
    NUM("suspect-ms", CONFIG_U64, suspect_ms, "1500", 20, 600000,
        "ms of silence before a peer is suspect"),
    NUM("dead-ms", CONFIG_U64, dead_ms, "5000", 30, 3600000,
        "ms of silence before a peer is dead"),
    NUM("steal-max", CONFIG_U32, steal_max, "64", 0, 4096,
        "most jobs taken from a peer at once (0: never steal)"),
    NUM("lend-ms", CONFIG_U64, lend_ms, "30000", 100, 86400000ULL,
        "ms before jobs lent to a peer that never confirmed come back"),
    NUM("replay-skew-ms", CONFIG_U64, replay_skew_ms, "30000", 1000,
        86400000ULL, "clock skew tolerated for a frame from an unknown sender"),
    STR("voters", voters, NULL,
        "raft voters id=host:port,... (1, 3 or 5; ids are node ids, the "
        "raft id is the position; empty: no leader)"),
    STR("raft-listen", raft_listen, NULL,
        "raft bind HOST:PORT (default: this node's address in --voters)"),
    NUM("raft-id", CONFIG_U32, raft_id, "0", 0, 5,
        "this node's raft id (0: its position in --voters by --node-id)"),
    STR("raft-dir", raft_dir, NULL,
        "raft log and snapshots (default "
        "<data>/raft)"),
    NUM("election-ms", CONFIG_U64, election_ms, "300", 50, 60000,
        "raft election timeout in ms (300: failover ~0.5 s on a LAN)"),
    NUM("raft-heartbeat-ms", CONFIG_U64, raft_heartbeat_ms, "30", 5, 10000,
        "raft heartbeat in ms (a tenth of election-ms)"),
    NUM("raft-watchdog-ms", CONFIG_U64, raft_watchdog_ms, "5000", 100, 3600000,
        "ms a barrier or proposal may wait before the leader "
        "reports LEADER-NOT-COMMITTING"),
};
#define CONFIG_N (sizeof(config_opts) / sizeof(config_opts[0]))

static const char *const config_sync_names[] = {"full", "normal", "off"};

static int
config_parse_u64(const char *s, uint64_t *out)
{
    char              *end;
    unsigned long long v;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Stores value into the option's field. Returns CADRE_EINVAL with a message
 * naming the option and the allowed values. */
static int
config_set(struct node_config *cfg, const struct config_opt *o,
           const char *value, cd_err *err)
{
    char    *base = (char *)cfg;
    uint64_t v;

    switch (o->type) {
    case CONFIG_STR:
        if (strlen(value) >= o->size)
            return cd_err_set(err, CADRE_EINVAL, "%s: value too long", o->name);
        memcpy(base + o->off, value, strlen(value) + 1);
        return CADRE_OK;
    case CONFIG_LIST: {
        size_t *n = (size_t *)(base + o->count);

        if (*n >= CONFIG_LIST_MAX || strlen(value) >= o->size)
            return cd_err_set(err, CADRE_EINVAL, "%s: too many or too long",
                              o->name);
        memcpy(base + o->off + *n * o->size, value, strlen(value) + 1);
        (*n)++;
        return CADRE_OK;
    }
    case CONFIG_SYNC:
        for (int i = 0; i < 3; i++) {
            if (strcmp(value, config_sync_names[i]) == 0) {
                *(int *)(base + o->off) = i;
                return CADRE_OK;
            }
        }
        return cd_err_set(err, CADRE_EINVAL,
                          "%s: '%s' is not one of full, normal, off", o->name,
                          value);
    case CONFIG_U32:
    case CONFIG_U64:
        if (config_parse_u64(value, &v) != 0 || v < o->min || v > o->max)
            return cd_err_set(err, CADRE_EINVAL,
                              "%s: '%s' is not a number in %llu..%llu", o->name,
                              value, (unsigned long long)o->min,
                              (unsigned long long)o->max);
        if (o->type == CONFIG_U32)
            *(uint32_t *)(base + o->off) = (uint32_t)v;
        else
            *(uint64_t *)(base + o->off) = v;
        return CADRE_OK;
    }
    return CADRE_EINTERNAL;
}

static const struct config_opt *
config_find(const char *name, size_t len)
{
    for (size_t i = 0; i < CONFIG_N; i++)
        if (strlen(config_opts[i].name) == len &&
            strncmp(config_opts[i].name, name, len) == 0)
            return &config_opts[i];
    return NULL;
}

static void
config_defaults(struct node_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < CONFIG_N; i++)
        if (config_opts[i].def != NULL)
            config_set(cfg, &config_opts[i], config_opts[i].def, NULL);
}

struct config_file_ctx {
    struct node_config *cfg;
    cd_err             *err;
    int                 failed;
};

/* A list of urls ("url, url" or "url url"): each one is one --peer. */
static int
config_add_peers(struct node_config *cfg, const char *value, cd_err *err)
{
    const struct config_opt *o = config_find("peer", 4);
    char                     one[CONFIG_STR_MAX];

    while (*value != '\0') {
        size_t len = strcspn(value, ", \t");

        if (len > 0 && len < sizeof(one)) {
            memcpy(one, value, len);
            one[len] = '\0';
            if (config_set(cfg, o, one, err) != CADRE_OK)
                return err != NULL ? err->code : CADRE_EINVAL;
        }
        value += len;
        value += strspn(value, ", \t");
    }
    return CADRE_OK;
}

/* `peers = url, url` in [cluster]. */
static int
config_ini_peers(struct config_file_ctx *ctx, const char *value)
{
    if (config_add_peers(ctx->cfg, value, ctx->err) != CADRE_OK) {
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

static int
config_ini_cb(void *user, const char *section, const char *name,
              const char *value)
{
    struct config_file_ctx  *ctx = user;
    const struct config_opt *o;

    if (strcmp(section, "cluster") == 0 && strcmp(name, "peers") == 0)
        return config_ini_peers(ctx, value);
    if (strcmp(section, "node") != 0 && strcmp(section, "cluster") != 0)
        return 1; /* other sections belong to later features */
    o = config_find(name, strlen(name));
    if (o == NULL) {
        cd_err_set(ctx->err, CADRE_ECONFIG, "unknown key '%s' in [%s]", name,
                   section);
        ctx->failed = 1;
        return 0;
    }
    if (config_set(ctx->cfg, o, value, ctx->err) != CADRE_OK) {
        ctx->failed = 1;
        return 0;
    }
    return 1;
}

static int
config_read_file(struct node_config *cfg, const char *path, cd_err *err)
{
    struct config_file_ctx ctx = {cfg, err, 0};
    int                    rc = ini_parse(path, config_ini_cb, &ctx);

    if (rc == -1)
        return cd_err_set(err, CADRE_ECONFIG, "config %s: cannot open: %s",
                          path, strerror(errno));
    if (rc != 0) {
        if (!ctx.failed)
            cd_err_set(err, CADRE_ECONFIG, "syntax error");
        err->code = CADRE_ECONFIG;
        return cd_err_wrap(err, "config %s:%d", path, rc);
    }
    return CADRE_OK;
}

static int
config_read_env(struct node_config *cfg, cd_err *err)
{
    char name[80];

    for (size_t i = 0; i < CONFIG_N; i++) {
        const struct config_opt *o = &config_opts[i];
        const char              *v;
        size_t                   j = 0;

        j = (size_t)snprintf(name, sizeof(name), "CADRE_");
        for (const char *p = o->name; *p && j + 1 < sizeof(name); p++)
            name[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        name[j] = '\0';
        v = getenv(name);
        if (v == NULL || v[0] == '\0')
            continue;
        /* Of the lists, only CADRE_PEER: urls split cleanly on commas,
         * exec commands and plugin paths may not. */
        if (o->type == CONFIG_LIST && strcmp(o->name, "peer") != 0)
            continue;
        if ((o->type == CONFIG_LIST ? config_add_peers(cfg, v, err)
                                    : config_set(cfg, o, v, err)) != CADRE_OK)
            return cd_err_wrap(err, "environment %s", name);
    }
    return CADRE_OK;
}

/* Finds --config (or CADRE_CONFIG) before the other flags are applied, so
 * that flags win over the file. */
static const char *
config_file_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return getenv("CADRE_CONFIG");
}

static int
config_read_flags(struct node_config *cfg, int argc, char **argv, int *help,
                  cd_err *err)
{
    for (int i = 1; i < argc; i++) {
        const char              *arg = argv[i];
        const char              *eq, *value;
        const struct config_opt *o;
        size_t                   len;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            return CADRE_OK;
        }
        if (strncmp(arg, "--", 2) != 0)
            return cd_err_set(err, CADRE_EUSAGE, "unexpected argument '%s'",
                              arg);
        arg += 2;
        eq = strchr(arg, '=');
        len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len == 6 && strncmp(arg, "config", 6) == 0) {
            i += eq ? 0 : 1;
            continue;
        }
        o = config_find(arg, len);
        if (o == NULL)
            return cd_err_set(err, CADRE_EUSAGE, "unknown flag '--%.*s'",
                              (int)len, arg);
        if (eq != NULL)
            value = eq + 1;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return cd_err_set(err, CADRE_EUSAGE, "flag '--%s' needs a value",
                              o->name);
        if (config_set(cfg, o, value, err) != CADRE_OK) {
            err->code = CADRE_EUSAGE;
            return cd_err_wrap(err, "flag");
        }
    }
    return CADRE_OK;
}

static int config_check_voters(struct node_config *cfg, cd_err *err);

int
config_load(struct node_config *cfg, int argc, char **argv, int *help,
            cd_err *err)
{
    const char *file = config_file_arg(argc, argv);
    int         rc;

    *help = 0;
    config_defaults(cfg);
    if (file != NULL) {
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", file);
        rc = config_read_file(cfg, file, err);
        if (rc != CADRE_OK)
            return rc;
    }
    rc = config_read_env(cfg, err);
    if (rc != CADRE_OK) {
        err->code = CADRE_ECONFIG;
        return CADRE_ECONFIG;
    }
    rc = config_read_flags(cfg, argc, argv, help, err);
    if (rc != CADRE_OK || *help)
        return rc;
    {
        char given[CONFIG_STR_MAX];

        snprintf(given, sizeof(given), "%s", cfg->data_dir);
        cd_data_dir(given[0] ? given : NULL, cfg->data_dir,
                    sizeof(cfg->data_dir));
    }
    if (cfg->node_id[0] == '\0' &&
        gethostname(cfg->node_id, sizeof(cfg->node_id) - 1) != 0)
        snprintf(cfg->node_id, sizeof(cfg->node_id), "node");
    if (cfg->heartbeat_ms >= cfg->suspect_ms || cfg->suspect_ms >= cfg->dead_ms)
        return cd_err_set(err, CADRE_EUSAGE,
                          "heartbeat-ms (%llu) < suspect-ms (%llu) < dead-ms "
                          "(%llu) must hold",
                          (unsigned long long)cfg->heartbeat_ms,
                          (unsigned long long)cfg->suspect_ms,
                          (unsigned long long)cfg->dead_ms);
    return config_check_voters(cfg, err);
}

/* --voters: parsed, our node id among them, --raft-id consistent. */
static int
config_check_voters(struct node_config *cfg, cd_err *err)
{
    struct leader_voter vs[LEADER_VOTERS_MAX];
    size_t              n = 0;
    uint32_t            pos = 0;

    if (cfg->voters[0] == '\0')
        return CADRE_OK;
    if (leader_parse_voters(cfg->voters, vs, LEADER_VOTERS_MAX, &n, err) !=
        CADRE_OK) {
        err->code = CADRE_EUSAGE;
        return CADRE_EUSAGE;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(vs[i].node_id, cfg->node_id) == 0)
            pos = (uint32_t)(i + 1);
    if (pos == 0)
        return cd_err_set(err, CADRE_EUSAGE,
                          "voters: node id '%s' is not among them",
                          cfg->node_id);
    if (cfg->raft_id != 0 && cfg->raft_id != pos)
        return cd_err_set(err, CADRE_EUSAGE,
                          "raft-id %u: node '%s' is voter %u in --voters",
                          cfg->raft_id, cfg->node_id, pos);
    cfg->raft_id = pos;
    if (cfg->raft_heartbeat_ms * 2 > cfg->election_ms)
        return cd_err_set(err, CADRE_EUSAGE,
                          "raft-heartbeat-ms (%llu) must be at most half of "
                          "election-ms (%llu)",
                          (unsigned long long)cfg->raft_heartbeat_ms,
                          (unsigned long long)cfg->election_ms);
    return CADRE_OK;
}

void
config_usage(FILE *f)
{
    fprintf(f, "usage: cadre node [--config FILE] [FLAGS]\n\n"
               "Runs a node: stores jobs durably, hands them to workers, "
               "supervises --workers N worker processes.\n"
               "Each flag is also a [node] key in the config file and a "
               "CADRE_* variable.\n\nflags:\n");
    fprintf(f, "  --%-16s %s\n", "config FILE", "INI config file");
    for (size_t i = 0; i < CONFIG_N; i++) {
        const struct config_opt *o = &config_opts[i];

        fprintf(f, "  --%-16s %s", o->name, o->help);
        if (o->def != NULL)
            fprintf(f, " [%s]", o->def);
        fputc('\n', f);
    }
}

void
config_dump(const struct node_config *cfg, FILE *f)
{
    const char *base = (const char *)cfg;

    fprintf(f, "[node]\n");
    for (size_t i = 0; i < CONFIG_N; i++) {
        const struct config_opt *o = &config_opts[i];

        switch (o->type) {
        case CONFIG_STR:
            fprintf(f, "%s = %s\n", o->name, base + o->off);
            break;
        case CONFIG_LIST: {
            size_t n = *(const size_t *)(base + o->count);

            for (size_t j = 0; j < n; j++)
                fprintf(f, "%s = %s\n", o->name, base + o->off + j * o->size);
            break;
        }
        case CONFIG_SYNC:
            fprintf(f, "%s = %s\n", o->name,
                    config_sync_names[*(const int *)(base + o->off)]);
            break;
        case CONFIG_U32:
            fprintf(f, "%s = %u\n", o->name,
                    *(const uint32_t *)(base + o->off));
            break;
        case CONFIG_U64:
            fprintf(f, "%s = %llu\n", o->name,
                    (unsigned long long)*(const uint64_t *)(base + o->off));
            break;
        }
    }
}
