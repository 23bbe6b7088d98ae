/* mongodb DescribeDBBackups (2019-07-25): the instance's finished backups, from the
 * CreateBackupDBInstance tasks that succeeded and the output their last step reported. */
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "products/product.h"
#include "task/task_json.h"

#define BACKUPS_SCAN_MAX 1000

static json_t *local_time_or_empty(int64_t ms)
{
    char buf[20];
    if (ms == TASK_MS_NONE || ms <= 0)
        return json_string("");
    time_fmt_local(ms, buf);
    return json_string(buf);
}

/* One BackupInfo from a finished backup task (read again with its steps, for its last step's
 * output). */
static json_t *backup_info(struct api_call *c, const struct task *listed)
{
    const char *id = listed->id;
    struct task *t = NULL;
    struct err e;
    if (store_task_get(c->store, id, TASK_READ_STEPS, &t, &e) != 0)
        return NULL;
    const struct task_step *last = task_step_at(t, t->n_steps - 1);
    json_t *out = last ? last->output : NULL;
    const char *remark = json_string_value(json_object_get(t->input, "BackupRemark"));
    const char *name = json_string_value(json_object_get(out, "BackupName"));
    json_t *info = json_pack(
        "{s:o, s:i, s:s, s:s, s:I, s:o, s:o, s:i, s:I, s:I, s:s, s:o, s:s}", "InstanceId",
        task_json_text(t->instance_id), "BackupType", 1, "BackupName", name ? name : id,
        "BackupDesc", remark ? remark : "", "BackupSize",
        (json_int_t)json_integer_value(json_object_get(out, "BackupSize")), "StartTime",
        local_time_or_empty(t->start_ms), "EndTime", local_time_or_empty(t->end_ms), "Status", 2,
        "BackupMethod", (json_int_t)json_integer_value(json_object_get(t->input, "BackupMethod")),
        "BackId", (json_int_t)strtoll(id, NULL, 10), "DeleteTime", "", "BackupRegion",
        task_json_text(t->region), "RestoreTime", "");
    task_free(t);
    return info;
}

static bool method_matches(const struct task *t, int64_t method)
{
    json_t *m = json_object_get(t->input, "BackupMethod");
    return method < 0 || (json_is_integer(m) && json_integer_value(m) == method);
}

int mongodb_describe_db_backups(struct api_call *c, json_t *resp, struct err *e)
{
    const char *instance_id;
    int64_t method, limit, offset;
    int rc;
    if ((rc = product_param_string(c, "InstanceId", true, &instance_id, e)) ||
        (rc = product_param_int(c, "BackupMethod", -1, 0, 3, &method, e)) ||
        (rc = product_param_int(c, "Limit", 20, 1, 100, &limit, e)) ||
        (rc = product_param_int(c, "Offset", 0, 0, INT32_MAX, &offset, e)))
        return rc;
    struct instance in;
    rc = product_find_instance(c, instance_id, &in, e);
    if (rc && rc != c->product->err_instance_status) /* listing works whatever the status */
        return rc;
    static const char *const types[] = {"CreateBackupDBInstance", NULL};
    struct task_filter f = {.product = "mongodb",
                            .uin = c->who->owner_uin,
                            .region = c->region,
                            .instance_id = instance_id,
                            .state = TASK_SUCCESS,
                            .types = types,
                            .limit = BACKUPS_SCAN_MAX};
    struct task_list list = {0};
    json_t *backups = json_array();
    int64_t total = 0, seen = 0;
    struct err se;
    if (store_task_list(c->store, &f, &list, &total, &se) != 0) {
        json_decref(backups);
        return err_set(e, ERR_INTERNAL, "listing backups: %s", se.msg);
    }
    for (size_t i = 0; i < list.n; i++) {
        if (!method_matches(list.items[i], method))
            continue;
        if (seen++ < offset || (int64_t)json_array_size(backups) >= limit)
            continue;
        json_t *info = backup_info(c, list.items[i]);
        if (info)
            json_array_append_new(backups, info);
    }
    task_list_clear(&list);
    json_object_set_new(resp, "BackupList", backups);
    json_object_set_new(resp, "TotalCount", json_integer(seen));
    return 0;
}
