"""A RUN step's stderr in the build log (sampan/build/runserver.py ``relay(err_fd=)``): each
chunk wrapped in red as dockerd's legacy builder sends it, stdout untouched, both to their end."""

from __future__ import annotations

import os
import threading

import pytest

from sampan.build.runserver import STDERR_END, STDERR_START, relay


@pytest.mark.parametrize("cancellable", [False, True])
def test_stderr_is_wrapped_and_both_pipes_are_read_to_their_end(cancellable: bool) -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()

    def write() -> None:
        os.write(out_w, b"out 1\n")
        os.write(err_w, b"err 1\n")
        os.close(err_w)
        os.write(out_w, b"out 2\n")
        os.close(out_w)

    t = threading.Thread(target=write)
    t.start()
    got: list[bytes] = []
    try:
        relay(out_r, got.append, cancelled=(lambda: False) if cancellable else None, stop=lambda: None, err_fd=err_r)
    finally:
        t.join()
        os.close(out_r)
        os.close(err_r)
    assert STDERR_START + b"err 1\n" + STDERR_END in got
    assert b"".join(c for c in got if not c.startswith(STDERR_START)) == b"out 1\nout 2\n"
