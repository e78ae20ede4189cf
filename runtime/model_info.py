"""The metadata contract between export and runtime.

``pix2pix export`` writes a :class:`ModelInfo` into every model it makes: as one JSON string under
the key ``pix2pix_edge`` in the ONNX file's ``metadata_props``, and as a JSON record beside a
TensorRT engine (``model.engine.json``). The runtime reads it instead of guessing input size,
colour order, value range or layout. Model files without it still load; the user's flags fill in.

Everything read from a model file is validated here (types, ranges, names, sizes), because model
files are input like any other: the text and the record are bounded (:data:`MAX_METADATA_CHARS`,
:data:`MAX_NESTING`, :data:`MAX_TEXT`, integers of at most :data:`MAX_DIGITS` digits, finite
numbers) before anything uses them, so a crafted file is one line (exit 4), never a traceback, a
large allocation or a 50 MB string on the screen. Unknown keys (newer minor versions) are kept
when they are plain JSON within these bounds.
"""

from __future__ import annotations

import dataclasses
import json
import math
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

# Bounds of everything a model file's record may hold (checked before use).
MAX_METADATA_CHARS = 64 * 1024   # the whole record as compact JSON (a real one is < 4 KiB)
MAX_RECORD_BYTES = 4 * MAX_METADATA_CHARS   # the text or file it is read from (indentation)
MAX_NESTING = 8                  # objects / lists within objects / lists
MAX_TEXT = 4096                  # any one string (a path: Linux's PATH_MAX)
MAX_SHORT_TEXT = 128             # a version, a GPU name, a key
MAX_DIGITS = 16                  # any one integer
MAX_VALUE = 65535.0              # |value_range| ends (16-bit images: 0..65535)


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
            info.validate()
        except (TypeError, ValueError) as e:
            raise ModelMismatch(f"{source}: invalid pix2pix-edge metadata: {e}") from None
        info.value_range = tuple(float(v) for v in info.value_range)  # type: ignore[assignment]
        return info

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelInfo":
        if len(text) > MAX_RECORD_BYTES:
            raise ModelMismatch(f"{source}: pix2pix-edge metadata of {len(text):,} characters, "
                                f"more than the {MAX_RECORD_BYTES:,} it may have")
        try:
            d = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
        except RecursionError:
            raise ModelMismatch(f"{source}: pix2pix-edge metadata nested more than "
                                f"{MAX_NESTING} levels deep") from None
        except _Refused as e:
            raise ModelMismatch(f"{source}: invalid pix2pix-edge metadata: {e}") from None
        except ValueError as e:   # json.JSONDecodeError
            raise ModelMismatch(f"{source}: pix2pix-edge metadata is not valid JSON "
                                f"({str(e)[:120]})") from None
        return cls.from_dict(d, source)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> "ModelInfo | None":
        """From ONNX metadata_props (e.g. ORT's ``custom_metadata_map``); None when absent."""
        text = props.get(METADATA_KEY)
        return None if text is None else cls.from_json(text, source)

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise ValueError (one line) unless every field is of its type and within its bounds."""
        def check(cond, msg):
            if not cond:
                raise ValueError(msg)

        def is_int(v, lo, hi):
            return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi

        check(is_int(self.format_version, 1, 1 << 30),
              f"format_version must be a positive integer, got {short_repr(self.format_version)}")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(f"format version {self.format_version} is newer than this "
                             f"pix2pix-edge understands ({FORMAT_VERSION}); upgrade pix2pix-edge")
        for name in ("input_name", "output_name"):
            v = getattr(self, name)
            check(isinstance(v, str) and _NAME.match(v),
                  f"{name} {short_repr(v)} is not a valid tensor name")
        for name, allowed in (("layout", LAYOUTS), ("color_order", COLOR_ORDERS),
                              ("io_dtype", IO_DTYPES), ("precision", PRECISIONS),
                              ("norm_mode", NORM_MODES), ("direction", DIRECTIONS)):
            v = getattr(self, name)
            check(isinstance(v, str) and v in allowed, f"{name} {short_repr(v)} not in {allowed}")
        vr = self.value_range
        check(isinstance(vr, (list, tuple)) and len(vr) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                      and abs(v) <= MAX_VALUE for v in vr),
              f"value_range must be two finite numbers within +-{MAX_VALUE:g}, "
              f"got {short_repr(vr)}")
        check(vr[0] < vr[1], f"value_range {list(vr)} is empty")
        for name in ("height", "width", "multiple"):
            v = getattr(self, name)
            check(is_int(v, 1, MAX_SIDE),
                  f"{name} must be an integer in 1..{MAX_SIDE}, got {short_repr(v)}")
        check(self.multiple & (self.multiple - 1) == 0, f"multiple {self.multiple} is not a power of 2")
        check(self.height % self.multiple == 0 and self.width % self.multiple == 0,
              f"size {self.width}x{self.height} (WxH) is not a multiple of {self.multiple}")
        for name in ("in_channels", "out_channels", "depth", "ngf"):
            v = getattr(self, name)
            check(is_int(v, 1, 4096), f"{name} must be a positive integer, got {short_repr(v)}")
        check(isinstance(self.dynamic, bool), "dynamic must be true or false")
        if self.float_layers is not None:
            check(isinstance(self.float_layers, list)
                  and all(isinstance(v, str) and len(v) <= 512 for v in self.float_layers),
                  "float_layers must be a list of layer names")
            check(self.precision == "int8", "float_layers is only meaningful for precision int8")
        for name in ("source_run", "dataset"):
            v = getattr(self, name)
            check(isinstance(v, str) and len(v) <= MAX_TEXT,
                  f"{name} must be a string of at most {MAX_TEXT} characters, got {short_repr(v)}")
        for name in ("tensorrt_version", "gpu_name", "compute_capability"):
            v = getattr(self, name)
            check(v is None or isinstance(v, str) and len(v) <= MAX_SHORT_TEXT,
                  f"{name} must be a string of at most {MAX_SHORT_TEXT} characters, "
                  f"got {short_repr(v)}")
        check(isinstance(self.extra, dict), "extra must be a dictionary")
        for key, value in self.extra.items():
            _check_plain(value, key, 1)
        size = len(self.to_json())
        check(size <= MAX_METADATA_CHARS, f"{size:,} characters, more than the "
                                          f"{MAX_METADATA_CHARS:,} a record may have")


# --------------------------------------------------------------------------- bounds
class _Refused(ValueError):
    """A JSON value refused while parsing (before it is built)."""


def _bounded_int(text: str) -> int:
    """json's ``parse_int``: no integer of more than :data:`MAX_DIGITS` digits (Python 3.8
    converts a 100k-digit integer in quadratic time; 3.11 raises its own ValueError)."""
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_DIGITS})")
    return int(text)


def _no_constant(name: str):
    """json's ``parse_constant``: NaN, Infinity and -Infinity are not JSON, and no value here
    may be one."""
    raise _Refused(f"{name} is not a number a model record may hold")


def _check_plain(value, name: str, depth: int) -> None:
    """``value`` (of the key ``name``) is plain JSON within the bounds: strings of at most
    :data:`MAX_TEXT` characters, finite numbers, at most :data:`MAX_NESTING` levels."""
    if depth > MAX_NESTING:
        raise ValueError(f"{short_repr(name)}: nested more than {MAX_NESTING} levels deep")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) >= 10 ** MAX_DIGITS:
            raise ValueError(f"{short_repr(name)}: an integer of more than {MAX_DIGITS} digits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{short_repr(name)}: {value} is not a finite number")
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"{short_repr(name)}: a string of {len(value):,} characters "
                             f"(at most {MAX_TEXT})")
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_plain(v, name, depth + 1)
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str) or len(k) > MAX_SHORT_TEXT:
                raise ValueError(f"{short_repr(name)}: a key that is not a short string "
                                 f"({short_repr(k)})")
            _check_plain(v, k, depth + 1)
    else:
        raise ValueError(f"{short_repr(name)}: {type(value).__name__} is not a JSON value")


def short_repr(value, limit: int = 40) -> str:
    """``repr(value)``, short: an error message never quotes a 50 MB value or a deep list (for
    every value read from a model file: here, the generator file and run records)."""
    if isinstance(value, (list, tuple, dict)):
        items = list(value.values()) if isinstance(value, dict) else list(value)
        if len(items) > 4 or any(isinstance(v, (list, tuple, dict)) for v in items):
            return f"a {type(value).__name__} of {len(items):,} items"
    text = repr(value[:limit] if isinstance(value, str) else value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def engine_record_path(engine_path: str | Path) -> Path:
    """Where the metadata record of a TensorRT engine lives: ``model.engine.json``."""
    return Path(str(engine_path) + RECORD_SUFFIX)


def read_engine_record(engine_path: str | Path) -> ModelInfo | None:
    """The record beside an engine, or None when there is none; ModelMismatch (one line) for a
    record that is too large, not UTF-8 text or not a valid record."""
    path = engine_record_path(engine_path)
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        data = f.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise ModelMismatch(f"{path}: more than {MAX_RECORD_BYTES:,} bytes, more than any "
                            "pix2pix-edge engine record has")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelMismatch(f"{path}: not UTF-8 text (byte {e.start}): not a pix2pix-edge "
                            "engine record") from None
    return ModelInfo.from_json(text, source=str(path))


def write_engine_record(engine_path: str | Path, info: ModelInfo) -> Path:
    text = json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n"
    return atomic_write(engine_record_path(engine_path), lambda f: f.write(text.encode("utf-8")))
