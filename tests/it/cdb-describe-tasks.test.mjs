// cdb DescribeTasks over 50+ real tasks (ModifyInstanceParam, CreateAccounts, ModifyAccountPassword
// on a real MariaDB; the FAILED ones are CreateAccounts of an account that already exists with
// another password, MySQL error 1396): TotalCount, Offset/Limit paging (newest first, no duplicates, no gaps), the
// InstanceId / AsyncRequestId / TaskStatus / TaskTypes / StartTimeBegin / StartTimeEnd filters, and
// every TaskDetail field.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { start, NO_LIMITS, REPO_ROOT, REGION, OTHER_REGION, TIME_RE, SLOW, sleep, expectCode, fmtTime } from './lib/asyncd.mjs';
import { useMariaDB, uniqueUser, waitFinal } from './lib/mariadb.mjs';

const DT1 = 'cdb-dt1';
const DT2 = 'cdb-dt2';
let d;
let db;
let cdb;
const created = []; // ids in creation order
const kind = new Map(); // id -> {instance, type, expect: 'SUCCEED'|'FAILED'|'PAUSED', batch}
const users = [];
let gapMs; // the start of a whole second in which no task started: batch A before, batch B after
let oldMce;
let existing; // an account made outside asyncd before the tasks: CreateAccounts of it fails (1396)

async function send(promise, instance, type, expect, batch) {
  const r = await promise;
  created.push(r.AsyncRequestId);
  kind.set(r.AsyncRequestId, { instance, type, expect, batch });
  return r.AsyncRequestId;
}

async function settle(ids) {
  for (const id of ids) await waitFinal(cdb, id, { timeoutMs: 60000 * SLOW });
}

before(async () => {
  db = await useMariaDB();
  // Batch A pauses a task on DT1 that later tasks must not wait behind: this file is about what
  // DescribeTasks shows, not one-operation-per-instance (engine-builtins.test.mjs covers that).
  d = await start({ args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows'), '--instance-serial', 'cdb=off'] });
  cdb = d.cdb();
  for (const id of [DT1, DT2]) {
    await d.adminOk('POST', '/v1/instances', { product: 'cdb', region: REGION, uin: d.creds.Uin, instance_id: id, status: 'running', dsn: db.dsn }, 201);
  }
  oldMce = await db.variable('max_connect_errors');
  existing = uniqueUser('dtexist');
  users.push(existing);
  await db.sql(`CREATE USER '${existing}'@'%' IDENTIFIED BY 'Other-passw0rd-dt'`);
  const mip = (value) => cdb.ModifyInstanceParam({ InstanceIds: [DT1], ParamList: [{ Name: 'max_connect_errors', CurrentValue: value }] });
  // Batch A: 40 harmless parameter changes (to the value it already has), 3 account creations of
  // the existing account (another password: CREATE USER fails with 1396, on_failure undo -> FAILED),
  // 2 account creations on the other instance, 1 password change of a missing account (pauses).
  for (let i = 0; i < 40; i++) {
    await send(mip(oldMce), DT1, 'MODIFY PARAM', 'SUCCEED', 'A');
    if (i === 10 || i === 20 || i === 30) {
      await send(cdb.CreateAccounts({ InstanceId: DT1, Accounts: [{ User: existing, Host: '%' }], Password: 'Passw0rd-dt' }),
        DT1, 'SQL OPERATION', 'FAILED', 'A');
    }
    if (i === 15 || i === 25) {
      const u = uniqueUser('dt');
      users.push(u);
      await send(cdb.CreateAccounts({ InstanceId: DT2, Accounts: [{ User: u, Host: '%' }], Password: 'Passw0rd-dt' }), DT2, 'SQL OPERATION', 'SUCCEED', 'A');
    }
    if (i === 35) {
      await send(cdb.ModifyAccountPassword({ InstanceId: DT1, Accounts: [{ User: uniqueUser('missing'), Host: '%' }], NewPassword: 'Passw0rd-dt' }),
        DT1, 'SQL OPERATION', 'PAUSED', 'A');
    }
  }
  await settle(created);
  // A whole second with no task start, then batch B.
  let lastStart = 0;
  for (const id of created) lastStart = Math.max(lastStart, (await d.getTask(id)).start_ms);
  gapMs = (Math.floor(lastStart / 1000) + 1) * 1000;
  await sleep(Math.max(0, gapMs + 1000 - Date.now()) + 20);
  const b = [];
  for (let i = 0; i < 8; i++) b.push(await send(mip(oldMce), DT1, 'MODIFY PARAM', 'SUCCEED', 'B'));
  await settle(b);
});

after(async () => {
  if (db) for (const u of users) await db.sql(`DROP USER IF EXISTS '${u}'@'%'`);
  if (d) await d.stop();
  if (db) await db.stop();
});

const newestFirst = () => created.slice().reverse();
const ids = (r) => r.Items.map((i) => i.AsyncRequestId);
const expected = (pred) => newestFirst().filter((id) => pred(kind.get(id)));

test('the tasks ran as planned', async () => {
  assert.equal(created.length, 54);
  for (const id of created) {
    const { expect } = kind.get(id);
    const s = await cdb.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    const want = expect === 'SUCCEED' ? 'SUCCESS' : expect;
    assert.equal(s.Status, want, `${id} ${JSON.stringify(kind.get(id))}: ${JSON.stringify(s)}`);
    if (expect === 'FAILED') assert.equal((await d.getTask(id)).state, 'undoed', 'CreateAccounts.json says on_failure "undo"');
  }
  assert.equal(await db.canLogin(existing, 'Other-passw0rd-dt'), true, 'the existing account keeps its own password');
  assert.equal(await db.canLogin(existing, 'Passw0rd-dt'), false);
});

test('TotalCount and Offset/Limit paging: newest first, no duplicates, no gaps', async () => {
  const all = await cdb.DescribeTasks({ Limit: 100 });
  assert.equal(all.TotalCount, 54);
  assert.deepEqual(ids(all), newestFirst(), 'Limit 100: every task, newest first');
  const dflt = await cdb.DescribeTasks({});
  assert.equal(dflt.TotalCount, 54);
  assert.deepEqual(ids(dflt), newestFirst().slice(0, 20), 'Limit defaults to 20');
  const seen = [];
  for (let off = 0; off < 54; off += 7) {
    const p = await cdb.DescribeTasks({ Offset: off, Limit: 7 });
    assert.equal(p.TotalCount, 54, `TotalCount on the page at ${off}`);
    assert.equal(p.Items.length, Math.min(7, 54 - off));
    seen.push(...ids(p));
  }
  assert.equal(new Set(seen).size, 54, 'no duplicates');
  assert.deepEqual(seen, newestFirst(), 'pages join up in order, without gaps');
  const past = await cdb.DescribeTasks({ Offset: 54, Limit: 10 });
  assert.equal(past.TotalCount, 54);
  assert.deepEqual(past.Items, []);
  const starts = all.Items.map((i) => i.StartTime);
  assert.deepEqual(starts, starts.slice().sort().reverse(), 'StartTime never increases down the list');
});

test('filters: InstanceId, AsyncRequestId, TaskStatus, TaskTypes, and combinations', async () => {
  const byInst = await cdb.DescribeTasks({ InstanceId: DT2, Limit: 100 });
  assert.deepEqual(ids(byInst), expected((k) => k.instance === DT2));
  assert.equal(byInst.TotalCount, 2);
  const dt1 = await cdb.DescribeTasks({ InstanceId: DT1, Limit: 100 });
  assert.equal(dt1.TotalCount, 52);
  assert.ok(dt1.Items.every((i) => i.InstanceIds.length === 1 && i.InstanceIds[0] === DT1));

  const one = created[17];
  const byId = await cdb.DescribeTasks({ AsyncRequestId: one });
  assert.equal(byId.TotalCount, 1);
  assert.deepEqual(ids(byId), [one]);
  const none = await cdb.DescribeTasks({ AsyncRequestId: '00000000-00000000-00000000-00000000' });
  assert.equal(none.TotalCount, 0);
  assert.deepEqual(none.Items, []);

  for (const [codes, words] of [[[2], ['SUCCEED']], [[3], ['FAILED']], [[6], ['PAUSED']], [[2, 3], ['SUCCEED', 'FAILED']],
    [[0], []], [[1], []], [[4], []], [[5], []]]) {
    const r = await cdb.DescribeTasks({ TaskStatus: codes, Limit: 100 });
    const want = expected((k) => words.includes(k.expect));
    assert.equal(r.TotalCount, want.length, `TaskStatus ${JSON.stringify(codes)}`);
    assert.deepEqual(ids(r), want, `TaskStatus ${JSON.stringify(codes)}`);
    assert.ok(r.Items.every((i) => words.includes(i.TaskStatus)), `TaskStatus words for ${JSON.stringify(codes)}`);
  }
  const succ = expected((k) => k.expect === 'SUCCEED');
  assert.equal(succ.length, 50);
  const page = await cdb.DescribeTasks({ TaskStatus: [2], Offset: 30, Limit: 30 });
  assert.equal(page.TotalCount, 50, 'TotalCount counts the filtered tasks, not the page');
  assert.deepEqual(ids(page), succ.slice(30), 'paging within a filter');

  for (const [codes, words] of [[[5], ['MODIFY PARAM']], [[2], ['SQL OPERATION']], [[2, 5], ['SQL OPERATION', 'MODIFY PARAM']], [[7], []]]) {
    const r = await cdb.DescribeTasks({ TaskTypes: codes, Limit: 100 });
    const want = expected((k) => words.includes(k.type));
    assert.equal(r.TotalCount, want.length, `TaskTypes ${JSON.stringify(codes)}`);
    assert.deepEqual(ids(r), want, `TaskTypes ${JSON.stringify(codes)}`);
    assert.ok(r.Items.every((i) => words.includes(i.TaskType)));
  }
  const combo = await cdb.DescribeTasks({ InstanceId: DT1, TaskTypes: [2], TaskStatus: [6] });
  assert.deepEqual(ids(combo), expected((k) => k.instance === DT1 && k.type === 'SQL OPERATION' && k.expect === 'PAUSED'));
  assert.equal(combo.TotalCount, 1);
  const combo2 = await cdb.DescribeTasks({ InstanceId: DT1, TaskTypes: [2], Limit: 100 });
  assert.deepEqual(ids(combo2), expected((k) => k.instance === DT1 && k.type === 'SQL OPERATION'), 'DT1 SQL OPERATION: the failed and the paused ones');
  assert.equal(combo2.TotalCount, 4);
  const noFailedParams = await cdb.DescribeTasks({ TaskTypes: [5], TaskStatus: [3] });
  assert.equal(noFailedParams.TotalCount, 0, 'no MODIFY PARAM task failed');
  const empty = await cdb.DescribeTasks({ InstanceId: DT2, TaskTypes: [5] });
  assert.equal(empty.TotalCount, 0);

  // The same filters through GET + HmacSHA256 (flattened TaskStatus.0, TaskTypes.0).
  const get = d.cdb({ signMethod: 'HmacSHA256', reqMethod: 'GET' });
  const g = await get.DescribeTasks({ TaskStatus: [3], TaskTypes: [2], Limit: 100 });
  assert.deepEqual(ids(g), expected((k) => k.expect === 'FAILED'));
  assert.equal(g.TotalCount, 3);
});

test('StartTimeBegin / StartTimeEnd ("YYYY-MM-DD HH:MM:SS" in --tz UTC)', async () => {
  const gap = fmtTime(gapMs);
  const b = await cdb.DescribeTasks({ StartTimeBegin: gap, Limit: 100 });
  assert.deepEqual(ids(b), expected((k) => k.batch === 'B'), `StartTimeBegin ${gap}`);
  assert.equal(b.TotalCount, 8);
  const a = await cdb.DescribeTasks({ StartTimeEnd: gap, Limit: 100 });
  assert.deepEqual(ids(a), expected((k) => k.batch === 'A'), `StartTimeEnd ${gap}`);
  assert.equal(a.TotalCount, 46);
  const both = await cdb.DescribeTasks({ StartTimeBegin: fmtTime(gapMs - 3600e3), StartTimeEnd: fmtTime(gapMs + 3600e3), Limit: 100 });
  assert.equal(both.TotalCount, 54);
  const later = await cdb.DescribeTasks({ StartTimeBegin: fmtTime(Date.now() + 3600e3) });
  assert.equal(later.TotalCount, 0);
  // The gap second written as UTC+8 would read (Tencent's own zone): read in --tz UTC it is 8 h ahead.
  const shifted = await cdb.DescribeTasks({ StartTimeBegin: fmtTime(gapMs, 8) });
  assert.equal(shifted.TotalCount, 0, 'times are read in --tz (UTC), not in UTC+8');
  const inBatchB = await cdb.DescribeTasks({ StartTimeBegin: gap, TaskStatus: [2], Limit: 3 });
  assert.equal(inBatchB.TotalCount, 8);
  assert.deepEqual(ids(inBatchB), expected((k) => k.batch === 'B').slice(0, 3));
});

test('TaskDetail fields', async () => {
  const all = await cdb.DescribeTasks({ Limit: 100 });
  const jobIds = new Set();
  for (const item of all.Items) {
    const id = item.AsyncRequestId;
    const k = kind.get(id);
    const task = await d.getTask(id);
    const info = await cdb.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.deepEqual(Object.keys(item).sort(), ['AsyncRequestId', 'Code', 'EndTime', 'InstanceIds', 'JobId', 'Message',
      'Progress', 'StartTime', 'TaskAttachInfo', 'TaskStatus', 'TaskType'], `every TaskDetail field of the SDK: ${JSON.stringify(item)}`);
    assert.deepEqual(item.TaskAttachInfo, []);
    assert.equal(item.TaskStatus, k.expect);
    assert.equal(item.TaskType, k.type);
    assert.deepEqual(item.InstanceIds, [k.instance]);
    assert.equal(item.Message, info.Info ?? '', 'Message is the task\'s Info');
    assert.ok(Number.isInteger(item.JobId) && item.JobId > 0, `JobId ${item.JobId}`);
    jobIds.add(item.JobId);
    assert.match(item.StartTime, TIME_RE);
    assert.equal(item.StartTime, fmtTime(task.start_ms), 'StartTime in --tz UTC');
    if (k.expect === 'PAUSED') {
      assert.equal(item.EndTime, '', 'a paused task has not ended: "", never null');
      assert.equal(item.Code, 0);
      assert.equal(item.Progress, 0);
    } else {
      assert.equal(item.EndTime, fmtTime(task.end_ms), 'EndTime in --tz UTC');
    }
    if (k.expect === 'SUCCEED') {
      assert.equal(item.Code, 0);
      assert.equal(item.Progress, 100);
      assert.match(item.Message, /successfully\.$/);
    }
    if (k.expect === 'FAILED') {
      assert.notEqual(item.Code, 0, 'a failed task has a non-zero Code');
      assert.match(item.Message, new RegExp(`MySQL error 1396 .*${existing}`), `Message says what failed: ${item.Message}`);
    }
  }
  assert.equal(jobIds.size, 54, 'JobIds are distinct');
});

test('DescribeTasks sees only the caller\'s account and region; bad parameters are refused', async () => {
  const other = await d.createAccount();
  const o = await d.cdb({ creds: other }).DescribeTasks({});
  assert.equal(o.TotalCount, 0);
  const sh = await d.cdb({ region: OTHER_REGION }).DescribeTasks({});
  assert.equal(sh.TotalCount, 0);
  for (const [params, code] of [
    [{ Limit: 0 }, 'InvalidParameterValue'], [{ Limit: 101 }, 'InvalidParameterValue'], [{ Offset: -1 }, 'InvalidParameterValue'],
    [{ TaskStatus: [9] }, 'InvalidParameterValue'], [{ TaskTypes: [99] }, 'InvalidParameterValue'],
    [{ StartTimeBegin: 'yesterday' }, 'InvalidParameterValue'], [{ StartTimeEnd: '2026-13-45 99:00:00' }, 'InvalidParameterValue'],
    [{ Limit: 'ten' }, 'InvalidParameter'], [{ TaskStatus: 2 }, 'InvalidParameter'], [{ InstanceId: 5 }, 'InvalidParameter'],
    [{ Foo: 1 }, 'UnknownParameter'],
  ]) {
    await expectCode(cdb.DescribeTasks(params), code, `DescribeTasks ${JSON.stringify(params)}`);
  }
});
