/* The SQLite store's part of the webhooks' outbox: the deliveries an event enqueues, in the
 * transaction that appends it (sq_event_append). The rest of the webhooks is store_webhooks.c. */
#include "store/store_sqlite_int.h"

/* Every event runs this. CROSS JOIN keeps the subscriptions the outer loop (SQLite's planner
 * put the task's lookup by id first): with none, as on most stores, the statement ends at once
 * without reading the task's row. */
int sq_webhook_enqueue(struct sq_conn *c, const char *id, int64_t now, enum task_state to,
                       struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_WEBHOOK_ENQUEUE,
                     "INSERT INTO webhook_deliveries(webhook_id, task_id, seq, event, product, uin,"
                     " to_state, info, at_ms, next_ms, created_ms)"
                     " SELECT w.id, t.id, (SELECT MAX(seq) FROM task_events x WHERE x.task_id ="
                     " t.id), CASE WHEN ?3 THEN 'final' ELSE 'transition' END, t.product, t.uin,"
                     " ?4, t.info, ?2, ?2, ?2 FROM webhooks w CROSS JOIN tasks t"
                     " ON (w.product IS NULL OR w.product = t.product)"
                     " AND (w.uin IS NULL OR w.uin = t.uin)"
                     " WHERE t.id = ?1 AND (w.events = 'transition' OR ?3)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, task_state_is_final(to));
    sq_bind_text(st, 4, task_state_name(to));
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "enqueuing webhook deliveries");
    sq_done(st);
    return rc;
}
