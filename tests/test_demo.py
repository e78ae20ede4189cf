"""`pix2pix demo` (what `make demo` runs) end to end, shortened: every step for real, in seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.videos import count_frames

REPO = Path(__file__).resolve().parents[1]


def test_demo_runs_every_step_and_writes_what_it_lists(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "pix2pix_edge.runtime.cli", "demo", "--out", str(out),
                           "--minutes", "0.05", "--pairs", "16", "--ngf", "4"],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for step in range(1, 8):
        assert f"== {step}/7 " in proc.stdout
    assert "Demo finished" in proc.stdout and "Traceback" not in proc.stderr
    assert len(list((out / "data" / "train").glob("*.png"))) == 16
    assert (out / "run" / "generator.pt").is_file() and list((out / "run" / "samples").glob("*.png"))
    metrics = json.loads((out / "run" / "eval" / "metrics.json").read_text())
    m = metrics["metrics"]["per-image"]
    assert metrics["n"] == m["n"] == 24 and 5 < m["psnr"] < 60 and 0 < m["ssim"] <= 1
    assert (out / "model.onnx").is_file() and (out / "model_fp16.onnx").is_file()
    n_in = count_frames(out / "street_labels.mp4")
    assert n_in > 0 and count_frames(out / "translated.mp4") == n_in
    bench = json.loads((out / "bench.json").read_text())
    assert bench["video"]["frames"] == n_in and bench["results"][0]["fps"] > 0
