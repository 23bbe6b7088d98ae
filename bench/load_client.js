// Task-throughput load client shared by bench/tasks.sh and bench/pg.sh.
// Usage: node bench/load_client.js ADMIN[,ADMIN...] TOKEN UIN TASKS CLIENTS TIMEOUT_S
// Creates TASKS one-step no-op tasks with CLIENTS keep-alive connections, round-robin over the
// admin endpoints, waits until every one is success, then reads created_ms/end_ms of each and
// prints RESULT lines (create, e2e, latency, wall, clientcpu).
// BENCH_MODE=create: only create (and print RESULT create); BENCH_MODE=wait: create nothing, wait
// for TASKS tasks to succeed and print e2e as TASKS / (last end_ms - first start_ms), the engine's
// own rate on a backlog created before it started.
'use strict';
const http = require('http');
const [admins, token, uin, nArg, cArg, timeoutArg] = process.argv.slice(2);
const N = +nArg, C = +cArg, TIMEOUT_MS = +timeoutArg * 1000;
// One keep-alive agent per node; tasks are created round-robin, progress is read from the first.
const nodes = admins.split(',').map((a) => ({ host: a.slice(0, a.lastIndexOf(':')), port: +a.slice(a.lastIndexOf(':') + 1),
  agent: new http.Agent({ keepAlive: true, maxSockets: C }) }));
const auth = 'Bearer ' + token;
const MODE = process.env.BENCH_MODE || 'both';

function call(node, method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { Authorization: auth };
    if (data) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = data.length; }
    const req = http.request({ host: node.host, port: node.port, method, path, agent: node.agent, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch (e) { /* keep text */ }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)] : NaN;
const fail = (msg) => { console.error('client: ' + msg); process.exit(1); };

async function main() {
  const task = { product: 'cdb', region: 'ap-guangzhou', uin, type: 'Bench',
    steps: Array.from({ length: Number(process.env.BENCH_N_STEPS || 1) }, (_, i) => (
      { name: `step${i}`, do: process.env.BENCH_STEP ? JSON.parse(process.env.BENCH_STEP) : { exec: ['/bin/true'] } })) };
  // Tasks already in the store (none on the fresh stores the benches use) are not ours to wait for.
  const base = await call(nodes[0], 'GET', '/v1/tasks?status=success&limit=1');
  if (base.status !== 200) fail(`GET /v1/tasks answered ${base.status}: ${base.text}`);
  const already = MODE === 'wait' ? 0 : base.json.total;
  let next = 0, retries = 0;
  const createMs = [];
  const t0 = Date.now();
  async function creator() {
    while (next < N) {
      const node = nodes[next++ % nodes.length];
      for (;;) {
        const s = process.hrtime.bigint();
        const r = await call(node, 'POST', '/v1/tasks', task);
        if (r.status === 201) { createMs.push(Number(process.hrtime.bigint() - s) / 1e6); break; }
        if (r.status === 503 && ++retries < 1000) { await sleep(10); continue; }
        fail(`POST /v1/tasks answered ${r.status}: ${r.text}`);
      }
    }
  }
  if (MODE !== 'wait') await Promise.all(Array.from({ length: C }, creator));
  const tCreated = Date.now();
  if (MODE === 'create') {
    const createS = (tCreated - t0) / 1000;
    createMs.sort((x, y) => x - y);
    console.log(`RESULT create ${N} ${createS.toFixed(3)} ${(N / createS).toFixed(1)} ${pct(createMs, 50).toFixed(2)} ${pct(createMs, 99).toFixed(2)}`);
    for (const n of nodes) n.agent.destroy();
    return;
  }

  // Poll the success count; every so often make sure nothing got stuck in another final state.
  let done = 0, polls = 0;
  for (;;) {
    const r = await call(nodes[0], 'GET', '/v1/tasks?status=success&limit=1');
    if (r.status !== 200) fail(`GET /v1/tasks answered ${r.status}: ${r.text}`);
    done = r.json.total - already;
    if (done >= N) break;
    if (++polls % 50 === 0) {
      for (const st of ['paused', 'failed', 'killed']) {
        const o = await call(nodes[0], 'GET', `/v1/tasks?status=${st}&limit=1`);
        if (o.json && o.json.total) fail(`${o.json.total} task(s) ${st}, e.g. ${JSON.stringify(o.json.tasks[0])}`);
      }
    }
    if (Date.now() - t0 > TIMEOUT_MS) fail(`timeout: ${done} of ${N} success after ${TIMEOUT_MS / 1000} s`);
    await sleep(20);
  }
  const tSeen = Date.now();

  // Each task's own timestamps (server clock, ms).
  const lat = [], wait = [], runMs = [];
  let firstCreated = Infinity, firstStart = Infinity, lastEnd = -Infinity;
  for (let off = 0; off < N; off += 1000) {
    const r = await call(nodes[0], 'GET', `/v1/tasks?limit=1000&offset=${off}`);
    if (r.status !== 200) fail(`GET /v1/tasks answered ${r.status}: ${r.text}`);
    for (const t of r.json.tasks) {
      if (t.state !== 'success') fail(`task ${t.AsyncRequestId} is ${t.state}`);
      firstCreated = Math.min(firstCreated, t.created_ms);
      if (t.start_ms != null) firstStart = Math.min(firstStart, t.start_ms);
      lastEnd = Math.max(lastEnd, t.end_ms);
      lat.push(t.end_ms - t.created_ms);
      if (t.start_ms != null) { wait.push(t.start_ms - t.created_ms); runMs.push(t.end_ms - t.start_ms); }
    }
  }
  if (lat.length !== N) fail(`listed ${lat.length} tasks, expected ${N}`);
  for (const a of [lat, wait, runMs, createMs]) a.sort((x, y) => x - y);
  const cpu = process.cpuUsage();
  const createS = (tCreated - t0) / 1000;
  const e2eS = (lastEnd - (MODE === 'wait' ? firstStart : firstCreated)) / 1000;
  if (MODE !== 'wait') console.log(`RESULT create ${N} ${createS.toFixed(3)} ${(N / createS).toFixed(1)} ${pct(createMs, 50).toFixed(2)} ${pct(createMs, 99).toFixed(2)}`);
  console.log(`RESULT e2e ${N} ${e2eS.toFixed(3)} ${(N / e2eS).toFixed(1)}`);
  console.log(`RESULT latency ${pct(lat, 50)} ${pct(lat, 99)} ${lat[lat.length - 1]} ${pct(wait, 50)} ${pct(wait, 99)} ${pct(runMs, 50)} ${pct(runMs, 99)}`);
  console.log(`RESULT wall ${((tSeen - t0) / 1000).toFixed(3)} ${(N / ((tSeen - t0) / 1000)).toFixed(1)} ${retries}`);
  console.log(`RESULT clientcpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)}`);
  for (const n of nodes) n.agent.destroy();
}
main().catch((e) => fail(e.stack || String(e)));
