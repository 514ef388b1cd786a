"""`srgrad train --resume` and `--time-limit`: the saved settings are the run's, a stop is
recorded, and the resumed run, one process or DDP, ends where an unbroken one would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from srgrad.cli import app

from test_train import base_args, losses, make_images, one_line_error, runner


def card(run: Path) -> dict:
    return json.loads((run / "model_card.json").read_text())


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "sedsr-grad_x2.safetensors"), load_file(b / "sedsr-grad_x2.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_time_limit_stops_early_says_so_and_resume_goes_on_exactly(tmp_path):
    """A limit too short for any step stops after the first: the card has the 1 iteration
    trained and the 12 asked; `--resume --out` alone keeps the saved limit (1 more),
    `--time-limit 0` lifts it, and the weights are those of an unbroken run."""
    data = make_images(tmp_path / "data")
    full, run = tmp_path / "full", tmp_path / "run"
    assert runner.invoke(app, base_args(data, full, iters=12)).exit_code == 0
    result = runner.invoke(app, base_args(data, run, iters=12) + ["--time-limit", "1e-6"])
    assert result.exit_code == 0, result.output
    assert (f"stopped by --time-limit after 1 of 12 iterations; weights: "
            f"{run / 'sedsr-grad_x2.safetensors'}; go on with: srgrad train --resume --out "
            f"{run}") in result.output
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 1
    first = card(run)
    assert (first["iterations"], first["iterations_requested"]) == (1, 12)
    assert first["stopped_by_time_limit_at"] == 1

    again = runner.invoke(app, ["train", "--resume", "--out", str(run)])
    assert again.exit_code == 0, again.output
    assert "stopped by --time-limit after 2 of 12 iterations" in again.output
    assert card(run)["iterations"] == 2

    done = runner.invoke(app, ["train", "--resume", "--out", str(run), "--time-limit", "0"])
    assert done.exit_code == 0, done.output
    assert "trained 12 iterations; weights:" in done.output
    last = card(run)
    assert (last["iterations"], last["iterations_requested"]) == (12, 12)
    assert last["stopped_by_time_limit_at"] is None
    same_weights(full, run)
    assert losses(full) == losses(run)


def test_resume_alone_keeps_the_saved_block_and_safe_flags_may_change(tmp_path):
    """Without --norm/--alpha/--freeze-alpha the resumed network is the saved one (not the
    registry's, into which the weights would load just as well), and alpha stays frozen
    (re-creating it as learned crashed in the optimizer)."""
    data = make_images(tmp_path / "data")
    first, run = tmp_path / "first", tmp_path / "moved"
    block = ["--norm", "pixel", "--alpha", "0.25", "--freeze-alpha"]
    assert runner.invoke(app, base_args(data, first, iters=4) + block).exit_code == 0
    first.rename(run)  # the run goes on where it is now
    result = runner.invoke(app, ["train", "--resume", "--out", str(run), "--iters", "6",
                                 "--log-every", "3", "--ckpt-every", "3", "--workers", "1"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert (saved["norm"], saved["alpha"], saved["learn_alpha"]) == ("pixel", 0.25, False)
    assert (saved["iters"], saved["log_every"], saved["data"]) == (6, 3, [str(data)])
    assert saved["out"] == str(run) and not first.exists()
    block_card = card(run)["block"]
    assert (block_card["norm"], block_card["alpha"], block_card["learn_alpha"]) == (
        "pixel", 0.25, False)
    weights = load_file(run / "sedsr-grad_x2.safetensors")
    assert torch.allclose(weights["blocks.0.alpha"], torch.tensor(0.25))  # frozen throughout
    assert card(run)["iterations"] == 6


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("trained")
    data = make_images(root / "data")
    run = root / "run"
    result = runner.invoke(app, base_args(data, run, iters=4))
    assert result.exit_code == 0, result.output
    return data, run


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"--lr": "2e-3"}, "--lr differs from the run in {run}: saved 0.001, given 0.002;"),
        ({"--val": "set5"}, "--val differs from the run in {run}: saved not set, given 'set5';"),
        ({"--norm": "pixel"}, "--norm differs from the run in {run}: saved not set, given 'pixel'"),
        ({"--freeze-alpha": None}, "--freeze-alpha differs from the run in {run}: saved not set, "
                                   "given True;"),
        ({"--seed": "1"}, "--seed differs from the run in {run}: saved 0, given 1;"),
        ({"--batch": "3"}, "--batch differs from the run in {run}: saved 2, given 3;"),
        ({"--data": "{data}/x"}, "--data differs from the run in {run}: saved ['{data}'], "
                                 "given ['{data}/x'];"),
        ({"--iters": "3"}, "--iters 3 is below the 4 iterations the run in {run} has done"),
    ],
)
def test_resume_refuses_changed_settings(trained, change, expected):
    data, run = trained
    args = base_args(data, run, iters=4) + ["--resume"]
    for flag, value in change.items():
        value = value and value.format(data=data)
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag] if value is None else [flag, value]
    before = {name: (run / name).read_bytes() for name in ("last.pt", "config.json")}
    result = runner.invoke(app, args)
    line = one_line_error(result)
    assert result.exit_code == 2
    assert line.startswith("error: --resume: ")
    assert expected.format(run=run, data=data) in line, line
    if "differs" in line:
        assert "on resume only --iters, --time-limit, --quiet" in line
    assert {name: (run / name).read_bytes() for name in before} == before


# Rank 1's clock jumps 1e4 s ahead after its 3rd batch; rank 0's does not.
SKEWED_RANK = """
    import os, sys, time
    import srgrad.train.data as data
    skew_after = int(os.environ.get("SKEW_AFTER", "0"))
    if skew_after and os.environ["RANK"] == "1":
        real, original, calls = time.perf_counter, data.PatchSampler.sample, [0]
        def sample(self):
            calls[0] += 1
            return original(self)
        data.PatchSampler.sample = sample
        time.perf_counter = lambda: real() + (1e4 if calls[0] >= skew_after else 0.0)
    from srgrad.cli import app
    app(args=sys.argv[1:], prog_name="srgrad")
"""


def test_ddp_time_limit_stops_all_ranks_together_and_resume_keeps_each_ranks_patches(
    tmp_path,
):
    """Two gloo processes: rank 1 alone runs out of time during step 3; both stop at the
    step-4 check (no hang), and the resumed run ends bit-identical to an unbroken one, which
    needs each rank to go on with its own patch stream (not rank 0's)."""
    data = make_images(tmp_path / "data")
    script = tmp_path / "skewed.py"
    script.write_text(textwrap.dedent(SKEWED_RANK))

    def torchrun(args: list[str], **env: str) -> None:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--standalone", str(script), *args]
        env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
        log = tmp_path / "torchrun.log"
        with log.open("w") as fh:
            proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
            try:
                proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                proc.terminate()  # torchrun passes it on to its ranks (in sessions of their own)
                proc.wait(timeout=60)
                pytest.fail(f"torchrun {args[0]} hung: ranks out of step?")
        assert proc.returncode == 0, log.read_text()[-3000:]

    full, run = tmp_path / "full", tmp_path / "run"
    torchrun(base_args(data, full, iters=8))
    torchrun(base_args(data, run, iters=8) + ["--time-limit", "1000"], SKEW_AFTER="3")
    stopped = card(run)
    assert stopped["stopped_by_time_limit_at"] == 4 and stopped["iterations"] == 4
    ranks = torch.load(run / "last.pt", weights_only=True)["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["sampler"], ranks[1]["sampler"])
    torchrun(["train", "--resume", "--out", str(run), "--time-limit", "0"])
    resumed = card(run)
    assert resumed["iterations"] == 8 and resumed["world_size"] == 2
    assert resumed["replica_checksums"][0] == resumed["replica_checksums"][1]
    same_weights(full, run)
    assert losses(full) == losses(run)


def test_resuming_a_finished_run_keeps_its_card(tmp_path):
    """`--resume` of a run that has done all its iterations trains nothing and rewrites the
    same card (it wrote val_last_psnr null before last.pt kept it)."""
    data = make_images(tmp_path / "data", count=6, size=(48, 48))
    run = tmp_path / "run"
    args = base_args(data, run, iters=4)
    args[args.index("--val") + 1] = "holdout:2"
    assert runner.invoke(app, args + ["--val-every", "2"]).exit_code == 0
    before = card(run)
    assert before["val_last_psnr"] is not None
    result = runner.invoke(app, ["train", "--resume", "--out", str(run)])
    assert result.exit_code == 0, result.output
    after = card(run)
    for key in ("val_last_psnr", "val_best_psnr", "iterations"):
        assert after[key] == before[key], key


def test_a_run_that_stopped_before_its_first_checkpoint_starts_anew(tmp_path):
    """metrics.csv but no last.pt (killed before --ckpt-every): nothing to resume, so the
    same command starts the run again, without the dead run's rows; a run with a last.pt
    is still refused without --resume."""
    data = make_images(tmp_path / "data")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("step,loss\n1,99\n2,98\n")
    args = base_args(data, run, iters=4)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    steps = [int(step) for step, _ in losses(run)]
    assert steps == sorted(set(steps)) and 99.0 not in [float(v) for _, v in losses(run)]
    assert "already holds a training run" in one_line_error(runner.invoke(app, args))
