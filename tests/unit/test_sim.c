/* Unit tests for sim/: progression rules (parsing, which rule is most specific), the phase
 * arithmetic, the legal paths between phases, and the effects of a succeeded task. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "sim/sim.h"
#include "sim/sim_int.h"

static int parse(const char *name, const char *text, struct sim_rule *r, struct err *e)
{
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    int rc = sim_rule_parse(name, body, r, e);
    json_decref(body);
    return rc;
}

static void test_rule_of_the_design_parses(void **state)
{
    (void)state;
    struct sim_rule r;
    struct err e;
    assert_int_equal(parse("r1",
                           "{\"product\":\"cdb\",\"action\":\"CreateAccounts\",\"phases\":"
                           "[{\"state\":\"running\",\"polls\":2},{\"state\":\"success\","
                           "\"info\":\"Created.\"}]}",
                           &r, &e),
                     0);
    assert_int_equal(r.n_phases, 2);
    assert_int_equal(r.phases[0].state, TASK_RUNNING);
    assert_int_equal(r.phases[0].polls, 2);
    assert_string_equal(r.phases[1].info, "Created.");
    assert_string_equal(r.instance_id, "");
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "r1");
    sim_rule_clear(&r);
}

static void test_seconds_advance_waiting_and_error_parse(void **state)
{
    (void)state;
    struct sim_rule r;
    struct err e;
    assert_int_equal(
        parse("r",
              "{\"product\":\"mongodb\",\"phases\":[{\"state\":\"waiting\",\"s\":0.25},"
              "{\"state\":\"running\",\"until\":\"advance\",\"error\":{\"code\":"
              "\"InternalError\",\"message\":\"boom\"}},{\"state\":\"failed\"}]}",
              &r, &e),
        0);
    assert_string_equal(r.action, "*");
    assert_int_equal(r.phases[0].state, TASK_WAITING);
    assert_int_equal(r.phases[0].s_ms, 250);
    assert_true(r.phases[1].until_advance);
    assert_int_equal(r.phases[1].err_code, ERR_INTERNAL);
    assert_string_equal(r.phases[1].err_msg, "boom");
    sim_rule_clear(&r);
}

static void test_bad_rules_are_refused_saying_why(void **state)
{
    (void)state;
    static const struct {
        const char *text, *says;
    } bad[] = {
        {"{\"product\":\"cvm\",\"phases\":[{\"state\":\"success\"}]}", "product"},
        {"{\"product\":\"cdb\",\"phases\":[]}", "phases"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"done\"}]}", "phases[0].state"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\"},{\"state\":\"success\"}]}",
         "needs polls"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\",\"polls\":0}]}", "polls"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\",\"polls\":1,\"s\":1}]}",
         "one of"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"success\",\"polls\":1},"
         "{\"state\":\"running\"}]}",
         "final"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\",\"polls\":1},"
         "{\"state\":\"removed\"}]}",
         "cannot move"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"success\",\"error\":{\"code\":\"Nope\"}}]}",
         "not a code"},
        {"{\"product\":\"cdb\",\"phases\":[{\"state\":\"success\",\"colour\":1}]}", "unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sim_rule r;
        struct err e = {0};
        if (parse("r", bad[i].text, &r, &e) != ERR_BAD_REQUEST)
            fail_msg("accepted %s", bad[i].text);
        if (!strstr(e.msg, bad[i].says))
            fail_msg("%s: message \"%s\" does not say \"%s\"", bad[i].text, e.msg, bad[i].says);
    }
}

static void test_most_specific_rule_scores_highest(void **state)
{
    (void)state;
    struct sim_rule any, action, inst, task;
    struct err e;
    assert_int_equal(
        parse("a", "{\"product\":\"cdb\",\"phases\":[{\"state\":\"success\"}]}", &any, &e), 0);
    assert_int_equal(parse("b",
                           "{\"product\":\"cdb\",\"action\":\"DeleteAccounts\",\"phases\":"
                           "[{\"state\":\"success\"}]}",
                           &action, &e),
                     0);
    assert_int_equal(parse("c",
                           "{\"product\":\"cdb\",\"instance_id\":\"cdb-1\",\"phases\":"
                           "[{\"state\":\"success\"}]}",
                           &inst, &e),
                     0);
    assert_int_equal(parse("d",
                           "{\"product\":\"cdb\",\"task\":\"t-1\",\"phases\":"
                           "[{\"state\":\"success\"}]}",
                           &task, &e),
                     0);
    int s_any = sim_rule_score(&any, "cdb", "DeleteAccounts", "cdb-1", "t-1");
    int s_action = sim_rule_score(&action, "cdb", "DeleteAccounts", "cdb-1", "t-1");
    int s_inst = sim_rule_score(&inst, "cdb", "DeleteAccounts", "cdb-1", "t-1");
    int s_task = sim_rule_score(&task, "cdb", "DeleteAccounts", "cdb-1", "t-1");
    assert_true(s_any >= 0 && s_any < s_action && s_action < s_inst && s_inst < s_task);
    assert_int_equal(sim_rule_score(&any, "mongodb", "DeleteAccounts", NULL, NULL), -1);
    assert_int_equal(sim_rule_score(&action, "cdb", "CreateAccounts", NULL, NULL), -1);
    assert_int_equal(sim_rule_score(&inst, "cdb", "DeleteAccounts", "cdb-2", NULL), -1);
    assert_int_equal(sim_rule_score(&task, "cdb", "DeleteAccounts", "cdb-1", NULL), -1);
    sim_rule_clear(&any);
    sim_rule_clear(&action);
    sim_rule_clear(&inst);
    sim_rule_clear(&task);
}

static void test_phase_ends_after_its_polls_or_seconds(void **state)
{
    (void)state;
    struct sim_phase polls = {.state = TASK_RUNNING, .polls = 2};
    assert_false(sim_phase_over(&polls, 0, 0, 0));
    assert_false(sim_phase_over(&polls, 1, 0, 0));
    assert_true(sim_phase_over(&polls, 2, 0, 0));
    struct sim_phase secs = {.state = TASK_RUNNING, .s_ms = 500};
    assert_false(sim_phase_over(&secs, 100, 1000, 1499));
    assert_true(sim_phase_over(&secs, 0, 1000, 1500));
    struct sim_phase adv = {.state = TASK_RUNNING, .until_advance = true};
    assert_false(sim_phase_over(&adv, 1000, 0, 1000000));
}

static void test_paths_go_through_running_when_they_must(void **state)
{
    (void)state;
    enum task_state hops[2];
    assert_int_equal(sim_path(TASK_INITIAL, TASK_RUNNING, hops), 1);
    assert_int_equal(sim_path(TASK_INITIAL, TASK_SUCCESS, hops), 2);
    assert_int_equal(hops[0], TASK_RUNNING);
    assert_int_equal(hops[1], TASK_SUCCESS);
    assert_int_equal(sim_path(TASK_WAITING, TASK_SUCCESS, hops), 2);
    assert_int_equal(sim_path(TASK_PAUSED, TASK_UNDOED, hops), 1);
    assert_int_equal(sim_path(TASK_INITIAL, TASK_REMOVED, hops), 1);
    assert_int_equal(sim_path(TASK_RUNNING, TASK_REMOVED, hops), -1);
    assert_int_equal(sim_path(TASK_SUCCESS, TASK_RUNNING, hops), -1);
    assert_int_equal(sim_path(TASK_RUNNING, TASK_RUNNING, hops), 0);
}

static bool apply(const char *product, const char *action, const char *input, json_t *state,
                  const char **status)
{
    json_t *in = json_loads(input, 0, NULL);
    assert_non_null(in);
    bool changed = sim_effect_apply(product, action, in, state, status, 1796180000000);
    json_decref(in);
    return changed;
}

static void test_account_effects_follow_the_product(void **state)
{
    (void)state;
    json_t *st = json_object();
    const char *status;
    assert_true(apply("cdb", "CreateAccounts",
                      "{\"Accounts\":[{\"User\":\"u\",\"Host\":\"%\"},{\"User\":\"v\",\"Host\":"
                      "\"10.0.0.1\"}],\"Description\":\"d\"}",
                      st, &status));
    assert_null(status);
    json_t *accounts = json_object_get(st, "accounts");
    assert_int_equal(json_array_size(accounts), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(accounts, 0), "Notes")),
                        "d");
    assert_false(apply("cdb", "CreateAccounts", "{\"Accounts\":[{\"User\":\"u\",\"Host\":\"%\"}]}",
                       st, &status));
    assert_true(apply("cdb", "ModifyAccountHost",
                      "{\"User\":\"v\",\"Host\":\"10.0.0.1\",\"NewHost\":\"10.0.0.2\"}", st,
                      &status));
    assert_string_equal(json_string_value(json_object_get(json_array_get(accounts, 1), "Host")),
                        "10.0.0.2");
    assert_true(apply("cdb", "ModifyAccountPrivileges",
                      "{\"Accounts\":[{\"User\":\"u\",\"Host\":\"%\"}],\"GlobalPrivileges\":"
                      "[\"SELECT\"]}",
                      st, &status));
    json_t *priv = json_object_get(json_array_get(accounts, 0), "Privileges");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(priv, "GlobalPrivileges"), 0)), "SELECT");
    assert_true(apply("cdb", "DeleteAccounts", "{\"Accounts\":[{\"User\":\"u\",\"Host\":\"%\"}]}",
                      st, &status));
    assert_int_equal(json_array_size(accounts), 1);
    json_decref(st);
}

static void test_params_backups_and_status_effects(void **state)
{
    (void)state;
    json_t *st = json_object();
    const char *status;
    assert_true(apply("cdb", "ModifyInstanceParam",
                      "{\"ParamList\":[{\"Name\":\"max_connections\",\"CurrentValue\":\"500\"}]}",
                      st, &status));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(st, "params"), "max_connections")),
        "500");
    assert_true(apply("mongodb", "CreateBackupDBInstance", "{\"BackupMethod\":0}", st, &status));
    assert_int_equal(json_array_size(json_object_get(st, "backups")), 1);
    assert_false(apply("cdb", "IsolateDBInstance", "{}", st, &status));
    assert_string_equal(status, "isolated");
    assert_false(apply("mongodb", "OfflineIsolatedDBInstance", "{}", st, &status));
    assert_string_equal(status, "offline");
    assert_false(apply("cdb", "DescribeTasks", "{}", st, &status));
    assert_null(status);
    json_decref(st);
}

/* ---- the whole simulation over a real (SQLite) store ---- */

struct store_fixture {
    char dir[64];
    struct store *s;
    struct sim *sim;
};

static int store_setup(void **state)
{
    struct store_fixture *f = calloc(1, sizeof *f);
    struct err e = {0};
    if (fixture_mkdtemp(f->dir, sizeof f->dir, "test_sim") != 0 ||
        store_open(NULL, f->dir, &f->s, &e) != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    f->sim = sim_new(f->s, "n1");
    struct instance in = {.product = "cdb",
                          .instance_id = "cdb-sim1",
                          .region = "ap-guangzhou",
                          .uin = "100",
                          .status = "running",
                          .simulated = true};
    assert_int_equal(store_instance_create(f->s, &in, &e), 0);
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    struct store_fixture *f = *state;
    sim_free(f->sim);
    store_close(f->s);
    fixture_rm_tree(f->dir);
    free(f);
    return 0;
}

static void create(struct store_fixture *f, const char *action, char id[STORE_ID_MAX])
{
    struct sim_task_new t = {.product = "cdb",
                             .region = "ap-guangzhou",
                             .uin = "100",
                             .instance_id = "cdb-sim1",
                             .action = action,
                             .node = "n1"};
    struct err e;
    assert_int_equal(sim_task_create(f->sim, f->s, &t, id, &e), 0);
}

static enum task_state polled(struct store_fixture *f, const char *id, int *err_code)
{
    struct task_summary t;
    struct err e = {0};
    assert_int_equal(store_task_summary(f->s, "cdb", id, &t, &e), 0);
    assert_true(t.simulated);
    *err_code = sim_task_poll(f->sim, f->s, &t, &e);
    return t.state;
}

static void test_isolate_effect_sets_the_instance_status(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    create(f, "IsolateDBInstance", id);
    struct instance in;
    struct err e;
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-sim1", &in, &e), 0);
    assert_true(in.simulated);
    assert_string_equal(in.status, "isolated");
    create(f, "ReleaseIsolatedDBInstances", id);
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-sim1", &in, &e), 0);
    assert_string_equal(in.status, "running");
}

static void test_polls_move_the_task_and_error_phases_answer(void **state)
{
    struct store_fixture *f = *state;
    struct err e;
    json_t *rule = json_loads("{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\","
                              "\"polls\":2,\"error\":{\"code\":\"CdbError.TaskError\"}},"
                              "{\"state\":\"success\"}]}",
                              0, NULL);
    assert_int_equal(sim_rule_set(f->sim, "r", rule, &e), 0);
    json_decref(rule);
    char id[STORE_ID_MAX];
    create(f, "CreateAccounts", id);
    int code;
    assert_int_equal(polled(f, id, &code), TASK_RUNNING);
    assert_int_equal(code, ERR_CDB_TASK_ERROR);
    assert_int_equal(polled(f, id, &code), TASK_RUNNING);
    assert_int_equal(code, ERR_CDB_TASK_ERROR);
    assert_int_equal(polled(f, id, &code), TASK_SUCCESS);
    assert_int_equal(code, 0);
    /* A real instance's record has no sim state; the reset takes the simulated one. */
    json_t *st = NULL;
    assert_int_equal(store_instance_sim_state(f->s, "cdb", "cdb-sim1", &st, &e), 0);
    assert_non_null(st);
    json_decref(st);
    json_t *out = NULL;
    assert_int_equal(sim_reset(f->sim, &out, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "instances")), 1);
    assert_int_equal(json_integer_value(json_object_get(out, "tasks")), 1);
    assert_int_equal(json_integer_value(json_object_get(out, "rules")), 1);
    json_decref(out);
    struct instance in;
    assert_int_equal(store_instance_get(f->s, "cdb", "cdb-sim1", &in, &e), ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_of_the_design_parses),
        cmocka_unit_test(test_seconds_advance_waiting_and_error_parse),
        cmocka_unit_test(test_bad_rules_are_refused_saying_why),
        cmocka_unit_test(test_most_specific_rule_scores_highest),
        cmocka_unit_test(test_phase_ends_after_its_polls_or_seconds),
        cmocka_unit_test(test_paths_go_through_running_when_they_must),
        cmocka_unit_test(test_account_effects_follow_the_product),
        cmocka_unit_test(test_params_backups_and_status_effects),
        cmocka_unit_test_setup_teardown(test_isolate_effect_sets_the_instance_status, store_setup,
                                        store_teardown),
        cmocka_unit_test_setup_teardown(test_polls_move_the_task_and_error_phases_answer,
                                        store_setup, store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
