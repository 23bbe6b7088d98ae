/* Unit tests for task_create_batch: n tasks in one transaction, all or none, in the order given,
 * with their Idempotency-Keys; one contract run on SQLite and again on PostgreSQL
 * (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define CONTRACT(X)                                                                                \
    X(test_batch_creates_every_task_in_order)                                                      \
    X(test_batch_with_a_bad_item_creates_nothing_and_names_it)                                     \
    X(test_batch_failing_inside_its_transaction_leaves_nothing)                                    \
    X(test_batch_retried_with_its_keys_replays_every_item)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    return STORE_FIXTURE_RUN("test_store_batch: the postgres group", sqlite, postgres);
}
