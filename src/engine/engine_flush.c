/* The flusher: one thread that writes the runs' last writes (step done and task final, a retry's
 * hand-back, a pause) in batches, one transaction for all queued at the time, each write still
 * fenced by its own lease_no. A worker hands the write over and goes on with the next task
 * instead of waiting for its commit: with few workers, this is what lets many tasks share one
 * fsync (SQLite) or one COMMIT (PostgreSQL). A run keeps its slot and its lease watch until its
 * write is committed, so --max-running and a drain count it, and its lease is renewed. */
#include <pthread.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "engine/engine_int.h"
#include "engine/engine_log.h"

#define FLUSH_MAX 256 /* writes one transaction takes at most: bounds its latency */
#define FLUSH_THREADS                                                                              \
    4 /* batches written at once: on PostgreSQL each on its own connection, so                     \
       * one batch's round trips overlap another's; on SQLite they share a                         \
       * group commit */

struct flusher {
    struct engine *eng;
    pthread_t threads[FLUSH_THREADS];
    unsigned n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct final_write *head, **tail; /* under mu, FIFO */
    bool stop;                        /* under mu */
};

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

void final_write_set(struct final_write *w, const struct task_progress *p)
{
    w->p = *p;
    w->p.step_state = dup_or_null(p->step_state);
    w->p.message = dup_or_null(p->message);
    w->p.event_message = dup_or_null(p->event_message);
    w->p.step_output = dup_or_null(p->step_output);
    w->p.info = dup_or_null(p->info);
    w->p.phase = dup_or_null(p->phase);
}

void final_write_clear(struct final_write *w)
{
    free((char *)w->p.step_state);
    free((char *)w->p.message);
    free((char *)w->p.event_message);
    free((char *)w->p.step_output);
    free((char *)w->p.info);
    free((char *)w->p.phase);
    w->p.step_state = w->p.message = w->p.event_message = NULL;
    w->p.step_output = w->p.info = w->p.phase = NULL;
}

/* Takes up to FLUSH_MAX queued writes; waits for one unless stopping. Returns how many. */
static size_t take(struct flusher *f, struct final_write **ws, bool *stop)
{
    pthread_mutex_lock(&f->mu);
    while (!f->head && !f->stop)
        pthread_cond_wait(&f->cond, &f->mu);
    size_t n = 0;
    while (f->head && n < FLUSH_MAX) {
        ws[n++] = f->head;
        f->head = f->head->next;
    }
    if (!f->head)
        f->tail = &f->head;
    *stop = f->stop && !f->head;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void write_batch(struct flusher *f, struct final_write **ws, size_t n)
{
    struct task_progress ps[FLUSH_MAX];
    int rcs[FLUSH_MAX];
    for (size_t i = 0; i < n; i++)
        ps[i] = ws[i]->p;
    struct err e = {0};
    if (store_task_progress_batch(f->eng->cfg.store, ps, n, rcs, &e) != 0 && n > 1) {
        /* One bad write (or a conflict, e.g. two event numbers) failed the batch: each alone. */
        log_info("engine: a batch of %zu last writes failed (%s); writing them one by one", n,
                 e.msg);
        for (size_t i = 0; i < n; i++)
            rcs[i] = store_task_progress(f->eng->cfg.store, &ps[i], &e);
    }
    /* The batch's lines (one a task) in as few writes as fit, a write of each 4 KiB instead of
     * a write a line: held only while they are made, and written before the runs end (done may
     * wait for the lease keeper). */
    log_hold();
    for (size_t i = 0; i < n; i++) {
        if (rcs[i] == 0)
            engine_log_progress(ws[i]->p.id, ws[i]->who, ws[i]->product, &ws[i]->p, ws[i]->attempt);
        else if (rcs[i] == ERR_CONFLICT)
            log_info("engine: task %s moved on without us (lease %lld)", ws[i]->p.id,
                     (long long)ws[i]->p.lease_no);
        else if (rcs[i] != 0)
            log_warn("engine: recording progress of task %s failed (code %d)", ws[i]->p.id, rcs[i]);
    }
    log_release();
    for (size_t i = 0; i < n; i++)
        ws[i]->done(f->eng, ws[i], rcs[i]); /* may free ws[i] */
}

static void *flusher_main(void *arg)
{
    struct flusher *f = arg;
    pthread_setname_np(pthread_self(), "engine-flush");
    struct final_write *ws[FLUSH_MAX];
    bool stop = false;
    while (!stop) {
        size_t n = take(f, ws, &stop);
        if (n)
            write_batch(f, ws, n);
    }
    return NULL;
}

int flusher_start(struct engine *eng, struct err *e)
{
    struct flusher *f = xcalloc(1, sizeof *f);
    f->eng = eng;
    f->tail = &f->head;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    eng->flusher = f;
    for (unsigned i = 0; i < FLUSH_THREADS; i++) {
        if (pthread_create(&f->threads[i], NULL, flusher_main, f) != 0) {
            flusher_stop(eng);
            return err_set(e, ERR_INTERNAL, "cannot start the engine's flusher threads");
        }
        f->n_threads = i + 1;
    }
    return 0;
}

void flusher_push(struct engine *eng, struct final_write *w)
{
    struct flusher *f = eng->flusher;
    w->next = NULL;
    pthread_mutex_lock(&f->mu);
    bool was_empty = !f->head;
    *f->tail = w;
    f->tail = &w->next;
    /* Only the first write into an empty queue wakes a flusher: it takes everything queued by
     * the time it runs. A queue that is not empty has a flusher woken for it already, or one
     * busy writing that takes the rest when it returns. A wake-up per write woke every idle
     * flusher in turn for a batch of one or two each. */
    if (was_empty)
        pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

void flusher_stop(struct engine *eng)
{
    struct flusher *f = eng->flusher;
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    for (unsigned i = 0; i < f->n_threads; i++)
        pthread_join(f->threads[i], NULL);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->mu);
    free(f);
    eng->flusher = NULL;
}
