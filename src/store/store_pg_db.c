/* The PostgreSQL dialect of the backend primitives (store_db.h): a transaction runs on a pooled
 * connection through pg_run (retried after a serialization failure); each shared statement is
 * prepared once per session, at its first use there, and a result is read from the client's
 * copy (libpq fetches the whole result in the one round trip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int pg_db_exec(struct db_tx *base, enum db_stmt id, const struct db_arg *args, size_t n,
                      const char *what, struct err *e)
{
    struct pg_db_tx *t = tx_of(base);
    tx_close_result(t);
    if (!pg_db_sql[id])
        return err_set(e, ERR_INTERNAL, "store: %s: no such statement in PostgreSQL's dialect",
                       what);
    size_t used = params_used(pg_db_sql[id]);
    if (n > used)
        n = used;
    if (n > PG_MAX_PARAMS)
        return err_set(e, ERR_INTERNAL, "store: %s: %zu parameters", what, n);
    struct pg_params p = {0};
    for (size_t i = 0; i < n; i++) {
        if (args[i].type == DB_ARG_INT)
            pp_int(&p, args[i].i);
        else
            pp_text(&p, args[i].type == DB_ARG_TEXT ? args[i].text : NULL);
    }
    char name[16];
    snprintf(name, sizeof name, "d%d", (int)id);
    PGresult *r;
    int rc = pg_exec_prepared(t->c, name, pg_db_sql[id], &t->c->db_prepared[id], &p, &r, what, e);
    if (rc != 0)
        return rc;
    const char *tuples = PQcmdTuples(r);
    t->changes = *tuples ? strtoll(tuples, NULL, 10) : 0;
    t->r = r;
    t->row = -1;
    return 0;
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

/* The event chain of the transactions still written per dialect (store_pg_tasks.c), on the
 * connection they hold. */
int pg_event_append(struct pg_conn *c, const char *id, int64_t now, int from, enum task_state to,
                    const char *node, const char *message, struct err *e)
{
    struct pg_db_tx t = {.base = {&pg_db_ops}, .c = c, .row = -1};
    int rc = db_event_append(&t.base, id, now, from, to, node, message, e);
    tx_close_result(&t);
    return rc;
}

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

const struct db_ops pg_db_ops = {
    .sql = pg_db_sql,
    .caps = DB_CAP_SKIP_LOCKED | DB_CAP_WRITE_CTE | DB_CAP_ROUND_TRIPS,
    .run = pg_db_run,
    .exec = pg_db_exec,
    .next = pg_db_next,
    .is_null = pg_db_is_null,
    .text = pg_db_text,
    .int64 = pg_db_int,
    .changes = pg_db_changes,
};

/* ?claim=update (store_pg.c): the same dialect without SKIP LOCKED, for PostgreSQL-compatible
 * databases where it is slow or missing; the engine's claims then take one task a statement
 * (store_claims.c). */
const struct db_ops pg_db_ops_no_skip_locked = {
    .sql = pg_db_sql,
    .caps = DB_CAP_WRITE_CTE | DB_CAP_ROUND_TRIPS,
    .run = pg_db_run,
    .exec = pg_db_exec,
    .next = pg_db_next,
    .is_null = pg_db_is_null,
    .text = pg_db_text,
    .int64 = pg_db_int,
    .changes = pg_db_changes,
};
