"""The root command: lazy subcommands, one-line errors, exit codes."""

import subprocess
import sys

from click.testing import CliRunner

from runtime.cli import COMMANDS, cli


def test_help_lists_every_command_without_importing_them():
    code = ("import sys; from runtime.cli import cli; "
            "from click.testing import CliRunner; r = CliRunner().invoke(cli, ['--help']); "
            "print(r.output); assert r.exit_code == 0; "
            "bad = [m for m in ('torch', 'train', 'export', 'onnx') if m in sys.modules]; "
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_a_usage_error():
    r = CliRunner().invoke(cli, ["frobnicate"])
    assert r.exit_code == 2 and "No such command" in r.output
