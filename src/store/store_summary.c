/* A task's summary (store.h: task_summary), once for both dialects (store_db.h): the row the
 * Tencent APIs answer DescribeAsyncRequestInfo from, without its steps and events. */
#include <string.h>

#include "store/store.h"
#include "store/store_check.h"
#include "store/store_db.h"

struct summary_op {
    const char *product, *id;
    struct task_summary *out;
};

static int summary_fill(struct db_tx *t, struct task_summary *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    db_copy(t, 0, out->id, sizeof out->id);
    db_copy(t, 1, out->product, sizeof out->product);
    db_copy(t, 2, out->region, sizeof out->region);
    db_copy(t, 3, out->uin, sizeof out->uin);
    db_copy(t, 4, out->instance_id, sizeof out->instance_id);
    const char *state = db_text(t, 5);
    if (!state || task_state_parse(state, &out->state) != 0)
        return err_set(e, ERR_INTERNAL, "store: task %s has an unknown state \"%s\"", out->id,
                       state ? state : "(null)");
    const char *info = db_text(t, 6);
    out->has_info = info != NULL;
    store_copy_utf8(out->info, sizeof out->info, info ? info : "");
    out->created_ms = db_int(t, 7);
    out->start_ms = db_int(t, 8); /* NULL reads as 0 = not yet */
    out->end_ms = db_int(t, 9);
    out->lease_no = db_int(t, 10);
    out->simulated = db_int(t, 11) != 0;
    return 0;
}

static int summary_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct summary_op *op = ctx;
    const char *what = "reading a task";
    int rc =
        db_exec_row(t, DB_TASK_SUMMARY, DB_ARGS(DB_TEXT(op->id), DB_TEXT(op->product)), what, e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "no %s task %s", op->product, op->id);
    return rc == 1 ? summary_fill(t, op->out, e) : rc;
}

int store_db_task_summary(struct store *s, const char *product, const char *id,
                          struct task_summary *out, struct err *e)
{
    struct summary_op op = {product, id, out};
    return db_run(s, DB_READ, summary_fn, &op, e);
}
