"""Spec generation, security part: capabilities, --privileged, seccomp, masked paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sampan import errors
from sampan.engine.model import Container, ContainerSpec, HostSpec
from sampan.engine.specgen import SpecContext, generate
from sampan.engine.specgen.security import capabilities, host_capabilities
from sampan.oci.defaults import DEFAULT_CAPABILITIES, MASKED_PATHS


def container(host: HostSpec) -> Container:
    return Container(id="c" * 64, name="x", created="", spec=ContainerSpec(image="i", cmd=["sh"]), host=host,
                     image_id="sha256:" + "d" * 64, path="sh")


def spec_for(host: HostSpec, tmp_path: Path) -> dict:  # type: ignore[type-arg]
    return generate(SpecContext(container=container(host), rootfs=str(tmp_path)))


def test_host_capabilities_reads_capbnd(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t0000000000000009\n")  # bits 0 and 3: CAP_CHOWN, CAP_FOWNER
    assert host_capabilities(str(status)) == ["CAP_CHOWN", "CAP_FOWNER"]


def test_privileged_gets_exactly_the_host_bounding_set() -> None:
    host = ["CAP_CHOWN", "CAP_SYS_ADMIN"]  # a host without CAP_SYS_RESOURCE
    assert capabilities(True, [], [], host) == sorted(host)


def test_add_and_drop() -> None:
    host = host_capabilities()
    caps = capabilities(False, ["NET_ADMIN", "cap_sys_ptrace"], ["CHOWN", "MKNOD"], host)
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_PTRACE" in caps
    assert "CAP_CHOWN" not in caps and "CAP_MKNOD" not in caps
    assert capabilities(False, [], ["ALL"], host) == []
    assert capabilities(False, ["CHOWN"], ["ALL"], host) == ["CAP_CHOWN"]
    assert set(capabilities(False, ["ALL"], [], host)) == set(host)


def test_unknown_capability() -> None:
    with pytest.raises(errors.InvalidArgument, match="unknown capability"):
        capabilities(False, ["NOPE"], [], [])


def test_default_security(tmp_path: Path) -> None:
    spec = spec_for(HostSpec(), tmp_path)
    assert spec["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert spec["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert spec["process"]["noNewPrivileges"] is False


def test_privileged_spec(tmp_path: Path) -> None:
    spec = spec_for(HostSpec(privileged=True), tmp_path)
    assert spec["process"]["capabilities"]["bounding"] == sorted(host_capabilities())
    assert "maskedPaths" not in spec["linux"] and "seccomp" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sys_mount["options"]


def test_security_opts(tmp_path: Path) -> None:
    spec = spec_for(HostSpec(security_opt=["no-new-privileges", "seccomp=unconfined"]), tmp_path)
    assert spec["process"]["noNewPrivileges"] is True
    assert "seccomp" not in spec["linux"]
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile))
    for value in (str(path), json.dumps(profile)):
        spec = spec_for(HostSpec(security_opt=[f"seccomp={value}"]), tmp_path)
        assert spec["linux"]["seccomp"]["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]


def test_bad_security_opts(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="Invalid --security-opt"):
        spec_for(HostSpec(security_opt=["bogus=1"]), tmp_path)
    with pytest.raises(errors.InvalidArgument, match="seccomp profile"):
        spec_for(HostSpec(security_opt=["seccomp=/nonexistent.json"]), tmp_path)


def test_non_root_user_has_no_effective_caps(tmp_path: Path) -> None:
    c = container(HostSpec())
    c.spec.user = "1000"
    spec = generate(SpecContext(container=c, rootfs=str(tmp_path)))
    assert spec["process"]["capabilities"]["effective"] == []
    assert spec["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
