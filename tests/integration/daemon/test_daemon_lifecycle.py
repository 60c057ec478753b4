"""sampand as a process: start-up, the data-root lock, listeners, signals, restart."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_fixture import REPO, cleanup, daemon, new_daemon  # noqa: F401

pytestmark = pytest.mark.root


def run_daemon(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sampan.daemon", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_socket_and_pidfile_then_sigterm_removes_them(daemon) -> None:  # noqa: F811
    assert daemon.proc is not None
    assert daemon.pidfile.read_text().strip() == str(daemon.proc.pid)
    st = daemon.socket.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660 and (st.st_uid, st.st_gid) == (0, 0)
    lock = daemon.data_root / "sampand.lock"
    assert lock.read_text().strip() == str(daemon.proc.pid)
    assert (daemon.data_root / "sampan.db").exists()
    assert daemon.stop(signal.SIGTERM) == 0
    assert not daemon.socket.exists()
    assert not daemon.pidfile.exists()
    assert "stopped" in daemon.log_text()


def test_sigint_is_a_clean_shutdown_too(daemon) -> None:  # noqa: F811
    assert daemon.stop(signal.SIGINT) == 0
    assert not daemon.socket.exists() and not daemon.pidfile.exists()


def test_sigterm_with_an_events_stream_open(daemon) -> None:  # noqa: F811
    conn = daemon.connection(timeout=10)
    conn.request("GET", "/events")
    assert conn.getresponse().status == 200
    assert daemon.stop(signal.SIGTERM, timeout=8) == 0
    conn.close()


def test_second_daemon_on_the_same_data_root_is_refused(daemon, tmp_path: Path) -> None:  # noqa: F811
    other = new_daemon(tmp_path / "second")
    other.data_root = daemon.data_root
    try:
        result = run_daemon(other.args()[3:])
        assert result.returncode == 1
        assert f"data root {daemon.data_root} is in use by another sampand" in result.stderr
        assert f"pid {daemon.proc.pid}" in result.stderr  # type: ignore[union-attr]
        assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback
        assert not other.socket.exists()
    finally:
        cleanup(other)
    assert daemon.request("GET", "/_ping").status == 200  # the first one is unharmed


def test_a_socket_in_use_is_refused_and_a_stale_one_replaced(daemon, tmp_path: Path) -> None:  # noqa: F811
    other = new_daemon(tmp_path / "second")
    try:
        args = other.args()
        args[args.index("-H") + 1] = daemon.url
        result = run_daemon(args[3:])
        assert result.returncode == 1
        assert f"socket {daemon.socket} is in use by another daemon" in result.stderr
        assert daemon.request("GET", "/_ping").status == 200
        # a socket file nobody listens on (a crashed daemon) is replaced
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(other.socket))
        other.start()
        assert other.request("GET", "/_ping").status == 200
    finally:
        cleanup(other)


def test_pidfile_of_a_live_process_is_refused(tmp_path: Path) -> None:
    d = new_daemon(tmp_path)
    d.pidfile.write_text(f"{os.getpid()}\n")
    try:
        result = run_daemon(d.args()[3:])
        assert result.returncode == 1
        assert "pid file found" in result.stderr
        assert d.pidfile.read_text().strip() == str(os.getpid())
    finally:
        cleanup(d)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-H", "tcp://127.0.0.1:2399"], "without mutual TLS"),
        (["--log-level", "loud"], "invalid log level"),
        (["--config-file", "/nonexistent/daemon.json"], "no such file"),
    ],
)
def test_bad_configuration_exits_1_with_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    d = new_daemon(tmp_path)
    try:
        result = run_daemon([*d.args()[3:], *extra])
        assert result.returncode == 1
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert not d.socket.exists()
    finally:
        cleanup(d)


def test_unknown_key_in_config_file_is_named(tmp_path: Path) -> None:
    d = new_daemon(tmp_path)
    conf = tmp_path / "daemon.json"
    conf.write_text('{"debug": true, "bogus-key": 1}')
    try:
        result = run_daemon([*d.args()[3:], "--config-file", str(conf)])
        assert result.returncode == 1
        assert "don't match any configuration option: bogus-key" in result.stderr
    finally:
        cleanup(d)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certs(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                 "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
                 "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_tcp_with_mutual_tls(tmp_path: Path, names) -> None:  # type: ignore[no-untyped-def]
    certs = _certs(tmp_path)
    port = names.free_port()
    d = new_daemon(tmp_path / "d")
    d.extra = ["-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(certs["ca.pem"]),
               "--tlscert", str(certs["server.pem"]), "--tlskey", str(certs["server.key"])]
    try:
        d.start()

        def get(with_client_cert: bool) -> bytes:
            ctx = ssl.create_default_context(cafile=str(certs["ca.pem"]))
            if with_client_cert:
                ctx.load_cert_chain(str(certs["client.pem"]), str(certs["client.key"]))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
                return data

        assert get(True).startswith(b"HTTP/1.1 200")
        try:  # TLS 1.3 reports the refusal after the handshake: an alert or a bare EOF
            refused = get(False)
        except (ssl.SSLError, OSError):
            refused = b""
        assert refused == b""
        # the docker CLI speaks mutual TLS to it as well
        env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1",
               "DOCKER_CONFIG": str(tmp_path / "dc")}
        (tmp_path / "certs").mkdir()
        for src, dst in (("ca.pem", "ca.pem"), ("client.pem", "cert.pem"), ("client.key", "key.pem")):
            (tmp_path / "certs" / dst).write_bytes(certs[src].read_bytes())
        env["DOCKER_CERT_PATH"] = str(tmp_path / "certs")
        out = subprocess.run(["docker", "version", "--format", "{{.Server.APIVersion}}"],
                             env=env, capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == "1.51", out.stderr
    finally:
        cleanup(d)


def test_images_survive_a_restart(daemon, busybox_rootfs_tar: Path) -> None:  # noqa: F811
    with open(busybox_rootfs_tar, "rb") as f:
        r = daemon.request("POST", "/v1.51/images/create?fromSrc=-&repo=keep&tag=1", body=f,
                           headers={"Content-Type": "application/x-tar"})
    image_id = r.lines()[-1]["status"]
    assert daemon.stop() == 0
    daemon.start()
    r = daemon.request("GET", "/images/keep:1/json")
    assert r.status == 200 and r.json()["Id"] == image_id
    assert list((daemon.data_root / "tmp").iterdir()) == []


def _start_upload(daemon, path: str, total: int, sent: int) -> socket.socket:  # noqa: F811
    """Send the headers of a POST announcing ``total`` bytes, then only ``sent`` of them."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(daemon.socket))
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
              f"Content-Length: {total}\r\n\r\n".encode())
    s.sendall(os.urandom(sent))
    return s


def _wait_for(predicate, timeout: float = 10) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_client_gone_mid_upload_leaves_nothing(daemon) -> None:  # noqa: F811
    for path in ("/v1.51/images/load", "/v1.51/images/create?fromSrc=-&repo=half"):
        s = _start_upload(daemon, path, 8 << 20, 1 << 20)
        s.close()
    assert daemon.request("GET", "/v1.51/images/json").json() == []
    assert _wait_for(lambda: list((daemon.data_root / "tmp").iterdir()) == [])
    assert daemon.request("GET", "/_ping").status == 200


def test_sigterm_during_an_upload_still_stops_cleanly(daemon) -> None:  # noqa: F811
    s = _start_upload(daemon, "/v1.51/images/create?fromSrc=-&repo=half", 8 << 20, 1 << 20)
    try:
        assert daemon.stop(signal.SIGTERM, timeout=15) == 0
    finally:
        s.close()
    assert not daemon.socket.exists() and not daemon.pidfile.exists()
    daemon.start()
    assert daemon.request("GET", "/v1.51/images/json").json() == []
    assert list((daemon.data_root / "tmp").iterdir()) == []


def test_storage_driver_flag_reaches_info(tmp_path: Path) -> None:
    d = new_daemon(tmp_path, "--storage-driver", "native")
    try:
        d.start()
        info = d.request("GET", "/v1.51/info").json()
        assert info["Driver"] == "native" and info["DockerRootDir"] == str(d.data_root)
    finally:
        cleanup(d)


def test_stalled_uploads_do_not_starve_other_requests(daemon) -> None:  # noqa: F811
    stalled = [_start_upload(daemon, "/v1.51/images/load", 8 << 20, 4096) for _ in range(10)]
    try:
        for _ in range(3):
            assert daemon.request("GET", "/v1.51/images/json", timeout=5).json() == []
            assert daemon.request("GET", "/v1.51/info", timeout=5).status == 200
    finally:
        for s in stalled:
            s.close()
