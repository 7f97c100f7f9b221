// Validates Kubernetes objects (multi-document YAML on stdin) against the API, offline, with
// tests/testing/kube_validation.mjs (JSON schemas from kubernetes-models, unknown fields by
// the @kubernetes/client-node round trip).
// Usage: node validate_k8s.mjs TOOLS_DIR LABEL < rendered.yaml
// Prints one line per problem ("LABEL: Kind/name: ...") and exits 1 if there was any.
import { readFileSync } from 'node:fs';
import { isCustomResource, makeValidator } from '../testing/kube_validation.mjs';

const [toolsDir, label] = process.argv.slice(2);
const validator = await makeValidator(toolsDir);
// Plain YAML: client-node's own loadAllYaml returns typed objects, already without unknown fields.
const { loadAll } = validator.require('js-yaml');

const objects = loadAll(readFileSync(0, 'utf8')).filter((object) => object);
const problems = [];
let checkedTyped = 0;
for (const object of objects) {
  const where = `${label}: ${object.kind ?? '?'}/${object.metadata?.name ?? '?'}`;
  const found = validator.validate(object);
  for (const problem of found) {
    const field = problem.field ? `${problem.field}: ` : '';
    problems.push(`${where}: ${problem.check === 'schema' ? 'schema: ' : ''}${field}${problem.message}`);
  }
  if (!found.some((problem) => problem.check === 'model') && !isCustomResource(object.apiVersion)) ++checkedTyped;
}
for (const problem of problems) console.log(problem);
console.log(`${label}: ${objects.length} objects, ${checkedTyped} checked for unknown fields, ${problems.length} problems`);
process.exit(problems.length === 0 && objects.length > 0 ? 0 : 1);
