"""The `srgrad` command line: each command parses, validates, calls one library function.

Commands are registered explicitly here (no import side effects elsewhere); each lives in
its own module so every file stays short.
"""

from __future__ import annotations

import inspect

import typer

from srgrad import __version__
from srgrad.cli import (
    ablate_cmd,
    download_cmd,
    eval_cmd,
    experiment_cmd,
    export_cmd,
    models_cmd,
    study_cmd,
    train_cmd,
    upscale_cmd,
)
from srgrad.cli._common import Command, Group

app = typer.Typer(
    name="srgrad",
    cls=Group,
    help="Super-resolution with gradient residual connections: download, train, eval, upscale.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"srgrad {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, metavar="",
        help="Print the version and exit."
    ),
) -> None:
    """srgrad: train, evaluate and use gradient-residual super-resolution networks."""


def _paragraphs(text: str) -> str:
    """A docstring with each paragraph on one line: Rich keeps single line breaks, so the
    source's wrapping would show as ragged lines in any terminal of another width."""
    return "\n\n".join(" ".join(part.split()) for part in inspect.cleandoc(text).split("\n\n"))


for _name, _command in [("models", models_cmd.models), ("train", train_cmd.train),
                        ("eval", eval_cmd.evaluate), ("download", download_cmd.download),
                        ("upscale", upscale_cmd.upscale), ("export", export_cmd.export),
                        ("ablate", ablate_cmd.ablate), ("study", study_cmd.study)]:
    app.command(_name, cls=Command, help=_paragraphs(_command.__doc__ or ""))(_command)
app.add_typer(experiment_cmd.app, name="experiment")
