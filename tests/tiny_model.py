"""The tiny generator every runtime test runs, and its committed copy for torch-free runs.

``export_tiny_onnx`` is the one recipe (depth 5, ngf 4, 64x64, running statistics, legacy
exporter, pix2pix-edge metadata). Where torch is installed the ``tiny_onnx`` fixture runs it;
where it is not (the Python 3.8 runtime environment, like a Jetson on JetPack 5) the fixture
uses ``tests/data/tiny.onnx``, the same recipe's output committed to the repository.
``tests/test_tiny_model.py`` rebuilds it and fails when the committed file is out of date.
Regenerate with ``make tiny-onnx``."""

from __future__ import annotations

from pathlib import Path

COMMITTED = Path(__file__).resolve().parent / "data" / "tiny.onnx"


def export_tiny_onnx(path) -> Path:
    """Export the tiny generator to ``path`` (needs torch, onnx and train/)."""
    import onnx
    import torch

    from pix2pix_edge.runtime.model_info import ModelInfo
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator(depth=5, ngf=4)), "running")
    path = Path(path)
    torch.onnx.export(g, (torch.randn(1, 3, 64, 64),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"])
    model = onnx.load(str(path))
    info = ModelInfo(height=64, width=64, multiple=32, depth=5, ngf=4, source_run="tests")
    for k, v in info.to_props().items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(path))
    return path


def trained_tiny_generator():
    """A tiny BatchNorm U-Net (depth 5, ngf 8) after three real Adam steps, so its running
    statistics have moved. Initialised with gain 0.1 so its outputs span most of [-1, 1]: an
    accuracy bound on near-zero outputs would be too easy to meet (FP16 and INT8 tests)."""
    import torch

    from pix2pix_edge.train.models import UNetGenerator, init_weights

    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=5, ngf=8), gain=0.1).train()
    opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for _ in range(3):
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        loss = (g(x) - x.flip(1)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return g


if __name__ == "__main__":   # make tiny-onnx (python -m tests.tiny_model)
    print(export_tiny_onnx(COMMITTED))
