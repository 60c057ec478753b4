"""The small per-exec helper for runc and crun with a TTY: ``<runtime> exec --detach``, then
wait for the process as its subreaper and exit with its status.

runc and crun accept a console socket only with ``--detach``: the runtime starts the process,
sends the PTY master to the daemon, and exits.  The process is then nobody's child, so its exit
status would be lost.  This helper sets PR_SET_CHILD_SUBREAPER before it runs the runtime, so
the orphaned process becomes its child; it waits for it (by the pid the runtime wrote to
``--pid-file``) and exits with the process's status, as a foreground ``exec`` does.  Run as
``python3 -I -S -c 'from sampan.engine.exec_reaper import main; main()' PID_FILE RUNTIME ARGS...``
(standard library and ``_sys`` only: it starts in a few milliseconds).
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str] | None = None) -> None:
    from sampan._sys.caps import PR_SET_CHILD_SUBREAPER, prctl

    args = sys.argv[1:] if argv is None else argv
    pid_file, command = args[0], args[1:]
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    runtime = os.fork()
    if runtime == 0:  # pragma: no cover - child
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status = os.waitpid(runtime, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        os._exit(code if code > 0 else 128 - code)
    try:
        with open(pid_file) as f:
            target = int(f.read().strip())
    except (OSError, ValueError):
        os._exit(126)

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(target, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(255)
        if pid == target:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code >= 0 else 128 - code)
