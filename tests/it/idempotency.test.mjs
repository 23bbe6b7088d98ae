// Idempotent submits (issue 13 item 4): POST /v1/tasks with an Idempotency-Key returns the first
// task made with that key and the same body (200, nothing created), answers 409 naming the key
// for another body, and two identical requests at once make one task. Keys belong to the
// caller's token; a request without a key always creates.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MANUAL_STEP, NO_LIMITS, REGION, SLOW, STORE, start, startNode } from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
let d;
before(async () => { d = await start({ args: NO_LIMITS }); });
after(async () => { if (d && d.alive()) await d.stop(); });

const fresh = (what) => `${what}-${randomBytes(6).toString('hex')}`;
const body = (type, extra = {}) => ({ product: 'cdb', region: REGION, uin: d.creds.Uin, type, steps: [MANUAL_STEP], ...extra });

function post(b, key, { token, node = d } = {}) {
  const headers = key === undefined ? {} : { 'Idempotency-Key': key };
  return node.admin('POST', '/v1/tasks', b, { headers, token });
}

async function countOfType(type) {
  const r = await d.adminOk('GET', `/v1/tasks?type=${encodeURIComponent(type)}&limit=100`);
  return r.total;
}

test('the same key and body answer the first task, and only one task exists', T, async () => {
  const type = fresh('IdemSame');
  const key = fresh('key');
  const first = await post(body(type), key);
  assert.equal(first.status, 201, first.text);
  const again = await post(body(type), key);
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.AsyncRequestId, first.json.AsyncRequestId);
  // The same fields in another order are the same request (the body is hashed canonically).
  const { steps, product, ...rest } = body(type);
  const reordered = await d.admin('POST', '/v1/tasks', undefined, {
    headers: { 'Idempotency-Key': key, 'Content-Type': 'application/json' },
    rawBody: JSON.stringify({ steps, ...rest, product }),
  });
  assert.equal(reordered.status, 200, reordered.text);
  assert.equal(reordered.json.AsyncRequestId, first.json.AsyncRequestId);
  assert.equal(await countOfType(type), 1);
  assert.equal((await d.getTask(first.json.AsyncRequestId)).type, type);
});

test('the same key with another body answers 409 naming the key, and creates nothing', T, async () => {
  const type = fresh('IdemOther');
  const key = fresh('key');
  assert.equal((await post(body(type), key)).status, 201);
  const other = await post(body(type, { on_failure: 'fail' }), key);
  assert.equal(other.status, 409, other.text);
  assert.equal(other.json.error, 'conflict');
  assert.ok(other.json.message.includes(key), `the message names the key: ${other.json.message}`);
  assert.equal(await countOfType(type), 1);
});

test('identical requests at once make one task', T, async () => {
  const type = fresh('IdemRace');
  const key = fresh('key');
  const rs = await Promise.all(Array.from({ length: 12 }, () => post(body(type), key)));
  for (const r of rs) assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.text}`);
  assert.equal(rs.filter((r) => r.status === 201).length, 1, `one creation: ${rs.map((r) => r.status)}`);
  assert.equal(new Set(rs.map((r) => r.json.AsyncRequestId)).size, 1, 'one AsyncRequestId for all');
  assert.equal(await countOfType(type), 1);
});

test('without a key every request creates a task', T, async () => {
  const type = fresh('IdemNone');
  const a = await post(body(type));
  const b = await post(body(type));
  assert.equal(a.status, 201, a.text);
  assert.equal(b.status, 201, b.text);
  assert.notEqual(a.json.AsyncRequestId, b.json.AsyncRequestId);
  assert.equal(await countOfType(type), 2);
});

test('a key is the token\'s: another token with the same key and body gets its own task', T, async () => {
  const type = fresh('IdemToken');
  const key = fresh('key');
  const op = await d.adminOk('POST', '/v1/tokens', { scope: 'operator', name: fresh('idem-op') }, 201);
  const mine = await post(body(type), key);
  const theirs = await post(body(type), key, { token: op.token });
  assert.equal(mine.status, 201, mine.text);
  assert.equal(theirs.status, 201, theirs.text);
  assert.notEqual(mine.json.AsyncRequestId, theirs.json.AsyncRequestId);
  const again = await post(body(type), key, { token: op.token });
  assert.equal(again.json.AsyncRequestId, theirs.json.AsyncRequestId);
  assert.equal(await countOfType(type), 2);
});

test('an empty key, or one longer than 255 bytes, answers 400; 255 bytes is fine', T, async () => {
  const type = fresh('IdemBad');
  for (const bad of ['', 'k'.repeat(256)]) {
    const r = await post(body(type), bad);
    assert.equal(r.status, 400, `${bad.length} bytes: ${r.status} ${r.text}`);
    assert.match(r.json.message, /Idempotency-Key/);
  }
  assert.equal(await countOfType(type), 0);
  const ok = await post(body(type), 'k'.repeat(255) + '');
  assert.equal(ok.status, 201, ok.text);
  assert.ok(d.alive());
});

test('PostgreSQL: identical requests at once to two nodes make one task',
  { ...T, skip: STORE !== 'postgres' && 'needs ASYNCD_TEST_PG_URL' }, async () => {
    const B = await startNode(d, { nodeId: 'idem-b' });
    try {
      const type = fresh('IdemNodes');
      const key = fresh('key');
      const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => post(body(type), key, { node: i % 2 ? B : d })));
      for (const r of rs) assert.ok(r.status === 200 || r.status === 201, `${r.status} ${r.text}`);
      assert.equal(rs.filter((r) => r.status === 201).length, 1, `one creation: ${rs.map((r) => r.status)}`);
      assert.equal(new Set(rs.map((r) => r.json.AsyncRequestId)).size, 1, 'one AsyncRequestId for all');
      assert.equal(await countOfType(type), 1);
      const other = await post(body(type, { on_failure: 'undo' }), key, { node: B });
      assert.equal(other.status, 409, other.text);
      assert.ok(B.alive());
    } finally {
      await B.stop();
    }
  });
