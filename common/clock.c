/* clock.c: clock_gettime wrappers and the test offset hook. */
#include "common/clock.h"

#include <stdlib.h>
#include <time.h>

static int64_t
clock_offset_ms(void)
{
    static int     loaded;
    static int64_t offset;

    if (!loaded) {
        const char *env = getenv("CADRE_TEST_CLOCK_OFFSET_MS");

        offset = env != NULL ? strtoll(env, NULL, 10) : 0;
        loaded = 1;
    }
    return offset;
}

uint64_t
cd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
                      clock_offset_ms());
}

uint64_t
cd_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
cd_mono_ms(void)
{
    return cd_mono_us() / 1000u;
}

void
cd_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
                          .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}
