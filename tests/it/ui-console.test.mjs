// The web console at /ui/ on the admin listener: its assets and headers over plain HTTP, and the
// page itself in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core): sign in
// with a reader token (sees, cannot act) and the admin token, find and open a task, kill a running
// one through its button and the confirmation, a refused verb's reason, live updates, instances
// and the overview. ASYNCD_TEST_NO_BROWSER=1 skips the browser part; otherwise a browser that
// cannot start fails the test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { IT_DIR, SLOW, assertAdminError, httpRequest, sleep, start } from './lib/asyncd.mjs';

const CHROMIUM = process.env.ASYNCD_TEST_CHROMIUM || '/usr/bin/chromium';
const NO_BROWSER = process.env.ASYNCD_TEST_NO_BROWSER === '1';
const SHOTS = path.join(IT_DIR, '.logs', 'ui-console');
const WAIT = 8000 * SLOW; // the page polls every 2 s: a change shows within one or two rounds

const SLEEP_STEP = { name: 'hold', do: { sleep: { s: 60 } } };
const NOOP_STEP = { name: 'quick', do: { noop: {} } };

let d;

async function makeTask(steps, extra = {}) {
  const r = await d.adminOk('POST', '/v1/tasks', {
    product: 'cdb', region: 'ap-guangzhou', uin: d.creds.Uin, type: 'UiTest', steps, ...extra,
  }, 201);
  return r.AsyncRequestId;
}

/** Waits (long-poll) until the task is in one of the states; answers the task. */
async function waitState(id, states) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const t = await d.adminOk('GET', `/v1/tasks/${id}?wait=1s`);
    if (states.includes(t.state)) return t;
    assert.ok(Date.now() < deadline, `task ${id} should reach ${states} but is ${t.state}: ${JSON.stringify(t.events)}`);
  }
}

async function newToken(scope) {
  const r = await d.adminOk('POST', '/v1/tokens', { scope, name: `ui-${scope}` }, 201);
  return r.token;
}

before(async () => {
  d = await start();
});

after(async () => {
  if (d) await d.stop();
});

describe('console assets over HTTP', () => {
  const get = (p, opts = {}) => httpRequest({ port: d.adminPort, path: p, ...opts });

  test('/ui redirects to /ui/, which serves the page with strict headers and no token', async () => {
    const r = await get('/ui');
    assert.equal(r.status, 301, r.text);
    assert.equal(r.headers.location, '/ui/');
    const page = await get('/ui/');
    assert.equal(page.status, 200, page.text);
    assert.match(page.headers['content-type'], /^text\/html; charset=utf-8$/);
    assert.match(page.text, /<title>asyncd console<\/title>/);
    for (const [h, re] of [['content-security-policy', /default-src 'self'/],
      ['content-security-policy', /frame-ancestors 'none'/], ['x-content-type-options', /^nosniff$/],
      ['x-frame-options', /^DENY$/], ['cache-control', /^no-cache$/]]) {
      assert.match(String(page.headers[h]), re, `${h} of /ui/`);
    }
    // Under that CSP an inline script or style would not run; none is needed, none is there,
    // and nothing is loaded from another origin.
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    assert.doesNotMatch(page.text, /\sstyle=|<style/, 'no inline style');
    assert.doesNotMatch(page.text, /(src|href)="(https?:)?\/\//, 'no other origin');
  });

  test('app.js and app.css are served with their types and the same headers', async () => {
    for (const [p, type] of [['/ui/app.js', /^text\/javascript; charset=utf-8$/], ['/ui/app.css', /^text\/css; charset=utf-8$/]]) {
      const r = await get(p);
      assert.equal(r.status, 200, `${p}: ${r.text.slice(0, 200)}`);
      assert.match(r.headers['content-type'], type, p);
      assert.equal(r.headers['x-content-type-options'], 'nosniff', p);
      assert.equal(r.headers['x-frame-options'], 'DENY', p);
      assert.match(r.headers['content-security-policy'], /default-src 'self'/, p);
      assert.ok(r.body.length > 1000, `${p} has its content (${r.body.length} bytes)`);
    }
    const js = (await get('/ui/app.js')).text;
    assert.doesNotMatch(js, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/, 'the script never writes HTML from strings');
    assert.doesNotMatch(js, /localStorage/, 'the token is never put in localStorage');
  });

  test('unknown files are 404, other methods 405, and /uix is not the console', async () => {
    for (const p of ['/ui/x', '/ui/app.js/x', '/ui/../v1/tasks', '/ui/index.htm']) {
      const r = await get(p);
      assertAdminError(r, 404, p);
    }
    const post = await get('/ui/', { method: 'POST', body: '{}' });
    assertAdminError(post, 405, 'POST /ui/');
    const uix = await get('/uix');
    assertAdminError(uix, 401, '/uix goes to the admin API, which wants a token');
  });

  test('data calls without a token, or with a wrong one, are refused; a reader may not act', async () => {
    for (const p of ['/v1/tasks', '/v1/whoami', '/v1/overview', '/v1/instances']) {
      assertAdminError(await d.admin('GET', p, undefined, { token: null }), 401, `${p} without a token`);
      assertAdminError(await d.admin('GET', p, undefined, { token: 'f'.repeat(64) }), 401, `${p} with a wrong token`);
    }
    const reader = await newToken('reader');
    const me = await d.admin('GET', '/v1/whoami', undefined, { token: reader });
    assert.equal(me.status, 200, me.text);
    assert.equal(me.json.scope, 'reader');
    assert.equal(me.json.may_act, false);
    const admin = await d.adminOk('GET', '/v1/whoami');
    assert.equal(admin.scope, 'admin');
    assert.equal(admin.may_act, true);
    const id = await makeTask([SLEEP_STEP]);
    assertAdminError(await d.admin('POST', `/v1/tasks/${id}/kill`, {}, { token: reader }), 403, 'reader kill');
    await d.verb(id, 'kill');
  });

  test('GET /v1/overview counts by product and state, throughput and the oldest queued task', async () => {
    const done = await makeTask([NOOP_STEP]);
    await waitState(done, ['success']);
    const o = await d.adminOk('GET', '/v1/overview');
    assert.ok(Array.isArray(o.counts) && o.counts.some((c) => c.product === 'cdb' && c.state === 'success' && c.count >= 1), JSON.stringify(o.counts));
    assert.ok(o.finished.by_product.cdb.hour >= 1 && o.finished.by_product.cdb.minute >= 1, JSON.stringify(o.finished));
    assert.ok(o.finished.by_product.all.hour >= o.finished.by_product.cdb.hour, JSON.stringify(o.finished));
    assert.ok(o.oldest_queued === null || typeof o.oldest_queued.age_ms === 'number', JSON.stringify(o.oldest_queued));
    assert.ok(Math.abs(o.now_ms - Date.now()) < 60000, 'now_ms is the server time');
  });
});

describe('console in headless Chromium', { skip: NO_BROWSER && 'ASYNCD_TEST_NO_BROWSER=1' }, () => {
  let browser;
  let page;
  const problems = []; // console errors, CSP violations, uncaught exceptions
  const refused = []; // "STATUS METHOD PATH" of every 4xx/5xx answer the page got
  let shot = 0;

  before(async () => {
    // Not skipped when the browser is missing: `make test` must show it (scripts/deps.sh installs it).
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or set ASYNCD_TEST_NO_BROWSER=1 to skip this test on purpose)`);
    let chromium;
    try {
      ({ chromium } = await import('playwright-core'));
    } catch (e) {
      assert.fail(`playwright-core is not installed (npm ci in tests/it, or scripts/deps.sh): ${e.message}`);
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM, headless: true, timeout: 30000 * SLOW,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-proxy-server'],
    });
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    ctx.setDefaultTimeout(WAIT);
    page = await ctx.newPage();
    // The browser logs every 4xx answer as "Failed to load resource"; those are checked through
    // `refused` instead, by URL, so that only the expected ones pass.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('response', (r) => { if (r.status() >= 400) refused.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    fs.rmSync(SHOTS, { recursive: true, force: true }); // this run's screenshots only
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    if (browser) await browser.close();
  });

  const base = () => `http://127.0.0.1:${d.adminPort}/ui/`;
  /** Screenshots the page, after checking that no value was rendered as null, undefined or an
   * object (the task's input, JSON in a <pre>, may say null). */
  const snap = async (t, name) => {
    const shown = await page.evaluate(() => {
      const v = document.querySelector('#view').cloneNode(true);
      for (const p of v.querySelectorAll('pre')) p.remove();
      return v.textContent;
    });
    assert.doesNotMatch(shown, /\bnull\b|\bundefined\b|\[object |NaN/, `${name}: a value rendered badly`);
    const p = path.join(SHOTS, `${String(++shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: p, fullPage: true });
    t.diagnostic(`screenshot: ${p}`);
  };
  const signIn = async (token) => {
    await page.locator('#token').fill(token);
    await page.locator('#signin-form button[type=submit]').click();
  };
  const signOut = async () => {
    await page.locator('#signout').click();
    await page.locator('#signin').waitFor({ state: 'visible' });
  };
  const openTaskById = async (id) => {
    await page.goto(`${base()}#/tasks`);
    await page.locator('#task-find input[name=id]').fill(id);
    await page.locator('#task-find button[type=submit]').click();
    await page.locator('#task-id', { hasText: id }).waitFor();
  };
  /** No console error, CSP violation or exception, and no refused call but the expected ones. */
  const noProblems = (expected = []) => {
    assert.deepEqual(problems, [], 'no console errors, CSP violations or exceptions');
    assert.deepEqual(refused, expected, 'the calls the page had refused');
    refused.length = 0;
  };

  test('a wrong token shows the error; a reader sees tasks but no verb buttons', async (t) => {
    const running = await makeTask([SLEEP_STEP]);
    const finished = await makeTask([NOOP_STEP]);
    await waitState(finished, ['success']);
    await waitState(running, ['running']);
    const reader = await newToken('reader');

    await page.goto(base());
    await page.locator('#signin').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#token').getAttribute('type'), 'password');
    await signIn('0'.repeat(64));
    await page.locator('#signin-error', { hasText: /refused/ }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');
    await snap(t, 'signin-refused');

    await signIn(await newToken('worker'));
    await page.locator('#signin-error', { hasText: /worker token/ }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a worker token is not kept');

    await signIn(reader);
    await page.locator('#who', { hasText: '(reader)' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('asyncd.token')), reader, 'kept in sessionStorage');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
    assert.ok(!page.url().includes(reader), `the token is not in the URL: ${page.url()}`);

    await page.goto(`${base()}#/tasks`);
    const row = page.locator(`#tasks-table tr[data-id="${finished}"]`);
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[0], finished);
    assert.equal(cells[1], 'cdb');
    assert.equal(cells[2], 'UiTest');
    assert.equal(cells[4], 'SUCCESS (success)', 'status in the dialect and the canonical state');
    assert.match(cells[5], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    await page.locator(`#tasks-table tr[data-id="${running}"]`).waitFor();

    // The status filter keeps the finished task and drops the running one.
    await page.locator('#task-filters input[name=status]').fill('success');
    await page.locator('#task-filters button[type=submit]').click();
    await page.waitForFunction((id) => !document.querySelector(`#tasks-table tr[data-id="${id}"]`), running);
    await row.waitFor();
    assert.match(page.url(), /status=success/, 'filters live in the hash');
    await snap(t, 'tasks-reader');

    await openTaskById(running);
    await page.locator('#steps li').first().waitFor();
    assert.equal(await page.locator('#steps li').count(), 1);
    assert.match(await page.locator('#steps li').first().textContent(), /hold/);
    assert.ok(await page.locator('#events tbody tr').count() >= 2, 'created and started events');
    assert.match(await page.locator('#task-input').textContent(), /"sleep"/);
    assert.equal(await page.locator('#verbs').count(), 0, 'a reader gets no verb buttons');
    assert.equal(await page.locator('button[data-verb]').count(), 0);
    await snap(t, 'task-reader');

    await signOut();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'sign out clears the token');
    assert.equal(await page.locator('#view').isHidden(), true, 'the data is gone from the page');
    noProblems(['401 GET /v1/whoami']); // the wrong token, and nothing else
  });

  test('the admin finds a running task, kills it through the button and the confirmation', async (t) => {
    const id = await makeTask([SLEEP_STEP, NOOP_STEP]);
    await waitState(id, ['running']);
    await page.goto(base());
    await signIn(d.creds.AdminToken);
    await page.locator('#who', { hasText: '(admin)' }).waitFor();

    await openTaskById(id);
    await page.locator('#verbs').waitFor();
    const verbs = await page.locator('#verbs button[data-verb]').evaluateAll((bs) => bs.map((b) => b.dataset.verb));
    assert.deepEqual(verbs, ['pause', 'undo', 'kill'], 'the verbs a running task allows');
    assert.equal(await page.locator('#steps li').count(), 2);
    assert.match(await page.locator('#task-state').textContent(), /RUNNING \(running\)/);
    await snap(t, 'task-admin');

    // Cancel first: nothing happens.
    await page.locator('#verbs button[data-verb=kill]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    await page.locator('#confirm-cancel').click();
    await page.locator('#confirm').waitFor({ state: 'hidden' });
    await sleep(300);
    assert.equal((await d.getTask(id)).state, 'running', 'cancel leaves the task alone');

    await page.locator('#verbs button[data-verb=kill]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    assert.match(await page.locator('#confirm-text').textContent(), new RegExp(`kill.*${id}`));
    await page.locator('#confirm-message').fill('killed in the ui test');
    await snap(t, 'task-confirm');
    await page.locator('#confirm-ok').click();
    await page.locator('#task-state', { hasText: 'KILLED (killed)' }).waitFor();
    assert.equal(await page.locator('#verbs button[data-verb]').count(), 0, 'a killed task allows no verb');

    const task = await d.getTask(id);
    assert.equal(task.state, 'killed', 'killed in the store');
    assert.ok(task.events.some((e) => e.to === 'killed' && e.message === 'killed in the ui test'), JSON.stringify(task.events));
    await page.locator('#events td', { hasText: 'killed in the ui test' }).waitFor();
    noProblems();
  });

  test('a task page follows a change made elsewhere through a long-poll, not the next tick', async () => {
    // A step no engine runs: only the transition call below moves the task.
    const id = await makeTask([{ name: 'ext', do: { remote: {} } }]);
    await openTaskById(id);
    await page.locator('#task-state', { hasText: 'INITIAL (initial)' }).waitFor();
    const answered = page.waitForResponse(async (r) => {
      if (!/[?&]wait=/.test(r.url()) || !r.url().includes(encodeURIComponent(id))) return false;
      try { return (await r.json()).state === 'running'; } catch { return false; }
    }, { timeout: 15000 * SLOW });
    await sleep(300); // the long-poll is out before the change
    const movedAt = Date.now();
    await d.adminOk('POST', `/v1/tasks/${id}/transition`, { to: 'running', message: 'moved by the test' });
    await answered;
    await page.locator('#task-state', { hasText: 'RUNNING (running)' }).waitFor();
    const took = Date.now() - movedAt;
    await page.locator('#events td', { hasText: 'moved by the test' }).waitFor();
    assert.match(await page.locator('#status-line').textContent(), /following this task/);
    assert.ok(took < 1500 * SLOW, `on screen ${took} ms after the change`);
    await d.verb(id, 'kill');
    await page.locator('#task-state', { hasText: 'KILLED (killed)' }).waitFor();
    noProblems();
  });

  test('a verb refused by the API (409) shows its reason', async () => {
    const id = await makeTask([SLEEP_STEP]);
    await waitState(id, ['running']);
    await openTaskById(id);
    await page.locator('#verbs button[data-verb=pause]').click();
    await page.locator('#confirm').waitFor({ state: 'visible' });
    // While the dialog is open the page does not refresh, so it still offers pause.
    await d.verb(id, 'kill');
    await page.locator('#confirm-ok').click();
    await page.locator('#verb-error', { hasText: /pause refused \(HTTP 409\): .*running/ }).waitFor();
    await page.locator('#task-state', { hasText: 'killed' }).waitFor();
    // The console only reports: the task stays as it is.
    assert.equal((await d.getTask(id)).state, 'killed');
    noProblems([`409 POST /v1/tasks/${id}/pause`]);
  });

  test('the task list updates live, keeping the filters and what is being typed', async (t) => {
    await page.goto(`${base()}#/tasks?product=cdb`);
    await page.locator('#tasks-table tbody tr').first().waitFor();
    assert.equal(await page.locator('#task-filters select[name=product]').inputValue(), 'cdb');
    await page.locator('#task-filters input[name=type]').fill('half-typed');
    const id = await makeTask([NOOP_STEP]);
    await page.locator(`#tasks-table tr[data-id="${id}"]`).waitFor();
    assert.equal(await page.locator('#task-filters input[name=type]').inputValue(), 'half-typed', 'a refresh keeps the form');
    assert.equal(await page.locator('#task-filters select[name=product]').inputValue(), 'cdb');
    await page.locator(`#tasks-table tr[data-id="${id}"] td`, { hasText: 'SUCCESS' }).waitFor();
    await snap(t, 'tasks-live');
    noProblems();
  });

  test('the task list pages through the tasks', async () => {
    await Promise.all(Array.from({ length: 26 }, () => makeTask([NOOP_STEP])));
    const total = (await d.adminOk('GET', '/v1/tasks?limit=1')).total;
    assert.ok(total > 25, `${total} tasks`);
    await page.goto(`${base()}#/tasks?limit=25`);
    await page.locator('#page-info', { hasText: `1–25 of ${total}` }).waitFor();
    assert.equal(await page.locator('#tasks-table tbody tr').count(), 25);
    assert.equal(await page.locator('#page-prev').isDisabled(), true);
    await page.locator('#page-next').click();
    await page.locator('#page-info', { hasText: `26–${Math.min(50, total)} of ${total}` }).waitFor();
    assert.match(page.url(), /offset=25/);
    assert.equal(await page.locator('#tasks-table tbody tr').count(), Math.min(25, total - 25));
    assert.equal(await page.locator('#page-prev').isDisabled(), false);
    noProblems();
  });

  test('instances show their running and queued tasks; the overview counts by state', async (t) => {
    const inst = await d.createInstance({ product: 'cdb' });
    const first = await makeTask([SLEEP_STEP], { instance_id: inst });
    await waitState(first, ['running']);
    const second = await makeTask([NOOP_STEP], { instance_id: inst }); // waits behind the first
    await page.goto(`${base()}#/instances`);
    const row = page.locator(`#instances-table tr[data-id="${inst}"]`);
    await row.waitFor();
    await page.waitForFunction((i) => {
      const tds = document.querySelectorAll(`#instances-table tr[data-id="${i}"] td`);
      return tds.length === 7 && tds[5].textContent === '1' && tds[6].textContent === '1';
    }, inst);
    const cells = await row.locator('td').allTextContents();
    assert.deepEqual(cells.slice(0, 5), [inst, 'cdb', 'ap-guangzhou', 'running', 'no']);
    await snap(t, 'instances');

    await page.goto(`${base()}#/overview`);
    await page.locator('#counts-table tr[data-product=cdb]').waitFor();
    const o = await d.adminOk('GET', '/v1/overview');
    const running = o.counts.find((c) => c.product === 'cdb' && c.state === 'running').count;
    assert.equal(await page.locator('#counts-table tr[data-product=cdb] td[data-state=running]').textContent(), String(running));
    assert.ok(Number(await page.locator('#throughput-hour .big').textContent()) >= 1, 'tasks finished in the last hour');
    assert.match(await page.locator('#oldest-queued').textContent(), new RegExp(second), 'the task behind the instance is the oldest queued');
    await snap(t, 'overview');

    await d.verb(first, 'kill');
    await waitState(second, ['success']);
    await page.goto(`${base()}#/instances`);
    await page.waitForFunction((i) => {
      const tds = document.querySelectorAll(`#instances-table tr[data-id="${i}"] td`);
      return tds.length === 7 && tds[5].textContent === '0' && tds[6].textContent === '0';
    }, inst);
    noProblems();
  });
});
