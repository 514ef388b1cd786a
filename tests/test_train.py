"""`srgrad train`: exact resume after SIGKILL, DDP replicas in sync, and bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from srgrad.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def make_images(folder: Path, count: int = 4, size: tuple[int, int] = (40, 36)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for i in range(count):
        freq = rng.uniform(0.1, 0.6, 3)
        img = np.stack([127 + 100 * np.sin(freq[c] * xx + (c + i) * yy / 7) for c in range(3)], 2)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def base_args(data: Path, out: Path, iters: int = 24) -> list[str]:
    # fp32 explicitly: the default, auto, is bf16 on some machines and fp32 on others
    return [
        "train",
        "--precision",
        "fp32",
        "--model",
        "sedsr-grad",
        "--scale",
        "2",
        "--data",
        str(data),
        "--val",
        "none",
        "--iters",
        str(iters),
        "--batch",
        "2",
        "--patch",
        "12",
        "--out",
        str(out),
        "--ckpt-every",
        "4",
        "--log-every",
        "2",
        "--ema",
        "0.9",
        "--lr",
        "1e-3",
        "--quiet",
        "--device",
        "cpu",
        "--cache-dir",
        str(out.parent / "cache"),
    ]


def without(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


def srgrad_cmd(args: list[str], kill_at_sample: int | None = None, threads: int = 1) -> list[str]:
    """Run srgrad in a fresh interpreter; optionally SIGKILL itself at the n-th batch drawn."""
    code = f"""
        import os, signal, torch
        torch.set_num_threads({threads})
        import srgrad.train.data as data
        kill_at = {kill_at_sample!r}
        original = data.PatchSampler.sample
        calls = [0]
        def sample(self):
            calls[0] += 1
            if kill_at is not None and calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self)
        data.PatchSampler.sample = sample
        from srgrad.cli import app
        app(args={args!r}, prog_name="srgrad")
    """
    return [sys.executable, "-c", textwrap.dedent(code)]


def losses(run: Path) -> list[tuple[str, str]]:
    with (run / "metrics.csv").open() as fh:
        return [(r["step"], r["loss"]) for r in csv.DictReader(fh)]


def test_resume_after_sigkill_is_exact(tmp_path):
    data = make_images(tmp_path / "data")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    full, broken = tmp_path / "full", tmp_path / "broken"
    done = subprocess.run(
        srgrad_cmd(base_args(data, full)), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    killed = subprocess.run(
        srgrad_cmd(base_args(data, broken), kill_at_sample=15),
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert (broken / "last.pt").exists() and not (broken / "sedsr-grad_x2.safetensors").exists()
    assert torch.load(broken / "last.pt", weights_only=True)["step"] == 12
    resumed = subprocess.run(
        srgrad_cmd(base_args(data, broken) + ["--resume"]), env=env, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(full / "sedsr-grad_x2.safetensors")
    b = load_file(broken / "sedsr-grad_x2.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert losses(full) == losses(broken)
    assert len(losses(full)) == 12
    card = json.loads((broken / "model_card.json").read_text())
    assert card["iterations"] == 24 and len(card["gates"]) == 8


def test_ddp_two_cpu_processes_stay_in_sync(tmp_path):
    data = make_images(tmp_path / "data")
    out = tmp_path / "ddp"
    args = base_args(data, out, iters=6)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--standalone",
        "-m",
        "srgrad",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["world_size"] == 2
    sums = card["replica_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]


def test_short_training_learns(tmp_path):
    """Loss falls on a learnable signal: a sanity check that gradients reach the weights."""
    data = make_images(tmp_path / "data", count=6, size=(64, 64))
    out = tmp_path / "learn"
    args = base_args(data, out, iters=60)
    args[args.index("--lr") + 1] = "2e-3"
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = losses(out)
    first, last = float(rows[0][1]), float(rows[-1][1])
    assert last < 0.6 * first


def one_line_error(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"--model": "sedsr-gard"}, "did you mean 'sedsr-grad'"),
        ({"--scale": "5"}, "--scale must be one of"),
        ({"--data": "/nonexistent/folder"}, "/nonexistent/folder"),
        ({"--patch": "64"}, "lower --patch"),
        ({"--precision": "fp16"}, "fp16 needs --device cuda"),
        ({"--iters": "0"}, "--iters must be positive"),
    ],
)
def test_bad_input_is_one_line(tmp_path, change, expected):
    data = make_images(tmp_path / "data")
    args = base_args(data, tmp_path / "run")
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    assert expected in one_line_error(runner.invoke(app, args))
    assert not (tmp_path / "run").exists()  # a refused run leaves no empty --out behind


def test_empty_data_folder_and_flag_combinations(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line_error(runner.invoke(app, base_args(empty, tmp_path / "run")))
    assert "no images" in line.lower() or "empty" in line.lower()
    data = make_images(tmp_path / "data")
    args = base_args(data, tmp_path / "run") + ["--resume", "--init-from", "x.safetensors"]
    assert "cannot be combined" in one_line_error(runner.invoke(app, args))
    ident = base_args(data, tmp_path / "run")
    ident[ident.index("sedsr-grad")] = "sedsr"
    assert "only applies to gradient models" in one_line_error(
        runner.invoke(app, ident + ["--alpha", "1"])
    )


def test_resume_errors_and_nothing_overwritten(tmp_path):
    data = make_images(tmp_path / "data")
    run = tmp_path / "run"
    line = one_line_error(runner.invoke(app, base_args(data, run, iters=4) + ["--resume"]))
    assert "no checkpoint" in line
    assert runner.invoke(app, base_args(data, run, iters=4)).exit_code == 0
    before = (run / "last.pt").read_bytes()
    line = one_line_error(runner.invoke(app, base_args(data, run, iters=4)))
    assert "--resume" in line
    other = base_args(data, run, iters=8) + ["--resume"]
    other[other.index("sedsr-grad")] = "sedsr"
    line = one_line_error(runner.invoke(app, other))
    assert "--model differs" in line and "saved 'sedsr-grad', given 'sedsr'" in line, line
    assert (run / "last.pt").read_bytes() == before


def test_init_from_keeps_body_and_reinitialises_upsampler(tmp_path):
    data = make_images(tmp_path / "data", size=(48, 48))
    x2 = tmp_path / "x2"
    assert runner.invoke(app, base_args(data, x2, iters=4) + ["--seed", "7"]).exit_code == 0
    x4 = tmp_path / "x4"
    args = base_args(data, x4, iters=2) + ["--init-from", str(x2 / "sedsr-grad_x2.safetensors")]
    args[args.index("--scale") + 1] = "4"
    args[args.index("--lr") + 1] = "1e-12"
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    src = load_file(x2 / "sedsr-grad_x2.safetensors")
    dst = load_file(x4 / "sedsr-grad_x4.safetensors")
    key = "blocks.3.branch.conv1.weight"
    assert torch.allclose(src[key], dst[key], atol=1e-6)
    assert not torch.allclose(dst["upsampler.0.weight"], src["upsampler.0.weight"], atol=1e-3)
    assert "upsampler.2.weight" in dst and "upsampler.2.weight" not in src


def test_init_from_same_scale_keeps_everything(tmp_path):
    data = make_images(tmp_path / "data", size=(48, 48))
    first = tmp_path / "first"
    assert runner.invoke(app, base_args(data, first, iters=4) + ["--seed", "7"]).exit_code == 0
    again = tmp_path / "again"
    weights = str(first / "sedsr-grad_x2.safetensors")
    args = base_args(data, again, iters=1) + ["--init-from", weights]
    args[args.index("--lr") + 1] = "1e-12"
    assert runner.invoke(app, args).exit_code == 0
    src = load_file(first / "sedsr-grad_x2.safetensors")
    dst = load_file(again / "sedsr-grad_x2.safetensors")
    for key in ("upsampler.0.weight", "tail.weight", "blocks.0.alpha"):
        assert torch.allclose(src[key], dst[key], atol=1e-6), key
    other_alpha = base_args(data, tmp_path / "a2", iters=1) + ["--init-from", weights,
                                                              "--alpha", "2"]
    line = one_line_error(runner.invoke(app, other_alpha))
    assert f"--alpha 2 differs from the -3 that --init-from {weights} was built with" in line
    assert not (tmp_path / "a2").exists()


def test_toml_config_and_unknown_key(tmp_path):
    data = make_images(tmp_path / "data")
    cfg = tmp_path / "train.toml"
    cfg.write_text('[train]\nmodel = "sedsr"\niters = 3\n')
    args = base_args(data, tmp_path / "run")
    args = [a for a in args if a not in ("--model", "sedsr-grad")]
    i = args.index("--iters")
    del args[i : i + 2]
    result = runner.invoke(app, args + ["--config", str(cfg)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == "sedsr" and saved["iters"] == 3
    cfg.write_text("[train]\nitres = 3\n")
    line = one_line_error(runner.invoke(app, args + ["--config", str(cfg)]))
    assert "unknown key 'itres'" in line
    cfg.write_text("train = 3\n")
    line = one_line_error(runner.invoke(app, args + ["--config", str(cfg)]))
    assert f"{cfg} [train]: must be a table of training settings, got 3" in line


@pytest.mark.parametrize(
    "line,expected",
    [
        ('iters = "3"', "--iters (iters in a TOML file) must be a whole number, got '3'"),
        ("iters = 3.9", "--iters (iters in a TOML file) must be a whole number, got 3.9"),
        ("batch = true", "--batch (batch in a TOML file) must be a whole number, got True"),
        ('lr = "fast"', "--lr (lr in a TOML file) must be a finite number, got 'fast'"),
        ("lr = inf", "--lr (lr in a TOML file) must be a finite number, got inf"),
        ('quiet = "no"', "--quiet (quiet in a TOML file) must be true or false, got 'no'"),
        ("data = [1]", "--data (data in a TOML file) must be a list of strings, got [1]"),
        ("warmup = -5", "--warmup must be >= 0, got -5"),
        ("step_every = 0", "--step-every must be positive, got 0"),
    ],
)
def test_a_wrong_type_or_range_in_a_toml_file_is_one_line_and_writes_nothing(
        tmp_path, line, expected):
    data = make_images(tmp_path / "data")
    cfg = tmp_path / "train.toml"
    cfg.write_text(f"[train]\n{line}\n")
    args = base_args(data, tmp_path / "run")
    for flag in ("--iters", "--batch", "--lr", "--data"):
        args = without(args, flag)
    args = [a for a in args if a != "--quiet"]
    if not line.startswith("data"):
        args += ["--data", str(data)]
    assert expected in one_line_error(runner.invoke(app, args + ["--config", str(cfg)]))
    assert not (tmp_path / "run").exists()


def test_whole_numbers_are_taken_for_floats_in_a_toml_file(tmp_path):
    from srgrad.train.config import make_config

    config = make_config({"lr": 1, "alpha": -3}, {})
    assert config.lr == 1.0 and isinstance(config.lr, float) and config.alpha == -3.0


def test_the_same_data_folder_twice_and_unusable_folders_are_one_line(tmp_path):
    data = make_images(tmp_path / "data")
    args = base_args(data, tmp_path / "run")
    twice = one_line_error(runner.invoke(app, args + ["--data", f"{data}/"]))
    assert "is given twice" in twice
    a_file = tmp_path / "a.png"
    a_file.write_bytes(b"x")
    line = one_line_error(runner.invoke(app, without(args, "--data") + ["--data", str(a_file)]))
    assert f"training data folder {a_file} is a file, not a folder" in line
    out_file = base_args(data, a_file)
    assert f"--out {a_file} is a file" in one_line_error(runner.invoke(app, out_file))
    into_data = one_line_error(runner.invoke(app, base_args(data, data)))
    assert f"--out {data} holds other files and no srgrad run" in into_data
    assert sorted(p.name for p in data.iterdir()) == [f"img{i}.png" for i in range(4)]
    cache = without(args, "--cache-dir") + ["--cache-dir", str(a_file)]
    assert "LR cache folder" in one_line_error(runner.invoke(app, cache))
    for config in (tmp_path, a_file):  # a folder, and a file that is not text
        a_file.write_bytes(bytes(range(128, 256)))
        line = one_line_error(runner.invoke(app, args + ["--config", str(config)]))
        assert f"config file {config}" in line


def test_typer_app_is_importable():
    assert isinstance(app, typer.Typer)


@pytest.mark.slow
def test_compiled_and_bf16_training_follow_the_eager_fp32_run(tmp_path):
    """--compile and --precision bf16 change how the step runs, not what it computes: the
    same seed and patches give the same losses (compile: to float rounding; bf16: to its
    8-bit mantissa), and the saved weights are plain contiguous fp32 tensors."""
    data = make_images(tmp_path / "data", count=4, size=(48, 48))
    runs = {}
    for name, extra in (("eager", []), ("compiled", ["--compile"]),
                        ("bf16", ["--precision", "bf16"])):
        out = tmp_path / name
        result = runner.invoke(app, base_args(data, out, iters=6) + extra)
        assert result.exit_code == 0, result.output
        runs[name] = [float(loss) for _, loss in losses(out) if loss]
        tensors = load_file(str(out / "sedsr-grad_x2.safetensors"))
        assert all(t.dtype == torch.float32 and t.is_contiguous() for t in tensors.values())
    assert np.allclose(runs["compiled"], runs["eager"], rtol=1e-3)
    assert np.allclose(runs["bf16"], runs["eager"], rtol=3e-2)
    assert runs["bf16"] != runs["eager"]  # bf16 really ran


def test_diverged_run_stops_with_one_line_and_saves_no_nan_weights(tmp_path):
    """--lr 1e6 blows the loss up to NaN/inf within a few steps: one error line naming the
    step and what to try, a non-zero exit, no weights file, and last.pt (if one was written
    before) holds finite weights only."""
    data = make_images(tmp_path / "data")
    run = tmp_path / "run"
    args = base_args(data, run, iters=24)
    args[args.index("--lr") + 1] = "1e6"
    result = runner.invoke(app, args)
    line = one_line_error(result)
    assert result.exit_code == 2
    assert "training diverged at step" in line and "lower --lr (now 1e+06)" in line, line
    assert not list(run.glob("*.safetensors")) and not (run / "model_card.json").exists()
    if (run / "last.pt").exists():
        state = torch.load(run / "last.pt", weights_only=True)
        assert all(t.isfinite().all() for t in state["model"].values())


def test_divergence_is_reported_at_its_first_step_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch
):
    """The loss turns NaN at step 7 (checks run every 2 steps, checkpoints every 4): the error
    names step 7, last.pt stays the finite one of step 4, and no weights file is written."""
    data = make_images(tmp_path / "data")
    run = tmp_path / "run"
    real_l1, calls = torch.nn.functional.l1_loss, [0]

    def l1_loss(*args, **kwargs):
        calls[0] += 1
        loss = real_l1(*args, **kwargs)
        return loss * float("nan") if calls[0] >= 7 else loss

    monkeypatch.setattr(torch.nn.functional, "l1_loss", l1_loss)
    result = runner.invoke(app, base_args(data, run, iters=24))
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert line.startswith("error: training diverged at step 7:"), line
    assert "--precision fp32" not in line  # the run was fp32 already
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["step"] == 4
    assert all(t.isfinite().all() for t in state["model"].values())
    assert not list(run.glob("*.safetensors"))
    assert [step for step, _ in losses(run)] == ["2", "4", "6"]


def test_default_validation_is_a_holdout_of_the_training_images(tmp_path, monkeypatch):
    """`srgrad train --data X` without --val validates on holdout:20 of X: no test set, none
    needed on the machine."""
    monkeypatch.setenv("SRGRAD_DATA", str(tmp_path / "no-datasets-here"))
    data = make_images(tmp_path / "data", count=22, size=(24, 24))
    result = runner.invoke(app, without(base_args(data, tmp_path / "run", iters=2), "--val"))
    assert result.exit_code == 0, result.output
    assert "test set" not in result.output
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["val"] == "holdout:20" and card["val_is_test_set"] is False
    assert card["val_last_psnr"] is not None
    few = without(base_args(make_images(tmp_path / "few"), tmp_path / "r2"), "--val")
    line = one_line_error(runner.invoke(app, few))
    assert "holdout:20 leaves no training images: only 4 found" in line and "--val none" in line


def test_validation_on_a_test_set_is_noted(tmp_path):
    root = tmp_path / "root"
    make_images(root / "benchmark" / "Set5" / "HR", count=2, size=(24, 24))
    data = make_images(tmp_path / "data")
    args = base_args(data, tmp_path / "run", iters=2)
    args[args.index("--val") + 1] = "set5"
    result = runner.invoke(app, args + ["--val-root", str(root)])
    assert result.exit_code == 0, result.output
    assert "note: --val set5 is a test set" in result.output
    card = json.loads((tmp_path / "run" / "model_card.json").read_text())
    assert card["val"] == "set5" and card["val_is_test_set"] is True


def test_train_help_shows_the_config_defaults_and_no_bool_metavar():
    from srgrad.train.config import TrainConfig

    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    lines = {line.split()[1]: line for line in result.output.splitlines()
             if line.startswith("│ --")}
    defaults = TrainConfig()
    for flag, value in (("--iters", defaults.iters), ("--val", defaults.val),
                        ("--lr", defaults.lr), ("--precision", defaults.precision),
                        ("--data", defaults.data[0]), ("--log-every", defaults.log_every)):
        assert f"[default: {value}]" in lines[flag], lines[flag]
    assert "TOML file with [train] keys" in lines["--config"]
    for flag in ("--resume", "--compile", "--quiet", "--freeze-alpha", "--grad-through"):
        assert "<bool>" not in lines[flag], lines[flag]
    assert "--iters, --time-limit" in result.output  # what --resume may change


def test_every_train_option_comes_from_trainconfig_once(monkeypatch, tmp_path):
    """The CLI's flags are TrainConfig's fields: each one parses into its field, switches set
    True (--freeze-alpha sets learn_alpha False), and what is not given stays the default."""
    import dataclasses

    from srgrad.train import loop
    from srgrad.train.config import TrainConfig, flag_name

    seen = []
    monkeypatch.setattr(loop, "train", lambda cfg, command: seen.append(cfg) or
                        loop.TrainResult(cfg.out, None, 0, None, None))
    help_text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "300"}).output
    for f in dataclasses.fields(TrainConfig):
        assert f"│ {flag_name(f.name)} " in help_text, f.name
    args = ["train", "--model", "sedsr-grad", "--iters", "7", "--lr", "0.001", "--data", "a",
            "--data", "b", "--alpha", "-2", "--freeze-alpha", "--grad-through", "--compile",
            "--quiet", "--time-limit", "5", "--out", str(tmp_path / "run")]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, ["train", "--out", str(tmp_path / "run2")]).exit_code == 0
    given, bare = seen
    assert (given.iters, given.lr, given.data, given.alpha, given.time_limit) == \
        (7, 0.001, ["a", "b"], -2.0, 5.0)
    assert (given.learn_alpha, given.grad_through, given.compile, given.quiet) == \
        (False, True, True, True)
    assert dataclasses.replace(bare, out=TrainConfig.out) == TrainConfig()


def test_the_card_names_the_gpu_or_the_cpu_and_its_bf16(monkeypatch):
    """A card written on a GPU once raised AttributeError after the whole run had trained."""
    from srgrad.models import precision as prec
    from srgrad.train.records import device_name

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100")
    assert device_name(torch.device("cuda", 0)) == "NVIDIA H100"
    monkeypatch.setattr(prec, "cpu_bf16_flags", lambda: ())
    cpu = device_name(torch.device("cpu"))
    assert cpu.endswith(f"(no native bf16) CPU, {torch.get_num_threads()} threads"), cpu
