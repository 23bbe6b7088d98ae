/* Unit tests: the dialects' status words, the task state machine, operator verbs, routing tables
 * and allow-policies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/auth.h"
#include "task/task_state.h"
#include "products/product.h"

static void test_cdb_status_words_follow_the_design_table(void **state)
{
    (void)state;
    static const char *const want[TASK_STATE_COUNT] = {
        [TASK_INITIAL] = "INITIAL", [TASK_RUNNING] = "RUNNING", [TASK_PAUSED] = "PAUSED",
        [TASK_UNDOED] = "FAILED",   [TASK_FAILED] = "FAILED",   [TASK_SUCCESS] = "SUCCESS",
        [TASK_KILLED] = "KILLED",   [TASK_REMOVED] = "REMOVED", [TASK_WAITING] = "UNDEFINED",
    };
    for (int s = 0; s < TASK_STATE_COUNT; s++)
        assert_string_equal(product_status_word(&product_cdb, (enum task_state)s), want[s]);
}

static void test_mongodb_status_words_follow_the_design_table(void **state)
{
    (void)state;
    static const char *const want[TASK_STATE_COUNT] = {
        [TASK_INITIAL] = "initial", [TASK_RUNNING] = "running", [TASK_PAUSED] = "paused",
        [TASK_UNDOED] = "undoed",   [TASK_FAILED] = "failed",   [TASK_SUCCESS] = "success",
        [TASK_KILLED] = "failed",   [TASK_REMOVED] = "failed",  [TASK_WAITING] = "running",
    };
    for (int s = 0; s < TASK_STATE_COUNT; s++)
        assert_string_equal(product_status_word(&product_mongodb, (enum task_state)s), want[s]);
}

static void test_every_documented_status_word_is_reachable(void **state)
{
    (void)state;
    static const char *const cdb[] = {"INITIAL", "RUNNING", "SUCCESS", "FAILED",
                                      "KILLED",  "REMOVED", "PAUSED",  "UNDEFINED"};
    static const char *const mongo[] = {"initial", "running", "paused",
                                        "undoed",  "failed",  "success"};
    for (size_t i = 0; i < sizeof cdb / sizeof *cdb; i++) {
        int found = 0;
        for (int s = 0; s < TASK_STATE_COUNT; s++)
            found |= strcmp(product_cdb.status_words[s], cdb[i]) == 0;
        assert_true(found);
    }
    for (size_t i = 0; i < sizeof mongo / sizeof *mongo; i++) {
        int found = 0;
        for (int s = 0; s < TASK_STATE_COUNT; s++)
            found |= strcmp(product_mongodb.status_words[s], mongo[i]) == 0;
        assert_true(found);
    }
}

static void test_products_route_by_name_and_version(void **state)
{
    (void)state;
    assert_ptr_equal(product_by_name("cdb"), &product_cdb);
    assert_ptr_equal(product_by_name("mongodb"), &product_mongodb);
    assert_null(product_by_name("127"));
    assert_null(product_by_name("CDB"));
    assert_ptr_equal(product_by_version("2017-03-20"), &product_cdb);
    assert_ptr_equal(product_by_version("2019-07-25"), &product_mongodb);
    assert_null(product_by_version("2018-04-08"));
    assert_non_null(product_action(&product_cdb, "DescribeAsyncRequestInfo"));
    assert_null(product_action(&product_cdb, "describeasyncrequestinfo"));
}

static void test_dialect_error_codes(void **state)
{
    (void)state;
    assert_string_equal(err_tencent_code(product_cdb.err_task_not_found),
                        "InvalidParameter.InvalidAsyncRequestId");
    assert_string_equal(err_tencent_code(product_cdb.err_permission_denied),
                        "OperationDenied.UserHasNoStrategy");
    assert_string_equal(err_tencent_code(product_mongodb.err_permission_denied),
                        "InvalidParameter.PermissionDenied");
    assert_string_equal(err_tencent_code(ERR_MONGO_STATUS_ABNORMAL),
                        "InvalidParameterValue.StatusAbnormal");
}

static void test_state_machine_allows_only_design_transitions(void **state)
{
    (void)state;
    assert_true(task_state_can_move(TASK_INITIAL, TASK_RUNNING));
    assert_true(task_state_can_move(TASK_INITIAL, TASK_REMOVED));
    assert_false(task_state_can_move(TASK_INITIAL, TASK_SUCCESS));
    assert_true(task_state_can_move(TASK_RUNNING, TASK_KILLED));
    assert_true(task_state_can_move(TASK_PAUSED, TASK_RUNNING));
    assert_false(task_state_can_move(TASK_PAUSED, TASK_SUCCESS));
    assert_true(task_state_can_move(TASK_RUNNING, TASK_WAITING));
    assert_true(task_state_can_move(TASK_WAITING, TASK_RUNNING));
    assert_false(task_state_can_move(TASK_WAITING, TASK_SUCCESS));
    assert_false(task_state_can_move(TASK_INITIAL, TASK_WAITING));
    for (int s = 0; s < TASK_STATE_COUNT; s++)
        for (int t = 0; t < TASK_STATE_COUNT; t++)
            if (task_state_is_final((enum task_state)s))
                assert_false(task_state_can_move((enum task_state)s, (enum task_state)t));
}

static void test_verbs_refuse_with_a_reason(void **state)
{
    (void)state;
    enum task_state to;
    const char *why = NULL;
    assert_int_equal(task_verb_target(VERB_REMOVE, TASK_INITIAL, &to, &why), 0);
    assert_int_equal(to, TASK_REMOVED);
    assert_int_equal(task_verb_target(VERB_REMOVE, TASK_RUNNING, &to, &why), -1);
    assert_non_null(strstr(why, "initial"));
    assert_int_equal(task_verb_target(VERB_RESUME, TASK_INITIAL, &to, &why), -1);
    assert_int_equal(task_verb_target(VERB_PAUSE, TASK_INITIAL, &to, &why), -1);
    assert_int_equal(task_verb_target(VERB_KILL, TASK_WAITING, &to, &why), 0);
    assert_int_equal(to, TASK_KILLED);
    assert_int_equal(task_verb_target(VERB_KILL, TASK_PAUSED, &to, &why), 0);
    assert_int_equal(to, TASK_KILLED);
    assert_int_equal(task_verb_target(VERB_UNDO, TASK_SUCCESS, &to, &why), -1);
}

static void test_policies_match_product_action_patterns(void **state)
{
    (void)state;
    struct account a = {.is_root = false};
    assert_false(auth_allows(&a, "cdb", "DescribeAsyncRequestInfo")); /* no policy */
    a.policy_json = "[\"cdb:*\"]";
    assert_true(auth_allows(&a, "cdb", "DescribeAsyncRequestInfo"));
    assert_false(auth_allows(&a, "mongodb", "DescribeAsyncRequestInfo"));
    a.policy_json = "[\"mongodb:DescribeAsyncRequestInfo\"]";
    assert_true(auth_allows(&a, "mongodb", "DescribeAsyncRequestInfo"));
    assert_false(auth_allows(&a, "mongodb", "CreateBackupDBInstance"));
    a.policy_json = "[\"*\"]";
    assert_true(auth_allows(&a, "mongodb", "Anything"));
    a.policy_json = "[]";
    assert_false(auth_allows(&a, "cdb", "DescribeAsyncRequestInfo"));
    a.policy_json = NULL;
    a.is_root = true;
    assert_true(auth_allows(&a, "cdb", "DescribeAsyncRequestInfo"));
}

static void test_policy_patterns_are_checked(void **state)
{
    (void)state;
    assert_true(auth_pattern_valid("cdb:*"));
    assert_true(auth_pattern_valid("*"));
    assert_true(auth_pattern_valid("*:Describe*"));
    assert_false(auth_pattern_valid("cdb"));
    assert_false(auth_pattern_valid("cdb:"));
    assert_false(auth_pattern_valid(":x"));
    assert_false(auth_pattern_valid("cdb:a:b"));
    assert_false(auth_pattern_valid("cdb:[a]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cdb_status_words_follow_the_design_table),
        cmocka_unit_test(test_mongodb_status_words_follow_the_design_table),
        cmocka_unit_test(test_every_documented_status_word_is_reachable),
        cmocka_unit_test(test_products_route_by_name_and_version),
        cmocka_unit_test(test_dialect_error_codes),
        cmocka_unit_test(test_state_machine_allows_only_design_transitions),
        cmocka_unit_test(test_verbs_refuse_with_a_reason),
        cmocka_unit_test(test_policies_match_product_action_patterns),
        cmocka_unit_test(test_policy_patterns_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
