"""How fast a 200 MiB single-file layer is applied (issue 2: ``load`` at least as fast as Docker).

The figures in ``sampan/storage/archive.py``'s docstring come from this test's layer shapes.
The bound asserted here is loose (the CI machine is shared); the measured speed is printed
(``pytest -s``) and compared with GNU tar on the same file.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from sampan.storage.archive import apply_layer

pytestmark = [pytest.mark.root, pytest.mark.slow]

MIB = 1 << 20


def _big_layer(path: Path, size: int) -> None:
    info = tarfile.TarInfo("big.bin")
    info.size = size
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        f.write(info.tobuf(format=tarfile.PAX_FORMAT))
        for _ in range(size // MIB):
            f.write(block)
        f.write(b"\0" * 1024)


def test_200_mib_layer_applies_fast(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    _big_layer(layer, 200 * MIB)
    times = []
    for i in range(2):
        dest = tmp_path / f"d{i}"
        dest.mkdir()
        t0 = time.perf_counter()
        with open(layer, "rb") as f:
            applied = apply_layer(f, dest, whiteouts="overlay")
        times.append(time.perf_counter() - t0)
        assert applied.size == layer.stat().st_size
        assert (dest / "big.bin").stat().st_size == 200 * MIB
        (dest / "big.bin").unlink()
    gnu_dest = tmp_path / "gnu"
    gnu_dest.mkdir()
    t0 = time.perf_counter()
    subprocess.run(
        ["tar", "-x", "-p", "--numeric-owner", "-C", str(gnu_dest), "-f", str(layer)], check=True
    )
    gnu = time.perf_counter() - t0
    best = min(times)
    print(f"\n200 MiB layer: sampan {best:.3f} s ({200 / best:.0f} MiB/s), GNU tar {gnu:.3f} s")
    assert best < 2.0, times
