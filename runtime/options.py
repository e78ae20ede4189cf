"""Command options written once, as dataclass fields.

Every ``pix2pix`` command keeps its options in one dataclass (``TrainOptions``, ``RunOptions``,
...). A field made with :func:`option` carries its help text, its choices (a module constant,
never a literal list) and its bounds; from those this module makes

* the click options of the command (:func:`click_options`): same names with dashes, the same
  defaults, help, ``click.Choice`` / ``click.IntRange`` / ``click.FloatRange`` types, ``--x/--no-x``
  for a bool (``switch=True``: a plain ``--x`` flag);
* the check that a Python caller gets too (:func:`check_options`): an impossible value is a
  :class:`~pix2pix_edge.runtime.errors.BadUsage` (exit 2, one line), as on the command line.

Standard library and click only (Python 3.8 too): the command modules import it without loading
torch, OpenCV or a backend, so ``--help`` stays instant.
"""

from __future__ import annotations

from dataclasses import MISSING, field, fields
from typing import Any, Callable

import click

from pix2pix_edge.runtime.errors import BadUsage


def option(default, help: str, *, choices: tuple | None = None, min: float | None = None,
           max: float | None = None, type: type | None = None, metavar: str | None = None,
           flag: str | None = None, short: str | None = None, switch: bool = False,
           show_default: bool = True):
    """A dataclass field that is also a command-line option.

    ``type``: the value type where the default does not tell it (a default of None);
    ``flag``: the long flag when it is not the field's name with dashes (a bool's may name its
    off flag too: ``"--keep-archive/--delete-archive"``); ``short``: e.g. ``-o``;
    ``switch``: a bool given as a plain ``--x`` (default off) instead of ``--x/--no-x``."""
    return field(default=default, metadata={
        "help": help, "choices": choices, "min": min, "max": max, "type": type,
        "metavar": metavar, "flag": flag, "short": short, "switch": switch,
        "show_default": show_default})


def flag(name: str) -> str:
    """The command-line form of a field name: ``crop_size`` -> ``--crop-size``."""
    return "--" + name.replace("_", "-")


def flag_of(f) -> str:
    return f.metadata.get("flag") or flag(f.name)


def option_fields(cls) -> list:
    """The fields of ``cls`` that are command-line options (made with :func:`option`)."""
    return [f for f in fields(cls) if "help" in f.metadata]


def value_type(f):
    """The Python type of an option's values."""
    t = f.metadata.get("type")
    if t is not None:
        return t
    if f.default is not MISSING and f.default is not None:
        return type(f.default)
    return str


def is_bool(f) -> bool:
    return value_type(f) is bool


def click_type(f):
    """The click parameter type of an option: a Choice, a bounded range, or the plain type."""
    m, t = f.metadata, value_type(f)
    if m.get("choices"):
        return click.Choice(m["choices"])
    if t in (int, float) and (m.get("min") is not None or m.get("max") is not None):
        rng = click.IntRange if t is int else click.FloatRange
        return rng(min=m.get("min"), max=m.get("max"))
    return t


def click_option(f, *, help_suffix: str = "", default=MISSING, show_default=None):
    """The ``click.option`` decorator of one field."""
    m = f.metadata
    long = flag_of(f)
    decls = [long] + ([m["short"]] if m.get("short") else [])
    kw: dict[str, Any] = {"help": m["help"] + help_suffix,
                          "default": f.default if default is MISSING else default,
                          "show_default": m["show_default"] if show_default is None else show_default}
    if is_bool(f):
        if m.get("switch"):
            kw["is_flag"] = True
        elif "/" not in long:              # flag="--keep-x/--delete-x" names both itself
            decls[0] = f"{long}/--no-{long[2:]}"
    else:
        kw["type"] = click_type(f)
    if m.get("metavar"):
        kw["metavar"] = m["metavar"]
    return click.option(*decls, f.name, **kw)


def click_options(cls, *, skip: tuple = (), help_suffix: dict | None = None,
                  show_default: dict | None = None) -> Callable:
    """A decorator that adds one click option per option field of ``cls``, in field order.

    ``skip``: fields the command declares itself; ``help_suffix`` / ``show_default``: per-field
    tweaks (e.g. " [default: the teacher's]")."""
    help_suffix, show_default = help_suffix or {}, show_default or {}

    def decorate(fn):
        for f in reversed(option_fields(cls)):
            if f.name in skip:
                continue
            fn = click_option(f, help_suffix=help_suffix.get(f.name, ""),
                              show_default=show_default.get(f.name))(fn)
        return fn
    return decorate


def one_of(choices) -> str:
    choices = [str(c) for c in choices]
    return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]


def check_value(f, value) -> None:
    """BadUsage (exit 2) when ``value`` is not a choice of ``f`` or outside its bounds."""
    m = f.metadata
    if value is None:
        return
    if m.get("choices") and value not in m["choices"]:
        raise BadUsage(f"{flag_of(f)} must be {one_of(m['choices'])}, not {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high = m.get("min"), m.get("max")
    if low is not None and value < low:
        raise BadUsage(f"{flag_of(f)} must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise BadUsage(f"{flag_of(f)} must be at most {high:g}, got {value:g}")


def check_options(o) -> None:
    """Check every option field of the dataclass instance ``o`` against its metadata."""
    for f in option_fields(type(o)):
        check_value(f, getattr(o, f.name))


def defaults(cls) -> dict:
    """``{field name: default}`` of every field of ``cls`` that has one."""
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


def from_dict(cls, d: dict):
    """``cls`` from a dict (e.g. config.json's 'options'), ignoring unknown keys."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})
