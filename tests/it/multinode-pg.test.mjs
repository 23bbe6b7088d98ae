// Several asyncd nodes on one PostgreSQL database (the issue's acceptance): 3 nodes with distinct
// --node-id, --lease-s 2, --workers 2, --max-running 2; 2,000 tasks of 1-2 short exec steps created round-robin
// through the three admin APIs; every node's Cloud API answers DescribeAsyncRequestInfo for tasks
// created through the others; kill -9 of node A mid-way, later of node B; node C and a restarted
// A finish everything. Then, from each task's event history (GET /v1/tasks/{id}):
// - every task is success with exactly one transition into a final state;
// - each claim has its own lease number, and no two live leases at once (lib/leases.mjs says
//   exactly what is checked, and why "takeover >= lease_s after the holder's last event" is not);
// - every step's side effect is recorded at least once, and a step ran twice only in a task that
//   was taken over.
// Runs only on the PostgreSQL store (ASYNCD_TEST_PG_URL; scripts/test.sh sets it).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  DIALECT, FINAL_STATES, NO_LIMITS, PG_URL, SLOW, prng, sleep, start, startNode,
} from './lib/asyncd.mjs';
import {
  checkCloudView, checkHistory, keepAliveAdmin, pool, q, readLines, show, tempDir,
} from './lib/engine.mjs';
import { checkLeases, newLeaseStats } from './lib/leases.mjs';

const SKIP = PG_URL ? false
  : 'multi-node needs the PostgreSQL store: set ASYNCD_TEST_PG_URL=postgres://postgres@127.0.0.1:PORT/asyncd (make test / scripts/test.sh does)';
const N = Number(process.env.IT_MULTINODE_TASKS || 2000);
const LEASE_S = 2;
const LEASE_MS = LEASE_S * 1000;
const WORKERS = 2;
const SEED = Number(process.env.IT_SEED || Date.now() % 1000000);
// Two clock readings of one machine's clock, taken in different processes around one row lock.
const CLOCK_SLOP_MS = 50;

const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

// --max-running as --workers: a parked exec step holds no worker, and with the default (4096) the
// nodes would finish the 2,000 short tasks before the creates end, leaving nothing to take over.
const args = (node) => [...NO_LIMITS, '--workers', String(WORKERS), '--max-running', String(WORKERS),
  '--lease-s', String(LEASE_S), '--node-id', node];

/** 1-2 steps, each appending "<taskid> <step>" to DIR/<taskid> and sleeping a few ms; one task
 * in 50 (type LONG_TYPE) sleeps 0.6 s in its first step, so a kill can be timed to catch one in
 * flight (a few-ms task seen held may have ended by the time the kill lands). */
const LONG_TYPE = 'MultiNodeItLong';
function taskBody(uin, dir, rand, i) {
  const nSteps = rand() < 0.5 ? 1 : 2;
  const long = rand() < 0.02;
  const steps = [];
  for (let s = 0; s < nSteps; s++) {
    const ms = 2 + Math.floor(rand() * 8);
    const nap = long && s === 0 ? '0.6' : `0.00${ms}`;
    steps.push({
      name: `append-${s}`,
      do: { exec: ['/bin/sh', '-c', `echo "$ASYNCD_TASK_ID $ASYNCD_STEP_INDEX" >> ${q(dir)}/"$ASYNCD_TASK_ID"; sleep ${nap}`] },
    });
  }
  return { product: i % 2 ? 'mongodb' : 'cdb', region: 'ap-guangzhou', uin, type: long ? LONG_TYPE : 'MultiNodeIt', steps };
}

async function total(api, status) {
  const r = await api.ok('GET', `/v1/tasks?limit=1${status ? `&status=${status}` : ''}`);
  return r.total;
}

/** Final tasks so far, counted through one node's admin API. */
async function finalCount(api) {
  let n = 0;
  for (const st of FINAL_STATES) n += await total(api, st);
  return n;
}

/** Waits until `final` tasks are final, then until `node` holds at least one live lease (so the
 * kill catches it mid-flight), at most ~3 s longer. Resolves what it saw. */
async function waitKillMoment(api, target, node, n) {
  const deadline = Date.now() + 120000 * SLOW;
  let done = await finalCount(api);
  while (done < target) {
    if (Date.now() > deadline) assert.fail(`only ${done} of ${n} final after 120 s`);
    await sleep(50);
    done = await finalCount(api);
  }
  // The moment: the node holds a live lease of a long task (else, after 10 s, of any task).
  let held = 0;
  let heldLong = 0;
  const until = Date.now() + 10000 * SLOW;
  do {
    const r = await api.ok('GET', '/v1/tasks?status=running&limit=1000');
    const now = Date.now();
    const mine = r.tasks.filter((t) => t.lease_node === node && t.lease_expires_ms > now);
    held = mine.length;
    heldLong = mine.filter((t) => t.type === LONG_TYPE).length;
    if (heldLong > 0) break;
    await sleep(5);
  } while (Date.now() < until);
  return { done, held, heldLong };
}

/** Some tasks created through one node, described through each of the others (SDK, TC3):
 * the answer is the task's own dialect's word for a state. */
async function crossDescribe(nodes, ids, creator, perPair) {
  let n = 0;
  for (let from = 0; from < nodes.length; from++) {
    const mine = ids.filter((_, i) => creator[i] === from).slice(0, perPair);
    for (let via = 0; via < nodes.length; via++) {
      if (via === from || !nodes[via].alive()) continue;
      for (const id of mine) {
        const product = /^\d+$/.test(id) ? 'mongodb' : 'cdb';
        const r = await nodes[via].describe(product, id);
        const words = Object.values(DIALECT).map((w) => w[product]);
        assert.ok(words.includes(r.Status), `node ${via} describes ${product} task ${id} created through node ${from}: ${JSON.stringify(r)}`);
        n++;
      }
    }
  }
  return n;
}

test(`3 nodes on one PostgreSQL database, ${N} tasks, kill -9 of two nodes: every task succeeds once, one live lease at a time`,
  { skip: SKIP, timeout: 300000 * SLOW }, async (t) => {
    const rand = prng(SEED);
    t.diagnostic(`seed ${SEED} (IT_SEED=${SEED} repeats the task mix)`);
    const fx = tempDir('asyncd-mn-fx-');
    const A = await start({ args: args('node-a') });
    daemons.push(A);
    const B = await startNode(A, { nodeId: 'node-b' });
    daemons.push(B);
    const C = await startNode(A, { nodeId: 'node-c' });
    daemons.push(C);
    const nodes = [A, B, C];
    const name = new Map([[A, 'node-a'], [B, 'node-b'], [C, 'node-c']]);
    assert.equal(A.store, 'postgres');
    assert.deepEqual(B.creds, A.creds, 'every node uses the same credentials');

    // Create round-robin through the three admin APIs while all workers already run.
    const apis = nodes.map((d) => keepAliveAdmin(d, 8));
    const bodies = Array.from({ length: N }, (_, i) => taskBody(A.creds.Uin, fx, rand, i));
    const creator = bodies.map((_, i) => i % 3);
    const t0 = Date.now();
    const ids = await pool(bodies, 24, async (b, i) => (await apis[creator[i]].ok('POST', '/v1/tasks', b, 201)).AsyncRequestId);
    apis.forEach((a) => a.close());
    assert.equal(new Set(ids).size, N, 'every create answered its own id (no id handed out twice across nodes)');
    const capi = keepAliveAdmin(C, 4);
    const doneAtCreate = await finalCount(capi);
    t.diagnostic(`created ${N} tasks through 3 nodes in ${Date.now() - t0} ms; ${doneAtCreate} final by then`);
    assert.equal(await total(capi), N, 'node C lists every task, whichever node took the create');

    const described = await crossDescribe(nodes, ids, creator, 10);
    t.diagnostic(`${described} cross-node DescribeAsyncRequestInfo answers while the tasks run`);

    // Kill A about a third of the way through what is left, B at about two thirds.
    const rest = N - doneAtCreate;
    assert.ok(rest > 100, `enough tasks still to run at the end of creation (${rest}); the workers outran the creates`);
    const killed = {};
    for (const [d, share] of [[A, 0.3], [B, 0.6]]) {
      const node = name.get(d);
      const seen = await waitKillMoment(capi, doneAtCreate + Math.floor(rest * share), node, N);
      killed[node] = { killAt: Date.now() };
      await d.kill9();
      killed[node].deadAt = Date.now();
      t.diagnostic(`kill -9 ${node} with ${seen.done} of ${N} final, ${seen.held} live lease(s) held by ${node} (${seen.heldLong} of a long task)`);
      assert.ok(seen.done < N, 'tasks were still in flight at the kill');
    }

    // A comes back under its node id once its old leases have surely expired.
    const waitMs = killed['node-a'].killAt + LEASE_MS + 500 - Date.now();
    if (waitMs > 0) await sleep(waitMs);
    const restartAt = Date.now();
    await A.start();
    t.diagnostic(`node-a restarted ${restartAt - killed['node-a'].killAt} ms after its kill`);

    // Wait for every task to be final (through C).
    const deadline = Date.now() + 150000 * SLOW;
    for (;;) {
      const done = await finalCount(capi);
      if (done === N) break;
      if (Date.now() > deadline) assert.fail(`only ${done} of ${N} final; node C log:\n${C.stderrTail(3000)}`);
      await sleep(200);
    }
    assert.equal(await total(capi, 'success'), N, 'every task succeeded');
    assert.equal(await total(capi), N, 'no task lost, none extra');
    capi.close();

    // Every surviving node gives the same answer (Cloud API in each dialect, admin view).
    const aapi = keepAliveAdmin(A, 8);
    const tasks = await pool(ids, 16, (id) => aapi.ok('GET', `/v1/tasks/${id}`));
    aapi.close();
    const sample = ids.map((_, i) => i).filter(() => rand() < 0.05);
    for (const i of sample) {
      for (const d of [A, C]) await checkCloudView(d, tasks[i]);
    }
    t.diagnostic(`${sample.length * 2} tasks checked through the Cloud API of node-a and node-c after the run`);

    // Histories.
    const stats = newLeaseStats();
    let reran = 0;
    for (let i = 0; i < N; i++) {
      const task = tasks[i];
      assert.equal(task.AsyncRequestId, ids[i]);
      assert.equal(task.state, 'success', show(task));
      assert.ok(task.steps.every((s) => s.state === 'done'), show(task));
      checkHistory(task, 'success'); // consecutive seqs, one final transition, leases increase
      const takeoversHere = checkLeases(task, { leaseMs: LEASE_MS, slopMs: CLOCK_SLOP_MS, killed, stats });

      // Side effects: "<id> <step>" lines, every step at least once; twice only after a takeover.
      const lines = readLines(path.join(fx, ids[i]));
      const perStep = new Array(task.steps.length).fill(0);
      for (const l of lines) {
        const m = /^(\S+) (\d+)$/.exec(l);
        assert.ok(m && m[1] === ids[i] && Number(m[2]) < perStep.length, `bad side-effect line ${JSON.stringify(l)} for ${ids[i]}`);
        perStep[Number(m[2])]++;
      }
      let reranHere = 0;
      perStep.forEach((k, s) => {
        assert.ok(k >= 1, `step ${s} of ${ids[i]} left its effect at least once: ${JSON.stringify(lines)}`);
        reranHere += k - 1;
      });
      assert.ok(reranHere <= takeoversHere, `a step ran again only after a takeover (${reranHere} reruns, ${takeoversHere} takeovers): ${show(task)}`);
      reran += reranHere;
    }
    t.diagnostic(`takeovers by previous holder: ${JSON.stringify(stats.takeovers)}; ${reran} step(s) ran twice`);
    t.diagnostic(`takeover delay after the kill, shortest: ${JSON.stringify(stats.minAfterKillMs)} ms (lease ${LEASE_MS} ms, renewed every ${Math.round(LEASE_MS / 3)} ms)`);
    t.diagnostic(`shortest takeover after the previous holder's last event: ${stats.minAfterLastEventMs} ms; largest clock inversion claim vs. previous lease's last event: ${stats.maxInversionMs} ms`);
    for (const node of ['node-a', 'node-b']) {
      assert.ok((stats.takeovers[node] || 0) >= 1, `some task of the killed ${node} was taken over (else the kill caught nothing in flight)`);
    }
    for (const d of [A, C]) await d.stop();
  });
