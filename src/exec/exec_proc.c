/* The "exec" executor: checks an exec action, prepares what its child needs and starts it in a
 * process group of its own. Watching the running child is exec_child.c's. */
#include "exec/exec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

/* A child's PATH when asyncd has none (execvp's own default, less the current directory). */
#define DEFAULT_PATH "/usr/bin:/bin"

/* ---- validation ---- */

static int check_string(const json_t *v, const char *what, const char *name, struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s%s: expected a string, got %s", what,
                       name, json_kind_phrase(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s%s: contains a NUL character", what,
                       name);
    return 0;
}

static int check_argv(const json_t *argv, struct err *e)
{
    if (!json_is_array(argv) || json_array_size(argv) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "exec: expected a non-empty array of strings, got %s",
                       json_is_array(argv) ? "an empty array" : json_kind_phrase(argv));
    size_t i;
    const json_t *arg;
    json_array_foreach(argv, i, arg)
    {
        char name[32];
        snprintf(name, sizeof name, "[%zu]", i);
        int rc = check_string(arg, "exec", name, e);
        if (rc < 0)
            return rc;
    }
    if (json_string_value(json_array_get(argv, 0))[0] == '\0')
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "exec[0]: expected a program, got \"\"");
    return 0;
}

static int check_env(const json_t *env, struct err *e)
{
    if (!json_is_object(env))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "env: expected an object, got %s",
                       json_kind_phrase(env));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)env, key, value)
    {
        if (key[0] == '\0' || strchr(key, '='))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "env: \"%s\" is not a variable name (empty or has '=')", key);
        int rc = check_string(value, "env.", key, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int proc_validate(const json_t *action, struct err *e)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)action, key, value)
    {
        if (strcmp(key, "exec") != 0 && strcmp(key, "env") != 0 && strcmp(key, "cwd") != 0)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: unknown key in an exec action (expected exec, env, cwd)", key);
    }
    int rc = check_argv(json_object_get(action, "exec"), e);
    const json_t *env = json_object_get(action, "env");
    const json_t *cwd = json_object_get(action, "cwd");
    if (rc == 0 && env)
        rc = check_env(env, e);
    if (rc == 0 && cwd)
        rc = check_string(cwd, "", "cwd", e);
    if (rc == 0 && cwd && json_string_value(cwd)[0] == '\0')
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "cwd: expected a directory, got \"\"");
    return rc;
}

/* ---- what the child needs, prepared before fork (the child may not allocate) ---- */

/* Adds "K=V" (taking ownership of kv), replacing an earlier entry for the same K. */
static void env_put(struct exec_plan *p, char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = eq ? (size_t)(eq - kv) + 1 : strlen(kv);
    for (size_t i = 0; i < p->envc; i++)
        if (strncmp(p->envp[i], kv, klen) == 0 && (eq || p->envp[i][klen] == '\0')) {
            free(p->envp[i]);
            p->envp[i] = kv;
            return;
        }
    if (p->envc + 1 >= p->envcap) {
        p->envcap *= 2;
        p->envp = xrealloc(p->envp, p->envcap * sizeof *p->envp);
    }
    p->envp[p->envc++] = kv;
    p->envp[p->envc] = NULL;
}

/* What a step child inherits from asyncd's own environment: the search path, the home directory,
 * the zone and the locale -- nothing else, as asyncd's environment may hold the store URL,
 * PGPASSWORD, tokens or whatever its supervisor put there. */
static const char *const inherited_env[] = {"PATH", "HOME", "LANG", "TZ", NULL};

/* The locale categories, POSIX's and glibc's, named one by one rather than matched as "LC_*". */
static const char *const locale_env[] = {"LC_ALL",         "LC_COLLATE",  "LC_CTYPE",
                                         "LC_MESSAGES",    "LC_MONETARY", "LC_NUMERIC",
                                         "LC_TIME",        "LC_ADDRESS",  "LC_IDENTIFICATION",
                                         "LC_MEASUREMENT", "LC_NAME",     "LC_PAPER",
                                         "LC_TELEPHONE",   NULL};

/* What the engine sets for a step (docs/flows.md, "What a step child gets"): only these names pass
 * from job->extra_env, so a new variable is a deliberate, documented change. ASYNCD_INSTANCE_DSN
 * is not among them: it is made here from job->dsn, without its password (plan_instance). */
static const char *const step_env[] = {
    "ASYNCD_TASK_ID",   "ASYNCD_INSTANCE_ID", "ASYNCD_DATA_DIR", "ASYNCD_STEP_INDEX",
    "ASYNCD_STEP_NAME", "ASYNCD_PHASE",       "ASYNCD_ATTEMPT",  NULL};

/* Whether "K=V" names one of names exactly (no prefix match: ASYNCD_ADMIN_TOKEN never passes). */
static bool env_allowed(const char *kv, const char *const *names)
{
    const char *eq = strchr(kv, '=');
    if (!eq)
        return false;
    size_t klen = (size_t)(eq - kv);
    for (const char *const *n = names; *n; n++)
        if (strlen(*n) == klen && strncmp(*n, kv, klen) == 0)
            return true;
    return false;
}

/* ASYNCD_INSTANCE_DSN without the password and ASYNCD_INSTANCE_DSN_FILE naming the 0600 file
 * with the whole DSN (both "" when the task has no instance DSN): a process's environment is
 * copied into every program it starts and kept in core dumps, a file is read only by who opens
 * it. -1 with why on failure. */
static int plan_instance(struct exec_plan *p, const struct exec_job *job, char *why, size_t why_cap)
{
    if (!job->dsn || !job->dsn[0]) {
        env_put(p, xstrdup("ASYNCD_INSTANCE_DSN="));
        env_put(p, xstrdup("ASYNCD_INSTANCE_DSN_FILE="));
        return 0;
    }
    if (exec_dsn_file_write(&p->dsn_file, job->dsn, why, why_cap) < 0)
        return -1;
    char *shown = exec_dsn_without_password(job->dsn);
    env_put(p, xasprintf("ASYNCD_INSTANCE_DSN=%s", shown));
    env_put(p, xasprintf("ASYNCD_INSTANCE_DSN_FILE=%s", p->dsn_file.path));
    free(shown);
    return 0;
}

/* The child's environment: the allow-listed part of ours, the engine's documented ASYNCD_*
 * variables and the instance's DSN (plan_instance), then the action's own "env" (the
 * template's choice, so it may override). -1 with why when the DSN file cannot be written. */
static int plan_env(struct exec_plan *p, const struct exec_job *job, char *why, size_t why_cap)
{
    p->envcap = 64;
    p->envp = xmalloc(p->envcap * sizeof *p->envp);
    p->envp[0] = NULL;
    env_put(p, xstrdup("PATH=" DEFAULT_PATH)); /* replaced by ours when we have one */
    for (char **v = environ; v && *v; v++)
        if (env_allowed(*v, inherited_env) || env_allowed(*v, locale_env))
            env_put(p, xstrdup(*v));
    for (const char *const *v = job->extra_env; v && *v; v++)
        if (env_allowed(*v, step_env))
            env_put(p, xstrdup(*v));
    if (plan_instance(p, job, why, why_cap) < 0)
        return -1;
    const char *key;
    json_t *value;
    json_object_foreach(json_object_get(job->action, "env"), key, value)
        env_put(p, xasprintf("%s=%s", key, json_string_value(value)));
    return 0;
}

/* The candidates execvp would try: argv0 itself when it has a '/', else each PATH entry. */
static void plan_paths(struct exec_plan *p)
{
    const char *file = p->argv[0], *path = DEFAULT_PATH;
    if (strchr(file, '/')) {
        p->paths = xmalloc(sizeof *p->paths);
        p->paths[p->npaths++] = xstrdup(file);
        return;
    }
    for (size_t i = 0; i < p->envc; i++)
        if (strncmp(p->envp[i], "PATH=", 5) == 0)
            path = p->envp[i] + 5;
    p->paths = xmalloc((strlen(path) + 2) * sizeof *p->paths);
    for (const char *dir = path;; dir++) {
        const char *colon = strchrnul(dir, ':');
        int dlen = (int)(colon - dir);
        p->paths[p->npaths++] =
            dlen ? xasprintf("%.*s/%s", dlen, dir, file) : xstrdup(file); /* "" = cwd */
        dir = colon;
        if (*dir == '\0')
            break;
    }
}

int exec_plan_init(struct exec_plan *p, const struct exec_job *job, char *why, size_t why_cap)
{
    memset(p, 0, sizeof *p);
    const json_t *argv = json_object_get(job->action, "exec");
    size_t argc = json_array_size(argv);
    p->argv = xcalloc(argc + 1, sizeof *p->argv);
    p->sh_argv = xcalloc(argc + 2, sizeof *p->sh_argv);
    p->sh_argv[0] = "/bin/sh";
    for (size_t i = 0; i < argc; i++) {
        p->argv[i] = (char *)json_string_value(json_array_get(argv, i));
        p->sh_argv[i + 1] = p->argv[i];
    }
    const json_t *cwd = json_object_get(job->action, "cwd");
    p->cwd = cwd ? json_string_value(cwd) : NULL;
    if (plan_env(p, job, why, why_cap) < 0)
        return -1;
    plan_paths(p);
    long limit = sysconf(_SC_OPEN_MAX); /* not async-signal-safe: asked here, not in the child */
    p->fd_limit = limit > 0 && limit < INT_MAX ? (int)limit : 65536;
    return 0;
}

/* Called once the child and its process group are gone (exec_child_finish), so nothing of the
 * step still reads the DSN file when it is removed. */
void exec_plan_free(struct exec_plan *p)
{
    exec_dsn_file_remove(&p->dsn_file);
    for (size_t i = 0; i < p->envc; i++)
        free(p->envp[i]);
    for (size_t i = 0; i < p->npaths; i++)
        free(p->paths[i]);
    free(p->envp);
    free(p->paths);
    free(p->argv);
    free(p->sh_argv);
}

/* ---- the child, between fork and exec: async-signal-safe calls only ---- */

enum spawn_stage { STAGE_SETUP = 1, STAGE_CHDIR, STAGE_EXEC };

struct spawn_failure {
    int stage;
    int err;
};

static _Noreturn void child_fail(int status_fd, int stage, int err)
{
    struct spawn_failure f = {stage, err};
    ssize_t w;
    do
        w = write(status_fd, &f, sizeof f);
    while (w < 0 && errno == EINTR);
    _exit(127);
}

/* Default dispositions and an empty mask: an ignored SIGPIPE would otherwise survive exec. */
static void child_reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL); /* EINVAL for the libc-reserved ones is fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* fds[i] becomes descriptor i; first lifted above 2 so no dup2 clobbers another source. */
static int child_stdio(int fds[3])
{
    for (int i = 0; i < 3; i++)
        if (fds[i] < 3 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
            return -1;
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0)
            return -1;
    return 0;
}

/* ---- closing the descriptors a step must not inherit (child side, async-signal-safe) ---- */

static int sys_close_range(unsigned first, unsigned last, unsigned flags)
{
#ifdef SYS_close_range
    return (int)syscall(SYS_close_range, first, last, flags);
#else
    (void)first, (void)last, (void)flags;
    errno = ENOSYS;
    return -1;
#endif
}

struct exec_fd_closer exec_fd_closer = {sys_close_range, "/proc/self/fd"};

/* close_range(2) around keep: one or two calls; fails with ENOSYS before Linux 5.9. */
static int close_by_range(int keep)
{
    if (keep > 3 && exec_fd_closer.close_range(3, (unsigned)keep - 1, 0) < 0)
        return -1;
    return exec_fd_closer.close_range((unsigned)keep + 1, ~0U, 0);
}

/* The descriptor a /proc/self/fd entry names, or -1 for "." and "..". */
static int fd_of_name(const char *name)
{
    int fd = 0;
    if (*name == '\0')
        return -1;
    for (; *name; name++) {
        if (*name < '0' || *name > '9' || fd > (INT_MAX - 9) / 10)
            return -1;
        fd = fd * 10 + (*name - '0');
    }
    return fd;
}

/* The layout getdents64(2) fills in (glibc declares no struct for the raw call). */
struct raw_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Walks the descriptor directory with raw getdents64 (opendir would allocate) and closes each
 * entry above 2 but keep and the directory itself. Closing while reading is fine: the kernel
 * lists /proc/self/fd by descriptor number, so nothing shifts under the read position. */
static int close_by_walk(int keep)
{
    int dir = open(exec_fd_closer.fd_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -1;
    _Alignas(struct raw_dirent64) char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0)
        for (long off = 0; off < n;) {
            const struct raw_dirent64 *d = (const struct raw_dirent64 *)(buf + off);
            int fd = fd_of_name(d->d_name);
            if (fd > 2 && fd != keep && fd != dir)
                close(fd);
            off += d->d_reclen;
        }
    close(dir);
    return n < 0 ? -1 : 0;
}

/* Every descriptor above 2 is closed but keep (the status pipe, close-on-exec: exec closes it,
 * and until then it is how a failed exec is reported). Another thread's socket, a store or MySQL
 * connection opened without close-on-exec would otherwise reach the step. close_range first;
 * without it a walk of /proc/self/fd; without /proc, close() on every number below the limit
 * (slow when the limit is large, so only the last resort). */
static void child_close_fds(int keep, int fd_limit)
{
    if (close_by_range(keep) == 0 || close_by_walk(keep) == 0)
        return;
    for (int fd = 3; fd < fd_limit; fd++)
        if (fd != keep)
            close(fd);
}

static _Noreturn void child_main(const struct exec_plan *p, int fds[3], int status_fd)
{
    setpgid(0, 0);
    /* If asyncd dies (kill -9), the step dies with it instead of running on beside the re-run
     * that follows the restart. (It follows the worker thread, which outlives its children.) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    child_reset_signals();
    /* Above 2 first, so neither setting up 0..2 nor closing what is above 2 can lose it. */
    if (status_fd < 3 && (status_fd = fcntl(status_fd, F_DUPFD_CLOEXEC, 3)) < 0)
        _exit(127); /* nothing left to report through: the parent sees a bare exit */
    if (child_stdio(fds) < 0)
        child_fail(status_fd, STAGE_SETUP, errno);
    child_close_fds(status_fd, p->fd_limit);
    if (p->cwd && chdir(p->cwd) < 0)
        child_fail(status_fd, STAGE_CHDIR, errno);
    /* execvp's search: skip what is not there, remember EACCES, stop at any other error */
    int saw_eacces = 0;
    for (size_t i = 0; i < p->npaths; i++) {
        execve(p->paths[i], p->argv, p->envp);
        int err = errno;
        if (err == ENOEXEC) { /* a script without #!: run it with sh, as execvp does */
            p->sh_argv[1] = p->paths[i];
            execve(p->sh_argv[0], p->sh_argv, p->envp);
            child_fail(status_fd, STAGE_EXEC, errno);
        }
        if (err == EACCES)
            saw_eacces = 1;
        else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
                 err != ETIMEDOUT)
            child_fail(status_fd, STAGE_EXEC, err);
    }
    child_fail(status_fd, STAGE_EXEC, saw_eacces ? EACCES : ENOENT);
}

/* ---- starting the child (the parent's side) ---- */

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void close_pipes(int fds[][2], int n)
{
    for (int i = 0; i < n; i++) {
        close_fd(&fds[i][0]);
        close_fd(&fds[i][1]);
    }
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
#else
    (void)pid;
    return -1;
#endif
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Waits for the child to exec or fail: its end of the status pipe closes on exec. */
static int read_spawn_status(int fd, struct spawn_failure *f)
{
    ssize_t r;
    do
        r = read(fd, f, sizeof *f);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof *f ? -1 : 0;
}

static void describe_spawn_failure(const struct exec_plan *p, const struct spawn_failure *f,
                                   char *msg, size_t cap)
{
    char buf[256];
    const char *why = strerror_r(f->err, buf, sizeof buf);
    if (f->stage == STAGE_CHDIR)
        snprintf(msg, cap, "cannot chdir to %s: %s", p->cwd, why);
    else
        snprintf(msg, cap, "cannot run %s: %s", p->argv[0], why);
    exec_utf8_fix(msg);
}

int exec_spawn(const struct exec_plan *p, struct exec_spawned *s, char *msg, size_t cap)
{
    struct spawn_failure f;
    int fds[4][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}}; /* stdin, stdout, stderr, status */
    for (int i = 0; i < 4; i++)
        if (pipe2(fds[i], O_CLOEXEC) < 0) {
            f = (struct spawn_failure){STAGE_SETUP, errno};
            close_pipes(fds, 4);
            describe_spawn_failure(p, &f, msg, cap);
            return -1;
        }
    /* vfork, not fork: the child borrows our memory until it execs, so starting a step costs no
     * copy of asyncd's page tables (fork was the largest cost per task in bench/tasks.md). The
     * child runs only async-signal-safe code and never returns; every signal is blocked around
     * the call so no handler of ours runs in it before it resets them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int child_fds[3] = {fds[0][0], fds[1][1], fds[2][1]};
    pid_t pid = vfork();
    if (pid == 0)
        child_main(p, child_fds, fds[3][1]);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        f = (struct spawn_failure){STAGE_SETUP, fork_errno};
        close_pipes(fds, 4);
        describe_spawn_failure(p, &f, msg, cap);
        return -1;
    }
    setpgid(pid, pid); /* also here, so the group exists whichever runs first */
    close_fd(&fds[0][0]);
    close_fd(&fds[1][1]);
    close_fd(&fds[2][1]);
    close_fd(&fds[3][1]);
    int failed = read_spawn_status(fds[3][0], &f);
    close_fd(&fds[3][0]);
    if (failed) {
        close_pipes(fds, 3);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        describe_spawn_failure(p, &f, msg, cap);
        return -1;
    }
    s->pid = pid;
    s->pidfd = open_pidfd(pid);
    s->in_fd = fds[0][1];
    s->out_fd = fds[1][0];
    s->err_fd = fds[2][0];
    set_nonblock(s->in_fd);
    set_nonblock(s->out_fd);
    set_nonblock(s->err_fd);
    return 0;
}

const struct exec_backend exec_proc_backend = {"exec", proc_validate, exec_proc_run,
                                               exec_proc_start};
