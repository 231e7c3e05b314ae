/* tap.c: the runner behind tap.h. */
#include "tests/lib/tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tap_failures;

static char        tap_dir[256];
static const char *tap_current;

void
tap_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    tap_failures++;
    fprintf(stderr, "  FAIL %s (%s:%d): ", tap_current, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
tap_cleanup(void)
{
    char        cmd[300];
    const char *keep = getenv("TAP_KEEP");

    if (tap_dir[0] == '\0' || (keep != NULL && strcmp(keep, "1") == 0))
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tap_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "tap: could not remove %s\n", tap_dir);
    tap_dir[0] = '\0';
}

const char *
tap_tmpdir(void)
{
    tap_cleanup();
    snprintf(tap_dir, sizeof(tap_dir), "/tmp/cadre-test-XXXXXX");
    if (mkdtemp(tap_dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    return tap_dir;
}

int
tap_run(const struct tap_test *tests, int n)
{
    const char *filter = getenv("TAP_FILTER");
    int         passed = 0, failed = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n; i++) {
        if (filter != NULL && strstr(tests[i].name, filter) == NULL)
            continue;
        tap_current = tests[i].name;
        tap_failures = 0;
        printf("# %s\n", tests[i].name);
        tests[i].fn();
        tap_cleanup();
        if (tap_failures == 0) {
            printf("ok %d %s\n", i + 1, tests[i].name);
            passed++;
        } else {
            printf("not ok %d %s\n", i + 1, tests[i].name);
            failed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
