// PostgreSQL restarted under load (the acceptance): two asyncd nodes on one database,
// tasks being created through both admin APIs and run by both, DescribeAsyncRequestInfo being
// asked; `scripts/postgres.sh stop DIR`, ~2 s with no database, `start DIR PORT`. During the
// outage calls may fail (Cloud API InternalError/ServiceUnavailable envelopes, admin 5xx): they
// are counted, not failed. Afterwards both processes are the same ones (same pids, never
// restarted), both APIs answer again, and every task in the store reaches success with exactly
// one final transition, one live lease at a time (lib/leases.mjs) and every step's side effect
// recorded at least once.
// Runs only on the PostgreSQL store with the cluster's directory known (ASYNCD_TEST_PG_URL and
// ASYNCD_TEST_PG_DIR; scripts/test.sh sets both).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  FINAL_STATES, NO_LIMITS, httpRequest, PG_DIR, PG_URL, REPO_ROOT, SLOW, sleep, start, startNode,
} from './lib/asyncd.mjs';
import { checkHistory, keepAliveAdmin, q, readLines, show, tempDir } from './lib/engine.mjs';
import { checkLeases, newLeaseStats } from './lib/leases.mjs';

const SKIP = !PG_URL
  ? 'needs the PostgreSQL store: set ASYNCD_TEST_PG_URL (make test / scripts/test.sh does)'
  : !PG_DIR || !fs.existsSync(path.join(PG_DIR, 'port'))
    ? 'needs the cluster directory to restart it: set ASYNCD_TEST_PG_DIR to the DIR given to scripts/postgres.sh start'
    : false;
const LEASE_S = 2;
const OUTAGE_MS = 2000;
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

const args = (node) => [...NO_LIMITS, '--workers', '2', '--lease-s', String(LEASE_S), '--node-id', node];

function postgresSh(...argv) {
  return new Promise((resolve, reject) => {
    execFile('bash', [path.join(REPO_ROOT, 'scripts', 'postgres.sh'), ...argv], { timeout: 120000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/postgres.sh ${argv.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

/** A task of 1-2 steps appending "<id> <step>" to DIR/<id>; some steps take 300 ms, so steps are
 * in flight when the database goes away. */
function body(uin, dir, i) {
  const steps = [];
  for (let s = 0; s < 1 + (i % 2); s++) {
    const pause = i % 20 === 0 ? '0.3' : '0.01';
    steps.push({ name: `append-${s}`, do: { exec: ['/bin/sh', '-c', `echo "$ASYNCD_TASK_ID $ASYNCD_STEP_INDEX" >> ${q(dir)}/"$ASYNCD_TASK_ID"; sleep ${pause}`] } });
  }
  return { product: i % 3 ? 'cdb' : 'mongodb', region: 'ap-guangzhou', uin, type: 'PgRestartIt', steps };
}

/** Every task in the store (paging the list). */
async function listAll(api) {
  const out = [];
  for (let off = 0; ; off += 1000) {
    const r = await api.ok('GET', `/v1/tasks?limit=1000&offset=${off}`);
    out.push(...r.tasks);
    if (r.tasks.length < 1000 || out.length >= r.total) return { tasks: out, total: r.total };
  }
}

test('PostgreSQL restarted under load: asyncd rides it out (no restart), every task finishes', { skip: SKIP, timeout: 180000 * SLOW }, async (t) => {
  const fx = tempDir('asyncd-pgr-fx-');
  const A = await start({ args: args('pgr-a') });
  daemons.push(A);
  const B = await startNode(A, { nodeId: 'pgr-b' });
  daemons.push(B);
  const pids = [A.proc.pid, B.proc.pid];
  const nodes = [A, B];

  // Load: creators through both admin APIs, and a describer through both Cloud APIs.
  const apis = nodes.map((d) => keepAliveAdmin(d, 4));
  const created = [];
  const outcomes = { create: {}, describe: {} };
  const note = (kind, what) => { outcomes[kind][what] = (outcomes[kind][what] || 0) + 1; };
  let stopLoad = false;
  let n = 0;
  const creator = async (k) => {
    while (!stopLoad) {
      const i = n++;
      const api = apis[i % 2];
      try {
        const r = await api.request('POST', '/v1/tasks', body(A.creds.Uin, fx, i));
        if (r.status === 201) { created.push(r.json.AsyncRequestId); note('create', '201'); }
        else { note('create', `${r.status} ${r.json && r.json.error}`); await sleep(50); }
      } catch (err) {
        note('create', `socket: ${err.code || err.message.slice(0, 40)}`);
        await sleep(50);
      }
      await sleep(40 + k * 5); // about 50 creates/s in all: the workers keep up when the database is there
    }
  };
  const describer = async () => {
    let i = 0;
    while (!stopLoad) {
      const id = created[Math.floor(Math.random() * created.length)];
      const d = nodes[i++ % 2];
      if (id) {
        const product = /^\d+$/.test(id) ? 'mongodb' : 'cdb';
        try {
          const r = await d.describe(product, id);
          note('describe', `ok ${r.Status}`);
        } catch (err) {
          note('describe', err.code ? `error ${err.code}` : `non-API error: ${String(err.message).slice(0, 60)}`);
        }
      }
      await sleep(20);
    }
  };
  const load = Promise.all([creator(1), creator(2), creator(3), describer()]);

  await sleep(2000);
  const before = created.length;
  const port = fs.readFileSync(path.join(PG_DIR, 'port'), 'utf8').trim();
  const stopAt = Date.now();
  await postgresSh('stop', PG_DIR);
  const stoppedAt = Date.now();
  // Readiness follows the store: not ready while PostgreSQL is down, though still alive.
  for (const d of nodes) {
    const r = await httpRequest({ port: d.adminPort, method: 'GET', path: '/readyz' });
    assert.equal(r.status, 503, `/readyz with PostgreSQL stopped: ${r.status} ${r.text}`);
    assert.equal(r.json?.status, 'unavailable');
    assert.equal((await d.healthz()).status, 200, '/healthz stays 200: the node is alive');
  }
  await sleep(OUTAGE_MS);
  const during = { ...outcomes.create };
  await postgresSh('start', PG_DIR, port);
  const upAt = Date.now();
  t.diagnostic(`PostgreSQL stopped in ${stoppedAt - stopAt} ms, down ${upAt - stoppedAt} ms; ${before} tasks created before the stop`);

  // Both APIs answer again soon after the database is back (the pool reconnects by itself).
  const back = {};
  for (const [i, d] of nodes.entries()) {
    const deadline = Date.now() + 30000 * SLOW;
    for (;;) {
      let ok = false;
      try {
        const r = await apis[i].request('GET', '/v1/tasks?limit=1');
        const id = created[0];
        const c = await d.describe(/^\d+$/.test(id) ? 'mongodb' : 'cdb', id);
        ok = r.status === 200 && typeof c.Status === 'string';
      } catch { /* not yet */ }
      if (ok) break;
      if (Date.now() > deadline) assert.fail(`node ${i} answers no admin/Cloud API call 30 s after PostgreSQL came back:\n${d.stderrTail(3000)}`);
      await sleep(100);
    }
    back[i] = Date.now() - upAt;
  }
  t.diagnostic(`admin and Cloud API answered again ${JSON.stringify(back)} ms after PostgreSQL was up`);

  await sleep(2000); // more load on the restarted database
  stopLoad = true;
  await load;
  t.diagnostic(`create outcomes: ${JSON.stringify(outcomes.create)} (by the end of the outage: ${JSON.stringify(during)})`);
  t.diagnostic(`describe outcomes: ${JSON.stringify(outcomes.describe)}`);
  assert.ok(created.length > before, 'tasks were created after the restart');

  // Every task in the store finishes (including any whose create was acknowledged by nobody).
  const deadline = Date.now() + 90000 * SLOW;
  let all;
  for (;;) {
    all = await listAll(apis[0]);
    const notFinal = all.tasks.filter((x) => !FINAL_STATES.includes(x.state));
    if (notFinal.length === 0) break;
    if (Date.now() > deadline) {
      assert.fail(`${notFinal.length} task(s) not final 90 s after the restart, e.g. ${JSON.stringify(notFinal.slice(0, 3))}\n${A.stderrTail(2000)}\n${B.stderrTail(2000)}`);
    }
    await sleep(250);
  }
  const byState = {};
  for (const x of all.tasks) byState[x.state] = (byState[x.state] || 0) + 1;
  t.diagnostic(`${all.total} tasks in the store: ${JSON.stringify(byState)}; ${created.length} creates acknowledged`);
  assert.deepEqual(byState, { success: all.total }, 'every task succeeded');
  const listed = new Set(all.tasks.map((x) => x.AsyncRequestId));
  for (const id of created) assert.ok(listed.has(id), `acknowledged task ${id} is in the store`);

  let takeovers = 0;
  let reran = 0;
  const stats = newLeaseStats();
  for (const x of all.tasks) {
    const task = await apis[1].ok('GET', `/v1/tasks/${x.AsyncRequestId}`);
    checkHistory(task, 'success');
    takeovers += checkLeases(task, { leaseMs: LEASE_S * 1000, stats }); // no two live leases at once
    const lines = readLines(path.join(fx, task.AsyncRequestId));
    for (let s = 0; s < task.steps.length; s++) {
      const k = lines.filter((l) => l === `${task.AsyncRequestId} ${s}`).length;
      assert.ok(k >= 1, `step ${s} left its side effect: ${show(task)}`);
      reran += k - 1;
    }
  }
  t.diagnostic(`${takeovers} takeover(s) ${JSON.stringify(stats.takeovers)}, ${reran} step(s) ran twice; largest clock inversion claim vs. previous lease's last event: ${stats.maxInversionMs} ms`);

  for (const [i, d] of nodes.entries()) {
    assert.ok(d.alive(), `node ${i} is still running:\n${d.stderrTail(2000)}`);
    assert.equal(d.proc.pid, pids[i], `node ${i} is the same process (asyncd needed no restart)`);
    assert.equal((await d.healthz()).status, 200);
    const r = await httpRequest({ port: d.adminPort, method: 'GET', path: '/readyz' });
    assert.equal(r.status, 200, `/readyz after PostgreSQL came back: ${r.text}`);
  }
  apis.forEach((a) => a.close());
  for (const d of nodes) await d.stop();
});
