/* ctl_client: asyncctl's admin API client over libcurl, and its buffer/allocation helpers. */
#include "ctl_client.h"
#include "common/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ctl_buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ctl_buf_addf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        ctl_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Reads AdminToken from DIR/credentials.json; NULL (with *why set) when it cannot. */
static char *token_from_data(const char *dir, char *why, size_t whylen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/credentials.json", dir);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) {
        if (snprintf(why, whylen, "%s: %s", path, err.text) < 0)
            why[0] = '\0';
        return NULL;
    }
    const char *t = json_string_value(json_object_get(j, "AdminToken"));
    char *tok = t ? xstrdup(t) : NULL;
    if (!tok)
        snprintf(why, whylen, "%s: no AdminToken string", path);
    json_decref(j);
    return tok;
}

/* Resolves the admin URL and token once, after every option is parsed; 0 or an exit code. */
int ctl_prepare(struct ctl *c)
{
    if (c->ready)
        return 0;
    const char *env = getenv("ASYNCD_ADMIN");
    const char *url = c->admin_opt ? c->admin_opt : (env && *env ? env : DEFAULT_ADMIN);
    struct buf b = {0};
    if (!strstr(url, "://"))
        ctl_buf_add(&b, "http://", 7);
    ctl_buf_add(&b, url, strlen(url));
    while (b.len > 0 && b.p[b.len - 1] == '/')
        b.p[--b.len] = '\0';
    c->admin = b.p;

    char why[4200];
    const char *envtok = getenv("ASYNCD_TOKEN");
    if (!c->token && c->data) {
        c->token = c->token_owned = token_from_data(c->data, why, sizeof why);
        if (!c->token) {
            fprintf(stderr, "asyncctl: cannot read the admin token: %s\n", why);
            return EXIT_USAGE;
        }
    }
    if (!c->token && envtok && *envtok)
        c->token = envtok;
    if (!c->token)
        c->token = c->token_owned = token_from_data(DEFAULT_DATA, why, sizeof why);
    c->curl = curl_easy_init();
    if (!c->curl) {
        fputs("asyncctl: curl_easy_init failed\n", stderr);
        return EXIT_UNREACHABLE;
    }
    c->ready = true;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    ctl_buf_add(arg, data, size * n);
    return size * n;
}

/* Sends one request; 0 with *r filled (caller frees r->body.p), or EXIT_UNREACHABLE. */
int ctl_request(struct ctl *c, const char *method, const char *path, const char *body,
                struct reply *r)
{
    char url[8192], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", c->admin, path);
    struct curl_slist *h = NULL;
    char auth[2048];
    if (c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth);
    }
    if (body)
        h = curl_slist_append(h, "Content-Type: application/json");
    char idem[320];
    if (c->idem_key) {
        snprintf(idem, sizeof idem, "Idempotency-Key: %s", c->idem_key);
        h = curl_slist_append(h, idem);
    }
    h = curl_slist_append(h, "Expect:");
    CURL *k = c->curl;
    curl_easy_reset(k);
    curl_easy_setopt(k, CURLOPT_URL, url);
    curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(k, CURLOPT_USERAGENT, "asyncctl/1");
    curl_easy_setopt(k, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(k, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
    /* A proxy from the environment cannot reach our loopback; other hosts follow the env. */
    curl_easy_setopt(k, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(k, CURLOPT_WRITEDATA, &r->body);
    if (body) {
        curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    memset(r, 0, sizeof *r);
    CURLcode rc = curl_easy_perform(k);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "asyncctl: cannot reach asyncd admin API at %s: %s\n", c->admin,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
        free(r->body.p);
        return EXIT_UNREACHABLE;
    }
    curl_easy_getinfo(k, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body.p)
        ctl_buf_add(&r->body, "", 0);
    return 0;
}

/* Prints "asyncctl: <status> <error>: <message>" for an error answer; returns EXIT_API. */
int ctl_api_error(struct ctl *c, const struct reply *r)
{
    json_t *j = json_loads(r->body.p, 0, NULL);
    const char *kind = json_string_value(json_object_get(j, "error"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (!msg) {
        size_t n = strcspn(r->body.p, "\r\n");
        fprintf(stderr, "asyncctl: %ld %s: %.*s\n", r->status, kind ? kind : "http_error",
                (int)(n > 200 ? 200 : n), r->body.p);
    } else {
        fprintf(stderr, "asyncctl: %ld %s: %s\n", r->status, kind ? kind : "http_error", msg);
    }
    if (r->status == 401 && !c->token)
        fputs("asyncctl: no admin token: pass --token, set ASYNCD_TOKEN or give --data DIR\n",
              stderr);
    json_decref(j);
    return EXIT_API;
}

/*
 * One JSON call: body (may be NULL) is sent as JSON; on success *out gets the parsed answer
 * (caller json_decref()s it) and, with --json, the raw answer is printed. Returns 0 or an exit
 * code.
 */
int ctl_call(struct ctl *c, const char *method, const char *path, json_t *body, json_t **out)
{
    int rc = ctl_prepare(c);
    if (rc)
        return rc;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct reply r;
    rc = ctl_request(c, method, path, text, &r);
    free(text);
    if (rc)
        return rc;
    if (r.status >= 400 || r.status < 200) {
        rc = ctl_api_error(c, &r);
        free(r.body.p);
        return rc;
    }
    json_error_t err;
    *out = json_loads(r.body.p, 0, &err);
    if (!*out) {
        fprintf(stderr, "asyncctl: %ld bad_answer: the answer is not JSON (%s)\n", r.status,
                err.text);
        free(r.body.p);
        return EXIT_API;
    }
    if (c->json)
        printf("%s%s", r.body.p, r.body.len && r.body.p[r.body.len - 1] == '\n' ? "" : "\n");
    free(r.body.p);
    return 0;
}

/* Appends a URL-escaped path segment or query value. */
void ctl_add_escaped(struct ctl *c, struct buf *b, const char *s)
{
    char *e = curl_easy_escape(c->curl, s, 0);
    ctl_buf_add(b, e, strlen(e));
    curl_free(e);
}

void ctl_add_query(struct ctl *c, struct buf *b, const char *key, const char *val)
{
    if (!val)
        return;
    ctl_buf_addf(b, "%c%s=", strchr(b->p, '?') ? '&' : '?', key);
    ctl_add_escaped(c, b, val);
}

/* Builds "prefix/escaped(id)suffix" (caller frees); needs ctl_prepare() done. */
char *ctl_path_with_id(struct ctl *c, const char *prefix, const char *id, const char *suffix)
{
    struct buf b = {0};
    ctl_buf_add(&b, prefix, strlen(prefix));
    ctl_add_escaped(c, &b, id);
    ctl_buf_add(&b, suffix, strlen(suffix));
    return b.p;
}

void ctl_close(struct ctl *c)
{
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->admin);
    free(c->token_owned);
}
