"""The sin study end to end on a tiny configuration: every output file, finite numbers."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from srgrad.cli import experiment_cmd
from srgrad.errors import ConfigError
from srgrad.experiments.sin import VARIANTS, SinConfig, build_mlp, run_sin

TINY = SinConfig(
    frequencies=(2, 5),
    seeds=2,
    epochs=3,
    width=8,
    n_blocks=2,
    n_train=64,
    n_test=50,
    batch_size=32,
    eval_every=2,
    workers=1,
)


def _check_outputs(out: Path, cfg: SinConfig) -> None:
    top = max(cfg.frequencies)
    names = ["results.csv", "timing.csv", "functions.csv", "config.json", "summary.md"]
    names += [f"curves_d{f}.png" for f in cfg.frequencies] + [f"functions_d{top}.png"]
    for name in names:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with (out / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    epochs = cfg.eval_epochs()
    assert epochs == [0, 2, 3]
    assert len(rows) == len(cfg.variants) * len(cfg.frequencies) * cfg.seeds * len(epochs)
    assert list(rows[0]) == ["variant", "frequency", "seed", "epoch", "test_mse"]
    keys = {(r["variant"], int(r["frequency"]), int(r["seed"]), int(r["epoch"])) for r in rows}
    assert len(keys) == len(rows)
    assert {r["variant"] for r in rows} == set(cfg.variants)
    assert all(math.isfinite(float(r["test_mse"])) for r in rows)
    with (out / "timing.csv").open(newline="") as fh:
        timing = list(csv.DictReader(fh))
    assert len(timing) == len(cfg.variants) * len(cfg.frequencies) * cfg.seeds
    assert all(
        math.isfinite(float(r["sec_per_epoch"])) and float(r["sec_per_epoch"]) > 0 for r in timing
    )
    with (out / "functions.csv").open(newline="") as fh:
        fn_rows = list(csv.DictReader(fh))
    assert len(fn_rows) == cfg.n_test
    assert all(math.isfinite(float(v)) for r in fn_rows for v in r.values())
    summary = (out / "summary.md").read_text()
    for variant in cfg.variants:
        assert f"| {variant} |" in summary


def test_variants_share_initial_weights() -> None:
    ref = build_mlp(TINY, "residual", 3).state_dict()
    for variant in VARIANTS:
        state = build_mlp(TINY, variant, 3).state_dict()
        shared = set(state) & set(ref)
        assert len(shared) == 2 + 2 + 4 * TINY.n_blocks  # inp, out, fc1 and fc2 of each block
        assert all(torch.equal(state[k], ref[k]) for k in shared), variant


def test_library_all_variants(tmp_path: Path) -> None:
    assert TINY.variants == VARIANTS
    result = run_sin(TINY, tmp_path / "lib")
    _check_outputs(tmp_path / "lib", TINY)
    assert result.n_rows == 9 * 2 * 2 * 3


def test_library_two_workers(tmp_path: Path) -> None:
    cfg = replace(TINY, variants=("residual", "convex-alpha+3"), frequencies=(3,), workers=2)
    run_sin(cfg, tmp_path / "pool")
    _check_outputs(tmp_path / "pool", cfg)


def test_cli(tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(experiment_cmd.app, name="experiment")
    out = tmp_path / "cli"
    args = ["experiment", "sin", "--frequencies", "2,5", "--seeds", "2", "--epochs", "3"]
    args += ["--eval-every", "2", "--workers", "1", "--out", str(out)]
    args += ["--variants", "plain,residual,gradient,convex-through"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cfg = replace(
        SinConfig(),
        frequencies=(2, 5),
        seeds=2,
        epochs=3,
        eval_every=2,
        variants=("plain", "residual", "gradient", "convex-through"),
    )
    _check_outputs(out, cfg)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frequencies", "1,x"], "--frequencies"),
        (["--frequencies", "0,4"], "frequencies must be positive"),
        (["--seeds", "0"], "seeds must be at least 1"),
        (["--variants", "residual,bogus"], "unknown variant"),
    ],
)
def test_cli_errors(tmp_path: Path, args: list[str], message: str) -> None:
    app = typer.Typer()
    app.add_typer(experiment_cmd.app, name="experiment")
    result = CliRunner().invoke(app, ["experiment", "sin", "--out", str(tmp_path), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot write"):
        run_sin(TINY, blocker / "sub")


def test_timing_table_has_no_nan_ratio_without_the_residual_variant() -> None:
    from srgrad.experiments.sin_report import _timing_table

    without = _timing_table(["gradient"], {"gradient": [0.5]})
    assert without[-1] == "| gradient | 500.0 |" and "nan" not in "".join(without)
    with_ref = _timing_table(["residual", "gradient"], {"residual": [0.25], "gradient": [0.5]})
    assert with_ref[-1] == "| gradient | 500.0 | 2.00 |"
