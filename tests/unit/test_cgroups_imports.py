"""The cgroups package stays import-light: sampan-runtime imports it on the start path of every
bundle with cgroup resources, where dataclasses+typing+re+enum cost ~20 ms of a ~30 ms start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sampan.runtime.cgroups.resources import is_cpu_list

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("dataclasses", "typing", "re", "enum", "inspect", "signal", "struct", "threading")


def test_runtime_path_imports_no_heavy_module() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); "
        "before = set(sys.modules); "
        "from sampan.runtime.cgroups import new_manager, CgroupStats; "
        "import sampan.runtime.cgroups.select, sampan.runtime.cgroups.v1, sampan.runtime.cgroups.v2, sampan.runtime.cgroups.warmup; "
        "from sampan.runtime.cgroups.select import manager_for_layout, detect; "
        f"print(sorted((set(sys.modules) - before) & set({HEAVY!r})))"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_stats_record_defaults_are_fresh() -> None:
    from sampan.runtime.cgroups import CgroupStats

    a, b = CgroupStats(), CgroupStats(memory_usage=5)
    a.memory_stat["x"] = 1
    a.cpu_percpu_ns.append(1)
    assert b.memory_stat == {} and b.cpu_percpu_ns == [] and b.blkio == []
    assert b.memory_usage == 5 and a == CgroupStats(memory_stat={"x": 1}, cpu_percpu_ns=[1])


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0", True), ("0-2", True), ("0-2,4", True), (" 0 , 3-5 ", True), ("1,2,3", True),
        ("", False), ("a", False), ("1-", False), ("-1", False), ("1-2-3", False), ("1,,2", False),
        ("1,", False), ("1 - 2", False), ("\u0661", False), ("0x1", False),
    ],
)
def test_cpu_list_syntax(value: str, ok: bool) -> None:
    assert is_cpu_list(value) is ok


def test_warmup_check_imports_only_the_light_modules(tmp_path: Path) -> None:
    """The warm-up check runs before the fork on every start: it reads /proc/self/cgroup with
    ``membership`` and loads neither the managers nor the stats record (nor ``select``, unless
    the host needs the warm-up thread, which looks its own cgroup up with it)."""
    import ast

    from sampan.runtime.cgroups import warmup

    (tmp_path / "config.json").write_text('{"linux": {"resources": {"pids": {"limit": 10}}}}')
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); "
        "from sampan.runtime.cgroups import warmup; warmup.start_for_bundle(sys.argv[1]); warmup.stop(); "
        "print(sorted(m for m in sys.modules if m.startswith('sampan.runtime.cgroups')))"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout.strip()))
    expected = {"sampan.runtime.cgroups", "sampan.runtime.cgroups.membership", "sampan.runtime.cgroups.warmup"}
    if warmup.needed():
        expected.add("sampan.runtime.cgroups.select")
    assert loaded == expected
