"""Shared CLI plumbing: consoles, the user-error guard and small flag parsers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from srgrad.errors import ConfigError, SrgradError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(func: F) -> F:
    """Turn SrgradError into one red line and a non-zero exit; let real bugs raise."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
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


def parse_name_list(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def is_tty() -> bool:
    return sys.stderr.isatty()
