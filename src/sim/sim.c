/* Simulation: a first cut that makes every simulated task one noop step, so it succeeds at once
 * (the default of DESIGN.md section 8 when no progression rule applies). */
#include "sim/sim.h"

bool sim_instance_simulated(const struct instance *in) { return in->simulated; }

int sim_task_create(struct sim *sim, struct store *s, const struct sim_task_new *t,
                    char id_out[STORE_ID_MAX], struct err *e)
{
    (void)sim;
    json_t *steps = json_pack("[{s:s, s:{s:{}}}]", "name", t->action, "do", "noop");
    struct task_new tn = {.product = t->product,
                          .region = t->region,
                          .uin = t->uin,
                          .instance_id = t->instance_id,
                          .type = t->action,
                          .on_failure = "fail",
                          .steps = steps,
                          .node = t->node,
                          .input = t->input};
    struct err se;
    int rc = store_task_create(s, &tn, id_out, &se);
    json_decref(steps);
    return rc ? err_set(e, ERR_INTERNAL, "creating the simulated task: %s", se.msg) : 0;
}
