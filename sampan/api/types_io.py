"""Docker's wire JSON for the I/O side of containers: stats, exec inspect, changes, top."""

from __future__ import annotations

from typing import Any

from sampan.engine.exec import Exec
from sampan.engine.stats import Sample

JSONDict = dict[str, Any]

_MEMORY_STAT_KEYS_V1 = (
    "active_anon", "active_file", "cache", "dirty", "hierarchical_memory_limit",
    "hierarchical_memsw_limit", "inactive_anon", "inactive_file", "mapped_file", "pgfault",
    "pgmajfault", "pgpgin", "pgpgout", "rss", "rss_huge", "total_active_anon",
    "total_active_file", "total_cache", "total_dirty", "total_inactive_anon",
    "total_inactive_file", "total_mapped_file", "total_pgfault", "total_pgmajfault",
    "total_pgpgin", "total_pgpgout", "total_rss", "total_rss_huge", "total_unevictable",
    "total_writeback", "unevictable", "writeback",
)


def _cpu(cg: Any, system_ns: int, cpus: int) -> JSONDict:
    return {
        "cpu_usage": {
            "total_usage": cg.cpu_total_ns,
            **({"percpu_usage": list(cg.cpu_percpu_ns)} if cg.cpu_percpu_ns else {}),
            "usage_in_kernelmode": cg.cpu_system_ns,
            "usage_in_usermode": cg.cpu_user_ns,
        },
        "system_cpu_usage": system_ns,
        "online_cpus": cpus,
        "throttling_data": {
            "periods": cg.periods,
            "throttled_periods": cg.throttled_periods,
            "throttled_time": cg.throttled_time_ns,
        },
    }


def stats_json(s: Sample, *, name: str, container_id: str) -> JSONDict:
    cg = s.cgroup
    if not s.running:
        # Docker's shape for a stopped container: zeros and empty sections
        return {
            "read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z",
            "pids_stats": {}, "blkio_stats": {
                "io_service_bytes_recursive": None, "io_serviced_recursive": None,
                "io_queue_recursive": None, "io_service_time_recursive": None,
                "io_wait_time_recursive": None, "io_merged_recursive": None,
                "io_time_recursive": None, "sectors_recursive": None,
            },
            "num_procs": 0, "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                          "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                             "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {}, "name": "/" + name, "id": container_id,
        }
    limit = cg.memory_limit or s.host_memory
    if s.host_memory and limit > s.host_memory:
        limit = s.host_memory
    stat = dict(cg.memory_stat)
    memory: JSONDict = {
        "usage": cg.memory_usage,
        "max_usage": cg.memory_max_usage,
        "stats": stat,
        "limit": limit,
    }
    if cg.oom_kill or cg.oom_events:
        memory["failcnt"] = cg.oom_events
    blk: list[JSONDict] = [
        {"major": ma, "minor": mi, "op": op, "value": v} for ma, mi, op, v in cg.blkio
    ]
    pids: JSONDict = {"current": cg.pids_current}
    if cg.pids_limit:
        pids["limit"] = cg.pids_limit
    out: JSONDict = {
        "read": s.read,
        "preread": s.preread,
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": blk or None,
            "io_serviced_recursive": None, "io_queue_recursive": None,
            "io_service_time_recursive": None, "io_wait_time_recursive": None,
            "io_merged_recursive": None, "io_time_recursive": None, "sectors_recursive": None,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(cg, s.system_cpu_ns, s.online_cpus),
        "precpu_stats": _cpu(s.pre_cgroup, s.pre_system_cpu_ns, s.online_cpus)
        if s.pre_system_cpu_ns else {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                                     "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "memory_stats": memory,
        "name": "/" + name,
        "id": container_id,
    }
    out["networks"] = {
        ifname: {
            "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": n.rx_errors,
            "rx_dropped": n.rx_dropped, "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
            "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
        }
        for ifname, n in s.networks.items()
    }
    return out


def exec_inspect_json(e: Exec, *, container_id: str) -> JSONDict:
    cfg = e.config
    return {
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": cfg.tty,
            "entrypoint": cfg.cmd[0] if cfg.cmd else "",
            "arguments": list(cfg.cmd[1:]),
            "privileged": cfg.privileged,
            **({"user": cfg.user} if cfg.user else {}),
        },
        "OpenStdin": cfg.attach_stdin,
        "OpenStderr": cfg.attach_stderr,
        "OpenStdout": cfg.attach_stdout,
        "CanRemove": False,
        "ContainerID": container_id,
        "DetachKeys": cfg.detach_keys,
        "Pid": e.pid,
    }


def changes_json(changes: list[tuple[int, str]]) -> list[JSONDict]:
    return [{"Path": path, "Kind": kind} for kind, path in changes]
