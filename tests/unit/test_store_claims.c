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

#include "common/secretbox.h"
#include "store/store.h"
#include "task/task_json.h"

#include "store_fixture.h"

#define LEASE_MS   60000
#define CLAIM_READ (TASK_READ_STEPS | TASK_READ_LAST_EVENT)

/* With a key, the mysql steps' args are sealed at rest (store_plan.h): a read opens them. */
static int open_with_key(void **state, bool pg, const char *opts)
{
    static const uint8_t key[SECRETBOX_KEY_LEN] = {7};
    secretbox_set_key(key);
    return store_fixture_open(state, "test_claims", pg, opts);
}
static int setup(void **state) { return open_with_key(state, false, NULL); }
static int setup_pg(void **state) { return open_with_key(state, true, ""); }
static int setup_pg_update(void **state) { return open_with_key(state, true, "?claim=update"); }
static int teardown(void **state)
{
    secretbox_forget();
    return store_fixture_close(state);
}

/* Whether the store hands claimed tasks over: SQLite's one writer only. */
static bool hands_over(const struct store_fixture *f) { return f->db[0] == '\0'; }

/* A three-step task, no instance (so a batch may take several); its mysql step's args are
 * sealed at rest, so a handed task must have them opened as store_task_get does. */
static void make_task(struct store *s, char id[STORE_ID_MAX])
{
    json_t *steps =
        json_pack("[{s:s, s:{s:[s]}, s:{s:[s]}}, {s:s, s:{s:[ss]}},"
                  " {s:s, s:{s:{s:s, s:[s, s]}}}]",
                  "name", "one", "do", "exec", "/bin/true", "undo", "exec", "/bin/true", "name",
                  "two", "do", "exec", "/bin/echo", "hi", "name", "create", "do", "mysql", "sql",
                  "CREATE USER {0:str}@{1:str}", "args", "bob", "%");
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

/* The mysql step's first arg as read ("bob" once opened). */
static const char *mysql_arg0(const struct task *t)
{
    const struct task_step *st = task_step_at(t, 2);
    assert_non_null(st);
    json_t *args = json_object_get(json_object_get(st->do_action, "mysql"), "args");
    return json_string_value(json_array_get(args, 0));
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

/* The task as the admin view renders it, row, steps and events, keys sorted. */
static char *dump(const struct task *t)
{
    json_t *j = task_json(t, NULL);
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return s;
}

static void assert_same_task(const struct task *a, const struct task *b)
{
    char *da = dump(a), *db = dump(b);
    assert_string_equal(da, db);
    free(da);
    free(db);
    assert_int_equal(a->has_steps, b->has_steps);
    assert_int_equal(a->n_steps, b->n_steps);
    assert_int_equal(a->n_events, b->n_events);
    const struct task_event *ea = task_last_event(a), *eb = task_last_event(b);
    assert_non_null(ea);
    assert_non_null(eb);
    assert_int_equal(ea->seq, eb->seq);
    assert_int_equal(ea->at_ms, eb->at_ms);
    assert_int_equal(ea->from, eb->from);
    assert_int_equal(ea->to, eb->to);
    assert_string_equal(ea->node, eb->node);
    assert_string_equal(ea->message, eb->message);
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
    assert_int_equal(t->n_steps, 3);
    assert_true(t->has_steps);
    assert_string_equal(mysql_arg0(t), "bob");
    assert_int_equal(t->n_events, 1);
    const struct task_event *ev = task_last_event(t);
    assert_int_equal(ev->from, TASK_INITIAL);
    assert_int_equal(ev->to, TASK_RUNNING);
    assert_string_equal(ev->node, "node-a");
    assert_string_equal(ev->message, "started; lease 1");
    assert_true(ev->at_ms >= t->created_ms);
    task_free(t);
}

/* The plain batch claim hands nothing over on any store: its callers have nothing to free. */
static void test_claim_batch_without_read_hands_no_task(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    make_task(f->s, a);
    make_task(f->s, b);
    struct task_claim got[4];
    memset(got, 0xab, sizeof got); /* the claim must set each .task, not leave the caller's */
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(store_task_claim_batch(f->s, "node-a", LEASE_MS, NULL, 4, got, &n, &e), 0);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++)
        assert_null(got[i].task);
}

/* Asked, SQLite hands each claimed task over equal to what store_task_get reads right after the
 * claim; PostgreSQL (each statement a round trip) hands none, and the caller reads. */
static void test_claim_batch_read_hands_the_task_store_task_get_reads(void **state)
{
    struct store_fixture *f = *state;
    char ids[3][STORE_ID_MAX];
    for (int i = 0; i < 3; i++)
        make_task(f->s, ids[i]);
    struct task_claim got[4];
    memset(got, 0xab, sizeof got);
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(
        store_task_claim_batch_read(f->s, "node-a", LEASE_MS, NULL, 4, CLAIM_READ, got, &n, &e), 0);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        if (!hands_over(f)) {
            assert_null(got[i].task);
            continue;
        }
        assert_non_null(got[i].task);
        struct task *read = get(f->s, got[i].id, CLAIM_READ);
        assert_same_task(got[i].task, read);
        assert_string_equal(mysql_arg0(got[i].task), "bob");
        assert_int_equal(got[i].task->lease_no, got[i].lease_no);
        assert_int_equal(got[i].task->state, TASK_RUNNING);
        task_free(read);
    }
    store_task_claims_free(got, n);
    for (size_t i = 0; i < n; i++)
        assert_null(got[i].task);
}

/* A takeover's handed task carries the takeover's lease and event ("lease of X expired"). */
static void test_claim_batch_read_of_a_takeover_has_its_lease_and_event(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    make_task(f->s, id);
    struct task_claim got[1];
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(store_task_claim_batch(f->s, "node-a", 1, NULL, 1, got, &n, &e), 0);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL); /* node-a's 1 ms lease runs out */
    assert_int_equal(
        store_task_claim_batch_read(f->s, "node-b", LEASE_MS, NULL, 1, CLAIM_READ, got, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_true(got[0].taken_over);
    assert_int_equal(got[0].lease_no, 2);
    struct task *read = get(f->s, id, CLAIM_READ);
    assert_string_equal(task_last_event(read)->message,
                        "lease of node-a expired; taken over, lease 2");
    if (hands_over(f))
        assert_same_task(got[0].task, read);
    else
        assert_null(got[0].task);
    task_free(read);
    store_task_claims_free(got, n);
}

#define CONTRACT(X)                                                                                \
    X(test_first_read_after_a_claim_is_running_under_its_lease_with_the_claim_event)               \
    X(test_claim_batch_without_read_hands_no_task)                                                 \
    X(test_claim_batch_read_hands_the_task_store_task_get_reads)                                   \
    X(test_claim_batch_read_of_a_takeover_has_its_lease_and_event)
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
