/* The SQLite store's task reads for the admin API: one task as JSON, and filtered, paged lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

#define LIST_DEFAULT_LIMIT 100

static json_t *col_json_value(sqlite3_stmt *st, int col);

/* The task object of docs/admin-api.md without steps, events and the formatted time fields. */
static json_t *task_row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int col = 0;
    for (size_t i = 0; i < STORE_TASK_N_TEXT; i++)
        json_object_set_new(o, store_task_text_fields[i], sq_col_json_text(st, col++));
    for (size_t i = 0; i < STORE_TASK_N_INT; i++)
        json_object_set_new(o, store_task_int_fields[i], sq_col_json_int(st, col++));
    json_object_set_new(o, "input", col_json_value(st, col++));
    return o;
}

/* A stored JSON text column as a value; null when NULL (or, never expected, unparsable). */
static json_t *col_json_value(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *step_row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "index", sq_col_json_int(st, 0));
    json_object_set_new(o, "name", sq_col_json_text(st, 1));
    json_object_set_new(o, "do", col_json_value(st, 2));
    json_object_set_new(o, "undo", col_json_value(st, 3));
    json_object_set_new(o, "retries", sq_col_json_int(st, 4));
    json_object_set_new(o, "timeout_s", sq_col_json_int(st, 5));
    json_object_set_new(o, "state", sq_col_json_text(st, 6));
    json_object_set_new(o, "message", sq_col_json_text(st, 7));
    json_object_set_new(o, "output", col_json_value(st, 8));
    return o;
}

static json_t *event_row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", sq_col_json_int(st, 0));
    json_object_set_new(o, "at_ms", sq_col_json_int(st, 1));
    json_object_set_new(o, "from", sq_col_json_text(st, 2));
    json_object_set_new(o, "to", sq_col_json_text(st, 3));
    json_object_set_new(o, "node", sq_col_json_text(st, 4));
    json_object_set_new(o, "message", sq_col_json_text(st, 5));
    return o;
}

/* Runs the cached statement (bound to id) and collects every row through row_json. */
static int rows_json(struct sq_conn *c, enum sq_slot slot, const char *sql, const char *id,
                     json_t *(*row_json)(sqlite3_stmt *), json_t **out, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot, sql, &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    json_t *arr = json_array();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row_json(st));
    if (step != SQLITE_DONE) {
        json_decref(arr);
        rc = sq_fail(c, e, "reading a task");
    } else {
        *out = arr;
    }
    sq_done(st);
    return rc;
}

/* Reads the task, its steps and events in the caller's read transaction (one snapshot). */
static int task_json_tx(struct sq_conn *c, const char *id, json_t **out, struct err *e)
{
    json_t *task = NULL, *steps = NULL, *events = NULL;
    int rc = rows_json(c, SQ_TASK_ROW, "SELECT " STORE_TASK_COLS " FROM tasks WHERE id = ?1", id,
                       task_row_json, &task, e);
    if (rc == 0 && json_array_size(task) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no task %s", id);
    if (rc == 0)
        rc = rows_json(c, SQ_TASK_STEPS,
                       "SELECT idx, name, do_json, undo_json, retries,"
                       " timeout_s, state, message, output FROM task_steps WHERE task_id = ?1"
                       " ORDER BY idx",
                       id, step_row_json, &steps, e);
    if (rc == 0) /* the step secrets are sealed at rest (store_plan.h) */
        rc = store_steps_open(steps, e);
    if (rc == 0)
        rc = rows_json(c, SQ_TASK_EVENTS,
                       "SELECT seq, at_ms, from_state, to_state, node,"
                       " message FROM task_events WHERE task_id = ?1 ORDER BY seq",
                       id, event_row_json, &events, e);
    if (rc == 0) {
        *out = json_incref(json_array_get(task, 0));
        json_object_set_new(*out, "steps", steps);
        json_object_set_new(*out, "events", events);
        steps = events = NULL;
    }
    json_decref(task);
    json_decref(steps);
    json_decref(events);
    return rc;
}

int store_sqlite_task_get_json(struct store *s, const char *id, json_t **out, struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    int rc = sq_begin_read(c, e);
    if (rc == 0)
        rc = task_json_tx(c, id, out, e);
    sq_rollback(c); /* ends the read transaction; nothing was written */
    sq_release(c);
    return rc;
}

/* The filter as SQL: " WHERE col = ?1 AND ..." (or ""), with its values in bind order. */
#define WHERE_MAX_VALS 48

struct where {
    char sql[2048];
    const char *vals[WHERE_MAX_VALS];
    int n;
    int64_t ints[4]; /* start- and creation-time bounds, bound after the text values */
    int n_ints;
    const char *ints_sql[4];
};

static void where_cond(struct where *w, const char *cond)
{
    size_t len = strlen(w->sql);
    snprintf(w->sql + len, sizeof w->sql - len, "%s%s", len ? " AND " : " WHERE ", cond);
}

static void where_add(struct where *w, const char *col, const char *val)
{
    if (!val || w->n >= WHERE_MAX_VALS)
        return;
    char cond[96];
    snprintf(cond, sizeof cond, "%s = ?%d", col, w->n + 1);
    where_cond(w, cond);
    w->vals[w->n++] = val;
}

/* col IN (?a, ?b, ...) over a NULL-terminated list (nothing when the list is NULL). */
static void where_in(struct where *w, const char *col, const char *const *list)
{
    if (!list)
        return;
    char cond[1024];
    int len = snprintf(cond, sizeof cond, "%s IN (", col);
    int first = w->n;
    for (const char *const *p = list; *p && w->n < WHERE_MAX_VALS - 2; p++) {
        len += snprintf(cond + len, sizeof cond - (size_t)len, "%s?%d", w->n > first ? ", " : "",
                        w->n + 1);
        w->vals[w->n++] = *p;
    }
    if (w->n == first) /* an empty list matches nothing */
        snprintf(cond, sizeof cond, "0");
    else
        snprintf(cond + len, sizeof cond - (size_t)len, ")");
    where_cond(w, cond);
}

static void where_build(const struct task_filter *f, struct where *w)
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
        where_in(w, "state", wanted); /* the names are static strings; the array is not kept */
    }
    where_in(w, "type", f->types);
    if (f->start_from_ms)
        w->ints_sql[w->n_ints] = "start_ms >= ", w->ints[w->n_ints++] = f->start_from_ms;
    if (f->start_to_ms)
        w->ints_sql[w->n_ints] = "start_ms <= ", w->ints[w->n_ints++] = f->start_to_ms;
    if (f->created_from_ms)
        w->ints_sql[w->n_ints] = "created_ms >= ", w->ints[w->n_ints++] = f->created_from_ms;
    if (f->created_to_ms)
        w->ints_sql[w->n_ints] = "created_ms <= ", w->ints[w->n_ints++] = f->created_to_ms;
    for (int i = 0; i < w->n_ints; i++) {
        char cond[64];
        snprintf(cond, sizeof cond, "%s?%d", w->ints_sql[i], w->n + i + 1);
        where_cond(w, cond);
    }
}

/* Prepares sql (a list query, not cached: its shape follows the filter) and binds w. */
static int list_prepare(struct sq_conn *c, const char *sql, const struct where *w,
                        sqlite3_stmt **st, struct err *e)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "preparing a task list query");
    for (int i = 0; i < w->n; i++)
        sq_bind_text(*st, i + 1, w->vals[i]);
    for (int i = 0; i < w->n_ints; i++)
        sqlite3_bind_int64(*st, w->n + i + 1, w->ints[i]);
    return 0;
}

static int list_total(struct sq_conn *c, const struct where *w, int64_t *total, struct err *e)
{
    char *sql = xasprintf("SELECT count(*) FROM tasks%s", w->sql);
    sqlite3_stmt *st = NULL;
    int rc = list_prepare(c, sql, w, &st, e);
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *total = sqlite3_column_int64(st, 0);
        else
            rc = sq_fail(c, e, "counting tasks");
    }
    sqlite3_finalize(st);
    free(sql);
    return rc;
}

static int list_page(struct sq_conn *c, const struct where *w, int64_t limit, int64_t offset,
                     bool oldest_first, json_t **out, struct err *e)
{
    char *sql =
        xasprintf("SELECT " STORE_TASK_COLS ", rowid FROM tasks%s ORDER BY created_ms %s, rowid %s"
                  " LIMIT %lld OFFSET %lld",
                  w->sql, oldest_first ? "ASC" : "DESC", oldest_first ? "ASC" : "DESC",
                  (long long)limit, (long long)offset);
    sqlite3_stmt *st = NULL;
    int rc = list_prepare(c, sql, w, &st, e);
    if (rc == 0) {
        json_t *arr = json_array();
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *t = task_row_json(st);
            json_object_set_new(
                t, "job_id", json_integer(sqlite3_column_int64(st, sqlite3_column_count(st) - 1)));
            json_array_append_new(arr, t);
        }
        if (step == SQLITE_DONE) {
            *out = arr;
        } else {
            json_decref(arr);
            rc = sq_fail(c, e, "listing tasks");
        }
    }
    sqlite3_finalize(st);
    free(sql);
    return rc;
}

int store_sqlite_task_list_json(struct store *s, const struct task_filter *f, json_t **out,
                                int64_t *total, struct err *e)
{
    *out = NULL;
    if (f->state < -1 || f->state >= TASK_STATE_COUNT)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "state filter %d names no task state",
                       f->state);
    struct where w;
    where_build(f, &w);
    int64_t limit = f->limit > 0 ? f->limit : LIST_DEFAULT_LIMIT;
    int64_t offset = f->offset > 0 ? f->offset : 0;
    int64_t count = 0;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    int rc = sq_begin_read(c, e); /* the page and the total from one snapshot */
    if (rc == 0)
        rc = list_total(c, &w, &count, e);
    if (rc == 0)
        rc = list_page(c, &w, limit, offset, f->oldest_first, out, e);
    sq_rollback(c);
    sq_release(c);
    if (rc == 0 && total)
        *total = count;
    return rc;
}

int store_sqlite_task_counts(struct store *s, json_t **out, struct err *e)
{
    *out = json_array();
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT product, state, COUNT(*), MIN(created_ms) FROM tasks"
                           " GROUP BY product, state ORDER BY product, state",
                           -1, &st, NULL) != SQLITE_OK)
        rc = sq_fail(c, e, "preparing the task counts");
    int r;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(
            *out, json_pack("{s:o, s:o, s:o, s:o}", "product", sq_col_json_text(st, 0), "state",
                            sq_col_json_text(st, 1), "count", sq_col_json_int(st, 2),
                            "oldest_created_ms", sq_col_json_int(st, 3)));
    if (rc == 0 && r != SQLITE_DONE)
        rc = sq_fail(c, e, "counting tasks");
    sqlite3_finalize(st);
    sq_release(c);
    if (rc) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}
