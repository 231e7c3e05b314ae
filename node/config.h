/* config.h: the node's options, from one declarative table (STYLE.md 22):
 * each entry is a `--flag`, a `CADRE_*` environment variable and a key of the
 * config file's [node] section, with its type, default, range and help.
 * Precedence: defaults < config file < environment < flags. Modules receive
 * a const struct node_config. */
#ifndef NODE_CONFIG_H
#define NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

#define CONFIG_LIST_MAX 16
#define CONFIG_STR_MAX 1024

struct node_config {
    char     config_file[CONFIG_STR_MAX];
    char     data_dir[CONFIG_STR_MAX];
    char     node_id[64];
    char     listen[CONFIG_STR_MAX];
    char     events_listen[CONFIG_STR_MAX]; /* "": derived from listen */
    char     key_file[CONFIG_STR_MAX];
    char     tls_cert[CONFIG_STR_MAX];
    char     tls_ca[CONFIG_STR_MAX];
    int      sync; /* enum store_sync */
    uint32_t workers;
    char     plugins[CONFIG_LIST_MAX][CONFIG_STR_MAX];
    size_t   plugins_n;
    char     execs[CONFIG_LIST_MAX][CONFIG_STR_MAX];
    size_t   execs_n;
    char     queues[CONFIG_STR_MAX]; /* comma-separated, for its workers */
    uint32_t prefetch;
    uint64_t retry_after_ms;
    uint32_t tries;
    uint64_t max_payload;
    uint64_t max_frame;
    uint64_t map_size_mb;
    uint64_t result_ttl_ms;
    uint64_t shutdown_grace_ms;
    /* cluster (node/cluster.h) */
    char     peer_listen[CONFIG_STR_MAX]; /* "": derived from listen */
    char     peers[CONFIG_LIST_MAX][CONFIG_STR_MAX]; /* seeds: peer urls */
    size_t   peers_n;
    uint64_t heartbeat_ms;
    uint64_t suspect_ms;
    uint64_t dead_ms;
    uint32_t steal_max; /* jobs per steal; 0: never steal */
    uint64_t lend_ms;   /* a loan not settled by then returns */
    uint64_t replay_skew_ms;
    /* leader (node/leader.h); voters "" = no raft at all */
    char     voters[CONFIG_STR_MAX];      /* id=host:port,... */
    char     raft_listen[CONFIG_STR_MAX]; /* "": our address in voters */
    uint32_t raft_id;                     /* 0: our position in voters */
    char     raft_dir[CONFIG_STR_MAX];    /* "": <data>/raft */
    uint64_t election_ms;
    uint64_t raft_heartbeat_ms;
    uint64_t raft_watchdog_ms;
};

/* Fills cfg from defaults, then the config file (--config or CADRE_CONFIG),
 * then CADRE_* variables, then argv (argv[0] is the subcommand name).
 * Returns CADRE_OK, CADRE_USAGE (bad flag or value; message says which) or
 * CADRE_ECONFIG (unreadable or invalid config file, with file:line).
 * *help is set when --help was given (cfg is then unspecified). */
int config_load(struct node_config *cfg, int argc, char **argv, int *help,
                cd_err *err);
/* Prints the flags with types, defaults and help. */
void config_usage(FILE *f);
/* Prints the effective configuration as a config file (`config dump`). */
void config_dump(const struct node_config *cfg, FILE *f);

#endif
