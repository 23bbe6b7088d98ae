// asyncctl drives every admin-API call against a real daemon: --json answers parse, human output
// is readable, exit codes say 0 ok / 1 API error / 2 usage / 3 unreachable, the token comes from --data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ASYNCCTL_BIN, MANUAL_STEP, NO_LIMITS, REGION, SLOW, start } from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
let d;
let scratch; // a temp dir with no var/ in it, used as the working directory

/** Runs asyncctl; resolves {code, stdout, stderr, json (stdout parsed, or undefined)}.
 * Unless bare, --admin and --data point at the test daemon. The environment has no ASYNCD_*. */
function ctl(args, { input, env = {}, bare = false, cwd = scratch } = {}) {
  const base = { ...process.env };
  delete base.ASYNCD_TOKEN;
  delete base.ASYNCD_ADMIN;
  const argv = bare ? args : ['--admin', `http://127.0.0.1:${d.adminPort}`, '--data', d.dataDir, ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(ASYNCCTL_BIN, argv, { cwd, env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => { stdout += c; });
    p.stderr.on('data', (c) => { stderr += c; });
    p.on('error', reject);
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000 * SLOW);
    p.on('close', (code) => {
      clearTimeout(timer);
      let json;
      try { json = JSON.parse(stdout); } catch { json = undefined; }
      resolve({ code, stdout, stderr, json });
    });
    p.stdin.on('error', () => { /* asyncctl may exit before reading stdin (EPIPE) */ });
    p.stdin.end(input ?? '');
  });
}

/** asyncctl ... --json that must succeed; returns the parsed answer. */
async function ctlJson(args, opts) {
  const r = await ctl([...args, '--json'], opts);
  assert.equal(r.code, 0, `asyncctl ${args.join(' ')} -> ${r.code}\n${r.stderr}${r.stdout}`);
  assert.ok(r.json !== undefined, `--json prints JSON: ${r.stdout}`);
  return r.json;
}

/** The call must fail with exit 1 and "asyncctl: <status> <error>: <message>" on stderr. */
async function ctlApiError(args, status, opts) {
  const r = await ctl(args, opts);
  assert.equal(r.code, 1, `asyncctl ${args.join(' ')} should exit 1: ${r.code}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, new RegExp(`^asyncctl: ${status} [a-z_]+: \\S`), r.stderr);
  return r;
}

async function ctlUsage(args, opts) {
  const r = await ctl(args, opts);
  assert.equal(r.code, 2, `asyncctl ${args.join(' ')} should exit 2: ${r.code}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, /^asyncctl: /, r.stderr);
  return r;
}

function taskBody(product = 'cdb') {
  return { product, region: REGION, uin: d.creds.Uin, type: 'CtlTask', on_failure: 'pause', steps: [MANUAL_STEP] };
}

async function newTask(product = 'cdb') {
  const file = path.join(scratch, `task-${Date.now()}-${Math.random()}.json`);
  fs.writeFileSync(file, JSON.stringify(taskBody(product)));
  return (await ctlJson(['task', 'create', '--file', file])).AsyncRequestId;
}

/** After an undo verb the task is undoed, or running its undo steps on the way there;
 * task wait follows it to undoed and exits 1, since that is not success. */
async function undoneAfterWait(id, answer) {
  assert.ok(['running', 'undoed'].includes(answer.state), `after undo: ${answer.state}`);
  const w = await ctl(['task', 'wait', id, '--timeout', String(20 * SLOW), '--interval', '0.1']);
  assert.equal(w.code, 1, w.stderr);
  assert.match(w.stderr, /ended undoed/);
}

/** A port nothing listens on. */
async function closedPort() {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

before(async () => {
  d = await start({ args: NO_LIMITS });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncctl-it-'));
});
after(async () => {
  await d?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('asyncctl health, metrics and the admin token', T, () => {
  test('health prints ok, and --json prints {"status":"ok"}', async () => {
    const r = await ctl(['health']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'ok');
    assert.deepEqual(await ctlJson(['health']), { status: 'ok' });
  });

  test('metrics prints the Prometheus text as it came', async () => {
    const r = await ctl(['metrics']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^(# (HELP|TYPE) )?asyncd_/m);
  });

  test('the token is read from --data DIR/credentials.json', async () => {
    const r = await ctlJson(['task', 'list', '--limit', '1']);
    assert.ok(Array.isArray(r.tasks));
  });

  test('without any token the daemon answers 401 and asyncctl exits 1', async () => {
    await ctlApiError(['--admin', `127.0.0.1:${d.adminPort}`, 'task', 'list'], 401, { bare: true });
  });

  test('a wrong --token exits 1 with the 401 on stderr', async () => {
    await ctlApiError(['task', 'list', '--token', 'not-the-token'], 401);
  });

  test('ASYNCD_TOKEN and ASYNCD_ADMIN are used when no option is given', async () => {
    const r = await ctl(['task', 'list', '--json'], {
      bare: true, env: { ASYNCD_TOKEN: d.creds.AdminToken, ASYNCD_ADMIN: `http://127.0.0.1:${d.adminPort}` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(r.json.tasks));
  });

  test('./var/credentials.json in the working directory is the last resort', async () => {
    const cwd = fs.mkdtempSync(path.join(scratch, 'cwd-'));
    fs.mkdirSync(path.join(cwd, 'var'));
    fs.copyFileSync(d.credPath, path.join(cwd, 'var', 'credentials.json'));
    const r = await ctl(['--admin', `http://127.0.0.1:${d.adminPort}`, 'health', '--json'], { bare: true, cwd });
    assert.equal(r.code, 0, r.stderr);
    const l = await ctl(['--admin', `http://127.0.0.1:${d.adminPort}`, 'task', 'list', '--json'], { bare: true, cwd });
    assert.equal(l.code, 0, l.stderr);
  });

  test('an explicit --data without credentials.json is a usage error (exit 2)', async () => {
    await ctlUsage(['--admin', `http://127.0.0.1:${d.adminPort}`, '--data', path.join(scratch, 'nope'), 'task', 'list'], { bare: true });
  });
});

describe('asyncctl accounts and policies', T, () => {
  test('account create prints new keys; account show finds the account without its key', async () => {
    const a = await ctlJson(['account', 'create']);
    for (const k of ['AppId', 'Uin', 'SecretId', 'SecretKey']) assert.equal(typeof a[k], 'string', k);
    const s = await ctlJson(['account', 'show', a.Uin]);
    assert.equal(s.Uin, a.Uin);
    assert.equal(s.SecretId, a.SecretId);
    assert.equal(s.SecretKey, undefined);
    const human = await ctl(['account', 'show', a.Uin]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^Uin: +${a.Uin}$`, 'm'));
  });

  test('account show of an unknown uin exits 1 with the 404', async () => {
    await ctlApiError(['account', 'show', '999999999999'], 404);
  });

  test('subaccount create and policy set; the policy shows on the account', async () => {
    const sub = await ctlJson(['subaccount', 'create', d.creds.Uin]);
    assert.equal(typeof sub.Uin, 'string');
    assert.equal(sub.OwnerUin, d.creds.Uin);
    assert.equal(typeof sub.SecretKey, 'string');
    const allow = ['cdb:*', 'mongodb:DescribeAsyncRequestInfo'];
    const p = await ctlJson(['policy', 'set', sub.Uin, ...allow]);
    assert.deepEqual(p.allow, allow);
    const human = await ctl(['policy', 'set', sub.Uin, ...allow]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /cdb:\*,mongodb:DescribeAsyncRequestInfo/);
    const s = await ctlJson(['account', 'show', sub.Uin]);
    assert.equal(s.IsRoot, false);
    assert.equal(s.OwnerUin, d.creds.Uin);
  });

  test('policy set on a root account exits 1 with the 400', async () => {
    await ctlApiError(['policy', 'set', d.creds.Uin, 'cdb:*'], 400);
  });

  test('subaccount create under an unknown root exits 1 with the 404', async () => {
    await ctlApiError(['subaccount', 'create', '999999999998'], 404);
  });
});

describe('asyncctl instances', T, () => {
  test('instance create, list (table and --json), set', async () => {
    const id = `cdb-ctl${Date.now().toString(16)}`;
    const created = await ctlJson(['instance', 'create', '--product', 'cdb', '--region', REGION,
      '--uin', d.creds.Uin, '--id', id, '--dsn', 'mysql://root:pw@127.0.0.1:3306']);
    assert.equal(created.instance_id, id);
    assert.equal(created.status, 'running', 'status defaults to running');

    const list = await ctlJson(['instance', 'list', '--product', 'cdb', '--uin', d.creds.Uin]);
    assert.ok(list.instances.some((i) => i.instance_id === id), JSON.stringify(list));
    const none = await ctlJson(['instance', 'list', '--product', 'mongodb', '--uin', d.creds.Uin]);
    assert.ok(!none.instances.some((i) => i.instance_id === id));

    const table = await ctl(['instance', 'list', '--product', 'cdb']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^instance_id +product +region +uin +status +dsn$/);
    const row = lines.find((l) => l.startsWith(`${id} `));
    assert.ok(row, table.stdout);
    assert.equal(row.indexOf('cdb '), lines[0].indexOf('product'), 'columns are aligned');

    const set = await ctlJson(['instance', 'set', id, '--status', 'isolated']);
    assert.equal(set.status, 'isolated');
    await ctlApiError(['instance', 'create', '--product', 'cdb', '--region', REGION, '--uin', d.creds.Uin,
      '--id', id, '--dsn', 'mysql://root:pw@127.0.0.1:3306'], 409);
  });

  test('instance create without --dsn and instance set with nothing to change are usage errors', async () => {
    await ctlUsage(['instance', 'create', '--product', 'cdb', '--region', REGION, '--uin', d.creds.Uin, '--id', 'cdb-x']);
    await ctlUsage(['instance', 'set', 'cdb-x']);
  });

  test('instance set of an unknown id exits 1 with the 404', async () => {
    await ctlApiError(['instance', 'set', 'cdb-nosuchinstance', '--status', 'offline'], 404);
  });
});

describe('asyncctl tasks', T, () => {
  test('task create from a file and from stdin; task show (--json and human)', async () => {
    const id = await newTask('cdb');
    const r = await ctl(['task', 'create', '-', '--json'], { input: JSON.stringify(taskBody('mongodb')) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.json.AsyncRequestId, /^[1-9][0-9]*$/);

    const t = await ctlJson(['task', 'show', id]);
    assert.equal(t.AsyncRequestId, id);
    assert.equal(t.state, 'initial');
    assert.equal(t.steps.length, 1);
    assert.ok(t.events.length >= 1);

    const human = await ctl(['task', 'show', id]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^AsyncRequestId: +${id}$`, 'm'));
    assert.match(human.stdout, /^state: +initial$/m);
    assert.match(human.stdout, /^steps:\nindex +name +state/m);
    assert.match(human.stdout, /^0 +manual +pending/m);
    assert.match(human.stdout, /^events:\nseq +at +from +to +node +message$/m);
  });

  test('task create --idempotency-key: run again, the same task; another body, refused', async () => {
    const key = `ctl-${Date.now()}`;
    const body = JSON.stringify(taskBody('cdb'));
    const first = await ctl(['task', 'create', '-', '--idempotency-key', key, '--json'], { input: body });
    assert.equal(first.code, 0, first.stderr);
    const again = await ctl(['task', 'create', '-', '--idempotency-key', key, '--json'], { input: body });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.json.AsyncRequestId, first.json.AsyncRequestId, 'the first task, not a second');
    const other = await ctl(['task', 'create', '-', '--idempotency-key', key], { input: JSON.stringify(taskBody('mongodb')) });
    assert.equal(other.code, 1, `another body with the key is an API error: ${other.stdout}${other.stderr}`);
    assert.match(other.stderr, /409/);
    const bad = await ctl(['task', 'create', '-', '--idempotency-key', ''], { input: body });
    assert.equal(bad.code, 2, bad.stderr);
  });

  test('task create with an array: a batch, ids a line each in order; a refused item makes none', async () => {
    const bodies = [taskBody('cdb'), taskBody('mongodb'), taskBody('cdb')];
    const r = await ctl(['task', 'create', '-'], { input: JSON.stringify(bodies) });
    assert.equal(r.code, 0, r.stderr);
    const ids = r.stdout.trim().split('\n');
    assert.equal(ids.length, 3, r.stdout);
    const products = [];
    for (const id of ids) products.push((await ctlJson(['task', 'show', id])).product);
    assert.deepEqual(products, ['cdb', 'mongodb', 'cdb'], 'the ids in the order of the array');

    const key = `ctl-batch-${Date.now()}`;
    const first = await ctl(['task', 'create', '-', '--idempotency-key', key, '--json'], { input: JSON.stringify(bodies) });
    assert.equal(first.code, 0, first.stderr);
    const again = await ctl(['task', 'create', '-', '--idempotency-key', key, '--json'], { input: JSON.stringify(bodies) });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.json.AsyncRequestIds, first.json.AsyncRequestIds, 'the first run\'s tasks again');

    const before = (await ctlJson(['task', 'list', '--uin', d.creds.Uin])).total;
    const bad = await ctl(['task', 'create', '-'], { input: JSON.stringify([taskBody('cdb'), { ...taskBody(), steps: [] }]) });
    assert.equal(bad.code, 1, `${bad.stdout}${bad.stderr}`);
    assert.match(bad.stderr, /400/);
    assert.match(bad.stderr, /tasks\[1\]/, 'the refused item named');
    assert.equal((await ctlJson(['task', 'list', '--uin', d.creds.Uin])).total, before, 'none of the batch made');
  });

  test('task list filters by product and status, pages with --limit/--offset, prints a table', async () => {
    const a = await newTask('cdb');
    const b = await newTask('cdb');
    const all = await ctlJson(['task', 'list', '--product', 'cdb', '--status', 'initial', '--uin', d.creds.Uin]);
    assert.ok(all.total >= 2);
    assert.ok(all.tasks.every((t) => t.product === 'cdb' && t.state === 'initial'));
    assert.equal(all.tasks[0].AsyncRequestId, b, 'newest first');
    assert.equal(all.tasks[1].AsyncRequestId, a);
    const page = await ctlJson(['task', 'list', '--product', 'cdb', '--status', 'initial', '--limit', '1', '--offset', '1']);
    assert.equal(page.tasks.length, 1);
    assert.equal(page.tasks[0].AsyncRequestId, a);

    const table = await ctl(['task', 'list', '--product', 'cdb', '--limit', '2']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^AsyncRequestId +product +region +uin +instance_id +type +state +current_step +created_at$/m);
    assert.match(table.stdout, new RegExp(`^${b} +cdb +${REGION} `, 'm'));
    assert.match(table.stdout, /^\(2 shown, \d+ in all\)$/m);
  });

  test('task list --instance finds the instance\'s tasks', async () => {
    const inst = await d.createInstance({ product: 'cdb' });
    const id = await d.createTask({ product: 'cdb', instance_id: inst });
    const r = await ctlJson(['task', 'list', '--instance', inst]);
    assert.deepEqual(r.tasks.map((t) => t.AsyncRequestId), [id]);
  });

  test('transition, pause, resume, skip, undo through the CLI', async () => {
    const id = await newTask('cdb');
    let t = await ctlJson(['task', 'transition', id, '--to', 'running', '--message', 'worker took it']);
    assert.equal(t.state, 'running');
    t = await ctlJson(['task', 'pause', id, '--message', 'hold on']);
    assert.equal(t.state, 'paused');
    assert.equal(t.events.at(-1).message, 'hold on');
    t = await ctlJson(['task', 'resume', id]);
    assert.equal(t.state, 'running');
    t = await ctlJson(['task', 'pause', id]);
    t = await ctlJson(['task', 'skip', id]);
    assert.notEqual(t.steps[0].state, 'pending', JSON.stringify(t.steps));
    const other = await newTask('cdb');
    await ctlJson(['task', 'transition', other, '--to', 'running']);
    await ctlJson(['task', 'pause', other]);
    t = await ctlJson(['task', 'undo', other, '--message', 'roll back']);
    await undoneAfterWait(other, t);
  });

  test('undo of a running task is allowed (admin-api.md verb table) and ends undoed', async () => {
    const id = await newTask('cdb');
    await ctlJson(['task', 'transition', id, '--to', 'running']);
    await undoneAfterWait(id, await ctlJson(['task', 'undo', id]));
  });

  test('kill, remove, and transition to success with --step-done --info', async () => {
    const k = await newTask('mongodb');
    await ctlJson(['task', 'transition', k, '--to', 'running']);
    assert.equal((await ctlJson(['task', 'kill', k])).state, 'killed');
    const r = await newTask('cdb');
    const human = await ctl(['task', 'remove', r, '--message', 'not needed']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^state: +removed$/m);
    const s = await newTask('cdb');
    await ctlJson(['task', 'transition', s, '--to', 'running']);
    const t = await ctlJson(['task', 'transition', s, '--to', 'success', '--step-done', '--info', 'Dropped it.']);
    assert.equal(t.state, 'success');
    assert.equal(t.info, 'Dropped it.');
    assert.equal(t.steps[0].state, 'done');
  });

  test('a verb not allowed from the state exits 1 with the 409', async () => {
    const id = await newTask('cdb');
    await ctlJson(['task', 'transition', id, '--to', 'running']);
    await ctlApiError(['task', 'remove', id], 409);
    await ctlApiError(['task', 'resume', id], 409);
    await ctlApiError(['task', 'transition', id, '--to', 'initial'], 409);
  });

  test('task show of an unknown id exits 1 with the 404', async () => {
    await ctlApiError(['task', 'show', 'ffffffff-ffffffff-ffffffff-ffffffff'], 404);
  });

  test('task create with a body the daemon refuses exits 1 with the 400', async () => {
    const file = path.join(scratch, 'bad-task.json');
    fs.writeFileSync(file, JSON.stringify({ ...taskBody(), steps: [] }));
    await ctlApiError(['task', 'create', '--file', file], 400);
  });

  test('task wait: exit 0 for success, 1 for another final state, 1 on --timeout', async () => {
    const ok = await newTask('cdb');
    await ctlJson(['task', 'transition', ok, '--to', 'running']);
    await ctlJson(['task', 'transition', ok, '--to', 'success', '--step-done']);
    const w = await ctl(['task', 'wait', ok]);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stderr, /success/);
    const wj = await ctlJson(['task', 'wait', ok]);
    assert.equal(wj.state, 'success');

    const killed = await newTask('cdb');
    await ctlJson(['task', 'transition', killed, '--to', 'running']);
    await ctlJson(['task', 'kill', killed]);
    const wk = await ctl(['task', 'wait', killed]);
    assert.equal(wk.code, 1);
    assert.match(wk.stderr, /ended killed/);

    const idle = await newTask('cdb');
    const t0 = Date.now();
    const wt = await ctl(['task', 'wait', idle, '--timeout', '1', '--interval', '0.2']);
    assert.equal(wt.code, 1);
    assert.ok(Date.now() - t0 >= 1000, 'waited the whole --timeout');
    assert.match(wt.stderr, /still initial/);
  });
});

describe('asyncctl usage errors and an unreachable daemon', T, () => {
  test('--help exits 0 for the tool, a group and a command', async () => {
    for (const args of [['--help'], ['task', '--help'], ['task', 'list', '--help'], ['health', '--help']]) {
      const r = await ctl(args, { bare: true });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /usage: asyncctl|Commands:/);
    }
  });

  test('bad command lines exit 2', async () => {
    await ctlUsage([], { bare: true });
    await ctlUsage(['frobnicate'], { bare: true });
    await ctlUsage(['task'], { bare: true });
    await ctlUsage(['task', 'frob'], { bare: true });
    await ctlUsage(['task', 'show']);
    await ctlUsage(['task', 'show', 'a', 'b']);
    await ctlUsage(['task', 'list', '--bogus']);
    await ctlUsage(['task', 'list', '--limit', 'many']);
    await ctlUsage(['task', 'list', '--limit']);
    await ctlUsage(['task', 'create']);
    await ctlUsage(['task', 'transition', 'x']);
    await ctlUsage(['policy', 'set', 'x']);
    await ctlUsage(['--frob', 'health'], { bare: true });
  });

  test('a task file that is not JSON exits 2 and names the place', async () => {
    const file = path.join(scratch, 'broken.json');
    fs.writeFileSync(file, '{"product": "cdb",\n');
    const r = await ctlUsage(['task', 'create', '--file', file]);
    assert.match(r.stderr, /broken\.json: line \d+/);
  });

  test('an unreachable admin URL exits 3 and names the URL', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}`;
    for (const args of [['health'], ['task', 'list'], ['task', 'show', 'x']]) {
      const r = await ctl(['--admin', url, '--token', 't', ...args], { bare: true });
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.includes(url), r.stderr);
    }
  });
});
