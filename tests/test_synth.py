"""pix2pix_edge.train.synth: the procedural facades dataset (deterministic, CMP palette, learnable, no torch)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pix2pix_edge.train.synth import (BACKGROUND, CLASSES, DOOR, FACADE, PALETTE, WINDOW, make_dataset,
                         render_pair)


def _classes(labels: np.ndarray) -> np.ndarray:
    """Label colours -> class indices (exact: the synthetic maps are lossless PNG)."""
    match = (labels[:, :, None, :] == PALETTE[None, None]).all(-1)
    assert match.any(-1).all(), "a label pixel is not a palette colour"
    return match.argmax(-1)


def test_render_pair_is_a_building_in_the_cmp_palette():
    rng = np.random.default_rng(0)
    for size in (64, 128, (96, 160)):
        labels, photo = render_pair(rng, size)
        h, w = (size, size) if isinstance(size, int) else size
        assert labels.shape == photo.shape == (h, w, 3)
        assert labels.dtype == photo.dtype == np.uint8
        cls = _classes(labels)
        present = set(np.unique(cls))
        assert {FACADE, WINDOW, DOOR} <= present
        assert (cls == FACADE).mean() > 0.2


def test_photo_follows_the_labels():
    """Each class has its own look, so labels -> photo is learnable: glass is darker than
    the wall, and a class's pixels agree with each other far better than with the image."""
    rng = np.random.default_rng(1)
    darker, spread = [], []
    for _ in range(12):
        labels, photo = render_pair(rng, 96)
        cls = _classes(labels)
        lum = photo.astype(np.float32).mean(-1)
        darker.append(lum[cls == WINDOW].mean() < lum[cls == FACADE].mean())
        within = np.mean([lum[cls == c].std() for c in np.unique(cls) if (cls == c).sum() > 50])
        spread.append(within / lum.std())
    assert np.mean(darker) >= 0.75
    assert np.median(spread) < 0.8


def test_same_seed_same_bytes_and_layout(tmp_path):
    def digests(folder):
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*.png"))}

    a = make_dataset(tmp_path / "a", n=3, size=48, seed=7, val=2)
    b = make_dataset(tmp_path / "b", n=4, size=48, seed=7, val=2)
    c = make_dataset(tmp_path / "c", n=3, size=48, seed=8)
    da, db, dc = digests(a), digests(b), digests(c)
    assert sorted(da) == ["train/000001.png", "train/000002.png", "train/000003.png",
                          "val/000001.png", "val/000002.png"]
    assert all(db[k] == v for k, v in da.items())          # more pairs keep the first ones
    assert dc["train/000001.png"] != da["train/000001.png"]  # another seed, another dataset
    assert da["val/000001.png"] != da["train/000001.png"]    # val is not a copy of train
    im = Image.open(a / "train" / "000001.png")
    assert im.size == (96, 48) and im.mode == "RGB"           # [labels | photo]
    _classes(np.asarray(im)[:, :48])                          # the left half is the label map
    assert (a / "synth.json").is_file()


def test_worker_processes_write_the_same_bytes(tmp_path):
    one = make_dataset(tmp_path / "one", n=16, size=32, seed=3, workers=1)
    two = make_dataset(tmp_path / "two", n=16, size=32, seed=3, workers=2)
    for f in sorted((one / "train").glob("*.png")):
        assert f.read_bytes() == (two / "train" / f.name).read_bytes()


def test_synth_loads_as_a_labels_to_photo_dataset(tmp_path):
    from pix2pix_edge.train.data import PairedDataset, label_side, list_pairs

    make_dataset(tmp_path, n=4, size=64, seed=0)
    ds = PairedDataset(tmp_path, load_size=72, crop_size=64)
    assert len(ds) == 4 and not ds.bad_files and not ds.notes
    assert label_side(list_pairs(tmp_path)) == "A"            # AtoB = labels -> photo


def test_no_torch_needed(tmp_path):
    """``pix2pix data synth`` runs with numpy and PIL only."""
    code = ("import sys; from pix2pix_edge.runtime.cli import main; "
            f"sys.argv = ['pix2pix', 'data', 'synth', {str(tmp_path)!r}, '--n', '2', '--size', "
            "'32', '--val', '1']\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "wrote 2 pairs of [labels | photo] at 32x32" in out.stdout
    assert len(list((tmp_path / "train").glob("*.png"))) == 2
    assert len(list((tmp_path / "val").glob("*.png"))) == 1


def test_palette_matches_the_real_facades(facades_dir):
    """Every palette colour is the centre of a cluster of real label pixels (JPEG-blurred)."""
    files = sorted((facades_dir / "train").glob("*.jpg"))[::20]
    px = np.concatenate([np.asarray(Image.open(f))[:, 256:].reshape(-1, 3)[::3] for f in files])
    px = px.astype(np.int32)
    d = np.abs(px[:, None, :] - PALETTE.astype(np.int32)[None]).max(-1)
    nearest, dist = d.argmin(1), d.min(1)
    for c, name in enumerate(CLASSES):
        close = px[(nearest == c) & (dist <= 20)]
        assert len(close) > 50, f"{name}: no real label pixels near {PALETTE[c]}"
        assert np.abs(np.median(close, 0) - PALETTE[c]).max() <= 8, name
    assert (dist <= 40).mean() > 0.6


def test_too_small_is_refused():
    with pytest.raises(ValueError, match="at least 16x16"):
        render_pair(np.random.default_rng(0), 8)
    assert BACKGROUND == 0
