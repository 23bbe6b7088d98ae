// Simulated instances (docs/simulation.md): registered with "simulated": true and no dsn, they
// have no server, yet every template action on them checks its parameters as on a real one, runs
// as a simulated task, and changes the instance's recorded state as the product would -- visible
// through cdb DescribeAccounts and DescribeInstanceParams, mongodb DescribeDBBackups, and both
// products' DescribeDBInstances. Also: the README's recipe, exactly as written there.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  start, CDB_ID_RE, MONGODB_ID_RE, REPO_ROOT, ASYNCCTL_BIN, SLOW, expectCode, runAsyncctl,
} from './lib/asyncd.mjs';
import { SIM_ARGS, simInstance, setRule } from './lib/sim.mjs';

let d;
before(async () => { d = await start({ args: SIM_ARGS }); });
after(async () => { if (d) await d.stop(); });

async function succeed(product, id) {
  const r = await d.describe(product, id);
  assert.equal(r.Status, product === 'cdb' ? 'SUCCESS' : 'success', `${id}: ${JSON.stringify(r)}`);
  return r;
}

describe('registering', () => {
  test('simulated: true without a dsn; GET says simulated true|false; a dsn with it is a 400', async () => {
    const inst = await simInstance(d, 'cdb');
    const got = await d.adminOk('GET', `/v1/instances/${inst}`);
    assert.equal(got.simulated, true);
    assert.equal(got.dsn, '');
    const real = await d.createInstance({ product: 'cdb' });
    assert.equal((await d.adminOk('GET', `/v1/instances/${real}`)).simulated, false);
    const list = (await d.adminOk('GET', '/v1/instances?product=cdb')).instances;
    assert.equal(list.find((i) => i.instance_id === inst).simulated, true);
    assert.equal(list.find((i) => i.instance_id === real).simulated, false);
    const r = await d.admin('POST', '/v1/instances', { product: 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin,
      instance_id: 'cdb-both', simulated: true, dsn: 'mysql://root:pw@127.0.0.1:3306' });
    assert.equal(r.status, 400);
    assert.match(r.json.message, /simulated instance has no server/);
    const p = await d.admin('PATCH', `/v1/instances/${inst}`, { dsn: 'mysql://root:pw@127.0.0.1:3306' });
    assert.equal(p.status, 400);
    const bad = await d.admin('POST', '/v1/instances', { product: 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin,
      instance_id: 'cdb-bad', simulated: 'yes' });
    assert.equal(bad.status, 400);
  });
});

describe('cdb accounts on a simulated instance', () => {
  test('CreateAccounts -> DescribeAccounts shows them; host, password, privileges, delete follow', async () => {
    const inst = await simInstance(d, 'cdb');
    const cdb = d.cdb();
    const c = await cdb.CreateAccounts({ InstanceId: inst, Accounts: [{ User: 'app', Host: '%' }, { User: 'ro', Host: '10.0.0.1' }],
      Password: 'Secret-pw-1', Description: 'the app' });
    assert.match(c.AsyncRequestId, CDB_ID_RE);
    await succeed('cdb', c.AsyncRequestId);
    let a = await cdb.DescribeAccounts({ InstanceId: inst });
    assert.equal(a.TotalCount, 2);
    assert.deepEqual(a.Items.map((i) => `${i.User}@${i.Host}`).sort(), ['app@%', 'ro@10.0.0.1']);
    assert.equal(a.Items.find((i) => i.User === 'app').Notes, 'the app');
    assert.equal((await cdb.DescribeAccounts({ InstanceId: inst, AccountRegexp: '^r' })).TotalCount, 1);

    await succeed('cdb', (await cdb.ModifyAccountHost({ InstanceId: inst, User: 'ro', Host: '10.0.0.1', NewHost: '10.0.0.%' })).AsyncRequestId);
    await succeed('cdb', (await cdb.ModifyAccountPassword({ InstanceId: inst, NewPassword: 'Other-pw-22', Accounts: [{ User: 'app', Host: '%' }] })).AsyncRequestId);
    await succeed('cdb', (await cdb.ModifyAccountPrivileges({ InstanceId: inst, Accounts: [{ User: 'app', Host: '%' }], GlobalPrivileges: ['PROCESS'] })).AsyncRequestId);
    const shown = await d.adminOk('GET', `/v1/instances/${inst}`);
    const app = shown.sim_state.accounts.find((x) => x.User === 'app');
    assert.deepEqual(app.Privileges.GlobalPrivileges, ['PROCESS'], JSON.stringify(shown.sim_state));
    assert.ok(!JSON.stringify(shown).includes('pw'), 'no password is recorded');
    a = await cdb.DescribeAccounts({ InstanceId: inst });
    assert.deepEqual(a.Items.map((i) => `${i.User}@${i.Host}`).sort(), ['app@%', 'ro@10.0.0.%']);

    await succeed('cdb', (await cdb.DeleteAccounts({ InstanceId: inst, Accounts: [{ User: 'ro', Host: '10.0.0.%' }] })).AsyncRequestId);
    a = await cdb.DescribeAccounts({ InstanceId: inst });
    assert.deepEqual(a.Items.map((i) => i.User), ['app']);
  });

  test('parameters are checked as on a real instance, and nothing is created when they are wrong', async () => {
    const inst = await simInstance(d, 'cdb');
    const before = (await d.adminOk('GET', `/v1/tasks?instance_id=${inst}`)).total;
    await expectCode(d.cdb().CreateAccounts({ InstanceId: inst, Accounts: [{ User: 'x', Host: '%' }] }), 'MissingParameter');
    await expectCode(d.cdb().CreateAccounts({ InstanceId: inst, Accounts: [{ User: 'x', Host: '%' }], Password: 'short' }), 'InvalidParameterValue');
    assert.equal((await d.adminOk('GET', `/v1/tasks?instance_id=${inst}`)).total, before);
  });

  test('a task that does not succeed changes nothing', async () => {
    const inst = await simInstance(d, 'cdb');
    await setRule(d, `fail-${inst}`, { product: 'cdb', instance_id: inst, phases: [{ state: 'failed', info: 'no' }] });
    const c = await d.cdb().CreateAccounts({ InstanceId: inst, Accounts: [{ User: 'app', Host: '%' }], Password: 'Secret-pw-1' });
    assert.equal((await d.describe('cdb', c.AsyncRequestId)).Status, 'FAILED');
    assert.equal((await d.cdb().DescribeAccounts({ InstanceId: inst })).TotalCount, 0);
  });
});

describe('parameters and backups', () => {
  test('ModifyInstanceParam -> DescribeInstanceParams shows the new value, the rest their defaults', async () => {
    const inst = await simInstance(d, 'cdb');
    let p = await d.cdb().DescribeInstanceParams({ InstanceId: inst });
    assert.equal(p.Items.find((i) => i.Name === 'connect_timeout').CurrentValue, '10');
    const r = await d.cdb().ModifyInstanceParam({ InstanceIds: [inst], ParamList: [{ Name: 'connect_timeout', CurrentValue: '20' }] });
    await succeed('cdb', r.AsyncRequestId);
    p = await d.cdb().DescribeInstanceParams({ InstanceId: inst });
    assert.equal(p.Items.find((i) => i.Name === 'connect_timeout').CurrentValue, '20');
    assert.equal(p.TotalCount, p.Items.length);
  });

  test('mongodb CreateBackupDBInstance -> DescribeDBBackups lists the backup', async () => {
    const inst = await simInstance(d, 'mongodb');
    const r = await d.mongodb().CreateBackupDBInstance({ InstanceId: inst, BackupMethod: 1, BackupRemark: 'nightly' });
    assert.match(r.AsyncRequestId, MONGODB_ID_RE);
    await succeed('mongodb', r.AsyncRequestId);
    const b = await d.mongodb().DescribeDBBackups({ InstanceId: inst });
    assert.equal(b.TotalCount, 1);
    assert.equal(b.BackupList[0].BackupDesc, 'nightly');
    assert.equal(b.BackupList[0].BackupMethod, 1);
    assert.equal((await d.adminOk('GET', `/v1/instances/${inst}`)).sim_state.backups.length, 1);
  });
});

describe('DescribeDBInstances', () => {
  test('lists simulated instances of both products, TaskStatus following their tasks', async () => {
    const c = await simInstance(d, 'cdb');
    const m = await simInstance(d, 'mongodb');
    const ci = (await d.cdb().DescribeDBInstances({ InstanceIds: [c] })).Items;
    assert.deepEqual(ci.map((i) => [i.InstanceId, i.Status, i.TaskStatus]), [[c, 1, 0]]);
    await setRule(d, `busy-${c}`, { product: 'cdb', instance_id: c, phases: [{ state: 'running', until: 'advance' }, { state: 'success' }] });
    const t = await d.cdb().CreateAccounts({ InstanceId: c, Accounts: [{ User: 'u', Host: '%' }], Password: 'Secret-pw-1' });
    const busy = (await d.cdb().DescribeDBInstances({ InstanceIds: [c] })).Items[0];
    assert.notEqual(busy.TaskStatus, 0, 'a running simulated task shows on its instance');
    await d.adminOk('POST', `/v1/tasks/${t.AsyncRequestId}/advance`, {});
    const mi = (await d.mongodb().DescribeDBInstances({ InstanceIds: [m] })).InstanceDetails;
    assert.deepEqual(mi.map((i) => i.InstanceId), [m]);
  });

  test('network and version actions show in DescribeDBInstances once their task succeeded', async () => {
    const c = await simInstance(d, 'cdb');
    const before = (await d.cdb().DescribeDBInstances({ InstanceIds: [c] })).Items[0];
    assert.deepEqual([before.Vip, before.Vport], ['10.0.0.10', 3306], 'a simulated instance has an address of its own');
    await setRule(d, `net-${c}`, { product: 'cdb', instance_id: c, phases: [{ state: 'running', until: 'advance' }, { state: 'success' }] });
    const t = await d.cdb().ModifyDBInstanceVipVport({ InstanceId: c, DstIp: '10.1.2.3', DstPort: 4406 });
    const during = (await d.cdb().DescribeDBInstances({ InstanceIds: [c] })).Items[0];
    assert.deepEqual([during.Vip, during.Vport], ['10.0.0.10', 3306], 'nothing changes before the task succeeds');
    await d.adminOk('POST', `/v1/tasks/${t.AsyncRequestId}/advance`, {});
    await succeed('cdb', t.AsyncRequestId);
    const after = (await d.cdb().DescribeDBInstances({ InstanceIds: [c] })).Items[0];
    assert.deepEqual([after.Vip, after.Vport], ['10.1.2.3', 4406]);
    const u = await d.cdb().UpgradeDBInstanceEngineVersion({ InstanceId: c, EngineVersion: '8.0' });
    await d.adminOk('POST', `/v1/tasks/${u.AsyncRequestId}/advance`, {});
    await succeed('cdb', u.AsyncRequestId);
    assert.equal((await d.cdb().DescribeDBInstances({ InstanceIds: [c] })).Items[0].EngineVersion, '8.0');

    const m = await simInstance(d, 'mongodb');
    const v = await d.mongodb().UpgradeDbInstanceVersion({ InstanceId: m, MongoVersion: 'MONGO_50_WT' });
    await succeed('mongodb', String(v.FlowId));
    const mi = (await d.mongodb().DescribeDBInstances({ InstanceIds: [m] })).InstanceDetails[0];
    assert.deepEqual([mi.MongoVersion, mi.Vip, mi.Vport], ['MONGO_50_WT', '10.0.0.10', 27017]);
  });
});

describe('asyncctl', () => {
  test('instance add --simulated, sim rule set/list/delete, sim advance, sim reset', async () => {
    const ctl = (args) => runAsyncctl(d, ['--json', ...args]);
    let r = await ctl(['instance', 'add', '--product', 'mongodb', '--region', 'ap-guangzhou', '--uin', d.creds.Uin,
      '--id', 'cmgo-ctl1', '--simulated']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.simulated, true);
    r = await ctl(['instance', 'add', '--product', 'mongodb', '--region', 'ap-guangzhou', '--uin', d.creds.Uin, '--id', 'cmgo-ctl2']);
    assert.equal(r.code, 2, 'neither --dsn nor --simulated is a usage error');
    assert.match(r.stderr, /--dsn DSN for a real instance or --simulated/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-ctl-rule-'));
    try {
      const file = path.join(dir, 'rule.json');
      fs.writeFileSync(file, JSON.stringify({ product: 'mongodb', instance_id: 'cmgo-ctl1',
        phases: [{ state: 'running', until: 'advance' }, { state: 'success' }] }));
      r = await ctl(['sim', 'rule', 'set', 'ctl-rule', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.name, 'ctl-rule');
      r = await ctl(['sim', 'rule', 'list']);
      assert.ok(r.json.rules.some((x) => x.name === 'ctl-rule'), r.stdout);
      const { AsyncRequestId: id } = await d.mongodb().CreateBackupDBInstance({ InstanceId: 'cmgo-ctl1', BackupMethod: 0 });
      assert.equal((await d.describe('mongodb', id)).Status, 'running');
      r = await ctl(['sim', 'advance', id]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.state, 'success');
      assert.equal((await d.describe('mongodb', id)).Status, 'success');
      r = await ctl(['sim', 'rule', 'delete', 'ctl-rule']);
      assert.equal(r.code, 0, r.stderr);
      r = await ctl(['sim', 'rule', 'delete', 'ctl-rule']);
      assert.equal(r.code, 1, "deleting it again is the API's 404");
      fs.writeFileSync(file, '{"product": ');
      r = await ctl(['sim', 'rule', 'set', 'x', file]);
      assert.equal(r.code, 2, 'a file that is not JSON is a usage error');
      r = await ctl(['sim', 'reset']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.json.instances >= 1, r.stdout);
      assert.equal((await d.admin('GET', '/v1/instances/cmgo-ctl1')).status, 404);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the README recipe', () => {
  test('runs as written: RUNNING "" twice, then SUCCESS "X"', async () => {
    // The block between the README's recipe markers, run by bash from a directory that looks
    // like the repository's top (bin, tests) with var/ being this daemon's data dir.
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const m = /^<!-- recipe -->\n```sh\n([\s\S]*?)```\n<!-- \/recipe -->$/m.exec(readme);
    assert.ok(m, 'the README has the recipe block');
    const top = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-recipe-'));
    try {
      fs.symlinkSync(path.dirname(ASYNCCTL_BIN), path.join(top, 'bin'));
      fs.symlinkSync(path.join(REPO_ROOT, 'tests'), path.join(top, 'tests'));
      fs.symlinkSync(d.dataDir, path.join(top, 'var'));
      const r = spawnSync('bash', ['-euo', 'pipefail', '-c', m[1]], { cwd: top, encoding: 'utf8', timeout: 60000 * SLOW,
        env: { ...process.env, ASYNCD_ADMIN: `127.0.0.1:${d.adminPort}`, ASYNCD_CLOUD: `127.0.0.1:${d.port}` } });
      assert.equal(r.status, 0, `the recipe exits 0: ${r.stderr}`);
      const lines = r.stdout.trim().split('\n');
      assert.deepEqual(lines.slice(-3), ['RUNNING ""', 'RUNNING ""', 'SUCCESS "X"'], r.stdout);
      const a = await d.cdb().DescribeAccounts({ InstanceId: 'cdb-sim1' });
      assert.deepEqual(a.Items.map((x) => x.User), ['app'], 'and the account exists on the simulated instance');
    } finally {
      fs.rmSync(top, { recursive: true, force: true });
    }
  });
});
