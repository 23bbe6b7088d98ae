/* The SQLite store's part of the simulation (sim/sim.h): a simulated instance's recorded state,
 * and the reset that removes every simulated task and instance. Rare calls: the statements are
 * prepared per call, not kept in a slot. */
#include <stdlib.h>
#include <string.h>

#include "store/store_sqlite_int.h"

struct sim_ref {
    const char *product, *instance_id, *state_json;
};

static int prepare(struct sq_conn *c, const char *sql, sqlite3_stmt **st, const char *what,
                   struct err *e)
{
    if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
        return sq_fail(c, e, what);
    return 0;
}

int store_sqlite_instance_sim_state(struct store *s, const char *product, const char *instance_id,
                                    json_t **out, struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st = NULL;
    int rc = prepare(c, "SELECT sim_state FROM instances WHERE instance_id = ?1 AND product = ?2",
                     &st, "reading a simulated instance", e);
    if (rc == 0) {
        sq_bind_text(st, 1, instance_id);
        sq_bind_text(st, 2, product);
        int r = sqlite3_step(st);
        const char *text = r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (r == SQLITE_DONE)
            rc = err_set(e, ERR_NOT_FOUND, "no %s instance %s", product, instance_id);
        else if (r != SQLITE_ROW)
            rc = sq_fail(c, e, "reading a simulated instance");
        else if (text && !(*out = json_loads(text, 0, NULL)))
            rc = err_set(e, ERR_INTERNAL, "store: instance %s has a sim state that is not JSON",
                         instance_id);
    }
    sqlite3_finalize(st);
    sq_release(c);
    return rc;
}

static int set_state_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    (void)outp;
    const struct sim_ref *in = inp;
    sqlite3_stmt *st = NULL;
    int rc = prepare(c,
                     "UPDATE instances SET sim_state = ?3, updated_ms = ?4"
                     " WHERE instance_id = ?1 AND product = ?2 AND sim_state IS NOT NULL",
                     &st, "recording a simulated instance's state", e);
    if (rc == 0) {
        sq_bind_text(st, 1, in->instance_id);
        sq_bind_text(st, 2, in->product);
        sq_bind_text(st, 3, in->state_json);
        sqlite3_bind_int64(st, 4, sq_now_ms());
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "recording a simulated instance's state");
        else if (sqlite3_changes(c->db) == 0)
            rc = err_set(e, ERR_NOT_FOUND, "no simulated %s instance %s", in->product,
                         in->instance_id);
    }
    sqlite3_finalize(st);
    return rc;
}

int store_sqlite_instance_set_sim_state(struct store *s, const char *product,
                                        const char *instance_id, const char *state_json,
                                        struct err *e)
{
    struct sim_ref in = {product, instance_id, state_json};
    return sq_write_tx(s, set_state_tx, &in, NULL, e);
}

struct reset_out {
    int64_t tasks, instances;
};

/* Steps and events go first: the foreign keys cascade, but saying so costs nothing. */
static int reset_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    (void)inp;
    struct reset_out *out = outp;
    static const char *const sql[] = {
        "DELETE FROM task_steps WHERE task_id IN (SELECT id FROM tasks WHERE driver = 'sim')",
        "DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE driver = 'sim')",
        "DELETE FROM tasks WHERE driver = 'sim'",
        "DELETE FROM instances WHERE sim_state IS NOT NULL",
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == 0; i++) {
        sqlite3_stmt *st = NULL;
        rc = prepare(c, sql[i], &st, "resetting the simulation", e);
        if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "resetting the simulation");
        if (rc == 0 && i == 2)
            out->tasks = sqlite3_changes(c->db);
        if (rc == 0 && i == 3)
            out->instances = sqlite3_changes(c->db);
        sqlite3_finalize(st);
    }
    return rc;
}

int store_sqlite_sim_reset(struct store *s, int64_t *n_tasks, int64_t *n_instances, struct err *e)
{
    struct reset_out out = {0, 0};
    int rc = sq_write_tx(s, reset_tx, NULL, &out, e);
    *n_tasks = rc == 0 ? out.tasks : 0;
    *n_instances = rc == 0 ? out.instances : 0;
    return rc;
}
