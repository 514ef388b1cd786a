"""`srgrad models`: the registry, parameter counts and which weights ship."""

from __future__ import annotations

import json

from rich import box
from rich.measure import Measurement
from rich.table import Table

from srgrad.cli._common import flag, print_plain, user_errors
from srgrad.console import console
from srgrad.models.weights import model_catalog

COLUMNS = ("name", "blocks x feats", "skip", "alpha", "params (x2)", "shipped weights")
# Headers and skip cells on two lines keep the table under 80 columns. It is shown only where
# the terminal fits it at full width: Rich squeezes a table by folding, cutting or dropping cells.
STACKED = ("name", "blocks x\nfeats", "skip", "alpha", "params\n(x2)", "shipped\nweights")


def _row(m: dict, sep: str = " ") -> tuple[str, ...]:
    return (
        m["name"],
        f"{m['blocks']} x {m['feats']}",
        f"{m['skip']}{sep}{m['norm']}/{m['magnitude']}" if m["norm"] else m["skip"],
        "" if m["alpha"] is None else f"{m['alpha']:+.1f}",
        f"{m['params']:,}",
        ", ".join(f"x{s}" for s in m["shipped_scales"]) or "-",
    )


def _table(catalog: list[dict]) -> Table:
    table = Table(title="srgrad models", box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in STACKED:
        table.add_column(header)
    for m in catalog:
        table.add_row(*_row(m, "\n"))
    return table


def _plain(rows: list[tuple[str, ...]]) -> str:
    """Aligned columns, one line per model: for pipes, and terminals too narrow for the table
    (where the terminal wraps the lines rather than anything being cut)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


@user_errors
def models(
    as_json: bool = flag(
        "--json", help="Print one JSON document (a list with one object per model)."
    ),
) -> None:
    """List model names, their shape, parameter counts (x2) and shipped weights."""
    from srgrad.inference.loading import DEFAULT_MODEL, DEFAULT_MODEL_WHY

    catalog = [{**m, "default": m["name"] == DEFAULT_MODEL} for m in model_catalog()]
    if as_json:
        print_plain(json.dumps(catalog, indent=2))
        return
    table = _table(catalog)
    unbounded = console.options.update_width(1 << 16)
    if console.is_terminal and Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
    else:
        print_plain(_plain([COLUMNS, *map(_row, catalog)]))
    default = (f"default of `srgrad upscale`: {DEFAULT_MODEL}: {DEFAULT_MODEL_WHY} "
               "(docs/results.md section 9)")
    if console.is_terminal:
        console.print(default, markup=False, highlight=False)  # wrapped at words, not cut
    else:
        print_plain(default)
