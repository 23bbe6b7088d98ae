#!/usr/bin/env node
// A reference worker for asyncd's remote steps (docs/workers.md), on Node's standard library only.
// It claims steps of its kinds in batches (a long-poll), heartbeats each one while it works,
// completes or fails it, and drops a step as soon as asyncd answers 409 (its lease is gone: the
// task was killed, paused, taken back, or claimed again after the lease expired).
//
//   ASYNCD_TOKEN=<worker token> node worker.mjs --url http://127.0.0.1:8081 --kinds echo,sleep
//
// Options: --url (admin listener), --token (or ASYNCD_TOKEN), --name (default worker-<pid>),
// --kinds (comma-separated), --max (steps per claim, 16), --wait (long-poll seconds, 20),
// --lease (lease seconds, 30), --idle-exit S (exit after S seconds with nothing to do; 0 = never),
// --quiet. The built-in handlers are a demo; import runWorker() to plug in your own:
//
//   import { runWorker } from './worker.mjs';
//   await runWorker({ url, token, kinds: ['backup'], handle: async (step, { signal }) => ({ message: 'ok' }) });
//
// A handler gets the claimed step ({task, step, phase, kind, args, input, name, attempt}) and an
// AbortSignal that fires when the lease is lost; it returns {message, output} to complete the
// step, or throws to fail it (the error's message is the step's message).
import http from 'node:http';
import https from 'node:https';
import { pathToFileURL } from 'node:url';

/** One JSON POST; resolves {status, json}. Never throws for an HTTP status. */
export function post(base, token, path, body, { timeoutMs = 90000 } = {}) {
  const url = new URL(path, base);
  const lib = url.protocol === 'https:' ? https : http;
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      method: 'POST',
      agent: keepAlive[url.protocol] ||= new lib.Agent({ keepAlive: true }),
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': payload.length },
      timeout: timeoutMs,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
const keepAlive = {};

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener('abort', () => { clearTimeout(t); reject(new Error('lease lost')); }, { once: true });
});

/** The demo handlers: echo (completes with its args as output), sleep ({ms}), fail ({message}). */
export const demoHandlers = {
  echo: async (step) => ({ message: step.args.message ?? `echoed step ${step.step + 1} of ${step.task}`, output: step.args }),
  sleep: async (step, { signal }) => { await sleep(Number(step.args.ms ?? 1000), signal); return { message: `slept ${step.args.ms ?? 1000} ms` }; },
  fail: async (step) => { throw new Error(step.args.message ?? 'failed on purpose'); },
};

async function demoHandle(step, ctx) {
  const h = demoHandlers[step.kind];
  if (!h) throw new Error(`this worker has no handler for kind ${step.kind}`);
  return h(step, ctx);
}

/** Works one claimed step: heartbeats every lease/3 while the handler runs, then reports. */
async function work(cfg, step, leaseS, stats) {
  const ac = new AbortController();
  let lost = null;
  const beat = setInterval(async () => {
    try {
      const r = await post(cfg.url, cfg.token, '/v1/workers/heartbeat', { token: step.token, lease_s: leaseS });
      if (r.status === 409) { lost = r.json?.message || 'lease lost'; ac.abort(); }
      else if (r.json?.pause_requested && cfg.stopOnPause) { lost = 'pause requested'; ac.abort(); }
    } catch (err) { cfg.log(`heartbeat of ${step.task}: ${err.message}`); }
  }, Math.max(200, (leaseS * 1000) / 3));
  let outcome;
  try {
    const res = (await cfg.handle(step, { signal: ac.signal })) || {};
    outcome = { path: '/v1/workers/complete', body: { token: step.token, message: String(res.message ?? ''), ...(res.output ? { output: res.output } : {}) } };
  } catch (err) {
    outcome = { path: '/v1/workers/fail', body: { token: step.token, message: String(err?.message ?? err) } };
  } finally {
    clearInterval(beat);
  }
  if (lost) { stats.lost++; cfg.log(`dropped step ${step.step + 1} of ${step.task}: ${lost}`); return; }
  const r = await post(cfg.url, cfg.token, outcome.path, outcome.body);
  if (r.status === 200) stats[outcome.path.endsWith('complete') ? 'completed' : 'failed']++;
  else if (r.status === 409) { stats.lost++; cfg.log(`step ${step.step + 1} of ${step.task} was no longer ours: ${r.json?.message}`); }
  else throw new Error(`${outcome.path}: ${r.status} ${r.text}`);
}

/** Claims and works steps until signal aborts or (idleExitS > 0) nothing came for that long.
 * Resolves the counts {claimed, completed, failed, lost}. */
export async function runWorker({ url, token, name = `worker-${process.pid}`, kinds, max = 16, waitS = 20,
  leaseS = 30, idleExitS = 0, handle = demoHandle, signal, log = () => {}, stopOnPause = false }) {
  const cfg = { url, token, handle, log, stopOnPause };
  const stats = { claimed: 0, completed: 0, failed: 0, lost: 0 };
  let idleSince = Date.now();
  while (!signal?.aborted) {
    if (idleExitS > 0 && Date.now() - idleSince >= idleExitS * 1000) break;
    const wait = idleExitS > 0 ? Math.min(waitS, idleExitS) : waitS;
    const r = await post(url, token, '/v1/workers/claim', { worker: name, kinds, max, wait_s: wait, lease_s: leaseS });
    if (r.status !== 200) throw new Error(`claim: ${r.status} ${r.text}`);
    const steps = r.json.steps;
    if (steps.length === 0) continue;
    idleSince = Date.now();
    stats.claimed += steps.length;
    await Promise.all(steps.map((s) => work(cfg, s, r.json.lease_s, stats)));
  }
  return stats;
}

function parseArgs(argv) {
  const o = { url: process.env.ASYNCD_URL || 'http://127.0.0.1:8081', token: process.env.ASYNCD_TOKEN || '', kinds: 'echo,sleep,fail',
    max: 16, wait: 20, lease: 30, idleExit: 0, name: `worker-${process.pid}`, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (k === 'quiet') { o.quiet = true; continue; }
    const key = k.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in o) || i + 1 >= argv.length) throw new Error(`unknown option or missing value: ${argv[i]}`);
    o[key] = argv[++i];
  }
  return o;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const o = parseArgs(process.argv.slice(2));
  if (!o.token) { console.error('worker: give a worker token with --token or ASYNCD_TOKEN'); process.exit(2); }
  const ac = new AbortController();
  process.on('SIGTERM', () => ac.abort());
  process.on('SIGINT', () => ac.abort());
  const t0 = Date.now();
  const log = o.quiet ? () => {} : (m) => console.error(`worker ${o.name}: ${m}`);
  runWorker({ url: o.url, token: o.token, name: o.name, kinds: o.kinds.split(','), max: Number(o.max), waitS: Number(o.wait),
    leaseS: Number(o.lease), idleExitS: Number(o.idleExit), signal: ac.signal, log })
    .then((stats) => {
      console.log(JSON.stringify({ worker: o.name, ...stats, seconds: (Date.now() - t0) / 1000 }));
    })
    .catch((err) => { console.error(`worker ${o.name}: ${err.message}`); process.exit(1); });
}
