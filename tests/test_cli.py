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
