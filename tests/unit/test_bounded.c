/* test_bounded.c: cd_run_bounded returns when the call does, or at the
 * timeout while the call goes on alone with its own copy of the argument. */
#include <stdatomic.h>
#include <string.h>

#include "common/bounded.h"
#include "common/clock.h"
#include "tests/lib/tap.h"

static atomic_int finished;

struct call {
    unsigned sleep_ms;
    int      value;
};

static void
slow(void *arg)
{
    struct call *c = arg;

    cd_sleep_ms(c->sleep_ms);
    atomic_store(&finished, c->value);
}

TEST(a_quick_call_finishes_in_time)
{
    struct call c = {.sleep_ms = 0, .value = 7};

    atomic_store(&finished, 0);
    CHECK_EQ(cd_run_bounded(slow, &c, sizeof(c), 2000), 1);
    CHECK_EQ(atomic_load(&finished), 7);
}

TEST(a_stuck_call_is_given_up_on)
{
    struct call c = {.sleep_ms = 400, .value = 9};
    uint64_t    t0 = cd_mono_ms();

    atomic_store(&finished, 0);
    CHECK_EQ(cd_run_bounded(slow, &c, sizeof(c), 50), 0);
    CHECK(cd_mono_ms() - t0 < 300);
    memset(&c, 0, sizeof(c)); /* the thread has its own copy */
    CHECK_EQ(atomic_load(&finished), 0);
    for (int i = 0; i < 100 && atomic_load(&finished) == 0; i++)
        cd_sleep_ms(20);
    CHECK_EQ(atomic_load(&finished), 9);
}

int
main(void)
{
    TAP_RUN(T(a_quick_call_finishes_in_time), T(a_stuck_call_is_given_up_on));
}
