"""The documented install commands are what CI runs: scripts/doc_commands.py extracts them from
docs/jetson.md for `make test-py38` (scripts/jetpack5_steps.sh runs them from pip 20.0.2, as on
Ubuntu 20.04). Here: the extraction itself, and the facts the JetPack steps must keep."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("doc_commands", REPO / "scripts" / "doc_commands.py")
doc_commands = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(doc_commands)

JETSON = (REPO / "docs" / "jetson.md").read_text(encoding="utf-8")
MARKER = "make test-py38 runs this block"


def test_block_after_a_marker_comment():
    text = ("intro\n```bash\nnot this\n```\n<!-- CI: the steps -->\nprose\n```bash\n"
            "# a comment line\npython3 -m venv v   # trailing comment\n\npip install 'a # b'\n"
            "```\n```bash\nnor this\n```\n")
    assert doc_commands.block_after(text, "the steps") == ["python3 -m venv v",
                                                           "pip install 'a # b'"]
    with pytest.raises(LookupError, match="no '<!-- ... other"):
        doc_commands.block_after(text, "other")
    with pytest.raises(LookupError, match="no fenced block"):
        doc_commands.block_after("<!-- the steps -->\ntext only\n", "the steps")


def test_the_jetpack5_block_ci_runs_upgrades_pip_before_the_editable_install():
    """Issue 18: Ubuntu 20.04's venv pip 20.0.2 cannot install a pyproject-only project in
    editable mode, and `export trt` needs onnx ([export-jetson])."""
    steps = doc_commands.block_after(JETSON, MARKER)
    assert steps[0].startswith("python3 -m venv --system-site-packages ~/p2p")
    upgrade = next(i for i, s in enumerate(steps) if "pip install --upgrade" in s)
    assert '"pip>=21.3,<25.1"' in steps[upgrade]       # 25.0 is the last pip for Python 3.8
    install = next(i for i, s in enumerate(steps) if s.startswith("pip install -e"))
    assert upgrade < install and "trt-cu11" in steps[install] and "export-jetson" in steps[install]
    assert not any(s.startswith("sudo") or "pix2pix " in s for s in steps)   # runnable in CI


def test_every_documented_jetson_install_that_builds_engines_installs_onnx():
    """A block that runs `pix2pix export trt` must have installed [export-jetson] (onnx)."""
    blocks = JETSON.split("```bash")[1:]
    for block in (b.split("```")[0] for b in blocks):
        if "pip install -e" in block and "export trt" in block:
            assert "export-jetson" in block, block


def test_the_cli_prints_the_block_and_fails_loudly_without_it(tmp_path, capsys):
    assert doc_commands.main([str(REPO / "docs" / "jetson.md"), MARKER]) == 0
    assert capsys.readouterr().out.splitlines() == doc_commands.block_after(JETSON, MARKER)
    (tmp_path / "x.md").write_text("nothing\n")
    assert doc_commands.main([str(tmp_path / "x.md"), MARKER]) == 1
    assert "Error: " in capsys.readouterr().err
