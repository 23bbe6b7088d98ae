/* The PostgreSQL dialect of the backend primitives (store_db.h): a transaction runs on a pooled
 * connection through pg_run (retried after a serialization failure); each shared statement is
 * prepared once per session, at its first use there, and a result is read from the client's
 * copy (libpq fetches the whole result in the one round trip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_pg_int.h"

struct pg_db_tx {
    struct db_tx base; /* first */
    struct pg_conn *c;
    PGresult *r;     /* the open statement's rows, or NULL */
    int row;         /* the current row; -1 before the first next */
    int64_t changes; /* rows the last write changed */
};

static struct pg_db_tx *tx_of(struct db_tx *t) { return (struct pg_db_tx *)t; }

static void tx_close_result(struct pg_db_tx *t)
{
    PQclear(t->r);
    t->r = NULL;
}

/* How many parameters sql uses: its highest $n. A shared statement may leave out trailing values
 * (store_db.h), and PostgreSQL refuses more values than a prepared statement has parameters.
 * Scanning ~300 bytes costs far less than the round trip it precedes. */
static size_t params_used(const char *sql)
{
    size_t most = 0;
    for (const char *p = sql; (p = strchr(p, '$')) != NULL;) {
        char *end;
        unsigned long n = strtoul(++p, &end, 10);
        if (end != p && n > most)
            most = n;
        p = end;
    }
    return most;
}

/* A set of texts as a text[] literal, {"a","b\"c"} (heap, the caller frees it). */
static char *texts_array(const char *const *texts)
{
    size_t cap = 3;
    for (const char *const *q = texts; *q; q++)
        cap += 2 * strlen(*q) + 3;
    char *lit = xmalloc(cap), *o = lit;
    *o++ = '{';
    for (const char *const *q = texts; *q; q++) {
        if (q != texts)
            *o++ = ',';
        *o++ = '"';
        for (const char *ch = *q; *ch; ch++) {
            if (*ch == '"' || *ch == '\\')
                *o++ = '\\';
            *o++ = *ch;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    return lit;
}

static void pg_db_param(char *buf, size_t size, int n, enum db_arg_type type)
{
    if (type == DB_ARG_TEXTS)
        snprintf(buf, size, "= ANY($%d::text[])", n);
    else
        snprintf(buf, size, "$%d::%s", n, type == DB_ARG_INT ? "bigint" : "text");
}

/* Runs sql with the first n values: prepared as name (the slot's, *prepared saying it is) or,
 * with no name, unnamed. */
static int tx_run(struct pg_db_tx *t, const char *name, const char *sql, bool *prepared,
                  const struct db_arg *args, size_t n, const char *what, struct err *e)
{
    if (n > PG_MAX_PARAMS)
        return err_set(e, ERR_INTERNAL, "store: %s: %zu parameters", what, n);
    struct pg_params p = {0};
    char *arrays[PG_MAX_PARAMS] = {0};
    for (size_t i = 0; i < n; i++) {
        if (args[i].type == DB_ARG_INT)
            pp_int(&p, args[i].i);
        else if (args[i].type == DB_ARG_TEXTS)
            pp_text(&p, arrays[i] = texts_array(args[i].texts));
        else
            pp_text(&p, args[i].type == DB_ARG_TEXT ? args[i].text : NULL);
    }
    PGresult *r;
    int rc = name ? pg_exec_prepared(t->c, name, sql, prepared, &p, &r, what, e)
                  : pg_exec_sql(t->c, sql, &p, &r, what, e);
    for (size_t i = 0; i < n; i++)
        free(arrays[i]);
    if (rc != 0)
        return rc;
    const char *tuples = PQcmdTuples(r);
    t->changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
    t->r = r;
    t->row = -1;
    return 0;
}

static int pg_db_exec(struct db_tx *base, enum db_stmt id, const struct db_arg *args, size_t n,
                      const char *what, struct err *e)
{
    struct pg_db_tx *t = tx_of(base);
    tx_close_result(t);
    if (!pg_db_sql[id])
        return err_set(e, ERR_INTERNAL, "store: %s: no such statement in PostgreSQL's dialect",
                       what);
    size_t used = params_used(pg_db_sql[id]);
    char name[16];
    snprintf(name, sizeof name, "d%d", (int)id);
    return tx_run(t, name, pg_db_sql[id], &t->c->db_prepared[id], args, n > used ? used : n, what,
                  e);
}

/* Unnamed: planned for these values, which a filter's index choice depends on. */
static int pg_db_exec_sql(struct db_tx *base, const char *sql, const struct db_arg *args, size_t n,
                          const char *what, struct err *e)
{
    struct pg_db_tx *t = tx_of(base);
    tx_close_result(t);
    return tx_run(t, NULL, sql, NULL, args, n, what, e);
}

static int pg_db_next(struct db_tx *base, const char *what, struct err *e)
{
    (void)what;
    (void)e;
    struct pg_db_tx *t = tx_of(base);
    if (!t->r)
        return 0;
    if (++t->row < PQntuples(t->r))
        return 1;
    tx_close_result(t);
    return 0;
}

static bool pg_db_is_null(struct db_tx *t, int col)
{
    return PQgetisnull(tx_of(t)->r, tx_of(t)->row, col);
}

static const char *pg_db_text(struct db_tx *t, int col)
{
    return pg_str(tx_of(t)->r, tx_of(t)->row, col);
}

static int64_t pg_db_int(struct db_tx *t, int col)
{
    return pg_int(tx_of(t)->r, tx_of(t)->row, col);
}

static int64_t pg_db_changes(struct db_tx *t) { return tx_of(t)->changes; }

struct pg_db_call {
    int (*fn)(struct db_tx *t, void *ctx, struct err *e);
    void *ctx;
    const struct db_ops *ops; /* the store's: its capabilities */
};

static int run_on(struct pg_conn *c, void *ctx, struct err *e)
{
    struct pg_db_call *call = ctx;
    struct pg_db_tx t = {.base = {call->ops}, .c = c, .row = -1};
    int rc = call->fn(&t.base, call->ctx, e);
    tx_close_result(&t);
    return rc;
}

/* A write is READ COMMITTED with its rows locked before they are checked (store_pg_int.h); a
 * single statement or a read needs no BEGIN and COMMIT, two round trips fewer. */
static const enum pg_tx tx_kind[] = {
    [DB_WRITE] = PG_TX_WRITE,
    [DB_WRITE_ONE] = PG_TX_NONE,
    [DB_READ] = PG_TX_NONE,
    [DB_SNAPSHOT] = PG_TX_SNAPSHOT,
};

static int pg_db_run(struct store *s, enum db_kind kind,
                     int (*fn)(struct db_tx *t, void *ctx, struct err *e), void *ctx, struct err *e)
{
    struct pg_db_call call = {fn, ctx, s->db};
    return pg_run(s, tx_kind[kind], run_on, &call, e);
}

/* The entries both PostgreSQL tables share: they differ only in their capabilities. */
#define PG_DB_OPS_HANDLE                                                                           \
    .sql = pg_db_sql, .run = pg_db_run, .exec = pg_db_exec, .next = pg_db_next,                    \
    .is_null = pg_db_is_null, .text = pg_db_text, .int64 = pg_db_int, .changes = pg_db_changes,    \
    .exec_sql = pg_db_exec_sql, .param = pg_db_param

const struct db_ops pg_db_ops = {
    PG_DB_OPS_HANDLE,
    .caps = DB_CAP_SKIP_LOCKED | DB_CAP_WRITE_CTE | DB_CAP_ROUND_TRIPS,
};

/* ?claim=update (store_pg.c): the same dialect without SKIP LOCKED, for PostgreSQL-compatible
 * databases where it is slow or missing; the engine's claims then take one task a statement
 * (store_claims.c). */
const struct db_ops pg_db_ops_no_skip_locked = {
    PG_DB_OPS_HANDLE,
    .caps = DB_CAP_WRITE_CTE | DB_CAP_ROUND_TRIPS,
};
