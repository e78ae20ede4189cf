"""Every TensorRT name the product uses exists in every TensorRT version whose code path uses it,
checked against the real Python bindings of 8.6, 10.3 (JetPack 6), 10.13 (JetPack 7) and 11.4.

The bindings are real wheels from the package index, fetched by ``make api-packages`` into
.cache/trt-bindings (scripts/api_packages.py) and imported on stub libnvinfer libraries: their
classes, methods and enum members can be read on a machine without TensorRT or a GPU. Each
version runs in its own subprocess. A version whose folder is absent is skipped, naming the
command that fetches it (tests never download).

What is checked, per version:

(a) the product's pure version decisions (:func:`build_plan`, :func:`network_flag_bits`,
    :func:`parser_flag_bits` where present) with the real enums: the flags each version's plan
    names exist in that version and give the bits TensorRT defines;
(b) every ``trt.X.Y`` chain, every method / attribute the product uses on a TensorRT object
    (receivers in RECEIVERS), the keyword names it passes, the names it reads with
    ``getattr(trt.X, name)`` and the methods it overrides in TensorRT subclasses, collected
    from the product source with ``ast`` -- a typo or an API removed in some version fails here.
    Names only used on some versions' code paths are listed in VERSION_ONLY.

TensorRT 8.5 (JetPack 5) has no bindings on the package index: it takes the 8.x branch, which
test_85_takes_the_86_branch checks with the 8.6 bindings.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("api_packages", REPO / "scripts" / "api_packages.py")
api_packages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api_packages)

PRODUCT_DIRS = ("runtime", "export")

# What the product's TensorRT objects are: the class a factory returns (``trt.X(...)`` is X),
# and function parameters that hold one. Within a function a name (or a ``self._x`` attribute
# anywhere in its class) holds the class of what it was last assigned from.
RETURNS = {
    "create_network": "INetworkDefinition", "get_layer": "ILayer",
    "create_builder_config": "IBuilderConfig", "create_optimization_profile": "IOptimizationProfile",
    "create_timing_cache": "ITimingCache", "get_timing_cache": "ITimingCache",
    "build_serialized_network": "IHostMemory", "deserialize_cuda_engine": "ICudaEngine",
    "create_execution_context": "IExecutionContext",
}
PARAMS = {("pin_norms_fp32", "network"): "INetworkDefinition",
          ("low_pass_layers", "network"): "INetworkDefinition",
          ("profile_shapes", "engine"): "ICudaEngine"}

# Names only some versions' code paths use: name -> (lowest, highest) TensorRT major using it.
VERSION_ONLY = {
    "IProgressMonitor": (10, 99),                 # guarded by hasattr(trt, "IProgressMonitor")
    "IBuilderConfig.progress_monitor": (10, 99),  # only with a monitor
    "ILayer.precision": (8, 9),                   # pin_norms_fp32: weakly typed builds only
    "ILayer.set_output_type": (8, 9),
    "SliceMode.REFLECT": (8, 9),                  # low_pass_layers: 8.5 has no SampleMode
    # profile_shapes: only where a binding lacks get_tensor_profile_shape (TensorRT 8.x)
    "ICudaEngine.get_profile_shape": (8, 9),
}
# getattr(trt.X, name) with a computed name: where the names come from (checked in part (a)).
DYNAMIC = {"NetworkDefinitionCreationFlag", "BuilderFlag", "LayerType", "OnnxParserFlag"}


# --------------------------------------------------------------------------- source analysis
def _product_files() -> list[Path]:
    files = []
    for folder in PRODUCT_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(n, ast.Name) and n.id == "trt" for n in ast.walk(tree)):
                files.append(path)
    return files


def _chain(node) -> list[str] | None:
    """``trt.A.B`` -> ["A", "B"]; None unless the chain starts at the name ``trt``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "trt":
        return parts[::-1]
    return None


class _Collector:
    """Walks one module: infers which expressions hold TensorRT objects, records their uses."""

    def __init__(self, rel: str, uses: dict):
        self.rel, self.uses = rel, uses

    def where(self, node) -> str:
        return f"{self.rel}:{getattr(node, 'lineno', '?')}"

    def type_of(self, node, env) -> str | None:
        """The TensorRT class ``node`` evaluates to, or None."""
        if isinstance(node, (ast.Name, ast.Attribute)) and ast.unparse(node) in env:
            return env[ast.unparse(node)]
        if isinstance(node, ast.Call):
            chain = _chain(node.func)
            if chain and len(chain) == 1 and chain[0][:1].isupper():
                return chain[0]                          # trt.Builder(logger) -> Builder
            if isinstance(node.func, ast.Attribute) and self.type_of(node.func.value, env):
                return RETURNS.get(node.func.attr)       # builder.create_network() -> ...
        return None

    def bind(self, stmt, env):
        if isinstance(stmt, ast.Assign):
            t = self.type_of(stmt.value, env)
            for target in stmt.targets:
                chain = _chain(stmt.value)
                if (isinstance(target, ast.Attribute) and target.attr == "__class__" and chain
                        and len(chain) == 1):   # layer.__class__ = trt.IConvolutionLayer
                    env[ast.unparse(target.value)] = chain[0]
                elif t and isinstance(target, (ast.Name, ast.Attribute)):
                    env[ast.unparse(target)] = t

    def function_env(self, func, class_env) -> dict:
        env = dict(class_env)
        for arg in func.args.args:
            t = PARAMS.get((func.name, arg.arg))
            if t:
                env[arg.arg] = t
        for stmt in ast.walk(func):   # source order is good enough: each name has one type
            self.bind(stmt, env)
        return env

    def record(self, node, env):
        uses, where = self.uses, self.where(node)
        if isinstance(node, ast.Attribute):
            t = self.type_of(node.value, env)
            if t:
                uses["members"].setdefault(f"{t}.{node.attr}", where)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.keywords:
            t = self.type_of(node.func.value, env)
            if t:
                uses["kwargs"].setdefault(f"{t}.{node.func.attr}",
                                          (sorted(k.arg for k in node.keywords if k.arg), where))

    def module(self, tree):
        uses, parents = self.uses, {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(tree):
            where = self.where(node)
            if isinstance(node, ast.Attribute):
                chain = _chain(node)
                # only the outermost node of a chain: trt.Logger.ERROR, not also trt.Logger
                if chain and not isinstance(parents.get(node), ast.Attribute) \
                        and not chain[0].startswith("__"):
                    uses["module_attrs"].setdefault(".".join(chain), where)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr") and len(node.args) > 1):
                target, name = _chain(node.args[0]), node.args[1]
                if target and len(target) == 1:
                    if isinstance(name, ast.Constant):
                        if node.func.id == "getattr" and len(node.args) == 2:
                            uses["members"].setdefault(f"{target[0]}.{name.value}", where)
                    elif target[0] in DYNAMIC:
                        uses["dynamic"].setdefault(target[0], where)
                    else:
                        uses["problems"].append(
                            f"{where}: getattr(trt.{target[0]}, <computed>): add its names to "
                            f"part (a) and {target[0]} to DYNAMIC")
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    chain = _chain(base)
                    if chain and len(chain) == 1:
                        for item in node.body:
                            if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                                uses["overrides"].setdefault(f"{chain[0]}.{item.name}", where)
        for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)] + [tree]:
            class_env = {}
            funcs = [n for n in ast.walk(cls) if isinstance(n, ast.FunctionDef)]
            if isinstance(cls, ast.ClassDef):   # self._x attributes: shared by the methods
                for _ in range(3):              # one method may type what another uses
                    for func in funcs:
                        for key, t in self.function_env(func, class_env).items():
                            if key.startswith("self."):
                                class_env[key] = t
            for func in funcs:
                env = self.function_env(func, class_env)
                for node in ast.walk(func):
                    self.record(node, env)


def collect_uses() -> dict:
    """What the product uses of TensorRT, with where (file:line) for the messages."""
    uses = {"module_attrs": {}, "members": {}, "kwargs": {}, "overrides": {}, "dynamic": {},
            "problems": []}
    for path in _product_files():
        _Collector(path.relative_to(REPO).as_posix(), uses).module(
            ast.parse(path.read_text(encoding="utf-8")))
    return uses


# --------------------------------------------------------------------------- in each version
PROBE = r'''
import inspect, json, re, sys
import tensorrt_bindings as trt
sys.modules["tensorrt"] = trt           # the product does `import tensorrt`
import numpy as np
from pix2pix_edge.export import to_tensorrt as tt

uses = json.loads(sys.stdin.read())
out = {"version": trt.__version__, "missing": [], "kw_missing": [], "plans": {}, "flags": {}}

def resolve(dotted):
    obj = trt
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return None, False
        obj = getattr(obj, part)
    return obj, True

for name in list(uses["module_attrs"]) + list(uses["members"]) + list(uses["overrides"]):
    if not resolve(name)[1]:
        out["missing"].append(name)
for name, (kws, where) in uses["kwargs"].items():
    obj, ok = resolve(name)
    if ok:
        doc = obj.__doc__ or ""
        for kw in kws:
            if not re.search(r"\b%s\s*:" % re.escape(kw), doc):
                out["kw_missing"].append(f"{name}({kw}=...)")

version = tt.parse_version(trt.__version__)
for onnx_precision in ("fp32", "fp16", "int8"):
    for fp32 in (False, True):
        try:
            plan = tt.build_plan(version, onnx_precision, fp32)
        except Exception as e:
            out["plans"][f"{onnx_precision}/{fp32}"] = {"error": type(e).__name__}
            continue
        d = {"network_flags": list(plan.network_flags), "builder_flags": list(plan.builder_flags),
             "strongly_typed": plan.strongly_typed, "precision": plan.precision,
             "convert_to_fp16": plan.convert_to_fp16, "pin_norms_fp32": plan.pin_norms_fp32,
             "network_bits": tt.network_flag_bits(trt, plan.network_flags),
             "expected_network_bits": sum(1 << int(getattr(trt.NetworkDefinitionCreationFlag, n))
                                          for n in plan.network_flags
                                          if hasattr(trt.NetworkDefinitionCreationFlag, n)),
             "missing": [f"NetworkDefinitionCreationFlag.{n}" for n in plan.network_flags
                         if not hasattr(trt.NetworkDefinitionCreationFlag, n)]
                        + [f"BuilderFlag.{n}" for n in plan.builder_flags
                           if not hasattr(trt.BuilderFlag, n)]}
        parser_flags = getattr(plan, "parser_flags", ())
        d["parser_flags"] = list(parser_flags)
        d["missing"] += [f"OnnxParserFlag.{n}" for n in parser_flags
                         if not hasattr(trt.OnnxParserFlag, n)]
        if hasattr(tt, "parser_flag_bits"):
            d["parser_bits"] = tt.parser_flag_bits(trt, parser_flags)
            d["expected_parser_bits"] = sum(1 << int(getattr(trt.OnnxParserFlag, n))
                                            for n in parser_flags)
        out["plans"][f"{onnx_precision}/{fp32}"] = d
out["flags"]["layer_types"] = [t for t in tt.FP32_LAYER_TYPES if hasattr(trt.LayerType, t)]
out["flags"]["nptype"] = [np.dtype(trt.nptype(trt.float32)).name, np.dtype(trt.nptype(trt.float16)).name]
print(json.dumps(out))
'''


def _run_probe(key: str, uses: dict) -> dict:
    if not api_packages.trt_ready(key):
        pytest.skip(f"TensorRT {key} bindings not fetched into {api_packages.trt_dir(key)}: "
                    f"run `make api-packages`")
    payload = {k: uses[k] for k in ("module_attrs", "members", "kwargs", "overrides")}
    res = subprocess.run([sys.executable, "-c", PROBE], input=json.dumps(payload), text=True,
                         capture_output=True, env=api_packages.trt_env(key), cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def uses():
    return collect_uses()


def test_source_analysis_sees_the_product_and_leaves_nothing_unchecked(uses):
    """The collector finds the calls we know are there (a collector that finds nothing passes
    everything), and no TensorRT object or computed name escapes it."""
    assert not uses["problems"], "\n".join(uses["problems"])
    for name in ("Builder", "OnnxParser", "Runtime", "Logger", "MemoryPoolType",
                 "NetworkDefinitionCreationFlag", "TensorIOMode"):
        assert any(k.split(".")[0] == name for k in uses["module_attrs"]), name
    for name in ("Builder.create_network", "OnnxParser.parse_from_file",
                 "IBuilderConfig.set_memory_pool_limit", "Builder.build_serialized_network",
                 "Runtime.deserialize_cuda_engine", "ICudaEngine.get_tensor_name",
                 "IExecutionContext.execute_async_v3", "IExecutionContext.set_tensor_address"):
        assert name in uses["members"], name
    assert "IBuilderConfig.set_timing_cache" in uses["kwargs"]
    # what the --antialias low-pass filters need (export/to_tensorrt.py low_pass_layers): a
    # grouped convolution and a reflect-mode slice, read through the layer subclasses
    for name in ("IConvolutionLayer.num_groups", "IConvolutionLayer.kernel_size_nd",
                 "IConvolutionLayer.num_output_maps", "ISliceLayer.mode", "ILayer.type"):
        assert name in uses["members"], name
    for name in ("SampleMode.REFLECT", "SliceMode.REFLECT", "LayerType.CONVOLUTION",
                 "LayerType.SLICE", "IConvolutionLayer", "ISliceLayer"):
        assert name in uses["module_attrs"], name
    assert set(uses["dynamic"]) <= DYNAMIC
    for name in VERSION_ONLY:   # a stale entry would hide a real miss
        assert name in uses["members"] or name in uses["module_attrs"], f"{name} is unused"


@pytest.mark.parametrize("key", list(api_packages.TRT_BINDINGS))
def test_every_tensorrt_name_the_product_uses_exists(key, uses):
    out = _run_probe(key, uses)
    major = int(out["version"].split(".")[0])
    assert out["version"].startswith(key), out["version"]

    def needed(name):
        for only, (lo, hi) in VERSION_ONLY.items():
            if name == only or name.startswith(only + "."):
                return lo <= major <= hi
        return True

    where = {**uses["module_attrs"], **uses["members"], **uses["overrides"]}
    missing = [f"trt.{n} ({where[n]})" for n in out["missing"] if needed(n)]
    assert not missing, f"TensorRT {out['version']} has no: " + ", ".join(missing)
    assert not out["kw_missing"], f"TensorRT {out['version']}: {out['kw_missing']}"
    assert out["flags"]["nptype"] == ["float32", "float16"]


@pytest.mark.parametrize("key", list(api_packages.TRT_BINDINGS))
def test_version_decisions_with_the_real_enums(key, uses):
    out = _run_probe(key, uses)
    major = int(out["version"].split(".")[0])
    plans = out["plans"]
    for name, plan in plans.items():
        if "error" in plan:
            continue
        assert not plan["missing"], f"TensorRT {out['version']} plan {name}: {plan['missing']}"
        assert plan["network_bits"] == plan["expected_network_bits"] != 0 or (
            major >= 11 and not plan["network_flags"]), (name, plan)
        if "parser_bits" in plan:
            assert plan["parser_bits"] == plan["expected_parser_bits"], (name, plan)
    fp16 = plans["fp32/False"]
    if major < 10:   # weak typing: FP16 is a builder flag, norms pinned to FP32
        assert fp16["network_flags"] == ["EXPLICIT_BATCH"] and not fp16["strongly_typed"]
        assert "FP16" in fp16["builder_flags"] and fp16["pin_norms_fp32"]
        assert set(out["flags"]["layer_types"]) >= {"NORMALIZATION", "REDUCE"}
    else:            # strongly typed: precision from the graph, BuilderFlag.FP16 never set
        assert fp16["strongly_typed"] and fp16["builder_flags"] == []
        assert fp16["convert_to_fp16"] and fp16["precision"] == "fp16"
    assert plans["fp16/True"] == {"error": "BadInput"}
    assert plans["fp32/True"]["precision"] == "fp32"
    assert plans["fp32/True"]["builder_flags"] == []


def test_85_takes_the_86_branch():
    """JetPack 5 ships TensorRT 8.5 (no bindings on the package index): its version strings
    parse to the 8.x branch, which the 8.6 bindings checked above."""
    from pix2pix_edge.export.to_tensorrt import build_plan, parse_version

    import dataclasses

    for text in ("8.5.2.2", "8.5.2-1+cuda11.4", "8.5.3.1"):
        v = parse_version(text)
        assert v[:2] == (8, 5)
        for fp32 in (False, True):
            plan85, plan86 = build_plan(v, "fp32", fp32), build_plan((8, 6, 1), "fp32", fp32)
            # the same branch; only 8.6 has OnnxParserFlag.NATIVE_INSTANCENORM (8.5 parses
            # InstanceNormalization into the plugin that init_plugins registers)
            assert plan85.parser_flags == () and plan86.parser_flags == ("NATIVE_INSTANCENORM",)
            assert plan85 == dataclasses.replace(plan86, parser_flags=())
