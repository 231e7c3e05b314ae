/* fault.c: CADRE_FAULT (fault.h). */
#include "common/fault.h"

#ifdef CADRE_FAULTS
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

/* Passes of the configured point so far: test-only state, the one mutable
 * global here besides the logger's. */
static unsigned long fault_hits;

void
cd_fault(const char *point)
{
    const char   *spec = getenv("CADRE_FAULT");
    size_t        len = strlen(point);
    unsigned long n;
    char         *end;
    int           term;

    if (spec == NULL || strncmp(spec, point, len) != 0 || spec[len] != ':')
        return;
    n = strtoul(spec + len + 1, &end, 10);
    term = strcmp(end, ":term") == 0;
    if (++fault_hits != n)
        return;
    CD_LOG_WARN("fault", "FAULT", "point=%s hit=%lu: %s", point, n,
                term ? "SIGTERM" : "SIGKILL");
    kill(getpid(), term ? SIGTERM : SIGKILL);
}
#endif
