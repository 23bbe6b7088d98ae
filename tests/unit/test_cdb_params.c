/* Unit tests: the cdb parameter catalogue (products/cdb_params.c) -- loading and merging, the
 * names no catalogue may hold, value checks per type -- and the mysql executor's "parameter" key
 * that hands a step's name and value to it (exec_validate, no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "exec/exec.h"
#include "products/cdb_params.h"

static json_t *doc(const char *text)
{
    json_error_t je;
    json_t *d = json_loads(text, 0, &je);
    if (!d)
        fail_msg("bad test JSON: %s", je.text);
    return d;
}

static void expect_refused(const char *name, const char *value, const char *why)
{
    struct err e = {0};
    if (cdb_params_check(name, value, &e) != ERR_INVALID_PARAMETER_VALUE)
        fail_msg("%s=%s: expected InvalidParameterValue", name, value ? value : "(none)");
    if (!strstr(e.msg, why))
        fail_msg("%s=%s: expected \"%s\" in \"%s\"", name, value ? value : "(none)", why, e.msg);
}

static void expect_allowed(const char *name, const char *value)
{
    struct err e = {0};
    if (cdb_params_check(name, value, &e) != 0)
        fail_msg("%s=%s: expected allowed, got %s", name, value ? value : "(none)", e.msg);
}

static void expect_load_error(const char *text, const char *why)
{
    json_t *d = doc(text);
    struct err e = {0};
    size_t before = cdb_params_count();
    if (cdb_params_load_json(d, NULL, &e) != ERR_INVALID_PARAMETER_VALUE)
        fail_msg("expected a load error for %s", text);
    if (!strstr(e.msg, why))
        fail_msg("expected \"%s\" in \"%s\"", why, e.msg);
    assert_int_equal(cdb_params_count(), before); /* the old catalogue stays */
    json_decref(d);
}

static void test_shipped_catalogue_loads_and_checks(void **state)
{
    (void)state;
    struct err e = {0};
    if (cdb_params_load("flows", NULL, &e) != 0)
        fail_msg("%s", e.msg);
    assert_true(cdb_params_count() >= 20);
    expect_allowed("max_connections", "10");
    expect_allowed("max_connections", "100000");
    expect_refused("max_connections", "9", "from 10 to 100000, not \"9\"");
    expect_refused("max_connections", "1e3", "takes an integer");
    expect_refused("max_connections", "", "takes an integer");
    expect_refused("max_connections", "99999999999999999999", "takes an integer");
    expect_allowed("long_query_time", "0.5");
    expect_allowed("long_query_time", "3600");
    expect_refused("long_query_time", "-1", "from 0 to 3600");
    expect_refused("long_query_time", "1.", "takes a number");
    expect_refused("long_query_time", "nan", "takes a number");
    expect_allowed("slow_query_log", "on");
    expect_refused("slow_query_log", "1", "takes one of ON, OFF");
    expect_allowed("sql_mode", "");
    expect_allowed("sql_mode", "STRICT_TRANS_TABLES,no_zero_date");
    expect_refused("sql_mode", "STRICT_TRANS_TABLES,,NO_ZERO_DATE", "does not take \"\"");
    expect_refused("sql_mode", "NO_BACKSLASH_ESCAPES", "does not take \"NO_BACKSLASH_ESCAPES\"");
    expect_allowed("time_zone", "+08:00");
    expect_refused("time_zone", "'; DROP", "matching");
    expect_refused("lower_case_table_names", "1", "only after a restart");
    expect_allowed("lower_case_table_names", NULL); /* a capture or a restore */
    expect_refused("init_connect", NULL, "not one that can be modified");
    expect_refused("init_connect", "SELECT 1", "not one that can be modified");
    expect_refused("secure_file_priv", "/", "not one that can be modified");
}

static void test_operator_file_merges_over_the_shipped_one(void **state)
{
    (void)state;
    json_t *shipped = doc("{\"parameters\": ["
                          "{\"name\": \"a_x\", \"type\": \"integer\", \"min\": 1, \"max\": 5, "
                          "\"default\": \"1\"},"
                          "{\"name\": \"b_y\", \"type\": \"enum\", \"values\": [\"ON\", \"OFF\"], "
                          "\"default\": \"ON\"}]}");
    json_t *op = doc("{\"parameters\": ["
                     "{\"name\": \"a_x\", \"type\": \"integer\", \"min\": 1, \"max\": 9, "
                     "\"default\": \"2\"},"
                     "{\"name\": \"b_y\", \"remove\": true},"
                     "{\"name\": \"c_z\", \"type\": \"string\", \"max_length\": 3, \"default\": "
                     "\"ab\", \"editable\": false}]}");
    struct err e = {0};
    assert_int_equal(cdb_params_load_json(shipped, op, &e), 0);
    assert_int_equal(cdb_params_count(), 2);
    expect_allowed("a_x", "9");
    expect_refused("b_y", "ON", "not one that can be modified");
    expect_refused("c_z", "ab", "cannot be modified");
    expect_allowed("c_z", NULL);
    json_decref(shipped);
    json_decref(op);
}

static void test_bad_catalogues_are_refused(void **state)
{
    (void)state;
    expect_load_error("{\"parameters\": [{\"name\": \"init_connect\", \"type\": \"string\", "
                      "\"default\": \"\"}]}",
                      "runs SQL, names a file");
    expect_load_error("{\"parameters\": [{\"name\": \"general_log_file\", \"type\": \"string\", "
                      "\"default\": \"x\"}]}",
                      "runs SQL, names a file");
    expect_load_error("{\"parameters\": [{\"name\": \"plugin_maturity\", \"type\": \"string\", "
                      "\"default\": \"x\"}]}",
                      "runs SQL, names a file");
    expect_load_error("{\"parameters\": [{\"name\": \"x\", \"type\": \"integer\", \"min\": 5, "
                      "\"max\": 1, \"default\": \"1\"}]}",
                      "min <= max");
    expect_load_error("{\"parameters\": [{\"name\": \"x\", \"type\": \"integer\", \"min\": 1, "
                      "\"max\": 5, \"default\": \"7\"}]}",
                      "\"default\": The parameter x takes an integer from 1 to 5");
    expect_load_error("{\"parameters\": [{\"name\": \"x\", \"type\": \"enum\", \"default\": "
                      "\"a\"}]}",
                      "needs \"values\"");
    expect_load_error("{\"parameters\": [{\"name\": \"x\", \"type\": \"integer\", \"min\": 1, "
                      "\"max\": 5, \"default\": \"1\", \"dynamic\": true}]}",
                      "unknown field \"dynamic\"");
    expect_load_error("{\"parameters\": [{\"name\": \"X y\", \"type\": \"string\", \"default\": "
                      "\"\"}]}",
                      "MySQL variable name");
    expect_load_error("{\"parameters\": [{\"name\": \"x\", \"type\": \"blob\", \"default\": "
                      "\"\"}]}",
                      "not blob");
    expect_load_error("{\"params\": []}", "expected {\"parameters\": [...]}");
}

static int validate(const char *action_text, struct err *e)
{
    json_t *a = doc(action_text);
    int rc = exec_validate(a, e);
    json_decref(a);
    return rc;
}

static void test_mysql_parameter_key_asks_the_catalogue(void **state)
{
    (void)state;
    struct err e = {0};
    assert_int_equal(cdb_params_load("flows", NULL, &e), 0);
    assert_int_equal(validate("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = {1:val}\", "
                              "\"args\": [\"wait_timeout\", \"100\"], "
                              "\"parameter\": {\"name\": 0, \"value\": 1}}}",
                              &e),
                     0);
    assert_int_equal(validate("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = {1:val}\", "
                              "\"args\": [\"wait_timeout\", \"0\"], "
                              "\"parameter\": {\"name\": 0, \"value\": 1}}}",
                              &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "wait_timeout takes an integer from 1 to 31536000"));
    assert_int_equal(validate("{\"mysql\": {\"capture\": \"SELECT @@GLOBAL.{0:ident}\", "
                              "\"args\": [\"init_connect\"], \"parameter\": {\"name\": 0}}}",
                              &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "init_connect is not one"));
    /* a capture alone is an action of its own */
    assert_int_equal(validate("{\"mysql\": {\"capture\": \"SELECT @@GLOBAL.{0:ident}\", "
                              "\"args\": [\"wait_timeout\"], \"parameter\": {\"name\": 0}}}",
                              &e),
                     0);
    assert_int_equal(validate("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = 1\", "
                              "\"args\": [\"wait_timeout\"], \"parameter\": {\"name\": 3}}}",
                              &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "mysql.parameter.name"));
    assert_int_equal(validate("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = 1\", "
                              "\"args\": [\"wait_timeout\"], \"parameter\": {\"name\": 0, "
                              "\"other\": 1}}}",
                              &e),
                     ERR_INVALID_PARAMETER_VALUE);
    cdb_params_unload();
    assert_int_equal(validate("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = {1:val}\", "
                              "\"args\": [\"wait_timeout\", \"100\"], "
                              "\"parameter\": {\"name\": 0, \"value\": 1}}}",
                              &e),
                     ERR_INVALID_PARAMETER_VALUE); /* no catalogue: nothing may be set */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_catalogue_loads_and_checks),
        cmocka_unit_test(test_operator_file_merges_over_the_shipped_one),
        cmocka_unit_test(test_bad_catalogues_are_refused),
        cmocka_unit_test(test_mysql_parameter_key_asks_the_catalogue),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cdb_params_unload();
    return rc;
}
