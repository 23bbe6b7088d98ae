/* The task as JSON, made in this one place from the typed task (task_model.h): the store's raw
 * view (what POST /v1/tasks/{id}/advance answers, the step's stdin), and the admin API's view of
 * docs/admin-api.md (the dialect's Status word, ISO times, secrets hidden). */
#ifndef ASYNCD_TASK_JSON_H
#define ASYNCD_TASK_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "task/task_model.h"

struct task_json_opts {
    /* The admin view: current_step shows the step a finished task ended on, "created_at",
     * "start_time", "end_time" and each event's "at" are added (ISO 8601 UTC, or null). */
    bool view;
    /* The product dialect's word for the task's state, added as "Status"; NULL = none. */
    const char *status_word;
    /* Hides an action's secrets in place, on the view's own copy of it; NULL = none. */
    void (*redact)(json_t *action);
    /* Leave "events" out even when they were read (the task as a step's stdin). */
    bool no_events;
};

/* A new JSON object the caller json_decref()s. Keys, in order: AsyncRequestId, product, region,
 * uin, instance_id, type, on_failure, state, info, phase, lease_node, driver, current_step,
 * created_ms, start_ms, end_ms, attempt, not_before_ms, pause_requested, lease_no,
 * lease_expires_ms, n_steps, input, then job_id (list reads), steps and events (when read), then
 * the view's keys. o NULL: the raw view. Text that is not UTF-8 keeps its ASCII, the rest '?'. */
json_t *task_json(const struct task *t, const struct task_json_opts *o);
/* One step / one event as the task's "steps" / "events" entries (raw). */
json_t *task_step_json(const struct task_step *s, void (*redact)(json_t *action));
json_t *task_event_json(const struct task_event *ev, bool view);
/* One of the task's texts as the JSON shows it: a string, null for NULL. Not UTF-8 (a message
 * copied from some program's output, which SQLite keeps): the ASCII is kept and the rest '?'. */
json_t *task_json_text(const char *s);

#endif
