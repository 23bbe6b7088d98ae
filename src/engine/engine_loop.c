/* The step loop: one thread watching every running exec child (its pidfd, its pipes) and mysql
 * session (its sockets) of this node through epoll, with a tick every 100 ms asking each run's
 * should_stop, so a step waiting for its child or its statements holds no worker thread. A
 * finished step's run goes back to a worker. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "engine/engine_int.h"

enum {
    LOOP_TICK_MS = 100, /* how often every child is asked whether to stop (kill, drain, fence) */
    LOOP_EVENTS = 256,  /* epoll events taken at once */
};

struct step_loop {
    struct engine *eng;
    int epfd, wake_fd; /* wake_fd: an eventfd, in the set with data.ptr NULL */
    pthread_t thread;
    pthread_mutex_t mu;
    struct parked *incoming; /* under mu: added, not yet watched (LIFO, linked by next) */
    bool stop;               /* under mu */
    struct parked *watched;  /* the loop thread's own: doubly linked */
    struct parked *done;     /* the loop thread's own: finished this round, linked by next */
};

static void unlink_watched(struct step_loop *l, struct parked *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->watched = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

/* The child is done: its result is made now, here; the run goes to a worker after this round's
 * events, as later events of the same round may still name p (they find child NULL). */
static void finish(struct step_loop *l, struct parked *p)
{
    unlink_watched(l, p);
    exec_child_finish(p->child, &p->res);
    p->child = NULL;
    p->next = l->done;
    l->done = p;
}

/* Moves the added runs into the watched list; true once asked to stop. */
static bool adopt_incoming(struct step_loop *l)
{
    uint64_t n;
    if (read(l->wake_fd, &n, sizeof n) < 0 && errno != EAGAIN)
        log_warn("engine: step loop: reading its eventfd: %s", strerror(errno));
    pthread_mutex_lock(&l->mu);
    struct parked *in = l->incoming;
    bool stop = l->stop;
    l->incoming = NULL;
    pthread_mutex_unlock(&l->mu);
    while (in) {
        struct parked *p = in;
        in = in->next;
        /* Unattached (the kernel refused another watch), the child is read at every tick. */
        if (exec_child_attach(p->child, l->epfd, p) < 0)
            log_warn("engine: step loop: cannot watch a step's child (%s); polling it every "
                     "%d ms instead",
                     strerror(errno), LOOP_TICK_MS);
        p->prev = NULL;
        p->next = l->watched;
        if (l->watched)
            l->watched->prev = p;
        l->watched = p;
    }
    return stop;
}

/* Ticks the children due by now (all of them, asking should_stop, on a tick); returns the
 * earliest time one is due next. */
static int64_t tick_children(struct step_loop *l, int64_t now, bool tick)
{
    int64_t next_due = INT64_MAX;
    for (struct parked *p = l->watched, *next; p; p = next) {
        next = p->next;
        if ((tick || exec_child_due_ms(p->child) <= now) && exec_child_tick(p->child, tick)) {
            finish(l, p);
            continue;
        }
        int64_t due = exec_child_due_ms(p->child);
        if (due < next_due)
            next_due = due;
    }
    return next_due;
}

static void *loop_main(void *arg)
{
    struct step_loop *l = arg;
    pthread_setname_np(pthread_self(), "step-loop");
    struct epoll_event evs[LOOP_EVENTS];
    int64_t next_tick = engine_mono_ms() + LOOP_TICK_MS, next_due = INT64_MAX;
    bool stop = false;
    while (!stop || l->watched) {
        int64_t now = engine_mono_ms(), until = next_tick < next_due ? next_tick : next_due;
        int n = epoll_wait(l->epfd, evs, LOOP_EVENTS, until > now ? (int)(until - now) : 0);
        if (n < 0 && errno != EINTR) {
            log_error("engine: step loop: epoll_wait: %s", strerror(errno));
            n = 0;
        }
        for (int i = 0; i < n; i++) {
            struct parked *p = evs[i].data.ptr;
            if (!p) {
                stop = adopt_incoming(l) || stop;
            } else if (p->child && exec_child_on_event(p->child)) {
                finish(l, p);
            } else if (p->child) {
                int64_t due = exec_child_due_ms(p->child);
                next_due = due < next_due ? due : next_due;
            }
        }
        now = engine_mono_ms();
        bool tick = now >= next_tick;
        if (tick)
            next_tick = now + LOOP_TICK_MS;
        if (tick || now >= next_due)
            next_due = tick_children(l, now, tick);
        if (l->done) {
            engine_resume_later(l->eng, l->done);
            l->done = NULL;
        }
    }
    return NULL;
}

void step_loop_add(struct engine *eng, struct parked *p)
{
    struct step_loop *l = eng->loop;
    pthread_mutex_lock(&l->mu);
    p->next = l->incoming;
    l->incoming = p;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_warn("engine: step loop: waking it: %s", strerror(errno));
}

static void loop_free(struct step_loop *l)
{
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int step_loop_start(struct engine *eng, struct err *e)
{
    struct step_loop *l = xcalloc(1, sizeof *l);
    l->eng = eng;
    pthread_mutex_init(&l->mu, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (l->epfd < 0 || l->wake_fd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &ev) < 0) {
        int saved = errno;
        loop_free(l);
        return err_set(e, ERR_INTERNAL, "cannot set up the engine's step loop: %s",
                       strerror(saved));
    }
    if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
        loop_free(l);
        return err_set(e, ERR_INTERNAL, "cannot start the engine's step loop thread");
    }
    eng->loop = l;
    return 0;
}

void step_loop_stop(struct engine *eng)
{
    struct step_loop *l = eng->loop;
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    uint64_t one = 1;
    if (write(l->wake_fd, &one, sizeof one) < 0)
        log_warn("engine: step loop: waking it to stop: %s", strerror(errno));
    pthread_join(l->thread, NULL);
    loop_free(l);
    eng->loop = NULL;
}
