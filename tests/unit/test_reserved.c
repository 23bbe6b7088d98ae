/* Unit tests: the tenant guard (products/cdb_guard.c) and the template guard over it
 * (mysql_conn_guard): reserved accounts, privileges per scope, system schemas; and what the live
 * check before a task is given (the accounts of every template of an action) and answers when
 * the instance cannot be reached. No server (tests/it/tenant-refusals.test.mjs has one). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "exec/mysql_conn.h"
#include "products/cdb_guard.h"
#include "products/product.h"

static void expect_denied(const struct cdb_guard *g, const char *user, const char *host,
                          const char *why)
{
    struct err e = {0};
    if (cdb_guard_account(g, user, host, &e) != ERR_CDB_OPERATION_DENIED)
        fail_msg("%s@%s: expected OperationDenied", user, host);
    if (!strstr(e.msg, why))
        fail_msg("%s@%s: expected \"%s\" in \"%s\"", user, host, why, e.msg);
}

static void expect_allowed(const struct cdb_guard *g, const char *user, const char *host)
{
    struct err e = {0};
    if (cdb_guard_account(g, user, host, &e) != 0)
        fail_msg("%s@%s: expected allowed, got %s", user, host, e.msg);
}

static void test_builtin_accounts_are_reserved_on_every_host(void **state)
{
    (void)state;
    expect_denied(NULL, "root", "localhost", "superuser");
    expect_denied(NULL, "root", "%", "superuser");
    expect_denied(NULL, "mariadb.sys", "localhost", "system account");
    expect_denied(NULL, "mysql.sys", "localhost", "system account");
    expect_denied(NULL, "mysql.session", "10.0.0.1", "system account");
    expect_denied(NULL, "mysql.infoschema", "localhost", "system account");
    expect_denied(NULL, "", "localhost", "anonymous");
    /* user names are compared exactly, as MySQL does */
    expect_allowed(NULL, "Root", "localhost");
    expect_allowed(NULL, "root ", "localhost");
    expect_allowed(NULL, "mysqlx", "%");
    expect_allowed(NULL, "app_user", "%");
}

static void test_dsn_user_and_operator_list_are_reserved(void **state)
{
    (void)state;
    json_t *list = json_pack("[s,s]", "ops", "backup@10.0.0.%");
    struct cdb_guard g = {.dsn_user = "asyncd_admin", .reserved = list};
    expect_denied(&g, "asyncd_admin", "%", "manages the instance");
    expect_denied(&g, "asyncd_admin", "localhost", "manages the instance");
    expect_denied(&g, "ops", "anywhere", "operator");
    expect_denied(&g, "backup", "10.0.0.%", "operator");
    expect_denied(&g, "backup", "10.0.0.%", "backup@10.0.0.%");
    /* hosts compare case-insensitively (MySQL keeps them in lower case), users exactly */
    json_t *named = json_pack("[s]", "ops@db.example");
    struct cdb_guard g2 = {.reserved = named};
    expect_denied(&g2, "ops", "DB.Example", "operator");
    expect_allowed(&g2, "OPS", "db.example");
    expect_allowed(&g2, "ops", "other.example");
    expect_allowed(&g, "backup", "%");
    expect_allowed(&g, "Asyncd_admin", "%");
    json_decref(named);
    json_decref(list);
}

static void test_privileges_follow_the_sdk_lists_per_scope(void **state)
{
    (void)state;
    assert_string_equal(cdb_guard_privilege(CDB_SCOPE_GLOBAL, " show   databases "),
                        "SHOW DATABASES");
    /* on *.* these would reach the mysql schema, or drop any account: per database only */
    static const char *const not_global[] = {"SELECT", "UPDATE", "INSERT",  "DELETE",
                                             "DROP",   "ALTER",  "EXECUTE", "CREATE USER"};
    for (size_t i = 0; i < sizeof not_global / sizeof not_global[0]; i++)
        if (cdb_guard_privilege(CDB_SCOPE_GLOBAL, not_global[i]))
            fail_msg("%s allowed globally", not_global[i]);
    assert_string_equal(cdb_guard_privilege(CDB_SCOPE_DATABASE, "update"), "UPDATE");
    assert_string_equal(cdb_guard_privilege(CDB_SCOPE_GLOBAL, "replication client"),
                        "REPLICATION CLIENT");
    assert_string_equal(cdb_guard_privilege(CDB_SCOPE_DATABASE, "EVENT"), "EVENT");
    assert_string_equal(cdb_guard_privilege(CDB_SCOPE_TABLE, "SHOW VIEW"), "SHOW VIEW");
    assert_string_equal(cdb_guard_privilege(CDB_SCOPE_COLUMN, "REFERENCES"), "REFERENCES");
    static const char *const never[] = {"SUPER", "FILE",           "SHUTDOWN", "GRANT OPTION",
                                        "ALL",   "ALL PRIVILEGES", "USAGE",    "CREATE TABLESPACE",
                                        "PROXY"};
    for (int s = CDB_SCOPE_GLOBAL; s <= CDB_SCOPE_COLUMN; s++)
        for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
            if (cdb_guard_privilege((enum cdb_scope)s, never[i]))
                fail_msg("%s allowed in scope %d", never[i], s);
    assert_null(cdb_guard_privilege(CDB_SCOPE_DATABASE, "PROCESS"));
    assert_null(cdb_guard_privilege(CDB_SCOPE_DATABASE, "CREATE USER"));
    assert_null(cdb_guard_privilege(CDB_SCOPE_TABLE, "EXECUTE"));
    assert_null(cdb_guard_privilege(CDB_SCOPE_COLUMN, "DELETE"));
    const char *canonical;
    struct err e;
    assert_int_equal(cdb_guard_check_privilege(CDB_SCOPE_TABLE, "SUPER", &canonical, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "\"SUPER\" cannot be given at the table level"));
}

static void test_live_privileges_of_operator_accounts_are_recognised(void **state)
{
    (void)state;
    assert_true(cdb_guard_tenant_may_hold(CDB_SCOPE_GLOBAL, "USAGE", NULL, false));
    assert_true(cdb_guard_tenant_may_hold(CDB_SCOPE_GLOBAL, "BINLOG MONITOR", NULL, false));
    assert_true(cdb_guard_tenant_may_hold(CDB_SCOPE_DATABASE, "SELECT", "app", false));
    assert_false(cdb_guard_tenant_may_hold(CDB_SCOPE_GLOBAL, "SUPER", NULL, false));
    assert_false(cdb_guard_tenant_may_hold(CDB_SCOPE_GLOBAL, "SELECT", NULL, true));
    assert_false(cdb_guard_tenant_may_hold(CDB_SCOPE_TABLE, "SELECT", "mysql", false));
    assert_false(cdb_guard_tenant_may_hold(CDB_SCOPE_DATABASE, "SELECT", "%", false));
    assert_false(cdb_guard_tenant_may_hold(CDB_SCOPE_DATABASE, "SELECT", "my_ql", false));
}

static void test_system_schemas_and_wildcards_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"mysql",
                                      "MySQL",
                                      "sys",
                                      "SYS",
                                      "performance_schema",
                                      "INFORMATION_SCHEMA",
                                      "m_sql",
                                      "___",
                                      "sy_",
                                      "%",
                                      "my%",
                                      "a\\_b",
                                      "performance_schem_"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e = {0};
        if (cdb_guard_schema(bad[i], &e) != ERR_INVALID_PARAMETER_VALUE)
            fail_msg("%s: expected InvalidParameterValue", bad[i]);
    }
    static const char *const good[] = {"app", "my_app", "mysql2", "sys_data", "__", "shop_db"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct err e = {0};
        if (cdb_guard_schema(good[i], &e) != 0)
            fail_msg("%s: %s", good[i], e.msg);
    }
}

static int guard(const char *sql, const char *args_json, json_t *accounts, struct err *e)
{
    json_t *args = json_loads(args_json, 0, NULL);
    struct cdb_guard g = {.dsn_user = "admin"};
    int rc = mysql_conn_guard(sql, args, &g, accounts, e);
    json_decref(args);
    return rc;
}

static void test_template_guard_finds_accounts_however_written(void **state)
{
    (void)state;
    struct err e;
    assert_int_equal(guard("ALTER USER {0:str}@{1:str} IDENTIFIED BY {2:str}",
                           "[\"root\", \"localhost\", \"x\"]", NULL, &e),
                     ERR_CDB_OPERATION_DENIED);
    assert_int_equal(guard("DROP USER {0:str} @ {1:str}", "[\"admin\", \"%\"]", NULL, &e),
                     ERR_CDB_OPERATION_DENIED);
    assert_int_equal(guard("DROP USER {0:ident}@'localhost'", "[\"mariadb.sys\"]", NULL, &e),
                     ERR_CDB_OPERATION_DENIED);
    assert_non_null(strstr(e.msg, "mariadb.sys@localhost"));
    json_t *found = json_array();
    assert_int_equal(guard("RENAME USER {0:str}@{1:str} TO {0:str}@{2:str}",
                           "[\"app\", \"%\", \"10.0.0.1\"]", found, &e),
                     0);
    json_t *want = json_pack("[[s,s],[s,s]]", "app", "%", "app", "10.0.0.1");
    assert_true(json_equal(found, want));
    json_decref(want);
    json_decref(found);
}

static void test_template_guard_refuses_system_schemas_in_identifiers(void **state)
{
    (void)state;
    struct err e;
    assert_int_equal(
        guard("GRANT SELECT ON {0:ident}.* TO {1:str}@'%'", "[\"mysql\", \"app\"]", NULL, &e),
        ERR_INVALID_PARAMETER_VALUE);
    assert_int_equal(
        guard("GRANT SELECT ON {0:ident}.* TO {1:str}@'%'", "[\"m_sql\", \"app\"]", NULL, &e),
        ERR_INVALID_PARAMETER_VALUE);
    assert_int_equal(guard("USE {0:ident}", "[\"Performance_Schema\"]", NULL, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_int_equal(guard("GRANT SELECT ON {0:ident}.{1:ident} TO {2:str}@'%'",
                           "[\"shop\", \"orders\", \"app\"]", NULL, &e),
                     0);
}

static void test_action_guard_collects_the_accounts_of_every_template(void **state)
{
    (void)state;
    json_t *action = json_loads(
        "{\"mysql\": {\"capture\": \"SELECT 1 FROM mysql.user WHERE User = {0:str}\","
        " \"done_if\": \"SELECT COUNT(*) FROM mysql.user WHERE 0 AND {0:str}@{1:str} IS NULL\","
        " \"statements\": [\"DROP USER {0:str}@{1:str}\", \"CREATE USER {0:str}@{2:str}\"],"
        " \"args\": [\"app\", \"%\", \"10.0.0.1\"]}}",
        0, NULL);
    assert_non_null(action);
    json_t *found = json_array();
    struct err e;
    assert_int_equal(mysql_conn_guard_action(action, "mysql://admin:pw@127.0.0.1:3306", found, &e),
                     0);
    json_t *want = json_pack("[[s,s],[s,s],[s,s]]", "app", "%", "app", "%", "app", "10.0.0.1");
    assert_true(json_equal(found, want));
    json_decref(want);
    json_decref(found);
    /* a reserved account is refused before anything is asked of the server */
    json_t *root = json_pack("{s:{s:s,s:[s,s]}}", "mysql", "sql", "DROP USER {0:str}@{1:str}",
                             "args", "admin", "%");
    found = json_array();
    assert_int_equal(mysql_conn_guard_action(root, "mysql://admin:pw@127.0.0.1:3306", found, &e),
                     ERR_CDB_OPERATION_DENIED);
    assert_non_null(strstr(e.msg, "manages the instance"));
    json_decref(found);
    json_decref(root);
    json_decref(action);
}

static void test_live_check_of_an_unreachable_instance_is_a_task_error(void **state)
{
    (void)state;
    struct instance in = {.instance_id = "cdb-down"};
    snprintf(in.dsn, sizeof in.dsn, "mysql://admin:Secret-pw-1@127.0.0.1:1");
    struct err e = {0};
    json_t *none = json_array();
    assert_int_equal(cdb_accounts_check_live(&in, none, &e), 0); /* nothing to ask: no connect */
    json_t *accounts = json_pack("[[s,s]]", "app", "%");
    assert_int_equal(cdb_accounts_check_live(&in, accounts, &e), ERR_CDB_TASK_ERROR);
    assert_non_null(strstr(e.msg, "instance cdb-down: cannot connect to MySQL at 127.0.0.1:1"));
    assert_non_null(strstr(e.msg, "no task was created"));
    assert_null(strstr(e.msg, "Secret-pw-1"));
    snprintf(in.dsn, sizeof in.dsn, "postgres://admin:Secret-pw-1@127.0.0.1");
    assert_int_equal(cdb_accounts_check_live(&in, accounts, &e), ERR_CDB_TASK_ERROR);
    assert_null(strstr(e.msg, "Secret-pw-1"));
    json_decref(accounts);
    json_decref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_accounts_are_reserved_on_every_host),
        cmocka_unit_test(test_dsn_user_and_operator_list_are_reserved),
        cmocka_unit_test(test_privileges_follow_the_sdk_lists_per_scope),
        cmocka_unit_test(test_live_privileges_of_operator_accounts_are_recognised),
        cmocka_unit_test(test_system_schemas_and_wildcards_are_refused),
        cmocka_unit_test(test_template_guard_finds_accounts_however_written),
        cmocka_unit_test(test_template_guard_refuses_system_schemas_in_identifiers),
        cmocka_unit_test(test_action_guard_collects_the_accounts_of_every_template),
        cmocka_unit_test(test_live_check_of_an_unreachable_instance_is_a_task_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
