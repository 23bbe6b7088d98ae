// Many SDK clients at once (both products, several accounts, every signing mode) while the
// admin API moves tasks: every answer belongs to the task and account asked about.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { NOT_FOUND, NO_LIMITS, PRODUCTS, SIGN_MODES, SLOW, start } from './lib/asyncd.mjs';

let d;
const accounts = [];
before(async () => {
  d = await start({ args: NO_LIMITS });
  accounts.push(d.creds, await d.createAccount(), await d.createAccount());
});
after(async () => { await d?.stop(); });

test('600 concurrent calls across accounts, products and modes: no cross-talk', { timeout: 120000 * SLOW }, async () => {
  // Each task's Info (cdb) is unique, so an answer for the wrong task would show.
  const tasks = [];
  for (const [ai, acct] of accounts.entries()) {
    for (const p of PRODUCTS) {
      for (let k = 0; k < 4; k++) {
        const info = `acct${ai}-${p}-${k}`;
        const { id } = await d.taskInState(p, 'success', { uin: acct.Uin, info });
        tasks.push({ ai, p, id, info });
      }
    }
  }
  const clients = new Map();
  const client = (ai, p, mi) => {
    const key = `${ai}/${p}/${mi}`;
    if (!clients.has(key)) clients.set(key, d.client(p, { ...SIGN_MODES[mi], creds: accounts[ai] }));
    return clients.get(key);
  };
  const calls = [];
  for (let i = 0; i < 600; i++) {
    const t = tasks[i % tasks.length];
    const asker = (i * 7) % accounts.length;
    const mi = i % SIGN_MODES.length;
    calls.push(client(asker, t.p, mi).DescribeAsyncRequestInfo({ AsyncRequestId: t.id })
      .then((r) => ({ t, asker, r }), (e) => ({ t, asker, e })));
  }
  // Meanwhile the admin API keeps moving other tasks.
  const churn = (async () => {
    for (let i = 0; i < 40; i++) {
      const { id } = await d.taskInState(PRODUCTS[i % 2], 'running');
      await d.verb(id, 'pause');
      await d.verb(id, 'kill');
    }
  })();
  const results = await Promise.all(calls);
  await churn;
  for (const { t, asker, r, e } of results) {
    if (asker === t.ai) {
      assert.ok(r, `owner asks for own ${t.p} task: ${e && `${e.code} ${e.message}`}`);
      if (t.p === 'cdb') assert.equal(r.Info, t.info);
      else assert.equal(r.Status, 'success');
    } else {
      assert.ok(e, `account ${asker} must not see account ${t.ai}'s task`);
      assert.equal(e.code, NOT_FOUND[t.p]);
    }
  }
  assert.ok(d.alive());
});
