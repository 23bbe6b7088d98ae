/* The store's part of the simulation (sim/sim.h), once for both dialects: a simulated
 * instance's recorded state, and the reset that removes every simulated task and instance. */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_db.h"

struct sim_op {
    const char *product, *instance_id, *state_json;
    json_t *state;
    int64_t tasks, instances;
};

static int state_get_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct sim_op *op = ctx;
    const char *what = "reading a simulated instance";
    int rc = db_exec(t, DB_SIM_STATE_GET, DB_ARGS(DB_TEXT(op->instance_id), DB_TEXT(op->product)),
                     what, e);
    if (rc == 0)
        rc = db_next(t, what, e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "no %s instance %s", op->product, op->instance_id);
    if (rc != 1)
        return rc;
    const char *text = db_text(t, 0);
    if (text && !(op->state = json_loads(text, 0, NULL)))
        return err_set(e, ERR_INTERNAL, "store: instance %s has a sim state that is not JSON",
                       op->instance_id);
    return 0;
}

int store_db_instance_sim_state(struct store *s, const char *product, const char *instance_id,
                                json_t **out, struct err *e)
{
    struct sim_op op = {.product = product, .instance_id = instance_id};
    int rc = db_run(s, DB_READ, state_get_fn, &op, e);
    if (rc != 0 && op.state) {
        json_decref(op.state);
        op.state = NULL;
    }
    *out = op.state;
    return rc;
}

static int state_set_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct sim_op *op = ctx;
    int rc = db_exec(t, DB_SIM_STATE_SET,
                     DB_ARGS(DB_TEXT(op->instance_id), DB_TEXT(op->product),
                             DB_TEXT(op->state_json), DB_INT(db_now_ms())),
                     "recording a simulated instance's state", e);
    if (rc == 0 && db_changes(t) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no simulated %s instance %s", op->product, op->instance_id);
    return rc;
}

int store_db_instance_set_sim_state(struct store *s, const char *product, const char *instance_id,
                                    const char *state_json, struct err *e)
{
    struct sim_op op = {.product = product, .instance_id = instance_id, .state_json = state_json};
    return db_run(s, DB_WRITE_ONE, state_set_fn, &op, e);
}

/* Steps and events go first: the foreign keys cascade, but saying so costs nothing. */
static int reset_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct sim_op *op = ctx;
    static const enum db_stmt order[] = {DB_SIM_RESET_STEPS, DB_SIM_RESET_EVENTS,
                                         DB_SIM_RESET_TASKS, DB_SIM_RESET_INSTANCES};
    int rc = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0] && rc == 0; i++) {
        rc = db_exec(t, order[i], DB_NO_ARGS, "resetting the simulation", e);
        if (rc == 0 && order[i] == DB_SIM_RESET_TASKS)
            op->tasks = db_changes(t);
        if (rc == 0 && order[i] == DB_SIM_RESET_INSTANCES)
            op->instances = db_changes(t);
    }
    return rc;
}

int store_db_sim_reset(struct store *s, int64_t *n_tasks, int64_t *n_instances, struct err *e)
{
    struct sim_op op = {0};
    int rc = db_run(s, DB_WRITE, reset_fn, &op, e);
    *n_tasks = rc == 0 ? op.tasks : 0;
    *n_instances = rc == 0 ? op.instances : 0;
    return rc;
}
