/* alloc.c: libc allocation behind a fault hook (like raft_heap, beanstalkd
 * falloc). The hook costs one relaxed atomic load when off. */
#include "common/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long alloc_budget = -1;

static int
alloc_fail(void)
{
    long b = atomic_load_explicit(&alloc_budget, memory_order_relaxed);

    if (b < 0)
        return 0;
    if (b == 0)
        return 1;
    atomic_fetch_sub(&alloc_budget, 1);
    return 0;
}

void
cd_alloc_fail_after(long n)
{
    atomic_store(&alloc_budget, n);
}

void *
cd_malloc(size_t n)
{
    return alloc_fail() ? NULL : malloc(n == 0 ? 1 : n);
}

void *
cd_calloc(size_t count, size_t n)
{
    return alloc_fail() ? NULL : calloc(count == 0 ? 1 : count, n == 0 ? 1 : n);
}

void *
cd_realloc(void *p, size_t n)
{
    return alloc_fail() ? NULL : realloc(p, n == 0 ? 1 : n);
}

void *
cd_memdup(const void *p, size_t n)
{
    void *q = cd_malloc(n);

    if (q != NULL && n > 0)
        memcpy(q, p, n);
    return q;
}

char *
cd_strndup(const char *s, size_t n)
{
    char *q = cd_malloc(n + 1);

    if (q == NULL)
        return NULL;
    memcpy(q, s, n);
    q[n] = '\0';
    return q;
}

char *
cd_strdup(const char *s)
{
    return s == NULL ? NULL : cd_strndup(s, strlen(s));
}

void
cd_free(void *p)
{
    free(p);
}
