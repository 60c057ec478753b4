"""The OCI JSON Schemas (image-spec v1.1.1, runtime-spec v1.3.0) as local validators.

The schema files are kept unchanged in ``tests/oracles/oci-image-spec-v1.1.1/`` and
``tests/oracles/oci-runtime-spec-v1.3.0/`` (see tests/oracles/README.md).  They are JSON Schema
draft 4 with relative ``$ref``s between files: the image-spec ones under ``id``s such as
``https://opencontainers.org/schema/image/manifest`` (so ``content-descriptor.json`` means
``https://opencontainers.org/schema/image/content-descriptor.json``), the runtime-spec ones with
no ``id`` at all.  :class:`SchemaSet` resolves every reference to the sibling file of the same
name in its directory, whatever the base URI: nothing is ever fetched over the network, and a
reference to a file that is not there fails loudly (:class:`referencing.exceptions.Unresolvable`).

``format`` is checked (``date-time`` of ``created`` fields, RFC 3339), as the spec's Go validator
does.  Typical use::

    errors = IMAGE.errors("image-manifest-schema.json", manifest)
    assert not errors, "\\n".join(errors)
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

ORACLES = Path(__file__).resolve().parent / "oracles"
IMAGE_DIR = ORACLES / "oci-image-spec-v1.1.1"
RUNTIME_DIR = ORACLES / "oci-runtime-spec-v1.3.0"

# The schema that validates each media type of the image spec (as the Go validator maps them).
IMAGE_SCHEMA_FOR = {
    "application/vnd.oci.image.manifest.v1+json": "image-manifest-schema.json",
    "application/vnd.oci.image.index.v1+json": "image-index-schema.json",
    "application/vnd.oci.image.config.v1+json": "config-schema.json",
    "application/vnd.oci.descriptor.v1+json": "content-descriptor.json",
    "application/vnd.oci.layout.header.v1+json": "image-layout-schema.json",
}


class SchemaSet:
    """The schema files of one directory; ``$ref``s resolve to siblings by file name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.registry: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg]

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.glob("*.json"))

    @functools.cache  # noqa: B019 - two module-level instances, kept for the session
    def document(self, name: str) -> dict[str, Any]:
        path = self.directory / name
        if path.name != name or not path.is_file():
            raise FileNotFoundError(f"no schema {name!r} in {self.directory}")
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc

    def _retrieve(self, uri: str) -> Resource[Any]:
        name = PurePosixPath(urlsplit(uri).path).name
        try:
            return DRAFT4.create_resource(self.document(name))
        except FileNotFoundError:
            raise NoSuchResource(ref=uri) from None  # type: ignore[call-arg]

    @functools.cache  # noqa: B019
    def validator(self, name: str) -> jsonschema.Draft4Validator:
        schema = self.document(name)
        jsonschema.Draft4Validator.check_schema(schema)
        return jsonschema.Draft4Validator(
            schema,
            registry=self.registry,
            format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
        )

    def errors(self, name: str, document: Any) -> list[str]:
        """Every violation of ``name`` by ``document``, one line each (empty: valid)."""
        out = []
        for error in sorted(self.validator(name).iter_errors(document), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            out.append(f"{name}: {where}: {_message(error)}")
        return out


def _message(error: jsonschema.ValidationError) -> str:
    """The error, or for a failed ``oneOf``/``anyOf`` the deepest reasons of its branches."""
    if error.context:
        reasons = sorted({f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
                          for e in error.context})
        return f"{error.message[:200]} [{'; '.join(reasons)[:600]}]"
    return error.message[:400]


IMAGE = SchemaSet(IMAGE_DIR)
RUNTIME = SchemaSet(RUNTIME_DIR)


def image_errors(media_type: str, document: Any) -> list[str]:
    """Violations of the image-spec schema for ``media_type`` (an OCI media type), plus the two
    checks the spec's Go validator (``schema/validator.go``) adds to the schemas: every
    descriptor's digest is a valid digest of its algorithm (sha256: 64 lowercase hex digits),
    and every ``config.Env`` entry is ``NAME=value``."""
    out = IMAGE.errors(IMAGE_SCHEMA_FOR[media_type], document)
    if not isinstance(document, dict):
        return out
    if media_type == "application/vnd.oci.image.config.v1+json":
        for i, env in enumerate((document.get("config") or {}).get("Env") or []):
            if not isinstance(env, str) or not _ENV.match(env):
                out.append(f"config: config/Env/{i}: unexpected env {env!r}")
    descriptors = [("", document)] if media_type == "application/vnd.oci.descriptor.v1+json" else [
        *((k, document.get(k)) for k in ("config", "subject") if k in document),
        *((f"layers/{i}", d) for i, d in enumerate(document.get("layers") or [])),
        *((f"manifests/{i}", d) for i, d in enumerate(document.get("manifests") or [])),
    ]
    for where, desc in descriptors:
        digest = desc.get("digest") if isinstance(desc, dict) else None
        algorithm, _, encoded = str(digest).partition(":")
        length = _DIGEST_LENGTH.get(algorithm)
        if length is not None and not re.fullmatch(f"[a-f0-9]{{{length}}}", encoded):
            out.append(f"descriptor {where or '(root)'}: invalid {algorithm} digest {digest!r}")
    return out


_ENV = re.compile(r"^[^=]+=.*$", re.S)
_DIGEST_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}

#: Media types whose documents share an OCI schema's structure: Docker's schema2 manifest and
#: manifest list are the OCI manifest and index with other media types, Docker's image config
#: is the OCI config (image-spec's own words: it is "compatible").
SAME_SHAPE = {
    "application/vnd.docker.distribution.manifest.v2+json": "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json": "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.container.image.v1+json": "application/vnd.oci.image.config.v1+json",
}


def document_errors(media_type: str, document: Any) -> list[str]:
    """:func:`image_errors` for an OCI media type, or for a Docker one the OCI schema of the
    same shape (:data:`SAME_SHAPE`); an unknown media type is an error."""
    oci = SAME_SHAPE.get(media_type, media_type)
    if oci not in IMAGE_SCHEMA_FOR:
        return [f"no schema for media type {media_type!r}"]
    return image_errors(oci, document)


def layout_errors(read_file: Callable[[str], bytes], counts: Counter[str] | None = None) -> list[str]:
    """Every violation in an OCI image layout read through ``read_file(path)`` (``oci-layout``,
    ``index.json``, ``blobs/<alg>/<hex>``): the layout header, the index, every descriptor it
    reaches (digest and size checked against the blob, layers included) and every manifest,
    index and config below it.  ``counts`` (media type -> documents validated) lets a caller check that the walk
    saw what it expected."""
    counts = counts if counts is not None else Counter()
    out = IMAGE.errors("image-layout-schema.json", json.loads(read_file("oci-layout")))
    counts["oci-layout"] += 1
    index = json.loads(read_file("index.json"))
    out += image_errors("application/vnd.oci.image.index.v1+json", index)
    counts["index.json"] += 1
    seen: set[str] = set()

    def visit(descs: list[Any], depth: int) -> None:
        for desc in descs:
            out.extend(image_errors("application/vnd.oci.descriptor.v1+json", desc))
            digest, media_type = desc.get("digest", ""), desc.get("mediaType", "")
            kind = SAME_SHAPE.get(media_type, media_type)
            if digest in seen:
                continue
            seen.add(digest)
            algorithm, _, encoded = digest.partition(":")
            data = read_file(f"blobs/{algorithm}/{encoded}")
            if f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}" != digest:
                out.append(f"blob {digest}: content has another digest")
            if len(data) != desc.get("size"):
                out.append(f"blob {digest}: {len(data)} bytes, descriptor says {desc.get('size')}")
            if kind not in IMAGE_SCHEMA_FOR and "layer" in media_type:
                counts["layer"] += 1
                continue  # a layer: not JSON
            child = json.loads(data)
            out.extend(f"{media_type} {digest}: {e}" for e in document_errors(media_type, child))
            counts[media_type] += 1
            if depth >= 4 or not isinstance(child, dict):
                continue
            if kind == "application/vnd.oci.image.manifest.v1+json":
                visit([child.get("config") or {}, *(child.get("layers") or [])], depth + 1)
            elif kind == "application/vnd.oci.image.index.v1+json":
                visit(child.get("manifests") or [], depth + 1)

    visit(index.get("manifests") or [], 0)
    return out
