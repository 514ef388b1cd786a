"""Scoring models on evaluation images in the paper convention (metrics.py).

Everything that scores a network, `srgrad eval` and training's validation alike, goes through
`score_images`, which runs the one inference path (inference.forward.super_resolve).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srgrad.data.datasets import (
    BENCHMARKS,
    EvalPair,
    eval_pairs,
    folder_images,
    is_benchmark_layout,
    load_pair,
    resolve_root,
)
from srgrad.data.resize import imresize
from srgrad.errors import ConfigError, DataError, SrgradError, WeightsError
from srgrad.metrics import min_side, score


@dataclass
class EvalImage:
    name: str
    lr: np.ndarray
    hr: np.ndarray  # modcropped to the scale


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float


def load_image(pair: EvalPair, scale: int, convention: str = "y") -> EvalImage:
    """One (LR, HR) pair, refused with one line naming the file when its HR is too small
    to score in `convention` (metrics.min_side)."""
    return EvalImage(pair.name, *load_pair(pair, scale, min_side(scale, convention)))


def load_eval_images(
    spec: str | Sequence[Path], scale: int, root: str | Path | None = None,
    convention: str = "y",
) -> list[EvalImage]:
    """A dataset name / folder (see datasets.eval_pairs), or explicit HR paths (held-out split)."""
    if isinstance(spec, str):
        pairs = eval_pairs(spec, scale, resolve_root(root))
    else:
        pairs = [EvalPair(Path(path).stem, Path(path), None) for path in spec]
    return [load_image(p, scale, convention) for p in pairs]


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(lr, scale)


def score_images(
    upscaler: Callable[[np.ndarray], np.ndarray],
    images: Sequence[EvalImage],
    scale: int,
    convention: str = "y",
    on_image: Callable[[EvalImage, np.ndarray, ImageScore], None] | None = None,
) -> list[ImageScore]:
    scores = []
    for image in images:
        sr = upscaler(image.lr)
        psnr, ssim = score(sr, image.hr, scale, convention)
        result = ImageScore(image.name, psnr, ssim)
        scores.append(result)
        if on_image is not None:
            on_image(image, sr, result)
    return scores


def mean_scores(scores: Sequence[ImageScore]) -> tuple[float, float]:
    return float(np.mean([s.psnr for s in scores])), float(np.mean([s.ssim for s in scores]))


def score_model(
    model: nn.Module,
    images: Sequence[EvalImage],
    scale: int,
    device: torch.device | str = "cpu",
    convention: str = "y",
) -> tuple[float, float]:
    """Mean PSNR/SSIM of a model (used by training's validation)."""
    from srgrad.inference.forward import super_resolve

    was_training = model.training
    model.eval()
    try:
        scores = score_images(
            lambda lr: super_resolve(model, lr, device=device), images, scale, convention
        )
    finally:
        model.train(was_training)
    return mean_scores(scores)


# --- `srgrad eval`: several models x datasets x scales -------------------------------------

BICUBIC = "bicubic"
DEFAULT_DATASETS = ("set5", "set14", "b100", "urban100")


@dataclass(frozen=True)
class ModelSpec:
    """One column of an evaluation: bicubic, a registry name, or a weights file."""

    label: str
    source: str | None = None  # registry name or weights path; None for bicubic
    scale: int | None = None  # the one scale a weights file holds


@dataclass(frozen=True)
class DatasetSpec:
    key: str  # as given on the command line (lower-case name or a folder path)
    label: str  # display name: Set5, B100, or the folder's name
    pairs: dict[int, list[EvalPair]]  # per scale


@dataclass(frozen=True)
class ImageResult:
    model: str
    dataset: str
    scale: int
    image: str
    psnr: float
    ssim: float


@dataclass(frozen=True)
class DatasetResult:
    model: str
    dataset: str
    scale: int
    psnr: float
    ssim: float
    images: int


@dataclass
class EvalRun:
    convention: str
    scales: list[int]
    models: list[ModelSpec]
    datasets: list[DatasetSpec]
    self_ensemble: bool = False
    device: str = "cpu"
    precision: str = "fp32"  # resolved (fp32, bf16, fp16); reports name it
    per_image: list[ImageResult] = field(default_factory=list)
    results: list[DatasetResult] = field(default_factory=list)


OnImage = Callable[[DatasetSpec, int, EvalImage, dict[str, tuple[np.ndarray, ImageScore]]], None]


def _is_path(text: str) -> bool:
    return text.endswith(".safetensors") or "/" in text or os.sep in text


def model_specs(names: Sequence[str], weights: Sequence[Path], self_ensemble: bool = False
                ) -> list[ModelSpec]:
    """Columns for --model names (bicubic, registry names, paths) and --weights files."""
    from srgrad.models.registry import MODELS, suggest
    from srgrad.models.weights import read_config

    plus = "+" if self_ensemble else ""
    specs: list[ModelSpec] = []
    files = list(weights)
    for name in names:
        key = name.lower()
        if key == BICUBIC:
            specs.append(ModelSpec(BICUBIC))
        elif key in MODELS:
            specs.append(ModelSpec(key + plus, key))
        elif _is_path(name):
            files.append(Path(name))
        else:
            raise ConfigError(f"unknown model {name!r}{suggest(name, [*MODELS, BICUBIC])}; "
                              "run `srgrad models` to list them, or pass --weights FILE")
    for path in dict.fromkeys(files):
        scale = read_config(path).scale
        label = unique_label(Path(path).stem, {s.label for s in specs}, plus)
        specs.append(ModelSpec(label, str(path), scale))
    return list(dict.fromkeys(specs))  # --model a,a counts once


def unique_label(name: str, taken: set[str], suffix: str = "") -> str:
    """name, or name#2, name#3, ...: two files or folders of one name get rows (and
    --save-images folders) of their own."""
    label, n = name + suffix, 2
    while label in taken:
        label, n = f"{name}#{n}{suffix}", n + 1
    return label


def check_available(specs: Sequence[ModelSpec], scales: Sequence[int]) -> None:
    """One error line for every model that has no weights at a requested scale."""
    from srgrad.models.registry import MODELS
    from srgrad.models.weights import shipped_weights

    shipped = shipped_weights()
    missing = [f"{s.source} x{k}" for k in scales for s in specs
               if s.source in MODELS and k not in shipped.get(s.source, [])]
    if missing:
        have = ", ".join(f"{n} x{k}" for n, ks in shipped.items() for k in ks) or "none"
        raise WeightsError(f"no shipped weights for {', '.join(missing)} (shipped: {have}); "
                           "use another --scale or pass --weights FILE")
    for s in specs:
        if s.scale is not None and s.scale not in scales:
            raise WeightsError(f"{s.source} holds a x{s.scale} model but --scale is "
                               f"{','.join(map(str, scales))}; pass --scale {s.scale}")


def dataset_specs(names: Sequence[str], scales: Sequence[int], root: str | Path | None,
                  explicit: bool = True, skipped: list[str] | None = None,
                  recursive: bool = False) -> list[DatasetSpec]:
    """Resolve every data set before any work; unless `explicit`, missing sets are skipped
    (their error lines appended to `skipped`) and only none at all is an error. Images a
    plain folder's subfolders hold are left out unless `recursive` (a line in `skipped`)."""
    specs: list[DatasetSpec] = []
    notes = skipped if skipped is not None else []
    for name in names:
        key = name if Path(name).is_dir() and name.lower() not in BENCHMARKS else name.lower()
        if key in {s.key for s in specs}:  # --datasets set5,set5 counts once
            continue
        try:
            pairs = {s: eval_pairs(key, s, root, recursive) for s in scales}
        except DataError as exc:
            if explicit:
                raise
            notes.append(str(exc))
            continue
        if key not in BENCHMARKS and not recursive and not is_benchmark_layout(key):
            left_out = folder_images(key)[1]
            if left_out:
                notes.append(f"{left_out} image(s) in subfolders of {key}; pass --recursive "
                             "to score them too")
        label = unique_label(BENCHMARKS.get(key, Path(key).name), {s.label for s in specs})
        specs.append(DatasetSpec(key, label, pairs))
    if not specs:
        raise DataError(notes[0] if notes else "no data sets to evaluate")
    return specs


def data_source(pairs: Sequence[EvalPair]) -> dict[str, object]:
    """How many images a data set scores and where they come from: the HR folder (the common
    folder when they lie in several), the LR folder and how many LR files it gave (the
    others are made from their HR by MATLAB bicubic)."""
    hr_dirs = sorted({str(p.hr_path.parent) for p in pairs})
    given = [p.lr_path for p in pairs if p.lr_path is not None]
    return {"images": len(pairs),
            "hr": hr_dirs[0] if len(hr_dirs) == 1 else os.path.commonpath(hr_dirs),
            "lr": str(given[0].parent) if given else None, "lr_given": len(given)}


def _upscaler(spec: ModelSpec, scale: int, run: EvalRun, tile: int | None
              ) -> Callable[[np.ndarray], np.ndarray]:
    if spec.source is None:
        return lambda lr: bicubic_upscale(lr, scale)
    from srgrad.inference.forward import super_resolve
    from srgrad.inference.loading import load_model

    source = spec.source if spec.scale is None else Path(spec.source)
    model = load_model(source, scale, run.device, precision=run.precision)
    return lambda lr: super_resolve(model, lr, tile=tile, self_ensemble=run.self_ensemble,
                                    device=run.device)


def _score_one(label: str, up: Callable[[np.ndarray], np.ndarray], image: EvalImage,
               scale: int, convention: str) -> tuple[np.ndarray, ImageScore]:
    """The output and score of one model on one image; an error says which model and image
    (a model's output that is not finite, say)."""
    kept: list[np.ndarray] = []
    try:
        result = score_images(up, [image], scale, convention,
                              lambda _i, sr, _s: kept.append(sr))
    except SrgradError as exc:
        raise type(exc)(f"{label} on {image.name}: {exc}") from None
    return kept[0], result[0]


def run_eval(run: EvalRun, tile: int | None = None, on_image: OnImage | None = None,
             advance: Callable[[str], None] | None = None) -> EvalRun:
    """Score every model on every image of every data set and scale, filling `run`.

    Images are loaded one at a time; all models see an image before the next is loaded, so
    `on_image` gets every output of that image (for saving and comparison grids).
    """
    for scale in run.scales:
        specs = [m for m in run.models if m.scale in (None, scale)]
        ups = {m.label: _upscaler(m, scale, run, tile) for m in specs}
        for data in run.datasets:
            per_model: dict[str, list[ImageScore]] = {m.label: [] for m in specs}
            for pair in data.pairs[scale]:
                image = load_image(pair, scale, run.convention)
                outputs: dict[str, tuple[np.ndarray, ImageScore]] = {}
                for label, up in ups.items():
                    sr, got = _score_one(label, up, image, scale, run.convention)
                    outputs[label] = (sr, got)
                    per_model[label].append(got)
                    run.per_image.append(ImageResult(label, data.key, scale, image.name,
                                                     got.psnr, got.ssim))
                if on_image is not None:
                    on_image(data, scale, image, outputs)
                if advance is not None:
                    advance(f"{data.label} x{scale} {image.name}")
            for label, scores in per_model.items():
                psnr, ssim = mean_scores(scores)
                run.results.append(DatasetResult(label, data.key, scale, psnr, ssim, len(scores)))
    note = infinite_psnr_note(run.per_image)
    if note is not None:
        warnings.warn(note, stacklevel=2)
    return run


def infinite_psnr_note(scores: Sequence[ImageResult]) -> str | None:
    """One line naming the images scored with an infinite PSNR (an exact reconstruction),
    which makes the mean PSNR of their set infinite too and hides the others; None if none."""
    exact: dict[tuple[str, str, int], list[str]] = {}
    for s in scores:
        if math.isinf(s.psnr):
            exact.setdefault((s.model, s.dataset, s.scale), []).append(s.image)
    if not exact:
        return None
    where = "; ".join(f"{model} on {data} x{scale}: {', '.join(images)}"
                      for (model, data, scale), images in exact.items())
    return (f"infinite PSNR (exact reconstruction) for {where}; each makes its data set's "
            "mean PSNR infinite (null in JSON reports); a --report lists every image's score")
