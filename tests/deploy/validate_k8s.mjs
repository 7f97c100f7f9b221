// Validates Kubernetes objects (multi-document YAML on stdin) against the API, offline:
//  1. kubernetes-models: each object against the JSON schema of its apiVersion/kind (types,
//     required fields, formats); ServiceMonitor through @kubernetes-models/prometheus-operator.
//  2. @kubernetes/client-node: a round trip through the typed model of a built-in kind drops
//     every field the API does not know, so any difference is an unknown (misspelt, misplaced)
//     field, which kubernetes-models' schemas let through.
// Usage: node validate_k8s.mjs TOOLS_DIR LABEL < rendered.yaml
// Prints one line per problem ("LABEL: Kind/name: ...") and exits 1 if there was any.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [toolsDir, label] = process.argv.slice(2);
const modules = join(toolsDir, 'node_modules');
const require = createRequire(join(modules, 'noop.js'));
const load = async (path) => import(pathToFileURL(join(modules, path)).href);

const clientNode = await load('@kubernetes/client-node/dist/index.js');
// Plain YAML: client-node's own loadAllYaml returns typed objects, already without unknown fields.
const { loadAll } = require('js-yaml');
const { ObjectSerializer } = await load('@kubernetes/client-node/dist/gen/models/ObjectSerializer.js');

// "apps/v1" + "Deployment" -> the kubernetes-models class; null when no package models it.
function schemaModel(apiVersion, kind) {
  const packages = apiVersion.startsWith('monitoring.coreos.com/')
      ? ['@kubernetes-models/prometheus-operator'] : ['kubernetes-models'];
  for (const pkg of packages) {
    try {
      const exported = require(`${pkg}/${apiVersion}/${kind}`);
      return exported[kind] ?? exported.default ?? null;
    } catch (error) {
      if (error.code !== 'MODULE_NOT_FOUND') throw error;
    }
  }
  return null;
}

// client-node's typed model of a built-in kind ("apps/v1" Deployment -> "V1Deployment"), or null.
function typedModelName(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
  return typeof clientNode[name] === 'function' ? name : null;
}

// Paths present in `original` but missing or different in `roundTrip`.
function differences(original, roundTrip, path, out) {
  if (original === null || typeof original !== 'object') {
    if (JSON.stringify(original) !== JSON.stringify(roundTrip)) out.push(`${path}: ${JSON.stringify(original)} became ${JSON.stringify(roundTrip)}`);
    return out;
  }
  if (roundTrip === null || typeof roundTrip !== 'object') {
    out.push(`${path}: dropped (unknown field)`);
    return out;
  }
  for (const key of Object.keys(original)) {
    const child = Array.isArray(original) ? `${path}[${key}]` : `${path}.${key}`;
    if (!(key in roundTrip)) out.push(`${child}: unknown field`);
    else differences(original[key], roundTrip[key], child, out);
  }
  return out;
}

const objects = loadAll(readFileSync(0, 'utf8')).filter((object) => object);
const problems = [];
let checkedTyped = 0;
for (const object of objects) {
  const { apiVersion, kind } = object;
  const where = `${label}: ${kind}/${object.metadata?.name ?? '?'}`;
  if (!apiVersion || !kind) { problems.push(`${where}: no apiVersion/kind`); continue; }
  const Model = schemaModel(apiVersion, kind);
  if (!Model) { problems.push(`${where}: no schema for ${apiVersion} ${kind}`); continue; }
  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${where}: schema: ${error.message}`);
  }
  const typed = typedModelName(apiVersion, kind);
  if (typed) {
    const roundTrip = ObjectSerializer.serialize(ObjectSerializer.deserialize(object, typed), typed);
    for (const difference of differences(object, roundTrip, '', [])) problems.push(`${where}: ${difference}`);
    ++checkedTyped;
  } else if (!apiVersion.startsWith('monitoring.coreos.com/')) {
    problems.push(`${where}: no typed model of ${apiVersion} ${kind} for the unknown-field check`);
  }
}
for (const problem of problems) console.log(problem);
console.log(`${label}: ${objects.length} objects, ${checkedTyped} checked for unknown fields, ${problems.length} problems`);
process.exit(problems.length === 0 && objects.length > 0 ? 0 : 1);
