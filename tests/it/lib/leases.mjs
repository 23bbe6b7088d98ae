// "No two live leases at once", checked from a finished task's event history (GET /v1/tasks/{id}).
// The history is split at the claim events ("started; lease 1", "claimed; lease N",
// "lease of X expired; taken over, lease N"): what follows claim N up to claim N+1 was written
// under lease N. Checked per task:
// - claim k carries lease k (1, 2, 3, ...): every claim its own lease number, none skipped;
// - every event under lease N comes from the node holding it (no operator verbs in the tests that
//   use this), and claim N+1 comes after all of them in time too (a few ms of slop: the times are
//   read by different processes around one row lock);
// - a takeover names the previous holder and comes no sooner than that lease's expiry could be:
//   claim N + lease (renewals only push the expiry later).
// Not checked, on purpose: "a takeover comes at least lease_s after the holder's last event".
// A step's progress write does not extend the lease (only the renewals every lease/3 while a step
// runs do), so a correct takeover may follow the holder's last event sooner; the shortest such
// gap is returned as a figure.
import assert from 'node:assert/strict';
import { claimEvents, show } from './engine.mjs';

const TAKEOVER_RE = /^lease of (.+) expired; taken over, lease \d+$/;

/** Checks one task's history; adds to stats {takeovers: {node: n}, maxInversionMs,
 * minAfterLastEventMs, minAfterKillMs: {node: ms}}. killed: {node: {killAt, deadAt}} for nodes
 * killed with SIGKILL (figures only). Returns the task's number of takeovers. */
export function checkLeases(task, { leaseMs, slopMs = 50, killed = {}, stats = newLeaseStats() }) {
  const claims = claimEvents(task);
  claims.forEach((cl, k) => assert.equal(cl.lease, k + 1, `claim ${k} has lease ${k + 1}: each claim its own lease number: ${show(task)}`));
  const claimBySeq = new Map(claims.map((cl) => [cl.seq, cl]));
  let cur = null;
  let last = null;
  let takeovers = 0;
  for (const e of task.events) {
    const cl = claimBySeq.get(e.seq);
    if (cl) {
      if (cur) {
        const inv = last.at_ms - cl.at_ms;
        stats.maxInversionMs = Math.max(stats.maxInversionMs, inv);
        assert.ok(inv <= slopMs, `claim of lease ${cl.lease} at ${cl.at_ms} comes after every event under lease ${cur.lease} (the last at ${last.at_ms}): ${show(task)}`);
        const m = TAKEOVER_RE.exec(cl.message);
        if (m) {
          takeovers++;
          assert.equal(m[1], cur.node, `the takeover names the previous holder: ${show(task)}`);
          assert.ok(cl.at_ms >= cur.at_ms + leaseMs - 5,
            `takeover of lease ${cur.lease} (claimed at ${cur.at_ms}) at ${cl.at_ms}: before it could expire (${leaseMs} ms): ${show(task)}`);
          stats.takeovers[cur.node] = (stats.takeovers[cur.node] || 0) + 1;
          stats.minAfterLastEventMs = Math.min(stats.minAfterLastEventMs, cl.at_ms - last.at_ms);
          const k = killed[cur.node];
          if (k && cur.at_ms <= k.deadAt && cl.at_ms > k.deadAt) {
            stats.minAfterKillMs[cur.node] = Math.min(stats.minAfterKillMs[cur.node] ?? Infinity, cl.at_ms - k.killAt);
          }
        } else {
          // Not a takeover: the previous lease was given back (a retry's backoff, a drain).
          assert.match(cl.message, /^claimed; lease \d+$/, `a later claim is a takeover or follows a release: ${show(task)}`);
        }
      }
      cur = cl;
      last = cl;
      continue;
    }
    if (!cur) {
      assert.equal(e.to, 'initial', `only "created" comes before the first claim: ${show(task)}`);
      continue;
    }
    assert.equal(e.node, cur.node, `event ${e.seq} under lease ${cur.lease} was written by its holder ${cur.node}: ${show(task)}`);
    last = e;
  }
  return takeovers;
}

export function newLeaseStats() {
  return { takeovers: {}, maxInversionMs: 0, minAfterLastEventMs: Infinity, minAfterKillMs: {} };
}
