/* Unit tests for common/json_keys: the first unknown key of an object, the joined list of known
 * names, and the InvalidParameterValue message that names both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/json_keys.h"

static const char *const names[] = {"name", "type", "min", "max"};
#define N (sizeof names / sizeof names[0])

static void test_known_keys_and_non_objects_have_no_unknown_key(void **state)
{
    (void)state;
    json_t *all = json_pack("{s:s, s:s, s:i}", "name", "x", "type", "integer", "max", 3);
    json_t *empty = json_object(), *arr = json_pack("[s]", "bogus");
    assert_null(json_keys_unknown(all, names, N));
    assert_null(json_keys_unknown(empty, names, N));
    assert_null(json_keys_unknown(arr, names, N));
    assert_null(json_keys_unknown(NULL, names, N));
    json_decref(arr);
    json_decref(empty);
    json_decref(all);
}

static void test_first_unknown_key_in_insertion_order_is_named(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string("x"));
    json_object_set_new(o, "Type", json_string("integer")); /* names compare exactly */
    json_object_set_new(o, "dynamic", json_true());
    assert_string_equal(json_keys_unknown(o, names, N), "Type");
    assert_string_equal(json_keys_unknown(o, names, 0), "name");
    json_decref(o);
}

static void test_unknown_in_takes_the_names_from_an_object(void **state)
{
    (void)state;
    json_t *fields = json_pack("{s:{}, s:{}}", "Host", "User");
    json_t *ok = json_pack("{s:s}", "User", "u"),
           *bad = json_pack("{s:s, s:s}", "User", "u", "Pw", "p");
    assert_null(json_keys_unknown_in(ok, fields));
    assert_string_equal(json_keys_unknown_in(bad, fields), "Pw");
    assert_string_equal(json_keys_unknown_in(ok, NULL), "User"); /* no names: every key unknown */
    json_decref(bad);
    json_decref(ok);
    json_decref(fields);
}

static void test_join_lists_the_names_and_cuts_to_the_buffer(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(json_keys_join(names, N, buf, sizeof buf), strlen("name, type, min, max"));
    assert_string_equal(buf, "name, type, min, max");
    assert_int_equal(json_keys_join(names, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    char small[8];
    assert_int_equal(json_keys_join(names, N, small, sizeof small), strlen("name, type, min, max"));
    assert_string_equal(small, "name, t");
    assert_int_equal(json_keys_join(names, N, NULL, 0), strlen("name, type, min, max"));
}

static void test_check_names_the_field_and_the_known_ones(void **state)
{
    (void)state;
    json_t *ok = json_pack("{s:s}", "min", "1"),
           *bad = json_pack("{s:s, s:b}", "name", "x", "dynamic", 1);
    struct err e = {0};
    assert_int_equal(json_keys_check(ok, names, N, "params.json entry 0", &e), 0);
    assert_int_equal(json_keys_check(bad, names, N, "params.json entry 3", &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_int_equal(e.code, ERR_INVALID_PARAMETER_VALUE);
    assert_string_equal(
        e.msg, "params.json entry 3: unknown field \"dynamic\" (known: name, type, min, max)");
    assert_int_equal(json_keys_check(bad, names, N, "x", NULL), ERR_INVALID_PARAMETER_VALUE);
    json_decref(bad);
    json_decref(ok);
}

static void test_check_cuts_a_long_key_to_64_bytes(void **state)
{
    (void)state;
    char key[200], want[256];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    json_t *o = json_object();
    json_object_set_new(o, key, json_null());
    struct err e = {0};
    assert_int_equal(json_keys_check(o, names, N, "w", &e), ERR_INVALID_PARAMETER_VALUE);
    snprintf(want, sizeof want, "w: unknown field \"%.64s\" (known: name, type, min, max)", key);
    assert_string_equal(e.msg, want);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_keys_and_non_objects_have_no_unknown_key),
        cmocka_unit_test(test_first_unknown_key_in_insertion_order_is_named),
        cmocka_unit_test(test_unknown_in_takes_the_names_from_an_object),
        cmocka_unit_test(test_join_lists_the_names_and_cuts_to_the_buffer),
        cmocka_unit_test(test_check_names_the_field_and_the_known_ones),
        cmocka_unit_test(test_check_cuts_a_long_key_to_64_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
