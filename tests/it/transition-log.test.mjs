// The log tells what tasks do (issue: "no line says that a task started, failed, was retried,
// paused, killed or taken over"): at the default info level, one line per transition with the
// task, product, type, instance, from, to, node, attempt and message, written after the store
// committed it, and one line per operator verb naming the token that acted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { NO_LIMITS, SLOW, sleep, start } from './lib/asyncd.mjs';
import { q, shStep, show, tempDir, waitState } from './lib/engine.mjs';

const T = { timeout: 60000 * SLOW };
let d;
before(async () => { d = await start({ args: [...NO_LIMITS, '--node-id', 'logger-1'] }); });
after(async () => { if (d && d.alive()) await d.stop(); });

/** The log's lines about task id, waiting up to 5 s for one matching re. */
async function linesOf(id, re) {
  const until = Date.now() + 5000 * SLOW;
  for (;;) {
    const lines = (d.stderrText || '').split('\n').filter((l) => l.includes(`task ${id} `));
    if (lines.some((l) => re.test(l)) || Date.now() > until) return lines;
    await sleep(50);
  }
}

test('a retried step that then succeeds: started, retried, succeeded, each with its fields', T, async () => {
  const cnt = q(path.join(tempDir(), 'count'));
  const script = `n=$(cat ${cnt} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${cnt};`
    + ` if [ $n -lt 2 ]; then echo "transient failure $n" >&2; exit 3; fi; echo "worked on try $n"`;
  const id = await d.createTask({ product: 'cdb', type: 'LogRetryIt', steps: [shStep('flaky', script, { retries: 2 })] });
  const task = await waitState(d, id, ['success', 'paused', 'failed']);
  assert.equal(task.state, 'success', show(task));
  const lines = await linesOf(id, /to=success/);
  const fields = 'product=cdb type=LogRetryIt instance=- ';
  assert.ok(lines.some((l) => l.includes(`task ${id} ${fields}from=initial to=running node=logger-1 attempt=`)),
    `a line says the task started on this node:\n${lines.join('\n')}`);
  assert.ok(lines.some((l) => /transient failure 1/.test(l) && l.includes(fields)),
    `a line says the step failed and is retried, with its message:\n${lines.join('\n')}`);
  assert.ok(lines.some((l) => l.includes(`${fields}from=running to=success node=logger-1`) && /worked on try 2/.test(l)),
    `a line says the task succeeded, with its Info:\n${lines.join('\n')}`);
  assert.ok(d.alive());
});

test('a killed running task: the verb names its token, the end names the state', T, async () => {
  const id = await d.createTask({ product: 'mongodb', type: 'LogKillIt', steps: [shStep('long', 'sleep 30')] });
  await waitState(d, id, ['running']);
  const r = await d.admin('POST', `/v1/tasks/${id}/kill`, {});
  assert.equal(r.status, 200, r.text);
  const lines = await linesOf(id, /to=killed|verb=kill/);
  assert.ok(lines.some((l) => / product=mongodb type=LogKillIt .*verb=kill by=\S+ state=/.test(l)),
    `a line names the verb and who asked:\n${lines.join('\n')}`);
  const end = await linesOf(id, /to=killed|state=killed/);
  assert.ok(end.some((l) => /to=killed|state=killed/.test(l)), `a line says the task ended killed:\n${end.join('\n')}`);
  assert.ok(d.alive());
});

test('--log-format json: every line is one JSON object; a transition line carries its fields', T, async () => {
  const j = await start({ args: [...NO_LIMITS, '--node-id', 'json-1', '--log-format', 'json'] });
  try {
    const id = await j.createTask({ product: 'cdb', type: 'LogJsonIt', steps: [shStep('say', 'echo "a \\"quoted\\" word"')] });
    const task = await waitState(j, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    let lines = [];
    for (const until = Date.now() + 5000 * SLOW; Date.now() < until; await sleep(50)) {
      lines = (j.stderrText || '').split('\n').filter((l) => l.trim());
      if (lines.some((l) => l.includes('"to":"success"'))) break;
    }
    const objs = lines.map((l) => {
      try { return JSON.parse(l); } catch { assert.fail(`not one JSON object: ${l}`); }
    });
    for (const o of objs) assert.ok(o.ts && o.level && typeof o.msg === 'string', JSON.stringify(o));
    assert.ok(objs.some((o) => /listening cloudapi=/.test(o.msg)), 'the listening line is there, in msg');
    const end = objs.find((o) => o.task === id && o.to === 'success');
    assert.ok(end, `a transition object for the task:\n${lines.join('\n')}`);
    assert.equal(end.product, 'cdb');
    assert.equal(end.type, 'LogJsonIt');
    assert.equal(end.from, 'running');
    assert.equal(end.node, 'json-1');
    assert.match(end.message, /a 'quoted' word/);
  } finally {
    await j.stop();
  }
});

test('a reported transition names the token that reported it', T, async () => {
  const id = await d.createTask({ product: 'cdb', type: 'LogMoveIt', steps: [{ name: 'ext', do: { remote: {} } }] });
  const r = await d.admin('POST', `/v1/tasks/${id}/transition`, { to: 'running', message: 'worker picked it up' });
  assert.equal(r.status, 200, r.text);
  const lines = await linesOf(id, /verb=transition/);
  assert.ok(lines.some((l) => / product=cdb type=LogMoveIt .*verb=transition by=(?!-)\S+ state=running .*worker picked it up/.test(l)),
    `a line names the reporting token and the state now:\n${lines.join('\n')}`);
  assert.ok(d.alive());
});
