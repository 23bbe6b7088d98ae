// asyncd web console: plain JS, no framework. Every value from the API reaches the page through
// textContent or a text node (el() below), never through innerHTML. The token lives in this tab's
// sessionStorage only and travels as "Authorization: Bearer"; the page polls the admin API every
// POLL_MS while the tab is visible.
'use strict';

(() => {
  const TOKEN_KEY = 'asyncd.token';
  const POLL_MS = 2000;
  const FOLLOW_WAIT = '25s'; // a task page's long-poll; well under proxies' usual 60 s idle cut
  const PAGE_SIZES = [25, 50, 100, 200];
  const STATES = ['initial', 'running', 'waiting', 'paused', 'undoed', 'failed', 'success', 'killed', 'removed'];
  const FINAL = new Set(['undoed', 'failed', 'success', 'killed', 'removed']);
  // The status words of the two dialects (cdb's upper case, mongodb's lower case), offered in the
  // status filter next to the canonical states; the API maps them.
  const STATUS_WORDS = ['INITIAL', 'RUNNING', 'PAUSED', 'FAILED', 'SUCCESS', 'KILLED', 'REMOVED', 'undoed'];
  // Which verbs each state allows: the rules of src/task/task_state.c.
  const VERBS = [
    ['pause', ['running'], 'Pause: the task stops at the next step boundary.'],
    ['resume', ['paused'], 'Resume: the failed step runs again.'],
    ['skip', ['paused'], 'Skip: the current step is marked skipped and the next one runs.'],
    ['undo', ['paused', 'running'], 'Undo: the done steps are undone in reverse order.'],
    ['kill', ['running', 'waiting', 'paused'], 'Kill: the task ends as killed; a step in flight is stopped.'],
    ['remove', ['initial'], 'Remove: the task never starts.'],
  ];

  let me = null; // GET /v1/whoami of the signed-in token
  let page = null; // {refresh: async () => void} of the page on screen
  let busy = false; // a refresh in flight: the next tick waits
  let confirming = false; // the confirmation dialog is open: no refresh under it

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ DOM without innerHTML

  /** el('a', {href: '#/x', class: 'c'}, 'text', child...): strings become text nodes. */
  function el(tag, attrs = {}, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k.startsWith('on') && typeof v === 'function') n.addEventListener(k.slice(2), v);
      else if (k === 'value') n.value = v;
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    append(n, kids);
    return n;
  }

  function append(n, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === undefined || k === null || k === false) continue;
      n.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
  }

  /** Replaces n's children (null and false kids are left out). */
  function fill(n, ...kids) {
    n.replaceChildren();
    append(n, kids);
  }

  const text = (v) => (v === undefined || v === null || v === '' ? '—' : String(v));

  function fmtTime(ms) {
    if (!ms) return '—';
    return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || ms < 0 || Number.isNaN(ms)) return '—';
    if (ms < 1000) return `${ms} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} m ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} m`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  /** How long a task ran: start to end, or to now while it is not final. */
  function taskDuration(t, now = Date.now()) {
    if (!t.start_ms) return null;
    return (t.end_ms || (FINAL.has(t.state) ? t.start_ms : now)) - t.start_ms;
  }

  function stateBadge(t) {
    return el('span', { class: `state state-${t.state}`, title: `canonical state: ${t.state}` },
      t.Status && t.Status !== t.state ? `${t.Status} (${t.state})` : text(t.state));
  }

  // ------------------------------------------------------------------ the admin API

  class ApiError extends Error {
    constructor(status, json) {
      super((json && json.message) || `HTTP ${status}`);
      this.status = status;
      this.json = json;
    }
  }

  async function call(path, { method = 'GET', body, token = sessionStorage.getItem(TOKEN_KEY) } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', redirect: 'error',
    });
    let json = null;
    try { json = await res.json(); } catch { json = null; }
    return { status: res.status, json };
  }

  /** A data call of the signed-in page: a 401 signs out, any other error throws ApiError. */
  async function api(path, opts) {
    const r = await call(path, opts);
    if (r.status === 401) {
      signOut(`Signed out: ${(r.json && r.json.message) || 'the token was refused'}.`);
      throw new ApiError(r.status, r.json);
    }
    if (r.status < 200 || r.status > 299) throw new ApiError(r.status, r.json);
    return r.json;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  // ------------------------------------------------------------------ sign-in

  function showSignIn(message) {
    me = null;
    page = null;
    $('view').hidden = true;
    $('view').replaceChildren();
    $('nav').hidden = true;
    $('who').hidden = true;
    $('signout').hidden = true;
    $('banner').hidden = true;
    $('signin').hidden = false;
    $('status-line').textContent = '';
    const err = $('signin-error');
    err.hidden = !message;
    err.textContent = message || '';
    $('token').focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(message);
  }

  async function signIn(token) {
    let r;
    try {
      r = await call('/v1/whoami', { token });
    } catch (e) {
      showSignIn(`Cannot reach asyncd: ${e.message}`);
      return;
    }
    if (r.status !== 200 || !r.json) {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(`Sign-in refused: ${(r.json && r.json.message) || `HTTP ${r.status}`}`);
      return;
    }
    if (r.json.scope === 'worker') {
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn('Sign-in refused: a worker token may only call /v1/workers/*; use a reader, operator or admin token.');
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    me = r.json;
    $('signin').hidden = true;
    $('signin-error').hidden = true;
    $('nav').hidden = false;
    $('view').hidden = false;
    $('who').hidden = false;
    $('who').textContent = `${me.name || me.id} (${me.scope})`;
    $('signout').hidden = false;
    if (!location.hash || location.hash === '#' || location.hash === '#/') location.hash = '#/overview';
    else route();
  }

  // ------------------------------------------------------------------ pages

  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const [p, q = ''] = h.split('?');
    const parts = p.split('/').filter(Boolean).map(decodeURIComponent);
    return { parts, params: Object.fromEntries(new URLSearchParams(q)) };
  }

  function route() {
    if (!me) return;
    const { parts, params } = parseHash();
    const view = $('view');
    window.scrollTo(0, 0);
    $('banner').hidden = true;
    let name = parts[0] || 'overview';
    if (name === 'tasks' && parts[1]) page = taskPage(view, parts[1]);
    else if (name === 'tasks') page = tasksPage(view, params);
    else if (name === 'instances') page = instancesPage(view);
    else { name = 'overview'; page = overviewPage(view); }
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('current', a.dataset.page === name);
    refresh();
  }

  /** Refreshes the page on screen, keeping the scroll position (the user's filters live in the
   * hash and in the form, which a refresh does not rebuild). */
  async function refresh() {
    if (!page || busy || confirming) return;
    const mine = page;
    busy = true;
    const y = window.scrollY;
    try {
      await mine.refresh();
      if (mine === page) {
        window.scrollTo(0, y);
        $('status-line').textContent = `Updated ${new Date().toLocaleTimeString()}; ${mine.live ? 'following this task as it changes' : `polling every ${POLL_MS / 1000} s`} while this tab is visible.`;
      }
    } catch (e) {
      if (mine === page && me) {
        $('status-line').textContent = `Update failed: ${e.message}`;
      }
    } finally {
      busy = false;
    }
  }

  function errorBox(message) {
    return el('p', { class: 'error', role: 'alert' }, message);
  }

  // overview: counts by product and state, throughput, oldest queued task

  function overviewPage(view) {
    const body = el('div');
    fill(view, el('h1', {}, 'Overview'), body);
    return {
      async refresh() {
        const o = await api('/v1/overview');
        const products = [...new Set(o.counts.map((c) => c.product))].sort();
        const count = (p, s) => (o.counts.find((c) => c.product === p && c.state === s) || { count: 0 }).count;
        const fin = o.finished.by_product || {};
        const all = fin.all || { minute: 0, hour: 0 };
        const q = o.oldest_queued;
        const cards = el('div', { class: 'cards' },
          el('div', { class: 'card', id: 'throughput-minute' }, el('div', { class: 'muted' }, 'Finished, last minute'), el('div', { class: 'big' }, all.minute)),
          el('div', { class: 'card', id: 'throughput-hour' }, el('div', { class: 'muted' }, 'Finished, last hour'), el('div', { class: 'big' }, all.hour)),
          el('div', { class: 'card', id: 'oldest-queued' }, el('div', { class: 'muted' }, 'Oldest queued task'),
            q ? [el('div', { class: 'big' }, fmtDuration(q.age_ms)),
              el('a', { href: `#/tasks/${encodeURIComponent(q.AsyncRequestId)}`, class: 'mono' }, q.AsyncRequestId),
              el('div', { class: 'muted' }, `${q.queued} queued`)]
              : el('div', { class: 'big' }, 'none')));
        const table = el('table', { id: 'counts-table' },
          el('thead', {}, el('tr', {}, el('th', {}, 'product'), STATES.map((s) => el('th', {}, s)), el('th', {}, 'finished (1 min / 1 h)'))),
          el('tbody', {}, products.length ? products.map((p) => el('tr', { 'data-product': p },
            el('td', {}, p),
            STATES.map((s) => el('td', { 'data-state': s }, count(p, s) ? el('a', { href: `#/tasks${query({ product: p, status: s })}` }, count(p, s)) : '0')),
            el('td', {}, `${(fin[p] || { minute: 0 }).minute} / ${(fin[p] || { hour: 0 }).hour}`)))
            : el('tr', {}, el('td', { colspan: STATES.length + 2, class: 'muted' }, 'No tasks yet.'))));
        fill(body, cards, el('h2', {}, 'Tasks by state'), table,
          o.finished.sampled ? el('p', { class: 'muted' }, 'Throughput counted over the newest 1000 finished tasks of the last 24 h.') : null);
      },
    };
  }

  // tasks: filters, find by id, paging

  function tasksPage(view, params) {
    const limit = PAGE_SIZES.includes(Number(params.limit)) ? Number(params.limit) : 50;
    const offset = Math.max(0, Number(params.offset) || 0);
    const field = (label, input) => el('label', {}, label, input);
    const form = el('form', { class: 'filters', id: 'task-filters' },
      field('product', el('select', { name: 'product' },
        el('option', { value: '' }, 'any'), ['cdb', 'mongodb'].map((p) => el('option', { value: p }, p)))),
      field('status', el('input', { name: 'status', list: 'status-words', placeholder: 'state or status word', size: 16 })),
      el('datalist', { id: 'status-words' }, [...STATES, ...STATUS_WORDS].map((s) => el('option', { value: s }))),
      field('instance', el('input', { name: 'instance_id', size: 22 })),
      field('type', el('input', { name: 'type', size: 18 })),
      field('created since', el('input', { name: 'since', type: 'datetime-local', step: 1 })),
      field('created until', el('input', { name: 'until', type: 'datetime-local', step: 1 })),
      field('per page', el('select', { name: 'limit' }, PAGE_SIZES.map((n) => el('option', { value: n }, n)))),
      el('button', { type: 'submit', class: 'primary' }, 'Apply'),
      el('button', { type: 'button', onclick: () => { location.hash = '#/tasks'; } }, 'Clear'));
    for (const k of ['product', 'status', 'instance_id', 'type', 'since', 'until']) if (params[k]) form.elements[k].value = params[k];
    form.elements.limit.value = String(limit);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = {};
      for (const k of ['product', 'status', 'instance_id', 'type', 'since', 'until', 'limit']) p[k] = form.elements[k].value.trim();
      location.hash = `#/tasks${query(p)}`;
    });
    const find = el('form', { class: 'filters', id: 'task-find' },
      field('find by id', el('input', { name: 'id', size: 40, required: true, spellcheck: 'false' })),
      el('button', { type: 'submit' }, 'Open'));
    find.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = find.elements.id.value.trim();
      if (id) location.hash = `#/tasks/${encodeURIComponent(id)}`;
    });
    const tbody = el('tbody');
    const pager = el('div', { class: 'pager' });
    const err = el('div');
    fill(view, el('h1', {}, 'Tasks'), find, form, err,
      el('table', { id: 'tasks-table' }, el('thead', {}, el('tr', {},
        ['id', 'product', 'type', 'instance', 'status', 'created', 'duration'].map((h) => el('th', {}, h)))), tbody),
      pager);
    const goTo = (off) => { location.hash = `#/tasks${query({ ...params, limit, offset: off || undefined })}`; };
    // datetime-local is the browser's local time; the API gets RFC 3339 UTC.
    const iso = (v) => (v ? new Date(v).toISOString() : undefined);
    return {
      async refresh() {
        let r;
        try {
          r = await api(`/v1/tasks${query({
            product: params.product, status: params.status, instance_id: params.instance_id, type: params.type,
            since: iso(params.since), until: iso(params.until), limit, offset,
          })}`);
        } catch (e) {
          if (e.status && e.status !== 401) { fill(err, errorBox(`The task list was refused: ${e.message}`)); tbody.replaceChildren(); pager.replaceChildren(); return; }
          throw e;
        }
        err.replaceChildren();
        const now = Date.now();
        fill(tbody, (r.tasks.length ? r.tasks.map((t) => el('tr', { 'data-id': t.AsyncRequestId },
          el('td', {}, el('a', { class: 'mono', href: `#/tasks/${encodeURIComponent(t.AsyncRequestId)}` }, t.AsyncRequestId)),
          el('td', {}, t.product), el('td', {}, text(t.type)),
          el('td', {}, t.instance_id ? el('a', { href: `#/tasks${query({ instance_id: t.instance_id })}` }, t.instance_id) : '—'),
          el('td', {}, stateBadge(t)), el('td', {}, fmtTime(t.created_ms)), el('td', {}, fmtDuration(taskDuration(t, now)))))
          : [el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No task matches.'))]));
        const last = Math.min(offset + r.tasks.length, r.total);
        fill(pager,
          el('button', { type: 'button', id: 'page-prev', disabled: offset === 0, onclick: () => goTo(Math.max(0, offset - limit)) }, '‹ Newer'),
          el('span', { id: 'page-info' }, r.total ? `${offset + 1}–${last} of ${r.total}` : '0 tasks'),
          el('button', { type: 'button', id: 'page-next', disabled: last >= r.total, onclick: () => goTo(offset + limit) }, 'Older ›'));
      },
    };
  }

  // one task: Info, verbs, steps as a timeline, events, input

  /** Per step: when it was last seen starting, when it ended, how many attempts it took (from
   * the engine's "step N/M ..." events; steps have no times of their own). */
  function stepTimes(task) {
    const times = task.steps.map(() => ({ attempts: 0, start: null, end: null }));
    let prevEnd = task.start_ms || null;
    for (const ev of task.events || []) {
      const m = /^(undid |undo of )?step (\d+)(?:\/\d+)?\b/.exec(ev.message || '');
      if (!m) continue;
      const t = times[Number(m[2]) - 1];
      if (!t) continue;
      if (m[1]) { t.undoneAt = ev.at_ms; continue; }
      const msg = ev.message;
      if (/ failed \(attempt \d+/.test(msg) || / done\b/.test(msg) || / failed: /.test(msg)) {
        t.attempts += 1;
        if (t.start === null) t.start = prevEnd;
        t.end = ev.at_ms;
        prevEnd = ev.at_ms;
      } else if (t.start === null) {
        t.start = ev.at_ms;
      }
    }
    return times;
  }

  function taskPage(view, id) {
    const head = el('div');
    const verbErr = el('div', { id: 'verb-error' });
    const body = el('div');
    fill(view, el('p', {}, el('a', { href: '#/tasks' }, '‹ Tasks')), head, verbErr, body);
    let task = null;

    async function runVerb(verb, why) {
      const dlg = $('confirm');
      $('confirm-text').textContent = `${why} Apply "${verb}" to task ${id}?`;
      $('confirm-message').value = '';
      $('confirm-ok').textContent = verb;
      confirming = true;
      dlg.returnValue = '';
      dlg.showModal();
      await new Promise((resolve) => dlg.addEventListener('close', resolve, { once: true }));
      confirming = false;
      if (dlg.returnValue !== 'ok') return;
      const message = $('confirm-message').value.trim() || `${verb} from the web console by ${me.name || me.id}`;
      try {
        await api(`/v1/tasks/${encodeURIComponent(id)}/${verb}`, { method: 'POST', body: { message } });
        verbErr.replaceChildren();
      } catch (e) {
        if (e.status === 401) return;
        fill(verbErr, errorBox(`${verb} refused${e.status ? ` (HTTP ${e.status})` : ''}: ${e.message}`));
      }
      refresh();
    }

    function render(now) {
      const t = task;
      const verbs = me && me.may_act
        ? el('div', { class: 'verbs', id: 'verbs' }, VERBS.filter(([, from]) => from.includes(t.state)).map(([v, , why]) =>
          el('button', { type: 'button', 'data-verb': v, class: v === 'kill' || v === 'remove' || v === 'undo' ? 'danger' : '', onclick: () => runVerb(v, why) }, v)))
        : null;
      fill(head,
        el('h1', {}, 'Task ', el('span', { class: 'mono', id: 'task-id' }, t.AsyncRequestId), ' ', el('span', { id: 'task-state' }, stateBadge(t))),
        verbs);
      const times = stepTimes(t);
      const info = el('dl', { class: 'info', id: 'task-info' },
        [['product', t.product], ['region', t.region], ['account (uin)', t.uin], ['instance', t.instance_id],
          ['type', t.type], ['status', t.Status], ['state', t.state], ['Info', t.info], ['on failure', t.on_failure],
          ['phase', t.phase], ['current step', t.current_step], ['attempt', t.attempt], ['driver', t.driver],
          ['lease', t.lease_node ? `${t.lease_node} #${t.lease_no}` : null], ['created', fmtTime(t.created_ms)],
          ['started', fmtTime(t.start_ms)], ['ended', fmtTime(t.end_ms)], ['duration', fmtDuration(taskDuration(t, now))]]
          .map(([k, v]) => [el('dt', {}, k), el('dd', {}, text(v))]));
      const steps = el('ol', { class: 'timeline', id: 'steps' }, t.steps.map((s, i) => {
        const tm = times[i];
        const current = !FINAL.has(t.state) && i === t.current_step && s.state === 'pending';
        const dur = tm.start !== null ? (tm.end || (current ? now : null)) - tm.start : null;
        return el('li', { class: `step-${s.state}${current ? ' step-current' : ''}`, 'data-step': i },
          el('div', { class: 'step-head' },
            el('span', { class: 'muted' }, `${i + 1}/${t.steps.length}`), el('span', { class: 'step-name' }, s.name),
            el('span', { class: 'state' }, current ? `${s.state} (current)` : s.state),
            el('span', {}, `duration ${fmtDuration(dur)}`), el('span', {}, `attempts ${tm.attempts}${s.retries ? ` (retries ${s.retries})` : ''}`),
            el('span', { class: 'muted' }, `timeout ${s.timeout_s} s`)),
          s.message ? el('div', { class: 'mono' }, s.message) : null);
      }));
      const events = el('table', { id: 'events' },
        el('thead', {}, el('tr', {}, ['time', 'from', 'to', 'node', 'message'].map((h) => el('th', {}, h)))),
        el('tbody', {}, (t.events || []).map((ev) => el('tr', {},
          el('td', { class: 'mono' }, fmtTime(ev.at_ms)), el('td', {}, text(ev.from)), el('td', {}, text(ev.to)),
          el('td', {}, text(ev.node)), el('td', {}, text(ev.message))))));
      // The API masks secrets ("***") before they reach the page; nothing here unmasks them.
      const input = {};
      if (t.input !== undefined) input.input = t.input;
      input.steps = t.steps.map((s) => ({ name: s.name, do: s.do, undo: s.undo, retries: s.retries, timeout_s: s.timeout_s }));
      fill(body, el('h2', {}, 'Info'), info, el('h2', {}, 'Steps'), steps, el('h2', {}, 'Events'), events,
        el('h2', {}, 'Input'), el('pre', { class: 'json', id: 'task-input' }, JSON.stringify(input, null, 2)));
    }

    const lastSeq = (t) => { const evs = (t && t.events) || []; return evs.length ? evs[evs.length - 1].seq : -1; };
    let following = false;

    /* Follows the task as it changes: a long-poll (GET /v1/tasks/{id}?wait=25s&since_seq=N)
     * answers as soon as the task has an event after the last one shown, so a state change is
     * on screen within the server's 100 ms store poll instead of the next 2 s tick. One loop per
     * open task page; it ends when the page is left, the task is final, or the tab is hidden
     * (the tick and visibilitychange resume it). */
    async function follow() {
      if (following) return;
      following = true;
      try {
        while (page === self && task && !FINAL.has(task.state) && document.visibilityState === 'visible') {
          let t;
          try {
            t = await api(`/v1/tasks/${encodeURIComponent(id)}${query({ wait: FOLLOW_WAIT, since_seq: lastSeq(task) })}`);
          } catch (e) {
            if (e.status === 401) return;
            await new Promise((r) => setTimeout(r, POLL_MS));
            continue;
          }
          if (page !== self) return;
          if (lastSeq(t) !== lastSeq(task) || t.state !== task.state) {
            task = t;
            if (!confirming) render(Date.now());
          }
        }
      } finally {
        following = false;
      }
    }

    const self = {
      live: true,
      async refresh() {
        try {
          task = await api(`/v1/tasks/${encodeURIComponent(id)}`);
        } catch (e) {
          if (e.status === 404) { fill(head, el('h1', {}, 'Task ', el('span', { class: 'mono' }, id)), errorBox(`No task ${id}.`)); body.replaceChildren(); return; }
          throw e;
        }
        render(Date.now());
        follow();
      },
    };
    return self;
  }

  // instances, with their running and queued tasks

  function instancesPage(view) {
    const tbody = el('tbody');
    const note = el('p', { class: 'muted' });
    fill(view, el('h1', {}, 'Instances'),
      el('table', { id: 'instances-table' }, el('thead', {}, el('tr', {},
        ['id', 'product', 'region', 'status', 'simulated', 'running', 'queued'].map((h) => el('th', {}, h)))), tbody), note);
    const CAP = 1000;
    return {
      async refresh() {
        const [inst, running, waiting, queued] = await Promise.all([
          api('/v1/instances'), api(`/v1/tasks?status=running&limit=${CAP}`),
          api(`/v1/tasks?status=waiting&limit=${CAP}`), api(`/v1/tasks?status=initial&limit=${CAP}`)]);
        const tally = (list) => {
          const m = new Map();
          for (const t of list.tasks) if (t.instance_id) m.set(`${t.product}/${t.instance_id}`, (m.get(`${t.product}/${t.instance_id}`) || 0) + 1);
          return m;
        };
        const run = tally({ tasks: [...running.tasks, ...waiting.tasks] });
        const q = tally(queued);
        fill(tbody, (inst.instances.length ? inst.instances.map((i) => {
          const key = `${i.product}/${i.instance_id}`;
          const sim = i.simulated !== undefined ? Boolean(i.simulated) : !i.dsn;
          return el('tr', { 'data-id': i.instance_id },
            el('td', { class: 'mono' }, i.instance_id), el('td', {}, i.product), el('td', {}, i.region),
            el('td', {}, i.status), el('td', {}, sim ? 'yes' : 'no'),
            el('td', {}, el('a', { href: `#/tasks${query({ product: i.product, instance_id: i.instance_id, status: 'running' })}` }, run.get(key) || 0)),
            el('td', {}, el('a', { href: `#/tasks${query({ product: i.product, instance_id: i.instance_id, status: 'initial' })}` }, q.get(key) || 0)));
        }) : [el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No instances registered.'))]));
        const capped = [running, waiting, queued].some((l) => l.total > CAP);
        note.textContent = `Running counts running and waiting tasks; queued counts tasks not started (initial).${capped ? ` Counted over the newest ${CAP} tasks of each state.` : ''}`;
      },
    };
  }

  // ------------------------------------------------------------------ start

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token').value.trim();
      $('token').value = '';
      if (t) signIn(t);
    });
    $('signout').addEventListener('click', () => signOut(''));
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refresh(); });
    setInterval(() => { if (document.visibilityState === 'visible') refresh(); }, POLL_MS);
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else showSignIn('');
  });
})();
