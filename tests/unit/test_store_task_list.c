/* Unit tests for the store's task list and task counts (store_task_list, store_task_counts): every
 * filter field, paging and the total, the order both ways and its ties, the empty IN list, the
 * bad-state error, and the counts' JSON byte for byte. One contract run on SQLite and again on
 * PostgreSQL (ASYNCD_TEST_PG=0 leaves it out), pinned before the two dialects' copies became one
 * (store_task_list.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "task/task_json.h"

#include "store_fixture.h"

static int setup(void **state) { return store_fixture_open(state, "test_task_list", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_task_list", true, ""); }
static int teardown(void **state) { return store_fixture_close(state); }

/* Raw SQL on the fixture's database, beside the store (another connection): the times and
 * states a test needs exactly, which the store's own writes take from the clock. */
static void raw_sql(struct store_fixture *f, const char *sql)
{
    if (f->db[0]) {
        const char *host = strstr(g_pg_url, "://");
        host = host ? host + 3 : g_pg_url;
        int base = (int)(host - g_pg_url + (ptrdiff_t)strcspn(host, "/?"));
        const char *query = strchr(g_pg_url, '?');
        char url[600];
        snprintf(url, sizeof url, "%.*s/%s%s", base, g_pg_url, f->db, query ? query : "");
        PGconn *c = PQconnectdb(url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/asyncd.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void task_add(struct store *s, const char *product, const char *uin, const char *region,
                     const char *instance, const char *type, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{}}]", "name", "only", "do", "noop");
    struct task_new t = {.product = product,
                         .region = region,
                         .uin = uin,
                         .instance_id = instance,
                         .type = type,
                         .on_failure = "pause",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
}

/* Sets a task's state, created_ms and start_ms (< 0: NULL). */
static void task_set(struct store_fixture *f, const char *id, const char *state, int64_t created,
                     int64_t start)
{
    char sql[256], start_sql[24] = "NULL";
    if (start >= 0)
        snprintf(start_sql, sizeof start_sql, "%lld", (long long)start);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET state = '%s', created_ms = %lld, start_ms = %s WHERE id = '%s'",
             state, (long long)created, start_sql, id);
    raw_sql(f, sql);
}

/* The five tasks most tests list: t[0] the oldest. A type with a quote and a backslash, for the
 * IN list's quoting. */
#define ODD_TYPE "a\"b\\c'd"
static char t[5][STORE_ID_MAX];

static void five_tasks(struct store_fixture *f)
{
    task_add(f->s, "cdb", "U1", "ap-guangzhou", "cdb-1", "CreateAccounts", t[0]);
    task_add(f->s, "cdb", "U1", "ap-guangzhou", "cdb-2", "DeleteAccounts", t[1]);
    task_add(f->s, "cdb", "U2", "ap-beijing", "cdb-1", "CreateAccounts", t[2]);
    task_add(f->s, "mongodb", "U1", "ap-guangzhou", NULL, "CreateBackupDBInstance", t[3]);
    task_add(f->s, "mongodb", "U2", "ap-beijing", "cmgo-1", ODD_TYPE, t[4]);
    task_set(f, t[0], "initial", 1000, -1);
    task_set(f, t[1], "running", 2000, 2500);
    task_set(f, t[2], "success", 3000, 3500);
    task_set(f, t[3], "failed", 4000, 4500);
    task_set(f, t[4], "paused", 5000, 5500);
}

/* Lists with flt and checks the page is exactly `want` (indexes into t, "" for none, e.g.
 * "4 2 0") and the total is `total`. */
static void expect_list(struct store *s, const struct task_filter *flt, const char *want,
                        int64_t total)
{
    struct task_list l = {0};
    int64_t got_total = -1;
    struct err e = {0};
    int rc = store_task_list(s, flt, &l, &got_total, &e);
    if (rc != 0)
        fail_msg("store_task_list: %d %s", rc, e.msg);
    char got[64] = "";
    for (size_t i = 0; i < l.n; i++) {
        int idx = -1;
        for (int k = 0; k < 5; k++)
            if (strcmp(l.items[i]->id, t[k]) == 0)
                idx = k;
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s%d", i ? " " : "", idx);
        assert_true(l.items[i]->has_job_id);
        assert_false(l.items[i]->has_steps);
        assert_false(l.items[i]->has_events);
    }
    assert_string_equal(got, want);
    assert_int_equal(got_total, total);
    task_list_clear(&l);
}

static void test_no_filter_lists_every_task_newest_first(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    expect_list(f->s, &(struct task_filter){.state = -1}, "4 3 2 1 0", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .oldest_first = true}, "0 1 2 3 4", 5);
}

static void test_each_equality_filter_field(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    expect_list(f->s, &(struct task_filter){.state = -1, .product = "cdb"}, "2 1 0", 3);
    expect_list(f->s, &(struct task_filter){.state = -1, .uin = "U1"}, "3 1 0", 3);
    expect_list(f->s, &(struct task_filter){.state = -1, .product = "cdb", .uin = "U1"}, "1 0", 2);
    expect_list(f->s, &(struct task_filter){.state = -1, .instance_id = "cdb-1"}, "2 0", 2);
    expect_list(f->s, &(struct task_filter){.state = -1, .region = "ap-beijing"}, "4 2", 2);
    expect_list(f->s, &(struct task_filter){.state = -1, .id = t[1]}, "1", 1);
    expect_list(f->s, &(struct task_filter){.state = TASK_RUNNING}, "1", 1);
    expect_list(f->s, &(struct task_filter){.state = TASK_INITIAL, .product = "mongodb"}, "", 0);
    expect_list(f->s,
                &(struct task_filter){.product = "mongodb",
                                      .uin = "U2",
                                      .region = "ap-beijing",
                                      .instance_id = "cmgo-1",
                                      .id = t[4],
                                      .state = TASK_PAUSED},
                "4", 1);
    /* a value is a value, never SQL */
    expect_list(f->s, &(struct task_filter){.state = -1, .product = "x' OR '1'='1"}, "", 0);
}

static void test_state_mask_is_an_in_list_and_an_empty_one_matches_nothing(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    unsigned run_ok = 1u << TASK_RUNNING | 1u << TASK_SUCCESS;
    expect_list(f->s, &(struct task_filter){.state = -1, .state_mask = run_ok}, "2 1", 2);
    expect_list(f->s, &(struct task_filter){.state = TASK_SUCCESS, .state_mask = run_ok}, "2", 1);
    expect_list(f->s, &(struct task_filter){.state = TASK_INITIAL, .state_mask = run_ok}, "", 0);
    /* only bits past the last state (cdb_tasks.c's UNDEFINED): an empty list */
    expect_list(f->s, &(struct task_filter){.state = -1, .state_mask = 1u << TASK_STATE_COUNT}, "",
                0);
}

static void test_types_are_an_in_list_and_an_empty_one_matches_nothing(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    const char *const one[] = {"CreateAccounts", NULL};
    const char *const two[] = {"CreateAccounts", ODD_TYPE, NULL};
    const char *const odd[] = {ODD_TYPE, NULL};
    const char *const none[] = {NULL};
    const char *const unknown[] = {"Nope", "\"", "\\", "{}", "a,b", NULL};
    expect_list(f->s, &(struct task_filter){.state = -1, .types = one}, "2 0", 2);
    expect_list(f->s, &(struct task_filter){.state = -1, .types = two}, "4 2 0", 3);
    expect_list(f->s, &(struct task_filter){.state = -1, .types = odd}, "4", 1);
    expect_list(f->s, &(struct task_filter){.state = -1, .types = none}, "", 0);
    expect_list(f->s, &(struct task_filter){.state = -1, .types = unknown}, "", 0);
    expect_list(f->s, &(struct task_filter){.state = -1, .types = one, .uin = "U2"}, "2", 1);
    expect_list(f->s,
                &(struct task_filter){.state = -1,
                                      .types = two,
                                      .state_mask = 1u << TASK_PAUSED | 1u << TASK_INITIAL},
                "4 0", 2);
}

/* A set is one value however long (SQLite's copy bound each type and dropped those past its 48
 * values, so a match late in a long list went missing). */
static void test_a_long_type_list_is_matched_whole(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    static char names[80][16];
    const char *types[82];
    for (int i = 0; i < 80; i++) {
        snprintf(names[i], sizeof names[i], "Other%d", i);
        types[i] = names[i];
    }
    types[80] = "DeleteAccounts";
    types[81] = NULL;
    expect_list(f->s,
                &(struct task_filter){.state = -1,
                                      .types = types,
                                      .state_mask = 1u << TASK_RUNNING | 1u << TASK_INITIAL,
                                      .product = "cdb",
                                      .uin = "U1",
                                      .region = "ap-guangzhou",
                                      .instance_id = "cdb-2",
                                      .created_from_ms = 1,
                                      .created_to_ms = 9999,
                                      .start_from_ms = 1,
                                      .start_to_ms = 9999},
                "1", 1);
}

static void test_time_bounds_are_inclusive_and_a_null_start_is_outside_them(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    expect_list(f->s, &(struct task_filter){.state = -1, .start_from_ms = 3500}, "4 3 2", 3);
    expect_list(f->s, &(struct task_filter){.state = -1, .start_to_ms = 3500}, "2 1", 2);
    expect_list(f->s,
                &(struct task_filter){.state = -1, .start_from_ms = 2500, .start_to_ms = 2500}, "1",
                1);
    expect_list(f->s,
                &(struct task_filter){.state = -1, .created_from_ms = 2000, .created_to_ms = 4000},
                "3 2 1", 3);
    expect_list(f->s, &(struct task_filter){.state = -1, .created_to_ms = 1000}, "0", 1);
    expect_list(f->s,
                &(struct task_filter){.state = -1,
                                      .start_from_ms = 2000,
                                      .start_to_ms = 5000,
                                      .created_from_ms = 1000,
                                      .created_to_ms = 3000,
                                      .product = "cdb"},
                "2 1", 2);
}

static void test_paging_keeps_the_total_of_the_filter(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 2, .offset = 1}, "3 2", 5);
    expect_list(f->s,
                &(struct task_filter){.state = -1, .limit = 2, .offset = 3, .oldest_first = true},
                "3 4", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 2, .offset = 10}, "", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 1, .product = "cdb"}, "2", 3);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = -3, .offset = -2}, "4 3 2 1 0",
                5);
    /* the total may be left out */
    struct task_list l = {0};
    struct err e = {0};
    assert_int_equal(store_task_list(f->s, &(struct task_filter){.state = -1}, &l, NULL, &e), 0);
    assert_int_equal(l.n, 5);
    task_list_clear(&l);
}

static void test_the_default_page_is_100(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX], first[STORE_ID_MAX];
    for (int i = 0; i < 103; i++) {
        task_add(f->s, "cdb", "U1", "ap-guangzhou", NULL, "CreateAccounts", id);
        if (i == 0)
            snprintf(first, sizeof first, "%s", id);
    }
    raw_sql(f, "UPDATE tasks SET created_ms = 1000"); /* ties all: creation order decides */
    struct task_list l = {0};
    int64_t total = 0;
    struct err e = {0};
    assert_int_equal(store_task_list(f->s, &(struct task_filter){.state = -1}, &l, &total, &e), 0);
    assert_int_equal(l.n, 100);
    assert_int_equal(total, 103);
    assert_string_equal(l.items[0]->id, id); /* the last created */
    task_list_clear(&l);
    assert_int_equal(store_task_list(f->s,
                                     &(struct task_filter){.state = -1, .limit = 0, .offset = 100},
                                     &l, &total, &e),
                     0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[2]->id, first);
    task_list_clear(&l);
}

static void test_ties_in_created_ms_go_by_creation_order_both_ways(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    raw_sql(f, "UPDATE tasks SET created_ms = 7000");
    expect_list(f->s, &(struct task_filter){.state = -1}, "4 3 2 1 0", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .oldest_first = true}, "0 1 2 3 4", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 2, .offset = 2}, "2 1", 5);
    /* a tie at a page's edge is not listed twice nor left out */
    raw_sql(f, "UPDATE tasks SET created_ms = 500 WHERE product = 'mongodb'");
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 2, .offset = 0}, "2 1", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 2, .offset = 2}, "0 4", 5);
    expect_list(f->s, &(struct task_filter){.state = -1, .limit = 2, .offset = 4}, "3", 5);
    struct task_list l = {0};
    struct err e = {0};
    assert_int_equal(store_task_list(f->s, &(struct task_filter){.state = -1, .oldest_first = true},
                                     &l, NULL, &e),
                     0);
    for (size_t i = 1; i < l.n; i++) /* job_id numbers tasks in creation order */
        if (l.items[i]->created_ms == l.items[i - 1]->created_ms)
            assert_true(l.items[i]->job_id > l.items[i - 1]->job_id);
    task_list_clear(&l);
}

static void test_a_listed_row_is_the_row_task_get_reads(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    raw_sql(f, "UPDATE tasks SET info = 'half way', end_ms = 6000, lease_node = 'n2',"
               " attempt = 3, not_before_ms = 77, lease_no = 4, lease_expires_ms = 9000,"
               " input = '{\"a\":[1,2]}'");
    struct task_list l = {0};
    struct err e = {0};
    assert_int_equal(store_task_list(f->s, &(struct task_filter){.state = -1}, &l, NULL, &e), 0);
    assert_int_equal(l.n, 5);
    for (size_t i = 0; i < l.n; i++) {
        struct task *one = NULL;
        assert_int_equal(store_task_get(f->s, l.items[i]->id, 0, &one, &e), 0);
        json_t *a = task_json(l.items[i], NULL), *b = task_json(one, NULL);
        json_object_del(a, "job_id");
        json_object_del(b, "job_id");
        char *sa = json_dumps(a, JSON_SORT_KEYS), *sb = json_dumps(b, JSON_SORT_KEYS);
        assert_string_equal(sa, sb);
        free(sa);
        free(sb);
        json_decref(a);
        json_decref(b);
        task_free(one);
    }
    assert_int_equal(l.items[0]->n_steps, 1);
    assert_string_equal(l.items[0]->info, "half way");
    assert_null(l.items[1]->instance_id);
    task_list_clear(&l);
}

static void test_a_state_filter_that_names_no_state_is_refused(void **state)
{
    struct store_fixture *f = *state;
    five_tasks(f);
    struct task_list l = {0};
    int64_t total = 42;
    struct err e = {0};
    assert_int_equal(
        store_task_list(f->s, &(struct task_filter){.state = TASK_STATE_COUNT}, &l, &total, &e),
        ERR_INVALID_PARAMETER_VALUE);
    char want[64];
    snprintf(want, sizeof want, "state filter %d names no task state", TASK_STATE_COUNT);
    assert_string_equal(e.msg, want);
    assert_int_equal(l.n, 0);
    assert_int_equal(total, 42); /* untouched */
    assert_int_equal(store_task_list(f->s, &(struct task_filter){.state = -2}, &l, &total, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_string_equal(e.msg, "state filter -2 names no task state");
    assert_int_equal(l.n, 0);
}

static void expect_counts(struct store *s, const char *want)
{
    json_t *out = NULL;
    struct err e = {0};
    assert_int_equal(store_task_counts(s, &out, &e), 0);
    char *got = json_dumps(out, JSON_COMPACT);
    assert_string_equal(got, want);
    free(got);
    json_decref(out);
}

static void test_counts_are_json_by_product_and_state_in_byte_order(void **state)
{
    struct store_fixture *f = *state;
    expect_counts(f->s, "[]");
    five_tasks(f);
    char id[STORE_ID_MAX];
    task_add(f->s, "cdb", "U3", "ap-guangzhou", NULL, "CreateAccounts", id);
    task_set(f, id, "initial", 900, -1);
    task_add(f->s, "cdb", "U3", "ap-guangzhou", NULL, "CreateAccounts", id);
    task_set(f, id, "running", 2100, 2200);
    char sql[128]; /* byte order: Z before c */
    snprintf(sql, sizeof sql, "UPDATE tasks SET product = 'Zed' WHERE id = '%s'", t[4]);
    raw_sql(f, sql);
    expect_counts(f->s, "[{\"product\":\"Zed\",\"state\":\"paused\",\"count\":1,"
                        "\"oldest_created_ms\":5000},"
                        "{\"product\":\"cdb\",\"state\":\"initial\",\"count\":2,"
                        "\"oldest_created_ms\":900},"
                        "{\"product\":\"cdb\",\"state\":\"running\",\"count\":2,"
                        "\"oldest_created_ms\":2000},"
                        "{\"product\":\"cdb\",\"state\":\"success\",\"count\":1,"
                        "\"oldest_created_ms\":3000},"
                        "{\"product\":\"mongodb\",\"state\":\"failed\",\"count\":1,"
                        "\"oldest_created_ms\":4000}]");
}

#define CONTRACT(X)                                                                                \
    X(test_no_filter_lists_every_task_newest_first)                                                \
    X(test_each_equality_filter_field)                                                             \
    X(test_state_mask_is_an_in_list_and_an_empty_one_matches_nothing)                              \
    X(test_types_are_an_in_list_and_an_empty_one_matches_nothing)                                  \
    X(test_a_long_type_list_is_matched_whole)                                                      \
    X(test_time_bounds_are_inclusive_and_a_null_start_is_outside_them)                             \
    X(test_paging_keeps_the_total_of_the_filter)                                                   \
    X(test_the_default_page_is_100)                                                                \
    X(test_ties_in_created_ms_go_by_creation_order_both_ways)                                      \
    X(test_a_listed_row_is_the_row_task_get_reads)                                                 \
    X(test_a_state_filter_that_names_no_state_is_refused)                                          \
    X(test_counts_are_json_by_product_and_state_in_byte_order)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    return STORE_FIXTURE_RUN("test_store_task_list: the postgres group", sqlite, postgres);
}
