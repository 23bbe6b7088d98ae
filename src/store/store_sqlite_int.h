/* Internals shared by the SQLite store's files: connections, cached statements, transactions. */
#ifndef ASYNCD_STORE_SQLITE_INT_H
#define ASYNCD_STORE_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_db.h"

#define SQ_READERS         4 /* read-only connections; reads run beside the one writer (WAL) */
#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_SCHEMA_VERSION  12

/* The WHERE terms of the partial indexes tasks_instance_open and tasks_finished (migration 11),
 * for the queries that must repeat them word for word to use those indexes. */
#define SQ_STATES_OPEN                                                                             \
    "(state = 'initial' OR state = 'running' OR state = 'waiting' OR state = 'paused')"
#define SQ_STATES_FINISHED                                                                         \
    "(state = 'undoed' OR state = 'failed' OR state = 'success' OR state = 'killed'"               \
    " OR state = 'removed')"
#define SQ_BATCH_MAX 256 /* closures one group commit takes at most: bounds its latency */

/* The transaction-control statements, prepared once per connection (lazily, at its first use);
 * every other statement is a shared one (store_db.h, sq_db_sql). */
enum sq_slot {
    SQ_BEGIN_READ,
    SQ_BEGIN_WRITE,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_SAVEPOINT,
    SQ_RELEASE,
    SQ_ROLLBACK_TO,
    SQ_SLOT_COUNT
};

/* The SQL of each shared statement (store_db.h), in SQLite's dialect (store_sqlite_sql.c). */
extern const char *const sq_db_sql[DB_STMT_COUNT];

/* A connection and its statements; mu is held by whoever uses it, for the whole call. */
struct sq_conn {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmt[SQ_SLOT_COUNT];
    sqlite3_stmt *db_stmt[DB_STMT_COUNT]; /* the shared statements (store_db.h), same lifetime */
    /* The writer's: false while the webhooks table has had no row since the store opened (and
     * had none then). DB_WEBHOOK_ENQUEUE copies rows of it, so until then it writes nothing and
     * is not run: 3 of the 18 statements of a one-step task. Set when the writer inserts a
     * webhook (even one rolled back), never cleared; only write closures touch it, one at a
     * time. */
    bool webhooks_maybe;
};

struct sq_job;

/* The queue of write transactions waiting for the writer (store_sqlite_group.c). */
#define SQ_RECENT 32 /* submitters remembered, to tell how much company a batch may get */

struct sq_group {
    pthread_mutex_t mu;
    pthread_cond_t grew;        /* signalled on each submission while a leader gathers */
    struct sq_job *head, *tail; /* FIFO, linked through the jobs on their submitters' stacks */
    bool leading;               /* a submitter is running a batch */
    bool gathering;             /* the leader waits briefly for more jobs */
    unsigned queued;            /* jobs in the queue */
    unsigned gather_want;       /* while gathering: the queue length that ends the wait */
    int64_t commit_us;          /* how long the last batch's COMMIT took; under mu */
    struct {
        pthread_t thread;
        int64_t at_us;   /* monotonic; 0 = empty */
    } recent[SQ_RECENT]; /* the last submitters and when they last submitted */
    unsigned recent_next;
    atomic_uint_fast64_t commits, txs; /* COMMITs that succeeded; closures run */
};

struct store_sqlite {
    struct store base;     /* first: a struct store * is a struct store_sqlite * */
    char *path;            /* heap */
    struct sq_conn writer; /* every write, batched by group into BEGIN IMMEDIATE transactions */
    struct sq_group group;
    struct sq_conn readers[SQ_READERS];
    atomic_uint next_reader; /* round-robin start for picking a reader */
};

static inline struct store_sqlite *sq_of(struct store *s) { return (struct store_sqlite *)s; }

/* Connections: acquire locks one (a free reader if any), release unlocks it. Only the group
 * commit (and the open-time migration) acquires the writer: writes go through sq_write_tx. */
struct sq_conn *sq_reader_acquire(struct store_sqlite *s);
struct sq_conn *sq_writer_acquire(struct store_sqlite *s);
void sq_release(struct sq_conn *c);

/* A write transaction: runs on the writer connection c inside the batch's transaction (never
 * BEGIN, COMMIT or ROLLBACK itself), reads in and fills out, and returns 0, or an ERR_* with e
 * filled (e may be NULL). On failure everything it wrote is undone, and out must be ignored. */
typedef int (*sq_tx_fn)(struct sq_conn *c, const void *in, void *out, struct err *e);

/* Runs fn(c, in, out, e) as one write transaction and returns its rc. Concurrent calls are
 * committed together (group commit, store_sqlite_group.c): each runs inside its own SAVEPOINT,
 * one after another on the one writer connection (so a count-then-insert stays serialized), and
 * one COMMIT (one fsync) covers them all. It returns only after that COMMIT has returned: 0 means
 * the transaction is durable; a failed COMMIT fails every closure of its batch with its error.
 * Must not be called from inside a closure (it would wait for itself). */
int sq_write_tx(struct store *s, int (*fn)(struct sq_conn *, const void *, void *, struct err *),
                const void *in, void *out, struct err *e);
void sq_group_init(struct sq_group *g);
void sq_group_destroy(struct sq_group *g);
/* Counters for tests and diagnostics: COMMITs that succeeded, and closures run, since open. */
void sq_write_stats(struct store *s, uint64_t *commits, uint64_t *txs);
/* How many submitted transactions wait for the next batch (for tests). */
size_t sq_write_queued(struct store *s);

/* Sets *out to the cached statement for slot, prepared from sql at its first use on c (a slot
 * always gets the same sql). Returns 0, or an ERR_* with e filled and *out NULL when sql does not
 * prepare. The connection owns the statement; callers sq_done() it after use. */
int sq_stmt(struct sq_conn *c, enum sq_slot slot, const char *sql, sqlite3_stmt **out,
            struct err *e);
/* Resets st and clears its bindings (so it holds no read snapshot); NULL is ignored. */
void sq_done(sqlite3_stmt *st);

/* Transactions on c: sq_begin_write is BEGIN IMMEDIATE, sq_begin_read a deferred BEGIN (one
 * snapshot for several SELECTs). sq_rollback is safe to call when no transaction is open. */
int sq_begin_read(struct sq_conn *c, struct err *e);
int sq_begin_write(struct sq_conn *c, struct err *e);
int sq_commit(struct sq_conn *c, struct err *e);
void sq_rollback(struct sq_conn *c);
/* Runs the cached statement slot (sql, returning no row) on c; what names it in e on failure. */
int sq_exec_slot(struct sq_conn *c, enum sq_slot slot, const char *sql, const char *what,
                 struct err *e);

/* Fills e from c's last SQLite error, prefixed by what we were doing; returns the ERR_* code
 * (ERR_SERVICE_UNAVAILABLE when the database stayed busy/locked, else ERR_INTERNAL). */
int sq_fail(struct sq_conn *c, struct err *e, const char *what);

/* Helpers for rows and bindings. The json_t results are new references the caller owns. */
int64_t sq_now_ms(void);
void sq_copy(char *dst, size_t size, const unsigned char *src); /* NULL src -> "" ; truncates */
int sq_bind_text(sqlite3_stmt *st, int i, const char *s);       /* NULL binds SQL NULL */
json_t *sq_col_json_text(sqlite3_stmt *st, int col);            /* text, or json null */
json_t *sq_col_json_int(sqlite3_stmt *st, int col);             /* integer, or json null */

/* The ops, by file (the accounts are store_accounts.c, once for both dialects).
 * store_sqlite_accounts.c: */
/* Seals the SecretKeys and DSNs still in clear (store_plan.h) in the caller's write
 * transaction, and logs how many; the schema migration calls it before its commit. */
int sq_reseal_secrets(struct sq_conn *c, struct err *e);

#endif
