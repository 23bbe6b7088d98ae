// A restart on the same data dir keeps everything: credentials.json (byte for byte, mode 0600),
// accounts, policies, instances, tasks with their states and times. SIGTERM drains and exits 0;
// what the admin API acknowledged survives even kill -9.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  DENIED, NO_LIMITS, PRODUCTS, SIGN_MODES, SLOW, STATES, expectCode, expectStartFails, sleep, start,
} from './lib/asyncd.mjs';

const T = { timeout: 120000 * SLOW };
const started = [];
after(async () => {
  for (const d of started) if (d.alive()) await d.kill9();
});

async function answers(d, ids, creds) {
  const out = {};
  for (const p of PRODUCTS) {
    for (const [state, id] of Object.entries(ids[p])) {
      const r = await d.describe(p, id, creds ? { creds } : {});
      delete r.RequestId;
      out[`${p}/${state}`] = r;
    }
  }
  return out;
}

test('stop (SIGTERM, exit 0) and start again on the same data dir: everything is still there', T, async () => {
  const d = await start({ args: NO_LIMITS });
  started.push(d);
  const credText = fs.readFileSync(d.credPath, 'utf8');
  assert.equal(fs.statSync(d.credPath).mode & 0o777, 0o600, 'credentials.json is mode 0600');

  const B = await d.createAccount();
  const sub = await d.createSubAccount();
  await d.setPolicy(sub.Uin, ['cdb:*']);
  const inst = await d.createInstance({ product: 'mongodb', status: 'isolated' });
  const abnormal = (await d.taskInState('mongodb', 'running', { instance_id: inst })).id;
  const ids = { cdb: {}, mongodb: {} };
  for (const p of PRODUCTS) {
    for (const state of STATES) ids[p][state] = (await d.taskInState(p, state, state === 'success' ? { info: 'kept' } : {})).id;
  }
  const bTask = (await d.taskInState('cdb', 'paused', { uin: B.Uin })).id;
  const before = await answers(d, ids);
  const adminBefore = await d.getTask(ids.mongodb.success);
  await sleep(1100); // so a time re-stamped at restart would show

  await d.restart();
  assert.equal(fs.readFileSync(d.credPath, 'utf8'), credText, 'credentials.json unchanged');
  assert.equal(fs.statSync(d.credPath).mode & 0o777, 0o600, 'credentials.json still mode 0600');

  assert.deepEqual(await answers(d, ids), before, 'every task answers as before, times included');
  for (const mode of SIGN_MODES) {
    const r = await d.describe('cdb', ids.cdb.success, mode);
    assert.deepEqual([r.Status, r.Info], ['SUCCESS', 'kept'], mode.name);
  }
  const adminAfter = await d.getTask(ids.mongodb.success);
  for (const k of ['state', 'Status', 'created_ms', 'start_ms', 'end_ms', 'events', 'steps', 'region', 'uin', 'type']) {
    assert.deepEqual(adminAfter[k], adminBefore[k], `admin ${k} unchanged`);
  }

  assert.equal((await d.describe('cdb', bTask, { creds: B })).Status, 'PAUSED', 'account B still valid');
  assert.equal((await d.describe('cdb', ids.cdb.running, { creds: sub })).Status, 'RUNNING', 'sub-account and policy kept');
  await expectCode(d.describe('mongodb', ids.mongodb.running, { creds: sub }), DENIED.mongodb, 'policy still limits');
  await expectCode(d.describe('mongodb', abnormal), 'InvalidParameterValue.StatusAbnormal', 'instance status kept');

  // Tasks go on moving after the restart, and new ids do not collide with old ones.
  await d.verb(bTask, 'resume');
  await d.transition(bTask, 'success', { step_done: true, info: 'after restart' });
  const r = await d.describe('cdb', bTask, { creds: B });
  assert.deepEqual([r.Status, r.Info], ['SUCCESS', 'after restart']);
  const all = new Set([...Object.values(ids.cdb), ...Object.values(ids.mongodb)]);
  for (const p of PRODUCTS) {
    for (let i = 0; i < 5; i++) {
      const id = await d.createTask({ product: p });
      assert.ok(!all.has(id), `new ${p} id ${id} is fresh`);
      all.add(id);
    }
  }
  await d.stop();
});

test('what the admin API acknowledged survives kill -9', T, async () => {
  const d = await start({ args: NO_LIMITS });
  started.push(d);
  const credText = fs.readFileSync(d.credPath, 'utf8');
  const B = await d.createAccount();
  const ids = [];
  for (let i = 0; i < 20; i++) {
    const p = PRODUCTS[i % 2];
    const { id } = await d.taskInState(p, i % 3 === 0 ? 'success' : 'paused', { info: `n${i}` });
    ids.push([p, id, i % 3 === 0 ? 'success' : 'paused']);
  }
  const last = await d.taskInState('mongodb', 'killed');
  await d.kill9();
  await d.restart();
  assert.equal(fs.readFileSync(d.credPath, 'utf8'), credText);
  for (const [, id, state] of ids) assert.equal((await d.getTask(id)).state, state, id);
  assert.equal((await d.getTask(last.id)).state, 'killed');
  assert.equal((await d.describe('mongodb', last.id)).Status, 'failed');
  const bt = await d.createTask({ product: 'cdb', uin: B.Uin });
  assert.equal((await d.describe('cdb', bt, { creds: B })).Status, 'INITIAL', 'account created before kill -9 is valid');
  await d.stop();
});

test('SIGTERM exits 0 promptly even with idle keep-alive connections open', T, async () => {
  const d = await start({ args: NO_LIMITS });
  started.push(d);
  const id = await d.createTask({ product: 'cdb' });
  const c = d.cdb(); // keep-alive agent: its socket stays open and idle after the call
  await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
  const agentSockets = d.agents.flatMap((a) => Object.values(a.freeSockets).flat());
  assert.ok(agentSockets.length >= 1, 'an idle keep-alive socket is open');
  const t0 = Date.now();
  d.agents = []; // do not let stop() close them first
  await d.stop();
  const took = Date.now() - t0;
  assert.ok(took < 10000 * SLOW, `SIGTERM took ${took} ms with an idle connection open`);
  for (const s of agentSockets) s.destroy();
});

test('SIGTERM during a stream of requests: every answer is well-formed, exit 0', T, async () => {
  const d = await start({ args: NO_LIMITS });
  started.push(d);
  const id = await d.createTask({ product: 'mongodb' });
  const c = d.mongodb();
  await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
  const calls = Array.from({ length: 60 }, (_, i) => sleep(i * 5).then(() => c.DescribeAsyncRequestInfo({ AsyncRequestId: id })));
  await sleep(100);
  const stopping = d.stop();
  const results = await Promise.allSettled(calls);
  for (const r of results) {
    if (r.status === 'fulfilled') assert.equal(r.value.Status, 'initial');
    else {
      // Acceptable: the connection was refused/closed, or a ServiceUnavailable envelope.
      // Not acceptable: a non-200 HTTP status (the SDK's bare error) or any other API error.
      assert.equal(r.reason.httpCode, undefined, `HTTP ${r.reason.httpCode} during drain: ${r.reason.message}`);
      assert.ok(!r.reason.code || r.reason.code === 'ServiceUnavailable', `API error during drain: ${r.reason.code} ${r.reason.message}`);
    }
  }
  await stopping;
});

test('a second asyncd on a data dir in use refuses to start', T, async () => {
  const d = await start({ args: NO_LIMITS });
  started.push(d);
  await expectStartFails({ args: NO_LIMITS, dataDir: d.dataDir }, 'two daemons on one embedded store');
  assert.ok((await d.healthz()).status === 200, 'the first one is unharmed');
  await d.stop();
});
