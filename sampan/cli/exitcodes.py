"""The one table from sampan's error classes to CLI exit codes.

Docker's contract: 125 when the engine fails before the container's process starts, 126 when
the command cannot be invoked, 127 when it is not found, otherwise the container's own status.
Commands that are not ``run``/``exec`` exit 1 on any error, as the docker CLI does.
"""

from __future__ import annotations

from sampan import errors

GENERAL = 1
USAGE = 125  # docker: flag errors and daemon errors before start both give 125 for run
ENGINE = 125
CANNOT_INVOKE = 126
NOT_FOUND_COMMAND = 127

#: For ``run``/``create``/``start -a``: errors before the process starts.
RUN_EXIT: tuple[tuple[type[errors.SampanError], int], ...] = ((errors.SampanError, ENGINE),)


def exit_code(exc: BaseException, *, command: str = "") -> int:
    """The exit code for an error raised while running ``command``."""
    if command in ("run", "create", "start", "exec"):
        for cls, code in RUN_EXIT:
            if isinstance(exc, cls):
                return code
    return GENERAL
