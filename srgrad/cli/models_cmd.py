"""`srgrad models`: the registry, parameter counts and which weights ship."""

from __future__ import annotations

from rich.table import Table

from srgrad.cli._common import console, user_errors
from srgrad.models.registry import MODELS, build_model, count_parameters, model_config
from srgrad.models.weights import shipped_weights


@user_errors
def models() -> None:
    """List model names, their shape, parameter counts (x2) and shipped weights."""
    shipped = shipped_weights()
    table = Table(title="srgrad models")
    for column in ("name", "blocks x feats", "skip", "alpha", "params (x2)", "shipped weights"):
        table.add_column(column)
    for name in MODELS:
        cfg = model_config(name, 2)
        block = cfg.block
        skip = (
            block.skip
            if block.skip == "identity"
            else f"{block.skip} {block.norm}/{block.magnitude}"
        )
        alpha = "" if block.skip == "identity" else f"{block.alpha:+.1f}"
        scales = ", ".join(f"x{s}" for s in shipped.get(name, [])) or "-"
        params = f"{count_parameters(build_model(name, 2)):,}"
        table.add_row(name, f"{cfg.n_blocks} x {cfg.n_feats}", skip, alpha, params, scales)
    console.print(table)
