/* The task as the admin API's JSON, from the typed task: every reader of a task's JSON (the admin
 * API, the simulation, the products' task lists, a step's stdin) gets it from here. */
#include "task/task_json.h"

#include <stdlib.h>

#include "common/timefmt.h"
#include "common/xalloc.h"

json_t *task_json_text(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *ms_json(int64_t ms) { return ms == TASK_MS_NONE ? json_null() : json_integer(ms); }

static json_t *iso_json(int64_t ms)
{
    if (ms == TASK_MS_NONE)
        return json_null();
    char buf[25];
    time_fmt_iso_utc(ms, buf);
    return json_string(buf);
}

/* An action as shown: shared with the task, or the view's redacted copy. */
static json_t *action_json(json_t *action, void (*redact)(json_t *action))
{
    if (!redact || !json_is_object(action))
        return json_incref(action);
    json_t *copy = json_deep_copy(action);
    redact(copy);
    return copy;
}

json_t *task_step_json(const struct task_step *s, void (*redact)(json_t *action))
{
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer(s->index));
    json_object_set_new(o, "name", task_json_text(s->name));
    json_object_set_new(o, "do", action_json(s->do_action, redact));
    json_object_set_new(o, "undo", action_json(s->undo_action, redact));
    json_object_set_new(o, "retries", json_integer(s->retries));
    json_object_set_new(o, "timeout_s", json_integer(s->timeout_s));
    json_object_set_new(o, "state", json_string(task_step_state_name(s->state)));
    json_object_set_new(o, "message", task_json_text(s->message));
    json_object_set_new(o, "output", json_incref(s->output));
    return o;
}

json_t *task_event_json(const struct task_event *ev, bool view)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer(ev->seq));
    json_object_set_new(o, "at_ms", json_integer(ev->at_ms));
    json_object_set_new(o, "from",
                        ev->from < 0 ? json_null()
                                     : json_string(task_state_name((enum task_state)ev->from)));
    json_object_set_new(o, "to", json_string(task_state_name(ev->to)));
    json_object_set_new(o, "node", task_json_text(ev->node));
    json_object_set_new(o, "message", task_json_text(ev->message));
    if (view)
        json_object_set_new(o, "at", iso_json(ev->at_ms));
    return o;
}

/* The store keeps current_step where the runner goes next: one past the last step after
 * success, -1 after an undo. A finished task shows the step it ended on instead (the last one,
 * the first one undone last), so a reader never sees an index no step has. */
static int64_t shown_step(const struct task *t)
{
    int64_t n = t->n_steps, at = t->current_step;
    if (!task_state_is_final(t->state) || n <= 0)
        return at;
    return at < 0 ? 0 : at >= n ? n - 1 : at;
}

static void put_row(json_t *o, const struct task *t, bool view)
{
    const char *texts[] = {"AsyncRequestId", t->id,          "product", t->product,
                           "region",         t->region,      "uin",     t->uin,
                           "instance_id",    t->instance_id, "type",    t->type};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i += 2)
        json_object_set_new(o, texts[i], task_json_text(texts[i + 1]));
    json_object_set_new(o, "on_failure", json_string(task_on_failure_name(t->on_failure)));
    json_object_set_new(o, "state", json_string(task_state_name(t->state)));
    json_object_set_new(o, "info", task_json_text(t->info));
    json_object_set_new(o, "phase", json_string(task_phase_name(t->phase)));
    json_object_set_new(o, "lease_node", task_json_text(t->lease_node));
    json_object_set_new(o, "driver", task_json_text(t->driver));
    json_object_set_new(o, "current_step", json_integer(view ? shown_step(t) : t->current_step));
    json_object_set_new(o, "created_ms", json_integer(t->created_ms));
    json_object_set_new(o, "start_ms", ms_json(t->start_ms));
    json_object_set_new(o, "end_ms", ms_json(t->end_ms));
    json_object_set_new(o, "attempt", json_integer(t->attempt));
    json_object_set_new(o, "not_before_ms", json_integer(t->not_before_ms));
    json_object_set_new(o, "pause_requested", json_integer(t->pause_requested));
    json_object_set_new(o, "lease_no", json_integer(t->lease_no));
    json_object_set_new(o, "lease_expires_ms", ms_json(t->lease_expires_ms));
    json_object_set_new(o, "n_steps", json_integer(t->n_steps));
    json_object_set_new(o, "input", json_incref(t->input));
}

json_t *task_json(const struct task *t, const struct task_json_opts *o)
{
    static const struct task_json_opts raw = {0};
    if (!o)
        o = &raw;
    json_t *j = json_object();
    put_row(j, t, o->view);
    if (t->has_job_id)
        json_object_set_new(j, "job_id", json_integer(t->job_id));
    if (t->has_steps) {
        json_t *steps = json_array();
        for (int64_t i = 0; i < t->n_steps; i++)
            json_array_append_new(steps, task_step_json(&t->steps[i], o->redact));
        json_object_set_new(j, "steps", steps);
    }
    if (t->has_events && !o->no_events) {
        json_t *events = json_array();
        for (size_t i = 0; i < t->n_events; i++)
            json_array_append_new(events, task_event_json(&t->events[i], o->view));
        json_object_set_new(j, "events", events);
    }
    if (o->status_word)
        json_object_set_new(j, "Status", json_string(o->status_word));
    if (o->view) {
        json_object_set_new(j, "created_at", iso_json(t->created_ms));
        json_object_set_new(j, "start_time", iso_json(t->start_ms));
        json_object_set_new(j, "end_time", iso_json(t->end_ms));
    }
    return j;
}
