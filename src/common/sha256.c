/* SHA-256 and HMAC-SHA256 over OpenSSL libcrypto (see sha256.h). */
#include "common/sha256.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 through one fetched EVP_MD and one digest context per thread. OpenSSL 3's one-shot
 * EVP_Digest and HMAC look the algorithm up again on every call: that was 15.7k of the 48k
 * instructions a TC3 check cost per request (callgrind over bench/run.sh's Describe). */
static EVP_MD *sha256_md;
static pthread_key_t ctx_key;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void free_ctx(void *ctx) { EVP_MD_CTX_free(ctx); }

static void sha256_init_once(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256_md || pthread_key_create(&ctx_key, free_ctx) != 0)
        abort();
}

static EVP_MD_CTX *thread_ctx(void)
{
    pthread_once(&sha256_once, sha256_init_once);
    EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
    if (!ctx) {
        if (!(ctx = EVP_MD_CTX_new()) || pthread_setspecific(ctx_key, ctx) != 0)
            abort(); /* out of memory */
    }
    return ctx;
}

void sha256_of(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
    EVP_MD_CTX *ctx = thread_ctx();
    unsigned int n = 0;
    if (!EVP_DigestInit_ex(ctx, sha256_md, NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
        (blen && !EVP_DigestUpdate(ctx, b, blen)) || !EVP_DigestFinal_ex(ctx, out, &n))
        abort(); /* only fails on allocation failure inside OpenSSL */
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    sha256_of(data, len, NULL, 0, md);
    hex_encode(md, sizeof md, out);
}

/* HMAC-SHA256 (RFC 2104) from two digests on the thread's context, for the same reason. */
void hmac_sha256(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned char k[64] = {0}, pad[64], inner[32];
    if (keylen > sizeof k)
        sha256_of(key, keylen, NULL, 0, k);
    else
        memcpy(k, key, keylen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    sha256_of(pad, sizeof pad, msg, strlen(msg), inner);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_of(pad, sizeof pad, inner, sizeof inner, out);
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
}

int ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    return CRYPTO_memcmp(a, b, la) == 0;
}
