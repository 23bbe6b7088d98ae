/* Fuzz target: the TC3 Authorization header (sign_tc3_parse), the canonical request and TC3
 * signature over fuzzed headers and body, and the v1 string to sign over a fuzzed query. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudapi/sign.h"
#include "common/sha256.h"
#include "fuzz_util.h"

#define MAX_HEADERS 32 /* the header lines kept; the rest are read and dropped */

static void tc3(const struct tc3_auth *auth, const struct tc3_request *base, size_t size)
{
    struct err e;
    struct tc3_request r = *base;
    r.signed_headers = auth->signed_headers;
    char *canonical = sign_tc3_canonical_request(&r, &e);
    if (!canonical)
        return;
    /* the body hash given beforehand must give the same canonical request */
    char hash[65];
    sha256_hex(r.body_len ? r.body : "", r.body_len, hash);
    r.body_sha256 = hash;
    char *again = sign_tc3_canonical_request(&r, &e);
    if (!again || strcmp(again, canonical) != 0)
        abort();
    unsigned char key[32];
    char sig[65];
    sign_tc3_signing_key("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", auth->date, auth->service, key);
    sign_tc3_signature(key, (int64_t)size, auth->date, auth->service, canonical, sig);
    (void)ct_streq(sig, auth->signature);
    free(again);
    free(canonical);
}

static void v1(const char *method, const char *host, const char *path, const char *query)
{
    struct param_list l = {0};
    struct err e;
    if (params_parse_form(query, strlen(query), &l, &e) == 0) {
        params_sort(&l);
        char *sts = sign_v1_string_to_sign(method, host, path, &l);
        char sig[64];
        if (sign_v1_signature("HmacSHA256", "key", sts, sig, &e) != 0 ||
            sign_v1_signature("HmacSHA1", "key", sts, sig, &e) != 0)
            abort();
        const struct param *m = params_find(&l, "SignatureMethod");
        (void)sign_v1_signature(m ? m->value : NULL, "key", sts, sig, &e);
        free(sts);
    }
    params_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input: the Authorization value, method, path and query on one line each, "name: value" header
 * lines, an empty line, then the body (to the end, any bytes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    char *buf = fuzz_strndup(data, size), *p = buf;
    const char *authorization = fuzz_next_line(&p, FUZZ_AS_SENT);
    const char *method = fuzz_next_line(&p, FUZZ_AS_SENT), *path = fuzz_next_line(&p, FUZZ_AS_SENT),
               *query = fuzz_next_line(&p, FUZZ_AS_SENT);
    struct fuzz_headers hs = {0};
    fuzz_read_headers(&p, &hs, MAX_HEADERS, FUZZ_AS_SENT);
    struct tc3_request r = {.method = method,
                            .path = path,
                            .query = query,
                            .body = p,
                            .body_len = size - (size_t)(p - buf),
                            .header = fuzz_header,
                            .header_ctx = &hs};
    struct tc3_auth auth;
    struct err e;
    if (sign_tc3_parse(authorization, &auth, &e) == 0) {
        tc3(&auth, &r, size);
        r.host_override = "127.0.0.1";
        tc3(&auth, &r, size);
    }
    const char *host = fuzz_header(&hs, "host");
    v1(method, host ? host : "", path, query);
    free(buf);
    return 0;
}
