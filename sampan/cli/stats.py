"""``stats``: a live table of each container's resource use (``--no-stream`` prints one).

Columns and formulas are the docker CLI's (``stats_helpers.go``): CPU % = Δtotal_usage /
Δsystem_cpu_usage * online_cpus * 100; memory = usage - total_inactive_file (cgroup v1) or
- inactive_file (v2); MEM % = memory / limit * 100; NET I/O and BLOCK I/O in decimal units,
memory in binary units.  Streaming: one ``GET /containers/{id}/stats?stream=1`` per container, read
by a thread, and the table redrawn every 500 ms (the screen cleared first on a terminal).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from sampan import errors
from sampan.cli.flags import Flag, Spec
from sampan.cli.system import TABLE_FORMAT_HELP

if TYPE_CHECKING:
    from sampan.cli.context import Context
    from sampan.cli.flags import Options
    from sampan.client.client import Client

STATS = Spec(
    "stats", "[OPTIONS] [CONTAINER...]", "Display a live stream of container(s) resource usage statistics",
    Flag("all", "a", help="Show all containers (default shows just running)"),
    Flag("format", kind="string", help=TABLE_FORMAT_HELP),
    Flag("no-stream", help="Disable streaming stats and only pull the first result"),
    Flag("no-trunc", help="Do not truncate output"),
    aliases=("container stats", "stats"),
)

HEADERS = {
    "Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"


def cpu_percent(sample: dict[str, Any]) -> float:
    cpu = sample.get("cpu_stats") or {}
    pre = sample.get("precpu_stats") or {}
    usage = cpu.get("cpu_usage") or {}
    cpu_delta = float(usage.get("total_usage", 0) or 0) - float((pre.get("cpu_usage") or {}).get("total_usage", 0) or 0)
    system_delta = float(cpu.get("system_cpu_usage", 0) or 0) - float(pre.get("system_cpu_usage", 0) or 0)
    online = float(cpu.get("online_cpus", 0) or 0) or float(len(usage.get("percpu_usage") or []))
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def memory_usage(mem: dict[str, Any]) -> float:
    """Usage without the page cache the kernel can drop: docker's ``calculateMemUsageUnixNoCache``."""
    usage = float(mem.get("usage", 0) or 0)
    stats = mem.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # v1 first, as docker
        value = stats.get(key)
        if value is not None and float(value) < usage:
            return usage - float(value)
    return usage


def _io_totals(sample: dict[str, Any]) -> tuple[float, float, float, float]:
    rx = tx = read = write = 0.0
    for net in (sample.get("networks") or {}).values():
        rx += float(net.get("rx_bytes", 0) or 0)
        tx += float(net.get("tx_bytes", 0) or 0)
    for entry in (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += float(entry.get("value", 0) or 0)
        elif op == "write":
            write += float(entry.get("value", 0) or 0)
    return rx, tx, read, write


def stats_row(cid: str, name: str, sample: dict[str, Any] | None, *, trunc: bool = True) -> dict[str, str]:
    from sampan.cli.output import human_size
    from sampan.cli.system import bytes_size

    row = {"Container": cid[:12] if trunc else cid, "ID": cid[:12] if trunc else cid, "Name": name.lstrip("/")}
    if not sample:
        return {**row, "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--", "NetIO": "--", "BlockIO": "--", "PIDs": "--"}
    mem = sample.get("memory_stats") or {}
    used = memory_usage(mem)
    limit = float(mem.get("limit", 0) or 0)
    rx, tx, read, write = _io_totals(sample)
    return {
        **row,
        "CPUPerc": f"{cpu_percent(sample):.2f}%",
        "MemUsage": f"{bytes_size(used)} / {bytes_size(limit)}",
        "MemPerc": f"{used / limit * 100.0 if limit else 0.0:.2f}%",
        "NetIO": f"{human_size(rx, 3)} / {human_size(tx, 3)}",
        "BlockIO": f"{human_size(read, 3)} / {human_size(write, 3)}",
        "PIDs": str(int((sample.get("pids_stats") or {}).get("current", 0) or 0)),
    }


class Watcher:
    """Reads one container's stats stream in a thread; ``latest`` is the newest sample."""

    def __init__(self, client: Client, cid: str, name: str) -> None:
        self.cid = cid
        self.name = name
        self.latest: dict[str, Any] | None = None
        self.done = False
        self.thread = threading.Thread(target=self._run, args=(client,), daemon=True)
        self.thread.start()

    def _run(self, client: Client) -> None:
        try:
            for sample in client.stream("GET", f"/containers/{self.cid}/stats", query={"stream": True}):
                self.latest = sample
        except errors.SampanError:
            pass
        self.done = True


def _targets(client: Client, names: list[str], all_: bool) -> list[tuple[str, str]]:
    if names:
        out = []
        for name in names:
            info = client.json("GET", f"/containers/{name}/json")
            out.append((str(info["Id"]), str(info.get("Name", name))))
        return out
    listed = client.json("GET", "/containers/json", query={"all": all_}) or []
    return [(str(c["Id"]), str((c.get("Names") or [""])[0])) for c in listed]


def _render(ctx: Context, fmt: str, rows: list[dict[str, str]]) -> str:
    import io

    from sampan.cli.output import write_formatted

    buf = io.StringIO()
    write_formatted(buf, fmt, rows, default=TABLE, headers=HEADERS)
    return buf.getvalue()


def stats(ctx: Context, opts: Options, args: list[str]) -> int:
    from sampan.cli.attach import isatty

    client = ctx.client()
    trunc = not opts["no_trunc"]
    fmt = str(opts["format"])
    targets = _targets(client, args, bool(opts["all"]))
    if opts["no_stream"]:
        samples: dict[str, dict[str, Any] | None] = {}

        def fetch(cid: str) -> None:
            try:
                samples[cid] = client.json("GET", f"/containers/{cid}/stats", query={"stream": "0"})
            except errors.SampanError:
                samples[cid] = None

        threads = [threading.Thread(target=fetch, args=(cid,)) for cid, _ in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rows = [stats_row(cid, name, samples.get(cid), trunc=trunc) for cid, name in targets]
        ctx.stdout.write(_render(ctx, fmt, rows))
        return 0
    watchers = {cid: Watcher(client, cid, name) for cid, name in targets}
    clear = isatty(ctx.stdout)
    last_list = time.monotonic()
    try:
        while True:
            time.sleep(0.5)
            if not args and time.monotonic() - last_list > 2:
                last_list = time.monotonic()
                current = dict(_targets(client, [], bool(opts["all"])))
                for cid, name in current.items():
                    if cid not in watchers:
                        watchers[cid] = Watcher(client, cid, name)
                for cid in [c for c, w in watchers.items() if c not in current and w.done]:
                    del watchers[cid]
            rows = [stats_row(w.cid, w.name, w.latest, trunc=trunc) for w in watchers.values()]
            text = _render(ctx, fmt, rows)
            ctx.stdout.write(("\033[2J\033[H" if clear else "") + text)
            ctx.stdout.flush()
            if args and all(w.done for w in watchers.values()):
                return 0
    except KeyboardInterrupt:
        return 0
