// Every error DescribeAsyncRequestInfo can give, in each product's dialect, as the SDK sees it
// (Error.Code on an HTTP 200 envelope with a RequestId), for every signature/HTTP method.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DENIED, NOT_FOUND, NO_LIMITS, OTHER_REGION, PRODUCTS, SIGN_MODES, SLOW, VERSIONS,
  assertEnvelope, expectCode, start, tc3Authorization, unknownId,
} from './lib/asyncd.mjs';

const other = (p) => (p === 'cdb' ? 'mongodb' : 'cdb');
let d;
let B; // a second root account
const own = {}; // product -> id of a task of the root account (running)
const foreign = {}; // product -> id of a task of account B
const elsewhere = {}; // product -> id of a root-account task in OTHER_REGION
const T = { timeout: 60000 * SLOW };

before(async () => {
  d = await start({ args: NO_LIMITS });
  B = await d.createAccount();
  for (const p of PRODUCTS) {
    own[p] = (await d.taskInState(p, 'running')).id;
    foreign[p] = (await d.taskInState(p, 'running', { uin: B.Uin })).id;
    elsewhere[p] = (await d.taskInState(p, 'running', { region: OTHER_REGION })).id;
  }
});
after(async () => { await d?.stop(); });

describe('no such task: not-found code of the dialect', T, () => {
  for (const p of PRODUCTS) {
    for (const mode of SIGN_MODES) {
      test(`${p} ${mode.name}: unknown, foreign, other product's and other region's ids are all ${NOT_FOUND[p]}`, async () => {
        const c = d.client(p, mode);
        const ask = (id) => c.DescribeAsyncRequestInfo({ AsyncRequestId: id });
        assert.ok((await ask(own[p])).Status, 'own task answers');
        await expectCode(ask(unknownId(p)), NOT_FOUND[p], 'unknown id');
        await expectCode(ask(foreign[p]), NOT_FOUND[p], "another account's task");
        await expectCode(ask(own[other(p)]), NOT_FOUND[p], `a ${other(p)} task id`);
        await expectCode(ask(elsewhere[p]), NOT_FOUND[p], `a task in ${OTHER_REGION} asked from the client's region`);
      });
    }
    test(`${p}: a task in ${OTHER_REGION} is found by a client in ${OTHER_REGION}`, async () => {
      const r = await d.client(p, { region: OTHER_REGION }).DescribeAsyncRequestInfo({ AsyncRequestId: elsewhere[p] });
      assert.equal(r.Status, p === 'cdb' ? 'RUNNING' : 'running');
    });
    test(`${p}: an id of the wrong shape or an empty id is refused, not answered`, async () => {
      const c = d.client(p);
      for (const bad of ['', ' ', 'nope', '0', '-1', `${own[p]} `, `${own[p]}x`, 'x'.repeat(300)]) {
        let e;
        try { await c.DescribeAsyncRequestInfo({ AsyncRequestId: bad }); } catch (err) { e = err; }
        assert.ok(e && e.code, `${JSON.stringify(bad)} must fail with an API error`);
        assert.ok([NOT_FOUND[p], 'InvalidParameter', 'InvalidParameterValue', 'MissingParameter'].includes(e.code),
          `${JSON.stringify(bad)} -> ${e.code} (${e.message})`);
      }
    });
  }
});

describe('instance status', T, () => {
  test('mongodb: a task of an isolated or offline instance answers InvalidParameterValue.StatusAbnormal; running again answers', async () => {
    const inst = await d.createInstance({ product: 'mongodb' });
    const { id } = await d.taskInState('mongodb', 'running', { instance_id: inst });
    assert.equal((await d.describe('mongodb', id)).Status, 'running');
    for (const status of ['isolated', 'offline']) {
      await d.setInstanceStatus(inst, status);
      for (const mode of SIGN_MODES) {
        await expectCode(d.describe('mongodb', id, mode), 'InvalidParameterValue.StatusAbnormal', `${status} ${mode.name}`);
      }
    }
    await d.setInstanceStatus(inst, 'running');
    assert.equal((await d.describe('mongodb', id)).Status, 'running');
  });

  test('mongodb: a finished task answers how it ended after its instance was isolated (IsolateDBInstance polls its own task)', async () => {
    const inst = await d.createInstance({ product: 'mongodb' });
    const { id } = await d.taskInState('mongodb', 'success', { instance_id: inst });
    await d.setInstanceStatus(inst, 'isolated');
    for (const mode of SIGN_MODES) assert.equal((await d.describe('mongodb', id, mode)).Status, 'success', mode.name);
  });

  test('mongodb: not-found wins over StatusAbnormal for an unknown or foreign id', async () => {
    const inst = await d.createInstance({ product: 'mongodb', uin: B.Uin });
    const { id } = await d.taskInState('mongodb', 'running', { uin: B.Uin, instance_id: inst });
    await d.setInstanceStatus(inst, 'isolated');
    await expectCode(d.describe('mongodb', id), NOT_FOUND.mongodb, "another account's task on an isolated instance");
  });

  test('cdb: a task of an isolated or offline instance still answers normally', async () => {
    const inst = await d.createInstance({ product: 'cdb' });
    const { id } = await d.taskInState('cdb', 'success', { instance_id: inst, info: 'ok' });
    for (const status of ['isolated', 'offline']) {
      await d.setInstanceStatus(inst, status);
      for (const mode of SIGN_MODES) {
        const r = await d.describe('cdb', id, mode);
        assert.deepEqual([r.Status, r.Info], ['SUCCESS', 'ok'], `${status} ${mode.name}`);
      }
    }
  });
});

describe('sub-accounts and policies', T, () => {
  test('a sub-account without a policy is refused by both products', async () => {
    const sub = await d.createSubAccount();
    for (const mode of SIGN_MODES) {
      for (const p of PRODUCTS) {
        await expectCode(d.describe(p, own[p], { ...mode, creds: sub }), DENIED[p], `${p} ${mode.name}`);
      }
    }
  });

  test('policy ["cdb:*"]: cdb sees the root account\'s tasks, mongodb is still denied', async () => {
    const sub = await d.createSubAccount();
    await d.setPolicy(sub.Uin, ['cdb:*']);
    for (const mode of SIGN_MODES) {
      const r = await d.describe('cdb', own.cdb, { ...mode, creds: sub });
      assert.equal(r.Status, 'RUNNING', mode.name);
      await expectCode(d.describe('cdb', foreign.cdb, { ...mode, creds: sub }), NOT_FOUND.cdb, `foreign ${mode.name}`);
      await expectCode(d.describe('mongodb', own.mongodb, { ...mode, creds: sub }), DENIED.mongodb, `mongodb ${mode.name}`);
    }
  });

  test('policy ["mongodb:DescribeAsyncRequestInfo"] allows mongodb only; replacing the policy takes effect', async () => {
    const sub = await d.createSubAccount();
    await d.setPolicy(sub.Uin, ['mongodb:DescribeAsyncRequestInfo']);
    for (const mode of SIGN_MODES) {
      const r = await d.describe('mongodb', own.mongodb, { ...mode, creds: sub });
      assert.equal(r.Status, 'running', mode.name);
      await expectCode(d.describe('cdb', own.cdb, { ...mode, creds: sub }), DENIED.cdb, `cdb ${mode.name}`);
    }
    await d.setPolicy(sub.Uin, ['cdb:DescribeAsyncRequestInfo']);
    await expectCode(d.describe('mongodb', own.mongodb, { creds: sub }), DENIED.mongodb, 'after policy change');
    assert.equal((await d.describe('cdb', own.cdb, { creds: sub })).Status, 'RUNNING');
    await d.setPolicy(sub.Uin, ['*']);
    assert.equal((await d.describe('mongodb', own.mongodb, { creds: sub })).Status, 'running');
    await d.setPolicy(sub.Uin, ['cdb:SomeOtherAction']);
    await expectCode(d.describe('cdb', own.cdb, { creds: sub }), DENIED.cdb, 'policy for another action');
  });

  test("a sub-account of account B sees B's tasks, not the first root's", async () => {
    const sub = await d.createSubAccount(B.Uin);
    await d.setPolicy(sub.Uin, ['*:*']);
    for (const p of PRODUCTS) {
      assert.ok((await d.describe(p, foreign[p], { creds: sub })).Status);
      await expectCode(d.describe(p, own[p], { creds: sub }), NOT_FOUND[p], p);
    }
  });
});

// The real key is random: appending a fixed character after dropping the last
// one gives the real key back whenever it already ended in that character.
function lastCharChanged(key) {
  const last = key.at(-1);
  return key.slice(0, -1) + (last === 'x' ? 'y' : 'x');
}

describe('authentication', T, () => {
  for (const p of PRODUCTS) {
    for (const mode of SIGN_MODES) {
      test(`${p} ${mode.name}: wrong SecretKey -> AuthFailure.SignatureFailure; unknown SecretId -> AuthFailure.SecretIdNotFound`, async () => {
        await expectCode(d.describe(p, own[p], { ...mode, secretKey: lastCharChanged(d.creds.SecretKey) }),
          'AuthFailure.SignatureFailure', 'wrong key');
        await expectCode(d.describe(p, own[p], { ...mode, secretKey: 'totally-different' }),
          'AuthFailure.SignatureFailure', 'another key');
        await expectCode(d.describe(p, own[p], { ...mode, secretId: 'AKIDnosuchsecretid0000000000000000000' }),
          'AuthFailure.SecretIdNotFound', 'unknown id');
      });
    }
  }

  test("a sub-account's SecretId with its root's SecretKey fails the signature", async () => {
    const sub = await d.createSubAccount();
    await d.setPolicy(sub.Uin, ['*']);
    await expectCode(d.describe('cdb', own.cdb, { secretId: sub.SecretId, secretKey: d.creds.SecretKey }),
      'AuthFailure.SignatureFailure');
  });

  for (const p of PRODUCTS) {
    test(`${p}: X-TC-Timestamp more than 300 s old or ahead -> AuthFailure.SignatureExpire (TC3, correctly signed)`, async () => {
      const now = Math.floor(Date.now() / 1000);
      const ok = await d.tc3({ product: p, payload: { AsyncRequestId: own[p] }, timestamp: now - 200 });
      assert.ok(ok.json?.Response?.Status, `200 s old is still fine: ${ok.text}`);
      for (const ts of [now - 301 - 30, now - 86400, now + 400]) {
        const r = await d.tc3({ product: p, payload: { AsyncRequestId: own[p] }, timestamp: ts });
        assertEnvelope(r, 'AuthFailure.SignatureExpire', `timestamp ${ts - now}`);
      }
    });

    test(`${p}: v1 Timestamp more than 300 s old -> AuthFailure.SignatureExpire (GET and POST)`, async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const method of ['GET', 'POST']) {
        const ok = await d.v1({ product: p, method, params: { AsyncRequestId: own[p] } });
        assert.ok(ok.json?.Response?.Status, `hand-signed v1 ${method} works: ${ok.text}`);
        const r = await d.v1({ product: p, method, params: { AsyncRequestId: own[p] }, timestamp: now - 1000 });
        assertEnvelope(r, 'AuthFailure.SignatureExpire', `v1 ${method}`);
      }
    });
  }

  test('malformed Authorization headers -> AuthFailure.InvalidAuthorization', async () => {
    const now = Math.floor(Date.now() / 1000);
    const date = new Date(now * 1000).toISOString().slice(0, 10);
    const sid = d.creds.SecretId;
    const bad = [
      'garbage',
      'TC3-HMAC-SHA256',
      'TC3-HMAC-SHA256 Credential=',
      `TC3-HMAC-SHA256 Credential=${sid}/${date}/cdb/tc3_request`,
      `TC3-HMAC-SHA256 Credential=${sid}/${date}/cdb/tc3_request, SignedHeaders=content-type;host`,
      `TC3-HMAC-SHA256 Credential=${sid}/${date}, SignedHeaders=content-type;host, Signature=${'0'.repeat(64)}`,
      `TC3-HMAC-SHA256 Credential=${sid}/${date}/cdb/tc3_request, Signature=${'0'.repeat(64)}`,
      `TC3-HMAC-SHA256 SignedHeaders=content-type;host, Signature=${'0'.repeat(64)}`,
      `HMAC-SHA256 Credential=${sid}/${date}/cdb/tc3_request, SignedHeaders=content-type;host, Signature=${'0'.repeat(64)}`,
      `TC3-HMAC-SHA256 Credential=${sid}/${date}/cdb/tc3_request,,,, SignedHeaders=, Signature=`,
    ];
    for (const authorization of bad) {
      const r = await d.tc3({ payload: { AsyncRequestId: own.cdb }, authorization, timestamp: now });
      assertEnvelope(r, 'AuthFailure.InvalidAuthorization', JSON.stringify(authorization));
    }
  });

  test('a TC3 request signed for another Host, or with the body changed, -> AuthFailure.SignatureFailure', async () => {
    const r1 = await d.tc3({ payload: { AsyncRequestId: own.cdb } });
    assert.ok(r1.json?.Response?.Status, `baseline works: ${r1.text}`);
    const now = Math.floor(Date.now() / 1000);
    const body = JSON.stringify({ AsyncRequestId: own.cdb });
    const wrongHost = tc3Authorization({ secretId: d.creds.SecretId, secretKey: d.creds.SecretKey, service: '127',
      host: 'evil.example.net', body, timestamp: now });
    assertEnvelope(await d.tc3({ payload: body, authorization: wrongHost, timestamp: now }), 'AuthFailure.SignatureFailure', 'wrong host');
    const other = tc3Authorization({ secretId: d.creds.SecretId, secretKey: d.creds.SecretKey, service: '127',
      host: '127.0.0.1', body: JSON.stringify({ AsyncRequestId: own.mongodb }), timestamp: now });
    assertEnvelope(await d.tc3({ payload: body, authorization: other, timestamp: now }), 'AuthFailure.SignatureFailure', 'other body');
  });
});

describe('request errors', T, () => {
  for (const p of PRODUCTS) {
    for (const mode of SIGN_MODES) {
      test(`${p} ${mode.name}: InvalidAction, MissingParameter (id, Region), UnknownParameter`, async () => {
        await expectCode(d.client(p, mode).request('NoSuchAction', {}), 'InvalidAction', 'unknown action');
        await expectCode(d.client(p, mode).DescribeAsyncRequestInfo({}), 'MissingParameter', 'no AsyncRequestId');
        await expectCode(d.client(p, { ...mode, region: null }).DescribeAsyncRequestInfo({ AsyncRequestId: own[p] }),
          'MissingParameter', 'no Region');
        await expectCode(d.client(p, mode).DescribeAsyncRequestInfo({ AsyncRequestId: own[p], Foo: 'bar' }),
          'UnknownParameter', 'extra parameter');
      });
    }

    test(`${p}: AsyncRequestId as a JSON number -> InvalidParameter (TC3 POST)`, async () => {
      const n = p === 'mongodb' ? Number(own.mongodb) : 4762;
      await expectCode(d.client(p).DescribeAsyncRequestInfo({ AsyncRequestId: n }), 'InvalidParameter', 'number');
    });

    test(`${p}: wrong Version through the Host label -> NoSuchVersion, for every method`, async () => {
      for (const mode of SIGN_MODES) {
        for (const version of [VERSIONS[other(p)], '2099-01-01', '2017-03-20x']) {
          await expectCode(d.client(p, { ...mode, endpointHost: `${p}.example.net`, version })
            .DescribeAsyncRequestInfo({ AsyncRequestId: own[p] }), 'NoSuchVersion', `${mode.name} ${version}`);
        }
      }
    });
  }

  test('methods other than GET and POST -> UnsupportedProtocol on an HTTP 200 envelope', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await d.tc3({ payload: { AsyncRequestId: own.cdb }, method });
      assertEnvelope(r, 'UnsupportedProtocol', method);
    }
  });
});

describe('signatures over awkward values', T, () => {
  for (const p of PRODUCTS) {
    test(`${p}: ids with spaces, reserved and non-ASCII characters verify in every mode (not-found, not SignatureFailure)`, async () => {
      for (const mode of SIGN_MODES) {
        for (const weird of ['a b', 'a+b', 'a/b?c=d&e', '100%', 'ünïcødé-任务', '~*\'()!', 'x'.repeat(2000)]) {
          let e;
          try { await d.describe(p, weird, mode); } catch (err) { e = err; }
          assert.ok(e && e.code, `${mode.name} ${JSON.stringify(weird)} must be an API error`);
          assert.ok(!e.code.startsWith('AuthFailure'), `${mode.name} ${JSON.stringify(weird)}: signature must verify, got ${e.code} (${e.message})`);
        }
      }
    });

    test(`${p}: the SDK's language option (X-TC-Language / Language) is accepted in every mode`, async () => {
      for (const language of ['en-US', 'zh-CN']) {
        for (const mode of SIGN_MODES) {
          const r = await d.describe(p, own[p], { ...mode, language });
          assert.ok(r.Status, `${language} ${mode.name}`);
        }
      }
    });
  }

  test('action names are case-sensitive: describeasyncrequestinfo -> InvalidAction', async () => {
    await expectCode(d.cdb().request('describeasyncrequestinfo', { AsyncRequestId: own.cdb }), 'InvalidAction');
    await expectCode(d.mongodb({ signMethod: 'HmacSHA256' }).request('DESCRIBEASYNCREQUESTINFO', { AsyncRequestId: own.mongodb }), 'InvalidAction');
  });
});

describe('common parameters of hand-made requests', T, () => {
  test('v1 without SignatureMethod is verified as HmacSHA1 (the documented default)', async () => {
    for (const method of ['GET', 'POST']) {
      const r = await d.v1({ method, params: { AsyncRequestId: own.cdb }, signatureMethod: 'HmacSHA1', omit: ['SignatureMethod'] });
      assert.equal(r.json?.Response?.Status, 'RUNNING', `${method}: ${r.text}`);
    }
  });

  test('v1 missing a common parameter -> an error envelope naming a fitting code', async () => {
    const expect = {
      Action: ['MissingParameter', 'InvalidAction'],
      Version: ['MissingParameter', 'NoSuchVersion'],
      Region: ['MissingParameter'],
      Timestamp: ['MissingParameter', 'AuthFailure.SignatureExpire', 'InvalidParameter'],
      Nonce: ['MissingParameter', 'InvalidParameter'],
      SecretId: ['MissingParameter', 'AuthFailure.SecretIdNotFound', 'AuthFailure.InvalidSecretId'],
    };
    for (const [name, codes] of Object.entries(expect)) {
      for (const method of ['GET', 'POST']) {
        const r = await d.v1({ method, params: { AsyncRequestId: own.cdb }, omit: [name] });
        assertEnvelope(r, codes, `v1 ${method} without ${name}`);
      }
    }
    const noSig = await d.v1({ params: { AsyncRequestId: own.cdb }, override: { Signature: null } });
    assertEnvelope(noSig, ['MissingParameter', 'AuthFailure.SignatureFailure'], 'v1 without Signature');
  });

  test('TC3 missing an X-TC-* header -> an error envelope naming a fitting code', async () => {
    const expect = {
      'X-TC-Action': ['MissingParameter', 'InvalidAction'],
      'X-TC-Version': ['MissingParameter', 'NoSuchVersion'],
      'X-TC-Timestamp': ['MissingParameter', 'AuthFailure.SignatureExpire', 'InvalidParameter'],
      Authorization: ['MissingParameter', 'AuthFailure.InvalidAuthorization', 'AuthFailure.SignatureFailure'],
      'Content-Type': ['MissingParameter', 'InvalidParameter', 'AuthFailure.SignatureFailure', 'AuthFailure.InvalidAuthorization'],
    };
    for (const [name, codes] of Object.entries(expect)) {
      const r = await d.tc3({ payload: { AsyncRequestId: own.cdb }, omit: [name] });
      if (name === 'Content-Type' && r.json?.Response?.Status) continue; // lenient default to JSON is fine
      assertEnvelope(r, codes, `TC3 without ${name}`);
    }
    for (const ts of ['abc', '', '1e9', '-5', '99999999999999999999']) {
      assertEnvelope(await d.tc3({ payload: { AsyncRequestId: own.cdb }, headers: { 'X-TC-Timestamp': ts } }),
        ['InvalidParameter', 'InvalidParameterValue', 'AuthFailure.SignatureExpire', 'AuthFailure.SignatureFailure', 'MissingParameter'], `X-TC-Timestamp ${JSON.stringify(ts)}`);
    }
  });
});
