// A Kubernetes API server for tests: the nearest real thing that runs on a machine without a
// cluster. It keeps the semantics clients depend on for the resources this project uses, and
// it validates EVERY object it stores with the npm Kubernetes models (kube_validation.mjs:
// kubernetes-models' schemas plus the @kubernetes/client-node round trip that finds unknown
// fields), so a client that writes a bad object fails its test with the field named.
//
// Resources: namespaces, persistentvolumes, persistentvolumeclaims, pods, secrets (core/v1),
// mutatingwebhookconfigurations (admissionregistration.k8s.io/v1), and the create-only
// tokenreviews (authentication.k8s.io/v1) and subjectaccessreviews (authorization.k8s.io/v1).
//
// What it keeps as a real API server does:
//  - resourceVersion (one cluster-wide counter, a string), uid, creationTimestamp,
//    metadata.generation (bumped when anything but metadata and status changes), managedFields;
//  - 409 AlreadyExists on a create of a taken name, 409 Conflict on an update or patch whose
//    metadata.resourceVersion is stale and on failed delete preconditions (uid, resourceVersion),
//    404 NotFound, 422 Invalid with details.causes naming each field;
//  - label selectors (=, ==, !=, in, notin, exists, !exists) and field selectors
//    (metadata.name, metadata.namespace, spec.nodeName, status.phase, ...; others are 400);
//  - list pages (limit/continue) served from a snapshot of the first page's moment; a continue
//    token older than the kept history is 410 Expired;
//  - watch from a resourceVersion with ADDED/MODIFIED/DELETED events (objects leaving or
//    entering a selection are DELETED/ADDED), BOOKMARK events (allowWatchBookmarks), timeoutSeconds,
//    and 410 Gone (an ERROR event, or an HTTP 410 when configured) when the resourceVersion is
//    older than the kept history (a window of N events, configurable so tests can force it);
//  - status as a subresource (writes to the object keep its status; .../status writes only status),
//    finalizers (a delete sets deletionTimestamp; the object goes when the last finalizer does);
//  - a PV/PVC binder: a PVC with spec.volumeName binds to that PV when the PV's claimRef is
//    empty or names the PVC; a PV whose claimRef names a PVC binds it; a PVC without volumeName
//    binds to an Available PV of its storage class, access modes and size. Both get phase
//    Bound, the PV a full claimRef, the PVC its capacity. A deleted PVC releases its PV
//    (Released for Retain; a Delete PV is deleted, as its provisioner would); a PVC whose PV
//    is gone is Lost;
//  - namespace deletion: Terminating, then every namespaced object in it is deleted, then the
//    namespace; creates in a terminating namespace are 403 Forbidden;
//  - bearer tokens from a token file (token,user,uid,"group1,group2"[,"audience1,audience2"]
//    lines) re-read when it changes, so a test can rotate a token and see 401 for the old one;
//    TokenReviews check the audiences as a real server does (a token without audiences is
//    good for the API server's own, https://kubernetes.default.svc.cluster.local, only); client certificates
//    signed by --client-ca (user = CN); TLS with a test CA, or plain HTTP;
//  - discovery (/api, /api/v1, /apis, /apis/<group>[/<version>], /version) and Table output
//    for kubectl get, so the real kubectl works against it.
//
// What differs from a real API server (README: "The test Kubernetes API server"):
//  - no kubelet, scheduler or controllers beyond the binder and namespace deletion: pods stay
//    Pending, nothing mounts a volume, no PVC is provisioned dynamically, no garbage collector
//    (ownerReferences are stored, not acted on);
//  - server-side apply is an approximation: lists are atomic (a real server merges
//    listType=map lists such as containers by key), field ownership is tracked per leaf field
//    for apply and update managers, conflicts are a different value for a field another
//    manager owns, and no field is defaulted into the applied configuration;
//  - strategic merge patch (kubectl's client-side apply) is a JSON merge patch in which lists
//    of objects that all have a "name" are merged by name; directives ($patch: delete) are
//    honoured for such lists, others ($setElementOrder, $retainKeys) are ignored;
//  - defaulting covers a few fields only (namespace finalizers and the kubernetes.io/metadata.name
//    label, PV reclaim policy and volumeMode, pod restartPolicy/dnsPolicy/schedulerName, Secret
//    type and stringData, webhook failurePolicy/matchPolicy/selectors/timeout); name validation
//    covers DNS names and label syntax; immutable fields are not enforced;
//  - validation is the npm models' (schemas, unknown fields), and an unknown field is a 422
//    here where a real server answers 400 (fieldValidation=Strict) or drops it with a warning;
//  - authorization allows every authenticated user, except what a test denies through
//    /_test/config {deny: [...]}; SubjectAccessReviews answer from /_test/config {allow: [...]};
//  - JSON only: no protobuf (kubectl's generator commands, such as `kubectl create namespace`,
//    send protobuf and get 415; `kubectl create|apply -f` send JSON and work), no aggregated
//    discovery, OpenAPI v3 only as an index of PATCH operations with the fieldValidation
//    parameter (so kubectl validates on the server's side; no schemas, no v2), no
//    deletecollection; resourceVersion/resourceVersionMatch on get and list are ignored (always
//    the latest state);
//  - a new server starts with the namespaces default, kube-node-lease, kube-public and
//    kube-system, and nothing else (no ServiceAccounts, no ConfigMaps, no RBAC objects).
//
// Test endpoints (no authentication): GET /_test/validation-failures, GET|DELETE
// /_test/requests, POST /_test/compact (forget all history: every older watch or continue
// token is 410), POST /_test/drop-watches (cut every watch stream, as a network failure),
// GET|POST /_test/config {historyWindow, bookmarkIntervalMs, goneAs: "event"|"status", deny, allow}.
//
// Usage: node kube_api_server.mjs --tools DIR --state FILE --port-file FILE [--port N]
//        [--tokens FILE] [--tls-cert PEM --tls-key PEM [--client-ca PEM]] [--history N]
//        [--bookmark-ms N]
// The state file holds every object, the counter and the history: a server started again
// with it (on the same --port) carries on where the last one stopped.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { makeValidator } from './kube_validation.mjs';

// ---------------------------------------------------------------- arguments and set-up

function parseArguments(argv) {
  const options = { port: 0, history: 1000, bookmarkMs: 5000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`--${key} needs a value`);
    switch (key) {
      case 'port': options.port = Number(value); break;
      case 'tools': options.tools = value; break;
      case 'state': options.state = value; break;
      case 'port-file': options.portFile = value; break;
      case 'tokens': options.tokens = value; break;
      case 'tls-cert': options.tlsCert = value; break;
      case 'tls-key': options.tlsKey = value; break;
      case 'client-ca': options.clientCa = value; break;
      case 'history': options.history = Number(value); break;
      case 'bookmark-ms': options.bookmarkMs = Number(value); break;
      default: throw new Error(`unknown option --${key}`);
    }
  }
  if (!options.tools || !options.state) throw new Error('--tools and --state are required');
  return options;
}

const options = parseArguments(process.argv.slice(2));
const validator = await makeValidator(options.tools);
const { load: loadYaml } = validator.require('js-yaml');

const log = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

// ---------------------------------------------------------------- resources

const RESOURCES = [
  { group: '', version: 'v1', name: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], status: true, spec: false },
  { group: '', version: 'v1', name: 'persistentvolumes', singular: 'persistentvolume', kind: 'PersistentVolume', generation: true, namespaced: false, shortNames: ['pv'], status: true, spec: true },
  { group: '', version: 'v1', name: 'persistentvolumeclaims', singular: 'persistentvolumeclaim', kind: 'PersistentVolumeClaim', generation: true, namespaced: true, shortNames: ['pvc'], status: true, spec: true },
  { group: '', version: 'v1', name: 'pods', singular: 'pod', kind: 'Pod', generation: true, namespaced: true, shortNames: ['po'], status: true, spec: true },
  { group: '', version: 'v1', name: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, shortNames: [], status: false, spec: false },
  { group: 'admissionregistration.k8s.io', version: 'v1', name: 'mutatingwebhookconfigurations', singular: 'mutatingwebhookconfiguration', kind: 'MutatingWebhookConfiguration', namespaced: false, shortNames: [], status: false, spec: false, generation: true },
  { group: 'authentication.k8s.io', version: 'v1', name: 'tokenreviews', singular: 'tokenreview', kind: 'TokenReview', namespaced: false, shortNames: [], createOnly: true },
  { group: 'authorization.k8s.io', version: 'v1', name: 'subjectaccessreviews', singular: 'subjectaccessreview', kind: 'SubjectAccessReview', namespaced: false, shortNames: [], createOnly: true },
];
const STORED_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
for (const resource of RESOURCES) {
  resource.apiVersion = resource.group ? `${resource.group}/${resource.version}` : resource.version;
  resource.qualified = resource.group ? `${resource.name}.${resource.group}` : resource.name;
}
const resourceFor = (group, version, name) =>
  RESOURCES.find((r) => r.group === group && r.version === version && r.name === name);

// Field selectors a real server supports for these kinds (metadata.name and metadata.namespace for all).
const FIELD_LABELS = {
  pods: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  namespaces: ['status.phase'],
  secrets: ['type'],
  persistentvolumeclaims: [],
  persistentvolumes: [],
  mutatingwebhookconfigurations: [],
};

// ---------------------------------------------------------------- state

const state = {
  rv: 0,
  objects: new Map(),        // key -> object
  history: [],               // { rv, type, key, resource, object, old }
  compactedThrough: 0,       // events up to here are forgotten: a watch from an older rv is 410
  config: { historyWindow: options.history, bookmarkIntervalMs: options.bookmarkMs, goneAs: 'event', deny: [], allow: [] },
  validationFailures: [],
};
const requests = [];          // what was asked, for tests (not persisted)
const watchers = new Set();   // open watch streams
const snapshots = new Map();  // continue-token id -> { rv, items }

const keyOf = (resource, namespace, name) => `${resource.name}|${namespace ?? ''}|${name}`;

function loadState() {
  if (!fs.existsSync(options.state)) return;
  const saved = JSON.parse(fs.readFileSync(options.state, 'utf8'));
  state.rv = saved.rv;
  state.objects = new Map(saved.objects);
  state.history = saved.history;
  state.compactedThrough = saved.compactedThrough;
  state.config = { ...state.config, ...saved.config };
  state.validationFailures = saved.validationFailures ?? [];
}

function saveState() {
  const saved = {
    rv: state.rv,
    objects: [...state.objects.entries()],
    history: state.history,
    compactedThrough: state.compactedThrough,
    config: state.config,
    validationFailures: state.validationFailures,
  };
  const temporary = `${options.state}.tmp`;
  fs.writeFileSync(temporary, JSON.stringify(saved));
  fs.renameSync(temporary, options.state);
}

const clone = (value) => (value === undefined ? undefined : structuredClone(value));
const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

// ---------------------------------------------------------------- errors

class ApiError extends Error {
  constructor(code, reason, message, details) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
}

function statusObject(code, reason, message, details) {
  const status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status.details = details;
  return status;
}

const notFound = (resource, name) => new ApiError(404, 'NotFound', `${resource.qualified} "${name}" not found`,
  { name, group: resource.group, kind: resource.name });
const conflict = (resource, name, message) => new ApiError(409, 'Conflict',
  `Operation cannot be fulfilled on ${resource.qualified} "${name}": ${message}`, { name, group: resource.group, kind: resource.name });
const badRequest = (message) => new ApiError(400, 'BadRequest', message);

function invalid(resource, name, causes) {
  const text = causes.map((cause) => `${cause.field}: ${cause.message}`).join(', ');
  return new ApiError(422, 'Invalid', `${resource.kind} "${name}" is invalid: ${text}`,
    { name, group: resource.group, kind: resource.kind, causes });
}

// ---------------------------------------------------------------- names, labels, selectors

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function nameProblems(resource, name) {
  if (resource.kind === 'Namespace') {
    if (name.length > 63) return [`must be no more than 63 characters (a DNS-1123 label; got ${name.length})`];
    if (!DNS_LABEL.test(name)) return ['a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character'];
    return [];
  }
  if (name.length > 253) return [`must be no more than 253 characters (got ${name.length})`];
  if (!DNS_SUBDOMAIN.test(name)) return ['a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \'-\' or \'.\', and must start and end with an alphanumeric character'];
  return [];
}

function labelKeyProblem(key) {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0 && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return 'prefix part must be a DNS-1123 subdomain';
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) return 'name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', at most 63, and must start and end with an alphanumeric character';
  return null;
}

function metadataProblems(resource, object) {
  const causes = [];
  const metadata = object.metadata ?? {};
  // Reviews are not stored and need no name.
  const name = metadata.name ?? '';
  for (const problem of resource.createOnly && !name ? [] : nameProblems(resource, name)) {
    causes.push({ reason: 'FieldValueInvalid', field: 'metadata.name', message: `Invalid value: "${metadata.name}": ${problem}` });
  }
  for (const [key, value] of Object.entries(metadata.labels ?? {})) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) causes.push({ reason: 'FieldValueInvalid', field: 'metadata.labels', message: `Invalid value: "${key}": ${keyProblem}` });
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      causes.push({ reason: 'FieldValueInvalid', field: `metadata.labels`, message: `Invalid value: "${value}": a valid label value must be 63 characters or less, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character` });
    }
  }
  return causes;
}

// Splits "a in (x,y),b=c" at the commas outside parentheses.
function splitRequirements(text) {
  const parts = [];
  let depth = 0;
  let current = '';
  for (const c of text) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) { parts.push(current); current = ''; } else current += c;
  }
  if (current.trim()) parts.push(current);
  return parts.map((part) => part.trim()).filter((part) => part);
}

function parseLabelSelector(text) {
  if (!text) return () => true;
  const tests = [];
  for (const requirement of splitRequirements(text)) {
    let match;
    if ((match = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(requirement))) {
      const [, key, operator, list] = match;
      const values = list.split(',').map((value) => value.trim()).filter((value) => value);
      tests.push(operator === 'in' ? (labels) => key in labels && values.includes(labels[key])
                                   : (labels) => !(key in labels) || !values.includes(labels[key]));
    } else if ((match = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(requirement))) {
      const [, key, operator, value] = match;
      tests.push(operator === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value);
    } else if ((match = /^!\s*([^\s!=(),]+)$/.exec(requirement))) {
      const key = match[1];
      tests.push((labels) => !(key in labels));
    } else if ((match = /^([^\s!=(),]+)$/.exec(requirement))) {
      const key = match[1];
      tests.push((labels) => key in labels);
    } else {
      throw badRequest(`unable to parse requirement: "${requirement}": found unexpected token`);
    }
  }
  return (object) => {
    const labels = object.metadata?.labels ?? {};
    return tests.every((test) => test(labels));
  };
}

function fieldValue(object, path) {
  let value = object;
  for (const part of path.split('.')) value = value?.[part];
  return value === undefined || value === null ? '' : String(value);
}

function parseFieldSelector(resource, text) {
  if (!text) return () => true;
  const tests = [];
  for (const requirement of text.split(',').map((part) => part.trim()).filter((part) => part)) {
    const match = /^([^!=]+)(==|=|!=)(.*)$/.exec(requirement);
    if (!match) throw badRequest(`invalid field selector: "${requirement}"`);
    const [, field, operator, value] = match;
    const supported = ['metadata.name', 'metadata.namespace', ...(FIELD_LABELS[resource.name] ?? [])];
    if (!supported.includes(field)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    tests.push(operator === '!=' ? (object) => fieldValue(object, field) !== value
                                 : (object) => fieldValue(object, field) === value);
  }
  return (object) => tests.every((test) => test(object));
}

// ---------------------------------------------------------------- patches

// RFC 7386.
function mergePatch(target, patch) {
  if (!isObject(patch)) return clone(patch);
  const result = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// kubectl's strategic merge patch, approximated: a merge patch in which lists of named
// objects merge by name (with "$patch: delete" items), and other directives are dropped.
function strategicMergePatch(target, patch) {
  if (!isObject(patch)) return clone(patch);
  const result = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$setElementOrder/') || key === '$retainKeys' || key.startsWith('$deleteFromPrimitiveList/')) continue;
    if (key === '$patch') continue;
    if (value === null) { delete result[key]; continue; }
    const current = result[key];
    const named = (list) => Array.isArray(list) && list.length > 0 && list.every((item) => isObject(item) && typeof item.name === 'string');
    if (Array.isArray(value) && Array.isArray(current) && named(current) && value.every((item) => isObject(item) && typeof item.name === 'string')) {
      const merged = clone(current);
      for (const item of value) {
        const at = merged.findIndex((existing) => existing.name === item.name);
        if (item.$patch === 'delete') { if (at >= 0) merged.splice(at, 1); continue; }
        if (at >= 0) merged[at] = strategicMergePatch(merged[at], item);
        else merged.push(strategicMergePatch({}, item));
      }
      result[key] = merged;
    } else {
      result[key] = strategicMergePatch(current, value);
    }
  }
  return result;
}

// RFC 6902.
function jsonPatch(target, operations) {
  if (!Array.isArray(operations)) throw badRequest('a JSON patch must be a list of operations');
  let document = clone(target);
  const parse = (pointer) => pointer.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  const parentOf = (path) => {
    const parts = parse(path);
    let node = document;
    for (const part of parts.slice(0, -1)) {
      node = node?.[part];
      if (node === undefined) throw new ApiError(422, 'Invalid', `JSON patch: path ${path}: no such parent`);
    }
    return [node, parts[parts.length - 1]];
  };
  const read = (path) => {
    let node = document;
    for (const part of parse(path)) {
      node = node?.[part];
      if (node === undefined) throw new ApiError(422, 'Invalid', `JSON patch: path ${path} does not exist`);
    }
    return node;
  };
  const add = (path, value) => {
    if (path === '') { document = value; return; }
    const [parent, last] = parentOf(path);
    if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, value);
    else parent[last] = value;
  };
  const remove = (path) => {
    read(path);
    const [parent, last] = parentOf(path);
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  };
  for (const operation of operations) {
    switch (operation.op) {
      case 'add': add(operation.path, clone(operation.value)); break;
      case 'remove': remove(operation.path); break;
      case 'replace': remove(operation.path); add(operation.path, clone(operation.value)); break;
      case 'move': { const value = read(operation.from); remove(operation.from); add(operation.path, value); break; }
      case 'copy': add(operation.path, clone(read(operation.from))); break;
      case 'test':
        if (!equal(read(operation.path), operation.value)) throw new ApiError(422, 'Invalid', `JSON patch: test failed at ${operation.path}`);
        break;
      default: throw badRequest(`JSON patch: unknown op "${operation.op}"`);
    }
  }
  return document;
}

// ---------------------------------------------------------------- field ownership (managedFields)

const UNMANAGED_METADATA = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'generateName'];

// Leaf paths of an object (lists are leaves): Map of JSON path text -> JSON value text.
function leafFields(object) {
  const fields = new Map();
  const walk = (value, path) => {
    if (isObject(value) && Object.keys(value).length > 0) {
      for (const [key, child] of Object.entries(value)) walk(child, [...path, key]);
    } else {
      fields.set(JSON.stringify(path), JSON.stringify(value));
    }
  };
  for (const [key, value] of Object.entries(object ?? {})) {
    if (key === 'apiVersion' || key === 'kind' || key === 'status') continue;
    if (key === 'metadata') {
      for (const [field, child] of Object.entries(value ?? {})) {
        if (!UNMANAGED_METADATA.includes(field)) walk(child, ['metadata', field]);
      }
      continue;
    }
    walk(value, [key]);
  }
  return fields;
}

// A set of paths <-> FieldsV1 ({"f:spec": {"f:capacity": {}}}).
function toFieldsV1(paths) {
  const root = {};
  for (const text of paths) {
    let node = root;
    for (const part of JSON.parse(text)) node = (node[`f:${part}`] ??= {});
  }
  return root;
}

function fromFieldsV1(fieldsV1) {
  const paths = new Set();
  const walk = (node, path) => {
    const keys = Object.keys(node ?? {}).filter((key) => key.startsWith('f:'));
    if (keys.length === 0 && path.length > 0) { paths.add(JSON.stringify(path)); return; }
    for (const key of keys) walk(node[key], [...path, key.slice(2)]);
  };
  walk(fieldsV1, []);
  return paths;
}

function managers(object) {
  const result = new Map();  // manager|operation -> { entry, paths }
  for (const entry of object.metadata?.managedFields ?? []) {
    result.set(`${entry.manager}|${entry.operation}`, { entry, paths: fromFieldsV1(entry.fieldsV1) });
  }
  return result;
}

function writeManagers(object, owned) {
  const entries = [];
  for (const { entry, paths } of owned.values()) {
    if (paths.size === 0) continue;
    entries.push({ ...entry, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(paths) });
  }
  object.metadata.managedFields = entries;
  if (entries.length === 0) delete object.metadata.managedFields;
}

// An Update-style write by `manager`: it owns the fields it set or changed.
function recordUpdate(resource, before, after, manager) {
  const owned = managers(before ?? {});
  const old = leafFields(before ?? {});
  const fresh = leafFields(after);
  const changed = new Set();
  for (const [path, value] of fresh) if (old.get(path) !== value) changed.add(path);
  for (const [path] of old) if (!fresh.has(path)) for (const { paths } of owned.values()) paths.delete(path);
  for (const { paths } of owned.values()) for (const path of changed) paths.delete(path);
  const key = `${manager}|Update`;
  if (!owned.has(key)) owned.set(key, { entry: { manager, operation: 'Update', apiVersion: resource.apiVersion, time: now() }, paths: new Set() });
  const mine = owned.get(key);
  mine.entry.time = now();
  for (const path of changed) mine.paths.add(path);
  writeManagers(after, owned);
}

// Server-side apply (approximation; see the top of this file). Returns the new object.
function applyConfiguration(resource, existing, configuration, manager, force) {
  const owned = managers(existing ?? {});
  const applied = leafFields(configuration);
  const current = leafFields(existing ?? {});
  const key = `${manager}|Apply`;
  const previous = owned.get(key)?.paths ?? new Set();
  const conflicts = [];
  for (const [path, value] of applied) {
    if (!current.has(path) || current.get(path) === value) continue;
    for (const [otherKey, { entry, paths }] of owned) {
      if (otherKey !== key && paths.has(path)) conflicts.push({ path, manager: entry.manager });
    }
  }
  if (conflicts.length > 0 && !force) {
    const causes = conflicts.map(({ path, manager: other }) => ({
      reason: 'FieldManagerConflict', message: `conflict with "${other}"`, field: `.${JSON.parse(path).join('.')}` }));
    throw new ApiError(409, 'Conflict', `Apply failed with ${conflicts.length} conflict(s): ${causes.map((c) => `${c.message}: ${c.field}`).join(', ')}`,
      { name: configuration.metadata?.name, group: resource.group, kind: resource.name, causes });
  }
  // Merge: objects recursively, lists replaced.
  const merge = (target, source) => {
    if (!isObject(source)) return clone(source);
    const result = isObject(target) ? clone(target) : {};
    for (const [k, v] of Object.entries(source)) result[k] = merge(result[k], v);
    return result;
  };
  const result = merge(existing ?? {}, configuration);
  // Fields this manager applied before, no longer applied, and owned by nobody else: removed.
  for (const path of previous) {
    if (applied.has(path)) continue;
    const ownedByOther = [...owned.entries()].some(([otherKey, { paths }]) => otherKey !== key && paths.has(path));
    if (ownedByOther) continue;
    const parts = JSON.parse(path);
    let node = result;
    for (const part of parts.slice(0, -1)) node = node?.[part];
    if (isObject(node)) delete node[parts[parts.length - 1]];
  }
  // Fields taken over by force leave their other owners; fields applied with the value they
  // already had are owned together.
  for (const { path } of conflicts) for (const { paths } of owned.values()) paths.delete(path);
  owned.set(key, { entry: { manager, operation: 'Apply', apiVersion: resource.apiVersion, time: now() }, paths: new Set(applied.keys()) });
  result.metadata ??= {};
  writeManagers(result, owned);
  return result;
}

// ---------------------------------------------------------------- defaults and validation

function randomSuffix() {
  const letters = 'bcdfghjklmnpqrstvwxz2456789';
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += letters[Math.floor(Math.random() * letters.length)];
  return suffix;
}

function applyDefaults(resource, object) {
  const name = object.metadata.name;
  switch (resource.kind) {
    case 'Namespace':
      object.metadata.labels = { ...(object.metadata.labels ?? {}), 'kubernetes.io/metadata.name': name };
      object.spec = { finalizers: ['kubernetes'], ...(object.spec ?? {}) };
      break;
    case 'PersistentVolume':
      object.spec.persistentVolumeReclaimPolicy ??= 'Retain';
      object.spec.volumeMode ??= 'Filesystem';
      break;
    case 'PersistentVolumeClaim':
      object.spec.volumeMode ??= 'Filesystem';
      break;
    case 'Pod':
      object.spec.restartPolicy ??= 'Always';
      object.spec.dnsPolicy ??= 'ClusterFirst';
      object.spec.schedulerName ??= 'default-scheduler';
      object.spec.terminationGracePeriodSeconds ??= 30;
      break;
    case 'Secret':
      object.type ??= 'Opaque';
      if (isObject(object.stringData)) {
        object.data = { ...(object.data ?? {}) };
        for (const [key, value] of Object.entries(object.stringData)) object.data[key] = Buffer.from(String(value)).toString('base64');
      }
      delete object.stringData;
      break;
    case 'MutatingWebhookConfiguration':
      for (const webhook of object.webhooks ?? []) {
        webhook.failurePolicy ??= 'Fail';
        webhook.matchPolicy ??= 'Equivalent';
        webhook.namespaceSelector ??= {};
        webhook.objectSelector ??= {};
        webhook.timeoutSeconds ??= 10;
        webhook.reinvocationPolicy ??= 'Never';
      }
      break;
    default:
      break;
  }
}

function initialStatus(resource, object) {
  switch (resource.kind) {
    case 'Namespace': return { phase: 'Active' };
    case 'PersistentVolume': return { phase: 'Available' };
    case 'PersistentVolumeClaim': return { phase: 'Pending' };
    case 'Pod': return { phase: 'Pending' };
    default: return undefined;
  }
}

const causeReason = (problem) => (problem.message === 'Required value' ? 'FieldValueRequired'
  : problem.message.startsWith('Unsupported value') ? 'FieldValueNotSupported' : 'FieldValueInvalid');

// Every object stored passes here: the npm models' verdict, as a 422 naming each field.
function validateStored(resource, object, verb, user) {
  const problems = validator.validate(object);
  const causes = [...metadataProblems(resource, object),
    ...problems.map((problem) => ({ reason: causeReason(problem), field: problem.field, message: problem.message }))];
  if (causes.length === 0) return;
  const failure = { time: now(), verb, resource: resource.qualified, namespace: object.metadata?.namespace ?? '',
    name: object.metadata?.name ?? '', user, causes };
  state.validationFailures.push(failure);
  log(`validation failed ${JSON.stringify(failure)}`);
  throw invalid(resource, object.metadata?.name ?? '', causes);
}

// ---------------------------------------------------------------- storing and watching

function matchesWatcher(watcher, object) {
  if (watcher.namespace && object.metadata?.namespace !== watcher.namespace) return false;
  return watcher.labelMatch(object) && watcher.fieldMatch(object);
}

function eventFor(watcher, record) {
  if (record.resource !== watcher.resource.name) return null;
  const newMatch = record.type !== 'DELETED' && matchesWatcher(watcher, record.object);
  const oldMatch = record.old ? matchesWatcher(watcher, record.old) : false;
  if (record.type === 'DELETED') return matchesWatcher(watcher, record.object) ? { type: 'DELETED', object: record.object } : null;
  if (record.type === 'ADDED') return newMatch ? { type: 'ADDED', object: record.object } : null;
  if (newMatch && oldMatch) return { type: 'MODIFIED', object: record.object };
  if (newMatch) return { type: 'ADDED', object: record.object };
  if (oldMatch) return { type: 'DELETED', object: record.object };
  return null;
}

function send(watcher, event) {
  if (watcher.closed) return;
  // kubectl get -w asks for Tables: each event carries a one-row Table.
  const out = watcher.table && event.type !== 'BOOKMARK' && event.type !== 'ERROR'
    ? { type: event.type, object: table(watcher.resource, [event.object], { resourceVersion: event.object.metadata.resourceVersion }) }
    : event;
  watcher.response.write(`${JSON.stringify(out)}\n`);
}

function record(type, resource, object, old) {
  const entry = { rv: Number(object.metadata.resourceVersion), type, key: keyOf(resource, object.metadata.namespace, object.metadata.name), resource: resource.name, object: clone(object), old: clone(old) };
  state.history.push(entry);
  while (state.history.length > state.config.historyWindow) {
    state.compactedThrough = state.history.shift().rv;
  }
  for (const watcher of watchers) {
    const event = eventFor(watcher, entry);
    if (event) send(watcher, event);
  }
}

// Stores a new version of an object (validated before), records the event. `old` is the
// previous version (undefined for a create).
function store(resource, object, old, type) {
  object.metadata.resourceVersion = String(++state.rv);
  const key = keyOf(resource, object.metadata.namespace, object.metadata.name);
  if (type === 'DELETED') state.objects.delete(key);
  else state.objects.set(key, object);
  record(type, resource, object, old);
}

// ---------------------------------------------------------------- the binder and namespace deletion

const pvResource = resourceFor('', 'v1', 'persistentvolumes');
const pvcResource = resourceFor('', 'v1', 'persistentvolumeclaims');
const nsResource = resourceFor('', 'v1', 'namespaces');

function objectsOf(resource) {
  return [...state.objects.entries()].filter(([key]) => key.startsWith(`${resource.name}|`)).map(([, object]) => object);
}

// A controller's write: validated like any other (the binder must never store a bad object).
function controllerWrite(resource, before, after) {
  if (equal(before, after)) return;
  validateStored(resource, after, 'update', 'system:controller');
  store(resource, after, before, 'MODIFIED');
}

const quantityBytes = (text) => {
  const match = /^([0-9.]+)([KMGTPE]i?|[mkMGTPE])?$/.exec(String(text ?? '0'));
  if (!match) return 0;
  const units = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, m: 1e-3 };
  return Number(match[1]) * (units[match[2]] ?? 1);
};

function claimNames(pv, pvc) {
  const ref = pv.spec?.claimRef;
  return ref && ref.namespace === pvc.metadata.namespace && ref.name === pvc.metadata.name && (!ref.uid || ref.uid === pvc.metadata.uid);
}

function bind(pv, pvc, boundByController) {
  const newPv = clone(pv);
  newPv.spec.claimRef = { kind: 'PersistentVolumeClaim', namespace: pvc.metadata.namespace, name: pvc.metadata.name,
    uid: pvc.metadata.uid, apiVersion: 'v1', resourceVersion: pvc.metadata.resourceVersion };
  newPv.status = { ...(newPv.status ?? {}), phase: 'Bound' };
  controllerWrite(pvResource, pv, newPv);
  const newPvc = clone(pvc);
  newPvc.spec.volumeName = pv.metadata.name;
  newPvc.metadata.annotations = { ...(newPvc.metadata.annotations ?? {}), 'pv.kubernetes.io/bind-completed': 'yes' };
  if (boundByController) newPvc.metadata.annotations['pv.kubernetes.io/bound-by-controller'] = 'yes';
  newPvc.status = { ...(newPvc.status ?? {}), phase: 'Bound', accessModes: clone(pv.spec.accessModes), capacity: clone(pv.spec.capacity) };
  controllerWrite(pvcResource, pvc, newPvc);
}

function runBinder() {
  const claims = new Map(objectsOf(pvcResource).map((pvc) => [`${pvc.metadata.namespace}/${pvc.metadata.name}`, pvc]));
  // Claims waiting for a volume.
  for (const pvc of claims.values()) {
    if (pvc.status?.phase === 'Bound' || pvc.metadata.deletionTimestamp) continue;
    const volumes = objectsOf(pvResource);
    let pv = null;
    let byController = false;
    if (pvc.spec.volumeName) {
      const named = state.objects.get(keyOf(pvResource, '', pvc.spec.volumeName));
      if (named && (!named.spec.claimRef || claimNames(named, pvc))) pv = named;
    } else {
      pv = volumes.find((volume) => claimNames(volume, pvc));
      if (!pv) {
        const wantClass = pvc.spec.storageClassName ?? '';
        const wantBytes = quantityBytes(pvc.spec.resources?.requests?.storage);
        pv = volumes.find((volume) => !volume.spec.claimRef && volume.status?.phase === 'Available' &&
          (volume.spec.storageClassName ?? '') === wantClass &&
          (pvc.spec.accessModes ?? []).every((mode) => (volume.spec.accessModes ?? []).includes(mode)) &&
          quantityBytes(volume.spec.capacity?.storage) >= wantBytes && !pvc.spec.selector);
      }
      byController = true;
    }
    if (pv) bind(pv, pvc, byController);
  }
  // Volumes whose claim went away; volumes with nothing to do.
  for (const pv of objectsOf(pvResource)) {
    const ref = pv.spec.claimRef;
    if (!ref) {
      if (pv.status?.phase !== 'Available') controllerWrite(pvResource, pv, { ...clone(pv), status: { phase: 'Available' } });
      continue;
    }
    const claim = claims.get(`${ref.namespace}/${ref.name}`);
    const claimGone = ref.uid && (!claim || claim.metadata.uid !== ref.uid);
    if (claimGone && pv.status?.phase === 'Bound') {
      if (pv.spec.persistentVolumeReclaimPolicy === 'Delete') {
        deleteNow(pvResource, pv);
      } else {
        controllerWrite(pvResource, pv, { ...clone(pv), status: { phase: 'Released' } });
      }
    }
  }
  // Claims whose volume went away.
  for (const pvc of objectsOf(pvcResource)) {
    if (pvc.status?.phase === 'Bound' && !state.objects.has(keyOf(pvResource, '', pvc.spec.volumeName))) {
      controllerWrite(pvcResource, pvc, { ...clone(pvc), status: { ...pvc.status, phase: 'Lost' } });
    }
  }
}

function deleteNow(resource, object) {
  const gone = clone(object);
  store(resource, gone, object, 'DELETED');
}

function finishNamespace(name) {
  const namespace = state.objects.get(keyOf(nsResource, '', name));
  if (!namespace || !namespace.metadata.deletionTimestamp) return;
  for (const resource of RESOURCES.filter((r) => r.namespaced)) {
    for (const object of objectsOf(resource).filter((o) => o.metadata.namespace === name)) deleteNow(resource, object);
  }
  runBinder();
  deleteNow(nsResource, state.objects.get(keyOf(nsResource, '', name)));
  saveState();
}

// ---------------------------------------------------------------- authentication and authorization

let tokenFileStamp = '';
let tokens = new Map();  // token -> { username, uid, groups }

// The API server's own audiences (its --api-audiences, by default its service account issuer).
const API_AUDIENCES = ['https://kubernetes.default.svc.cluster.local'];

// One line of the token file: comma-separated fields, a field in double quotes may hold commas
// (kube-apiserver's --token-auth-file: token,user,uid,"group1,group2"; this server adds a fifth,
// "audience1,audience2", for tokens bound to audiences as projected ServiceAccount tokens are).
function splitCsv(line) {
  const fields = [];
  let field = '';
  let quoted = false;
  for (const c of line) {
    if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) { fields.push(field); field = ''; }
    else field += c;
  }
  fields.push(field);
  return fields;
}

function readTokens() {
  if (!options.tokens) return;
  let stamp;
  try {
    const info = fs.statSync(options.tokens);
    stamp = `${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    tokens = new Map();
    tokenFileStamp = '';
    return;
  }
  if (stamp === tokenFileStamp) return;
  const fresh = new Map();
  for (const line of fs.readFileSync(options.tokens, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [token, username, uid, groups, audiences] = splitCsv(line);
    fresh.set(token.trim(), {
      username: username?.trim() || 'user', uid: uid?.trim() || '',
      groups: (groups ?? '').split(',').map((g) => g.trim()).filter((g) => g),
      // A bound ServiceAccount token carries its audiences; a static token is good for the
      // API server's own (kube-apiserver's --api-audiences).
      audiences: audiences ? audiences.split(',').map((a) => a.trim()).filter((a) => a) : API_AUDIENCES,
    });
  }
  tokens = fresh;
  tokenFileStamp = stamp;
}

function authenticate(request) {
  const header = request.headers.authorization ?? '';
  if (header.startsWith('Bearer ')) {
    readTokens();
    const user = tokens.get(header.slice(7).trim());
    // A token bound to other audiences (an agent's, for the coordinator) is no key to the API.
    return user && user.audiences.some((audience) => API_AUDIENCES.includes(audience)) ? user : null;
  }
  const socket = request.socket;
  if (options.clientCa && socket.authorized) {
    const certificate = socket.getPeerCertificate();
    if (certificate?.subject?.CN) {
      const organisations = certificate.subject.O;
      return { username: certificate.subject.CN, uid: '', groups: organisations ? [].concat(organisations) : [] };
    }
  }
  return null;
}

const ruleMatches = (rule, user, verb, resource, namespace) =>
  (!rule.user || rule.user === user.username || (user.groups ?? []).includes(rule.user)) &&
  (!rule.verb || rule.verb === '*' || rule.verb === verb) &&
  (!rule.resource || rule.resource === '*' || rule.resource === resource) &&
  (rule.namespace === undefined || rule.namespace === '*' || rule.namespace === (namespace ?? ''));

function authorize(user, verb, resource, namespace, name) {
  const denied = state.config.deny.some((rule) => ruleMatches(rule, user, verb, resource.name, namespace));
  if (!denied) return;
  const scope = resource.namespaced && namespace ? ` in the namespace "${namespace}"` : ' at the cluster scope';
  const object = name ? `${resource.qualified} "${name}" is forbidden` : `${resource.qualified} is forbidden`;
  throw new ApiError(403, 'Forbidden', `${object}: User "${user.username}" cannot ${verb} resource "${resource.name}" in API group "${resource.group}"${scope}`,
    { name, group: resource.group, kind: resource.name });
}

// ---------------------------------------------------------------- request handling

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    request.on('data', (chunk) => {
      size += chunk.length;
      if (size > 8 * 1024 * 1024) { reject(new ApiError(413, 'RequestEntityTooLarge', 'request body too large')); request.destroy(); return; }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw badRequest(`${what}: invalid JSON: ${error.message}`);
  }
}

function reply(response, code, body, headers = {}) {
  if (response.headersSent) { response.end(); return; }
  const text = JSON.stringify(body);
  response.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

// "/api/v1/namespaces/a/pods/b/status" -> { resource, namespace, name, subresource }
function parseResourcePath(parts) {
  let group;
  let version;
  let rest;
  if (parts[0] === 'api' && parts.length >= 2) { group = ''; version = parts[1]; rest = parts.slice(2); }
  else if (parts[0] === 'apis' && parts.length >= 3) { group = parts[1]; version = parts[2]; rest = parts.slice(3); }
  else return null;
  if (rest.length === 0) return null;
  let namespace = '';
  if (rest[0] === 'namespaces' && rest.length >= 3 && resourceFor(group, version, rest[2])?.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = resourceFor(group, version, rest[0]);
  if (!resource) return { unknown: true, group, version, name: rest[0] };
  return { resource, namespace, name: rest[1] ?? '', subresource: rest[2] ?? '', extra: rest.length > 3 };
}

function discovery(parts, port) {
  const path = `/${parts.join('/')}`;
  const groups = [...new Set(RESOURCES.filter((r) => r.group).map((r) => r.group))];
  const resourceList = (group, version) => ({
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version,
    resources: RESOURCES.filter((r) => r.group === group && r.version === version).flatMap((r) => {
      const verbs = r.createOnly ? ['create'] : STORED_VERBS;
      const main = { name: r.name, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs };
      if (r.shortNames.length) main.shortNames = r.shortNames;
      const list = [main];
      if (r.status) list.push({ name: `${r.name}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
      return list;
    }),
  });
  const groupEntry = (group) => ({ name: group, versions: [{ groupVersion: `${group}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${group}/v1`, version: 'v1' } });
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }] };
  if (path === '/api/v1') return resourceList('', 'v1');
  if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupEntry) };
  if (parts[0] === 'apis' && parts.length === 2 && groups.includes(parts[1])) return { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(parts[1]) };
  if (parts[0] === 'apis' && parts.length === 3 && groups.includes(parts[1]) && parts[2] === 'v1') return resourceList(parts[1], 'v1');
  if (path === '/version') {
    return { major: '1', minor: '32', gitVersion: 'v1.32.0-modelcache-test', gitCommit: '0000000000000000000000000000000000000000',
      gitTreeState: 'clean', buildDate: '2025-01-01T00:00:00Z', goVersion: `node${process.version}`, compiler: 'node', platform: `${process.platform}/${process.arch}` };
  }
  return null;
}

// OpenAPI v3, just enough for kubectl: the index, and per group/version each resource's
// PATCH operation with its GroupVersionKind and the fieldValidation parameter, from which
// kubectl learns that the server validates fields (so it sends fieldValidation=Strict and
// does no client-side schema validation). No schemas are served.
function openApi(parts) {
  const groupVersions = [...new Set(RESOURCES.map((r) => (r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`)))];
  if (parts.length === 2 && parts[1] === 'v3') {
    return { paths: Object.fromEntries(groupVersions.map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}?hash=modelcache-test` }])) };
  }
  const wanted = parts.slice(2).join('/');
  if (parts[1] !== 'v3' || !groupVersions.includes(wanted)) return null;
  const paths = {};
  for (const r of RESOURCES.filter((resource) => (resource.group ? `apis/${resource.group}/${resource.version}` : `api/${resource.version}`) === wanted)) {
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const parameters = ['dryRun', 'fieldManager', 'fieldValidation', 'force'].map((name) => ({ name, in: 'query', schema: { type: 'string' } }));
    const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
    const item = r.namespaced ? `${base}/namespaces/{namespace}/${r.name}/{name}` : `${base}/${r.name}/{name}`;
    const collection = r.namespaced ? `${base}/namespaces/{namespace}/${r.name}` : `${base}/${r.name}`;
    if (r.createOnly) {
      paths[collection] = { post: { operationId: `create${r.kind}`, 'x-kubernetes-action': 'post', 'x-kubernetes-group-version-kind': gvk, parameters, responses: {} } };
      continue;
    }
    paths[item] = { patch: { operationId: `patch${r.kind}`, 'x-kubernetes-action': 'patch', 'x-kubernetes-group-version-kind': gvk, parameters, responses: {} } };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes (modelcache test API server)', version: 'v1.32.0' }, paths, components: { schemas: {} } };
}

function wantsTable(request) {
  return /as=Table/.test(request.headers.accept ?? '');
}

function age(timestamp) {
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h`;
}

function table(resource, items, metadata) {
  const columns = [{ name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 }];
  const cells = [(o) => o.metadata.name];
  if (resource.status) { columns.push({ name: 'Status', type: 'string', format: '', description: 'status.phase', priority: 0 }); cells.push((o) => o.status?.phase ?? ''); }
  if (resource.kind === 'PersistentVolume') {
    columns.push({ name: 'Claim', type: 'string', format: '', description: 'spec.claimRef', priority: 0 });
    cells.push((o) => (o.spec.claimRef ? `${o.spec.claimRef.namespace}/${o.spec.claimRef.name}` : ''));
  }
  if (resource.kind === 'PersistentVolumeClaim') {
    columns.push({ name: 'Volume', type: 'string', format: '', description: 'spec.volumeName', priority: 0 });
    cells.push((o) => o.spec.volumeName ?? '');
  }
  columns.push({ name: 'Age', type: 'string', format: '', description: 'creationTimestamp', priority: 0 });
  cells.push((o) => age(o.metadata.creationTimestamp));
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata, columnDefinitions: columns,
    rows: items.map((o) => ({ cells: cells.map((cell) => cell(o)),
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata } })),
  };
}

function listObjects(resource, namespace, query) {
  const labelMatch = parseLabelSelector(query.get('labelSelector'));
  const fieldMatch = parseFieldSelector(resource, query.get('fieldSelector'));
  return objectsOf(resource)
    .filter((o) => !namespace || o.metadata.namespace === namespace)
    .filter((o) => labelMatch(o) && fieldMatch(o))
    .sort((a, b) => `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`));
}

function handleList(request, response, resource, namespace, query) {
  const limit = Number(query.get('limit') ?? 0);
  const token = query.get('continue');
  let items;
  let listRv = state.rv;
  let offset = 0;
  let snapshotId;
  if (token) {
    let decoded;
    try { decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')); } catch { throw badRequest('continue key is not valid'); }
    const snapshot = snapshots.get(decoded.id);
    if (!snapshot || decoded.rv < state.compactedThrough) {
      throw new ApiError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
    }
    items = snapshot.items;
    listRv = snapshot.rv;
    offset = decoded.offset;
    snapshotId = decoded.id;
  } else {
    items = listObjects(resource, namespace, query).map(clone);
  }
  let page = items.slice(offset);
  const metadata = { resourceVersion: String(listRv) };
  if (limit > 0 && page.length > limit) {
    page = page.slice(0, limit);
    if (!snapshotId) {
      snapshotId = randomUUID();
      snapshots.set(snapshotId, { rv: listRv, items });
      if (snapshots.size > 100) snapshots.delete(snapshots.keys().next().value);
    }
    metadata.continue = Buffer.from(JSON.stringify({ id: snapshotId, rv: listRv, offset: offset + limit })).toString('base64url');
    metadata.remainingItemCount = items.length - offset - limit;
  }
  if (wantsTable(request)) return reply(response, 200, table(resource, page, metadata));
  // Items of a list carry no kind or apiVersion, as a real server's typed lists.
  const bare = page.map((o) => { const { kind, apiVersion, ...rest } = o; return rest; });
  reply(response, 200, { kind: `${resource.kind}List`, apiVersion: resource.apiVersion, metadata, items: bare });
}

function handleWatch(request, response, resource, namespace, query) {
  const labelMatch = parseLabelSelector(query.get('labelSelector'));
  const fieldMatch = parseFieldSelector(resource, query.get('fieldSelector'));
  const from = query.get('resourceVersion') ?? '';
  const bookmarks = query.get('allowWatchBookmarks') === 'true';
  const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 1800);
  const watcher = { resource, namespace, labelMatch, fieldMatch, response, closed: false, table: wantsTable(request) };
  const fromNumber = Number(from);
  if (from !== '' && from !== '0' && (!Number.isInteger(fromNumber) || fromNumber < 0)) {
    throw badRequest(`invalid resourceVersion "${from}"`);
  }
  if (from !== '' && from !== '0' && fromNumber < state.compactedThrough) {
    const gone = statusObject(410, 'Expired', `too old resource version: ${from} (${state.compactedThrough + 1})`);
    if (state.config.goneAs === 'status') return reply(response, 410, gone);
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
    return undefined;
  }
  if (from !== '' && from !== '0' && fromNumber > state.rv) {
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.end(`${JSON.stringify({ type: 'ERROR', object: statusObject(504, 'Timeout', `Too large resource version: ${from}, current: ${state.rv}`) })}\n`);
    return undefined;
  }
  response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  response.flushHeaders();
  if (from === '' || from === '0') {
    for (const object of listObjects(resource, namespace, query)) send(watcher, { type: 'ADDED', object });
  } else {
    for (const entry of state.history) {
      if (entry.rv <= fromNumber) continue;
      const event = eventFor(watcher, entry);
      if (event) send(watcher, event);
    }
  }
  watchers.add(watcher);
  const finish = (destroy) => {
    if (watcher.closed) return;
    watcher.closed = true;
    watchers.delete(watcher);
    clearInterval(watcher.bookmarkTimer);
    clearTimeout(watcher.timeout);
    if (destroy) response.socket?.destroy();
    else response.end();
  };
  watcher.finish = finish;
  if (bookmarks) {
    watcher.bookmarkTimer = setInterval(() => send(watcher, { type: 'BOOKMARK',
      object: { kind: resource.kind, apiVersion: resource.apiVersion, metadata: { resourceVersion: String(state.rv) } } }),
      state.config.bookmarkIntervalMs);
  }
  watcher.timeout = setTimeout(() => finish(false), Math.max(1, timeoutSeconds) * 1000);
  request.on('close', () => finish(false));
  return undefined;
}

function checkNamespaceForCreate(resource, namespace) {
  if (!resource.namespaced) return;
  const ns = state.objects.get(keyOf(nsResource, '', namespace));
  if (!ns) throw notFound(nsResource, namespace);
  if (ns.metadata.deletionTimestamp) {
    throw new ApiError(403, 'Forbidden', `${resource.name} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
      { name: namespace, kind: 'namespaces' });
  }
}

function checkKind(resource, object) {
  if (!isObject(object)) throw badRequest('the body is not an object');
  object.apiVersion ??= resource.apiVersion;
  object.kind ??= resource.kind;
  if (object.apiVersion !== resource.apiVersion || object.kind !== resource.kind) {
    throw badRequest(`the API version in the data (${object.apiVersion}) does not match the expected API version (${resource.apiVersion}), or kind ${object.kind} is not ${resource.kind}`);
  }
  object.metadata ??= {};
  if (!isObject(object.metadata)) throw badRequest('metadata is not an object');
}

// `appliedFields`: the managedFields of a server-side apply that creates the object.
function createObject(resource, namespace, object, user, query, appliedFields) {
  checkKind(resource, object);
  if (resource.namespaced) {
    if (object.metadata.namespace && object.metadata.namespace !== namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    object.metadata.namespace = namespace;
  } else {
    delete object.metadata.namespace;
  }
  if (!object.metadata.name) {
    if (!object.metadata.generateName) throw invalid(resource, '', [{ reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    object.metadata.name = `${object.metadata.generateName}${randomSuffix()}`;
  }
  const name = object.metadata.name;
  checkNamespaceForCreate(resource, namespace);
  if (state.objects.has(keyOf(resource, namespace, name))) {
    throw new ApiError(409, 'AlreadyExists', `${resource.qualified} "${name}" already exists`, { name, group: resource.group, kind: resource.name });
  }
  for (const field of ['uid', 'resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'managedFields']) delete object.metadata[field];
  object.metadata.uid = randomUUID();
  object.metadata.creationTimestamp = now();
  if (resource.generation) object.metadata.generation = 1;
  if (resource.spec) object.spec ??= {};
  applyDefaults(resource, object);
  if (resource.status) object.status = initialStatus(resource, object);
  if (appliedFields) object.metadata.managedFields = appliedFields;
  else recordUpdate(resource, undefined, object, query.get('fieldManager') || 'unknown');
  validateStored(resource, object, 'create', user.username);
  if (query.get('dryRun') === 'All') return object;
  store(resource, object, undefined, 'ADDED');
  return object;
}

// The common end of update, patch and apply: `proposed` is the object as the client wants it.
function updateObject(resource, existing, proposed, subresource, user, verb, query, managerUpdate = true) {
  checkKind(resource, proposed);
  const name = existing.metadata.name;
  if (proposed.metadata.name && proposed.metadata.name !== name) {
    throw badRequest(`the name of the object (${proposed.metadata.name}) does not match the name on the URL (${name})`);
  }
  if (proposed.metadata.uid && proposed.metadata.uid !== existing.metadata.uid) {
    throw conflict(resource, name, `Precondition failed: UID in precondition: ${proposed.metadata.uid}, UID in object meta: ${existing.metadata.uid}`);
  }
  if (proposed.metadata.resourceVersion && proposed.metadata.resourceVersion !== existing.metadata.resourceVersion) {
    throw conflict(resource, name, 'the object has been modified; please apply your changes to the latest version and try again');
  }
  let updated;
  if (subresource === 'status') {
    updated = clone(existing);
    updated.status = clone(proposed.status);
  } else {
    updated = clone(proposed);
    if (resource.status) updated.status = clone(existing.status);
  }
  for (const field of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'namespace', 'generation']) {
    if (existing.metadata[field] === undefined) delete updated.metadata[field];
    else updated.metadata[field] = existing.metadata[field];
  }
  updated.metadata.name = name;
  if (resource.kind === 'Secret') applyDefaults(resource, updated);
  if (resource.kind === 'MutatingWebhookConfiguration') applyDefaults(resource, updated);
  if (resource.generation) {
    const body = (o) => { const { metadata, status, ...rest } = o; return rest; };
    if (!equal(body(existing), body(updated))) updated.metadata.generation = (existing.metadata.generation ?? 0) + 1;
  }
  if (managerUpdate) recordUpdate(resource, existing, updated, query.get('fieldManager') || 'unknown');
  updated.metadata.resourceVersion = existing.metadata.resourceVersion;
  // Nothing changed (ownership included, timestamps not): no new resourceVersion, no event,
  // as a real server.
  const comparable = (o) => {
    const copy = clone(o);
    for (const entry of copy.metadata.managedFields ?? []) delete entry.time;
    return copy;
  };
  if (equal(comparable(existing), comparable(updated))) return existing;
  validateStored(resource, updated, verb, user.username);
  if (query.get('dryRun') === 'All') return updated;
  // The last finalizer removed from an object being deleted: it goes now.
  if (updated.metadata.deletionTimestamp && (updated.metadata.finalizers ?? []).length === 0) {
    deleteNow(resource, updated);
    return updated;
  }
  store(resource, updated, existing, 'MODIFIED');
  return updated;
}

function deleteObject(resource, existing, deleteOptions, user, query) {
  const name = existing.metadata.name;
  const preconditions = deleteOptions?.preconditions ?? {};
  if (preconditions.uid && preconditions.uid !== existing.metadata.uid) {
    throw conflict(resource, name, `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${existing.metadata.uid}`);
  }
  if (preconditions.resourceVersion && preconditions.resourceVersion !== existing.metadata.resourceVersion) {
    throw conflict(resource, name, `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`);
  }
  if (query.get('dryRun') === 'All') return existing;
  if (resource.kind === 'Namespace') {
    if (existing.metadata.deletionTimestamp) return existing;
    const terminating = clone(existing);
    terminating.metadata.deletionTimestamp = now();
    terminating.status = { ...(terminating.status ?? {}), phase: 'Terminating' };
    store(resource, terminating, existing, 'MODIFIED');
    // The namespace controller's work, right after this answer.
    setImmediate(() => finishNamespace(name));
    return terminating;
  }
  if ((existing.metadata.finalizers ?? []).length > 0) {
    if (existing.metadata.deletionTimestamp) return existing;
    const deleting = clone(existing);
    deleting.metadata.deletionTimestamp = now();
    deleting.metadata.deletionGracePeriodSeconds = 0;
    store(resource, deleting, existing, 'MODIFIED');
    return deleting;
  }
  const gone = clone(existing);
  store(resource, gone, existing, 'DELETED');
  return gone;
}

// As kube-apiserver: the audiences asked for (spec.audiences, else the API server's own) must
// meet the token's; status.audiences is what they share.
function tokenReview(object) {
  readTokens();
  const user = tokens.get(object.spec?.token ?? '');
  const wanted = object.spec?.audiences?.length ? object.spec.audiences : API_AUDIENCES;
  const shared = user ? wanted.filter((audience) => user.audiences.includes(audience)) : [];
  if (!user) object.status = { authenticated: false, error: 'invalid bearer token' };
  else if (shared.length === 0) {
    object.status = { authenticated: false, error: `invalid bearer token, token audiences ${JSON.stringify(user.audiences)} is invalid for the target audiences ${JSON.stringify(wanted)}` };
  } else {
    object.status = { authenticated: true, user: { username: user.username, uid: user.uid, groups: user.groups }, audiences: shared };
  }
  return object;
}

function subjectAccessReview(object) {
  const spec = object.spec ?? {};
  const attributes = spec.resourceAttributes ?? {};
  const subject = { username: spec.user ?? '', groups: spec.groups ?? [] };
  const allowed = state.config.allow.some((rule) => ruleMatches(rule, subject, attributes.verb, attributes.resource, attributes.namespace) &&
    (rule.group === undefined || rule.group === (attributes.group ?? '')));
  object.status = allowed ? { allowed: true, reason: 'allowed by the test server\'s rules' } : { allowed: false, reason: 'no rule allows it' };
  return object;
}

async function handleResource(request, response, target, query, user) {
  const { resource, namespace, name, subresource } = target;
  const method = request.method;
  const watch = query.get('watch') === 'true' || query.get('watch') === '1';
  let verb;
  if (method === 'GET') verb = name ? 'get' : watch ? 'watch' : 'list';
  else if (method === 'POST' && !name) verb = 'create';
  else if (method === 'PUT' && name) verb = 'update';
  else if (method === 'PATCH' && name) verb = 'patch';
  else if (method === 'DELETE' && name) verb = 'delete';
  else throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  target.verb = verb;
  if (subresource && (subresource !== 'status' || !resource.status)) throw notFound(resource, `${name}/${subresource}`);
  if (resource.createOnly && verb !== 'create') throw new ApiError(405, 'MethodNotAllowed', `${resource.name} support create only`);
  if (resource.namespaced && !namespace && !['list', 'watch'].includes(verb)) throw notFound(resource, name);
  authorize(user, verb, resource, namespace, name);

  if (verb === 'list') return handleList(request, response, resource, namespace, query);
  if (verb === 'watch') return handleWatch(request, response, resource, namespace, query);
  const key = keyOf(resource, namespace, name);
  const existing = state.objects.get(key);
  if (verb === 'get') {
    if (!existing) throw notFound(resource, name);
    return reply(response, 200, existing);
  }
  const text = await readBody(request);
  const contentType = (request.headers['content-type'] ?? 'application/json').split(';')[0].trim();
  let result;
  let code = 200;
  if (verb === 'create') {
    if (!['application/json', 'application/yaml', '*/*'].includes(contentType)) throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${contentType}`);
    const object = contentType === 'application/yaml' ? loadYaml(text) : parseJson(text, 'body');
    if (resource.kind === 'TokenReview') { checkKind(resource, object); validateStored(resource, object, verb, user.username); return reply(response, 201, tokenReview(object)); }
    if (resource.kind === 'SubjectAccessReview') { checkKind(resource, object); validateStored(resource, object, verb, user.username); return reply(response, 201, subjectAccessReview(object)); }
    result = createObject(resource, namespace, object, user, query);
    code = 201;
  } else if (verb === 'update') {
    if (!existing) throw notFound(resource, name);
    result = updateObject(resource, existing, parseJson(text, 'body'), subresource, user, verb, query);
  } else if (verb === 'patch') {
    if (contentType === 'application/apply-patch+yaml') {
      const manager = query.get('fieldManager');
      if (!manager) throw new ApiError(422, 'Invalid', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
      const configuration = loadYaml(text);
      checkKind(resource, configuration);
      if (configuration.metadata.name && configuration.metadata.name !== name) throw badRequest(`the name of the object (${configuration.metadata.name}) does not match the name on the URL (${name})`);
      const force = query.get('force') === 'true';
      if (!existing) {
        if (subresource) throw notFound(resource, name);
        const created = applyConfiguration(resource, undefined, configuration, manager, force);
        created.metadata.name = name;
        result = createObject(resource, namespace, created, user, query, created.metadata.managedFields);
        code = 201;
      } else {
        const proposed = applyConfiguration(resource, existing, configuration, manager, force);
        delete proposed.metadata.resourceVersion;
        if (!configuration.metadata.resourceVersion) proposed.metadata.resourceVersion = existing.metadata.resourceVersion;
        result = updateObject(resource, existing, proposed, subresource, user, verb, query, false);
      }
    } else {
      if (!existing) throw notFound(resource, name);
      const patch = parseJson(text, 'patch');
      let proposed;
      if (contentType === 'application/merge-patch+json') proposed = mergePatch(existing, patch);
      else if (contentType === 'application/strategic-merge-patch+json') proposed = strategicMergePatch(existing, patch);
      else if (contentType === 'application/json-patch+json') proposed = jsonPatch(existing, patch);
      else throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
      // A resourceVersion in a patch is a precondition; without one the patch applies to the latest.
      const wanted = isObject(patch) ? patch.metadata?.resourceVersion : undefined;
      if (!wanted) proposed.metadata.resourceVersion = existing.metadata.resourceVersion;
      result = updateObject(resource, existing, proposed, subresource, user, verb, query);
    }
  } else if (verb === 'delete') {
    if (!existing) throw notFound(resource, name);
    const deleteOptions = text.trim() ? parseJson(text, 'DeleteOptions') : {};
    result = deleteObject(resource, existing, deleteOptions, user, query);
  }
  if (resource.kind === 'PersistentVolume' || resource.kind === 'PersistentVolumeClaim') {
    // The binder is a controller: its failure is not the request's (the request's object is
    // stored); it is logged and, if it was a validation failure, recorded for the test.
    try {
      runBinder();
    } catch (error) {
      log(`binder failed after ${request.method} ${request.url}: ${error.message}`);
    }
    const latest = state.objects.get(key);
    if (latest && verb !== 'delete') result = latest;
  }
  saveState();
  reply(response, code, result);
  return undefined;
}

function handleTest(request, response, parts) {
  const what = parts[1];
  if (what === 'validation-failures' && request.method === 'GET') return reply(response, 200, { items: state.validationFailures });
  if (what === 'requests' && request.method === 'GET') return reply(response, 200, { items: requests });
  if (what === 'requests' && request.method === 'DELETE') { requests.length = 0; return reply(response, 200, {}); }
  if (what === 'compact' && request.method === 'POST') {
    state.compactedThrough = state.rv;
    state.history = [];
    snapshots.clear();
    saveState();
    return reply(response, 200, { compactedThrough: String(state.rv) });
  }
  if (what === 'drop-watches' && request.method === 'POST') {
    const count = watchers.size;
    for (const watcher of [...watchers]) watcher.finish(true);
    return reply(response, 200, { dropped: count });
  }
  if (what === 'config' && request.method === 'GET') return reply(response, 200, state.config);
  if (what === 'config' && request.method === 'POST') {
    return readBody(request).then((text) => {
      Object.assign(state.config, parseJson(text, 'config'));
      while (state.history.length > state.config.historyWindow) state.compactedThrough = state.history.shift().rv;
      saveState();
      reply(response, 200, state.config);
    });
  }
  throw notFound({ qualified: '_test', name: '_test', group: '' }, what ?? '');
}

async function handle(request, response, port) {
  const url = new URL(request.url, 'http://localhost');
  const parts = url.pathname.split('/').filter((part) => part);
  const entry = { method: request.method, path: url.pathname, query: url.search.slice(1), verb: '', resource: '', group: '', namespace: '', name: '', subresource: '', user: '', code: 0 };
  response.on('finish', () => { entry.code = response.statusCode; });
  let target;
  try {
    if (parts[0] === '_test') return await handleTest(request, response, parts);
    if (['/healthz', '/readyz', '/livez'].includes(url.pathname)) {
      response.writeHead(200, { 'Content-Type': 'text/plain' });
      return response.end('ok');
    }
    if (url.pathname === '/version') return reply(response, 200, discovery(parts, port));
    const user = authenticate(request);
    if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    entry.user = user.username;
    requests.push(entry);
    if (requests.length > 20000) requests.shift();
    const document = discovery(parts, port);
    if (document) return reply(response, 200, document);
    if (parts[0] === 'openapi') {
      const document = openApi(parts);
      if (!document) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${url.pathname}: only the OpenAPI v3 index and path lists are served)`);
      return reply(response, 200, document);
    }
    target = parseResourcePath(parts);
    if (!target || target.unknown || target.extra) throw new ApiError(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    Object.assign(entry, { resource: target.resource.name, group: target.resource.group, namespace: target.namespace, name: target.name, subresource: target.subresource });
    await handleResource(request, response, target, url.searchParams, user);
  } catch (error) {
    if (error instanceof ApiError) {
      reply(response, error.code, statusObject(error.code, error.reason, error.message, error.details));
    } else {
      log(`internal error ${request.method} ${request.url}: ${error.stack}`);
      reply(response, 500, statusObject(500, 'InternalError', `internal error: ${error.message}`));
    }
  } finally {
    entry.verb = target?.verb ?? '';
    log(`${request.method} ${request.url} ${response.statusCode} ${entry.user}`);
  }
  return undefined;
}

// ---------------------------------------------------------------- start

loadState();
// A new cluster has its system namespaces (and so a resourceVersion above 0, as a real one).
if (state.rv === 0) {
  for (const name of ['default', 'kube-node-lease', 'kube-public', 'kube-system']) {
    const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, uid: randomUUID(), creationTimestamp: now() } };
    applyDefaults(nsResource, namespace);
    namespace.status = initialStatus(nsResource, namespace);
    store(nsResource, namespace, undefined, 'ADDED');
  }
  saveState();
}
// A namespace left Terminating by a server that stopped mid-deletion finishes now.
for (const namespace of objectsOf(nsResource)) if (namespace.metadata.deletionTimestamp) finishNamespace(namespace.metadata.name);
const tls = options.tlsCert
  ? { cert: fs.readFileSync(options.tlsCert), key: fs.readFileSync(options.tlsKey),
      ...(options.clientCa ? { ca: fs.readFileSync(options.clientCa), requestCert: true, rejectUnauthorized: false } : {}) }
  : null;
let boundPort = 0;
const server = tls ? https.createServer(tls, (q, s) => handle(q, s, boundPort)) : http.createServer((q, s) => handle(q, s, boundPort));
server.keepAliveTimeout = 30000;
server.requestTimeout = 0;  // watches are long
server.listen(options.port, '127.0.0.1', () => {
  boundPort = server.address().port;
  if (options.portFile) {
    fs.writeFileSync(`${options.portFile}.tmp`, String(boundPort));
    fs.renameSync(`${options.portFile}.tmp`, options.portFile);
  }
  log(`kube test API server listening on 127.0.0.1:${boundPort} (${tls ? 'https' : 'http'}), state ${options.state}, rv ${state.rv}, ${state.objects.size} objects`);
});
const stop = () => { server.close(); for (const watcher of [...watchers]) watcher.finish(true); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
