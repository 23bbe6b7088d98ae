/* The SQLite store's retention batch (store_purge): finished tasks past the retention, with
 * their steps, events and process-group records, and expired idempotency keys. One call every
 * few seconds at most: the statements are prepared per call, not kept in a slot. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_sqlite_int.h"

/* The IN list matches the partial index tasks_finished word for word (migration 9), so the
 * pick is one index range in end order. INDEXED BY: without statistics the planner prefers
 * tasks_state (every finished task, then a sort; EXPLAIN QUERY PLAN on an empty store). */
static const char pick_sql[] = "SELECT id FROM tasks INDEXED BY tasks_finished WHERE state IN "
                               "('undoed', 'failed', 'success', 'killed', 'removed')"
                               " AND end_ms < ?1 ORDER BY end_ms LIMIT ?2";

/* Steps and events would go by their foreign keys' cascade too; saying so costs nothing and
 * does not depend on PRAGMA foreign_keys. step_pgroups has no foreign key. The ids come as one
 * JSON array. */
static const char *const delete_sql[] = {
    "DELETE FROM task_steps WHERE task_id IN (SELECT value FROM json_each(?1))",
    "DELETE FROM task_events WHERE task_id IN (SELECT value FROM json_each(?1))",
    "DELETE FROM step_pgroups WHERE task_id IN (SELECT value FROM json_each(?1))",
    "DELETE FROM idempotency_keys WHERE task_id IN (SELECT value FROM json_each(?1))",
    "DELETE FROM webhook_deliveries WHERE task_id IN (SELECT value FROM json_each(?1))",
    "DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?1))",
};

static int run(struct sq_conn *c, const char *sql, const char *text, int64_t a, int64_t b,
               int64_t *changes, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "purging finished tasks");
    if (text)
        sq_bind_text(st, 1, text);
    else
        sqlite3_bind_int64(st, 1, a);
    if (b >= 0)
        sqlite3_bind_int64(st, 2, b);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(c, e, "purging finished tasks");
    if (rc == 0 && changes)
        *changes = sqlite3_changes(c->db);
    sqlite3_finalize(st);
    return rc;
}

static int pick(struct sq_conn *c, const struct purge_req *r, struct purge_result *out,
                struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, pick_sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "picking finished tasks to purge");
    sqlite3_bind_int64(st, 1, r->tasks_before_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r->max);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        out->ids = xrealloc(out->ids, (out->n_tasks + 1) * sizeof *out->ids);
        sq_copy(out->ids[out->n_tasks++], STORE_ID_MAX, sqlite3_column_text(st, 0));
    }
    int rc = step == SQLITE_DONE ? 0 : sq_fail(c, e, "picking finished tasks to purge");
    sqlite3_finalize(st);
    return rc;
}

static int purge_tasks(struct sq_conn *c, const struct purge_result *out, struct err *e)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < out->n_tasks; i++)
        json_array_append_new(ids, json_string(out->ids[i]));
    char *text = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    int rc = 0;
    for (size_t i = 0; i < sizeof delete_sql / sizeof delete_sql[0] && rc == 0; i++)
        rc = run(c, delete_sql[i], text, 0, -1, NULL, e);
    free(text);
    return rc;
}

static int purge_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    const struct purge_req *r = inp;
    struct purge_result *out = outp;
    int rc = r->tasks_before_ms > 0 ? pick(c, r, out, e) : 0;
    if (rc == 0 && out->n_tasks > 0)
        rc = purge_tasks(c, out, e);
    if (rc == 0 && r->keys_before_ms > 0)
        rc = run(c,
                 "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys"
                 " WHERE created_ms < ?1 LIMIT ?2)",
                 NULL, r->keys_before_ms, (int64_t)r->max, &out->n_keys, e);
    return rc;
}

int store_sqlite_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                       struct err *e)
{
    memset(out, 0, sizeof *out);
    int rc = sq_write_tx(s, purge_tx, r, out, e);
    if (rc != 0) {
        free(out->ids);
        memset(out, 0, sizeof *out);
    }
    return rc;
}
