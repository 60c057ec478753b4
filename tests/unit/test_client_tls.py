"""``-H tcp://`` with ``--tlsverify --tlscacert --tlscert --tlskey``: mutual TLS on loopback."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sampan import errors
from sampan.client.address import Address, TLSConfig
from sampan.client.client import Client
from sampan.client.transport import SocketTransport

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", str(d / f"{name}-key.pem"), "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey",
                 str(d / "ca-key.pem"), "-CAcreateserial", "-days", "1", "-extfile", str(ext),
                 "-out", str(d / f"{name}.pem"))
    return d


@pytest.fixture
def tls_server(pki: Path) -> Iterator[int]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server-key.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(4096)
                    body = b'{"ApiVersion":"1.51","Peer":"%s"}' % conn.getpeercert()["subject"][0][0][1].encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except (ssl.SSLError, OSError):
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_mutual_tls_round_trip(pki: Path, tls_server: int) -> None:
    tls = TLSConfig(verify=True, cacert=str(pki / "ca.pem"), cert=str(pki / "client.pem"), key=str(pki / "client-key.pem"))
    client = Client(SocketTransport(Address("tcp", host="127.0.0.1", port=tls_server), tls=tls, timeout=10))
    assert client.version() == {"ApiVersion": "1.51", "Peer": "client"}


def test_untrusted_server_is_refused(pki: Path, tls_server: int, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
             "-keyout", str(tmp_path / "k.pem"), "-out", str(other))
    tls = TLSConfig(verify=True, cacert=str(other), cert=str(pki / "client.pem"), key=str(pki / "client-key.pem"))
    client = Client(SocketTransport(Address("tcp", host="127.0.0.1", port=tls_server), tls=tls, timeout=10))
    with pytest.raises(errors.Unavailable, match=r"TLS connection to tcp://127\.0\.0\.1"):
        client.version()
