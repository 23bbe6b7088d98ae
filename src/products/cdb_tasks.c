/* cdb DescribeTasks (2017-03-20): the account's tasks with the API's filters, paging and enums. */
#include <stdio.h>
#include <string.h>

#include "common/timefmt.h"
#include "products/product.h"
#include "products/sdk_models.h"
#include "task/task_json.h"

/* TaskStatus codes of the API and the canonical states each covers. */
static const struct {
    int code;
    const char *word;
    unsigned states;
} statuses[] = {
    {0, "INITIAL", 1u << TASK_INITIAL}, {1, "RUNNING", 1u << TASK_RUNNING},
    {2, "SUCCEED", 1u << TASK_SUCCESS}, {3, "FAILED", (1u << TASK_FAILED) | (1u << TASK_UNDOED)},
    {4, "KILLED", 1u << TASK_KILLED},   {5, "REMOVED", 1u << TASK_REMOVED},
    {6, "PAUSED", 1u << TASK_PAUSED},   {7, "WAITING", 1u << TASK_WAITING},
};

/* TaskTypes codes of the API (DescribeTasksRequest documents 1..13, 4 unused), and the task types
 * (actions) that are of each kind. The async actions of no documented kind (OpenWanService, say)
 * are shown by their action name, as an operator's own task types are. */
static const struct {
    int code;
    const char *word;
    const char *const types[9];
} kinds[] = {
    {2,
     "SQL OPERATION",
     {"CreateAccounts", "DeleteAccounts", "ModifyAccountPassword", "ModifyAccountPrivileges",
      "ModifyAccountHost", "ModifyAccountDescription", "ModifyAccountMaxUserConnections",
      "VerifyRootAccount", NULL}},
    {3, "IMPORT DATA", {"CreateDBImportJob", NULL}},
    {5, "MODIFY PARAM", {"ModifyInstanceParam", NULL}},
    {7, "REBOOT", {"RestartDBInstances", NULL}},
    {8, "OPEN GTID", {"OpenDBInstanceGTID", NULL}},
    {10, "BATCH ROLLBACK", {"StartBatchRollback", NULL}},
    {11, "UPGRADE MASTER", {"UpgradeDBInstance", "UpgradeDBInstanceEngineVersion", NULL}},
    {12, "DROP TABLES", {"DropTables", NULL}},
    {13, "SWITCH DR TO MASTER", {"SwitchDrInstanceToMaster", NULL}},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *status_word(enum task_state s)
{
    for (size_t i = 0; i < N_OF(statuses); i++)
        if (statuses[i].states & (1u << s))
            return statuses[i].word;
    return "UNDEFINED";
}

static const char *kind_word(const char *type)
{
    for (size_t i = 0; i < N_OF(kinds); i++)
        for (const char *const *t = kinds[i].types; *t; t++)
            if (strcmp(*t, type) == 0)
                return kinds[i].word;
    return type; /* a type of the operator's own (admin API) is shown as it is */
}

static int status_mask(struct api_call *c, unsigned *mask, struct err *e)
{
    int64_t codes[16];
    size_t n;
    int rc = product_param_int_list(c, "TaskStatus", codes, 16, &n, e);
    for (size_t i = 0; !rc && i < n; i++) {
        size_t j = 0;
        while (j < N_OF(statuses) && statuses[j].code != codes[i])
            j++;
        if (j == N_OF(statuses) && codes[i] != -1)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "TaskStatus.%zu: %lld is not a task status (-1..7)", i,
                           (long long)codes[i]);
        *mask |= j < N_OF(statuses) ? statuses[j].states : 0;
    }
    if (!rc && n && !*mask) /* only UNDEFINED asked for: nothing is undefined */
        *mask = 1u << TASK_STATE_COUNT;
    return rc;
}

/* Fills types (NULL-terminated, at most cap-1) with the task types of the asked TaskTypes. */
static int type_list(struct api_call *c, const char **types, size_t cap, bool *given, struct err *e)
{
    int64_t codes[16];
    size_t n, k = 0;
    int rc = product_param_int_list(c, "TaskTypes", codes, 16, &n, e);
    *given = n > 0;
    for (size_t i = 0; !rc && i < n; i++) {
        if (codes[i] < 1 || codes[i] > 13)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "TaskTypes.%zu: %lld is not a task type (1..13)", i,
                           (long long)codes[i]);
        for (size_t j = 0; j < N_OF(kinds); j++)
            for (const char *const *t = kinds[j].types; kinds[j].code == codes[i] && *t; t++)
                if (k + 1 < cap)
                    types[k++] = *t;
    }
    types[k] = NULL;
    return rc;
}

static int time_param(struct api_call *c, const char *name, int64_t *ms, struct err *e)
{
    const char *s;
    int rc = product_param_string(c, name, false, &s, e);
    *ms = 0;
    if (rc || !s || !*s)
        return rc;
    if (time_parse_local(s, ms) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: expected a time such as 2026-11-23 12:00:00, got \"%.40s\"", name, s);
    return 0;
}

/* "" until it happens: pollers dereference every documented field. */
static json_t *local_time(int64_t ms)
{
    if (ms == TASK_MS_NONE || ms <= 0)
        return json_string("");
    char buf[20];
    time_fmt_local(ms, buf);
    return json_string(buf);
}

static int progress_of(const struct task *t)
{
    int64_t n = t->n_steps, cur = t->current_step;
    if (t->state == TASK_SUCCESS)
        return 100;
    if (n <= 0 || cur <= 0 || t->phase != PHASE_DO)
        return 0;
    return (int)(cur >= n ? 100 : cur * 100 / n);
}

static json_t *task_detail(const struct task *t)
{
    enum task_state st = t->state;
    bool failed = st == TASK_FAILED || st == TASK_UNDOED || st == TASK_KILLED;
    return json_pack("{s:i, s:o, s:I, s:i, s:s, s:s, s:o, s:o, s:o, s:s}", "Code", failed ? -1 : 0,
                     "Message", t->info ? task_json_text(t->info) : json_string(""), "JobId",
                     (json_int_t)t->job_id, "Progress", progress_of(t), "TaskStatus",
                     status_word(st), "TaskType", kind_word(t->type ? t->type : ""), "StartTime",
                     local_time(t->start_ms), "EndTime", local_time(t->end_ms), "InstanceIds",
                     t->instance_id ? json_pack("[o]", task_json_text(t->instance_id))
                                    : json_array(),
                     "AsyncRequestId", t->id);
}

static int read_filter(struct api_call *c, struct task_filter *f, const char **types, size_t cap,
                       struct err *e)
{
    bool types_given = false;
    int rc;
    if ((rc = product_param_string(c, "InstanceId", false, &f->instance_id, e)) ||
        (rc = product_param_string(c, "AsyncRequestId", false, &f->id, e)) ||
        (rc = status_mask(c, &f->state_mask, e)) ||
        (rc = type_list(c, types, cap, &types_given, e)) ||
        (rc = time_param(c, "StartTimeBegin", &f->start_from_ms, e)) ||
        (rc = time_param(c, "StartTimeEnd", &f->start_to_ms, e)) ||
        (rc = product_param_int(c, "Offset", 0, 0, INT32_MAX, &f->offset, e)) ||
        (rc = product_param_int(c, "Limit", 20, 1, 100, &f->limit, e)))
        return rc;
    f->types = types_given ? types : NULL;
    if (f->instance_id && !*f->instance_id)
        f->instance_id = NULL;
    if (f->id && !*f->id)
        f->id = NULL;
    return 0;
}

int cdb_describe_tasks(struct api_call *c, json_t *resp, struct err *e)
{
    const char *types[32];
    struct task_filter f = {
        .product = "cdb", .uin = c->who->owner_uin, .region = c->region, .state = -1};
    int rc = read_filter(c, &f, types, 32, e);
    if (rc)
        return rc;
    struct task_list list = {0};
    int64_t total = 0;
    struct err se;
    if (store_task_list(c->store, &f, &list, &total, &se) != 0)
        return err_set(e, ERR_INTERNAL, "listing tasks: %s", se.msg);
    json_t *items = json_array();
    const struct sdk_model *m = sdk_model_find("cdb", "TaskDetail");
    for (size_t i = 0; i < list.n; i++) {
        json_t *item = task_detail(list.items[i]);
        sdk_model_fill(m, item); /* TaskAttachInfo, and whatever a newer SDK documents */
        json_array_append_new(items, item);
    }
    task_list_clear(&list);
    json_object_set_new(resp, "TotalCount", json_integer(total));
    json_object_set_new(resp, "Items", items);
    return 0;
}
