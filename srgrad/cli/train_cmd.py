"""`srgrad train`: flags (and an optional TOML file) -> TrainConfig -> train.loop.train.

The flags are not written here: the command's signature is built from TrainConfig's fields
(their types, defaults and help), so an option is defined once, for the CLI and TOML alike."""

from __future__ import annotations

import dataclasses
import inspect
import shlex
import sys
import typing
from typing import Any

import typer
from rich.markup import escape

from srgrad.cli._common import flag, print_plain, user_errors
from srgrad.train.config import TrainConfig, field_help, flag_name, load_toml, make_config

_DEFAULTS = TrainConfig()
_TYPES = typing.get_type_hints(TrainConfig)
_CONFIG_HELP = "TOML file with [train] keys; flags win."


def _help(name: str) -> str:
    """The field's help and its default (Rich markup escaped); flags and unset values show
    none."""
    value = getattr(_DEFAULTS, name)
    if value is None or isinstance(value, bool):
        return field_help(name)
    shown = ", ".join(value) if isinstance(value, list) else value
    return f"{field_help(name)} {escape(f'[default: {shown}]')}"


def _is_switch(name: str) -> bool:
    return _TYPES[name] in (bool, bool | None)


def _parameter(name: str) -> inspect.Parameter:
    """The Typer parameter of one TrainConfig field: None (not given) by default, so that the
    TOML file and, on --resume, the saved run supply what the command line leaves out."""
    if _is_switch(name):
        info, annotation = flag(flag_name(name), help=_help(name)), bool
    else:
        annotation = _TYPES[name] | None
        info = typer.Option(None, flag_name(name), help=_help(name))
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info,
                             annotation=annotation)


def _given(name: str, value: Any) -> Any:
    """A parsed flag as a config value; None for a switch left off. A switch sets its field
    to True, except --freeze-alpha, which sets learn_alpha to False."""
    if not _is_switch(name):
        return value
    if not value:
        return None
    return name != "learn_alpha"


@user_errors
def train(config: str | None = None, **flags: Any) -> None:
    """Train a model; safe to interrupt and --resume."""
    from srgrad.train.loop import train as run_training

    file_values = load_toml(config) if config else {}
    cfg = make_config(file_values, {name: _given(name, v) for name, v in flags.items()})
    result = run_training(cfg, command=shlex.join(["srgrad", *sys.argv[1:]]))
    if result.weights is None:
        return
    best = f", best val PSNR {result.best_psnr:.2f} dB" if result.best_psnr else ""
    if result.stopped_by_time_limit:
        print_plain(f"stopped by --time-limit after {result.steps} of {cfg.iters} iterations"
                    f"{best}; weights: {result.weights}; go on with: srgrad train --resume "
                    f"--out {cfg.out}")
    else:
        print_plain(f"trained {result.steps} iterations{best}; weights: {result.weights}")


_config = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                            default=typer.Option(None, "--config", help=escape(_CONFIG_HELP)))
train.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [_config, *(_parameter(f.name) for f in dataclasses.fields(TrainConfig))])
train.__annotations__ = {p.name: p.annotation for p in train.__signature__.parameters.values()}
