/* Remote steps (store.h, struct remote_handover and below): the rules (store_workers.h) and the
 * transactions, once for both dialects. The engine hands a task over to workers, workers claim
 * its step under a lease, heartbeat and report; the engine takes the result. */
#include "store/store_workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_db.h"

int store_worker_lease_check(const char *id, int64_t lease_no, const struct worker_row *row,
                             int64_t now, struct err *e)
{
    if (!row->found)
        return err_set(e, ERR_CONFLICT, "task %s no longer exists", id);
    if (row->state != TASK_RUNNING)
        return err_set(e, ERR_CONFLICT,
                       "task %s is %s now (an operator or the engine moved it): stop working on "
                       "its step",
                       id, task_state_name(row->state));
    if (row->lease_no != lease_no)
        return err_set(e, ERR_CONFLICT,
                       "lease %lld of task %s is no longer current (it is at lease %lld: the step "
                       "was claimed again or taken back): stop working on it",
                       (long long)lease_no, id, (long long)row->lease_no);
    if (!row->held_by_worker)
        return err_set(e, ERR_CONFLICT,
                       "task %s is not held by a worker under lease %lld (its result was "
                       "recorded already)",
                       id, (long long)lease_no);
    if (row->lease_expires_ms <= now)
        return err_set(e, ERR_CONFLICT,
                       "lease %lld of task %s expired %lld ms ago; the step may be claimed again "
                       "(heartbeat sooner)",
                       (long long)lease_no, id, (long long)(now - row->lease_expires_ms));
    return 0;
}

static json_t *parsed_or_null(const char *text)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

json_t *store_worker_step_json(const char *id, int step, const char *phase, const char *name,
                               const char *action_json, const char *input_json, int attempt,
                               int64_t lease_no, int64_t expires_ms)
{
    json_t *action = parsed_or_null(action_json);
    json_t *remote = json_object_get(action, "remote");
    json_t *args = json_object_get(remote, "args");
    json_t *o = json_object();
    json_object_set_new(o, "task", json_string(id));
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "phase", json_string(phase));
    json_object_set_new(o, "kind", json_incref(json_object_get(remote, "kind")));
    json_object_set_new(o, "args", args ? json_incref(args) : json_object());
    json_object_set_new(o, "input", parsed_or_null(input_json));
    json_object_set_new(o, "name", json_string(name ? name : ""));
    json_object_set_new(o, "attempt", json_integer(attempt + 1));
    json_object_set_new(o, "lease_no", json_integer(lease_no));
    json_object_set_new(o, "lease_expires_ms", json_integer(expires_ms));
    json_decref(action);
    return o;
}

char *store_worker_result_text(const struct worker_report *r, int step, const char *phase)
{
    json_t *o = json_object();
    json_object_set_new(o, "outcome", json_string(r->done ? "done" : "failed"));
    json_object_set_new(o, "message", json_string(r->message ? r->message : ""));
    json_t *output = r->done && r->output_json ? json_loads(r->output_json, 0, NULL) : NULL;
    json_object_set_new(o, "output", output ? output : json_null());
    json_object_set_new(o, "worker", json_string(r->worker ? r->worker : ""));
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "phase", json_string(phase ? phase : "do"));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

void store_worker_result_parse(const char *text, int step, const char *phase, json_t **out)
{
    *out = NULL;
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *p = json_string_value(json_object_get(j, "phase"));
    if (json_integer_value(json_object_get(j, "step")) == step && p && strcmp(p, phase) == 0)
        *out = j;
    else
        json_decref(j);
}

int store_worker_claim_check(const struct worker_claim_req *r, struct err *e)
{
    if (!r->worker || !*r->worker)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "worker_claim: no worker name");
    if (r->n_kinds == 0 || !r->kinds)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "worker_claim: no kinds");
    if (r->max < 1 || r->lease_ms < 1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "worker_claim: max and lease must be > 0");
    return 0;
}

/* ---- the transactions, once for both dialects (store_db.h). Every write is fenced by lease_no
 * in one write transaction; on PostgreSQL the rows are locked before they are checked and the
 * leases judged by the database's clock (the dialect's SQL, store_pg_sql.c). ---- */

/* The task's state and lease (its row locked where the dialect locks), and the lease clock. */
static int lease_row(struct db_tx *t, const char *id, struct worker_row *row, int64_t *now,
                     struct err *e)
{
    const char *what = "reading a task's lease";
    memset(row, 0, sizeof *row);
    *now = db_now_ms();
    int rc = db_exec(t, DB_WORKER_LEASE_ROW, DB_ARGS(DB_TEXT(id), DB_INT(*now)), what, e);
    if (rc == 0)
        rc = db_next(t, what, e);
    if (rc != 1)
        return rc;
    row->found = true;
    const char *word = db_text(t, 0);
    if (!word || task_state_parse(word, &row->state) != 0)
        row->state = TASK_FAILED;
    row->lease_no = db_int(t, 1);
    row->lease_expires_ms = db_int(t, 2);
    db_copy(t, 3, row->owner, sizeof row->owner);
    row->held_by_worker =
        strncmp(row->owner, STORE_WORKER_PREFIX, strlen(STORE_WORKER_PREFIX)) == 0;
    row->remote_step = (int)db_int(t, 4);
    db_copy(t, 5, row->remote_phase, sizeof row->remote_phase);
    *now = db_int(t, 6);
    return 0;
}

static int not_ours(const char *id, int64_t lease_no, struct err *e)
{
    return err_set(e, ERR_CONFLICT, "task %s is no longer ours (lease %lld)", id,
                   (long long)lease_no);
}

/* --- the engine's side --- */

static int handover_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct remote_handover *h = ctx;
    struct worker_row row;
    int64_t now;
    int rc = lease_row(t, h->id, &row, &now, e);
    if (rc != 0)
        return rc;
    if (!row.found || row.state != TASK_RUNNING || row.lease_no != h->lease_no)
        return not_ours(h->id, h->lease_no, e);
    rc = db_exec(t, DB_WORKER_HANDOVER,
                 DB_ARGS(DB_TEXT(h->id), DB_TEXT(h->kind), DB_INT(h->step), DB_TEXT(h->phase)),
                 "handing a task over to workers", e);
    if (rc == 0 && h->message)
        rc = db_event_append(t, h->id, db_now_ms(), TASK_RUNNING, TASK_RUNNING, h->node, h->message,
                             e);
    return rc;
}

int store_db_remote_handover(struct store *s, const struct remote_handover *h, struct err *e)
{
    return db_run(s, DB_WRITE, handover_fn, (void *)h, e);
}

struct take_ctx {
    const char *id, *phase;
    int64_t lease_no;
    int step;
    json_t *out;
};

static int take_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct take_ctx *tk = ctx;
    const char *what = "reading a remote step's result";
    json_decref(tk->out); /* a run again after a serialization failure starts afresh */
    tk->out = NULL;
    int rc =
        db_exec(t, DB_WORKER_RESULT_READ, DB_ARGS(DB_TEXT(tk->id), DB_INT(tk->lease_no)), what, e);
    if (rc == 0)
        rc = db_next(t, what, e);
    if (rc == 0)
        return not_ours(tk->id, tk->lease_no, e);
    if (rc != 1)
        return rc;
    const char *result = db_text(t, 0);
    if (!result)
        return 0;
    store_worker_result_parse(result, tk->step, tk->phase, &tk->out);
    /* Used once: a retry, a resume or the undo phase asks a worker again. */
    return db_exec(t, DB_WORKER_RESULT_CLEAR, DB_ARGS(DB_TEXT(tk->id)),
                   "clearing a remote step's result", e);
}

int store_db_remote_take(struct store *s, const char *id, int64_t lease_no, int step,
                         const char *phase, json_t **out, struct err *e)
{
    struct take_ctx tk = {id, phase, lease_no, step, NULL};
    int rc = db_run(s, DB_WRITE, take_fn, &tk, e);
    if (rc != 0) {
        json_decref(tk.out);
        tk.out = NULL;
    }
    *out = tk.out;
    return rc;
}

/* --- the workers' side --- */

struct claim_ctx {
    const struct worker_claim_req *r;
    int max;
    char *kinds_json;
    char owner[160];
    char (*ids)[STORE_ID_MAX]; /* r->max of them */
    int n;
    json_t *steps;
};

/* The ids of up to cx->max waiting tasks of the kinds, oldest first (locked, skipping the rows
 * others hold, where the dialect locks). */
static int claim_pick(struct db_tx *t, struct claim_ctx *cx, struct err *e)
{
    const char *what = "looking for remote steps";
    cx->n = 0;
    int rc =
        db_exec(t, DB_WORKER_PICK,
                DB_ARGS(DB_TEXT(cx->kinds_json), DB_INT(db_now_ms()), DB_INT(cx->max)), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        if (cx->n < cx->max)
            db_copy(t, 0, cx->ids[cx->n++], STORE_ID_MAX);
        rc = 0;
    }
    return rc;
}

/* Leases one picked task to the worker and appends its step to cx->steps. */
static int claim_take(struct db_tx *t, struct claim_ctx *cx, const char *id, struct err *e)
{
    const char *what = "leasing a remote step to a worker";
    int64_t now = db_now_ms();
    int rc = db_exec(t, DB_WORKER_TAKE,
                     DB_ARGS(DB_TEXT(id), DB_TEXT(cx->owner), DB_INT(cx->r->lease_ms), DB_INT(now)),
                     what, e);
    if (rc == 0)
        rc = db_next(t, what, e);
    if (rc == 0)
        return err_set(e, ERR_INTERNAL, "store: leasing task %s: its picked row is gone", id);
    if (rc != 1)
        return rc;
    int64_t lease_no = db_int(t, 0);
    int step = (int)db_int(t, 1);
    const char *phase = db_text(t, 2);
    json_array_append_new(cx->steps,
                          store_worker_step_json(id, step, phase ? phase : "do", db_text(t, 6),
                                                 db_text(t, 7), db_text(t, 4), (int)db_int(t, 3),
                                                 lease_no, db_int(t, 5)));
    char msg[300];
    snprintf(msg, sizeof msg, "step %d claimed by worker %.128s; lease %lld", step + 1,
             cx->r->worker, (long long)lease_no);
    return db_event_append(t, id, now, TASK_RUNNING, TASK_RUNNING, cx->owner, msg, e);
}

static int claim_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    json_array_clear(cx->steps); /* a run again after a serialization failure starts afresh */
    int rc = claim_pick(t, cx, e);
    for (int i = 0; i < cx->n && rc == 0; i++)
        rc = claim_take(t, cx, cx->ids[i], e);
    return rc;
}

static int probe_fn(struct db_tx *t, void *ctx, struct err *e) { return claim_pick(t, ctx, e); }

/* Whether the claim may find anything. With one writer for all (SQLite), an idle long-poll asks
 * every 100 ms and must not take the writer (and its lock) from the engine each time: a read
 * looks first. PostgreSQL's claim skips locked rows and blocks no one: it goes straight in. */
static int claim_worth_it(struct store *s, struct claim_ctx *cx, bool *any, struct err *e)
{
    *any = true;
    if (!db_store_has(s, DB_CAP_ONE_WRITER))
        return 0;
    struct claim_ctx one = *cx;
    one.max = 1;
    int rc = db_run(s, DB_READ, probe_fn, &one, e);
    *any = rc == 0 && one.n > 0;
    return rc;
}

int store_db_worker_claim(struct store *s, const struct worker_claim_req *r, json_t **out,
                          struct err *e)
{
    *out = NULL;
    int rc = store_worker_claim_check(r, e);
    if (rc != 0)
        return rc;
    json_t *kinds = json_array();
    for (size_t i = 0; i < r->n_kinds; i++)
        json_array_append_new(kinds, json_string(r->kinds[i]));
    struct claim_ctx cx = {.r = r, .max = r->max, .kinds_json = json_dumps(kinds, JSON_COMPACT)};
    json_decref(kinds);
    snprintf(cx.owner, sizeof cx.owner, STORE_WORKER_PREFIX "%.128s", r->worker);
    cx.ids = xcalloc((size_t)r->max, STORE_ID_MAX);
    cx.steps = json_array();
    bool any;
    rc = claim_worth_it(s, &cx, &any, e);
    if (rc == 0 && any)
        rc = db_run(s, DB_WRITE, claim_fn, &cx, e);
    free(cx.kinds_json);
    free(cx.ids);
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

static int beat_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct beat_ctx *b = ctx;
    const char *what = "extending a worker's lease";
    struct worker_row row;
    int64_t now;
    int rc = lease_row(t, b->id, &row, &now, e);
    if (rc == 0)
        rc = store_worker_lease_check(b->id, b->lease_no, &row, now, e);
    if (rc == 0)
        rc = db_exec(t, DB_WORKER_BEAT, DB_ARGS(DB_TEXT(b->id), DB_INT(b->lease_ms), DB_INT(now)),
                     what, e);
    if (rc == 0)
        rc = db_next(t, what, e);
    if (rc == 0)
        return err_set(e, ERR_INTERNAL, "store: %s: task %s is gone", what, b->id);
    if (rc != 1)
        return rc;
    b->out->pause_requested = db_int(t, 0) != 0;
    b->out->expires_ms = db_int(t, 1);
    return 0;
}

int store_db_worker_heartbeat(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                              struct worker_lease *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    struct beat_ctx b = {id, lease_no, lease_ms, out};
    return db_run(s, DB_WRITE, beat_fn, &b, e);
}

static int report_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct worker_report *r = ctx;
    struct worker_row row;
    int64_t now;
    int rc = lease_row(t, r->id, &row, &now, e);
    if (rc == 0)
        rc = store_worker_lease_check(r->id, r->lease_no, &row, now, e);
    if (rc != 0)
        return rc;
    int step = row.remote_step;
    const char *phase = row.remote_phase;
    struct worker_report named = *r; /* the result names the worker that held the lease */
    named.worker = row.owner + strlen(STORE_WORKER_PREFIX);
    char *result = store_worker_result_text(&named, step, phase);
    /* The engine claims the task next (remote_kind cleared) and goes on from this result. */
    rc = db_exec(t, DB_WORKER_REPORT, DB_ARGS(DB_TEXT(r->id), DB_TEXT(result)),
                 "recording a worker's result", e);
    free(result);
    char msg[1400];
    snprintf(msg, sizeof msg, "worker %.128s reported step %d%s %s%s%s", named.worker, step + 1,
             strcmp(phase, "undo") == 0 ? " (undo)" : "", r->done ? "done" : "failed",
             r->message && *r->message ? ": " : "", r->message ? r->message : "");
    if (rc == 0)
        rc = db_event_append(t, r->id, db_now_ms(), TASK_RUNNING, TASK_RUNNING, row.owner, msg, e);
    return rc;
}

int store_db_worker_report(struct store *s, const struct worker_report *r, struct err *e)
{
    return db_run(s, DB_WRITE, report_fn, (void *)r, e);
}
