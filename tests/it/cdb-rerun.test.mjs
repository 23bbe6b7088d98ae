// Re-runnable CreateAccounts (issue 10 item 8): asyncd dies (the ASYNCD_TEST_CRASH_AFTER_SQL test
// hook: _exit(137) right after a statement succeeds, before its result is recorded) between a
// CREATE USER and the step's recorded result; restarted on the same data dir, the step runs again,
// recognises the account its earlier run made (its done_if: same password hash, same limit, no
// privileges) and the task ends SUCCESS with exactly the intended accounts. An account of the same
// name that is not what the step would have made (another password, or the same password but a
// privilege) is never adopted: CreateAccounts fails on it and leaves it as it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, NO_LIMITS, REPO_ROOT, REGION } from './lib/asyncd.mjs';
import { useMariaDB, uniqueUser, waitFinal } from './lib/mariadb.mjs';

const INST = 'cdb-rerun1';
const PW = 'Passw0rd-rerun-1';
let d;
let db;
const users = new Set();

before(async () => {
  db = await useMariaDB();
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')] });
  await d.adminOk('POST', '/v1/instances',
    { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST, status: 'running', dsn: db.dsn }, 201);
});

after(async () => {
  if (db) {
    for (const u of users) for (const h of await db.hostsOf(u)) await db.sql(`DROP USER IF EXISTS '${u}'@'${h}'`);
  }
  if (d) await d.stop();
  if (db) await db.stop();
});

function user(prefix) {
  const u = uniqueUser(prefix);
  users.add(u);
  return u;
}

/** Restarts asyncd on the same data dir with env (the crash hook set or not). */
async function restartWith(env) {
  if (d.alive()) await d.stop({ keepData: true });
  d.opts.env = env;
  await d.restart();
}

async function steps(id) {
  return (await d.getTask(id)).steps.map((s) => [s.state, s.message]);
}

test('a crash between CREATE USER and its recorded result: the re-run adopts its own account, the task ends SUCCESS', async () => {
  await restartWith({ ASYNCD_TEST_CRASH_AFTER_SQL: 'CREATE USER' });
  const [a, b] = [user('rr_a'), user('rr_b')];
  const r = await d.cdb().CreateAccounts({
    InstanceId: INST, Password: PW, MaxUserConnections: 7,
    Accounts: [{ User: a, Host: '%' }, { User: b, Host: '%' }],
  });
  const keepAlive = setInterval(() => {}, 1000); // the daemon's handles are unref'd
  const exit = await d.exited;
  clearInterval(keepAlive);
  assert.equal(exit.code, 137, `the test hook ended asyncd after the first CREATE USER: ${JSON.stringify(exit)}`);
  assert.deepEqual(await db.hostsOf(a), ['%'], 'the first run created the first account before dying');
  assert.deepEqual(await db.hostsOf(b), [], 'and never reached the second');

  await restartWith({});
  const s = await waitFinal(d.cdb(), r.AsyncRequestId);
  assert.equal(s.Status, 'SUCCESS', `status ${JSON.stringify(s)}; steps ${JSON.stringify(await steps(r.AsyncRequestId))}`);
  for (const u of [a, b]) {
    assert.deepEqual(await db.hostsOf(u), ['%'], `${u} exists exactly once`);
    assert.ok(await db.canLogin(u, PW), `${u} logs in with the task's password`);
    const g = await db.grants(u, '%');
    assert.equal(g.length, 1, `${u} holds nothing but what CREATE USER gave it: ${JSON.stringify(g)}`);
    assert.match(g[0], /^GRANT USAGE ON \*\.\* TO .* WITH MAX_USER_CONNECTIONS 7$/);
  }
  const t = await d.getTask(r.AsyncRequestId);
  assert.equal(t.steps.length, 2);
  assert.ok(t.steps.every((x) => x.state === 'done'), JSON.stringify(t.steps));
});

test('an account of the same name with another password is not adopted: CreateAccounts fails and leaves it alone', async () => {
  const u = user('rr_other');
  await db.sql(`CREATE USER '${u}'@'%' IDENTIFIED BY 'S0meone-elses-pw'`);
  const before = await db.sql(`SELECT authentication_string FROM mysql.user WHERE User = '${u}'`);
  const r = await d.cdb().CreateAccounts({ InstanceId: INST, Password: PW, Accounts: [{ User: u, Host: '%' }] });
  const s = await waitFinal(d.cdb(), r.AsyncRequestId);
  assert.equal(s.Status, 'FAILED', JSON.stringify(s));
  const st = await steps(r.AsyncRequestId);
  assert.match(st[0][1], /MySQL error 1396 .*Operation CREATE USER failed/, JSON.stringify(st));
  assert.ok(!JSON.stringify(st).includes(PW), 'the password never appears in a message');
  assert.deepEqual(await db.sql(`SELECT authentication_string FROM mysql.user WHERE User = '${u}'`), before);
  assert.ok(await db.canLogin(u, 'S0meone-elses-pw'), 'the existing account keeps its password');
  assert.ok(!(await db.canLogin(u, PW)));
});

test('the same password but a privilege the step never grants: not adopted either', async () => {
  const u = user('rr_priv');
  await db.sql(`CREATE USER '${u}'@'%' IDENTIFIED BY '${PW}'; GRANT SELECT ON \`rr_db\`.* TO '${u}'@'%'`);
  const r = await d.cdb().CreateAccounts({ InstanceId: INST, Password: PW, Accounts: [{ User: u, Host: '%' }] });
  const s = await waitFinal(d.cdb(), r.AsyncRequestId);
  assert.equal(s.Status, 'FAILED', JSON.stringify(s));
  assert.match((await steps(r.AsyncRequestId))[0][1], /MySQL error 1396/);
  assert.ok((await db.grants(u, '%')).some((g) => g.includes('`rr_db`')), 'its grant is still there');
});
