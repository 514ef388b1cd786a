"""Every command's help shows on/off flags (--help included) without a `<bool>` value
placeholder."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from srgrad.cli import app

COMMANDS = ["train", "upscale", "eval", "export", "models", "study", "ablate", "download"]


@pytest.mark.parametrize("command", [*COMMANDS, None, "experiment", "experiment sin"])
def test_flags_have_no_bool_metavar(command):
    result = CliRunner().invoke(app, [*(command.split() if command else []), "--help"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output
    assert "<bool>" not in result.output


def _help_texts(command: str) -> list[str]:
    click_command = typer.main.get_command(app).commands[command]
    return [p.help for p in click_command.params if getattr(p, "help", None)]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_text_shows_whole(command):
    """Rich reads `[word]` in help as markup and drops it (`srgrad study --help` once said
    'TOML: , , '); every help text must reach the screen as written."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "2000"})
    shown = " ".join(result.output.split())
    for text in _help_texts(command):
        written = " ".join(text.replace("\\[", "[").split())
        assert written in shown, written


def test_command_descriptions_wrap_to_the_terminal_not_to_the_source():
    result = CliRunner().invoke(app, ["upscale", "--help"], env={"COLUMNS": "200"})
    assert "1 some file failed (the others were still done); 2 bad options" in result.output
