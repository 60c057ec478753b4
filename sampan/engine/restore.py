"""Live restore: at daemon start, take back the containers a previous daemon left.

Shims outlive the daemon (DESIGN.md "Processes"), so after a stop or a SIGKILL of sampand
the containers keep running.  For every container the database says was running or paused:

1. its shim answers on ``<exec-root>/containers/<id>/shim.sock`` and the container runs:
   adopt it (a new monitor thread waits for its exit; logs, attach, exec, stop work as before);
2. the shim answers but the container has exited meanwhile: record the exit code the shim
   kept, exactly as if the daemon had seen it (``handle_exit``; the restart policy applies);
3. no shim (the machine rebooted, or it was killed): take the exit status from the shim's
   ``state.json`` if it wrote one, else 255, and clean up the runtime's state.

Containers that were ``restarting`` are started again; stopped containers whose policy says
so (``always``; ``unless-stopped`` when not stopped by hand) are started, as dockerd does.
The shim fork server is started in the background meanwhile, so that the first ``start``
after the daemon comes up does not pay for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from sampan import errors
from sampan.engine import lifecycle, restart
from sampan.engine.containers import ContainerService
from sampan.engine.model import Container

log = logging.getLogger("sampan.restore")


def restore(svc: ContainerService) -> None:
    threading.Thread(target=_warm_up, args=(svc,), name="forkserver-start", daemon=True).start()
    to_start: list[str] = []
    for c in svc.all():
        try:
            _restore_one(svc, c, to_start)
        except Exception:  # one broken record must not keep the daemon from starting
            log.exception("container %s: restore failed", c.id[:12])
    if to_start:
        threading.Thread(target=_start_all, args=(svc, to_start), name="restore-start", daemon=True).start()


def _restore_one(svc: ContainerService, c: Container, to_start: list[str]) -> None:
    status = c.state.status
    if status in (lifecycle.RUNNING, lifecycle.PAUSED):
        gen = svc.next_generation(c.id)
        try:
            st = svc.runner.client(c.id).status()
            shim_alive = True
        except errors.SampanError:
            st = svc.runner.saved_state(c.id)
            shim_alive = False
        if shim_alive and st.get("status") in ("running", "paused", "created"):
            log.info("container %s: re-adopted (pid %s)", c.id[:12], st.get("pid"))
            svc.adopt(c.id, gen, int(st.get("pid") or c.state.pid))
            return
        log.info("container %s: exited while the daemon was away (%s)", c.id[:12], st.get("exit_code"))
        if not shim_alive:
            _forget_runtime_state(svc, c.id, c.host.runtime)
        svc.handle_exit(c.id, gen, st, daemon_start=True)
    elif status == lifecycle.RESTARTING:
        to_start.append(c.id)
    elif status == lifecycle.REMOVING:
        with contextlib.suppress(errors.SampanError):
            svc.mark_dead(c.id)
    elif status == lifecycle.EXITED and c.has_been_started and restart.should_restart(
        c.host.restart_policy, exit_code=c.state.exit_code, restart_count=c.restart_count,
        manually_stopped=c.has_been_manually_stopped, daemon_start=True,
    ):
        to_start.append(c.id)


def _warm_up(svc: ContainerService) -> None:
    try:
        svc.runner.forkserver()
    except (OSError, errors.SampanError) as exc:  # the first start tries again
        log.warning("shim fork server did not start: %s", exc)


def _start_all(svc: ContainerService, ids: list[str]) -> None:
    for cid in ids:
        try:
            svc.start_restored(cid)
        except errors.SampanError as exc:
            log.warning("container %s: restart at daemon start failed: %s", cid[:12], exc)


def _forget_runtime_state(svc: ContainerService, cid: str, runtime: str) -> None:
    """The shim is gone: remove what the runtime kept for the container (state dir, cgroup)."""
    if runtime != "sampan":
        return
    from sampan.runtime import container as rtc

    with contextlib.suppress(Exception):
        rtc.delete(svc.runner.runtime_root(runtime), cid, force=True)
