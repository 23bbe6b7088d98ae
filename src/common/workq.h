/* A small fixed pool of threads running queued jobs in arrival order: where the HTTP threads hand
 * off work that may block for seconds (a call to a remote database). */
#ifndef ASYNCD_WORKQ_H
#define ASYNCD_WORKQ_H

#include <stdbool.h>

struct workq;

typedef void (*workq_fn)(void *arg);

/* Starts threads (at least 1) workers. Aborts when a thread cannot start: this happens only at
 * start-up. Free with workq_free. */
struct workq *workq_new(unsigned threads);

/* Queues fn(arg) to run on one of the pool's threads; true when queued. False once workq_drain
 * has begun: the caller then does the work itself. The queue is unbounded, since its callers
 * (HTTP connections) are bounded already. */
bool workq_push(struct workq *q, workq_fn fn, void *arg);

/* Stops taking jobs, runs every job already queued and joins the threads. q stays valid (pushes
 * answer false) until workq_free. */
void workq_drain(struct workq *q);

/* Drains q if that has not been done, and frees it. NULL is ignored. */
void workq_free(struct workq *q);

#endif
