/* Unit tests for retention (store_purge) and Idempotency-Keys on task creation: one contract run
 * on the embedded SQLite backend and again on PostgreSQL (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fixture_open(state, "test_purge", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_purge", true, ""); }
static int teardown(void **state) { return store_fixture_close(state); }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Creates a one-step task (with idem, when given); returns the store's rc. */
static int create(struct store *s, const char *product, struct task_idem *idem,
                  char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "one", "do", "exec", "/bin/true");
    struct task_new t = {.product = product,
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .steps = steps,
                         .node = "node-1",
                         .idem = idem};
    struct err e = {0};
    int rc = store_task_create(s, &t, id, &e);
    json_decref(steps);
    return rc;
}

static void make_task(struct store *s, const char *product, char id[STORE_ID_MAX])
{
    assert_int_equal(create(s, product, NULL, id), 0);
}

static void move(struct store *s, const char *id, enum task_state from, enum task_state to)
{
    struct task_move m = {.id = id, .expect = from, .to = to, .node = "node-1"};
    struct err e = {0};
    assert_int_equal(store_task_move(s, &m, &e), 0);
}

static void finish(struct store *s, const char *id, enum task_state to)
{
    move(s, id, TASK_INITIAL, TASK_RUNNING);
    move(s, id, TASK_RUNNING, to);
}

static bool exists(struct store *s, const char *product, const char *id)
{
    struct task_summary sum;
    struct err e = {0};
    int rc = store_task_summary(s, product, id, &sum, &e);
    assert_true(rc == 0 || rc == ERR_NOT_FOUND);
    return rc == 0;
}

static struct purge_result purge(struct store *s, int64_t tasks_before, int64_t keys_before,
                                 size_t max)
{
    struct purge_req r = {
        .tasks_before_ms = tasks_before, .keys_before_ms = keys_before, .max = max};
    struct purge_result out;
    struct err e = {0};
    int rc = store_purge(s, &r, &out, &e);
    if (rc != 0)
        fprintf(stderr, "store_purge: %s\n", e.msg);
    assert_int_equal(rc, 0);
    return out;
}

static bool listed(const struct purge_result *r, const char *id)
{
    for (size_t i = 0; i < r->n_tasks; i++)
        if (strcmp(r->ids[i], id) == 0)
            return true;
    return false;
}

static void test_purge_removes_finished_tasks_and_keeps_unfinished_ones(void **state)
{
    struct store_fixture *f = *state;
    char done[STORE_ID_MAX], failed[STORE_ID_MAX], running[STORE_ID_MAX], fresh[STORE_ID_MAX];
    make_task(f->s, "cdb", done);
    make_task(f->s, "mongodb", failed);
    make_task(f->s, "cdb", running);
    make_task(f->s, "cdb", fresh);
    finish(f->s, done, TASK_SUCCESS);
    finish(f->s, failed, TASK_FAILED);
    move(f->s, running, TASK_INITIAL, TASK_RUNNING);
    struct step_pgroup g = {.node = "node-1", .pgid = 4242, .boot_id = "b", .start_ticks = 1};
    snprintf(g.task_id, sizeof g.task_id, "%s", done);
    struct err e = {0};
    assert_int_equal(store_pgroup_record(f->s, &g, &e), 0);

    struct purge_result r = purge(f->s, now_ms() + 1000, 0, 500);
    assert_int_equal(r.n_tasks, 2);
    assert_true(listed(&r, done) && listed(&r, failed));
    free(r.ids);
    assert_false(exists(f->s, "cdb", done));
    assert_false(exists(f->s, "mongodb", failed));
    assert_true(exists(f->s, "cdb", running));
    assert_true(exists(f->s, "cdb", fresh));
    struct task *t = NULL;
    assert_int_equal(store_task_get(f->s, done, TASK_READ_ALL, &t, &e), ERR_NOT_FOUND);
    struct step_pgroup *groups = NULL;
    size_t n = 99;
    assert_int_equal(store_pgroup_list(f->s, "node-1", &groups, &n, &e), 0);
    assert_int_equal(n, 0); /* the purged task's process-group record went with it */
    free(groups);
    r = purge(f->s, now_ms() + 1000, 0, 500);
    assert_int_equal(r.n_tasks, 0);
    assert_null(r.ids);
}

static void test_purge_keeps_tasks_that_ended_after_the_cutoff(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    int64_t before = now_ms();
    make_task(f->s, "cdb", id);
    usleep(5000);
    finish(f->s, id, TASK_KILLED);
    struct purge_result r = purge(f->s, before, 0, 500);
    assert_int_equal(r.n_tasks, 0);
    assert_true(exists(f->s, "cdb", id));
}

static void test_purge_takes_at_most_max_oldest_end_first(void **state)
{
    struct store_fixture *f = *state;
    char ids[3][STORE_ID_MAX];
    for (int i = 0; i < 3; i++) {
        make_task(f->s, "cdb", ids[i]);
        finish(f->s, ids[i], TASK_SUCCESS);
        usleep(3000);
    }
    struct purge_result r = purge(f->s, now_ms() + 1000, 0, 2);
    assert_int_equal(r.n_tasks, 2);
    assert_true(listed(&r, ids[0]) && listed(&r, ids[1]));
    free(r.ids);
    assert_true(exists(f->s, "cdb", ids[2]));
    r = purge(f->s, now_ms() + 1000, 0, 2);
    assert_int_equal(r.n_tasks, 1);
    assert_string_equal(r.ids[0], ids[2]);
    free(r.ids);
}

static struct task_idem key(const char *k, const char *hash, int64_t ttl_ms)
{
    return (struct task_idem){.scope = "tok-1", .key = k, .body_hash = hash, .ttl_ms = ttl_ms};
}

static void test_idempotency_key_replays_refuses_and_expires(void **state)
{
    struct store_fixture *f = *state;
    char first[STORE_ID_MAX], again[STORE_ID_MAX], later[STORE_ID_MAX], other[STORE_ID_MAX];
    struct task_idem k = key("k1", "aaaa", 3600000);
    assert_int_equal(create(f->s, "mongodb", &k, first), 0);
    assert_false(k.replayed);
    assert_int_equal(create(f->s, "mongodb", &k, again), 0);
    assert_true(k.replayed);
    assert_string_equal(again, first);
    struct task_idem changed = key("k1", "bbbb", 3600000);
    assert_int_equal(create(f->s, "mongodb", &changed, other), ERR_CONFLICT);
    struct task_idem elsewhere = key("k1", "bbbb", 3600000);
    elsewhere.scope = "tok-2";
    assert_int_equal(create(f->s, "mongodb", &elsewhere, other), 0);
    assert_false(elsewhere.replayed);
    assert_string_not_equal(other, first);
    /* Past its TTL the key counts as absent, whatever the body: a new task takes it. */
    usleep(20000);
    struct task_idem expired = key("k1", "cccc", 10);
    assert_int_equal(create(f->s, "mongodb", &expired, later), 0);
    assert_false(expired.replayed);
    assert_string_not_equal(later, first);
    struct task_idem now_held = key("k1", "cccc", 3600000);
    assert_int_equal(create(f->s, "mongodb", &now_held, again), 0);
    assert_true(now_held.replayed);
    assert_string_equal(again, later);
}

static void test_purge_removes_expired_keys_and_the_keys_of_purged_tasks(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], again[STORE_ID_MAX];
    struct task_idem ka = key("ka", "aaaa", 3600000), kb = key("kb", "bbbb", 3600000);
    assert_int_equal(create(f->s, "cdb", &ka, a), 0);
    assert_int_equal(create(f->s, "cdb", &kb, b), 0);
    struct purge_result r = purge(f->s, 0, now_ms() + 1000, 500);
    assert_int_equal(r.n_tasks, 0);
    assert_int_equal(r.n_keys, 2);
    assert_int_equal(create(f->s, "cdb", &ka, again), 0);
    assert_false(ka.replayed); /* the key is gone: a new task */
    assert_string_not_equal(again, a);
    /* A purged task takes its key along, so the key never answers an id that is gone. */
    finish(f->s, again, TASK_SUCCESS);
    r = purge(f->s, now_ms() + 1000, 0, 500);
    assert_int_equal(r.n_tasks, 1);
    free(r.ids);
    char third[STORE_ID_MAX];
    assert_int_equal(create(f->s, "cdb", &ka, third), 0);
    assert_false(ka.replayed);
    assert_true(exists(f->s, "cdb", third));
}

#define CONTRACT(X)                                                                                \
    X(test_purge_removes_finished_tasks_and_keeps_unfinished_ones)                                 \
    X(test_purge_keeps_tasks_that_ended_after_the_cutoff)                                          \
    X(test_purge_takes_at_most_max_oldest_end_first)                                               \
    X(test_idempotency_key_replays_refuses_and_expires)                                            \
    X(test_purge_removes_expired_keys_and_the_keys_of_purged_tasks)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    return STORE_FIXTURE_RUN("test_store_purge: the postgres group", sqlite, postgres);
}
