// Tenants never reach the operator's powers (issue 10, items 1 and 2), through the official SDK on
// a real MariaDB registered with its admin DSN: reserved accounts (root, mariadb.sys, mysql.*, the
// DSN's user, the operator's list) and accounts the operator gave what a tenant may not hold
// (SUPER, privileges on a system schema, WITH GRANT OPTION, a role: looked up on the server) are
// refused by every account action before any task exists (OperationDenied), and again by the
// executor just before the statement (an account that gained SUPER after the request); an
// instance that cannot be reached answers CdbError.TaskError and makes no task; privileges outside
// the SDK-documented lists per scope and the system schemas are refused (InvalidParameterValue).
// Each refusal leaves the server as it was (mysql.user with its password hashes, SHOW GRANTS), and
// a legitimate account and documented privileges still work end to end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, NO_LIMITS, REPO_ROOT, REGION, expectCode } from './lib/asyncd.mjs';
import { useMariaDB, uniqueUser, waitFinal, taskTotal, freePort } from './lib/mariadb.mjs';
import { shStep, waitTask } from './lib/engine.mjs';

const INST = 'cdb-guard1';
const PW = 'Passw0rd-guard-1';
let d;
let db;
let cdb;
const users = new Set();
let tenantDb;
let opsUser;      // listed by name in reserved_accounts
let opsHostUser;  // listed as user@host
let superUser;    // holds SUPER: the operator's, found on the server before the task
let schemaUser;   // holds SELECT on mysql.*: likewise
let grantUser;    // holds SELECT on a tenant database WITH GRANT OPTION: likewise
let roleUser;     // holds a MariaDB role: likewise
let role;
let tenant;       // a legitimate tenant account

function user(prefix) {
  const u = uniqueUser(prefix);
  users.add(u);
  return u;
}

/** Everything a refusal must leave alone: every account with its password hash, and the grants
 * of the accounts this file watches. */
async function fingerprint() {
  const rows = await db.sql("SELECT CONCAT(User, '@', Host, ' ', authentication_string, ' ', plugin) FROM mysql.user ORDER BY User, Host");
  const grants = {};
  for (const [u, h] of [[tenant, '%'], [superUser, '%'], [schemaUser, '%'], [grantUser, '%'], [roleUser, '%'], [opsUser, '%'], ['mariadb.sys', 'localhost'], ['root', 'localhost']]) {
    grants[`${u}@${h}`] = await db.grants(u, h);
  }
  return { users: rows.map((r) => r[0]), grants };
}

before(async () => {
  db = await useMariaDB();
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')] });
  cdb = d.cdb();
  opsUser = user('ops');
  opsHostUser = user('opsh');
  superUser = user('sup');
  schemaUser = user('sch');
  grantUser = user('gro');
  roleUser = user('rol');
  role = `itr_role_${Math.random().toString(36).slice(2, 8)}`;
  tenantDb = `itr_${Math.random().toString(36).slice(2, 8)}`;
  // As the operator, with the mariadb client: accounts no tenant could have made.
  await db.sql(`CREATE USER '${opsUser}'@'%' IDENTIFIED BY '${PW}'; CREATE USER '${opsHostUser}'@'10.9.8.7' IDENTIFIED BY '${PW}';`
    + ` CREATE USER '${superUser}'@'%' IDENTIFIED BY '${PW}'; GRANT SUPER ON *.* TO '${superUser}'@'%';`
    + ` CREATE USER '${schemaUser}'@'%' IDENTIFIED BY '${PW}'; GRANT SELECT ON mysql.* TO '${schemaUser}'@'%';`
    + ` CREATE DATABASE \`${tenantDb}\`; CREATE TABLE \`${tenantDb}\`.t1 (c1 INT, c2 INT);`
    + ` CREATE USER '${grantUser}'@'%' IDENTIFIED BY '${PW}'; GRANT SELECT ON \`${tenantDb}\`.* TO '${grantUser}'@'%' WITH GRANT OPTION;`
    + ` CREATE ROLE '${role}'; CREATE USER '${roleUser}'@'%' IDENTIFIED BY '${PW}'; GRANT '${role}' TO '${roleUser}'@'%'`);
  await d.adminOk('POST', '/v1/instances', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST,
    status: 'running', dsn: db.dsn, reserved_accounts: [opsUser, `${opsHostUser}@10.9.8.7`] }, 201);
  tenant = user('tn');
  const r = await cdb.CreateAccounts({ InstanceId: INST, Accounts: [{ User: tenant, Host: '%' }], Password: PW });
  assert.equal((await waitFinal(cdb, r.AsyncRequestId)).Status, 'SUCCESS');
});

after(async () => {
  if (db) {
    for (const u of users) for (const h of await db.hostsOf(u)) await db.sql(`DROP USER IF EXISTS '${u}'@'${h}'`);
    if (tenantDb) await db.sql(`DROP DATABASE IF EXISTS \`${tenantDb}\``);
    if (role) await db.sql(`DROP ROLE IF EXISTS '${role}'`);
  }
  if (d) await d.stop();
  if (db) await db.stop();
});

/** The request of each account action on user@host. */
function accountActions(u, h) {
  const acc = [{ User: u, Host: h }];
  return {
    CreateAccounts: { InstanceId: INST, Accounts: acc, Password: PW },
    DeleteAccounts: { InstanceId: INST, Accounts: acc },
    ModifyAccountPassword: { InstanceId: INST, Accounts: acc, NewPassword: 'Tenant-owns-1t' },
    ModifyAccountHost: { InstanceId: INST, User: u, Host: h, NewHost: '10.1.2.3' },
    ModifyAccountPrivileges: { InstanceId: INST, Accounts: acc, GlobalPrivileges: ['PROCESS'] },
  };
}

test('GET /v1/instances shows reserved_accounts; a malformed list is refused with 400', async () => {
  const list = await d.adminOk('GET', '/v1/instances?product=cdb');
  const inst = list.instances.find((i) => i.instance_id === INST);
  assert.deepEqual(inst.reserved_accounts, [opsUser, `${opsHostUser}@10.9.8.7`]);
  for (const bad of ['ops', [42], [''], ['@h'], Array(101).fill('x')]) {
    const r = await d.admin('PATCH', `/v1/instances/${INST}`, { reserved_accounts: bad });
    assert.equal(r.status, 400, `reserved_accounts ${JSON.stringify(bad).slice(0, 40)} -> ${r.status} ${r.text}`);
  }
});

test('reserved accounts: every account action answers OperationDenied before any task exists; nothing changes', async () => {
  const reserved = [
    ['root', 'localhost', /superuser/], ['root', '%', /superuser/], ['mariadb.sys', 'localhost', /system account/],
    ['mysql.sys', 'localhost', /system account/], ['mysql.session', 'localhost', /system account/],
    ['mysql.infoschema', 'localhost', /system account/], [db.user, '%', /manages the instance/],
    [db.user, 'localhost', /manages the instance/], [opsUser, '%', /operator/], [opsHostUser, '10.9.8.7', /operator/],
    [opsHostUser, '10.9.8.7'.toUpperCase(), /operator/],
  ];
  const before = await fingerprint();
  const tasks = await taskTotal(d);
  for (const [u, h, why] of reserved) {
    for (const [action, params] of Object.entries(accountActions(u, h))) {
      const e = await expectCode(cdb[action](params), 'OperationDenied', `${action} ${u}@${h}`);
      assert.match(e.message, new RegExp(`${u.replace(/\./g, '\\.')}@`), `${action}: the message names the account: ${e.message}`);
      assert.match(e.message, why, `${action} ${u}@${h}: says why: ${e.message}`);
    }
  }
  // ModifyAccountHost onto a reserved account is refused too.
  await expectCode(cdb.ModifyAccountHost({ InstanceId: INST, User: tenant, Host: '%', NewHost: 'localhost' }).then(async (r) => {
    const s = await waitFinal(cdb, r.AsyncRequestId);
    assert.equal(s.Status, 'SUCCESS');
    await cdb.ModifyAccountHost({ InstanceId: INST, User: tenant, Host: 'localhost', NewHost: '%' }).then((x) => waitFinal(cdb, x.AsyncRequestId));
    return cdb.ModifyAccountHost({ InstanceId: INST, User: opsHostUser, Host: '10.9.8.7', NewHost: '%' });
  }), 'OperationDenied', 'moving an operator-listed account');
  assert.equal(await taskTotal(d), tasks + 2, 'no task for any refusal (two for the tenant\'s own moves)');
  assert.deepEqual(await fingerprint(), before, 'mysql.user and the grants are unchanged');
  assert.equal(await db.canLogin(db.user, db.password), true, 'the admin DSN still logs in');
  assert.equal(await db.canLogin(opsUser, PW), true, 'the operator-listed account still logs in');
});

test('a PATCHed reserved_accounts list applies to the next request; names match case-sensitively', async () => {
  const later = user('late');
  await db.sql(`CREATE USER '${later}'@'%' IDENTIFIED BY '${PW}'`);
  await d.adminOk('PATCH', `/v1/instances/${INST}`, { reserved_accounts: [opsUser, `${opsHostUser}@10.9.8.7`, later] });
  await expectCode(cdb.DeleteAccounts({ InstanceId: INST, Accounts: [{ User: later, Host: '%' }] }), 'OperationDenied', 'newly reserved');
  assert.deepEqual(await db.hostsOf(later), ['%']);
  // `Root` is not `root`: MySQL compares user names exactly.
  const Root = 'Root';
  users.add(Root);
  const r = await cdb.CreateAccounts({ InstanceId: INST, Accounts: [{ User: Root, Host: '%' }], Password: PW });
  assert.equal((await waitFinal(cdb, r.AsyncRequestId)).Status, 'SUCCESS');
});

test('an account holding SUPER, privileges on the mysql schema, WITH GRANT OPTION or a role: every account action answers OperationDenied before any task exists; nothing changes', async () => {
  const before = await fingerprint();
  const tasks = await taskTotal(d);
  const cases = [[superUser, /holds SUPER, which tenants cannot have/], [schemaUser, /holds SELECT on mysql, which tenants cannot have/],
    [grantUser, new RegExp(`holds SELECT on ${tenantDb} WITH GRANT OPTION`)], [roleUser, new RegExp(`holds the role ${role}`)]];
  for (const [u, why] of cases) {
    for (const [action, params] of Object.entries(accountActions(u, '%'))) {
      const e = await expectCode(cdb[action](params), 'OperationDenied', `${action} ${u}@%`);
      assert.ok(e.message.includes(`The account ${u}@%`), `${action}: the message names the account: ${e.message}`);
      assert.match(e.message, why, `${action}: the message names what it holds: ${e.message}`);
    }
  }
  // Several accounts: the operator's one is found wherever it is in the list.
  await expectCode(cdb.DeleteAccounts({ InstanceId: INST, Accounts: [{ User: tenant, Host: '%' }, { User: superUser, Host: '%' }] }),
    'OperationDenied', 'DeleteAccounts of a tenant account and a SUPER one');
  // ModifyAccountHost names both accounts: moving onto an account with SUPER is refused too.
  await expectCode(cdb.ModifyAccountHost({ InstanceId: INST, User: superUser, Host: '10.1.1.1', NewHost: '%' }),
    'OperationDenied', 'ModifyAccountHost onto a SUPER account');
  assert.equal(await taskTotal(d), tasks, 'no task for any refusal (GET /v1/tasks)');
  assert.deepEqual(await fingerprint(), before, 'mysql.user and the grants are unchanged');
  assert.equal(await db.canLogin(superUser, PW), true, 'the SUPER account keeps its password');
});

test('an account that gains SUPER after the request passed is refused by the executor just before the statement', async () => {
  const late = user('gain');
  await db.sql(`CREATE USER '${late}'@'%' IDENTIFIED BY '${PW}'`);
  // One task in flight at a time, held by a sleeping step (a parked exec step holds no worker, so
  // --max-running is what makes the account action wait its turn while SUPER is granted).
  const d1 = await start({ args: [...NO_LIMITS, '--workers', '1', '--max-running', '1', '--flows', path.join(REPO_ROOT, 'flows')] });
  try {
    await d1.adminOk('POST', '/v1/instances', { product: 'cdb', region: REGION, uin: d1.creds.Uin, instance_id: INST,
      status: 'running', dsn: db.dsn }, 201);
    const hold = await d1.createTask({ product: 'cdb', steps: [shStep('hold', 'sleep 2; echo held')] });
    await waitTask(d1, hold, (t) => t.state === 'running', { what: 'the hold task running' });
    const c1 = d1.cdb();
    const r = await c1.ModifyAccountPassword({ InstanceId: INST, Accounts: [{ User: late, Host: '%' }], NewPassword: 'Tenant-owns-1t' });
    await db.sql(`GRANT SUPER ON *.* TO '${late}'@'%'`);
    const s = await waitFinal(c1, r.AsyncRequestId);
    assert.ok(['FAILED', 'PAUSED'].includes(s.Status), JSON.stringify(s));
    assert.match(s.Info, new RegExp(`failed: OperationDenied: The account ${late}@% holds SUPER`), s.Info);
    if (s.Status === 'PAUSED') await d1.adminOk('POST', `/v1/tasks/${r.AsyncRequestId}/kill`, {});
    assert.equal(await db.canLogin(late, PW), true, 'the password is unchanged');
  } finally {
    await d1.stop();
  }
});

test('an instance that cannot be reached: every account action answers CdbError.TaskError and makes no task', async () => {
  const down = 'cdb-guard-down';
  const port = await freePort();
  await d.adminOk('POST', '/v1/instances', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: down,
    status: 'running', dsn: `mysql://${db.user}:${db.password}@127.0.0.1:${port}` }, 201);
  const tasks = await taskTotal(d);
  for (const [action, params] of Object.entries(accountActions(user('dn'), '%'))) {
    const e = await expectCode(cdb[action]({ ...params, InstanceId: down }), 'CdbError.TaskError', `${action} on ${down}`);
    assert.match(e.message, new RegExp(`instance ${down}: cannot connect to MySQL at 127\\.0\\.0\\.1:${port}`), e.message);
    assert.ok(!e.message.includes(db.password), `no password in the message: ${e.message}`);
  }
  // Reserved names are refused first, without asking the server.
  await expectCode(cdb.DeleteAccounts({ InstanceId: down, Accounts: [{ User: 'root', Host: '%' }] }), 'OperationDenied', 'root on a down instance');
  assert.equal(await taskTotal(d), tasks, 'no task was created');
});

test('an admin-API task whose template writes a reserved account is refused by the executor (a template cannot get past)', async () => {
  const before = await fingerprint();
  const r = await d.adminOk('POST', '/v1/tasks', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST,
    type: 'Probe', on_failure: 'fail', steps: [{ name: 'probe', do: { mysql: {
      sql: 'ALTER USER {0:str} @ {1:str} IDENTIFIED BY {2:str}', args: ['root', 'localhost', 'Owned-by-tenant-1'] } } }] }, 201);
  const s = await waitFinal(cdb, r.AsyncRequestId);
  assert.equal(s.Status, 'FAILED', JSON.stringify(s));
  assert.match(s.Info, /failed: OperationDenied: The account root@localhost/);
  const r2 = await d.adminOk('POST', '/v1/tasks', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST,
    type: 'Probe', on_failure: 'fail', steps: [{ name: 'probe', do: { mysql: {
      sql: 'GRANT SELECT ON {0:ident}.* TO {1:str}@\'%\'', args: ['mysql', tenant] } } }] }, 201);
  const s2 = await waitFinal(cdb, r2.AsyncRequestId);
  assert.equal(s2.Status, 'FAILED', JSON.stringify(s2));
  assert.match(s2.Info, /system schema/);
  assert.deepEqual(await fingerprint(), before);
});

const FORBIDDEN = ['SUPER', 'FILE', 'SHUTDOWN', 'GRANT OPTION', 'ALL', 'ALL PRIVILEGES', 'CREATE TABLESPACE', 'USAGE'];

/** The four scopes of ModifyAccountPrivileges with one privilege list p on tenantDb (or db). */
function scopes(p, database = tenantDb) {
  return {
    global: { GlobalPrivileges: p },
    database: { DatabasePrivileges: [{ Database: database, Privileges: p }] },
    table: { TablePrivileges: [{ Database: database, Table: 't1', Privileges: p }] },
    column: { ColumnPrivileges: [{ Database: database, Table: 't1', Column: 'c1', Privileges: p }] },
  };
}

test('privileges outside the documented list of each scope answer InvalidParameterValue naming them; grants unchanged', async () => {
  const before = await fingerprint();
  const tasks = await taskTotal(d);
  const acc = [{ User: tenant, Host: '%' }];
  const cases = [];
  for (const p of FORBIDDEN) for (const [scope, params] of Object.entries(scopes([p]))) cases.push([scope, p, params]);
  // documented for one scope, not for a narrower one
  cases.push(['database', 'PROCESS', scopes(['PROCESS']).database], ['table', 'EXECUTE', scopes(['EXECUTE']).table],
    ['column', 'DELETE', scopes(['DELETE']).column], ['database', 'CREATE USER', scopes(['CREATE USER']).database]);
  // documented globally by the SDK, but on *.* they reach the mysql schema or any account
  for (const p of ['SELECT', 'UPDATE', 'INSERT', 'DELETE', 'DROP', 'EXECUTE', 'CREATE USER']) cases.push(['global', p, scopes([p]).global]);
  for (const [scope, p, params] of cases) {
    for (const ModifyAction of [undefined, 'grant', 'revoke']) {
      const e = await expectCode(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc, ...params, ...(ModifyAction ? { ModifyAction } : {}) }),
        'InvalidParameterValue', `${p} at the ${scope} level (${ModifyAction})`);
      assert.ok(e.message.includes(`"${p}"`) && e.message.includes(`${scope} level`), `the message names ${p} and ${scope}: ${e.message}`);
    }
  }
  assert.equal(await taskTotal(d), tasks, 'no task for any refusal');
  assert.deepEqual(await fingerprint(), before, 'grants unchanged');
});

test('system schemas (any case, wildcards that match them) answer InvalidParameterValue in every scope; grants unchanged', async () => {
  const before = await fingerprint();
  const tasks = await taskTotal(d);
  const acc = [{ User: tenant, Host: '%' }];
  const names = ['mysql', 'sys', 'performance_schema', 'information_schema', 'MySQL', 'INFORMATION_SCHEMA', 'SYS', 'm_sql', 'my__l', 'performance_schem_', '___'];
  for (const name of names) {
    for (const [scope, params] of Object.entries(scopes(['SELECT'], name))) {
      if (scope === 'global') continue;
      const e = await expectCode(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc, ...params }), 'InvalidParameterValue', `${name} at the ${scope} level`);
      assert.ok(e.message.includes(`"${name}"`) && /system schema/.test(e.message), `names ${name}: ${e.message}`);
    }
  }
  // % and backticks cannot even reach the guard: the template's pattern refuses them
  for (const name of ['%', 'my%', 'mysql`', '`mysql`', 'mysql.user']) {
    await expectCode(cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc, ...scopes(['SELECT'], name).database }), 'InvalidParameterValue', name);
  }
  assert.equal(await taskTotal(d), tasks, 'no task for any refusal');
  assert.deepEqual(await fingerprint(), before, 'grants unchanged');
});

test('a tenant account with documented privileges in every scope works end to end (SUCCESS), and stays the tenant\'s', async () => {
  const acc = [{ User: tenant, Host: '%' }];
  const r = await cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc,
    GlobalPrivileges: ['PROCESS', 'REPLICATION CLIENT', 'SHOW DATABASES'],
    DatabasePrivileges: [{ Database: tenantDb, Privileges: ['SELECT', 'INSERT', 'CREATE VIEW'] }],
    TablePrivileges: [{ Database: tenantDb, Table: 't1', Privileges: ['DELETE', 'TRIGGER'] }],
    ColumnPrivileges: [{ Database: tenantDb, Table: 't1', Column: 'c2', Privileges: ['UPDATE', 'REFERENCES'] }] });
  const s = await waitFinal(cdb, r.AsyncRequestId);
  assert.equal(s.Status, 'SUCCESS', JSON.stringify(s));
  const to = `\`${tenant}\`@\`%\``;
  const g = await db.grants(tenant, '%');
  assert.ok(g.some((l) => l.startsWith('GRANT PROCESS, SHOW DATABASES, BINLOG MONITOR ON *.* TO') || l.startsWith('GRANT PROCESS, SHOW DATABASES, REPLICATION CLIENT ON *.* TO')), g.join('\n'));
  assert.ok(g.includes(`GRANT SELECT, INSERT, CREATE VIEW ON \`${tenantDb}\`.* TO ${to}`), g.join('\n'));
  assert.ok(g.includes(`GRANT UPDATE (\`c2\`), DELETE, REFERENCES (\`c2\`), TRIGGER ON \`${tenantDb}\`.\`t1\` TO ${to}`), g.join('\n'));
  const upd = await db.client(`UPDATE \`${tenantDb}\`.t1 SET c2 = 1`, { user: tenant, password: PW });
  assert.ok(upd.ok, upd.stderr);
  // With those privileges (REPLICATION CLIENT shows as BINLOG MONITOR) the account is still the tenant's.
  const NEW = 'Tenant-new-passw0rd';
  const r2 = await cdb.ModifyAccountPassword({ InstanceId: INST, Accounts: acc, NewPassword: NEW });
  const s2 = await waitFinal(cdb, r2.AsyncRequestId);
  assert.equal(s2.Status, 'SUCCESS', JSON.stringify(s2));
  assert.equal(await db.canLogin(tenant, NEW), true);
  const r3 = await cdb.ModifyAccountPrivileges({ InstanceId: INST, Accounts: acc, ModifyAction: 'revoke',
    ColumnPrivileges: [{ Database: tenantDb, Table: 't1', Column: 'c2', Privileges: ['UPDATE'] }] });
  assert.equal((await waitFinal(cdb, r3.AsyncRequestId)).Status, 'SUCCESS');
  assert.ok((await db.grants(tenant, '%')).includes(`GRANT DELETE, REFERENCES (\`c2\`), TRIGGER ON \`${tenantDb}\`.\`t1\` TO ${to}`));
});
