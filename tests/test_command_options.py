"""Every command's options from one dataclass: choices are module constants, shared options are
made once, the dataclasses' defaults are the library's, and `pix2pix info` recommends only
options that exist."""

from __future__ import annotations

import inspect
import re
import sys
from dataclasses import fields
from pathlib import Path

import click
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.backends import open_backend
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadUsage
from pix2pix_edge.runtime.options import defaults, option_fields
from pix2pix_edge.runtime.run_options import (BenchOptions, InfoOptions, PipelineOptions,
                                              RunOptions)

# Choices still written as a literal in a decorator, fixed by another branch (issue 16, helper
# (a): eval's options as a dataclass). Delete the entry when that lands: the test then fails.
KNOWN_LITERALS: set = set()


def commands(group=cli, path=()):
    """Every (path, command) under the root `pix2pix` group, subgroups walked."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            yield from commands(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def test_every_choice_is_a_module_constant():
    walked = {" ".join(path) for path, _ in commands()}
    assert {"train", "distill", "eval", "export onnx", "export trt", "run", "bench", "info",
            "data synth", "data download", "data check", "demo"} <= walked
    ours = [m for name, m in list(sys.modules.items()) if name.startswith("pix2pix_edge.")]
    literals, n = set(), 0
    for path, cmd in commands():
        for p in cmd.params:
            if isinstance(p.type, click.Choice):
                n += 1
                choices = p.type.choices
                if not any(v is choices for m in ours for v in vars(m).values()):
                    literals.add((" ".join(path), p.name))
    assert n >= 25
    assert literals == KNOWN_LITERALS


def _param(path, name):
    cmd = dict(commands())[tuple(path.split())]
    return next(p for p in cmd.params if p.name == name)


@pytest.mark.parametrize("name", ["backend", "threads", "device", "color_order", "value_range"])
def test_shared_options_are_one_definition(name):
    """run, bench (and info, export) take --backend / --threads / --device from one place."""
    params = [_param(c, name) for c in ("run", "bench", "info", "export onnx", "export trt")
              if any(p.name == name for p in dict(commands())[tuple(c.split())].params)]
    assert len(params) >= 2
    first = params[0]
    for p in params[1:]:
        assert p.opts == first.opts and p.default == first.default
        if isinstance(first.type, click.Choice):
            assert p.type.choices is first.type.choices
        elif isinstance(first.type, click.IntRange):
            assert (p.type.min, p.type.max) == (first.type.min, first.type.max)


def _keyword_defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.kind == p.KEYWORD_ONLY or p.default is not p.empty}


def _same_defaults(cls, fn, names=None, differ=()):
    kw = _keyword_defaults(fn)
    names = names or [f.name for f in option_fields(cls)]
    d = defaults(cls)
    missing = [n for n in names if n not in kw]
    assert not missing, f"{fn.__name__} has no keyword {missing}"
    for n in names:
        if n not in differ:
            assert d[n] == kw[n] or (isinstance(kw[n], (str, Path)) and Path(kw[n]) == d[n]) \
                or (isinstance(d[n], tuple) and list(d[n]) == list(kw[n])), (n, d[n], kw[n])


def test_dataclass_defaults_are_the_library_defaults():
    from pix2pix_edge.runtime.bench import run_bench
    from pix2pix_edge.train.cli_data import DownloadOptions, SynthOptions
    from pix2pix_edge.train.download import download
    from pix2pix_edge.train.synth import make_dataset

    bench_fields = [f.name for f in fields(BenchOptions)]
    _same_defaults(BenchOptions, run_bench, bench_fields[:bench_fields.index("video_output") + 1])
    _same_defaults(SynthOptions, make_dataset)
    _same_defaults(DownloadOptions, download, differ=("base_url",))   # None: the official URL


def test_export_options_are_export_run_and_build_engine_keywords():
    pytest.importorskip("torch")
    from pix2pix_edge.export import int8
    from pix2pix_edge.export.options import ExportOnnxOptions, ExportTrtOptions
    from pix2pix_edge.export.to_onnx import export_run
    from pix2pix_edge.export.to_tensorrt import build_engine

    _same_defaults(ExportOnnxOptions, export_run)
    _same_defaults(ExportTrtOptions, build_engine)
    helps = {f.name: f.metadata["help"] for f in option_fields(ExportOnnxOptions)}
    assert f"(default {int8.DEFAULT_MIN_PSNR:g})" in helps["min_psnr"]
    assert f"(default {int8.DEFAULT_CALIB_IMAGES})" in helps["calib_images"]


def test_frames_help_names_the_live_and_flicker_defaults():
    from pix2pix_edge.runtime.flicker import model_flicker
    from pix2pix_edge.runtime.live import run_live

    help_ = next(f for f in fields(BenchOptions) if f.name == "frames").metadata["help"]
    assert f"--live (default {_keyword_defaults(run_live)['frames']})" in help_
    assert f"--flicker (default {_keyword_defaults(model_flicker)['frames']})" in help_


def test_run_options_are_pipeline_options():
    assert issubclass(RunOptions, PipelineOptions)
    names = {f.name for f in option_fields(RunOptions)}
    assert {"fit", "size", "max_frames", "overlay", "snapshot_dir"} <= names
    assert {f.name for f in option_fields(InfoOptions)} == {"backend", "device", "as_json"}


def test_a_bool_flag_can_name_its_off_switch():
    p = _param("data download", "keep_archive")
    assert p.opts == ["--keep-archive"] and p.secondary_opts == ["--delete-archive"]


# ----------------------------------------------------------------------------- plain models
@pytest.fixture(scope="module")
def plain_onnx(tiny_onnx, tmp_path_factory):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    path = tmp_path_factory.mktemp("plain") / "plain.onnx"
    onnx.save(model, str(path))
    return path


def test_info_recommends_only_options_that_run_has(plain_onnx):
    r = CliRunner().invoke(cli, ["info", str(plain_onnx)])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.startswith("metadata"))
    asked = set(re.findall(r"--[a-z][a-z-]*", line))
    assert {"--size", "--color-order", "--range"} <= asked and "pix2pix run" in line
    run_flags = {o for p in dict(commands())[("run",)].params for o in p.opts}
    bench_flags = {o for p in dict(commands())[("bench",)].params for o in p.opts}
    assert asked <= run_flags and asked - {"--size"} <= bench_flags


def test_color_order_and_range_for_a_model_without_metadata(plain_onnx, tiny_onnx, tmp_path):
    be = open_backend(plain_onnx, color_order="BGR", value_range=(0, 1))
    assert (be.metadata_source, be.info.color_order, be.info.value_range) == \
        ("graph", "BGR", (0.0, 1.0))
    be.close()
    assert open_backend(tiny_onnx, color_order="RGB", value_range=(-1, 1)).info.color_order == "RGB"
    with pytest.raises(BadUsage, match="--color-order BGR: tiny.onnx carries"):
        open_backend(tiny_onnx, color_order="BGR")
    # the frames code honours them: the same image, read as RGB or as BGR, translates differently
    src = tmp_path / "in"
    src.mkdir()
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :32] = (255, 0, 0)
    cv2.imwrite(str(src / "a.png"), img)
    outs = {}
    for order, rng in (("RGB", "-1,1"), ("BGR", "-1,1"), ("RGB", "0,1")):
        out = tmp_path / f"{order}{rng}"
        r = CliRunner().invoke(cli, ["run", str(plain_onnx), "-s", str(src), "-o", str(out),
                                     "--color-order", order, "--range", rng])
        assert r.exit_code == 0, r.output
        assert f"{order} [{rng.replace(',', ', ')}] (no metadata)" in r.output
        outs[order, rng] = cv2.imread(str(out / "a.png")).astype(int)
    assert np.abs(outs["RGB", "-1,1"] - outs["BGR", "-1,1"]).max() > 0
    assert np.abs(outs["RGB", "-1,1"] - outs["RGB", "0,1"]).max() > 0


def test_info_prints_width_x_height_and_binary_file_sizes(tiny_onnx, tmp_path):
    """A 128 wide, 64 high model is 128x64 in info as in export, bench and run (it said 64x128);
    file sizes are binary units from one formatter (it said "0.27 MB" where export says MiB)."""
    onnx = pytest.importorskip("onnx")
    from pix2pix_edge.runtime.files import format_bytes
    from pix2pix_edge.runtime.model_info import ModelInfo

    model = onnx.load(str(tiny_onnx))
    del model.graph.value_info[:]
    for t in list(model.graph.input) + list(model.graph.output):
        for i, sym in ((0, "N"), (2, "H"), (3, "W")):
            t.type.tensor_type.shape.dim[i].ClearField("dim_value")
            t.type.tensor_type.shape.dim[i].dim_param = sym
    del model.metadata_props[:]
    info = ModelInfo(height=64, width=128, multiple=32, dynamic=True, depth=5, ngf=4)
    model.metadata_props.add(key="pix2pix_edge", value=info.to_json())
    path = tmp_path / "wide.onnx"
    onnx.save(model, str(path))
    r = CliRunner().invoke(cli, ["info", str(path)])
    assert r.exit_code == 0, r.output
    assert "metadata     128x64 (dynamic, multiples of 32) RGB" in r.output
    assert f"({format_bytes(path.stat().st_size)}, sha256" in r.output and " MB" not in r.output
    r = CliRunner().invoke(cli, ["bench", str(path), "--runs", "1", "--warmup", "0"])
    assert r.exit_code == 0 and " 128x64 " in r.output, r.output
    assert [format_bytes(n) for n in (812, 270_000, 2_621_440, 3 * 2 ** 30)] == \
        ["812 B", "263.7 KiB", "2.5 MiB", "3.0 GiB"]


def test_export_trt_sizes_reach_the_profile_as_given():
    """export trt's --min/--opt/--max are parsed by the command line (Size, WxH) and build the
    same profile as the strings a Python caller passes (the engine build itself needs a GPU)."""
    from pix2pix_edge.export.options import ExportTrtOptions
    from pix2pix_edge.export.to_tensorrt import compute_profile
    from pix2pix_edge.runtime.model_info import ModelInfo

    ctx = click.Context(click.Command("trt"))
    by_name = {p.name: p for p in dict(commands())[("export", "trt")].params}
    given = {"min_size": "256x256", "opt_size": "512x256", "max_size": "1024x768"}
    parsed = {k: by_name[k].type_cast_value(ctx, v) for k, v in given.items()}
    assert parsed["opt_size"] == (512, 256)
    info = ModelInfo(height=256, width=256, multiple=256, dynamic=True)
    assert compute_profile(info, True, **parsed, batch="1,2,4") == \
        compute_profile(info, True, **given, batch="1,2,4") == \
        {"min": (1, 3, 256, 256), "opt": (2, 3, 256, 512), "max": (4, 3, 768, 1024)}
    assert {"min_size", "opt_size", "max_size"} <= {f.name for f in fields(ExportTrtOptions)}
