/* alloc.h: the one allocator, with a fault hook so tests can fail the Nth
 * allocation (cd_alloc_fail_after). Every free accepts NULL. Thread-safe. */
#ifndef CD_ALLOC_H
#define CD_ALLOC_H

#include <stddef.h>

void *cd_malloc(size_t n);
void *cd_calloc(size_t count, size_t n);
void *cd_realloc(void *p, size_t n);
char *cd_strdup(const char *s);
char *cd_strndup(const char *s, size_t n);
void *cd_memdup(const void *p, size_t n);
void  cd_free(void *p);

/* Tests: after n more successful allocations, every allocation fails
 * (returns NULL). n < 0 turns the hook off. */
void cd_alloc_fail_after(long n);

#endif
