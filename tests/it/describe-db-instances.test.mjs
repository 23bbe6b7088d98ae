// DescribeDBInstances of both products through the official SDK: the caller's instances in the
// request's region, every field the SDK's models document, Status/TaskStatus that follow the
// instance's tasks, the filters and pages, and parameter checks from the SDK's request model.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  IT_DIR, NO_LIMITS, OTHER_REGION, SIGN_MODES, SLOW, expectCode, start,
} from './lib/asyncd.mjs';

let d;
const ids = {};
const SECRET = 'Sekr1t-Pass@word';

// The fields each answer structure must carry, read from the SDK the test runs with.
function sdkFields(file, iface) {
  const text = fs.readFileSync(path.join(IT_DIR, 'node_modules/tencentcloud-sdk-nodejs/tencentcloud/services', file), 'utf8');
  const m = new RegExp(`^export interface ${iface} \\{\\n([\\s\\S]*?)^\\}`, 'm').exec(text);
  assert.ok(m, `${iface} in ${file}`);
  return [...m[1].replace(/\/\*\*[\s\S]*?\*\//g, '').matchAll(/^\s+(\w+)\??:/gm)].map((x) => x[1]);
}
const CDB_FIELDS = sdkFields('cdb/v20170320/cdb_models.d.ts', 'InstanceInfo');
const MONGO_FIELDS = sdkFields('mongodb/v20190725/mongodb_models.d.ts', 'InstanceDetail');

before(async () => {
  d = await start({ args: NO_LIMITS });
  const pw = encodeURIComponent(SECRET);
  ids.cdbRun = await d.createInstance({ product: 'cdb', dsn: `mysql://admin:${pw}@10.1.2.3:3307/mysql` });
  ids.cdbIso = await d.createInstance({ product: 'cdb', status: 'isolated', dsn: 'mysql://admin:x@10.1.2.4:3306' });
  ids.cdbOff = await d.createInstance({ product: 'cdb', status: 'offline' });
  ids.cdbElsewhere = await d.createInstance({ product: 'cdb', region: OTHER_REGION });
  const other = await d.createAccount();
  ids.cdbOther = await d.createInstance({ product: 'cdb', uin: other.Uin });
  ids.mongoRun = await d.createInstance({ product: 'mongodb', dsn: `mongodb://root:${pw}@10.2.0.1:27018,10.2.0.2:27018/admin` });
  ids.mongoIso = await d.createInstance({ product: 'mongodb', status: 'isolated' });
});
after(async () => { await d?.stop(); });

describe('cdb DescribeDBInstances', { timeout: 60000 * SLOW }, () => {
  test('lists the caller\'s instances in the region, not offline ones, with every InstanceInfo field', async () => {
    const r = await d.cdb().DescribeDBInstances({});
    const got = r.Items.map((i) => i.InstanceId).sort();
    assert.deepEqual(got, [ids.cdbRun, ids.cdbIso].sort(), JSON.stringify(r));
    assert.equal(r.TotalCount, 2);
    for (const item of r.Items) {
      for (const f of CDB_FIELDS) assert.ok(f in item, `Items[].${f} is there (pollers dereference it)`);
      assert.equal(typeof item.MasterInfo, 'object');
      assert.ok('Region' in item.MasterInfo, 'nested structures are filled too');
      assert.ok(Array.isArray(item.RoGroups));
    }
    const run = r.Items.find((i) => i.InstanceId === ids.cdbRun);
    assert.deepEqual([run.Status, run.TaskStatus, run.Vip, run.Vport, run.Region], [1, 0, '10.1.2.3', 3307, 'ap-guangzhou']);
    assert.equal(r.Items.find((i) => i.InstanceId === ids.cdbIso).Status, 5, 'isolated is 5');
    assert.ok(!JSON.stringify(r).includes('Sekr1t'), 'no DSN password in the answer');
    assert.ok(!JSON.stringify(r).includes('admin'), 'no DSN user in the answer');
  });

  test('InstanceIds, Status, Offset and Limit select, through every signing mode', async () => {
    for (const mode of SIGN_MODES) {
      const c = d.cdb(mode);
      let r = await c.DescribeDBInstances({ InstanceIds: [ids.cdbIso, ids.cdbOther, ids.cdbElsewhere] });
      assert.deepEqual(r.Items.map((i) => i.InstanceId), [ids.cdbIso], `${mode.name}: other accounts and regions stay hidden`);
      r = await c.DescribeDBInstances({ Status: [1] });
      assert.deepEqual(r.Items.map((i) => i.InstanceId), [ids.cdbRun], `${mode.name}: Status filter`);
      r = await c.DescribeDBInstances({ Offset: 1, Limit: 1 });
      assert.equal(r.TotalCount, 2, mode.name);
      assert.equal(r.Items.length, 1, mode.name);
    }
  });

  test('TaskStatus is 5 while a task runs on the instance, 0 before and after', async () => {
    const c = d.cdb();
    const one = async () => (await c.DescribeDBInstances({ InstanceIds: [ids.cdbRun] })).Items[0].TaskStatus;
    const id = await d.createTask({ product: 'cdb', instance_id: ids.cdbRun });
    assert.equal(await one(), 0, 'queued, not running');
    await d.transition(id, 'running');
    assert.equal(await one(), 5, 'running');
    await d.transition(id, 'success', { step_done: true });
    assert.equal(await one(), 0, 'done');
  });

  test('parameters are checked against the SDK\'s request model', async () => {
    const c = d.cdb();
    await expectCode(c.DescribeDBInstances({ InstanceIds: ids.cdbRun }), 'InvalidParameter', 'InstanceIds as a string');
    await expectCode(c.DescribeDBInstances({ Status: ['running'] }), 'InvalidParameter', 'Status of words');
    await expectCode(c.DescribeDBInstances({ Limit: 0 }), 'InvalidParameterValue', 'Limit 0');
    await expectCode(c.DescribeDBInstances({ Limit: 2001 }), 'InvalidParameterValue', 'Limit 2001');
    await expectCode(c.DescribeDBInstances({ Nope: 1 }), 'UnknownParameter', 'an unknown parameter');
    const r = await c.DescribeDBInstances({ OrderBy: 'InstanceId', WithRo: 1, ProjectId: 0 });
    assert.equal(r.TotalCount, 2, 'documented filters asyncd does not apply are accepted');
  });
});

describe('mongodb DescribeDBInstances', { timeout: 60000 * SLOW }, () => {
  test('lists InstanceDetails with every documented field; Status 2 running, 1 busy, -2 isolated', async () => {
    const c = d.mongodb();
    let r = await c.DescribeDBInstances({});
    assert.equal(r.TotalCount, 2, JSON.stringify(r));
    for (const item of r.InstanceDetails) {
      for (const f of MONGO_FIELDS) assert.ok(f in item, `InstanceDetails[].${f} is there`);
    }
    const run = r.InstanceDetails.find((i) => i.InstanceId === ids.mongoRun);
    assert.deepEqual([run.Status, run.Vip, run.Vport], [2, '10.2.0.1', 27018]);
    assert.equal(r.InstanceDetails.find((i) => i.InstanceId === ids.mongoIso).Status, -2);
    assert.ok(!JSON.stringify(r).includes('Sekr1t'), 'no DSN password in the answer');
    const id = await d.createTask({ product: 'mongodb', instance_id: ids.mongoRun });
    await d.transition(id, 'running');
    r = await c.DescribeDBInstances({ InstanceIds: [ids.mongoRun] });
    assert.equal(r.InstanceDetails[0].Status, 1, 'a task in progress');
    await d.transition(id, 'success', { step_done: true });
    r = await c.DescribeDBInstances({ Status: [2] });
    assert.deepEqual(r.InstanceDetails.map((i) => i.InstanceId), [ids.mongoRun], 'running again, Status filter');
    await expectCode(c.DescribeDBInstances({ Limit: 101 }), 'InvalidParameterValue', 'mongodb Limit 101');
  });
});
