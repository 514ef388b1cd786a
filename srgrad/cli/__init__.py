"""The `srgrad` command line: each command parses, validates, calls one library function.

Commands are registered explicitly here (no import side effects elsewhere); each lives in
its own module so every file stays short.
"""

from __future__ import annotations

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

app = typer.Typer(
    name="srgrad",
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


app.command("models")(models_cmd.models)
app.command("train")(train_cmd.train)
app.command("eval")(eval_cmd.evaluate)
app.command("download")(download_cmd.download)
app.command("upscale")(upscale_cmd.upscale)
app.command("export")(export_cmd.export)
app.command("ablate")(ablate_cmd.ablate)
app.command("study")(study_cmd.study)
app.add_typer(experiment_cmd.app, name="experiment")
