/* The retention batch (store_purge), once for both dialects: finished tasks past the retention,
 * with their steps, events, process-group records, keys and deliveries, and expired idempotency
 * keys. On PostgreSQL every node runs it; the pick locks its rows with SKIP LOCKED (the dialect's
 * SQL, store_pg_sql.c), so two nodes purging at once take different tasks. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"

/* Every row of the purged tasks (store_db_sql.h says why each table is named). */
static const enum db_stmt delete_by_ids[] = {
    DB_PURGE_STEPS,   DB_PURGE_EVENTS,     DB_PURGE_PGROUPS,
    DB_PURGE_KEYS_OF, DB_PURGE_DELIVERIES, DB_PURGE_TASKS,
};

struct purge_ctx {
    const struct purge_req *r;
    struct purge_result *out;
};

static int pick(struct db_tx *t, const struct purge_req *r, struct purge_result *out, struct err *e)
{
    const char *what = "picking finished tasks to purge";
    int rc =
        db_exec(t, DB_PURGE_PICK, DB_ARGS(DB_INT(r->tasks_before_ms), DB_INT(r->max)), what, e);
    size_t cap = 0;
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        if (out->n_tasks == cap) {
            cap = cap ? cap * 2 : 16;
            out->ids = xrealloc(out->ids, cap * sizeof *out->ids);
        }
        db_copy(t, 0, out->ids[out->n_tasks++], STORE_ID_MAX);
        rc = 0;
    }
    return rc;
}

/* The ids as one JSON array: each dialect's statements take the list as one parameter. */
static char *ids_json(const struct purge_result *out)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < out->n_tasks; i++)
        json_array_append_new(ids, json_string(out->ids[i]));
    char *text = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    return text;
}

static int purge_tasks(struct db_tx *t, const struct purge_result *out, struct err *e)
{
    char *text = ids_json(out);
    int rc = 0;
    for (size_t i = 0; i < sizeof delete_by_ids / sizeof delete_by_ids[0] && rc == 0; i++)
        rc = db_exec(t, delete_by_ids[i], DB_ARGS(DB_TEXT(text)), "purging finished tasks", e);
    free(text);
    return rc;
}

/* Starts from an empty result: PostgreSQL runs it again after a serialization failure. */
static int purge_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct purge_ctx *cx = ctx;
    const struct purge_req *r = cx->r;
    free(cx->out->ids);
    memset(cx->out, 0, sizeof *cx->out);
    int rc = r->tasks_before_ms > 0 ? pick(t, r, cx->out, e) : 0;
    if (rc == 0 && cx->out->n_tasks > 0)
        rc = purge_tasks(t, cx->out, e);
    if (rc == 0 && r->keys_before_ms > 0) {
        rc = db_exec(t, DB_PURGE_KEYS_BEFORE, DB_ARGS(DB_INT(r->keys_before_ms), DB_INT(r->max)),
                     "purging expired idempotency keys", e);
        cx->out->n_keys = rc == 0 ? db_changes(t) : 0;
    }
    return rc;
}

int store_db_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                   struct err *e)
{
    memset(out, 0, sizeof *out);
    struct purge_ctx cx = {r, out};
    int rc = db_run(s, DB_WRITE, purge_fn, &cx, e);
    if (rc != 0) {
        free(out->ids);
        memset(out, 0, sizeof *out);
    }
    return rc;
}
