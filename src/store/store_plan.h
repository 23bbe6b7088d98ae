/* What an operator verb does to a task, decided from the task's row: the one rule every store
 * backend applies (store_sqlite_lease.c, store_pg_lease.c) inside its own transaction. */
#ifndef ASYNCD_STORE_PLAN_H
#define ASYNCD_STORE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* The task as a backend read it, in the verb's transaction. */
struct task_row {
    enum task_state state;
    int64_t step, lease_no, lease_expires_ms;
    bool external; /* driven by a remote worker through the admin API, not by the engine */
    bool undoing;  /* in the undo phase: current_step is the step being undone */
};

struct control_in {
    const char *id;
    enum task_verb verb;
    const char *node, *message;
};

/* What a verb does to the task row and its current step. */
struct control_plan {
    enum task_state to;
    int step_delta;
    const char *phase;
    bool reset_attempt, release;
    int lease_bump;  /* 1: take the task from its worker (its fenced writes now fail) */
    int pause_requested;
    const char *step_state, *step_only_if;
    const char *what;
};

/* Fills *p for the verb on row at time now (Unix ms); ERR_CONFLICT with the reason when the verb
 * is not allowed from the task's state. */
int store_control_plan(const struct control_in *in, const struct task_row *row, int64_t now,
                       struct control_plan *p, struct err *e);

#endif
