/* Unit tests: what the engine reads of a task it has just claimed (store_claims.c). Its first read
 * after a claim is the task as the claim left it, running under the new lease with the claim's
 * RUNNING event as its last; on SQLite the claim hands that task over, read in its own
 * transaction, and it must equal what store_task_get reads right after. Run on SQLite, then on
 * PostgreSQL with each claim statement (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "task/task_json.h"

#include "store_fixture.h"

#define LEASE_MS   60000
#define CLAIM_READ (TASK_READ_STEPS | TASK_READ_LAST_EVENT)

static int setup(void **state) { return store_fixture_open(state, "test_claims", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_claims", true, ""); }
static int setup_pg_update(void **state)
{
    return store_fixture_open(state, "test_claims", true, "?claim=update");
}
static int teardown(void **state) { return store_fixture_close(state); }

/* A two-step task, no instance (so a batch may take several). */
static void make_task(struct store *s, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}, s:{s:[s]}}, {s:s, s:{s:[ss]}}]", "name", "one",
                              "do", "exec", "/bin/true", "undo", "exec", "/bin/true", "name", "two",
                              "do", "exec", "/bin/echo", "hi");
    json_t *input = json_pack("{s:s}", "Name", "db1");
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .steps = steps,
                         .input = input,
                         .node = "node-1"};
    struct err e = {0};
    int rc = store_task_create(s, &t, id, &e);
    if (rc != 0)
        fprintf(stderr, "task_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    json_decref(steps);
    json_decref(input);
}

static struct task *get(struct store *s, const char *id, unsigned what)
{
    struct task *t = NULL;
    struct err e = {0};
    int rc = store_task_get(s, id, what, &t, &e);
    if (rc != 0)
        fprintf(stderr, "task_get: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return t;
}

/* What the engine's first read sees after a claim (today store_task_get, every store): running
 * under the claim's lease, its steps, the claim's RUNNING event last, as claim_event words it. */
static void
test_first_read_after_a_claim_is_running_under_its_lease_with_the_claim_event(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    make_task(f->s, id);
    struct task_claim c;
    struct err e = {0};
    assert_int_equal(store_task_claim(f->s, "node-a", LEASE_MS, &c, &e), 0);
    assert_string_equal(c.id, id);
    struct task *t = get(f->s, id, CLAIM_READ);
    assert_int_equal(t->state, TASK_RUNNING);
    assert_int_equal(t->lease_no, c.lease_no);
    assert_int_equal(t->lease_no, 1);
    assert_string_equal(t->lease_node, "node-a");
    assert_int_equal(t->n_steps, 2);
    assert_true(t->has_steps);
    assert_int_equal(t->n_events, 1);
    const struct task_event *ev = task_last_event(t);
    assert_int_equal(ev->from, TASK_INITIAL);
    assert_int_equal(ev->to, TASK_RUNNING);
    assert_string_equal(ev->node, "node-a");
    assert_string_equal(ev->message, "started; lease 1");
    assert_true(ev->at_ms >= t->created_ms);
    task_free(t);
}

#define CONTRACT(X)        X(test_first_read_after_a_claim_is_running_under_its_lease_with_the_claim_event)
#define ON_SQLITE(name)    cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)        cmocka_unit_test_setup_teardown(name, setup_pg, teardown),
#define ON_PG_UPDATE(name) cmocka_unit_test_setup_teardown(name, setup_pg_update, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest pg[] = {CONTRACT(ON_PG)};
    const struct CMUnitTest pg_update[] = {CONTRACT(ON_PG_UPDATE)};
    return STORE_FIXTURE_RUN_CLAIMS("test_store_claims: the postgres groups", sqlite, pg,
                                    pg_update);
}
