/* The PostgreSQL store's task reads: filtered and paged lists of task rows, counts (one task is
 * read by store_task_get.c, for both dialects). The rows become structs as store_sqlite_query.c's
 * do (store_task_rows.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_plan.h"
#include "store/store_pg_int.h"
#include "store/store_task_rows.h"

#define LIST_DEFAULT_LIMIT 100

static const char *col_text(const struct store_cols *c, int col)
{
    return pg_str((const PGresult *)c->res, c->row, c->base + col);
}
static bool col_is_null(const struct store_cols *c, int col)
{
    return PQgetisnull((const PGresult *)c->res, c->row, c->base + col);
}
static int64_t col_int(const struct store_cols *c, int col)
{
    return pg_int((const PGresult *)c->res, c->row, c->base + col);
}
static struct store_cols cols_of(const PGresult *r, int row)
{
    return (struct store_cols){
        .res = r, .row = row, .text = col_text, .is_null = col_is_null, .integer = col_int};
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
    struct task_list *out;
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
    task_list_clear(l->out); /* a retried transaction reads afresh */
    int job_col = PQnfields(r) - 1;
    for (int row = 0; row < PQntuples(r); row++) {
        struct task *t = task_new();
        struct store_cols cols = cols_of(r, row);
        store_task_from_cols(&cols, t);
        t->job_id = pg_int(r, row, job_col);
        t->has_job_id = true;
        task_list_push(l->out, t);
    }
    PQclear(r);
    return 0;
}

int store_pg_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                       int64_t *total, struct err *e)
{
    memset(out, 0, sizeof *out);
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
    if (rc != 0)
        task_list_clear(out);
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
