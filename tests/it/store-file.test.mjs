// The store URL's password stays out of `ps` (issue 10): --store-file FILE gives asyncd the URL
// in a private file, so /proc/PID/cmdline names only the file; a file group or others may read is
// refused at start with a message saying what to do; a password written in --store itself still
// works but is warned about, naming --store-file. The PostgreSQL parts need ASYNCD_TEST_PG_URL;
// the refusal runs on either store (the file is checked before any store is opened).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PG_URL, createTestDatabase, psql, start } from './lib/asyncd.mjs';

const PG_SKIP = PG_URL ? false : 'needs the PostgreSQL store: set ASYNCD_TEST_PG_URL';
// Distinctive, so a hit can only be ours. The test cluster trusts 127.0.0.1 and ignores it.
const PASSWORD = `Pw7-store-${Math.random().toString(36).slice(2, 10)}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'asyncd-it-storefile-'));
const daemons = [];
after(async () => {
  for (const d of daemons) if (d.alive()) await d.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** url with PASSWORD in its user-info. */
function withPassword(url) {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.toString();
}

function writeStoreFile(name, text, mode) {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text, { mode });
  fs.chmodSync(f, mode); // the umask may have taken bits away
  return f;
}

test('a node started with --store-file works on that database, and its command line holds no password', { skip: PG_SKIP }, async () => {
  const url = await createTestDatabase('storefile');
  const file = writeStoreFile('store.url', `${withPassword(url)}\n`, 0o600);
  // store: 'sqlite' keeps the suite from adding a --store of its own; the file names the store.
  const d = await start({ store: 'sqlite', args: ['--store-file', file] });
  daemons.push(d);
  const cmdline = fs.readFileSync(`/proc/${d.proc.pid}/cmdline`);
  assert.ok(cmdline.includes(Buffer.from(file)), 'the command line names the file');
  assert.ok(!cmdline.includes(Buffer.from(PASSWORD)), 'the command line holds no password');
  assert.ok(!cmdline.includes(Buffer.from('postgres://')), 'nor the URL');
  await d.createAccount();
  assert.equal((await psql('SELECT count(*) FROM accounts', { url })).trim(), '2',
    'the root account and the new one are in the database the file names');
  assert.doesNotMatch(d.stderrText, /holds a password/, 'no warning: the password is not in argv');
  assert.ok(!d.stderrText.includes(PASSWORD), 'the log never shows the password');
  await d.stop();
});

test('a --store-file group or others may read is refused, saying how to fix it', async () => {
  const file = writeStoreFile('open.url', `${PG_URL ? withPassword(PG_URL) : `sqlite:${dir}/x.db`}\n`, 0o640);
  await assert.rejects(start({ store: 'sqlite', args: ['--store-file', file] }),
    /--store-file .*open\.url: mode 0640 gives group or others access to the store's password; make it private \(chmod 600 /);
  fs.chmodSync(file, 0o604);
  await assert.rejects(start({ store: 'sqlite', args: ['--store-file', file] }), /mode 0604 .*chmod 600/);
  await assert.rejects(start({ store: 'sqlite', args: ['--store-file', path.join(dir, 'missing.url')] }),
    /--store-file .*missing\.url: No such file or directory/);
  const empty = writeStoreFile('empty.url', '\n', 0o600);
  await assert.rejects(start({ store: 'sqlite', args: ['--store-file', empty] }), /--store-file .*empty\.url is empty/);
});

test('a --store-file with a sqlite: URL opens that file', async () => {
  const db = path.join(dir, 'from-file.db');
  const file = writeStoreFile('sqlite.url', `sqlite:${db}\n`, 0o400);
  const d = await start({ store: 'sqlite', args: ['--store-file', file] });
  daemons.push(d);
  await d.createAccount();
  await d.stop();
  assert.ok(fs.existsSync(db), 'the store is the file the URL names');
});

test('a password in --store itself works, with a warning that names --store-file', { skip: PG_SKIP }, async () => {
  const url = await createTestDatabase('storeargv');
  const d = await start({ store: withPassword(url) });
  daemons.push(d);
  assert.match(d.stderrText, /warn .*--store URL holds a password.*every local user.*--store-file FILE/);
  assert.ok(!d.stderrText.includes(PASSWORD), 'the warning does not repeat the password');
  await d.stop();
});
