"""An ONNX file treated as hostile before anything reads it: tensors whose external data lies
outside the model's folder are refused (exit 4), by ``run``, ``bench``, ``info`` and ``export trt``
alike.

A tensor may keep its weights in another file named by a ``location`` string (ONNX external
data). A crafted model can name ``../../etc/passwd`` or an absolute path, and ONNX Runtime before
1.24 (JetPack's included) and TensorRT's parser read it. The check parses the file with ``onnx``
only when the bytes ``location`` occur in it (no external data otherwise: a model with embedded
weights costs one scan). Without ``onnx`` installed the runtime relies on ONNX Runtime's own check
(1.24 and later refuse such a file; the error is mapped to the same exit code).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from pix2pix_edge.runtime.errors import ModelMismatch

# the words of ONNX Runtime's own refusal (onnxruntime >= 1.24, tensorprotoutils.cc)
ORT_REFUSAL = "External data path"


def external_data_outside(model, folder: Path) -> str | None:
    """Why ``model`` (an ``onnx.ModelProto`` loaded without its external data) reads data from
    outside ``folder``, its own folder, or None. Checked before any data is read, whatever the
    onnx version (older ones follow ``../`` and absolute locations)."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    root = folder.resolve()
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        if Path(location).is_absolute() or root not in (root / location).resolve().parents:
            return (f"tensor {tensor.name[:80]!r} keeps its data in {location[:120]!r}, "
                    "outside the model's folder")
    return None


def may_use_external_data(path: Path) -> bool:
    """False when no tensor of the file can name an external location (the key ``location`` is
    stored as plain bytes in every such entry)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:   # mmap cannot map an empty file
            return False
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b"location") >= 0


def refuse_external_data_outside(path: str | Path) -> None:
    """Raise :class:`ModelMismatch` when a tensor of the ONNX file at ``path`` keeps its data
    outside the file's folder. Unreadable files pass: the loader reports them."""
    path = Path(path)
    if not may_use_external_data(path):
        return
    try:
        import onnx
        model = onnx.load(str(path), load_external_data=False)
    except ImportError:
        return
    except Exception:   # not an ONNX file: the loader says so in its own words
        return
    why = external_data_outside(model, path.parent)
    if why:
        raise ModelMismatch(f"{path.name}: refused: {why}")
