/* Tencent Cloud API request signatures: TC3-HMAC-SHA256 and the v1 HmacSHA1/HmacSHA256
 * (PROTOCOL.md). Pure functions over OpenSSL's HMAC/SHA; no I/O, no allocation that outlives a call
 * unless the comment says the caller frees. */
#ifndef ASYNCD_SIGN_H
#define ASYNCD_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "cloudapi/params.h"
#include "common/errors.h"

/* The parts of an `Authorization: TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request,
 * SignedHeaders=a;b, Signature=HEX` header. */
struct tc3_auth {
    char secret_id[128];
    char date[16]; /* YYYY-MM-DD */
    char service[64];
    char signed_headers[256]; /* as sent, e.g. "content-type;host" */
    char signature[72];       /* lower-case hex, 64 chars */
};

/* Parses the header; ERR_AUTH_INVALID_AUTHORIZATION with a message naming the broken part. */
int sign_tc3_parse(const char *authorization, struct tc3_auth *out, struct err *e);

/* Returns the value of a request header by lower-case name, or NULL. */
typedef const char *(*sign_header_fn)(void *ctx, const char *lower_name);

struct tc3_request {
    const char *method; /* "POST" / "GET" */
    const char *path;   /* "/" */
    const char *query;  /* raw query string as received, without '?'; "" if none */
    const void *body;
    size_t body_len;
    const char *signed_headers; /* from struct tc3_auth */
    sign_header_fn header;      /* header lookup for every name in signed_headers */
    void *header_ctx;
    const char
        *host_override;      /* when not NULL, used as the value of "host" (port stripped or not) */
    const char *body_sha256; /* when not NULL, the body's lower-case hex SHA-256, already known */
};

/* Builds the canonical request (PROTOCOL.md). Returns a heap string the caller frees, or NULL
 * with e filled when a signed header is missing. Header values are trimmed; names lower-cased. */
char *sign_tc3_canonical_request(const struct tc3_request *r, struct err *e);

/* kSigning = HMAC chain over "TC3"+secret_key, date, service, "tc3_request". */
void sign_tc3_signing_key(const char *secret_key, const char *date, const char *service,
                          unsigned char out[32]);

/* Signature hex of string-to-sign "TC3-HMAC-SHA256\n<ts>\n<date>/<service>/tc3_request\n<hex sha256
 * of canonical>" under signing_key. out gets 64 hex chars and a NUL. */
void sign_tc3_signature(const unsigned char signing_key[32], int64_t timestamp, const char *date,
                        const char *service, const char *canonical_request, char out[65]);

/* v1: "<METHOD><host>/?" + params sorted by name (except Signature), "k=v" joined with '&',
 * values raw (decoded). Returns a heap string the caller frees. `sorted` must already be sorted
 * with params_sort. */
char *sign_v1_string_to_sign(const char *method, const char *host, const char *path,
                             const struct param_list *sorted);

/* base64(HMAC(secret_key, string_to_sign)) with SHA-1 ("HmacSHA1") or SHA-256 ("HmacSHA256").
 * out needs 64 bytes. Returns 0, or ERR_INVALID_PARAMETER_VALUE for another method name. */
int sign_v1_signature(const char *signature_method, const char *secret_key,
                      const char *string_to_sign, char out[64], struct err *e);

#endif
