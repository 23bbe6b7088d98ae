// Packaging (issue 13 item 6): `make install DESTDIR=...` lays out the binaries, the shipped
// templates, a Type=notify systemd unit, an example config and two man pages; the installed
// daemon starts from the unit's own ExecStart with its templates; READY=1 reaches $NOTIFY_SOCKET
// only once the listeners accept (STOPPING=1 at SIGTERM); --config FILE holds any flag, the
// command line wins, a bad line is refused as FILE:LINE; SIGHUP applies a changed log level
// live and names what needs a restart; `man -l` renders both pages without warnings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  ASYNCD_BIN, NO_LIMITS, REPO_ROOT, SLOW, expectStartFails, filesUnder, httpRequest, sleep, start,
} from './lib/asyncd.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-pkg-'));
const dest = path.join(tmp, 'dest');
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

let unitText;
before(() => {
  // NOBUILD: install the binaries under test (ASYNCD_BIN's directory), never rebuild them.
  const r = spawnSync('make', ['-s', 'install', `DESTDIR=${dest}`, 'PREFIX=/usr', 'SYSCONFDIR=/etc',
    'NOBUILD=1', `BIN=${path.dirname(ASYNCD_BIN)}`], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `make install failed:\n${r.stdout}\n${r.stderr}`);
  unitText = fs.readFileSync(path.join(dest, 'usr/lib/systemd/system/asyncd.service'), 'utf8');
});

const FLOWS = path.join(dest, 'usr/share/asyncd/flows');
/** The shipped templates: every .json under flows/ but the parameter catalogue. */
const templateCount = () => filesUnder(path.join(REPO_ROOT, 'flows'))
  .filter((f) => f.endsWith('.json') && !f.includes(`${path.sep}params${path.sep}`)).length;

/** The unit's ExecStart as an argv, each absolute path moved under DESTDIR. */
function execStart() {
  const line = unitText.split('\n').find((l) => l.startsWith('ExecStart='));
  assert.ok(line, `the unit has an ExecStart:\n${unitText}`);
  return line.slice('ExecStart='.length).trim().split(/\s+/).map((w) => (w.startsWith('/') ? dest + w : w));
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function logHas(d, re, ms = 5000 * SLOW) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (re.test(fs.readFileSync(d.logPath, 'utf8'))) return;
    assert.ok(d.alive(), `asyncd died while the test waited for ${re}:\n${d.stderrTail()}`);
    await sleep(50);
  }
  assert.fail(`log never matched ${re}:\n${d.stderrTail()}`);
}

test('make install puts binaries, templates, a Type=notify unit, the config and man pages under DESTDIR', () => {
  for (const b of ['asyncd', 'asyncctl']) {
    const st = fs.statSync(path.join(dest, 'usr/bin', b));
    assert.ok(st.mode & 0o111, `${b} is executable`);
  }
  assert.equal(filesUnder(FLOWS).length, filesUnder(path.join(REPO_ROOT, 'flows')).length, 'every shipped flows/ file');
  assert.ok(fs.existsSync(path.join(FLOWS, 'cdb/params/catalog.json')), 'the parameter catalogue too');
  assert.match(unitText, /^Type=notify$/m);
  assert.match(unitText, /^ExecStart=\/usr\/bin\/asyncd --config \/etc\/asyncd\/asyncd\.conf --flows \/usr\/share\/asyncd\/flows$/m);
  assert.match(unitText, /^ExecReload=.*-HUP/m);
  assert.doesNotMatch(unitText, /@[A-Z]+@/, 'no placeholder left');
  assert.ok(fs.existsSync(path.join(dest, 'etc/asyncd/asyncd.conf')));
  assert.ok(fs.existsSync(path.join(dest, 'usr/share/man/man8/asyncd.8')));
  assert.ok(fs.existsSync(path.join(dest, 'usr/share/man/man1/asyncctl.1')));
});

test('the installed daemon starts from the unit file\'s ExecStart and loads its templates', async () => {
  const [bin, ...args] = execStart();
  const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-')); // no ./flows here
  // The harness puts --listen/--admin/--data (temp dir, free ports) on the command line, where
  // they win over the installed config's data = /var/lib/asyncd.
  const d = await start({ bin, args: [...args, ...NO_LIMITS], cwd });
  daemons.push(d);
  assert.doesNotMatch(d.stderrText, /no flow templates found/);
  assert.match(d.stderrText, new RegExp(`loaded ${templateCount()} flow templates from ${escapeRe(FLOWS)}\\n`));
  assert.match(d.stderrText, /loaded \d+ cdb parameters/);
  assert.equal((await httpRequest({ port: d.adminPort, path: '/healthz' })).status, 200);
  await d.stop();
});

test('without --flows the installed binary finds share/asyncd/flows beside its bin directory', async () => {
  const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
  const d = await start({ bin: path.join(dest, 'usr/bin/asyncd'), args: NO_LIMITS, cwd });
  daemons.push(d);
  assert.match(d.stderrText, new RegExp(`loaded ${templateCount()} flow templates from ${escapeRe(path.join(dest, 'usr/bin'))}/\\.\\./share/asyncd/flows\\n`));
  await d.stop();
});

/** Two free loopback ports (bound, then released for asyncd). */
async function freePorts(n) {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// A datagram receiver for NOTIFY_SOCKET: on each message it tries a TCP connect to each port and
// prints one JSON line {msg, connected: [bool...]}, so READY=1 is checked against the listeners
// at the moment it arrives.
const RECEIVER = `
import json, socket, sys
addr, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({"msg": "bound"}), flush=True)
while True:
    msg = s.recv(4096).decode()
    ok = []
    for p in ports:
        c = socket.socket()
        c.settimeout(2)
        try:
            c.connect(("127.0.0.1", p)); ok.append(True)
        except OSError:
            ok.append(False)
        c.close()
    print(json.dumps({"msg": msg, "connected": ok}), flush=True)
`;

function startReceiver(addr, ports) {
  const p = spawn('python3', ['-c', RECEIVER, addr, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let buf = '';
  p.stdout.on('data', (c) => {
    buf += c;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) lines.push(JSON.parse(buf.slice(0, i)));
  });
  return { p, lines };
}

async function waitLine(rx, pred, what) {
  const until = Date.now() + 10000 * SLOW;
  while (Date.now() < until) {
    const l = rx.lines.find(pred);
    if (l) return l;
    await sleep(20);
  }
  assert.fail(`no ${what} on the notify socket; got ${JSON.stringify(rx.lines)}`);
}

for (const kind of ['path', 'abstract']) {
  test(`READY=1 reaches NOTIFY_SOCKET (${kind}) once both listeners accept, STOPPING=1 at SIGTERM`, async () => {
    const ports = await freePorts(2);
    const addr = kind === 'path' ? path.join(tmp, `notify-${process.pid}.sock`) : `@asyncd-it-notify-${process.pid}-${Date.now()}`;
    const rx = startReceiver(addr, ports);
    try {
      await waitLine(rx, (l) => l.msg === 'bound', 'bound line from the receiver');
      const d = await start({
        args: [...NO_LIMITS, '--listen', `127.0.0.1:${ports[0]}`, '--admin', `127.0.0.1:${ports[1]}`],
        env: { NOTIFY_SOCKET: addr },
      });
      daemons.push(d);
      assert.equal(d.port, ports[0], 'the later --listen wins');
      const ready = await waitLine(rx, (l) => l.msg === 'READY=1', 'READY=1');
      assert.deepEqual(ready.connected, [true, true], 'both listeners accepted when READY=1 arrived');
      assert.equal(rx.lines.filter((l) => l.msg === 'READY=1').length, 1, 'READY=1 once');
      assert.doesNotMatch(d.stderrText, /cannot tell the supervisor/);
      await d.stop();
      await waitLine(rx, (l) => l.msg === 'STOPPING=1', 'STOPPING=1');
    } finally {
      rx.p.kill();
    }
  });
}

function writeConfig(name, text) {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}

test('--config: a flag in the file takes effect, the command line wins, a bad line is refused as FILE:LINE', async () => {
  const [taken] = await freePorts(1);
  const conf = writeConfig('flags.conf', [
    '# a comment, and a blank line',
    '',
    'log-level = debug',
    `listen 127.0.0.1:${taken}`, // the harness's --listen 127.0.0.1:0 on the command line wins
    'max-body=2048',
    '  rate-limit *=0  ',
    '',
  ].join('\n'));
  const d = await start({ args: ['--config', conf] });
  daemons.push(d);
  assert.notEqual(d.port, taken, 'the command line\'s --listen won over the file\'s');
  // max-body from the file: a 4 KiB body is refused before it is read.
  const big = await httpRequest({ port: d.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: Buffer.alloc(4096, 0x20) });
  assert.equal(big.json?.Response?.Error?.Code, 'RequestSizeLimitExceeded',
    `max-body 2048 from the file refuses 4096 bytes: ${big.status} ${big.text}`);
  // log-level debug from the file: a refused request leaves a debug line.
  await httpRequest({ port: d.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{}') });
  await logHas(d, / debug cloudapi /);
  await d.stop();
  // A flag after --config on the command line wins too.
  const d2 = await start({ args: ['--config', conf, '--max-body', '8192'] });
  daemons.push(d2);
  const fits = await httpRequest({ port: d2.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: Buffer.alloc(4096, 0x20) });
  assert.notEqual(fits.json?.Response?.Error?.Code, 'RequestSizeLimitExceeded', `--max-body 8192 wins: ${fits.text}`);
  await d2.stop();

  const bad = writeConfig('bad.conf', 'workers = 2\n# fine so far\nworkrs = 3\n');
  const err = await expectStartFails({ args: ['--config', bad] }, 'a misspelt flag in the config file');
  assert.match(err.message, new RegExp(`${escapeRe(bad)}:3: unknown flag workrs`));
  const badValue = writeConfig('bad-value.conf', '\nlog-level = loud\n');
  const err2 = await expectStartFails({ args: ['--config', badValue] }, 'a bad value in the config file');
  assert.match(err2.message, new RegExp(`${escapeRe(badValue)}:2: --log-level loud: expected error, warn, info or debug`));
});

test('SIGHUP applies a changed log level at once and names the flags that need a restart', async () => {
  const conf = writeConfig('hup.conf', 'log-level = info\nrate-limit = *=0\nworkers = 2\n');
  const d = await start({ args: ['--config', conf] });
  daemons.push(d);
  const refused = () => httpRequest({ port: d.port, method: 'POST', path: '/', headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{}') });
  await refused();
  await sleep(200);
  assert.doesNotMatch(fs.readFileSync(d.logPath, 'utf8'), / debug /, 'no debug lines at info');

  fs.writeFileSync(conf, 'log-level = debug\nrate-limit = *=0\nworkers = 3\n');
  process.kill(d.proc.pid, 'SIGHUP');
  await logHas(d, new RegExp(`SIGHUP: read ${escapeRe(conf)}: applied: log-level; needs a restart: workers`));
  await refused();
  await logHas(d, / debug cloudapi /);

  // A file that no longer parses changes nothing: the level stays debug.
  fs.writeFileSync(conf, 'log-level = error\nbogus\n');
  process.kill(d.proc.pid, 'SIGHUP');
  await logHas(d, /SIGHUP: keeping the configuration in use: .*hup\.conf:2: unknown flag bogus/);
  const before = (fs.readFileSync(d.logPath, 'utf8').match(/ debug cloudapi /g) || []).length;
  await refused();
  const until = Date.now() + 5000 * SLOW;
  while ((fs.readFileSync(d.logPath, 'utf8').match(/ debug cloudapi /g) || []).length === before && Date.now() < until) await sleep(50);
  assert.ok((fs.readFileSync(d.logPath, 'utf8').match(/ debug cloudapi /g) || []).length > before, 'still at debug');
  await d.stop();
});

test('man -l renders both installed pages without warnings, covering every flag and command', () => {
  const pages = { asyncd: path.join(dest, 'usr/share/man/man8/asyncd.8'), asyncctl: path.join(dest, 'usr/share/man/man1/asyncctl.1') };
  const text = {};
  for (const [name, file] of Object.entries(pages)) {
    const r = spawnSync('man', ['-l', '--warnings', file], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80' } });
    assert.equal(r.status, 0, `man -l ${file}: ${r.stderr}`);
    assert.equal(r.stderr, '', `no warnings for ${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^${name.toUpperCase()}\\(`), `${name} renders its title`);
    // Hyphenation at line ends and hyphen glyphs aside, the page's words as plain text.
    text[name] = r.stdout.replace(/\u2010|\u2011|\u2212/g, '-').replace(/-\n\s*/g, '-').replace(/\s+/g, ' ');
  }
  const help = spawnSync(ASYNCD_BIN, ['--help'], { encoding: 'utf8' }).stdout;
  const flags = [...help.matchAll(/^ {2}(--[a-z-]+)/gm), ...help.matchAll(/ (--tls-key)/g)].map((m) => m[1]);
  assert.ok(flags.length > 20, `flags found in --help: ${flags}`);
  for (const f of flags) assert.ok(text.asyncd.includes(f), `asyncd(8) documents ${f}`);
  const ctlHelp = spawnSync(path.join(path.dirname(ASYNCD_BIN), 'asyncctl'), ['--help'], { encoding: 'utf8' }).stdout;
  const commands = [...ctlHelp.matchAll(/^ {2}asyncctl ((?:[a-z]+ ?)+)/gm)].map((m) => m[1].trim());
  assert.ok(commands.length > 20, `commands found in asyncctl --help: ${commands}`);
  for (const c of commands) assert.ok(text.asyncctl.includes(c), `asyncctl(1) documents "${c}"`);
});
