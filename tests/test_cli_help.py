"""Every command's help shows on/off flags without a `<bool>` value placeholder."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from srgrad.cli import app

COMMANDS = ["train", "upscale", "eval", "export", "models", "study", "ablate", "download"]


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_have_no_bool_metavar(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "<bool>" in line]
    assert all("--help" in row for row in rows), rows  # click's own --help row only
