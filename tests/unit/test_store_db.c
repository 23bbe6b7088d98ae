/* Unit tests for the store's backend primitives (store_db.h) and the transactions written once
 * over them (process groups, simulation state; tokens and retention have their own tests in
 * test_store.c and test_store_purge.c): one contract run on the embedded SQLite backend and
 * again on PostgreSQL (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_db.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fixture_open(state, "test_db", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_db", true, ""); }
static int teardown(void **state) { return store_fixture_close(state); }

/* The backend itself, not behind store_open's cache: db_run needs a store with a dialect. */
static int open_raw_with(void **state, bool pg, const char *options)
{
    struct store_fixture *f = calloc(1, sizeof *f);
    struct err e = {0};
    char *url = NULL, path[96];
    int rc = fixture_mkdtemp(f->dir, sizeof f->dir, "test_db_raw");
    if (rc == 0 && pg)
        rc = pg_fresh_db(f->db, options, &url);
    snprintf(path, sizeof path, "%s/asyncd.db", f->dir);
    if (rc == 0)
        rc = pg ? store_pg_open(url, &f->s, &e) : store_sqlite_open(path, &f->s, &e);
    free(url);
    if (rc != 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}
static int open_raw(void **state, bool pg) { return open_raw_with(state, pg, ""); }
static int setup_raw(void **state) { return open_raw(state, false); }
static int setup_raw_pg(void **state) { return open_raw(state, true); }
static int setup_raw_pg_update(void **state) { return open_raw_with(state, true, "?claim=update"); }

static struct store *store_of(void **state) { return ((struct store_fixture *)*state)->s; }

/* Gated slots: a dialect has them exactly when it has the capability (or lacks it). */
static bool slot_needs(enum db_stmt st, unsigned caps)
{
    switch (st) {
    case DB_ACCOUNT_ROOT_LOCK:
    case DB_IDEM_LOCK:
        return !(caps & DB_CAP_ONE_WRITER);
    case DB_DELIVERY_LOCK:
    case DB_DELIVERY_CLAIM:
    case DB_TASK_CREATE:
        return caps & DB_CAP_WRITE_CTE;
    case DB_TASK_LOAD:
        return caps & DB_CAP_ROUND_TRIPS;
    case DB_CLAIM_PICK:
    case DB_CLAIM_TAKE:
        return caps & DB_CAP_ONE_WRITER;
    case DB_CLAIM_UPDATE:
        return !(caps & DB_CAP_ONE_WRITER);
    case DB_CLAIM_BATCH:
        return caps & DB_CAP_SKIP_LOCKED;
    case DB_PROGRESS_BULK:
        return caps & DB_CAP_WRITE_CTE;
    case DB_DELIVERY_PICK:
    case DB_DELIVERY_TAKE:
    case DB_DELIVERY_READ:
    case DB_TASK_INSERT:
    case DB_STEP_INSERT:
        return !(caps & DB_CAP_WRITE_CTE);
    default:
        return true;
    }
}

static void test_every_statement_has_sql_in_both_dialects(void **state)
{
    (void)state;
    const struct db_ops *dialects[] = {&sq_db_ops, &pg_db_ops};
    for (size_t d = 0; d < 2; d++)
        for (int i = 0; i < DB_STMT_COUNT; i++)
            assert_int_equal(dialects[d]->sql[i] != NULL, slot_needs(i, dialects[d]->caps));
    /* ?claim=update: PostgreSQL's SQL with a capability less, so every slot it needs is there */
    for (int i = 0; i < DB_STMT_COUNT; i++)
        if (slot_needs(i, pg_db_ops_no_skip_locked.caps))
            assert_non_null(pg_db_ops_no_skip_locked.sql[i]);
    assert_true(pg_db_ops.caps & DB_CAP_SKIP_LOCKED);
    assert_false(sq_db_ops.caps & DB_CAP_SKIP_LOCKED);
    assert_true(sq_db_ops.caps & DB_CAP_ONE_WRITER);
    assert_true(pg_db_ops.caps & DB_CAP_ROUND_TRIPS);
    assert_false(sq_db_ops.caps & DB_CAP_ROUND_TRIPS);
}

/* ?claim=update is PostgreSQL without SKIP LOCKED: the claims take one task a statement
 * (store_claims.c). */
static void test_claim_update_leaves_out_skip_locked(void **state)
{
    struct store *s = store_of(state);
    assert_false(db_store_has(s, DB_CAP_SKIP_LOCKED));
    assert_false(db_store_has(s, DB_CAP_ONE_WRITER));
    assert_true(db_store_has(s, DB_CAP_ROUND_TRIPS));
}

/* Every dialect's table has every operation of the handle: a table made for one store kind
 * (?claim=update) once lacked the two added for the task list after it, and listing tasks on
 * such a store called through NULL. */
static void test_every_dialect_table_has_the_whole_handle(void **state)
{
    (void)state;
    const struct db_ops *tables[] = {&sq_db_ops, &pg_db_ops, &pg_db_ops_no_skip_locked};
    for (size_t d = 0; d < sizeof tables / sizeof tables[0]; d++) {
        const struct db_ops *o = tables[d];
        assert_non_null(o->sql);
        assert_non_null(o->run);
        assert_non_null(o->exec);
        assert_non_null(o->next);
        assert_non_null(o->is_null);
        assert_non_null(o->text);
        assert_non_null(o->int64);
        assert_non_null(o->changes);
        assert_non_null(o->exec_sql);
        assert_non_null(o->param);
    }
}

/* A task list, whose filter is SQL built at run time (db_exec_sql, db_param), on a
 * ?claim=update store. */
static void test_claim_update_store_lists_tasks(void **state)
{
    struct store *s = store_of(state);
    struct task_filter f = {
        .state = -1, .product = "cdb", .uin = "100001", .state_mask = 1u << TASK_INITIAL};
    struct task_list l = {0};
    int64_t total = -1;
    struct err e = {0};
    assert_int_equal(store_task_list(s, &f, &l, &total, &e), 0);
    assert_int_equal(total, 0);
    assert_int_equal(l.n, 0);
    task_list_clear(&l);
}

/* A slot the dialect does not have fails, it does not crash. */
static int run_missing(struct db_tx *t, void *ctx, struct err *e)
{
    (void)ctx;
    enum db_stmt st = db_has(t, DB_CAP_WRITE_CTE) ? DB_DELIVERY_PICK : DB_DELIVERY_CLAIM;
    return db_exec(t, st, DB_NO_ARGS, "running a missing slot", e);
}

static void test_a_slot_the_dialect_lacks_is_an_error(void **state)
{
    struct err e = {0};
    assert_int_equal(db_run(store_of(state), DB_READ, run_missing, NULL, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "no such statement"));
}

static void test_db_run_refuses_a_store_without_a_backend(void **state)
{
    (void)state;
    struct store wrapper = {0};
    struct err e = {0};
    assert_int_equal(db_run(&wrapper, DB_READ, NULL, NULL, &e), ERR_INTERNAL);
}

static struct step_pgroup pgroup(const char *node, int64_t pgid, const char *task)
{
    struct step_pgroup g = {.pgid = pgid, .start_ticks = pgid * 10};
    snprintf(g.node, sizeof g.node, "%s", node);
    snprintf(g.task_id, sizeof g.task_id, "%s", task);
    snprintf(g.boot_id, sizeof g.boot_id, "boot-1");
    return g;
}

static void test_pgroup_record_replaces_lists_by_node_and_clears(void **state)
{
    struct store *s = store_of(state);
    struct err e = {0};
    struct step_pgroup a = pgroup("node-a", 100, "task-1"), b = pgroup("node-a", 200, "task-2");
    struct step_pgroup other = pgroup("node-b", 100, "task-3");
    assert_int_equal(store_pgroup_record(s, &a, &e), 0);
    assert_int_equal(store_pgroup_record(s, &b, &e), 0);
    assert_int_equal(store_pgroup_record(s, &other, &e), 0);
    struct step_pgroup again = pgroup("node-a", 100, "task-9"); /* same (node, pgid): replaces */
    assert_int_equal(store_pgroup_record(s, &again, &e), 0);

    struct step_pgroup *rows;
    size_t n;
    assert_int_equal(store_pgroup_list(s, "node-a", &rows, &n, &e), 0);
    assert_int_equal(n, 2);
    /* Listed by recording time in ms: both may fall in one ms, so find each by its pgid. */
    struct step_pgroup *b_row = rows[0].pgid == 200 ? &rows[0] : &rows[1];
    struct step_pgroup *a_row = rows[0].pgid == 200 ? &rows[1] : &rows[0];
    assert_int_equal(b_row->pgid, 200);
    assert_string_equal(b_row->task_id, "task-2");
    assert_string_equal(b_row->node, "node-a");
    assert_string_equal(b_row->boot_id, "boot-1");
    assert_int_equal(b_row->start_ticks, 2000);
    assert_int_equal(a_row->pgid, 100);
    assert_string_equal(a_row->task_id, "task-9"); /* the same (node, pgid) replaced */
    free(rows);

    assert_int_equal(store_pgroup_clear(s, "node-a", 100, &e), 0);
    assert_int_equal(store_pgroup_clear(s, "node-a", 200, &e), 0);
    assert_int_equal(store_pgroup_list(s, "node-a", &rows, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(rows);
    assert_int_equal(store_pgroup_list(s, "node-b", &rows, &n, &e), 0);
    assert_int_equal(n, 1);
    free(rows);
}

/* Writes a process group, then fails: nothing of it may stay. */
static int record_then_fail(struct db_tx *t, void *ctx, struct err *e)
{
    const struct step_pgroup *g = ctx;
    int rc = db_exec(t, DB_PGROUP_RECORD,
                     DB_ARGS(DB_TEXT(g->node), DB_INT(g->pgid), DB_TEXT(g->task_id),
                             DB_TEXT(g->boot_id), DB_INT(g->start_ticks), DB_INT(1)),
                     "recording", e);
    assert_int_equal(rc, 0);
    assert_int_equal(db_changes(t), 1);
    return err_set(e, ERR_INVALID_PARAMETER, "changed my mind");
}

static void test_a_failed_transaction_leaves_nothing_behind(void **state)
{
    struct store *s = store_of(state);
    struct err e = {0};
    struct step_pgroup g = pgroup("node-a", 42, "task-1");
    int rc = db_run(s, DB_WRITE, record_then_fail, &g, &e);
    if (rc != ERR_INVALID_PARAMETER)
        fprintf(stderr, "db_run: %s\n", e.msg);
    assert_int_equal(rc, ERR_INVALID_PARAMETER);
    assert_string_equal(e.msg, "changed my mind");
    struct step_pgroup *rows;
    size_t n;
    assert_int_equal(store_pgroup_list(s, "node-a", &rows, &n, &e), 0);
    assert_int_equal(n, 0);
}

static void add_instance(struct store *s, const char *id, bool simulated)
{
    struct instance in = {.simulated = simulated};
    snprintf(in.product, sizeof in.product, "cdb");
    snprintf(in.instance_id, sizeof in.instance_id, "%s", id);
    snprintf(in.region, sizeof in.region, "ap-guangzhou");
    snprintf(in.uin, sizeof in.uin, "100000000001");
    snprintf(in.status, sizeof in.status, "running");
    if (!simulated)
        snprintf(in.dsn, sizeof in.dsn, "mysql://u:p@127.0.0.1:3306/");
    struct err e = {0};
    assert_int_equal(store_instance_create(s, &in, &e), 0);
}

struct null_read {
    bool is_null;
    const char *text;
    int64_t i;
    int rows;
};

/* Reads the sim_state of cdb-real, which is SQL NULL. */
static int read_null(struct db_tx *t, void *ctx, struct err *e)
{
    struct null_read *r = ctx;
    int rc =
        db_exec(t, DB_SIM_STATE_GET, DB_ARGS(DB_TEXT("cdb-real"), DB_TEXT("cdb")), "reading", e);
    while (rc == 0 && (rc = db_next(t, "reading", e)) == 1) {
        r->rows++;
        r->is_null = db_is_null(t, 0);
        r->text = db_text(t, 0);
        r->i = db_int(t, 0);
        json_t *j = db_json_text(t, 0);
        assert_true(json_is_null(j));
        json_decref(j);
        rc = 0;
    }
    return rc;
}

static void test_sql_null_reads_as_null_text_and_zero(void **state)
{
    struct store *s = store_of(state);
    add_instance(s, "cdb-real", false);
    struct null_read r = {.text = "unset", .i = -1};
    struct err e = {0};
    int rc = db_run(s, DB_READ, read_null, &r, &e);
    if (rc != 0)
        fprintf(stderr, "db_run: %s\n", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(r.rows, 1);
    assert_true(r.is_null);
    assert_null(r.text);
    assert_int_equal(r.i, 0);
}

static void test_sim_state_is_set_read_back_and_reset(void **state)
{
    struct store *s = store_of(state);
    struct err e = {0};
    add_instance(s, "cdb-sim1", true);
    add_instance(s, "cdb-real", false);
    assert_int_equal(store_instance_set_sim_state(s, "cdb", "cdb-sim1", "{\"n\":3}", &e), 0);
    json_t *st = NULL;
    assert_int_equal(store_instance_sim_state(s, "cdb", "cdb-sim1", &st, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(st, "n")), 3);
    json_decref(st);
    /* A real instance has no sim state to read or set; an unknown one is not found. */
    assert_int_equal(store_instance_sim_state(s, "cdb", "cdb-real", &st, &e), 0);
    assert_null(st);
    assert_int_equal(store_instance_set_sim_state(s, "cdb", "cdb-real", "{}", &e), ERR_NOT_FOUND);
    assert_int_equal(store_instance_sim_state(s, "cdb", "cdb-nope", &st, &e), ERR_NOT_FOUND);
    assert_int_equal(store_instance_sim_state(s, "mongodb", "cdb-sim1", &st, &e), ERR_NOT_FOUND);

    int64_t tasks = -1, instances = -1;
    assert_int_equal(store_sim_reset(s, &tasks, &instances, &e), 0);
    assert_int_equal(tasks, 0);
    assert_int_equal(instances, 1);
    assert_int_equal(store_instance_sim_state(s, "cdb", "cdb-sim1", &st, &e), ERR_NOT_FOUND);
    assert_int_equal(store_instance_sim_state(s, "cdb", "cdb-real", &st, &e), 0);
}

static void test_token_touch_and_revoke_count_changed_rows(void **state)
{
    struct store *s = store_of(state);
    struct err e = {0};
    struct token t = {.created_ms = 1700000000000};
    snprintf(t.id, sizeof t.id, "tok-1");
    snprintf(t.name, sizeof t.name, "ci");
    snprintf(t.scope, sizeof t.scope, "reader");
    snprintf(t.hash, sizeof t.hash, "%064d", 7);
    assert_int_equal(store_token_create(s, &t, &e), 0);
    assert_int_equal(store_token_touch(s, "tok-1", 1700000000500, &e), 0);
    assert_int_equal(store_token_touch(s, "tok-2", 1700000000500, &e), ERR_NOT_FOUND);
    assert_int_equal(store_token_revoke(s, "tok-1", &e), 0);
    assert_int_equal(store_token_touch(s, "tok-1", 1700000000600, &e), ERR_NOT_FOUND);
    json_t *list = NULL;
    assert_int_equal(store_token_list(s, &list, &e), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

/* Through store_open (the cache in front), and on the bare backend for the primitives. */
#define CONTRACT(X)                                                                                \
    X(test_pgroup_record_replaces_lists_by_node_and_clears)                                        \
    X(test_sim_state_is_set_read_back_and_reset)                                                   \
    X(test_token_touch_and_revoke_count_changed_rows)
#define PRIMITIVES(X)                                                                              \
    X(test_a_failed_transaction_leaves_nothing_behind)                                             \
    X(test_sql_null_reads_as_null_text_and_zero)                                                   \
    X(test_a_slot_the_dialect_lacks_is_an_error)
#define ON_SQLITE(name)     cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)         cmocka_unit_test_setup_teardown(name, setup_pg, teardown),
#define ON_SQLITE_RAW(name) cmocka_unit_test_setup_teardown(name, setup_raw, teardown),
#define ON_PG_RAW(name)     cmocka_unit_test_setup_teardown(name, setup_raw_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {
        cmocka_unit_test(test_every_statement_has_sql_in_both_dialects),
        cmocka_unit_test(test_every_dialect_table_has_the_whole_handle),
        cmocka_unit_test(test_db_run_refuses_a_store_without_a_backend),
        CONTRACT(ON_SQLITE) PRIMITIVES(ON_SQLITE_RAW)};
    const struct CMUnitTest postgres[] = {
        CONTRACT(ON_PG) PRIMITIVES(ON_PG_RAW) cmocka_unit_test_setup_teardown(
            test_claim_update_leaves_out_skip_locked, setup_raw_pg_update, teardown),
        cmocka_unit_test_setup_teardown(test_claim_update_store_lists_tasks, setup_raw_pg_update,
                                        teardown)};
    return STORE_FIXTURE_RUN("test_store_db: the postgres group", sqlite, postgres);
}
