// Hostile and broken Cloud API input: every request gets an HTTP 200 error envelope with a
// RequestId (or, for bytes that are not HTTP at all, a clean 4xx/505 or close), nothing hangs or
// crashes, and the server answers valid SDK calls and /healthz afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NO_LIMITS, SLOW, VERSIONS, assertEnvelope, prng, qsEncode, rawSocket, start, tc3Authorization, v1Signature,
} from './lib/asyncd.mjs';

const T = { timeout: 120000 * SLOW };
let d;
let cdbId;
let mongoId;

before(async () => {
  d = await start({ args: NO_LIMITS });
  cdbId = (await d.taskInState('cdb', 'running')).id;
  mongoId = (await d.taskInState('mongodb', 'success')).id;
});
after(async () => { await d?.stop(); });

async function stillServing(what) {
  assert.ok(d.alive(), `asyncd is still running after ${what}\n${d.stderrTail()}`);
  const h = await d.healthz();
  assert.equal(h.status, 200, `/healthz after ${what}`);
  assert.equal((await d.describe('cdb', cdbId)).Status, 'RUNNING', `SDK cdb call after ${what}`);
  assert.equal((await d.describe('mongodb', mongoId, { signMethod: 'HmacSHA1', reqMethod: 'GET' })).Status, 'success', `SDK mongodb call after ${what}`);
}

const now = () => Math.floor(Date.now() / 1000);

describe('malformed bodies and parameters (correctly signed)', T, () => {
  test('truncated JSON bodies -> an error envelope', async () => {
    const full = JSON.stringify({ AsyncRequestId: cdbId });
    for (let cut = 1; cut < full.length; cut += 3) {
      const r = await d.tc3({ payload: full.slice(0, cut) });
      assertEnvelope(r, ['InvalidParameter', 'InvalidRequest', 'MissingParameter'], `cut at ${cut}: ${full.slice(0, cut)}`);
    }
    await stillServing('truncated JSON');
  });

  test('JSON that is not an object, or has trailing garbage -> an error envelope', async () => {
    for (const body of ['[]', '"x"', '1', 'null', 'true', `{"AsyncRequestId":"${cdbId}"} x`, `{"AsyncRequestId":"${cdbId}"}{}`,
      `{"AsyncRequestId":"${cdbId}",}`, "{'AsyncRequestId':'x'}", '{"AsyncRequestId":"\\ud800"}', '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}']) {
      const r = await d.tc3({ payload: body });
      assertEnvelope(r, undefined, body.slice(0, 60));
    }
    await stillServing('non-object JSON');
  });

  test('an empty body on a TC3 POST -> an error envelope', async () => {
    const r = await d.tc3({ payload: '' });
    assertEnvelope(r, ['MissingParameter', 'InvalidParameter', 'InvalidRequest'], 'empty body');
  });

  test('AsyncRequestId of the wrong JSON type -> InvalidParameter (null: InvalidParameter or MissingParameter)', async () => {
    for (const [what, v] of [['array', [cdbId]], ['object', { id: cdbId }], ['true', true], ['false', false], ['number', 1.5], ['huge number', 1e308]]) {
      assertEnvelope(await d.tc3({ payload: { AsyncRequestId: v } }), 'InvalidParameter', what);
      assertEnvelope(await d.tc3({ product: 'mongodb', payload: { AsyncRequestId: v } }), 'InvalidParameter', `mongodb ${what}`);
    }
    assertEnvelope(await d.tc3({ payload: { AsyncRequestId: null } }), ['InvalidParameter', 'MissingParameter'], 'null');
  });

  test('a duplicated key in the JSON body is refused, not silently resolved', async () => {
    const body = `{"AsyncRequestId":"${cdbId}","AsyncRequestId":"${'0'.repeat(8)}-${'0'.repeat(8)}-${'0'.repeat(8)}-${'0'.repeat(8)}"}`;
    assertEnvelope(await d.tc3({ payload: body }), 'InvalidParameter', 'duplicate JSON key');
  });

  test('non-UTF-8 bytes inside a JSON string -> an error envelope', async () => {
    for (const bad of [[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      const body = Buffer.concat([Buffer.from('{"AsyncRequestId":"abc'), Buffer.from(bad), Buffer.from('"}')]);
      assertEnvelope(await d.tc3({ payload: body }), ['InvalidParameter', 'InvalidParameterValue', 'InvalidRequest'], `bytes ${bad}`);
    }
    await stillServing('non-UTF-8 JSON');
  });

  test('a NUL inside AsyncRequestId does not match the task', async () => {
    const r = await d.tc3({ payload: `{"AsyncRequestId":"${cdbId}\\u0000"}` });
    assertEnvelope(r, undefined, 'escaped NUL');
  });

  test('non-UTF-8 bytes in a query value (v1 GET, TC3 GET) -> an error envelope', async () => {
    for (const enc of ['%FF', '%C3%28', '%ED%A0%80', '%C0%AF', '%', '%G1', '%0']) {
      const r = await d.cloudRaw({ method: 'GET', path: `/?AsyncRequestId=abc${enc}&Action=DescribeAsyncRequestInfo&Version=${VERSIONS.cdb}&Region=ap-guangzhou&SecretId=${d.creds.SecretId}&Timestamp=${now()}&Nonce=1&SignatureMethod=HmacSHA256&Signature=x` });
      assertEnvelope(r, ['InvalidParameter', 'InvalidParameterValue', 'AuthFailure.SignatureFailure'], `v1 ${enc}`);
      const query = `AsyncRequestId=abc${enc}`;
      const t = await d.tc3({ method: 'GET', query });
      assertEnvelope(t, ['InvalidParameter', 'InvalidParameterValue'], `TC3 GET ${enc}`);
    }
    await stillServing('non-UTF-8 query');
  });

  test('a v1 request whose non-UTF-8 value is correctly signed -> InvalidParameter, not a crash', async () => {
    const ts = now();
    const pairs = [['Action', 'DescribeAsyncRequestInfo'], ['Version', VERSIONS.cdb], ['Region', 'ap-guangzhou'],
      ['SecretId', d.creds.SecretId], ['Timestamp', String(ts)], ['Nonce', '7'], ['SignatureMethod', 'HmacSHA256']];
    const sig = v1Signature({ method: 'GET', host: `127.0.0.1:${d.port}`, pairs: [...pairs, ['AsyncRequestId', 'abc\ufffd']], secretKey: d.creds.SecretKey });
    const q = `${pairs.map(([k, v]) => `${k}=${qsEncode(v)}`).join('&')}&AsyncRequestId=abc%FF&Signature=${qsEncode(sig)}`;
    assertEnvelope(await d.cloudRaw({ method: 'GET', path: `/?${q}`, headers: { Host: `127.0.0.1:${d.port}` } }),
      ['InvalidParameter', 'InvalidParameterValue'], 'signed %FF');
  });

  test('duplicate query parameters -> InvalidParameter (v1 GET and TC3 GET)', async () => {
    const r = await d.v1({ params: [['AsyncRequestId', cdbId], ['AsyncRequestId', cdbId]] });
    assertEnvelope(r, 'InvalidParameter', 'v1 GET AsyncRequestId twice');
    const r2 = await d.v1({ params: [['AsyncRequestId', cdbId], ['Action', 'DescribeAsyncRequestInfo']] });
    assertEnvelope(r2, 'InvalidParameter', 'v1 GET Action twice');
    const q = `AsyncRequestId=${cdbId}&AsyncRequestId=${cdbId}`;
    assertEnvelope(await d.tc3({ method: 'GET', query: q }), 'InvalidParameter', 'TC3 GET AsyncRequestId twice');
    const form = await d.v1({ method: 'POST', params: [['AsyncRequestId', cdbId], ['AsyncRequestId', 'x']] });
    assertEnvelope(form, 'InvalidParameter', 'v1 POST form AsyncRequestId twice');
  });

  test('TC3 with a Content-Type that is neither JSON nor form -> an error envelope', async () => {
    for (const ct of ['text/plain', 'application/xml', 'garbage', 'multipart/form-data; boundary=x', '', 'application/json; charset=latin1; x']) {
      const r = await d.tc3({ payload: { AsyncRequestId: cdbId }, contentType: ct });
      // Lenient readings are fine: JSON parameters, or no value taken as the JSON default.
      if ((ct === '' || ct.startsWith('application/json')) && r.json?.Response?.Status) continue;
      assertEnvelope(r, undefined, `Content-Type ${JSON.stringify(ct)}`);
    }
    await stillServing('odd Content-Types');
  });

  test('non-UTF-8 bytes in header values -> an error envelope (the Message must stay valid JSON/UTF-8)', async () => {
    const cases = {
      'Content-Type': 'applic\xe6tion/json',
      'X-TC-Action': 'Describe\xff',
      'X-TC-Version': '2017-03-2\xc0',
      'X-TC-Region': 'ap-\xe9',
      'X-TC-Timestamp': '\xfb123',
      Authorization: 'TC3-HMAC-SHA256 Credential=\xff/2020-01-01/cdb/tc3_request, SignedHeaders=content-type;host, Signature=00',
    };
    const problems = [];
    for (const [name, value] of Object.entries(cases)) {
      const headers = { [name]: value };
      const r = await d.tc3({ payload: { AsyncRequestId: cdbId }, headers, contentType: name === 'Content-Type' ? value : undefined });
      try { assertEnvelope(r, undefined, `${name}: ${JSON.stringify(value)}`); } catch (e) { problems.push(e.message.split('\n')[0]); }
    }
    assert.deepEqual(problems, []);
  });

  test('requests with headers only (no signature, no parameters) -> an error envelope', async () => {
    for (const [method, headers] of [['POST', {}], ['GET', {}], ['POST', { 'Content-Type': 'application/json' }],
      ['POST', { 'X-TC-Action': 'DescribeAsyncRequestInfo' }], ['GET', { Authorization: 'TC3-HMAC-SHA256' }]]) {
      const r = await d.cloudRaw({ method, headers, body: method === 'POST' ? '' : undefined });
      assertEnvelope(r, undefined, `${method} ${JSON.stringify(headers)}`);
    }
  });

  test('a body over 1 MiB -> RequestSizeLimitExceeded envelope, or a clean close', async (t) => {
    // A raw socket, so the answer is seen even when the server answers before reading it all.
    const ts = now();
    const oversize = [
      ['TC3 JSON', 'application/json', Buffer.from(JSON.stringify({ AsyncRequestId: cdbId, Pad: 'x'.repeat((1 << 20) + 10) }))],
      ['v1 form', 'application/x-www-form-urlencoded', Buffer.from(`AsyncRequestId=${'y'.repeat(3 << 20)}`)],
    ];
    for (const [what, ct, body] of oversize) {
      const auth = tc3Authorization({ secretId: d.creds.SecretId, secretKey: d.creds.SecretKey, service: '127',
        host: '127.0.0.1', contentType: ct, body, timestamp: ts });
      const head = `POST / HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nContent-Type: ${ct}\r\n` +
        `X-TC-Action: DescribeAsyncRequestInfo\r\nX-TC-Version: ${VERSIONS.cdb}\r\nX-TC-Region: ap-guangzhou\r\n` +
        `X-TC-Timestamp: ${ts}\r\nAuthorization: ${auth}\r\nContent-Length: ${body.length}\r\n\r\n`;
      const r = await rawSocket(d.port, Buffer.concat([Buffer.from(head), body]), { halfClose: false, timeoutMs: 15000 * SLOW });
      assert.ok(!r.timedOut, `${what}: no answer and no close`);
      if (r.status === null) {
        t.diagnostic(`${what} over 1 MiB: connection closed without an answer (${r.error || 'EOF'})`);
        assert.equal(r.data.length, 0);
      } else {
        t.diagnostic(`${what} over 1 MiB: HTTP ${r.status} ${r.json?.Response?.Error?.Code}`);
        const bodyAt = r.data.indexOf('\r\n\r\n');
        assertEnvelope({ status: r.status, json: r.json, text: r.text, headers: { 'content-type': /content-type: *([^\r]*)/i.exec(r.text.slice(0, bodyAt))?.[1] } },
          'RequestSizeLimitExceeded', `${what} over 1 MiB`);
      }
    }
    await stillServing('over-size body');
  });

  test('the SDK sees RequestSizeLimitExceeded for an over-size request every time (20 tries)', { todo: 'answer is sent, but the unread rest of the body makes the close a RST: the SDK often gets EPIPE instead' }, async () => {
    const seen = {};
    for (let i = 0; i < 10; i++) {
      for (const mode of [{ signMethod: 'TC3-HMAC-SHA256', reqMethod: 'POST' }, { signMethod: 'HmacSHA256', reqMethod: 'POST' }]) {
        let code;
        try { await d.describe('cdb', 'x'.repeat((1 << 20) + 100), mode); code = 'answered'; } catch (e) { code = e.code || `no code (${e.message.replace(/.*reason: /, '')})`; }
        seen[code] = (seen[code] || 0) + 1;
      }
    }
    assert.deepEqual(seen, { RequestSizeLimitExceeded: 20 });
  });

  test('conflicting Content-Length headers -> 400 and close, the request is not processed (RFC 9112 6.3)', async () => {
    const ts = now();
    const body = Buffer.from(JSON.stringify({ AsyncRequestId: cdbId }));
    const auth = tc3Authorization({ secretId: d.creds.SecretId, secretKey: d.creds.SecretKey, service: '127',
      host: '127.0.0.1', body, timestamp: ts });
    const head = `POST / HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nContent-Type: application/json\r\n` +
      `X-TC-Action: DescribeAsyncRequestInfo\r\nX-TC-Version: ${VERSIONS.cdb}\r\nX-TC-Region: ap-guangzhou\r\n` +
      `X-TC-Timestamp: ${ts}\r\nAuthorization: ${auth}\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length + 5}\r\n\r\n`;
    const r = await rawSocket(d.port, Buffer.concat([Buffer.from(head), body, Buffer.from('xxxxx')]), { timeoutMs: 5000 * SLOW });
    assert.ok(!r.json?.Response?.Status, `a request with ambiguous framing was answered: ${r.text.slice(0, 300)}`);
    assert.ok(r.status === null || (r.status >= 400 && r.status < 500), `HTTP ${r.status}`);
  });

  test('a body just under 1 MiB is read and judged normally', async () => {
    const body = JSON.stringify({ AsyncRequestId: cdbId, Pad: 'x'.repeat((1 << 20) - 200) });
    const r = await d.tc3({ payload: body });
    assertEnvelope(r, 'UnknownParameter', 'big but allowed body with an unknown parameter');
  });

  test('a huge query string and a huge header get a clean answer', async () => {
    const q = await d.cloudRaw({ method: 'GET', path: `/?AsyncRequestId=${'z'.repeat(200000)}` }).catch((e) => ({ err: e.code }));
    if (!q.err) assert.ok(q.status === 200 ? assertEnvelope(q) : q.status >= 400 && q.status < 500, `status ${q.status}`);
    const h = await d.cloudRaw({ method: 'POST', headers: { 'X-TC-Action': 'A'.repeat(200000) }, body: '{}' }).catch((e) => ({ err: e.code }));
    if (!h.err) assert.ok(h.status === 200 ? assertEnvelope(h) : h.status >= 400 && h.status < 500, `status ${h.status}`);
    await stillServing('huge query and header');
  });

  test('the path is / only; other paths still get an envelope (or 404)', async () => {
    for (const p of ['/foo', '/v1/tasks', '//', '/?', '/%00']) {
      const r = await d.cloudRaw({ method: 'POST', path: p, body: '{}', headers: { 'Content-Type': 'application/json' } });
      if (r.status === 200) assertEnvelope(r, undefined, p);
      else assert.ok(r.status >= 400 && r.status < 500, `${p}: ${r.status}`);
    }
  });
});

describe('seeded random mutations', T, () => {
  function validRequest(rand) {
    const product = rand() < 0.5 ? 'cdb' : 'mongodb';
    const ts = now();
    const body = Buffer.from(JSON.stringify({ AsyncRequestId: product === 'cdb' ? cdbId : mongoId }));
    const host = `${product}.example.net:${d.port}`;
    const headers = {
      Host: host,
      'Content-Type': 'application/json',
      'X-TC-Action': 'DescribeAsyncRequestInfo',
      'X-TC-Version': VERSIONS[product],
      'X-TC-Region': 'ap-guangzhou',
      'X-TC-Timestamp': String(ts),
      Authorization: tc3Authorization({ secretId: d.creds.SecretId, secretKey: d.creds.SecretKey, service: product,
        host: `${product}.example.net`, body, timestamp: ts }),
    };
    return { headers, body };
  }

  function mutate(buf, rand) {
    const b = Buffer.from(buf);
    const n = 1 + Math.floor(rand() * 6);
    let out = b;
    for (let i = 0; i < n; i++) {
      const op = Math.floor(rand() * 5);
      const at = Math.floor(rand() * Math.max(1, out.length));
      if (op === 0 && out.length) out[at] = Math.floor(rand() * 256); // flip a byte
      else if (op === 1) out = Buffer.concat([out.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), out.subarray(at)]);
      else if (op === 2) out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + Math.floor(rand() * 8))]);
      else if (op === 3) out = Buffer.concat([out.subarray(0, at), Buffer.from(['"', '{', '}', '[', '\\', '\u0000', ',', ':'][Math.floor(rand() * 8)]), out.subarray(at)]);
      else out = out.subarray(0, at); // truncate
    }
    return out;
  }

  test('300 mutated bodies and header values: always an HTTP 200 envelope with a RequestId', async () => {
    const rand = prng(0xa5c1d);
    const codes = {};
    const problems = [];
    for (let i = 0; i < 300; i++) {
      const { headers, body } = validRequest(rand);
      let b = body;
      const h = { ...headers };
      const what = rand();
      if (what < 0.6) b = mutate(body, rand);
      else {
        const keys = Object.keys(h).filter((k) => k !== 'Host');
        const k = keys[Math.floor(rand() * keys.length)];
        // Header values must stay legal HTTP field values: printable latin1, no CR/LF.
        h[k] = mutate(Buffer.from(h[k]), rand).toString('latin1').replace(/[^\x20-\x7e\x80-\xff]/g, '') || 'x';
        if (rand() < 0.3) b = mutate(body, rand);
      }
      let r;
      try {
        r = await d.cloudRaw({ method: 'POST', headers: h, body: b });
      } catch (e) {
        assert.fail(`mutation ${i}: ${e.code || e.message}\nheaders ${JSON.stringify(h)}\nbody ${b.toString('latin1')}\n${d.stderrTail()}`);
      }
      if (r.json?.Response?.Status) continue; // a harmless mutation (e.g. in a header the server need not check)
      try {
        const code = assertEnvelope(r, undefined, `mutation ${i}`);
        codes[code] = (codes[code] || 0) + 1;
      } catch (e) {
        problems.push(`${e.message.split('\n')[0]}\n    sent headers ${JSON.stringify(h)} body ${JSON.stringify(b.toString('latin1'))}`);
      }
    }
    assert.equal(problems.length, 0, `${problems.length} of 300 mutations got a bad answer; the first ones:\n${problems.slice(0, 4).join('\n')}`);
    assert.ok(Object.keys(codes).length >= 2, `several kinds of errors were hit: ${JSON.stringify(codes)}`);
    await stillServing('300 mutated requests');
  });

  test('raw bytes that are barely or not HTTP: a clean 4xx or close, never a hang or crash', async (t) => {
    const rand = prng(1234567);
    const valid = Buffer.from(`POST / HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
    const fixed = [
      Buffer.from('\r\n\r\n'),
      Buffer.from('GET\r\n\r\n'),
      Buffer.from('POST / HTTP/9.9\r\n\r\n'),
      Buffer.from('POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n'),
      Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}'),
      Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'),
      Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'),
      Buffer.from('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', 'latin1'), // a TLS ClientHello on plain HTTP
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      Buffer.alloc(70000, 'A'),
    ];
    const blobs = [...fixed];
    for (let i = 0; i < 60; i++) {
      if (i % 2) blobs.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 600) }, () => Math.floor(rand() * 256))));
      else blobs.push(mutate(valid, rand));
    }
    // Blobs go 10 at a time; a connection the server keeps open after our half-close is only
    // noted (its idle timeout reaps it), but whatever it answers must be well-formed.
    let held = 0;
    const heldWhat = [];
    for (let at = 0; at < blobs.length; at += 10) {
      const batch = blobs.slice(at, at + 10);
      const results = await Promise.all(batch.map((blob) => rawSocket(d.port, blob, { timeoutMs: 2000 * SLOW })));
      for (const [j, r] of results.entries()) {
        const i = at + j;
        const blob = batch[j];
        if (r.timedOut && r.data.length === 0) { held++; heldWhat.push(JSON.stringify(blob.toString("latin1").slice(0, 50))); continue; }
        if (r.status !== null) {
          assert.ok(r.status === 200 || (r.status >= 400 && r.status < 500) || r.status === 505, `blob ${i}: HTTP ${r.status}`);
          if (r.status === 200) assert.ok(r.json?.Response?.RequestId, `blob ${i}: a 200 is an envelope: ${r.text.slice(0, 200)}`);
        } else {
          assert.equal(r.data.length, 0, `blob ${i} (${JSON.stringify(blob.toString('latin1').slice(0, 60))}): either an HTTP answer or nothing, got ${JSON.stringify(r.text.slice(0, 100))}`);
        }
      }
    }
    t.diagnostic(`${held} of ${blobs.length} half-closed garbage connections were held open without an answer ${heldWhat.join(" ")}`);
    await stillServing('raw garbage');
  });

  test('many connections opened and abandoned mid-request do not starve the server', async () => {
    const net = await import('node:net');
    const socks = [];
    for (let i = 0; i < 64; i++) {
      const s = net.connect({ host: '127.0.0.1', port: d.port });
      s.on('error', () => {});
      s.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"AsyncRe`);
      socks.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    await stillServing('64 stalled connections');
    for (const s of socks) s.destroy();
    await stillServing('64 abandoned connections');
  });
});
