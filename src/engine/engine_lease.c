/* The lease keeper: one thread per node that renews the leases of the tasks its workers run,
 * looks for operator kill/pause, and writes the durable record of each exec step's process
 * group. Workers only read what it found, so a store that stalls (or a network cut to it) stops
 * the renewals without stopping the workers' clocks: a worker fences itself (engine_run.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "engine/engine_int.h"

#define KEEPER_TICK_MS 100 /* the longest the keeper sleeps with nothing due */
#define CHECK_EVERY_MS 250 /* how often a running task is looked at for kill/pause: kill < 1 s */
#define RENEW_RETRY_MS 250 /* after a failed renewal: well inside the fencing margin */

struct pgroup_op {
    struct step_pgroup g;
    bool clear;
    struct pgroup_op *next;
};

int64_t engine_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    ts->tv_sec += (time_t)(ms / 1000) + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

static void run_pgroup_op(struct engine *eng, struct pgroup_op *op)
{
    struct err e;
    int rc = op->clear ? store_pgroup_clear(eng->cfg.store, op->g.node, op->g.pgid, &e)
                       : store_pgroup_record(eng->cfg.store, &op->g, &e);
    if (rc != 0)
        log_warn("engine: %s process group %lld of task %s: %s (a leftover after a crash is "
                 "then %s)",
                 op->clear ? "clearing the record of" : "recording", (long long)op->g.pgid,
                 op->g.task_id, e.msg,
                 op->clear ? "checked and dropped at the next start" : "not killed at restart");
}

/* Renews w's lease. sent: when the statement went out, the lease's earliest start. */
static void renew(struct engine *eng, struct lease_watch *w, int64_t sent)
{
    struct task_lease_state ls;
    struct err e;
    int rc = store_task_renew(eng->cfg.store, w->id, w->lease_no, w->lease_ms, &ls, &e);
    pthread_mutex_lock(&eng->keeper_mu);
    if (rc == 0) {
        atomic_store(&w->last_ok_ms, sent);
        w->next_renew_ms = sent + w->lease_ms / 3;
        if (!ls.held)
            atomic_store(&w->stop, STOP_LOST);
    } else {
        w->next_renew_ms = engine_mono_ms() + RENEW_RETRY_MS;
    }
    pthread_mutex_unlock(&eng->keeper_mu);
    if (rc != 0)
        log_warn("engine: renewing the lease of task %s: %s", w->id, e.msg);
}

/* Whether an operator (or another node) moved the task on: then its step stops. */
static void check(struct engine *eng, struct lease_watch *w)
{
    struct task_summary t;
    struct err e;
    if (store_task_summary(eng->cfg.store, w->product, w->id, &t, &e) == 0 &&
        (t.state != TASK_RUNNING || t.lease_no != w->lease_no))
        atomic_store(&w->stop, STOP_CHANGED);
    pthread_mutex_lock(&eng->keeper_mu);
    w->next_check_ms = engine_mono_ms() + CHECK_EVERY_MS;
    pthread_mutex_unlock(&eng->keeper_mu);
}

/* The first watch with work due, or NULL; *wake is lowered to the next due time. Under mu. */
static struct lease_watch *due_watch(struct engine *eng, int64_t now, int64_t *wake)
{
    for (struct lease_watch *w = eng->watches; w; w = w->next) {
        if (w->busy)
            continue;
        int64_t t = w->next_renew_ms < w->next_check_ms ? w->next_renew_ms : w->next_check_ms;
        if (t <= now)
            return w;
        if (t < *wake)
            *wake = t;
    }
    return NULL;
}

/* Moves w to the list's end, so watches take turns when many are due at once. Under mu. */
static void rotate(struct engine *eng, struct lease_watch *w)
{
    struct lease_watch **pp = &eng->watches;
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    w->next = NULL;
    while (*pp)
        pp = &(*pp)->next;
    *pp = w;
}

/* One piece of work, with mu held on entry and exit (dropped around store calls). False when
 * nothing was due. */
static bool keeper_step(struct engine *eng, int64_t *wake)
{
    struct pgroup_op *op = eng->ops;
    if (op) {
        eng->ops = op->next;
        if (!eng->ops)
            eng->ops_tail = &eng->ops;
        pthread_mutex_unlock(&eng->keeper_mu);
        run_pgroup_op(eng, op);
        free(op);
        pthread_mutex_lock(&eng->keeper_mu);
        return true;
    }
    int64_t now = engine_mono_ms();
    struct lease_watch *w = due_watch(eng, now, wake);
    if (!w)
        return false;
    w->busy = true;
    bool renewing = w->next_renew_ms <= now;
    rotate(eng, w);
    pthread_mutex_unlock(&eng->keeper_mu);
    if (renewing)
        renew(eng, w, now);
    else
        check(eng, w);
    pthread_mutex_lock(&eng->keeper_mu);
    w->busy = false;
    pthread_cond_broadcast(&eng->keeper_idle);
    return true;
}

static void *keeper_main(void *arg)
{
    struct engine *eng = arg;
    pthread_mutex_lock(&eng->keeper_mu);
    for (;;) {
        int64_t wake = engine_mono_ms() + KEEPER_TICK_MS;
        if (keeper_step(eng, &wake))
            continue;
        if (eng->keeper_stop && !eng->watches && !eng->ops)
            break;
        struct timespec until;
        deadline_in(&until, wake - engine_mono_ms());
        pthread_cond_timedwait(&eng->keeper_cond, &eng->keeper_mu, &until);
    }
    pthread_mutex_unlock(&eng->keeper_mu);
    return NULL;
}

int lease_keeper_start(struct engine *eng, struct err *e)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&eng->keeper_mu, NULL);
    pthread_cond_init(&eng->keeper_cond, &attr);
    pthread_cond_init(&eng->keeper_idle, NULL);
    pthread_condattr_destroy(&attr);
    eng->ops_tail = &eng->ops;
    if (pthread_create(&eng->keeper, NULL, keeper_main, eng) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the engine's lease keeper thread");
    eng->keeper_started = true;
    return 0;
}

void lease_keeper_stop(struct engine *eng)
{
    if (eng->keeper_started) {
        pthread_mutex_lock(&eng->keeper_mu);
        eng->keeper_stop = true;
        pthread_cond_broadcast(&eng->keeper_cond);
        pthread_mutex_unlock(&eng->keeper_mu);
        pthread_join(eng->keeper, NULL);
    }
    pthread_cond_destroy(&eng->keeper_cond);
    pthread_cond_destroy(&eng->keeper_idle);
    pthread_mutex_destroy(&eng->keeper_mu);
}

void lease_watch_add(struct engine *eng, struct lease_watch *w)
{
    pthread_mutex_lock(&eng->keeper_mu);
    w->next_renew_ms = atomic_load(&w->last_ok_ms) + w->lease_ms / 3;
    w->next_check_ms = engine_mono_ms() + CHECK_EVERY_MS;
    w->busy = false;
    w->next = eng->watches;
    eng->watches = w;
    pthread_cond_broadcast(&eng->keeper_cond);
    pthread_mutex_unlock(&eng->keeper_mu);
}

void lease_watch_remove(struct engine *eng, struct lease_watch *w)
{
    pthread_mutex_lock(&eng->keeper_mu);
    while (w->busy)
        pthread_cond_wait(&eng->keeper_idle, &eng->keeper_mu);
    struct lease_watch **pp = &eng->watches;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    pthread_cond_broadcast(&eng->keeper_cond);
    pthread_mutex_unlock(&eng->keeper_mu);
}

void lease_keeper_pgroup(struct engine *eng, const struct step_pgroup *g, bool clear)
{
    struct pgroup_op *op = xcalloc(1, sizeof *op);
    op->g = *g;
    op->clear = clear;
    pthread_mutex_lock(&eng->keeper_mu);
    *eng->ops_tail = op;
    eng->ops_tail = &op->next;
    pthread_cond_broadcast(&eng->keeper_cond);
    pthread_mutex_unlock(&eng->keeper_mu);
}
