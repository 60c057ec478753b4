"""Signal numbers and handlers from ``_signal``, the C module under :mod:`signal`.

:mod:`signal` wraps every constant in an ``IntEnum`` and so imports :mod:`enum` (about a
millisecond of a container start); the runtime's hot path needs only the numbers and two calls.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _signal as _s  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - not CPython
    import signal as _s

SIG_DFL: Any = _s.SIG_DFL
SIGHUP: int = _s.SIGHUP
SIGINT: int = _s.SIGINT
SIGQUIT: int = _s.SIGQUIT
SIGKILL: int = _s.SIGKILL
SIGUSR1: int = _s.SIGUSR1
SIGUSR2: int = _s.SIGUSR2
SIGPIPE: int = _s.SIGPIPE
SIGTERM: int = _s.SIGTERM
SIGXFSZ: int = _s.SIGXFSZ
SIGWINCH: int = _s.SIGWINCH


def set_handler(sig: int, handler: Any) -> Any:
    """signal.signal(): install ``handler`` (a callable or SIG_DFL/SIG_IGN), return the old one."""
    return _s.signal(sig, handler)


def clear_mask() -> None:
    """Unblock every signal (the mask survives exec)."""
    _s.pthread_sigmask(_s.SIG_SETMASK, [])
