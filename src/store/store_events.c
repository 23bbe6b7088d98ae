/* A task's next event, once for both dialects (store_db.h): every state change appends one, in
 * the transaction that makes the change, and with it come what an event implies: the move to a
 * final state erases the step secrets (a final task runs no step again, so the tenant passwords
 * it carried must not stay behind), and every change of state enqueues its webhook deliveries
 * (the outbox row commits with the event it tells of, or neither does). */
#include <stdlib.h>

#include "common/xalloc.h"
#include "store/store_db.h"
#include "store/store_plan.h"

struct step_erased {
    int64_t idx;
    char *do_json, *undo_json; /* the action with its secrets erased; NULL: it had none */
};

/* The steps of the task that carry secrets, with those erased. */
static int steps_erased_read(struct db_tx *t, const char *id, struct step_erased **out, size_t *n,
                             struct err *e)
{
    const char *what = "reading the step secrets to erase";
    *out = NULL;
    *n = 0;
    int rc = db_exec(t, DB_STEPS_SECRETS_READ, DB_ARGS(DB_TEXT(id)), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        rc = 0;
        struct step_erased se = {db_int(t, 0), store_step_json_erased(db_text(t, 1)),
                                 store_step_json_erased(db_text(t, 2))};
        if (!se.do_json && !se.undo_json)
            continue;
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = se;
    }
    return rc;
}

/* Replaces the task's step secrets by "***"; the rows are read before any is written (one
 * statement is open at a time). */
static int steps_erase_secrets(struct db_tx *t, const char *id, struct err *e)
{
    struct step_erased *rows;
    size_t n;
    int rc = steps_erased_read(t, id, &rows, &n, e);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = db_exec(t, DB_STEPS_SECRETS_ERASE,
                         DB_ARGS(DB_TEXT(id), DB_INT(rows[i].idx), DB_TEXT(rows[i].do_json),
                                 DB_TEXT(rows[i].undo_json)),
                         "erasing step secrets", e);
        free(rows[i].do_json);
        free(rows[i].undo_json);
    }
    free(rows);
    return rc;
}

int db_event_append(struct db_tx *t, const char *id, int64_t now, int from, enum task_state to,
                    const char *node, const char *message, struct err *e)
{
    const char *from_word = from < 0 ? NULL : task_state_name((enum task_state)from);
    int rc =
        db_exec(t, DB_EVENT_INSERT,
                DB_ARGS(DB_TEXT(id), DB_INT(now), DB_TEXT(from_word), DB_TEXT(task_state_name(to)),
                        DB_TEXT(node ? node : ""), DB_TEXT(message)),
                "appending a task event", e);
    if (rc == 0 && task_state_is_final(to))
        rc = steps_erase_secrets(t, id, e);
    if (rc == 0 && (from < 0 || (enum task_state)from != to))
        rc = db_exec(t, DB_WEBHOOK_ENQUEUE,
                     DB_ARGS(DB_TEXT(id), DB_INT(now), DB_INT(task_state_is_final(to)),
                             DB_TEXT(task_state_name(to))),
                     "enqueuing webhook deliveries", e);
    return rc;
}
