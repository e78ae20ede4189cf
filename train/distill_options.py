"""Every option of ``pix2pix distill``: those of ``train`` (train/options.py) plus the teacher,
the extra inputs and the weights of the student's loss terms. No torch here (instant --help).

Defaults that differ from ``train``: ngf 16 (the edge-sized student) and no dropout (the student
imitates a deterministic teacher; dropout is off at inference anyway). Direction, sizes, depth,
norm, inference norm and hold-out are taken from the teacher's run when not given (train/cli_distill.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from pix2pix_edge.train.options import TrainOptions, option


@dataclass
class DistillOptions(TrainOptions):
    teacher: str = ""                   # the teacher's run directory or generator file
    ngf: int = option(16, "Student generator width (the teacher's is usually 64).", min=1)
    dropout: bool = option(False, "Dropout 0.5 in the student's innermost up blocks (training "
                           "only; off: the student imitates a deterministic teacher).")
    extra_inputs: str = option("", "Folder of input-only images (e.g. frames of your own camera): "
                               "their targets are the teacher's outputs, no labels needed.")
    lambda_teacher: float = option(100.0, "Weight of L1 between the student's and the teacher's "
                                   "outputs.", min=0)
    lambda_gan: float = option(1.0, "Weight of the GAN loss (0, with --lambda-fm 0: no "
                               "discriminator at all, as OMGD).", min=0)
    lambda_feat: float = option(10.0, "Weight of feature distillation: MSE between the teacher's "
                                "decoder activations and the student's mapped by learned 1x1 "
                                "convolutions.", min=0)
    distill_layers: int = option(3, "How many of the outermost decoder levels feature "
                                 "distillation compares (0: none).", min=0)


def distill_options_from_dict(d: dict) -> DistillOptions:
    from dataclasses import fields

    names = {f.name for f in fields(DistillOptions)}
    return DistillOptions(**{k: v for k, v in d.items() if k in names})
