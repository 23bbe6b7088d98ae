/* One info line per task transition the engine makes, so an operator reading the log sees a task
 * start, retry, pause, fail or be taken over without asking the admin API. The line is written
 * once the store has committed the transition, from what the run already holds: no extra read. */
#include "engine/engine_log.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "task/task_view.h"

void engine_log_who(char *out, size_t cap, json_t *task)
{
    snprintf(out, cap, "product=%s type=%s instance=%s", task_view_str(task, "product", "-"),
             task_view_str(task, "type", "-"), task_view_str(task, "instance_id", "-"));
}

void engine_log_claimed(const char *id, const char *who, json_t *task, const char *node)
{
    json_t *last = task_view_last_event(task);
    /* attempt: the one about to run, counted from 1 as the steps' messages count them */
    long long attempt = (long long)json_integer_value(json_object_get(task, "attempt")) + 1;
    char buf[512];
    log_info("task %s %s from=%s to=running node=%s attempt=%lld message=\"%s\"", id, who,
             task_view_str(last, "from", "initial"), node, attempt,
             log_field(task_view_str(last, "message", ""), buf, sizeof buf));
}

/* The same points count in the metrics: a move out of running is a transition; staying running
 * with the attempt count raised (retry_later sets it, every other write resets or keeps it) is a
 * retry. */
static void count_progress(const char *product, const struct task_progress *p)
{
    if (p->to != TASK_RUNNING)
        metrics_transition(product, p->to);
    else if (p->attempt > 0)
        metrics_retry(product);
}

void engine_log_progress(const char *id, const char *who, const char *product,
                         const struct task_progress *p, int attempt)
{
    count_progress(product, p);
    if (p->to == TASK_RUNNING && !p->event)
        return; /* a step's progress, not a transition of the task */
    const char *msg = p->event_message ? p->event_message : p->message;
    char buf[512];
    log_info("task %s %s from=running to=%s node=%s attempt=%d message=\"%s\"", id, who,
             task_state_name(p->to), p->node ? p->node : "-", attempt + 1,
             log_field(msg, buf, sizeof buf));
}
