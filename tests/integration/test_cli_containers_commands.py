"""The container and volume commands of the ``sampan`` CLI against a real sampand (the
tutorial's container chapter: run -d, ps, logs, exec, stats, inspect, stop/start, cp, commit...)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _clean(api: Api, leak_check: None) -> object:  # noqa: F811
    yield
    api.remove_all()
    for image in api.call("GET", "/images/json", status=200):
        if "busybox:latest" not in (image.get("RepoTags") or []):
            api.d.request("DELETE", f"/images/{image['Id']}?force=1")


def sampan(api: Api, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:  # noqa: F811
    r = subprocess.run([sys.executable, "-m", "sampan.cli", *args], input=stdin.decode() if stdin else None,
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "SAMPAN_HOST": api.d.url, "PYTHONPATH": str(REPO)})
    if check:
        assert r.returncode == 0, f"sampan {' '.join(args)}: {r.returncode} {r.stderr}"
    return r


def test_run_d_ps_logs_exec_top_inspect_stop_start(api: Api) -> None:  # noqa: F811
    cid = sampan(api, "run", "-d", "--name", "web", "-l", "tier=front", "busybox",
                 "sh", "-c", "echo started; echo oops >&2; exec httpd -f -p 8080").stdout.strip()
    assert len(cid) == 64
    ps = sampan(api, "ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert ps[1].startswith(cid[:12] + "   busybox   \"sh -c 'echo started") and ps[1].endswith("   web")
    assert "Up " in ps[1]
    assert sampan(api, "ps", "-q", "--no-trunc", "--filter", "label=tier=front").stdout == cid + "\n"
    assert sampan(api, "ps", "-q", "--filter", "label=tier=back").stdout == ""
    assert api.until(lambda: sampan(api, "logs", "web").stdout == "started\n")
    r = sampan(api, "logs", "-t", "--tail", "1", "web")
    assert r.stdout == "" and r.stderr.endswith(" oops\n") and r.stderr[:4].isdigit()
    r = sampan(api, "exec", "-e", "X=42", "-w", "/tmp", "web", "sh", "-c", "echo $X $(pwd); exit 9", check=False)
    assert (r.returncode, r.stdout) == (9, "42 /tmp\n")
    assert sampan(api, "exec", "-i", "web", "cat", stdin=b"piped\n").stdout == "piped\n"
    assert sampan(api, "exec", "-d", "web", "sleep", "1").stdout == ""
    top = sampan(api, "top", "web").stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and any("httpd -f -p 8080" in line for line in top[1:])
    fmt = "{{.Name}} {{.State.Status}} {{.Config.Labels.tier}}"
    assert sampan(api, "inspect", "-f", fmt, "web").stdout == "/web running front\n"
    assert json.loads(sampan(api, "container", "inspect", "web").stdout)[0]["Id"] == cid
    assert sampan(api, "stop", "-t", "1", "web").stdout == "web\n"
    assert sampan(api, "ps", "-a", "--format", "{{.Names}} {{.State}}").stdout == "web exited\n"
    assert sampan(api, "start", "web").stdout == "web\n"
    assert sampan(api, "inspect", "--type", "container", "-f", "{{.State.Running}}", "web").stdout == "true\n"
    r = sampan(api, "rm", "web", check=False)
    assert r.returncode == 1 and r.stderr.startswith("Error response from daemon: ")
    assert sampan(api, "rm", "-f", "web").stdout == "web\n"
    r = sampan(api, "logs", "web", check=False)
    assert r.returncode == 1 and "No such container: web" in r.stderr


def test_logs_follow_ends_with_the_container(api: Api) -> None:  # noqa: F811
    sampan(api, "run", "-d", "--name", "tick", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done")
    r = sampan(api, "logs", "-f", "tick")
    assert r.stdout == "1\n2\n3\n"


def test_stats_no_stream_shows_the_memory_limit(api: Api) -> None:  # noqa: F811
    sampan(api, "run", "-d", "--name", "limited", "--memory", "100M", "--cpu-shares", "10", "busybox", "sleep", "30")
    lines = sampan(api, "stats", "--no-stream").stdout.splitlines()
    assert [c.strip() for c in lines[0].split("   ") if c.strip()] == [
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    assert "limited" in lines[1] and "/ 100MiB" in lines[1]
    row = sampan(api, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "limited").stdout
    name, used, _, limit, pids = row.split()
    assert (name, limit, pids) == ("limited", "100MiB", "1") and used.endswith("iB")
    assert sampan(api, "inspect", "-f", "{{.HostConfig.CpuShares}}", "limited").stdout == "10\n"
    assert sampan(api, "update", "--memory", "200M", "limited").stdout == "limited\n"
    assert "/ 200MiB" in sampan(api, "stats", "--no-stream", "limited").stdout


def test_cp_diff_commit_export(api: Api, tmp_path: Path) -> None:  # noqa: F811
    sampan(api, "run", "-d", "--name", "box", "busybox", "sleep", "60")
    src = tmp_path / "note.txt"
    src.write_text("hello from the host\n")
    sampan(api, "cp", "-q", str(src), "box:/tmp/")
    sampan(api, "cp", "-q", str(src), "box:/renamed.txt")
    assert sampan(api, "exec", "box", "cat", "/tmp/note.txt", "/renamed.txt").stdout == "hello from the host\n" * 2
    sampan(api, "exec", "box", "sh", "-c", "mkdir -p /data/sub && echo inner > /data/sub/f")
    r = sampan(api, "cp", "box:/data", str(tmp_path / "copied"))
    assert (tmp_path / "copied" / "sub" / "f").read_text() == "inner\n" and r.stderr.startswith("Successfully copied ")
    out = tmp_path / "existing"
    out.mkdir()
    sampan(api, "cp", "box:/data/sub/f", str(out))
    assert (out / "f").read_text() == "inner\n"
    diff = sampan(api, "diff", "box").stdout.splitlines()
    assert "A /renamed.txt" in diff and "A /data" in diff and "C /tmp" in diff
    image_id = sampan(api, "commit", "-m", "a note", "-c", 'CMD ["cat", "/tmp/note.txt"]', "box", "noted:v1").stdout.strip()
    assert image_id.startswith("sha256:")
    assert sampan(api, "run", "--rm", "noted:v1").stdout == "hello from the host\n"
    export = tmp_path / "box.tar"
    sampan(api, "export", "-o", str(export), "box")
    with tarfile.open(export) as tar:
        names = tar.getnames()
    assert "renamed.txt" in names and "bin/busybox" in names


def test_pause_rename_kill_wait_port_and_prune(api: Api) -> None:  # noqa: F811
    sampan(api, "run", "-d", "--name", "p1", "busybox", "sleep", "60")
    sampan(api, "pause", "p1")
    assert "(Paused)" in sampan(api, "ps", "--format", "{{.Status}}").stdout
    sampan(api, "unpause", "p1")
    sampan(api, "rename", "p1", "p2")
    assert sampan(api, "ps", "--format", "{{.Names}}").stdout == "p2\n"
    assert sampan(api, "kill", "-s", "KILL", "p2").stdout == "p2\n"
    assert sampan(api, "wait", "p2").stdout == "137\n"
    assert sampan(api, "port", "p2").stdout == ""
    sampan(api, "create", "--name", "never", "busybox")
    assert sampan(api, "ps", "-l", "--format", "{{.Names}}").stdout == "never\n"
    out = sampan(api, "container", "prune", "-f").stdout
    assert out.startswith("Deleted Containers:\n") and "\n\nTotal reclaimed space: " in out and len(out.splitlines()) == 5
    assert sampan(api, "ps", "-aq").stdout == ""


def test_volume_commands_and_events(api: Api) -> None:  # noqa: F811
    since = str(time.time() - 1)
    assert sampan(api, "volume", "create", "--label", "k=v", "data").stdout == "data\n"
    assert sampan(api, "volume", "ls").stdout.splitlines() == ["DRIVER    VOLUME NAME", "local     data"]
    doc = json.loads(sampan(api, "volume", "inspect", "data").stdout)[0]
    assert doc["Name"] == "data" and doc["Labels"] == {"k": "v"}
    sampan(api, "run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    assert sampan(api, "run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/f").stdout == "kept\n"
    assert sampan(api, "volume", "rm", "data").stdout == "data\n"
    sampan(api, "volume", "create", "gone")
    out = sampan(api, "volume", "prune", "-af").stdout
    assert "gone" in out and "Total reclaimed space:" in out
    events = sampan(api, "events", "--since", since, "--until", str(time.time() + 0.5),
                    "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}").stdout.splitlines()
    assert "create data" in events and "destroy data" in events
    out = sampan(api, "system", "prune", "-f", "--volumes").stdout
    assert out.endswith("\n") and "Total reclaimed space:" in out
