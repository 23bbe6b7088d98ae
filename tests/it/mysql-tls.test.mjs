// MySQL over TLS when the instance DSN asks for it (issue 10 item 6): a MariaDB of this test's own
// with a CA and a server certificate made here by openssl; tasks on an instance registered with
// ?ssl-mode=VERIFY_CA&ssl-ca=... run over an encrypted session (the session's Ssl_cipher, read
// by asyncd's own connection), a wrong CA or a host name the certificate does not carry
// (VERIFY_IDENTITY) fail with a step message saying so (an account action, which looks its
// accounts up on the server first, answers it before any task exists), REQUIRED on a server without TLS fails
// instead of quietly talking in clear, and a DSN option asyncd does not know is refused when the
// instance is registered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, NO_LIMITS, REPO_ROOT, REGION, SLOW, expectCode, sleep } from './lib/asyncd.mjs';
import { freePort, run, useMariaDB, uniqueUser, waitFinal } from './lib/mariadb.mjs';

const PW = 'Tls-admin-pw-1';
const TENANT_PW = 'Passw0rd-tls-1';
let dir;
let server; // {proc, port, pid}
let plain; // the suite's MariaDB without TLS
let d;
let cdb;

async function sh(argv) {
  const r = await run(argv);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A CA, a server certificate it signed for IP 127.0.0.1 only, and an unrelated CA. */
async function makeCerts() {
  const f = (n) => path.join(dir, n);
  const subj = (cn) => ['-subj', `/CN=${cn}`];
  await sh(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', ...subj('asyncd-it-ca'), '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  await sh(['openssl', 'req', '-newkey', 'rsa:2048', '-nodes', ...subj('127.0.0.1'), '-keyout', f('server.key'), '-out', f('server.csr')]);
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await sh(['openssl', 'x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.pem')]);
  await sh(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', ...subj('someone-else-ca'), '-keyout', f('other.key'), '-out', f('other.pem')]);
}

/** mariadbd as scripts/mariadb.sh starts it, plus --ssl-ca/--ssl-cert/--ssl-key; an admin account. */
async function startTlsServer() {
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'mysql.sock');
  await sh(['mariadb-install-db', '--no-defaults', `--datadir=${data}`, '--user=root',
    '--auth-root-authentication-method=normal', '--skip-test-db']);
  const port = await freePort();
  const proc = spawn('mariadbd', ['--no-defaults', `--datadir=${data}`, `--socket=${sock}`, `--port=${port}`,
    '--bind-address=127.0.0.1', '--skip-networking=0', `--pid-file=${path.join(dir, 'mariadb.pid')}`, '--user=root',
    `--log-error=${path.join(dir, 'error.log')}`, `--ssl-ca=${path.join(dir, 'ca.pem')}`,
    `--ssl-cert=${path.join(dir, 'server.pem')}`, `--ssl-key=${path.join(dir, 'server.key')}`], { stdio: 'ignore' });
  proc.unref();
  server = { proc, port, sock };
  process.once('exit', () => { try { proc.kill('SIGKILL'); } catch { /* gone */ } });
  const root = ['mariadb', '--no-defaults', '--protocol=socket', `--socket=${sock}`, '-uroot'];
  const deadline = Date.now() + 60000 * SLOW;
  for (;;) {
    const r = await run([...root, '-e', 'SELECT 1']);
    if (r.code === 0) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      let log = '';
      try { log = fs.readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-2000); } catch { /* none */ }
      assert.fail(`the TLS MariaDB did not come up: ${r.stderr}\n${log}`);
    }
    await sleep(200);
  }
  let sql = '';
  for (const h of ['127.0.0.1', 'localhost', '::1']) {
    sql += `CREATE USER 'asyncd_tls'@'${h}' IDENTIFIED BY '${PW}'; GRANT ALL ON *.* TO 'asyncd_tls'@'${h}' WITH GRANT OPTION;`;
  }
  await sh([...root, '-e', sql]);
}

async function stopTlsServer() {
  if (!server) return;
  const { proc } = server;
  server = null;
  if (proc.exitCode !== null) return;
  const exited = new Promise((res) => proc.once('exit', res));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 30000);
  await exited;
  clearTimeout(t);
}

const dsn = (opts, host = '127.0.0.1') => `mysql://asyncd_tls:${PW}@${host}:${server.port}?${opts}`;

async function register(id, dsnText) {
  await d.adminOk('POST', '/v1/instances',
    { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: id, status: 'running', dsn: dsnText }, 201);
}

/** A task on instance id whose one mysql step reports the session's TLS cipher as its message. */
async function cipherTask(id) {
  const r = await d.adminOk('POST', '/v1/tasks', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: id,
    type: 'TlsProbe', on_failure: 'fail', steps: [{ name: 'cipher', do: { mysql: {
      capture: "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'",
      sql: 'DO 0', message: 'cipher={captured}' } } }] }, 201);
  return waitFinal(cdb, r.AsyncRequestId);
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-tls-'));
  await makeCerts();
  await startTlsServer();
  plain = await useMariaDB();
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')] });
  cdb = d.cdb();
});

after(async () => {
  if (d) await d.stop();
  await stopTlsServer();
  if (plain) await plain.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('VERIFY_CA with the right CA: tasks run over an encrypted session', async () => {
  await register('cdb-tls-ca', dsn(`ssl-mode=VERIFY_CA&ssl-ca=${path.join(dir, 'ca.pem')}`));
  const s = await cipherTask('cdb-tls-ca');
  assert.equal(s.Status, 'SUCCESS', JSON.stringify(s));
  assert.match(s.Info, /^cipher=(TLS_|ECDHE|DHE|AES)[A-Z0-9_-]+$/, 'asyncd\'s own session reports a TLS cipher');

  const u = uniqueUser('tls');
  const r = await cdb.CreateAccounts({ InstanceId: 'cdb-tls-ca', Password: TENANT_PW, Accounts: [{ User: u, Host: '%' }] });
  const c = await waitFinal(cdb, r.AsyncRequestId);
  assert.equal(c.Status, 'SUCCESS', JSON.stringify(c));
  const root = ['mariadb', '--no-defaults', '--protocol=socket', `--socket=${server.sock}`, '-uroot', '-N', '-e'];
  assert.equal((await sh([...root, `SELECT COUNT(*) FROM mysql.user WHERE User = '${u}'`])).trim(), '1');
});

test('VERIFY_IDENTITY checks the host name: 127.0.0.1 (in the certificate) works, localhost fails', async () => {
  await register('cdb-tls-id', dsn(`ssl-mode=VERIFY_IDENTITY&ssl-ca=${path.join(dir, 'ca.pem')}`));
  const ok = await cipherTask('cdb-tls-id');
  assert.equal(ok.Status, 'SUCCESS', JSON.stringify(ok));
  assert.match(ok.Info, /^cipher=\S+$/);
  await register('cdb-tls-id-bad', dsn(`ssl-mode=VERIFY_IDENTITY&ssl-ca=${path.join(dir, 'ca.pem')}`, 'localhost'));
  const bad = await cipherTask('cdb-tls-id-bad');
  assert.equal(bad.Status, 'FAILED', JSON.stringify(bad));
  assert.match(bad.Info, /cannot connect to MySQL at localhost:\d+ with ssl-mode=VERIFY_IDENTITY: .*(certificate|Validation)/i);
  await register('cdb-tls-ca-localhost', dsn(`ssl-mode=VERIFY_CA&ssl-ca=${path.join(dir, 'ca.pem')}`, 'localhost'));
  const caOnly = await cipherTask('cdb-tls-ca-localhost');
  assert.equal(caOnly.Status, 'SUCCESS', `VERIFY_CA does not check the name: ${JSON.stringify(caOnly)}`);
});

test('a wrong CA: an account action answers the TLS error before any task exists, a step fails with it, and nothing runs', async () => {
  await register('cdb-tls-wrong', dsn(`ssl-mode=VERIFY_CA&ssl-ca=${path.join(dir, 'other.pem')}`));
  const u = uniqueUser('tlsx');
  const tls = /cannot connect to MySQL at 127\.0\.0\.1:\d+ with ssl-mode=VERIFY_CA: TLS\/SSL error: .*certificate/;
  // CreateAccounts looks the account up on the server first (docs/flows.md, the tenant guard).
  const e = await expectCode(cdb.CreateAccounts({ InstanceId: 'cdb-tls-wrong', Password: TENANT_PW, Accounts: [{ User: u, Host: '%' }] }),
    'CdbError.TaskError', 'CreateAccounts over a wrong CA');
  assert.match(e.message, tls);
  assert.ok(!e.message.includes(PW) && !e.message.includes(TENANT_PW), 'no password in the message');
  const s = await cipherTask('cdb-tls-wrong');
  assert.equal(s.Status, 'FAILED', JSON.stringify(s));
  assert.match(s.Info, tls);
  assert.ok(!s.Info.includes(PW), 'no password in the message');
  const root = ['mariadb', '--no-defaults', '--protocol=socket', `--socket=${server.sock}`, '-uroot', '-N', '-e'];
  assert.equal((await sh([...root, `SELECT COUNT(*) FROM mysql.user WHERE User = '${u}'`])).trim(), '0');
});

test('REQUIRED on a server without TLS fails instead of falling back; PREFERRED falls back', async () => {
  await register('cdb-plain-required', `${plain.dsn}?ssl-mode=REQUIRED`);
  const s = await cipherTask('cdb-plain-required');
  assert.equal(s.Status, 'FAILED', JSON.stringify(s));
  assert.match(s.Info, /with ssl-mode=REQUIRED: ssl-mode=REQUIRED, but the server does not offer TLS/);
  await register('cdb-plain-preferred', `${plain.dsn}?ssl-mode=PREFERRED`);
  const p = await cipherTask('cdb-plain-preferred');
  assert.equal(p.Status, 'SUCCESS', JSON.stringify(p));
  assert.equal(p.Info, 'cipher=');
  await register('cdb-tls-preferred', dsn('ssl-mode=PREFERRED'));
  const t = await cipherTask('cdb-tls-preferred');
  assert.match(t.Info, /^cipher=\S+$/, 'PREFERRED uses TLS when the server offers it');
});

test('registration refuses unknown options, contradictions and unreadable files, with the reason', async () => {
  const cases = [
    [dsn('sslmode=REQUIRED'), /unknown option \\?"sslmode\\?" \(expected ssl-mode, ssl-ca, ssl-capath, ssl-cert, ssl-key\)/],
    [dsn('ssl-mode=VERIFY_CA'), /ssl-mode=VERIFY_CA needs ssl-ca/],
    [dsn('ssl-mode=SOMETIMES'), /ssl-mode: expected DISABLED, PREFERRED, REQUIRED, VERIFY_CA or VERIFY_IDENTITY/],
    [dsn(`ssl-ca=${path.join(dir, 'missing.pem')}`), /ssl-ca: cannot read .*missing\.pem: No such file/],
  ];
  for (const [text, re] of cases) {
    const r = await d.admin('POST', '/v1/instances',
      { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: 'cdb-tls-refused', status: 'running', dsn: text });
    assert.equal(r.status, 400, `${text}: ${r.status} ${r.text}`);
    assert.match(r.text, re, text);
    assert.ok(!r.text.includes(PW), 'the password is not echoed');
  }
  const list = await d.adminOk('GET', '/v1/instances');
  assert.ok(!JSON.stringify(list).includes('cdb-tls-refused'), `nothing was registered: ${JSON.stringify(list)}`);
});
