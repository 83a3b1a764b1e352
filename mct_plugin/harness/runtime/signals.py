"""Signals: SIGINT/SIGTERM as a flag checked between units of work, or as KeyboardInterrupt."""

from __future__ import annotations

import contextlib
import signal
from typing import Callable, Iterator


@contextlib.contextmanager
def stop_requests() -> Iterator[Callable[[], int | None]]:
    """Turn SIGINT/SIGTERM into a flag (the signal number) checked between iterations; a second
    signal stops at once (KeyboardInterrupt). Outside the main thread signals are left alone."""
    received: list[int] = []

    def handler(signum, frame):
        if received:  # a second signal: stop now
            raise KeyboardInterrupt
        received.append(signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not in the main thread: no signal handling
        previous = {}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM unwinds like Ctrl-C, so ``finally`` blocks and the atomic
    writers clean up their temporary files (``distill`` installs :func:`stop_requests` inside)."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
