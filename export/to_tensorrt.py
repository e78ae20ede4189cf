"""Build a TensorRT engine from a pix2pix-edge ONNX file, for TensorRT 8.5/8.6, 10.x and 11.x.

Everything that does not need a GPU is a pure function, unit-tested on CPU: version parsing and
branching (:func:`build_plan`), optimisation profiles (:func:`compute_profile`), ONNX inspection
(:func:`inspect_onnx`) and the engine record (:func:`engine_info`). :func:`build_engine` only
wires them to the TensorRT API.

Version branching (REFERENCE.md, "TensorRT across versions"; docs.nvidia.com "Migrating from
TensorRT 10.x to 11.x"):

* **8.x** (JetPack 5): ``create_network(1 << EXPLICIT_BATCH)``, FP32 ONNX, ``BuilderFlag.FP16``
  lets the builder choose FP16 kernels (weak typing). Normalisation and reduction layers are
  pinned to FP32 (layer precision + output type, ``PREFER_PRECISION_CONSTRAINTS``): InstanceNorm
  in FP16 has known accuracy bugs (REFERENCE.md).
* **10.x** (JetPack 6/7, desktop) and **11.x** (desktop): ``1 << STRONGLY_TYPED``; precision
  comes from the graph, so an FP16 engine is built from the FP16 ONNX (export/fp16.py, FP32
  islands for InstanceNormalization). An FP32 ONNX given for an FP16 build is converted on the
  fly. ``BuilderFlag.FP16`` is never touched (removed in 11; meaningless when strongly typed).
  In 11 strong typing is always on and ``STRONGLY_TYPED`` is kept only for compatibility: we
  pass it when the enum still has it.

Engines are specific to the TensorRT version and GPU: the record written beside the engine
(``model.engine.json``, runtime.model_info) carries both, and the runtime refuses a mismatch.

ONNX files without pix2pix-edge metadata are refused (exit 4): the engine record the runtime
checks is built from that metadata. A reference-code checkpoint can be exported with metadata by
``pix2pix export onnx latest_net_G.pth`` first.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Tuple

from pix2pix_edge.runtime.backends.nvidia import (cuda_call, gpu_properties, import_cudart,
                                                 import_tensorrt, init_plugins, parse_version)
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Pix2PixError, Unavailable
from pix2pix_edge.runtime.files import (atomic_write, check_writable, refuse_same_files,
                                        remove_stale_temps, temp_prefix)
from pix2pix_edge.runtime.model_info import (MAX_SIDE, ModelInfo, engine_record_path,
                                             write_engine_record)
from pix2pix_edge.runtime.onnx_file import external_data_outside
from pix2pix_edge.runtime.size import Size, parse_size

MIN_VERSION = (8, 5)
DEFAULT_WORKSPACE_GIB = 2.0
Shape = Tuple[int, int, int, int]   # typing.Tuple: `pix2pix export trt` runs on Python 3.8 (JetPack 5)


# --------------------------------------------------------------------------- versions and flags
# TensorRT / cuda-python imports, GPU properties and version parsing: runtime.backends.nvidia.
@dataclass(frozen=True)
class BuildPlan:
    """What to do for one TensorRT version and one requested precision."""

    network_flags: tuple[str, ...]   # NetworkDefinitionCreationFlag names
    builder_flags: tuple[str, ...]   # BuilderFlag names
    strongly_typed: bool
    convert_to_fp16: bool            # the given FP32 ONNX must become FP16 before parsing
    precision: str                   # of the engine: fp16 | fp32 | int8
    pin_norms_fp32: bool = False     # weak typing: force normalisation layers to FP32
    note: str = ""
    symmetric_int8: bool = False     # INT8 Q/DQ ONNX: make UINT8 activation Q/DQ symmetric INT8
    parser_flags: tuple[str, ...] = ()   # OnnxParserFlag names


INT8_MIN_CAPABILITY = (6, 1)         # DP4A; older GPUs (Jetson Nano / TX1 sm 5.3) have no INT8


def build_plan(version: tuple[int, ...], onnx_precision: str, fp32: bool = False,
               capability: str | None = None) -> BuildPlan:
    """Flags and ONNX preparation for TensorRT ``version`` given the ONNX file's precision
    (and, for INT8, the GPU's compute capability "major.minor" when known).

    INT8 ONNX (Q/DQ nodes, export/int8.py) is explicit quantization: the INT8 layers are where
    the graph says. Its UINT8 activation quantizers (what ONNX Runtime's CPU kernels want) are
    rewritten to symmetric INT8 first (TensorRT takes zero point 0 only). 8.x: INT8 + FP16
    builder flags (the float layers may run in FP16, norms pinned to FP32); >= 10: strongly
    typed, the float layers run in the graph's FP32."""
    if tuple(version[:2]) < MIN_VERSION:
        raise Unavailable(f"TensorRT {'.'.join(map(str, version))} is too old: pix2pix-edge needs "
                          f"{'.'.join(map(str, MIN_VERSION))} or newer (JetPack 5.1+)")
    # 8.6 can parse InstanceNormalization into a native layer (10 made it the default); 8.5
    # has no such flag and uses the InstanceNormalization_TRT plugin (init_plugins registers it).
    native = ("NATIVE_INSTANCENORM",) if (8, 6) <= tuple(version[:2]) < (10, 0) else ()
    if onnx_precision == "int8":
        if fp32:
            raise BadInput("--fp32 needs the FP32 ONNX (this one is INT8); export without "
                           "--int8 and build from that")
        if capability is not None:
            cap = tuple(int(p) for p in str(capability).split(".")[:2])
            if cap < INT8_MIN_CAPABILITY:
                raise Unavailable(f"this GPU (sm {capability}) has no INT8 support in TensorRT "
                                  f"(needs sm {'.'.join(map(str, INT8_MIN_CAPABILITY))}+): "
                                  "build from the FP32 or FP16 ONNX instead")
        if version[0] < 10:
            return BuildPlan(network_flags=("EXPLICIT_BATCH",),
                             builder_flags=("INT8", "FP16", "PREFER_PRECISION_CONSTRAINTS"),
                             strongly_typed=False, convert_to_fp16=False, precision="int8",
                             pin_norms_fp32=True, symmetric_int8=True, parser_flags=native,
                             note="INT8 Q/DQ graph: explicit quantization; float layers FP16")
        return BuildPlan(network_flags=("STRONGLY_TYPED",), builder_flags=(), strongly_typed=True,
                         convert_to_fp16=False, precision="int8", symmetric_int8=True,
                         note="INT8 Q/DQ graph, strongly typed: float layers stay FP32")
    precision = "fp32" if fp32 else "fp16"
    if fp32 and onnx_precision == "fp16":
        raise BadInput("--fp32 needs the FP32 ONNX (this one has FP16 weights); "
                       "export without --fp16 and build from that")
    if version[0] < 10:  # weak typing: precision is a builder choice
        note = ""
        if onnx_precision == "fp16":
            note = ("TensorRT 8.x: building from an FP16 ONNX; the FP32 ONNX with "
                    "BuilderFlag.FP16 is the usual route on this version")
        return BuildPlan(network_flags=("EXPLICIT_BATCH",),
                         builder_flags=() if fp32 else ("FP16", "PREFER_PRECISION_CONSTRAINTS"),
                         strongly_typed=False, convert_to_fp16=False, precision=precision,
                         pin_norms_fp32=not fp32, note=note, parser_flags=native)
    convert = not fp32 and onnx_precision == "fp32"
    note = "converting the FP32 ONNX to FP16 (FP32 norms) for a strongly typed build" if convert else ""
    return BuildPlan(network_flags=("STRONGLY_TYPED",), builder_flags=(), strongly_typed=True,
                     convert_to_fp16=convert, precision=precision, note=note)


def network_flag_bits(trt, names: tuple[str, ...]) -> int:
    """``create_network`` flags as bits; names missing from this TensorRT are skipped (11 keeps
    STRONGLY_TYPED only for compatibility, and may drop it)."""
    bits = 0
    for name in names:
        flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if flag is not None:
            bits |= 1 << int(flag)
    return bits


# --------------------------------------------------------------------------- shapes
def parse_batch(text: str | None) -> tuple[int, int, int]:
    """``--batch``: ``"4"`` -> (1, 4, 4) (min 1, opt and max 4) or ``"1,2,4"`` (min, opt, max)."""
    if not text:
        return (1, 1, 1)
    try:
        values = [int(p) for p in str(text).split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values = [1, values[0], values[0]]
    if len(values) != 3 or min(values) < 1:
        raise BadInput(f"--batch {text!r}: expected B or MIN,OPT,MAX (positive integers), "
                       f"e.g. 4 or 1,2,4")
    return tuple(values)  # type: ignore[return-value]


def compute_profile(info: ModelInfo, dynamic: bool, min_size: str | None = None,
                    opt_size: str | None = None, max_size: str | None = None,
                    batch: str | None = None) -> dict[str, Shape] | None:
    """The optimisation profile (min / opt / max NCHW input shapes) for a dynamic model, else None.

    Sizes are WxH (width x height) or N, as everywhere in pix2pix-edge (runtime.size); ``batch``
    is B or MIN,OPT,MAX. Defaults: opt = the export size (metadata), min = one multiple square,
    max = twice the export size; batch 1. Every side must be a multiple of ``2 ** depth`` and
    min <= opt <= max in every dimension."""
    given = [s for s in (min_size, opt_size, max_size, batch) if s]
    if not dynamic:
        if given:
            raise BadInput(f"this model is static ({info.width}x{info.height}); --min/--opt/--max/"
                           "--batch apply to dynamic exports (pix2pix export onnx --dynamic)")
        return None
    c, m = info.in_channels, info.multiple
    b_lo, b_opt, b_hi = parse_batch(batch)
    opt_wh = parse_size(opt_size, "--opt") or Size(info.width, info.height)
    opt = (b_opt, c, opt_wh.height, opt_wh.width)
    lo_wh = parse_size(min_size, "--min")
    lo = (b_lo, c, lo_wh.height, lo_wh.width) if lo_wh else (b_lo, c, min(m, opt[2]), min(m, opt[3]))
    hi_wh = parse_size(max_size, "--max")
    hi = (b_hi, c, hi_wh.height, hi_wh.width) if hi_wh else (
        b_hi, c, max(opt[2], min(2 * opt[2], MAX_SIDE // m * m)),
        max(opt[3], min(2 * opt[3], MAX_SIDE // m * m)))
    profile = {"min": lo, "opt": opt, "max": hi}
    for name, shape in profile.items():
        if shape[2] % m or shape[3] % m:
            raise BadInput(f"--{name} {shape[3]}x{shape[2]} is not a multiple of {m} "
                           f"(2**depth, depth {info.depth})")
        if shape[2] > MAX_SIDE or shape[3] > MAX_SIDE:
            raise BadInput(f"--{name} {shape[3]}x{shape[2]} exceeds {MAX_SIDE} pixels")
    if not all(a <= b <= d for a, b, d in zip(lo, opt, hi)):
        raise BadInput(f"profile must satisfy min <= opt <= max in every dimension: "
                       f"min {_fmt(lo)}, opt {_fmt(opt)}, max {_fmt(hi)} (batch x WxH)")
    return profile


def _fmt(shape) -> str:
    """An NCHW profile shape as users give it: batch, then WxH."""
    return f"{shape[0]} x {shape[3]}x{shape[2]}"


# --------------------------------------------------------------------------- the ONNX input
@dataclass
class OnnxFacts:
    info: ModelInfo
    precision: str      # fp16 when the weights are FP16
    io_dtype: str       # dtype of the graph input
    dynamic: bool       # any non-fixed input dimension
    pad_modes: tuple = ()   # the modes of the graph's Pad nodes (train --antialias: reflect)


# What the ONNX parser turns an ONNX Pad into, and since which TensorRT: onnx-tensorrt's Pad
# importer builds an ISliceLayer whose sample mode fills the border (FILL for constant 0,
# REFLECT, CLAMP for edge) since 8.2 ("Pad: ND padding, edge and reflect modes"); "wrap" since
# 10.0 (docs/Changelog.md of onnx/onnx-tensorrt). Grouped Conv (the --antialias low-pass
# filters: depthwise, constant [1,3,3,1]^2 weights) is an IConvolutionLayer with num_groups =
# channels; the 8.x parser wants its weights as an initializer (or a DequantizeLinear of one),
# which is what export writes.
PAD_MODE_SINCE = {"constant": (8, 2), "reflect": (8, 2), "edge": (8, 2), "wrap": (10, 0)}


def check_pad_modes(facts: OnnxFacts, version: tuple) -> None:
    """ModelMismatch when this TensorRT's ONNX parser cannot import a Pad mode of the graph."""
    for mode in facts.pad_modes:
        since = PAD_MODE_SINCE.get(mode)
        if since is None or tuple(version[:2]) < since:
            need = "no TensorRT" if since is None else "TensorRT " + ".".join(map(str, since)) + "+"
            raise ModelMismatch(f"this ONNX file pads with mode {mode!r}, which {need} parses "
                                f"(this is TensorRT {'.'.join(map(str, version[:3]))})")


def inspect_onnx(path: str | Path) -> OnnxFacts:
    """Read and validate what the build needs from an ONNX file (no TensorRT, no GPU)."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx.external_data_helper import load_external_data_for_model

    path = Path(path)
    if not path.is_file():
        raise BadInput(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
        outside = external_data_outside(model, path.parent)
        if outside is None:
            load_external_data_for_model(model, str(path.parent))
    except (DecodeError, ValueError, OSError) as e:
        raise BadInput(f"{path} is not a readable ONNX file ({type(e).__name__})") from None
    if outside is not None:
        raise ModelMismatch(f"{path}: refused: {outside}")
    if not model.graph.node:
        raise BadInput(f"{path} is not a readable ONNX file (empty graph)")
    props = {p.key: p.value for p in model.metadata_props}
    info = ModelInfo.from_props(props, source=str(path))
    if info is None:
        raise ModelMismatch(f"{path} is not a pix2pix-edge generator (no 'pix2pix_edge' metadata); "
                            "export it with `pix2pix export onnx RUN_OR_CHECKPOINT` first")
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1 or len(model.graph.output) != 1 or inputs[0].name != info.input_name:
        raise ModelMismatch(f"{path}: graph inputs/outputs do not match its metadata "
                            f"(expected one input {info.input_name!r} and one output)")
    tensor = inputs[0].type.tensor_type
    dims = tensor.shape.dim
    if len(dims) != 4:
        raise ModelMismatch(f"{path}: input {info.input_name!r} is not 4-D NCHW")
    dynamic = any(not d.HasField("dim_value") for d in dims)
    io_dtype = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16"}.get(
        tensor.elem_type)
    if io_dtype is None:
        raise ModelMismatch(f"{path}: input type {tensor.elem_type} is neither FP32 nor FP16")
    fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    int8 = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)
    pad_modes = sorted({next((a.s.decode() for a in n.attribute if a.name == "mode"), "constant")
                        for n in model.graph.node if n.op_type == "Pad"})
    return OnnxFacts(info=info, precision="int8" if int8 else "fp16" if fp16 else "fp32",
                     io_dtype=io_dtype, dynamic=dynamic, pad_modes=tuple(pad_modes))


def engine_info(facts: OnnxFacts, plan: BuildPlan, *, tensorrt_version: str, gpu_name: str,
                compute_capability: str, profile: dict[str, Shape] | None,
                source_onnx: str) -> ModelInfo:
    """The engine record: the ONNX metadata plus precision, TensorRT version and GPU."""
    extra = dict(facts.info.extra)
    extra["source_onnx"] = source_onnx
    extra["strongly_typed"] = plan.strongly_typed
    if profile:
        extra["profile"] = {k: list(v) for k, v in profile.items()}
    opt = profile["opt"] if profile else None
    io_dtype = facts.io_dtype
    info = dataclasses.replace(
        facts.info, precision=plan.precision, io_dtype=io_dtype, dynamic=bool(profile),
        height=opt[2] if opt else facts.info.height, width=opt[3] if opt else facts.info.width,
        tensorrt_version=tensorrt_version, gpu_name=gpu_name,
        compute_capability=compute_capability, extra=extra)
    info.validate()
    return info


# --------------------------------------------------------------------------- TensorRT network
FP32_LAYER_TYPES = ("NORMALIZATION", "REDUCE", "SOFTMAX")


def low_pass_layers(trt, network) -> dict:
    """How the parser built ``train --antialias``'s low-pass filters: depthwise 4x4 convolutions
    (an IConvolutionLayer with num_groups = its output maps) and reflect pads (an ISliceLayer in
    REFLECT mode: SampleMode from 8.6, SliceMode in 8.5). ``network.get_layer`` returns an
    ILayer; assigning ``__class__`` reaches the subclass (NVIDIA's documented Python idiom)."""
    reflect = trt.SampleMode.REFLECT if hasattr(trt, "SampleMode") else trt.SliceMode.REFLECT
    counts = {"depthwise_4x4": 0, "reflect_pads": 0}
    for i in range(network.num_layers):
        kind = network.get_layer(i).type
        if kind == trt.LayerType.CONVOLUTION:
            conv = network.get_layer(i)
            conv.__class__ = trt.IConvolutionLayer
            if (conv.num_groups > 1 and conv.num_groups == conv.num_output_maps
                    and tuple(conv.kernel_size_nd) == (4, 4)):
                counts["depthwise_4x4"] += 1
        elif kind == trt.LayerType.SLICE:
            pad = network.get_layer(i)
            pad.__class__ = trt.ISliceLayer
            if pad.mode == reflect:
                counts["reflect_pads"] += 1
    return counts


def pin_norms_fp32(trt, network) -> int:
    """Weakly typed builds (TensorRT 8.x): run normalisation / reduction layers (and an
    InstanceNormalization plugin, used by older parsers) in FP32. Returns how many were pinned."""
    wanted = {getattr(trt.LayerType, t) for t in FP32_LAYER_TYPES if hasattr(trt.LayerType, t)}
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        is_plugin_norm = "instancenorm" in str(layer.name).lower().replace("_", "") and \
            "PLUGIN" in str(layer.type)
        if layer.type in wanted or is_plugin_norm:
            layer.precision = trt.float32
            for k in range(layer.num_outputs):
                layer.set_output_type(k, trt.float32)
            pinned += 1
    return pinned


def _progress_monitor(trt, log: Callable[[str], None]):
    """A TensorRT progress monitor printing top-level build phases (TensorRT >= 10)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                log(f"  TensorRT: {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # never cancel

        def phase_finish(self, phase_name):
            pass

    return Monitor()


def build_engine(onnx_path: str | Path, engine_path: str | Path, *, fp32: bool = False,
                 workspace_gib: float = DEFAULT_WORKSPACE_GIB, min_size: str | None = None,
                 opt_size: str | None = None, max_size: str | None = None,
                 batch: str | None = None, device: int = 0,
                 timing_cache: str | Path | None = None, verbose: bool = False,
                 log: Callable[[str], None] = print) -> dict:
    """``pix2pix export trt``: inspect, plan, build, write engine + record. Returns a report."""
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    # User errors first (they need no GPU), then the hardware.
    written = [("-o", engine_path), ("the engine record", engine_record_path(engine_path))]
    refuse_same_files(written + ([("--timing-cache", Path(timing_cache))] if timing_cache else []),
                      [("the ONNX model", onnx_path)])
    facts = inspect_onnx(onnx_path)
    profile = compute_profile(facts.info, facts.dynamic, min_size, opt_size, max_size, batch)
    if workspace_gib <= 0:
        raise BadInput(f"--workspace {workspace_gib}: must be a positive number of GiB")
    if fp32 and facts.precision in ("fp16", "int8"):
        build_plan((10, 0, 0), facts.precision, fp32)  # raises the --fp32 message
    check_writable(engine_path, "model.engine")

    purpose = "building a TensorRT engine"
    trt = import_tensorrt(purpose)
    version = parse_version(trt.__version__)
    cudart = import_cudart(purpose)
    gpu_name, capability = gpu_properties(cudart, device, purpose)
    cuda_call(cudart, cudart.cudaSetDevice(device), "cudaSetDevice")  # build on the GPU named
    plan = build_plan(version, facts.precision, fp32, capability)
    check_pad_modes(facts, version)
    if plan.note:
        log(f"note: {plan.note}")

    remove_stale_temps(engine_path.parent, engine_path.name)   # a killed build's work folder
    with tempfile.TemporaryDirectory(prefix=temp_prefix(engine_path.name),
                                     dir=engine_path.parent) as tmp:
        source = onnx_path
        if plan.convert_to_fp16:
            from pix2pix_edge.export.fp16 import convert_file

            source = convert_file(onnx_path, Path(tmp) / "fp16.onnx",
                                  keep_io_types=facts.io_dtype == "float32")
        elif plan.symmetric_int8:
            from pix2pix_edge.export.int8 import symmetric_file

            source = symmetric_file(onnx_path, Path(tmp) / "int8_symmetric.onnx")
        logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        init_plugins(trt, logger)   # before parsing: 8.5 maps InstanceNorm to a plugin
        builder = trt.Builder(logger)
        network = builder.create_network(network_flag_bits(trt, plan.network_flags))
        parser = trt.OnnxParser(network, logger)
        for name in plan.parser_flags:
            parser.set_flag(getattr(trt.OnnxParserFlag, name))
        if not parser.parse_from_file(str(source)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            first = errors[0].strip().splitlines()[0] if errors else "no details"
            raise ModelMismatch(f"TensorRT {trt.__version__} could not parse {onnx_path} "
                                f"({len(errors)} error(s)): {first[:300]}"
                                + ("; this INT8 (Q/DQ) graph needs a TensorRT that parses it: "
                                   "build from the FP32 ONNX instead" if plan.precision == "int8"
                                   else ""))
        if facts.info.extra.get("antialias"):
            lp = low_pass_layers(trt, network)
            log(f"  anti-aliasing: {lp['depthwise_4x4']} low-pass filters (depthwise 4x4 "
                f"convolutions), {lp['reflect_pads']} reflect pads")
        if plan.pin_norms_fp32:
            n = pin_norms_fp32(trt, network)
            log(f"  kept {n} normalisation/reduction layers in FP32")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * 2**30))
        for name in plan.builder_flags:
            config.set_flag(getattr(trt.BuilderFlag, name))
        if profile:
            p = builder.create_optimization_profile()
            p.set_shape(facts.info.input_name, profile["min"], profile["opt"], profile["max"])
            config.add_optimization_profile(p)
        cache_note = ""
        if timing_cache:
            cache_path = Path(timing_cache)
            blob = cache_path.read_bytes() if cache_path.is_file() else b""
            cache = config.create_timing_cache(blob)
            if not config.set_timing_cache(cache, ignore_mismatch=False):
                cache_note = "timing cache from another TensorRT version or GPU: started a new one"
                config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
            elif blob:
                cache_note = f"reused timing cache {cache_path}"
        monitor = None if verbose else _progress_monitor(trt, log)
        if monitor is not None:
            config.progress_monitor = monitor

        t0 = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        build_s = time.perf_counter() - t0
        if serialized is None:
            raise Pix2PixError(f"TensorRT {trt.__version__} failed to build an "
                               f"{'INT8 ' if plan.precision == 'int8' else ''}engine from "
                               f"{onnx_path}; rerun with --verbose for the builder log"
                               + ("; or build from the FP32 ONNX" if plan.precision == "int8"
                                  else ""))
        atomic_write(engine_path, lambda f: f.write(serialized))
        if timing_cache:
            atomic_write(Path(timing_cache), lambda f: f.write(config.get_timing_cache().serialize()))

    info = engine_info(facts, plan, tensorrt_version=str(trt.__version__), gpu_name=gpu_name,
                       compute_capability=capability, profile=profile,
                       source_onnx=onnx_path.name)
    record = write_engine_record(engine_path, info)
    return {"engine": str(engine_path), "record": str(record), "build_s": build_s,
            "engine_bytes": engine_path.stat().st_size, "precision": plan.precision,
            "tensorrt_version": str(trt.__version__), "gpu": gpu_name,
            "compute_capability": capability, "profile": profile,
            "strongly_typed": plan.strongly_typed, "timing_cache": cache_note}
