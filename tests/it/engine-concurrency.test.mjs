// A step waiting for its exec child holds no worker thread: with default flags (--workers = the
// core count, --max-running 4096) 2,000 tasks of one `sleep 3` step all run at once, each done
// within 30 s of its creation, far more of them at the same moment than there are workers.
// The store is the suite's (SQLite on the test machine's disk, or PostgreSQL): with group commit
// a task costs about 1.3 fsyncs, so the disk is part of what is measured.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { SLOW, start } from './lib/asyncd.mjs';
import { keepAliveAdmin, pool, show, tempDir } from './lib/engine.mjs';

const N = 2000;
const STEP_S = 3;
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

/** The most [start_ms, end_ms) intervals that overlap at one moment. */
function peakOverlap(tasks) {
  const edges = [];
  for (const t of tasks) {
    edges.push([t.start_ms, 1]);
    edges.push([t.end_ms, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same ms
  let now = 0;
  let peak = 0;
  for (const [, k] of edges) {
    now += k;
    peak = Math.max(peak, now);
  }
  return peak;
}

test(`default flags: ${N} tasks of one exec "sleep ${STEP_S}" step all succeed within 30 s of creation, many more at once than --workers`, { timeout: 120000 * SLOW }, async (t) => {
  // Only the rate limit is lifted (2,000 creations in a few seconds); engine flags stay default.
  const d = await start({ dataDir: tempDir('asyncd-conc-'), args: ['--rate-limit', '*=0', '--node-id', 'conc-node'] });
  daemons.push(d);
  const workers = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const api = keepAliveAdmin(d, 16);
  const body = (i) => ({
    product: i % 2 ? 'mongodb' : 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin, type: 'ConcIt',
    steps: [{ name: 'nap', do: { exec: ['sleep', String(STEP_S)] } }],
  });
  const t0 = Date.now();
  const ids = await pool(Array.from({ length: N }, (_, i) => i), 16,
    async (i) => (await api.ok('POST', '/v1/tasks', body(i), 201)).AsyncRequestId);
  t.diagnostic(`created ${N} tasks in ${Date.now() - t0} ms`);

  const deadline = Date.now() + 60000 * SLOW;
  let total = 0;
  for (;;) {
    const r = await api.ok('GET', '/v1/tasks?status=success&limit=1');
    total = r.total;
    if (total === N) break;
    if (Date.now() > deadline) assert.fail(`${total} of ${N} tasks succeeded within 60 s\n${d.stderrTail(3000)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
  t.diagnostic(`all ${N} succeeded ${Date.now() - t0} ms after the first creation`);

  const tasks = await pool(ids, 16, (id) => api.ok('GET', `/v1/tasks/${id}`));
  api.close();
  let worst = 0;
  for (const task of tasks) {
    assert.equal(task.state, 'success', show(task));
    assert.ok(task.start_ms > 0 && task.end_ms >= task.start_ms + STEP_S * 1000 - 50,
      `the step ran its ${STEP_S} s: ${show(task)}`);
    worst = Math.max(worst, task.end_ms - task.created_ms);
  }
  const peak = peakOverlap(tasks);
  t.diagnostic(`worst creation-to-success ${worst} ms; at most ${peak} tasks running at once (${workers} workers)`);
  assert.ok(worst <= 30000 * SLOW, `every task succeeded within 30 s of its creation: worst ${worst} ms`);
  assert.ok(peak > workers, `more than --workers (${workers}) tasks ran at once: ${peak}`);
  await d.stop({ keepData: true });
});
