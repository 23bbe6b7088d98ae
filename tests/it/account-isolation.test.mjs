// Root accounts never see each other's tasks; each sees its own, in both products.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NOT_FOUND, NO_LIMITS, PRODUCTS, SIGN_MODES, SLOW, expectCode, start } from './lib/asyncd.mjs';

let d;
let A;
let B;
let C;

before(async () => {
  d = await start({ args: NO_LIMITS });
  A = d.creds;
  B = await d.createAccount();
  C = await d.createAccount();
});
after(async () => { await d?.stop(); });

test('POST /v1/accounts mints distinct root accounts with distinct credentials', async () => {
  for (const acct of [B, C]) {
    assert.deepEqual(Object.keys(acct).sort(), ['AppId', 'SecretId', 'SecretKey', 'Uin']);
    for (const v of Object.values(acct)) assert.ok(typeof v === 'string' && v.length > 0);
  }
  for (const k of ['AppId', 'Uin', 'SecretId', 'SecretKey']) {
    assert.equal(new Set([A[k], B[k], C[k]]).size, 3, `${k} differs between accounts`);
  }
  const shown = await d.adminOk('GET', `/v1/accounts/${B.Uin}`);
  assert.equal(shown.Uin, B.Uin);
  assert.equal(shown.AppId, B.AppId);
  assert.equal(shown.IsRoot, true);
  assert.equal(shown.SecretId, B.SecretId);
  assert.ok(!('SecretKey' in shown), 'GET /v1/accounts/{uin} never shows the key');
});

test('account B cannot see A\'s tasks and A cannot see B\'s; each sees its own', { timeout: 60000 * SLOW }, async () => {
  for (const p of PRODUCTS) {
    const a = (await d.taskInState(p, 'running')).id;
    const b = (await d.taskInState(p, 'success', { uin: B.Uin })).id;
    for (const mode of SIGN_MODES) {
      await expectCode(d.describe(p, a, { ...mode, creds: B }), NOT_FOUND[p], `B asks for A's ${p} task (${mode.name})`);
      await expectCode(d.describe(p, b, { ...mode, creds: A }), NOT_FOUND[p], `A asks for B's ${p} task (${mode.name})`);
      await expectCode(d.describe(p, b, { ...mode, creds: C }), NOT_FOUND[p], `C asks for B's ${p} task (${mode.name})`);
      assert.equal((await d.describe(p, b, { ...mode, creds: B })).Status, p === 'cdb' ? 'SUCCESS' : 'success');
      assert.equal((await d.describe(p, a, { ...mode, creds: A })).Status, p === 'cdb' ? 'RUNNING' : 'running');
    }
  }
});

test("the not-found answer for a foreign task is the same as for a task that does not exist", async () => {
  const b = (await d.taskInState('cdb', 'running', { uin: B.Uin })).id;
  let foreign;
  let missing;
  try { await d.describe('cdb', b); } catch (e) { foreign = e; }
  try { await d.describe('cdb', 'aaaaaaaa-bbbbbbbb-cccccccc-dddddddd'); } catch (e) { missing = e; }
  assert.equal(foreign.code, missing.code);
  assert.ok(!foreign.message.includes(B.Uin), 'the message does not reveal the owner');
});

test('a task cannot be created for an unknown account', async () => {
  const r = await d.admin('POST', '/v1/tasks', { product: 'cdb', region: 'ap-guangzhou', uin: '999999999999',
    type: 'X', steps: [{ name: 's', do: { exec: ['/bin/true'] } }] });
  assert.ok(r.status === 400 || r.status === 404, `unknown uin -> 400/404, got ${r.status} ${r.text}`);
});

test("an instance of account B cannot carry a task of account A", async () => {
  const inst = await d.createInstance({ product: 'cdb', uin: B.Uin });
  const r = await d.admin('POST', '/v1/tasks', { product: 'cdb', region: 'ap-guangzhou', uin: A.Uin, instance_id: inst,
    type: 'X', steps: [{ name: 's', do: { exec: ['/bin/true'] } }] });
  assert.ok(r.status >= 400 && r.status < 500, `foreign instance -> 4xx, got ${r.status} ${r.text}`);
});
