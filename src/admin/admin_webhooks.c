/* Webhook subscriptions and their deliveries (DESIGN.md 7, docs/webhooks.md): POST/GET/DELETE
 * /v1/webhooks, GET /v1/webhooks/{id}, GET /v1/webhooks/{id}/deliveries. The secret is taken
 * once and never shown back ("***"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_int.h"
#include "common/ids.h"
#include "common/timefmt.h"
#include "products/product.h"

/* An absolute http(s) URL with a host, of printable ASCII and no spaces (libcurl would take
 * other schemes: file://, gopher://, ...). */
static int check_url(const char *url, struct err *e)
{
    size_t skip = strncasecmp(url, "http://", 7) == 0    ? 7
                  : strncasecmp(url, "https://", 8) == 0 ? 8
                                                         : 0;
    if (!skip)
        return err_set(e, ERR_BAD_REQUEST, "url: expected an http:// or https:// URL");
    if (strlen(url) >= WEBHOOK_URL_MAX)
        return err_set(e, ERR_BAD_REQUEST, "url: at most %d bytes", WEBHOOK_URL_MAX - 1);
    if (!url[skip] || url[skip] == '/')
        return err_set(e, ERR_BAD_REQUEST, "url: names no host");
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return err_set(e, ERR_BAD_REQUEST,
                           "url: contains a space or a non-ASCII byte (percent-encode it)");
    return 0;
}

/* "events": ["final"] (default) or ["transition"] (every state change, the final one too). */
static int parse_events(const struct admin_req *r, char *out, size_t cap, struct err *e)
{
    json_t *v = json_object_get(r->body, "events");
    snprintf(out, cap, "final");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return err_set(e, ERR_BAD_REQUEST, "events: expected [\"final\"] or [\"transition\"]");
    size_t i;
    json_t *w;
    json_array_foreach(v, i, w)
    {
        const char *s = json_string_value(w);
        if (!s || (strcmp(s, "final") != 0 && strcmp(s, "transition") != 0))
            return err_set(e, ERR_BAD_REQUEST, "events[%zu]: expected \"final\" or \"transition\"",
                           i);
        if (strcmp(s, "transition") == 0)
            snprintf(out, cap, "transition"); /* covers the final ones too */
    }
    return 0;
}

static int check_uin(const char *uin, struct err *e)
{
    size_t n = strlen(uin);
    if (n == 0 || n >= 24 || strspn(uin, "0123456789") != n)
        return err_set(e, ERR_BAD_REQUEST, "uin: expected a decimal account Uin");
    return 0;
}

static int webhook_from_body(const struct admin_req *r, struct webhook *w, struct err *e)
{
    const char *url, *secret, *product, *uin;
    int rc = admin_body_string(r, "url", true, &url, e);
    if (!rc)
        rc = admin_body_string(r, "secret", true, &secret, e);
    if (!rc)
        rc = admin_body_string(r, "product", false, &product, e);
    if (!rc)
        rc = admin_body_string(r, "uin", false, &uin, e);
    if (!rc)
        rc = check_url(url, e);
    if (!rc && strlen(secret) >= WEBHOOK_SECRET_MAX)
        rc = err_set(e, ERR_BAD_REQUEST, "secret: at most %d bytes", WEBHOOK_SECRET_MAX - 1);
    if (!rc && product && *product && !product_by_name(product))
        rc =
            err_set(e, ERR_BAD_REQUEST, "product: expected cdb or mongodb, got \"%.32s\"", product);
    if (!rc && uin && *uin)
        rc = check_uin(uin, e);
    if (!rc)
        rc = parse_events(r, w->events, sizeof w->events, e);
    if (rc)
        return rc;
    snprintf(w->url, sizeof w->url, "%s", url);
    snprintf(w->secret, sizeof w->secret, "%s", secret);
    snprintf(w->product, sizeof w->product, "%s", product ? product : "");
    snprintf(w->uin, sizeof w->uin, "%s", uin ? uin : "");
    return 0;
}

static void set_iso(json_t *o, const char *ms_key, const char *key)
{
    json_int_t ms = json_integer_value(json_object_get(o, ms_key));
    char iso[25];
    if (ms > 0)
        time_fmt_iso_utc(ms, iso);
    json_object_set_new(o, key, ms > 0 ? json_string(iso) : json_null());
}

/* What an answer shows of a subscription: never its secret. */
static void shown(json_t *hook)
{
    json_object_set_new(hook, "secret", json_string("***"));
    set_iso(hook, "created_ms", "created");
}

int admin_webhook_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e)
{
    struct webhook w = {.created_ms = time_now_ms()};
    int rc = webhook_from_body(r, &w, e);
    if (!rc) {
        memcpy(w.id, "wh-", 3);
        ids_hex(w.id + 3, 8);
        rc = store_webhook_create(a->cfg.store, &w, e);
    }
    memset(w.secret, 0, sizeof w.secret);
    if (!rc)
        rc = store_webhook_get(a->cfg.store, w.id, out, e);
    if (!rc) {
        shown(*out);
        *status = 201;
    }
    return rc;
}

int admin_webhook_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    (void)r, (void)status;
    json_t *list;
    int rc = store_webhook_list(a->cfg.store, &list, e);
    if (rc)
        return rc;
    size_t i;
    json_t *h;
    json_array_foreach(list, i, h) shown(h);
    *out = json_pack("{s:o}", "webhooks", list);
    return 0;
}

int admin_webhook_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    (void)status;
    int rc = store_webhook_get(a->cfg.store, r->arg[0], out, e);
    if (!rc)
        shown(*out);
    return rc;
}

int admin_webhook_delete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e)
{
    (void)status;
    int rc = store_webhook_delete(a->cfg.store, r->arg[0], e);
    if (!rc)
        *out = json_pack("{s:s, s:b}", "id", r->arg[0], "deleted", 1);
    return rc;
}

int admin_webhook_deliveries(struct admin *a, struct admin_req *r, json_t **out, int *status,
                             struct err *e)
{
    (void)status;
    const char *lim = admin_query(r, "limit");
    long long limit = 100;
    if (lim) {
        char *end;
        limit = strtoll(lim, &end, 10);
        if (!*lim || *end || limit < 1 || limit > 1000)
            return err_set(e, ERR_BAD_REQUEST, "limit: expected an integer 1..1000");
    }
    json_t *list;
    int rc =
        store_webhook_deliveries(a->cfg.store, r->arg[0], admin_query(r, "task"), limit, &list, e);
    if (rc)
        return rc;
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        set_iso(d, "at_ms", "time");
        set_iso(d, "created_ms", "created");
        set_iso(d, "delivered_ms", "delivered");
        if (strcmp(json_string_value(json_object_get(d, "state")), "pending") == 0)
            set_iso(d, "next_ms", "next_attempt");
        else
            json_object_set_new(d, "next_attempt", json_null());
    }
    *out = json_pack("{s:s, s:o}", "webhook", r->arg[0], "deliveries", list);
    return 0;
}
