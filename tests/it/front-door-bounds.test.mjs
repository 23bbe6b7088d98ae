// Bounds before work: what one request may hold (body, parameters, names, values, JSON depth,
// headers, SignedHeaders) is checked before the request costs more than its size, and a hostile
// request never costs anyone else their answer. Every case runs while two real SDK clients poll
// DescribeAsyncRequestInfo; each poll must be answered in time, and the daemon must be the same
// process, serving, at the end of every case.
//
// The contract (codes exact; each message names its limit):
//   body over --max-body (1 MiB)               RequestSizeLimitExceeded
//   more than 1000 parameters in a form        RequestSizeLimitExceeded ("1000", "parameters")
//   a parameter name over 256 bytes            InvalidParameter ("256")
//   a name of more than 8 dot-separated parts  InvalidParameter ("8")
//   a parameter value over 65536 bytes         InvalidParameterValue ("65536")
//   a JSON body nested deeper than 16 levels   InvalidParameter ("16")
//   more than 100 headers / over 16 KiB of them RequestSizeLimitExceeded (past ~32 KiB: HTTP 431/413)
//   SignedHeaders not naming content-type and host  AuthFailure.InvalidAuthorization ("SignedHeaders")
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  NO_LIMITS, REGION, SLOW, VERSIONS, assertEnvelope, httpRequest, qsEncode, rawSocket, sleep, start,
  utcDate,
} from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
const POLL_BOUND_MS = 1000 * SLOW;
// A request of these tests not answered in this long is hung (the answer comes in milliseconds).
const QUICK_MS = 5000 * SLOW;
const MiB = 1024 * 1024;

let d;
let pid;
let id; // a cdb task in state success: the pollers expect Status SUCCESS

async function fresh() {
  d = await start({ args: NO_LIMITS });
  pid = d.proc.pid;
  id = (await d.taskInState('cdb', 'success', { info: 'bounds' })).id;
}

before(fresh);
// A case that kills the daemon fails by itself (see alongside); the next one gets a new daemon so
// that each case is judged on its own.
beforeEach(async () => {
  if (!d.alive()) await fresh();
  pid = d.proc.pid;
});
after(async () => { await d?.stop(); });

// ------------------------------------------------------------------------------ helpers

const sha256hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data, enc) => createHmac('sha256', key).update(data).digest(enc);

/** A TC3 request signed over any SignedHeaders list, sent with node:http.
 * signedHeaders: names as written in Authorization; hostSigned: the value signed for "host";
 * headers: extra headers sent (and signable); badSignature: flip one hex digit of the signature. */
function tc3Custom({ method = 'POST', query = '', body = '', contentType, signedHeaders = ['content-type', 'host'],
  hostSigned, headers = {}, service = 'cdb', action = 'DescribeAsyncRequestInfo', version = VERSIONS.cdb,
  timestamp = Math.floor(Date.now() / 1000), badSignature = false, timeoutMs } = {}) {
  const ct = contentType || (method === 'GET' ? 'application/x-www-form-urlencoded' : 'application/json');
  const bodyBuf = method === 'GET' ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
  const hostHeader = `127.0.0.1:${d.port}`;
  const h = {
    Host: hostHeader, 'Content-Type': ct, 'X-TC-Action': action, 'X-TC-Version': version, 'X-TC-Region': REGION,
    'X-TC-Timestamp': String(timestamp), ...headers,
  };
  const lookup = (name) => {
    if (name === 'host') return hostSigned ?? '127.0.0.1';
    const k = Object.keys(h).find((x) => x.toLowerCase() === name);
    return k === undefined ? '' : String(h[k]).trim();
  };
  const canonical = [method, '/', query,
    signedHeaders.map((n) => `${n.toLowerCase()}:${lookup(n.toLowerCase())}\n`).join(''),
    signedHeaders.join(';'), sha256hex(bodyBuf)].join('\n');
  const date = utcDate(timestamp);
  const scope = `${date}/${service}/tc3_request`;
  const toSign = `TC3-HMAC-SHA256\n${timestamp}\n${scope}\n${sha256hex(canonical)}`;
  const kSigning = hmac(hmac(hmac(`TC3${d.creds.SecretKey}`, date), service), 'tc3_request');
  let sig = hmac(kSigning, toSign, 'hex');
  if (badSignature) sig = (sig[0] === '0' ? '1' : '0') + sig.slice(1);
  h.Authorization = `TC3-HMAC-SHA256 Credential=${d.creds.SecretId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${sig}`;
  return httpRequest({ port: d.port, method, path: query ? `/?${query}` : '/', headers: h,
    body: method === 'GET' ? undefined : bodyBuf, timeoutMs: timeoutMs ?? QUICK_MS });
}

/** A raw HTTP/1.1 request (exact header list, in order) through rawSocket. */
function rawRequest({ method = 'POST', path = '/', headers, body = Buffer.alloc(0), timeoutMs = QUICK_MS }) {
  const head = `${method} ${path} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return rawSocket(d.port, Buffer.concat([Buffer.from(head, 'latin1'), body]), { timeoutMs, halfClose: false })
    .then((r) => {
      // The answer's headers, lower-cased, as httpRequest gives them (for assertEnvelope).
      const headers = {};
      const end = r.text.indexOf('\r\n\r\n');
      for (const line of r.text.slice(0, end < 0 ? 0 : end).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      return { ...r, headers };
    });
}

/** The headers of a correctly signed TC3 POST (as [name, value] pairs) for body, with Content-Length. */
function signedTc3Headers(body, extra = []) {
  const ts = Math.floor(Date.now() / 1000);
  const ct = 'application/json';
  const canonical = ['POST', '/', '', `content-type:${ct}\nhost:127.0.0.1\n`, 'content-type;host', sha256hex(body)].join('\n');
  const date = utcDate(ts);
  const scope = `${date}/cdb/tc3_request`;
  const kSigning = hmac(hmac(hmac(`TC3${d.creds.SecretKey}`, date), 'cdb'), 'tc3_request');
  const sig = hmac(kSigning, `TC3-HMAC-SHA256\n${ts}\n${scope}\n${sha256hex(canonical)}`, 'hex');
  return [['Host', `127.0.0.1:${d.port}`], ['Content-Type', ct], ['Content-Length', String(Buffer.byteLength(body))],
    ['X-TC-Action', 'DescribeAsyncRequestInfo'], ['X-TC-Version', VERSIONS.cdb], ['X-TC-Region', REGION],
    ['X-TC-Timestamp', String(ts)],
    ['Authorization', `TC3-HMAC-SHA256 Credential=${d.creds.SecretId}/${scope}, SignedHeaders=content-type;host, Signature=${sig}`],
    ...extra];
}

/** Runs fn while two SDK clients (TC3 POST, HmacSHA256 GET) poll DescribeAsyncRequestInfo. Then:
 * every poll answered SUCCESS within POLL_BOUND_MS, the daemon is the same process and alive,
 * and one more SDK call is answered. Returns fn's result. */
async function alongside(what, fn) {
  const clients = [d.cdb(), d.cdb({ signMethod: 'HmacSHA256', reqMethod: 'GET' })];
  let stop = false;
  const polls = [];
  const failures = [];
  const loops = clients.map(async (c, i) => {
    let n = 0;
    while (!stop || n < 2) { // at least two polls each, the first one in flight when fn starts
      const t0 = performance.now();
      try {
        const r = await c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
        if (r.Status !== 'SUCCESS') failures.push(`client ${i}: Status ${r.Status}`);
      } catch (e) {
        failures.push(`client ${i}: ${e.code || ''} ${e.message}`);
      }
      polls.push(performance.now() - t0);
      n++;
      await sleep(5);
    }
  });
  let result;
  let error;
  try {
    result = await fn();
  } catch (e) {
    error = e;
  }
  stop = true;
  await Promise.all(loops);
  const alive = d.alive();
  const samePid = d.proc && d.proc.pid === pid;
  if (error) {
    if (!alive) error.message += `\n(asyncd died meanwhile: ${JSON.stringify(d.exitInfo)})\n${d.stderrTail(2000)}`;
    throw error;
  }
  assert.ok(alive, `${what}: asyncd must still be running (exit ${JSON.stringify(d.exitInfo)})\n${d.stderrTail(2000)}`);
  assert.ok(samePid, `${what}: asyncd must be the same process (pid ${pid})`);
  assert.deepEqual(failures.slice(0, 5), [], `${what}: every concurrent poll answered SUCCESS`);
  const worst = Math.max(...polls);
  assert.ok(worst < POLL_BOUND_MS, `${what}: every concurrent poll answered within ${POLL_BOUND_MS} ms (worst ${worst.toFixed(0)} ms of ${polls.length})`);
  const last = await d.describe('cdb', id);
  assert.equal(last.Status, 'SUCCESS', `${what}: an SDK call is answered afterwards`);
  return result;
}

/** d.tc3 that fails fast rather than waiting 15 s for a hung answer. */
const tc3q = (o) => d.tc3({ timeoutMs: QUICK_MS, ...o });

/** The envelope's error message (after assertEnvelope). */
const msg = (r) => r.json.Response.Error.Message;

function assertLimit(r, code, res, what) {
  assertEnvelope(r, code, what);
  for (const re of res) assert.match(msg(r), re, `${what}: the message names the limit`);
}

/** v1 requests carrying these extra business pairs (signed unless sig is given). */
const v1 = (method, pairs, extra = {}) => d.v1({ method, params: [['AsyncRequestId', id], ...pairs], timeoutMs: QUICK_MS, ...extra });

/** n distinct filler parameters. */
const fillers = (n, prefix = 'P') => Array.from({ length: n }, (_, i) => [`${prefix}${i}`, '1']);
const formOf = (pairs) => pairs.map(([k, v]) => `${qsEncode(k)}=${qsEncode(v)}`).join('&');

// v1 requests carry 9 common parameters (Action Version Region Timestamp Nonce SecretId
// SignatureMethod RequestClient Signature) and AsyncRequestId: 10 besides the fillers.
const V1_FIXED = 10;

// ------------------------------------------------------------------------------ the body

describe('the body', T, () => {
  test('a body over --max-body (1 MiB) -> RequestSizeLimitExceeded naming the limit; at the limit it is judged', async () => {
    await alongside('body over 1 MiB', async () => {
      const over = JSON.stringify({ AsyncRequestId: id, Pad: 'x'.repeat(MiB) });
      const r = await tc3q({ payload: over });
      assertLimit(r, 'RequestSizeLimitExceeded', [/1048576|1 ?MiB/], 'TC3 body of 1 MiB + 40 bytes');
      const form = await v1('POST', [['Pad', 'y'.repeat(MiB)]]);
      assertLimit(form, 'RequestSizeLimitExceeded', [/1048576|1 ?MiB/], 'v1 form body over 1 MiB');
      // A body just under the limit (trailing JSON whitespace) is parsed and served.
      const under = await tc3q({ payload: JSON.stringify({ AsyncRequestId: id }).padEnd(MiB - 16, ' ') });
      assert.equal(under.json?.Response?.Status, 'SUCCESS', `TC3 body just under 1 MiB: ${under.text.slice(0, 300)}`);
    });
  });
});

// ------------------------------------------------------------------------------ parameters

describe('parameters in a form', T, () => {
  const COUNT_MSG = [/1000/, /parameters/];

  test('POST forms (v1, TC3): 1000 parameters are judged, 1001 -> RequestSizeLimitExceeded', async () => {
    await alongside('POST 1001 parameters', async () => {
      const at = await v1('POST', fillers(1000 - V1_FIXED));
      assertEnvelope(at, 'UnknownParameter', 'v1 POST with exactly 1000 parameters');
      const over = await v1('POST', fillers(1001 - V1_FIXED));
      assertLimit(over, 'RequestSizeLimitExceeded', COUNT_MSG, 'v1 POST with 1001 parameters');
      for (const n of [1000, 1001, 5000]) {
        const r = await tc3q({ payload: formOf([['AsyncRequestId', id], ...fillers(n - 1)]), contentType: 'application/x-www-form-urlencoded' });
        if (n === 1000) assertEnvelope(r, 'UnknownParameter', 'TC3 POST form with exactly 1000 parameters');
        else assertLimit(r, 'RequestSizeLimitExceeded', COUNT_MSG, `TC3 POST form with ${n} parameters`);
      }
    });
  });

  // A GET's parameters are in the URL, which the HTTP layer holds in its per-connection memory:
  // it must hold a 1000-parameter query (about 8 KB) and answer a 1001-parameter one.
  test('GET queries (v1, TC3): 1000 parameters are judged, 1001 -> RequestSizeLimitExceeded (never a hang)', async () => {
    await alongside('GET 1001 parameters', async () => {
      for (const n of [1000, 1001]) {
        const rs = [
          ['v1 GET', await v1('GET', fillers(n - V1_FIXED)).catch((e) => e)],
          ['TC3 GET', await tc3q({ method: 'GET', query: formOf([['AsyncRequestId', id], ...fillers(n - 1)]) }).catch((e) => e)],
        ];
        for (const [how, r] of rs) {
          assert.ok(!(r instanceof Error), `${how} with ${n} parameters must be answered: ${r.message?.slice(0, 80)}`);
          if (n === 1000) assertEnvelope(r, 'UnknownParameter', `${how} with exactly 1000 parameters`);
          else assertLimit(r, 'RequestSizeLimitExceeded', COUNT_MSG, `${how} with 1001 parameters`);
        }
      }
    });
  });

  // Each query argument costs the HTTP layer a record in that memory, so a short URL of many tiny
  // arguments must be refused at once too, not left without an answer until the idle timeout.
  test('a GET of 4000 tiny parameters (a 16 KB URL) is refused at once, never left hanging', async () => {
    await alongside('GET 4000 tiny parameters', async () => {
      const names = Array.from({ length: 4000 }, (_, i) => i.toString(36));
      const query = `Action=DescribeAsyncRequestInfo&Version=2017-03-20&${names.join('&')}`;
      assert.ok(query.length < 20000, `URL of ${query.length} bytes`);
      for (const how of ['unsigned', 'TC3']) {
        const t0 = performance.now();
        const r = how === 'TC3'
          ? await tc3Custom({ method: 'GET', query: names.join('&') }).catch((e) => e)
          : await httpRequest({ port: d.port, path: `/?${query}`, timeoutMs: QUICK_MS }).catch((e) => e);
        const ms = performance.now() - t0;
        assert.ok(!(r instanceof Error), `${how}: answered, not ${r.message?.slice(0, 60)} after ${ms.toFixed(0)} ms`);
        if (r.status === 200) assertLimit(r, 'RequestSizeLimitExceeded', COUNT_MSG, `${how} GET of 4000 parameters`);
        else assert.ok([414, 431].includes(r.status), `${how}: the envelope or HTTP 414/431, got ${r.status}`);
        assert.ok(ms < POLL_BOUND_MS, `${how}: answered within ${POLL_BOUND_MS} ms (took ${ms.toFixed(0)})`);
      }
    });
  });

  test('a name of 256 bytes is judged, 257 bytes -> InvalidParameter naming 256', async () => {
    await alongside('long names', async () => {
      for (const [len, pct] of [[256, false], [257, false], [257, true]]) {
        const name = pct ? 'N'.repeat(len) : 'n'.repeat(len);
        // pct: the name sent %-encoded (3 raw bytes per decoded byte); the bound is on the name.
        const pairs = [['AsyncRequestId', id], [name, '1']];
        const query = pct ? `AsyncRequestId=${id}&${'%4E'.repeat(len)}=1` : formOf(pairs);
        const what = `${len}-byte name${pct ? ' (%-encoded)' : ''}`;
        const rs = [await tc3q({ method: 'GET', query, timeoutMs: QUICK_MS }), await v1('GET', [[name, '1']]),
          await tc3q({ payload: query, contentType: 'application/x-www-form-urlencoded', timeoutMs: QUICK_MS })];
        for (const [how, r] of rs.map((r, i) => [['TC3 GET', 'v1 GET', 'TC3 POST form'][i], r])) {
          if (len <= 256) assertEnvelope(r, 'UnknownParameter', `${how}: ${what}`);
          else assertLimit(r, 'InvalidParameter', [/256/], `${how}: ${what}`);
        }
      }
    });
  });

  test('a name of 8 parts is judged, 9 parts (a.0.0.0.0.0.0.0.0) -> InvalidParameter naming the depth 8', async () => {
    await alongside('deep names', async () => {
      const eight = `a${'.0'.repeat(7)}`;
      const nine = `a${'.0'.repeat(8)}`;
      for (const method of ['GET', 'POST']) {
        const ok = await v1(method, [[eight, '1']]);
        assertEnvelope(ok, 'UnknownParameter', `v1 ${method} ${eight}`);
        const bad = await v1(method, [[nine, '1']]);
        assertLimit(bad, 'InvalidParameter', [/\b8\b/, /depth|parts|levels|deep/i], `v1 ${method} ${nine}`);
      }
      const tc3 = await tc3q({ method: 'GET', query: `AsyncRequestId=${id}&${nine}=1` });
      assertLimit(tc3, 'InvalidParameter', [/\b8\b/], `TC3 GET ${nine}`);
      const deeper = await v1('POST', [[`Filters${'.0.Values'.repeat(8)}`, 'x']]);
      assertLimit(deeper, 'InvalidParameter', [/\b8\b/], 'v1 POST Filters.0.Values x8');
    });
  });

  test('a value of 65536 bytes is judged, 65537 bytes -> InvalidParameterValue naming 65536', async () => {
    await alongside('long values', async () => {
      for (const len of [65536, 65537]) {
        const v = 'v'.repeat(len);
        const rs = [
          ['v1 POST', await v1('POST', [['Pad', v]])],
          ['TC3 POST form', await tc3q({ payload: formOf([['AsyncRequestId', id], ['Pad', v]]), contentType: 'application/x-www-form-urlencoded' })],
          // %-encoded: 3 raw bytes per decoded byte; the bound is on the decoded value
          ['TC3 POST form %-encoded', await tc3q({ payload: `AsyncRequestId=${id}&Pad=${'%76'.repeat(len)}`, contentType: 'application/x-www-form-urlencoded' })],
        ];
        for (const [how, r] of rs) {
          if (len <= 65536) assertEnvelope(r, 'UnknownParameter', `${how}: ${len}-byte value`);
          else assertLimit(r, 'InvalidParameterValue', [/65536/], `${how}: ${len}-byte value`);
        }
      }
      // A known parameter too: AsyncRequestId of 65537 bytes is refused for its length.
      const big = await v1('POST', [], { params: [['AsyncRequestId', 'f'.repeat(65537)]] });
      assertLimit(big, 'InvalidParameterValue', [/65536/], 'v1 AsyncRequestId of 65537 bytes');
    });
  });
});

// ------------------------------------------------------------------------------ JSON depth

const nested = (levels) => `{"a":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;

describe('JSON depth', T, () => {
  test('a JSON body 16 levels deep is judged, 17 levels -> InvalidParameter naming 16', async () => {
    await alongside('JSON depth', async () => {
      const at = await tc3q({ payload: `{"AsyncRequestId":"${id}","a":${'['.repeat(15)}${']'.repeat(15)}}` });
      assertEnvelope(at, 'UnknownParameter', '16 levels');
      for (const body of [nested(17), `{"AsyncRequestId":"${id}","a":${'{"b":'.repeat(16)}1${'}'.repeat(16)}}`]) {
        const r = await tc3q({ payload: body });
        assertLimit(r, 'InvalidParameter', [/\b16\b/], `17 levels: ${body.slice(0, 40)}`);
      }
      // Brackets inside strings are not nesting.
      const str = await tc3q({ payload: JSON.stringify({ AsyncRequestId: id, a: '['.repeat(100) }) });
      assertEnvelope(str, 'UnknownParameter', 'brackets inside a string');
    });
  });
});

// ------------------------------------------------------------------------------ headers

describe('headers', T, () => {
  const body = () => JSON.stringify({ AsyncRequestId: id });
  const pads = (n, size = 8) => Array.from({ length: n }, (_, i) => [`X-Pad-${i}`, 'p'.repeat(size)]);

  test('100 headers are served, 101 -> RequestSizeLimitExceeded', async () => {
    await alongside('header count', async () => {
      const b = body();
      const base = signedTc3Headers(b).length; // 8
      const at = await rawRequest({ headers: signedTc3Headers(b, pads(100 - base)), body: Buffer.from(b) });
      assert.equal(at.status, 200, at.text.slice(0, 300));
      assert.equal(at.json?.Response?.Status, 'SUCCESS', `exactly 100 headers, correctly signed: ${at.text.slice(0, 300)}`);
      const over = await rawRequest({ headers: signedTc3Headers(b, pads(101 - base)), body: Buffer.from(b) });
      assert.equal(over.status, 200, over.text.slice(0, 300));
      assertLimit(over, 'RequestSizeLimitExceeded', [/header/i, /100/],
        '101 headers, correctly signed');
    });
  });

  test('under 16 KiB of headers are served, over 16 KiB -> RequestSizeLimitExceeded', async () => {
    await alongside('header bytes', async () => {
      const b = body();
      const under = await rawRequest({ headers: signedTc3Headers(b, pads(14, 1000)), body: Buffer.from(b) });
      assert.equal(under.json?.Response?.Status, 'SUCCESS', `about 14.5 KB of headers: ${under.text.slice(0, 300)}`);
      const over = await rawRequest({ headers: signedTc3Headers(b, pads(18, 1000)), body: Buffer.from(b) });
      assert.equal(over.status, 200, over.text.slice(0, 300));
      assertLimit(over, 'RequestSizeLimitExceeded', [/header/i, /16 ?KiB|16384/i],
        'about 18.5 KB of headers, correctly signed');
      // One single header over 16 KiB (in a block that MHD still holds).
      const one = await rawRequest({ headers: signedTc3Headers(b, [['X-Big', 'b'.repeat(17 * 1024)]]), body: Buffer.from(b) });
      assert.equal(one.status, 200, one.text.slice(0, 300));
      assert.equal(one.json?.Response?.Error?.Code, 'RequestSizeLimitExceeded', `one 17 KiB header: ${one.text.slice(0, 300)}`);
    });
  });

  test('a header block past ~32 KiB gets HTTP 431/413 or the envelope, and nothing else breaks', async () => {
    await alongside('huge headers', async () => {
      const b = body();
      for (const hs of [pads(40, 1000), pads(2000, 4), [['X-Huge', 'h'.repeat(200 * 1024)]]]) {
        const r = await rawRequest({ headers: signedTc3Headers(b, hs), body: Buffer.from(b) });
        const code = r.json?.Response?.Error?.Code;
        const ok = [431, 413].includes(r.status) || code === 'RequestSizeLimitExceeded' || (r.status === null && r.closed);
        assert.ok(ok, `${hs.length} headers: got ${r.status} ${r.text.slice(0, 200)} ${r.error || ''}`);
        assert.notEqual(r.json?.Response?.Status, 'SUCCESS', 'never served');
      }
    });
  });
});

// ------------------------------------------------------------------------------ SignedHeaders

describe('SignedHeaders', T, () => {
  const body = () => JSON.stringify({ AsyncRequestId: id });

  test('a list without both content-type and host -> AuthFailure.InvalidAuthorization, even correctly signed', async () => {
    await alongside('SignedHeaders', async () => {
      const cases = [
        { signedHeaders: ['content-type', 'x-host'], headers: { 'X-Host': '127.0.0.1' } },
        { signedHeaders: ['content-type'] },
        { signedHeaders: ['host'] },
        { signedHeaders: ['content-type', 'hostname'], headers: { Hostname: '127.0.0.1' } },
        { signedHeaders: ['x-tc-action', 'content-type'] },
        { signedHeaders: ['content-type', 'x-tc-timestamp', 'x-tc-version'] },
      ];
      for (const c of cases) {
        const r = await tc3Custom({ ...c, body: body() });
        assertLimit(r, 'AuthFailure.InvalidAuthorization', [/SignedHeaders/], `SignedHeaders=${c.signedHeaders.join(';')}`);
      }
      // And for a GET too.
      const g = await tc3Custom({ method: 'GET', query: `AsyncRequestId=${id}`, signedHeaders: ['content-type'] });
      assertLimit(g, 'AuthFailure.InvalidAuthorization', [/SignedHeaders/], 'GET SignedHeaders=content-type');
    });
  });

  test('extra signed headers work; the host is signed with or without its port', async () => {
    await alongside('SignedHeaders ok', async () => {
      const cases = [
        { signedHeaders: ['content-type', 'host'] },
        { signedHeaders: ['content-type', 'host'], hostSigned: `127.0.0.1:${d.port}` },
        { signedHeaders: ['content-type', 'host', 'x-tc-action'] },
        { signedHeaders: ['content-type', 'host', 'x-tc-action', 'x-tc-timestamp', 'x-tc-version'], hostSigned: `127.0.0.1:${d.port}` },
        { signedHeaders: ['host', 'content-type'] },
      ];
      for (const c of cases) {
        const r = await tc3Custom({ ...c, body: body() });
        assert.equal(r.json?.Response?.Status, 'SUCCESS', `SignedHeaders=${c.signedHeaders.join(';')} host=${c.hostSigned || 'bare'}: ${r.text}`);
      }
      const g = await tc3Custom({ method: 'GET', query: `AsyncRequestId=${id}`, signedHeaders: ['content-type', 'host', 'x-tc-region'] });
      assert.equal(g.json?.Response?.Status, 'SUCCESS', `GET with x-tc-region signed: ${g.text}`);
      // Correctly listed but wrongly signed is still a signature failure.
      const bad = await tc3Custom({ signedHeaders: ['content-type', 'host', 'x-tc-action'], body: body(), badSignature: true });
      assertEnvelope(bad, 'AuthFailure.SignatureFailure', 'extra signed headers, wrong signature');
    });
  });
});

// ------------------------------------------------------------------------------ cheap refusals

/** The unsigned 600 KB form whose one name is nested 300,000 levels. */
const deepNameForm = () => `Action=DescribeAsyncRequestInfo&Version=2017-03-20&a${'.0'.repeat(300000)}=v`;
/** A form just under 1 MiB with 160,000 distinct parameters. */
function manyParamsForm() {
  const parts = ['Action=DescribeAsyncRequestInfo', 'Version=2017-03-20'];
  for (let i = 0; parts.length < 160002; i++) parts.push(`${i.toString(36)}=`);
  const s = parts.join('&');
  assert.ok(s.length < MiB, `the form (${s.length} bytes) fits in --max-body`);
  return s;
}
const deepJson = (levels = 100000) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

function postForm(form, timeoutMs = QUICK_MS) {
  return httpRequest({ port: d.port, method: 'POST', path: '/', timeoutMs,
    headers: { Host: `127.0.0.1:${d.port}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form) });
}

function rssKiB() {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${d.proc.pid}/status`, 'utf8'));
  return Number(m[1]);
}

async function timed(p) {
  const t0 = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t0 };
}

describe('hostile requests are answered quickly and cheaply', T, () => {
  test('an unsigned form with one name nested 300,000 levels gets an error envelope', async () => {
    const form = deepNameForm();
    assert.ok(form.length > 600000);
    await alongside('deep name', async () => {
      const { r, ms } = await timed(postForm(form));
      assertEnvelope(r, undefined, '300,000-level name');
      assert.ok(ms < POLL_BOUND_MS, `answered within ${POLL_BOUND_MS} ms (took ${ms.toFixed(0)})`);
      // Signed, it is the depth limit that answers.
      const pairs = [['AsyncRequestId', id], [`a${'.0'.repeat(300000)}`, 'v']];
      const s = await v1('POST', pairs.slice(1));
      assertEnvelope(s, ['InvalidParameter'], 'signed 300,000-level name');
      assert.match(msg(s), /\b8\b|\b256\b/, 'the message names a name bound');
    });
  });

  test('an unsigned 1 MiB form with 160,000 parameters is answered within 1 s', async () => {
    const form = manyParamsForm();
    await alongside('160k parameters', async () => {
      for (let i = 0; i < 3; i++) {
        const { r, ms } = await timed(postForm(form));
        assertEnvelope(r, undefined, '160,000 parameters');
        assert.ok(ms < POLL_BOUND_MS, `answered within ${POLL_BOUND_MS} ms (took ${ms.toFixed(0)})`);
        assert.equal(r.json.Response.Error.Code, 'RequestSizeLimitExceeded', `limit first, before anything is decoded: ${msg(r)}`);
        assert.match(msg(r), /1000/);
      }
    });
  });

  test('a JSON body 100,000 levels deep: wrong signature -> SignatureFailure, right signature -> InvalidParameter', async () => {
    const deep = deepJson();
    await alongside('deep JSON', async () => {
      const bad = await tc3Custom({ body: deep, badSignature: true });
      assertEnvelope(bad, 'AuthFailure.SignatureFailure', 'deep JSON, wrong signature: verified on the raw bytes first');
      const badObj = await tc3Custom({ body: `{"a":${deep}}`, badSignature: true });
      assertEnvelope(badObj, 'AuthFailure.SignatureFailure', 'deep JSON in an object, wrong signature');
      const good = await tc3Custom({ body: deep });
      assertLimit(good, 'InvalidParameter', [/\b16\b/], 'deep JSON, correctly signed');
      const goodObj = await tc3Custom({ body: `{"a":${deep}}` });
      assertLimit(goodObj, 'InvalidParameter', [/\b16\b/], 'deep JSON in an object, correctly signed');
      // Unbalanced: only opening brackets.
      const open = await tc3Custom({ body: `{"a":${'['.repeat(100000)}` });
      assertEnvelope(open, 'InvalidParameter', 'unclosed deep JSON, correctly signed');
    });
  });

  test('20 hostile requests leave the daemon RSS within 64 MiB of where it was', async () => {
    const bodies = [deepNameForm(), manyParamsForm(), deepJson(), `{"a":${deepJson()}}`];
    await alongside('RSS', async () => {
      const before = rssKiB();
      for (let i = 0; i < 20; i++) {
        const b = bodies[i % bodies.length];
        const r = i % 4 < 2 ? await postForm(b) : await tc3Custom({ body: b, badSignature: i % 8 >= 4 });
        assertEnvelope(r, undefined, `hostile request ${i}`);
      }
      const grown = rssKiB() - before;
      assert.ok(grown < 64 * 1024, `RSS grew by ${(grown / 1024).toFixed(1)} MiB (${before} kB before)`);
    });
  });
});

// ------------------------------------------------------------------------------ order

describe('order of the checks', T, () => {
  test('v1, over a limit: wrongly signed -> the limit or SignatureFailure, never success; correctly signed -> the limit', async () => {
    await alongside('order', async () => {
      const wrongSig = { override: { Signature: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' } };
      const overs = [
        { what: '1001 parameters', pairs: fillers(1001 - V1_FIXED), code: 'RequestSizeLimitExceeded' },
        { what: '257-byte name', pairs: [['n'.repeat(257), '1']], code: 'InvalidParameter' },
        { what: '9-part name', pairs: [[`a${'.0'.repeat(8)}`, '1']], code: 'InvalidParameter' },
        { what: '65537-byte value', pairs: [['Pad', 'v'.repeat(65537)]], code: 'InvalidParameterValue', post: true },
      ];
      for (const method of ['POST', 'GET']) {
        for (const o of overs.filter((x) => method === 'POST' || !x.post)) {
          const bad = await v1(method, o.pairs, wrongSig);
          assertEnvelope(bad, [o.code, 'AuthFailure.SignatureFailure'], `v1 ${method} ${o.what}, wrong signature`);
          const good = await v1(method, o.pairs);
          assertEnvelope(good, o.code, `v1 ${method} ${o.what}, correctly signed`);
        }
      }
    });
  });

  test('TC3, over a limit: wrongly signed -> the limit or SignatureFailure, correctly signed -> the limit', async () => {
    await alongside('order TC3', async () => {
      const jBad = await tc3Custom({ body: nested(17), badSignature: true });
      assertEnvelope(jBad, ['InvalidParameter', 'AuthFailure.SignatureFailure'], 'TC3 17-level JSON, wrong signature');
      const form = formOf([['AsyncRequestId', id], ...fillers(1000)]);
      const ct = 'application/x-www-form-urlencoded';
      const pBad = await tc3Custom({ body: form, contentType: ct, badSignature: true });
      assertEnvelope(pBad, ['RequestSizeLimitExceeded', 'AuthFailure.SignatureFailure'], 'TC3 POST form 1001 parameters, wrong signature');
      const pGood = await tc3Custom({ body: form, contentType: ct });
      assertEnvelope(pGood, 'RequestSizeLimitExceeded', 'TC3 POST form 1001 parameters, correctly signed');
      const vBad = await tc3Custom({ body: `AsyncRequestId=${id}&Pad=${'v'.repeat(65537)}`, contentType: ct, badSignature: true });
      assertEnvelope(vBad, ['InvalidParameterValue', 'AuthFailure.SignatureFailure'], 'TC3 POST form 65537-byte value, wrong signature');
      // GET last (the query is the URL; see the GET test above).
      const tBad = await tc3Custom({ method: 'GET', query: form, badSignature: true });
      assertEnvelope(tBad, ['RequestSizeLimitExceeded', 'AuthFailure.SignatureFailure'], 'TC3 GET 1001 parameters, wrong signature');
      const tGood = await tc3Custom({ method: 'GET', query: form });
      assertEnvelope(tGood, 'RequestSizeLimitExceeded', 'TC3 GET 1001 parameters, correctly signed');
    });
  });
});
