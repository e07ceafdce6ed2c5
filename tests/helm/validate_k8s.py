#!/usr/bin/python3
"""Strict decoding of rendered manifests into the Kubernetes API types.

The types are the Kubernetes Python client's generated models (Debian package
python3-kubernetes): each model lists its fields (attribute_map) and their types
(openapi_types) as the API's OpenAPI document defines them, and its constructor rejects a
missing required field. A field the model does not know is an error here, as it is for
`kubectl apply --validate=strict` (the API server's strict field validation); the client
itself would drop it silently, so the walk below checks every field before the model is built.

Usage: validate_k8s.py MANIFESTS.yaml...   (exit 1 with one line per error)
Kinds outside the core API (custom resources such as ServiceMonitor) are left to
validate_models.mjs and only listed here.
"""
import re
import sys

import kubernetes.client as k8s
import yaml

# apiVersion group -> the model class prefix the client uses.
GROUP_PREFIX = {
    "": "", "apps": "", "batch": "", "policy": "", "rbac.authorization.k8s.io": "",
    "scheduling.k8s.io": "", "networking.k8s.io": "", "storage.k8s.io": "",
}
PRIMITIVES = {"str": str, "bool": bool, "float": (int, float), "int": int}


def model_for(api_version, kind):
    group, _, version = api_version.rpartition("/")
    if group not in GROUP_PREFIX:
        return None
    name = version[0].upper() + version[1:] + kind
    cls = getattr(k8s, name, None)
    if cls is None:
        raise ValueError(f"{api_version} {kind}: no such Kubernetes API type")
    return cls


def check(value, type_name, path, errors):
    """Appends an error for every field or type the API type does not allow."""
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, item in enumerate(value):
            check(item, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map")
            return
        for k, item in value.items():
            check(item, m.group(1), f"{path}.{k}", errors)
        return
    if type_name in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[type_name]) and not (
            type_name in ("int", "float") and isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: expected {type_name}, got {type(value).__name__} {value!r}")
        return
    if type_name in ("object", "datetime", "date"):
        return  # IntOrString, Quantity and RawExtension are "object" in the client
    cls = getattr(k8s, type_name)
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({type_name})")
        return
    by_json = {json: attr for attr, json in cls.attribute_map.items()}
    for key, item in value.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: unknown field in {type_name}")
            continue
        check(item, cls.openapi_types[by_json[key]], f"{path}.{key}", errors)


def build(doc, cls):
    """Builds the model with the client's own deserializer: required fields are enforced."""
    client = k8s.ApiClient()
    client._ApiClient__deserialize(doc, cls.__name__)


def main(path):
    errors, kinds = [], []
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        errors.append("no manifests")
    for i, doc in enumerate(docs):
        where = f"document {i + 1} ({doc.get('kind')} {doc.get('metadata', {}).get('name')})"
        try:
            cls = model_for(doc["apiVersion"], doc["kind"])
        except (KeyError, ValueError) as e:
            errors.append(f"{where}: {e}")
            continue
        if cls is None:
            kinds.append(f"{doc['apiVersion']}/{doc['kind']} (custom resource: not checked here)")
            continue
        before = len(errors)
        check(doc, cls.__name__, where, errors)
        if len(errors) == before:
            try:
                build(doc, cls)
            except ValueError as e:
                errors.append(f"{where}: {e}")
        kinds.append(f"{doc['apiVersion']}/{doc['kind']}")
    for e in errors:
        print(f"validate_k8s: {path}: {e}", file=sys.stderr)
    if not errors:
        print(f"validate_k8s: {path}: {len(docs)} manifests valid ({', '.join(kinds)})")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: validate_k8s.py MANIFESTS.yaml...")
    sys.exit(max(main(p) for p in sys.argv[1:]))
