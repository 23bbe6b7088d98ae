// A running mysql step holds no thread (issue 11 item 4, DESIGN.md 5): its statements run on
// libmariadb's non-blocking API in the engine's step loop, beside the exec children, bounded by
// --max-running and not by --workers. With --workers 1, 8 tasks whose one mysql step sleeps 2 s
// on the server all run at once and finish within about twice one step's time (one worker
// blocking on each in turn would take 16 s). A kill reaches a statement in flight (KILL QUERY:
// the server's processlist no longer shows it) and a timeout still fails the step with "timed out
// after N s". Runs on the suite's store (SQLite, or PostgreSQL with ASYNCD_TEST_PG_URL) and the
// run's MariaDB (or a throw-away one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { NO_LIMITS, SLOW, STORE, start } from './lib/asyncd.mjs';
import { useMariaDB } from './lib/mariadb.mjs';
import { pool, show, waitState, waitUntil } from './lib/engine.mjs';

const N = 8;
const STEP_S = 2;
const T = { timeout: 60000 * SLOW };
let d;
let db;

before(async () => {
  db = await useMariaDB();
  d = await start({ args: [...NO_LIMITS, '--workers', '1'] });
});

after(async () => {
  if (d) await d.stop();
  if (db) await db.stop();
});

/** A task of one mysql step on an instance of its own (tasks on one instance run one at a time). */
async function mysqlTask(mysql, { timeout_s, on_failure = 'fail' } = {}) {
  const instance_id = await d.createInstance({ product: 'cdb', dsn: db.dsn });
  const step = { name: 'sql', do: { mysql }, ...(timeout_s ? { timeout_s } : {}) };
  return d.createTask({ product: 'cdb', instance_id, on_failure, steps: [step] });
}

/** How many statements containing tag the server is running (not counting this query). */
async function running(tag) {
  const rows = await db.sql('SELECT COUNT(*) FROM information_schema.PROCESSLIST'
    + ` WHERE INFO LIKE '%${tag}%' AND ID <> CONNECTION_ID()`);
  return Number(rows[0][0]);
}

test(`--workers 1: ${N} tasks of one mysql "SELECT SLEEP(${STEP_S})" step run at once (${STORE})`, T, async (t) => {
  const tag = `it_loop_${randomBytes(4).toString('hex')}`;
  const ids = [];
  for (let i = 0; i < N; i++) {
    ids.push(await mysqlTask({ sql: `SELECT SLEEP(${STEP_S}), '${tag}'`, message: 'slept' }));
  }
  // What the server runs at once, sampled until every task has ended.
  let peak = 0;
  let finished = false;
  const sampler = (async () => {
    while (!finished) {
      peak = Math.max(peak, await running(tag));
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  const tasks = await pool(ids, N, (id) => waitState(d, id, ['success', 'failed', 'paused'],
    { timeoutMs: 30000 })).finally(() => { finished = true; });
  await sampler;
  for (const task of tasks) {
    assert.equal(task.state, 'success', show(task));
    assert.equal(task.steps[0].message, 'slept', show(task));
    assert.ok(task.end_ms - task.start_ms >= STEP_S * 1000 - 50, `the step slept its ${STEP_S} s: ${show(task)}`);
  }
  const span = Math.max(...tasks.map((x) => x.end_ms)) - Math.min(...tasks.map((x) => x.start_ms));
  t.diagnostic(`${N} mysql steps of ${STEP_S} s with --workers 1: first start to last end ${span} ms, `
    + `at most ${peak} statements at once on the server`);
  assert.ok(span <= 2 * STEP_S * 1000 * SLOW, `all ${N} ran within 2x one step's time: ${span} ms`);
  assert.equal(peak, N, `the server ran all ${N} statements at once (--workers 1)`);
  assert.ok(d.alive(), 'asyncd is still running');
});

test(`kill while a mysql statement runs -> killed, and the statement is gone from the server (${STORE})`, T, async () => {
  const tag = `it_kill_${randomBytes(4).toString('hex')}`;
  const id = await mysqlTask({ sql: `SELECT SLEEP(30), '${tag}'` });
  await waitUntil(async () => (await running(tag)) === 1, 15000 * SLOW, 'the statement runs on the server');
  const ans = await d.verb(id, 'kill', { message: 'operator kill' });
  assert.equal(ans.state, 'killed', show(ans));
  const t0 = Date.now();
  await waitUntil(async () => (await running(tag)) === 0, 5000 * SLOW, 'KILL QUERY ended the statement');
  const ms = Date.now() - t0;
  assert.ok(ms < 2000 * SLOW, `the statement ended ${ms} ms after the kill`);
  const task = await d.getTask(id);
  assert.equal(task.state, 'killed', show(task));
  assert.ok(d.alive(), 'asyncd is still running');
});

test(`timeout_s exceeded by a mysql statement -> the step fails "timed out after 1 s", the statement is gone (${STORE})`, T, async () => {
  const tag = `it_timeout_${randomBytes(4).toString('hex')}`;
  const id = await mysqlTask({ sql: `SELECT SLEEP(30), '${tag}'` }, { timeout_s: 1 });
  const task = await waitState(d, id, ['failed', 'success', 'paused'], { timeoutMs: 15000 });
  assert.equal(task.state, 'failed', show(task));
  assert.equal(task.steps[0].state, 'failed', show(task));
  assert.equal(task.steps[0].message, 'step 1/1 sql failed: timed out after 1 s', show(task));
  assert.ok(task.end_ms - task.start_ms < 4000 * SLOW, `stopped soon after the timeout: ${show(task)}`);
  assert.equal(await running(tag), 0, 'KILL QUERY ended the statement on the server');
  assert.ok(d.alive(), 'asyncd is still running');
});
