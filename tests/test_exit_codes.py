"""The README's exit-code table, shown by the commands themselves: one table of
(command line, exit code, message fragment), each a one-line ``Error: ...``, never a traceback.

Placeholders: {model} a tiny ONNX model with metadata (64x64 RGB [-1, 1]), {video} a short video,
{data} a tiny synthetic dataset, {empty} an empty folder, {notgen} a torch file that holds no
generator, {contra} {model} with metadata that contradicts its graph, {noise} random bytes named
.engine (no record), {tmp} a scratch folder. Rows a CPU cannot show (GStreamer or TensorRT
present, a /dev/video9 here) are skipped where they cannot happen. Crafted model files:
tests/test_crafted.py. `eval` and `distill` rows: their own
tests (and the lead's merge).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.video import has_gstreamer

REPO = Path(__file__).resolve().parents[1]
TINY_TRAIN = ["--depth", "5", "--ngf", "4", "--ndf", "4", "--load-size", "36", "--crop-size",
              "32", "--workers", "0", "--no-progress", "--no-tensorboard", "--amp", "off",
              "--threads", "1"]


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


RUN = ["run", "{model}", "--source", "{video}", "--headless"]
TABLE = [
    # 2: a bad command line -- unknown option, out-of-range or malformed value, contradiction
    (["run", "{model}", "--source", "{video}", "--threads", "0"], 2, "--threads"),
    ([*RUN, "--max-frames", "0"], 2, "--max-frames"),
    ([*RUN, "--size", "big"], 2, "bad size --size 'big'"),
    ([*RUN, "--fit", "zoom"], 2, "--fit"),
    (["run", "{model}", "--source", "{video}", "--headless", "--output", "display://0"], 2,
     "--headless and --output display://... contradict each other"),
    ([*RUN, "--color-order", "BGR"], 2, "--color-order BGR: tiny.onnx carries pix2pix-edge "
                                        "metadata that says RGB"),
    (["bench", "{model}", "--range", "0,1", "--runs", "1"], 2, "--range 0,1"),
    (["bench", "{model}", "--batch", "0"], 2, "bad --batch '0'"),
    (["bench", "{model}", "--sizes", "12x"], 2, "bad size --sizes '12x'"),
    (["bench", "{model}", "--warmup", "-1"], 2, "--warmup"),
    (["info", "{model}", "--backend", "openvino"], 2, "--backend"),
    (["data", "synth", "{tmp}/s", "--size", "8"], 2, "--size"),
    (["data", "check", "{data}", "--show", "0"], 2, "--show"),
    (["data", "download", "imagenet"], 2, "NAME"),
    (["data", "download", "facades", "--to", "{tmp}/dl", "--sha256", "abc"], 2,
     "--sha256 must be 64 hexadecimal digits"),
    (["train", "{data}", "--ngf", "0"], 2, "--ngf"),
    (["train", "{data}", "--max-iters", "-1"], 2, "--max-iters"),
    (["train", "{data}", "--holdout-last", "2", "--holdout-every", "3"], 2,
     "hold out one way, not both"),
    (["eval", "{tmp}/run", "{data}", "--holdout-last", "-1"], 2, "--holdout-last"),
    (["eval", "{tmp}/run", "{data}", "--norm-mode", "eval"], 2, "--norm-mode"),
    (["distill", "{tmp}/run", "{data}", "--lambda-teacher", "-1"], 2, "--lambda-teacher"),
    (["export", "onnx", "{notgen}", "-o", "{tmp}/m.onnx", "--opset", "16"], 2, "--opset"),
    (["export", "onnx", "{notgen}", "-o", "{tmp}/m.onnx", "--size", "64,32"], 2,
     "bad size --size '64,32'"),
    (["export", "onnx", "{notgen}", "-o", "{tmp}/m.onnx", "--threads", "0"], 2, "--threads"),
    (["export", "trt", "{model}", "--workspace", "0"], 2, "--workspace"),
    (["export", "onnx", "{notgen}", "-o", "{tmp}/m.onnx", "--fp16-io"], 2, "--fp16-io needs --fp16"),
    (["export", "onnx", "{notgen}", "-o", "{tmp}/m.onnx", "--int8"], 2, "--int8 needs --calib"),
    (["export", "trt", "{model}", "--min", "x"], 2, "bad size --min 'x'"),
    # 3: bad input -- missing / corrupt data, video sources, sizes that do not fit
    (["run", "{model}", "--source", "{tmp}/missing.mp4", "--headless"], 3, "source not found"),
    ([*RUN, "--size", "128"], 3, "fixed input size 64x64"),
    (["run", "{tmp}/none.onnx", "--source", "{video}", "--headless"], 3, "model file not found"),
    (["data", "check", "{empty}"], 3, "no usable image pairs"),
    (["train", "{tmp}/nodata"], 3, "dataset folder not found"),
    (["data", "check", "{tmp}/nodata"], 3, "dataset folder not found"),   # 2 before issue 21
    (["demo", "--video", "{tmp}/none.mp4", "--out", "{tmp}/demo"], 3, "video not found"),
    (["run", "{model}", "--source", "{video}", "--output", "{video}"], 3,
     "is the source: writing it would destroy it"),
    (["run", "{model}", "--source", "{video}", "--headless", "--stats-json", "{model}"], 3,
     "is the model: writing it would destroy it"),
    pytest.param(["run", "{model}", "--source", "{video}", "--output", "/dev/full"], 3,
                 "output /dev/full exists and is not a folder",
                 marks=pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")),
    # 4: a model of the wrong kind
    (["export", "onnx", "{notgen}", "-o", "{tmp}/m.onnx"], 4, "notgen.pt"),
    (["info", "{contra}"], 4, "contra.onnx: the model's input is fixed at 1x3x64x64 but its "
                              "metadata says 128x128"),
    (["run", "{contra}", "--source", "{video}", "--headless"], 4, "its metadata says 128x128"),
    (["run", "{notgen}", "--source", "{video}", "--headless"], 4,
     "notgen.pt is a PyTorch file, which the runtime does not run: export it first"),
    # 5: unavailable hardware or library
    pytest.param(["run", "{model}", "--source", "/dev/video9", "--headless"], 5,
                 "camera /dev/video9 not found",
                 marks=pytest.mark.skipif(os.path.exists("/dev/video9"), reason="a /dev/video9")),
    pytest.param(["run", "{model}", "--source", "csi://0", "--headless"], 5,
                 "csi://0 needs OpenCV built with GStreamer",
                 marks=pytest.mark.skipif(has_gstreamer(), reason="OpenCV has GStreamer")),
    pytest.param(["export", "trt", "{model}", "-o", "{tmp}/m.engine"], 5,
                 "TensorRT is not installed",
                 marks=pytest.mark.skipif(_has("tensorrt"), reason="TensorRT is installed")),
    pytest.param(["info", "{noise}"], 5, "cannot tell what noise.engine is: no record beside it",
                 marks=pytest.mark.skipif(_has("tensorrt"), reason="TensorRT is installed")),
    # 6: a check failed
    (["train", "{data}", "--run", "{tmp}/run", *TINY_TRAIN, "--lr", "1e30", "--max-iters", "20",
      "--norm", "none"], 6, "diverged at iteration"),
]


@pytest.fixture(scope="module")
def places(tiny_onnx, tmp_path_factory):
    import cv2
    import numpy as np

    from pix2pix_edge.train.synth import make_dataset

    root = tmp_path_factory.mktemp("exit_codes")
    video = str(root / "clip.avi")
    w = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 24, (96, 64))
    for i in range(4):
        w.write(np.full((64, 96, 3), i * 40, np.uint8))
    w.release()
    (root / "empty").mkdir()
    (root / "noise.engine").write_bytes(bytes(range(256)) * 4)   # no record beside it
    contra = root / "contra.onnx"      # metadata that contradicts the graph (64x64)
    if _has("onnx"):
        import onnx

        from pix2pix_edge.runtime.model_info import METADATA_KEY, ModelInfo
        model = onnx.load(str(tiny_onnx))
        for prop in model.metadata_props:
            if prop.key == METADATA_KEY:
                prop.value = ModelInfo(height=128, width=128, multiple=32, depth=5).to_json()
        onnx.save(model, str(contra))
    notgen = root / "notgen.pt"
    if _has("torch"):
        import torch
        torch.save({"foo": 1}, notgen)
    return {"model": str(tiny_onnx), "video": video, "empty": str(root / "empty"),
            "data": str(make_dataset(root / "data", n=4, size=32, seed=0)),
            "notgen": str(notgen), "contra": str(contra), "noise": str(root / "noise.engine"),
            "tmp": str(root)}


@pytest.mark.parametrize("argv, code, fragment", TABLE,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_exit_code_table(places, tmp_path, argv, code, fragment):
    if any("{notgen}" in a or a == "train" for a in argv):
        pytest.importorskip("torch")
    if any("{contra}" in a for a in argv):
        pytest.importorskip("onnx")
    scratch = dict(places, tmp=str(tmp_path))
    r = CliRunner().invoke(cli, [a.format(**scratch) for a in argv])
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert r.exit_code == code, r.output
    assert len(lines) == 1 and fragment in lines[0], r.output
    assert "Traceback" not in r.output


def _readme_codes() -> set[int]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("\n\n", 2)[1]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", table, flags=re.M)}


def test_the_table_mirrors_the_readme():
    shown = {row.values[1] if hasattr(row, "values") else row[1] for row in TABLE}
    readme = _readme_codes()
    assert {0, 1, 2, 3, 4, 5, 6, 129, 130, 143} <= readme
    assert shown <= readme
    assert {2, 3, 4, 5, 6} <= shown
