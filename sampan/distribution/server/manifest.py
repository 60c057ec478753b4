"""What the registry needs to know about a manifest: its kind, what it references, its subject.

A pushed manifest is parsed once here; :class:`ManifestInfo` is what storage checks (every
referenced blob or child manifest must exist), what the referrers API lists and what gc marks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sampan.distribution.server.errors import RegistryError
from sampan.oci import digest as dg
from sampan.oci import mediatypes as mt

MAX_MANIFEST_BYTES = 4 << 20
EMPTY_JSON = "application/vnd.oci.empty.v1+json"
_NONDISTRIBUTABLE = ("nondistributable", "foreign")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None

    @property
    def distributable(self) -> bool:
        return not any(word in self.media_type for word in _NONDISTRIBUTABLE)


@dataclass
class ManifestInfo:
    """A parsed manifest (an image manifest or an index)."""

    media_type: str
    is_index: bool
    config: Descriptor | None
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def blobs(self) -> list[Descriptor]:
        """Blobs (not manifests) this manifest needs in the repository."""
        out = [self.config] if self.config is not None else []
        return out + [d for d in self.layers if d.distributable]

    def referrer_descriptor(self, digest: str, size: int) -> dict[str, Any]:
        """The descriptor of this manifest as the referrers API lists it."""
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": digest, "size": size}
        artifact = self.artifact_type or (self.config.media_type if self.config else "")
        if artifact:
            desc["artifactType"] = artifact
        if self.annotations:
            desc["annotations"] = self.annotations
        return desc


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise RegistryError("MANIFEST_INVALID", f"{where}: not a descriptor object")
    media_type = value.get("mediaType", "")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(digest, str) or not dg.is_digest(digest):
        raise RegistryError("MANIFEST_INVALID", f"{where}: invalid digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError("MANIFEST_INVALID", f"{where}: invalid size {size!r}")
    if not isinstance(media_type, str):
        raise RegistryError("MANIFEST_INVALID", f"{where}: invalid mediaType")
    platform = value.get("platform")
    return Descriptor(media_type, digest, size, platform if isinstance(platform, dict) else None)


def parse(body: bytes, content_type: str = "") -> ManifestInfo:
    """Validate a manifest body; ``content_type`` is the Content-Type it was pushed with."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise RegistryError("MANIFEST_INVALID", "manifest is larger than 4 MiB", status=413)
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RegistryError("MANIFEST_INVALID", f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RegistryError("MANIFEST_INVALID", "manifest is not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise RegistryError("MANIFEST_INVALID", "unsupported schemaVersion (only 2 is)")
    declared = doc.get("mediaType", "")
    if not isinstance(declared, str):
        raise RegistryError("MANIFEST_INVALID", "mediaType is not a string")
    content_type = content_type.split(";", 1)[0].strip()
    if declared and content_type and declared != content_type:
        raise RegistryError(
            "MANIFEST_INVALID",
            f"mediaType {declared!r} does not match Content-Type {content_type!r}",
        )
    media_type = declared or content_type
    is_index = media_type in mt.INDEXES or (not media_type and "manifests" in doc)
    if not media_type:
        media_type = mt.OCI_INDEX if is_index else mt.OCI_MANIFEST
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise RegistryError("MANIFEST_INVALID", "annotations is not an object")
    artifact_type = doc.get("artifactType", "")
    if not isinstance(artifact_type, str):
        raise RegistryError("MANIFEST_INVALID", "artifactType is not a string")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    info = ManifestInfo(
        media_type=media_type, is_index=is_index, config=None, subject=subject,
        artifact_type=artifact_type, annotations=annotations,
    )
    if is_index:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise RegistryError("MANIFEST_INVALID", "index without a manifests list")
        info.children = [_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)]
        return info
    if media_type not in mt.MANIFESTS and "config" not in doc:
        raise RegistryError("MANIFEST_INVALID", f"unsupported manifest media type {media_type!r}")
    info.config = _descriptor(doc.get("config"), "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise RegistryError("MANIFEST_INVALID", "layers is not a list")
    info.layers = [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
    return info


def digest_of(body: bytes, algorithm: str = "sha256") -> str:
    import hashlib

    return f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
