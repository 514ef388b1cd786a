"""Typed training configuration: defaults, TOML loading, resume and validation at the edge."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from srgrad.errors import ConfigError, reason
from srgrad.evaluation.run import DEFAULT_DATASETS
from srgrad.models.blocks import GRAD_IMPLS, MAGNITUDES, NORMS, SKIPS
from srgrad.models.precision import PRECISION_HELP, PRECISIONS
from srgrad.models.registry import MODELS, SCALES, suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# TrainConfig fields that override the registry's block config of a gradient model.
BLOCK_FLAGS = ("skip", "alpha", "learn_alpha", "norm", "magnitude", "g_scale", "grad_through",
               "grad_impl")
# What --resume may change: how long the run goes on, where it runs and how it reports, never
# what it trains. --iters may extend (or shorten, down to the steps done) the run; the cosine
# schedule is then laid over the new total from the step resumed at. --time-limit counts the
# seconds of each invocation.
RESUME_MAY_CHANGE = ("iters", "time_limit", "quiet", "log_every", "ckpt_every", "val_every",
                     "workers", "device", "compile", "cache_dir", "val_root")


def option(default: Any = None, help: str = "", *, flag: str | None = None,
           factory: Any = None) -> Any:
    """A TrainConfig field with its `srgrad train` help (and its flag where that is not
    --<field-name>): the one definition of a training option, read by the CLI and TOML alike."""
    metadata = {"help": help, **({"flag": flag} if flag else {})}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    model: str = option("sedsr-grad", "Registry name, e.g. sedsr-grad (see `srgrad models`).")
    scale: int = option(2, "2, 3 or 4.")
    data: list[str] = option(
        help="Repeatable: a DIV2K root, a benchmark-style folder or any folder of HR images.",
        factory=lambda: ["datasets/train"])
    # A test set as validation (val_is_test_set) is noted as such, in the card too.
    val: str | None = option(
        "holdout:20", "Validation: holdout:N (N training images held out), a folder, none, or a "
        "benchmark (div2k-valid; test sets set5, set14, b100, urban100 are noted as such).")
    # Default for benchmark names: SRGRAD_DATA/datasets.
    val_root: str | None = option(None, "Data root for benchmark validation sets.")
    val_every: int = option(1000, "Validate every N iterations.")
    iters: int = option(10000, "Total training iterations.")
    batch: int = option(16, "Patches per iteration (per process under torchrun).")
    patch: int = option(48, "LR patch size in pixels (HR is patch x scale).")
    lr: float = option(2e-4, "Adam learning rate.")
    schedule: str = option("cosine", "cosine or step (halve every --step-every).")
    step_every: int = option(200000, "Iterations between halvings for --schedule step.")
    warmup: int = option(0, "Linear warm-up iterations.")
    ema: float = option(0.0, "EMA decay of the weights, e.g. 0.999 (BasicSR's; 0 = off).")
    seed: int = option(0, "Random seed.")
    out: str = option("runs/default", "Run folder (checkpoints, metrics.csv, weights).")
    resume: bool = option(False, "Continue the run in --out from its last.pt with its saved "
                          "settings: nothing else needs to be given, and what is given must "
                          "match them, except {resume_may_change} (--iters extends the run).")
    init_from: str | None = option(None, "Weights to start from (x3/x4 from x2).")
    device: str = option("auto", "auto, cpu or cuda.")
    # auto: bf16 where the hardware computes it natively (held-out PSNR within 0.01 dB of fp32
    # over two seeds of sedsr and sedsr-grad, at half the step time: docs/benchmarks.md s. 2)
    precision: str = option("auto", PRECISION_HELP + ".")
    compile: bool = option(False, "torch.compile the training forward (slow start, faster "
                           "steps; docs/benchmarks.md has its gain).")
    workers: int = option(0, "Threads preparing the LR cache.")
    cache_dir: str | None = option(
        None, "LR cache folder (default $SRGRAD_CACHE, else ~/.cache/srgrad/lr).")
    time_limit: float | None = option(
        None, "Stop after this many seconds of this invocation (looked at after every step; "
        "under torchrun every --log-every steps or sooner, so all ranks stop together), with "
        "a checkpoint and weights; the card says so; --resume goes on (with the same limit; "
        "--time-limit 0 lifts it).")
    ckpt_every: int = option(500, "Checkpoint every N iterations.")
    log_every: int = option(50, "Log a metrics row every N iterations.")
    quiet: bool = option(False, "Plain log lines instead of a progress bar.")
    alpha_lr: float | None = option(
        None, "Adam learning rate of alpha and beta (default: --lr, at which they barely move).")
    # Block overrides for the gradient variants (None keeps the registry's value).
    skip: str | None = option(None, "gradient, convex (the -grad models' default) or scaled "
                              "(the control: y = F(x) + (1 - s) x, no g).")
    alpha: float | None = option(None, "Initial alpha of gradient blocks.")
    learn_alpha: bool | None = option(
        None, "Keep alpha fixed at its initial value.", flag="--freeze-alpha")
    norm: str | None = option(None, "Gradient normalization: none, sample or pixel.")
    magnitude: str | None = option(None, "unit, input or learned (unit times beta).")
    g_scale: float | None = option(None, "Initial beta of --magnitude learned.")
    grad_through: bool | None = option(None, "Backpropagate through g.")
    grad_impl: str | None = option(None, "auto, analytic or autograd.")

    def block_overrides(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in BLOCK_FLAGS if getattr(self, n) is not None}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def flag_name(field_name: str) -> str:
    meta = TrainConfig.__dataclass_fields__[field_name].metadata
    return meta.get("flag", "--" + field_name.replace("_", "-"))


def field_help(field_name: str) -> str:
    """The `srgrad train --help` text of a TrainConfig field."""
    text = TrainConfig.__dataclass_fields__[field_name].metadata["help"]
    return text.format(resume_may_change=", ".join(flag_name(n) for n in RESUME_MAY_CHANGE))


def val_is_test_set(val: str | None) -> bool:
    """Whether --val names a benchmark that `srgrad eval` reports scores on: picking the best
    checkpoint on it leaks that test set into the model."""
    return bool(val) and val.lower() in DEFAULT_DATASETS


def holdout_count(val: str | None) -> int:
    """N of --val holdout:N; 0 for any other --val, and for an N that is not a whole number."""
    count = val.split(":", 1)[1] if val and val.startswith("holdout:") else ""
    return int(count) if count.isdigit() else 0


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
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({reason(exc)})") from None
    return check_keys(data.get("train", data), f"{path} [train]" if "train" in data else str(path))


def check_keys(values: dict[str, Any], where: str) -> dict[str, Any]:
    """`values` with dashes as underscores; a ConfigError naming the first unknown key."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: must be a table of training settings, got {values!r}")
    values = {k.replace("-", "_"): v for k, v in values.items()}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{suggest(unknown[0], known)}")
    return values


def make_config(file_values: dict[str, Any], flag_values: dict[str, Any]) -> TrainConfig:
    """Defaults < TOML file < flags given on the command line (None means not given).

    On --resume the run's saved config replaces the defaults, and what is given must equal it
    except RESUME_MAY_CHANGE."""
    given = _normalize({**file_values, **{k: v for k, v in flag_values.items() if v is not None}})
    given = {k: _checked(k, v, _HINTS[k]) if k in _HINTS else v for k, v in given.items()}
    base: dict[str, Any] = {}
    if given.get("resume"):
        if given.get("init_from"):
            raise ConfigError("--resume and --init-from cannot be combined: "
                              "resume continues a run, init-from starts a new one")
        base = _resume_base(given)
    try:
        config = TrainConfig(**{**base, **given})
    except TypeError as exc:
        raise ConfigError(f"invalid training config: {exc}") from None
    validate(config)
    return config


_HINTS = typing.get_type_hints(TrainConfig)
_TYPE_WORDS = {int: "a whole number", float: "a finite number", bool: "true or false",
               str: "a string", list: "a list of strings"}


def _checked(name: str, value: Any, hint: Any) -> Any:
    """`value` checked against the field's annotation (a whole number given for a float
    becomes a float): a TOML value of the wrong type, e.g. iters = "3", is one ConfigError
    here, not a traceback in the middle of a run."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in kinds:
        return None
    kind = next(k for k in kinds if k is not type(None))
    kind = typing.get_origin(kind) or kind  # list[str] -> list
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if kind is list:
        ok = ok and all(isinstance(item, str) for item in value)
    if kind is float:
        ok = ok and math.isfinite(value)
    if not ok:
        raise ConfigError(f"{flag_name(name)} ({name} in a TOML file) must be "
                          f"{_TYPE_WORDS[kind]}, got {value!r}")
    return value


def _normalize(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    if isinstance(values.get("data"), str):
        values["data"] = [values["data"]]
    if isinstance(values.get("val"), str) and values["val"].lower() == "none":
        values["val"] = None
    return values


def _resume_base(given: dict[str, Any]) -> dict[str, Any]:
    """The saved config of the run in --out; a ConfigError naming the first given setting
    that differs from it (other than RESUME_MAY_CHANGE)."""
    from srgrad.train.checkpoint import read_checkpoint

    out = Path(given.get("out", TrainConfig.out))
    state = read_checkpoint(out / "last.pt")
    try:
        saved = TrainConfig(**_normalize(check_keys(state["config"], str(out / "last.pt"))))
    except TypeError as exc:
        raise ConfigError(f"{out / 'last.pt'} holds an unusable config: {exc}") from None
    for f in fields(TrainConfig):
        name, value = f.name, getattr(saved, f.name)
        if name in given and name not in (*RESUME_MAY_CHANGE, "out", "resume") and \
                given[name] != value:
            may = ", ".join(flag_name(n) for n in RESUME_MAY_CHANGE)
            raise ConfigError(
                f"--resume: {flag_name(name)} differs from the run in {out}: saved "
                f"{_shown(name, value)}, given {_shown(name, given[name])}; on resume only "
                f"{may} may change (drop {flag_name(name)}, or train into a new --out)")
    iters, done = given.get("iters", saved.iters), state["step"]
    if iters < done:
        raise ConfigError(f"--resume: --iters {iters} is below the {done} iterations the run "
                          f"in {out} has done; give --iters {done} or more")
    return {**saved.to_dict(), "out": str(out)}  # out: where the run is now


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "not set"
    if name == "learn_alpha":  # shown as the flag, --freeze-alpha, means it
        value = not value
    return repr(value)


def validate(c: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(c.model in MODELS, f"unknown model {c.model!r}{suggest(c.model, MODELS)}")
    need(c.scale in SCALES, f"--scale must be one of {SCALES}, got {c.scale}")
    need(bool(c.data), "give at least one --data folder")
    twice = [d for i, d in enumerate(c.data) if _same_folder(d, c.data[:i])]
    need(not twice, f"--data {twice[0] if twice else ''} is given twice; its images would "
         "count twice in training (and the held-out split)")
    need(c.iters > 0, f"--iters must be positive, got {c.iters}")
    need(c.batch > 0, f"--batch must be positive, got {c.batch}")
    need(c.patch >= 8, f"--patch must be at least 8 LR pixels, got {c.patch}")
    need(c.lr > 0, f"--lr must be positive, got {c.lr}")
    need(c.schedule in ("cosine", "step"), f"--schedule must be cosine or step, not {c.schedule!r}")
    need(c.step_every > 0, f"--step-every must be positive, got {c.step_every}")
    need(c.warmup >= 0, f"--warmup must be >= 0, got {c.warmup}")
    need(0 <= c.ema < 1, f"--ema must be in [0, 1), got {c.ema}")
    need(
        c.device in ("auto", "cpu", "cuda"), f"--device must be auto, cpu or cuda, not {c.device!r}"
    )
    need(c.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}")
    need(c.workers >= 0, "--workers must be >= 0")
    need(c.time_limit is None or c.time_limit >= 0, "--time-limit must be >= 0 (0: no limit)")
    need(c.val_every > 0 and c.ckpt_every > 0 and c.log_every > 0, "intervals must be positive")
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
            f"{flag_name(given[0]) if given else ''} only applies to "
            f"gradient models (e.g. {c.model}-grad), not the identity model {c.model}",
        )
    if c.val and c.val.startswith("holdout:"):
        need(holdout_count(c.val) > 0, f"--val holdout:N needs a positive N, got {c.val}")
    if c.precision == "fp16":
        need(c.device != "cpu", "--precision fp16 needs --device cuda; use bf16 or fp32 on a CPU")


def _same_folder(folder: str, others: list[str]) -> bool:
    return any(os.path.realpath(folder) == os.path.realpath(o) for o in others)
