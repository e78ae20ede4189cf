"""The TensorRT backend without TensorRT or a GPU: its pure checks (engine records, versions,
compute capabilities), and its buffer / stream / device plumbing on labelled stand-ins for
``tensorrt`` and cuda-python. Needs neither onnx nor onnxruntime, so it also runs in the
Python 3.8 / numpy 1.17 environment of `make test-py38` (JetPack 5's TensorRT path). The real
engine is exercised by the ``gpu`` tests (tests/test_backends.py, tests/test_gpu.py) and the
real bindings' API by tests/test_trt_api.py."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from pix2pix_edge.runtime.backends import open_backend
from pix2pix_edge.runtime.backends import nvidia
from pix2pix_edge.runtime.backends import tensorrt as trtb
from pix2pix_edge.runtime.backends.base import Backend
from pix2pix_edge.runtime.cli import cli
from pix2pix_edge.runtime.errors import BadInput, ModelMismatch, Unavailable
from pix2pix_edge.runtime.model_info import ModelInfo, write_engine_record

CONTRACT = sorted({*Backend.__annotations__,
                   *(n for n, v in vars(Backend).items()
                     if not n.startswith("_") and (callable(v) or isinstance(v, property)))})



def _x(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


# --------------------------------------------------------------------------- TensorRT (pure)
RECORD = ModelInfo(height=64, width=64, multiple=32, tensorrt_version="10.3.0.30",
                   gpu_name="Orin", compute_capability="8.7", precision="fp16")


def test_engine_record_matching_this_device_passes():
    assert trtb.engine_mismatch("m.engine", RECORD, "10.3.0.26", "Orin", "8.7") is None
    assert trtb.engine_mismatch("m.engine", RECORD, "10.3.0", " orin ", (8, 7)) is None
    # fields a record lacks are not compared
    assert trtb.engine_mismatch("m.engine", ModelInfo(), "11.0.0", "H100", "9.0") is None


@pytest.mark.parametrize("trt_v, gpu, cc", [
    ("10.13.0.35", "Orin", "8.7"),                      # JetPack 7 vs JetPack 6
    ("8.6.2", "Orin", "8.7"),                           # JetPack 5
    ("10.3.0", "NVIDIA GeForce RTX 3060", "8.6"),       # desktop GPU
    ("10.3.0", "Orin", "8.6"),
])
def test_engine_record_mismatch_message(trt_v, gpu, cc):
    msg = trtb.engine_mismatch("model.engine", RECORD, trt_v, gpu, cc)
    assert msg == (f"model.engine was built with TensorRT 10.3.0.30 for Orin (sm_87); this is "
                   f"TensorRT {trt_v} on {gpu} ({trtb.sm(cc)}): rebuild it on this device with "
                   f"`pix2pix export trt model.onnx -o model.engine`")


def test_version_and_compute_capability_parsing():
    assert nvidia.parse_version("10.3.0.26") == (10, 3, 0)
    assert nvidia.parse_version("8.6") == (8, 6, 0)
    assert nvidia.parse_version("11.0.0b1") == (11, 0, 0)
    for cc in ("8.7", "sm_87", "87", "SM87", (8, 7), [8, 7]):
        assert nvidia.parse_compute_capability(cc) == (8, 7), cc
    assert nvidia.parse_compute_capability("10.0") == (10, 0)
    assert nvidia.parse_compute_capability("sm_100") == (10, 0)
    assert nvidia.parse_compute_capability(None) is None
    assert nvidia.parse_compute_capability("banana") is None
    assert nvidia.sm("12.1") == "sm_121"
    assert nvidia.same_version("10.3.0.26", "10.3.0") and not nvidia.same_version("10.3", "10.4")
    assert not nvidia.same_version("banana", "10.3.0")


def test_one_home_for_the_nvidia_helpers():
    """The engine builder uses the runtime's TensorRT / CUDA helpers, not copies of its own."""
    from pix2pix_edge.export import to_tensorrt
    for name in ("import_tensorrt", "import_cudart", "gpu_properties", "parse_version"):
        assert getattr(to_tensorrt, name) is getattr(nvidia, name), name
    for name in ("import_tensorrt", "import_cudart", "gpu_properties", "cuda_call"):
        assert getattr(trtb, name) is getattr(nvidia, name), name


def _too_old_cudart():
    import enum
    from types import SimpleNamespace

    class cudaError_t(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorInsufficientDriver = 35

    return SimpleNamespace(cudaError_t=cudaError_t)


@pytest.mark.parametrize("jetson,driver,runtime,needle,absent", [
    # JetPack 6 with cuda-python 12.9 (its CUDA 12.9 runtime is newer than JetPack's 12.6)
    (True, 12060, 12090, "install the cuda-python matching JetPack's CUDA 12.6, pip install "
                         "'cuda-python==12.6.*'", "update the driver"),
    # JetPack 5: the package index has no cuda-python 11.4
    (True, 11040, 11080, "build cuda-python v11.4.0 from source", "update the driver"),
    # a desktop: the cuda-python of the driver's major, or a newer driver
    (False, 12020, 13000, "pip install 'pix2pix-edge[trt-cu12]', or update the driver", "JetPack"),
])
def test_driver_too_old_fix_on_jetson_names_jetpacks_cuda(monkeypatch, jetson, driver, runtime,
                                                         needle, absent):
    """A Jetson's driver is JetPack's and cannot be updated alone: the error says to install
    the cuda-python of JetPack's CUDA instead of "update the driver" (issue 18 item 5)."""
    cudart = _too_old_cudart()
    monkeypatch.setattr(nvidia, "on_jetson", lambda: jetson)
    monkeypatch.setattr(nvidia, "_versions", lambda c: (driver, runtime))
    err = nvidia.no_gpu_error(cudart, cudart.cudaError_t.cudaErrorInsufficientDriver, "the X")
    line = str(err)
    assert isinstance(err, Unavailable) and "\n" not in line
    assert needle in line and absent not in line, line
    assert line.startswith(f"the X: the NVIDIA driver supports CUDA {driver // 1000}."), line


def test_cuda_python_11_noise_without_a_driver_stays_one_line(capfd):
    """cuda-python 11.x (JetPack 5's [trt-cu11]) reports "Failed to dlopen libcuda.so" from
    inside Cython -- a traceback through sys.excepthook and an "Exception ignored" through
    sys.unraisablehook -- before raising. A stand-in does the same here: the user sees one
    line naming the cause, and the hooks are put back."""
    import sys
    from types import SimpleNamespace

    def count():
        try:
            raise RuntimeError("Failed to dlopen libcuda.so")
        except RuntimeError as e:
            sys.excepthook(type(e), e, e.__traceback__)
            sys.unraisablehook(SimpleNamespace(exc_type=type(e), exc_value=e,
                                               exc_traceback=e.__traceback__, err_msg=None,
                                               object=None))
        raise RuntimeError('Function "cuDeviceGetCount" not found')

    hooks = sys.excepthook, sys.unraisablehook
    with pytest.raises(Unavailable) as e:
        nvidia.gpu_properties(SimpleNamespace(cudaGetDeviceCount=count), 0)
    assert str(e.value) == ("the TensorRT backend needs an NVIDIA GPU; CUDA found none "
                            "(cuda-python: Failed to dlopen libcuda.so)")
    assert capfd.readouterr() == ("", "")
    assert (sys.excepthook, sys.unraisablehook) == hooks


def test_installed_cuda_python_without_a_driver_is_one_line():
    """Whatever cuda-python this Python has (in `make test-py38`: the 11.x of JetPack 5's
    [trt-cu11], installed by the documented steps): no GPU is one line, nothing else printed."""
    import ctypes
    import subprocess
    import sys

    code = ("from pix2pix_edge.runtime.backends import nvidia\n"
            "from pix2pix_edge.runtime.errors import Unavailable\n"
            "try:\n    nvidia.gpu_properties(nvidia.import_cudart(), 0)\n"
            "except Unavailable as e:\n    print(e)\n")
    try:
        nvidia.import_cudart()
    except Unavailable:
        pytest.skip("no cuda-python in this Python")
    try:
        ctypes.CDLL("libcuda.so.1")
        pytest.skip("this machine has an NVIDIA driver")
    except OSError:
        pass
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1 and "needs an NVIDIA GPU; CUDA found none" in lines[0], res.stdout


def test_tensorrt_backend_without_tensorrt_is_unavailable(tmp_path):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0" * 64)
    write_engine_record(engine, RECORD)
    with pytest.raises(Unavailable, match="needs the Python package 'tensorrt'"):
        trtb.TensorRTBackend(engine)
    r = CliRunner().invoke(cli, ["bench", str(engine)])
    assert r.exit_code == 5 and len(r.output.strip().splitlines()) == 1, r.output
    r = CliRunner().invoke(cli, ["info", str(engine)])   # the record is still shown
    assert r.exit_code == 0, r.output
    assert "built with TensorRT 10.3.0.30 for Orin" in r.output and "not here:" in r.output


def test_info_on_random_bytes_named_engine_does_not_call_them_an_engine(tmp_path):
    """Issue 21, item 12: random bytes named .engine were "format TensorRT engine", exit 0. With
    no record and no TensorRT to read them, nothing says what they are: exit 5, one line."""
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    engine = tmp_path / "noise.engine"
    engine.write_bytes(bytes(range(256)) * 4)
    r = CliRunner().invoke(cli, ["info", str(engine)])
    assert r.exit_code == 5, r.output
    assert "TensorRT engine" not in r.output and "format       unknown" in r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "no record beside it (noise.engine.json)" in errors[0], r.output


# --------------------------------------------------------------------------- TensorRT (fake)
class _FakeCudart:
    """A stand-in for cuda-python's runtime module, for this GPU-less machine: "device" memory
    is host memory, copies are memmove. It follows cuda-python's calling convention (every
    call returns ``(err, *values)``) so the backend's buffer and stream plumbing can be checked
    here; the real thing is exercised by the ``gpu`` tests above."""

    import enum as _enum

    class cudaError_t(_enum.IntEnum):
        cudaSuccess = 0
        cudaErrorNoDevice = 100

    class cudaMemcpyKind(_enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class _Stream:
        def __int__(self):
            return 0xC0FFEE

    def __init__(self, devices=1):
        import ctypes
        self.ctypes = ctypes
        self.devices = devices
        self.live: dict[int, object] = {}
        self.log: list[str] = []
        self.streams = 0
        self.copy_threads: set[str] = set()

    def _ok(self, *values):
        return (self.cudaError_t.cudaSuccess, *values)

    def cudaGetDeviceCount(self):
        if not self.devices:
            return (self.cudaError_t.cudaErrorNoDevice, 0)
        return self._ok(self.devices)

    def cudaGetDeviceProperties(self, device):
        from types import SimpleNamespace
        return self._ok(SimpleNamespace(name=b"Orin\0\0\0\0", major=8, minor=7))

    def cudaSetDevice(self, device):
        import threading
        self.log.append(f"set device {device} on {threading.current_thread().name}")
        return self._ok()

    def _alloc(self, n, kind):
        buf = self.ctypes.create_string_buffer(n)
        ptr = self.ctypes.addressof(buf)
        self.live[ptr] = buf
        self.log.append(f"{kind} {n}")
        return self._ok(ptr)

    def cudaMallocHost(self, n):
        return self._alloc(n, "host")

    def cudaMalloc(self, n):
        return self._alloc(n, "device")

    def cudaFree(self, ptr):
        del self.live[int(ptr)]
        return self._ok()

    cudaFreeHost = cudaFree

    def cudaStreamCreate(self):
        self.streams += 1
        return self._ok(self._Stream())

    def cudaStreamDestroy(self, stream):
        self.streams -= 1
        return self._ok()

    def cudaStreamSynchronize(self, stream):
        return self._ok()

    def cudaMemcpyAsync(self, dst, src, count, kind, stream):
        import threading
        self.ctypes.memmove(int(dst), int(src), int(count))
        self.log.append(f"copy {kind.name} {count}")
        self.copy_threads.add(threading.current_thread().name)
        return self._ok()


def _fake_tensorrt(dynamic: bool, io_dtype=np.float32, calls=None, legacy_profile=False):
    """A stand-in for the ``tensorrt`` module with an "engine" computing ``y = 0.5 * x``.
    ``calls`` records plugin registration and deserialisation, in order. ``legacy_profile``:
    the engine has only the 8.x ``get_profile_shape(profile, name)``."""
    import ctypes
    import enum
    from types import ModuleType

    trt = ModuleType("tensorrt")
    trt.__version__ = "10.3.0.30"

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    class Logger:
        ERROR = 2

        def __init__(self, level):
            pass

    shape = (-1, 3, -1, -1) if dynamic else (1, 3, 64, 64)
    profile = [(1, 3, 32, 32), (1, 3, 64, 64), (2, 3, 128, 128)]

    class Context:
        def __init__(self):
            self.shape = None if dynamic else shape
            self.addr = {}

        def set_input_shape(self, name, s):
            assert name == "input"
            self.shape = tuple(s)
            return True

        def get_tensor_shape(self, name):
            return self.shape

        def set_tensor_address(self, name, ptr):
            self.addr[name] = int(ptr)

        def execute_async_v3(self, stream_handle):
            assert stream_handle == 0xC0FFEE
            n = int(np.prod(self.shape))
            nbytes = n * np.dtype(io_dtype).itemsize
            u8 = ctypes.POINTER(ctypes.c_uint8)
            x = np.ctypeslib.as_array(ctypes.cast(self.addr["input"], u8), (nbytes,))
            y = np.ctypeslib.as_array(ctypes.cast(self.addr["output"], u8), (nbytes,))
            x, y = x.view(io_dtype), y.view(io_dtype)
            y[:] = x * 0.5
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ("input", "output")[i]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name == "input" else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return shape

        def get_tensor_dtype(self, name):
            return np.dtype(io_dtype).name

        def get_tensor_profile_shape(self, name, index):
            assert (name, index) == ("input", 0)
            return profile

        def get_profile_shape(self, index, name):
            assert (index, name) == (0, "input")
            return profile

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            if calls is not None:
                calls.append("deserialize_cuda_engine")
            return Engine() if blob.startswith(b"FAKE-ENGINE") else None

    def init_libnvinfer_plugins(logger, namespace):
        assert isinstance(logger, Logger) and namespace == ""
        if calls is not None:
            calls.append("init_libnvinfer_plugins")
        return True

    if legacy_profile:
        del Engine.get_tensor_profile_shape
    trt.TensorIOMode, trt.Logger, trt.Runtime = TensorIOMode, Logger, Runtime
    trt.init_libnvinfer_plugins = init_libnvinfer_plugins
    trt.nptype = lambda name: np.dtype(name).type
    return trt


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """Install the fakes; returns (make_engine, cudart). Labelled fake: no GPU here."""
    import sys
    cudart = _FakeCudart()
    cudart.trt_calls = []
    monkeypatch.setattr(trtb, "import_cudart", lambda: cudart)

    def make(dynamic=False, io_dtype=np.float32, record=True, blob=b"FAKE-ENGINE",
             legacy_profile=False):
        monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(
            dynamic, io_dtype, cudart.trt_calls, legacy_profile=legacy_profile))
        path = tmp_path / ("dyn.engine" if dynamic else "static.engine")
        path.write_bytes(blob)
        if record:
            write_engine_record(path, ModelInfo(
                height=64, width=64, multiple=32, dynamic=dynamic,
                io_dtype=np.dtype(io_dtype).name, tensorrt_version="10.3.0.30", gpu_name="Orin",
                compute_capability="8.7"))
        return path
    return make, cudart


@pytest.mark.parametrize("io_dtype", [np.float32, np.float16])
def test_tensorrt_plumbing_with_fakes_static(fake_gpu, io_dtype):
    make, cudart = fake_gpu
    be = open_backend(make(io_dtype=io_dtype))
    assert be.provider == "TensorRT 10.3.0.30" and be.gpu_name == "Orin"
    missing = [n for n in CONTRACT if not hasattr(be, n)]
    assert not missing, missing
    assert be.providers == [be.provider] and be.threads is None and be.precision == "fp32"
    assert be.metadata_source == "record" and be.input_shape == [1, 3, 64, 64]
    assert be.info.io_dtype == np.dtype(io_dtype).name and not be.info.dynamic
    nbytes = 3 * 64 * 64 * np.dtype(io_dtype).itemsize
    assert cudart.log == ["set device 0 on MainThread"] + [f"host {nbytes}", f"device {nbytes}"] * 2
    x = _x((1, 3, 64, 64))
    y = be.infer(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x * 0.5, atol=1e-3 if io_dtype == np.float16 else 0)
    y2 = be.infer(-x)
    np.testing.assert_allclose(y, x * 0.5, atol=1e-3)   # an earlier result is not overwritten
    np.testing.assert_allclose(y2, -x * 0.5, atol=1e-3)
    with pytest.raises(BadInput, match="model expects 1x3x64x64, got 1x3x32x32"):
        be.infer(_x((1, 3, 32, 32)))
    be.close()
    be.close()   # twice is fine
    assert cudart.live == {} and cudart.streams == 0


def test_tensorrt_plumbing_with_fakes_dynamic(fake_gpu):
    make, cudart = fake_gpu
    be = open_backend(make(dynamic=True))
    assert be.info.dynamic
    assert cudart.log[1:3] == [f"host {2 * 3 * 128 * 128 * 4}", f"device {2 * 3 * 128 * 128 * 4}"]
    for shape in [(1, 3, 64, 64), (2, 3, 32, 96), (1, 3, 128, 128)]:
        x = _x(shape)
        np.testing.assert_array_equal(be.infer(x), x * 0.5)
    # copies move only the current shape's bytes, not the whole (maximum-size) buffer
    assert cudart.log[-2:] == [f"copy cudaMemcpyHostToDevice {3 * 128 * 128 * 4}",
                               f"copy cudaMemcpyDeviceToHost {3 * 128 * 128 * 4}"]
    with pytest.raises(BadInput, match=r"accepts 1x3x32x32 up to 2x3x128x128 .*got 1x3x160x160"):
        be.infer(_x((1, 3, 160, 160)))
    be.close()
    assert cudart.live == {} and cudart.streams == 0


def test_tensorrt_without_record_uses_the_profile(fake_gpu):
    make, _ = fake_gpu
    be = open_backend(make(dynamic=True, record=False))
    assert be.metadata_source == "engine" and (be.info.height, be.info.width) == (64, 64)
    be.close()


@pytest.mark.parametrize("legacy_profile", [False, True])
def test_dynamic_engine_info_carries_its_own_profile(fake_gpu, legacy_profile):
    """The engine's profile (read with get_tensor_profile_shape, or the 8.x get_profile_shape
    where a binding lacks it) is in the backend's info: the run size is chosen inside it."""
    from pix2pix_edge.runtime.frames import choose_model_size

    make, _ = fake_gpu
    for record in (True, False):
        be = open_backend(make(dynamic=True, record=record, legacy_profile=legacy_profile))
        assert be.info.extra["profile"] == {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64],
                                            "max": [2, 3, 128, 128]}
        assert choose_model_size(be.info)[0] == (64, 64)
        be.close()


def test_run_on_hd_video_picks_the_profile_opt_size_and_says_why(fake_gpu, tmp_path):
    """Issue 18: a dynamic engine fed 1280x720 frames ran at 1280x736 and failed at the first
    inference. Now it runs at its profile's opt size, and the run's first lines say so."""
    import cv2

    from pix2pix_edge.runtime.pipeline import PipelineOptions, run_pipeline
    from pix2pix_edge.runtime.video import open_source

    make, _ = fake_gpu
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((720, 1280, 3), 40 * i, np.uint8))
    lines = []
    with open_backend(make(dynamic=True)) as be, open_source(str(frames)) as src:
        stats = run_pipeline(be, src, None, PipelineOptions(log=lines.append, warmup=1))
        assert stats.frames_out == 3 and stats.model_size == (64, 64)
        assert stats.output_size == (720, 720)                    # crop: the centred square
        assert lines[0] == ("model size 64x64: the opt size of the engine's optimisation "
                            "profile (32x32 to 128x128; --size WxH within it to change)")
        with open_source(str(frames)) as again, pytest.raises(BadInput, match="outside the "
                                                               "engine's optimisation profile"):
            run_pipeline(be, again, None, PipelineOptions(size=(1280, 736)))


def test_close_never_frees_buffers_under_a_running_inference(fake_gpu, monkeypatch):
    """Issue 18: `pix2pix run` closes the backend after the pipeline's join, also when the
    inference thread outlived the join timeout; freeing the buffers then would pull them from
    under execute_async_v3. close() waits for the inference, and frees nothing if it hangs."""
    import threading

    make, cudart = fake_gpu
    be = open_backend(make())
    started, release = threading.Event(), threading.Event()
    run = be._context.execute_async_v3

    def slow_execute(stream):
        started.set()
        assert release.wait(10)
        return run(stream)

    be._context.execute_async_v3 = slow_execute
    x, out = _x((1, 3, 64, 64)), {}
    worker = threading.Thread(target=lambda: out.setdefault("y", be.infer(x)))
    worker.start()
    assert started.wait(10)
    monkeypatch.setattr(trtb.TensorRTBackend, "CLOSE_WAIT_S", 0.2)
    be.close()                                  # the inference hangs: nothing is freed
    assert len(cudart.live) == 4 and cudart.streams == 1
    release.set()
    worker.join(10)
    np.testing.assert_array_equal(out["y"], x * 0.5)    # its buffers were still there
    be.close()                                  # now idle: everything is freed
    assert cudart.live == {} and cudart.streams == 0
    with pytest.raises(RuntimeError, match="closed"):
        be.infer(x)


def test_tensorrt_errors_with_fakes(fake_gpu, tmp_path):
    make, cudart = fake_gpu
    with pytest.raises(ModelMismatch, match="cannot load this engine"):
        open_backend(make(blob=b"garbage"))
    engine = make()
    write_engine_record(engine, ModelInfo(tensorrt_version="8.6.2", gpu_name="Orin",
                                          compute_capability="8.7"))
    r = CliRunner().invoke(cli, ["bench", str(engine)])
    assert r.exit_code == 4 and "built with TensorRT 8.6.2 for Orin (sm_87); this is TensorRT " \
                                 "10.3.0.30 on Orin (sm_87)" in r.output, r.output
    cudart.devices = 0
    with pytest.raises(Unavailable, match="needs an NVIDIA GPU"):
        open_backend(engine)
    assert cudart.live == {}


def test_info_on_an_engine_with_fakes(fake_gpu):
    make, _ = fake_gpu
    r = CliRunner().invoke(cli, ["info", str(make(dynamic=True))])
    assert r.exit_code == 0, r.output
    assert "input        input  float32  ?x3x?x?" in r.output
    assert "runs on      TensorRT 10.3.0.30 on Orin" in r.output


def test_info_checks_what_run_checks_on_an_engine(fake_gpu):
    """Issue 21, item 12: `info` reported exit 0 for files `run` refuses. A file TensorRT cannot
    load, or an engine for another TensorRT, is shown, then one error line, exit 4."""
    make, _ = fake_gpu
    r = CliRunner().invoke(cli, ["info", str(make(blob=b"garbage", record=False))])
    assert r.exit_code == 4 and "cannot load this engine" in r.output.splitlines()[-1], r.output
    assert "TensorRT engine" not in r.output
    engine = make()
    write_engine_record(engine, ModelInfo(tensorrt_version="8.6.2", gpu_name="Orin",
                                          compute_capability="8.7"))
    r = CliRunner().invoke(cli, ["info", str(engine)])
    assert r.exit_code == 4, r.output
    assert "built with TensorRT 8.6.2 for Orin" in r.output        # the record, shown
    assert r.output.splitlines()[-1].startswith("Error: static.engine was built with TensorRT "
                                                "8.6.2 for Orin (sm_87); this is TensorRT 10.3")


def test_tensorrt_plugins_are_registered_before_the_engine_is_deserialised(fake_gpu):
    """Engines built by TensorRT 8.x hold the InstanceNormalization_TRT plugin: a fresh process
    must call init_libnvinfer_plugins before deserialize_cuda_engine (onnx-tensorrt #597)."""
    make, cudart = fake_gpu
    be = open_backend(make())
    assert cudart.trt_calls == ["init_libnvinfer_plugins", "deserialize_cuda_engine"]
    be.close()


def test_tensorrt_infers_on_the_named_device_from_a_worker_thread(fake_gpu):
    """The pipeline opens the backend on the main thread and infers on its own thread: CUDA's
    current device is per thread, so the worker must select --device itself before any copy."""
    import threading

    make, cudart = fake_gpu
    cudart.devices = 2
    be = open_backend(make(), device=1)
    assert cudart.log[0] == "set device 1 on MainThread"
    out = {}
    worker = threading.Thread(target=lambda: out.update(y=be.infer(_x((1, 3, 64, 64)))),
                              name="infer-worker")
    worker.start()
    worker.join()
    assert out["y"].shape == (1, 3, 64, 64)
    first_worker_call = next(e for e in cudart.log if "infer-worker" in e or e.startswith("copy"))
    assert first_worker_call == "set device 1 on infer-worker", cudart.log
    assert cudart.copy_threads == {"infer-worker"}
    be.infer(_x((1, 3, 64, 64)))      # once per thread, not once per call
    be.infer(_x((1, 3, 64, 64)))
    assert [e for e in cudart.log if e.startswith("set device")] == [
        "set device 1 on MainThread", "set device 1 on infer-worker"]
    be.close()
    with pytest.raises(Unavailable, match=r"GPU 2 does not exist \(this machine has 2: "
                                          r"--device 0 to 1\)"):
        open_backend(make(), device=2)
