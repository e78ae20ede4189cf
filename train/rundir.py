"""What a training run writes into its run directory RUN (rank 0 only), for any objective.

* ``RUN/config.json`` (:func:`run_config`), ``RUN/log.csv`` and ``RUN/tensorboard``
  (:class:`RunLog`);
* ``RUN/checkpoints/latest.pt`` (+ ``epoch_XXX.pt``) and ``RUN/generator.pt``
  (:func:`save_checkpoint`; formats in train/checkpoint.py);
* ``RUN/samples/*.png`` (:func:`write_sample`): input | output | target rows.

The loop (train/loop.py) hands in its plain objects: the options, ``Env``, ``Data``, ``Models``
and ``Position``.
"""

from __future__ import annotations

import csv
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pix2pix_edge.runtime import machine
from pix2pix_edge.train import checkpoint as ckpt
from pix2pix_edge.train.models import count_parameters, inference_copy


def run_config(o: TrainOptions, env: Env, data: Data, m: Models, pos: Position) -> dict:
    """RUN/config.json: options, architecture, sizes, device, precision, data, versions."""
    return {"options": asdict(o), "models": m.config,
            "parameters": {"G": count_parameters(m.G), "D": count_parameters(m.D)},
            "device": str(env.device), "device_name": _device_name(env.device),
            "precision": {"autocast": env.precision, "channels_last": env.channels_last,
                          "grad_scaler": m.scaler.is_enabled()},
            "world_size": env.world, "torch_threads": torch.get_num_threads(),
            "workers": data.workers,
            "data": {"path": str(data.root.resolve()), "train_pairs": len(data.dataset),
                     "held_out_pairs": len(data.held_out),
                     # by name: eval / export / distill refuse a dataset changed since training
                     "held_out_names": [p.name for p in data.held_out],
                     "iters_per_epoch": data.iters_per_epoch,
                     "bad_files": [list(map(str, b)) for b in getattr(data.dataset, "bad_files", [])]},
            "versions": _versions(), "resumed_at_iteration": pos.iteration if o.resume else None}


class RunLog:
    """RUN/config.json, RUN/log.csv (a row every ``every`` iterations, losses averaged over them)
    and RUN/tensorboard (the same scalars). Writes nothing unless ``write`` (rank 0). A resumed
    run keeps the rows up to its checkpoint and drops those logged after it."""

    def __init__(self, run: Path, losses: tuple, *, config: dict, every: int,
                 resumed_at: int | None, tensorboard: bool, write: bool, say: Callable):
        self.fields = ("iteration", "epoch", *losses, "lr", "seconds")
        self.every, self.sums, self.count = every, np.zeros(len(losses)), 0
        self.file = self.tb = None
        if not write:
            return
        (run / "samples").mkdir(parents=True, exist_ok=True)
        (run / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        rows = []
        if resumed_at is not None and (run / "log.csv").is_file():
            with open(run / "log.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= resumed_at]
        self.file = open(run / "log.csv", "w", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=self.fields)
        self.csv.writeheader()
        self.csv.writerows(rows)
        self.file.flush()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(run / "tensorboard"), purge_step=resumed_at or None)
            except ImportError:
                say("(TensorBoard not installed: logging to log.csv only)")

    def add(self, pos: Position, values: list, lr: float, seconds: float, last: bool) -> None:
        """Count one iteration's losses; write their mean when a row is due (or ``last``)."""
        self.sums += np.array(values)
        self.count += 1
        if self.file is None or not (pos.iteration % self.every == 0 or last):
            return
        mean = self.sums / max(1, self.count)
        row = dict(zip(self.fields, [pos.iteration, pos.epoch + 1, *(round(float(v), 6) for v in mean),
                                     lr, round(seconds, 3)]))
        self.csv.writerow(row)
        self.file.flush()
        if self.tb is not None:
            for k in self.fields[2:-1]:
                self.tb.add_scalar(f"train/{k}", row[k], pos.iteration)
        self.sums[:], self.count = 0, 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        if self.tb is not None:
            self.tb.close()


def save_checkpoint(o: TrainOptions, m: Models, pos: Position, data: Data, *,
                    epoch_file: bool) -> None:
    """RUN/checkpoints/latest.pt (+ epoch_XXX.pt) and RUN/generator.pt, each atomically."""
    run = Path(o.run)
    record = {
        "format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.CHECKPOINT_VERSION,
        "config": m.config, "options": asdict(o),
        "inference": {"norm_mode": o.inference_norm, "dropout": False}, "data": data.facts(o),
        "run": str(run), **m.state_dict(), "epoch": pos.epoch, "iteration": pos.iteration,
        "step_in_epoch": pos.step_in_epoch, "rng": ckpt.capture_rng_state(),
    }
    ckpt.atomic_save(record, run / "checkpoints" / "latest.pt")
    if epoch_file:
        ckpt.atomic_save(record, run / "checkpoints" / f"epoch_{pos.epoch:03d}.pt")
    ckpt.save_generator(run / ckpt.GENERATOR_FILE, m.G, norm_mode=o.inference_norm,
                        dropout=False, data=data.facts(o), run=str(run), training=training_facts(o))


def training_facts(o: TrainOptions) -> dict:
    """What export records about how the generator was trained (model metadata ``extra``)."""
    facts = {"lambda_stability": o.lambda_stability}
    if o.lambda_stability:
        facts.update(stability_shift=o.stability_shift, stability_rotate=o.stability_rotate,
                     stability_zoom=o.stability_zoom, stability_noise=o.stability_noise)
    if o.init_from:
        facts["init_from"] = str(o.init_from)
    return facts


def write_sample(o: TrainOptions, env: Env, m: Models, data: Data, name: str) -> None:
    """RUN/samples/NAME: input | output | target rows of the sample batch (rank 0)."""
    if env.master:
        from PIL import Image

        grid = sample_grid(m.G, data.sample_batch, o.inference_norm, env.device, env.channels_last)
        Image.fromarray(grid).save(Path(o.run) / "samples" / name)


def sample_grid(G: nn.Module, batch: dict, norm_mode: str, device, channels_last: bool) -> np.ndarray:
    """input | output | target rows as one uint8 HxWx3 image (uses no RNG: dropout off)."""
    model = inference_copy(G, norm_mode, dropout=False)
    A = batch["A"].to(device)
    if channels_last:
        A = A.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = model(A).float().cpu()
    rows = [torch.cat([a, o, b], dim=2) for a, o, b in zip(batch["A"], out, batch["B"])]
    img = torch.cat(rows, dim=1)
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return ((img[:3].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def _versions() -> dict:
    return {**machine.versions("torch", "pillow", "tqdm"), "platform": platform.platform()}


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else machine.cpu_model()
