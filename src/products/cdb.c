/* TencentDB for MySQL (cdb, 2017-03-20): status words, task ids and actions. */
#include "common/ids.h"
#include "products/async_actions.h"
#include "products/cdb_params.h"
#include "products/product.h"

static const char *const describe_params[] = {"AsyncRequestId", NULL};

/* {"Status": "SUCCESS", "Info": "..."}. The API documents Info as possibly null, but pollers such
 * as terraform-provider-tencentcloud read *Info without a nil check: it is "" when nothing was
 * said. */
static int cdb_describe_async_request_info(struct api_call *c, json_t *resp, struct err *e)
{
    const char *id;
    int rc = product_param_string(c, "AsyncRequestId", true, &id, e);
    if (rc)
        return rc;
    struct task_summary t;
    if ((rc = product_find_task(c, id, &t, e)))
        return rc;
    json_object_set_new(resp, "Status", json_string(product_status_word(c->product, t.state)));
    json_object_set_new(resp, "Info", json_string(t.has_info ? t.info : ""));
    return 0;
}

static const char *const describe_tasks_params[] = {"InstanceId", "AsyncRequestId", "TaskTypes",
                                                    "TaskStatus", "StartTimeBegin", "StartTimeEnd",
                                                    "Offset",     "Limit",          NULL};

static const char *const describe_accounts_params[] = {
    "InstanceId", "Offset", "Limit", "AccountRegexp", "SortBy", "OrderBy", "HostRegexp", NULL};

static const char *const describe_instance_params_params[] = {"InstanceId", NULL};
static const char *const describe_default_params_params[] = {"EngineVersion", "TemplateType",
                                                             "EngineType", NULL};

static const struct action cdb_actions[] = {
    {"DescribeAsyncRequestInfo", cdb_describe_async_request_info, describe_params, false, NULL},
    {"DescribeTasks", cdb_describe_tasks, describe_tasks_params, false, NULL},
    {"DescribeAccounts", cdb_describe_accounts, describe_accounts_params, true, NULL},
    {"DescribeInstanceParams", cdb_describe_instance_params, describe_instance_params_params, true,
     NULL},
    {"DescribeDefaultParams", cdb_describe_default_params, describe_default_params_params, false,
     NULL},
    {"DescribeDBInstances", cdb_describe_db_instances, NULL, false, "DescribeDBInstancesRequest"},
    {"CreateDBInstanceHour", cdb_create_db_instance_hour, NULL, false,
     "CreateDBInstanceHourRequest"},
    {NULL, NULL, NULL, false, NULL},
};

const struct product product_cdb = {
    .name = "cdb",
    .version = "2017-03-20",
    .status_words =
        {
            [TASK_INITIAL] = "INITIAL",
            [TASK_RUNNING] = "RUNNING",
            [TASK_PAUSED] = "PAUSED",
            [TASK_UNDOED] = "FAILED",
            [TASK_FAILED] = "FAILED",
            [TASK_SUCCESS] = "SUCCESS",
            [TASK_KILLED] = "KILLED",
            [TASK_REMOVED] = "REMOVED",
            [TASK_WAITING] = "UNDEFINED",
        },
    .id_shape_ok = ids_is_cdb_task,
    .id_shape_hint = "cdb ids look like f96e4f3c-8fc96c86-2ec79ac8-cb63a7a7",
    .err_task_not_found = ERR_CDB_INVALID_ASYNC_REQUEST_ID,
    .err_permission_denied = ERR_CDB_USER_HAS_NO_STRATEGY,
    .err_instance_not_found = ERR_INSTANCE_NOT_FOUND,
    .err_instance_status = ERR_CDB_INSTANCE_STATUS,
    .actions = cdb_actions,
    .flows_blocking = true, /* account actions check the accounts on the server first */
};
