/* Unit tests: the generated SDK models fill answers with every documented field and check request
 * parameters for presence and kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "products/sdk_models.h"

static void test_models_are_generated_for_both_products(void **state)
{
    (void)state;
    assert_non_null(sdk_model_find("cdb", "InstanceInfo"));
    assert_non_null(sdk_model_find("cdb", "MasterInfo")); /* reached from InstanceInfo */
    assert_non_null(sdk_model_find("mongodb", "InstanceDetail"));
    assert_null(sdk_model_find("mongodb", "InstanceInfo"));
    assert_null(sdk_model_find("cdb", "NoSuchThing"));
}

static void test_fill_adds_what_is_missing_and_keeps_what_is_there(void **state)
{
    (void)state;
    const struct sdk_model *m = sdk_model_find("cdb", "InstanceInfo");
    json_t *o = json_pack("{s:s, s:I, s:{s:s}, s:[{}]}", "InstanceId", "cdb-1", "Status", 5,
                          "MasterInfo", "Region", "ap-x", "RoGroups");
    sdk_model_fill(m, o);
    assert_int_equal(json_object_size(o), m->n_fields);
    assert_string_equal(json_string_value(json_object_get(o, "InstanceId")), "cdb-1");
    assert_int_equal(json_integer_value(json_object_get(o, "Status")), 5);
    assert_string_equal(json_string_value(json_object_get(o, "Zone")), "");
    assert_int_equal(json_integer_value(json_object_get(o, "Memory")), 0);
    assert_true(json_is_array(json_object_get(o, "DrInfo")));
    json_t *master = json_object_get(o, "MasterInfo");
    assert_string_equal(json_string_value(json_object_get(master, "Region")), "ap-x");
    assert_string_equal(json_string_value(json_object_get(master, "Zone")), "");
    json_t *group = json_array_get(json_object_get(o, "RoGroups"), 0);
    assert_true(json_object_size(group) > 3); /* the empty item got RoGroup's fields */
    json_t *slave = json_object_get(o, "SlaveInfo");
    assert_true(json_is_object(json_object_get(slave, "First"))); /* two levels down */
    json_decref(o);
}

static int check(const char *product, const char *model, const char *params, bool form,
                 struct err *e)
{
    json_t *p = json_loads(params, 0, NULL);
    assert_non_null(p);
    int rc = sdk_model_check(sdk_model_find(product, model), p, form, "TheAction", e);
    json_decref(p);
    return rc;
}

static void test_check_names_missing_and_mistyped_parameters(void **state)
{
    (void)state;
    struct err e = {0};
    const char *acc = "\"Accounts\":[{\"User\":\"u\",\"Host\":\"%\"}]";
    char buf[256];
    snprintf(buf, sizeof buf, "{\"InstanceId\":\"cdb-1\",%s,\"Password\":\"pw\"}", acc);
    assert_int_equal(check("cdb", "CreateAccountsRequest", buf, false, &e), 0);
    snprintf(buf, sizeof buf, "{\"InstanceId\":\"cdb-1\",%s}", acc);
    assert_int_equal(check("cdb", "CreateAccountsRequest", buf, false, &e), ERR_MISSING_PARAMETER);
    assert_non_null(strstr(e.msg, "`Password` is missing; TheAction needs it"));
    assert_int_equal(
        check("cdb", "CreateAccountsRequest",
              "{\"InstanceId\":\"c\",\"Password\":\"p\",\"Accounts\":[{\"User\":\"u\"}]}", false,
              &e),
        ERR_MISSING_PARAMETER);
    assert_non_null(strstr(e.msg, "`Accounts.0.Host` is missing"));
    assert_int_equal(check("cdb", "CreateAccountsRequest",
                           "{\"InstanceId\":5,\"Password\":\"p\",\"Accounts\":[]}", false, &e),
                     ERR_INVALID_PARAMETER);
    assert_non_null(strstr(e.msg, "InstanceId: expected a string, got a number"));
    assert_int_equal(
        check("cdb", "DescribeDBInstancesRequest", "{\"Status\":[1,\"x\"]}", false, &e),
        ERR_INVALID_PARAMETER);
    assert_non_null(strstr(e.msg, "Status.1: expected a number, got a string"));
}

static void test_check_reads_form_strings_as_numbers_and_booleans(void **state)
{
    (void)state;
    struct err e = {0};
    const char *p = "{\"Limit\":\"20\",\"Status\":[\"1\"],\"QueryClusterInfo\":\"true\"}";
    assert_int_equal(check("cdb", "DescribeDBInstancesRequest", p, true, &e), 0);
    assert_int_equal(check("cdb", "DescribeDBInstancesRequest", p, false, &e),
                     ERR_INVALID_PARAMETER);
    assert_int_equal(check("cdb", "DescribeDBInstancesRequest", "{\"Limit\":\"20x\"}", true, &e),
                     ERR_INVALID_PARAMETER);
    assert_true(sdk_model_has(sdk_model_find("cdb", "DescribeDBInstancesRequest"), "WithRo"));
    assert_false(sdk_model_has(sdk_model_find("cdb", "DescribeDBInstancesRequest"), "withro"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_are_generated_for_both_products),
        cmocka_unit_test(test_fill_adds_what_is_missing_and_keeps_what_is_there),
        cmocka_unit_test(test_check_names_missing_and_mistyped_parameters),
        cmocka_unit_test(test_check_reads_form_strings_as_numbers_and_booleans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
