/* Readiness with a bound: the store probe runs on its own thread and /readyz waits for it at most
 * a fixed time. A PostgreSQL that is stopped refuses at once, but one that hangs (SIGSTOP, a dead
 * peer with no RST) would hold the probe until the kernel gives up, and a load balancer's
 * health check with it. */
#include "admin/admin_ready.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"

/* One probe at a time: while a hung one is out, later checks answer at once instead of piling up
 * threads on the same stuck store. */
static atomic_bool probe_out;

struct probe {
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    struct store *store;
    bool done;
    int refs; /* the waiter and the thread; the last to let go frees it */
    int rc;
    struct err e;
};

static void probe_release(struct probe *p)
{
    pthread_mutex_lock(&p->lock);
    int left = --p->refs;
    pthread_mutex_unlock(&p->lock);
    if (left)
        return;
    pthread_cond_destroy(&p->done_cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void *probe_run(void *arg)
{
    struct probe *p = arg;
    pthread_setname_np(pthread_self(), "ready-probe");
    int64_t n;
    struct err e = {0};
    int rc = store_account_count(p->store, &n, &e);
    pthread_mutex_lock(&p->lock);
    p->rc = rc;
    p->e = e;
    p->done = true;
    pthread_cond_signal(&p->done_cond);
    pthread_mutex_unlock(&p->lock);
    atomic_store(&probe_out, false);
    probe_release(p);
    return NULL;
}

static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

static int probe_start(struct probe *p, struct err *e)
{
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, probe_run, p);
    pthread_attr_destroy(&attr);
    if (rc)
        return err_set(e, ERR_INTERNAL, "cannot start the store probe: %s", strerror(rc));
    return 0;
}

static struct probe *probe_new(struct store *s)
{
    struct probe *p = xcalloc(1, sizeof *p);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->done_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&p->lock, NULL);
    p->store = s;
    p->refs = 2;
    return p;
}

int admin_ready_probe(struct store *s, int timeout_ms, struct err *e)
{
    bool idle = false;
    if (!atomic_compare_exchange_strong(&probe_out, &idle, true))
        return err_set(e, ERR_INTERNAL,
                       "the store has not answered an earlier readiness probe yet");
    struct probe *p = probe_new(s);
    if (probe_start(p, e)) {
        atomic_store(&probe_out, false);
        probe_release(p);
        probe_release(p);
        return -1;
    }
    struct timespec until = deadline_in(timeout_ms);
    pthread_mutex_lock(&p->lock);
    int wait = 0;
    while (!p->done && wait != ETIMEDOUT)
        wait = pthread_cond_timedwait(&p->done_cond, &p->lock, &until);
    int rc = p->done ? p->rc : -1;
    if (p->done && rc)
        *e = p->e;
    pthread_mutex_unlock(&p->lock);
    probe_release(p);
    if (rc && wait == ETIMEDOUT)
        return err_set(e, ERR_INTERNAL, "the store did not answer within %d ms", timeout_ms);
    return rc;
}
