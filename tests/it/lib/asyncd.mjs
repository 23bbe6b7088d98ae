// Integration-test harness: starts the real asyncd on a temp data dir, reads its credentials,
// and hands out admin-API, raw-HTTP and official-SDK clients that only ever talk to 127.0.0.1.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import tencentcloud from 'tencentcloud-sdk-nodejs';

// The SDK falls back to process.env.http_proxy when no agent is given; never let traffic leave.
for (const k of ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) {
  delete process.env[k];
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const IT_DIR = path.resolve(HERE, '..');
export const REPO_ROOT = path.resolve(IT_DIR, '..', '..');
export const ASYNCD_BIN = path.resolve(REPO_ROOT, process.env.ASYNCD_BIN || 'bin/asyncd');
export const ASYNCCTL_BIN = path.resolve(REPO_ROOT, process.env.ASYNCCTL_BIN || 'bin/asyncctl');
const LOG_DIR = path.join(IT_DIR, '.logs');

/** Sanitizer builds are several times slower; every wait in the suite scales with this. */
export const SLOW = Number(process.env.IT_SLOW_FACTOR || (/asan|san/i.test(ASYNCD_BIN) ? 3 : 1));
export const START_TIMEOUT_MS = 20000 * SLOW;

export const REGION = 'ap-guangzhou';
export const OTHER_REGION = 'ap-shanghai';
export const PRODUCTS = ['cdb', 'mongodb'];
export const VERSIONS = { cdb: '2017-03-20', mongodb: '2019-07-25' };
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const CDB_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;
export const MONGODB_ID_RE = /^[1-9][0-9]{0,18}$/;
export const TIME_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

/** Every way the SDK can sign and send a request. */
export const SIGN_MODES = [
  { name: 'TC3 POST', signMethod: 'TC3-HMAC-SHA256', reqMethod: 'POST' },
  { name: 'TC3 GET', signMethod: 'TC3-HMAC-SHA256', reqMethod: 'GET' },
  { name: 'HmacSHA256 GET', signMethod: 'HmacSHA256', reqMethod: 'GET' },
  { name: 'HmacSHA256 POST', signMethod: 'HmacSHA256', reqMethod: 'POST' },
  { name: 'HmacSHA1 GET', signMethod: 'HmacSHA1', reqMethod: 'GET' },
  { name: 'HmacSHA1 POST', signMethod: 'HmacSHA1', reqMethod: 'POST' },
];

/** Canonical state -> the word each dialect answers (DESIGN.md section 4). */
export const DIALECT = {
  initial: { cdb: 'INITIAL', mongodb: 'initial' },
  running: { cdb: 'RUNNING', mongodb: 'running' },
  paused: { cdb: 'PAUSED', mongodb: 'paused' },
  undoed: { cdb: 'FAILED', mongodb: 'undoed' },
  failed: { cdb: 'FAILED', mongodb: 'failed' },
  success: { cdb: 'SUCCESS', mongodb: 'success' },
  killed: { cdb: 'KILLED', mongodb: 'failed' },
  removed: { cdb: 'REMOVED', mongodb: 'failed' },
};
export const STATES = Object.keys(DIALECT);
export const FINAL_STATES = ['undoed', 'failed', 'success', 'killed', 'removed'];

/** Error codes that mean "no such task" in each dialect. */
export const NOT_FOUND = { cdb: 'InvalidParameter.InvalidAsyncRequestId', mongodb: 'ResourceNotFound' };
export const DENIED = { cdb: 'OperationDenied.UserHasNoStrategy', mongodb: 'InvalidParameter.PermissionDenied' };

/** A step no built-in executor runs by itself: the task only moves when the test moves it
 * (through the admin API, as an external worker would). */
export const MANUAL_STEP = { name: 'manual', do: { remote: { queue: 'it-manual' } } };

// ------------------------------------------------------------------ store (SQLite or PostgreSQL)

/** ASYNCD_TEST_PG_URL (an admin URL such as postgres://postgres@127.0.0.1:PORT/asyncd) switches
 * the suite to the PostgreSQL store: every data dir gets its own fresh database on that cluster
 * (CREATE DATABASE it_<random>), and asyncd gets `--store <its URL>`. ASYNCD_TEST_PG_DIR is the
 * cluster's directory for scripts/postgres.sh (the restart test needs it). */
export const PG_URL = process.env.ASYNCD_TEST_PG_URL || '';
export const PG_DIR = process.env.ASYNCD_TEST_PG_DIR || '';
export const STORE = PG_URL ? 'postgres' : 'sqlite';
const PSQL = process.env.PSQL || 'psql';

/** data dir (resolved) -> the postgres:// URL of its database: a test that starts a new Daemon
 * on an old data dir (a restart, a second daemon on a locked dir) finds the same store. */
const pgStoreOfDir = new Map();
const pgDatabases = new Set();

/** The URL of database `name` on the cluster of ASYNCD_TEST_PG_URL (same user, host, port, query). */
export function pgUrlFor(name) {
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs psql on the admin URL with an argv array (no shell); resolves its stdout. */
export function psql(sql, { url = PG_URL, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(PSQL, ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql],
      { timeout: timeoutMs, env: { ...process.env, PGCONNECT_TIMEOUT: '10' } }, (err, stdout, stderr) => {
        if (err) reject(new Error(`psql ${JSON.stringify(sql)}: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
  });
}

/** A fresh, empty database on the test cluster; resolves its postgres:// URL. Dropped at exit. */
export async function createTestDatabase(prefix = 'it') {
  if (!PG_URL) throw new Error('createTestDatabase needs ASYNCD_TEST_PG_URL');
  const name = `${prefix}_${process.pid}_${randomBytes(6).toString('hex')}`;
  assert.match(name, /^[a-z_][a-z0-9_]*$/, 'database names are plain identifiers');
  await psql(`CREATE DATABASE ${name}`);
  pgDatabases.add(name);
  return pgUrlFor(name);
}

const live = new Set();
const ownedDirs = new Set();
process.on('exit', () => {
  for (const d of live) {
    try { d.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
  // Logs stay in tests/it/.logs; the data dirs of this process go, and so do its databases
  // (WITH (FORCE): the backends of the daemons just killed may still be there).
  for (const dir of ownedDirs) fs.rmSync(dir, { recursive: true, force: true });
  if (PG_URL && pgDatabases.size && !process.env.IT_KEEP_TMP) {
    const args = ['-X', '-q', '-d', PG_URL];
    for (const name of pgDatabases) args.push('-c', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    spawnSync(PSQL, args, { stdio: 'ignore', timeout: 60000 });
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A DNS lookup that answers 127.0.0.1 for every name, so the SDK can be pointed at
 * cdb.example.net while its packets only ever go to the loopback interface. */
export function loopbackLookup(hostname, options, cb) {
  if (typeof options === 'function') { cb = options; options = {}; }
  if (typeof options === 'number') options = { family: options };
  if (options && options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}

let logSeq = 0;

class Daemon {
  constructor(opts) {
    this.opts = opts;
    this.args = opts.args || [];
    this.tz = opts.tz || 'UTC';
    this.dataDir = opts.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-'));
    this.ownsDataDir = !opts.dataDir;
    if (this.ownsDataDir) ownedDirs.add(this.dataDir);
    // opts.store: 'sqlite' keeps the embedded store even when the suite runs on PostgreSQL;
    // a postgres:// URL shares that database (another node of a cluster); unset: the suite's store.
    this.storeOpt = opts.store;
    this.storeUrl = null;
    this.agents = [];
    this.proc = null;
  }

  /** Which store this daemon runs on: 'postgres' or 'sqlite'. */
  get store() {
    return this.storeUrl ? 'postgres' : 'sqlite';
  }

  /** Picks the store before the first start: an explicit --store in args or store: 'sqlite' wins;
   * otherwise, on PostgreSQL, the data dir's database (a fresh one the first time). */
  async resolveStore() {
    if (this.storeUrl || this.args.includes('--store') || this.args.some((a) => String(a).startsWith('--store='))) return;
    if (this.storeOpt === 'sqlite') return;
    if (typeof this.storeOpt === 'string') {
      this.storeUrl = this.storeOpt;
    } else if (PG_URL) {
      const key = path.resolve(this.dataDir);
      if (!pgStoreOfDir.has(key)) pgStoreOfDir.set(key, createTestDatabase());
      this.storeUrl = await pgStoreOfDir.get(key);
    }
    if (this.storeUrl) pgStoreOfDir.set(path.resolve(this.dataDir), Promise.resolve(this.storeUrl));
  }

  argv() {
    return ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--data', this.dataDir,
      ...(this.storeUrl ? ['--store', this.storeUrl] : []), '--tz', this.tz, ...this.args];
  }

  async start() {
    await this.resolveStore();
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const name = path.basename(process.argv[1] || 'it').replace(/\.test\.mjs$/, '');
    this.logPath = path.join(LOG_DIR, `${name}-${process.pid}-${++logSeq}.log`);
    const log = fs.openSync(this.logPath, 'w');
    const bin = this.opts.bin || ASYNCD_BIN; // opts.bin: another asyncd (an installed copy)
    fs.writeSync(log, `# ${bin} ${this.argv().join(' ')}\n`);
    this.stderrText = '';
    this.exitInfo = null;
    this.stopping = false;
    const proc = spawn(bin, this.argv(), {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: this.opts.cwd, // where ./flows (the shipped templates' first place) is looked for
      // The process zone is deliberately not UTC, so only --tz decides the time strings.
      env: { ...process.env, TZ: 'America/Los_Angeles', ...(this.opts.env || {}) },
    });
    this.proc = proc;
    live.add(this);
    const onData = (chunk) => {
      fs.writeSync(log, chunk);
      this.stderrText += chunk.toString('utf8');
      if (this.stderrText.length > 256 * 1024) this.stderrText = this.stderrText.slice(-128 * 1024);
      if (process.env.IT_VERBOSE) process.stderr.write(chunk);
    };
    proc.stderr.on('data', onData);
    proc.stdout.on('data', onData);
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        try { fs.closeSync(log); } catch { /* closed */ }
        resolve(this.exitInfo);
      });
    });
    proc.on('error', (err) => { this.spawnError = err; });
    // A daemon a test forgot must not keep the test process alive forever: the handles are
    // unref'd, and the 'exit' hook above SIGKILLs whatever is still running.
    proc.unref();
    proc.stderr.unref?.();
    proc.stdout.unref?.();

    const deadline = Date.now() + START_TIMEOUT_MS;
    const re = /listening cloudapi=(\S+):(\d+) admin=(\S+):(\d+)/;
    for (;;) {
      const m = re.exec(this.stderrText);
      if (m) {
        this.cloudHost = m[1];
        this.port = Number(m[2]);
        this.adminHost = m[3];
        this.adminPort = Number(m[4]);
        break;
      }
      if (this.spawnError) throw new Error(`cannot spawn ${bin}: ${this.spawnError.message}`);
      if (this.exitInfo) {
        throw new Error(`asyncd exited (${JSON.stringify(this.exitInfo)}) before listening:\n${this.stderrTail()}`);
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`asyncd did not log "listening cloudapi=..." within ${START_TIMEOUT_MS} ms:\n${this.stderrTail()}`);
      }
      await sleep(20);
    }
    assert.ok(this.port > 0 && this.adminPort > 0, 'listening line shows real ports');
    this.credPath = path.join(this.dataDir, 'credentials.json');
    this.creds = JSON.parse(fs.readFileSync(this.credPath, 'utf8'));
    for (const k of ['AppId', 'Uin', 'SecretId', 'SecretKey', 'AdminToken']) {
      assert.equal(typeof this.creds[k], 'string', `credentials.json has string ${k}`);
      assert.ok(this.creds[k].length > 0, `credentials.json ${k} is not empty`);
    }
    return this;
  }

  stderrTail(n = 6000) {
    return (this.stderrText || '').slice(-n) + (this.logPath ? `\n[full log: ${this.logPath}]` : '');
  }

  closeAgents() {
    for (const a of this.agents) a.destroy();
    this.agents = [];
  }

  /** SIGTERM, wait for the exit, and insist on exit code 0 (a sanitizer report fails it). */
  async stop({ keepData = false, timeoutMs = 20000 * SLOW } = {}) {
    if (!this.proc) return;
    this.closeAgents();
    if (!this.exitInfo) {
      this.stopping = true;
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(t);
    }
    const info = this.exitInfo;
    this.proc = null;
    if (!keepData && this.ownsDataDir && info.code === 0) {
      fs.rmSync(this.dataDir, { recursive: true, force: true });
    }
    assert.deepEqual(info, { code: 0, signal: null },
      `asyncd should exit 0 on SIGTERM within ${timeoutMs} ms; got ${JSON.stringify(info)}\n${this.stderrTail()}`);
  }

  async kill9() {
    if (!this.proc) return;
    this.closeAgents();
    if (!this.exitInfo) {
      const keepAlive = setInterval(() => {}, 1000);
      this.proc.kill('SIGKILL');
      await this.exited;
      clearInterval(keepAlive);
    }
    this.proc = null;
  }

  /** Stops (SIGTERM, exit 0) unless already dead, then starts again on the same data dir.
   * Ports change: make new clients afterwards. */
  async restart() {
    if (this.proc && !this.exitInfo) await this.stop({ keepData: true });
    this.proc = null;
    return this.start();
  }

  alive() {
    // A process that could not be spawned never exits: it is not alive (kill9 must not wait).
    return Boolean(this.proc && !this.exitInfo && !this.spawnError);
  }

  // ---------------------------------------------------------------- admin API

  /** One admin call. token: undefined = the AdminToken, null = no Authorization header. */
  async admin(method, urlPath, body, { token, headers = {}, rawBody } = {}) {
    const h = { ...headers };
    const t = token === undefined ? this.creds.AdminToken : token;
    if (t !== null) h.Authorization = `Bearer ${t}`;
    let payload;
    if (rawBody !== undefined) payload = Buffer.from(rawBody);
    else if (body !== undefined) {
      payload = Buffer.from(JSON.stringify(body));
      h['Content-Type'] = 'application/json';
    }
    try {
      return await httpRequest({ port: this.adminPort, method, path: urlPath, headers: h, body: payload });
    } catch (err) {
      err.message += `\nasyncd stderr:\n${this.stderrTail()}`;
      throw err;
    }
  }

  /** admin() that asserts the status and returns the JSON body. */
  async adminOk(method, urlPath, body, status = 200) {
    const r = await this.admin(method, urlPath, body);
    assert.equal(r.status, status, `${method} ${urlPath} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
    return r.json;
  }

  async createAccount() {
    const a = await this.adminOk('POST', '/v1/accounts', {}, 201);
    return a;
  }

  async createSubAccount(rootUin = this.creds.Uin) {
    return this.adminOk('POST', `/v1/accounts/${rootUin}/subaccounts`, {}, 201);
  }

  async setPolicy(uin, allow) {
    return this.adminOk('PUT', `/v1/subaccounts/${uin}/policy`, { allow });
  }

  async createInstance({ product, region = REGION, uin = this.creds.Uin, instance_id, status = 'running', dsn }) {
    const id = instance_id || `${product === 'cdb' ? 'cdb' : 'cmgo'}-${randomBytes(4).toString('hex')}`;
    const d = dsn || (product === 'cdb' ? 'mysql://root:pw@127.0.0.1:3306' : 'mongodb://127.0.0.1:27017');
    await this.adminOk('POST', '/v1/instances', { product, region, uin, instance_id: id, status, dsn: d }, 201);
    return id;
  }

  async setInstanceStatus(id, status) {
    return this.adminOk('PATCH', `/v1/instances/${id}`, { status });
  }

  /** Creates a task that only moves when told to; returns its AsyncRequestId. */
  async createTask({ product, region = REGION, uin = this.creds.Uin, instance_id, type = 'ItTask',
    on_failure = 'pause', steps = [MANUAL_STEP] } = {}) {
    const body = { product, region, uin, type, on_failure, steps };
    if (instance_id) body.instance_id = instance_id;
    const r = await this.adminOk('POST', '/v1/tasks', body, 201);
    assert.equal(typeof r.AsyncRequestId, 'string', `POST /v1/tasks answers an AsyncRequestId: ${JSON.stringify(r)}`);
    assert.match(r.AsyncRequestId, product === 'cdb' ? CDB_ID_RE : MONGODB_ID_RE, `${product} id format`);
    return r.AsyncRequestId;
  }

  async getTask(id) {
    return this.adminOk('GET', `/v1/tasks/${encodeURIComponent(id)}`);
  }

  async transition(id, to, extra = {}) {
    return this.adminOk('POST', `/v1/tasks/${encodeURIComponent(id)}/transition`, { to, ...extra });
  }

  async verb(id, verb, body = {}) {
    return this.adminOk('POST', `/v1/tasks/${encodeURIComponent(id)}/${verb}`, body);
  }

  /** Creates a task and drives it into canonical `state` through the admin API:
   * initial: create; running: transition; paused: pause verb; undoed: pause then undo verb;
   * failed: transition; success: transition with step_done (and info); killed: kill verb;
   * removed: remove verb. Returns {id, task} (task as the admin API shows it after). */
  async taskInState(product, state, { info, ...createOpts } = {}) {
    const id = await this.createTask({ product, ...createOpts });
    let task;
    const run = () => this.transition(id, 'running', { message: 'worker picked it up' });
    switch (state) {
      case 'initial': task = await this.getTask(id); break;
      case 'running': task = await run(); break;
      case 'paused': await run(); task = await this.verb(id, 'pause', { message: 'operator pause' }); break;
      case 'undoed':
        // Through paused, the path every reading of the verb table allows. If undo only starts
        // an undo phase (state running), finish it as the external worker would.
        await run(); await this.verb(id, 'pause');
        task = await this.verb(id, 'undo', { message: 'operator undo' });
        if (task.state === 'running') task = await this.transition(id, 'undoed', { message: 'undo phase done' });
        break;
      case 'failed': await run(); task = await this.transition(id, 'failed', { message: 'step failed, no undo' }); break;
      case 'success': await run(); task = await this.transition(id, 'success', { step_done: true, message: 'done', ...(info !== undefined ? { info } : {}) }); break;
      case 'killed': await run(); task = await this.verb(id, 'kill', { message: 'operator kill' }); break;
      case 'removed': task = await this.verb(id, 'remove', { message: 'operator remove' }); break;
      default: throw new Error(`no such state ${state}`);
    }
    assert.equal(task.state, state, `admin answer after driving to ${state}: ${JSON.stringify(task)}`);
    return { id, task };
  }

  // ---------------------------------------------------------------- SDK clients

  /** Options for SDK clients:
   *  secretId/secretKey (default: the root account), creds ({SecretId, SecretKey}),
   *  signMethod (default TC3-HMAC-SHA256), reqMethod (default POST),
   *  endpointHost: a name such as cdb.example.net (resolved to 127.0.0.1 by our own lookup),
   *  region (default ap-guangzhou; null = none), version: override the client's API version,
   *  language (the SDK's profile.language), tlsCa: PEM to trust, switches to https://. */
  sdkClient(Client, { secretId, secretKey, creds, signMethod = 'TC3-HMAC-SHA256', reqMethod = 'POST',
    endpointHost, region = REGION, version, reqTimeout = 30 * SLOW, language, tlsCa } = {}) {
    const c = creds || this.creds;
    // Always our own agent: it pins every name to 127.0.0.1 and keeps the SDK off any proxy.
    const agent = tlsCa
      ? new https.Agent({ keepAlive: true, lookup: loopbackLookup, ca: tlsCa })
      : new http.Agent({ keepAlive: true, lookup: loopbackLookup });
    this.agents.push(agent);
    const endpoint = `${endpointHost || '127.0.0.1'}:${this.port}`;
    const client = new Client({
      credential: { secretId: secretId ?? c.SecretId, secretKey: secretKey ?? c.SecretKey },
      region: region === null ? undefined : region,
      profile: {
        signMethod,
        ...(language ? { language } : {}),
        httpProfile: { endpoint, protocol: tlsCa ? 'https://' : 'http://', reqMethod, reqTimeout, agent },
      },
    });
    if (version) client.apiVersion = version;
    return client;
  }

  cdb(opts = {}) { return this.sdkClient(tencentcloud.cdb.v20170320.Client, opts); }
  mongodb(opts = {}) { return this.sdkClient(tencentcloud.mongodb.v20190725.Client, opts); }
  client(product, opts = {}) { return product === 'cdb' ? this.cdb(opts) : this.mongodb(opts); }

  /** DescribeAsyncRequestInfo through the SDK. */
  describe(product, id, opts = {}) {
    return this.client(product, opts).DescribeAsyncRequestInfo({ AsyncRequestId: id });
  }

  // ---------------------------------------------------------------- raw Cloud API

  /** A raw HTTP request to the Cloud API port. */
  cloudRaw({ method = 'POST', path: p = '/', headers = {}, body, timeoutMs } = {}) {
    return httpRequest({ port: this.port, method, path: p, headers, body, timeoutMs });
  }

  /** A hand-made TC3 request (for requests the SDK will not make). See tc3Request. */
  tc3(opts = {}) {
    return tc3Request({ port: this.port, secretId: this.creds.SecretId, secretKey: this.creds.SecretKey, ...opts });
  }

  /** A hand-made v1 request. See v1Request. */
  v1(opts = {}) {
    return v1Request({ port: this.port, secretId: this.creds.SecretId, secretKey: this.creds.SecretKey, ...opts });
  }

  async healthz() {
    return httpRequest({ port: this.adminPort, method: 'GET', path: '/healthz' });
  }
}

/** Starts asyncd: {args, dataDir, tz, env, store, cwd, bin}. store: unset = the suite's store (SQLite, or
 * a fresh PostgreSQL database per data dir when ASYNCD_TEST_PG_URL is set), 'sqlite' = always
 * the embedded store, a postgres:// URL = that database. Resolves once it logged its listening line. */
export async function start(opts = {}) {
  const d = new Daemon(opts);
  try {
    await d.start();
  } catch (err) {
    if (d.alive()) await d.kill9();
    if (d.ownsDataDir) fs.rmSync(d.dataDir, { recursive: true, force: true });
    throw err;
  }
  return d;
}

/** Starts another node on the same PostgreSQL store as `base` (a running or stopped Daemon):
 * its own data dir (with a copy of base's credentials.json: the store has accounts already, and
 * every node reads the AdminToken from its own data dir), its own --node-id, same tz.
 * opts: {nodeId, args, tz, env}. Fails on the embedded store, which one process owns. */
export async function startNode(base, { nodeId, args = base.args, tz = base.tz, env = base.opts.env } = {}) {
  assert.ok(base.storeUrl, `startNode needs a daemon on the PostgreSQL store (this one is on ${base.store}); set ASYNCD_TEST_PG_URL`);
  const d = new Daemon({ store: base.storeUrl, tz, env, args: nodeArgs(args, nodeId) });
  fs.copyFileSync(path.join(base.dataDir, 'credentials.json'), path.join(d.dataDir, 'credentials.json'));
  fs.chmodSync(path.join(d.dataDir, 'credentials.json'), 0o600);
  // Secrets in the store are sealed under base's key: every node needs the same one.
  const key = path.join(base.dataDir, 'secret.key');
  if (fs.existsSync(key)) {
    fs.copyFileSync(key, path.join(d.dataDir, 'secret.key'));
    fs.chmodSync(path.join(d.dataDir, 'secret.key'), 0o600);
  }
  try {
    await d.start();
  } catch (err) {
    if (d.alive()) await d.kill9();
    throw err;
  }
  return d;
}

/** args with --node-id set to nodeId (replacing one already there). */
function nodeArgs(args, nodeId) {
  if (!nodeId) return args.slice();
  const out = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--node-id') { i++; continue; }
    if (String(args[i]).startsWith('--node-id=')) continue;
    out.push(args[i]);
  }
  return [...out, '--node-id', nodeId];
}

/** Starting with these options must fail (asyncd exits before listening). If it starts after
 * all, it is stopped and the assertion fails with `why`. */
export async function expectStartFails(opts, why) {
  let d;
  try {
    d = await start(opts);
  } catch (err) {
    assert.match(err.message, /exited|did not log/, err.message);
    return err;
  }
  await d.kill9();
  assert.fail(`asyncd started, but should have refused: ${why}`);
}

/** Arguments that lift every rate limit (all files but the rate-limit test use them). */
export const NO_LIMITS = ['--rate-limit', '*=0'];

// -------------------------------------------------------------------- raw HTTP

/** One HTTP/1.1 request with node:http on a fresh connection.
 * Resolves {status, headers, text, json (or undefined), body (Buffer)}; rejects on socket errors. */
export function httpRequest({ port, host = '127.0.0.1', method = 'GET', path: p = '/', headers = {}, body, timeoutMs = 15000 * SLOW }) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length')) {
      h['Content-Length'] = Buffer.byteLength(body);
    }
    const req = http.request({ host, port, method, path: p, headers: h, agent: false, setHost: !Object.keys(h).some((k) => k.toLowerCase() === 'host') }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, body: buf });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${p}`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

/** Writes raw bytes on a new TCP connection, half-closes, and collects whatever comes back,
 * until the connection closes, one whole answer (with Content-Length) is in, or timeoutMs.
 * Resolves {data, text, status (first line's code or null), json, closed, timedOut, error}. */
export function rawSocket(port, bytes, { timeoutMs = 5000 * SLOW, halfClose = true } = {}) {
  return new Promise((resolve) => {
    const chunks = [];
    let done = false;
    const sock = net.connect({ host: '127.0.0.1', port });
    const finish = (extra) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(chunks);
      const text = data.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      let json;
      const bodyAt = text.indexOf('\r\n\r\n');
      if (bodyAt >= 0) {
        const rest = data.subarray(bodyAt + 4).toString('utf8');
        try { json = JSON.parse(rest); } catch { json = undefined; }
      }
      resolve({ data, text, status: m ? Number(m[1]) : null, json, ...extra });
    };
    const timer = setTimeout(() => finish({ timedOut: true, closed: false }), timeoutMs);
    sock.on('connect', () => {
      sock.write(bytes);
      if (halfClose) sock.end();
    });
    sock.on('data', (c) => {
      chunks.push(c);
      // Done as soon as one whole answer is in (the server may keep the connection open).
      const data = Buffer.concat(chunks);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = /\r\ncontent-length: *(\d+)/i.exec(data.subarray(0, end).toString('latin1'));
      if (m && data.length >= end + 4 + Number(m[1])) finish({ closed: false, timedOut: false });
    });
    sock.on('end', () => finish({ closed: true, timedOut: false }));
    sock.on('close', () => finish({ closed: true, timedOut: false }));
    sock.on('error', (error) => finish({ closed: true, timedOut: false, error: error.code || error.message }));
  });
}

// -------------------------------------------------------------------- signatures (for bad requests)

const sha256hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data, enc) => createHmac('sha256', key).update(data).digest(enc);

export function utcDate(ts) {
  return new Date(ts * 1000).toISOString().slice(0, 10);
}

/** TC3-HMAC-SHA256 Authorization value, written from PROTOCOL.md.
 * host is the value signed for "host" (the Host header without its port, as the SDK does). */
export function tc3Authorization({ secretId, secretKey, service, host, method = 'POST', query = '',
  contentType = 'application/json', body = '', timestamp }) {
  const canonical = [
    method,
    '/',
    query,
    `content-type:${contentType}\nhost:${host}\n`,
    'content-type;host',
    sha256hex(body),
  ].join('\n');
  const date = utcDate(timestamp);
  const scope = `${date}/${service}/tc3_request`;
  const toSign = `TC3-HMAC-SHA256\n${timestamp}\n${scope}\n${sha256hex(canonical)}`;
  const kDate = hmac(`TC3${secretKey}`, date);
  const kService = hmac(kDate, service);
  const kSigning = hmac(kService, 'tc3_request');
  const sig = hmac(kSigning, toSign, 'hex');
  return `TC3-HMAC-SHA256 Credential=${secretId}/${scope}, SignedHeaders=content-type;host, Signature=${sig}`;
}

/** A TC3 request built by hand. payload: object (JSON-encoded), string or Buffer (sent as is).
 * product picks Version (unless version is given). hostHeader defaults to 127.0.0.1:PORT.
 * service defaults to the Host's first label (what the SDK does). omit: header names to drop.
 * authorization: a replacement Authorization value. */
export function tc3Request({ port, secretId, secretKey, product = 'cdb', action = 'DescribeAsyncRequestInfo',
  version, region = REGION, payload = {}, method = 'POST', query = '', contentType, hostHeader,
  service, timestamp = Math.floor(Date.now() / 1000), headers = {}, omit = [], authorization, timeoutMs }) {
  const hostH = hostHeader || `127.0.0.1:${port}`;
  const hostname = hostH.replace(/:\d+$/, '');
  const svc = service || hostname.split('.')[0];
  const body = method === 'GET' ? Buffer.alloc(0)
    : Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const ct = contentType || (method === 'GET' ? 'application/x-www-form-urlencoded' : 'application/json');
  const h = {
    Host: hostH,
    'Content-Type': ct,
    'X-TC-Action': action,
    'X-TC-Version': version || VERSIONS[product],
    'X-TC-Region': region,
    'X-TC-Timestamp': String(timestamp),
    'X-TC-RequestClient': 'asyncd-it',
    Authorization: authorization || tc3Authorization({ secretId, secretKey, service: svc, host: hostname, method, query, contentType: ct, body, timestamp }),
    ...headers,
  };
  if (region === null) delete h['X-TC-Region'];
  for (const k of omit) {
    for (const hk of Object.keys(h)) if (hk.toLowerCase() === k.toLowerCase()) delete h[hk];
  }
  return httpRequest({ port, method, path: query ? `/?${query}` : '/', headers: h, body: method === 'GET' ? undefined : body, timeoutMs });
}

/** Percent-encodes like querystring.stringify (what the SDK sends). */
export const qsEncode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** v1 signature over [key, value] pairs (values raw), PROTOCOL.md. */
export function v1Signature({ method, host, pairs, secretKey, signatureMethod = 'HmacSHA256' }) {
  const sorted = pairs.filter(([k]) => k !== 'Signature').slice().sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const str = `${method}${host}/?${sorted.map(([k, v]) => `${k}=${v}`).join('&')}`;
  const algo = signatureMethod === 'HmacSHA1' ? 'sha1' : 'sha256';
  return createHmac(algo, secretKey).update(Buffer.from(str, 'utf8')).digest('base64');
}

/** A v1 request built by hand. params: [[k,v],...] or object (business parameters).
 * Common parameters are added unless listed in omit. rawQuery: send this exact query string
 * (GET) or body (POST) instead of the encoded pairs (signature is still over the pairs). */
export function v1Request({ port, secretId, secretKey, product = 'cdb', action = 'DescribeAsyncRequestInfo',
  version, region = REGION, params = {}, method = 'GET', hostHeader, signatureMethod = 'HmacSHA256',
  timestamp = Math.floor(Date.now() / 1000), nonce = Math.floor(Math.random() * 65535), omit = [],
  override = {}, rawQuery, timeoutMs }) {
  const hostH = hostHeader || `127.0.0.1:${port}`;
  let pairs = Array.isArray(params) ? params.slice() : Object.entries(params);
  const common = { Action: action, Version: version || VERSIONS[product], Region: region, Timestamp: String(timestamp),
    Nonce: String(nonce), SecretId: secretId, SignatureMethod: signatureMethod, RequestClient: 'asyncd-it' };
  for (const [k, v] of Object.entries(common)) if (!omit.includes(k) && v !== null) pairs.push([k, v]);
  for (const [k, v] of Object.entries(override)) {
    pairs = pairs.filter(([pk]) => pk !== k);
    if (v !== null) pairs.push([k, v]);
  }
  if (!('Signature' in override)) {
    pairs.push(['Signature', v1Signature({ method, host: hostH, pairs, secretKey, signatureMethod })]);
  }
  const encoded = rawQuery ?? pairs.map(([k, v]) => `${qsEncode(k)}=${qsEncode(v)}`).join('&');
  if (method === 'GET') {
    return httpRequest({ port, method, path: `/?${encoded}`, headers: { Host: hostH }, timeoutMs });
  }
  return httpRequest({ port, method, path: '/', headers: { Host: hostH, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: Buffer.from(encoded, 'latin1'), timeoutMs });
}

// -------------------------------------------------------------------- assertions

/** The SDK call must fail with this Tencent error code (and carry a RequestId). */
export async function expectCode(promise, code, what = '') {
  let res;
  try {
    res = await promise;
  } catch (e) {
    assert.ok(e && e.code !== undefined,
      `${what}: expected error ${code}, got a non-API error (httpCode=${e && e.httpCode}): ${e && e.message}`);
    assert.equal(e.code, code, `${what}: expected ${code}, got ${e.code} (${e.message})`);
    assert.match(String(e.requestId), UUID_RE, `${what}: error carries a RequestId`);
    return e;
  }
  assert.fail(`${what}: expected error ${code}, got success ${JSON.stringify(res)}`);
}

/** A raw answer must be an HTTP 200 error envelope; code may be a string, an array of accepted
 * codes, or undefined (any code). Returns the code. */
export function assertEnvelope(res, code, what = '') {
  assert.equal(res.status, 200, `${what}: HTTP status must be 200 for an API error, got ${res.status}: ${res.text && res.text.slice(0, 300)}`);
  assert.ok(res.json && typeof res.json === 'object', `${what}: body must be JSON: ${res.text && res.text.slice(0, 300)}`);
  const r = res.json.Response;
  assert.ok(r && typeof r === 'object', `${what}: body has Response: ${res.text.slice(0, 300)}`);
  assert.deepEqual(Object.keys(res.json), ['Response'], `${what}: only Response at top level`);
  assert.deepEqual(Object.keys(r).sort(), ['Error', 'RequestId'], `${what}: error Response has exactly Error and RequestId: ${res.text.slice(0, 300)}`);
  assert.match(r.RequestId, UUID_RE, `${what}: RequestId is a UUID`);
  assert.equal(typeof r.Error.Code, 'string', `${what}: Error.Code is a string`);
  assert.equal(typeof r.Error.Message, 'string', `${what}: Error.Message is a string`);
  assert.ok(r.Error.Message.length > 0, `${what}: Error.Message says something`);
  if (code !== undefined) {
    const ok = Array.isArray(code) ? code.includes(r.Error.Code) : r.Error.Code === code;
    assert.ok(ok, `${what}: expected ${JSON.stringify(code)}, got ${r.Error.Code} (${r.Error.Message})`);
  }
  const ct = res.headers && res.headers['content-type'];
  assert.ok(ct && /^application\/json\b/.test(ct), `${what}: Content-Type application/json, got ${ct}`);
  return r.Error.Code;
}

/** An admin error: status and {"error","message"} body. */
export function assertAdminError(res, status, what = '') {
  assert.equal(res.status, status, `${what}: expected HTTP ${status}, got ${res.status} ${res.text}`);
  assert.ok(res.json && typeof res.json.error === 'string' && res.json.error.length > 0, `${what}: body has "error": ${res.text}`);
  assert.ok(typeof res.json.message === 'string' && res.json.message.length > 0, `${what}: body has "message": ${res.text}`);
}

/** "YYYY-MM-DD HH:MM:SS" of a Unix ms time, in UTC shifted by offsetHours (seconds truncated). */
export function fmtTime(ms, offsetHours = 0) {
  return new Date(Math.floor(ms / 1000) * 1000 + offsetHours * 3600e3).toISOString().slice(0, 19).replace('T', ' ');
}

/** A well-formed id no task has. */
export function unknownId(product) {
  if (product === 'cdb') return [0, 1, 2, 3].map(() => randomBytes(4).toString('hex')).join('-');
  return String(9000000000 + Math.floor(Math.random() * 999999999));
}

/** A small deterministic PRNG (mulberry32) for seeded fuzzing. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs asyncctl against node d's admin API with the token from d's data dir (no ASYNCD_TOKEN or
 * ASYNCD_ADMIN from the environment); resolves {code, stdout, stderr, json} (json when stdout
 * parses). */
export function runAsyncctl(d, args) {
  const env = { ...process.env };
  delete env.ASYNCD_TOKEN;
  delete env.ASYNCD_ADMIN;
  const argv = ['--admin', `http://127.0.0.1:${d.adminPort}`, '--data', d.dataDir, ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(ASYNCCTL_BIN, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => { stdout += c; });
    p.stderr.on('data', (c) => { stderr += c; });
    p.on('error', reject);
    p.on('close', (code) => {
      let json;
      try { json = JSON.parse(stdout); } catch { json = undefined; }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/** Every regular file under dir, recursively. */
export function filesUnder(dir) {
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...filesUnder(p));
    else if (ent.isFile()) out.push(p);
  }
  return out;
}
