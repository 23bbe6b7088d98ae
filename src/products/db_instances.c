/* DescribeDBInstances of both products, over the instances registered for the caller's account in
 * the request's region: clients poll it beside their tasks (an instance busy with an operation,
 * then running again). Every field the SDK's models document is in the answer (sdk_models.h);
 * what asyncd cannot know is empty (""/0). An offline instance is gone, as on Tencent Cloud. */
#include <stdlib.h>
#include <string.h>

#include "products/product.h"
#include "products/sdk_models.h"

#define MAX_IDS 100

struct listed {
    json_t *rows; /* the admin API's instance objects, filtered; owned */
};

/* The InstanceIds filter; *n = 0 when absent. */
static int wanted_ids(struct api_call *c, const char *ids[], size_t *n, struct err *e)
{
    json_t *v = json_object_get(c->params, "InstanceIds");
    *n = 0;
    if (!v)
        return 0;
    if (json_array_size(v) > MAX_IDS)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "InstanceIds: at most %d items", MAX_IDS);
    size_t i;
    json_t *id;
    json_array_foreach(v, i, id) ids[(*n)++] = json_string_value(id); /* kinds checked already */
    return 0;
}

static bool id_listed(const char *id, const char *ids[], size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (ids[i] && strcmp(ids[i], id) == 0)
            return true;
    return false;
}

/* The caller's instances of this product in the request's region, named by InstanceIds if set. */
static int list_own(struct api_call *c, struct listed *out, struct err *e)
{
    const char *ids[MAX_IDS];
    size_t n_ids;
    int rc = wanted_ids(c, ids, &n_ids, e);
    if (rc)
        return rc;
    json_t *all;
    struct err se;
    if (store_instance_list(c->store, c->product->name, c->who->owner_uin, &all, &se) != 0)
        return err_set(e, ERR_INTERNAL, "listing instances: %s", se.msg);
    out->rows = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(all, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "instance_id"));
        const char *region = json_string_value(json_object_get(row, "region"));
        const char *status = json_string_value(json_object_get(row, "status"));
        if (id && region && strcmp(region, c->region) == 0 && id_listed(id, ids, n_ids) &&
            !(status && strcmp(status, "offline") == 0))
            json_array_append(out->rows, row);
    }
    json_decref(all);
    return 0;
}

/* Whether a task of this product runs on the instance now (its operation is in progress). */
static bool instance_busy(struct api_call *c, const char *instance_id)
{
    struct task_filter f = {.product = c->product->name,
                            .uin = c->who->owner_uin,
                            .instance_id = instance_id,
                            .state = -1,
                            .state_mask = 1u << TASK_RUNNING,
                            .limit = 1};
    struct task_list list = {0};
    int64_t total = 0;
    struct err se;
    if (store_task_list(c->store, &f, &list, &total, &se) != 0)
        total = 0;
    task_list_clear(&list);
    return total > 0;
}

/* host and port of the first address of a mysql:// or mongodb:// DSN, never its credentials;
 * "" and 0 when it has none. */
static void dsn_address(const char *dsn, char *host, size_t cap, int64_t *port)
{
    host[0] = '\0';
    *port = 0;
    const char *p = strstr(dsn, "://");
    if (!p)
        return;
    p += 3;
    const char *end = p + strcspn(p, "/?");
    const char *at = NULL; /* the last '@' ends the userinfo */
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    const char *h = at ? at + 1 : p;
    size_t len = strcspn(h, ",/?");
    const char *colon = NULL;
    if (*h == '[') { /* [v6]:port */
        const char *close = memchr(h, ']', len);
        colon = close && close + 1 < h + len && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(h, ':', len);
    }
    size_t hl = colon ? (size_t)(colon - h) : len;
    if (hl >= cap)
        hl = cap - 1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (colon)
        *port = strtol(colon + 1, NULL, 10);
}

/* The page Offset/Limit asks for, with the product's largest Limit. */
static int page(struct api_call *c, int64_t max_limit, int64_t *offset, int64_t *limit,
                struct err *e)
{
    int rc = product_param_int(c, "Offset", 0, 0, INT32_MAX, offset, e);
    return rc ? rc : product_param_int(c, "Limit", 20, 1, max_limit, limit, e);
}

/* Whether the Status filter (an array of the product's status numbers) keeps this status. */
static int status_kept(struct api_call *c, int64_t status, bool *kept, struct err *e)
{
    int64_t want[32];
    size_t n;
    int rc = product_param_int_list(c, "Status", want, 32, &n, e);
    *kept = n == 0;
    for (size_t i = 0; i < n; i++)
        *kept = *kept || want[i] == status;
    return rc;
}

typedef json_t *(*item_fn)(struct api_call *c, const json_t *row, int64_t *status);

/* Lists, filters by Status, pages and fills: the answer's total and items. */
static int describe(struct api_call *c, item_fn make, const char *model, int64_t max_limit,
                    const char *items_key, json_t *resp, struct err *e)
{
    int64_t offset, limit;
    struct listed l = {0};
    int rc = page(c, max_limit, &offset, &limit, e);
    if (rc || (rc = list_own(c, &l, e)))
        return rc;
    const struct sdk_model *m = sdk_model_find(c->product->name, model);
    json_t *items = json_array();
    int64_t total = 0;
    size_t i;
    json_t *row;
    json_array_foreach(l.rows, i, row)
    {
        int64_t status;
        bool kept;
        json_t *item = make(c, row, &status);
        if ((rc = status_kept(c, status, &kept, e)) != 0 || !kept) {
            json_decref(item);
            if (rc)
                break;
            continue;
        }
        if (total++ >= offset && (int64_t)json_array_size(items) < limit) {
            sdk_model_fill(m, item);
            json_array_append_new(items, item);
        } else {
            json_decref(item);
        }
    }
    json_decref(l.rows);
    if (rc) {
        json_decref(items);
        return rc;
    }
    json_object_set_new(resp, "TotalCount", json_integer(total));
    json_object_set_new(resp, items_key, items);
    return 0;
}

static const char *row_str(const json_t *row, const char *key)
{
    const char *s = json_string_value(json_object_get(row, key));
    return s ? s : "";
}

/* A simulated instance has no server: it answers a private address of the product's port until
 * an action (ModifyDBInstanceVipVport, ...) recorded others, and every DescribeDBInstances field
 * its actions changed (sim_state "instance", see sim/sim_effects.c) over the registered ones. */
static void overlay_simulated(struct api_call *c, const json_t *row, json_t *item, int64_t port)
{
    if (!json_is_true(json_object_get(row, "simulated")))
        return;
    json_object_set_new(item, "Vip", json_string("10.0.0.10"));
    json_object_set_new(item, "Vport", json_integer(port));
    json_t *state = NULL;
    struct err se;
    const char *id = json_string_value(json_object_get(row, "instance_id"));
    if (id && store_instance_sim_state(c->store, c->product->name, id, &state, &se) == 0 && state)
        json_object_update(item, json_object_get(state, "instance"));
    json_decref(state);
}

/* cdb Status: 1 running, 5 isolated; InstanceType 1 (a primary); TaskStatus 5 ("an operation is
 * executing") while a task runs on it, else 0. */
static json_t *cdb_item(struct api_call *c, const json_t *row, int64_t *status)
{
    const char *id = row_str(row, "instance_id");
    char host[256];
    int64_t port;
    dsn_address(row_str(row, "dsn"), host, sizeof host, &port);
    *status = strcmp(row_str(row, "status"), "isolated") == 0 ? 5 : 1;
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:I}", "InstanceId", id, "InstanceName",
                  id, "Region", c->region, "Status", (json_int_t)*status, "TaskStatus",
                  (json_int_t)(instance_busy(c, id) ? 5 : 0), "Vip", host, "Vport",
                  (json_int_t)port, "InitFlag", (json_int_t)1, "InstanceType", (json_int_t)1);
    overlay_simulated(c, row, item, 3306);
    return item;
}

/* mongodb Status: 2 running, 1 while a task runs on it (an operation in progress), -2 isolated. */
static json_t *mongodb_item(struct api_call *c, const json_t *row, int64_t *status)
{
    const char *id = row_str(row, "instance_id");
    char host[256];
    int64_t port;
    dsn_address(row_str(row, "dsn"), host, sizeof host, &port);
    bool isolated = strcmp(row_str(row, "status"), "isolated") == 0;
    *status = isolated ? -2 : instance_busy(c, id) ? 1 : 2;
    json_t *item =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "InstanceId", id, "InstanceName", id, "Region",
                  c->region, "Status", (json_int_t)*status, "Vip", host, "Vport", (json_int_t)port);
    overlay_simulated(c, row, item, 27017);
    return item;
}

int cdb_describe_db_instances(struct api_call *c, json_t *resp, struct err *e)
{
    return describe(c, cdb_item, "InstanceInfo", 2000, "Items", resp, e);
}

int mongodb_describe_db_instances(struct api_call *c, json_t *resp, struct err *e)
{
    return describe(c, mongodb_item, "InstanceDetail", 100, "InstanceDetails", resp, e);
}
