/* Unit tests for the store interface: one contract run on the embedded SQLite backend and again
 * on PostgreSQL (ASYNCD_TEST_PG=0 leaves PostgreSQL out), plus what is SQLite's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/ids.h"
#include "common/secretbox.h"
#include "store/store.h"
#include "task/task_json.h"
#include "store/store_plan.h"

struct fixture {
    char dir[64];
    struct store *s;
    char *url; /* PostgreSQL: the test's own database; NULL = SQLite in dir */
    char db[32];
};

static int open_in(struct fixture *f)
{
    struct err e = {0};
    int rc = store_open(f->url, f->dir, &f->s, &e);
    if (rc != 0)
        fprintf(stderr, "store_open: %s\n", e.msg);
    return rc;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir) || open_in(f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- PostgreSQL: the same contract on a throw-away cluster that scripts/postgres.sh starts
 * (or on the server ASYNCD_TEST_PG_URL names); each test gets a database of its own. ---- */

#include "pg_fixture.h"

static int setup_pg(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir) || pg_fresh_db(f->db, "", &f->url) != 0 || open_in(f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (f->url)
        pg_drop_db(f->db);
    free(f->url);
    free(f);
    return 0;
}

static struct account root_account(const char *uin, const char *secret_id)
{
    struct account a = {0};
    snprintf(a.uin, sizeof a.uin, "%s", uin);
    snprintf(a.owner_uin, sizeof a.owner_uin, "%s", uin);
    snprintf(a.app_id, sizeof a.app_id, "1250000000");
    snprintf(a.secret_id, sizeof a.secret_id, "%s", secret_id);
    snprintf(a.secret_key, sizeof a.secret_key, "key-of-%s", secret_id);
    a.is_root = true;
    return a;
}

static struct instance an_instance(const char *product, const char *id, const char *uin)
{
    struct instance in = {0};
    snprintf(in.product, sizeof in.product, "%s", product);
    snprintf(in.instance_id, sizeof in.instance_id, "%s", id);
    snprintf(in.region, sizeof in.region, "ap-guangzhou");
    snprintf(in.uin, sizeof in.uin, "%s", uin);
    snprintf(in.status, sizeof in.status, "running");
    snprintf(in.dsn, sizeof in.dsn, "mysql://root:pw@127.0.0.1:3306");
    return in;
}

/* Creates a task with nsteps steps; asserts success. */
static void make_task(struct store *s, const char *product, const char *uin, const char *instance,
                      int nsteps, char id[STORE_ID_MAX])
{
    json_t *steps = json_array();
    for (int i = 0; i < nsteps; i++)
        json_array_append_new(steps, json_pack("{s:s, s:{s:[s]}, s:{s:[s]}, s:i}", "name",
                                               i == 0 ? "first" : "next", "do", "exec", "/bin/true",
                                               "undo", "exec", "/bin/false", "retries", i));
    struct task_new t = {.product = product,
                         .region = "ap-guangzhou",
                         .uin = uin,
                         .instance_id = instance,
                         .type = "CreateAccounts",
                         .on_failure = NULL,
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    int rc = store_task_create(s, &t, id, &e);
    if (rc != 0)
        fprintf(stderr, "task_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    json_decref(steps);
}

static int move(struct store *s, const char *id, enum task_state expect, enum task_state to,
                const char *message, struct err *e)
{
    struct task_move m = {
        .id = id, .expect = expect, .to = to, .node = "node-1", .message = message};
    return store_task_move(s, &m, e);
}

/* The text of the first column of sql's first row, read from the SQLite file at path. */
static void sqlite_scalar(const char *path, const char *sql, char *out, size_t size)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_open_records_schema_version(void **state)
{
    struct fixture *f = *state;
    char path[128], version[16];
    snprintf(path, sizeof path, "%s/asyncd.db", f->dir);
    sqlite_scalar(path, "SELECT value FROM meta WHERE key = 'schema_version'", version,
                  sizeof version);
    assert_string_equal(version, "12");
}

/* How many temporary b-trees SQLite's program for sql opens (EXPLAIN's OpenEphemeral). */
static int ephemeral_opens(sqlite3 *db, const char *sql)
{
    char explain[512];
    snprintf(explain, sizeof explain, "EXPLAIN %s", sql);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, explain, -1, &st, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        n += strcmp((const char *)sqlite3_column_text(st, 1), "OpenEphemeral") == 0;
    sqlite3_finalize(st);
    return n;
}

/* Migrations 11 and 12: no partial index or CHECK makes the creation of a task or a step, or a
 * change of its state, build a temporary b-tree (an IN list of three or more states did, twelve
 * per one-step task). */
static void test_task_writes_build_no_temporary_btree(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/asyncd.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(ephemeral_opens(db, "UPDATE tasks SET state = 'success', end_ms = 1"
                                         " WHERE id = 'x'"),
                     0);
    assert_int_equal(ephemeral_opens(db, "INSERT INTO tasks(id, product, region, uin, type,"
                                         " on_failure, state, created_ms) VALUES('x', 'cdb',"
                                         " 'r', '1', 't', 'pause', 'initial', 1)"),
                     0);
    assert_int_equal(ephemeral_opens(db, "INSERT INTO task_steps(task_id, idx, name, do_json)"
                                         " VALUES('x', 0, 'n', '{}')"),
                     0);
    assert_int_equal(ephemeral_opens(db, "UPDATE task_steps SET state = 'done'"
                                         " WHERE task_id = 'x' AND idx = 0"),
                     0);
    sqlite3_close(db);
}

static void test_database_files_are_private(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    json_t *steps = json_pack("[{s:s, s:{}}]", "name", "x", "do");
    struct task_new t = {
        .product = "cdb", .region = "r", .uin = "1", .type = "T", .steps = steps, .node = "n"};
    assert_int_equal(store_task_create(f->s, &t, id, &e), 0); /* so the WAL has content */
    json_decref(steps);
    static const char *const names[] = {"asyncd.db", "asyncd.db-wal", "asyncd.db-shm"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
}

static void test_store_open_refuses_bad_postgres_options(void **state)
{
    (void)state;
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open("postgres://u@h/db?pool=0", "/tmp", &s, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "pool=0"));
    assert_int_equal(store_open("postgresql://u@h/db?claim=maybe", "/tmp", &s, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "claim=maybe"));
    assert_null(s);
}

static void test_store_open_sqlite_url_uses_that_file(void **state)
{
    struct fixture *f = *state;
    char url[128], path[128];
    snprintf(url, sizeof url, "sqlite:%s/other.db", f->dir);
    snprintf(path, sizeof path, "%s/other.db", f->dir);
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(url, "/nonexistent", &s, &e), 0);
    assert_int_equal(access(path, F_OK), 0);
    store_close(s);
}

static void test_store_open_reports_unwritable_directory(void **state)
{
    (void)state;
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(NULL, "/nonexistent/dir", &s, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/asyncd.db"));
    assert_null(s);
}

static void test_account_create_then_find_by_secret_id_and_uin(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDroot1");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDroot1", &got, &e), 0);
    assert_string_equal(got.uin, "100000000001");
    assert_string_equal(got.owner_uin, "100000000001");
    assert_string_equal(got.app_id, "1250000000");
    assert_string_equal(got.secret_key, "key-of-AKIDroot1");
    assert_true(got.is_root);
    assert_false(got.has_policy);
    assert_null(got.policy_json);
    account_clear(&got);
    assert_int_equal(store_account_by_uin(f->s, "100000000001", &got, &e), 0);
    assert_string_equal(got.secret_id, "AKIDroot1");
    account_clear(&got);
    int64_t n = 0;
    assert_int_equal(store_account_count(f->s, &n, &e), 0);
    assert_int_equal(n, 1);
}

static void test_account_create_refuses_duplicate_uin_or_secret_id(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDone");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    struct account same_uin = root_account("100000000001", "AKIDtwo");
    assert_int_equal(store_account_create(f->s, &same_uin, &e), ERR_ALREADY_EXISTS);
    assert_non_null(strstr(e.msg, "100000000001"));
    struct account same_secret = root_account("100000000002", "AKIDone");
    assert_int_equal(store_account_create(f->s, &same_secret, &e), ERR_ALREADY_EXISTS);
    assert_non_null(strstr(e.msg, "AKIDone"));
    int64_t n = 0;
    assert_int_equal(store_account_count(f->s, &n, &e), 0);
    assert_int_equal(n, 1);
}

static void test_account_lookup_of_unknown_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDnone", &got, &e), ERR_NOT_FOUND);
    assert_int_equal(store_account_by_uin(f->s, "1", &got, &e), ERR_NOT_FOUND);
    assert_int_equal(store_account_set_policy(f->s, "1", "[]", &e), ERR_NOT_FOUND);
}

static struct account sub_account(const char *uin, const char *owner, const char *secret_id)
{
    struct account a = root_account(uin, secret_id);
    snprintf(a.owner_uin, sizeof a.owner_uin, "%s", owner);
    a.is_root = false;
    return a;
}

/* The SecretIds and statuses of uin's keys as "id:status,id:status". */
static void key_summary(struct store *s, const char *uin, char *out, size_t cap)
{
    struct err e = {0};
    json_t *keys = NULL;
    assert_int_equal(store_account_key_list(s, uin, &keys, &e), 0);
    size_t i, n = 0;
    json_t *k;
    out[0] = '\0';
    json_array_foreach(keys, i, k)
    {
        assert_null(json_object_get(k, "SecretKey"));
        assert_true(json_integer_value(json_object_get(k, "created_ms")) > 0);
        n += (size_t)snprintf(out + n, cap - n, "%s%s:%s", i ? "," : "",
                              json_string_value(json_object_get(k, "SecretId")),
                              json_string_value(json_object_get(k, "Status")));
    }
    json_decref(keys);
}

static void test_account_keys_create_list_disable_delete(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDfirst"), got = {0};
    char sum[256];
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDsecond", "k2", 2, &e), 0);
    key_summary(f->s, "100000000001", sum, sizeof sum);
    assert_string_equal(sum, "AKIDfirst:enabled,AKIDsecond:enabled");
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsecond", &got, &e), 0);
    assert_string_equal(got.uin, "100000000001");
    assert_string_equal(got.secret_id, "AKIDsecond");
    assert_string_equal(got.secret_key, "k2");
    account_clear(&got);
    /* the most it may hold, decided by the store: a third is a conflict */
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDthird", "k3", 2, &e),
                     ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "100000000001"));
    assert_int_equal(store_account_key_create(f->s, "1", "AKIDx", "kx", 2, &e), ERR_NOT_FOUND);
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDfirst", false, &e),
                     0);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDfirst", &got, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "disabled"));
    assert_string_equal(got.secret_key, ""); /* a refused key is never handed out */
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsecond", &got, &e), 0);
    account_clear(&got);
    /* by uin: the first enabled key comes with the account */
    assert_int_equal(store_account_by_uin(f->s, "100000000001", &got, &e), 0);
    assert_string_equal(got.secret_id, "AKIDsecond");
    account_clear(&got);
    assert_int_equal(store_account_key_delete(f->s, "100000000001", "AKIDsecond", &e),
                     ERR_CONFLICT);
    assert_int_equal(store_account_key_delete(f->s, "100000000001", "AKIDfirst", &e), 0);
    assert_int_equal(store_account_key_delete(f->s, "100000000001", "AKIDfirst", &e),
                     ERR_NOT_FOUND);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDfirst", &got, &e), ERR_NOT_FOUND);
    key_summary(f->s, "100000000001", sum, sizeof sum);
    assert_string_equal(sum, "AKIDsecond:enabled");
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDnone", true, &e),
                     ERR_NOT_FOUND);
    json_t *keys = NULL;
    assert_int_equal(store_account_key_list(f->s, "1", &keys, &e), ERR_NOT_FOUND);
    assert_null(keys);
}

static void test_account_key_secret_ids_are_unique_across_accounts(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDa"),
                   b = root_account("100000000002", "AKIDb");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    assert_int_equal(store_account_create(f->s, &b, &e), 0);
    assert_int_equal(store_account_key_create(f->s, "100000000002", "AKIDa", "x", 2, &e),
                     ERR_ALREADY_EXISTS);
    /* one account's key is not another's to change */
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000002", "AKIDa", false, &e),
                     ERR_NOT_FOUND);
    assert_int_equal(store_account_key_delete(f->s, "100000000002", "AKIDa", &e), ERR_NOT_FOUND);
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDa", &got, &e), 0);
    account_clear(&got);
}

static void test_disabled_accounts_and_their_roots_refuse_their_keys(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account root = root_account("100000000001", "AKIDroot");
    struct account sub = sub_account("200000000001", "100000000001", "AKIDsub");
    struct account got = {0};
    assert_int_equal(store_account_create(f->s, &root, &e), 0);
    assert_int_equal(store_account_create(f->s, &sub, &e), 0);
    assert_int_equal(store_account_set_disabled(f->s, "200000000001", true, &e), 0);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsub", &got, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "200000000001"));
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDroot", &got, &e), 0);
    account_clear(&got);
    assert_int_equal(store_account_set_disabled(f->s, "200000000001", false, &e), 0);
    assert_int_equal(store_account_set_disabled(f->s, "100000000001", true, &e), 0);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDroot", &got, &e), ERR_NOT_FOUND);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsub", &got, &e), ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "root account 100000000001"));
    /* the admin API still reads both, with their flags */
    assert_int_equal(store_account_by_uin(f->s, "200000000001", &got, &e), 0);
    assert_false(got.disabled);
    assert_true(got.owner_disabled);
    account_clear(&got);
    assert_int_equal(store_account_by_uin(f->s, "100000000001", &got, &e), 0);
    assert_true(got.disabled);
    assert_false(got.owner_disabled);
    account_clear(&got);
    assert_int_equal(store_account_set_disabled(f->s, "100000000001", false, &e), 0);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsub", &got, &e), 0);
    account_clear(&got);
    assert_int_equal(store_account_set_disabled(f->s, "1", true, &e), ERR_NOT_FOUND);
}

/* A store of schema version 3 (one key per account row) opens at version 4+ with each account's
 * key moved into account_keys: it still signs, in clear or sealed as it was. */
static void test_schema_3_accounts_keep_their_keys(void **state)
{
    struct fixture *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/v3.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO meta VALUES('schema_version', '3');"
                     "CREATE TABLE accounts (uin TEXT PRIMARY KEY, owner_uin TEXT NOT NULL,"
                     " app_id TEXT NOT NULL, secret_id TEXT NOT NULL UNIQUE,"
                     " secret_key TEXT NOT NULL, is_root INTEGER NOT NULL, policy_json TEXT,"
                     " created_ms INTEGER NOT NULL);"
                     "CREATE INDEX accounts_owner ON accounts(owner_uin);"
                     "CREATE TABLE instances (instance_id TEXT PRIMARY KEY, product TEXT NOT NULL,"
                     " region TEXT NOT NULL, uin TEXT NOT NULL, status TEXT NOT NULL,"
                     " dsn TEXT NOT NULL, created_ms INTEGER NOT NULL,"
                     " updated_ms INTEGER NOT NULL, reserved_accounts TEXT NOT NULL DEFAULT '');"
                     /* only the columns later migrations (5 and 9: indexes) touch */
                     "CREATE TABLE tasks (id TEXT PRIMARY KEY, product TEXT NOT NULL,"
                     " instance_id TEXT, state TEXT NOT NULL, created_ms INTEGER NOT NULL,"
                     " end_ms INTEGER);"
                     /* as version 1 made it: migration 12 builds it anew */
                     "CREATE TABLE task_steps ("
                     " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
                     " idx INTEGER NOT NULL, name TEXT NOT NULL, do_json TEXT NOT NULL,"
                     " undo_json TEXT, retries INTEGER NOT NULL DEFAULT 0,"
                     " timeout_s INTEGER NOT NULL DEFAULT 3600,"
                     " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',"
                     " 'running', 'done', 'failed', 'skipped', 'undoing', 'undone',"
                     " 'undo_failed')), output TEXT, message TEXT,"
                     " PRIMARY KEY (task_id, idx)) WITHOUT ROWID;"
                     "INSERT INTO tasks VALUES('t-1', 'cdb', NULL, 'running', 5, NULL);"
                     "INSERT INTO task_steps(task_id, idx, name, do_json, state, message)"
                     " VALUES('t-1', 0, 'a', '{\"noop\":{}}', 'done', 'first'),"
                     " ('t-1', 1, 'b', '{\"noop\":{}}', 'running', NULL);"
                     "INSERT INTO accounts VALUES('300000000002', '300000000002', '125', 'AKIDnew',"
                     " 'plain-new', 1, NULL, 5);"
                     "INSERT INTO accounts VALUES('300000000001', '300000000001', '125', 'AKIDold',"
                     " 'plain-old', 1, NULL, 5);"
                     "INSERT INTO accounts VALUES('300000000003', '300000000001', '125', 'AKIDsub',"
                     " 'plain-sub', 0, '[\"cdb:*\"]', 6);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    char url[160];
    snprintf(url, sizeof url, "sqlite:%s", path);
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(url, f->dir, &s, &e), 0);
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(s, "AKIDsub", &got, &e), 0);
    assert_string_equal(got.secret_key, "plain-sub");
    assert_string_equal(got.owner_uin, "300000000001");
    assert_string_equal(got.policy_json, "[\"cdb:*\"]");
    assert_false(got.disabled);
    account_clear(&got);
    char sum[256];
    key_summary(s, "300000000001", sum, sizeof sum);
    assert_string_equal(sum, "AKIDold:enabled");
    /* the oldest root (same created_ms: the first inserted) stays the first root */
    struct account cand = root_account("300000000009", "AKIDcand");
    assert_int_equal(store_account_first_root(s, &cand, &got, &e), 0);
    assert_string_equal(got.uin, "300000000002");
    account_clear(&got);
    assert_int_equal(store_account_key_create(s, "300000000001", "AKIDold2", "k", 2, &e), 0);
    store_close(s);
    /* the steps came through migration 12's rebuild, and its CHECK still holds */
    char steps[64];
    sqlite_scalar(path,
                  "SELECT group_concat(idx || name || state || COALESCE(message, '-'), ',')"
                  " FROM task_steps",
                  steps, sizeof steps);
    assert_string_equal(steps, "0adonefirst,1brunning-");
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_not_equal(
        sqlite3_exec(db, "UPDATE task_steps SET state = 'bogus'", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static struct token a_token(const char *id, const char *scope, char hash_digit)
{
    struct token t = {.created_ms = 1700000000000};
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.name, sizeof t.name, "name of %s", id);
    snprintf(t.scope, sizeof t.scope, "%s", scope);
    memset(t.hash, hash_digit, 64);
    return t;
}

static void test_token_create_find_list_touch_revoke(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct token a = a_token("tok-a", "admin", 'a'), r = a_token("tok-r", "reader", 'b'), got;
    assert_int_equal(store_token_create(f->s, &a, &e), 0);
    assert_int_equal(store_token_create(f->s, &r, &e), 0);
    assert_int_equal(store_token_by_hash(f->s, r.hash, &got, &e), 0);
    assert_string_equal(got.id, "tok-r");
    assert_string_equal(got.scope, "reader");
    assert_string_equal(got.name, "name of tok-r");
    assert_int_equal(got.last_used_ms, 0);
    assert_int_equal(store_token_touch(f->s, "tok-r", 1700000001000, &e), 0);
    assert_int_equal(store_token_by_hash(f->s, r.hash, &got, &e), 0);
    assert_int_equal(got.last_used_ms, 1700000001000);
    json_t *list = NULL;
    assert_int_equal(store_token_list(f->s, &list, &e), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_null(json_object_get(json_array_get(list, 0), "hash"));
    json_decref(list);
    assert_int_equal(store_token_revoke(f->s, "tok-r", &e), 0);
    assert_int_equal(store_token_by_hash(f->s, r.hash, &got, &e), ERR_NOT_FOUND);
    assert_int_equal(store_token_revoke(f->s, "tok-r", &e), ERR_NOT_FOUND);
    assert_int_equal(store_token_list(f->s, &list, &e), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
}

static void test_token_create_refuses_a_taken_id_or_hash_even_revoked(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct token a = a_token("tok-a", "admin", 'a'), same_hash = a_token("tok-b", "admin", 'a');
    struct token same_id = a_token("tok-a", "reader", 'c'), got;
    assert_int_equal(store_token_create(f->s, &a, &e), 0);
    assert_int_equal(store_token_create(f->s, &same_hash, &e), ERR_ALREADY_EXISTS);
    assert_int_equal(store_token_create(f->s, &same_id, &e), ERR_ALREADY_EXISTS);
    assert_int_equal(store_token_revoke(f->s, "tok-a", &e), 0);
    /* A revoked token's hash stays taken: bootstrap cannot bring an old AdminToken back. */
    assert_int_equal(store_token_create(f->s, &same_hash, &e), ERR_ALREADY_EXISTS);
    assert_int_equal(store_token_by_hash(f->s, a.hash, &got, &e), ERR_NOT_FOUND);
}

static void test_account_set_policy_is_read_back(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account root = root_account("100000000001", "AKIDroot");
    struct account sub = root_account("200000000001", "AKIDsub");
    snprintf(sub.owner_uin, sizeof sub.owner_uin, "100000000001");
    sub.is_root = false;
    assert_int_equal(store_account_create(f->s, &root, &e), 0);
    assert_int_equal(store_account_create(f->s, &sub, &e), 0);
    assert_int_equal(store_account_set_policy(f->s, "200000000001", "[\"cdb:*\"]", &e), 0);
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsub", &got, &e), 0);
    assert_false(got.is_root);
    assert_string_equal(got.owner_uin, "100000000001");
    assert_true(got.has_policy);
    assert_string_equal(got.policy_json, "[\"cdb:*\"]");
    account_clear(&got);
    assert_null(got.policy_json);
    assert_int_equal(store_account_set_policy(f->s, "200000000001", NULL, &e), 0);
    assert_int_equal(store_account_by_uin(f->s, "200000000001", &got, &e), 0);
    assert_false(got.has_policy);
    account_clear(&got);
}

static void test_instance_create_get_update_list(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct instance a = an_instance("cdb", "cdb-aaa", "100000000001");
    struct instance b = an_instance("mongodb", "cmgo-bbb", "100000000002");
    assert_int_equal(store_instance_create(f->s, &a, &e), 0);
    assert_int_equal(store_instance_create(f->s, &b, &e), 0);
    struct instance got;
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-aaa", &got, &e), 0);
    assert_string_equal(got.region, "ap-guangzhou");
    assert_string_equal(got.dsn, "mysql://root:pw@127.0.0.1:3306");
    assert_int_equal(store_instance_update(f->s, "cdb-aaa", "isolated", NULL, NULL, &got, &e), 0);
    assert_string_equal(got.status, "isolated");
    assert_string_equal(got.dsn, "mysql://root:pw@127.0.0.1:3306");
    assert_int_equal(
        store_instance_update(f->s, "cdb-aaa", NULL, "mysql://u:p@h:1", NULL, &got, &e), 0);
    assert_string_equal(got.status, "isolated");
    assert_string_equal(got.dsn, "mysql://u:p@h:1");
    json_t *list = NULL;
    assert_int_equal(store_instance_list(f->s, NULL, NULL, &list, &e), 0);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    assert_int_equal(store_instance_list(f->s, "mongodb", NULL, &list, &e), 0);
    assert_int_equal(json_array_size(list), 1);
    json_t *one = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(one, "instance_id")), "cmgo-bbb");
    assert_string_equal(json_string_value(json_object_get(one, "uin")), "100000000002");
    assert_string_equal(json_string_value(json_object_get(one, "status")), "running");
    json_decref(list);
    assert_int_equal(store_instance_list(f->s, "cdb", "100000000002", &list, &e), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void test_instance_ids_are_unique_across_products(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct instance a = an_instance("cdb", "shared-id", "100000000001");
    struct instance b = an_instance("mongodb", "shared-id", "100000000001");
    assert_int_equal(store_instance_create(f->s, &a, &e), 0);
    assert_int_equal(store_instance_create(f->s, &b, &e), ERR_ALREADY_EXISTS);
    assert_non_null(strstr(e.msg, "shared-id"));
}

static void test_instance_get_of_other_product_is_not_found(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct instance a = an_instance("cdb", "cdb-aaa", "100000000001");
    assert_int_equal(store_instance_create(f->s, &a, &e), 0);
    struct instance got;
    assert_int_equal(store_instance_get(f->s, "mongodb", "cdb-aaa", &got, &e), ERR_NOT_FOUND);
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-zzz", &got, &e), ERR_NOT_FOUND);
    assert_int_equal(store_instance_update(f->s, "cdb-zzz", "offline", NULL, NULL, &got, &e),
                     ERR_NOT_FOUND);
}

/* The list's objects are the admin API's instance objects as they are (GET /v1/instances): every
 * key, in this order and with these types, on both stores; the simulated flag reads back true
 * through get and list alike. */
static void test_instance_list_objects_and_the_simulated_flag(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct instance real = an_instance("cdb", "cdb-real", "100000000001");
    snprintf(real.reserved_accounts, sizeof real.reserved_accounts, "[\"root\"]");
    struct instance sim = an_instance("cdb", "cdb-sim", "100000000001");
    sim.simulated = true;
    sim.dsn[0] = '\0';
    assert_int_equal(store_instance_create(f->s, &real, &e), 0);
    assert_int_equal(store_instance_create(f->s, &sim, &e), 0);
    struct instance got;
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-sim", &got, &e), 0);
    assert_true(got.simulated);
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-real", &got, &e), 0);
    assert_false(got.simulated);
    assert_string_equal(got.reserved_accounts, "[\"root\"]");
    json_t *list = NULL;
    assert_int_equal(store_instance_list(f->s, "cdb", NULL, &list, &e), 0);
    char *text = json_dumps(list, JSON_COMPACT);
    assert_string_equal(
        text, "[{\"product\":\"cdb\",\"instance_id\":\"cdb-real\",\"region\":\"ap-guangzhou\","
              "\"uin\":\"100000000001\",\"status\":\"running\","
              "\"dsn\":\"mysql://root:pw@127.0.0.1:3306\",\"reserved_accounts\":[\"root\"],"
              "\"simulated\":false},"
              "{\"product\":\"cdb\",\"instance_id\":\"cdb-sim\",\"region\":\"ap-guangzhou\","
              "\"uin\":\"100000000001\",\"status\":\"running\",\"dsn\":\"\","
              "\"reserved_accounts\":[],\"simulated\":true}]");
    free(text);
    json_decref(list);
}

static void test_cdb_task_ids_have_the_cdb_format(void **state)
{
    struct fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", "cdb-aaa", 1, a);
    make_task(f->s, "cdb", "100000000001", "cdb-aaa", 1, b);
    assert_true(ids_is_cdb_task(a));
    assert_true(ids_is_cdb_task(b));
    assert_string_not_equal(a, b);
}

static void test_mongodb_task_ids_are_increasing_decimals_from_1000(void **state)
{
    struct fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], c[STORE_ID_MAX];
    make_task(f->s, "mongodb", "100000000001", NULL, 1, a);
    make_task(f->s, "cdb", "100000000001", NULL, 1, b);
    make_task(f->s, "mongodb", "100000000001", NULL, 1, c);
    assert_true(ids_is_mongodb_task(a));
    assert_true(ids_is_mongodb_task(c));
    assert_false(ids_is_mongodb_task(b));
    assert_string_equal(a, "1000");
    assert_true(strtoll(c, NULL, 10) > strtoll(a, NULL, 10));
}

static void test_task_create_refuses_bad_input(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    json_t *steps = json_pack("[{s:s, s:{}}]", "name", "x", "do");
    struct task_new t = {
        .product = "redis", .region = "r", .uin = "1", .type = "T", .steps = steps, .node = "n"};
    assert_int_equal(store_task_create(f->s, &t, id, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "redis"));
    t.product = "cdb";
    t.on_failure = "explode";
    assert_int_equal(store_task_create(f->s, &t, id, &e), ERR_INVALID_PARAMETER_VALUE);
    t.on_failure = "undo";
    json_t *bad = json_pack("[{s:s}]", "name", "no do");
    t.steps = bad;
    assert_int_equal(store_task_create(f->s, &t, id, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "steps[0].do"));
    json_decref(bad);
    bad = json_array();
    t.steps = bad;
    assert_int_equal(store_task_create(f->s, &t, id, &e), ERR_INVALID_PARAMETER_VALUE);
    json_decref(bad);
    t.steps = steps;
    assert_int_equal(store_task_create(f->s, &t, id, &e), 0);
    json_decref(steps);
}

static void test_task_summary_is_found_only_for_its_product(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", "cdb-aaa", 1, id);
    struct task_summary sum;
    assert_int_equal(store_task_summary(f->s, "mongodb", id, &sum, &e), ERR_NOT_FOUND);
    assert_int_equal(store_task_summary(f->s, "cdb", "no-such-task", &sum, &e), ERR_NOT_FOUND);
    assert_int_equal(store_task_summary(f->s, "cdb", id, &sum, &e), 0);
    assert_string_equal(sum.id, id);
    assert_string_equal(sum.product, "cdb");
    assert_string_equal(sum.region, "ap-guangzhou");
    assert_string_equal(sum.uin, "100000000001");
    assert_string_equal(sum.instance_id, "cdb-aaa");
    assert_int_equal(sum.state, TASK_INITIAL);
    assert_false(sum.has_info);
    assert_string_equal(sum.info, "");
    assert_true(sum.created_ms > 1600000000000);
    assert_int_equal(sum.start_ms, 0);
    assert_int_equal(sum.end_ms, 0);
}

static void test_task_move_sets_start_end_and_info(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", NULL, 1, id);
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_RUNNING, "go", &e), 0);
    struct task_summary sum;
    assert_int_equal(store_task_summary(f->s, "cdb", id, &sum, &e), 0);
    assert_int_equal(sum.state, TASK_RUNNING);
    assert_true(sum.start_ms >= sum.created_ms);
    assert_int_equal(sum.end_ms, 0);
    int64_t first_start = sum.start_ms;
    assert_int_equal(move(f->s, id, TASK_RUNNING, TASK_PAUSED, "step failed", &e), 0);
    usleep(2000);
    assert_int_equal(move(f->s, id, TASK_PAUSED, TASK_RUNNING, "resume", &e), 0);
    struct task_move m = {.id = id,
                          .expect = TASK_RUNNING,
                          .to = TASK_SUCCESS,
                          .node = "n2",
                          .info = "Dropped the database table successfully.",
                          .step_advance = 1};
    assert_int_equal(store_task_move(f->s, &m, &e), 0);
    assert_int_equal(store_task_summary(f->s, "cdb", id, &sum, &e), 0);
    assert_int_equal(sum.state, TASK_SUCCESS);
    assert_int_equal(sum.start_ms, first_start); /* the first entry to running, kept */
    assert_true(sum.end_ms >= sum.start_ms);
    assert_true(sum.has_info);
    assert_string_equal(sum.info, "Dropped the database table successfully.");
}

static void test_task_move_refuses_illegal_transition(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "mongodb", "100000000001", NULL, 1, id);
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_SUCCESS, NULL, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "initial"));
    assert_non_null(strstr(e.msg, "success"));
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_INITIAL, NULL, &e), ERR_CONFLICT);
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_REMOVED, "withdrawn", &e), 0);
    assert_int_equal(move(f->s, id, TASK_REMOVED, TASK_RUNNING, NULL, &e), ERR_CONFLICT);
    assert_int_equal(move(f->s, "12345678", TASK_INITIAL, TASK_RUNNING, NULL, &e), ERR_NOT_FOUND);
}

static void test_task_move_refuses_stale_expectation(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", NULL, 1, id);
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_RUNNING, NULL, &e), 0);
    /* A second operator who still saw "initial" loses. */
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_REMOVED, NULL, &e), ERR_CONFLICT);
    char want[256];
    snprintf(want, sizeof want, "task %s is running now, not initial", id);
    assert_string_equal(e.msg, want);
    struct task *task = NULL;
    assert_int_equal(store_task_get(f->s, id, TASK_READ_EVENTS, &task, &e), 0);
    assert_int_equal(task->n_events, 2);
    task_free(task);
}

static void test_task_events_are_appended_with_seq_1_2_3(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", NULL, 1, id);
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_RUNNING, "started", &e), 0);
    assert_int_equal(move(f->s, id, TASK_RUNNING, TASK_KILLED, NULL, &e), 0);
    struct task *task = NULL;
    assert_int_equal(store_task_get(f->s, id, TASK_READ_EVENTS, &task, &e), 0);
    assert_int_equal(task->n_events, 3);
    static const int from[] = {-1, TASK_INITIAL, TASK_RUNNING};
    static const enum task_state to[] = {TASK_INITIAL, TASK_RUNNING, TASK_KILLED};
    static const char *const msg[] = {"created", "started", NULL};
    for (size_t i = 0; i < 3; i++) {
        const struct task_event *one = &task->events[i];
        assert_int_equal(one->seq, (int64_t)i + 1);
        assert_true(one->at_ms > 1600000000000);
        assert_int_equal(one->from, from[i]);
        assert_int_equal(one->to, to[i]);
        assert_string_equal(one->node, "node-1");
        if (msg[i])
            assert_string_equal(one->message, msg[i]);
        else
            assert_null(one->message);
    }
    task_free(task);
}

static void test_task_move_step_advance_marks_steps_in_order(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", NULL, 2, id);
    assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_RUNNING, NULL, &e), 0);
    /* running -> running records a finished step (the engine's progress). */
    struct task_move done = {.id = id,
                             .expect = TASK_RUNNING,
                             .to = TASK_RUNNING,
                             .node = "n",
                             .message = "step 0 ok",
                             .step_advance = 1};
    assert_int_equal(store_task_move(f->s, &done, &e), 0);
    assert_int_equal(move(f->s, id, TASK_RUNNING, TASK_PAUSED, "step 1 failed", &e), 0);
    struct task_move skip = {.id = id,
                             .expect = TASK_PAUSED,
                             .to = TASK_RUNNING,
                             .node = "n",
                             .message = "skipped by operator",
                             .step_advance = 1,
                             .step_mark = "skipped"};
    assert_int_equal(store_task_move(f->s, &skip, &e), 0);
    /* No step left: a further advance is refused and changes nothing. */
    done.to = TASK_SUCCESS;
    assert_int_equal(store_task_move(f->s, &done, &e), ERR_CONFLICT);
    struct task *task = NULL;
    assert_int_equal(store_task_get(f->s, id, TASK_READ_STEPS, &task, &e), 0);
    assert_int_equal(task_step_at(task, 0)->state, STEP_DONE);
    assert_int_equal(task_step_at(task, 1)->state, STEP_SKIPPED);
    assert_int_equal(task->current_step, 2);
    assert_int_equal(task->state, TASK_RUNNING);
    task_free(task);
    /* running -> running without a step is not a transition. */
    assert_int_equal(move(f->s, id, TASK_RUNNING, TASK_RUNNING, NULL, &e), ERR_CONFLICT);
}

static void test_task_get_json_has_the_admin_api_shape(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    make_task(f->s, "cdb", "100000000001", NULL, 1, id);
    struct task *t = NULL;
    assert_int_equal(store_task_get(f->s, id, TASK_READ_ALL, &t, &e), 0);
    json_t *task = task_json(t, NULL); /* the raw view (task/task_json.h) */
    task_free(t);
    assert_string_equal(json_string_value(json_object_get(task, "AsyncRequestId")), id);
    assert_string_equal(json_string_value(json_object_get(task, "product")), "cdb");
    assert_string_equal(json_string_value(json_object_get(task, "type")), "CreateAccounts");
    assert_string_equal(json_string_value(json_object_get(task, "on_failure")), "pause");
    assert_string_equal(json_string_value(json_object_get(task, "state")), "initial");
    assert_true(json_is_null(json_object_get(task, "instance_id")));
    assert_true(json_is_null(json_object_get(task, "info")));
    assert_true(json_is_null(json_object_get(task, "start_ms")));
    assert_true(json_is_null(json_object_get(task, "end_ms")));
    assert_true(json_is_integer(json_object_get(task, "created_ms")));
    assert_int_equal(json_integer_value(json_object_get(task, "current_step")), 0);
    json_t *step = json_array_get(json_object_get(task, "steps"), 0);
    assert_int_equal(json_integer_value(json_object_get(step, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(step, "name")), "first");
    json_t *argv = json_object_get(json_object_get(step, "do"), "exec");
    assert_string_equal(json_string_value(json_array_get(argv, 0)), "/bin/true");
    assert_true(json_is_object(json_object_get(step, "undo")));
    assert_int_equal(json_integer_value(json_object_get(step, "retries")), 0);
    assert_int_equal(json_integer_value(json_object_get(step, "timeout_s")), 3600);
    assert_string_equal(json_string_value(json_object_get(step, "state")), "pending");
    assert_true(json_is_null(json_object_get(step, "message")));
    json_decref(task);
    t = (struct task *)1;
    assert_int_equal(store_task_get(f->s, "nope", TASK_READ_ALL, &t, &e), ERR_NOT_FOUND);
    assert_null(t);
}

static int64_t list_count(struct store *s, struct task_filter flt, int64_t *total)
{
    struct task_list l = {0};
    struct err e = {0};
    assert_int_equal(store_task_list(s, &flt, &l, total, &e), 0);
    int64_t n = (int64_t)l.n;
    for (size_t i = 0; i < l.n; i++)
        assert_false(l.items[i]->has_steps);
    task_list_clear(&l);
    return n;
}

static void test_task_list_filters_pages_and_counts(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    char ids[7][STORE_ID_MAX];
    for (int i = 0; i < 5; i++)
        make_task(f->s, "mongodb", i < 3 ? "111" : "222", i == 0 ? "cmgo-1" : NULL, 1, ids[i]);
    make_task(f->s, "cdb", "111", NULL, 1, ids[5]);
    make_task(f->s, "cdb", "111", NULL, 1, ids[6]);
    assert_int_equal(move(f->s, ids[1], TASK_INITIAL, TASK_RUNNING, NULL, &e), 0);
    int64_t total = -1;
    struct task_filter any = {.state = -1};
    assert_int_equal(list_count(f->s, any, &total), 7);
    assert_int_equal(total, 7);
    struct task_filter mongo = {.product = "mongodb", .state = -1, .limit = 2, .offset = 0};
    struct task_list l = {0};
    assert_int_equal(store_task_list(f->s, &mongo, &l, &total, &e), 0);
    assert_int_equal(total, 5);
    assert_int_equal(l.n, 2);
    /* Newest first: the last mongodb task created comes first. */
    assert_string_equal(l.items[0]->id, ids[4]);
    task_list_clear(&l);
    mongo.offset = 4;
    assert_int_equal(list_count(f->s, mongo, &total), 1);
    assert_int_equal(total, 5);
    struct task_filter by_uin = {.product = "mongodb", .uin = "111", .state = -1};
    assert_int_equal(list_count(f->s, by_uin, &total), 3);
    struct task_filter by_state = {.state = TASK_RUNNING};
    assert_int_equal(list_count(f->s, by_state, &total), 1);
    struct task_filter by_instance = {.instance_id = "cmgo-1", .state = -1};
    assert_int_equal(list_count(f->s, by_instance, &total), 1);
    struct task_filter by_region = {.region = "elsewhere", .state = -1};
    assert_int_equal(list_count(f->s, by_region, &total), 0);
    assert_int_equal(total, 0);
    struct task_filter bad = {.state = 99};
    assert_int_equal(store_task_list(f->s, &bad, &l, &total, &e), ERR_INVALID_PARAMETER_VALUE);
    task_list_clear(&l);
}

static void test_reopen_keeps_data_and_counters(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDroot");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    char first[STORE_ID_MAX], cdb[STORE_ID_MAX], next[STORE_ID_MAX];
    make_task(f->s, "mongodb", "100000000001", NULL, 1, first);
    make_task(f->s, "cdb", "100000000001", NULL, 1, cdb);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_in(f), 0);
    struct account got = {0};
    assert_int_equal(store_account_by_uin(f->s, "100000000001", &got, &e), 0);
    account_clear(&got);
    struct task_summary sum;
    assert_int_equal(store_task_summary(f->s, "cdb", cdb, &sum, &e), 0);
    make_task(f->s, "mongodb", "100000000001", NULL, 1, next);
    assert_true(strtoll(next, NULL, 10) > strtoll(first, NULL, 10));
}

/* Raw SQL on the fixture's database, beside the store (another connection): a statement, or
 * the first column of the first row into out[cap]. */
static void raw_sql(struct fixture *f, const char *sql, char *out, size_t cap)
{
    if (out)
        out[0] = '\0';
    if (f->url) {
        PGconn *c = PQconnectdb(f->url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
        if (out && PQntuples(r) > 0)
            snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        PQfinish(c);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/asyncd.db", f->dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    if (out && rc == SQLITE_ROW)
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static const uint8_t test_key[SECRETBOX_KEY_LEN] = {7, 7, 7, 1, 2, 3};

/* A store written before sealing holds SecretKeys and DSNs in clear: the next open seals them,
 * and they still work. */
static void test_open_seals_secrets_an_older_store_kept_in_clear(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    secretbox_set_key(test_key);
    struct account a = root_account("100000000001", "AKIDclear");
    struct instance in = an_instance("cdb", "cdb-clear", "100000000001");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    assert_int_equal(store_instance_create(f->s, &in, &e), 0);
    raw_sql(f,
            "UPDATE account_keys SET secret_key = 'clear-secret-key' WHERE secret_id = 'AKIDclear'",
            NULL, 0);
    raw_sql(f, "UPDATE instances SET dsn = 'mysql://root:clear-pw@127.0.0.1:3306'", NULL, 0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_in(f), 0);
    char raw[1024];
    raw_sql(f, "SELECT secret_key FROM account_keys WHERE secret_id = 'AKIDclear'", raw,
            sizeof raw);
    assert_true(secretbox_is_sealed(raw));
    raw_sql(f, "SELECT dsn FROM instances WHERE instance_id = 'cdb-clear'", raw, sizeof raw);
    assert_true(secretbox_is_sealed(raw));
    struct account got = {0};
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDclear", &got, &e), 0);
    assert_string_equal(got.secret_key, "clear-secret-key");
    account_clear(&got);
    struct instance got_in = {0};
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-clear", &got_in, &e), 0);
    assert_string_equal(got_in.dsn, "mysql://root:clear-pw@127.0.0.1:3306");
    /* sealed once: the next open leaves the sealed values as they are */
    raw_sql(f, "SELECT secret_key FROM account_keys WHERE secret_id = 'AKIDclear'", raw,
            sizeof raw);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(open_in(f), 0);
    char again[1024];
    raw_sql(f, "SELECT secret_key FROM account_keys WHERE secret_id = 'AKIDclear'", again,
            sizeof again);
    assert_string_equal(again, raw);
    secretbox_forget();
}

/* uin's key list as compact JSON; NULL (and *rc set) when the list fails. The caller frees. */
static char *key_list_text(struct store *s, const char *uin, int *rc, struct err *e)
{
    json_t *keys = NULL;
    *rc = store_account_key_list(s, uin, &keys, e);
    char *text = *rc == 0 ? json_dumps(keys, JSON_COMPACT) : NULL;
    json_decref(keys);
    return text;
}

/* The key list as GET /v1/accounts/{uin}/keys answers it, byte for byte (every key, its order and
 * type; never a SecretKey): oldest first, equal times by SecretId in byte order (PostgreSQL's
 * COLLATE "C", SQLite's BINARY: "AKIDB" before "AKIDb"), disabled keys listed too, and an account
 * whose last key was deleted lists none rather than being missing. Held on both stores before
 * their two copies become one (store_accounts.c). */
static void test_account_key_list_json_is_pinned(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDfirst");
    struct account sub = sub_account("200000000001", "100000000001", "AKIDsub");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    assert_int_equal(store_account_create(f->s, &sub, &e), 0);
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDb", "kb", 5, &e), 0);
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDB", "kB", 5, &e), 0);
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDfirst", false, &e),
                     0);
    raw_sql(f, "UPDATE account_keys SET created_ms = 1700000000000 WHERE secret_id = 'AKIDfirst'",
            NULL, 0);
    raw_sql(f, "UPDATE account_keys SET created_ms = 1700000000001 WHERE secret_id <> 'AKIDfirst'",
            NULL, 0);
    int rc;
    char *text = key_list_text(f->s, "100000000001", &rc, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(
        text, "[{\"SecretId\":\"AKIDfirst\",\"Status\":\"disabled\","
              "\"created_ms\":1700000000000},"
              "{\"SecretId\":\"AKIDB\",\"Status\":\"enabled\",\"created_ms\":1700000000001},"
              "{\"SecretId\":\"AKIDb\",\"Status\":\"enabled\",\"created_ms\":1700000000001}]");
    free(text);
    /* the last key may go (disabled first): the account stays, with no key */
    assert_int_equal(store_account_key_set_enabled(f->s, "200000000001", "AKIDsub", false, &e), 0);
    assert_int_equal(store_account_key_delete(f->s, "200000000001", "AKIDsub", &e), 0);
    text = key_list_text(f->s, "200000000001", &rc, &e);
    assert_int_equal(rc, 0);
    assert_string_equal(text, "[]");
    free(text);
    struct account got = {0};
    assert_int_equal(store_account_by_uin(f->s, "200000000001", &got, &e), 0);
    assert_string_equal(got.secret_id, "");
    assert_string_equal(got.secret_key, "");
    assert_string_equal(got.owner_uin, "100000000001");
    account_clear(&got);
    /* every key disabled: by uin the oldest comes with the account */
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDB", false, &e), 0);
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDb", false, &e), 0);
    assert_int_equal(store_account_by_uin(f->s, "100000000001", &got, &e), 0);
    assert_string_equal(got.secret_id, "AKIDfirst");
    assert_string_equal(got.secret_key, "key-of-AKIDfirst");
    account_clear(&got);
    /* ... and with two enabled of one time, the first in byte order */
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDb", true, &e), 0);
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDB", true, &e), 0);
    assert_int_equal(store_account_by_uin(f->s, "100000000001", &got, &e), 0);
    assert_string_equal(got.secret_id, "AKIDB");
    assert_string_equal(got.secret_key, "kB");
    account_clear(&got);
}

/* The accounts' error cases, code and message word for word as the admin API passes them on. */
static void test_account_errors_are_pinned(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account got = {0}, a = root_account("100000000001", "AKIDone");
    struct account empty = root_account("100000000009", "");
    assert_int_equal(store_account_create(f->s, &empty, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_string_equal(e.msg, "an account needs a uin, owner_uin, SecretId and SecretKey");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    struct account same_uin = root_account("100000000001", "AKIDtwo");
    assert_int_equal(store_account_create(f->s, &same_uin, &e), ERR_ALREADY_EXISTS);
    assert_string_equal(e.msg, "account 100000000001 already exists");
    /* a taken SecretId: neither the account nor its key is written */
    struct account same_secret = root_account("100000000002", "AKIDone");
    assert_int_equal(store_account_create(f->s, &same_secret, &e), ERR_ALREADY_EXISTS);
    assert_string_equal(e.msg, "SecretId AKIDone is already taken by another account");
    assert_int_equal(store_account_by_uin(f->s, "100000000002", &got, &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no account with uin 100000000002");
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDnone", &got, &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no account with SecretId AKIDnone");
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDone", "x", 5, &e),
                     ERR_ALREADY_EXISTS);
    assert_string_equal(e.msg, "SecretId AKIDone is already taken by another account");
    assert_int_equal(store_account_key_create(f->s, "1", "AKIDx", "x", 5, &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no account with uin 1");
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDtwo", "k2", 2, &e), 0);
    assert_int_equal(store_account_key_create(f->s, "100000000001", "AKIDthree", "k3", 2, &e),
                     ERR_CONFLICT);
    assert_string_equal(e.msg, "account 100000000001 already has 2 key pairs, the most it may "
                               "hold; delete one (disable it first) before creating another");
    assert_int_equal(store_account_key_delete(f->s, "100000000001", "AKIDtwo", &e), ERR_CONFLICT);
    assert_string_equal(e.msg, "key pair AKIDtwo of account 100000000001 is enabled; disable it "
                               "first (PATCH /v1/accounts/100000000001/keys/AKIDtwo "
                               "{\"status\":\"disabled\"}), check that no client still uses it, "
                               "then delete it");
    assert_int_equal(store_account_key_delete(f->s, "100000000001", "AKIDnone", &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "account 100000000001 has no key pair AKIDnone");
    assert_int_equal(store_account_key_set_enabled(f->s, "100000000001", "AKIDnone", false, &e),
                     ERR_NOT_FOUND);
    assert_string_equal(e.msg, "account 100000000001 has no key pair AKIDnone");
    assert_int_equal(store_account_set_policy(f->s, "1", "[]", &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no account with uin 1");
    assert_int_equal(store_account_set_disabled(f->s, "1", true, &e), ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no account with uin 1");
    int rc;
    assert_null(key_list_text(f->s, "1", &rc, &e));
    assert_int_equal(rc, ERR_NOT_FOUND);
    assert_string_equal(e.msg, "no account with uin 1");
    /* the whole uin and SecretId, however long (PostgreSQL's copy cut them at 30 and 64) */
    const char *uin = "1234567890123456789012345678901234567890";
    char id[80], want[256];
    memset(id, 'K', 70);
    id[70] = '\0';
    assert_int_equal(store_account_set_disabled(f->s, uin, true, &e), ERR_NOT_FOUND);
    snprintf(want, sizeof want, "no account with uin %s", uin);
    assert_string_equal(e.msg, want);
    assert_int_equal(store_account_key_set_enabled(f->s, uin, id, true, &e), ERR_NOT_FOUND);
    snprintf(want, sizeof want, "account %s has no key pair %s", uin, id);
    assert_string_equal(e.msg, want);
    int64_t n = 0;
    assert_int_equal(store_account_count(f->s, &n, &e), 0);
    assert_int_equal(n, 1);
}

/* The first root: the candidate (with its key) when there is no root account, a sub-account
 * not counting; the oldest root from then on, the next candidate left out. */
static void test_account_first_root_is_the_oldest_root(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account got = {0};
    struct account orphan = sub_account("200000000001", "100000000009", "AKIDorphan");
    assert_int_equal(store_account_create(f->s, &orphan, &e), 0);
    /* a candidate whose SecretId is taken is refused, and nothing of it stays */
    struct account taken = root_account("100000000002", "AKIDorphan");
    assert_int_equal(store_account_first_root(f->s, &taken, &got, &e), ERR_ALREADY_EXISTS);
    assert_string_equal(e.msg, "SecretId AKIDorphan is already taken by another account");
    assert_int_equal(store_account_by_uin(f->s, "100000000002", &got, &e), ERR_NOT_FOUND);
    struct account cand = root_account("100000000002", "AKIDcand");
    assert_int_equal(store_account_first_root(f->s, &cand, &got, &e), 0);
    assert_string_equal(got.uin, "100000000002");
    assert_string_equal(got.secret_id, "AKIDcand");
    assert_string_equal(got.secret_key, "key-of-AKIDcand");
    assert_true(got.is_root);
    account_clear(&got);
    /* Two roots made in one millisecond tie, and each dialect breaks the tie its own way
     * (SQLite: the first inserted; PostgreSQL: the lowest uin, which "later" has): the next
     * millisecond makes "later" strictly younger on both. */
    usleep(2000);
    struct account later = root_account("100000000001", "AKIDlater");
    assert_int_equal(store_account_create(f->s, &later, &e), 0);
    struct account next = root_account("100000000003", "AKIDnext");
    assert_int_equal(store_account_first_root(f->s, &next, &got, &e), 0);
    assert_string_equal(got.uin, "100000000002");
    account_clear(&got);
    assert_int_equal(store_account_by_uin(f->s, "100000000003", &got, &e), ERR_NOT_FOUND);
    int64_t n = 0;
    assert_int_equal(store_account_count(f->s, &n, &e), 0);
    assert_int_equal(n, 3);
}

/* With a key loaded every SecretKey is written sealed (account_create, key_create, the first
 * root's candidate) and read back opened. */
static void test_account_secret_keys_are_sealed_at_rest(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    secretbox_set_key(test_key);
    struct account cand = root_account("100000000001", "AKIDroot");
    struct account sub = sub_account("200000000001", "100000000001", "AKIDsub"), got = {0};
    assert_int_equal(store_account_first_root(f->s, &cand, &got, &e), 0);
    assert_string_equal(got.secret_key, "key-of-AKIDroot");
    account_clear(&got);
    assert_int_equal(store_account_create(f->s, &sub, &e), 0);
    assert_int_equal(store_account_key_create(f->s, "200000000001", "AKIDsub2", "k2", 2, &e), 0);
    char raw[1024];
    static const char *const ids[] = {"AKIDroot", "AKIDsub", "AKIDsub2"};
    for (int i = 0; i < 3; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT secret_key FROM account_keys WHERE secret_id = '%s'",
                 ids[i]);
        raw_sql(f, sql, raw, sizeof raw);
        assert_true(secretbox_is_sealed(raw));
    }
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsub2", &got, &e), 0);
    assert_string_equal(got.secret_key, "k2");
    account_clear(&got);
    assert_int_equal(store_account_by_uin(f->s, "200000000001", &got, &e), 0);
    assert_string_equal(got.secret_key, "key-of-AKIDsub");
    account_clear(&got);
    secretbox_forget();
}

/* Without the template rule (store_set_secret_args), every string arg of a mysql step is taken
 * for a password: the store seals too much rather than too little. */
static void test_step_secrets_fail_closed_without_the_template_rule(void **state)
{
    (void)state;
    secretbox_set_key(test_key);
    json_t *steps = json_pack("[{s:s, s:{s:{s:s, s:[s, s, i]}}}]", "name", "create", "do", "mysql",
                              "sql", "CREATE USER {0:str}@{1:str}", "args", "bob", "%", 5);
    json_t *sealed = NULL;
    struct err e = {0};
    assert_int_equal(store_steps_seal(steps, &sealed, &e), 0);
    json_t *args = json_object_get(
        json_object_get(json_object_get(json_array_get(sealed, 0), "do"), "mysql"), "args");
    assert_true(secretbox_is_sealed(json_string_value(json_array_get(args, 0))));
    assert_true(secretbox_is_sealed(json_string_value(json_array_get(args, 1))));
    assert_int_equal(json_integer_value(json_array_get(args, 2)), 5);
    json_decref(steps);
    json_decref(sealed);
    secretbox_forget();
}

struct race {
    struct store *s;
    char ids[8][STORE_ID_MAX];
    atomic_int errors;
    atomic_bool stop;
};

static void *summary_reader(void *arg)
{
    struct race *r = arg;
    struct err e = {0};
    struct task_summary sum;
    struct account acc = {0};
    for (unsigned i = 0; !atomic_load(&r->stop) || i < 200; i++) {
        if (store_task_summary(r->s, "cdb", r->ids[i % 8], &sum, &e) != 0 ||
            strcmp(sum.id, r->ids[i % 8]) != 0)
            atomic_fetch_add(&r->errors, 1);
        if (i % 16 == 0) {
            if (store_account_by_secret_id(r->s, "AKIDroot", &acc, &e) != 0)
                atomic_fetch_add(&r->errors, 1);
            account_clear(&acc);
        }
    }
    return NULL;
}

static void test_summaries_run_beside_task_creation(void **state)
{
    struct fixture *f = *state;
    struct err e = {0};
    struct account a = root_account("100000000001", "AKIDroot");
    assert_int_equal(store_account_create(f->s, &a, &e), 0);
    struct race r = {.s = f->s};
    atomic_init(&r.errors, 0);
    atomic_init(&r.stop, false);
    for (int i = 0; i < 8; i++)
        make_task(f->s, "cdb", "100000000001", NULL, 1, r.ids[i]);
    pthread_t readers[6];
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, summary_reader, &r), 0);
    for (int i = 0; i < 150; i++) {
        char id[STORE_ID_MAX];
        make_task(f->s, i % 2 ? "cdb" : "mongodb", "100000000001", NULL, 2, id);
        if (i % 3 == 0)
            assert_int_equal(move(f->s, id, TASK_INITIAL, TASK_RUNNING, NULL, &e), 0);
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 6; i++)
        pthread_join(readers[i], NULL);
    assert_int_equal(atomic_load(&r.errors), 0);
    int64_t total = 0;
    assert_int_equal(list_count(f->s, (struct task_filter){.state = -1, .limit = 1000}, &total),
                     158);
    assert_int_equal(total, 158);
}

static int64_t task_count(struct store *s)
{
    struct task_filter flt = {.state = -1, .limit = 1};
    int64_t total = -1;
    list_count(s, flt, &total);
    return total;
}

/* A minted mongodb id a stored task holds (the counter was reset under existing tasks) is
 * skipped for the next number; after eight taken ones the creation fails naming the last, and
 * creates nothing. */
static void test_mongodb_ids_taken_after_a_counter_reset_are_skipped(void **state)
{
    struct fixture *f = *state;
    char ids[8][STORE_ID_MAX], id[STORE_ID_MAX];
    for (int i = 0; i < 3; i++)
        make_task(f->s, "mongodb", "100000000001", NULL, 1, ids[i]);
    assert_string_equal(ids[2], "1002");
    raw_sql(f, "UPDATE counters SET next_id = 1000 WHERE product = 'mongodb'", NULL, 0);
    make_task(f->s, "mongodb", "100000000001", NULL, 1, ids[3]);
    assert_string_equal(ids[3], "1003");
    for (int i = 4; i < 8; i++)
        make_task(f->s, "mongodb", "100000000001", NULL, 1, ids[i]);
    assert_string_equal(ids[7], "1007");
    raw_sql(f, "UPDATE counters SET next_id = 1000 WHERE product = 'mongodb'", NULL, 0);
    json_t *steps = json_pack("[{s:s, s:{}}]", "name", "x", "do");
    struct task_new t = {
        .product = "mongodb", .region = "r", .uin = "1", .type = "T", .steps = steps, .node = "n"};
    struct err e = {0};
    assert_int_equal(store_task_create(f->s, &t, id, &e), ERR_ALREADY_EXISTS);
    assert_string_equal(e.msg, "task 1007 already exists");
    assert_string_equal(id, "");
    assert_int_equal(task_count(f->s), 8);
    json_decref(steps);
}

/* The contract: every test here runs on each backend. */
#define CONTRACT(X)                                                                                \
    X(test_account_create_then_find_by_secret_id_and_uin)                                          \
    X(test_account_create_refuses_duplicate_uin_or_secret_id)                                      \
    X(test_account_lookup_of_unknown_is_not_found)                                                 \
    X(test_account_set_policy_is_read_back)                                                        \
    X(test_account_keys_create_list_disable_delete)                                                \
    X(test_account_key_secret_ids_are_unique_across_accounts)                                      \
    X(test_account_key_list_json_is_pinned)                                                        \
    X(test_account_errors_are_pinned)                                                              \
    X(test_account_first_root_is_the_oldest_root)                                                  \
    X(test_account_secret_keys_are_sealed_at_rest)                                                 \
    X(test_disabled_accounts_and_their_roots_refuse_their_keys)                                    \
    X(test_token_create_find_list_touch_revoke)                                                    \
    X(test_token_create_refuses_a_taken_id_or_hash_even_revoked)                                   \
    X(test_instance_create_get_update_list)                                                        \
    X(test_instance_ids_are_unique_across_products)                                                \
    X(test_instance_get_of_other_product_is_not_found)                                             \
    X(test_instance_list_objects_and_the_simulated_flag)                                           \
    X(test_cdb_task_ids_have_the_cdb_format)                                                       \
    X(test_mongodb_task_ids_are_increasing_decimals_from_1000)                                     \
    X(test_task_create_refuses_bad_input)                                                          \
    X(test_task_summary_is_found_only_for_its_product)                                             \
    X(test_task_move_sets_start_end_and_info)                                                      \
    X(test_task_move_refuses_illegal_transition)                                                   \
    X(test_task_move_refuses_stale_expectation)                                                    \
    X(test_task_events_are_appended_with_seq_1_2_3)                                                \
    X(test_task_move_step_advance_marks_steps_in_order)                                            \
    X(test_task_get_json_has_the_admin_api_shape)                                                  \
    X(test_task_list_filters_pages_and_counts)                                                     \
    X(test_reopen_keeps_data_and_counters)                                                         \
    X(test_open_seals_secrets_an_older_store_kept_in_clear)                                        \
    X(test_summaries_run_beside_task_creation)                                                     \
    X(test_mongodb_ids_taken_after_a_counter_reset_are_skipped)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {
        ON_SQLITE(test_open_records_schema_version) ON_SQLITE(
            test_task_writes_build_no_temporary_btree) ON_SQLITE(test_database_files_are_private)
            ON_SQLITE(test_store_open_refuses_bad_postgres_options)
                ON_SQLITE(test_store_open_sqlite_url_uses_that_file)
                    ON_SQLITE(test_store_open_reports_unwritable_directory)
                        ON_SQLITE(test_schema_3_accounts_keep_their_keys)
                            ON_SQLITE(test_step_secrets_fail_closed_without_the_template_rule)
                                CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    int failed = cmocka_run_group_tests_name("sqlite", sqlite, NULL, NULL);
    const char *pg = getenv("ASYNCD_TEST_PG");
    if (!pg || strcmp(pg, "0") != 0)
        failed +=
            cmocka_run_group_tests_name("postgres", postgres, pg_group_setup, pg_group_teardown);
    return failed;
}
