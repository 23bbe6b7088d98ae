/* The generic handler of the generated async actions (async_actions_table.c): every action the
 * SDK documents as starting a task runs here unless a flow template of its name exists. */
#include "products/async_actions.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct async_action *async_action_find(const char *product, const char *name)
{
    for (const struct async_action *a = async_actions_all; a->product; a++)
        if (strcmp(a->product, product) == 0 && strcmp(a->action.name, name) == 0)
            return a;
    return NULL;
}

const struct action *async_action_route(const struct product *p, const char *name)
{
    const struct async_action *a = async_action_find(p->name, name);
    return a ? &a->action : NULL;
}

static const struct sdk_field *field_of(const struct sdk_model *m, const char *name)
{
    for (size_t i = 0; m && i < m->n_fields; i++)
        if (strcmp(m->fields[i].name, name) == 0)
            return &m->fields[i];
    return NULL;
}

const char *async_action_instance_id(const struct sdk_model *request, const json_t *params)
{
    const struct sdk_field *one = field_of(request, "InstanceId");
    if (one && one->kind == SDK_STRING)
        return json_string_value(json_object_get(params, "InstanceId"));
    const struct sdk_field *many = field_of(request, "InstanceIds");
    if (many && many->kind == SDK_ARRAY && many->elem == SDK_STRING)
        return json_string_value(json_array_get(json_object_get(params, "InstanceIds"), 0));
    return NULL;
}

static bool is_secret(const char *name)
{
    return strcasestr(name, "password") || strcasestr(name, "secret");
}

json_t *async_action_input(const json_t *params)
{
    json_t *input = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        if (!is_secret(key))
            json_object_set(input, key, v);
    }
    return input;
}

/* The id in the documented shape: AsyncRequestId a string; FlowId and TaskId the same digits
 * as a number (mongodb task ids are decimal), so a FlowId polled as an AsyncRequestId is found. */
static int answer_id(const struct async_action *a, const char *id, json_t *resp, struct err *e)
{
    if (a->id_kind == SDK_STRING) {
        json_object_set_new(resp, a->id_field, json_string(id));
        return 0;
    }
    char *end;
    long long n = strtoll(id, &end, 10);
    if (*end || n <= 0)
        return err_set(e, ERR_INTERNAL, "task id %s is not the number %s answers as %s", id,
                       a->action.name, a->id_field);
    json_object_set_new(resp, a->id_field, json_integer(n));
    return 0;
}

/* Creates the simulated task of action a, on the instance when there is one. */
static int create_task(struct api_call *c, const struct async_action *a, const char *instance_id,
                       char id[STORE_ID_MAX], struct err *e)
{
    json_t *input = async_action_input(c->params);
    struct sim_task_new t = {.product = c->product->name,
                             .region = c->region,
                             .uin = c->who->owner_uin,
                             .instance_id = instance_id,
                             .action = a->action.name,
                             .node = c->node,
                             .input = input};
    int rc = sim_task_create(c->sim, c->store, &t, id, e);
    json_decref(input);
    if (!rc && c->wake)
        c->wake(c->wake_ctx);
    return rc;
}

int async_action_run(struct api_call *c, json_t *resp, struct err *e)
{
    const struct async_action *a = async_action_find(c->product->name, c->action);
    if (!a)
        return err_set(e, ERR_INTERNAL, "%s %s is not a generated async action", c->product->name,
                       c->action);
    /* The request was checked against its model before this handler (product_check_params). */
    const struct sdk_model *req = sdk_model_find(c->product->name, a->action.request_model);
    const char *instance_id = async_action_instance_id(req, c->params);
    struct instance in;
    int rc;
    if (instance_id && (rc = product_find_instance(c, instance_id, &in, e)))
        return rc;
    /* No instance: nothing on a server to act on, so the task is simulated as well. */
    if (instance_id && !sim_instance_simulated(&in))
        return err_set(e, ERR_UNSUPPORTED_OPERATION,
                       "%s needs a simulated instance: asyncd has no flow for it on a real "
                       "server, and %s is one (register an instance with \"simulated\": true, "
                       "or add a flow template named %s)",
                       a->action.name, in.instance_id, a->action.name);
    char id[STORE_ID_MAX];
    if ((rc = create_task(c, a, instance_id, id, e)) || (rc = answer_id(a, id, resp, e)))
        return rc;
    /* Every other documented field with its empty value: pollers dereference them. */
    sdk_model_fill(sdk_model_find(c->product->name, a->response_model), resp);
    json_object_del(resp, "RequestId"); /* the front door's own */
    return 0;
}
