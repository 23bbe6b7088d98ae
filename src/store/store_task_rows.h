/* A task's rows as the typed task (task/task_model.h), the same for every backend: each backend
 * hands over its result's columns through a struct store_cols, and these fill the structs. */
#ifndef ASYNCD_STORE_TASK_ROWS_H
#define ASYNCD_STORE_TASK_ROWS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/errors.h"
#include "task/task_model.h"

/* One result row's columns, read through the backend's functions. */
struct store_cols {
    const void *res; /* the backend's statement or result */
    int row;
    int base; /* added to every col: a row that joins several kinds of rows (task, step, event) */
    const char *(*text)(const struct store_cols *c, int col); /* NULL for SQL NULL */
    bool (*is_null)(const struct store_cols *c, int col);
    int64_t (*integer)(const struct store_cols *c, int col);
};

/* The current row of a statement run through the backend primitives (store_db.h), its columns
 * counted from base. */
struct db_tx;
struct store_cols store_cols_db(struct db_tx *t, int base);
/* How many columns STORE_TASK_COLS (store_plan.h) selects: its text and integer ones, input. */
enum { STORE_TASK_N_COLS = 23 };
/* A row of SELECT STORE_TASK_COLS (store_plan.h), into t (from task_new). */
void store_task_from_cols(const struct store_cols *c, struct task *t);
/* A row of SELECT idx, name, do_json, undo_json, retries, timeout_s, state, message, output. */
void store_step_from_cols(const struct store_cols *c, struct task_step *s);
/* A row of SELECT seq, at_ms, from_state, to_state, node, message. */
void store_event_from_cols(const struct store_cols *c, struct task_event *ev);
/* Opens the sealed secret args of t's step actions in place (store_steps_open); ERR_INTERNAL
 * when one does not open. */
int store_task_open_steps(struct task *t, struct err *e);

#endif
