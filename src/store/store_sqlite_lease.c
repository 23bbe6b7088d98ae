/* The SQLite store's engine side still written per dialect: fenced progress (the claims are
 * store_claims.c's). */
#include <stdio.h>
#include <string.h>

#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

/* --- fenced progress --- */

/* The task's state, current step and lease in the caller's transaction. */
static int row_read(struct sq_conn *c, enum sq_slot slot, const char *id, struct task_row *row,
                    struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot,
                     "SELECT state, current_step, lease_no,"
                     " COALESCE(lease_expires_ms, 0), driver = 'external', phase = 'undo'"
                     " FROM tasks WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *word = (const char *)sqlite3_column_text(st, 0);
        if (!word || task_state_parse(word, &row->state) != 0)
            rc = err_set(e, ERR_INTERNAL, "store: task %s has an unknown state", id);
        row->step = sqlite3_column_int64(st, 1);
        row->lease_no = sqlite3_column_int64(st, 2);
        row->lease_expires_ms = sqlite3_column_int64(st, 3);
        row->external = sqlite3_column_int(st, 4) != 0;
        row->undoing = sqlite3_column_int(st, 5) != 0;
    } else if (r == SQLITE_DONE) {
        rc = err_set(e, ERR_NOT_FOUND, "no task %s", id);
    } else {
        rc = sq_fail(c, e, "reading a task");
    }
    sq_done(st);
    return rc;
}

/* Sets a step's state (and message); when only_if is given, only a step in that state changes. */
static int step_set(struct sq_conn *c, enum sq_slot slot, const char *id, int64_t idx,
                    const char *state, const char *message, const char *only_if, const char *output,
                    struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot,
                     "UPDATE task_steps SET state = ?3, message = CASE WHEN ?4 IS NULL"
                     " THEN message WHEN ?4 = '' THEN NULL ELSE ?4 END,"
                     " output = COALESCE(?6, output)"
                     " WHERE task_id = ?1 AND idx = ?2 AND (?5 IS NULL OR state = ?5)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, idx);
    sq_bind_text(st, 3, state);
    sq_bind_text(st, 4, message);
    sq_bind_text(st, 5, only_if);
    sq_bind_text(st, 6, output);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "updating a task step");
    sq_done(st);
    return rc;
}

static int progress_update(struct sq_conn *c, const struct task_progress *p, int64_t now,
                           struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_PROGRESS_TASK,
                     "UPDATE tasks SET state = ?2,"
                     " end_ms = CASE WHEN ?3 THEN ?4 ELSE end_ms END,"
                     " info = CASE WHEN ?5 IS NULL THEN info WHEN ?5 = '' THEN NULL ELSE ?5 END,"
                     " current_step = CASE WHEN ?6 = -2 THEN current_step ELSE ?6 END,"
                     " phase = COALESCE(?7, phase),"
                     " attempt = CASE WHEN ?8 < 0 THEN attempt ELSE ?8 END, not_before_ms = ?9,"
                     " lease_node = CASE WHEN ?10 THEN NULL ELSE lease_node END,"
                     " lease_expires_ms = CASE WHEN ?10 THEN NULL ELSE lease_expires_ms END,"
                     " pause_requested = CASE WHEN ?2 = 'running' THEN pause_requested ELSE 0 END"
                     " WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, p->id);
    sq_bind_text(st, 2, task_state_name(p->to));
    sqlite3_bind_int(st, 3, task_state_is_final(p->to));
    sqlite3_bind_int64(st, 4, now);
    sq_bind_text(st, 5, p->info);
    sqlite3_bind_int64(st, 6, p->next_step);
    sq_bind_text(st, 7, p->phase);
    sqlite3_bind_int64(st, 8, p->attempt);
    sqlite3_bind_int64(st, 9, p->not_before_ms);
    sqlite3_bind_int(st, 10, p->release);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "recording task progress");
    sq_done(st);
    return rc;
}

/* A progress write's checks, which come before it writes anything: 0, or why it is refused. */
static int progress_check(struct sq_conn *c, const struct task_progress *p, struct err *e)
{
    struct task_row row;
    int rc = row_read(c, SQ_LEASE_READ, p->id, &row, e);
    return rc != 0 ? rc : store_progress_allowed(p, &row, e);
}

/* The writes of a checked progress write: its step, its task row, its event. */
static int progress_write(struct sq_conn *c, const struct task_progress *p, struct err *e)
{
    int64_t now = sq_now_ms();
    int rc = 0;
    if (p->step >= 0 && p->step_state)
        rc = step_set(c, SQ_PROGRESS_STEP, p->id, p->step, p->step_state, p->message, NULL,
                      p->step_output, e);
    if (rc == 0)
        rc = progress_update(c, p, now, e);
    if (rc == 0 && (p->to != TASK_RUNNING || p->event))
        rc = sq_event_append(c, p->id, now, TASK_RUNNING, p->to, p->node,
                             p->event_message ? p->event_message : p->message, e);
    return rc;
}

static int progress_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    (void)outp;
    const struct task_progress *p = inp;
    int rc = progress_check(c, p, e);
    return rc != 0 ? rc : progress_write(c, p, e);
}

int store_sqlite_task_progress(struct store *s, const struct task_progress *p, struct err *e)
{
    int rc = store_progress_args_check(p, e);
    if (rc != 0)
        return rc;
    return sq_write_tx(s, progress_tx, p, NULL, e);
}

struct progress_batch {
    const struct task_progress *ps;
    size_t n;
    int *rcs; /* each write's outcome; -1: not tried (its arguments were refused before) */
};

/* One write of a batch. A refused one is refused by its checks, before it writes anything, so it
 * needs no savepoint of its own to leave the others' effects alone; a write that fails once it
 * has begun writing fails the whole batch (nonzero), which the engine then writes one by one
 * (engine_flush.c). A savepoint per item (SAVEPOINT, RELEASE) was 10% of the engine's CPU
 * draining 20,000 no-op tasks (perf, 2 CPUs). */
static int progress_item(struct sq_conn *c, const struct task_progress *p, int *rc_out,
                         struct err *e)
{
    struct err ie = {0};
    *rc_out = progress_check(c, p, &ie);
    if (sqlite3_get_autocommit(c->db))
        return err_set(e, ERR_INTERNAL, "store: a batched write ended its transaction: %s", ie.msg);
    if (*rc_out != 0)
        return 0;
    *rc_out = progress_write(c, p, e);
    return *rc_out;
}

static int progress_batch_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    (void)outp;
    const struct progress_batch *b = inp;
    for (size_t i = 0; i < b->n; i++) {
        if (b->rcs[i] != -1)
            continue;
        int rc = progress_item(c, &b->ps[i], &b->rcs[i], e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int store_sqlite_task_progress_batch(struct store *s, const struct task_progress *ps, size_t n,
                                     int *rcs, struct err *e)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        struct err ae;
        rcs[i] = store_progress_args_check(&ps[i], &ae) != 0 ? ae.code : -1;
        any = any || rcs[i] == -1;
    }
    if (!any)
        return 0;
    struct progress_batch b = {ps, n, rcs};
    int rc = sq_write_tx(s, progress_batch_tx, &b, NULL, e);
    for (size_t i = 0; i < n; i++) {
        struct err ae;
        if (rc != 0 && store_progress_args_check(&ps[i], &ae) == 0)
            rcs[i] = rc; /* rolled back with the transaction */
        else if (rcs[i] == -1)
            rcs[i] = ERR_INTERNAL;
    }
    return rc;
}
