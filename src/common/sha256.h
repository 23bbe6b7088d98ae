/* SHA-256 and HMAC-SHA256 over OpenSSL libcrypto, for the request signatures, token hashes,
 * idempotency body hashes and webhook signatures alike. */
#ifndef ASYNCD_SHA256_H
#define ASYNCD_SHA256_H

#include <stddef.h>

/* out = SHA-256(a || b); b may be NULL when blen is 0. */
void sha256_of(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32]);

/* out = lower-case hex SHA-256 of data[0..len), NUL-terminated. */
void sha256_hex(const void *data, size_t len, char out[65]);

/* out = HMAC-SHA256(key, msg) (RFC 2104); msg is NUL-terminated. */
void hmac_sha256(const void *key, size_t keylen, const char *msg, unsigned char out[32]);

/* out = the lower-case hex of in[0..n), NUL-terminated (out holds 2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

/* 1 when a and b are equal, in time that depends on their lengths only (signatures, token
 * hashes: no early exit an attacker could time). */
int ct_streq(const char *a, const char *b);

#endif
