// Secrets at rest (issue 10, item 5): after CreateAccounts and ModifyAccountPassword end, neither
// the tenant passwords, nor the instance's DSN password, nor a SecretKey appears in any file of
// the data directory (asyncd.db, -wal, -shm), the daemon's log or, on PostgreSQL, a pg_dump of
// its database -- searched byte for byte. The admin API shows the DSN password as ***; after a
// restart the keys open again (the SDK works, the DSN still reaches MariaDB); a start with
// another key file fails with a message that says so. A store where an older asyncd left a
// SecretKey and a DSN in clear has them sealed at the next start, and they still work.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, psql, NO_LIMITS, REPO_ROOT, REGION, STORE, ASYNCCTL_BIN, expectCode, filesUnder } from './lib/asyncd.mjs';
import { useMariaDB, uniqueUser, waitFinal } from './lib/mariadb.mjs';

const INST = 'cdb-secrets';
// Distinctive, so a hit can only be ours.
const TENANT_PW = `Zq7-tenant-${Math.random().toString(36).slice(2, 10)}`;
const NEW_PW = `Xk9-changed-${Math.random().toString(36).slice(2, 10)}`;
let d;
let db;
let other; // a second root account: its SecretKey was never written to any file by anyone
const users = new Set();

before(async () => {
  db = await useMariaDB();
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')] });
  await d.adminOk('POST', '/v1/instances',
    { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST, status: 'running', dsn: db.dsn }, 201);
  other = await d.createAccount();
});

after(async () => {
  if (db) for (const u of users) await db.sql(`DROP USER IF EXISTS '${u}'@'%'`);
  if (d) await d.stop();
  if (db) await db.stop();
});


/** The files (or 'pg_dump') whose bytes contain needle. */
function hits(sources, needle) {
  const n = Buffer.from(needle, 'utf8');
  return sources.filter((s) => s.bytes.includes(n)).map((s) => s.name);
}

function pgDump(url) {
  return new Promise((resolve, reject) => {
    execFile('pg_dump', ['--no-owner', '-d', url], { maxBuffer: 256 << 20, encoding: 'buffer' },
      (err, stdout, stderr) => (err ? reject(new Error(`pg_dump: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

test('the admin API shows the DSN password as ***', async () => {
  const list = await d.adminOk('GET', '/v1/instances');
  const inst = list.instances.find((i) => i.instance_id === INST);
  assert.ok(inst, JSON.stringify(list));
  assert.equal(inst.dsn, db.dsn.replace(`:${db.password}@`, ':***@'));
  assert.ok(!JSON.stringify(list).includes(db.password), 'no DSN password in GET /v1/instances');
  const patched = await d.adminOk('PATCH', `/v1/instances/${INST}`, { dsn: db.dsn });
  assert.equal(patched.dsn, inst.dsn, 'PATCH answers it redacted too');
  const env = { ...process.env };
  delete env.ASYNCD_TOKEN;
  const table = execFileSync(ASYNCCTL_BIN, ['--admin', `http://127.0.0.1:${d.adminPort}`, '--data', d.dataDir,
    'instance', 'list', '--product', 'cdb'], { encoding: 'utf8', env });
  assert.ok(table.includes(inst.dsn) && !table.includes(db.password), `asyncctl instance list shows ***:\n${table}`);
});

test('after CreateAccounts and ModifyAccountPassword end, no secret is in the data dir, the log or the database', async () => {
  const cdb = d.cdb();
  const u = uniqueUser('sec');
  users.add(u);
  const r = await cdb.CreateAccounts({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], Password: TENANT_PW });
  const s = await waitFinal(cdb, r.AsyncRequestId);
  assert.equal(s.Status, 'SUCCESS', JSON.stringify(s));
  assert.equal(await db.canLogin(u, TENANT_PW), true, 'the account was made with the password');
  const m = await cdb.ModifyAccountPassword({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], NewPassword: NEW_PW });
  assert.equal((await waitFinal(cdb, m.AsyncRequestId)).Status, 'SUCCESS');
  assert.equal(await db.canLogin(u, NEW_PW), true, 'the password was changed');
  for (const id of [r.AsyncRequestId, m.AsyncRequestId]) {
    const task = JSON.stringify(await d.getTask(id));
    assert.ok(!task.includes(TENANT_PW) && !task.includes(NEW_PW), `GET /v1/tasks/${id} shows no password`);
    assert.ok(!task.includes('enc:v1:'), 'the final task keeps no sealed secret either (erased)');
  }

  // Stopped, so SQLite has checkpointed its WAL; the -wal and -shm are searched when they remain.
  await d.stop({ keepData: true });
  const sources = filesUnder(d.dataDir).map((f) => ({ name: path.relative(d.dataDir, f), bytes: fs.readFileSync(f) }));
  sources.push({ name: 'daemon log', bytes: fs.readFileSync(d.logPath) });
  if (d.storeUrl) sources.push({ name: 'pg_dump', bytes: await pgDump(d.storeUrl) });
  if (STORE === 'sqlite') assert.ok(sources.some((x) => x.name === 'asyncd.db'), 'the SQLite file was searched');
  assert.deepEqual(hits(sources, TENANT_PW), [], 'the CreateAccounts password');
  assert.deepEqual(hits(sources, NEW_PW), [], 'the ModifyAccountPassword password');
  assert.deepEqual(hits(sources, db.password), [], 'the DSN password');
  assert.deepEqual(hits(sources, other.SecretKey), [], 'a SecretKey handed out by the admin API');
  // credentials.json is the operator's copy of the root keys (mode 0600), written on purpose.
  assert.deepEqual(hits(sources, d.creds.SecretKey), ['credentials.json'], 'the root SecretKey, elsewhere');
  // The step rows keep "***" where the passwords were. In a pg_dump (live rows only) their sealed
  // form is gone too; SQLite may keep an updated row's old (sealed) bytes in free page space.
  assert.ok(hits(sources, `"${u}","%","***"`).length > 0, 'the erased step args are stored as ***');
  if (d.storeUrl) assert.deepEqual(hits(sources.filter((x) => x.name === 'pg_dump'), `"${u}","%","enc:v1:`), []);
  const sealed = hits(sources, 'enc:v1:');
  assert.ok(sealed.length > 0, `sealed values are stored (found in ${sealed})`);
  const key = fs.statSync(path.join(d.dataDir, 'secret.key'));
  assert.equal(key.mode & 0o777, 0o600, 'the key file is mode 0600');
});

test('after a restart the keys open again: the SDK signs, the DSN reaches MariaDB', async () => {
  await d.restart();
  const cdb = d.cdb();
  const acc = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: '^sec_' });
  assert.ok(acc.TotalCount >= 1, `DescribeAccounts connects with the opened DSN: ${JSON.stringify(acc)}`);
  const otherClient = d.cdb({ creds: other });
  await expectCode(otherClient.DescribeAsyncRequestInfo({ AsyncRequestId: 'f96e4f3c-8fc96c86-2ec79ac8-cb63a7a7' }),
    'InvalidParameter.InvalidAsyncRequestId');
  const list = await d.adminOk('GET', '/v1/instances');
  assert.ok(!JSON.stringify(list).includes(db.password), 'still redacted');
});

test('a start with another --secret-key-file fails and says why', async () => {
  await d.stop({ keepData: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-key-'));
  const wrong = path.join(dir, 'wrong.key');
  fs.writeFileSync(wrong, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  await assert.rejects(start({ dataDir: d.dataDir, args: [...d.args, '--secret-key-file', wrong] }),
    /sealed under another key.*--secret-key-file/s);
  fs.chmodSync(wrong, 0o644);
  await assert.rejects(start({ dataDir: d.dataDir, args: [...d.args, '--secret-key-file', wrong] }),
    /readable by group or others.*chmod 600/s);
  fs.rmSync(dir, { recursive: true, force: true });
  await d.start(); // the data dir's own key still opens everything
  assert.equal((await d.adminOk('GET', '/v1/instances')).instances.length, 1);
});

/** Runs SQL on d's store beside the daemon (sqlite3 on the data dir's file, or psql). */
function storeSql(daemon, sql) {
  if (daemon.storeUrl) return psql(sql, { url: daemon.storeUrl });
  return new Promise((resolve, reject) => {
    execFile('sqlite3', [path.join(daemon.dataDir, 'asyncd.db'), sql], (err, out, stderr) =>
      (err ? reject(new Error(`sqlite3 ${sql}: ${err.message}\n${stderr}`)) : resolve(out)));
  });
}

test('secrets an older asyncd left in clear are sealed at the next start, and still work', async () => {
  const old = await start({ args: [...NO_LIMITS] });
  const dsnPw = `Dq4-clear-${Math.random().toString(36).slice(2, 10)}`;
  const dsn = `mysql://admin:${dsnPw}@127.0.0.1:1`;
  await old.adminOk('POST', '/v1/instances',
    { product: 'cdb', region: REGION, uin: old.creds.Uin, instance_id: 'cdb-clear', status: 'running', dsn }, 201);
  await old.stop({ keepData: true });
  // As a store from before sealing holds them: the root SecretKey and the DSN in clear.
  await storeSql(old, `UPDATE account_keys SET secret_key = '${old.creds.SecretKey}' WHERE secret_id = '${old.creds.SecretId}'`);
  await storeSql(old, `UPDATE instances SET dsn = '${dsn}' WHERE instance_id = 'cdb-clear'`);
  assert.ok((await storeSql(old, 'SELECT secret_key FROM account_keys')).includes(old.creds.SecretKey), 'written in clear');

  await old.start();
  assert.match(old.stderrText, /info store: sealed 2 secrets an older asyncd had stored in clear \(SecretKeys: 1, instance DSNs: 1\)/);
  await expectCode(old.cdb().DescribeAsyncRequestInfo({ AsyncRequestId: 'f96e4f3c-8fc96c86-2ec79ac8-cb63a7a7' }),
    'InvalidParameter.InvalidAsyncRequestId'); // signed with the key that was in clear: it opens
  const inst = await old.adminOk('GET', '/v1/instances/cdb-clear');
  assert.equal(inst.dsn, 'mysql://admin:***@127.0.0.1:1');
  await old.stop({ keepData: true });

  const sources = filesUnder(old.dataDir).map((f) => ({ name: path.relative(old.dataDir, f), bytes: fs.readFileSync(f) }));
  if (old.storeUrl) sources.push({ name: 'pg_dump', bytes: await pgDump(old.storeUrl) });
  assert.deepEqual(hits(sources, old.creds.SecretKey), ['credentials.json'], 'the SecretKey is sealed in the store');
  assert.deepEqual(hits(sources, dsnPw), [], 'the DSN password is sealed in the store');
  // Sealed once: another start finds nothing left to seal.
  await old.start();
  assert.doesNotMatch(old.stderrText, /sealed \d+ secret/);
  await old.stop();
});
