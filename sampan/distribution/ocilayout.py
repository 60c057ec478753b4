"""OCI image layouts (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``): reading the
images an index names, and writing the index of a layout.

The reader is independent of where the layout lives: it takes a function that returns the
bytes of a blob by digest (from an archive being loaded, later from a directory).  Names come
from the annotations Docker and containerd write: ``io.containerd.image.name`` (a full
reference) or ``org.opencontainers.image.ref.name`` when that is a full reference (a bare tag
such as ``latest``, as skopeo writes, names nothing).  An index of several platforms yields
the host's platform.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sampan.distribution.copy import Descriptor, SourceImage
from sampan.errors import InvalidArgument, InvalidReference
from sampan.image import config as cfg
from sampan.image import reference as refs
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
MAX_DEPTH = 4

ReadBlob = Callable[[Descriptor], bytes]


def blob_path(digest: str) -> str:
    algo, hexpart = dg.split(digest)
    return f"blobs/{algo}/{hexpart}"


def layout_bytes() -> bytes:
    return json.dumps({"imageLayoutVersion": mt.OCI_LAYOUT_VERSION}, separators=(",", ":")).encode()


def descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{where}: descriptor is not an object")
    media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(digest, str) or not dg.is_digest(digest):
        raise InvalidArgument(f"{where}: descriptor has an invalid digest {digest!r}")
    if not isinstance(size, int) or size < 0:
        raise InvalidArgument(f"{where}: descriptor of {digest} has an invalid size {size!r}")
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InvalidArgument(f"{where}: descriptor of {digest} has invalid annotations")
    return Descriptor(
        media_type=str(media_type or ""), digest=digest, size=size,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )


def _json(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidArgument(f"{where}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{where}: not a JSON object")
    return obj


def name_of(desc: Descriptor) -> str | None:
    """The reference an index entry names, if any."""
    full = desc.annotations.get(ANNOTATION_IMAGE_NAME)
    candidates = [full] if full else []
    ref_name = desc.annotations.get(ANNOTATION_REF_NAME, "")
    if ref_name and ("/" in ref_name or ":" in ref_name):
        candidates.append(ref_name)
    for text in candidates:
        try:
            ref = refs.parse(text)
        except InvalidReference:
            continue
        return str(ref)
    return None


def _pick_platform(manifests: list[Descriptor], raw: list[Any], where: str) -> Descriptor:
    host_os, host_arch = cfg.host_platform_pair()
    for desc, obj in zip(manifests, raw, strict=True):
        platform = obj.get("platform") or {} if isinstance(obj, dict) else {}
        if platform.get("os") == host_os and platform.get("architecture") == host_arch:
            return desc
    if len(manifests) == 1:
        return manifests[0]
    raise InvalidArgument(f"{where}: no manifest for platform {host_os}/{host_arch}")


def image_from_manifest(desc: Descriptor, read: ReadBlob, references: list[str]) -> SourceImage:
    where = f"manifest {desc.digest}"
    manifest = _json(read(desc), where)
    config = descriptor(manifest.get("config"), where)
    layers_raw = manifest.get("layers")
    if not isinstance(layers_raw, list):
        raise InvalidArgument(f"{where}: layers is not a list")
    layers = [descriptor(x, where) for x in layers_raw]
    for layer in layers:
        if layer.media_type and layer.media_type not in mt.LAYERS:
            raise InvalidArgument(f"{where}: unsupported layer media type {layer.media_type!r}")
    return SourceImage(
        config=config,
        layers=layers,
        references=references,
        manifest_digest=desc.digest,
        where=where,
        layer_where=[f"layer {blob_path(layer.digest)}" for layer in layers],
    )


def images_from_index(index_data: bytes, read: ReadBlob) -> list[SourceImage]:
    """The images an ``index.json`` names, one per manifest, references merged."""
    index = _json(index_data, INDEX_FILE)
    by_manifest: dict[str, SourceImage] = {}
    order: list[str] = []

    def visit(manifests_raw: Any, where: str, depth: int, name: str | None) -> None:
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"{where}: indexes nested more than {MAX_DEPTH} deep")
        if not isinstance(manifests_raw, list):
            raise InvalidArgument(f"{where}: manifests is not a list")
        descs = [descriptor(x, where) for x in manifests_raw]
        if depth > 0 and descs:
            chosen = _pick_platform(descs, manifests_raw, where)
            descs = [chosen]
        for desc in descs:
            ref = name_of(desc) or name
            if desc.media_type in mt.INDEXES:
                nested = _json(read(desc), f"index {desc.digest}")
                visit(nested.get("manifests"), f"index {desc.digest}", depth + 1, ref)
                continue
            if desc.media_type and desc.media_type not in mt.MANIFESTS:
                continue  # attestations, signatures and other artifacts
            if desc.digest not in by_manifest:
                by_manifest[desc.digest] = image_from_manifest(desc, read, [])
                order.append(desc.digest)
            image = by_manifest[desc.digest]
            if ref and ref not in image.references:
                image.references.append(ref)

    visit(index.get("manifests"), INDEX_FILE, 0, None)
    if not order:
        raise InvalidArgument(f"{INDEX_FILE}: names no image manifest")
    return [by_manifest[d] for d in order]


def index_bytes(entries: list[tuple[Descriptor, list[str]]]) -> bytes:
    """index.json as Docker 25+ writes it: one entry per reference (none for untagged)."""
    manifests: list[dict[str, Any]] = []
    for desc, references in entries:
        if not references:
            manifests.append(desc.to_json())
        for text in references:
            ref = refs.parse(text)
            annotations = {ANNOTATION_IMAGE_NAME: str(ref)}
            if ref.tag:
                annotations[ANNOTATION_REF_NAME] = ref.tag
            manifests.append(
                Descriptor(desc.media_type, desc.digest, desc.size, annotations).to_json()
            )
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    return json.dumps(index, separators=(",", ":")).encode()
