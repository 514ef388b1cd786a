"""Training checkpoints: everything a bit-exact resume needs, written atomically.

Checkpoints hold only tensors, dicts and numbers, so they load with weights_only=True
(no arbitrary unpickling). Final weights for users are written separately as safetensors.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from srgrad.data.files import atomic_path
from srgrad.errors import WeightsError


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()[1]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(f"--resume: no checkpoint at {path}; start without --resume")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise WeightsError(
            f"{path} is not a readable srgrad checkpoint ({type(exc).__name__})"
        ) from None


def load_checkpoint(path: Path, model_name: str, scale: int) -> dict[str, Any]:
    payload = read_checkpoint(path)
    config = payload.get("config", {})
    if config.get("model") != model_name or config.get("scale") != scale:
        raise WeightsError(
            f"{path} is a checkpoint of {config.get('model')} x{config.get('scale')}, "
            f"not {model_name} x{scale}; use another --out or the matching --model/--scale"
        )
    return payload


def gather_to_main(local: Any, world: int) -> list[Any] | None:
    """Every rank's `local`, in rank order, on rank 0 (None on the others)."""
    if world == 1:
        return [local]
    gathered = [None] * world if torch.distributed.get_rank() == 0 else None
    torch.distributed.gather_object(local, gathered, dst=0)
    return gathered


def rank_state(payload: dict[str, Any], rank: int, world: int, path: Path) -> Any | None:
    """This rank's entry of the per-rank list `payload["ranks"]` (sampler and RNG states);
    None for ranks > 0 of a checkpoint from before those lists, which held rank 0's only."""
    if "ranks" not in payload:
        return {"sampler": payload["sampler"], "rng": payload["rng"]} if rank == 0 else None
    if len(payload["ranks"]) != world:
        raise WeightsError(
            f"--resume: {path} was saved by {len(payload['ranks'])} process(es), this run has "
            f"{world}; resume with the same number of processes"
        )
    return payload["ranks"][rank]
