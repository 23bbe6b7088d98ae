/* Admin API calls the web console (src/ui, docs/console.md) needs beyond the task and instance
 * calls: who the token is (so the page shows the verb buttons only to those who may use them),
 * and an overview of the whole store in one call instead of one list per state. */
#include <stdio.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/timefmt.h"
#include "task/task_json.h"

/* Finished tasks are sought among those that started within this window, at most this many:
 * enough for a per-minute and per-hour figure without reading the whole history. */
#define FINISHED_WINDOW_MS (24 * 3600 * 1000LL)
#define FINISHED_SAMPLE    1000

int admin_whoami(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)a, (void)status, (void)e;
    unsigned bit = admin_scope_bit(r->who->scope);
    *out = json_pack("{s:s, s:s, s:s, s:b}", "id", r->who->id, "name", r->who->name, "scope",
                     r->who->scope, "may_act", (bit & (SCOPE_ADMIN | SCOPE_OPERATOR)) != 0);
    return 0;
}

static unsigned final_states_mask(void)
{
    unsigned m = 0;
    for (int s = 0; s < TASK_STATE_COUNT; s++)
        if (task_state_is_final((enum task_state)s))
            m |= 1u << s;
    return m;
}

/* {"minute": N, "hour": N} per product and "all", counted from the tasks' end times. */
static int finished_counts(struct admin *a, int64_t now, json_t **out, struct err *e)
{
    struct task_filter f = {.state = -1,
                            .state_mask = final_states_mask(),
                            .start_from_ms = now - FINISHED_WINDOW_MS,
                            .limit = FINISHED_SAMPLE};
    struct task_list list = {0};
    int64_t total = 0;
    int rc = store_task_list(a->cfg.store, &f, &list, &total, e);
    if (rc)
        return rc;
    json_t *by = json_object();
    for (size_t i = 0; i < list.n; i++) {
        const struct task *t = list.items[i];
        int64_t end = t->end_ms == TASK_MS_NONE ? 0 : t->end_ms;
        if (!t->product || end <= 0 || end < now - 3600 * 1000LL)
            continue;
        const char *keys[] = {t->product, "all"};
        for (int k = 0; k < 2; k++) {
            json_t *c = json_object_get(by, keys[k]);
            if (!c)
                json_object_set_new(
                    by, keys[k],
                    c = json_pack("{s:I, s:I}", "minute", (json_int_t)0, "hour", (json_int_t)0));
            json_object_set_new(c, "hour",
                                json_integer(json_integer_value(json_object_get(c, "hour")) + 1));
            if (end >= now - 60 * 1000LL)
                json_object_set_new(
                    c, "minute",
                    json_integer(json_integer_value(json_object_get(c, "minute")) + 1));
        }
    }
    *out = json_pack("{s:o, s:b}", "by_product", by, "sampled", total > FINISHED_SAMPLE);
    task_list_clear(&list);
    return 0;
}

/* The task waiting longest to start (initial, oldest first), or null. */
static int oldest_queued(struct admin *a, int64_t now, json_t **out, struct err *e)
{
    struct task_filter f = {.state = TASK_INITIAL, .limit = 1, .oldest_first = true};
    struct task_list list = {0};
    int64_t total = 0;
    int rc = store_task_list(a->cfg.store, &f, &list, &total, e);
    if (rc)
        return rc;
    const struct task *t = list.n ? list.items[0] : NULL;
    if (!t) {
        *out = json_null();
    } else {
        *out = json_pack("{s:s, s:o, s:I, s:I, s:I}", "AsyncRequestId", t->id, "product",
                         task_json_text(t->product), "created_ms", (json_int_t)t->created_ms,
                         "age_ms", (json_int_t)(now - t->created_ms), "queued", (json_int_t)total);
    }
    task_list_clear(&list);
    return 0;
}

int admin_overview(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)r, (void)status;
    int64_t now = time_now_ms();
    json_t *counts = NULL, *finished = NULL, *oldest = NULL;
    int rc = store_task_counts(a->cfg.store, &counts, e);
    if (!rc)
        rc = finished_counts(a, now, &finished, e);
    if (!rc)
        rc = oldest_queued(a, now, &oldest, e);
    if (rc) {
        json_decref(counts);
        json_decref(finished);
        return rc;
    }
    *out = json_pack("{s:I, s:o, s:o, s:o}", "now_ms", (json_int_t)now, "counts", counts,
                     "finished", finished, "oldest_queued", oldest);
    return 0;
}
