"""A stand-in for a slow accelerator: a backend whose infer() sleeps (uses no CPU), so timings
that depend on the model's speed stay meaningful on a loaded, shared test machine."""

from __future__ import annotations

import time

import numpy as np

from pix2pix_edge.runtime.model_info import ModelInfo


class SleepyBackend:
    """Takes ``ms`` per frame without using the CPU (a GPU, a slow accelerator)."""

    name, provider = "sleepy", "test"

    def __init__(self, ms: float, size: int = 64):
        self.ms = ms
        self.info = ModelInfo(height=size, width=size, multiple=32)

    def infer(self, x):
        time.sleep(self.ms / 1000)
        return np.zeros_like(x)

    def close(self):
        pass
