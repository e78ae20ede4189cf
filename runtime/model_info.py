"""The metadata contract between export and runtime.

``pix2pix export`` writes a :class:`ModelInfo` into every model it makes: as one JSON string under
the key ``pix2pix_edge`` in the ONNX file's ``metadata_props``, and as a JSON record beside a
TensorRT engine (``model.engine.json``). The runtime reads it instead of guessing input size,
colour order, value range or layout. Model files without it still load; the user's flags fill in.

Everything read from a model file is validated here (types, ranges, names), because model files
are input like any other.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pix2pix_edge.runtime.contract import DIRECTIONS, NORM_MODES, VALUE_RANGE
from pix2pix_edge.runtime.errors import ModelMismatch
from pix2pix_edge.runtime.files import atomic_write

FORMAT_VERSION = 1
METADATA_KEY = "pix2pix_edge"   # ONNX metadata_props key
RECORD_SUFFIX = ".json"         # engine record: <engine path> + this

LAYOUTS = ("NCHW",)
COLOR_ORDERS = ("RGB", "BGR")
IO_DTYPES = ("float32", "float16")
PRECISIONS = ("fp32", "fp16", "int8")
MAX_SIDE = 8192
_NAME = re.compile(r"^[A-Za-z0-9_.:/\-]{1,128}$")


@dataclass
class ModelInfo:
    """What a runtime must know to feed a generator and read its output."""

    input_name: str = "input"
    output_name: str = "output"
    layout: str = "NCHW"
    color_order: str = "RGB"
    value_range: tuple[float, float] = VALUE_RANGE
    height: int = 256            # model input size (for dynamic models: the default / opt size)
    width: int = 256
    dynamic: bool = False        # batch and spatial axes dynamic
    multiple: int = 256          # spatial sides must be multiples of this (2 ** depth)
    in_channels: int = 3
    out_channels: int = 3
    io_dtype: str = "float32"
    precision: str = "fp32"      # compute precision of the weights / engine
    # INT8 models: the layers kept in float ("OpType node-name"), e.g. the output layer.
    float_layers: list[str] | None = None
    norm_mode: str = "running"   # what normalisation does at inference
    depth: int = 8
    ngf: int = 64
    direction: str = "AtoB"
    source_run: str = ""
    dataset: str = ""
    format_version: int = FORMAT_VERSION
    # Filled in for TensorRT engines only.
    tensorrt_version: str | None = None
    gpu_name: str | None = None
    compute_capability: str | None = None
    # Unknown keys from newer minor versions are kept, not dropped.
    extra: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value_range"] = list(self.value_range)
        extra = d.pop("extra")
        d.update(extra)
        return {k: v for k, v in d.items() if v is not None}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_props(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` entries that carry this record."""
        return {METADATA_KEY: self.to_json()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "model") -> "ModelInfo":
        """Validate and build; raise :class:`ModelMismatch` naming ``source`` on bad content."""
        if not isinstance(d, dict):
            raise ModelMismatch(f"{source}: pix2pix-edge metadata is not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names}
        try:
            info = cls(**known, extra=extra)
            info.value_range = tuple(float(v) for v in info.value_range)  # type: ignore[assignment]
            info.validate()
        except (TypeError, ValueError) as e:
            raise ModelMismatch(f"{source}: invalid pix2pix-edge metadata: {e}") from None
        return info

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelInfo":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelMismatch(f"{source}: pix2pix-edge metadata is not valid JSON ({e})") from None
        return cls.from_dict(d, source)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> "ModelInfo | None":
        """From ONNX metadata_props (e.g. ORT's ``custom_metadata_map``); None when absent."""
        text = props.get(METADATA_KEY)
        return None if text is None else cls.from_json(text, source)

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        def check(cond, msg):
            if not cond:
                raise ValueError(msg)

        check(isinstance(self.format_version, int), "format_version must be an integer")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(f"format version {self.format_version} is newer than this "
                             f"pix2pix-edge understands ({FORMAT_VERSION}); upgrade pix2pix-edge")
        for name in ("input_name", "output_name"):
            v = getattr(self, name)
            check(isinstance(v, str) and _NAME.match(v), f"{name} {v!r} is not a valid tensor name")
        check(self.layout in LAYOUTS, f"layout {self.layout!r} not in {LAYOUTS}")
        check(self.color_order in COLOR_ORDERS, f"color_order {self.color_order!r} not in {COLOR_ORDERS}")
        check(self.io_dtype in IO_DTYPES, f"io_dtype {self.io_dtype!r} not in {IO_DTYPES}")
        check(self.precision in PRECISIONS, f"precision {self.precision!r} not in {PRECISIONS}")
        check(self.norm_mode in NORM_MODES, f"norm_mode {self.norm_mode!r} not in {NORM_MODES}")
        check(self.direction in DIRECTIONS, f"direction {self.direction!r} not in {DIRECTIONS}")
        lo, hi = self.value_range
        check(lo < hi, f"value_range {self.value_range} is empty")
        for name in ("height", "width", "multiple"):
            v = getattr(self, name)
            check(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE,
                  f"{name} must be an integer in 1..{MAX_SIDE}, got {v!r}")
        check(self.multiple & (self.multiple - 1) == 0, f"multiple {self.multiple} is not a power of 2")
        check(self.height % self.multiple == 0 and self.width % self.multiple == 0,
              f"size {self.width}x{self.height} (WxH) is not a multiple of {self.multiple}")
        for name in ("in_channels", "out_channels", "depth", "ngf"):
            v = getattr(self, name)
            check(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096,
                  f"{name} must be a positive integer, got {v!r}")
        check(isinstance(self.dynamic, bool), "dynamic must be true or false")
        if self.float_layers is not None:
            check(isinstance(self.float_layers, list)
                  and all(isinstance(v, str) and len(v) <= 512 for v in self.float_layers),
                  "float_layers must be a list of layer names")
            check(self.precision == "int8", "float_layers is only meaningful for precision int8")
        for name in ("source_run", "dataset"):
            check(isinstance(getattr(self, name), str), f"{name} must be a string")


def engine_record_path(engine_path: str | Path) -> Path:
    """Where the metadata record of a TensorRT engine lives: ``model.engine.json``."""
    return Path(str(engine_path) + RECORD_SUFFIX)


def read_engine_record(engine_path: str | Path) -> ModelInfo | None:
    """The record beside an engine, or None when there is none."""
    path = engine_record_path(engine_path)
    if not path.is_file():
        return None
    return ModelInfo.from_json(path.read_text(encoding="utf-8"), source=str(path))


def write_engine_record(engine_path: str | Path, info: ModelInfo) -> Path:
    text = json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n"
    return atomic_write(engine_record_path(engine_path), lambda f: f.write(text.encode("utf-8")))
