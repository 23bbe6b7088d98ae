/* TencentDB for MongoDB (mongodb, 2019-07-25): status words, task ids and actions. */
#include <string.h>

#include "common/ids.h"
#include "common/timefmt.h"
#include "products/async_actions.h"
#include "products/product.h"

static const char *const describe_params[] = {"AsyncRequestId", NULL};

/* "" until it happens: clients written against the documented fields dereference both times. */
static json_t *local_time_or_empty(int64_t ms)
{
    if (ms <= 0)
        return json_string("");
    char buf[20];
    time_fmt_local(ms, buf);
    return json_string(buf);
}

/* An unfinished task's instance must be in a status that allows operations (the API's
 * StatusAbnormal). A finished task answers how it ended whatever its instance became since:
 * IsolateDBInstance's own task must read success once the instance it isolated is isolated. */
static int check_instance_status(struct api_call *c, const struct task_summary *t, struct err *e)
{
    if (!t->instance_id[0] || task_state_is_final(t->state))
        return 0;
    struct instance in;
    struct err se;
    int rc = store_instance_get(c->store, "mongodb", t->instance_id, &in, &se);
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (rc)
        return err_set(e, ERR_INTERNAL, "reading instance %s: %s", t->instance_id, se.msg);
    if (strcmp(in.status, "running") != 0)
        return err_set(e, ERR_MONGO_STATUS_ABNORMAL,
                       "instance %s is %s; operations need a running instance", in.instance_id,
                       in.status);
    return 0;
}

/* {"Status": "success", "StartTime": "...", "EndTime": "..."}; times "" until they happen. */
static int mongodb_describe_async_request_info(struct api_call *c, json_t *resp, struct err *e)
{
    const char *id;
    int rc = product_param_string(c, "AsyncRequestId", true, &id, e);
    if (rc)
        return rc;
    struct task_summary t;
    if ((rc = product_find_task(c, id, &t, e)) || (rc = check_instance_status(c, &t, e)))
        return rc;
    json_object_set_new(resp, "Status", json_string(product_status_word(c->product, t.state)));
    json_object_set_new(resp, "StartTime", local_time_or_empty(t.start_ms));
    json_object_set_new(resp, "EndTime", local_time_or_empty(t.end_ms));
    return 0;
}

static const char *const backups_params[] = {"InstanceId", "BackupMethod", "Limit", "Offset", NULL};

static const struct action mongodb_actions[] = {
    {"DescribeAsyncRequestInfo", mongodb_describe_async_request_info, describe_params, false, NULL},
    {"DescribeDBBackups", mongodb_describe_db_backups, backups_params, false, NULL},
    {"DescribeDBInstances", mongodb_describe_db_instances, NULL, false,
     "DescribeDBInstancesRequest"},
    {"CreateDBInstanceHour", mongodb_create_db_instance_hour, NULL, false,
     "CreateDBInstanceHourRequest"},
    {NULL, NULL, NULL, false, NULL},
};

const struct product product_mongodb = {
    .name = "mongodb",
    .version = "2019-07-25",
    .status_words =
        {
            [TASK_INITIAL] = "initial",
            [TASK_RUNNING] = "running",
            [TASK_PAUSED] = "paused",
            [TASK_UNDOED] = "undoed",
            [TASK_FAILED] = "failed",
            [TASK_SUCCESS] = "success",
            [TASK_KILLED] = "failed",
            [TASK_REMOVED] = "failed",
            [TASK_WAITING] = "running",
        },
    .id_shape_ok = ids_is_mongodb_task,
    .id_shape_hint = "mongodb ids are decimal numbers such as 4762",
    .err_task_not_found = ERR_RESOURCE_NOT_FOUND,
    .err_permission_denied = ERR_MONGO_PERMISSION_DENIED,
    .err_instance_not_found = ERR_INSTANCE_NOT_FOUND,
    .err_instance_status = ERR_MONGO_STATUS_ABNORMAL,
    .actions = mongodb_actions,
};
