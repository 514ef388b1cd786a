"""Test-set scores of a study's finished runs, taken once, at the end.

Each run's final weights (what it would ship; no checkpoint is chosen on any score) are
scored on the test sets in the paper convention, in fp32, and kept in `test_scores.json` in
its folder, so a report can be rebuilt without scoring again. Nothing in training or in a
study's decision reads them before the runs are done: the decision rules use held-out
training images.
"""

from __future__ import annotations

import json
from pathlib import Path

from srgrad.train.study import Study, final_weights, mean_se, run_folder

SCORES_FILE = "test_scores.json"


def score_runs(study: Study, root: Path, sets: list[str], data_root: Path | None = None,
               on_scored: object = None) -> None:
    """Score every finished run of `study` on `sets` it has no score for yet."""
    from srgrad.data.datasets import eval_pairs
    from srgrad.data.files import atomic_write_bytes
    from srgrad.evaluation.run import load_eval_images, score_model
    from srgrad.models.weights import load_weights

    for name in sets:  # an unknown or absent set fails before any run is scored
        eval_pairs(name, int(study.train.get("scale", 2)), data_root)
    images: dict[tuple[str, int], list] = {}
    for variant in study.variants:
        for seed in study.seeds:
            run = run_folder(root, study, variant, seed)
            weights = final_weights(run)
            if weights is None:
                continue
            scores = read_scores(run)
            missing = [name for name in sets if name not in scores]
            if not missing:
                continue
            model, cfg = load_weights(weights)
            for name in missing:
                key = (name, cfg.scale)
                if key not in images:
                    images[key] = load_eval_images(name, cfg.scale, data_root)
                psnr, ssim = score_model(model, images[key], cfg.scale)
                scores[name] = {"psnr": psnr, "ssim": ssim, "weights": weights.name}
            atomic_write_bytes(run / SCORES_FILE, json.dumps(scores, indent=2).encode())
            if callable(on_scored):
                on_scored(variant, seed)


def read_scores(run: Path) -> dict:
    path = run / SCORES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def scores_table(study: Study, root: Path, sets: list[str]) -> str:
    """Markdown: per variant and test set, mean Y-PSNR over the seeds scored and the paired
    difference to the baseline (mean ± seed SE)."""
    scores = {(v, s): read_scores(run_folder(root, study, v, s))
              for v in study.variants for s in study.seeds}
    lines = ["Test sets (final weights, fp32, Y-PSNR dB; scored after the runs, used for "
             "nothing else): mean over seeds, and in brackets minus the baseline, paired by "
             "seed, mean ± SE.", "",
             "| variant | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for variant in study.variants:
        cells = []
        for name in sets:
            mine = {s: scores[(variant, s)][name]["psnr"] for s in study.seeds
                    if name in scores[(variant, s)]}
            if not mine:
                cells.append("")
                continue
            text = f"{mean_se(list(mine.values()))[0]:.3f}"
            base = {s: scores[(study.baseline, s)].get(name, {}).get("psnr") for s in mine}
            diffs = [mine[s] - base[s] for s in mine if base[s] is not None]
            if variant != study.baseline and diffs:
                diff, se = mean_se(diffs)
                text += f" ({diff:+.3f} ± {se:.3f})" if len(diffs) > 1 else f" ({diff:+.3f})"
            cells.append(f"{text} [{len(mine)}]" if len(mine) < len(study.seeds) else text)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
