// Webhooks (DESIGN.md 7, docs/webhooks.md): subscriptions through the admin API; deliveries from
// the store's durable outbox, signed with HMAC-SHA256 over "<t>.<body>", retried with backoff
// when the receiver refuses them, in order per task, visible with their attempts, and still
// delivered after a restart of asyncd in between (kill -9 included).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ASYNCCTL_BIN, SLOW, sleep, start } from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
const SECRET = 'whsec-it-0123456789abcdef';
const started = [];
const receivers = [];
after(async () => {
  for (const d of started) if (d.alive()) await d.kill9();
  for (const r of receivers) r.server.close();
});

/** A local receiver on 127.0.0.1 that answers 500 to the first `refuse` deliveries (and to all
 * while `down`), checks each one's signature against SECRET, and records what it accepted. */
async function receiver({ refuse = 0 } = {}) {
  const r = { refuse, down: false, seen: 0, accepted: [], refused: [], badSignatures: [] };
  r.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const sig = String(req.headers['x-asyncd-signature'] || '');
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
      const want = m && createHmac('sha256', SECRET).update(`${m[1]}.${raw}`).digest();
      const valid = Boolean(m && timingSafeEqual(want, Buffer.from(m[2], 'hex')));
      const fresh = Boolean(m && Math.abs(Date.now() / 1000 - Number(m[1])) < 300);
      const entry = { body: JSON.parse(raw), headers: req.headers, valid, fresh };
      if (!valid) r.badSignatures.push(entry);
      r.seen++;
      if (r.down || r.seen <= r.refuse) {
        r.refused.push(entry);
        res.writeHead(500).end('not now');
        return;
      }
      r.accepted.push(entry);
      res.writeHead(204).end();
    });
  });
  r.server.listen(0, '127.0.0.1');
  await new Promise((ok) => r.server.once('listening', ok));
  r.url = `http://127.0.0.1:${r.server.address().port}/hook`;
  receivers.push(r);
  return r;
}

async function waitFor(what, fn, ms = 20000 * SLOW) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The accepted deliveries of one task, once per delivery id, in the order they arrived. */
function acceptedFor(r, taskId) {
  const byId = new Map();
  for (const a of r.accepted) if (a.body.AsyncRequestId === taskId && !byId.has(a.body.delivery)) byId.set(a.body.delivery, a);
  return [...byId.values()];
}

async function subscribe(d, body) {
  const w = await d.adminOk('POST', '/v1/webhooks', { secret: SECRET, ...body }, 201);
  assert.match(w.id, /^wh-[0-9a-f]{16}$/);
  assert.equal(w.secret, '***', 'the secret is never shown back');
  return w;
}

test('final-state deliveries: signed, retried after refusals, filtered by product, attempts visible', T, async () => {
  const d = await start({ args: ['--webhook-backoff-ms', '100'] });
  started.push(d);
  const r = await receiver({ refuse: 2 });

  const reader = await d.adminOk('POST', '/v1/tokens', { scope: 'reader', name: 'it-reader' }, 201);
  const denied = await d.admin('POST', '/v1/webhooks', { url: r.url, secret: SECRET }, { token: reader.token });
  assert.equal(denied.status, 403, `a reader may not subscribe: ${denied.text}`);
  const bad = await d.admin('POST', '/v1/webhooks', { url: 'file:///etc/passwd', secret: SECRET });
  assert.equal(bad.status, 400, `only http(s) URLs: ${bad.text}`);

  const w = await subscribe(d, { url: r.url, events: ['final'], product: 'cdb' });
  const list = await d.admin('GET', '/v1/webhooks', undefined, { token: reader.token });
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes(SECRET), 'no answer shows the secret');
  assert.deepEqual(list.json.webhooks.map((h) => [h.id, h.url, h.events, h.product, h.secret]),
    [[w.id, r.url, ['final'], 'cdb', '***']]);

  const ok = (await d.taskInState('cdb', 'success', { info: 'all done' })).id;
  const failed = (await d.taskInState('cdb', 'failed')).id;
  const other = (await d.taskInState('mongodb', 'success')).id; // another product: not sent
  const running = (await d.taskInState('cdb', 'running')).id; // not final: not sent

  await waitFor('both cdb final states delivered', () => acceptedFor(r, ok).length && acceptedFor(r, failed).length);
  assert.ok(d.alive(), 'asyncd is still running');
  assert.deepEqual(r.badSignatures, [], 'every delivery carries a valid signature');
  assert.ok(r.refused.length >= 2, 'the first two deliveries were refused');
  for (const [id, state, status] of [[ok, 'success', 'SUCCESS'], [failed, 'failed', 'FAILED']]) {
    const [a] = acceptedFor(r, id);
    assert.ok(a.fresh, 'the signature time is now');
    assert.equal(a.headers['content-type'], 'application/json');
    assert.equal(a.headers['x-asyncd-delivery'], String(a.body.delivery));
    assert.deepEqual(
      { event: a.body.event, id: a.body.AsyncRequestId, product: a.body.product, uin: a.body.uin, state: a.body.state, status: a.body.status },
      { event: 'final', id, product: 'cdb', uin: d.creds.Uin, state, status });
    assert.equal(typeof a.body.info, 'string');
    assert.match(a.body.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
  }
  assert.equal(acceptedFor(r, ok)[0].body.info, 'all done', 'info is the task Info');
  await sleep(500);
  assert.equal(r.accepted.filter((a) => [other, running].includes(a.body.AsyncRequestId)).length, 0,
    'neither another product nor a non-final state is sent');

  const dl = await d.adminOk('GET', `/v1/webhooks/${w.id}/deliveries`);
  assert.equal(dl.deliveries.length, 2, JSON.stringify(dl));
  for (const x of dl.deliveries) assert.equal(x.state, 'delivered', JSON.stringify(x));
  const attempts = dl.deliveries.reduce((n, x) => n + x.attempts, 0);
  assert.ok(attempts >= 4, `2 refused + 2 delivered attempts are recorded: ${JSON.stringify(dl)}`);
  const retried = dl.deliveries.find((x) => x.attempts > 1);
  assert.ok(retried, 'a delivery that was refused shows its retries');
  assert.equal(retried.attempt_log.length, retried.attempts);
  assert.equal(retried.attempt_log[0].status, 500);
  assert.equal(retried.attempt_log.at(-1).status, 204);
  assert.equal(retried.last_status, 204);
  assert.ok(retried.delivered);
  const one = await d.adminOk('GET', `/v1/webhooks/${w.id}`);
  assert.deepEqual(one.deliveries, { pending: 0, delivering: 0, delivered: 2, failed: 0 });
  // Each attempt is counted in /metrics by its result: this node made all of them.
  const m = (await d.admin('GET', '/metrics')).text;
  const count = (result) => Number((new RegExp(`^asyncd_webhook_deliveries_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(m) || [])[1]);
  assert.equal(count('delivered'), 2, `delivered attempts in /metrics:\n${m}`);
  assert.equal(count('retry'), attempts - 2, 'refused attempts are counted as retries');
  assert.equal(count('failed'), 0);

  if (d.store === 'sqlite') {
    for (const f of ['asyncd.db', 'asyncd.db-wal']) {
      const p = path.join(d.dataDir, f);
      if (fs.existsSync(p)) assert.ok(!fs.readFileSync(p).includes(SECRET), `${f} holds the secret sealed, never in clear`);
    }
  }

  await d.adminOk('DELETE', `/v1/webhooks/${w.id}`);
  assert.equal((await d.admin('GET', `/v1/webhooks/${w.id}`)).status, 404);
});

test('asyncctl webhook create, list, show, deliveries, delete', T, async () => {
  const d = await start({ args: ['--webhook-backoff-ms', '100'] });
  started.push(d);
  const r = await receiver({ refuse: 1 });
  const ctl = (args, input) => {
    const p = spawnSync(ASYNCCTL_BIN, ['--admin', `http://127.0.0.1:${d.adminPort}`, '--data', d.dataDir, ...args],
      { input, encoding: 'utf8', timeout: 20000 * SLOW, env: { PATH: process.env.PATH } });
    assert.equal(p.status, 0, `asyncctl ${args.join(' ')}: ${p.stderr}`);
    return p.stdout;
  };
  const w = JSON.parse(ctl(['--json', 'webhook', 'create', '--url', r.url, '--secret-file', '-', '--events', 'transition', '--product', 'mongodb'], `${SECRET}\n`));
  assert.match(w.id, /^wh-/);
  assert.equal(w.secret, '***');
  assert.deepEqual(w.events, ['transition']);
  const table = ctl(['webhook', 'list']);
  assert.ok(table.includes(w.id) && table.includes(r.url) && !table.includes(SECRET), table);
  const id = (await d.taskInState('mongodb', 'removed')).id;
  await waitFor('the removal delivered', () => acceptedFor(r, id).some((a) => a.body.state === 'removed'));
  assert.deepEqual(r.badSignatures, [], 'the secret read from standard input signs');
  const ds = JSON.parse(ctl(['--json', 'webhook', 'deliveries', w.id, '--task', id])).deliveries;
  assert.deepEqual(ds.map((x) => x.task_state), ['removed', 'initial'], 'newest first, this task only');
  assert.ok(ctl(['webhook', 'deliveries', w.id]).includes('delivered'));
  assert.equal(JSON.parse(ctl(['--json', 'webhook', 'show', w.id])).deliveries.delivered, 2);
  ctl(['webhook', 'delete', w.id]);
  assert.deepEqual(JSON.parse(ctl(['--json', 'webhook', 'list'])).webhooks, []);
});

test('transition deliveries arrive in order for each task, engine claims included', T, async () => {
  const d = await start({ args: ['--webhook-backoff-ms', '100'] });
  started.push(d);
  const r = await receiver({ refuse: 3 });
  await subscribe(d, { url: r.url, events: ['transition'], uin: d.creds.Uin });
  // Run by the engine (the claim writes initial -> running), and driven by hand.
  const auto = await d.adminOk('POST', '/v1/tasks', {
    product: 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin, type: 'ItNoop', on_failure: 'pause',
    steps: [{ name: 'noop', do: { noop: {} } }],
  }, 201);
  const manual = (await d.taskInState('mongodb', 'success')).id;
  const states = (id) => acceptedFor(r, id).map((a) => a.body.state);
  await waitFor('every transition of both tasks', () =>
    states(auto.AsyncRequestId).includes('success') && states(manual).includes('success'));
  assert.deepEqual(states(auto.AsyncRequestId), ['initial', 'running', 'success'], 'engine task, in order');
  assert.deepEqual(states(manual), ['initial', 'running', 'success'], 'admin-driven task, in order');
  assert.ok(acceptedFor(r, manual).every((a) => a.body.event === (a.body.state === 'success' ? 'final' : 'transition')));
  assert.deepEqual(acceptedFor(r, manual).map((a) => a.body.status), ['initial', 'running', 'success'], 'mongodb dialect');
  assert.deepEqual(r.badSignatures, []);
});

test('deliveries pending across a restart (SIGTERM, then kill -9) still arrive', T, async () => {
  const d = await start({ args: ['--webhook-backoff-ms', '200'] });
  started.push(d);
  const r = await receiver();
  r.down = true;
  const w = await subscribe(d, { url: r.url, events: ['final'] });
  const first = (await d.taskInState('cdb', 'success')).id;
  const pendingOf = async () => (await d.adminOk('GET', `/v1/webhooks/${w.id}/deliveries`)).deliveries;
  await waitFor('a refused attempt', async () => (await pendingOf()).some((x) => x.attempts >= 1 && x.state === 'pending'));
  await d.restart(); // SIGTERM while the delivery waits for its retry
  const second = (await d.taskInState('mongodb', 'killed')).id;
  await waitFor('a refused attempt after the restart', async () => {
    const ds = await pendingOf();
    return ds.length === 2 && ds.every((x) => x.attempts >= 1);
  });
  await d.kill9();
  r.down = false;
  await d.start();
  await waitFor('both delivered after the restarts', () => acceptedFor(r, first).length && acceptedFor(r, second).length);
  assert.ok(d.alive());
  assert.equal(acceptedFor(r, second)[0].body.state, 'killed');
  const ds = await pendingOf();
  assert.deepEqual(ds.map((x) => x.state), ['delivered', 'delivered']);
  assert.ok(ds.find((x) => x.task === first).attempts >= 2, 'the first one was retried across restarts');
  assert.deepEqual(r.badSignatures, []);
});
