/* The SQLite store's SQL for the shared statements (store_db.h): one statement a slot, in the
 * order of enum db_stmt, prepared once per connection. A list of ids comes as one JSON array. */
#include "store/store_db_sql.h"
#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

#define IN_IDS " IN (SELECT value FROM json_each(?1))"

const char *const sq_db_sql[DB_STMT_COUNT] = {
    [DB_EVENT_INSERT] = "INSERT INTO task_events(task_id, seq, at_ms, from_state, to_state, node,"
                        " message) VALUES(?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_events"
                        " WHERE task_id = ?1), ?2, ?3, ?4, ?5, ?6)",
    [DB_STEPS_SECRETS_READ] = "SELECT idx, do_json, undo_json FROM task_steps WHERE task_id = ?1",
    [DB_STEPS_SECRETS_ERASE] =
        "UPDATE task_steps SET do_json = COALESCE(?3, do_json),"
        " undo_json = COALESCE(?4, undo_json) WHERE task_id = ?1 AND idx = ?2",
    /* CROSS JOIN keeps the subscriptions the outer loop (SQLite's planner put the task's lookup by
     * id first): with none, as on most stores, the statement ends at once without reading the
     * task's row. */
    [DB_WEBHOOK_ENQUEUE] =
        "INSERT INTO webhook_deliveries(webhook_id, task_id, seq, event, product, uin, to_state,"
        " info, at_ms, next_ms, created_ms) SELECT w.id, t.id, (SELECT MAX(seq) FROM task_events x"
        " WHERE x.task_id = t.id), CASE WHEN ?3 THEN 'final' ELSE 'transition' END, t.product,"
        " t.uin, ?4, t.info, ?2, ?2, ?2 FROM webhooks w CROSS JOIN tasks t"
        " ON (w.product IS NULL OR w.product = t.product) AND (w.uin IS NULL OR w.uin = t.uin)"
        " WHERE t.id = ?1 AND (w.events = 'transition' OR ?3)",
    [DB_TASK_ROW] = "SELECT " STORE_TASK_COLS " FROM tasks WHERE id = ?1",
    [DB_TASK_STEPS] = "SELECT idx, name, do_json, undo_json, retries, timeout_s, state, message,"
                      " output FROM task_steps WHERE task_id = ?1 ORDER BY idx",
    [DB_TASK_EVENTS] = "SELECT seq, at_ms, from_state, to_state, node, message FROM task_events"
                       " WHERE task_id = ?1 ORDER BY seq",
    [DB_TASK_LAST_EVENT] = "SELECT seq, at_ms, from_state, to_state, node, message"
                           " FROM task_events WHERE task_id = ?1 ORDER BY seq DESC LIMIT 1",
    [DB_COUNTER_NEXT] = "INSERT INTO counters(product, next_id) VALUES(?1, ?2)"
                        " ON CONFLICT(product) DO UPDATE SET next_id = next_id + 1"
                        " RETURNING next_id - 1",
    [DB_TASK_INSERT] = "INSERT INTO tasks(" DB_SQL_TASK_NEW_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
                       " ?7, ?8, ?9, ?10, ?11) ON CONFLICT(id) DO NOTHING",
    [DB_STEP_INSERT] = "INSERT INTO task_steps(task_id, idx, name, do_json, undo_json, retries,"
                       " timeout_s) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [DB_IDEM_READ] = "SELECT body_hash, task_id, created_ms FROM idempotency_keys"
                     " WHERE scope = ?1 AND idem_key = ?2",
    [DB_IDEM_PUT] = DB_SQL_IDEM_PUT("(?1, ?2, ?3, ?4, ?5)"),
    [DB_LEASE_RENEW] = "UPDATE tasks SET lease_expires_ms = ?4 + ?3 WHERE id = ?1"
                       " AND lease_no = ?2 AND state = 'running' AND lease_node IS NOT NULL"
                       " RETURNING pause_requested",
    /* the tasks_state index finds the running tasks */
    [DB_NODE_RENEW] = "UPDATE tasks SET lease_expires_ms = ?3 + ?2 WHERE lease_node = ?1"
                      " AND state = 'running' AND lease_expires_ms > ?3"
                      " RETURNING id, lease_no, pause_requested",
    /* The list is built once into a temporary index (the row-value IN) that each running task
     * probes; a join on json_each instead would scan the list once per task. */
    [DB_NODE_RENEW_ONLY] =
        "UPDATE tasks SET lease_expires_ms = ?4 + ?2 WHERE (id, lease_no) IN"
        " (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?3) j) AND lease_node = ?1"
        " AND state = 'running' AND lease_expires_ms > ?4 RETURNING id, lease_no, pause_requested",
    [DB_RELEASE_NODE] = "UPDATE tasks SET lease_expires_ms = NULL WHERE lease_node = ?1"
                        " AND state = 'running'",
    [DB_ACCOUNT_COUNT] = DB_SQL_ACCOUNT_COUNT,
    [DB_ACCOUNT_INSERT] = "INSERT INTO accounts(" DB_SQL_ACCOUNT_COLS ")"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* BINARY, the default collation, is byte order. */
    [DB_ACCOUNT_BY_SECRET] = DB_SQL_ACCOUNT_BY_SECRET("?1"),
    [DB_ACCOUNT_BY_UIN] = DB_SQL_ACCOUNT_BY_UIN("?1", ""),
    [DB_ACCOUNT_SET_POLICY] = "UPDATE accounts SET policy_json = ?2 WHERE uin = ?1",
    [DB_ACCOUNT_SET_DISABLED] = "UPDATE accounts SET disabled = ?2 WHERE uin = ?1",
    /* One writer: its transactions run one after another, nothing to lock (no ROOT_LOCK). */
    [DB_ACCOUNT_LOCK] = "SELECT uin FROM accounts WHERE uin = ?1",
    /* Of roots made in one millisecond, the first inserted. */
    [DB_ACCOUNT_FIRST_ROOT] = "SELECT uin FROM accounts WHERE is_root = 1"
                              " ORDER BY created_ms, rowid LIMIT 1",
    [DB_KEY_INSERT] = "INSERT INTO account_keys(" DB_SQL_KEY_COLS ")"
                      " VALUES(?1, ?2, ?3, 'enabled', ?4)",
    [DB_KEY_COUNT] = "SELECT count(*) FROM account_keys WHERE uin = ?1",
    [DB_KEY_LIST] = DB_SQL_KEY_LIST("?1", ""),
    [DB_KEY_STATUS] = "SELECT status FROM account_keys WHERE uin = ?1 AND secret_id = ?2",
    [DB_KEY_SET_STATUS] = "UPDATE account_keys SET status = ?3 WHERE uin = ?1 AND secret_id = ?2",
    [DB_KEY_DELETE] = "DELETE FROM account_keys WHERE secret_id = ?1",

    [DB_TASK_SUMMARY] = "SELECT id, product, region, uin, instance_id, state, info, created_ms,"
                        " start_ms, end_ms, lease_no, driver = 'sim' FROM tasks"
                        " WHERE id = ?1 AND product = ?2",
    [DB_MOVE_READ] = "SELECT state, current_step FROM tasks WHERE id = ?1",
    [DB_MOVE_STEP_MARK] = "UPDATE task_steps SET state = ?3, message = COALESCE(?4, message)"
                          " WHERE task_id = ?1 AND idx = ?2",
    [DB_MOVE_UPDATE] = "UPDATE tasks SET state = ?2,"
                       " start_ms = CASE WHEN ?3 AND start_ms IS NULL THEN ?5 ELSE start_ms END,"
                       " end_ms = CASE WHEN ?4 THEN ?5 ELSE end_ms END,"
                       " info = COALESCE(?6, info), current_step = current_step + ?7"
                       " WHERE id = ?1",
    [DB_CONTROL_READ] = "SELECT state, current_step, lease_no, COALESCE(lease_expires_ms, 0),"
                        " driver = 'external', phase = 'undo' FROM tasks WHERE id = ?1",
    [DB_CONTROL_STEP] = "UPDATE task_steps SET state = ?3, message = CASE WHEN ?4 IS NULL"
                        " THEN message WHEN ?4 = '' THEN NULL ELSE ?4 END"
                        " WHERE task_id = ?1 AND idx = ?2 AND (?5 IS NULL OR state = ?5)",
    [DB_CONTROL_UPDATE] =
        "UPDATE tasks SET state = ?2, end_ms = CASE WHEN ?3 THEN ?4 ELSE end_ms END,"
        " current_step = current_step + ?5, phase = COALESCE(?6, phase),"
        " attempt = CASE WHEN ?7 THEN 0 ELSE attempt END,"
        " not_before_ms = CASE WHEN ?7 THEN 0 ELSE not_before_ms END,"
        " lease_node = CASE WHEN ?8 THEN NULL ELSE lease_node END,"
        " lease_expires_ms = CASE WHEN ?8 THEN NULL ELSE lease_expires_ms END,"
        " pause_requested = ?9, lease_no = lease_no + ?10 WHERE id = ?1",

    /* The OR chain matches the partial index tasks_finished word for word (migration 11), so the
     * pick is one index range in end order. INDEXED BY: without statistics the planner prefers
     * tasks_state (every finished task, then a sort; EXPLAIN QUERY PLAN on an empty store). One
     * writer: nothing to lock. */
    [DB_PURGE_PICK] = "SELECT id FROM tasks INDEXED BY tasks_finished WHERE " SQ_STATES_FINISHED
                      " AND end_ms < ?1 ORDER BY end_ms LIMIT ?2",
    DB_SQL_PURGE_BY_IDS(IN_IDS),
    [DB_PURGE_KEYS_BEFORE] = "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM"
                             " idempotency_keys WHERE created_ms < ?1 LIMIT ?2)",

    [DB_PGROUP_RECORD] = "INSERT OR REPLACE INTO step_pgroups(node, pgid, task_id, boot_id,"
                         " start_ticks, created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [DB_PGROUP_CLEAR] = "DELETE FROM step_pgroups WHERE node = ?1 AND pgid = ?2",
    [DB_PGROUP_LIST] = "SELECT pgid, task_id, boot_id, start_ticks FROM step_pgroups"
                       " WHERE node = ?1 ORDER BY created_ms",

    /* A simulated instance starts with an empty recorded state (sim/sim.h). */
    [DB_INSTANCE_INSERT] = "INSERT INTO instances(" DB_SQL_INSTANCE_COLS ", created_ms,"
                           " updated_ms, sim_state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?9,"
                           " CASE WHEN ?8 THEN '{}' END)",
    [DB_INSTANCE_GET] = "SELECT " DB_SQL_INSTANCE_READ_COLS " FROM instances"
                        " WHERE instance_id = ?1 AND (?2 IS NULL OR product = ?2)",
    [DB_INSTANCE_UPDATE] = "UPDATE instances SET status = COALESCE(?2, status),"
                           " dsn = COALESCE(?3, dsn), reserved_accounts = COALESCE(?4,"
                           " reserved_accounts), updated_ms = ?5 WHERE instance_id = ?1",
    [DB_INSTANCE_LIST] = "SELECT " DB_SQL_INSTANCE_READ_COLS " FROM instances"
                         " WHERE (?1 IS NULL OR product = ?1) AND (?2 IS NULL OR uin = ?2)"
                         " ORDER BY created_ms, instance_id",

    [DB_SIM_STATE_GET] = "SELECT sim_state FROM instances WHERE instance_id = ?1 AND product = ?2",
    [DB_SIM_STATE_SET] = "UPDATE instances SET sim_state = ?3, updated_ms = ?4"
                         " WHERE instance_id = ?1 AND product = ?2 AND sim_state IS NOT NULL",
    [DB_SIM_RESET_STEPS] = DB_SQL_SIM_RESET_STEPS,
    [DB_SIM_RESET_EVENTS] = DB_SQL_SIM_RESET_EVENTS,
    [DB_SIM_RESET_TASKS] = DB_SQL_SIM_RESET_TASKS,
    [DB_SIM_RESET_INSTANCES] = DB_SQL_SIM_RESET_INSTANCES,

    [DB_TOKEN_INSERT] = "INSERT INTO tokens(id, name, scope, hash, created_ms)"
                        " VALUES(?1, ?2, ?3, ?4, ?5)",
    [DB_TOKEN_LIST] = DB_SQL_TOKEN_LIST,
    [DB_TOKEN_REVOKE] = "UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
    [DB_TOKEN_TOUCH] = "UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
    [DB_TOKEN_BY_HASH] =
        "SELECT " DB_SQL_TOKEN_COLS " FROM tokens WHERE hash = ?1 AND revoked_ms IS NULL",

    /* One process: leases are judged by the node's clock, the now passed last. */
    [DB_WORKER_LEASE_ROW] = "SELECT state, lease_no, COALESCE(lease_expires_ms, 0),"
                            " COALESCE(lease_node, ''), COALESCE(remote_step, 0),"
                            " COALESCE(remote_phase, 'do'), ?2 FROM tasks WHERE id = ?1",
    [DB_WORKER_HANDOVER] = "UPDATE tasks SET remote_kind = ?2, remote_step = ?3, remote_phase = ?4,"
                           " remote_lease_no = lease_no, remote_result = NULL, lease_node = NULL,"
                           " lease_expires_ms = NULL, not_before_ms = 0 WHERE id = ?1",
    [DB_WORKER_RESULT_READ] = "SELECT remote_result FROM tasks WHERE id = ?1 AND lease_no = ?2"
                              " AND state = 'running'",
    [DB_WORKER_RESULT_CLEAR] =
        "UPDATE tasks SET remote_result = NULL, remote_kind = NULL WHERE id = ?1",
    /* INDEXED BY: without statistics the planner prefers tasks_state, a walk through every
     * running task. */
    [DB_WORKER_PICK] = "SELECT id FROM tasks INDEXED BY tasks_remote"
                       " WHERE remote_kind IN (SELECT value FROM json_each(?1))"
                       " AND " DB_SQL_WAITING " AND not_before_ms <= ?2"
                       " AND (lease_expires_ms IS NULL OR lease_expires_ms <= ?2)"
                       " ORDER BY created_ms, rowid LIMIT ?3",
    [DB_WORKER_TAKE] = "UPDATE tasks SET lease_node = ?2, lease_expires_ms = ?4 + ?3,"
                       " lease_no = lease_no + 1, remote_lease_no = lease_no + 1 WHERE id = ?1"
                       " RETURNING lease_no, remote_step, remote_phase, attempt, input,"
                       " lease_expires_ms,"
                       " (SELECT name FROM task_steps WHERE task_id = ?1 AND idx = remote_step),"
                       " (SELECT CASE WHEN remote_phase = 'undo' THEN undo_json ELSE do_json END"
                       " FROM task_steps WHERE task_id = ?1 AND idx = remote_step)",
    [DB_WORKER_BEAT] = "UPDATE tasks SET lease_expires_ms = ?3 + ?2 WHERE id = ?1"
                       " RETURNING pause_requested, lease_expires_ms",
    [DB_WORKER_REPORT] = "UPDATE tasks SET remote_result = ?2, remote_kind = NULL,"
                         " lease_node = NULL, lease_expires_ms = NULL WHERE id = ?1",

    [DB_WEBHOOK_INSERT] = "INSERT INTO webhooks(id, url, secret, events, product, uin, created_ms)"
                          " VALUES(?1, ?2, ?3, ?4, NULLIF(?5, ''), NULLIF(?6, ''), ?7)",
    [DB_WEBHOOK_LIST] = DB_SQL_WEBHOOK_LIST,
    [DB_WEBHOOK_GET] = "SELECT " DB_SQL_WEBHOOK_COLS " FROM webhooks WHERE id = ?1",
    [DB_WEBHOOK_COUNTS] = "SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = ?1"
                          " GROUP BY status",
    [DB_WEBHOOK_DELETE] = "DELETE FROM webhooks WHERE id = ?1",
    [DB_WEBHOOK_DELIVERIES] = "SELECT " DB_SQL_DELIVERY_COLS " FROM webhook_deliveries"
                              " WHERE webhook_id = ?1 AND (?2 IS NULL OR task_id = ?2)"
                              " ORDER BY id DESC LIMIT ?3",
    [DB_DELIVERY_DUE] = "SELECT 1 FROM webhook_deliveries WHERE status IN ('pending', 'delivering')"
                        " AND ((status = 'pending' AND next_ms <= ?1) OR (status = 'delivering'"
                        " AND lease_until_ms <= ?1)) LIMIT 1",
    /* Due deliveries in id order, each behind no unfinished earlier one of its subscription and
     * task, and no more per subscription than per_webhook less its live leases. The one writer
     * serializes claims: no lock to take. */
    [DB_DELIVERY_PICK] =
        "WITH inflight AS (SELECT webhook_id, count(*) AS n FROM webhook_deliveries"
        " WHERE status = 'delivering' AND lease_until_ms > ?1 GROUP BY webhook_id),"
        " cand AS (SELECT d.id, d.webhook_id, row_number() OVER (PARTITION BY d.webhook_id"
        " ORDER BY d.id) AS rn FROM webhook_deliveries d WHERE d.status IN ('pending',"
        " 'delivering') AND ((d.status = 'pending' AND d.next_ms <= ?1) OR (d.status ="
        " 'delivering' AND d.lease_until_ms <= ?1)) AND NOT EXISTS (SELECT 1 FROM"
        " webhook_deliveries o WHERE o.webhook_id = d.webhook_id AND o.task_id = d.task_id"
        " AND o.id < d.id AND o.status IN ('pending', 'delivering')))"
        " SELECT cand.id FROM cand LEFT JOIN inflight ON inflight.webhook_id = cand.webhook_id"
        " WHERE cand.rn + COALESCE(inflight.n, 0) <= ?2 ORDER BY cand.id LIMIT ?3",
    [DB_DELIVERY_TAKE] = "UPDATE webhook_deliveries SET status = 'delivering', lease_node = ?2,"
                         " lease_until_ms = ?3, attempts = attempts + 1 WHERE id = ?1",
    [DB_DELIVERY_READ] =
        "SELECT d.id, d.webhook_id, w.url, w.secret, d.event, d.task_id, d.product, d.uin,"
        " d.to_state, COALESCE(d.info, ''), d.at_ms, d.attempts"
        " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?1",
    [DB_DELIVERY_FINISH] =
        "UPDATE webhook_deliveries SET status = CASE WHEN ?4 THEN 'delivered' WHEN ?5 THEN"
        " 'failed' ELSE 'pending' END, next_ms = ?6, lease_node = NULL, lease_until_ms = NULL,"
        " last_status = NULLIF(?7, 0), last_error = NULLIF(?8, ''),"
        " delivered_ms = CASE WHEN ?4 THEN ?9 END, attempt_log = json_insert(attempt_log,"
        " '$[#]', json_object('at_ms', ?9, 'status', NULLIF(?7, 0), 'error', NULLIF(?8, ''),"
        " 'took_ms', ?10)) WHERE id = ?1 AND status = 'delivering' AND lease_node = ?2"
        " AND attempts = ?3",
    [DB_DELIVERY_RELEASE] = "UPDATE webhook_deliveries SET status = 'pending', lease_node = NULL,"
                            " lease_until_ms = NULL WHERE status = 'delivering'"
                            " AND lease_node = ?1",
    [DB_TASK_LIST_TOTAL] = DB_SQL_TASK_LIST_TOTAL,
    [DB_TASK_LIST_PAGE] = "SELECT " STORE_TASK_COLS ", rowid AS job_id FROM tasks",
    [DB_TASK_COUNTS] = DB_SQL_TASK_COUNTS(""),
    /* The engine's claims (store_claims.c). One on an instance waits while an earlier task of
     * its product and instance is unfinished (a paused one too: it still holds the instance),
     * unless ?2 names its product; tasks_instance_open makes that check one index probe
     * (INDEXED BY: a query that stops matching its WHERE fails to prepare instead of walking the
     * instance's history). The check reads the rows as they were before this claim, so a batch
     * holds at most one task per instance: a second one has the first (still initial) before
     * it. INDEXED BY tasks_runnable: walked in created_ms order the first max matches end the
     * search. Left to itself the planner takes tasks_state (state = ?), reads every queued task
     * and sorts them in a temporary b-tree for each claim: with 5,000 queued no-op tasks, 13% of
     * asyncd's CPU samples and more in the heap trims that temporary b-tree's memory caused
     * (perf, issue 11). */
    [DB_CLAIM_PICK] =
        "SELECT id, state, lease_node, lease_no, product FROM tasks t INDEXED BY tasks_runnable"
        " WHERE state IN ('initial', 'running') AND not_before_ms <= ?1 AND driver = 'engine'"
        " AND NOT (remote_kind IS NOT NULL AND remote_lease_no = lease_no AND pause_requested = 0)"
        " AND (lease_expires_ms IS NULL OR lease_expires_ms <= ?1)"
        " AND (t.instance_id IS NULL OR instr(?2, ',' || t.product || ',') > 0"
        " OR NOT EXISTS (SELECT 1 FROM tasks o INDEXED BY tasks_instance_open"
        " WHERE o.product = t.product AND o.instance_id = t.instance_id"
        " AND " SQ_STATES_OPEN /* unqualified: o's, the innermost */
        " AND o.created_ms <= t.created_ms"
        " AND (o.created_ms < t.created_ms OR o.rowid < t.rowid)))"
        " ORDER BY created_ms, rowid LIMIT ?3",
    /* The lease number is the one the pick read plus one, in the same closure (no RETURNING:
     * SQLite builds and frees a temporary table per statement for it, and perf showed that
     * memory freed back to the kernel on each claim). */
    [DB_CLAIM_TAKE] = "UPDATE tasks SET state = 'running',"
                      " start_ms = COALESCE(start_ms, ?2), lease_node = ?3,"
                      " lease_expires_ms = ?2 + ?4, lease_no = ?5 WHERE id = ?1",
    /* The engine's progress writes (store_progress.c); the task's row is read by
     * DB_CONTROL_READ. */
    [DB_PROGRESS_STEP] = "UPDATE task_steps SET state = ?3, message = CASE WHEN ?4 IS NULL"
                         " THEN message WHEN ?4 = '' THEN NULL ELSE ?4 END,"
                         " output = COALESCE(?5, output) WHERE task_id = ?1 AND idx = ?2",
    [DB_PROGRESS_TASK] =
        "UPDATE tasks SET state = ?2,"
        " end_ms = CASE WHEN ?3 THEN ?4 ELSE end_ms END,"
        " info = CASE WHEN ?5 IS NULL THEN info WHEN ?5 = '' THEN NULL ELSE ?5 END,"
        " current_step = CASE WHEN ?6 = -2 THEN current_step ELSE ?6 END,"
        " phase = COALESCE(?7, phase),"
        " attempt = CASE WHEN ?8 < 0 THEN attempt ELSE ?8 END, not_before_ms = ?9,"
        " lease_node = CASE WHEN ?10 THEN NULL ELSE lease_node END,"
        " lease_expires_ms = CASE WHEN ?10 THEN NULL ELSE lease_expires_ms END,"
        " pause_requested = CASE WHEN ?2 = 'running' THEN pause_requested ELSE 0 END"
        " WHERE id = ?1",
};
