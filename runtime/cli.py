"""The ``pix2pix`` command: one root group whose subcommands load lazily.

Each subcommand is named here only by an import string and a one-line help, so ``pix2pix --help``
and ``pix2pix run`` never import PyTorch, train/ or export/. A subcommand's module is imported
only when that subcommand runs (or its own ``--help`` is asked for).
"""

from __future__ import annotations

import errno
import importlib
import os
import sys

import click

from pix2pix_edge.runtime.errors import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_UNAVAILABLE, EXIT_USAGE,
                                        Pix2PixError)

# name -> (module:attribute, one-line help). Order is the order of the workflow.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("pix2pix_edge.train.cli_data:data", "Make, download and check paired datasets."),
    "models": ("pix2pix_edge.train.cli_models:models", "Download the reference's pretrained generators, or import a latest_net_G.pth."),
    "train": ("pix2pix_edge.train.cli:train", "Train a pix2pix generator (CPU, one GPU, or torchrun DDP)."),
    "distill": ("pix2pix_edge.train.cli_distill:distill", "Train a small student generator against a trained teacher."),
    "eval": ("pix2pix_edge.train.cli:evaluate", "L1 / PSNR / SSIM of a trained run on held-out pairs."),
    "export": ("pix2pix_edge.export.cli:export", "Export a generator to ONNX (FP32/FP16) or a TensorRT engine."),
    "info": ("pix2pix_edge.runtime.cli_info:info", "Show a model file's metadata, inputs and outputs."),
    "run": ("pix2pix_edge.runtime.cli_run:run", "Translate a camera, stream, video or images in real time."),
    "bench": ("pix2pix_edge.runtime.cli_bench:bench", "Latency of a model alone and of the full video pipeline."),
    "demo": ("pix2pix_edge.train.demo:demo", "Synthetic data -> train -> export -> translate a video, end to end."),
}

# What a subcommand's optional dependency is and how to get it (the runtime installs without).
NEEDS = {
    "torch": "pip install 'pix2pix-edge[train]' (or [export]; Python >= 3.10; the default "
             "Linux wheel may need a CUDA 13 driver (>= 580): for a CUDA 12 driver first pip "
             "install torch --index-url https://download.pytorch.org/whl/cu126; on a Jetson, "
             "NVIDIA's PyTorch wheel for your JetPack)",
    "onnx": "pip install 'pix2pix-edge[export]' (on a Jetson: [export-jetson])",
    "tqdm": "pip install 'pix2pix-edge[train]'",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        target, _ = COMMANDS[name]
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            raise _missing_library(name, e) from None

    def format_commands(self, ctx, formatter):
        # Listing must not import the subcommands (that would pull in torch).
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:   # the root's own options: pix2pix --bogus
            raise _usage_error(e) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:    # a subcommand's command line (unknown option, range)
            raise _usage_error(e) from None
        except Pix2PixError as e:
            raise _cli_error(str(e), e.exit_code) from None
        except KeyboardInterrupt as e:   # Ctrl-C, or SIGTERM / SIGHUP (runtime.interrupt)
            if os.environ.get("RANK", "0") == "0":   # under torchrun: once, as rank 0 logs
                click.echo(f"Interrupted{f' ({e})' if str(e) else ''}.", err=True)
            ctx.exit(getattr(e, "exit_code", EXIT_INTERRUPTED))
        except ModuleNotFoundError as e:   # a library imported lazily by the command
            raise _missing_library(ctx.invoked_subcommand or "", e) from None
        except OSError as e:
            if os.environ.get("PIX2PIX_DEBUG"):
                raise
            raise _cli_error(_describe_os_error(e), EXIT_ERROR) from None


def _missing_library(command: str, e: ModuleNotFoundError) -> BaseException:
    """One line (exit 5) for an optional library a subcommand needs; other import errors stay."""
    missing = (e.name or "").split(".")[0]
    if missing not in NEEDS:
        return e
    return _cli_error(f"pix2pix {command} needs {missing}, which is not installed here: "
                      f"{NEEDS[missing]}", EXIT_UNAVAILABLE)


def _usage_error(e: click.UsageError) -> click.ClickException:
    """A usage error on one line (``Error: ... (see: pix2pix run --help)``), exit 2, instead of
    click's usage block: every bad command line reads the same, as the README's table says."""
    where = e.ctx.command_path if e.ctx is not None else "pix2pix"
    return _cli_error(f"{e.format_message()} (see: {where} --help)", EXIT_USAGE)


def _cli_error(message: str, code: int) -> click.ClickException:
    err = click.ClickException(message)
    err.exit_code = code
    return err


def _describe_os_error(e: OSError) -> str:
    where = f": {e.filename}" if getattr(e, "filename", None) else ""
    if e.errno == errno.ENOSPC:
        return f"no space left on device{where} (nothing was overwritten; free space and retry)"
    if e.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied{where}"
    if e.errno == errno.ENOENT:
        return f"no such file or directory{where}"
    return f"{e.strerror or e}{where}"


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pix2pix-edge", prog_name="pix2pix")
def cli():
    """pix2pix-edge: train pix2pix, export it to ONNX / TensorRT, run it live on video.

    \b
    Typical workflow:
      pix2pix data synth data/synth --n 200 --size 256
      pix2pix train data/synth --run runs/synth
      pix2pix export onnx runs/synth -o model.onnx
      pix2pix run model.onnx --source video.mp4 --output out.mp4
      pix2pix bench model.onnx --video video.mp4

    Run `pix2pix COMMAND --help` for the options of each command.
    """


def main(argv=None):
    """Console-script entry point. SIGTERM and SIGHUP stop a command as Ctrl-C does (files
    closed, training saved; exit 143 / 129)."""
    from pix2pix_edge.runtime.interrupt import install_stop_handlers

    install_stop_handlers()
    try:
        cli.main(args=argv, prog_name="pix2pix")
    except KeyboardInterrupt as e:
        sys.exit(getattr(e, "exit_code", EXIT_INTERRUPTED))


if __name__ == "__main__":
    main()
