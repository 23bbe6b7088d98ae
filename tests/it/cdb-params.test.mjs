// cdb parameters against a real MariaDB, through the official SDK: the catalogue
// (flows/cdb/params/catalog.json, --param-catalog over it) decides what ModifyInstanceParam may
// set; refusals come before any task exists and leave the server unchanged (SHOW GLOBAL VARIABLES
// with the mariadb client); DescribeDefaultParams and DescribeInstanceParams answer in the SDK's
// ParameterDetail shape; and a crash between SET GLOBAL and its recorded result (the
// ASYNCD_TEST_CRASH_AFTER_SQL hook, an _exit(137) as kill -9 leaves it) is followed by a task that
// ends SUCCESS, whose undo restores the value the server had before the task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, NO_LIMITS, REPO_ROOT, REGION, CDB_ID_RE, SLOW, expectCode, sleep } from './lib/asyncd.mjs';
import { useMariaDB, waitFinal, taskTotal } from './lib/mariadb.mjs';

const INST = 'cdb-params1';
const FLOWS = path.join(REPO_ROOT, 'flows');
let d;
let db;
let cdb;
const saved = new Map(); // variable -> value before this file ran, restored at the end

before(async () => {
  db = await useMariaDB();
  for (const v of ['max_connections', 'max_connect_errors', 'wait_timeout', 'long_query_time', 'sql_mode',
    'slow_query_log', 'init_connect', 'net_retry_count']) saved.set(v, await db.variable(v));
  d = await start({ args: [...NO_LIMITS, '--flows', FLOWS] });
  cdb = d.cdb();
  await d.adminOk('POST', '/v1/instances',
    { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: INST, status: 'running', dsn: db.dsn }, 201);
});

after(async () => {
  if (db) {
    for (const [k, v] of saved) {
      const lit = /^-?[0-9.]+$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
      await db.sql(`SET GLOBAL ${k} = ${lit}`);
    }
  }
  if (d && d.alive()) await d.stop();
  if (db) await db.stop();
});

async function modify(list) {
  const r = await cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: list });
  assert.match(r.AsyncRequestId, CDB_ID_RE);
  const s = await waitFinal(cdb, r.AsyncRequestId);
  return { id: r.AsyncRequestId, s, task: await d.getTask(r.AsyncRequestId) };
}

const FIELDS = {
  Name: 'string', ParamType: 'string', Default: 'string', Description: 'string', CurrentValue: 'string',
  NeedReboot: 'number', Max: 'number', Min: 'number', EnumValue: 'object', MaxFunc: 'string',
  MinFunc: 'string', IsNotSupportEdit: 'boolean',
};

function checkShape(items) {
  for (const it of items) {
    assert.deepEqual(Object.keys(it).sort(), Object.keys(FIELDS).sort(), `every ParameterDetail field: ${JSON.stringify(it)}`);
    for (const [k, t] of Object.entries(FIELDS)) assert.equal(typeof it[k], t, `${it.Name}.${k} is a ${t}`);
    assert.ok(Array.isArray(it.EnumValue));
    assert.ok(['integer', 'enum', 'float', 'string', 'func'].includes(it.ParamType), `${it.Name}: ${it.ParamType}`);
  }
}

test('DescribeDefaultParams answers the catalogue in the SDK shape', async () => {
  const r = await cdb.DescribeDefaultParams({ EngineVersion: '5.7' });
  assert.equal(r.TotalCount, r.Items.length);
  assert.ok(r.TotalCount >= 20, `a useful catalogue: ${r.TotalCount}`);
  checkShape(r.Items);
  const by = Object.fromEntries(r.Items.map((x) => [x.Name, x]));
  assert.deepEqual({ ...by.max_connections, Description: '' }, {
    Name: 'max_connections', ParamType: 'integer', Default: '151', Description: '', CurrentValue: '151',
    NeedReboot: 0, Max: 100000, Min: 10, EnumValue: [], MaxFunc: '', MinFunc: '', IsNotSupportEdit: false,
  });
  assert.deepEqual(by.slow_query_log.EnumValue, ['ON', 'OFF']);
  assert.equal(by.sql_mode.ParamType, 'enum');
  assert.equal(by.long_query_time.ParamType, 'float');
  assert.equal(by.lower_case_table_names.NeedReboot, 1);
  assert.equal(by.lower_case_table_names.IsNotSupportEdit, true);
  for (const bad of ['init_connect', 'init_file', 'secure_file_priv', 'general_log_file', 'plugin_dir', 'log_bin_basename', 'init_slave']) {
    assert.equal(by[bad], undefined, `${bad} is not settable`);
  }
  await expectCode(cdb.DescribeDefaultParams({ EngineVersion: '9.9' }), 'InvalidParameterValue', 'EngineVersion 9.9');
  await expectCode(cdb.DescribeDefaultParams({ TemplateType: 'FAST' }), 'InvalidParameterValue', 'TemplateType');
  await expectCode(cdb.DescribeDefaultParams({ Foo: 1 }), 'UnknownParameter', 'Foo');
});

test('uncatalogued parameters and values out of range are refused before a task exists; the server is unchanged', async () => {
  const vars = ['init_connect', 'max_connections', 'slow_query_log', 'sql_mode', 'long_query_time', 'net_retry_count'];
  const before = Object.fromEntries(await Promise.all(vars.map(async (v) => [v, await db.variable(v)])));
  const tasks = await taskTotal(d);
  const cases = [
    [[{ Name: 'init_connect', CurrentValue: 'DROP DATABASE mysql' }], /init_connect is not one that can be modified/],
    [[{ Name: 'init_file', CurrentValue: '/etc/passwd' }], /init_file is not one/],
    [[{ Name: 'no_such_variable_it', CurrentValue: '1' }], /no_such_variable_it is not one/],
    [[{ Name: 'max_connections', CurrentValue: '100001' }], /max_connections takes an integer from 10 to 100000, not "100001"/],
    [[{ Name: 'max_connections', CurrentValue: '5' }], /from 10 to 100000/],
    [[{ Name: 'max_connections', CurrentValue: '200; DROP DATABASE x' }], /max_connections takes an integer/],
    [[{ Name: 'long_query_time', CurrentValue: '3601' }], /long_query_time takes a number from 0 to 3600/],
    [[{ Name: 'slow_query_log', CurrentValue: 'MAYBE' }], /slow_query_log takes one of ON, OFF/],
    [[{ Name: 'sql_mode', CurrentValue: 'STRICT_TRANS_TABLES,ANSI_QUOTES' }], /sql_mode does not take "ANSI_QUOTES": it takes a comma-separated list of ALLOW_INVALID_DATES/],
    [[{ Name: 'lower_case_table_names', CurrentValue: '1' }], /lower_case_table_names takes effect only after a restart/],
    // one bad item refuses the whole request: the good first one is not applied either
    [[{ Name: 'max_connections', CurrentValue: '300' }, { Name: 'net_retry_count', CurrentValue: 'bad value' }], /net_retry_count takes an integer/],
  ];
  for (const [list, re] of cases) {
    const e = await expectCode(cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: list }), 'InvalidParameterValue', JSON.stringify(list));
    assert.match(e.message, re, JSON.stringify(list));
  }
  assert.equal(await taskTotal(d), tasks, 'no task was created');
  for (const v of vars) assert.equal(await db.variable(v), before[v], `${v} unchanged`);
});

test('a catalogued in-range value ends SUCCESS, is live, and DescribeInstanceParams shows it', async () => {
  const want = String(Number(await db.variable('max_connections')) === 333 ? 334 : 333);
  const t = await modify([{ Name: 'max_connections', CurrentValue: want },
    { Name: 'long_query_time', CurrentValue: '2.5' }, { Name: 'sql_mode', CurrentValue: 'STRICT_ALL_TABLES,NO_ZERO_DATE' }]);
  assert.equal(t.s.Status, 'SUCCESS', JSON.stringify(t.task.steps.map((s) => [s.name, s.state, s.message])));
  assert.equal(t.s.Info, 'Set the parameter sql_mode to STRICT_ALL_TABLES,NO_ZERO_DATE successfully.');
  assert.deepEqual(t.task.steps.map((s) => s.name), ['capture max_connections', 'capture long_query_time',
    'capture sql_mode', `set max_connections = ${want}`, 'set long_query_time = 2.5', 'set sql_mode = STRICT_ALL_TABLES,NO_ZERO_DATE']);
  assert.equal(await db.variable('max_connections'), want);
  assert.equal(await db.variable('long_query_time'), '2.500000');
  assert.equal(await db.variable('sql_mode'), 'STRICT_ALL_TABLES,NO_ZERO_DATE');

  const r = await cdb.DescribeInstanceParams({ InstanceId: INST });
  assert.equal(r.TotalCount, r.Items.length);
  checkShape(r.Items);
  const by = Object.fromEntries(r.Items.map((x) => [x.Name, x]));
  assert.equal(by.max_connections.CurrentValue, want);
  assert.equal(by.max_connections.Default, '151');
  assert.equal(by.sql_mode.CurrentValue, 'STRICT_ALL_TABLES,NO_ZERO_DATE');
  assert.equal(by.wait_timeout.CurrentValue, await db.variable('wait_timeout'));
  assert.equal(by.transaction_isolation === undefined || typeof by.transaction_isolation.CurrentValue === 'string', true);
  await expectCode(cdb.DescribeInstanceParams({ InstanceId: 'cdb-nosuch' }), 'InvalidParameter.InstanceNotFound', 'unknown instance');
  await expectCode(cdb.DescribeInstanceParams({}), 'MissingParameter', 'no InstanceId');
});

test('--param-catalog: an operator file replaces, removes and locks entries; a denied name stops start-up', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-params-'));
  const file = path.join(dir, 'local.json');
  fs.writeFileSync(file, JSON.stringify({ parameters: [
    { name: 'max_connections', type: 'integer', min: 10, max: 500, default: '100', description: 'local' },
    { name: 'wait_timeout', remove: true },
    { name: 'net_retry_count', type: 'integer', min: 1, max: 100, default: '10', editable: false },
  ] }));
  const o = await start({ args: [...NO_LIMITS, '--flows', FLOWS, '--param-catalog', file] });
  try {
    await o.adminOk('POST', '/v1/instances',
      { product: 'cdb', region: REGION, uin: o.creds.Uin, instance_id: INST, status: 'running', dsn: db.dsn }, 201);
    const c = o.cdb();
    const r = await c.DescribeDefaultParams({});
    const by = Object.fromEntries(r.Items.map((x) => [x.Name, x]));
    assert.equal(by.max_connections.Max, 500);
    assert.equal(by.wait_timeout, undefined);
    assert.equal(by.net_retry_count.IsNotSupportEdit, true);
    const e1 = await expectCode(c.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'max_connections', CurrentValue: '501' }] }), 'InvalidParameterValue');
    assert.match(e1.message, /from 10 to 500/);
    await expectCode(c.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'wait_timeout', CurrentValue: '100' }] }), 'InvalidParameterValue');
    const e3 = await expectCode(c.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'net_retry_count', CurrentValue: '11' }] }), 'InvalidParameterValue');
    assert.match(e3.message, /net_retry_count cannot be modified/);
  } finally {
    await o.stop();
  }
  fs.writeFileSync(file, JSON.stringify({ parameters: [{ name: 'init_connect', type: 'string', default: '' }] }));
  await assert.rejects(start({ args: [...NO_LIMITS, '--flows', FLOWS, '--param-catalog', file] }),
    /init_connect runs SQL, names a file or guards the server/);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs until asyncd dies by the crash hook; then restarts it without the hook. */
async function crashAndRestart(id) {
  const info = await Promise.race([d.exited, sleep(30000 * SLOW).then(() => null)]);
  assert.deepEqual(info, { code: 137, signal: null }, `asyncd died by the hook after SET GLOBAL: ${d.stderrTail(800)}`);
  const during = await db.variable('max_connect_errors');
  d.opts.env = {};
  await d.restart();
  cdb = d.cdb();
  const s = await waitFinal(cdb, id, { timeoutMs: 60000 * SLOW });
  return { during, s, task: await d.getTask(id) };
}

test('a crash right after SET GLOBAL: the step runs again, the task ends SUCCESS, undo restores the true old value', { timeout: 240000 * SLOW }, async () => {
  const original = String(Number(await db.variable('max_connect_errors')) + 11);
  await db.sql(`SET GLOBAL max_connect_errors = ${original}`);
  await d.stop({ keepData: true });
  d.args = [...NO_LIMITS, '--flows', FLOWS, '--lease-s', '2'];
  d.opts.env = { ASYNCD_TEST_CRASH_AFTER_SQL: 'SET GLOBAL' };
  await d.start();
  cdb = d.cdb();

  // Through the SDK: the SET happened, the daemon died before recording it; the rerun ends SUCCESS
  // and the capture step, done before the crash, still holds the value from before the task.
  const want = String(Number(original) + 1000);
  const r = await cdb.ModifyInstanceParam({ InstanceIds: [INST], ParamList: [{ Name: 'max_connect_errors', CurrentValue: want }] });
  const a = await crashAndRestart(r.AsyncRequestId);
  assert.equal(a.during, want, 'the SET had happened when asyncd died');
  assert.equal(a.s.Status, 'SUCCESS', JSON.stringify(a.task.steps.map((s) => [s.name, s.state, s.message, s.output])));
  assert.equal(await db.variable('max_connect_errors'), want);
  assert.deepEqual(a.task.steps[0].output, { value: original }, 'the capture recorded the value before the task');

  // The same steps with a failing last step (on_failure undo), made through the admin API: after
  // the crash and the rerun, undo sets the value back to the one captured before the SET.
  await db.sql(`SET GLOBAL max_connect_errors = ${original}`);
  await d.stop({ keepData: true });
  d.opts.env = { ASYNCD_TEST_CRASH_AFTER_SQL: 'SET GLOBAL' };
  await d.start();
  cdb = d.cdb();
  const steps = [
    { name: 'capture', do: { mysql: { capture: 'SELECT @@GLOBAL.{0:ident}', args: ['max_connect_errors'], parameter: { name: 0 } } },
      undo: { mysql: { sql: 'SET GLOBAL {0:ident} = {captured:val}', args: ['max_connect_errors'], parameter: { name: 0 } } } },
    { name: 'set', do: { mysql: { sql: 'SET GLOBAL {0:ident} = {1:val}', args: ['max_connect_errors', want], parameter: { name: 0, value: 1 } } } },
    { name: 'fail', do: { exec: ['sh', '-c', 'echo failing on purpose; exit 3'] } },
  ];
  const id = await d.createTask({ product: 'cdb', instance_id: INST, type: 'ModifyInstanceParam', on_failure: 'undo', steps });
  const b = await crashAndRestart(id);
  assert.equal(b.during, want);
  assert.equal(b.task.state, 'undoed', JSON.stringify(b.task.steps.map((s) => [s.name, s.state, s.message])));
  assert.deepEqual(b.task.steps.map((s) => s.state), ['undone', 'done', 'failed']);
  assert.equal(await db.variable('max_connect_errors'), original, 'undo restored the value from before the task, not the changed one');
});
