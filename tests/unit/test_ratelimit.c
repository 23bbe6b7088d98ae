/* Unit tests for cloudapi/ratelimit: sliding one-second windows, rules, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "cloudapi/ratelimit.h"

#define SEC 1000000000LL
#define T0  (1000 * SEC) /* an arbitrary monotonic start */

/* Calls take n times at now, now+step, ...; returns how many were admitted. */
static int take_n(struct ratelimit *rl, const char *uin, const char *product, const char *action,
                  int n, int64_t now, int64_t step)
{
    int admitted = 0;
    for (int i = 0; i < n; i++)
        admitted += ratelimit_take(rl, uin, product, action, now + i * step);
    return admitted;
}

static void test_cdb_describe_admits_40_then_refuses_41st(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 40);
    assert_int_equal(take_n(rl, "100001", "cdb", "DescribeAsyncRequestInfo", 40, T0, SEC / 100),
                     40);
    assert_false(ratelimit_take(rl, "100001", "cdb", "DescribeAsyncRequestInfo", T0 + SEC / 2));
    ratelimit_free(rl);
}

static void test_mongodb_describe_admits_20_then_refuses_21st(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    assert_int_equal(ratelimit_limit(rl, "mongodb", "DescribeAsyncRequestInfo"), 20);
    assert_int_equal(take_n(rl, "100001", "mongodb", "DescribeAsyncRequestInfo", 21, T0, 1), 20);
    ratelimit_free(rl);
}

static void test_other_actions_default_to_20(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    assert_int_equal(ratelimit_limit(rl, "cdb", "CreateBackup"), 20);
    assert_int_equal(ratelimit_limit(rl, "redis", "Anything"), 20);
    assert_int_equal(take_n(rl, "1", "cdb", "CreateBackup", 25, T0, 1), 20);
    ratelimit_free(rl);
}

static void test_keys_are_separate_per_uin_and_action(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    assert_int_equal(take_n(rl, "1", "cdb", "DescribeAsyncRequestInfo", 41, T0, 1), 40);
    assert_int_equal(take_n(rl, "2", "cdb", "DescribeAsyncRequestInfo", 41, T0, 1), 40);
    assert_int_equal(take_n(rl, "1", "mongodb", "DescribeAsyncRequestInfo", 21, T0, 1), 20);
    assert_int_equal(take_n(rl, "1", "cdb", "CreateBackup", 21, T0, 1), 20);
    /* "1"+"2cdb" must not alias "12"+"cdb". */
    assert_int_equal(take_n(rl, "12", "cdb", "X", 20, T0, 1), 20);
    assert_true(ratelimit_take(rl, "1", "2cdb", "X", T0));
    ratelimit_free(rl);
}

static void test_window_slides_after_one_second(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    const char *m = "mongodb", *a = "DescribeAsyncRequestInfo";
    /* 10 at T0, 10 at T0+0.5 s: full. */
    assert_int_equal(take_n(rl, "1", m, a, 10, T0, 0), 10);
    assert_int_equal(take_n(rl, "1", m, a, 10, T0 + SEC / 2, 0), 10);
    assert_false(ratelimit_take(rl, "1", m, a, T0 + SEC - 1));
    /* Exactly 1 s after T0 the first 10 leave the window; the next 10 stay until T0+1.5 s. */
    assert_int_equal(take_n(rl, "1", m, a, 11, T0 + SEC, 0), 10);
    assert_false(ratelimit_take(rl, "1", m, a, T0 + SEC + SEC / 2 - 1));
    assert_int_equal(take_n(rl, "1", m, a, 11, T0 + SEC + SEC / 2, 0), 10);
    /* Idle for a long time: a full window again. */
    assert_int_equal(take_n(rl, "1", m, a, 21, T0 + 60 * SEC, 0), 20);
    ratelimit_free(rl);
}

static void test_window_holds_across_clock_second_boundaries(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    /* 20 calls at .9 s and 20 at 1.1 s of two clock seconds: only 20 in any 1 s window. */
    int ok = take_n(rl, "1", "mongodb", "DescribeAsyncRequestInfo", 20, T0 + SEC * 9 / 10, 0);
    ok += take_n(rl, "1", "mongodb", "DescribeAsyncRequestInfo", 20, T0 + SEC * 11 / 10, 0);
    assert_int_equal(ok, 20);
    ratelimit_free(rl);
}

static void test_star_zero_lifts_every_limit(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    struct err e = {0};
    assert_int_equal(ratelimit_add_rule(rl, "*=0", &e), 0);
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 0);
    assert_int_equal(take_n(rl, "1", "cdb", "DescribeAsyncRequestInfo", 1000, T0, 0), 1000);
    ratelimit_free(rl);
}

static void test_later_rules_win(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    struct err e = {0};
    assert_int_equal(ratelimit_add_rule(rl, "cdb:*=5", &e), 0);
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 5);
    assert_int_equal(ratelimit_limit(rl, "cdb", "CreateBackup"), 5);
    assert_int_equal(ratelimit_limit(rl, "mongodb", "DescribeAsyncRequestInfo"), 20);
    assert_int_equal(take_n(rl, "1", "cdb", "DescribeAsyncRequestInfo", 6, T0, 0), 5);
    assert_int_equal(ratelimit_add_rule(rl, "cdb:DescribeAsyncRequestInfo=7", &e), 0);
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 7);
    assert_int_equal(ratelimit_limit(rl, "cdb", "CreateBackup"), 5);
    assert_int_equal(ratelimit_add_rule(rl, "*:DescribeAsyncRequestInfo=3", &e), 0);
    assert_int_equal(ratelimit_limit(rl, "mongodb", "DescribeAsyncRequestInfo"), 3);
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 3);
    assert_int_equal(ratelimit_add_rule(rl, "*=0", &e), 0);
    assert_int_equal(ratelimit_add_rule(rl, "mongodb:DescribeAsyncRequestInfo=2", &e), 0);
    assert_int_equal(ratelimit_limit(rl, "mongodb", "DescribeAsyncRequestInfo"), 2);
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 0);
    ratelimit_free(rl);
}

static void test_malformed_specs_are_rejected(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",         "=5",       "cdb=5",     "cdb:=5",    ":X=5",
        "cdb:X",    "cdb:X=",   "cdb:X=-1",  "cdb:X=1.5", "cdb:X=abc",
        "cdb:X=5 ", " cdb:X=5", "cdb:X:Y=5", "cd*:X=5",   "cdb:X=99999999999",
        "**=1",     "*:=1",     "cdb:X=5=6",
    };
    struct ratelimit *rl = ratelimit_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct err e = {0};
        if (ratelimit_add_rule(rl, bad[i], &e) != ERR_INVALID_PARAMETER_VALUE)
            fail_msg("spec \"%s\" was accepted", bad[i]);
        assert_int_equal(e.code, ERR_INVALID_PARAMETER_VALUE);
        assert_non_null(strstr(e.msg, "rate limit"));
    }
    struct err e = {0};
    assert_int_equal(ratelimit_add_rule(rl, NULL, &e), ERR_INVALID_PARAMETER_VALUE);
    /* The defaults are untouched by the failures. */
    assert_int_equal(ratelimit_limit(rl, "cdb", "DescribeAsyncRequestInfo"), 40);
    ratelimit_free(rl);
}

static void test_many_keys_are_tracked_independently(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new();
    char uin[32];
    for (int round = 0; round < 3; round++) {
        int64_t now = T0 + round * 2 * SEC; /* every key is idle again by the next round */
        for (int k = 0; k < 5000; k++) {
            snprintf(uin, sizeof uin, "%d", k);
            assert_int_equal(take_n(rl, uin, "mongodb", "DescribeAsyncRequestInfo", 3, now, 0), 3);
        }
        for (int k = 0; k < 5000; k += 97) {
            snprintf(uin, sizeof uin, "%d", k);
            assert_int_equal(take_n(rl, uin, "mongodb", "DescribeAsyncRequestInfo", 20, now, 0),
                             17);
        }
    }
    ratelimit_free(rl);
}

struct worker {
    struct ratelimit *rl;
    int64_t base;
    int calls, admitted, id;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->calls; i++) {
        /* Times inside one window (< 1 s after base), interleaved across threads. */
        int64_t now = w->base + ((int64_t)(i * 8 + w->id) * 997) % (SEC - 1);
        w->admitted += ratelimit_take(w->rl, "100001", "cdb", "DescribeAsyncRequestInfo", now);
        char uin[16];
        snprintf(uin, sizeof uin, "u%d", i % 50);
        ratelimit_take(w->rl, uin, "cdb", "DescribeAsyncRequestInfo", now);
    }
    return NULL;
}

static void test_threads_together_never_exceed_limit_in_a_window(void **state)
{
    (void)state;
    enum { NTHREADS = 8 };
    struct ratelimit *rl = ratelimit_new();
    for (int window = 0; window < 3; window++) {
        pthread_t t[NTHREADS];
        struct worker w[NTHREADS];
        for (int i = 0; i < NTHREADS; i++) {
            w[i] = (struct worker){.rl = rl, .base = T0 + window * 2 * SEC, .calls = 2000, .id = i};
            assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < NTHREADS; i++) {
            pthread_join(t[i], NULL);
            total += w[i].admitted;
        }
        /* Round k's times lie in [T0+2k s, T0+2k s+1 s): one window, so exactly the limit is
         * admitted however the threads interleave; the next round starts after it has slid. */
        assert_int_equal(total, 40);
    }
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cdb_describe_admits_40_then_refuses_41st),
        cmocka_unit_test(test_mongodb_describe_admits_20_then_refuses_21st),
        cmocka_unit_test(test_other_actions_default_to_20),
        cmocka_unit_test(test_keys_are_separate_per_uin_and_action),
        cmocka_unit_test(test_window_slides_after_one_second),
        cmocka_unit_test(test_window_holds_across_clock_second_boundaries),
        cmocka_unit_test(test_star_zero_lifts_every_limit),
        cmocka_unit_test(test_later_rules_win),
        cmocka_unit_test(test_malformed_specs_are_rejected),
        cmocka_unit_test(test_many_keys_are_tracked_independently),
        cmocka_unit_test(test_threads_together_never_exceed_limit_in_a_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
