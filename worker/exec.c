/* exec.c: runs a command per job (posix_spawn of /bin/sh -c CMD in a new
 * process group, poll on its pipes and a pidfd) and maps how it ended to a
 * task outcome. Knows nothing of the node. */
#include "worker/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "worker/task.h"

extern char **environ;

#define EXEC_READ_CHUNK (64u << 10)
#define EXEC_POLL_SLICE_MS 10 /* without a pidfd, how often to check exit */

/* ---- the process ---------------------------------------------------------
 */

static void
exec_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int
exec_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* pipe2 with O_CLOEXEC, both ends above 2: when our own stdio is closed, a
 * pipe end on 0..2 would be clobbered by the child's dup2 sequence. */
static int
exec_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);

            if (fd < 0) {
                exec_close(&p[0]);
                exec_close(&p[1]);
                return -1;
            }
            close(p[i]);
            p[i] = fd;
        }
    }
    return 0;
}

static int
exec_is_job_var(const char *e)
{
    static const char *const names[] = {
        "CADRE_JOB_ID=",  "CADRE_TASK=",     "CADRE_QUEUE=",
        "CADRE_ATTEMPT=", "CADRE_SCHEDULE=", "CADRE_SLOT="};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(e, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

/* The child's environment: ours without stale job variables, plus the job's.
 * One allocation (pointers, then up to six strings); NULL if out of memory. */
static char **
exec_env(const struct exec_job *job)
{
    size_t n = 0, k = 0, text_len;
    char **env;
    char  *p;
    char   attempt[16];

    while (environ != NULL && environ[n] != NULL)
        n++;
    snprintf(attempt, sizeof(attempt), "%" PRIu32, job->attempt);
    text_len = strlen(job->id) + strlen(job->task) + strlen(job->queue) +
               strlen(attempt) + 64;
    if (job->schedule != NULL)
        text_len += strlen(job->schedule) + 64;
    env = cd_malloc((n + 7) * sizeof(char *) + text_len);
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!exec_is_job_var(environ[i]))
            env[k++] = environ[i];
    p = (char *)(env + n + 7);
    env[k++] = p;
    p += sprintf(p, "CADRE_JOB_ID=%s", job->id) + 1;
    env[k++] = p;
    p += sprintf(p, "CADRE_TASK=%s", job->task) + 1;
    env[k++] = p;
    p += sprintf(p, "CADRE_QUEUE=%s", job->queue) + 1;
    env[k++] = p;
    p += sprintf(p, "CADRE_ATTEMPT=%s", attempt) + 1;
    if (job->schedule != NULL) {
        env[k++] = p;
        p += sprintf(p, "CADRE_SCHEDULE=%s", job->schedule) + 1;
        env[k++] = p;
        sprintf(p, "CADRE_SLOT=%" PRId64, job->slot_s);
    }
    env[k] = NULL;
    return env;
}

/* Starts /bin/sh -c cmd with stdin/stdout/stderr on the given pipe ends, in
 * a new process group, with default signal dispositions and an empty mask,
 * and no other descriptor. */
static int
exec_spawn(const char *cmd, char **env, int in_fd, int out_fd, int err_fd,
           pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t          at;
    sigset_t                   none, all;
    char                      *argv[] = {"sh", "-c", (char *)cmd, NULL};
    int                        rc;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if ((rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, err_fd, 2)) != 0 ||
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
        (rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP |
                                                POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (rc = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&at, &none)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&at, &all)) != 0)
        goto out;
    rc = posix_spawn(pid, "/bin/sh", &fa, &at, argv, env);
out:
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Whether pid has exited, without reaping it: a zombie leader keeps its
 * process group id from being reused, so kill(-pid) stays safe until we
 * reap. */
static int
exec_has_exited(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno != EINTR; /* ECHILD: reaped behind our back */
    return si.si_pid != 0;
}

/* Appends to the stderr tail, keeping at most 2 * EXEC_TAIL_MAX bytes. */
static void
exec_tail_add(char *tail, size_t *len, int *cut, const char *p, size_t n)
{
    if (n >= EXEC_TAIL_MAX) {
        memcpy(tail, p + n - EXEC_TAIL_MAX, EXEC_TAIL_MAX);
        *len = EXEC_TAIL_MAX;
        *cut = 1;
        return;
    }
    if (*len + n > 2 * EXEC_TAIL_MAX) {
        memmove(tail, tail + *len - EXEC_TAIL_MAX, EXEC_TAIL_MAX);
        *len = EXEC_TAIL_MAX;
        *cut = 1;
    }
    memcpy(tail + *len, p, n);
    *len += n;
}

/* The message form of the tail: its last EXEC_TAIL_MAX bytes, starting at a
 * line (or at least a character) boundary when cut, trimmed of whitespace. */
static char *
exec_tail_text(const char *tail, size_t len, int cut)
{
    const char *s = tail, *e = tail + len;

    if (len > EXEC_TAIL_MAX) {
        s = e - EXEC_TAIL_MAX;
        cut = 1;
    }
    if (cut) {
        const char *nl = memchr(s, '\n', (size_t)(e - s));

        if (nl != NULL && nl + 1 < e && nl - s < EXEC_TAIL_MAX / 2)
            s = nl + 1;
        while (s < e && ((unsigned char)*s & 0xc0) == 0x80)
            s++;
    }
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
                     e[-1] == '\r' || e[-1] == '\0'))
        e--;
    return cd_strndup(s, (size_t)(e - s));
}

/* Reads what fd has now. Returns 1 at end of file (or error), 0 otherwise. */
static int
exec_drain_out(int fd, cd_buf *out, size_t max, int *too_big)
{
    char scratch[4096];

    for (;;) {
        ssize_t n;

        if (!*too_big && cd_buf_reserve(out, EXEC_READ_CHUNK) == CADRE_OK) {
            size_t room = max + 1 - out->len; /* one more to see overflow */

            if (room > EXEC_READ_CHUNK)
                room = EXEC_READ_CHUNK;
            n = read(fd, out->data + out->len, room);
            if (n > 0) {
                out->len += (size_t)n;
                if (out->len > max) {
                    out->len = max;
                    *too_big = 1;
                }
                continue;
            }
        } else {
            /* Over the limit (or out of memory): keep draining so the child
             * is not blocked, but keep nothing. */
            n = read(fd, scratch, sizeof(scratch));
            if (n > 0) {
                *too_big = 1;
                continue;
            }
        }
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
}

static int
exec_drain_err(int fd, char *tail, size_t *len, int *cut)
{
    char buf[4096];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n > 0) {
            exec_tail_add(tail, len, cut, buf, (size_t)n);
            continue;
        }
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
}

/* Writes what the pipe takes now. Returns 1 when done (all written, or the
 * child closed its end), 0 otherwise. SIGPIPE is blocked by the caller. */
static int
exec_feed(int fd, const struct exec_job *job, size_t *off)
{
    const uint8_t *p = job->payload;

    while (*off < job->payload_len) {
        ssize_t n = write(fd, p + *off, job->payload_len - *off);

        if (n > 0) {
            *off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return 1; /* EPIPE: the child does not want the rest */
    }
    return 1;
}

/* Milliseconds until at_ms, as a poll timeout, capped by cur. */
static int
exec_until(uint64_t now_ms, uint64_t at_ms, int cur)
{
    uint64_t d = at_ms > now_ms ? at_ms - now_ms : 0;

    if (d > INT32_MAX)
        d = INT32_MAX;
    return cur < 0 || (int)d < cur ? (int)d : cur;
}

int
exec_run(const char *cmd, const struct exec_job *job, struct exec_result *res,
         cd_err *err)
{
    int      in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
    int      pidfd = -1, rc = CADRE_OK, status = 0;
    pid_t    pid = -1;
    char   **env = NULL;
    cd_buf   obuf;
    char     tail[2 * EXEC_TAIL_MAX];
    size_t   tail_len = 0, in_off = 0;
    int      tail_cut = 0, exited = 0, killed = 0;
    uint64_t start_ms = 0, deadline_ms = 0, exit_ms = 0;
    sigset_t pipe_set, old_mask, pending;
    int      pipe_was_pending;

    memset(res, 0, sizeof(*res));
    cd_buf_init(&obuf);
    /* Writing to a child that closed its stdin must not kill the worker. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    sigpending(&pending);
    pipe_was_pending = sigismember(&pending, SIGPIPE);

    if (exec_pipe(in) != 0 || exec_pipe(out) != 0 || exec_pipe(errp) != 0) {
        rc = cd_err_set(err, CADRE_EIO, "exec: pipe: %s", strerror(errno));
        goto done;
    }
    if (exec_nonblock(in[1]) != 0 || exec_nonblock(out[0]) != 0 ||
        exec_nonblock(errp[0]) != 0) {
        rc = cd_err_set(err, CADRE_EIO, "exec: fcntl: %s", strerror(errno));
        goto done;
    }
    env = exec_env(job);
    if (env == NULL) {
        rc = cd_err_set(err, CADRE_ENOMEM, "exec: out of memory");
        goto done;
    }
    start_ms = cd_mono_ms();
    if (job->timeout_ms != 0)
        deadline_ms = start_ms + job->timeout_ms;
    rc = exec_spawn(cmd, env, in[0], out[1], errp[1], &pid);
    if (rc != 0) {
        pid = -1;
        rc =
            cd_err_set(err, CADRE_EIO, "exec: spawn /bin/sh: %s", strerror(rc));
        goto done;
    }
    exec_close(&in[0]);
    exec_close(&out[1]);
    exec_close(&errp[1]);
    pidfd = pidfd_open(pid, 0); /* -1 on old kernels: we poll in slices */
    if (job->payload_len == 0)
        exec_close(&in[1]);

    for (;;) {
        struct pollfd pfd[4];
        int           n = 0, wait_ms = -1, i_in = -1, i_out = -1, i_err = -1;
        uint64_t      now = cd_mono_ms();

        if (!exited && !killed && deadline_ms != 0 && now >= deadline_ms) {
            kill(-pid, SIGKILL);
            killed = 1;
            res->timed_out = 1;
        }
        if (!exited && exec_has_exited(pid)) {
            exited = 1;
            exit_ms = now;
            exec_close(&in[1]); /* nobody left to read it */
        }
        if (exited && out[0] < 0 && errp[0] < 0)
            break;
        if (exited) {
            /* Descendants may hold the pipes open: give them a moment, then
             * kill the group; one escaped from it cannot hold us longer. */
            if (!killed && now >= exit_ms + EXEC_LINGER_MS) {
                kill(-pid, SIGKILL);
                killed = 1;
            }
            if (now >= exit_ms + 2 * EXEC_LINGER_MS)
                break;
            wait_ms = exec_until(
                now, exit_ms + (killed ? 2 : 1) * EXEC_LINGER_MS, wait_ms);
        } else {
            if (deadline_ms != 0 && !killed)
                wait_ms = exec_until(now, deadline_ms, wait_ms);
            if (pidfd >= 0) {
                pfd[n] = (struct pollfd){.fd = pidfd, .events = POLLIN};
                n++;
            } else if (wait_ms < 0 || wait_ms > EXEC_POLL_SLICE_MS) {
                wait_ms = EXEC_POLL_SLICE_MS;
            }
        }
        if (in[1] >= 0) {
            i_in = n;
            pfd[n++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
        }
        if (out[0] >= 0) {
            i_out = n;
            pfd[n++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        }
        if (errp[0] >= 0) {
            i_err = n;
            pfd[n++] = (struct pollfd){.fd = errp[0], .events = POLLIN};
        }
        if (poll(pfd, (nfds_t)n, wait_ms) < 0) {
            if (errno == EINTR)
                continue;
            rc = cd_err_set(err, CADRE_EIO, "exec: poll: %s", strerror(errno));
            kill(-pid, SIGKILL);
            goto done;
        }
        if (i_in >= 0 && pfd[i_in].revents != 0 &&
            exec_feed(in[1], job, &in_off))
            exec_close(&in[1]);
        if (i_out >= 0 && pfd[i_out].revents != 0 &&
            exec_drain_out(out[0], &obuf, job->out_max, &res->out_too_big))
            exec_close(&out[0]);
        if (i_err >= 0 && pfd[i_err].revents != 0 &&
            exec_drain_err(errp[0], tail, &tail_len, &tail_cut))
            exec_close(&errp[0]);
    }
    res->elapsed_ms = cd_mono_ms() - start_ms;

done:
    if (pid > 0) {
        pid_t got;

        do
            got = waitpid(pid, &status, 0);
        while (got < 0 && errno == EINTR);
        if (got == pid && WIFEXITED(status)) {
            res->exited = 1;
            res->exit_code = WEXITSTATUS(status);
        } else if (got == pid && WIFSIGNALED(status)) {
            res->signal = WTERMSIG(status);
        }
    }
    exec_close(&pidfd);
    exec_close(&in[0]);
    exec_close(&in[1]);
    exec_close(&out[0]);
    exec_close(&out[1]);
    exec_close(&errp[0]);
    exec_close(&errp[1]);
    cd_free(env);
    /* Swallow a SIGPIPE our writes raised before unblocking it. */
    sigpending(&pending);
    if (!pipe_was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};

        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (rc == CADRE_OK) {
        res->err_tail = exec_tail_text(tail, tail_len, tail_cut);
        if (res->err_tail == NULL) {
            rc = cd_err_set(err, CADRE_ENOMEM, "exec: out of memory");
        } else {
            res->out_len = obuf.len;
            res->out = obuf.len > 0 ? (uint8_t *)cd_buf_take(&obuf) : NULL;
        }
    }
    cd_buf_fini(&obuf);
    if (rc != CADRE_OK)
        exec_result_fini(res);
    return rc;
}

void
exec_result_fini(struct exec_result *res)
{
    if (res == NULL)
        return;
    cd_free(res->out);
    cd_free(res->err_tail);
    res->out = NULL;
    res->err_tail = NULL;
    res->out_len = 0;
}

/* ---- the handler kind ----------------------------------------------------
 */

struct exec_cmd {
    char *cmd;
};

/* Exit status EXEC_EXIT_RELEASE: back to the queue after the delay the
 * command printed on stdout (decimal ms; none or garbage: 0). */
static void
exec_release(cadre_task *t, const struct exec_result *res)
{
    char   num[24];
    size_t n = res->out_len < sizeof(num) - 1 ? res->out_len : sizeof(num) - 1;
    char  *end;
    unsigned long long ms;

    memcpy(num, res->out ? (const char *)res->out : "", n);
    num[n] = '\0';
    ms = strtoull(num, &end, 10);
    if (end == num)
        ms = 0;
    cadre_task_release(t, (uint64_t)ms);
}

static int
exec_handler_run(void *impl, cadre_task *t)
{
    struct exec_cmd   *c = impl;
    struct exec_result res;
    cd_err             err;
    char               msg[64];
    struct exec_job    job = {
           .id = cadre_task_id(t),
           .task = cadre_task_name(t),
           .queue = cadre_task_queue(t),
           .attempt = cadre_task_attempt(t),
           .schedule = cadre_task_schedule(t, NULL),
           .timeout_ms = t->timeout_ms,
           .out_max = t->result_max,
    };

    job.payload = cadre_task_payload(t, &job.payload_len);
    (void)cadre_task_schedule(t, &job.slot_s);
    cd_err_clear(&err);
    if (exec_run(c->cmd, &job, &res, &err) != CADRE_OK)
        return cadre_task_error(t, "ExecError", "%s", err.msg);
    if (res.timed_out) {
        cadre_task_error(t, "TimedOut",
                         "killed after %" PRIu64 " ms (timeout %" PRIu64 " ms)",
                         res.elapsed_ms, job.timeout_ms);
    } else if (res.exited && res.exit_code == 0 && res.out_too_big) {
        cadre_task_error(t, "ResultTooBig", "stdout exceeds %zu bytes",
                         job.out_max);
    } else if (res.exited && res.exit_code == EXEC_EXIT_RELEASE) {
        exec_release(t, &res);
    } else if (res.exited && res.exit_code == EXEC_EXIT_FAIL) {
        cadre_task_fail(t, "%s",
                        res.err_tail[0] != '\0' ? res.err_tail : "failed");
    } else if (res.exited && res.exit_code == 0) {
        /* Hand the bytes over instead of copying them. */
        cd_free(t->result);
        t->result = res.out;
        t->result_len = res.out_len;
        res.out = NULL;
        exec_result_fini(&res);
        return CADRE_OK;
    } else {
        if (res.exited)
            snprintf(msg, sizeof(msg), "exit status %d", res.exit_code);
        else if (res.signal != 0)
            snprintf(msg, sizeof(msg), "killed by signal %d", res.signal);
        else
            snprintf(msg, sizeof(msg), "exit status unknown");
        task_set_error(t, MSG_OUTCOME_ERROR, "ExecError",
                       res.err_tail[0] != '\0' ? res.err_tail : msg);
    }
    exec_result_fini(&res);
    return CADRE_EHANDLER;
}

static void
exec_handler_fini(void *impl)
{
    struct exec_cmd *c = impl;

    if (c == NULL)
        return;
    cd_free(c->cmd);
    cd_free(c);
}

const struct handler_ops exec_handler_ops = {
    .kind = "exec",
    .run = exec_handler_run,
    .fini = exec_handler_fini,
    .own_timeout = 1,
};

int
exec_add(cadre_registry *reg, const char *name, const char *cmd, cd_err *err)
{
    struct exec_cmd *c;

    if (cmd == NULL || cmd[0] == '\0')
        return cd_err_set(err, CADRE_EINVAL, "exec handler '%s': empty command",
                          name != NULL ? name : "");
    c = cd_calloc(1, sizeof(*c));
    if (c != NULL)
        c->cmd = cd_strdup(cmd);
    if (c == NULL || c->cmd == NULL) {
        exec_handler_fini(c);
        return cd_err_set(err, CADRE_ENOMEM, "exec handler '%s': out of memory",
                          name != NULL ? name : "");
    }
    return handler_add(reg, name, &exec_handler_ops, c, err);
}
