// A real MariaDB server for the cdb integration tests, and the `mariadb` command-line client to
// look at it from the outside (log in as an account, SHOW GRANTS, SHOW VARIABLES).
//
// `make test` starts one server for the whole run and exports ASYNCD_TEST_MYSQL_DSN (and
// ASYNCD_TEST_MYSQL_PORT); then every test file uses that one. Without it (a single file run by
// hand), useMariaDB() starts a throw-away server with scripts/mariadb.sh in a temp dir on a free
// loopback port and stops it (by the PID in its data dir) when the file is done.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { REPO_ROOT, SLOW } from './asyncd.mjs';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'mariadb.sh');

/** Runs argv[0] with argv[1..] (never through a shell); resolves {code, signal, stdout, stderr}. */
export function run(argv, { timeoutMs = 60000 * SLOW, env } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env || process.env });
    const out = [];
    const err = [];
    p.stdout.on('data', (c) => out.push(c));
    p.stderr.on('data', (c) => err.push(c));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => { clearTimeout(t); reject(e); });
    p.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** A free TCP port on 127.0.0.1 (free a moment ago). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** {user, password, host, port} of a mysql://USER:PASSWORD@HOST:PORT DSN. */
export function parseDsn(dsn) {
  const m = /^mysql:\/\/([^:@/]+):([^@/]*)@([^:/]+):(\d+)\/?$/.exec(dsn || '');
  assert.ok(m, `a mysql://USER:PASSWORD@HOST:PORT DSN, got ${JSON.stringify(dsn)}`);
  return { user: decodeURIComponent(m[1]), password: decodeURIComponent(m[2]), host: m[3], port: Number(m[4]) };
}

class MariaDB {
  constructor({ dsn, dir }) {
    this.dsn = dsn;
    this.dir = dir; // set when this process started the server (and so must stop it)
    Object.assign(this, parseDsn(dsn));
    assert.equal(this.host, '127.0.0.1', 'the test MariaDB listens on the loopback address');
  }

  /** Runs SQL with the `mariadb` client as user/password (default: the admin account of the DSN).
   * Resolves {ok, code, stdout, stderr, rows} (rows: tab-separated fields, no header). */
  async client(sql, { user = this.user, password = this.password, database } = {}) {
    const argv = ['mariadb', '--no-defaults', '--protocol=tcp', '-h', '127.0.0.1', '-P', String(this.port),
      '-u', user, `--password=${password}`, '--batch', '--skip-column-names', '--raw',
      '--connect-timeout=5', ...(database ? ['-D', database] : []), '-e', sql];
    const r = await run(argv, { timeoutMs: 30000 * SLOW });
    const rows = r.stdout.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
    return { ok: r.code === 0, ...r, rows };
  }

  /** SQL as the admin account that must succeed; returns the rows. */
  async sql(sql, opts) {
    const r = await this.client(sql, opts);
    assert.ok(r.ok, `mariadb -e ${JSON.stringify(sql)} failed (${r.code}): ${r.stderr}`);
    return r.rows;
  }

  /** Whether user/password can log in (SELECT CURRENT_USER()). */
  async canLogin(user, password) {
    const r = await this.client('SELECT CURRENT_USER()', { user, password });
    return r.ok;
  }

  /** The SHOW GRANTS lines of user@host. */
  async grants(user, host) {
    const q = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    return (await this.sql(`SHOW GRANTS FOR ${q(user)}@${q(host)}`)).map((r) => r[0]);
  }

  /** The global value of a server variable, as SHOW GLOBAL VARIABLES prints it. */
  async variable(name) {
    assert.match(name, /^[a-z_0-9]+$/);
    const rows = await this.sql(`SHOW GLOBAL VARIABLES LIKE '${name}'`);
    assert.equal(rows.length, 1, `SHOW GLOBAL VARIABLES LIKE '${name}' gives one row: ${JSON.stringify(rows)}`);
    return rows[0][1];
  }

  /** Every user@host in mysql.user, sorted (a fingerprint to prove nothing changed). */
  async userTable() {
    return (await this.sql("SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY User, Host")).map((r) => r[0]);
  }

  /** The hosts of user in mysql.user. */
  async hostsOf(user) {
    const rows = await this.sql(`SELECT Host FROM mysql.user WHERE User = '${user.replace(/[^A-Za-z0-9_.-]/g, '')}' ORDER BY Host`);
    return rows.map((r) => r[0]);
  }

  async stop() {
    if (!this.dir) return;
    const dir = this.dir;
    this.dir = null;
    const r = await run(['bash', SCRIPT, 'stop', path.join(dir, 'mariadb')]);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 0, `mariadb.sh stop: ${r.stderr}`);
  }
}

/** The MariaDB to test against: the run's shared one (ASYNCD_TEST_MYSQL_DSN), else a new one. */
export async function useMariaDB() {
  if (process.env.ASYNCD_TEST_MYSQL_DSN) return new MariaDB({ dsn: process.env.ASYNCD_TEST_MYSQL_DSN });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-mariadb-'));
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const r = await run(['bash', SCRIPT, 'start', path.join(dir, 'mariadb'), String(port)], { timeoutMs: 600000 });
    const dsn = r.stdout.trim().split('\n').pop();
    if (r.code === 0 && dsn && dsn.startsWith('mysql://')) {
      const db = new MariaDB({ dsn, dir });
      // Stopped at the latest when the test process ends (stop() is the normal path).
      process.once('exit', () => {
        try {
          const pid = Number(fs.readFileSync(path.join(dir, 'mariadb', 'mariadb.pid'), 'utf8').trim());
          if (pid > 0) process.kill(pid, 'SIGKILL');
        } catch { /* already stopped */ }
        fs.rmSync(dir, { recursive: true, force: true });
      });
      return db;
    }
    lastErr = `exit ${r.code}: ${r.stderr}`;
    await run(['bash', SCRIPT, 'stop', path.join(dir, 'mariadb')]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(`could not start MariaDB with ${SCRIPT}: ${lastErr}`);
}

/** A user name no other test (or earlier run on a shared server) has: PREFIX_<random>. */
export function uniqueUser(prefix = 'it') {
  return `${prefix}_${Math.random().toString(36).slice(2, 10)}`.slice(0, 32);
}

/** Polls DescribeAsyncRequestInfo with an SDK client until the status leaves `pending`
 * (cdb: INITIAL/RUNNING); returns the last answer. */
export async function waitFinal(client, id, { pending = ['INITIAL', 'RUNNING'], timeoutMs = 30000 * SLOW } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.DescribeAsyncRequestInfo({ AsyncRequestId: id });
    if (!pending.includes(r.Status)) return r;
    if (Date.now() > deadline) assert.fail(`task ${id} still ${r.Status} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 30));
  }
}

/** The admin API's task count (GET /v1/tasks?limit=1 -> total). */
export async function taskTotal(d) {
  const r = await d.adminOk('GET', '/v1/tasks?limit=1');
  assert.equal(typeof r.total, 'number', `GET /v1/tasks answers a total: ${JSON.stringify(r)}`);
  return r.total;
}
