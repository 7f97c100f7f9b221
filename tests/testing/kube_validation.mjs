// Validates Kubernetes objects against the API, offline: the one home of this check, used by
// tests/deploy/validate_k8s.mjs (deploy/) and tests/testing/kube_api_server.mjs (every object
// the test API server stores).
//  1. kubernetes-models: each object against the JSON schema of its apiVersion/kind (types,
//     required fields, formats); ServiceMonitor through @kubernetes-models/prometheus-operator,
//     cert-manager's Issuer and Certificate through @kubernetes-models/cert-manager.
//  2. @kubernetes/client-node: a round trip through the typed model of a built-in kind drops
//     every field the API does not know, so any difference is an unknown (misspelt, misplaced)
//     field, which kubernetes-models' schemas let through.
// Usage: const validator = await makeValidator(toolsDir); validator.validate(object) returns
// a list of problems, each { field: 'spec.nfs.path', message: '...', check: 'schema' | 'unknown-field' | 'model' }.
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// "/spec/containers/0/name" -> "spec.containers[0].name"
function fieldFromPointer(pointer) {
  let field = '';
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    field += /^[0-9]+$/.test(key) ? `[${key}]` : (field ? `.${key}` : key);
  }
  return field;
}

// A Date and the RFC 3339 text it came from are the same value ("...05Z" vs "...05.000Z").
function sameInstant(a, b) {
  if (typeof a !== 'string') return false;
  const text = b instanceof Date ? b.toISOString() : b;
  if (typeof text !== 'string' || !/^\d{4}-\d\d-\d\dT/.test(a)) return false;
  const left = Date.parse(a);
  return !Number.isNaN(left) && left === Date.parse(text);
}

// Paths present in `original` but missing or different in `roundTrip`.
function differences(original, roundTrip, path, out) {
  if (original === null || typeof original !== 'object') {
    if (JSON.stringify(original) !== JSON.stringify(roundTrip) && !sameInstant(original, roundTrip)) {
      out.push({ field: path, message: `${JSON.stringify(original)} became ${JSON.stringify(roundTrip)}` });
    }
    return out;
  }
  if (roundTrip === null || typeof roundTrip !== 'object') {
    out.push({ field: path, message: 'dropped (unknown field)' });
    return out;
  }
  for (const key of Object.keys(original)) {
    const child = Array.isArray(original) ? `${path}[${key}]` : (path ? `${path}.${key}` : key);
    if (!(key in roundTrip)) out.push({ field: child, message: 'unknown field' });
    else differences(original[key], roundTrip[key], child, out);
  }
  return out;
}

// Custom resources of the operators deploy/ works with: schemas only (client-node has no typed
// model of them for the unknown-field round trip).
export function isCustomResource(apiVersion) {
  return apiVersion.startsWith('monitoring.coreos.com/') || apiVersion.startsWith('cert-manager.io/');
}

export async function makeValidator(toolsDir) {
  const modules = join(resolve(toolsDir), 'node_modules');
  const require = createRequire(join(modules, 'noop.js'));
  const load = async (path) => import(pathToFileURL(join(modules, path)).href);
  // The models module alone (it exports every typed model): client-node's index costs a second to load.
  const clientNode = await load('@kubernetes/client-node/dist/gen/models/ObjectSerializer.js');
  const { ObjectSerializer } = clientNode;

  // "apps/v1" + "Deployment" -> the kubernetes-models class; null when no package models it.
  const models = new Map();
  function schemaModel(apiVersion, kind) {
    const cacheKey = `${apiVersion}/${kind}`;
    if (models.has(cacheKey)) return models.get(cacheKey);
    const packages = apiVersion.startsWith('monitoring.coreos.com/') ? ['@kubernetes-models/prometheus-operator']
        : apiVersion.startsWith('cert-manager.io/') ? ['@kubernetes-models/cert-manager'] : ['kubernetes-models'];
    let model = null;
    for (const pkg of packages) {
      try {
        const exported = require(`${pkg}/${apiVersion}/${kind}`);
        model = exported[kind] ?? exported.default ?? null;
        break;
      } catch (error) {
        if (error.code !== 'MODULE_NOT_FOUND') throw error;
      }
    }
    models.set(cacheKey, model);
    return model;
  }

  // client-node's typed model of a built-in kind ("apps/v1" Deployment -> "V1Deployment"), or null.
  function typedModelName(apiVersion, kind) {
    const version = apiVersion.split('/').pop();
    const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
    return typeof clientNode[name] === 'function' ? name : null;
  }

  function validate(object) {
    const problems = [];
    const { apiVersion, kind } = object ?? {};
    if (!apiVersion || !kind) return [{ field: apiVersion ? 'kind' : 'apiVersion', message: 'Required value', check: 'model' }];
    const Model = schemaModel(apiVersion, kind);
    if (!Model) return [{ field: 'kind', message: `no schema for ${apiVersion} ${kind}`, check: 'model' }];
    try {
      new Model(object).validate();
    } catch (error) {
      const errors = Array.isArray(error.errors) ? error.errors : [];
      for (const detail of errors) {
        let field = fieldFromPointer(detail.instancePath ?? '');
        let message = detail.message ?? String(detail);
        if (detail.keyword === 'required' && detail.params?.missingProperty) {
          field = field ? `${field}.${detail.params.missingProperty}` : detail.params.missingProperty;
          message = 'Required value';
        } else if (detail.keyword === 'enum' && detail.params?.allowedValues) {
          message = `Unsupported value: supported values: ${detail.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
        }
        problems.push({ field, message, check: 'schema' });
      }
      if (errors.length === 0) problems.push({ field: '', message: error.message, check: 'schema' });
    }
    const typed = typedModelName(apiVersion, kind);
    if (typed) {
      const roundTrip = ObjectSerializer.serialize(ObjectSerializer.deserialize(object, typed), typed);
      for (const difference of differences(object, roundTrip, '', [])) problems.push({ ...difference, check: 'unknown-field' });
    } else if (!isCustomResource(apiVersion)) {
      problems.push({ field: 'kind', message: `no typed model of ${apiVersion} ${kind} for the unknown-field check`, check: 'model' });
    }
    return problems;
  }

  return { validate, require };
}
