"""sampand beside the peers (run in the peers phase, after ../shared/peers/setup.sh).

* the real docker CLI prints the same columns against sampand as against dockerd (IDs, sizes and
  times masked);
* an archive saved by sampan loads into dockerd and podman, and skopeo reads it;
* an archive saved by dockerd loads into sampan with the same image ID.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_fixture import Daemon, cleanup, new_daemon

pytestmark = [pytest.mark.peers, pytest.mark.root, pytest.mark.e2e]

LAB = Path(os.environ.get("SAMPAN_PEERS_DIR", "/var/tmp/sampan-peers"))
# setup.sh's dockerd; SAMPAN_PEER_DOCKER_HOST names another (the bench reads the same variable)
DOCKERD = {**os.environ, "DOCKER_HOST": os.environ.get("SAMPAN_PEER_DOCKER_HOST", "unix:///var/run/docker.sock")}
_PODMAN_CONF = LAB / "podman" / "containers.conf"  # written by setup.sh (ulimits this VM allows)
PODMAN = {**os.environ, **({"CONTAINERS_CONF": str(_PODMAN_CONF)} if _PODMAN_CONF.exists() else {})}


def _dockerd_up() -> bool:
    return subprocess.run(["docker", "version"], env=DOCKERD, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def sampand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    if not _dockerd_up():
        pytest.skip("dockerd from ../shared/peers/setup.sh is not running")
    # podman mounts its own storage on first use: do that before any test's leak check starts
    subprocess.run(["podman", "images"], env=PODMAN, capture_output=True)
    d = new_daemon(tmp_path_factory.mktemp("peers"))
    try:
        d.start()
        docker(d.env(), "import", "-c", 'CMD ["sh"]', str(_busybox_tar()), "busybox:latest")
        yield d
    finally:
        cleanup(d)


def _busybox_tar() -> Path:
    """setup.sh's busybox rootfs tar (dockerd and podman have it as busybox:latest)."""
    tar = LAB / "busybox.tar"
    if not tar.exists():
        pytest.skip(f"{tar} missing: run ../shared/peers/setup.sh")
    return tar


def docker(env: dict[str, str], *args: str) -> str:
    r = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r.stdout


_COLUMN_GAP = re.compile(r"\s{2,}")


def _shape(table: str) -> tuple[str, list[int]]:
    """The header line and the number of columns of each row."""
    lines = [line for line in table.splitlines() if line.strip()]
    return lines[0], [len(_COLUMN_GAP.split(line.strip())) for line in lines[1:]]


@pytest.mark.parametrize(
    "args",
    [
        ["images"],
        ["image", "ls", "--digests"],
        ["image", "ls", "--no-trunc"],
        ["history", "busybox"],
        ["system", "df"],
    ],
    ids=lambda a: " ".join(a),
)
def test_docker_cli_prints_the_same_columns(sampand: Daemon, args: list[str]) -> None:
    ours = docker(sampand.env(), *args)
    theirs = docker(DOCKERD, *args)
    our_header, _ = _shape(ours)
    their_header, _ = _shape(theirs)
    assert _COLUMN_GAP.split(our_header.strip()) == _COLUMN_GAP.split(their_header.strip())
    if args[0] == "history":
        # busybox imported the same way on both: same rows, same columns
        assert _shape(ours)[1] == _shape(theirs)[1]


def test_image_inspect_has_dockers_keys(sampand: Daemon) -> None:
    ours = json.loads(docker(sampand.env(), "image", "inspect", "busybox"))[0]
    theirs = json.loads(docker(DOCKERD, "image", "inspect", "busybox"))[0]
    # dockerd 20.10 answers the CLI at API 1.41; fields that API 1.44/1.45 removed are not owed
    removed = {"Container", "ContainerConfig", "VirtualSize"}
    missing = set(theirs) - set(ours) - removed
    assert not missing, f"sampan's image inspect lacks {sorted(missing)}"
    # container-only fields that image configs carried before API 1.46 (moby deprecated them)
    legacy = {"Image", "Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr",
              "Tty", "OpenStdin", "StdinOnce"}
    assert set(theirs["Config"]) - legacy <= set(ours["Config"])
    assert ours["Config"]["Cmd"] == theirs["Config"]["Cmd"] == ["sh"]
    assert ours["RootFS"]["Layers"] == theirs["RootFS"]["Layers"]  # same busybox.tar, same diff ID


def test_sampan_archive_loads_into_dockerd_podman_and_skopeo(sampand: Daemon, tmp_path: Path) -> None:
    archive = tmp_path / "from-sampan.tar"
    docker(sampand.env(), "tag", "busybox:latest", "sampan-peers/busybox:saved")
    docker(sampand.env(), "save", "-o", str(archive), "sampan-peers/busybox:saved")
    our_id = docker(sampand.env(), "image", "inspect", "-f", "{{.Id}}", "sampan-peers/busybox:saved").strip()
    try:
        docker(DOCKERD, "load", "-i", str(archive))
        assert docker(DOCKERD, "image", "inspect", "-f", "{{.Id}}", "sampan-peers/busybox:saved").strip() == our_id
    finally:
        subprocess.run(["docker", "rmi", "sampan-peers/busybox:saved"], env=DOCKERD, capture_output=True)
    r = subprocess.run(["podman", "load", "-i", str(archive)], env=PODMAN, capture_output=True, text=True)
    try:
        assert r.returncode == 0, r.stderr
        assert "sampan-peers/busybox:saved" in r.stdout
    finally:
        subprocess.run(["podman", "rmi", "localhost/sampan-peers/busybox:saved", "sampan-peers/busybox:saved"],
                       env=PODMAN, capture_output=True)
    r = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    layers = json.loads(docker(sampand.env(), "image", "inspect", "-f", "{{json .RootFS.Layers}}", "busybox"))
    assert len(info["Layers"]) == len(layers)


@pytest.mark.parametrize("name", ["busybox:latest", "lab/big:latest"])
def test_dockerd_archive_loads_into_sampan_with_the_same_id(sampand: Daemon, tmp_path: Path, name: str) -> None:
    # saved now, not setup.sh's cached big.docker-archive.tar: that file outlives a rebuild of
    # lab/big (a new ID) when something removed the image from dockerd in between
    archive = tmp_path / "from-dockerd.tar"
    docker(DOCKERD, "save", "-o", str(archive), name)
    their_id = docker(DOCKERD, "image", "inspect", "-f", "{{.Id}}", name).strip()
    out = docker(sampand.env(), "load", "-i", str(archive))
    assert name.split(":")[0] in out
    assert docker(sampand.env(), "image", "inspect", "-f", "{{.Id}}", name).strip() == their_id
