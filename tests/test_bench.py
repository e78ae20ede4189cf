"""``pix2pix bench``: statistics, the JSON record, sizes and batches, the CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime import bench
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def dynamic_onnx(tiny_onnx, tmp_path_factory):
    """The tiny generator with symbolic N, H, W axes and its metadata marked dynamic."""
    from pix2pix_edge.runtime.model_info import ModelInfo
    model = onnx.load(str(tiny_onnx))
    del model.graph.value_info[:]
    for t in list(model.graph.input) + list(model.graph.output):
        dims = t.type.tensor_type.shape.dim
        for i, sym in ((0, "N"), (2, "H"), (3, "W")):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = sym
    del model.metadata_props[:]
    info = ModelInfo(height=64, width=64, multiple=32, dynamic=True, depth=5, ngf=4)
    model.metadata_props.add(key="pix2pix_edge", value=info.to_json())
    path = tmp_path_factory.mktemp("dyn") / "dyn.onnx"
    onnx.save(model, str(path))
    return path


def test_latency_stats_definitions():
    s = bench.latency_stats([0.001, 0.002, 0.003, 0.004, 0.010], batch=4)
    assert s["runs"] == 5
    assert s["mean_ms"] == pytest.approx(4.0)
    assert s["p50_ms"] == pytest.approx(3.0)
    assert s["max_ms"] == pytest.approx(10.0) and s["min_ms"] == pytest.approx(1.0)
    assert s["p90_ms"] == pytest.approx(np.percentile([1, 2, 3, 4, 10], 90))
    assert s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["fps"] == pytest.approx(4 * 1000 / 3.0)   # images per second = batch / median
    with pytest.raises(ValueError):
        bench.latency_stats([])


def test_one_latency_definition_for_bench_run_and_the_suite():
    """pix2pix bench, the pipeline's figures and the benchmark suite share runtime.stats."""
    from benchmarks import common
    from pix2pix_edge.runtime import stats

    seconds = [0.001, 0.002, 0.003, 0.004, 0.010]
    s = stats.latency_stats(seconds)
    assert s["n"] == 5 and s["p50_ms"] == pytest.approx(3.0) and s["fps"] == pytest.approx(1000 / 3)
    assert {k: v for k, v in bench.latency_stats(seconds).items() if k != "runs"} == \
        {k: v for k, v in s.items() if k != "n"}
    p = stats.percentiles([1.0, 2.0, 3.0, 4.0, 10.0])   # the pipeline's per-stage figures
    assert p == {"p50_ms": 3.0, "p95_ms": pytest.approx(np.percentile([1, 2, 3, 4, 10], 95)),
                 "p99_ms": pytest.approx(np.percentile([1, 2, 3, 4, 10], 99)), "mean_ms": 4.0,
                 "max_ms": 10.0, "n": 5}
    assert stats.percentiles([])["n"] == 0 and stats.percentiles([])["p50_ms"] == 0.0
    assert not hasattr(common, "summarize")   # the suite has no statistics of its own
    assert "p50_ms" in bench.DEFINITIONS["fps"] and "median" in bench.DEFINITIONS["fps"]


def test_machine_facts():
    from pix2pix_edge.runtime import machine

    m = machine.machine_info()
    assert m["cpu"] and 1 <= m["physical_cores"] <= m["usable_cpus"] <= (m["logical_cpus"] or 1)
    v = machine.versions("torch")
    assert v["numpy"] == np.__version__ and v["python"] and "torch" in v and "opencv" in v
    assert machine.versions()["pix2pix_edge"] and "torch" not in machine.versions()


def test_parse_sizes_and_batches():
    assert bench.parse_sizes("256,512") == [(256, 256), (512, 512)]
    assert bench.parse_sizes("512x256, 128") == [(512, 256), (128, 128)]    # WxH
    assert bench.parse_sizes("512x256")[0].height == 256
    assert bench.parse_sizes(None) == []
    assert bench.parse_ints("1,4", "--batch") == [1, 4]
    for bad in ("abc", "0", "256x", "1x2x3"):
        with pytest.raises(BadInput):
            bench.parse_sizes(bad)
    for bad in ("0", "a", ""):
        with pytest.raises(BadInput):
            bench.parse_ints(bad, "--batch")


def test_bench_record_identifies_everything(tiny_onnx):
    r = bench.run_bench(tiny_onnx, warmup=1, runs=5, sizes=[(128, 128)], batches=[1, 2],
                        threads=1)
    assert r["schema"] == "pix2pix-edge-bench/1" and r["date"].endswith("+00:00")
    m = r["machine"]
    assert m["cpu"] and m["physical_cores"] >= 1 and "gpu" in m
    v = r["versions"]
    import onnxruntime
    import cv2
    assert v["onnxruntime"] == onnxruntime.__version__ and v["opencv"] == cv2.__version__
    assert v["numpy"] == np.__version__ and v["python"]
    (model,) = r["models"]
    assert model["sha256"] == hashlib.sha256(tiny_onnx.read_bytes()).hexdigest()[:16]
    assert model["metadata"]["ngf"] == 4 and model["metadata_source"] == "file"
    (row,) = r["results"]   # a fixed 1x3x64x64 model: one configuration
    assert row["backend"] == "onnxruntime" and row["provider"] == "CPUExecutionProvider"
    assert row["precision"] == "fp32" and row["threads"] == 1
    assert (row["height"], row["width"], row["batch"], row["runs"]) == (64, 64, 1, 5)
    assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["fps"] == pytest.approx(1000 / row["p50_ms"], rel=1e-3)
    assert any("fixed input size 64x64" in n for n in r["notes"])
    assert any("fixed batch size of 1" in n for n in r["notes"])
    assert set(r["definitions"]) >= {"latency_ms", "fps"}
    json.dumps(r)   # serialisable
    table = bench.format_table(r)
    assert "CPUExecutionProvider" in table and "64x64" in table and "note:" in table


def test_bench_dynamic_model_sizes_and_batches(dynamic_onnx):
    r = bench.run_bench(dynamic_onnx, warmup=0, runs=2, sizes=bench.parse_sizes("32,96x64"),
                        batches=[1, 2], providers="cpu")
    got = [(x["batch"], x["height"], x["width"]) for x in r["results"]]
    assert got == [(1, 32, 32), (1, 64, 96), (2, 32, 32), (2, 64, 96)]
    assert r["notes"] == []
    b2 = r["results"][2]
    assert b2["fps"] == pytest.approx(2000 / b2["p50_ms"], rel=1e-3)
    with pytest.raises(BadInput, match="multiples of 32; cannot time 48x48"):
        bench.run_bench(dynamic_onnx, warmup=0, runs=1, sizes=[(48, 48)])


def test_bench_command_writes_json(tiny_onnx, tmp_path):
    out = tmp_path / "res" / "bench.json"
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--warmup", "1", "--runs", "3",
                                 "--provider", "cpu", "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "CPUExecutionProvider" in r.output and f"wrote {out}" in r.output
    d = json.loads(out.read_text())
    assert d["results"][0]["runs"] == 3 and d["settings"]["warmup"] == 1


def test_bench_command_errors(tiny_onnx, tmp_path):
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--sizes", "12x"])
    assert r.exit_code == 2 and "bad size" in r.output          # a bad command line
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--provider", "cuda"])
    assert r.exit_code in (0, 5)   # 0 only where CUDA really loads
    if r.exit_code == 5:
        assert "cannot load on this machine" in r.output
    r = CliRunner().invoke(cli, ["bench", str(tmp_path / "missing.onnx")])
    assert r.exit_code == 3 and "not found" in r.output


def _write_video(path, frames=8, size=(96, 80)):
    import cv2
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size)
    assert w.isOpened()
    rng = np.random.default_rng(0)
    for _ in range(frames):
        w.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    w.release()
    return path


def test_bench_video_adds_the_pipeline(tiny_onnx, tmp_path):
    video = _write_video(tmp_path / "clip.mp4", frames=8)
    kept = tmp_path / "out.mp4"
    r = bench.run_bench(tiny_onnx, warmup=1, runs=3, video=video, video_output=str(kept))
    v = r["video"]
    assert v["frames"] == 8 and v["dropped"] == 0 and v["encoded"] and kept.is_file()
    assert set(v["stages"]) == {"capture", "pre", "infer", "post", "output"}
    for s in v["stages"].values():
        assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"]
    # the model-only side is timed on the pipeline's own session right before and after it
    assert v["model_only_runs_per_block"] == 10
    assert v["model_only_fps"] == pytest.approx((v["model_only_fps_before"] + v["model_only_fps_after"]) / 2, abs=1e-3)
    assert v["pipeline_vs_model"] == pytest.approx(v["fps"] / v["model_only_fps"], rel=1e-3)
    assert "pipeline on clip.mp4" in bench.format_table(r)
    # default: encoded to a temporary file that is removed afterwards
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--runs", "2", "--video", str(video),
                                 "--frames", "4"])
    assert r.exit_code == 0, r.output
    assert "4 frames" in r.output
    r = CliRunner().invoke(cli, ["bench", str(tiny_onnx), "--video", str(tmp_path / "no.mp4")])
    assert r.exit_code == 3 and "not found" in r.output
