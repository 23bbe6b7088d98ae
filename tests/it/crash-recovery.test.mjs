// Crash recovery (the issue's acceptance): 1,000 exec tasks in flight, asyncd killed with SIGKILL
// at a random moment while tasks run, restarted on the same data dir. Every task must reach success
// (none lost), with exactly one transition into a final state, every step's side effect recorded
// at least once, steps recorded done before the crash not run again, at most one in-flight step per
// worker run twice, and lease numbers strictly increasing per task (no overlapping leases).
// A second test restarts under another node id: the dead node's leases must expire first.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FINAL_STATES, NO_LIMITS, SLOW, prng, sleep, start } from './lib/asyncd.mjs';
import { checkHistory, claimEvents, keepAliveAdmin, pool, q, readLines, show, tempDir } from './lib/engine.mjs';

const WORKERS = 4;
// Tasks in flight at once: a step waiting for its child holds no worker, so --max-running (not
// --workers) bounds how many a crash can catch mid-flight.
const MAX_RUNNING = 4;
const LEASE_S = 2;
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

const SEED = Number(process.env.IT_SEED || Date.now() % 1000000);

function args(node) {
  return [...NO_LIMITS, '--workers', String(WORKERS), '--max-running', String(MAX_RUNNING), '--lease-s', String(LEASE_S), '--node-id', node];
}

/** The task body: 1-2 steps, each appending "<taskid> <step>" to DIR/<taskid> and sleeping a few ms. */
function taskBody(d, dir, rand, i) {
  const nSteps = rand() < 0.5 ? 1 : 2;
  const steps = [];
  for (let s = 0; s < nSteps; s++) {
    const ms = 3 + Math.floor(rand() * 8);
    steps.push({
      name: `append-${s}`,
      do: { exec: ['/bin/sh', '-c', `echo "$ASYNCD_TASK_ID $ASYNCD_STEP_INDEX" >> ${q(dir)}/"$ASYNCD_TASK_ID"; sleep 0.0${ms < 10 ? `0${ms}` : ms}`] },
    });
  }
  return { product: i % 2 ? 'mongodb' : 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin, type: 'CrashIt', steps };
}

/** Who still holds DIR/asyncd.lock open (for a refused restart): pid, parent, command line. */
function lockHolders(dataDir) {
  const lock = path.join(dataDir, 'asyncd.lock');
  const out = [];
  for (const pid of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let target;
      try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      if (target === lock) {
        let cmd = '?';
        let ppid = '?';
        try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { /* gone */ }
        try { const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); ppid = st.slice(st.lastIndexOf(')') + 2).split(' ')[1]; } catch { /* gone */ }
        out.push(`pid ${pid} (ppid ${ppid}) fd ${fd}: ${cmd}`);
      }
    }
  }
  return out.length ? `processes holding ${lock}:\n${out.join('\n')}` : `nobody holds ${lock} open any more`;
}

async function createMany(d, dir, n, rand) {
  const api = keepAliveAdmin(d, 16);
  const bodies = Array.from({ length: n }, (_, i) => taskBody(d, dir, rand, i));
  const t0 = Date.now();
  const ids = await pool(bodies, 16, async (b) => (await api.ok('POST', '/v1/tasks', b, 201)).AsyncRequestId);
  api.close();
  return { ids, bodies, ms: Date.now() - t0 };
}

/** {state: count} over every task (GET /v1/tasks?limit=1000) and the answer's total. */
async function counts(api) {
  const r = await api.ok('GET', '/v1/tasks?limit=1000');
  const by = {};
  for (const t of r.tasks) by[t.state] = (by[t.state] || 0) + 1;
  return { by, total: r.total, listed: r.tasks.length };
}

const finalCount = (c) => FINAL_STATES.reduce((s, k) => s + (c.by[k] || 0), 0);

async function waitAllFinal(d, n, timeoutMs) {
  const api = keepAliveAdmin(d, 2);
  const deadline = Date.now() + timeoutMs;
  let c;
  try {
    for (;;) {
      c = await counts(api);
      if (c.total === n && finalCount(c) === n) return c;
      if (Date.now() > deadline) assert.fail(`not every task final within ${timeoutMs} ms: ${JSON.stringify(c)}\n${d.stderrTail(3000)}`);
      await sleep(250);
    }
  } finally {
    api.close();
  }
}

/** Runs N tasks, kills asyncd at a random moment while they run, restarts it as `node2`.
 * Returns what the checks need. */
async function crashAndRecover(t, { n, node1, node2 }) {
  const rand = prng(SEED);
  t.diagnostic(`seed ${SEED} (IT_SEED=${SEED} repeats the task mix and the kill moment)`);
  const dataDir = tempDir('asyncd-crash-data-');
  const dir = tempDir('asyncd-crash-fx-');
  const d = await start({ dataDir, args: args(node1) });
  daemons.push(d);

  const { ids, bodies, ms } = await createMany(d, dir, n, rand);
  t.diagnostic(`created ${n} tasks in ${ms} ms`);
  const api = keepAliveAdmin(d, 2);
  let c = await counts(api);
  const doneAtCreate = finalCount(c);
  // A random moment while tasks still run: when a random share of the rest is done.
  const target = doneAtCreate + Math.floor((n - doneAtCreate) * (0.1 + 0.6 * rand()));
  while (finalCount(c) < target) {
    await sleep(Math.floor(rand() * 40));
    c = await counts(api);
  }
  api.close();
  assert.ok(finalCount(c) < n, `tasks were still in flight at the kill: ${JSON.stringify(c)}`);
  const killAt = Date.now();
  await d.kill9();
  const deadAt = Date.now(); // every event that exists with at_ms <= deadAt was written by the dead process
  t.diagnostic(`killed -9 with ${JSON.stringify(c.by)} (target ${target}, ${doneAtCreate} done at the end of creation)`);

  const restartAt = Date.now();
  d.args = args(node2);
  try {
    await d.start();
  } catch (err) {
    assert.fail(`restart right after kill -9 failed: ${err.message.split('\n')[0]}\n${lockHolders(dataDir)}`);
  }
  const t1 = Date.now();
  const end = await waitAllFinal(d, n, 90000 * SLOW);
  t.diagnostic(`all ${n} final ${Date.now() - t1} ms after the restart: ${JSON.stringify(end.by)}`);

  const get = keepAliveAdmin(d, 16);
  const tasks = await pool(ids, 16, (id) => get.ok('GET', `/v1/tasks/${id}`));
  get.close();
  return { d, dir, ids, bodies, tasks, killAt, deadAt, restartAt, end };
}

function checkRecovered({ dir, ids, bodies, tasks, deadAt, restartAt, end }, n) {
  assert.equal(end.total, n, 'the list has every task (none lost, none extra)');
  assert.deepEqual(end.by, { success: n }, 'every task succeeded');
  let reran = 0;
  let takenOver = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i];
    const task = tasks[i];
    assert.equal(task.AsyncRequestId, id);
    assert.equal(task.state, 'success', show(task));
    assert.equal(task.steps.length, bodies[i].steps.length);
    assert.ok(task.steps.every((s) => s.state === 'done'), show(task));
    const claims = checkHistory(task, 'success'); // one final transition, leases strictly increase
    // The first claim is lease 1, and every claim adds one: no lease number was handed out twice.
    claims.forEach((cl, k) => assert.equal(cl.lease, k + 1, `claim ${k} has lease ${k + 1}: ${show(task)}`));
    const after = claims.filter((cl) => cl.at_ms > deadAt);
    for (const cl of after) {
      assert.ok(cl.at_ms >= restartAt, `no claim while the crashed node's process was still there: ${show(task)}`);
    }
    if (claims.some((cl) => cl.at_ms <= deadAt) && after.length > 0) {
      takenOver++;
      assert.match(after[0].message, /^lease of .+ expired; taken over, lease \d+$/, `takeover is named: ${show(task)}`);
    }
    // Side effects: "<id> <step>" lines only, every step at least once, at most twice (one crash).
    const lines = readLines(path.join(dir, id));
    const perStep = new Array(task.steps.length).fill(0);
    for (const l of lines) {
      const m = /^(\S+) (\d+)$/.exec(l);
      assert.ok(m && m[1] === id && Number(m[2]) < perStep.length, `bad side-effect line ${JSON.stringify(l)} for ${id}`);
      perStep[Number(m[2])]++;
    }
    const doneBefore = new Set(task.events
      .filter((e) => e.at_ms <= deadAt && /^step \d+\/\d+ \S+ done/.test(e.message || ''))
      .map((e) => Number(/^step (\d+)/.exec(e.message)[1]) - 1));
    perStep.forEach((k, s) => {
      assert.ok(k >= 1, `step ${s} of ${id} left its effect at least once: ${lines}`);
      assert.ok(k <= 2, `step ${s} of ${id} ran at most twice (one crash): ${k}`);
      if (doneBefore.has(s)) assert.equal(k, 1, `step ${s} of ${id} was done before the crash and did not run again: ${show(task)}`);
      if (k > 1) reran++;
    });
  }
  return { reran, takenOver };
}

test('kill -9 with 1,000 exec tasks in flight, restart on the same data dir and node id: every task succeeds exactly once', { timeout: 300000 * SLOW }, async (t) => {
  const n = 1000;
  const r = await crashAndRecover(t, { n, node1: 'crash-node', node2: 'crash-node' });
  const { reran, takenOver } = checkRecovered(r, n);
  t.diagnostic(`${takenOver} task(s) taken over after the restart, ${reran} step(s) ran twice`);
  assert.ok(takenOver >= 1, 'the kill caught at least one task mid-flight (else nothing was tested)');
  assert.ok(takenOver <= MAX_RUNNING, `at most --max-running tasks were in flight at the crash: ${takenOver}`);
  assert.ok(reran <= MAX_RUNNING, `at most one step per task in flight ran twice: ${reran}`);
  await r.d.stop();
});

test('kill -9, restart under another node id: the dead node\'s leases are taken over only after they expire (--lease-s 2)', { timeout: 180000 * SLOW }, async (t) => {
  const n = 300;
  const r = await crashAndRecover(t, { n, node1: 'crash-a', node2: 'crash-b' });
  const { reran, takenOver } = checkRecovered(r, n);
  t.diagnostic(`${takenOver} task(s) taken over, ${reran} step(s) ran twice`);
  assert.ok(takenOver >= 1, 'the kill caught at least one task mid-flight');
  for (const task of r.tasks) {
    const claims = claimEvents(task);
    const before = claims.filter((cl) => cl.at_ms <= r.deadAt);
    const after = claims.filter((cl) => cl.at_ms > r.deadAt);
    if (before.length && after.length) {
      assert.equal(before[before.length - 1].node, 'crash-a', show(task));
      assert.equal(after[0].node, 'crash-b', show(task));
      assert.match(after[0].message, /^lease of crash-a expired; taken over, lease \d+$/, show(task));
      // The lease was renewed at most lease/3 (+ a poll) before the kill, so it ran out no sooner
      // than about lease*2/3 after it.
      assert.ok(after[0].at_ms - r.killAt >= LEASE_S * 1000 * 0.6 - 100,
        `taken over ${after[0].at_ms - r.killAt} ms after the kill: before the ${LEASE_S} s lease could expire: ${show(task)}`);
    }
  }
  await r.d.stop();
});
