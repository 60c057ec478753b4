"""The web page at ``/``, rendered by a real headless chromium: it shows the digests and sizes
that ``skopeo inspect`` reports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from registry_harness import make_oci_layout, skopeo, start_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Cells(HTMLParser):
    """The rows of every table on the page, as lists of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    r = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=90,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_web_page_shows_what_skopeo_inspect_reports(tmp_path: Path) -> None:
    make_oci_layout(tmp_path / "layout", [{"a.txt": b"a" * 5000}, {"b/c.txt": b"bc" * 30000}], tag="v1")
    server = start_server(tmp_path / "storage")
    try:
        ref = f"docker://{server.addr}/web/demo:v1"
        r = skopeo("copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'layout'}:v1", ref)
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", ref)
        assert r.returncode == 0, r.stderr
        inspect = json.loads(r.stdout)

        dom = _dump_dom(f"http://{server.addr}/", tmp_path / "chromium-profile")
        assert "<h2>web/demo</h2>" in dom and "web/demo:v1" in dom
        parser = _Cells()
        parser.feed(dom)
        rows = {row[1]: row for row in parser.rows if len(row) == 4 and row[1].startswith("sha256:")}
        assert inspect["Digest"] in rows and rows[inspect["Digest"]][0] == "manifest"
        # Debian's skopeo 1.9 has no LayersData: sizes and media types come from --raw
        r = skopeo("inspect", "--tls-verify=false", "--raw", ref)
        raw = json.loads(r.stdout)
        assert [d["digest"] for d in raw["layers"]] == inspect["Layers"]
        for layer in raw["layers"]:
            row = rows[layer["digest"]]
            assert row[0].startswith("layer")
            assert row[2] == layer["mediaType"]
            assert re.match(rf"^{layer['size']} \(", row[3]), row
        assert re.match(rf"^{raw['config']['size']} \(", rows[raw["config"]["digest"]][3])
        # the filter script is wired in and ran without breaking the page
        assert 'oninput="filterRepos(this.value)"' in dom
    finally:
        server.stop()
