/* The admin API's simulation routes (docs/simulation.md): progression rules, the reset, and
 * advancing a simulated task that waits "until": "advance". */
#include <string.h>

#include "admin/admin_int.h"
#include "task/task_json.h"

/* Every route needs the node's simulation; a daemon always has one, a test harness may not. */
static int need_sim(struct admin *a, struct err *e)
{
    return a->cfg.sim ? 0 : err_set(e, ERR_SERVICE_UNAVAILABLE, "this node runs no simulation");
}

int admin_sim_rule_put(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    (void)status;
    int rc = need_sim(a, e);
    if (rc || (rc = sim_rule_set(a->cfg.sim, r->arg[0], r->body, e)))
        return rc;
    json_t *list = sim_rule_list(a->cfg.sim);
    size_t i;
    json_t *rule;
    json_array_foreach(list, i, rule)
    {
        const char *name = json_string_value(json_object_get(rule, "name"));
        if (name && strcmp(name, r->arg[0]) == 0)
            *out = json_incref(rule);
    }
    json_decref(list);
    return 0;
}

int admin_sim_rule_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e)
{
    (void)r, (void)status;
    int rc = need_sim(a, e);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "rules", sim_rule_list(a->cfg.sim));
    return 0;
}

int admin_sim_rule_delete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e)
{
    (void)status;
    int rc = need_sim(a, e);
    if (rc || (rc = sim_rule_delete(a->cfg.sim, r->arg[0], e)))
        return rc;
    *out = json_pack("{s:s}", "deleted", r->arg[0]);
    return 0;
}

int admin_sim_reset(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)r, (void)status;
    int rc = need_sim(a, e);
    if (rc)
        return rc;
    return sim_reset(a->cfg.sim, out, e);
}

int admin_sim_advance(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e)
{
    (void)status;
    int rc = need_sim(a, e);
    if (rc || (rc = sim_task_advance(a->cfg.sim, a->cfg.store, r->arg[0], e)))
        return rc;
    /* The task read whole, in task_json's raw view (task/task_json.h), as advance has always
     * answered: a simulated task's steps carry no secrets. */
    struct task *t = NULL;
    if ((rc = store_task_get(a->cfg.store, r->arg[0], TASK_READ_ALL, &t, e)))
        return rc;
    *out = task_json(t, NULL);
    task_free(t);
    return 0;
}
