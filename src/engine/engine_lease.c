/* The lease keeper: one thread per node that renews the leases of the tasks its workers run (all
 * of them in one store call per third of a lease: one write per node, not per task), looks for
 * operator kill/pause, and writes the durable record of each exec step's process
 * group. Workers only read what it found, so a store that stalls (or a network cut to it) stops
 * the renewals without stopping the workers' clocks: a worker fences itself (engine_run.c). */
#include <stdio.h>
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

/* One renewal round: every watch registered when it was sent, renewed by one store call. The
 * ids are copies, as a watch may be removed (and its memory reused) while the call is out. */
struct round {
    struct lease_ref *refs;
    struct lease_watch **who; /* who[i] held refs[i] when the round was sent */
    size_t n;
    int64_t lease_ms, sent;
};

static int by_pointer(const void *a, const void *b)
{
    const struct lease_watch *x = *(struct lease_watch *const *)a,
                             *y = *(struct lease_watch *const *)b;
    return (x > y) - (x < y);
}

static int by_lease(const void *a, const void *b)
{
    const struct lease_renewal *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->lease_no > y->lease_no) - (x->lease_no < y->lease_no);
}

/* Whether a renewal is due for any watch; *wake is lowered to the next due time. Under mu. */
static bool renew_due(struct engine *eng, int64_t now, int64_t *wake)
{
    bool due = false;
    for (struct lease_watch *w = eng->watches; w; w = w->next) {
        if (w->next_renew_ms <= now)
            due = true;
        else if (w->next_renew_ms < *wake)
            *wake = w->next_renew_ms;
    }
    return due;
}

/* Takes the round's list of every registered watch, sorted by pointer for round_has. Under mu. */
static void round_take(struct engine *eng, struct round *r, int64_t now)
{
    size_t n = 0;
    for (struct lease_watch *w = eng->watches; w; w = w->next)
        n++;
    memset(r, 0, sizeof *r);
    r->sent = now;
    r->who = xcalloc(n, sizeof *r->who);
    r->refs = xcalloc(n, sizeof *r->refs);
    for (struct lease_watch *w = eng->watches; w; w = w->next) {
        r->who[r->n++] = w;
        if (w->lease_ms > r->lease_ms) /* one length for all: the longest is safe for each */
            r->lease_ms = w->lease_ms;
    }
    qsort(r->who, r->n, sizeof *r->who, by_pointer);
    for (size_t i = 0; i < r->n; i++) {
        snprintf(r->refs[i].id, sizeof r->refs[i].id, "%s", r->who[i]->id);
        r->refs[i].lease_no = r->who[i]->lease_no;
    }
}

/* Whether w was registered, with this very lease, when the round was sent: a watch added while
 * it was out is not judged by it (its claim may have come after the renewal's statement). */
static bool round_has(const struct round *r, const struct lease_watch *w)
{
    struct lease_watch *const *hit = bsearch(&w, r->who, r->n, sizeof *r->who, by_pointer);
    if (!hit)
        return false;
    const struct lease_ref *ref = &r->refs[hit - r->who];
    return ref->lease_no == w->lease_no && strcmp(ref->id, w->id) == 0;
}

/* Applies the store's answer (sorted by_lease) to the watches still registered. Under mu. */
static void round_apply(struct engine *eng, const struct round *r, int rc,
                        const struct lease_renewal *got, size_t n_got)
{
    for (struct lease_watch *w = eng->watches; w; w = w->next) {
        if (!round_has(r, w))
            continue;
        if (rc != 0) { /* last_ok_ms stays: the worker fences itself if this goes on */
            w->next_renew_ms = engine_mono_ms() + RENEW_RETRY_MS;
            continue;
        }
        struct lease_renewal key = {.lease_no = w->lease_no};
        snprintf(key.id, sizeof key.id, "%s", w->id);
        w->next_renew_ms = r->sent + w->lease_ms / 3;
        if (n_got && bsearch(&key, got, n_got, sizeof *got, by_lease))
            atomic_store(&w->last_ok_ms, r->sent);
        else /* taken over, moved on by an operator, or expired by the store's clock */
            atomic_store(&w->stop, STOP_LOST);
    }
}

/* Renews every watched lease with one store call (one write, DESIGN.md 5), mu dropped around it.
 * Only the watched leases are listed: a lease of this node that no worker watches any more (its
 * worker fenced itself, or its release failed) is left to expire, never kept alive by the node. */
static void renew_round(struct engine *eng, int64_t now)
{
    struct round r;
    round_take(eng, &r, now);
    pthread_mutex_unlock(&eng->keeper_mu);
    struct lease_renewal *got = NULL;
    size_t n_got = 0;
    struct err e = {0};
    int rc =
        store_node_renew(eng->cfg.store, eng->cfg.node, r.lease_ms, r.refs, r.n, &got, &n_got, &e);
    if (rc == 0 && n_got > 1)
        qsort(got, n_got, sizeof *got, by_lease);
    else if (rc != 0)
        log_warn("engine: renewing the leases of %zu tasks: %s", r.n, e.msg);
    pthread_mutex_lock(&eng->keeper_mu);
    round_apply(eng, &r, rc, got, n_got);
    free(got);
    free(r.refs);
    free(r.who);
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

/* The first watch whose kill/pause check is due, or NULL; *wake is lowered to the next due
 * time. Under mu. */
static struct lease_watch *check_due(struct engine *eng, int64_t now, int64_t *wake)
{
    for (struct lease_watch *w = eng->watches; w; w = w->next) {
        if (w->busy)
            continue;
        if (w->next_check_ms <= now)
            return w;
        if (w->next_check_ms < *wake)
            *wake = w->next_check_ms;
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
    if (renew_due(eng, now, wake)) {
        renew_round(eng, now);
        return true;
    }
    struct lease_watch *w = check_due(eng, now, wake);
    if (!w)
        return false;
    w->busy = true;
    rotate(eng, w);
    pthread_mutex_unlock(&eng->keeper_mu);
    check(eng, w);
    pthread_mutex_lock(&eng->keeper_mu);
    w->busy = false;
    pthread_cond_broadcast(&eng->keeper_idle);
    return true;
}

static void *keeper_main(void *arg)
{
    struct engine *eng = arg;
    pthread_setname_np(pthread_self(), "lease-keeper");
    pthread_mutex_lock(&eng->keeper_mu);
    for (;;) {
        int64_t wake = engine_mono_ms() + KEEPER_TICK_MS;
        if (keeper_step(eng, &wake))
            continue;
        if (eng->keeper_stop && !eng->watches && !eng->ops)
            break;
        struct timespec until;
        deadline_in(&until, wake - engine_mono_ms());
        eng->keeper_sleep_until_ms = wake;
        pthread_cond_timedwait(&eng->keeper_cond, &eng->keeper_mu, &until);
        eng->keeper_sleep_until_ms = 0;
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
    /* Only when w is due before the keeper's planned wake-up (it sleeps at most KEEPER_TICK_MS,
     * less than CHECK_EVERY_MS, so only a lease shorter than 3 ticks): a wake-up per task
     * started and ended was 0.5 context switches a task in the one-step task bench (perf
     * sched_switch), the keeper finding nothing to do each time. An awake keeper rescans before
     * it sleeps. */
    int64_t due = w->next_renew_ms < w->next_check_ms ? w->next_renew_ms : w->next_check_ms;
    if (eng->keeper_sleep_until_ms && due < eng->keeper_sleep_until_ms)
        pthread_cond_signal(&eng->keeper_cond);
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
    /* Fewer watches is less work, nothing to wake for, unless a stopping keeper waits for the
     * last one to go. */
    if (eng->keeper_stop && !eng->watches)
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
