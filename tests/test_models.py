"""The networks match the reference code: parameter counts, shapes, inference modes, checkpoints."""

import copy

import pytest
import torch

from pix2pix_edge.runtime.errors import BadInput, ModelMismatch
from pix2pix_edge.train.checkpoint import load_generator, save_generator
from pix2pix_edge.train.models import (PatchDiscriminator, UNetGenerator, count_parameters, inference_copy,
                          init_weights)


def test_parameter_counts_match_reference():
    assert count_parameters(UNetGenerator(depth=8, ngf=64, norm="batch")) == 54_413_955
    assert count_parameters(UNetGenerator(depth=8, ngf=64, norm="instance")) == 54_409_603
    assert count_parameters(PatchDiscriminator(6, 64, n_layers=3, norm="batch")) == 2_768_705


def test_shapes():
    g = UNetGenerator(depth=6, ngf=4)
    assert g(torch.randn(2, 3, 64, 128)).shape == (2, 3, 64, 128)
    d = PatchDiscriminator(6, 8, n_layers=3)
    assert d(torch.randn(1, 6, 256, 256)).shape == (1, 1, 30, 30)  # 70x70 PatchGAN
    pixel = PatchDiscriminator(6, 8, n_layers=0)
    assert pixel(torch.randn(1, 6, 32, 32)).shape == (1, 1, 32, 32)


def test_dropout_only_in_inner_blocks():
    g = UNetGenerator(depth=8, ngf=4, dropout=True)
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 3
    g7 = UNetGenerator(depth=7, ngf=4, dropout=True)
    assert sum(isinstance(m, torch.nn.Dropout) for m in g7.modules()) == 2


def test_init_weights_statistics():
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=6, ngf=16))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.002
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.01


def test_per_image_mode_equals_train_mode_batchnorm_at_batch_1():
    """The reference test.py runs BatchNorm in training mode at batch 1: per-image statistics."""
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=6, ngf=8, dropout=False))
    x = torch.randn(1, 3, 64, 64)
    g.train()
    with torch.no_grad():
        ref = g(x)
    per_image = inference_copy(g, "per-image")
    assert torch.allclose(per_image(x), ref, atol=1e-5)
    # Per image means per image: a batch gives each image its own result.
    x2 = torch.cat([x, torch.randn(1, 3, 64, 64) * 3])
    assert torch.allclose(per_image(x2)[:1], ref, atol=1e-5)
    # Running statistics are a different function, deterministic, and leave the original alone.
    running = inference_copy(g, "running")
    assert not torch.allclose(running(x), ref, atol=1e-3)
    assert g.training and all(p.requires_grad for p in g.parameters())


def test_dropout_removed_or_kept():
    torch.manual_seed(0)
    g = UNetGenerator(depth=6, ngf=8, dropout=True)
    x = torch.randn(1, 3, 64, 64)
    det = inference_copy(g, "running", dropout=False)
    assert torch.equal(det(x), det(x))
    sto = inference_copy(g, "running", dropout=True)
    assert not torch.equal(sto(x), sto(x))


def test_generator_file_roundtrip_and_reference_state_dict(tmp_path):
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=6, ngf=8))
    save_generator(tmp_path / "g.pt", g, norm_mode="running", data={"direction": "BtoA"})
    loaded, record = load_generator(tmp_path / "g.pt")
    assert record["config"] == g.config and record["inference"]["norm_mode"] == "running"
    assert record["data"]["direction"] == "BtoA"
    for a, b in zip(g.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    # A bare state dict as the reference code writes (latest_net_G.pth): architecture inferred.
    torch.save(g.state_dict(), tmp_path / "latest_net_G.pth")
    loaded, record = load_generator(tmp_path / "latest_net_G.pth")
    assert record["config"]["depth"] == 6 and record["config"]["ngf"] == 8
    assert record["inference"]["norm_mode"] == "per-image"  # the reference test.py default


def test_generator_file_errors(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_generator(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput, match="corrupt"):
        load_generator(tmp_path / "junk.pt")
    g = UNetGenerator(depth=6, ngf=8)
    save_generator(tmp_path / "g.pt", g, norm_mode="running")
    obj = torch.load(tmp_path / "g.pt", weights_only=True)
    obj["config"]["ngf"] = 16  # weights no longer fit
    torch.save(obj, tmp_path / "other.pt")
    with pytest.raises(ModelMismatch, match="another architecture"):
        load_generator(tmp_path / "other.pt")
    with pytest.raises(BadInput, match="no generator.pt"):
        load_generator(tmp_path)


@pytest.mark.parametrize("mode", ["per-image", "running"])
def test_sync_batchnorm_generator_gets_the_recorded_inference_mode(mode):
    """--sync-bn trains with SyncBatchNorm, which is not a BatchNorm2d: the per-image mode must
    still replace it (sample images, eval and export use the recorded mode), and the running
    mode must give a plain BatchNorm2d with the same statistics (no process group needed)."""
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(depth=5, ngf=4))
    with torch.no_grad():   # give the running statistics something to say
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(g))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules())
    plain, sync = inference_copy(g, mode), inference_copy(synced, mode)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in sync.modules())
    if mode == "per-image":
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in sync.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(sync(x), plain(x))
