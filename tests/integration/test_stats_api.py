"""Stats and top through the Engine API against a real sampand: Docker's JSON shape, the
memory limit, precpu filled for stream=0, one sampler shared by concurrent subscribers."""

from __future__ import annotations

import json
import os
import threading

import pytest

from tests.integration.container_daemon import Api, api, leak_check  # noqa: F401

pytestmark = pytest.mark.root
if os.geteuid() != 0:
    pytest.skip("needs root", allow_module_level=True)


def test_stats_one_sample_docker_shape(api: Api) -> None:  # noqa: F811
    cid = api.run(["sh", "-c", "while :; do :; done"], name="busy",
                  host={"Memory": 64 << 20, "PidsLimit": 50})
    s = api.call("GET", f"/containers/{cid}/stats?stream=0", status=200)
    assert s["id"] == cid and s["name"] == "/busy"
    assert s["memory_stats"]["limit"] == 64 << 20
    assert s["memory_stats"]["usage"] > 0
    assert s["pids_stats"] == {"current": 1, "limit": 50}
    cpu, pre = s["cpu_stats"], s["precpu_stats"]
    assert cpu["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"] > 0
    assert cpu["system_cpu_usage"] > pre["system_cpu_usage"] > 0
    assert cpu["online_cpus"] >= 1
    assert s["read"] > s["preread"]
    assert "throttling_data" in cpu and "blkio_stats" in s and "networks" in s
    one = api.call("GET", f"/containers/{cid}/stats?stream=0&one-shot=1", status=200)
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0


def test_stats_stream_shared_sampler(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    results: list[list[dict[str, object]]] = []

    def read_two() -> None:
        conn = api.d.connection()
        try:
            conn.request("GET", f"/containers/{cid}/stats")
            resp = conn.getresponse()
            lines = [json.loads(resp.readline()) for _ in range(2)]
            results.append(lines)
        finally:
            conn.close()

    threads = [threading.Thread(target=read_two) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 3
    # one sampler: the subscribers saw the same samples (same read times)
    reads = [{str(x["read"]) for x in r} for r in results]
    assert len(set.union(*reads)) <= 3


def test_stats_of_stopped_container(api: Api) -> None:  # noqa: F811
    cid = api.create(["true"])
    s = api.call("GET", f"/containers/{cid}/stats?stream=0", status=200)
    assert s["memory_stats"] == {} and s["read"] == "0001-01-01T00:00:00Z"


def test_top(api: Api) -> None:  # noqa: F811
    cid = api.run(["sleep", "60"])
    top = api.call("GET", f"/containers/{cid}/top", status=200)
    assert "PID" in top["Titles"] and "CMD" in top["Titles"]
    assert [p[-1] for p in top["Processes"]] == ["sleep 60"]
    top = api.call("GET", f"/containers/{cid}/top?ps_args=aux", status=200)
    assert "%CPU" in top["Titles"]
    stopped = api.create(["true"])
    assert api.status("GET", f"/containers/{stopped}/top")[0] == 409
