// Actions that call an instance (cdb DescribeAccounts) may wait seconds on a server that does not
// answer. They run on blocking-work threads of their own: the HTTP threads keep answering every
// other call meanwhile, and SIGTERM still drains cleanly, answering the calls in flight.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { start, NO_LIMITS, REGION, REPO_ROOT, SIGN_MODES, SLOW, sleep } from './lib/asyncd.mjs';

const INST = 'cdb-blackhole';
let d;
let hole;
const held = new Set();
let accepted = 0; // connections ever accepted (held shrinks as timed-out clients close theirs)

/** A TCP server on loopback that accepts and never says a word (a hung MySQL server). */
function blackHole() {
  return new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      accepted++;
      held.add(sock);
      sock.on('error', () => {});
      sock.on('close', () => held.delete(sock));
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

/** Waits until the hung server has accepted n connections in all. calls: the hung calls, whose
 * answers are shown if they end before reaching the server (a refusal, not a hang). On a loaded
 * machine (CI runs the ASan build beside other work) the calls may queue for seconds first. */
async function waitAccepted(n, calls = []) {
  const settled = [];
  calls.forEach((c, i) => c.then((r) => { settled[i] = r; }));
  const deadline = Date.now() + 15000 * SLOW;
  while (accepted < n) {
    assert.ok(Date.now() < deadline, `only ${accepted} of ${n} connections reached the hung server; ` +
      `calls that ended meanwhile: ${JSON.stringify(settled.filter(Boolean))}`);
    await sleep(10);
  }
}

before(async () => {
  hole = await blackHole();
  // The flow templates by path: an ASan binary in build-asan/bin has none beside it.
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')] });
  await d.adminOk('POST', '/v1/instances', {
    product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST, status: 'running',
    dsn: `mysql://root:pw@127.0.0.1:${hole.address().port}`,
  }, 201);
});

after(async () => {
  if (d) await d.stop();
  for (const s of held) s.destroy();
  hole?.close();
});

function describeAccounts() {
  const t0 = Date.now();
  return d.cdb().DescribeAccounts({ InstanceId: INST }).then(
    (r) => ({ ok: r, ms: Date.now() - t0 }),
    (err) => ({ code: err.code, message: err.message, ms: Date.now() - t0 }));
}

test('calls to a hung instance leave every other call fast, and then fail with CdbError.TaskError', async () => {
  const { id } = await d.taskInState('cdb', 'running');
  // More hung calls than the daemon has HTTP threads (2 on a 2-core machine).
  const hung = Array.from({ length: 4 }, describeAccounts);
  await waitAccepted(4, hung);
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    const r = await d.describe('cdb', id);
    const ms = Date.now() - t0;
    assert.equal(r.Status, 'RUNNING');
    assert.ok(ms < 1000 * SLOW, `DescribeAsyncRequestInfo took ${ms} ms while DescribeAccounts calls hung`);
  }
  const mongodb = await d.taskInState('mongodb', 'running');
  assert.equal((await d.describe('mongodb', mongodb.id)).Status, 'running');
  for (const r of await Promise.all(hung)) {
    assert.equal(r.code, 'CdbError.TaskError', JSON.stringify(r));
    assert.match(r.message, new RegExp(`instance ${INST}: cannot connect to MySQL at 127\\.0\\.0\\.1:`), r.message);
    assert.ok(r.ms >= 4000, `the connect timeout is 5 s; the call ended after ${r.ms} ms`);
  }
});

test('account actions on a hung instance (their live account check) leave every other call fast, then fail with CdbError.TaskError', async () => {
  const { id } = await d.taskInState('cdb', 'running');
  const before = accepted;
  const hung = Array.from({ length: 4 }, (_, i) => {
    const t0 = Date.now();
    return d.cdb().CreateAccounts({ InstanceId: INST, Accounts: [{ User: `hung${i}`, Host: '%' }], Password: 'Passw0rd-hung-1' }).then(
      (r) => ({ ok: r, ms: Date.now() - t0 }), (err) => ({ code: err.code, message: err.message, ms: Date.now() - t0 }));
  });
  await waitAccepted(before + 4, hung);
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    assert.equal((await d.describe('cdb', id)).Status, 'RUNNING');
    const ms = Date.now() - t0;
    assert.ok(ms < 1000 * SLOW, `DescribeAsyncRequestInfo took ${ms} ms while CreateAccounts calls hung`);
  }
  for (const r of await Promise.all(hung)) {
    assert.equal(r.code, 'CdbError.TaskError', JSON.stringify(r));
    assert.match(r.message, new RegExp(`instance ${INST}: cannot connect to MySQL at 127\\.0\\.0\\.1:`), r.message);
    assert.ok(r.ms >= 4000, `the connect timeout is 5 s; the call ended after ${r.ms} ms`);
  }
});

test('every signing mode reaches a deferred action, which checks signature and parameters as usual', async () => {
  for (const mode of SIGN_MODES) {
    const c = d.cdb(mode);
    await assert.rejects(c.DescribeAccounts({ InstanceId: 'cdb-nosuch' }),
      (err) => err.code === 'InvalidParameter.InstanceNotFound' || assert.fail(`${mode.name}: ${err.code} ${err.message}`));
    await assert.rejects(d.cdb({ ...mode, secretKey: 'not-the-key' }).DescribeAccounts({ InstanceId: INST }),
      (err) => err.code === 'AuthFailure.SignatureFailure' || assert.fail(`${mode.name}: ${err.code} ${err.message}`));
    await assert.rejects(c.DescribeAccounts({ InstanceId: INST, Limit: 'many' }),
      (err) => err.code === 'InvalidParameter' || assert.fail(`${mode.name}: ${err.code} ${err.message}`));
  }
});

test('a deferred call counts once against its rate limit', async () => {
  const d2 = await start({ args: ['--rate-limit', 'cdb:DescribeAccounts=3'] });
  try {
    const c = d2.cdb();
    const codes = [];
    for (let i = 0; i < 4; i++) {
      codes.push(await c.DescribeAccounts({ InstanceId: 'cdb-nosuch' }).then(() => 'ok', (err) => err.code));
    }
    assert.deepEqual(codes, ['InvalidParameter.InstanceNotFound', 'InvalidParameter.InstanceNotFound',
      'InvalidParameter.InstanceNotFound', 'RequestLimitExceeded']);
  } finally {
    await d2.stop();
  }
});

test('SIGTERM while DescribeAccounts calls hang: each gets its answer, asyncd exits 0', async () => {
  const before = accepted;
  const hung = Array.from({ length: 3 }, describeAccounts);
  await waitAccepted(before + 3);
  // SIGTERM by hand: d.stop() would first close the client connections we wait on.
  d.stopping = true;
  d.proc.kill('SIGTERM');
  const answers = await Promise.all(hung);
  const exit = await d.exited;
  await d.stop(); // asserts the exit code was 0
  d = null;
  assert.deepEqual(exit, { code: 0, signal: null });
  for (const r of answers) {
    assert.equal(r.code, 'CdbError.TaskError', `an answer, not a dropped connection: ${JSON.stringify(r)}`);
  }
});
