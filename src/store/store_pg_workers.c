/* The PostgreSQL store's remote steps (store.h, struct remote_handover and below). The decisions
 * are store_sqlite_workers.c's (and store_workers.c's); what differs is locking: every
 * read-then-write locks the task's row (FOR NO KEY UPDATE) first, a worker's claim skips rows
 * others hold (SKIP LOCKED), and leases are set and judged by the database's clock. The
 * statements are sent unprepared (pg_exec_sql): they run a few times per remote step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_pg_int.h"
#include "store/store_workers.h"

#define DB_NOW "(floor(extract(epoch FROM now()) * 1000))::bigint"
#define WAITING                                                                                    \
    "state = 'running' AND remote_kind IS NOT NULL AND remote_lease_no = lease_no"                 \
    " AND pause_requested = 0"

/* The task's state and lease, its row locked; *now is the database's clock. */
static int lease_row(struct pg_conn *c, const char *id, struct worker_row *row, int64_t *now,
                     struct err *e)
{
    memset(row, 0, sizeof *row);
    struct pg_params p = {0};
    pp_text(&p, id);
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT state, lease_no, COALESCE(lease_expires_ms, 0),"
                         " COALESCE(lease_node, ''), " DB_NOW ", COALESCE(remote_step, 0),"
                         " COALESCE(remote_phase, 'do') FROM tasks WHERE id = $1::text"
                         " FOR NO KEY UPDATE",
                         &p, &r, "reading a task's lease", e);
    if (rc != 0)
        return rc;
    *now = 0;
    if (PQntuples(r) == 1) {
        row->found = true;
        if (task_state_parse(pg_str(r, 0, 0), &row->state) != 0)
            row->state = TASK_FAILED;
        row->lease_no = pg_int(r, 0, 1);
        row->lease_expires_ms = pg_int(r, 0, 2);
        const char *node = pg_str(r, 0, 3);
        row->held_by_worker = strncmp(node, STORE_WORKER_PREFIX, strlen(STORE_WORKER_PREFIX)) == 0;
        *now = pg_int(r, 0, 4);
        pg_copy(row->owner, sizeof row->owner, node);
        row->remote_step = (int)pg_int(r, 0, 5);
        pg_copy(row->remote_phase, sizeof row->remote_phase, pg_str(r, 0, 6));
    }
    PQclear(r);
    return 0;
}

/* --- the engine's side --- */

static int handover_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct remote_handover *h = ctx;
    struct worker_row row;
    int64_t now;
    int rc = lease_row(c, h->id, &row, &now, e);
    if (rc != 0)
        return rc;
    if (!row.found || row.state != TASK_RUNNING || row.lease_no != h->lease_no)
        return err_set(e, ERR_CONFLICT, "task %s is no longer ours (lease %lld)", h->id,
                       (long long)h->lease_no);
    struct pg_params p = {0};
    pp_text(&p, h->id);
    pp_text(&p, h->kind);
    pp_int(&p, h->step);
    pp_text(&p, h->phase);
    rc = pg_exec_sql(c,
                     "UPDATE tasks SET remote_kind = $2::text, remote_step = $3::integer,"
                     " remote_phase = $4::text, remote_lease_no = lease_no, remote_result = NULL,"
                     " lease_node = NULL, lease_expires_ms = NULL, not_before_ms = 0"
                     " WHERE id = $1::text",
                     &p, NULL, "handing a task over to workers", e);
    if (rc == 0 && h->message)
        rc = pg_event_append(c, h->id, pg_now_ms(), TASK_RUNNING, TASK_RUNNING, h->node, h->message,
                             e);
    return rc;
}

int store_pg_remote_handover(struct store *s, const struct remote_handover *h, struct err *e)
{
    return pg_run(s, PG_TX_WRITE, handover_fn, (void *)h, e);
}

struct take_ctx {
    const char *id, *phase;
    int64_t lease_no;
    int step;
    json_t *out;
};

static int take_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct take_ctx *t = ctx;
    json_decref(t->out); /* a run again after a serialization failure starts afresh */
    t->out = NULL;
    struct pg_params p = {0};
    pp_text(&p, t->id);
    pp_int(&p, t->lease_no);
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT remote_result FROM tasks WHERE id = $1::text"
                         " AND lease_no = $2::bigint AND state = 'running' FOR NO KEY UPDATE",
                         &p, &r, "reading a remote step's result", e);
    if (rc != 0)
        return rc;
    bool has_row = PQntuples(r) == 1, had_result = has_row && pg_str(r, 0, 0);
    if (had_result)
        store_worker_result_parse(pg_str(r, 0, 0), t->step, t->phase, &t->out);
    PQclear(r);
    if (!has_row)
        return err_set(e, ERR_CONFLICT, "task %s is no longer ours (lease %lld)", t->id,
                       (long long)t->lease_no);
    if (!had_result)
        return 0;
    struct pg_params q = {0};
    pp_text(&q, t->id);
    return pg_exec_sql(c,
                       "UPDATE tasks SET remote_result = NULL, remote_kind = NULL"
                       " WHERE id = $1::text",
                       &q, NULL, "clearing a remote step's result", e);
}

int store_pg_remote_take(struct store *s, const char *id, int64_t lease_no, int step,
                         const char *phase, json_t **out, struct err *e)
{
    struct take_ctx t = {id, phase, lease_no, step, NULL};
    int rc = pg_run(s, PG_TX_WRITE, take_fn, &t, e);
    if (rc != 0) {
        json_decref(t.out);
        t.out = NULL;
    }
    *out = t.out;
    return rc;
}

/* --- the workers' side --- */

struct claim_ctx {
    const struct worker_claim_req *r;
    char *kinds_json;
    char owner[160];
    json_t *steps;
};

/* Leases one locked, waiting task to the worker and appends its step. */
static int claim_take(struct pg_conn *c, struct claim_ctx *cx, const char *id, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    pp_text(&p, cx->owner);
    pp_int(&p, cx->r->lease_ms);
    PGresult *r;
    int rc = pg_exec_sql(
        c,
        "UPDATE tasks t SET lease_node = $2::text, lease_expires_ms = " DB_NOW " + $3::bigint,"
        " lease_no = t.lease_no + 1, remote_lease_no = t.lease_no + 1 WHERE t.id = $1::text"
        " RETURNING t.lease_no, t.remote_step, t.remote_phase, t.attempt, t.input,"
        " t.lease_expires_ms, (SELECT name FROM task_steps s WHERE s.task_id = t.id"
        " AND s.idx = t.remote_step), (SELECT CASE WHEN t.remote_phase = 'undo' THEN undo_json"
        " ELSE do_json END FROM task_steps s WHERE s.task_id = t.id AND s.idx = t.remote_step)",
        &p, &r, "leasing a remote step to a worker", e);
    if (rc != 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return err_set(e, ERR_INTERNAL, "store: leasing task %s: its locked row is gone", id);
    }
    int64_t lease_no = pg_int(r, 0, 0);
    int step = (int)pg_int(r, 0, 1);
    const char *phase = pg_str(r, 0, 2);
    json_array_append_new(cx->steps,
                          store_worker_step_json(id, step, phase ? phase : "do", pg_str(r, 0, 6),
                                                 pg_str(r, 0, 7), pg_str(r, 0, 4),
                                                 (int)pg_int(r, 0, 3), lease_no, pg_int(r, 0, 5)));
    PQclear(r);
    char msg[300];
    snprintf(msg, sizeof msg, "step %d claimed by worker %.128s; lease %lld", step + 1,
             cx->r->worker, (long long)lease_no);
    return pg_event_append(c, id, pg_now_ms(), TASK_RUNNING, TASK_RUNNING, cx->owner, msg, e);
}

static int claim_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    json_array_clear(cx->steps); /* a run again after a serialization failure starts afresh */
    struct pg_params p = {0};
    pp_text(&p, cx->kinds_json);
    pp_int(&p, pg_now_ms());
    pp_int(&p, cx->r->max);
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT id FROM tasks WHERE remote_kind IN"
                         " (SELECT jsonb_array_elements_text($1::jsonb)) AND " WAITING
                         " AND not_before_ms <= $2::bigint AND (lease_expires_ms IS NULL"
                         " OR lease_expires_ms <= " DB_NOW ") ORDER BY created_ms, job_id"
                         " LIMIT $3::integer FOR NO KEY UPDATE SKIP LOCKED",
                         &p, &r, "looking for remote steps", e);
    if (rc != 0)
        return rc;
    int n = PQntuples(r);
    char(*ids)[STORE_ID_MAX] = calloc((size_t)n + 1, STORE_ID_MAX);
    if (!ids) {
        PQclear(r);
        return err_set(e, ERR_INTERNAL, "store: out of memory claiming remote steps");
    }
    for (int i = 0; i < n; i++)
        pg_copy(ids[i], STORE_ID_MAX, pg_str(r, i, 0));
    PQclear(r);
    for (int i = 0; i < n && rc == 0; i++)
        rc = claim_take(c, cx, ids[i], e);
    free(ids);
    return rc;
}

int store_pg_worker_claim(struct store *s, const struct worker_claim_req *r, json_t **out,
                          struct err *e)
{
    *out = NULL;
    int rc = store_worker_claim_check(r, e);
    if (rc != 0)
        return rc;
    json_t *kinds = json_array();
    for (size_t i = 0; i < r->n_kinds; i++)
        json_array_append_new(kinds, json_string(r->kinds[i]));
    struct claim_ctx cx = {.r = r, .kinds_json = json_dumps(kinds, JSON_COMPACT)};
    json_decref(kinds);
    snprintf(cx.owner, sizeof cx.owner, STORE_WORKER_PREFIX "%.128s", r->worker);
    cx.steps = json_array();
    rc = pg_run(s, PG_TX_WRITE, claim_fn, &cx, e);
    free(cx.kinds_json);
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

static int beat_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct beat_ctx *b = ctx;
    struct worker_row row;
    int64_t now;
    int rc = lease_row(c, b->id, &row, &now, e);
    if (rc == 0)
        rc = store_worker_lease_check(b->id, b->lease_no, &row, now, e);
    if (rc != 0)
        return rc;
    struct pg_params p = {0};
    pp_text(&p, b->id);
    pp_int(&p, b->lease_ms);
    PGresult *r;
    rc = pg_exec_sql(c,
                     "UPDATE tasks SET lease_expires_ms = " DB_NOW " + $2::bigint"
                     " WHERE id = $1::text RETURNING pause_requested, lease_expires_ms",
                     &p, &r, "extending a worker's lease", e);
    if (rc == 0 && PQntuples(r) == 1) {
        b->out->pause_requested = pg_int(r, 0, 0) != 0;
        b->out->expires_ms = pg_int(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

int store_pg_worker_heartbeat(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                              struct worker_lease *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct beat_ctx b = {id, lease_no, lease_ms, out};
    return pg_run(s, PG_TX_WRITE, beat_fn, &b, e);
}

static int report_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct worker_report *r = ctx;
    struct worker_row row;
    int64_t now;
    int rc = lease_row(c, r->id, &row, &now, e);
    if (rc == 0)
        rc = store_worker_lease_check(r->id, r->lease_no, &row, now, e);
    if (rc != 0)
        return rc;
    int step = row.remote_step;
    const char *phase = row.remote_phase;
    struct worker_report named = *r; /* the result names the worker that held the lease */
    named.worker = row.owner + strlen(STORE_WORKER_PREFIX);
    char *result = store_worker_result_text(&named, step, phase);
    struct pg_params p = {0};
    pp_text(&p, r->id);
    pp_text(&p, result);
    /* The engine claims the task next (remote_kind cleared) and goes on from this result. */
    rc = pg_exec_sql(c,
                     "UPDATE tasks SET remote_result = $2::text, remote_kind = NULL,"
                     " lease_node = NULL, lease_expires_ms = NULL WHERE id = $1::text",
                     &p, NULL, "recording a worker's result", e);
    free(result);
    char msg[1400];
    snprintf(msg, sizeof msg, "worker %.128s reported step %d%s %s%s%s", named.worker, step + 1,
             strcmp(phase, "undo") == 0 ? " (undo)" : "", r->done ? "done" : "failed",
             r->message && *r->message ? ": " : "", r->message ? r->message : "");
    if (rc == 0)
        rc = pg_event_append(c, r->id, pg_now_ms(), TASK_RUNNING, TASK_RUNNING, row.owner, msg, e);
    return rc;
}

int store_pg_worker_report(struct store *s, const struct worker_report *r, struct err *e)
{
    return pg_run(s, PG_TX_WRITE, report_fn, (void *)r, e);
}
