"""One import namespace: the wheel installs only `pix2pix_edge`, and a user's own train.py,
export.py or runtime.py in the working folder never runs in place of ours.

The reference pix2pix repository, nanoGPT and yolov5 all have a train.py at the top; a user who
runs `pix2pix` from such a folder must get pix2pix-edge, with or without PYTHONPATH=. ."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARTS = ("train", "export", "runtime")


def test_wheel_holds_only_pix2pix_edge_and_every_package_folder(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path), str(REPO)],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (wheel,) = tmp_path.glob("pix2pix_edge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"pix2pix_edge"}, tops
    for part in PARTS + ("benchmarks",):   # every package folder and every module in it is in the wheel
        for init in (REPO / part).rglob("__init__.py"):
            folder = init.parent.relative_to(REPO)
            for module in init.parent.glob("*.py"):
                assert f"pix2pix_edge/{folder.as_posix()}/{module.name}" in names, module
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "pix2pix = pix2pix_edge.runtime.cli:main" in entry


@pytest.fixture()
def user_folder(tmp_path):
    """A folder such as a user's own project: train.py, export.py, runtime.py that, if anything
    imports or runs them, leave a mark and exit loudly."""
    mark = tmp_path / "USER_FILE_RAN"
    for part in PARTS:
        (tmp_path / f"{part}.py").write_text(
            "import pathlib, sys\n"
            f"pathlib.Path({str(mark)!r}).write_text({part!r})\n"
            f"sys.exit('the user\\'s own {part}.py ran')\n")
    return tmp_path


def _run(args, cwd, pythonpath: bool, timeout=240):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = "."
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("pythonpath", [False, True], ids=["plain", "PYTHONPATH=."])
def test_users_train_export_runtime_py_never_run(user_folder, pythonpath):
    from pix2pix_edge.train.synth import make_dataset
    data = make_dataset(user_folder / "data", n=4, size=32, seed=0)
    mark = user_folder / "USER_FILE_RAN"
    tiny = ["--depth", "5", "--ngf", "4", "--ndf", "4", "--load-size", "32", "--crop-size", "32",
            "--workers", "0", "--no-progress", "--no-tensorboard", "--amp", "off", "--threads", "1",
            "--max-iters", "1"]
    checks = {
        "pix2pix --help": [str(BIN / "pix2pix"), "--help"],
        "pix2pix train --help": [str(BIN / "pix2pix"), "train", "--help"],
        "pix2pix export --help": [str(BIN / "pix2pix"), "export", "--help"],
        # the documented multi-GPU form, with one process: a real one-iteration training
        # (the `--` keeps torchrun's parser from taking --run for its --run-path)
        "torchrun -m pix2pix_edge.runtime.cli -- train": [
            str(BIN / "torchrun"), "--nproc_per_node", "1", "-m", "pix2pix_edge.runtime.cli",
            "--", "train", str(data), "--run", str(user_folder / "run_ddp"), *tiny],
        # how `pix2pix demo` starts each of its steps (a subprocess of this Python)
        "demo step": [sys.executable, "-c",
                      "from pix2pix_edge.train.demo import _run; "
                      "_run('data check', ['data', 'check', 'data'])"],
    }
    for what, args in checks.items():
        out = _run(args, user_folder, pythonpath)
        assert not mark.exists(), f"{what}: the user's {mark.read_text()}.py ran"
        assert out.returncode == 0, f"{what}: exit {out.returncode}\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
        assert "Traceback" not in out.stderr and "own" not in out.stderr, (what, out.stderr)
    assert (user_folder / "run_ddp" / "generator.pt").is_file()
