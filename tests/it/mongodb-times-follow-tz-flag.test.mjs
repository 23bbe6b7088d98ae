// mongodb StartTime/EndTime are "YYYY-MM-DD HH:MM:SS" wall-clock times in the --tz zone,
// whatever the process's own TZ is (the harness runs asyncd with TZ=America/Los_Angeles).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_LIMITS, SIGN_MODES, SLOW, expectStartFails, fmtTime, start } from './lib/asyncd.mjs';

let utc;
let sh;

before(async () => {
  utc = await start({ args: NO_LIMITS });
  sh = await start({ args: NO_LIMITS, tz: 'Asia/Shanghai' });
});
after(async () => {
  await utc?.stop();
  await sh?.stop();
});

async function finishedTask(d) {
  const { id } = await d.taskInState('mongodb', 'success');
  return { id, t: await d.getTask(id) };
}

test('--tz UTC: StartTime/EndTime equal the admin start_ms/end_ms in UTC', { timeout: 30000 * SLOW }, async () => {
  const { id, t } = await finishedTask(utc);
  for (const mode of SIGN_MODES) {
    const r = await utc.mongodb(mode).DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.equal(r.StartTime, fmtTime(t.start_ms), mode.name);
    assert.equal(r.EndTime, fmtTime(t.end_ms), mode.name);
  }
});

test('--tz Asia/Shanghai: StartTime/EndTime are the admin times plus 8 hours', { timeout: 30000 * SLOW }, async () => {
  const { id, t } = await finishedTask(sh);
  for (const mode of SIGN_MODES) {
    const r = await sh.mongodb(mode).DescribeAsyncRequestInfo({ AsyncRequestId: id });
    assert.equal(r.StartTime, fmtTime(t.start_ms, 8), mode.name);
    assert.equal(r.EndTime, fmtTime(t.end_ms, 8), mode.name);
  }
});

test('the admin API keeps UTC ISO times whatever --tz says', async () => {
  const { t } = await finishedTask(sh);
  assert.equal(t.start_time, new Date(t.start_ms).toISOString(), 'start_time is start_ms as ISO UTC');
  assert.equal(t.end_time, new Date(t.end_ms).toISOString(), 'end_time is end_ms as ISO UTC');
  assert.equal(t.created_at, new Date(t.created_ms).toISOString(), 'created_at is created_ms as ISO UTC');
});

test('an unknown --tz zone is refused at start-up with a message, not silently UTC', async () => {
  await expectStartFails({ args: NO_LIMITS, tz: 'Mars/Olympus_Mons' }, 'a zone it cannot load');
});
