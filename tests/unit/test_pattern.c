/* Unit tests for common/pattern: operators' regular expressions checked before regcomp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/pattern.h"

static void test_ordinary_patterns_are_tame(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "^[A-Za-z0-9_.-]{1,32}$",
        "^[a-z]+(-[a-z0-9]+)*$",
        "^(ON|OFF)?$",
        "a\\?\\?b*",
        "^[[:alnum:]?*+]{2}x?$",
        "[]?]+",
        "",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!pattern_is_tame(ok[i]))
            fail_msg("\"%s\" refused", ok[i]);
}

/* The fuzz_flows out-of-memory: a run of '?' then a bound; glibc's regcomp took gigabytes. */
static void test_quantifiers_on_quantifiers_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {"a??",
                                      "a*?",
                                      "a+*",
                                      "a{2}?",
                                      "a?{1,32}",
                                      "[a-z]*+",
                                      "^[A-Za-z0-9_.-]????????????????{1,32}$"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (pattern_is_tame(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
}

static void test_long_patterns_are_refused(void **state)
{
    (void)state;
    char p[PATTERN_MAX_LEN + 2];
    memset(p, 'a', sizeof p - 1);
    p[sizeof p - 1] = '\0';
    assert_false(pattern_is_tame(p));
    p[PATTERN_MAX_LEN] = '\0';
    assert_true(pattern_is_tame(p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordinary_patterns_are_tame),
        cmocka_unit_test(test_quantifiers_on_quantifiers_are_refused),
        cmocka_unit_test(test_long_patterns_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
