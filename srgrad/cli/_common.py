"""Shared CLI plumbing: consoles, the command classes, the user-error guard and small flag
parsers."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from srgrad.console import console, err_console
from srgrad.errors import ConfigError, SrgradError
from srgrad.inference.tiling import MIN_TILE

F = TypeVar("F", bound=Callable)


class _NoHelpMetavar:
    """Typer shows its own --help flag with a `<bool>` value placeholder, as if it took a
    value; every other flag shows none."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class Group(_NoHelpMetavar, TyperGroup):
    pass


class Command(_NoHelpMetavar, TyperCommand):
    pass


# Options shared by the commands that run one model (upscale, export).
ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m", help="Registry model with shipped weights (default sedsr-scaled; "
    "`srgrad models` says why).")]
ScaleOption = Annotated[int | None, typer.Option(
    "--scale", "-s", help="2, 3 or 4. Default: 2, or the scale stored in --weights.")]
WeightsOption = Annotated[Path | None, typer.Option(
    "--weights", "-w", help="A weights file (.safetensors) instead of --model.")]
# Options shared by the commands that run models on images (upscale, eval).
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")]
TileOption = Annotated[int | None, typer.Option("--tile", show_default=False, help=(
    f"Tile side in LR pixels, at least {MIN_TILE} (default: automatic, to bound memory)."))]
SelfEnsembleOption = Annotated[bool, typer.Option(
    "--self-ensemble", metavar="", help="Average the 8 flips/rotations (8x slower, a bit "
    "better; eval names such models with a + suffix).")]


def flag(*names: str, help: str) -> typer.models.OptionInfo:
    """An on/off option, off by default, shown without a `<bool>` value placeholder."""
    return typer.Option(False, *names, metavar="", help=help)


def print_labelled(label: str, style: str, message: str) -> None:
    """One line on stderr: `label` in `style`, then `message` verbatim (no markup, no
    highlighting, no wrapping), so a file name such as ``img[x2].png`` prints as it is."""
    err_console.print(Text.assemble((label, style), message), soft_wrap=True)


def print_plain(message: str, console: Console = console) -> None:
    """`message` verbatim (no markup, no highlighting, no wrapping) on `console` (stdout)."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    print_labelled("error: ", "bold red", message)
    raise typer.Exit(code)


def _one_line_warnings() -> Callable[..., None]:
    """How a command shows library warnings: one line each, without the source location,
    and each distinct message once (a warning raised per image or per step says it once)."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if str(message) not in seen:
            seen.add(str(message))
            err_console.print(f"warning: {message}", style="yellow", highlight=False,
                              soft_wrap=True)
    return show


def user_errors(func: F) -> F:
    """Turn SrgradError into one red line and a non-zero exit, and warnings into one line
    each; let real bugs raise."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warnings()
                return func(*args, **kwargs)
        except SrgradError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def parse_int_list(text: str, flag: str, allowed: set[int] | None = None) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{flag} is empty")
    if allowed is not None:
        bad = [v for v in values if v not in allowed]
        if bad:
            raise ConfigError(f"{flag}: {bad[0]} is not one of {sorted(allowed)}")
    return values


def split_list(text: str) -> list[str]:
    """Comma-separated parts as given: folder paths keep their case."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_name_list(text: str) -> list[str]:
    return [part.lower() for part in split_list(text)]
