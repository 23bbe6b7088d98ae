/* The task list (a filtered page of task rows and the filter's total, from one snapshot) and the
 * task counts, once for both dialects (store_db.h). The list's WHERE holds only the conditions
 * asked for, built at run time with each dialect's placeholders (db_param), so that each query
 * keeps the index its conditions pick (tasks_uin, tasks_instance, tasks_state, ...): a fixed
 * "(?1 IS NULL OR col = ?1)" statement would hide them from the planner. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"
#include "store/store_plan.h"
#include "store/store_task_rows.h"

#define LIST_DEFAULT_LIMIT 100
/* The most values a filter binds: six equalities, two sets, four time bounds. */
#define WHERE_MAX_ARGS 12

/* The filter as SQL, " WHERE col = ?1 AND ..." (or ""), with its values in bind order. */
struct where {
    char sql[1024];
    size_t len;
    struct db_arg args[WHERE_MAX_ARGS];
    size_t n;
};

static void where_text(struct where *w, const char *cond)
{
    int len = snprintf(w->sql + w->len, sizeof w->sql - w->len, "%s%s",
                       w->len ? " AND " : " WHERE ", cond);
    assert(len > 0 && (size_t)len < sizeof w->sql - w->len); /* our own text, a few conditions */
    w->len += (size_t)len;
}

/* Adds "col op <value's placeholder>"; op is "" for a set (the placeholder says "IN ..."). */
static void where_cond(struct db_tx *t, struct where *w, const char *col, const char *op,
                       struct db_arg v)
{
    assert(w->n < WHERE_MAX_ARGS); /* at most one value a condition */
    char ph[64], cond[128];
    db_param(t, ph, sizeof ph, (int)w->n + 1, v.type);
    snprintf(cond, sizeof cond, "%s %s%s%s", col, op, *op ? " " : "", ph);
    where_text(w, cond);
    w->args[w->n++] = v;
}

/* col in the set; an empty set matches nothing, said as a constant that both planners see
 * through (an empty IN over an unindexed column is a scan of every row on SQLite). */
static void where_in(struct db_tx *t, struct where *w, const char *col, const char *const *set)
{
    if (!*set)
        where_text(w, "1 = 0");
    else
        where_cond(t, w, col, "", DB_TEXTS(set));
}

static void where_eq(struct db_tx *t, struct where *w, const char *col, const char *val)
{
    if (val)
        where_cond(t, w, col, "=", DB_TEXT(val));
}

static void where_bound(struct db_tx *t, struct where *w, const char *col, const char *op,
                        int64_t ms)
{
    if (ms) /* 0 = open */
        where_cond(t, w, col, op, DB_INT(ms));
}

/* states[] receives the mask's state names, which the set's value points at. */
static void where_build(struct db_tx *t, const struct task_filter *f,
                        const char *states[TASK_STATE_COUNT + 1], struct where *w)
{
    memset(w, 0, sizeof *w);
    where_eq(t, w, "product", f->product);
    where_eq(t, w, "uin", f->uin);
    where_eq(t, w, "instance_id", f->instance_id);
    where_eq(t, w, "region", f->region);
    where_eq(t, w, "id", f->id);
    where_eq(t, w, "state", f->state >= 0 ? task_state_name((enum task_state)f->state) : NULL);
    if (f->state_mask) { /* bits past the last state name none: an empty set */
        store_state_names(f->state_mask, states);
        where_in(t, w, "state", states);
    }
    if (f->types)
        where_in(t, w, "type", f->types);
    where_bound(t, w, "start_ms", ">=", f->start_from_ms);
    where_bound(t, w, "start_ms", "<=", f->start_to_ms);
    where_bound(t, w, "created_ms", ">=", f->created_from_ms);
    where_bound(t, w, "created_ms", "<=", f->created_to_ms);
}

struct list_op {
    const struct task_filter *f;
    int64_t limit, offset, total;
    struct task_list *out;
};

static int list_total(struct db_tx *t, const struct where *w, int64_t *total, struct err *e)
{
    const char *what = "counting tasks";
    char *sql = xasprintf("%s%s", db_sql(t, DB_TASK_LIST_TOTAL), w->sql);
    int rc = db_exec_sql(t, sql, w->args, w->n, what, e);
    free(sql);
    if (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        *total = db_int(t, 0);
        rc = 0;
    } else if (rc == 0) {
        rc = err_set(e, ERR_INTERNAL, "store: %s: no count", what);
    }
    return rc;
}

/* Newest first unless oldest_first; equal creation times in creation order (job_id: SQLite's
 * rowid, PostgreSQL's BIGSERIAL), so that pages neither repeat nor skip a task. */
static int list_page(struct db_tx *t, const struct where *w, const struct list_op *l, struct err *e)
{
    const char *what = "listing tasks", *dir = l->f->oldest_first ? "ASC" : "DESC";
    char *sql = xasprintf("%s%s ORDER BY created_ms %s, job_id %s LIMIT %lld OFFSET %lld",
                          db_sql(t, DB_TASK_LIST_PAGE), w->sql, dir, dir, (long long)l->limit,
                          (long long)l->offset);
    int rc = db_exec_sql(t, sql, w->args, w->n, what, e);
    free(sql);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        struct task *task = task_new();
        struct store_cols cols = store_cols_db(t, 0);
        store_task_from_cols(&cols, task);
        task->job_id = db_int(t, STORE_TASK_N_COLS);
        task->has_job_id = true;
        task_list_push(l->out, task);
        rc = 0;
    }
    return rc;
}

/* The total and the page in the caller's snapshot. */
static int list_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct list_op *l = ctx;
    task_list_clear(l->out); /* a retried transaction reads afresh */
    const char *states[TASK_STATE_COUNT + 1];
    struct where w;
    where_build(t, l->f, states, &w);
    int rc = list_total(t, &w, &l->total, e);
    return rc == 0 ? list_page(t, &w, l, e) : rc;
}

int store_db_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                       int64_t *total, struct err *e)
{
    memset(out, 0, sizeof *out);
    if (f->state < -1 || f->state >= TASK_STATE_COUNT)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "state filter %d names no task state",
                       f->state);
    struct list_op l = {.f = f,
                        .out = out,
                        .limit = f->limit > 0 ? f->limit : LIST_DEFAULT_LIMIT,
                        .offset = f->offset > 0 ? f->offset : 0};
    int rc = db_run(s, DB_SNAPSHOT, list_fn, &l, e);
    if (rc != 0)
        task_list_clear(out);
    else if (total)
        *total = l.total;
    return rc;
}

static int counts_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const char *what = "counting tasks";
    json_t **out = ctx;
    json_decref(*out); /* a retried statement reads afresh */
    *out = json_array();
    int rc = db_exec(t, DB_TASK_COUNTS, DB_NO_ARGS, what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        json_array_append_new(*out,
                              json_pack("{s:o, s:o, s:o, s:o}", "product", db_json_text(t, 0),
                                        "state", db_json_text(t, 1), "count", db_json_int(t, 2),
                                        "oldest_created_ms", db_json_int(t, 3)));
        rc = 0;
    }
    return rc;
}

int store_db_task_counts(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    int rc = db_run(s, DB_READ, counts_fn, out, e);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}
