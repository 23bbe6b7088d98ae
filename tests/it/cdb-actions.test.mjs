// cdb account and parameter actions against a real MariaDB, through the official SDK:
// CreateAccounts / ModifyAccountPassword / ModifyAccountPrivileges / ModifyAccountHost /
// DeleteAccounts / ModifyInstanceParam -> DescribeAsyncRequestInfo SUCCESS -> the server shows it
// (log in with the mariadb client, SHOW GRANTS, SHOW VARIABLES); failures follow the templates'
// on_failure; every rejected request is refused before any task exists and leaves nothing behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, NO_LIMITS, REPO_ROOT, REGION, OTHER_REGION, CDB_ID_RE, expectCode } from './lib/asyncd.mjs';
import { useMariaDB, uniqueUser, waitFinal, taskTotal } from './lib/mariadb.mjs';

const INST = 'cdb-it1';
const PW = 'Passw0rd-it-1';
let d;
let db;
let cdb;
const users = new Set(); // user names this file made, dropped at the end
const dbs = new Set();

before(async () => {
  db = await useMariaDB();
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')] });
  cdb = d.cdb();
  await d.adminOk('POST', '/v1/instances',
    { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST, status: 'running', dsn: db.dsn }, 201);
});

after(async () => {
  if (db) {
    for (const u of users) {
      const hosts = await db.hostsOf(u);
      for (const h of hosts) await db.sql(`DROP USER IF EXISTS '${u}'@'${h}'`);
    }
    for (const name of dbs) await db.sql(`DROP DATABASE IF EXISTS \`${name}\``);
  }
  if (d) await d.stop();
  if (db) await db.stop();
});

function user(prefix) {
  const u = uniqueUser(prefix);
  users.add(u);
  return u;
}

/** Sends the request, checks the id format, waits for a final status; returns {id, s (answer), task}. */
async function runTask(promise) {
  const r = await promise;
  assert.match(r.AsyncRequestId, CDB_ID_RE, `a cdb task id: ${JSON.stringify(r)}`);
  const s = await waitFinal(cdb, r.AsyncRequestId);
  const task = await d.getTask(r.AsyncRequestId);
  return { id: r.AsyncRequestId, s, task };
}

async function expectSuccess(promise, info) {
  const t = await runTask(promise);
  assert.equal(t.s.Status, 'SUCCESS', `status: ${JSON.stringify(t.s)}; task: ${JSON.stringify(t.task.steps.map((x) => [x.state, x.message]))}`);
  if (info !== undefined) assert.equal(t.s.Info, info, 'Info is the last step\'s message');
  return t;
}

async function createAccounts(accounts, password = PW, extra = {}) {
  return expectSuccess(cdb.CreateAccounts({ InstanceId: INST, Accounts: accounts, Password: password, ...extra }));
}

test('CreateAccounts -> SUCCESS -> the accounts log in; DescribeAccounts sees them (AccountRegexp, Offset, Limit)', async () => {
  const prefix = uniqueUser('ca').replace(/_/g, '');
  const names = ['a', 'b', 'c'].map((x) => { const u = `${prefix}_${x}`; users.add(u); return u; });
  for (const u of names) assert.equal(await db.canLogin(u, PW), false, `${u} does not exist yet`);
  const t = await createAccounts(names.map((u) => ({ User: u, Host: '%' })), PW,
    { Description: 'integration test', MaxUserConnections: 7 });
  assert.equal(t.s.Info, `Created the account ${names[2]}@% successfully.`);
  assert.deepEqual(t.task.steps.map((s) => s.message), names.map((u) => `Created the account ${u}@% successfully.`));
  for (const u of names) assert.equal(await db.canLogin(u, PW), true, `${u} logs in with the password`);
  for (const u of names) assert.equal(await db.canLogin(u, `${PW}x`), false, `${u} does not log in with another password`);
  const rows = await db.sql(`SELECT User, Host, max_user_connections FROM mysql.user WHERE User LIKE '${prefix}\\_%' ORDER BY User`);
  assert.deepEqual(rows, names.map((u) => [u, '%', '7']), 'MaxUserConnections applied');

  const all = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: `^${prefix}_` });
  assert.equal(all.TotalCount, 3, JSON.stringify(all));
  assert.deepEqual(all.Items.map((i) => [i.User, i.Host, i.MaxUserConnections]), names.map((u) => [u, '%', 7]));
  const p1 = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: `^${prefix}_`, Limit: 2 });
  assert.equal(p1.TotalCount, 3);
  assert.deepEqual(p1.Items.map((i) => i.User), names.slice(0, 2));
  const p2 = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: `^${prefix}_`, Limit: 2, Offset: 2 });
  assert.equal(p2.TotalCount, 3);
  assert.deepEqual(p2.Items.map((i) => i.User), names.slice(2));
  const p3 = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: `^${prefix}_`, Offset: 3 });
  assert.equal(p3.TotalCount, 3);
  assert.deepEqual(p3.Items, []);
  const one = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: `^${names[1]}$` });
  assert.deepEqual(one.Items.map((i) => i.User), [names[1]]);
  const everyone = await cdb.DescribeAccounts({ InstanceId: INST, Limit: 100 });
  assert.ok(!everyone.Items.some((i) => ['root', 'asyncd_admin', 'mariadb.sys'].includes(i.User)),
    `system and DSN accounts are hidden: ${JSON.stringify(everyone.Items.map((i) => i.User))}`);
  await expectCode(cdb.DescribeAccounts({ InstanceId: INST, Limit: 101 }), 'InvalidParameterValue', 'DescribeAccounts Limit 101');
  await expectCode(cdb.DescribeAccounts({ InstanceId: 'cdb-nosuch' }), 'InvalidParameter.InstanceNotFound', 'DescribeAccounts unknown instance');
  await expectCode(cdb.DescribeAccounts({}), 'MissingParameter', 'DescribeAccounts without InstanceId');
});

test('GET + HmacSHA256: flattened Accounts.N.User / DatabasePrivileges.N.Privileges.M decode', async () => {
  const get = d.cdb({ signMethod: 'HmacSHA256', reqMethod: 'GET' });
  const u1 = user('get');
  const u2 = user('get');
  const r = await get.CreateAccounts({ InstanceId: INST, Accounts: [{ User: u1, Host: '%' }, { User: u2, Host: '127.0.0.1' }],
    Password: PW, MaxUserConnections: 3 });
  const s = await waitFinal(cdb, r.AsyncRequestId);
  assert.equal(s.Status, 'SUCCESS', JSON.stringify(s));
  assert.deepEqual(await db.hostsOf(u1), ['%']);
  assert.deepEqual(await db.hostsOf(u2), ['127.0.0.1']);
  assert.equal(await db.canLogin(u2, PW), true);
  const name = `itg_${Math.random().toString(36).slice(2, 8)}`;
  dbs.add(name);
  const r2 = await get.ModifyAccountPrivileges({ InstanceId: INST, Accounts: [{ User: u1, Host: '%' }],
    DatabasePrivileges: [{ Database: name, Privileges: ['SELECT', 'INSERT'] }] });
  const s2 = await waitFinal(cdb, r2.AsyncRequestId);
  assert.equal(s2.Status, 'SUCCESS', JSON.stringify(s2));
  const grants = await db.grants(u1, '%');
  assert.ok(grants.includes(`GRANT SELECT, INSERT ON \`${name}\`.* TO \`${u1}\`@\`%\``), grants.join('\n'));
  await expectCode(get.CreateAccounts({ InstanceId: INST, Accounts: [{ User: user('get'), Host: '%', Foo: 'x' }], Password: PW }),
    'UnknownParameter', 'GET Accounts.0.Foo');
});

test('ModifyAccountPassword -> the old password fails, the new one works', async () => {
  const u = user('pw');
  await createAccounts([{ User: u, Host: '%' }]);
  const NEW = 'N3w-password-it';
  await expectSuccess(cdb.ModifyAccountPassword({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], NewPassword: NEW }),
    `Changed the password of ${u}@% successfully.`);
  assert.equal(await db.canLogin(u, PW), false, 'the old password fails');
  assert.equal(await db.canLogin(u, NEW), true, 'the new password works');
});

test('ModifyAccountPrivileges -> SHOW GRANTS shows it (replace, grant, revoke)', async () => {
  const u = user('priv');
  const dbName = `itp_${Math.random().toString(36).slice(2, 8)}`;
  dbs.add(dbName);
  await db.sql(`CREATE DATABASE \`${dbName}\`; CREATE TABLE \`${dbName}\`.t1 (id INT)`);
  await createAccounts([{ User: u, Host: '%' }]);
  const acc = [{ User: u, Host: '%' }];
  const to = `\`${u}\`@\`%\``;
  await expectSuccess(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc,
    GlobalPrivileges: ['SHOW DATABASES', 'PROCESS'],
    DatabasePrivileges: [{ Database: dbName, Privileges: ['INSERT', 'UPDATE'] }],
    TablePrivileges: [{ Database: dbName, Table: 't1', Privileges: ['DELETE'] }] }));
  let g = await db.grants(u, '%');
  assert.ok(g.some((l) => l.startsWith(`GRANT PROCESS, SHOW DATABASES ON *.* TO ${to}`)), g.join('\n'));
  assert.ok(g.includes(`GRANT INSERT, UPDATE ON \`${dbName}\`.* TO ${to}`), g.join('\n'));
  assert.ok(g.includes(`GRANT DELETE ON \`${dbName}\`.\`t1\` TO ${to}`), g.join('\n'));
  // The account can use what it was given.
  const ins = await db.client(`INSERT INTO \`${dbName}\`.t1 VALUES (1)`, { user: u, password: PW });
  assert.ok(ins.ok, ins.stderr);

  await expectSuccess(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc, ModifyAction: 'revoke',
    GlobalPrivileges: ['PROCESS'] }), `Revoked global privileges of ${u}@% successfully.`);
  g = await db.grants(u, '%');
  assert.ok(g.some((l) => l.startsWith(`GRANT SHOW DATABASES ON *.* TO ${to}`)), g.join('\n'));
  assert.ok(g.includes(`GRANT INSERT, UPDATE ON \`${dbName}\`.* TO ${to}`), 'revoke leaves the rest');

  await expectSuccess(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc, ModifyAction: 'grant',
    DatabasePrivileges: [{ Database: dbName, Privileges: ['CREATE VIEW'] }] }));
  g = await db.grants(u, '%');
  assert.ok(g.includes(`GRANT INSERT, UPDATE, CREATE VIEW ON \`${dbName}\`.* TO ${to}`), g.join('\n'));

  // No ModifyAction: the given privileges replace all others.
  await expectSuccess(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc,
    DatabasePrivileges: [{ Database: dbName, Privileges: ['SELECT'] }] }));
  g = await db.grants(u, '%');
  assert.ok(g.some((l) => l.startsWith(`GRANT USAGE ON *.* TO ${to}`)), g.join('\n'));
  assert.ok(g.includes(`GRANT SELECT ON \`${dbName}\`.* TO ${to}`), g.join('\n'));
  assert.equal(g.length, 2, `only those two grants remain: ${g.join('\n')}`);
});

test('ModifyAccountHost -> the account exists with the new host', async () => {
  const u = user('host');
  await createAccounts([{ User: u, Host: '10.9.8.%' }]);
  assert.equal(await db.canLogin(u, PW), false, 'cannot log in from 127.0.0.1 with host 10.9.8.%');
  await expectSuccess(cdb.ModifyAccountHost({ InstanceId: INST, User: u, Host: '10.9.8.%', NewHost: '127.0.0.1' }),
    `Changed the host of ${u}@10.9.8.% to 127.0.0.1 successfully.`);
  assert.deepEqual(await db.hostsOf(u), ['127.0.0.1']);
  assert.equal(await db.canLogin(u, PW), true, 'the password moved with the account');
  const a = await cdb.DescribeAccounts({ InstanceId: INST, AccountRegexp: `^${u}$` });
  assert.deepEqual(a.Items.map((i) => [i.User, i.Host]), [[u, '127.0.0.1']]);
});

test('DeleteAccounts -> the login fails', async () => {
  const u = user('del');
  await createAccounts([{ User: u, Host: '%' }, { User: u, Host: 'localhost' }]);
  assert.equal(await db.canLogin(u, PW), true);
  await expectSuccess(cdb.DeleteAccounts({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }, { User: u, Host: 'localhost' }] }),
    `Deleted the account ${u}@localhost successfully.`);
  assert.equal(await db.canLogin(u, PW), false, 'the deleted account cannot log in');
  assert.deepEqual(await db.hostsOf(u), []);
  // Deleting it again fails (template on_failure "fail").
  const t = await runTask(cdb.DeleteAccounts({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }] }));
  assert.equal(t.s.Status, 'FAILED', JSON.stringify(t.s));
  assert.equal(t.task.state, 'failed');
  assert.match(t.s.Info, new RegExp(u), 'Info names the account');
});

test('ModifyInstanceParam -> SHOW VARIABLES shows the new value', async () => {
  const old = await db.variable('max_connect_errors');
  const want = String(Number(old) + 123);
  try {
    const t = await expectSuccess(cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'max_connect_errors', CurrentValue: want }] }),
      `Set the parameter max_connect_errors to ${want} successfully.`);
    assert.deepEqual(t.task.steps.map((s) => [s.name, s.state]),
      [['capture max_connect_errors', 'done'], [`set max_connect_errors = ${want}`, 'done']], 'a capture step, then the set step');
    assert.deepEqual(t.task.steps[0].output, { value: old }, 'the capture step recorded the value before the task');
    assert.equal(await db.variable('max_connect_errors'), want);
  } finally {
    await db.sql(`SET GLOBAL max_connect_errors = ${Number(old)}`);
  }
});

test('ModifyInstanceParam with a value or a name the catalogue refuses -> InvalidParameterValue naming the parameter, no task, the server unchanged', async () => {
  const old = await db.variable('max_connect_errors');
  const oldRetry = await db.variable('net_retry_count');
  const totalBefore = await taskTotal(d);
  // A good first item does not carry a bad second one: the whole request is refused.
  const e1 = await expectCode(cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [
    { Name: 'max_connect_errors', CurrentValue: String(Number(old) + 7) },
    { Name: 'net_retry_count', CurrentValue: 'not-a-number' }] }), 'InvalidParameterValue', 'net_retry_count = not-a-number');
  assert.match(e1.message, /net_retry_count/, `the message names the parameter: ${e1.message}`);
  assert.doesNotMatch(e1.message, /max_connect_errors/, `only the bad item is blamed: ${e1.message}`);
  const e2 = await expectCode(cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'no_such_variable_it', CurrentValue: '1' }] }),
    'InvalidParameterValue', 'no_such_variable_it');
  assert.match(e2.message, /no_such_variable_it/, `the message names the variable: ${e2.message}`);
  await new Promise((r) => setTimeout(r, 300)); // a task wrongly created would have run by now
  assert.equal(await taskTotal(d), totalBefore, 'no task was created');
  assert.equal(await db.variable('max_connect_errors'), old, 'the good first item was not applied');
  assert.equal(await db.variable('net_retry_count'), oldRetry);
});

test('a value the catalogue allows but the server refuses -> FAILED (undone): the capture steps set back the old values', async () => {
  // time_zone's catalogue pattern allows +14:59; MariaDB (-12:59..+13:00) and MySQL (-13:59..+14:00)
  // both refuse it (1298), so the last SET GLOBAL fails after the first one took effect.
  const old = await db.variable('max_connect_errors');
  const oldTz = await db.variable('time_zone');
  const want = String(Number(old) + 7);
  try {
    const t = await runTask(cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [
      { Name: 'max_connect_errors', CurrentValue: want }, { Name: 'time_zone', CurrentValue: '+14:59' }] }));
    const steps = t.task.steps.map((s) => [s.name, s.state]);
    assert.equal(t.s.Status, 'FAILED', `${JSON.stringify(t.s)} ${JSON.stringify(steps)}`);
    assert.equal(t.task.state, 'undoed', 'template on_failure "undo": the done steps were undone');
    assert.deepEqual(steps, [['capture max_connect_errors', 'undone'], ['capture time_zone', 'undone'],
      [`set max_connect_errors = ${want}`, 'done'], ['set time_zone = +14:59', 'failed']],
    'capture steps then set steps; the captures are undone, the set steps have no undo of their own');
    assert.match(String(t.s.Info), /set time_zone = \+14:59 failed: MySQL error 1298/, `Info says what failed: ${t.s.Info}`);
    assert.equal(await db.variable('max_connect_errors'), old, 'the first parameter is back to its old value');
    assert.equal(await db.variable('time_zone'), oldTz);
  } finally {
    await db.sql(`SET GLOBAL max_connect_errors = ${Number(old)}`);
  }
});

test('undo of a done SET GLOBAL when a later one fails at MySQL (admin-API task, the template\'s capture/set steps)', async () => {
  // The operator's own task (no "parameter": no catalogue), so a value MySQL refuses (1232)
  // reaches the server and fails the last step after the first SET took effect.
  const old = await db.variable('max_connect_errors');
  const oldRetry = await db.variable('net_retry_count');
  const want = String(Number(old) + 7);
  const capture = (name) => ({ name: `capture ${name}`,
    do: { mysql: { capture: 'SELECT @@GLOBAL.{0:ident}', args: [name] } },
    undo: { mysql: { sql: 'SET GLOBAL {0:ident} = {captured:val}', args: [name] } } });
  const set = (name, value) => ({ name: `set ${name}`, do: { mysql: { sql: 'SET GLOBAL {0:ident} = {1:val}', args: [name, value] } } });
  try {
    const id = await d.createTask({ product: 'cdb', instance_id: INST, type: 'ModifyInstanceParam', on_failure: 'undo',
      steps: [capture('max_connect_errors'), capture('net_retry_count'), set('max_connect_errors', want), set('net_retry_count', 'not-a-number')] });
    const s = await waitFinal(cdb, id);
    const task = await d.getTask(id);
    assert.equal(s.Status, 'FAILED', `${JSON.stringify(s)} ${JSON.stringify(task.steps.map((x) => [x.name, x.state, x.message]))}`);
    assert.equal(task.state, 'undoed', 'on_failure "undo": the done steps were undone');
    assert.deepEqual(task.steps.map((x) => x.state), ['undone', 'undone', 'done', 'failed']);
    assert.match(String(s.Info), /set net_retry_count failed: MySQL error 1232 .*net_retry_count/, `Info names the MySQL error and the variable: ${s.Info}`);
    assert.equal(await db.variable('max_connect_errors'), old, 'the first parameter is back to its old value');
    assert.equal(await db.variable('net_retry_count'), oldRetry);
  } finally {
    await db.sql(`SET GLOBAL max_connect_errors = ${Number(old)}`);
  }
});

test('CreateAccounts of an existing user -> FAILED (on_failure undo), Info names the user, the existing account is untouched', async () => {
  const existing = user('dup');
  const fresh = user('dupnew');
  await createAccounts([{ User: existing, Host: '%' }]);
  const t = await runTask(cdb.CreateAccounts({ InstanceId: INST, Password: 'Other-passw0rd',
    Accounts: [{ User: fresh, Host: '%' }, { User: existing, Host: '%' }] }));
  assert.equal(t.s.Status, 'FAILED', JSON.stringify(t.s));
  assert.equal(t.task.state, 'undoed', 'CreateAccounts.json says on_failure "undo"');
  assert.match(t.s.Info, new RegExp(`${existing}`), `Info names the user: ${t.s.Info}`);
  assert.deepEqual(t.task.steps.map((s) => s.state), ['undone', 'failed']);
  assert.deepEqual(await db.hostsOf(fresh), [], 'the account created before the failure was dropped again');
  assert.equal(await db.canLogin(existing, PW), true, 'the existing account keeps its password');
  assert.equal(await db.canLogin(existing, 'Other-passw0rd'), false);
});

test('rejections: instance not found / isolated, missing, wrong type, bad value, unknown parameters; nothing left behind', async () => {
  const other = await d.createAccount();
  const foreign = await d.createInstance({ product: 'cdb', uin: other.Uin, dsn: db.dsn });
  const shanghai = await d.createInstance({ product: 'cdb', region: OTHER_REGION, dsn: db.dsn });
  const isolated = await d.createInstance({ product: 'cdb', dsn: db.dsn });
  await d.setInstanceStatus(isolated, 'isolated');
  const mongoInst = await d.createInstance({ product: 'mongodb' });
  const existing = user('rej');
  await createAccounts([{ User: existing, Host: '%' }]);
  const fresh = user('rejnew');
  const acc = [{ User: fresh, Host: '%' }];
  const ex = [{ User: existing, Host: '%' }];
  const base = {
    CreateAccounts: { InstanceId: INST, Accounts: acc, Password: PW },
    DeleteAccounts: { InstanceId: INST, Accounts: ex },
    ModifyAccountHost: { InstanceId: INST, User: existing, Host: '%', NewHost: '10.1.1.1' },
    ModifyAccountPassword: { InstanceId: INST, Accounts: ex, NewPassword: 'Changed-passw0rd' },
    ModifyAccountPrivileges: { InstanceId: INST, Accounts: ex, GlobalPrivileges: ['PROCESS'] },
    ModifyInstanceParam: { InstanceIds: [INST], ParamList: [{ Name: 'max_connect_errors', CurrentValue: '321' }] },
  };
  const instOf = (action, id) => (action === 'ModifyInstanceParam' ? { InstanceIds: [id] } : { InstanceId: id });
  const without = (o, k) => { const c = { ...o }; delete c[k]; return c; };
  const cases = [];
  for (const [action, params] of Object.entries(base)) {
    for (const [id, code, what] of [
      ['cdb-nosuch', 'InvalidParameter.InstanceNotFound', 'unknown instance'],
      [foreign, 'InvalidParameter.InstanceNotFound', 'another account\'s instance'],
      [shanghai, 'InvalidParameter.InstanceNotFound', 'an instance in another region'],
      [mongoInst, 'InvalidParameter.InstanceNotFound', 'a mongodb instance'],
      [isolated, 'OperationDenied.InstanceStatusError', 'an isolated instance'],
    ]) cases.push([action, { ...params, ...instOf(action, id) }, code, what]);
    for (const k of Object.keys(params)) {
      if (k !== 'GlobalPrivileges') cases.push([action, without(params, k), 'MissingParameter', `without ${k}`]);
    }
    cases.push([action, { ...params, Foo: 1 }, 'UnknownParameter', 'unknown top-level parameter']);
    cases.push([action, { ...params, instanceId: INST }, 'UnknownParameter', 'a parameter in the wrong case']);
    if (action === 'ModifyInstanceParam') {
      cases.push([action, { ...params, InstanceIds: INST }, 'InvalidParameter', 'InstanceIds as a string']);
      cases.push([action, { ...params, InstanceIds: [INST, INST] }, 'InvalidParameterValue', 'two instances']);
      cases.push([action, { ...params, InstanceIds: [] }, 'InvalidParameterValue', 'no instance']);
      cases.push([action, { ...params, ParamList: [{ Name: 'max_connect_errors', CurrentValue: 321 }] }, 'InvalidParameter', 'CurrentValue as a number']);
      cases.push([action, { ...params, ParamList: [{ Name: 'max_connect_errors' }] }, 'MissingParameter', 'ParamList.0 without CurrentValue']);
      cases.push([action, { ...params, ParamList: [{ Name: 'max_connect_errors', CurrentValue: '1', Foo: 'x' }] }, 'UnknownParameter', 'ParamList.0.Foo']);
      cases.push([action, { ...params, ParamList: [{ Name: 'Max-Connect', CurrentValue: '1' }] }, 'InvalidParameterValue', 'Name off its pattern']);
      cases.push([action, { ...params, ParamList: [] }, 'InvalidParameterValue', 'empty ParamList']);
      cases.push([action, { ...params, WaitSwitch: 2 }, 'InvalidParameterValue', 'WaitSwitch 2']);
      cases.push([action, { ...params, NotSyncRo: 'yes' }, 'InvalidParameter', 'NotSyncRo as a string']);
      cases.push([action, { ...params, ParamList: [{ Name: 'max_connect_errors', CurrentValue: '1' }, { Name: 'x', CurrentValue: 'y'.repeat(1025) }] },
        'InvalidParameterValue', 'a second item too long']);
      continue;
    }
    cases.push([action, { ...params, InstanceId: 42 }, 'InvalidParameter', 'InstanceId as a number']);
    cases.push([action, { ...params, InstanceId: 'cdb it1' }, 'InvalidParameterValue', 'InstanceId off its pattern']);
    if (params.Accounts) {
      const a0 = params.Accounts[0];
      cases.push([action, { ...params, Accounts: a0 }, 'InvalidParameter', 'Accounts as an object']);
      cases.push([action, { ...params, Accounts: [] }, 'InvalidParameterValue', 'no accounts']);
      cases.push([action, { ...params, Accounts: [{ ...a0, Foo: 'x' }] }, 'UnknownParameter', 'Accounts.0.Foo']);
      cases.push([action, { ...params, Accounts: [{ User: a0.User }] }, 'MissingParameter', 'Accounts.0 without Host']);
      cases.push([action, { ...params, Accounts: [{ ...a0, User: 7 }] }, 'InvalidParameter', 'Accounts.0.User as a number']);
      cases.push([action, { ...params, Accounts: [a0, { User: 'x'.repeat(33), Host: '%' }] }, 'InvalidParameterValue', 'a valid first and a too-long second user']);
      cases.push([action, { ...params, Accounts: [a0, { User: 'ok_user', Host: 'bad host' }] }, 'InvalidParameterValue', 'a valid first account and a bad second host']);
      cases.push([action, { ...params, Accounts: Array.from({ length: 51 }, (_, i) => ({ User: `u${i}`, Host: '%' })) }, 'InvalidParameterValue', '51 accounts']);
    }
    if (action === 'CreateAccounts') {
      cases.push([action, { ...params, Password: 'short' }, 'InvalidParameterValue', 'a short password']);
      cases.push([action, { ...params, Password: 'p'.repeat(65) }, 'InvalidParameterValue', 'a long password']);
      cases.push([action, { ...params, Password: 'Passwörd-1234' }, 'InvalidParameterValue', 'a non-ASCII password']);
      cases.push([action, { ...params, MaxUserConnections: -1 }, 'InvalidParameterValue', 'MaxUserConnections -1']);
      cases.push([action, { ...params, MaxUserConnections: 10241 }, 'InvalidParameterValue', 'MaxUserConnections 10241']);
      cases.push([action, { ...params, MaxUserConnections: '5' }, 'InvalidParameter', 'MaxUserConnections as a string']);
      cases.push([action, { ...params, Description: 'd'.repeat(256) }, 'InvalidParameterValue', 'Description too long']);
    }
    if (action === 'ModifyAccountPassword') {
      cases.push([action, { ...params, NewPassword: 'short' }, 'InvalidParameterValue', 'a short password']);
      cases.push([action, { ...params, SkipValidatePassword: 'true' }, 'InvalidParameter', 'SkipValidatePassword as a string']);
    }
    if (action === 'ModifyAccountHost') {
      cases.push([action, { ...params, NewHost: 'a b' }, 'InvalidParameterValue', 'NewHost off its pattern']);
      cases.push([action, { ...params, User: ['x'] }, 'InvalidParameter', 'User as an array']);
    }
    if (action === 'ModifyAccountPrivileges') {
      cases.push([action, { ...params, GlobalPrivileges: ['PROCESS', 'drop'] }, 'InvalidParameterValue', 'a lower-case privilege']);
      cases.push([action, { ...params, GlobalPrivileges: 'SELECT' }, 'InvalidParameter', 'GlobalPrivileges as a string']);
      cases.push([action, { ...params, ModifyAction: 'replace' }, 'InvalidParameterValue', 'ModifyAction not in its enum']);
      cases.push([action, { ...params, DatabasePrivileges: [{ Database: 'd1' }] }, 'MissingParameter', 'DatabasePrivileges.0 without Privileges']);
      cases.push([action, { ...params, DatabasePrivileges: [{ Database: 'd1', Privileges: ['SELECT'], Table: 't' }] }, 'UnknownParameter', 'DatabasePrivileges.0.Table']);
      cases.push([action, { ...params, DatabasePrivileges: [{ Database: 'd1', Privileges: [] }] }, 'InvalidParameterValue', 'DatabasePrivileges.0.Privileges empty']);
      cases.push([action, { ...params, TablePrivileges: [{ Database: 'd1', Table: 't.1', Privileges: ['SELECT'] }] }, 'InvalidParameterValue', 'a table name off its pattern']);
    }
  }
  const totalBefore = await taskTotal(d);
  const usersBefore = await db.userTable();
  const failures = [];
  for (const [action, params, code, what] of cases) {
    const label = `${action} ${what} ${JSON.stringify(params).slice(0, 200)}`;
    const n0 = await taskTotal(d);
    try {
      await expectCode(cdb[action](params), code, label);
    } catch (err) {
      failures.push(err.message.split('\n')[0]);
    }
    if (await taskTotal(d) !== n0) failures.push(`${label}: a task was created`);
  }
  await new Promise((r) => setTimeout(r, 300)); // a task wrongly created would have run by now
  assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases answered otherwise:\n${failures.join('\n')}`);
  assert.equal(await taskTotal(d), totalBefore, 'no rejected request created a task');
  assert.deepEqual(await db.userTable(), usersBefore, 'mysql.user is unchanged');
  // The same requests with nothing wrong are accepted (so the rejections above were about the fault).
  const ok = await expectSuccess(cdb.ModifyAccountPassword(base.ModifyAccountPassword));
  assert.equal(ok.task.instance_id, INST);
  assert.equal(await db.canLogin(existing, 'Changed-passw0rd'), true);
});

test('ModifyAccountPrivileges with a privilege name that fits the pattern but does not exist -> InvalidParameterValue, no task', async () => {
  const u = user('badpriv');
  const totalBefore = await taskTotal(d);
  for (const privs of [['PROCESS', 'NOT A PRIVILEGE'], ['SELECTX']]) {
    await expectCode(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }], GlobalPrivileges: privs }),
      'InvalidParameterValue', `GlobalPrivileges ${JSON.stringify(privs)} (the caller's fault, not InternalError)`);
  }
  await expectCode(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: [{ User: u, Host: '%' }],
    DatabasePrivileges: [{ Database: 'd1', Privileges: ['SELECT', 'FLY'] }] }), 'InvalidParameterValue', 'DatabasePrivileges.0.Privileges ["SELECT","FLY"]');
  assert.equal(await taskTotal(d), totalBefore);
});
