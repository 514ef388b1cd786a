"""`srgrad train`: flags (and an optional TOML file) -> TrainConfig -> train.loop.train."""

from __future__ import annotations

import shlex
import sys

import typer

from srgrad.cli._common import console, user_errors
from srgrad.train.config import load_toml, make_config

Opt = typer.Option


@user_errors
def train(
    config: str | None = Opt(None, "--config", help="TOML file with [train] keys; flags win."),
    model: str | None = Opt(None, help="Registry name, e.g. sedsr-grad (see `srgrad models`)."),
    scale: int | None = Opt(None, help="2, 3 or 4."),
    data: list[str] | None = Opt(
        None, help="Repeatable: a DIV2K root, a benchmark-style folder or any folder of HR images."
    ),
    val: str | None = Opt(
        None,
        help="Validation: set5, set14, b100, urban100, div2k-valid, a folder, holdout:N, none.",
    ),
    val_root: str | None = Opt(None, help="Data root for benchmark validation sets."),
    val_every: int | None = Opt(None, help="Validate every N iterations."),
    iters: int | None = Opt(None, help="Total training iterations."),
    batch: int | None = Opt(None, help="Patches per iteration (per process under torchrun)."),
    patch: int | None = Opt(None, help="LR patch size in pixels (HR is patch x scale)."),
    lr: float | None = Opt(None, help="Adam learning rate."),
    schedule: str | None = Opt(None, help="cosine or step (halve every --step-every)."),
    step_every: int | None = Opt(None, help="Iterations between halvings for --schedule step."),
    warmup: int | None = Opt(None, help="Linear warm-up iterations."),
    ema: float | None = Opt(None, help="EMA decay of the weights, e.g. 0.999 (0 = off)."),
    seed: int | None = Opt(None, help="Random seed."),
    out: str | None = Opt(None, help="Run folder (checkpoints, metrics.csv, weights)."),
    resume: bool = Opt(False, "--resume", help="Continue the run in --out from last.pt."),
    init_from: str | None = Opt(None, help="Weights to start from (x3/x4 from x2)."),
    device: str | None = Opt(None, help="auto, cpu or cuda."),
    precision: str | None = Opt(
        None, help="fp32 (default), auto (bf16 where native, else fp32), bf16 or fp16 (CUDA)."
    ),
    compile_model: bool = Opt(
        False, "--compile", help="torch.compile the training forward (slow start, faster steps)."
    ),
    workers: int | None = Opt(None, help="Threads preparing the LR cache."),
    cache_dir: str | None = Opt(None, help="LR cache folder (default ~/.cache/srgrad/lr)."),
    time_limit: float | None = Opt(None, help="Stop early after this many seconds."),
    ckpt_every: int | None = Opt(None, help="Checkpoint every N iterations."),
    log_every: int | None = Opt(None, help="Log a metrics row every N iterations."),
    quiet: bool = Opt(False, "--quiet", help="Plain log lines instead of a progress bar."),
    skip: str | None = Opt(
        None, help="gradient, convex (the -grad models' default) or scaled (the control: "
        "y = F(x) + (1 - s) x, no g)."
    ),
    alpha: float | None = Opt(None, help="Initial alpha of gradient blocks."),
    alpha_lr: float | None = Opt(
        None, help="Adam learning rate of alpha and beta (default: --lr, at which they barely "
        "move)."
    ),
    freeze_alpha: bool = Opt(
        False, "--freeze-alpha", help="Keep alpha fixed at its initial value."
    ),
    norm: str | None = Opt(None, help="Gradient normalization: none, sample or pixel."),
    magnitude: str | None = Opt(None, help="unit, input or learned (unit times beta)."),
    g_scale: float | None = Opt(None, help="Initial beta of --magnitude learned."),
    grad_through: bool = Opt(False, "--grad-through", help="Backpropagate through g."),
    grad_impl: str | None = Opt(None, help="auto, analytic or autograd."),
) -> None:
    """Train a model; safe to interrupt and --resume."""
    from srgrad.train.loop import train as run_training

    flags = dict(
        model=model,
        scale=scale,
        data=data,
        val=val,
        val_root=val_root,
        val_every=val_every,
        iters=iters,
        batch=batch,
        patch=patch,
        lr=lr,
        schedule=schedule,
        step_every=step_every,
        warmup=warmup,
        ema=ema,
        seed=seed,
        out=out,
        resume=resume or None,
        init_from=init_from,
        device=device,
        precision=precision,
        compile=compile_model or None,
        workers=workers,
        cache_dir=cache_dir,
        time_limit=time_limit,
        ckpt_every=ckpt_every,
        log_every=log_every,
        quiet=quiet or None,
        skip=skip,
        alpha=alpha,
        alpha_lr=alpha_lr,
        g_scale=g_scale,
        learn_alpha=False if freeze_alpha else None,
        norm=norm,
        magnitude=magnitude,
        grad_through=True if grad_through else None,
        grad_impl=grad_impl,
    )
    file_values = load_toml(config) if config else {}
    cfg = make_config(file_values, flags)
    if cfg.val and cfg.val.lower() == "none":
        cfg.val = None
    result = run_training(cfg, command=shlex.join(["srgrad", *sys.argv[1:]]))
    if result.weights is not None:
        best = f", best val PSNR {result.best_psnr:.2f} dB" if result.best_psnr else ""
        console.print(f"trained {cfg.iters} iterations{best}; weights: {result.weights}")
