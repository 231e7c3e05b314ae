/* test_config.c: the option table: defaults, file, environment, flags, and
 * the errors for each. */
#include <stdio.h>
#include <stdlib.h>

#include "common/path.h"
#include "node/config.h"
#include "store/store.h"
#include "tests/lib/tap.h"

static struct node_config cfg;

static int
load(int argc, char **argv, cd_err *err)
{
    int help = 0;

    return config_load(&cfg, argc, argv, &help, err);
}

TEST(events_url_is_derived_from_the_api_url)
{
    char url[64];

    CHECK_EQ(cd_events_url_from("tcp://127.0.0.1:7700", url, sizeof(url)),
             CADRE_OK);
    CHECK_STR(url, "tcp://127.0.0.1:7702");
    CHECK_EQ(cd_events_url_from("tcp://127.0.0.1:0", url, sizeof(url)),
             CADRE_OK);
    CHECK_STR(url, "tcp://127.0.0.1:0");
    CHECK_EQ(cd_events_url_from("tcp://[::1]:9000", url, sizeof(url)),
             CADRE_OK);
    CHECK_STR(url, "tcp://[::1]:9002");
    CHECK_EQ(cd_events_url_from("ipc:///tmp/c.sock", url, sizeof(url)),
             CADRE_OK);
    CHECK_STR(url, "ipc:///tmp/c.sock.events");
    CHECK_EQ(cd_events_url_from("tcp://host", url, sizeof(url)), CADRE_EINVAL);
    CHECK_EQ(cd_events_url_from("tcp://h:x", url, sizeof(url)), CADRE_EINVAL);
    CHECK_EQ(cd_events_url_from("tcp://h:65534", url, sizeof(url)),
             CADRE_EINVAL);
    CHECK_EQ(cd_events_url_from("tcp://127.0.0.1:7700", url, 8), CADRE_ETOOBIG);
    CHECK_EQ(cd_events_url("tcp://a:1", "tcp://b:7700", url, sizeof(url)),
             CADRE_OK);
    CHECK_STR(url, "tcp://a:1");
    unsetenv("CADRE_EVENTS_URL");
    unsetenv("CADRE_URL");
    CHECK_EQ(cd_events_url(NULL, "tcp://b:7700", url, sizeof(url)), CADRE_OK);
    CHECK_STR(url, "tcp://b:7702");
    CHECK_EQ(cd_events_url(NULL, NULL, url, sizeof(url)), CADRE_OK);
    CHECK_STR(url, "tcp://127.0.0.1:7702");
}

TEST(defaults)
{
    char  *argv[] = {"node"};
    cd_err err = {0};

    unsetenv("CADRE_WORKERS");
    REQUIRE_EQ(load(1, argv, &err), CADRE_OK);
    CHECK_STR(cfg.listen, "tcp://127.0.0.1:7700");
    CHECK_EQ(cfg.sync, STORE_SYNC_FULL);
    CHECK_EQ(cfg.retry_after_ms, 90000);
    CHECK_EQ(cfg.workers, 0);
    CHECK_EQ(cfg.max_frame, 16777216);
}

TEST(flags_env_and_file_in_order)
{
    char   path[600];
    FILE  *f;
    cd_err err = {0};
    char  *argv[] = {"node",     "--config", path,       "--workers=3",
                     "--plugin", "a.so",     "--plugin", "b.so"};

    snprintf(path, sizeof(path), "%s/cadre.conf", tap_tmpdir());
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "[node]\nworkers = 9\nsync = normal\nprefetch = 4\n"
               "[schedule \"later\"]\ncron = * * * * *\n");
    fclose(f);
    setenv("CADRE_PREFETCH", "16", 1);
    REQUIRE_EQ(load(8, argv, &err), CADRE_OK);
    CHECK_EQ(cfg.workers, 3);              /* flag beats file */
    CHECK_EQ(cfg.sync, STORE_SYNC_NORMAL); /* file beats default */
    CHECK_EQ(cfg.prefetch, 16);            /* env beats file */
    CHECK_EQ(cfg.plugins_n, 2);
    CHECK_STR(cfg.plugins[1], "b.so");
    unsetenv("CADRE_PREFETCH");
}

TEST(bad_values_are_usage_errors)
{
    cd_err err = {0};
    char  *a1[] = {"node", "--sync", "sometimes"};
    char  *a2[] = {"node", "--workers", "-1"};
    char  *a3[] = {"node", "--nope"};
    char  *a4[] = {"node", "--workers"};

    CHECK_EQ(load(3, a1, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "full, normal, off");
    CHECK_EQ(load(3, a2, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "workers");
    CHECK_EQ(load(2, a3, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "--nope");
    CHECK_EQ(load(2, a4, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "needs a value");
}

TEST(corrupt_config_file_names_file_and_line)
{
    char   path[600];
    FILE  *f;
    cd_err err = {0};
    char  *argv[] = {"node", "--config", path};

    snprintf(path, sizeof(path), "%s/bad.conf", tap_tmpdir());
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "[node]\nworkers = 2\nretry-after = soon\n");
    fclose(f);
    CHECK_EQ(load(3, argv, &err), CADRE_ECONFIG);
    CHECK_CONTAINS(err.msg, "bad.conf:3");
    CHECK_CONTAINS(err.msg, "retry-after");

    f = fopen(path, "w");
    fprintf(f, "[node]\nthis is not ini\n");
    fclose(f);
    CHECK_EQ(load(3, argv, &err), CADRE_ECONFIG);
    CHECK_CONTAINS(err.msg, "bad.conf:2");

    f = fopen(path, "w");
    fprintf(f, "[node]\ncolour = blue\n");
    fclose(f);
    CHECK_EQ(load(3, argv, &err), CADRE_ECONFIG);
    CHECK_CONTAINS(err.msg, "unknown key 'colour'");

    snprintf(path, sizeof(path), "/nonexistent/cadre.conf");
    CHECK_EQ(load(3, argv, &err), CADRE_ECONFIG);
    CHECK_CONTAINS(err.msg, "cannot open");
}

/* Peers: repeated --peer, `peers =` in [cluster] (commas), CADRE_PEER;
 * cluster timings must be ordered. */
TEST(peers_from_flags_file_and_env)
{
    char   path[600];
    FILE  *f;
    cd_err err = {0};
    char  *a1[] = {"node", "--config", path, "--peer", "tcp://10.0.0.9:7701"};
    char  *a2[] = {"node"};
    char  *a3[] = {"node", "--heartbeat-ms", "2000"};

    snprintf(path, sizeof(path), "%s/cluster.conf", tap_tmpdir());
    f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "[cluster]\npeers = tcp://10.0.0.1:7701, tcp://10.0.0.2:7701\n"
               "dead-ms = 9000\n");
    fclose(f);
    REQUIRE_EQ(load(5, a1, &err), CADRE_OK);
    REQUIRE_EQ(cfg.peers_n, 3);
    CHECK_STR(cfg.peers[0], "tcp://10.0.0.1:7701");
    CHECK_STR(cfg.peers[1], "tcp://10.0.0.2:7701");
    CHECK_STR(cfg.peers[2], "tcp://10.0.0.9:7701");
    CHECK_EQ(cfg.dead_ms, 9000); /* [cluster] takes the node keys too */

    setenv("CADRE_PEER", "tcp://10.0.0.3:7701,tcp://10.0.0.4:7701", 1);
    REQUIRE_EQ(load(1, a2, &err), CADRE_OK);
    REQUIRE_EQ(cfg.peers_n, 2);
    CHECK_STR(cfg.peers[1], "tcp://10.0.0.4:7701");
    unsetenv("CADRE_PEER");

    CHECK_EQ(load(3, a3, &err), CADRE_EUSAGE); /* 2000 >= suspect 1500 */
    CHECK_CONTAINS(err.msg, "suspect-ms");
}

TEST(voters_are_validated)
{
    cd_err err = {0};
    char   v3[] = "a=127.0.0.1:7703,b=127.0.0.1:7713,c=127.0.0.1:7723";
    char  *ok[] = {"node", "--node-id", "b", "--voters", v3};
    char  *none[] = {"node", "--node-id", "z", "--voters", v3};
    char  *id[] = {"node", "--node-id", "b", "--voters", v3, "--raft-id", "3"};
    char  *two[] = {"node", "--node-id", "a", "--voters",
                    "a=127.0.0.1:1,b=127.0.0.1:2"};
    char  *bad[] = {"node", "--node-id", "a", "--voters",
                    "a=127.0.0.1:1,b=127.0.0.1,c=127.0.0.1:3"};
    char  *dup[] = {"node", "--node-id", "a", "--voters",
                    "a=127.0.0.1:1,a=127.0.0.1:2,c=127.0.0.1:3"};
    char  *hb[] = {"node", "--node-id",     "b",   "--voters",
                   v3,     "--election-ms", "100", "--raft-heartbeat-ms",
                   "60"};
    char  *one[] = {"node", "--node-id", "a", "--voters", "a=127.0.0.1:9"};

    REQUIRE_EQ(load(1, ok, &err), CADRE_OK);
    CHECK_STR(cfg.voters, ""); /* the default: no leader */
    CHECK_EQ(cfg.election_ms, 300);
    CHECK_EQ(cfg.raft_heartbeat_ms, 30);
    REQUIRE_EQ(load(5, ok, &err), CADRE_OK);
    CHECK_EQ(cfg.raft_id, 2); /* its position */
    CHECK_EQ(load(5, none, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "'z' is not among them");
    CHECK_EQ(load(7, id, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "raft-id 3");
    CHECK_EQ(load(5, two, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "3 or 5");
    CHECK_EQ(load(5, bad, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "host:port");
    CHECK_EQ(load(5, dup, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "twice");
    CHECK_EQ(load(9, hb, &err), CADRE_EUSAGE);
    CHECK_CONTAINS(err.msg, "half of election-ms");
    REQUIRE_EQ(load(5, one, &err), CADRE_OK); /* one voter: development */
    CHECK_EQ(cfg.raft_id, 1);
    setenv("CADRE_VOTERS", "a=10.0.0.1:7703, b=10.0.0.2:7703,  c=[::1]:7703",
           1);
    REQUIRE_EQ(load(3, (char *[]){"node", "--node-id", "c"}, &err), CADRE_OK);
    CHECK_EQ(cfg.raft_id, 3);
    unsetenv("CADRE_VOTERS");
}

int
main(void)
{
    TAP_RUN(T(events_url_is_derived_from_the_api_url), T(defaults),
            T(flags_env_and_file_in_order), T(bad_values_are_usage_errors),
            T(corrupt_config_file_names_file_and_line),
            T(peers_from_flags_file_and_env), T(voters_are_validated));
}
