"""Output of the container commands: ps columns, stats formulas, events lines, volumes, prune."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from sampan.cli.containers import port_lines
from sampan.cli.context import Context
from sampan.cli.cp import split_cp_arg
from sampan.cli.events import event_line, rfc3339_nano
from sampan.cli.logs import timestamp
from sampan.cli.main import run
from sampan.cli.ps import container_rows, display_ports, go_quote
from sampan.cli.stats import cpu_percent, memory_usage, stats_row
from sampan.client.client import Client
from sampan.client.testing import MockTransport
from sampan.client.transport import Request

CID = "6437051b7aa824a19cbcb9e83940a84a93198d72df9c8be598ac33db8ab2f7a9"
NOW = time.time()
CONTAINER = {
    "Id": CID, "Names": ["/web"], "Image": "busybox", "ImageID": "sha256:" + "b" * 64,
    "Command": "sh -c 'echo hi; sleep 100'", "Created": int(NOW) - 120, "State": "running",
    "Status": "Up 2 minutes", "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "IP": "0.0.0.0", "Type": "tcp"},
                                         {"PrivatePort": 443, "Type": "tcp"}],
    "Labels": {"b": "2", "a": "1"}, "SizeRw": 12, "SizeRootFs": 4261205, "Mounts": [{"Name": "v1", "Driver": "local"}],
    "NetworkSettings": {"Networks": {"none": {}}},
}


class Engine:
    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.seen: list[str] = []

    def __call__(self, req: Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.seen.append(f"{req.method} {req.target}")
        key = (req.method, req.target.split("?")[0])
        if key not in self.routes:
            return 404, {}, json.dumps({"message": f"page not found: {key}"}).encode()
        status, doc = self.routes[key]
        return status, {}, json.dumps(doc).encode()


def cli(engine: Engine, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()

    def make(options: Any) -> Context:
        ctx = Context(options, stdout=out, stderr=err, stdin=io.StringIO(stdin), environ={})
        ctx._client = Client(MockTransport(engine))
        return ctx

    return run(argv, make_context=make), out.getvalue(), err.getvalue()


def test_ps_default_table() -> None:
    engine = Engine({("GET", "/containers/json"): (200, [CONTAINER])})
    code, out, _ = cli(engine, ["ps"])
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert lines[1].startswith("6437051b7aa8   busybox   \"sh -c 'echo hi; sle…\"   2 minutes ago   Up 2 minutes   ")
    assert "443/tcp, 0.0.0.0:8080->80/tcp" in lines[1] and lines[1].endswith("web")
    assert engine.seen == ["GET /containers/json"]


def test_ps_flags_reach_the_query() -> None:
    engine = Engine({("GET", "/containers/json"): (200, [CONTAINER])})
    code, out, _ = cli(engine, ["ps", "-aqs", "--filter", "status=exited", "-n", "3", "--no-trunc"])
    assert (code, out) == (0, CID + "\n")
    query = engine.seen[0].split("?")[1]
    assert "all=1" in query and "limit=3" in query and "size=1" in query and "exited" in query
    code, out, _ = cli(engine, ["ps", "-s", "--format", "table {{.Names}}\t{{.Size}}\t{{.Labels}}"])
    assert out.splitlines() == ["NAMES     SIZE                   LABELS",
                                "web       12B (virtual 4.26MB)   a=1,b=2"]


def test_container_rows_fields() -> None:
    row = container_rows([CONTAINER], now=NOW)[0]
    assert row["Mounts"] == "v1" and row["Networks"] == "none" and row["LocalVolumes"] == "1"
    assert container_rows([{**CONTAINER, "Image": "sha256:" + "c" * 64}])[0]["Image"] == "c" * 12
    assert go_quote('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert display_ports([{"PrivatePort": 53, "Type": "udp", "PublicPort": 53, "IP": "::"}]) == "[::]:53->53/udp"


def test_stats_formulas_v1_and_v2() -> None:
    sample = {
        "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000}, "system_cpu_usage": 20_000_000, "online_cpus": 2},
        "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000}, "system_cpu_usage": 10_000_000},
        "memory_stats": {"usage": 10 << 20, "limit": 100 << 20, "stats": {"total_inactive_file": 2 << 20}},
        "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 2000}},
        "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}, {"op": "Write", "value": 8192}]},
        "pids_stats": {"current": 3},
    }
    assert cpu_percent(sample) == pytest.approx(40.0)
    assert memory_usage({"usage": 100, "stats": {"inactive_file": 30}}) == 70
    row = stats_row(CID, "/web", sample)
    assert row == {"Container": CID[:12], "ID": CID[:12], "Name": "web", "CPUPerc": "40.00%",
                   "MemUsage": "8MiB / 100MiB", "MemPerc": "8.00%", "NetIO": "1.5kB / 2kB",
                   "BlockIO": "4.1kB / 8.19kB", "PIDs": "3"}


def test_stats_no_stream_table() -> None:
    sample = {"memory_stats": {"usage": 1 << 20, "limit": 2 << 20}, "pids_stats": {"current": 1}}
    engine = Engine({("GET", "/containers/json"): (200, [CONTAINER]),
                     ("GET", f"/containers/{CID}/stats"): (200, sample)})
    code, out, _ = cli(engine, ["stats", "--no-stream"])
    assert code == 0
    header = [cell.strip() for cell in out.splitlines()[0].split("   ") if cell.strip()]
    assert header == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    assert "1MiB / 2MiB" in out and "50.00%" in out
    assert f"GET /containers/{CID}/stats?stream=0" in engine.seen  # one sample, not the default stream


def test_events_lines() -> None:
    event = {"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "web", "image": "busybox"}},
             "time": 1700000000, "timeNano": 1700000000123456789}
    line = event_line(event)
    assert line.endswith(".123456789" + line[line.index(".123456789") + 10 :].split(" ")[0] + " container start abc (image=busybox, name=web)")
    assert rfc3339_nano(0).startswith("1970-01-01T") or rfc3339_nano(0).startswith("1969-12-31T")
    engine = Engine({("GET", "/events"): (200, event)})
    code, out, _ = cli(engine, ["events", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}", "--filter", "type=container"])
    assert (code, out) == (0, "container start web\n")


def test_timestamps_and_ports_and_cp_args() -> None:
    assert timestamp("1700000000.5", "since") == "1700000000.5"
    assert float(timestamp("10m", "since", now=1000.0)) == pytest.approx(400.0)
    assert float(timestamp("2024-01-02T00:00:00Z", "since")) == 1704153600.0
    with pytest.raises(Exception, match="failed to parse"):
        timestamp("yesterday", "since")
    ports = {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}
    assert port_lines(ports) == ["80/tcp -> 0.0.0.0:8080"]
    assert port_lines(ports, "80") == ["0.0.0.0:8080"]
    assert split_cp_arg("web:/etc/hosts") == ("web", "/etc/hosts")
    assert split_cp_arg("./a:b") == ("", "./a:b") and split_cp_arg("file") == ("", "file")


def test_volume_commands() -> None:
    vol = {"Name": "v1", "Driver": "local", "Mountpoint": "/x", "Labels": {"a": "b"}, "Scope": "local"}
    engine = Engine({
        ("POST", "/volumes/create"): (201, vol), ("GET", "/volumes"): (200, {"Volumes": [vol], "Warnings": []}),
        ("GET", "/volumes/v1"): (200, vol), ("DELETE", "/volumes/v1"): (204, None),
        ("POST", "/volumes/prune"): (200, {"VolumesDeleted": ["v2"], "SpaceReclaimed": 2048}),
    })
    assert cli(engine, ["volume", "create", "--label", "a=b", "v1"])[1] == "v1\n"
    assert cli(engine, ["volume", "ls"])[1] == "DRIVER    VOLUME NAME\nlocal     v1\n"
    assert cli(engine, ["volume", "ls", "-q"])[1] == "v1\n"
    assert json.loads(cli(engine, ["volume", "inspect", "v1"])[1])[0]["Mountpoint"] == "/x"
    assert cli(engine, ["volume", "rm", "v1"])[1] == "v1\n"
    assert cli(engine, ["volume", "prune", "-f"])[1] == "Deleted Volumes:\nv2\n\nTotal reclaimed space: 2.048kB\n"
    code, out, err = cli(engine, ["volume", "rm", "nope"])
    assert code == 1 and err.startswith("Error response from daemon: page not found")
    code, out, _ = cli(engine, ["volume", "prune"], stdin="n\n")
    assert code == 0 and "Are you sure" in out and "Total" not in out


def test_lifecycle_commands_print_names_and_fail_with_1() -> None:
    engine = Engine({("POST", "/containers/a/stop"): (204, None), ("POST", "/containers/a/kill"): (204, None),
                     ("DELETE", "/containers/a"): (204, None),
                     ("POST", "/containers/a/wait"): (200, {"StatusCode": 137})})
    assert cli(engine, ["stop", "-t", "1", "a"])[:2] == (0, "a\n")
    assert "POST /containers/a/stop?t=1" in engine.seen
    code, out, err = cli(engine, ["kill", "-s", "TERM", "a", "b"])
    assert (code, out) == (1, "a\n") and "page not found" in err
    assert "POST /containers/a/kill?signal=TERM" in engine.seen
    assert cli(engine, ["rm", "-fv", "a"])[:2] == (0, "a\n")
    assert "DELETE /containers/a?force=1&v=1" in engine.seen
    assert cli(engine, ["wait", "a"])[:2] == (0, "137\n")


def test_container_and_system_prune() -> None:
    engine = Engine({
        ("POST", "/containers/prune"): (200, {"ContainersDeleted": ["c1"], "SpaceReclaimed": 1000}),
        ("POST", "/images/prune"): (200, {"ImagesDeleted": [{"Deleted": "sha256:x"}], "SpaceReclaimed": 2000}),
        ("POST", "/volumes/prune"): (200, {"VolumesDeleted": [], "SpaceReclaimed": 500}),
    })
    assert cli(engine, ["container", "prune", "-f"])[1] == "Deleted Containers:\nc1\n\nTotal reclaimed space: 1kB\n"
    code, out, _ = cli(engine, ["system", "prune", "-af", "--volumes"])
    assert code == 0 and out.endswith("Deleted Images:\ndeleted: sha256:x\n\nTotal reclaimed space: 3.5kB\n")
    assert any("dangling" in s and "false" in s for s in engine.seen if s.startswith("POST /images/prune"))


def test_inspect_falls_back_from_container_to_image() -> None:
    engine = Engine({("GET", "/images/busybox/json"): (200, {"Id": "sha256:i"})})
    code, out, err = cli(engine, ["inspect", "-f", "{{.Id}}", "busybox", "nothing"])
    assert (code, out, err) == (1, "sha256:i\n", "Error: No such object: nothing\n")
    assert engine.seen[0].startswith("GET /containers/busybox/json")


def test_stats_stream_redraws_until_the_streams_end() -> None:
    sample = {"memory_stats": {"usage": 3 << 20, "limit": 6 << 20}, "pids_stats": {"current": 2}}
    engine = Engine({("GET", "/containers/web/json"): (200, {"Id": CID, "Name": "/web"}),
                     ("GET", f"/containers/{CID}/stats"): (200, sample)})
    code, out, _ = cli(engine, ["stats", "--format", "{{.Name}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}}", "web"])
    assert code == 0 and out.splitlines()[-1] == "web 3MiB / 6MiB 50.00% 2"
    assert f"GET /containers/{CID}/stats?stream=1" in engine.seen


@pytest.mark.parametrize("words", sorted({w for w, (module, _, _) in __import__("sampan.cli.main", fromlist=["COMMANDS"]).COMMANDS.items()
                                          if module in ("run", "containers", "ps", "logs", "exec", "attach", "stats",
                                                        "cp", "events", "prune", "volumes")}))
def test_every_container_command_has_help(words: tuple[str, ...]) -> None:
    code, out, err = cli(Engine({}), [*words, "--help"])
    assert (code, err) == (0, "") and out.startswith("Usage:  sampan ") and "--help" in out
