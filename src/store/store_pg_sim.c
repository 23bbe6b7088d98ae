/* The PostgreSQL store's part of the simulation (sim/sim.h): a simulated instance's recorded
 * state, and the reset that removes every simulated task and instance. Rare calls: the SQL is
 * not prepared. */
#include <stdlib.h>
#include <string.h>

#include "store/store_pg_int.h"

struct sim_op {
    const char *product, *instance_id, *state_json;
    json_t **out;
    int64_t tasks, instances;
};

static int state_get_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct sim_op *op = ctx;
    struct pg_params p = {0};
    pp_text(&p, op->instance_id);
    pp_text(&p, op->product);
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT sim_state FROM instances WHERE instance_id = $1::text"
                         " AND product = $2::text",
                         &p, &r, "reading a simulated instance", e);
    if (rc != 0)
        return rc;
    const char *text = PQntuples(r) > 0 ? pg_str(r, 0, 0) : NULL;
    if (PQntuples(r) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no %s instance %s", op->product, op->instance_id);
    else if (text && !(*op->out = json_loads(text, 0, NULL)))
        rc = err_set(e, ERR_INTERNAL, "store: instance %s has a sim state that is not JSON",
                     op->instance_id);
    PQclear(r);
    return rc;
}

int store_pg_instance_sim_state(struct store *s, const char *product, const char *instance_id,
                                json_t **out, struct err *e)
{
    *out = NULL;
    struct sim_op op = {.product = product, .instance_id = instance_id, .out = out};
    int rc = pg_run(s, PG_TX_NONE, state_get_fn, &op, e);
    if (rc != 0 && *out) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

static int state_set_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct sim_op *op = ctx;
    struct pg_params p = {0};
    pp_text(&p, op->instance_id);
    pp_text(&p, op->product);
    pp_text(&p, op->state_json);
    pp_int(&p, pg_now_ms());
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "UPDATE instances SET sim_state = $3::text, updated_ms = $4::bigint"
                         " WHERE instance_id = $1::text AND product = $2::text"
                         " AND sim_state IS NOT NULL",
                         &p, &r, "recording a simulated instance's state", e);
    if (rc != 0)
        return rc;
    if (strcmp(PQcmdTuples(r), "0") == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no simulated %s instance %s", op->product, op->instance_id);
    PQclear(r);
    return rc;
}

int store_pg_instance_set_sim_state(struct store *s, const char *product, const char *instance_id,
                                    const char *state_json, struct err *e)
{
    struct sim_op op = {.product = product, .instance_id = instance_id, .state_json = state_json};
    return pg_run(s, PG_TX_WRITE, state_set_fn, &op, e);
}

static int reset_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct sim_op *op = ctx;
    static const char *const sql[] = {
        "DELETE FROM task_steps WHERE task_id IN (SELECT id FROM tasks WHERE driver = 'sim')",
        "DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE driver = 'sim')",
        "DELETE FROM tasks WHERE driver = 'sim'",
        "DELETE FROM instances WHERE sim_state IS NOT NULL",
    };
    struct pg_params p = {0};
    int rc = 0;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == 0; i++) {
        PGresult *r;
        rc = pg_exec_sql(c, sql[i], &p, &r, "resetting the simulation", e);
        if (rc != 0)
            break;
        if (i == 2)
            op->tasks = strtoll(PQcmdTuples(r), NULL, 10);
        if (i == 3)
            op->instances = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    return rc;
}

int store_pg_sim_reset(struct store *s, int64_t *n_tasks, int64_t *n_instances, struct err *e)
{
    struct sim_op op = {0};
    int rc = pg_run(s, PG_TX_WRITE, reset_fn, &op, e);
    *n_tasks = rc == 0 ? op.tasks : 0;
    *n_instances = rc == 0 ? op.instances : 0;
    return rc;
}
