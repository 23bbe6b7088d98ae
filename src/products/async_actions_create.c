/* The create actions (cdb and mongodb CreateDBInstanceHour): each makes simulated instances, so a
 * client's create -> poll -> configure -> poll sequence runs end to end without a server. The
 * instance is running at once; DescribeDBInstances lists it with the registered ones. */
#include <stdio.h>
#include <string.h>

#include "common/ids.h"
#include "products/async_actions.h"

#define MAX_GOODS     10 /* instances one call may create */
#define MINT_ATTEMPTS 8  /* fresh ids tried when one clashes with a stored instance */

/* A simulated instance in the product's id style (cdb-1a2b3c4d, cmgo-1a2b3c4d), owned by the
 * caller's root account in the request's region; its id into id_out. */
static int create_one(struct api_call *c, const char *prefix, char id_out[STORE_ID_MAX],
                      struct err *e)
{
    struct instance in = {.simulated = true};
    snprintf(in.product, sizeof in.product, "%s", c->product->name);
    snprintf(in.region, sizeof in.region, "%s", c->region);
    snprintf(in.uin, sizeof in.uin, "%s", c->who->owner_uin);
    snprintf(in.status, sizeof in.status, "running");
    struct err se = {0};
    for (int i = 0; i < MINT_ATTEMPTS; i++) {
        char hex[9];
        ids_hex(hex, 4);
        snprintf(in.instance_id, sizeof in.instance_id, "%s-%s", prefix, hex);
        int rc = store_instance_create(c->store, &in, &se);
        if (rc == 0) {
            snprintf(id_out, STORE_ID_MAX, "%s", in.instance_id);
            return 0;
        }
        if (rc != ERR_ALREADY_EXISTS)
            break;
    }
    return err_set(e, ERR_INTERNAL, "creating a simulated %s instance: %s", c->product->name,
                   se.msg);
}

/* GoodsNum instances (checked a number by the request model) into ids. */
static int create_goods(struct api_call *c, const char *prefix, json_t *ids, struct err *e)
{
    int64_t goods;
    int rc = product_param_int(c, "GoodsNum", 1, 1, MAX_GOODS, &goods, e);
    for (int64_t i = 0; !rc && i < goods; i++) {
        char id[STORE_ID_MAX];
        if (!(rc = create_one(c, prefix, id, e)))
            json_array_append_new(ids, json_string(id));
    }
    return rc;
}

/* An order number in the style of Tencent's deals: 20 decimal digits. */
static json_t *deal_id(void)
{
    char d[21];
    ids_decimal(d, 20);
    return json_string(d);
}

static int create_hour(struct api_call *c, const char *prefix, const char *deal_field,
                       bool deal_list, json_t *resp, struct err *e)
{
    json_t *ids = json_array();
    int rc = create_goods(c, prefix, ids, e);
    if (rc) {
        json_decref(ids);
        return rc;
    }
    json_object_set_new(resp, deal_field, deal_list ? json_pack("[o]", deal_id()) : deal_id());
    json_object_set_new(resp, "InstanceIds", ids);
    sdk_model_fill(sdk_model_find(c->product->name, "CreateDBInstanceHourResponse"), resp);
    json_object_del(resp, "RequestId"); /* the front door's own */
    return 0;
}

int cdb_create_db_instance_hour(struct api_call *c, json_t *resp, struct err *e)
{
    return create_hour(c, "cdb", "DealIds", true, resp, e);
}

int mongodb_create_db_instance_hour(struct api_call *c, json_t *resp, struct err *e)
{
    return create_hour(c, "cmgo", "DealId", false, resp, e);
}
