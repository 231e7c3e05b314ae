/* tap.h: a tiny test runner. Each test file defines tests with TEST(name) and
 * lists them in main via tap_run. Checks record failures and go on; a
 * REQUIRE stops the current test. The summary line is "N passed, M failed". */
#ifndef TESTS_TAP_H
#define TESTS_TAP_H

#include <stdint.h>
#include <string.h>

struct tap_test {
    const char *name;
    void (*fn)(void);
};

extern int tap_failures; /* failures in the current test */

void tap_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Runs tests; returns the exit status for main (0 if all passed). Runs only
 * tests whose name contains $TAP_FILTER when set. */
int tap_run(const struct tap_test *tests, int n);
/* A fresh temp dir for this test (removed at exit unless TAP_KEEP=1). */
const char *tap_tmpdir(void);

#define TEST(name) static void name(void)
#define T(name)                                                                \
    {                                                                          \
#name, name                                                            \
    }
#define TAP_RUN(...)                                                           \
    do {                                                                       \
        static const struct tap_test tests_[] = {__VA_ARGS__};                 \
        return tap_run(tests_, (int)(sizeof(tests_) / sizeof(tests_[0])));     \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            tap_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                  \
    } while (0)
#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            tap_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                \
            return;                                                            \
        }                                                                      \
    } while (0)
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_)                                                          \
            tap_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, \
                     b_);                                                      \
    } while (0)
#define REQUIRE_EQ(a, b)                                                       \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            tap_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, \
                     b_);                                                      \
            return;                                                            \
        }                                                                      \
    } while (0)
#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *a_ = (a), *b_ = (b);                                       \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0)                   \
            tap_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                     a_ ? a_ : "(null)", b_ ? b_ : "(null)");                  \
    } while (0)
#define CHECK_CONTAINS(hay, needle)                                            \
    do {                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                \
        if (h_ == NULL || strstr(h_, n_) == NULL)                              \
            tap_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"",     \
                     h_ ? h_ : "(null)", n_);                                  \
    } while (0)

#endif
