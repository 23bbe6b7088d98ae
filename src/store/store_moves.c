/* The task moves made outside a lease, once for both dialects (store_db.h): a named transition
 * (move: the simulation's progress, an admin's manual step) and an operator's verb (control:
 * pause, resume, kill, retry, undo, remove). Each reads the task's row locked for the
 * transaction, checks the move (store_plan.c), writes the step and the task row, and appends the
 * event, whose erasure of secrets and webhook outbox rows come with it (db_event_append). */
#include "store/store.h"
#include "store/store_db.h"
#include "store/store_plan.h"

/* A state word read from the store, or ERR_INTERNAL naming the task. */
static int state_of(const char *word, const char *id, enum task_state *out, struct err *e)
{
    if (word && task_state_parse(word, out) == 0)
        return 0;
    return err_set(e, ERR_INTERNAL, "store: task %s has an unknown state \"%s\"", id,
                   word ? word : "(null)");
}

/* Runs the read st of task id and moves to its row: 1, ERR_NOT_FOUND naming the task, or an
 * error of the read. */
static int task_row(struct db_tx *t, enum db_stmt st, const char *id, const char *what,
                    struct err *e)
{
    int rc = db_exec_row(t, st, DB_ARGS(DB_TEXT(id)), what, e);
    return rc == 0 ? err_set(e, ERR_NOT_FOUND, "no task %s", id) : rc;
}

/* --- move --- */

/* The task's state and current step; its row locked until the transaction ends. */
static int move_read(struct db_tx *t, const char *id, enum task_state *state, int64_t *step,
                     struct err *e)
{
    int rc = task_row(t, DB_MOVE_READ, id, "reading a task's state", e);
    if (rc != 1)
        return rc;
    *step = db_int(t, 1);
    return state_of(db_text(t, 0), id, state, e);
}

/* Marks step idx with the move's mark (and its message, when given); ERR_CONFLICT when there is
 * no such step. */
static int move_step_mark(struct db_tx *t, const struct task_move *m, int64_t idx, struct err *e)
{
    const char *mark = m->step_mark ? m->step_mark : "done";
    int rc = db_exec(t, DB_MOVE_STEP_MARK,
                     DB_ARGS(DB_TEXT(m->id), DB_INT(idx), DB_TEXT(mark),
                             DB_TEXT(m->info ? m->info : m->message)),
                     "marking a task step", e);
    if (rc == 0 && db_changes(t) == 0)
        rc = err_set(e, ERR_CONFLICT, "task %s has no step %lld left to mark %s", m->id,
                     (long long)idx, mark);
    return rc;
}

static int move_update(struct db_tx *t, const struct task_move *m, int64_t now, struct err *e)
{
    return db_exec(t, DB_MOVE_UPDATE,
                   DB_ARGS(DB_TEXT(m->id), DB_TEXT(task_state_name(m->to)),
                           DB_INT(m->to == TASK_RUNNING), DB_INT(task_state_is_final(m->to)),
                           DB_INT(now), DB_TEXT(m->info), DB_INT(m->step_advance ? 1 : 0)),
                   "updating a task's state", e);
}

/* The whole move in one write transaction: check, mark the step, update, log. */
static int move_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct task_move *m = ctx;
    enum task_state now_state = TASK_INITIAL;
    int64_t cur_step = 0;
    int rc = move_read(t, m->id, &now_state, &cur_step, e);
    if (rc == 0)
        rc = store_move_allowed(m, now_state, e);
    if (rc != 0)
        return rc;
    int64_t now = db_now_ms();
    if (m->step_advance)
        rc = move_step_mark(t, m, cur_step, e);
    if (rc == 0)
        rc = move_update(t, m, now, e);
    if (rc == 0)
        rc = db_event_append(t, m->id, now, (int)m->expect, m->to, m->node, m->message, e);
    return rc;
}

int store_db_task_move(struct store *s, const struct task_move *m, struct err *e)
{
    int rc = store_move_args_check(m, e);
    return rc != 0 ? rc : db_run(s, DB_WRITE, move_fn, (void *)m, e);
}

/* --- operator verbs --- */

/* store_db.h: the task's state, current step and lease; its row locked until the transaction
 * ends (the operator verbs here, the engine's progress writes in store_progress.c). */
int db_task_row_read(struct db_tx *t, const char *id, struct task_row *row, struct err *e)
{
    int rc = task_row(t, DB_CONTROL_READ, id, "reading a task", e);
    if (rc != 1)
        return rc;
    row->step = db_int(t, 1);
    row->lease_no = db_int(t, 2);
    row->lease_expires_ms = db_int(t, 3);
    row->external = db_int(t, 4) != 0;
    row->undoing = db_int(t, 5) != 0;
    return state_of(db_text(t, 0), id, &row->state, e);
}

/* The message a verb leaves on the step it stops, or NULL to keep the step's own. */
static const char *control_step_message(enum task_verb verb)
{
    return verb == VERB_KILL   ? "killed by an operator"
           : verb == VERB_UNDO ? "stopped for undo"
                               : NULL;
}

static int control_update(struct db_tx *t, const char *id, const struct control_plan *p,
                          int64_t now, struct err *e)
{
    return db_exec(t, DB_CONTROL_UPDATE,
                   DB_ARGS(DB_TEXT(id), DB_TEXT(task_state_name(p->to)),
                           DB_INT(task_state_is_final(p->to)), DB_INT(now), DB_INT(p->step_delta),
                           DB_TEXT(p->phase), DB_INT(p->reset_attempt), DB_INT(p->release),
                           DB_INT(p->pause_requested), DB_INT(p->lease_bump)),
                   "applying an operator verb", e);
}

static int control_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct control_in *in = ctx;
    struct task_row row;
    struct control_plan plan = {0};
    int64_t now = db_now_ms();
    int rc = db_task_row_read(t, in->id, &row, e);
    if (rc == 0)
        rc = store_control_plan(in, &row, now, &plan, e);
    if (rc != 0)
        return rc;
    if (plan.step_state)
        rc = db_exec(t, DB_CONTROL_STEP,
                     DB_ARGS(DB_TEXT(in->id), DB_INT(row.step), DB_TEXT(plan.step_state),
                             DB_TEXT(control_step_message(in->verb)), DB_TEXT(plan.step_only_if)),
                     "updating a task step", e);
    if (rc == 0)
        rc = control_update(t, in->id, &plan, now, e);
    const char *msg = in->message && *in->message ? in->message : plan.what;
    if (rc == 0)
        rc = db_event_append(t, in->id, now, (int)row.state, plan.to, in->node, msg, e);
    return rc;
}

int store_db_task_control(struct store *s, const char *id, enum task_verb verb, const char *node,
                          const char *message, struct err *e)
{
    struct control_in in = {id, verb, node, message};
    return db_run(s, DB_WRITE, control_fn, &in, e);
}
