/* Taking a Cloud API request apart (TC3 or v1) and checking its signature. */
#include "cloudapi/request.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloudapi/keycache.h"
#include "common/sha256.h"
#include "common/timefmt.h"
#include "common/xalloc.h"

/* Names that are common parameters in v1 requests, never passed to actions. */
static const char *const v1_common[] = {"Action", "Version",  "Region",        "Timestamp",
                                        "Nonce",  "SecretId", "Signature",     "SignatureMethod",
                                        "Token",  "Language", "RequestClient", NULL};

static bool content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static const char *param_value(const struct api_request *r, const char *key)
{
    const struct param *p = params_find(&r->form, key);
    return p ? p->value : NULL;
}

static int parse_form(struct api_request *r, const char *s, size_t len, struct err *e)
{
    int rc = params_parse_form(s, len, &r->form, e);
    if (!rc)
        rc = params_check_unique(&r->form, e);
    r->from_form = true;
    return rc;
}

static int parse_json_body(struct api_request *r, struct err *e)
{
    const struct http_request *h = r->http;
    if (h->body_len == 0) {
        r->params = json_object();
        return 0;
    }
    if ((r->params = params_json_flat_strings(h->body, h->body_len)))
        return 0;
    if (!params_utf8_valid(h->body, h->body_len))
        return err_set(e, ERR_INVALID_PARAMETER, "the request body is not valid UTF-8");
    int rc = params_json_depth_check(h->body, h->body_len, PARAMS_MAX_JSON_DEPTH, e);
    if (rc)
        return rc;
    json_error_t je;
    json_t *v = json_loadb(h->body, h->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        return err_set(e, ERR_INVALID_PARAMETER,
                       "the request body is not valid JSON (line %d, column %d): %s", je.line,
                       je.column, je.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return err_set(e, ERR_INVALID_PARAMETER, "the request body must be a JSON object");
    }
    r->params = v;
    return 0;
}

/* TC3 takes its common parameters from headers; the business parameters (query, form or JSON
 * body) are decoded only after the signature is checked, by decode_tc3. */
static int parse_tc3(struct api_request *r, struct err *e)
{
    const struct http_request *h = r->http;
    const char *auth = http_header(h, "Authorization");
    if (!auth)
        return err_set(
            e, ERR_AUTH_INVALID_AUTHORIZATION,
            "the Authorization header is missing; sign the request with TC3-HMAC-SHA256");
    int rc = sign_tc3_parse(auth, &r->tc3, e);
    if (rc)
        return rc;
    r->action = http_header(h, "X-TC-Action");
    r->version = http_header(h, "X-TC-Version");
    r->region = http_header(h, "X-TC-Region");
    r->timestamp = http_header(h, "X-TC-Timestamp");
    r->token = http_header(h, "X-TC-Token");
    r->secret_id = r->tc3.secret_id;
    const char *ct = http_header(h, "Content-Type");
    if (strcmp(h->method, "GET") == 0) {
        if (!content_type_is(ct, "application/x-www-form-urlencoded"))
            return err_set(e, ERR_INVALID_PARAMETER,
                           "Content-Type %.64s is not supported for a TC3 GET; send "
                           "application/x-www-form-urlencoded",
                           ct ? ct : "(none)");
        return 0;
    }
    if (content_type_is(ct, "application/json") ||
        content_type_is(ct, "application/x-www-form-urlencoded"))
        return 0;
    return err_set(e, ERR_INVALID_PARAMETER,
                   "Content-Type %.64s is not supported; send application/json",
                   ct ? ct : "(none)");
}

static int decode_tc3(struct api_request *r, struct err *e)
{
    const struct http_request *h = r->http;
    int rc;
    if (strcmp(h->method, "GET") == 0)
        rc = parse_form(r, h->query, strlen(h->query), e);
    else if (content_type_is(http_header(h, "Content-Type"), "application/json"))
        return parse_json_body(r, e);
    else
        rc = parse_form(r, h->body, h->body_len, e);
    return rc ? rc : params_to_json(&r->form, NULL, &r->params, e);
}

static int parse_v1(struct api_request *r, struct err *e)
{
    const struct http_request *h = r->http;
    int rc;
    if (strcmp(h->method, "GET") == 0) {
        rc = parse_form(r, h->query, strlen(h->query), e);
    } else {
        const char *ct = http_header(h, "Content-Type");
        if (!content_type_is(ct, "application/x-www-form-urlencoded"))
            return err_set(e, ERR_INVALID_PARAMETER,
                           "Content-Type %s is not supported: POST application/json with a "
                           "TC3-HMAC-SHA256 Authorization header, or an "
                           "application/x-www-form-urlencoded form with a v1 Signature",
                           ct ? ct : "(none)");
        rc = parse_form(r, h->body, h->body_len, e);
    }
    if (rc)
        return rc;
    r->action = param_value(r, "Action");
    r->version = param_value(r, "Version");
    r->region = param_value(r, "Region");
    r->timestamp = param_value(r, "Timestamp");
    r->nonce = param_value(r, "Nonce");
    r->secret_id = param_value(r, "SecretId");
    r->token = param_value(r, "Token");
    r->signature = param_value(r, "Signature");
    r->signature_method = param_value(r, "SignatureMethod");
    return 0;
}

/* TC3 when the client says so (Authorization, X-TC-* headers, or a JSON body); v1 otherwise. */
static enum sig_style detect_style(const struct http_request *h)
{
    if (http_header(h, "Authorization") || http_header(h, "X-TC-Action") ||
        http_header(h, "X-TC-Timestamp"))
        return SIG_TC3;
    if (strcmp(h->method, "POST") == 0 &&
        content_type_is(http_header(h, "Content-Type"), "application/json"))
        return SIG_TC3;
    return SIG_V1;
}

int api_request_parse(const struct http_request *h, struct api_request *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    r->http = h;
    r->host = http_header(h, "Host");
    r->style = detect_style(h);
    return r->style == SIG_TC3 ? parse_tc3(r, e) : parse_v1(r, e);
}

int api_request_decode(struct api_request *r, struct err *e)
{
    if (r->params)
        return 0;
    if (r->style == SIG_TC3)
        return decode_tc3(r, e);
    return params_to_json(&r->form, v1_common, &r->params, e);
}

void api_request_free(struct api_request *r)
{
    params_free(&r->form);
    json_decref(r->params);
    r->params = NULL;
}

const char *api_request_secret_id(const struct api_request *r)
{
    return r->secret_id && *r->secret_id ? r->secret_id : NULL;
}

static int parse_timestamp(const char *s, const char *name, int64_t *out, struct err *e)
{
    if (!s || !*s)
        return err_set(e, ERR_MISSING_PARAMETER, "The parameter `%s` is missing", name);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return err_set(e, ERR_INVALID_PARAMETER, "%s: expected Unix seconds, got \"%.40s\"", name,
                       s);
    *out = v;
    return 0;
}

int api_request_check_time(const struct api_request *r, int64_t now_s, int64_t max_skew_s,
                           struct err *e)
{
    if (r->style == SIG_V1) {
        if (!r->nonce || !*r->nonce)
            return err_set(e, ERR_MISSING_PARAMETER,
                           "The parameter `Nonce` is missing; v1 requests need a random "
                           "positive integer Nonce");
        if (strspn(r->nonce, "0123456789") != strlen(r->nonce) || strlen(r->nonce) > 19)
            return err_set(e, ERR_INVALID_PARAMETER,
                           "Nonce: expected a positive integer, got "
                           "\"%.40s\"",
                           r->nonce);
    }
    const char *name = r->style == SIG_TC3 ? "X-TC-Timestamp" : "Timestamp";
    int64_t ts = 0;
    int rc = parse_timestamp(r->timestamp, name, &ts, e);
    if (rc)
        return rc;
    int64_t skew = ts > now_s ? ts - now_s : now_s - ts;
    if (skew > max_skew_s)
        return err_set(e, ERR_AUTH_SIGNATURE_EXPIRE,
                       "%s %lld is %lld s away from the server time %lld (at most %lld s allowed); "
                       "check the client clock",
                       name, (long long)ts, (long long)skew, (long long)now_s,
                       (long long)max_skew_s);
    if (r->style == SIG_TC3) {
        char date[11];
        time_fmt_utc_date(ts, date);
        if (strcmp(date, r->tc3.date) != 0)
            return err_set(e, ERR_AUTH_SIGNATURE_FAILURE,
                           "the credential date %s is not the UTC date %s of X-TC-Timestamp",
                           r->tc3.date, date);
    }
    return 0;
}

static const char *header_lookup(void *ctx, const char *lower_name)
{
    return http_header(ctx, lower_name);
}

/* "host:port" -> "host" (IPv6 "[::1]:port" keeps its brackets). */
static void host_without_port(const char *host, char *out, size_t outlen)
{
    size_t n = host ? strnlen(host, outlen - 1) : 0; /* a copy, not snprintf: 0.6% of a poll */
    memcpy(out, host ? host : "", n);
    out[n] = '\0';
    char *colon = strrchr(out, ':');
    char *bracket = strrchr(out, ']');
    if (colon && (!bracket || colon > bracket) && (out[0] == '[' || strchr(out, ':') == colon))
        *colon = '\0';
}

static bool tc3_matches(const struct api_request *r, const unsigned char key[32], const char *host,
                        int64_t ts, const char *body_hash)
{
    const struct http_request *h = r->http;
    struct tc3_request cr = {
        .method = h->method,
        .path = h->path,
        .query = h->query,
        .body = h->body,
        .body_len = h->body_len,
        .signed_headers = r->tc3.signed_headers,
        .header = header_lookup,
        .header_ctx = (void *)h,
        .host_override = host,
        .body_sha256 = body_hash,
    };
    struct err ignored;
    char *canonical = sign_tc3_canonical_request(&cr, &ignored);
    if (!canonical)
        return false;
    char sig[65];
    sign_tc3_signature(key, ts, r->tc3.date, r->tc3.service, canonical, sig);
    free(canonical);
    return ct_streq(sig, r->tc3.signature);
}

/* The SDK signs the host without its port; other clients may sign it with the port: accept both. */
static int verify_tc3(const struct api_request *r, const char *secret_key, struct keycache *kc,
                      struct err *e)
{
    unsigned char key[32];
    keycache_tc3_signing_key(kc, secret_key, r->tc3.date, r->tc3.service, key);
    int64_t ts = strtoll(r->timestamp, NULL, 10);
    char bare[256];
    host_without_port(r->host, bare, sizeof bare);
    char body_hash[65]; /* hashed once for both hosts: one pass over the body, signed or not */
    sha256_hex(r->http->body ? r->http->body : "", r->http->body_len, body_hash);
    if (tc3_matches(r, key, bare, ts, body_hash) ||
        (r->host && strcmp(r->host, bare) != 0 && tc3_matches(r, key, r->host, ts, body_hash)))
        return 0;
    return err_set(e, ERR_AUTH_SIGNATURE_FAILURE,
                   "the TC3 signature does not match: check the SecretKey, and that the request "
                   "was signed over service %s, Host %s, its Content-Type and the exact body",
                   r->tc3.service, bare);
}

static bool v1_matches(const struct api_request *r, const struct param_list *sorted,
                       const char *secret_key, const char *host)
{
    char *sts = sign_v1_string_to_sign(r->http->method, host, r->http->path, sorted);
    char sig[64];
    struct err ignored;
    bool ok = sign_v1_signature(r->signature_method ? r->signature_method : "HmacSHA1", secret_key,
                                sts, sig, &ignored) == 0 &&
              ct_streq(sig, r->signature);
    free(sts);
    return ok;
}

/* v1 signs "<METHOD><host as the client configured it>/?..."; try the Host header as sent, then
 * without its port. */
static int verify_v1(const struct api_request *r, const char *secret_key, struct err *e)
{
    if (!r->signature || !*r->signature)
        return err_set(e, ERR_MISSING_PARAMETER, "The parameter `Signature` is missing");
    const char *method = r->signature_method ? r->signature_method : "HmacSHA1";
    if (strcmp(method, "HmacSHA1") != 0 && strcmp(method, "HmacSHA256") != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "SignatureMethod %.40s is not supported: use HmacSHA256 or HmacSHA1",
                       method);
    struct param_list sorted = {0};
    for (size_t i = 0; i < r->form.n; i++)
        if (strcmp(r->form.items[i].key, "Signature") != 0)
            params_add(&sorted, r->form.items[i].key, r->form.items[i].value);
    params_sort(&sorted);
    char bare[256];
    host_without_port(r->host, bare, sizeof bare);
    bool ok = v1_matches(r, &sorted, secret_key, r->host ? r->host : "") ||
              v1_matches(r, &sorted, secret_key, bare);
    params_free(&sorted);
    if (ok)
        return 0;
    return err_set(e, ERR_AUTH_SIGNATURE_FAILURE,
                   "the %s signature does not match: check the SecretKey and that the string to "
                   "sign starts with %s%s%s?",
                   method, r->http->method, r->host ? r->host : "", r->http->path);
}

int api_request_verify(const struct api_request *r, const char *secret_key, struct keycache *kc,
                       struct err *e)
{
    return r->style == SIG_TC3 ? verify_tc3(r, secret_key, kc, e) : verify_v1(r, secret_key, e);
}
