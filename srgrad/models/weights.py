"""Weights files: safetensors tensors + the full ModelConfig as JSON metadata.

One file rebuilds its model; nothing is unpickled. Shipped weights live in the top-level
`weights/` folder of a checkout, installed as `srgrad/weights/` by pip (pyproject maps it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from srgrad.errors import WeightsError
from srgrad.fileio import atomic_path
from srgrad.models.registry import ModelConfig, build

FORMAT = "srgrad-weights/1"


def save_weights(model: nn.Module, config: ModelConfig, path: str | Path, **extra: Any) -> Path:
    """Write atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(config.to_dict())}
    metadata.update({k: json.dumps(v) for k, v in extra.items()})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"{path} is not a readable safetensors file ({reason})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise WeightsError(f"{path} is safetensors but not srgrad weights (no srgrad config)")
    out: dict[str, Any] = {}
    for key, value in meta.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def load_weights(path: str | Path, scale: int | None = None) -> tuple[nn.Module, ModelConfig]:
    """Rebuild the model a weights file describes and load its tensors (eval mode, CPU)."""
    meta = read_metadata(path)
    try:
        config = ModelConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path} has an invalid srgrad config ({exc})") from None
    if scale is not None and scale != config.scale:
        raise WeightsError(
            f"{path} holds a x{config.scale} {config.name} model, not x{scale}; "
            f"pass --scale {config.scale} or weights trained for x{scale}"
        )
    model = build(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path} is corrupt ({str(exc).splitlines()[0]})") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise WeightsError(f"{path} does not match its {config.name} config ({what})")
    model.eval()
    return model, config


def weights_dirs() -> list[Path]:
    """Where shipped weights may be: installed package data, then a checkout's weights/."""
    pkg = Path(__file__).resolve().parents[1]
    return [pkg / "weights", pkg.parent / "weights"]


def shipped_weights_path(name: str, scale: int) -> Path | None:
    for folder in weights_dirs():
        candidate = folder / f"{name}_x{scale}.safetensors"
        if candidate.is_file():
            return candidate
    return None


def shipped_weights() -> dict[str, list[int]]:
    """{model name: [scales]} for every shipped weights file found."""
    found: dict[str, set[int]] = {}
    for folder in weights_dirs():
        for file in folder.glob("*_x[0-9].safetensors"):
            name, _, scale = file.stem.rpartition("_x")
            found.setdefault(name, set()).add(int(scale))
    return {name: sorted(scales) for name, scales in sorted(found.items())}
