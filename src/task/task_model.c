/* The typed task: the words of its enums, and its constructors and destructors. */
#include "task/task_model.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

static const char *const step_state_names[STEP_STATE_COUNT] = {
    [STEP_PENDING] = "pending", [STEP_RUNNING] = "running",         [STEP_DONE] = "done",
    [STEP_FAILED] = "failed",   [STEP_SKIPPED] = "skipped",         [STEP_UNDOING] = "undoing",
    [STEP_UNDONE] = "undone",   [STEP_UNDO_FAILED] = "undo_failed",
};
static const char *const phase_names[PHASE_COUNT] = {[PHASE_DO] = "do", [PHASE_UNDO] = "undo"};
static const char *const on_failure_names[ON_FAILURE_COUNT] = {
    [ON_FAILURE_PAUSE] = "pause", [ON_FAILURE_UNDO] = "undo", [ON_FAILURE_FAIL] = "fail"};

static int word_index(const char *const *names, int n, const char *word)
{
    for (int i = 0; word && i < n; i++)
        if (strcmp(word, names[i]) == 0)
            return i;
    return -1;
}

const char *task_step_state_name(enum task_step_state s)
{
    return (unsigned)s < STEP_STATE_COUNT ? step_state_names[s] : "unknown";
}
const char *task_phase_name(enum task_phase p)
{
    return (unsigned)p < PHASE_COUNT ? phase_names[p] : "unknown";
}
const char *task_on_failure_name(enum task_on_failure f)
{
    return (unsigned)f < ON_FAILURE_COUNT ? on_failure_names[f] : "unknown";
}

int task_step_state_parse(const char *word, enum task_step_state *out)
{
    int i = word_index(step_state_names, STEP_STATE_COUNT, word);
    if (i >= 0)
        *out = (enum task_step_state)i;
    return i >= 0 ? 0 : -1;
}
int task_phase_parse(const char *word, enum task_phase *out)
{
    int i = word_index(phase_names, PHASE_COUNT, word);
    if (i >= 0)
        *out = (enum task_phase)i;
    return i >= 0 ? 0 : -1;
}
int task_on_failure_parse(const char *word, enum task_on_failure *out)
{
    int i = word_index(on_failure_names, ON_FAILURE_COUNT, word);
    if (i >= 0)
        *out = (enum task_on_failure)i;
    return i >= 0 ? 0 : -1;
}

struct task *task_new(void)
{
    struct task *t = xcalloc(1, sizeof *t);
    t->start_ms = t->end_ms = t->lease_expires_ms = TASK_MS_NONE;
    t->input = json_null();
    return t;
}

void task_alloc_steps(struct task *t, size_t n)
{
    t->steps = n ? xcalloc(n, sizeof *t->steps) : NULL;
    for (size_t i = 0; i < n; i++) {
        t->steps[i].do_action = json_null();
        t->steps[i].undo_action = json_null();
        t->steps[i].output = json_null();
    }
    t->n_steps = (int64_t)n;
    t->has_steps = true;
}

void task_alloc_events(struct task *t, size_t n)
{
    t->events = n ? xcalloc(n, sizeof *t->events) : NULL;
    for (size_t i = 0; i < n; i++)
        t->events[i].from = -1;
    t->n_events = n;
    t->has_events = true;
}

static void step_clear(struct task_step *s)
{
    free(s->name);
    free(s->message);
    json_decref(s->do_action);
    json_decref(s->undo_action);
    json_decref(s->output);
}

void task_free(struct task *t)
{
    if (!t)
        return;
    char *strs[] = {t->id,   t->product, t->region,     t->uin,   t->instance_id,
                    t->type, t->info,    t->lease_node, t->driver};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(strs[i]);
    json_decref(t->input);
    if (t->has_steps)
        for (int64_t i = 0; i < t->n_steps; i++)
            step_clear(&t->steps[i]);
    free(t->steps);
    for (size_t i = 0; i < t->n_events; i++) {
        free(t->events[i].node);
        free(t->events[i].message);
    }
    free(t->events);
    free(t);
}

void task_list_push(struct task_list *l, struct task *t)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = xrealloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->n++] = t;
}

void task_list_clear(struct task_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        task_free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

const struct task_event *task_last_event(const struct task *t)
{
    return t->n_events ? &t->events[t->n_events - 1] : NULL;
}

const struct task_step *task_step_at(const struct task *t, int64_t idx)
{
    return t->has_steps && idx >= 0 && idx < t->n_steps ? &t->steps[idx] : NULL;
}
