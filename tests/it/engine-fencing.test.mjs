// A step never runs twice at the same time (issue 11 item 6). After kill -9 of asyncd, the
// restarted node kills the process group its previous run left behind (a grandchild the
// parent-death signal does not reach) before it claims anything. On PostgreSQL, a store frozen
// (SIGSTOP) for twice the lease makes the worker stop its step before its lease runs out, and
// after SIGCONT the task runs again, to success, without two runs ever alive at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { NO_LIMITS, PG_DIR, SLOW, STORE, sleep, start } from './lib/asyncd.mjs';
import { procState, q, readLines, show, tempDir, waitTask, waitUntil } from './lib/engine.mjs';

const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

/** The step: marks its start (with its shell's pid), checks that the previous run's sleeper is
 * gone (else "overlap"), sleeps in a grandchild (long the first time, short after), marks its end.
 * A SIGTERM marks "term" with the time in ms. */
function markerStep(dir, longS) {
  const m = q(path.join(dir, 'M'));
  const p = q(path.join(dir, 'P'));
  const script = [
    // a zombie (dead, not reaped yet by whoever adopted it) is not a run that is alive
    `if [ -f ${p} ]; then s=$(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' "/proc/$(cat ${p})/status" 2>/dev/null)`,
    `  case "$s" in ""|Z|X) ;; *) echo "overlap $$" >> ${m} ;; esac; fi`,
    `if grep -q '^start' ${m} 2>/dev/null; then n=1; else n=${longS}; fi`,
    `echo "start $$ $(date +%s%3N)" >> ${m}`,
    `sleep "$n" & sp=$!; echo "$sp" > ${p}`,
    `trap 'echo "term $$ $(date +%s%3N)" >> ${m}; kill "$sp" 2>/dev/null; exit 143' TERM`,
    `wait "$sp"`,
    `echo "end $$" >> ${m}`,
  ].join('\n');
  return { name: 'marked', do: { exec: ['/bin/sh', '-c', script] }, timeout_s: 120 };
}

function body(d, dir, longS) {
  return { product: 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin, type: 'FenceIt', steps: [markerStep(dir, longS)] };
}

const starts = (lines) => lines.filter((l) => l.startsWith('start '));

test('a restart after kill -9 kills the step the crashed run left behind before running it again', async (t) => {
  const dir = tempDir('asyncd-fence-');
  const args = [...NO_LIMITS, '--workers', '2', '--lease-s', '3', '--node-id', 'fence-a'];
  const d = await start({ args });
  daemons.push(d);
  const { AsyncRequestId: id } = await d.adminOk('POST', '/v1/tasks', body(d, dir, 30), 201);
  const M = path.join(dir, 'M');
  await waitUntil(() => starts(readLines(M)).length === 1 && fs.existsSync(path.join(dir, 'P'))
    && readLines(path.join(dir, 'P')).length === 1, 10000 * SLOW, 'the step started');
  const sleeper = Number(readLines(path.join(dir, 'P'))[0]);
  await d.kill9();
  await sleep(200);
  assert.equal(procState(sleeper), 'alive', 'the grandchild outlives asyncd (what the restart must clean up)');

  const t0 = Date.now();
  await d.start();
  const ms = await waitUntil(() => procState(sleeper) !== 'alive', 2000 * SLOW, 'the old grandchild is killed after the restart');
  t.diagnostic(`old grandchild gone ${Date.now() - t0} ms after the restart began (${ms} ms after listening)`);

  const task = await waitTask(d, id, (x) => x.state === 'success', { timeoutMs: 30000, what: 'success' });
  const lines = readLines(M);
  assert.deepEqual(lines.filter((l) => l.startsWith('overlap')), [], `no run saw the previous one alive: ${lines}`);
  assert.equal(starts(lines).length, 2, `the step ran twice, one after the other: ${lines}\n${show(task)}`);
  assert.equal(lines.filter((l) => l.startsWith('end')).length, 1, `only the second run ended: ${lines}`);
  assert.match(d.stderrTail(20000), /killed process group \d+, left running by task/);
  await d.stop();
});

/** postgres's processes: the postmaster and its children. */
function postgresPids() {
  const master = Number(fs.readFileSync(path.join(PG_DIR, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [master];
  for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const st = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === master) pids.push(Number(p));
    } catch { /* gone */ }
  }
  return pids;
}

const signalAll = (pids, sig) => { for (const p of pids) { try { process.kill(p, sig); } catch { /* gone */ } } };

test('a worker whose store stalls past its lease stops its step; the task runs again once, to success',
  { skip: STORE !== 'postgres' || !PG_DIR ? 'PostgreSQL only (set ASYNCD_TEST_PG_URL and ASYNCD_TEST_PG_DIR)' : false },
  async (t) => {
    const LEASE_S = 3;
    const dir = tempDir('asyncd-fence-pg-');
    const d = await start({ args: [...NO_LIMITS, '--workers', '2', '--lease-s', String(LEASE_S), '--node-id', 'fence-pg'] });
    daemons.push(d);
    const { AsyncRequestId: id } = await d.adminOk('POST', '/v1/tasks', body(d, dir, 40), 201);
    const M = path.join(dir, 'M');
    await waitUntil(() => starts(readLines(M)).length === 1 && readLines(path.join(dir, 'P')).length === 1,
      10000 * SLOW, 'the step started');
    const sleeper = Number(readLines(path.join(dir, 'P'))[0]);
    await sleep(1500); // a renewal or two go through first

    const pids = postgresPids();
    const frozenAt = Date.now();
    signalAll(pids, 'SIGSTOP');
    let stoppedIn;
    try {
      stoppedIn = await waitUntil(() => procState(sleeper) !== 'alive', LEASE_S * 1000, 'the step is stopped while the store is frozen');
      // Readiness is bounded in time: a frozen store reads as not ready within ~2 s, and a
      // second check while the first probe still hangs answers at once.
      for (const [what, within] of [['first', 3500], ['second', 1000]]) {
        const asked = Date.now();
        const r = await d.admin('GET', '/readyz');
        const took = Date.now() - asked;
        assert.equal(r.status, 503, `${what} /readyz on a frozen store: ${r.status} ${r.text}`);
        assert.equal(r.json?.error, 'store_unavailable');
        assert.ok(took < within * SLOW, `${what} /readyz answered in ${took} ms`);
      }
      const left = 2 * LEASE_S * 1000 - (Date.now() - frozenAt);
      if (left > 0) await sleep(left);
    } finally {
      signalAll(pids, 'SIGCONT');
    }
    const resumedAt = Date.now();
    t.diagnostic(`step stopped ${stoppedIn} ms into a ${resumedAt - frozenAt} ms freeze`);
    const term = readLines(M).find((l) => l.startsWith('term'));
    assert.ok(term, `the step got SIGTERM: ${readLines(M)}`);
    const termAt = Number(term.split(' ')[2]);
    // The lease was last renewed before the freeze, so it ends no earlier than frozenAt + ...
    // and the worker stops at (last renewal + 2/3 lease + a short grace) < last renewal + lease.
    assert.ok(termAt < frozenAt + LEASE_S * 1000, `stopped within the lease: term at +${termAt - frozenAt} ms`);
    assert.ok(termAt < resumedAt, 'stopped while the store was still frozen');

    const task = await waitTask(d, id, (x) => x.state === 'success', { timeoutMs: 30000, what: 'success' });
    assert.equal((await d.admin('GET', '/readyz')).status, 200, 'ready again once the store answers');
    const lines = readLines(M);
    assert.deepEqual(lines.filter((l) => l.startsWith('overlap')), [], `never two runs at once: ${lines}`);
    assert.equal(starts(lines).length, 2, `ran again once: ${lines}\n${show(task)}`);
    const secondStart = Number(starts(lines)[1].split(' ')[2]);
    assert.ok(secondStart > termAt, 'the second run began after the first was stopped');
    assert.match(d.stderrTail(20000), new RegExp(`task ${id}: lease \\d+ not renewed for`));
    const leases = task.events.map((e) => e.message || '').map((m) => /lease (\d+)/.exec(m)).filter(Boolean).map((x) => Number(x[1]));
    for (let i = 1; i < leases.length; i++) assert.ok(leases[i] > leases[i - 1], `lease numbers grow: ${leases}`);
    await d.stop();
  });
