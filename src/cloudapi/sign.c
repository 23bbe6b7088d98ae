/* Tencent Cloud API signatures (TC3-HMAC-SHA256, v1 HmacSHA1/HmacSHA256) over OpenSSL libcrypto. */
#include "cloudapi/sign.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/sha256.h"
#include "common/xalloc.h"

#define TC3_ALGORITHM "TC3-HMAC-SHA256"

/* A growing heap string; the final pointer is handed to the caller, who frees it. */
struct sbuf {
    char *p;
    size_t n, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Copies s[0..len) into dst for an error message: printable ASCII only, truncated with "...". */
static const char *shown(char *dst, size_t cap, const char *s, size_t len)
{
    size_t j = 0;
    for (; j < len && j + 4 < cap; j++)
        dst[j] = (s[j] >= 0x20 && s[j] < 0x7f) ? s[j] : '?';
    if (j < len) {
        memcpy(dst + j, "...", 3);
        j += 3;
    }
    dst[j] = '\0';
    return dst;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *len)
{
    while (*len && is_blank(**s))
        (*s)++, (*len)--;
    while (*len && is_blank((*s)[*len - 1]))
        (*len)--;
}

static bool is_token_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static bool all_token_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_token_char(s[i]))
            return false;
    return len > 0;
}

/* The scope's service is whatever the client took from its endpoint: the SDK uses the endpoint's
 * first dot-separated label, so "localhost:9000" or "127" are services too. Any printable ASCII
 * but '/', ',' and spaces. */
static bool valid_service(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == ',')
            return false;
    return len > 0;
}

/* YYYY-MM-DD with a month 01..12 and a day 01..31. */
static bool valid_date(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    int month = (s[5] - '0') * 10 + (s[6] - '0');
    int day = (s[8] - '0') * 10 + (s[9] - '0');
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static int auth_err(struct err *e, const char *what, const char *s, size_t len)
{
    char buf[96];
    return err_set(e, ERR_AUTH_INVALID_AUTHORIZATION, "Authorization: %s (got \"%s\")", what,
                   shown(buf, sizeof buf, s, len));
}

/* Credential=SECRETID/YYYY-MM-DD/SERVICE/tc3_request */
static int parse_credential(const char *v, size_t len, struct tc3_auth *out, struct err *e)
{
    const char *part[4];
    size_t plen[4], np = 0;
    const char *p = v, *end = v + len;
    while (np < 4) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        part[np] = p;
        plen[np++] = (size_t)((slash ? slash : end) - p);
        if (!slash)
            break;
        p = slash + 1;
    }
    if (np != 4 || memchr(part[3], '/', (size_t)(end - part[3])))
        return auth_err(e, "Credential must be SecretId/YYYY-MM-DD/service/tc3_request", v, len);
    if (plen[3] != strlen("tc3_request") || memcmp(part[3], "tc3_request", plen[3]) != 0)
        return auth_err(e, "credential scope must end in /tc3_request", v, len);
    if (plen[0] == 0 || plen[0] >= sizeof out->secret_id)
        return auth_err(e, "Credential has an empty or over-long SecretId", v, len);
    if (!valid_date(part[1], plen[1]))
        return auth_err(e, "credential date must be YYYY-MM-DD", part[1], plen[1]);
    if (!valid_service(part[2], plen[2]) || plen[2] >= sizeof out->service)
        return auth_err(e, "credential service must be a non-empty name", part[2], plen[2]);
    memcpy(out->secret_id, part[0], plen[0]);
    out->secret_id[plen[0]] = '\0';
    memcpy(out->date, part[1], plen[1]);
    out->date[plen[1]] = '\0';
    memcpy(out->service, part[2], plen[2]);
    out->service[plen[2]] = '\0';
    return 0;
}

static bool name_is(const char *s, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(s, want, len) == 0;
}

/* SignedHeaders is an exact ';'-separated list: each name once, and content-type and host among
 * them (every official SDK signs those two; a list without host would let a request signed for
 * one host be replayed to another). */
static int parse_signed_headers(const char *v, size_t len, struct tc3_auth *out, struct err *e)
{
    if (len == 0 || len >= sizeof out->signed_headers)
        return auth_err(e, "SignedHeaders must be a non-empty list such as content-type;host", v,
                        len);
    bool has_host = false, has_type = false;
    for (const char *p = v, *end = v + len; p <= end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t n = (size_t)((semi ? semi : end) - p);
        if (!all_token_chars(p, n))
            return auth_err(e, "SignedHeaders has an empty or malformed header name", v, len);
        for (const char *q = v; q < p;) { /* names before this one */
            size_t m = strcspn(q, ";");
            if (m == n && strncasecmp(q, p, n) == 0)
                return auth_err(e, "SignedHeaders names a header twice", v, len);
            q += m + 1;
        }
        has_host |= name_is(p, n, "host");
        has_type |= name_is(p, n, "content-type");
        p += n + 1;
    }
    if (!has_host || !has_type)
        return auth_err(e, "SignedHeaders must name both content-type and host", v, len);
    memcpy(out->signed_headers, v, len);
    out->signed_headers[len] = '\0';
    return 0;
}

static int parse_signature(const char *v, size_t len, struct tc3_auth *out, struct err *e)
{
    bool ok = len == 64;
    for (size_t i = 0; ok && i < len; i++)
        ok = isdigit((unsigned char)v[i]) || (v[i] >= 'a' && v[i] <= 'f');
    if (!ok)
        return auth_err(e, "Signature must be 64 lower-case hex digits", v, len);
    memcpy(out->signature, v, len);
    out->signature[len] = '\0';
    return 0;
}

/* One "Name=Value" piece of the comma-separated list; `seen` flags repeats. */
static int parse_part(const char *s, size_t len, struct tc3_auth *out, unsigned *seen,
                      struct err *e)
{
    static const char *const names[] = {"Credential", "SignedHeaders", "Signature"};
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return auth_err(e, "expected Name=Value", s, len);
    const char *name = s, *val = eq + 1;
    size_t nlen = (size_t)(eq - s), vlen = len - nlen - 1;
    trim(&name, &nlen);
    trim(&val, &vlen);
    for (unsigned i = 0; i < 3; i++) {
        if (nlen != strlen(names[i]) || memcmp(name, names[i], nlen) != 0)
            continue;
        if (*seen & (1u << i))
            return auth_err(e, "a part is given twice", name, nlen);
        *seen |= 1u << i;
        if (i == 0)
            return parse_credential(val, vlen, out, e);
        if (i == 1)
            return parse_signed_headers(val, vlen, out, e);
        return parse_signature(val, vlen, out, e);
    }
    return auth_err(e, "unknown part, expected Credential, SignedHeaders or Signature", name, nlen);
}

int sign_tc3_parse(const char *authorization, struct tc3_auth *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    const char *s = authorization ? authorization : "";
    while (is_blank(*s))
        s++;
    size_t alen = strcspn(s, " \t");
    if (alen == 0)
        return err_set(e, ERR_AUTH_INVALID_AUTHORIZATION,
                       "Authorization header is missing or empty");
    if (alen != strlen(TC3_ALGORITHM) || memcmp(s, TC3_ALGORITHM, alen) != 0)
        return auth_err(e, "unsupported algorithm, expected " TC3_ALGORITHM, s, alen);
    unsigned seen = 0;
    for (const char *p = s + alen; *p;) {
        size_t n = strcspn(p, ",");
        const char *piece = p;
        size_t plen = n;
        trim(&piece, &plen);
        if (plen) {
            int rc = parse_part(piece, plen, out, &seen, e);
            if (rc)
                return rc;
        }
        p += n + (p[n] == ',');
    }
    static const char *const missing[] = {"Credential", "SignedHeaders", "Signature"};
    for (unsigned i = 0; i < 3; i++)
        if (!(seen & (1u << i)))
            return err_set(e, ERR_AUTH_INVALID_AUTHORIZATION, "Authorization: %s is missing",
                           missing[i]);
    return 0;
}

/* Appends "name:value\n" for one signed header; the name is lower-cased, the value trimmed. */
static int add_canonical_header(struct sbuf *b, const struct tc3_request *r, const char *name,
                                size_t nlen, struct err *e)
{
    char lower[128], shown_name[96];
    if (nlen == 0 || nlen >= sizeof lower)
        return err_set(e, ERR_AUTH_INVALID_AUTHORIZATION,
                       "Authorization: SignedHeaders has an empty or over-long name (\"%s\")",
                       shown(shown_name, sizeof shown_name, name, nlen));
    for (size_t i = 0; i < nlen; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[nlen] = '\0';
    const char *v = NULL;
    if (r->host_override && strcmp(lower, "host") == 0)
        v = r->host_override;
    else if (r->header)
        v = r->header(r->header_ctx, lower);
    if (!v)
        return err_set(e, ERR_AUTH_INVALID_AUTHORIZATION,
                       "Authorization: SignedHeaders names \"%s\" but the request has no such "
                       "header",
                       shown(shown_name, sizeof shown_name, lower, nlen));
    size_t vlen = strlen(v);
    trim(&v, &vlen);
    sb_add(b, lower, nlen);
    sb_add(b, ":", 1);
    sb_add(b, v, vlen);
    sb_add(b, "\n", 1);
    return 0;
}

char *sign_tc3_canonical_request(const struct tc3_request *r, struct err *e)
{
    struct sbuf b = {0};
    const char *sh = r->signed_headers ? r->signed_headers : "";
    sb_str(&b, r->method);
    sb_add(&b, "\n", 1);
    sb_str(&b, r->path);
    sb_add(&b, "\n", 1);
    sb_str(&b, r->query ? r->query : "");
    sb_add(&b, "\n", 1);
    for (const char *p = sh, *end = sh + strlen(sh); p <= end;) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        size_t n = (size_t)((semi ? semi : end) - p);
        if (add_canonical_header(&b, r, p, n, e) != 0) {
            free(b.p);
            return NULL;
        }
        p += n + 1;
    }
    char body_hash[65];
    if (r->body_sha256)
        snprintf(body_hash, sizeof body_hash, "%s", r->body_sha256);
    else
        sha256_hex(r->body_len ? r->body : "", r->body_len, body_hash);
    sb_add(&b, "\n", 1);
    sb_str(&b, sh);
    sb_add(&b, "\n", 1);
    sb_add(&b, body_hash, 64);
    return b.p;
}

void sign_tc3_signing_key(const char *secret_key, const char *date, const char *service,
                          unsigned char out[32])
{
    char *k = xasprintf("TC3%s", secret_key);
    unsigned char k_date[32], k_service[32];
    hmac_sha256(k, strlen(k), date, k_date);
    hmac_sha256(k_date, sizeof k_date, service, k_service);
    hmac_sha256(k_service, sizeof k_service, "tc3_request", out);
    OPENSSL_cleanse(k, strlen(k));
    OPENSSL_cleanse(k_date, sizeof k_date);
    OPENSSL_cleanse(k_service, sizeof k_service);
    free(k);
}

void sign_tc3_signature(const unsigned char signing_key[32], int64_t timestamp, const char *date,
                        const char *service, const char *canonical_request, char out[65])
{
    char canonical_hash[65];
    sha256_hex(canonical_request, strlen(canonical_request), canonical_hash);
    /* Built with copies, not printf: vasprintf was 1.5% of asyncd's CPU under `make bench`. */
    struct sbuf b = {0};
    char digits[24], *d = digits + sizeof digits;
    unsigned long long t =
        timestamp < 0 ? 0ull - (unsigned long long)timestamp : (unsigned long long)timestamp;
    *--d = '\n';
    do
        *--d = (char)('0' + t % 10);
    while (t /= 10);
    if (timestamp < 0)
        *--d = '-';
    *--d = '\n';
    sb_add(&b, TC3_ALGORITHM, sizeof TC3_ALGORITHM - 1);
    sb_add(&b, d, (size_t)(digits + sizeof digits - d));
    sb_str(&b, date);
    sb_add(&b, "/", 1);
    sb_str(&b, service);
    sb_add(&b, "/tc3_request\n", 13);
    sb_add(&b, canonical_hash, 64);
    unsigned char mac[32];
    hmac_sha256(signing_key, 32, b.p, mac);
    hex_encode(mac, sizeof mac, out);
    free(b.p);
}

char *sign_v1_string_to_sign(const char *method, const char *host, const char *path,
                             const struct param_list *sorted)
{
    struct sbuf b = {0};
    sb_str(&b, method);
    sb_str(&b, host);
    sb_str(&b, path);
    sb_add(&b, "?", 1);
    bool first = true;
    for (size_t i = 0; i < sorted->n; i++) {
        const struct param *p = &sorted->items[i];
        if (strcmp(p->key, "Signature") == 0)
            continue;
        if (!first)
            sb_add(&b, "&", 1);
        first = false;
        sb_str(&b, p->key);
        sb_add(&b, "=", 1);
        sb_str(&b, p->value);
    }
    return b.p;
}

int sign_v1_signature(const char *signature_method, const char *secret_key,
                      const char *string_to_sign, char out[64], struct err *e)
{
    const EVP_MD *md;
    if (signature_method && strcmp(signature_method, "HmacSHA256") == 0)
        md = EVP_sha256();
    else if (signature_method && strcmp(signature_method, "HmacSHA1") == 0)
        md = EVP_sha1();
    else
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "SignatureMethod must be HmacSHA1 or HmacSHA256");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(md, secret_key, (int)strlen(secret_key), (const unsigned char *)string_to_sign,
              strlen(string_to_sign), mac, &maclen))
        abort();
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    return 0;
}
