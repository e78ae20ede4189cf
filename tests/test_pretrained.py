"""`pix2pix models list / download / import` against a local HTTP server (never the real URLs).

The checkpoints are made here in the reference's format: a bare state dict with the reference's
key names (train.models.UNetGenerator mirrors models/networks.py key for key), small where the
test allows and the full unet_256 (54,413,955 parameters, BatchNorm) once, in the legacy
torch.save format of 2018 without num_batches_tracked. A downloaded run is then taken by eval,
export (with parity), info, run (on a short video) and distill as it is.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch
from pix2pix_edge.train import pretrained
from pix2pix_edge.train.checkpoint import GENERATOR_FILE, load_generator
from pix2pix_edge.train.models import UNetGenerator, count_parameters, init_weights
from pix2pix_edge.train.reference import infer_unet, parameter_count, unet_shapes
from pix2pix_edge.train.reference_run import GENERATOR_FILE as RUN_GENERATOR_FILE
from pix2pix_edge.train.torchfile import read_state_dict
from tests.test_download import _Server
from tests.test_run_cli import write_video
from tests.videos import count_frames

REPO = Path(__file__).resolve().parents[1]
TINY = dict(in_channels=3, out_channels=3, depth=6, ngf=4, norm="batch", upsample="transpose")
TINY_MODEL = pretrained.Pretrained("tiny_label2photo", "test labels -> photo", "BtoA", "synth",
                                   "made by the test", tuple(TINY.items()))


def reference_checkpoint(path: Path, seed: int = 0, legacy: bool = False, old: bool = False,
                         **config) -> Path:
    """A generator state dict as the reference saves it (latest_net_G.pth). ``old``: as PyTorch
    0.4.0 wrote it: no BatchNorm num_batches_tracked, no version metadata; with norm instance,
    the running statistics the reference's InstanceNorm of 2018 (track_running_stats=True) kept."""
    torch.manual_seed(seed)
    g = init_weights(UNetGenerator(**{**TINY, **config}))
    with torch.no_grad():
        side = max(64, g.multiple)
        g.train()(torch.randn(2, g.config["in_channels"], side, side))   # real running statistics
    state = g.state_dict()
    # the reference's names (models/networks.py): outermost down conv, second block's norm
    assert "model.model.0.weight" in state and "model.model.1.model.1.weight" in state
    if old and g.config["norm"] == "instance":
        with_bn = unet_shapes(**{**g.config, "norm": "batch"})
        state.update((k, torch.zeros(s)) for k, s in with_bn.items()
                     if k.endswith(("running_mean", "running_var")))
    elif g.config["norm"] == "batch":
        assert "model.model.1.model.2.running_mean" in state
    if old:
        state = OrderedDict((k, v) for k, v in state.items()
                            if not k.endswith("num_batches_tracked"))
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def cli_run(*args) -> "click.testing.Result":
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line(r, code: int, *needles: str) -> str:
    assert r.exit_code == code, (r.exit_code, r.output)
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.output, r.output
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(pretrained.CATALOG, TINY_MODEL.name, TINY_MODEL)
    return TINY_MODEL.name


def nothing_left(folder: Path, name: str) -> None:
    """No run directory, part file or temp folder where a run would read it."""
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert [p for p in left if p.startswith((name, f".{name}"))
            and p != f"{name}.sha256"] == [], left


# ----------------------------------------------------------------------------- torch-free parts

def test_shapes_and_parameter_count_without_torch_match_the_model():
    assert parameter_count(pretrained.UNET_256) == 54_413_955
    assert RUN_GENERATOR_FILE == GENERATOR_FILE
    for config in (TINY, dict(TINY, norm="instance", upsample="resize", in_channels=1),
                   dict(TINY, depth=8, upsample="separable")):
        g = UNetGenerator(**config)
        assert unet_shapes(**config) == {k: tuple(v.shape) for k, v in g.state_dict().items()}
        assert parameter_count(config) == count_parameters(g)
        assert infer_unet(unet_shapes(**config))[0] == config


@pytest.mark.parametrize("legacy", [False, True])
def test_state_dict_shapes_are_read_without_running_anything_else(tmp_path, legacy):
    path = reference_checkpoint(tmp_path / "g.pth", legacy=legacy)
    got = read_state_dict(path)
    assert {k: t.shape for k, t in got.items()} == unet_shapes(**TINY)
    # a pickle that would run code is refused, and runs nothing
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save(OrderedDict(w=Evil()), tmp_path / "evil.pth")     # a real torch file, with a payload
    with pytest.raises(BadInput, match="holds .*, not only tensors: refusing"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


def test_list_never_imports_torch_and_download_names_the_extra(server, tmp_path):
    """In a subprocess where importing torch fails: list works; download says which extra it
    needs (one line, exit 5) and leaves nothing."""
    server.files["/tiny_label2photo.pth"] = reference_checkpoint(tmp_path / "g.pth").read_bytes()
    to = str(tmp_path / "models")
    script = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] == 'torch':
                    raise ModuleNotFoundError('blocked: ' + name, name=name)
        sys.meta_path.insert(0, Block())
        from click.testing import CliRunner
        from pix2pix_edge.runtime.cli import cli
        from pix2pix_edge.train import pretrained
        m = pretrained.Pretrained("tiny_label2photo", "t", "BtoA", "synth", "test",
                                  tuple({TINY!r}.items()))
        pretrained.CATALOG[m.name] = m
        r = CliRunner().invoke(cli, ["models", "list", "--to", {to!r}])
        print(r.output)
        assert r.exit_code == 0, (r.output, r.exception)
        bad = [n for n in sys.modules if n.split('.')[0] == 'torch']
        assert not bad, bad
        r = CliRunner().invoke(cli, ["models", "download", m.name, "--to", {to!r}, "--mirror",
                                     {server.url!r}])
        print(r.output)
        assert r.exit_code == 5 and "needs the Python package 'torch'" in r.output, (r.output, r.exception)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pix2pix-edge[train]" in out.stdout
    left = sorted(p.name for p in (tmp_path / "models").iterdir()) \
        if (tmp_path / "models").exists() else []
    assert not any(n.startswith("tiny_label2photo") and not n.endswith(".part") for n in left), left


def test_list_says_what_is_not_published(tmp_path):
    r = cli_run("models", "list", "--to", tmp_path)
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.strip()}
    assert set(pretrained.CATALOG) <= set(rows)
    assert "BtoA" in rows["facades_label2photo"] and "facades" in rows["facades_label2photo"]
    for name in ("edges2shoes", "sat2map", "map2sat"):
        assert rows[name].count("not published") == 2 and rows[name].rstrip().endswith("no")
    assert "licence    none published" in r.output and "54,413,955" in r.output
    assert "efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/NAME.pth" in r.output


# ----------------------------------------------------------------------------- download

def test_download_writes_an_ordinary_run_and_records_the_sha256(server, tiny, tmp_path):
    data = reference_checkpoint(tmp_path / "g.pth").read_bytes()
    server.files["/tiny_label2photo.pth"] = data
    to = tmp_path / "models"
    r = cli_run("models", "download", tiny, "--to", to, "--mirror", server.url)
    assert r.exit_code == 0, r.output
    run = to / tiny
    assert sorted(p.name for p in to.iterdir()) == [tiny, f"{tiny}.sha256"]
    assert (run / GENERATOR_FILE).read_bytes() == data       # the bytes as published
    digest = hashlib.sha256(data).hexdigest()
    assert (to / f"{tiny}.sha256").read_text().split() == [digest, f"{tiny}.pth"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["source"]["url"] == f"{server.url}/{tiny}.pth" and cfg["source"]["sha256"] == digest
    assert cfg["options"]["direction"] == "BtoA" and cfg["inference"]["norm_mode"] == "per-image"
    assert cfg["models"]["generator"] == {**TINY, "dropout": True}
    G, record = load_generator(run)
    assert record["data"]["direction"] == "BtoA" and record["inference"]["norm_mode"] == "per-image"
    assert cfg["parameters"]["G"] == count_parameters(G)

    # a later run checks the file against the record and fetches nothing
    n = len(server.requests)
    r = cli_run("models", "download", tiny, "--to", to, "--mirror", server.url)
    assert r.exit_code == 0 and "matches the record" in r.output and len(server.requests) == n
    r = cli_run("models", "list", "--to", to)
    assert f"sha256 {digest[:12]}" in r.output
    # the installed weights changed: exit 6
    changed = bytearray(data)
    changed[len(data) // 2] ^= 1
    (run / GENERATOR_FILE).write_bytes(bytes(changed))
    one_line(cli_run("models", "download", tiny, "--to", to, "--mirror", server.url), 6,
             "sha256", "recorded")


def test_download_resumes_after_a_cut_connection(server, tiny, tmp_path):
    data = reference_checkpoint(tmp_path / "g.pth", legacy=True).read_bytes()
    server.files["/tiny_label2photo.pth"] = data
    server.cut = len(data) // 3
    to = tmp_path / "models"
    one_line(cli_run("models", "download", tiny, "--to", to, "--mirror", server.url), 5,
             "run the same command again to resume")
    assert (to / f"{tiny}.pth.part").stat().st_size == len(data) // 3
    assert not (to / tiny).exists()
    r = cli_run("models", "download", tiny, "--to", to, "--mirror", server.url)
    assert r.exit_code == 0, r.output
    assert server.requests[-1] == (f"/{tiny}.pth", f"bytes={len(data) // 3}-")
    assert (to / tiny / GENERATOR_FILE).read_bytes() == data
    assert json.loads((to / tiny / "config.json").read_text())["source"]["file_format"] == "legacy"


def test_a_changed_file_is_a_failed_check_and_installs_nothing(server, tiny, tmp_path):
    to = tmp_path / "models"
    server.files["/tiny_label2photo.pth"] = reference_checkpoint(tmp_path / "a.pth").read_bytes()
    assert cli_run("models", "download", tiny, "--to", to, "--mirror", server.url).exit_code == 0
    record = (to / f"{tiny}.sha256").read_text()
    import shutil
    shutil.rmtree(to / tiny)
    server.files["/tiny_label2photo.pth"] = reference_checkpoint(tmp_path / "b.pth",
                                                                 seed=1).read_bytes()
    one_line(cli_run("models", "download", tiny, "--to", to, "--mirror", server.url), 6,
             "sha256 of", "nothing was installed")
    nothing_left(to, tiny)
    assert (to / f"{tiny}.sha256").read_text() == record


@pytest.mark.parametrize("body,code,needle", [
    (None, 3, "not found (HTTP 404)"),
    (b"<!DOCTYPE html>\n<html><head><title>Moved</title></head><body>gone</body></html>", 3,
     "an HTML page ('Moved'), not weights"),
    ("truncated", 3, "truncated"),
    ("resnet", 4, "a ResNet generator"),
    ("other unet", 4, "not tiny_label2photo's"),
])
def test_bad_downloads_are_one_line_and_leave_nothing(server, tiny, tmp_path, body, code, needle):
    good = reference_checkpoint(tmp_path / "g.pth", legacy=True).read_bytes()
    if body == "truncated":          # a whole HTTP response of a cut file
        body = good[:len(good) - 1000]
    elif body == "resnet":           # CycleGAN's generator layout: model.1.weight is 7x7
        torch.save(OrderedDict([("model.1.weight", torch.zeros(4, 3, 7, 7))]), tmp_path / "r.pth")
        body = (tmp_path / "r.pth").read_bytes()
    elif body == "other unet":
        body = reference_checkpoint(tmp_path / "o.pth", ngf=8).read_bytes()
    if body is not None:
        server.files["/tiny_label2photo.pth"] = body
    to = tmp_path / "models"
    one_line(cli_run("models", "download", tiny, "--to", to, "--mirror", server.url), code, needle)
    nothing_left(to, tiny)
    assert not (to / f"{tiny}.sha256").exists()


def test_download_size_is_bounded(server, tiny, tmp_path, monkeypatch):
    server.files["/tiny_label2photo.pth"] = reference_checkpoint(tmp_path / "g.pth").read_bytes()
    monkeypatch.setattr(pretrained, "MAX_BYTES", 1000)
    to = tmp_path / "models"
    one_line(cli_run("models", "download", tiny, "--to", to, "--mirror", server.url), 3,
             "more than the 1000 B expected at most")
    nothing_left(to, tiny)


def test_download_usage_errors(tmp_path):
    one_line(cli_run("models", "download", "edges2shoes", "--to", tmp_path), 2,
             "does not publish which half", "--direction AtoB")
    one_line(cli_run("models", "download", "shoes2edges", "--to", tmp_path), 2,
             "unknown model 'shoes2edges'")
    (tmp_path / "sat2map").mkdir()
    one_line(cli_run("models", "download", "sat2map", "--to", tmp_path, "--direction", "AtoB"), 2,
             "is not a downloaded model")


def test_a_file_mirror_works(tiny, tmp_path):
    (tmp_path / "mirror").mkdir()
    reference_checkpoint(tmp_path / "mirror" / "tiny_label2photo.pth")
    r = cli_run("models", "download", tiny, "--to", tmp_path / "m", "--mirror",
                (tmp_path / "mirror").as_uri())
    assert r.exit_code == 0, r.output


def test_the_full_unet_256_of_2018_downloads_and_loads(server, tmp_path):
    """The real catalog entry, at full size: 54,413,955 parameters with BatchNorm, in the legacy
    format without num_batches_tracked (as PyTorch 0.4.0 saved it)."""
    path = reference_checkpoint(tmp_path / "full.pth", legacy=True, old=True, depth=8, ngf=64)
    server.files["/facades_label2photo.pth"] = path.read_bytes()
    path.unlink()
    to = tmp_path / "models"
    r = cli_run("models", "download", "facades_label2photo", "--to", to, "--mirror", server.url)
    assert r.exit_code == 0, r.output
    assert "no BatchNorm num_batches_tracked counters" in r.output
    server.files.clear()
    G, record = load_generator(to / "facades_label2photo")
    assert count_parameters(G) == 54_413_955
    assert record["data"]["direction"] == "BtoA" and record["data"]["crop_size"] == 256
    cfg = json.loads((to / "facades_label2photo" / "config.json").read_text())
    assert cfg["parameters"]["G"] == 54_413_955 and "README" in cfg["source"]["evidence"]


# ----------------------------------------------------------------------------- import

def test_import_reads_the_architecture_from_the_weights(tmp_path):
    ckpt = tmp_path / "facades_label2photo_pretrained" / "latest_net_G.pth"
    ckpt.parent.mkdir()
    reference_checkpoint(ckpt, legacy=True, old=True, norm="instance", upsample="resize")
    before = ckpt.read_bytes()
    r = cli_run("models", "import", ckpt, "--direction", "AtoB", "--run", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert "depth 6, ngf 4, instance norm, resize decoder" in r.output
    assert "InstanceNorm with running statistics" in r.output and "unused buffers dropped" in r.output
    assert ckpt.read_bytes() == before                       # the input is never touched
    G, record = load_generator(tmp_path / "run")
    assert G.config == {**TINY, "norm": "instance", "upsample": "resize", "dropout": True}
    assert record["data"]["direction"] == "AtoB"
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["source"]["sha256"] == hashlib.sha256(before).hexdigest()
    # the default run directory is named after the reference's experiment folder
    from pix2pix_edge.train.reference_run import default_run
    assert default_run(ckpt) == Path("runs/facades_label2photo_pretrained")


def test_import_with_wrong_options_names_the_values_that_fit(tmp_path):
    ckpt = reference_checkpoint(tmp_path / "latest_net_G.pth")
    err = one_line(cli_run("models", "import", ckpt, "--direction", "BtoA", "--ngf", "64",
                           "--run", tmp_path / "r"), 2)
    assert "--ngf 64 does not fit these weights; --ngf 4 would" in err
    err = one_line(cli_run("models", "import", ckpt, "--direction", "BtoA", "--depth", "8",
                           "--norm", "instance", "--run", tmp_path / "r"), 2)
    assert "--depth 8, --norm instance do not fit" in err and "--depth 6 --norm batch would" in err
    one_line(cli_run("models", "import", ckpt, "--run", tmp_path / "r"), 2, "--direction is required")
    assert not (tmp_path / "r").exists()
    # options that fit are fine; a DataParallel 'module.' prefix is removed
    state = torch.load(ckpt, weights_only=True)
    torch.save(OrderedDict((f"module.{k}", v) for k, v in state.items()), tmp_path / "dp.pth")
    r = cli_run("models", "import", tmp_path / "dp.pth", "--direction", "BtoA", "--ngf", "4",
                "--depth", "6", "--run", tmp_path / "r")
    assert r.exit_code == 0 and "'module.' prefix: removed" in r.output, r.output
    one_line(cli_run("models", "import", ckpt, "--direction", "BtoA", "--run", tmp_path / "r"),
             2, "already exists")


def test_import_refuses_what_is_not_a_reference_generator(tmp_path):
    (tmp_path / "page.pth").write_text("<html><title>Sign in</title></html>")
    one_line(cli_run("models", "import", tmp_path / "page.pth", "--direction", "AtoB",
                     "--run", tmp_path / "a"), 3, "an HTML page ('Sign in')")
    torch.save(OrderedDict([("model.1.weight", torch.zeros(4, 3, 7, 7))]), tmp_path / "res.pth")
    one_line(cli_run("models", "import", tmp_path / "res.pth", "--direction", "AtoB",
                     "--run", tmp_path / "b"), 4, "ResNet generator")
    ckpt = reference_checkpoint(tmp_path / "nan.pth")
    state = torch.load(ckpt, weights_only=True)
    state["model.model.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, ckpt)
    one_line(cli_run("models", "import", ckpt, "--direction", "AtoB", "--run", tmp_path / "c"),
             3, "NaN or Inf")
    assert not any((tmp_path / d).exists() for d in "abc")
    with pytest.raises(ModelMismatch):
        infer_unet({"model.model.0.weight": (4, 3, 4, 4)})


# ----------------------------------------------------------------------------- the downloaded run
# downloaded once per module, then taken by eval, export, info, run and distill as it is

@pytest.fixture(scope="module")
def downloaded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("downloaded")
    server = _Server()
    pretrained.CATALOG[TINY_MODEL.name] = TINY_MODEL
    try:
        server.files["/tiny_label2photo.pth"] = reference_checkpoint(tmp / "g.pth").read_bytes()
        run = pretrained.download(TINY_MODEL.name, tmp / "models", server.url, progress=False,
                                  log=lambda s: None)
    finally:
        del pretrained.CATALOG[TINY_MODEL.name]
        server.close()
    return run


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("synth") / "d", n=4, size=32, seed=2, val=2)


def test_eval_takes_the_downloaded_run(downloaded, synth, tmp_path):
    r = cli_run("eval", downloaded, synth, "--out", tmp_path / "e", "--threads", "1")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["direction"] == "BtoA" and m["recorded_norm_mode"] == "per-image"
    assert m["split"] == "val" and m["size"] == 256
    # the reference trained on its dataset's train split: scoring it needs saying so
    one_line(cli_run("eval", downloaded, synth, "--split", "train", "--out", tmp_path / "f"), 2,
             "trained on")


def test_eval_of_a_downloaded_run_without_an_unseen_split_says_what_to_give(downloaded, tmp_path):
    """Not "retrain with --holdout-last": nobody here trained it; its authors trained on the
    dataset's train split, so only a test / val split can score it."""
    from pix2pix_edge.train.synth import make_dataset
    data = make_dataset(tmp_path / "train_only", n=4, size=32, seed=2, val=0)
    line = one_line(cli_run("eval", downloaded, data, "--out", tmp_path / "e"), 3,
                    "is a reference-code generator, trained on its dataset's train split")
    assert "test/ folder" in line and "retrain" not in line
    assert not (tmp_path / "e").exists()


def test_export_info_and_run_take_the_downloaded_run(downloaded, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "tiny.onnx"
    r = cli_run("export", "onnx", downloaded, "-o", onnx)
    assert r.exit_code == 0, r.output
    assert "parity" in r.output.lower()
    r = cli_run("info", onnx)
    assert r.exit_code == 0, r.output
    assert "norm per-image" in r.output and "BtoA" in r.output and str(downloaded) in r.output
    video = write_video(tmp_path / "in.mp4", n=8)
    out = tmp_path / "out.mp4"
    r = cli_run("run", onnx, "--source", video, "--output", out, "--headless")
    assert r.exit_code == 0, r.output
    assert count_frames(out) == 8


def test_distill_takes_the_downloaded_teacher_with_camera_frames(downloaded, synth, tmp_path):
    from PIL import Image
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.new("RGB", (48, 32), (60 * i, 90, 30)).save(frames / f"cam_{i}.png")
    r = cli_run("distill", downloaded, synth, "--run", tmp_path / "s", "--extra-inputs", frames,
                "--max-iters", "1", "--threads", "1", "--workers", "0", "--no-progress",
                "--no-tensorboard", "--ngf", "4", "--ndf", "4")
    assert r.exit_code == 0, r.output
    o = json.loads((tmp_path / "s" / "config.json").read_text())["options"]
    assert o["direction"] == "BtoA" and o["depth"] == 6 and o["crop_size"] == 256


# ----------------------------------------------------------------------------- options and docs

def test_options_are_the_library_keywords():
    from pix2pix_edge.train.cli_models import DownloadOptions, ImportOptions
    from pix2pix_edge.train.reference_run import import_checkpoint
    from tests.test_command_options import _same_defaults

    _same_defaults(DownloadOptions, pretrained.download)
    _same_defaults(ImportOptions, import_checkpoint)


def test_readme_first_screen_has_the_three_commands():
    first = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:60])
    assert "From nothing to live in three commands" in first
    for command in ("pix2pix models download", "pix2pix export onnx", "pix2pix run",
                    "--output http://"):
        assert command in first, command
