// Long-poll on GET /v1/tasks/{id}?wait=...: it answers as soon as the state changes (the engine
// running a real exec step), at the wait time when nothing changes, after a newer event with
// &since_seq=N, and at once for a final task. Several long-polls do not block other admin calls.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { NO_LIMITS, SLOW, assertAdminError, start, unknownId } from './lib/asyncd.mjs';
import { q, shStep, show, tempDir, waitFile, waitState } from './lib/engine.mjs';

const T = { timeout: 60000 * SLOW };
let d;

before(async () => {
  d = await start({ args: [...NO_LIMITS, '--workers', '4'] });
});
after(async () => {
  if (d && d.alive()) await d.stop();
});

/** GET with ?query; resolves {ms, status, task}. */
async function poll(id, query) {
  const t0 = Date.now();
  const r = await d.admin('GET', `/v1/tasks/${id}?${query}`);
  return { ms: Date.now() - t0, status: r.status, task: r.json, text: r.text };
}

const lastSeq = (task) => task.events[task.events.length - 1].seq;

/** A task whose first step writes a marker and then sleeps `secs`; then `rest` steps. */
async function taskSleeping(secs, rest = [], product = 'cdb') {
  const dir = tempDir();
  const id = await d.createTask({
    product,
    steps: [shStep('nap', `echo $$ > ${q(path.join(dir, 'nap.pid'))}; sleep ${secs}; echo napped`), ...rest],
  });
  await waitFile(path.join(dir, 'nap.pid'));
  const task = await waitState(d, id, 'running');
  return { id, dir, task };
}

test('?wait answers as soon as the state changes: a 1 s step -> success within ~1.5 s', T, async () => {
  const { id, task } = await taskSleeping(1);
  assert.equal(task.state, 'running');
  const r = await poll(id, 'wait=30s');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.task.state, 'success', `answers with the new state: ${show(r.task)}`);
  assert.equal(r.task.Status, 'SUCCESS');
  assert.ok(r.ms < 1500 * SLOW, `answered within ~1.5 s of the step starting: ${r.ms} ms`);
  assert.ok(r.ms > 300, `it did wait for the step (the task was running at the call): ${r.ms} ms`);
});

test('?wait answers with the new state when a step fails and the task pauses (mongodb)', T, async () => {
  const dir = tempDir();
  const id = await d.createTask({
    product: 'mongodb',
    steps: [shStep('fail-later', `echo $$ > ${q(path.join(dir, 'p'))}; sleep 1; echo broke >&2; exit 1`)],
  });
  await waitFile(path.join(dir, 'p'));
  await waitState(d, id, 'running');
  const r = await poll(id, 'wait=30s');
  assert.equal(r.task.state, 'paused', show(r.task));
  assert.equal(r.task.Status, 'paused');
  assert.ok(r.ms < 1500 * SLOW, `${r.ms} ms`);
});

test('?wait answers at the wait time when nothing changes (2s, 1500ms, plain seconds)', T, async () => {
  const { id } = await taskSleeping(60);
  for (const [query, want] of [['wait=2s', 2000], ['wait=1500ms', 1500], ['wait=1', 1000]]) {
    const r = await poll(id, query);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.task.state, 'running', show(r.task));
    assert.ok(r.ms >= want - 50, `${query}: not before the wait time: ${r.ms} ms`);
    assert.ok(r.ms < want + 1000 * SLOW, `${query}: at about the wait time: ${r.ms} ms`);
  }
  await d.verb(id, 'kill');
});

test('?wait on a paused task (not final) waits the whole time', T, async () => {
  const id = await d.createTask({ product: 'cdb', steps: [shStep('no', 'exit 1')] });
  await waitState(d, id, 'paused');
  const r = await poll(id, 'wait=1500ms');
  assert.equal(r.task.state, 'paused');
  assert.ok(r.ms >= 1450 && r.ms < 1500 + 1000 * SLOW, `${r.ms} ms`);
  await d.verb(id, 'kill');
});

test('?wait answers at once for a final task, with or without since_seq', T, async () => {
  const id = await d.createTask({ product: 'cdb', steps: [shStep('hi', 'echo hi')] });
  const task = await waitState(d, id, 'success');
  for (const query of ['wait=30s', `wait=30s&since_seq=${lastSeq(task)}`, `wait=30s&since_seq=${lastSeq(task) + 100}`]) {
    const r = await poll(id, query);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.task.state, 'success');
    assert.ok(r.ms < 500 * SLOW, `${query}: immediate for a final task: ${r.ms} ms`);
  }
  const killed = await d.createTask({ product: 'mongodb', steps: [shStep('no', 'exit 1')] });
  await waitState(d, killed, 'paused');
  await d.verb(killed, 'kill');
  const r = await poll(killed, 'wait=30s');
  assert.equal(r.task.state, 'killed');
  assert.ok(r.ms < 500 * SLOW, `immediate for a killed task: ${r.ms} ms`);
});

test('?wait&since_seq=N answers when an event after N exists, even without a state change', T, async () => {
  // Step 1 sleeps 1 s, then its "done" event arrives while the task stays running (step 2 is long).
  const dir = tempDir();
  const { id, task } = await taskSleeping(1, [shStep('long', `echo $$ > ${q(path.join(dir, 'l'))}; sleep 60`)]);
  const n = lastSeq(task);
  const r = await poll(id, `wait=30s&since_seq=${n}`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.task.state, 'running', `no state change, yet it answered: ${show(r.task)}`);
  assert.ok(lastSeq(r.task) > n, `the answer has an event after ${n}: ${show(r.task)}`);
  assert.ok(r.task.events.some((e) => e.seq > n && /step 1\/2 nap done/.test(e.message)), show(r.task));
  assert.ok(r.ms < 1500 * SLOW, `answered as soon as the event was recorded: ${r.ms} ms`);

  // An older since_seq: an event after it exists already, so the answer is immediate.
  const old = await poll(id, `wait=30s&since_seq=${n - 1}`);
  assert.ok(old.ms < 500 * SLOW, `since_seq below the last event: immediate (${old.ms} ms)`);
  assert.equal(old.task.state, 'running');

  // Nothing after the last seq while step 2 runs: waits the whole time.
  const m = lastSeq(r.task);
  const idle = await poll(id, `wait=1500ms&since_seq=${m}`);
  assert.equal(lastSeq(idle.task), m);
  assert.ok(idle.ms >= 1450 && idle.ms < 1500 + 1000 * SLOW, `no newer event: waits (${idle.ms} ms)`);

  // Without since_seq, step 1's completion would not have answered: only state changes count.
  const killAt = Date.now();
  const [waiting] = await Promise.all([
    poll(id, 'wait=30s'),
    (async () => { await new Promise((res) => setTimeout(res, 500)); await d.verb(id, 'kill'); })(),
  ]);
  assert.equal(waiting.task.state, 'killed', show(waiting.task));
  assert.ok(Date.now() - killAt >= 450 && waiting.ms < 500 + 1000 * SLOW, `answered at the kill: ${waiting.ms} ms`);
});

test('?wait and since_seq are validated; an unknown task answers 404 at once', T, async () => {
  const id = await d.createTask({ product: 'cdb', steps: [shStep('hi', 'echo hi')] });
  await waitState(d, id, 'success');
  for (const query of ['wait=abc', 'wait=121s', 'wait=-1s', 'wait=3h', 'wait=1s&since_seq=x', 'wait=1s&since_seq=-2']) {
    const r = await d.admin('GET', `/v1/tasks/${id}?${query}`);
    assertAdminError(r, 400, query);
  }
  const t0 = Date.now();
  const r = await d.admin('GET', `/v1/tasks/${unknownId('cdb')}?wait=10s`);
  assertAdminError(r, 404, 'unknown task');
  assert.ok(Date.now() - t0 < 500 * SLOW, 'unknown: immediate');
});

test('several long-polls at once do not hold up other admin calls', T, async () => {
  const { id } = await taskSleeping(60);
  const polls = Array.from({ length: 6 }, () => poll(id, 'wait=3s'));
  await new Promise((res) => setTimeout(res, 300));
  const t0 = Date.now();
  const h = await d.healthz();
  const g = await d.admin('GET', `/v1/tasks/${id}`);
  const ms = Date.now() - t0;
  assert.equal(h.status, 200);
  assert.equal(g.status, 200);
  assert.ok(ms < 1000 * SLOW, `other calls answered while 6 long-polls wait: ${ms} ms`);
  const done = await Promise.all(polls);
  for (const r of done) assert.equal(r.task.state, 'running');
  await d.verb(id, 'kill');
});
