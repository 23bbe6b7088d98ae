/* The PostgreSQL store's admin tokens: hashes, names and scopes; the token text is never stored.
 * Every node reads the same rows, so a token made or revoked through one node holds on all of
 * them at their next lookup. The statements are sent unprepared (pg_exec_sql), as their SQL
 * lives here rather than in the prepared table of store_pg_sql.c: a lookup costs ~170 us on
 * loopback (see store_cache.c), once per admin request. */
#include <string.h>

#include "store/store_pg_int.h"

#define TOKEN_COLS "id, name, scope, hash, created_ms, COALESCE(last_used_ms, 0)"

static int insert_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct token *t = ctx;
    struct pg_params p = {0};
    pp_text(&p, t->id);
    pp_text(&p, t->name);
    pp_text(&p, t->scope);
    pp_text(&p, t->hash);
    pp_int(&p, t->created_ms);
    int rc = pg_exec_sql(c,
                         "INSERT INTO tokens(id, name, scope, hash, created_ms)"
                         " VALUES($1, $2, $3, $4, $5)",
                         &p, NULL, "inserting a token", e);
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "token %s (or its hash) already exists", t->id);
    return rc;
}

int store_pg_token_create(struct store *s, const struct token *t, struct err *e)
{
    return pg_run(s, PG_TX_NONE, insert_fn, (void *)t, e);
}

static int list_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT " TOKEN_COLS " FROM tokens WHERE revoked_ms IS NULL"
                         " ORDER BY created_ms, id",
                         NULL, &r, "listing tokens", e);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    for (int row = 0; row < PQntuples(r); row++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", pg_json_text(r, row, 0));
        json_object_set_new(o, "name", pg_json_text(r, row, 1));
        json_object_set_new(o, "scope", pg_json_text(r, row, 2));
        json_object_set_new(o, "created_ms", pg_json_int(r, row, 4));
        json_object_set_new(o, "last_used_ms", pg_json_int(r, row, 5));
        json_array_append_new(arr, o);
    }
    PQclear(r);
    *(json_t **)ctx = arr;
    return 0;
}

int store_pg_token_list(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    return pg_run(s, PG_TX_NONE, list_fn, out, e);
}

struct token_update {
    const char *sql, *id;
    int64_t ms;
};

/* One "UPDATE tokens ... WHERE id = $1" with $2 = ms; ERR_NOT_FOUND when no row changed. */
static int update_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct token_update *u = ctx;
    struct pg_params p = {0};
    pp_text(&p, u->id);
    pp_int(&p, u->ms);
    PGresult *r;
    int rc = pg_exec_sql(c, u->sql, &p, &r, "updating a token", e);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no token %s (or it was revoked)", u->id);
    PQclear(r);
    return rc;
}

int store_pg_token_revoke(struct store *s, const char *id, struct err *e)
{
    struct token_update u = {
        "UPDATE tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL", id, pg_now_ms()};
    return pg_run(s, PG_TX_NONE, update_fn, &u, e);
}

int store_pg_token_touch(struct store *s, const char *id, int64_t used_ms, struct err *e)
{
    struct token_update u = {
        "UPDATE tokens SET last_used_ms = $2 WHERE id = $1 AND revoked_ms IS NULL", id, used_ms};
    return pg_run(s, PG_TX_NONE, update_fn, &u, e);
}

struct token_lookup {
    const char *hash;
    struct token *out;
};

static int by_hash_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct token_lookup *l = ctx;
    struct pg_params p = {0};
    pp_text(&p, l->hash);
    PGresult *r;
    int rc =
        pg_exec_sql(c, "SELECT " TOKEN_COLS " FROM tokens WHERE hash = $1 AND revoked_ms IS NULL",
                    &p, &r, "reading a token", e);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = err_set(e, ERR_NOT_FOUND, "no such token");
    } else {
        struct token *out = l->out;
        memset(out, 0, sizeof *out);
        pg_copy(out->id, sizeof out->id, pg_str(r, 0, 0));
        pg_copy(out->name, sizeof out->name, pg_str(r, 0, 1));
        pg_copy(out->scope, sizeof out->scope, pg_str(r, 0, 2));
        pg_copy(out->hash, sizeof out->hash, pg_str(r, 0, 3));
        out->created_ms = pg_int(r, 0, 4);
        out->last_used_ms = pg_int(r, 0, 5);
    }
    PQclear(r);
    return rc;
}

int store_pg_token_by_hash(struct store *s, const char *hash, struct token *out, struct err *e)
{
    struct token_lookup l = {hash, out};
    return pg_run(s, PG_TX_NONE, by_hash_fn, &l, e);
}
