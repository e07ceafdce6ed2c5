// Validates rendered manifests against the JSON schemas of the Kubernetes API (kubernetes-models:
// the API's OpenAPI document compiled to validators) and of the Prometheus Operator's CRDs
// (@kubernetes-models/prometheus-operator, for ServiceMonitor). Checks types, formats, enums,
// patterns and required fields; these schemas do not reject unknown fields (validate_k8s.py
// does that for the core API kinds).
//
// Usage: node validate_models.mjs MANIFESTS.yaml...   (exit 1 with one line per error)
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

// The module that exports the model class of an apiVersion/kind.
function modulePath(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

async function validate(doc) {
  let mod;
  try {
    mod = await import(modulePath(doc.apiVersion, doc.kind));
  } catch (e) {
    return `no schema for ${doc.apiVersion} ${doc.kind} (${e.code ?? e.message})`;
  }
  const Model = mod[doc.kind];
  try {
    new Model(doc).validate();
    return null;
  } catch (e) {
    return e.message;
  }
}

async function validateFile(path) {
  const docs = yaml.loadAll(readFileSync(path, "utf8")).filter((d) => d != null);
  let failed = docs.length === 0;
  if (failed) console.error(`validate_models: ${path}: no manifests`);
  for (const [i, doc] of docs.entries()) {
    const error = await validate(doc);
    if (error) {
      failed = true;
      console.error(`validate_models: ${path}: document ${i + 1} (${doc.kind} ${doc.metadata?.name}): ${error}`);
    }
  }
  if (!failed) console.log(`validate_models: ${path}: ${docs.length} manifests valid`);
  return failed;
}

const paths = process.argv.slice(2);
if (paths.length === 0) {
  console.error("usage: node validate_models.mjs MANIFESTS.yaml...");
  process.exit(2);
}
let failed = false;
for (const path of paths) failed = (await validateFile(path)) || failed;
process.exit(failed ? 1 : 0);
