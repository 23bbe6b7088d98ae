// POST /v1/tasks/batch: up to 1000 tasks in one request and one transaction. Every task is
// created, in the order given, or none is and the answer names the item refused; an
// Idempotency-Key replays the whole batch; the tasks run like any other.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CDB_ID_RE, MONGODB_ID_RE, NO_LIMITS, REGION, SLOW, STORE, sleep, start, startNode } from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
let d;
before(async () => { d = await start({ args: NO_LIMITS }); });
after(async () => { if (d && d.alive()) await d.stop(); });

const fresh = (what) => `${what}-${randomBytes(6).toString('hex')}`;
const NOOP = { name: 'noop', do: { noop: {} } };
const task = (type, extra = {}) => ({ product: 'cdb', region: REGION, uin: d.creds.Uin, type, steps: [NOOP], ...extra });

function postBatch(tasks, { key, token, node = d, raw } = {}) {
  const headers = key === undefined ? {} : { 'Idempotency-Key': key };
  return node.admin('POST', '/v1/tasks/batch', raw ?? { tasks }, { headers, token });
}

async function countOfType(type) {
  return (await d.adminOk('GET', `/v1/tasks?type=${encodeURIComponent(type)}&limit=1`)).total;
}

async function waitAllSuccess(ids) {
  const deadline = Date.now() + 20000 * SLOW;
  for (;;) {
    const states = await Promise.all(ids.map(async (id) => (await d.getTask(id)).state));
    if (states.every((s) => s === 'success')) return;
    assert.ok(Date.now() < deadline, `not all success: ${states}`);
    await sleep(50);
  }
}

test('a batch creates every task, in the order given, and they all run', T, async () => {
  const prefix = fresh('Batch');
  const tasks = [0, 1, 2].map((i) => task(`${prefix}-${i}`))
    .concat([task(`${prefix}-3`, { product: 'mongodb' })]);
  const r = await postBatch(tasks);
  assert.equal(r.status, 201, r.text);
  const ids = r.json.AsyncRequestIds;
  assert.equal(ids.length, 4);
  ids.slice(0, 3).forEach((id) => assert.match(id, CDB_ID_RE));
  assert.match(ids[3], MONGODB_ID_RE);
  assert.equal(new Set(ids).size, 4);
  for (let i = 0; i < 4; i++) assert.equal((await d.getTask(ids[i])).type, `${prefix}-${i}`);
  await waitAllSuccess(ids);
  assert.ok(d.alive());
});

test('one item refused refuses the batch: 400 naming it, nothing created', T, async () => {
  const type = fresh('BatchBad');
  const cases = [
    [[task(type), task(type, { region: undefined })], /^tasks\[1\]: region: required/],
    [[task(type), task(type), 'nope'], /^tasks\[2\]: expected an object/],
    [[task(type), task(type, { uin: '999999999999' })], /^tasks\[1\]: uin: no account/],
    [[task(type, { steps: [] })], /^tasks\[0\]: steps:/],
    [[task(type), task(type, { steps: [{ name: 'x', do: { exec: 'not-an-array' } }] })], /^tasks\[1\]: steps\[0\]\.do/],
  ];
  for (const [tasks, re] of cases) {
    const r = await postBatch(tasks);
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.message, re);
  }
  assert.equal(await countOfType(type), 0);
  assert.ok(d.alive());
});

test('the batch itself: 1..1000 tasks, no other field, a runner\'s token', T, async () => {
  const type = fresh('BatchShape');
  for (const raw of [{ tasks: [] }, { tasks: {} }, {}, { tasks: [task(type)], extra: 1 }]) {
    const r = await postBatch(null, { raw });
    assert.equal(r.status, 400, `${JSON.stringify(raw)}: ${r.text}`);
  }
  const many = await postBatch(Array.from({ length: 1001 }, () => task(type)));
  assert.equal(many.status, 400, many.text);
  assert.match(many.json.message, /1\.\.1000/);
  const reader = await d.adminOk('POST', '/v1/tokens', { scope: 'reader', name: fresh('batch-reader') }, 201);
  const denied = await postBatch([task(type)], { token: reader.token });
  assert.equal(denied.status, 403, denied.text);
  assert.equal(await countOfType(type), 0);
  const full = await postBatch(Array.from({ length: 1000 }, () => task(type)));
  assert.equal(full.status, 201, full.text);
  assert.equal(full.json.AsyncRequestIds.length, 1000);
  assert.equal(await countOfType(type), 1000);
});

test('an Idempotency-Key replays the whole batch; another batch under it answers 409 naming it', T, async () => {
  const type = fresh('BatchIdem');
  const key = fresh('key');
  const tasks = [task(type), task(type, { on_failure: 'undo' })];
  const first = await postBatch(tasks, { key });
  assert.equal(first.status, 201, first.text);
  const again = await postBatch(tasks, { key });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json.AsyncRequestIds, first.json.AsyncRequestIds);
  const other = await postBatch([task(type)], { key });
  assert.equal(other.status, 409, other.text);
  assert.ok(other.json.message.includes(`"${key}"`), other.json.message);
  assert.ok(!other.json.message.includes('\u001f'), `no internal key in ${JSON.stringify(other.json.message)}`);
  // A single create under the same key is another request, not an item of the batch.
  const single = await d.admin('POST', '/v1/tasks', task(type), { headers: { 'Idempotency-Key': key } });
  assert.equal(single.status, 201, single.text);
  assert.equal(await countOfType(type), 3);
});

test('PostgreSQL: the same batch sent at once to two nodes is created once',
  { ...T, skip: STORE !== 'postgres' && 'needs ASYNCD_TEST_PG_URL' }, async () => {
    const B = await startNode(d, { nodeId: 'batch-b' });
    try {
      const type = fresh('BatchNodes');
      const key = fresh('key');
      const tasks = [task(type), task(type), task(type)];
      const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => postBatch(tasks, { key, node: i % 2 ? B : d })));
      for (const r of rs) assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.text}`);
      assert.equal(rs.filter((r) => r.status === 201).length, 1, `one creation: ${rs.map((r) => r.status)}`);
      assert.equal(new Set(rs.map((r) => JSON.stringify(r.json.AsyncRequestIds))).size, 1);
      assert.equal(await countOfType(type), 3);
      assert.ok(B.alive());
    } finally {
      await B.stop();
    }
  });
