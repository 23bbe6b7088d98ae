/* The SQLite dialect of the backend primitives (store_db.h): writes run as closures of the
 * writer's group commit (store_sqlite_group.c), reads on a reader connection; each shared
 * statement is prepared once per connection, at its first use there, and kept. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store_sqlite_int.h"

struct sq_db_tx {
    struct db_tx base; /* first */
    struct sq_conn *c;
    sqlite3_stmt *st; /* the open statement, or NULL */
    bool owned;       /* st was built at run time (db_exec_sql): finalized, not kept */
    int step;         /* its last sqlite3_step result */
    bool fresh;       /* step holds the first row, not yet handed out by next */
    int64_t changes;  /* rows the last finished write changed */
};

static struct sq_db_tx *tx_of(struct db_tx *t) { return (struct sq_db_tx *)t; }

static void tx_close_stmt(struct sq_db_tx *t)
{
    if (t->owned)
        sqlite3_finalize(t->st);
    else
        sq_done(t->st);
    t->st = NULL;
    t->owned = false;
}

/* A unique or primary-key violation is the caller's "already exists"; the rest as sq_fail. */
static int tx_fail(struct sq_db_tx *t, const char *what, struct err *e)
{
    int rc = sqlite3_extended_errcode(t->c->db);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return err_set(e, ERR_ALREADY_EXISTS, "store: %s: %s", what, sqlite3_errmsg(t->c->db));
    return sq_fail(t->c, e, what);
}

/* A set of texts as the JSON array json_each reads (heap, the caller frees it). */
static char *texts_json(const char *const *texts)
{
    json_t *arr = json_array();
    for (const char *const *p = texts; *p; p++)
        json_array_append_new(arr, db_json_string(*p));
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return s;
}

/* Values past the statement's last parameter are left out (store_db.h: trailing values). */
static int bind_args(sqlite3_stmt *st, const struct db_arg *args, size_t n)
{
    int rc = SQLITE_OK;
    size_t used = (size_t)sqlite3_bind_parameter_count(st);
    for (size_t i = 0; i < n && i < used && rc == SQLITE_OK; i++) {
        int at = (int)i + 1;
        if (args[i].type == DB_ARG_TEXT)
            rc = sqlite3_bind_text(st, at, args[i].text, -1, SQLITE_STATIC);
        else if (args[i].type == DB_ARG_INT)
            rc = sqlite3_bind_int64(st, at, args[i].i);
        else if (args[i].type == DB_ARG_TEXTS)
            rc = sqlite3_bind_text(st, at, texts_json(args[i].texts), -1, free);
        else
            rc = sqlite3_bind_null(st, at);
    }
    return rc;
}

static void sq_db_param(char *buf, size_t size, int n, enum db_arg_type type)
{
    if (type == DB_ARG_TEXTS)
        snprintf(buf, size, "IN (SELECT value FROM json_each(?%d))", n);
    else
        snprintf(buf, size, "?%d", n);
}

/* Binds and steps t->st once at once, so that a write is done (and its error known) when exec
 * returns; a first row waits for the first next. */
static int tx_start(struct sq_db_tx *t, const struct db_arg *args, size_t n, const char *what,
                    struct err *e)
{
    struct sq_conn *c = t->c;
    if (bind_args(t->st, args, n) != SQLITE_OK) {
        int rc = sq_fail(c, e, what);
        tx_close_stmt(t);
        return rc;
    }
    t->step = sqlite3_step(t->st);
    t->fresh = true;
    if (t->step == SQLITE_ROW)
        return 0;
    int rc = t->step == SQLITE_DONE ? 0 : tx_fail(t, what, e);
    t->changes = rc == 0 ? sqlite3_changes(c->db) : 0;
    tx_close_stmt(t);
    return rc;
}

static int sq_db_exec(struct db_tx *base, enum db_stmt id, const struct db_arg *args, size_t n,
                      const char *what, struct err *e)
{
    struct sq_db_tx *t = tx_of(base);
    tx_close_stmt(t);
    struct sq_conn *c = t->c;
    if (!sq_db_sql[id])
        return err_set(e, ERR_INTERNAL, "store: %s: no such statement in SQLite's dialect", what);
    if (id == DB_WEBHOOK_INSERT)
        c->webhooks_maybe = true; /* before the row can exist */
    else if (id == DB_WEBHOOK_ENQUEUE && !c->webhooks_maybe) {
        t->changes = 0; /* nothing to copy from: as the statement run, no row and no change */
        return 0;
    }
    if (!c->db_stmt[id] && sqlite3_prepare_v3(c->db, sq_db_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                              &c->db_stmt[id], NULL) != SQLITE_OK) {
        c->db_stmt[id] = NULL;
        return sq_fail(c, e, "preparing a statement");
    }
    t->st = c->db_stmt[id];
    return tx_start(t, args, n, what, e);
}

/* Not kept: the text follows the filter, and a reader's cache would grow with every shape. */
static int sq_db_exec_sql(struct db_tx *base, const char *sql, const struct db_arg *args, size_t n,
                          const char *what, struct err *e)
{
    struct sq_db_tx *t = tx_of(base);
    tx_close_stmt(t);
    if (sqlite3_prepare_v2(t->c->db, sql, -1, &t->st, NULL) != SQLITE_OK) {
        sqlite3_finalize(t->st);
        t->st = NULL;
        return sq_fail(t->c, e, what);
    }
    t->owned = true;
    return tx_start(t, args, n, what, e);
}

static int sq_db_next(struct db_tx *base, const char *what, struct err *e)
{
    struct sq_db_tx *t = tx_of(base);
    if (!t->st)
        return 0;
    if (!t->fresh)
        t->step = sqlite3_step(t->st);
    t->fresh = false;
    if (t->step == SQLITE_ROW)
        return 1;
    int rc = t->step == SQLITE_DONE ? 0 : tx_fail(t, what, e);
    tx_close_stmt(t);
    return rc;
}

static bool sq_db_is_null(struct db_tx *t, int col)
{
    return sqlite3_column_type(tx_of(t)->st, col) == SQLITE_NULL;
}

static const char *sq_db_text(struct db_tx *t, int col)
{
    return (const char *)sqlite3_column_text(tx_of(t)->st, col);
}

static int64_t sq_db_int(struct db_tx *t, int col)
{
    return sqlite3_column_int64(tx_of(t)->st, col);
}

static int64_t sq_db_changes(struct db_tx *t) { return tx_of(t)->changes; }

struct sq_db_call {
    int (*fn)(struct db_tx *t, void *ctx, struct err *e);
    void *ctx;
};

/* Runs the call on c and leaves no statement open (a reset statement holds no snapshot, and
 * the group's savepoint can be released). */
static int run_on(struct sq_conn *c, const struct sq_db_call *call, struct err *e)
{
    struct sq_db_tx t = {.base = {&sq_db_ops}, .c = c};
    int rc = call->fn(&t.base, call->ctx, e);
    tx_close_stmt(&t);
    return rc;
}

static int write_closure(struct sq_conn *c, const void *in, void *out, struct err *e)
{
    (void)out;
    return run_on(c, in, e);
}

static int sq_db_run(struct store *s, enum db_kind kind,
                     int (*fn)(struct db_tx *t, void *ctx, struct err *e), void *ctx, struct err *e)
{
    struct sq_db_call call = {fn, ctx};
    if (kind == DB_WRITE || kind == DB_WRITE_ONE)
        return sq_write_tx(s, write_closure, &call, NULL, e);
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    int rc = kind == DB_SNAPSHOT ? sq_begin_read(c, e) : 0;
    if (rc == 0)
        rc = run_on(c, &call, e);
    if (kind == DB_SNAPSHOT)
        sq_rollback(c); /* read only: nothing to keep, and the snapshot ends */
    sq_release(c);
    return rc;
}

const struct db_ops sq_db_ops = {
    .sql = sq_db_sql,
    .caps = DB_CAP_ONE_WRITER,
    .run = sq_db_run,
    .exec = sq_db_exec,
    .next = sq_db_next,
    .is_null = sq_db_is_null,
    .text = sq_db_text,
    .int64 = sq_db_int,
    .changes = sq_db_changes,
    .exec_sql = sq_db_exec_sql,
    .param = sq_db_param,
};
