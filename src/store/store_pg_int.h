/* Internals shared by the PostgreSQL store's files: the connection pool, prepared statements,
 * parameters, result helpers and the transaction runner. */
#ifndef ASYNCD_STORE_PG_INT_H
#define ASYNCD_STORE_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_db.h"

#define PG_POOL_DEFAULT   8
#define PG_POOL_MAX       64
#define PG_SCHEMA_VERSION 10
#define PG_TX_ATTEMPTS    5   /* runs of a transaction that hit a serialization failure */
#define PG_BACKOFF_MIN_MS 100 /* reconnect backoff: 100 ms doubling to 5 s */
#define PG_BACKOFF_MAX_MS 5000
#define PG_RETRY          1 /* internal, never returned by an op: 40001/40P01, run again */
#define PG_MAX_PARAMS     16

/* The SQL of each shared statement (store_db.h), in store_pg_sql.c. */
extern const char *const pg_db_sql[DB_STMT_COUNT];

/* A pooled connection. Only the caller that took it (busy) touches it. */
struct pg_conn {
    PGconn *conn; /* NULL until the first use, and after a failed reconnect */
    bool busy;
    bool broken;                     /* the server went away: reconnect at the next use */
    int backoff_ms;                  /* 0 = try at once; else the wait after the last failed try */
    int64_t next_try_ms;             /* monotonic ms before which no reconnect is tried */
    char last_error[256];            /* why it is down, for the ServiceUnavailable message */
    char violated[64];               /* the constraint of the last unique violation */
    bool db_prepared[DB_STMT_COUNT]; /* statements prepared on this session (at first use) */
};

enum pg_claim_mode {
    PG_CLAIM_SKIP_LOCKED, /* SELECT ... FOR UPDATE SKIP LOCKED, then UPDATE (default) */
    PG_CLAIM_ONE_UPDATE,  /* one conditional UPDATE ... RETURNING (?claim=update) */
};

struct store_pg {
    struct store base; /* first: a struct store * is a struct store_pg * */
    char *conninfo;    /* heap: the URL without our own options, for libpq */
    enum pg_claim_mode claim_mode;
    int pool_size;
    pthread_mutex_t mu;    /* guards the busy flags */
    pthread_cond_t freed;  /* signalled when a connection is given back */
    struct pg_conn *conns; /* heap, pool_size of them */
};

static inline struct store_pg *pg_of(struct store *s) { return (struct store_pg *)s; }

/* Text parameters for a statement; pp_* append one. NULL text binds SQL NULL. Strings are not
 * copied: they must outlive the call. */
struct pg_params {
    const char *v[PG_MAX_PARAMS];
    char buf[PG_MAX_PARAMS][24];
    int n;
};
void pp_text(struct pg_params *p, const char *s);
void pp_int(struct pg_params *p, int64_t v);
void pp_bool(struct pg_params *p, bool v);

/* Runs sql, prepared as name on c at its first use there (*prepared says it is). On success returns
 * 0 and *out is the result (the caller PQclear()s it). On failure *out is NULL and e is filled with
 * "store: <what>: ..."; the code is ERR_SERVICE_UNAVAILABLE when the connection broke (it is then
 * reset at its next use), PG_RETRY on a serialization failure or deadlock, ERR_ALREADY_EXISTS on a
 * unique violation (c->violated names the constraint), else ERR_INTERNAL. */
int pg_exec_prepared(struct pg_conn *c, const char *name, const char *sql, bool *prepared,
                     const struct pg_params *p, PGresult **out, const char *what, struct err *e);
/* The same for SQL built at run time (task lists): not prepared. */
int pg_exec_sql(struct pg_conn *c, const char *sql, const struct pg_params *p, PGresult **out,
                const char *what, struct err *e);

/* How a transaction runs: one statement without BEGIN, a write transaction (READ COMMITTED;
 * rows are locked with FOR NO KEY UPDATE before they are checked), or a read-only snapshot. */
enum pg_tx { PG_TX_NONE, PG_TX_WRITE, PG_TX_SNAPSHOT };

/* Takes a pooled connection (waiting for a free one), connects it if it is not, runs fn in a
 * transaction of the given kind, commits on 0 and rolls back otherwise; runs it again (up to
 * PG_TX_ATTEMPTS) when fn or the commit returns PG_RETRY, so fn must leave nothing behind when
 * it fails. Returns fn's result or the transaction's error. */
int pg_run(struct store *s, enum pg_tx kind, int (*fn)(struct pg_conn *, void *, struct err *),
           void *ctx, struct err *e);

/* Row helpers over text-format results. pg_str is NULL for SQL NULL; pg_int 0 for NULL. The json_t
 * results are new references the caller owns. */
const char *pg_str(const PGresult *r, int row, int col);
int64_t pg_int(const PGresult *r, int row, int col);
bool pg_bool(const PGresult *r, int row, int col);
void pg_copy(char *dst, size_t size, const char *src);      /* NULL src -> ""; truncates */
json_t *pg_json_text(const PGresult *r, int row, int col);  /* text, or json null */
json_t *pg_json_int(const PGresult *r, int row, int col);   /* integer, or json null */
json_t *pg_json_value(const PGresult *r, int row, int col); /* stored JSON text parsed, or null */
int64_t pg_now_ms(void);

/* The ops, by file (the accounts are store_accounts.c, once for both dialects).
 * store_pg_accounts.c: */
/* Seals the SecretKeys and DSNs still in clear (store_plan.h) in the caller's write
 * transaction, and logs how many; the schema migration calls it under its lock. */
int pg_reseal_secrets(struct pg_conn *c, struct err *e);

#endif
