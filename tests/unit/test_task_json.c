/* Unit tests: the typed task (task/task_model.h) and its JSON (task/task_json.h): the keys in
 * order, null where a column is NULL, and the admin view's added keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "task/task_json.h"

/* A finished two-step task as a store would read it: no instance, no lease expiry. */
static struct task *sample_task(void)
{
    struct task *t = task_new();
    t->id = xstrdup("t-1");
    t->product = xstrdup("cdb");
    t->region = xstrdup("ap-guangzhou");
    t->uin = xstrdup("100");
    t->type = xstrdup("CreateAccounts");
    t->on_failure = ON_FAILURE_UNDO;
    t->state = TASK_SUCCESS;
    t->info = xstrdup("ok");
    t->phase = PHASE_DO;
    t->lease_node = xstrdup("n1");
    t->driver = xstrdup("engine");
    t->current_step = 2; /* one past the last step, as the runner leaves it */
    t->created_ms = 1000;
    t->start_ms = 2000;
    t->end_ms = 3000;
    t->lease_no = 4;
    task_alloc_steps(t, 2);
    for (int i = 0; i < 2; i++) {
        struct task_step *s = &t->steps[i];
        s->index = i;
        s->name = xstrdup(i ? "second" : "first");
        json_decref(s->do_action);
        s->do_action = json_pack("{s:{s:s, s:[s]}}", "mysql", "sql",
                                 "CREATE USER u IDENTIFIED BY {0:str}", "args", "pw");
        s->retries = 1;
        s->timeout_s = 60;
        s->state = STEP_DONE;
    }
    t->steps[1].message = xstrdup("done\xff"); /* not UTF-8 */
    task_alloc_events(t, 1);
    t->events[0] = (struct task_event){
        .seq = 1, .at_ms = 1000, .from = -1, .to = TASK_INITIAL, .node = xstrdup("n1")};
    return t;
}

static void assert_keys(json_t *o, const char *const *want)
{
    const char *key;
    json_t *v;
    size_t i = 0;
    json_object_foreach(o, key, v)
    {
        assert_non_null(want[i]);
        assert_string_equal(key, want[i]);
        i++;
    }
    assert_null(want[i]);
}

static void test_raw_task_json_keeps_the_store_keys_in_order_with_nulls(void **state)
{
    (void)state;
    struct task *t = sample_task();
    json_t *j = task_json(t, NULL);
    static const char *const keys[] = {"AsyncRequestId",
                                       "product",
                                       "region",
                                       "uin",
                                       "instance_id",
                                       "type",
                                       "on_failure",
                                       "state",
                                       "info",
                                       "phase",
                                       "lease_node",
                                       "driver",
                                       "current_step",
                                       "created_ms",
                                       "start_ms",
                                       "end_ms",
                                       "attempt",
                                       "not_before_ms",
                                       "pause_requested",
                                       "lease_no",
                                       "lease_expires_ms",
                                       "n_steps",
                                       "input",
                                       "steps",
                                       "events",
                                       NULL};
    assert_keys(j, keys);
    assert_true(json_is_null(json_object_get(j, "instance_id")));
    assert_true(json_is_null(json_object_get(j, "lease_expires_ms")));
    assert_true(json_is_null(json_object_get(j, "input")));
    assert_string_equal(json_string_value(json_object_get(j, "on_failure")), "undo");
    assert_int_equal(json_integer_value(json_object_get(j, "current_step")), 2);
    json_t *step = json_array_get(json_object_get(j, "steps"), 1);
    static const char *const step_keys[] = {"index",     "name",  "do",      "undo",   "retries",
                                            "timeout_s", "state", "message", "output", NULL};
    assert_keys(step, step_keys);
    assert_string_equal(json_string_value(json_object_get(step, "message")), "done?");
    assert_true(json_is_null(json_object_get(step, "undo")));
    json_t *ev = json_array_get(json_object_get(j, "events"), 0);
    static const char *const ev_keys[] = {"seq", "at_ms", "from", "to", "node", "message", NULL};
    assert_keys(ev, ev_keys);
    assert_true(json_is_null(json_object_get(ev, "from")));
    json_decref(j);
    task_free(t);
}

static void hide_args(json_t *action)
{
    json_array_set_new(json_object_get(json_object_get(action, "mysql"), "args"), 0,
                       json_string("***"));
}

static void test_admin_view_adds_status_times_and_hides_secrets_on_its_own_copy(void **state)
{
    (void)state;
    struct task *t = sample_task();
    struct task_json_opts o = {.view = true, .status_word = "SUCCESS", .redact = hide_args};
    json_t *j = task_json(t, &o);
    /* the step it ended on, not one past the last */
    assert_int_equal(json_integer_value(json_object_get(j, "current_step")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "Status")), "SUCCESS");
    assert_string_equal(json_string_value(json_object_get(j, "start_time")),
                        "1970-01-01T00:00:02.000Z");
    json_t *args = json_object_get(
        json_object_get(json_object_get(json_array_get(json_object_get(j, "steps"), 0), "do"),
                        "mysql"),
        "args");
    assert_string_equal(json_string_value(json_array_get(args, 0)), "***");
    /* the task itself keeps the password (a re-run needs it) */
    json_t *kept = json_object_get(json_object_get(t->steps[0].do_action, "mysql"), "args");
    assert_string_equal(json_string_value(json_array_get(kept, 0)), "pw");
    json_t *ev = json_array_get(json_object_get(j, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "at")), "1970-01-01T00:00:01.000Z");
    const char *key;
    json_t *v;
    const char *last = NULL;
    json_object_foreach(j, key, v) last = key;
    assert_string_equal(last, "end_time");
    json_decref(j);
    task_free(t);
}

static void test_rows_without_steps_or_events_leave_those_keys_out(void **state)
{
    (void)state;
    struct task *t = task_new();
    t->id = xstrdup("t-2");
    t->job_id = 7;
    t->has_job_id = true;
    t->n_steps = 3; /* counted, not read */
    json_t *j = task_json(t, NULL);
    assert_null(json_object_get(j, "steps"));
    assert_null(json_object_get(j, "events"));
    assert_int_equal(json_integer_value(json_object_get(j, "job_id")), 7);
    assert_int_equal(json_integer_value(json_object_get(j, "n_steps")), 3);
    assert_true(json_is_null(json_object_get(j, "start_ms")));
    assert_null(task_step_at(t, 0));
    assert_null(task_last_event(t));
    json_decref(j);
    task_free(t);
}

static void test_model_words_round_trip(void **state)
{
    (void)state;
    for (int s = 0; s < STEP_STATE_COUNT; s++) {
        enum task_step_state got;
        assert_int_equal(task_step_state_parse(task_step_state_name((enum task_step_state)s), &got),
                         0);
        assert_int_equal(got, s);
    }
    enum task_phase ph = PHASE_DO;
    assert_int_equal(task_phase_parse("undo", &ph), 0);
    assert_int_equal(ph, PHASE_UNDO);
    assert_int_equal(task_phase_parse(NULL, &ph), -1);
    enum task_on_failure f = ON_FAILURE_PAUSE;
    assert_int_equal(task_on_failure_parse("fail", &f), 0);
    assert_int_equal(f, ON_FAILURE_FAIL);
    assert_int_equal(task_on_failure_parse("explode", &f), -1);
    assert_int_equal(f, ON_FAILURE_FAIL);
    assert_string_equal(task_text_or("", "-"), "-");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_task_json_keeps_the_store_keys_in_order_with_nulls),
        cmocka_unit_test(test_admin_view_adds_status_times_and_hides_secrets_on_its_own_copy),
        cmocka_unit_test(test_rows_without_steps_or_events_leave_those_keys_out),
        cmocka_unit_test(test_model_words_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
