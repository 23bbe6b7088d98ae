// The front door holds against hostile connections: trickled and abandoned requests are cut at
// --request-timeout, one client cannot open more than --max-conns-per-client, a flood of
// connections meets --max-conns instead of the descriptor limit, a used port is a clear start-up
// error, header floods get an answer, and SIGTERM while tasks are created over both APIs exits 0.
// Every hostile case runs while an SDK client polls DescribeAsyncRequestInfo: each poll must be
// answered within 1 s, and the daemon must be the same live process afterwards.
// Hostile clients connect from other loopback addresses (127.0.0.x) so that per-client limits
// apply to them and not to the poller; every packet still goes to 127.0.0.1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import {
  NO_LIMITS, REGION, REPO_ROOT, SLOW, expectStartFails, rawSocket, sleep, start,
} from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
const ANSWER_MS = 1000 * SLOW;
const REQUEST_TIMEOUT_S = 2;
const IDLE_TIMEOUT_S = 5;
const PER_CLIENT = 20;

/** Polls DescribeAsyncRequestInfo through the SDK (one keep-alive connection) until stopped. */
function startPoller(d, id) {
  const cdb = d.cdb();
  const lat = [];
  const errors = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t0 = Date.now();
      try {
        await cdb.DescribeAsyncRequestInfo({ AsyncRequestId: id });
      } catch (e) {
        errors.push(e.message);
      }
      lat.push(Date.now() - t0);
      await sleep(50);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { lat, errors };
    },
  };
}

/** Runs fn while an SDK client polls; then asserts every poll was answered in time and the
 * daemon is the same live process. */
async function whilePolled(d, fn) {
  const pid = d.proc.pid;
  const id = await d.createTask({ product: 'cdb' });
  const poller = startPoller(d, id);
  let result;
  try {
    await sleep(200); // the poller's connection is open before the hostile ones
    result = await fn();
  } finally {
    const { lat, errors } = await poller.stop();
    assert.deepEqual(errors, [], `every poll answered without error: ${errors.slice(0, 3).join('; ')}`);
    assert.ok(lat.length >= 3, `the poller ran (${lat.length} polls)`);
    const worst = Math.max(...lat);
    assert.ok(worst < ANSWER_MS, `every poll answered within ${ANSWER_MS} ms; slowest ${worst} ms of ${lat.length}`);
    assert.ok(d.alive(), `asyncd still runs:\n${d.stderrTail()}`);
    assert.equal(d.proc.pid, pid, 'the same asyncd process');
    process.kill(pid, 0); // throws when the process is gone
  }
  return result;
}

/** A TCP connection to the Cloud API from a loopback source address; resolves once connected,
 * with closedAt set (ms since the connect) when the server closes it. */
function connectFrom(port, localAddress = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port, localAddress });
    const c = { sock, closedAt: null, data: '' };
    sock.on('connect', () => {
      c.t0 = Date.now();
      resolve(c);
    });
    sock.on('data', (b) => { c.data += b.toString('latin1'); });
    sock.on('close', () => { if (c.closedAt === null) c.closedAt = Date.now() - (c.t0 || Date.now()); });
    sock.on('error', (e) => { if (!c.t0) reject(e); });
  });
}

/** Writes bytes one at a time, one a second, until the connection closes. */
function trickle(c, bytes) {
  let i = 0;
  const timer = setInterval(() => {
    if (c.sock.destroyed || c.closedAt !== null || i >= bytes.length) return clearInterval(timer);
    c.sock.write(bytes.subarray(i, i + 1));
    i++;
  }, 1000);
  c.sock.on('close', () => clearInterval(timer));
}

async function waitClosed(conns, ms) {
  const deadline = Date.now() + ms;
  while (conns.some((c) => c.closedAt === null) && Date.now() < deadline) await sleep(50);
}

const head = (extra = '') => Buffer.from(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}`);

describe('one daemon with --request-timeout 2 --idle-timeout 5 --max-conns-per-client 20', T, () => {
  let d;
  before(async () => {
    d = await start({
      args: [...NO_LIMITS, '--request-timeout', String(REQUEST_TIMEOUT_S), '--idle-timeout', String(IDLE_TIMEOUT_S),
        '--max-conns-per-client', String(PER_CLIENT)],
    });
  });
  after(async () => {
    if (d) await d.stop();
  });

  test('clients trickling headers or a body at 1 byte/s are cut at the request deadline', T, async () => {
    const conns = await whilePolled(d, async () => {
      const cs = [];
      for (let i = 0; i < 15; i++) {
        const c = await connectFrom(d.port, '127.0.0.11');
        trickle(c, Buffer.concat([head(), Buffer.from('X-Pad: '), Buffer.alloc(200, 'a')]));
        cs.push(c);
      }
      for (let i = 0; i < 15; i++) {
        const c = await connectFrom(d.port, '127.0.0.12');
        c.sock.write(head('Content-Length: 1000\r\n\r\n'));
        trickle(c, Buffer.alloc(1000, 'x'));
        cs.push(c);
      }
      await waitClosed(cs, (REQUEST_TIMEOUT_S + 3) * 1000 * SLOW);
      return cs;
    });
    for (const [i, c] of conns.entries()) {
      assert.notEqual(c.closedAt, null, `trickling connection ${i} was closed`);
      // Each sent a byte a second, so MHD's idle timeout (5 s) never fired: the deadline did.
      assert.ok(c.closedAt >= (REQUEST_TIMEOUT_S - 0.5) * 1000, `not before the deadline: ${c.closedAt} ms`);
      assert.ok(c.closedAt < (REQUEST_TIMEOUT_S + 2) * 1000 * SLOW, `cut within ~2 s: ${c.closedAt} ms`);
    }
    // The log says what a cut connection was doing, for a cut nobody expected.
    assert.match(d.stderrTail(50000), new RegExp(`http: closed \\d+ connection\\(s\\) whose request passed its ${REQUEST_TIMEOUT_S * 1000} ms deadline \\(the first: open \\d+ ms, 0 answered, (no request line since|request line \\d+ ms ago, \\d+ body bytes)\\)`));
  });

  test('abandoned connections (nothing sent, half a request) are closed at the request deadline', T, async () => {
    const conns = await whilePolled(d, async () => {
      const cs = [];
      for (let i = 0; i < 10; i++) cs.push(await connectFrom(d.port, '127.0.0.13'));
      for (let i = 0; i < 10; i++) {
        const c = await connectFrom(d.port, '127.0.0.13');
        c.sock.write(i % 2 ? 'GET /?Action=Desc' : head('Content-Length: 500\r\n\r\n{"AsyncRe'));
        cs.push(c);
      }
      await waitClosed(cs, (REQUEST_TIMEOUT_S + 3) * 1000 * SLOW);
      return cs;
    });
    for (const [i, c] of conns.entries()) {
      assert.notEqual(c.closedAt, null, `abandoned connection ${i} was closed`);
      assert.ok(c.closedAt < IDLE_TIMEOUT_S * 1000, `closed at the request deadline, before the idle timeout: ${c.closedAt} ms`);
    }
  });

  test('an idle keep-alive connection outlives the request deadline (the idle timeout governs it)', T, async () => {
    const c = await connectFrom(d.port);
    const get = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    c.sock.write(get);
    await sleep(300);
    assert.match(c.data, /^HTTP\/1\.1 200/, 'first answer');
    await sleep((REQUEST_TIMEOUT_S + 1) * 1000);
    assert.equal(c.closedAt, null, 'still open past the request deadline');
    c.data = '';
    c.sock.write(get);
    await sleep(300);
    assert.match(c.data, /^HTTP\/1\.1 200/, 'second answer on the same connection');
    c.sock.destroy();
  });

  test('one client past --max-conns-per-client: the extra connections are closed, others are served', T, async () => {
    const held = await whilePolled(d, async () => {
      const cs = [];
      for (let i = 0; i < PER_CLIENT * 2; i++) cs.push(await connectFrom(d.port, '127.0.0.14'));
      await sleep(500);
      // Another client, on a fresh connection, is served meanwhile.
      const other = d.cdb();
      const id = await d.createTask({ product: 'cdb' });
      const t0 = Date.now();
      await other.DescribeAsyncRequestInfo({ AsyncRequestId: id });
      assert.ok(Date.now() - t0 < ANSWER_MS, 'a fresh client is answered at once');
      const open = cs.filter((c) => c.closedAt === null);
      for (const c of cs) c.sock.destroy();
      return open.length;
    });
    assert.equal(held, PER_CLIENT, `exactly ${PER_CLIENT} of ${PER_CLIENT * 2} connections stayed open`);
  });

  test('header floods get an answer, not a crash: 200 headers, a 20 KiB header, a 40 KiB one', T, async () => {
    await whilePolled(d, async () => {
      const many = Array.from({ length: 200 }, (_, i) => `X-Flood-${i}: v\r\n`).join('');
      for (const [what, extra, statuses] of [
        ['200 headers', many, [200]],
        ['a 20 KiB header', `X-Big: ${'b'.repeat(20 * 1024)}\r\n`, [200]],
        ['a 40 KiB header', `X-Big: ${'b'.repeat(40 * 1024)}\r\n`, [431]],
      ]) {
        for (const port of [d.port, d.adminPort]) {
          const r = await rawSocket(port, Buffer.from(`POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}Content-Length: 2\r\n\r\n{}`));
          assert.ok(r.status !== null, `${what} on port ${port}: an HTTP answer, got ${JSON.stringify(r.text.slice(0, 100))} ${r.error || ''}`);
          if (port === d.port) assert.ok(statuses.includes(r.status), `${what}: status ${r.status}, expected ${statuses}`);
          if (port === d.port && r.status === 200) assert.ok(r.json && r.json.Response, `${what}: a Cloud API envelope: ${r.text.slice(0, 200)}`);
        }
      }
    });
  });

  test('a second asyncd on the used Cloud API port or admin port fails with a clear message', T, async () => {
    for (const [flag, port] of [['--listen', d.port], ['--admin', d.adminPort]]) {
      const err = await expectStartFails({ args: [...NO_LIMITS, flag, `127.0.0.1:${port}`] }, `${flag} on a used port`);
      assert.match(err.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use; is another asyncd running\\?`),
        err.message);
      assert.match(err.message, /"code":1/, 'exit code 1');
    }
    assert.ok(d.alive(), 'the first asyncd is untouched');
    const r = await d.healthz();
    assert.equal(r.status, 200);
  });
});

test('a flood of connections meets --max-conns, not the descriptor limit: existing clients go on', T, async () => {
  const d = await start({ args: [...NO_LIMITS, '--max-conns', '200', '--max-conns-per-client', '0', '--request-timeout', '10'] });
  try {
    assert.match(d.stderrText, /open files: limit \d+, 256 kept back, \d+ for \d+ steps at once; connections: cloudapi 200, admin \d+/);
    await whilePolled(d, async () => {
      const cs = [];
      const pending = [];
      for (let i = 0; i < 1500; i++) {
        pending.push(connectFrom(d.port, `127.0.0.${20 + (i % 5)}`).then((c) => cs.push(c), () => {}));
        if (pending.length % 100 === 0) await Promise.all(pending.splice(0));
      }
      await Promise.all(pending);
      await sleep(1000);
      assert.ok(cs.length > 200, `more connections than the limit were attempted (${cs.length})`);
      for (const c of cs) c.sock.destroy();
      await sleep(500);
    });
    // Once the flood is gone, new clients are served again.
    const id = await d.createTask({ product: 'cdb' });
    const r = await d.cdb().DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.equal(r.Status, 'INITIAL');
  } finally {
    await d.stop();
  }
});

test('SIGTERM while tasks are created over both APIs exits 0', T, async () => {
  const d = await start({ args: [...NO_LIMITS, '--drain-s', '1', '--flows', path.join(REPO_ROOT, 'flows')] });
  await d.adminOk('POST', '/v1/instances', {
    product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: 'cdb-fd1', status: 'running', dsn: 'mysql://root:pw@127.0.0.1:9',
  }, 201);
  const made = { admin: 0, cloud: 0 };
  let stopping = false;
  const loops = [];
  for (let i = 0; i < 3; i++) {
    loops.push((async () => {
      while (!stopping) {
        try {
          await d.createTask({ product: i % 2 ? 'cdb' : 'mongodb' });
          made.admin++;
        } catch { /* refused once the listener is closed */ }
      }
    })());
    const cdb = d.cdb();
    loops.push((async () => {
      let n = 0;
      while (!stopping) {
        try {
          // a task-creating action that needs no answer from the (unreachable) instance first
          await cdb.ModifyInstanceParam({ InstanceIds: ['cdb-fd1'], ParamList: [{ Name: 'max_connections', CurrentValue: String(200 + (n++ % 100)) }] });
          made.cloud++;
        } catch { /* refused once the listener is closed */ }
      }
    })());
  }
  await sleep(1500 * SLOW);
  const t0 = Date.now();
  try {
    assert.ok(made.admin > 0 && made.cloud > 0, `tasks were being created over both APIs: ${JSON.stringify(made)}`);
    await d.stop(); // asserts exit code 0 (and no sanitizer report)
  } finally {
    stopping = true;
    await Promise.all(loops);
    if (d.alive()) await d.kill9();
  }
  assert.ok(Date.now() - t0 < 15000 * SLOW, `stopped within 15 s: ${Date.now() - t0} ms`);
  assert.doesNotMatch(d.stderrText, /AddressSanitizer|runtime error/);
});
