// The create actions (cdb and mongodb CreateDBInstanceHour) make simulated instances owned by the
// caller in its region, so a client's create -> poll -> configure -> poll sequence runs end to end:
// DescribeDBInstances lists the new instances running, an async action on one starts a task that
// DescribeAsyncRequestInfo follows to success.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_LIMITS, OTHER_REGION, SLOW, expectCode, sleep, start } from './lib/asyncd.mjs';

const T = { timeout: 30000 * SLOW };
let d;

before(async () => { d = await start({ args: NO_LIMITS }); });
after(async () => { await d?.stop(); });

const CASES = {
  cdb: {
    create: { GoodsNum: 2, Memory: 1000, Volume: 25 },
    idRe: /^cdb-[0-9a-f]{8}$/,
    deal: (r) => { assert.ok(Array.isArray(r.DealIds) && r.DealIds.length === 1, JSON.stringify(r)); },
    running: 1,
    configure: (c, id) => c.OpenWanService({ InstanceId: id }),
    taskId: (r) => r.AsyncRequestId,
    success: 'SUCCESS',
  },
  mongodb: {
    create: { Memory: 4, Volume: 100, ReplicateSetNum: 1, NodeNum: 3, MongoVersion: 'MONGO_40_WT', MachineCode: 'HIO10G',
      GoodsNum: 2, ClusterType: 'REPLSET', Zone: 'ap-guangzhou-3' },
    idRe: /^cmgo-[0-9a-f]{8}$/,
    deal: (r) => { assert.equal(typeof r.DealId, 'string', JSON.stringify(r)); assert.ok(r.DealId.length > 0); },
    running: 2,
    configure: (c, id) => c.RestartNodes({ InstanceId: id, NodeIds: ['n1'] }),
    taskId: (r) => { assert.ok(Number.isInteger(r.FlowId), JSON.stringify(r)); return String(r.FlowId); },
    success: 'success',
  },
};

for (const [product, k] of Object.entries(CASES)) {
  describe(`${product} CreateDBInstanceHour`, T, () => {
    test('create -> DescribeDBInstances -> configure -> DescribeAsyncRequestInfo', async () => {
      const c = d.client(product);
      const r = await c.CreateDBInstanceHour(k.create);
      k.deal(r);
      assert.equal(r.InstanceIds.length, 2, JSON.stringify(r));
      for (const id of r.InstanceIds) assert.match(id, k.idRe);
      assert.notEqual(r.InstanceIds[0], r.InstanceIds[1]);

      const listed = await c.DescribeDBInstances({ InstanceIds: r.InstanceIds });
      assert.equal(listed.TotalCount, 2, JSON.stringify(listed));
      const items = product === 'cdb' ? listed.Items : listed.InstanceDetails;
      assert.deepEqual(items.map((i) => i.InstanceId).sort(), [...r.InstanceIds].sort());
      for (const i of items) assert.equal(i.Status, k.running, `${i.InstanceId} is running: ${JSON.stringify(i)}`);

      const id = k.taskId(await k.configure(c, r.InstanceIds[0]));
      let last;
      for (let n = 0; n < 100 && last?.Status !== k.success; n++) {
        if (n) await sleep(50 * SLOW);
        last = await d.describe(product, id);
      }
      assert.equal(last.Status, k.success, JSON.stringify(last));
    });

    test('the instances are the caller\'s, in its region only', async () => {
      const r = await d.client(product).CreateDBInstanceHour({ ...k.create, GoodsNum: 1 });
      const there = await d.client(product, { region: OTHER_REGION }).DescribeDBInstances({ InstanceIds: r.InstanceIds });
      assert.equal(there.TotalCount, 0, JSON.stringify(there));
      const other = await d.createAccount();
      const theirs = await d.client(product, { creds: other }).DescribeDBInstances({ InstanceIds: r.InstanceIds });
      assert.equal(theirs.TotalCount, 0, JSON.stringify(theirs));
    });

    test('a missing required parameter answers MissingParameter; GoodsNum out of range InvalidParameterValue', async () => {
      const { Memory, ...noMemory } = k.create;
      await expectCode(d.client(product).CreateDBInstanceHour(noMemory), 'MissingParameter', 'no Memory');
      await expectCode(d.client(product).CreateDBInstanceHour({ ...k.create, GoodsNum: 0 }), 'InvalidParameterValue', 'GoodsNum 0');
      await expectCode(d.client(product).CreateDBInstanceHour({ ...k.create, Memory: 'big' }), 'InvalidParameter', 'Memory a string');
    });
  });
}
