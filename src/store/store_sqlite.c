/* The embedded SQLite store: connections, schema and migrations, transactions, and the ops table.
 */
#include "store/store_sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "store/store_sqlite_vfs.h"

/* Schema migrations: migrations[v] takes the schema from version v to v + 1. Only ever append. */
static const char *const migrations[SQ_SCHEMA_VERSION] = {
    "CREATE TABLE accounts ("
    " uin TEXT PRIMARY KEY, owner_uin TEXT NOT NULL, app_id TEXT NOT NULL,"
    " secret_id TEXT NOT NULL UNIQUE, secret_key TEXT NOT NULL, is_root INTEGER NOT NULL,"
    " policy_json TEXT, created_ms INTEGER NOT NULL);"
    "CREATE INDEX accounts_owner ON accounts(owner_uin);"
    "CREATE TABLE instances ("
    " instance_id TEXT PRIMARY KEY, product TEXT NOT NULL, region TEXT NOT NULL,"
    " uin TEXT NOT NULL, status TEXT NOT NULL, dsn TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE INDEX instances_product_uin ON instances(product, uin);"
    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY, product TEXT NOT NULL, region TEXT NOT NULL, uin TEXT NOT NULL,"
    " instance_id TEXT, type TEXT NOT NULL, on_failure TEXT NOT NULL, state TEXT NOT NULL,"
    " info TEXT, current_step INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
    " start_ms INTEGER, end_ms INTEGER,"
    " lease_node TEXT, lease_expires_ms INTEGER, lease_no INTEGER NOT NULL DEFAULT 0,"
    " phase TEXT NOT NULL DEFAULT 'do', attempt INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms INTEGER NOT NULL DEFAULT 0, pause_requested INTEGER NOT NULL DEFAULT 0,"
    " driver TEXT NOT NULL DEFAULT 'engine', input TEXT);"
    "CREATE INDEX tasks_runnable ON tasks(created_ms) WHERE state IN ('initial', 'running')"
    " AND driver = 'engine';"
    "CREATE INDEX tasks_created ON tasks(created_ms);"
    "CREATE INDEX tasks_product ON tasks(product, created_ms);"
    "CREATE INDEX tasks_uin ON tasks(uin, created_ms);"
    "CREATE INDEX tasks_state ON tasks(state, created_ms);"
    "CREATE INDEX tasks_instance ON tasks(instance_id, created_ms);"
    "CREATE TABLE task_steps ("
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
    " name TEXT NOT NULL, do_json TEXT NOT NULL, undo_json TEXT,"
    " retries INTEGER NOT NULL DEFAULT 0, timeout_s INTEGER NOT NULL DEFAULT 3600,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',"
    " 'running', 'done', 'failed', 'skipped', 'undoing', 'undone', 'undo_failed')), output TEXT,"
    " message TEXT, PRIMARY KEY (task_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE task_events ("
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, seq INTEGER NOT NULL,"
    " at_ms INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL, node TEXT NOT NULL,"
    " message TEXT, PRIMARY KEY (task_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE counters (product TEXT PRIMARY KEY, next_id INTEGER NOT NULL);",
    /* 2: the accounts an operator reserves per instance (issue 10) */
    "ALTER TABLE instances ADD COLUMN reserved_accounts TEXT NOT NULL DEFAULT '';",
    /* 3: admin tokens, by the SHA-256 of their text (issue 10); a revoked row stays, so the
     * AdminToken of an old credentials.json is not brought back at the next start */
    "CREATE TABLE tokens ("
    " id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " scope TEXT NOT NULL CHECK (scope IN ('admin', 'operator', 'reader', 'worker')),"
    " created_ms INTEGER NOT NULL, last_used_ms INTEGER, revoked_ms INTEGER);",
    /* 4: key pairs of their own, several per account, each enabled or disabled, and a disabled
     * flag per account (issue 10). Each account's one key moves into account_keys as it was
     * (sealed, or in clear from before sealing), so an old store keeps signing with it; accounts
     * is rebuilt without its key columns (SQLite cannot drop a UNIQUE column), in rowid order, so
     * the oldest root account stays the oldest. */
    "CREATE TABLE account_keys ("
    " secret_id TEXT PRIMARY KEY, uin TEXT NOT NULL, secret_key TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX account_keys_uin ON account_keys(uin, created_ms);"
    "INSERT INTO account_keys(secret_id, uin, secret_key, status, created_ms)"
    " SELECT secret_id, uin, secret_key, 'enabled', created_ms FROM accounts;"
    "CREATE TABLE accounts_v4 ("
    " uin TEXT PRIMARY KEY, owner_uin TEXT NOT NULL, app_id TEXT NOT NULL,"
    " is_root INTEGER NOT NULL, policy_json TEXT, created_ms INTEGER NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO accounts_v4(uin, owner_uin, app_id, is_root, policy_json, created_ms)"
    " SELECT uin, owner_uin, app_id, is_root, policy_json, created_ms FROM accounts ORDER BY rowid;"
    "DROP TABLE accounts;"
    "ALTER TABLE accounts_v4 RENAME TO accounts;"
    "CREATE INDEX accounts_owner ON accounts(owner_uin);",
    /* 5: one operation at a time per instance (issue 11): the claim asks whether an earlier task
     * of the candidate's product and instance is unfinished; this index holds only unfinished
     * tasks, so the answer costs a probe, not a walk through the instance's whole history. */
    "CREATE INDEX tasks_instance_open ON tasks(product, instance_id, created_ms)"
    " WHERE state IN ('initial', 'running', 'waiting', 'paused');",
    /* 6: the process group of each exec step while it runs (issue 11), so the node's next start
     * kills what a kill -9 of asyncd left behind; boot_id and start_ticks tell the group we
     * started from a later one that reuses its number. */
    "CREATE TABLE step_pgroups ("
    " node TEXT NOT NULL, pgid INTEGER NOT NULL, task_id TEXT NOT NULL,"
    " boot_id TEXT NOT NULL, start_ticks INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " PRIMARY KEY (node, pgid));",
    /* 7: remote steps pulled by workers (issue 11 item 9, store_workers.c): the kind a
     * task waits for, at which step and phase, bound to the lease_no of the handover (an operator
     * verb bumps lease_no, which ends the wait), and the result a worker recorded for the engine.
     * tasks_remote holds only waiting tasks, so a worker's claim is one index range. */
    "ALTER TABLE tasks ADD COLUMN remote_kind TEXT;"
    "ALTER TABLE tasks ADD COLUMN remote_step INTEGER;"
    "ALTER TABLE tasks ADD COLUMN remote_phase TEXT;"
    "ALTER TABLE tasks ADD COLUMN remote_lease_no INTEGER;"
    "ALTER TABLE tasks ADD COLUMN remote_result TEXT;"
    "CREATE INDEX tasks_remote ON tasks(remote_kind, created_ms)"
    " WHERE remote_kind IS NOT NULL AND state = 'running';",
    /* 8: simulated instances (issue 12, sim/sim.h): NULL for a real instance; for a simulated
     * one, the JSON object of its recorded state (accounts, parameters, backups). */
    "ALTER TABLE instances ADD COLUMN sim_state TEXT;",
    /* 9: retention and idempotent submits (issue 13 items 3 and 4). tasks_finished holds only
     * finished tasks, by end, so a retention batch (store_purge.c) is one index range.
     * idempotency_keys: the first task made with a caller's Idempotency-Key and the SHA-256 of
     * its body; a key goes with its task, and after 24 h. */
    "CREATE INDEX tasks_finished ON tasks(end_ms)"
    " WHERE state IN ('undoed', 'failed', 'success', 'killed', 'removed');"
    "CREATE TABLE idempotency_keys ("
    " scope TEXT NOT NULL, idem_key TEXT NOT NULL, body_hash TEXT NOT NULL,"
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY (scope, idem_key));"
    "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_ms);"
    "CREATE INDEX idempotency_keys_task ON idempotency_keys(task_id);",
    /* 10: webhooks (issue 13 item 2, store_webhooks.c): subscriptions (the secret sealed)
     * and the outbox of their deliveries, each row written in the transaction of the event it
     * tells of. webhook_deliveries_open holds only unfinished rows: the claim's due scan and its
     * per-(subscription, task) order check are index ranges over it. */
    "CREATE TABLE webhooks ("
    " id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,"
    " events TEXT NOT NULL CHECK (events IN ('final', 'transition')), product TEXT, uin TEXT,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE webhook_deliveries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    " task_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL, product TEXT NOT NULL,"
    " uin TEXT NOT NULL, to_state TEXT NOT NULL, info TEXT, at_ms INTEGER NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering',"
    " 'delivered', 'failed')), attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,"
    " lease_node TEXT, lease_until_ms INTEGER, last_status INTEGER, last_error TEXT,"
    " attempt_log TEXT NOT NULL DEFAULT '[]', created_ms INTEGER NOT NULL, delivered_ms INTEGER);"
    "CREATE INDEX webhook_deliveries_open ON webhook_deliveries(webhook_id, task_id, id)"
    " WHERE status IN ('pending', 'delivering');"
    "CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);"
    /* retention removes a purged task's deliveries by task (store_purge.c) */
    "CREATE INDEX webhook_deliveries_task ON webhook_deliveries(task_id);",
    /* 11: the two partial indexes whose WHERE listed more than two states, written as ORs of
     * equalities. SQLite evaluates an IN list of three or more constants through a temporary
     * b-tree built for each evaluation, and every INSERT evaluates each partial index's WHERE
     * once and every UPDATE of the state twice (old row, new row): ten temporary b-trees per
     * one-step task (EXPLAIN shows the OpenEphemeral). A microbenchmark of one insert and two
     * state updates with these two indexes: 52.7 us with IN, 21.0 us with OR. The queries that
     * use them (the claim's one-per-instance check, the retention pick) repeat the OR chain word
     * for word, which is how SQLite's planner knows a partial index applies. */
    "DROP INDEX tasks_instance_open;"
    "CREATE INDEX tasks_instance_open ON tasks(product, instance_id, created_ms) "
    "WHERE " SQ_STATES_OPEN ";"
    "DROP INDEX tasks_finished;"
    "CREATE INDEX tasks_finished ON tasks(end_ms) WHERE " SQ_STATES_FINISHED ";",
    /* 12: the same for task_steps' CHECK on its state (eight words: a temporary b-tree at every
     * step written, two per one-step task). SQLite cannot alter a CHECK, so the table is built
     * anew beside the old one, filled, and renamed over it, in the migration's transaction. */
    "CREATE TABLE task_steps_v12 ("
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
    " name TEXT NOT NULL, do_json TEXT NOT NULL, undo_json TEXT,"
    " retries INTEGER NOT NULL DEFAULT 0, timeout_s INTEGER NOT NULL DEFAULT 3600,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state = 'pending' OR state = 'running'"
    " OR state = 'done' OR state = 'failed' OR state = 'skipped' OR state = 'undoing'"
    " OR state = 'undone' OR state = 'undo_failed'), output TEXT,"
    " message TEXT, PRIMARY KEY (task_id, idx)) WITHOUT ROWID;"
    "INSERT INTO task_steps_v12(task_id, idx, name, do_json, undo_json, retries, timeout_s,"
    " state, output, message) SELECT task_id, idx, name, do_json, undo_json, retries,"
    " timeout_s, state, output, message FROM task_steps;"
    "DROP TABLE task_steps;"
    "ALTER TABLE task_steps_v12 RENAME TO task_steps;",
};

int sq_fail(struct sq_conn *c, struct err *e, const char *what)
{
    int rc = sqlite3_extended_errcode(c->db);
    int code = ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
                   ? ERR_SERVICE_UNAVAILABLE
                   : ERR_INTERNAL;
    return err_set(e, code, "store: %s: %s (sqlite error %d)", what, sqlite3_errmsg(c->db), rc);
}

int64_t sq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sq_copy(char *dst, size_t size, const unsigned char *src)
{
    snprintf(dst, size, "%s", src ? (const char *)src : "");
}

int sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

json_t *sq_col_json_text(sqlite3_stmt *st, int col)
{
    return db_json_string((const char *)sqlite3_column_text(st, col));
}

json_t *sq_col_json_int(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    return json_integer(sqlite3_column_int64(st, col));
}

int sq_stmt(struct sq_conn *c, enum sq_slot slot, const char *sql, sqlite3_stmt **out,
            struct err *e)
{
    *out = c->stmt[slot];
    if (*out)
        return 0;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK) {
        *out = NULL;
        return sq_fail(c, e, "preparing a statement");
    }
    c->stmt[slot] = *out;
    return 0;
}

void sq_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int sq_exec_slot(struct sq_conn *c, enum sq_slot slot, const char *sql, const char *what,
                 struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot, sql, &st, e);
    if (rc != 0)
        return rc;
    rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : sq_fail(c, e, what);
    sq_done(st);
    return ret;
}

int sq_begin_read(struct sq_conn *c, struct err *e)
{
    return sq_exec_slot(c, SQ_BEGIN_READ, "BEGIN", "starting a read transaction", e);
}

int sq_begin_write(struct sq_conn *c, struct err *e)
{
    return sq_exec_slot(c, SQ_BEGIN_WRITE, "BEGIN IMMEDIATE", "starting a write transaction", e);
}

int sq_commit(struct sq_conn *c, struct err *e)
{
    /* With synchronous=FULL the WAL is fsynced before COMMIT returns: only then do we report
     * success, so an acknowledged task survives a crash or power loss. */
    int rc = sq_exec_slot(c, SQ_COMMIT, "COMMIT", "committing", e);
    if (rc != 0)
        sq_rollback(c);
    return rc;
}

void sq_rollback(struct sq_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        sq_exec_slot(c, SQ_ROLLBACK, "ROLLBACK", "rolling back", NULL);
}

struct sq_conn *sq_reader_acquire(struct store_sqlite *s)
{
    unsigned start = atomic_fetch_add_explicit(&s->next_reader, 1, memory_order_relaxed);
    for (unsigned i = 0; i < SQ_READERS; i++) {
        struct sq_conn *c = &s->readers[(start + i) % SQ_READERS];
        if (pthread_mutex_trylock(&c->mu) == 0)
            return c;
    }
    struct sq_conn *c = &s->readers[start % SQ_READERS];
    pthread_mutex_lock(&c->mu);
    return c;
}

struct sq_conn *sq_writer_acquire(struct store_sqlite *s)
{
    pthread_mutex_lock(&s->writer.mu);
    return &s->writer;
}

void sq_release(struct sq_conn *c) { pthread_mutex_unlock(&c->mu); }

static void conn_close(struct sq_conn *c)
{
    for (int i = 0; i < SQ_SLOT_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    memset(c->stmt, 0, sizeof c->stmt);
    for (int i = 0; i < DB_STMT_COUNT; i++)
        sqlite3_finalize(c->db_stmt[i]);
    memset(c->db_stmt, 0, sizeof c->db_stmt);
    if (c->db)
        sqlite3_close(c->db);
    c->db = NULL;
    pthread_mutex_destroy(&c->mu);
}

/* Opens one connection with our settings; on failure c->db may be set (conn_close frees it). */
static int conn_open(struct sq_conn *c, const char *path, bool writer, struct err *e)
{
    pthread_mutex_init(&c->mu, NULL);
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    /* The writer's log writes go through store_sqlite_vfs.c, one write(2) a commit. */
    const char *vfs = writer ? sq_vfs_walbuf_name() : NULL;
    if (sqlite3_open_v2(path, &c->db, flags, vfs) != SQLITE_OK) {
        if (!c->db)
            return err_set(e, ERR_INTERNAL, "store: cannot open %s: out of memory", path);
        return err_set(e, ERR_INTERNAL,
                       "store: cannot open %s: %s (check that the data "
                       "directory exists and is writable)",
                       path, sqlite3_errmsg(c->db));
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
    /* WAL lets readers run beside the writer; synchronous=FULL fsyncs every commit (DESIGN 6).
     * secure_delete zeroes what a write frees: a secret sealed over its clear value, or erased
     * when its task ends, leaves no old bytes in the file. Debian's SQLite has it on by default;
     * other builds have it off. */
    /* temp_store=MEMORY: the statement journals of the group commit's savepoints and the
     * temporary b-trees of some UPDATEs stay in memory instead of a temp file each, which an
     * strace of the task bench showed opened and unlinked every third task. They only ever
     * undo a statement inside its transaction, so nothing durable is in them. */
    const char *pragmas = writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                   " PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                                   " PRAGMA temp_store=MEMORY;"
                                 : "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;";
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(c, e, writer ? "setting WAL mode and pragmas" : "setting pragmas");
    if (writer) {
        sqlite3_stmt *st = NULL;
        int ok = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW &&
                 strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
        sqlite3_finalize(st);
        if (!ok)
            return err_set(e, ERR_INTERNAL,
                           "store: %s cannot use WAL journaling (is it on a "
                           "network file system?)",
                           path);
    }
    return 0;
}

static int schema_version(struct sq_conn *c, int *out, struct err *e)
{
    sqlite3_stmt *st = NULL;
    const char *sql = "SELECT value FROM meta WHERE key = 'schema_version'";
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "reading the schema version");
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(c, e, "reading the schema version");
    return 0;
}

/* Creates the schema or migrates it forward, then seals the secrets an older asyncd left in
 * clear, all in one transaction. */
static int schema_migrate(struct sq_conn *c, const char *path, struct err *e)
{
    int rc = sq_begin_write(c, e);
    if (rc != 0)
        return rc;
    int version = 0;
    if (sqlite3_exec(c->db,
                     "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY,"
                     " value TEXT NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(c, e, "creating the meta table");
        goto fail;
    }
    if ((rc = schema_version(c, &version, e)) != 0)
        goto fail;
    if (version > SQ_SCHEMA_VERSION) {
        rc = err_set(e, ERR_INTERNAL,
                     "store: %s has schema version %d, newer than this asyncd "
                     "knows (%d); run a newer asyncd",
                     path, version, SQ_SCHEMA_VERSION);
        goto fail;
    }
    for (int v = version; v < SQ_SCHEMA_VERSION; v++) {
        if (sqlite3_exec(c->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof what, "migrating the schema to version %d", v + 1);
            rc = sq_fail(c, e, what);
            goto fail;
        }
    }
    if (version != SQ_SCHEMA_VERSION) {
        char *sql = xasprintf("INSERT INTO meta(key, value) VALUES('schema_version', '%d')"
                              " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                              SQ_SCHEMA_VERSION);
        int xrc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
        free(sql);
        if (xrc != SQLITE_OK) {
            rc = sq_fail(c, e, "recording the schema version");
            goto fail;
        }
    }
    /* In the migration's transaction: the store is never seen half sealed. */
    if ((rc = sq_reseal_secrets(c, e)) != 0)
        goto fail;
    return sq_commit(c, e);
fail:
    sq_rollback(c);
    return rc;
}

static void sqlite_close(struct store *base)
{
    struct store_sqlite *s = sq_of(base);
    for (int i = 0; i < SQ_READERS; i++)
        conn_close(&s->readers[i]);
    conn_close(&s->writer); /* last: the last connection to close checkpoints the WAL */
    sq_group_destroy(&s->group);
    free(s->path);
    free(s);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    STORE_DB_OPS /* the ops written once over both dialects (store_db.h) */
};

/* The database holds every SecretKey: a new file is made private (0600) before SQLite opens it,
 * and SQLite gives its -wal and -shm files the same mode. An existing file is left as it is. */
static int create_private(const char *path, struct err *e)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    else if (errno != EEXIST)
        return err_set(e, ERR_INTERNAL,
                       "store: cannot create %s: %s (check that the data "
                       "directory exists and is writable)",
                       path, strerror(errno));
    return 0;
}

/* Every write transaction has SQLite allocate and free a little memory: a bitmap per savepoint,
 * and (until migration 11) a temporary b-tree (~90 KiB of page cache) per UPDATE of a task's
 * state, for the IN list of the tasks_instance_open index's WHERE; other statements still build
 * one (a webhook delivery's CHECK). With glibc's default trim threshold each such free
 * handed the top of the thread's heap back to the kernel (madvise, a TLB shoot-down on every CPU)
 * and the next transaction faulted it in again: 12-33% of asyncd's CPU samples in the
 * one-step-task bench (perf, issue 11). A fixed threshold keeps that memory in the heap; a fixed
 * mmap threshold (which a fixed trim threshold also pins) keeps blocks below 4 MiB in it too. */
static void keep_freed_memory(void)
{
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    /* SQLite's memory statistics (on by default) take one process-wide mutex around every
     * sqlite3_malloc and free, which every connection's thread then contends on (futex calls in
     * strace of the task bench); asyncd never reads those statistics. Only possible before
     * SQLite is initialised: later it returns SQLITE_MISUSE and changes nothing. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Whether the webhooks table has a row (true when that cannot be read: the enqueue then runs). */
static bool webhooks_exist(struct sq_conn *c)
{
    sqlite3_stmt *st = NULL;
    bool none = sqlite3_prepare_v2(c->db, "SELECT EXISTS (SELECT 1 FROM webhooks)", -1, &st,
                                   NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0;
    sqlite3_finalize(st);
    return !none;
}

int store_sqlite_open(const char *path, struct store **out, struct err *e)
{
    static pthread_once_t tuned = PTHREAD_ONCE_INIT;
    pthread_once(&tuned, keep_freed_memory);
    *out = NULL;
    if (!path || !*path)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "store: empty SQLite database path");
    if (!sqlite3_threadsafe())
        return err_set(e, ERR_INTERNAL,
                       "store: this SQLite library was built without thread "
                       "support (SQLITE_THREADSAFE=0); asyncd needs it");
    struct store_sqlite *s = xcalloc(1, sizeof *s);
    s->base.ops = &sqlite_ops;
    s->base.db = &sq_db_ops;
    s->path = xstrdup(path);
    atomic_init(&s->next_reader, 0);
    sq_group_init(&s->group);
    int rc = create_private(path, e);
    if (rc == 0)
        rc = conn_open(&s->writer, path, true, e);
    else
        pthread_mutex_init(&s->writer.mu, NULL); /* so sqlite_close can destroy it */
    if (rc == 0)
        rc = schema_migrate(&s->writer, path, e);
    if (rc == 0)
        s->writer.webhooks_maybe = webhooks_exist(&s->writer);
    /* Readers open after the schema exists: a read-only connection cannot create the file. */
    for (int i = 0; i < SQ_READERS; i++) {
        if (rc == 0)
            rc = conn_open(&s->readers[i], path, false, e);
        else
            pthread_mutex_init(&s->readers[i].mu, NULL); /* so sqlite_close can destroy it */
    }
    if (rc != 0) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}
