"""Every option of ``pix2pix distill``: those of ``train`` (train/options.py) plus the teacher,
the extra inputs and the weights of the student's loss terms. No torch here (instant --help).

Defaults that differ from ``train``: ngf 16 (the edge-sized student) and no dropout (the student
imitates a deterministic teacher; dropout is off at inference anyway).

The student inherits from its teacher (:data:`FROM_TEACHER`): direction, sizes, depth, norm,
inference norm and hold-out default to None, "the teacher's", and :func:`resolve` fills them in
from the teacher's run (RUN/config.json), else train's defaults. ``train.distill.distill`` calls
it, so the Python API and the CLI give the same student; a student hold-out that would train on
pairs its teacher held out is refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pix2pix_edge.runtime.contract import HeldOut, held_out, run_config
from pix2pix_edge.runtime.errors import BadUsage
from pix2pix_edge.runtime.options import from_dict, option, value_type
from pix2pix_edge.train.options import TrainOptions, check_options

# what a student inherits from its teacher's run unless given
FROM_TEACHER = ("direction", "load_size", "crop_size", "depth", "norm", "inference_norm",
                "holdout_last", "holdout_every")
_TRAIN_FIELDS = {f.name: f for f in dataclasses.fields(TrainOptions)}


def _teachers(name: str):
    """Train's option ``name`` with the default None: "the teacher's"."""
    f = _TRAIN_FIELDS[name]
    m = f.metadata
    return option(None, m["help"] + " [default: the teacher's]", choices=m["choices"],
                  min=m["min"], max=m["max"], type=value_type(f), show_default=False)


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
    # inherited from the teacher unless given (FROM_TEACHER)
    direction: str | None = _teachers("direction")
    load_size: int | None = _teachers("load_size")
    crop_size: int | None = _teachers("crop_size")
    depth: int | None = _teachers("depth")
    norm: str | None = _teachers("norm")
    inference_norm: str | None = _teachers("inference_norm")
    holdout_last: int | None = _teachers("holdout_last")
    holdout_every: int | None = _teachers("holdout_every")


def teacher_options(teacher: str) -> dict:
    """The options of the teacher's training run that a student inherits (FROM_TEACHER): from
    TEACHER/config.json when TEACHER is a run directory (or a file inside one), else {}."""
    config = run_config(teacher) if teacher else None
    saved = config["options"] if config else {}
    return {k: saved[k] for k in FROM_TEACHER if saved.get(k) is not None}


def resolve(o: DistillOptions) -> DistillOptions:
    """``o`` with every inherited option left at None set to the teacher's value (else train's
    default). BadUsage when the student would train on pairs its teacher held out."""
    inherited = teacher_options(o.teacher)
    if o.holdout_last is not None or o.holdout_every is not None:   # a hold-out given: not both
        inherited.update(holdout_last=0, holdout_every=0)
    values = {name: inherited.get(name, _TRAIN_FIELDS[name].default)
              for name in FROM_TEACHER if getattr(o, name) is None}
    o = dataclasses.replace(o, **values)
    check_options(o)
    _check_teachers_holdout(o)
    return o


def _check_teachers_holdout(o: DistillOptions) -> None:
    teacher = held_out(o.teacher) if o.teacher else HeldOut(recorded=False)
    student = HeldOut(o.holdout_last, o.holdout_every, o.data)
    if not teacher.any or (student.last, student.every) == (teacher.last, teacher.every):
        return
    leaked = student.trained_keys(o.data) & teacher.held_keys(o.data)
    if leaked:
        raise BadUsage(f"the student would train on {len(leaked)} pairs its teacher held out "
                       f"(teacher: {teacher.flags()}, student: {student.flags()}): leave "
                       "--holdout-last / --holdout-every out to inherit the teacher's hold-out")


def distill_options_from_dict(d: dict) -> DistillOptions:
    return from_dict(DistillOptions, d)
