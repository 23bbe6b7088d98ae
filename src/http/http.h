/* The HTTP listeners (libmicrohttpd): request bodies gathered up to a size limit, the raw query
 * string kept for signatures, idle-connection timeouts, optional TLS, graceful stop. */
#ifndef ASYNCD_HTTP_H
#define ASYNCD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"

struct http_request {
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* raw path, before '?' */
    const char *query;  /* raw query string after '?', "" when none */
    const char *body;   /* NUL-terminated copy of the body ("" when none) */
    size_t body_len;
    bool body_too_large; /* the body passed the limit; body holds only its start */
    /* More than HTTP_MAX_HEADERS headers or HTTP_MAX_HEADER_BYTES of them: the handler should
     * refuse the request (the Cloud API answers RequestSizeLimitExceeded); headers_reason is a
     * static sentence saying which limit was passed, NULL otherwise. */
    bool headers_too_large;
    const char *headers_reason;
    bool on_worker; /* the handler runs on a blocking-work thread (see http_response.defer) */
    void *conn;     /* for http_header */
    /* When set, http_header asks this instead of the connection (fuzz targets, unit tests). */
    const char *(*header_fn)(void *conn, const char *name);
};

/* The value of a request header (case-insensitive name), or NULL. Valid during the request. */
const char *http_header(const struct http_request *req, const char *name);

struct http_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* heap; the server frees it after sending */
    size_t body_len;
    /* Extra headers: static name, value, name, value, ..., NULL; may be NULL. */
    const char *const *headers;
    /* Set by a handler that found the request needs work that may block for seconds: the rest
     * of resp is ignored, the connection is suspended, and the handler is called again with
     * req->on_worker set, on one of the server's blocking-work threads, so the threads that
     * answer every other request never wait on it. */
    bool defer;
};

/* Fills resp for req. Runs on one of the server's threads, concurrently with others. */
typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

/* Header limits: past these a request reaches the handler with headers_too_large set. Headers
 * that do not fit in HTTP_CONN_MEMORY (about 32 KiB of them) are refused by MHD itself (431). */
#define HTTP_MAX_HEADERS      100
#define HTTP_MAX_HEADER_BYTES (16 * 1024)

struct http_config {
    const char *listen; /* "HOST:PORT", "[v6]:PORT"; port 0 picks a free one */
    unsigned threads;
    size_t max_body;            /* bytes; larger bodies arrive with body_too_large set */
    unsigned idle_timeout_s;    /* a connection with no traffic for this long is closed */
    unsigned request_timeout_s; /* a request's headers and body must arrive within this (0: 30) */
    unsigned max_conns;         /* connections open at once (0: 1024) */
    unsigned max_conns_per_client; /* from one IP address (0: unlimited) */
    bool thread_per_connection;    /* handlers may block long (admin long-poll); threads unused */
    unsigned blocking_threads;     /* threads for deferred requests; 0 runs them in line */
    const char *tls_cert;          /* PEM files, both or neither */
    const char *tls_key;
};

struct http_server;

/* Binds and starts serving. On failure returns ERR_INVALID_PARAMETER_VALUE (bad address),
 * or ERR_INTERNAL (cannot bind, e.g. the port is in use; TLS files unreadable) with the reason
 * in e. A port is never shared: no SO_REUSEPORT. */
int http_server_start(const struct http_config *cfg, http_handler_fn fn, void *ctx,
                      struct http_server **out, struct err *e);
/* The port actually bound (useful with port 0). */
uint16_t http_server_port(const struct http_server *s);
/* Stops accepting new connections; requests in flight go on. */
void http_server_quiesce(struct http_server *s);
/* Finishes requests in flight, closes everything and frees s. */
void http_server_stop(struct http_server *s);

/* Splits "HOST:PORT" / "[HOST]:PORT"; host gets at most hostlen-1 chars. 0 or
 * ERR_INVALID_PARAMETER_VALUE. */
int http_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, struct err *e);

#endif
