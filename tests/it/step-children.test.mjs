// What a step child gets (issue 10, "Step children"; docs/flows.md): descriptors 0, 1 and 2 only,
// and an allow-listed environment (PATH, HOME, LANG, LC_*, TZ and the documented ASYNCD_*), even
// while asyncd holds other connections: idle Cloud API and admin sockets, keep-alive SDK calls,
// other tenants' running steps, the store's own connections and, when ASYNCD_TEST_MYSQL_DSN is
// set, other tenants' MySQL statements in flight. asyncd starts with secrets in its environment
// (PGPASSWORD, an admin token, a look-alike of a documented ASYNCD_* name) and none may reach a
// step; nor does the password of the step's own instance DSN: ASYNCD_INSTANCE_DSN is shown
// without it, and the whole DSN is in the 0600 file ASYNCD_INSTANCE_DSN_FILE names (in a 0700
// directory of the step's own), gone once the step has ended. Runs on the suite's store; with
// ASYNCD_TEST_PG_URL set, on SQLite as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { NO_LIMITS, PG_URL, SLOW, sleep, start } from './lib/asyncd.mjs';
import { q, shStep, show, tempDir, waitState, waitTask } from './lib/engine.mjs';

const T = { timeout: 120000 * SLOW };

/** Secrets in asyncd's own environment: none may reach a step, by name or by value. */
const SECRET_ENV = {
  PGPASSWORD: 'topsecret-pgpassword',
  ASYNCD_ADMIN_TOKEN: 'topsecret-admin-token',
  ASYNCD_TOKEN: 'topsecret-asyncctl-token',
  SOME_SECRET: 'topsecret-some-secret',
  DATABASE_URL: 'postgres://app:topsecret-database-url@127.0.0.1:5432/app',
  ASYNCD_TASK_IDX: 'topsecret-lookalike', // a documented name's prefix is not a licence
  ASYNCD_INSTANCE_DSN_OTHER: 'topsecret-lookalike-dsn',
  LC_SECRET: 'topsecret-lc-lookalike',
  LD_LIBRARY_PATH_X: 'topsecret-ld',
};
const LOCALE_ENV = { LANG: 'C.UTF-8', LC_TIME: 'C', LC_MESSAGES: 'C' };
const LC_NAMES = ['LC_ALL', 'LC_COLLATE', 'LC_CTYPE', 'LC_MESSAGES', 'LC_MONETARY', 'LC_NUMERIC',
  'LC_TIME', 'LC_ADDRESS', 'LC_IDENTIFICATION', 'LC_MEASUREMENT', 'LC_NAME', 'LC_PAPER',
  'LC_TELEPHONE'];
const STEP_NAMES = ['ASYNCD_TASK_ID', 'ASYNCD_INSTANCE_ID', 'ASYNCD_INSTANCE_DSN', 'ASYNCD_INSTANCE_DSN_FILE',
  'ASYNCD_DATA_DIR', 'ASYNCD_STEP_INDEX', 'ASYNCD_STEP_NAME', 'ASYNCD_PHASE', 'ASYNCD_ATTEMPT'];
const ALLOWED = new Set(['PATH', 'HOME', 'LANG', 'TZ', ...LC_NAMES, ...STEP_NAMES]);
const OTHER_TENANT_PW = 'othertenant-dsn-password';
const OWN_PW = 'own-instance-pw';

/** The probe: the shell's own descriptors (each glob entry tested after the glob's directory
 * descriptor is closed, so it is not counted; readlink runs after the list is taken), its exact
 * environment from /proc/$$/environ into a file, a copy of its DSN file with the modes of the
 * file and its directory, and the list and the DSN file's path as the step's output. */
function probeStep(outDir) {
  const script = [
    "fds=''; for f in /proc/$$/fd/*; do [ -e \"$f\" ] && fds=\"$fds ${f##*/}\"; done",
    "links=''; for n in $fds; do links=\"$links $n=$(readlink /proc/$$/fd/$n)\"; done",
    `tr '\\0' '\\n' < /proc/$$/environ > ${q(outDir)}/env-$ASYNCD_TASK_ID`,
    'f="$ASYNCD_INSTANCE_DSN_FILE"; modes=\'\'',
    `if [ -n "$f" ]; then cat "$f" > ${q(outDir)}/dsn-$ASYNCD_TASK_ID; modes=$(stat -c %a "$f" "$(dirname "$f")" | tr '\\n' ' '); fi`,
    'printf \'{"fds":"%s","links":"%s","dsnFile":"%s","modes":"%s"}\\n\' "${fds# }" "${links# }" "$f" "${modes% }"',
  ].join('; ');
  return shStep('probe', script);
}

/** Idle connections to a port, held open (and so accepted by asyncd) until closed. */
async function idleSockets(port, n) {
  const socks = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); });
    s.on('error', () => {});
    s.write('POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // a request that never finishes
    socks.push(s);
  }
  return socks;
}

/** Cloud API calls in a loop over the SDK's keep-alive connections, until stop() is called. */
function sdkTraffic(d, creds) {
  let running = true;
  const clients = [d.cdb({ creds }), d.mongodb({ creds })];
  const loops = clients.map(async (c) => {
    while (running) {
      await c.DescribeAsyncRequestInfo({ AsyncRequestId: '1' }).catch(() => {});
      await sleep(20);
    }
  });
  return async () => { running = false; await Promise.all(loops); };
}

/** Another tenant's work, running while the probes start: exec steps that sleep, and MySQL
 * statements that sleep on the run's MariaDB when ASYNCD_TEST_MYSQL_DSN is set. */
async function otherTenantWork(d, other) {
  const ids = [];
  const inst = await d.createInstance({ product: 'cdb', uin: other.Uin,
    dsn: `mysql://other:${OTHER_TENANT_PW}@127.0.0.1:3306` });
  for (let i = 0; i < 3; i++) {
    ids.push(await d.createTask({ product: i % 2 ? 'mongodb' : 'cdb', uin: other.Uin,
      instance_id: i === 0 ? inst : undefined, steps: [shStep('busy', 'sleep 4; echo busy done')] }));
  }
  const mysqlDsn = process.env.ASYNCD_TEST_MYSQL_DSN;
  for (let i = 0; mysqlDsn && i < 3; i++) {
    // one instance each: tasks on one instance run one at a time
    const db = await d.createInstance({ product: 'cdb', uin: other.Uin, dsn: mysqlDsn });
    ids.push(await d.createTask({ product: 'cdb', uin: other.Uin, instance_id: db,
      steps: [{ name: 'sql busy', do: { mysql: { sql: 'SELECT SLEEP(4)', message: 'slept' } } }] }));
  }
  for (const id of ids) {
    await waitTask(d, id, (t) => t.state === 'running', { what: 'running' });
  }
  await sleep(300); // the MySQL connections are open and their statements sent
  return { ids, mysql: Boolean(mysqlDsn) };
}

function parseEnv(text) {
  const env = {};
  for (const line of text.split('\n').filter(Boolean)) {
    const eq = line.indexOf('=');
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** Every string a probe must not see: the secret values, the store URL and its password, the
 * admin token and another tenant's DSN password. */
function forbiddenValues(d) {
  const out = [...Object.values(SECRET_ENV), d.creds.AdminToken, OTHER_TENANT_PW, OWN_PW];
  if (d.storeUrl) {
    out.push(d.storeUrl);
    const pw = new URL(d.storeUrl).password;
    if (pw) out.push(decodeURIComponent(pw));
  }
  if (process.env.ASYNCD_TEST_PG_URL) out.push(process.env.ASYNCD_TEST_PG_URL);
  return out.filter(Boolean);
}

function checkProbe(d, task, env, outDir, { instanceDsn = '', instanceId = '' } = {}) {
  const out = task.steps[0].output;
  assert.ok(out && typeof out.fds === 'string', `the probe reported: ${show(task)}`);
  assert.equal(out.fds, '0 1 2', `only 0, 1 and 2 are open in the step: ${out.links}`);
  for (const name of Object.keys(env)) {
    assert.ok(ALLOWED.has(name), `${name} is not on the allow-list but reached the step`);
  }
  const text = JSON.stringify(env);
  for (const v of forbiddenValues(d)) {
    assert.ok(!text.includes(v), `a secret (${v.slice(0, 12)}...) reached the step's environment`);
  }
  for (const [k, v] of Object.entries(LOCALE_ENV)) assert.equal(env[k], v, `${k} is inherited`);
  assert.equal(env.HOME, d.opts.env.HOME, 'HOME is inherited');
  assert.equal(env.PATH, process.env.PATH, 'PATH is inherited');
  assert.ok(env.TZ, 'TZ is set');
  assert.equal(env.ASYNCD_TASK_ID, task.AsyncRequestId);
  assert.equal(env.ASYNCD_STEP_INDEX, '0');
  assert.equal(env.ASYNCD_STEP_NAME, 'probe');
  assert.equal(env.ASYNCD_PHASE, 'do');
  assert.equal(env.ASYNCD_ATTEMPT, '1');
  assert.equal(env.ASYNCD_DATA_DIR, d.dataDir);
  assert.equal(env.ASYNCD_INSTANCE_DSN, instanceDsn.replace(`:${OWN_PW}@`, '@'), 'the task\'s own DSN only, without its password');
  assert.equal(env.ASYNCD_INSTANCE_ID, instanceId);
  assert.equal(env.ASYNCD_INSTANCE_DSN_FILE, out.dsnFile);
  if (!instanceDsn) {
    assert.equal(out.dsnFile, '', 'no DSN file without an instance');
    return;
  }
  assert.match(out.dsnFile, /^\/.*\/asyncd-step-[A-Za-z0-9]{6}\/dsn$/, 'a file in a directory of the step\'s own');
  assert.equal(out.modes, '600 700', 'the DSN file is 0600, its directory 0700');
  assert.equal(fs.readFileSync(path.join(outDir, `dsn-${task.AsyncRequestId}`), 'utf8'), instanceDsn,
    'the file holds the whole DSN, password included, and nothing else');
  assert.ok(!fs.existsSync(out.dsnFile), `the DSN file ${out.dsnFile} is gone after the step`);
  assert.ok(!fs.existsSync(path.dirname(out.dsnFile)), 'and so is its directory');
}

const stores = PG_URL ? ['postgres', 'sqlite'] : ['sqlite'];
for (const store of stores) {
  test(`a step sees descriptors 0-2 only and no secret while other work is in flight (${store})`, T, async () => {
    const outDir = tempDir('asyncd-it-children-');
    const home = tempDir('asyncd-it-home-');
    const d = await start({
      args: [...NO_LIMITS, '--workers', '8'],
      store: store === 'sqlite' ? 'sqlite' : undefined,
      env: { ...SECRET_ENV, ...LOCALE_ENV, HOME: home },
    });
    assert.equal(d.store, store);
    const held = [];
    let stopSdk = async () => {};
    try {
      const other = await d.createAccount();
      held.push(...await idleSockets(d.port, 3), ...await idleSockets(d.adminPort, 3));
      stopSdk = sdkTraffic(d, { SecretId: other.SecretId, SecretKey: other.SecretKey });
      const busy = await otherTenantWork(d, other);

      const ownDsn = `mysql://probe:${OWN_PW}@127.0.0.1:3306`;
      const inst = await d.createInstance({ product: 'cdb', dsn: ownDsn });
      const probes = [];
      for (let i = 0; i < 4; i++) {
        const withInst = i === 0;
        const id = await d.createTask({ product: i % 2 ? 'mongodb' : 'cdb', instance_id: withInst ? inst : undefined,
          steps: [probeStep(outDir)] });
        probes.push({ id, withInst });
      }
      for (const p of probes) {
        const task = await waitState(d, p.id, ['success', 'failed', 'paused']);
        assert.equal(task.state, 'success', show(task));
        const env = parseEnv(fs.readFileSync(path.join(outDir, `env-${p.id}`), 'utf8'));
        checkProbe(d, { ...task, AsyncRequestId: p.id }, env, outDir,
          p.withInst ? { instanceDsn: ownDsn, instanceId: inst } : {});
      }
      // The other work was really in flight while the probes started.
      for (const id of busy.ids) {
        const t = await d.getTask(id);
        assert.ok(['running', 'success'].includes(t.state), show(t));
      }
      for (const id of busy.ids) {
        const t = await waitState(d, id, ['success', 'failed', 'paused'], { timeoutMs: 30000 });
        assert.equal(t.state, 'success', show(t));
      }
    } finally {
      await stopSdk();
      for (const s of held) s.destroy();
      await d.stop();
    }
  });
}
