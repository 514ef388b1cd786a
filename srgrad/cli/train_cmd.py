"""`srgrad train`: flags (and an optional TOML file) -> TrainConfig -> train.loop.train."""

from __future__ import annotations

import shlex
import sys

import typer
from rich.markup import escape

from srgrad.cli._common import flag, print_plain, user_errors
from srgrad.train.config import (
    RESUME_MAY_CHANGE,
    TrainConfig,
    flag_name,
    load_toml,
    make_config,
)

Opt = typer.Option
_DEFAULTS = TrainConfig()


def _help(text: str, name: str) -> str:
    """`text` and the default of TrainConfig.`name` (Rich markup escaped); flags and unset
    values show none."""
    value = getattr(_DEFAULTS, name)
    if value is None or isinstance(value, bool):
        return text
    shown = ", ".join(value) if isinstance(value, list) else value
    return f"{text} {escape(f'[default: {shown}]')}"


_RESUME_HELP = (
    "Continue the run in --out from its last.pt with its saved settings: nothing else needs "
    "to be given, and what is given must match them, except "
    f"{', '.join(flag_name(n) for n in RESUME_MAY_CHANGE)} (--iters extends the run)."
)


@user_errors
def train(
    config: str | None = Opt(
        None, "--config", help=escape("TOML file with [train] keys; flags win.")
    ),
    model: str | None = Opt(
        None, help=_help("Registry name, e.g. sedsr-grad (see `srgrad models`).", "model")
    ),
    scale: int | None = Opt(None, help=_help("2, 3 or 4.", "scale")),
    data: list[str] | None = Opt(
        None,
        help=_help(
            "Repeatable: a DIV2K root, a benchmark-style folder or any folder of HR images.",
            "data",
        ),
    ),
    val: str | None = Opt(
        None,
        help=_help(
            "Validation: holdout:N (N training images held out), a folder, none, or a "
            "benchmark (div2k-valid; test sets set5, set14, b100, urban100 are noted as such).",
            "val",
        ),
    ),
    val_root: str | None = Opt(None, help="Data root for benchmark validation sets."),
    val_every: int | None = Opt(None, help=_help("Validate every N iterations.", "val_every")),
    iters: int | None = Opt(None, help=_help("Total training iterations.", "iters")),
    batch: int | None = Opt(
        None, help=_help("Patches per iteration (per process under torchrun).", "batch")
    ),
    patch: int | None = Opt(
        None, help=_help("LR patch size in pixels (HR is patch x scale).", "patch")
    ),
    lr: float | None = Opt(None, help=_help("Adam learning rate.", "lr")),
    schedule: str | None = Opt(
        None, help=_help("cosine or step (halve every --step-every).", "schedule")
    ),
    step_every: int | None = Opt(
        None, help=_help("Iterations between halvings for --schedule step.", "step_every")
    ),
    warmup: int | None = Opt(None, help=_help("Linear warm-up iterations.", "warmup")),
    ema: float | None = Opt(
        None, help=_help("EMA decay of the weights, e.g. 0.999 (0 = off).", "ema")
    ),
    seed: int | None = Opt(None, help=_help("Random seed.", "seed")),
    out: str | None = Opt(
        None, help=_help("Run folder (checkpoints, metrics.csv, weights).", "out")
    ),
    resume: bool = flag("--resume", help=_RESUME_HELP),
    init_from: str | None = Opt(None, help="Weights to start from (x3/x4 from x2)."),
    device: str | None = Opt(None, help=_help("auto, cpu or cuda.", "device")),
    precision: str | None = Opt(
        None,
        help=_help("auto (bf16 where the CPU/GPU computes it natively, else fp32), fp32, bf16 or "
                   "fp16 (CUDA).", "precision"),
    ),
    compile_model: bool = flag(
        "--compile", help="torch.compile the training forward (slow start, faster steps)."
    ),
    workers: int | None = Opt(None, help=_help("Threads preparing the LR cache.", "workers")),
    cache_dir: str | None = Opt(None, help="LR cache folder (default ~/.cache/srgrad/lr)."),
    time_limit: float | None = Opt(
        None,
        help="Stop after this many seconds of this invocation (looked at after every step; "
        "under torchrun every --log-every steps or sooner, so all ranks stop together), with "
        "a checkpoint and weights; the card says so; --resume goes on (with the same limit; "
        "--time-limit 0 lifts it).",
    ),
    ckpt_every: int | None = Opt(
        None, help=_help("Checkpoint every N iterations.", "ckpt_every")
    ),
    log_every: int | None = Opt(
        None, help=_help("Log a metrics row every N iterations.", "log_every")
    ),
    quiet: bool = flag("--quiet", help="Plain log lines instead of a progress bar."),
    skip: str | None = Opt(
        None, help="gradient, convex (the -grad models' default) or scaled (the control: "
        "y = F(x) + (1 - s) x, no g)."
    ),
    alpha: float | None = Opt(None, help="Initial alpha of gradient blocks."),
    alpha_lr: float | None = Opt(
        None, help="Adam learning rate of alpha and beta (default: --lr, at which they barely "
        "move)."
    ),
    freeze_alpha: bool = flag("--freeze-alpha", help="Keep alpha fixed at its initial value."),
    norm: str | None = Opt(None, help="Gradient normalization: none, sample or pixel."),
    magnitude: str | None = Opt(None, help="unit, input or learned (unit times beta)."),
    g_scale: float | None = Opt(None, help="Initial beta of --magnitude learned."),
    grad_through: bool = flag("--grad-through", help="Backpropagate through g."),
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
    result = run_training(cfg, command=shlex.join(["srgrad", *sys.argv[1:]]))
    if result.weights is None:
        return
    best = f", best val PSNR {result.best_psnr:.2f} dB" if result.best_psnr else ""
    if result.stopped_by_time_limit:
        print_plain(f"stopped by --time-limit after {result.steps} of {cfg.iters} iterations"
                    f"{best}; weights: {result.weights}; go on with: srgrad train --resume "
                    f"--out {cfg.out}")
    else:
        print_plain(f"trained {result.steps} iterations{best}; weights: {result.weights}")
