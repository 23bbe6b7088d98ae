/* The task engine (DESIGN.md 5): worker threads claim runnable tasks with a lease, run their
 * steps through the executors, renew the lease while they work, and record every change as a
 * fenced store write, so a worker that lost its lease can never overwrite the new owner. */
#ifndef ASYNCD_ENGINE_H
#define ASYNCD_ENGINE_H

#include "common/errors.h"
#include "store/store.h"

struct engine_config {
    struct store *store; /* borrowed */
    const char *node;    /* borrowed; recorded in leases and events */
    unsigned workers;    /* worker threads; 0 = this node runs no tasks */
    /* tasks in flight at once (claimed, not yet finished or handed back), whatever the thread
     * count: a step waiting for its exec child or its MySQL statements holds no thread.
     * 0 = ENGINE_MAX_RUNNING */
    unsigned max_running;
    unsigned lease_s;     /* lease length; renewed every lease_s/3 */
    unsigned drain_s;     /* on stop, how long running steps may go on before they are stopped */
    const char *data_dir; /* borrowed; given to exec steps as ASYNCD_DATA_DIR (e.g. for backups) */
    /* borrowed; products whose tasks on one instance may overlap ("mongodb", comma-separated;
     * NULL = none): every other product's run one at a time, in creation order (--instance-serial)
     */
    const char *instance_parallel;
};

#define ENGINE_MAX_RUNNING 4096 /* --max-running's default */
/* What one running exec step holds open: its pidfd and its stdout and stderr pipes (its stdin
 * pipe only until the task is written to it). A mysql step holds fewer: its connection's socket,
 * and a second one while it sends KILL QUERY. */
#define ENGINE_FDS_PER_STEP 3

struct engine;

/* Starts the workers and the step loop (one thread watching every running exec child). *out is
 * freed by engine_stop. */
int engine_start(const struct engine_config *cfg, struct engine **out, struct err *e);
/* Wakes idle workers (a task was created or changed); ctx is the struct engine. NULL-safe. */
void engine_wake(void *ctx);
/* Stops claiming, lets running steps finish for up to drain_s, then stops them (their tasks are
 * released to run again, here or elsewhere), waits until every run has written its last
 * progress, joins the step loop and the workers and frees the engine. */
void engine_stop(struct engine *eng);

#endif
