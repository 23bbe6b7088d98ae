/* Unit tests for cloudapi/sign: TC3 and v1 signatures against vectors from the official SDK. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cloudapi/params.h"
#include "cloudapi/sign.h"
#include "common/sha256.h"
#include "common/xalloc.h"
#include "sign_vectors.h"

#define NVEC(a) (sizeof(a) / sizeof((a)[0]))

/* Header lookup over one vector: the headers exactly as the SDK sent them. */
static const char *vector_header(void *ctx, const char *lower_name)
{
    const struct tc3_vector *v = ctx;
    if (strcmp(lower_name, "content-type") == 0)
        return v->content_type;
    if (strcmp(lower_name, "host") == 0)
        return v->host_header;
    return NULL;
}

static struct tc3_request vector_request(const struct tc3_vector *v)
{
    return (struct tc3_request){
        .method = v->method,
        .path = v->path,
        .query = v->query,
        .body = v->body,
        .body_len = strlen(v->body),
        .signed_headers = v->signed_headers,
        .header = vector_header,
        .header_ctx = (void *)v,
        .host_override = v->signed_host,
    };
}

/* Signature of r under secret_key with v's timestamp, date and service; "" when r is unusable. */
static void signature_of(const struct tc3_request *r, const struct tc3_vector *v,
                         const char *secret_key, char out[65])
{
    struct err e = {0};
    char *canonical = sign_tc3_canonical_request(r, &e);
    assert_non_null(canonical);
    unsigned char key[32];
    sign_tc3_signing_key(secret_key, v->date, v->service, key);
    sign_tc3_signature(key, v->timestamp, v->date, v->service, canonical, out);
    free(canonical);
}

static void test_tc3_canonical_request_matches_sdk(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC(tc3_vectors); i++) {
        const struct tc3_vector *v = &tc3_vectors[i];
        struct tc3_request r = vector_request(v);
        struct err e = {0};
        char *canonical = sign_tc3_canonical_request(&r, &e);
        assert_non_null(canonical);
        assert_string_equal(canonical, v->canonical_request);
        free(canonical);
    }
}

static void test_tc3_signature_matches_sdk(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC(tc3_vectors); i++) {
        const struct tc3_vector *v = &tc3_vectors[i];
        struct tc3_request r = vector_request(v);
        char sig[65];
        signature_of(&r, v, v->secret_key, sig);
        assert_string_equal(sig, v->signature);
        char auth[512];
        snprintf(auth, sizeof auth,
                 "TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, Signature=%s",
                 v->secret_id, v->date, v->service, v->signed_headers, sig);
        assert_string_equal(auth, v->authorization);
    }
}

static void test_tc3_signs_host_without_port(void **state)
{
    (void)state;
    const struct tc3_vector *v = &tc3_vectors[0];
    assert_string_equal(v->host_header, "127.0.0.1:9000");
    struct tc3_request r = vector_request(v);
    char sig[65];
    r.host_override = NULL; /* the Host header as sent, port included */
    signature_of(&r, v, v->secret_key, sig);
    assert_string_not_equal(sig, v->signature);
    r.host_override = "127.0.0.1";
    signature_of(&r, v, v->secret_key, sig);
    assert_string_equal(sig, v->signature);
}

static void test_tc3_signs_service_from_scope(void **state)
{
    (void)state;
    assert_string_equal(tc3_vectors[0].service, "127"); /* first label of 127.0.0.1:9000 */
    assert_string_equal(tc3_vectors[1].service, "cdb");
    const struct tc3_vector *v = &tc3_vectors[1];
    struct tc3_request r = vector_request(v);
    struct err e = {0};
    char *canonical = sign_tc3_canonical_request(&r, &e);
    assert_non_null(canonical);
    unsigned char key[32];
    char sig[65];
    sign_tc3_signing_key(v->secret_key, v->date, "mongodb", key);
    sign_tc3_signature(key, v->timestamp, v->date, "mongodb", canonical, sig);
    assert_string_not_equal(sig, v->signature);
    free(canonical);
}

static void test_tc3_wrong_key_mismatches(void **state)
{
    (void)state;
    const struct tc3_vector *v = &tc3_vectors[1];
    struct tc3_request r = vector_request(v);
    char sig[65];
    signature_of(&r, v, "Gu5t9xGARNpq86cd98joQYCN3EXAMPLF", sig);
    assert_false(ct_streq(sig, v->signature));
}

static void test_tc3_tampered_body_mismatches(void **state)
{
    (void)state;
    const struct tc3_vector *v = &tc3_vectors[0];
    struct tc3_request r = vector_request(v);
    char *body = strdup(v->body);
    body[strlen(body) - 3] ^= 1;
    r.body = body;
    char sig[65];
    signature_of(&r, v, v->secret_key, sig);
    assert_false(ct_streq(sig, v->signature));
    free(body);
}

static void test_tc3_tampered_query_mismatches(void **state)
{
    (void)state;
    const struct tc3_vector *v = &tc3_vectors[2];
    struct tc3_request r = vector_request(v);
    r.query = "AsyncRequestId=4763";
    char sig[65];
    signature_of(&r, v, v->secret_key, sig);
    assert_false(ct_streq(sig, v->signature));
}

static void test_tc3_header_values_are_trimmed(void **state)
{
    (void)state;
    struct tc3_vector v = tc3_vectors[1];
    v.content_type = "  application/json \t";
    struct tc3_request r = vector_request(&v);
    char sig[65];
    signature_of(&r, &v, v.secret_key, sig);
    assert_string_equal(sig, v.signature);
}

static void test_tc3_missing_signed_header_fails(void **state)
{
    (void)state;
    const struct tc3_vector *v = &tc3_vectors[0];
    struct tc3_request r = vector_request(v);
    r.signed_headers = "content-type;host;x-tc-action";
    struct err e = {0};
    assert_null(sign_tc3_canonical_request(&r, &e));
    assert_int_equal(e.code, ERR_AUTH_INVALID_AUTHORIZATION);
    assert_non_null(strstr(e.msg, "x-tc-action"));
}

static void test_tc3_parse_accepts_sdk_header(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC(tc3_vectors); i++) {
        const struct tc3_vector *v = &tc3_vectors[i];
        struct tc3_auth a;
        struct err e = {0};
        assert_int_equal(sign_tc3_parse(v->authorization, &a, &e), 0);
        assert_string_equal(a.secret_id, v->secret_id);
        assert_string_equal(a.date, v->date);
        assert_string_equal(a.service, v->service);
        assert_string_equal(a.signed_headers, v->signed_headers);
        assert_string_equal(a.signature, v->signature);
    }
}

static void test_tc3_parse_tolerates_extra_spaces(void **state)
{
    (void)state;
    const char *h = "  TC3-HMAC-SHA256   Credential = AKIDx/2026-11-23/cdb/tc3_request ,"
                    "SignedHeaders=content-type;host,   Signature= "
                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  ";
    struct tc3_auth a;
    struct err e = {0};
    assert_int_equal(sign_tc3_parse(h, &a, &e), 0);
    assert_string_equal(a.secret_id, "AKIDx");
    assert_string_equal(a.service, "cdb");
    assert_string_equal(a.signed_headers, "content-type;host");
    assert_string_equal(a.signature,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

/* Each malformed header fails with InvalidAuthorization and a message containing `names`. */
static void expect_parse_error(const char *header, const char *names)
{
    struct tc3_auth a;
    struct err e = {0};
    assert_int_equal(sign_tc3_parse(header, &a, &e), ERR_AUTH_INVALID_AUTHORIZATION);
    assert_int_equal(e.code, ERR_AUTH_INVALID_AUTHORIZATION);
    if (!strstr(e.msg, names))
        fail_msg("message \"%s\" does not mention \"%s\"", e.msg, names);
}

#define SIG64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* SignedHeaders is an exact list naming content-type and host; a substring is not a name. */
static void test_tc3_signed_headers_must_name_content_type_and_host(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "content-type;x-host",   "content-type",        "host",
        "content-type;hostname", "x-content-type;host", "content-type;host;host"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *h = xasprintf("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                            "SignedHeaders=%s, Signature=" SIG64,
                            bad[i]);
        expect_parse_error(h, "SignedHeaders");
        free(h);
    }
    struct tc3_auth a;
    struct err e = {0};
    assert_int_equal(sign_tc3_parse("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                                    "SignedHeaders=content-type;host;x-tc-action, Signature=" SIG64,
                                    &a, &e),
                     0);
    assert_string_equal(a.signed_headers, "content-type;host;x-tc-action");
}

static void test_tc3_parse_rejects_malformed_headers(void **state)
{
    (void)state;
    expect_parse_error(NULL, "missing");
    expect_parse_error("   ", "missing");
    expect_parse_error("HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "algorithm");
    expect_parse_error("TC3-HMAC-SHA1 Credential=A/2026-11-23/cdb/tc3_request", "algorithm");
    expect_parse_error("TC3-HMAC-SHA256", "Credential is missing");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, Signature=" SIG64,
                       "SignedHeaders is missing");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host",
                       "Signature is missing");
    expect_parse_error("TC3-HMAC-SHA256 SignedHeaders=content-type;host, Signature=" SIG64,
                       "Credential is missing");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc4_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "tc3_request");
    expect_parse_error(
        "TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb, SignedHeaders=content-type;host, "
        "Signature=" SIG64,
        "Credential");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/x/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "Credential");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/20261123/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "YYYY-MM-DD");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-13-01/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "YYYY-MM-DD");
    expect_parse_error("TC3-HMAC-SHA256 Credential=/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "SecretId");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23//tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64,
                       "service");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;;host, Signature=" SIG64,
                       "SignedHeaders");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=0123456789ABCDEF0123456789abcdef"
                       "0123456789abcdef0123456789abcdef",
                       "64 lower-case hex");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=abcdef",
                       "64 lower-case hex");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "SignedHeaders=content-type;host, Signature=" SIG64 ", Extra=1",
                       "unknown part");
    expect_parse_error("TC3-HMAC-SHA256 Credential=A/2026-11-23/cdb/tc3_request, "
                       "Credential=A/2026-11-23/cdb/tc3_request, SignedHeaders=content-type;host, "
                       "Signature=" SIG64,
                       "twice");
    expect_parse_error("TC3-HMAC-SHA256 Credential A/2026-11-23/cdb/tc3_request", "Name=Value");
}

/* Decodes a v1 vector's form, checks the string to sign and the signature it carries. */
static void test_v1_matches_sdk(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC(v1_vectors); i++) {
        const struct v1_vector *v = &v1_vectors[i];
        struct param_list l = {0};
        struct err e = {0};
        assert_int_equal(params_parse_form(v->form, strlen(v->form), &l, &e), 0);
        assert_int_equal(params_check_unique(&l, &e), 0);
        params_sort(&l);
        char *sts = sign_v1_string_to_sign(v->method, v->host, v->path, &l);
        assert_string_equal(sts, v->string_to_sign);
        const struct param *method = params_find(&l, "SignatureMethod");
        assert_non_null(method);
        assert_string_equal(method->value, v->signature_method);
        char sig[64];
        assert_int_equal(sign_v1_signature(method->value, v->secret_key, sts, sig, &e), 0);
        assert_string_equal(sig, v->signature);
        const struct param *sent = params_find(&l, "Signature");
        assert_non_null(sent);
        assert_true(ct_streq(sig, sent->value));
        free(sts);
        params_free(&l);
    }
}

static void test_v1_wrong_key_or_tampered_param_mismatches(void **state)
{
    (void)state;
    const struct v1_vector *v = &v1_vectors[1];
    struct err e = {0};
    char sig[64];
    assert_int_equal(
        sign_v1_signature(v->signature_method, "wrong-key", v->string_to_sign, sig, &e), 0);
    assert_false(ct_streq(sig, v->signature));
    char *tampered = strdup(v->string_to_sign);
    strstr(tampered, "Nonce=")[6] = '1';
    assert_int_equal(sign_v1_signature(v->signature_method, v->secret_key, tampered, sig, &e), 0);
    assert_false(ct_streq(sig, v->signature));
    free(tampered);
}

static void test_v1_rejects_unknown_signature_method(void **state)
{
    (void)state;
    struct err e = {0};
    char sig[64];
    assert_int_equal(sign_v1_signature("HmacMD5", "k", "s", sig, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "HmacSHA256"));
    assert_int_equal(sign_v1_signature(NULL, "k", "s", sig, &e), ERR_INVALID_PARAMETER_VALUE);
}

static void test_v1_string_to_sign_skips_signature_and_keeps_raw_values(void **state)
{
    (void)state;
    struct param_list l = {0};
    params_add(&l, "b", "x y&z");
    params_add(&l, "Signature", "abc");
    params_add(&l, "a", "1");
    params_sort(&l);
    char *sts = sign_v1_string_to_sign("GET", "host:1", "/", &l);
    assert_string_equal(sts, "GEThost:1/?a=1&b=x y&z");
    free(sts);
    params_free(&l);
}

static void test_ct_streq_compares_whole_strings(void **state)
{
    (void)state;
    assert_true(ct_streq("abc", "abc"));
    assert_false(ct_streq("abc", "abd"));
    assert_false(ct_streq("abc", "abcd"));
    assert_true(ct_streq("", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tc3_canonical_request_matches_sdk),
        cmocka_unit_test(test_tc3_signature_matches_sdk),
        cmocka_unit_test(test_tc3_signs_host_without_port),
        cmocka_unit_test(test_tc3_signs_service_from_scope),
        cmocka_unit_test(test_tc3_wrong_key_mismatches),
        cmocka_unit_test(test_tc3_tampered_body_mismatches),
        cmocka_unit_test(test_tc3_tampered_query_mismatches),
        cmocka_unit_test(test_tc3_header_values_are_trimmed),
        cmocka_unit_test(test_tc3_missing_signed_header_fails),
        cmocka_unit_test(test_tc3_parse_accepts_sdk_header),
        cmocka_unit_test(test_tc3_parse_tolerates_extra_spaces),
        cmocka_unit_test(test_tc3_parse_rejects_malformed_headers),
        cmocka_unit_test(test_tc3_signed_headers_must_name_content_type_and_host),
        cmocka_unit_test(test_v1_matches_sdk),
        cmocka_unit_test(test_v1_wrong_key_or_tampered_param_mismatches),
        cmocka_unit_test(test_v1_rejects_unknown_signature_method),
        cmocka_unit_test(test_v1_string_to_sign_skips_signature_and_keeps_raw_values),
        cmocka_unit_test(test_ct_streq_compares_whole_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
