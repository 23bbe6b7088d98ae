// Admin API tokens (issue 10, DESIGN.md 7): POST/GET/DELETE /v1/tokens, each route's scopes
// (reader only looks, operator runs tasks and instances, worker calls nothing else, admin all),
// credentials.json's AdminToken as an admin token, kept across restarts and put back on an
// upgraded store, asyncctl token create|list|revoke. On PostgreSQL also two nodes of one store:
// a token made on node A works on node B, revoked it fails on both within a second, and each
// node's AdminToken works on the other.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  MANUAL_STEP, NO_LIMITS, PG_URL, REGION, SLOW, assertAdminError, psql, runAsyncctl, sleep, start,
  startNode,
} from './lib/asyncd.mjs';

const ctl = runAsyncctl;

const T = { timeout: 60000 * SLOW };
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.kill9();
});

async function up(opts = {}) {
  const d = await start({ args: NO_LIMITS, ...opts });
  daemons.push(d);
  return d;
}

async function makeToken(d, scope, name = `it-${scope}`) {
  const t = await d.adminOk('POST', '/v1/tokens', { scope, name }, 201);
  assert.match(t.id, /^tok-[0-9a-f]{16}$/);
  assert.match(t.token, /^[0-9a-f]{64}$/);
  assert.equal(t.scope, scope);
  return t;
}

const taskBody = (uin) => ({ product: 'cdb', region: REGION, uin, type: 'TokensIt', steps: [MANUAL_STEP] });

/** Runs the store's SQL on the daemon's store (psql on PostgreSQL, sqlite3 on the data dir's file). */
function storeSql(d, sql) {
  if (d.storeUrl) return psql(sql, { url: d.storeUrl });
  return new Promise((resolve, reject) => {
    execFile('sqlite3', [path.join(d.dataDir, 'asyncd.db'), sql], (err, out, stderr) => {
      if (err) reject(new Error(`sqlite3 ${sql}: ${err.message}\n${stderr}`));
      else resolve(out);
    });
  });
}


describe('tokens on one node', T, () => {
  let d;
  before(async () => { d = await up(); });

  test('the AdminToken of credentials.json is an admin token; the list never shows a token', async () => {
    const { tokens } = await d.adminOk('GET', '/v1/tokens');
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0].scope, 'admin');
    assert.equal(typeof tokens[0].created, 'string');
    const made = await makeToken(d, 'reader');
    const text = (await d.admin('GET', '/v1/tokens')).text;
    assert.ok(!text.includes(made.token) && !text.includes(d.creds.AdminToken), 'no token text in the list');
    assert.ok(!/hash/.test(text), 'no hash in the list');
    const row = (await d.adminOk('GET', '/v1/tokens')).tokens.find((t) => t.id === made.id);
    assert.deepEqual([row.name, row.scope, row.last_used], ['it-reader', 'reader', null]);
  });

  test('a reader token reads but cannot create a task, an instance or a token', async () => {
    const { token } = await makeToken(d, 'reader');
    for (const p of ['/v1/tasks', '/v1/instances', `/v1/accounts/${d.creds.Uin}`]) {
      const r = await d.admin('GET', p, undefined, { token });
      assert.equal(r.status, 200, `reader GET ${p}: ${r.text}`);
    }
    const denied = [
      ['POST', '/v1/tasks', taskBody(d.creds.Uin)],
      ['POST', '/v1/instances', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: 'cdb-r', dsn: 'mysql://a:b@127.0.0.1:1' }],
      ['POST', '/v1/tokens', { scope: 'admin', name: 'escalate' }],
      ['GET', '/v1/tokens'],
      ['POST', '/v1/accounts', {}],
    ];
    for (const [m, p, body] of denied) {
      const r = await d.admin(m, p, body, { token });
      assertAdminError(r, 403, `reader ${m} ${p}`);
      assert.equal(r.json.error, 'forbidden');
      assert.match(r.json.message, /scope reader/);
    }
    assert.equal((await d.adminOk('GET', '/v1/tasks')).total, 0, 'no task was made');
  });

  test('an operator token runs tasks and instances but not accounts or tokens', async () => {
    const { token } = await makeToken(d, 'operator');
    const made = await d.admin('POST', '/v1/tasks', taskBody(d.creds.Uin), { token });
    assert.equal(made.status, 201, made.text);
    const id = made.json.AsyncRequestId;
    assert.equal((await d.admin('POST', `/v1/tasks/${id}/remove`, {}, { token })).status, 200);
    assert.equal((await d.admin('GET', `/v1/tasks/${id}`, undefined, { token })).json.state, 'removed');
    for (const [m, p, body] of [['POST', '/v1/accounts', {}], ['POST', '/v1/tokens', { scope: 'reader', name: 'x' }],
      ['DELETE', '/v1/tokens/tok-0000000000000000'], ['PUT', `/v1/subaccounts/${d.creds.Uin}/policy`, { allow: [] }]]) {
      assertAdminError(await d.admin(m, p, body, { token }), 403, `operator ${m} ${p}`);
    }
  });

  test('a worker token calls nothing outside /v1/workers/', async () => {
    const { token } = await makeToken(d, 'worker');
    const { AsyncRequestId: id } = await d.adminOk('POST', '/v1/tasks', taskBody(d.creds.Uin), 201);
    for (const [m, p, body] of [['GET', '/v1/tasks'], ['GET', `/v1/tasks/${id}`], ['POST', '/v1/tasks', taskBody(d.creds.Uin)],
      ['POST', `/v1/tasks/${id}/transition`, { to: 'running' }], ['POST', `/v1/tasks/${id}/kill`, {}],
      ['GET', '/v1/instances'], ['GET', '/v1/tokens']]) {
      assertAdminError(await d.admin(m, p, body, { token }), 403, `worker ${m} ${p}`);
    }
    // Past the door: the worker calls are the only ones it may make (404 until they exist).
    const r = await d.admin('POST', '/v1/workers/claim', {}, { token });
    assert.ok(r.status !== 401 && r.status !== 403, `worker POST /v1/workers/claim passes the door: ${r.status}`);
  });

  test('bad input: unknown scope, no name, an unknown or repeated revoke', async () => {
    assertAdminError(await d.admin('POST', '/v1/tokens', { scope: 'root', name: 'x' }), 400, 'unknown scope');
    assertAdminError(await d.admin('POST', '/v1/tokens', { scope: 'reader' }), 400, 'no name');
    assertAdminError(await d.admin('POST', '/v1/tokens', { scope: 'reader', name: 'n'.repeat(200) }), 400, 'long name');
    assertAdminError(await d.admin('DELETE', '/v1/tokens/tok-0000000000000000'), 404, 'unknown id');
    assertAdminError(await d.admin('GET', '/v1/tasks', undefined, { token: 'f'.repeat(64) }), 401, 'unknown token');
    assertAdminError(await d.admin('GET', '/v1/tasks', undefined, { token: null }), 401, 'no token');
  });

  test('a revoked token is refused at once; revoking it again is 404', async () => {
    const t = await makeToken(d, 'operator');
    assert.equal((await d.admin('GET', '/v1/tasks', undefined, { token: t.token })).status, 200);
    assert.deepEqual(await d.adminOk('DELETE', `/v1/tokens/${t.id}`), { id: t.id, revoked: true });
    assertAdminError(await d.admin('GET', '/v1/tasks', undefined, { token: t.token }), 401, 'revoked');
    assertAdminError(await d.admin('DELETE', `/v1/tokens/${t.id}`), 404, 'revoked twice');
    assert.ok(!(await d.adminOk('GET', '/v1/tokens')).tokens.some((x) => x.id === t.id), 'gone from the list');
  });

  test('asyncctl token create | list | revoke, with and without --json', async () => {
    const made = await ctl(d, ['token', 'create', '--scope', 'reader', '--name', 'ctl']);
    assert.equal(made.code, 0, made.stderr);
    const token = made.stdout.trim();
    assert.match(token, /^[0-9a-f]{64}$/, 'plain output is the token alone');
    const id = /token (tok-[0-9a-f]{16})/.exec(made.stderr)[1];
    const list = await ctl(d, ['token', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^id\s+scope\s+name/);
    assert.match(list.stdout, new RegExp(`${id}\\s+reader\\s+ctl`));
    assert.ok(!list.stdout.includes(token));
    const json = await ctl(d, ['--json', 'token', 'create', '--scope', 'worker', '--name', 'ctl-w']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(json.json.scope, 'worker');
    assert.equal((await ctl(d, ['token', 'list', '--json'])).json.tokens.filter((t) => t.name.startsWith('ctl')).length, 2);
    const rev = await ctl(d, ['token', 'revoke', id, '--json']);
    assert.equal(rev.code, 0, rev.stderr);
    assert.deepEqual(rev.json, { id, revoked: true });
    assertAdminError(await d.admin('GET', '/v1/tasks', undefined, { token }), 401, 'revoked through asyncctl');
    const again = await ctl(d, ['token', 'revoke', id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^asyncctl: 404 not_found: /);
    const usage = await ctl(d, ['token', 'create', '--name', 'x']);
    assert.equal(usage.code, 2, 'a missing --scope is a usage error');
  });

  test('restart: tokens stay; a revoked AdminToken stays revoked', async () => {
    const t = await makeToken(d, 'reader', 'survives');
    await d.restart();
    assert.equal((await d.admin('GET', '/v1/tasks', undefined, { token: t.token })).status, 200);
    const admin = (await d.adminOk('GET', '/v1/tokens')).tokens.filter((x) => x.scope === 'admin');
    assert.equal(admin.length, 1, 'the AdminToken is not registered twice');
    const spare = await makeToken(d, 'admin', 'spare');
    assert.equal((await d.admin('DELETE', `/v1/tokens/${admin[0].id}`, undefined, { token: spare.token })).status, 200);
    await d.restart();
    assertAdminError(await d.admin('GET', '/v1/tasks'), 401, 'the revoked AdminToken after a restart');
    assert.equal((await d.admin('GET', '/v1/tasks', undefined, { token: spare.token })).status, 200);
  });
});

describe('upgrade: a store from before tokens', T, () => {
  test('the AdminToken of an existing credentials.json is put in the store at start', async () => {
    const d = await up();
    await d.stop({ keepData: true });
    // Back to schema 2, as an asyncd without tokens left it (schema 4's account_keys undone too:
    // one key per account row; schema 5's index, schema 6's table, schema 7's and 8's columns,
    // schema 9's index and table and schema 10's tables dropped).
    const later = 'DROP TABLE webhook_deliveries; DROP TABLE webhooks; '
      + 'DROP TABLE idempotency_keys; DROP INDEX tasks_finished; '
      + 'DROP INDEX tasks_instance_open; DROP TABLE step_pgroups; DROP INDEX tasks_remote; '
      + 'ALTER TABLE instances DROP COLUMN sim_state; '
      + ['remote_kind', 'remote_step', 'remote_phase', 'remote_lease_no', 'remote_result']
        .map((c) => `ALTER TABLE tasks DROP COLUMN ${c}; `).join('');
    const back = later + (d.storeUrl
      ? 'DROP TABLE tokens; ALTER TABLE accounts ADD COLUMN secret_id TEXT, ADD COLUMN secret_key TEXT;'
        + ' UPDATE accounts a SET secret_id = k.secret_id, secret_key = k.secret_key FROM account_keys k'
        + ' WHERE k.uin = a.uin; ALTER TABLE accounts DROP COLUMN disabled; DROP TABLE account_keys;'
        + ' UPDATE schema_version SET version = 2'
      : 'DROP TABLE tokens; CREATE TABLE a3 (uin TEXT PRIMARY KEY, owner_uin TEXT NOT NULL, app_id TEXT NOT NULL,'
        + ' secret_id TEXT NOT NULL UNIQUE, secret_key TEXT NOT NULL, is_root INTEGER NOT NULL, policy_json TEXT,'
        + ' created_ms INTEGER NOT NULL); INSERT INTO a3 SELECT a.uin, a.owner_uin, a.app_id, k.secret_id,'
        + ' k.secret_key, a.is_root, a.policy_json, a.created_ms FROM accounts a JOIN account_keys k ON k.uin = a.uin;'
        + ' DROP TABLE accounts; DROP TABLE account_keys; ALTER TABLE a3 RENAME TO accounts;'
        + " CREATE INDEX accounts_owner ON accounts(owner_uin); UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    await storeSql(d, back);
    await d.start();
    const r = await d.admin('GET', '/v1/tokens');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.tokens.map((t) => t.scope), ['admin']);
  });
});

const PG_SKIP = PG_URL ? false : 'two nodes need the PostgreSQL store: set ASYNCD_TEST_PG_URL';

describe('tokens on two nodes of one PostgreSQL store', { ...T, skip: PG_SKIP }, () => {
  let a;
  let b;
  before(async () => {
    a = await up({ args: [...NO_LIMITS, '--node-id', 'node-a'] });
    b = await startNode(a, { nodeId: 'node-b' });
    daemons.push(b);
  });

  test('the AdminToken of credentials.json works on both nodes', async () => {
    for (const n of [a, b]) assert.equal((await n.admin('GET', '/v1/tasks')).status, 200);
  });

  test('a token made on node A works on node B; revoked on B, it fails on both within a second', async () => {
    const t = await makeToken(a, 'operator', 'cluster');
    const made = await b.admin('POST', '/v1/tasks', taskBody(a.creds.Uin), { token: t.token });
    assert.equal(made.status, 201, made.text);
    assert.ok((await b.adminOk('GET', '/v1/tokens')).tokens.some((x) => x.id === t.id), 'B lists it');
    const revoked = Date.now();
    await b.adminOk('DELETE', `/v1/tokens/${t.id}`);
    for (const n of [a, b]) {
      let r;
      do {
        r = await n.admin('GET', '/v1/tasks', undefined, { token: t.token });
        if (r.status === 200) await sleep(50);
      } while (r.status === 200 && Date.now() - revoked < 1000);
      assertAdminError(r, 401, `revoked token on ${n === a ? 'A' : 'B'}`);
    }
    assert.ok(Date.now() - revoked < 1000 + 500 * SLOW, `refused within a second (${Date.now() - revoked} ms)`);
  });

  test('a reader token made on B cannot create a task on A (403)', async () => {
    const t = await makeToken(b, 'reader', 'cluster-reader');
    assert.equal((await a.admin('GET', '/v1/tasks', undefined, { token: t.token })).status, 200);
    assertAdminError(await a.admin('POST', '/v1/tasks', taskBody(a.creds.Uin), { token: t.token }), 403, 'reader on A');
  });

  test('a node started with credentials.json of its own: its AdminToken works on the others', async () => {
    // Its own data dir with no credentials.json; only the key that opens the store's secrets.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const key = path.join(a.dataDir, 'secret.key');
    if (fs.existsSync(key)) fs.copyFileSync(key, path.join(dir, 'secret.key'));
    const c = await up({ dataDir: dir, store: a.storeUrl, args: [...NO_LIMITS, '--node-id', 'node-c'] });
    assert.notEqual(c.creds.AdminToken, a.creds.AdminToken);
    assert.equal(c.creds.Uin, a.creds.Uin, 'the same root account');
    for (const n of [a, b]) {
      assert.equal((await n.admin('GET', '/v1/tasks', undefined, { token: c.creds.AdminToken })).status, 200);
    }
    await c.stop();
  });
});
