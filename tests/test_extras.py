"""The extras of pyproject.toml resolve to what each target machine needs (issue 18 item 5):
on a Jetson (Linux aarch64) cuda-python is pinned to JetPack's CUDA minor version, and the
`export-jetson` extra never asks for a numpy newer than JetPack's. Markers and specifiers are
evaluated with `packaging` for each machine; nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
from packaging.requirements import Requirement  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def machine(arch: str, python: str) -> dict:
    return {"platform_machine": arch, "sys_platform": "linux", "python_version": python,
            "python_full_version": python + ".0", "platform_system": "Linux",
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "os_name": "posix", "extra": ""}


def wanted(extra: str, env: dict) -> dict:
    """{name: SpecifierSet} of what the extra asks for on that machine."""
    out = {}
    for line in EXTRAS[extra]:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(env):
            assert req.name not in out, f"{extra}: {req.name} asked for twice on {env}"
            out[req.name] = req.specifier
    return out


@pytest.mark.parametrize("extra,arch,python,allowed,refused", [
    # JetPack 6.1 / 6.2: CUDA 12.6 (12.9 statically links a newer runtime than the driver's)
    ("trt-cu12", "aarch64", "3.10", ["12.6.0", "12.6.2.post1"], ["12.9.0", "12.5.0", "13.0.0"]),
    # JetPack 7 (Thor): CUDA 13.0
    ("trt-cu13", "aarch64", "3.12", ["13.0.0", "13.0.3"], ["13.1.0", "12.9.0"]),
    # JetPack 5: CUDA 11.4; the package index starts at 11.5
    ("trt-cu11", "aarch64", "3.8", ["11.5.0"], ["11.8.0", "12.6.0"]),
    # desktops keep the whole major (minor version compatibility)
    ("trt-cu12", "x86_64", "3.11", ["12.6.0", "12.9.0"], ["13.0.0"]),
    ("trt-cu13", "x86_64", "3.12", ["13.0.0", "13.4.4"], ["14.0.0"]),
])
def test_cuda_python_pins_per_machine(extra, arch, python, allowed, refused):
    spec = wanted(extra, machine(arch, python))["cuda-python"]
    assert all(spec.contains(v) for v in allowed), (extra, arch, spec)
    assert not any(spec.contains(v) for v in refused), (extra, arch, spec)


@pytest.mark.parametrize("extra", ["trt-cu12", "trt-cu13", "trt-cu11"])
def test_no_tensorrt_wheel_on_a_jetson(extra):
    """TensorRT comes with JetPack: nothing may be installed over it."""
    assert set(wanted(extra, machine("aarch64", "3.10"))) == {"cuda-python"}


@pytest.mark.parametrize("python,onnx_ok,onnx_refused", [
    ("3.8", ["1.15.0"], ["1.16.0", "1.17.0"]),           # JetPack 5: numpy 1.17
    ("3.10", ["1.15.0", "1.17.0"], ["1.18.0"]),          # JetPack 6: numpy 1.21
    ("3.12", ["1.15.0", "1.19.0"], []),                  # JetPack 7: numpy 1.26
])
def test_export_jetson_never_pulls_a_numpy_over_jetpacks(python, onnx_ok, onnx_refused):
    """onnx >= 1.16 needs numpy >= 1.20 and onnx >= 1.18 numpy >= 1.22 (their metadata): on
    JetPack's numpy those would install a second numpy into the environment. `export trt`
    needs onnx only (no onnxslim, no torch)."""
    asked = wanted("export-jetson", machine("aarch64", python))
    assert set(asked) == {"onnx"}
    assert all(asked["onnx"].contains(v) for v in onnx_ok), asked
    assert not any(asked["onnx"].contains(v) for v in onnx_refused), asked
