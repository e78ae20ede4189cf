"""Ctrl-C as a request to stop, shared by the training loop and the video frame loop."""

from __future__ import annotations

import signal
import threading
from typing import Callable


class StopOnCtrlC:
    """While entered (in the main thread): the first SIGINT sets ``requested`` and calls
    ``on_stop``, so the caller can finish its current step and save or flush; a second SIGINT
    raises KeyboardInterrupt at once. The previous handler is restored on exit.

    The handler only sets flags: a KeyboardInterrupt raised while the main thread happens to
    run a finaliser is swallowed by Python, a flag cannot be lost. Off the main thread (where
    Python delivers no signals) it does nothing."""

    def __init__(self, on_stop: Callable[[], None] | None = None):
        self.requested = False
        self.on_stop = on_stop
        self.previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.on_stop is not None:
            self.on_stop()

    def __enter__(self):
        if hasattr(signal, "SIGINT") and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
