/* SQL text both dialects' tables of shared statements (store_sqlite_sql.c, store_pg_sql.c) use
 * word for word: column lists, conditions, and the statements that take no parameter. */
#ifndef ASYNCD_STORE_DB_SQL_H
#define ASYNCD_STORE_DB_SQL_H

/* Accounts (store_accounts.c): an account row with the key pair it is read with (k), and its
 * root account (o) for the disabled flag a root passes on to its sub-accounts; the slot adds the
 * join of k and the condition. */
#define DB_SQL_ACCOUNT_SELECT                                                                      \
    "SELECT a.uin, a.owner_uin, a.app_id, k.secret_id, k.secret_key, a.is_root, a.policy_json,"    \
    " a.disabled, COALESCE(o.disabled, 0), k.status FROM accounts a"                               \
    " LEFT JOIN accounts o ON o.uin = a.owner_uin AND o.uin <> a.uin "
/* The account by a SecretId (p, the dialect's first parameter), with that key. */
#define DB_SQL_ACCOUNT_BY_SECRET(p)                                                                \
    DB_SQL_ACCOUNT_SELECT "JOIN account_keys k ON k.uin = a.uin WHERE k.secret_id = " p
/* The account by uin (p), with its first enabled key pair, else its first one (main.c opens it
 * as a canary); bytes makes the dialect order SecretIds byte by byte. */
#define DB_SQL_ACCOUNT_BY_UIN(p, bytes)                                                            \
    DB_SQL_ACCOUNT_SELECT "LEFT JOIN account_keys k ON k.secret_id = (SELECT secret_id"            \
                          " FROM account_keys WHERE uin = a.uin ORDER BY status = 'enabled' DESC," \
                          " created_ms, secret_id" bytes " LIMIT 1) WHERE a.uin = " p
/* An account's keys (uin p), oldest first; one row of NULLs for an account without keys. */
#define DB_SQL_KEY_LIST(p, bytes)                                                                  \
    "SELECT k.secret_id, k.status, k.created_ms FROM accounts a"                                   \
    " LEFT JOIN account_keys k ON k.uin = a.uin WHERE a.uin = " p                                  \
    " ORDER BY k.created_ms, k.secret_id" bytes
#define DB_SQL_ACCOUNT_COUNT "SELECT count(*) FROM accounts"
#define DB_SQL_ACCOUNT_COLS  "uin, owner_uin, app_id, is_root, policy_json, disabled, created_ms"
#define DB_SQL_KEY_COLS      "secret_id, uin, secret_key, status, created_ms"
#define DB_SQL_TOKEN_COLS    "id, name, scope, hash, created_ms, COALESCE(last_used_ms, 0)"
#define DB_SQL_TOKEN_LIST                                                                          \
    "SELECT " DB_SQL_TOKEN_COLS " FROM tokens WHERE revoked_ms IS NULL ORDER BY created_ms, id"
#define DB_SQL_WEBHOOK_COLS "id, url, events, COALESCE(product, ''), COALESCE(uin, ''), created_ms"
#define DB_SQL_WEBHOOK_LIST "SELECT " DB_SQL_WEBHOOK_COLS " FROM webhooks ORDER BY created_ms, id"
#define DB_SQL_DELIVERY_COLS                                                                       \
    "id, event, task_id, to_state, info, at_ms, status, attempts, next_ms, last_status,"           \
    " last_error, created_ms, delivered_ms, attempt_log"
/* Instances (store_instances.c): the columns written; those read are these and whether the
 * instance is simulated, as an integer in both dialects (PostgreSQL's IS NOT NULL is a boolean,
 * which its text results spell 't' or 'f', and db_int would read either as 0). */
#define DB_SQL_INSTANCE_COLS "product, instance_id, region, uin, status, dsn, reserved_accounts"
#define DB_SQL_INSTANCE_READ_COLS                                                                  \
    DB_SQL_INSTANCE_COLS ", CASE WHEN sim_state IS NULL THEN 0 ELSE 1 END"
/* A task waits for a worker: a handover of the current lease (an operator verb bumps lease_no,
 * which ends the wait) and no pause requested. The engine's claim skips exactly these. */
#define DB_SQL_WAITING                                                                             \
    "state = 'running' AND remote_kind IS NOT NULL AND remote_lease_no = lease_no"                 \
    " AND pause_requested = 0"
/* The simulation's reset (store_sim.c). Steps and events go first: the foreign keys cascade,
 * but saying so costs nothing. */
#define DB_SQL_SIM_RESET_STEPS                                                                     \
    "DELETE FROM task_steps WHERE task_id IN (SELECT id FROM tasks WHERE driver = 'sim')"
#define DB_SQL_SIM_RESET_EVENTS                                                                    \
    "DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE driver = 'sim')"
#define DB_SQL_SIM_RESET_TASKS     "DELETE FROM tasks WHERE driver = 'sim'"
#define DB_SQL_SIM_RESET_INSTANCES "DELETE FROM instances WHERE sim_state IS NOT NULL"
/* The task create (store_task_create.c): a new task row's columns, and the Idempotency-Key
 * recorded for it (an expired key's row is taken over). */
#define DB_SQL_TASK_NEW_COLS                                                                       \
    "id, product, region, uin, instance_id, type, on_failure, state, created_ms, driver, input"
#define DB_SQL_IDEM_PUT(values)                                                                    \
    "INSERT INTO idempotency_keys(scope, idem_key, body_hash, task_id, created_ms) VALUES" values  \
    " ON CONFLICT (scope, idem_key) DO UPDATE SET body_hash = excluded.body_hash,"                 \
    " task_id = excluded.task_id, created_ms = excluded.created_ms"
/* Retention (store_purge.c): the rows of the purged tasks, by their ids as the dialect's
 * "IN (the JSON array's elements)" (in_ids). Steps, events and keys would go by their foreign
 * keys' cascade too; saying so costs nothing and does not depend on SQLite's PRAGMA
 * foreign_keys. step_pgroups has no foreign key. */
#define DB_SQL_PURGE_BY_IDS(in_ids)                                                                \
    [DB_PURGE_STEPS] = "DELETE FROM task_steps WHERE task_id" in_ids,                              \
    [DB_PURGE_EVENTS] = "DELETE FROM task_events WHERE task_id" in_ids,                            \
    [DB_PURGE_PGROUPS] = "DELETE FROM step_pgroups WHERE task_id" in_ids,                          \
    [DB_PURGE_KEYS_OF] = "DELETE FROM idempotency_keys WHERE task_id" in_ids,                      \
    [DB_PURGE_DELIVERIES] = "DELETE FROM webhook_deliveries WHERE task_id" in_ids,                 \
    [DB_PURGE_TASKS] = "DELETE FROM tasks WHERE id" in_ids
/* The task list's heads (store_task_list.c) and the counts by product and state; bytes makes the
 * dialect order them byte by byte. */
#define DB_SQL_TASK_LIST_TOTAL "SELECT count(*) FROM tasks"
#define DB_SQL_TASK_COUNTS(bytes)                                                                  \
    "SELECT product, state, COUNT(*), MIN(created_ms) FROM tasks GROUP BY product, state"          \
    " ORDER BY product" bytes ", state" bytes

#endif
