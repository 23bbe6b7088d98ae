/* A running exec child, as its parent sees it: its pipes pumped into tail buffers, its exit, its
 * timeout, SIGTERM then SIGKILL to its group, and the result. One state machine serves both the
 * blocking exec_run (a poll loop on this thread) and an event loop's child (exec_child_*). */
#include "exec/exec_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"

enum {
    TICK_MS = 100,           /* how often ctl->poll is called */
    FALLBACK_TICK_MS = 10,   /* exec_run without a pidfd: how often we look for the exit */
    DRAIN_MS = 50,           /* how long we read pipes a grandchild may hold after the exit */
    DEFAULT_GRACE_MS = 1000, /* SIGTERM to SIGKILL */
    TAIL_SIZE = 8192,        /* how much of stdout and stderr we keep */
    READ_SIZE = 16384,
};

struct tail {
    char *buf; /* TAIL_SIZE bytes, allocated at the first output: a silent step costs nothing */
    size_t len;
    int cut; /* bytes were dropped from the front */
};

enum child_state {
    CHILD_RUNNING,
    CHILD_TERMINATING, /* SIGTERM sent; SIGKILL at until_ms */
    CHILD_KILLING,     /* SIGKILL sent; waiting for the exit */
    CHILD_DRAINING,    /* exited; reading what the pipes still hold until until_ms */
    CHILD_DONE,
};

struct proc_child {
    struct exec_child base; /* first: exec_child_* dispatch through it */
    struct exec_plan plan;
    int pid;   /* also the process group id */
    int pidfd; /* readable once the child exits; -1 without pidfd_open or once the exit is seen */
    int in_fd, out_fd, err_fd; /* our pipe ends, -1 once closed */
    const char *in_buf;        /* borrowed: job->stdin_text */
    size_t in_len, in_off;
    struct tail out, err;
    int exited; /* the child is a zombie: seen with WNOWAIT, so its pid (= pgid) is not reused */
    int status; /* waitpid status, once reaped */
    enum child_state state;
    enum exec_outcome why; /* EXEC_DONE, or why we stopped it (EXEC_TIMEOUT, EXEC_STOPPED) */
    const struct exec_control *ctl;
    unsigned timeout_s;
    int64_t deadline_ms; /* the timeout; INT64_MAX = none */
    int64_t until_ms;    /* TERMINATING: when SIGKILL follows; DRAINING: when we stop reading */
    int epfd;            /* the epoll set our descriptors are in, or -1 */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Out of the epoll set first: once closed, the number may name another child's pipe. */
static void child_close(struct proc_child *c, int *fd)
{
    if (*fd < 0)
        return;
    if (c->epfd >= 0)
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

/* ---- I/O ---- */

static void tail_add(struct tail *t, const char *p, size_t n)
{
    if (!t->buf)
        t->buf = xmalloc(TAIL_SIZE);
    if (n >= TAIL_SIZE) {
        memcpy(t->buf, p + n - TAIL_SIZE, TAIL_SIZE);
        t->len = TAIL_SIZE;
        t->cut = 1;
        return;
    }
    if (t->len + n > TAIL_SIZE) {
        size_t drop = t->len + n - TAIL_SIZE;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
        t->cut = 1;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

/* One read into the tail; closes the fd at end of file or on an error. */
static void pump_read(struct proc_child *c, int *fd, struct tail *t)
{
    char buf[READ_SIZE];
    ssize_t r = read(*fd, buf, sizeof buf);
    if (r > 0)
        tail_add(t, buf, (size_t)r);
    else if (r == 0 || (errno != EAGAIN && errno != EINTR))
        child_close(c, fd);
}

/* write() with SIGPIPE held back for this thread: a reader that went away is EPIPE, never a
 * signal, whatever the process-wide disposition. A SIGPIPE the write raised is taken back. */
static ssize_t write_no_sigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, buf, n);
    int saved = errno;
    if (w < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return w;
}

/* Feeds stdin what fits; closes it when all is written or the child stopped reading. */
static void pump_write(struct proc_child *c)
{
    size_t n = c->in_len - c->in_off;
    ssize_t w = n ? write_no_sigpipe(c->in_fd, c->in_buf + c->in_off, n) : 0;
    if (w > 0)
        c->in_off += (size_t)w;
    else if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (w < 0 || c->in_off == c->in_len)
        child_close(c, &c->in_fd);
}

/* Whether the child has exited, leaving it a zombie so its pid and group stay ours. The pidfd
 * has said all it can then: closed, so a level-triggered loop does not see it again. */
static void check_exit(struct proc_child *c)
{
    siginfo_t info;
    info.si_pid = 0;
    if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == c->pid) {
        c->exited = 1;
        child_close(c, &c->pidfd);
    }
}

/* Waits up to timeout_ms (0: not at all) for I/O or the exit, and does what is ready. */
static void child_pump(struct proc_child *c, int64_t timeout_ms)
{
    /* a closed fd (-1) is skipped by poll() */
    struct pollfd pfd[4] = {
        {c->in_fd, POLLOUT, 0},
        {c->out_fd, POLLIN, 0},
        {c->err_fd, POLLIN, 0},
        {c->pidfd, POLLIN, 0},
    };
    if (c->pidfd < 0 && !c->exited && timeout_ms > FALLBACK_TICK_MS)
        timeout_ms = FALLBACK_TICK_MS;
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (poll(pfd, 4, (int)timeout_ms) > 0) {
        if (pfd[0].revents)
            pump_write(c);
        if (pfd[1].revents)
            pump_read(c, &c->out_fd, &c->out);
        if (pfd[2].revents)
            pump_read(c, &c->err_fd, &c->err);
    }
    if (!c->exited)
        check_exit(c);
}

/* ---- the state machine ---- */

static void signal_group(const struct proc_child *c, int sig)
{
    kill(-c->pid, sig);
    kill(c->pid, sig); /* in case the child left its group */
}

static void terminate(struct proc_child *c, enum exec_outcome why, int64_t now)
{
    c->why = why;
    unsigned grace = c->ctl && c->ctl->kill_grace_ms ? c->ctl->kill_grace_ms : DEFAULT_GRACE_MS;
    signal_group(c, SIGTERM);
    c->state = CHILD_TERMINATING;
    c->until_ms = now + grace;
}

/* The child exited: a grandchild may still hold the pipes, so we read them a little longer. */
static void start_drain(struct proc_child *c, int64_t now)
{
    c->state = CHILD_DRAINING;
    c->until_ms = now + DRAIN_MS;
}

/* Moves c on as far as the clock and what it has seen allow. True once done. */
static bool child_advance(struct proc_child *c, bool poll)
{
    int64_t now = now_ms();
    if (!c->exited && c->pidfd < 0)
        check_exit(c);
    switch (c->state) {
    case CHILD_RUNNING:
        if (c->exited)
            start_drain(c, now);
        else if (now >= c->deadline_ms)
            terminate(c, EXEC_TIMEOUT, now);
        else if (poll && c->ctl && c->ctl->poll && c->ctl->poll(c->ctl->ctx))
            terminate(c, EXEC_STOPPED, now);
        break;
    case CHILD_TERMINATING:
        if (c->exited) {
            start_drain(c, now);
        } else if (now >= c->until_ms) {
            signal_group(c, SIGKILL);
            c->state = CHILD_KILLING;
        }
        break;
    case CHILD_KILLING:
        if (c->exited)
            c->state = CHILD_DONE;
        break;
    case CHILD_DRAINING:
    case CHILD_DONE:
        break;
    }
    if (c->state == CHILD_DRAINING && ((c->out_fd < 0 && c->err_fd < 0) || now >= c->until_ms))
        c->state = CHILD_DONE;
    return c->state == CHILD_DONE;
}

static int64_t proc_due_ms(const struct proc_child *c)
{
    switch (c->state) {
    case CHILD_RUNNING:
        return c->deadline_ms;
    case CHILD_TERMINATING:
    case CHILD_DRAINING:
        return c->until_ms;
    case CHILD_KILLING:
        return INT64_MAX;
    case CHILD_DONE:
        break;
    }
    return 0;
}

static const struct exec_child_ops proc_ops;

struct exec_child *exec_proc_start(const struct exec_job *job, const struct exec_control *ctl,
                                   struct exec_result *out)
{
    struct proc_child *c = xcalloc(1, sizeof *c);
    char why[512];
    struct exec_spawned s;
    c->epfd = -1;
    if (exec_plan_init(&c->plan, job, why, sizeof why) < 0) {
        snprintf(out->message, sizeof out->message,
                 "cannot give the step the instance's DSN file: %s", why);
        exec_utf8_fix(out->message);
    } else if (exec_spawn(&c->plan, &s, out->message, sizeof out->message) == 0) {
        c->pid = s.pid;
        c->pidfd = s.pidfd;
        c->in_fd = s.in_fd;
        c->out_fd = s.out_fd;
        c->err_fd = s.err_fd;
        c->ctl = ctl;
        c->timeout_s = job->timeout_s;
        c->deadline_ms = job->timeout_s ? now_ms() + (int64_t)job->timeout_s * 1000 : INT64_MAX;
        c->why = EXEC_DONE;
        if (job->started)
            job->started(job->started_ctx, c->pid);
        c->in_buf = job->stdin_text ? job->stdin_text : "";
        c->in_len = strlen(c->in_buf);
        if (c->in_len == 0)
            child_close(c, &c->in_fd);
        c->base.ops = &proc_ops;
        return &c->base;
    }
    out->outcome = EXEC_FAILED;
    out->exit_code = -1;
    exec_plan_free(&c->plan);
    free(c);
    return NULL;
}

/* ---- an event loop's child ---- */

static int proc_attach(struct proc_child *c, int epfd, void *tag)
{
    int *fds[4] = {&c->pidfd, &c->in_fd, &c->out_fd, &c->err_fd};
    for (int i = 0; i < 4; i++) {
        if (*fds[i] < 0)
            continue;
        struct epoll_event ev = {.events = i == 1 ? EPOLLOUT : EPOLLIN, .data.ptr = tag};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, *fds[i], &ev) < 0) {
            int saved = errno;
            for (int j = 0; j < i; j++)
                if (*fds[j] >= 0)
                    epoll_ctl(epfd, EPOLL_CTL_DEL, *fds[j], NULL);
            errno = saved;
            return -1;
        }
    }
    c->epfd = epfd;
    return 0;
}

static bool proc_on_event(struct proc_child *c)
{
    child_pump(c, 0);
    return child_advance(c, false);
}

static bool proc_tick(struct proc_child *c, bool poll)
{
    if (c->epfd < 0) /* nobody tells us of its I/O: look now */
        child_pump(c, 0);
    return child_advance(c, poll);
}

/* ---- the result ---- */

/* A last line that is a JSON object is the step's output (kept for later steps and its undo);
 * its "message" member, if any, is the message. */
static void take_output(struct exec_result *out)
{
    if (out->message[0] != '{')
        return;
    json_t *obj = json_loads(out->message, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return;
    }
    const char *m = json_string_value(json_object_get(obj, "message"));
    snprintf(out->message, sizeof out->message, "%s", m ? m : "");
    out->output = obj;
}

static void describe_exit(const struct proc_child *c, struct exec_result *out)
{
    int st = c->status;
    out->outcome = EXEC_FAILED;
    exec_last_line(c->err.buf ? c->err.buf : "", c->err.len, c->err.cut, out->message,
                   sizeof out->message);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        out->outcome = EXEC_DONE;
        out->exit_code = 0;
        exec_last_line(c->out.buf ? c->out.buf : "", c->out.len, c->out.cut, out->message,
                       sizeof out->message);
        take_output(out);
    } else if (WIFEXITED(st)) {
        out->exit_code = WEXITSTATUS(st);
        if (!out->message[0])
            snprintf(out->message, sizeof out->message, "exited with status %d", out->exit_code);
    } else {
        int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        const char *name = exec_signal_name(sig);
        out->exit_code = 128 + sig;
        if (!out->message[0])
            snprintf(out->message, sizeof out->message, "killed by signal %d%s%s%s", sig,
                     name ? " (" : "", name ? name : "", name ? ")" : "");
    }
}

static void proc_finish(struct proc_child *c, struct exec_result *out)
{
    memset(out, 0, sizeof *out);
    if (c->exited && (c->out_fd >= 0 || c->err_fd >= 0))
        child_pump(c, 0); /* what arrived since the last event */
    /* before reaping, while the pgid cannot name another group */
    signal_group(c, SIGKILL);
    while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR) {
    }
    child_close(c, &c->in_fd);
    child_close(c, &c->out_fd);
    child_close(c, &c->err_fd);
    child_close(c, &c->pidfd);
    describe_exit(c, out);
    if (c->why != EXEC_DONE) {
        if (out->output) {
            json_decref(out->output);
            out->output = NULL;
        }
        out->outcome = c->why;
    }
    if (c->why == EXEC_TIMEOUT)
        snprintf(out->message, sizeof out->message, "timed out after %u s", c->timeout_s);
    else if (c->why == EXEC_STOPPED)
        snprintf(out->message, sizeof out->message, "stopped by request");
    exec_plan_free(&c->plan); /* the group is gone: nothing reads the DSN file any more */
    free(c->out.buf);
    free(c->err.buf);
    free(c);
}

/* ---- what exec_child_* call ---- */

static int ops_attach(struct exec_child *c, int epfd, void *tag)
{
    return proc_attach((struct proc_child *)c, epfd, tag);
}

static bool ops_on_event(struct exec_child *c) { return proc_on_event((struct proc_child *)c); }

static bool ops_tick(struct exec_child *c, bool poll)
{
    return proc_tick((struct proc_child *)c, poll);
}

static int64_t ops_due_ms(const struct exec_child *c)
{
    return proc_due_ms((const struct proc_child *)c);
}

static void ops_finish(struct exec_child *c, struct exec_result *out)
{
    proc_finish((struct proc_child *)c, out);
}

static const struct exec_child_ops proc_ops = {ops_attach, ops_on_event, ops_tick, ops_due_ms,
                                               ops_finish};

/* ---- exec_run's blocking loop ---- */

int exec_proc_run(const struct exec_job *job, const struct exec_control *ctl,
                  struct exec_result *out, struct err *e)
{
    (void)e; /* the action was validated; everything from here on is an outcome */
    struct exec_child *started = exec_proc_start(job, ctl, out);
    if (!started)
        return 0;
    struct proc_child *c = (struct proc_child *)started;
    bool polls = ctl && ctl->poll;
    int64_t next_poll = now_ms() + TICK_MS;
    for (bool done = false; !done;) {
        int64_t now = now_ms(), until = proc_due_ms(c);
        int64_t wake = polls ? next_poll : now + TICK_MS;
        child_pump(c, (until < wake ? until : wake) - now);
        now = now_ms();
        bool poll = polls && now >= next_poll;
        if (poll)
            next_poll = now + TICK_MS;
        done = child_advance(c, poll);
    }
    proc_finish(c, out);
    return 0;
}
