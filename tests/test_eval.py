"""pix2pix eval: the metrics against hand-checked values, and the files a real evaluation writes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.train.evaluate import psnr_per_image, ssim_per_image, l1_per_image


def naive_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two HxW [0, 1] images by explicit loops over every 11x11 window (Wang et al.)."""
    r = np.arange(11) - 5
    g = np.exp(-r ** 2 / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 24, 24)
    assert torch.allclose(ssim_per_image(x, x), torch.ones(2), atol=1e-6)


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = 0.2, 0.6
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    expected = (2 * a * b + 0.01 ** 2) / (a ** 2 + b ** 2 + 0.01 ** 2)  # sigmas are 0
    assert ssim_per_image(x, y).item() == pytest.approx(expected, abs=1e-6)


def test_ssim_matches_the_window_by_window_definition():
    rng = np.random.default_rng(0)
    x = rng.random((20, 22))
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    got = ssim_per_image(torch.tensor(x)[None, None], torch.tensor(y)[None, None]).item()
    assert got == pytest.approx(naive_ssim(x, y), abs=1e-5)
    assert 0.1 < got < 0.9


def test_psnr_and_l1_known_values():
    x, y = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.1)
    assert psnr_per_image(x, y).item() == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert l1_per_image(x, y).item() == pytest.approx(0.1)
    assert psnr_per_image(x, x).item() == 100.0  # capped, stays valid JSON


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny real run (depth 5) on synthetic data with a val split."""
    from pix2pix_edge.train.loop import TrainOptions, train
    from pix2pix_edge.train.synth import make_dataset
    root = tmp_path_factory.mktemp("eval")
    data = make_dataset(root / "d", n=4, size=32, seed=3, val=3)
    train(TrainOptions(data=str(data), run=str(root / "run"), depth=5, ngf=4, ndf=4, load_size=36,
                       crop_size=32, workers=0, progress=False, tensorboard=False, threads=1,
                       amp="off", max_iters=4))
    return data, root / "run"


def test_eval_writes_metrics_html_and_grid(trained, tmp_path):
    data, run = trained
    out = tmp_path / "ev"
    r = CliRunner().invoke(cli, ["eval", str(run), str(data), "--split", "val", "--norm-mode", "both",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "FID and LPIPS skipped" in r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 3 and m["split"] == "val" and m["recorded_norm_mode"] == "per-image"
    assert set(m["metrics"]) == {"per-image", "running"}
    for mode, v in m["metrics"].items():
        assert v["n"] == 3 and 0 < v["l1"] < 1 and 0 < v["psnr"] < 100 and -1 < v["ssim"] < 1
        assert math.isclose(v["psnr"], np.mean([row["psnr"] for row in m["per_image"][mode]]), rel_tol=1e-6)
    # the two BatchNorm modes are different functions of the same weights
    assert m["metrics"]["per-image"]["l1"] != m["metrics"]["running"]["l1"]
    from PIL import Image
    assert Image.open(out / "grid_per-image.png").size == (3 * 32, 3 * 32)
    html = (out / "index.html").read_text()
    assert "grid_running.png" in html and "PSNR" in html


def test_eval_uses_the_shared_inference_definition(trained):
    """The recorded mode is what inference_copy computes: recompute one image's PSNR by hand."""
    from pix2pix_edge.train.checkpoint import load_generator
    from pix2pix_edge.train.data import PairedDataset
    from pix2pix_edge.train.evaluate import evaluate, to_unit
    from pix2pix_edge.train.models import inference_copy
    data, run = trained
    m = evaluate(run, data, split="val", log=lambda *_: None)
    G, _ = load_generator(run)
    ds = PairedDataset(data, "val", load_size=32, crop_size=32, augment=False)
    with torch.no_grad():
        out = to_unit(inference_copy(G, "per-image")(ds[0]["A"][None]))
    assert psnr_per_image(out, to_unit(ds[0]["B"][None])).item() == pytest.approx(
        m["per_image"]["per-image"][0]["psnr"], abs=1e-4)
    assert (run / "eval" / "metrics.json").is_file()


def test_eval_errors(trained, tmp_path):
    data, run = trained
    r = CliRunner().invoke(cli, ["eval", str(tmp_path), str(data)])
    assert r.exit_code == 3 and "has no generator.pt" in r.output
    r = CliRunner().invoke(cli, ["eval", str(run), str(data), "--split", "test"])
    assert r.exit_code == 3 and "--holdout-last" in r.output and "Traceback" not in r.output
    # the run held nothing out: its last 2 training pairs are pairs it trained on
    args = ["eval", str(run), str(data), "--split", "train", "--holdout-last", "2", "--out",
            str(tmp_path / "h")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and "--allow-trained-pairs" in r.output
    assert "2 of these 2 pairs were trained on" in r.output
    r = CliRunner().invoke(cli, args + ["--allow-trained-pairs"])
    assert r.exit_code == 0, r.output
    assert "2 pairs, 2 of them trained on" in r.output
    m = json.loads((tmp_path / "h" / "metrics.json").read_text())
    assert m["n"] == 2 and m["trained_pairs"] == 2
