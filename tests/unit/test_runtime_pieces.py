"""Pure pieces of the runtime: secure_join, the state machine, the seccomp compiler, the JSON
codec, the record decorator, the CLI parser, Docker's default seccomp resolution."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sampan.errors import Conflict, InvalidArgument, InvalidConfig
from sampan.oci import jsoncodec
from sampan.oci.defaults import DEFAULT_CAPABILITIES, default_seccomp, seccomp_profile
from sampan.oci.record import as_dict, field, record
from sampan.runtime import seccomp, state
from sampan.runtime.rootfs import secure_join
from sampan.runtime_cli import UsageError, _parse, _signal, dispatch


def test_secure_join_stays_in_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "rel").symlink_to("../../../../etc")
    (root / "loop").symlink_to("loop")
    (root / "chain").symlink_to("abs/../abs")
    r = str(root)
    assert secure_join(r, "/abs/passwd") == f"{r}/etc/passwd"
    assert secure_join(r, "/rel/x") == f"{r}/etc/x"
    assert secure_join(r, "/../../../x") == f"{r}/x"
    assert secure_join(r, "/chain/y") == f"{r}/etc/y"
    assert secure_join(r, "/new/dir/../z") == f"{r}/new/z"
    assert secure_join(r, "/") == r
    with pytest.raises(InvalidConfig, match="too many levels"):
        secure_join(r, "/loop/x")


def test_state_machine() -> None:
    st = state.State(id="c", bundle="/b")
    assert st.status == state.CREATING
    st.move(state.CREATED)
    st.move(state.RUNNING)
    st.move(state.PAUSED)
    st.move(state.RUNNING)
    with pytest.raises(Conflict, match="cannot make it created"):
        st.move(state.CREATED)
    st.move(state.STOPPED)
    with pytest.raises(Conflict):
        st.move(state.RUNNING)
    assert st.to_oci()["pid"] == 0 and st.to_oci()["status"] == "stopped"


def test_state_dir_round_trip(tmp_path: Path) -> None:
    sd = state.StateDir(tmp_path, "abc")
    sd.create()
    with pytest.raises(Conflict, match="container with id exists: abc"):
        sd.create()
    st = state.State(id="abc", bundle="/b", pid=os.getpid(), pid_start=state.pid_start_time(os.getpid()) or 0, status=state.RUNNING, annotations={"a": "b"})
    sd.save(st)
    loaded = sd.load()
    assert loaded == st and loaded.alive()
    st.pid_start += 1  # a recycled pid: same number, other process
    sd.save(st)
    assert sd.load().status == state.STOPPED
    assert state.list_ids(tmp_path) == ["abc"]
    sd.remove()
    assert not os.path.exists(sd.path) and state.list_ids(tmp_path) == []
    for bad in ("", "..", "a/b", "a b"):
        with pytest.raises(InvalidArgument):
            state.StateDir(tmp_path, bad)


def test_default_profile_compiles_and_caches(tmp_path: Path) -> None:
    section = default_seccomp(DEFAULT_CAPABILITIES)
    prog = seccomp.program(section, str(tmp_path))
    assert len(prog) % 8 == 0 and len(prog) // 8 > 300  # ~1000 instructions of sock_filter
    assert len(os.listdir(tmp_path)) == 1
    assert seccomp.program(section, str(tmp_path)) == prog  # from the cache


def test_seccomp_rejects_unknown_architecture() -> None:
    with pytest.raises(InvalidConfig, match=r"linux\.seccomp"):
        seccomp.compile_section({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"], "syscalls": []})


def test_default_seccomp_follows_capabilities() -> None:
    names = lambda sec: {n for rule in sec["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}  # noqa: E731
    plain = names(default_seccomp(DEFAULT_CAPABILITIES, machine="x86_64"))
    admin = names(default_seccomp([*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"], machine="x86_64"))
    for blocked in ("mount", "unshare", "setns", "keyctl", "add_key", "bpf", "reboot", "init_module"):
        assert blocked not in plain
    assert {"mount", "unshare", "setns"} <= admin
    assert {"read", "write", "execve", "arch_prctl", "chroot"} <= plain
    assert "arm_fadvise64_64" not in plain
    assert "Apache" in seccomp_profile()["comment"]


def test_jsoncodec_matches_json() -> None:
    doc = {"a": [1, 2.5, None, True, "é\"\n"], "b": {"c": {}}, "n": -3, "big": 2**70}
    assert jsoncodec.loads(json.dumps(doc)) == doc
    assert jsoncodec.dumps(doc) == json.dumps(doc)
    assert jsoncodec.dumps(doc, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert jsoncodec.dumps(doc, compact=True) == json.dumps(doc, separators=(",", ":"))
    assert jsoncodec.loads(b" [1]\n") == [1]
    for bad in ("{", "[1,]", "1 2", "", "nul"):
        with pytest.raises(ValueError):
            jsoncodec.loads(bad)
    with pytest.raises(TypeError):
        jsoncodec.dumps({"x": object()})


@record
class _Point:
    x: int
    y: int = 2
    tags: list[str] = field(default_factory=list)


def test_record_behaves_like_a_dataclass() -> None:
    p = _Point(1)
    assert (p.x, p.y, p.tags) == (1, 2, [])
    assert _Point(1, y=2) == p and _Point(1, 3) != p
    assert _Point(1).tags is not p.tags
    assert as_dict(_Point(4, 5, ["a"])) == {"x": 4, "y": 5, "tags": ["a"]}
    with pytest.raises(TypeError):
        _Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Point(1, z=3)  # type: ignore[call-arg]


def test_cli_parser() -> None:
    table = {"--bundle": True, "--detach": False, "--env": True}
    opts, rest = _parse(["-b", "/x", "--detach", "--env=A=1", "-e", "B=2", "id"], table, stop_at_positional=False)
    assert opts == {"--bundle": "/x", "--detach": True, "--env": ["A=1", "B=2"]} and rest == ["id"]
    opts, rest = _parse(["--root", "/r", "exec", "--tty"], {"--root": True}, stop_at_positional=True)
    assert opts == {"--root": "/r"} and rest == ["exec", "--tty"]
    assert _parse(["-f", "json"], {"--format": True}, stop_at_positional=False)[0] == {"--format": "json"}
    assert _parse(["-f"], {"--force": False}, stop_at_positional=False)[0] == {"--force": True}
    with pytest.raises(UsageError, match="flag provided but not defined: --nope"):
        _parse(["--nope"], table, stop_at_positional=False)
    assert _signal("KILL") == 9 and _signal("SIGTERM") == 15 and _signal("10") == 10
    with pytest.raises(UsageError):
        _signal("SIGNOPE")
    with pytest.raises(UsageError, match="no such command"):
        dispatch(["--root", "/tmp/x", "fly"])


def test_fast_launcher_flushes_and_exits_with_the_code(tmp_path: Path) -> None:
    """The launcher script (run by path, -I -S) leaves through os._exit: its output must be
    flushed first, and the exit code is the command's."""
    import subprocess
    import sys

    launcher = Path(__file__).resolve().parents[2] / "sampan" / "runtime_main.py"
    r = subprocess.run([sys.executable, "-I", "-S", str(launcher), "features"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["ociVersionMax"] == "1.2.0"
    r = subprocess.run([sys.executable, "-I", "-S", str(launcher), "--root", str(tmp_path), "state", "nope"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "nope" in r.stderr and r.stdout == ""


def test_features_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch(["features"]) == 0
    feats = json.loads(capsys.readouterr().out)
    assert "user" in feats["linux"]["namespaces"] and feats["linux"]["seccomp"]["enabled"]
