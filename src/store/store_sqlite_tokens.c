/* The SQLite store's admin tokens: hashes, names and scopes; the token text is never stored. */
#include <string.h>

#include "store/store_sqlite_int.h"

#define TOKEN_COLS "id, name, scope, hash, created_ms, COALESCE(last_used_ms, 0)"

static int token_create_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct token *t = inp;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_TOKEN_INSERT,
                     "INSERT INTO tokens(id, name, scope, hash, created_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, t->id);
    sq_bind_text(st, 2, t->name);
    sq_bind_text(st, 3, t->scope);
    sq_bind_text(st, 4, t->hash);
    sqlite3_bind_int64(st, 5, t->created_ms);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    else if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT)
        rc = err_set(e, ERR_ALREADY_EXISTS, "token %s (or its hash) already exists", t->id);
    else
        rc = sq_fail(c, e, "inserting a token");
    sq_done(st);
    return rc;
}

int store_sqlite_token_create(struct store *s, const struct token *t, struct err *e)
{
    return sq_write_tx(s, token_create_tx, t, NULL, e);
}

static json_t *token_row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", sq_col_json_text(st, 0));
    json_object_set_new(o, "name", sq_col_json_text(st, 1));
    json_object_set_new(o, "scope", sq_col_json_text(st, 2));
    json_object_set_new(o, "created_ms", sq_col_json_int(st, 4));
    json_object_set_new(o, "last_used_ms", sq_col_json_int(st, 5));
    return o;
}

int store_sqlite_token_list(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_TOKEN_LIST,
                     "SELECT " TOKEN_COLS " FROM tokens WHERE revoked_ms IS NULL"
                     " ORDER BY created_ms, id",
                     &st, e);
    if (rc == 0) {
        json_t *arr = json_array();
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW)
            json_array_append_new(arr, token_row_json(st));
        if (step == SQLITE_DONE) {
            *out = arr;
        } else {
            json_decref(arr);
            rc = sq_fail(c, e, "listing tokens");
        }
    }
    sq_done(st);
    sq_release(c);
    return rc;
}

struct token_update_in {
    enum sq_slot slot;
    const char *sql, *id;
    int64_t ms;
};

/* Runs one "UPDATE tokens ... WHERE id = ?1" with ?2 = ms; ERR_NOT_FOUND when no row changed. */
static int token_update_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct token_update_in *in = inp;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, in->slot, in->sql, &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, in->id);
    sqlite3_bind_int64(st, 2, in->ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "updating a token");
    else if (sqlite3_changes(c->db) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no token %s (or it was revoked)", in->id);
    sq_done(st);
    return rc;
}

static int token_update(struct store *s, enum sq_slot slot, const char *sql, const char *id,
                        int64_t ms, struct err *e)
{
    struct token_update_in in = {slot, sql, id, ms};
    return sq_write_tx(s, token_update_tx, &in, NULL, e);
}

int store_sqlite_token_revoke(struct store *s, const char *id, struct err *e)
{
    return token_update(s, SQ_TOKEN_REVOKE,
                        "UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                        id, sq_now_ms(), e);
}

int store_sqlite_token_touch(struct store *s, const char *id, int64_t used_ms, struct err *e)
{
    return token_update(s, SQ_TOKEN_TOUCH,
                        "UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                        id, used_ms, e);
}

int store_sqlite_token_by_hash(struct store *s, const char *hash, struct token *out, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc =
        sq_stmt(c, SQ_TOKEN_BY_HASH,
                "SELECT " TOKEN_COLS " FROM tokens WHERE hash = ?1 AND revoked_ms IS NULL", &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, hash);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            memset(out, 0, sizeof *out);
            sq_copy(out->id, sizeof out->id, sqlite3_column_text(st, 0));
            sq_copy(out->name, sizeof out->name, sqlite3_column_text(st, 1));
            sq_copy(out->scope, sizeof out->scope, sqlite3_column_text(st, 2));
            sq_copy(out->hash, sizeof out->hash, sqlite3_column_text(st, 3));
            out->created_ms = sqlite3_column_int64(st, 4);
            out->last_used_ms = sqlite3_column_int64(st, 5);
        } else if (step == SQLITE_DONE) {
            rc = err_set(e, ERR_NOT_FOUND, "no such token");
        } else {
            rc = sq_fail(c, e, "reading a token");
        }
    }
    sq_done(st);
    sq_release(c);
    return rc;
}
