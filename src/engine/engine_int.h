/* Shared by the engine's files: the engine's state and the task runner. */
#ifndef ASYNCD_ENGINE_INT_H
#define ASYNCD_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "exec/exec.h"

enum stop_reason { STOP_NONE, STOP_CHANGED, STOP_LOST, STOP_DRAIN, STOP_FENCED };

/* A task a worker runs, as the lease keeper sees it (engine_lease.c). The keeper renews its lease
 * and looks for kill/pause; the worker reads what it found without touching the store, so a
 * store that stalls can never hold up the worker's decision to stop its step. */
struct lease_watch {
    /* set before lease_watch_add, read-only while registered */
    char id[STORE_ID_MAX];
    char product[16];
    int64_t lease_no, lease_ms;
    /* Monotonic ms at which the last successful renewal (or the claim) was sent: the lease runs
     * at least lease_ms from then, by any clock. */
    atomic_int_fast64_t last_ok_ms;
    atomic_int stop; /* enum stop_reason the keeper found: STOP_LOST or STOP_CHANGED */
    /* under the keeper's mutex */
    int64_t next_renew_ms, next_check_ms;
    bool busy; /* the keeper is in a store call for it */
    struct lease_watch *next;
};

struct pgroup_op; /* a pending record or clear of a step's process group (engine_lease.c) */

/* A run parked while its exec or mysql step runs, as the step loop (engine_loop.c) sees it: the
 * loop owns child from step_loop_add until it finishes it, fills res and hands the run to a
 * worker (engine_resume_later), which continues it (engine_run_resume). */
struct parked {
    struct exec_child *child;
    struct exec_result res;
    struct parked *prev, *next; /* the loop's list; then next links the ready queue */
};

struct step_loop;

/* A claimed run not yet started, in engine.c's queue (engine_run.c owns the run around it). */
struct run_link {
    struct run_link *next;
};

/* A run's last write (one that gives the lease up: the run ends with it), handed to the flusher
 * (engine_flush.c), which writes many in one transaction. The run keeps its lease watch and its
 * slot until done is called with the write's outcome, after the commit. */
struct final_write {
    struct task_progress p; /* its strings are owned (final_write_set, final_write_clear) */
    char who[192];          /* the task's product, type and instance, for the log line */
    char product[16];       /* the task's product, for the metrics */
    int attempt;            /* the task's attempt when p leaves it unchanged */
    void (*done)(struct engine *eng, struct final_write *w, int rc);
    struct final_write *next;
};

struct flusher;

struct engine {
    struct engine_config cfg;
    pthread_t *threads;
    unsigned n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool woken, stopping;      /* under mu */
    atomic_bool stopping_flag; /* read without mu by running tasks */
    atomic_int_fast64_t drain_deadline_ms;
    unsigned max_running;
    unsigned in_flight;                 /* under mu: claimed runs not yet ended, parked ones too */
    struct parked *ready, **ready_tail; /* under mu: runs whose child ended, FIFO */
    struct step_loop *loop;             /* NULL when the node runs no tasks */
    /* the lease keeper (engine_lease.c) */
    pthread_t keeper;
    bool keeper_started;
    pthread_mutex_t keeper_mu;
    pthread_cond_t keeper_cond, keeper_idle;
    bool keeper_stop;                  /* under keeper_mu */
    int64_t keeper_sleep_until_ms;     /* under keeper_mu: 0 while the keeper is awake */
    struct lease_watch *watches;       /* under keeper_mu */
    struct pgroup_op *ops, **ops_tail; /* under keeper_mu, FIFO */
    /* claimed in a batch, waiting for a worker (under mu, FIFO); their slots are taken */
    struct run_link *claimed, **claimed_tail;
    struct flusher *flusher; /* NULL when the node runs no tasks */
};

/* Monotonic milliseconds: what lease ages are measured with. */
int64_t engine_mono_ms(void);

/* The lease keeper. start: 0 or ERR_INTERNAL; stop: after the workers are joined, writes the
 * pending process-group records and joins the thread. */
int lease_keeper_start(struct engine *eng, struct err *e);
void lease_keeper_stop(struct engine *eng);
/* Registers w (filled by the caller; its first renewal due lease/3 after its last good one, its
 * first check CHECK_EVERY_MS from now) / unregisters it, waiting while the keeper is in a store
 * call for it. Neither wakes the keeper unless it must act sooner than it planned to. */
void lease_watch_add(struct engine *eng, struct lease_watch *w);
void lease_watch_remove(struct engine *eng, struct lease_watch *w);
/* Queues a durable record (clear = false) or clear of g; written by the keeper in order. */
void lease_keeper_pgroup(struct engine *eng, const struct step_pgroup *g, bool clear);

/* engine_sweep.c: fills g's boot_id and start_ticks for our live child pid (its pgid); left
 * empty/0 when /proc cannot tell, and the start-up sweep then never kills that group. */
void engine_pgroup_identify(struct step_pgroup *g, int pid);
/* Before any claim: kills (SIGKILL) the process groups this node's previous run recorded for
 * steps that were running, if they still exist and are provably those groups, and clears the
 * records. Failures are logged. */
void engine_sweep_leftovers(struct store *s, const char *node);

bool engine_stopping(struct engine *eng);
/* True once stopping and the drain time is up: running steps must stop now. */
bool engine_drain_over(struct engine *eng);
/* What a run's first read after its claim asks for (its row, steps and the claim's event); the
 * claim hands it over where the store can read it in the claim's transaction (store.h,
 * store_task_claim_batch_read). */
#define ENGINE_CLAIM_READ (TASK_READ_STEPS | TASK_READ_LAST_EVENT)

/* A claimed task's run, in two halves. new makes it (its lease watched from now on when the
 * claim names the product; claimed_ms: engine_mono_ms() when the claim was sent, the lease runs
 * from no earlier); go runs it on the calling thread until it leaves running, waits for a retry,
 * or is no longer ours, or until it parks waiting for an exec child (then a worker goes on with
 * it later, through engine_run_resume). Every run ends with engine_run_ended, on whichever
 * thread it ends (the flusher's, when its last write was handed to it). new takes claim->task
 * (leaving it NULL): the run's first read, when the store handed it over. */
struct run_link *engine_run_new(struct engine *eng, struct task_claim *claim, int64_t claimed_ms);
void engine_run_go(struct engine *eng, struct run_link *l);
/* Continues a parked run whose child was finished (p->res filled). */
void engine_run_resume(struct engine *eng, struct parked *p);

/* engine.c: a run ended (one in flight fewer). */
void engine_run_ended(struct engine *eng);
/* engine.c: queues the runs of list (linked by next) for the workers to resume. */
void engine_resume_later(struct engine *eng, struct parked *list);

/* The flusher (engine_flush.c). start: 0 or ERR_INTERNAL. push: w is written soon, with others
 * queued at the time, and w->done called on the flusher's thread. stop: once nothing is queued
 * (the workers are joined), joins the thread. set copies p (and its strings) into w; clear frees
 * them. */
int flusher_start(struct engine *eng, struct err *e);
void flusher_push(struct engine *eng, struct final_write *w);
void flusher_stop(struct engine *eng);
void final_write_set(struct final_write *w, const struct task_progress *p);
void final_write_clear(struct final_write *w);

/* The step loop (engine_loop.c). start: 0 or ERR_INTERNAL. add: the loop watches p->child from
 * now on (called by a worker; p must not be touched by it afterwards). stop: once no run is
 * parked (the workers are joined), ends and joins the loop's thread and frees it. */
int step_loop_start(struct engine *eng, struct err *e);
void step_loop_add(struct engine *eng, struct parked *p);
void step_loop_stop(struct engine *eng);

/* engine_remote.c: a step whose do/undo is {"remote": {"kind": ...}} is done by a worker that
 * pulls it. REMOTE_NOT: any other action, run it here. REMOTE_RESULT: a worker reported; *res
 * holds its outcome, message and output (the caller json_decref()s res->output). REMOTE_HANDED:
 * the task now waits for a worker (or is no longer ours): stop running it. */
enum remote_step { REMOTE_NOT, REMOTE_RESULT, REMOTE_HANDED };
enum remote_step engine_remote_step(struct engine *eng, const char *id, int64_t lease_no,
                                    const struct task *task, int idx, const char *phase,
                                    struct exec_result *res);

#endif
