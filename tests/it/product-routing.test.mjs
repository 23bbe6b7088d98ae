// Which product answers: the Host's first label, else the TC3 credential scope's service, else
// the Version. The SDK is pointed at cdb.example.net / mongodb.example.net through a lookup that
// answers 127.0.0.1, so the real SDK signs real Host headers while traffic stays on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NOT_FOUND, NO_LIMITS, PRODUCTS, SIGN_MODES, SLOW, VERSIONS, assertEnvelope, expectCode, start,
} from './lib/asyncd.mjs';

const T = { timeout: 60000 * SLOW };
const WORD = { cdb: 'SUCCESS', mongodb: 'success' };
const KEYS = { cdb: ['Info', 'RequestId', 'Status'], mongodb: ['EndTime', 'RequestId', 'StartTime', 'Status'] };
let d;
const ids = {};

before(async () => {
  d = await start({ args: NO_LIMITS });
  for (const p of PRODUCTS) ids[p] = (await d.taskInState(p, 'success', { info: 'routed' })).id;
});
after(async () => { await d?.stop(); });

function assertProduct(r, p, what) {
  assert.deepEqual(Object.keys(r).sort(), KEYS[p], `${what}: answered in the ${p} dialect: ${JSON.stringify(r)}`);
  assert.equal(r.Status, WORD[p], what);
}

describe('routing', T, () => {
  for (const mode of SIGN_MODES) {
    test(`endpoint 127.0.0.1:PORT routes by Version (${mode.name})`, async () => {
      for (const p of PRODUCTS) {
        assertProduct(await d.describe(p, ids[p], mode), p, p);
      }
    });

    test(`endpoint cdb.example.net / mongodb.example.net routes by the Host label (${mode.name})`, async () => {
      for (const p of PRODUCTS) {
        const r = await d.describe(p, ids[p], { ...mode, endpointHost: `${p}.example.net` });
        assertProduct(r, p, `${p}.example.net`);
      }
    });

    test(`Host label and Version disagree -> NoSuchVersion (${mode.name})`, async () => {
      await expectCode(d.describe('cdb', ids.cdb, { ...mode, endpointHost: 'mongodb.example.net' }), 'NoSuchVersion', 'cdb version on mongodb host');
      await expectCode(d.describe('mongodb', ids.mongodb, { ...mode, endpointHost: 'cdb.example.net' }), 'NoSuchVersion', 'mongodb version on cdb host');
    });
  }

  test('a gateway-style name whose first label is no product routes by Version', async () => {
    for (const host of ['api.example.net', 'localhost']) {
      for (const p of PRODUCTS) {
        for (const mode of SIGN_MODES) {
          assertProduct(await d.describe(p, ids[p], { ...mode, endpointHost: host }), p, `${host} ${mode.name}`);
        }
      }
    }
  });

  test('endpoint 127.0.0.1 with an unknown Version -> NoSuchVersion', async () => {
    for (const mode of SIGN_MODES) {
      await expectCode(d.describe('cdb', ids.cdb, { ...mode, version: '2099-12-31' }), 'NoSuchVersion', mode.name);
    }
  });

  // Host names are case-insensitive (RFC 4343), so `CDB.example.net` must route to cdb by its
  // label. Every case below is built so that only a case-insensitive Host match gives the
  // expected answer: v1 has no credential scope, and the TC3 scopes name either no product or the
  // other one, while the Version is the other product's (or the scope's) so the fallbacks differ.
  test('an upper-case Host label routes by the label itself, not by the scope or the Version (v1)', async () => {
    for (const mode of SIGN_MODES.filter((m) => m.signMethod !== 'TC3-HMAC-SHA256')) {
      for (const [label, p, other] of [['CDB', 'cdb', 'mongodb'], ['MongoDB', 'mongodb', 'cdb'], ['Cdb', 'cdb', 'mongodb']]) {
        const hostHeader = `${label}.Example.NET:${d.port}`;
        const what = `${mode.name} Host ${hostHeader}`;
        // Right product by the label: answered in its dialect.
        const ok = await d.v1({ product: p, method: mode.reqMethod, signatureMethod: mode.signMethod, hostHeader,
          params: { AsyncRequestId: ids[p] } });
        assert.ok(ok.json?.Response?.Status, `${what}, Version ${VERSIONS[p]}: ${ok.text}`);
        assertProduct(ok.json.Response, p, `${what}, Version ${VERSIONS[p]}`);
        // The other product's Version on this label: the label wins, so the Version is wrong
        // (routing by Version would answer the other product's task successfully).
        const bad = await d.v1({ product: other, method: mode.reqMethod, signatureMethod: mode.signMethod, hostHeader,
          params: { AsyncRequestId: ids[other] } });
        assertEnvelope(bad, 'NoSuchVersion', `${what}, Version ${VERSIONS[other]} (label ${p} outranks the Version)`);
      }
    }
  });

  test('an upper-case Host label routes by the label itself, not by the scope or the Version (TC3)', async () => {
    for (const method of ['POST', 'GET']) {
      for (const [label, p, other] of [['CDB', 'cdb', 'mongodb'], ['MONGODB', 'mongodb', 'cdb']]) {
        const hostHeader = `${label}.example.net:${d.port}`;
        const query = method === 'GET' ? `AsyncRequestId=${encodeURIComponent(ids[p])}` : '';
        const payload = method === 'GET' ? undefined : { AsyncRequestId: ids[p] };
        // Scope names the other product, Version is this one's: by scope it would be NoSuchVersion.
        const r = await d.tc3({ product: p, method, query, payload, hostHeader, service: other });
        assert.ok(r.json?.Response?.Status, `${method} Host ${hostHeader}, scope ${other}: ${r.text}`);
        assertProduct(r.json.Response, p, `${method} Host ${hostHeader}, scope ${other}, Version ${VERSIONS[p]}`);
        // Scope names no product, Version is the other's: by Version it would succeed as `other`.
        const q2 = method === 'GET' ? `AsyncRequestId=${encodeURIComponent(ids[other])}` : '';
        const p2 = method === 'GET' ? undefined : { AsyncRequestId: ids[other] };
        const bad = await d.tc3({ product: other, method, query: q2, payload: p2, hostHeader, service: 'api' });
        assertEnvelope(bad, 'NoSuchVersion', `${method} Host ${hostHeader}, scope api, Version ${VERSIONS[other]}`);
      }
    }
  });

  // (The SDK itself cannot send an upper-case Host: it writes `new URL(url).host`, which is lower
  // case, so these cases are hand-made.)

  test('TC3 credential scope service "mongodb" with Host 127.0.0.1 routes to mongodb', async () => {
    const r = await d.tc3({ product: 'mongodb', service: 'mongodb', payload: { AsyncRequestId: ids.mongodb } });
    assert.equal(r.status, 200);
    assert.ok(r.json?.Response?.Status, r.text);
    assertProduct(r.json.Response, 'mongodb', 'scope mongodb');
    const c = await d.tc3({ product: 'cdb', service: 'cdb', payload: { AsyncRequestId: ids.cdb } });
    assertProduct(c.json.Response, 'cdb', 'scope cdb');
  });

  test('the scope service outranks the Version: scope mongodb with the cdb Version -> NoSuchVersion', async () => {
    const r = await d.tc3({ product: 'cdb', service: 'mongodb', version: VERSIONS.cdb, payload: { AsyncRequestId: ids.cdb } });
    assertEnvelope(r, 'NoSuchVersion', 'scope mongodb, version cdb');
  });

  test('the Host label outranks the scope service: Host cdb.* with scope mongodb answers cdb', async () => {
    const r = await d.tc3({ product: 'cdb', hostHeader: `cdb.example.net:${d.port}`, service: 'mongodb', payload: { AsyncRequestId: ids.cdb } });
    assert.ok(r.json?.Response?.Status, r.text);
    assertProduct(r.json.Response, 'cdb', 'host cdb, scope mongodb');
  });

  test("a product's id is unknown to the other product whichever way the request was routed", async () => {
    await expectCode(d.describe('mongodb', ids.cdb, { endpointHost: 'mongodb.example.net' }), NOT_FOUND.mongodb);
    await expectCode(d.describe('cdb', ids.mongodb, { endpointHost: 'cdb.example.net' }), NOT_FOUND.cdb);
  });
});
