"""Helpers for tests that check video files on disk."""

from __future__ import annotations

import cv2


def count_frames(path) -> int:
    """Frames a real decode of ``path`` yields (not the container's claimed count)."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n
