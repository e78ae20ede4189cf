"""train.data and ``pix2pix data check``: layouts, the bad-file scan, augmentation, determinism.

Every bad file here is a real file on disk (corrupt bytes, truncated JPEG/PNG, text named .jpg,
...), decoded by PIL exactly as in training."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput
from pix2pix_edge.train.data import (PairedDataset, Pair, label_side, list_pairs, natural_sorted, scan,
                        scan_report, split_holdout)


def _texture(w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a).convert(mode)


def _aligned(path, w=32, h=32, seed=0, same=False, fmt=None):
    """An aligned [A | B] file; ``same``: identical halves (to check joint augmentation)."""
    a = _texture(w, h, seed)
    b = a if same else _texture(w, h, seed + 1000)
    ab = Image.new("RGB", (2 * w, h))
    ab.paste(a, (0, 0))
    ab.paste(b, (w, 0))
    ab.save(path, format=fmt)
    return path


@pytest.fixture
def messy(tmp_path):
    """root/train with 3 good aligned pairs, 3 convertible ones and one of every bad kind."""
    d = tmp_path / "train"
    d.mkdir()
    for i in (1, 2, 10):
        _aligned(d / f"{i}.png", seed=i)
    _texture(64, 32, 3, "L").save(d / "gray.png")
    _texture(64, 32, 4, "RGBA").save(d / "rgba.png")
    _texture(64, 32, 5).convert("P").save(d / "palette.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    buf = io.BytesIO()
    _texture(64, 32, 6).save(buf, format="JPEG", quality=90)
    (d / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    _texture(64, 32, 7).save(buf, format="PNG")
    (d / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    data = bytearray(buf.getvalue())                       # a whole PNG, damaged inside
    at = data.index(b"IDAT") + 40
    data[at:at + 20] = bytes(20)
    (d / "damaged.png").write_bytes(bytes(data))
    (d / "notes.jpg").write_text("this is not a picture\n")
    (d / "empty.png").write_bytes(b"")
    _texture(63, 32, 8).save(d / "odd.png")
    _texture(20, 8, 9).save(d / "tiny.png")
    (d / "readme.txt").write_text("ignored: not an image extension")
    return tmp_path


def test_natural_sort():
    assert natural_sorted(["10.jpg", "2.jpg", "1.jpg", "a10", "a9"]) == \
        ["1.jpg", "2.jpg", "10.jpg", "a9", "a10"]


def test_scan_names_every_bad_file_with_its_reason(messy):
    notes = []
    good, bad = scan(messy, "train", notes=notes)
    assert [p.name for p in good] == ["1", "2", "10", "gray", "palette", "rgba"]
    reasons = {path.rsplit("/", 1)[1]: reason for path, reason in bad}
    assert set(reasons) == {"corrupt.png", "damaged.png", "truncated.jpg", "truncated.png",
                            "notes.jpg", "empty.png", "odd.png", "tiny.png"}
    assert "not an image" in reasons["notes.jpg"]
    assert reasons["truncated.jpg"].startswith("truncated")
    assert reasons["truncated.png"].startswith("truncated")
    assert "not an image" in reasons["corrupt.png"]            # PNG magic, then garbage
    assert reasons["damaged.png"].startswith("corrupt or unreadable (broken data stream")
    assert reasons["empty.png"] == "empty file"
    assert reasons["odd.png"].startswith("odd width 63")
    assert reasons["tiny.png"].startswith("too small: each half is 10x8")
    converted = {path.rsplit("/", 1)[1]: note for path, note in notes}
    assert converted == {"gray.png": "grayscale (L) converted to RGB",
                         "rgba.png": "RGBA converted to RGB (alpha channel dropped)",
                         "palette.png": "palette image converted to RGB"}


def test_skip_keeps_the_good_pairs_and_error_names_the_first_bad_file(messy):
    ds = PairedDataset(messy, load_size=36, crop_size=32)
    assert len(ds) == 6 and len(ds.bad_files) == 8
    for i in range(len(ds)):  # converted images come out as 3-channel tensors too
        item = ds[i]
        assert item["A"].shape == item["B"].shape == (3, 32, 32)
    with pytest.raises(BadInput) as e:
        PairedDataset(messy, load_size=36, crop_size=32, on_bad_file="error")
    msg = str(e.value)
    assert msg.startswith(f"bad input file {messy / 'train'}/") and "(and 7 more bad files)" in msg
    assert "\n" not in msg


def test_paired_folders_match_by_stem_and_report_missing_halves(tmp_path):
    a, b = tmp_path / "train" / "A", tmp_path / "train" / "B"
    a.mkdir(parents=True)
    b.mkdir()
    for i in range(3):
        _texture(40, 24, i).save(a / f"{i}.png")
        _texture(40, 24, i + 9).save(b / f"{i}.jpg")    # the extension may differ
    _texture(40, 24, 5).save(a / "lonely.png")            # no B half
    _texture(40, 24, 6).save(b / "orphan.png")            # no A half
    _texture(40, 24, 7).save(a / "mismatch.png")
    _texture(48, 24, 7).save(b / "mismatch.png")          # B is wider
    good, bad = scan(tmp_path)
    assert [p.name for p in good] == ["0", "1", "2"]
    assert all(not p.aligned for p in good)
    reasons = dict(bad)
    assert reasons[str(a / "lonely.png")] == "missing half: no B/lonely.* to pair it with"
    assert reasons[str(b / "orphan.png")] == "missing half: no A/orphan.* to pair it with"
    assert reasons[str(a / "mismatch.png")] == f"A is 40x24 but B ({b / 'mismatch.png'}) is 48x24"
    ds = PairedDataset(tmp_path, load_size=(24, 40), crop_size=(16, 32))
    assert ds[0]["A"].shape == (3, 16, 32)                # non-square sizes work
    # Without augmentation the tensors are exactly the files, scaled to [-1, 1].
    ds = PairedDataset(tmp_path, crop_size=(24, 40), augment=False)
    want = np.asarray(Image.open(b / "1.jpg").convert("RGB"), np.float32) / 127.5 - 1
    assert torch.allclose(ds[1]["B"], torch.from_numpy(want.transpose(2, 0, 1)), atol=1e-6)


def test_layout_discovery(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    _aligned(flat / "x.png")
    assert [p.name for p in list_pairs(flat)] == ["x"]            # images directly in root
    assert [p.name for p in list_pairs(flat, "val")] == ["x"]     # no split folders at all
    split = tmp_path / "split"
    (split / "train").mkdir(parents=True)
    _aligned(split / "train" / "y.png")
    with pytest.raises(BadInput, match=r"no 'val' split in .*split \(found: train\)"):
        list_pairs(split, "val")
    with pytest.raises(BadInput, match="dataset folder not found"):
        list_pairs(tmp_path / "nope")
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(BadInput, match="no usable image pairs in .*empty"):
        PairedDataset(tmp_path / "empty")
    flat = tmp_path / "flat_bad"        # no split folders: the folder itself is read
    flat.mkdir()
    (flat / "bad.png").write_bytes(b"not an image")
    with pytest.raises(BadInput, match="no usable image pairs in ") as e:
        PairedDataset(flat)
    assert f"in {flat} (" in str(e.value) and "flat_bad/train" not in str(e.value)   # issue 21


def test_direction_and_value_range(tmp_path):
    ab = Image.new("RGB", (64, 32))
    ab.paste((255, 0, 0), (0, 0, 32, 32))      # A: red
    ab.paste((0, 0, 255), (32, 0, 64, 32))     # B: blue
    ab.save(tmp_path / "1.png")
    item = PairedDataset(tmp_path, crop_size=32, augment=False)[0]
    assert item["A"][0].min() == 1 and item["A"][2].max() == -1
    assert item["path"] == str(tmp_path / "1.png")
    swapped = PairedDataset(tmp_path, crop_size=32, augment=False, direction="BtoA")[0]
    assert torch.equal(swapped["A"], item["B"]) and torch.equal(swapped["B"], item["A"])
    with pytest.raises(BadInput, match="direction must be AtoB or BtoA"):
        PairedDataset(tmp_path, direction="AB")
    with pytest.raises(BadInput, match="crop size 64 is larger than load size 32"):
        PairedDataset(tmp_path, load_size=32, crop_size=64)


def test_augmentation_is_joint_and_a_function_of_seed_epoch_index(tmp_path):
    for i in range(4):
        _aligned(tmp_path / f"{i}.png", w=48, h=48, seed=i, same=True)
    ds = PairedDataset(tmp_path, load_size=48, crop_size=32, seed=3)
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert torch.equal(item["A"], item["B"])   # same crop, same flip for both halves
            seen.add(item["A"].numpy().tobytes())
    assert len(seen) > 20                              # epochs and indices differ
    ds.set_epoch(2)
    first = ds[1]["A"]
    other = PairedDataset(tmp_path, load_size=48, crop_size=32, seed=3)
    other.set_epoch(2)
    assert torch.equal(other[1]["A"], first)            # a fresh dataset (a resume) agrees
    other = PairedDataset(tmp_path, load_size=48, crop_size=32, seed=4)
    other.set_epoch(2)
    assert not torch.equal(other[1]["A"], first)        # another seed does not


def test_same_batches_with_any_number_of_workers(tmp_path):
    for i in range(6):
        _aligned(tmp_path / f"{i}.png", w=40, h=40, seed=i)
    ds = PairedDataset(tmp_path, load_size=40, crop_size=32, seed=1)

    def batches(workers):
        ds.set_epoch(5)
        g = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True, generator=g,
                                             num_workers=workers)
        return [b["A"] for b in loader]

    zero, two = batches(0), batches(2)
    assert len(zero) == 3 and all(torch.equal(x, y) for x, y in zip(zero, two))


def test_file_corrupted_after_the_scan(tmp_path):
    """skip: warn, record, and hand back the next good pair; error: BadInput naming the file."""
    for i in range(1, 5):
        _aligned(tmp_path / f"{i}.png", seed=i)
    skip = PairedDataset(tmp_path, load_size=36, crop_size=32)
    error = PairedDataset(tmp_path, load_size=36, crop_size=32, on_bad_file="error")
    broken = tmp_path / "2.png"
    broken.write_bytes(broken.read_bytes()[:60])              # truncated mid-training

    with pytest.warns(RuntimeWarning, match=r"skipping cannot read image .*2\.png"):
        item = skip[1]
    assert item["path"] == str(tmp_path / "3.png")
    assert skip.bad_files and skip.bad_files[0][0] == str(broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loader = torch.utils.data.DataLoader(skip, batch_size=2, num_workers=0)
        assert sum(len(b["path"]) for b in loader) == 4       # a whole epoch still runs

    for workers in (0, 1):  # from a worker process too, the error stays one clean line
        with pytest.raises(BadInput) as e:
            for _ in torch.utils.data.DataLoader(error, batch_size=1, num_workers=workers):
                pass
        assert str(e.value).startswith(f"cannot read image {broken}: ") and "\n" not in str(e.value)
    r = CliRunner().invoke(cli, ["data", "check", str(tmp_path)])
    assert r.exit_code == 0 and f"{broken}: truncated" in r.output


def test_b_half_corrupted_after_the_scan_is_named(tmp_path):
    for side in "AB":
        (tmp_path / side).mkdir()
        for i in range(3):
            _texture(32, 32, i).save(tmp_path / side / f"{i}.png")
    ds = PairedDataset(tmp_path, load_size=32, crop_size=32)
    (tmp_path / "B" / "0.png").write_text("gone")
    with pytest.warns(RuntimeWarning):
        assert ds[0]["path"] == str(tmp_path / "A" / "1.png")
    assert ds.bad_files[0][0] == str(tmp_path / "B" / "0.png")


def test_explicit_files_and_holdout(tmp_path):
    for i in range(1, 12):
        _aligned(tmp_path / f"{i}.png", seed=i)
    pairs = list_pairs(tmp_path)
    train, held = split_holdout(pairs, 3)
    assert [p.name for p in held] == ["9", "10", "11"] and len(train) == 8
    assert split_holdout(pairs, 0) == (pairs, [])
    with pytest.raises(BadInput, match="cannot hold out 11 of 11"):
        split_holdout(pairs, 11)
    ds = PairedDataset(files=held, crop_size=32, augment=False)
    assert [p.name for p in ds.pairs] == ["9", "10", "11"]
    ds = PairedDataset(files=held + [Pair("x", tmp_path / "missing.png")], crop_size=32)
    assert len(ds) == 3 and ds.bad_files[0][0].endswith("missing.png")


def test_cli_check(messy):
    r = CliRunner().invoke(cli, ["data", "check", str(messy)])
    assert r.exit_code == 0, r.output
    assert "6 usable pairs, 8 bad file(s), 3 converted" in r.output
    assert "size of each half (width x height): 32x32 (6)" in r.output
    assert f"{messy / 'train' / 'notes.jpg'}: not an image" in r.output
    assert f"{messy / 'train' / 'odd.png'}: odd width 63" in r.output
    r = CliRunner().invoke(cli, ["data", "check", str(messy), "--on-bad-file", "error"])
    assert r.exit_code == 3
    assert "Error: 8 bad file(s) in" in r.output
    r = CliRunner().invoke(cli, ["data", "check", str(messy), "--split", "val"])
    assert r.exit_code == 3 and "no 'val' split" in r.output


def test_real_facades(facades_dir):
    r = CliRunner().invoke(cli, ["data", "check", str(facades_dir)])
    assert r.exit_code == 0, r.output
    assert "aligned layout, 400 usable pairs, 0 bad file(s), 0 converted" in r.output
    assert "size of each half (width x height): 256x256 (400)" in r.output  # 512x256 files
    assert "the B side holds CMP facade label maps" in r.output             # photo | labels
    assert "use --direction BtoA" in r.output
    pairs = list_pairs(facades_dir)
    assert len(pairs) == 400 and pairs[1].name == "2"
    item = PairedDataset(facades_dir, direction="BtoA", files=pairs[:4])[0]
    assert item["A"].shape == item["B"].shape == (3, 256, 256)
    # BtoA: the input is the label map (saturated CMP colours), the target the photo.
    from pix2pix_edge.train.data import palette_share

    def share(t):
        return palette_share(Image.fromarray(((t.permute(1, 2, 0) + 1) * 127.5).byte().numpy()))

    assert share(item["A"]) > 0.4 and share(item["B"]) < 0.1


def test_16_bit_pngs_train_as_the_runtime_reads_them(tmp_path):
    """Issue 21.8: a 16-bit greyscale A|B pair was clipped to white in training (99.5 % of its
    pixels); it is now scaled to 8 bits, the same pixels the runtime gets, and `data check`
    notes the conversion."""
    from pix2pix_edge.runtime.video import open_source
    from tests.images import png16

    ramp = np.linspace(0, 65535, 64 * 32).round().astype(np.uint16).reshape(32, 64)
    png16(tmp_path / "1.png", ramp)
    item = PairedDataset(tmp_path, crop_size=32, augment=False)[0]
    a = ((item["A"][0].numpy() + 1) * 127.5).round()
    assert np.abs(a - np.round(ramp[:, :32] / 257.0)).max() <= 1
    assert (a >= 254.5).mean() < 0.05
    with open_source(str(tmp_path / "1.png")) as src:
        runtime = src.read().image[..., 0]
    assert np.abs(runtime[:, :32].astype(float) - a).max() <= 1
    notes = scan_report(tmp_path, "train").notes
    assert notes and "16-bit grayscale (I;16) scaled to 8-bit RGB" in notes[0][1]


def test_an_image_over_the_pixel_limit_is_a_bad_file_without_pil_warnings(tmp_path):
    """Issue 21.3/12: training and `data check` name it by its pixel count; PIL's two-line
    DecompressionBombWarning never reaches the user."""
    from tests.images import bomb_png

    _aligned(tmp_path / "1.png")
    bomb_png(tmp_path / "2.png", 19000, 5000)     # 95 M pixels: PIL would warn
    bomb_png(tmp_path / "3.png", 19000, 9500)     # 180.5 M: PIL refuses it itself
    from PIL import Image

    with warnings.catch_warnings():
        # PIL's warning as an error: it must never be raised (other libraries' deprecation
        # warnings, which depend on test order, are not this test's business)
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        r = CliRunner().invoke(cli, ["data", "check", str(tmp_path)])
    assert r.exit_code == 0, (r.output, r.exception)
    assert "2.png: 19000x5000 is 95,000,000 pixels, more than the 67,108,864" in r.output
    assert "3.png: 180,500,000 pixels, more than the 67,108,864" in r.output
    assert "DecompressionBomb" not in r.output and "DOS attack" not in r.output
