/* The typed task the store returns and every layer reads: the task row, its steps and its event
 * history, with enums for the words the store keeps as text (states, step states, phase,
 * on_failure). Step actions, outputs and the task's input stay json_t: they are the user's JSON.
 * Rendering a task as the admin API's JSON is task_json.h's, in one place. */
#ifndef ASYNCD_TASK_MODEL_H
#define ASYNCD_TASK_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "task/task_state.h"

/* A time column that is SQL NULL (start_ms, end_ms, lease_expires_ms not yet set). */
#define TASK_MS_NONE INT64_MIN

enum task_step_state {
    STEP_PENDING,
    STEP_RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_SKIPPED,
    STEP_UNDOING,
    STEP_UNDONE,
    STEP_UNDO_FAILED,
    STEP_STATE_COUNT
};
enum task_phase { PHASE_DO, PHASE_UNDO, PHASE_COUNT };
enum task_on_failure { ON_FAILURE_PAUSE, ON_FAILURE_UNDO, ON_FAILURE_FAIL, ON_FAILURE_COUNT };

/* The store's word for each ("pending", "do", "pause", ...); "unknown" out of range. */
const char *task_step_state_name(enum task_step_state s);
const char *task_phase_name(enum task_phase p);
const char *task_on_failure_name(enum task_on_failure f);
/* Parse a word (NULL allowed); -1 when it names none (then *out is left alone). */
int task_step_state_parse(const char *word, enum task_step_state *out);
int task_phase_parse(const char *word, enum task_phase *out);
int task_on_failure_parse(const char *word, enum task_on_failure *out);

struct task_step {
    int64_t index;
    char *name;
    json_t *do_action;   /* an object */
    json_t *undo_action; /* an object, or json null when the step has none */
    int64_t retries, timeout_s;
    enum task_step_state state;
    char *message;  /* NULL when the step has said nothing (SQL NULL) */
    json_t *output; /* what the step produced (kept for its undo), or json null */
};

struct task_event {
    int64_t seq, at_ms;
    int from; /* enum task_state, -1 for the creation event (no from) */
    enum task_state to;
    char *node;
    char *message; /* NULL = none */
};

/* Every char * is heap (owned by the task) and NULL where the column is SQL NULL; every json_t *
 * is owned and never NULL (json null for none). Free with task_free. */
struct task {
    char *id, *product, *region, *uin;
    char *instance_id; /* NULL: the task names no instance */
    char *type;
    enum task_on_failure on_failure;
    enum task_state state;
    char *info; /* NULL: no step has spoken */
    enum task_phase phase;
    char *lease_node; /* NULL: no lease was ever taken */
    char *driver;     /* "engine", "sim" (sim/sim.h) or an external driver's name */
    int64_t current_step, created_ms;
    int64_t start_ms, end_ms; /* TASK_MS_NONE: not yet */
    int64_t attempt, not_before_ms, pause_requested, lease_no;
    int64_t lease_expires_ms; /* TASK_MS_NONE: never leased */
    int64_t n_steps;          /* how many steps the task has (loaded or not) */
    json_t *input;            /* the request's checked parameters, or json null */
    int64_t job_id;           /* the row's creation order; list reads only (has_job_id) */
    bool has_job_id;
    /* what the read asked for (store.h, TASK_READ_*): has_steps / has_events say they were read */
    bool has_steps, has_events;
    struct task_step *steps; /* n_steps of them when has_steps */
    struct task_event *events;
    size_t n_events; /* all of them, or the last one only (TASK_READ_LAST_EVENT) */
};

/* A zeroed task on the heap (every json_t * set to json null); the caller task_free()s it. */
struct task *task_new(void);
void task_free(struct task *t);
/* A task's steps and events arrays: n zeroed entries (json fields json null), owned by t. */
void task_alloc_steps(struct task *t, size_t n);
void task_alloc_events(struct task *t, size_t n);

/* A list of tasks a read returned: n tasks, each owned by the list. */
struct task_list {
    struct task **items;
    size_t n, cap;
};
void task_list_push(struct task_list *l, struct task *t); /* takes t */
void task_list_clear(struct task_list *l);                /* frees every task; l empty again */

/* s, or dflt when s is NULL or empty (for log lines: "instance=-"). */
static inline const char *task_text_or(const char *s, const char *dflt)
{
    return s && *s ? s : dflt;
}

/* The task's last event, or NULL when none was read. */
const struct task_event *task_last_event(const struct task *t);
/* Step idx, or NULL when out of range or the steps were not read. */
const struct task_step *task_step_at(const struct task *t, int64_t idx);

#endif
