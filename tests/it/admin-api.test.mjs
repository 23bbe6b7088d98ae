// The admin API contract (docs/admin-api.md): bearer token, error bodies and statuses, the
// verb/transition state machine with 409 reasons, events, steps, list filters and paging,
// accounts, sub-account policies and instances.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CDB_ID_RE, DIALECT, MANUAL_STEP, MONGODB_ID_RE, NO_LIMITS, REGION, SLOW, STATES, assertAdminError,
  httpRequest, start, unknownId,
} from './lib/asyncd.mjs';

const NODE = 'it-node-7';
const T = { timeout: 60000 * SLOW };
let d;

before(async () => { d = await start({ args: [...NO_LIMITS, '--node-id', NODE] }); });
after(async () => { await d?.stop(); });

/** The verb table of docs/admin-api.md: verb -> {from state: to state}. */
const VERBS = {
  pause: { running: 'paused' },
  resume: { paused: 'running' },
  skip: { paused: 'running' },
  undo: { paused: 'undoed', running: 'undoed' },
  kill: { running: 'killed', paused: 'killed' },
  remove: { initial: 'removed' },
};

describe('authentication', T, () => {
  const routes = [
    ['GET', '/v1/tasks'], ['POST', '/v1/tasks', { product: 'cdb' }], ['GET', '/v1/tasks/1234'],
    ['POST', '/v1/tasks/1234/pause', {}], ['POST', '/v1/tasks/1234/transition', { to: 'running' }],
    ['POST', '/v1/accounts', {}], ['GET', '/v1/accounts/1'], ['POST', '/v1/accounts/1/subaccounts', {}],
    ['PUT', '/v1/subaccounts/1/policy', { allow: ['*'] }], ['GET', '/v1/instances'],
    ['POST', '/v1/instances', {}], ['PATCH', '/v1/instances/x', { status: 'running' }],
  ];
  test('401 with an error body without a token, with a wrong one, or with another scheme', async () => {
    const tok = d.creds.AdminToken;
    const variants = [
      [null, {}], ['wrong-token', {}], [`${tok}x`, {}], [tok.slice(0, -1), {}], ['', {}],
      [null, { Authorization: `Basic ${tok}` }], [null, { Authorization: tok }], [null, { Authorization: `Bearer  ${tok}x` }],
    ];
    for (const [method, path, body] of routes) {
      for (const [token, headers] of variants) {
        const r = await d.admin(method, path, body, { token, headers });
        assertAdminError(r, 401, `${method} ${path} token=${token} ${JSON.stringify(headers)}`);
      }
    }
  });

  test('/healthz, /readyz and /metrics need no token', async () => {
    const h = await d.admin('GET', '/healthz', undefined, { token: null });
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok' });
    const ready = await d.admin('GET', '/readyz', undefined, { token: null });
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(ready.json, { status: 'ready' });
    await d.describe('cdb', await d.createTask({ product: 'cdb' }));
    const m = await d.admin('GET', '/metrics', undefined, { token: null });
    assert.equal(m.status, 200);
    assert.match(m.headers['content-type'] || '', /^text\/plain/);
    assert.match(m.text, /^asyncd_requests_total\{[^}]*api="?[^}]*code="?[^}]*\} \d+/m, 'asyncd_requests_total{api,code}');
    assert.match(m.text, /^asyncd_tasks\{[^}]*product="cdb"[^}]*state="initial"[^}]*\} [1-9]\d*/m, 'asyncd_tasks{product,state}');
  });
});

describe('errors of the admin API', T, () => {
  test('404 for unknown tasks, accounts, instances and routes, with an error body', async () => {
    for (const path of [`/v1/tasks/${unknownId('cdb')}`, `/v1/tasks/${unknownId('mongodb')}`, '/v1/tasks/junk',
      `/v1/accounts/424242424242`, '/v1/nope', '/v2/tasks', '/']) {
      assertAdminError(await d.admin('GET', path), 404, path);
    }
    for (const verb of Object.keys(VERBS)) {
      assertAdminError(await d.admin('POST', `/v1/tasks/${unknownId('cdb')}/${verb}`, {}), 404, verb);
    }
    assertAdminError(await d.admin('POST', `/v1/tasks/${unknownId('mongodb')}/transition`, { to: 'running' }), 404, 'transition');
    assertAdminError(await d.admin('PATCH', '/v1/instances/no-such-instance', { status: 'running' }), 404, 'PATCH instance');
    assertAdminError(await d.admin('POST', '/v1/accounts/424242424242/subaccounts', {}), 404, 'sub of unknown root');
  });

  test('an unknown verb is refused (404 or 400) and changes nothing', async () => {
    const id = await d.createTask({ product: 'cdb' });
    const r = await d.admin('POST', `/v1/tasks/${id}/explode`, {});
    assert.ok([400, 404].includes(r.status), `${r.status} ${r.text}`);
    assert.equal((await d.getTask(id)).state, 'initial');
  });

  test('405 for a wrong method on a known route', async () => {
    for (const [method, path] of [['DELETE', '/v1/tasks'], ['PUT', '/v1/tasks'], ['GET', '/v1/accounts'], ['DELETE', '/v1/instances']]) {
      assertAdminError(await d.admin(method, path), 405, `${method} ${path}`);
    }
  });

  test('400 for bodies that are not JSON objects', async () => {
    for (const raw of ['{', 'not json', '[]', '"x"', '', '{"product":"cdb",}', '\xff\xfe']) {
      const r = await d.admin('POST', '/v1/tasks', undefined, { rawBody: Buffer.from(raw, 'latin1'), headers: { 'Content-Type': 'application/json' } });
      assertAdminError(r, 400, JSON.stringify(raw));
    }
  });

  test('413 for a body over the size limit (or the connection closed)', async () => {
    const big = JSON.stringify({ product: 'cdb', region: REGION, uin: d.creds.Uin, type: 'x'.repeat(4 << 20), steps: [MANUAL_STEP] });
    let r;
    try {
      r = await d.admin('POST', '/v1/tasks', undefined, { rawBody: big, headers: { 'Content-Type': 'application/json' } });
    } catch (e) {
      assert.match(e.code || e.message, /ECONNRESET|EPIPE|socket hang up/, 'only a clean close is acceptable');
      return;
    }
    assertAdminError(r, 413, '4 MiB body');
  });

  test('400 for tasks that do not follow the schema', async () => {
    const good = { product: 'cdb', region: REGION, uin: d.creds.Uin, type: 'T', steps: [MANUAL_STEP] };
    const bad = {
      'no product': { ...good, product: undefined },
      'unknown product': { ...good, product: 'redis' },
      'no region': { ...good, region: undefined },
      'no uin': { ...good, uin: undefined },
      'steps missing': { ...good, steps: undefined },
      'steps empty': { ...good, steps: [] },
      'steps not an array': { ...good, steps: { name: 'x' } },
      'step without name': { ...good, steps: [{ do: { exec: ['/bin/true'] } }] },
      'step without do': { ...good, steps: [{ name: 'x' }] },
      'do not an object': { ...good, steps: [{ name: 'x', do: 'rm -rf /' }] },
      'bad on_failure': { ...good, on_failure: 'explode' },
      'retries negative': { ...good, steps: [{ ...MANUAL_STEP, retries: -1 }] },
      'retries a string': { ...good, steps: [{ ...MANUAL_STEP, retries: '2' }] },
      'product a number': { ...good, product: 7 },
    };
    const mongoInst = await d.createInstance({ product: 'mongodb' });
    for (const [what, body] of Object.entries(bad)) {
      const r = await d.admin('POST', '/v1/tasks', JSON.parse(JSON.stringify(body)));
      assertAdminError(r, 400, what);
    }
    for (const [what, instance_id] of [['unknown instance', 'cdb-doesnotexist'], ['instance of another product', mongoInst]]) {
      const r = await d.admin('POST', '/v1/tasks', { ...good, instance_id });
      assert.ok([400, 404].includes(r.status), `${what} -> 400/404, got ${r.status} ${r.text}`);
      assertAdminError(r, r.status, what);
    }
  });
});

describe('tasks', T, () => {
  test('POST /v1/tasks mints ids in each product\'s format and GET shows the documented fields', async () => {
    const inst = await d.createInstance({ product: 'cdb' });
    const id = await d.createTask({ product: 'cdb', instance_id: inst, type: 'CreateAccounts', on_failure: 'undo',
      steps: [{ ...MANUAL_STEP, retries: 2, timeout_s: 60 }, { name: 'second', do: MANUAL_STEP.do }] });
    assert.match(id, CDB_ID_RE);
    assert.match(await d.createTask({ product: 'mongodb' }), MONGODB_ID_RE);
    const t = await d.getTask(id);
    for (const k of ['AsyncRequestId', 'product', 'region', 'uin', 'instance_id', 'type', 'on_failure', 'state', 'Status',
      'info', 'current_step', 'created_ms', 'start_ms', 'end_ms', 'created_at', 'start_time', 'end_time', 'steps', 'events']) {
      assert.ok(k in t, `task has ${k}: ${JSON.stringify(t)}`);
    }
    assert.equal(t.AsyncRequestId, id);
    assert.deepEqual([t.product, t.region, t.uin, t.instance_id, t.type, t.on_failure, t.state, t.Status, t.info, t.current_step],
      ['cdb', REGION, d.creds.Uin, inst, 'CreateAccounts', 'undo', 'initial', 'INITIAL', null, 0]);
    assert.ok(Math.abs(t.created_ms - Date.now()) < 60000);
    assert.equal(t.start_ms, null);
    assert.equal(t.end_ms, null);
    assert.equal(t.steps.length, 2);
    assert.deepEqual([t.steps[0].index, t.steps[0].name, t.steps[0].retries, t.steps[0].timeout_s, t.steps[0].state, t.steps[0].message],
      [0, 'manual', 2, 60, 'pending', null]);
    assert.deepEqual([t.steps[1].index, t.steps[1].retries, t.steps[1].timeout_s], [1, 0, 3600], 'defaults retries 0, timeout_s 3600');
    assert.deepEqual(t.steps[0].do, MANUAL_STEP.do);
    assert.equal(t.events.length, 1);
    assert.deepEqual([t.events[0].seq, t.events[0].from, t.events[0].to, t.events[0].node], [1, null, 'initial', NODE]);
    const plain = await d.getTask(await d.createTask({ product: 'mongodb' }));
    assert.equal(plain.on_failure, 'pause', 'on_failure defaults to pause');
  });

  test('every verb from every state: allowed moves match the table, others answer 409 with a reason and change nothing', async () => {
    for (const [verb, allowed] of Object.entries(VERBS)) {
      for (const from of STATES) {
        const product = verb.length % 2 ? 'cdb' : 'mongodb';
        const { id, task } = await d.taskInState(product, from);
        const r = await d.admin('POST', `/v1/tasks/${id}/${verb}`, { message: `try ${verb}` });
        if (allowed[from]) {
          assert.equal(r.status, 200, `${verb} from ${from}: ${r.text}`);
          assert.equal(r.json.state, allowed[from], `${verb} from ${from}`);
          assert.equal(r.json.Status, DIALECT[allowed[from]][product]);
          const ev = r.json.events.at(-1);
          assert.deepEqual([ev.from, ev.to, ev.node, ev.message], [from, allowed[from], NODE, `try ${verb}`], `${verb} event`);
        } else {
          assertAdminError(r, 409, `${verb} from ${from}`);
          assert.match(r.json.message, new RegExp(`${from}|${verb}`, 'i'), `the reason names the state or verb: ${r.json.message}`);
          const after = await d.getTask(id);
          assert.equal(after.state, from, `${verb} from ${from} left the state alone`);
          assert.equal(after.events.length, task.events.length, `${verb} from ${from} appended no event`);
        }
      }
    }
  });

  test('transition: state-machine moves only; 409 otherwise, 400 for an unknown state', async () => {
    const allowed = {
      initial: ['running', 'removed'],
      running: ['success', 'paused', 'undoed', 'failed', 'killed'],
      paused: ['running', 'undoed', 'failed', 'killed'],
    };
    for (const from of STATES) {
      for (const to of STATES) {
        const { id } = await d.taskInState('cdb', from);
        const r = await d.admin('POST', `/v1/tasks/${id}/transition`, { to, ...(to === 'success' ? { step_done: true } : {}) });
        if ((allowed[from] || []).includes(to)) assert.equal(r.status, 200, `${from} -> ${to}: ${r.text}`);
        else assertAdminError(r, 409, `${from} -> ${to}`);
      }
    }
    const id = await d.createTask({ product: 'cdb' });
    assertAdminError(await d.admin('POST', `/v1/tasks/${id}/transition`, { to: 'exploded' }), 400, 'unknown state');
    assertAdminError(await d.admin('POST', `/v1/tasks/${id}/transition`, {}), 400, 'no to');
    assertAdminError(await d.admin('POST', `/v1/tasks/${id}/transition`, { to: 'RUNNING' }), 400, 'dialect word is not a canonical state');
  });

  test('every transition is recorded as an event with from, to, node, message and time', async () => {
    const id = await d.createTask({ product: 'mongodb', steps: [MANUAL_STEP, { name: 'second', do: MANUAL_STEP.do }] });
    await d.transition(id, 'running', { message: 'm1' });
    await d.verb(id, 'pause', { message: 'm2' });
    await d.verb(id, 'resume', { message: 'm3' });
    await d.transition(id, 'paused', { message: 'm4', info: 'step failed' });
    const skipped = await d.verb(id, 'skip', { message: 'm5' });
    assert.equal(skipped.steps[0].state, 'skipped', 'skip marks the current step skipped');
    assert.equal(skipped.current_step, 1, 'and moves on');
    const done = await d.transition(id, 'success', { message: 'm6', step_done: true, info: 'all good' });
    assert.equal(done.steps[1].state, 'done', 'step_done marks the step done');
    assert.equal(done.info, 'all good');
    const t = await d.getTask(id);
    const got = t.events.map((e) => [e.seq, e.from, e.to, e.node, e.message]);
    assert.deepEqual(got, [
      [1, null, 'initial', NODE, got[0][4]],
      [2, 'initial', 'running', NODE, 'm1'],
      [3, 'running', 'paused', NODE, 'm2'],
      [4, 'paused', 'running', NODE, 'm3'],
      [5, 'running', 'paused', NODE, 'm4'],
      [6, 'paused', 'running', NODE, 'm5'],
      [7, 'running', 'success', NODE, 'm6'],
    ]);
    for (let i = 0; i < t.events.length; i++) {
      const e = t.events[i];
      assert.equal(typeof e.at_ms, 'number');
      assert.equal(e.at, new Date(e.at_ms).toISOString(), 'at is at_ms in ISO UTC');
      if (i) assert.ok(e.at_ms >= t.events[i - 1].at_ms, 'events in time order');
    }
    assert.equal(t.start_ms, t.events[1].at_ms, 'start_ms is the first entry to running');
    assert.equal(t.end_ms, t.events[6].at_ms, 'end_ms is the entry to the final state');
  });

  test('list: filters by product, status, instance_id and uin; paging with limit/offset; total; newest first', async () => {
    const acct = await d.createAccount();
    const inst = await d.createInstance({ product: 'mongodb', uin: acct.Uin });
    const made = [];
    for (let i = 0; i < 7; i++) {
      made.push({ p: 'cdb', s: i % 2 ? 'running' : 'initial', id: (await d.taskInState('cdb', i % 2 ? 'running' : 'initial', { uin: acct.Uin })).id });
    }
    for (let i = 0; i < 5; i++) {
      made.push({ p: 'mongodb', s: 'success', inst, id: (await d.taskInState('mongodb', 'success', { uin: acct.Uin, instance_id: inst })).id });
    }
    const list = async (q) => {
      const r = await d.adminOk('GET', `/v1/tasks?uin=${acct.Uin}${q}`);
      assert.ok(Array.isArray(r.tasks) && typeof r.total === 'number', JSON.stringify(r).slice(0, 300));
      return r;
    };
    const all = await list('');
    assert.equal(all.total, 12);
    assert.deepEqual(all.tasks.map((t) => t.AsyncRequestId), made.map((m) => m.id).reverse(), 'newest first');
    for (const t of all.tasks) {
      assert.ok(!('steps' in t) && !('events' in t), 'list items carry no steps or events');
      assert.equal(t.uin, acct.Uin);
    }
    const cdb = await list('&product=cdb');
    assert.equal(cdb.total, 7);
    assert.ok(cdb.tasks.every((t) => t.product === 'cdb'));
    const running = await list('&product=cdb&status=running');
    assert.equal(running.total, 3);
    assert.ok(running.tasks.every((t) => t.state === 'running'));
    const byInst = await list(`&instance_id=${inst}`);
    assert.equal(byInst.total, 5);
    assert.ok(byInst.tasks.every((t) => t.instance_id === inst && t.Status === 'success'));
    const page1 = await list('&limit=5&offset=0');
    const page2 = await list('&limit=5&offset=5');
    const page3 = await list('&limit=5&offset=10');
    const page4 = await list('&limit=5&offset=20');
    assert.deepEqual([page1.total, page2.total, page3.total, page4.total], [12, 12, 12, 12], 'total ignores paging');
    assert.deepEqual([page1.tasks.length, page2.tasks.length, page3.tasks.length, page4.tasks.length], [5, 5, 2, 0]);
    assert.deepEqual([...page1.tasks, ...page2.tasks, ...page3.tasks].map((t) => t.AsyncRequestId), all.tasks.map((t) => t.AsyncRequestId));
    const none = await list('&status=paused');
    assert.deepEqual([none.total, none.tasks.length], [0, 0]);
    // A status word of either dialect names the states it stands for, as the Cloud API says them.
    assert.equal((await list('&status=RUNNING')).total, 3, 'cdb RUNNING = running');
    assert.equal((await list('&status=success')).total, 5, 'mongodb success = success');
    assert.equal((await list('&status=SUCCESS')).total, 5, 'cdb SUCCESS = success');
    assert.equal((await list('&status=UNDEFINED')).total, 0, 'cdb UNDEFINED = waiting: none');
    // since/until bound the creation time: RFC 3339 or Unix ms.
    const times = all.tasks.map((t) => t.created_ms).sort((x, y) => x - y);
    const mid = times[6];
    assert.equal((await list(`&since=${mid}`)).total, times.filter((t) => t >= mid).length, 'since (ms)');
    assert.equal((await list(`&until=${new Date(mid).toISOString()}`)).total, times.filter((t) => t <= mid).length, 'until (RFC 3339)');
    assert.equal((await list(`&since=${new Date(times[11] + 1000).toISOString()}`)).total, 0, 'since after the newest');
    // type= is a filter, not ignored.
    const type = all.tasks[0].type;
    const byType = await list(`&type=${encodeURIComponent(type)}`);
    assert.ok(byType.total > 0 && byType.tasks.every((t) => t.type === type), `type=${type}`);
    assert.equal((await list('&type=NoSuchType')).total, 0, 'an unknown type matches nothing');
    for (const q of ['&status=Running', '&status=bogus', '&limit=-1', '&limit=abc', '&offset=-3', '&product=redis',
      '&since=yesterday', '&until=2026-13-01T00:00:00Z']) {
      assertAdminError(await d.admin('GET', `/v1/tasks?uin=${acct.Uin}${q}`), 400, q);
    }
  });

  test('list: limit defaults to 100 and never exceeds 1000', async () => {
    const acct = await d.createAccount();
    for (let i = 0; i < 105; i++) await d.createTask({ product: 'mongodb', uin: acct.Uin });
    const r = await d.adminOk('GET', `/v1/tasks?uin=${acct.Uin}`);
    assert.equal(r.total, 105);
    assert.equal(r.tasks.length, 100, 'default limit 100');
    const big = await d.admin('GET', `/v1/tasks?uin=${acct.Uin}&limit=5000`);
    if (big.status === 200) assert.ok(big.json.tasks.length <= 1000);
    else assertAdminError(big, 400, 'limit over 1000');
  });
});

describe('accounts and policies', T, () => {
  test('sub-accounts: created under a root, shown with OwnerUin/IsRoot/Policy, never with a key', async () => {
    const sub = await d.createSubAccount();
    assert.deepEqual(Object.keys(sub).sort(), ['OwnerUin', 'SecretId', 'SecretKey', 'Uin']);
    assert.equal(sub.OwnerUin, d.creds.Uin);
    const shown = await d.adminOk('GET', `/v1/accounts/${sub.Uin}`);
    assert.equal(shown.IsRoot, false);
    assert.equal(shown.OwnerUin, d.creds.Uin);
    assert.equal(shown.AppId, d.creds.AppId, "a sub-account shares its root's AppId");
    assert.ok(!('SecretKey' in shown));
    const set = await d.setPolicy(sub.Uin, ['cdb:*', 'mongodb:DescribeAsyncRequestInfo']);
    assert.deepEqual(set, { Uin: sub.Uin, allow: ['cdb:*', 'mongodb:DescribeAsyncRequestInfo'] });
    const again = await d.adminOk('GET', `/v1/accounts/${sub.Uin}`);
    assert.ok(JSON.stringify(again.Policy).includes('mongodb:DescribeAsyncRequestInfo'), JSON.stringify(again.Policy));
  });

  test('400 for a sub-account of a sub-account, a policy on a root, malformed patterns', async () => {
    const sub = await d.createSubAccount();
    assertAdminError(await d.admin('POST', `/v1/accounts/${sub.Uin}/subaccounts`, {}), 400, 'sub of sub');
    assertAdminError(await d.admin('PUT', `/v1/subaccounts/${d.creds.Uin}/policy`, { allow: ['*'] }), 400, 'policy on root');
    for (const allow of [['cdb'], ['cdb:*:x'], [''], [5], 'cdb:*', [':'], ['cdb:'], [':Describe'], null]) {
      assertAdminError(await d.admin('PUT', `/v1/subaccounts/${sub.Uin}/policy`, { allow }), 400, JSON.stringify(allow));
    }
    assertAdminError(await d.admin('PUT', `/v1/subaccounts/424242424242/policy`, { allow: ['*'] }), 404, 'unknown uin');
  });
});

describe('instances', T, () => {
  test('create, duplicate 409, list with filters, patch status and dsn, bad values 400', async () => {
    const acct = await d.createAccount();
    const body = { product: 'cdb', region: REGION, uin: acct.Uin, instance_id: 'cdb-it-inst1', status: 'running', dsn: 'mysql://u:p@127.0.0.1:3306' };
    const created = await d.adminOk('POST', '/v1/instances', body, 201);
    assert.equal(created.instance_id, 'cdb-it-inst1');
    assertAdminError(await d.admin('POST', '/v1/instances', body), 409, 'duplicate');
    assertAdminError(await d.admin('POST', '/v1/instances', { ...body, product: 'mongodb', dsn: 'mongodb://h' }), 409, 'ids unique across products');
    await d.createInstance({ product: 'mongodb', uin: acct.Uin, instance_id: 'cmgo-it-inst2' });
    const all = await d.adminOk('GET', `/v1/instances?uin=${acct.Uin}`);
    assert.deepEqual(all.instances.map((i) => i.instance_id).sort(), ['cdb-it-inst1', 'cmgo-it-inst2']);
    const onlyCdb = await d.adminOk('GET', `/v1/instances?uin=${acct.Uin}&product=cdb`);
    assert.deepEqual(onlyCdb.instances.map((i) => i.instance_id), ['cdb-it-inst1']);
    const patched = await d.adminOk('PATCH', '/v1/instances/cdb-it-inst1', { status: 'isolated', dsn: 'mysql://u:p@127.0.0.1:3307' });
    assert.equal(patched.status, 'isolated');
    assert.equal(patched.dsn, 'mysql://u:***@127.0.0.1:3307', 'the DSN password is never shown');
    assertAdminError(await d.admin('PATCH', '/v1/instances/cdb-it-inst1', { status: 'exploded' }), 400, 'bad status');
    for (const [what, b] of Object.entries({
      'bad status': { ...body, instance_id: 'cdb-x1', status: 'sleeping' },
      'bad product': { ...body, instance_id: 'cdb-x2', product: 'redis' },
      'no id': { ...body, instance_id: undefined },
      'unknown uin': { ...body, instance_id: 'cdb-x3', uin: '424242424242' },
    })) {
      const r = await d.admin('POST', '/v1/instances', JSON.parse(JSON.stringify(b)));
      assert.ok(r.status === 400 || (what === 'unknown uin' && r.status === 404), `${what}: ${r.status} ${r.text}`);
    }
  });
});

test('the admin listener is plain JSON over HTTP/1.1 keep-alive: 50 sequential calls on one connection', async () => {
  const http = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 50; i++) {
      const r = await new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: d.adminPort, path: '/v1/tasks?limit=1', agent,
          headers: { Authorization: `Bearer ${d.creds.AdminToken}` } }, (res) => {
          let b = '';
          res.on('data', (c) => { b += c; });
          res.on('end', () => resolve({ status: res.statusCode, b }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(r.status, 200);
    }
  } finally {
    agent.destroy();
  }
  assert.equal((await httpRequest({ port: d.adminPort, path: '/healthz' })).status, 200);
});
