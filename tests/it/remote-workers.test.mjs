// Remote steps pulled by workers (docs/workers.md): POST /v1/workers/claim long-polls for steps
// whose action is {"remote": {"kind": K}}, heartbeat keeps the lease, complete/fail report; the
// engine then goes on with the task (next step, retries, on_failure). A stale token (lease
// expired and re-claimed, task killed) answers 409 and changes nothing. The reference worker in
// examples/worker completes a task, and a worker token may call nothing but /v1/workers/*.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { NO_LIMITS, REPO_ROOT, SLOW, assertAdminError, sleep, start } from './lib/asyncd.mjs';
import { shStep, waitState, waitTask } from './lib/engine.mjs';

const T = { timeout: 60000 * SLOW };
let d;
let workerToken;
let kindSeq = 0;

before(async () => {
  d = await start({ args: [...NO_LIMITS, '--workers', '4'] });
  workerToken = (await d.adminOk('POST', '/v1/tokens', { scope: 'worker', name: 'it-worker' }, 201)).token;
});
after(async () => {
  if (d && d.alive()) await d.stop();
});

/** A kind no other test uses, so tests never claim each other's steps. */
const freshKind = () => `k${process.pid}-${++kindSeq}`;
const remote = (name, kind, args = {}, extra = {}) => ({ name, do: { remote: { kind, args } }, ...extra });

async function w(pathName, body, token = workerToken) {
  return d.admin('POST', `/v1/workers/${pathName}`, body, { token });
}

async function claimOne(kind, { worker = 'w1', wait_s = 10, lease_s = 30 } = {}) {
  const r = await w('claim', { worker, kinds: [kind], max: 1, wait_s, lease_s });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.steps.length, 1, `one step claimed: ${r.text}`);
  return r.json.steps[0];
}

test('claim + complete drive a 2-step task (remote, then exec) to success', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({
    product: 'cdb',
    steps: [remote('far', kind, { size: 3 }), shStep('near', 'echo local step ran')],
  });
  const s = await claimOne(kind);
  assert.equal(s.task, id);
  assert.equal(s.step, 0);
  assert.equal(s.phase, 'do');
  assert.equal(s.kind, kind);
  assert.deepEqual(s.args, { size: 3 });
  assert.equal(s.name, 'far');
  assert.equal(typeof s.token, 'string');
  assert.ok(!s.token.includes(id), 'the token is opaque (the id is not in it as is)');
  let t = await d.getTask(id);
  assert.equal(t.state, 'running');
  assert.match(t.lease_node, /^worker:w1$/, 'the worker holds the lease');
  const hb = await w('heartbeat', { token: s.token });
  assert.equal(hb.status, 200, hb.text);
  assert.equal(hb.json.pause_requested, false);
  assert.ok(hb.json.lease_expires_ms > Date.now(), 'the lease runs ahead');
  const c = await w('complete', { token: s.token, message: 'far side done', output: { bytes: 42 } });
  assert.equal(c.status, 200, c.text);
  t = await waitState(d, id, 'success');
  assert.equal(t.steps[0].state, 'done');
  assert.equal(t.steps[0].message, 'far side done');
  assert.deepEqual(t.steps[0].output, { bytes: 42 });
  assert.equal(t.steps[1].state, 'done');
  assert.equal(t.info, 'local step ran');
  const again = await w('complete', { token: s.token, message: 'twice' });
  assertAdminError(again, 409, 'a second report with the same token');
  assert.ok(t.events.some((e) => /waiting for a remote worker/.test(e.message || '')), 'handover is an event');
  assert.ok(t.events.some((e) => /claimed by worker w1/.test(e.message || '')), 'claim is an event');
  assert.ok(t.events.some((e) => e.message === 'worker w1 reported step 1 done: far side done'), 'report is an event');
});

test('fail: retried with backoff, then on_failure pause (resume asks a worker again)', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({ product: 'mongodb', on_failure: 'pause', steps: [remote('flaky', kind, {}, { retries: 1 })] });
  const s1 = await claimOne(kind);
  assert.equal(s1.attempt, 1);
  assert.equal((await w('fail', { token: s1.token, message: 'disk full' })).status, 200);
  const s2 = await claimOne(kind, { wait_s: 10 }); // after the engine's backoff (0.5..1 s)
  assert.equal(s2.task, id);
  assert.equal(s2.attempt, 2, 'the retry is attempt 2');
  let t = await d.getTask(id);
  assert.ok(t.events.some((e) => /failed \(attempt 1 of 2\): disk full; retrying/.test(e.message || '')), 'retry event');
  assert.equal((await w('fail', { token: s2.token, message: 'still full' })).status, 200);
  t = await waitState(d, id, 'paused');
  assert.equal(t.steps[0].state, 'failed');
  assert.match(t.info, /still full/);
  await d.verb(id, 'resume');
  const s3 = await claimOne(kind);
  assert.equal(s3.task, id, 'after resume the step goes to a worker again, not to the old result');
  assert.equal((await w('complete', { token: s3.token, message: 'freed space' })).status, 200);
  t = await waitState(d, id, 'success');
  assert.equal(t.info, 'freed space');
});

test('fail with on_failure undo: the done exec step is undone', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({
    product: 'cdb', on_failure: 'undo',
    steps: [shStep('first', 'echo made', { undo: 'echo unmade' }), remote('then', kind)],
  });
  const s = await claimOne(kind);
  assert.equal(s.step, 1);
  assert.equal((await w('fail', { token: s.token, message: 'no way' })).status, 200);
  const t = await waitState(d, id, 'undoed');
  assert.equal(t.steps[0].state, 'undone');
  assert.equal(t.steps[1].state, 'failed');
});

test('a remote undo goes to a worker too, with phase "undo"', T, async () => {
  const kind = freshKind(), undoKind = freshKind();
  const id = await d.createTask({
    product: 'cdb', on_failure: 'undo',
    steps: [remote('a', kind, { n: 1 }, { undo: { remote: { kind: undoKind, args: { n: -1 } } } }), remote('b', kind)],
  });
  const a = await claimOne(kind);
  assert.equal((await w('complete', { token: a.token, message: 'a done', output: { made: 'x' } })).status, 200);
  const b = await claimOne(kind);
  assert.equal(b.step, 1);
  assert.equal((await w('fail', { token: b.token, message: 'b broke' })).status, 200);
  const u = await claimOne(undoKind);
  assert.equal(u.task, id);
  assert.equal(u.step, 0);
  assert.equal(u.phase, 'undo');
  assert.deepEqual(u.args, { n: -1 });
  assert.equal((await w('complete', { token: u.token, message: 'a undone' })).status, 200);
  const t = await waitState(d, id, 'undoed');
  assert.equal(t.steps[0].state, 'undone');
});

test('a stale token answers 409 and changes nothing: lease expired and re-claimed by another worker', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({ product: 'cdb', steps: [remote('slow', kind)] });
  const s1 = await claimOne(kind, { worker: 'sleepy', lease_s: 1 });
  await sleep(1300);
  const hb = await w('heartbeat', { token: s1.token });
  assertAdminError(hb, 409, 'heartbeat after the lease expired');
  assert.match(hb.json.message, /expired/);
  const s2 = await claimOne(kind, { worker: 'eager', wait_s: 5 });
  assert.equal(s2.task, id, 'the step is claimable again once the lease expired');
  assert.notEqual(s2.token, s1.token);
  const late = await w('complete', { token: s1.token, message: 'late' });
  assertAdminError(late, 409, 'complete with the old token');
  assert.match(late.json.message, /no longer current/);
  let t = await d.getTask(id);
  assert.equal(t.lease_node, 'worker:eager', 'the late report changed nothing');
  assert.equal((await w('complete', { token: s2.token, message: 'on time' })).status, 200);
  t = await waitState(d, id, 'success');
  assert.equal(t.info, 'on time');
});

test('a stale token answers 409 after an operator kills the task', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({ product: 'cdb', steps: [remote('doomed', kind)] });
  const s = await claimOne(kind);
  const k = await d.verb(id, 'kill', { message: 'stop it' });
  assert.equal(k.state, 'killed');
  const hb = await w('heartbeat', { token: s.token });
  assertAdminError(hb, 409, 'heartbeat after kill');
  assert.match(hb.json.message, /killed/);
  assertAdminError(await w('complete', { token: s.token, message: 'done anyway' }), 409, 'complete after kill');
  const t = await d.getTask(id);
  assert.equal(t.state, 'killed', 'still killed');
  assert.notEqual(t.info, 'done anyway');
  const none = await w('claim', { worker: 'w1', kinds: [kind], max: 5, wait_s: 0 });
  assert.deepEqual(none.json.steps, [], 'a killed task is not claimable');
});

test('pause while a worker holds the step: heartbeat says so, the task pauses after the report', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({ product: 'cdb', steps: [remote('a', kind), shStep('b', 'echo b ran')] });
  const s = await claimOne(kind);
  const p = await d.verb(id, 'pause');
  assert.equal(p.pause_requested, 1, 'a held task pauses at the step boundary');
  const hb = await w('heartbeat', { token: s.token });
  assert.equal(hb.status, 200, hb.text);
  assert.equal(hb.json.pause_requested, true);
  assert.equal((await w('complete', { token: s.token, message: 'a done' })).status, 200);
  let t = await waitState(d, id, 'paused');
  await d.verb(id, 'resume');
  t = await waitState(d, id, 'success');
  assert.equal(t.steps[0].message, 'a done', 'the reported result was kept across the pause');
  assert.equal(t.info, 'b ran');
});

test('pause while the step waits for a worker: paused at once, not claimable; resume hands it over again', T, async () => {
  const kind = freshKind();
  const id = await d.createTask({ product: 'cdb', steps: [remote('a', kind)] });
  await waitTask(d, id, (t) => t.events.some((e) => /waiting for a remote worker/.test(e.message || '')), { what: 'handover' });
  const p = await d.verb(id, 'pause');
  assert.equal(p.state, 'paused', 'nobody holds it: it pauses now');
  const none = await w('claim', { worker: 'w1', kinds: [kind], max: 1, wait_s: 1 });
  assert.deepEqual(none.json.steps, [], 'a paused task is not claimable');
  await d.verb(id, 'resume');
  const s = await claimOne(kind);
  assert.equal(s.task, id);
  assert.equal((await w('complete', { token: s.token, message: 'after resume' })).status, 200);
  const t = await waitState(d, id, 'success');
  assert.equal(t.info, 'after resume');
});

test('claim long-polls: it answers as soon as a step becomes available', T, async () => {
  const kind = freshKind();
  const t0 = Date.now();
  const pending = w('claim', { worker: 'poller', kinds: ['other-kind', kind], max: 4, wait_s: 20 });
  await sleep(700);
  const id = await d.createTask({ product: 'cdb', steps: [remote('x', kind)] });
  const r = await pending;
  const ms = Date.now() - t0;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.steps.length, 1);
  assert.equal(r.json.steps[0].task, id);
  assert.ok(ms >= 650, `it waited for the step: ${ms} ms`);
  assert.ok(ms < 2500 * SLOW, `it answered soon after the step appeared: ${ms} ms`);
  const t1 = Date.now();
  const empty = await w('claim', { worker: 'poller', kinds: [freshKind()], max: 4, wait_s: 1 });
  assert.deepEqual(empty.json.steps, []);
  assert.ok(Date.now() - t1 >= 900, 'an empty long-poll lasts its wait_s');
  assert.equal((await w('complete', { token: r.json.steps[0].token })).status, 200);
  await waitState(d, id, 'success');
});

test('bad claims answer 400', T, async () => {
  assertAdminError(await w('claim', { kinds: ['a'] }), 400, 'no worker');
  assertAdminError(await w('claim', { worker: 'w', kinds: [] }), 400, 'no kinds');
  assertAdminError(await w('claim', { worker: 'w', kinds: ['a'], wait_s: 600 }), 400, 'wait over the cap');
  assertAdminError(await w('heartbeat', { token: 'nonsense' }), 400, 'not a token');
  const bad = await d.admin('POST', '/v1/tasks', { product: 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin, type: 'X',
    steps: [{ name: 'r', do: { remote: { kind: 7 } } }] });
  assertAdminError(bad, 400, 'a kind must be a string');
});

test('a worker token may call only /v1/workers/*; an admin token may call them too', T, async () => {
  for (const [m, p, b] of [['GET', '/v1/tasks'], ['POST', '/v1/tasks', {}], ['GET', '/v1/instances'], ['GET', '/v1/tokens']]) {
    assertAdminError(await d.admin(m, p, b, { token: workerToken }), 403, `worker token on ${m} ${p}`);
  }
  const r = await d.admin('POST', '/v1/workers/claim', { worker: 'admin', kinds: [freshKind()], wait_s: 0 });
  assert.equal(r.status, 200, r.text);
  const op = (await d.adminOk('POST', '/v1/tokens', { scope: 'operator', name: 'op' }, 201)).token;
  assertAdminError(await w('claim', { worker: 'op', kinds: ['a'] }, op), 403, 'an operator token is not a worker');
});

test('the reference worker (examples/worker) completes tasks', T, async () => {
  const ids = [];
  for (let i = 0; i < 3; i++) {
    ids.push(await d.createTask({ product: 'cdb', steps: [{ name: 'e', do: { remote: { kind: 'echo', args: { message: `hi ${i}`, n: i } } } }] }));
  }
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'examples/worker/worker.mjs'), '--url', `http://127.0.0.1:${d.adminPort}`,
    '--kinds', 'echo', '--name', 'ref', '--max', '2', '--idle-exit', '2', '--quiet'], { env: { ...process.env, ASYNCD_TOKEN: workerToken }, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  for (const [i, id] of ids.entries()) {
    const t = await waitState(d, id, 'success', { timeoutMs: 20000 });
    assert.equal(t.info, `hi ${i}`);
    assert.deepEqual(t.steps[0].output, { message: `hi ${i}`, n: i });
  }
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  const stats = JSON.parse(out.trim().split('\n').pop());
  assert.equal(stats.completed, 3, out);
  assert.equal(stats.lost, 0);
});

test('a remote step without a kind still means an externally driven task (transition)', T, async () => {
  const id = await d.createTask({ product: 'cdb' }); // MANUAL_STEP: {"remote": {"queue": ...}}
  const t = await waitTask(d, id, (x) => x.driver === 'external', { what: 'driver external' });
  assert.equal(t.state, 'initial', 'the engine leaves it alone');
});
