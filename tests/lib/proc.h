/* proc.h: the process harness of the integration tests. It starts real
 * processes (`cadre node`, `cadre worker`, the CLI, /bin/sh), captures their
 * output, waits for readiness lines and exit, signals only the PIDs it started
 * and kills whatever is still running at exit. It also reads the ledger the
 * demo plugin's `ledger` task writes and checks it against the jobs a client
 * saw acknowledged (../shared/notes/faults.md, section 1).
 *
 * It does not know the node's protocol: tests talk to nodes through libcadre
 * (cadre_client_opts from node_client_opts) and through proc_run_cli.
 *
 * Errors: functions returning int return CADRE_OK or a cadre_error code and
 * print the detail to stderr with a "proc:" prefix.
 *
 * Threads: a struct proc belongs to the thread that started it (the test's
 * main thread in practice). Children are started with PR_SET_PDEATHSIG, so
 * they are killed if the starting *thread* exits: start processes from a
 * thread that outlives them. Each started process leads its own process
 * group, so that stopping a node also reaps the workers it spawned.
 */
#ifndef TESTS_LIB_PROC_H
#define TESTS_LIB_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cadre/cadre.h"

/* Timeouts used by the convenience wrappers. */
#define PROC_STOP_GRACE_MS 10000  /* proc_stop: SIGTERM, then SIGKILL */
#define PROC_NODE_READY_MS 15000  /* node_start: readiness line */
#define PROC_RUN_TIMEOUT_MS 60000 /* proc_run_cli */

struct proc_slot; /* private: reader thread, captured lines, registry entry */

/* A started process. Zero it before the first proc_start; it may be reused
 * for another proc_start once the previous process has exited. */
struct proc {
    pid_t             pid;      /* > 0 once started; kept after exit */
    bool              exited;   /* reaped; status is valid */
    int               status;   /* exit code, or -signal */
    char              name[64]; /* basename of argv[0], for messages */
    char              log_path[PATH_MAX]; /* "" if none */
    struct proc_slot *slot;
};

/* Starts argv (argv[0] is looked up in PATH if it has no '/'). stdin is
 * /dev/null; stdout goes to a pipe that a harness thread drains into memory
 * (for proc_wait_line) and appends to log_path; stderr is appended to
 * log_path directly. log_path NULL: stderr is inherited and stdout is only
 * captured. The environment is inherited.
 * Returns CADRE_EINVAL if p is still running, CADRE_EIO if the log cannot be
 * opened or fork fails. An exec failure shows as exit status 127. */
int proc_start(struct proc *p, char *const argv[], const char *log_path);

/* As proc_start, with env_extra ("NAME=value" strings, NULL-terminated; may
 * be NULL) added to the inherited environment, overriding same names. Use
 * it for fault hooks: {"CADRE_FAULT=after_commit_before_reply:1", NULL}. */
int proc_start_env(struct proc *p, char *const argv[], char *const env_extra[],
                   const char *log_path);

/* Starts `$CADRE_BIN arg...` (NULL-terminated). Returns CADRE_EINVAL if
 * CADRE_BIN is unset, else as proc_start. */
int proc_start_cadre(struct proc *p, const char *log_path, const char *arg, ...)
    __attribute__((sentinel));

/* Waits until p prints a stdout line starting with prefix and copies that
 * line (without the newline, NUL-terminated, truncated to line_len) into
 * line, which may be NULL. Lines are consumed: a second call looks only at
 * lines after the one returned.
 * Returns CADRE_ETIMEDOUT after timeout_ms, CADRE_ECLOSED if the process
 * exited (or closed stdout) without printing such a line. */
int proc_wait_line(struct proc *p, const char *prefix, int timeout_ms,
                   char *line, size_t line_len);

/* Sends sig to p's PID (never to anything else). Returns CADRE_ECLOSED if p
 * has already been reaped, CADRE_EINVAL if it was never started. */
int proc_kill(struct proc *p, int sig);

/* Waits up to timeout_ms (< 0: forever) for p to exit and reaps it;
 * *status (may be NULL) receives the exit code, or -signal if it was killed
 * by a signal (-9 for SIGKILL). Also valid if p was already reaped.
 * Returns CADRE_ETIMEDOUT if it is still running, CADRE_EINVAL if it was
 * never started. */
int proc_wait_exit(struct proc *p, int timeout_ms, int *status);

/* Stops p: SIGTERM, wait PROC_STOP_GRACE_MS, then SIGKILL; then SIGKILLs
 * what is left of its process group (e.g. a node's workers). Returns the
 * exit status as proc_wait_exit reports it (0 for a clean stop, -9 if it had
 * to be killed); a process that was never started gives 0. */
int proc_stop(struct proc *p);
/* proc_stop with another grace period. */
int proc_stop_grace(struct proc *p, int grace_ms);

/* Releases p's capture buffers (after exit; kills it first if it is still
 * running). p may be started again. NULL and never-started are accepted.
 * Anything not finished is cleaned up at exit anyway. */
void proc_fini(struct proc *p);

/* SIGKILLs every process (and process group) this harness started that is
 * still running, and reaps them. Runs at exit too; call it at the end of a
 * test that may leave processes behind on a failed REQUIRE. */
void proc_kill_all(void);

/* Prints the last max_lines lines of p's log to stderr, indented, for a
 * failing test's diagnostics. */
void proc_dump_log(const struct proc *p, int max_lines);

/* ---- synchronous runs (the CLI) ------------------------------------- */

/* Input and output of one synchronous run. Zero means: stdin /dev/null,
 * stdout discarded, stderr inherited, PROC_RUN_TIMEOUT_MS. */
struct proc_io {
    const void *in; /* written to stdin, then stdin is closed */
    size_t      in_len;
    char       *out; /* stdout, NUL-terminated, truncated to out_len */
    size_t      out_len;
    char       *err; /* stderr, likewise; NULL: inherited */
    size_t      err_len;
    int         timeout_ms;
};

/* Runs argv to completion; *exit_code receives the exit code or -signal.
 * Returns CADRE_ETIMEDOUT if it ran past the timeout (its process group is
 * then SIGKILLed; output so far is in io), CADRE_EIO if it could not be
 * started. io may be NULL. */
int proc_run(char *const argv[], struct proc_io *io, int *exit_code);

/* Runs `$CADRE_BIN arg...` (NULL-terminated) with stdout captured into out
 * and stderr inherited. Returns CADRE_EINVAL if CADRE_BIN is unset, else as
 * proc_run. */
int proc_run_cli(char *out, size_t out_len, int *exit_code, const char *arg,
                 ...) __attribute__((sentinel));

/* As proc_run_cli with full control of stdin/stdout/stderr. */
int proc_run_cli_io(struct proc_io *io, int *exit_code, const char *arg, ...)
    __attribute__((sentinel));

/* ---- nodes ---------------------------------------------------------- */

/* A `cadre node` started by node_start. */
struct node_proc {
    struct proc p;
    char        url[128];           /* api URL from the readiness line */
    char        events_url[128];    /* events URL, "" if not reported */
    char        data_dir[PATH_MAX]; /* as given */
    char        key_file[PATH_MAX]; /* --key-file if given, else
                                       <data_dir>/cluster.key */
    pid_t pid;                      /* from the readiness line */
    char  peer_url[128];            /* peer URL, "" if not reported */
    char  node_id[64];              /* node id, "" if not reported */
};

/* Runs `$CADRE_BIN node --data DIR --listen tcp://127.0.0.1:0 [extra...]`
 * (extra args NULL-terminated), logging to DIR/node.log (appended; DIR is
 * created if missing), and waits PROC_NODE_READY_MS for the line
 *   cadre node ready api=URL data=DIR pid=PID events=URL peer=URL id=ID
 * filling n->url, n->key_file, n->pid, and n->events_url, n->peer_url and
 * n->node_id (each "" if absent). A `--key-file FILE` among the extra args
 * becomes n->key_file, so node_client_opts reaches a node of a cluster that
 * shares one key.
 * Returns CADRE_EINVAL if CADRE_BIN is unset, CADRE_ETIMEDOUT or
 * CADRE_ECLOSED if the node did not become ready (it is then stopped and the
 * tail of its log is printed), CADRE_EPROTO if the line does not parse. */
int node_start(struct node_proc *n, const char *data_dir, ...)
    __attribute__((sentinel));

/* As node_start with arrays: env_extra as proc_start_env, extra_args
 * NULL-terminated; either may be NULL. */
int node_startv(struct node_proc *n, const char *data_dir,
                char *const env_extra[], char *const extra_args[]);

/* proc_stop of the node. */
int node_stop(struct node_proc *n);

/* Fills o (zeroed first) to reach n: url and key_file borrowed from n. */
void node_client_opts(const struct node_proc *n, cadre_client_opts *o);
/* A client of n with key_file (NULL: n's) and a request timeout (0: the
 * default); NULL after printing why. Close it with cadre_client_close. */
cadre_client *node_client(const struct node_proc *n, const char *key_file,
                          uint32_t timeout_ms);

/* Writes a new master key (`$CADRE_BIN keygen`) to path, mode 0600: one
 * key for every node and client of a cluster. Returns CADRE_EINVAL if
 * CADRE_BIN is unset, CADRE_EIO if keygen fails or path cannot be written. */
int node_keygen(const char *path);

/* The PIDs of parent's children (a node's supervised workers), from
 * /proc/PID/task/PID/children: up to max of them into out. Returns how many;
 * 0 if parent is gone or has none. Children of other threads are not
 * listed (the node spawns workers from its loop, its main thread). */
int proc_children(pid_t parent, pid_t *out, int max);

/* $CADRE_BIN and $CADRE_DEMO_PLUGIN; NULL (with a message) if unset. */
const char *proc_cadre_bin(void);
const char *proc_demo_plugin(void);

/* A TCP port on 127.0.0.1 that was free a moment ago: a random one below
 * the kernel's range for port-0 binds (so no process binding port 0 can
 * take it meanwhile), checked bindable. Returns 0 on failure. Still racy
 * between two tests picking the same one: prefer port 0 + readiness lines
 * where the program supports it (raft addresses cannot: every voter must
 * know the others' before they start). */
int free_tcp_port(void);

/* ---- the ledger ----------------------------------------------------- */

/* Executions recorded by the demo plugin's `ledger` task, one line each:
 *   <job uuid> <attempt> <pid> <unix ms>
 * (an extra field between attempt and pid, e.g. a node id, is tolerated). */
struct ledger;

/* What a ledger says about a list of acknowledged jobs. */
struct ledger_check {
    size_t acked;      /* ids given */
    size_t done;       /* acked ids executed at least once */
    size_t missing;    /* acked ids never executed */
    size_t unexpected; /* distinct ids executed but not in the acked list */
    size_t duplicates; /* sum over all ids of (executions - 1) */
    size_t dup_jobs;   /* ids executed more than once */
};

/* Reads the ledger at path into *out (the caller frees it with
 * ledger_free). A missing file is an empty ledger. Malformed lines (a torn
 * last line) are skipped and counted in ledger_bad_lines.
 * Returns CADRE_EIO if the file cannot be read, CADRE_ENOMEM. */
int  ledger_read(const char *path, struct ledger **out);
void ledger_free(struct ledger *l);

/* Total execution lines, distinct ids, and skipped lines. */
size_t ledger_lines(const struct ledger *l);
size_t ledger_jobs(const struct ledger *l);
size_t ledger_bad_lines(const struct ledger *l);

/* Executions of one job; 0 if none. */
uint32_t ledger_count(const struct ledger *l, const cadre_job_id *id);
/* Same, by uuid text; 0 if none or not a uuid. */
uint32_t ledger_count_str(const struct ledger *l, const char *uuid);
/* The highest attempt number recorded for id; 0 if none. */
uint32_t ledger_max_attempt(const struct ledger *l, const cadre_job_id *id);

/* Compares the ledger with the n acknowledged ids (duplicates in acked are
 * counted once). Prints up to 5 missing ids to stderr. */
void ledger_check(const struct ledger *l, const cadre_job_id *acked, size_t n,
                  struct ledger_check *out);

/* One line for a test log: "acked=N done=N missing=N unexpected=N
 * duplicates=N dup_jobs=N". */
void ledger_check_print(const char *label, const struct ledger_check *c);

/* uuid text <-> id without libcadre (for tests that only link the harness).
 * proc_uuid_parse returns CADRE_EINVAL if s is not a 36-character uuid. */
int  proc_uuid_parse(const char *s, cadre_job_id *id);
void proc_uuid_format(const cadre_job_id *id, char buf[37]);

#endif
