/* Unit tests for task_create and task_create_batch: what a creation writes (row, steps, input,
 * driver, the creation event), the Idempotency-Key's replay and conflict, and a batch's n tasks
 * in one transaction, all or none, in the order given; one contract run on SQLite and again on
 * PostgreSQL (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/ids.h"
#include "store/store.h"
#include "task/task_model.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fixture_open(state, "test_batch", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_batch", true, ""); }
static int teardown(void **state) { return store_fixture_close(state); }

#define N 5

struct batch {
    struct task_new t[N];
    struct task_idem idem[N];
    char key[N][32];
    char type[N][32];
    json_t *steps;
    char ids[N][STORE_ID_MAX];
};

/* n one-step tasks of type PREFIX-i; with key, item i has key KEY-i and the hash given. */
static void batch_init(struct batch *b, const char *product, const char *prefix, const char *key,
                       const char *hash)
{
    memset(b, 0, sizeof *b);
    b->steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "one", "do", "exec", "/bin/true");
    for (size_t i = 0; i < N; i++) {
        snprintf(b->type[i], sizeof b->type[i], "%s-%zu", prefix, i);
        b->t[i] = (struct task_new){.product = product,
                                    .region = "ap-guangzhou",
                                    .uin = "100000000001",
                                    .type = b->type[i],
                                    .steps = b->steps,
                                    .node = "node-1"};
        if (key) {
            snprintf(b->key[i], sizeof b->key[i], "%s-%zu", key, i);
            b->idem[i] = (struct task_idem){
                .scope = "tok-1", .key = b->key[i], .body_hash = hash, .ttl_ms = 3600000};
            b->t[i].idem = &b->idem[i];
        }
    }
}

static int batch_create(struct store *s, struct batch *b, struct err *e)
{
    return store_task_create_batch(s, b->t, N, b->ids, e);
}

static int64_t count_tasks(struct store *s)
{
    struct task_filter f = {.state = -1, .limit = 1};
    struct task_list l = {0};
    int64_t total = -1;
    struct err e = {0};
    assert_int_equal(store_task_list(s, &f, &l, &total, &e), 0);
    task_list_clear(&l);
    return total;
}

static void test_batch_creates_every_task_in_order(void **state)
{
    struct store_fixture *f = *state;
    struct batch b;
    batch_init(&b, "cdb", "Ordered", NULL, NULL);
    struct err e = {0};
    assert_int_equal(batch_create(f->s, &b, &e), 0);
    assert_int_equal(count_tasks(f->s), N);
    for (size_t i = 0; i < N; i++) {
        struct task_summary sum;
        assert_int_equal(store_task_summary(f->s, "cdb", b.ids[i], &sum, &e), 0);
        assert_int_equal(sum.state, TASK_INITIAL);
        struct task *t = NULL;
        assert_int_equal(store_task_get(f->s, b.ids[i], TASK_READ_ALL, &t, &e), 0);
        assert_string_equal(t->type, b.type[i]);
        assert_int_equal(t->n_steps, 1);
        assert_true(t->n_events >= 1);
        task_free(t);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(b.ids[i], b.ids[j]);
    }
    json_decref(b.steps);
}

static void test_batch_with_a_bad_item_creates_nothing_and_names_it(void **state)
{
    struct store_fixture *f = *state;
    struct batch b;
    batch_init(&b, "mongodb", "Bad", NULL, NULL);
    b.t[3].on_failure = "explode";
    struct err e = {0};
    assert_int_equal(batch_create(f->s, &b, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "tasks[3]: "));
    assert_non_null(strstr(e.msg, "on_failure"));
    assert_int_equal(count_tasks(f->s), 0);
    for (size_t i = 0; i < N; i++)
        assert_string_equal(b.ids[i], "");
    json_decref(b.steps);
}

/* Item 2's key was taken by another body: the batch's transaction has inserted items 0 and 1
 * when item 2 conflicts, and all of it is undone. */
static void test_batch_failing_inside_its_transaction_leaves_nothing(void **state)
{
    struct store_fixture *f = *state;
    struct batch first;
    batch_init(&first, "cdb", "First", "k", "hash-a");
    struct err e = {0};
    assert_int_equal(store_task_create(f->s, &first.t[2], first.ids[2], &e), 0);
    assert_int_equal(count_tasks(f->s), 1);
    struct batch b;
    batch_init(&b, "cdb", "Second", "k", "hash-b");
    assert_int_equal(batch_create(f->s, &b, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "tasks[2]: "));
    assert_int_equal(count_tasks(f->s), 1);
    /* The keys of items 0 and 1 went back with it: a retry without item 2's key creates all. */
    b.t[2].idem = NULL;
    assert_int_equal(batch_create(f->s, &b, &e), 0);
    assert_int_equal(count_tasks(f->s), 1 + N);
    json_decref(first.steps);
    json_decref(b.steps);
}

static void test_batch_retried_with_its_keys_replays_every_item(void **state)
{
    struct store_fixture *f = *state;
    struct batch b, again;
    batch_init(&b, "mongodb", "Replay", "r", "hash-1");
    batch_init(&again, "mongodb", "Replay", "r", "hash-1");
    struct err e = {0};
    assert_int_equal(batch_create(f->s, &b, &e), 0);
    for (size_t i = 0; i < N; i++)
        assert_false(b.idem[i].replayed);
    assert_int_equal(batch_create(f->s, &again, &e), 0);
    for (size_t i = 0; i < N; i++) {
        assert_true(again.idem[i].replayed);
        assert_string_equal(again.ids[i], b.ids[i]);
    }
    assert_int_equal(count_tasks(f->s), N);
    json_decref(b.steps);
    json_decref(again.steps);
}

/* Two steps: the first's action is {first_do: {}} (noop, sim, or remote without a kind: an
 * external driver), without undo, with retries and timeout; the second with an undo. */
static json_t *two_steps(const char *first_do)
{
    return json_pack("[{s:s, s:{s:{}}, s:n, s:i, s:i}, {s:s, s:{s:[s]}, s:{s:[s]}}]", "name",
                     "first", "do", first_do, "undo", "retries", 2, "timeout_s", 60, "name",
                     "second", "do", "exec", "/bin/true", "undo", "exec", "/bin/false");
}

static struct task_new full_task(const char *product, json_t *steps, json_t *input)
{
    return (struct task_new){.product = product,
                             .region = "ap-guangzhou",
                             .uin = "100000000001",
                             .instance_id = "",
                             .type = "CreateAccounts",
                             .steps = steps,
                             .node = "node-1",
                             .input = input};
}

/* What every creation path writes: the row (no instance, on_failure pause, driver), both steps
 * as given, the input, and one event: seq 1, from none to initial, by the node, "created". */
static void assert_created(struct store *s, const char *id, const char *driver)
{
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(s, id, TASK_READ_ALL, &t, &e), 0);
    assert_string_equal(t->id, id);
    assert_string_equal(t->region, "ap-guangzhou");
    assert_string_equal(t->uin, "100000000001");
    assert_string_equal(t->type, "CreateAccounts");
    assert_null(t->instance_id);
    assert_int_equal(t->on_failure, ON_FAILURE_PAUSE);
    assert_int_equal(t->state, TASK_INITIAL);
    assert_string_equal(t->driver, driver);
    assert_int_equal(t->current_step, 0);
    assert_int_equal(t->lease_no, 0);
    assert_true(t->created_ms > 1600000000000);
    char *input = json_dumps(t->input, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(input, "{\"n\":3,\"user\":\"u1\"}");
    free(input);
    assert_int_equal(t->n_steps, 2);
    assert_string_equal(t->steps[0].name, "first");
    assert_int_equal(t->steps[0].index, 0);
    assert_true(json_is_object(t->steps[0].do_action));
    assert_true(json_is_null(t->steps[0].undo_action));
    assert_int_equal(t->steps[0].retries, 2);
    assert_int_equal(t->steps[0].timeout_s, 60);
    assert_int_equal(t->steps[0].state, STEP_PENDING);
    assert_string_equal(t->steps[1].name, "second");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(t->steps[1].undo_action, "exec"), 0)),
        "/bin/false");
    assert_int_equal(t->steps[1].retries, 0);
    assert_int_equal(t->steps[1].timeout_s, 3600);
    assert_int_equal(t->n_events, 1);
    assert_int_equal(t->events[0].seq, 1);
    assert_int_equal(t->events[0].at_ms, t->created_ms);
    assert_int_equal(t->events[0].from, -1);
    assert_int_equal(t->events[0].to, TASK_INITIAL);
    assert_string_equal(t->events[0].node, "node-1");
    assert_string_equal(t->events[0].message, "created");
    task_free(t);
}

/* Each way in: alone or in a batch, with a key or without, cdb or mongodb. */
static void test_every_creation_path_writes_the_same_rows(void **state)
{
    struct store_fixture *f = *state;
    json_t *input = json_pack("{s:s, s:i}", "user", "u1", "n", 3);
    json_t *engine = two_steps("noop"), *sim = two_steps("sim"), *external = two_steps("remote");
    json_t *steps[] = {engine, sim, external};
    const char *drivers[] = {"engine", "sim", "external"};
    struct err e = {0};
    for (int k = 0; k < 3; k++)
        for (int keyed = 0; keyed < 2; keyed++) {
            const char *product = keyed ? "mongodb" : "cdb";
            char key[32], id[STORE_ID_MAX];
            snprintf(key, sizeof key, "key-%d", k);
            struct task_idem idem = {
                .scope = "tok-1", .key = key, .body_hash = "h", .ttl_ms = 3600000};
            struct task_new t = full_task(product, steps[k], input);
            t.idem = keyed ? &idem : NULL;
            assert_int_equal(store_task_create(f->s, &t, id, &e), 0);
            assert_created(f->s, id, drivers[k]);
            struct task_new ts[2] = {t, t};
            struct task_idem idems[2] = {idem, idem};
            char keys[2][40], ids[2][STORE_ID_MAX];
            for (int i = 0; i < 2; i++) {
                snprintf(keys[i], sizeof keys[i], "batch-%d-%d", k, i);
                idems[i].key = keys[i];
                ts[i].idem = keyed ? &idems[i] : NULL;
            }
            assert_int_equal(store_task_create_batch(f->s, ts, 2, ids, &e), 0);
            for (int i = 0; i < 2; i++)
                assert_created(f->s, ids[i], drivers[k]);
            struct task *got = NULL;
            assert_int_equal(store_task_get(f->s, ids[1], 0, &got, &e), 0);
            assert_string_equal(got->driver, drivers[k]);
            assert_string_equal(got->product, product);
            task_free(got);
        }
    json_decref(input);
    json_decref(engine);
    json_decref(sim);
    json_decref(external);
}

static void test_batch_ids_keep_each_products_shape_in_creation_order(void **state)
{
    struct store_fixture *f = *state;
    struct batch b;
    batch_init(&b, "mongodb", "Mongo", NULL, NULL);
    struct err e = {0};
    assert_int_equal(batch_create(f->s, &b, &e), 0);
    for (size_t i = 0; i < N; i++) {
        char want[8];
        snprintf(want, sizeof want, "%zu", 1000 + i);
        assert_string_equal(b.ids[i], want);
    }
    json_decref(b.steps);
    batch_init(&b, "cdb", "Cdb", NULL, NULL);
    assert_int_equal(batch_create(f->s, &b, &e), 0);
    for (size_t i = 0; i < N; i++) {
        assert_true(ids_is_cdb_task(b.ids[i]));
        /* the first 12 hex digits are the creation's milliseconds */
        if (i > 0)
            assert_true(strncmp(b.ids[i - 1], b.ids[i], 13) <= 0);
    }
    json_decref(b.steps);
}

static void test_a_key_replays_its_body_and_refuses_another(void **state)
{
    struct store_fixture *f = *state;
    json_t *steps = json_pack("[{s:s, s:{s:{}}}]", "name", "one", "do", "noop");
    struct task_idem k = {
        .scope = "tok-1", .key = "create-1", .body_hash = "hash-a", .ttl_ms = 3600000};
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "T",
                         .steps = steps,
                         .node = "node-1",
                         .idem = &k};
    char first[STORE_ID_MAX], again[STORE_ID_MAX], other[STORE_ID_MAX];
    struct err e = {0};
    assert_int_equal(store_task_create(f->s, &t, first, &e), 0);
    assert_false(k.replayed);
    assert_int_equal(store_task_create(f->s, &t, again, &e), 0);
    assert_true(k.replayed);
    assert_string_equal(again, first);
    assert_int_equal(count_tasks(f->s), 1);
    k.body_hash = "hash-b";
    assert_int_equal(store_task_create(f->s, &t, again, &e), ERR_CONFLICT);
    assert_string_equal(e.msg, "Idempotency-Key \"create-1\" was used with another request body;"
                               " send the first body again, or use a new key for a new task");
    assert_string_equal(again, "");
    assert_false(k.replayed);
    assert_int_equal(count_tasks(f->s), 1);
    /* A key is its caller's: another token's same key is a new task. */
    k.scope = "tok-2";
    assert_int_equal(store_task_create(f->s, &t, other, &e), 0);
    assert_false(k.replayed);
    assert_string_not_equal(other, first);
    assert_int_equal(count_tasks(f->s), 2);
    json_decref(steps);
}

/* Past its time to live a key is free: the next body creates a task and takes the key over. */
static void test_an_expired_key_goes_to_the_next_body(void **state)
{
    struct store_fixture *f = *state;
    json_t *steps = json_pack("[{s:s, s:{s:{}}}]", "name", "one", "do", "noop");
    struct task_idem k = {.scope = "tok-1", .key = "old", .body_hash = "hash-a", .ttl_ms = 1};
    struct task_new t = {.product = "mongodb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "T",
                         .steps = steps,
                         .node = "node-1",
                         .idem = &k};
    char first[STORE_ID_MAX], second[STORE_ID_MAX], again[STORE_ID_MAX];
    struct err e = {0};
    assert_int_equal(store_task_create(f->s, &t, first, &e), 0);
    usleep(5000);
    k.body_hash = "hash-b";
    assert_int_equal(store_task_create(f->s, &t, second, &e), 0);
    assert_false(k.replayed);
    assert_string_not_equal(second, first);
    k.ttl_ms = 3600000;
    assert_int_equal(store_task_create(f->s, &t, again, &e), 0);
    assert_true(k.replayed);
    assert_string_equal(again, second);
    k.body_hash = "hash-a";
    assert_int_equal(store_task_create(f->s, &t, again, &e), ERR_CONFLICT);
    assert_int_equal(count_tasks(f->s), 2);
    json_decref(steps);
}

/* Items 1 and 3 are refused: the batch names item 1, before its transaction (a bad field) and
 * inside it (a key another body holds). */
static void test_batch_names_the_first_refused_item(void **state)
{
    struct store_fixture *f = *state;
    struct batch b;
    batch_init(&b, "cdb", "Two", NULL, NULL);
    b.t[1].on_failure = "explode";
    b.t[3].on_failure = "never";
    struct err e = {0};
    assert_int_equal(batch_create(f->s, &b, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_string_equal(e.msg, "tasks[1]: on_failure: expected \"pause\", \"undo\" or \"fail\","
                               " got \"explode\"");
    json_decref(b.steps);

    struct batch taken;
    batch_init(&taken, "cdb", "Taken", "k", "hash-a");
    assert_int_equal(store_task_create(f->s, &taken.t[1], taken.ids[1], &e), 0);
    assert_int_equal(store_task_create(f->s, &taken.t[3], taken.ids[3], &e), 0);
    batch_init(&b, "cdb", "Other", "k", "hash-b");
    assert_int_equal(batch_create(f->s, &b, &e), ERR_CONFLICT);
    assert_string_equal(e.msg, "tasks[1]: Idempotency-Key \"k-1\" was used with another request"
                               " body; send the first body again, or use a new key for a new task");
    for (size_t i = 0; i < N; i++)
        assert_string_equal(b.ids[i], "");
    assert_int_equal(count_tasks(f->s), 2);
    json_decref(taken.steps);
    json_decref(b.steps);
}

/* An item whose key was used with its body replays that task; the others are created. */
static void test_batch_replays_the_items_seen_and_creates_the_rest(void **state)
{
    struct store_fixture *f = *state;
    struct batch seen, b;
    batch_init(&seen, "mongodb", "Seen", "s", "hash-1");
    struct err e = {0};
    assert_int_equal(store_task_create(f->s, &seen.t[2], seen.ids[2], &e), 0);
    batch_init(&b, "mongodb", "Seen", "s", "hash-1");
    assert_int_equal(batch_create(f->s, &b, &e), 0);
    for (size_t i = 0; i < N; i++)
        assert_int_equal(b.idem[i].replayed, i == 2);
    assert_string_equal(b.ids[2], seen.ids[2]);
    assert_string_equal(b.ids[2], "1000");
    assert_string_equal(b.ids[0], "1001");
    assert_string_equal(b.ids[4], "1004");
    assert_int_equal(count_tasks(f->s), N);
    json_decref(seen.steps);
    json_decref(b.steps);
}

#define CONTRACT(X)                                                                                \
    X(test_batch_creates_every_task_in_order)                                                      \
    X(test_batch_with_a_bad_item_creates_nothing_and_names_it)                                     \
    X(test_batch_failing_inside_its_transaction_leaves_nothing)                                    \
    X(test_batch_retried_with_its_keys_replays_every_item)                                         \
    X(test_every_creation_path_writes_the_same_rows)                                               \
    X(test_batch_ids_keep_each_products_shape_in_creation_order)                                   \
    X(test_a_key_replays_its_body_and_refuses_another)                                             \
    X(test_an_expired_key_goes_to_the_next_body)                                                   \
    X(test_batch_names_the_first_refused_item)                                                     \
    X(test_batch_replays_the_items_seen_and_creates_the_rest)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    return STORE_FIXTURE_RUN("test_store_batch: the postgres group", sqlite, postgres);
}
