/* The admin API's door: bearer token, route table with the scopes of each route, JSON bodies,
 * error answers, health, metrics. */
#include "admin/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "admin/admin_ready.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "ui/ui.h"

/* Who may call a route: the scopes of the tokens it accepts (DESIGN.md 7). A reader may only
 * look; an operator runs tasks and instances; accounts, their keys, policies and tokens are the
 * admin's. */
#define READERS (SCOPE_ADMIN | SCOPE_OPERATOR | SCOPE_READER)
#define RUNNERS (SCOPE_ADMIN | SCOPE_OPERATOR)

struct route {
    const char *method;
    const char *pattern; /* '/'-separated; '*' matches one segment */
    admin_fn fn;
    unsigned scopes; /* SCOPE_* bits of the tokens that may call it */
};

/* The remote-step calls (DESIGN.md 5): workers', and the admin's (to look into a stuck worker);
 * a worker token may call nothing else. */
#define WORKERS (SCOPE_ADMIN | SCOPE_WORKER)

static const struct route routes[] = {
    {"POST", "/v1/accounts", admin_account_create, SCOPE_ADMIN},
    {"GET", "/v1/accounts/*", admin_account_show, READERS},
    {"PATCH", "/v1/accounts/*", admin_account_patch, SCOPE_ADMIN},
    {"GET", "/v1/accounts/*/keys", admin_key_list, READERS},
    {"POST", "/v1/accounts/*/keys", admin_key_create, SCOPE_ADMIN},
    {"PATCH", "/v1/accounts/*/keys/*", admin_key_patch, SCOPE_ADMIN},
    {"DELETE", "/v1/accounts/*/keys/*", admin_key_delete, SCOPE_ADMIN},
    {"POST", "/v1/accounts/*/subaccounts", admin_subaccount_create, SCOPE_ADMIN},
    {"PUT", "/v1/subaccounts/*/policy", admin_policy_set, SCOPE_ADMIN},
    {"POST", "/v1/instances", admin_instance_create, RUNNERS},
    {"GET", "/v1/instances", admin_instance_list, READERS},
    {"GET", "/v1/instances/*", admin_instance_show, READERS},
    {"PATCH", "/v1/instances/*", admin_instance_patch, RUNNERS},
    {"POST", "/v1/tasks", admin_task_create, RUNNERS},
    {"POST", "/v1/tasks/batch", admin_task_create_batch, RUNNERS},
    {"GET", "/v1/tasks", admin_task_list, READERS},
    {"GET", "/v1/tasks/*", admin_task_show, READERS},
    {"POST", "/v1/tasks/*/transition", admin_task_transition, RUNNERS},
    {"POST", "/v1/tasks/*/advance", admin_sim_advance, RUNNERS},
    {"POST", "/v1/tasks/*/*", admin_task_verb, RUNNERS},
    {"PUT", "/v1/simulation/rules/*", admin_sim_rule_put, RUNNERS},
    {"GET", "/v1/simulation/rules", admin_sim_rule_list, READERS},
    {"DELETE", "/v1/simulation/rules/*", admin_sim_rule_delete, RUNNERS},
    {"POST", "/v1/simulation/reset", admin_sim_reset, RUNNERS},
    {"POST", "/v1/webhooks", admin_webhook_create, RUNNERS},
    {"GET", "/v1/webhooks", admin_webhook_list, READERS},
    {"GET", "/v1/webhooks/*", admin_webhook_show, READERS},
    {"DELETE", "/v1/webhooks/*", admin_webhook_delete, RUNNERS},
    {"GET", "/v1/webhooks/*/deliveries", admin_webhook_deliveries, READERS},
    {"POST", "/v1/tokens", admin_token_create, SCOPE_ADMIN},
    {"GET", "/v1/tokens", admin_token_list, SCOPE_ADMIN},
    {"DELETE", "/v1/tokens/*", admin_token_revoke, SCOPE_ADMIN},
    {"POST", "/v1/workers/claim", admin_worker_claim, WORKERS},
    {"POST", "/v1/workers/heartbeat", admin_worker_heartbeat, WORKERS},
    {"POST", "/v1/workers/complete", admin_worker_complete, WORKERS},
    {"POST", "/v1/workers/fail", admin_worker_fail, WORKERS},
    {"GET", "/v1/whoami", admin_whoami, READERS | SCOPE_WORKER},
    {"GET", "/v1/overview", admin_overview, READERS},
};

struct admin *admin_new(const struct admin_config *cfg)
{
    struct admin *a = xcalloc(1, sizeof *a);
    a->cfg = *cfg;
    return a;
}

void admin_free(struct admin *a) { free(a); }

const char *admin_query(const struct admin_req *r, const char *key)
{
    const struct param *p = params_find(&r->query, key);
    return p ? p->value : NULL;
}

int admin_body_string(const struct admin_req *r, const char *key, bool required, const char **out,
                      struct err *e)
{
    return admin_obj_string(r->body, key, required, out, e);
}

int admin_obj_string(json_t *obj, const char *key, bool required, const char **out, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return err_set(e, ERR_BAD_REQUEST, "%s: required", key);
        return 0;
    }
    if (!json_is_string(v))
        return err_set(e, ERR_BAD_REQUEST, "%s: expected a string", key);
    *out = json_string_value(v);
    if (required && !**out)
        return err_set(e, ERR_BAD_REQUEST, "%s: must not be empty", key);
    return 0;
}

/* Matches path against pattern, capturing '*' segments (copied into caps, at most 3 x 128). */
static bool path_matches(const char *pattern, const char *path, char caps[3][128])
{
    int ncap = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/')
            return false;
        pattern++, path++;
        size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/");
        if (pl == 1 && *pattern == '*') {
            if (sl == 0 || sl >= 128 || ncap == 3)
                return false;
            memcpy(caps[ncap], path, sl);
            caps[ncap++][sl] = '\0';
        } else if (pl != sl || strncmp(pattern, path, pl) != 0) {
            return false;
        }
        pattern += pl, path += sl;
    }
    return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

static const struct route *find_route(const char *method, const char *path, char caps[3][128],
                                      bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (path_matches(routes[i].pattern, path, caps)) {
            *path_known = true;
            if (strcmp(routes[i].method, method) == 0)
                return &routes[i];
        }
    return NULL;
}

#define ADMIN_MAX_JSON_DEPTH 32

static int parse_body(struct admin_req *r, struct err *e)
{
    const struct http_request *h = r->http;
    if (h->headers_too_large)
        return err_set(e, ERR_REQUEST_SIZE_LIMIT, "%s", h->headers_reason);
    if (h->body_too_large)
        return err_set(e, ERR_REQUEST_SIZE_LIMIT, "the request body is too large");
    if (h->body_len == 0) {
        r->body = json_object();
        return 0;
    }
    /* Operators' bodies nest deeper than a Cloud API request (steps, do, mysql statements), but
     * never this deep; the bound keeps every recursive walk of the body shallow. */
    int rc = params_json_depth_check(h->body, h->body_len, ADMIN_MAX_JSON_DEPTH, e);
    if (rc)
        return rc;
    json_error_t je;
    r->body = json_loadb(h->body, h->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!r->body)
        return err_set(e, ERR_BAD_REQUEST, "the body is not valid JSON (line %d): %s", je.line,
                       je.text);
    if (!json_is_object(r->body))
        return err_set(e, ERR_BAD_REQUEST, "the body must be a JSON object");
    return 0;
}

static void answer(struct http_response *out, int status, json_t *body)
{
    out->status = status;
    out->content_type = "application/json";
    out->body = json_dumps(body, JSON_COMPACT);
    out->body_len = strlen(out->body);
}

static void answer_error(struct http_response *out, int code, const struct err *e)
{
    json_t *j = json_pack("{s:s, s:s}", "error", err_admin_name(code), "message", e->msg);
    answer(out, err_http_status(code), j);
    json_decref(j);
}

/* Prometheus text (docs/metrics.md): the Cloud API's answers by product and code, this node's
 * counters and histograms, and the store-wide gauges, labelled scope="cluster". */
static char *metrics_text(struct admin *a)
{
    char *api = a->cfg.api ? cloudapi_metrics_text(a->cfg.api) : xstrdup("");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fputs(api, f);
    free(api);
    metrics_render(f, a->cfg.node);
    json_t *counts = NULL;
    struct err e;
    if (store_task_counts(a->cfg.store, &counts, &e) == 0) {
        metrics_render_store(f, counts, time_now_ms());
        json_decref(counts);
    }
    fprintf(f, "# HELP asyncd_up 1 while this node serves.\n# TYPE asyncd_up gauge\nasyncd_up 1\n");
    fclose(f);
    return buf;
}

/* Readiness, for load balancers: the store answers a cheap query (one row count) now. /healthz
 * is liveness and stays 200 while the store is down, so a supervisor does not restart a node
 * that is only waiting for its database. */
/* Long enough for a store under load, short enough for a load balancer's check (often 5 s). */
#define READY_TIMEOUT_MS 2000

static void answer_ready(struct admin *a, struct http_response *out)
{
    struct err e = {0};
    json_t *j = admin_ready_probe(a->cfg.store, READY_TIMEOUT_MS, &e) == 0
                    ? json_pack("{s:s}", "status", "ready")
                    : json_pack("{s:s,s:s,s:s}", "status", "unavailable", "error",
                                "store_unavailable", "message", e.msg);
    answer(out, json_string_value(json_object_get(j, "error")) ? 503 : 200, j);
    json_decref(j);
}

static bool serve_open_paths(struct admin *a, const struct http_request *req,
                             struct http_response *out)
{
    if (strcmp(req->method, "GET") != 0)
        return false;
    if (strcmp(req->path, "/healthz") == 0) {
        json_t *j = json_pack("{s:s}", "status", "ok");
        answer(out, 200, j);
        json_decref(j);
        return true;
    }
    if (strcmp(req->path, "/readyz") == 0) {
        answer_ready(a, out);
        return true;
    }
    if (strcmp(req->path, "/metrics") == 0) {
        out->status = 200;
        out->content_type = "text/plain; version=0.0.4";
        out->body = metrics_text(a);
        out->body_len = strlen(out->body);
        return true;
    }
    return false;
}

static int dispatch(struct admin *a, const struct http_request *req, const struct token *who,
                    json_t **result, int *status, struct err *e)
{
    char caps[3][128];
    bool known;
    const struct route *rt = find_route(req->method, req->path, caps, &known);
    if (!rt)
        return known ? err_set(e, ERR_UNSUPPORTED_PROTOCOL, "%s is not allowed on %s", req->method,
                               req->path)
                     : err_set(e, ERR_NOT_FOUND, "no such path: %s", req->path);
    if (!(admin_scope_bit(who->scope) & rt->scopes)) {
        char allowed[64];
        admin_scope_names(rt->scopes, allowed, sizeof allowed);
        return err_set(e, ERR_UNAUTHORIZED_OPERATION,
                       "token %s has scope %s; %s %s needs a token of scope %s", who->id,
                       who->scope, req->method, req->path, allowed);
    }
    struct admin_req r = {.http = req, .arg = {caps[0], caps[1], caps[2]}, .who = who};
    int rc = params_parse_form(req->query, strlen(req->query), &r.query, e);
    if (!rc)
        rc = parse_body(&r, e);
    if (!rc)
        rc = rt->fn(a, &r, result, status, e);
    json_decref(r.body);
    params_free(&r.query);
    return rc;
}

void admin_handle(void *ctx, const struct http_request *req, struct http_response *out)
{
    struct admin *a = ctx;
    if (serve_open_paths(a, req, out) || ui_serve(req, out))
        return;
    struct err e = {0};
    struct token who;
    int rc = admin_authenticate(a, req, &who, &e);
    if (rc) {
        if (rc == ERR_INTERNAL)
            log_error("admin %s %s: %s", req->method, req->path, e.msg);
        answer_error(out, rc, &e);
        return;
    }
    json_t *result = NULL;
    int status = 200;
    rc = dispatch(a, req, &who, &result, &status, &e);
    if (rc) {
        if (rc == ERR_INTERNAL)
            log_error("admin %s %s: %s", req->method, req->path, e.msg);
        answer_error(out, rc, &e);
    } else {
        if (!result)
            result = json_object();
        answer(out, status, result);
    }
    json_decref(result);
}
