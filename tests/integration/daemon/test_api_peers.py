"""The docker CLI against sampand and against dockerd print the same thing (IDs, sizes and times
masked).  Runs where dockerd answers on /var/run/docker.sock (../shared/peers/setup.sh)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, daemon  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.peers]

DOCKERD = "/var/run/docker.sock"
REF = "sampan-peer-test:cmp"


def dockerd_up() -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(DOCKERD)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


MASKS = [
    (re.compile(r"sha256:[0-9a-f]{64}"), "<ID>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<ID>"),
    (re.compile(r"\b(Less than a second|About an? \w+|\d+ \w+) ago\b"), "<TIME>"),
    (re.compile(r"\b\d+(\.\d+)?[kMGT]?B\b"), "<SIZE>"),
    (re.compile(r"\(\d+%\)"), "(<PCT>)"),
]


def mask(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        for pattern, repl in MASKS:
            line = pattern.sub(repl, line)
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def run(host: str, *args: str, tmp: Path, version: str | None = None) -> str:
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CONFIG": str(tmp / "dc")}
    if version:
        env["DOCKER_API_VERSION"] = version
    r = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"docker {args} on {host}: {r.stderr}"
    return r.stdout


@pytest.mark.skipif(not dockerd_up(), reason="dockerd is not running (../shared/peers/setup.sh)")
def test_same_output_as_dockerd(daemon: Daemon, busybox_rootfs_tar: Path, tmp_path: Path) -> None:  # noqa: F811
    hosts = {"sampan": daemon.url, "dockerd": f"unix://{DOCKERD}"}
    out: dict[str, dict[str, object]] = {}
    try:
        for name, host in hosts.items():
            run(host, "import", "-c", 'CMD ["sh"]', str(busybox_rootfs_tar), REF, tmp=tmp_path)
            inspect = json.loads(run(host, "image", "inspect", REF, tmp=tmp_path, version="1.41"))[0]
            df = mask(run(host, "system", "df", tmp=tmp_path))
            out[name] = {
                "images": mask(run(host, "images", REF, tmp=tmp_path)),
                "images --digests": mask(run(host, "images", "--digests", REF, tmp=tmp_path)),
                "history": mask(run(host, "history", REF, tmp=tmp_path)),
                "inspect keys": sorted(inspect),
                "config keys": sorted(inspect["Config"]),
                "rootfs": (inspect["RootFS"]["Type"], len(inspect["RootFS"]["Layers"])),
                "df header and types": [df[0], [row[0] for row in df[1:]]],
            }
    finally:
        subprocess.run(["docker", "rmi", REF], env={**os.environ, "DOCKER_HOST": hosts["dockerd"],
                       "DOCKER_CONFIG": str(tmp_path / "dc")}, capture_output=True, timeout=60)
    for key in out["dockerd"]:
        assert out["sampan"][key] == out["dockerd"][key], key
