"""docs/python-api.md's runtime snippets run as written (with the tiny model and a short video in
place of model.onnx and video.mp4) and print text, not Python reprs."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import cv2
import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def runtime_snippets() -> list[str]:
    """The ```python blocks of the sections whose title starts with 'Runtime'."""
    text = DOC.read_text(encoding="utf-8")
    blocks = []
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        if section.startswith("Runtime"):
            blocks += re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return blocks


def test_runtime_snippets_run_and_print_text(tiny_onnx, tmp_path, monkeypatch):
    snippets = runtime_snippets()
    assert len(snippets) == 2
    w = cv2.VideoWriter(str(tmp_path / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 24, (96, 64))
    for i in range(12):
        w.write(np.full((64, 96, 3), i * 20, np.uint8))
    w.release()
    os.symlink(tiny_onnx, tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in snippets:
            exec(compile(code, str(DOC), "exec"), {})
    printed = out.getvalue()
    assert "frames: 12 in, 12 out, 0 dropped" in printed
    assert "[" not in printed.splitlines()[-2] and "'" not in printed, printed
    assert (tmp_path / "out.mp4").is_file()
