/* workq: a fixed thread pool over one FIFO of jobs (mutex + condition variable). */
#include "common/workq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/xalloc.h"

struct job {
    struct job *next;
    workq_fn fn;
    void *arg;
};

struct workq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    bool stopping; /* no new jobs; threads leave once the queue is empty */
    bool joined;
    unsigned nthreads;
    pthread_t *threads;
};

/* The next job, or NULL once the queue is empty and the pool is stopping. */
static struct job *next_job(struct workq *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->stopping)
        pthread_cond_wait(&q->cv, &q->mu);
    struct job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    return j;
}

static void *worker(void *arg)
{
    struct workq *q = arg;
    pthread_setname_np(pthread_self(), "workq");
    struct job *j;
    while ((j = next_job(q))) {
        j->fn(j->arg);
        free(j);
    }
    return NULL;
}

struct workq *workq_new(unsigned threads)
{
    struct workq *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->nthreads = threads ? threads : 1;
    q->threads = xcalloc(q->nthreads, sizeof *q->threads);
    for (unsigned i = 0; i < q->nthreads; i++)
        if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
            fputs("asyncd: cannot start a work-queue thread\n", stderr);
            abort();
        }
    return q;
}

bool workq_push(struct workq *q, workq_fn fn, void *arg)
{
    struct job *j = xmalloc(sizeof *j);
    *j = (struct job){.fn = fn, .arg = arg};
    pthread_mutex_lock(&q->mu);
    if (q->stopping) {
        pthread_mutex_unlock(&q->mu);
        free(j);
        return false;
    }
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void workq_drain(struct workq *q)
{
    if (q->joined)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    q->joined = true;
}

void workq_free(struct workq *q)
{
    if (!q)
        return;
    workq_drain(q);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->threads);
    free(q);
}
