"""bench/runtime.py's pure parts and the table's units (no root: nothing is started)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import bench.scenarios  # first: bench.runtime is registered at its end
from bench import __main__ as bench_main
from bench import runtime


def test_registered() -> None:
    assert {"runtime-run", "shim-memory"} <= set(bench.scenarios.SCENARIOS)


def test_bundle_config_has_cgroup_limits(tmp_path: Path) -> None:
    cfg = runtime._config(["/bin/true"], tmp_path, "/rtbench/x", readonly=True)
    assert cfg["ociVersion"] == "1.0.2"
    assert cfg["root"] == {"path": str(tmp_path), "readonly": True}
    assert cfg["linux"]["cgroupsPath"] == "/rtbench/x"
    res = cfg["linux"]["resources"]
    assert res["memory"]["limit"] == runtime.MEM_LIMIT and res["pids"]["limit"] == 1024
    assert "sampan" not in runtime.CGROUP_PARENT


def test_smem_rows_for_the_wanted_pids(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "  PID      PSS      RSS \n 10   1700   9000\n 11   1800   9100\n 12 5 6\n"

    def fake_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        assert cmd[0] == "smem"
        return subprocess.CompletedProcess(cmd, 0, text, "")

    monkeypatch.setattr("bench.runtime.subprocess.run", fake_run)
    assert runtime.smem_kib([10, 11, 99]) == {10: (1700, 9000), 11: (1800, 9100)}


def test_memory_variants_share_one_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    pids = list(range(100, 100 + runtime.N_SHIMS))
    started = []

    @contextlib.contextmanager
    def running() -> Iterator[list[int]]:
        started.append(1)
        yield pids

    monkeypatch.setattr(runtime, "smem_kib", lambda ps: {p: (1024 + (p % 2) * 1024, 8192) for p in ps})
    monkeypatch.setattr("bench.runtime.time.sleep", lambda s: None)
    m = runtime._Memory(running)
    assert m.pss_once() == pytest.approx(1.5)  # MB: half 1 MiB, half 2 MiB
    assert m.rss_once() == pytest.approx(8.0)
    assert started == [1]

    monkeypatch.setattr(runtime, "smem_kib", lambda ps: {})
    with pytest.raises(RuntimeError, match="smem listed 0"):
        m.pss_once()


def test_table_units_and_ratios(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    values = {"sampan": 1.6, "sampan RSS": 9.0, "conmon": 0.4, "conmon RSS": 2.0}

    def scenario(ctx: object) -> runtime.MeasuredScenario:
        s = runtime.MeasuredScenario("mem", "test")
        for name, v in values.items():
            s.variants[name] = (lambda x: lambda: x)(v)
        return s

    def timed(ctx: object) -> bench.scenarios.Scenario:
        s = bench.scenarios.Scenario("lat", "test")
        s.variants["sampan"] = lambda: 0.030
        s.variants["runc"] = lambda: 0.020
        return s

    class NoDaemon:
        def __enter__(self) -> NoDaemon:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(bench_main, "Sampand", NoDaemon)
    monkeypatch.setattr(bench_main, "SCENARIOS", {"mem": scenario, "lat": timed})
    assert bench_main.main(["-n", "3", "mem", "lat"]) == 0
    out = capsys.readouterr().out
    assert "| mem | sampan | 1.60 MB |  |" in out
    assert "| mem | conmon | 0.40 MB | 4.00 |" in out
    assert "| mem | conmon RSS | 2.00 MB | 4.50 |" in out
    assert "| lat | runc | 20.0 ms | 1.50 |" in out
    assert bench_main.main(["--smoke", "mem"]) == 0
    assert "| mem | conmon | 0.40 MB |  |" in capsys.readouterr().out
