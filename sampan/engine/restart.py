"""Restart policies: ``no``, ``on-failure[:N]``, ``always``, ``unless-stopped``, with Docker's
back-off (restartmanager): the first restart waits 100 ms, each next one twice as long (at most
a minute), and the delay starts over once the container has run for 10 s.

The decision is pure (``should_restart``); the container service owns the timers.  A policy
holds across daemon restarts: at start-up the service asks ``should_restart(...,
daemon_start=True)`` for every container that was running when the daemon went away.
"""

from __future__ import annotations

from dataclasses import dataclass

from sampan import errors
from sampan.engine.model import RestartPolicy

POLICIES = ("no", "always", "on-failure", "unless-stopped")
INITIAL_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


def parse_policy(text: str) -> RestartPolicy:
    """``on-failure:3`` -> RestartPolicy("on-failure", 3)."""
    name, _, count = (text or "no").partition(":")
    return validate(RestartPolicy(name, int(count) if count.isdigit() else -1 if count else 0))


def validate(policy: RestartPolicy) -> RestartPolicy:
    if policy.name == "":
        policy.name = "no"
    if policy.name not in POLICIES:
        raise errors.InvalidArgument(f"invalid restart policy: unknown policy '{policy.name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")
    if policy.maximum_retry_count < 0:
        raise errors.InvalidArgument("invalid restart policy: maximum retry count must be a positive integer")
    if policy.maximum_retry_count and policy.name != "on-failure":
        raise errors.InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    return policy


def should_restart(
    policy: RestartPolicy,
    *,
    exit_code: int,
    restart_count: int,
    manually_stopped: bool,
    daemon_start: bool = False,
) -> bool:
    name = policy.name
    if name == "always":
        return not manually_stopped or daemon_start
    if name == "unless-stopped":
        return not manually_stopped
    if name == "on-failure":
        if manually_stopped or exit_code == 0:
            return False
        return policy.maximum_retry_count == 0 or restart_count < policy.maximum_retry_count
    return False


@dataclass
class Backoff:
    """The delay before the next restart of one container."""

    delay: float = 0.0

    def next(self, ran_for: float) -> float:
        if ran_for >= RESET_AFTER:
            self.delay = 0.0
        self.delay = INITIAL_DELAY if self.delay == 0.0 else min(self.delay * 2, MAX_DELAY)
        return self.delay
