"""image/config.py: `docker import -c` changes, platforms, timestamps."""

from __future__ import annotations

import pytest

from sampan.errors import InvalidArgument
from sampan.image import config as cfg


def test_changes_build_the_config_section() -> None:
    out = cfg.apply_changes(
        {"Env": ["A=0"]},
        [
            'CMD ["sh", "-c", "echo hi"]',
            "ENTRYPOINT /bin/run --x",
            "ENV A=1 B=two",
            "ENV C three words",
            'LABEL a=b "c d"=e',
            "EXPOSE 80 53/udp",
            'VOLUME ["/data"]',
            "VOLUME /v1 /v2",
            "USER nobody",
            "WORKDIR /srv",
            "STOPSIGNAL SIGTERM",
            "ONBUILD RUN true",
            "",
        ],
    )
    assert out["Cmd"] == ["sh", "-c", "echo hi"]
    assert out["Entrypoint"] == ["/bin/sh", "-c", "/bin/run --x"]
    assert out["Env"] == ["A=1", "B=two", "C=three words"]
    assert out["Labels"] == {"a": "b", "c d": "e"}
    assert out["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert out["Volumes"] == {"/data": {}, "/v1": {}, "/v2": {}}
    assert (out["User"], out["WorkingDir"], out["StopSignal"]) == ("nobody", "/srv", "SIGTERM")
    assert out["OnBuild"] == ["RUN true"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RUN true", "RUN is not a valid change command"),
        ("FROM x", "FROM is not a valid change command"),
        ("ENV", "at least one argument"),
        ("ENV onlykey", "two arguments"),
        ("EXPOSE http", "invalid containerPort"),
        ("USER", "exactly one argument"),
    ],
)
def test_bad_changes(line: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        cfg.apply_changes({}, [line])


def test_platform_and_time() -> None:
    assert cfg.parse_platform("linux/arm64/v8") == ("linux", "arm64", "v8")
    assert cfg.parse_platform("linux/x86_64")[1] == "amd64"
    with pytest.raises(InvalidArgument, match="invalid platform"):
        cfg.parse_platform("linux//x")
    assert cfg.parse_time("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456789)
    assert cfg.parse_time("2024-01-02T03:04:05+01:00") == 1704161045.0
    assert cfg.parse_time("garbage") == 0.0
    now = cfg.now_rfc3339()
    assert now.endswith("Z") and len(now) == len("2024-01-02T03:04:05.123456789Z")
    config = cfg.new_config(diff_ids=["sha256:" + "a" * 64], created=now, platform="linux/amd64")
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}
    assert cfg.encode(config) == cfg.encode(dict(config))
