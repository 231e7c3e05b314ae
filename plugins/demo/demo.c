/* demo.c: the demo plugin shipped for the README, tests and benches: echo,
 * sleep, fail, sha256, noop and ledger (the "what ran" record of the
 * nothing-lost tests). Load with `cadre worker --plugin demo.so`. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cadre/task.h"

const unsigned cadre_plugin_abi = CADRE_TASK_ABI_VERSION;

/* echo: the result is the payload. */
static int
demo_echo(cadre_task *t, void *arg)
{
    size_t      len;
    const void *p = cadre_task_payload(t, &len);

    return cadre_task_result(t, p, len);
}

/* Parses a payload of decimal digits (at most 18 of them). */
static int
demo_parse_u64(const cadre_task *t, uint64_t *out)
{
    size_t      len;
    const char *p = cadre_task_payload(t, &len);
    uint64_t    v = 0;

    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

/* sleep: the payload is a number of milliseconds; the whole time is slept even
 * if signals arrive (a stopping worker finishes its current job). */
static int
demo_sleep(cadre_task *t, void *arg)
{
    uint64_t        ms;
    struct timespec ts;
    char            out[48];
    int             n;

    if (demo_parse_u64(t, &ms) != 0)
        return cadre_task_error(t, "DemoError",
                                "sleep: payload is not a number of ms");
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    n = snprintf(out, sizeof(out), "slept %" PRIu64, ms);
    return cadre_task_result(t, out, (size_t)n);
}

/* fail: an attempt error whose message is the payload. */
static int
demo_fail(cadre_task *t, void *arg)
{
    size_t      len;
    const char *p = cadre_task_payload(t, &len);

    if (len > INT_MAX)
        len = INT_MAX;
    return cadre_task_error(t, "DemoError", "%.*s", (int)len, p);
}

/* sha256: the lowercase hex digest of the payload. */
static int
demo_sha256(cadre_task *t, void *arg)
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    char          hex[2 * crypto_hash_sha256_BYTES + 1];
    size_t        len;
    const void   *p = cadre_task_payload(t, &len);

    crypto_hash_sha256(digest, p, len);
    sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
    return cadre_task_result(t, hex, 2 * crypto_hash_sha256_BYTES);
}

/* noop: success with an empty result (measures the worker itself). */
static int
demo_noop(cadre_task *t, void *arg)
{
    return CADRE_OK;
}

/* ledger: appends "<job uuid> <attempt> <pid> <unix ms>\n" to the file named
 * by the payload, synced before the job reports success, so a checker can
 * count what ran against what was acknowledged. */
static int
demo_ledger(cadre_task *t, void *arg)
{
    char           path[PATH_MAX];
    char           line[128];
    size_t         len;
    const char    *p = cadre_task_payload(t, &len);
    struct timeval tv;
    int            fd, n, rc;

    if (len == 0 || len >= sizeof(path) || memchr(p, '\0', len) != NULL)
        return cadre_task_error(t, "DemoError",
                                "ledger: payload is not a file path");
    memcpy(path, p, len);
    path[len] = '\0';
    gettimeofday(&tv, NULL);
    n = snprintf(line, sizeof(line), "%s %" PRIu32 " %ld %" PRIu64 "\n",
                 cadre_task_id(t), cadre_task_attempt(t), (long)getpid(),
                 (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cadre_task_error(t, "DemoError", "ledger: open %s: %s", path,
                                strerror(errno));
    /* One write of one short line: O_APPEND keeps lines of concurrent
     * workers whole. */
    if (write(fd, line, (size_t)n) != n)
        rc = cadre_task_error(t, "DemoError", "ledger: write %s: %s", path,
                              strerror(errno));
    else if (fsync(fd) != 0)
        rc = cadre_task_error(t, "DemoError", "ledger: fsync %s: %s", path,
                              strerror(errno));
    else
        rc = cadre_task_result(t, "ok", 2);
    close(fd);
    return rc;
}

int
cadre_plugin_init(cadre_registry *reg)
{
    static const struct {
        const char      *name;
        cadre_handler_fn fn;
    } tasks[] = {
        {"echo", demo_echo},     {"sleep", demo_sleep}, {"fail", demo_fail},
        {"sha256", demo_sha256}, {"noop", demo_noop},   {"ledger", demo_ledger},
    };

    if (sodium_init() < 0)
        return CADRE_EINTERNAL;
    for (size_t i = 0; i < sizeof(tasks) / sizeof(tasks[0]); i++) {
        int rc = cadre_registry_add(reg, tasks[i].name, tasks[i].fn, NULL);

        if (rc != CADRE_OK)
            return rc;
    }
    return CADRE_OK;
}
