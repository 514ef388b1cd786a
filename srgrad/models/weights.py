"""Weights files: safetensors tensors + the full ModelConfig as JSON metadata.

One file rebuilds its model; nothing is unpickled. Shipped weights live in the top-level
`weights/` folder of a checkout, installed as `srgrad/weights/` by pip (pyproject maps it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save
from torch import nn

from srgrad.data.files import atomic_path
from srgrad.errors import WeightsError, reason
from srgrad.models.registry import (
    MODELS,
    SCALES,
    ModelConfig,
    build,
    count_parameters,
    model_config,
)

FORMAT = "srgrad-weights/1"


def save_weights(model: nn.Module, config: ModelConfig, path: str | Path, **extra: Any) -> Path:
    """Write atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(config.to_dict())}
    metadata.update({k: json.dumps(v) for k, v in extra.items()})
    # Not save_file(): it (safetensors 0.8) writes its own 0600 temp file and renames it over
    # ours, so the weights would lose the umask-based mode atomic_path gives every other file.
    with atomic_path(path) as tmp:
        tmp.write_bytes(save(tensors, metadata=metadata))
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path} is a folder, not a weights file; pass a .safetensors file")
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file ({reason(exc)})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise WeightsError(f"{path} is safetensors but not srgrad weights (no srgrad config)")
    out: dict[str, Any] = {}
    for key, value in meta.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def read_config(path: str | Path) -> ModelConfig:
    """The model config a weights file stores, checked: one WeightsError line naming the file
    for a config srgrad cannot build (unknown fields, an unsupported scale, skip, norm...)."""
    meta = read_metadata(path)
    try:
        config = ModelConfig.from_dict(meta["config"])
        config.block.validate()
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path} has an invalid srgrad config ({exc})") from None
    if not isinstance(config.scale, int) or config.scale not in SCALES:
        raise WeightsError(f"{path} has an unsupported scale {config.scale!r} in its config; "
                           f"srgrad supports {', '.join(f'x{s}' for s in SCALES)}")
    for name in ("n_blocks", "n_feats", "n_colors"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise WeightsError(f"{path} has an invalid srgrad config ({name} = {value!r})")
    return config


def _check_tensors(path: str | Path, config: ModelConfig, model: nn.Module,
                   state: dict[str, Any]) -> None:
    """Every tensor the config's model has, with its shape, and no others."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise WeightsError(f"{path} does not match its {config.name} config ({what})")
    wrong = [k for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        key, more = wrong[0], f" and {len(wrong) - 1} more" if len(wrong) > 1 else ""
        raise WeightsError(
            f"{path} does not match its {config.name} config: tensor {key} has shape "
            f"{list(state[key].shape)}, the config needs {list(expected[key].shape)}{more}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if bad:
        raise WeightsError(f"{path} holds NaN/inf values (in {bad[0]}), as a diverged training "
                           "run leaves them; use other weights or retrain with a lower --lr")


def load_weights(path: str | Path, scale: int | None = None) -> tuple[nn.Module, ModelConfig]:
    """Rebuild the model a weights file describes and load its tensors (eval mode, CPU)."""
    config = read_config(path)
    if scale is not None and scale != config.scale:
        raise WeightsError(
            f"{path} holds a x{config.scale} {config.name} model, not x{scale}; "
            f"pass --scale {config.scale} or weights trained for x{scale}"
        )
    model = build(config)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path} is corrupt ({reason(exc)})") from None
    _check_tensors(path, config, model, state)
    model.load_state_dict(state)
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


def model_catalog() -> list[dict[str, Any]]:
    """Every registry model: its x2 shape and parameter count, its block's skip settings
    (None where the skip does not use them: alpha for identity, g's norm and magnitude for
    identity and scaled) and its shipped scales."""
    shipped = shipped_weights()
    catalog = []
    for name in MODELS:
        config = model_config(name, 2)
        block = config.block
        mixed, uses_g = block.skip != "identity", block.skip not in ("identity", "scaled")
        catalog.append({
            "name": name,
            "blocks": config.n_blocks,
            "feats": config.n_feats,
            "skip": block.skip,
            "norm": block.norm if uses_g else None,
            "magnitude": block.magnitude if uses_g else None,
            "alpha": block.alpha if mixed else None,
            "params": count_parameters(build(config)),
            "shipped_scales": shipped.get(name, []),
        })
    return catalog
