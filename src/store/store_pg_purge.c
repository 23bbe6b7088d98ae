/* The PostgreSQL store's retention batch (store_purge): finished tasks past the retention, with
 * their steps, events and process-group records, and expired idempotency keys. Every node runs
 * it: the rows a batch picks are locked with SKIP LOCKED, so two nodes purging at once take
 * different tasks instead of waiting for each other. One call every few seconds at most: the
 * statements are not prepared. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_pg_int.h"

/* The IN list matches the partial index tasks_finished word for word (migration 9). */
static const char pick_sql[] =
    "SELECT id FROM tasks WHERE state IN ('undoed', 'failed', 'success', 'killed', 'removed')"
    " AND end_ms < $1::bigint ORDER BY end_ms LIMIT $2::bigint FOR UPDATE SKIP LOCKED";

/* Steps, events and keys would go by their foreign keys' cascade too; step_pgroups has none. */
static const char *const delete_sql[] = {
    "DELETE FROM task_steps WHERE task_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
    "DELETE FROM task_events WHERE task_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
    "DELETE FROM step_pgroups WHERE task_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
    "DELETE FROM idempotency_keys WHERE task_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
    "DELETE FROM webhook_deliveries WHERE task_id IN (SELECT jsonb_array_elements_text($1::jsonb))",
    "DELETE FROM tasks WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))",
};

static const char keys_sql[] =
    "DELETE FROM idempotency_keys WHERE (scope, idem_key) IN (SELECT scope, idem_key"
    " FROM idempotency_keys WHERE created_ms < $1::bigint LIMIT $2::bigint"
    " FOR UPDATE SKIP LOCKED)";

struct purge_ctx {
    const struct purge_req *r;
    struct purge_result *out;
};

static int pick(struct pg_conn *c, struct purge_ctx *cx, struct err *e)
{
    struct pg_params p = {0};
    pp_int(&p, cx->r->tasks_before_ms);
    pp_int(&p, (int64_t)cx->r->max);
    PGresult *r;
    int rc = pg_exec_sql(c, pick_sql, &p, &r, "picking finished tasks to purge", e);
    if (rc != 0)
        return rc;
    int n = PQntuples(r);
    if (n > 0)
        cx->out->ids = xcalloc((size_t)n, sizeof *cx->out->ids);
    for (int row = 0; row < n; row++)
        pg_copy(cx->out->ids[row], STORE_ID_MAX, pg_str(r, row, 0));
    cx->out->n_tasks = (size_t)n;
    PQclear(r);
    return 0;
}

static int purge_tasks(struct pg_conn *c, const struct purge_result *out, struct err *e)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < out->n_tasks; i++)
        json_array_append_new(ids, json_string(out->ids[i]));
    char *text = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    int rc = 0;
    for (size_t i = 0; i < sizeof delete_sql / sizeof delete_sql[0] && rc == 0; i++) {
        struct pg_params p = {0};
        pp_text(&p, text);
        rc = pg_exec_sql(c, delete_sql[i], &p, NULL, "purging finished tasks", e);
    }
    free(text);
    return rc;
}

static int purge_keys(struct pg_conn *c, struct purge_ctx *cx, struct err *e)
{
    struct pg_params p = {0};
    pp_int(&p, cx->r->keys_before_ms);
    pp_int(&p, (int64_t)cx->r->max);
    PGresult *r;
    int rc = pg_exec_sql(c, keys_sql, &p, &r, "purging expired idempotency keys", e);
    if (rc == 0) {
        cx->out->n_keys = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    return rc;
}

/* Run again from scratch after a serialization failure: starts from an empty result. */
static int purge_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct purge_ctx *cx = ctx;
    free(cx->out->ids);
    memset(cx->out, 0, sizeof *cx->out);
    int rc = cx->r->tasks_before_ms > 0 ? pick(c, cx, e) : 0;
    if (rc == 0 && cx->out->n_tasks > 0)
        rc = purge_tasks(c, cx->out, e);
    if (rc == 0 && cx->r->keys_before_ms > 0)
        rc = purge_keys(c, cx, e);
    return rc;
}

int store_pg_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                   struct err *e)
{
    memset(out, 0, sizeof *out);
    struct purge_ctx cx = {r, out};
    int rc = pg_run(s, PG_TX_WRITE, purge_fn, &cx, e);
    if (rc != 0) {
        free(out->ids);
        memset(out, 0, sizeof *out);
    }
    return rc;
}
