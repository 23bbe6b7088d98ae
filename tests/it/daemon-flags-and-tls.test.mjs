// Start-up flags of asyncd: --help documents them, bad values are refused, --max-body and
// --tls-cert/--tls-key work as documented (the SDK over https:// with our own CA).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  ASYNCCTL_BIN, ASYNCD_BIN, NO_LIMITS, PRODUCTS, SIGN_MODES, SLOW, assertEnvelope, expectStartFails, rawSocket, start,
} from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };

test('--version: asyncd and asyncctl print the same release and exit 0 without starting', () => {
  const d = spawnSync(ASYNCD_BIN, ['--version'], { encoding: 'utf8', timeout: 10000 * SLOW });
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stdout, /^asyncd \d+\.\d+\.\d+\n$/);
  const c = spawnSync(ASYNCCTL_BIN, ['--version'], { encoding: 'utf8', timeout: 10000 * SLOW });
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout.replace('asyncctl', 'asyncd'), d.stdout, 'one release for both binaries');
});

test('--help exits 0 and documents every flag of DESIGN.md', () => {
  const r = spawnSync(ASYNCD_BIN, ['--help'], { encoding: 'utf8', timeout: 10000 * SLOW });
  assert.equal(r.status, 0, r.stderr);
  const text = r.stdout + r.stderr;
  for (const flag of ['--listen', '--admin', '--data', '--store', '--flows', '--workers', '--node-id', '--tls-cert',
    '--tls-key', '--tz', '--log-level', '--rate-limit', '--lease-s', '--retention']) {
    assert.ok(text.includes(flag), `--help mentions ${flag}`);
  }
});

test('unknown flags and malformed values are refused at start-up', T, async () => {
  for (const args of [['--no-such-flag'], ['--workers', 'many'], ['--lease-s', '0'], ['--log-level', 'chatty'],
    ['--tls-cert', '/nonexistent.pem'], ['--listen', '127.0.0.1:99999']]) {
    await expectStartFails({ args: [...NO_LIMITS, ...args] }, args.join(' '));
  }
});

test('--max-body 4096: a bigger body gets RequestSizeLimitExceeded, a smaller one is judged normally', T, async () => {
  const d = await start({ args: [...NO_LIMITS, '--max-body', '4096'] });
  try {
    const pid = d.proc.pid;
    const id = await d.createTask({ product: 'cdb' });
    const small = await d.tc3({ payload: { AsyncRequestId: id, Pad: 'x'.repeat(3000) } });
    assertEnvelope(small, 'UnknownParameter', '3000-byte body');
    // A little over the limit (well under the point where the server stops reading): the body is
    // read and dropped, so the answer must be the envelope; a reset here is a failure.
    for (const size of [4097 - 40, 5000, 16 * 1024]) {
      const payload = JSON.stringify({ AsyncRequestId: id, Pad: 'x'.repeat(size) });
      assert.ok(payload.length > 4096, `payload of ${payload.length} bytes is over the limit`);
      const r = await d.tc3({ payload });
      assertEnvelope(r, 'RequestSizeLimitExceeded', `${payload.length}-byte TC3 body`);
    }
    const form = await d.v1({ method: 'POST', params: { AsyncRequestId: id, Pad: 'y'.repeat(6000) } });
    assertEnvelope(form, 'RequestSizeLimitExceeded', '6000-byte v1 form body');
    // Far over the limit (announced 1 MiB, 256x): the server may answer or reset the connection;
    // either way it must still be the same process, serving.
    let far;
    try {
      far = await d.tc3({ payload: JSON.stringify({ AsyncRequestId: id, Pad: 'z'.repeat(1 << 20) }) });
    } catch (e) {
      assert.match(e.code || e.message, /ECONNRESET|EPIPE|socket hang up/, `a reset, not another failure: ${e.message}`);
    }
    if (far) assertEnvelope(far, 'RequestSizeLimitExceeded', '1 MiB TC3 body');
    assert.ok(d.alive(), `asyncd is still running after the oversized bodies\n${d.stderrTail()}`);
    assert.equal(d.proc.pid, pid, 'same process');
    const ok = await d.describe('cdb', id);
    assert.equal(ok.Status, 'INITIAL', 'an SDK call is answered after the oversized bodies');
  } finally {
    await d.stop();
  }
});

describe('TLS on the Cloud API listener', T, () => {
  let dir;
  let ca;
  let d;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-tls-'));
    const openssl = (...a) => execFileSync('openssl', a, { cwd: dir, stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=asyncd-it', '-addext', 'subjectAltName=DNS:cdb.example.net,DNS:mongodb.example.net,IP:127.0.0.1',
      '-keyout', 'key.pem', '-out', 'cert.pem');
    ca = fs.readFileSync(path.join(dir, 'cert.pem'));
    d = await start({ args: [...NO_LIMITS, '--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')] });
  });
  after(async () => {
    await d?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the SDK over https:// works for both products, every mode, by IP and by Host label', async () => {
    for (const p of PRODUCTS) {
      const { id } = await d.taskInState(p, 'success', { info: 'over tls' });
      for (const mode of SIGN_MODES) {
        for (const endpointHost of [undefined, `${p}.example.net`]) {
          const r = await d.describe(p, id, { ...mode, endpointHost, tlsCa: ca });
          assert.equal(r.Status, p === 'cdb' ? 'SUCCESS' : 'success', `${p} ${mode.name} ${endpointHost || 'ip'}`);
        }
      }
    }
  });

  test('plain HTTP to the TLS port gets no API answer, and the daemon keeps serving https://', async () => {
    const pid = d.proc.pid;
    const { id } = await d.taskInState('cdb', 'success', { info: 'tls still up' });
    assert.equal((await d.describe('cdb', id, { tlsCa: ca })).Status, 'SUCCESS', 'https:// works before');
    const r = await rawSocket(d.port, Buffer.from('GET /?Action=DescribeAsyncRequestInfo HTTP/1.1\r\nHost: x\r\n\r\n'), { timeoutMs: 5000 * SLOW });
    assert.ok(!r.json?.Response, `plain HTTP must not be served on the TLS port: ${r.text.slice(0, 200)}`);
    assert.ok(!/^HTTP\/1\.[01] 200/.test(r.text), `no 200 answer in plain text: ${r.text.slice(0, 200)}`);
    // The refusal must cost only that connection: same process, still serving https://.
    assert.ok(d.alive(), `asyncd is still running after plain HTTP on the TLS port\n${d.stderrTail()}`);
    assert.equal(d.proc.pid, pid, 'same process');
    const after = await d.describe('cdb', id, { tlsCa: ca });
    assert.equal(after.Status, 'SUCCESS', 'an SDK call over https:// is answered afterwards');
  });

  test('the certificate served is the one given', async () => {
    const cert = await new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: d.port, ca, servername: 'cdb.example.net' }, () => {
        resolve(s.getPeerCertificate());
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(cert.subject.CN, 'asyncd-it');
  });

  test('over https://, an action run on the blocking-work threads answers too', async () => {
    for (const mode of SIGN_MODES) {
      await assert.rejects(d.cdb({ ...mode, tlsCa: ca }).DescribeAccounts({ InstanceId: 'cdb-nosuch' }),
        (err) => err.code === 'InvalidParameter.InstanceNotFound' || assert.fail(`${mode.name}: ${err.code} ${err.message}`));
    }
  });

  test('--tls-cert without --tls-key is refused', async () => {
    await expectStartFails({ args: [...NO_LIMITS, '--tls-cert', path.join(dir, 'cert.pem')] }, 'cert without key');
  });
});

test('the listening line is flushed at once when stderr is a file, and SIGINT also exits 0', T, async () => {
  const { spawn } = await import('node:child_process');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-file-'));
  const logPath = path.join(dir, 'stderr.log');
  const fd = fs.openSync(logPath, 'w');
  const proc = spawn(ASYNCD_BIN, ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data', path.join(dir, 'data'),
    '--tz', 'UTC', ...NO_LIMITS], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    const deadline = Date.now() + 20000 * SLOW;
    let text = '';
    while (!/listening cloudapi=\S+:\d+ admin=\S+:\d+/.test(text)) {
      assert.ok(Date.now() < deadline, `no listening line in the stderr file: ${text}`);
      await new Promise((r) => setTimeout(r, 50));
      text = fs.readFileSync(logPath, 'utf8');
    }
    proc.kill('SIGINT');
    assert.deepEqual(await exited, { code: 0, signal: null }, fs.readFileSync(logPath, 'utf8'));
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
