/* Unit tests: the metric registry (common/metrics) renders Prometheus text with cumulative
 * buckets, caps its label sets, escapes label values and keeps the store-wide gauges labelled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/metrics.h"

static char *render(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    metrics_render(f, "node-1");
    fclose(f);
    return buf;
}

/* The value of the sample line that starts with prefix (name and labels), or -1. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static int setup(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

static void test_histogram_buckets_are_cumulative_and_count_is_the_inf_bucket(void **state)
{
    (void)state;
    int t = metrics_task_type("cdb", "CreateAccounts");
    metrics_step_observe(t, METRICS_EXEC_EXEC, 3000000);         /* 3 ms */
    metrics_step_observe(t, METRICS_EXEC_EXEC, 200000000);       /* 0.2 s */
    metrics_step_observe(t, METRICS_EXEC_EXEC, 7200000000000LL); /* two hours: past every bound */
    char *s = render();
    const char *k = "asyncd_step_duration_seconds";
    char p[256];
#define AT(le)                                                                                     \
    (snprintf(p, sizeof p,                                                                         \
              "%s_bucket{product=\"cdb\",type=\"CreateAccounts\",executor=\"exec\","               \
              "le=\"%s\"}",                                                                        \
              k, le),                                                                              \
     sample(s, p))
    assert_true(AT("0.005") == 1);
    assert_true(AT("0.1") == 1);
    assert_true(AT("0.25") == 2);
    assert_true(AT("3600") == 2);
    assert_true(AT("+Inf") == 3);
#undef AT
    assert_true(sample(s,
                       "asyncd_step_duration_seconds_count{product=\"cdb\",type=\"CreateAccounts\","
                       "executor=\"exec\"}") == 3);
    double sum =
        sample(s, "asyncd_step_duration_seconds_sum{product=\"cdb\",type=\"CreateAccounts\","
                  "executor=\"exec\"}");
    assert_true(sum > 7200.2 && sum < 7200.21);
    assert_null(strstr(s, "executor=\"noop\"")); /* a series never observed is not rendered */
    free(s);
}

static void test_type_set_is_capped_and_overflow_counts_as_other(void **state)
{
    (void)state;
    int first = metrics_task_type("mongodb", "T0");
    assert_int_equal(metrics_task_type("mongodb", "T0"), first);
    char name[32];
    int last = first;
    for (int i = 1; i < 300; i++) {
        snprintf(name, sizeof name, "T%d", i);
        last = metrics_task_type("mongodb", name);
    }
    assert_int_equal(last, metrics_task_type("mongodb", "other"));
    assert_int_not_equal(last, first);
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(metrics_task_type("cdb", longname), metrics_task_type("cdb", NULL));
}

static void test_cloudapi_codes_and_unknown_actions(void **state)
{
    (void)state;
    int a = metrics_cloudapi_action("cdb", "DescribeAsyncRequestInfo");
    metrics_cloudapi_request(a, 0);
    metrics_cloudapi_request(a, ERR_CDB_INVALID_ASYNC_REQUEST_ID);
    metrics_cloudapi_request(metrics_cloudapi_action("cdb", NULL), ERR_INVALID_ACTION);
    metrics_cloudapi_request(metrics_cloudapi_action(NULL, NULL), -1000); /* out of range */
    char *s = render();
    assert_true(sample(s, "asyncd_cloudapi_requests_total{product=\"cdb\",action="
                          "\"DescribeAsyncRequestInfo\",code=\"ok\"}") == 1);
    assert_true(sample(s, "asyncd_cloudapi_requests_total{product=\"cdb\",action="
                          "\"DescribeAsyncRequestInfo\",code=\"InvalidParameter."
                          "InvalidAsyncRequestId\"}") == 1);
    assert_true(sample(s, "asyncd_cloudapi_requests_total{product=\"cdb\",action=\"other\","
                          "code=\"InvalidAction\"}") == 1);
    assert_true(sample(s, "asyncd_cloudapi_requests_total{product=\"\",action=\"other\","
                          "code=\"InternalError\"}") == 1);
    free(s);
}

static void test_label_values_are_escaped(void **state)
{
    (void)state;
    metrics_queue_wait_observe(metrics_task_type("cdb", "a\"b\\c\nd"), 10);
    char *s = render();
    assert_non_null(strstr(s, "type=\"a\\\"b\\\\c\\nd\""));
    free(s);
}

static void test_zero_series_webhooks_and_running(void **state)
{
    (void)state;
    metrics_webhook_delivery("delivered");
    metrics_webhook_delivery("bogus");
    metrics_running_add(2);
    metrics_running_add(-1);
    metrics_retry("cdb");
    metrics_transition("mongodb", TASK_SUCCESS);
    metrics_operator_verb("cdb", VERB_KILL);
    metrics_operator_verb("cdb", VERB_PAUSE);
    char *s = render();
    assert_true(sample(s, "asyncd_operator_verbs_total{product=\"cdb\",verb=\"kill\"}") == 1);
    assert_true(sample(s, "asyncd_operator_verbs_total{product=\"cdb\",verb=\"pause\"}") == 1);
    assert_true(sample(s, "asyncd_task_transitions_total{product=\"cdb\",to=\"killed\"}") == 1);
    assert_true(sample(s, "asyncd_task_transitions_total{product=\"cdb\",to=\"paused\"}") == 0);
    assert_true(sample(s, "asyncd_webhook_deliveries_total{result=\"delivered\"}") == 1);
    assert_true(sample(s, "asyncd_webhook_deliveries_total{result=\"retry\"}") == 0);
    assert_true(sample(s, "asyncd_webhook_deliveries_total{result=\"failed\"}") == 0);
    assert_null(strstr(s, "bogus"));
    assert_true(sample(s, "asyncd_tasks_running{node=\"node-1\"}") == 1);
    assert_true(sample(s, "asyncd_task_retries_total{product=\"cdb\"}") == 1);
    assert_true(sample(s, "asyncd_task_retries_total{product=\"mongodb\"}") == 0);
    assert_true(sample(s, "asyncd_task_transitions_total{product=\"mongodb\",to=\"success\"}") ==
                1);
    assert_true(sample(s, "asyncd_lease_takeovers_total{product=\"cdb\"}") == 0);
    assert_non_null(strstr(s, "# TYPE asyncd_step_duration_seconds histogram\n"));
    assert_non_null(strstr(s, "# TYPE asyncd_task_transitions_total counter\n"));
    free(s);
}

static void test_store_gauges_say_cluster_and_age_the_oldest_queued(void **state)
{
    (void)state;
    json_t *rows =
        json_pack("[{s:s,s:s,s:i,s:I},{s:s,s:s,s:i,s:I}]", "product", "cdb", "state", "initial",
                  "count", 3, "oldest_created_ms", (json_int_t)1000, "product", "cdb", "state",
                  "success", "count", 5, "oldest_created_ms", (json_int_t)10);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    metrics_render_store(f, rows, 61000);
    fclose(f);
    json_decref(rows);
    assert_true(sample(buf, "asyncd_tasks{scope=\"cluster\",product=\"cdb\",state=\"success\"}") ==
                5);
    assert_true(sample(buf, "asyncd_tasks_queued{scope=\"cluster\",product=\"cdb\"}") == 3);
    assert_true(sample(buf, "asyncd_tasks_queued{scope=\"cluster\",product=\"mongodb\"}") == 0);
    assert_true(
        sample(buf, "asyncd_tasks_oldest_queued_age_seconds{scope=\"cluster\",product=\"cdb\"}") ==
        60);
    assert_true(sample(buf, "asyncd_tasks_oldest_queued_age_seconds{scope=\"cluster\",product="
                            "\"mongodb\"}") == 0);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_histogram_buckets_are_cumulative_and_count_is_the_inf_bucket,
                               setup),
        cmocka_unit_test_setup(test_type_set_is_capped_and_overflow_counts_as_other, setup),
        cmocka_unit_test_setup(test_cloudapi_codes_and_unknown_actions, setup),
        cmocka_unit_test_setup(test_label_values_are_escaped, setup),
        cmocka_unit_test_setup(test_zero_series_webhooks_and_running, setup),
        cmocka_unit_test_setup(test_store_gauges_say_cluster_and_age_the_oldest_queued, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
