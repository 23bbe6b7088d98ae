// Injection: user names, hosts, identifiers and parameter values carrying quotes, backticks,
// semicolons, backslashes and NUL bytes are either refused (InvalidParameterValue, or
// InvalidParameter where the request itself cannot carry them) before any task exists, or applied
// literally; nothing else runs, neither on the MariaDB server nor in the backup step's shell.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, NO_LIMITS, IT_DIR, REPO_ROOT, REGION, SLOW, sleep, expectCode } from './lib/asyncd.mjs';
import { useMariaDB, uniqueUser, waitFinal, taskTotal } from './lib/mariadb.mjs';

const FLOWS = path.join(IT_DIR, 'flows-test');
const INST = 'cdb-inj';
const MINST = 'cmgo-inj';
const REJECTED = ['InvalidParameterValue', 'InvalidParameter'];
let d;
let db;
let cdb;
let cdbGet;
let mongo;
let work;
let victimDb;
const users = new Set();

const NASTY = [
  "x'; DROP USER 'asyncd_admin'@'%'; --",
  "x' OR '1'='1",
  'x`y',
  'x`; DROP DATABASE `mysql',
  'a;b',
  'a\u0000b',
  'a\\\'b',
  'a\nb',
  'a b',
  'a"b',
  'a/*b*/',
];

before(async () => {
  db = await useMariaDB();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-inj-'));
  fs.mkdirSync(path.join(work, 'src'));
  fs.writeFileSync(path.join(work, 'src', '.asyncd-it-source'), '');
  fs.writeFileSync(path.join(work, 'src', 'data.bson'), 'data');
  d = await start({ args: [...NO_LIMITS, '--flows', FLOWS] });
  cdb = d.cdb();
  cdbGet = d.cdb({ signMethod: 'HmacSHA256', reqMethod: 'GET' });
  mongo = d.mongodb();
  await d.adminOk('POST', '/v1/instances', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST, status: 'running', dsn: db.dsn }, 201);
  await d.createInstance({ product: 'mongodb', instance_id: MINST, dsn: `mongodb://127.0.0.1:27017${path.join(work, 'src')}` });
  victimDb = `it_victim_${Math.random().toString(36).slice(2, 8)}`;
  await db.sql(`CREATE DATABASE \`${victimDb}\``);
});

after(async () => {
  if (db) {
    for (const u of users) for (const h of await db.hostsOf(u)) await db.sql(`DROP USER IF EXISTS '${u}'@'${h}'`);
    if (victimDb) await db.sql(`DROP DATABASE IF EXISTS \`${victimDb}\``);
  }
  if (d) await d.stop();
  if (db) await db.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function user(prefix) {
  const u = uniqueUser(prefix);
  users.add(u);
  return u;
}

async function victimExists() {
  const rows = await db.sql(`SHOW DATABASES LIKE '${victimDb}'`);
  return rows.length === 1;
}

/** Calls call() and expects one of `codes`; collects a description of any other answer (or a created task) in failures. */
async function refused(failures, label, call, codes = REJECTED) {
  const n0 = await taskTotal(d);
  try {
    const r = await call();
    failures.push(`${label}: accepted (${JSON.stringify(r)})`);
  } catch (e) {
    if (e.code === undefined) failures.push(`${label}: not an API error: ${e.message}`);
    else if (!codes.includes(e.code)) failures.push(`${label}: ${e.code} (${e.message}), expected ${codes.join(' or ')}`);
  }
  if (await taskTotal(d) !== n0) failures.push(`${label}: a task was created`);
}

test('user names, hosts and identifiers with quotes, backticks, semicolons, NUL... are refused; mysql.user unchanged', async () => {
  const usersBefore = await db.userTable();
  const totalBefore = await taskTotal(d);
  const ok = user('inj');
  const failures = [];
  for (const bad of NASTY) {
    const reqs = {
      'CreateAccounts User': { InstanceId: INST, Accounts: [{ User: bad, Host: '%' }], Password: 'Passw0rd-inj' },
      'CreateAccounts Host': { InstanceId: INST, Accounts: [{ User: ok, Host: bad }], Password: 'Passw0rd-inj' },
      'CreateAccounts 2nd User': { InstanceId: INST, Accounts: [{ User: ok, Host: '%' }, { User: bad, Host: '%' }], Password: 'Passw0rd-inj' },
      'DeleteAccounts User': { InstanceId: INST, Accounts: [{ User: bad, Host: '%' }] },
      'DeleteAccounts Host': { InstanceId: INST, Accounts: [{ User: 'asyncd_admin', Host: bad }] },
      'ModifyAccountHost User': { InstanceId: INST, User: bad, Host: '%', NewHost: 'localhost' },
      'ModifyAccountHost Host': { InstanceId: INST, User: ok, Host: bad, NewHost: 'localhost' },
      'ModifyAccountHost NewHost': { InstanceId: INST, User: ok, Host: '%', NewHost: bad },
      'ModifyAccountPassword User': { InstanceId: INST, Accounts: [{ User: bad, Host: '%' }], NewPassword: 'Passw0rd-inj' },
      'ModifyAccountPrivileges User': { InstanceId: INST, Accounts: [{ User: bad, Host: '%' }], GlobalPrivileges: ['PROCESS'] },
      'ModifyAccountPrivileges GlobalPrivileges': { InstanceId: INST, Accounts: [{ User: ok, Host: '%' }], GlobalPrivileges: [`PROCESS${bad}`] },
      'ModifyAccountPrivileges Database': { InstanceId: INST, Accounts: [{ User: ok, Host: '%' }], DatabasePrivileges: [{ Database: bad, Privileges: ['SELECT'] }] },
      'ModifyAccountPrivileges Table': { InstanceId: INST, Accounts: [{ User: ok, Host: '%' }], TablePrivileges: [{ Database: 'd', Table: bad, Privileges: ['SELECT'] }] },
      'ModifyAccountPrivileges Privileges': { InstanceId: INST, Accounts: [{ User: ok, Host: '%' }], DatabasePrivileges: [{ Database: 'd', Privileges: [`SELECT${bad}`] }] },
      'ModifyInstanceParam Name': { InstanceIds: [INST], ParamList: [{ Name: `max_connect_errors${bad}`, CurrentValue: '100' }] },
      'InstanceId': { InstanceId: `${INST}${bad}`, Accounts: [{ User: ok, Host: '%' }], Password: 'Passw0rd-inj' },
    };
    for (const [what, params] of Object.entries(reqs)) {
      const action = what.split(' ')[0] === 'InstanceId' ? 'CreateAccounts' : what.split(' ')[0];
      const label = `${what} = ${JSON.stringify(bad)}`;
      await refused(failures, `${label} (TC3 POST)`, () => cdb[action](params));
      await refused(failures, `${label} (HmacSHA256 GET)`, () => cdbGet[action](params));
    }
  }
  await sleep(300 * SLOW); // a task wrongly created would have run by now
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.equal(await taskTotal(d), totalBefore, 'no task exists');
  assert.deepEqual(await db.userTable(), usersBefore, 'mysql.user is unchanged');
  assert.ok(await victimExists());
  assert.equal(await db.canLogin(db.user, db.password), true, 'the admin account still works');
});

test('a NUL byte in any string is refused (passwords, descriptions, values, remarks), before any task exists', async () => {
  const failures = [];
  const u = user('nul');
  const cases = [
    ['CreateAccounts Password', 'CreateAccounts', { InstanceId: INST, Accounts: [{ User: u, Host: '%' }], Password: 'Passw0rd\u0000-inj' }],
    ['CreateAccounts Description', 'CreateAccounts', { InstanceId: INST, Accounts: [{ User: u, Host: '%' }], Password: 'Passw0rd-inj', Description: 'a\u0000b' }],
    ['ModifyAccountPassword NewPassword', 'ModifyAccountPassword', { InstanceId: INST, Accounts: [{ User: u, Host: '%' }], NewPassword: 'Passw0rd\u0000; DROP USER x' }],
    ['ModifyInstanceParam CurrentValue', 'ModifyInstanceParam', { InstanceIds: [INST], ParamList: [{ Name: 'max_connect_errors', CurrentValue: '100\u0000; DROP DATABASE x' }] }],
    ['ModifyAccountPrivileges ModifyAction', 'ModifyAccountPrivileges', { InstanceId: INST, Accounts: [{ User: u, Host: '%' }], ModifyAction: 'grant\u0000' }],
  ];
  for (const [what, action, params] of cases) {
    await refused(failures, `${what} (TC3 POST)`, () => cdb[action](params));
    await refused(failures, `${what} (HmacSHA256 GET)`, () => cdbGet[action](params));
  }
  const mget = d.mongodb({ signMethod: 'HmacSHA256', reqMethod: 'GET' });
  await refused(failures, 'CreateBackupDBInstance BackupRemark (TC3 POST)', () => mongo.CreateBackupDBInstance({ InstanceId: MINST, BackupMethod: 0, BackupRemark: 'a\u0000b' }));
  await refused(failures, 'CreateBackupDBInstance BackupRemark (HmacSHA256 GET)', () => mget.CreateBackupDBInstance({ InstanceId: MINST, BackupMethod: 0, BackupRemark: 'a\u0000b' }));
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.deepEqual(await db.hostsOf(u), []);
});

test('passwords with quotes, backticks, semicolons and backslashes are applied literally', async () => {
  const u = user('pwinj');
  const P1 = 'a\'b"c`d;e\\f -- #x';
  const P2 = "\\'; DROP USER 'asyncd_admin'@'%'; -- \\";
  const P3 = 'a&b=c+d%20e;f\'`"';
  const s1 = await waitFinal(cdb, (await cdb.CreateAccounts({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], Password: P1 })).AsyncRequestId);
  assert.equal(s1.Status, 'SUCCESS', JSON.stringify(s1));
  assert.equal(await db.canLogin(u, P1), true, 'logs in with the password exactly as sent');
  assert.equal(await db.canLogin(u, 'a\'b"c`d;e\\\\f -- #x'), false, 'not with an escaped variant');
  const s2 = await waitFinal(cdb, (await cdb.ModifyAccountPassword({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], NewPassword: P2 })).AsyncRequestId);
  assert.equal(s2.Status, 'SUCCESS', JSON.stringify(s2));
  assert.equal(await db.canLogin(u, P1), false);
  assert.equal(await db.canLogin(u, P2), true);
  assert.equal(await db.canLogin(db.user, db.password), true, 'the admin account is still there');
  // Through a v1 GET: form decoding keeps & = + % literally too.
  const s3 = await waitFinal(cdb, (await cdbGet.ModifyAccountPassword({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], NewPassword: P3 })).AsyncRequestId);
  assert.equal(s3.Status, 'SUCCESS', JSON.stringify(s3));
  assert.equal(await db.canLogin(u, P3), true);
  // The task never shows the password.
  const t = await d.getTask((await cdb.DescribeTasks({ InstanceId: INST, TaskTypes: [2], Limit: 1 })).Items[0].AsyncRequestId);
  assert.ok(!JSON.stringify(t.input).includes('a&b=c+d%20e'), 'the password is not kept in the task input');
});

test('ModifyInstanceParam values with SQL in them are refused by the catalogue before any task; the server is unchanged', async () => {
  const old = await db.variable('max_connect_errors');
  const totalBefore = await taskTotal(d);
  for (const v of [`1; DROP DATABASE ${victimDb}`, `1'; DROP DATABASE ${victimDb}; --`, `1\`; DROP DATABASE \`${victimDb}`,
    `1\\'; DROP DATABASE ${victimDb}; #`, '1 OR 1=1', '(SELECT 5)', '@@max_connections']) {
    for (const [how, c] of [['TC3 POST', cdb], ['HmacSHA256 GET', cdbGet]]) {
      const e = await expectCode(c.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'max_connect_errors', CurrentValue: v }] }),
        'InvalidParameterValue', `value ${JSON.stringify(v)} (${how})`);
      assert.match(e.message, /max_connect_errors takes an integer/, `the message names the parameter: ${e.message}`);
    }
  }
  await sleep(300 * SLOW); // a task wrongly created would have run by now
  assert.equal(await taskTotal(d), totalBefore, 'no task was created');
  assert.equal(await db.variable('max_connect_errors'), old);
  assert.ok(await victimExists(), `database ${victimDb} still exists`);
  // The same request with a plain value is accepted and applied (the catalogue copy in
  // flows-test is loaded: the refusals above were about the values).
  const want = String(Number(old) + 1);
  try {
    const s = await waitFinal(cdb, (await cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'max_connect_errors', CurrentValue: want }] })).AsyncRequestId);
    assert.equal(s.Status, 'SUCCESS', JSON.stringify(s));
    assert.equal(await db.variable('max_connect_errors'), want);
  } finally {
    await db.sql(`SET GLOBAL max_connect_errors = ${Number(old)}`);
  }
});

test('init_slave (a variable that runs SQL) is refused before any task, whatever its value; the server is unchanged', async () => {
  const v = `x'; DROP DATABASE ${victimDb}; -- \`y\` \\ "z" \\'`;
  const old = await db.variable('init_slave');
  const totalBefore = await taskTotal(d);
  for (const value of [v, 'SELECT 1', '0']) {
    for (const [how, c] of [['TC3 POST', cdb], ['HmacSHA256 GET', cdbGet]]) {
      const e = await expectCode(c.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'init_slave', CurrentValue: value }] }),
        'InvalidParameterValue', `init_slave = ${JSON.stringify(value)} (${how})`);
      assert.match(e.message, /init_slave is not one that can be modified/, e.message);
    }
  }
  // Beside a catalogued one, the whole request is refused: the good item is not applied either.
  const mce = await db.variable('max_connect_errors');
  const e = await expectCode(cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [
    { Name: 'max_connect_errors', CurrentValue: String(Number(mce) + 1) }, { Name: 'init_slave', CurrentValue: v }] }), 'InvalidParameterValue', 'with a good first item');
  assert.match(e.message, /init_slave/);
  await sleep(300 * SLOW);
  assert.equal(await taskTotal(d), totalBefore, 'no task was created');
  assert.equal(await db.variable('init_slave'), old, 'init_slave is unchanged');
  assert.equal(await db.variable('max_connect_errors'), mce);
  assert.ok(await victimExists());
});

test('the {N:val} placeholder sets a string with quotes, backticks, semicolons and backslashes literally (an operator\'s admin-API task)', async () => {
  // Tenants cannot send such a string to SET GLOBAL any more (the catalogue has no free-text
  // parameter); the executor's quoting of {N:val}, which the ModifyInstanceParam set step uses,
  // is still what keeps an operator's value from becoming SQL.
  const v = `x'; DROP DATABASE ${victimDb}; -- \`y\` \\ "z" \\'`;
  const old = (await db.sql('SELECT @@GLOBAL.init_slave'))[0]?.[0] ?? '';
  try {
    const id = await d.createTask({ product: 'cdb', instance_id: INST, type: 'ModifyInstanceParam', on_failure: 'fail',
      steps: [{ name: 'set init_slave', do: { mysql: { sql: 'SET GLOBAL {0:ident} = {1:val}', args: ['init_slave', v] } } }] });
    const s = await waitFinal(cdb, id);
    assert.equal(s.Status, 'SUCCESS', JSON.stringify(s));
    const rows = await db.sql('SELECT @@GLOBAL.init_slave');
    assert.equal(rows[0][0], v, 'SELECT @@GLOBAL.init_slave is the value exactly as sent');
    assert.ok(await victimExists());
  } finally {
    await db.sql(`SET GLOBAL init_slave = '${old.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
  }
});

test('flows-test/cdb holds unchanged copies of the shipped cdb templates and parameter catalogue', () => {
  const shipped = path.join(REPO_ROOT, 'flows', 'cdb');
  const copy = path.join(FLOWS, 'cdb');
  const list = (dir) => [...fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort(), 'params/catalog.json'];
  assert.deepEqual(list(copy), list(shipped), 'the same files');
  for (const f of list(shipped)) {
    assert.ok(fs.readFileSync(path.join(copy, f)).equals(fs.readFileSync(path.join(shipped, f))),
      `tests/it/flows-test/cdb/${f} is a copy of flows/cdb/${f} (see tests/it/flows-test/README.md)`);
  }
});

test('backup remarks with shell syntax reach the step as one literal argument; nothing else runs', async () => {
  const canary = path.join(work, 'CANARY');
  const remarks = [
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `x\ntouch ${canary}`,
    `\${IFS}; touch ${canary} #`,
    '${InstanceId} ${ASYNCD_TASK_ID}',
  ];
  for (const remark of remarks) {
    const r = await mongo.CreateBackupDBInstance({ InstanceId: MINST, BackupMethod: 0, BackupRemark: remark });
    const s = await waitFinal(mongo, r.AsyncRequestId, { pending: ['initial', 'running'] });
    assert.equal(s.Status, 'success', `${JSON.stringify(remark)}: ${JSON.stringify(s)}`);
    const got = fs.readFileSync(path.join(d.dataDir, 'backups', MINST, `${r.AsyncRequestId}.remark`), 'utf8');
    assert.equal(got, remark, 'the script got the remark as one literal argument');
    assert.equal(fs.existsSync(canary), false, `${JSON.stringify(remark)} ran nothing`);
    const b = await mongo.DescribeDBBackups({ InstanceId: MINST, Limit: 1 });
    assert.equal(b.BackupList[0].BackId, Number(r.AsyncRequestId));
    assert.equal(b.BackupList[0].BackupDesc, remark);
  }
});
