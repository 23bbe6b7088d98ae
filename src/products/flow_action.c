/* Cloud API actions defined by flow templates: validate everything, then create the task. */
#include <string.h>

#include "exec/exec.h"
#include "exec/mysql_conn.h"
#include "products/product.h"

int product_find_instance(struct api_call *c, const char *instance_id, struct instance *out,
                          struct err *e)
{
    const struct product *p = c->product;
    struct err se;
    int rc = store_instance_get(c->store, p->name, instance_id, out, &se);
    if (rc == ERR_NOT_FOUND || (rc == 0 && (strcmp(out->uin, c->who->owner_uin) != 0 ||
                                            strcmp(out->region, c->region) != 0)))
        return err_set(e, p->err_instance_not_found,
                       "The instance %.64s does not exist in this account's %s instances in "
                       "region %s",
                       instance_id, p->name, c->region);
    if (rc)
        return err_set(e, ERR_INTERNAL, "reading instance %s: %s", instance_id, se.msg);
    if (strcmp(out->status, "running") != 0)
        return err_set(e, p->err_instance_status,
                       "The instance %s is %s; this operation needs a running instance",
                       out->instance_id, out->status);
    return 0;
}

/* Every expanded action must be one the executors accept. The schema let the values through, so
 * what fails here is a value the executor refuses (a privilege name not in its list, say): the
 * caller's to fix (InvalidParameterValue), checked before any task exists. */
static int check_actions(const json_t *steps, struct err *e)
{
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step)
    {
        struct err xe;
        json_t *undo = json_object_get(step, "undo");
        if (exec_validate(json_object_get(step, "do"), &xe) != 0 ||
            (json_is_object(undo) && exec_validate(undo, &xe) != 0))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "step %zu (%s): %s", i + 1,
                           json_string_value(json_object_get(step, "name")), xe.msg);
    }
    return 0;
}

/* Hands the instance's reserved accounts to one mysql action, so the executor checks them again
 * just before each statement; joined to any list the template itself gives. */
static void add_reserved(json_t *action, const json_t *reserved)
{
    json_t *body = json_object_get(action, "mysql");
    if (!json_is_object(body) || json_array_size(reserved) == 0)
        return;
    json_t *list = json_object_get(body, "reserved_accounts");
    if (!json_is_array(list)) {
        list = json_array();
        json_object_set_new(body, "reserved_accounts", list);
    }
    json_array_extend(list, (json_t *)reserved);
}

/* The tenant guard (cdb_guard.h) over every statement of every step, before any task exists:
 * reserved accounts answer OperationDenied, system schemas InvalidParameterValue. Then the
 * accounts the statements name are looked up on the server (cdb_accounts_check_live): one that
 * holds what a tenant may not is refused here too, not only by the executor later. */
static int guard_actions(json_t *steps, const struct instance *in, struct err *e)
{
    json_t *accounts = json_array();
    json_t *reserved = in->reserved_accounts[0] ? json_loads(in->reserved_accounts, 0, NULL) : NULL;
    size_t i;
    json_t *step;
    int rc = 0;
    json_array_foreach(steps, i, step)
    {
        const char *keys[] = {"do", "undo"};
        for (size_t k = 0; rc == 0 && k < 2; k++) {
            json_t *action = json_object_get(step, keys[k]);
            add_reserved(action, reserved);
            rc = mysql_conn_guard_action(action, in->dsn, accounts, e);
        }
        if (rc)
            break;
    }
    if (rc == 0)
        rc = cdb_accounts_check_live(in, accounts, e);
    json_decref(accounts);
    json_decref(reserved);
    return rc;
}

static int create_task(struct api_call *c, const struct flow *fl, const char *instance_id,
                       json_t *steps, json_t *input, char id[STORE_ID_MAX], struct err *e)
{
    struct task_new t = {.product = c->product->name,
                         .region = c->region,
                         .uin = c->who->owner_uin,
                         .instance_id = instance_id,
                         .type = flow_task_type(fl),
                         .on_failure = flow_on_failure(fl),
                         .steps = steps,
                         .node = c->node,
                         .input = input};
    struct err se;
    int rc = store_task_create(c->store, &t, id, &se);
    if (rc)
        return err_set(e, ERR_INTERNAL, "creating the task: %s", se.msg);
    if (c->wake)
        c->wake(c->wake_ctx);
    return 0;
}

static int create_sim_task(struct api_call *c, const char *instance_id, json_t *input,
                           char id[STORE_ID_MAX], struct err *e)
{
    struct sim_task_new t = {.product = c->product->name,
                             .region = c->region,
                             .uin = c->who->owner_uin,
                             .instance_id = instance_id,
                             .action = c->action,
                             .node = c->node,
                             .input = input};
    return sim_task_create(c->sim, c->store, &t, id, e);
}

bool product_flow_blocking(const struct product *p, const struct flow *fl)
{
    return p->flows_blocking && flow_instance_param(fl) != NULL;
}

int product_run_flow(struct api_call *c, const struct flow *fl, json_t *resp, struct err *e)
{
    json_t *clean = NULL, *steps = NULL;
    int rc = flow_check_params(fl, c->params, c->params_from_form, &clean, e);
    const char *instance_id = NULL;
    struct instance in;
    if (!rc && flow_instance_param(fl)) {
        e->code = 0;
        instance_id = flow_instance_id(fl, clean, e);
        if (!instance_id)
            rc = e->code ? e->code
                         : err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is missing",
                                   flow_instance_param(fl));
        else
            rc = product_find_instance(c, instance_id, &in, e);
    }
    if (!rc)
        rc = flow_expand(fl, clean, &steps, e);
    if (!rc)
        rc = check_actions(steps, e);
    /* A simulated instance has no server to check: its task follows the progression rules. */
    bool simulated = instance_id && sim_instance_simulated(&in);
    if (!rc && instance_id && !simulated)
        rc = guard_actions(steps, &in, e);
    char id[STORE_ID_MAX];
    if (!rc) {
        json_t *input = flow_public_params(fl, clean);
        rc = simulated ? create_sim_task(c, instance_id, input, id, e)
                       : create_task(c, fl, instance_id, steps, input, id, e);
        json_decref(input);
    }
    if (!rc) {
        json_object_set_new(resp, "AsyncRequestId", json_string(id));
        json_object_update(resp, (json_t *)flow_response(fl));
    }
    json_decref(steps);
    json_decref(clean);
    return rc;
}
