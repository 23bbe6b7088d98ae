/* The PostgreSQL store's part of the webhooks' outbox: the deliveries an event enqueues, in the
 * transaction that appends it (pg_event_append), one prepared statement (PG_WEBHOOK_ENQUEUE).
 * The rest of the webhooks is store_webhooks.c. */
#include "store/store_pg_int.h"

int pg_webhook_enqueue(struct pg_conn *c, const char *id, int64_t now, enum task_state to,
                       struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    pp_int(&p, now);
    pp_bool(&p, task_state_is_final(to));
    pp_text(&p, task_state_name(to));
    return pg_exec(c, PG_WEBHOOK_ENQUEUE, &p, NULL, "enqueuing webhook deliveries", e);
}
