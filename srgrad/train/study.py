"""Studies as data: a TOML recipe of variants x seeds, run resumably, reported with seed SEs.

A recipe holds a `[study]` table (name, seeds, baseline variant, the decision rule written
before any result), a `[train]` table of settings shared by every run, and one
`[variants.<name>]` table per variant with the settings it changes. Each (variant, seed) run
gets its own folder under the study's root with the exact `recipe.toml` that
`srgrad train --config` ran, so every number in the report can be reproduced from it.

The report compares each variant with the baseline run of the same seed (same patches, same
initial weights of the shared layers): mean difference over seeds and its seed-only standard
error (the standard deviation of the per-seed differences over sqrt(seeds)). `[study]
controls` (variant -> its control variant, e.g. a gradient block -> the same skip without g)
adds the same paired difference against each variant's own control.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from srgrad.data.files import atomic_write_bytes
from srgrad.errors import ConfigError, SrgradError, reason
from srgrad.train.config import (
    check_keys,
    holdout_count,
    make_config,
    tomllib,
    val_is_test_set,
)
from srgrad.train.curves import read_metrics, series


@dataclass(frozen=True)
class Study:
    name: str
    seeds: list[int]
    baseline: str
    decision: str
    train: dict[str, Any]
    variants: dict[str, dict[str, Any]]
    equal_time_from: str | None = None  # a study whose step times set each variant's iters
    controls: dict[str, str] = field(default_factory=dict)  # variant -> its control variant

    def run_config(self, variant: str, seed: int, out: Path) -> dict[str, Any]:
        return {**self.train, **self.variants[variant], "seed": seed, "out": str(out),
                "quiet": True}


def _read_recipe(path: Path) -> dict[str, Any]:
    """The recipe's tables, on top of those of its `[study] base` recipe if it names one."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"study recipe {path}: {reason(exc)}") from None
    for table in ("study", "train", "variants"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"study recipe {path}: {table} must be a table ([{table}]), "
                              f"got {data[table]!r}")
    base = data.get("study", {}).get("base")
    if base is None:
        return data
    _check_types(path, data["study"])
    parent = _read_recipe(path.parent / base)
    return {table: {**parent.get(table, {}), **data.get(table, {})}
            for table in ("study", "train", "variants")}


# [study] keys; `variants` lists the variants to run (default: every [variants.*] table,
# its base's included), so a recipe can take some of its base's variants.
STUDY_TYPES: dict[str, tuple[type, str]] = {
    "name": (str, "a folder name"), "seeds": (list, "a list of whole numbers"),
    "baseline": (str, "a variant name"), "decision": (str, "text"),
    "base": (str, "a recipe file name"), "equal_time_from": (str, "a study name"),
    "variants": (list, "a list of variant names"),
    "controls": (dict, "a table of variant = \"its control variant\""),
}
STUDY_KEYS = tuple(STUDY_TYPES)


def _check_types(path: str | Path, head: dict[str, Any]) -> None:
    """A [study] value of the wrong type is one line here, not a traceback further on
    (_seeds checks seeds, with its own example)."""
    for key, (kind, words) in STUDY_TYPES.items():
        value = head.get(key)
        if value is None or key == "seeds":
            continue
        names = [*value, *value.values()] if isinstance(value, dict) else \
            value if isinstance(value, list) else []
        if not isinstance(value, kind) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"study recipe {path}: [study] {key} must be {words}, "
                              f"got {value!r}")


def load_study(path: str | Path) -> Study:
    data = _read_recipe(Path(path))
    head, variants = data.get("study", {}), data.get("variants", {})
    unknown = sorted(set(head) - set(STUDY_KEYS))
    if unknown:
        raise ConfigError(f"study recipe {path}: unknown [study] key {unknown[0]!r} (known: "
                          f"{', '.join(STUDY_KEYS)})")
    _check_types(path, head)
    chosen = head.get("variants", list(variants))
    missing = [name for name in chosen if name not in variants]
    if missing:
        raise ConfigError(f"study recipe {path}: [study] variants names {missing[0]!r}, which "
                          "has no [variants.*] table")
    variants = {name: variants[name] for name in chosen}
    if not variants or head.get("baseline") not in variants:
        raise ConfigError(f"study recipe {path}: needs [variants.*] tables and a "
                          "[study] baseline that names one of them")
    train = _settings(f"{path} [train]", data.get("train", {}))
    variants = {name: _settings(f"{path} [variants.{name}]", values)
                for name, values in variants.items()}
    study = Study(_name(path, head), _seeds(path, head), head["baseline"],
                  head.get("decision", ""), train, variants, head.get("equal_time_from"),
                  _controls(path, head, data, variants))
    for variant in variants:  # every run's settings are valid before any run starts
        try:
            config = make_config({}, study.run_config(variant, study.seeds[0], Path("unused")))
        except ConfigError as exc:
            raise ConfigError(f"study recipe {path}, variant {variant!r}: {exc}") from None
        if not config.val or val_is_test_set(config.val):
            raise ConfigError(f"study recipe {path}: variant {variant!r} validates on "
                              f"{config.val or 'nothing'}; a study decides on held-out "
                              "training images: set [train] val = \"holdout:N\" or a folder")
    return study


# Set by the study for each run: a recipe that set them would be silently overridden.
STUDY_SETS = ("seed", "out", "quiet")


def _settings(where: str, values: Any) -> dict[str, Any]:
    """A [train] or [variants.*] table's training settings, checked."""
    values = check_keys(values, where)
    taken = [key for key in STUDY_SETS if key in values]
    if taken:
        raise ConfigError(f"{where}: {taken[0]} is set by the study for each run; remove it "
                          "(seeds: [study] seeds)")
    return values


def _seeds(path: Path, head: dict[str, Any]) -> list[int]:
    seeds = head.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) < len(seeds):
        raise ConfigError(f"study recipe {path}: [study] seeds must be a list of distinct "
                          f"whole numbers >= 0, e.g. [0, 1, 2], got {seeds!r}")
    return seeds


def _name(path: Path, head: dict[str, Any]) -> str:
    """The study's folder name under --root: one plain path component, so that a recipe
    cannot write outside --root."""
    name = head.get("name", Path(path).stem)
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name or \
            "\\" in name:
        raise ConfigError(f"study recipe {path}: [study] name must be a plain folder name "
                          f"(no path separators), got {name!r}")
    return name


def _controls(path: Path, head: dict, data: dict, chosen: dict) -> dict[str, str]:
    """`[study] controls` among the variants this recipe runs (a recipe that takes some of its
    base's variants keeps the pairs it has both sides of)."""
    controls = head.get("controls", {})
    defined = data.get("variants", {})
    for variant, control in controls.items():
        for name in (variant, control):
            if name not in defined:
                raise ConfigError(f"study recipe {path}: [study] controls names {name!r}, "
                                  "which has no [variants.*] table")
    return {v: c for v, c in controls.items() if v in chosen and c in chosen}


def equal_time(study: Study, root: Path) -> Study:
    """`study` with each variant's iterations scaled so that every variant gets the
    baseline's wall-clock time: iters x (baseline ms/step / variant ms/step), step times as
    logged by the equal-iteration study `equal_time_from` (seed medians), rounded to 50."""
    if study.equal_time_from is None:
        return study
    source = Study(study.equal_time_from, study.seeds, study.baseline, "", study.train,
                   study.variants)
    ms = {}
    for variant in study.variants:
        runs = [summarize(run_folder(root, source, variant, s)) for s in study.seeds]
        steps = [r.step_ms for r in runs if r is not None]
        if not steps:
            raise ConfigError(f"equal time: no step times for {variant} under "
                              f"{root / study.equal_time_from}; run that study first")
        ms[variant] = statistics.median(steps)
    base_iters = int(study.train.get("iters", 10000))
    variants = {v: {**cfg, "iters": max(50, round(base_iters * ms[study.baseline] / ms[v] / 50)
                                         * 50)} for v, cfg in study.variants.items()}
    return replace(study, variants=variants)


def _toml_value(value: Any) -> str:
    return json.dumps(value)  # str, int, float, bool and lists of them: valid TOML


def write_recipe(config: dict[str, Any], path: Path) -> Path:
    lines = ["[train]"] + [f"{k} = {_toml_value(v)}" for k, v in config.items()
                           if v is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_folder(root: Path, study: Study, variant: str, seed: int) -> Path:
    return root / study.name / f"{variant}_s{seed}"


def run_one(study: Study, variant: str, seed: int, root: Path, threads: int = 1) -> Path:
    """Train one run to completion in a child process; resumes from its last.pt."""
    out = run_folder(root, study, variant, seed)
    if (out / "model_card.json").exists():
        return out
    recipe = write_recipe(study.run_config(variant, seed, out), out.parent / f"{out.name}.toml")
    command = [sys.executable, "-m", "srgrad", "train", "--config", str(recipe)]
    if (out / "last.pt").exists():
        command.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    log_path = out.parent / f"{out.name}.log"
    with open(log_path, "a") as log:
        code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RunFailed(f"{variant} seed {seed}: {_last_error(log_path)} (exit {code}; its "
                        f"log: {log_path})")
    return out


class RunFailed(SrgradError):
    """A run's training process exited with an error; the line names its reason and log."""


def _last_error(log: Path) -> str:
    """The child's own `error:` line (the reason a run failed), else its last line."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")


def run_study(study: Study, root: Path, jobs: int = 1,
              on_done: Callable[[str, int], None] | None = None,
              on_failed: Callable[[str], None] | None = None) -> list[str]:
    """Every (variant, seed), `jobs` at a time, seed by seed so paired runs finish together.
    A run that fails does not stop the others; returns one line per failed run."""
    study = equal_time(study, root)
    order = [(v, s) for s in study.seeds for v in study.variants]
    failed: list[str] = []

    def work(item: tuple[str, int]) -> None:
        try:
            run_one(study, *item, root)
        except RunFailed as exc:
            failed.append(str(exc))
            if on_failed is not None:
                on_failed(str(exc))
            return
        if on_done is not None:
            on_done(*item)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(work, order))
    return failed


@dataclass(frozen=True)
class RunSummary:
    val_psnr: float  # held-out PSNR at the last validation
    step_ms: float  # median logged compute per step
    gates: list[float]
    iterations: int


def summarize(run: Path) -> RunSummary | None:
    """The finished (or interrupted) run's last held-out PSNR; None before any validation."""
    metrics = run / "metrics.csv"
    if not metrics.exists():
        return None
    rows = read_metrics(metrics)
    vals = series(rows, "val_psnr")
    steps = [ms for _, ms in series(rows, "step_ms")]
    if not vals:
        return None
    gates = [float(g) for g in (rows[-1].get("gates") or "").split(";") if g]
    return RunSummary(vals[-1][1], statistics.median(steps) if steps else math.nan, gates,
                      vals[-1][0])


SHARE_FILE = "gradient_share.json"


def final_weights(run: Path) -> Path | None:
    """The weights a finished run wrote (`<model>_x<scale>.safetensors`); None before."""
    if not (run / "model_card.json").exists():
        return None
    found = sorted(run.glob("*_x[234].safetensors"))
    return found[0] if found else None


def gradient_share(run: Path, train: dict[str, Any], images: int = 5) -> float | None:
    """Mean over blocks of g's share of the skip, RMS |s N(g)| / |(1-s) x|, for the run's
    final weights on the first `images` held-out training images (never a test set); None
    for runs without convex gradient blocks. Measured once and kept in the run's folder."""
    cache = run / SHARE_FILE
    if cache.exists():  # kept with the run's records: its weights may be gone
        return json.loads(cache.read_text())["share"]
    weights = final_weights(run)
    if weights is None:
        return None
    share = _measure_share(weights, train, images)
    # atomic: a study and a --report-only run may both measure it at once
    atomic_write_bytes(cache, json.dumps({"share": share, "weights": weights.name}).encode())
    return share


def _measure_share(weights: Path, train: dict[str, Any], images: int) -> float | None:
    from srgrad.evaluation.ablation import ShareMeter, convex_blocks
    from srgrad.evaluation.run import load_eval_images
    from srgrad.inference.forward import super_resolve
    from srgrad.models.weights import load_weights
    from srgrad.train.data import held_out_paths

    model, _ = load_weights(weights)
    blocks = convex_blocks(model)
    config = make_config({}, {**train, "out": "unused"})  # the defaults filled in
    count = holdout_count(config.val)
    if not blocks or not count:
        return None  # no convex blocks, or no held-out images to measure on
    held = held_out_paths(config.data, count)
    meter = ShareMeter(blocks)
    for image in load_eval_images(held[:images], config.scale):
        super_resolve(model.eval(), image.lr, precision="fp32")
    meter.close()
    return statistics.mean(b.share for b in meter.shares())


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.mean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return mean, se


def _with_se(mean: float, se: float, sign: str = "") -> str:
    """`mean ± se`, or the mean alone where one seed gives no SE."""
    return f"{mean:{sign}.3f}" + ("" if math.isnan(se) else f" ± {se:.3f}")


def _paired(runs: dict, done: dict, other: str) -> str:
    """Mean ± SE over seeds of (this variant minus `other`), on the seeds both finished."""
    diffs = [r.val_psnr - runs[(other, s)].val_psnr for s, r in done.items()
             if runs.get((other, s)) is not None]
    return _with_se(*mean_se(diffs), "+") if diffs else ""


def study_table(study: Study, root: Path) -> str:
    """Markdown: per variant, held-out PSNR and its paired difference to the baseline."""
    # Only finished runs enter the means: a run in progress would mix budgets.
    runs = {(v, s): summarize(run_folder(root, study, v, s))
            if (run_folder(root, study, v, s) / "model_card.json").exists() else None
            for v in study.variants for s in study.seeds}
    lines = [f"Study `{study.name}`: seeds {', '.join(map(str, study.seeds))}; baseline "
             f"`{study.baseline}`.", "", f"Decision rule (written before the results): "
             f"{study.decision.strip()}", "",
             "| variant | seeds done | held-out PSNR (mean ± SE) | minus baseline (paired, "
             "mean ± SE) | " + ("minus its control (paired) | " if study.controls else "")
             + "step ms | x baseline | gates at the end | g's share of the skip |",
             "|---|---|---|---|" + ("---|" if study.controls else "") + "---|---|---|---|"]
    base_ms = [r.step_ms for (v, _), r in runs.items() if v == study.baseline and r]
    for variant in study.variants:
        done = {s: runs[(variant, s)] for s in study.seeds if runs[(variant, s)]}
        if not done:
            lines.append(f"| {variant} | 0 |" + " |" * (7 if study.controls else 6))
            continue
        psnr = mean_se([r.val_psnr for r in done.values()])
        diff = "" if variant == study.baseline else _paired(runs, done, study.baseline)
        if study.controls:
            control = study.controls.get(variant)
            diff += " | " + ("" if control is None else f"{_paired(runs, done, control)} "
                                                        f"(vs {control})")
        ms = statistics.median(r.step_ms for r in done.values())
        ratio = f"{ms / statistics.median(base_ms):.2f}x" if base_ms else ""
        gates = [g for r in done.values() for g in r.gates]
        gate_text = f"{min(gates):.3f}-{max(gates):.3f}" if gates else "-"
        steps = sorted({r.iterations for r in done.values()})
        first = min(done)  # the variant's own settings (its scale, data, held-out split)
        share = gradient_share(run_folder(root, study, variant, first),
                               study.run_config(variant, first, Path('unused')))
        share_text = "-" if share is None else f"{share:.2%}"
        lines.append(f"| {variant} | {len(done)} (at {'/'.join(map(str, steps))} it) | "
                     f"{_with_se(*psnr)} | {diff} | {ms:.0f} | {ratio} | "
                     f"{gate_text} | {share_text} |")
    return "\n".join(lines)
