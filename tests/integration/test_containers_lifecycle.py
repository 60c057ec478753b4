"""Container lifecycle through sampand's Engine API: create, start, stop, kill, restart, pause,
remove, rename, update, wait, list, inspect, prune; exit codes; --rm; --init; OOM."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def test_run_and_exit_code(api: Api) -> None:  # noqa: F811
    cid = api.create(["sh", "-c", "echo out; echo err >&2; exit 3"], name="exit3", Labels={"k": "v"})
    info = api.inspect(cid)
    assert info["State"]["Status"] == "created" and info["Name"] == "/exit3"
    assert info["Path"] == "sh" and info["Args"] == ["-c", "echo out; echo err >&2; exit 3"]
    api.call("POST", f"/containers/{cid}/start", status=204)
    assert api.wait(cid) == {"StatusCode": 3}
    info = api.inspect(cid)
    s = info["State"]
    assert (s["Status"], s["Running"], s["ExitCode"], s["Pid"], s["OOMKilled"]) == ("exited", False, 3, 0, False)
    assert s["StartedAt"] <= s["FinishedAt"] and s["FinishedAt"] != "0001-01-01T00:00:00Z"
    assert api.output(cid) == "out\nerr\n"
    for key in ("Id", "Created", "Image", "LogPath", "HostConfig", "Config", "Mounts", "GraphDriver", "NetworkSettings",
                "RestartCount", "Platform", "Driver", "ResolvConfPath", "HostnamePath", "HostsPath"):
        assert key in info, key
    assert info["Config"]["Labels"] == {"k": "v"} and info["Config"]["Image"] == "busybox"
    assert info["HostConfig"]["NetworkMode"] == "none"
    [summary] = api.call("GET", "/containers/json?all=1", status=200)
    assert summary["Names"] == ["/exit3"] and summary["State"] == "exited"
    assert summary["Status"].startswith("Exited (3) ") and summary["Status"].endswith(" ago")
    assert summary["Command"] == "sh -c 'echo out; echo err >&2; exit 3'"
    graph = info["GraphDriver"]
    assert graph["Name"] in ("overlay", "native") and graph["Data"]["UpperDir"] and graph["Data"]["MergedDir"].endswith("/rootfs")
    if graph["Name"] == "overlay":
        assert graph["Data"]["LowerDir"] and graph["Data"]["WorkDir"]
    sized = api.call("GET", f"/containers/{cid}/json?size=1", status=200)
    assert sized["SizeRw"] >= 0 and sized["SizeRootFs"] > 0


def test_start_stop_kill_semantics(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], name="sleeper")
    assert api.status("POST", f"/containers/{cid}/start")[0] == 304
    summary = api.call("GET", "/containers/json", status=200)
    assert [c["Id"] for c in summary] == [cid] and summary[0]["Status"].startswith("Up ")
    code, body = api.status("DELETE", f"/containers/{cid}")
    assert code == 409 and "container is running" in body["message"]
    t = time.monotonic()
    api.call("POST", f"/containers/{cid}/stop?t=1", status=204)  # sleep as pid 1 ignores SIGTERM
    assert 0.9 < time.monotonic() - t < 5
    assert api.inspect(cid)["State"]["ExitCode"] == 137
    assert api.status("POST", f"/containers/{cid}/stop")[0] == 304
    code, body = api.status("POST", f"/containers/{cid}/kill")
    assert code == 409 and "is not running" in body["message"]
    api.call("POST", f"/containers/{cid}/start", status=204)
    api.call("POST", f"/containers/{cid}/kill?signal=SIGKILL", status=204)
    assert api.wait(cid)["StatusCode"] == 137
    assert api.status("POST", f"/containers/{cid}/kill?signal=NOPE")[0] in (400, 409)
    api.call("DELETE", f"/containers/{cid}", status=204)
    assert api.status("GET", f"/containers/{cid}/json")[0] == 404


def test_init_forwards_sigterm(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], host={"Init": True})
    t = time.monotonic()
    api.call("POST", f"/containers/{cid}/stop?t=10", status=204)
    assert time.monotonic() - t < 3
    assert api.inspect(cid)["State"]["ExitCode"] == 143


def test_command_not_found_and_not_executable(api: Api) -> None:  # noqa: F811
    cid = api.create(["/no/such/binary"])
    code, body = api.status("POST", f"/containers/{cid}/start")
    assert (code == 400 and "no such file or directory" in body["message"].lower()) or "not found" in body["message"]
    assert api.inspect(cid)["State"]["ExitCode"] == 127
    cid = api.create(["/etc/passwd"])
    code, body = api.status("POST", f"/containers/{cid}/start")
    assert code == 400, body
    assert api.inspect(cid)["State"]["ExitCode"] == 126


def test_create_errors(api: Api) -> None:  # noqa: F811
    code, body = api.status("POST", "/containers/create", {"Image": "nosuchimage"})
    assert code == 404 and body["message"] == "No such image: nosuchimage"
    cid = api.create(["true"], name="taken")
    code, body = api.status("POST", "/containers/create?name=taken", {"Image": "busybox"})
    assert code == 409
    assert body["message"] == (f'Conflict. The container name "/taken" is already in use by container "{cid}". '
                               "You have to remove (or rename) that container to be able to reuse that name.")
    assert api.status("POST", "/containers/create?name=-bad", {"Image": "busybox"})[0] == 400
    assert api.status("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"Memory": "x"}})[0] == 400
    assert api.status("GET", "/containers/nosuch/json") == (404, {"message": "No such container: nosuch"})
    code, body = api.status("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"NetworkMode": "bridge"}})
    assert code == 201 and body["Warnings"]


def test_pause_unpause_update_rename(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], name="p1", host={"Memory": 64 << 20})
    api.call("POST", f"/containers/{cid}/pause", status=204)
    s = api.inspect(cid)["State"]
    assert (s["Status"], s["Paused"], s["Running"]) == ("paused", True, True)
    assert api.status("POST", f"/containers/{cid}/pause")[0] == 409
    assert api.call("GET", "/containers/json", status=200)[0]["Status"].endswith("(Paused)")
    api.call("POST", f"/containers/{cid}/unpause", status=204)
    assert api.inspect(cid)["State"]["Status"] == "running"
    assert api.status("POST", f"/containers/{cid}/unpause")[0] == 409
    api.call("POST", f"/containers/{cid}/update", {"Memory": 96 << 20, "MemorySwap": 192 << 20}, status=200)
    assert api.inspect(cid)["HostConfig"]["Memory"] == 96 << 20
    limit = Path(f"/sys/fs/cgroup/memory/sampan/{cid}/memory.limit_in_bytes")
    if limit.exists():
        assert int(limit.read_text()) == 96 << 20
    api.call("POST", f"/containers/{cid}/rename?name=p2", status=204)
    assert api.inspect("p2")["Id"] == cid
    assert api.status("POST", f"/containers/{cid}/rename?name=p2")[0] == 409
    api.call("POST", f"/containers/{cid}/restart?t=0", status=204)
    assert api.inspect(cid)["State"]["Status"] == "running"
    api.call("POST", f"/containers/{cid}/pause", status=204)
    api.call("POST", f"/containers/{cid}/kill", status=204)  # SIGKILL reaches a paused container
    assert api.inspect(cid)["State"]["Status"] == "exited"


def test_list_filters_and_prune(api: Api) -> None:  # noqa: F811
    a = api.run(["sleep", "60"], name="fa", Labels={"tier": "web"})
    b = api.create(["true"], name="fb", Labels={"tier": "db"})
    c = api.run(["sh", "-c", "exit 2"], name="fc")
    api.wait(c)

    def ids(filters: dict[str, list[str]], extra: str = "&all=1") -> set[str]:
        q = urllib.parse.quote(json.dumps(filters))
        return {x["Id"] for x in api.call("GET", f"/containers/json?filters={q}{extra}", status=200)}

    assert ids({}, "") == {a}
    assert ids({}) == {a, b, c}
    assert ids({"status": ["created"]}) == {b}
    assert ids({"status": ["exited"]}) == {c}
    assert ids({"exited": ["2"]}) == {c}
    assert ids({"label": ["tier=web"]}) == {a}
    assert ids({"label": ["tier"]}) == {a, b}
    assert ids({"name": ["^/f[ab]$"]}) == {a, b}
    assert ids({"id": [a[:10]]}) == {a}
    assert ids({"ancestor": ["busybox"]}) == {a, b, c}
    assert ids({"before": ["fc"]}) == {a, b}
    assert ids({"since": ["fa"]}) == {b, c}
    assert len(api.call("GET", "/containers/json?limit=1", status=200)) == 1
    assert api.status("GET", "/containers/json?filters=" + urllib.parse.quote('{"bogus":["x"]}'))[0] == 400
    pruned = api.call("POST", "/containers/prune", status=200)
    assert set(pruned["ContainersDeleted"]) == {b, c}
    assert ids({}) == {a}


def test_auto_remove_and_wait_conditions(api: Api) -> None:  # noqa: F811
    cid = api.create(["sh", "-c", "exit 5"], host={"AutoRemove": True})
    conn = http.client.HTTPConnection("localhost")
    conn.sock = _unix(api)
    conn.request("POST", f"/containers/{cid}/wait?condition=removed")
    api.call("POST", f"/containers/{cid}/start", status=204)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["StatusCode"] == 5
    conn.close()
    assert api.status("GET", f"/containers/{cid}/json")[0] == 404
    # next-exit registered before start; a dropped wait does not disturb the daemon
    cid = api.create(["sh", "-c", "sleep 0.3; exit 1"])
    dropped = _unix(api)
    dropped.sendall(f"POST /containers/{cid}/wait?condition=next-exit HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    dropped.recv(100)  # the headers come before the container even starts
    dropped.close()
    conn = http.client.HTTPConnection("localhost")
    conn.sock = _unix(api)
    conn.request("POST", f"/containers/{cid}/wait?condition=next-exit")
    api.call("POST", f"/containers/{cid}/start", status=204)
    assert json.loads(conn.getresponse().read())["StatusCode"] == 1
    conn.close()
    assert api.status("POST", f"/containers/{cid}/wait?condition=bogus")[0] == 400


def _unix(client: Api) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(client.d.socket))
    return s


def test_restart_policies(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "exit 1"], host={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    info = api.until(lambda: (i := api.inspect(cid))["RestartCount"] == 2 and i["State"]["Status"] == "exited" and i)
    assert info, api.inspect(cid)
    assert info["State"]["ExitCode"] == 1
    cid = api.run(["sh", "-c", "exit 0"], host={"RestartPolicy": {"Name": "always"}})
    assert api.until(lambda: api.inspect(cid)["RestartCount"] >= 2)
    api.call("POST", f"/containers/{cid}/stop?t=1", status=204)
    count = api.inspect(cid)["RestartCount"]
    time.sleep(0.5)
    assert api.inspect(cid)["State"]["Status"] == "exited" and api.inspect(cid)["RestartCount"] == count
    code, _ = api.status("POST", "/containers/create", {"Image": "busybox", "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}})
    assert code == 400


def test_oom_killed(api: Api) -> None:  # noqa: F811
    cid = api.run(["tail", "/dev/zero"], host={"Memory": 16 << 20, "MemorySwap": 16 << 20})
    assert api.wait(cid)["StatusCode"] == 137
    assert api.inspect(cid)["State"]["OOMKilled"] is True


def test_privileged_gets_host_bounding_set(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "grep CapBnd /proc/self/status"], host={"Privileged": True})
    assert api.wait(cid)["StatusCode"] == 0
    with open("/proc/self/status") as f:
        host = next(line for line in f if line.startswith("CapBnd"))
    assert api.output(cid).split() == host.split()
    cid = api.run(["sh", "-c", "grep CapBnd /proc/self/status"], host={"CapDrop": ["ALL"], "CapAdd": ["CHOWN"]})
    api.wait(cid)
    assert api.output(cid).split()[1] == "0000000000000001"


def test_user_workdir_env_hostname_readonly(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "id -u; pwd; echo $FOO; hostname; touch /x 2>/dev/null || echo ro"],
                  User="1234", WorkingDir="/tmp", Env=["FOO=bar"], Hostname="h1", host={"ReadonlyRootfs": True})
    assert api.wait(cid)["StatusCode"] == 0
    assert api.output(cid).split() == ["1234", "/tmp", "bar", "h1", "ro"]


def _cgroup_file(controller: str, cid: str, name: str) -> Path | None:
    for base in (Path("/sys/fs/cgroup") / controller, Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
        path = base / "sampan" / cid / name
        if path.exists():
            return path
    return None


def test_resources_reach_the_cgroup(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"], host={"CpuShares": 10, "PidsLimit": 42, "Memory": 100 << 20, "NanoCpus": 500_000_000})
    shares = _cgroup_file("cpu,cpuacct", cid, "cpu.shares") or _cgroup_file("cpu", cid, "cpu.shares")
    if Path("/sys/fs/cgroup/cpu").is_dir():  # cgroup v1 (this machine: hybrid)
        assert shares is not None and int(shares.read_text()) == 10
        quota = shares.with_name("cpu.cfs_quota_us")
        assert int(quota.read_text()) == 50_000
    pids = _cgroup_file("pids", cid, "pids.max")
    assert pids is not None and pids.read_text().strip() == "42"
    mem = _cgroup_file("memory", cid, "memory.limit_in_bytes") or _cgroup_file("memory", cid, "memory.max")
    assert mem is not None and int(mem.read_text()) == 100 << 20
    swappiness = _cgroup_file("memory", cid, "memory.swappiness")
    if swappiness is not None:  # cgroup v1 only (v2 discards it at create with Docker's warning)
        other = api.run(["sleep", "60"], host={"Memory": 100 << 20, "MemorySwappiness": 7})
        assert api.inspect(other)["HostConfig"]["MemorySwappiness"] == 7
        path = _cgroup_file("memory", other, "memory.swappiness")
        assert path is not None and int(path.read_text()) == 7


def test_bad_limits_are_refused_at_create(api: Api) -> None:  # noqa: F811
    for host, message in (({"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
                          ({"MemorySwappiness": 101}, "valid memory swappiness range is 0-100"),
                          ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000")):
        code, body = api.status("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], "HostConfig": host})
        assert code == 400 and message in body["message"], body
    assert api.call("GET", "/containers/json?all=1", status=200) == []
