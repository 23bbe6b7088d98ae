/* Unit tests: the store's webhook outbox (store.h, struct webhook and below): every state change
 * enqueues one delivery per matching subscription in its own transaction (the engine's batch
 * claim included), claims keep a task's deliveries in order and bound those in flight per
 * subscription, and an attempt is recorded only under the lease that made it. Run on SQLite,
 * then on PostgreSQL with each claim statement (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/timefmt.h"
#include "store/store.h"

#include "store_fixture.h"

#define UIN      "100000000001"
#define LEASE_MS 30000

static int setup_with(void **state, bool pg, const char *opts)
{
    return store_fixture_open(state, "test_store_webhooks", pg, opts);
}

static int setup(void **state) { return setup_with(state, false, NULL); }
static int setup_pg(void **state) { return setup_with(state, true, ""); }
static int setup_pg_update(void **state) { return setup_with(state, true, "?claim=update"); }
static int teardown(void **state) { return store_fixture_close(state); }

static void subscribe(struct store *s, const char *id, const char *events, const char *product)
{
    struct webhook w = {.created_ms = time_now_ms()};
    snprintf(w.id, sizeof w.id, "%s", id);
    snprintf(w.url, sizeof w.url, "http://127.0.0.1:9/%s", id);
    snprintf(w.secret, sizeof w.secret, "secret-of-%s", id);
    snprintf(w.events, sizeof w.events, "%s", events);
    snprintf(w.product, sizeof w.product, "%s", product);
    struct err e = {0};
    assert_int_equal(store_webhook_create(s, &w, &e), 0);
}

static void make_task(struct store *s, const char *product, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{}}]", "name", "n", "do");
    json_object_set_new(json_object_get(json_array_get(steps, 0), "do"), "noop", json_object());
    struct task_new t = {.product = product,
                         .region = "ap-guangzhou",
                         .uin = UIN,
                         .type = "Hooked",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
}

static void move(struct store *s, const char *id, enum task_state from, enum task_state to)
{
    struct task_move m = {.id = id, .expect = from, .to = to, .node = "node-1", .info = "said"};
    struct err e = {0};
    int rc = store_task_move(s, &m, &e);
    if (rc)
        fprintf(stderr, "task_move: %s\n", e.msg);
    assert_int_equal(rc, 0);
}

static size_t claim(struct store *s, const char *node, int max, int per_webhook,
                    struct webhook_delivery **out)
{
    struct delivery_claim_req r = {.node = node,
                                   .now_ms = time_now_ms(),
                                   .lease_ms = LEASE_MS,
                                   .max = max,
                                   .per_webhook = per_webhook};
    size_t n = 0;
    struct err e = {0};
    int rc = store_delivery_claim(s, &r, out, &n, &e);
    if (rc)
        fprintf(stderr, "delivery_claim: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return n;
}

static int finish(struct store *s, const struct webhook_delivery *d, const char *node,
                  bool delivered)
{
    struct delivery_result r = {.id = d->id,
                                .node = node,
                                .attempt = d->attempt,
                                .delivered = delivered,
                                .http_status = delivered ? 200 : 503,
                                .error = delivered ? "" : "HTTP 503",
                                .now_ms = time_now_ms(),
                                .next_ms = time_now_ms(),
                                .took_ms = 3};
    struct err e = {0};
    return store_delivery_finish(s, &r, &e);
}

static const struct webhook_delivery *find(const struct webhook_delivery *ds, size_t n,
                                           const char *hook, const char *task)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ds[i].webhook_id, hook) == 0 && strcmp(ds[i].task_id, task) == 0)
            return &ds[i];
    return NULL;
}

static void test_state_changes_enqueue_for_matching_subscriptions_in_order(void **state)
{
    struct store_fixture *f = *state;
    subscribe(f->s, "wh-final-cdb", "final", "cdb");
    subscribe(f->s, "wh-all", "transition", "");
    char a[STORE_ID_MAX], m[STORE_ID_MAX];
    make_task(f->s, "cdb", a);
    make_task(f->s, "mongodb", m);
    move(f->s, a, TASK_INITIAL, TASK_RUNNING);
    move(f->s, a, TASK_RUNNING, TASK_SUCCESS);
    move(f->s, m, TASK_INITIAL, TASK_RUNNING);
    move(f->s, m, TASK_RUNNING, TASK_FAILED);

    /* One at a time per (subscription, task): each task's creation first, and cdb's final. */
    struct webhook_delivery *ds;
    size_t n = claim(f->s, "node-1", 32, 4, &ds);
    assert_int_equal(n, 3);
    const struct webhook_delivery *fa = find(ds, n, "wh-final-cdb", a);
    assert_non_null(fa);
    assert_int_equal(fa->state, TASK_SUCCESS);
    assert_string_equal(fa->event, "final");
    assert_string_equal(fa->secret, "secret-of-wh-final-cdb");
    assert_string_equal(fa->url, "http://127.0.0.1:9/wh-final-cdb");
    assert_string_equal(fa->info, "said");
    assert_string_equal(fa->uin, UIN);
    assert_int_equal(fa->attempt, 1);
    assert_null(find(ds, n, "wh-final-cdb", m)); /* another product */
    const struct webhook_delivery *ia = find(ds, n, "wh-all", a);
    assert_non_null(ia);
    assert_int_equal(ia->state, TASK_INITIAL);
    assert_string_equal(ia->event, "transition");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(finish(f->s, &ds[i], "node-1", true), 0);
    free(ds);

    enum task_state want[] = {TASK_RUNNING, TASK_SUCCESS};
    for (int step = 0; step < 2; step++) {
        n = claim(f->s, "node-1", 32, 4, &ds);
        assert_int_equal(n, 2); /* the next state of each task, for wh-all */
        assert_int_equal(find(ds, n, "wh-all", a)->state, want[step]);
        assert_int_equal(find(ds, n, "wh-all", m)->state, step == 0 ? TASK_RUNNING : TASK_FAILED);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(finish(f->s, &ds[i], "node-1", true), 0);
        free(ds);
    }
    assert_int_equal(claim(f->s, "node-1", 32, 4, &ds), 0);
    json_t *hook;
    struct err e = {0};
    assert_int_equal(store_webhook_get(f->s, "wh-all", &hook, &e), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(hook, "deliveries"), "delivered")), 6);
    assert_null(json_object_get(hook, "secret"));
    json_decref(hook);
}

static void test_engine_claims_enqueue_the_start(void **state)
{
    struct store_fixture *f = *state;
    subscribe(f->s, "wh-all", "transition", "");
    char a[STORE_ID_MAX];
    make_task(f->s, "cdb", a);
    struct task_claim cl[4];
    size_t nc = 0;
    struct err e = {0};
    assert_int_equal(store_task_claim_batch(f->s, "node-1", LEASE_MS, NULL, 4, cl, &nc, &e), 0);
    assert_int_equal(nc, 1);
    json_t *list;
    assert_int_equal(store_webhook_deliveries(f->s, "wh-all", a, 10, &list, &e), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "task_state")),
                        "running");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "task_state")),
                        "initial");
    json_decref(list);
}

static void test_in_flight_is_bounded_per_subscription_across_nodes(void **state)
{
    struct store_fixture *f = *state;
    subscribe(f->s, "wh-final", "final", "");
    char ids[6][STORE_ID_MAX];
    for (int i = 0; i < 6; i++) {
        make_task(f->s, "cdb", ids[i]);
        move(f->s, ids[i], TASK_INITIAL, TASK_REMOVED);
    }
    struct webhook_delivery *ds, *more;
    assert_int_equal(claim(f->s, "node-1", 32, 4, &ds), 4);
    assert_int_equal(claim(f->s, "node-2", 32, 4, &more), 0);
    assert_int_equal(finish(f->s, &ds[0], "node-1", true), 0);
    assert_int_equal(claim(f->s, "node-2", 32, 4, &more), 1);
    free(more);
    free(ds);
}

static void test_attempts_are_fenced_by_their_lease(void **state)
{
    struct store_fixture *f = *state;
    subscribe(f->s, "wh-final", "final", "");
    char a[STORE_ID_MAX];
    make_task(f->s, "cdb", a);
    move(f->s, a, TASK_INITIAL, TASK_REMOVED);
    struct webhook_delivery *ds;
    assert_int_equal(claim(f->s, "node-1", 8, 4, &ds), 1);
    struct webhook_delivery d = ds[0];
    free(ds);
    assert_int_equal(finish(f->s, &d, "node-2", true), ERR_CONFLICT); /* not its lease */
    assert_int_equal(finish(f->s, &d, "node-1", false), 0);           /* refused: retried */
    assert_int_equal(finish(f->s, &d, "node-1", true), ERR_CONFLICT); /* that attempt is over */

    assert_int_equal(claim(f->s, "node-1", 8, 4, &ds), 1);
    assert_int_equal(ds[0].attempt, 2);
    struct err e = {0};
    assert_int_equal(store_delivery_release_node(f->s, "node-1", &e), 0); /* node restarts */
    struct webhook_delivery old = ds[0];
    free(ds);
    assert_int_equal(claim(f->s, "node-1", 8, 4, &ds), 1);
    assert_int_equal(ds[0].attempt, 3);
    assert_int_equal(finish(f->s, &old, "node-1", true), ERR_CONFLICT); /* the released one */
    assert_int_equal(finish(f->s, &ds[0], "node-1", true), 0);
    free(ds);

    json_t *list;
    assert_int_equal(store_webhook_deliveries(f->s, "wh-final", NULL, 10, &list, &e), 0);
    json_t *row = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "delivered");
    assert_int_equal(json_integer_value(json_object_get(row, "attempts")), 3);
    assert_int_equal(json_integer_value(json_object_get(row, "last_status")), 200);
    json_t *log = json_object_get(row, "attempt_log");
    assert_int_equal(json_array_size(log), 2); /* the released attempt left no answer */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(log, 0), "status")), 503);
    json_decref(list);

    assert_int_equal(store_webhook_delete(f->s, "wh-final", &e), 0);
    assert_int_equal(store_webhook_delete(f->s, "wh-final", &e), ERR_NOT_FOUND);
    assert_int_equal(store_webhook_deliveries(f->s, "wh-final", NULL, 10, &list, &e),
                     ERR_NOT_FOUND);
}

static void test_an_expired_lease_is_taken_over_and_fences_out_its_owner(void **state)
{
    struct store_fixture *f = *state;
    subscribe(f->s, "wh-final", "final", "");
    char a[STORE_ID_MAX];
    make_task(f->s, "cdb", a);
    move(f->s, a, TASK_INITIAL, TASK_REMOVED);
    struct delivery_claim_req r = {
        .node = "node-1", .now_ms = time_now_ms(), .lease_ms = 1, .max = 8, .per_webhook = 4};
    struct webhook_delivery *ds, *taken;
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(store_delivery_claim(f->s, &r, &ds, &n, &e), 0);
    assert_int_equal(n, 1);
    usleep(20 * 1000); /* node-1 stalls past its lease */
    assert_int_equal(claim(f->s, "node-2", 8, 4, &taken), 1);
    assert_int_equal(taken[0].id, ds[0].id);
    assert_int_equal(taken[0].attempt, 2);
    assert_int_equal(finish(f->s, &ds[0], "node-1", true), ERR_CONFLICT);
    assert_int_equal(finish(f->s, &taken[0], "node-2", true), 0);
    free(ds);
    free(taken);
}

/* SQLite runs no enqueue while no webhook can exist (store_sqlite_db.c); a subscription made
 * before the store was opened again must still be found at its first transition. */
static void test_a_subscription_from_before_a_reopen_gets_deliveries(void **state)
{
    struct store_fixture *f = *state;
    char before[STORE_ID_MAX], after[STORE_ID_MAX];
    make_task(f->s, "cdb", before); /* no subscription yet: nothing is enqueued for it */
    subscribe(f->s, "wh-all", "transition", "");
    store_close(f->s);
    struct err e = {0};
    assert_int_equal(store_open(NULL, f->dir, &f->s, &e), 0);
    make_task(f->s, "cdb", after);
    struct webhook_delivery *ds;
    size_t n = claim(f->s, "node-1", 32, 4, &ds);
    assert_int_equal(n, 1);
    assert_string_equal(ds[0].task_id, after);
    assert_int_equal(ds[0].state, TASK_INITIAL);
    free(ds);
}

#define CONTRACT(X)                                                                                \
    X(test_state_changes_enqueue_for_matching_subscriptions_in_order)                              \
    X(test_an_expired_lease_is_taken_over_and_fences_out_its_owner)                                \
    X(test_engine_claims_enqueue_the_start)                                                        \
    X(test_in_flight_is_bounded_per_subscription_across_nodes)                                     \
    X(test_attempts_are_fenced_by_their_lease)
#define ON_SQLITE(name)    cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)        cmocka_unit_test_setup_teardown(name, setup_pg, teardown),
#define ON_PG_UPDATE(name) cmocka_unit_test_setup_teardown(name, setup_pg_update, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {
        CONTRACT(ON_SQLITE) ON_SQLITE(test_a_subscription_from_before_a_reopen_gets_deliveries)};
    const struct CMUnitTest pg[] = {CONTRACT(ON_PG)};
    const struct CMUnitTest pg_update[] = {CONTRACT(ON_PG_UPDATE)};
    return STORE_FIXTURE_RUN_CLAIMS("test_store_webhooks: the postgres groups", sqlite, pg,
                                    pg_update);
}
