/* clock.h: time. Wall time (Unix ms) honours CADRE_TEST_CLOCK_OFFSET_MS so
 * tests can skew one process deterministically; monotonic time does not. */
#ifndef CD_CLOCK_H
#define CD_CLOCK_H

#include <stdint.h>

uint64_t cd_now_ms(void);  /* Unix ms, plus the test offset */
uint64_t cd_mono_ms(void); /* CLOCK_MONOTONIC ms */
uint64_t cd_mono_us(void); /* CLOCK_MONOTONIC µs */
void     cd_sleep_ms(uint64_t ms);

#endif
