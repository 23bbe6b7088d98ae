/* The PostgreSQL store's engine side still written per dialect: fenced progress (the claims are
 * store_claims.c's). The decisions are store_sqlite_lease.c's; what differs is locking: SQLite
 * has one writer, here every read-then-write transaction first locks the task's row (FOR NO KEY
 * UPDATE) so concurrent nodes apply their changes to a task one after another. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/xalloc.h"

#include "store/store_plan.h"
#include "store/store_pg_int.h"

/* --- fenced progress --- */

/* The task's state, current step and lease, its row locked for the caller's transaction. */
static int row_read(struct pg_conn *c, const char *id, struct task_row *row, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    PGresult *r;
    int rc = pg_exec(c, PG_LEASE_READ, &p, &r, "reading a task", e);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = err_set(e, ERR_NOT_FOUND, "no task %s", id);
    } else {
        const char *word = pg_str(r, 0, 0);
        if (!word || task_state_parse(word, &row->state) != 0)
            rc = err_set(e, ERR_INTERNAL, "store: task %s has an unknown state", id);
        row->step = pg_int(r, 0, 1);
        row->lease_no = pg_int(r, 0, 2);
        row->lease_expires_ms = pg_int(r, 0, 3);
        row->external = pg_bool(r, 0, 4);
        row->undoing = pg_bool(r, 0, 5);
    }
    PQclear(r);
    return rc;
}

/* Sets a step's state (and message); when only_if is given, only a step in that state changes. */
static int step_set(struct pg_conn *c, const char *id, int64_t idx, const char *state,
                    const char *message, const char *only_if, const char *output, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    pp_int(&p, idx);
    pp_text(&p, state);
    pp_text(&p, message);
    pp_text(&p, only_if);
    pp_text(&p, output);
    return pg_exec(c, PG_STEP_SET, &p, NULL, "updating a task step", e);
}

static int progress_update(struct pg_conn *c, const struct task_progress *tp, int64_t now,
                           struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, tp->id);
    pp_text(&p, task_state_name(tp->to));
    pp_bool(&p, task_state_is_final(tp->to));
    pp_int(&p, now);
    pp_text(&p, tp->info);
    pp_int(&p, tp->next_step);
    pp_text(&p, tp->phase);
    pp_int(&p, tp->attempt);
    pp_int(&p, tp->not_before_ms);
    pp_bool(&p, tp->release);
    return pg_exec(c, PG_PROGRESS_TASK, &p, NULL, "recording task progress", e);
}

static int progress_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct task_progress *p = ctx;
    struct task_row row;
    int rc = row_read(c, p->id, &row, e);
    if (rc != 0)
        return rc;
    if ((rc = store_progress_allowed(p, &row, e)) != 0)
        return rc;
    int64_t now = pg_now_ms();
    if (p->step >= 0 && p->step_state)
        rc = step_set(c, p->id, p->step, p->step_state, p->message, NULL, p->step_output, e);
    if (rc == 0)
        rc = progress_update(c, p, now, e);
    if (rc == 0 && (p->to != TASK_RUNNING || p->event))
        rc = pg_event_append(c, p->id, now, TASK_RUNNING, p->to, p->node,
                             p->event_message ? p->event_message : p->message, e);
    return rc;
}

int store_pg_task_progress(struct store *s, const struct task_progress *p, struct err *e)
{
    int rc = store_progress_args_check(p, e);
    if (rc != 0)
        return rc;
    return pg_run(s, PG_TX_WRITE, progress_fn, (void *)p, e);
}

struct progress_batch_ctx {
    const struct task_progress *ps;
    size_t n;
    int *rcs;
    const bool *ok_args; /* the writes whose arguments passed the check */
};

/* The writes of the batch one after another in one transaction, one COMMIT for them all; each
 * still locks its row and checks its own lease_no. A refused write (its lease gone: progress_fn's
 * row_read and store_progress_allowed) is refused before it writes anything, so it needs no
 * savepoint (two round trips each); any other failure aborts the transaction and fails the whole
 * batch, which the caller may then write one by one. */
static int progress_batch_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct progress_batch_ctx *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->ok_args[i])
            continue;
        struct err ie = {0};
        int rc = progress_fn(c, (void *)&b->ps[i], &ie);
        b->rcs[i] = rc;
        if (rc != 0 && rc != ERR_CONFLICT && rc != ERR_NOT_FOUND) {
            *e = ie;
            return rc; /* the transaction is aborted: runs again (PG_RETRY) or fails */
        }
    }
    return 0;
}

/* One write as a row of PG_PROGRESS_BULK's JSON array; NULL when it cannot be one (text that is
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

struct bulk_ctx {
    const char *rows; /* the JSON array */
    bool *applied;    /* by ord */
    size_t n;
};

static int bulk_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct bulk_ctx *b = ctx;
    memset(b->applied, 0, b->n * sizeof *b->applied); /* pg_run may run this again */
    struct pg_params p = {0};
    pp_text(&p, b->rows);
    pp_int(&p, pg_now_ms());
    PGresult *r;
    int rc = pg_exec(c, PG_PROGRESS_BULK, &p, &r, "recording the progress of tasks", e);
    if (rc != 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t ord = pg_int(r, i, 0);
        if (ord >= 0 && (size_t)ord < b->n)
            b->applied[ord] = true;
    }
    PQclear(r);
    return 0;
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

/* The writes todo[] says are left in one bulk statement; clears todo[] for each it applied (rcs
 * 0). What it leaves (refused, a final write that must erase secrets, a failed statement) goes
 * write by write: that path decides and reports each exactly as a batch of one would. */
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
    struct bulk_ctx b = {text, applied, n};
    struct err e = {0};
    if (pg_run(s, PG_TX_NONE, bulk_fn, &b, &e) == 0) {
        for (size_t i = 0; i < n; i++)
            if (todo[i] && applied[i]) {
                todo[i] = false;
                rcs[i] = 0;
            }
    }
    free(applied);
    free(text);
}

/* The writes of one batch: first all that one statement can take (PG_PROGRESS_BULK), then what
 * is left one after another in one transaction (progress_batch_fn). bench/pgboss.sh (2 CPUs,
 * 5000 noop tasks): the last writes went from six round trips each to one per batch. */
int store_pg_task_progress_batch(struct store *s, const struct task_progress *ps, size_t n,
                                 int *rcs, struct err *e)
{
    bool *todo = xcalloc(n ? n : 1, sizeof *todo);
    for (size_t i = 0; i < n; i++) {
        struct err ae;
        rcs[i] = store_progress_args_check(&ps[i], &ae);
        todo[i] = rcs[i] == 0;
    }
    if (n > 0 && !batch_has_repeats(ps, n))
        progress_bulk(s, ps, n, todo, rcs);
    bool any = false;
    for (size_t i = 0; i < n; i++)
        any = any || todo[i];
    int rc = 0;
    if (any) {
        struct progress_batch_ctx b = {ps, n, rcs, todo};
        rc = pg_run(s, PG_TX_WRITE, progress_batch_fn, &b, e);
        for (size_t i = 0; rc != 0 && i < n; i++)
            if (todo[i])
                rcs[i] = rc; /* rolled back with the transaction */
    }
    free(todo);
    return rc;
}
