/* Fuzz target: one whole Cloud API request (method, query, headers, body) through
 * api_request_parse, the time check, api_request_verify with a fixed key and api_request_decode. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudapi/keycache.h"
#include "cloudapi/request.h"
#include "fuzz_util.h"

/* The key of the SDK vectors (tests/unit/sign_vectors.h), so seeds made from them verify. */
#define FUZZ_SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define FUZZ_NOW_S      1795422600LL              /* the vectors' X-TC-Timestamp */
#define FUZZ_SKEW_S     (100LL * 365 * 24 * 3600) /* wide, but gmtime stays in 4-digit years */

/* Input framing, like HTTP/1.1: "METHOD PATH[?QUERY]\n", "Name: value\n" lines, an empty line,
 * then the body (any bytes, to the end). */
static void parse_input(char *buf, size_t size, struct http_request *req, struct fuzz_headers *hs)
{
    char *p = buf;
    char *line = fuzz_next_line(&p, FUZZ_AS_SERVED);
    char *sp = strchr(line, ' ');
    req->method = line;
    req->path = "/";
    req->query = "";
    if (sp) {
        *sp = '\0';
        char *path = sp + 1, *q = strchr(path, '?');
        if (q) {
            *q = '\0';
            req->query = q + 1;
        }
        req->path = path;
    }
    fuzz_read_headers(&p, hs, FUZZ_MAX_HEADERS, FUZZ_AS_SERVED);
    req->body = p;
    req->body_len = size - (size_t)(p - buf);
}

static struct keycache *kc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    if (!kc)
        kc = keycache_new(); /* kept for the whole run, like the daemon's */
    char *buf = fuzz_strndup(data, size);
    struct fuzz_headers hs = {0};
    struct http_request req = {.header_fn = fuzz_header, .conn = &hs};
    parse_input(buf, size, &req, &hs);

    struct api_request r;
    struct err e;
    if (api_request_parse(&req, &r, &e) == 0) {
        (void)api_request_secret_id(&r);
        /* the pipeline's order: time, then the signature; the key comes from the cache on every
         * other call, so both paths run */
        if (api_request_check_time(&r, FUZZ_NOW_S, FUZZ_SKEW_S, &e) == 0)
            (void)api_request_verify(&r, FUZZ_SECRET_KEY, (size & 1) ? kc : NULL, &e);
        /* decoded whatever the signature said: the decoder must hold up on its own */
        if (api_request_decode(&r, &e) == 0 && !json_is_object(r.params))
            abort();
    }
    api_request_free(&r);
    free(buf);
    return 0;
}
