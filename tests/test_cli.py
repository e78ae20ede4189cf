"""The root command: lazy subcommands, one-line errors, exit codes."""

import subprocess
import sys

from click.testing import CliRunner

from pix2pix_edge.runtime.cli import COMMANDS, cli


def test_help_lists_every_command_without_importing_them():
    code = ("import sys; from pix2pix_edge.runtime.cli import cli; "
            "from click.testing import CliRunner; r = CliRunner().invoke(cli, ['--help']); "
            "print(r.output); assert r.exit_code == 0; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx') or m.startswith(('pix2pix_edge.train', 'pix2pix_edge.export'))]; "
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_a_usage_error():
    r = CliRunner().invoke(cli, ["frobnicate"])
    assert r.exit_code == 2 and "No such command" in r.output


def test_a_subcommand_whose_library_is_missing_is_one_line_and_exit_5(tmp_path):
    """Python 3.8 / Jetson runtime installs have no torch: `pix2pix train` must say what to
    install, not end in a ModuleNotFoundError traceback (torch is blocked in a subprocess)."""
    from pix2pix_edge.train.synth import make_dataset   # numpy / PIL only
    data = make_dataset(tmp_path / "d", n=2, size=32, seed=0)
    code = ("import sys, importlib.abc\n"
            "class Block(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ModuleNotFoundError(f\"No module named '{name}'\", name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from pix2pix_edge.runtime.cli import main\n"
            "main(sys.argv[1:])\n")
    out = subprocess.run([sys.executable, "-c", code, "train", str(data), "--run",
                          str(tmp_path / "run"), "--max-iters", "1"], capture_output=True, text=True)
    assert out.returncode == 5, out.stderr
    assert "pix2pix train needs torch, which is not installed here" in out.stderr
    assert "pix2pix-edge[train]" in out.stderr and "Traceback" not in out.stderr
    # the default wheel may be a CUDA 13 build: the CUDA 12 index is named (issue 18)
    assert "--index-url https://download.pytorch.org/whl/cu126" in out.stderr
