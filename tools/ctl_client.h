/* ctl_client: asyncctl's connection to the admin API (URL and token resolution, JSON calls)
 * and the small growing buffer the CLI shares. Out of memory aborts (common/xalloc.h). */
#ifndef ASYNCD_CTL_CLIENT_H
#define ASYNCD_CTL_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

/* Exit codes, relied on by scripts (asyncctl --help, tests/it/asyncctl.test.mjs). */
enum { EXIT_OK = 0, EXIT_API = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

#define DEFAULT_ADMIN "http://127.0.0.1:9001"
#define DEFAULT_DATA  "./var"

struct ctl {
    const char *admin_opt; /* --admin as given, or NULL */
    const char *token;     /* --token, or resolved later */
    const char *data;      /* --data, or NULL for the default */
    bool json;             /* --json: print the raw answer */
    bool ready;            /* admin/token resolved, curl handle made */
    char *admin;           /* base URL, no trailing '/', owned */
    char *token_owned;     /* token read from credentials.json, owned */
    const char *idem_key;  /* sent as Idempotency-Key with every request while set, or NULL */
    CURL *curl;
};

struct buf {
    char *p;
    size_t len, cap;
};

struct reply {
    long status;
    struct buf body;
};

/* Appends to a growing NUL-terminated buffer; b->p is the caller's to free. ctl_buf_addf
 * truncates one addition at 1 KiB. */
void ctl_buf_add(struct buf *b, const char *s, size_t n);
void ctl_buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resolves the admin URL and token once, after every option is parsed; 0 or an exit code
 * (a message is printed). */
int ctl_prepare(struct ctl *c);

/* Frees what ctl_prepare made. */
void ctl_close(struct ctl *c);

/* Sends one request (body may be NULL); 0 with *r filled (caller frees r->body.p), or
 * EXIT_UNREACHABLE after printing why. Needs ctl_prepare() done. */
int ctl_request(struct ctl *c, const char *method, const char *path, const char *body,
                struct reply *r);

/* Prints "asyncctl: <status> <error>: <message>" for an error answer; returns EXIT_API. */
int ctl_api_error(struct ctl *c, const struct reply *r);

/* One JSON call: body (may be NULL) is sent as JSON; on success *out gets the parsed answer
 * (caller json_decref()s it) and, with --json, the raw answer is printed. 0 or an exit code. */
int ctl_call(struct ctl *c, const char *method, const char *path, json_t *body, json_t **out);

/* URL-escape helpers; they need ctl_prepare() done. ctl_add_query skips a NULL value. */
void ctl_add_escaped(struct ctl *c, struct buf *b, const char *s);
void ctl_add_query(struct ctl *c, struct buf *b, const char *key, const char *val);

/* "prefix/escaped(id)suffix"; the caller frees it. */
char *ctl_path_with_id(struct ctl *c, const char *prefix, const char *id, const char *suffix);

#endif
