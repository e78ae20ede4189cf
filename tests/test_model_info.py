"""The metadata contract: round trips, validation of untrusted content, engine records."""

import json

import pytest

from pix2pix_edge.runtime.errors import ModelMismatch
from pix2pix_edge.runtime.model_info import (METADATA_KEY, ModelInfo, read_engine_record,
                                write_engine_record)


def test_roundtrip_props_and_unknown_keys_kept():
    info = ModelInfo(height=128, width=256, multiple=128, depth=7, direction="BtoA",
                     extra={"future_key": 1})
    props = info.to_props()
    assert list(props) == [METADATA_KEY]
    back = ModelInfo.from_props(props)
    assert back == info and back.value_range == (-1.0, 1.0)
    assert ModelInfo.from_props({}) is None


@pytest.mark.parametrize("change, message", [
    ({"height": 100}, "not a multiple"),
    ({"height": -256}, "height must be"),
    ({"width": "256"}, "width must be"),
    ({"color_order": "YUV"}, "color_order"),
    ({"input_name": "x; rm -rf /"}, "not a valid tensor name"),
    ({"multiple": 48}, "power of 2"),
    ({"format_version": 99}, "newer"),
    ({"value_range": [1, -1]}, "empty"),
])
def test_invalid_metadata_rejected_with_reason(change, message):
    d = {**ModelInfo().to_dict(), **change}   # not `|`: the runtime tests run on Python 3.8 too
    with pytest.raises(ModelMismatch, match=message):
        ModelInfo.from_json(json.dumps(d), source="m.onnx")


def test_not_json():
    with pytest.raises(ModelMismatch, match="m.onnx: .*not valid JSON"):
        ModelInfo.from_props({METADATA_KEY: "{oops"}, source="m.onnx")


def test_engine_record(tmp_path):
    engine = tmp_path / "m.engine"
    assert read_engine_record(engine) is None
    info = ModelInfo(precision="fp16", tensorrt_version="10.3.0", gpu_name="Orin",
                     compute_capability="8.7")
    path = write_engine_record(engine, info)
    assert path.name == "m.engine.json"
    assert read_engine_record(engine) == info


# --------------------------------------------------------------------------- hostile records
# Model files are input: every value read from one is bounded before use (issue 21, item 11).
def _meta(**change) -> str:
    return json.dumps({**ModelInfo().to_dict(), **change})


@pytest.mark.parametrize("text, message", [
    ('{"a": ' + "[" * 100000 + "]" * 100000 + "}", "nested more than"),
    (_meta(ngf=1)[:-1] + ', "big": ' + "9" * 5000 + "}", "integer of 5000 digits"),
    (_meta()[:-1] + ', "x": NaN}', "NaN"),
    (_meta()[:-1].replace('"value_range": [-1.0, 1.0]', '"value_range": [-Infinity, Infinity]')
     + "}", "Infinity"),
    (_meta()[:-1].replace('"value_range": [-1.0, 1.0]', '"value_range": [-1e999, 1e999]')
     + "}", "value_range"),
    (_meta(dataset="x" * (1 << 20)), "characters, more than"),
])
def test_hostile_json_refused_in_one_line(text, message):
    with pytest.raises(ModelMismatch, match=message) as e:
        ModelInfo.from_json(text, source="m.onnx")
    assert str(e.value).startswith("m.onnx: ") and "\n" not in str(e.value)
    assert len(str(e.value)) < 400


@pytest.mark.parametrize("change, message", [
    ({"value_range": [-1e300, 1e300]}, "value_range"),
    ({"value_range": [0, 1e6]}, "value_range"),
    ({"value_range": ["0", "1"]}, "value_range"),
    ({"value_range": [0, 1, 2]}, "value_range"),
    ({"value_range": "01"}, "value_range"),
    ({"format_version": "1"}, "format_version"),
    ({"format_version": 0}, "format_version"),
    ({"dataset": "x" * 5000}, "dataset"),
    ({"source_run": ["run"]}, "source_run"),
    ({"gpu_name": {"name": "Orin"}}, "gpu_name"),
    ({"tensorrt_version": "1" * 200}, "tensorrt_version"),
    ({"float_layers": "Conv a", "precision": "int8"}, "float_layers"),
    ({"future": {"a": [[[[[[[[[[1]]]]]]]]]]}}, "nested more than"),
    ({"future": "x" * 5000}, "future"),
    ({"future": [1.5] * 20000}, "characters, more than"),
])
def test_absurd_values_refused(change, message):
    with pytest.raises(ModelMismatch, match=message):
        ModelInfo.from_json(_meta(**change), source="m.onnx")


def test_unknown_keys_within_bounds_are_kept():
    """Newer exports add keys (issue 19: antialias ...): kept, when they are plain bounded JSON."""
    extra = {"antialias": True, "profile": {"min": [1, 3, 64, 64], "max": [4, 3, 512, 512]},
             "int8": {"calibration": "40 images of facades/val", "calibration_images": 40}}
    info = ModelInfo.from_json(_meta(**extra))
    assert info.extra == extra
    assert ModelInfo.from_json(info.to_json()) == info


@pytest.mark.parametrize("content, message", [
    (b"[" * 100000 + b"]" * 100000, "nested more than"),
    (b'{"gpu_name": "caf\xe9"}', "not UTF-8"),
    (b" " * (1 << 20) + b"{}", "bytes, more than any"),
])
def test_hostile_engine_record_refused(tmp_path, content, message):
    engine = tmp_path / "m.engine"
    (tmp_path / "m.engine.json").write_bytes(content)
    with pytest.raises(ModelMismatch, match=message) as e:
        read_engine_record(engine)
    assert "m.engine.json" in str(e.value) and "\n" not in str(e.value)
