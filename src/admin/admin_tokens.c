/* Admin API tokens: who is calling (the bearer token, looked up by its hash in the store, so a
 * token made on one node works on every node and a revocation holds at the next request), and
 * POST/GET/DELETE /v1/tokens. A token is shown once, when it is made; the store keeps only its
 * SHA-256. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_int.h"
#include "common/sha256.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/timefmt.h"

/* last_used is written at most this often per token: a write per request would put an fsync
 * (SQLite) or a row update (PostgreSQL) in front of every admin call. */
#define TOKEN_TOUCH_EVERY_MS (60 * 1000)
#define TOKEN_NAME_MAX       127

static const struct {
    const char *name;
    unsigned bit;
} scopes[] = {
    {"admin", SCOPE_ADMIN},
    {"operator", SCOPE_OPERATOR},
    {"reader", SCOPE_READER},
    {"worker", SCOPE_WORKER},
};
#define NSCOPES (sizeof scopes / sizeof scopes[0])

unsigned admin_scope_bit(const char *name)
{
    for (size_t i = 0; i < NSCOPES; i++)
        if (strcmp(scopes[i].name, name) == 0)
            return scopes[i].bit;
    return 0;
}

void admin_scope_names(unsigned bits, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NSCOPES && n < size; i++)
        if (bits & scopes[i].bit) {
            int w = snprintf(out + n, size - n, "%s%s", n ? " or " : "", scopes[i].name);
            n += w > 0 ? (size_t)w : 0;
        }
}

static void touch_if_stale(struct admin *a, const struct token *who)
{
    int64_t now = time_now_ms();
    if (now - who->last_used_ms < TOKEN_TOUCH_EVERY_MS)
        return;
    struct err e = {0};
    /* Only bookkeeping: a failure here must not refuse a caller whose token is good. */
    if (store_token_touch(a->cfg.store, who->id, now, &e) != 0)
        log_debug("admin: recording the use of token %s: %s", who->id, e.msg);
}

int admin_authenticate(struct admin *a, const struct http_request *req, struct token *who,
                       struct err *e)
{
    const char *h = http_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7])
        return err_set(e, ERR_ADMIN_UNAUTHORIZED,
                       "missing admin token: send Authorization: Bearer <token> (the AdminToken "
                       "of credentials.json, or one made with POST /v1/tokens)");
    char hash[65];
    sha256_hex(h + 7, strlen(h + 7), hash);
    struct err se = {0};
    int rc = store_token_by_hash(a->cfg.store, hash, who, &se);
    /* The row was found by an index on the hash; comparing the hashes again in constant time
     * keeps any timing the lookup shows about the SHA-256 of a guess, never about a token. */
    if (rc == 0 && !ct_streq(who->hash, hash))
        rc = ERR_NOT_FOUND;
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_ADMIN_UNAUTHORIZED,
                       "unknown or revoked admin token: send Authorization: Bearer <token> (the "
                       "AdminToken of credentials.json, or one made with POST /v1/tokens)");
    if (rc)
        return err_set(e, rc, "%s", se.msg);
    touch_if_stale(a, who);
    return 0;
}

static void set_time(json_t *o, const char *ms_key, const char *key)
{
    json_int_t ms = json_integer_value(json_object_get(o, ms_key));
    if (ms <= 0) {
        json_object_set_new(o, ms_key, json_null());
        json_object_set_new(o, key, json_null());
        return;
    }
    char iso[25];
    time_fmt_iso_utc(ms, iso);
    json_object_set_new(o, key, json_string(iso));
}

int admin_token_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    const char *scope, *name;
    int rc = admin_body_string(r, "scope", true, &scope, e);
    if (!rc)
        rc = admin_body_string(r, "name", true, &name, e);
    if (rc)
        return rc;
    if (!admin_scope_bit(scope))
        return err_set(e, ERR_BAD_REQUEST,
                       "scope: expected admin, operator, reader or worker, got \"%.32s\"", scope);
    if (strlen(name) > TOKEN_NAME_MAX)
        return err_set(e, ERR_BAD_REQUEST, "name: at most %d bytes", TOKEN_NAME_MAX);
    char text[65];
    struct token t = {.created_ms = time_now_ms()};
    ids_hex(text, 32); /* 256 random bits: the token itself */
    memcpy(t.id, "tok-", 4);
    ids_hex(t.id + 4, 8);
    snprintf(t.name, sizeof t.name, "%s", name);
    snprintf(t.scope, sizeof t.scope, "%s", scope);
    sha256_hex(text, strlen(text), t.hash);
    rc = store_token_create(a->cfg.store, &t, e);
    if (!rc) {
        *out = json_pack("{s:s, s:s, s:s, s:s}", "id", t.id, "token", text, "name", t.name, "scope",
                         t.scope);
        *status = 201;
    }
    memset(text, 0, sizeof text);
    return rc;
}

int admin_token_list(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)r, (void)status;
    json_t *list;
    int rc = store_token_list(a->cfg.store, &list, e);
    if (rc)
        return rc;
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        set_time(t, "created_ms", "created");
        set_time(t, "last_used_ms", "last_used");
    }
    *out = json_pack("{s:o}", "tokens", list);
    return 0;
}

int admin_token_revoke(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    (void)status;
    int rc = store_token_revoke(a->cfg.store, r->arg[0], e);
    if (!rc)
        *out = json_pack("{s:s, s:b}", "id", r->arg[0], "revoked", 1);
    return rc;
}
