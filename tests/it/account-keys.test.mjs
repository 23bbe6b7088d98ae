// Key pairs and disabled accounts (issue 10, item 7): an account holds up to 2 key pairs, each
// enabled or disabled, made, listed, disabled, enabled and deleted through the admin API and
// asyncctl; an account (root or sub-account) can be disabled, and a disabled root disables its
// sub-accounts. A request signed with a disabled or deleted key, or by a disabled account, is
// answered AuthFailure.SecretIdNotFound, from the next request on (the key cache and the store
// cache never serve it); a key rotates without downtime. SecretKeys are shown once, never by a
// GET, and are not in clear in the data directory. On PostgreSQL also two nodes: a key disabled
// through node A is refused by node B within ~1.5 s.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  NO_LIMITS, PG_URL, SIGN_MODES, SLOW, assertAdminError, expectCode, filesUnder, runAsyncctl,
  sleep, start, startNode,
} from './lib/asyncd.mjs';

const ctl = runAsyncctl;

const T = { timeout: 60000 * SLOW };
const NOT_FOUND_KEY = 'AuthFailure.SecretIdNotFound';
const daemons = [];
let d;
let task; // a running cdb task of d's root account, described by every check

before(async () => {
  d = await start({ args: NO_LIMITS });
  daemons.push(d);
  task = (await d.taskInState('cdb', 'running')).id;
});
after(async () => {
  for (const x of daemons) if (x.alive()) await x.stop();
});

const creds = (k) => ({ SecretId: k.SecretId, SecretKey: k.SecretKey });

/** The key signs: DescribeAsyncRequestInfo of `id` answers, in every signature style. */
async function works(node, k, what, id = task) {
  for (const mode of SIGN_MODES) {
    const r = await node.describe('cdb', id, { ...mode, creds: creds(k) });
    assert.equal(r.Status, 'RUNNING', `${what} (${mode.name})`);
  }
}

/** The key is refused with AuthFailure.SecretIdNotFound, in every signature style. */
async function refused(node, k, what, id = task) {
  for (const mode of SIGN_MODES) {
    const e = await expectCode(node.describe('cdb', id, { ...mode, creds: creds(k) }), NOT_FOUND_KEY, `${what} (${mode.name})`);
    // One answer for unknown, disabled and deleted: an unauthenticated caller learns nothing more.
    assert.match(e.message, /not found|does not exist/, `${what}: ${e.message}`);
    assert.ok(!e.message.includes(k.SecretKey), 'the message never carries a SecretKey');
  }
}

async function newKey(node, uin) {
  const k = await node.adminOk('POST', `/v1/accounts/${uin}/keys`, {}, 201);
  assert.deepEqual(Object.keys(k).sort(), ['SecretId', 'SecretKey'], JSON.stringify(k));
  assert.match(k.SecretId, /^AKID[0-9A-Za-z]{32}$/);
  assert.match(k.SecretKey, /^[0-9A-Za-z]{32}$/);
  return k;
}

const setKey = (node, uin, sid, status) => node.adminOk('PATCH', `/v1/accounts/${uin}/keys/${sid}`, { status });
const setAccount = (node, uin, disabled) => node.adminOk('PATCH', `/v1/accounts/${uin}`, { disabled });
async function dropKey(node, uin, sid) {
  await setKey(node, uin, sid, 'disabled');
  const r = await node.adminOk('DELETE', `/v1/accounts/${uin}/keys/${sid}`);
  assert.equal(r.deleted, true);
}

/** A fresh root account with a task of its own (so its checks do not touch the others'). */
async function freshRoot(node = d) {
  const acc = await node.createAccount();
  const id = (await node.taskInState('cdb', 'running', { uin: acc.Uin })).id;
  return { acc, id };
}


test('a second key pair works with the SDK beside the first; GET shows SecretIds and statuses, never a SecretKey', T, async () => {
  const { acc, id } = await freshRoot();
  await works(d, acc, 'the first key', id);
  const k2 = await newKey(d, acc.Uin);
  await works(d, k2, 'the second key', id);
  await works(d, acc, 'the first key still', id);
  const list = await d.admin('GET', `/v1/accounts/${acc.Uin}/keys`);
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.Keys.map((k) => [k.SecretId, k.Status]), [[acc.SecretId, 'enabled'], [k2.SecretId, 'enabled']]);
  for (const k of list.json.Keys) {
    assert.deepEqual(Object.keys(k).sort(), ['Created', 'SecretId', 'Status', 'created_ms']);
    assert.match(k.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  const shown = await d.admin('GET', `/v1/accounts/${acc.Uin}`);
  assert.equal(shown.json.Disabled, false);
  assert.equal(shown.json.SecretId, acc.SecretId);
  assert.deepEqual(shown.json.Keys.map((k) => k.SecretId), [acc.SecretId, k2.SecretId]);
  for (const text of [list.text, shown.text]) {
    assert.ok(!/SecretKey/.test(text), `no SecretKey field: ${text}`);
    assert.ok(!text.includes(acc.SecretKey) && !text.includes(k2.SecretKey), 'no SecretKey value');
  }
});

test('a disabled key is refused from the next request on; enabled again it works; deleted it is refused', T, async () => {
  const { acc, id } = await freshRoot();
  const k2 = await newKey(d, acc.Uin);
  await works(d, k2, 'before disabling (and cached)', id);
  const patched = await setKey(d, acc.Uin, k2.SecretId, 'disabled');
  assert.equal(patched.Status, 'disabled');
  assert.equal(patched.SecretId, k2.SecretId);
  await refused(d, k2, 'the disabled key', id);
  await works(d, acc, 'the other key of the account', id);
  await setKey(d, acc.Uin, k2.SecretId, 'enabled');
  await works(d, k2, 'enabled again', id);
  const del = await d.admin('DELETE', `/v1/accounts/${acc.Uin}/keys/${k2.SecretId}`);
  assertAdminError(del, 409, 'deleting an enabled key');
  assert.match(del.json.message, /disable it first/);
  await works(d, k2, 'a refused delete changed nothing', id);
  await dropKey(d, acc.Uin, k2.SecretId);
  await refused(d, k2, 'the deleted key', id);
  const list = await d.adminOk('GET', `/v1/accounts/${acc.Uin}/keys`);
  assert.deepEqual(list.Keys.map((k) => k.SecretId), [acc.SecretId]);
  assertAdminError(await d.admin('DELETE', `/v1/accounts/${acc.Uin}/keys/${k2.SecretId}`), 404, 'deleting it again');
  assertAdminError(await d.admin('PATCH', `/v1/accounts/${acc.Uin}/keys/${k2.SecretId}`, { status: 'enabled' }), 404, 'enabling a deleted key');
});

test('a third key pair is refused with 409; bad bodies 400 naming the field; unknown accounts and keys 404', T, async () => {
  const acc = await d.createAccount();
  const k2 = await newKey(d, acc.Uin);
  const third = await d.admin('POST', `/v1/accounts/${acc.Uin}/keys`, {});
  assertAdminError(third, 409, 'a third key');
  assert.match(third.json.message, /already has 2 key pairs/);
  assert.equal((await d.adminOk('GET', `/v1/accounts/${acc.Uin}/keys`)).Keys.length, 2);
  // A disabled key still counts: it must be deleted to make room.
  await setKey(d, acc.Uin, k2.SecretId, 'disabled');
  assertAdminError(await d.admin('POST', `/v1/accounts/${acc.Uin}/keys`, {}), 409, 'a third key beside a disabled one');
  await d.adminOk('DELETE', `/v1/accounts/${acc.Uin}/keys/${k2.SecretId}`);
  await newKey(d, acc.Uin);

  for (const body of [{}, { status: 'off' }, { status: true }]) {
    const r = await d.admin('PATCH', `/v1/accounts/${acc.Uin}/keys/${acc.SecretId}`, body);
    assertAdminError(r, 400, `key PATCH ${JSON.stringify(body)}`);
    assert.match(r.json.message, /^status: /);
  }
  for (const body of [{}, { disabled: 'yes' }, { disabled: 1 }]) {
    const r = await d.admin('PATCH', `/v1/accounts/${acc.Uin}`, body);
    assertAdminError(r, 400, `account PATCH ${JSON.stringify(body)}`);
    assert.match(r.json.message, /^disabled: /);
  }
  assertAdminError(await d.admin('GET', '/v1/accounts/999999999999/keys'), 404, 'keys of an unknown account');
  assertAdminError(await d.admin('POST', '/v1/accounts/999999999999/keys', {}), 404, 'a key for an unknown account');
  assertAdminError(await d.admin('PATCH', '/v1/accounts/999999999999', { disabled: true }), 404, 'disabling an unknown account');
  assertAdminError(await d.admin('PATCH', `/v1/accounts/${acc.Uin}/keys/AKIDnone`, { status: 'disabled' }), 404, 'an unknown key');
  // Another account's key is not this account's to change.
  assertAdminError(await d.admin('PATCH', `/v1/accounts/${acc.Uin}/keys/${d.creds.SecretId}`, { status: 'disabled' }), 404, 'a foreign key');
  await works(d, d.creds, 'the root key another account tried to disable');
});

test('writes need an admin token; a reader may list keys and read accounts', T, async () => {
  const reader = await d.adminOk('POST', '/v1/tokens', { scope: 'reader', name: 'keys-reader' }, 201);
  const operator = await d.adminOk('POST', '/v1/tokens', { scope: 'operator', name: 'keys-operator' }, 201);
  const uin = d.creds.Uin;
  for (const t of [reader.token, operator.token]) {
    assert.equal((await d.admin('GET', `/v1/accounts/${uin}/keys`, undefined, { token: t })).status, 200);
    assert.equal((await d.admin('GET', `/v1/accounts/${uin}`, undefined, { token: t })).status, 200);
    for (const [m, p, body] of [['POST', `/v1/accounts/${uin}/keys`, {}],
      ['PATCH', `/v1/accounts/${uin}/keys/${d.creds.SecretId}`, { status: 'disabled' }],
      ['DELETE', `/v1/accounts/${uin}/keys/${d.creds.SecretId}`, undefined],
      ['PATCH', `/v1/accounts/${uin}`, { disabled: true }]]) {
      assertAdminError(await d.admin(m, p, body, { token: t }), 403, `${m} ${p} with a non-admin token`);
    }
  }
  await works(d, d.creds, 'nothing changed');
});

test('rotation without downtime: old and new key both work until the old is disabled, then only the new', T, async () => {
  const { acc, id } = await freshRoot();
  let current = creds(acc);
  let failures = 0;
  let calls = 0;
  let stop = false;
  // A client polling all along with whichever key it was last given.
  const client = (async () => {
    while (!stop) {
      try {
        await d.describe('cdb', id, { creds: current });
      } catch (e) {
        failures++;
      }
      calls++;
      await sleep(5);
    }
  })();
  await sleep(100);
  const k2 = await newKey(d, acc.Uin);
  await works(d, acc, 'old key after the new one is made', id);
  await works(d, k2, 'new key', id);
  current = creds(k2); // the clients move to the new key
  await sleep(100);
  await setKey(d, acc.Uin, acc.SecretId, 'disabled');
  await refused(d, acc, 'the old key, disabled', id);
  await works(d, k2, 'the new key after the old is disabled', id);
  await d.adminOk('DELETE', `/v1/accounts/${acc.Uin}/keys/${acc.SecretId}`);
  await sleep(100);
  stop = true;
  await client;
  assert.ok(calls > 10, `the client made ${calls} calls`);
  assert.equal(failures, 0, `no request of the rotating client failed (${calls} calls)`);
  const shown = await d.adminOk('GET', `/v1/accounts/${acc.Uin}`);
  assert.equal(shown.SecretId, k2.SecretId);
  // The freed slot takes the next key of the next rotation.
  await works(d, await newKey(d, acc.Uin), 'the key after that', id);
});

test('a disabled sub-account is refused while its root works; enabled again it works', T, async () => {
  const sub = await d.createSubAccount();
  await d.setPolicy(sub.Uin, ['cdb:*']);
  await works(d, sub, 'the sub-account');
  const patched = await setAccount(d, sub.Uin, true);
  assert.equal(patched.Disabled, true);
  assert.equal(patched.OwnerDisabled, false);
  assert.equal(patched.IsRoot, false);
  await refused(d, sub, 'the disabled sub-account');
  await works(d, d.creds, 'its root account');
  const k2 = await newKey(d, sub.Uin);
  await refused(d, k2, 'a new key of the disabled sub-account');
  await setAccount(d, sub.Uin, false);
  await works(d, sub, 'the sub-account enabled again');
  await works(d, k2, 'its second key');
});

test('a disabled root account is refused and so are its sub-accounts; other accounts are not; enabled again all work', T, async () => {
  const { acc: root, id } = await freshRoot();
  const other = await freshRoot();
  const subs = [await d.createSubAccount(root.Uin), await d.createSubAccount(root.Uin)];
  for (const s of subs) {
    await d.setPolicy(s.Uin, ['cdb:*']);
    await works(d, s, 'a sub-account before', id);
  }
  const k2 = await newKey(d, root.Uin);
  await setAccount(d, root.Uin, true);
  await refused(d, root, 'the disabled root', id);
  await refused(d, k2, 'its second key', id);
  for (const s of subs) await refused(d, s, 'a sub-account of the disabled root', id);
  const sub0 = await d.adminOk('GET', `/v1/accounts/${subs[0].Uin}`);
  assert.equal(sub0.Disabled, false);
  assert.equal(sub0.OwnerDisabled, true);
  await works(d, other.acc, 'another root account', other.id);
  await works(d, d.creds, 'the first root account');
  // A sub-account disabled on its own stays disabled when its root comes back.
  await setAccount(d, subs[1].Uin, true);
  await setAccount(d, root.Uin, false);
  await works(d, root, 'the root enabled again', id);
  await works(d, k2, 'its second key', id);
  await works(d, subs[0], 'its sub-account', id);
  await refused(d, subs[1], 'its sub-account disabled on its own', id);
});

test('GET /v1/instances/{id} shows one instance with its DSN password as ***; 404 for an unknown one', T, async () => {
  const inst = await d.createInstance({ product: 'cdb', dsn: 'mysql://admin:Sekr1t-pw@127.0.0.1:3306' });
  const r = await d.adminOk('GET', `/v1/instances/${inst}`);
  assert.equal(r.instance_id, inst);
  assert.equal(r.product, 'cdb');
  assert.equal(r.dsn, 'mysql://admin:***@127.0.0.1:3306');
  const m = await d.createInstance({ product: 'mongodb' });
  assert.equal((await d.adminOk('GET', `/v1/instances/${m}`)).product, 'mongodb');
  assertAdminError(await d.admin('GET', '/v1/instances/cdb-none'), 404, 'an unknown instance');
  const ctlShow = await ctl(d, ['instance', 'show', inst]);
  assert.equal(ctlShow.code, 0, ctlShow.stderr);
  assert.ok(ctlShow.stdout.includes('mysql://admin:***@127.0.0.1:3306') && !ctlShow.stdout.includes('Sekr1t'), ctlShow.stdout);
});

test('asyncctl account key create|list|disable|enable|delete and account disable|enable', T, async () => {
  const { acc, id } = await freshRoot();
  const made = await ctl(d, ['--json', 'account', 'key', 'create', acc.Uin]);
  assert.equal(made.code, 0, made.stderr);
  const k2 = JSON.parse(made.stdout);
  await works(d, k2, 'a key made by asyncctl', id);
  const list = await ctl(d, ['account', 'key', 'list', acc.Uin]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /SecretId\s+Status\s+Created/);
  assert.ok(list.stdout.includes(acc.SecretId) && list.stdout.includes(k2.SecretId), list.stdout);
  assert.ok(!list.stdout.includes(k2.SecretKey) && !list.stdout.includes(acc.SecretKey), 'no SecretKey in the list');
  const third = await ctl(d, ['account', 'key', 'create', acc.Uin]);
  assert.equal(third.code, 1);
  assert.match(third.stderr, /409/);
  const del = await ctl(d, ['account', 'key', 'delete', acc.Uin, k2.SecretId]);
  assert.equal(del.code, 1, 'deleting an enabled key fails');
  assert.match(del.stderr, /disable it first/);
  assert.equal((await ctl(d, ['account', 'key', 'disable', acc.Uin, k2.SecretId])).code, 0);
  await refused(d, k2, 'disabled by asyncctl', id);
  assert.equal((await ctl(d, ['account', 'key', 'enable', acc.Uin, k2.SecretId])).code, 0);
  await works(d, k2, 'enabled by asyncctl', id);
  assert.equal((await ctl(d, ['account', 'key', 'disable', acc.Uin, k2.SecretId])).code, 0);
  assert.equal((await ctl(d, ['account', 'key', 'delete', acc.Uin, k2.SecretId])).code, 0);
  await refused(d, k2, 'deleted by asyncctl', id);
  const dis = await ctl(d, ['account', 'disable', acc.Uin]);
  assert.equal(dis.code, 0, dis.stderr);
  assert.match(dis.stdout, /Disabled:\s+true/);
  await refused(d, acc, 'disabled by asyncctl', id);
  assert.equal((await ctl(d, ['account', 'enable', acc.Uin])).code, 0);
  await works(d, acc, 'enabled by asyncctl', id);
  const show = await ctl(d, ['account', 'show', acc.Uin]);
  assert.match(show.stdout, /keys:\n/);
  assert.equal((await ctl(d, ['account', 'key', 'disable', acc.Uin])).code, 2, 'a missing SECRET_ID is a usage error');
  const help = await ctl(d, ['account', '--help']);
  assert.equal(help.code, 0);
  for (const v of ['create', 'list', 'disable', 'enable', 'delete']) assert.match(help.stdout, new RegExp(`account key ${v} UIN`));
  assert.match(help.stdout, /account disable UIN/);
});


function pgDump(url) {
  return new Promise((resolve, reject) => {
    execFile('pg_dump', ['--no-owner', '-d', url], { maxBuffer: 256 << 20, encoding: 'buffer' },
      (err, stdout, stderr) => (err ? reject(new Error(`pg_dump: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

test('a new key pair\'s SecretKey is not in clear in the data directory (nor in a pg_dump of the store)', T, async () => {
  const acc = await d.createAccount();
  const k2 = await newKey(d, acc.Uin);
  await works(d, k2, 'the new key', (await d.taskInState('cdb', 'running', { uin: acc.Uin })).id);
  await d.stop({ keepData: true }); // the WAL checkpointed into asyncd.db: every byte on disk
  const sources = filesUnder(d.dataDir)
    .filter((f) => path.basename(f) !== 'credentials.json') // the operator's copy of the first root's keys
    .map((f) => ({ name: f, bytes: fs.readFileSync(f) }));
  if (d.storeUrl) sources.push({ name: 'pg_dump', bytes: await pgDump(d.storeUrl) });
  assert.ok(sources.some((s) => /asyncd\.db$/.test(s.name)) || d.storeUrl, 'the search covers asyncd.db');
  for (const key of [k2.SecretKey, acc.SecretKey]) {
    const found = sources.filter((s) => s.bytes.includes(Buffer.from(key))).map((s) => s.name);
    assert.deepEqual(found, [], `a SecretKey in clear in ${found.join(', ')}`);
  }
  await d.restart();
  await works(d, k2, 'the key after a restart (it opens again)', (await d.taskInState('cdb', 'running', { uin: acc.Uin })).id);
  task = (await d.taskInState('cdb', 'running')).id;
});

test('two nodes on one PostgreSQL store: a key disabled or an account disabled through node A is refused by node B within ~1.5 s',
  { ...T, skip: PG_URL ? false : 'needs the PostgreSQL store (ASYNCD_TEST_PG_URL)' }, async (t) => {
    const A = d;
    const B = await startNode(A, { nodeId: 'node-b' });
    daemons.push(B);
    const { acc, id } = await freshRoot(A);
    const k2 = await newKey(A, acc.Uin);
    await works(B, k2, 'node B signs with a key made through node A', id);
    await works(B, acc, 'and with the first key (now in B\'s cache)', id);

    /** How long until node B refuses k; fails past 1.5 s. */
    async function refusedWithin(k, what) {
      const t0 = Date.now();
      for (;;) {
        try {
          await B.describe('cdb', id, { creds: creds(k) });
        } catch (e) {
          assert.equal(e.code, NOT_FOUND_KEY, `${what}: ${e.message}`);
          return Date.now() - t0;
        }
        assert.ok(Date.now() - t0 < 1500 * SLOW, `${what}: node B still accepts it after ${Date.now() - t0} ms`);
        await sleep(20);
      }
    }
    await setKey(A, acc.Uin, k2.SecretId, 'disabled');
    const ms = await refusedWithin(k2, 'a key disabled through node A');
    await refused(A, k2, 'node A refuses it at once');
    await works(B, acc, 'node B still signs with the other key', id);
    await setKey(A, acc.Uin, k2.SecretId, 'enabled');
    await works(B, k2, 'enabled again: node B accepts it at once (refusals are not cached)', id);
    await setAccount(A, acc.Uin, true);
    const ms2 = await refusedWithin(acc, 'an account disabled through node A');
    await setAccount(A, acc.Uin, false);
    await works(B, acc, 'enabled again', id);
    await dropKey(A, acc.Uin, k2.SecretId);
    await refusedWithin(k2, 'a key deleted through node A');
    t.diagnostic(`node B refused the key after ${ms} ms, the account after ${ms2} ms`);
  });
