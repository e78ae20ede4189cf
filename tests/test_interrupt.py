"""runtime.interrupt.StopOnCtrlC, the Ctrl-C handling of training and of the frame loop, with
real SIGINTs sent to this process."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from pix2pix_edge.runtime.interrupt import StopOnCtrlC


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)                    # Python runs the handler at the next bytecode


def test_first_ctrl_c_requests_a_stop_second_interrupts_then_the_handler_is_restored():
    before = signal.getsignal(signal.SIGINT)
    calls = []
    with StopOnCtrlC(on_stop=lambda: calls.append(1)) as c:
        assert not c.requested
        ctrl_c()
        assert c.requested and calls == [1]
        with pytest.raises(KeyboardInterrupt):
            ctrl_c()
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_it_installs_nothing():
    seen = []

    def body():
        with StopOnCtrlC() as c:
            seen.append((c.previous, signal.getsignal(signal.SIGINT)))

    before = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [(None, before)]
