/* proc.c: the process harness behind proc.h. Each started process gets a
 * slot in a registry: a reader thread drains its stdout into memory and the
 * log, and the atexit hook kills and reaps whatever is still running. The
 * ledger reader is a small open-addressing map keyed by job id. */
#include "tests/lib/proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PROC_CAPTURE_MAX (4u << 20) /* stdout kept in memory per process */
#define PROC_POLL_MS 20

struct proc_slot {
    struct proc_slot *next; /* registry */
    pid_t             pid;
    bool              reaped;
    int               status;
    int               out_fd;     /* read end of the stdout pipe */
    int               wake_fd[2]; /* tells the reader to drain and stop */
    int               log_fd;
    bool              reader_running;
    pthread_t         reader;
    pthread_mutex_t   mu; /* guards buf, len, cursor, eof */
    pthread_cond_t    cv;
    char             *buf;
    size_t            len, cap;
    size_t            cursor; /* start of the first unconsumed line */
    bool              eof;
};

static pthread_mutex_t   proc_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct proc_slot *proc_registry;
static pthread_once_t    proc_once = PTHREAD_ONCE_INIT;

/* ---- small helpers --------------------------------------------------- */

static int64_t
proc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
proc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
proc_decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return -WTERMSIG(st);
    return -1;
}

static void
proc_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void
proc_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

static const char *
proc_env(const char *name)
{
    const char *v = getenv(name);

    if (v == NULL || v[0] == '\0') {
        fprintf(stderr, "proc: %s is not set (ctest sets it)\n", name);
        return NULL;
    }
    return v;
}

const char *
proc_cadre_bin(void)
{
    return proc_env("CADRE_BIN");
}

const char *
proc_demo_plugin(void)
{
    return proc_env("CADRE_DEMO_PLUGIN");
}

/* Resolves argv0 against PATH before fork (execve in the child is then the
 * only call that matters). Writes the result to out. */
static void
proc_resolve(const char *argv0, char *out, size_t out_len)
{
    const char *path = getenv("PATH");
    const char *p, *end;

    snprintf(out, out_len, "%s", argv0);
    if (strchr(argv0, '/') != NULL || path == NULL)
        return;
    for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
        char cand[PATH_MAX];
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        if (end == p)
            continue;
        snprintf(cand, sizeof(cand), "%.*s/%s", (int)(end - p), p, argv0);
        if (access(cand, X_OK) == 0) {
            snprintf(out, out_len, "%s", cand);
            return;
        }
    }
}

/* Builds environ plus extra ("NAME=value", overriding). The array is heap
 * allocated; the strings are borrowed. */
static char **
proc_build_env(char *const extra[])
{
    size_t n = 0, k = 0, extra_n = 0;
    char **env;

    for (char **e = environ; e != NULL && *e != NULL; e++)
        n++;
    while (extra != NULL && extra[extra_n] != NULL)
        extra_n++;
    env = calloc(n + extra_n + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t      name_len = eq ? (size_t)(eq - environ[i]) : 0;
        bool        overridden = false;
        for (size_t j = 0; j < extra_n && name_len > 0; j++) {
            if (strncmp(extra[j], environ[i], name_len + 1) == 0)
                overridden = true;
        }
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < extra_n; j++)
        env[k++] = extra[j];
    env[k] = NULL;
    return env;
}

/* In the child after fork: only async-signal-safe calls. Never returns. */
static void
proc_child(pid_t parent, int in_fd, int out_fd, int err_fd, const char *path,
           char *const argv[], char **envp)
{
    sigset_t none;

    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
        (err_fd >= 0 && dup2(err_fd, 2) < 0))
        _exit(126);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    execve(path, argv, envp);
    _exit(127);
}

/* ---- registry and reader -------------------------------------------- */

static void proc_atexit(void);

static void
proc_init_once(void)
{
    /* Writes to a child's closed stdin must not kill the test; children get
     * SIG_DFL back before exec. */
    signal(SIGPIPE, SIG_IGN);
    atexit(proc_atexit);
}

static void
proc_slot_append(struct proc_slot *s, const char *data, size_t n)
{
    if (s->log_fd >= 0)
        proc_write_all(s->log_fd, data, n);
    pthread_mutex_lock(&s->mu);
    if (s->len + n + 1 > s->cap && s->len + n + 1 <= PROC_CAPTURE_MAX) {
        size_t cap = s->cap ? s->cap : 4096;
        char  *nb;
        while (cap < s->len + n + 1)
            cap *= 2;
        nb = realloc(s->buf, cap);
        if (nb != NULL) {
            s->buf = nb;
            s->cap = cap;
        }
    }
    if (s->len + n + 1 <= s->cap) {
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        s->buf[s->len] = '\0';
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *
proc_reader(void *arg)
{
    struct proc_slot *s = arg;
    char              chunk[4096];
    bool              draining = false;

    for (;;) {
        struct pollfd pfd[2] = {{s->out_fd, POLLIN, 0},
                                {s->wake_fd[0], POLLIN, 0}};
        ssize_t       n;

        if (!draining) {
            if (poll(pfd, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (pfd[0].revents == 0 && pfd[1].revents != 0) {
                /* The process was reaped: take what is in the pipe (a
                 * grandchild may still hold its write end) and stop. */
                fcntl(s->out_fd, F_SETFL, O_NONBLOCK);
                draining = true;
            }
        }
        n = read(s->out_fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        proc_slot_append(s, chunk, (size_t)n);
    }
    pthread_mutex_lock(&s->mu);
    s->eof = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void
proc_reader_stop(struct proc_slot *s)
{
    if (!s->reader_running)
        return;
    proc_write_all(s->wake_fd[1], "x", 1);
    pthread_join(s->reader, NULL);
    s->reader_running = false;
    proc_close_fd(&s->out_fd);
    proc_close_fd(&s->wake_fd[0]);
    proc_close_fd(&s->wake_fd[1]);
    proc_close_fd(&s->log_fd);
}

/* Reaps s if it has exited, waiting up to timeout_ms (< 0: forever).
 * Returns true once reaped. */
static bool
proc_slot_reap(struct proc_slot *s, int timeout_ms)
{
    int64_t deadline = proc_now_ms() + timeout_ms;

    for (;;) {
        int   st;
        pid_t r;

        pthread_mutex_lock(&proc_registry_mu);
        if (s->reaped) {
            pthread_mutex_unlock(&proc_registry_mu);
            break;
        }
        r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->reaped = true;
            s->status = proc_decode_status(st);
        } else if (r < 0 && errno != EINTR) {
            /* ECHILD: someone else reaped it; record it as gone. */
            fprintf(stderr, "proc: waitpid %d: %s\n", (int)s->pid,
                    strerror(errno));
            s->reaped = true;
            s->status = -1;
        }
        pthread_mutex_unlock(&proc_registry_mu);
        if (s->reaped)
            break;
        if (timeout_ms >= 0 && proc_now_ms() >= deadline)
            return false;
        proc_sleep_ms(2);
    }
    proc_reader_stop(s);
    return true;
}

/* Counts the live (not zombie) members of process group pgid by scanning
 * /proc: orphans of a killed node linger as zombies when PID 1 is slow to
 * reap them, and those need no signal. */
static int
proc_group_live(pid_t pgid)
{
    DIR           *d = opendir("/proc");
    struct dirent *e;
    int            live = 0;

    if (d == NULL)
        return kill(-pgid, 0) == 0 ? 1 : 0;
    while ((e = readdir(d)) != NULL) {
        char  path[300], stat[512], state;
        FILE *f;
        char *rp;
        int   ppid, pgrp;

        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(stat, sizeof(stat), f) == NULL)
            stat[0] = '\0';
        fclose(f);
        rp = strrchr(stat, ')');
        if (rp != NULL &&
            sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
            pgrp == (int)pgid && state != 'Z' && state != 'X')
            live++;
    }
    closedir(d);
    return live;
}

/* SIGKILLs what is left of s's process group; true if anything was. Only
 * called once the leader is reaped by us: the group id then stays unused
 * by others while members keep it alive. */
static bool
proc_slot_kill_group(struct proc_slot *s)
{
    if (proc_group_live(s->pid) == 0)
        return false;
    kill(-s->pid, SIGKILL);
    return true;
}

static void
proc_slot_free(struct proc_slot *s)
{
    if (s == NULL)
        return;
    proc_reader_stop(s);
    proc_close_fd(&s->out_fd);
    proc_close_fd(&s->wake_fd[0]);
    proc_close_fd(&s->wake_fd[1]);
    proc_close_fd(&s->log_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->buf);
    free(s);
}

static void
proc_sync(struct proc *p)
{
    if (p->slot != NULL && p->slot->reaped) {
        p->exited = true;
        p->status = p->slot->status;
    }
}

void
proc_kill_all(void)
{
    struct proc_slot *s;

    pthread_mutex_lock(&proc_registry_mu);
    for (s = proc_registry; s != NULL; s = s->next) {
        if (!s->reaped) {
            fprintf(stderr, "proc: killing leftover pid %d\n", (int)s->pid);
            kill(s->pid, SIGKILL);
        }
    }
    pthread_mutex_unlock(&proc_registry_mu);
    for (s = proc_registry; s != NULL; s = s->next) {
        proc_slot_reap(s, -1);
        if (proc_slot_kill_group(s))
            fprintf(stderr, "proc: killed what was left of process group %d\n",
                    (int)s->pid);
    }
}

static void
proc_atexit(void)
{
    struct proc_slot *s, *next;

    proc_kill_all();
    pthread_mutex_lock(&proc_registry_mu);
    s = proc_registry;
    proc_registry = NULL;
    pthread_mutex_unlock(&proc_registry_mu);
    for (; s != NULL; s = next) {
        next = s->next;
        proc_slot_free(s);
    }
}

static void
proc_registry_remove(struct proc_slot *s)
{
    struct proc_slot **pp;

    pthread_mutex_lock(&proc_registry_mu);
    for (pp = &proc_registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&proc_registry_mu);
}

/* ---- start, wait, kill ---------------------------------------------- */

int
proc_start_env(struct proc *p, char *const argv[], char *const env_extra[],
               const char *log_path)
{
    struct proc_slot *s = NULL;
    int               pipe_fds[2] = {-1, -1};
    int               null_fd = -1;
    char            **envp = NULL;
    char              path[PATH_MAX];
    const char       *base;
    pid_t             pid, parent = getpid();
    int               rc = CADRE_EIO;

    pthread_once(&proc_once, proc_init_once);
    if (argv == NULL || argv[0] == NULL)
        return CADRE_EINVAL;
    if (p->slot != NULL && !p->slot->reaped && !proc_slot_reap(p->slot, 0)) {
        fprintf(stderr, "proc: start %s: pid %d is still running\n", argv[0],
                (int)p->pid);
        return CADRE_EINVAL;
    }
    proc_fini(p);
    memset(p, 0, sizeof(*p));
    p->pid = -1;
    base = strrchr(argv[0], '/');
    snprintf(p->name, sizeof(p->name), "%s", base ? base + 1 : argv[0]);

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CADRE_ENOMEM;
    s->out_fd = s->log_fd = s->wake_fd[0] = s->wake_fd[1] = -1;
    pthread_mutex_init(&s->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (log_path != NULL) {
        snprintf(p->log_path, sizeof(p->log_path), "%s", log_path);
        s->log_fd =
            open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->log_fd < 0) {
            fprintf(stderr, "proc: start %s: open log %s: %s\n", p->name,
                    log_path, strerror(errno));
            goto fail;
        }
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || pipe2(pipe_fds, O_CLOEXEC) != 0 ||
        pipe2(s->wake_fd, O_CLOEXEC) != 0) {
        fprintf(stderr, "proc: start %s: pipe: %s\n", p->name, strerror(errno));
        goto fail;
    }
    envp = proc_build_env(env_extra);
    if (envp == NULL) {
        rc = CADRE_ENOMEM;
        goto fail;
    }
    proc_resolve(argv[0], path, sizeof(path));

    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "proc: start %s: fork: %s\n", p->name, strerror(errno));
        goto fail;
    }
    if (pid == 0)
        proc_child(parent, null_fd, pipe_fds[1], s->log_fd, path, argv, envp);

    /* Parent. Also set the group here, so that a kill before the child
     * runs setpgid still finds the group (EACCES after exec is harmless). */
    setpgid(pid, pid);
    free(envp);
    close(null_fd);
    close(pipe_fds[1]);
    s->pid = pid;
    s->out_fd = pipe_fds[0];
    if (pthread_create(&s->reader, NULL, proc_reader, s) != 0) {
        fprintf(stderr, "proc: start %s: reader thread failed\n", p->name);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s->out_fd = -1;
        close(pipe_fds[0]);
        pipe_fds[0] = -1;
        goto fail_started;
    }
    s->reader_running = true;
    pthread_mutex_lock(&proc_registry_mu);
    s->next = proc_registry;
    proc_registry = s;
    pthread_mutex_unlock(&proc_registry_mu);
    p->pid = pid;
    p->slot = s;
    return CADRE_OK;

fail:
    free(envp);
    if (null_fd >= 0)
        close(null_fd);
    if (pipe_fds[1] >= 0)
        close(pipe_fds[1]);
fail_started:
    if (pipe_fds[0] >= 0)
        close(pipe_fds[0]);
    proc_slot_free(s);
    return rc;
}

int
proc_start(struct proc *p, char *const argv[], const char *log_path)
{
    return proc_start_env(p, argv, NULL, log_path);
}

/* Collects first, then second and the rest of the NULL-terminated ap, then
 * more (NULL-terminated, may be NULL) into a heap array ending in NULL. The
 * caller frees the array; the strings are borrowed. */
static char **
proc_collect_args(const char *first, const char *second, va_list ap,
                  char *const more[])
{
    size_t      n = 0, cap = 16;
    char      **v = malloc(cap * sizeof(*v));
    const char *a;

    if (v == NULL)
        return NULL;
    v[n++] = (char *)first;
    for (a = second; a != NULL; a = va_arg(ap, const char *)) {
        if (n + 2 > cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof(*v));
            if (nv == NULL) {
                free(v);
                return NULL;
            }
            v = nv;
        }
        v[n++] = (char *)a;
    }
    for (size_t i = 0; more != NULL && more[i] != NULL; i++) {
        if (n + 2 > cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof(*v));
            if (nv == NULL) {
                free(v);
                return NULL;
            }
            v = nv;
        }
        v[n++] = more[i];
    }
    v[n] = NULL;
    return v;
}

int
proc_start_cadre(struct proc *p, const char *log_path, const char *arg, ...)
{
    const char *bin = proc_cadre_bin();
    char      **argv;
    va_list     ap;
    int         rc;

    if (bin == NULL)
        return CADRE_EINVAL;
    va_start(ap, arg);
    argv = proc_collect_args(bin, arg, ap, NULL);
    va_end(ap);
    if (argv == NULL)
        return CADRE_ENOMEM;
    rc = proc_start(p, argv, log_path);
    free(argv);
    return rc;
}

/* Finds the next complete line in s (or the trailing partial one at eof)
 * starting with prefix; consumes lines up to it. Called with s->mu held. */
static bool
proc_scan_lines(struct proc_slot *s, const char *prefix, char *line,
                size_t line_len)
{
    size_t plen = strlen(prefix);

    while (s->cursor < s->len) {
        char  *start = s->buf + s->cursor;
        char  *nl = memchr(start, '\n', s->len - s->cursor);
        size_t ll;

        if (nl == NULL && !s->eof)
            return false;
        ll = nl ? (size_t)(nl - start) : s->len - s->cursor;
        s->cursor += ll + (nl ? 1 : 0);
        if (ll > 0 && start[ll - 1] == '\r')
            ll--;
        if (ll >= plen && memcmp(start, prefix, plen) == 0) {
            if (line != NULL && line_len > 0) {
                size_t c = ll < line_len - 1 ? ll : line_len - 1;
                memcpy(line, start, c);
                line[c] = '\0';
            }
            return true;
        }
    }
    return false;
}

int
proc_wait_line(struct proc *p, const char *prefix, int timeout_ms, char *line,
               size_t line_len)
{
    struct proc_slot *s = p->slot;
    int64_t           deadline = proc_now_ms() + timeout_ms;
    bool              found = false, closed = false;

    if (line != NULL && line_len > 0)
        line[0] = '\0';
    if (s == NULL)
        return CADRE_EINVAL;
    for (;;) {
        struct timespec ts;
        int64_t         now = proc_now_ms(), slice;

        pthread_mutex_lock(&s->mu);
        found = proc_scan_lines(s, prefix, line, line_len);
        closed = s->eof;
        if (!found && !closed && now < deadline) {
            slice = deadline - now < 50 ? deadline - now : 50;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += slice / 1000;
            ts.tv_nsec += (slice % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            found = proc_scan_lines(s, prefix, line, line_len);
            closed = s->eof;
        }
        pthread_mutex_unlock(&s->mu);
        if (found)
            return CADRE_OK;
        if (closed)
            break;
        /* stdout may stay open in a grandchild: notice the exit itself. */
        if (!s->reaped && proc_slot_reap(s, 0)) {
            proc_sync(p);
            continue; /* the reader drained; scan once more */
        }
        if (proc_now_ms() >= deadline) {
            fprintf(stderr, "proc: %s (pid %d): no line \"%s\" after %d ms\n",
                    p->name, (int)p->pid, prefix, timeout_ms);
            return CADRE_ETIMEDOUT;
        }
    }
    fprintf(stderr, "proc: %s (pid %d): output ended without \"%s\"\n", p->name,
            (int)p->pid, prefix);
    return CADRE_ECLOSED;
}

int
proc_kill(struct proc *p, int sig)
{
    int rc = CADRE_OK;

    if (p->slot == NULL)
        return CADRE_EINVAL;
    /* The registry lock keeps the reap and the kill apart: an unreaped
     * child's PID cannot have been reused. */
    pthread_mutex_lock(&proc_registry_mu);
    if (p->slot->reaped)
        rc = CADRE_ECLOSED;
    else if (kill(p->slot->pid, sig) != 0)
        rc = CADRE_EIO;
    pthread_mutex_unlock(&proc_registry_mu);
    return rc;
}

int
proc_wait_exit(struct proc *p, int timeout_ms, int *status)
{
    if (p->slot == NULL)
        return CADRE_EINVAL;
    if (!proc_slot_reap(p->slot, timeout_ms))
        return CADRE_ETIMEDOUT;
    proc_sync(p);
    if (status != NULL)
        *status = p->status;
    return CADRE_OK;
}

int
proc_stop(struct proc *p)
{
    return proc_stop_grace(p, PROC_STOP_GRACE_MS);
}

int
proc_stop_grace(struct proc *p, int grace_ms)
{
    int status = 0;

    if (p->slot == NULL)
        return 0;
    if (!p->slot->reaped) {
        proc_kill(p, SIGTERM);
        if (proc_wait_exit(p, grace_ms, &status) != CADRE_OK) {
            fprintf(stderr,
                    "proc: %s (pid %d) ignored SIGTERM for %d ms; SIGKILL\n",
                    p->name, (int)p->pid, grace_ms);
            proc_kill(p, SIGKILL);
            proc_wait_exit(p, -1, &status);
        }
    }
    if (proc_slot_kill_group(p->slot))
        fprintf(stderr,
                "proc: %s (pid %d) left processes in its group; "
                "killed them\n",
                p->name, (int)p->pid);
    proc_sync(p);
    return p->status;
}

void
proc_fini(struct proc *p)
{
    struct proc_slot *s;

    if (p == NULL || p->slot == NULL)
        return;
    s = p->slot;
    if (!s->reaped) {
        proc_kill(p, SIGKILL);
        proc_slot_reap(s, -1);
    }
    proc_slot_kill_group(s);
    proc_sync(p);
    proc_registry_remove(s);
    proc_slot_free(s);
    p->slot = NULL;
}

void
proc_dump_log(const struct proc *p, int max_lines)
{
    FILE  *f;
    long   size, from;
    char  *text;
    size_t n;
    int    lines = 0;

    if (p->log_path[0] == '\0' || (f = fopen(p->log_path, "r")) == NULL)
        return;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    from = size > 65536 ? size - 65536 : 0;
    fseek(f, from, SEEK_SET);
    text = malloc((size_t)(size - from) + 1);
    if (text == NULL) {
        fclose(f);
        return;
    }
    n = fread(text, 1, (size_t)(size - from), f);
    text[n] = '\0';
    fclose(f);
    while (n > 0 && text[n - 1] == '\n')
        text[--n] = '\0';
    for (size_t i = n; i > 0; i--) {
        if (text[i - 1] == '\n' && ++lines >= max_lines) {
            from = (long)i;
            break;
        }
        from = (long)i - 1;
    }
    fprintf(stderr, "  --- %s (pid %d) log %s, last lines:\n", p->name,
            (int)p->pid, p->log_path);
    for (char *line = text + from, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        fprintf(stderr, "  | %s\n", line);
        if (nl == NULL)
            break;
    }
    free(text);
}

/* ---- synchronous runs ------------------------------------------------ */

static void
proc_buf_add(char *buf, size_t cap, size_t *len, const char *data, size_t n)
{
    if (buf == NULL || cap == 0)
        return;
    if (*len + 1 < cap) {
        size_t c = cap - 1 - *len < n ? cap - 1 - *len : n;
        memcpy(buf + *len, data, c);
        *len += c;
    }
    buf[*len] = '\0';
}

/* Reads one chunk from *fd into io's out or err buffer. Returns false at
 * EOF, on error or when a non-blocking fd is empty. */
static bool
proc_run_read(int *fd, struct proc_io *io, bool is_out, size_t *out_len,
              size_t *err_len)
{
    char    chunk[4096];
    ssize_t n;

    do
        n = read(*fd, chunk, sizeof(chunk));
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    if (is_out)
        proc_buf_add(io->out, io->out_len, out_len, chunk, (size_t)n);
    else
        proc_buf_add(io->err, io->err_len, err_len, chunk, (size_t)n);
    return true;
}

int
proc_run(char *const argv[], struct proc_io *io, int *exit_code)
{
    struct proc_io zero = {0};
    int            in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
    char           path[PATH_MAX];
    pid_t          pid, parent = getpid();
    size_t         in_off = 0, out_len = 0, err_len = 0;
    int64_t        deadline;
    bool           reaped = false, timed_out = false;
    int            st = 0, timeout_ms;

    pthread_once(&proc_once, proc_init_once);
    if (io == NULL)
        io = &zero;
    timeout_ms = io->timeout_ms > 0 ? io->timeout_ms : PROC_RUN_TIMEOUT_MS;
    if (io->out != NULL && io->out_len > 0)
        io->out[0] = '\0';
    if (io->err != NULL && io->err_len > 0)
        io->err[0] = '\0';
    if (argv == NULL || argv[0] == NULL)
        return CADRE_EINVAL;
    if (pipe2(in_p, O_CLOEXEC) != 0 || pipe2(out_p, O_CLOEXEC) != 0 ||
        (io->err != NULL && pipe2(err_p, O_CLOEXEC) != 0)) {
        fprintf(stderr, "proc: run %s: pipe: %s\n", argv[0], strerror(errno));
        goto fail;
    }
    proc_resolve(argv[0], path, sizeof(path));
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "proc: run %s: fork: %s\n", argv[0], strerror(errno));
        goto fail;
    }
    if (pid == 0)
        proc_child(parent, in_p[0], out_p[1], err_p[1], path, argv, environ);
    setpgid(pid, pid);
    proc_close_fd(&in_p[0]);
    proc_close_fd(&out_p[1]);
    proc_close_fd(&err_p[1]);
    if (io->in == NULL || io->in_len == 0)
        proc_close_fd(&in_p[1]);
    else
        fcntl(in_p[1], F_SETFL, O_NONBLOCK);

    deadline = proc_now_ms() + timeout_ms;
    while (!reaped) {
        struct pollfd pfd[3];
        int           nfd = 0;
        int          *fds[3];

        if (waitpid(pid, &st, WNOHANG) == pid) {
            reaped = true;
            break;
        }
        if (proc_now_ms() >= deadline) {
            fprintf(stderr, "proc: run %s: timed out after %d ms; killing\n",
                    argv[0], timeout_ms);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            reaped = timed_out = true;
            break;
        }
        if (in_p[1] >= 0) {
            pfd[nfd] = (struct pollfd){in_p[1], POLLOUT, 0};
            fds[nfd++] = &in_p[1];
        }
        if (out_p[0] >= 0) {
            pfd[nfd] = (struct pollfd){out_p[0], POLLIN, 0};
            fds[nfd++] = &out_p[0];
        }
        if (err_p[0] >= 0) {
            pfd[nfd] = (struct pollfd){err_p[0], POLLIN, 0};
            fds[nfd++] = &err_p[0];
        }
        if (nfd == 0) {
            proc_sleep_ms(1);
            continue;
        }
        if (poll(pfd, (nfds_t)nfd, PROC_POLL_MS) <= 0)
            continue;
        for (int i = 0; i < nfd; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (fds[i] == &in_p[1]) {
                ssize_t n = write(in_p[1], (const char *)io->in + in_off,
                                  io->in_len - in_off);
                if (n > 0)
                    in_off += (size_t)n;
                if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
                    in_off == io->in_len)
                    proc_close_fd(&in_p[1]);
            } else if (!proc_run_read(fds[i], io, fds[i] == &out_p[0], &out_len,
                                      &err_len)) {
                proc_close_fd(fds[i]);
            }
        }
    }
    /* Take what is buffered, then stop even if a grandchild keeps the
     * pipes open. */
    proc_close_fd(&in_p[1]);
    if (out_p[0] >= 0) {
        fcntl(out_p[0], F_SETFL, O_NONBLOCK);
        while (proc_run_read(&out_p[0], io, true, &out_len, &err_len))
            ;
        proc_close_fd(&out_p[0]);
    }
    if (err_p[0] >= 0) {
        fcntl(err_p[0], F_SETFL, O_NONBLOCK);
        while (proc_run_read(&err_p[0], io, false, &out_len, &err_len))
            ;
        proc_close_fd(&err_p[0]);
    }
    if (exit_code != NULL)
        *exit_code = proc_decode_status(st);
    return timed_out ? CADRE_ETIMEDOUT : CADRE_OK;

fail:
    proc_close_fd(&in_p[0]);
    proc_close_fd(&in_p[1]);
    proc_close_fd(&out_p[0]);
    proc_close_fd(&out_p[1]);
    proc_close_fd(&err_p[0]);
    proc_close_fd(&err_p[1]);
    return CADRE_EIO;
}

static int
proc_run_cliv(struct proc_io *io, int *exit_code, const char *arg, va_list ap)
{
    const char *bin = proc_cadre_bin();
    char      **argv;
    int         rc;

    if (bin == NULL)
        return CADRE_EINVAL;
    argv = proc_collect_args(bin, arg, ap, NULL);
    if (argv == NULL)
        return CADRE_ENOMEM;
    rc = proc_run(argv, io, exit_code);
    free(argv);
    return rc;
}

int
proc_run_cli(char *out, size_t out_len, int *exit_code, const char *arg, ...)
{
    struct proc_io io = {.out = out, .out_len = out_len};
    va_list        ap;
    int            rc;

    va_start(ap, arg);
    rc = proc_run_cliv(&io, exit_code, arg, ap);
    va_end(ap);
    return rc;
}

int
proc_run_cli_io(struct proc_io *io, int *exit_code, const char *arg, ...)
{
    va_list ap;
    int     rc;

    va_start(ap, arg);
    rc = proc_run_cliv(io, exit_code, arg, ap);
    va_end(ap);
    return rc;
}

/* ---- nodes ----------------------------------------------------------- */

/* Copies the value of "key=" in a space-separated line into out. */
static bool
proc_line_field(const char *line, const char *key, char *out, size_t out_len)
{
    size_t      klen = strlen(key);
    const char *p = line;

    while ((p = strstr(p, key)) != NULL) {
        if ((p == line || p[-1] == ' ') && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t      n = strcspn(v, " \t\r\n");
            if (n == 0 || n >= out_len)
                return false;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p += klen;
    }
    return false;
}

int
node_startv(struct node_proc *n, const char *data_dir, char *const env_extra[],
            char *const extra_args[])
{
    const char *bin = proc_cadre_bin();
    char      **argv = NULL;
    char        log_path[PATH_MAX + 16], line[1024], pid_text[32];
    int         rc;

    if (bin == NULL)
        return CADRE_EINVAL;
    snprintf(n->data_dir, sizeof(n->data_dir), "%s", data_dir);
    snprintf(n->key_file, sizeof(n->key_file), "%s/cluster.key", data_dir);
    for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
        if (strcmp(extra_args[i], "--key-file") == 0 &&
            extra_args[i + 1] != NULL)
            snprintf(n->key_file, sizeof(n->key_file), "%s", extra_args[i + 1]);
    n->url[0] = '\0';
    n->events_url[0] = '\0';
    n->peer_url[0] = '\0';
    n->node_id[0] = '\0';
    n->pid = -1;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "proc: node_start: mkdir %s: %s\n", data_dir,
                strerror(errno));
        return CADRE_EIO;
    }
    snprintf(log_path, sizeof(log_path), "%s/node.log", data_dir);
    {
        size_t k = 0, extra_n = 0;
        while (extra_args != NULL && extra_args[extra_n] != NULL)
            extra_n++;
        argv = calloc(7 + extra_n, sizeof(*argv));
        if (argv == NULL)
            return CADRE_ENOMEM;
        argv[k++] = (char *)bin;
        argv[k++] = "node";
        argv[k++] = "--data";
        argv[k++] = (char *)data_dir;
        argv[k++] = "--listen";
        argv[k++] = "tcp://127.0.0.1:0";
        for (size_t i = 0; i < extra_n; i++)
            argv[k++] = extra_args[i];
        argv[k] = NULL;
    }
    rc = proc_start_env(&n->p, argv, env_extra, log_path);
    free(argv);
    if (rc != CADRE_OK)
        return rc;
    rc = proc_wait_line(&n->p, "cadre node ready ", PROC_NODE_READY_MS, line,
                        sizeof(line));
    if (rc == CADRE_OK &&
        (!proc_line_field(line, "api", n->url, sizeof(n->url)) ||
         !proc_line_field(line, "pid", pid_text, sizeof(pid_text)))) {
        fprintf(stderr, "proc: node_start: bad readiness line: %s\n", line);
        rc = CADRE_EPROTO;
    }
    if (rc != CADRE_OK) {
        proc_stop(&n->p);
        proc_dump_log(&n->p, 30);
        return rc;
    }
    n->pid = (pid_t)strtol(pid_text, NULL, 10);
    if (!proc_line_field(line, "events", n->events_url, sizeof(n->events_url)))
        n->events_url[0] = '\0';
    if (!proc_line_field(line, "peer", n->peer_url, sizeof(n->peer_url)))
        n->peer_url[0] = '\0';
    if (!proc_line_field(line, "id", n->node_id, sizeof(n->node_id)))
        n->node_id[0] = '\0';
    if (n->pid != n->p.pid)
        fprintf(stderr, "proc: node_start: readiness pid %d != started %d\n",
                (int)n->pid, (int)n->p.pid);
    return CADRE_OK;
}

int
node_start(struct node_proc *n, const char *data_dir, ...)
{
    char      **extra;
    const char *first;
    va_list     ap;
    int         rc;

    va_start(ap, data_dir);
    first = va_arg(ap, const char *);
    extra = proc_collect_args("", first, ap, NULL);
    va_end(ap);
    if (extra == NULL)
        return CADRE_ENOMEM;
    rc = node_startv(n, data_dir, NULL, extra + 1);
    free(extra);
    return rc;
}

int
node_stop(struct node_proc *n)
{
    return proc_stop(&n->p);
}

void
node_client_opts(const struct node_proc *n, cadre_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->url = n->url;
    o->key_file = n->key_file;
}

cadre_client *
node_client(const struct node_proc *n, const char *key_file,
            uint32_t timeout_ms)
{
    cadre_client_opts o;
    cadre_client     *c = NULL;
    char              err[256];

    node_client_opts(n, &o);
    if (key_file != NULL)
        o.key_file = key_file;
    o.timeout_ms = timeout_ms;
    if (cadre_client_open(&o, &c, err, sizeof(err)) != CADRE_OK) {
        fprintf(stderr, "proc: node_client %s: %s\n", n->url, err);
        return NULL;
    }
    return c;
}

int
node_keygen(const char *path)
{
    char key[512];
    int  code = -1, fd, rc;

    key[0] = '\0';
    rc = proc_run_cli(key, sizeof(key), &code, "keygen", NULL);
    if (rc == CADRE_EINVAL)
        return rc;
    if (rc != CADRE_OK || code != 0 || key[0] == '\0') {
        fprintf(stderr, "proc: node_keygen: cadre keygen exited %d\n", code);
        return CADRE_EIO;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "proc: node_keygen: %s: %s\n", path, strerror(errno));
        return CADRE_EIO;
    }
    proc_write_all(fd, key, strlen(key));
    close(fd);
    return CADRE_OK;
}

int
proc_children(pid_t parent, pid_t *out, int max)
{
    char  path[64];
    FILE *f;
    int   n = 0;
    long  pid;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent,
             (int)parent);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (n < max && fscanf(f, "%ld", &pid) == 1)
        out[n++] = (pid_t)pid;
    fclose(f);
    return n;
}

/* The first port the kernel hands out for bind(port 0). */
static int
proc_ephemeral_low(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int   low = 32768;

    if (f != NULL) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    return low;
}

/* 1 if port can be bound on loopback now. */
static int
proc_port_bindable(int port)
{
    struct sockaddr_in sa = {0};
    int                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int                ok;

    if (fd < 0)
        return 0;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* A free port below the kernel's range for port-0 binds: no node or client
 * of a test running beside this one can be given it by the kernel in the
 * meantime (seen: a raft port chosen from that range taken by another
 * test's node before ours bound it). Random, so concurrent tests rarely
 * pick the same; checked bindable. */
int
free_tcp_port(void)
{
    static unsigned seed;
    int             low = proc_ephemeral_low();
    int             base = 10000;

    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    if (low - base < 1000)
        base = 1024;
    for (int tries = 0; tries < 200; tries++) {
        int port = base + (int)(rand_r(&seed) % (unsigned)(low - base));

        if (proc_port_bindable(port))
            return port;
    }
    return 0;
}

/* ---- the ledger ------------------------------------------------------ */

struct ledger_entry {
    cadre_job_id id;
    uint32_t     count; /* 0: empty slot */
    uint32_t     max_attempt;
};

struct ledger {
    struct ledger_entry *tab;
    size_t               cap; /* power of two */
    size_t               used;
    size_t               lines, bad_lines;
};

/* The harness links libcadre's sources, so it reuses their uuid text. */
int
proc_uuid_parse(const char *s, cadre_job_id *id)
{
    return cadre_job_id_parse(s, id);
}

void
proc_uuid_format(const cadre_job_id *id, char buf[37])
{
    cadre_job_id_format(id, buf);
}

static uint64_t
ledger_hash(const cadre_job_id *id)
{
    uint64_t a, b, x;

    memcpy(&a, id->b, 8);
    memcpy(&b, id->b + 8, 8);
    x = a ^ (b * 0x9e3779b97f4a7c15ull);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static struct ledger_entry *
ledger_find(const struct ledger *l, const cadre_job_id *id)
{
    size_t i;

    if (l->cap == 0)
        return NULL;
    for (i = ledger_hash(id) & (l->cap - 1);; i = (i + 1) & (l->cap - 1)) {
        struct ledger_entry *e = &l->tab[i];
        if (e->count == 0)
            return NULL;
        if (memcmp(e->id.b, id->b, 16) == 0)
            return e;
    }
}

static int
ledger_add(struct ledger *l, const cadre_job_id *id, uint32_t attempt)
{
    struct ledger_entry *e;
    size_t               i;

    if ((l->used + 1) * 2 > l->cap) {
        struct ledger old = *l;
        l->cap = old.cap ? old.cap * 2 : 1024;
        l->tab = calloc(l->cap, sizeof(*l->tab));
        if (l->tab == NULL) {
            *l = old;
            return CADRE_ENOMEM;
        }
        l->used = 0;
        for (i = 0; i < old.cap; i++) {
            if (old.tab[i].count == 0)
                continue;
            e = &l->tab[0];
            for (size_t j = ledger_hash(&old.tab[i].id) & (l->cap - 1);;
                 j = (j + 1) & (l->cap - 1)) {
                if (l->tab[j].count == 0) {
                    e = &l->tab[j];
                    break;
                }
            }
            *e = old.tab[i];
            l->used++;
        }
        free(old.tab);
    }
    for (i = ledger_hash(id) & (l->cap - 1);; i = (i + 1) & (l->cap - 1)) {
        e = &l->tab[i];
        if (e->count == 0) {
            e->id = *id;
            l->used++;
            break;
        }
        if (memcmp(e->id.b, id->b, 16) == 0)
            break;
    }
    e->count++;
    if (attempt > e->max_attempt)
        e->max_attempt = attempt;
    return CADRE_OK;
}

/* Parses "<uuid> <attempt> [node] <pid> <ms>"; false if malformed. */
static bool
ledger_parse_line(char *line, cadre_job_id *id, uint32_t *attempt)
{
    char *tok[8], *save = NULL, *t, *end;
    int   n = 0;

    for (t = strtok_r(line, " \t", &save); t != NULL && n < 8;
         t = strtok_r(NULL, " \t", &save))
        tok[n++] = t;
    if (n < 4 || n > 5 || strlen(tok[0]) != 36 ||
        proc_uuid_parse(tok[0], id) != CADRE_OK)
        return false;
    *attempt = (uint32_t)strtoul(tok[1], &end, 10);
    if (*end != '\0' || end == tok[1])
        return false;
    for (int i = n - 2; i < n; i++) {
        strtoll(tok[i], &end, 10);
        if (*end != '\0' || end == tok[i])
            return false;
    }
    return true;
}

int
ledger_read(const char *path, struct ledger **out)
{
    struct ledger *l;
    FILE          *f;
    char          *line = NULL;
    size_t         cap = 0;
    ssize_t        n;
    int            rc = CADRE_OK;

    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return CADRE_ENOMEM;
    f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT) {
            *out = l;
            return CADRE_OK;
        }
        fprintf(stderr, "proc: ledger_read %s: %s\n", path, strerror(errno));
        free(l);
        return CADRE_EIO;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        cadre_job_id id;
        uint32_t     attempt;

        if (line[n - 1] != '\n') { /* torn last line */
            l->bad_lines++;
            continue;
        }
        line[n - 1] = '\0';
        if (!ledger_parse_line(line, &id, &attempt)) {
            l->bad_lines++;
            continue;
        }
        l->lines++;
        rc = ledger_add(l, &id, attempt);
        if (rc != CADRE_OK)
            break;
    }
    if (rc == CADRE_OK && ferror(f)) {
        fprintf(stderr, "proc: ledger_read %s: read error\n", path);
        rc = CADRE_EIO;
    }
    free(line);
    fclose(f);
    if (rc != CADRE_OK) {
        ledger_free(l);
        return rc;
    }
    *out = l;
    return CADRE_OK;
}

void
ledger_free(struct ledger *l)
{
    if (l == NULL)
        return;
    free(l->tab);
    free(l);
}

size_t
ledger_lines(const struct ledger *l)
{
    return l->lines;
}

size_t
ledger_jobs(const struct ledger *l)
{
    return l->used;
}

size_t
ledger_bad_lines(const struct ledger *l)
{
    return l->bad_lines;
}

uint32_t
ledger_count(const struct ledger *l, const cadre_job_id *id)
{
    const struct ledger_entry *e = ledger_find(l, id);

    return e ? e->count : 0;
}

uint32_t
ledger_count_str(const struct ledger *l, const char *uuid)
{
    cadre_job_id id;

    if (strlen(uuid) != 36 || proc_uuid_parse(uuid, &id) != CADRE_OK)
        return 0;
    return ledger_count(l, &id);
}

uint32_t
ledger_max_attempt(const struct ledger *l, const cadre_job_id *id)
{
    const struct ledger_entry *e = ledger_find(l, id);

    return e ? e->max_attempt : 0;
}

void
ledger_check(const struct ledger *l, const cadre_job_id *acked, size_t n,
             struct ledger_check *out)
{
    struct ledger set = {0}; /* the acked ids, deduplicated */
    size_t        printed = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        if (ledger_find(&set, &acked[i]) != NULL)
            continue;
        if (ledger_add(&set, &acked[i], 0) != CADRE_OK) {
            fprintf(stderr, "proc: ledger_check: out of memory\n");
            abort();
        }
        out->acked++;
        if (ledger_count(l, &acked[i]) > 0) {
            out->done++;
        } else {
            out->missing++;
            if (printed++ < 5) {
                char buf[37];
                proc_uuid_format(&acked[i], buf);
                fprintf(stderr, "proc: ledger: acked job %s never ran\n", buf);
            }
        }
    }
    for (size_t i = 0; i < l->cap; i++) {
        const struct ledger_entry *e = &l->tab[i];
        if (e->count == 0)
            continue;
        if (ledger_find(&set, &e->id) == NULL)
            out->unexpected++;
        if (e->count > 1) {
            out->duplicates += e->count - 1;
            out->dup_jobs++;
        }
    }
    free(set.tab);
}

void
ledger_check_print(const char *label, const struct ledger_check *c)
{
    printf("# %s: acked=%zu done=%zu missing=%zu unexpected=%zu "
           "duplicates=%zu dup_jobs=%zu\n",
           label, c->acked, c->done, c->missing, c->unexpected, c->duplicates,
           c->dup_jobs);
}
