// The test API server (tests/testing/kube_api_server.mjs) against the real
// @kubernetes/client-node 1.4.0: it must behave like the API server that client knows. Lists
// (pages), typed reads, a 422 with causes, a raw watch with bookmarks, and client-node's own
// informer (list, then watch) seeing adds, updates and deletes.
// Usage: node client_node_test.mjs TOOLS_DIR   (exit 0: passed, 1: failed, 77: skipped)
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const toolsDir = resolve(process.argv[2] ?? '');
const here = dirname(fileURLToPath(import.meta.url));
const clientPath = join(toolsDir, 'node_modules/@kubernetes/client-node/dist/index.js');
if (!existsSync(clientPath)) {
  console.log(`skip: @kubernetes/client-node not installed in ${toolsDir} (run scripts/setup.sh)`);
  process.exit(77);
}
const k8s = await import(pathToFileURL(clientPath).href);

const dir = mkdtempSync(join(tmpdir(), 'modelcache-client-node-'));
const path = (name) => join(dir, name);
let server;
const failures = [];
const check = (condition, what) => { if (!condition) failures.push(what); console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`); };
const until = async (predicate, what, ms = 10000) => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (predicate()) { check(true, what); return true; }
    await new Promise((r) => setTimeout(r, 20));
  }
  check(false, `in time: ${what}`);
  return false;
};

try {
  // A test CA and a server certificate for 127.0.0.1.
  const openssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path('ca.key'), '-out', path('ca.pem'), '-days', '1', '-subj', '/CN=test-ca');
  writeFileSync(path('san.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path('server.key'), '-out', path('server.csr'), '-subj', '/CN=server');
  openssl('x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca.key'), '-CAcreateserial', '-out', path('server.pem'), '-days', '1', '-extfile', path('san.cnf'));
  writeFileSync(path('tokens.csv'), 'node-token,node-test,uid-1\n');

  server = spawn(process.execPath, [join(here, '../testing/kube_api_server.mjs'), '--tools', toolsDir, '--state', path('state.json'),
    '--port-file', path('port'), '--tokens', path('tokens.csv'), '--tls-cert', path('server.pem'), '--tls-key', path('server.key'),
    '--bookmark-ms', '200'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverLog = '';
  server.stderr.on('data', (chunk) => { serverLog += chunk; });
  if (!(await until(() => existsSync(path('port')), 'the server starts'))) throw new Error(serverLog);
  const port = Number(readFileSync(path('port'), 'utf8'));

  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: `https://127.0.0.1:${port}`, caFile: path('ca.pem') }],
    users: [{ name: 'test', token: 'node-token' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  const core = kc.makeApiClient(k8s.CoreV1Api);

  await core.createNamespace({ body: { metadata: { name: 'team-a' } } });
  await core.createPersistentVolume({ body: { metadata: { name: 'models' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'],
    nfs: { server: '10.0.0.5', path: '/export' }, storageClassName: '', claimRef: { namespace: 'team-a', name: 'cache' } } } });
  for (const name of ['cache', 'other-1', 'other-2']) {
    await core.createNamespacedPersistentVolumeClaim({ namespace: 'team-a', body: { metadata: { name, labels: { app: name === 'cache' ? 'model' : 'other' } },
      spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Gi' } }, storageClassName: '', ...(name === 'cache' ? { volumeName: 'models' } : {}) } } });
  }
  const pv = await core.readPersistentVolume({ name: 'models' });
  check(pv.status?.phase === 'Bound' && pv.spec.claimRef.uid, 'typed read: the PV is bound, with the claim\'s uid');
  check(pv.metadata.creationTimestamp instanceof Date, 'creationTimestamp parses as a date');

  // Pages through limit/continue.
  const names = [];
  let token;
  let pages = 0;
  do {
    const page = await core.listPersistentVolumeClaimForAllNamespaces({ limit: 2, _continue: token });
    names.push(...page.items.map((item) => item.metadata.name));
    token = page.metadata._continue;
    pages++;
  } while (token);
  check(pages === 2 && names.join(',') === 'cache,other-1,other-2', `two pages, every claim once (${names})`);
  const selected = await core.listNamespacedPersistentVolumeClaim({ namespace: 'team-a', labelSelector: 'app=model', fieldSelector: 'metadata.name=cache' });
  check(selected.items.length === 1, 'label and field selectors');

  // A 422 that names the field.
  try {
    await core.createPersistentVolume({ body: { metadata: { name: 'bad' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], nfs: { server: 'x' } } } });
    check(false, 'an invalid PV is refused');
  } catch (error) {
    const body = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    check(error.code === 422 && body?.details?.causes?.some((cause) => cause.field === 'spec.nfs.path'), `422 names spec.nfs.path (${error.code})`);
  }

  // A raw watch with bookmarks.
  const listed = await core.listNamespace();
  const seen = [];
  const watch = new k8s.Watch(kc);
  const request = await watch.watch('/api/v1/namespaces', { allowWatchBookmarks: true, resourceVersion: listed.metadata.resourceVersion },
    (type, object) => seen.push(`${type} ${object.metadata?.name ?? ''}`), () => {});
  await core.createNamespace({ body: { metadata: { name: 'team-b' } } });
  await until(() => seen.includes('ADDED team-b') && seen.some((event) => event.startsWith('BOOKMARK')), 'watch: ADDED and a BOOKMARK');
  request.abort();

  // client-node's informer: list, then watch.
  const informer = k8s.makeInformer(kc, '/api/v1/namespaces/team-a/persistentvolumeclaims',
    () => core.listNamespacedPersistentVolumeClaim({ namespace: 'team-a' }));
  const events = [];
  informer.on('add', (object) => events.push(`add ${object.metadata.name}`));
  informer.on('update', (object) => events.push(`update ${object.metadata.name}`));
  informer.on('delete', (object) => events.push(`delete ${object.metadata.name}`));
  informer.on('error', (error) => events.push(`error ${error}`));
  await informer.start();
  await until(() => events.includes('add other-2'), 'informer: the listed claims');
  await core.createNamespacedPersistentVolumeClaim({ namespace: 'team-a', body: { metadata: { name: 'late' },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } } });
  await core.patchNamespacedPersistentVolumeClaim({ namespace: 'team-a', name: 'late', body: { metadata: { labels: { changed: 'yes' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  await core.deleteNamespacedPersistentVolumeClaim({ namespace: 'team-a', name: 'late' });
  await until(() => events.includes('delete late'), 'informer: add, update and delete of a new claim');
  check(events.includes('add late') && events.includes('update late'), `informer events in order (${events.join(', ')})`);
  check(!events.some((event) => event.startsWith('error')), 'no informer errors');
  await informer.stop();

  const recorded = JSON.parse(execFileSync('curl', ['-s', '--cacert', path('ca.pem'), `https://127.0.0.1:${port}/_test/validation-failures`]).toString());
  check(recorded.items.length === 1 && recorded.items[0].name === 'bad', 'the only validation failure is the bad PV');
} catch (error) {
  check(false, `no exception: ${error.stack ?? error}`);
} finally {
  server?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
console.log(failures.length === 0 ? 'client-node test: passed' : `client-node test: ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
