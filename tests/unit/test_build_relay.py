"""The output relay of RUN steps (sampan/build/runserver.py): what a step prints reaches the
build log, and a cancelled build stops the step (again at each look until its output ends)."""

from __future__ import annotations

import itertools
import os
import threading
import time

from sampan.build.runserver import POLL_INTERVAL, relay


def test_relay_passes_everything_until_the_end() -> None:
    r, w = os.pipe()
    os.write(w, b"one\ntwo\n")
    os.close(w)
    got: list[bytes] = []
    try:
        assert relay(r, got.append, cancelled=None, stop=lambda: None) is False
    finally:
        os.close(r)
    assert b"".join(got) == b"one\ntwo\n"


def test_relay_stops_a_cancelled_step_until_its_output_ends() -> None:
    r, w = os.pipe()
    os.write(w, b"started\n")
    stops: list[float] = []
    flag = threading.Event()

    def stop() -> None:
        stops.append(time.monotonic())
        if len(stops) == 3:  # the step dies on the third SIGKILL (it was still being created)
            os.close(w)

    threading.Timer(0.2, flag.set).start()
    got: list[bytes] = []
    t0 = time.monotonic()
    try:
        assert relay(r, got.append, cancelled=flag.is_set, stop=stop) is True
    finally:
        os.close(r)
    assert got == [b"started\n"]
    assert len(stops) == 3
    assert stops[0] - t0 < 0.2 + 2 * POLL_INTERVAL + 0.1  # noticed within a poll or two
    assert all(b - a >= POLL_INTERVAL * 0.9 for a, b in itertools.pairwise(stops))  # not in a busy loop


def test_relay_without_cancellation_never_stops() -> None:
    r, w = os.pipe()
    got: list[bytes] = []
    stops: list[int] = []

    def writer() -> None:
        for i in range(3):
            os.write(w, b"%d\n" % i)
            time.sleep(POLL_INTERVAL)
        os.close(w)

    threading.Thread(target=writer).start()
    try:
        assert relay(r, got.append, cancelled=lambda: False, stop=lambda: stops.append(1)) is False
    finally:
        os.close(r)
    assert b"".join(got) == b"0\n1\n2\n" and not stops
