// --flows DIR lays the operator's templates over the shipped ones file by file (a file there
// replaces the shipped template of its action, or adds an action), and SIGHUP reloads them: a set
// that does not load leaves the one in use, and requests in flight during reloads are answered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NO_LIMITS, REPO_ROOT, SLOW, expectCode, sleep, start } from './lib/asyncd.mjs';

let d, work, overlay;
const NOOP = (action, extra = {}) => JSON.stringify({
  action, type: action, on_failure: 'fail',
  params: { Note: { type: 'string', max_length: 64, default: '' }, ...extra },
  steps: [{ name: 'nothing to do', do: { noop: {} } }],
});

// The shipped DeleteAccounts with one more optional parameter: seeing it accepted shows the
// operator's file replaced the shipped one.
function deleteAccountsWithMarker() {
  const t = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'flows/cdb/DeleteAccounts.json'), 'utf8'));
  t.params.ItMarker = { type: 'string', max_length: 16, default: '' };
  return JSON.stringify(t);
}

async function logHas(re, ms = 5000 * SLOW) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (re.test(fs.readFileSync(d.logPath, 'utf8'))) return;
    await sleep(50);
  }
  assert.fail(`log never matched ${re}:\n${fs.readFileSync(d.logPath, 'utf8').slice(-2000)}`);
}

const count = (re) => (fs.readFileSync(d.logPath, 'utf8').match(new RegExp(re, 'g')) || []).length;

async function hup(pattern) {
  const before = count(pattern.source);
  process.kill(d.proc.pid, 'SIGHUP');
  const until = Date.now() + 5000 * SLOW;
  while (count(pattern.source) === before && Date.now() < until) await sleep(50);
  assert.ok(count(pattern.source) > before, `no ${pattern} after SIGHUP`);
}

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-flows-'));
  fs.symlinkSync(path.join(REPO_ROOT, 'flows'), path.join(work, 'flows')); // ./flows = shipped
  overlay = path.join(work, 'operator');
  fs.mkdirSync(path.join(overlay, 'cdb'), { recursive: true });
  fs.writeFileSync(path.join(overlay, 'cdb/DeleteAccounts.json'), deleteAccountsWithMarker());
  fs.writeFileSync(path.join(overlay, 'cdb/ItLayerNoop.json'), NOOP('ItLayerNoop'));
  d = await start({ args: [...NO_LIMITS, '--flows', overlay], cwd: work });
});
after(async () => {
  await d?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the operator\'s directory replaces and adds templates; the shipped ones stay', async () => {
  await logHas(/loaded \d+ flow templates from flows and .*operator \(1 of flows's replaced/);
  const c = d.cdb();
  const r = await c.request('ItLayerNoop', { Note: 'hi' });
  assert.match(r.AsyncRequestId, /^[0-9a-f-]{35}$/, 'the added action starts a task');
  const del = { InstanceId: 'cdb-nosuch', Accounts: [{ User: 'u', Host: '%' }], ItMarker: 'x' };
  const e = await expectCode(c.request('DeleteAccounts', del), 'InvalidParameter.InstanceNotFound',
    'ItMarker is a parameter of the replacing template');
  assert.doesNotMatch(e.message, /ItMarker/);
  await expectCode(c.request('ModifyAccountHost', {}), 'MissingParameter', 'a shipped action not replaced is served');
});

test('SIGHUP loads a new template; a broken set leaves the one in use', async () => {
  const c = d.cdb();
  await expectCode(c.request('ItLayerLater', {}), 'InvalidAction', 'not there yet');
  fs.writeFileSync(path.join(overlay, 'cdb/ItLayerLater.json'), NOOP('ItLayerLater'));
  await hup(/SIGHUP: loaded \d+ flow templates/);
  assert.match((await c.request('ItLayerLater', {})).AsyncRequestId, /-/);
  fs.writeFileSync(path.join(overlay, 'cdb/ItLayerBroken.json'), '{"action": "ItLayerBroken", ');
  await hup(/SIGHUP: keeping the flow templates in use: .*ItLayerBroken\.json/);
  assert.match((await c.request('ItLayerLater', {})).AsyncRequestId, /-/, 'the set in use stays');
  fs.rmSync(path.join(overlay, 'cdb/ItLayerBroken.json'));
  fs.rmSync(path.join(overlay, 'cdb/DeleteAccounts.json'));
  await hup(/SIGHUP: loaded \d+ flow templates/);
  await expectCode(c.request('DeleteAccounts', { InstanceId: 'cdb-nosuch', Accounts: [{ User: 'u', Host: '%' }], ItMarker: 'x' }),
    'UnknownParameter', 'the shipped DeleteAccounts is back');
});

test('requests in flight during reloads are answered; the daemon stays up', async () => {
  const c = d.cdb();
  let stop = false;
  const load = (async () => {
    let n = 0;
    while (!stop) { await c.request('ItLayerNoop', { Note: String(n++) }); }
    return n;
  })();
  for (let i = 0; i < 20; i++) {
    process.kill(d.proc.pid, 'SIGHUP');
    await sleep(25);
  }
  stop = true;
  assert.ok((await load) > 0);
  assert.ok(d.alive(), 'asyncd still runs');
  assert.match((await c.request('ItLayerNoop', {})).AsyncRequestId, /-/);
});
