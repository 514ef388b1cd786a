"""`srgrad models`: names are never cut (80 columns, narrower, piped), --json, and the blocks
it lists are those of the shipped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from srgrad.cli import models_cmd
from srgrad.models.registry import (
    MODELS,
    ModelConfig,
    build,
    count_parameters,
    model_config,
)
from srgrad.models.weights import read_metadata

from helpers import cli_app, install_shipped, runner

app = cli_app(("models", models_cmd.models))


def shown_names(output: str) -> set[str]:
    """Every registry name that appears whole, as a word of its own, on some line."""
    words = {word for line in output.splitlines() for word in line.split()}
    return {name for name in MODELS if name in words}


@pytest.mark.parametrize("width", [80, 40])
def test_names_are_whole_in_a_terminal(monkeypatch, width):
    """80 columns: the table, every cell whole. Too narrow for it: aligned plain lines, which
    the terminal wraps, rather than a table squeezed until it cuts or drops cells."""
    monkeypatch.setattr(models_cmd, "console", Console(width=width, force_terminal=True,
                                                       color_system=None))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert shown_names(result.output) == set(MODELS) and "…" not in result.output
    assert "40,729,603" in result.output and "pixel/unit" in result.output
    if width == 80:
        assert "srgrad models" in result.output  # the table
        assert max(len(line) for line in result.output.splitlines()) <= 80  # the note wraps
    else:
        assert result.output.splitlines()[0].split()[:4] == ["name", "blocks", "x", "feats"]


def test_names_are_whole_when_piped():
    result = runner.invoke(app, ["models"])  # CliRunner's stdout is not a terminal
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["name", "blocks", "x", "feats", "skip", "alpha", "params",
                                "(x2)", "shipped", "weights"]
    assert [line.split()[0] for line in lines[1:-1]] == list(MODELS)
    assert all(line.startswith(f"{name}  ")
               for line, name in zip(lines[1:-1], MODELS, strict=True))
    assert lines[-1].startswith("default of `srgrad upscale`")
    assert "…" not in result.output


def test_json_is_one_document_with_every_model(tmp_path, monkeypatch):
    install_shipped(monkeypatch, tmp_path / "shipped", {2: 0, 4: 0})
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    catalog = json.loads(result.output)
    assert [m["name"] for m in catalog] == list(MODELS)
    grad = next(m for m in catalog if m["name"] == "sedsr-grad")
    cfg = model_config("sedsr-grad", 2)
    assert grad == {
        "name": "sedsr-grad", "blocks": 8, "feats": 32, "skip": cfg.block.skip,
        "norm": cfg.block.norm, "magnitude": cfg.block.magnitude, "alpha": cfg.block.alpha,
        "params": count_parameters(build(cfg)),
        "shipped_scales": [2, 4], "default": True,  # install_shipped makes it the default
    }
    plain = next(m for m in catalog if m["name"] == "edsr-baseline")
    assert plain["skip"] == "identity" and plain["alpha"] is None and plain["shipped_scales"] == []


def test_the_default_model_is_named_with_its_reason():
    from srgrad.inference.loading import DEFAULT_MODEL

    result = runner.invoke(app, ["models"])
    assert f"default of `srgrad upscale`: {DEFAULT_MODEL}: best held-out PSNR" in result.output
    catalog = json.loads(runner.invoke(app, ["models", "--json"]).output)
    assert [m["name"] for m in catalog if m["default"]] == [DEFAULT_MODEL]


def test_every_shipped_file_has_the_block_its_name_lists():
    """`srgrad models` lists the registry's block for each name, and `srgrad train --model NAME`
    builds it: a shipped file of that name must hold the same block."""
    files = sorted((Path(__file__).resolve().parents[1] / "weights").glob("*.safetensors"))
    assert files
    for file in files:
        config = ModelConfig.from_dict(read_metadata(file)["config"])
        listed = model_config(config.name, config.scale).block
        for key in ("skip", "norm", "magnitude", "g_scale", "alpha"):
            assert getattr(config.block, key) == getattr(listed, key), (file.name, key)
