/* The engine's transition log lines (engine_log.c): task, product, type, instance, from, to,
 * node, attempt and message, at info, after the store committed the transition. */
#ifndef ASYNCD_ENGINE_LOG_H
#define ASYNCD_ENGINE_LOG_H

#include <jansson.h>
#include <stddef.h>

#include "store/store.h"

/* "product=P type=T instance=I" of a task as the admin view reads it, for every line of a run. */
void engine_log_who(char *out, size_t cap, const struct task *task);
/* A run's first read after its claim: the claim's transition (from initial, or a takeover). */
void engine_log_claimed(const char *id, const char *who, const struct task *task, const char *node);
/* A committed progress write, when it moves the task or records an event (a retry); attempt:
 * the task's attempt count before the write (the line says attempt + 1, the one that ran). Also
 * counts it in the metrics (common/metrics.h) of product: a transition, or a retry. */
void engine_log_progress(const char *id, const char *who, const char *product,
                         const struct task_progress *p, int attempt);

#endif
