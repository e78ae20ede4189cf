"""Crafted model files (issue 21, item 11): every value read from a model file is checked against
bounds before it is used, so a hostile or broken file ends the command with one line and exit 4
(model mismatch) -- never a traceback, and never a large allocation first.

Files are made here, small: ONNX files whose pix2pix-edge metadata is nested 100k deep, holds a
5000-digit integer or [-inf, inf]; engine records that are nested or not UTF-8; an ONNX whose
external data points outside its folder; generator files with a missing config, a string
version, a negative, huge or deep architecture, a string state dict, a bad inference record.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.model_info import METADATA_KEY


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line(res, code: int, needle: str) -> str:
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert res.exit_code == code, res.output
    assert len(errors) == 1 and needle in errors[0], res.output
    assert "Traceback" not in res.output and len(errors[0]) < 400, res.output
    return errors[0]


# --------------------------------------------------------------------------- ONNX metadata
def _with_metadata(tiny_onnx, path: Path, text: str) -> Path:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_onnx))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = text
    onnx.save(model, str(path))
    return path


def _metadata(tiny_onnx) -> dict:
    onnx = pytest.importorskip("onnx")
    props = {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}
    return json.loads(props[METADATA_KEY])


HOSTILE_METADATA = {
    "nested": (lambda d: json.dumps(d)[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}",
               "nested more than 8 levels deep"),
    "5000 digits": (lambda d: json.dumps({**d, "ngf": 1})[:-1] + ', "n": ' + "7" * 5000 + "}",
                    "an integer of 5000 digits"),
    "infinite range": (lambda d: json.dumps({**d, "value_range": [float("-inf"), float("inf")]}),
                       "-Infinity is not a number"),
    "absurd range": (lambda d: json.dumps({**d, "value_range": [-1e300, 1e300]}),
                     "value_range must be two finite numbers"),
    "long string": (lambda d: json.dumps({**d, "dataset": "x" * 300_000}),
                    "characters, more than"),
}


@pytest.fixture(scope="module")
def hostile_onnx(tiny_onnx, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    meta = _metadata(tiny_onnx)
    return {name: _with_metadata(tiny_onnx, folder / f"{name.replace(' ', '_')}.onnx", make(meta))
            for name, (make, _) in HOSTILE_METADATA.items()}


@pytest.mark.parametrize("command", ["info", "run", "bench", "export trt"])
@pytest.mark.parametrize("name", list(HOSTILE_METADATA))
def test_hostile_onnx_metadata_is_one_line_exit_4(hostile_onnx, tmp_path, command, name):
    path = hostile_onnx[name]
    args = {"info": ["info", path],
            "run": ["run", path, "--source", tmp_path / "none.png", "--headless"],
            "bench": ["bench", path, "--runs", "1"],
            "export trt": ["export", "trt", path, "-o", tmp_path / "m.engine"]}[command]
    if command == "export trt":
        pytest.importorskip("onnx")
    line = _one_line(_invoke(*args), 4, HOSTILE_METADATA[name][1])
    assert path.name in line


def _external_data_outside(tiny_onnx, path: Path, location: str) -> Path:
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(tiny_onnx))
    weight = model.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "64")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["../../../../etc/passwd", "/etc/passwd"])
@pytest.mark.parametrize("command", ["info", "run", "bench", "export trt"])
def test_external_data_outside_the_folder_is_refused_exit_4(tiny_onnx, tmp_path, command, location):
    """Every command that opens an ONNX file refuses it before ONNX Runtime or TensorRT reads the
    data (older onnxruntime, JetPack's included, would read /etc/passwd as weights)."""
    path = _external_data_outside(tiny_onnx, tmp_path / "outside.onnx", location)
    args = {"info": ["info", path],
            "run": ["run", path, "--source", tmp_path / "none.png", "--headless"],
            "bench": ["bench", path, "--runs", "1"],
            "export trt": ["export", "trt", path, "-o", tmp_path / "m.engine"]}[command]
    line = _one_line(_invoke(*args), 4, "outside.onnx")
    assert "outside the model's folder" in line and location in line


def test_external_data_inside_the_folder_is_read(tiny_onnx, tmp_path):
    """The check refuses only what leaves the folder: a model whose weights sit beside it runs."""
    onnx = pytest.importorskip("onnx")
    np = pytest.importorskip("numpy")
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend
    from pix2pix_edge.runtime.onnx_file import may_use_external_data, refuse_external_data_outside

    model = onnx.load(str(tiny_onnx))
    onnx.save_model(model, str(tmp_path / "beside.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="beside.onnx.data", size_threshold=0)
    assert may_use_external_data(tmp_path / "beside.onnx")
    assert not may_use_external_data(tiny_onnx)           # embedded weights: one scan, no parse
    refuse_external_data_outside(tmp_path / "beside.onnx")
    be = OnnxRuntimeBackend(tmp_path / "beside.onnx", providers=["cpu"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, be.info.height, be.info.width)).astype(np.float32)
    ref = OnnxRuntimeBackend(tiny_onnx, providers=["cpu"])
    np.testing.assert_allclose(be.infer(x), ref.infer(x), atol=1e-6)


def test_onnxruntime_refusal_maps_to_exit_4():
    """Without onnx installed the runtime relies on onnxruntime's own check (>= 1.24): its error
    becomes the same exit code, not "not a loadable ONNX model" (exit 3)."""
    from pix2pix_edge.runtime.backends.onnxruntime import load_error
    from pix2pix_edge.runtime.errors import BadInput, ModelMismatch

    refusal = RuntimeError('[ONNXRuntimeError] : 1 : FAIL : External data path validation failed '
                           'for initializer: w. Error: External data path escapes model directory.')
    err = load_error(Path("m.onnx"), refusal)
    assert isinstance(err, ModelMismatch) and err.exit_code == 4
    assert str(err).startswith("m.onnx: refused: a tensor keeps its data outside the model's folder")
    other = load_error(Path("m.onnx"), RuntimeError("Protobuf parsing failed."))
    assert isinstance(other, BadInput) and other.exit_code == 3


# --------------------------------------------------------------------------- engine records
@pytest.mark.parametrize("record, needle", [
    (b"[" * 100000 + b"]" * 100000, "nested more than 8 levels deep"),
    (b'{"gpu_name": "caf\xe9"}', "not UTF-8 text"),
], ids=["nested", "latin-1"])
def test_hostile_engine_record_is_one_line_exit_4(tmp_path, record, needle):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 64)
    (tmp_path / "m.engine.json").write_bytes(record)
    _one_line(_invoke("info", engine), 4, needle)


# --------------------------------------------------------------------------- generator files
def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


def _crafted_generators(folder: Path) -> dict:
    torch = pytest.importorskip("torch")
    from pix2pix_edge.train.checkpoint import save_generator
    from pix2pix_edge.train.models import UNetGenerator

    save_generator(folder / "good.pt", UNetGenerator(depth=5, ngf=4), norm_mode="running")
    good = torch.load(folder / "good.pt", weights_only=True)

    def craft(name, change):
        record = {**good, "config": dict(good["config"]), "inference": dict(good["inference"])}
        change(record)
        torch.save(record, folder / f"{name}.pt")
        return folder / f"{name}.pt"

    return {
        "missing config": craft("noconfig", lambda r: r.pop("config")),
        "string version": craft("strversion", lambda r: r.update(version="1")),
        "negative ngf": craft("negngf", lambda r: r["config"].update(ngf=-4)),
        "huge ngf": craft("hugengf", lambda r: r["config"].update(ngf=10 ** 6)),
        "ngf not what the weights hold": craft("bigngf", lambda r: r["config"].update(ngf=4000)),
        "depth 100000": craft("deep", lambda r: r["config"].update(depth=100000)),
        "string state_dict": craft("strweights", lambda r: r.update(state_dict="weights")),
        "inference not a record": craft("badinference", lambda r: r.update(inference="fast")),
        "unknown norm mode": craft("badnorm", lambda r: r["inference"].update(norm_mode="bogus")),
        "string data": craft("strdata", lambda r: r.update(data="abc")),
        "config a string": craft("strconfig", lambda r: r.update(config="abc")),
    }


CRAFTED_NEEDLES = {
    "missing config": "no 'config'",
    "string version": "version '1' is not an integer",
    "negative ngf": "ngf -4 is not an integer in 1..4096",
    "huge ngf": "ngf 1000000 is not an integer in 1..4096",
    "ngf not what the weights hold": "weights do not fit a U-Net with",
    "depth 100000": "depth 100000 is not an integer in 5..11",
    "string state_dict": "weights are a str, not a state dict",
    "inference not a record": "inference record is a str",
    "unknown norm mode": "norm_mode 'bogus'",
    "string data": "data record is a str",
    "config a string": "config is a str",
}


@pytest.fixture(scope="module")
def crafted_generators(tmp_path_factory):
    return _crafted_generators(tmp_path_factory.mktemp("crafted"))


@pytest.mark.parametrize("name", list(CRAFTED_NEEDLES))
def test_crafted_generator_file_is_one_line_exit_4_before_any_allocation(crafted_generators,
                                                                         tmp_path, name):
    before = _max_rss_mib()
    path = crafted_generators[name]
    line = _one_line(_invoke("export", "onnx", path, "-o", tmp_path / "m.onnx"), 4,
                     CRAFTED_NEEDLES[name])
    assert path.name in line
    assert _max_rss_mib() - before < 200, "a large allocation before the refusal"
    assert not (tmp_path / "m.onnx").exists()


def test_external_data_inside_the_folder_still_loads(tiny_onnx, tmp_path):
    onnx = pytest.importorskip("onnx")
    from pix2pix_edge.export.to_tensorrt import inspect_onnx

    path = tmp_path / "external.onnx"
    onnx.save(onnx.load(str(tiny_onnx)), str(path), save_as_external_data=True,
              location="external.onnx.data", size_threshold=0)
    assert (tmp_path / "external.onnx.data").is_file()
    assert inspect_onnx(path).info.ngf == 4
