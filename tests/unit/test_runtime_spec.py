"""config.json validation: every error names its field; a good config converts to typed data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from sampan._sys import mount as m
from sampan.errors import InvalidConfig, NotFound
from sampan.oci.defaults import DEFAULT_CAPABILITIES, default_config
from sampan.runtime import spec


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def _cfg(**changes: Any) -> dict[str, Any]:
    cfg = default_config(["sh", "-c", "true"])
    cfg.update(changes)
    return copy.deepcopy(cfg)


def test_default_config_converts(bundle: Path) -> None:
    s = spec.convert(_cfg(), bundle)
    assert s.root_path == str((bundle / "rootfs").resolve())
    assert s.process.args == ("sh", "-c", "true")
    assert s.hostname == "sampan"
    assert s.linux.namespace("pid") is not None and s.linux.namespace("user") is None
    assert s.process.capabilities is not None
    assert bin(s.process.capabilities.bounding).count("1") == len(DEFAULT_CAPABILITIES)
    proc = next(x for x in s.mounts if x.destination == "/proc")
    assert proc.flags == m.MS_NOSUID | m.MS_NOEXEC | m.MS_NODEV and proc.data == ""
    dev = next(x for x in s.mounts if x.destination == "/dev")
    assert dev.data == "mode=755,size=65536k" and dev.flags & m.MS_STRICTATIME
    assert s.linux.seccomp is not None


def test_load_reads_bundle(bundle: Path) -> None:
    import json

    (bundle / "config.json").write_text(json.dumps(_cfg()))
    assert spec.load(bundle).process.cwd == "/"
    with pytest.raises(NotFound):
        spec.load(bundle / "nope")
    (bundle / "config.json").write_text("{not json")
    with pytest.raises(InvalidConfig, match=r"^config.json: cannot parse"):
        spec.load(bundle)


def _mutations() -> list[tuple[str, Any, str]]:
    def ns(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"].append({"type": "foo"})

    def ns_twice(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"].append({"type": "pid"})

    def rootfs(cfg: dict[str, Any]) -> None:
        cfg["root"]["path"] = "missing"

    def seccomp_action(cfg: dict[str, Any]) -> None:
        cfg["linux"]["seccomp"]["syscalls"][2]["action"] = "SCMP_ACT_BOOM"

    def seccomp_default(cfg: dict[str, Any]) -> None:
        cfg["linux"]["seccomp"]["defaultAction"] = "nope"

    def seccomp_op(cfg: dict[str, Any]) -> None:
        cfg["linux"]["seccomp"]["syscalls"][2]["args"][0]["op"] = "SCMP_CMP_WHAT"

    def cap(cfg: dict[str, Any]) -> None:
        cfg["process"]["capabilities"]["effective"].append("CAP_FLY")

    def rlimit(cfg: dict[str, Any]) -> None:
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}, {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]

    def rlimit_order(cfg: dict[str, Any]) -> None:
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 1}]

    def bind_option(cfg: dict[str, Any]) -> None:
        cfg["mounts"].append({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "sizzle"]})

    def bind_source(cfg: dict[str, Any]) -> None:
        cfg["mounts"].append({"destination": "/x", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]})

    def relative_dest(cfg: dict[str, Any]) -> None:
        cfg["mounts"][1]["destination"] = "dev"

    def args(cfg: dict[str, Any]) -> None:
        cfg["process"]["args"] = []

    def cwd(cfg: dict[str, Any]) -> None:
        cfg["process"]["cwd"] = "relative"

    def uid(cfg: dict[str, Any]) -> None:
        cfg["process"]["user"]["uid"] = "root"

    def hostname_no_uts(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]

    def userns_no_maps(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"].append({"type": "user"})

    def device(cfg: dict[str, Any]) -> None:
        cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "x", "major": 10, "minor": 229}]

    def hook(cfg: dict[str, Any]) -> None:
        cfg["hooks"] = {"poststop": [{"path": "relative/hook"}]}

    def propagation(cfg: dict[str, Any]) -> None:
        cfg["linux"]["rootfsPropagation"] = "sideways"

    return [
        ("unknown namespace", ns, 'linux.namespaces[6].type: unknown namespace "foo"'),
        ("namespace twice", ns_twice, 'linux.namespaces[6].type: namespace "pid" given twice'),
        ("missing rootfs", rootfs, "root.path: rootfs"),
        ("seccomp action", seccomp_action, "linux.seccomp.syscalls[2].action: unknown action 'SCMP_ACT_BOOM'"),
        ("seccomp default", seccomp_default, "linux.seccomp.defaultAction: unknown action"),
        ("seccomp op", seccomp_op, "linux.seccomp.syscalls[2].args[0].op: unknown operator"),
        ("capability", cap, "process.capabilities.effective[14]: unknown capability 'CAP_FLY'"),
        ("rlimit", rlimit, "process.rlimits[1].type: unknown rlimit 'RLIMIT_BOGUS'"),
        ("rlimit order", rlimit_order, "process.rlimits[0]: soft limit 10 is above hard limit 1"),
        ("bind option", bind_option, "mounts[7].options[1]: unknown mount option 'sizzle' for a bind mount"),
        ("bind source", bind_source, "mounts[7].source: bind source /no/such/dir does not exist"),
        ("relative destination", relative_dest, "mounts[1].destination: must be an absolute path"),
        ("no args", args, "process.args: must name a program"),
        ("relative cwd", cwd, "process.cwd: must be an absolute path"),
        ("uid type", uid, "process.user.uid: expected int, got str"),
        ("hostname without uts", hostname_no_uts, "hostname: setting the hostname needs a new uts namespace"),
        ("userns without maps", userns_no_maps, "linux.uidMappings: a new user namespace needs uid and gid mappings"),
        ("device type", device, "linux.devices[0].type: unknown device type 'x'"),
        ("hook path", hook, "hooks.poststop[0].path: must be an absolute path"),
        ("propagation", propagation, "linux.rootfsPropagation: unknown propagation 'sideways'"),
    ]


@pytest.mark.parametrize(("name", "mutate", "message"), _mutations(), ids=[x[0] for x in _mutations()])
def test_errors_name_the_field(bundle: Path, name: str, mutate: Any, message: str) -> None:
    cfg = _cfg()
    mutate(cfg)
    with pytest.raises(InvalidConfig) as info:
        spec.convert(cfg, bundle)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_user_namespace_with_maps(bundle: Path) -> None:
    cfg = _cfg()
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    s = spec.convert(cfg, bundle)
    assert s.linux.uid_mappings[0].host_id == 100000


def test_mount_option_conversion() -> None:
    mnt = spec.mount({"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro", "nosuid", "rslave"]}, "mounts[0]")
    assert mnt.bind and mnt.flags & m.MS_REC and mnt.flags & m.MS_RDONLY and mnt.flags & m.MS_NOSUID
    assert mnt.propagation == m.MS_SLAVE | m.MS_REC
    tmp = spec.mount({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rw", "size=1m", "mode=1777"]}, "mounts[1]")
    assert not tmp.bind and tmp.data == "size=1m,mode=1777" and not tmp.flags & m.MS_RDONLY


def test_idmap_needs_a_user_namespace(bundle: Path) -> None:
    cfg = _cfg()
    cfg["mounts"].append({"destination": "/m", "type": "bind", "source": "/tmp", "options": ["rbind", "idmap"]})
    with pytest.raises(InvalidConfig, match=r"^mounts: idmap mounts need a new user namespace"):
        spec.convert(cfg, bundle)
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 10}]
    mnt = spec.convert(cfg, bundle).mounts[-1]
    assert mnt.idmap and not mnt.idmap_recursive
    bad = {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}
    with pytest.raises(InvalidConfig, match=r"^mounts\[0\]\.options\[0\]: 'idmap' needs a bind mount"):
        spec.mount(bad, "mounts[0]")
