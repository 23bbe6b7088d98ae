/* The PostgreSQL store's task reads for the admin API: one task as JSON, filtered and paged lists,
 * counts. The JSON is store_sqlite_query.c's, key for key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_plan.h"
#include "store/store_pg_int.h"

#define LIST_DEFAULT_LIMIT 100

/* The task object of docs/admin-api.md without steps, events and the formatted time fields. */
static json_t *task_row_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    int col = 0;
    for (size_t i = 0; i < STORE_TASK_N_TEXT; i++)
        json_object_set_new(o, store_task_text_fields[i], pg_json_text(r, row, col++));
    for (size_t i = 0; i < STORE_TASK_N_INT; i++)
        json_object_set_new(o, store_task_int_fields[i], pg_json_int(r, row, col++));
    json_object_set_new(o, "input", pg_json_value(r, row, col++));
    return o;
}

static json_t *step_row_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    json_object_set_new(o, "index", pg_json_int(r, row, 0));
    json_object_set_new(o, "name", pg_json_text(r, row, 1));
    json_object_set_new(o, "do", pg_json_value(r, row, 2));
    json_object_set_new(o, "undo", pg_json_value(r, row, 3));
    json_object_set_new(o, "retries", pg_json_int(r, row, 4));
    json_object_set_new(o, "timeout_s", pg_json_int(r, row, 5));
    json_object_set_new(o, "state", pg_json_text(r, row, 6));
    json_object_set_new(o, "message", pg_json_text(r, row, 7));
    json_object_set_new(o, "output", pg_json_value(r, row, 8));
    return o;
}

static json_t *event_row_json(const PGresult *r, int row)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", pg_json_int(r, row, 0));
    json_object_set_new(o, "at_ms", pg_json_int(r, row, 1));
    json_object_set_new(o, "from", pg_json_text(r, row, 2));
    json_object_set_new(o, "to", pg_json_text(r, row, 3));
    json_object_set_new(o, "node", pg_json_text(r, row, 4));
    json_object_set_new(o, "message", pg_json_text(r, row, 5));
    return o;
}

/* Runs statement st (bound to id) and collects every row through row_json. */
static int rows_json(struct pg_conn *c, enum pg_stmt st, const char *id,
                     json_t *(*row_json)(const PGresult *, int), json_t **out, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    PGresult *r;
    int rc = pg_exec(c, st, &p, &r, "reading a task", e);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    for (int row = 0; row < PQntuples(r); row++)
        json_array_append_new(arr, row_json(r, row));
    PQclear(r);
    *out = arr;
    return 0;
}

struct get_ctx {
    const char *id;
    json_t **out;
};

/* The task, its steps and events from one snapshot. */
static int get_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct get_ctx *g = ctx;
    json_t *task = NULL, *steps = NULL, *events = NULL;
    int rc = rows_json(c, PG_TASK_ROW, g->id, task_row_json, &task, e);
    if (rc == 0 && json_array_size(task) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no task %s", g->id);
    if (rc == 0)
        rc = rows_json(c, PG_TASK_STEPS, g->id, step_row_json, &steps, e);
    if (rc == 0) /* the step secrets are sealed at rest (store_plan.h) */
        rc = store_steps_open(steps, e);
    if (rc == 0)
        rc = rows_json(c, PG_TASK_EVENTS, g->id, event_row_json, &events, e);
    if (rc == 0) {
        *g->out = json_incref(json_array_get(task, 0));
        json_object_set_new(*g->out, "steps", steps);
        json_object_set_new(*g->out, "events", events);
        steps = events = NULL;
    }
    json_decref(task);
    json_decref(steps);
    json_decref(events);
    return rc;
}

int store_pg_task_get_json(struct store *s, const char *id, json_t **out, struct err *e)
{
    *out = NULL;
    struct get_ctx g = {id, out};
    return pg_run(s, PG_TX_SNAPSHOT, get_fn, &g, e);
}

/* The filter as SQL: " WHERE col = $1 AND ..." (or ""), with its values in bind order. */
struct where {
    char sql[2048];
    struct pg_params p;
};

static void where_cond(struct where *w, const char *cond)
{
    size_t len = strlen(w->sql);
    snprintf(w->sql + len, sizeof w->sql - len, "%s%s", len ? " AND " : " WHERE ", cond);
}

static void where_add(struct where *w, const char *col, const char *val)
{
    if (!val || w->p.n >= PG_MAX_PARAMS)
        return;
    char cond[96];
    snprintf(cond, sizeof cond, "%s = $%d::text", col, w->p.n + 1);
    where_cond(w, cond);
    pp_text(&w->p, val);
}

/* col = ANY($n) over a NULL-terminated list as one text[] literal (nothing when list is NULL). */
static void where_in(struct where *w, const char *col, const char *const *list, char **arr)
{
    if (!list || w->p.n >= PG_MAX_PARAMS)
        return;
    size_t cap = 3, len = 0;
    for (const char *const *q = list; *q; q++)
        cap += 2 * strlen(*q) + 4;
    char *lit = xmalloc(cap);
    lit[len++] = '{';
    for (const char *const *q = list; *q; q++) {
        if (q != list)
            lit[len++] = ',';
        lit[len++] = '"';
        for (const char *ch = *q; *ch; ch++) {
            if (*ch == '"' || *ch == '\\')
                lit[len++] = '\\';
            lit[len++] = *ch;
        }
        lit[len++] = '"';
    }
    lit[len++] = '}';
    lit[len] = '\0';
    *arr = lit;
    char cond[96];
    snprintf(cond, sizeof cond, "%s = ANY($%d::text[])", col, w->p.n + 1);
    where_cond(w, cond);
    pp_text(&w->p, lit);
}

/* arrs[0..1] receive the heap array literals the parameters point at; the caller frees them. */
static void where_build(const struct task_filter *f, struct where *w, char *arrs[2])
{
    memset(w, 0, sizeof *w);
    where_add(w, "product", f->product);
    where_add(w, "uin", f->uin);
    where_add(w, "instance_id", f->instance_id);
    where_add(w, "region", f->region);
    where_add(w, "id", f->id);
    where_add(w, "state", f->state >= 0 ? task_state_name((enum task_state)f->state) : NULL);
    if (f->state_mask) {
        const char *wanted[TASK_STATE_COUNT + 1];
        store_state_names(f->state_mask, wanted);
        where_in(w, "state", wanted, &arrs[0]);
    }
    where_in(w, "type", f->types, &arrs[1]);
    int64_t bounds[4] = {f->start_from_ms, f->start_to_ms, f->created_from_ms, f->created_to_ms};
    const char *conds[4] = {"start_ms >=", "start_ms <=", "created_ms >=", "created_ms <="};
    for (int i = 0; i < 4; i++) {
        if (!bounds[i] || w->p.n >= PG_MAX_PARAMS)
            continue;
        char cond[64];
        snprintf(cond, sizeof cond, "%s $%d::bigint", conds[i], w->p.n + 1);
        where_cond(w, cond);
        pp_int(&w->p, bounds[i]);
    }
}

struct list_ctx {
    const struct task_filter *f;
    const struct where *w;
    int64_t limit, offset, total;
    json_t **out;
};

/* The total and the page from one snapshot. */
static int list_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct list_ctx *l = ctx;
    char *sql = xasprintf("SELECT count(*) FROM tasks%s", l->w->sql);
    PGresult *r;
    int rc = pg_exec_sql(c, sql, &l->w->p, &r, "counting tasks", e);
    free(sql);
    if (rc != 0)
        return rc;
    l->total = pg_int(r, 0, 0);
    PQclear(r);
    const char *dir = l->f->oldest_first ? "ASC" : "DESC";
    sql = xasprintf("SELECT " STORE_TASK_COLS
                    ", job_id FROM tasks%s ORDER BY created_ms %s, job_id %s"
                    " LIMIT %lld OFFSET %lld",
                    l->w->sql, dir, dir, (long long)l->limit, (long long)l->offset);
    rc = pg_exec_sql(c, sql, &l->w->p, &r, "listing tasks", e);
    free(sql);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    int job_col = PQnfields(r) - 1;
    for (int row = 0; row < PQntuples(r); row++) {
        json_t *t = task_row_json(r, row);
        json_object_set_new(t, "job_id", json_integer(pg_int(r, row, job_col)));
        json_array_append_new(arr, t);
    }
    PQclear(r);
    *l->out = arr;
    return 0;
}

int store_pg_task_list_json(struct store *s, const struct task_filter *f, json_t **out,
                            int64_t *total, struct err *e)
{
    *out = NULL;
    if (f->state < -1 || f->state >= TASK_STATE_COUNT)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "state filter %d names no task state",
                       f->state);
    struct where w;
    char *arrs[2] = {NULL, NULL};
    where_build(f, &w, arrs);
    struct list_ctx l = {.f = f,
                         .w = &w,
                         .out = out,
                         .limit = f->limit > 0 ? f->limit : LIST_DEFAULT_LIMIT,
                         .offset = f->offset > 0 ? f->offset : 0};
    int rc = pg_run(s, PG_TX_SNAPSHOT, list_fn, &l, e);
    free(arrs[0]);
    free(arrs[1]);
    if (rc == 0 && total)
        *total = l.total;
    return rc;
}

static int counts_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    PGresult *r;
    int rc = pg_exec(c, PG_TASK_COUNTS, NULL, &r, "counting tasks", e);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    for (int row = 0; row < PQntuples(r); row++)
        json_array_append_new(
            arr, json_pack("{s:o, s:o, s:o, s:o}", "product", pg_json_text(r, row, 0), "state",
                           pg_json_text(r, row, 1), "count", pg_json_int(r, row, 2),
                           "oldest_created_ms", pg_json_int(r, row, 3)));
    PQclear(r);
    *(json_t **)ctx = arr;
    return 0;
}

int store_pg_task_counts(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    return pg_run(s, PG_TX_NONE, counts_fn, out, e);
}
