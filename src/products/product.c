/* The product registry and what every dialect's actions share: parameters and task lookup. */
#include "products/product.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_kind.h"
#include "products/sdk_models.h"

static const struct product *const products[] = {&product_cdb, &product_mongodb};
#define N_PRODUCTS (sizeof products / sizeof products[0])

const struct product *product_by_name(const char *name)
{
    for (size_t i = 0; name && i < N_PRODUCTS; i++)
        if (strcmp(products[i]->name, name) == 0)
            return products[i];
    return NULL;
}

const struct product *product_by_version(const char *version)
{
    for (size_t i = 0; version && i < N_PRODUCTS; i++)
        if (strcmp(products[i]->version, version) == 0)
            return products[i];
    return NULL;
}

const struct action *product_action(const struct product *p, const char *name)
{
    for (const struct action *a = p->actions; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

const char *product_status_word(const struct product *p, enum task_state s)
{
    return (unsigned)s < TASK_STATE_COUNT ? p->status_words[s] : "";
}

static bool action_takes(const struct action *a, const char *name)
{
    for (const char *const *p = a->params; p && *p; p++)
        if (strcmp(*p, name) == 0)
            return true;
    return false;
}

int product_check_params(const struct api_call *c, const struct action *a, struct err *e)
{
    const struct sdk_model *m =
        a->request_model ? sdk_model_find(c->product->name, a->request_model) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach(c->params, key, v)
    {
        if (!action_takes(a, key) && !(m && sdk_model_has(m, key)))
            return err_set(e, ERR_UNKNOWN_PARAMETER,
                           "The parameter `%s` is not recognized by %s; check its spelling", key,
                           a->name);
    }
    return m ? sdk_model_check(m, c->params, c->params_from_form, a->name, e) : 0;
}

int product_param_string(struct api_call *c, const char *name, bool required, const char **out,
                         struct err *e)
{
    json_t *v = json_object_get(c->params, name);
    *out = NULL;
    if (!v) {
        if (required)
            return err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is missing; %s needs it",
                           name, c->action);
        return 0;
    }
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected a string, got %s", name,
                       json_kind_phrase(v));
    *out = json_string_value(v);
    if (required && **out == '\0')
        return err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is empty; %s needs it", name,
                       c->action);
    return 0;
}

int product_find_task(struct api_call *c, const char *id, struct task_summary *out, struct err *e)
{
    const struct product *p = c->product;
    if (!p->id_shape_ok(id))
        return err_set(e, p->err_task_not_found, "AsyncRequestId %s does not exist: %s", id,
                       p->id_shape_hint);
    struct err se;
    int rc = store_task_summary(c->store, p->name, id, out, &se);
    if (rc == ERR_NOT_FOUND || (rc == 0 && strcmp(out->uin, c->who->owner_uin) != 0))
        return err_set(e, p->err_task_not_found,
                       "AsyncRequestId %s does not exist in this account's %s tasks", id, p->name);
    if (rc)
        return err_set(e, ERR_INTERNAL, "reading task %s: %s", id, se.msg);
    if (strcmp(out->region, c->region) != 0)
        return err_set(e, p->err_task_not_found,
                       "AsyncRequestId %s does not exist in region %s (tasks are regional; check "
                       "the client's Region)",
                       id, c->region);
    /* A simulated task moves on as its client polls it (sim/sim.h): this answer counts. */
    return sim_task_poll(c->sim, c->store, out, e);
}

static int int_of(struct api_call *c, const char *name, json_t *v, int64_t *out, struct err *e)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    char *end;
    if (c->params_from_form && s && *s) {
        long long n = strtoll(s, &end, 10);
        if (!*end) {
            *out = n;
            return 0;
        }
    }
    return err_set(e, ERR_INVALID_PARAMETER, "%s: expected an integer, got %s", name,
                   json_kind_phrase(v));
}

int product_param_int(struct api_call *c, const char *name, int64_t dflt, int64_t lo, int64_t hi,
                      int64_t *out, struct err *e)
{
    json_t *v = json_object_get(c->params, name);
    *out = dflt;
    if (!v)
        return 0;
    int rc = int_of(c, name, v, out, e);
    if (!rc && (*out < lo || *out > hi))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: must be %lld..%lld (got %lld)", name,
                     (long long)lo, (long long)hi, (long long)*out);
    return rc;
}

int product_param_int_list(struct api_call *c, const char *name, int64_t *vals, size_t max,
                           size_t *n, struct err *e)
{
    json_t *v = json_object_get(c->params, name);
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected an array of integers, got %s", name,
                       json_kind_phrase(v));
    if (json_array_size(v) > max)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: at most %zu items", name, max);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        char item[96];
        snprintf(item, sizeof item, "%s.%zu", name, i);
        int rc = int_of(c, item, x, &vals[i], e);
        if (rc)
            return rc;
    }
    *n = json_array_size(v);
    return 0;
}
