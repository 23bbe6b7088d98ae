// Per-second limits per root account, product and action: the documented defaults (cdb 40,
// mongodb 20 for DescribeAsyncRequestInfo), RequestLimitExceeded past them, and --rate-limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SLOW, expectStartFails, sleep, start } from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };

/** Fires n DescribeAsyncRequestInfo calls at once; returns {ok, limited, other}. */
async function burst(d, product, id, n, opts = {}) {
  const c = d.client(product, opts);
  const results = await Promise.allSettled(
    Array.from({ length: n }, () => c.DescribeAsyncRequestInfo({ AsyncRequestId: id })));
  const out = { ok: 0, limited: 0, other: [] };
  for (const r of results) {
    if (r.status === 'fulfilled') out.ok++;
    else if (r.reason?.code === 'RequestLimitExceeded') out.limited++;
    else out.other.push(`${r.reason?.code}: ${r.reason?.message}`);
  }
  return out;
}

/** Waits until the sliding one-second window has surely emptied. */
const windowPasses = () => sleep(1100);

describe('default limits', T, () => {
  let d;
  let B;
  const ids = {};
  const idsB = {};
  before(async () => {
    d = await start();
    B = await d.createAccount();
    for (const p of ['cdb', 'mongodb']) {
      ids[p] = (await d.taskInState(p, 'running')).id;
      idsB[p] = (await d.taskInState(p, 'running', { uin: B.Uin })).id;
    }
    // Warm the SDK (first-call module loading) so bursts are really concurrent.
    await d.describe('cdb', ids.cdb);
    await d.describe('mongodb', ids.mongodb);
    await windowPasses();
  });
  after(async () => { await d?.stop(); });

  test('mongodb: 21 concurrent calls -> exactly 20 answered and 1 RequestLimitExceeded', async () => {
    const r = await burst(d, 'mongodb', ids.mongodb, 21);
    assert.deepEqual(r, { ok: 20, limited: 1, other: [] });
    await windowPasses();
  });

  test('cdb: 41 concurrent calls -> exactly 40 answered and 1 RequestLimitExceeded', async () => {
    const r = await burst(d, 'cdb', ids.cdb, 41);
    assert.deepEqual(r, { ok: 40, limited: 1, other: [] });
    await windowPasses();
  });

  test('an exhausted limit leaves other accounts and the other product alone, and recovers after a second', async () => {
    const a = await burst(d, 'mongodb', ids.mongodb, 25);
    assert.deepEqual(a, { ok: 20, limited: 5, other: [] }, 'account A exhausted');
    const b = await burst(d, 'mongodb', idsB.mongodb, 20, { creds: B });
    assert.deepEqual(b, { ok: 20, limited: 0, other: [] }, 'account B has its own budget');
    const cdb = await d.describe('cdb', ids.cdb);
    assert.equal(cdb.Status, 'RUNNING', "A's cdb budget is separate from its mongodb budget");
    await windowPasses();
    const again = await burst(d, 'mongodb', ids.mongodb, 20);
    assert.deepEqual(again, { ok: 20, limited: 0, other: [] }, 'after 1.1 s A is served again');
    await windowPasses();
  });

  test("a sub-account spends its root account's budget", async () => {
    const sub = await d.createSubAccount();
    await d.setPolicy(sub.Uin, ['*']);
    const rootHalf = await burst(d, 'mongodb', ids.mongodb, 12);
    const subHalf = await burst(d, 'mongodb', ids.mongodb, 12, { creds: sub });
    assert.equal(rootHalf.ok + subHalf.ok, 20, `root ${JSON.stringify(rootHalf)} sub ${JSON.stringify(subHalf)}`);
    assert.equal(rootHalf.limited + subHalf.limited, 4);
    await windowPasses();
  });

  test('refused calls do not count: steady 20/s for 3 seconds is always served', async () => {
    let ok = 0;
    for (let s = 0; s < 3; s++) {
      const r = await burst(d, 'mongodb', ids.mongodb, 20);
      ok += r.ok;
      assert.deepEqual(r.other, []);
      await windowPasses();
    }
    assert.equal(ok, 60);
  });

  test('RequestLimitExceeded is an HTTP 200 envelope with a RequestId', async () => {
    await burst(d, 'mongodb', ids.mongodb, 20);
    const r = await d.tc3({ product: 'mongodb', payload: { AsyncRequestId: ids.mongodb } });
    assert.equal(r.status, 200);
    assert.equal(r.json?.Response?.Error?.Code, 'RequestLimitExceeded', r.text);
    assert.match(r.json.Response.RequestId, /^[0-9a-f-]{36}$/);
    await windowPasses();
  });
});

describe('--rate-limit flags', T, () => {
  test('--rate-limit mongodb:DescribeAsyncRequestInfo=5 lowers mongodb only', async () => {
    const d = await start({ args: ['--rate-limit', 'mongodb:DescribeAsyncRequestInfo=5'] });
    try {
      const m = (await d.taskInState('mongodb', 'running')).id;
      const c = (await d.taskInState('cdb', 'running')).id;
      await d.describe('mongodb', m);
      await windowPasses();
      assert.deepEqual(await burst(d, 'mongodb', m, 6), { ok: 5, limited: 1, other: [] });
      assert.deepEqual(await burst(d, 'cdb', c, 41), { ok: 40, limited: 1, other: [] }, 'cdb keeps its default');
    } finally {
      await d.stop();
    }
  });

  test('"*=0" lifts every limit; later flags win', async () => {
    const d = await start({ args: ['--rate-limit', 'mongodb:*=3', '--rate-limit', '*=0'] });
    try {
      const m = (await d.taskInState('mongodb', 'running')).id;
      await d.describe('mongodb', m);
      assert.deepEqual(await burst(d, 'mongodb', m, 60), { ok: 60, limited: 0, other: [] });
    } finally {
      await d.stop();
    }
    const d2 = await start({ args: ['--rate-limit', '*=0', '--rate-limit', 'cdb:DescribeAsyncRequestInfo=2'] });
    try {
      const c = (await d2.taskInState('cdb', 'running')).id;
      await d2.describe('cdb', c);
      await windowPasses();
      assert.deepEqual(await burst(d2, 'cdb', c, 3), { ok: 2, limited: 1, other: [] });
    } finally {
      await d2.stop();
    }
  });

  test('a malformed --rate-limit is refused at start-up', async () => {
    for (const bad of ['mongodb=5', 'mongodb:Describe=x', 'cdb:DescribeAsyncRequestInfo=-1', '']) {
      await expectStartFails({ args: ['--rate-limit', bad] }, `--rate-limit ${JSON.stringify(bad)}`);
    }
  });
});
