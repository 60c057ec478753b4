"""The HTML page at ``/``: repositories, tags, digests, sizes and layers (Harbor-like browsing).

Rendered on the server from the storage directory, with no external assets; a few lines of
inline JavaScript filter the repositories by name.  Sizes are shown in bytes (exactly what
``skopeo inspect`` reports) and in a human unit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from typing import Any

from sampan.distribution.server import manifest as mf
from sampan.distribution.server.errors import RegistryError
from sampan.distribution.server.storage import RegistryStorage
from sampan.errors import SampanError

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0 1em} td,th{padding:2px 10px;text-align:left;vertical-align:top}
th{background:#eee} code{font-size:12px} .num{text-align:right} .muted{color:#777}
"""

_SCRIPT = """
function filterRepos(q){for(const s of document.querySelectorAll('section.repo')){
s.style.display=s.dataset.name.includes(q)?'':'none';}}
"""


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _size(n: int) -> str:
    return f'<span class="bytes" data-bytes="{n}">{n}</span> <span class="muted">({human(n)})</span>'


def _manifest_rows(storage: RegistryStorage, name: str, digest: str, depth: int = 0) -> list[str]:
    """Table rows describing one manifest (and, for an index, its children)."""
    try:
        _, media_type = storage.resolve(name, digest)
        body = storage.manifest_path(digest).read_bytes()
        info = mf.parse(body, media_type)
    except (RegistryError, SampanError, OSError):
        return [f'<tr><td colspan="4" class="muted">manifest {escape(digest)} missing or invalid</td></tr>']
    rows: list[str] = []
    pad = "&nbsp;" * 4 * depth
    if info.is_index:
        rows.append(f"<tr><td>{pad}index</td><td><code>{escape(digest)}</code></td>"
                    f"<td>{escape(info.media_type)}</td><td class=num>{_size(len(body))}</td></tr>")
        for child in info.children:
            plat = child.platform or {}
            label = "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if plat.get(k))
            rows.append(f'<tr><td colspan="4">{pad}&nbsp;&nbsp;platform {escape(label or "?")}</td></tr>')
            rows += _manifest_rows(storage, name, child.digest, depth + 1) if depth < 2 else []
        return rows
    layers = info.layers
    total = len(body) + (info.config.size if info.config else 0) + sum(d.size for d in layers)
    rows.append(f"<tr><td>{pad}manifest</td><td><code class=manifest-digest>{escape(digest)}</code></td>"
                f"<td>{escape(info.media_type)}</td><td class=num>{_size(len(body))}</td></tr>")
    if info.config is not None:
        rows.append(f"<tr><td>{pad}config</td><td><code>{escape(info.config.digest)}</code></td>"
                    f"<td>{escape(info.config.media_type)}</td><td class=num>{_size(info.config.size)}</td></tr>")
    for i, layer in enumerate(layers):
        rows.append(f"<tr class=layer><td>{pad}layer {i}</td><td><code class=layer-digest>{escape(layer.digest)}</code></td>"
                    f"<td>{escape(layer.media_type)}</td><td class=num>{_size(layer.size)}</td></tr>")
    rows.append(f"<tr><td>{pad}total</td><td></td><td></td><td class=num>{_size(total)}</td></tr>")
    return rows


def _repository(storage: RegistryStorage, name: str) -> str:
    tags = storage.tag_map(name)
    untagged = sorted(set(storage.revisions(name)) - set(tags.values()))
    parts = [f'<section class=repo data-name="{escape(name)}"><h2>{escape(name)}</h2>']
    if not tags:
        parts.append('<p class="muted">no tags</p>')
    for tag, digest in sorted(tags.items()):
        parts.append(f"<h3>{escape(name)}:{escape(tag)}</h3><table>"
                     "<tr><th>what</th><th>digest</th><th>media type</th><th>size (bytes)</th></tr>")
        parts += _manifest_rows(storage, name, digest)
        parts.append("</table>")
    if untagged:
        parts.append(f'<p class="muted">{len(untagged)} untagged manifest(s): '
                     + ", ".join(f"<code>{escape(d)}</code>" for d in untagged) + "</p>")
    parts.append("</section>")
    return "\n".join(parts)


def render(storage: RegistryStorage, visible: Callable[[str], bool] = lambda name: True) -> str:
    """The page, listing the repositories for which ``visible(name)`` is true."""
    repos = [name for name in storage.repositories() if visible(name)]
    body = [_repository(storage, name) for name in repos] or ['<p class="muted">no repositories yet</p>']
    data: dict[str, Any] = {"repositories": repos}
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>sampan registry</title>"
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>"
        f"<h1>sampan registry</h1><p>{len(repos)} repositories · "
        '<input placeholder="filter repositories" oninput="filterRepos(this.value)"></p>'
        + "\n".join(body)
        + f'<script type="application/json" id="catalog">{escape(json.dumps(data))}</script>'
        "</body></html>"
    )
