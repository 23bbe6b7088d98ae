/* One task as the typed task (task/task_model.h), once for both dialects (store_db.h): its row,
 * and as asked its steps and its events (all, or the latest), from one snapshot. The rows become
 * structs in store_task_rows.c. */
#include <stdlib.h>

#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"
#include "store/store_task_rows.h"

/* The current row as t's next step or event; cap is the room the array has. */
static void step_push(struct db_tx *tx, int base, struct task *t, size_t *cap)
{
    if ((size_t)t->n_steps == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        t->steps = xrealloc(t->steps, *cap * sizeof *t->steps);
    }
    struct task_step *s = &t->steps[t->n_steps];
    *s = (struct task_step){
        .do_action = json_null(), .undo_action = json_null(), .output = json_null()};
    struct store_cols cols = store_cols_db(tx, base);
    store_step_from_cols(&cols, s);
    t->n_steps++;
}

static void event_push(struct db_tx *tx, int base, struct task *t, size_t *cap)
{
    if (t->n_events == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        t->events = xrealloc(t->events, *cap * sizeof *t->events);
    }
    struct store_cols cols = store_cols_db(tx, base);
    store_event_from_cols(&cols, &t->events[t->n_events++]);
}

struct get_op {
    const char *id;
    unsigned what;
    struct task *t;
};

/* --- statement by statement --- */

static int task_row_read(struct db_tx *tx, const char *id, struct task *t, struct err *e)
{
    const char *what = "reading a task";
    int rc = db_exec_row(tx, DB_TASK_ROW, DB_ARGS(DB_TEXT(id)), what, e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "no task %s", id);
    if (rc != 1)
        return rc;
    struct store_cols cols = store_cols_db(tx, 0);
    store_task_from_cols(&cols, t);
    return 0;
}

static int steps_read(struct db_tx *tx, const char *id, struct task *t, struct err *e)
{
    const char *what = "reading a task's steps";
    t->has_steps = true;
    t->n_steps = 0; /* the row's count, until the steps are here */
    size_t cap = 0;
    int rc = db_exec(tx, DB_TASK_STEPS, DB_ARGS(DB_TEXT(id)), what, e);
    while (rc == 0 && (rc = db_next(tx, what, e)) == 1) {
        step_push(tx, 0, t, &cap);
        rc = 0;
    }
    return rc;
}

static int events_read(struct db_tx *tx, const char *id, bool last_only, struct task *t,
                       struct err *e)
{
    const char *what = "reading a task's events";
    t->has_events = true;
    size_t cap = 0;
    int rc =
        db_exec(tx, last_only ? DB_TASK_LAST_EVENT : DB_TASK_EVENTS, DB_ARGS(DB_TEXT(id)), what, e);
    while (rc == 0 && (rc = db_next(tx, what, e)) == 1) {
        event_push(tx, 0, t, &cap);
        rc = 0;
    }
    return rc;
}

/* Also the claim's, in its own writer transaction (store_claims.c). */
int db_task_read(struct db_tx *tx, const char *id, unsigned what, struct task *t, struct err *e)
{
    int rc = task_row_read(tx, id, t, e);
    if (rc == 0 && (what & TASK_READ_STEPS))
        rc = steps_read(tx, id, t, e);
    if (rc == 0 && (what & (TASK_READ_EVENTS | TASK_READ_LAST_EVENT)))
        rc = events_read(tx, id, !(what & TASK_READ_EVENTS), t, e);
    return rc;
}

/* The task and what g->what asks for, in the caller's snapshot. */
static int get_fn(struct db_tx *tx, void *ctx, struct err *e)
{
    struct get_op *g = ctx;
    task_free(g->t); /* a retried transaction reads afresh */
    g->t = task_new();
    return db_task_read(tx, g->id, g->what, g->t, e);
}

/* --- in one statement --- */

/* Columns of DB_TASK_LOAD: the task's (STORE_TASK_COLS), then a step's, then the latest
 * event's. */
enum { LOAD_STEP_COL = STORE_TASK_N_COLS, LOAD_EVENT_COL = LOAD_STEP_COL + 9 };

/* The task, its steps and its latest event from the rows of one statement, one row per step,
 * each with the task's columns and the event's: where each statement is a round trip to a
 * server, the engine's read of each task it runs was five (BEGIN, task, steps, event, COMMIT). */
static int load_fn(struct db_tx *tx, void *ctx, struct err *e)
{
    struct get_op *g = ctx;
    const char *what = "reading a task";
    task_free(g->t); /* a retried statement reads afresh */
    struct task *t = g->t = task_new();
    bool steps = g->what & TASK_READ_STEPS, last = g->what & TASK_READ_LAST_EVENT;
    int rc =
        db_exec(tx, DB_TASK_LOAD, DB_ARGS(DB_TEXT(g->id), DB_INT(steps), DB_INT(last)), what, e);
    size_t step_cap = 0, event_cap = 0;
    bool first = true;
    while (rc == 0 && (rc = db_next(tx, what, e)) == 1) {
        rc = 0;
        if (first) {
            struct store_cols cols = store_cols_db(tx, 0);
            store_task_from_cols(&cols, t);
            t->has_steps = steps;
            if (steps)
                t->n_steps = 0; /* the row's count, until the steps are here */
            t->has_events = last;
            if (last && !db_is_null(tx, LOAD_EVENT_COL))
                event_push(tx, LOAD_EVENT_COL, t, &event_cap);
        }
        if (steps && !db_is_null(tx, LOAD_STEP_COL))
            step_push(tx, LOAD_STEP_COL, t, &step_cap);
        first = false;
    }
    if (rc == 0 && first)
        rc = err_set(e, ERR_NOT_FOUND, "no task %s", g->id);
    return rc;
}

int store_db_task_get(struct store *s, const char *id, unsigned what, struct task **out,
                      struct err *e)
{
    struct get_op g = {.id = id, .what = what};
    /* The whole history takes a snapshot over several statements; without it, one joined
     * statement where statements are round trips. */
    int rc = !(what & TASK_READ_EVENTS) && db_store_has(s, DB_CAP_ROUND_TRIPS)
                 ? db_run(s, DB_READ, load_fn, &g, e)
                 : db_run(s, DB_SNAPSHOT, get_fn, &g, e);
    /* the step secrets are sealed at rest (store_plan.h) */
    if (rc == 0 && (what & TASK_READ_STEPS))
        rc = store_task_open_steps(g.t, e);
    if (rc != 0) {
        task_free(g.t);
        g.t = NULL;
    }
    *out = g.t;
    return rc;
}
