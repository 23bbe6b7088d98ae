/* Admin API calls the web console (src/ui, docs/console.md) needs beyond the task and instance
 * calls: who the token is (so the page shows the verb buttons only to those who may use them),
 * and an overview of the whole store in one call instead of one list per state. */
#include <stdio.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/timefmt.h"

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
    json_t *list = NULL;
    int64_t total = 0;
    int rc = store_task_list_json(a->cfg.store, &f, &list, &total, e);
    if (rc)
        return rc;
    json_t *by = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        int64_t end = json_integer_value(json_object_get(t, "end_ms"));
        const char *product = json_string_value(json_object_get(t, "product"));
        if (!product || end <= 0 || end < now - 3600 * 1000LL)
            continue;
        const char *keys[] = {product, "all"};
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
    json_decref(list);
    return 0;
}

/* The task waiting longest to start (initial, oldest first), or null. */
static int oldest_queued(struct admin *a, int64_t now, json_t **out, struct err *e)
{
    struct task_filter f = {.state = TASK_INITIAL, .limit = 1, .oldest_first = true};
    json_t *list = NULL;
    int64_t total = 0;
    int rc = store_task_list_json(a->cfg.store, &f, &list, &total, e);
    if (rc)
        return rc;
    json_t *t = json_array_get(list, 0);
    if (!t) {
        *out = json_null();
    } else {
        int64_t created = json_integer_value(json_object_get(t, "created_ms"));
        *out = json_pack("{s:O, s:O, s:I, s:I, s:I}", "AsyncRequestId",
                         json_object_get(t, "AsyncRequestId"), "product",
                         json_object_get(t, "product"), "created_ms", (json_int_t)created, "age_ms",
                         (json_int_t)(now - created), "queued", (json_int_t)total);
    }
    json_decref(list);
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
