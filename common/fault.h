/* fault.h: fault hooks for the crash tests (notes/faults.md, §3.2).
 * CADRE_FAULT=<point>:<n> makes the process SIGKILL itself the n-th time it
 * passes the named point (n >= 1), so a test can crash a node between two
 * steps that no outside kill could hit reliably, e.g. after a schedule
 * slot's held job committed and before its DONE is proposed.
 * <point>:<n>:term sends SIGTERM instead: a graceful stop at that point.
 *
 * Compiled in only with -DCADRE_FAULTS=ON (the default for test builds; a
 * release build turns it off and cd_fault compiles to nothing). Points
 * are named <module>_<when>: sched_after_claim, sched_after_hold,
 * sched_after_done. Any thread; the count is not atomic (one thread per
 * point). */
#ifndef CD_FAULT_H
#define CD_FAULT_H

#ifdef CADRE_FAULTS
void cd_fault(const char *point);
#else
static inline void
cd_fault(const char *point)
{
    (void)point;
}
#endif

#endif
