// SIGTERM drains: running steps may finish for --drain-s, then they are stopped (process group
// gone) and their task is handed back; asyncd exits 0. After a restart on the same data dir the
// task runs the interrupted step again and succeeds. A data dir serves one asyncd at a time.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NO_LIMITS, SLOW, expectStartFails, start } from './lib/asyncd.mjs';
import {
  checkCloudView, checkHistory, procState, q, readLines, shStep, show, tempDir, waitFile, waitState,
  waitUntil,
} from './lib/engine.mjs';

const T = { timeout: 120000 * SLOW };
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

async function daemon(dataDir, extra = []) {
  const d = await start({ dataDir, args: [...NO_LIMITS, '--workers', '2', '--node-id', 'drain-node', ...extra] });
  daemons.push(d);
  return d;
}

/** SIGTERM and time the exit; asserts exit 0 (Daemon.stop does). */
async function term(d) {
  const t0 = Date.now();
  await d.stop({ keepData: true, timeoutMs: 15000 * SLOW });
  return Date.now() - t0;
}

test('SIGTERM with --drain-s 1 while a 30 s step runs: exit 0 within ~3 s, child gone; after restart the step runs again and succeeds', T, async () => {
  const dataDir = tempDir('asyncd-drain-data-');
  const dir = tempDir();
  const f = (n) => q(path.join(dir, n));
  let d = await daemon(dataDir, ['--drain-s', '1']);
  const id = await d.createTask({
    product: 'mongodb',
    steps: [
      shStep('before', `echo before >> ${f('runs')}; echo ready`),
      shStep('long', `echo "long $ASYNCD_ATTEMPT" >> ${f('runs')}; if [ -f ${f('marker')} ]; then echo 'second run, quick'; exit 0; fi;`
        + ` touch ${f('marker')}; sleep 30 & echo $! > ${f('child')}; echo $$ > ${f('pid')}; wait`),
      shStep('after', `echo after >> ${f('runs')}; echo 'all done'`),
    ],
  });
  const pid = Number(await waitFile(path.join(dir, 'pid')));
  const child = Number(await waitFile(path.join(dir, 'child')));
  assert.equal(procState(pid), 'alive');
  const ms = await term(d);
  assert.ok(ms < 3000 * SLOW, `exit 0 within ~3 s of SIGTERM with --drain-s 1: ${ms} ms`);
  await waitUntil(() => procState(pid) !== 'alive' && procState(child) !== 'alive', 1000 * SLOW,
    `the step (${pid}: ${procState(pid)}) and its child (${child}: ${procState(child)}) are gone`);
  assert.deepEqual(readLines(path.join(dir, 'runs')), ['before', 'long 1']);
  const said = (d.stderrText || '').split('\n').filter((l) => l.includes(`task ${id} `));
  assert.ok(said.some((l) => / info task \S+ product=mongodb .*(stopping|handed back)/.test(l)),
    `the drain's log names the task it gives back:\n${said.join('\n')}`);

  d = await daemon(dataDir, ['--drain-s', '1']);
  const task = await waitState(d, id, ['success', 'paused', 'failed']);
  assert.equal(task.state, 'success', show(task));
  const runs = readLines(path.join(dir, 'runs'));
  assert.deepEqual(runs.map((l) => l.replace(/ \d+$/, '')), ['before', 'long', 'long', 'after'],
    `the interrupted step ran again; the done step did not: ${runs}`);
  assert.deepEqual(task.steps.map((s) => s.state), ['done', 'done', 'done']);
  assert.equal(task.steps[1].message, 'second run, quick');
  assert.equal(task.info, 'all done');
  const handBack = task.events.find((e) => /stopping/.test(e.message || ''));
  assert.ok(handBack, `the drain is in the history: ${show(task)}`);
  const claims = checkHistory(task, 'success');
  assert.equal(claims.length, 2, `claimed again after the restart: ${show(task)}`);
  assert.ok(claims[1].seq > handBack.seq);
  await checkCloudView(d, task, { tzOffsetHours: 0 });
  await term(d);
});

test('SIGTERM: a step that ends within --drain-s finishes (done, not re-run); the next step runs after restart', T, async () => {
  const dataDir = tempDir('asyncd-drain-data-');
  const dir = tempDir();
  const f = (n) => q(path.join(dir, n));
  let d = await daemon(dataDir, ['--drain-s', '5']);
  const id = await d.createTask({
    product: 'cdb',
    steps: [
      shStep('short', `echo $$ > ${f('pid')}; sleep 1; echo short >> ${f('runs')}; echo 'short done'`),
      shStep('next', `echo next >> ${f('runs')}; echo 'next done'`),
    ],
  });
  await waitFile(path.join(dir, 'pid'));
  const ms = await term(d);
  assert.ok(ms >= 500 && ms < 5000 * SLOW, `waited for the step to finish, not for the whole drain: ${ms} ms`);
  assert.deepEqual(readLines(path.join(dir, 'runs')), ['short'], 'the running step finished; the next did not start');

  d = await daemon(dataDir, ['--drain-s', '5']);
  const task = await waitState(d, id, ['success', 'paused', 'failed']);
  assert.equal(task.state, 'success', show(task));
  assert.deepEqual(readLines(path.join(dir, 'runs')), ['short', 'next'], 'the finished step did not run again');
  assert.equal(task.steps[0].message, 'short done');
  checkHistory(task, 'success');
  await checkCloudView(d, task);
  await term(d);
});

test('SIGTERM with no task running exits 0 at once; idle tasks stay initial for the next start', T, async () => {
  const dataDir = tempDir('asyncd-drain-data-');
  let d = await daemon(dataDir, ['--workers', '0']);
  const id = await d.createTask({ product: 'cdb', steps: [shStep('hi', 'echo hello')] });
  const ms = await term(d);
  assert.ok(ms < 2000 * SLOW, `${ms} ms`);
  d = await daemon(dataDir);
  const task = await waitState(d, id, ['success', 'paused', 'failed']);
  assert.equal(task.state, 'success', show(task));
  assert.equal(task.info, 'hello');
  await term(d);
});

test('a data dir serves one asyncd at a time: a second one on it refuses to start', T, async () => {
  const dataDir = tempDir('asyncd-drain-data-');
  const d = await daemon(dataDir);
  await expectStartFails({ dataDir, args: [...NO_LIMITS, '--node-id', 'other-node'] }, 'the data dir is locked by a running asyncd');
  assert.ok(d.alive(), 'the first one is unharmed');
  assert.equal((await d.healthz()).status, 200);
  await term(d);
  const again = await daemon(dataDir);
  assert.equal((await again.healthz()).status, 200, 'after it stopped, the data dir can be used again');
  await term(again);
  // The embedded store lives in the data dir; with PostgreSQL only the lock and credentials do.
  const file = process.env.ASYNCD_TEST_PG_URL ? 'credentials.json' : 'asyncd.db';
  assert.ok(fs.existsSync(path.join(dataDir, file)), `${file} is in the data dir`);
});
