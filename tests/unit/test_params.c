/* Unit tests for cloudapi/params: form decoding, UTF-8, duplicates, sorting, unflattening. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stdio.h>

#include "cloudapi/params.h"
#include "common/xalloc.h"

static struct param_list parse_ok(const char *s)
{
    struct param_list l = {0};
    struct err e = {0};
    int rc = params_parse_form(s, strlen(s), &l, &e);
    if (rc != 0)
        fail_msg("parse of \"%s\" failed: %s", s, e.msg);
    return l;
}

/* Parsing s[0..len) fails with InvalidParameter and a message containing `names`. */
static void expect_parse_error(const char *s, size_t len, const char *names)
{
    struct param_list l = {0};
    params_add(&l, "Before", "1");
    struct err e = {0};
    assert_int_equal(params_parse_form(s, len, &l, &e), ERR_INVALID_PARAMETER);
    assert_int_equal(e.code, ERR_INVALID_PARAMETER);
    if (!strstr(e.msg, names))
        fail_msg("message \"%s\" does not mention \"%s\"", e.msg, names);
    assert_int_equal(l.n, 1); /* nothing of the failed parse is kept */
    params_free(&l);
}

static void test_form_decodes_plus_and_percent_escapes(void **state)
{
    (void)state;
    struct param_list l = parse_ok("a=1&b=x%20y+z&c%2Ed=%C3%BC%2f%2F&flag");
    assert_int_equal(l.n, 4);
    assert_string_equal(l.items[0].key, "a");
    assert_string_equal(l.items[0].value, "1");
    assert_string_equal(l.items[1].value, "x y z");
    assert_string_equal(l.items[2].key, "c.d");
    assert_string_equal(l.items[2].value, "\xc3\xbc//");
    assert_string_equal(l.items[3].key, "flag");
    assert_string_equal(l.items[3].value, "");
    params_free(&l);
}

static void test_form_skips_empty_pieces_and_keeps_order(void **state)
{
    (void)state;
    struct param_list l = parse_ok("&z=1&&a=2&");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].key, "z");
    assert_string_equal(l.items[1].key, "a");
    assert_string_equal(params_find(&l, "a")->value, "2");
    assert_null(params_find(&l, "b"));
    params_free(&l);
    l = parse_ok("");
    assert_int_equal(l.n, 0);
    params_free(&l);
}

static void test_form_value_may_contain_equals(void **state)
{
    (void)state;
    struct param_list l = parse_ok("Sig=abc==&x=a=b");
    assert_string_equal(l.items[0].value, "abc==");
    assert_string_equal(l.items[1].value, "a=b");
    params_free(&l);
}

static void test_form_rejects_bad_escapes_naming_parameter(void **state)
{
    (void)state;
    expect_parse_error("ok=1&Name=%zz", 13, "Name");
    expect_parse_error("Name=abc%4", 10, "%-escape");
    expect_parse_error("Name=abc%", 9, "Name");
    expect_parse_error("Na%g0me=1", 9, "Na%g0me");
}

static void test_form_rejects_nul(void **state)
{
    (void)state;
    expect_parse_error("Name=a%00b", 10, "NUL");
    expect_parse_error("Na%00me=1", 9, "NUL");
    expect_parse_error("Name=a\0b", 8, "NUL"); /* a raw NUL byte in the body */
}

static void test_form_rejects_invalid_utf8_naming_parameter(void **state)
{
    (void)state;
    expect_parse_error("Name=%C3", 8, "UTF-8");           /* truncated sequence */
    expect_parse_error("Name=%C0%AF", 11, "Name");        /* overlong '/' */
    expect_parse_error("Name=%E0%80%AF", 14, "UTF-8");    /* overlong 3-byte */
    expect_parse_error("Name=%ED%A0%80", 14, "UTF-8");    /* surrogate U+D800 */
    expect_parse_error("Name=%F4%90%80%80", 17, "UTF-8"); /* above U+10FFFF */
    expect_parse_error("Name=\xff", 6, "UTF-8");          /* raw invalid byte */
    expect_parse_error("N%FFame=1", 9, "UTF-8");
}

static void test_form_rejects_empty_name(void **state)
{
    (void)state;
    expect_parse_error("=1", 2, "empty name");
}

static void test_utf8_validation(void **state)
{
    (void)state;
    assert_true(params_utf8_valid("", 0));
    assert_true(params_utf8_valid("plain", 5));
    assert_true(params_utf8_valid("\xc2\x80", 2));          /* U+0080 */
    assert_true(params_utf8_valid("\xe0\xa0\x80", 3));      /* U+0800 */
    assert_true(params_utf8_valid("\xed\x9f\xbf", 3));      /* U+D7FF */
    assert_true(params_utf8_valid("\xee\x80\x80", 3));      /* U+E000 */
    assert_true(params_utf8_valid("\xf0\x90\x80\x80", 4));  /* U+10000 */
    assert_true(params_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_false(params_utf8_valid("\xc1\xbf", 2));         /* overlong */
    assert_false(params_utf8_valid("\xe0\x9f\xbf", 3));     /* overlong */
    assert_false(params_utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong */
    assert_false(params_utf8_valid("\xed\xbf\xbf", 3));     /* surrogate */
    assert_false(params_utf8_valid("\x80", 1));             /* stray continuation */
    assert_false(params_utf8_valid("\xe2\x82", 2));         /* truncated */
    assert_false(params_utf8_valid("\xe2\x28\xa1", 3));     /* bad continuation */
    assert_false(params_utf8_valid("\xf5\x80\x80\x80", 4));
}

static void test_duplicate_parameter_is_named(void **state)
{
    (void)state;
    struct param_list l = parse_ok("a=1&Limit=2&b=3&Limit=4");
    struct err e = {0};
    assert_int_equal(params_check_unique(&l, &e), ERR_INVALID_PARAMETER);
    assert_non_null(strstr(e.msg, "Limit"));
    assert_non_null(strstr(e.msg, "more than once"));
    params_free(&l);
    l = parse_ok("a=1&A=2&a.0=3");
    assert_int_equal(params_check_unique(&l, &e), 0);
    params_free(&l);
}

static void test_sort_is_bytewise_by_key(void **state)
{
    (void)state;
    struct param_list l = parse_ok("b=1&a=2&B=3&a.10=4&a.2=5&_=6");
    params_sort(&l);
    const char *want[] = {"B", "_", "a", "a.10", "a.2", "b"};
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.items[i].key, want[i]);
    params_free(&l);
}

/* params_to_json of form s (minus skip) must dump as `want` (compact, sorted keys). */
static void expect_json(const char *s, const char *const *skip, const char *want)
{
    struct param_list l = parse_ok(s);
    json_t *j = NULL;
    struct err e = {0};
    int rc = params_to_json(&l, skip, &j, &e);
    if (rc != 0)
        fail_msg("params_to_json(\"%s\") failed: %s", s, e.msg);
    char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(got, want);
    free(got);
    json_decref(j);
    params_free(&l);
}

static void expect_json_error(const char *s, const char *names)
{
    struct param_list l = parse_ok(s);
    json_t *j = (json_t *)1;
    struct err e = {0};
    assert_int_equal(params_to_json(&l, NULL, &j, &e), ERR_INVALID_PARAMETER);
    assert_null(j);
    if (!strstr(e.msg, names))
        fail_msg("message \"%s\" does not mention \"%s\"", e.msg, names);
    params_free(&l);
}

static void test_json_unflattens_lists_and_objects(void **state)
{
    (void)state;
    expect_json("AsyncRequestId=4762", NULL, "{\"AsyncRequestId\":\"4762\"}");
    expect_json("A.0.B=x", NULL, "{\"A\":[{\"B\":\"x\"}]}");
    expect_json("A.0=x&A.1=y", NULL, "{\"A\":[\"x\",\"y\"]}");
    expect_json("Filters.0.Name=n&Filters.0.Values.0=a&Filters.0.Values.1=b&Filters.1.Name=m"
                "&Limit=10&Obj.K=v",
                NULL,
                "{\"Filters\":[{\"Name\":\"n\",\"Values\":[\"a\",\"b\"]},{\"Name\":\"m\"}],"
                "\"Limit\":\"10\",\"Obj\":{\"K\":\"v\"}}");
}

static void test_json_skips_listed_names(void **state)
{
    (void)state;
    const char *const skip[] = {"Action", "Signature", NULL};
    expect_json("Action=X&Id=1&Signature=s", skip, "{\"Id\":\"1\"}");
}

static void test_json_accepts_indexes_in_any_order(void **state)
{
    (void)state;
    /* A v1 caller may have sorted bytewise: A.10 comes before A.2. */
    expect_json("A.1=b&A.0=a", NULL, "{\"A\":[\"a\",\"b\"]}");
    expect_json("A.0=0&A.1=1&A.10=10&A.11=11&A.2=2&A.3=3&A.4=4&A.5=5&A.6=6&A.7=7&A.8=8&A.9=9", NULL,
                "{\"A\":[\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
                "\"11\"]}");
}

static void test_json_rejects_gaps_naming_parameter(void **state)
{
    (void)state;
    expect_json_error("A.1=x", "A.1");
    expect_json_error("A.0=x&A.2=y", "without gaps");
    expect_json_error("F.0.V.0=a&F.0.V.2=b", "F.0.V.2");
    expect_json_error("A.01=x", "plain number");
    expect_json_error("A.0=x&A.00=y", "A.00");
    expect_json_error("A.9999999999=x", "plain number");
}

static void test_json_rejects_conflicting_shapes(void **state)
{
    (void)state;
    expect_json_error("A=1&A.0=2", "both a value and have parts");
    expect_json_error("A.0=2&A=1", "A.0");
    expect_json_error("A.0=1&A.B=2", "both as a list");
    expect_json_error("A.0.B=1&A.0=2", "both a value");
    expect_json_error("A=1&A=2", "more than once");
}

static void test_json_rejects_empty_segments(void **state)
{
    (void)state;
    expect_json_error("A..B=1", "A..B");
    expect_json_error(".A=1", "empty name part");
    expect_json_error("A.=1", "empty name part");
    expect_json_error("A.0.=1", "empty name part");
}

static void test_json_rejects_invalid_utf8_added_directly(void **state)
{
    (void)state;
    struct param_list l = {0};
    params_add(&l, "A", "\xc0\xaf");
    json_t *j = NULL;
    struct err e = {0};
    assert_int_equal(params_to_json(&l, NULL, &j, &e), ERR_INVALID_PARAMETER);
    assert_null(j);
    assert_non_null(strstr(e.msg, "UTF-8"));
    params_free(&l);
}

/* Parsing s fails with `code` and a message containing `names`, keeping nothing. */
static void expect_bound(const char *s, int code, const char *names)
{
    struct param_list l = {0};
    struct err e = {0};
    assert_int_equal(params_parse_form(s, strlen(s), &l, &e), code);
    if (!strstr(e.msg, names))
        fail_msg("message \"%s\" does not mention \"%s\"", e.msg, names);
    assert_int_equal(l.n, 0);
    params_free(&l);
}

/* "p0=1&p1=1&...": n parameters. */
static char *form_of(size_t n)
{
    char *s = xmalloc(n * 16 + 1), *w = s;
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%sp%zu=1", i ? "&" : "", i);
    return s;
}

static void test_form_allows_max_count_and_refuses_one_more(void **state)
{
    (void)state;
    char *s = form_of(PARAMS_MAX_COUNT);
    struct param_list l = parse_ok(s);
    assert_int_equal(l.n, PARAMS_MAX_COUNT);
    params_free(&l);
    free(s);
    s = form_of(PARAMS_MAX_COUNT + 1);
    expect_bound(s, ERR_REQUEST_SIZE_LIMIT, "limit of 1000 parameters");
    free(s);
}

static void test_form_refuses_long_names_and_values(void **state)
{
    (void)state;
    char *name = xmalloc(PARAMS_MAX_NAME_LEN + 8);
    memset(name, 'n', PARAMS_MAX_NAME_LEN);
    strcpy(name + PARAMS_MAX_NAME_LEN, "=1");
    struct param_list l = parse_ok(name);
    params_free(&l);
    memmove(name + 1, name, strlen(name) + 1); /* one byte longer */
    expect_bound(name, ERR_INVALID_PARAMETER, "limit of 256 bytes");
    free(name);
    char *v = xmalloc(PARAMS_MAX_VALUE_LEN + 8);
    strcpy(v, "v=");
    memset(v + 2, 'x', PARAMS_MAX_VALUE_LEN);
    v[PARAMS_MAX_VALUE_LEN + 2] = '\0';
    l = parse_ok(v);
    params_free(&l);
    strcat(v, "x");
    expect_bound(v, ERR_INVALID_PARAMETER_VALUE, "limit of 65536 bytes");
    free(v);
}

static void test_form_refuses_names_deeper_than_the_limit(void **state)
{
    (void)state;
    struct param_list l = parse_ok("A.0.B.1.C.2.D.3=x"); /* 8 parts */
    params_free(&l);
    expect_bound("A.0.B.1.C.2.D.3.E=x", ERR_INVALID_PARAMETER, "depth of 8 parts");
    /* The attack of issue 9: 300,000 levels in 600 KB, unsigned; refused without recursion. */
    size_t n = 300000;
    char *s = xmalloc(2 * n + 8), *w = s;
    *w++ = 'a';
    for (size_t i = 0; i < n; i++)
        *w++ = '.', *w++ = '0';
    strcpy(w, "=v");
    expect_bound(s, ERR_INVALID_PARAMETER, "limit of 256 bytes");
    free(s);
}

static void test_json_depth_check_counts_only_structure(void **state)
{
    (void)state;
    struct err e = {0};
    char deep[64] = {0};
    memset(deep, '[', PARAMS_MAX_JSON_DEPTH);
    memset(deep + PARAMS_MAX_JSON_DEPTH, ']', PARAMS_MAX_JSON_DEPTH);
    assert_int_equal(params_json_depth_check(deep, strlen(deep), PARAMS_MAX_JSON_DEPTH, &e), 0);
    char deeper[64] = "[";
    strcat(deeper, deep);
    strcat(deeper, "]");
    assert_int_equal(params_json_depth_check(deeper, strlen(deeper), PARAMS_MAX_JSON_DEPTH, &e),
                     ERR_INVALID_PARAMETER);
    assert_non_null(strstr(e.msg, "limit of 16 levels"));
    /* brackets inside strings, escaped quotes included, are text */
    const char *str = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[[[[[[[[\"}";
    assert_int_equal(params_json_depth_check(str, strlen(str), 2, &e), 0);
}

/* The poll's fast path reads flat objects of plain strings exactly as jansson does, and leaves
 * every other shape (escapes, non-strings, duplicates, trailing bytes) to jansson. */
static void test_json_flat_strings_matches_jansson_or_declines(void **state)
{
    (void)state;
    static const char *const taken[] = {"{\"AsyncRequestId\":\"17c36da0-ee16b61f\"}",
                                        " { \"A\" : \"1\" ,\"B\":\"\"}\r\n", "{}",
                                        "{\"InstanceId\":\"cdb-1\",\"Offset\":\"0\"}"};
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        json_t *fast = params_json_flat_strings(taken[i], strlen(taken[i]));
        json_t *ref = json_loads(taken[i], JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(fast);
        assert_non_null(ref);
        assert_true(json_equal(fast, ref));
        json_decref(fast);
        json_decref(ref);
    }
    static const char *const declined[] = {"{\"A\":\"x\\\"y\"}",
                                           "{\"A\":1}",
                                           "{\"A\":\"1\",\"A\":\"2\"}",
                                           "{\"A\":\"1\"} x",
                                           "{\"A\":{\"B\":\"1\"}}",
                                           "[\"A\"]",
                                           "{\"A\":\"\xc3\xa9\"}",
                                           "{\"A\":\"1\",}",
                                           "{\"A\" \"1\"}",
                                           "",
                                           "{\"A\":\"1\"",
                                           "{\"A\":\"a\tb\"}"};
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++)
        assert_null(params_json_flat_strings(declined[i], strlen(declined[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_decodes_plus_and_percent_escapes),
        cmocka_unit_test(test_form_skips_empty_pieces_and_keeps_order),
        cmocka_unit_test(test_form_value_may_contain_equals),
        cmocka_unit_test(test_form_rejects_bad_escapes_naming_parameter),
        cmocka_unit_test(test_form_rejects_nul),
        cmocka_unit_test(test_form_rejects_invalid_utf8_naming_parameter),
        cmocka_unit_test(test_form_rejects_empty_name),
        cmocka_unit_test(test_utf8_validation),
        cmocka_unit_test(test_duplicate_parameter_is_named),
        cmocka_unit_test(test_sort_is_bytewise_by_key),
        cmocka_unit_test(test_json_unflattens_lists_and_objects),
        cmocka_unit_test(test_json_skips_listed_names),
        cmocka_unit_test(test_json_accepts_indexes_in_any_order),
        cmocka_unit_test(test_json_rejects_gaps_naming_parameter),
        cmocka_unit_test(test_json_rejects_conflicting_shapes),
        cmocka_unit_test(test_json_rejects_empty_segments),
        cmocka_unit_test(test_json_rejects_invalid_utf8_added_directly),
        cmocka_unit_test(test_form_allows_max_count_and_refuses_one_more),
        cmocka_unit_test(test_form_refuses_long_names_and_values),
        cmocka_unit_test(test_form_refuses_names_deeper_than_the_limit),
        cmocka_unit_test(test_json_depth_check_counts_only_structure),
        cmocka_unit_test(test_json_flat_strings_matches_jansson_or_declines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
