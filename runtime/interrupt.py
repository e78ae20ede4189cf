"""Ctrl-C, SIGTERM and SIGHUP as a request to stop, shared by the training loop and the video
frame loop.

A service manager stopping the process (systemd, ``docker stop``: SIGTERM), a closed SSH session
(SIGHUP) and Ctrl-C (SIGINT) all end a run the same way: the current frame or iteration is
finished, files are closed properly (a video gets its index), training saves a checkpoint, and the
process exits with 128 + the signal's number: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP), as a
shell reports a process those signals killed.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

# The signals that ask for a stop, where the platform has them (Windows has no SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def exit_code(signum: int) -> int:
    """The exit status after a stop asked by ``signum``: 128 + its number (130 for Ctrl-C)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """A stop asked by signal ``signum`` (a KeyboardInterrupt, so code that handles Ctrl-C
    handles it too); ``exit_code`` is 128 + ``signum``."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal_name(signum))
        self.signum = int(signum)
        self.exit_code = exit_code(signum)


def raise_interrupted(signum, frame):
    """A signal handler: raise :class:`Interrupted` in the main thread (as Python's own
    SIGINT handler raises KeyboardInterrupt)."""
    raise Interrupted(signum)


def install_stop_handlers() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Interrupted` like Ctrl-C, so that ``finally``
    blocks run and the exit code says which signal it was (the ``pix2pix`` command does this
    at start; without it they kill the process on the spot)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        if signum != signal.SIGINT and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, raise_interrupted)


class StopOnSignal:
    """While entered (in the main thread): the first SIGINT, SIGTERM or SIGHUP sets
    ``requested`` and ``signum`` and calls ``on_stop``, so the caller can finish its current
    step and save or flush; a second one raises :class:`Interrupted` at once. The previous
    handlers are restored on exit.

    The handler only sets flags: a KeyboardInterrupt raised while the main thread happens to
    run a finaliser is swallowed by Python, a flag cannot be lost. Off the main thread (where
    Python delivers no signals) it does nothing."""

    def __init__(self, on_stop: Callable[[], None] | None = None):
        self.requested = False
        self.signum: int | None = None
        self.on_stop = on_stop
        self.previous: dict = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise Interrupted(signum)
        self.requested = True
        self.signum = int(signum)
        if self.on_stop is not None:
            self.on_stop()

    def interrupted(self) -> Interrupted:
        """The exception that reports this stop (Ctrl-C when no signal was recorded)."""
        return Interrupted(self.signum or signal.SIGINT)

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum or signal.SIGINT)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self.previous = {}
