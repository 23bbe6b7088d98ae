/* Serves the web console's embedded assets with headers that keep the page to its own origin. */
#include "ui/ui.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define UI_PREFIX "/ui"

/* The page loads only its own script and style and talks only to this listener; it may not be
 * framed, and browsers must not guess types. no-cache: a new binary's assets are seen at once. */
#define UI_CSP                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"
#define UI_SECURITY_HEADERS                                                                        \
    "Cache-Control", "no-cache", "Content-Security-Policy", UI_CSP, "X-Content-Type-Options",      \
        "nosniff", "X-Frame-Options", "DENY", "Referrer-Policy", "no-referrer"

static const char *const asset_headers[] = {UI_SECURITY_HEADERS, NULL};
static const char *const redirect_headers[] = {"Location", UI_PREFIX "/", UI_SECURITY_HEADERS,
                                               NULL};
static const char *const error_headers[] = {"Cache-Control", "no-store", "X-Content-Type-Options",
                                            "nosniff", NULL};

static const char *content_type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "application/octet-stream";
}

static const struct ui_asset *find_asset(const char *name)
{
    for (const struct ui_asset *a = ui_assets; a->name; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

static void answer_bytes(struct http_response *out, int status, const char *type,
                         const char *const *headers, const void *data, size_t len)
{
    out->status = status;
    out->content_type = type;
    out->headers = headers;
    out->body = xmalloc(len + 1);
    memcpy(out->body, data, len);
    out->body[len] = '\0';
    out->body_len = len;
}

static void answer_error(struct http_response *out, int status, const char *json)
{
    answer_bytes(out, status, "application/json", error_headers, json, strlen(json));
}

bool ui_serve(const struct http_request *req, struct http_response *out)
{
    const char *path = req->path;
    if (strncmp(path, UI_PREFIX, strlen(UI_PREFIX)) != 0)
        return false;
    const char *rest = path + strlen(UI_PREFIX);
    if (*rest != '\0' && *rest != '/')
        return false; /* /uix is not ours */
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        answer_error(out, 405,
                     "{\"error\":\"unsupported_protocol\",\"message\":\"the console's files "
                     "answer GET only\"}");
        return true;
    }
    if (*rest == '\0') { /* /ui: relative asset paths need the trailing slash */
        static const char body[] = "see /ui/\n";
        answer_bytes(out, 301, "text/plain; charset=utf-8", redirect_headers, body,
                     sizeof body - 1);
        return true;
    }
    const char *name = rest[1] ? rest + 1 : "index.html";
    const struct ui_asset *a = strchr(name, '/') ? NULL : find_asset(name);
    if (!a) {
        answer_error(out, 404,
                     "{\"error\":\"not_found\",\"message\":\"the console has no such file\"}");
        return true;
    }
    answer_bytes(out, 200, content_type_of(a->name), asset_headers, a->data, a->len);
    return true;
}
