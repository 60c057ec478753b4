"""sampan's port of docker-py's api_build_test.py, the build tests of models_images_test.py and
api_healthcheck_test.py, run with docker-py against a real sampand (with a bridge of its own:
tests/e2e/dockerpy_netd.py, for ``network_mode`` and ``extra_hosts``).

Written for sampan from reading docker-py's tests (tests/integration/ in docker/docker-py); the
tests not ported are listed with their reason in docs/docker-py-tests.md.  ``FROM alpine``
became ``FROM busybox`` (the only base image here); ``ADD https://...`` reads from an HTTP
server on loopback.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Names
from tests.e2e.dockerpy_netd import api, bridge_opt, mod_names, networks_removed  # noqa: F401
from tests.integration.container_daemon import Api, leak_check  # noqa: F401

docker = pytest.importorskip("docker")

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)

BUSYBOX = "busybox"
SECOND = 1_000_000_000


def script(*lines: str) -> io.BytesIO:
    return io.BytesIO("\n".join(lines).encode())


def models(client: Any) -> Any:
    dc = docker.DockerClient.__new__(docker.DockerClient)
    dc.api = client
    return dc


def run_logs(client: Any, image: str, cmd: Any) -> bytes:
    c = client.create_container(image, cmd)
    client.start(c)
    client.wait(c)
    return bytes(client.logs(c))


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


@contextlib.contextmanager
def http_file_server(data: bytes) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/silence.tar.gz"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module", autouse=True)
def warm_builder(api: Api) -> None:  # noqa: F811
    """The daemon's first build starts its RUN-step server (a long-lived child): outside the leak checks."""
    from sampan.storage.testing import build_tar

    r = api.d.request("POST", "/build?t=warm&rm=1", build_tar({"Dockerfile": b"FROM busybox\nRUN true\n"}),
                      {"Content-Type": "application/x-tar"}, timeout=120)
    assert r.status == 200 and b"errorDetail" not in r.body, r.body
    api.call("DELETE", "/images/warm", status=200)


# ------------------------------------------------------------------ BuildTest (api_build_test.py)


def test_build_with_proxy(client: Any) -> None:
    """docker-py turns its proxy configuration into build args (with buildargs taking precedence)."""
    client._proxy_configs = docker.utils.proxy.ProxyConfig(ftp="a", http="b", https="c", no_proxy="d")
    try:
        checks = ['RUN env | grep "FTP_PROXY=a"', 'RUN env | grep "ftp_proxy=a"', 'RUN env | grep "HTTP_PROXY=b"',
                  'RUN env | grep "http_proxy=b"', 'RUN env | grep "HTTPS_PROXY=c"', 'RUN env | grep "https_proxy=c"',
                  'RUN env | grep "NO_PROXY=d"', 'RUN env | grep "no_proxy=d"']
        logs = list(client.build(fileobj=script("FROM busybox", *checks), decode=True))
        assert "errorDetail" not in logs[-1], logs[-1]
        checks[0:2] = ['RUN env | grep "FTP_PROXY=XXX"', 'RUN env | grep "ftp_proxy=xxx"']
        logs = list(client.build(fileobj=script("FROM busybox", *checks), decode=True,
                                 buildargs={"FTP_PROXY": "XXX", "ftp_proxy": "xxx"}))
        assert "errorDetail" not in logs[-1], logs[-1]
    finally:
        client._proxy_configs = docker.utils.proxy.ProxyConfig()


def test_build_streaming(client: Any) -> None:
    """test_build_streaming (upstream's ADD URL is on loopback here).  test_build_from_stringio is
    disabled upstream (it returns at once): docker-py refuses a StringIO before any request."""
    with http_file_server(b"silence") as url:
        lines = ["FROM busybox", "RUN mkdir -p /tmp/test", "EXPOSE 8080", f"ADD {url} /tmp/silence.tar.gz"]
        logs = list(client.build(fileobj=script(*lines), decode=True, tag="streamed"))
    assert logs and "errorDetail" not in logs[-1], logs[-1]
    assert run_logs(client, "streamed", ["cat", "/tmp/silence.tar.gz"]) == b"silence"


def test_build_with_dockerignore(client: Any, tmp_path: Path) -> None:
    base = write(tmp_path, {
        "Dockerfile": "FROM busybox\nADD . /test",
        ".dockerignore": "\n".join(["ignored", "Dockerfile", ".dockerignore", " ignored-with-spaces ",
                                    "!ignored/subdir/excepted-file", "! ignored/subdir/excepted-with-spaces  ",
                                    "", "#*"]),
        "not-ignored": "this file should not be ignored",
        "#file.txt": "this file should not be ignored",
        "ignored-with-spaces": "this file should be ignored",
        "ignored/subdir/file": "this file should be ignored",
        "ignored/subdir/excepted-file": "this file should not be ignored",
        "ignored/subdir/excepted-with-spaces": "this file should not be ignored",
    })
    tag = "docker-py-test-build-with-dockerignore"
    for _ in client.build(path=str(base), tag=tag):
        pass
    logs = run_logs(client, tag, ["find", "/test", "-type", "f"]).decode()
    assert sorted(filter(None, logs.split("\n"))) == sorted([
        "/test/#file.txt", "/test/ignored/subdir/excepted-with-spaces", "/test/ignored/subdir/excepted-file",
        "/test/not-ignored"])


def test_build_with_buildargs_labels_shmsize_isolation(client: Any) -> None:
    for _ in client.build(fileobj=script("FROM scratch", "ARG test", "USER $test"), tag="buildargs",
                          buildargs={"test": "OK"}):
        pass
    assert client.inspect_image("buildargs")["Config"]["User"] == "OK"
    for _ in client.build(fileobj=script("FROM scratch"), tag="labels", labels={"test": "OK"}):
        pass
    assert client.inspect_image("labels")["Config"]["Labels"] == {"test": "OK"}
    logs = list(client.build(fileobj=script("FROM scratch", "CMD sh -c \"echo 'Hello, World!'\""), tag="shmsize",
                             shmsize=134217728, decode=True))
    assert "errorDetail" not in logs[-1]
    logs = list(client.build(fileobj=script("FROM scratch", "CMD sh -c \"echo 'Deaf To All But The Song'\""),
                             tag="isolation", isolation="default", decode=True))
    assert "errorDetail" not in logs[-1]


def test_build_with_cache_from(client: Any) -> None:
    dockerfile = script("FROM busybox", "ENV FOO=bar", "RUN touch baz", "RUN touch bax")
    for _ in client.build(fileobj=dockerfile, tag="build1"):
        pass
    dockerfile.seek(0)
    counter = sum("Using cache" in chunk.get("stream", "")
                  for chunk in client.build(fileobj=dockerfile, tag="build2", cache_from=["build1"], decode=True))
    assert counter == 3
    client.remove_image("build2")
    dockerfile.seek(0)
    counter = sum("Using cache" in chunk.get("stream", "")
                  for chunk in client.build(fileobj=dockerfile, tag="build2", cache_from=["nosuchtag"], decode=True))
    assert counter == 0


def test_build_container_with_target(client: Any) -> None:
    dockerfile = script("FROM busybox as first", "RUN mkdir -p /tmp/test", "RUN touch /tmp/silence.tar.gz",
                        "FROM busybox", "WORKDIR /root/", "COPY --from=first /tmp/silence.tar.gz .",
                        'ONBUILD RUN echo "This should not be in the final image"')
    for _ in client.build(fileobj=dockerfile, target="first", tag="build1"):
        pass
    info = client.inspect_image("build1")
    assert not info["Config"].get("OnBuild")
    assert run_logs(client, "build1", ["ls", "/tmp/silence.tar.gz"]) == b"/tmp/silence.tar.gz\n"


def test_build_with_network_mode(client: Any, mod_names: Names) -> None:  # noqa: F811
    network = client.create_network(f"dockerpy-{mod_names.tag}-build", options=bridge_opt(mod_names))["Id"]
    container = client.create_container(BUSYBOX, ["sleep", "60"], stop_signal="SIGKILL")
    client.start(container)
    client.connect_container_to_network(container, network, aliases=["pingtarget.docker"])
    dockerfile = script("FROM busybox", "RUN ping -c1 -W2 pingtarget.docker")
    logs = list(client.build(fileobj=dockerfile, network_mode=network, tag="dockerpytest_customnetbuild", decode=True))
    assert "errorDetail" not in logs[-1], logs
    assert client.inspect_image("dockerpytest_customnetbuild")
    dockerfile.seek(0)
    logs = list(client.build(fileobj=dockerfile, network_mode="none", tag="dockerpytest_nonebuild", nocache=True,
                             decode=True))
    assert "errorDetail" in logs[-1]
    assert logs[-1]["errorDetail"]["code"] == 1
    with pytest.raises(docker.errors.NotFound):
        client.inspect_image("dockerpytest_nonebuild")


def test_build_with_extra_hosts(client: Any) -> None:
    img_name = "dockerpytest_extrahost_build"
    dockerfile = script("FROM busybox", "RUN ping -c1 -W2 hello.world.test", "RUN ping -c1 -W2 extrahost.local.test",
                        "RUN cp /etc/hosts /hosts-file")
    for chunk in client.build(fileobj=dockerfile, tag=img_name, decode=True,
                              extra_hosts={"extrahost.local.test": "127.0.0.1", "hello.world.test": "127.0.0.1"}):
        assert "errorDetail" not in chunk, chunk
    logs = run_logs(client, img_name, "cat /hosts-file").decode()
    assert "127.0.0.1\textrahost.local.test" in logs and "127.0.0.1\thello.world.test" in logs


def test_build_squash(client: Any) -> None:
    """Upstream's runs on an experimental daemon only (requires_experimental); sampan answers as a
    dockerd without experimental mode: a 400 naming it.  Without squash, one layer per RUN."""
    dockerfile = script("FROM busybox", "RUN echo blah > /file_1", "RUN echo blahblah > /file_2",
                        "RUN echo blahblahblah > /file_3")
    logs = list(client.build(fileobj=dockerfile, tag="nosquash", squash=False, decode=True))
    assert "errorDetail" not in logs[-1], logs[-1]
    base = len(client.inspect_image(BUSYBOX)["RootFS"]["Layers"])
    assert len(client.inspect_image("nosquash")["RootFS"]["Layers"]) == base + 3
    dockerfile.seek(0)
    with pytest.raises(docker.errors.APIError) as excinfo:
        list(client.build(fileobj=dockerfile, tag="squash", squash=True))
    assert excinfo.value.status_code == 400
    assert "squash is only supported with experimental mode" in str(excinfo.value)


def test_build_stderr_data(client: Any) -> None:
    snippet = "Ancient Temple (Mystic Oriental Dream ~ Ancient Temple)"
    dockerfile = script("FROM busybox", f"RUN sh -c \">&2 echo '{snippet}'\"")
    lines = [chunk.get("stream") for chunk in client.build(fileobj=dockerfile, decode=True, nocache=True)]
    assert f"\x1b[91m{snippet}\n\x1b[0m" in lines, lines


def test_build_gzip_encoding_and_empty_dockerignore_lines(client: Any, tmp_path: Path) -> None:
    base = write(tmp_path / "gz", {"Dockerfile": "FROM busybox\nADD . /test"})
    lines = list(client.build(path=str(base), decode=True, nocache=True, gzip=True))
    assert "Successfully built" in lines[-1]["stream"]
    base = write(tmp_path / "empty", {"Dockerfile": "FROM busybox\n", ".dockerignore": "   \n\n\t\t\n\t     "})
    lines = list(client.build(path=str(base), decode=True, nocache=True))
    assert "Successfully built" in lines[-1]["stream"]
    with pytest.raises(docker.errors.DockerException):  # docker-py's own check
        client.build(path=".", gzip=True, encoding="text/html")


def test_build_invalid_platform(client: Any) -> None:
    with pytest.raises(docker.errors.APIError) as excinfo:
        for _ in client.build(fileobj=script("FROM busybox"), platform="foobar"):
            pass
    assert excinfo.value.is_error()
    assert "unknown operating system" in excinfo.exconly() or "invalid platform" in excinfo.exconly()


def test_build_with_platform(client: Any) -> None:
    """``build(..., platform=)`` naming this machine's platform is accepted and recorded."""
    import platform as host

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(host.machine(), host.machine())
    logs = list(client.build(fileobj=script("FROM busybox", "RUN true"), tag="platformed", platform=f"linux/{arch}",
                             decode=True))
    assert "errorDetail" not in logs[-1], logs[-1]
    info = client.inspect_image("platformed")
    assert (info["Os"], info["Architecture"]) == ("linux", arch)


@pytest.mark.parametrize("where", ["out", "in", "nested", "abs"])
def test_build_dockerfile_locations(client: Any, tmp_path: Path, where: str) -> None:
    """test_build_out_of_context_dockerfile, test_build_in_context_dockerfile, _nested_ and _abs_."""
    body = "FROM busybox\nCOPY . /src\nWORKDIR /src"
    base = write(tmp_path / "ctx", {"file.txt": "hello world"})
    if where == "out":
        write(base, {".dockerignore": ".dockerignore\n"})
        dockerfile = str(write(tmp_path / "df", {"Dockerfile": body}) / "Dockerfile")
        want = [b".", b"..", b"file.txt"]
    elif where == "nested":
        write(base, {"hello/world/custom.dockerfile": body})
        dockerfile, want = "hello/world/custom.dockerfile", [b".", b"..", b"file.txt", b"hello"]
    else:
        write(base, {"custom.dockerfile": body})
        dockerfile = "custom.dockerfile" if where == "in" else str(base / "custom.dockerfile")
        want = [b".", b"..", b"file.txt", b"custom.dockerfile"]
    img_name = f"dockerpy-location-{where}"
    lines = list(client.build(path=str(base), dockerfile=dockerfile, tag=img_name, decode=True))
    assert "Successfully tagged" in lines[-1]["stream"]
    assert sorted(run_logs(client, img_name, "ls -a").strip().split(b"\n")) == sorted(want)


def test_prune_builds(client: Any) -> None:
    """xfail upstream on Docker 18.09 (moby#37920); sampan answers with a SpaceReclaimed count."""
    result = client.prune_builds()
    assert isinstance(result["SpaceReclaimed"], int)


def test_build_rm_and_forcerm(client: Any) -> None:
    """rm/forcerm are accepted; sampan's RUN steps are not containers of the engine, so none is
    ever listed, kept or left behind, whatever the flags (dockerd keeps them with rm=False, and a
    failed step's without forcerm: see docs/docker-py-tests.md)."""
    before = client.containers(all=True)
    for dockerfile, flags in (("RUN true", {"rm": False}), ("RUN true", {"rm": True}),
                              ("RUN false", {"rm": True}), ("RUN false", {"forcerm": True})):
        logs = list(client.build(fileobj=script("FROM busybox", dockerfile), nocache=True, decode=True, **flags))
        assert ("errorDetail" in logs[-1]) == (dockerfile == "RUN false")
        assert client.containers(all=True) == before


# ------------------------------------------------------------------ models_images_test.py (builds)


@pytest.mark.parametrize("tag", [None, "some-tag"])
def test_models_build(client: Any, tag: str | None) -> None:
    """test_build and test_build_with_multiple_success."""
    dc = models(client)
    image, logs = dc.images.build(tag=tag, fileobj=script("FROM busybox", "CMD echo hello world"))
    assert any("Successfully built" in (line.get("stream") or "") for line in logs)
    assert dc.containers.run(image) == b"hello world\n"


def test_models_build_with_error(client: Any) -> None:
    with pytest.raises(docker.errors.BuildError) as cm:
        models(client).images.build(fileobj=script("FROM busybox", "RUN exit 1"))
    assert "The command '/bin/sh -c exit 1' returned a non-zero code: 1" in cm.exconly()
    assert cm.value.build_log


def test_models_build_with_success_build_output(client: Any) -> None:
    dc = models(client)
    image, _ = dc.images.build(tag="dup-txt-tag", fileobj=script("FROM busybox", "CMD echo Successfully built abcd1234"))
    assert dc.containers.run(image) == b"Successfully built abcd1234\n"


# ------------------------------------------------------------------ HealthcheckTest (api_healthcheck_test.py)


def wait_on_health_status(client: Any, container: Any, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while client.inspect_container(container)["State"]["Health"]["Status"] != status:
        assert time.monotonic() < deadline, client.inspect_container(container)["State"]["Health"]
        time.sleep(0.1)


def test_healthcheck_shell_command(client: Any) -> None:
    container = client.create_container(BUSYBOX, "top", healthcheck={"test": 'echo "hello world"'})
    assert client.inspect_container(container)["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", 'echo "hello world"']


@pytest.mark.parametrize(("test", "status"), [("true", "healthy"), ("false", "unhealthy")])
def test_healthcheck_passes_and_fails(client: Any, test: str, status: str) -> None:
    container = client.create_container(BUSYBOX, "top", stop_signal="SIGKILL", healthcheck={
        "test": test, "interval": 1 * SECOND, "timeout": 1 * SECOND, "retries": 1})
    client.start(container)
    wait_on_health_status(client, container, status)


def test_healthcheck_start_period(client: Any) -> None:
    container = client.create_container(BUSYBOX, "top", stop_signal="SIGKILL", healthcheck={
        "test": "echo 'x' >> /counter.txt && test `cat /counter.txt | wc -l` -ge 3",
        "interval": 1 * SECOND, "timeout": 1 * SECOND, "retries": 1, "start_period": 3 * SECOND})
    client.start(container)
    wait_on_health_status(client, container, "healthy")


def test_healthcheck_from_dockerfile(client: Any) -> None:
    """A HEALTHCHECK built into the image applies to its containers (builds and health together)."""
    dc = models(client)
    image, _ = dc.images.build(fileobj=script(
        "FROM busybox", "HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD test -e /ready"))
    assert image.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /ready"]
    container = client.create_container(image.id, ["sh", "-c", "touch /ready && exec sleep 60"], stop_signal="SIGKILL")
    client.start(container)
    wait_on_health_status(client, container, "healthy")
