"""What a Jetson on JetPack 5 (Python 3.8, numpy 1.17, OpenCV 4.5, TensorRT 8.5) runs imports on
the Python running the tests: every runtime module and `pix2pix export trt` (engines are built
on the device). `make test-py38` runs this file with Python 3.8; on newer Pythons it checks the
same modules compile for 3.8's grammar where a 3.8 interpreter is at hand."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JETSON_MODULES = ["pix2pix_edge.export.cli", "pix2pix_edge.export.to_tensorrt",
                  "pix2pix_edge.export.fp16"]


def test_runtime_and_engine_build_import_here():
    import pix2pix_edge.runtime as runtime

    names = [m.name for m in pkgutil.walk_packages(runtime.__path__, "pix2pix_edge.runtime.")]
    assert len(names) > 10
    for name in names + JETSON_MODULES:
        importlib.import_module(name)


def test_sources_compile_with_python_38():
    """Syntax a 3.8 interpreter rejects (match, parenthesised context managers, ...) in the code
    JetPack 5 runs. Run-time-only features (str.removeprefix, list[int] evaluated) are caught by
    the import test above under `make test-py38`."""
    candidates = [sys.executable] if sys.version_info[:2] == (3, 8) else []
    candidates += sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))
    candidates += [shutil.which("python3.8")] if shutil.which("python3.8") else []
    py38 = next((c for c in candidates if subprocess.run(
        [str(c), "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
        capture_output=True).returncode == 0), None)
    if not py38:
        pytest.skip("no Python 3.8 interpreter on this machine")
    files = [str(p) for p in (REPO / "runtime").rglob("*.py")]
    files += [str(REPO / "export" / f"{m.rsplit('.', 1)[1]}.py") for m in JETSON_MODULES]
    code = ("import sys\nfor f in sys.argv[1:]:\n"
            "    compile(open(f, encoding='utf-8').read(), f, 'exec', dont_inherit=True)\n")
    res = subprocess.run([str(py38), "-c", code, *files], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
