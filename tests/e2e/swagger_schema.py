"""Docker's Engine API description (Swagger 2.0) as JSON Schema, to validate sampan's responses.

The oracle is moby's ``api/swagger.yaml`` at v28.5.2 (API 1.51), kept unchanged in
``tests/oracles/`` (see its README).  A Swagger 2.0 schema object is JSON Schema draft 4 plus a
few extensions; :func:`to_json_schema` turns one into plain draft 4:

- ``x-nullable: true`` (go-swagger's way of saying a Go pointer, map or slice may be ``null``)
  allows ``null`` besides the declared type (and in ``enum``);
- ``$ref: '#/definitions/X'`` stays a reference; the converted ``definitions`` ride along in the
  root schema so that the references resolve (a ``$ref`` with siblings, which draft 4 would
  ignore, becomes ``allOf: [{$ref}, {siblings}]``);
- documentation keywords (``example``, ``x-go-name``, ``x-omitempty``...) are dropped, and
  ``format`` is not checked (Go's ``int64``/``dateTime`` say nothing JSON can check better).

``additionalProperties`` is left as the file has it (usually unset): fields Docker does not list
are allowed, fields it lists must have its types, ``required`` ones must be present.

A :class:`Departure` is one documented departure of dockerd from its own description (the
allow-list lives in the test module): it makes one property of one definition nullable or
optional before conversion.  Typical use::

    spec = Spec.load(departures)
    errors = spec.errors("/containers/json", "get", 200, body)
    assert not errors, "\\n".join(errors)
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ORACLE = Path(__file__).resolve().parent.parent / "oracles" / "docker-engine-api-v1.51.yaml"

# Keywords of a schema object whose value is itself a schema, a list of schemas or a map of them.
_SCHEMA = ("items", "additionalProperties", "not")
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAP = ("properties", "patternProperties")
# JSON Schema draft 4 validation keywords kept as they are.
_KEEP = (
    "type", "enum", "required", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "multipleOf",
)


@dataclass(frozen=True)
class Departure:
    """One departure of dockerd from swagger.yaml: in ``where`` (a definition name, or a
    response as ``"GET /exec/{id}/json 200"``), ``prop`` (a dotted path through inline
    ``properties``, ``[]`` for an array's items) may be null (``nullable``) or absent
    (``optional``)."""

    where: str
    prop: str
    kind: str  # "nullable" | "optional"
    reason: str


def to_json_schema(node: Any) -> Any:
    """One Swagger 2.0 schema object as JSON Schema draft 4 (see the module docstring)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key in _KEEP:
        if key in node:
            out[key] = copy.deepcopy(node[key])
    for key in _SCHEMA:
        if key in node:
            value = node[key]
            out[key] = to_json_schema(value) if isinstance(value, dict) else value
    for key in _SCHEMA_LIST:
        if key in node:
            out[key] = [to_json_schema(s) for s in node[key]]
    for key in _SCHEMA_MAP:
        if key in node:
            out[key] = {name: to_json_schema(s) for name, s in node[key].items()}
    if "$ref" in node:
        ref = {"$ref": node["$ref"]}
        out = {"allOf": [ref, out]} if out else ref
    if node.get("x-nullable") is True:
        out = _nullable(out)
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema and "$ref" not in schema and "allOf" not in schema:
        schema = dict(schema)
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"] if "null" not in types else types
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [{"type": "null"}, schema]}


def _apply(raw: dict[str, Any], departures: Iterable[Departure]) -> None:
    for dep in departures:
        node = _target(raw, dep.where)
        *parents, name = dep.prop.split(".")
        for part in parents:
            node = node["items"] if part == "[]" else _holder(node, part, dep)["properties"][part]
        holder = _holder(node, name, dep)
        if dep.kind == "nullable":
            holder["properties"][name]["x-nullable"] = True
        elif dep.kind == "optional":
            if name not in holder.get("required", []):
                raise KeyError(f"{dep.where} {dep.prop}: not required in swagger.yaml")
            holder["required"] = [r for r in holder["required"] if r != name]
        else:
            raise ValueError(f"{dep.where} {dep.prop}: unknown departure kind {dep.kind!r}")


def _target(raw: dict[str, Any], where: str) -> dict[str, Any]:
    if " " not in where:
        node: dict[str, Any] = raw["definitions"][where]
        return node
    method, path, status = where.split()
    node = raw["paths"][path][method.lower()]["responses"][int(status)]["schema"]
    return node


def _holder(node: dict[str, Any], name: str, dep: Departure) -> dict[str, Any]:
    """The schema object whose ``properties`` list ``name``: ``node`` or an inline ``allOf`` part."""
    candidates: list[dict[str, Any]] = [node, *node.get("allOf", ())]
    for candidate in candidates:
        if name in candidate.get("properties", {}):
            return candidate
    raise KeyError(f"{dep.where} {dep.prop}: no such property in swagger.yaml")


@functools.cache
def _raw() -> dict[str, Any]:
    with open(ORACLE) as f:
        spec: dict[str, Any] = yaml.safe_load(f)
    return spec


class Spec:
    """The oracle with the allow-list applied, as JSON Schema validators."""

    def __init__(self, raw: dict[str, Any], departures: Iterable[Departure] = ()) -> None:
        raw = copy.deepcopy(raw)
        _apply(raw, departures)
        self.raw = raw
        self.version = str(raw["info"]["version"])
        self.definitions = {name: to_json_schema(s) for name, s in raw["definitions"].items()}

    @classmethod
    def load(cls, departures: Iterable[Departure] = ()) -> Spec:
        return cls(_raw(), departures)

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        """The JSON Schema of the body of ``method path`` answering ``status`` (``path`` as in
        swagger.yaml: ``/containers/{id}/json``); a root schema carrying the definitions."""
        try:
            response = self.raw["paths"][path][method.lower()]["responses"][status]
        except KeyError:
            raise KeyError(f"swagger.yaml has no response {status} for {method.upper()} {path}") from None
        if "schema" not in response:
            raise KeyError(f"swagger.yaml's {method.upper()} {path} {status} has no body schema")
        return {**to_json_schema(response["schema"]), "definitions": self.definitions}

    def definition_schema(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/definitions/{name}", "definitions": self.definitions}

    def errors(self, path: str, method: str, status: int, body: Any) -> list[str]:
        """Every place ``body`` breaks the response schema, one line each (empty: valid)."""
        return _errors(self.response_schema(path, method, status), body)

    def definition_errors(self, name: str, body: Any) -> list[str]:
        return _errors(self.definition_schema(name), body)


def _errors(schema: dict[str, Any], body: Any) -> list[str]:
    validator = jsonschema.Draft4Validator(schema)
    found = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {_short(e)}" for e in found]


def _short(error: jsonschema.ValidationError) -> str:
    if error.validator in ("anyOf", "allOf", "oneOf") and error.context:
        inner = min(error.context, key=lambda e: len(e.absolute_path) * -1)
        return f"{inner.message[:200]} (schema {'/'.join(map(str, inner.absolute_schema_path))})"
    return f"{error.message[:200]} (schema {'/'.join(map(str, error.absolute_schema_path))})"
