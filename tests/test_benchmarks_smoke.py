"""The benchmark suite runs end to end and writes its JSON / Markdown / PNG (no timing asserts).

``--smoke`` is an internal level far below ``--quick``: tiny models, a few repetitions. Timings
on a shared CI machine mean nothing, so only the structure of the results is checked (every
section's smoke level in one run), plus what every result must carry (machine, load, command),
that the suite runs from another folder, the reference section's skips, and the FLOP convention
the GFLOP/s figures rest on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from benchmarks import reference, report  # noqa: E402
from benchmarks.__main__ import SECTIONS, main  # noqa: E402
from benchmarks.common import FACADES, VIDEO  # noqa: E402

DATA = (FACADES / "train").is_dir() and VIDEO.is_file()


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Every section at smoke level, in one suite run (the edge section with one student)."""
    if not DATA:
        pytest.skip(f"shared data not found ({FACADES}, {VIDEO}): it lives outside the repository")
    out = tmp_path_factory.mktemp("smoke")
    rc = main(["--smoke", "--edge-variants", "scratch", "--out", str(out)])
    (path,) = out.glob("smoke-*.json")
    return rc, json.loads(path.read_text()), out


def test_every_section_runs_at_smoke_level(smoke_run):
    rc, result, out = smoke_run
    assert rc == 0, {k: v.get("error") for k, v in result["sections"].items()}
    sections = result["sections"]
    assert list(sections) == list(SECTIONS)
    for name, sec in sections.items():
        if name != "reference":   # skipped here: no checkout (tested below)
            assert sec.get("rows"), (name, sec)

    backends = {r["backend"] for r in sections["inference"]["rows"]}
    assert {"torch-fp32", "ort-fp32", "ort-fp16", "ort-int8"} <= backends
    for r in sections["inference"]["rows"]:
        for key in ("p50_ms", "p90_ms", "p99_ms", "fps", "gflop", "gflop_per_s", "params", "n"):
            assert r[key] is not None and r[key] > 0, (r["backend"], key)
        assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    fp16 = next(r for r in sections["inference"]["rows"] if r["backend"] == "ort-fp16")
    assert fp16["psnr_vs_fp32_db"] > 40  # FP16 must stay close to FP32 (norms kept in FP32)
    if result["machine"]["gpu"] is None:
        skipped = {s["backend"]: s["reason"] for s in sections["inference"]["skipped"]}
        assert "no NVIDIA GPU" in skipped["tensorrt-fp16"]

    train = {r["variant"]: r for r in sections["train"]["rows"]}
    assert {"reference-like: fp32, for-loop Adam", "fp32"} <= set(train)   # FP32 is measured too
    assert sum(r["default"] for r in train.values()) == 1
    assert "reference_s" not in sections["train"]     # no constant from a file users lack
    assert "--reference-dir" in sections["reference"]["skipped"]
    assert {r["variant"] for r in sections["int8"]["rows"]} >= {"ort-fp32", "ort-int8"}
    assert [r["model"] for r in sections["edge"]["rows"]] == ["teacher", "scratch"]
    assert [row["ngf"] for row in sections["live"]["rows"]] == [8, 4]
    for row in sections["live"]["rows"]:
        assert row["latency"]["p50_ms"] > 0 and row["frames_out"] >= 12 and row["loadavg_before"]
        assert row["target_p50_ms"] > row["model_p50_ms"]
    assert [(r["norm"], r["dropout"]) for r in sections["flicker"]["rows"]] == [
        ("per-image", True), ("per-image", False), ("running", True), ("running", False)]
    assert {r["variant"] for r in sections["ort"]["rows"]} >= {"backend", "spin", "ort-defaults"}
    assert sections["e2e"]["summary"] and sections["frames"]["pre_plus_post_p50_ms"]

    md = (out / "RESULTS.md").read_text()
    for name in SECTIONS:
        assert f"## {report.TITLES[name]}" in md, name
    assert "| torch-fp32 |" in md or "torch-fp32" in md
    assert (out / report.LATENCY_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_result_records_machine_versions_command_and_load_per_section(smoke_run):
    _, result, out = smoke_run
    m = result["machine"]
    for key in ("cpu", "cpu_flags", "cores", "torch_cpu", "versions", "date", "load_average_1_5_15"):
        assert key in m, key
    assert m["cores"] >= 1 and m["versions"]["torch"] and m["versions"]["onnxruntime"]
    assert isinstance(m["cpu_flags"], list) and "native_bf16" in m["torch_cpu"]
    assert result["command"] == (f"python -m benchmarks --smoke --edge-variants scratch --out {out}")
    for name in SECTIONS:
        assert result["seconds"][name] >= 0
        load = result["load"][name]
        assert set(load) == {"before", "after"}
        assert load["before"] is None or len(load["before"]) == 3


def test_the_suite_runs_from_another_folder(tmp_path):
    """Installed with the package: `python -m pix2pix_edge.benchmarks` from any folder."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = tmp_path / "results"
    r = subprocess.run([sys.executable, "-m", "pix2pix_edge.benchmarks", "--smoke", "--only", "frames",
                        "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[1/1] frames: starting" in r.stderr and "[1/1] frames: done" in r.stderr   # progress
    (path,) = out.glob("smoke-*.json")
    result = json.loads(path.read_text())
    assert result["command"] == f"python -m pix2pix_edge.benchmarks --smoke --only frames --out {out}"
    assert result["cwd"] == str(tmp_path) and result["sections"]["frames"]["rows"]
    assert (out / "RESULTS.md").is_file()
    help_text = subprocess.run([sys.executable, "-m", "pix2pix_edge.benchmarks", "--help"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=120).stdout
    assert "--reference-dir" in help_text and "well under a minute" in help_text


def test_the_reference_section_skips_with_its_reason(tmp_path):
    assert "--reference-dir" in reference.run("smoke")["skipped"]
    assert "not a checkout" in reference.run("smoke", reference_dir=tmp_path)["skipped"]
    (tmp_path / "train.py").write_text("")
    (tmp_path / "options").mkdir()
    why = reference.run("smoke", reference_dir=tmp_path)["skipped"]
    for word in ("no Python for the reference", "torchvision", "dominate", "visdom",
                 "--reference-python", "download.pytorch.org/whl/cpu"):
        assert word in why, (word, why)
    # a Python that lacks the reference's imports: says which
    why = reference.run("smoke", reference_dir=tmp_path, reference_python_path=sys.executable)["skipped"]
    assert "lacks" in why and "dominate" in why


FAKE_TRAIN = '''import argparse, sys, time
ap = argparse.ArgumentParser()
for flag in ("--dataroot", "--name", "--checkpoints_dir", "--model", "--direction", "--max_dataset_size",
             "--print_freq", "--n_epochs", "--n_epochs_decay", "--display_id", "--gpu_ids"):
    ap.add_argument(flag)
ap.add_argument("--no_html", action="store_true")
a = ap.parse_args()
assert a.model == "pix2pix" and a.direction == "BtoA" and a.gpu_ids == "-1" and a.display_id == "0"
for i in range(int(a.max_dataset_size)):
    print("(epoch: 1, iters: %d, time: 0.010, data: 0.002) G_GAN: 0.700" % (i + 1))
'''


def test_the_reference_section_times_a_checkout_side_by_side(tmp_path):
    """With a (stand-in) checkout and a Python that has its imports: the reference's own command
    line, its printed per-iteration times, ours interleaved, ratios within the run."""
    if not (FACADES / "train").is_dir():
        pytest.skip(f"facades not found at {FACADES}")
    ref = tmp_path / "ref"
    (ref / "options").mkdir(parents=True)
    (ref / "train.py").write_text(FAKE_TRAIN)
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("torchvision", "dominate", "visdom"):
        (stubs / f"{name}.py").write_text("__version__ = 'stub'\n")
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nPYTHONPATH={stubs} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    result = reference.run("smoke", reference_dir=ref, reference_python_path=python)
    assert "rows" in result, result
    rows = {r["variant"]: r for r in result["rows"]}
    assert set(rows) == {reference.REFERENCE, *reference.OURS}
    assert rows[reference.REFERENCE]["s_per_iter_median"] == pytest.approx(0.012)
    assert rows[reference.REFERENCE]["wall_vs_reference"] == 1.0
    for r in rows.values():
        assert r["wall_s_median"] > 0 and r["processes"] == 1
    cmd = result["commands"][reference.REFERENCE]
    assert "--max_dataset_size 3" in cmd and "--print_freq 1" in cmd and "--n_epochs 1" in cmd
    assert "--amp off" in result["commands"]["ours, FP32 (--amp off)"]


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


def test_every_section_is_called_the_same_way():
    """Each section module has ``run(level, **opts) -> dict``; the suite calls exactly that."""
    import importlib
    import inspect

    for name, module in SECTIONS.items():
        params = list(inspect.signature(importlib.import_module(f"benchmarks.{module}").run).parameters.values())
        assert params[0].name == "level", name
        assert all(p.kind is p.VAR_KEYWORD or p.default is not inspect.Parameter.empty
                   for p in params[1:]), name


def test_unknown_section_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--smoke", "--only", "inference,frobnicate", "--out", str(tmp_path)])
    assert e.value.code == 2


def _run(date, sections, **extra):
    return {"suite": "pix2pix-edge benchmarks", "level": "full", "command": f"python -m benchmarks {date}",
            "machine": {"date": f"{date} 10:00:00 UTC", "cpu": "CPU", "cores": 2, "cpu_flags": ["avx2"]},
            "sections": sections, "seconds": {n: 1.0 for n in sections}, **extra}


def test_merge_takes_each_section_from_the_newest_run_that_measured_it(tmp_path):
    old = _run("2026-01-01", {"inference": {"rows": [1]}, "train": {"rows": ["old"]},
                              "int8": {"rows": ["kept"]}})
    gone = _run("2026-01-02", {"train": {"rows": ["middle"]}})
    new = _run("2026-01-03", {"train": {"rows": ["new"]}, "int8": {"error": "boom"},
                              "reference": {"skipped": "no checkout"}})
    runs = [(tmp_path / f"full-{i}.json", r) for i, r in enumerate((old, gone, new))]
    merged = report.merge(runs)
    assert merged["sections"]["train"] == {"rows": ["new"]}
    assert merged["sections"]["int8"] == {"rows": ["kept"]}        # a failure replaces no figures
    assert merged["sections"]["reference"] == {"skipped": "no checkout"}
    assert merged["source"]["train"]["file"] == "full-2.json"
    assert merged["source"]["inference"]["date"] == "2026-01-01"
    assert [p.name for p in merged["stale"]] == ["full-1.json"]    # gives no section any more
    assert [(r["file"], r["sections"]) for r in merged["runs"]] == [
        ("full-0.json", ["inference", "int8"]), ("full-2.json", ["train", "reference"])]


def test_update_deletes_stale_files_and_rewrites_the_blocks(tmp_path):
    results, repo = tmp_path / "results", tmp_path / "repo"
    results.mkdir()
    (repo / "docs").mkdir(parents=True)
    rows = [{"variant": "fp32", "median_s": 0.5, "ratio_to_reference_like": 1.0, "n": 3,
             "default": True}]
    (results / "full-a.json").write_text(json.dumps(_run("2026-01-01", {"train": {"rows": rows}})))
    (results / "full-b.json").write_text(json.dumps(_run("2026-01-02", {"train": {"rows": rows}})))
    (results / "quick-c.json").write_text(json.dumps(dict(_run("2026-01-03", {}), level="quick")))
    (repo / "README.md").write_text("x\n<!-- generated: summary (benchmarks/report.py; do not edit) -->\n"
                                    "hand-written 9.99 s/it\n<!-- end generated: summary -->\ny\n")
    (repo / "docs" / "page.md").write_text("no blocks\n")
    report.update(results, repo)
    assert sorted(p.name for p in results.glob("*.json")) == ["full-b.json", "quick-c.json"]
    readme = (repo / "README.md").read_text()
    assert "9.99" not in readme and "0.500 s/it default (fp32)" in readme and "`full-b.json`" in readme
    assert readme.startswith("x\n") and readme.endswith("<!-- end generated: summary -->\ny\n")
    assert report.stale_blocks(report.merge(report.result_files(results)), repo) == []
