/* Unit tests for the store's typed task reads (store_task_get, store_task_list): what each
 * TASK_READ_* asks for comes back as structs, and nothing else; one contract run on SQLite and
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
#include "task/task_json.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fixture_open(state, "test_task_read", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_task_read", true, ""); }
static int teardown(void **state) { return store_fixture_close(state); }

/* A two-step task on instance cdb-1, moved initial -> running: two events. */
static void running_task(struct store *s, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}, s:n, s:i, s:i}, {s:s, s:{s:{}}, s:{s:{}}}]",
                              "name", "first", "do", "exec", "/bin/true", "undo", "retries", 2,
                              "timeout_s", 60, "name", "second", "do", "noop", "undo", "noop");
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .on_failure = "undo",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
    struct task_move m = {
        .id = id, .expect = TASK_INITIAL, .to = TASK_RUNNING, .node = "node-2", .message = "go"};
    assert_int_equal(store_task_move(s, &m, &e), 0);
}

static void test_a_row_read_has_no_steps_or_events(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    running_task(f->s, id);
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(f->s, id, 0, &t, &e), 0);
    assert_string_equal(t->id, id);
    assert_int_equal(t->state, TASK_RUNNING);
    assert_int_equal(t->on_failure, ON_FAILURE_UNDO);
    assert_int_equal(t->phase, PHASE_DO);
    assert_null(t->instance_id);
    assert_null(t->info);
    assert_true(t->start_ms != TASK_MS_NONE);
    assert_true(t->end_ms == TASK_MS_NONE);
    assert_int_equal(t->n_steps, 2); /* counted, not read */
    assert_false(t->has_steps);
    assert_false(t->has_events);
    assert_null(task_step_at(t, 0));
    assert_null(task_last_event(t));
    task_free(t);
    assert_int_equal(store_task_get(f->s, id, TASK_READ_STEPS, &t, &e), 0); /* steps alone */
    assert_true(t->has_steps);
    assert_int_equal(t->n_steps, 2);
    assert_string_equal(task_step_at(t, 1)->name, "second");
    assert_false(t->has_events);
    assert_null(task_last_event(t));
    task_free(t);
}

static void test_steps_and_the_last_event_are_read_as_structs(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    running_task(f->s, id);
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(f->s, id, TASK_READ_STEPS | TASK_READ_LAST_EVENT, &t, &e), 0);
    assert_int_equal(t->n_steps, 2);
    const struct task_step *s0 = task_step_at(t, 0), *s1 = task_step_at(t, 1);
    assert_string_equal(s0->name, "first");
    assert_int_equal(s0->retries, 2);
    assert_int_equal(s0->timeout_s, 60);
    assert_int_equal(s0->state, STEP_PENDING);
    assert_true(json_is_array(json_object_get(s0->do_action, "exec")));
    assert_true(json_is_null(s0->undo_action));
    assert_true(json_is_null(s0->output));
    assert_null(s0->message);
    assert_true(json_is_object(s1->undo_action));
    assert_int_equal(t->n_events, 1); /* the latest only */
    const struct task_event *last = task_last_event(t);
    assert_int_equal(last->seq, 2);
    assert_int_equal(last->from, TASK_INITIAL);
    assert_int_equal(last->to, TASK_RUNNING);
    assert_string_equal(last->node, "node-2");
    assert_string_equal(last->message, "go");
    task_free(t);
    assert_int_equal(store_task_get(f->s, id, TASK_READ_ALL, &t, &e), 0);
    assert_int_equal(t->n_events, 2);
    assert_int_equal(t->events[0].from, -1); /* the creation has no from */
    assert_int_equal(t->events[0].to, TASK_INITIAL);
    task_free(t);
}

static void test_a_missing_task_is_not_found_and_out_is_null(void **state)
{
    struct store_fixture *f = *state;
    struct task *t = (struct task *)1;
    struct err e = {0};
    assert_int_equal(store_task_get(f->s, "nope", TASK_READ_ALL, &t, &e), ERR_NOT_FOUND);
    assert_null(t);
}

static void test_a_list_returns_rows_with_job_ids_newest_first(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    running_task(f->s, a);
    running_task(f->s, b);
    struct task_filter flt = {.state = -1, .product = "cdb"};
    struct task_list l = {0};
    int64_t total = 0;
    struct err e = {0};
    assert_int_equal(store_task_list(f->s, &flt, &l, &total, &e), 0);
    assert_int_equal(total, 2);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0]->id, b);
    assert_string_equal(l.items[1]->id, a);
    assert_true(l.items[0]->has_job_id);
    assert_true(l.items[0]->job_id > l.items[1]->job_id);
    assert_false(l.items[0]->has_steps);
    assert_int_equal(l.items[0]->n_steps, 2);
    /* task_json renders a listed row with its job_id (task/task_json.h) */
    json_t *j = task_json(l.items[0], NULL);
    assert_string_equal(json_string_value(json_object_get(j, "on_failure")), "undo");
    assert_int_equal(json_integer_value(json_object_get(j, "job_id")), l.items[0]->job_id);
    json_decref(j);
    task_list_clear(&l);
    assert_int_equal(l.n, 0);
}

#define CONTRACT(X)                                                                                \
    X(test_a_row_read_has_no_steps_or_events)                                                      \
    X(test_steps_and_the_last_event_are_read_as_structs)                                           \
    X(test_a_missing_task_is_not_found_and_out_is_null)                                            \
    X(test_a_list_returns_rows_with_job_ids_newest_first)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    return STORE_FIXTURE_RUN("test_store_task_read: the postgres group", sqlite, postgres);
}
