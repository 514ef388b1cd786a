"""The synthetic high-frequency study: fit y = sin(d x), x in [-pi, pi], with residual MLPs.

Every variant is a ResidualMLP of the same width and depth, so the shipped block code is
what is measured. Within one (frequency, seed) task all variants share the training points,
the minibatch order and the initial weights of their common layers (paired comparison).
Tasks run in worker processes, one torch thread each.
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from srgrad.errors import ConfigError, reason
from srgrad.models.blocks import MAGNITUDES, BlockConfig
from srgrad.models.mlp import ResidualMLP

X_MIN, X_MAX = -math.pi, math.pi
VARIANTS = (
    "plain",  # no skip at all
    "residual",  # y = x + F(x)
    "residual-scaled",  # y = F(x) + w x, trainable scalar w
    "gradient",  # y = F(x) + N(g)
    "convex-alpha+3",  # y = F(x) + (1 - s) x + s N(g), alpha initialised at 3 (s = 0.953)
    "convex-alpha0",  # ... alpha 0 (s = 0.5)
    "convex-alpha-3",  # ... alpha -3 (s = 0.047)
    "convex-nonorm",  # convex-alpha+3 without normalizing g
    "convex-through",  # convex-alpha+3 with backprop through g (second order)
)
RESULT_FIELDS = ("variant", "frequency", "seed", "epoch", "test_mse")
TIMING_FIELDS = ("variant", "frequency", "seed", "sec_per_epoch")


def variant_block(name: str, magnitude: str = "unit") -> BlockConfig | str:
    """The ResidualMLP block for a variant name (a BlockConfig, or "plain"/"scaled")."""
    if name == "plain":
        return "plain"
    if name == "residual-scaled":
        return "scaled"
    if name == "residual":
        return BlockConfig(skip="identity")
    base = BlockConfig(skip="convex", norm="pixel", magnitude=magnitude, alpha=3.0)
    table: dict[str, BlockConfig] = {
        "gradient": replace(base, skip="gradient", learn_alpha=False),
        "convex-alpha+3": base,
        "convex-alpha0": replace(base, alpha=0.0),
        "convex-alpha-3": replace(base, alpha=-3.0),
        "convex-nonorm": replace(base, norm="none"),
        "convex-through": replace(base, grad_through=True),
    }
    if name not in table:
        raise ConfigError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
    return table[name]


@dataclass(frozen=True)
class SinConfig:
    frequencies: tuple[int, ...] = (1, 4, 8, 16)
    seeds: int = 30  # seeds 0 .. seeds-1
    epochs: int = 400
    variants: tuple[str, ...] = VARIANTS
    width: int = 64
    n_blocks: int = 4
    n_train: int = 1024  # uniform on [-pi, pi], drawn once per seed
    n_test: int = 2048  # evenly spaced grid on [-pi, pi]
    batch_size: int = 128
    lr: float = 1e-3
    magnitude: str = "unit"  # N(g) = g/|g| (unit) or g/|g|*|x| (input)
    eval_every: int = 10  # epochs between test evaluations (epoch 0 and the last always)
    workers: int = 1

    def validate(self) -> None:
        if not self.frequencies or any(f < 1 for f in self.frequencies):
            raise ConfigError(f"frequencies must be positive integers, got {self.frequencies}")
        if len(set(self.frequencies)) != len(self.frequencies):
            raise ConfigError(f"frequencies must not repeat, got {self.frequencies}")
        if not self.variants:
            raise ConfigError("no variants selected")
        for name in self.variants:
            variant_block(name)
        for flag, value in (
            ("seeds", self.seeds),
            ("epochs", self.epochs),
            ("workers", self.workers),
            ("width", self.width),
            ("n_blocks", self.n_blocks),
            ("n_train", self.n_train),
            ("batch_size", self.batch_size),
            ("eval_every", self.eval_every),
        ):
            if value < 1:
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        if self.n_test < 2:
            raise ConfigError(f"n_test must be at least 2, got {self.n_test}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.magnitude not in MAGNITUDES:
            raise ConfigError(f"magnitude must be one of {MAGNITUDES}, got {self.magnitude!r}")

    def eval_epochs(self) -> list[int]:
        epochs = list(range(0, self.epochs + 1, self.eval_every))
        return epochs if epochs[-1] == self.epochs else [*epochs, self.epochs]


# --quick: every output in well under 3 minutes on a 2-core CPU.
QUICK: dict[str, object] = {"frequencies": (4, 16), "seeds": 3, "epochs": 60, "eval_every": 5}


@dataclass
class SinResult:
    out: Path
    n_rows: int
    elapsed_s: float
    files: list[Path]


def make_data(seed: int, frequency: int, cfg: SinConfig) -> tuple[Tensor, ...]:
    """Training points (fixed per seed, shared by all frequencies) and the dense test grid."""
    rng = np.random.default_rng(seed)
    x_train = torch.from_numpy(rng.uniform(X_MIN, X_MAX, size=(cfg.n_train, 1))).float()
    x_test = torch.linspace(X_MIN, X_MAX, cfg.n_test).unsqueeze(1)
    return x_train, torch.sin(frequency * x_train), x_test, torch.sin(frequency * x_test)


def _test_mse(model: torch.nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(torch.mean((model(x) - y) ** 2))


def build_mlp(cfg: SinConfig, variant: str, seed: int) -> ResidualMLP:
    """The variant's MLP; the layers all variants share get the same initial weights."""
    torch.manual_seed(seed)
    return ResidualMLP(1, 1, cfg.width, cfg.n_blocks, variant_block(variant, cfg.magnitude))


def train_variant(
    cfg: SinConfig, variant: str, seed: int, data: tuple[Tensor, ...]
) -> tuple[list[tuple[int, float]], float, Tensor]:
    """Train one model; return (epoch, test MSE) pairs, train seconds per epoch, predictions."""
    x_train, y_train, x_test, y_test = data
    model = build_mlp(cfg, variant, seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    order = torch.Generator().manual_seed(seed)  # same minibatch order for every variant
    evals = set(cfg.eval_epochs())
    curve = [(0, _test_mse(model, x_test, y_test))]
    train_s = 0.0
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        perm = torch.randperm(cfg.n_train, generator=order)
        for i in range(0, cfg.n_train, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            loss = torch.mean((model(x_train[idx]) - y_train[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        train_s += time.perf_counter() - start
        if epoch in evals:
            curve.append((epoch, _test_mse(model, x_test, y_test)))
    with torch.no_grad():
        pred = model(x_test).squeeze(1)
    return curve, train_s / cfg.epochs, pred


def run_task(task: tuple[SinConfig, int, int, bool]) -> dict[str, object]:
    """All variants for one (frequency, seed); keeps predictions only when asked to."""
    cfg, frequency, seed, keep_pred = task
    data = make_data(seed, frequency, cfg)
    rows: list[tuple[str, int, int, int, float]] = []
    timing: list[tuple[str, int, int, float]] = []
    preds: dict[str, list[float]] = {}
    for variant in cfg.variants:
        curve, sec, pred = train_variant(cfg, variant, seed, data)
        rows += [(variant, frequency, seed, epoch, mse) for epoch, mse in curve]
        timing.append((variant, frequency, seed, sec))
        if keep_pred:
            preds[variant] = pred.tolist()
    return {"frequency": frequency, "seed": seed, "rows": rows, "timing": timing, "preds": preds}


def _init_worker() -> None:
    torch.set_num_threads(1)


def _prepare_out(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to {out}: {reason(exc)}") from None
    return out


def _write_csv(path: Path, header: tuple[str, ...], rows: list) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _fmt(row: tuple) -> tuple:
    return tuple(f"{v:.6e}" if isinstance(v, float) else v for v in row)


def _write_tables(out: Path, cfg: SinConfig, rows: list, timing: list, preds: dict) -> None:
    """(Re)write the three CSVs from everything collected so far, in a stable order."""
    rows.sort(key=lambda r: (VARIANTS.index(r[0]), r[1], r[2], r[3]))
    timing.sort(key=lambda r: (VARIANTS.index(r[0]), r[1], r[2]))
    _write_csv(out / "results.csv", RESULT_FIELDS, [_fmt(r) for r in rows])
    _write_csv(out / "timing.csv", TIMING_FIELDS, [_fmt(r) for r in timing])
    top = max(cfg.frequencies)
    x_test = make_data(0, top, cfg)[2].squeeze(1).tolist()
    names = [v for v in cfg.variants if v in preds]
    fn_rows = [(x, math.sin(top * x), *[preds[v][i] for v in names]) for i, x in enumerate(x_test)]
    _write_csv(out / "functions.csv", ("x", "truth", *names), [_fmt(r) for r in fn_rows])


def _run_tasks(tasks: list[tuple], workers: int, collect: Callable[[dict], None]) -> None:
    """Run every task, one thread in this process or one process per worker, and hand each
    result to `collect` as it comes."""
    if workers == 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for task in tasks:
                collect(run_task(task))
        finally:
            torch.set_num_threads(threads)
        return
    # spawn: fork after torch has started threads can hang. An executor, not a Pool: a worker
    # that dies raises BrokenProcessPool instead of being respawned forever.
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        for future in as_completed([pool.submit(run_task, task) for task in tasks]):
            collect(future.result())


def run_sin(cfg: SinConfig, out: Path, progress: Callable[[str], None] | None = None) -> SinResult:
    """Run the study, write results.csv, timing.csv, functions.csv, figures and summary.md.

    The CSVs are rewritten after every (frequency, seed) task, so a run cut short leaves
    usable tables (sin_report.write_report rebuilds the figures and summary from them).
    """
    from srgrad.experiments.sin_report import write_report

    cfg.validate()
    out = _prepare_out(Path(out))
    started = time.perf_counter()
    top = max(cfg.frequencies)
    # Seed-major order: a run cut short still covers every frequency.
    tasks = [(cfg, f, s, f == top and s == 0) for s in range(cfg.seeds) for f in cfg.frequencies]
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    rows: list[tuple] = []
    timing: list[tuple] = []
    preds: dict[str, list[float]] = {}

    def collect(result: dict[str, object]) -> None:
        rows.extend(result["rows"])  # type: ignore[arg-type]
        timing.extend(result["timing"])  # type: ignore[arg-type]
        preds.update(result["preds"])  # type: ignore[arg-type]
        _write_tables(out, cfg, rows, timing, preds)
        if progress is not None:
            done = len(timing) // len(cfg.variants)
            progress(
                f"[{done}/{len(tasks)}] d={result['frequency']} seed={result['seed']} "
                f"({time.perf_counter() - started:.0f}s)"
            )

    _run_tasks(tasks, min(cfg.workers, len(tasks)), collect)
    files = [out / n for n in ("results.csv", "timing.csv", "functions.csv", "config.json")]
    files += write_report(out)
    return SinResult(out, len(rows), time.perf_counter() - started, files)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
