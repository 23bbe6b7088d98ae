/* The Cloud API pipeline: parse -> route -> authenticate -> limit -> authorise -> act -> envelope.
 */
#include "cloudapi/cloudapi.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "auth/auth.h"
#include "cloudapi/keycache.h"
#include "cloudapi/request.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "products/async_actions.h"
#include "products/product.h"

#define METRIC_CODES 64

/* process(): the action may block, and we are on an HTTP thread; ask to be called again. */
#define PROCESS_DEFER 1

struct cloudapi {
    struct cloudapi_config cfg;
    struct keycache *keys; /* TC3 signing keys by SecretKey, date and service */
    /* requests answered, by product (0 none, 1 cdb, 2 mongodb) and by -code (0 = success) */
    atomic_uint_fast64_t answered[3][METRIC_CODES];
};

struct cloudapi *cloudapi_new(const struct cloudapi_config *cfg)
{
    struct cloudapi *api = xcalloc(1, sizeof *api);
    api->cfg = *cfg;
    if (api->cfg.max_skew_s <= 0)
        api->cfg.max_skew_s = 300;
    api->keys = keycache_new();
    return api;
}

void cloudapi_free(struct cloudapi *api)
{
    if (!api)
        return;
    keycache_free(api->keys);
    free(api);
}

/* The label of the Host header's first dot-separated part, e.g. "cdb" of "cdb.example.net:9000". */
static const struct product *product_from_host(const char *host)
{
    if (!host)
        return NULL;
    char label[32];
    size_t n = strcspn(host, ".:");
    if (n == 0 || n >= sizeof label || host[n] != '.')
        return NULL;
    for (size_t i = 0; i < n; i++) /* host names are case-insensitive (RFC 4343) */
        label[i] = (char)tolower((unsigned char)host[i]);
    label[n] = '\0';
    return product_by_name(label);
}

/* Host label, then the TC3 credential scope's service, then Version (DESIGN.md 3). */
static int route(const struct api_request *r, const struct product **out, struct err *e)
{
    if (!r->action || !*r->action)
        return err_set(e, ERR_MISSING_PARAMETER, "The parameter `Action` is missing");
    if (!r->version || !*r->version)
        return err_set(e, ERR_MISSING_PARAMETER, "The parameter `Version` is missing");
    const struct product *p = product_from_host(r->host);
    if (!p && r->style == SIG_TC3)
        p = product_by_name(r->tc3.service);
    if (!p)
        p = product_by_version(r->version);
    if (!p)
        return err_set(e, ERR_NO_SUCH_VERSION,
                       "The API version `%.64s` does not exist: cdb answers 2017-03-20, mongodb "
                       "2019-07-25",
                       r->version);
    if (strcmp(p->version, r->version) != 0)
        return err_set(e, ERR_NO_SUCH_VERSION,
                       "The API version `%.64s` does not exist for %s; use %s", r->version, p->name,
                       p->version);
    *out = p;
    return 0;
}

static bool region_shape_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 40 || r[0] == '-' || r[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return false;
    return strchr(r, '-') != NULL;
}

static int check_region(const struct api_request *r, struct err *e)
{
    if (!r->region || !*r->region)
        return err_set(e, ERR_MISSING_PARAMETER,
                       "The parameter `Region` is missing; set the client's region, e.g. "
                       "ap-guangzhou");
    if (!region_shape_ok(r->region))
        return err_set(e, ERR_UNSUPPORTED_REGION,
                       "Region `%.64s` is not a region name such as ap-guangzhou", r->region);
    return 0;
}

static int authenticate(struct cloudapi *api, const struct api_request *r, struct account *who,
                        struct err *e)
{
    int rc = api_request_check_time(r, time_now_ms() / 1000, api->cfg.max_skew_s, e);
    if (rc)
        return rc;
    const char *sid = api_request_secret_id(r);
    if (!sid)
        return err_set(e, ERR_AUTH_INVALID_SECRETID, "The SecretId is missing from the request");
    if ((rc = auth_account_by_secret_id(api->cfg.store, sid, who, e)))
        return rc;
    if ((rc = api_request_verify(r, who->secret_key, api->keys, e)))
        return rc;
    if (r->token && *r->token)
        return err_set(e, ERR_AUTH_TOKEN_FAILURE,
                       "temporary credentials (a Token) are not supported here; use a permanent "
                       "SecretId/SecretKey");
    return 0;
}

/* A built-in action (a) or one defined by a flow template (fl). */
static int run_action(struct cloudapi *api, const struct api_request *r, const struct product *p,
                      const struct action *a, const struct flows *set, const struct flow *fl,
                      const struct account *who, json_t *resp, struct err *e)
{
    struct api_call call = {
        .product = p,
        .action = a ? a->name : r->action,
        .region = r->region,
        .params = r->params,
        .params_from_form = r->from_form,
        .who = who,
        .store = api->cfg.store,
        .flows = set,
        .node = api->cfg.node,
        .wake = api->cfg.wake,
        .wake_ctx = api->cfg.wake_ctx,
        .sim = api->cfg.sim,
    };
    if (fl)
        return product_run_flow(&call, fl, resp, e);
    int rc = product_check_params(&call, a, e);
    return rc ? rc : a->fn(&call, resp, e);
}

/* Everything between a parsed request and the action's answer; *pp gets the product once known.
 * A blocking action, or a flow action that checks its instance before the task exists
 * (product_flow_blocking), met on an HTTP thread (!on_worker) returns PROCESS_DEFER before
 * anything is checked or counted, so the call on the blocking-work thread is the only one that
 * counts. Nothing is decoded into JSON before the signature and the rate limit pass: until then a
 * stranger's request costs what its size costs, never more. */
static int process(struct cloudapi *api, struct api_request *r, bool on_worker, json_t *resp,
                   const struct product **pp, int *metric, struct err *e)
{
    const struct product *p = NULL;
    int rc = route(r, &p, e);
    if (rc)
        return rc;
    *pp = p;
    const struct action *a = product_action(p, r->action);
    /* Built-in actions (DescribeAsyncRequestInfo) never touch the template set; a template
     * action holds the set it found its template in until it has answered, across a reload. */
    struct flows *set = a ? NULL : flows_live_get(api->cfg.flows);
    const struct flow *fl = a ? NULL : flows_find(set, p->name, r->action);
    if (!a && !fl) /* an async action of the SDK's models that no template defines */
        a = async_action_route(p, r->action);
    /* Only an action the product knows gets a label of its own: a stranger's made-up names all
     * count as "other". */
    *metric = metrics_cloudapi_action(p->name, a ? a->name : fl ? r->action : NULL);
    struct account who = {0};
    if (!a && !fl) {
        rc = err_set(e, ERR_INVALID_ACTION, "The action `%.64s` does not exist in %s %s", r->action,
                     p->name, p->version);
        goto out;
    }
    if (!on_worker && ((a && a->blocking) || (fl && product_flow_blocking(p, fl)))) {
        rc = PROCESS_DEFER;
        goto out;
    }
    const char *action_name = a ? a->name : r->action;
    if ((rc = authenticate(api, r, &who, e)))
        goto out;
    if (!ratelimit_take(api->cfg.limits, who.owner_uin, p->name, action_name, time_mono_ns())) {
        rc = err_set(e, ERR_REQUEST_LIMIT,
                     "%s:%s allows %u requests per second per account; slow down and retry",
                     p->name, action_name, ratelimit_limit(api->cfg.limits, p->name, action_name));
        goto out;
    }
    if ((rc = check_region(r, e)))
        goto out;
    if (!auth_allows(&who, p->name, action_name)) {
        rc =
            err_set(e, p->err_permission_denied,
                    "sub-account %s is not authorised for %s:%s; grant it with asyncctl policy set "
                    "%s %s:%s",
                    who.uin, p->name, action_name, who.uin, p->name, action_name);
        goto out;
    }
    if ((rc = api_request_decode(r, e)))
        goto out;
    rc = run_action(api, r, p, a, set, fl, &who, resp, e);
out:
    account_clear(&who);
    flows_free(set);
    return rc;
}

static void count(struct cloudapi *api, const struct product *p, int code)
{
    int pi = p == &product_cdb ? 1 : p == &product_mongodb ? 2 : 0;
    int ci = -code;
    if (ci < 0 || ci >= METRIC_CODES)
        ci = -ERR_INTERNAL;
    atomic_fetch_add_explicit(&api->answered[pi][ci], 1, memory_order_relaxed);
}

/* The answer is written straight into a buffer that starts on the stack, not built as a jansson
 * tree and dumped: json_pack + json_dumps were 4.1% of asyncd's samples on the
 * DescribeAsyncRequestInfo benchmark (perf record -g, 32 connections), this is under 1%. Values
 * other than strings, numbers, booleans and null (DescribeTasks' arrays) still go through
 * json_dumps. */
struct reply {
    char *p;
    size_t len, cap;
    bool heap;
    char first[512];
};

static void reply_put(struct reply *r, const char *s, size_t n)
{
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap * 2;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *p = xmalloc(cap);
        memcpy(p, r->p, r->len);
        if (r->heap)
            free(r->p);
        r->p = p;
        r->cap = cap;
        r->heap = true;
    }
    memcpy(r->p + r->len, s, n);
    r->len += n;
}

static void reply_lit(struct reply *r, const char *s) { reply_put(r, s, strlen(s)); }

/* A JSON string, escaped as jansson escapes it (quote, backslash, control characters). */
static void reply_str(struct reply *r, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    reply_put(r, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        reply_put(r, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t en = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            en = 6;
        }
        reply_put(r, esc, en);
    }
    reply_put(r, s + run, n - run);
    reply_put(r, "\"", 1);
}

static void reply_value(struct reply *r, json_t *v)
{
    char num[24];
    switch (json_typeof(v)) {
    case JSON_STRING:
        reply_str(r, json_string_value(v), json_string_length(v));
        return;
    case JSON_NULL:
        reply_lit(r, "null");
        return;
    case JSON_TRUE:
        reply_lit(r, "true");
        return;
    case JSON_FALSE:
        reply_lit(r, "false");
        return;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        reply_lit(r, num);
        return;
    default:
        break;
    }
    char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    reply_lit(r, dump ? dump : "null");
    free(dump);
}

static void envelope(struct http_response *out, json_t *resp, int code, const struct err *e,
                     const char *request_id)
{
    struct reply r = {.p = NULL, .len = 0, .cap = 0, .heap = false};
    r.p = r.first;
    r.cap = sizeof r.first;
    reply_lit(&r, "{\"Response\":{");
    if (code) {
        reply_lit(&r, "\"Error\":{\"Code\":");
        const char *tc = err_tencent_code(code);
        reply_str(&r, tc, strlen(tc));
        reply_lit(&r, ",\"Message\":");
        reply_str(&r, e->msg, strlen(e->msg));
        reply_lit(&r, "},");
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(resp, key, v)
        {
            if (strcmp(key, "RequestId") == 0)
                continue; /* ours below, as json_object_set would have replaced it */
            reply_str(&r, key, strlen(key));
            reply_put(&r, ":", 1);
            reply_value(&r, v);
            reply_put(&r, ",", 1);
        }
    }
    reply_lit(&r, "\"RequestId\":");
    reply_str(&r, request_id, strlen(request_id));
    reply_lit(&r, "}}");
    out->status = 200;
    out->content_type = "application/json";
    out->body_len = r.len;
    if (r.heap) {
        r.p[r.len] = '\0';
        out->body = r.p;
    } else {
        out->body = xmalloc(r.len + 1);
        memcpy(out->body, r.p, r.len);
        out->body[r.len] = '\0';
    }
}

void cloudapi_handle(void *ctx, const struct http_request *req, struct http_response *out)
{
    struct cloudapi *api = ctx;
    char request_id[IDS_UUID_LEN + 1];
    ids_uuid(request_id);
    json_t *resp = json_object();
    const struct product *p = NULL;
    int metric = metrics_cloudapi_action(NULL, NULL); /* until the action is known */
    struct err e = {0};
    struct api_request r;
    int rc;
    memset(&r, 0, sizeof r);
    if (req->headers_too_large)
        rc = err_set(&e, ERR_REQUEST_SIZE_LIMIT, "%s; send fewer or smaller headers",
                     req->headers_reason ? req->headers_reason
                                         : "the request headers are too large");
    else if (req->body_too_large)
        rc = err_set(&e, ERR_REQUEST_SIZE_LIMIT,
                     "the request body is larger than the server's limit of %zu bytes "
                     "(--max-body); send a smaller request",
                     api->cfg.max_body);
    else if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
        rc = err_set(&e, ERR_UNSUPPORTED_PROTOCOL,
                     "HTTP method %.16s is not supported; use POST (or GET)", req->method);
    else if (!(rc = api_request_parse(req, &r, &e)))
        rc = process(api, &r, req->on_worker, resp, &p, &metric, &e);
    if (rc == PROCESS_DEFER) {
        out->defer = true;
        goto done;
    }
    if (rc && rc != ERR_REQUEST_LIMIT)
        log_debug("cloudapi %s %s: %s %s", r.action ? r.action : "-", request_id,
                  err_tencent_code(rc), e.msg);
    if (rc == ERR_INTERNAL)
        log_error("cloudapi %s: %s", request_id, e.msg);
    count(api, p, rc);
    metrics_cloudapi_request(metric, rc);
    envelope(out, resp, rc, &e, request_id);
done:
    json_decref(resp);
    api_request_free(&r);
}

char *cloudapi_metrics_text(struct cloudapi *api)
{
    static const char *const names[3] = {"", "cdb", "mongodb"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fputs("# HELP asyncd_requests_total Cloud API requests answered, by product and code.\n"
          "# TYPE asyncd_requests_total counter\n",
          f);
    for (int pi = 0; pi < 3; pi++)
        for (int ci = 0; ci < METRIC_CODES; ci++) {
            uint_fast64_t n = atomic_load_explicit(&api->answered[pi][ci], memory_order_relaxed);
            if (n)
                fprintf(f,
                        "asyncd_requests_total{api=\"cloudapi\",product=\"%s\",code=\"%s\"} "
                        "%llu\n",
                        names[pi], ci ? err_tencent_code(-ci) : "Success", (unsigned long long)n);
        }
    fclose(f);
    return buf;
}
