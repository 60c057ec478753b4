"""podman pulls from and pushes to ``sampan registry serve`` with Basic auth (podman storage in a
temporary vfs root, so nothing of the host's podman is touched)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import bcrypt
import pytest
from registry_harness import make_oci_layout, skopeo, start_server

PODMAN = shutil.which("podman")


def _podman_running() -> bool:
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "podman":
                return True
        except OSError:
            pass
    return False


@pytest.mark.skipif(PODMAN is None, reason="podman is not installed")
def test_podman_round_trip_with_basic_auth(tmp_path: Path) -> None:
    facts = make_oci_layout(tmp_path / "layout", [{"hello": b"from podman\n"}], tag="v1")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("pod:" + bcrypt.hashpw(b"man", bcrypt.gensalt(4)).decode() + "\n")
    server = start_server(tmp_path / "storage", config={"auth": {"htpasswd": {"path": str(htpasswd)}}})
    root = tmp_path / "podman"
    runroot = Path(tempfile.mkdtemp(prefix="sp-podrun-"))  # podman wants a runroot under 50 characters
    base = [str(PODMAN), "--root", str(root / "root"), "--runroot", str(runroot), "--storage-driver", "vfs"]
    env = dict(os.environ, TMPDIR=str(tmp_path))
    shm_lock = Path("/dev/shm/libpod_lock")  # podman's lock file: removed after if this test made it
    had_lock = shm_lock.exists()

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=120, env=env)

    try:
        r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "pod:man", f"oci:{tmp_path / 'layout'}:v1",
                   f"docker://{server.addr}/pod/app:v1")
        assert r.returncode == 0, r.stderr
        r = podman("pull", "--tls-verify=false", f"{server.addr}/pod/app:v1")
        assert r.returncode != 0  # no credentials
        r = podman("pull", "--tls-verify=false", "--creds", "pod:man", f"{server.addr}/pod/app:v1")
        assert r.returncode == 0, r.stderr
        assert podman("tag", f"{server.addr}/pod/app:v1", f"{server.addr}/pod/copy:v2").returncode == 0
        r = podman("push", "--tls-verify=false", "--creds", "pod:man", f"{server.addr}/pod/copy:v2")
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", "--creds", "pod:man", f"docker://{server.addr}/pod/copy:v2")
        assert r.returncode == 0, r.stderr
        layers = [d["digest"] for d in facts["layers"]]
        # podman may recompress, but the image (config) is the same
        assert json.loads(r.stdout)["Os"] == "linux" and len(json.loads(r.stdout)["Layers"]) == len(layers)
    finally:
        podman("rmi", "-a", "-f")
        server.stop()
        shutil.rmtree(runroot, ignore_errors=True)
        if not had_lock and not _podman_running():
            shm_lock.unlink(missing_ok=True)
