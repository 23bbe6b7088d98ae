// Retention (issue 13 item 3): `--retention DURATION` removes finished tasks with their steps
// and events in small batches off the request path; afterwards the admin API answers 404 and
// DescribeAsyncRequestInfo the product's not-found error, as for an id that never existed, even
// on a node that had the finished task in its cache. Unfinished tasks stay however old.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DIALECT, NOT_FOUND, NO_LIMITS, PRODUCTS, SLOW, STORE, expectCode, expectStartFails, sleep, start, startNode,
} from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
const RETAIN = ['--retention', '2s', '--retention-sweep-ms', '200'];
let d;
before(async () => { d = await start({ args: [...NO_LIMITS, ...RETAIN] }); });
after(async () => { if (d && d.alive()) await d.stop(); });

/** Waits (up to 15 s) until GET /v1/tasks/{id} answers 404; returns the last status seen. */
async function waitGone(node, id) {
  let r;
  for (const until = Date.now() + 15000 * SLOW; Date.now() < until; await sleep(200)) {
    r = await node.admin('GET', `/v1/tasks/${encodeURIComponent(id)}`);
    if (r.status === 404) return 404;
    assert.equal(r.status, 200, r.text);
  }
  return r.status;
}

for (const p of PRODUCTS) {
  test(`${p}: finished tasks are purged after --retention, unfinished ones stay`, T, async () => {
    const done = await d.taskInState(p, 'success', { info: 'all done' });
    const killed = await d.taskInState(p, 'killed');
    const running = await d.taskInState(p, 'running');
    const waiting = await d.taskInState(p, 'initial');
    // Answered once before the purge: the finished task's summary is in this node's cache now.
    assert.equal((await d.describe(p, done.id)).Status, DIALECT.success[p]);
    assert.equal(await waitGone(d, done.id), 404, `${p} success task purged`);
    assert.equal(await waitGone(d, killed.id), 404, `${p} killed task purged`);
    await expectCode(d.describe(p, done.id), NOT_FOUND[p], `Describe of the purged ${p} task`);
    await expectCode(d.describe(p, killed.id), NOT_FOUND[p], `Describe of the purged killed ${p} task`);
    // Well past the retention, the unfinished ones are still there, in the admin API and Describe.
    await sleep(2500 * SLOW);
    assert.equal((await d.getTask(running.id)).state, 'running');
    assert.equal((await d.getTask(waiting.id)).state, 'initial');
    assert.equal((await d.describe(p, running.id)).Status, DIALECT.running[p]);
    const list = await d.adminOk('GET', `/v1/tasks?product=${p}&limit=1000`);
    const ids = list.tasks.map((t) => t.id ?? t.AsyncRequestId);
    assert.ok(!ids.includes(done.id) && !ids.includes(killed.id), `purged tasks are not listed: ${ids}`);
    assert.ok(ids.includes(running.id), `the running task is listed: ${ids}`);
    // Once it ends, its turn comes too.
    await d.transition(running.id, 'failed', { message: 'gave up' });
    assert.equal(await waitGone(d, running.id), 404, `${p} task that failed later is purged`);
    assert.match(d.stderrText, /retention: purged \d+ finished tasks/);
    // This node's sweeps are counted: at least the three purged here (the other product's test
    // shares the daemon).
    const m = (await d.admin('GET', '/metrics')).text;
    const purged = Number((/^asyncd_retention_purged_total\{what="tasks"\} (\d+)$/m.exec(m) || [])[1]);
    assert.ok(purged >= 3, `asyncd_retention_purged_total{what="tasks"} = ${purged}`);
    assert.ok(d.alive());
  });
}

test('--retention off keeps finished tasks; a bad DURATION refuses to start', T, async () => {
  const k = await start({ args: [...NO_LIMITS, '--retention', 'off', '--retention-sweep-ms', '200'] });
  try {
    const { id } = await k.taskInState('cdb', 'success');
    await sleep(2500 * SLOW);
    assert.equal((await k.getTask(id)).state, 'success');
    assert.equal((await k.describe('cdb', id)).Status, DIALECT.success.cdb);
    assert.match(k.stderrText, /retention: off/);
  } finally {
    await k.stop();
  }
  for (const bad of ['5x', '10', '-1d', 'd']) {
    await expectStartFails({ args: ['--retention', bad] }, `--retention ${bad}`);
  }
});

test('PostgreSQL: a node that cached a finished task answers not-found once another node purged it',
  { ...T, skip: STORE !== 'postgres' && 'needs ASYNCD_TEST_PG_URL' }, async () => {
    // B sweeps once at start and then only hourly: the purge is A's, B only has its cache.
    const B = await startNode(d, { nodeId: 'ret-b', args: [...NO_LIMITS, '--retention', '2s', '--retention-sweep-ms', '3600000'] });
    try {
      for (const p of PRODUCTS) {
        const { id } = await d.taskInState(p, 'success');
        assert.equal((await B.describe(p, id)).Status, DIALECT.success[p]);
        assert.equal((await B.describe(p, id)).Status, DIALECT.success[p], 'answered twice: cached on B');
        assert.equal(await waitGone(d, id), 404);
        await expectCode(B.describe(p, id), NOT_FOUND[p], `B's Describe of the ${p} task A purged`);
      }
      assert.ok(B.alive());
    } finally {
      await B.stop();
    }
  });
