"""A leak check for the network tests, scoped to what they make.

Kept beside the shared checker of ``tests/conftest.py`` for what that one cannot do: it
compares every link and nft table of the machine at once, without waiting, so it fails on
the veths of namespaces the kernel tears down asynchronously (this one waits up to 10 s) and,
beside other sessions, reports and deletes their links and tables.  Network tests name
everything they make after the test (``names``): this checker looks at those names only:
processes carrying the test's marker, mounts under this session's temporary directory, links
named after the test's tag plus veths, the test's nft table.  Import ``leak_check`` into a
test module to use it there.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _is_zombie, _marked_processes, _mounts, _run


def _links(tag: str) -> set[str]:
    try:
        names = os.listdir("/sys/class/net")
    except FileNotFoundError:
        return set()
    return {n for n in names if tag[:8] in n or n.startswith("veth")}


def _tables(table: str) -> set[str]:
    return {line.strip() for line in _run("nft", "list", "tables").splitlines() if line.strip().endswith(f" {table}")}


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest, names, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:  # type: ignore[no-untyped-def]
    tag = hashlib.sha256(f"{request.node.nodeid}:{os.getpid()}".encode()).hexdigest()[:12]
    marker = f"SAMPAN_TEST_ID={tag}".encode()
    previous = os.environ.get("SAMPAN_TEST_ID")
    os.environ["SAMPAN_TEST_ID"] = tag
    base = str(tmp_path_factory.getbasetemp())

    def snapshot() -> tuple[set[int], set[str], set[str], set[str]]:
        procs = {p for p in _marked_processes(marker) if Path(f"/proc/{p}").exists() and not _is_zombie(p)}
        return procs, {m for m in _mounts() if m.startswith(base)}, _links(names.tag), _tables(names.nft_table)

    before = snapshot()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SAMPAN_TEST_ID", None)
        else:
            os.environ["SAMPAN_TEST_ID"] = previous
    deadline = time.monotonic() + 10  # veths of unpinned namespaces go asynchronously
    while True:
        after = snapshot()
        leaks = {k: sorted(map(str, a - b)) for k, a, b in zip(("processes", "mounts", "links", "nft tables"), after, before, strict=True)}
        leaks = {k: v for k, v in leaks.items() if v}
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if leaks:
        pytest.fail(f"test left behind: {leaks}", pytrace=False)
