/* Unit tests: the generated async-action table, the generic checker (unknown, missing and
 * mistyped parameters against each action's SDK model) and the generic handler on simulated and
 * real instances. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "fixture.h"
#include "products/async_actions.h"
#include "store/store.h"

static size_t count(const char *product)
{
    size_t n = 0;
    for (const struct async_action *a = async_actions_all; a->product; a++)
        n += strcmp(a->product, product) == 0;
    return n;
}

static void test_table_lists_every_async_action_with_its_models(void **state)
{
    (void)state;
    assert_int_equal(count("cdb"), 38);
    assert_int_equal(count("mongodb"), 23);
    for (const struct async_action *a = async_actions_all; a->product; a++) {
        assert_non_null(sdk_model_find(a->product, a->action.request_model));
        const struct sdk_model *resp = sdk_model_find(a->product, a->response_model);
        assert_non_null(resp);
        assert_true(sdk_model_has(resp, a->id_field));
        assert_ptr_equal(a->action.fn, async_action_run);
        bool number = strcmp(a->id_field, "FlowId") == 0 || strcmp(a->id_field, "TaskId") == 0;
        assert_int_equal(a->id_kind, number ? SDK_NUMBER : SDK_STRING);
        if (strcmp(a->product, "cdb") == 0)
            assert_string_equal(a->id_field, "AsyncRequestId");
    }
    const struct async_action *a = async_action_find("mongodb", "RestartNodes");
    assert_non_null(a);
    assert_string_equal(a->id_field, "FlowId");
    assert_string_equal(async_action_find("mongodb", "ModifyInstanceParams")->id_field, "TaskId");
    assert_string_equal(async_action_find("mongodb", "IsolateDBInstance")->id_field,
                        "AsyncRequestId");
    assert_null(async_action_find("cdb", "RestartNodes"));        /* mongodb's, not cdb's */
    assert_null(async_action_find("cdb", "DescribeDBInstances")); /* answers no task id */
    assert_non_null(async_action_route(&product_cdb, "VerifyRootAccount"));
    assert_null(async_action_route(&product_mongodb, "VerifyRootAccount"));
}

static const char *instance_of(const char *product, const char *action, const char *params,
                               char *buf, size_t size)
{
    json_t *p = json_loads(params, 0, NULL);
    assert_non_null(p);
    const struct async_action *a = async_action_find(product, action);
    assert_non_null(a);
    const char *id = async_action_instance_id(sdk_model_find(product, a->action.request_model), p);
    snprintf(buf, size, "%s", id ? id : "(none)");
    json_decref(p);
    return buf;
}

static void test_instance_is_instance_id_or_the_first_of_instance_ids(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(instance_of("cdb", "OpenWanService", "{\"InstanceId\":\"cdb-1\"}", b, 64),
                        "cdb-1");
    assert_string_equal(
        instance_of("cdb", "RestartDBInstances", "{\"InstanceIds\":[\"cdb-2\",\"cdb-3\"]}", b, 64),
        "cdb-2");
    assert_string_equal(instance_of("cdb", "OpenSSL", "{}", b, 64), "(none)"); /* optional */
    assert_string_equal(instance_of("cdb", "StartBatchRollback", "{\"Instances\":[]}", b, 64),
                        "(none)"); /* the model has no instance field */
}

static void test_input_leaves_secrets_out(void **state)
{
    (void)state;
    json_t *p = json_pack("{s:s, s:s, s:s, s:s}", "InstanceId", "cmgo-1", "UserName", "u",
                          "Password", "p", "NewPassword", "q");
    json_t *in = async_action_input(p);
    assert_int_equal(json_object_size(in), 2);
    assert_non_null(json_object_get(in, "UserName"));
    assert_null(json_object_get(in, "Password"));
    assert_null(json_object_get(in, "NewPassword"));
    json_decref(in);
    json_decref(p);
}

/* ---- the checker and the handler, on a SQLite store ---- */

struct fx {
    char dir[64];
    struct store *s;
    struct account who;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct err e = {0};
    if (fixture_mkdtemp(f->dir, sizeof f->dir, "test_async_actions") != 0 ||
        store_open(NULL, f->dir, &f->s, &e) != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    snprintf(f->who.uin, sizeof f->who.uin, "100000000001");
    snprintf(f->who.owner_uin, sizeof f->who.owner_uin, "100000000001");
    struct instance sim = {.product = "mongodb",
                           .instance_id = "cmgo-sim1",
                           .region = "ap-guangzhou",
                           .uin = "100000000001",
                           .status = "running",
                           .simulated = true};
    struct instance real = sim;
    snprintf(real.instance_id, sizeof real.instance_id, "cmgo-real1");
    snprintf(real.dsn, sizeof real.dsn, "mongodb://127.0.0.1:1");
    real.simulated = false;
    struct instance cdb = sim;
    snprintf(cdb.product, sizeof cdb.product, "cdb");
    snprintf(cdb.instance_id, sizeof cdb.instance_id, "cdb-sim1");
    if (store_instance_create(f->s, &sim, &e) || store_instance_create(f->s, &real, &e) ||
        store_instance_create(f->s, &cdb, &e)) {
        fprintf(stderr, "instance_create: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    fixture_rm_tree(f->dir);
    free(f);
    return 0;
}

/* Checks then runs action as the front door does; the answer into *resp (caller frees). */
static int call(struct fx *f, const struct product *p, const char *action, const char *params,
                bool form, json_t **resp, struct err *e)
{
    json_t *jp = json_loads(params, 0, NULL);
    assert_non_null(jp);
    const struct action *a = async_action_route(p, action);
    assert_non_null(a);
    struct api_call c = {.product = p,
                         .action = a->name,
                         .region = "ap-guangzhou",
                         .params = jp,
                         .params_from_form = form,
                         .who = &f->who,
                         .store = f->s,
                         .node = "unit"};
    *resp = json_object();
    int rc = product_check_params(&c, a, e);
    if (!rc)
        rc = a->fn(&c, *resp, e);
    json_decref(jp);
    return rc;
}

static void expect_error(struct fx *f, const struct product *p, const char *action,
                         const char *params, bool form, int code, const char *needle)
{
    json_t *resp;
    struct err e = {0};
    assert_int_equal(call(f, p, action, params, form, &resp, &e), code);
    if (!strstr(e.msg, needle))
        fail_msg("%s %s: \"%s\" does not say \"%s\"", action, params, e.msg, needle);
    json_decref(resp);
}

static void test_checker_refuses_unknown_missing_and_mistyped_parameters(void **state)
{
    struct fx *f = *state;
    const struct product *m = &product_mongodb;
    expect_error(f, m, "RestartNodes", "{\"InstanceId\":\"cmgo-sim1\",\"Nodes\":[]}", false,
                 ERR_UNKNOWN_PARAMETER, "Nodes");
    expect_error(f, m, "CreateAccountUser", "{\"InstanceId\":\"cmgo-sim1\",\"Password\":\"p\"}",
                 false, ERR_MISSING_PARAMETER, "UserName");
    expect_error(f, m, "CreateBackupDBInstance",
                 "{\"InstanceId\":\"cmgo-sim1\",\"BackupMethod\":\"logical\"}", false,
                 ERR_INVALID_PARAMETER, "BackupMethod: expected a number");
    expect_error(f, m, "SetAccountUserPrivilege",
                 "{\"InstanceId\":\"cmgo-sim1\",\"UserName\":\"u\",\"AuthRole\":[{\"Mask\":1}]}",
                 false, ERR_MISSING_PARAMETER, "AuthRole.0.NameSpace");
    expect_error(f, m, "InstanceEnableSSL", "{\"InstanceId\":\"cmgo-sim1\",\"Enable\":\"yes\"}",
                 true, ERR_INVALID_PARAMETER, "Enable: expected a boolean");
    expect_error(f, &product_cdb, "RestartDBInstances", "{\"InstanceIds\":\"cdb-sim1\"}", false,
                 ERR_INVALID_PARAMETER, "InstanceIds: expected an array");
}

static void test_simulated_instance_gets_a_task_id_in_the_documented_shape(void **state)
{
    struct fx *f = *state;
    json_t *resp;
    struct err e = {0};
    /* A form request: "true" is a boolean there. */
    assert_int_equal(call(f, &product_mongodb, "InstanceEnableSSL",
                          "{\"InstanceId\":\"cmgo-sim1\",\"Enable\":\"true\"}", true, &resp, &e),
                     0);
    json_t *flow = json_object_get(resp, "FlowId");
    assert_true(json_is_integer(flow) && json_integer_value(flow) > 0);
    /* The other documented fields, empty; RequestId is the front door's. */
    assert_int_equal(json_integer_value(json_object_get(resp, "Status")), 0);
    assert_string_equal(json_string_value(json_object_get(resp, "CertUrl")), "");
    assert_null(json_object_get(resp, "RequestId"));
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(flow));
    struct task_summary t;
    assert_int_equal(store_task_summary(f->s, "mongodb", id, &t, &e), 0);
    assert_string_equal(t.instance_id, "cmgo-sim1");
    json_decref(resp);

    assert_int_equal(call(f, &product_cdb, "RestartDBInstances", "{\"InstanceIds\":[\"cdb-sim1\"]}",
                          false, &resp, &e),
                     0);
    const char *aid = json_string_value(json_object_get(resp, "AsyncRequestId"));
    assert_non_null(aid);
    assert_true(ids_is_cdb_task(aid));
    json_decref(resp);

    /* No instance in the model's request: a task without one. */
    assert_int_equal(
        call(f, &product_cdb, "ModifyRoGroupInfo", "{\"RoGroupId\":\"cdbrg-1\"}", false, &resp, &e),
        0);
    aid = json_string_value(json_object_get(resp, "AsyncRequestId"));
    assert_int_equal(store_task_summary(f->s, "cdb", aid, &t, &e), 0);
    assert_string_equal(t.instance_id, "");
    json_decref(resp);
}

static void test_real_instance_or_a_stranger_is_refused(void **state)
{
    struct fx *f = *state;
    expect_error(f, &product_mongodb, "RestartNodes",
                 "{\"InstanceId\":\"cmgo-real1\",\"NodeIds\":[]}", false, ERR_UNSUPPORTED_OPERATION,
                 "needs a simulated instance");
    expect_error(f, &product_mongodb, "RestartNodes",
                 "{\"InstanceId\":\"cmgo-nope\",\"NodeIds\":[]}", false, ERR_INSTANCE_NOT_FOUND,
                 "cmgo-nope");
    snprintf(f->who.owner_uin, sizeof f->who.owner_uin, "100000000002");
    expect_error(f, &product_mongodb, "RestartNodes",
                 "{\"InstanceId\":\"cmgo-sim1\",\"NodeIds\":[]}", false, ERR_INSTANCE_NOT_FOUND,
                 "cmgo-sim1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lists_every_async_action_with_its_models),
        cmocka_unit_test(test_instance_is_instance_id_or_the_first_of_instance_ids),
        cmocka_unit_test(test_input_leaves_secrets_out),
        cmocka_unit_test_setup_teardown(
            test_checker_refuses_unknown_missing_and_mistyped_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_simulated_instance_gets_a_task_id_in_the_documented_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_instance_or_a_stranger_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
