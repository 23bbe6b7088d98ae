// The engine drives real exec tasks (/bin/sh steps writing files in a temp dir) through every path:
// success, retry, pause/resume, pause/skip, undo (and a failing undo), kill, remove, operator pause,
// timeout and a missing program. Every outcome is read back through the admin API and through the
// official SDK in the task's own dialect (cdb Status/Info, mongodb Status/StartTime/EndTime).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { NO_LIMITS, PRODUCTS, SLOW, assertAdminError, sleep, start } from './lib/asyncd.mjs';
import {
  checkCloudView, checkHistory, claimEvents, procState, q, readLines, sh, shStep, show, tempDir,
  waitFile, waitState, waitUntil,
} from './lib/engine.mjs';

const TZ = 'Asia/Shanghai';
const TZ_OFFSET = 8;
const T = { timeout: 90000 * SLOW };
let d;

before(async () => {
  d = await start({ args: [...NO_LIMITS, '--workers', '4', '--lease-s', '15'], tz: TZ });
});
after(async () => {
  if (d && d.alive()) await d.stop();
});

const cloud = (task, opts = {}) => checkCloudView(d, task, { tzOffsetHours: TZ_OFFSET, ...opts });
const create = (product, steps, on_failure = 'pause') => d.createTask({ product, steps, on_failure });
const verbRaw = (id, verb, body = {}) => d.admin('POST', `/v1/tasks/${id}/${verb}`, body);

async function expect409(id, verb, why) {
  const r = await verbRaw(id, verb);
  assertAdminError(r, 409, `${verb} ${why}`);
  return r;
}

for (const P of PRODUCTS) {
  test(`success: steps run in order; Info is the last stdout line of the last step that printed one (${P})`, T, async () => {
    const dir = tempDir();
    const order = path.join(dir, 'order');
    const id = await create(P, [
      shStep('first', `echo s1 >> ${q(order)}; echo 'first line'; echo one`),
      shStep('second', `echo s2 >> ${q(order)}; printf 'alpha\\nlast line\\n\\n\\n'`),
      shStep('silent', `echo s3 >> ${q(order)}`),
    ]);
    const task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.deepEqual(readLines(order), ['s1', 's2', 's3'], 'each step ran once, in order');
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'done', 'done'], show(task));
    assert.equal(task.steps[0].message, 'one', 'a step\'s message is its last stdout line');
    assert.equal(task.steps[1].message, 'last line', 'trailing empty lines are not the message');
    assert.ok(!task.steps[2].message, `a step that printed nothing has no message: ${show(task)}`);
    assert.equal(task.info, 'last line', 'info: the last step that printed a line');
    const claims = checkHistory(task, 'success');
    assert.equal(claims.length, 1, `one claim: ${show(task)}`);
    assert.equal(task.events[0].to, 'initial');
    assert.equal(task.events[1].to, 'running');
    await cloud(task, { info: 'last line' });
  });
}

test('exec steps get the task as JSON on stdin, ASYNCD_* variables, their env and their cwd', T, async () => {
  const dir = tempDir();
  const id = await create('cdb', [
    shStep('warm-up', 'true'),
    { name: 'inspect',
      do: sh('cat > stdin.json; env | grep -E "^ASYNCD_(TASK_ID|STEP_INDEX|STEP_NAME|PHASE|ATTEMPT)=" | sort > env.txt; echo "FOO=$FOO" >> env.txt; pwd > pwd.txt; echo inspected',
        { env: { FOO: 'bar baz' }, cwd: dir }) },
  ]);
  const task = await waitState(d, id, ['success', 'paused', 'failed']);
  assert.equal(task.state, 'success', show(task));
  const stdin = JSON.parse(fs.readFileSync(path.join(dir, 'stdin.json'), 'utf8'));
  assert.equal(stdin.AsyncRequestId, id, `stdin is the task: ${JSON.stringify(stdin).slice(0, 400)}`);
  assert.equal(stdin.steps.length, 2, 'stdin has the steps');
  assert.deepEqual(readLines(path.join(dir, 'env.txt')), [
    'ASYNCD_ATTEMPT=1', 'ASYNCD_PHASE=do', 'ASYNCD_STEP_INDEX=1', 'ASYNCD_STEP_NAME=inspect',
    `ASYNCD_TASK_ID=${id}`, 'FOO=bar baz',
  ]);
  assert.equal(fs.readFileSync(path.join(dir, 'pwd.txt'), 'utf8').trim(), fs.realpathSync(dir), 'cwd');
});

for (const P of PRODUCTS) {
  test(`retry then success: a step failing once succeeds on its retry after a 0.5-1 s backoff (${P})`, T, async () => {
    const dir = tempDir();
    const cnt = q(path.join(dir, 'count'));
    const script = `n=$(cat ${cnt} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${cnt};`
      + ` date +%s%N >> ${q(path.join(dir, 'times'))}; echo "$ASYNCD_ATTEMPT" >> ${q(path.join(dir, 'attempts'))};`
      + ` if [ $n -lt 2 ]; then echo "transient failure $n" >&2; exit 3; fi; echo "worked on try $n"`;
    const id = await create(P, [shStep('flaky', script, { retries: 2 })]);
    const task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.deepEqual(readLines(path.join(dir, 'attempts')), ['1', '2'], 'ASYNCD_ATTEMPT counts the attempts');
    const [t1, t2] = readLines(path.join(dir, 'times')).map((t) => Number(BigInt(t) / 1000000n));
    const gap = t2 - t1;
    assert.ok(gap >= 450, `first retry no sooner than 0.5 s after the failure: ${gap} ms`);
    assert.ok(gap <= 1000 + 1500 * SLOW, `first retry within about 1 s: ${gap} ms`);
    assert.equal(task.steps[0].state, 'done');
    assert.equal(task.steps[0].message, 'worked on try 2');
    assert.equal(task.info, 'worked on try 2');
    assert.ok(task.events.some((e) => /transient failure 1/.test(e.message || '')),
      `the failed attempt is in the history with its stderr: ${show(task)}`);
    assert.ok(!task.events.some((e) => e.to === 'paused'), 'a retried step does not pause the task');
    checkHistory(task, 'success');
    await cloud(task, { info: 'worked on try 2' });
  });
}

for (const P of PRODUCTS) {
  test(`failure -> paused -> resume retries the failed step -> success (${P})`, T, async () => {
    const dir = tempDir();
    const runs = q(path.join(dir, 'runs'));
    const fixed = q(path.join(dir, 'fixed'));
    const id = await create(P, [
      shStep('prepare', `echo s1 >> ${runs}; echo prepared`),
      shStep('migrate', `echo s2 >> ${runs}; if [ ! -f ${fixed} ]; then echo 'some noise' >&2; echo 'disk full' >&2; exit 1; fi; echo 'step two ok'`),
      shStep('finish', `echo s3 >> ${runs}; echo 'all good'`),
    ]);
    let task = await waitState(d, id, ['paused', 'success', 'failed']);
    assert.equal(task.state, 'paused', show(task));
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'failed', 'pending'], show(task));
    assert.match(task.steps[1].message, /disk full/, 'the failed step\'s message is its last stderr line');
    assert.doesNotMatch(task.steps[1].message, /some noise/, 'only the last stderr line');
    assert.equal(task.end_ms ?? null, null, 'paused is not final: no end time');
    await cloud(task, { info: /disk full/ });
    await expect409(id, 'remove', 'on a paused task');
    await expect409(id, 'pause', 'on a paused task');

    fs.writeFileSync(path.join(dir, 'fixed'), '');
    const ans = await d.verb(id, 'resume', { message: 'disk cleaned' });
    assert.ok(['running', 'success'].includes(ans.state), `resume answers running: ${show(ans)}`);
    task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.deepEqual(readLines(path.join(dir, 'runs')), ['s1', 's2', 's2', 's3'], 'only the failed step ran again');
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'done', 'done']);
    assert.equal(task.info, 'all good');
    const claims = checkHistory(task, 'success');
    assert.equal(claims.length, 2, `claimed again after resume: ${show(task)}`);
    assert.ok(task.events.some((e) => e.from === 'running' && e.to === 'paused'));
    assert.ok(task.events.some((e) => e.from === 'paused' && e.to === 'running'));
    await cloud(task, { info: 'all good' });
  });
}

for (const P of PRODUCTS) {
  test(`failure -> paused -> skip marks the step skipped and goes on -> success (${P})`, T, async () => {
    const dir = tempDir();
    const runs = q(path.join(dir, 'runs'));
    const id = await create(P, [
      shStep('prepare', `echo s1 >> ${runs}; echo prepared`),
      shStep('optional', `echo s2 >> ${runs}; echo 'not supported here' >&2; exit 7`),
      shStep('finish', `echo s3 >> ${runs}; echo 'finished without it'`),
    ]);
    let task = await waitState(d, id, ['paused', 'success', 'failed']);
    assert.equal(task.state, 'paused', show(task));
    await cloud(task, { info: /not supported here/ });
    const ans = await d.verb(id, 'skip');
    assert.ok(['running', 'success'].includes(ans.state), `skip answers running: ${show(ans)}`);
    task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'skipped', 'done'], show(task));
    assert.deepEqual(readLines(path.join(dir, 'runs')), ['s1', 's2', 's3'], 'the skipped step did not run again');
    assert.equal(task.info, 'finished without it');
    checkHistory(task, 'success');
    await cloud(task, { info: 'finished without it' });
  });

  test(`skip of the failed last step -> success whose Info is the last done step's, not the failure's (${P})`, T, async () => {
    const id = await create(P, [
      shStep('prepare', 'echo prepared the ground'),
      shStep('optional', "echo 'not supported here' >&2; exit 7"),
    ]);
    let task = await waitState(d, id, ['paused', 'success', 'failed']);
    assert.equal(task.state, 'paused', show(task));
    await cloud(task, { info: /not supported here/ });
    await d.verb(id, 'skip');
    task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'skipped'], show(task));
    assert.equal(task.info, 'prepared the ground', show(task));
    assert.equal(task.current_step, 1, 'a finished task shows the step it ended on, never one past the last');
    await cloud(task, { info: 'prepared the ground' });
  });
}

for (const P of PRODUCTS) {
  test(`on_failure undo: done steps are undone in reverse order -> undoed (${P})`, T, async () => {
    const dir = tempDir();
    const order = q(path.join(dir, 'order'));
    const f = (n) => q(path.join(dir, n));
    const mk = (n) => shStep(`make-${n}`, `touch ${f(n)}; echo "do ${n}" >> ${order}; echo "made ${n}"`,
      { undo: `echo "undo ${n} $ASYNCD_PHASE" >> ${order}; rm ${f(n)}; echo "removed ${n}"` });
    const id = await create(P, [
      mk('a'),
      shStep('make-keep', `touch ${f('keep')}; echo "do keep" >> ${order}`), // no undo
      mk('b'),
      mk('c'),
      shStep('break', `echo "do break" >> ${order}; echo 'quota exceeded' >&2; exit 1`,
        { undo: `echo "undo break" >> ${order}` }),
    ], 'undo');
    const task = await waitState(d, id, ['undoed', 'failed', 'paused', 'success']);
    assert.equal(task.state, 'undoed', show(task));
    assert.deepEqual(readLines(path.join(dir, 'order')), [
      'do a', 'do keep', 'do b', 'do c', 'do break', 'undo c undo', 'undo b undo', 'undo a undo',
    ], 'undo runs for done steps only, in reverse order, with ASYNCD_PHASE=undo');
    for (const n of ['a', 'b', 'c']) assert.ok(!fs.existsSync(path.join(dir, n)), `${n} removed by its undo`);
    assert.ok(fs.existsSync(path.join(dir, 'keep')), 'a step without undo keeps its effect');
    assert.deepEqual(task.steps.map((s) => s.state), ['undone', 'done', 'undone', 'undone', 'failed'], show(task));
    assert.match(task.steps[4].message, /quota exceeded/);
    assert.ok(!task.events.some((e) => e.to === 'paused'), 'on_failure undo does not pause');
    assert.match(task.info, /quota exceeded/, 'Info: the failure that decided the state, not an undo step');
    checkHistory(task, 'undoed');
    await cloud(task, { info: /quota exceeded/ });
  });
}

for (const P of PRODUCTS) {
  test(`on_failure undo with an undo that fails -> failed (cdb FAILED, mongodb failed) (${P})`, T, async () => {
    const dir = tempDir();
    const order = q(path.join(dir, 'order'));
    const id = await create(P, [
      shStep('one', `touch ${q(path.join(dir, 'a'))}`, { undo: `echo 'undo 1' >> ${order}; rm ${q(path.join(dir, 'a'))}` }),
      shStep('two', 'echo two', { undo: `echo 'undo 2' >> ${order}; echo 'undo refused' >&2; exit 2` }),
      shStep('three', `echo 'three broke' >&2; exit 1`),
    ], 'undo');
    const task = await waitState(d, id, ['undoed', 'failed', 'paused', 'success']);
    assert.equal(task.state, 'failed', show(task));
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'undo_failed', 'failed'], show(task));
    assert.match(task.steps[1].message, /undo refused/);
    assert.deepEqual(readLines(path.join(dir, 'order')), ['undo 2'], 'the undo stops at the first failing undo');
    assert.ok(fs.existsSync(path.join(dir, 'a')), 'step one was not undone');
    checkHistory(task, 'failed');
    await cloud(task);
  });
}

for (const P of PRODUCTS) {
  test(`operator undo of a paused task runs the undo phase -> undoed (${P})`, T, async () => {
    const dir = tempDir();
    const order = q(path.join(dir, 'order'));
    const id = await create(P, [
      shStep('one', `echo 'do 1' >> ${order}`, { undo: `echo 'undo 1' >> ${order}; echo 'one undone'` }),
      shStep('two', `echo 'do 2' >> ${order}; echo broken >&2; exit 1`, { undo: `echo 'undo 2' >> ${order}` }),
    ]);
    let task = await waitState(d, id, ['paused', 'failed', 'success']);
    assert.equal(task.state, 'paused', show(task));
    const ans = await d.verb(id, 'undo', { message: 'roll back' });
    assert.ok(['running', 'undoed'].includes(ans.state), `undo answers running (undo phase): ${show(ans)}`);
    if (ans.state === 'running') assert.equal(ans.phase, 'undo', `phase is undo: ${show(ans)}`);
    task = await waitState(d, id, ['undoed', 'failed', 'paused', 'success']);
    assert.equal(task.state, 'undoed', show(task));
    assert.deepEqual(readLines(path.join(dir, 'order')), ['do 1', 'do 2', 'undo 1']);
    assert.deepEqual(task.steps.map((s) => s.state), ['undone', 'failed'], show(task));
    assert.match(task.info, /broken/, `Info: the failure, not "one undone": ${show(task)}`);
    assert.equal(task.current_step, 0, 'an undone task shows the first step, undone last, never -1');
    checkHistory(task, 'undoed');
    await cloud(task, { info: /broken/ });
  });
}

/** A step that records its shell's pid and a child's pid, then waits on a 60 s sleep. */
function longStep(dir, name = 'long', { ignoreTerm = false } = {}) {
  const pre = ignoreTerm ? "trap '' TERM; " : '';
  return shStep(name, `${pre}sleep 60 & echo $! > ${q(path.join(dir, `${name}.child`))}; echo $$ > ${q(path.join(dir, `${name}.pid`))}; wait`);
}

async function pidsOf(dir, name = 'long') {
  const pid = Number(await waitFile(path.join(dir, `${name}.pid`)));
  const child = Number(await waitFile(path.join(dir, `${name}.child`)));
  assert.equal(procState(pid), 'alive', 'the step is running');
  assert.equal(procState(child), 'alive', 'its child is running');
  return { pid, child };
}

/** The step's shell (asyncd's child) must be reaped, its sleep (a grandchild) dead. */
async function expectGone({ pid, child }, withinMs, what) {
  const ms = await waitUntil(() => procState(pid) === 'gone' && procState(child) !== 'alive', withinMs,
    `${what}: step process ${pid} (${procState(pid)}) and its child ${child} (${procState(child)}) gone`);
  assert.equal(procState(pid), 'gone', 'asyncd reaped its child (no zombie)');
  return ms;
}

for (const P of PRODUCTS) {
  test(`operator undo while a step runs stops the step first, then undoes the done steps -> undoed (${P})`, T, async () => {
    const dir = tempDir();
    const order = q(path.join(dir, 'order'));
    const id = await create(P, [
      shStep('one', `echo 'do 1' >> ${order}`, { undo: `echo 'undo 1' >> ${order}` }),
      longStep(dir),
      shStep('three', `echo 'do 3' >> ${order}`),
    ]);
    const pids = await pidsOf(dir);
    const ans = await d.verb(id, 'undo');
    assert.ok(['running', 'undoed'].includes(ans.state), `undo answers running (undo phase): ${show(ans)}`);
    await expectGone(pids, 2500 * SLOW, 'undo of a running task');
    const task = await waitState(d, id, ['undoed', 'failed', 'paused', 'success']);
    assert.equal(task.state, 'undoed', show(task));
    assert.deepEqual(readLines(path.join(dir, 'order')), ['do 1', 'undo 1']);
    assert.equal(task.steps[0].state, 'undone', show(task));
    checkHistory(task, 'undoed');
    await cloud(task);
  });
}

for (const P of PRODUCTS) {
  for (const ignoreTerm of [false, true]) {
    const how = ignoreTerm ? 'a step that ignores SIGTERM is SIGKILLed' : 'SIGTERM stops the step';
    test(`kill while a 60 s step runs -> killed at once; ${how}; its process group is gone (${P})`, T, async () => {
      const dir = tempDir();
      const id = await create(P, [
        shStep('quick', 'echo quick'),
        longStep(dir, 'long', { ignoreTerm }),
        shStep('never', `touch ${q(path.join(dir, 'never'))}`),
      ]);
      const pids = await pidsOf(dir);
      let task = await d.getTask(id);
      assert.equal(task.state, 'running', show(task));
      assert.equal(task.current_step, 1, 'the long step is the current one');
      await expect409(id, 'remove', 'on a running task');
      await expect409(id, 'resume', 'on a running task');
      await expect409(id, 'skip', 'on a running task');
      const t0 = Date.now();
      const ans = await d.verb(id, 'kill', { message: 'operator kill' });
      assert.equal(ans.state, 'killed', show(ans));
      const ms = await expectGone(pids, (ignoreTerm ? 2500 : 2000) * SLOW, 'kill');
      if (ignoreTerm) assert.ok(Date.now() - t0 >= 900, `SIGKILL only after the 1 s grace: ${Date.now() - t0} ms`);
      await sleep(300);
      task = await d.getTask(id);
      assert.equal(task.state, 'killed', show(task));
      assert.ok(!fs.existsSync(path.join(dir, 'never')), 'no later step ran');
      assert.notEqual(task.steps[1].state, 'done', show(task));
      checkHistory(task, 'killed');
      await cloud(task);
      await expect409(id, 'kill', 'on a killed task');
      await expect409(id, 'resume', 'on a killed task');
      assert.ok(ms < 2500 * SLOW);
    });
  }
}

test('remove before start -> removed; the step never runs (a node with --workers 0 claims nothing)', T, async () => {
  const idle = await start({ args: [...NO_LIMITS, '--workers', '0'], tz: TZ });
  try {
    const dir = tempDir();
    const ids = {};
    for (const P of PRODUCTS) {
      ids[P] = await idle.createTask({ product: P, steps: [shStep('touch', `touch ${q(path.join(dir, P))}`)] });
    }
    await sleep(700);
    for (const P of PRODUCTS) {
      const t = await idle.getTask(ids[P]);
      assert.equal(t.state, 'initial', `--workers 0 claims nothing: ${show(t)}`);
      await checkCloudView(idle, t, { tzOffsetHours: TZ_OFFSET });
      const ans = await idle.verb(ids[P], 'remove', { message: 'not needed' });
      assert.equal(ans.state, 'removed', show(ans));
      const task = await idle.getTask(ids[P]);
      checkHistory(task, 'removed');
      assert.deepEqual(task.events.map((e) => [e.from, e.to]), [[null, 'initial'], ['initial', 'removed']]);
      await checkCloudView(idle, task, { tzOffsetHours: TZ_OFFSET });
      for (const v of ['remove', 'kill', 'resume', 'pause', 'undo', 'skip']) {
        assertAdminError(await idle.admin('POST', `/v1/tasks/${ids[P]}/${v}`, {}), 409, `${v} on a removed task`);
      }
      assert.ok(!fs.existsSync(path.join(dir, P)), 'the step never ran');
    }
  } finally {
    await idle.stop();
  }
});

for (const P of PRODUCTS) {
  test(`operator pause while a step runs: pause_requested, then paused at the step boundary; resume goes on (${P})`, T, async () => {
    const dir = tempDir();
    const runs = q(path.join(dir, 'runs'));
    const id = await create(P, [
      shStep('slow', `echo $$ > ${q(path.join(dir, 'slow.pid'))}; sleep 1.5; echo s1 >> ${runs}; echo 'first done'`),
      shStep('next', `echo s2 >> ${runs}; echo 'second done'`),
    ]);
    await waitFile(path.join(dir, 'slow.pid'));
    const ans = await d.verb(id, 'pause', { message: 'hold on' });
    assert.equal(ans.state, 'running', `pause answers running while the step runs: ${show(ans)}`);
    assert.ok(ans.pause_requested === 1 || ans.pause_requested === true, `pause_requested: ${JSON.stringify(ans.pause_requested)}`);
    let task = await waitState(d, id, ['paused', 'success', 'failed']);
    assert.equal(task.state, 'paused', show(task));
    assert.deepEqual(task.steps.map((s) => s.state), ['done', 'pending'], 'the running step finished; the next did not start');
    await sleep(500);
    assert.deepEqual(readLines(path.join(dir, 'runs')), ['s1']);
    await cloud(task);
    await d.verb(id, 'resume');
    task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.deepEqual(readLines(path.join(dir, 'runs')), ['s1', 's2'], 'resume after a pause does not re-run the done step');
    assert.equal(task.info, 'second done');
    checkHistory(task, 'success');
    await cloud(task, { info: 'second done' });
  });
}

for (const P of PRODUCTS) {
  test(`timeout_s exceeded -> the step fails with "timed out" and its process is stopped (${P})`, T, async () => {
    const dir = tempDir();
    const id = await create(P, [longStep(dir, 'long')].map((s) => ({ ...s, timeout_s: 1 })), 'fail');
    const pids = await pidsOf(dir);
    const t0 = Date.now();
    const task = await waitState(d, id, ['failed', 'paused', 'success']);
    assert.equal(task.state, 'failed', show(task));
    assert.ok(Date.now() - t0 < 4000 * SLOW, `failed soon after the 1 s timeout: ${Date.now() - t0} ms`);
    assert.equal(task.steps[0].state, 'failed');
    assert.match(task.steps[0].message, /timed out/, show(task));
    await expectGone(pids, 2500 * SLOW, 'timeout');
    checkHistory(task, 'failed');
    await cloud(task, { info: /timed out/ });
  });
}

for (const P of PRODUCTS) {
  test(`a missing program -> the step fails with "cannot run" (${P})`, T, async () => {
    const id = await create(P, [{ name: 'ghost', do: { exec: ['/nonexistent/asyncd-it-no-such-program', '--x'] } }], 'fail');
    const task = await waitState(d, id, ['failed', 'paused', 'success']);
    assert.equal(task.state, 'failed', show(task));
    assert.match(task.steps[0].message, /cannot run/, show(task));
    assert.match(task.steps[0].message, /asyncd-it-no-such-program/, 'the message names the program');
    checkHistory(task, 'failed');
    await cloud(task, { info: /cannot run/ });
  });
}

test('claim events carry lease numbers that strictly increase over pause/resume cycles', T, async () => {
  const dir = tempDir();
  const id = await create('cdb', [shStep('flaky', `[ -f ${q(path.join(dir, 'ok'))} ] || { echo no >&2; exit 1; }`)]);
  await waitState(d, id, 'paused');
  await d.verb(id, 'resume');
  await waitState(d, id, 'paused');
  fs.writeFileSync(path.join(dir, 'ok'), '');
  await d.verb(id, 'resume');
  const task = await waitState(d, id, ['success', 'failed']);
  assert.equal(task.state, 'success', show(task));
  const claims = checkHistory(task, 'success');
  assert.equal(claims.length, 3, show(task));
  assert.deepEqual(claims.map((c) => c.message.replace(/\d+$/, 'N')), ['started; lease N', 'claimed; lease N', 'claimed; lease N'], show(task));
});

for (const P of PRODUCTS) {
  test(`a step that failed and then succeeds silently on resume does not keep its failure as message or Info (${P})`, T, async () => {
    const dir = tempDir();
    const ok = q(path.join(dir, 'ok'));
    const id = await create(P, [shStep('flaky', `[ -f ${ok} ] || { echo 'not yet' >&2; exit 1; }`)]);
    let task = await waitState(d, id, ['paused', 'success', 'failed']);
    assert.equal(task.state, 'paused', show(task));
    assert.match(task.info, /not yet/, 'while paused, Info says why');
    fs.writeFileSync(path.join(dir, 'ok'), '');
    await d.verb(id, 'resume');
    task = await waitState(d, id, ['success', 'paused', 'failed']);
    assert.equal(task.state, 'success', show(task));
    assert.equal(task.steps[0].state, 'done');
    assert.ok(!/failed|not yet/.test(task.steps[0].message || ''),
      `a done step that printed nothing has no failure message: ${JSON.stringify(task.steps[0].message)}`);
    assert.ok(!/failed|not yet/.test(task.info || ''),
      `Info of a SUCCESS task is not the earlier failure (no step printed a line): ${JSON.stringify(task.info)}`);
  });
}
