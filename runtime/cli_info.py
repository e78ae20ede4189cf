"""``pix2pix info``: what a model file is, on one screen -- its pix2pix-edge metadata, its
inputs and outputs, and what can run it here (ONNX Runtime providers, or the engine's record
checked against this machine's TensorRT and GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pix2pix_edge.runtime.backends import backend_for
from pix2pix_edge.runtime.errors import BadInput, Pix2PixError
from pix2pix_edge.runtime.files import format_bytes
from pix2pix_edge.runtime.model_info import ModelInfo, engine_record_path, read_engine_record
from pix2pix_edge.runtime.options import check_options, click_options
from pix2pix_edge.runtime.run_options import InfoOptions, plain_model_flags


def _tensor(name, dtype, shape) -> dict:
    return {"name": name, "dtype": dtype,
            "shape": [d if isinstance(d, int) and d > 0 else (d or "?") for d in shape]}


def describe_onnx(path: Path) -> dict:
    """Read an ONNX file with ONNX Runtime's CPU provider (cheap: no GPU is touched)."""
    from pix2pix_edge.runtime.backends.base import io_dtype_name, one_line
    from pix2pix_edge.runtime.backends.onnxruntime import import_onnxruntime, usable_providers
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise BadInput(f"{path.name}: not a loadable ONNX model ({one_line(e)})") from None
    meta = sess.get_modelmeta()
    info = ModelInfo.from_props(meta.custom_metadata_map, source=path.name)
    other = {k: v for k, v in meta.custom_metadata_map.items() if k != "pix2pix_edge"}
    return {
        "format": "ONNX",
        "producer": meta.producer_name or None,
        "metadata": info.to_dict() if info else None,
        "other_metadata": other or None,
        "inputs": [_tensor(i.name, io_dtype_name(i.type), i.shape)
                   for i in sess.get_inputs()],
        "outputs": [_tensor(o.name, io_dtype_name(o.type), o.shape)
                    for o in sess.get_outputs()],
        "runs_on": usable_providers(),
        "onnxruntime": ort.__version__,
    }


def describe_engine(path: Path, device: int = 0) -> dict:
    """The record beside the engine; with TensorRT and a GPU here, also the engine's I/O and
    whether it can run on this machine."""
    record = read_engine_record(path)
    d = {"format": "TensorRT engine", "record": str(engine_record_path(path)),
         "metadata": record.to_dict() if record else None, "inputs": [], "outputs": []}
    try:
        from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend
        be = TensorRTBackend(path, device=device)
    except Pix2PixError as e:
        d["runs_on"] = []
        d["problem"] = str(e)
        return d
    try:
        d["inputs"] = [_tensor(be.info.input_name, be.info.io_dtype, be.input_shape)]
        d["outputs"] = [_tensor(be.info.output_name, be.info.io_dtype, be.output_shape)]
        d["runs_on"] = [f"{be.provider} on {be.gpu_name}"]
    finally:
        be.close()
    return d


def _summary(m: dict) -> str:
    if not m:
        return f"none (plain model: pass {plain_model_flags()} to pix2pix run)"
    lo, hi = m["value_range"]
    size = f"{m['width']}x{m['height']}" + (f" (dynamic, multiples of {m['multiple']})"
                                            if m.get("dynamic") else "")
    parts = [f"{size} {m['color_order']} [{lo:g}, {hi:g}] {m['layout']}",
             f"io {m['io_dtype']}, precision {m['precision']}, norm {m['norm_mode']}",
             f"unet depth {m['depth']} ngf {m['ngf']}, {m['direction']}"]
    if m.get("float_layers"):
        fl = m["float_layers"]
        parts.append(f"int8: {len(fl)} layer{'s' * (len(fl) != 1)} kept in float: "
                     + ", ".join(fl[:4]) + (f", ... ({len(fl) - 4} more)" if len(fl) > 4 else ""))
    if m.get("source_run") or m.get("dataset"):
        parts.append(f"from run {m.get('source_run') or '?'}"
                     + (f" on {m['dataset']}" if m.get("dataset") else ""))
    if m.get("tensorrt_version"):
        parts.append(f"built with TensorRT {m['tensorrt_version']} for {m.get('gpu_name')} "
                     f"(sm {m.get('compute_capability')})")
    return "\n             ".join(parts)


def render(path: Path, d: dict) -> str:
    from pix2pix_edge.runtime.bench import sha256_prefix
    lines = [f"model        {path.name} ({format_bytes(path.stat().st_size)}, "
             f"sha256 {sha256_prefix(path)})",
             f"format       {d['format']}" + (f" (producer {d['producer']})"
                                              if d.get("producer") else ""),
             f"metadata     {_summary(d.get('metadata'))}"]
    if d.get("other_metadata"):
        lines.append(f"other keys   {', '.join(sorted(d['other_metadata']))}")
    for key in ("inputs", "outputs"):
        for t in d.get(key, []):
            lines.append(f"{key[:-1]:<12} {t['name']}  {t['dtype']}  "
                         f"{'x'.join(str(s) for s in t['shape'])}")
    if d["format"] == "ONNX":
        lines.append(f"runs on      {', '.join(d['runs_on'])} (onnxruntime {d['onnxruntime']})")
    else:
        lines.append(f"record       {d['record']}")
        lines.append("runs on      " + (", ".join(d["runs_on"]) or f"not here: {d.get('problem')}"))
    return "\n".join(lines)


@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
@click_options(InfoOptions)
def info(model, **options):
    """Show MODEL's pix2pix-edge metadata, inputs/outputs and what can run it here.

    \b
    Examples:
      pix2pix info model.onnx
      pix2pix info model.engine      (reads model.engine.json; checks TensorRT and GPU)
    """
    o = InfoOptions(**options)
    check_options(o)
    path = Path(model)
    if not path.is_file():
        raise BadInput(f"model file not found: {path}")
    kind = backend_for(path, o.backend)
    d = describe_engine(path, o.device) if kind == "tensorrt" else describe_onnx(path)
    if o.as_json:
        click.echo(json.dumps({"path": str(path), **d}, indent=2))
    else:
        click.echo(render(path, d))
