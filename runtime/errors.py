"""Errors a user can cause, each with a one-line message and an exit code scripts can rely on.

Library code raises these; the ``pix2pix`` command prints ``Error: <message>`` on one line and
exits with the code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib

# Exit codes (documented in the README).
EXIT_OK = 0
EXIT_ERROR = 1          # generic failure (I/O, disk full, permission)
EXIT_USAGE = 2          # bad command line: unknown option, out-of-range value (click's code)
EXIT_BAD_INPUT = 3      # missing / corrupt / unusable data, images, video sources
EXIT_MODEL = 4          # model or checkpoint incompatible (architecture, engine for another GPU)
EXIT_UNAVAILABLE = 5    # hardware or library absent (GPU, TensorRT, camera, display, GStreamer)
EXIT_CHECK_FAILED = 6   # a check did not pass (export parity, training diverged)
EXIT_INTERRUPTED = 130  # Ctrl-C


class Pix2PixError(Exception):
    """Base of all user-facing errors."""
    exit_code = EXIT_ERROR


class BadUsage(Pix2PixError):
    """An impossible option value or combination (the same exit code as click's usage errors)."""
    exit_code = EXIT_USAGE


class BadInput(Pix2PixError):
    exit_code = EXIT_BAD_INPUT


class ModelMismatch(Pix2PixError):
    exit_code = EXIT_MODEL


class Unavailable(Pix2PixError):
    exit_code = EXIT_UNAVAILABLE


class CheckFailed(Pix2PixError):
    exit_code = EXIT_CHECK_FAILED


def require(module: str, extra: str, purpose: str):
    """Import ``module`` or fail with the install line that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(
            f"{purpose} needs the Python package '{module.split('.')[0]}' ({e}); "
            f"install it with: pip install 'pix2pix-edge[{extra}]'") from None
