"""srgrad.cli._common: user errors and labelled lines print messages verbatim (no rich markup)."""

from __future__ import annotations

import pytest
import typer

from srgrad.cli._common import fail, print_labelled, print_plain, user_errors
from srgrad.errors import DataError

from helpers import cli_app, error_lines, runner

# Square brackets that rich would read as markup: a style, a closing tag, a bare "[/]".
MESSAGE = "img[x2].png: cannot read [bold]this[/bold] file [/] (see [red]log[/])"


def test_fail_prints_square_brackets_verbatim(capsys):
    with pytest.raises(typer.Exit) as info:
        fail(MESSAGE)
    assert info.value.exit_code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {MESSAGE}\n"


def test_labelled_and_plain_lines_print_verbatim(capsys):
    print_labelled("skipped: ", "yellow", MESSAGE)
    print_plain(f"wrote {MESSAGE}")
    captured = capsys.readouterr()
    assert captured.err == f"skipped: {MESSAGE}\n"
    assert captured.out == f"wrote {MESSAGE}\n"


@user_errors
def _broken() -> None:
    raise DataError(MESSAGE)


def test_user_error_of_a_command_is_one_verbatim_line():
    result = runner.invoke(cli_app(("broken", _broken)), ["broken"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert error_lines(result.output) == [f"error: {MESSAGE}"]
