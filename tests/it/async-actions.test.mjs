// Every async action of both products, generated from the table scripts/gen_sdk_models.mjs writes
// from the official SDK's models (tests/it/async-actions.json): through the SDK, a valid request
// on a simulated instance answers its id in the documented shape and the task reaches success
// (a mongodb FlowId/TaskId polled as an AsyncRequestId too); a missing required parameter answers
// MissingParameter; a wrong type InvalidParameter; on a real instance an action without a flow
// template answers UnsupportedOperation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CDB_ID_RE, IT_DIR, MONGODB_ID_RE, NO_LIMITS, PRODUCTS, REGION, REPO_ROOT, SLOW, expectCode, sleep, start } from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
const TABLE = JSON.parse(fs.readFileSync(path.join(IT_DIR, 'async-actions.json'), 'utf8'));
const SUCCESS = { cdb: 'SUCCESS', mongodb: 'success' };
const hasTemplate = (p, action) => fs.existsSync(path.join(REPO_ROOT, 'flows', p, `${action}.json`));
let d;
let seq = 0;

before(async () => { d = await start({ args: NO_LIMITS }); });
after(async () => { await d?.stop(); });

/** A fresh simulated instance (no dsn): one per action, so no action sees another's effects. */
async function simInstance(product) {
  const id = `${product === 'cdb' ? 'cdb' : 'cmgo'}-sim${String(++seq).padStart(5, '0')}`;
  await d.adminOk('POST', '/v1/instances', { product, region: REGION, uin: d.creds.Uin, instance_id: id, simulated: true }, 201);
  return id;
}

/** A value of the field's kind; nested structures with their required fields. */
function valueOf(models, f, instanceId, depth = 0) {
  if (f.name === 'InstanceId' && f.kind === 'STRING') return instanceId;
  if (f.name === 'InstanceIds' && f.kind === 'ARRAY' && f.elem === 'STRING') return [instanceId];
  switch (f.kind) {
    case 'STRING': return /password/i.test(f.name) ? 'Sim-Passw0rd-1' : /host/i.test(f.name) ? '%' : 'x';
    case 'NUMBER': return 1;
    case 'BOOL': return true;
    case 'OBJECT': return objectOf(models, f.ref, instanceId, depth + 1);
    case 'ARRAY': return [valueOf(models, { name: '', kind: f.elem, ref: f.ref }, instanceId, depth)];
    default: return 'x';
  }
}

function objectOf(models, name, instanceId, depth = 0) {
  const o = {};
  if (!name || depth > 4) return o;
  for (const f of models[name]) if (f.required) o[f.name] = valueOf(models, f, instanceId, depth);
  return o;
}

/** The API error the call answers, whose code matches re. */
async function expectCodeLike(promise, re, what) {
  let res;
  try {
    res = await promise;
  } catch (e) {
    assert.ok(e && e.code !== undefined, `${what}: expected an API error, got ${e && e.message}`);
    assert.match(e.code, re, `${what}: ${e.code} (${e.message})`);
    return e;
  }
  assert.fail(`${what}: expected an error ${re}, got success ${JSON.stringify(res)}`);
}

/** Valid requests for the actions a flow template runs: their schemas ask more than the model's
 * kinds (patterns, lengths, known parameter names), so generated values would not pass. */
const ACCOUNT = [{ User: 'sim_user', Host: '%' }];
const TEMPLATE_BODIES = {
  CreateAccounts: (inst) => ({ InstanceId: inst, Accounts: ACCOUNT, Password: 'Sim-Passw0rd-1' }),
  DeleteAccounts: (inst) => ({ InstanceId: inst, Accounts: ACCOUNT }),
  ModifyAccountHost: (inst) => ({ InstanceId: inst, User: 'sim_user', Host: '%', NewHost: '10.0.0.%' }),
  ModifyAccountPassword: (inst) => ({ InstanceId: inst, NewPassword: 'Sim-Passw0rd-2', Accounts: ACCOUNT }),
  ModifyAccountPrivileges: (inst) => ({ InstanceId: inst, Accounts: ACCOUNT, GlobalPrivileges: ['PROCESS'] }),
  ModifyInstanceParam: (inst) => ({ InstanceIds: [inst], ParamList: [{ Name: 'max_connections', CurrentValue: '500' }] }),
  CreateBackupDBInstance: (inst) => ({ InstanceId: inst, BackupMethod: 0 }),
};

/** A value of another kind than the field's. */
const wrongKind = (f) => (f.kind === 'STRING' ? 12 : 'not-of-its-kind');

async function pollTo(product, id, word) {
  let last;
  for (let i = 0; i < 100; i++) {
    last = await d.describe(product, id);
    if (last.Status === word) return last;
    await sleep(50 * SLOW);
  }
  assert.fail(`${product} task ${id} did not reach ${word}: ${JSON.stringify(last)}`);
}

function checkIdShape(product, a, r) {
  const id = r[a.idField];
  if (a.idKind === 'STRING') {
    assert.equal(typeof id, 'string', `${a.name}: ${a.idField} is a string: ${JSON.stringify(r)}`);
    assert.match(id, product === 'cdb' ? CDB_ID_RE : MONGODB_ID_RE, `${a.name}: ${a.idField}`);
    return id;
  }
  assert.ok(Number.isInteger(id) && id > 0, `${a.name}: ${a.idField} is a positive number: ${JSON.stringify(r)}`);
  return String(id);
}

for (const product of PRODUCTS) {
  const { actions, models } = TABLE.products[product];
  const instanceField = (a) => models[a.request].find((f) => (f.name === 'InstanceId' && f.kind === 'STRING') || (f.name === 'InstanceIds' && f.kind === 'ARRAY'));

  describe(`${product}: ${actions.length} async actions from the SDK's models`, T, () => {
    test('the table lists the documented async actions', () => {
      const want = product === 'cdb' ? 38 : 23; // the count for tencentcloud-sdk-nodejs 4.1.x
      assert.equal(actions.length, want, actions.map((a) => a.name).join(' '));
      for (const a of actions) assert.ok(typeof d.client(product)[a.name] === 'function', `${a.name} is an SDK method`);
    });

    for (const a of actions) {
      const template = hasTemplate(product, a.name);
      const required = models[a.request].filter((f) => f.required);

      test(`${a.name}: a valid request on a simulated instance answers ${a.idField} and the task reaches ${SUCCESS[product]}`, async () => {
          const inst = await simInstance(product);
          const body = template ? TEMPLATE_BODIES[a.name](inst) : objectOf(models, a.request, inst);
          const r = await d.client(product)[a.name](body);
          assert.deepEqual(Object.keys(r).sort(), models[a.response].map((f) => f.name).sort(),
            `${a.name}: every documented response field: ${JSON.stringify(r)}`);
          const id = checkIdShape(product, a, r);
          await pollTo(product, id, SUCCESS[product]);
        });

      test(`${a.name}: a missing required parameter answers MissingParameter`, { skip: !required.length && 'no required parameter' }, async () => {
        const inst = await simInstance(product);
        const params = objectOf(models, a.request, inst);
        const gone = required[required.length - 1].name;
        delete params[gone];
        const err = await expectCode(d.client(product)[a.name](params), 'MissingParameter', a.name);
        assert.match(err.message, new RegExp(gone), `${a.name}: the message names ${gone}`);
      });

      test(`${a.name}: a parameter of the wrong type answers InvalidParameter`, async () => {
        const inst = await simInstance(product);
        const params = objectOf(models, a.request, inst);
        const f = required.find((x) => x.name !== 'InstanceId' && x.name !== 'InstanceIds') || models[a.request][0];
        params[f.name] = wrongKind(f);
        const err = await expectCodeLike(d.client(product)[a.name](params), /^InvalidParameter/, a.name);
        assert.match(err.message, new RegExp(f.name), `${a.name}: the message names ${f.name}`);
      });

      if (!template && instanceField(a)) {
        test(`${a.name}: on a real instance answers UnsupportedOperation (no flow for it on a server)`, async () => {
          const real = await d.createInstance({ product });
          const params = objectOf(models, a.request, real);
          const f = instanceField(a);
          params[f.name] = valueOf(models, f, real); // an optional InstanceId too
          const r = d.client(product)[a.name](params);
          const err = await expectCode(r, 'UnsupportedOperation', a.name);
          assert.match(err.message, /simulated instance/, a.name);
        });
      }
    }
  });
}

describe('form-encoded requests and what follows a task', T, () => {
  for (const mode of [{ signMethod: 'HmacSHA256', reqMethod: 'GET' }, { signMethod: 'TC3-HMAC-SHA256', reqMethod: 'GET' }]) {
    test(`values arrive as strings (${mode.signMethod} ${mode.reqMethod}): numbers, booleans, nested structures`, async () => {
      const cdb = await simInstance('cdb');
      const r1 = await d.cdb(mode).UpgradeDBInstance({ InstanceId: cdb, Memory: 2000, Volume: 50, WaitSwitch: 1 });
      await pollTo('cdb', checkIdShape('cdb', { name: 'UpgradeDBInstance', idField: 'AsyncRequestId', idKind: 'STRING' }, r1), 'SUCCESS');
      const mongo = await simInstance('mongodb');
      const r2 = await d.mongodb(mode).InstanceEnableSSL({ InstanceId: mongo, Enable: true });
      assert.ok(Number.isInteger(r2.FlowId), JSON.stringify(r2));
      const r3 = await d.mongodb(mode).SetAccountUserPrivilege({ InstanceId: mongo, UserName: 'u', AuthRole: [{ Mask: 1, NameSpace: 'db1' }] });
      await pollTo('mongodb', String(r3.FlowId), 'success');
      await expectCodeLike(d.mongodb(mode).InstanceEnableSSL({ InstanceId: mongo, Enable: 'maybe' }), /^InvalidParameter/, 'Enable=maybe');
    });
  }

  test('FlowIds, TaskIds and AsyncRequestIds of mongodb share one id space', async () => {
    const inst = await simInstance('mongodb');
    const c = d.mongodb();
    const a = await c.ResetDBInstancePassword({ InstanceId: inst, UserName: 'mongouser', Password: 'Sim-Passw0rd-1' });
    const f = await c.RestartNodes({ InstanceId: inst, NodeIds: ['n'] });
    const t = await c.ModifyInstanceParams({ InstanceId: inst, InstanceParams: [{ Key: 'k', Value: 'v' }] });
    const ids = [Number(a.AsyncRequestId), f.FlowId, t.TaskId];
    assert.equal(new Set(ids).size, 3, `distinct ids: ${ids}`);
    for (const id of ids) await pollTo('mongodb', String(id), 'success');
  });

  test('cdb DescribeTasks: TaskType of the documented kind, Progress 100 at the end, Info a string', async () => {
    const inst = await simInstance('cdb');
    const c = d.cdb();
    const reboot = (await c.RestartDBInstances({ InstanceIds: [inst] })).AsyncRequestId;
    const gtid = (await c.OpenDBInstanceGTID({ InstanceId: inst })).AsyncRequestId;
    const wan = (await c.OpenWanService({ InstanceId: inst })).AsyncRequestId;
    for (const id of [reboot, gtid, wan]) {
      const r = await pollTo('cdb', id, 'SUCCESS');
      assert.equal(typeof r.Info, 'string', JSON.stringify(r));
    }
    const items = (await c.DescribeTasks({ InstanceId: inst })).Items;
    const by = Object.fromEntries(items.map((i) => [i.AsyncRequestId, i]));
    assert.equal(by[reboot].TaskType, 'REBOOT');
    assert.equal(by[gtid].TaskType, 'OPEN GTID');
    assert.equal(by[wan].TaskType, 'OpenWanService', 'no documented kind: the action name');
    for (const i of items) {
      assert.equal(i.Progress, 100, JSON.stringify(i));
      assert.equal(i.TaskStatus, 'SUCCEED');
    }
    const gtidOnly = await c.DescribeTasks({ InstanceId: inst, TaskTypes: [8] });
    assert.deepEqual(gtidOnly.Items.map((i) => i.AsyncRequestId), [gtid]);
  });
});
