// GET /metrics (docs/metrics.md): after a task that succeeds, one retried once and one that fails,
// the step histogram counts every attempt by type and executor with monotonic buckets, the queue
// wait one first claim per task, the transition and retry counters what happened; the running
// gauge is this node's; a kill counts as a verb and a transition; the store-wide gauges say scope="cluster"; a Cloud API error shows under
// its action and code, and an unknown action adds no label value; a restart under another node id
// counts the takeover of the dead node's lease; on PostgreSQL, two nodes report the same
// store-wide gauges and each its own running gauge.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { NO_LIMITS, PG_URL, SLOW, expectCode, sleep, start, startNode, unknownId } from './lib/asyncd.mjs';
import { q, shStep, show, tempDir, waitState } from './lib/engine.mjs';

const T = { timeout: 60000 * SLOW };
const NODE = 'met-1';
const args = (node) => [...NO_LIMITS, '--node-id', node, '--lease-s', '2', '--max-running', '1'];
let d;
before(async () => { d = await start({ args: args(NODE) }); });
after(async () => { if (d && d.alive()) await d.stop(); });

/** The scrape as [{name, labels, value}], every line checked against the text format. */
async function scrape(node = d) {
  const r = await node.admin('GET', '/metrics', undefined, { token: null });
  assert.equal(r.status, 200, r.text);
  const out = [];
  for (const line of r.text.split('\n')) {
    if (!line || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line of the text format: ${JSON.stringify(line)}`);
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** A scrape once node runs nothing and ready(scrape) holds (or after 5 s, for the asserts to
 * say what is missing): a run's last write is counted and its slot given back just after its
 * commit, which is when the task's state reads as final. */
async function scrapeSettled(node, ready = () => true) {
  for (const until = Date.now() + 5000 * SLOW; ; await sleep(50)) {
    const s = await scrape();
    if ((value(s, 'asyncd_tasks_running', { node }) === 0 && ready(s)) || Date.now() > until) return s;
  }
}

const has = (labels, want) => Object.entries(want).every(([k, v]) => labels[k] === v);
const pick = (s, name, want = {}) => s.filter((x) => x.name === name && has(x.labels, want));
/** The one sample of name with labels want; 0 when there is none. */
function value(s, name, want = {}) {
  const found = pick(s, name, want);
  assert.ok(found.length <= 1, `one series ${name}${JSON.stringify(want)}: ${JSON.stringify(found)}`);
  return found.length ? found[0].value : 0;
}

/** Every histogram series of name: buckets ascending in le and count, +Inf = _count. */
function checkHistogram(s, name) {
  const series = new Map();
  for (const b of pick(s, `${name}_bucket`)) {
    const { le, ...rest } = b.labels;
    const key = JSON.stringify(rest);
    if (!series.has(key)) series.set(key, []);
    series.get(key).push({ le: le === '+Inf' ? Infinity : Number(le), n: b.value });
  }
  assert.ok(series.size > 0, `${name} has series`);
  for (const [key, bs] of series) {
    for (let i = 1; i < bs.length; i++) {
      assert.ok(bs[i].le > bs[i - 1].le, `${name}${key}: le ascending`);
      assert.ok(bs[i].n >= bs[i - 1].n, `${name}${key}: cumulative counts never fall`);
    }
    assert.equal(bs[bs.length - 1].le, Infinity, `${name}${key} ends with +Inf`);
    const labels = JSON.parse(key);
    assert.equal(value(s, `${name}_count`, labels), bs[bs.length - 1].n, `${name}${key}: _count = +Inf bucket`);
    assert.ok(value(s, `${name}_sum`, labels) >= 0, `${name}${key}: _sum`);
  }
}

test('three tasks: step, queue-wait, transition and retry series count what ran', T, async () => {
  const cnt = q(path.join(tempDir(), 'count'));
  const flaky = `n=$(cat ${cnt} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${cnt};`
    + ' if [ $n -lt 2 ]; then echo "transient" >&2; exit 3; fi; echo ok';
  const ok = await d.createTask({ product: 'cdb', type: 'MetOk', steps: [shStep('a', 'sleep 0.02; echo a'), { name: 'b', do: { noop: {} } }] });
  const retried = await d.createTask({ product: 'cdb', type: 'MetRetry', steps: [shStep('flaky', flaky, { retries: 1 })] });
  const failed = await d.createTask({ product: 'mongodb', type: 'MetFail', on_failure: 'fail', steps: [shStep('bad', 'exit 1')] });
  for (const [id, want] of [[ok, 'success'], [retried, 'success'], [failed, 'failed']]) {
    const task = await waitState(d, id, ['success', 'failed', 'paused', 'undoed']);
    assert.equal(task.state, want, show(task));
  }
  const s = await scrapeSettled(NODE, (x) => value(x, 'asyncd_task_transitions_total', { product: 'mongodb', to: 'failed' }) === 1
    && value(x, 'asyncd_task_transitions_total', { product: 'cdb', to: 'success' }) === 2);
  const step = 'asyncd_step_duration_seconds';
  checkHistogram(s, step);
  assert.equal(value(s, `${step}_count`, { product: 'cdb', type: 'MetOk', executor: 'exec' }), 1);
  assert.equal(value(s, `${step}_count`, { product: 'cdb', type: 'MetOk', executor: 'noop' }), 1);
  assert.equal(value(s, `${step}_count`, { product: 'cdb', type: 'MetRetry', executor: 'exec' }), 2, 'each attempt is a step run');
  assert.equal(value(s, `${step}_count`, { product: 'mongodb', type: 'MetFail', executor: 'exec' }), 1);
  assert.ok(value(s, `${step}_sum`, { type: 'MetOk', executor: 'exec' }) >= 0.02, 'the exec step slept 20 ms');
  assert.equal(value(s, `${step}_bucket`, { type: 'MetOk', executor: 'exec', le: '0.005' }), 0, 'a 20 ms step is not under 5 ms');
  const wait = 'asyncd_queue_wait_seconds';
  checkHistogram(s, wait);
  for (const [product, type] of [['cdb', 'MetOk'], ['cdb', 'MetRetry'], ['mongodb', 'MetFail']])
    assert.equal(value(s, `${wait}_count`, { product, type }), 1, `one first claim of ${type} (a retry's claim is not one)`);
  const tr = 'asyncd_task_transitions_total';
  assert.equal(value(s, tr, { product: 'cdb', to: 'running' }), 2);
  assert.equal(value(s, tr, { product: 'cdb', to: 'success' }), 2);
  assert.equal(value(s, tr, { product: 'mongodb', to: 'running' }), 1);
  assert.equal(value(s, tr, { product: 'mongodb', to: 'failed' }), 1);
  assert.equal(value(s, tr, { product: 'cdb', to: 'failed' }), 0, 'a zero series is there for rate()');
  assert.equal(pick(s, tr, { product: 'cdb', to: 'failed' }).length, 1);
  assert.equal(value(s, 'asyncd_task_retries_total', { product: 'cdb' }), 1);
  assert.equal(value(s, 'asyncd_task_retries_total', { product: 'mongodb' }), 0);
  for (const result of ['delivered', 'retry', 'failed'])
    assert.equal(value(s, 'asyncd_webhook_deliveries_total', { result }), 0, `webhook ${result} at 0`);
  assert.equal(value(s, 'asyncd_tasks_running', { node: NODE }), 0, 'nothing runs now');
  assert.equal(value(s, 'asyncd_tasks', { scope: 'cluster', product: 'cdb', state: 'success' }), 2);
  assert.ok(pick(s, 'asyncd_tasks').every((x) => x.labels.scope === 'cluster'), 'every asyncd_tasks series says scope="cluster"');
  assert.ok(d.alive());
});

test('running and queued: this node\'s running gauge, the store\'s queue and its oldest age', T, async () => {
  const long = await d.createTask({ product: 'mongodb', type: 'MetLong', steps: [shStep('long', 'sleep 30')] });
  await waitState(d, long, ['running']);
  const queued = await d.createTask({ product: 'cdb', type: 'MetQueued', steps: [{ name: 'n', do: { noop: {} } }] });
  await sleep(1200); // --max-running 1: it waits behind the long one
  assert.equal((await d.getTask(queued)).state, 'initial');
  const s = await scrape();
  assert.equal(value(s, 'asyncd_tasks_running', { node: NODE }), 1);
  assert.equal(value(s, 'asyncd_tasks_queued', { scope: 'cluster', product: 'cdb' }), 1);
  assert.equal(value(s, 'asyncd_tasks_queued', { scope: 'cluster', product: 'mongodb' }), 0);
  const age = value(s, 'asyncd_tasks_oldest_queued_age_seconds', { scope: 'cluster', product: 'cdb' });
  assert.ok(age >= 1 && age < 60, `oldest queued age ${age} s`);
  assert.equal(value(s, 'asyncd_tasks_oldest_queued_age_seconds', { scope: 'cluster', product: 'mongodb' }), 0);
  await d.verb(long, 'kill');
  await waitState(d, queued, ['success']);
  const s2 = await scrape();
  assert.equal(value(s2, 'asyncd_tasks_queued', { scope: 'cluster', product: 'cdb' }), 0);
  assert.equal(value(s2, 'asyncd_operator_verbs_total', { product: 'mongodb', verb: 'kill' }), 1);
  assert.equal(value(s2, 'asyncd_operator_verbs_total', { product: 'cdb', verb: 'kill' }), 0);
  assert.equal(value(s2, 'asyncd_task_transitions_total', { product: 'mongodb', to: 'killed' }), 1, 'a kill is a transition');
  assert.ok(value(s2, 'asyncd_queue_wait_seconds_sum', { product: 'cdb', type: 'MetQueued' }) >= 1, 'its wait was timed');
});

test('Cloud API: an error counts under its action and code; an unknown action adds no label', T, async () => {
  await expectCode(d.describe('cdb', unknownId('cdb')), 'InvalidParameter.InvalidAsyncRequestId', 'unknown id');
  const before = await scrape();
  const name = 'asyncd_cloudapi_requests_total';
  const err = { product: 'cdb', action: 'DescribeAsyncRequestInfo', code: 'InvalidParameter.InvalidAsyncRequestId' };
  assert.equal(value(before, name, err), 1);
  const ok = await d.createTask({ product: 'cdb', type: 'MetDescribe', steps: [{ name: 'n', do: { noop: {} } }] });
  await d.describe('cdb', ok);
  await expectCode(d.cdb().request('MetNoSuchAction', {}), 'InvalidAction', 'unknown action');
  await expectCode(d.cdb().request('MetNoSuchAction2', {}), 'InvalidAction', 'unknown action');
  const s = await scrape();
  assert.equal(value(s, name, err), 1);
  assert.equal(value(s, name, { product: 'cdb', action: 'DescribeAsyncRequestInfo', code: 'ok' }), 1);
  assert.equal(value(s, name, { product: 'cdb', action: 'other', code: 'InvalidAction' }), 2);
  assert.ok(!pick(s, name).some((x) => /MetNoSuch/.test(x.labels.action)), 'no label value of a made-up action');
  assert.ok(pick(s, name).every((x) => x.labels.action && x.labels.code), 'every series has action and code');
});

test('a state change an external driver reports counts as a transition', T, async () => {
  const id = await d.createTask({ product: 'mongodb', type: 'MetReported', steps: [{ name: 'ext', do: { remote: {} } }] });
  const count = (s, to) => value(s, 'asyncd_task_transitions_total', { product: 'mongodb', to });
  const before = await scrape();
  await d.adminOk('POST', `/v1/tasks/${id}/transition`, { to: 'running', message: 'picked up' });
  await d.adminOk('POST', `/v1/tasks/${id}/transition`, { to: 'success', message: 'done' });
  const s = await scrape();
  assert.equal(count(s, 'running') - count(before, 'running'), 1, 'initial -> running');
  assert.equal(count(s, 'success') - count(before, 'success'), 1);
});

test('a restart under another node id takes the dead node\'s lease over and counts it', T, async () => {
  const id = await d.createTask({ product: 'cdb', type: 'MetTakeover', steps: [shStep('long', 'sleep 4; echo done')] });
  await waitState(d, id, ['running']);
  await d.kill9();
  d.args = args('met-2');
  await d.start();
  const task = await waitState(d, id, ['success', 'failed', 'paused'], { timeoutMs: 30000 * SLOW });
  assert.equal(task.state, 'success', show(task));
  const s = await scrapeSettled('met-2');
  assert.equal(value(s, 'asyncd_lease_takeovers_total', { product: 'cdb' }), 1);
  assert.equal(value(s, 'asyncd_task_transitions_total', { product: 'cdb', to: 'running' }), 0,
    'a takeover is no move to running: the task was running');
  assert.equal(value(s, 'asyncd_queue_wait_seconds_count', { type: 'MetTakeover' }), 0);
  assert.equal(value(s, 'asyncd_step_duration_seconds_count', { type: 'MetTakeover', executor: 'exec' }), 1);
  assert.equal(value(s, 'asyncd_tasks_running', { node: 'met-2' }), 0);
  assert.equal(pick(s, 'asyncd_tasks_running').length, 1, 'one running gauge: this node\'s');
});

test('two nodes on one PostgreSQL store: the same store-wide values, each node its own running gauge',
  { ...T, skip: PG_URL ? false : 'needs the PostgreSQL store (ASYNCD_TEST_PG_URL)' }, async () => {
  const b = await startNode(d, { nodeId: 'met-b', args: [...args('met-b'), '--workers', '0'] });
  try {
    const long = await d.createTask({ product: 'cdb', type: 'MetTwoNodes', steps: [shStep('long', 'sleep 30')] });
    await waitState(d, long, ['running']);
    const [sa, sb] = [await scrape(d), await scrape(b)];
    const cluster = (s) => pick(s, 'asyncd_tasks').map((x) => `${JSON.stringify(x.labels)} ${x.value}`).sort();
    assert.deepEqual(cluster(sb), cluster(sa), 'every node reports the store\'s counts');
    assert.equal(value(sa, 'asyncd_tasks', { scope: 'cluster', product: 'cdb', state: 'running' }), 1);
    assert.equal(value(sa, 'asyncd_tasks_running', { node: 'met-2' }), 1, 'the node that runs it');
    assert.equal(value(sb, 'asyncd_tasks_running', { node: 'met-b' }), 0, 'the other node runs nothing');
    assert.equal(pick(sb, 'asyncd_tasks_running').length, 1);
    await d.verb(long, 'kill');
  } finally {
    await b.stop();
  }
});
