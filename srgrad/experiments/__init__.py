"""Reproductions of the paper's studies (each writes its results and figures to a folder)."""

from __future__ import annotations

from srgrad.experiments.sin import QUICK, VARIANTS, SinConfig, SinResult, run_sin

__all__ = ["QUICK", "VARIANTS", "SinConfig", "SinResult", "run_sin"]
