/* The store's backend primitives: one transaction logic over SQLite and PostgreSQL. A
 * transaction (store_purge.c, store_tokens.c, ...) is written once against a handle that runs
 * "statement N with these typed values" and reads rows by column; each dialect keeps the SQL text
 * of statement N in a table (store_sqlite_sql.c, store_pg_sql.c) and implements the handle
 * (store_sqlite_db.c over the group-committed writer, store_pg_db.c over a pooled connection).
 *
 * Where one dialect does in one statement what the other does in several (PostgreSQL's CTEs),
 * the logic asks the handle for a capability (db_has) and runs either path, rather than a slot
 * holding a multi-statement script: a script cannot return the rows of its middle statements, and
 * its binds and control flow (a loop over steps, a check between statements) would be a second
 * copy of the logic hidden in SQL text. With a capability both paths stay in the one logic file,
 * each statement stays one prepared statement, and a test can force either path. */
#ifndef ASYNCD_STORE_DB_H
#define ASYNCD_STORE_DB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "store/store.h" /* STORE_ID_MAX */
#include "task/task_state.h"

struct store;

/* The shared statements. Each dialect's table has the SQL of every slot, in its own parameter
 * syntax (?1 / $1::type), the values bound in the order the slot's comment lists. A dialect's
 * SQL may leave out trailing values: the node's clock ("now") comes last where PostgreSQL judges
 * leases by the database's clock instead (DESIGN.md 5) and SQLite, one process, by the node's. */
enum db_stmt {
    /* accounts and their key pairs (store_accounts.c); secret_key is sealed, flags are integers
     * 0/1; "locked" as for the moves below */
    DB_ACCOUNT_COUNT,        /* () -> count */
    DB_ACCOUNT_INSERT,       /* (uin, owner_uin, app_id, is_root, policy_json or NULL, disabled,
                                now_ms) */
    DB_ACCOUNT_BY_SECRET,    /* (secret_id) -> uin, owner_uin, app_id, secret_id, secret_key,
                                is_root, policy_json, disabled, its root's disabled (0 for a root),
                                the key's status */
    DB_ACCOUNT_BY_UIN,       /* (uin) -> as DB_ACCOUNT_BY_SECRET with its first enabled key, else
                                its first key (oldest, then SecretId in byte order), else NULLs */
    DB_ACCOUNT_SET_POLICY,   /* (uin, policy_json or NULL) */
    DB_ACCOUNT_SET_DISABLED, /* (uin, disabled) */
    DB_ACCOUNT_LOCK,         /* (uin) -> uin, when the account exists; locked */
    DB_ACCOUNT_ROOT_LOCK,    /* (): the first start's cluster-wide lock, until the transaction
                                ends; not with DB_CAP_ONE_WRITER */
    DB_ACCOUNT_FIRST_ROOT,   /* () -> uin of the oldest root account */
    DB_KEY_INSERT,           /* (secret_id, uin, secret_key, now_ms): an enabled key */
    DB_KEY_COUNT,            /* (uin) -> the account's keys */
    DB_KEY_LIST,             /* (uin) -> secret_id, status, created_ms: oldest first, then
                                SecretId in byte order; one row of NULLs for an account without
                                keys, none for no account */
    DB_KEY_STATUS,           /* (uin, secret_id) -> status; locked (FOR UPDATE: it may go) */
    DB_KEY_SET_STATUS,       /* (uin, secret_id, 'enabled' or 'disabled') */
    DB_KEY_DELETE,           /* (secret_id) */
    /* moves outside a lease (store_moves.c); "locked": the row is locked until the transaction
     * ends, on PostgreSQL (FOR NO KEY UPDATE); SQLite's one writer needs no lock */
    DB_MOVE_READ,      /* (id) -> state, current_step; locked */
    DB_MOVE_STEP_MARK, /* (id, idx, state, message or NULL to keep the step's); changes = 0 when
                          there is no such step */
    DB_MOVE_UPDATE,    /* (id, state, to_running, to_final, now_ms, info or NULL, step_advance):
                          start_ms set at the first RUNNING, end_ms at a final state */
    DB_CONTROL_READ,   /* (id) -> state, current_step, lease_no, lease_expires_ms (0: none),
                          external (0/1), undoing (0/1); locked */
    DB_CONTROL_STEP,   /* (id, idx, state, message (NULL keeps, '' clears), only_if state or
                          NULL) */
    DB_CONTROL_UPDATE, /* (id, state, to_final, now_ms, step_delta, phase or NULL, reset_attempt,
                          release the lease, pause_requested, lease_bump) */
    /* a task's next event (store_events.c) */
    DB_EVENT_INSERT,        /* (id, now_ms, from state or NULL, to state, node, message): seq is
                               the task's last + 1 */
    DB_STEPS_SECRETS_READ,  /* (id) -> idx, do_json, undo_json */
    DB_STEPS_SECRETS_ERASE, /* (id, idx, do_json or NULL to keep, undo_json or NULL to keep) */
    DB_WEBHOOK_ENQUEUE,     /* (id, now_ms, to_final, to state): a delivery per subscription the
                               task's latest event matches */
    /* one task (store_task_get.c) */
    DB_TASK_ROW,        /* (id) -> STORE_TASK_COLS (store_plan.h) */
    DB_TASK_STEPS,      /* (id) -> idx, name, do_json, undo_json, retries, timeout_s, state,
                           message, output; by idx */
    DB_TASK_EVENTS,     /* (id) -> seq, at_ms, from_state, to_state, node, message; by seq */
    DB_TASK_LAST_EVENT, /* (id) -> as DB_TASK_EVENTS, the latest only */
    DB_TASK_LOAD,       /* (id, with steps, with the latest event) -> the task's columns, a
                           step's, the event's; a row a step; only with DB_CAP_ROUND_TRIPS */
    /* the task create (store_task_create.c); the row's values (DB_SQL_TASK_NEW_COLS): id,
     * product, region, uin, instance_id, type, on_failure, state, created_ms, driver, input */
    DB_COUNTER_NEXT, /* (product, first id + 1) -> the product's next number */
    DB_TASK_INSERT,  /* (the row's values): changes = 0 when the id is taken; not with
                        DB_CAP_WRITE_CTE */
    DB_STEP_INSERT,  /* (id, idx, name, do_json, undo_json, retries, timeout_s); not with
                        DB_CAP_WRITE_CTE */
    DB_TASK_CREATE,  /* (the row's values, steps as a JSON array of {idx, name, do_json,
                        undo_json, retries, timeout_s}, node) -> id: the row, its steps, its
                        creation event and webhook deliveries in one statement; no row when the id
                        is taken; only with DB_CAP_WRITE_CTE */
    DB_IDEM_LOCK,    /* (scope, key): creations with one key one after another, until the
                        transaction ends; not with DB_CAP_ONE_WRITER */
    DB_IDEM_READ,    /* (scope, key) -> body_hash, task_id, created_ms */
    DB_IDEM_PUT,     /* (scope, key, body_hash, task_id, now_ms): inserted or replaced */
    /* leases (store_leases.c); now = the node's clock, which PostgreSQL's SQL leaves out */
    DB_LEASE_RENEW,     /* (id, lease_no, lease_ms, now) -> pause_requested: a row when the
                           lease is still the holder's */
    DB_NODE_RENEW,      /* (node, lease_ms, now) -> id, lease_no, pause_requested: every live
                           lease of the node */
    DB_NODE_RENEW_ONLY, /* (node, lease_ms, [[id, lease_no], ...] as JSON, now) -> as
                           DB_NODE_RENEW, of the listed leases only */
    DB_RELEASE_NODE,    /* (node): its running tasks' leases expire at once */
    /* the summary Describe answers from (store_summary.c) */
    DB_TASK_SUMMARY, /* (id, product) -> id, product, region, uin, instance_id, state, info,
                        created_ms, start_ms, end_ms, lease_no, simulated (0/1) */
    /* retention (store_purge.c) */
    DB_PURGE_PICK,        /* (before_ms, max) -> id: finished tasks, oldest first, locked */
    DB_PURGE_STEPS,       /* (ids as a JSON array): rows of those tasks */
    DB_PURGE_EVENTS,      /* (ids) */
    DB_PURGE_PGROUPS,     /* (ids) */
    DB_PURGE_KEYS_OF,     /* (ids) */
    DB_PURGE_DELIVERIES,  /* (ids) */
    DB_PURGE_TASKS,       /* (ids) */
    DB_PURGE_KEYS_BEFORE, /* (before_ms, max): expired idempotency keys; changes = keys */
    /* process groups (store_pgroups.c) */
    DB_PGROUP_RECORD, /* (node, pgid, task_id, boot_id, start_ticks, now_ms): insert or replace */
    DB_PGROUP_CLEAR,  /* (node, pgid) */
    DB_PGROUP_LIST,   /* (node) -> pgid, task_id, boot_id, start_ticks */
    /* instances (store_instances.c); dsn sealed; a NULL value in an update = unchanged */
    DB_INSTANCE_INSERT, /* (product, instance_id, region, uin, status, dsn, reserved_accounts,
                           simulated 0/1, now_ms) */
    DB_INSTANCE_GET,    /* (instance_id, product or NULL = any) -> product, instance_id, region,
                           uin, status, dsn, reserved_accounts, simulated (integer 0/1) */
    DB_INSTANCE_UPDATE, /* (instance_id, status, dsn, reserved_accounts, now_ms) */
    DB_INSTANCE_LIST,   /* (product or NULL, uin or NULL) -> as DB_INSTANCE_GET, oldest first */
    /* simulation (store_sim.c) */
    DB_SIM_STATE_GET,       /* (instance_id, product) -> sim_state */
    DB_SIM_STATE_SET,       /* (instance_id, product, state_json, now_ms) */
    DB_SIM_RESET_STEPS,     /* () */
    DB_SIM_RESET_EVENTS,    /* () */
    DB_SIM_RESET_TASKS,     /* (): changes = tasks */
    DB_SIM_RESET_INSTANCES, /* (): changes = instances */
    /* admin tokens (store_tokens.c) */
    DB_TOKEN_INSERT,  /* (id, name, scope, hash, created_ms) */
    DB_TOKEN_LIST,    /* () -> id, name, scope, hash, created_ms, last_used_ms */
    DB_TOKEN_REVOKE,  /* (id, now_ms) */
    DB_TOKEN_TOUCH,   /* (id, used_ms) */
    DB_TOKEN_BY_HASH, /* (hash) -> as DB_TOKEN_LIST */
    /* remote steps (store_workers.c); now = the node's clock, unused by PostgreSQL's SQL
     * where it says "db clock" */
    DB_WORKER_LEASE_ROW,    /* (id, now) -> state, lease_no, lease_expires_ms, lease_node,
                               remote_step, remote_phase, the lease clock (db clock); row locked */
    DB_WORKER_HANDOVER,     /* (id, kind, step, phase) */
    DB_WORKER_RESULT_READ,  /* (id, lease_no) -> remote_result, of a running task; row locked */
    DB_WORKER_RESULT_CLEAR, /* (id) */
    DB_WORKER_PICK,         /* (kinds as a JSON array, now, max) -> id: waiting, oldest first */
    DB_WORKER_TAKE,         /* (id, owner, lease_ms, now) -> lease_no, remote_step, remote_phase,
                               attempt, input, lease_expires_ms, step name, step action */
    DB_WORKER_BEAT,         /* (id, lease_ms, now) -> pause_requested, lease_expires_ms */
    DB_WORKER_REPORT,       /* (id, result) */
    /* webhooks (store_webhooks.c) */
    DB_WEBHOOK_INSERT,     /* (id, url, sealed secret, events, product, uin, created_ms) */
    DB_WEBHOOK_LIST,       /* () -> id, url, events, product, uin, created_ms */
    DB_WEBHOOK_GET,        /* (id) -> as DB_WEBHOOK_LIST */
    DB_WEBHOOK_COUNTS,     /* (id) -> status, count */
    DB_WEBHOOK_DELETE,     /* (id) */
    DB_WEBHOOK_DELIVERIES, /* (id, task or NULL, limit) -> the delivery columns, newest first */
    DB_DELIVERY_DUE,       /* (now) -> 1 when any delivery is due */
    DB_DELIVERY_PICK,      /* (now, per_webhook, max) -> id; not with DB_CAP_WRITE_CTE */
    DB_DELIVERY_TAKE,      /* (id, node, lease_until); not with DB_CAP_WRITE_CTE */
    DB_DELIVERY_READ,      /* (id) -> as DB_DELIVERY_CLAIM; not with DB_CAP_WRITE_CTE */
    DB_DELIVERY_LOCK,      /* (): the claims' cluster-wide lock; only with DB_CAP_WRITE_CTE */
    DB_DELIVERY_CLAIM,     /* (now, per_webhook, max, node, lease_until) -> id, webhook_id, url,
                              secret, event, task_id, product, uin, to_state, info, at_ms,
                              attempts: pick and take in one statement; only with the CTE cap */
    DB_DELIVERY_FINISH,    /* (id, node, attempt, delivered, give_up, next_ms, http_status,
                              error, now_ms, took_ms) */
    DB_DELIVERY_RELEASE,   /* (node) */
    /* the task list and counts (store_task_list.c). LIST_TOTAL and LIST_PAGE are heads that the
     * filter, built at run time, follows (db_exec_sql): a fixed "(?1 IS NULL OR col = ?1)" would
     * hide from the planner which index the asked conditions can use */
    DB_TASK_LIST_TOTAL, /* head -> count */
    DB_TASK_LIST_PAGE,  /* head -> STORE_TASK_COLS, job_id (SQLite's rowid, named job_id so that
                           one ORDER BY names the tie-breaker in both dialects) */
    DB_TASK_COUNTS,     /* () -> product, state, count, oldest created_ms; by product, state in
                           byte order */
    /* the engine's claims (store_claims.c); now = the node's clock: the retry times it set, and
     * on SQLite the leases (PostgreSQL sets and judges those by the database's clock);
     * parallel = ",p,q,", the products exempt from one-at-a-time per instance */
    DB_CLAIM_PICK,   /* (now, parallel, max) -> id, state, lease_node, lease_no, product: the
                        oldest runnable tasks, unlocked; only with DB_CAP_ONE_WRITER */
    DB_CLAIM_TAKE,   /* (id, now, node, lease_ms, lease_no): the lease; only with ONE_WRITER */
    DB_CLAIM_UPDATE, /* (now, node, lease_ms, parallel) -> as DB_CLAIM_PICK, the new lease_no:
                        picks and takes the oldest in one conditional statement, no row when
                        another claimer won it; not with DB_CAP_ONE_WRITER */
    DB_CLAIM_BATCH,  /* (now, parallel, node, lease_ms, max) -> id, product, lease_no, old state,
                        taken over (0/1): picks (SKIP LOCKED), takes and records up to max
                        claims, oldest first; only with DB_CAP_SKIP_LOCKED */
    /* the engine's progress writes (store_progress.c), after DB_CONTROL_READ */
    DB_PROGRESS_STEP, /* (id, idx, state, message (NULL keeps, '' clears), output or NULL) */
    DB_PROGRESS_TASK, /* (id, state, to_final, now_ms, info (NULL keeps, '' clears), next_step
                         (-2 keeps), phase or NULL, attempt (-1 keeps), not_before_ms, release) */
    DB_PROGRESS_BULK, /* (writes as a JSON array, now_ms) -> ord: the fenced writes it applied,
                         step, task, event and deliveries each; only with DB_CAP_WRITE_CTE */
    DB_STMT_COUNT
};

/* How a transaction runs.
 * DB_WRITE: a write transaction. SQLite: one closure of the writer's group commit (its own
 *   SAVEPOINT; durable when db_run returns 0). PostgreSQL: BEGIN ... COMMIT (READ COMMITTED) on a
 *   pooled connection, run again from the start after a serialization failure.
 * DB_WRITE_ONE: a single write statement. SQLite: as DB_WRITE; PostgreSQL: no BEGIN (the
 *   statement is its own transaction: one round trip less).
 * DB_READ: reads, no snapshot across statements. SQLite: a reader connection; PostgreSQL: no
 *   BEGIN.
 * DB_SNAPSHOT: reads that see one snapshot. SQLite: a deferred BEGIN on a reader; PostgreSQL:
 *   REPEATABLE READ READ ONLY. */
enum db_kind { DB_WRITE, DB_WRITE_ONE, DB_READ, DB_SNAPSHOT };

/* What a dialect can do beyond the common SQL (see the top of this file). A store may have
 * fewer than its dialect: PostgreSQL with ?claim=update has no DB_CAP_SKIP_LOCKED. */
enum db_cap {
    DB_CAP_SKIP_LOCKED = 1u << 0, /* SELECT ... FOR UPDATE SKIP LOCKED: nodes share the rows */
    DB_CAP_WRITE_CTE = 1u << 1,   /* data-modifying WITH: several writes in one round trip */
    DB_CAP_ONE_WRITER = 1u << 2,  /* one writer for all: a read that finds nothing to do saves
                                     taking it (SQLite's group commit) */
    DB_CAP_ROUND_TRIPS = 1u << 3, /* each statement is a round trip to a server: one statement
                                     that joins beats several simple ones */
};

/* A typed value for a statement parameter. Text is not copied: it must outlive db_exec.
 * DB_ARG_TEXTS is a set of texts (a NULL-terminated list, empty = a set nothing is in), bound as
 * one value in the dialect's own form -- a JSON array for SQLite's json_each, a text[] for
 * PostgreSQL's = ANY, whose planner then sees the values -- and written in SQL as db_param
 * says. */
enum db_arg_type { DB_ARG_NULL, DB_ARG_TEXT, DB_ARG_INT, DB_ARG_TEXTS };
struct db_arg {
    enum db_arg_type type;
    const char *text;
    int64_t i;
    const char *const *texts;
};
#define DB_TEXT(s)  ((struct db_arg){(s) ? DB_ARG_TEXT : DB_ARG_NULL, (s), 0, NULL})
#define DB_INT(v)   ((struct db_arg){DB_ARG_INT, NULL, (int64_t)(v), NULL})
#define DB_TEXTS(l) ((struct db_arg){DB_ARG_TEXTS, NULL, 0, (l)})
/* The argument list of db_exec: DB_ARGS(DB_TEXT(id), DB_INT(ms)) or DB_NO_ARGS. */
#define DB_ARGS(...)                                                                               \
    (const struct db_arg[]){__VA_ARGS__},                                                          \
        sizeof((const struct db_arg[]){__VA_ARGS__}) / sizeof(struct db_arg)
#define DB_NO_ARGS NULL, 0

struct db_tx;

/* A dialect: its handle's operations and its SQL. One static const instance per backend. */
struct db_ops {
    const char *const *sql; /* DB_STMT_COUNT statements */
    unsigned caps;          /* enum db_cap bits */
    int (*run)(struct store *s, enum db_kind kind,
               int (*fn)(struct db_tx *t, void *ctx, struct err *e), void *ctx, struct err *e);
    int (*exec)(struct db_tx *t, enum db_stmt st, const struct db_arg *args, size_t n,
                const char *what, struct err *e);
    int (*next)(struct db_tx *t, const char *what, struct err *e);
    bool (*is_null)(struct db_tx *t, int col);
    const char *(*text)(struct db_tx *t, int col);
    int64_t (*int64)(struct db_tx *t, int col);
    int64_t (*changes)(struct db_tx *t);
    /* statements built at run time (db_exec_sql, db_param) */
    int (*exec_sql)(struct db_tx *t, const char *sql, const struct db_arg *args, size_t n,
                    const char *what, struct err *e);
    void (*param)(char *buf, size_t size, int n, enum db_arg_type type);
};

/* The handle a transaction function gets; each backend's handle puts this first. */
struct db_tx {
    const struct db_ops *ops;
};

/* Runs fn(t, ctx, e) as one transaction of the given kind on s's backend (s must be a SQLite or
 * PostgreSQL store, not a wrapper). It commits when fn returns 0 and undoes everything fn wrote
 * otherwise; returns fn's result or the transaction's error. fn may run more than once
 * (PostgreSQL retries a serialization failure): it must start from an empty result each time. */
int db_run(struct store *s, enum db_kind kind, int (*fn)(struct db_tx *t, void *ctx, struct err *e),
           void *ctx, struct err *e);

/* Runs statement st with n values; what names it in e on failure. A slot a dialect does not
 * have (NULL: the capability that gates it is missing) fails with ERR_INTERNAL. Errors:
 * ERR_ALREADY_EXISTS on a unique violation, ERR_SERVICE_UNAVAILABLE when the database is busy or
 * gone, else ERR_INTERNAL. One statement is open at a time per handle: db_exec ends the previous
 * one, so read what you need of its rows first. */
static inline int db_exec(struct db_tx *t, enum db_stmt st, const struct db_arg *args, size_t n,
                          const char *what, struct err *e)
{
    return t->ops->exec(t, st, args, n, what, e);
}
/* Moves to the open statement's next row: 1 when there is one, 0 at the end, or an ERR_*. */
static inline int db_next(struct db_tx *t, const char *what, struct err *e)
{
    return t->ops->next(t, what, e);
}
/* db_exec, then db_next: 1 when the statement gave a row (now the current one), 0 when it gave
 * none, or an ERR_*. For the statements read for one row. */
static inline int db_exec_row(struct db_tx *t, enum db_stmt st, const struct db_arg *args, size_t n,
                              const char *what, struct err *e)
{
    int rc = db_exec(t, st, args, n, what, e);
    return rc == 0 ? db_next(t, what, e) : rc;
}
/* Columns of the current row. db_text is NULL for SQL NULL and valid until the next db_next or
 * db_exec; db_int is 0 for NULL. */
static inline bool db_is_null(struct db_tx *t, int col) { return t->ops->is_null(t, col); }
static inline const char *db_text(struct db_tx *t, int col) { return t->ops->text(t, col); }
static inline int64_t db_int(struct db_tx *t, int col) { return t->ops->int64(t, col); }
/* Rows the last write statement changed. */
static inline int64_t db_changes(struct db_tx *t) { return t->ops->changes(t); }
static inline bool db_has(const struct db_tx *t, enum db_cap cap) { return t->ops->caps & cap; }
/* The same asked of a store before any transaction; false for a wrapper. */
bool db_store_has(const struct store *s, enum db_cap cap);
/* SQL built at run time, for a filter whose conditions are those asked for (the task list): the
 * logic writes it once, value N's placeholder as db_param says, after a slot's head (db_sql).
 * db_exec_sql runs it as db_exec runs a slot, but prepares it afresh each time (SQLite) or
 * unnamed (PostgreSQL, planned for these values); every value must be used. db_param writes
 * value n's placeholder for a value of that type into buf (?n, $n::text, $n::bigint); for
 * DB_ARG_TEXTS the test that a column is in the set, for "col <it>" (SQLite "IN (SELECT value
 * FROM json_each(?n))", PostgreSQL "= ANY($n::text[])"). */
static inline int db_exec_sql(struct db_tx *t, const char *sql, const struct db_arg *args, size_t n,
                              const char *what, struct err *e)
{
    return t->ops->exec_sql(t, sql, args, n, what, e);
}
static inline void db_param(const struct db_tx *t, char *buf, size_t size, int n,
                            enum db_arg_type type)
{
    t->ops->param(buf, size, n, type);
}
static inline const char *db_sql(const struct db_tx *t, enum db_stmt st) { return t->ops->sql[st]; }
/* Appends the task's next event in t's write transaction (store_events.c): from < 0 means none
 * (the creation event); a final `to` erases the step secrets; a change of state enqueues the
 * webhook deliveries. Ends the open statement. */
int db_event_append(struct db_tx *t, const char *id, int64_t now, int from, enum task_state to,
                    const char *node, const char *message, struct err *e);
/* Reads the task's state, current step and lease (DB_CONTROL_READ) into row, its row locked
 * until t ends (store_moves.c): 0, ERR_NOT_FOUND naming the task, or an error of the read. */
struct task_row;
int db_task_row_read(struct db_tx *t, const char *id, struct task_row *row, struct err *e);

/* Helpers over the columns: a text or integer column as JSON (json null for SQL NULL; a new
 * reference the caller owns), a text column copied into dst (NULL -> "", truncated). */
json_t *db_json_text(struct db_tx *t, int col);
/* v as a JSON string (NULL -> json null; bytes that are not UTF-8 become '?'). */
json_t *db_json_string(const char *v);
json_t *db_json_int(struct db_tx *t, int col);
void db_copy(struct db_tx *t, int col, char *dst, size_t size);
/* Wall-clock Unix ms, the node's clock (the one the old per-dialect code used). */
int64_t db_now_ms(void);

/* The dialects (store_sqlite_db.c, store_pg_db.c). */
extern const struct db_ops sq_db_ops, pg_db_ops;
/* pg_db_ops without DB_CAP_SKIP_LOCKED: a PostgreSQL store opened with ?claim=update. */
extern const struct db_ops pg_db_ops_no_skip_locked;

/* The ops written once over these primitives, by file; both backends' store_ops tables point at
 * them (contracts in store.h). store_purge.c: */
struct purge_req;
struct purge_result;
struct step_pgroup;
struct token;
int store_db_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                   struct err *e);
/* store_accounts.c: */
struct account;
int store_db_account_count(struct store *s, int64_t *out, struct err *e);
int store_db_account_create(struct store *s, const struct account *a, struct err *e);
int store_db_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                                  struct err *e);
int store_db_account_by_uin(struct store *s, const char *uin, struct account *out, struct err *e);
int store_db_account_set_policy(struct store *s, const char *uin, const char *policy_json,
                                struct err *e);
int store_db_account_set_disabled(struct store *s, const char *uin, bool disabled, struct err *e);
int store_db_account_key_create(struct store *s, const char *uin, const char *secret_id,
                                const char *secret_key, int max_keys, struct err *e);
int store_db_account_key_list(struct store *s, const char *uin, json_t **out, struct err *e);
int store_db_account_key_set_enabled(struct store *s, const char *uin, const char *secret_id,
                                     bool enabled, struct err *e);
int store_db_account_key_delete(struct store *s, const char *uin, const char *secret_id,
                                struct err *e);
int store_db_account_first_root(struct store *s, const struct account *cand, struct account *out,
                                struct err *e);
/* store_moves.c: */
struct task_move;
int store_db_task_move(struct store *s, const struct task_move *m, struct err *e);
int store_db_task_control(struct store *s, const char *id, enum task_verb verb, const char *node,
                          const char *message, struct err *e);
/* store_task_get.c: */
struct task;
int store_db_task_get(struct store *s, const char *id, unsigned what, struct task **out,
                      struct err *e);
/* Task id and what (TASK_READ_*) asks for into t (task_new's, filled in place), statement by
 * statement in the caller's transaction t; its step secrets stay sealed (store_task_open_steps).
 * ERR_NOT_FOUND when there is no such task. */
int db_task_read(struct db_tx *tx, const char *id, unsigned what, struct task *t, struct err *e);
/* store_task_create.c: */
int store_db_task_create(struct store *s, const struct task_new *t, char id_out[STORE_ID_MAX],
                         struct err *e);
int store_db_task_create_batch(struct store *s, const struct task_new *ts, size_t n,
                               char (*ids_out)[STORE_ID_MAX], struct err *e);
/* store_leases.c: */
struct task_lease_state;
struct lease_ref;
struct lease_renewal;
int store_db_task_renew(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                        struct task_lease_state *out, struct err *e);
int store_db_node_renew(struct store *s, const char *node, int64_t lease_ms,
                        const struct lease_ref *only, size_t n_only, struct lease_renewal **out,
                        size_t *n, struct err *e);
int store_db_release_node_leases(struct store *s, const char *node, struct err *e);
/* store_summary.c: */
struct task_summary;
int store_db_task_summary(struct store *s, const char *product, const char *id,
                          struct task_summary *out, struct err *e);
/* store_pgroups.c: */
int store_db_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e);
int store_db_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e);
int store_db_pgroup_list(struct store *s, const char *node, struct step_pgroup **out, size_t *n,
                         struct err *e);
/* store_instances.c: */
struct instance;
int store_db_instance_create(struct store *s, const struct instance *in, struct err *e);
int store_db_instance_get(struct store *s, const char *product, const char *instance_id,
                          struct instance *out, struct err *e);
int store_db_instance_update(struct store *s, const char *instance_id, const char *status,
                             const char *dsn, const char *reserved, struct instance *out,
                             struct err *e);
int store_db_instance_list(struct store *s, const char *product, const char *uin, json_t **out,
                           struct err *e);
/* store_sim.c: */
int store_db_instance_sim_state(struct store *s, const char *product, const char *instance_id,
                                json_t **out, struct err *e);
int store_db_instance_set_sim_state(struct store *s, const char *product, const char *instance_id,
                                    const char *state_json, struct err *e);
int store_db_sim_reset(struct store *s, int64_t *n_tasks, int64_t *n_instances, struct err *e);
/* store_tokens.c: */
int store_db_token_create(struct store *s, const struct token *t, struct err *e);
int store_db_token_list(struct store *s, json_t **out, struct err *e);
int store_db_token_revoke(struct store *s, const char *id, struct err *e);
int store_db_token_by_hash(struct store *s, const char *hash, struct token *out, struct err *e);
int store_db_token_touch(struct store *s, const char *id, int64_t used_ms, struct err *e);
/* store_webhooks.c: */
struct webhook;
struct delivery_claim_req;
struct webhook_delivery;
struct delivery_result;
int store_db_webhook_create(struct store *s, const struct webhook *w, struct err *e);
int store_db_webhook_list(struct store *s, json_t **out, struct err *e);
int store_db_webhook_get(struct store *s, const char *id, json_t **out, struct err *e);
int store_db_webhook_delete(struct store *s, const char *id, struct err *e);
int store_db_webhook_deliveries(struct store *s, const char *id, const char *task, int64_t limit,
                                json_t **out, struct err *e);
int store_db_delivery_claim(struct store *s, const struct delivery_claim_req *r,
                            struct webhook_delivery **out, size_t *n, struct err *e);
int store_db_delivery_finish(struct store *s, const struct delivery_result *r, struct err *e);
int store_db_delivery_release_node(struct store *s, const char *node, struct err *e);
/* store_claims.c: */
struct task_claim;
int store_db_task_claim(struct store *s, const char *node, int64_t lease_ms, const char *parallel,
                        struct task_claim *out, struct err *e);
int store_db_task_claim_batch(struct store *s, const char *node, int64_t lease_ms,
                              const char *parallel, size_t max, unsigned read,
                              struct task_claim *out, size_t *n, struct err *e);
/* store_progress.c: */
struct task_progress;
int store_db_task_progress(struct store *s, const struct task_progress *p, struct err *e);
int store_db_task_progress_batch(struct store *s, const struct task_progress *ps, size_t n,
                                 int *rcs, struct err *e);
/* store_workers.c: */
struct remote_handover;
struct worker_claim_req;
struct worker_lease;
struct worker_report;
int store_db_remote_handover(struct store *s, const struct remote_handover *h, struct err *e);
int store_db_remote_take(struct store *s, const char *id, int64_t lease_no, int step,
                         const char *phase, json_t **out, struct err *e);
int store_db_worker_claim(struct store *s, const struct worker_claim_req *r, json_t **out,
                          struct err *e);
int store_db_worker_heartbeat(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                              struct worker_lease *out, struct err *e);
int store_db_worker_report(struct store *s, const struct worker_report *r, struct err *e);

/* store_task_list.c: */
struct task_filter;
struct task_list;
int store_db_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                       int64_t *total, struct err *e);
int store_db_task_counts(struct store *s, json_t **out, struct err *e);

/* The entries of a backend's struct store_ops that are the shared ops above. */
#define STORE_DB_OPS                                                                               \
    .account_count = store_db_account_count, .account_create = store_db_account_create,            \
    .account_by_secret_id = store_db_account_by_secret_id,                                         \
    .account_by_uin = store_db_account_by_uin, .account_set_policy = store_db_account_set_policy,  \
    .account_set_disabled = store_db_account_set_disabled,                                         \
    .account_key_create = store_db_account_key_create,                                             \
    .account_key_list = store_db_account_key_list,                                                 \
    .account_key_set_enabled = store_db_account_key_set_enabled,                                   \
    .account_key_delete = store_db_account_key_delete,                                             \
    .account_first_root = store_db_account_first_root, .task_move = store_db_task_move,            \
    .task_control = store_db_task_control, .task_get = store_db_task_get,                          \
    .task_summary = store_db_task_summary, .task_renew = store_db_task_renew,                      \
    .node_renew = store_db_node_renew, .release_node_leases = store_db_release_node_leases,        \
    .instance_create = store_db_instance_create, .instance_get = store_db_instance_get,            \
    .instance_update = store_db_instance_update, .instance_list = store_db_instance_list,          \
    .instance_sim_state = store_db_instance_sim_state,                                             \
    .instance_set_sim_state = store_db_instance_set_sim_state, .sim_reset = store_db_sim_reset,    \
    .pgroup_record = store_db_pgroup_record, .pgroup_clear = store_db_pgroup_clear,                \
    .pgroup_list = store_db_pgroup_list, .token_create = store_db_token_create,                    \
    .token_list = store_db_token_list, .token_revoke = store_db_token_revoke,                      \
    .token_by_hash = store_db_token_by_hash, .token_touch = store_db_token_touch,                  \
    .remote_handover = store_db_remote_handover, .remote_take = store_db_remote_take,              \
    .worker_claim = store_db_worker_claim, .worker_heartbeat = store_db_worker_heartbeat,          \
    .worker_report = store_db_worker_report, .purge = store_db_purge,                              \
    .webhook_create = store_db_webhook_create, .webhook_list = store_db_webhook_list,              \
    .webhook_get = store_db_webhook_get, .webhook_delete = store_db_webhook_delete,                \
    .webhook_deliveries = store_db_webhook_deliveries, .delivery_claim = store_db_delivery_claim,  \
    .delivery_finish = store_db_delivery_finish,                                                   \
    .delivery_release_node = store_db_delivery_release_node, .task_list = store_db_task_list,      \
    .task_counts = store_db_task_counts, .task_create = store_db_task_create,                      \
    .task_create_batch = store_db_task_create_batch, .task_claim = store_db_task_claim,            \
    .task_claim_batch = store_db_task_claim_batch, .task_progress = store_db_task_progress,        \
    .task_progress_batch = store_db_task_progress_batch,

#endif
