/* Unit tests: the store's remote-step contract (store.h, remote_handover and below): a handed-over
 * task is claimed by workers of its kind and by no engine node, heartbeats and reports are fenced
 * by the worker's lease (expired, re-claimed, killed: ERR_CONFLICT, nothing changes), and the
 * engine takes a reported result once. Run on SQLite, then on PostgreSQL with each claim
 * statement (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

#include "store_fixture.h"

#define LEASE_MS 60000

static int setup_with(void **state, bool pg, const char *opts)
{
    return store_fixture_open(state, "test_workers", pg, opts);
}

static int setup(void **state) { return setup_with(state, false, NULL); }
static int setup_pg(void **state) { return setup_with(state, true, ""); }
static int setup_pg_update(void **state) { return setup_with(state, true, "?claim=update"); }
static int teardown(void **state) { return store_fixture_close(state); }

/* A running task at its remote step of kind, handed over by the engine; *lease_no is the
 * engine's lease. */
static void make_waiting_task(struct store *s, const char *kind, char id[STORE_ID_MAX],
                              int64_t *lease_no)
{
    json_t *steps = json_pack("[{s:s, s:{s:{s:s, s:{s:i}}}}]", "name", "far", "do", "remote",
                              "kind", kind, "args", "n", 7);
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "Remote",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
    struct task_claim c;
    assert_int_equal(store_task_claim(s, "node-1", LEASE_MS, &c, &e), 0);
    assert_string_equal(c.id, id);
    *lease_no = c.lease_no;
    struct remote_handover h = {.id = id,
                                .lease_no = c.lease_no,
                                .node = "node-1",
                                .kind = kind,
                                .phase = "do",
                                .step = 0,
                                .message = "waiting"};
    assert_int_equal(store_remote_handover(s, &h, &e), 0);
}

static json_t *claim(struct store *s, const char *worker, const char *kind, int64_t lease_ms)
{
    const char *kinds[] = {"other", kind};
    struct worker_claim_req r = {
        .worker = worker, .kinds = kinds, .n_kinds = 2, .max = 8, .lease_ms = lease_ms};
    json_t *out = NULL;
    struct err e = {0};
    int rc = store_worker_claim(s, &r, &out, &e);
    if (rc != 0)
        fprintf(stderr, "worker_claim: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return out;
}

static int64_t claimed_lease(json_t *steps, size_t i)
{
    return json_integer_value(json_object_get(json_array_get(steps, i), "lease_no"));
}

static void test_handed_over_task_goes_to_workers_of_its_kind_only(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    int64_t engine_lease;
    make_waiting_task(f->s, "backup", id, &engine_lease);
    struct task_claim c;
    struct err e = {0};
    assert_int_equal(store_task_claim(f->s, "node-2", LEASE_MS, &c, &e), ERR_NOT_FOUND);
    json_t *none = claim(f->s, "w1", "restore", LEASE_MS);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    json_t *steps = claim(f->s, "w1", "backup", LEASE_MS);
    assert_int_equal(json_array_size(steps), 1);
    json_t *s0 = json_array_get(steps, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "task")), id);
    assert_string_equal(json_string_value(json_object_get(s0, "phase")), "do");
    assert_string_equal(json_string_value(json_object_get(s0, "kind")), "backup");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "args"), "n")), 7);
    assert_int_equal(claimed_lease(steps, 0), engine_lease + 1);
    json_t *again = claim(f->s, "w2", "backup", LEASE_MS);
    assert_int_equal(json_array_size(again), 0); /* held by w1 */
    json_decref(again);
    json_decref(steps);
}

static void test_report_is_taken_by_the_engine_once(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    int64_t engine_lease;
    make_waiting_task(f->s, "backup", id, &engine_lease);
    json_t *steps = claim(f->s, "w1", "backup", LEASE_MS);
    int64_t wl = claimed_lease(steps, 0);
    json_decref(steps);
    struct err e = {0};
    struct worker_lease lease;
    assert_int_equal(store_worker_heartbeat(f->s, id, wl, LEASE_MS, &lease, &e), 0);
    assert_false(lease.pause_requested);
    struct worker_report rep = {
        .id = id, .lease_no = wl, .done = true, .message = "ok", .output_json = "{\"x\":1}"};
    assert_int_equal(store_worker_report(f->s, &rep, &e), 0);
    assert_int_equal(store_worker_report(f->s, &rep, &e), ERR_CONFLICT); /* reported already */
    struct task_claim c;
    assert_int_equal(store_task_claim(f->s, "node-1", LEASE_MS, &c, &e), 0);
    assert_string_equal(c.id, id);
    json_t *result = NULL;
    assert_int_equal(store_remote_take(f->s, id, c.lease_no, 0, "do", &result, &e), 0);
    assert_non_null(result);
    assert_string_equal(json_string_value(json_object_get(result, "outcome")), "done");
    assert_string_equal(json_string_value(json_object_get(result, "message")), "ok");
    assert_string_equal(json_string_value(json_object_get(result, "worker")), "w1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(result, "output"), "x")),
                     1);
    json_decref(result);
    assert_int_equal(store_remote_take(f->s, id, c.lease_no, 0, "do", &result, &e), 0);
    assert_null(result); /* used once */
    assert_int_equal(store_remote_take(f->s, id, c.lease_no + 5, 0, "do", &result, &e),
                     ERR_CONFLICT);
}

static void test_expired_lease_is_claimed_again_and_the_old_token_is_refused(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    int64_t engine_lease;
    make_waiting_task(f->s, "backup", id, &engine_lease);
    json_t *steps = claim(f->s, "slow", "backup", 50);
    int64_t old = claimed_lease(steps, 0);
    json_decref(steps);
    usleep(150 * 1000);
    struct err e = {0};
    struct worker_lease lease;
    assert_int_equal(store_worker_heartbeat(f->s, id, old, LEASE_MS, &lease, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "expired"));
    struct task_claim c;
    assert_int_equal(store_task_claim(f->s, "node-1", LEASE_MS, &c, &e), ERR_NOT_FOUND);
    steps = claim(f->s, "fast", "backup", LEASE_MS);
    assert_int_equal(json_array_size(steps), 1);
    int64_t cur = claimed_lease(steps, 0);
    json_decref(steps);
    assert_int_equal(cur, old + 1);
    struct worker_report late = {.id = id, .lease_no = old, .done = true, .message = "late"};
    assert_int_equal(store_worker_report(f->s, &late, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "no longer current"));
    assert_int_equal(store_worker_heartbeat(f->s, id, cur, LEASE_MS, &lease, &e), 0);
}

static void test_kill_fences_out_the_worker(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    int64_t engine_lease;
    make_waiting_task(f->s, "backup", id, &engine_lease);
    json_t *steps = claim(f->s, "w1", "backup", LEASE_MS);
    int64_t wl = claimed_lease(steps, 0);
    json_decref(steps);
    struct err e = {0};
    assert_int_equal(store_task_control(f->s, id, VERB_KILL, "node-1", NULL, &e), 0);
    struct worker_lease lease;
    assert_int_equal(store_worker_heartbeat(f->s, id, wl, LEASE_MS, &lease, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "killed"));
    struct worker_report rep = {.id = id, .lease_no = wl, .done = false, .message = "x"};
    assert_int_equal(store_worker_report(f->s, &rep, &e), ERR_CONFLICT);
    struct task_summary sum;
    assert_int_equal(store_task_summary(f->s, "cdb", id, &sum, &e), 0);
    assert_int_equal(sum.state, TASK_KILLED);
}

static void test_pause_of_a_waiting_task_hands_it_back_to_the_engine(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    int64_t engine_lease;
    make_waiting_task(f->s, "backup", id, &engine_lease);
    struct err e = {0};
    assert_int_equal(store_task_control(f->s, id, VERB_PAUSE, "node-1", NULL, &e), 0);
    assert_int_equal(store_task_control(f->s, id, VERB_RESUME, "node-1", NULL, &e), 0);
    json_t *steps = claim(f->s, "w1", "backup", LEASE_MS);
    assert_int_equal(json_array_size(steps), 0); /* the wait ended with the pause */
    json_decref(steps);
    struct task_claim c;
    assert_int_equal(store_task_claim(f->s, "node-1", LEASE_MS, &c, &e), 0);
    assert_string_equal(c.id, id);
    struct remote_handover h = {.id = id,
                                .lease_no = c.lease_no - 1, /* stale */
                                .node = "node-1",
                                .kind = "backup",
                                .phase = "do"};
    assert_int_equal(store_remote_handover(f->s, &h, &e), ERR_CONFLICT);
}

#define CONTRACT(X)                                                                                \
    X(test_handed_over_task_goes_to_workers_of_its_kind_only)                                      \
    X(test_report_is_taken_by_the_engine_once)                                                     \
    X(test_expired_lease_is_claimed_again_and_the_old_token_is_refused)                            \
    X(test_kill_fences_out_the_worker)                                                             \
    X(test_pause_of_a_waiting_task_hands_it_back_to_the_engine)
#define ON_SQLITE(name)    cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)        cmocka_unit_test_setup_teardown(name, setup_pg, teardown),
#define ON_PG_UPDATE(name) cmocka_unit_test_setup_teardown(name, setup_pg_update, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest pg[] = {CONTRACT(ON_PG)};
    const struct CMUnitTest pg_update[] = {CONTRACT(ON_PG_UPDATE)};
    return STORE_FIXTURE_RUN_CLAIMS("test_workers: the postgres groups", sqlite, pg, pg_update);
}
