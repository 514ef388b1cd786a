"""Typed training configuration: defaults, TOML loading and validation at the edge."""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from srgrad.errors import ConfigError
from srgrad.models.blocks import GRAD_IMPLS, MAGNITUDES, NORMS, SKIPS
from srgrad.models.precision import PRECISIONS
from srgrad.models.registry import MODELS, SCALES, suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# TrainConfig fields that override the registry's block config of a gradient model.
BLOCK_FLAGS = ("skip", "alpha", "learn_alpha", "norm", "magnitude", "g_scale", "grad_through",
               "grad_impl")


@dataclass
class TrainConfig:
    model: str = "sedsr-grad"
    scale: int = 2
    data: list[str] = field(default_factory=lambda: ["datasets/train"])
    val: str | None = "set5"  # a benchmark name, a folder of HR images, or holdout:N
    val_root: str | None = None  # data root for benchmark names (default: SRGRAD_DATA/datasets)
    val_every: int = 1000
    iters: int = 10000
    batch: int = 16
    patch: int = 48  # LR patch size; the HR patch is patch * scale
    lr: float = 2e-4
    schedule: str = "cosine"  # cosine | step
    step_every: int = 200000  # step schedule: halve the lr every this many iterations
    warmup: int = 0
    ema: float = 0.0  # 0 disables the EMA of the weights; 0.999 is BasicSR's value
    seed: int = 0
    out: str = "runs/default"
    resume: bool = False
    init_from: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False  # torch.compile the training forward (docs/benchmarks.md: its gain)
    workers: int = 0
    cache_dir: str | None = None  # LR cache; default $SRGRAD_CACHE, else ~/.cache/srgrad/lr
    time_limit: float | None = (
        None  # seconds; a safety net that ends a run early, noted in its card
    )
    ckpt_every: int = 500
    log_every: int = 50
    quiet: bool = False
    alpha_lr: float | None = None  # Adam lr of alpha and beta (None: --lr); they barely move at it
    # Block overrides for the gradient variants (None keeps the registry's value).
    skip: str | None = None
    alpha: float | None = None
    learn_alpha: bool | None = None
    norm: str | None = None
    magnitude: str | None = None
    g_scale: float | None = None
    grad_through: bool | None = None
    grad_impl: str | None = None

    def block_overrides(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in BLOCK_FLAGS if getattr(self, n) is not None}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_cache_dir() -> Path:
    env = os.environ.get("SRGRAD_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "srgrad" / "lr"


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return check_keys(data.get("train", data), str(path))


def check_keys(values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` with dashes as underscores; a ConfigError naming the first unknown key."""
    values = {k.replace("-", "_"): v for k, v in values.items()}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{suggest(unknown[0], known)}")
    return values


def make_config(file_values: dict[str, Any], flag_values: dict[str, Any]) -> TrainConfig:
    """Defaults < TOML file < flags given on the command line (None means not given)."""
    merged = {**file_values, **{k: v for k, v in flag_values.items() if v is not None}}
    if isinstance(merged.get("data"), str):
        merged["data"] = [merged["data"]]
    try:
        config = TrainConfig(**merged)
    except TypeError as exc:
        raise ConfigError(f"invalid training config: {exc}") from None
    validate(config)
    return config


def validate(c: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(c.model in MODELS, f"unknown model {c.model!r}{suggest(c.model, MODELS)}")
    need(c.scale in SCALES, f"--scale must be one of {SCALES}, got {c.scale}")
    need(bool(c.data), "give at least one --data folder")
    need(c.iters > 0, f"--iters must be positive, got {c.iters}")
    need(c.batch > 0, f"--batch must be positive, got {c.batch}")
    need(c.patch >= 8, f"--patch must be at least 8 LR pixels, got {c.patch}")
    need(c.lr > 0, f"--lr must be positive, got {c.lr}")
    need(c.schedule in ("cosine", "step"), f"--schedule must be cosine or step, not {c.schedule!r}")
    need(0 <= c.ema < 1, f"--ema must be in [0, 1), got {c.ema}")
    need(
        c.device in ("auto", "cpu", "cuda"), f"--device must be auto, cpu or cuda, not {c.device!r}"
    )
    need(c.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}")
    need(c.workers >= 0, "--workers must be >= 0")
    need(c.time_limit is None or c.time_limit > 0, "--time-limit must be positive")
    need(c.val_every > 0 and c.ckpt_every > 0 and c.log_every > 0, "intervals must be positive")
    need(
        not (c.resume and c.init_from),
        "--resume and --init-from cannot be combined: "
        "resume continues a run, init-from starts a new one",
    )
    need(c.norm is None or c.norm in NORMS, f"--norm must be one of {NORMS}")
    need(
        c.magnitude is None or c.magnitude in MAGNITUDES, f"--magnitude must be one of {MAGNITUDES}"
    )
    need(
        c.grad_impl is None or c.grad_impl in GRAD_IMPLS, f"--grad-impl must be one of {GRAD_IMPLS}"
    )
    need(c.skip is None or c.skip in SKIPS[1:], f"--skip must be one of {SKIPS[1:]}")
    need(c.g_scale is None or c.g_scale > 0, "--g-scale must be positive")
    need(c.alpha_lr is None or c.alpha_lr > 0, f"--alpha-lr must be positive, got {c.alpha_lr}")
    if c.model in MODELS and MODELS[c.model][1] == "identity":
        given = [k for k in BLOCK_FLAGS[:-1] if getattr(c, k) is not None]
        need(
            not given,
            f"--{given[0].replace('_', '-') if given else ''} only applies to "
            f"gradient models (e.g. {c.model}-grad), not the identity model {c.model}",
        )
    if c.val and c.val.startswith("holdout:"):
        count = c.val.split(":", 1)[1]
        need(count.isdigit() and int(count) > 0, f"--val holdout:N needs a positive N, got {c.val}")
    if c.precision == "fp16":
        need(c.device != "cpu", "--precision fp16 needs --device cuda; use bf16 or fp32 on a CPU")
