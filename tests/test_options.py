"""runtime/options.py: one dataclass field = one flag, one check, exit 2 on one line."""

from __future__ import annotations

from dataclasses import dataclass

import click
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.errors import BadUsage
from pix2pix_edge.runtime.options import check_options, click_options, option

MODES = ("fast", "exact")


@dataclass
class Toy:
    threads: int | None = option(None, "CPU threads.", min=1, max=64, type=int)
    mode: str = option("fast", "How.", choices=MODES)
    scale: float = option(1.0, "Scale.", min=0)
    dry_run: bool = option(False, "Only print.", switch=True)
    overlay: bool = option(True, "Draw text.")
    output: str = option("-", "Where.", short="-o", flag="--out")


@click.command()
@click_options(Toy)
def toy(**kw):
    o = Toy(**kw)
    check_options(o)
    click.echo(repr(o))


def test_flags_come_from_the_fields():
    params = {p.name: p for p in toy.params}
    assert params["threads"].opts == ["--threads"] and params["threads"].default is None
    assert isinstance(params["threads"].type, click.IntRange)
    assert (params["threads"].type.min, params["threads"].type.max) == (1, 64)
    assert isinstance(params["mode"].type, click.Choice) and tuple(params["mode"].type.choices) == MODES
    assert isinstance(params["scale"].type, click.FloatRange)
    assert params["dry_run"].is_flag and params["dry_run"].secondary_opts == []
    assert params["overlay"].secondary_opts == ["--no-overlay"]
    assert params["output"].opts == ["--out", "-o"]
    r = CliRunner().invoke(toy, ["--threads", "2", "--mode", "exact", "--dry-run", "--no-overlay",
                                 "-o", "x"])
    assert r.exit_code == 0, r.output
    assert "Toy(threads=2, mode='exact', scale=1.0, dry_run=True, overlay=False, output='x')" in r.output


@pytest.mark.parametrize("kw, message", [
    ({"threads": 0}, "--threads must be at least 1, got 0"),
    ({"threads": 65}, "--threads must be at most 64, got 65"),
    ({"mode": "slow"}, "--mode must be fast or exact, not 'slow'"),
    ({"scale": -0.5}, "--scale must be at least 0, got -0.5"),
])
def test_python_callers_get_the_same_checks(kw, message):
    with pytest.raises(BadUsage, match=message):
        check_options(Toy(**kw))
    assert BadUsage.exit_code == 2


def test_a_bad_command_line_is_one_line_exit_2():
    from pix2pix_edge.runtime.cli import cli

    for argv, fragment in ((["--bogus"], "No such option '--bogus'"),
                           (["nocmd"], "No such command 'nocmd'"),
                           (["export", "onnx"], "Missing argument 'SOURCE'"),
                           (["train", "d", "--ngf", "0"], "--ngf")):
        r = CliRunner().invoke(cli, argv)
        assert r.exit_code == 2, (argv, r.output)
        assert r.output.count("\n") == 1 and r.output.startswith("Error: "), r.output
        assert fragment in r.output and "--help)" in r.output
