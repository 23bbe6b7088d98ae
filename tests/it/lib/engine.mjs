// Helpers for the engine tests: exec steps written as /bin/sh scripts, temp dirs, waiting for a
// task to reach a state (plain polling, so these helpers do not depend on the long-poll under
// test), process checks, event-history checks, the Cloud API view of a task in its own dialect,
// and a keep-alive admin client for creating many tasks quickly.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DIALECT, FINAL_STATES, SLOW, fmtTime, sleep } from './asyncd.mjs';

/** Single-quotes a string for /bin/sh. */
export const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** An exec action running a /bin/sh script. */
export const sh = (script, extra = {}) => ({ exec: ['/bin/sh', '-c', script], ...extra });

/** A step whose do (and optional undo) are /bin/sh scripts. */
export function shStep(name, doScript, { undo, ...rest } = {}) {
  const s = { name, do: sh(doScript), ...rest };
  if (undo !== undefined) s.undo = sh(undo);
  return s;
}

const tmpDirs = [];
/** A fresh temp dir (removed at process exit). */
export function tempDir(prefix = 'asyncd-eng-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}
process.on('exit', () => {
  if (process.env.IT_KEEP_TMP) return;
  for (const d of tmpDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* gone */ }
  }
});

export const readLines = (file) => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0);
  } catch (err) {
    if (err.code === 'ENOENT') return [];
    throw err;
  }
};

/** Polls GET /v1/tasks/{id} every 50 ms until pred(task) holds; returns the task. */
export async function waitTask(d, id, pred, { timeoutMs = 15000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs * SLOW;
  let task;
  for (;;) {
    task = await d.getTask(id);
    if (pred(task)) return task;
    if (Date.now() > deadline) {
      assert.fail(`task ${id}: ${what} not reached within ${timeoutMs * SLOW} ms; task is now:\n`
        + `${JSON.stringify(summary(task), null, 1)}\n${d.stderrTail(3000)}`);
    }
    await sleep(50);
  }
}

/** Waits until the task's canonical state is one of `states` (a string or an array). */
export function waitState(d, id, states, opts = {}) {
  const want = Array.isArray(states) ? states : [states];
  return waitTask(d, id, (t) => want.includes(t.state), { what: `state ${want.join('|')}`, ...opts });
}

/** Waits until a file exists and is not empty; returns its trimmed text. */
export async function waitFile(file, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs * SLOW;
  for (;;) {
    try {
      const t = fs.readFileSync(file, 'utf8').trim();
      if (t) return t;
    } catch { /* not yet */ }
    if (Date.now() > deadline) assert.fail(`${file} did not appear within ${timeoutMs * SLOW} ms`);
    await sleep(25);
  }
}

/** 'alive' | 'zombie' | 'gone' for a pid (a zombie is dead but not reaped by its parent). */
export function procState(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return st === 'Z' || st === 'X' ? 'zombie' : 'alive';
  } catch {
    return 'gone';
  }
}

/** kill -0: true when a signal could still be sent (alive or zombie). */
export function kill0(pid) {
  try { process.kill(pid, 0); return true; } catch (err) { return err.code !== 'ESRCH'; }
}

/** Waits until pred() is true, polling every 20 ms; returns the ms it took or fails. */
export async function waitUntil(pred, timeoutMs, what) {
  const t0 = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** The task without the bulky step definitions (for failure messages). */
export function summary(task) {
  if (!task || typeof task !== 'object') return task;
  const { steps, events, ...rest } = task;
  return {
    ...rest,
    steps: (steps || []).map((s) => ({ index: s.index, name: s.name, state: s.state, message: s.message })),
    events: (events || []).map((e) => `${e.seq} ${e.from}->${e.to} [${e.node}] ${e.message}`),
  };
}

export const show = (task) => JSON.stringify(summary(task), null, 1);

/** Events that moved the task into a final state. */
export const finalEvents = (task) => task.events.filter((e) => FINAL_STATES.includes(e.to));

const CLAIM_RE = /^(?:started; |claimed; |lease of .+ expired; taken over, )lease (\d+)$/;
/** Claim events with their lease numbers, in history order. */
export function claimEvents(task) {
  return task.events.filter((e) => CLAIM_RE.test(e.message || ''))
    .map((e) => ({ ...e, lease: Number(CLAIM_RE.exec(e.message)[1]) }));
}

/** Common checks on a finished task's history: seqs increase by one, exactly one transition into a
 * final state and it is the last state change, claim lease numbers strictly increase, the first
 * claim is "started" from initial. */
export function checkHistory(task, finalState) {
  const ev = task.events;
  assert.ok(Array.isArray(ev) && ev.length > 0, `events present: ${show(task)}`);
  ev.forEach((e, i) => assert.equal(e.seq, ev[0].seq + i, `event seqs are consecutive: ${show(task)}`));
  const fin = finalEvents(task);
  assert.equal(fin.length, 1, `exactly one transition into a final state: ${show(task)}`);
  assert.equal(fin[0].to, finalState, `the final event goes to ${finalState}: ${show(task)}`);
  const moves = ev.filter((e) => e.from !== e.to);
  assert.equal(moves[moves.length - 1], fin[0], `nothing changes state after the final event: ${show(task)}`);
  const claims = claimEvents(task);
  for (let i = 1; i < claims.length; i++) {
    assert.ok(claims[i].lease > claims[i - 1].lease, `lease numbers strictly increase: ${show(task)}`);
  }
  if (claims.length > 0) {
    assert.match(claims[0].message, /^started; lease \d+$/, `first claim says "started": ${show(task)}`);
    assert.equal(claims[0].from, 'initial', `first claim is initial -> running: ${show(task)}`);
  }
  return claims;
}

/** The Cloud API answer for a task in its own product's dialect, checked against the admin view.
 * cdb: Status and Info. mongodb: Status, StartTime (first entry to running) and EndTime (entry to the
 * final state), in a zone `tzOffsetHours` from UTC. Returns the SDK answer. */
export async function checkCloudView(d, task, { tzOffsetHours = 0, info } = {}) {
  const product = task.product;
  const r = await d.describe(product, task.AsyncRequestId);
  const word = DIALECT[task.state][product];
  assert.equal(r.Status, word, `${product} Status for ${task.state}: ${JSON.stringify(r)}\n${show(task)}`);
  if (product === 'cdb') {
    const want = info !== undefined ? info : task.info;
    if (want instanceof RegExp) assert.match(String(r.Info), want, `cdb Info: ${JSON.stringify(r)}`);
    else assert.equal(r.Info, want ?? '', `cdb Info: ${JSON.stringify(r)}\n${show(task)}`);
    assert.equal(typeof r.Info, 'string', 'cdb Info is always a string (pollers dereference it)');
    assert.equal(r.Info, task.info ?? '', 'cdb Info is the admin view\'s info');
  } else {
    const firstRunning = task.events.find((e) => e.to === 'running');
    const fin = finalEvents(task)[0];
    if (firstRunning) {
      assert.equal(task.start_ms, firstRunning.at_ms, `start_ms is the first entry to running: ${show(task)}`);
      assert.equal(r.StartTime, fmtTime(firstRunning.at_ms, tzOffsetHours), `mongodb StartTime: ${JSON.stringify(r)}`);
    } else {
      assert.equal(task.start_ms ?? null, null, `never ran: no start_ms: ${show(task)}`);
      assert.equal(r.StartTime, '', `never ran: StartTime "": ${JSON.stringify(r)}`);
    }
    if (fin) {
      assert.equal(task.end_ms, fin.at_ms, `end_ms is the entry to the final state: ${show(task)}`);
      assert.equal(r.EndTime, fmtTime(fin.at_ms, tzOffsetHours), `mongodb EndTime: ${JSON.stringify(r)}`);
    } else {
      assert.equal(r.EndTime, '', `not final: EndTime "": ${JSON.stringify(r)}`);
    }
  }
  return r;
}

// -------------------------------------------------------------------- keep-alive admin client

/** An admin client over one keep-alive agent (maxSockets), for many quick calls. */
export function keepAliveAdmin(d, maxSockets = 16) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const request = (method, p, body) => new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { Authorization: `Bearer ${d.creds.AdminToken}` };
    if (payload) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = payload.length; }
    const req = http.request({ host: '127.0.0.1', port: d.adminPort, method, path: p, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(30000 * SLOW, () => req.destroy(new Error(`timeout: ${method} ${p}`)));
    req.on('error', reject);
    req.end(payload);
  });
  const ok = async (method, p, body, status = 200) => {
    const r = await request(method, p, body);
    assert.equal(r.status, status, `${method} ${p} -> ${r.status} ${r.text}`);
    return r.json;
  };
  return { request, ok, close: () => agent.destroy() };
}

/** Runs fn over items with at most n in flight; resolves to the results in order. */
export async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
