"""`srgrad export`: write a model as ONNX with dynamic height and width."""

from __future__ import annotations

from pathlib import Path

import typer

from srgrad.cli._common import ModelOption, ScaleOption, WeightsOption, flag, user_errors
from srgrad.console import console
from srgrad.inference.onnx import DEFAULT_OPSET, MIN_OPSET, export_onnx


@user_errors
def export(
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file.", show_default=False),
    model: ModelOption = None,
    scale: ScaleOption = None,
    weights: WeightsOption = None,
    opset: int = typer.Option(
        DEFAULT_OPSET, "--opset",
        help=f"ONNX opset version ({MIN_OPSET} up to the highest your torch and onnx export)."),
    force: bool = flag("--force", "-f", help="Overwrite an existing --onnx file."),
) -> None:
    """Export to ONNX: input `lr` float32 Nx3xHxW RGB in 0-255, output `sr` (H, W dynamic)."""
    path = export_onnx(onnx, model=model, scale=scale, weights=weights, opset=opset, force=force)
    console.print(f"wrote {path} (opset {opset}; input 'lr' float32 Nx3xHxW on 0-255, "
                  "dynamic batch/height/width)", highlight=False, markup=False)
