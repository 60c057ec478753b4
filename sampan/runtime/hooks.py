"""OCI hooks: run one hook with the container's state on stdin, honouring its timeout.

Where each kind runs (runtime-spec config.md#posix-platform-hooks):
prestart, createRuntime, poststart, poststop in the runtime's namespaces (the parent);
createContainer and startContainer inside the container's namespaces (the init), before
pivot_root and just before exec respectively.
"""

from __future__ import annotations

from sampan.errors import InvalidConfig
from sampan.oci import jsoncodec
from sampan.oci.runtime import Hook

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def run(hook: Hook, state: dict[str, Any], kind: str, index: int) -> None:
    """Run ``hook``; a non-zero exit or a timeout raises InvalidConfig naming the hook."""
    import subprocess

    field = f"hooks.{kind}[{index}]"
    try:
        proc = subprocess.run(
            list(hook.args) or [hook.path],
            executable=hook.path,
            input=jsoncodec.dumps(state).encode(),
            env=dict(e.split("=", 1) for e in hook.env if "=" in e),
            capture_output=True,
            timeout=hook.timeout,
            close_fds=True,
        )
    except subprocess.TimeoutExpired:
        raise InvalidConfig(field, f"hook {hook.path} timed out after {hook.timeout}s") from None
    except OSError as exc:
        raise InvalidConfig(field, f"cannot run hook {hook.path}: {exc.strerror}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = f": {err[-1]}" if err else ""
        raise InvalidConfig(field, f"hook {hook.path} exited with status {proc.returncode}{detail}")


def run_all(hooks: tuple[Hook, ...], state: dict[str, Any], kind: str) -> None:
    for i, hook in enumerate(hooks):
        run(hook, state, kind, i)


def to_json(hooks: tuple[Hook, ...]) -> list[dict[str, Any]]:
    return [{"path": h.path, "args": list(h.args), "env": list(h.env), "timeout": h.timeout} for h in hooks]


def from_json(raw: list[dict[str, Any]]) -> tuple[Hook, ...]:
    return tuple(Hook(h["path"], tuple(h["args"]), tuple(h["env"]), h.get("timeout")) for h in raw)
