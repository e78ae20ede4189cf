"""The committed tiny model (tests/data/tiny.onnx, used where torch is absent) is exactly what
the recipe in tests/tiny_model.py exports today."""

from __future__ import annotations

import pytest

from tests.tiny_model import COMMITTED, export_tiny_onnx


def test_committed_tiny_onnx_is_up_to_date(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    fresh = export_tiny_onnx(tmp_path / "tiny.onnx").read_bytes()
    assert COMMITTED.is_file(), f"{COMMITTED} is missing: run `make tiny-onnx`"
    assert COMMITTED.read_bytes() == fresh, (
        f"{COMMITTED} differs from a fresh export of tests/tiny_model.py (the recipe, torch or "
        f"the exporter changed): run `make tiny-onnx` and commit the file")
    assert len(fresh) < 300_000
