// DescribeAsyncRequestInfo answers every canonical state in each product's dialect, with the
// exact answer shape of the seeds, through every signature method and HTTP method the SDK has.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DIALECT, FINAL_STATES, NO_LIMITS, PRODUCTS, SIGN_MODES, SLOW, STATES, TIME_RE, UUID_RE,
  fmtTime, start,
} from './lib/asyncd.mjs';

const INFO = 'Dropped the database table successfully.';
let d;
const tasks = {}; // product -> state -> {id, task}

before(async () => {
  d = await start({ args: NO_LIMITS });
  for (const product of PRODUCTS) {
    tasks[product] = {};
    for (const state of STATES) {
      tasks[product][state] = await d.taskInState(product, state, state === 'success' ? { info: INFO } : {});
    }
  }
});
after(async () => { await d?.stop(); });

describe('admin API reports the dialect word next to the canonical state', { timeout: 60000 * SLOW }, () => {
  for (const product of PRODUCTS) {
    test(`${product}: Status in GET /v1/tasks/{id} matches the dialect table for every state`, async () => {
      for (const state of STATES) {
        const t = await d.getTask(tasks[product][state].id);
        assert.equal(t.state, state);
        assert.equal(t.Status, DIALECT[state][product], `${product} ${state}`);
        assert.equal(t.product, product);
      }
    });
  }
});

for (const mode of SIGN_MODES) {
  describe(`every state through ${mode.name}`, { timeout: 60000 * SLOW }, () => {
    test(`cdb answers exactly Status, Info, RequestId with the cdb word (${mode.name})`, async () => {
      const c = d.cdb(mode);
      for (const state of STATES) {
        const { id } = tasks.cdb[state];
        const r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
        assert.deepEqual(Object.keys(r).sort(), ['Info', 'RequestId', 'Status'], `cdb ${state}: ${JSON.stringify(r)}`);
        assert.equal(r.Status, DIALECT[state].cdb, `cdb ${state}`);
        assert.match(r.RequestId, UUID_RE);
        assert.equal(r.Info, state === 'success' ? INFO : '', `cdb ${state} Info: always a string`);
      }
    });

    test(`mongodb answers exactly Status, StartTime, EndTime, RequestId with the mongodb word (${mode.name})`, async () => {
      const c = d.mongodb(mode);
      for (const state of STATES) {
        const { id } = tasks.mongodb[state];
        const t = await d.getTask(id);
        const r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
        assert.deepEqual(Object.keys(r).sort(), ['EndTime', 'RequestId', 'StartTime', 'Status'], `mongodb ${state}: ${JSON.stringify(r)}`);
        assert.equal(r.Status, DIALECT[state].mongodb, `mongodb ${state}`);
        assert.match(r.RequestId, UUID_RE);
        const started = !['initial', 'removed'].includes(state);
        const ended = FINAL_STATES.includes(state);
        if (started) {
          assert.match(r.StartTime, TIME_RE, `mongodb ${state} StartTime`);
          assert.equal(typeof t.start_ms, 'number', `admin start_ms for ${state}`);
          assert.equal(r.StartTime, fmtTime(t.start_ms), `mongodb ${state} StartTime is start_ms in UTC`);
        } else {
          assert.equal(r.StartTime, '', `mongodb ${state} never ran: StartTime ""`);
          assert.equal(t.start_ms, null, `admin start_ms for ${state}`);
        }
        if (ended) {
          assert.match(r.EndTime, TIME_RE, `mongodb ${state} EndTime`);
          assert.equal(typeof t.end_ms, 'number', `admin end_ms for ${state}`);
          assert.equal(r.EndTime, fmtTime(t.end_ms), `mongodb ${state} EndTime is end_ms in UTC`);
          if (started) assert.ok(r.EndTime >= r.StartTime, `${state}: EndTime >= StartTime`);
        } else {
          assert.equal(r.EndTime, '', `mongodb ${state} not final: EndTime ""`);
          assert.equal(t.end_ms, null, `admin end_ms for ${state}`);
        }
      }
    });
  });
}

describe('Info and times follow transitions', { timeout: 60000 * SLOW }, () => {
  test('cdb Info is "" until a transition carries info, then that string, also while RUNNING', async () => {
    const c = d.cdb();
    const id = await d.createTask({ product: 'cdb' });
    let r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.deepEqual([r.Status, r.Info], ['INITIAL', '']);
    await d.transition(id, 'running');
    r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.deepEqual([r.Status, r.Info], ['RUNNING', '']);
    await d.transition(id, 'paused', { info: 'Step 1 failed: table locked.' });
    r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.deepEqual([r.Status, r.Info], ['PAUSED', 'Step 1 failed: table locked.']);
    await d.verb(id, 'resume');
    await d.transition(id, 'success', { step_done: true, info: INFO });
    r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.deepEqual([r.Status, r.Info], ['SUCCESS', INFO]);
    assert.equal((await d.getTask(id)).info, INFO, 'admin shows the same info');
  });

  test('cdb Info keeps unicode and JSON-special characters intact', async () => {
    const info = 'Table "t\\1" dropped — 完成 ✓ \u0001';
    const { id } = await d.taskInState('cdb', 'success', { info });
    for (const mode of SIGN_MODES) {
      const r = await d.cdb(mode).DescribeAsyncRequestInfo({ AsyncRequestId: id });
      assert.equal(r.Info, info, mode.name);
    }
  });

  test('mongodb StartTime is the FIRST entry to running: pause and resume do not move it', async () => {
    const c = d.mongodb();
    const id = await d.createTask({ product: 'mongodb' });
    await d.transition(id, 'running');
    const first = await d.getTask(id);
    await new Promise((r) => setTimeout(r, 1100));
    await d.verb(id, 'pause');
    await d.verb(id, 'resume');
    const later = await d.getTask(id);
    assert.equal(later.start_ms, first.start_ms, 'start_ms unchanged by resume');
    const r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.equal(r.Status, 'running');
    assert.equal(r.StartTime, fmtTime(first.start_ms));
    assert.equal(r.EndTime, '');
    await d.transition(id, 'success', { step_done: true });
    const done = await d.getTask(id);
    const r2 = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.equal(r2.Status, 'success');
    assert.equal(r2.StartTime, fmtTime(first.start_ms));
    assert.equal(r2.EndTime, fmtTime(done.end_ms));
    assert.ok(done.end_ms >= first.start_ms + 1000);
  });

  test('RequestId is a fresh UUID on every call, for answers and for errors', async () => {
    const seen = new Set();
    const c = d.cdb();
    const id = tasks.cdb.running.id;
    for (let i = 0; i < 25; i++) {
      const r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
      assert.match(r.RequestId, UUID_RE);
      seen.add(r.RequestId);
      try {
        await c.DescribeAsyncRequestInfo({ AsyncRequestId: 'ffffffff-ffffffff-ffffffff-ffffffff' });
        assert.fail('unknown id answered');
      } catch (e) {
        assert.match(String(e.requestId), UUID_RE);
        seen.add(e.requestId);
      }
    }
    assert.equal(seen.size, 50, 'no RequestId repeats');
  });
});
