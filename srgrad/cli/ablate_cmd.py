"""`srgrad ablate`: score a gradient model as trained, with g := 0 and with s := 0."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from srgrad.cli._common import (
    ScaleOption,
    WeightsOption,
    print_plain,
    split_list,
    user_errors,
)
from srgrad.console import console
from srgrad.errors import ConfigError

# The upscale default (sedsr-scaled) has no g to ablate: the shipped gradient network does.
ABLATE_DEFAULT = "sedsr-grad"


@user_errors
def ablate(
    model: str | None = typer.Option(
        None, "--model", "-m", show_default=False,
        help=f"Registry gradient model with shipped weights (default {ABLATE_DEFAULT})."),
    weights: WeightsOption = None,
    scale: ScaleOption = None,
    datasets: str = typer.Option(
        "set5,set14,b100", "--datasets", "-d",
        help="Comma-separated benchmark names, image folders, or holdout:N (the N held-out "
        "training images of `srgrad train --val holdout:N`, with --data)."),
    data: list[Path] | None = typer.Option(None, "--data", show_default=False,
                                           help="Training folders, for holdout:N."),
    root: Path | None = typer.Option(None, "--root", show_default=False,
                                     help="Data root (default $SRGRAD_DATA, else datasets/)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    report: Path | None = typer.Option(None, "--report", "-r", show_default=False,
                                       help="Write the tables: .md or .json by extension."),
) -> None:
    """Does the model use its gradient term? PSNR/SSIM (fp32) as trained, with g := 0 and
    with s := 0, and per block the RMS ratio |s N(g)| / |(1-s) x| (g's share of the skip)."""
    from srgrad.evaluation.ablation import ablate as run_ablation
    from srgrad.evaluation.ablation import as_dict, gradient_blocks, markdown
    from srgrad.evaluation.report import check_report_path, write_bytes_atomic
    from srgrad.inference.files import resolve_model
    from srgrad.inference.loading import model_scale

    if report is not None:
        check_report_path(report, (".md", ".json"))
    if weights is None:
        model = model or ABLATE_DEFAULT
    net = resolve_model(model, weights, scale, device)
    gradient_blocks(net)  # a model without g is refused before the data is read
    k = model_scale(net)
    sets = {name: _images(name, k, root, data or []) for name in split_list(datasets)}
    rows, shares = run_ablation(net, sets, k, device=next(net.parameters()).device)
    label = weights.name if weights is not None else f"{model} x{k}"
    text = markdown(rows, shares, label)
    print_plain(text, console)
    if report is not None:
        command = shlex.join(["srgrad", *sys.argv[1:]])
        if report.suffix.lower() == ".json":
            body = json.dumps({"model": label, "command": command, **as_dict(rows, shares)},
                              indent=2)
        else:
            body = f"{text}\n\nCommand: `{command}`\n"
        write_bytes_atomic(report, body.encode())
        print_plain(f"wrote {report}")


def _images(name: str, scale: int, root: Path | None, data: list[Path]):
    from srgrad.evaluation.run import load_eval_images
    from srgrad.train.config import holdout_count
    from srgrad.train.data import held_out_paths

    if not name.startswith("holdout:"):
        return load_eval_images(name, scale, root)
    count = holdout_count(name)
    if not count or not data:
        raise ConfigError("holdout:N needs a positive N and the training folders (--data)")
    return load_eval_images(held_out_paths(data, count), scale)
