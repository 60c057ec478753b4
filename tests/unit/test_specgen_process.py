"""Spec generation, process part: env merge, users from the rootfs, args, rlimits, tty."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan import errors
from sampan.engine.model import Container, ContainerSpec, HostSpec, Ulimit
from sampan.engine.specgen import SpecContext, generate
from sampan.engine.specgen.process import merge_env, resolve_user, with_process

PASSWD = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n"
GROUP = "root:x:0:\nwww:x:33:\nstaff:x:50:bob,www\nbob:x:1000:\naudio:x:29:bob\n"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return tmp_path


def container(**spec: object) -> Container:
    host = spec.pop("host", HostSpec())
    s = ContainerSpec(image="busybox", **spec)  # type: ignore[arg-type]
    argv = [*s.entrypoint, *s.cmd] or ["sh"]
    return Container(id="a" * 64, name="web", created="", spec=s, host=host,  # type: ignore[arg-type]
                     image_id="sha256:" + "b" * 64, path=argv[0], args=argv[1:])


def test_merge_env_overrides_by_name_and_removes_bare_names() -> None:
    image = ["PATH=/bin", "A=1", "B=2"]
    assert merge_env(image, ["A=x", "C=3", "B"]) == ["PATH=/bin", "A=x", "C=3"]
    assert merge_env(image, ["Foo", "Blank="]) == [*image, "Foo", "Blank="]  # kept, as Docker does


@pytest.mark.parametrize(
    ("user", "want"),
    [
        ("", (0, 0, [])),
        ("www", (33, 33, [50])),
        ("bob", (1000, 1000, [50, 29])),
        ("1000", (1000, 1000, [50, 29])),
        ("4242", (4242, 0, [])),
        ("www:staff", (33, 50, [])),
        ("4242:4343", (4242, 4343, [])),
    ],
)
def test_resolve_user(rootfs: Path, user: str, want: tuple[int, int, list[int]]) -> None:
    assert resolve_user(str(rootfs), user) == want


def test_unknown_user_and_group_are_errors(rootfs: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="unable to find user nobody2"):
        resolve_user(str(rootfs), "nobody2")
    with pytest.raises(errors.InvalidArgument, match="unable to find group nogroup"):
        resolve_user(str(rootfs), "www:nogroup")


def test_group_add(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "www", ["audio", "777"]) == (33, 33, [50, 29, 777])


def test_passwd_symlink_out_of_the_rootfs_resolves_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "passwd"
    outside.write_text("evil:x:4:4::/:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to(outside)  # absolute: resolved inside root, not found
    with pytest.raises(errors.InvalidArgument):
        resolve_user(str(root), "evil")


def test_process_section(rootfs: Path) -> None:
    c = container(cmd=["echo", "hi"], env=["A=1"], user="bob", working_dir="/srv", tty=True,
                  host=HostSpec(ulimits=[Ulimit("nofile", 100, 200)], console_size=[30, 100], oom_score_adj=5))
    spec: dict[str, object] = {"hostname": "web", "process": {}, "linux": {}}
    with_process(spec, SpecContext(container=c, rootfs=str(rootfs)))
    p = spec["process"]
    assert isinstance(p, dict)
    assert p["args"] == ["echo", "hi"]
    assert p["cwd"] == "/srv"
    assert p["terminal"] is True
    assert p["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50, 29]}
    assert p["env"][0].startswith("PATH=") and "A=1" in p["env"] and "HOSTNAME=web" in p["env"]
    assert "TERM=xterm" in p["env"]
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    assert p["consoleSize"] == {"height": 30, "width": 100}
    assert p["oomScoreAdj"] == 5


def test_bad_ulimit(rootfs: Path) -> None:
    c = container(host=HostSpec(ulimits=[Ulimit("bogus", 1, 1)]))
    with pytest.raises(errors.InvalidArgument, match="invalid ulimit type: bogus"):
        with_process({"process": {}, "linux": {}}, SpecContext(container=c, rootfs=str(rootfs)))


def test_generate_whole_spec_defaults(rootfs: Path) -> None:
    spec = generate(SpecContext(container=container(cmd=["sh"]), rootfs=str(rootfs)))
    assert spec["root"] == {"path": str(rootfs), "readonly": False}
    assert spec["hostname"] == "a" * 12
    kinds = [n["type"] for n in spec["linux"]["namespaces"]]
    assert sorted(kinds) == sorted(["mount", "pid", "ipc", "uts", "cgroup", "network"])
    assert "seccomp" in spec["linux"]
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests[:2] == ["/proc", "/dev"]


def test_host_network_keeps_the_host_netns(rootfs: Path) -> None:
    spec = generate(SpecContext(container=container(host=HostSpec(network_mode="host")), rootfs=str(rootfs)))
    assert "network" not in [n["type"] for n in spec["linux"]["namespaces"]]
    assert any(m["destination"] == "/sys" and m["type"] == "bind" for m in spec["mounts"])


def test_joined_netns_path(rootfs: Path) -> None:
    spec = generate(SpecContext(container=container(), rootfs=str(rootfs), netns_path="/run/netns/x"))
    assert {"type": "network", "path": "/run/netns/x"} in spec["linux"]["namespaces"]
