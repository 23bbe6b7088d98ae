// mongodb CreateBackupDBInstance -> a real backup (tests/it/flows-test: tar of a directory in place
// of mongodump) -> DescribeAsyncRequestInfo success -> DescribeDBBackups lists it; a failing backup
// ends in the dialect's "failed" with StartTime/EndTime set; every rejected request leaves nothing.
// The shipped template (flows/mongodb) runs against a fake mongodump on PATH that records its argv,
// its config file and every command line in its process group: the DSN's password reaches it only
// through a 0600 --config file, never through any argv.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  start, NO_LIMITS, IT_DIR, REPO_ROOT, REGION, OTHER_REGION, MONGODB_ID_RE, TIME_RE, SLOW, sleep, expectCode, fmtTime,
} from './lib/asyncd.mjs';

const FLOWS = path.join(IT_DIR, 'flows-test');
let d;
let mongo;
let srcDir;
let work;
const INST = 'cmgo-it1';
const INST_BROKEN = 'cmgo-it-missing';

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-mongo-'));
  srcDir = path.join(work, 'src');
  fs.mkdirSync(path.join(srcDir, 'db1'), { recursive: true });
  fs.writeFileSync(path.join(srcDir, 'db1', 'coll.bson'), 'x'.repeat(4096));
  fs.writeFileSync(path.join(srcDir, 'meta.json'), '{"it":true}\n');
  fs.writeFileSync(path.join(srcDir, '.asyncd-it-source'), '');
  d = await start({ args: [...NO_LIMITS, '--flows', FLOWS] });
  mongo = d.mongodb();
  await d.createInstance({ product: 'mongodb', instance_id: INST, dsn: `mongodb://127.0.0.1:27017${srcDir}` });
  await d.createInstance({ product: 'mongodb', instance_id: INST_BROKEN, dsn: `mongodb://127.0.0.1:27017${path.join(work, 'no-such-dir')}` });
});

after(async () => {
  if (d) await d.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

/** Polls DescribeAsyncRequestInfo until the status is final; returns the last answer. */
async function waitFinal(id, timeoutMs = 20000 * SLOW) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await mongo.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    if (!['initial', 'running'].includes(r.Status)) return r;
    if (Date.now() > deadline) assert.fail(`task ${id} still ${r.Status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function taskTotal() {
  const r = await d.adminOk('GET', '/v1/tasks?limit=1');
  assert.equal(typeof r.total, 'number', JSON.stringify(r));
  return r.total;
}

test('CreateBackupDBInstance -> success -> the archive exists -> DescribeDBBackups lists it', async () => {
  const r = await mongo.CreateBackupDBInstance({ InstanceId: INST, BackupMethod: 0, BackupRemark: 'nightly it' });
  assert.match(r.AsyncRequestId, MONGODB_ID_RE, `a mongodb task id: ${JSON.stringify(r)}`);
  const s = await waitFinal(r.AsyncRequestId);
  const task = await d.getTask(r.AsyncRequestId);
  assert.equal(s.Status, 'success', `backup status: ${JSON.stringify(s)}; task: ${JSON.stringify(task)}`);
  assert.match(s.StartTime, TIME_RE);
  assert.match(s.EndTime, TIME_RE);
  assert.equal(s.StartTime, fmtTime(task.start_ms), 'StartTime in --tz UTC');
  assert.equal(s.EndTime, fmtTime(task.end_ms), 'EndTime in --tz UTC');
  assert.equal(task.type, 'CreateBackupDBInstance');
  assert.equal(task.instance_id, INST);

  const name = `${r.AsyncRequestId}.tar.gz`;
  const file = path.join(d.dataDir, 'backups', INST, name);
  assert.ok(fs.existsSync(file), `the backup ${file} exists`);
  const size = fs.statSync(file).size;
  const list = spawnSync('tar', ['-tzf', file], { encoding: 'utf8' });
  assert.equal(list.status, 0, list.stderr);
  assert.ok(list.stdout.split('\n').some((l) => l.endsWith('db1/coll.bson')), `archive holds the data: ${list.stdout}`);
  assert.ok(list.stdout.split('\n').some((l) => l.endsWith('meta.json')));

  const b = await mongo.DescribeDBBackups({ InstanceId: INST });
  const mine = b.BackupList.filter((x) => x.BackId === Number(r.AsyncRequestId));
  assert.equal(mine.length, 1, `DescribeDBBackups lists the backup once: ${JSON.stringify(b)}`);
  const info = mine[0];
  assert.equal(info.InstanceId, INST);
  assert.equal(info.BackupName, name);
  assert.equal(info.BackupSize, size, 'BackupSize is the archive size the step reported');
  assert.equal(info.BackupDesc, 'nightly it');
  assert.equal(info.BackupMethod, 0);
  assert.equal(info.StartTime, s.StartTime);
  assert.equal(info.EndTime, s.EndTime);
  assert.ok(b.TotalCount >= 1);

  // A second backup with another method: both listed, newest first, and the method filter works.
  const r2 = await mongo.CreateBackupDBInstance({ InstanceId: INST, BackupMethod: 1 });
  assert.equal((await waitFinal(r2.AsyncRequestId)).Status, 'success');
  const all = await mongo.DescribeDBBackups({ InstanceId: INST });
  const ids = all.BackupList.map((x) => x.BackId);
  assert.ok(ids.includes(Number(r.AsyncRequestId)) && ids.includes(Number(r2.AsyncRequestId)), JSON.stringify(all));
  assert.ok(ids.indexOf(Number(r2.AsyncRequestId)) < ids.indexOf(Number(r.AsyncRequestId)), 'newest first');
  const m1 = await mongo.DescribeDBBackups({ InstanceId: INST, BackupMethod: 1 });
  assert.deepEqual(m1.BackupList.map((x) => x.BackId), [Number(r2.AsyncRequestId)], JSON.stringify(m1));
  assert.equal(m1.TotalCount, 1);
  assert.equal(m1.BackupList[0].BackupDesc, '', 'BackupRemark defaults to ""');
  const paged = await mongo.DescribeDBBackups({ InstanceId: INST, Limit: 1, Offset: 1 });
  assert.deepEqual(paged.BackupList.map((x) => x.BackId), [ids[1]], JSON.stringify(paged));
  assert.equal(paged.TotalCount, all.TotalCount);
});

test('a failing backup -> "failed" with StartTime and EndTime set; not listed as a backup', async () => {
  const r = await mongo.CreateBackupDBInstance({ InstanceId: INST_BROKEN, BackupMethod: 0 });
  assert.match(r.AsyncRequestId, MONGODB_ID_RE);
  const s = await waitFinal(r.AsyncRequestId);
  const task = await d.getTask(r.AsyncRequestId);
  assert.equal(s.Status, 'failed', `template on_failure "fail" -> failed: ${JSON.stringify(s)} ${JSON.stringify(task)}`);
  assert.equal(task.state, 'failed');
  assert.match(String(s.StartTime), TIME_RE, `StartTime set: ${JSON.stringify(s)}`);
  assert.match(String(s.EndTime), TIME_RE, `EndTime set: ${JSON.stringify(s)}`);
  assert.ok(s.EndTime >= s.StartTime);
  assert.match(String(task.info || task.steps[0].message), /no-such-dir|missing/, 'the failure reason is the script\'s stderr');
  const b = await mongo.DescribeDBBackups({ InstanceId: INST_BROKEN });
  assert.equal(b.TotalCount, 0, JSON.stringify(b));
  assert.deepEqual(b.BackupList, []);
});

test('mongodb rejections: instance not found / isolated / bad parameters, and nothing is left behind', async () => {
  const other = await d.createAccount();
  const foreign = await d.createInstance({ product: 'mongodb', uin: other.Uin, dsn: `mongodb://127.0.0.1:27017${srcDir}` });
  const shanghai = await d.createInstance({ product: 'mongodb', region: OTHER_REGION, dsn: `mongodb://127.0.0.1:27017${srcDir}` });
  const isolated = await d.createInstance({ product: 'mongodb', dsn: `mongodb://127.0.0.1:27017${srcDir}` });
  await d.setInstanceStatus(isolated, 'isolated');
  const cdbInst = await d.createInstance({ product: 'cdb' });
  const before = await taskTotal();
  const files = () => fs.existsSync(path.join(d.dataDir, 'backups')) ? fs.readdirSync(path.join(d.dataDir, 'backups')).sort() : [];
  const filesBefore = files();
  const cases = [
    [{ InstanceId: 'cmgo-nosuch', BackupMethod: 0 }, 'InvalidParameter.InstanceNotFound', 'unknown instance'],
    [{ InstanceId: foreign, BackupMethod: 0 }, 'InvalidParameter.InstanceNotFound', 'another account\'s instance'],
    [{ InstanceId: shanghai, BackupMethod: 0 }, 'InvalidParameter.InstanceNotFound', 'an instance in another region'],
    [{ InstanceId: cdbInst, BackupMethod: 0 }, 'InvalidParameter.InstanceNotFound', 'a cdb instance'],
    [{ InstanceId: isolated, BackupMethod: 0 }, 'InvalidParameterValue.StatusAbnormal', 'an isolated instance'],
    [{ BackupMethod: 0 }, 'MissingParameter', 'no InstanceId'],
    [{ InstanceId: INST }, 'MissingParameter', 'no BackupMethod'],
    [{ InstanceId: INST, BackupMethod: '0' }, 'InvalidParameter', 'BackupMethod as a string'],
    [{ InstanceId: 7, BackupMethod: 0 }, 'InvalidParameter', 'InstanceId as a number'],
    [{ InstanceId: INST, BackupMethod: 0, BackupRemark: ['x'] }, 'InvalidParameter', 'BackupRemark as an array'],
    [{ InstanceId: INST, BackupMethod: 4 }, 'InvalidParameterValue', 'BackupMethod out of range'],
    [{ InstanceId: INST, BackupMethod: 0, BackupRetentionDays: 0 }, 'InvalidParameterValue', 'BackupRetentionDays 0'],
    [{ InstanceId: INST, BackupMethod: 0, BackupRemark: 'r'.repeat(257) }, 'InvalidParameterValue', 'BackupRemark too long'],
    [{ InstanceId: 'cmgo it1', BackupMethod: 0 }, 'InvalidParameterValue', 'InstanceId off its pattern'],
    [{ InstanceId: INST, BackupMethod: 0, Foo: 1 }, 'UnknownParameter', 'unknown parameter'],
  ];
  for (const [params, code, what] of cases) {
    await expectCode(mongo.CreateBackupDBInstance(params), code, `CreateBackupDBInstance ${what} ${JSON.stringify(params)}`);
    assert.equal(await taskTotal(), before, `${what}: no task was created`);
  }
  // The other region's client finds its own instance (so the not-found above was about the region).
  const sh = d.mongodb({ region: OTHER_REGION });
  const ok = await sh.CreateBackupDBInstance({ InstanceId: shanghai, BackupMethod: 0 });
  assert.match(ok.AsyncRequestId, MONGODB_ID_RE);
  assert.equal(await taskTotal(), before + 1);
  assert.deepEqual(files().filter((f) => !filesBefore.includes(f) && f !== shanghai), [], 'no backup directory for a rejected request');
  await expectCode(mongo.DescribeDBBackups({ InstanceId: 'cmgo-nosuch' }), 'InvalidParameter.InstanceNotFound', 'DescribeDBBackups of an unknown instance');
  await expectCode(mongo.DescribeDBBackups({ InstanceId: foreign }), 'InvalidParameter.InstanceNotFound', 'DescribeDBBackups of a foreign instance');
});

test('an empty required string is MissingParameter (docs/cloudapi.md: "missing or empty")', async () => {
  const before = await taskTotal();
  await expectCode(mongo.CreateBackupDBInstance({ InstanceId: '', BackupMethod: 0 }), 'MissingParameter', 'CreateBackupDBInstance InstanceId ""');
  assert.equal(await taskTotal(), before);
});

// ------------------------------------------------------------ the shipped template, fake mongodump

const PASSWORD = "s3cr'et-Pw#1";
// encodeURIComponent keeps the ', so the template's YAML quoting ('') is exercised too.
const SECRET_DSN = `mongodb://backup:${encodeURIComponent(PASSWORD)}@127.0.0.1:27017/admin?authSource=admin`;

/** A mongodump stand-in (node, no shell): one JSON line per run in `record` with its argv, the
 * mode and uri of its --config file and the command line of every process in its process group
 * (the step's sh and whatever it started); writes a small gzip archive to --archive. A uri whose
 * path is /failme fails the way a refused connection would. */
function writeFakeMongodump(binDir, record) {
  const src = `#!${process.execPath}
const fs = require('fs');
const zlib = require('zlib');
const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.findIndex((a) => a === '--' + name || a.startsWith('--' + name + '='));
  if (i < 0) return undefined;
  return argv[i].includes('=') ? argv[i].slice(argv[i].indexOf('=') + 1) : argv[i + 1];
};
const stat = (pid) => { const t = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); return t.slice(t.lastIndexOf(')') + 2).split(' '); };
const pgrp = stat('self')[2];
const cmdlines = [];
for (const pid of fs.readdirSync('/proc').filter((n) => /^[0-9]+$/.test(n))) {
  try { if (stat(pid)[2] === pgrp) cmdlines.push(fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').split('\\0').filter(Boolean)); } catch {}
}
const cfg = opt('config');
const out = { argv, cmdlines };
if (cfg) {
  out.configMode = (fs.statSync(cfg).mode & 0o777).toString(8);
  const m = /^uri: '((?:[^']|'')*)'\\n$/.exec(fs.readFileSync(cfg, 'utf8'));
  out.uri = m ? m[1].replace(/''/g, "'") : null;
}
fs.appendFileSync(${JSON.stringify(record)}, JSON.stringify(out) + '\\n');
if (!out.uri || /\\/failme(\\?|$)/.test(out.uri)) { console.error('Failed: error connecting to db server: no reachable servers'); process.exit(1); }
fs.writeFileSync(opt('archive'), zlib.gzipSync(Buffer.from('fake mongodump archive of ' + out.uri.replace(/:[^:@/]*@/, '@'))));
console.error('done dumping (fake)');
`;
  const file = path.join(binDir, 'mongodump');
  fs.writeFileSync(file, src, { mode: 0o755 });
}

test('shipped template: the password reaches mongodump in a 0600 --config file, never in argv', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-mongodump-'));
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  const record = path.join(dir, 'runs.jsonl');
  writeFakeMongodump(bin, record);
  const shipped = await start({
    args: [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')],
    env: { PATH: `${bin}:${process.env.PATH}` },
  });
  try {
    const m = shipped.mongodb();
    const inst = await shipped.createInstance({ product: 'mongodb', dsn: SECRET_DSN });
    const r = await m.CreateBackupDBInstance({ InstanceId: inst, BackupMethod: 0, BackupRemark: 'shipped' });
    const deadline = Date.now() + 20000 * SLOW;
    let s;
    while (['initial', 'running'].includes((s = await m.DescribeAsyncRequestInfo({ AsyncRequestId: r.AsyncRequestId })).Status)) {
      if (Date.now() > deadline) assert.fail(`backup still ${s.Status}`);
      await sleep(50);
    }
    const task = await shipped.getTask(r.AsyncRequestId);
    assert.equal(s.Status, 'success', `shipped backup: ${JSON.stringify(s)} ${JSON.stringify(task)}`);
    const backupDir = path.join(shipped.dataDir, 'backups', inst);
    const archive = path.join(backupDir, `${r.AsyncRequestId}.archive.gz`);
    assert.ok(fs.existsSync(archive), `the archive ${archive} exists`);
    assert.deepEqual(fs.readdirSync(backupDir), [`${r.AsyncRequestId}.archive.gz`], 'the config file is gone after the step');
    const b = await m.DescribeDBBackups({ InstanceId: inst });
    assert.deepEqual(b.BackupList.map((x) => x.BackupName), [`${r.AsyncRequestId}.archive.gz`], JSON.stringify(b));

    const runs = fs.readFileSync(record, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(runs.length, 1, `mongodump ran once: ${JSON.stringify(runs)}`);
    const run = runs[0];
    assert.equal(run.uri, SECRET_DSN, 'the whole DSN, password included, is in the config file');
    assert.equal(run.configMode, '600', 'the config file is 0600');
    assert.ok(run.argv.some((a) => a.startsWith('--config=')), `mongodump gets --config: ${JSON.stringify(run.argv)}`);
    assert.ok(run.cmdlines.length >= 2, `the step's sh and mongodump were seen: ${JSON.stringify(run.cmdlines)}`);
    assert.ok(run.cmdlines.some((c) => c[0] === '/bin/sh'), `the step's sh is in the group: ${JSON.stringify(run.cmdlines)}`);
    const encoded = encodeURIComponent(PASSWORD);
    for (const argv of [run.argv, ...run.cmdlines]) {
      for (const a of argv) {
        assert.ok(!a.includes(PASSWORD) && !a.includes(encoded) && !a.includes('s3cr'),
          `no argv carries the password: ${JSON.stringify(argv)}`);
      }
    }
    assert.ok(!JSON.stringify(task.steps).includes('s3cr'), 'the task record does not hold the password');

    // A failing mongodump: the task fails with its stderr, and the config file is removed too.
    const bad = await shipped.createInstance({ product: 'mongodb', dsn: SECRET_DSN.replace('/admin?', '/failme?') });
    const rb = await m.CreateBackupDBInstance({ InstanceId: bad, BackupMethod: 0 });
    let sb;
    while (['initial', 'running'].includes((sb = await m.DescribeAsyncRequestInfo({ AsyncRequestId: rb.AsyncRequestId })).Status)) {
      if (Date.now() > deadline + 20000 * SLOW) assert.fail(`failing backup still ${sb.Status}`);
      await sleep(50);
    }
    const tb = await shipped.getTask(rb.AsyncRequestId);
    assert.equal(sb.Status, 'failed', JSON.stringify(tb));
    assert.match(String(tb.steps[0].message), /no reachable servers/, JSON.stringify(tb.steps[0]));
    const badDir = path.join(shipped.dataDir, 'backups', bad);
    assert.deepEqual(fs.existsSync(badDir) ? fs.readdirSync(badDir) : [], [], 'no config file is left after a failure');
  } finally {
    await shipped.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
