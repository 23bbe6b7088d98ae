/* The engine's progress writes, once for both dialects (store_db.h): the fenced write of a
 * step's result and the task's next state. Each write first reads the task's row (locked on
 * PostgreSQL, so concurrent nodes apply their changes to a task one after another) and is
 * refused, before it writes anything, unless the task is still running under the writer's
 * lease_no (store_progress_allowed); then it writes the step, the task row and the event.
 * A batch runs its writes in one transaction. Where data-modifying CTEs exist (DB_CAP_WRITE_CTE,
 * PostgreSQL) a batch first hands what it can to one fenced statement (DB_PROGRESS_BULK) and
 * writes only what that leaves one by one. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"
#include "store/store_plan.h"

/* --- one write --- */

/* A write's checks, which come before it writes anything: 0, or why it is refused. */
static int progress_check(struct db_tx *t, const struct task_progress *p, struct err *e)
{
    struct task_row row;
    int rc = db_task_row_read(t, p->id, &row, e);
    return rc != 0 ? rc : store_progress_allowed(p, &row, e);
}

/* The writes of a checked write: its step, its task row, its event. */
static int progress_write(struct db_tx *t, const struct task_progress *p, struct err *e)
{
    int64_t now = db_now_ms();
    int rc = 0;
    if (p->step >= 0 && p->step_state)
        rc = db_exec(t, DB_PROGRESS_STEP,
                     DB_ARGS(DB_TEXT(p->id), DB_INT(p->step), DB_TEXT(p->step_state),
                             DB_TEXT(p->message), DB_TEXT(p->step_output)),
                     "updating a task step", e);
    if (rc == 0)
        rc = db_exec(t, DB_PROGRESS_TASK,
                     DB_ARGS(DB_TEXT(p->id), DB_TEXT(task_state_name(p->to)),
                             DB_INT(task_state_is_final(p->to)), DB_INT(now), DB_TEXT(p->info),
                             DB_INT(p->next_step), DB_TEXT(p->phase), DB_INT(p->attempt),
                             DB_INT(p->not_before_ms), DB_INT(p->release)),
                     "recording task progress", e);
    if (rc == 0 && (p->to != TASK_RUNNING || p->event))
        rc = db_event_append(t, p->id, now, TASK_RUNNING, p->to, p->node,
                             p->event_message ? p->event_message : p->message, e);
    return rc;
}

static int progress_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct task_progress *p = ctx;
    int rc = progress_check(t, p, e);
    return rc != 0 ? rc : progress_write(t, p, e);
}

int store_db_task_progress(struct store *s, const struct task_progress *p, struct err *e)
{
    int rc = store_progress_args_check(p, e);
    return rc != 0 ? rc : db_run(s, DB_WRITE, progress_fn, (void *)p, e);
}

/* --- a batch, write by write --- */

struct batch_op {
    const struct task_progress *ps;
    size_t n;
    int *rcs;
    const bool *todo; /* the writes left to this transaction */
};

/* The writes one after another in one transaction, one commit for them all. A refused write
 * (its lease gone, its task gone) is refused by its checks before it writes anything, so it
 * needs no savepoint of its own to leave the others' effects alone: a SAVEPOINT and RELEASE per
 * write was 10% of the engine's CPU draining 20,000 no-op tasks on SQLite (perf, 2 CPUs), and
 * two round trips each on PostgreSQL. Any other failure fails the whole batch (PostgreSQL has
 * aborted the transaction by then), which the engine then writes one by one (engine_flush.c). */
static int batch_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct batch_op *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->todo[i])
            continue;
        struct err ie = {0};
        int rc = progress_check(t, &b->ps[i], &ie);
        b->rcs[i] = rc;
        if (rc == ERR_CONFLICT || rc == ERR_NOT_FOUND)
            continue;
        if (rc != 0) {
            *e = ie;
            return rc;
        }
        if ((rc = progress_write(t, &b->ps[i], e)) != 0)
            return b->rcs[i] = rc;
    }
    return 0;
}

/* --- a batch in one statement (DB_CAP_WRITE_CTE) --- */

/* One write as a row of DB_PROGRESS_BULK's JSON array; NULL when it cannot be one (text that is
 * not UTF-8: the write-by-write path reports it). */
static json_t *bulk_row(const struct task_progress *p, size_t ord)
{
    const char *ev_message = p->event_message ? p->event_message : p->message;
    return json_pack("{s:I, s:s, s:I, s:s?, s:s, s:b, s:i, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, "
                     "s:s?, s:i, s:I, s:b, s:b}",
                     "ord", (json_int_t)ord, "id", p->id, "lease_no", (json_int_t)p->lease_no,
                     "node", p->node, "to_state", task_state_name(p->to), "is_final",
                     task_state_is_final(p->to), "step", p->step, "step_state", p->step_state,
                     "message", p->message, "ev_message", ev_message, "step_output", p->step_output,
                     "info", p->info, "next_step", p->next_step, "phase", p->phase, "attempt",
                     p->attempt, "not_before_ms", (json_int_t)p->not_before_ms, "release",
                     p->release, "ev", p->to != TASK_RUNNING || p->event);
}

struct bulk_op {
    const char *rows; /* the JSON array */
    bool *applied;    /* by ord */
    size_t n;
};

static int bulk_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct bulk_op *b = ctx;
    const char *what = "recording the progress of tasks";
    memset(b->applied, 0, b->n * sizeof *b->applied); /* a retried statement applies afresh */
    int rc = db_exec(t, DB_PROGRESS_BULK, DB_ARGS(DB_TEXT(b->rows), DB_INT(db_now_ms())), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        rc = 0;
        int64_t ord = db_int(t, 0);
        if (ord >= 0 && (size_t)ord < b->n)
            b->applied[ord] = true;
    }
    return rc;
}

/* Whether two writes of the batch are to one task: the bulk statement would apply one of them
 * only, so such a batch goes write by write, in order. */
static bool batch_has_repeats(const struct task_progress *ps, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(ps[i].id, ps[j].id) == 0)
                return true;
    return false;
}

/* The writes todo[] says are left in one statement; clears todo[] for each it applied (rcs 0).
 * What it leaves (refused, a final write that must erase secrets, a failed statement) goes write
 * by write: that path decides and reports each exactly as a batch of one would.
 * bench/pgboss.sh (2 CPUs, 5000 noop tasks): the last writes went from six round trips each to
 * one per batch. */
static void progress_bulk(struct store *s, const struct task_progress *ps, size_t n, bool *todo,
                          int *rcs)
{
    json_t *rows = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = todo[i] ? bulk_row(&ps[i], i) : NULL;
        if (row)
            json_array_append_new(rows, row);
    }
    char *text = json_array_size(rows) ? json_dumps(rows, JSON_COMPACT) : NULL;
    json_decref(rows);
    if (!text)
        return;
    bool *applied = xcalloc(n, sizeof *applied);
    struct bulk_op b = {text, applied, n};
    struct err e = {0};
    if (db_run(s, DB_WRITE_ONE, bulk_fn, &b, &e) == 0) {
        for (size_t i = 0; i < n; i++)
            if (todo[i] && applied[i]) {
                todo[i] = false;
                rcs[i] = 0;
            }
    }
    free(applied);
    free(text);
}

int store_db_task_progress_batch(struct store *s, const struct task_progress *ps, size_t n,
                                 int *rcs, struct err *e)
{
    bool *todo = xcalloc(n ? n : 1, sizeof *todo);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        struct err ae;
        rcs[i] = store_progress_args_check(&ps[i], &ae);
        todo[i] = rcs[i] == 0;
    }
    if (n > 0 && db_store_has(s, DB_CAP_WRITE_CTE) && !batch_has_repeats(ps, n))
        progress_bulk(s, ps, n, todo, rcs);
    for (size_t i = 0; i < n; i++)
        any = any || todo[i];
    int rc = 0;
    if (any) {
        struct batch_op b = {ps, n, rcs, todo};
        rc = db_run(s, DB_WRITE, batch_fn, &b, e);
        for (size_t i = 0; rc != 0 && i < n; i++)
            if (todo[i])
                rcs[i] = rc; /* rolled back with the transaction */
    }
    free(todo);
    return rc;
}
