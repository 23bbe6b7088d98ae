// Helpers for the simulation tests (docs/simulation.md): simulated instances, progression rules,
// and polling a simulated task through the official SDK while recording every answer.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { NO_LIMITS, REGION, REPO_ROOT } from './asyncd.mjs';

/** Daemon arguments: no rate limits, and the shipped templates named (a build in another
 * directory, such as build-asan/bin, finds no flows/ beside it). */
export const SIM_ARGS = [...NO_LIMITS, '--flows', path.join(REPO_ROOT, 'flows')];

/** Registers a simulated instance ("simulated": true, no dsn); returns its id. */
export async function simInstance(d, product, { instance_id, region = REGION, uin = d.creds.Uin } = {}) {
  const id = instance_id || `${product === 'cdb' ? 'cdb' : 'cmgo'}-sim${randomBytes(3).toString('hex')}`;
  const r = await d.adminOk('POST', '/v1/instances', { product, region, uin, instance_id: id, simulated: true }, 201);
  assert.equal(r.simulated, true, `the new instance says simulated: ${JSON.stringify(r)}`);
  return id;
}

/** PUT /v1/simulation/rules/{name}. */
export function setRule(d, name, rule) {
  return d.adminOk('PUT', `/v1/simulation/rules/${encodeURIComponent(name)}`, rule);
}

export function reset(d) {
  return d.adminOk('POST', '/v1/simulation/reset', {});
}

export function advance(d, id) {
  return d.adminOk('POST', `/v1/tasks/${encodeURIComponent(id)}/advance`, {});
}

/** One DescribeAsyncRequestInfo through the SDK: {Status, Info, StartTime, EndTime} or
 * {error: code, message}. */
export async function poll(d, product, id) {
  try {
    const r = await d.describe(product, id);
    return r;
  } catch (err) {
    assert.ok(err.code, `an SDK error carries a code: ${err}`);
    return { error: err.code, message: err.message };
  }
}
