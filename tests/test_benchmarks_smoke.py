"""The benchmark suite runs end to end and writes its JSON / Markdown / PNG (no timing asserts).

``--smoke`` is an internal level far below ``--quick``: a tiny U-Net, a few repetitions. Timings
on a shared CI machine mean nothing, so only the structure of the results is checked, plus the
FLOP convention the README's GFLOP/s figures rest on.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from benchmarks import report  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402


def test_smoke_run_writes_json_markdown_and_plot(tmp_path):
    rc = main(["--smoke", "--only", "inference,e2e,frames,train", "--out", str(tmp_path)])
    assert rc == 0
    files = list(tmp_path.glob("smoke-*.json"))
    assert len(files) == 1
    result = json.loads(files[0].read_text())

    machine = result["machine"]
    for key in ("cpu", "cores", "gpu", "versions", "date", "load_average_1_5_15"):
        assert key in machine
    assert machine["cores"] >= 1 and machine["versions"]["torch"]

    inf = result["sections"]["inference"]
    rows = inf["rows"]
    backends = {r["backend"] for r in rows}
    assert {"torch-fp32", "ort-fp32", "ort-fp16", "ort-int8"} <= backends
    for r in rows:
        for key in ("p50_ms", "p90_ms", "p99_ms", "fps", "gflop", "gflop_per_s", "params", "n"):
            assert r[key] is not None and r[key] > 0, (r["backend"], key)
        assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    fp16 = next(r for r in rows if r["backend"] == "ort-fp16")
    assert fp16["psnr_vs_fp32_db"] > 40  # FP16 must stay close to FP32 (norms kept in FP32)
    int8 = next(r for r in rows if r["backend"] == "ort-int8")
    assert int8["precision"] == "int8" and int8["psnr_vs_fp32_db"] > 30  # the export check
    skipped = {s["backend"]: s["reason"] for s in inf["skipped"]}
    gpu = machine["gpu"] is not None
    if not gpu:
        assert "no NVIDIA GPU" in skipped["tensorrt-fp16"]
    # Training is not run at smoke level, and says so.
    assert "smoke" in result["sections"]["train"].get("skipped", "") or \
        "not present" in result["sections"]["train"].get("skipped", "")

    # Sections written elsewhere are called through the same runner: rows, or a stated skip.
    frames = result["sections"]["frames"]
    assert frames.get("rows") or "not present" in frames.get("skipped", "")
    e2e = result["sections"]["e2e"]
    assert e2e.get("summary") or e2e.get("skipped")

    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Inference" in md and "| torch-fp32 |" in md and "latency_vs_size.png" in md
    assert "skipped tensorrt-fp16" in md or gpu
    assert "pipeline / model-only" in md or "skipped" in md.split("## End to end")[1][:400]
    png = tmp_path / report.LATENCY_PNG
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_flop_convention_matches_reference():
    """unet_256 ngf 64 at 256x256: 6.05 G multiply-adds (transposed convs at input resolution)."""
    from benchmarks.inference import count_macs
    from pix2pix_edge.train.models import UNetGenerator

    macs = count_macs(UNetGenerator(depth=8, ngf=64).eval(), (1, 3, 256, 256))
    assert round(macs / 1e9, 2) == 6.05


def test_quality_section_skips_without_dataset(tmp_path, monkeypatch):
    import benchmarks.quality_vs_speed as q

    monkeypatch.setattr(q, "FACADES", tmp_path / "absent")
    out = q.run("smoke")
    assert "not found" in out["skipped"] and "absent" in out["skipped"]


def test_report_renders_quality_table_and_plot(tmp_path):
    """The report's quality part, from a result dict shaped like quality_vs_speed.run()'s."""
    rows = [dict(ngf=n, params=p, gflop=g, iterations=10, psnr_untrained=9.0, psnr=ps,
                 ssim_untrained=0.05, ssim=ss, l1=0.2, latency_ms=lat, torch_latency_ms=lat * 2,
                 train_s_per_iter=0.1, latency_backend="ort-fp32 CPU, 128x128")
            for n, p, g, ps, ss, lat in ((16, 3.4e6, 0.2, 12.0, 0.2, 2.0),
                                         (32, 13.6e6, 0.8, 12.5, 0.22, 5.0))]
    result = {"level": "smoke", "machine": {"cpu": "x", "cores": 2, "versions": {}},
              "sections": {"quality": {"setup": "test", "rows": rows, "note": "n"},
                           "e2e": {"skipped": "benchmarks/end_to_end.py not present"}}}
    written = report.write_report(result, tmp_path)
    assert {p.name for p in written} == {"RESULTS.md", report.QUALITY_PNG}
    md = (tmp_path / "RESULTS.md").read_text()
    assert "| 32 | 13.60 |" in md and "quality_vs_latency.png" in md
    assert "skipped: benchmarks/end_to_end.py not present" in md


def test_unknown_section_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--smoke", "--only", "inference,frobnicate", "--out", str(tmp_path)])
    assert e.value.code == 2


def test_merged_report_credits_each_section_to_the_run_it_came_from():
    first = {"level": "full", "machine": {"date": "d1", "git_commit": "a"},
             "sections": {"inference": {"rows": [1]}, "train": {"rows": ["old"]}}}
    second = {"level": "full", "machine": {"date": "d2", "git_commit": "b"},
              "sections": {"train": {"rows": ["new"]}}}
    merged = report.merge([first, second])
    assert merged["sections"]["train"] == {"rows": ["new"]} and merged["sections"]["inference"] == {"rows": [1]}
    assert [(r["date"], r["sections"]) for r in merged["merged_runs"]] == [("d1", ["inference"]), ("d2", ["train"])]


def test_every_section_is_called_the_same_way():
    """Each section module has ``run(level, **opts) -> dict``; the suite calls exactly that."""
    import importlib
    import inspect

    from benchmarks.__main__ import SECTIONS, call_section

    for name, module in SECTIONS.items():
        params = list(inspect.signature(importlib.import_module(module).run).parameters.values())
        assert params[0].name == "level", name
        assert all(p.default is not inspect.Parameter.empty for p in params[1:]), name
    assert "smoke" in call_section("train", "smoke")["skipped"]
