/* fsync_rate.c: the disk's raw durable-write rate, the yardstick for
 * bench/compare.sh. Overwrites 4 KiB blocks of a preallocated file in DIR
 * and calls fdatasync after each, for SECONDS (default 2), then prints
 *
 *   fsync fdatasync dir=DIR rate=5000
 *
 * Usage: fsync_rate [DIR] [SECONDS]. The file is removed afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FSYNC_RATE_BLOCK 4096
#define FSYNC_RATE_BLOCKS 256

static double
fsync_rate_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    double      seconds = argc > 2 ? atof(argv[2]) : 2.0;
    char        path[4096], block[FSYNC_RATE_BLOCK];
    double      t0, t;
    long        n = 0;
    int         fd;

    if (seconds <= 0)
        seconds = 2.0;
    snprintf(path, sizeof(path), "%s/fsync_rate.%d.tmp", dir, (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "fsync_rate: open %s: %s\n", path, strerror(errno));
        return 1;
    }
    unlink(path);
    memset(block, 'x', sizeof(block));
    /* Allocate and sync the whole file first, so that each fdatasync below
     * has data to write but no metadata. */
    for (int i = 0; i < FSYNC_RATE_BLOCKS; i++) {
        if (pwrite(fd, block, sizeof(block), (off_t)i * FSYNC_RATE_BLOCK) !=
            (ssize_t)sizeof(block)) {
            fprintf(stderr, "fsync_rate: write: %s\n", strerror(errno));
            return 1;
        }
    }
    fsync(fd);
    t0 = fsync_rate_now_s();
    do {
        block[0] = (char)n;
        if (pwrite(fd, block, sizeof(block),
                   (off_t)(n % FSYNC_RATE_BLOCKS) * FSYNC_RATE_BLOCK) !=
                (ssize_t)sizeof(block) ||
            fdatasync(fd) != 0) {
            fprintf(stderr, "fsync_rate: write+fdatasync: %s\n",
                    strerror(errno));
            return 1;
        }
        n++;
        t = fsync_rate_now_s();
    } while (t - t0 < seconds);
    close(fd);
    printf("fsync fdatasync dir=%s rate=%.0f\n", dir, (double)n / (t - t0));
    return 0;
}
