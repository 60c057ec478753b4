"""Coexistence with Docker: accept rules for sampan's bridges in Docker's ``DOCKER-USER`` chain.

dockerd sets the iptables ``FORWARD`` policy to DROP and loads br_netfilter, so frames crossing
*any* bridge (sampan's too) pass through that chain and are dropped; an accept in sampan's own
nft table cannot override a drop in another table (measured here).  So, where the chain
``DOCKER-USER`` exists (dockerd made it; it is jumped to first from ``FORWARD``), sampan inserts,
for each of its bridges, two rules::

    -I DOCKER-USER -i <bridge> -m comment --comment sampan:<bridge> -j ACCEPT
    -I DOCKER-USER -o <bridge> -m comment --comment sampan:<bridge> -j ACCEPT

and deletes exactly those (by the same specification) when the bridge goes or sampan stops.
This is the one exception to "sampan never touches rules it did not create"; ``info`` reports
it.  The ``iptables`` command is used because it is what dockerd itself uses (on Debian 12 the
nft-backed one), so the rules land in the chain dockerd created.
"""

from __future__ import annotations

import shutil
import subprocess
import time

CHAIN = "DOCKER-USER"
RECHECK_SECONDS = 5.0


def _spec(bridge: str, direction: str) -> list[str]:
    return [CHAIN, direction, bridge, "-m", "comment", "--comment", f"sampan:{bridge}", "-j", "ACCEPT"]


def _iptables(*args: str) -> int:
    try:
        return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, timeout=15).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 1


class DockerUserChain:
    """Tracks the accept rules sampan inserted into ``DOCKER-USER``."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled and shutil.which("iptables") is not None
        self._inserted: set[str] = set()
        self._present = False
        self._checked = 0.0

    def docker_present(self) -> bool:
        """Whether dockerd's chain exists (re-checked at most every few seconds)."""
        if not self.enabled:
            return False
        now = time.monotonic()
        if now - self._checked > RECHECK_SECONDS:
            self._present = _iptables("-n", "-L", CHAIN) == 0
            self._checked = now
        return self._present

    def ensure(self, bridge: str) -> bool:
        """Insert the accept rules for ``bridge`` if Docker's chain exists; True if present."""
        if not self.docker_present():
            return False
        if bridge in self._inserted:
            return True
        for direction in ("-i", "-o"):
            if _iptables("-C", *_spec(bridge, direction)) != 0:
                _iptables("-I", *_spec(bridge, direction))
        self._inserted.add(bridge)
        return True

    def remove(self, bridge: str) -> None:
        """Delete exactly the rules inserted for ``bridge`` (every copy of them)."""
        if not self.enabled or (bridge not in self._inserted and not self.docker_present()):
            return
        for direction in ("-i", "-o"):
            for _ in range(8):
                if _iptables("-D", *_spec(bridge, direction)) != 0:
                    break
        self._inserted.discard(bridge)

    def forget_cache(self) -> None:
        self._checked = 0.0

    def inserted(self) -> list[str]:
        return sorted(self._inserted)
