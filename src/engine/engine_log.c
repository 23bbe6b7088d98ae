/* One info line per task transition the engine makes, so an operator reading the log sees a task
 * start, retry, pause, fail or be taken over without asking the admin API. The line is written
 * once the store has committed the transition, from what the run already holds: no extra read. */
#include "engine/engine_log.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "task/task_model.h"

void engine_log_who(char *out, size_t cap, const struct task *task)
{
    snprintf(out, cap, "product=%s type=%s instance=%s", task_text_or(task->product, "-"),
             task_text_or(task->type, "-"), task_text_or(task->instance_id, "-"));
}

void engine_log_claimed(const char *id, const char *who, const struct task *task, const char *node)
{
    const struct task_event *last = task_last_event(task);
    /* attempt: the one about to run, counted from 1 as the steps' messages count them */
    long long attempt = (long long)task->attempt + 1;
    const char *from =
        last && last->from >= 0 ? task_state_name((enum task_state)last->from) : "initial";
    char buf[512];
    log_info("task %s %s from=%s to=running node=%s attempt=%lld message=\"%s\"", id, who, from,
             node, attempt,
             log_field(last ? task_text_or(last->message, "") : "", buf, sizeof buf));
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
