/* The engine's worker threads: resume runs whose child ended, claim while fewer than
 * max_running are in flight, run (engine_run.c), sleep until woken or the next poll. */
#include "engine/engine.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "engine/engine_int.h"

#define IDLE_POLL_MS 200 /* idle workers look again this often: retries fall due, leases expire */

/* Waits up to ms for a wake-up: a task created or changed, a run to resume, a run ended. */
static void wait_for_work(struct engine *eng, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&eng->mu);
    /* once stopping, only a run to resume or the last run's end is worth waking for */
    bool idle = !eng->ready && !eng->claimed && (eng->stopping ? eng->in_flight > 0 : !eng->woken);
    if (idle)
        pthread_cond_timedwait(&eng->cond, &eng->mu, &until);
    eng->woken = false;
    pthread_mutex_unlock(&eng->mu);
}

enum work { WORK_RESUME, WORK_START, WORK_CLAIM, WORK_WAIT, WORK_QUIT };

/* What a worker does next: a run to resume comes first, then a claimed run to start; a claim
 * only while fewer than max_running are in flight (*slots are taken now: the free ones, at most
 * a batch); once stopping, it quits when no run is in flight any more, so every parked run gets
 * its bookkeeping done (a claimed one starts, and hands its task back). */
static enum work next_work(struct engine *eng, struct parked **resume, struct run_link **start,
                           size_t *slots)
{
    enum work w = WORK_WAIT;
    pthread_mutex_lock(&eng->mu);
    if (eng->ready) {
        *resume = eng->ready;
        eng->ready = eng->ready->next;
        if (!eng->ready)
            eng->ready_tail = &eng->ready;
        w = WORK_RESUME;
    } else if (eng->claimed) {
        *start = eng->claimed;
        eng->claimed = eng->claimed->next;
        if (!eng->claimed)
            eng->claimed_tail = &eng->claimed;
        w = WORK_START;
    } else if (eng->stopping) {
        w = eng->in_flight == 0 ? WORK_QUIT : WORK_WAIT;
    } else if (eng->in_flight < eng->max_running) {
        size_t free_slots = eng->max_running - eng->in_flight;
        *slots = free_slots < STORE_CLAIM_BATCH_MAX ? free_slots : STORE_CLAIM_BATCH_MAX;
        eng->in_flight += (unsigned)*slots;
        w = WORK_CLAIM;
    }
    pthread_mutex_unlock(&eng->mu);
    return w;
}

/* Gives back n slots taken for a claim that found fewer tasks. */
static void slots_release(struct engine *eng, size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&eng->mu);
    bool was_full = eng->in_flight >= eng->max_running;
    eng->in_flight -= (unsigned)n;
    if ((eng->stopping && eng->in_flight == 0) || was_full)
        pthread_cond_broadcast(&eng->cond); /* the last run's end, or a worker waiting for a slot */
    pthread_mutex_unlock(&eng->mu);
}

/* Queues runs[1..n) for the other workers (woken) and starts runs[0] here. */
static void share_and_run(struct engine *eng, struct run_link **runs, size_t n)
{
    if (n > 1) {
        pthread_mutex_lock(&eng->mu);
        for (size_t i = 1; i < n; i++) {
            runs[i]->next = NULL;
            *eng->claimed_tail = runs[i];
            eng->claimed_tail = &runs[i]->next;
        }
        pthread_cond_broadcast(&eng->cond);
        pthread_mutex_unlock(&eng->mu);
    }
    engine_run_go(eng, runs[0]); /* ends with engine_run_ended, maybe elsewhere */
}

/* Claims up to slots tasks in one store call and runs them; false when there was none (or the
 * store failed). One transaction for the batch: with many queued tasks this is what keeps the
 * claims from costing a commit each. */
static bool claim_and_run(struct engine *eng, size_t slots)
{
    struct task_claim claims[STORE_CLAIM_BATCH_MAX];
    struct run_link *runs[STORE_CLAIM_BATCH_MAX];
    size_t n = 0;
    struct err e = {0};
    int64_t sent = engine_mono_ms(); /* the leases run from no earlier than this */
    /* each run takes its claim's task, if handed over, for its first read */
    int rc = store_task_claim_batch_read(
        eng->cfg.store, eng->cfg.node, (int64_t)eng->cfg.lease_s * 1000, eng->cfg.instance_parallel,
        slots, ENGINE_CLAIM_READ, claims, &n, &e);
    if (rc != 0)
        n = 0;
    slots_release(eng, slots - n);
    if (n > 0) {
        log_hold(); /* the batch's claimed lines in one write (engine_run_new makes them) */
        for (size_t i = 0; i < n; i++)
            runs[i] = engine_run_new(eng, &claims[i], sent);
        log_release();
        share_and_run(eng, runs, n);
        return true;
    }
    if (rc == ERR_NOT_FOUND || rc == 0) {
        wait_for_work(eng, IDLE_POLL_MS);
    } else {
        log_warn("engine: claiming tasks: %s", e.msg);
        wait_for_work(eng, 1000);
    }
    return false;
}

static void *worker_main(void *arg)
{
    struct engine *eng = arg;
    pthread_setname_np(pthread_self(), "engine-worker");
    for (;;) {
        struct parked *p = NULL;
        struct run_link *start = NULL;
        size_t slots = 0;
        switch (next_work(eng, &p, &start, &slots)) {
        case WORK_RESUME:
            engine_run_resume(eng, p);
            break;
        case WORK_START:
            engine_run_go(eng, start);
            break;
        case WORK_CLAIM:
            claim_and_run(eng, slots);
            break;
        case WORK_WAIT:
            wait_for_work(eng, IDLE_POLL_MS);
            break;
        case WORK_QUIT:
            return NULL;
        }
    }
}

void engine_run_ended(struct engine *eng)
{
    pthread_mutex_lock(&eng->mu);
    eng->in_flight--;
    /* a worker waiting for a free slot, or (stopping) for the last run to end */
    if (eng->stopping && eng->in_flight == 0)
        pthread_cond_broadcast(&eng->cond);
    else if (eng->in_flight + 1 == eng->max_running)
        pthread_cond_signal(&eng->cond);
    pthread_mutex_unlock(&eng->mu);
}

void engine_resume_later(struct engine *eng, struct parked *list)
{
    pthread_mutex_lock(&eng->mu);
    for (struct parked *p = list, *next; p; p = next) {
        next = p->next;
        p->next = NULL;
        *eng->ready_tail = p;
        eng->ready_tail = &p->next;
    }
    pthread_cond_broadcast(&eng->cond);
    pthread_mutex_unlock(&eng->mu);
}

bool engine_stopping(struct engine *eng) { return atomic_load(&eng->stopping_flag); }

bool engine_drain_over(struct engine *eng)
{
    return engine_stopping(eng) && time_now_ms() >= atomic_load(&eng->drain_deadline_ms);
}

int engine_start(const struct engine_config *cfg, struct engine **out, struct err *e)
{
    struct engine *eng = xcalloc(1, sizeof *eng);
    eng->cfg = *cfg;
    if (eng->cfg.lease_s == 0)
        eng->cfg.lease_s = 15;
    eng->max_running = cfg->max_running ? cfg->max_running : ENGINE_MAX_RUNNING;
    eng->ready_tail = &eng->ready;
    eng->claimed_tail = &eng->claimed;
    pthread_mutex_init(&eng->mu, NULL);
    pthread_cond_init(&eng->cond, NULL);
    /* Before this node's old leases are released (and anything is claimed): the steps its last
     * run left running are killed first, so a step never runs beside its own re-run. */
    engine_sweep_leftovers(cfg->store, cfg->node);
    struct err ignored;
    if (store_release_node_leases(cfg->store, cfg->node, &ignored) != 0)
        log_warn("engine: could not release this node's old leases: %s", ignored.msg);
    if (lease_keeper_start(eng, e) != 0) {
        lease_keeper_stop(eng);
        pthread_cond_destroy(&eng->cond);
        pthread_mutex_destroy(&eng->mu);
        free(eng);
        return ERR_INTERNAL;
    }
    if (cfg->workers && (step_loop_start(eng, e) != 0 || flusher_start(eng, e) != 0)) {
        step_loop_stop(eng);
        lease_keeper_stop(eng);
        pthread_cond_destroy(&eng->cond);
        pthread_mutex_destroy(&eng->mu);
        free(eng);
        return ERR_INTERNAL;
    }
    eng->threads = xcalloc(cfg->workers ? cfg->workers : 1, sizeof *eng->threads);
    for (unsigned i = 0; i < cfg->workers; i++) {
        if (pthread_create(&eng->threads[i], NULL, worker_main, eng) != 0) {
            eng->n_threads = i;
            engine_stop(eng);
            return err_set(e, ERR_INTERNAL, "cannot start engine worker %u", i);
        }
        eng->n_threads = i + 1;
    }
    *out = eng;
    return 0;
}

void engine_wake(void *ctx)
{
    struct engine *eng = ctx;
    if (!eng)
        return;
    pthread_mutex_lock(&eng->mu);
    eng->woken = true;
    pthread_cond_broadcast(&eng->cond);
    pthread_mutex_unlock(&eng->mu);
}

void engine_stop(struct engine *eng)
{
    if (!eng)
        return;
    atomic_store(&eng->drain_deadline_ms, time_now_ms() + (int64_t)eng->cfg.drain_s * 1000);
    atomic_store(&eng->stopping_flag, true);
    pthread_mutex_lock(&eng->mu);
    eng->stopping = true;
    pthread_cond_broadcast(&eng->cond);
    pthread_mutex_unlock(&eng->mu);
    /* The workers quit once no run is in flight: the parked ones were resumed (their children
     * ended, or were stopped when the drain time ran out) and wrote their last progress. */
    for (unsigned i = 0; i < eng->n_threads; i++)
        pthread_join(eng->threads[i], NULL);
    flusher_stop(eng);      /* nothing is queued: every run ended */
    step_loop_stop(eng);    /* nothing is parked any more */
    lease_keeper_stop(eng); /* after the workers: it writes what they queued */
    free(eng->threads);
    pthread_cond_destroy(&eng->cond);
    pthread_mutex_destroy(&eng->mu);
    free(eng);
}
