#!/usr/bin/env node
// Generates, from the official Node.js SDK's model definitions (tencentcloud-sdk-nodejs: the
// *_models.d.ts and *_client.d.ts of cdb 2017-03-20 and mongodb 2019-07-25):
// - src/products/sdk_models_table.c: the shapes of the Tencent Cloud API structures asyncd reads
//   and answers with, so a request is checked and an answer carries every documented field
//   (pollers dereference them) without a hand-written list per structure;
// - src/products/async_actions_table.c: every async action of each product (an action whose
//   response model carries one of ASYNC_IDS), with its request and response models and the id
//   field it answers;
// - tests/it/async-actions.json: the same list with every model's fields, for the generated
//   integration cases (tests/it/async-actions.test.mjs);
// - the action list between the async-actions markers of docs/cloudapi.md.
// Usage: node scripts/gen_sdk_models.mjs [SDK_DIR]   (default: tests/it/node_modules/tencentcloud-sdk-nodejs)
// Rerun it after an SDK upgrade (npm install in tests/it) and commit the three files it writes.
// Add a structure by naming it in roots; the structures it refers to come with it.
// Enums are not generated: the SDK documents allowed values only in free-text (Chinese) doc
// comments whose lists are not reliably closed, so values are checked for kind, not membership.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const sdk = process.argv[2] || path.join(repo, 'tests/it/node_modules/tencentcloud-sdk-nodejs');
const out = path.join(repo, 'src/products/sdk_models_table.c');
const outActions = path.join(repo, 'src/products/async_actions_table.c');
const outJson = path.join(repo, 'tests/it/async-actions.json');
const outDoc = path.join(repo, 'docs/cloudapi.md');

// The structures answers are built from, per product (the models file of each product's version).
// ASYNC_IDS: the response fields that make an action async (its task's id, in one id space per
// product); the async actions' request and response models are roots too.
const PRODUCTS = {
  cdb: {
    file: 'tencentcloud/services/cdb/v20170320/cdb_models.d.ts',
    client: 'tencentcloud/services/cdb/v20170320/cdb_client.d.ts',
    roots: ['InstanceInfo', 'DescribeDBInstancesRequest', 'CreateAccountsRequest', 'TaskDetail',
      'CreateDBInstanceHourRequest', 'CreateDBInstanceHourResponse'],
    asyncIds: ['AsyncRequestId'],
  },
  mongodb: {
    file: 'tencentcloud/services/mongodb/v20190725/mongodb_models.d.ts',
    client: 'tencentcloud/services/mongodb/v20190725/mongodb_client.d.ts',
    roots: ['InstanceDetail', 'DescribeDBInstancesRequest', 'CreateDBInstanceHourRequest',
      'CreateDBInstanceHourResponse'],
    asyncIds: ['AsyncRequestId', 'FlowId', 'TaskId'],
  },
};

// The table of async actions in docs/cloudapi.md, between its markers.
function writeDocList(table) {
  const begin = '<!-- async-actions:begin', end = '<!-- async-actions:end -->';
  const doc = fs.readFileSync(outDoc, 'utf8');
  const i = doc.indexOf(begin), j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${outDoc}: no async-actions markers`);
  const rows = ['| product | action | answers | required parameters | runs |', '|---|---|---|---|---|'];
  for (const [p, { actions, models }] of Object.entries(table.products)) {
    for (const a of actions) {
      const req = models[a.request].filter((f) => f.required).map((f) => `\`${f.name}\``).join(', ');
      const kind = a.idKind === 'NUMBER' ? 'number' : 'string';
      const template = fs.existsSync(path.join(repo, 'flows', p, `${a.name}.json`));
      rows.push(`| ${p} | ${a.name} | \`${a.idField}\` (${kind}) | ${req || '(none)'} | ${template ? 'its flow template' : 'simulated instances'} |`);
    }
  }
  const head = doc.slice(0, doc.indexOf('\n', i) + 1);
  fs.writeFileSync(outDoc, head + rows.join('\n') + '\n' + doc.slice(j));
}

// "    Name(req: NameRequest, cb?: (error: string, rep: NameResponse) => void): ..." -> actions
function parseClient(text) {
  const re = /^\s+(\w+)\(req: (\w+), cb\?: \(error: string, rep: (\w+)\)/gm;
  return [...text.matchAll(re)].map((m) => ({ name: m[1], request: m[2], response: m[3] }));
}

// The actions whose response model carries an async id, sorted by name.
function asyncActions(product, actions, models, asyncIds) {
  const found = [];
  for (const a of actions) {
    const resp = models[a.response];
    if (!resp) throw new Error(`${product}: ${a.name}: no model ${a.response}`);
    if (!models[a.request]) throw new Error(`${product}: ${a.name}: no model ${a.request}`);
    const ids = resp.filter((f) => asyncIds.includes(f.name));
    if (ids.length === 0) continue;
    if (ids.length > 1) throw new Error(`${product}: ${a.name} answers ${ids.length} ids`);
    const kind = classify(ids[0].type, models).kind;
    if (kind !== 'STRING' && kind !== 'NUMBER') throw new Error(`${product}: ${a.name}: id of kind ${kind}`);
    found.push({ ...a, idField: ids[0].name, idKind: kind });
  }
  return found.sort((x, y) => (x.name < y.name ? -1 : 1));
}

// "export interface Name { /** doc */ Field?: Type; ... }" -> { Name: [{ name, optional, type }] }
function parseModels(text) {
  const models = {};
  const iface = /^export interface (\w+) \{\n([\s\S]*?)^\}/gm;
  for (let m; (m = iface.exec(text));) {
    const body = m[2].replace(/\/\*\*[\s\S]*?\*\//g, '');
    const fields = [];
    for (const line of body.split('\n')) {
      const f = /^\s+(\w+)(\?)?:\s*(.+?);\s*$/.exec(line);
      if (f) fields.push({ name: f[1], optional: !!f[2], type: f[3] });
    }
    models[m[1]] = fields;
  }
  return models;
}

// A TypeScript field type as { kind, elem, ref }: kind STRING NUMBER BOOL OBJECT ARRAY ANY.
function classify(type, models) {
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    const inner = classify(arr[1], models);
    if (inner.kind === 'ARRAY') return { kind: 'ARRAY', elem: 'ANY' }; // no nested arrays in these models
    return { kind: 'ARRAY', elem: inner.kind, ref: inner.ref };
  }
  if (type === 'string') return { kind: 'STRING' };
  if (type === 'number' || type === 'number | bigint') return { kind: 'NUMBER' };
  if (type === 'boolean') return { kind: 'BOOL' };
  if (models[type]) return { kind: 'OBJECT', ref: type };
  return { kind: 'ANY' };
}

function reachable(models, roots) {
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name) || !models[name]) return;
    seen.add(name);
    for (const f of models[name]) {
      const c = classify(f.type, models);
      if (c.ref) visit(c.ref);
    }
  };
  roots.forEach(visit);
  return [...seen].sort();
}

const cname = (product, model) => `m_${product}_${model}`;
const lines = [];
const version = JSON.parse(fs.readFileSync(path.join(sdk, 'package.json'), 'utf8')).version;
lines.push(`/* Generated by scripts/gen_sdk_models.mjs from tencentcloud-sdk-nodejs ${version}; do not edit. */`);
lines.push('#include "products/sdk_models.h"', '');
const index = [];
const actionLines = [
  `/* Generated by scripts/gen_sdk_models.mjs from tencentcloud-sdk-nodejs ${version}; do not edit. */`,
  '#include "products/async_actions.h"', '',
  'const struct async_action async_actions_all[] = {',
];
const json = { sdk: version, products: {} };
for (const [product, { file, client, roots, asyncIds }] of Object.entries(PRODUCTS)) {
  const models = parseModels(fs.readFileSync(path.join(sdk, file), 'utf8'));
  const actions = asyncActions(product, parseClient(fs.readFileSync(path.join(sdk, client), 'utf8')), models, asyncIds);
  const allRoots = [...roots, ...actions.flatMap((a) => [a.request, a.response])];
  for (const r of allRoots) if (!models[r]) throw new Error(`${product}: no model ${r} in ${file}`);
  const names = reachable(models, allRoots);
  for (const a of actions) {
    actionLines.push(`    {"${product}", {"${a.name}", async_action_run, NULL, false, "${a.request}"}, "${a.response}", "${a.idField}", SDK_${a.idKind}},`);
  }
  json.products[product] = {
    actions: actions.map((a) => ({ name: a.name, request: a.request, response: a.response, idField: a.idField, idKind: a.idKind })),
    models: Object.fromEntries(names.map((n) => [n, models[n].map((f) => {
      const c = classify(f.type, models);
      return { name: f.name, required: !f.optional, kind: c.kind, ...(c.elem ? { elem: c.elem } : {}), ...(c.ref ? { ref: c.ref } : {}) };
    })])),
  };
  for (const n of names) lines.push(`static const struct sdk_model ${cname(product, n)};`);
  lines.push('');
  for (const n of names) {
    lines.push(`static const struct sdk_field f_${product}_${n}[] = {`);
    for (const f of models[n]) {
      const c = classify(f.type, models);
      const ref = c.ref ? `&${cname(product, c.ref)}` : 'NULL';
      lines.push(`    {"${f.name}", SDK_${c.kind}, SDK_${c.elem || 'ANY'}, ${ref}, ${!f.optional}},`);
    }
    lines.push('};');
    lines.push(`static const struct sdk_model ${cname(product, n)} = {"${product}", "${n}", f_${product}_${n},`);
    lines.push(`    sizeof f_${product}_${n} / sizeof f_${product}_${n}[0]};`, '');
    index.push(`&${cname(product, n)}`);
  }
}
lines.push('const struct sdk_model *const sdk_models_all[] = {');
for (const i of index) lines.push(`    ${i},`);
lines.push('    NULL,', '};');
actionLines.push('    {NULL, {NULL, NULL, NULL, false, NULL}, NULL, NULL, SDK_ANY},', '};');
fs.writeFileSync(out, lines.join('\n') + '\n');
fs.writeFileSync(outActions, actionLines.join('\n') + '\n');
fs.writeFileSync(outJson, JSON.stringify(json, null, 1) + '\n');
writeDocList(json);
// In the committed .clang-format style, as `make format-check` wants every C file.
execFileSync('clang-format', ['-i', out, outActions]);
const counts = Object.entries(json.products).map(([p, v]) => `${p} ${v.actions.length}`).join(', ');
console.log(`wrote ${path.relative(repo, out)}: ${index.length} structures; ${path.relative(repo, outActions)} and ${path.relative(repo, outJson)}: async actions ${counts} (tencentcloud-sdk-nodejs ${version})`);
