/* Unit tests: identifier minting and the per-product task id shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/ids.h"

static void test_cdb_task_ids_have_four_groups_of_lower_hex(void **state)
{
    (void)state;
    char id[IDS_CDB_TASK_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        ids_cdb_task(id);
        assert_int_equal(strlen(id), 35);
        assert_true(ids_is_cdb_task(id));
        assert_false(ids_is_mongodb_task(id));
        for (int j = 0; j < 35; j++)
            if (j % 9 == 8)
                assert_int_equal(id[j], '-');
            else
                assert_true((id[j] >= '0' && id[j] <= '9') || (id[j] >= 'a' && id[j] <= 'f'));
    }
}

static void test_cdb_task_ids_do_not_repeat(void **state)
{
    (void)state;
    char a[IDS_CDB_TASK_LEN + 1], b[IDS_CDB_TASK_LEN + 1];
    ids_cdb_task(a);
    ids_cdb_task(b);
    assert_string_not_equal(a, b);
}

/* The first 12 hex digits are the creation time in ms: ids minted later sort after. */
static void test_cdb_task_ids_sort_by_creation_time(void **state)
{
    (void)state;
    char a[IDS_CDB_TASK_LEN + 1], b[IDS_CDB_TASK_LEN + 1];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    ids_cdb_task(a);
    usleep(3000);
    ids_cdb_task(b);
    assert_true(strcmp(a, b) < 0);
    char ms_hex[13];
    memcpy(ms_hex, a, 8);
    memcpy(ms_hex + 8, a + 9, 4);
    ms_hex[12] = '\0';
    long long ms = strtoll(ms_hex, NULL, 16);
    assert_true(ms >= now && ms - now < 1000);
    assert_memory_not_equal(a + 13, b + 13, 22); /* the random part */
}

static void test_cdb_shape_rejects_near_misses(void **state)
{
    (void)state;
    assert_true(ids_is_cdb_task("f96e4f3c-8fc96c86-2ec79ac8-cb63a7a7"));
    assert_false(ids_is_cdb_task("F96E4F3C-8FC96C86-2EC79AC8-CB63A7A7"));  /* upper case */
    assert_false(ids_is_cdb_task("f96e4f3c-8fc96c86-2ec79ac8-cb63a7a"));   /* short */
    assert_false(ids_is_cdb_task("f96e4f3c-8fc96c86-2ec79ac8-cb63a7a77")); /* long */
    assert_false(ids_is_cdb_task("f96e4f3c_8fc96c86-2ec79ac8-cb63a7a7"));  /* separator */
    assert_false(ids_is_cdb_task("g96e4f3c-8fc96c86-2ec79ac8-cb63a7a7"));  /* not hex */
    assert_false(ids_is_cdb_task(""));
    assert_false(ids_is_cdb_task("4762"));
}

static void test_mongodb_shape_is_a_decimal_without_leading_zero(void **state)
{
    (void)state;
    assert_true(ids_is_mongodb_task("4762"));
    assert_true(ids_is_mongodb_task("1"));
    assert_true(ids_is_mongodb_task("9223372036854775807"));
    assert_false(ids_is_mongodb_task("0"));
    assert_false(ids_is_mongodb_task("04762"));
    assert_false(ids_is_mongodb_task("-4762"));
    assert_false(ids_is_mongodb_task("47 62"));
    assert_false(ids_is_mongodb_task("4762a"));
    assert_false(ids_is_mongodb_task("12345678901234567890"));
    assert_false(ids_is_mongodb_task(""));
}

static void test_uuid_is_version_4_lower_case(void **state)
{
    (void)state;
    char u[IDS_UUID_LEN + 1];
    ids_uuid(u);
    assert_int_equal(strlen(u), 36);
    assert_int_equal(u[8], '-');
    assert_int_equal(u[13], '-');
    assert_int_equal(u[14], '4');
    assert_true(strchr("89ab", u[19]) != NULL);
    for (int i = 0; i < 36; i++)
        assert_true(u[i] == '-' || (u[i] >= '0' && u[i] <= '9') || (u[i] >= 'a' && u[i] <= 'f'));
}

static void test_alnum_and_decimal_have_the_asked_length_and_alphabet(void **state)
{
    (void)state;
    char s[33], d[13];
    ids_alnum(s, 32);
    assert_int_equal(strlen(s), 32);
    for (int i = 0; i < 32; i++)
        assert_true((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
                    (s[i] >= 'A' && s[i] <= 'Z'));
    for (int k = 0; k < 200; k++) {
        ids_decimal(d, 12);
        assert_int_equal(strlen(d), 12);
        assert_true(d[0] != '0');
        assert_true(ids_is_mongodb_task(d));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cdb_task_ids_have_four_groups_of_lower_hex),
        cmocka_unit_test(test_cdb_task_ids_do_not_repeat),
        cmocka_unit_test(test_cdb_task_ids_sort_by_creation_time),
        cmocka_unit_test(test_cdb_shape_rejects_near_misses),
        cmocka_unit_test(test_mongodb_shape_is_a_decimal_without_leading_zero),
        cmocka_unit_test(test_uuid_is_version_4_lower_case),
        cmocka_unit_test(test_alnum_and_decimal_have_the_asked_length_and_alphabet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
