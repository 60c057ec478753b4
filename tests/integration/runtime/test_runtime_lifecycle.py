"""create/start/state/kill/delete/exec/run through the Python API and the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sampan.errors import Conflict, ContainerNotRunning, NoSuchContainer
from sampan.runtime import container

pytestmark = pytest.mark.root


def _wait_status(root: Path, cid: str, status: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if container.state(root, cid)["status"] == status:
            return
        time.sleep(0.01)
    raise AssertionError(f"{cid} never became {status}: {container.state(root, cid)}")


def test_run_returns_exit_code(bundle, cli, cid):
    bundle.write(bundle.config("echo hello; exit 3"))
    r = cli("run", "--bundle", str(bundle.path), cid)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "hello\n"
    assert cli("state", cid).returncode == 1  # deleted after run


def test_lifecycle_api(bundle, rt_root, cid, tmp_path):
    bundle.write(bundle.config("echo started > /tmp/mark; exec sleep 30"))
    out = tmp_path / "out"
    with open(out, "w") as f, open(os.devnull) as null:
        pid = container.create(rt_root, cid, bundle.path, stdio=(null.fileno(), f.fileno(), f.fileno()))
    try:
        st = container.state(rt_root, cid)
        assert st["status"] == "created" and st["pid"] == pid and st["id"] == cid
        assert not (bundle.rootfs / "tmp" / "mark").exists()  # user program not yet started
        with pytest.raises(Conflict):
            container.create(rt_root, cid, bundle.path)
        container.start(rt_root, cid)
        assert container.state(rt_root, cid)["status"] == "running"
        with pytest.raises(Conflict):
            container.start(rt_root, cid)
        with pytest.raises(Conflict):
            container.delete(rt_root, cid)
        assert pid in container.ps(rt_root, cid)
        container.kill(rt_root, cid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert container.state(rt_root, cid)["status"] == "stopped"
        with pytest.raises(ContainerNotRunning):
            container.kill(rt_root, cid, signal.SIGTERM)
    finally:
        container.delete(rt_root, cid, force=True)
    with pytest.raises(NoSuchContainer):
        container.state(rt_root, cid)
    assert not (rt_root / cid).exists()


def test_kill_signal_exit_code_cli(bundle, cli, cid, rt_root):
    """run exits 128+n when the container is killed by signal n."""
    from tests.integration.runtime.conftest import runtime_cmd

    bundle.write(bundle.config("exec sleep 30"))
    proc = subprocess.Popen([*runtime_cmd("sampan", rt_root), "run", "-b", str(bundle.path), cid])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = cli("state", cid)
            if r.returncode == 0 and '"running"' in r.stdout:
                break
            time.sleep(0.02)
        assert cli("kill", cid, "KILL").returncode == 0
        assert proc.wait(10) == 137
    finally:
        proc.kill()
        proc.wait()


def test_exec_joins_container(bundle, rt_root, cid, tmp_path):
    bundle.write(bundle.config("exec sleep 30"))
    with open(os.devnull) as null:
        pid = container.create(rt_root, cid, bundle.path, stdio=(null.fileno(), null.fileno(), null.fileno()))
    try:
        container.start(rt_root, cid)
        out = tmp_path / "exec.out"
        with open(out, "w") as f, open(os.devnull) as null:
            epid = container.exec_process(
                rt_root, cid,
                {"args": ["sh", "-c", "hostname; ps -o pid,comm | grep -c sleep; ls /proc | grep -c '^[0-9]'; exit 5"], "cwd": "/", "env": ["PATH=/bin"]},
                stdio=(null.fileno(), f.fileno(), f.fileno()),
            )
        assert container.wait_exec(epid) == 5
        lines = out.read_text().split()
        assert lines[0] == "sampan"
        assert lines[1] == "1"  # sees the container's sleep
        assert int(lines[2]) < 6  # and not the host's processes
    finally:
        container.delete(rt_root, cid, force=True)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def test_create_start_cli_and_list(bundle, cli, cid, tmp_path):
    bundle.write(bundle.config("exec sleep 30"))
    pid_file = tmp_path / "pid"
    r = cli("create", "-b", str(bundle.path), "--pid-file", str(pid_file), cid)
    assert r.returncode == 0, r.stderr
    try:
        pid = int(pid_file.read_text())
        assert cli("list", "-q").stdout.split() == [cid]
        assert cli("start", cid).returncode == 0
        assert '"running"' in cli("state", cid).stdout
        r = cli("exec", cid, "sh", "-c", "echo in-$(hostname)")
        assert (r.returncode, r.stdout) == (0, "in-sampan\n"), r.stderr
        assert str(pid) in cli("ps", cid).stdout
        r = cli("delete", cid)
        assert r.returncode == 1 and "not stopped" in r.stderr
    finally:
        assert cli("delete", "--force", cid).returncode == 0
    assert cli("list", "-q").stdout == ""


def test_console_socket(bundle, cli, cid, tmp_path):
    sock_path = tmp_path / "console.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)
    bundle.write(bundle.config("tty; echo done", terminal=True))
    r = cli("create", "-b", str(bundle.path), "--console-socket", str(sock_path), cid)
    assert r.returncode == 0, r.stderr
    try:
        conn, _ = listener.accept()
        _msg, fds, _f, _a = socket.recv_fds(conn, 1024, 1)
        assert len(fds) == 1
        master = fds[0]
        assert cli("start", cid).returncode == 0
        data = b""
        deadline = time.monotonic() + 10
        while b"done" not in data and time.monotonic() < deadline:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            data += chunk
        assert b"/dev/pts/0" in data, data
        os.close(master)
        conn.close()
    finally:
        listener.close()
        cli("delete", "--force", cid)


def test_hooks_run_with_state(bundle, cli, cid, tmp_path):
    log = tmp_path / "hooks.log"
    cfg = bundle.config("exit 0")
    hook = lambda name: {"path": "/bin/sh", "args": ["sh", "-c", f"cat >> {log}; echo ' {name}' >> {log}"]}  # noqa: E731
    cfg["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    # startContainer runs after pivot_root, in the container: it sees the container's /tmp
    cfg["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/start-hook.json"]}]
    bundle.write(cfg)
    r = cli("run", "-b", str(bundle.path), cid)
    assert r.returncode == 0, r.stderr
    text = log.read_text()
    for kind in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        assert f" {kind}" in text
    assert cid in (bundle.rootfs / "tmp" / "start-hook.json").read_text()
    assert f'"id": "{cid}"' in text or f'"id":"{cid}"' in text


def test_failing_hook_fails_create(bundle, cli, cid, rt_root):
    cfg = bundle.config("exit 0")
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.write(cfg)
    r = cli("create", "-b", str(bundle.path), cid)
    assert r.returncode == 1
    assert "hooks.createRuntime[0]" in r.stderr
    assert not (rt_root / cid).exists()


def test_exec_tty_and_kill_all(bundle, cli, cid):
    bundle.write(bundle.config("sleep 30 & sleep 30 & exec sleep 30"))
    assert cli("create", "-b", str(bundle.path), cid).returncode == 0
    try:
        assert cli("start", cid).returncode == 0
        r = cli("exec", "-t", cid, "sh", "-c", "tty; exit 4", stdin=subprocess.DEVNULL)
        assert r.returncode == 4 and "/dev/pts/" in r.stdout, (r.stdout, r.stderr)
        pids = [int(p) for p in cli("ps", cid).stdout.split()[1:]]
        assert len(pids) == 3
        assert cli("kill", "--all", cid, "KILL").returncode == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.02)
        assert '"stopped"' in cli("state", cid).stdout
    finally:
        cli("delete", "--force", cid)


def test_log_file_json(bundle, cli, cid, tmp_path):
    import json

    log = tmp_path / "rt.log"
    r = cli("--log", str(log), "--log-format", "json", "state", cid)
    assert r.returncode == 1 and r.stderr.strip() == f"No such container: {cid}"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == f"No such container: {cid}"


def test_no_pivot_and_readonly_root(bundle, cli, cid):
    """--no-pivot uses MS_MOVE + chroot (the ramfs fallback); root.readonly is honoured."""
    cfg = bundle.config(
        """touch /x 2>/dev/null && echo writable || echo readonly; touch /tmp/ok && echo tmp-ok; """
        """awk '$5 == "/"' /proc/self/mountinfo | wc -l"""
    )
    cfg["root"]["readonly"] = True
    cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]})
    bundle.write(cfg)
    for extra in ([], ["--no-pivot"]):
        r = cli("run", *extra, "-b", str(bundle.path), cid)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["readonly", "tmp-ok", "1"], (extra, r.stdout)


def test_bind_mount_options(bundle, cli, cid, tmp_path):
    """ro applies to the bind mount, rro to it and every mount below it, rw leaves it writable;
    the flags land on the new mount (not on the directory it covers)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "sampan-test", str(src / "sub")], check=True)
    try:
        cfg = bundle.config(
            "for d in /rw /ro /rro; do touch $d/f 2>/dev/null && echo $d:w || echo $d:r; "
            "touch $d/sub/f 2>/dev/null && echo $d/sub:w || echo $d/sub:r; done"
        )
        for name, opts in (("rw", ["rbind"]), ("ro", ["rbind", "ro", "nosuid"]), ("rro", ["rbind", "rro"])):
            cfg["mounts"].append({"destination": f"/{name}", "type": "bind", "source": str(src), "options": opts})
        bundle.write(cfg)
        r = cli("run", "-b", str(bundle.path), cid)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["/rw:w", "/rw/sub:w", "/ro:r", "/ro/sub:w", "/rro:r", "/rro/sub:r"]
    finally:
        subprocess.run(["umount", str(src / "sub")], check=True)


def test_join_namespaces_by_path(bundle, rt_root, cid, tmp_path):
    """A second container joins the first one's network, ipc and pid namespaces by path."""
    bundle.write(bundle.config("exec sleep 30"))
    with open(os.devnull) as null:
        pid = container.create(rt_root, cid, bundle.path, stdio=(null.fileno(), null.fileno(), null.fileno()))
    try:
        container.start(rt_root, cid)
        cfg = bundle.config("readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; ps -o comm | grep -c sleep")
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] in ("network", "ipc", "pid"):
                ns["path"] = f"/proc/{pid}/ns/{'net' if ns['type'] == 'network' else ns['type']}"
        bundle.write(cfg)
        out = tmp_path / "joined.out"
        with open(out, "w") as f, open(os.devnull) as null:
            jpid = container.create(rt_root, cid + "-2", bundle.path, stdio=(null.fileno(), f.fileno(), f.fileno()))
        container.start(rt_root, cid + "-2")
        _, status = os.waitpid(jpid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        lines = out.read_text().split()
        assert lines[0] == os.readlink(f"/proc/{pid}/ns/net")
        assert lines[1] == os.readlink(f"/proc/{pid}/ns/ipc")
        assert lines[2] == "1"  # sees the first container's sleep: same pid namespace
        container.delete(rt_root, cid + "-2")
    finally:
        container.delete(rt_root, cid, force=True)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def test_run_with_terminal_proxies_the_pty(bundle, cli, cid):
    cfg = bundle.config("tty; stty size; exit 3", terminal=True)
    cfg["process"]["consoleSize"] = {"height": 30, "width": 100}
    bundle.write(cfg)
    r = cli("run", "-b", str(bundle.path), cid, stdin=subprocess.DEVNULL)
    assert r.returncode == 3, r.stderr
    assert r.stdout.split() == ["/dev/pts/0", "30", "100"]


def test_shifted_user_namespace_and_idmap_mount(busybox_dir, cli, cid, tmp_path):
    """Root in the container is host uid 100000; an idmap bind mount shows host root's files
    as the container's root, a plain one as nobody.  (The bundle lives outside pytest's 0700
    tmp dirs so that the shifted root can reach it.)"""
    import shutil
    import tempfile

    from sampan.oci.defaults import default_config

    base = tempfile.mkdtemp(prefix="sampan-rt-userns-", dir="/var/tmp")
    try:
        os.chmod(base, 0o755)
        rootfs = os.path.join(base, "rootfs")
        subprocess.run(["cp", "-a", str(busybox_dir), rootfs], check=True)
        for d in ("plain", "mapped"):
            os.mkdir(os.path.join(rootfs, d))
        src = os.path.join(base, "src")
        os.mkdir(src)
        with open(os.path.join(src, "file"), "w") as f:
            f.write("x")
        cfg = default_config(["sh", "-c", "id -u; cat /proc/self/uid_map; stat -c %u /plain/file /mapped/file; touch /mapped/new && echo wrote"])
        cfg["ociVersion"] = "1.0.2"
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["mounts"] += [
            {"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]},
            {"destination": "/mapped", "type": "bind", "source": src, "options": ["rbind", "idmap"]},
        ]
        with open(os.path.join(base, "config.json"), "w") as f:
            import json

            json.dump(cfg, f)
        r = cli("run", "-b", base, cid)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["0", "0", "100000", "65536", "65534", "0", "wrote"]
        assert os.stat(os.path.join(src, "new")).st_uid == 0  # written as host root through the idmap
    finally:
        shutil.rmtree(base, ignore_errors=True)
