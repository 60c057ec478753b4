"""sampand's flags and daemon.json (daemon/config.py and daemon/main.py's parser)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sampan.daemon import config
from sampan.daemon.main import load_config
from sampan.errors import InvalidArgument, InvalidConfig


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(data))
    return path


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    cfg = load_config(["--config-file", str(write(tmp_path, {}))])
    assert cfg.data_root == Path("/var/lib/sampan")
    assert cfg.exec_root == Path("/run/sampan")
    assert [str(lis) for lis in cfg.listeners] == ["unix:///run/sampan/sampan.sock"]
    assert cfg.pidfile_path == Path("/run/sampan/sampand.pid")
    assert cfg.log_level == "info"


def test_flags(tmp_path: Path) -> None:
    cfg = load_config([
        "--config-file", str(write(tmp_path, {})),
        "--data-root", "/d", "--exec-root", "/e", "-H", "unix:///s1", "--host", "unix:///s2",
        "--pidfile", "/p", "--debug", "--storage-driver", "native",
    ])
    assert (cfg.data_root, cfg.exec_root, cfg.pidfile) == (Path("/d"), Path("/e"), Path("/p"))
    assert [lis.path for lis in cfg.listeners] == ["/s1", "/s2"]
    assert cfg.log_level == "debug" and cfg.debug
    assert cfg.storage_driver == "native"


def test_file_settings_apply(tmp_path: Path) -> None:
    path = write(tmp_path, {"data-root": "/x", "hosts": ["unix:///y.sock"], "log-level": "warn"})
    cfg = load_config(["--config-file", str(path)])
    assert cfg.data_root == Path("/x")
    assert cfg.listeners[0].path == "/y.sock"
    assert cfg.log_level == "warn"


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"data-root": "/x", "colour": "blue"})
    with pytest.raises(InvalidArgument, match="don't match any configuration option: colour"):
        load_config(["--config-file", str(path)])


def test_key_in_flag_and_file_is_an_error_naming_both(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": ["unix:///file.sock"]})
    with pytest.raises(InvalidArgument) as exc:
        load_config(["--config-file", str(path), "-H", "unix:///flag.sock"])
    msg = str(exc.value)
    assert "specified both as a flag and in the configuration file" in msg
    assert "unix:///flag.sock" in msg and "unix:///file.sock" in msg


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"^debug: must be a boolean"):
        load_config(["--config-file", str(write(tmp_path, {"debug": "yes"}))])


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file"):
        load_config(["--config-file", str(tmp_path / "absent.json")])
    assert config.read_file(tmp_path / "absent.json", explicit=False) == {}


def test_bad_json_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("{not json")
    with pytest.raises(InvalidArgument, match="unable to configure the sampan daemon"):
        load_config(["--config-file", str(path)])


def test_tcp_needs_mutual_tls(tmp_path: Path) -> None:
    empty = str(write(tmp_path, {}))
    with pytest.raises(InvalidArgument, match=r"refusing to listen on tcp://127.0.0.1:2376 without mutual TLS"):
        load_config(["--config-file", empty, "-H", "tcp://127.0.0.1:2376"])
    with pytest.raises(InvalidArgument, match="--tlscacert, --tlskey missing"):
        load_config(["--config-file", empty, "-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscert", "/c"])
    cfg = load_config([
        "--config-file", empty, "-H", "tcp://127.0.0.1:2376", "--tlsverify",
        "--tlscacert", "/ca", "--tlscert", "/c", "--tlskey", "/k",
    ])
    assert (cfg.listeners[0].host, cfg.listeners[0].port) == ("127.0.0.1", 2376)


@pytest.mark.parametrize("host", ["http://x", "tcp://nohost", "unix://relative", "fd://"])
def test_bad_hosts(host: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid host"):
        config.parse_host(host)


def test_bad_log_level_and_driver(tmp_path: Path) -> None:
    empty = str(write(tmp_path, {}))
    with pytest.raises(InvalidArgument, match="invalid log level 'loud'"):
        load_config(["--config-file", empty, "--log-level", "loud"])
    with pytest.raises(InvalidArgument, match="unknown storage driver 'zfs'"):
        load_config(["--config-file", empty, "--storage-driver", "zfs"])
