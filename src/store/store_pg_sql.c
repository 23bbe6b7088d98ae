/* The PostgreSQL store's SQL: one statement per slot, prepared once per connection. Every
 * parameter is cast, so PostgreSQL never has to guess a type ($n IS NULL alone names none). */
#include "store/store_db_sql.h"
#include "store/store_pg_int.h"
#include "store/store_plan.h"

/* The database's clock in Unix ms. Leases are set and judged by it, never by a node's own clock,
 * so a node whose clock runs ahead cannot take a lease that is still live (DESIGN.md 5). now() is
 * the transaction's start: one value for a claim's pick and take. */
#define DB_NOW_MS "(floor(extract(epoch FROM now()) * 1000))::bigint"
/* A task the engine may claim: initial, or running with no live lease (by the database's clock),
 * its retry time ($1, the node's clock, as the node that set it) reached, and not waiting for a
 * remote worker (store_workers.c). */
#define CLAIMABLE(t)                                                                               \
    t "state IN ('initial', 'running') AND " t "driver = 'engine'"                                 \
      " AND " t "not_before_ms <= $1::bigint"                                                      \
      " AND (" t "lease_expires_ms IS NULL OR " t "lease_expires_ms <= " DB_NOW_MS ")"             \
      " AND NOT (" t "remote_kind IS NOT NULL AND " t "remote_lease_no = " t "lease_no"            \
      " AND " t "pause_requested = 0)"

/* One operation at a time per instance: a task on an instance waits while an earlier task of its
 * product and instance is unfinished (paused too: it still holds the instance), unless the list
 * PARALLEL (",p,q,") names its product. tasks_instance_open makes it one index probe. No
 * re-check is needed after a lock wait: what blocks a task can only finish, and every task made
 * later is created after it. */
#define INSTANCE_FREE(t, parallel)                                                                 \
    "(" t "instance_id IS NULL OR strpos(" parallel ", ',' || " t "product || ',') > 0"            \
    " OR NOT EXISTS (SELECT 1 FROM tasks o WHERE o.product = " t "product"                         \
    " AND o.instance_id = " t "instance_id AND o.state IN ('initial', 'running', 'waiting',"       \
    " 'paused') AND o.created_ms <= " t "created_ms AND (o.created_ms < " t "created_ms"           \
    " OR o.job_id < " t "job_id)))"

/* The shared statements (store_db.h), in the order of enum db_stmt; a list of ids comes as one
 * JSON array. */
#define IN_IDS " IN (SELECT jsonb_array_elements_text($1::jsonb))"
/* Any constant both nodes agree on: the key of the webhook claims' advisory lock. */
#define CLAIM_LOCK_KEY "7243917201"
/* Likewise, the first start's (store_accounts.c). */
#define FIRST_START_LOCK_KEY "7305911"

const char *const pg_db_sql[DB_STMT_COUNT] = {
    [DB_EVENT_INSERT] =
        "INSERT INTO task_events(task_id, seq, at_ms, from_state, to_state,"
        " node, message) VALUES($1::text, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_events"
        " WHERE task_id = $1::text), $2::bigint, $3::text, $4::text, $5::text, $6::text)",
    [DB_STEPS_SECRETS_READ] = "SELECT idx, do_json, undo_json FROM task_steps"
                              " WHERE task_id = $1::text",
    [DB_STEPS_SECRETS_ERASE] = "UPDATE task_steps SET do_json = COALESCE($3::text, do_json),"
                               " undo_json = COALESCE($4::text, undo_json)"
                               " WHERE task_id = $1::text AND idx = $2::bigint",
    /* One delivery per subscription the task's latest event matches. */
    [DB_WEBHOOK_ENQUEUE] =
        "INSERT INTO webhook_deliveries(webhook_id, task_id, seq, event, product, uin, to_state,"
        " info, at_ms, next_ms, created_ms) SELECT w.id, t.id, (SELECT MAX(seq) FROM task_events"
        " x WHERE x.task_id = t.id), CASE WHEN $3::boolean THEN 'final' ELSE 'transition' END,"
        " t.product, t.uin, $4::text, t.info, $2::bigint, $2::bigint, $2::bigint FROM tasks t"
        " JOIN webhooks w ON (w.product IS NULL OR w.product = t.product) AND (w.uin IS NULL"
        " OR w.uin = t.uin) WHERE t.id = $1::text AND (w.events = 'transition' OR $3::boolean)",
    [DB_TASK_ROW] = "SELECT " STORE_TASK_COLS " FROM tasks WHERE id = $1::text",
    [DB_TASK_STEPS] = "SELECT idx, name, do_json, undo_json, retries, timeout_s, state,"
                      " message, output FROM task_steps WHERE task_id = $1::text ORDER BY idx",
    [DB_TASK_EVENTS] = "SELECT seq, at_ms, from_state, to_state, node, message FROM task_events"
                       " WHERE task_id = $1::text ORDER BY seq",
    [DB_TASK_LAST_EVENT] = "SELECT seq, at_ms, from_state, to_state, node, message"
                           " FROM task_events WHERE task_id = $1::text ORDER BY seq DESC LIMIT 1",
    /* The task (STORE_TASK_COLS, columns 0-22), each of its steps ($2; 23-31, one row each) and
     * its latest event ($3; 32-37) in one statement (store_task_get.c, load_fn). */
    [DB_TASK_LOAD] =
        "SELECT k.*, s.idx, s.name, s.do_json, s.undo_json, s.retries, s.timeout_s, s.state,"
        " s.message, s.output, ev.seq, ev.at_ms, ev.from_state, ev.to_state, ev.node, ev.message"
        " FROM (SELECT " STORE_TASK_COLS " FROM tasks WHERE id = $1::text) k"
        " LEFT JOIN task_steps s ON s.task_id = k.id AND $2::boolean"
        " LEFT JOIN LATERAL (SELECT seq, at_ms, from_state, to_state, node, message"
        " FROM task_events x WHERE x.task_id = k.id ORDER BY seq DESC LIMIT 1) ev ON $3::boolean"
        " ORDER BY s.idx",
    /* The counters row is locked by the upsert until commit: one number per task, no gaps
     * unless a transaction rolls back. */
    [DB_COUNTER_NEXT] = "INSERT INTO counters(product, next_id) VALUES($1::text, $2::bigint)"
                        " ON CONFLICT (product) DO UPDATE SET next_id = counters.next_id + 1"
                        " RETURNING next_id - 1",
    /* A whole creation in one statement, so one round trip (and without a key one commit,
     * autocommit): the task row, its steps ($12, a JSON array), its "created" event and the
     * deliveries of the "transition" subscriptions it matches, the same rows DB_TASK_INSERT,
     * DB_STEP_INSERT (SQLite's), DB_EVENT_INSERT and DB_WEBHOOK_ENQUEUE write one by one.
     * DO NOTHING rather than an error, which would abort the whole transaction: no row when the
     * id is taken. */
    [DB_TASK_CREATE] =
        "WITH t AS (INSERT INTO tasks(" DB_SQL_TASK_NEW_COLS ") VALUES($1::text, $2::text,"
        " $3::text, $4::text,"
        " $5::text, $6::text, $7::text, $8::text, $9::bigint, $10::text, $11::text)"
        " ON CONFLICT (id) DO NOTHING RETURNING id, product, uin, info),"
        " s AS (INSERT INTO task_steps(task_id, idx, name, do_json, undo_json, retries, timeout_s)"
        " SELECT t.id, x.idx, x.name, x.do_json, x.undo_json, x.retries, x.timeout_s FROM t,"
        " json_to_recordset($12::json) AS x(idx integer, name text, do_json text,"
        " undo_json text, retries bigint, timeout_s bigint)),"
        " ev AS (INSERT INTO task_events(task_id, seq, at_ms, from_state, to_state, node, message)"
        " SELECT t.id, 1, $9::bigint, NULL, $8::text, $13::text, 'created' FROM t),"
        " wh AS (INSERT INTO webhook_deliveries(webhook_id, task_id, seq, event, product, uin,"
        " to_state, info, at_ms, next_ms, created_ms) SELECT w.id, t.id, 1, 'transition',"
        " t.product, t.uin, $8::text, t.info, $9::bigint, $9::bigint, $9::bigint FROM t"
        " JOIN webhooks w ON (w.product IS NULL OR w.product = t.product) AND (w.uin IS NULL"
        " OR w.uin = t.uin) WHERE w.events = 'transition')"
        " SELECT id FROM t",
    /* Creations with one key queue on a transaction-scoped advisory lock named by its hash. */
    [DB_IDEM_LOCK] = "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ' ' ||"
                     " $2::text, 13))",
    [DB_IDEM_READ] = "SELECT body_hash, task_id, created_ms FROM idempotency_keys"
                     " WHERE scope = $1::text AND idem_key = $2::text",
    [DB_IDEM_PUT] = DB_SQL_IDEM_PUT("($1::text, $2::text, $3::text, $4::text, $5::bigint)"),
    [DB_LEASE_RENEW] =
        "UPDATE tasks SET lease_expires_ms = " DB_NOW_MS " + $3::bigint WHERE id = $1::text"
        " AND lease_no = $2::bigint AND state = 'running' AND lease_node IS NOT NULL"
        " RETURNING pause_requested",
    /* tasks_lease_node finds the node's rows */
    [DB_NODE_RENEW] =
        "UPDATE tasks SET lease_expires_ms = " DB_NOW_MS " + $2::bigint"
        " WHERE lease_node = $1::text AND state = 'running'"
        " AND lease_expires_ms > " DB_NOW_MS " RETURNING id, lease_no, pause_requested",
    [DB_NODE_RENEW_ONLY] =
        "UPDATE tasks t SET lease_expires_ms = " DB_NOW_MS " + $2::bigint"
        " FROM (SELECT j ->> 0 AS id, (j ->> 1)::bigint AS no FROM json_array_elements($3::json) j)"
        " AS w WHERE t.id = w.id AND t.lease_no = w.no AND t.lease_node = $1::text"
        " AND t.state = 'running' AND t.lease_expires_ms > " DB_NOW_MS
        " RETURNING t.id, t.lease_no, t.pause_requested",
    [DB_RELEASE_NODE] = "UPDATE tasks SET lease_expires_ms = NULL WHERE lease_node = $1::text"
                        " AND state = 'running'",
    [DB_ACCOUNT_COUNT] = DB_SQL_ACCOUNT_COUNT,
    [DB_ACCOUNT_INSERT] = "INSERT INTO accounts(" DB_SQL_ACCOUNT_COLS ") VALUES($1::text,"
                          " $2::text, $3::text, $4::integer, $5::text, $6::integer, $7::bigint)",
    /* COLLATE "C": byte order, whatever the database's collation. */
    [DB_ACCOUNT_BY_SECRET] = DB_SQL_ACCOUNT_BY_SECRET("$1::text"),
    [DB_ACCOUNT_BY_UIN] = DB_SQL_ACCOUNT_BY_UIN("$1::text", " COLLATE \"C\""),
    [DB_ACCOUNT_SET_POLICY] = "UPDATE accounts SET policy_json = $2::text WHERE uin = $1::text",
    [DB_ACCOUNT_SET_DISABLED] = "UPDATE accounts SET disabled = $2::integer WHERE uin = $1::text",
    /* Held until commit: key creates for one account count and insert one after another. */
    [DB_ACCOUNT_LOCK] = "SELECT uin FROM accounts WHERE uin = $1::text FOR NO KEY UPDATE",
    /* Nodes starting together on one database agree on one first root. */
    [DB_ACCOUNT_ROOT_LOCK] = "SELECT pg_advisory_xact_lock(" FIRST_START_LOCK_KEY ")",
    [DB_ACCOUNT_FIRST_ROOT] = "SELECT uin FROM accounts WHERE is_root = 1"
                              " ORDER BY created_ms, uin LIMIT 1",
    [DB_KEY_INSERT] = "INSERT INTO account_keys(" DB_SQL_KEY_COLS ") VALUES($1::text, $2::text,"
                      " $3::text, 'enabled', $4::bigint)",
    [DB_KEY_COUNT] = "SELECT count(*) FROM account_keys WHERE uin = $1::text",
    [DB_KEY_LIST] = DB_SQL_KEY_LIST("$1::text", " COLLATE \"C\""),
    /* FOR UPDATE, not NO KEY: the row is to be deleted. */
    [DB_KEY_STATUS] = "SELECT status FROM account_keys WHERE uin = $1::text"
                      " AND secret_id = $2::text FOR UPDATE",
    [DB_KEY_SET_STATUS] = "UPDATE account_keys SET status = $3::text WHERE uin = $1::text"
                          " AND secret_id = $2::text",
    [DB_KEY_DELETE] = "DELETE FROM account_keys WHERE secret_id = $1::text",

    [DB_TASK_SUMMARY] = "SELECT id, product, region, uin, instance_id, state, info, created_ms,"
                        " start_ms, end_ms, lease_no, (driver = 'sim')::integer FROM tasks"
                        " WHERE id = $1::text AND product = $2::text",
    [DB_MOVE_READ] = "SELECT state, current_step FROM tasks WHERE id = $1::text"
                     " FOR NO KEY UPDATE",
    [DB_MOVE_STEP_MARK] = "UPDATE task_steps SET state = $3::text, message = COALESCE($4::text,"
                          " message) WHERE task_id = $1::text AND idx = $2::integer",
    [DB_MOVE_UPDATE] =
        "UPDATE tasks SET state = $2::text,"
        " start_ms = CASE WHEN $3::boolean AND start_ms IS NULL THEN $5::bigint ELSE start_ms END,"
        " end_ms = CASE WHEN $4::boolean THEN $5::bigint ELSE end_ms END,"
        " info = COALESCE($6::text, info), current_step = current_step + $7::integer"
        " WHERE id = $1::text",
    [DB_CONTROL_READ] = "SELECT state, current_step, lease_no, COALESCE(lease_expires_ms, 0),"
                        " (driver = 'external')::integer, (phase = 'undo')::integer FROM tasks"
                        " WHERE id = $1::text FOR NO KEY UPDATE",
    [DB_CONTROL_STEP] = "UPDATE task_steps SET state = $3::text, message = CASE WHEN $4::text"
                        " IS NULL THEN message WHEN $4::text = '' THEN NULL ELSE $4::text END"
                        " WHERE task_id = $1::text AND idx = $2::integer"
                        " AND ($5::text IS NULL OR state = $5::text)",
    [DB_CONTROL_UPDATE] =
        "UPDATE tasks SET state = $2::text,"
        " end_ms = CASE WHEN $3::boolean THEN $4::bigint ELSE end_ms END,"
        " current_step = current_step + $5::integer, phase = COALESCE($6::text, phase),"
        " attempt = CASE WHEN $7::boolean THEN 0 ELSE attempt END,"
        " not_before_ms = CASE WHEN $7::boolean THEN 0 ELSE not_before_ms END,"
        " lease_node = CASE WHEN $8::boolean THEN NULL ELSE lease_node END,"
        " lease_expires_ms = CASE WHEN $8::boolean THEN NULL ELSE lease_expires_ms END,"
        " pause_requested = $9::integer, lease_no = lease_no + $10::integer WHERE id = $1::text",

    /* The IN list matches the partial index tasks_finished word for word (migration 9). Every
     * node purges: SKIP LOCKED lets two batches at once take different tasks instead of waiting
     * for each other. */
    [DB_PURGE_PICK] = "SELECT id FROM tasks WHERE state IN ('undoed', 'failed', 'success',"
                      " 'killed', 'removed') AND end_ms < $1::bigint ORDER BY end_ms"
                      " LIMIT $2::bigint FOR UPDATE SKIP LOCKED",
    DB_SQL_PURGE_BY_IDS(IN_IDS),
    [DB_PURGE_KEYS_BEFORE] = "DELETE FROM idempotency_keys WHERE (scope, idem_key) IN (SELECT"
                             " scope, idem_key FROM idempotency_keys WHERE created_ms < $1::bigint"
                             " LIMIT $2::bigint FOR UPDATE SKIP LOCKED)",

    [DB_PGROUP_RECORD] = "INSERT INTO step_pgroups(node, pgid, task_id, boot_id, start_ticks,"
                         " created_ms) VALUES($1::text, $2::bigint, $3::text, $4::text,"
                         " $5::bigint, $6::bigint) ON CONFLICT (node, pgid) DO UPDATE SET"
                         " task_id = excluded.task_id, boot_id = excluded.boot_id,"
                         " start_ticks = excluded.start_ticks, created_ms = excluded.created_ms",
    [DB_PGROUP_CLEAR] = "DELETE FROM step_pgroups WHERE node = $1::text AND pgid = $2::bigint",
    [DB_PGROUP_LIST] = "SELECT pgid, task_id, boot_id, start_ticks FROM step_pgroups"
                       " WHERE node = $1::text ORDER BY created_ms",

    /* A simulated instance starts with an empty recorded state (sim/sim.h). */
    [DB_INSTANCE_INSERT] = "INSERT INTO instances(" DB_SQL_INSTANCE_COLS ", created_ms,"
                           " updated_ms, sim_state) VALUES($1::text, $2::text, $3::text,"
                           " $4::text, $5::text, $6::text, $7::text, $9::bigint, $9::bigint,"
                           " CASE WHEN $8::integer <> 0 THEN '{}' END)",
    [DB_INSTANCE_GET] = "SELECT " DB_SQL_INSTANCE_READ_COLS " FROM instances"
                        " WHERE instance_id = $1::text AND ($2::text IS NULL"
                        " OR product = $2::text)",
    [DB_INSTANCE_UPDATE] = "UPDATE instances SET status = COALESCE($2::text, status),"
                           " dsn = COALESCE($3::text, dsn), reserved_accounts ="
                           " COALESCE($4::text, reserved_accounts), updated_ms = $5::bigint"
                           " WHERE instance_id = $1::text",
    [DB_INSTANCE_LIST] = "SELECT " DB_SQL_INSTANCE_READ_COLS " FROM instances"
                         " WHERE ($1::text IS NULL OR product = $1::text)"
                         " AND ($2::text IS NULL OR uin = $2::text)"
                         " ORDER BY created_ms, instance_id COLLATE \"C\"",

    [DB_SIM_STATE_GET] = "SELECT sim_state FROM instances WHERE instance_id = $1::text"
                         " AND product = $2::text",
    [DB_SIM_STATE_SET] = "UPDATE instances SET sim_state = $3::text, updated_ms = $4::bigint"
                         " WHERE instance_id = $1::text AND product = $2::text"
                         " AND sim_state IS NOT NULL",
    [DB_SIM_RESET_STEPS] = DB_SQL_SIM_RESET_STEPS,
    [DB_SIM_RESET_EVENTS] = DB_SQL_SIM_RESET_EVENTS,
    [DB_SIM_RESET_TASKS] = DB_SQL_SIM_RESET_TASKS,
    [DB_SIM_RESET_INSTANCES] = DB_SQL_SIM_RESET_INSTANCES,

    [DB_TOKEN_INSERT] = "INSERT INTO tokens(id, name, scope, hash, created_ms)"
                        " VALUES($1::text, $2::text, $3::text, $4::text, $5::bigint)",
    [DB_TOKEN_LIST] = DB_SQL_TOKEN_LIST,
    [DB_TOKEN_REVOKE] = "UPDATE tokens SET revoked_ms = $2::bigint WHERE id = $1::text"
                        " AND revoked_ms IS NULL",
    [DB_TOKEN_TOUCH] = "UPDATE tokens SET last_used_ms = $2::bigint WHERE id = $1::text"
                       " AND revoked_ms IS NULL",
    [DB_TOKEN_BY_HASH] = "SELECT " DB_SQL_TOKEN_COLS " FROM tokens WHERE hash = $1::text"
                         " AND revoked_ms IS NULL",

    /* Several nodes: every read-then-write locks the task's row first, a worker's claim skips
     * rows others hold, and leases are set and judged by the database's clock (the node's now,
     * passed last, is left out). */
    [DB_WORKER_LEASE_ROW] = "SELECT state, lease_no, COALESCE(lease_expires_ms, 0),"
                            " COALESCE(lease_node, ''), COALESCE(remote_step, 0),"
                            " COALESCE(remote_phase, 'do'), " DB_NOW_MS " FROM tasks"
                            " WHERE id = $1::text FOR NO KEY UPDATE",
    [DB_WORKER_HANDOVER] = "UPDATE tasks SET remote_kind = $2::text, remote_step = $3::integer,"
                           " remote_phase = $4::text, remote_lease_no = lease_no,"
                           " remote_result = NULL, lease_node = NULL, lease_expires_ms = NULL,"
                           " not_before_ms = 0 WHERE id = $1::text",
    [DB_WORKER_RESULT_READ] = "SELECT remote_result FROM tasks WHERE id = $1::text"
                              " AND lease_no = $2::bigint AND state = 'running'"
                              " FOR NO KEY UPDATE",
    [DB_WORKER_RESULT_CLEAR] = "UPDATE tasks SET remote_result = NULL, remote_kind = NULL"
                               " WHERE id = $1::text",
    [DB_WORKER_PICK] = "SELECT id FROM tasks WHERE remote_kind IN"
                       " (SELECT jsonb_array_elements_text($1::jsonb)) AND " DB_SQL_WAITING
                       " AND not_before_ms <= $2::bigint AND (lease_expires_ms IS NULL"
                       " OR lease_expires_ms <= " DB_NOW_MS ") ORDER BY created_ms, job_id"
                       " LIMIT $3::integer FOR NO KEY UPDATE SKIP LOCKED",
    [DB_WORKER_TAKE] =
        "UPDATE tasks t SET lease_node = $2::text, lease_expires_ms = " DB_NOW_MS " + $3::bigint,"
        " lease_no = t.lease_no + 1, remote_lease_no = t.lease_no + 1 WHERE t.id = $1::text"
        " RETURNING t.lease_no, t.remote_step, t.remote_phase, t.attempt, t.input,"
        " t.lease_expires_ms, (SELECT name FROM task_steps s WHERE s.task_id = t.id"
        " AND s.idx = t.remote_step), (SELECT CASE WHEN t.remote_phase = 'undo' THEN undo_json"
        " ELSE do_json END FROM task_steps s WHERE s.task_id = t.id AND s.idx = t.remote_step)",
    [DB_WORKER_BEAT] = "UPDATE tasks SET lease_expires_ms = " DB_NOW_MS " + $2::bigint"
                       " WHERE id = $1::text RETURNING pause_requested, lease_expires_ms",
    [DB_WORKER_REPORT] = "UPDATE tasks SET remote_result = $2::text, remote_kind = NULL,"
                         " lease_node = NULL, lease_expires_ms = NULL WHERE id = $1::text",

    [DB_WEBHOOK_INSERT] = "INSERT INTO webhooks(id, url, secret, events, product, uin, created_ms)"
                          " VALUES($1::text, $2::text, $3::text, $4::text, NULLIF($5::text, ''),"
                          " NULLIF($6::text, ''), $7::bigint)",
    [DB_WEBHOOK_LIST] = DB_SQL_WEBHOOK_LIST,
    [DB_WEBHOOK_GET] = "SELECT " DB_SQL_WEBHOOK_COLS " FROM webhooks WHERE id = $1::text",
    [DB_WEBHOOK_COUNTS] = "SELECT status, count(*) FROM webhook_deliveries"
                          " WHERE webhook_id = $1::text GROUP BY status",
    [DB_WEBHOOK_DELETE] = "DELETE FROM webhooks WHERE id = $1::text",
    [DB_WEBHOOK_DELIVERIES] = "SELECT " DB_SQL_DELIVERY_COLS " FROM webhook_deliveries"
                              " WHERE webhook_id = $1::text AND ($2::text IS NULL"
                              " OR task_id = $2::text) ORDER BY id DESC LIMIT $3::bigint",
    [DB_DELIVERY_DUE] = "SELECT 1 FROM webhook_deliveries WHERE status IN ('pending',"
                        " 'delivering') AND ((status = 'pending' AND next_ms <= $1::bigint) OR"
                        " (status = 'delivering' AND lease_until_ms <= $1::bigint)) LIMIT 1",
    /* Claims from all nodes take one transaction-scoped advisory lock, so the per-subscription
     * bound on deliveries in flight holds across the cluster; a claim is a few rows a second at
     * most, so the lock costs nothing that matters. Then pick and take in one statement. */
    [DB_DELIVERY_LOCK] = "SELECT pg_advisory_xact_lock(" CLAIM_LOCK_KEY ")",
    [DB_DELIVERY_CLAIM] =
        "WITH inflight AS (SELECT webhook_id, count(*) AS n FROM webhook_deliveries"
        " WHERE status = 'delivering' AND lease_until_ms > $1::bigint GROUP BY webhook_id),"
        " cand AS (SELECT d.id, d.webhook_id, row_number() OVER (PARTITION BY d.webhook_id"
        " ORDER BY d.id) AS rn FROM webhook_deliveries d WHERE d.status IN ('pending',"
        " 'delivering') AND ((d.status = 'pending' AND d.next_ms <= $1::bigint) OR (d.status ="
        " 'delivering' AND d.lease_until_ms <= $1::bigint)) AND NOT EXISTS (SELECT 1 FROM"
        " webhook_deliveries o WHERE o.webhook_id = d.webhook_id AND o.task_id = d.task_id"
        " AND o.id < d.id AND o.status IN ('pending', 'delivering'))),"
        " picked AS (SELECT cand.id FROM cand LEFT JOIN inflight ON inflight.webhook_id ="
        " cand.webhook_id WHERE cand.rn + COALESCE(inflight.n, 0) <= $2::bigint"
        " ORDER BY cand.id LIMIT $3::bigint)"
        " UPDATE webhook_deliveries d SET status = 'delivering', lease_node = $4::text,"
        " lease_until_ms = $5::bigint, attempts = d.attempts + 1 FROM picked, webhooks w"
        " WHERE d.id = picked.id AND w.id = d.webhook_id RETURNING d.id, d.webhook_id, w.url,"
        " w.secret, d.event, d.task_id, d.product, d.uin, d.to_state, COALESCE(d.info, ''),"
        " d.at_ms, d.attempts",
    [DB_DELIVERY_FINISH] =
        "UPDATE webhook_deliveries SET status = CASE WHEN $4::integer <> 0 THEN 'delivered' WHEN"
        " $5::integer <> 0 THEN 'failed' ELSE 'pending' END, next_ms = $6::bigint,"
        " lease_node = NULL, lease_until_ms = NULL, last_status = NULLIF($7::integer, 0),"
        " last_error = NULLIF($8::text, ''), delivered_ms = CASE WHEN $4::integer <> 0 THEN"
        " $9::bigint END, attempt_log = (attempt_log::jsonb || jsonb_build_array("
        "jsonb_build_object('at_ms', $9::bigint, 'status', NULLIF($7::integer, 0), 'error',"
        " NULLIF($8::text, ''), 'took_ms', $10::bigint)))::text WHERE id = $1::bigint"
        " AND status = 'delivering' AND lease_node = $2::text AND attempts = $3::integer",
    [DB_DELIVERY_RELEASE] = "UPDATE webhook_deliveries SET status = 'pending', lease_node = NULL,"
                            " lease_until_ms = NULL WHERE status = 'delivering'"
                            " AND lease_node = $1::text",
    [DB_TASK_LIST_TOTAL] = DB_SQL_TASK_LIST_TOTAL,
    [DB_TASK_LIST_PAGE] = "SELECT " STORE_TASK_COLS ", job_id FROM tasks",
    [DB_TASK_COUNTS] = DB_SQL_TASK_COUNTS(" COLLATE \"C\""),
    /* The engine's claims (store_claims.c). ?claim=update: the claim as one conditional
     * statement, for PostgreSQL-compatible distributed SQL (CockroachDB's SKIP LOCKED is slow
     * and may skip unlocked rows; YugabyteDB lacks it under SERIALIZABLE). The candidate is read
     * without a lock; the WHERE on t re-checks that it is still claimable against the row version
     * being updated (PostgreSQL re-evaluates it after waiting for a concurrent writer), so two
     * claimers never both win: the loser updates no row and tries the next candidate. */
    [DB_CLAIM_UPDATE] =
        "UPDATE tasks t SET state = 'running', start_ms = COALESCE(t.start_ms,"
        " $1::bigint), lease_node = $2::text, lease_expires_ms = " DB_NOW_MS " + $3::bigint,"
        " lease_no = t.lease_no + 1 FROM (SELECT id, state, lease_node FROM tasks c "
        "WHERE " CLAIMABLE("c.") " AND " INSTANCE_FREE(
            "c.", "$4::text") " ORDER BY created_ms, job_id LIMIT 1) old"
                              " WHERE t.id = old.id AND " CLAIMABLE(
                                  "t.") " RETURNING t.id, old.state, old.lease_node, t.lease_no, "
                                        "t.product",
    /* A batch of claims in one statement: lock up to $5 of the oldest claimable rows nobody else
     * has locked, take each (lease_no + 1, the fencing token), and write each claim's event. The
     * instance check reads the rows as they were before this statement, so a batch holds at
     * most one task per instance (a second one has the first, still initial, before it). */
    [DB_CLAIM_BATCH] = "WITH picked AS (SELECT id, state, lease_node FROM tasks c WHERE " CLAIMABLE(
        "c.") " AND " INSTANCE_FREE("c.",
                                    "$2::text") " ORDER BY created_ms, job_id"
                                                " LIMIT $5::integer"
                                                " FOR NO KEY UPDATE OF c SKIP LOCKED),"
                                                " taken AS (UPDATE tasks t SET state = 'running', "
                                                "start_ms = COALESCE(t.start_ms,"
                                                " $1::bigint), lease_node = $3::text, "
                                                "lease_expires_ms = " DB_NOW_MS " + $4::bigint,"
                                                " lease_no = t.lease_no + 1 FROM picked WHERE t.id "
                                                "= picked.id RETURNING t.id,"
                                                " t.product, t.uin, t.info, t.lease_no, "
                                                "t.created_ms, t.job_id, "
                                                "picked.state AS old_state,"
                                                " picked.lease_node AS old_node),"
                                                " ev AS (INSERT INTO task_events(task_id, seq, "
                                                "at_ms, from_state, to_state, node, message)"
                                                " SELECT taken.id, (SELECT COALESCE(MAX(seq), 0) + "
                                                "1 FROM task_events x"
                                                " WHERE x.task_id = taken.id), $1::bigint, "
                                                "old_state, 'running', $3::text,"
                                                " CASE WHEN old_state = 'initial' THEN 'started; "
                                                "lease ' || lease_no"
                                                " WHEN COALESCE(old_node, '') <> '' THEN 'lease of "
                                                "' || left(old_node, 100)"
                                                " || ' expired; taken over, lease ' || lease_no"
                                                " ELSE 'claimed; lease ' || lease_no END FROM "
                                                "taken RETURNING task_id, seq, from_state),"
                                                /* initial -> running is a transition: its
                                                 * webhook deliveries, in this statement. */
                                                " wh AS (INSERT INTO webhook_deliveries("
                                                "webhook_id, task_id, seq, event, product, uin,"
                                                " to_state, info, at_ms, next_ms, created_ms)"
                                                " SELECT w.id, ev.task_id, ev.seq, 'transition',"
                                                " taken.product, taken.uin, 'running',"
                                                " taken.info, $1::bigint, $1::bigint,"
                                                " $1::bigint FROM ev JOIN taken ON taken.id ="
                                                " ev.task_id JOIN webhooks w ON (w.product IS"
                                                " NULL OR w.product = taken.product) AND (w.uin"
                                                " IS NULL OR w.uin = taken.uin) WHERE"
                                                " ev.from_state <> 'running' AND w.events ="
                                                " 'transition')"
                                                " SELECT id, product, lease_no, old_state,"
                                                " (COALESCE(old_node, '') <> '')::integer"
                                                " FROM taken ORDER BY created_ms, job_id",
    /* The engine's progress writes (store_progress.c); the task's row is read (and locked) by
     * DB_CONTROL_READ. */
    [DB_PROGRESS_STEP] =
        "UPDATE task_steps SET state = $3::text, message = CASE WHEN $4::text IS NULL"
        " THEN message WHEN $4::text = '' THEN NULL ELSE $4::text END,"
        " output = COALESCE($5::text, output) WHERE task_id = $1::text AND idx = $2::integer",
    [DB_PROGRESS_TASK] =
        "UPDATE tasks SET state = $2::text,"
        " end_ms = CASE WHEN $3::boolean THEN $4::bigint ELSE end_ms END,"
        " info = CASE WHEN $5::text IS NULL THEN info WHEN $5::text = '' THEN NULL"
        " ELSE $5::text END,"
        " current_step = CASE WHEN $6::integer = -2 THEN current_step ELSE $6::integer END,"
        " phase = COALESCE($7::text, phase),"
        " attempt = CASE WHEN $8::integer < 0 THEN attempt ELSE $8::integer END,"
        " not_before_ms = $9::bigint,"
        " lease_node = CASE WHEN $10::boolean THEN NULL ELSE lease_node END,"
        " lease_expires_ms = CASE WHEN $10::boolean THEN NULL ELSE lease_expires_ms END,"
        " pause_requested = CASE WHEN $2::text = 'running' THEN pause_requested ELSE 0 END"
        " WHERE id = $1::text",
    /* The last writes of many runs in one statement (autocommit: one round trip, one commit),
     * the rows DB_CONTROL_READ, DB_PROGRESS_STEP, DB_PROGRESS_TASK, DB_EVENT_INSERT and
     * DB_WEBHOOK_ENQUEUE read and write one task at a time. $1 is a JSON array of the writes
     * (store_progress.c, bulk_row), $2 the node's now. Fencing: the UPDATE changes a task only
     * while it is running under the write's lease_no; a concurrent writer's row is waited for
     * and the condition checked again on its new version (READ COMMITTED), so a task killed or
     * taken over meanwhile is left alone. A final write to a task with a mysql step is left
     * out too: its step secrets are erased in C (store_step_json_erased), in the transaction of
     * the write-by-write path. Answers the ord of each write it applied. */
    [DB_PROGRESS_BULK] =
        "WITH w AS (SELECT * FROM json_to_recordset($1::json) AS x(ord integer, id text,"
        " lease_no bigint, node text, to_state text, is_final boolean, step integer,"
        " step_state text, message text, ev_message text, step_output text, info text,"
        " next_step integer, phase text, attempt integer, not_before_ms bigint,"
        " release boolean, ev boolean)),"
        " up AS (UPDATE tasks t SET state = w.to_state,"
        " end_ms = CASE WHEN w.is_final THEN $2::bigint ELSE t.end_ms END,"
        " info = CASE WHEN w.info IS NULL THEN t.info WHEN w.info = '' THEN NULL"
        " ELSE w.info END,"
        " current_step = CASE WHEN w.next_step = -2 THEN t.current_step ELSE w.next_step END,"
        " phase = COALESCE(w.phase, t.phase),"
        " attempt = CASE WHEN w.attempt < 0 THEN t.attempt ELSE w.attempt END,"
        " not_before_ms = w.not_before_ms,"
        " lease_node = CASE WHEN w.release THEN NULL ELSE t.lease_node END,"
        " lease_expires_ms = CASE WHEN w.release THEN NULL ELSE t.lease_expires_ms END,"
        " pause_requested = CASE WHEN w.to_state = 'running' THEN t.pause_requested ELSE 0 END"
        " FROM w WHERE t.id = w.id AND t.state = 'running' AND t.lease_no = w.lease_no"
        " AND NOT (w.is_final AND EXISTS (SELECT 1 FROM task_steps s WHERE s.task_id = t.id"
        " AND (strpos(s.do_json, '\"mysql\"') > 0 OR strpos(s.undo_json, '\"mysql\"') > 0)))"
        " RETURNING t.id, t.product, t.uin, t.info, w.ord),"
        " st AS (UPDATE task_steps s SET state = w.step_state,"
        " message = CASE WHEN w.message IS NULL THEN s.message WHEN w.message = '' THEN NULL"
        " ELSE w.message END, output = COALESCE(w.step_output, s.output)"
        " FROM w JOIN up ON up.id = w.id WHERE s.task_id = w.id AND s.idx = w.step"
        " AND w.step_state IS NOT NULL),"
        " ev AS (INSERT INTO task_events(task_id, seq, at_ms, from_state, to_state, node,"
        " message) SELECT w.id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_events x"
        " WHERE x.task_id = w.id), $2::bigint, 'running', w.to_state, COALESCE(w.node, ''),"
        " w.ev_message FROM w JOIN up ON up.id = w.id WHERE w.ev RETURNING task_id, seq),"
        " wh AS (INSERT INTO webhook_deliveries(webhook_id, task_id, seq, event, product, uin,"
        " to_state, info, at_ms, next_ms, created_ms) SELECT k.id, up.id, ev.seq,"
        " CASE WHEN w.is_final THEN 'final' ELSE 'transition' END, up.product, up.uin,"
        " w.to_state, up.info, $2::bigint, $2::bigint, $2::bigint FROM up"
        " JOIN w ON w.id = up.id JOIN ev ON ev.task_id = up.id"
        " JOIN webhooks k ON (k.product IS NULL OR k.product = up.product)"
        " AND (k.uin IS NULL OR k.uin = up.uin)"
        " WHERE w.to_state <> 'running' AND (k.events = 'transition' OR w.is_final))"
        " SELECT ord FROM up",
};
