// pg-boss side of bench/pgboss.sh: N jobs of 1 ms each, created one send() at a time by PRODUCERS
// concurrent producers (as asyncd's load client creates one task per POST), worked by WORKERS
// pg-boss workers (work() calls) each fetching up to BATCH jobs per poll, polling every POLL_S
// seconds (pg-boss's minimum is 0.5 s; a worker that found jobs polls again at once). Prints
// RESULT lines: create N seconds rate, e2e N seconds rate (first created_on to last completed_on,
// the database's clock), clientcpu seconds.
// Usage: node bench/pgboss.mjs URL N PRODUCERS WORKERS BATCH POLL_S TIMEOUT_S
import PgBoss from 'pg-boss';

const [url, nArg, pArg, wArg, bArg, pollArg, timeoutArg] = process.argv.slice(2);
const N = +nArg, PRODUCERS = +pArg, WORKERS = +wArg, BATCH = +bArg, POLL_S = +pollArg;
const TIMEOUT_MS = +timeoutArg * 1000;
const QUEUE = 'bench';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (msg) => { console.error('pgboss: ' + msg); process.exit(1); };

async function main() {
  // Pool: one connection per worker's fetch plus the producers, as pg-boss recommends sizing it.
  const boss = new PgBoss({ connectionString: url, max: WORKERS + PRODUCERS, supervise: false, schedule: false });
  boss.on('error', (e) => console.error('pgboss error:', e.message));
  await boss.start();
  await boss.createQueue(QUEUE);
  let completed = 0;
  for (let i = 0; i < WORKERS; i++) {
    await boss.work(QUEUE, { batchSize: BATCH, pollingIntervalSeconds: POLL_S }, async (jobs) => {
      await Promise.all(jobs.map(() => sleep(1))); // each job takes 1 ms
      completed += jobs.length;
    });
  }
  const t0 = Date.now();
  let next = 0;
  async function producer() {
    while (next < N) {
      next++;
      await boss.send(QUEUE, { n: next });
    }
  }
  await Promise.all(Array.from({ length: PRODUCERS }, producer));
  const createS = (Date.now() - t0) / 1000;
  // complete() is not awaited by pg-boss's worker: count completions in the table.
  const db = boss.getDb();
  for (;;) {
    const r = await db.executeSql(`SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [QUEUE]);
    if (r.rows[0].n >= N) break;
    if (Date.now() - t0 > TIMEOUT_MS) fail(`timeout: ${r.rows[0].n} of ${N} completed`);
    await sleep(20);
  }
  const r = await db.executeSql(`SELECT extract(epoch FROM max(completed_on) - min(created_on))::float8 AS s,
    count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [QUEUE]);
  const e2eS = r.rows[0].s;
  const cpu = process.cpuUsage();
  console.log(`RESULT create ${N} ${createS.toFixed(3)} ${(N / createS).toFixed(1)}`);
  console.log(`RESULT e2e ${N} ${e2eS.toFixed(3)} ${(N / e2eS).toFixed(1)}`);
  console.log(`RESULT clientcpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)}`);
  await boss.stop({ graceful: false, wait: false });
  process.exit(0);
}
main().catch((e) => fail(e.stack || String(e)));
