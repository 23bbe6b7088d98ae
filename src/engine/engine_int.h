/* Shared by the engine's files: the engine's state and the task runner. */
#ifndef ASYNCD_ENGINE_INT_H
#define ASYNCD_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

struct engine {
    struct engine_config cfg;
    pthread_t *threads;
    unsigned n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool woken, stopping;      /* under mu */
    atomic_bool stopping_flag; /* read without mu by running tasks */
    atomic_int_fast64_t drain_deadline_ms;
};

bool engine_stopping(struct engine *eng);
/* True once stopping and the drain time is up: running steps must stop now. */
bool engine_drain_over(struct engine *eng);
/* Runs a claimed task until it leaves running, waits for a retry, or is no longer ours. */
void engine_run_task(struct engine *eng, const struct task_claim *claim);

#endif
