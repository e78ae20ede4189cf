"""runtime.interrupt.StopOnSignal, the stop handling of training and of the frame loop, with real
SIGINT, SIGTERM and SIGHUP sent to this process (Python 3.8 too: no torch)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from pix2pix_edge.runtime.interrupt import (Interrupted, StopOnSignal, exit_code,
                                            install_stop_handlers)

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def send(signum):
    os.kill(os.getpid(), signum)
    time.sleep(0.05)                    # Python runs the handler at the next bytecode


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_first_signal_requests_a_stop_second_interrupts_then_the_handlers_are_restored(signum):
    before = {s: signal.getsignal(s) for s in SIGNALS}
    calls = []
    with StopOnSignal(on_stop=lambda: calls.append(1)) as stop:
        assert not stop.requested
        send(signum)
        assert stop.requested and stop.signum == signum and calls == [1]
        assert stop.exit_code == 128 + signum
        with pytest.raises(Interrupted) as e:
            send(signal.SIGINT)
        assert isinstance(e.value, KeyboardInterrupt) and e.value.exit_code == 130
    assert {s: signal.getsignal(s) for s in SIGNALS} == before


def test_exit_codes_are_128_plus_the_signal():
    assert [exit_code(s) for s in SIGNALS] == [130, 143, 129]
    assert Interrupted(signal.SIGTERM).exit_code == 143 and str(Interrupted(signal.SIGHUP)) == "SIGHUP"


def test_outside_a_loop_sigterm_and_sighup_raise_like_ctrl_c():
    """What the `pix2pix` command installs at start: finally blocks run, exit 143 / 129."""
    before = {s: signal.getsignal(s) for s in SIGNALS}
    try:
        install_stop_handlers()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with pytest.raises(Interrupted) as e:
                send(signum)
            assert e.value.signum == signum
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def test_off_the_main_thread_it_installs_nothing():
    seen = []

    def body():
        with StopOnSignal() as c:
            seen.append((c.previous, signal.getsignal(signal.SIGTERM)))

    before = signal.getsignal(signal.SIGTERM)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [({}, before)]
