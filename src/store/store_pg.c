/* The PostgreSQL store: URL options, the connection pool with reconnects, statements and
 * transactions, schema migrations, and the ops table. Several asyncd nodes share one database.
 *
 * URL: postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?OPTIONS]. Our own options, taken out before
 * the rest goes to libpq (which accepts its usual ones, e.g. sslmode, connect_timeout):
 *   pool=N         connections in the pool (default 8, 1..64)
 *   claim=MODE     how a worker claims a task:
 *                  skip-locked (default) up to a batch of claims in one statement, its rows
 *                                        picked FOR NO KEY UPDATE SKIP LOCKED;
 *                  update                one conditional UPDATE ... FROM (candidate) WHERE
 *                                        still-claimable RETURNING, for CockroachDB/YugabyteDB. */
#include "store/store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xalloc.h"

/* Arbitrary, fixed: every asyncd takes this advisory lock around creating/migrating the schema. */
#define PG_MIGRATE_LOCK "7310582834053489" /* "asyncd1" in ASCII, read as a number */

/* Schema migrations: migrations[v] takes the schema from version v to v + 1. Only ever append.
 * The same tables as the SQLite store; times are Unix ms; job_id numbers tasks in creation
 * order (SQLite's rowid). */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    "CREATE TABLE accounts ("
    " uin TEXT PRIMARY KEY, owner_uin TEXT NOT NULL, app_id TEXT NOT NULL,"
    " secret_id TEXT NOT NULL UNIQUE, secret_key TEXT NOT NULL, is_root INTEGER NOT NULL,"
    " policy_json TEXT, created_ms BIGINT NOT NULL);"
    "CREATE INDEX accounts_owner ON accounts(owner_uin);"
    "CREATE TABLE instances ("
    " instance_id TEXT PRIMARY KEY, product TEXT NOT NULL, region TEXT NOT NULL,"
    " uin TEXT NOT NULL, status TEXT NOT NULL, dsn TEXT NOT NULL,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE INDEX instances_product_uin ON instances(product, uin);"
    "CREATE TABLE tasks ("
    " job_id BIGSERIAL NOT NULL UNIQUE,"
    " id TEXT PRIMARY KEY, product TEXT NOT NULL, region TEXT NOT NULL, uin TEXT NOT NULL,"
    " instance_id TEXT, type TEXT NOT NULL, on_failure TEXT NOT NULL, state TEXT NOT NULL,"
    " info TEXT, current_step INTEGER NOT NULL DEFAULT 0, created_ms BIGINT NOT NULL,"
    " start_ms BIGINT, end_ms BIGINT,"
    " lease_node TEXT, lease_expires_ms BIGINT, lease_no BIGINT NOT NULL DEFAULT 0,"
    " phase TEXT NOT NULL DEFAULT 'do', attempt INTEGER NOT NULL DEFAULT 0,"
    " not_before_ms BIGINT NOT NULL DEFAULT 0, pause_requested INTEGER NOT NULL DEFAULT 0,"
    " driver TEXT NOT NULL DEFAULT 'engine', input TEXT);"
    "CREATE INDEX tasks_runnable ON tasks(created_ms, job_id) WHERE state IN ('initial',"
    " 'running') AND driver = 'engine';"
    "CREATE INDEX tasks_created ON tasks(created_ms, job_id);"
    "CREATE INDEX tasks_product ON tasks(product, created_ms);"
    "CREATE INDEX tasks_uin ON tasks(uin, created_ms);"
    "CREATE INDEX tasks_state ON tasks(state, created_ms);"
    "CREATE INDEX tasks_instance ON tasks(instance_id, created_ms);"
    "CREATE INDEX tasks_lease_node ON tasks(lease_node) WHERE lease_node IS NOT NULL;"
    "CREATE TABLE task_steps ("
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
    " name TEXT NOT NULL, do_json TEXT NOT NULL, undo_json TEXT,"
    " retries BIGINT NOT NULL DEFAULT 0, timeout_s BIGINT NOT NULL DEFAULT 3600,"
    " state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending',"
    " 'running', 'done', 'failed', 'skipped', 'undoing', 'undone', 'undo_failed')), output TEXT,"
    " message TEXT, PRIMARY KEY (task_id, idx));"
    "CREATE TABLE task_events ("
    " task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, seq BIGINT NOT NULL,"
    " at_ms BIGINT NOT NULL, from_state TEXT, to_state TEXT NOT NULL, node TEXT NOT NULL,"
    " message TEXT, PRIMARY KEY (task_id, seq));"
    "CREATE TABLE counters (product TEXT PRIMARY KEY, next_id BIGINT NOT NULL);",
    /* 2: the accounts an operator reserves per instance (issue 10) */
    "ALTER TABLE instances ADD COLUMN reserved_accounts TEXT NOT NULL DEFAULT '';",
    /* 3: admin tokens, by the SHA-256 of their text (issue 10); a revoked row stays, so the
     * AdminToken of an old credentials.json is not brought back at the next start */
    "CREATE TABLE tokens ("
    " id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " scope TEXT NOT NULL CHECK (scope IN ('admin', 'operator', 'reader', 'worker')),"
    " created_ms BIGINT NOT NULL, last_used_ms BIGINT, revoked_ms BIGINT);",
    /* 4: key pairs of their own, several per account, each enabled or disabled, and a disabled
     * flag per account (issue 10). Each account's one key moves into account_keys as it was
     * (sealed, or in clear from before sealing), so an old store keeps signing with it. A node
     * still running an older asyncd fails its account reads from here on (the columns are
     * gone) rather than honour a key an operator disabled: upgrade every node. */
    "CREATE TABLE account_keys ("
    " secret_id TEXT PRIMARY KEY, uin TEXT NOT NULL, secret_key TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),"
    " created_ms BIGINT NOT NULL);"
    "CREATE INDEX account_keys_uin ON account_keys(uin, created_ms);"
    "INSERT INTO account_keys(secret_id, uin, secret_key, status, created_ms)"
    " SELECT secret_id, uin, secret_key, 'enabled', created_ms FROM accounts;"
    "ALTER TABLE accounts DROP COLUMN secret_id, DROP COLUMN secret_key,"
    " ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;",
    /* 5: one operation at a time per instance (issue 11): the claim asks whether an earlier task
     * of the candidate's product and instance is unfinished; this index holds only unfinished
     * tasks, so the answer costs a probe, not a walk through the instance's whole history. */
    "CREATE INDEX tasks_instance_open ON tasks(product, instance_id, created_ms, job_id)"
    " WHERE state IN ('initial', 'running', 'waiting', 'paused');",
    /* 6: the process group of each exec step while it runs (issue 11), so the node's next start
     * kills what a kill -9 of asyncd left behind; boot_id and start_ticks tell the group we
     * started from a later one that reuses its number. Rows name their node: only a node with
     * that --node-id (on the machine that ran the step) acts on them. */
    "CREATE TABLE step_pgroups ("
    " node TEXT NOT NULL, pgid BIGINT NOT NULL, task_id TEXT NOT NULL,"
    " boot_id TEXT NOT NULL, start_ticks BIGINT NOT NULL, created_ms BIGINT NOT NULL,"
    " PRIMARY KEY (node, pgid));",
    /* 7: remote steps pulled by workers (issue 11 item 9, store_workers.c): the kind a task
     * waits for, at which step and phase, bound to the lease_no of the handover (an operator
     * verb bumps lease_no, which ends the wait), and the result a worker recorded for the engine.
     * tasks_remote holds only waiting tasks, so a worker's claim is one index range. */
    "ALTER TABLE tasks ADD COLUMN remote_kind TEXT, ADD COLUMN remote_step INTEGER,"
    " ADD COLUMN remote_phase TEXT, ADD COLUMN remote_lease_no BIGINT,"
    " ADD COLUMN remote_result TEXT;"
    "CREATE INDEX tasks_remote ON tasks(remote_kind, created_ms, job_id)"
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
    " created_ms BIGINT NOT NULL, PRIMARY KEY (scope, idem_key));"
    "CREATE INDEX idempotency_keys_created ON idempotency_keys(created_ms);"
    "CREATE INDEX idempotency_keys_task ON idempotency_keys(task_id);",
    /* 10: webhooks (issue 13 item 2, store_webhooks.c): subscriptions (the secret sealed)
     * and the outbox of their deliveries, each row written in the transaction of the event it
     * tells of. webhook_deliveries_open holds only unfinished rows: the claim's due scan and its
     * per-(subscription, task) order check are index ranges over it. */
    "CREATE TABLE webhooks ("
    " id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,"
    " events TEXT NOT NULL CHECK (events IN ('final', 'transition')), product TEXT, uin TEXT,"
    " created_ms BIGINT NOT NULL);"
    "CREATE TABLE webhook_deliveries ("
    " id BIGSERIAL PRIMARY KEY,"
    " webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,"
    " task_id TEXT NOT NULL, seq BIGINT NOT NULL, event TEXT NOT NULL, product TEXT NOT NULL,"
    " uin TEXT NOT NULL, to_state TEXT NOT NULL, info TEXT, at_ms BIGINT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivering',"
    " 'delivered', 'failed')), attempts INTEGER NOT NULL DEFAULT 0, next_ms BIGINT NOT NULL,"
    " lease_node TEXT, lease_until_ms BIGINT, last_status INTEGER, last_error TEXT,"
    " attempt_log TEXT NOT NULL DEFAULT '[]', created_ms BIGINT NOT NULL, delivered_ms BIGINT);"
    "CREATE INDEX webhook_deliveries_open ON webhook_deliveries(webhook_id, task_id, id)"
    " WHERE status IN ('pending', 'delivering');"
    "CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id);"
    /* retention removes a purged task's deliveries by task (store_purge.c) */
    "CREATE INDEX webhook_deliveries_task ON webhook_deliveries(task_id);",
};

/* ---- small helpers ---- */

int64_t pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pp_text(struct pg_params *p, const char *s)
{
    if (p->n < PG_MAX_PARAMS)
        p->v[p->n++] = s;
}

void pp_int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_MAX_PARAMS)
        return;
    snprintf(p->buf[p->n], sizeof p->buf[p->n], "%lld", (long long)v);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

void pp_bool(struct pg_params *p, bool v) { pp_text(p, v ? "t" : "f"); }

const char *pg_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t pg_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool pg_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

void pg_copy(char *dst, size_t size, const char *src) { snprintf(dst, size, "%s", src ? src : ""); }

json_t *pg_json_text(const PGresult *r, int row, int col)
{
    const char *s = pg_str(r, row, col);
    return s ? json_string(s) : json_null(); /* the server holds UTF-8 only */
}

json_t *pg_json_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_integer(pg_int(r, row, col));
}

json_t *pg_json_value(const PGresult *r, int row, int col)
{
    const char *s = pg_str(r, row, col);
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
               : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xE0 && s[1] < 0xA0) || (n == 3 && s[0] == 0xED && s[1] >= 0xA0) ||
        (n == 4 && s[0] == 0xF0 && s[1] < 0x90) || (n == 4 && s[0] == 0xF4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* PostgreSQL refuses text that is not UTF-8, which SQLite keeps (a message copied from some
 * program's output): such a value is sent with each bad byte as '?'. NULL when s is fine. */
static char *utf8_fixed(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;
    while (*p && (n = utf8_seq(p)) != 0)
        p += n;
    if (!*p)
        return NULL;
    char *copy = xstrdup(s);
    unsigned char *q = (unsigned char *)copy + (p - (const unsigned char *)s);
    while (*q) {
        n = utf8_seq(q);
        if (n == 0)
            *q++ = '?';
        else
            q += n;
    }
    return copy;
}

/* ---- executing statements ---- */

/* Connection-class SQLSTATEs: the server went away (08xxx), or is shutting down (57P01
 * admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now). */
static bool sqlstate_is_connection(const char *state)
{
    return state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
                     strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0);
}

static int unreachable(struct pg_conn *c, struct err *e)
{
    return err_set(e, ERR_SERVICE_UNAVAILABLE, "the PostgreSQL store is unreachable: %s; retry",
                   c->last_error[0] ? c->last_error : "no connection");
}

/* Keeps the first line of libpq's message (they end in a newline, some have a second line). */
static void keep_error(struct pg_conn *c, const char *msg)
{
    snprintf(c->last_error, sizeof c->last_error, "%s", msg && *msg ? msg : "connection lost");
    c->last_error[strcspn(c->last_error, "\n")] = '\0';
}

/* Sorts a failed result into our codes (see pg_exec). Takes r (and clears it). */
static int classify(struct pg_conn *c, PGresult *r, const char *what, struct err *e)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->conn);
    int rc;
    if (PQstatus(c->conn) != CONNECTION_OK || sqlstate_is_connection(state) || !r) {
        keep_error(c, msg && *msg ? msg : PQerrorMessage(c->conn));
        c->broken = true;
        rc = unreachable(c, e);
    } else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        rc = PG_RETRY;
        err_set(e, ERR_SERVICE_UNAVAILABLE, "store: %s: %s", what, msg);
    } else if (state && strcmp(state, "23505") == 0) {
        const char *name = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
        snprintf(c->violated, sizeof c->violated, "%s", name ? name : "");
        rc = err_set(e, ERR_ALREADY_EXISTS, "store: %s: %s", what, msg);
    } else {
        rc = err_set(e, ERR_INTERNAL, "store: %s: %s (SQLSTATE %s)", what, msg,
                     state ? state : "none");
    }
    if (e)
        e->msg[strcspn(e->msg, "\n")] = '\0';
    PQclear(r);
    return rc;
}

static int finish(struct pg_conn *c, PGresult *r, PGresult **out, const char *what, struct err *e)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return 0;
    }
    return classify(c, r, what, e);
}

/* Prepares sql as name on c at its first use there (each connection once). */
static int prepare(struct pg_conn *c, const char *name, const char *sql, bool *prepared,
                   struct err *e)
{
    if (*prepared)
        return 0;
    int rc = finish(c, PQprepare(c->conn, name, sql, 0, NULL), NULL, "preparing a statement", e);
    *prepared = rc == 0;
    return rc;
}

/* Runs sql (prepared as name when name is not NULL) with p's values made valid UTF-8. */
static int exec_any(struct pg_conn *c, const char *name, const char *sql, bool *prepared,
                    const struct pg_params *p, PGresult **out, const char *what, struct err *e)
{
    if (out)
        *out = NULL;
    const char *vals[PG_MAX_PARAMS] = {0};
    char *fixed[PG_MAX_PARAMS] = {0};
    int n = p ? p->n : 0;
    for (int i = 0; i < n; i++) {
        fixed[i] = p->v[i] ? utf8_fixed(p->v[i]) : NULL;
        vals[i] = fixed[i] ? fixed[i] : p->v[i];
    }
    PGresult *r = NULL;
    int rc = name ? prepare(c, name, sql, prepared, e) : 0;
    if (rc == 0)
        r = name ? PQexecPrepared(c->conn, name, n, vals, NULL, NULL, 0)
                 : PQexecParams(c->conn, sql, n, NULL, vals, NULL, NULL, 0);
    for (int i = 0; i < n; i++)
        free(fixed[i]);
    return rc != 0 ? rc : finish(c, r, out, what, e);
}

int pg_exec_prepared(struct pg_conn *c, const char *name, const char *sql, bool *prepared,
                     const struct pg_params *p, PGresult **out, const char *what, struct err *e)
{
    return exec_any(c, name, sql, prepared, p, out, what, e);
}

int pg_exec_sql(struct pg_conn *c, const char *sql, const struct pg_params *p, PGresult **out,
                const char *what, struct err *e)
{
    return exec_any(c, NULL, sql, NULL, p, out, what, e);
}

/* A simple-protocol command (BEGIN, COMMIT, the migrations: several statements at once). */
static int run_simple(struct pg_conn *c, const char *sql, const char *what, struct err *e)
{
    return finish(c, PQexec(c->conn, sql), NULL, what, e);
}

/* ---- the pool ---- */

/* Server notices ("relation ... already exists, skipping") go to the debug log, not stderr. */
static void notice_to_log(void *arg, const char *msg)
{
    (void)arg;
    log_debug("store: PostgreSQL says: %.*s", (int)strcspn(msg, "\n"), msg);
}

static PGconn *connect_one(const struct store_pg *s)
{
    /* Earlier keywords are defaults the URL (expanded from dbname) may override. */
    const char *const keys[] = {"connect_timeout", "application_name", "client_encoding", "dbname",
                                NULL};
    const char *const vals[] = {"5", "asyncd", "UTF8", s->conninfo, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

/* Makes c usable: connects (again) when it never was or broke, unless its backoff has not run
 * out yet; statements are prepared again on the new session as they are used. */
static int conn_ready(struct store_pg *s, struct pg_conn *c, struct err *e)
{
    if (c->conn && !c->broken && PQstatus(c->conn) == CONNECTION_OK)
        return 0;
    int64_t now = mono_ms();
    if (now < c->next_try_ms)
        return unreachable(c, e);
    if (c->conn)
        PQfinish(c->conn);
    c->conn = connect_one(s);
    PQsetNoticeProcessor(c->conn, notice_to_log, NULL);
    int rc = 0;
    if (PQstatus(c->conn) != CONNECTION_OK) {
        keep_error(c, PQerrorMessage(c->conn));
        rc = unreachable(c, e);
    } else {
        c->broken = false;
        memset(c->db_prepared, 0, sizeof c->db_prepared); /* a new session has none */
    }
    if (rc == 0) {
        if (c->backoff_ms)
            log_info("store: PostgreSQL connection restored");
        c->backoff_ms = 0;
        c->next_try_ms = 0;
        return 0;
    }
    PQfinish(c->conn);
    c->conn = NULL;
    c->broken = true;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
    if (c->backoff_ms > PG_BACKOFF_MAX_MS)
        c->backoff_ms = PG_BACKOFF_MAX_MS;
    c->next_try_ms = mono_ms() + c->backoff_ms;
    return rc;
}

/* A free connection: a healthy one first, else one due for a reconnect, else any (which
 * answers ServiceUnavailable at once rather than waiting out its backoff). */
static struct pg_conn *pool_take(struct store_pg *s)
{
    pthread_mutex_lock(&s->mu);
    struct pg_conn *pick = NULL;
    for (;;) {
        int64_t now = mono_ms();
        int best = 0;
        for (int i = 0; i < s->pool_size; i++) {
            struct pg_conn *c = &s->conns[i];
            if (c->busy)
                continue;
            int score = c->conn && !c->broken ? 3 : now >= c->next_try_ms ? 2 : 1;
            if (score > best)
                best = score, pick = c;
        }
        if (pick)
            break;
        pthread_cond_wait(&s->freed, &s->mu);
    }
    pick->busy = true;
    pthread_mutex_unlock(&s->mu);
    return pick;
}

static void pool_give(struct store_pg *s, struct pg_conn *c)
{
    pthread_mutex_lock(&s->mu);
    c->busy = false;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
}

static const char *const tx_begin[] = {
    [PG_TX_WRITE] = "BEGIN",
    [PG_TX_SNAPSHOT] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
};

static int run_once(struct pg_conn *c, enum pg_tx kind,
                    int (*fn)(struct pg_conn *, void *, struct err *), void *ctx, struct err *e)
{
    if (kind == PG_TX_NONE)
        return fn(c, ctx, e);
    int rc = run_simple(c, tx_begin[kind], "starting a transaction", e);
    if (rc == 0)
        rc = fn(c, ctx, e);
    /* Only after COMMIT returns is a write acknowledged: the server has made it durable. */
    if (rc == 0)
        return run_simple(c, "COMMIT", "committing", e);
    if (!c->broken)
        run_simple(c, "ROLLBACK", "rolling back", NULL);
    return rc;
}

int pg_run(struct store *base, enum pg_tx kind, int (*fn)(struct pg_conn *, void *, struct err *),
           void *ctx, struct err *e)
{
    struct store_pg *s = pg_of(base);
    struct pg_conn *c = pool_take(s);
    int rc = conn_ready(s, c, e);
    for (int attempt = 0; rc == 0 && attempt < PG_TX_ATTEMPTS; attempt++) {
        rc = run_once(c, kind, fn, ctx, e);
        if (rc != PG_RETRY)
            break;
        struct timespec pause = {0, (attempt + 1) * 5 * 1000000L}; /* let the other one finish */
        nanosleep(&pause, NULL);
    }
    if (rc == PG_RETRY)
        rc = err_set(e, ERR_SERVICE_UNAVAILABLE,
                     "store: transaction kept conflicting with "
                     "concurrent ones (%d attempts); retry",
                     PG_TX_ATTEMPTS);
    pool_give(s, c);
    return rc;
}

/* ---- schema ---- */

static int migrate_tx(struct pg_conn *c, void *ctx, struct err *e)
{
    (void)ctx;
    /* Held until commit: nodes starting at once create the schema one after another, and the
     * later ones find it done. */
    int rc = run_simple(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")",
                        "taking the migration lock", e);
    if (rc == 0)
        rc = run_simple(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                        "creating the schema_version table", e);
    PGresult *r = NULL;
    if (rc == 0)
        rc = pg_exec_sql(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version", NULL, &r,
                         "reading the schema version", e);
    if (rc != 0)
        return rc;
    int version = (int)pg_int(r, 0, 0);
    PQclear(r);
    if (version > PG_SCHEMA_VERSION)
        return err_set(e, ERR_INTERNAL,
                       "store: the PostgreSQL database has schema version %d, "
                       "newer than this asyncd knows (%d); run a newer asyncd",
                       version, PG_SCHEMA_VERSION);
    for (int v = version; v < PG_SCHEMA_VERSION && rc == 0; v++) {
        char what[64];
        snprintf(what, sizeof what, "migrating the schema to version %d", v + 1);
        rc = run_simple(c, migrations[v], what, e);
    }
    if (rc == 0 && version != PG_SCHEMA_VERSION) {
        char *sql = xasprintf("DELETE FROM schema_version; INSERT INTO schema_version VALUES(%d)",
                              PG_SCHEMA_VERSION);
        rc = run_simple(c, sql, "recording the schema version", e);
        free(sql);
    }
    /* Still under the lock, in the same transaction: nodes starting together seal each clear
     * secret once, and none sees the store half sealed. */
    if (rc == 0)
        rc = pg_reseal_secrets(c, e);
    return rc;
}

/* ---- open, close ---- */

/* Takes our options out of url's query string into s; the rest stays for libpq. */
static int parse_url(struct store_pg *s, const char *url, struct err *e)
{
    s->pool_size = PG_POOL_DEFAULT;
    s->claim_mode = PG_CLAIM_SKIP_LOCKED;
    const char *q = strchr(url, '?');
    if (!q) {
        s->conninfo = xstrdup(url);
        return 0;
    }
    /* The kept options are appended in place: the result is never longer than the URL (a
     * rebuild per option was quadratic, 9 s for 10,000 options; found by fuzz_store_url). */
    size_t base_len = (size_t)(q - url), len = base_len;
    char *rest = xmalloc(strlen(url) + 1);
    memcpy(rest, url, base_len);
    rest[len] = '\0';
    char *query = xstrdup(q + 1);
    char *save = NULL;
    int rc = 0, kept = 0;
    for (char *kv = strtok_r(query, "&", &save); kv && rc == 0; kv = strtok_r(NULL, "&", &save)) {
        if (strncmp(kv, "pool=", 5) == 0) {
            char *end;
            long n = strtol(kv + 5, &end, 10);
            if (*end || n < 1 || n > PG_POOL_MAX)
                rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                             "store: pool=%s: expected a number "
                             "of connections from 1 to %d",
                             kv + 5, PG_POOL_MAX);
            s->pool_size = (int)n;
        } else if (strncmp(kv, "claim=", 6) == 0) {
            if (strcmp(kv + 6, "update") == 0)
                s->claim_mode = PG_CLAIM_ONE_UPDATE;
            else if (strcmp(kv + 6, "skip-locked") == 0)
                s->claim_mode = PG_CLAIM_SKIP_LOCKED;
            else
                rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                             "store: claim=%s: expected "
                             "\"skip-locked\" (the default) or \"update\"",
                             kv + 6);
        } else {
            size_t n = strlen(kv);
            rest[len++] = kept++ ? '&' : '?';
            memcpy(rest + len, kv, n + 1);
            len += n;
        }
    }
    free(query);
    s->conninfo = rest;
    return rc;
}

static void pg_close(struct store *base)
{
    struct store_pg *s = pg_of(base);
    for (int i = 0; s->conns && i < s->pool_size; i++)
        if (s->conns[i].conn)
            PQfinish(s->conns[i].conn);
    free(s->conns);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->mu);
    free(s->conninfo);
    free(s);
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    STORE_DB_OPS /* the ops written once over both dialects (store_db.h) */
};

int store_pg_open(const char *url, struct store **out, struct err *e)
{
    *out = NULL;
    if (!PQisthreadsafe())
        return err_set(e, ERR_INTERNAL,
                       "store: this libpq was built without thread support; "
                       "asyncd needs it");
    struct store_pg *s = xcalloc(1, sizeof *s);
    s->base.ops = &pg_ops;
    s->base.db = &pg_db_ops;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    int rc = parse_url(s, url, e);
    if (s->claim_mode == PG_CLAIM_ONE_UPDATE)
        s->base.db = &pg_db_ops_no_skip_locked; /* the claims take one task a statement */
    if (rc == 0) {
        s->conns = xcalloc((size_t)s->pool_size, sizeof *s->conns);
        /* The first connection creates or migrates the schema; the others connect at first use. */
        rc = pg_run(&s->base, PG_TX_WRITE, migrate_tx, NULL, e);
    }
    if (rc != 0) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}
