/* The admin tokens, once for both dialects: hashes, names and scopes; the token text is never
 * stored. On PostgreSQL every node reads the same rows, so a token made or revoked through one
 * node holds on all of them at their next lookup (a lookup is one prepared statement, once per
 * admin request that store_cache.c does not answer). */
#include <string.h>

#include "store/store.h"
#include "store/store_db.h"

static int create_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct token *tk = ctx;
    int rc = db_exec(t, DB_TOKEN_INSERT,
                     DB_ARGS(DB_TEXT(tk->id), DB_TEXT(tk->name), DB_TEXT(tk->scope),
                             DB_TEXT(tk->hash), DB_INT(tk->created_ms)),
                     "inserting a token", e);
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "token %s (or its hash) already exists", tk->id);
    return rc;
}

int store_db_token_create(struct store *s, const struct token *t, struct err *e)
{
    return db_run(s, DB_WRITE_ONE, create_fn, (void *)t, e);
}

static int list_fn(struct db_tx *t, void *ctx, struct err *e)
{
    json_t *arr = json_array();
    int rc = db_exec(t, DB_TOKEN_LIST, DB_NO_ARGS, "listing tokens", e);
    while (rc == 0 && (rc = db_next(t, "listing tokens", e)) == 1) {
        json_t *o = json_object();
        json_object_set_new(o, "id", db_json_text(t, 0));
        json_object_set_new(o, "name", db_json_text(t, 1));
        json_object_set_new(o, "scope", db_json_text(t, 2));
        json_object_set_new(o, "created_ms", db_json_int(t, 4));
        json_object_set_new(o, "last_used_ms", db_json_int(t, 5));
        json_array_append_new(arr, o);
        rc = 0;
    }
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *(json_t **)ctx = arr;
    return 0;
}

int store_db_token_list(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    return db_run(s, DB_READ, list_fn, out, e);
}

struct token_update {
    enum db_stmt st;
    const char *id;
    int64_t ms;
};

/* One "UPDATE tokens ... WHERE id = id" setting ms; ERR_NOT_FOUND when no row changed. */
static int update_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct token_update *u = ctx;
    int rc = db_exec(t, u->st, DB_ARGS(DB_TEXT(u->id), DB_INT(u->ms)), "updating a token", e);
    if (rc == 0 && db_changes(t) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no token %s (or it was revoked)", u->id);
    return rc;
}

int store_db_token_revoke(struct store *s, const char *id, struct err *e)
{
    struct token_update u = {DB_TOKEN_REVOKE, id, db_now_ms()};
    return db_run(s, DB_WRITE_ONE, update_fn, &u, e);
}

int store_db_token_touch(struct store *s, const char *id, int64_t used_ms, struct err *e)
{
    struct token_update u = {DB_TOKEN_TOUCH, id, used_ms};
    return db_run(s, DB_WRITE_ONE, update_fn, &u, e);
}

struct token_lookup {
    const char *hash;
    struct token *out;
};

static int by_hash_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct token_lookup *l = ctx;
    int rc = db_exec(t, DB_TOKEN_BY_HASH, DB_ARGS(DB_TEXT(l->hash)), "reading a token", e);
    if (rc == 0)
        rc = db_next(t, "reading a token", e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "no such token");
    if (rc != 1)
        return rc;
    struct token *out = l->out;
    memset(out, 0, sizeof *out);
    db_copy(t, 0, out->id, sizeof out->id);
    db_copy(t, 1, out->name, sizeof out->name);
    db_copy(t, 2, out->scope, sizeof out->scope);
    db_copy(t, 3, out->hash, sizeof out->hash);
    out->created_ms = db_int(t, 4);
    out->last_used_ms = db_int(t, 5);
    return 0;
}

int store_db_token_by_hash(struct store *s, const char *hash, struct token *out, struct err *e)
{
    struct token_lookup l = {hash, out};
    return db_run(s, DB_READ, by_hash_fn, &l, e);
}
