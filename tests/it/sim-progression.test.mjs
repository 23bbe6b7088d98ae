// Progression rules for simulated tasks (docs/simulation.md): for each mode (polls, seconds,
// advance) and each canonical state -- so every status word of both dialects, cdb UNDEFINED
// included -- a task is driven there and every answer of DescribeAsyncRequestInfo, through the
// official SDK, is checked (cdb Status and an Info string on each; mongodb Status, StartTime and
// EndTime). Then: rule precedence, rules applying to later tasks, a task rule at once, the error
// phase, operator verbs on a paused simulated task, reset, and --sim-rules at start.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  start, expectStartFails, DIALECT as BASE_DIALECT, TIME_RE, NOT_FOUND, SLOW, sleep, expectCode,
} from './lib/asyncd.mjs';
import { SIM_ARGS, simInstance, setRule, reset, advance, poll } from './lib/sim.mjs';

// waiting: a switch waits for the maintenance window (cdb UNDEFINED, mongodb running).
const DIALECT = { ...BASE_DIALECT, waiting: { cdb: 'UNDEFINED', mongodb: 'running' } };

let d;
before(async () => { d = await start({ args: SIM_ARGS }); });
after(async () => { if (d) await d.stop(); });

/** Starts the action each product simulates here; returns its AsyncRequestId. */
async function startTask(product, inst, action = null) {
  if (product === 'cdb') {
    const a = action || 'CreateAccounts';
    const body = a === 'CreateAccounts'
      ? { InstanceId: inst, Accounts: [{ User: 'it_user', Host: '%' }], Password: 'Secret-pw-1' }
      : { InstanceId: inst, Accounts: [{ User: 'it_user', Host: '%' }] };
    const r = await d.cdb()[a](body);
    return r.AsyncRequestId;
  }
  const r = await d.mongodb().CreateBackupDBInstance({ InstanceId: inst, BackupMethod: 0 });
  return r.AsyncRequestId;
}

/** Whether the task has entered running by the time it is in `state` after `first`. */
function hasRun(first, state) {
  return !(first === 'initial' && (state === 'initial' || state === 'removed'));
}

/** Checks one answer against the canonical state and Info it must show. */
function checkAnswer(product, r, { state, info, first }, what) {
  assert.ok(!r.error, `${what}: answered an error ${r.error}: ${r.message}`);
  assert.equal(r.Status, DIALECT[state][product], `${what}: Status (canonical ${state})`);
  if (product === 'cdb') {
    assert.equal(typeof r.Info, 'string', `${what}: Info is a string`);
    assert.equal(r.Info, info, `${what}: Info`);
    return;
  }
  const ran = hasRun(first, state);
  const final = ['success', 'failed', 'undoed', 'killed', 'removed'].includes(state);
  if (ran) assert.match(r.StartTime, TIME_RE, `${what}: StartTime once it ran`);
  else assert.equal(r.StartTime, '', `${what}: no StartTime before it ran`);
  if (final) assert.match(r.EndTime, TIME_RE, `${what}: EndTime once final`);
  else assert.equal(r.EndTime, '', `${what}: no EndTime before it ends`);
}

/** The first phase that can lead to each target as the last phase. */
const FIRST = {
  initial: 'initial', running: 'initial', removed: 'initial',
  waiting: 'running', paused: 'running', undoed: 'running', failed: 'running', success: 'running', killed: 'running',
};
// Reaching "initial" means staying there for the first phase: the last phase is then success.
const LAST = (target) => (target === 'initial' ? 'success' : target);
const TARGETS = ['initial', 'running', 'waiting', 'paused', 'undoed', 'failed', 'success', 'killed', 'removed'];
const SECONDS = 1.0 * SLOW;

const MODES = {
  polls: { duration: { polls: 2 }, async drive(product, id, p0, p1) {
    for (let i = 0; i < 2; i++) checkAnswer(product, await poll(d, product, id), p0, `poll ${i + 1} (first phase)`);
    for (let i = 2; i < 4; i++) checkAnswer(product, await poll(d, product, id), p1, `poll ${i + 1} (last phase)`);
  } },
  seconds: { duration: { s: SECONDS }, async drive(product, id, p0, p1, created) {
    const r = await poll(d, product, id);
    if (Date.now() - created < SECONDS * 1000) checkAnswer(product, r, p0, 'poll 1 (within the first phase)');
    await sleep(SECONDS * 1000 + 300);
    // The timer moved it without a poll: the admin API agrees before anyone asks the Cloud API.
    const t = await d.getTask(id);
    assert.equal(t.state, p1.state, `admin state after ${SECONDS} s without a poll`);
    for (let i = 0; i < 2; i++) checkAnswer(product, await poll(d, product, id), p1, `poll ${i + 2} (after the seconds)`);
  } },
  advance: { duration: { until: 'advance' }, async drive(product, id, p0, p1) {
    for (let i = 0; i < 3; i++) checkAnswer(product, await poll(d, product, id), p0, `poll ${i + 1} (until advanced)`);
    const t = await advance(d, id);
    assert.equal(t.state, p1.state, 'the advance answer shows the next phase');
    for (let i = 3; i < 5; i++) checkAnswer(product, await poll(d, product, id), p1, `poll ${i + 1} (advanced)`);
  } },
};

for (const product of ['cdb', 'mongodb']) {
  describe(`${product}: every state in every mode`, () => {
    for (const [mode, m] of Object.entries(MODES)) {
      for (const target of TARGETS) {
        const word = DIALECT[target][product];
        test(`${mode}: reaches ${target} (${word}) and every answer says so`, async () => {
          const inst = await simInstance(d, product);
          const first = FIRST[target];
          const last = LAST(target);
          await setRule(d, `${inst}-${mode}`, {
            product, instance_id: inst,
            phases: [{ state: first, info: 'phase one', ...m.duration }, { state: last, info: 'reached' }],
          });
          const created = Date.now();
          const id = await startTask(product, inst);
          const p0 = { state: first, info: 'phase one', first };
          const p1 = { state: last, info: 'reached', first };
          await m.drive(product, id, p0, p1, created);
          const task = await d.getTask(id);
          assert.equal(task.driver, 'sim', 'a simulated task is driven by the simulation');
          const moves = task.events.filter((e) => e.from !== null).map((e) => e.to);
          assert.equal(moves.at(-1), last, `the events end in ${last}: ${JSON.stringify(moves)}`);
        });
      }
    }
  });
}

describe('rules', () => {
  test('with no rule a simulated task succeeds at its first answer, Info ""', async () => {
    const inst = await simInstance(d, 'cdb');
    const id = await startTask('cdb', inst);
    const r = await poll(d, 'cdb', id);
    assert.equal(r.Status, 'SUCCESS');
    assert.equal(r.Info, '');
  });

  test('the most specific rule wins: task > instance > action > *', async () => {
    const a = await simInstance(d, 'cdb');
    const b = await simInstance(d, 'cdb');
    await setRule(d, 'prec-any', { product: 'cdb', action: '*', phases: [{ state: 'success', info: 'any' }] });
    await setRule(d, 'prec-action', { product: 'cdb', action: 'DeleteAccounts', phases: [{ state: 'success', info: 'action' }] });
    await setRule(d, 'prec-inst', { product: 'cdb', instance_id: a, phases: [{ state: 'success', info: 'instance' }] });
    try {
      assert.equal((await poll(d, 'cdb', await startTask('cdb', a, 'DeleteAccounts'))).Info, 'instance');
      assert.equal((await poll(d, 'cdb', await startTask('cdb', b, 'DeleteAccounts'))).Info, 'action');
      assert.equal((await poll(d, 'cdb', await startTask('cdb', b, 'CreateAccounts'))).Info, 'any');
      // The mongodb tasks are untouched by cdb rules.
      const m = await simInstance(d, 'mongodb');
      assert.equal((await poll(d, 'mongodb', await startTask('mongodb', m))).Status, 'success');
      // A task rule applies at once, over the instance rule the task was created under.
      await setRule(d, 'prec-inst', { product: 'cdb', instance_id: a, phases: [{ state: 'running', until: 'advance', info: 'held' }, { state: 'success' }] });
      const id = await startTask('cdb', a, 'DeleteAccounts');
      assert.equal((await poll(d, 'cdb', id)).Info, 'held');
      await setRule(d, 'prec-task', { product: 'cdb', task: id, phases: [{ state: 'failed', info: 'by the task rule' }] });
      const r = await poll(d, 'cdb', id);
      assert.equal(r.Status, 'FAILED');
      assert.equal(r.Info, 'by the task rule');
    } finally {
      for (const n of ['prec-any', 'prec-action', 'prec-inst', 'prec-task']) await d.admin('DELETE', `/v1/simulation/rules/${n}`);
    }
  });

  test('a rule applies to tasks created after it: an earlier task keeps its phases', async () => {
    const inst = await simInstance(d, 'mongodb');
    await setRule(d, 'later', { product: 'mongodb', instance_id: inst, phases: [{ state: 'running', until: 'advance' }, { state: 'success' }] });
    const early = await startTask('mongodb', inst);
    await setRule(d, 'later', { product: 'mongodb', instance_id: inst, phases: [{ state: 'failed' }] });
    const late = await startTask('mongodb', inst);
    assert.equal((await poll(d, 'mongodb', early)).Status, 'running');
    assert.equal((await poll(d, 'mongodb', late)).Status, 'failed');
    await advance(d, early);
    assert.equal((await poll(d, 'mongodb', early)).Status, 'success');
    const list = await d.adminOk('GET', '/v1/simulation/rules');
    assert.equal(list.rules.filter((r) => r.name === 'later').length, 1, 'PUT of the same name replaces');
    await d.adminOk('DELETE', '/v1/simulation/rules/later');
    assert.equal((await d.admin('DELETE', '/v1/simulation/rules/later')).status, 404);
  });

  test('an error phase answers its code and message for its polls, then the next phase', async () => {
    for (const [product, code] of [['cdb', 'CdbError.TaskError'], ['mongodb', 'InternalError']]) {
      const inst = await simInstance(d, product);
      await setRule(d, `err-${inst}`, { product, instance_id: inst, phases: [
        { state: 'running', polls: 2, error: { code, message: 'simulated outage' } }, { state: 'success', info: 'ok' }] });
      const id = await startTask(product, inst);
      for (let i = 0; i < 2; i++) {
        const r = await poll(d, product, id);
        assert.equal(r.error, code, `${product} poll ${i + 1}: ${JSON.stringify(r)}`);
        assert.match(r.message, /simulated outage/);
      }
      const r = await poll(d, product, id);
      assert.equal(r.Status, DIALECT.success[product]);
    }
  });

  test('bad rules answer 400 saying what is wrong', async () => {
    const cases = [
      [{ product: 'cdb', phases: [] }, /phases/],
      [{ product: 'cdb', phases: [{ state: 'running' }, { state: 'success' }] }, /polls, s or/],
      [{ product: 'cdb', phases: [{ state: 'running', polls: 1 }, { state: 'removed' }] }, /cannot move from running to removed/],
      [{ product: 'cdb', phases: [{ state: 'success', error: { code: 'NoSuchCode' } }] }, /not a code/],
      [{ product: 'ces', phases: [{ state: 'success' }] }, /product/],
    ];
    for (const [body, re] of cases) {
      const r = await d.admin('PUT', '/v1/simulation/rules/bad', body);
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.message, re);
    }
  });
});

describe('operator verbs on a paused simulated task', () => {
  for (const [verb, state] of [['resume', 'success'], ['skip', 'success'], ['undo', 'undoed'], ['kill', 'killed']]) {
    test(`${verb} -> ${state}`, async () => {
      for (const product of ['cdb', 'mongodb']) {
        const inst = await simInstance(d, product);
        await setRule(d, `verb-${inst}`, { product, instance_id: inst, phases: [{ state: 'running', polls: 1 }, { state: 'paused', info: 'disk full' }] });
        const id = await startTask(product, inst);
        assert.equal((await poll(d, product, id)).Status, DIALECT.running[product]);
        assert.equal((await poll(d, product, id)).Status, DIALECT.paused[product]);
        const t = await d.verb(id, verb, { message: 'by the test' });
        assert.equal(t.state, state, `${product} ${verb}`);
        const r = await poll(d, product, id);
        assert.equal(r.Status, DIALECT[state][product]);
        if (product === 'cdb') assert.equal(r.Info, '', 'the paused phase does not speak for the end');
        assert.equal((await d.admin('POST', `/v1/tasks/${id}/${verb}`, {})).status, 409, 'a second verb is refused');
      }
    });
  }

  test('advance on a phase that ends by polls is a 409 saying so', async () => {
    const inst = await simInstance(d, 'cdb');
    await setRule(d, `adv-${inst}`, { product: 'cdb', instance_id: inst, phases: [{ state: 'running', polls: 5 }, { state: 'success' }] });
    const id = await startTask('cdb', inst);
    const r = await d.admin('POST', `/v1/tasks/${id}/advance`, {});
    assert.equal(r.status, 409);
    assert.match(r.json.message, /polls or seconds/);
  });
});

describe('reset', () => {
  test('clears rules, simulated instances and their tasks; real ones stay', async () => {
    const inst = await simInstance(d, 'cdb');
    const real = await d.createInstance({ product: 'cdb' });
    await setRule(d, 'to-clear', { product: 'cdb', phases: [{ state: 'success' }] });
    const id = await startTask('cdb', inst);
    const out = await reset(d);
    assert.ok(out.rules >= 1 && out.tasks >= 1 && out.instances >= 1, JSON.stringify(out));
    assert.deepEqual((await d.adminOk('GET', '/v1/simulation/rules')).rules, []);
    assert.equal((await d.admin('GET', `/v1/instances/${inst}`)).status, 404);
    assert.equal((await d.admin('GET', `/v1/instances/${real}`)).status, 200);
    await expectCode(d.describe('cdb', id), NOT_FOUND.cdb, 'a reset task is gone');
  });
});

describe('restart', () => {
  test('a task goes on from the phase the store recorded, its polls counted anew', async () => {
    const d3 = await start({ args: SIM_ARGS });
    try {
      const inst = await simInstance(d3, 'cdb');
      await setRule(d3, 'r', { product: 'cdb', instance_id: inst, phases: [
        { state: 'running', polls: 1, info: 'one' }, { state: 'running', polls: 2, info: 'two' }, { state: 'success', info: 'done' }] });
      const { AsyncRequestId: id } = await d3.cdb().CreateAccounts({ InstanceId: inst, Accounts: [{ User: 'u', Host: '%' }], Password: 'Secret-pw-1' });
      const seen = [];
      const ask = async () => { const r = await d3.describe('cdb', id); seen.push(`${r.Status}:${r.Info}`); };
      await ask(); await ask(); // phase 1, then the first answer of phase 2
      await d3.restart();
      assert.deepEqual((await d3.adminOk('GET', '/v1/simulation/rules')).rules, [], 'API rules do not outlive the process');
      await ask(); await ask(); await ask(); // phase 2 counted anew: two answers, then success
      assert.deepEqual(seen, ['RUNNING:one', 'RUNNING:two', 'RUNNING:two', 'RUNNING:two', 'SUCCESS:done']);
    } finally {
      await d3.stop();
    }
  });
});

describe('--sim-rules FILE', () => {
  test('rules load at start and apply; a bad file stops the start', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-sim-rules-'));
    const file = path.join(dir, 'rules.json');
    fs.writeFileSync(file, JSON.stringify([
      { name: 'slow-accounts', product: 'cdb', action: 'CreateAccounts', phases: [{ state: 'running', polls: 2, info: 'creating' }, { state: 'success', info: 'X' }] },
    ]));
    const d2 = await start({ args: [...SIM_ARGS, '--sim-rules', file] });
    try {
      const rules = (await d2.adminOk('GET', '/v1/simulation/rules')).rules;
      assert.deepEqual(rules.map((r) => r.name), ['slow-accounts']);
      const inst = await simInstance(d2, 'cdb');
      const { AsyncRequestId: id } = await d2.cdb().CreateAccounts({ InstanceId: inst, Accounts: [{ User: 'u', Host: '%' }], Password: 'Secret-pw-1' });
      const seen = [];
      for (let i = 0; i < 3; i++) { const r = await d2.describe('cdb', id); seen.push(`${r.Status}:${r.Info}`); }
      assert.deepEqual(seen, ['RUNNING:creating', 'RUNNING:creating', 'SUCCESS:X']);
    } finally {
      await d2.stop();
    }
    fs.writeFileSync(file, JSON.stringify([{ product: 'cdb', phases: [{ state: 'success' }] }]));
    await expectStartFails({ args: ['--sim-rules', file] }, 'a rule without a name');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

