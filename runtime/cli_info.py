"""``pix2pix info``: what a model file is, on one screen -- its pix2pix-edge metadata, its
inputs and outputs, and what can run it here (ONNX Runtime providers, or the engine's record
checked against this machine's TensorRT and GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pix2pix_edge.runtime.backends import backend_for
from pix2pix_edge.runtime.errors import BadInput, Pix2PixError, Unavailable
from pix2pix_edge.runtime.files import format_bytes
from pix2pix_edge.runtime.model_info import ModelInfo, engine_record_path, read_engine_record
from pix2pix_edge.runtime.options import check_options, click_options
from pix2pix_edge.runtime.run_options import InfoOptions, plain_model_flags

MAX_KEYS_SHOWN = 20   # other metadata keys listed (a file may hold any number)


def _tensor(name, dtype, shape) -> dict:
    return {"name": str(name)[:128], "dtype": dtype,
            "shape": [d if isinstance(d, int) and d > 0 else (d or "?") for d in shape]}


def describe_onnx(path: Path) -> tuple[dict, Pix2PixError | None]:
    """Read an ONNX file with ONNX Runtime's CPU provider (cheap: no GPU is touched), and check
    it as ``run`` does: ``(description, why run would refuse it or None)``. Bad metadata raises
    at once (nothing trustworthy to show)."""
    from pix2pix_edge.runtime.backends.base import io_dtype_name, one_line, resolve_info, single_io
    from pix2pix_edge.runtime.backends.onnxruntime import (import_onnxruntime, load_error,
                                                           usable_providers)
    from pix2pix_edge.runtime.onnx_file import refuse_external_data_outside
    ort = import_onnxruntime()
    refuse_external_data_outside(path)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise load_error(path, e) from None
    meta = sess.get_modelmeta()
    info = ModelInfo.from_props(meta.custom_metadata_map, source=path.name)
    other = {k: v for k, v in meta.custom_metadata_map.items() if k != "pix2pix_edge"}
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    d = {
        "format": "ONNX",
        "producer": one_line(meta.producer_name, 80) or None,
        "metadata": info.to_dict() if info else None,
        "other_metadata": sorted(one_line(k, 64) for k in other)[:MAX_KEYS_SHOWN] or None,
        "inputs": [_tensor(i.name, io_dtype_name(i.type), i.shape) for i in inputs],
        "outputs": [_tensor(o.name, io_dtype_name(o.type), o.shape) for o in outputs],
        "runs_on": usable_providers(),
        "onnxruntime": ort.__version__,
    }
    problem = None
    try:   # run's checks: one input and output, metadata true to the graph
        i, o = single_io(path.name, inputs, outputs)
        if info is not None:
            resolve_info(path.name, info, None, i.name, i.shape, i.type, o.name, o.shape)
    except Pix2PixError as e:
        problem = e
    return d, problem


def describe_engine(path: Path, device: int = 0) -> tuple[dict, Pix2PixError | None]:
    """The record beside the engine; with TensorRT and a GPU here, also the engine's I/O and
    whether it can run on this machine: ``(description, why run refuses it here or None)``.
    Without TensorRT or a GPU the file cannot be checked: the record vouches for it, and with no
    record nothing does (Unavailable: nothing here can tell what the file is)."""
    record = read_engine_record(path)
    d = {"format": "TensorRT engine" if record else "unknown",
         "record": str(engine_record_path(path)),
         "metadata": record.to_dict() if record else None, "inputs": [], "outputs": []}
    try:
        from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend
        be = TensorRTBackend(path, device=device)
    except Unavailable as e:       # TensorRT, cuda-python or a GPU absent: not checked here
        d["runs_on"], d["problem"] = [], str(e)
        if record is not None:
            return d, None
        d["format"] = f"unknown (not checked: {engine_record_path(path).name} is missing)"
        return d, Unavailable(f"cannot tell what {path.name} is: no record beside it "
                              f"({engine_record_path(path).name}) and {e}")
    except Pix2PixError as e:      # not an engine, or one for another TensorRT / GPU
        d["runs_on"], d["problem"] = [], str(e)
        if record is None:
            d["format"] = "unknown (TensorRT cannot load it)"
        return d, e
    try:
        d["format"] = "TensorRT engine"
        d["inputs"] = [_tensor(be.info.input_name, be.info.io_dtype, be.input_shape)]
        d["outputs"] = [_tensor(be.info.output_name, be.info.io_dtype, be.output_shape)]
        d["runs_on"] = [f"{be.provider} on {be.gpu_name}"]
    finally:
        be.close()
    return d, None


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


def render(path: Path, d: dict, refused: bool = False) -> str:
    from pix2pix_edge.runtime.bench import sha256_prefix
    lines = [f"model        {path.name} ({format_bytes(path.stat().st_size)}, "
             f"sha256 {sha256_prefix(path)})",
             f"format       {d['format']}" + (f" (producer {d['producer']})"
                                              if d.get("producer") else ""),
             f"metadata     {_summary(d.get('metadata'))}"]
    if d.get("other_metadata"):
        lines.append(f"other keys   {', '.join(d['other_metadata'])}")
    for key in ("inputs", "outputs"):
        for t in d.get(key, []):
            lines.append(f"{key[:-1]:<12} {t['name']}  {t['dtype']}  "
                         f"{'x'.join(str(s) for s in t['shape'])}")
    if d["format"] != "ONNX":
        lines.append(f"record       {d['record']}")
    if refused:
        lines.append("runs on      nothing here (the error below)")
    elif d["format"] == "ONNX":
        lines.append(f"runs on      {', '.join(d['runs_on'])} (onnxruntime {d['onnxruntime']})")
    else:
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
    d, problem = describe_engine(path, o.device) if kind == "tensorrt" else describe_onnx(path)
    if problem is not None:
        d["problem"] = str(problem)
    if o.as_json:
        click.echo(json.dumps({"path": str(path), **d}, indent=2))
    else:
        click.echo(render(path, d, refused=problem is not None))
    if problem is not None:    # what run would refuse: shown above, then one line and its code
        raise problem
