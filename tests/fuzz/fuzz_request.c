/* Fuzz target: one whole Cloud API request (method, query, headers, body) through
 * api_request_parse, the time check, api_request_verify with a fixed key and api_request_decode. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloudapi/keycache.h"
#include "cloudapi/request.h"
#include "fuzz_util.h"

/* The key of the SDK vectors (tests/unit/sign_vectors.h), so seeds made from them verify. */
#define FUZZ_SECRET_KEY "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
#define FUZZ_NOW_S      1795422600LL              /* the vectors' X-TC-Timestamp */
#define FUZZ_SKEW_S     (100LL * 365 * 24 * 3600) /* wide, but gmtime stays in 4-digit years */
#define MAX_HEADERS     64

struct headers {
    const char *name[MAX_HEADERS], *value[MAX_HEADERS];
    size_t n;
};

static const char *lookup(void *conn, const char *name)
{
    const struct headers *h = conn;
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    return NULL;
}

/* Cuts the line at *p (ending in '\n' or the end of the buffer), dropping a trailing '\r'. */
static char *next_line(char **p)
{
    char *line = *p, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r')
        line[n - 1] = '\0';
    return line;
}

/* Input framing, like HTTP/1.1: "METHOD PATH[?QUERY]\n", "Name: value\n" lines, an empty line,
 * then the body (any bytes, to the end). */
static void parse_input(char *buf, size_t size, struct http_request *req, struct headers *hs)
{
    char *p = buf;
    char *line = next_line(&p);
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
    while (*p) {
        line = next_line(&p);
        if (!*line)
            break;
        char *colon = strchr(line, ':');
        if (!colon || hs->n == MAX_HEADERS)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        hs->name[hs->n] = line;
        hs->value[hs->n++] = v;
    }
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
    struct headers hs = {0};
    struct http_request req = {.header_fn = lookup, .conn = &hs};
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
