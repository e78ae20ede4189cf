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
