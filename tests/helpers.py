"""Helpers shared by the test files (`from helpers import ...`; pytest puts tests/ on sys.path).

Fixtures stay in conftest.py; plain constants and functions live here, since conftest is not
reliably importable as a module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from srgrad.inference import loading
from srgrad.models import weights as weights_mod
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import save_weights

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_DATASETS = Path(os.environ.get("SRGRAD_SHARED_DATASETS") or SHARED / "datasets")
CONVENTIONS_DOC = SHARED / "docs" / "conventions.md"

runner = CliRunner()


def _noop() -> None:
    """Unused."""


def cli_app(*commands: tuple[str, Callable]) -> typer.Typer:
    """A Typer app of (name, function) commands, registered as srgrad registers them. With a
    single command a no-op second one is added, which keeps it a named subcommand, as in srgrad."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    for name, func in commands:
        app.command(name)(func)
    if len(commands) == 1:
        app.command("noop")(_noop)
    return app


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def one_error(result, *parts: str) -> str:
    """The single `error:` line of a run that exited with 2, holding every one of `parts`."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = error_lines(result.output)
    for part in parts:
        assert part in line, line
    return line


def install_shipped(monkeypatch: pytest.MonkeyPatch, folder: Path, seeds: dict[int, int]) -> Path:
    """Random sedsr-grad weights in `folder`, one file per scale (built right after
    torch.manual_seed(seed)), installed as the only shipped weights and as the default model
    (the real default and its files are checked by test_infer and test_shipped_scores).
    Returns `folder`."""
    for scale, seed in seeds.items():
        torch.manual_seed(seed)
        save_weights(build_model("sedsr-grad", scale), model_config("sedsr-grad", scale),
                     folder / f"sedsr-grad_x{scale}.safetensors")
    monkeypatch.setattr(weights_mod, "weights_dirs", lambda: [folder])
    monkeypatch.setattr(loading, "DEFAULT_MODEL", "sedsr-grad")
    return folder
