"""Static checks of the committed spec (openapi/openapi.json and .yaml).

1. Both files are valid OpenAPI 3.0 (openapi-spec-validator) and are the
   same document.
2. Every component schema has a description; every object schema used as a
   request body has an example; every example validates against its schema.
3. Declared responses follow from what the server's layers can answer:
   a body means 400, 413 and 415; a bearer token means 401; every rate-limited
   route declares 429; every operation declares a 2xx and a 503 (the request
   timeout) and each error response is a problem document.
4. Links name existing operations.

Usage: validate_spec.py OPENAPI_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# Routes outside admission and the budgets (src/protection/layers.rs,
# `is_probe`); every other route can answer 429 (its address has too many
# requests in progress) and 503 (overloaded).
UNLIMITED = {"/healthz", "/health", "/readyz", "/livez"}
# Health probes answer 503 with their own report, not a problem document.
OWN_503 = {"/healthz", "/health", "/readyz"}
# Touches nothing, so it cannot time out.
NO_503 = {"/livez"}
PROBLEM = "application/problem+json"


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML speaks YAML 1.1, where an unquoted 2026-01-15T09:30:00Z is a
    timestamp; the spec is YAML 1.2 (serde_yaml), where it is a string."""


Yaml12Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def main(root: Path) -> int:
    errors: list[str] = []
    spec = json.loads((root / "openapi.json").read_text())
    as_yaml = yaml.load((root / "openapi.yaml").read_text(), Loader=Yaml12Loader)
    validate(spec)
    validate(as_yaml)
    if spec != as_yaml:
        errors.append("openapi.json and openapi.yaml differ")

    schemas = spec["components"]["schemas"]
    registry = Registry().with_resource(
        "urn:spec", Resource.from_contents(spec, default_specification=DRAFT4)
    )

    def check_example(where: str, schema: dict, example: object) -> None:
        subject = {"$ref": f"urn:spec#/components/schemas/{where}"} if where in schemas else schema
        validator = OAS30Validator(subject, registry=registry)
        for e in validator.iter_errors(example):
            errors.append(f"example of {where} does not fit its schema: {e.message} at {list(e.path)}")

    for name, schema in schemas.items():
        if not schema.get("description"):
            errors.append(f"schema {name} has no description")
        if "example" in schema:
            check_example(name, schema, schema["example"])

    body_refs = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            codes = set(responses)
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media["schema"].get("$ref", "")
                if ref:
                    body_refs.add(ref.rsplit("/", 1)[-1])
            if not any(c.startswith("2") for c in codes):
                errors.append(f"{where} declares no 2xx response")
            needed = set()
            if content:
                needed |= {"400", "413", "415"}
            if op.get("parameters"):
                if any(p["in"] in ("path", "query") for p in op["parameters"]):
                    needed.add("400")
            if any("bearerAuth" in s for s in op.get("security", []) if s) and {} not in op.get(
                "security", []
            ):
                needed.add("401")
            if path not in UNLIMITED:
                needed.add("429")
            if path not in NO_503:
                needed.add("503")
            for code in sorted(needed - codes):
                errors.append(f"{where} does not declare {code}")
            for code, response in responses.items():
                own_report = code == "503" and path in OWN_503
                if code.startswith(("4", "5")) and not own_report:
                    if PROBLEM not in response.get("content", {}):
                        errors.append(f"{where} {code} is not a problem document")
                for name, link in response.get("links", {}).items():
                    target = link.get("operationId")
                    if not any(
                        o.get("operationId") == target for i in spec["paths"].values() for o in i.values()
                    ):
                        errors.append(f"{where} {code} link {name} names no operation {target}")

    for name in sorted(body_refs):
        schema = schemas[name]
        if schema.get("type") == "object" and "properties" in schema and "example" not in schema:
            errors.append(f"request body schema {name} has no example")

    without = sorted(
        n for n, s in schemas.items() if s.get("type") == "object" and "properties" in s and "example" not in s
    )
    print(f"{len(schemas)} schemas, {len(schemas) - len(without)} with examples or not objects")
    if without:
        print("objects without an example (response-only, allowed): " + ", ".join(without))
    for e in errors:
        print(f"FAIL {e}")
    if not errors:
        n = sum(len(i) for i in spec["paths"].values())
        print(f"spec OK: {n} operations, valid OpenAPI {spec['openapi']}, responses and examples consistent")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
