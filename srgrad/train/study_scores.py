"""Test-set scores of a study's finished runs, taken once, as each run finishes.

Each run's final weights (what it would ship; no checkpoint is chosen on any score) are
scored on the test sets in the paper convention, in fp32, and kept in `test_scores.json` in
its folder, so a report can be rebuilt without scoring again, and a study cut off by the end
of a session keeps the scores of the runs it finished even if their folders are lost.
Nothing in training or in a study's decision reads them before the runs are done: the
decision rules use held-out training images.
"""

from __future__ import annotations

import json
from pathlib import Path

from srgrad.train.study import Study, final_weights, mean_se, run_folder

SCORES_FILE = "test_scores.json"


def check_sets(study: Study, sets: list[str], data_root: Path | None = None) -> None:
    """An unknown or absent test set fails here, before any training or scoring."""
    from srgrad.data.datasets import eval_pairs

    for name in sets:
        eval_pairs(name, int(study.train.get("scale", 2)), data_root)


def score_run(run: Path, sets: list[str], data_root: Path | None = None,
              images: dict | None = None) -> bool:
    """Score one finished run on the sets it has no score for yet; False if there was
    nothing to do. `images` caches the decoded test images between runs."""
    from srgrad.data.files import atomic_write_bytes
    from srgrad.evaluation.run import load_eval_images, score_model
    from srgrad.models.weights import load_weights

    weights = final_weights(run)
    scores = read_scores(run)
    missing = [name for name in sets if name not in scores]
    if weights is None or not missing:
        return False
    images = {} if images is None else images
    model, cfg = load_weights(weights)
    for name in missing:
        key = (name, cfg.scale)
        if key not in images:
            images[key] = load_eval_images(name, cfg.scale, data_root)
        psnr, ssim = score_model(model, images[key], cfg.scale)
        scores[name] = {"psnr": psnr, "ssim": ssim, "weights": weights.name}
        # after each set: Urban100 takes minutes per model, and a cut-off keeps the rest
        atomic_write_bytes(run / SCORES_FILE, json.dumps(scores, indent=2).encode())
    return True


def score_runs(study: Study, root: Path, sets: list[str], data_root: Path | None = None,
               images: dict | None = None, on_scored: object = None) -> None:
    """Score every finished run of `study` on `sets` (checked first by check_sets) it has no
    score for yet; `images` as in score_run."""
    images = {} if images is None else images
    for variant in study.variants:
        for seed in study.seeds:
            if score_run(run_folder(root, study, variant, seed), sets, data_root, images) \
                    and callable(on_scored):
                on_scored(variant, seed)


def read_scores(run: Path) -> dict:
    path = run / SCORES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _paired_text(mine: dict[int, float], other: dict[int, float | None]) -> str | None:
    diffs = [mine[s] - other[s] for s in mine if other.get(s) is not None]
    if not diffs:
        return None
    diff, se = mean_se(diffs)
    return f"{diff:+.3f} ± {se:.3f}" if len(diffs) > 1 else f"{diff:+.3f}"


def scores_table(study: Study, root: Path, sets: list[str]) -> str:
    """Markdown: per variant and test set, mean Y-PSNR over the seeds scored and the paired
    differences to the baseline and to the variant's control (mean ± seed SE)."""
    scores = {(v, s): read_scores(run_folder(root, study, v, s))
              for v in study.variants for s in study.seeds}

    def psnr(variant: str, name: str) -> dict[int, float]:
        return {s: scores[(variant, s)][name]["psnr"] for s in study.seeds
                if name in scores[(variant, s)]}

    lines = ["Test sets (final weights, fp32, Y-PSNR dB; scored after the runs, used for "
             "nothing else): mean over seeds, and in brackets minus the baseline (and minus "
             "the variant's control, where the recipe names one), paired by seed, mean ± SE.",
             "", "| variant | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for variant in study.variants:
        cells = []
        for name in sets:
            mine = psnr(variant, name)
            if not mine:
                cells.append("")
                continue
            others = [] if variant == study.baseline else [(study.baseline, "")]
            if variant in study.controls:
                others.append((study.controls[variant], f" vs {study.controls[variant]}"))
            diffs = [f"{d}{label}" for other, label in others
                     if (d := _paired_text(mine, psnr(other, name))) is not None]
            text = f"{mean_se(list(mine.values()))[0]:.3f}"
            text += f" ({'; '.join(diffs)})" if diffs else ""
            cells.append(f"{text} [{len(mine)}]" if len(mine) < len(study.seeds) else text)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
