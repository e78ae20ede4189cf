"""The runtime never imports PyTorch, train/ or export/.

A subprocess installs an importer at the front of ``sys.meta_path`` that raises ImportError for
``torch``, ``pix2pix_edge.train`` and ``pix2pix_edge.export``, then imports every runtime module and runs ``pix2pix info``,
``pix2pix bench`` and ``pix2pix run --help`` on a real ONNX model. Any import of a blocked
package anywhere in those paths fails the test."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = ("torch", "pix2pix_edge.train", "pix2pix_edge.export")
    attempts = []

    def _blocked(name):
        return any(name == b or name.startswith(b + ".") for b in BLOCKED)

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if _blocked(name):
                attempts.append(name)
                raise ImportError(f"blocked by test_no_torch: {name}")
            return None

    sys.meta_path.insert(0, Block())

    # the blocker works (a test that cannot fail is worthless)
    for name in BLOCKED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{name} imported despite the blocker")
    attempts.clear()

    import pix2pix_edge.runtime as runtime
    modules = [m.name for m in pkgutil.walk_packages(runtime.__path__, "pix2pix_edge.runtime.")]
    for name in modules:
        importlib.import_module(name)

    from click.testing import CliRunner
    from pix2pix_edge.runtime.cli import cli

    model = sys.argv[1]
    for args in (["info", model], ["bench", model, "--warmup", "1", "--runs", "2"],
                 ["run", "--help"]):
        r = CliRunner().invoke(cli, args)
        if r.exit_code != 0:
            raise SystemExit(f"pix2pix {' '.join(args)} -> {r.exit_code}: {r.output} "
                             f"{r.exception!r}")
    bad = sorted(m for m in sys.modules if _blocked(m))
    if bad:
        raise SystemExit(f"imported: {bad}")
    if attempts:   # even a guarded `try: import torch` breaks the rule
        raise SystemExit(f"tried to import: {sorted(set(attempts))}")
    print("OK", len(modules), "modules")
""")


def test_runtime_runs_without_torch_train_or_export(tiny_onnx):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_onnx)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("OK"), out.stdout
