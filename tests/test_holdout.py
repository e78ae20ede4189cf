"""The hold-out a run records is honoured everywhere (issue 16), and the facts that cross
train -> export -> runtime live in runtime/contract.py only.

Two real (tiny) runs, one trained with --holdout-last and one with --holdout-every. Every file a
part of the toolkit reads is recorded at the one image reader (contract.read_rgb): eval with no
flag reads exactly the held-out pairs; training, distillation (CLI and Python), INT8 calibration
and the benchmark loaders never read a held-out pair for training or calibration.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime import contract
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadUsage

REPO = Path(__file__).resolve().parents[1]
# 12 pairs; batch 3 and 3 iterations: one epoch reads every training pair of a 9-pair run
TINY = dict(depth=5, ngf=4, ndf=4, load_size=36, crop_size=32, workers=0, progress=False,
            tensorboard=False, amp="off", threads=1, batch_size=3, max_iters=3, log_every=1)
HOLDOUTS = {"last": dict(holdout_last=3), "every": dict(holdout_every=4)}
HELD_NAMES = {"last": {"10", "11", "12"}, "every": {"4", "8", "12"}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from pix2pix_edge.train.synth import make_dataset
    return make_dataset(tmp_path_factory.mktemp("holdout") / "d", n=12, size=32, seed=5)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """{"last": run trained with --holdout-last 3, "every": with --holdout-every 4}."""
    from pix2pix_edge.train.loop import TrainOptions, train

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, holdout in HOLDOUTS.items():
        out[kind] = root / kind
        train(TrainOptions(data=str(data), run=str(out[kind]), **holdout, **TINY))
    return out


class Reads:
    """The numbers (stems) of the files read through contract.read_rgb, and whether a training dataset
    (augmenting) asked for them."""

    def __init__(self, monkeypatch):
        self.files, self.trained = [], []
        reader = contract.read_rgb

        def read(path):
            self.files.append(str(int(Path(path).stem)))
            return reader(path)

        monkeypatch.setattr(contract, "read_rgb", read)
        from pix2pix_edge.train.data import PairedDataset
        getitem = PairedDataset.__getitem__

        def item(ds, index):
            got = getitem(ds, index)
            if ds.augment:
                self.trained.append(str(int(Path(got["path"]).stem)))
            return got

        monkeypatch.setattr(PairedDataset, "__getitem__", item)

    def clear(self):
        self.files.clear()
        self.trained.clear()


@pytest.fixture
def reads(monkeypatch):
    return Reads(monkeypatch)


ALL = {str(i) for i in range(1, 13)}


# ----------------------------------------------------------------------------- the record

def test_held_out_is_what_the_run_recorded(runs, data, tmp_path):
    for kind, run in runs.items():
        held = contract.held_out(run)
        assert (held.last, held.every) == ((3, 0) if kind == "last" else (0, 4))
        assert held.recorded and held.same_dataset(data) and held.same_dataset(data / "train")
        # a file of the run finds the same record
        assert contract.held_out(run / "generator.pt") == held
        assert contract.held_out(run / "checkpoints" / "latest.pt") == held
        trained, out = held.pairs()
        assert {str(int(p.name)) for p in out} == HELD_NAMES[kind]
        assert {str(int(p.name)) for p in trained} == ALL - HELD_NAMES[kind]
    assert not contract.held_out(tmp_path).recorded
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(contract.BadInput, match="config.json"):
        contract.held_out(tmp_path)


@pytest.mark.parametrize("kind", HOLDOUTS)
def test_training_reads_no_held_out_pair(kind, data, reads, tmp_path):
    from pix2pix_edge.train.loop import TrainOptions, train

    train(TrainOptions(data=str(data), run=str(tmp_path / "r"), **HOLDOUTS[kind], **TINY))
    assert set(reads.trained) == ALL - HELD_NAMES[kind]
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data"]["train_pairs"] == 9 and cfg["data"]["held_out_pairs"] == 3


@pytest.mark.parametrize("kind", HOLDOUTS)
def test_a_dataset_changed_since_training_is_refused(kind, runs, data, tmp_path):
    """The run records its held-out names: pairs added to the dataset after training would
    shift the hold-out onto trained pairs, so eval says so instead of scoring them."""
    import shutil

    cfg = json.loads((runs[kind] / "config.json").read_text())
    assert sorted(int(n) for n in cfg["data"]["held_out_names"]) == \
        sorted(int(n) for n in HELD_NAMES[kind])
    grown = tmp_path / "grown"
    shutil.copytree(data, grown)
    # a pair appended shifts the last N; one put first shifts every N-th
    added = "000013.png" if kind == "last" else "000000.png"
    shutil.copy(grown / "train" / "000012.png", grown / "train" / added)
    held = contract.held_out(runs[kind])
    with pytest.raises(contract.BadInput, match="the dataset changed since training"):
        held.pairs(grown)
    r = CliRunner().invoke(cli, ["eval", str(runs[kind]), str(grown), "--out", str(tmp_path / "e")])
    assert r.exit_code == 3 and "dataset changed since training" in r.output, r.output
    assert held.pairs(data)[1]                       # the unchanged dataset still splits


# ----------------------------------------------------------------------------- eval

@pytest.mark.parametrize("kind", HOLDOUTS)
def test_eval_without_a_flag_scores_exactly_the_recorded_holdout(kind, runs, data, reads, tmp_path):
    r = CliRunner().invoke(cli, ["eval", str(runs[kind]), str(data), "--out", str(tmp_path),
                                 "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert set(reads.files) == HELD_NAMES[kind]
    assert "the run's hold-out" in r.output and "3 pairs, 0 of them trained on" in r.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n"] == 3 and m["trained_pairs"] == 0 and m["split"] == "train"
    assert [str(int(row["image"].split(".")[0])) for row in m["per_image"]["per-image"]] == \
        sorted(HELD_NAMES[kind], key=int)
    assert m["run_held_out"] == {"last": 3, "every": 0} if kind == "last" else {"last": 0, "every": 4}


def test_eval_names_a_split_less_folder_as_it_is(data, tmp_path):
    """Issue 21, item 12: DATA without split folders is named DATA, never as a DATA/train that
    does not exist."""
    from pix2pix_edge.train.loop import TrainOptions, train

    flat = data / "train"
    train(TrainOptions(data=str(flat), run=str(tmp_path / "run"), holdout_last=3, **TINY))
    r = CliRunner().invoke(cli, ["eval", str(tmp_path / "run"), str(flat), "--out",
                                 str(tmp_path / "eval"), "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert f"the last 3 pairs of {flat} (trained with" in r.output, r.output
    assert f"{flat}/train" not in r.output


def one_line(r, code, *needles):
    assert r.exit_code == code, (r.exit_code, r.output)
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    for n in needles:
        assert n in r.output, r.output


@pytest.mark.parametrize("flags, trained", [
    (["--holdout-last", "5"], "2 of these 5 pairs"),        # 8, 9: trained
    (["--holdout-every", "4"], "2 of these 3 pairs"),       # 4, 8: trained; 12: held out
    (["--split", "train"], "9 of these 12 pairs"),
])
def test_eval_refuses_flags_that_score_trained_pairs(flags, trained, runs, data, tmp_path):
    args = ["eval", str(runs["last"]), str(data), "--out", str(tmp_path), *flags]
    one_line(CliRunner().invoke(cli, args), 2, trained, "were trained on", "--allow-trained-pairs")
    r = CliRunner().invoke(cli, args + ["--allow-trained-pairs"])
    assert r.exit_code == 0, r.output
    n = trained.split()[0]
    assert f"{n} of them trained on" in r.output
    assert json.loads((tmp_path / "metrics.json").read_text())["trained_pairs"] == int(n)


def test_eval_takes_a_narrower_holdout_and_the_val_split(runs, data, tmp_path):
    from pix2pix_edge.train.synth import make_dataset

    r = CliRunner().invoke(cli, ["eval", str(runs["last"]), str(data), "--holdout-last", "2",
                                 "--out", str(tmp_path / "a")])
    assert r.exit_code == 0 and "2 pairs, 0 of them trained on" in r.output, r.output
    # another dataset with a val split: its pairs were never trained on
    other = make_dataset(tmp_path / "other", n=3, size=32, seed=9, val=2)
    r = CliRunner().invoke(cli, ["eval", str(runs["every"]), str(other), "--split", "val",
                                 "--out", str(tmp_path / "b")])
    assert r.exit_code == 0 and "2 pairs, 0 of them trained on" in r.output, r.output
    assert "the run trained on" in r.output


def test_eval_of_a_run_that_held_nothing_out(data, tmp_path):
    from pix2pix_edge.train.loop import TrainOptions, train
    from pix2pix_edge.train.synth import make_dataset

    run = tmp_path / "run"
    withval = make_dataset(tmp_path / "v", n=4, size=32, seed=2, val=2)
    train(TrainOptions(data=str(withval), run=str(run), **dict(TINY, max_iters=1)))
    r = CliRunner().invoke(cli, ["eval", str(run), str(withval), "--out", str(tmp_path / "e")])
    assert r.exit_code == 0 and "/val (the run held nothing out" in r.output, r.output
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["split"] == "val"
    (withval / "val").rename(tmp_path / "gone")
    one_line(CliRunner().invoke(cli, ["eval", str(run), str(withval)]), 3,
             "held nothing out", "no val or test split", "--holdout-last")


@pytest.mark.parametrize("flags, message", [
    (["--holdout-last", "-1"], "--holdout-last"),
    (["--holdout-every", "1"], "--holdout-every 1"),
    (["--holdout-last", "2", "--holdout-every", "3"], "not both"),
    (["--holdout-last", "2", "--split", "val"], "--split val"),
    (["--norm-mode", "bogus"], "--norm-mode"),
    (["--threads", "0"], "--threads"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_eval_bad_values_exit_2(flags, message, runs, data):
    one_line(CliRunner().invoke(cli, ["eval", str(runs["last"]), str(data), *flags]), 2, message)


def test_eval_options_from_python(runs, data):
    from pix2pix_edge.train.evaluate import evaluate

    with pytest.raises(BadUsage, match="--holdout-every 1"):
        evaluate(runs["last"], data, holdout_every=1)
    with pytest.raises(BadUsage, match="--norm-mode must be"):
        evaluate(runs["last"], data, norm_mode="bogus")


def test_eval_help_names_the_default_threads_and_loads_no_torch():
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\n"
            "from pix2pix_edge.runtime.cli import cli\n"
            "r = CliRunner().invoke(cli, ['eval', '--help'], terminal_width=200)\n"
            "print(r.output)\nprint('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().endswith("False"), out
    assert "--threads" in out and "physical cores" in out and "--allow-trained-pairs" in out


# ----------------------------------------------------------------------------- distill

STUDENT = dict(ngf=4, ndf=4, workers=0, progress=False, tensorboard=False, amp="off", threads=1,
               batch_size=3, max_iters=3, log_every=1)


def test_python_student_inherits_and_trains_only_on_the_teachers_training_pairs(
        runs, data, reads, tmp_path):
    from pix2pix_edge.train.distill import distill
    from pix2pix_edge.train.distill_options import FROM_TEACHER, DistillOptions

    for kind, teacher in runs.items():
        reads.clear()
        run = tmp_path / kind
        distill(DistillOptions(teacher=str(teacher), data=str(data), run=str(run), **STUDENT))
        student = json.loads((run / "config.json").read_text())["options"]
        parent = json.loads((teacher / "config.json").read_text())["options"]
        for name in FROM_TEACHER:
            assert student[name] == parent[name], name
        assert (student["depth"], student["load_size"], student["crop_size"]) == (5, 36, 32)
        assert set(reads.trained) == ALL - HELD_NAMES[kind]
        assert contract.held_out(run) == contract.held_out(teacher)


def test_cli_student_equals_the_python_student(runs, data, reads, tmp_path):
    from pix2pix_edge.train.distill import distill
    from pix2pix_edge.train.distill_options import DistillOptions

    distill(DistillOptions(teacher=str(runs["every"]), data=str(data), run=str(tmp_path / "py"),
                           **STUDENT))
    reads.clear()
    r = CliRunner().invoke(cli, ["distill", str(runs["every"]), str(data), "--run",
                                 str(tmp_path / "cli"), "--ngf", "4", "--ndf", "4", "--workers",
                                 "0", "--no-progress", "--no-tensorboard", "--amp", "off",
                                 "--threads", "1", "--batch-size", "3", "--max-iters", "3",
                                 "--log-every", "1"])
    assert r.exit_code == 0, r.output
    assert set(reads.trained) == ALL - HELD_NAMES["every"]
    py, cl = (json.loads((tmp_path / k / "config.json").read_text())["options"]
              for k in ("py", "cli"))
    assert {k: v for k, v in py.items() if k not in ("run", "teacher", "data")} == \
        {k: v for k, v in cl.items() if k not in ("run", "teacher", "data")}
    # and eval of the student, with no flag, scores the teacher's held-out pairs
    reads.clear()
    r = CliRunner().invoke(cli, ["eval", str(tmp_path / "cli"), str(data)])
    assert r.exit_code == 0 and set(reads.files) == HELD_NAMES["every"], r.output


def test_a_student_holdout_that_leaks_the_teachers_is_refused(runs, data, tmp_path):
    from pix2pix_edge.train.distill_options import DistillOptions, resolve

    def opts(**kw):
        return DistillOptions(teacher=str(runs["last"]), data=str(data), run=str(tmp_path), **kw)

    with pytest.raises(BadUsage, match="would train on 3 pairs its teacher held out"):
        resolve(opts(holdout_last=0))
    with pytest.raises(BadUsage, match="would train on 2 pairs its teacher held out"):
        resolve(opts(holdout_every=4))
    assert resolve(opts(holdout_last=5)).holdout_last == 5     # covers the teacher's
    assert resolve(opts(depth=6, crop_size=64, load_size=72)).depth == 6  # given wins
    r = CliRunner().invoke(cli, ["distill", str(runs["last"]), str(data), "--run", str(tmp_path),
                                 "--holdout-last", "0"])
    one_line(r, 2, "its teacher held out")


# ----------------------------------------------------------------------------- INT8 calibration

@pytest.mark.parametrize("kind", HOLDOUTS)
def test_int8_calibration_reads_no_held_out_pair(kind, runs, data, reads):
    from pix2pix_edge.export.int8 import load_calibration

    x, text = load_calibration(data, 32, 32, source=runs[kind], n=50)
    assert set(reads.files) == ALL - HELD_NAMES[kind] and x.shape == (9, 3, 32, 32)
    assert "3 held-out pairs excluded" in text


# ----------------------------------------------------------------------------- benchmarks

@pytest.mark.parametrize("kind", HOLDOUTS)
def test_benchmark_loaders_read_held_out_pairs_only_for_scoring(kind, runs, data, reads,
                                                                 monkeypatch):
    pytest.importorskip("cv2")
    import benchmarks.common as common
    from benchmarks import edge, inference, int8, live

    held = contract.held_out(runs[kind])
    monkeypatch.setattr(common, "FACADES_HELD_OUT", held)
    assert int8.facades_inputs(32, 50, held_out=False).shape == (9, 3, 32, 32)
    assert set(reads.files) == ALL - HELD_NAMES[kind]          # calibration
    reads.clear()
    int8.facades_inputs(32, 50, held_out=True)
    assert set(reads.files) == HELD_NAMES[kind]                 # quality
    reads.clear()
    inference.sample_input(32, batch=30)
    assert reads.files and not set(reads.files) & HELD_NAMES[kind]   # warm-up / calibration
    reads.clear()
    ds = edge.held_out([runs[kind]], {"direction": "AtoB"}, data, {"side": 32})
    [ds[i] for i in range(len(ds))]
    assert set(reads.files) == HELD_NAMES[kind]
    reads.clear()
    assert len(live.pan_canvases(1, runs[kind], side=32)) == 1
    assert reads.files and set(reads.files) <= HELD_NAMES[kind]


def test_edge_benchmark_refuses_runs_with_different_holdouts(runs, data):
    from benchmarks import edge

    with pytest.raises(RuntimeError, match="different hold-outs"):
        edge.held_out([runs["last"], runs["every"]], {"direction": "AtoB"}, data, {"side": 32})


# ----------------------------------------------------------------------------- one home

def _sources():
    for folder in ("runtime", "train", "export", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name != "contract.py":
                yield path, path.read_text(encoding="utf-8")


def test_the_contract_facts_are_defined_nowhere_else():
    """No module keeps its own list of image extensions or inference-norm names, its own A|B
    aspect test or its own image decoding for model inputs."""
    patterns = {
        "an image-extension list":
            re.compile(r"""["']\.(jpe?g|png|bmp|webp|tiff?)["']\s*,\s*["']\.\w+["']"""),
        "the inference-norm names":
            re.compile(r"""["'](per-image|running)["']\s*,\s*["'](running|per-image)["']"""),
        "an A|B aspect test": re.compile(r"1\.9\s*<=|<=\s*2\.1"),
        "an image decoder": re.compile(r"Image\.open\(|cv2\.imread\("),
    }
    # the two readers that are not model-input readers: the bad-file scan (decodes to check,
    # reports the mode before conversion) and the runtime's image-folder source (OpenCV frames)
    allowed = {("an image decoder", "train/data.py"), ("an image decoder", "runtime/video.py")}
    found = [(what, str(path.relative_to(REPO))) for path, text in _sources()
             for what, rx in patterns.items() if rx.search(text)]
    assert [f for f in found if f not in allowed] == []
    c = contract
    assert len(c.IMAGE_EXTS) == len(set(c.IMAGE_EXTS)) and ".jpg" in c.IMAGE_EXTS
    assert c.DEFAULT_INFERENCE_NORM == c.INFERENCE_NORMS[0]


def test_every_module_uses_the_contract_constants():
    from pix2pix_edge.export import cli as export_cli
    from pix2pix_edge.runtime import model_info, video
    from pix2pix_edge.train import data, evaluate, models, options
    from pix2pix_edge.train.eval_options import EvalOptions
    from pix2pix_edge.train.options import TrainOptions

    assert video.IMAGE_EXTS is data.IMAGE_EXTS is contract.IMAGE_EXTS
    assert models.NORM_MODES is options.INFERENCE_NORMS is contract.INFERENCE_NORMS
    assert model_info.NORM_MODES is contract.NORM_MODES
    assert model_info.DIRECTIONS is options.DIRECTIONS is contract.DIRECTIONS
    assert evaluate.INFERENCE_NORMS is contract.INFERENCE_NORMS
    assert model_info.ModelInfo().value_range == contract.VALUE_RANGE
    fields = {f.name: f for f in __import__("dataclasses").fields(TrainOptions)}
    assert fields["inference_norm"].default == contract.DEFAULT_INFERENCE_NORM
    assert fields["inference_norm"].metadata["choices"] is contract.INFERENCE_NORMS
    eval_fields = {f.name: f for f in __import__("dataclasses").fields(EvalOptions)}
    assert eval_fields["norm_mode"].metadata["choices"] is contract.EVAL_NORM_MODES
    norm = next(p for p in export_cli.onnx_cmd.params if p.name == "norm_mode")
    assert tuple(norm.type.choices) == contract.INFERENCE_NORMS
