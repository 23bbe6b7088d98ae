/* The SQLite store's remote steps (store.h, struct remote_handover and below): the engine hands a
 * task over to workers, workers claim its step under a lease, heartbeat and report; the engine
 * takes the result. Every write is fenced by lease_no, in one BEGIN IMMEDIATE transaction. The
 * statements are prepared per call: they run a few times per remote step, not per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_int.h"
#include "store/store_workers.h"

/* A task waits for a worker: a handover of the current lease (an operator verb bumps lease_no,
 * which ends the wait) and no pause requested. The engine's claim skips exactly these. */
#define WAITING                                                                                    \
    "state = 'running' AND remote_kind IS NOT NULL AND remote_lease_no = lease_no"                 \
    " AND pause_requested = 0"

static int prepare(struct sq_conn *c, const char *sql, sqlite3_stmt **st, struct err *e)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return sq_fail(c, e, "preparing a remote-step statement");
    }
    return 0;
}

struct tx_call {
    int (*fn)(struct sq_conn *, void *, struct err *);
    void *ctx;
};

static int tx_call_run(struct sq_conn *c, const void *in, void *out, struct err *e)
{
    (void)out;
    const struct tx_call *t = in;
    return t->fn(c, t->ctx, e);
}

/* Runs fn in a write transaction through the group commit (sq_write_tx): committed with
 * whatever else is queued, rolled back alone when it fails. */
static int in_write_tx(struct store *s, int (*fn)(struct sq_conn *, void *, struct err *),
                       void *ctx, struct err *e)
{
    struct tx_call t = {fn, ctx};
    return sq_write_tx(s, tx_call_run, &t, NULL, e);
}

/* The task's state and lease, and whether the engine holds it under lease_no. */
static int lease_row(struct sq_conn *c, const char *id, struct worker_row *row, struct err *e)
{
    sqlite3_stmt *st;
    memset(row, 0, sizeof *row);
    int rc = prepare(c,
                     "SELECT state, lease_no, COALESCE(lease_expires_ms, 0),"
                     " COALESCE(lease_node, ''), COALESCE(remote_step, 0),"
                     " COALESCE(remote_phase, 'do') FROM tasks WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        row->found = true;
        const char *word = (const char *)sqlite3_column_text(st, 0);
        if (!word || task_state_parse(word, &row->state) != 0)
            row->state = TASK_FAILED;
        row->lease_no = sqlite3_column_int64(st, 1);
        row->lease_expires_ms = sqlite3_column_int64(st, 2);
        const char *owner = (const char *)sqlite3_column_text(st, 3);
        row->held_by_worker =
            owner && strncmp(owner, STORE_WORKER_PREFIX, strlen(STORE_WORKER_PREFIX)) == 0;
        sq_copy(row->owner, sizeof row->owner, (const unsigned char *)owner);
        row->remote_step = sqlite3_column_int(st, 4);
        sq_copy(row->remote_phase, sizeof row->remote_phase, sqlite3_column_text(st, 5));
    } else if (r != SQLITE_DONE) {
        rc = sq_fail(c, e, "reading a task's lease");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs a one-row UPDATE already bound; ERR_INTERNAL unless it is done. */
static int step_done(struct sq_conn *c, sqlite3_stmt *st, const char *what, struct err *e)
{
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(c, e, what);
    sqlite3_finalize(st);
    return rc;
}

/* --- the engine's side --- */

static int handover_tx(struct sq_conn *c, void *ctx, struct err *e)
{
    const struct remote_handover *h = ctx;
    struct worker_row row;
    int rc = lease_row(c, h->id, &row, e);
    if (rc != 0)
        return rc;
    if (!row.found || row.state != TASK_RUNNING || row.lease_no != h->lease_no)
        return err_set(e, ERR_CONFLICT, "task %s is no longer ours (lease %lld)", h->id,
                       (long long)h->lease_no);
    sqlite3_stmt *st;
    if ((rc = prepare(c,
                      "UPDATE tasks SET remote_kind = ?2, remote_step = ?3, remote_phase = ?4,"
                      " remote_lease_no = lease_no, remote_result = NULL, lease_node = NULL,"
                      " lease_expires_ms = NULL, not_before_ms = 0 WHERE id = ?1",
                      &st, e)) != 0)
        return rc;
    sq_bind_text(st, 1, h->id);
    sq_bind_text(st, 2, h->kind);
    sqlite3_bind_int(st, 3, h->step);
    sq_bind_text(st, 4, h->phase);
    rc = step_done(c, st, "handing a task over to workers", e);
    if (rc == 0 && h->message)
        rc = sq_event_append(c, h->id, sq_now_ms(), TASK_RUNNING, TASK_RUNNING, h->node, h->message,
                             e);
    return rc;
}

int store_sqlite_remote_handover(struct store *s, const struct remote_handover *h, struct err *e)
{
    return in_write_tx(s, handover_tx, (void *)h, e);
}

struct take_ctx {
    const char *id, *phase;
    int64_t lease_no;
    int step;
    json_t **out;
};

static int take_tx(struct sq_conn *c, void *ctx, struct err *e)
{
    struct take_ctx *t = ctx;
    sqlite3_stmt *st;
    int rc = prepare(c,
                     "SELECT remote_result FROM tasks WHERE id = ?1 AND lease_no = ?2"
                     " AND state = 'running'",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, t->id);
    sqlite3_bind_int64(st, 2, t->lease_no);
    int r = sqlite3_step(st);
    bool has_row = r == SQLITE_ROW;
    bool had_result = has_row && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (has_row)
        store_worker_result_parse((const char *)sqlite3_column_text(st, 0), t->step, t->phase,
                                  t->out);
    else if (r != SQLITE_DONE)
        rc = sq_fail(c, e, "reading a remote step's result");
    sqlite3_finalize(st);
    if (rc != 0 || !has_row)
        return rc != 0 ? rc
                       : err_set(e, ERR_CONFLICT, "task %s is no longer ours (lease %lld)", t->id,
                                 (long long)t->lease_no);
    if (!had_result)
        return 0;
    /* Used once: a retry, a resume or the undo phase asks a worker again. */
    if ((rc = prepare(c, "UPDATE tasks SET remote_result = NULL, remote_kind = NULL WHERE id = ?1",
                      &st, e)) != 0)
        return rc;
    sq_bind_text(st, 1, t->id);
    return step_done(c, st, "clearing a remote step's result", e);
}

int store_sqlite_remote_take(struct store *s, const char *id, int64_t lease_no, int step,
                             const char *phase, json_t **out, struct err *e)
{
    *out = NULL;
    struct take_ctx t = {id, phase, lease_no, step, out};
    int rc = in_write_tx(s, take_tx, &t, e);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* --- the workers' side --- */

struct claim_ctx {
    const struct worker_claim_req *r;
    json_t *steps;
};

/* The ids of up to max waiting tasks of the kinds, oldest first. INDEXED BY: without statistics
 * the planner prefers tasks_state, a walk through every running task. */
static int claim_pick(struct sq_conn *c, const struct worker_claim_req *r, int64_t now,
                      char (*ids)[STORE_ID_MAX], int *n, struct err *e)
{
    json_t *kinds = json_array();
    for (size_t i = 0; i < r->n_kinds; i++)
        json_array_append_new(kinds, json_string(r->kinds[i]));
    char *kinds_text = json_dumps(kinds, JSON_COMPACT);
    json_decref(kinds);
    sqlite3_stmt *st;
    int rc = prepare(c,
                     "SELECT id FROM tasks INDEXED BY tasks_remote"
                     " WHERE remote_kind IN (SELECT value FROM json_each(?1))"
                     " AND " WAITING " AND not_before_ms <= ?2"
                     " AND (lease_expires_ms IS NULL OR lease_expires_ms <= ?2)"
                     " ORDER BY created_ms, rowid LIMIT ?3",
                     &st, e);
    *n = 0;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, kinds_text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int(st, 3, r->max);
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < r->max)
            sq_copy(ids[(*n)++], STORE_ID_MAX, sqlite3_column_text(st, 0));
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = sq_fail(c, e, "looking for remote steps");
        sqlite3_finalize(st);
    }
    free(kinds_text);
    return rc;
}

/* Leases one picked task to the worker and appends its step to cx->steps. */
static int claim_take(struct sq_conn *c, struct claim_ctx *cx, const char *id, int64_t now,
                      struct err *e)
{
    char owner[160];
    snprintf(owner, sizeof owner, STORE_WORKER_PREFIX "%.128s", cx->r->worker);
    sqlite3_stmt *st;
    int rc = prepare(c,
                     "UPDATE tasks SET lease_node = ?2, lease_expires_ms = ?3,"
                     " lease_no = lease_no + 1, remote_lease_no = lease_no + 1 WHERE id = ?1"
                     " RETURNING lease_no, remote_step, remote_phase, attempt, input,"
                     " (SELECT name FROM task_steps WHERE task_id = ?1 AND idx = remote_step),"
                     " (SELECT CASE WHEN remote_phase = 'undo' THEN undo_json ELSE do_json END"
                     " FROM task_steps WHERE task_id = ?1 AND idx = remote_step)",
                     &st, e);
    if (rc != 0)
        return rc;
    int64_t expires = now + cx->r->lease_ms;
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, owner);
    sqlite3_bind_int64(st, 3, expires);
    int64_t lease_no = 0;
    int step = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        lease_no = sqlite3_column_int64(st, 0);
        step = sqlite3_column_int(st, 1);
        const char *phase = (const char *)sqlite3_column_text(st, 2);
        json_array_append_new(cx->steps,
                              store_worker_step_json(id, step, phase ? phase : "do",
                                                     (const char *)sqlite3_column_text(st, 5),
                                                     (const char *)sqlite3_column_text(st, 6),
                                                     (const char *)sqlite3_column_text(st, 4),
                                                     sqlite3_column_int(st, 3), lease_no, expires));
    } else {
        rc = sq_fail(c, e, "leasing a remote step to a worker");
    }
    sqlite3_finalize(st);
    if (rc != 0)
        return rc;
    char msg[300];
    snprintf(msg, sizeof msg, "step %d claimed by worker %.128s; lease %lld", step + 1,
             cx->r->worker, (long long)lease_no);
    return sq_event_append(c, id, now, TASK_RUNNING, TASK_RUNNING, owner, msg, e);
}

static int claim_tx(struct sq_conn *c, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    int64_t now = sq_now_ms();
    char(*ids)[STORE_ID_MAX] = calloc((size_t)cx->r->max, STORE_ID_MAX);
    if (!ids)
        return err_set(e, ERR_INTERNAL, "store: out of memory claiming remote steps");
    int n = 0;
    int rc = claim_pick(c, cx->r, now, ids, &n, e);
    for (int i = 0; i < n && rc == 0; i++)
        rc = claim_take(c, cx, ids[i], now, e);
    free(ids);
    return rc;
}

/* Whether any task of the kinds waits, on a reader: an idle long-poll asks every 100 ms and must
 * not take the writer (and its lock) from the engine each time. */
static int claim_probe(struct store *s, const struct worker_claim_req *r, bool *any, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    char(*ids)[STORE_ID_MAX] = calloc(1, STORE_ID_MAX);
    int n = 0;
    struct worker_claim_req one = *r;
    one.max = 1;
    int rc = ids ? claim_pick(c, &one, sq_now_ms(), ids, &n, e)
                 : err_set(e, ERR_INTERNAL, "store: out of memory claiming remote steps");
    free(ids);
    sq_release(c);
    *any = n > 0;
    return rc;
}

int store_sqlite_worker_claim(struct store *s, const struct worker_claim_req *r, json_t **out,
                              struct err *e)
{
    *out = NULL;
    int rc = store_worker_claim_check(r, e);
    bool any = false;
    if (rc == 0)
        rc = claim_probe(s, r, &any, e);
    if (rc != 0)
        return rc;
    if (!any) {
        *out = json_array();
        return 0;
    }
    struct claim_ctx cx = {r, json_array()};
    rc = in_write_tx(s, claim_tx, &cx, e);
    if (rc != 0)
        json_decref(cx.steps);
    else
        *out = cx.steps;
    return rc;
}

struct beat_ctx {
    const char *id;
    int64_t lease_no, lease_ms;
    struct worker_lease *out;
};

static int beat_tx(struct sq_conn *c, void *ctx, struct err *e)
{
    struct beat_ctx *b = ctx;
    struct worker_row row;
    int64_t now = sq_now_ms();
    int rc = lease_row(c, b->id, &row, e);
    if (rc == 0)
        rc = store_worker_lease_check(b->id, b->lease_no, &row, now, e);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st;
    if ((rc = prepare(c,
                      "UPDATE tasks SET lease_expires_ms = ?2 WHERE id = ?1"
                      " RETURNING pause_requested",
                      &st, e)) != 0)
        return rc;
    sq_bind_text(st, 1, b->id);
    sqlite3_bind_int64(st, 2, now + b->lease_ms);
    if (sqlite3_step(st) == SQLITE_ROW) {
        b->out->expires_ms = now + b->lease_ms;
        b->out->pause_requested = sqlite3_column_int(st, 0) != 0;
    } else {
        rc = sq_fail(c, e, "extending a worker's lease");
    }
    sqlite3_finalize(st);
    return rc;
}

int store_sqlite_worker_heartbeat(struct store *s, const char *id, int64_t lease_no,
                                  int64_t lease_ms, struct worker_lease *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct beat_ctx b = {id, lease_no, lease_ms, out};
    return in_write_tx(s, beat_tx, &b, e);
}

static int report_tx(struct sq_conn *c, void *ctx, struct err *e)
{
    const struct worker_report *r = ctx;
    struct worker_row row;
    int64_t now = sq_now_ms();
    int rc = lease_row(c, r->id, &row, e);
    if (rc == 0)
        rc = store_worker_lease_check(r->id, r->lease_no, &row, now, e);
    if (rc != 0)
        return rc;
    int step = row.remote_step;
    const char *phase = row.remote_phase;
    sqlite3_stmt *st;
    struct worker_report named = *r; /* the result names the worker that held the lease */
    named.worker = row.owner + strlen(STORE_WORKER_PREFIX);
    char *result = store_worker_result_text(&named, step, phase);
    /* The engine claims the task next (remote_kind cleared) and goes on from this result. */
    rc = prepare(c,
                 "UPDATE tasks SET remote_result = ?2, remote_kind = NULL, lease_node = NULL,"
                 " lease_expires_ms = NULL WHERE id = ?1",
                 &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, r->id);
        sq_bind_text(st, 2, result);
        rc = step_done(c, st, "recording a worker's result", e);
    }
    free(result);
    char msg[1400];
    snprintf(msg, sizeof msg, "worker %.128s reported step %d%s %s%s%s", named.worker, step + 1,
             strcmp(phase, "undo") == 0 ? " (undo)" : "", r->done ? "done" : "failed",
             r->message && *r->message ? ": " : "", r->message ? r->message : "");
    if (rc == 0)
        rc = sq_event_append(c, r->id, now, TASK_RUNNING, TASK_RUNNING, row.owner, msg, e);
    return rc;
}

int store_sqlite_worker_report(struct store *s, const struct worker_report *r, struct err *e)
{
    return in_write_tx(s, report_tx, (void *)r, e);
}
