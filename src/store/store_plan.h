/* The rules every store backend applies inside its own transactions (store_sqlite_*.c,
 * store_pg_*.c): what an operator verb does, which moves and progress writes are allowed. The
 * backends only read rows and write SQL. */
#ifndef ASYNCD_STORE_PLAN_H
#define ASYNCD_STORE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* The columns every backend selects for a task's admin view, in this order, and the JSON names
 * they become: STORE_TASK_N_TEXT text columns, STORE_TASK_N_INT integer ones, then input (JSON). */
#define STORE_TASK_COLS                                                                            \
    "id, product, region, uin, instance_id, type, on_failure, state, info,"                        \
    " phase, lease_node, driver, current_step, created_ms, start_ms, end_ms, attempt,"             \
    " not_before_ms, pause_requested, lease_no, lease_expires_ms,"                                 \
    " (SELECT COUNT(*) FROM task_steps s WHERE s.task_id = tasks.id), input"
enum { STORE_TASK_N_TEXT = 12, STORE_TASK_N_INT = 10 };
extern const char *const store_task_text_fields[STORE_TASK_N_TEXT];
extern const char *const store_task_int_fields[STORE_TASK_N_INT];

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
    int lease_bump; /* 1: take the task from its worker (its fenced writes now fail) */
    int pause_requested;
    const char *step_state, *step_only_if;
    const char *what;
};

/* Fills *p for the verb on row at time now (Unix ms); ERR_CONFLICT with the reason when the verb
 * is not allowed from the task's state. */
int store_control_plan(const struct control_in *in, const struct task_row *row, int64_t now,
                       struct control_plan *p, struct err *e);

/* task_move: its arguments, then whether it applies to a task that is in state `now`
 * (ERR_CONFLICT with the reason when not). */
int store_move_args_check(const struct task_move *m, struct err *e);
int store_move_allowed(const struct task_move *m, enum task_state now, struct err *e);
/* task_progress: its arguments, then the fence -- the task must still be running under the
 * writer's lease -- and the move (ERR_CONFLICT when not). */
int store_progress_args_check(const struct task_progress *p, struct err *e);
int store_progress_allowed(const struct task_progress *p, const struct task_row *row,
                           struct err *e);
/* The canonical names of the states in mask (bit 1 << state), NULL-terminated; returns how many. */
size_t store_state_names(unsigned mask, const char *out[TASK_STATE_COUNT + 1]);

/* Step secrets: the args a mysql action passes as passwords ({N:str} after IDENTIFIED BY,
 * PASSWORD( or USING in its sql, capture, done_if or statements) -- the tenant passwords of
 * CreateAccounts and ModifyAccountPassword. They are sealed (common/secretbox.h) while the task
 * can still run a step, and erased to "***" in the transaction that makes the task final. The
 * rule that finds them is the template language's, handed over at start (store.h,
 * store_set_secret_args). */

/* A deep copy of steps (a new task's, as given) with every secret arg sealed, in *out (the
 * caller json_decref()s it). ERR_INTERNAL when sealing fails. */
int store_steps_seal(json_t *steps, json_t **out, struct err *e);
/* Opens the sealed secret args of steps (the array a backend read) in place; ERR_INTERNAL when
 * one does not open (another key). */
int store_steps_open(json_t *steps, struct err *e);
/* action_json (a stored do_json or undo_json; NULL is none) with each secret arg replaced by
 * "***": new heap text the caller frees, or NULL when there is nothing left to erase. */
char *store_step_json_erased(const char *action_json);

/* Secrets at rest written in clear by an asyncd from before sealing: each backend's store open
 * seals them after its migrations, in the same transaction (store_sqlite_accounts.c,
 * store_pg_accounts.c). The columns, by the key of their row; step secrets are not among them,
 * as an older task's are erased ("***") when it ends. */
struct store_secret_column {
    const char *table, *key, *column;
    const char *what; /* for the log line: "SecretKeys" */
};
enum { STORE_SECRET_COLUMNS = 2 };
extern const struct store_secret_column store_secret_columns[STORE_SECRET_COLUMNS];

/* SQL, heap text the caller frees. The SELECT lists (key, value) of the rows of col whose value
 * is in clear (not "" and without the sealed prefix). The UPDATE sets the value (parameter 1) of
 * the row with key (2) while it still holds the clear value (3), so a write another node made
 * meanwhile is kept; mark is the backend's parameter sign, '?' (SQLite) or '$' (PostgreSQL). */
char *store_reseal_select_sql(const struct store_secret_column *col);
char *store_reseal_update_sql(const struct store_secret_column *col, char mark);
/* Seals clear into *sealed (heap, the caller frees): 1 when sealed, 0 when there is nothing to
 * do (no key loaded: unit tests of the store; *sealed is then NULL), ERR_INTERNAL on failure. */
int store_reseal_value(const char *clear, char **sealed, struct err *e);
/* Logs at info how many values of each column were sealed (nothing when none were). */
void store_reseal_log(const size_t sealed[STORE_SECRET_COLUMNS]);

#endif
