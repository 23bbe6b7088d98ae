/* Unit tests: the webhook dispatcher's pure parts (daemon/webhooks.h): the signature header a
 * receiver checks, the payload's fields in the product's dialect, and the backoff schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/webhooks.h"

static void test_signature_is_hmac_sha256_over_time_dot_body(void **state)
{
    (void)state;
    char sig[128];
    const char *body = "{\"a\":1}";
    webhooks_signature("k3y", 1700000000, body, strlen(body), sig, sizeof sig);
    /* python3: hmac.new(b"k3y", b'1700000000.{"a":1}', hashlib.sha256).hexdigest() */
    assert_string_equal(
        sig, "t=1700000000,v1=fd5a70e965043f7df6309c2c3b5ff5a8ffa99b1f5175e9a311459e73c4634d4a");
}

static void test_payload_speaks_the_products_dialect(void **state)
{
    (void)state;
    struct webhook_delivery d = {.id = 42, .state = TASK_UNDOED, .at_ms = 1700000000123};
    snprintf(d.event, sizeof d.event, "final");
    snprintf(d.task_id, sizeof d.task_id, "0123abcd-0123abcd-0123abcd-0123abcd");
    snprintf(d.uin, sizeof d.uin, "100000000001");
    snprintf(d.info, sizeof d.info, "rolled back");
    const char *want[][2] = {{"cdb", "FAILED"}, {"mongodb", "undoed"}};
    for (size_t i = 0; i < 2; i++) {
        snprintf(d.product, sizeof d.product, "%s", want[i][0]);
        char *text = webhooks_payload(&d);
        json_t *j = json_loads(text, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "delivery")), 42);
        assert_string_equal(json_string_value(json_object_get(j, "event")), "final");
        assert_string_equal(json_string_value(json_object_get(j, "AsyncRequestId")), d.task_id);
        assert_string_equal(json_string_value(json_object_get(j, "product")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(j, "uin")), d.uin);
        assert_string_equal(json_string_value(json_object_get(j, "state")), "undoed");
        assert_string_equal(json_string_value(json_object_get(j, "status")), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(j, "info")), "rolled back");
        assert_string_equal(json_string_value(json_object_get(j, "time")),
                            "2023-11-14T22:13:20.123Z");
        assert_null(json_object_get(j, "secret"));
        json_decref(j);
        free(text);
    }
}

static void test_backoff_doubles_from_the_base_up_to_an_hour(void **state)
{
    (void)state;
    assert_int_equal(webhooks_backoff_ms(1000, 1), 1000);
    assert_int_equal(webhooks_backoff_ms(1000, 2), 2000);
    assert_int_equal(webhooks_backoff_ms(1000, 5), 16000);
    assert_int_equal(webhooks_backoff_ms(1000, 13), 3600 * 1000);
    assert_int_equal(webhooks_backoff_ms(1000, 400), 3600 * 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_is_hmac_sha256_over_time_dot_body),
        cmocka_unit_test(test_payload_speaks_the_products_dialect),
        cmocka_unit_test(test_backoff_doubles_from_the_base_up_to_an_hour),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
