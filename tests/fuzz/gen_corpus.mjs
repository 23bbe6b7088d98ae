// Writes the fuzz seed corpora (tests/fuzz/corpus/<target>/) from the SDK signature vectors
// (tests/unit/sign_vectors.h), the flow templates (flows/), the integration tests' shapes and
// hand-made hostile ones; with --hostile DIR, the big hostile inputs (too big to commit) instead.
//
// Usage: node tests/fuzz/gen_corpus.mjs              (re-creates tests/fuzz/corpus)
//        node tests/fuzz/gen_corpus.mjs --hostile DIR (DIR/<target>/..., used by run.sh)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const SEP = '\n@@\n';
const KEY = 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE';
const SID = 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE';
const TS = 1795422600; // FUZZ_NOW_S in fuzz_request.c

// A C string literal's bytes, as a latin1 string (one char a byte).
function cString(body) {
  const esc = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\', '?': '?', "'": "'" };
  return body.replace(/\\([0-7]{1,3}|x[0-9a-fA-F]+|.)/g, (m, e) => (/^[0-7]/.test(e)
    ? String.fromCharCode(parseInt(e, 8)) : e[0] === 'x' ? String.fromCharCode(parseInt(e.slice(1), 16)) : esc[e]));
}

// --- the vectors: `.field = "C string" "more"` and `.field = 123` per struct initialiser ---
function vectors() {
  const text = fs.readFileSync(path.join(root, 'tests/unit/sign_vectors.h'), 'utf8');
  const out = [];
  for (const block of text.split(/\n    \{\n/).slice(1)) {
    const v = {};
    for (const m of block.matchAll(/\.(\w+) = ((?:\s*"(?:[^"\\]|\\.)*")+|-?\d+)/g)) {
      const raw = m[2].trim();
      v[m[1]] = /^-?\d/.test(raw) ? Number(raw)
        : [...raw.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((s) => cString(s[1])).join('');
    }
    out.push(v);
  }
  return out;
}

// --- signing, as the SDK does it (PROTOCOL.md), so seeds pass api_request_verify ---
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
const hmac = (k, s, enc) => crypto.createHmac('sha256', k).update(s).digest(enc);
function tc3(method, host, query, ct, body, service, ts = TS) {
  const date = new Date(ts * 1000).toISOString().slice(0, 10);
  const bare = host.replace(/:\d+$/, '');
  const canonical = [method, '/', query, `content-type:${ct}\nhost:${bare}\n`, 'content-type;host',
    sha256(body)].join('\n');
  const sts = ['TC3-HMAC-SHA256', ts, `${date}/${service}/tc3_request`, sha256(canonical)].join('\n');
  const k = hmac(hmac(hmac(`TC3${KEY}`, date), service), 'tc3_request');
  return `TC3-HMAC-SHA256 Credential=${SID}/${date}/${service}/tc3_request, ` +
    `SignedHeaders=content-type;host, Signature=${hmac(k, sts, 'hex')}`;
}
const enc = (s) => encodeURIComponent(s);
function v1Form(method, host, params, algo = 'HmacSHA256') {
  const all = { ...params, Nonce: '4242', Timestamp: String(TS), SecretId: SID, SignatureMethod: algo };
  const sts = `${method}${host}/?` + Object.keys(all).sort().map((k) => `${k}=${all[k]}`).join('&');
  const md = algo === 'HmacSHA1' ? 'sha1' : 'sha256';
  all.Signature = crypto.createHmac(md, KEY).update(sts).digest('base64');
  return Object.entries(all).map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
}

// --- request framing of fuzz_request.c ---
function req(method, target, headers, body = '') {
  return `${method} ${target}\n` + Object.entries(headers).map(([k, v]) => `${k}: ${v}\n`).join('') +
    '\n' + body;
}
function tc3Post(host, action, version, payload, service = host.split('.')[0]) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return req('POST', '/', {
    Host: host, 'Content-Type': 'application/json', 'X-TC-Action': action, 'X-TC-Version': version,
    'X-TC-Region': 'ap-guangzhou', 'X-TC-Timestamp': TS,
    Authorization: tc3('POST', host, '', 'application/json', body, service),
  }, body);
}

const CDB = ['cdb.example.net:9000', '2017-03-20'];
const MONGO = ['mongodb.example.net:9000', '2019-07-25'];
const ID = 'f96e4f3c-8fc96c86-2ec79ac8-cb63a7a7';
const ACCOUNTS = { InstanceId: 'cdb-1', Accounts: [{ User: 'app', Host: '%' }, { User: 'ro', Host: '10.0.0.%' }],
  Password: 'Passw0rd!x', Description: 'd' };

function seeds() {
  const vec = vectors();
  const s = {};
  // fuzz_request: the vectors as sent, then more actions, styles and broken shapes.
  s.fuzz_request = [];
  for (const v of vec) {
    if (v.authorization) {
      const target = v.query ? `/?${v.query}` : '/';
      s.fuzz_request.push(req(v.method, target, { Host: v.host_header, 'Content-Type': v.content_type,
        'X-TC-Action': 'DescribeAsyncRequestInfo', 'X-TC-Version': '2017-03-20', 'X-TC-Region': 'ap-guangzhou',
        'X-TC-Timestamp': v.timestamp, Authorization: v.authorization }, v.body));
    } else if (v.method === 'GET') {
      s.fuzz_request.push(req('GET', `/?${v.form}`, { Host: v.host }));
    } else {
      s.fuzz_request.push(req('POST', '/', { Host: v.host, 'Content-Type': v.content_type }, v.form));
    }
  }
  s.fuzz_request.push(
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', { AsyncRequestId: ID }),
    tc3Post(...MONGO, 'DescribeAsyncRequestInfo', { AsyncRequestId: '4762' }),
    tc3Post('127.0.0.1:9000', 'CreateAccounts', '2017-03-20', ACCOUNTS, '127'),
    tc3Post(...CDB, 'ModifyAccountPrivileges', { InstanceId: 'cdb-1', Accounts: [{ User: 'u', Host: '%' }],
      GlobalPrivileges: ['SELECT', 'INSERT'], DatabasePrivileges: [{ Database: 'db', Privileges: ['ALL PRIVILEGES'] }] }),
    tc3Post(...CDB, 'DescribeTasks', { InstanceId: 'cdb-1', TaskStatus: [1, 2], Limit: 20, Offset: 0,
      StartTimeBegin: '2026-11-01 00:00:00' }),
    tc3Post(...MONGO, 'CreateBackupDBInstance', { InstanceId: 'cmgo-1', BackupMethod: 0, BackupRemark: 'x' }),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"AsyncRequestId":"\\ud800"}'),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"a":' + '['.repeat(40) + ']'.repeat(40) + '}'),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"AsyncRequestId":"x","AsyncRequestId":"y"}'),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', `{"AsyncRequestId":"${ID}"} x`),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"AsyncRequestId":"\\u0000"}'),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '[]'),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"AsyncRequestId":1e308}'),
    tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"AsyncRequestId":"\xff\xfe"}'),
  );
  const q = `AsyncRequestId=${ID}&Filters.0.Name=a%20b&Filters.0.Values.0=x&Filters.0.Values.1=%C3%BC`;
  s.fuzz_request.push(req('GET', `/?${q}`, { Host: CDB[0], 'Content-Type': 'application/x-www-form-urlencoded',
    'X-TC-Action': 'DescribeAsyncRequestInfo', 'X-TC-Version': CDB[1], 'X-TC-Timestamp': TS,
    Authorization: tc3('GET', CDB[0], q, 'application/x-www-form-urlencoded', '', 'cdb') }));
  for (const [host, action, ver, algo, p] of [
    [CDB[0], 'DescribeAsyncRequestInfo', CDB[1], 'HmacSHA256', { AsyncRequestId: ID }],
    [MONGO[0], 'DescribeAsyncRequestInfo', MONGO[1], 'HmacSHA1', { AsyncRequestId: '4762' }],
    [CDB[0], 'CreateAccounts', CDB[1], 'HmacSHA256', { InstanceId: 'cdb-1', 'Accounts.0.User': 'u',
      'Accounts.0.Host': '%', 'Accounts.1.User': 'v', 'Accounts.1.Host': 'h', Password: 'Passw0rd!x' }],
    [CDB[0], 'DescribeTasks', CDB[1], 'HmacSHA256', { InstanceId: 'cdb-1', 'TaskStatus.0': '1', Limit: '5' }],
  ]) {
    const params = { Action: action, Version: ver, Region: 'ap-guangzhou', ...p };
    s.fuzz_request.push(req('GET', `/?${v1Form('GET', host, params, algo)}`, { Host: host }));
    s.fuzz_request.push(req('POST', '/', { Host: host, 'Content-Type': 'application/x-www-form-urlencoded' },
      v1Form('POST', host, params, algo)));
  }
  s.fuzz_request.push(
    req('POST', '/', { Host: CDB[0], 'Content-Type': 'text/plain' }, 'x'),
    req('POST', '/', { Host: CDB[0], 'Content-Type': 'application/json', Authorization: 'TC3-HMAC-SHA256 Credential=a/b/c' }, '{}'),
    req('GET', '/?a.0=1&a.2=2&b=%zz&c=%00&d=%C3', { Host: CDB[0] }),
    req('GET', '/?Action=x&Action=y&Nonce=1&Timestamp=99999999999999999999', { Host: '[::1]:9000' }),
  );

  // fuzz_params: the vectors' queries and forms, the flattening shapes, broken escapes.
  s.fuzz_params = vec.map((v) => v.query || v.form).filter(Boolean);
  s.fuzz_params.push('A.0.B=x&A.1.B=y&C=1', 'Accounts.0.User=u&Accounts.0.Host=%25&Accounts.10.User=w',
    'A.1=x', 'A=1&A.0=2', 'A..B=1', '.A=1', 'A.=1', 'A.01=1', 'A.0=1&A.0=2', 'A.0.B=1&A.0=2',
    'a=1&&b=2&', '=x', 'a', 'a=%', 'a=%4', 'a=%g0', 'a=%00', 'a=%C3%28', 'a=%ED%A0%80', 'a=%F4%90%80%80',
    'a=%E0%80%80', 'a+b=c+d', 'Filters.0.Values.9=x', 'A.999999999=1', 'A.1000000000=1',
    'a.b.c.d.e.f.g.h=1', 'a.b.c.d.e.f.g.h.i=1', 'k=' + 'v'.repeat(70000), `${'n'.repeat(300)}=1`,
    Array.from({ length: 1200 }, (_, i) => `p${i}=1`).join('&'), '\xff=1', 'a=\xc3');
  s.fuzz_params.push('a.' + Array(200).fill('0').join('.') + '=x');
  // the same target checks JSON bodies' depth against jansson's
  s.fuzz_params.push(JSON.stringify(ACCOUNTS), '[' .repeat(16) + ']'.repeat(16), '['.repeat(17) + ']'.repeat(17),
    '{"a":"[[[[[[[[[[[[[[[[[[[[","b":"\\"[{"}', '[{"a":[{"b":[{"c":[]}]}]}]', '[[[[', ']]]]{', '"\\u005b"', '{"a":1}}}}');

  // fuzz_sign: Authorization line, method, path, query, headers, blank line, body.
  const signIn = (auth, method, query, headers, body) => [auth, method, '/', query].join('\n') + '\n' +
    Object.entries(headers).map(([k, v]) => `${k}:${v}\n`).join('') + '\n' + body;
  s.fuzz_sign = [];
  for (const v of vec) {
    if (v.authorization)
      s.fuzz_sign.push(signIn(v.authorization, v.method, v.query, { 'Content-Type': v.content_type,
        Host: v.host_header }, v.body));
    else
      s.fuzz_sign.push(signIn('', v.method, v.form, { Host: v.host }, ''));
  }
  const A = `TC3-HMAC-SHA256 Credential=${SID}/2026-11-23/cdb/tc3_request, SignedHeaders=content-type;host, Signature=${'a'.repeat(64)}`;
  for (const auth of [A, A.replace('content-type;host', 'host;content-type;x-tc-action'),
    A.replace('content-type;host', 'content-type;host;host'), A.replace('content-type;host', 'host'),
    A.replace('content-type;host', 'content-type;;host'), A.replace('2026-11-23', '2026-13-40'),
    A.replace('/tc3_request', '/tc3_request/x'), A.replace('Credential=', 'Credential = '),
    A + ', Signature=' + 'b'.repeat(64), A.replace(/Signature=a+/, 'Signature=' + 'A'.repeat(64)),
    'TC3-HMAC-SHA256', 'HMAC-SHA1 Credential=x', '  TC3-HMAC-SHA256   ,,,', A.replace(SID, 'x'.repeat(200)),
    A.replace('/cdb/', '/' + 's'.repeat(80) + '/'), A.replace('content-type;host', 'content-type;host;' + 'h'.repeat(300)),
    'TC3-HMAC-SHA256 Credential=a/2026-01-01/b/tc3_request,SignedHeaders=Content-Type;HOST,Signature=' + '0'.repeat(64)])
    s.fuzz_sign.push(signIn(auth, 'POST', '', { 'content-type': ' application/json ', host: 'cdb.example.net:9000',
      'x-tc-action': 'X' }, '{"a":1}'));

  // fuzz_dsn: instance DSNs from the tests and docs, and broken ones.
  s.fuzz_dsn = ['mysql://root:pw@127.0.0.1:3306', 'mysql://u:p@127.0.0.1:3307', 'mysql://USER:PASSWORD@HOST:PORT',
    'mysql://asyncd_admin:s3cr%40t@127.0.0.1:3306/mysql', 'mysql://u@[::1]:3306/db', 'mysql://u@[::1]',
    'mysql://u:p@h', 'mysql://u:p@h:0', 'mysql://u:p@h:65536', 'mysql://u:p@h:123456', 'mysql://u:p@h:12a',
    'mysql://:p@h', 'mysql://u:p@', 'mysql://u:p@[::1', 'mysql://u:p@h/db%zz', 'mysql://u%00:p@h',
    'mysql://u:p@ho st', 'mysql://u:p@h/', 'mysql://u:p@h:3306/', 'mysql://u:p:q@h', 'mysql://u:p@x@h',
    'MYSQL://u@h', 'mysql://u@h?x=1', 'mysql:/u@h', 'mongodb://127.0.0.1:27017', 'mongodb+srv://h/db',
    '127.0.0.1:9000', '[::1]:9001', ':9000', 'localhost:0', '[::1]', 'h:99999', ''];

  // fuzz_store_url: --store values.
  s.fuzz_store_url = ['postgres://asyncd@db.internal:5432/asyncd?pool=8', 'postgres://postgres@127.0.0.1:5432/asyncd',
    'postgresql://u:p@h/db?sslmode=disable&pool=4&claim=update', 'postgres://h/db?claim=skip-locked',
    'postgres://h/db?pool=0', 'postgres://h/db?pool=65', 'postgres://h/db?pool=8x', 'postgres://h/db?pool=',
    'postgres://h/db?claim=other', 'postgres://h/db?&&pool=2&&', 'postgres://h/db?a=1&pool=2&b=2',
    'postgres://h/db?pool=99999999999999999999', 'postgres://h/db?%70ool=2', 'postgres:///db?host=/tmp',
    'sqlite:', '', 'sqlite:/var/x.db', './x.db', 'mysql://x', 'host=localhost dbname=x'];

  // fuzz_mysql_render: every SQL statement of the templates with plausible args, and broken ones.
  s.fuzz_mysql_render = [];
  for (const dir of ['flows/cdb', 'flows/mongodb']) {
    for (const f of fs.readdirSync(path.join(root, dir)).filter((n) => n.endsWith('.json'))) {
      const doc = JSON.parse(fs.readFileSync(path.join(root, dir, f), 'utf8'));
      for (const step of doc.steps) {
        for (const act of [step.do, step.undo]) {
          const m = act && act.mysql;
          if (!m) continue;
          const args = (m.args || []).map((a, i) => (/Privileges/.test(a) ? ['SELECT', 'create view'] : i === 3 ? 5 : `v'${i}\\`));
          for (const sql of [m.sql, ...(m.statements || [])].filter(Boolean))
            s.fuzz_mysql_render.push(sql + SEP + JSON.stringify(args) + SEP + '{"value":"old"}');
        }
      }
    }
  }
  s.fuzz_mysql_render.push('SELECT {0:int}, {0:val}, {1:val}, {2:ident}' + SEP + '["-12", 3, "1.5", "a`b"]',
    'SELECT {captured}, {captured:val}' + SEP + '[]' + SEP + '{"value":null}',
    'SELECT {captured:list_priv}' + SEP + '[]' + SEP + '{"value":1}', 'SELECT {{}} {0} }' + SEP + '[1]',
    'SELECT {999999:str}' + SEP + '[]', 'SELECT {0:ident}' + SEP + '["' + 'x'.repeat(65) + '"]',
    'SELECT {0:str' + SEP + '["a"]', "SET PASSWORD FOR {0:str} = PASSWORD({1:str})" + SEP + '["u","p"]',
    'ALTER USER {0:str} IDENTIFIED BY   {1:val} USING {2:str}' + SEP + '["u","p","q"]',
    'SELECT {0:int}-{1:int}' + SEP + '[1, -1]', 'SELECT {0:str}' + SEP + '["a\\u0000b"]',
    'SELECT {0:list_priv}' + SEP + '[["ALL  PRIVILEGES","\\tselect "]]', 'SELECT {0:foo}' + SEP + '[1]',
    '{' + 'x'.repeat(40) + '}' + SEP + '[]', 'SELECT {0:str}' + SEP + '["\xc3\x28\xff"]');

  // fuzz_flows: mode byte + parameters for a shipped template, or a template and parameters.
  const flowsOrder = ['CreateAccounts', 'DeleteAccounts', 'ModifyAccountHost', 'ModifyAccountPassword',
    'ModifyAccountPrivileges', 'ModifyInstanceParam']; // cdb, in fuzz_flows.c's order; then mongodb
  const P = {
    CreateAccounts: ACCOUNTS,
    DeleteAccounts: { InstanceId: 'cdb-1', Accounts: [{ User: 'app', Host: '%' }] },
    ModifyAccountHost: { InstanceId: 'cdb-1', User: 'app', Host: '%', NewHost: '10.%' },
    ModifyAccountPassword: { InstanceId: 'cdb-1', Accounts: [{ User: 'app', Host: '%' }], NewPassword: 'Passw0rd!y' },
    ModifyAccountPrivileges: { InstanceId: 'cdb-1', Accounts: [{ User: 'u', Host: '%' }], GlobalPrivileges: ['SELECT'],
      DatabasePrivileges: [{ Database: 'db', Privileges: ['INSERT', 'UPDATE'] }],
      TablePrivileges: [{ Database: 'db', Table: 't', Privileges: ['SELECT'] }], ModifyAction: 'grant' },
    ModifyInstanceParam: { InstanceIds: ['cdb-1'], ParamList: [{ Name: 'max_connections', CurrentValue: '500' },
      { Name: 'sql_mode', CurrentValue: 'STRICT_TRANS_TABLES' }] },
  };
  const flat = (o, pre = '') => Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' ? flat(v, `${pre}${k}.`)
    : [`${enc(pre + k)}=${enc(String(v))}`]));
  s.fuzz_flows = [];
  flowsOrder.forEach((name, i) => {
    s.fuzz_flows.push(String.fromCharCode(i) + JSON.stringify(P[name]));
    s.fuzz_flows.push(String.fromCharCode(0x40 | i) + flat(P[name]).join('&'));
  });
  s.fuzz_flows.push(String.fromCharCode(6) + '{"InstanceId":"cmgo-1","BackupMethod":0,"BackupRemark":"r"}',
    '\x00{"InstanceId":"cdb-1","Accounts":[],"Password":"short"}', '\x00{"InstanceId":"cdb-1","Accounts":"x"}',
    '\x00{"InstanceId":"cdb-1","Nope":1}', '\x05{"InstanceIds":["a","b"],"ParamList":[]}',
    '\x40MaxUserConnections=99999999999999999999&InstanceId=x', '\x04{"InstanceId":"cdb-1","Accounts":[{"User":"u","Host":"%"}],"GlobalPrivileges":["DROP DATABASE X"]}');
  for (const dir of ['flows/cdb', 'tests/it/flows-test/cdb']) {
    for (const f of fs.readdirSync(path.join(root, dir)).filter((n) => n.endsWith('.json'))) {
      const doc = fs.readFileSync(path.join(root, dir, f), 'utf8');
      const name = f.replace('.json', '');
      s.fuzz_flows.push('\x80' + doc + SEP + JSON.stringify(P[name] || {}));
    }
  }
  const T = (steps, params = { X: { type: 'string' } }) => '\x80' + JSON.stringify({ action: 'Fz', params, steps });
  s.fuzz_flows.push(
    T([{ name: 'n ${X}', do: { exec: ['echo', '${X}', 'a${X}b'] } }]) + SEP + '{"X":"v"}',
    T([{ name: 'n', foreach: ['L as a', 'a.M as b'], do: { exec: ['echo', '${b}', '${index}'] } }],
      { L: { type: 'array', items: { type: 'object', fields: { M: { type: 'array', items: { type: 'integer' } } } } } })
      + SEP + '{"L":[{"M":[1,2]},{"M":[3]}]}',
    T([{ name: 'n ${L}', do: { exec: ['echo', 'x${L}y'] } }], { L: { type: 'array', items: { type: 'string' } } })
      + SEP + '{"L":["a","b"]}',
    T([{ name: 'n', when: { equals: ['B', true] }, do: { exec: ['true'] } }], { B: { type: 'boolean' } })
      + SEP + '{"B":true}',
    T([{ name: 'n', do: { exec: ['echo', '$${X}', '${X.0}', '${nope}'] } }]) + SEP + '{"X":"v"}',
    T([{ name: 'n', do: { exec: ['true'] } }], { X: { type: 'string', pattern: '(' } }) + SEP + '{}',
    T([{ name: 'n', do: { mysql: { sql: 'SELECT {0:str}', args: ['${X}'] } } }]) + SEP + '{"X":"a\'b"}',
    '\x80{"action":"Fz","params":{},"steps":[]}' + SEP + '{}', '\x80{"action":1}' + SEP + '{}', '\x80[' + SEP + '{}');

  // fuzz_admin: "METHOD PATH[?QUERY]\n" + body, after the integration tests (admin-api.test.mjs).
  const U = '100000000001', SUB = '100000000002';
  const good = { product: 'cdb', region: 'ap-guangzhou', uin: U, type: 'T', steps: [{ name: 'manual', do: { remote: {} } }] };
  const task = (b) => `POST /v1/tasks\n${JSON.stringify(b)}`;
  s.fuzz_admin = [task(good),
    task({ ...good, instance_id: 'cdb-fuzz1', on_failure: 'undo', steps: [{ name: 'a', do: { exec: ['sh', '-c', 'echo x'] },
      undo: { exec: ['true'] }, retries: 2, timeout_s: 60 }] }),
    task({ ...good, steps: [{ name: 'm', do: { mysql: { sql: 'CREATE USER {0:str}@{1:str} IDENTIFIED BY {2:str}',
      args: ['u', '%', 'pw'], message: 'm' } } }] }),
    task({ ...good, steps: [] }), task({ ...good, steps: { name: 'x' } }), task({ ...good, steps: [{ do: { exec: ['/bin/true'] } }] }),
    task({ ...good, steps: [{ name: 'x', do: 'rm -rf /' }] }), task({ ...good, steps: [{ ...good.steps[0], retries: -1 }] }),
    task({ ...good, steps: [{ ...good.steps[0], bogus: 1 }] }), task({ ...good, product: 'nope' }),
    task({ ...good, uin: SUB }), task({ ...good, instance_id: 'no-such' }), task({ ...good, on_failure: 'explode' }),
    task({ ...good, type: 'x'.repeat(100) }), 'POST /v1/tasks\n{"product":"cdb",', 'POST /v1/tasks\n[]',
    'POST /v1/tasks\n{"a":1,"a":2}', 'POST /v1/tasks\n\xff\xfe',
    `POST /v1/instances\n${JSON.stringify({ product: 'cdb', region: 'ap-guangzhou', uin: U, instance_id: 'cdb-new', dsn: 'mysql://u:p@h:3306' })}`,
    `POST /v1/instances\n${JSON.stringify({ product: 'mongodb', region: 'r', uin: U, instance_id: 'cmgo-1', dsn: 'mongodb+srv://h' })}`,
    `POST /v1/instances\n${JSON.stringify({ product: 'cdb', region: 'r', uin: U, instance_id: 'cdb-fuzz1', status: 'exploded' })}`,
    'PATCH /v1/instances/cdb-fuzz1\n{"status":"isolated","dsn":"mysql://a@b"}', 'PATCH /v1/instances/cdb-fuzz1\n{}',
    `PUT /v1/subaccounts/${SUB}/policy\n{"allow":["cdb:*","mongodb:DescribeAsyncRequestInfo"]}`,
    `PUT /v1/subaccounts/${SUB}/policy\n{"allow":["cdb:Describe*",""]}`, `PUT /v1/subaccounts/${U}/policy\n{"allow":["*"]}`,
    `POST /v1/accounts/${U}/subaccounts\n{}`, `GET /v1/accounts/${U}\n`, 'POST /v1/accounts\n',
    `GET /v1/tasks?uin=${U}&limit=5&offset=0&status=running&product=cdb\n`, 'GET /v1/tasks?limit=5000\n',
    'GET /v1/instances?product=cdb\n', 'GET /v1/tasks/none\n', 'POST /v1/tasks/none/kill\n{"message":"m"}',
    'POST /v1/tasks/none/transition\n{"to":"running","step_done":true}', 'POST /v1/tasks/none/explode\n{}',
    'GET /metrics\n', 'GET /healthz\n', 'DELETE /v1/tasks\n', 'GET /v1/tasks/' + 'x'.repeat(200) + '\n',
    'POST /v1/tasks//kill\n{}', 'GET /v1/tasks?x=%zz\n',
    // Idempotent creates (the optional header line), webhooks, tokens, simulation rules, workers.
    `POST /v1/tasks\nIdempotency-Key: k-1\n${JSON.stringify(good)}`, 'POST /v1/tasks\nIdempotency-Key: \n{}',
    `POST /v1/tasks\nIdempotency-Key: ${'k'.repeat(300)}\n${JSON.stringify(good)}`,
    `POST /v1/webhooks\n${JSON.stringify({ url: 'http://127.0.0.1:9/hook', secret: 's', product: 'cdb', uin: U, events: ['final'] })}`,
    `POST /v1/webhooks\n${JSON.stringify({ url: 'ftp://x', events: ['nope'] })}`, 'GET /v1/webhooks\n',
    'GET /v1/webhooks/1/deliveries?state=pending\n', 'DELETE /v1/webhooks/1\n', 'GET /v1/webhooks/x\n',
    `POST /v1/tokens\n${JSON.stringify({ name: 'ci', scope: 'reader' })}`, 'GET /v1/tokens\n', 'DELETE /v1/tokens/none\n',
    `PUT /v1/simulation/rules/r1\n${JSON.stringify({ product: 'cdb', action: 'CreateAccounts',
      phases: [{ state: 'running', polls: 2 }, { state: 'success', info: 'Created.' }] })}`,
    'GET /v1/simulation/rules\n', 'DELETE /v1/simulation/rules/r1\n', 'POST /v1/simulation/reset\n{}',
    `POST /v1/workers/claim\n${JSON.stringify({ worker: 'w1', kinds: ['backup'], max: 4, lease_s: 30 })}`,
    'POST /v1/workers/heartbeat\n{"worker":"w1","steps":[{"id":"x","lease_no":1}]}',
    'POST /v1/workers/complete\n{"id":"x","lease_no":1,"output":{}}', 'POST /v1/workers/fail\n{"id":"x","lease_no":0,"message":"m"}',
    'GET /v1/whoami\n', 'GET /v1/overview\n'];
  return s;
}

// Big hostile inputs, written at run time (not committed).
function hostile() {
  const deep = 'a.' + Array(300000).fill('0').join('.') + '=x';
  const many = Array.from({ length: 100000 }, (_, i) => `p${i}=${i}`).join('&');
  const brackets = '['.repeat(500000) + ']'.repeat(500000);
  const obj = '{"a":'.repeat(100000) + '1' + '}'.repeat(100000);
  const badEsc = '%'.repeat(200000) + '%zz'.repeat(100000);
  const badUtf8 = Buffer.alloc(300000, 0xc3).toString('latin1');
  const h = { 'Content-Type': 'application/json', Host: 'cdb.example.net' };
  return {
    fuzz_params: { deep, many, bad_escapes: badEsc, bad_utf8: 'a=' + badUtf8, deep_json: brackets },
    fuzz_request: {
      deep_json: tc3Post(...CDB, 'DescribeAsyncRequestInfo', '{"a":' + brackets + '}'),
      deep_object: req('POST', '/', h, obj),
      many_params_get: req('GET', `/?${many}`, { Host: CDB[0] }),
      many_params_form: req('POST', '/', { Host: CDB[0], 'Content-Type': 'application/x-www-form-urlencoded' }, many),
      deep_name_form: req('POST', '/', { Host: CDB[0], 'Content-Type': 'application/x-www-form-urlencoded' }, deep),
      bad_utf8_json: req('POST', '/', h, '{"a":"' + badUtf8 + '"}'),
    },
    fuzz_sign: { long_headers: [`TC3-HMAC-SHA256 Credential=a/2026-01-01/b/tc3_request, SignedHeaders=${'h;'.repeat(100000)}host`,
      'POST', '/', many].join('\n') + '\n\n' + brackets },
    fuzz_mysql_render: { many_placeholders: '{0:str},'.repeat(100000) + SEP + '["x"]',
      many_braces: '{{'.repeat(300000) + SEP + '[]',
      // found by the long run: ~700 MB of SQL (20 s a run) before renders were bounded at 16 MiB
      repeated_long_arg: 'SELECT ' + '{0:str},'.repeat(32000) + '1' + SEP + JSON.stringify(['x'.repeat(22000)]) },
    fuzz_flows: { deep_params: '\x00' + obj, many_accounts: '\x00{"InstanceId":"c","Password":"Passw0rd!x","Accounts":[' +
      Array(50000).fill('{"User":"u","Host":"h"}').join(',') + ']}' },
    fuzz_admin: { deep_body: 'POST /v1/tasks\n' + obj, many_steps: task100k() },
    fuzz_dsn: { long: 'mysql://' + 'u'.repeat(500000) + '@' + 'h'.repeat(400000) },
    // parse_url is quadratic in the options it keeps for libpq: 2000 take ~0.5 s under ASan
    fuzz_store_url: { many_options: 'postgres://h/db?' + 'pool=2&a=1&'.repeat(2000) },
  };
  function task100k() {
    return 'POST /v1/tasks\n' + JSON.stringify({ product: 'cdb', region: 'r', uin: '100000000001', type: 'T',
      steps: Array(20000).fill({ name: 'n', do: { exec: ['true'] } }) });
  }
}

function write(dir, sets) {
  for (const [target, list] of Object.entries(sets)) {
    const d = path.join(dir, target);
    fs.mkdirSync(d, { recursive: true });
    const entries = Array.isArray(list) ? list.map((v) => [crypto.createHash('sha1').update(v, 'latin1').digest('hex'), v])
      : Object.entries(list);
    for (const [name, v] of entries) fs.writeFileSync(path.join(d, name), Buffer.from(v, /[^\x00-\xff]/.test(v) ? 'utf8' : 'latin1'));
  }
}

const i = process.argv.indexOf('--hostile');
if (i > 0) {
  write(process.argv[i + 1], hostile());
} else {
  const out = path.join(here, 'corpus');
  fs.rmSync(out, { recursive: true, force: true });
  write(out, seeds());
}
